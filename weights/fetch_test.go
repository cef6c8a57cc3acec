package weights

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
)

const fakeName = "fake_weights.h5"

// fakeFile is the content the test server serves, and its md5 (computed here with crypto/md5).
func fakeFile() ([]byte, string) {
	b := make([]byte, 1<<20+123)
	rand.New(rand.NewSource(7)).Read(b)
	sum := md5.Sum(b)
	return b, hex.EncodeToString(sum[:])
}

// server serves fakeFile (or body) at /fake_weights.h5 in 64 KiB pieces and counts requests.
type server struct {
	*httptest.Server
	requests atomic.Int32
	body     []byte
	// before, if set, runs before the body is sent (to synchronize concurrent clients).
	before func()
	// cut, if > 0, closes the connection after that many bytes (Content-Length stays full).
	cut int
	// sent, if set, receives a value once the first piece is out.
	sent chan struct{}
	// hold keeps the response open after the first piece until the client goes away.
	hold bool
}

// newServer starts the server after applying configure (so handlers see the settings without a
// data race).
func newServer(t *testing.T, body []byte, configure ...func(*server)) *server {
	s := &server{body: body}
	for _, c := range configure {
		c(s)
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.URL.Path != "/"+fakeName {
			http.NotFound(w, r)
			return
		}
		if s.before != nil {
			s.before()
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(s.body)))
		w.WriteHeader(http.StatusOK)
		for off := 0; off < len(s.body); off += 64 << 10 {
			end := min(off+64<<10, len(s.body))
			if s.cut > 0 && end > s.cut {
				end = s.cut
			}
			w.Write(s.body[off:end])
			w.(http.Flusher).Flush()
			if s.sent != nil && off == 0 {
				close(s.sent)
			}
			if s.hold {
				<-r.Context().Done()
				return
			}
			if s.cut > 0 && end == s.cut {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
				return
			}
			time.Sleep(time.Millisecond)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func fakeOpts(s *server, dir, sum string) []Option {
	return []Option{
		WithBaseURL(s.URL),
		WithCacheDir(dir),
		WithCatalog(File{Name: fakeName, URL: "https://example.invalid/" + fakeName, MD5: sum}),
		WithProgress(nil),
		WithWeightsDir(""),
	}
}

// leftovers lists files in dir other than the final one (temporary downloads).
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() != fakeName {
			out = append(out, e.Name())
		}
	}
	return out
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the served content (%d bytes)", path, len(got), len(want))
	}
}

func TestFetchDownloadsThenUsesCache(t *testing.T) {
	body, sum := fakeFile()
	s := newServer(t, body)
	dir := t.TempDir()
	src, err := Fetch(context.Background(), fakeName, fakeOpts(s, dir, sum)...)
	if err != nil {
		t.Fatal(err)
	}
	want := Source{Name: fakeName, Path: filepath.Join(dir, fakeName), Origin: OriginDownloaded,
		URL: s.URL + "/" + fakeName, MD5: sum, MD5Verified: true}
	if src != want {
		t.Errorf("first Fetch: %+v\nwant %+v", src, want)
	}
	checkFile(t, src.Path, body)
	if st, _ := os.Stat(src.Path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	src, err = Fetch(context.Background(), fakeName, fakeOpts(s, dir, sum)...)
	if err != nil {
		t.Fatal(err)
	}
	want.Origin = OriginKerasCache
	if src != want {
		t.Errorf("second Fetch: %+v\nwant %+v", src, want)
	}
	if n := s.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1 (the second Fetch must use the cache)", n)
	}
	if l := leftovers(t, dir); l != nil {
		t.Errorf("leftover files %v", l)
	}
}

