#!/usr/bin/python3
"""Writes small Keras-layout HDF5 checkpoints with h5py, plus expected.json describing them.

Usage: make_checkpoints.py OUTDIR

The Go tests run this with Debian's /usr/bin/python3 (python3-h5py) into a temporary directory.
The files copy the layouts Keras writes, with tiny shapes and seeded random values:

  keras1_vgg16.h5          the official VGG16 file's layout (Keras 1.x saver): root attribute
                           layer_names (fixed-length byte strings, all 23 layers), one group per
                           layer with attribute weight_names (an empty float64 array for
                           weightless layers, as h5py stores Keras 1's empty list), datasets
                           <layer>_W_1:0 and <layer>_b_1:0
  keras1_vgg16_notop.h5    the same without flatten/fc1/fc2/predictions
  keras1_resnet50.h5       the official ResNet50 file's layout: 177 root groups, datasets
                           <layer>_W:0, <layer>_b:0 and, for batch norm, _gamma, _beta,
                           _running_mean, _running_std (which holds the variance)
  keras2_model.h5          Keras 2.3 model.save: model_weights/<layer>/<layer>/kernel:0, root
                           attributes keras_version/backend/model_config, optimizer_weights,
                           a variable name uniquified by TensorFlow (dense_1_1/kernel:0)
  keras2_weights.h5        Keras 2 save_weights: layers at the root, layer_names split into
                           layer_names0/layer_names1 (as Keras does past 64 KiB), and a nested
                           model layer "vgg16" whose weights belong to its sub-layers
  nan.h5                   Keras 1 layout with NaN and infinite weights
  not_keras.h5             an HDF5 file without layer_names
  keras3.h5                the top-level layout of a Keras 3 .weights.h5 file

expected.json gives, per file, the layers in order with their canonical keys (kernel, bias,
gamma, beta, moving_mean, moving_variance: the mapping Keras itself applies when loading),
shapes and values (as Python reprs, read exactly by Go's strconv.ParseFloat).

Why written by hand: the savers are Keras core (keras/engine/saving.py) and the official files'
Keras 1.x writer, neither of which Debian 12 packages; h5py, which both use, writes the bytes.
"""
import json
import os
import sys

import h5py
import numpy as np

out = sys.argv[1]
rng = np.random.RandomState(20240501)
expected = {}


def num(x):
    return repr(float(x))


def arr(shape):
    return rng.standard_normal(shape).astype(np.float32)


def exp_layer(name, arrays):
    """arrays: list of (key, np.ndarray) in weight_names order."""
    return {"name": name, "keys": [k for k, _ in arrays],
            "arrays": {k: {"shape": list(a.shape), "values": [num(v) for v in a.reshape(-1)]} for k, a in arrays}}


VGG16 = ["input_1",
         "block1_conv1", "block1_conv2", "block1_pool",
         "block2_conv1", "block2_conv2", "block2_pool",
         "block3_conv1", "block3_conv2", "block3_conv3", "block3_pool",
         "block4_conv1", "block4_conv2", "block4_conv3", "block4_pool",
         "block5_conv1", "block5_conv2", "block5_conv3", "block5_pool",
         "flatten", "fc1", "fc2", "predictions"]


def vgg_arrays(name, cin):
    """Tiny VGG16-like weights: 2 channels per conv, dense 8 -> 3 -> 3 -> 4."""
    if "conv" in name:
        return [("kernel", arr((3, 3, cin, 2))), ("bias", arr((2,)))], 2
    if name == "fc1":
        return [("kernel", arr((8, 3))), ("bias", arr((3,)))], 3
    if name == "fc2":
        return [("kernel", arr((3, 3))), ("bias", arr((3,)))], 3
    if name == "predictions":
        return [("kernel", arr((3, 4))), ("bias", arr((4,)))], 4
    return [], cin


