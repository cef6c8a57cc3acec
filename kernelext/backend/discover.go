package backend

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Plugin file names, in order of preference. go-xla's installer writes
// pjrt_c_api_<name>_plugin.so (plus a versioned pjrt_c_api_cpu_<version>_plugin.so the plain
// name links to); go-xla also accepts the pjrt-plugin-<name>.so and pjrt_plugin_<name>.so forms.
// xla_cuda_plugin.so is the name in jax's pip packages (jax_plugins/xla_cuda12 or xla_cuda13),
// so PJRT_PLUGIN_LIBRARY_PATH may point at such a folder.
var (
	cpuNames  = []string{"pjrt_c_api_cpu_plugin.so", "pjrt-plugin-cpu.so", "pjrt_plugin_cpu.so", "pjrt_c_api_cpu_*_plugin.so"}
	cudaNames = []string{"pjrt_c_api_cuda_plugin.so", "pjrt-plugin-cuda.so", "pjrt_plugin_cuda.so", "pjrt_c_api_cuda*_plugin.so",
		"xla_cuda_plugin.so"}
)

// systemProbe looks at the real process environment and file system.
func systemProbe() probe {
	home, _ := os.UserHomeDir()
	p := probe{
		getenv:    os.LookupEnv,
		home:      home,
		ldConf:    "/etc/ld.so.conf",
		hasGPU:    hasNVIDIADevice,
		xlaLinked: xlaLinked,
	}
	p.pyGlobs = jaxPluginGlobs(home, os.Getenv("VIRTUAL_ENV"))
	return p
}

// hasNVIDIADevice is go-xla's test for a GPU: its CUDA plugin is skipped without /dev/nvidia*.
func hasNVIDIADevice() bool {
	m, _ := filepath.Glob("/dev/nvidia*")
	return len(m) > 0
}

// jaxPluginGlobs lists where pip puts the CUDA PJRT plugin of jax-cuda12-pjrt/jax-cuda13-pjrt.
func jaxPluginGlobs(home, venv string) []string {
	const rel = "jax_plugins/xla_cuda*/xla_cuda_plugin.so"
	var g []string
	if venv != "" {
		g = append(g, filepath.Join(venv, "lib/python3*/site-packages", rel))
	}
	if home != "" {
		g = append(g, filepath.Join(home, ".local/lib/python3*/site-packages", rel))
	}
	return append(g,
		"/usr/local/lib/python3*/dist-packages/"+rel,
		"/usr/local/lib/python3*/site-packages/"+rel,
		"/usr/lib/python3/dist-packages/"+rel,
	)
}

// searchDirs returns the folders go-xla v0.1.4 searches for plugins, in its order.
func searchDirs(p probe) []string {
	if v, ok := p.getenv(EnvPluginPath); ok {
		var dirs []string
		for _, d := range strings.Split(v, ":") {
			if d != "" {
				dirs = append(dirs, d)
			}
		}
		return dirs
	}
	var dirs []string
	if p.home != "" {
		goxla := filepath.Join(p.home, ".local", "lib", "go-xla")
		dirs = append(dirs, goxla, filepath.Join(goxla, "nvidia"), filepath.Join(p.home, ".local", "lib", "gomlx", "pjrt"))
	}
	dirs = append(dirs, "/usr/local/lib/go-xla", "/usr/local/lib/go-xla/nvidia", "/usr/local/lib/gomlx/pjrt")
	if v, ok := p.getenv("LD_LIBRARY_PATH"); ok {
		for _, d := range strings.Split(v, ":") {
			if filepath.IsAbs(d) {
				dirs = append(dirs, d)
			}
		}
	}
	if p.ldConf != "" {
		dirs = ldConfDirs(dirs, p.ldConf, 0)
	}
	return dirs
}

var (
	reLdInclude = regexp.MustCompile(`^\s*include\s+(.*?)\s*$`)
	reLdComment = regexp.MustCompile(`^\s*#`)
)

// ldConfDirs appends the folders listed in an ld.so.conf file, following its include lines.
func ldConfDirs(dirs []string, file string, depth int) []string {
	if depth > 8 {
		return dirs
	}
	f, err := os.Open(file)
	if err != nil {
		return dirs
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := reLdInclude.FindStringSubmatch(line); m != nil {
			pattern := m[1]
			if !filepath.IsAbs(pattern) {
				pattern = filepath.Join(filepath.Dir(file), pattern)
			}
			files, _ := filepath.Glob(pattern)
			slices.Sort(files)
			for _, inc := range files {
				dirs = ldConfDirs(dirs, inc, depth+1)
			}
			continue
		}
		if reLdComment.MatchString(line) {
			continue
		}
		if d := strings.TrimSpace(line); d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// findPlugin returns the absolute path of the first plugin file found: folders in order, and
// within a folder the names in order.
func findPlugin(dirs, names []string) string {
	for _, d := range dirs {
		for _, n := range names {
			matches, _ := filepath.Glob(filepath.Join(d, n))
			slices.Sort(matches)
			for _, m := range matches {
				if isPluginFile(m) {
					if abs, err := filepath.Abs(m); err == nil {
						return abs
					}
				}
			}
		}
	}
	return ""
}

// findGlob returns the first regular file matching the patterns, in order.
func findGlob(patterns []string) string {
	for _, pat := range patterns {
		matches, _ := filepath.Glob(pat)
		slices.Sort(matches)
		for _, m := range matches {
			if isPluginFile(m) {
				return m
			}
		}
	}
	return ""
}

// isPluginFile: a regular file (symbolic links followed). Whether it really is a PJRT plugin
// shows only when XLA loads it; a failure then is reported, not skipped.
func isPluginFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// isCUDAName is go-xla's test for a CUDA plugin.
func isCUDAName(path string) bool {
	u := strings.ToUpper(filepath.Base(path))
	return strings.Contains(u, "CUDA") || strings.Contains(u, "NVIDIA")
}

// setCUDADataDir points XLA at the NVIDIA tools (ptxas, libdevice) that go-xla's installer
// puts in the nvidia/ folder next to its CUDA plugin. go-xla v0.1.4 means to do this itself
// when it loads a CUDA plugin but sets a folder of its author's machine
// (--xla_gpu_cuda_data_dir=/home/janpf/.local/lib/go-xla/nvidia) unless XLA_FLAGS already
// names one, so we name the right one first.
//
// Without that folder go-xla warns on every start that it cannot find it; a pip-installed
// plugin does not need it, so the check is switched off (GOPJRT_CUDA_CHECKS=0) unless set.
func setCUDADataDir(plugin string) {
	nvidia := filepath.Join(filepath.Dir(filepath.Dir(plugin)), "nvidia")
	if fi, err := os.Stat(nvidia); err != nil || !fi.IsDir() {
		if _, set := os.LookupEnv("GOPJRT_CUDA_CHECKS"); !set {
			_ = os.Setenv("GOPJRT_CUDA_CHECKS", "0")
		}
		return
	}
	flags := os.Getenv("XLA_FLAGS")
	if strings.Contains(flags, "--xla_gpu_cuda_data_dir") {
		return
	}
	flag := "--xla_gpu_cuda_data_dir=" + nvidia
	if flags != "" {
		flag = flags + " " + flag
	}
	_ = os.Setenv("XLA_FLAGS", flag)
}
