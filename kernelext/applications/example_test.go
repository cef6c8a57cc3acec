package applications_test

import (
	"fmt"

	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

// Exercise 8.01 in Go: classify the book's pizza with the ImageNet-trained VGG16 (downloaded
// into Keras' cache on first use).
func ExampleVGG16() {
	model := applications.MustVGG16()
	img := kernelext.MustLoadImg("pizza.jpg", kernelext.TargetSize(224, 224))
	x := kernelext.PreprocessInput(kernelext.ExpandDims(kernelext.ImgToArray(img), 0))
	preds := kernelext.MustDecodePredictions(model.MustPredict(x), 5)
	fmt.Println(kernelext.FormatPredictions(preds))
	top := preds[0][0]
	fmt.Printf("%s (%.2f%%)\n", top.Label, float64(top.Score)*100)
}

func ExampleVGG16Architecture() {
	arch, err := applications.VGG16Architecture(true, "", nil)
	if err != nil {
		panic(err)
	}
	total, trainable, _ := arch.Params()
	fmt.Println(len(arch.Layers), "layers;", applications.Thousands(total), "params")
	_ = arch.SetTrainableFrom("block5_conv1")
	_, trainable, frozen := arch.Params()
	fmt.Println("with block5 and the top trainable:", applications.Thousands(trainable), "trainable,",
		applications.Thousands(frozen), "frozen")
	// Output:
	// 23 layers; 138,357,544 params
	// with block5 and the top trainable: 130,722,280 trainable, 7,635,264 frozen
}