def write_keras1(path, layers, suffix, nan=False):
    """layers: list of (name, [(key, array)]); suffix "_1" for the VGG16 file, "" for ResNet50."""
    k1 = {"kernel": "W", "bias": "b", "gamma": "gamma", "beta": "beta",
          "moving_mean": "running_mean", "moving_variance": "running_std"}
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n, _ in layers])
        for name, arrays in layers:
            g = f.create_group(name)
            names = ["%s_%s%s:0" % (name, k1[k], suffix) for k, _ in arrays]
            g.attrs["weight_names"] = np.array([n.encode() for n in names]) if names else np.array([])
            for n, (_, a) in zip(names, arrays):
                g.create_dataset(n, data=a)


def vgg_layers(top=True):
    layers, cin = [], 3
    for name in VGG16:
        if not top and name in ("flatten", "fc1", "fc2", "predictions"):
            continue
        arrays, cin = vgg_arrays(name, cin)
        layers.append((name, arrays))
    return layers


for fname, top in (("keras1_vgg16.h5", True), ("keras1_vgg16_notop.h5", False)):
    layers = vgg_layers(top)
    write_keras1(os.path.join(out, fname), layers, "_1")
    expected[fname] = {"layout": "keras1", "keras_version": "1", "backend": "",
                       "arch": "VGG16" if top else "VGG16 (include_top=False)",
                       "layers": [exp_layer(n, a) for n, a in layers]}


def resnet_layers():
    """The 177 layers of Keras 1's ResNet50, in model order, with tiny weights."""
    layers = []
    act, merge = [1], [1]

    def conv(name, k):
        layers.append((name, [("kernel", arr((k, k, 2, 2))), ("bias", arr((2,)))]))

    def bn(name):
        var = (rng.uniform(0.5, 2.0, 2)).astype(np.float32)
        layers.append((name, [("gamma", arr((2,))), ("beta", arr((2,))), ("moving_mean", arr((2,))),
                              ("moving_variance", var)]))

    def relu():
        layers.append(("activation_%d" % act[0], []))
        act[0] += 1

    layers.append(("input_1", []))
    layers.append(("zeropadding2d_1", []))
    conv("conv1", 7)
    bn("bn_conv1")
    relu()
    layers.append(("maxpooling2d_1", []))
    for stage, blocks in ((2, "abc"), (3, "abcd"), (4, "abcdef"), (5, "abc")):
        for b in blocks:
            base = "%d%s_branch" % (stage, b)
            conv("res" + base + "2a", 1)
            bn("bn" + base + "2a")
            relu()
            conv("res" + base + "2b", 3)
            bn("bn" + base + "2b")
            relu()
            conv("res" + base + "2c", 1)
            if b == "a":
                conv("res" + base + "1", 1)
            bn("bn" + base + "2c")
            if b == "a":
                bn("bn" + base + "1")
            layers.append(("merge_%d" % merge[0], []))
            merge[0] += 1
            relu()
    layers.append(("avg_pool", []))
    layers.append(("flatten_1", []))
    layers.append(("fc1000", [("kernel", arr((2, 5))), ("bias", arr((5,)))]))
    assert len(layers) == 177, len(layers)
    return layers


layers = resnet_layers()
write_keras1(os.path.join(out, "keras1_resnet50.h5"), layers, "")
expected["keras1_resnet50.h5"] = {"layout": "keras1", "keras_version": "1", "backend": "", "arch": "ResNet50",
                                  "layers": [exp_layer(n, a) for n, a in layers]}

# NaN and infinite values.
layers = vgg_layers(True)
k = layers[1][1][0][1]
k.reshape(-1)[[0, 5]] = np.nan
k.reshape(-1)[7] = -np.inf
write_keras1(os.path.join(out, "nan.h5"), layers, "_1")
expected["nan.h5"] = {"layout": "keras1", "keras_version": "1", "backend": "", "arch": "VGG16",
                      "layers": [exp_layer(n, a) for n, a in layers], "nan": 2, "inf": 1}


