// Command benchtable decodes every JPEG under the given directories once with
// internal/jpeg and once with Go's image/jpeg and prints wall and CPU time per
// image (CPU time is the number to trust on a shared, loaded machine), each
// after an untimed warm-up pass. It is run by bench_table.sh, which adds
// Pillow's row.
package main

import (
	"bytes"
	"fmt"
	stdjpeg "image/jpeg"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/transfer-learning-go/workbook/internal/jpeg"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	label, dirs := os.Args[1], os.Args[2:]
	var data [][]byte
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(strings.ToLower(p), ".jpg") {
				return err
			}
			b, err := os.ReadFile(p)
			data = append(data, b)
			return err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchtable:", err)
			os.Exit(1)
		}
	}
	for _, dec := range []struct {
		name string
		fn   func([]byte) error
	}{
		{"ours (internal/jpeg)", func(b []byte) error { _, err := jpeg.Decode(bytes.NewReader(b)); return err }},
		{"Go image/jpeg", func(b []byte) error { _, err := stdjpeg.Decode(bytes.NewReader(b)); return err }},
	} {
		// One untimed pass over (up to) the first 100 images first: whichever
		// decoder ran first would otherwise also pay for growing the
		// process's heap (page faults on fresh memory), several ms per
		// image on the 7-image book set.
		for _, b := range data[:min(len(data), 100)] {
			if err := dec.fn(b); err != nil {
				fmt.Fprintf(os.Stderr, "benchtable: %s: %v\n", dec.name, err)
				os.Exit(1)
			}
		}
		w0, c0 := time.Now(), cpu()
		for i, b := range data {
			if err := dec.fn(b); err != nil {
				fmt.Fprintf(os.Stderr, "benchtable: %s: image %d: %v\n", dec.name, i, err)
				os.Exit(1)
			}
		}
		w, c := time.Since(w0), cpu()-c0
		n := float64(len(data))
		fmt.Printf("| %-12s | %-22s | %6d | %9.2f | %9.2f |\n", label, dec.name, len(data),
			w.Seconds()*1000/n, c.Seconds()*1000/n)
	}
}
