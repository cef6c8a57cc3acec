package datasets

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// smallCounts describe the archive the tests serve: the book's layout, fewer images.
var smallCounts = Counts{"training_set/car": 3, "training_set/flower": 2, "test_set/car": 1, "test_set/flower": 2}

func buildZip(t *testing.T, extra map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	img, err := os.ReadFile("cars-flowers-sample/training_set/car/" + firstFile(t, "cars-flowers-sample/training_set/car"))
	must(t, err)
	add := func(name string, data []byte) {
		w, err := zw.Create(name)
		must(t, err)
		_, err = w.Write(data)
		must(t, err)
	}
	root := "The-Deep-Learning-with-Keras-Workshop-master/Chapter08/Data/Dataset/"
	_, err = zw.Create(root)
	must(t, err)
	for k, n := range smallCounts {
		for i := 0; i < n; i++ {
			add(root+k+"/"+string(rune('a'+i))+".jpg", img)
		}
	}
	add("The-Deep-Learning-with-Keras-Workshop-master/README.md", []byte("readme"))
	for name, data := range extra {
		add(name, []byte(data))
	}
	must(t, zw.Close())
	return buf.Bytes()
}

func firstFile(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	must(t, err)
	return es[0].Name()
}

func serve(t *testing.T, body []byte) (*httptest.Server, *int) {
	t.Helper()
	hits := new(int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*hits++
		if r.URL.Path != "/archive.zip" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, hits
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestFetchDownloadsVerifiesExtracts(t *testing.T) {
	body := buildZip(t, nil)
	srv, hits := serve(t, body)
	parent := t.TempDir()
	dest := filepath.Join(parent, "data")
	var out bytes.Buffer
	opts := FetchOptions{Dir: dest, URL: srv.URL + "/archive.zip", SHA256: sum(body), Expect: smallCounts, Client: srv.Client(), Out: &out}
	ds, err := Fetch(context.Background(), opts)
	must(t, err)
	if ds.Counts["training_set/car"] != 3 || !strings.HasSuffix(ds.TrainDir, filepath.FromSlash("Chapter08/Data/Dataset/training_set")) {
		t.Fatalf("%+v", ds)
	}
	// No temporary files left next to the destination.
	es, _ := os.ReadDir(parent)
	if len(es) != 1 || es[0].Name() != "data" {
		t.Fatalf("leftovers in %s: %v", parent, es)
	}
	// Second call: the folder exists, nothing is downloaded.
	if _, err := Fetch(context.Background(), opts); err != nil || *hits != 1 {
		t.Fatalf("second fetch: err %v, %d downloads", err, *hits)
	}
	// WORKBOOK_DATA is used when Dir is empty.
	t.Setenv(DataEnv, dest)
	if _, err := locate("", smallCounts); err != nil {
		t.Fatal(err)
	}
}

func TestFetchRefusesBadDownloads(t *testing.T) {
	body := buildZip(t, nil)
	srv, _ := serve(t, body)
	parent := t.TempDir()
	dest := filepath.Join(parent, "data")
	base := FetchOptions{Dir: dest, URL: srv.URL + "/archive.zip", Expect: smallCounts, Client: srv.Client(), Out: io.Discard}

	o := base
	o.SHA256 = strings.Repeat("0", 64)
	if _, err := Fetch(context.Background(), o); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("checksum mismatch: %v", err)
	}
	o = base // no checksum, not allowed
	if _, err := Fetch(context.Background(), o); err == nil {
		t.Fatal("want an error without a checksum")
	}
	o.URL = srv.URL + "/missing.zip"
	o.SHA256 = sum(body)
	if _, err := Fetch(context.Background(), o); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("HTTP error: %v", err)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Fatal("a failed download left the destination behind")
	}
	if es, _ := os.ReadDir(parent); len(es) != 0 {
		t.Fatalf("leftovers: %v", es)
	}

	// Unverified download, explicitly allowed: the checksum is reported.
	var out bytes.Buffer
	o = base
	o.AllowUnverified, o.Out = true, &out
	if _, err := Fetch(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), sum(body)) {
		t.Fatalf("checksum not reported: %q", out.String())
	}
}

