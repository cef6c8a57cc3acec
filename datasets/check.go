package datasets

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TrainTestDirs finds training_set/ and test_set/ for a binary classifier: under dir, else under
// $WORKBOOK_DATA, else in the shipped sample (40+40 training and 16+16 test images). A copy of
// the book's repository or archive works too (Locate finds the data set inside). It says on out
// which folder it uses.
func TrainTestDirs(dir string, out io.Writer) (trainDir, testDir string, err error) {
	root, from := dir, "--data"
	if root == "" {
		if env := os.Getenv(DataEnv); env != "" {
			root, from = env, "$"+DataEnv
		}
	}
	if root == "" {
		if root, err = SampleDir(); err != nil {
			return "", "", err
		}
		fmt.Fprintf(out, "Data: the shipped sample %s (pass --data DIR or set $%s for the full data set).\n", root, DataEnv)
	} else {
		fmt.Fprintf(out, "Data: %s (from %s).\n", root, from)
	}
	trainDir, testDir = filepath.Join(root, "training_set"), filepath.Join(root, "test_set")
	if _, err := os.Stat(trainDir); err != nil {
		if ds, lerr := Locate(root); lerr == nil {
			return ds.TrainDir, ds.TestDir, nil
		}
	}
	for _, d := range []string{trainDir, testDir} {
		st, err := os.Stat(d)
		if err != nil || !st.IsDir() {
			return "", "", fmt.Errorf("datasets: %q has no %s folder: the data folder must hold training_set/ and test_set/, each with one sub-folder per class (car/, flower/)",
				root, filepath.Base(d))
		}
	}
	return trainDir, testDir, nil
}

// CheckBinaryPair refuses data Keras would train on silently but wrongly: not exactly two
// classes (binary labels would be all 0, or 2 and more), a hidden folder counted as a class, a
// class folder without images, validation classes that do not match the training ones (labels
// would mean different things), and batches larger than a whole folder.
func CheckBinaryPair(train, test *DirectoryIterator) error {
	for _, it := range []*DirectoryIterator{train, test} {
		for _, c := range it.ClassNames() {
			if strings.HasPrefix(c, ".") {
				return fmt.Errorf("datasets: %q holds a hidden folder %q, which Keras counts as a class: remove it", it.Directory(), c)
			}
		}
		if err := it.CheckBinary(); err != nil {
			return err
		}
		counts := make([]int, len(it.ClassNames()))
		for _, l := range it.Labels() {
			counts[l]++
		}
		for i, n := range counts {
			if n == 0 {
				return fmt.Errorf("datasets: class folder %q holds no images (files must end in .jpg, .jpeg, .png, .bmp, .ppm, .tif or .tiff)",
					filepath.Join(it.Directory(), it.ClassNames()[i]))
			}
		}
	}
	if err := CheckSameClasses(train, test); err != nil {
		return err
	}
	for _, it := range []*DirectoryIterator{train, test} {
		if b := it.BatchSize(); b > it.Samples() {
			return fmt.Errorf("datasets: batch size %d is larger than the %d images in %q: every step would see the whole folder; use a batch of %d or less",
				b, it.Samples(), it.Directory(), it.Samples())
		}
	}
	return nil
}

// CheckReadable decodes every image once (in parallel) and names all that fail, so that a bad
// file stops a run before hours of training rather than at the batch that draws it.
func CheckReadable(paths []string, target [2]int, out io.Writer) error {
	start := time.Now()
	fmt.Fprintf(out, "Checking that the %d images decode...", len(paths))
	var (
		mu   sync.Mutex
		bad  []string
		next = make(chan string)
		wg   sync.WaitGroup
	)
	for range max(1, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if _, err := DefaultLoader(p, target[0], target[1]); err != nil {
					s := err.Error()
					if !strings.Contains(s, strconv.Quote(p)) {
						s = fmt.Sprintf("%q: %s", p, s)
					}
					mu.Lock()
					bad = append(bad, s)
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range paths {
		next <- p
	}
	close(next)
	wg.Wait()
	if len(bad) == 0 {
		fmt.Fprintf(out, " ok (%.1f s).\n", time.Since(start).Seconds())
		return nil
	}
	fmt.Fprintln(out, " failed.")
	slices.Sort(bad)
	const show = 20
	msg := fmt.Sprintf("datasets: %d unreadable image(s); fix or remove them:", len(bad))
	for i, b := range bad {
		if i == show {
			msg += fmt.Sprintf("\n  … and %d more", len(bad)-show)
			break
		}
		msg += "\n  " + b
	}
	return errors.New(msg)
}

// ScheduleDraws counts the images a Keras Sequence consumer draws in `batches` consecutive
// batches over n images with the given batch size, passes continuing across epochs
// (ceil(n/batch) batches per pass, the last one short, a new permutation each pass), and how
// many distinct images they cover: all n once a pass completes; otherwise the images of the
// batches drawn so far (the permutation is a bijection, so no image repeats within a pass).
func ScheduleDraws(n, batch, batches int) (draws, distinct int) {
	perPass := (n + batch - 1) / batch
	full := batches / perPass
	rest := batches % perPass
	draws = full*n + min(rest*batch, n)
	if full > 0 {
		return draws, n
	}
	return draws, min(rest*batch, n)
}
