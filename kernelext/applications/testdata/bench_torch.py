#!/usr/bin/python3
"""PyTorch inference latency of VGG16 and ResNet50, for comparison with Go.

A Go benchmark runs this in the same session (same machine, same load) and
prints the ratio, because absolute Go timings mean little on a shared machine.
Prints one JSON object on stdout; progress goes to stderr.

ResNet50 gets the Keras variant (stride on the first 1x1 convolution of each
downsampling block instead of on the 3x3), the architecture the Go model
implements; weights are torchvision's random initialisation, which does not
affect the speed of dense float32 kernels.

Example:
    /usr/bin/python3 bench_torch.py --models vgg16,resnet50 --batches 1,8
"""

import argparse
import json
import os
import statistics
import sys
import time

EXIT_MISSING_DEPS = 3

try:
    import torch
    import torchvision
except ImportError as e:
    print("bench_torch: missing Python dependency: %s (needs torch, torchvision)" % e, file=sys.stderr)
    sys.exit(EXIT_MISSING_DEPS)


def build(name):
    if name == "vgg16":
        return torchvision.models.vgg16(weights=None)
    if name == "resnet50":
        m = torchvision.models.resnet50(weights=None)
        for layer in (m.layer2, m.layer3, m.layer4):
            layer[0].conv1.stride = (2, 2)
            layer[0].conv2.stride = (1, 1)
        return m
    raise SystemExit("bench_torch: unknown model %r (want vgg16 or resnet50)" % name)


def measure(model, batch, device, min_time, min_iters, warmup):
    x = torch.randn(batch, 3, 224, 224, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        times = []
        start = time.perf_counter()
        while len(times) < min_iters or time.perf_counter() - start < min_time:
            t0 = time.perf_counter()
            model(x)
            sync()
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "batch": batch,
        "iterations": len(times),
        "seconds_per_batch_median": med,
        "seconds_per_batch_min": min(times),
        "seconds_per_image": med / batch,
        "images_per_second": batch / med,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="vgg16,resnet50")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--min-time", type=float, default=3.0, help="seconds of timed runs per case")
    ap.add_argument("--min-iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    out = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "dtype": "float32",
        "results": {},
    }
    for name in args.models.split(","):
        model = build(name).eval().to(args.device)
        res = []
        for b in (int(v) for v in args.batches.split(",")):
            r = measure(model, b, args.device, args.min_time, args.min_iters, args.warmup)
            print("bench_torch: %s batch %d: %.4f s/image (%d runs)"
                  % (name, b, r["seconds_per_image"], r["iterations"]), file=sys.stderr, flush=True)
            res.append(r)
        out["results"][name] = res
        del model
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
