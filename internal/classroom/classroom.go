// Package classroom runs a workshop on one machine: a JupyterHub for a list of students, each
// with a Linux account, a private copy of the workbook, the GoNB kernel and shared read-only
// weights and Go caches; and it collects one exercise's notebooks and returns the grader's
// feedback to each student.
//
// Everything the class needs lives in one class folder, so that the hub can be stopped and
// started again without losing work (the hub's database and cookie secret are kept there):
//
//	CLASS/            0711  the instructor's; students may only pass through to shared/
//	  passwords.txt   0600  "student password" lines, written once when an account is created
//	  state.json      0600  students, address, cgroups of the running class
//	  hub/            0700  jupyterhub_config.py, jupyterhub.sqlite, cookie secret, hub.log, hub.pid
//	  shared/         0755  read-only for students: bin/ (go tools, gonb), jupyter/ (kernelspec),
//	                        gomodcache/ (the module cache; its download cache is the offline proxy)
//	  gocache/        0755  the build cache template every student's GOCACHE is seeded from
//	  collected/ID/   0700  the notebooks collect gathered
//	  grades/ID/      0700  the grader's gradebook, report and feedback
//
// Students' homes are 0700; their workbook copy holds no solved notebooks and no hidden checks.
package classroom

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Options describe a class.
type Options struct {
	Dir      string   // the class folder (created 0711)
	Repo     string   // the workbook checkout students get a copy of
	Students []string // Linux user names
	IP       string   // where the hub listens (default 127.0.0.1)
	Port     int      // default 8000
	// Authenticator is "pam" (the default: students log in with the generated passwords) or
	// "dummy" (any password; for tests only, refused on a non-loopback address).
	Authenticator string
	// WeightsDir is the folder of Keras weights files students read (default: WORKBOOK_WEIGHTS_DIR,
	// else ~/.keras/models of the instructor); it is made readable, never writable, by students.
	WeightsDir string
	// GoCacheTemplate seeds each student's Go build cache (hard links to read-only entries). By
	// default CLASS/gocache, compiled at start with the students' own build settings
	// (buildTemplate), so a new student starts with GoMLX and the workbook compiled.
	GoCacheTemplate string
	// Memory is the per-student memory limit (hub server, kernels, compiler) in bytes; 0: none.
	Memory int64
	// CPUs caps each student's processes at this many cores' worth of CPU time (0: no cap). With
	// or without a cap, students who compute at the same time share the CPU equally: each is
	// one cgroup of the same weight. It needs Memory: one cgroup holds both limits.
	CPUs float64
	Log  io.Writer
}

// Defaults.
const (
	DefaultIP   = "127.0.0.1"
	DefaultPort = 8000
)

var userRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,30}$`)

// ParseStudents reads a student list: a file with one name per line ('#' starts a comment), or a
// comma-separated list. Names must be valid Linux user names and may not repeat.
func ParseStudents(spec string) ([]string, error) {
	var raw []string
	if st, err := os.Stat(spec); err == nil && !st.IsDir() {
		f, err := os.Open(spec)
		if err != nil {
			return nil, fmt.Errorf("classroom: students: %v", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			if line = strings.TrimSpace(line); line != "" {
				raw = append(raw, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("classroom: students: %s: %v", spec, err)
		}
	} else {
		for _, s := range strings.Split(spec, ",") {
			if s = strings.TrimSpace(s); s != "" {
				raw = append(raw, s)
			}
		}
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("classroom: students: no names in %q", spec)
	}
	seen := map[string]bool{}
	for _, s := range raw {
		switch {
		case !userRE.MatchString(s):
			return nil, fmt.Errorf("classroom: student %q is not a valid Linux user name (lower-case letters, digits, _ and -, starting with a letter or _)", s)
		case s == "root":
			return nil, errors.New("classroom: student \"root\" is not allowed")
		case seen[s]:
			return nil, fmt.Errorf("classroom: student %q is listed twice", s)
		}
		seen[s] = true
	}
	return raw, nil
}

// State is what a running (or stopped) class remembers in state.json.
type State struct {
	Students []string            `json:"students"`
	IP       string              `json:"ip"`
	Port     int                 `json:"port"`
	Auth     string              `json:"authenticator"`
	Cgroups  map[string][]string `json:"cgroups,omitempty"` // student -> cgroup folders
}

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// ReadState reads a class folder's state.json.
func ReadState(dir string) (*State, error) {
	b, err := os.ReadFile(statePath(dir))
	if err != nil {
		return nil, fmt.Errorf("classroom: %s is not a class folder: %v", dir, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("classroom: %s: %v", statePath(dir), err)
	}
	return &s, nil
}

func writeState(dir string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(statePath(dir), b, 0o600)
}

func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("classroom: write %s: %v", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("classroom: write %s: %v", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("classroom: write %s: %v", path, err)
	}
	return nil
}

// Layout helpers.
func hubDir(dir string) string    { return filepath.Join(dir, "hub") }
func sharedDir(dir string) string { return filepath.Join(dir, "shared") }
func sharedModCache(dir string) string {
	return filepath.Join(sharedDir(dir), "gomodcache")
}

// PasswordsFile is the instructor-only file of generated passwords.
func PasswordsFile(dir string) string { return filepath.Join(dir, "passwords.txt") }

// HubLog is the hub's log file.
func HubLog(dir string) string { return filepath.Join(hubDir(dir), "hub.log") }

// StudentWorkbook is a student's copy of the workbook.
func StudentWorkbook(home string) string { return filepath.Join(home, "workbook") }
