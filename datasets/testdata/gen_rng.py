#!/usr/bin/python3
"""Writes rng_golden.json: reference streams of NumPy's legacy RandomState (MT19937).

Run with /usr/bin/python3 (NumPy 1.24) from this folder:  python3 gen_rng.py
Floats are written with repr(), which round-trips exactly.
No replica of anything: these are NumPy's own generator streams, the ones Keras' image code
(keras-preprocessing) draws from.
"""
import json

import numpy as np

out = {"numpy": np.__version__, "seeds": [], "global": []}
for seed in [0, 1, 7, 42, 1234, 123456789, 2**31, 2**32 - 1]:
    rs = np.random.RandomState(seed)
    key = rs.get_state()[1]
    entry = {"seed": seed, "key_first": [int(v) for v in key[:4]],
             "key_last": int(key[-1])}
    # raw 32-bit outputs: randint over the full uint32 range returns next_uint32 directly
    # (1300 values cross two state regenerations)
    entry["uint32"] = [int(v) for v in rs.randint(0, 2**32, size=1300 if seed in (0, 42) else 20, dtype=np.uint32)]
    rs = np.random.RandomState(seed)
    entry["random_sample"] = [repr(float(v)) for v in rs.random_sample(700 if seed == 0 else 20)]
    rs = np.random.RandomState(seed)
    entry["uniform_shear"] = [repr(float(rs.uniform(-0.2, 0.2))) for _ in range(5)]
    entry["uniform_zoom2"] = [repr(float(v)) for v in rs.uniform(1 - 0.2, 1 + 0.2, 2)]
    entry["after_uniform"] = repr(float(rs.random_sample()))
    perms = {}
    for n in [0, 1, 2, 3, 10, 100, 257, 1000]:
        rs = np.random.RandomState(seed)
        perms[str(n)] = [int(v) for v in rs.permutation(n)]
        perms[str(n) + "_next"] = repr(float(rs.random_sample()))
    entry["permutation"] = perms
    out["seeds"].append(entry)

# The module-level functions Keras calls: np.random.seed(k); np.random.permutation(N)
for seed, n in [(42, 10764), (1, 2674), (0, 112), (2**32 - 1, 33)]:
    np.random.seed(seed)
    p = np.random.permutation(n)
    out["global"].append({"seed": seed, "n": n, "perm": [int(v) for v in p],
                          "next": repr(float(np.random.random_sample()))})

with open("rng_golden.json.tmp", "w") as f:
    json.dump(out, f, separators=(",", ":"))
import os
os.replace("rng_golden.json.tmp", "rng_golden.json")