func TestExtractRefusesUnsafeEntries(t *testing.T) {
	for _, bad := range []string{"../evil.txt", "/abs.txt", "a/../../evil.txt", `a\..\evil.txt`} {
		body := buildZip(t, map[string]string{bad: "x"})
		srv, _ := serve(t, body)
		parent := t.TempDir()
		err := Download(context.Background(), srv.Client(), srv.URL+"/archive.zip", sum(body), false, filepath.Join(parent, "d"), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "unsafe") {
			t.Fatalf("%q: %v", bad, err)
		}
		if es, _ := os.ReadDir(parent); len(es) != 0 {
			t.Fatalf("%q: leftovers %v", bad, es)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(parent), "evil.txt")); err == nil {
			t.Fatal("escaped the destination")
		}
	}
}

func TestLocateValidates(t *testing.T) {
	dir := t.TempDir()
	if _, err := locate(dir, smallCounts); err == nil {
		t.Fatal("empty folder must fail")
	}
	for k, n := range smallCounts {
		for i := 0; i < n; i++ {
			copyFile(t, "testdata/flow/car/c1.png", filepath.Join(dir, "Dataset", k, string(rune('a'+i))+".png"))
		}
	}
	if _, err := locate(dir, smallCounts); err != nil {
		t.Fatal(err)
	}
	must(t, os.MkdirAll(filepath.Join(dir, "Dataset", "test_set", ".ipynb_checkpoints"), 0o755))
	must(t, os.Remove(filepath.Join(dir, "Dataset", "training_set", "car", "a.png")))
	_, err := locate(dir, smallCounts)
	if err == nil || !strings.Contains(err.Error(), ".ipynb_checkpoints") || !strings.Contains(err.Error(), "training_set/car has 2 images, want 3") {
		t.Fatalf("got %v", err)
	}
	t.Setenv(DataEnv, "")
	if _, err := Locate(""); err == nil || !strings.Contains(err.Error(), DataEnv) {
		t.Fatalf("got %v", err)
	}
}

// TestLocateFullDataset checks FullCounts against a full copy when one is available:
// $WORKBOOK_DATA, or the course material folder shared/ next to the repository.
func TestLocateFullDataset(t *testing.T) {
	dir := os.Getenv(DataEnv)
	if dir == "" {
		root, err := Root()
		must(t, err)
		dir = filepath.Join(root, "..", "shared", "data", "keras-workshop-ch08")
	}
	if _, err := os.Stat(dir); err != nil {
		testenv.SkipMissing(t, "no full data set at %s; set %s", dir, DataEnv)
	}
	ds, err := Locate(dir)
	must(t, err)
	if ds.Counts["training_set/car"]+ds.Counts["training_set/flower"] != 10764 || ds.Counts["test_set/car"]+ds.Counts["test_set/flower"] != 2674 {
		t.Fatalf("%v", ds.Counts)
	}
}

func TestShippedFolders(t *testing.T) {
	s, err := SampleDir()
	must(t, err)
	for _, k := range []string{"training_set/car", "training_set/flower", "test_set/car", "test_set/flower"} {
		files, err := listClassFiles(filepath.Join(s, k), false)
		must(t, err)
		want := 40
		if strings.HasPrefix(k, "test") {
			want = 16
		}
		if len(files) != want {
			t.Errorf("%s: %d images, want %d", k, len(files), want)
		}
	}
	p, err := PredictionDir()
	must(t, err)
	for _, f := range []string{"pizza.jpg", "stick_insect.jpg", "gf.jpg", "test_image_1.jpg", "test_image_2.jpg", "test_image_3.jpg", "test_image_4.jpg"} {
		if _, err := os.Stat(filepath.Join(p, f)); err != nil {
			t.Error(err)
		}
	}

	// From a notebook's working directory, with the env var, and with a wrong env var.
	root, err := Root()
	must(t, err)
	t.Chdir(t.TempDir())
	t.Setenv(RootEnv, root)
	if r, err := Root(); err != nil || r != root {
		t.Fatalf("%s=%s: %q %v", RootEnv, root, r, err)
	}
	t.Setenv(RootEnv, t.TempDir())
	if _, err := Root(); err == nil {
		t.Fatal("a wrong WORKBOOK_ROOT must be an error")
	}
}
