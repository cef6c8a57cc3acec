#!/bin/bash
# GPU check of the workbook's predictions: XLA on a CUDA GPU against the workbook's own CPU
# engine (GoMLX's pure-Go backend), and batch-32 inference time next to PyTorch on CUDA.
#
# Go is not needed on the GPU machine: the script runs binaries built elsewhere with cgo (the
# XLA backend loads the PJRT plugin with dlopen). On a machine with Go, from the repository
# root:
#
#   mkdir -p dist
#   CGO_ENABLED=1 go build -o dist/workbook ./cmd/workbook
#   CGO_ENABLED=1 go test -c -o dist/applications.test ./kernelext/applications
#
# Copy the repository (with dist/) to the GPU machine and run, from its root:
#
#   cmd/workbook/testdata/gpu_check.sh [DIST]          # DIST defaults to ./dist
#
# Environment (all optional):
#   XLA_CUDA_PLUGIN       absolute path of xla_cuda_plugin.so; default: the one the
#                         jax-cuda13-pjrt (or jax-cuda12-pjrt) package installed for $PYTHON
#   PYTHON                a Python with torch + torchvision for the PyTorch timing
#                         (default python3); without torch that part is skipped
#   WORKBOOK_WEIGHTS_DIR  a folder with the Keras .h5 files; then `workbook predict` also
#                         classifies IMAGE on both backends and the top-5 are compared
#   IMAGE                 default datasets/prediction/test_image_1.jpg
#
# Steps, each printed with its outcome; the exit status is non-zero if a check fails:
#   1. TestBackendsAgree / TestBackendsAgreeTop5: VGG16 and ResNet50 on the same seeded
#      random weights on XLA (CUDA) and on the pure-Go backend, where Predict runs on the
#      engine: features within 1e-4 (relative), probabilities within 1e-4, same top-5.
#   2. BenchmarkVGG16Predict / BenchmarkResNet50Predict on XLA (CUDA), batch 1 and 32, with
#      PyTorch on CUDA in the same run (metric x_torch = GoMLX-XLA time / PyTorch time).
#   3. The same benchmarks on the engine (this machine's CPU cores) next to PyTorch on the CPU.
#   4. With WORKBOOK_WEIGHTS_DIR: `workbook predict --json` on both backends, same top-5.
#   5. With WORKBOOK_WEIGHTS_DIR: Exercise 8.03 on XLA (CUDA) — `workbook finetune` with the
#      book's schedule (10 epochs of 100 steps, 30 validation steps, batch 32; FINETUNE_EPOCHS,
#      FINETUNE_STEPS and FINETUNE_VAL_STEPS shorten it) on DATA (default: the shipped sample;
#      the book's 8,000 + 2,000 images are its repository's Chapter08/Data/Dataset), printing
#      its History and the wall time; then torch_finetune_bench.py's step on PyTorch CUDA on
#      the same folder, when PyTorch has CUDA.
#   6. With Go, Jupyter and GoNB on the machine (`workbook setup`): notebook 04 headless on XLA
#      with WORKBOOK_QUICK=1 (`workbook notebooks run`); otherwise it says why not.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
DIST=$(cd "${1:-$ROOT/dist}" && pwd) || { echo "gpu_check: no folder ${1:-$ROOT/dist} (see the build commands at the top of $0)"; exit 2; }
PYTHON=${PYTHON:-python3}
IMAGE=${IMAGE:-$ROOT/datasets/prediction/test_image_1.jpg}
for bin in workbook applications.test; do
	[ -x "$DIST/$bin" ] || { echo "gpu_check: $DIST/$bin missing (see the build commands at the top of $0)"; exit 2; }
done

if [ -z "${XLA_CUDA_PLUGIN:-}" ]; then
	XLA_CUDA_PLUGIN=$("$PYTHON" - <<'PY' 2>/dev/null
import importlib.util, os
for name in ("jax_plugins.xla_cuda13", "jax_plugins.xla_cuda12"):
    spec = importlib.util.find_spec(name)
    if spec and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "xla_cuda_plugin.so")
        if os.path.exists(path):
            print(path)
            break
PY
)
fi
[ -n "$XLA_CUDA_PLUGIN" ] && [ -f "$XLA_CUDA_PLUGIN" ] || { echo "gpu_check: no CUDA PJRT plugin; set XLA_CUDA_PLUGIN=/abs/path/xla_cuda_plugin.so"; exit 2; }
XLA="xla:$XLA_CUDA_PLUGIN"

echo "== machine"
nvidia-smi -L 2>/dev/null || echo "(nvidia-smi not found)"
grep -m1 'model name' /proc/cpuinfo; echo "cores: $(nproc), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "plugin: $XLA_CUDA_PLUGIN"
TORCH_DEVICE=cuda
if ! "$PYTHON" -c 'import torch, torchvision, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
	echo "PyTorch with CUDA not found for $PYTHON: the benchmarks report the workbook's side only"
	TORCH_DEVICE=cpu
