package datasets_test

import (
	"fmt"
	"path/filepath"

	"github.com/transfer-learning-go/workbook/datasets"
)

// The book's training generator, on the shipped sample:
//
//	generate_train_data = ImageDataGenerator(rescale=1./255, shear_range=0.2, zoom_range=0.2,
//	                                         horizontal_flip=True)
//	training_dataset = generate_train_data.flow_from_directory('…/training_set',
//	                       target_size=(224, 224), batch_size=32, class_mode='binary')
func ExampleImageDataGenerator_FlowFromDirectory() {
	gen := datasets.ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2, ZoomRange: datasets.Zoom(0.2), HorizontalFlip: true}
	train := gen.MustFlowFromDirectory(filepath.Join(datasets.MustSampleDir(), "training_set"), datasets.FlowOptions{
		TargetSize: [2]int{224, 224}, BatchSize: 32, ClassMode: datasets.Binary, Seed: datasets.Seed(42)})
	defer train.Close()
	fmt.Println(train.ClassIndices(), len(train.Filenames()), train.Len())
	b := train.MustNext()
	fmt.Println(b.X.ShapeString(), b.Y.ShapeString())
	// Output:
	// Found 80 images belonging to 2 classes.
	// map[car:0 flower:1] 80 3
	// (32, 224, 224, 3) (32,)
}
