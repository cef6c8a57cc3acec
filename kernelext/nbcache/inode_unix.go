//go:build unix

package nbcache

import (
	"os"
	"syscall"
)

// inode identifies the file on its device, so that a file replaced by another with the same size
// and time stamp still gets a new digest.
func inode(info os.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