fi
status=0
cd "$ROOT/kernelext/applications" || exit 2 # the test binary reads testdata/ from there

echo "== 1. XLA (CUDA) against the workbook's engine: agreement and top-5"
GOMLX_BACKEND=$XLA WORKBOOK_CROSSCHECK_BACKENDS=1 "$DIST/applications.test" -test.run '^TestBackendsAgree' -test.v || status=1

echo "== 2. batch 1 and 32 on XLA (CUDA), PyTorch on $TORCH_DEVICE"
GOMLX_BACKEND=$XLA WORKBOOK_TORCH_DEVICE=$TORCH_DEVICE WORKBOOK_PYTHON=$(command -v "$PYTHON") \
	"$DIST/applications.test" -test.run '^$' -test.bench 'Predict' -test.benchtime 5x || status=1

echo "== 3. batch 1 and 32 on the workbook's engine ($(nproc) cores), PyTorch on the CPU"
GOMLX_BACKEND=go WORKBOOK_TORCH_DEVICE=cpu WORKBOOK_PYTHON=$(command -v "$PYTHON") \
	"$DIST/applications.test" -test.run '^$' -test.bench 'Predict' -test.benchtime 3x || status=1

if [ -n "${WORKBOOK_WEIGHTS_DIR:-}" ]; then
	echo "== 4. workbook predict on both backends ($IMAGE)"
	for model in vgg16 resnet50; do
		a=$(GOMLX_BACKEND=$XLA "$DIST/workbook" predict --json --model "$model" "$IMAGE") || { status=1; continue; }
		b=$(GOMLX_BACKEND=go "$DIST/workbook" predict --json --model "$model" "$IMAGE") || { status=1; continue; }
		ta=$(echo "$a" | grep -o '"n[0-9]\{8\}"' | head -5 | tr '\n' ' ')
		tb=$(echo "$b" | grep -o '"n[0-9]\{8\}"' | head -5 | tr '\n' ' ')
		if [ "$ta" = "$tb" ]; then
			echo "$model: same top-5 on XLA and the engine: $ta"
		else
			echo "$model: top-5 differ: XLA $ta, engine $tb"
			status=1
		fi
	done
else
	echo "== 4. skipped: set WORKBOOK_WEIGHTS_DIR to compare workbook predict on a real checkpoint"
fi
DATA=${DATA:-$ROOT/datasets/cars-flowers-sample}
if [ -n "${WORKBOOK_WEIGHTS_DIR:-}" ]; then
	epochs=${FINETUNE_EPOCHS:-10} steps=${FINETUNE_STEPS:-100} val=${FINETUNE_VAL_STEPS:-30}
	echo "== 5. Exercise 8.03 on XLA (CUDA): $epochs epochs × $steps steps, $val validation steps, batch 32, data $DATA"
	SECONDS=0
	GOMLX_BACKEND=$XLA "$DIST/workbook" finetune --data "$DATA" --epochs "$epochs" --steps "$steps" --val-steps "$val" \
		--out "$(mktemp -d)/car-flower-classifier.ckpt" || status=1
	echo "workbook finetune on XLA (CUDA): ${SECONDS} s wall"
	if [ "$TORCH_DEVICE" = cuda ]; then
		echo "-- PyTorch on CUDA, the same task's step (torch_finetune_bench.py, 4 workers feeding the GPU)"
		"$PYTHON" "$ROOT/cmd/workbook/testdata/torch_finetune_bench.py" --data "$DATA" --steps 5 --val-steps 1 \
			--device cuda --workers 4 || status=1
	fi
else
	echo "== 5. skipped: set WORKBOOK_WEIGHTS_DIR (the Keras .h5 files) to run Exercise 8.03 on XLA"
fi

if command -v go >/dev/null && { command -v gonb >/dev/null || [ -x "$HOME/go/bin/gonb" ]; } && [ -n "${WORKBOOK_WEIGHTS_DIR:-}" ]; then
	echo "== 6. notebook 04 headless on XLA (CUDA), WORKBOOK_QUICK=1"
	cd "$ROOT" || exit 2
	SECONDS=0
	GOMLX_BACKEND=$XLA WORKBOOK_QUICK=1 "$DIST/workbook" notebooks run --out "$(mktemp -d)" \
		notebooks/04-exercise-8.03-vgg16-finetune.ipynb || status=1
	echo "notebook 04 on XLA (CUDA): ${SECONDS} s wall"
else
	echo "== 6. not run: notebook 04 needs Go, Jupyter and GoNB here (workbook setup) and WORKBOOK_WEIGHTS_DIR; GoNB compiles every cell with Go"
fi
echo "== gpu_check: $([ $status = 0 ] && echo all checks passed || echo SOME CHECKS FAILED)"
exit $status
