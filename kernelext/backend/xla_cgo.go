//go:build cgo && ((linux && amd64) || darwin) && !noxla

package backend

// The XLA backend loads PJRT plugins with dlopen, so it is linked only when cgo is on (its
// package does not compile without cgo; GoMLX's backends/default would break such a build).
import _ "github.com/gomlx/gomlx/backends/xla"

const xlaLinked = true
