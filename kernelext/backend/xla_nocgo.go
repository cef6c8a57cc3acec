//go:build !(cgo && ((linux && amd64) || darwin) && !noxla)

package backend

const xlaLinked = false
