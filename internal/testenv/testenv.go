// Package testenv decides what a test does when an external oracle it needs (Debian's Python
// with Pillow, NumPy, h5py or PyTorch; the book's images next to the checkout; Jupyter) is
// missing: on a developer's machine it skips with the reason, in CI it fails — a green CI run
// must mean every oracle comparison really ran.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// RequireEnv, when set to a non-empty value other than "0", turns missing oracles into failures.
// .ci/run sets it.
const RequireEnv = "WORKBOOK_REQUIRE_ORACLES"

// Required reports whether missing oracles must fail the test run.
func Required() bool {
	v := os.Getenv(RequireEnv)
	return v != "" && v != "0"
}

// SkipMissing skips tb because an external oracle is missing, or fails it when RequireEnv is set.
func SkipMissing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatalf("%s (required because %s is set)", msg, RequireEnv)
	}
	tb.Skip(msg)
}
