#!/usr/bin/python3
"""Independent numerical reference for the Go VGG16 and ResNet50 builders.

The Go models must reproduce Keras 2.3 / keras-applications 1.0.8 exactly, but
the real ImageNet checkpoints (800 MB, downloaded) are not something a unit
test can depend on, and comparing the Go output with itself proves nothing.
So this script:

1. draws seeded random weights, scaled so activations neither vanish nor
   explode and the softmax is neither one-hot nor uniform: He-normal
   kernels, small random biases, ResNet50 BatchNormalization statistics
   fitted to the book images then perturbed, and a final Dense layer centred
   on the images' mean feature (see calibrate_head),
2. writes them as the four official Keras-1 checkpoint files
   (`*_weights_tf_dim_ordering_tf_kernels[_notop].h5`, same groups, attribute
   and dataset names, same NHWC/"tf" kernel layouts) that the Go `weights`
   package reads,
3. loads the very same float32 numbers into torchvision's vgg16 / resnet50,
   adjusted to Keras semantics (HWC flatten order for fc1, the ResNet50 stride
   on the first 1x1 convolution, conv biases, BatchNormalization epsilon 1e-3),
4. runs them in float64 (and float32, to report the gap) on the book's seven
   prediction images preprocessed by the real Keras functions (keras-preprocessing
   1.1.0 load_img/img_to_array, keras-applications 1.0.8 preprocess_input, through
   kernelext/testdata/keras_libs.py), and saves the softmax
   outputs, the no-top feature maps and per-layer activations of the first
   image as float32 little-endian .npy files.

`--selfcheck` additionally evaluates both checkpoints with a small NumPy
implementation written straight from the Keras layer definitions (NHWC,
explicit ZeroPadding2D, strided 1x1 convs by subsampling, BN from the h5's
running_std-as-variance) and compares it with the torch path, which checks
the layout conversions above rather than trusting them.

The networks run in torchvision rather than Keras because Keras core and TensorFlow
are not packaged in Debian 12; the checkpoint layout is written by hand for the same
reason (h5py writes the bytes).

The output directory is written atomically (temporary sibling + rename) and the
script does nothing when a manifest with the same SCRIPT_VERSION is already
there, because test runs call it every time.
"""

import argparse
import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

# Exit status when a dependency is missing, so callers can skip instead of fail.
EXIT_MISSING_DEPS = 3

# Heavy modules, imported by import_deps() only once work is needed (importing
# torch alone takes seconds, and the up-to-date check must stay cheap).
h5py = np = PIL = torch = torchvision = keras_libs = None


def import_deps():
    global h5py, np, PIL, torch, torchvision, keras_libs
    try:
        import h5py
        import numpy as np
        import PIL
        import torch
        import torchvision
        sys.path.insert(0, os.path.join(REPO_ROOT, "kernelext", "testdata"))
        import keras_libs
    except ImportError as e:
        print("gen_reference: missing Python dependency: %s (needs torch, torchvision, h5py, numpy, pillow, "
              "keras_preprocessing, keras_applications)" % e, file=sys.stderr)
        sys.exit(EXIT_MISSING_DEPS)

# Bump whenever anything that changes the generated numbers or files changes:
# the Go helper compares it with the manifest to decide whether to regenerate.
SCRIPT_VERSION = "1.0"

VGG16_SEED = 16
RESNET50_SEED = 50

# Target standard deviation of the calibrated logits (see calibrate_head):
# with 1000 classes it gives top-1 probabilities of roughly 0.03-0.9.
LOGIT_STD = 3.0

# Input scale of caffe-preprocessed images (RMS over the book images is ~64);
# VGG16's first convolution is divided by it so hidden activations are O(1).
INPUT_RMS = 64.0

# The book's prediction images as shipped in the repository (--images
# overrides); their md5s are recorded in the manifest.
IMAGE_DIR = "datasets/prediction"

VGG16_TOP = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
VGG16_NOTOP = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
RESNET50_TOP = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
RESNET50_NOTOP = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
MANIFEST = "manifest.json"
IMAGES_NPY = "book_images_preprocessed.npy"
VGG16_PROBS = "vgg16_reference_probs.npy"
VGG16_LOGITS = "vgg16_reference_logits.npy"
VGG16_NOTOP_FEATURES = "vgg16_notop_features.npy"
VGG16_LAYERS_DIR = "vgg16_layers"
RESNET50_PROBS = "resnet50_reference_probs.npy"
RESNET50_LOGITS = "resnet50_reference_logits.npy"
RESNET50_NOTOP_FEATURES = "resnet50_notop_features.npy"
RESNET50_LAYERS_DIR = "resnet50_layers"

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))


def default_out_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "transfer-learning-go", "reference-v1")


def log(msg):
    print("gen_reference: " + msg, flush=True)


