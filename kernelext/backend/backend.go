// Package backend picks the GoMLX backend the command line tool and the notebooks run on.
// Every program in the workbook gets its backend from [New] (or [Must] in a notebook cell), so
// they all follow the same rules:
//
//  1. If GOMLX_BACKEND is set (and not empty), it is passed to GoMLX unchanged, with one
//     amendment: a bare "go" backend gets the "ops_sequential" option (see below). With
//     GOMLX_BACKEND=xla:cpu or xla:cuda, GoMLX's own rules apply — including its automatic
//     download of a missing plugin unless GOMLX_NO_AUTO_INSTALL is set.
//  2. Otherwise, if an XLA PJRT plugin is installed, the XLA backend runs on it: the CUDA plugin
//     first (when an NVIDIA device is present), then the CPU plugin. The plugin is loaded by its
//     absolute path, so nothing is ever downloaded on this path. Plugins are searched where
//     go-xla searches them: the directories in PJRT_PLUGIN_LIBRARY_PATH if it is set, otherwise
//     ~/.local/lib/go-xla (and its nvidia/ subfolder), /usr/local/lib/go-xla (and nvidia/),
//     the older …/gomlx/pjrt folders, the absolute entries of LD_LIBRARY_PATH and the folders
//     listed in /etc/ld.so.conf; plus, for CUDA, the plugin a "jax-cuda12-pjrt" or
//     "jax-cuda13-pjrt" pip package installs (jax_plugins/xla_cuda*/xla_cuda_plugin.so) in
//     $VIRTUAL_ENV, ~/.local or the system's Python; for another environment, point
//     PJRT_PLUGIN_LIBRARY_PATH at its jax_plugins/xla_cuda13 folder.
//  3. Otherwise GoMLX's pure-Go backend ("go") runs the model, and one line on stderr says so.
//
// The backend is created once per process and shared: creating an XLA client is expensive and
// holds device memory. Once created, later changes to GOMLX_BACKEND have no effect.
//
// # Why "ops_sequential" for the pure-Go backend
//
// By default the pure-Go backend runs independent operations of a graph in parallel on the
// same worker pool that its matrix multiplications use to split their own work. When as many
// independent multiplications become ready at once as the pool has slots (twice the number of
// CPUs), each waits for a free worker that never comes and the execution hangs forever: 16
// independent products hang it on two cores, and a Winograd convolution of kernelext/layers
// issues 16 per layer. With ops_sequential the operations run one at a time, each still using
// every core inside. ("parallelism=-1", an unbounded pool, also avoids the hang and measured
// ~15% faster on VGG16, but the backend then prints a line on stdout and holds more buffers at
// once.)
//
// # Faster: install the XLA CPU plugin
//
// The pure-Go backend is portable but slow for convolutions (VGG16 takes about ten times
// PyTorch's CPU time). With internet access, install XLA's CPU plugin once; afterwards [New] finds it
// without any setting, offline too:
//
//	GOMLX_BACKEND=xla:cpu go run ./cmd/workbook predict --model vgg16 IMAGE.jpg
//
// runs a prediction once with XLA on the CPU, which makes GoMLX download the plugin it was
// tested with (github.com/gomlx/pjrt-cpu-binaries, v0.83.3 for go-xla v0.1.4) into
// ~/.local/lib/go-xla. go-xla's installer does the same and also installs the CUDA plugin
// with the NVIDIA libraries on a machine with an NVIDIA GPU:
//
//	go run github.com/gomlx/go-xla/cmd/pjrt_installer@latest -autoinstall
//
// The XLA backend needs cgo (it loads the plugin with dlopen). A binary built with
// CGO_ENABLED=0 (or with the noxla build tag) contains only the pure-Go backend and says so.
package backend

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/pkg/errors"
)

// Names of the environment variables this package reads.
const (
	// EnvBackend is GoMLX's backend configuration: "<name>[:<config>]", e.g. "go", "xla:cpu".
	EnvBackend = backends.ConfigEnvVar
	// EnvPluginPath is go-xla's list of folders (":"-separated) to search for PJRT plugins.
	EnvPluginPath = "PJRT_PLUGIN_LIBRARY_PATH"
)

