package training

import (
	"errors"
	"fmt"

	"github.com/transfer-learning-go/workbook/kernelext"
)

// ExtractGenerator yields the batches of another generator with each x replaced by Extract(x)
// and y unchanged: the features of a frozen base computed outside the model, batch by batch.
//
// It is the frozen-base split of fine-tuning without its trade-off. A model whose base is frozen
// computes base(x) on every step and trains only the head on it; the base's output does not
// depend on the head, so a head-only model trained on ExtractGenerator(images, base) takes the
// same steps on the same values — the same draws from the wrapped generator, in the same order,
// each batch freshly augmented as before — provided the base behaves the same in training and
// inference (no Dropout; BatchNormalization, if any, in inference mode). What changes is only
// where the base's forward pass runs: on a faster engine than the training backend, for
// instance. Unlike a FeatureCache nothing is stored, so augmentation stays Keras' fresh random
// transform at every use.
//
// Len is the wrapped generator's, when it has one (0 otherwise, which Fit treats as unknown).
// ExtractGenerator does not own the wrapped generator: close that one, if it needs closing.
type ExtractGenerator struct {
	gen     Generator
	extract func(x *kernelext.Array) (*kernelext.Array, error)
}

// NewExtractGenerator wraps gen; extract maps a batch (N, …) to its features (N, …), e.g. a
// feature extractor's Predict.
func NewExtractGenerator(gen Generator, extract func(x *kernelext.Array) (*kernelext.Array, error)) *ExtractGenerator {
	return &ExtractGenerator{gen: gen, extract: extract}
}

// Next implements Generator: the wrapped generator's next batch, x through extract.
func (g *ExtractGenerator) Next() (x, y *kernelext.Array, err error) {
	if g.gen == nil || g.extract == nil {
		return nil, nil, errors.New("training: ExtractGenerator needs a generator and an extract function")
	}
	x, y, err = g.gen.Next()
	if err != nil {
		return nil, nil, err
	}
	if x == nil || len(x.Shape) < 1 {
		return nil, nil, fmt.Errorf("training: ExtractGenerator: the generator gave a batch of shape %s", shapeOf(x))
	}
	f, err := g.extract(x)
	if err != nil {
		return nil, nil, fmt.Errorf("training: extract features: %w", err)
	}
	if f == nil || len(f.Shape) < 1 || f.Shape[0] != x.Shape[0] || len(f.Data) != f.Size() {
		return nil, nil, fmt.Errorf("training: extract returned shape %s for a batch of %d", shapeOf(f), x.Shape[0])
	}
	return f, y, nil
}

// Len is the wrapped generator's number of batches per pass, or 0 when it does not know it.
func (g *ExtractGenerator) Len() int {
	if l, ok := g.gen.(Lener); ok {
		return l.Len()
	}
	return 0
}
