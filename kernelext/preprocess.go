package kernelext

import "fmt"

// ImgToArray is Keras' img_to_array: the image as a float32 (height, width, 3) array in RGB
// order, channels last, holding the 8-bit values 0..255 exactly.
func ImgToArray(img *Image) *Array {
	w, h := img.Width(), img.Height()
	a := NewArray(h, w, 3)
	for y := 0; y < h; y++ {
		row := img.Pix[img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y+y):]
		out := a.Data[y*w*3 : (y+1)*w*3]
		for x := 0; x < w; x++ {
			out[3*x] = float32(row[4*x])
			out[3*x+1] = float32(row[4*x+1])
			out[3*x+2] = float32(row[4*x+2])
		}
	}
	return a
}

// ExpandDims is numpy's expand_dims: the same values with a new axis of length 1 inserted at
// position axis (negative counts from the end, -1 appends). Like numpy's result, which is a
// view, the returned Array shares Data with a.
//
// An axis outside [-ndim-1, ndim] is a programming error (numpy raises AxisError) and panics.
func ExpandDims(a *Array, axis int) *Array {
	nd := len(a.Shape)
	if axis < -nd-1 || axis > nd {
		panic(fmt.Sprintf("kernelext: ExpandDims: axis %d is out of bounds for an array of dimension %d", axis, nd+1))
	}
	if axis < 0 {
		axis += nd + 1
	}
	shape := make([]int, 0, nd+1)
	shape = append(shape, a.Shape[:axis]...)
	shape = append(shape, 1)
	shape = append(shape, a.Shape[axis:]...)
	return &Array{Shape: shape, Data: a.Data}
}

// ImageNet channel means in BGR order, as keras_applications.imagenet_utils subtracts them in
// "caffe" mode (the preprocessing VGG16 and ResNet50 were trained with).
var caffeMeanBGR = [3]float32{103.939, 116.779, 123.68}

// PreprocessInput is keras.applications.vgg16/resnet50 preprocess_input (mode "caffe"): the
// channels are reversed from RGB to BGR and the ImageNet means B 103.939, G 116.779,
// R 123.68 are subtracted, in float32 arithmetic exactly as NumPy does, with no scaling. The
// last axis must hold the 3 channels; any leading shape works ((224, 224, 3) or a batch
// (N, 224, 224, 3)).
//
// Unlike Keras, x is left untouched and a new Array is returned. (Keras returns a reversed
// view and, through it, also subtracts the means from the caller's array while leaving it in
// RGB order — a side effect nobody relies on; the book always uses the return value, as in
// transformedImage = PreprocessInput(transformedImage).)
//
// An array whose last axis is not 3 is a programming error and panics.
func PreprocessInput(x *Array) *Array {
	if len(x.Shape) == 0 || x.Shape[len(x.Shape)-1] != 3 || len(x.Data) != x.Size() {
		panic(fmt.Sprintf("kernelext: PreprocessInput needs an array whose last axis holds 3 RGB channels, got shape %s",
			TupleString(x.Shape)))
	}
	out := &Array{Shape: append([]int(nil), x.Shape...), Data: make([]float32, len(x.Data))}
	for i := 0; i < len(x.Data); i += 3 {
		r, g, b := x.Data[i], x.Data[i+1], x.Data[i+2]
		out.Data[i] = b - caffeMeanBGR[0]
		out.Data[i+1] = g - caffeMeanBGR[1]
		out.Data[i+2] = r - caffeMeanBGR[2]
	}
	return out
}
