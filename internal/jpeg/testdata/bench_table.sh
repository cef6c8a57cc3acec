#!/bin/sh
# Prints decode time per image (wall and CPU ms) for internal/jpeg, Go's
# image/jpeg and Pillow (Image.open(...).convert('RGB')) on the book's 7
# prediction images and on the whole cars-vs-flowers data set (13,438 files),
# one timed pass each after an untimed warm-up pass over (up to) the first 100
# images. Run from the repository root: sh internal/jpeg/testdata/bench_table.sh
set -e
data=${WORKBOOK_DATA:-/work/shared/data/keras-workshop-ch08}
uptime
go build -o /tmp/benchtable ./internal/jpeg/testdata/benchtable
echo "| images       | decoder                | count  | wall ms/img | CPU ms/img |"
echo "|---|---|---|---|---|"
for set in "book:$data/Prediction" "dataset:$data/Dataset/training_set $data/Dataset/test_set"; do
	label=${set%%:*}
	dirs=${set#*:}
	/tmp/benchtable "$label" $dirs
	/usr/bin/python3 - "$label" $dirs <<'PY'
import os, sys, time
from PIL import Image
label, dirs = sys.argv[1], sys.argv[2:]
files = [os.path.join(r, f) for d in dirs for r, _, fs in os.walk(d) for f in fs if f.lower().endswith('.jpg')]
blobs = [open(f, 'rb').read() for f in files]
import io
for b in blobs[:100]:  # untimed warm-up, as benchtable does
    Image.open(io.BytesIO(b)).convert('RGB')
w0, c0 = time.perf_counter(), time.process_time()
for b in blobs:
    Image.open(io.BytesIO(b)).convert('RGB')
w, c = time.perf_counter() - w0, time.process_time() - c0
n = len(blobs)
print("| %-12s | %-22s | %6d | %9.2f | %9.2f |" % (label, "Pillow " + Image.__version__, n, w * 1000 / n, c * 1000 / n))
PY
done
uptime
