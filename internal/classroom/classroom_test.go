package classroom

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseStudents(t *testing.T) {
	file := filepath.Join(t.TempDir(), "students.txt")
	os.WriteFile(file, []byte("# class of Monday\nann\n  ben  # back row\n\n"), 0o644)
	for _, c := range []struct {
		spec string
		want string // joined names, or the error's distinctive part
		ok   bool
	}{
		{"ann,ben", "ann ben", true},
		{" ann , ben ,", "ann ben", true},
		{file, "ann ben", true},
		{"ann,ann", "listed twice", false},
		{"Ann", "not a valid Linux user name", false},
		{"root", "not allowed", false},
		{"a;rm -rf /", "not a valid Linux user name", false},
		{",", "no names", false},
	} {
		got, err := ParseStudents(c.spec)
		switch {
		case c.ok && err != nil:
			t.Errorf("ParseStudents(%q): %v", c.spec, err)
		case c.ok && strings.Join(got, " ") != c.want:
			t.Errorf("ParseStudents(%q) = %q, want %q", c.spec, got, c.want)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("ParseStudents(%q) error %v, want one saying %q", c.spec, err, c.want)
		}
	}
}

// The students' copy of each checks file keeps every visible check and no hidden one.
func TestStudentChecksHaveNoHiddenOnes(t *testing.T) {
	wd, _ := os.Getwd()
	files, _ := filepath.Glob(filepath.Join(wd, "..", "..", "solutions", "checks", "*.json"))
	if len(files) == 0 {
		t.Fatal("no checks files")
	}
	type check struct {
		ID     string `json:"id"`
		Hidden bool   `json:"hidden"`
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var orig, got struct{ Checks []check }
		json.Unmarshal(b, &orig)
		out, err := withoutHiddenChecks(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var want []string
		for _, c := range orig.Checks {
			if !c.Hidden {
				want = append(want, c.ID)
			}
		}
		var ids []string
		for _, c := range got.Checks {
			ids = append(ids, c.ID)
		}
		if strings.Join(ids, ",") != strings.Join(want, ",") || len(ids) == len(orig.Checks) && len(orig.Checks) > len(want) {
			t.Errorf("%s: student copy has checks %v, want the visible %v", filepath.Base(f), ids, want)
		}
	}
}
