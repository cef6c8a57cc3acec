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

// A student's copy (what 'start' gives each student and 'classroom copy' puts into the
// single-user image) holds the notebooks and the packages they import, but no solved notebook,
// no command and no hidden check.
func TestCopyWorkbook(t *testing.T) {
	wd, _ := os.Getwd()
	repo := filepath.Join(wd, "..", "..")
	dst := filepath.Join(t.TempDir(), "workbook")
	if err := CopyWorkbook(repo, dst, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go.mod", "go.sum", "kernelext", "datasets", "solutions/check", "notebooks/02-activity-8.01-vgg16-motorcycle.ipynb", "cmd/nbsetup/main.go"} {
		if _, err := os.Stat(filepath.Join(dst, want)); err != nil {
			t.Errorf("copy lacks %s: %v", want, err)
		}
	}
	for _, gone := range []string{"cmd/workbook", "solutions/02-activity-8.01-vgg16-motorcycle.ipynb", ".git", ".dev"} {
		if _, err := os.Stat(filepath.Join(dst, gone)); err == nil {
			t.Errorf("copy holds %s", gone)
		}
	}
	checks, _ := filepath.Glob(filepath.Join(dst, "solutions", "checks", "*.json"))
	if len(checks) == 0 {
		t.Fatal("copy holds no checks files")
	}
	for _, f := range checks {
		var doc struct{ Checks []struct{ Hidden bool } }
		b, err := os.ReadFile(f)
		if err != nil || json.Unmarshal(b, &doc) != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, c := range doc.Checks {
			if c.Hidden {
				t.Errorf("%s: the student's copy holds a hidden check", filepath.Base(f))
			}
		}
	}
	// A second copy to the same place leaves the student's work alone.
	mine := filepath.Join(dst, "notebooks", "mine.txt")
	os.WriteFile(mine, []byte("work"), 0o644)
	if err := CopyWorkbook(repo, dst, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a second copy removed the student's file: %v", err)
	}
}

// A student's build cache is seeded from the template; a ~/.cache the student replaced by a link
// is left alone, and nothing is created where it points.
func TestSeedStudentGoCache(t *testing.T) {
	tmpl := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmpl, "README"), []byte("template"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(tmpl, "0a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmpl, "0a", "0a12-a"), []byte("entry"), 0o444); err != nil {
		t.Fatal(err)
	}
	me := &account{Name: "ann", UID: os.Getuid(), GID: os.Getgid()}

	me.Home = t.TempDir()
	var log strings.Builder
	if err := seedStudentGoCache(tmpl, me, &log); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(me.Home, ".cache", "go-build", "0a", "0a12-a")); err != nil || string(b) != "entry" {
		t.Errorf("the seeded cache lacks the template's entry: %q, %v", b, err)
	}

	me.Home = t.TempDir()
	elsewhere := t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(me.Home, ".cache")); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if err := seedStudentGoCache(tmpl, me, &log); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("seeding followed the student's link: %d entries in %s", len(entries), elsewhere)
	}
	if !strings.Contains(log.String(), "is not a folder") {
		t.Errorf("log %q does not say why the cache was not seeded", log.String())
	}
}
