#!/usr/bin/python3
"""Writes HDF5 test files with h5py, plus manifest.json: what h5py reads back from them.

Usage: make_files.py OUTDIR [--fuzz-seeds]

The Go tests run this (with Debian's /usr/bin/python3 and python3-h5py) into a temporary
directory and compare the Go reader against the manifest, so the expected values come from
h5py/numpy, never from the Go code. Each file exercises one way h5py lays data out:

  basic.h5     default settings (superblock 0, symbol-table groups, v1 object headers): the
               layout of the Keras ImageNet checkpoints, plus every attribute and dataset
               flavour this reader supports
  latest.h5    libver='latest' (superblock 3, v2 object headers, dense link and attribute
               storage, fixed-array / single-chunk / implicit chunk indexes)
  v108.h5      libver='v108' (superblock 2)
  track.h5     track_order=True (new-style groups with creation order indexes)
  userblock.h5 a 512-byte user block before the superblock
  tiny.h5, tiny_latest.h5
               a few kilobytes each, with one of everything: seeds for FuzzOpen (with
               --fuzz-seeds only these two are written, quickly, and no manifest)
"""
import json
import os
import sys

import h5py
import numpy as np

out = sys.argv[1]
seeds_only = "--fuzz-seeds" in sys.argv[2:]
rng = np.random.RandomState(1234)
manifest = {}


def num(x):
    """A float as a string Go's strconv.ParseFloat reads exactly ("inf" and "nan" included)."""
    return repr(float(x))


def record(fname, f):
    """Reads everything back with h5py and records it in the manifest."""
    entry = {"groups": {}, "datasets": {}, "attrs": {}}

    def attrs_of(obj):
        res = {}
        for k in obj.attrs:
            try:
                v = obj.attrs[k]
            except OSError:
                continue
            if isinstance(v, h5py.Empty):
                res[k] = {"empty": True}
                continue
            a = np.asarray(v)
            if a.dtype.kind in "SOU":
                vals = [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in a.reshape(-1)]
                res[k] = {"strings": vals, "shape": list(a.shape)}
            else:
                res[k] = {"floats": [num(x) for x in a.reshape(-1)], "shape": list(a.shape)}
        return res

    def visit(name, obj):
        path = "/" + name
        if isinstance(obj, h5py.Group):
            entry["groups"][path] = sorted(obj.keys())
        elif isinstance(obj, h5py.Dataset):
            d = {"shape": list(obj.shape), "dtype": obj.dtype.str}
            if obj.dtype.kind in "fiu":
                d["values"] = [num(x) for x in np.asarray(obj[()], dtype=np.float64).reshape(-1)]
                if obj.dtype.kind == "f":
                    # Exact float32 values as numpy converts them (round to nearest even).
                    d["float32"] = [num(x) for x in np.asarray(obj[()]).astype(np.float32).reshape(-1)]
            entry["datasets"][path] = d
        a = attrs_of(obj)
        if a:
            entry["attrs"][path] = a

    entry["groups"]["/"] = sorted(f.keys())
    a = attrs_of(f)
    if a:
        entry["attrs"]["/"] = a
    f.visititems(visit)
    manifest[fname] = entry


def fill_common(f, big_groups):
    # Attributes: the string flavours Keras 1 and 2 write, numbers, empties.
    f.attrs["layer_names"] = np.array([b"input_1", b"block1_conv1", b"fc1"])
    f.attrs["vlen_list"] = ["alpha", "\u03b2eta", ""]
    f.attrs["vlen_scalar"] = "hello"
    f.attrs["bytes_scalar"] = b"2.3.1"
    f.attrs["empty_f64"] = np.array([])
    f.attrs["null"] = h5py.Empty("f8")
    f.attrs["ints"] = np.array([-3, 0, 7], dtype=np.int32)
    f.attrs["scalar_f64"] = 1.5
    f.attrs["space_padded"] = np.array([b"ab  "], dtype="S4")

    f.create_dataset("f32", data=rng.standard_normal((3, 4, 5)).astype(np.float32))
    f.create_dataset("f64", data=rng.standard_normal(7))
    f.create_dataset("be_f32", data=rng.standard_normal(6).astype(">f4"))
    f.create_dataset("f16", data=np.array([0.0, -1.5, 65504, 6e-8, np.inf, 1e-5], dtype=np.float16))
    f.create_dataset("i16", data=np.array([-32768, -1, 0, 1, 32767], dtype=np.int16))
    f.create_dataset("u8", data=np.array([0, 1, 255], dtype=np.uint8))
    f.create_dataset("scalar", data=np.float32(2.25))
    f.create_dataset("empty", data=np.zeros((0, 3), dtype=np.float32))
    f.create_dataset("gz", data=rng.standard_normal((100, 50)).astype(np.float32), chunks=(30, 20),
                     compression="gzip", shuffle=True)
    f.create_dataset("gz64", data=rng.standard_normal((33, 7, 5)), chunks=(8, 3, 5), compression="gzip")
    f.create_dataset("fletcher", data=rng.standard_normal((40,)).astype(np.float32), chunks=(16,),
                     fletcher32=True)
    d = f.create_dataset("sparse", shape=(10, 10), chunks=(5, 5), dtype=np.float32, fillvalue=7.5)
    d[0:5, 0:5] = rng.standard_normal((5, 5)).astype(np.float32)
    f.create_dataset("chunked_plain", data=np.arange(50, dtype=np.float32).reshape(5, 10), chunks=(2, 4))
    d = f.create_dataset("with_attr", data=np.ones(2, dtype=np.float32))
    d.attrs["note"] = np.array([b"x"])
    f.create_group("a/b/c").create_dataset("deep", data=np.arange(4, dtype=np.float64))
    g = f.create_group("many")
    for i in range(big_groups):
        g.create_group("layer_%04d" % ((i * 7919) % big_groups))
    g["layer_0003"].create_dataset("kernel:0", data=np.arange(6, dtype=np.float32).reshape(2, 3))


