// Package applications is the Go twin of keras.applications' VGG16 and ResNet50 as Keras 2.3
// (keras-applications 1.0.8) defines them: the same layers, names, order, shapes and parameter
// counts, the same model.summary() text, and the official Keras checkpoints loaded unchanged.
//
// # Notebook use
//
// The high-level API mirrors the book's Keras calls:
//
//	model := applications.MustVGG16()                 // VGG16(): ImageNet weights, with the top
//	fmt.Print(model.Summary())                        // model.summary()
//	preds := model.MustPredict(x)                     // model.predict(x), x from preprocess_input
//	label := kernelext.MustDecodePredictions(preds, 5) // decode_predictions(preds)
//
// Options follow the Keras arguments: WithWeights("imagenet" | "file.h5" | ""),
// IncludeTop(false), Pooling("avg"|"max"), InputShape(h, w), plus WithBackend, Until(layer)
// (drop the layers after it) and WithDType(dtypes.Float64) (for numerical checks). New layers
// go on top with AddFlatten, AddGlobalPooling and AddDense (Exercise 8.03's Dense(1,
// 'sigmoid')), and AsSequential gives the model keras.Sequential's summary. Weights named
// "imagenet" come from Keras' own cache (~/.keras/models), downloaded there if missing, through
// package weights; WeightsSource says which file was used.
//
// # Where Predict runs
//
// On GoMLX's pure-Go backend, on a CPU with AVX2 and FMA, a float32 model's Predict runs on
// the workbook's own CPU engine (internal/engine) — at PyTorch's speed instead of about ten
// times slower — and says so once on stderr; XLA backends and float64 models run in GoMLX.
// EngineRuns is that decision, made nowhere else; WithoutEngine opts a model out. Every
// Predict of the workbook shares one batching rule (PredictBatchSize, Keras'), one
// empty-batch rule and one input check (PredictInBatches).
//
// # Graph building
//
// In GoMLX graph code (a training step, a model with a new head), the builders work like
// GoMLX's examples/inceptionv3:
//
//	features := applications.VGG16Graph(ctx, x).IncludeTop(false).
//		Weights(checkpoint).TrainableFrom("block5_conv1").StopGradientAtFrozen(true).Done()
//
// Each layer's variables live in ctx.In(<Keras layer name>) under Keras' weight names:
// "kernel" and "bias" for Conv2D and Dense; "gamma", "beta", "moving_mean" and
// "moving_variance" for BatchNormalization (the moving statistics are never trainable, as in
// Keras). Model.Apply builds a Model's graph inside such a function, on the Model's context.
//
// Everything is driven by one layer table per network (VGG16Architecture,
// ResNet50Architecture): the graph builder walks it, LoadWeights checks every array against it,
// and Summary prints it. Details that matter for equality with Keras:
//
//   - ResNet50 is v1 with the stride on the first 1×1 convolution of each stage's first block
//     (not on the 3×3, as torchvision's "v1.5" has it), explicit symmetric ZeroPadding2D before
//     "valid" convolution and pooling (TensorFlow's "same" would pad asymmetrically), and
//     BatchNormalization epsilon 1e-3 (Keras' default, not 1.001e-5 of tf.keras' resnet).
//   - Flatten follows (H, W, C) order, the order of fc1's rows in the Keras checkpoints.
//   - Unnamed layers get Keras' automatic names as in a fresh Keras session: input_1,
//     activation_1…49, add_1…16, max_pooling2d_1, global_average_pooling2d_1. (Keras counts
//     across a session, so a second model built in the same Python session would show
//     input_2; the names here never depend on what was built before.)
//
// # Freezing and fine-tuning
//
// Layer.Trainable is Keras' layer.trainable: Model.SetTrainable, Model.SetTrainableFrom and
// the builder's Trainable/TrainableFrom mark the frozen layers' variables non-trainable, so
// GoMLX optimizers skip them, and Summary counts them as non-trainable. As with Keras'
// compile(), a graph already built keeps the flags it was built with.
//
// GoMLX differentiates only along paths between the loss and trainable variables, so a frozen
// base costs only its forward pass. StopGradientAtFrozen makes that cut explicit — a
// StopGradient where a frozen part feeds a trainable layer — so no gradient op is ever
// built below it; Model.Apply always sets it.
//
// BatchNormalization while training (ResNet50) follows Keras 2.3 by default: mini-batch
// statistics even in frozen layers, moving statistics updated only in trainable ones
// (BatchNormKeras2); BatchNormFrozenInference gives tf.keras' behaviour instead.
package applications
