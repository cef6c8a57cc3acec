#!/usr/bin/python3
"""Writes sample_flow_golden.json: the real keras-preprocessing 1.1.0 flow_from_directory (Pillow
load_img with NEAREST resize, NumPy's global generator, SciPy's affine transform) run on
the shipped JPEG sample ../cars-flowers-sample, with the book's augmentation. A small target
size keeps the file small while still going through decoding, resizing and augmentation.
Run from this folder with /usr/bin/python3.
"""
import os

import keras_preprocessing
import numpy as np

import gen_flow

H, W = 20, 18
CASES = [
    ("train_book", "../cars-flowers-sample/training_set", gen_flow.BOOK,
     dict(class_mode="binary", batch_size=6, seed=42), ["next"] * 2),
    ("test_rescale", "../cars-flowers-sample/test_set", dict(rescale=1. / 255),
     dict(class_mode="binary", batch_size=5, shuffle=False), ["next"]),
]


def main():
    out = {"numpy": np.__version__, "keras_preprocessing": keras_preprocessing.__version__,
           "target_size": [H, W], "cases": []}
    for name, d, gkw, ikw, calls in CASES:
        it = gen_flow.flow(d, gkw, (H, W), **ikw)
        case = {"name": name, "message": it.message, "filenames": it.filenames,
                "class_indices": it.class_indices, "calls": [], "batches": []}
        for _ in calls:
            x, y = it.next()
            case["calls"].append(["next"])
            case["batches"].append(gen_flow.record(it, x, y))
        out["cases"].append(case)
    import json
    with open("sample_flow_golden.json.tmp", "w") as f:
        json.dump(out, f, indent=0)
    os.replace("sample_flow_golden.json.tmp", "sample_flow_golden.json")


if __name__ == "__main__":
    main()
