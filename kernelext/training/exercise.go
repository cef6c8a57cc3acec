package training

import (
	"fmt"
	"os"
	"strconv"

	"github.com/transfer-learning-go/workbook/datasets"
)

// Exercise 8.03 is defined here once — its schedule, its data generators, its model (see
// FineTuning's defaults) and the book's decision — for the command, the notebooks and the
// grader's reference run alike.

// Schedule is a fine-tuning run's length: fit_generator's epochs, steps_per_epoch and
// validation_steps, and flow_from_directory's batch_size.
type Schedule struct {
	Epochs, Steps, ValSteps, Batch int
}

// BookSchedule is the book's (fit_generator(steps_per_epoch=100, epochs=10,
// validation_steps=30), batch_size=32); QuickSchedule is WORKBOOK_QUICK=1's, which only checks
// that every step runs.
var (
	BookSchedule  = Schedule{Epochs: 10, Steps: 100, ValSteps: 30, Batch: 32}
	QuickSchedule = Schedule{Epochs: 1, Steps: 2, ValSteps: 1, Batch: 2}
)

// The environment variables a notebook's schedule reads (ScheduleFromEnv).
const (
	EnvEpochs   = "WORKBOOK_EPOCHS"
	EnvSteps    = "WORKBOOK_STEPS"
	EnvValSteps = "WORKBOOK_VAL_STEPS"
	EnvBatch    = "WORKBOOK_BATCH"
	EnvQuick    = "WORKBOOK_QUICK"
	EnvStage2   = "WORKBOOK_STAGE2_EPOCHS"
)

func (s Schedule) String() string {
	return fmt.Sprintf("epochs=%d steps_per_epoch=%d validation_steps=%d batch_size=%d", s.Epochs, s.Steps, s.ValSteps, s.Batch)
}

// Validate rejects non-positive values.
func (s Schedule) Validate() error {
	if s.Epochs < 1 || s.Steps < 1 || s.ValSteps < 1 || s.Batch < 1 {
		return fmt.Errorf("training: schedule %s: every value must be at least 1", s)
	}
	return nil
}

// Env is the environment that makes ScheduleFromEnv return s (a value set explicitly wins over
// WORKBOOK_QUICK), plus WORKBOOK_DATA=data when data is not empty.
func (s Schedule) Env(data string) []string {
	env := []string{EnvEpochs + "=" + strconv.Itoa(s.Epochs), EnvSteps + "=" + strconv.Itoa(s.Steps),
		EnvValSteps + "=" + strconv.Itoa(s.ValSteps), EnvBatch + "=" + strconv.Itoa(s.Batch)}
	if data != "" {
		env = append(env, datasets.DataEnv+"="+data)
	}
	return env
}

// ScheduleFromEnv is the book's schedule (QuickSchedule under WORKBOOK_QUICK=1) with any value
// set in WORKBOOK_EPOCHS, WORKBOOK_STEPS, WORKBOOK_VAL_STEPS or WORKBOOK_BATCH instead: the knobs
// a notebook offers to shorten the run.
func ScheduleFromEnv() (Schedule, error) {
	s := BookSchedule
	if os.Getenv(EnvQuick) == "1" {
		s = QuickSchedule
	}
	for _, k := range []struct {
		name string
		v    *int
	}{{EnvEpochs, &s.Epochs}, {EnvSteps, &s.Steps}, {EnvValSteps, &s.ValSteps}, {EnvBatch, &s.Batch}} {
		var err error
		if *k.v, err = envInt(k.name, *k.v); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Stage2EpochsFromEnv is the number of stage-2 epochs a notebook runs: WORKBOOK_STAGE2_EPOCHS,
// else 1 under WORKBOOK_QUICK=1, else 5.
func Stage2EpochsFromEnv() (int, error) {
	if os.Getenv(EnvQuick) == "1" {
		return envInt(EnvStage2, 1)
	}
	return envInt(EnvStage2, 5)
}

// MustStage2EpochsFromEnv is Stage2EpochsFromEnv for notebook cells: it panics on error.
func MustStage2EpochsFromEnv() int {
	n, err := Stage2EpochsFromEnv()
	if err != nil {
		panic(err)
	}
	return n
}

// envInt is the positive whole number in the environment variable name, or def when unset.
func envInt(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return def, fmt.Errorf("training: %s=%q: want a positive whole number", name, v)
	}
	return n, nil
}

// MustScheduleFromEnv is ScheduleFromEnv for notebook cells: it panics on error.
func MustScheduleFromEnv() Schedule {
	s, err := ScheduleFromEnv()
	if err != nil {
		panic(err)
	}
	return s
}

// BookTrainAugmentation and BookTestPreprocessing are the exercise's two ImageDataGenerators:
// ImageDataGenerator(rescale=1./255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True) for
// training and ImageDataGenerator(rescale=1./255) for the test set.
var (
	BookTrainAugmentation = datasets.ImageDataGenerator{Rescale: 1. / 255, ShearRange: 0.2,
		ZoomRange: datasets.Zoom(0.2), HorizontalFlip: true}
	BookTestPreprocessing = datasets.ImageDataGenerator{Rescale: 1. / 255}
)

// BookDecision is Exercise 8.03's step 11: `if result[0][0] == 1: 'It is a flower' else 'It is a
// car'` — exactly 1, not a threshold.
func BookDecision(result float32) string {
	if result == 1 {
		return "It is a flower"
	}
	return "It is a car"
}
