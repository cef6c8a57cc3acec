#!/usr/bin/python3
"""Whole-process prediction: `workbook predict IMAGE` against the same work in PyTorch.

Runs, one after the other on the same machine and load, each under /usr/bin/time -v:

  workbook predict --model M IMAGE      (WORKBOOK_WEIGHTS_DIR=DIR, GOMAXPROCS=THREADS)
  this script --torch-child ...         (torch.set_num_threads(THREADS))

The PyTorch side does what the command does, in the usual PyTorch way: read the Keras .h5
checkpoint (h5py, float32) into torchvision's network adjusted to Keras' semantics (ResNet50:
stride on the first 1x1 convolution, BatchNormalization epsilon 1e-3, convolution biases),
load and preprocess the image as Keras does (PIL nearest resize to 224x224, BGR, caffe
means), one forward pass, softmax, top-5. Both print the top-5; the script checks they name
the same classes, then prints wall time, CPU time and peak RSS of each process and the
ratios (workbook / PyTorch), with the load average before and after.

Example (weights: the seeded stand-in checkpoints the tests generate, see internal/reference):

  go build -o /tmp/workbook ./cmd/workbook
  /usr/bin/python3 cmd/workbook/testdata/predict_vs_torch.py --workbook /tmp/workbook \\
      --weights-dir ~/.cache/transfer-learning-go/reference-v1 \\
      --image datasets/prediction/test_image_1.jpg --models vgg16,resnet50 --repeat 3
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
CLASS_INDEX = os.path.join(REPO, "kernelext", "imagenet_class_index.json")
WEIGHT_FILES = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
}
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


# ---------------------------------------------------------------------------
# The PyTorch process.


def torch_child(model, weights, image, threads):
    import h5py
    import numpy as np
    import torch
    import torchvision
    from PIL import Image

    torch.set_num_threads(threads)
    with h5py.File(weights, "r") as f:
        w = {}
        for name in (n.decode("utf8") for n in f.attrs["layer_names"]):
            g = f[name]
            names = [x.decode("utf8") for x in g.attrs["weight_names"]]
            if names:
                w[name] = [np.asarray(g[x], dtype=np.float32) for x in names]

    def conv(k):  # Keras (kh, kw, cin, cout) -> torch (cout, cin, kh, kw)
        return torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))

    def vec(a):
        return torch.from_numpy(np.ascontiguousarray(a))

    if model == "vgg16":
        m = torchvision.models.vgg16(weights=None)
        convs = [mod for mod in m.features if isinstance(mod, torch.nn.Conv2d)]
        names = ["block%d_conv%d" % (b, c) for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)) for c in range(1, n + 1)]
        for name, mod in zip(names, convs):
            mod.weight.data, mod.bias.data = conv(w[name][0]), vec(w[name][1])
        fc1 = w["fc1"][0].reshape(7, 7, 512, 4096).transpose(3, 2, 0, 1).reshape(4096, 25088)
        for mod, k, b in ((m.classifier[0], fc1, w["fc1"][1]), (m.classifier[3], w["fc2"][0].T, w["fc2"][1]),
                          (m.classifier[6], w["predictions"][0].T, w["predictions"][1])):
            mod.weight.data, mod.bias.data = vec(k), vec(b)
    else:
        m = torchvision.models.resnet50(weights=None)

        def set_conv(mod, name):
            mod.weight.data = conv(w[name][0])
            mod.bias = torch.nn.Parameter(vec(w[name][1]))

        def set_bn(mod, name):
            g, b, mean, var = w[name]
            mod.weight.data, mod.bias.data = vec(g), vec(b)
            mod.running_mean.data, mod.running_var.data = vec(mean), vec(var)
            mod.eps = 1e-3

        set_conv(m.conv1, "conv1")
        set_bn(m.bn1, "bn_conv1")
        for stage, layer in zip((2, 3, 4, 5), (m.layer1, m.layer2, m.layer3, m.layer4)):
            for bi, blk in enumerate(layer):
                c, n = "res%d%s_branch" % (stage, "abcdef"[bi]), "bn%d%s_branch" % (stage, "abcdef"[bi])
                if bi == 0 and stage > 2:
                    blk.conv1.stride, blk.conv2.stride = (2, 2), (1, 1)
                for cm, bm, br in ((blk.conv1, blk.bn1, "2a"), (blk.conv2, blk.bn2, "2b"), (blk.conv3, blk.bn3, "2c")):
                    set_conv(cm, c + br)
                    set_bn(bm, n + br)
                if blk.downsample is not None:
                    set_conv(blk.downsample[0], c + "1")
                    set_bn(blk.downsample[1], n + "1")
        m.fc.weight.data, m.fc.bias.data = vec(w["fc1000"][0].T), vec(w["fc1000"][1])
    del w
    m.eval()

    img = Image.open(image)
    if img.mode != "RGB":
        img = img.convert("RGB")
    if img.size != (224, 224):
        img = img.resize((224, 224), Image.NEAREST)
    x = np.asarray(img, dtype=np.float32)[..., ::-1] - np.array(CAFFE_MEAN_BGR, dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)[None]))
    with torch.inference_mode():
        p = torch.softmax(m(x), dim=1)[0].numpy()
    with open(CLASS_INDEX) as f:
        idx = json.load(f)
    for i in np.argsort(-p, kind="stable")[:5]:
        print("%s %s %.6f" % (idx[str(i)][0], idx[str(i)][1], p[i]))


# ---------------------------------------------------------------------------
# The driver.


def timed(cmd, env):
    """Runs cmd under /usr/bin/time -v; returns (stdout, wall s, cpu s, max RSS MiB)."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit("predict_vs_torch: %s failed with status %d" % (cmd[0], r.returncode))

    def field(name):
        m = re.search(r"^\s*%s: (.*)$" % re.escape(name), r.stderr, re.M)
        if not m:
            raise SystemExit("predict_vs_torch: /usr/bin/time printed no %r" % name)
        return m.group(1).strip()

    wall = 0.0
    for part in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"):
        wall = wall * 60 + float(part)
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    return r.stdout, wall, cpu, int(field("Maximum resident set size (kbytes)")) / 1024