func TestFetchRedownloadsOnMismatch(t *testing.T) {
	body, sum := fakeFile()
	s := newServer(t, body)
	dir := t.TempDir()
	final := filepath.Join(dir, fakeName)
	if err := os.WriteFile(final, body[:1000], 0o644); err != nil { // an earlier, interrupted copy
		t.Fatal(err)
	}
	var log bytes.Buffer
	src, err := Fetch(context.Background(), fakeName, append(fakeOpts(s, dir, sum), WithProgress(&log))...)
	if err != nil {
		t.Fatal(err)
	}
	if src.Origin != OriginDownloaded || !src.MD5Verified {
		t.Errorf("source %+v", src)
	}
	checkFile(t, final, body)
	if !strings.Contains(log.String(), "differs from the published "+sum+" (incomplete or corrupt file); downloading it again") {
		t.Errorf("log does not explain the new download:\n%s", log.String())
	}
}

func TestFetchRejectsWrongDownload(t *testing.T) {
	body, _ := fakeFile()
	s := newServer(t, body)
	dir := t.TempDir()
	wrong := strings.Repeat("0", 32)
	_, err := Fetch(context.Background(), fakeName, fakeOpts(s, dir, wrong)...)
	sum := md5.Sum(body)
	want := fmt.Sprintf("weights: downloaded %s from %s/%s has md5 %s, the published file has %s; the download was discarded (download it elsewhere and copy it to %s)",
		fakeName, s.URL, fakeName, hex.EncodeToString(sum[:]), wrong, filepath.Join(dir, fakeName))
	if err == nil || err.Error() != want {
		t.Errorf("error:\n %v\nwant\n %s", err, want)
	}
	if l, _ := os.ReadDir(dir); len(l) != 0 {
		t.Errorf("files left in the cache: %v", l)
	}
}

func TestFetchOfflineErrors(t *testing.T) {
	body, sum := fakeFile()
	dir := t.TempDir()
	final := filepath.Join(dir, fakeName)

	s := newServer(t, body)
	_, err := Fetch(context.Background(), fakeName, append(fakeOpts(s, dir, sum), WithBaseURL(s.URL+"/missing"))...)
	want := fmt.Sprintf("weights: cannot download %s from %s/missing/%s: HTTP status 404 Not Found; download it elsewhere and copy it to %s",
		fakeName, s.URL, fakeName, final)
	if err == nil || err.Error() != want {
		t.Errorf("404:\n %v\nwant\n %s", err, want)
	}

	down := newServer(t, body)
	url := down.URL
	down.Close()
	_, err = Fetch(context.Background(), fakeName, fakeOpts(down, dir, sum)...)
	if err == nil || !strings.HasPrefix(err.Error(), "weights: cannot download "+fakeName+" from "+url+"/"+fakeName+": ") ||
		!strings.HasSuffix(err.Error(), "; download it elsewhere and copy it to "+final) {
		t.Errorf("connection refused: %v", err)
	}
	if l, _ := os.ReadDir(dir); len(l) != 0 {
		t.Errorf("files left in the cache: %v", l)
	}
}

// TestFetchOfflineMessageNamesKerasCache checks the hint names the real cache path when no
// cache directory is given: $KERAS_HOME/models/<name>.
func TestFetchOfflineMessageNamesKerasCache(t *testing.T) {
	home := t.TempDir()
	t.Setenv("KERAS_HOME", home)
	t.Setenv(WeightsDirEnv, "")
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := Fetch(context.Background(), VGG16, WithBaseURL(srv.URL), WithProgress(nil))
	want := "; download it elsewhere and copy it to " + filepath.Join(home, "models", VGG16)
	if err == nil || !strings.HasSuffix(err.Error(), want) || !strings.HasPrefix(err.Error(), "weights: cannot download "+VGG16+" from "+srv.URL+"/"+VGG16) {
		t.Errorf("error %v, want it to end with %q", err, want)
	}
}

func TestFetchInterrupted(t *testing.T) {
	body, sum := fakeFile()
	s := newServer(t, body, func(s *server) { s.cut = len(body) / 2 })
	dir := t.TempDir()
	_, err := Fetch(context.Background(), fakeName, fakeOpts(s, dir, sum)...)
	if err == nil || !strings.HasPrefix(err.Error(), "weights: cannot download "+fakeName) {
		t.Errorf("error %v", err)
	}
	if l, _ := os.ReadDir(dir); len(l) != 0 {
		t.Errorf("files left in the cache after an interrupted download: %v", l)
	}
}

