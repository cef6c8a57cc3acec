package training

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

// exercise803 builds Exercise 8.03's model with random weights: VGG16 until fc2, frozen, plus
// Dense(1, sigmoid); it returns the full model, the fc2 extractor and the head alone.
func exercise803(b *testing.B) (full, extractor, head *Model) {
	app, name := exercise803App(b)
	be, ctx := app.Backend(), app.Context()
	full = MustNewModel(be, ctx, "sequential_1", app.Apply)
	extractor = MustNewModel(be, ctx, "vgg16", ApplicationBase(app, "fc2"))
	head = MustNewModel(be, ctx, "sequential_1", Dense(name, 1, "sigmoid"))
	return full, extractor, head
}

// exercise803App is Exercise 8.03's network with random weights, frozen, and its head's name.
func exercise803App(b *testing.B) (*applications.Model, string) {
	app, err := applications.VGG16(applications.WithWeights(""), applications.Until("fc2"),
		applications.WithSeed(1), applications.WithBackend(testBackend(b)))
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
	return app, name
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

// BenchmarkStage2TopStep is one training step of stage 2's top on the workbook's engine —
// block5 unfrozen, its pooling, fc1 and fc2 frozen, the head — on block4_pool features
// (14×14×512) of batch 32 and 4, and ("adam") the part of it that reads the trained variables
// and Adam's slots from the context and writes the updated ones back.
func BenchmarkStage2TopStep(b *testing.B) {
	app, _ := exercise803App(b)
	if err := app.SetTrainable(true, "block5_conv1", "block5_conv2", "block5_conv3"); err != nil {
		b.Fatal(err)
	}
	top := MustNewModel(app.Backend(), app.Context(), "sequential_1", ApplicationTop(app, "block4_pool"))
	top.MustCompile(AdamWithLearningRate(1e-5), BinaryCrossentropy, Accuracy)
	steps, err := newEngineTop(app, app.Context(), "block4_pool", top.Optimizer())
	if err != nil {
		b.Fatal(err)
	}
	top.steps = steps
	for _, batch := range []int{32, 4} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			x, y := randomBatch(batch, 14, 14, 512)
			if _, err := top.TrainOnBatch(x, y); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := top.TrainOnBatch(x, y); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/step")
		})
	}
	b.Run("adam", func(b *testing.B) {
		vars, _ := steps.trained(nil)
		grads := make([][]float32, len(vars))
		for i, v := range vars {
			grads[i] = make([]float32, v.Shape().Size())
		}
		for b.Loop() {
			if err := steps.opt.updateValues(app.Context(), vars, grads); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/update")
	})
}
