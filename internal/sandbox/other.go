//go:build !linux

package sandbox

import (
	"errors"
	"runtime"
)

var errUnsupported = errors.New("sandbox: only Linux can isolate a run (namespaces, cgroups); this is " + runtime.GOOS)

func stage1(*Config, string) (int, error) { return 0, errUnsupported }
func stage2(*Config, string) (int, error) { return 0, errUnsupported }
func reportStart(string)                  {}

const execStage = "exec"

func runExecStage() { fail(errUnsupported) }

// Cgroup is unavailable outside Linux.
type Cgroup struct{ Version int }

// CgroupStats is what a run used.
type CgroupStats struct {
	PeakMemory int64
	OOMKills   int
	LimitHits  int64
}

// CgroupSupport reports that there are no cgroups here.
func CgroupSupport() (int, error) { return 0, errUnsupported }

// NewCgroup fails outside Linux.
func NewCgroup(string, int64, int64) (*Cgroup, error) { return nil, errUnsupported }

// LimitCPU fails outside Linux.
func (c *Cgroup) LimitCPU(float64) error { return errUnsupported }

// Throttled fails outside Linux.
func (c *Cgroup) Throttled() (int64, error) { return 0, errUnsupported }

// ProcsFiles is empty outside Linux.
func (c *Cgroup) ProcsFiles() []string { return nil }

// Stats fails outside Linux.
func (c *Cgroup) Stats() (CgroupStats, error) { return CgroupStats{}, errUnsupported }

// Kill does nothing outside Linux.
func (c *Cgroup) Kill() error { return nil }

// Remove does nothing outside Linux.
func (c *Cgroup) Remove() error { return nil }
