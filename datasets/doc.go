// Package datasets is the Go twin of the Keras data pipeline Chapter 8 of the workshop trains
// with —
//
//	ImageDataGenerator(rescale=1./255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
//	    .flow_from_directory(dir, target_size=(224, 224), batch_size=32, class_mode='binary')
//
// — and the home of the images the workbook ships (see README.md in this folder).
//
// Given the same seed, a DirectoryIterator yields what keras-preprocessing 1.1.0 yields: the same
// classes and file order, the same shuffles (NumPy's legacy MT19937 RandomState, reimplemented
// bit for bit), the same per-image shear, zoom and flip draws, and pixel values within one
// float32 ulp of SciPy's affine transform (bit-identical in the tests). Decoding and
// augmentation run on a pool of goroutines ahead of the consumer, without changing any result.
//
// The sample and prediction folders are found with SampleDir and PredictionDir from any working
// directory; the full data set (10,764 training and 2,674 test images) is located and validated
// with Locate or Fetch.
package datasets