def wnids(text):
    return re.findall(r"\bn\d{8}\b", text)[:5]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workbook", help="path of a built workbook binary")
    ap.add_argument("--weights-dir", help="folder holding the Keras .h5 files (WORKBOOK_WEIGHTS_DIR)")
    ap.add_argument("--image", help="the image to classify")
    ap.add_argument("--models", default="vgg16,resnet50")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the medians are compared")
    ap.add_argument("--torch-child", nargs=3, metavar=("MODEL", "WEIGHTS", "IMAGE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.torch_child:
        torch_child(*args.torch_child, threads=args.threads)
        return 0
    if not (args.workbook and args.weights_dir and args.image):
        ap.error("--workbook, --weights-dir and --image are required")

    env = dict(os.environ, WORKBOOK_WEIGHTS_DIR=os.path.abspath(args.weights_dir), GOMAXPROCS=str(args.threads),
               OMP_NUM_THREADS=str(args.threads))
    load0 = os.getloadavg()[0]
    print("CPU: %s, %d threads per side, load before %.2f" % (cpu_model(), args.threads, load0))
    print("%-9s %-8s %8s %8s %9s" % ("model", "side", "wall s", "cpu s", "RSS MiB"))
    status = 0
    for model in args.models.split(","):
        weights = os.path.join(args.weights_dir, WEIGHT_FILES[model])
        sides = {
            "workbook": [args.workbook, "predict", "--model", model, args.image],
            "pytorch": [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads),
                        "--torch-child", model, weights, args.image],
        }
        runs = {s: [] for s in sides}
        tops = {}
        for _ in range(args.repeat):
            for side, cmd in sides.items():
                out, wall, cpu, rss = timed(cmd, env)
                runs[side].append((wall, cpu, rss))
                tops[side] = wnids(out)
        med = {}
        for side, rs in runs.items():
            rs = sorted(rs)
            med[side] = rs[len(rs) // 2]
            print("%-9s %-8s %8.2f %8.2f %9.0f" % ((model, side) + med[side]))
        ratio = [a / b for a, b in zip(med["workbook"], med["pytorch"])]
        print("%-9s %-8s %8.2f %8.2f %9.2f   (workbook / PyTorch)" % (model, "ratio", *ratio))
        if tops["workbook"] != tops["pytorch"] or len(tops["workbook"]) != 5:
            print("%s: top-5 differ: workbook %s, PyTorch %s" % (model, tops["workbook"], tops["pytorch"]))
            status = 1
        else:
            print("%s: same top-5 %s" % (model, " ".join(tops["workbook"])))
    print("load after %.2f" % os.getloadavg()[0])
    return status


if __name__ == "__main__":
    sys.exit(main())
