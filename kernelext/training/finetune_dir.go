package training

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/transfer-learning-go/workbook/datasets"
	"github.com/transfer-learning-go/workbook/internal/atomicfile"
	"github.com/transfer-learning-go/workbook/kernelext"
	"github.com/transfer-learning-go/workbook/kernelext/applications"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
)

// The files of a run folder: the settings, and stage 1's checkpoint — of the whole model where
// it trains whole, of the head alone where the head trains apart from the frozen base — and
// stage 2's.
const (
	runSettings = "finetune.json"
	stage1Whole = "stage1.ckpt"
	stage1Head  = "stage1-head.ckpt"
	stage2File  = "stage2.ckpt"
)

// runConfig is what a run depends on; it is written into the run folder so that Resume refuses
// to continue a run made with other settings.
type runConfig struct {
	Model        string  `json:"model"`
	Weights      string  `json:"weights"` // the weights' identity (content digest or seed)
	Size         int     `json:"size"`
	Epochs       int     `json:"epochs"`
	Steps        int     `json:"steps"`
	ValSteps     int     `json:"val_steps"`
	Batch        int     `json:"batch"`
	Stage2Epochs int     `json:"stage2_epochs"`
	Unfreeze     string  `json:"unfreeze,omitempty"`
	LR2          float64 `json:"lr2,omitempty"`
	Cached       string  `json:"cached_features"`
	Seed         int64   `json:"seed"`
	TrainDir     string  `json:"train_dir"`
	TestDir      string  `json:"test_dir"`
}

func (f FineTuning) config(weightsDigest, trainDir, testDir string) runConfig {
	c := runConfig{Model: f.Network, Weights: weightsDigest, Size: f.Size, Epochs: f.Schedule.Epochs, Steps: f.Schedule.Steps,
		ValSteps: f.Schedule.ValSteps, Batch: f.Schedule.Batch, Stage2Epochs: f.Stage2Epochs, Cached: "off", Seed: f.Seed,
		TrainDir: absPath(trainDir), TestDir: absPath(testDir)}
	if f.Cached {
		c.Cached = strconv.Itoa(f.CachedCopies)
	}
	if f.Stage2Epochs > 0 {
		c.Unfreeze, c.LR2 = f.Unfreeze, f.LR2
	}
	return c
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// prepareDir creates the run folder and records the run's settings; with Resume, it insists
// the settings are those of the run being continued, and that stage 1's checkpoint is of the
// kind this run writes (it is not when the backend changed between the runs).
func (f FineTuning) prepareDir(ft *FineTuneModel, train, test *datasets.DirectoryIterator, headApart bool) error {
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return fmt.Errorf("training: run folder: %w", err)
	}
	cfg := f.config(ft.Weights.Digest, train.Directory(), test.Directory())
	path := filepath.Join(f.Dir, runSettings)
	want, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	prev, err := os.ReadFile(path)
	switch {
	case err == nil && f.Resume:
		var old runConfig
		if err := json.Unmarshal(prev, &old); err != nil {
			return fmt.Errorf("training: %s: %v", path, err)
		}
		if old != cfg {
			saved, _ := json.Marshal(old)
			now, _ := json.Marshal(cfg)
			return fmt.Errorf("training: --resume: %s was written by a run with other settings:\n  saved: %s\n  now:   %s\nrerun with the same flags, or use another --checkpoint-dir",
				path, saved, now)
		}
		return checkStage1Kind(f.Dir, map[bool]string{false: stage1Whole, true: stage1Head}[headApart])
	case err == nil:
		for _, name := range []string{stage1Whole, stage1Head, stage2File} {
			if _, err := os.Stat(filepath.Join(f.Dir, name)); err == nil {
				return fmt.Errorf("training: %s already holds a run's checkpoints: pass --resume to continue it, or choose another --checkpoint-dir", f.Dir)
			}
		}
	case errors.Is(err, os.ErrNotExist):
		if f.Resume {
			fmt.Fprintf(f.Out, "No run to resume in %s: starting from the beginning.\n", f.Dir)
		}
	default:
		return fmt.Errorf("training: %w", err)
	}
	return atomicfile.WriteFile(path, append(want, '\n'))
}

// checkStage1Kind refuses to resume a run whose stage 1 checkpoint is of the other kind:
// starting over silently would throw the finished epochs away.
func checkStage1Kind(dir, want string) error {
	other := map[string]string{stage1Whole: stage1Head, stage1Head: stage1Whole}[want]
	if _, err := os.Stat(filepath.Join(dir, want)); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, other)); err != nil {
		return nil
	}
	kind := map[string]string{stage1Whole: "the whole model, its base computed in GoMLX",
		stage1Head: "the head alone, trained apart from the frozen base"}
	return fmt.Errorf("training: --resume: %s holds %s (%s), but this run checkpoints %s (%s): resume with the backend the run was started with ($%s)",
		dir, other, kind[other], want, kind[want], backend.EnvBackend)
}

