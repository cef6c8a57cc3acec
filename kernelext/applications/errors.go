package applications

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// variableError reports a context variable that does not fit the model: it names the model,
// the layer, the weight and both shapes.
func variableError(model, layer, key string, want, got shapes.Shape) error {
	return fmt.Errorf("applications: %s layer %q weight %q: model expects %s, the context variable %s/%s is %s",
		model, layer, key, want, layer, key, got)
}

// panicf reports misuse while a graph is being built, the GoMLX way: a panic carrying an
// error, which GoMLX's executors turn back into an error.
func panicf(format string, args ...any) {
	panic(fmt.Errorf(format, args...))
}
