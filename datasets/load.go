package datasets

import "github.com/transfer-learning-go/workbook/kernelext"

// DefaultLoader is Keras' per-file step of flow_from_directory: load_img(path,
// target_size=(height, width)) — Pillow-exact decoding, conversion to RGB and NEAREST resize —
// then img_to_array, giving (height, width, 3) float32 values 0..255.
func DefaultLoader(path string, height, width int) (*kernelext.Array, error) {
	img, err := kernelext.LoadImg(path, kernelext.TargetSize(height, width))
	if err != nil {
		return nil, err
	}
	return kernelext.ImgToArray(img), nil
}
