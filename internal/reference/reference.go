// Package reference locates (and on first use generates) the independent
// numerical reference that the VGG16 and ResNet50 tests compare against.
//
// Testing a model port against its own earlier output proves nothing, and the
// real ImageNet checkpoints are an 800 MB download. So the script
// kernelext/applications/testdata/gen_reference.py draws seeded random
// weights, writes them as the four official Keras-1 checkpoint files, and
// computes the Keras-semantics predictions for the book's seven images with
// PyTorch in float64 (self-checked against a NumPy implementation). The
// result, about 840 MB, lives in a cache directory outside the repository
// and is regenerated only when the script's SCRIPT_VERSION changes.
//
// All .npy files there are float32 little-endian; image rows follow
// Manifest.Images; feature maps are NHWC like Keras.
package reference

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// Files in the reference directory.
const (
	ManifestFile = "manifest.json"

	// ImagesFile holds the Keras-preprocessed book images, (7, 224, 224, 3)
	// BGR caffe-mode, in Manifest.Images order.
	ImagesFile = "book_images_preprocessed.npy"

	// Checkpoints in the official Keras-1 layout and under the official
	// cache names, so a loader test can point Keras' cache logic at them.
	VGG16Weights         = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
	VGG16WeightsNoTop    = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
	ResNet50Weights      = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
	ResNet50WeightsNoTop = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"

	// Softmax outputs (7, 1000) and the logits before the softmax.
	VGG16Probs     = "vgg16_reference_probs.npy"
	VGG16Logits    = "vgg16_reference_logits.npy"
	ResNet50Probs  = "resnet50_reference_probs.npy"
	ResNet50Logits = "resnet50_reference_logits.npy"

	// include_top=False outputs for all images: (7, 7, 7, 512) and
	// (7, 7, 7, 2048), NHWC.
	VGG16NoTopFeatures    = "vgg16_notop_features.npy"
	ResNet50NoTopFeatures = "resnet50_notop_features.npy"

	// Per-layer outputs of image Manifest.LayerDumpImage, one
	// "<keras layer name>.npy" each with a leading batch axis of 1
	// (VGG16: block1_conv1, block1_pool…block5_pool, fc1, fc2, predictions;
	// ResNet50: conv1, bn_conv1, activation_1, max_pooling2d_1, every
	// block's output activation_4…activation_49, all layers of block 3a,
	// avg_pool, fc1000), named as in a Keras 2.3 model.
	VGG16LayersDir    = "vgg16_layers"
	ResNet50LayersDir = "resnet50_layers"
)

const (
	// ScriptPath is the generator, relative to the module root.
	ScriptPath = "kernelext/applications/testdata/gen_reference.py"

	// Python is the interpreter the generator runs under (Debian's, which
	// carries the python3-torch, -torchvision, -h5py, -numpy, -pil packages).
	Python = "/usr/bin/python3"

	// RegenEnv set to "0" forbids running the generator: Dir then skips the
	// test when the reference is missing or stale.
	RegenEnv = "WORKBOOK_REFERENCE_REGEN"

	// DirEnv, when set, replaces DefaultDir.
	DirEnv = "WORKBOOK_REFERENCE_DIR"

	// exitMissingDeps is the generator's exit status for a missing Python
	// module (EXIT_MISSING_DEPS in the script).
	exitMissingDeps = 3
)

// Manifest is the part of manifest.json the tests need.
type Manifest struct {
	ScriptVersion string `json:"script_version"`
	Images        []struct {
		Name string `json:"name"`
		MD5  string `json:"md5"`
	} `json:"images"`
	Seeds struct {
		VGG16    int `json:"vgg16"`
		ResNet50 int `json:"resnet50"`
	} `json:"seeds"`
	LayerDumpImage int `json:"layer_dump_image_index"`
	Files          map[string]struct {
		Bytes int64  `json:"bytes"`
		MD5   string `json:"md5"`
	} `json:"files"`
	// ResNet50LayerNames is the root layer_names attribute written to the
	// include_top ResNet50 checkpoint (177 names).
	ResNet50LayerNames []string `json:"resnet50_layer_names"`
}

// ReadManifest parses dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reference: read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("reference: parse %q: %w", path, err)
	}
	return &m, nil
}