func TestFetchCanceled(t *testing.T) {
	body, sum := fakeFile()
	s := newServer(t, body, func(s *server) { s.hold, s.sent = true, make(chan struct{}) })
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.sent
		cancel()
	}()
	_, err := Fetch(ctx, fakeName, fakeOpts(s, dir, sum)...)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("error %v, want one saying the context was canceled", err)
	}
	if l, _ := os.ReadDir(dir); len(l) != 0 {
		t.Errorf("files left in the cache after a canceled download: %v", l)
	}
}

// barrier makes the server hold each response until n requests have arrived, so downloads
// really overlap.
func barrier(n int) func() {
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	return func() {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(10 * time.Second):
		}
	}
}

func TestFetchConcurrentGoroutines(t *testing.T) {
	body, sum := fakeFile()
	s := newServer(t, body, func(s *server) { s.before = barrier(2) })
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Fetch(context.Background(), fakeName, fakeOpts(s, dir, sum)...)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if n := s.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2 overlapping downloads", n)
	}
	checkFile(t, filepath.Join(dir, fakeName), body)
	if l := leftovers(t, dir); l != nil {
		t.Errorf("leftover files %v", l)
	}
}

// The helper process: the test binary re-run with helperEnv set fetches once and reports.
const (
	helperEnv = "WEIGHTS_TEST_HELPER"
	helperURL = "WEIGHTS_TEST_URL"
	helperDir = "WEIGHTS_TEST_DIR"
	helperMD5 = "WEIGHTS_TEST_MD5"
)

func helperProcess() int {
	src, err := Fetch(context.Background(), fakeName, WithBaseURL(os.Getenv(helperURL)), WithCacheDir(os.Getenv(helperDir)),
		WithCatalog(File{Name: fakeName, MD5: os.Getenv(helperMD5)}), WithProgress(nil), WithWeightsDir(""))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(src)
	return 0
}

func TestFetchConcurrentProcesses(t *testing.T) {
	body, sum := fakeFile()
	s := newServer(t, body, func(s *server) { s.before = barrier(2) })
	dir := t.TempDir()
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=1", helperURL+"="+s.URL, helperDir+"="+dir, helperMD5+"="+sum)
			outs[i], errs[i] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for i := range outs {
		if errs[i] != nil {
			t.Errorf("process %d: %v\n%s", i, errs[i], outs[i])
			continue
		}
		var src Source
		if err := json.Unmarshal(outs[i], &src); err != nil || src.Origin != OriginDownloaded || !src.MD5Verified {
			t.Errorf("process %d: %s (%v)", i, outs[i], err)
		}
	}
	if n := s.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2 overlapping downloads", n)
	}
	checkFile(t, filepath.Join(dir, fakeName), body)
	if l := leftovers(t, dir); l != nil {
		t.Errorf("leftover files %v", l)
	}
}

func TestFetchRemovesStaleTemps(t *testing.T) {
	body, sum := fakeFile()
	s := newServer(t, body)
	dir := t.TempDir()
	stale := filepath.Join(dir, "."+fakeName+".tmp-111")
	fresh := filepath.Join(dir, "."+fakeName+".tmp-222")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	os.Chtimes(stale, old, old)
	if _, err := Fetch(context.Background(), fakeName, fakeOpts(s, dir, sum)...); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale partial download still there (%v)", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a recent partial download (maybe another process's) was removed: %v", err)
	}
}

