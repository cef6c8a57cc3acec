package training

import (
	"strings"
	"testing"
)

// The notebooks' knobs: the book's schedule by default, WORKBOOK_QUICK=1's when asked, any value
// set explicitly winning over both, and a clear error for a value that is not a positive number.
func TestScheduleFromEnv(t *testing.T) {
	for _, k := range []string{EnvEpochs, EnvSteps, EnvValSteps, EnvBatch, EnvQuick, EnvStage2} {
		t.Setenv(k, "")
	}
	if s, err := ScheduleFromEnv(); err != nil || s != BookSchedule {
		t.Errorf("no knobs: %v, %v; want the book's %v", s, err, BookSchedule)
	}
	if n, err := Stage2EpochsFromEnv(); err != nil || n != 5 {
		t.Errorf("stage 2 without knobs: %d, %v; want 5", n, err)
	}
	t.Setenv(EnvQuick, "1")
	t.Setenv(EnvSteps, "7")
	want := QuickSchedule
	want.Steps = 7
	if s, err := ScheduleFromEnv(); err != nil || s != want {
		t.Errorf("quick with WORKBOOK_STEPS=7: %v, %v; want %v", s, err, want)
	}
	if n, err := Stage2EpochsFromEnv(); err != nil || n != 1 {
		t.Errorf("stage 2, quick: %d, %v; want 1", n, err)
	}
	// The environment ScheduleFromEnv reads back is the one Env writes.
	for _, kv := range (Schedule{Epochs: 3, Steps: 4, ValSteps: 5, Batch: 6}).Env("") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	if s, err := ScheduleFromEnv(); err != nil || s != (Schedule{3, 4, 5, 6}) {
		t.Errorf("after Env: %v, %v", s, err)
	}
	t.Setenv(EnvBatch, "0")
	if _, err := ScheduleFromEnv(); err == nil || !strings.Contains(err.Error(), `WORKBOOK_BATCH="0"`) {
		t.Errorf("WORKBOOK_BATCH=0: error %v, want one naming the variable and value", err)
	}
}

// The book's decision is `== 1`, not a threshold.
func TestBookDecision(t *testing.T) {
	for _, c := range []struct {
		p    float32
		want string
	}{{1, "It is a flower"}, {0.9999999, "It is a car"}, {0, "It is a car"}} {
		if got := BookDecision(c.p); got != c.want {
			t.Errorf("BookDecision(%v) = %q, want %q", c.p, got, c.want)
		}
	}
}
