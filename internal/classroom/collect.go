package classroom

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/transfer-learning-go/workbook/internal/grade/batch"
)

// CollectedDir is where Collect puts an exercise's notebooks, one STUDENT.ipynb each (the grader
// names each result after the file).
func CollectedDir(dir, exercise string) string {
	return filepath.Join(dir, "collected", safeID(exercise))
}

// GradesDir is where the class's grading of an exercise writes its gradebook and feedback.
func GradesDir(dir, exercise string) string {
	return filepath.Join(dir, "grades", safeID(exercise))
}

func safeID(id string) string { return strings.NewReplacer("/", "_", "..", "_").Replace(id) }

// Collect copies each student's notebook for the exercise (the file in their notebooks folder
// named like the workbook's notebook for it, e.g. 02-activity-8.01-...) into CollectedDir,
// readable by the instructor only. notebookName is that file's name. Students without the
// notebook are reported in missing.
func Collect(dir, notebookName, exercise string, log io.Writer) (files, missing []string, err error) {
	if log == nil {
		log = io.Discard
	}
	st, err := ReadState(dir)
	if err != nil {
		return nil, nil, err
	}
	out := CollectedDir(dir, exercise)
	if err := os.MkdirAll(out, 0o700); err != nil {
		return nil, nil, fmt.Errorf("classroom: %v", err)
	}
	for _, d := range []string{filepath.Dir(out), out} {
		os.Chmod(d, 0o700)
	}
	for _, s := range st.Students {
		u, err := user.Lookup(s)
		if err != nil {
			missing = append(missing, s)
			fmt.Fprintf(log, "classroom: collect: %s: no account\n", s)
			continue
		}
		src := filepath.Join(StudentWorkbook(u.HomeDir), "notebooks", notebookName)
		// Read without following a link a student may have planted in place of the notebook.
		if fi, err := os.Lstat(src); err != nil || !fi.Mode().IsRegular() {
			missing = append(missing, s)
			fmt.Fprintf(log, "classroom: collect: %s: no notebook %s\n", s, src)
			continue
		}
		dst := filepath.Join(out, s+".ipynb")
		if err := batch.CopyFile(src, dst, 0o600); err != nil {
			return nil, nil, fmt.Errorf("classroom: collect %s: %v", src, err)
		}
		files = append(files, dst)
	}
	return files, missing, nil
}

// ReturnFeedback puts each student's feedback file (FEEDBACK/STUDENT.md, as the grader writes it)
// into the student's notebooks folder as feedback-EXERCISE.md, owned by the student.
func ReturnFeedback(dir, exercise, feedbackDir string, log io.Writer) (int, error) {
	if log == nil {
		log = io.Discard
	}
	st, err := ReadState(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range st.Students {
		src := filepath.Join(feedbackDir, s+".md")
		if _, err := os.Stat(src); err != nil {
			continue
		}
		u, err := user.Lookup(s)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		nbDir := filepath.Join(StudentWorkbook(u.HomeDir), "notebooks")
		if fi, err := os.Lstat(nbDir); err != nil || !fi.IsDir() {
			fmt.Fprintf(log, "classroom: feedback: %s has no notebooks folder %s\n", s, nbDir)
			continue
		}
		dst := filepath.Join(nbDir, "feedback-"+safeID(exercise)+".md")
		os.Remove(dst) // whatever the student put there (a link included) is replaced
		if err := batch.CopyFile(src, dst, 0o644); err != nil {
			return n, fmt.Errorf("classroom: feedback for %s: %v", s, err)
		}
		if err := os.Lchown(dst, uid, gid); err != nil {
			return n, fmt.Errorf("classroom: feedback for %s: %v", s, err)
		}
		n++
	}
	return n, nil
}
