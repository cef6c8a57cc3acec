#!/bin/sh
# Lists the normalized (whitespace-trimmed) non-blank, non-comment lines of
# this package's non-test Go files that also occur in Go's image/jpeg, with
# their counts, then the total. Run from internal/jpeg.
set -e
std=$(go env GOROOT)/src/image/jpeg
norm() { sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$@" | grep -v -e '^$' -e '^//' ; }
norm "$std"/*.go | sort -u > /tmp/jpeg_std_lines
ls *.go | grep -v _test.go | while read -r f; do norm "$f"; done | sort | grep -Fxf /tmp/jpeg_std_lines | uniq -c | sort -rn
echo "total: $(ls *.go | grep -v _test.go | while read -r f; do norm "$f"; done | grep -cFxf /tmp/jpeg_std_lines)"
