// Command nbsetup points a GoNB kernel's Go module at the workbook checkout a notebook sits in,
// so that the notebook's cells use the checkout's packages and its pinned GoMLX version. Every
// notebook's setup cell runs it:
//
//	!*go -C "$GONB_DIR" run github.com/transfer-learning-go/workbook/cmd/nbsetup
//
// (-C "$GONB_DIR": the go command builds it from the checkout the notebook sits in). It adds a
// replace and a require directive to the kernel's go.mod ($GONB_TMP_DIR) and the checkout's
// go.sum lines the kernel's go.sum lacks. Running it again changes nothing.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const module = "github.com/transfer-learning-go/workbook"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "setup cell:", err)
		os.Exit(1)
	}
}

func run() error {
	kernel := os.Getenv("GONB_TMP_DIR")
	if kernel == "" {
		return errors.New("$GONB_TMP_DIR is not set: run this from a GoNB notebook's setup cell")
	}
	root, err := checkoutRoot()
	if err != nil {
		return err
	}
	edit := exec.Command("go", "mod", "edit", "-replace="+module+"="+root, "-require="+module+"@v0.0.0")
	edit.Dir, edit.Stderr = kernel, os.Stderr
	if err := edit.Run(); err != nil {
		return fmt.Errorf("go mod edit in %s: %w", kernel, err)
	}
	if err := mergeSums(filepath.Join(kernel, "go.sum"), filepath.Join(root, "go.sum")); err != nil {
		return err
	}
	fmt.Println("workbook packages from", root)
	return nil
}

// checkoutRoot is the folder of the workbook's go.mod above the current one.
func checkoutRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+module+"\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s is not inside the workbook checkout (no go.mod of %s above it)", dir, module)
		}
	}
}

// mergeSums appends to dst the lines of src it lacks (creating dst if needed); dst is left
// untouched when it has them all.
func mergeSums(dst, src string) error {
	have := map[string]bool{}
	old, err := os.ReadFile(dst)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, l := range strings.Split(string(old), "\n") {
		have[l] = true
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	var add []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := sc.Text(); l != "" && !have[l] {
			have[l] = true
			add = append(add, l)
		}
	}
	if err := sc.Err(); err != nil || len(add) == 0 {
		return err
	}
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		old = append(old, '\n')
	}
	return os.WriteFile(dst, append(old, strings.Join(add, "\n")+"\n"...), 0o644)
}
