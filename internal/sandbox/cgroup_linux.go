//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroupRoot is where cgroup file systems are mounted; a variable for tests.
var cgroupRoot = "/sys/fs/cgroup"

// parentGroup is the group, under each hierarchy, that holds one child per run.
const parentGroup = "workbook-grade"

// Cgroup limits the memory and the number of tasks of one run's whole process tree (driver,
// kernel, compiler, student program) together, and tells afterwards whether the memory limit
// killed something. Version 2 (unified) is used where its memory controller is available,
// otherwise version 1's memory and pids controllers.
type Cgroup struct {
	Version int
	dirs    []string // v1: memory dir, pids dir, then the cpu dir of LimitCPU; v2: one dir
}

// CgroupStats is what a run used.
type CgroupStats struct {
	PeakMemory int64 // bytes; 0 if the kernel does not report it
	OOMKills   int   // processes the kernel killed for exceeding the memory limit
	LimitHits  int64 // times usage hit the limit (v1 failcnt, v2 "max" events)
}

// CgroupSupport says which cgroup version NewCgroup would use, or why none can be used.
func CgroupSupport() (int, error) {
	if v2ok() {
		return 2, nil
	}
	if err := v1ok(); err != nil {
		return 0, err
	}
	return 1, nil
}

func v2ok() bool {
	b, err := os.ReadFile(filepath.Join(cgroupRoot, "cgroup.controllers"))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return contains(f, "memory") && contains(f, "pids")
}

func v1ok() error {
	for _, c := range []string{"memory", "pids"} {
		dir := filepath.Join(cgroupRoot, c)
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
			return fmt.Errorf("sandbox: no cgroup v2 memory controller and no cgroup v1 %s hierarchy at %s", c, dir)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// NewCgroup creates the group for one run, named name, limited to memory bytes (RAM; swap is
// not allowed on top) and pids tasks.
func NewCgroup(name string, memory, pids int64) (*Cgroup, error) {
	if memory <= 0 || pids <= 0 {
		return nil, fmt.Errorf("sandbox: cgroup limits must be positive (memory %d, pids %d)", memory, pids)
	}
	version, err := CgroupSupport()
	if err != nil {
		return nil, err
	}
	c := &Cgroup{Version: version}
	ok := false
	defer func() {
		if !ok {
			c.Remove()
		}
	}()
	if version == 2 {
		parent := filepath.Join(cgroupRoot, parentGroup)
		if err := mkdirGroup(parent); err != nil {
			return nil, err
		}
		// Controllers must be enabled on the way down: in the root for parent, in parent for us.
		for _, d := range []string{cgroupRoot, parent} {
			if err := writeFile(filepath.Join(d, "cgroup.subtree_control"), "+memory +pids"); err != nil {
				return nil, err
			}
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sandbox: create cgroup %s: %v", dir, err)
		}
		c.dirs = []string{dir}
		if err := writeFile(filepath.Join(dir, "memory.max"), strconv.FormatInt(memory, 10)); err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err == nil {
			if err := writeFile(filepath.Join(dir, "memory.swap.max"), "0"); err != nil {
				return nil, err
			}
		}
		if err := writeFile(filepath.Join(dir, "pids.max"), strconv.FormatInt(pids, 10)); err != nil {
			return nil, err
		}
		ok = true
		return c, nil
	}
	for _, ctl := range []string{"memory", "pids"} {
		parent := filepath.Join(cgroupRoot, ctl, parentGroup)
		if err := mkdirGroup(parent); err != nil {
			return nil, err
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("sandbox: create cgroup %s: %v", dir, err)
		}
		c.dirs = append(c.dirs, dir)
	}
	mem := c.dirs[0]
	if err := writeFile(filepath.Join(mem, "memory.limit_in_bytes"), strconv.FormatInt(memory, 10)); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(mem, "memory.memsw.limit_in_bytes")); err == nil {
		if err := writeFile(filepath.Join(mem, "memory.memsw.limit_in_bytes"), strconv.FormatInt(memory, 10)); err != nil {
			return nil, err
		}
	}
	if err := writeFile(filepath.Join(c.dirs[1], "pids.max"), strconv.FormatInt(pids, 10)); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// cpuPeriod is the scheduling period (µs) of a CPU quota: cpus×cpuPeriod µs of CPU time per
// period. 100 ms is the kernel's default and smooth enough for interactive work.
const cpuPeriod = 100000

// LimitCPU caps the group at cpus cores' worth of CPU time (0.5: half a core; 2: two cores),
// with the CPU controller of the group's cgroup version (v1: cpu.cfs_quota_us in the cpu
// hierarchy, which joins ProcsFiles; v2: cpu.max). Apart from the cap, groups that compete for
// the CPU get equal shares of it: each is one group of the same weight.
func (c *Cgroup) LimitCPU(cpus float64) error {
	if !(cpus > 0) {
		return fmt.Errorf("sandbox: CPU limit must be positive, not %v", cpus)
	}
	if len(c.dirs) == 0 {
		return errors.New("sandbox: cgroup already removed")
	}
	quota := strconv.FormatInt(max(int64(cpus*cpuPeriod), 1000), 10)
	if c.Version == 2 {
		dir := c.dirs[0]
		for _, d := range []string{cgroupRoot, filepath.Dir(dir)} {
			if err := writeFile(filepath.Join(d, "cgroup.subtree_control"), "+cpu"); err != nil {
				return fmt.Errorf("%v (no cgroup v2 cpu controller?)", err)
			}
		}
		return writeFile(filepath.Join(dir, "cpu.max"), quota+" "+strconv.Itoa(cpuPeriod))
	}
	hier := filepath.Join(cgroupRoot, "cpu")
	if _, err := os.Stat(filepath.Join(hier, "cpu.cfs_quota_us")); err != nil {
		return fmt.Errorf("sandbox: no cgroup v1 cpu hierarchy with CFS quotas at %s", hier)
	}
	parent := filepath.Join(hier, parentGroup)
	if err := mkdirGroup(parent); err != nil {
		return err
	}
	dir := filepath.Join(parent, filepath.Base(c.dirs[0]))
	if err := mkdirGroup(dir); err != nil {
		return err
	}
	c.dirs = append(c.dirs, dir)
	if err := writeFile(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriod)); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "cpu.cfs_quota_us"), quota)
}

