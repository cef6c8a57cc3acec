// Package kubernetes holds the files for a class on Kubernetes (Zero to JupyterHub values and the
// single-user image); its test checks the values against the chart's schema.
package kubernetes

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/transfer-learning-go/workbook/internal/setup"
	"github.com/transfer-learning-go/workbook/internal/testenv"
	"github.com/transfer-learning-go/workbook/kernelext/backend"
)

// TestValuesKeysExistInChart parses values.yaml with Debian's python3-yaml and checks every key
// path against the paths the chart's schema allows (testdata/z2jh-keys.txt, made from the chart's
// values.schema.yaml by schema_keys.py): a misspelt key is silently ignored by Helm.
func TestValuesKeysExistInChart(t *testing.T) {
	const script = `import json, sys, yaml
def walk(v, path, out):
    if isinstance(v, dict) and v:
        for k, x in v.items():
            walk(x, path + [str(k)], out)
    else:
        out.append(path)
out = []
walk(yaml.safe_load(open("values.yaml")), [], out)
print(json.dumps(out))`
	python := testenv.Python(t, "yaml")
	cmd := exec.Command(python, "-c", script)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("values.yaml does not parse: %v\n%s", err, stderr.String())
	}
	var paths [][]string
	if err := json.Unmarshal(out, &paths); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	var patterns []struct {
		prefix string
		re     *regexp.Regexp
	}
	f, err := os.Open("testdata/z2jh-keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.Index(line, ".~"); i >= 0 {
			patterns = append(patterns, struct {
				prefix string
				re     *regexp.Regexp
			}{line[:i], regexp.MustCompile(line[i+2:])})
			continue
		}
		allowed[line] = true
	}
	if len(paths) < 20 {
		t.Fatalf("values.yaml has only %d keys", len(paths))
	}
	for _, p := range paths {
		if !keyAllowed(p, allowed, patterns) {
			t.Errorf("values.yaml: %s is not a key of the chart", strings.Join(p, "."))
		}
	}
}

func keyAllowed(p []string, allowed map[string]bool, patterns []struct {
	prefix string
	re     *regexp.Regexp
}) bool {
	if allowed[strings.Join(p, ".")] {
		return true
	}
	for i := 1; i < len(p); i++ {
		prefix := strings.Join(p[:i], ".")
		if allowed[prefix+".*"] {
			return true
		}
		for _, pat := range patterns {
			if pat.prefix == prefix && pat.re.MatchString(p[i]) {
				return true
			}
		}
	}
	return false
}

// TestPodGoFlagsAreTheKernels: a student pod's GOFLAGS are what the kernel's environment gets
// everywhere else (setup.WithCellGoFlags) for the pod's GOMLX_BACKEND: the image's build cache is
// warmed by a notebook run with those flags, and a cell built with others would miss it.
func TestPodGoFlagsAreTheKernels(t *testing.T) {
	const script = `import json, yaml
print(json.dumps(yaml.safe_load(open("values.yaml"))["singleuser"]["extraEnv"]))`
	out, err := exec.Command(testenv.Python(t, "yaml"), "-c", script).Output()
	if err != nil {
		t.Fatalf("values.yaml: singleuser.extraEnv: %v", err)
	}
	var env map[string]string
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatal(err)
	}
	t.Setenv(backend.EnvBackend, env[backend.EnvBackend])
	if want := setup.WithCellGoFlags("-mod=mod"); env["GOFLAGS"] != want {
		t.Errorf("singleuser.extraEnv.GOFLAGS = %q, want %q (GOMLX_BACKEND=%q)", env["GOFLAGS"], want, env[backend.EnvBackend])
	}
}
