#!/usr/bin/python3
"""Writes small, deliberately wrong Keras-1 checkpoints for the loader's error tests.

Usage: /usr/bin/python3 gen_bad_weights.py OUTDIR

Files (Keras-1 layout as in the official application checkpoints: root attribute
layer_names, one group per layer with attribute weight_names, float32 datasets
"<layer>_W_1:0" / "<layer>_b_1:0" for VGG16, "<layer>_W:0", "_gamma:0", ... for ResNet50):

  vgg16_missing_layer.h5  VGG16 notop with only block1_conv1: block1_conv2 is missing.
  vgg16_wrong_shape.h5    block1_conv1 with 32 filters instead of 64.
  resnet50_stem.h5        the first ResNet50 layers only (conv1, bn_conv1): another
                          architecture's file.
  vgg16_notop_nan.h5      a complete VGG16 notop file (zeros) with one NaN in block3_conv1's
                          kernel and one +Inf in block5_conv3's bias.
"""

import os
import sys

import h5py
import numpy as np

VGG16_CONVS = [
    ("block1_conv1", 3, 64), ("block1_conv2", 64, 64),
    ("block2_conv1", 64, 128), ("block2_conv2", 128, 128),
    ("block3_conv1", 128, 256), ("block3_conv2", 256, 256), ("block3_conv3", 256, 256),
    ("block4_conv1", 256, 512), ("block4_conv2", 512, 512), ("block4_conv3", 512, 512),
    ("block5_conv1", 512, 512), ("block5_conv2", 512, 512), ("block5_conv3", 512, 512),
]


def write(path, layers):
    """layers: list of (name, [(dataset name, array)])."""
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
        for name, ws in layers:
            g = f.create_group(name)
            if ws:
                g.attrs["weight_names"] = np.array([wn.encode() for wn, _ in ws])
            else:
                g.attrs["weight_names"] = np.zeros((0,), dtype=np.float64)
            for wn, a in ws:
                g.create_dataset(wn, data=a.astype(np.float32))
    os.replace(tmp, path)


def vgg_conv(name, cin, cout, fill=0.01):
    return (name, [(name + "_W_1:0", np.full((3, 3, cin, cout), fill, np.float32)),
                   (name + "_b_1:0", np.zeros((cout,), np.float32))])


def main(out):
    os.makedirs(out, exist_ok=True)
    write(os.path.join(out, "vgg16_missing_layer.h5"), [("input_1", []), vgg_conv("block1_conv1", 3, 64)])
    write(os.path.join(out, "vgg16_wrong_shape.h5"), [("input_1", []), vgg_conv("block1_conv1", 3, 32)])
    write(os.path.join(out, "resnet50_stem.h5"), [
        ("input_1", []), ("zeropadding2d_1", []),
        ("conv1", [("conv1_W:0", np.zeros((7, 7, 3, 64), np.float32)), ("conv1_b:0", np.zeros((64,), np.float32))]),
        ("bn_conv1", [("bn_conv1_gamma:0", np.ones((64,), np.float32)),
                      ("bn_conv1_beta:0", np.zeros((64,), np.float32)),
                      ("bn_conv1_running_mean:0", np.zeros((64,), np.float32)),
                      ("bn_conv1_running_std:0", np.ones((64,), np.float32))]),
    ])
    layers = [("input_1", [])]
    for name, cin, cout in VGG16_CONVS:
        layers.append(vgg_conv(name, cin, cout, fill=0.0))
        if name in ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"):
            layers.append((name.split("_")[0] + "_pool", []))
    arrays = {name: ws for name, ws in layers}
    arrays["block3_conv1"][0][1][0, 0, 0, 0] = np.nan  # kernel
    arrays["block5_conv3"][1][1][7] = np.inf  # bias
    write(os.path.join(out, "vgg16_notop_nan.h5"), layers)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