// Throttled is how many scheduling periods the group's CPU cap held it back (cpu.stat's
// nr_throttled): 0 without LimitCPU.
func (c *Cgroup) Throttled() (int64, error) {
	for _, d := range c.dirs {
		if st, err := keyValues(filepath.Join(d, "cpu.stat")); err == nil {
			if n, ok := st["nr_throttled"]; ok {
				return n, nil
			}
		}
	}
	return 0, nil
}

func mkdirGroup(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("sandbox: create cgroup %s: %v", dir, err)
	}
	return nil
}

func writeFile(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("sandbox: write %q to %s: %v", value, path, err)
	}
	return nil
}

// ProcsFiles are the cgroup.procs files a process writes its PID to in order to join the group
// (Config.CgroupProcs).
func (c *Cgroup) ProcsFiles() []string {
	out := make([]string, len(c.dirs))
	for i, d := range c.dirs {
		out[i] = filepath.Join(d, "cgroup.procs")
	}
	return out
}

// Stats reads peak memory and the OOM kills of the run.
func (c *Cgroup) Stats() (CgroupStats, error) {
	var s CgroupStats
	if len(c.dirs) == 0 {
		return s, errors.New("sandbox: cgroup already removed")
	}
	dir := c.dirs[0]
	if c.Version == 2 {
		if b, err := os.ReadFile(filepath.Join(dir, "memory.peak")); err == nil {
			s.PeakMemory, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
		ev, err := keyValues(filepath.Join(dir, "memory.events"))
		if err != nil {
			return s, err
		}
		s.OOMKills, s.LimitHits = int(ev["oom_kill"]), ev["max"]
		return s, nil
	}
	if b, err := os.ReadFile(filepath.Join(dir, "memory.max_usage_in_bytes")); err == nil {
		s.PeakMemory, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "memory.failcnt")); err == nil {
		s.LimitHits, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	oc, err := keyValues(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return s, err
	}
	s.OOMKills = int(oc["oom_kill"])
	return s, nil
}

func keyValues(path string) (map[string]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %v", err)
	}
	m := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 {
			m[f[0]], _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return m, nil
}

// Kill sends SIGKILL to every process still in the group until it is empty (processes forking
// while being killed are caught by the next round), giving up after 10 seconds.
func (c *Cgroup) Kill() error {
	if len(c.dirs) == 0 {
		return nil
	}
	procs := filepath.Join(c.dirs[0], "cgroup.procs")
	if c.Version == 2 {
		if err := os.WriteFile(filepath.Join(c.dirs[0], "cgroup.kill"), []byte("1"), 0); err == nil {
			procs = ""
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids, err := readPids(filepath.Join(c.dirs[0], "cgroup.procs"))
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sandbox: processes %v survive SIGKILL in %s", pids, c.dirs[0])
		}
		if procs != "" {
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readPids(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// Remove kills what is left in the group and deletes it.
func (c *Cgroup) Remove() error {
	if len(c.dirs) == 0 {
		return nil
	}
	err := c.Kill()
	for _, d := range c.dirs {
		if rerr := os.Remove(d); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = fmt.Errorf("sandbox: remove cgroup %s: %v", d, rerr)
		}
	}
	c.dirs = nil
	return err
}
