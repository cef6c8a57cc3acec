#!/usr/bin/python3
"""Writes affine_golden.json: the real keras-preprocessing 1.1.0 apply_affine_transform (Debian's
python3-keras-preprocessing; scipy.ndimage.affine_transform, order=1, mode='nearest', centre
size/2+0.5) on random float32 images. Run from this folder with /usr/bin/python3 (NumPy 1.24,
SciPy 1.10).

Inputs are not stored: the Go test regenerates them from np.random.RandomState(input_seed) —
value k of the (h, w, c) array, row-major, is floor(random_sample()*256) for integer images and
float32(random_sample()*255) otherwise — since its RandomState is tested against NumPy itself.
Outputs are little-endian float32, base64.
"""
import base64
import json
import os

import keras_preprocessing
import numpy as np
import scipy
from keras_preprocessing.image import apply_affine_transform


def make_input(h, w, c, seed, integer):
    rs = np.random.RandomState(seed)
    u = rs.random_sample(h * w * c)
    if integer:
        v = np.floor(u * 256)
    else:
        v = u * 255
    return v.astype(np.float32).reshape(h, w, c)


cases = []
prs = np.random.RandomState(2024)
shapes = [(32, 32, 3), (17, 23, 3), (23, 17, 3), (40, 31, 3), (2, 3, 3), (1, 4, 3), (5, 1, 3), (9, 9, 1)]
for idx, (h, w, c) in enumerate(shapes):
    for variant in range(4):
        if variant == 0:    # the book's ranges
            shear, zx, zy = prs.uniform(-0.2, 0.2), prs.uniform(0.8, 1.2), prs.uniform(0.8, 1.2)
        elif variant == 1:  # strong shear and zoom to reach the clamped borders
            shear, zx, zy = prs.uniform(-45, 45), prs.uniform(0.4, 2.5), prs.uniform(0.4, 2.5)
        elif variant == 2:  # shear only
            shear, zx, zy = prs.uniform(-30, 30), 1, 1
        else:               # zoom only
            shear, zx, zy = 0, prs.uniform(0.5, 1.5), prs.uniform(0.5, 1.5)
        seed = 100 + 4 * idx + variant
        integer = variant != 3
        x = make_input(h, w, c, seed, integer)
        y = apply_affine_transform(x, shear=shear, zx=zx, zy=zy)
        assert y.dtype == np.float32
        cases.append({"h": h, "w": w, "c": c, "input_seed": seed, "integer": integer,
                      "shear": repr(float(shear)), "zx": repr(float(zx)), "zy": repr(float(zy)),
                      "out": base64.b64encode(np.ascontiguousarray(y).astype('<f4').tobytes()).decode()})

with open("affine_golden.json.tmp", "w") as f:
    json.dump({"numpy": np.__version__, "scipy": scipy.__version__,
               "keras_preprocessing": keras_preprocessing.__version__, "cases": cases}, f)
os.replace("affine_golden.json.tmp", "affine_golden.json")
