package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProbe returns a probe over a scratch file system: env holds the environment, home is a
// temporary home folder, and there is no ld.so.conf unless a test writes one.
func fakeProbe(t *testing.T, env map[string]string, gpu bool) (probe, string) {
	t.Helper()
	home := t.TempDir()
	return probe{
		getenv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
		home:      home,
		hasGPU:    func() bool { return gpu },
		xlaLinked: true,
		pyGlobs:   jaxPluginGlobs(home, ""),
	}, home
}

// touch creates an empty file (and its folders): plugins are only loaded after planning.
func touch(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustPlan(t *testing.T, p probe) Plan {
	t.Helper()
	plan, err := makePlan(p)
	if err != nil {
		t.Fatalf("makePlan: %v", err)
	}
	return plan
}

func TestPlanNoPluginUsesGo(t *testing.T) {
	p, _ := fakeProbe(t, map[string]string{}, true)
	plan := mustPlan(t, p)
	if plan.Kind != KindGo || plan.Config != "go:"+GoOptions {
		t.Errorf("got %+v, want the go backend with %q", plan, GoOptions)
	}
	if !strings.Contains(plan.Notice, "no PJRT plugin found") || !strings.Contains(plan.Notice, "Faster: install the XLA CPU plugin") {
		t.Errorf("notice %q should say why and point to the README", plan.Notice)
	}
}

func TestPlanCPUPluginInGoXLAHome(t *testing.T) {
	p, home := fakeProbe(t, map[string]string{}, false)
	want := touch(t, filepath.Join(home, ".local/lib/go-xla/pjrt_c_api_cpu_plugin.so"))
	plan := mustPlan(t, p)
	if plan.Kind != KindXLACPU || plan.Plugin != want || plan.Config != "xla:"+want+",shared_buffers" || plan.Notice != "" {
		t.Errorf("got %+v, want xla cpu at %s", plan, want)
	}
}

func TestPlanVersionedCPUPlugin(t *testing.T) {
	p, home := fakeProbe(t, map[string]string{}, false)
	want := touch(t, filepath.Join(home, ".local/lib/go-xla/pjrt_c_api_cpu_v0.83.3_plugin.so"))
	if plan := mustPlan(t, p); plan.Plugin != want {
		t.Errorf("got %+v, want %s", plan, want)
	}
}

func TestPlanCUDAFirstOnlyWithGPU(t *testing.T) {
	for _, gpu := range []bool{true, false} {
		p, home := fakeProbe(t, map[string]string{}, gpu)
		cpu := touch(t, filepath.Join(home, ".local/lib/go-xla/pjrt_c_api_cpu_plugin.so"))
		cuda := touch(t, filepath.Join(home, ".local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so"))
		plan := mustPlan(t, p)
		if gpu && (plan.Kind != KindXLACUDA || plan.Plugin != cuda || plan.Config != "xla:"+cuda) {
			t.Errorf("with a GPU: got %+v, want cuda at %s", plan, cuda)
		}
		if !gpu && (plan.Kind != KindXLACPU || plan.Plugin != cpu) {
			t.Errorf("without a GPU: got %+v, want cpu at %s", plan, cpu)
		}
	}
}

func TestPlanJaxCUDAPlugin(t *testing.T) {
	p, home := fakeProbe(t, map[string]string{}, true)
	want := touch(t, filepath.Join(home, ".local/lib/python3.11/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so"))
	if plan := mustPlan(t, p); plan.Kind != KindXLACUDA || plan.Plugin != want {
		t.Errorf("got %+v, want jax's cuda plugin %s", plan, want)
	}
}

func TestPlanPluginPathEnvReplacesDefaults(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	p, home := fakeProbe(t, map[string]string{EnvPluginPath: dir1 + "::" + dir2}, false)
	touch(t, filepath.Join(home, ".local/lib/go-xla/pjrt_c_api_cpu_plugin.so")) // Not searched.
	plan := mustPlan(t, p)
	if plan.Kind != KindGo {
		t.Fatalf("got %+v: the default folders must not be searched when %s is set", plan, EnvPluginPath)
	}
	want := touch(t, filepath.Join(dir2, "pjrt-plugin-cpu.so"))
	if plan = mustPlan(t, p); plan.Plugin != want {
		t.Errorf("got %+v, want %s", plan, want)
	}
	first := touch(t, filepath.Join(dir1, "pjrt_c_api_cpu_plugin.so"))
	if plan = mustPlan(t, p); plan.Plugin != first {
		t.Errorf("got %+v, want the first folder's %s", plan, first)
	}
}

func TestPlanLdLibraryPathAndLdSoConf(t *testing.T) {
	ldDir, confDir, incDir := t.TempDir(), t.TempDir(), t.TempDir()
	p, _ := fakeProbe(t, map[string]string{"LD_LIBRARY_PATH": "relative/ignored:" + ldDir}, false)
	conf := filepath.Join(confDir, "ld.so.conf")
	if err := os.WriteFile(filepath.Join(confDir, "x.conf"), []byte("# comment\n"+incDir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("include "+filepath.Join(confDir, "*.conf")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.ldConf = conf
	dirs := searchDirs(p)
	if !containsInOrder(dirs, ldDir, incDir) {
		t.Errorf("search folders %v should hold %s, then %s (from the ld.so.conf include)", dirs, ldDir, incDir)
	}
	want := touch(t, filepath.Join(incDir, "pjrt_c_api_cpu_plugin.so"))
	if plan := mustPlan(t, p); plan.Plugin != want {
		t.Errorf("got %+v, want %s", plan, want)
	}
}

func containsInOrder(list []string, items ...string) bool {
	i := 0
	for _, s := range list {
		if i < len(items) && s == items[i] {
			i++
		}
	}
	return i == len(items)
}

func TestPlanDirectoryNamedLikeAPluginIsSkipped(t *testing.T) {
	p, home := fakeProbe(t, map[string]string{}, false)
	if err := os.MkdirAll(filepath.Join(home, ".local/lib/go-xla/pjrt_c_api_cpu_plugin.so"), 0o755); err != nil {
		t.Fatal(err)
	}
	if plan := mustPlan(t, p); plan.Kind != KindGo {
		t.Errorf("got %+v, want go", plan)
	}
}

func TestPlanWithoutXLA(t *testing.T) {
	p, home := fakeProbe(t, map[string]string{}, false)
	touch(t, filepath.Join(home, ".local/lib/go-xla/pjrt_c_api_cpu_plugin.so"))
	p.xlaLinked = false
	plan := mustPlan(t, p)
	if plan.Kind != KindGo || !strings.Contains(plan.Notice, "without cgo") {
		t.Errorf("got %+v, want go with a notice about cgo", plan)
	}
	p.getenv = func(k string) (string, bool) {
		if k == EnvBackend {
			return "xla:cpu", true
		}
		return "", false
	}
	if _, err := makePlan(p); err == nil || !strings.Contains(err.Error(), "cgo") {
		t.Errorf("GOMLX_BACKEND=xla:cpu without XLA linked: got err=%v, want one naming cgo", err)
	}
}

func TestPlanFromGOMLXBackend(t *testing.T) {
	for _, c := range []struct{ env, config string }{
		{"go", "go:ops_sequential"},
		{"go:parallelism=4", "go:parallelism=4,ops_sequential"},
		{"go:ops_parallel", "go:ops_parallel"},
		{"go:ops_sequential,dotgeneral_large", "go:ops_sequential,dotgeneral_large"},
		{"xla:cpu", "xla:cpu"},
		{" xla:cuda ", "xla:cuda"},
		{"xla:/opt/x/pjrt_c_api_cuda_plugin.so", "xla:/opt/x/pjrt_c_api_cuda_plugin.so"},
	} {
		p, home := fakeProbe(t, map[string]string{EnvBackend: c.env}, true)
		touch(t, filepath.Join(home, ".local/lib/go-xla/pjrt_c_api_cpu_plugin.so")) // Ignored.
		plan := mustPlan(t, p)
		if plan.Config != c.config || plan.Notice != "" {
			t.Errorf("%s=%q: got %+v, want config %q", EnvBackend, c.env, plan, c.config)
		}
	}
	// GOMLX_BACKEND=xla:cuda: the config stays, the plugin GoMLX will load is located.
	p, home := fakeProbe(t, map[string]string{EnvBackend: "xla:cuda"}, true)
	cuda := touch(t, filepath.Join(home, ".local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so"))
	if plan := mustPlan(t, p); plan.Config != "xla:cuda" || plan.Plugin != cuda {
		t.Errorf("xla:cuda: got %+v, want config xla:cuda and plugin %s", plan, cuda)
	}
	// Empty means unset.
	p, _ = fakeProbe(t, map[string]string{EnvBackend: ""}, false)
	if plan := mustPlan(t, p); plan.Kind != KindGo || plan.Notice == "" {
		t.Errorf("empty %s: got %+v, want the automatic choice", EnvBackend, plan)
	}
}

func TestSetCUDADataDir(t *testing.T) {
	root := t.TempDir()
	plugin := touch(t, filepath.Join(root, "go-xla/nvidia/pjrt_c_api_cuda_plugin.so"))
	t.Setenv("XLA_FLAGS", "--xla_foo")
	setCUDADataDir(plugin)
	if got, want := os.Getenv("XLA_FLAGS"), "--xla_foo --xla_gpu_cuda_data_dir="+filepath.Join(root, "go-xla/nvidia"); got != want {
		t.Errorf("XLA_FLAGS=%q, want %q", got, want)
	}
	t.Setenv("XLA_FLAGS", "--xla_gpu_cuda_data_dir=/mine")
	setCUDADataDir(plugin)
	if got := os.Getenv("XLA_FLAGS"); got != "--xla_gpu_cuda_data_dir=/mine" {
		t.Errorf("a data dir the user set must be kept, got %q", got)
	}
}

// TestNewCachesAndDescribes creates the pure-Go backend through the public API.
func TestNewCachesAndDescribes(t *testing.T) {
	t.Setenv(EnvBackend, "go")
	b1, err := New()
	if err != nil {
		t.Fatal(err)
	}
	b2 := Must()
	if b1 != b2 {
		t.Errorf("New and Must returned different backends: the backend must be created once")
	}
	if got, want := Describe(b1), "go (pure-Go backend, ops_sequential)"; got != want {
		t.Errorf("Describe = %q, want %q", got, want)
	}
	if b1.String() != "go" {
		t.Errorf("backend is %q, want go", b1.String())
	}
}

func TestCreateReportsUnknownBackend(t *testing.T) {
	_, err := create(Plan{Kind: KindFromEnv, Config: "nosuchbackend"})
	if err == nil || !strings.Contains(err.Error(), "nosuchbackend") {
		t.Errorf("got err=%v, want an error naming the backend", err)
	}
}