// GoOptions is the configuration this package gives the pure-Go backend when it chooses it, and
// adds to GOMLX_BACKEND=go when no ops_* option is given. See the package documentation.
const GoOptions = "ops_sequential"

// Kind says which backend a plan selects.
type Kind int

const (
	// KindGo is GoMLX's pure-Go backend ("go", package backends/simplego).
	KindGo Kind = iota
	// KindXLACPU is XLA with the CPU PJRT plugin.
	KindXLACPU
	// KindXLACUDA is XLA with a CUDA PJRT plugin.
	KindXLACUDA
	// KindFromEnv is whatever GOMLX_BACKEND names.
	KindFromEnv
)

// Plan is the decision [New] takes before creating the backend: it is exported so a program can
// print what it is about to do (and tests can check the rules) without creating anything.
type Plan struct {
	Kind Kind
	// Config is the string given to GoMLX's backends.NewWithConfig, e.g. "go:ops_sequential" or
	// "xla:/home/me/.local/lib/go-xla/pjrt_c_api_cpu_plugin.so,shared_buffers".
	Config string
	// Plugin is the absolute path of the PJRT plugin, for KindXLACPU and KindXLACUDA (and, when
	// it can be found, for GOMLX_BACKEND=xla:cuda).
	Plugin string
	// Notice, if not empty, is printed once on stderr when the backend is created.
	Notice string
}

var (
	mu       sync.Mutex
	cached   backends.Backend
	cachedAs string // Describe's text for cached.
)

// New returns the process' backend, creating it on the first call following the rules in the
// package documentation. Later calls return the same backend. An error is not cached: a later
// call tries again (e.g. after the environment was fixed).
func New() (backends.Backend, error) {
	mu.Lock()
	defer mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	plan, err := PlanFromEnvironment()
	if err != nil {
		return nil, err
	}
	b, err := create(plan)
	if err != nil {
		return nil, err
	}
	if plan.Notice != "" {
		fmt.Fprintln(os.Stderr, plan.Notice)
	}
	cached, cachedAs = b, describePlan(plan, b)
	return b, nil
}

// Must is New for notebook cells: it panics on error.
func Must() backends.Backend {
	b, err := New()
	if err != nil {
		panic(err)
	}
	return b
}

// Describe says in one line which backend b is and why it runs that way, e.g.
// "xla:cuda (PJRT plugin /root/.local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so)" or
// "go (pure-Go backend, ops_sequential)". For a backend not created by [New] it falls back on
// the backend's own description.
func Describe(b backends.Backend) string {
	if b == nil {
		return "no backend"
	}
	mu.Lock()
	defer mu.Unlock()
	if b == cached {
		return cachedAs
	}
	return b.Name() + " (" + b.Description() + ")"
}

// create builds the backend for plan, turning GoMLX's panics into errors.
func create(plan Plan) (b backends.Backend, err error) {
	if plan.Plugin != "" && isCUDAName(plan.Plugin) {
		setCUDADataDir(plan.Plugin)
	}
	defer func() {
		if r := recover(); r != nil {
			err = errors.Errorf("%v", r)
		}
		if err != nil {
			err = errors.WithMessagef(err, "backend: creating GoMLX backend %q", plan.Config)
			if plan.Kind == KindXLACUDA || plan.Kind == KindXLACPU {
				err = errors.WithMessagef(err, "(set %s=go to use the pure-Go backend instead)", EnvBackend)
			}
		}
	}()
	return backends.NewWithConfig(plan.Config)
}

// PlanFromEnvironment applies the package's rules to the process' environment and file system.
func PlanFromEnvironment() (Plan, error) {
	return makePlan(systemProbe())
}

// probe is what the rules look at; tests replace its parts.
type probe struct {
	getenv    func(string) (string, bool)
	home      string
	ldConf    string   // path of ld.so.conf ("" to skip)
	pyGlobs   []string // glob patterns of jax CUDA plugins
	hasGPU    func() bool
	xlaLinked bool
}

