package classroom

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

func lookupUID(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("classroom: %v", err)
	}
	return strconv.Atoi(u.Uid)
}

type proc struct {
	pid int
	rss int64
}

// processesOf lists the live processes whose real uid is uid, with their resident memory.
func processesOf(uid int) []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		var p proc
		match, zombie := false, false
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "Uid:":
				match = f[1] == strconv.Itoa(uid)
			case "State:":
				zombie = f[1] == "Z"
			case "VmRSS:":
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				p.rss = kb << 10
			}
		}
		if match && !zombie {
			p.pid = pid
			out = append(out, p)
		}
	}
	return out
}

func fileUID(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
