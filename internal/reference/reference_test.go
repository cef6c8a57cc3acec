package reference

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

func TestDefaultDir(t *testing.T) {
	t.Setenv(DirEnv, "")
	t.Setenv("XDG_CACHE_HOME", "/x/cache")
	got, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := "/x/cache/transfer-learning-go/reference-v1"; got != want {
		t.Errorf("DefaultDir() = %q, want %q", got, want)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got, _ := DefaultDir(); got != "/home/u/.cache/transfer-learning-go/reference-v1" {
		t.Errorf("DefaultDir() without XDG_CACHE_HOME = %q", got)
	}
	t.Setenv(DirEnv, "/elsewhere")
	if got, _ := DefaultDir(); got != "/elsewhere" {
		t.Errorf("DefaultDir() with %s = %q", DirEnv, got)
	}
}

func TestScriptVersion(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	v, err := ScriptVersion(filepath.Join(root, ScriptPath))
	if err != nil {
		t.Fatal(err)
	}
	if v == "" {
		t.Fatal("empty SCRIPT_VERSION")
	}
	bad := filepath.Join(t.TempDir(), "x.py")
	if err := os.WriteFile(bad, []byte("VERSION = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ScriptVersion(bad); err == nil {
		t.Error("ScriptVersion accepted a file without SCRIPT_VERSION")
	}
}

func TestDirSkipsWhenGenerationForbidden(t *testing.T) {
	t.Setenv(testenv.RequireEnv, "") // this test is about the skip itself
	t.Setenv(DirEnv, t.TempDir())
	t.Setenv(RegenEnv, "0")
	var skipped bool
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Dir(t)
	})
	if !skipped {
		t.Error("Dir did not skip with an empty directory and generation forbidden")
	}
}

func TestDirSkipsWithoutTorch(t *testing.T) {
	_, err := os.Stat(Python)
	testenv.Need(t, err == nil, "%s: %v", Python, err)
	t.Setenv(testenv.RequireEnv, "") // this test is about the skip itself
	// A torch module that fails to import stands in for a missing torch.
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "torch.py"), []byte("raise ImportError('no torch here')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHONPATH", fake)
	t.Setenv(DirEnv, filepath.Join(t.TempDir(), "ref"))
	t.Setenv(RegenEnv, "")
	var skipped bool
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Dir(t)
	})
	if !skipped {
		t.Error("Dir did not skip when torch cannot be imported")
	}
}

// npyShape reads the header of a version-1 float32 little-endian .npy file.
func npyShape(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if string(head[:6]) != "\x93NUMPY" || head[6] != 1 {
		t.Fatalf("%s: not a version-1 .npy file", path)
	}
	dict := make([]byte, binary.LittleEndian.Uint16(head[8:10]))
	if _, err := io.ReadFull(f, dict); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	m := regexp.MustCompile(`'descr': '<f4', 'fortran_order': False, 'shape': \(([0-9, ]+)\)`).FindSubmatch(dict)
	if m == nil {
		t.Fatalf("%s: header %q is not float32 C-order", path, dict)
	}
	return string(m[1])
}

// TestGeneratedReference checks the generated directory against its own
// manifest and the shapes the model tests rely on. It generates the data on
// first use, so it is skipped in -short mode.
func TestGeneratedReference(t *testing.T) {
	testenv.Long(t, "generating the reference takes minutes")
	dir := Dir(t)
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Images) != 7 {
		t.Errorf("%d images, want the book's 7", len(m.Images))
	}
	if n := len(m.ResNet50LayerNames); n != 177 {
		t.Errorf("ResNet50 checkpoint lists %d layers, want 177", n)
	}
	for name, info := range m.Files {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		h := md5.New()
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil || n != info.Bytes || hex.EncodeToString(h.Sum(nil)) != info.MD5 {
			t.Errorf("%s: %d bytes (err %v), md5 %x; manifest says %d bytes, md5 %s",
				name, n, err, h.Sum(nil), info.Bytes, info.MD5)
		}
	}
	for name, want := range map[string]string{
		ImagesFile:                          "7, 224, 224, 3",
		VGG16Probs:                          "7, 1000",
		VGG16Logits:                         "7, 1000",
		ResNet50Probs:                       "7, 1000",
		ResNet50Logits:                      "7, 1000",
		VGG16NoTopFeatures:                  "7, 7, 7, 512",
		ResNet50NoTopFeatures:               "7, 7, 7, 2048",
		VGG16LayersDir + "/fc1.npy":         "1, 4096",
		VGG16LayersDir + "/block1_pool.npy": "1, 112, 112, 64",
		ResNet50LayersDir + "/max_pooling2d_1.npy": "1, 56, 56, 64",
		ResNet50LayersDir + "/res3a_branch2a.npy":  "1, 28, 28, 128",
		ResNet50LayersDir + "/activation_49.npy":   "1, 7, 7, 2048",
		ResNet50LayersDir + "/fc1000.npy":          "1, 1000",
	} {
		if got := npyShape(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s: shape (%s), want (%s)", name, got, want)
		}
	}
}
