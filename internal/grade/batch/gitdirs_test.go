package batch

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/testenv"
)

// gitDirs finds the git folders of a plain checkout and of a linked worktree as git itself lays
// them out (git init, git worktree add), so the sandbox can hide the history of solutions/.
func TestGitDirs(t *testing.T) {
	git, err := exec.LookPath("git")
	testenv.Need(t, err == nil, "git: %v", err)
	base := t.TempDir()
	main, wt := filepath.Join(base, "main"), filepath.Join(base, "wt")
	run := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(git, append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.MkdirAll(main, 0o755); err != nil {
		t.Fatal(err)
	}
	run(main, "init", "-q")
	if err := os.WriteFile(filepath.Join(main, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(main, "add", "f")
	run(main, "commit", "-qm", "x")
	run(main, "worktree", "add", "-q", wt)

	in, out := gitDirs(main)
	if len(in) != 1 || in[0] != filepath.Join(main, ".git") || len(out) != 0 {
		t.Errorf("plain checkout: inside %v, outside %v", in, out)
	}
	// The worktree's own folder lies inside the common one: only the common one is listed.
	in, out = gitDirs(wt)
	if len(in) != 0 || len(out) != 1 || out[0] != filepath.Join(main, ".git") {
		t.Errorf("worktree: inside %v, outside %v", in, out)
	}
	if in, out := gitDirs(base); len(in)+len(out) != 0 {
		t.Errorf("no git: inside %v, outside %v", in, out)
	}
}