def md5_file(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Images: the real Keras load_img(target_size=(224,224)) + img_to_array + caffe
# preprocess_input (keras-preprocessing 1.1.0, keras-applications 1.0.8), through
# kernelext/testdata/keras_libs.py.


def find_image_dir(arg):
    p = os.path.abspath(arg if arg else os.path.join(REPO_ROOT, IMAGE_DIR))
    if not glob.glob(os.path.join(p, "*.jpg")):
        raise SystemExit("gen_reference: no *.jpg images in %s (use --images DIR)" % p)
    return p


def keras_preprocess(path):
    x = keras_libs.img_to_array(keras_libs.load_img(path, target_size=(224, 224)))
    return keras_libs.preprocess_input(x)


# ---------------------------------------------------------------------------
# Layer tables in Keras model.layers order.

VGG16_CONVS = [
    ("block1_conv1", 3, 64), ("block1_conv2", 64, 64), "block1_pool",
    ("block2_conv1", 64, 128), ("block2_conv2", 128, 128), "block2_pool",
    ("block3_conv1", 128, 256), ("block3_conv2", 256, 256), ("block3_conv3", 256, 256), "block3_pool",
    ("block4_conv1", 256, 512), ("block4_conv2", 512, 512), ("block4_conv3", 512, 512), "block4_pool",
    ("block5_conv1", 512, 512), ("block5_conv2", 512, 512), ("block5_conv3", 512, 512), "block5_pool",
]
VGG16_DENSES = [("fc1", 25088, 4096), ("fc2", 4096, 4096), ("predictions", 4096, 1000)]


def vgg16_layer_names(include_top):
    names = ["input_1"] + [e if isinstance(e, str) else e[0] for e in VGG16_CONVS]
    if include_top:
        names += ["flatten"] + [d[0] for d in VGG16_DENSES]
    return names


# (stage, block letters, filters) as in keras-applications resnet50.py.
RESNET50_STAGES = [
    (2, "abc", (64, 64, 256)),
    (3, "abcd", (128, 128, 512)),
    (4, "abcdef", (256, 256, 1024)),
    (5, "abc", (512, 512, 2048)),
]


def resnet50_blocks():
    """Yields (stage, block, filters, in_channels, stride, is_conv_block)."""
    cin = 64
    for stage, letters, f in RESNET50_STAGES:
        for b in letters:
            conv = b == "a"
            stride = 2 if (conv and stage > 2) else 1
            yield stage, b, f, cin, stride, conv
            cin = f[2]


def resnet50_layer_names(include_top):
    """Layer names of the official Keras-1 checkpoint, in model.layers order.

    The file was saved by Keras 1 from fchollet/deep-learning-models
    resnet50.py, so weightless layers carry Keras-1 auto names
    (zeropadding2d_1, maxpooling2d_1, merge_N; activation_N as in Keras 2) and
    the head is AveragePooling2D 'avg_pool' + Flatten 'flatten_1' + 'fc1000':
    6 stem + 4*12 conv-block + 12*10 identity-block + 3 head = 177 layers.
    Within a conv block, layers of equal depth are in graph-traversal order
    (main path first): ...2c, ...1, bn...2c, bn...1 (Keras 2.3 loads this
    file by position, which only works with that order). The no-top file
    keeps avg_pool (it is outside `if include_top` in that script): 176.
    """
    names = ["input_1", "zeropadding2d_1", "conv1", "bn_conv1", "activation_1", "maxpooling2d_1"]
    act = 1
    merge = 0
    for stage, b, _f, _cin, _s, conv in resnet50_blocks():
        c = "res%d%s_branch" % (stage, b)
        n = "bn%d%s_branch" % (stage, b)
        names += [c + "2a", n + "2a", "activation_%d" % (act + 1),
                  c + "2b", n + "2b", "activation_%d" % (act + 2), c + "2c"]
        if conv:
            names += [c + "1", n + "2c", n + "1"]
        else:
            names += [n + "2c"]
        merge += 1
        act += 3
        names += ["merge_%d" % merge, "activation_%d" % act]
    names.append("avg_pool")
    if include_top:
        names += ["flatten_1", "fc1000"]
    return names


# ---------------------------------------------------------------------------
# Random weights, in Keras layout: {layer: [(dataset_name, float32 array)]}.


class Draw:
    """Seeded torch RNG returning float32 NumPy arrays."""
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, shape, std, mean=0.0):
        return (torch.randn(shape, generator=self.g, dtype=torch.float64) * std + mean).float().numpy()

    def uniform(self, shape, lo, hi):
        return (torch.rand(shape, generator=self.g, dtype=torch.float64) * (hi - lo) + lo).float().numpy()


def he_std(fan_in):
    return (2.0 / fan_in) ** 0.5


def vgg16_random_weights(seed):
    """Everything but 'predictions' (calibrated later). Keras-1 names _W_1:0."""
    d = Draw(seed)
    w = {}
    first = True
    for e in VGG16_CONVS:
        if isinstance(e, str):
            continue
        name, cin, cout = e
        std = he_std(9 * cin) / (INPUT_RMS if first else 1.0)
        first = False
        w[name] = [(name + "_W_1:0", d.normal((3, 3, cin, cout), std)),
                   (name + "_b_1:0", d.normal((cout,), 0.05))]
    for name, fin, fout in VGG16_DENSES[:2]:
        w[name] = [(name + "_W_1:0", d.normal((fin, fout), he_std(fin))),
                   (name + "_b_1:0", d.normal((fout,), 0.05))]
    return w, d


