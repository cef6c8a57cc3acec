package hugepages

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// thpMode is the kernel's transparent huge page mode ("always", "madvise" or "never"), or ""
// where the kernel has none (another operating system, or a kernel built without them).
func thpMode(t *testing.T) string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		t.Logf("no transparent huge pages here (%v): only the contents are checked", err)
		return ""
	}
	s := string(b)
	if i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']'); i >= 0 && j > i {
		return s[i+1 : j]
	}
	t.Fatalf("cannot read the mode in %q", s)
	return ""
}

// anonHugeKB is the AnonHugePages of the mapping of /proc/self/smaps that holds addr.
func anonHugeKB(t *testing.T, addr uintptr) int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			in = err1 == nil && err2 == nil && uint64(addr) >= a && uint64(addr) < b
			continue
		}
		if in && fields[0] == "AnonHugePages:" {
			kb, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatalf("no mapping of /proc/self/smaps holds %#x", addr)
	return 0
}

// A buffer made here holds what is written to it, and where the kernel gives huge pages on
// request (mode "madvise" or "always"), its memory is backed by them once written.
func TestMakeFaultsInHugePages(t *testing.T) {
	const n = 64 << 20 / 4
	s := Make[float32](n)
	if len(s) != n {
		t.Fatalf("len %d, want %d", len(s), n)
	}
	for i := range s {
		s[i] = float32(i)
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		if s[i] != float32(i) {
			t.Fatalf("s[%d] = %v", i, s[i])
		}
	}
	mode := thpMode(t)
	if mode != "madvise" && mode != "always" {
		t.Logf("transparent huge pages are %q here: nothing to ask for", mode)
		return
	}
	// The middle of the buffer lies inside its advised, whole huge pages.
	mid := uintptr(unsafe.Pointer(&s[n/2]))
	if kb := anonHugeKB(t, mid); kb < 2048 {
		t.Errorf("the buffer's mapping has %d kB in huge pages (mode %q), want at least one 2 MiB page", kb, mode)
	}
}

// Small, empty and odd-sized slices of any element type are left as they are.
func TestAdviseAnySlice(t *testing.T) {
	Advise([]float32(nil))
	Advise(make([]byte, 1))
	Advise(make([]float64, MinBytes/8-1))
	odd := make([]byte, MinBytes+12345)[7:]
	Advise(odd)
	odd[len(odd)-1] = 1
	type pair struct{ a, b int32 }
	p := Make[pair](MinBytes / 8 * 3)
	p[len(p)-1] = pair{1, 2}
	if p[len(p)-1].b != 2 || odd[0] != 0 {
		t.Fatal("advised memory does not hold its values")
	}
}