// InCache returns f with its run folder in the workbook's cache (nbcache.Subdir("finetune"),
// listed and cleared by `workbook cache`; the system's temporary folder when WORKBOOK_CACHE=off), named by every setting the run
// depends on, and Resume on: what a notebook needs, where every cell is a new program — the
// run trains once, an interrupted one continues after its last completed epoch, and later cells
// read it back. Delete the folder (RunDir) to train again.
func (f FineTuning) InCache() (FineTuning, error) {
	f = f.withDefaults()
	root := filepath.Join(os.TempDir(), "workbook-finetune")
	if nbcache.Enabled() {
		var err error
		if root, err = nbcache.Subdir("finetune"); err != nil {
			return f, err
		}
	}
	spec := f.Weights
	if spec == "none" {
		spec = ""
	}
	lazy, err := applications.NewLazy(f.Network, applications.WithWeights(spec), applications.WithSeed(f.Seed))
	if err != nil {
		return f, err
	}
	info, err := lazy.Weights()
	if err != nil {
		return f, err
	}
	data := f.Data
	if data == "" {
		data = os.Getenv(datasets.DataEnv)
	}
	key, _ := json.Marshal(f.config(info.Digest, data, ""))
	f.Dir, f.Resume = filepath.Join(root, "run-"+nbcache.HashBytes(key)[:16]), true
	return f, nil
}

// stage1Checkpoint is the run folder's stage 1 checkpoint (of the head alone, or of the whole
// model), "" when there is none yet.
func (f FineTuning) stage1Checkpoint() string {
	for _, name := range []string{stage1Head, stage1Whole} {
		if _, err := os.Stat(filepath.Join(f.Dir, name)); err == nil {
			return filepath.Join(f.Dir, name)
		}
	}
	return ""
}

// lastCheckpoint is the run folder's checkpoint of the last stage this run trains.
func (f FineTuning) lastCheckpoint() string {
	if f.Stage2Epochs > 0 {
		return filepath.Join(f.Dir, stage2File)
	}
	return f.stage1Checkpoint()
}

// finished returns the History of a run completed in f.Dir, read from the checkpoints' headers
// (milliseconds, even for VGG16's 540 MB), or nil.
func (f FineTuning) finished() *History {
	h1, err := ReadCheckpointInfo(f.stage1Checkpoint())
	if err != nil || h1.EpochsDone < f.Schedule.Epochs {
		return nil
	}
	if f.Stage2Epochs == 0 {
		return h1.History
	}
	h2, err := ReadCheckpointInfo(filepath.Join(f.Dir, stage2File))
	if err != nil || h2.EpochsDone < f.Schedule.Epochs+f.Stage2Epochs {
		return nil
	}
	h := &History{}
	h.extend(h1.History)
	h.extend(h2.History)
	return h
}

// History trains once in the cache (InCache) and returns the run's History (both stages',
// epochs numbered on); once the run is finished it is read back in milliseconds.
func (f FineTuning) History() (*History, error) {
	f, err := f.InCache()
	if err != nil {
		return nil, err
	}
	if h := f.finished(); h != nil {
		return h, nil
	}
	fmt.Fprintln(f.Out, "Training; the run is saved after every epoch in", f.Dir)
	t, err := f.Run()
	if err != nil {
		return nil, err
	}
	return t.History, nil
}

// MustHistory is History for notebook cells: it panics on error.
func (f FineTuning) MustHistory() *History {
	h, err := f.History()
	if err != nil {
		panic(err)
	}
	return h
}

// Model is the trained model of the run in the cache (History trains it if it has not been):
// the whole network with its trained head, compiled with the run's last optimizer, as
// model.save would keep it.
func (f FineTuning) Model() (*Model, error) {
	if _, err := f.History(); err != nil {
		return nil, err
	}
	f, err := f.InCache()
	if err != nil {
		return nil, err
	}
	f.Out = io.Discard
	t, err := f.Run() // resumes the finished run: no step is taken again
	if err != nil {
		return nil, err
	}
	return t.Model, nil
}

// MustModel is Model for notebook cells: it panics on error.
func (f FineTuning) MustModel() *Model {
	m, err := f.Model()
	if err != nil {
		panic(err)
	}
	return m
}

// Untrained is the run's model before training: the pretrained base and the head's initial
// weights (to compare with Model's).
func (f FineTuning) Untrained() (*Model, error) {
	f = f.withDefaults()
	b, err := backend.New()
	if err != nil {
		return nil, err
	}
	ft, err := NewFineTuneModel(b, f.Network, f.Weights, f.Size, f.Seed)
	if err != nil {
		return nil, err
	}
	return NewApplicationModel(b, ft.App)
}

// MustUntrained is Untrained for notebook cells: it panics on error.
func (f FineTuning) MustUntrained() *Model {
	m, err := f.Untrained()
	if err != nil {
		panic(err)
	}
	return m
}

// Predict is the trained model's predict(x) for the run in the cache (History trains it if it
// has not been), itself cached by the checkpoint's content and x: later cells get it in
// milliseconds.
func (f FineTuning) Predict(x *kernelext.Array) (*kernelext.Array, error) {
	if _, err := f.History(); err != nil {
		return nil, err
	}
	f, err := f.InCache()
	if err != nil {
		return nil, err
	}
	sum, err := nbcache.FileHash(f.lastCheckpoint())
	if err != nil {
		return nil, err
	}
	key := "finetune/predict/v1/" + sum + "/" + kernelext.TupleString(x.Shape) + "/" + nbcache.HashFloat32s(x.Data)
	data, err := nbcache.Cached(key, func() ([]float32, error) {
		m, err := f.Model()
		if err != nil {
			return nil, err
		}
		y, err := m.Predict(x)
		if err != nil {
			return nil, err
		}
		return y.Data, nil
	})
	if err != nil {
		return nil, err
	}
	return &kernelext.Array{Shape: []int{x.Shape[0], len(data) / max(x.Shape[0], 1)}, Data: data}, nil
}

// MustPredict is Predict for notebook cells: it panics on error.
func (f FineTuning) MustPredict(x *kernelext.Array) *kernelext.Array {
	y, err := f.Predict(x)
	if err != nil {
		panic(err)
	}
	return y
}
