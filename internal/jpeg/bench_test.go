package jpeg

import (
	"bytes"
	stdjpeg "image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDecodeBook decodes each of the book's prediction images with this
// package and with Go's image/jpeg, the speed bar for our own entropy
// decoder. testdata/bench_table.sh adds Pillow and the full data set.
func BenchmarkDecodeBook(b *testing.B) {
	for _, f := range bookFiles(b) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		name := filepath.Base(f)
		b.Run("ours/"+name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("std/"+name, func(b *testing.B) {
			for b.Loop() {
				if _, err := stdjpeg.Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStages times the output stage of our decode of each book image on
// its own: upsampling and colour conversion of the already decoded sample
// planes into the RGBA image, work that Go's image/jpeg skips by returning
// an image.YCbCr. BenchmarkDecodeBook minus this is the scan stage (markers,
// Huffman decoding, IDCT).
func BenchmarkStages(b *testing.B) {
	for _, f := range bookFiles(b) {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		var d decoder
		if _, err := d.run(bytes.NewReader(data), false); err != nil {
			b.Fatal(err)
		}
		b.Run("output/"+filepath.Base(f), func(b *testing.B) {
			for b.Loop() {
				d.rgb()
			}
		})
	}
}