func makePlan(p probe) (Plan, error) {
	if cfg, ok := p.getenv(EnvBackend); ok && strings.TrimSpace(cfg) != "" {
		plan, err := planFromConfig(strings.TrimSpace(cfg), p.xlaLinked)
		if err == nil && plan.Kind == KindFromEnv && plan.Plugin == "" && strings.HasPrefix(plan.Config, "xla:cuda") {
			// Where GoMLX will find its "cuda" plugin, for setCUDADataDir.
			plan.Plugin = findPlugin(searchDirs(p), cudaNames[:4])
		}
		return plan, err
	}
	if !p.xlaLinked {
		return Plan{
			Kind:   KindGo,
			Config: simplego.BackendName + ":" + GoOptions,
			Notice: "backend: this program was built without XLA (without cgo, or with the noxla tag notebook kernels use " +
				"where no PJRT plugin is installed); using GoMLX's pure-Go backend " +
				"(slow for convolutions). See README \"Faster: install the XLA CPU plugin\".",
		}, nil
	}
	dirs := searchDirs(p)
	if p.hasGPU() {
		if path := findPlugin(dirs, cudaNames); path != "" {
			return Plan{Kind: KindXLACUDA, Config: "xla:" + path, Plugin: path}, nil
		}
		if path := findGlob(p.pyGlobs); path != "" {
			return Plan{Kind: KindXLACUDA, Config: "xla:" + path, Plugin: path}, nil
		}
	}
	if path := findPlugin(dirs, cpuNames); path != "" {
		// GoMLX shares host memory with the CPU plugin only when it is loaded by the name "cpu";
		// loaded by path it must be told.
		return Plan{Kind: KindXLACPU, Config: "xla:" + path + ",shared_buffers", Plugin: path}, nil
	}
	return Plan{
		Kind:   KindGo,
		Config: simplego.BackendName + ":" + GoOptions,
		Notice: "backend: no PJRT plugin found; using GoMLX's pure-Go backend (slow for convolutions). " +
			"See README \"Faster: install the XLA CPU plugin\".",
	}, nil
}

// planFromConfig honours GOMLX_BACKEND.
func planFromConfig(cfg string, xlaLinked bool) (Plan, error) {
	name, opts, _ := strings.Cut(cfg, ":")
	switch name {
	case simplego.BackendName:
		if !hasOpsOption(opts) {
			if opts == "" {
				opts = GoOptions
			} else {
				opts += "," + GoOptions
			}
		}
		return Plan{Kind: KindGo, Config: name + ":" + opts}, nil
	case "xla", "stablehlo", "hlo", "shlo":
		if !xlaLinked {
			return Plan{}, errors.Errorf("backend: %s=%q, but this binary was built without cgo (or with the noxla tag), "+
				"which the XLA backend needs; set %s=go or rebuild with CGO_ENABLED=1", EnvBackend, cfg, EnvBackend)
		}
		plan := Plan{Kind: KindFromEnv, Config: cfg}
		if path, _, _ := strings.Cut(opts, ","); strings.HasPrefix(path, "/") && isCUDAName(path) {
			plan.Kind, plan.Plugin = KindXLACUDA, path
		}
		return plan, nil
	}
	return Plan{Kind: KindFromEnv, Config: cfg}, nil
}

// hasOpsOption reports whether the go backend options already choose how ops are scheduled.
func hasOpsOption(opts string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == "ops_sequential" || o == "ops_parallel" {
			return true
		}
	}
	return false
}

func describePlan(plan Plan, b backends.Backend) string {
	switch plan.Kind {
	case KindGo:
		_, opts, _ := strings.Cut(plan.Config, ":")
		return fmt.Sprintf("go (pure-Go backend, %s)", opts)
	case KindXLACPU:
		return fmt.Sprintf("xla:cpu (PJRT plugin %s)", plan.Plugin)
	case KindXLACUDA:
		return fmt.Sprintf("xla:cuda (PJRT plugin %s)", plan.Plugin)
	}
	return fmt.Sprintf("%s (from %s=%s: %s)", b.Name(), EnvBackend, plan.Config, b.Description())
}

// IsPureGo reports whether b is GoMLX's pure-Go backend ("go", package backends/simplego),
// whose scalar matrix multiplication makes the workbook run frozen VGG16/ResNet50 layers on
// its own CPU engine instead (see kernelext/applications). This package is the only one
// that looks at which backend it is.
func IsPureGo(b backends.Backend) bool {
	_, ok := b.(*simplego.Backend)
	return ok
}
