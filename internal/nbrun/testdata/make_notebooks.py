#!/usr/bin/python3
"""Writes the small notebooks the nbrun tests execute. Run from anywhere with Debian's python3:

    /usr/bin/python3 internal/nbrun/testdata/make_notebooks.py

The setup cell is the one documented in notebooks/README.md; keep the two identical.
gonb_errors.executed.ipynb is not made here: it is compile_error.ipynb and panic.ipynb as executed
by the real GoNB kernel (see its note in nbrun_test.go), kept so parsing tests run without Jupyter.
"""
import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))

SETUP_CELL = r'''!*ROOT="$(cd "$GONB_DIR" && go env GOMOD)"; ROOT="${ROOT%/go.mod}"; \
  [ -f "$ROOT/go.mod" ] || { echo "setup cell: $GONB_DIR is not inside the workbook checkout" >&2; exit 1; }; \
  go mod edit -replace=github.com/transfer-learning-go/workbook="$ROOT" \
    -require=github.com/transfer-learning-go/workbook@v0.0.0 && \
  cat "$ROOT/go.sum" >> go.sum && echo "workbook packages from $ROOT"'''


def cell(c):
    """A markdown cell ("# text"), a code cell, or a (source, metadata) code cell."""
    if isinstance(c, tuple):
        return new_code_cell(c[0], metadata=c[1])
    return new_markdown_cell(c[2:]) if c.startswith("# ") else new_code_cell(c)


def write(name, cells):
    nb = new_notebook(cells=[cell(c) for c in cells])
    nb.metadata = {
        "kernelspec": {"name": "gonb", "display_name": "Go (gonb)", "language": "go"},
        "language_info": {"name": "go"},
    }
    path = os.path.join(HERE, name)
    tmp = path + ".tmp"
    nbformat.write(nb, tmp)
    os.replace(tmp, path)


# The workbook's own packages, the pinned GoMLX, a value cached across cells, and an image.
write("wiring.ipynb", [
    "# Wiring check: this checkout's packages from a GoNB notebook",
    SETUP_CELL,
    'import "github.com/transfer-learning-go/workbook/kernelext"\n\n'
    '%%\na := kernelext.NewArray(1, 224, 224, 3)\nfmt.Println("shape", a.ShapeString())',
    'import "github.com/transfer-learning-go/workbook/kernelext/nbcache"\n\n'
    'func expensive() ([]float32, error) {\n\tfmt.Println("computing")\n\treturn []float32{1, 2, 3}, nil\n}\n\n'
    '%%\nfmt.Println("value", nbcache.MustCached("nbrun-test/wiring", expensive))',
    '%%\nfmt.Println("value", nbcache.MustCached("nbrun-test/wiring", expensive))',
    'import (\n\t"image"\n\n\t"github.com/janpfeifer/gonb/gonbui"\n)\n\n'
    # Sync: the cell's program exits right after displaying, and on a busy machine GoNB may not
    # have read the image from its pipe yet (kernelext.DisplayImage does the same).
    '%%\ngonbui.DisplayImage(image.NewRGBA(image.Rect(0, 0, 4, 4)))\ngonbui.Sync()',
    "!*go list -m github.com/gomlx/gomlx github.com/janpfeifer/gonb",
])

write("compile_error.ipynb", [
    '%%\nfmt.Println("first")',
    '%%\nx := undefinedThing + 1\nfmt.Println(x)',
    '%%\nfmt.Println("after")',
])

write("panic.ipynb", [
    "# A cell that panics (the markdown cell makes cell numbers differ from In [N])",
    '%%\nfmt.Println("first")',
    'func boom() { panic("kaboom in cell") }\n\n%%\nfmt.Println("before")\nboom()',
    '%%\nfmt.Println("after")',
])

# Shell cells: no Go build, so a short cell timeout is safe even with a cold build cache.
write("sleep.ipynb", [
    "!echo first",
    "!sleep 600",
])

# Cells that run only when an earlier one failed (the grader's per-variable export cells). One Go
# cell, which fails to build; the others are shell cells.
write("guarded.ipynb", [
    "!echo first",
    ("!echo must not run", {"nbrun": {"only_if_failed": 0}}),
    "%%\nundefinedThing()",
    ("!echo ran after the failure", {"nbrun": {"only_if_failed": 2}}),
])
