package datasets

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// DataEnv names the environment variable that points at the full data set, for programs that
// take no --data flag.
const DataEnv = "WORKBOOK_DATA"

// BookRepository is the book's GitHub repository (MIT License); its Chapter08/Data/Dataset
// folder holds the full cars-and-flowers data set.
const BookRepository = "https://github.com/PacktWorkshops/The-Deep-Learning-with-Keras-Workshop"

// BookArchiveURL is the zip archive of the repository's default branch. Its checksum changes
// with every commit upstream, so Fetch needs one given explicitly (or AllowUnverified).
const BookArchiveURL = BookRepository + "/archive/refs/heads/master.zip"

// Counts maps "split/class" (e.g. "training_set/car") to a number of images.
type Counts map[string]int

// FullCounts are the image counts of the book's data set: 10,764 training images (5,739 cars,
// 5,025 flowers) and 2,674 test images (1,419 cars, 1,255 flowers).
var FullCounts = Counts{
	"training_set/car":    5739,
	"training_set/flower": 5025,
	"test_set/car":        1419,
	"test_set/flower":     1255,
}

// Dataset is a validated copy of the data set on disk.
type Dataset struct {
	Root     string // folder holding training_set/ and test_set/
	TrainDir string
	TestDir  string
	Counts   Counts // images found, counted with Keras' file rules
}

// candidates are the places, relative to a given folder, where the data set is looked for: the
// folder itself, the layout of /work-style copies (Dataset/), the book repository
// (Chapter08/Data/Dataset) and an extracted GitHub archive (<repo>-<branch>/Chapter08/...).
var candidates = []string{"", "Dataset", "dataset", "Data/Dataset", "Chapter08/Data/Dataset"}

// Locate finds the full data set under dir — or under $WORKBOOK_DATA when dir is "" — and
// checks that its folders and image counts are the book's (FullCounts).
func Locate(dir string) (*Dataset, error) { return locate(dir, FullCounts) }

