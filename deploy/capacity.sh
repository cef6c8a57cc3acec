#!/usr/bin/env bash
# How many students this machine holds: starts a class of new students with 'workbook classroom
# start' (PAM logins, memory cgroups, seeded build caches, as in a workshop), then
# deploy/capacity.js logs them in with Chromium and times VGG16's model cell: a new student's
# first run against a warm one, and 1, 2, 4, 8 warm students running it at once, with each
# student's peak memory. Prints a Markdown table (deploy/CAPACITY.md records one run).
#
# As root, from the checkout, after 'workbook setup' and .ci/run's apt packages and
# puppeteer-core (npm install --prefix .dev/puppeteer puppeteer-core@24):
#
#   deploy/capacity.sh [COUNTS]        COUNTS: ascending, comma-separated (default 1,2,4,8)
#
# Environment: WORKBOOK_WEIGHTS_DIR (the weights students read; required), CLASS (class folder,
# default /srv/workbook-capacity; all but its shared/ and gocache/ is replaced), PORT (8100, and
# the next two), MEMORY (per student, 6GiB), PREFIX (account names PREFIX1..PREFIXn, default
# wbcap; accounts of that name are deleted with their homes before and after the run), KEEP=1
# keeps them and the class.
# Other work on the machine changes the numbers: the table carries the load average.
set -euo pipefail
cd "$(dirname "$0")/.."

counts=${1:-1,2,4,8}
class=${CLASS:-/srv/workbook-capacity}
port=${PORT:-8100}
prefix=${PREFIX:-wbcap}
[ "$(id -u)" = 0 ] || { echo "capacity: run as root (it creates accounts)" >&2; exit 2; }
[ -d "${WORKBOOK_WEIGHTS_DIR:-}" ] || { echo "capacity: set WORKBOOK_WEIGHTS_DIR to the Keras weights folder" >&2; exit 2; }
[[ "$prefix" =~ ^[a-z][a-z0-9]{1,15}$ ]] || { echo "capacity: PREFIX must be a short lower-case name" >&2; exit 2; }
node_path=${NODE_PATH:-$PWD/.dev/puppeteer/node_modules}
[ -d "$node_path/puppeteer-core" ] || { echo "capacity: no puppeteer-core in $node_path" >&2; exit 2; }

max=$(tr , '\n' <<<"$counts" | sort -n | tail -1)
students=$(seq -f "$prefix%g" 1 "$max" | paste -sd,)
work=$(mktemp -d)
bin=$work/workbook
go build -o "$bin" ./cmd/workbook

# The class folder's shared module cache and build cache template (minutes to compile) are kept
# for the next run; the rest goes, so that every run's students are new.
remove_class() {
  if [ -f "$class/state.json" ]; then
    "$bin" classroom stop --class "$class" || true
    find "$class" -mindepth 1 -maxdepth 1 ! -name shared ! -name gocache -exec rm -rf {} +
  fi
  for s in ${students//,/ }; do
    if id "$s" >/dev/null 2>&1; then userdel --remove "$s" 2>/dev/null || true; fi
  done
}
cleanup() {
  [ -n "${KEEP:-}" ] || remove_class
  rm -rf "$work"
}
# New students: an earlier run's accounts and class go first.
remove_class
trap cleanup EXIT

echo "capacity: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); load: $(uptime)"
SECONDS=0
"$bin" classroom start --class "$class" --students "$students" --port "$port" \
  --memory "${MEMORY:-6GiB}" --weights "$WORKBOOK_WEIGHTS_DIR"
echo "capacity: hub start for $max new students took ${SECONDS} s (accounts, copies, seeded caches, hub up)"
NODE_PATH=$node_path node deploy/capacity.js "http://127.0.0.1:$port/" "$class" \
  02-activity-8.01-vgg16-motorcycle.ipynb "$counts" "$students"
echo "capacity: load after: $(uptime)"
