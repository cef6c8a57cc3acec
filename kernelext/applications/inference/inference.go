// Package inference is the forward pass of a model up to one of its layers — the frozen base
// of Exercise 8.03 up to "fc2", whose features `workbook finetune` caches — for callers that
// name it apart from the model itself.
//
// It is a thin view: Net.Predict is applications.Model.Predict on applications.Model.Prefix,
// so it runs where applications.EngineRuns decides (the workbook's own AVX2/FMA engine on
// GoMLX's pure-Go backend, GoMLX elsewhere), follows the model's variables as they change,
// and has Predict's one batching rule, empty-batch rule and input check.
package inference

import (
	"errors"
	"fmt"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

// BatchSize is the number of images Predict computes together (Keras' predict default, as
// applications.Model.Predict).
const BatchSize = applications.PredictBatchSize

// Net is a VGG16 or ResNet50 (with any layers added on top) up to one of its layers. Predict
// may be called from several goroutines at once.
type Net struct {
	m     *applications.Model
	until string
}

// NewVGG16 is m up to and including the layer until: "fc2" (the 4096 features Exercise 8.03
// trains its head on), "fc1", "block5_pool", "predictions", any other layer, or "" for the
// model's output. Despite its name — VGG16 was the first network the engine ran — m may also
// be a ResNet50.
func NewVGG16(m *applications.Model, until string) (*Net, error) {
	if m == nil {
		return nil, errors.New("inference: NewVGG16: nil model")
	}
	ls := m.Layers()
	if until == "" {
		until = ls[len(ls)-1].Name
	}
	v, err := m.Prefix(until)
	if err != nil {
		return nil, fmt.Errorf("inference: %w", err)
	}
	return &Net{m: v, until: until}, nil
}

// MustNewVGG16 is NewVGG16 for notebook cells: it panics on error.
func MustNewVGG16(m *applications.Model, until string) *Net {
	n, err := NewVGG16(m, until)
	if err != nil {
		panic(err)
	}
	return n
}

// Until is the name of the layer whose output Predict returns.
func (n *Net) Until() string { return n.until }

// Predict is the model's Predict up to the Until layer (see applications.Model.Predict), e.g.
// (N, 4096) for "fc2".
func (n *Net) Predict(x *kernelext.Array) (*kernelext.Array, error) { return n.m.Predict(x) }

// MustPredict is Predict for notebook cells: it panics on error.
func (n *Net) MustPredict(x *kernelext.Array) *kernelext.Array { return n.m.MustPredict(x) }
