package checks

import "testing"

// The shipped files parse, validate, and cover the six exercises and activities.
func TestShippedChecks(t *testing.T) {
	specs, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"8.01", "A8.01", "8.02", "8.04", "A8.02", "8.03", "exercise-8.01", "activity-8.02", "exercise-8.03"} {
		s, err := Find(name)
		if err != nil {
			t.Errorf("Find(%q): %v", name, err)
			continue
		}
		hidden := 0
		for _, c := range s.Checks {
			if c.Hidden {
				hidden++
			}
		}
		if hidden == 0 || hidden == len(s.Checks) {
			t.Errorf("%s: %d of %d checks hidden; want some of each", s.ID, hidden, len(s.Checks))
		}
		if s.BookExpectation == nil {
			t.Errorf("%s: no book expectation", s.ID)
		}
	}
	if len(specs) != 6 {
		t.Errorf("%d checks files; want 6", len(specs))
	}
	// Exercise 8.03 is graded as the book's test does: the first epoch's val_accuracy to one
	// significant digit, and the prediction for test_image_2.jpg.
	s, err := Find("8.03")
	if err != nil {
		t.Fatal(err)
	}
	var sig, result bool
	for _, c := range s.Checks {
		sig = sig || (c.Kind == "significant" && c.Metric == "val_accuracy" && c.Epoch == 1 && c.Digits == 1)
		result = result || (c.Kind == "allclose" && c.Variable == "result")
	}
	if s.Task != "finetune" || s.Image != "test_image_2.jpg" || !sig || !result {
		t.Errorf("8.03 checks: task %q, image %q, val_accuracy to 1 digit %v, result compared %v", s.Task, s.Image, sig, result)
	}
}
