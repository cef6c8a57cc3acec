// Package hugepages asks the kernel to back large buffers with transparent huge pages before
// they are first written.
//
// Loading VGG16 writes 528 MB of weights into fresh memory. With 4 KiB pages that is 135,000
// page faults, and on virtual machines each one can cost 10–15 µs: on the 2-core VMs the
// workbook is developed and tested on, filling that memory took about 2.7 s of the 4 s a
// fresh process needs to load the model and predict. Where the kernel's transparent huge
// pages are in "madvise" mode (Debian's default), the same memory advised beforehand faults in
// 2 MiB pages, 512 times fewer. Go's runtime no longer advises its heap itself, so the few
// places that allocate hundreds of megabytes at once do it here.
package hugepages

import "unsafe"

// size is the huge page size of x86-64 and arm64 Linux kernels with 4 KiB base pages.
const size = 2 << 20

// MinBytes is the smallest buffer advised: one of this size always holds a whole huge page.
const MinBytes = 2 * size

// Advise asks for huge pages for the whole 2 MiB pages inside s. It only helps before s is
// first written; it is a hint, so an error (a kernel without transparent huge pages, another
// operating system) changes nothing and is ignored. Slices under MinBytes are left alone.
func Advise[T any](s []T) {
	if len(s) == 0 {
		return
	}
	n := uintptr(len(s)) * unsafe.Sizeof(s[0])
	if n < MinBytes {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), n)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	start := (p+size-1)&^(size-1) - p
	end := (p+n)&^(size-1) - p
	if end > start {
		advise(b[start:end])
	}
}

// Make is make([]T, n) advised for huge pages (Advise): for buffers of many megabytes that are
// about to be filled.
func Make[T any](n int) []T {
	s := make([]T, n)
	Advise(s)
	return s
}
