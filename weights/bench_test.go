package weights

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// BenchmarkOpen loads a full-size checkpoint: the file named by $WEIGHTS_BENCH_FILE, else VGG16
// from the Keras cache. Skipped when neither exists (nothing is downloaded).
//
//	WEIGHTS_BENCH_FILE=/path/to/vgg16_weights_tf_dim_ordering_tf_kernels.h5 go test -run '^$' -bench Open -benchtime 3x ./weights/
func BenchmarkOpen(b *testing.B) {
	path := os.Getenv("WEIGHTS_BENCH_FILE")
	if path == "" {
		if dir, err := kerasCacheDir(os.TempDir(), false); err == nil {
			path = filepath.Join(dir, VGG16)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		testenv.SkipMissing(b, "no checkpoint to load (set WEIGHTS_BENCH_FILE): %v", err)
	}
	b.SetBytes(st.Size())
	for b.Loop() {
		c, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(c.NumParams()), "params")
	}
}
