package classroom

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
)

// StudentsGroup is the Linux group every student of a class on this machine belongs to.
const StudentsGroup = "workbook-students"

// ensureGroup creates the students' group when it is missing and returns its gid.
func ensureGroup() (int, error) {
	g, err := user.LookupGroup(StudentsGroup)
	if err != nil {
		if out, err := exec.Command("groupadd", "--system", StudentsGroup).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("classroom: groupadd %s: %v: %s", StudentsGroup, err, bytes.TrimSpace(out))
		}
		if g, err = user.LookupGroup(StudentsGroup); err != nil {
			return 0, fmt.Errorf("classroom: group %s: %v", StudentsGroup, err)
		}
	}
	return strconv.Atoi(g.Gid)
}

func joinGroup(name string) error {
	if out, err := exec.Command("usermod", "--append", "--groups", StudentsGroup, name).CombinedOutput(); err != nil {
		return fmt.Errorf("classroom: usermod -aG %s %s: %v: %s", StudentsGroup, name, err, bytes.TrimSpace(out))
	}
	return nil
}

// denyGroup gives path a POSIX access ACL that keeps its mode for everyone but grants nothing to
// members of gid. The instructor's checkout must stay readable by the grader's sandbox users
// (random uids, "other"), yet the solutions in it must be closed to students, whose kernels run
// shell commands: a named-group entry without permissions does exactly that.
func denyGroup(path string, gid int) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("classroom: %v", err)
	}
	m := uint16(fi.Mode().Perm())
	const (
		userObj, group, groupObj, mask, other = 0x01, 0x08, 0x04, 0x10, 0x20
		undefinedID                           = 0xffffffff
	)
	entries := []struct {
		tag, perm uint16
		id        uint32
	}{
		{userObj, m >> 6 & 7, undefinedID},
		{groupObj, m >> 3 & 7, undefinedID},
		{group, 0, uint32(gid)},
		{mask, m >> 3 & 7, undefinedID},
		{other, m & 7, undefinedID},
	}
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint32(2)) // POSIX_ACL_XATTR_VERSION
	for _, e := range entries {
		binary.Write(&b, binary.LittleEndian, e)
	}
	if err := unix.Setxattr(path, "system.posix_acl_access", b.Bytes(), 0); err != nil {
		return fmt.Errorf("classroom: close %s to group %s: %v", path, StudentsGroup, err)
	}
	return nil
}
