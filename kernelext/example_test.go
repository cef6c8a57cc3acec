package kernelext

import "fmt"

// Values in these examples were checked against Pillow and NumPy (see the golden tests).

func ExampleImgToArray() {
	// rgba.png's top rows are fully transparent; like Pillow's convert("RGB"), LoadImg keeps
	// the colours stored there instead of compositing them onto black or white.
	img := MustLoadImg("testdata/images/rgba.png")
	x := ImgToArray(img)
	fmt.Println(x.ShapeString())
	fmt.Println(x.Data[3*5 : 3*5+3])
	// Output:
	// (70, 90, 3)
	// [9 0 194]
}

func ExampleExpandDims() {
	x := &Array{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}
	fmt.Println(ExpandDims(x, 0))
	fmt.Println(ExpandDims(x, -1).ShapeString())
	// Output:
	// array([[[1., 2., 3.],
	//         [4., 5., 6.]]], dtype=float32)
	// (2, 3, 1)
}

func ExampleArray_String() {
	// Arrays with more than 1000 values are summarized as NumPy does.
	x := NewArray(2, 1000)
	for i := range x.Data {
		x.Data[i] = float32(i) / 7
	}
	fmt.Println(x)
	// Output:
	// array([[0.0000000e+00, 1.4285715e-01, 2.8571430e-01, ..., 1.4242857e+02,
	//         1.4257143e+02, 1.4271428e+02],
	//        [1.4285715e+02, 1.4300000e+02, 1.4314285e+02, ..., 2.8528571e+02,
	//         2.8542856e+02, 2.8557144e+02]], dtype=float32)
}

func ExampleFloat32Repr() {
	for _, f := range []float32{0.0009799759, 1e-5, 0.5, 123456.79} {
		fmt.Println(Float32Repr(f))
	}
	// Output:
	// 0.0009799759
	// 1e-05
	// 0.5
	// 123456.79
}

func ExamplePrediction_String() {
	p := Prediction{WNID: "n07873807", Label: "pizza", Score: 0.97680503}
	fmt.Println(p)
	fmt.Printf("%s (%.2f%%)\n", p.Label, p.Score*100)
	// Output:
	// ('n07873807', 'pizza', 0.97680503)
	// pizza (97.68%)
}

func ExamplePredictionsHTML() {
	fmt.Print(PredictionsHTML([][]Prediction{{{WNID: "n07873807", Label: "pizza", Score: 0.97680503}}}))
	// Output:
	// <table>
	// <tr><th>#</th><th>Label</th><th>WordNet ID</th><th>Score</th></tr>
	// <tr><td>1</td><td>pizza</td><td><code>n07873807</code></td><td>97.68%</td></tr>
	// </table>
}

func ExampleDisplayImage() {
	// Outside a GoNB notebook the display helpers do nothing, so notebook code also runs
	// unchanged in tests and command-line tools.
	img := MustLoadImg("testdata/images/small_64.jpg", TargetSize(224, 224))
	DisplayImage(img)
	DisplayPredictions([][]Prediction{{{WNID: "n07873807", Label: "pizza", Score: 0.97680503}}})
	fmt.Println(img.Width(), img.Height())
	// Output:
	// 224 224
}