# Keras 2.3 model.save: the book's transfer-learning model (VGG16 base + new head).
def write_keras2_layer(g, name, arrays, var_scope=None):
    scope = var_scope or name
    names = ["%s/%s:0" % (scope, key) for key, _ in arrays]
    g.attrs["weight_names"] = np.array([n.encode() for n in names]) if names else np.array([])
    for n, (_, a) in zip(names, arrays):
        g.create_dataset(n, data=a)


model_layers = [(n, a) for n, a in vgg_layers(False)]
model_layers += [("flatten_1", []),
                 ("batch_normalization_1", [("gamma", arr((8,))), ("beta", arr((8,))), ("moving_mean", arr((8,))),
                                            ("moving_variance", rng.uniform(0.5, 2, 8).astype(np.float32))]),
                 ("dense_1", [("kernel", arr((8, 1))), ("bias", arr((1,)))])]
with h5py.File(os.path.join(out, "keras2_model.h5"), "w") as f:
    f.attrs["keras_version"] = b"2.3.1"
    f.attrs["backend"] = b"tensorflow"
    f.attrs["model_config"] = json.dumps({"class_name": "Model", "config": {"name": "model_1"}}).encode()
    f.attrs["training_config"] = json.dumps({"loss": "binary_crossentropy"}).encode()
    mw = f.create_group("model_weights")
    mw.attrs["layer_names"] = np.array([n.encode() for n, _ in model_layers])
    mw.attrs["backend"] = b"tensorflow"
    mw.attrs["keras_version"] = b"2.3.1"
    for name, arrays in model_layers:
        # TensorFlow uniquifies variable names when a model is built twice in one session.
        write_keras2_layer(mw.create_group(name), name, arrays, "dense_1_1" if name == "dense_1" else None)
    ow = f.create_group("optimizer_weights")
    ow.create_dataset("training/Adam/iterations:0", data=np.int64(7))
expected["keras2_model.h5"] = {"layout": "keras2", "keras_version": "2.3.1", "backend": "tensorflow",
                               "arch": "VGG16 (include_top=False)",
                               "layers": [exp_layer(n, a) for n, a in model_layers]}

# Keras 2 save_weights of Sequential([vgg16_base, Flatten(), Dense(1)]): the base is one layer.
base = vgg_layers(False)
seq = [("vgg16", None), ("flatten_2", []), ("dense_2", [("kernel", arr((8, 1))), ("bias", arr((1,)))])]
with h5py.File(os.path.join(out, "keras2_weights.h5"), "w") as f:
    names = [n.encode() for n, _ in seq]
    f.attrs["layer_names0"] = np.array(names[:2])
    f.attrs["layer_names1"] = np.array(names[2:])
    f.attrs["keras_version"] = "2.3.1"  # a variable-length string, as newer h5py writes str
    f.attrs["backend"] = "tensorflow"
    g = f.create_group("vgg16")
    wn = []
    for name, arrays in base:
        for key, a in arrays:
            wn.append("%s/%s:0" % (name, key))
            g.create_dataset(wn[-1], data=a)
    g.attrs["weight_names"] = np.array([n.encode() for n in wn])
    write_keras2_layer(f.create_group("flatten_2"), "flatten_2", [])
    write_keras2_layer(f.create_group("dense_2"), "dense_2", seq[2][1])
flat = [("vgg16", [])] + [(n, a) for n, a in base if a] + seq[1:]
expected["keras2_weights.h5"] = {"layout": "keras2", "keras_version": "2.3.1", "backend": "tensorflow",
                                 "arch": "VGG16 (include_top=False)",
                                 "layers": [exp_layer(n, a) for n, a in flat]}

with h5py.File(os.path.join(out, "not_keras.h5"), "w") as f:
    f.create_dataset("x", data=np.zeros(3, dtype=np.float32))
with h5py.File(os.path.join(out, "keras3.h5"), "w") as f:
    f.create_group("layers").create_group("dense").create_group("vars").create_dataset("0", data=np.zeros(2))
    f.create_group("vars")

with open(os.path.join(out, "expected.json"), "w") as fh:
    json.dump(expected, fh)