def resnet50_random_weights(seed, x64):
    """Everything but 'fc1000' (calibrated later). Keras-1 names conv1_W:0.

    BatchNormalization running statistics are fitted to the book images and
    then perturbed (mean + N(0, 0.2) std, variance x U(0.5, 1.5)): purely
    random statistics would leave the activations un-normalised, growing
    through the 16 residual blocks, and make the BN parameters numerically
    insignificant next to them, so a loader that mixed them up could pass.
    """

    d = Draw(seed)
    w = {}
    perturb = {}

    def conv(name, k, cin, cout):
        w[name] = [(name + "_W:0", d.normal((k, k, cin, cout), he_std(k * k * cin))),
                   (name + "_b:0", d.normal((cout,), 0.05))]

    def bn(name, c):
        w[name] = [(name + "_gamma:0", d.uniform((c,), 0.8, 1.2)),
                   (name + "_beta:0", d.normal((c,), 0.1)),
                   (name + "_running_mean:0", None),
                   (name + "_running_std:0", None)]  # holds the variance
        perturb[name] = (d.normal((c,), 0.2), d.uniform((c,), 0.5, 1.5))

    conv("conv1", 7, 3, 64)
    bn("bn_conv1", 64)
    for stage, b, (f1, f2, f3), cin, _s, is_conv in resnet50_blocks():
        c = "res%d%s_branch" % (stage, b)
        n = "bn%d%s_branch" % (stage, b)
        conv(c + "2a", 1, cin, f1)
        bn(n + "2a", f1)
        conv(c + "2b", 3, f1, f2)
        bn(n + "2b", f2)
        conv(c + "2c", 1, f2, f3)
        bn(n + "2c", f3)
        if is_conv:
            conv(c + "1", 1, cin, f3)
            bn(n + "1", f3)

    # Fit the statistics layer by layer in one float64 pass: a pre-hook sets
    # each BN's (float32-rounded) statistics from its actual input before it
    # runs, so later layers see exactly the final network's values.
    for name, (mnoise, vfac) in perturb.items():
        c = mnoise.shape[0]
        w[name][2] = (w[name][2][0], np.zeros((c,), np.float32))
        w[name][3] = (w[name][3][0], np.ones((c,), np.float32))
    m = torch_resnet50(w, torch.float64)

    def fit(mod, inputs):
        name = mod.keras_name
        t = inputs[0]
        mean = t.mean(dim=(0, 2, 3)).numpy()
        var = t.var(dim=(0, 2, 3), unbiased=False).numpy()
        mnoise, vfac = perturb[name]
        rm = (mean + mnoise * np.sqrt(var)).astype(np.float32)
        rv = (var * vfac).astype(np.float32)
        w[name][2] = (w[name][2][0], rm)
        w[name][3] = (w[name][3][0], rv)
        mod.running_mean.copy_(torch.from_numpy(rm.astype(np.float64)))
        mod.running_var.copy_(torch.from_numpy(rv.astype(np.float64)))

    hooks = [mod.register_forward_pre_hook(fit) for mod in m.modules()
             if isinstance(mod, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        resnet50_forward(m, x64)
    for h in hooks:
        h.remove()
    assert all(a is not None for v in w.values() for _n, a in v)
    return w, d


def calibrate_head(features, draw, prefix, suffix):
    """Draws the final Dense layer so the softmax is informative.

    Deep random ReLU nets map all images to strongly correlated features, so a
    plain random head gives (nearly) the same top-5 for every image. The head
    is therefore centred on the mean feature of the book images and scaled so
    the logits have standard deviation LOGIT_STD; a small random bias adds a
    class prior. Only the numbers are data-dependent, not the semantics.
    """

    f = features.astype(np.float64)
    d = f.shape[1]
    w0 = draw.normal((d, 1000), 1.0).astype(np.float64)
    mean = f.mean(axis=0)
    zc = (f - mean) @ w0
    s = LOGIT_STD / zc.std()
    kernel = (w0 * s).astype(np.float32)
    bias = (-(mean @ kernel.astype(np.float64)) + draw.normal((1000,), 0.2).astype(np.float64)).astype(np.float32)
    return [(prefix + "_W" + suffix, kernel), (prefix + "_b" + suffix, bias)], float(s)


# ---------------------------------------------------------------------------
# torch models fed from the Keras-layout arrays.


def _t(a, dtype):
    return torch.from_numpy(a.astype("float64")).to(dtype)


def keras_conv_to_torch(k):
    """(kh, kw, Cin, Cout) -> (Cout, Cin, kh, kw); both cross-correlations."""
    return k.transpose(3, 2, 0, 1)


def keras_fc1_to_torch(k):
    """Keras fc1 rows are in flatten order (h, w, c) of the 7x7x512 map;
    torch's nn.Flatten on NCHW gives (c, h, w)."""
    return k.reshape(7, 7, 512, 4096).transpose(3, 2, 0, 1).reshape(4096, 25088)


def torch_vgg16(w, dtype, include_top=True):
    m = torchvision.models.vgg16(weights=None).eval()
    convs = [e[0] for e in VGG16_CONVS if not isinstance(e, str)]
    tconvs = [mod for mod in m.features if isinstance(mod, torch.nn.Conv2d)]
    assert len(convs) == len(tconvs) == 13
    with torch.no_grad():
        for name, mod in zip(convs, tconvs):
            mod.weight.copy_(_t(keras_conv_to_torch(w[name][0][1]), torch.float64))
            mod.bias.copy_(_t(w[name][1][1], torch.float64))
        if include_top:
            lin = [m.classifier[0], m.classifier[3], m.classifier[6]]
            for (name, _fi, _fo), mod in zip(VGG16_DENSES, lin):
                k = w[name][0][1]
                mod.weight.copy_(_t(keras_fc1_to_torch(k) if name == "fc1" else k.T, torch.float64))
                mod.bias.copy_(_t(w[name][1][1], torch.float64))
    return m.to(dtype)


def torch_resnet50(w, dtype):
    """torchvision resnet50 adjusted to keras-applications semantics."""
    m = torchvision.models.resnet50(weights=None).eval()

    def set_conv(mod, name):
        k = w[name][0][1]
        assert tuple(mod.weight.shape) == tuple(keras_conv_to_torch(k).shape), name
        mod.weight.data = _t(keras_conv_to_torch(k), torch.float64)
        # Keras convs have a bias; torchvision's have none. Registering one
        # keeps conv -> +b -> BN in the same order as Keras.
        mod.bias = torch.nn.Parameter(_t(w[name][1][1], torch.float64))

    def set_bn(mod, name):
        g, b, mean, var = [a for _n, a in w[name]]
        mod.weight.data = _t(g, torch.float64)
        mod.bias.data = _t(b, torch.float64)
        mod.running_mean.data = _t(mean, torch.float64)
        mod.running_var.data = _t(var, torch.float64)
        mod.eps = 1e-3  # Keras BatchNormalization default; torch's is 1e-5
        mod.keras_name = name

    set_conv(m.conv1, "conv1")
    set_bn(m.bn1, "bn_conv1")
    stages = [m.layer1, m.layer2, m.layer3, m.layer4]
    blocks = list(resnet50_blocks())
    i = 0
    for si, layer in enumerate(stages):
        for blk in layer:
            stage, b, _f, _cin, stride, is_conv = blocks[i]
            i += 1
            assert stage == si + 2
            c = "res%d%s_branch" % (stage, b)
            n = "bn%d%s_branch" % (stage, b)
            # torchvision v1.5 strides the 3x3; Keras strides the first 1x1.
            blk.conv1.stride = (stride, stride)
            blk.conv2.stride = (1, 1)
            set_conv(blk.conv1, c + "2a")
            set_bn(blk.bn1, n + "2a")
            set_conv(blk.conv2, c + "2b")
            set_bn(blk.bn2, n + "2b")
            set_conv(blk.conv3, c + "2c")
            set_bn(blk.bn3, n + "2c")
            assert (blk.downsample is not None) == is_conv
            if is_conv:
                assert blk.downsample[0].stride == (stride, stride)
                set_conv(blk.downsample[0], c + "1")
                set_bn(blk.downsample[1], n + "1")
    assert i == len(blocks)
    # Keras pool1: ZeroPadding2D(1) + MaxPool 3x3/2 valid; torch pads with
    # -inf. Equal here because the input is a ReLU output (>= 0) and every
    # window holds at least one real pixel (checked by --selfcheck).
    assert m.maxpool.padding == 1 and m.maxpool.kernel_size == 3 and m.maxpool.stride == 2
    if "fc1000" in w:
        m.fc.weight.data = _t(w["fc1000"][0][1].T, torch.float64)
        m.fc.bias.data = _t(w["fc1000"][1][1], torch.float64)
    return m.to(dtype)


def nchw_to_nhwc(t):
    a = t.detach().cpu().numpy()
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if a.ndim == 4 else a


def vgg16_forward(m, x_nchw, dump=None):
    """Returns (logits, notop NHWC features, penultimate). If dump is a dict,
    fills it with Keras-named layer outputs (NHWC) of the batch."""

    feats = m.features
    pools = [i for i, mod in enumerate(feats) if isinstance(mod, torch.nn.MaxPool2d)]
    h = x_nchw
    for i, mod in enumerate(feats):
        h = mod(h)
        if dump is not None:
            if i == 1:
                dump["block1_conv1"] = nchw_to_nhwc(h)
            if i in pools:
                dump["block%d_pool" % (pools.index(i) + 1)] = nchw_to_nhwc(h)
    notop = nchw_to_nhwc(h)
    h = m.avgpool(h)  # adaptive 7x7 on a 7x7 map: identity
    h = torch.flatten(h, 1)
    c = m.classifier
    fc1 = c[1](c[0](h))
    fc2 = c[4](c[3](fc1))
    logits = c[6](fc2)
    if dump is not None:
        dump["fc1"] = fc1.detach().numpy()
        dump["fc2"] = fc2.detach().numpy()
    return logits, notop, fc2


def resnet50_forward(m, x_nchw, dump=None):
    def keep(name, t):
        if dump is not None:
            dump[name] = nchw_to_nhwc(t)

    h = m.conv1(x_nchw)
    keep("conv1", h)
    h = m.bn1(h)
    keep("bn_conv1", h)
    h = torch.relu(h)
    keep("activation_1", h)
    h = m.maxpool(h)
    keep("max_pooling2d_1", h)
    act = 1
    for stage_i, layer in enumerate([m.layer1, m.layer2, m.layer3, m.layer4]):
        for bi, blk in enumerate(layer):
            stage, b = stage_i + 2, "abcdef"[bi]
            act += 3
            if dump is not None and (stage, b) == (3, "a"):
                # Every layer of the first strided conv block, Keras-named.
                c, n = "res3a_branch", "bn3a_branch"
                y = blk.conv1(h); keep(c + "2a", y)
                y = blk.bn1(y); keep(n + "2a", y)
                y = torch.relu(y)
                y = blk.conv2(y); keep(c + "2b", y)
                y = blk.bn2(y); keep(n + "2b", y)
                y = torch.relu(y)
                y = blk.conv3(y); keep(c + "2c", y)
                y = blk.bn3(y); keep(n + "2c", y)
                s = blk.downsample[0](h); keep(c + "1", s)
                s = blk.downsample[1](s); keep(n + "1", s)
            h = blk(h)
            # Keras 2.3 name of the block's output activation.
            keep("activation_%d" % act, h)
    notop = nchw_to_nhwc(h)
    pooled = torch.flatten(m.avgpool(h), 1)
    if dump is not None:
        dump["avg_pool"] = pooled.detach().numpy()
    logits = m.fc(pooled) if isinstance(m.fc, torch.nn.Linear) else None
    return logits, notop, pooled


# ---------------------------------------------------------------------------
# HDF5 writing in the Keras-1 layout.


def write_keras1_h5(path, layer_names, weights):
    """Root attr layer_names; one group per layer with attr weight_names and
    the float32 datasets directly inside, like Keras 1 save_weights."""

    with h5py.File(path, "w") as f:
        # Fixed-length byte strings, as h5py 2 stored Keras 1's lists of
        # bytes (h5py 3 would store a plain list as variable-length).
        f.attrs["layer_names"] = np.array([n.encode("utf8") for n in layer_names])
        for name in layer_names:
            g = f.create_group(name)
            ws = weights.get(name, [])
            if ws:
                g.attrs["weight_names"] = np.array([wn.encode("utf8") for wn, _a in ws])
            else:
                # Keras 1 wrote weight_names = [] which h5py stores as an
                # empty float64 array.
                g.attrs["weight_names"] = np.zeros((0,), dtype=np.float64)
            for wn, a in ws:
                assert a.dtype == np.float32
                ds = g.create_dataset(wn, a.shape, dtype=np.float32)
                ds[...] = a


def read_keras1_h5(path):
    """Reads a checkpoint the way a by-name loader would: {layer: [arrays]}."""
    out = {}
    with h5py.File(path, "r") as f:
        names = [n.decode("utf8") for n in f.attrs["layer_names"]]
        for n in names:
            g = f[n]
            wn = [x.decode("utf8") for x in g.attrs["weight_names"]]
            if wn:
                out[n] = [np.array(g[x], dtype=np.float64) for x in wn]
    return names, out


# ---------------------------------------------------------------------------
# NumPy Keras-semantics implementation (self-check only), float64, NHWC.


def np_conv(x, k, b, stride=1, pad=0):
    """Keras Conv2D on one image (H, W, C): explicit symmetric zero padding,
    'valid' cross-correlation; 'same' 3x3 stride 1 == pad 1."""

    if pad:
        x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    kh, kw, _ci, co = k.shape
    ho = (x.shape[0] - kh) // stride + 1
    wo = (x.shape[1] - kw) // stride + 1
    out = np.zeros((ho, wo, co))
    for a in range(kh):
        for c in range(kw):
            patch = x[a:a + stride * (ho - 1) + 1:stride, c:c + stride * (wo - 1) + 1:stride, :]
            out += patch @ k[a, c]
    return out + b


def np_maxpool(x, size, stride):
    ho = (x.shape[0] - size) // stride + 1
    wo = (x.shape[1] - size) // stride + 1
    out = np.full((ho, wo, x.shape[2]), -np.inf)
    for a in range(size):
        for c in range(size):
            out = np.maximum(out, x[a:a + stride * (ho - 1) + 1:stride, c:c + stride * (wo - 1) + 1:stride, :])
    return out


def np_bn(x, p):
    gamma, beta, mean, var = p
    return gamma * (x - mean) / np.sqrt(var + 1e-3) + beta


def np_softmax(z):
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def np_vgg16(x, w):
    relu = lambda v: np.maximum(v, 0)
    h = x
    for e in VGG16_CONVS:
        if isinstance(e, str):
            h = np_maxpool(h, 2, 2)
        else:
            k, b = w[e[0]]
            h = relu(np_conv(h, k, b, 1, 1))
    notop = h
    h = h.reshape(-1)  # Keras Flatten: row-major (h, w, c)
    h = relu(h @ w["fc1"][0] + w["fc1"][1])
    h = relu(h @ w["fc2"][0] + w["fc2"][1])
    return np_softmax(h @ w["predictions"][0] + w["predictions"][1]), notop


def np_resnet50(x, w):
    relu = lambda v: np.maximum(v, 0)
    h = np.pad(x, ((3, 3), (3, 3), (0, 0)))  # conv1_pad
    h = relu(np_bn(np_conv(h, *w["conv1"], stride=2), w["bn_conv1"]))
    h = np_maxpool(np.pad(h, ((1, 1), (1, 1), (0, 0))), 3, 2)  # pool1_pad + valid pool
    for stage, b, _f, _cin, s, is_conv in resnet50_blocks():
        c = "res%d%s_branch" % (stage, b)
        n = "bn%d%s_branch" % (stage, b)
        y = relu(np_bn(np_conv(h, *w[c + "2a"], stride=s), w[n + "2a"]))
        y = relu(np_bn(np_conv(y, *w[c + "2b"], stride=1, pad=1), w[n + "2b"]))
        y = np_bn(np_conv(y, *w[c + "2c"]), w[n + "2c"])
        sc = np_bn(np_conv(h, *w[c + "1"], stride=s), w[n + "1"]) if is_conv else h
        h = relu(y + sc)
    notop = h
    pooled = h.mean(axis=(0, 1))
    return np_softmax(pooled @ w["fc1000"][0] + w["fc1000"][1]), notop


def selfcheck(out_dir, n_images=2):
    """Recomputes the first n images from the written h5 files with NumPy."""
    x = np.load(os.path.join(out_dir, IMAGES_NPY)).astype(np.float64)
    worst = {}
    for label, top, notop, probs_f, feat_f, fn, n_top in (
            ("vgg16", VGG16_TOP, VGG16_NOTOP, VGG16_PROBS, VGG16_NOTOP_FEATURES, np_vgg16, 23),
            ("resnet50", RESNET50_TOP, RESNET50_NOTOP, RESNET50_PROBS, RESNET50_NOTOP_FEATURES, np_resnet50, 177)):
        names, w = read_keras1_h5(os.path.join(out_dir, top))
        names_nt, w_nt = read_keras1_h5(os.path.join(out_dir, notop))
        assert len(names) == n_top, (label, len(names))
        for k, arrs in w_nt.items():
            assert all(np.array_equal(a, b) for a, b in zip(arrs, w[k])), (label, k)
        ref_p = np.load(os.path.join(out_dir, probs_f))
        ref_f = np.load(os.path.join(out_dir, feat_f))
        dp = df = 0.0
        for i in range(n_images):
            t0 = time.time()
            p, f = fn(x[i], w)
            dp = max(dp, float(np.abs(p - ref_p[i]).max()))
            df = max(df, float(np.abs(f - ref_f[i]).max() / np.abs(ref_f[i]).max()))
            log("selfcheck %s image %d: numpy %.1fs, max|dp|=%.3g, max|dfeat|/max|feat|=%.3g, top1 %d vs %d"
                % (label, i, time.time() - t0, dp, df, int(p.argmax()), int(ref_p[i].argmax())))
            assert int(p.argmax()) == int(ref_p[i].argmax())
        worst[label] = {"max_abs_prob_diff": dp, "max_rel_feature_diff": df}
        # float32 storage of a float64 result: 1e-6 relative is the budget.
        if dp > 1e-6 or df > 1e-5:
            raise SystemExit("gen_reference: selfcheck FAILED for %s: %r" % (label, worst[label]))
    # The pool1 padding claim: torch's -inf padding equals Keras zero padding
    # because the pooled tensor is a ReLU output.

    a = torch.relu(torch.randn(2, 5, 112, 112, dtype=torch.float64))
    tp = torch.nn.functional.max_pool2d(a, 3, 2, padding=1)
    kp = torch.nn.functional.max_pool2d(torch.nn.functional.pad(a, (1, 1, 1, 1)), 3, 2)
    assert torch.equal(tp, kp)
    log("selfcheck passed: %s" % json.dumps(worst))
    return worst


# ---------------------------------------------------------------------------


def softmax64(logits):
    return torch.softmax(logits.to(torch.float64), dim=1).numpy()


def save_npy(path, a):
    np.save(path, np.ascontiguousarray(a, dtype="<f4"))


def summarize_probs(probs):
    top5 = np.argsort(-probs, axis=1)[:, :5]
    return {
        "top1_prob": [float(p) for p in probs.max(axis=1)],
        "top5_index": top5.tolist(),
        "distinct_top1": int(len(set(top5[:, 0].tolist()))),
    }


def generate(out_dir, image_dir, layer_image):
    torch.set_num_threads(os.cpu_count() or 1)
    t_start = time.time()
    files = sorted(glob.glob(os.path.join(image_dir, "*.jpg")))
    x = np.stack([keras_preprocess(f) for f in files])
    save_npy(os.path.join(out_dir, IMAGES_NPY), x)
    x64 = torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float64))
    x32 = x64.float()
    manifest = {
        "script_version": SCRIPT_VERSION,
        "script": "kernelext/applications/testdata/gen_reference.py",
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                     "numpy": np.__version__, "h5py": h5py.__version__, "pillow": PIL.__version__},
        "image_dir": image_dir,
        "images": [{"name": os.path.basename(f), "md5": md5_file(f)} for f in files],
        "preprocessing": "keras_preprocessing.image load_img(target_size=(224, 224)), img_to_array, "
                         "keras_applications.imagenet_utils.preprocess_input(mode='caffe'); "
                         "shape (N,224,224,3) BGR",
        "seeds": {"vgg16": VGG16_SEED, "resnet50": RESNET50_SEED,
                  "rng": "torch.Generator().manual_seed(seed), torch.randn/rand in float64, rounded to float32"},
        "layer_dump_image_index": layer_image,
        "notes": [
            "All .npy files are float32 little-endian; probabilities/features were computed in float64.",
            "Feature maps and layer dumps are NHWC (Keras channels_last).",
            "Final Dense layers (predictions, fc1000) are calibrated on these images: centred on their "
            "mean penultimate feature and scaled to logit std %.1f." % LOGIT_STD,
            "vgg16_layers/*.npy and resnet50_layers/*.npy are named after Keras 2.3 layers "
            "(activation_N = output of a residual block, as in keras-applications 1.0.8).",
        ],
        "files": {},
    }

    def record(name):
        p = os.path.join(out_dir, name)
        manifest["files"][name] = {"bytes": os.path.getsize(p), "md5": md5_file(p)}

    record(IMAGES_NPY)

    # ---------------- VGG16
    t0 = time.time()
    w, draw = vgg16_random_weights(VGG16_SEED)
    # The head is drawn from fc2's output, so build with a zero head first.
    m64 = torch_vgg16(w | {"predictions": [(None, np.zeros((4096, 1000), np.float32)),
                                           (None, np.zeros((1000,), np.float32))]}, torch.float64)
    with torch.no_grad():
        _l, _n, pen = vgg16_forward(m64, x64)
    head, scale = calibrate_head(pen.numpy(), draw, "predictions", "_1:0")
    w["predictions"] = head
    manifest["vgg16_head_scale"] = scale
    write_keras1_h5(os.path.join(out_dir, VGG16_TOP), vgg16_layer_names(True), w)
    write_keras1_h5(os.path.join(out_dir, VGG16_NOTOP), vgg16_layer_names(False), w)
    record(VGG16_TOP)
    record(VGG16_NOTOP)
    m64 = torch_vgg16(w, torch.float64)
    dump = {}
    with torch.no_grad():
        logits, notop, _ = vgg16_forward(m64, x64)
        vgg16_forward(m64, x64[layer_image:layer_image + 1], dump)
    probs = softmax64(logits)
    dump["predictions"] = probs[layer_image:layer_image + 1]
    del m64
    m32 = torch_vgg16(w, torch.float32)
    with torch.no_grad():
        logits32, _n32, _ = vgg16_forward(m32, x32)
    del m32
    probs32 = softmax64(logits32)
    save_npy(os.path.join(out_dir, VGG16_PROBS), probs)
    save_npy(os.path.join(out_dir, VGG16_LOGITS), logits.numpy())
    save_npy(os.path.join(out_dir, VGG16_NOTOP_FEATURES), notop)
    os.mkdir(os.path.join(out_dir, VGG16_LAYERS_DIR))
    for k, v in dump.items():
        save_npy(os.path.join(out_dir, VGG16_LAYERS_DIR, k + ".npy"), v)
    for f in (VGG16_PROBS, VGG16_LOGITS, VGG16_NOTOP_FEATURES):
        record(f)
    manifest["vgg16"] = summarize_probs(probs) | {
        "float32_vs_float64_max_abs_prob_diff": float(np.abs(probs32 - probs).max()),
        "layers": sorted(dump),
        "seconds": round(time.time() - t0, 1),
    }
    log("vgg16 done in %.1fs: top-1 probs %s" % (time.time() - t0, ["%.3f" % p for p in probs.max(1)]))
    del w

    # ---------------- ResNet50
    t0 = time.time()
    w, draw = resnet50_random_weights(RESNET50_SEED, x64)
    m64 = torch_resnet50(w, torch.float64)
    with torch.no_grad():
        _l, _n, pen = resnet50_forward(m64, x64)
    head, scale = calibrate_head(pen.numpy(), draw, "fc1000", ":0")
    w["fc1000"] = head
    manifest["resnet50_head_scale"] = scale
    write_keras1_h5(os.path.join(out_dir, RESNET50_TOP), resnet50_layer_names(True), w)
    write_keras1_h5(os.path.join(out_dir, RESNET50_NOTOP), resnet50_layer_names(False),
                    {k: v for k, v in w.items() if k != "fc1000"})
    record(RESNET50_TOP)
    record(RESNET50_NOTOP)
    m64 = torch_resnet50(w, torch.float64)
    dump = {}
    with torch.no_grad():
        logits, notop, _ = resnet50_forward(m64, x64)
        resnet50_forward(m64, x64[layer_image:layer_image + 1], dump)
    probs = softmax64(logits)
    dump["fc1000"] = probs[layer_image:layer_image + 1]
    m32 = torch_resnet50(w, torch.float32)
    with torch.no_grad():
        logits32, _n32, _ = resnet50_forward(m32, x32)
    probs32 = softmax64(logits32)
    save_npy(os.path.join(out_dir, RESNET50_PROBS), probs)
    save_npy(os.path.join(out_dir, RESNET50_LOGITS), logits.numpy())
    save_npy(os.path.join(out_dir, RESNET50_NOTOP_FEATURES), notop)
    os.mkdir(os.path.join(out_dir, RESNET50_LAYERS_DIR))
    for k, v in dump.items():
        save_npy(os.path.join(out_dir, RESNET50_LAYERS_DIR, k + ".npy"), v)
    for f in (RESNET50_PROBS, RESNET50_LOGITS, RESNET50_NOTOP_FEATURES):
        record(f)
    manifest["resnet50"] = summarize_probs(probs) | {
        "float32_vs_float64_max_abs_prob_diff": float(np.abs(probs32 - probs).max()),
        "layers": sorted(dump),
        "seconds": round(time.time() - t0, 1),
    }
    manifest["resnet50_layer_names"] = resnet50_layer_names(True)
    log("resnet50 done in %.1fs: top-1 probs %s" % (time.time() - t0, ["%.3f" % p for p in probs.max(1)]))
    manifest["seconds"] = round(time.time() - t_start, 1)
    return manifest


