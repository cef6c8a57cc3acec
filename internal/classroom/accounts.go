package classroom

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// account is a student's Linux account.
type account struct {
	Name     string
	UID, GID int
	Home     string
}

// ensureAccount returns the student's account, creating it (with a home folder) if it does not
// exist yet. The home folder is made 0700 either way: students must not read each other's work.
func ensureAccount(name string) (*account, bool, error) {
	created := false
	u, err := user.Lookup(name)
	if err != nil {
		if _, ok := err.(user.UnknownUserError); !ok {
			return nil, false, fmt.Errorf("classroom: look up user %s: %v", name, err)
		}
		if out, err := exec.Command("useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name).CombinedOutput(); err != nil {
			return nil, false, fmt.Errorf("classroom: useradd %s: %v: %s", name, err, bytes.TrimSpace(out))
		}
		created = true
		if u, err = user.Lookup(name); err != nil {
			return nil, false, fmt.Errorf("classroom: user %s after useradd: %v", name, err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if uid == 0 {
		return nil, false, fmt.Errorf("classroom: student %s has uid 0", name)
	}
	a := &account{Name: name, UID: uid, GID: gid, Home: u.HomeDir}
	if err := os.MkdirAll(a.Home, 0o700); err != nil {
		return nil, false, fmt.Errorf("classroom: home of %s: %v", name, err)
	}
	if err := os.Chown(a.Home, uid, gid); err != nil {
		return nil, false, fmt.Errorf("classroom: home of %s: %v", name, err)
	}
	if err := os.Chmod(a.Home, 0o700); err != nil {
		return nil, false, fmt.Errorf("classroom: home of %s: %v", name, err)
	}
	return a, created, nil
}

// readPasswords reads the passwords file ("name password" lines); a missing file is empty.
func readPasswords(path string) (map[string]string, error) {
	m := map[string]string{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("classroom: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, pw, ok := strings.Cut(strings.TrimSpace(sc.Text()), " "); ok {
			m[name] = pw
		}
	}
	return m, sc.Err()
}

// Password returns a student's generated password from the class's passwords file.
func Password(dir, student string) (string, error) {
	m, err := readPasswords(PasswordsFile(dir))
	if err != nil {
		return "", err
	}
	pw, ok := m[student]
	if !ok {
		return "", fmt.Errorf("classroom: no password for %s in %s", student, PasswordsFile(dir))
	}
	return pw, nil
}

// ensurePasswords gives every student without an entry in the passwords file a new random
// password (set with chpasswd) and rewrites the file, 0600. Existing entries are left alone, so
// a restarted class keeps its passwords.
func ensurePasswords(dir string, students []string) error {
	path := PasswordsFile(dir)
	m, err := readPasswords(path)
	if err != nil {
		return err
	}
	var set bytes.Buffer
	for _, s := range students {
		if _, ok := m[s]; ok {
			continue
		}
		m[s] = newPassword()
		fmt.Fprintf(&set, "%s:%s\n", s, m[s])
	}
	if set.Len() == 0 {
		return os.Chmod(path, 0o600)
	}
	cmd := exec.Command("chpasswd")
	cmd.Stdin = &set
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("classroom: chpasswd: %v: %s", err, bytes.TrimSpace(out))
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", n, m[n])
	}
	return writeFileAtomic(path, b.Bytes(), 0o600)
}

// newPassword is 12 characters from an alphabet without look-alikes (about 62 bits).
func newPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY346789"
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// studentTrees are the parts of the checkout a student's copy holds: what the notebooks import
// and the notebooks themselves, with cmd/nbsetup, which every notebook's setup cell runs.
// solutions/ contributes only the self-check package and its checks files with the hidden checks
// removed; the solved notebooks and the other commands stay with the instructor.
var studentTrees = []string{"go.mod", "go.sum", "README.md", "cmd/nbsetup", "datasets", "internal", "kernelext", "weights", "notebooks", "solutions/check", "solutions/checks"}

// copyWorkbook gives a student a private, writable copy of the workbook. An existing copy is left
// as it is: it holds the student's work.
func copyWorkbook(repo string, a *account) error {
	return CopyWorkbook(repo, StudentWorkbook(a.Home), a.UID, a.GID)
}

// CopyWorkbook writes a student's copy of the workbook at dst, owned by uid:gid (the single-user
// image's build uses it too). An existing dst is left as it is.
func CopyWorkbook(repo, dst string, uid, gid int) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	tmp := dst + ".partial"
	os.RemoveAll(tmp)
	for _, rel := range studentTrees {
		src := filepath.Join(repo, rel)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, werr error) error {
			if werr != nil {
				return werr
			}
			r, _ := filepath.Rel(repo, p)
			target := filepath.Join(tmp, r)
			if strings.HasPrefix(d.Name(), ".") && p != src {
				if d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return os.MkdirAll(target, 0o755)
			}
			if !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if filepath.Dir(r) == filepath.Join("solutions", "checks") && strings.HasSuffix(r, ".json") {
				if b, err = withoutHiddenChecks(b); err != nil {
					return fmt.Errorf("%s: %v", r, err)
				}
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		})
		if err != nil {
			return fmt.Errorf("classroom: copy the workbook to %s: %v", dst, err)
		}
	}
	if err := chownTree(tmp, uid, gid); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("classroom: copy the workbook to %s: %v", dst, err)
	}
	return nil
}

// withoutHiddenChecks removes the checks marked hidden from a checks file: students' self-checks
// run only the visible ones, and the hidden ones must stay the instructor's.
func withoutHiddenChecks(b []byte) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var checks []map[string]json.RawMessage
	if err := json.Unmarshal(doc["checks"], &checks); err != nil {
		return nil, fmt.Errorf("checks: %v", err)
	}
	kept := checks[:0]
	for _, c := range checks {
		if string(c["hidden"]) != "true" {
			kept = append(kept, c)
		}
	}
	raw, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	doc["checks"] = raw
	return json.MarshalIndent(doc, "", "  ")
}

func chownTree(root string, uid, gid int) error {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("classroom: chown %s: %v", root, err)
	}
	return nil
}
