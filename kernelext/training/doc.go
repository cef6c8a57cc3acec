// Package training is Keras 2.3's compile / fit_generator / save for GoMLX, as Chapter 8's
// fine-tuning exercise uses them (Exercise 8.03: VGG16 without its 1000-way layer, frozen, plus
// Dense(1, activation='sigmoid'); compile(optimizer='adam', loss='binary_crossentropy',
// metrics=['accuracy']); fit_generator(training_set, steps_per_epoch=100, epochs=10,
// validation_data=test_set, validation_steps=30); save), plus the freeze-then-unfreeze recipe
// and a feature cache that makes head-only training affordable without a GPU.
//
// # Exercise 8.03
//
//	app := applications.MustVGG16(applications.Until("fc2"))   // VGG16 without "predictions"
//	app.AsSequential("sequential_1")
//	_ = app.SetTrainable(false)                                // for layer in …: trainable = False
//	head, _ := app.AddDense("", 1, "sigmoid")                  // Dense(1, activation='sigmoid')
//	model := training.MustNewApplicationModel(nil, app)
//	model.MustCompile(training.NewAdam(), training.BinaryCrossentropy, training.Accuracy)
//	hist := model.MustFit(training.NewSequenceGenerator(trainIt, false), training.FitOptions{
//		Epochs: 10, StepsPerEpoch: 100,
//		ValidationData: training.NewSequenceGenerator(testIt, false), ValidationSteps: 30})
//	model.MustSave("car-flower-classifier.ckpt")
//	hist.Display()
//
// # What is Keras-exact
//
// Adam and SGD follow Keras 2.3's update formulas in float32, operation for operation (see Adam
// for why GoMLX's own Adam is not used); tests compare trajectories with a NumPy implementation
// of Keras' get_updates and find them equal to the last bit or within one ulp.
//
// BinaryCrossentropy is what Keras 2.3.1 computes on TensorFlow 2 — the sigmoid's logits go to
// sigmoid_cross_entropy_with_logits; BinaryCrossentropyClipped is the clipped-probability
// formula. Accuracy is binary_accuracy with TensorFlow's round-half-to-even (p = 0.5 is class 0).
//
// Fit reproduces fit_generator's bookkeeping, BaseLogger, ProgbarLogger and Progbar:
//
//   - Training "accuracy" is the running value over all samples of the epoch (a stateful metric,
//     reset at each epoch); the progress bar shows it as is.
//   - The bar's "loss" at step k is the mean of the k batch losses; on the epoch's final line it
//     is (Σ batch losses + epoch loss)/(steps + 1), because ProgbarLogger appends the epoch logs
//     to the last batch's before its last update. The History stores the epoch loss: the
//     batch-size-weighted mean of the batch losses.
//   - "val_accuracy" covers all ValidationSteps batches; "val_loss" is by default the loss of
//     the last validation batch only — Keras 2.3.0/2.3.1's evaluate_generator bug
//     (it returns outs_per_batch[-1][0]), kept so numbers compare with the book's run. Set
//     FitOptions.ValLoss = ValLossMean for the weighted mean of all validation batches that
//     Keras ≤ 2.2.5 and tf.keras report.
//   - The validation generator continues across epochs (Keras' enqueuer is never reset), and
//     SequenceGenerator runs passes over the DirectoryIterator independently of epochs, calling
//     on_epoch_end after each pass, as OrderedEnqueuer does.
//   - Lines are Keras' exactly: "Epoch e/E", then
//     "100/100 [==============================] - 21s 210ms/step - loss: 0.5513 - accuracy:
//     0.7112 - val_loss: 0.3352 - val_accuracy: 0.8539" (ETA while running; %.4f, or %.4e at
//     or below 1e-3; s, ms or us per step). The elapsed time includes validation, as in Keras.
//     A test replays fixed results through a Python replica of Keras' callbacks and compares
//     the text byte for byte.
//
// # Progress display
//
// On a terminal or in a GoNB cell the bar is redrawn in place with "\r" (Keras also writes
// backspaces; Jupyter and terminals need only the carriage return). Otherwise every update is
// a new line, preceded by a newline as in Keras — hence the blank line after "Epoch e/E" —
// and FitOptions.LineEvery keeps a long run's log short (LineEvery: 25 prints 4 lines per
// 100-step epoch). Keras 2.3 on Linux, for the record, treats any stdout as dynamic ('posix'
// in sys.modules), so its log files are full of backspaces; this package does not copy that.
// Updates closer than 50 ms apart are skipped, as in Keras.
//
// # Checkpoints
//
// Model.Save writes every context variable — weights (frozen too), optimizer moments and step
// count — with the optimizer's description and, from Fit, the epoch count and history, into
// one file: temporary file in the same folder, fsync, rename, so a full disk or a crash never
// leaves a corrupt or half-written checkpoint at the path (GoMLX's checkpoints package writes
// in place, in two files). Load checks a CRC-32C before changing anything. FitOptions.
// Checkpoint saves after every epoch; with Resume, an interrupted run continues after the last
// saved epoch with the same weights, optimizer state and history (bit-identical to an
// uninterrupted run when the data is). The file is not Keras' HDF5 model.save format.
//
// # Freezing
//
// Freeze and Unfreeze take a Layered — ApplicationLayers for VGG16/ResNet50 from the
// applications package, ContextLayers for layers built here — and Selectors: LayerNamed,
// LayerPrefix("block5_"), LayersFrom("res5a_branch2a"), LayersUntil("fc2"), AllLayers. As in
// Keras, changes take effect at the next Compile. Frozen variables are left out of the
// gradient computation (GoMLX differentiates only trainable variables), and the base's output
// is wrapped in StopGradient (applications' Model.Apply does it; StopGradientIfFrozen for
// other bases) so a frozen base costs a forward pass only. FineTune runs both stages: head only
// with Adam, then the selected top layers with a fresh Adam(1e-5); keep BatchNormalization in
// inference mode for it (applications.WithBatchNormMode(applications.BatchNormInference)).
//
// # Feature cache
//
// With the base frozen, FeatureCache runs each image through the base once and stores the
// features on disk; a head (Dense under the same layer name the full model uses) then trains on
// them in milliseconds per epoch, and the full model predicts on images with the trained head.
// The price is augmentation: unaugmented features, or K fixed augmented copies per image
// (Augmented) instead of Keras' fresh random transform at every use. See FeatureCache.
//
// ExtractGenerator is the same split without storing anything: it maps each freshly augmented
// batch through the frozen base (computed wherever is fastest, e.g. outside GoMLX) before the
// head-only model trains on it — the same steps as training the whole model, to float32
// rounding, the base's forward pass still paid on every step.
//
// FineTuning's stage 2 splits the model the same way at the first unfrozen layer, and where the
// layers above are ones the workbook's engine trains (VGG16's 'same' convolutions, max pooling,
// Flatten and Dense layers, a Dense(1, sigmoid) head, Adam) their steps run on the engine too
// (internal/engine's Trainer, Adam on the model's own variables), behind Model.TrainOnBatch and
// TestOnBatch: GoMLX's pure-Go backend differentiates convolutions at under 1 GFLOP/s.
package training
