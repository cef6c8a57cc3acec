package training

import (
	"math/rand/v2"
	"testing"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

// exercise803 builds Exercise 8.03's model with random weights: VGG16 until fc2, frozen, plus
// Dense(1, sigmoid); it returns the full model, the fc2 extractor and the head alone.
func exercise803(b *testing.B) (full, extractor, head *Model) {
	be := testBackend(b)
	app, err := applications.VGG16(applications.WithWeights(""), applications.Until("fc2"),
		applications.WithSeed(1), applications.WithBackend(be))
	if err != nil {
		b.Fatal(err)
	}
	app.AsSequential("sequential_1")
	if err := app.SetTrainable(false); err != nil {
		b.Fatal(err)
	}
	name, err := app.AddDense("", 1, "sigmoid")
	if err != nil {
		b.Fatal(err)
	}
	ctx := app.Context()
	full = MustNewModel(be, ctx, "sequential_1", app.Apply)
	extractor = MustNewModel(be, ctx, "vgg16", ApplicationBase(app, "fc2"))
	head = MustNewModel(be, ctx, "sequential_1", Dense(name, 1, "sigmoid"))
	return full, extractor, head
}

func randomBatch(shape ...int) (*kernelext.Array, *kernelext.Array) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := kernelext.NewArray(shape...)
	for i := range x.Data {
		x.Data[i] = rng.Float32()
	}
	y := kernelext.NewArray(shape[0])
	for i := range y.Data {
		y.Data[i] = float32(i % 2)
	}
	return x, y
}

// BenchmarkExercise803Step is one fit_generator step of the book's run on images: batch 32 of
// 224×224 through frozen VGG16 and the trainable head (compilation excluded).
func BenchmarkExercise803Step(b *testing.B) {
	full, _, _ := exercise803(b)
	full.MustCompile(NewAdam(), BinaryCrossentropy, Accuracy)
	x, y := randomBatch(32, 224, 224, 3)
	if _, err := full.TrainOnBatch(x, y); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := full.TrainOnBatch(x, y); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(32*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkFeatureExtraction is the feature cache's cost: fc2 features of 32 images.
func BenchmarkFeatureExtraction(b *testing.B) {
	_, extractor, _ := exercise803(b)
	x, _ := randomBatch(32, 224, 224, 3)
	extractor.MustPredict(x)
	b.ResetTimer()
	for b.Loop() {
		extractor.MustPredict(x)
	}
	b.ReportMetric(float64(32*b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkHeadOnFeaturesStep is one training step of the head on cached fc2 features.
func BenchmarkHeadOnFeaturesStep(b *testing.B) {
	_, _, head := exercise803(b)
	head.MustCompile(NewAdam(), BinaryCrossentropy, Accuracy)
	x, y := randomBatch(32, 4096)
	if _, err := head.TrainOnBatch(x, y); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := head.TrainOnBatch(x, y); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(32*b.N)/b.Elapsed().Seconds(), "images/s")
}
