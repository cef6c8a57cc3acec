package batch

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// go run keeps the programs it builds in GOCACHE and execs them from there (a notebook's setup
// cell runs one), so the template must keep an entry's execute bit, in merged and seeded caches
// alike, and must repair an entry an older grader merged without it.
func TestCacheKeepsExecutables(t *testing.T) {
	src, template, dst := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "gocache")
	prog := filepath.Join(src, "ab", "ab12-d", "prog")
	data := filepath.Join(src, "ab", "ab34-d")
	if err := os.MkdirAll(filepath.Dir(prog), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(data, []byte("object"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An entry an older grader merged read-only without its execute bit.
	stale := filepath.Join(template, "ab", "ab12-d", "prog")
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("#!/bin/sh\necho ran\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	if _, err := mergeCache(src, template); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{stale: 0o555, filepath.Join(template, "ab", "ab34-d"): 0o444} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("template entry %s has mode %v, want %v", p, st.Mode().Perm(), want)
		}
	}
	// A stale template entry is repaired when a submission's cache is seeded from it, too.
	if err := os.Chmod(stale, 0o444); err != nil {
		t.Fatal(err)
	}
	if _, err := seedCache(template, dst, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(dst, "ab", "ab12-d", "prog")).Output()
	if err != nil || string(out) != "ran\n" {
		t.Fatalf("a program from the seeded cache: %q, %v", out, err)
	}
}