func TestWeightsDir(t *testing.T) {
	body, sum := fakeFile()
	s := newServer(t, body)
	cache := t.TempDir()
	standins := t.TempDir()
	standin := []byte("stand-in checkpoint")
	if err := os.WriteFile(filepath.Join(standins, fakeName), standin, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := fakeOpts(s, cache, sum)[:4] // without WithWeightsDir: read the environment
	t.Setenv(WeightsDirEnv, standins)
	src, err := Fetch(context.Background(), fakeName, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ssum := md5.Sum(standin)
	want := Source{Name: fakeName, Path: filepath.Join(standins, fakeName), Origin: OriginWeightsDir,
		URL: s.URL + "/" + fakeName, MD5: hex.EncodeToString(ssum[:]), MD5Verified: false}
	if src != want {
		t.Errorf("source %+v\nwant %+v", src, want)
	}
	if !strings.Contains(src.String(), "from WORKBOOK_WEIGHTS_DIR") || !strings.Contains(src.String(), "stand-in weights, results will not match the book") {
		t.Errorf("String() = %q", src.String())
	}

	// Not in the directory and not cached: an error, and no download.
	empty := t.TempDir()
	t.Setenv(WeightsDirEnv, empty)
	_, err = Fetch(context.Background(), fakeName, opts...)
	wantErr := fmt.Sprintf("weights: %s is not in WORKBOOK_WEIGHTS_DIR=%s (and the Keras cache %s has no verified copy); nothing is downloaded while WORKBOOK_WEIGHTS_DIR is set",
		fakeName, empty, filepath.Join(cache, fakeName))
	if err == nil || err.Error() != wantErr {
		t.Errorf("error:\n %v\nwant\n %s", err, wantErr)
	}

	// A verified copy in the Keras cache is used.
	if err := os.WriteFile(filepath.Join(cache, fakeName), body, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err = Fetch(context.Background(), fakeName, opts...)
	if err != nil || src.Origin != OriginKerasCache || !src.MD5Verified {
		t.Errorf("with a cached copy: %+v, %v", src, err)
	}
	if !strings.Contains(src.String(), "from the Keras cache") || !strings.Contains(src.String(), "md5 verified: the published ImageNet weights") {
		t.Errorf("String() = %q", src.String())
	}
	if n := s.requests.Load(); n != 0 {
		t.Errorf("%d download requests while %s was set", n, WeightsDirEnv)
	}
}

func TestKerasCacheDir(t *testing.T) {
	home := t.TempDir()
	t.Setenv("KERAS_HOME", home)
	dir, err := KerasCacheDir()
	if err != nil || dir != filepath.Join(home, "models") {
		t.Errorf("KERAS_HOME: %q, %v", dir, err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Errorf("cache dir not created: %v", err)
	}

	t.Setenv("KERAS_HOME", "")
	user := t.TempDir()
	t.Setenv("HOME", user)
	if dir, err := KerasCacheDir(); err != nil || dir != filepath.Join(user, ".keras", "models") {
		t.Errorf("HOME: %q, %v", dir, err)
	}

	// Not writable (here: under a regular file): the /tmp/.keras fallback Keras uses.
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o644)
	t.Setenv("KERAS_HOME", blocker)
	tmp := t.TempDir()
	if dir, err := kerasCacheDir(tmp, true); err != nil || dir != filepath.Join(tmp, ".keras", "models") {
		t.Errorf("fallback: %q, %v", dir, err)
	}
}

func TestProgressOnNonTerminal(t *testing.T) {
	body, sum := fakeFile()
	s := newServer(t, body)
	var log bytes.Buffer
	if _, err := Fetch(context.Background(), fakeName, append(fakeOpts(s, t.TempDir(), sum), WithProgress(&log))...); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 5 ||
		lines[0] != "Downloading "+fakeName+" from "+s.URL+"/"+fakeName+" (1.0 MB)" ||
		!strings.HasPrefix(lines[1], "  "+fakeName+": 25% (") ||
		!strings.HasPrefix(lines[3], "  "+fakeName+": 75% (") ||
		!strings.HasPrefix(lines[4], "Downloaded "+fakeName+": 1.0 MB in ") || !strings.HasSuffix(lines[4], ", md5 verified") {
		t.Errorf("progress log:\n%s", log.String())
	}
	if strings.Contains(log.String(), "\r") {
		t.Errorf("carriage returns in a non-terminal log")
	}
}

func TestCatalog(t *testing.T) {
	// keras-applications 1.0.8 vgg16.py / resnet50.py.
	want := []File{
		{"vgg16_weights_tf_dim_ordering_tf_kernels.h5", "https://github.com/fchollet/deep-learning-models/releases/download/v0.1/vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b"},
		{"vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "https://github.com/fchollet/deep-learning-models/releases/download/v0.1/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "6d6bbae143d832006294945121d1f1fc"},
		{"resnet50_weights_tf_dim_ordering_tf_kernels.h5", "https://github.com/fchollet/deep-learning-models/releases/download/v0.2/resnet50_weights_tf_dim_ordering_tf_kernels.h5", "a7b3fe01876f51b976af0dea6bc144eb"},
		{"resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "https://github.com/fchollet/deep-learning-models/releases/download/v0.2/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "a268eb855778b3df3c7506639542a6af"},
	}
	got := Catalog()
	if len(got) != len(want) {
		t.Fatalf("%d entries", len(got))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	_, err := Fetch(context.Background(), "inception_v3.h5", WithProgress(nil))
	if err == nil || !strings.HasPrefix(err.Error(), `weights: unknown checkpoint "inception_v3.h5" (known: vgg16_weights_tf_dim_ordering_tf_kernels.h5, `) {
		t.Errorf("unknown name: %v", err)
	}
}

// TestLoadStandIn loads a stand-in checkpoint through WORKBOOK_WEIGHTS_DIR, as CI does.
func TestLoadStandIn(t *testing.T) {
	dir := checkpoints(t)
	standins := t.TempDir()
	b, err := os.ReadFile(filepath.Join(dir, "keras1_vgg16.h5"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(standins, VGG16), b, 0o644)
	t.Setenv(WeightsDirEnv, standins)
	c, err := Load(context.Background(), VGG16)
	if err != nil {
		t.Fatal(err)
	}
	if src := c.Source(); src == nil || src.Origin != OriginWeightsDir || src.MD5Verified || src.Path != filepath.Join(standins, VGG16) {
		t.Errorf("Source() = %+v", c.Source())
	}
	if c.Architecture() != "VGG16" {
		t.Errorf("Architecture() = %q", c.Architecture())
	}
}

// FileSums are the cache's digest and the md5 md5sum computes; SeedCache stores them in another
// cache folder for another path of the same file (a hard link here, a bind mount in a grading
// sandbox), where FileMD5 then answers without reading the file.
func TestSeedCache(t *testing.T) {
	t.Setenv(nbcache.EnvDir, t.TempDir())
	t.Setenv(nbcache.EnvOff, "")
	md5sum, err := exec.LookPath("md5sum")
	testenv.Need(t, err == nil, "md5sum (the oracle, Debian's coreutils) is not installed: %v", err)
	files := t.TempDir()
	path, link := filepath.Join(files, VGG16), filepath.Join(files, "seen-as.h5")
	if err := os.WriteFile(path, []byte("a checkpoint's bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	sums, err := FileSums(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(md5sum, path).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Fields(string(out))[0]; sums.MD5 != want {
		t.Errorf("FileSums md5 = %s, md5sum says %s", sums.MD5, want)
	}
	if digest, err := nbcache.FileHash(path); err != nil || sums.Digest != digest {
		t.Errorf("FileSums digest = %s, nbcache.FileHash = %s (%v)", sums.Digest, digest, err)
	}

	theirs := t.TempDir()
	entries, err := SeedCache(theirs, link, path, Sums{Digest: "seeded-digest", MD5: "seeded-md5"})
	if err != nil || len(entries) != 2 {
		t.Fatalf("SeedCache: %v, %v", entries, err)
	}
	t.Setenv(nbcache.EnvDir, theirs)
	if got, err := FileMD5(link); err != nil || got != "seeded-md5" {
		t.Errorf("FileMD5(%s) = %q, %v; want the seeded sum", link, got, err)
	}
	if _, err := SeedCache(theirs, link, filepath.Join(files, "missing.h5"), sums); err == nil || !strings.HasPrefix(err.Error(), "weights: ") {
		t.Errorf("a missing file: %v", err)
	}
}
