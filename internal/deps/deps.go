package deps

import (
	_ "github.com/gomlx/gomlx/backends/simplego"
	_ "github.com/gomlx/gomlx/backends/xla"
	_ "github.com/gomlx/gomlx/pkg/core/graph"
	_ "github.com/janpfeifer/gonb/gonbui"
	_ "golang.org/x/image/bmp"
)
