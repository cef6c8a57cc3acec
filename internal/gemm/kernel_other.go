//go:build !amd64

package gemm

// archKernels lists the micro-kernels of this architecture, fastest first: the portable one.
func archKernels() []*microKernel { return []*microKernel{kernelGo} }
