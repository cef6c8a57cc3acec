#!/usr/bin/python3
"""Builds the small image tree flow/ and writes flow_golden.json: what the real keras-preprocessing
1.1.0 (Debian's python3-keras-preprocessing: ImageDataGenerator.flow_from_directory, on NumPy's
global generator, SciPy and Pillow) yields on it for several configurations. Run from this folder
with /usr/bin/python3.

The tree exercises Keras' folder rules: "Bus" sorts before "car" (code points), the hidden
".hidden" folder is a class without images, nested folders "sub" and "sub b" are visited in
sorted-path order, upper-case and dot-less suffixes (".PNG", "weirdpng") count, "notes.txt"
does not. Images are 6x5 PNGs (one grayscale), so loading involves no resize and no lossy
decoding.
"""
import base64
import contextlib
import io
import json
import os
import shutil

import keras_preprocessing
import numpy as np
from keras_preprocessing.image import ImageDataGenerator
from PIL import Image

H, W = 6, 5
ROOT = "flow"

FILES = {
    "Bus": ["b2.png", "B1.PNG", "b3.png"],
    "car": ["c1.png", "sub/c3.png", "sub b/c4.png", "sub/deeper/c5.png", "c2.png", "weirdpng"],
    "flower": ["f1.png", "f2.png", "f3.png", "gray.png"],
}


def build_tree():
    if os.path.exists(ROOT):
        shutil.rmtree(ROOT)
    rs = np.random.RandomState(99)
    for cls, names in FILES.items():
        for name in names:
            path = os.path.join(ROOT, cls, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if name == "gray.png":
                Image.fromarray(rs.randint(0, 256, (H, W)).astype(np.uint8), "L").save(path, format="PNG")
            else:
                Image.fromarray(rs.randint(0, 256, (H, W, 3)).astype(np.uint8), "RGB").save(path, format="PNG")
    os.makedirs(os.path.join(ROOT, ".hidden"), exist_ok=True)
    with open(os.path.join(ROOT, ".hidden", "notes.txt"), "w") as f:
        f.write("not an image; this folder is still a class for Keras\n")
    with open(os.path.join(ROOT, "car", "notes.txt"), "w") as f:
        f.write("not an image\n")


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).astype('<f4').tobytes()).decode()


class RecordingGenerator(ImageDataGenerator):
    """Keras' ImageDataGenerator, also keeping every parameter set get_random_transform draws
    (the batch code calls it once per image, in batch order)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.drawn = []

    def get_random_transform(self, img_shape, seed=None):
        params = super().get_random_transform(img_shape, seed)
        self.drawn.append(params)
        return params


def flow(directory, generator_kwargs, target_size, **iterator_kwargs):
    """generator.flow_from_directory(...), with the "Found ..." line it prints captured and the
    index array of every batch it builds recorded in it.index_log."""
    gen = RecordingGenerator(**generator_kwargs)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        it = gen.flow_from_directory(directory, target_size=target_size, **iterator_kwargs)
    it.message = printed.getvalue().strip()
    it.index_log = []
    build = it._get_batches_of_transformed_samples

    def logged(index_array):
        it.index_log.append(np.array(index_array))
        return build(index_array)

    it._get_batches_of_transformed_samples = logged
    return it


def record(it, x, y):
    idx = it.index_log[-1]
    params = it.image_data_generator.drawn[-len(idx):]
    return {"index": [int(v) for v in idx],
            "params": [{"shear": repr(float(p["shear"])), "zx": repr(float(p["zx"])),
                        "zy": repr(float(p["zy"])), "fh": bool(p["flip_horizontal"]),
                        "fv": bool(p["flip_vertical"])} for p in params],
            "x": b64(x), "y": b64(y), "y_shape": list(y.shape)}


BOOK = dict(rescale=1. / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
CASES = [
    # name, generator kwargs, iterator kwargs, calls: "next" or ("get", i) or "epoch_end"
    ("book_binary_next", BOOK, dict(class_mode="binary", batch_size=5, seed=42), ["next"] * 8),
    ("rescale_only_categorical", dict(rescale=1. / 255), dict(class_mode="categorical", batch_size=4, seed=7), ["next"] * 5),
    ("sequence_vflip", dict(shear_range=10, zoom_range=[0.7, 1.4], horizontal_flip=True, vertical_flip=True),
     dict(class_mode="categorical", batch_size=5, seed=3),
     [("get", 2), ("get", 0), ("get", 1), "epoch_end", ("get", 1), ("get", 2), ("get", 0)]),
    ("no_shuffle", BOOK, dict(class_mode="binary", batch_size=5, seed=5, shuffle=False), ["next"] * 4),
    ("batch_larger_than_data", BOOK, dict(class_mode="binary", batch_size=20, seed=1), ["next"] * 3),
]


def main():
    build_tree()
    out = {"numpy": np.__version__, "keras_preprocessing": keras_preprocessing.__version__,
           "target_size": [H, W], "cases": []}
    for name, gkw, ikw, calls in CASES:
        it = flow(ROOT, gkw, (H, W), **ikw)
        case = {"name": name, "message": it.message, "filenames": it.filenames,
                "class_indices": it.class_indices, "calls": [], "batches": []}
        for call in calls:
            if call == "next":
                x, y = it.next()
                case["calls"].append(["next"])
                case["batches"].append(record(it, x, y))
            elif call == "epoch_end":
                it.on_epoch_end()
                case["calls"].append(["epoch_end"])
            else:
                x, y = it[call[1]]
                case["calls"].append(["get", call[1]])
                case["batches"].append(record(it, x, y))
        out["cases"].append(case)
    with open("flow_golden.json.tmp", "w") as f:
        json.dump(out, f, indent=0)
    os.replace("flow_golden.json.tmp", "flow_golden.json")


if __name__ == "__main__":
    main()