func locate(dir string, want Counts) (*Dataset, error) {
	if dir == "" {
		dir = os.Getenv(DataEnv)
		if dir == "" {
			return nil, fmt.Errorf("datasets: no data folder given: pass one (--data DIR) or set %s", DataEnv)
		}
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("datasets: data folder: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("datasets: data folder %q is not a folder", dir)
	}
	var tried []string
	try := func(root string) (*Dataset, error, bool) {
		tried = append(tried, root)
		if !isDir(filepath.Join(root, "training_set")) || !isDir(filepath.Join(root, "test_set")) {
			return nil, nil, false
		}
		ds, err := validate(root, want)
		return ds, err, true
	}
	for _, c := range candidates {
		if ds, err, ok := try(filepath.Join(dir, filepath.FromSlash(c))); ok {
			return ds, err
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			if ds, err, ok := try(filepath.Join(dir, e.Name(), "Chapter08", "Data", "Dataset")); ok {
				return ds, err
			}
		}
	}
	return nil, fmt.Errorf("datasets: no training_set/ and test_set/ folders found; looked in %q", tried)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// validate counts images with the iterator's own rules and compares with want, naming every
// difference (a partial copy or an extra class folder would otherwise change the labels or the
// results silently).
func validate(root string, want Counts) (*Dataset, error) {
	ds := &Dataset{Root: root, TrainDir: filepath.Join(root, "training_set"), TestDir: filepath.Join(root, "test_set"), Counts: Counts{}}
	wantClasses := map[string][]string{}
	for k := range want {
		split, class, _ := strings.Cut(k, "/")
		wantClasses[split] = append(wantClasses[split], class)
	}
	var problems []string
	for _, split := range []string{"training_set", "test_set"} {
		classes, err := discoverClasses(filepath.Join(root, split))
		if err != nil {
			return nil, err
		}
		slices.Sort(wantClasses[split])
		if !slices.Equal(classes, wantClasses[split]) {
			problems = append(problems, fmt.Sprintf("%s has classes %q, want %q", split, classes, wantClasses[split]))
		}
		for _, class := range classes {
			files, err := listClassFiles(filepath.Join(root, split, class), false)
			if err != nil {
				return nil, err
			}
			ds.Counts[split+"/"+class] = len(files)
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if ds.Counts[k] != want[k] {
			problems = append(problems, fmt.Sprintf("%s has %d images, want %d", k, ds.Counts[k], want[k]))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("datasets: %q is not the expected data set: %s", root, strings.Join(problems, "; "))
	}
	return ds, nil
}

// FetchOptions configure Fetch.
type FetchOptions struct {
	// Dir is where the data set is, or is to be extracted to; "" means $WORKBOOK_DATA.
	Dir string
	// URL is a zip archive to download when Dir does not exist yet; "" means never download.
	URL string
	// SHA256 is the archive's expected hex checksum. Required unless AllowUnverified.
	SHA256 string
	// AllowUnverified downloads without a checksum; the checksum found is printed to Out so
	// that it can be pinned next time.
	AllowUnverified bool
	// Expect are the image counts to validate; nil means FullCounts.
	Expect Counts
	// Client is the HTTP client; nil means http.DefaultClient.
	Client *http.Client
	// Out receives progress lines; nil means os.Stdout.
	Out io.Writer
}

// Fetch returns the full data set: it validates an existing copy in opts.Dir (or
// $WORKBOOK_DATA); if that folder does not exist and opts.URL is set, it first downloads the
// zip archive, verifies its SHA-256 and extracts it there atomically (a half-done download
// never looks like a data set).
func Fetch(ctx context.Context, opts FetchOptions) (*Dataset, error) {
	want := opts.Expect
	if want == nil {
		want = FullCounts
	}
	dir := opts.Dir
	if dir == "" {
		dir = os.Getenv(DataEnv)
	}
	if dir == "" {
		return nil, fmt.Errorf("datasets: no data folder given: pass one (--data DIR) or set %s", DataEnv)
	}
	if _, err := os.Stat(dir); err == nil {
		return locate(dir, want)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("datasets: data folder: %w", err)
	}
	if opts.URL == "" {
		return nil, fmt.Errorf("datasets: data folder %q does not exist and no download URL is set (the book's archive is %s)", dir, BookArchiveURL)
	}
	out := opts.Out
	if out == nil {
		out = os.Stdout
	}
	if err := Download(ctx, opts.Client, opts.URL, opts.SHA256, opts.AllowUnverified, dir, out); err != nil {
		return nil, err
	}
	return locate(dir, want)
}

// maxExtract bounds the bytes an archive may expand to, against zip bombs; the book's whole
// repository is far smaller.
const maxExtract = 8 << 30

// Download fetches a zip archive from url, checks its SHA-256 against sum (hex; "" only with
// allowUnverified, in which case the sum found is printed to out), and extracts it into dest,
// which must not exist: everything is unpacked into a temporary sibling folder first and
// renamed into place at the end. Entries that would land outside dest, links and special files
// are refused.
func Download(ctx context.Context, client *http.Client, url, sum string, allowUnverified bool, dest string, out io.Writer) (err error) {
	if sum == "" && !allowUnverified {
		return fmt.Errorf("datasets: download %s: no SHA-256 given (set one, or allow an unverified download explicitly)", url)
	}
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("datasets: download %s: %q already exists", url, dest)
	}
	if client == nil {
		client = http.DefaultClient
	}
	if out == nil {
		out = io.Discard
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("datasets: download %s: %w", url, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("datasets: download %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("datasets: download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("datasets: download %s: HTTP %s", url, resp.Status)
	}
	tmpZip, err := os.CreateTemp(parent, ".download-*.zip")
	if err != nil {
		return fmt.Errorf("datasets: download %s: %w", url, err)
	}
	defer os.Remove(tmpZip.Name())
	defer tmpZip.Close()
	fmt.Fprintf(out, "datasets: downloading %s\n", url)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmpZip, h), resp.Body)
	if err != nil {
		return fmt.Errorf("datasets: download %s: after %d bytes: %w", url, n, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if sum != "" && !strings.EqualFold(got, sum) {
		return fmt.Errorf("datasets: download %s: SHA-256 %s, want %s", url, got, sum)
	}
	if sum == "" {
		fmt.Fprintf(out, "datasets: %s has SHA-256 %s (unverified)\n", url, got)
	}
	if err := tmpZip.Sync(); err != nil {
		return fmt.Errorf("datasets: download %s: %w", url, err)
	}

	tmpDir, err := os.MkdirTemp(parent, ".extract-*")
	if err != nil {
		return fmt.Errorf("datasets: extract %s: %w", url, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmpDir)
		}
	}()
	if err := extractZip(tmpZip.Name(), n, tmpDir); err != nil {
		return fmt.Errorf("datasets: extract %s: %w", url, err)
	}
	if err := os.Rename(tmpDir, dest); err != nil {
		return fmt.Errorf("datasets: extract %s: %w", url, err)
	}
	fmt.Fprintf(out, "datasets: extracted into %s\n", dest)
	return nil
}

func extractZip(zipPath string, size int64, dest string) error {
	f, err := os.Open(zipPath)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return err
	}
	var total int64
	for _, zf := range zr.File {
		name := zf.Name
		clean := path.Clean("/" + name)[1:]
		if name == "" || strings.Contains(name, `\`) || path.IsAbs(name) || clean != strings.TrimSuffix(name, "/") {
			return fmt.Errorf("entry %q: unsafe path", name)
		}
		target := filepath.Join(dest, filepath.FromSlash(clean))
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			continue
		case !mode.IsRegular():
			return fmt.Errorf("entry %q: not a regular file or folder (%v)", name, mode.Type())
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("entry %q: %w", name, err)
		}
		w, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			rc.Close()
			return err
		}
		n, err := io.Copy(w, io.LimitReader(rc, maxExtract-total+1))
		total += n
		rc.Close()
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", name, err)
		}
		if total > maxExtract {
			return fmt.Errorf("archive expands beyond %d bytes", int64(maxExtract))
		}
	}
	return nil
}
