package datasets

import (
	"io"
	"testing"
)

// BenchmarkIteratorSample measures images per second through Next on the shipped sample with
// the book's settings (224×224, batch 32, rescale + shear + zoom + flip): JPEG decoding, NEAREST
// resize, affine transform and rescale, in parallel. Run with -cpu to set GOMAXPROCS, e.g.
//
//	go test ./datasets/ -run '^$' -bench IteratorSample -cpu 2
func BenchmarkIteratorSample(b *testing.B) {
	book := ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2, ZoomRange: Zoom(0.2), HorizontalFlip: true}
	for _, bc := range []struct {
		name    string
		gen     ImageDataGenerator
		workers int
	}{
		{"augment", book, 0},
		{"augment/workers=1", book, 1},
		{"rescale-only", ImageDataGenerator{Rescale: 1. / 255}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			it, err := bc.gen.FlowFromDirectory("cars-flowers-sample/training_set", FlowOptions{
				TargetSize: [2]int{224, 224}, BatchSize: 32, ClassMode: Binary, Seed: Seed(1),
				Out: io.Discard, Workers: bc.workers})
			if err != nil {
				b.Fatal(err)
			}
			defer it.Close()
			images := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				batch, err := it.Next()
				if err != nil {
					b.Fatal(err)
				}
				images += batch.X.Shape[0]
			}
			b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkAffine224 is the augmentation step alone for one 224×224×3 image.
func BenchmarkAffine224(b *testing.B) {
	src := goldenInput(224, 224, 3, 1, true)
	dst := make([]float32, len(src))
	g := ImageDataGenerator{Rescale: 1. / 255}
	p := TransformParams{Shear: 0.13, Zx: 1.1, Zy: 0.93, FlipHorizontal: true}
	for i := 0; i < b.N; i++ {
		if err := g.Apply(src, 224, 224, 3, p, dst); err != nil {
			b.Fatal(err)
		}
	}
}