def read_manifest(out_dir):
    try:
        with open(os.path.join(out_dir, MANIFEST)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def locked(out_dir):
    """Serialises concurrent generators (parallel test packages)."""
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, "." + os.path.basename(out_dir) + ".lock"), "w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lf, fcntl.LOCK_UN)


def remove_leftovers(out_dir):
    """Deletes temporary siblings of an interrupted run (we hold the lock)."""
    base = os.path.basename(out_dir)
    for p in glob.glob(os.path.join(os.path.dirname(out_dir), "." + base + ".tmp-*")) + \
            glob.glob(os.path.join(os.path.dirname(out_dir), "." + base + ".old-*")):
        log("removing leftover %s" % p)
        shutil.rmtree(p, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=default_out_dir(), help="output directory (default %(default)s)")
    ap.add_argument("--images", default="", help="directory with the book's prediction *.jpg (default <repo>/%s)"
                    % IMAGE_DIR)
    ap.add_argument("--force", action="store_true", help="regenerate even if up to date")
    ap.add_argument("--selfcheck", action="store_true",
                    help="verify the checkpoints against a NumPy Keras implementation")
    ap.add_argument("--selfcheck-images", type=int, default=2)
    ap.add_argument("--layer-image", type=int, default=0, help="image index for the per-layer dumps")
    args = ap.parse_args(argv)
    out_dir = os.path.abspath(args.out)

    with locked(out_dir):
        m = read_manifest(out_dir)
        if m and m.get("script_version") == SCRIPT_VERSION and not args.force:
            log("%s is up to date (script version %s)" % (out_dir, SCRIPT_VERSION))
        else:
            import_deps()
            remove_leftovers(out_dir)
            image_dir = find_image_dir(args.images)
            log("generating %s from images in %s" % (out_dir, image_dir))
            tmp = tempfile.mkdtemp(prefix="." + os.path.basename(out_dir) + ".tmp-", dir=os.path.dirname(out_dir))
            try:
                manifest = generate(tmp, image_dir, args.layer_image)
                if args.selfcheck:
                    manifest["selfcheck"] = selfcheck(tmp, args.selfcheck_images)
                with open(os.path.join(tmp, MANIFEST), "w") as f:
                    json.dump(manifest, f, indent=1)
                    f.write("\n")
                os.chmod(tmp, 0o755)
                old = None
                if os.path.exists(out_dir):
                    old = tempfile.mkdtemp(prefix="." + os.path.basename(out_dir) + ".old-",
                                           dir=os.path.dirname(out_dir))
                    os.rename(out_dir, os.path.join(old, "d"))
                os.rename(tmp, out_dir)
                tmp = None
                if old:
                    shutil.rmtree(old)
            finally:
                if tmp:
                    shutil.rmtree(tmp, ignore_errors=True)
            total = sum(v["bytes"] for v in manifest["files"].values())
            log("wrote %s (%.0f MB) in %.0fs" % (out_dir, total / 1e6, manifest["seconds"]))
            return 0
    if args.selfcheck:
        import_deps()
        selfcheck(out_dir, args.selfcheck_images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
