package checks

import "testing"

// The shipped files parse, validate, and cover the five prediction exercises.
func TestShippedChecks(t *testing.T) {
	specs, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"8.01", "A8.01", "8.02", "8.04", "A8.02", "exercise-8.01", "activity-8.02"} {
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
	if len(specs) != 5 {
		t.Errorf("%d checks files; want 5", len(specs))
	}
}