def compact(f):
    # A compact-layout dataset (data inside the object header) via the low-level API.
    space = h5py.h5s.create_simple((4,))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    dsid = h5py.h5d.create(f.id, b"compact", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([1.0, 2.0, 3.0, 4.5], dtype=np.float32))


def tiny(f, n):
    f.attrs["layer_names"] = np.array([b"conv", b"pool"])
    f.attrs["v"] = ["a", "bc"]
    for i in range(n):
        f.attrs["n%d" % i] = np.float32(i)
    g = f.create_group("conv")
    g.attrs["weight_names"] = np.array([b"conv_W_1:0", b"conv_b_1:0"])
    g.create_dataset("conv_W_1:0", data=np.arange(12, dtype=np.float32).reshape(2, 3, 2))
    g.create_dataset("conv_b_1:0", data=np.arange(2, dtype=np.float64), chunks=(1,), compression="gzip",
                     shuffle=True, fletcher32=True)
    f.create_group("pool").attrs["weight_names"] = np.array([])
    for i in range(n):
        f.create_group("x%d" % i)


with h5py.File(os.path.join(out, "tiny.h5"), "w") as f:
    tiny(f, 3)
if not seeds_only:
    with h5py.File(os.path.join(out, "tiny.h5"), "r") as f:
        record("tiny.h5", f)
with h5py.File(os.path.join(out, "tiny_latest.h5"), "w", libver="latest") as f:
    tiny(f, 10)
if not seeds_only:
    with h5py.File(os.path.join(out, "tiny_latest.h5"), "r") as f:
        record("tiny_latest.h5", f)
else:
    sys.exit(0)


with h5py.File(os.path.join(out, "basic.h5"), "w") as f:
    fill_common(f, 300)
    compact(f)
    for i in range(200):
        f.create_group("root_%03d" % i)
with h5py.File(os.path.join(out, "basic.h5"), "r") as f:
    record("basic.h5", f)

with h5py.File(os.path.join(out, "latest.h5"), "w", libver="latest") as f:
    fill_common(f, 200)
    compact(f)
    g = f.create_group("small")  # compact link storage (few links)
    g.create_dataset("x", data=np.ones(3, dtype=np.float32))
    g = f.create_group("dense_attrs")
    for i in range(20):
        g.attrs["attr_%02d" % i] = np.array([i, i + 0.5])
    g.attrs["huge"] = rng.standard_normal(100000).astype(np.float32)  # > 64 KiB: a huge heap object
    g.attrs["names"] = np.array([("name_%d" % i).encode() for i in range(5)])
    f.create_dataset("single", data=rng.standard_normal((6, 4)).astype(np.float32), chunks=(6, 4),
                     compression="gzip")
    f.create_dataset("single_plain", data=rng.standard_normal((6, 4)).astype(np.float32), chunks=(6, 4))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((3, 3))
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    space = h5py.h5s.create_simple((7, 5))
    dsid = h5py.h5d.create(f.id, b"implicit", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
    dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, rng.standard_normal((7, 5)).astype(np.float32))
    f.create_dataset("paged", data=rng.standard_normal((64, 64)).astype(np.float32), chunks=(1, 2))
    f.create_dataset("paged_gz", data=rng.standard_normal((64, 64)).astype(np.float32), chunks=(1, 2),
                     compression="gzip")
    f.create_dataset("maxshape", data=rng.standard_normal((5, 6)).astype(np.float32), chunks=(2, 4),
                     maxshape=(9, 6))
    f.create_dataset("unlimited", data=np.ones((4, 4), dtype=np.float32), chunks=(2, 2), maxshape=(None, 4))
with h5py.File(os.path.join(out, "latest.h5"), "r") as f:
    record("latest.h5", f)

with h5py.File(os.path.join(out, "v108.h5"), "w", libver=("v108", "v108")) as f:
    fill_common(f, 50)
with h5py.File(os.path.join(out, "v108.h5"), "r") as f:
    record("v108.h5", f)

with h5py.File(os.path.join(out, "track.h5"), "w", track_order=True) as f:
    for i in range(200):
        f.create_group("g%03d" % (199 - i))
    f.create_dataset("d", data=np.arange(3, dtype=np.float32))
    for i in range(12):
        f.attrs["a%02d" % (11 - i)] = i
with h5py.File(os.path.join(out, "track.h5"), "r") as f:
    record("track.h5", f)

with h5py.File(os.path.join(out, "userblock.h5"), "w", userblock_size=512) as f:
    f.create_dataset("x", data=np.arange(5, dtype=np.float32))
    f.attrs["layer_names"] = np.array([b"x"])
with h5py.File(os.path.join(out, "userblock.h5"), "r") as f:
    record("userblock.h5", f)



with open(os.path.join(out, "manifest.json"), "w") as fh:
    json.dump(manifest, fh, indent=1)