// DefaultDir is $WORKBOOK_REFERENCE_DIR if set, else
// ${XDG_CACHE_HOME:-$HOME/.cache}/transfer-learning-go/reference-v1, the
// script's own default. (Not os.UserCacheDir: on macOS that differs from
// what the script computes.)
func DefaultDir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return filepath.Abs(d)
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("reference: no cache directory: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "transfer-learning-go", "reference-v1"), nil
}

var scriptVersionRE = regexp.MustCompile(`(?m)^SCRIPT_VERSION = "([^"]+)"\s*$`)

// ScriptVersion reads SCRIPT_VERSION from the generator source, so the
// version lives in one place.
func ScriptVersion(script string) (string, error) {
	src, err := os.ReadFile(script)
	if err != nil {
		return "", fmt.Errorf("reference: read generator: %w", err)
	}
	m := scriptVersionRE.FindSubmatch(src)
	if m == nil {
		return "", fmt.Errorf("reference: %q: no SCRIPT_VERSION line", script)
	}
	return string(m[1]), nil
}

// ModuleRoot walks up from the working directory (a package directory under
// go test) to the directory holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("reference: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("reference: no go.mod above the working directory")
		}
		dir = parent
	}
}

// outcome caches Dir's result per directory for the life of the test binary,
// so that after one generation (or one "missing torch") the other tests do
// not repeat it.
type outcome struct {
	dir     string
	skipMsg string
	err     error
}

var (
	mu       sync.Mutex
	outcomes = map[string]*outcome{}
)

// Dir returns the reference directory, generating it first if it is missing
// or was made by another script version (this takes about two minutes and
// writes about 840 MB; the generator's progress goes to stderr). It skips
// the test when generation is needed but forbidden (WORKBOOK_REFERENCE_REGEN=0)
// or impossible (no /usr/bin/python3, or torch, torchvision, h5py, numpy or
// Pillow missing), and fails it when the generator itself fails.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	o, ok := outcomes[dir]
	if !ok {
		o = ensure(t, dir)
		outcomes[dir] = o
	}
	switch {
	case o.err != nil:
		t.Fatal(o.err)
	case o.skipMsg != "":
		testenv.SkipMissing(t, "%s", o.skipMsg)
	}
	return o.dir
}

func ensure(t testing.TB, dir string) *outcome {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		return &outcome{err: err}
	}
	script := filepath.Join(root, ScriptPath)
	want, err := ScriptVersion(script)
	if err != nil {
		return &outcome{err: err}
	}
	have := ""
	if m, err := ReadManifest(dir); err == nil {
		have = m.ScriptVersion
		if have == want {
			return &outcome{dir: dir}
		}
	}
	state := fmt.Sprintf("missing in %s", dir)
	if have != "" {
		state = fmt.Sprintf("in %s is version %q, generator is %q", dir, have, want)
	}
	if os.Getenv(RegenEnv) == "0" {
		return &outcome{skipMsg: fmt.Sprintf("reference: data %s and %s=0 forbids generating it", state, RegenEnv)}
	}
	if _, err := os.Stat(Python); err != nil {
		return &outcome{skipMsg: fmt.Sprintf("reference: data %s and %s is unavailable to generate it: %v", state, Python, err)}
	}

	t.Logf("reference: data %s; running %s (about 2 minutes, 840 MB)", state, ScriptPath)
	fmt.Fprintf(os.Stderr, "reference: generating %s with %s\n", dir, script)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), Python, script, "--out", dir)
	cmd.Dir = root
	cmd.Stdout = os.Stderr
	cmd.Stderr = io.MultiWriter(os.Stderr, &stderr)
	// Interrupt rather than kill on test timeout, so the script removes its
	// half-written temporary directory.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == exitMissingDeps {
		return &outcome{skipMsg: fmt.Sprintf("reference: data %s and Python lacks a module to generate it: %s",
			state, bytes.TrimSpace(stderr.Bytes()))}
	}
	if err != nil {
		return &outcome{err: fmt.Errorf("reference: %s %s --out %s failed: %w", Python, ScriptPath, dir, err)}
	}
	m, err := ReadManifest(dir)
	if err != nil {
		return &outcome{err: err}
	}
	if m.ScriptVersion != want {
		return &outcome{err: fmt.Errorf("reference: generator left version %q in %s, want %q", m.ScriptVersion, dir, want)}
	}
	t.Logf("reference: generated %s in %v", dir, time.Since(start).Round(time.Second))
	return &outcome{dir: dir}
}
