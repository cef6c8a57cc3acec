#!/usr/bin/python3
"""Generate the JPEG test files and their Pillow-decoded goldens.

Run from anywhere with Debian's /usr/bin/python3 (Pillow 9.4 on
libjpeg-turbo 2.1.5, numpy):

    /usr/bin/python3 internal/jpeg/testdata/gen_golden.py

For every case it writes NAME.jpg and, when the file should decode, NAME.rgb:
the raw H*W*3 bytes of Image.open(NAME.jpg).convert('RGB'), i.e. exactly what
Keras' load_img sees. For 4-component (CMYK/YCCK) files, which Pillow opens
in mode CMYK, it also writes NAME.cmyk: the raw H*W*4 bytes of
Image.open(NAME.jpg) before conversion. manifest.json lists the cases and
what the Go test expects (a match, or an error containing a given text).

Most files are written by Pillow. Options Pillow cannot write (restart
intervals, 4:4:0 / 4:1:1 / other sampling factors, the RGB and YCCK colour
spaces, non-interleaved scan scripts) come from mkjpeg.c, compiled here against the
system libjpeg; without a C compiler those cases are left out. Either way
the goldens are Pillow's decode, never this package's output.

Pixels are a deterministic synthetic pattern (gradients, hard edges,
saturated colours, seeded noise) and crops of the book photo gf.jpg.
"""
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
BOOK = "/work/shared/data/keras-workshop-ch08/Prediction/gf.jpg"


def synthetic(w, h, seed=0):
    """A W x H RGB pattern that exercises ringing, clamping and chroma edges."""
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 110 * np.sin(x / 3.0 + y / 5.0)
    g = 255 * x / max(w - 1, 1)
    b = np.where(((x // 5) + (y // 4)) % 2 == 0, 250.0, 5.0)
    img = np.stack([r, g, b], axis=-1)
    # A saturated red/blue rectangle: strong chroma edges clip after IDCT.
    img[h // 3: 2 * h // 3 + 1, w // 4: w // 2 + 1] = [255, 0, 20]
    img[: h // 4 + 1, 3 * w // 4:] = [0, 30, 255]
    img += rs.uniform(-25, 25, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def book_crop(w, h, x0=380, y0=250):
    """A natural-photo crop of the book's gf.jpg (decoded by Pillow)."""
    if not os.path.exists(BOOK):
        return synthetic(w, h, seed=7)
    im = Image.open(BOOK).convert("RGB")
    return np.asarray(im.crop((x0, y0, x0 + w, y0 + h)))


def synthetic_cmyk(w, h, seed=0):
    """A W x H CMYK pattern: the synthetic RGB as inks plus a K channel with
    a vertical ramp, a no-black band and a full-black corner."""
    rs = np.random.RandomState(seed + 100)
    cmy = 255 - synthetic(w, h, seed).astype(np.float64)
    y = np.mgrid[0:h, 0:w][0].astype(np.float64)
    k = 255 * y / max(h - 1, 1) + rs.uniform(-20, 20, size=(h, w))
    k[:, : w // 5] = 0
    k[h // 2:, w - w // 5:] = 255
    img = np.concatenate([cmy, k[..., None]], axis=-1)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def ucr_cmyk(rgb):
    """RGB to CMYK with full under-colour removal (K = 255 - max(R,G,B)), so
    that a photo gets a realistic K channel; Pillow's own convert('CMYK')
    always sets K to 0."""
    rgb = rgb.astype(np.int32)
    mx = rgb.max(axis=-1, keepdims=True)
    return np.concatenate([mx - rgb, 255 - mx], axis=-1).astype(np.uint8)


def pillow_rgb(data):
    im = Image.open(io.BytesIO(data))
    return im.convert("RGB").tobytes(), im.size


def build_mkjpeg(tmp):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("no C compiler: skipping mkjpeg cases", file=sys.stderr)
        return None
    exe = os.path.join(tmp, "mkjpeg")
    r = subprocess.run([cc, "-O1", "-o", exe, os.path.join(HERE, "mkjpeg.c"), "-ljpeg"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("mkjpeg build failed, skipping its cases:\n" + r.stderr, file=sys.stderr)
        return None
    return exe


def mkjpeg(exe, pix, q=85, samp="2x2,1x1,1x1", prog=0, restart=0, cs="ycc"):
    h, w = pix.shape[:2]
    comps = 1 if pix.ndim == 2 else pix.shape[2]
    r = subprocess.run([exe, str(w), str(h), str(comps), str(q), samp, str(prog), str(restart), cs],
                       input=pix.tobytes(), capture_output=True, check=True)
    return r.stdout


def pillow_jpeg(pix, **kw):
    mode = "L" if pix.ndim == 2 else {3: "RGB", 4: "CMYK"}[pix.shape[2]]
    buf = io.BytesIO()
    Image.fromarray(pix, mode).save(buf, "JPEG", **kw)
    return buf.getvalue()


def gray(pix):
    return np.asarray(Image.fromarray(pix, "RGB").convert("L"))


def drop_scans_after(data, keep):
    """Keep the first `keep` scans of a progressive file and end it with EOI.

    SOS (FF DA) cannot occur inside entropy-coded data (0xFF there is
    stuffed as FF 00), so splitting on it is exact.
    """
    pos, start = -1, 0
    for _ in range(keep + 1):
        pos = data.find(b"\xff\xda", start)
        if pos < 0:
            raise ValueError("not enough scans")
        start = pos + 2
    return data[:pos] + b"\xff\xd9"


def write_atomic(path, data):
    """Write via a temporary file and rename, so no half-written file remains."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def segments(data):
    """Yield (offset, marker, length) for the marker segments before the first SOS."""
    i = 2
    while i + 4 <= len(data):
        assert data[i] == 0xFF, "marker expected"
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2:i + 4], "big")
        yield i, marker, length
        if marker == 0xDA:
            return
        i += 2 + length


def relabel(data, ids, drop_jfif):
    """Change the 3 component IDs (in SOF and the SOS) and optionally drop the
    JFIF APP0 segment: libjpeg then guesses the colour space from the IDs."""
    out = bytearray(data)
    for off, marker, length in segments(data):
        if marker in (0xC0, 0xC1, 0xC2):
            for k in range(3):
                out[off + 10 + 3 * k] = ids[k]
        if marker == 0xDA:
            for k in range(out[off + 4]):
                out[off + 5 + 2 * k] = ids[k]
    if drop_jfif:
        for off, marker, length in segments(data):
            if marker == 0xE0:
                del out[off:off + 2 + length]
                break
    return bytes(out)


def strip_app14(data):
    """Drop the Adobe APP14 segment: libjpeg then takes 4 components as CMYK."""
    for off, marker, length in segments(data):
        if marker == 0xEE:
            return data[:off] + data[off + 2 + length:]
    raise ValueError("no APP14 segment")


def adobe_transform(data, transform):
    """Overwrite the Adobe APP14 colour transform byte (0 CMYK, 2 YCCK)."""
    out = bytearray(data)
    for off, marker, length in segments(data):
        if marker == 0xEE and data[off + 4:off + 9] == b"Adobe":
            out[off + 4 + 11] = transform
            return bytes(out)
    raise ValueError("no Adobe segment")


def main():
    cases = []  # (name, jpeg bytes, expect, note)

    def add(name, data, note, expect="match"):
        cases.append((name, data, expect, note))

    syn = synthetic(37, 23)
    syn_b = synthetic(33, 17, seed=1)
    crop = book_crop(64, 48)

    # Pillow-written files: subsampling 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0.
    for q in (75, 90):
        add(f"gray_q{q}_37x23", pillow_jpeg(gray(syn), quality=q), "grayscale")
        add(f"gray_q{q}_crop", pillow_jpeg(gray(crop), quality=q), "grayscale photo")
        for sub, tag in ((0, "444"), (1, "422"), (2, "420")):
            add(f"{tag}_q{q}_37x23", pillow_jpeg(syn, quality=q, subsampling=sub), f"{tag} synthetic")
            add(f"{tag}_q{q}_crop", pillow_jpeg(crop, quality=q, subsampling=sub), f"{tag} photo")
    for sub, tag in ((0, "444"), (1, "422"), (2, "420")):
        add(f"{tag}_q75_33x17", pillow_jpeg(syn_b, quality=75, subsampling=sub), f"{tag} odd size")
    add("prog420_q75_crop", pillow_jpeg(crop, quality=75, subsampling=2, progressive=True), "progressive 420")
    add("prog420_q90_37x23", pillow_jpeg(syn, quality=90, subsampling=2, progressive=True), "progressive 420 odd size")
    add("prog444_q90_crop", pillow_jpeg(crop, quality=90, subsampling=0, progressive=True), "progressive 444")
    add("prog422_q75_33x17", pillow_jpeg(syn_b, quality=75, subsampling=1, progressive=True), "progressive 422")
    add("proggray_q75_crop", pillow_jpeg(gray(crop), quality=75, progressive=True), "progressive gray")
    add("420_q75_optimize_crop", pillow_jpeg(crop, quality=75, subsampling=2, optimize=True), "optimized Huffman tables")
    add("420_q100_37x23", pillow_jpeg(syn, quality=100, subsampling=2), "quality 100, all quantizers 1")
    add("444_q100_37x23", pillow_jpeg(syn, quality=100, subsampling=0), "quality 100, all quantizers 1")
    add("420_q5_37x23", pillow_jpeg(syn, quality=5, subsampling=2), "quality 5, heavy quantization")
    # Tiny and thin sizes: libjpeg replicates chroma instead of filtering
    # when the subsampled width is <= 2 (W <= 4).
    tiny = synthetic(17, 17, seed=3)
    for (w, h) in ((1, 1), (2, 2), (3, 5), (4, 4), (5, 3), (6, 2), (17, 1), (1, 17)):
        px = np.ascontiguousarray(tiny[:h, :w])
        for sub, tag in ((0, "444"), (1, "422"), (2, "420")):
            add(f"{tag}_q90_{w}x{h}", pillow_jpeg(px, quality=90, subsampling=sub), f"{tag} tiny")
    add("gray_q90_1x1", pillow_jpeg(gray(tiny[:1, :1].copy()), quality=90), "gray 1x1")
    add("gray_q90_17x1", pillow_jpeg(gray(tiny[:1, :].copy()), quality=90), "gray 17x1")

    # Colour space guessed from component IDs (jdapimin.c): with a JFIF
    # marker 'R','G','B' IDs are still YCbCr; without one they mean RGB.
    base = pillow_jpeg(syn, quality=90, subsampling=0)
    add("ids_rgb_jfif_444", relabel(base, b"RGB", drop_jfif=False), "IDs RGB but JFIF: YCbCr")
    add("ids_rgb_nojfif_444", relabel(base, b"RGB", drop_jfif=True), "IDs RGB, no JFIF: RGB")
    add("ids_other_nojfif_444", relabel(base, b"\x05\x06\x07", drop_jfif=True), "unknown IDs, no JFIF: YCbCr")

    # 4 components. Pillow writes CMYK with an Adobe marker (transform 0) and
    # inverted values; its subsampling option subsamples only the first one.
    # Whatever the file says, Pillow opens it as mode CMYK with every channel
    # inverted ("CMYK;I").
    syn4 = synthetic_cmyk(37, 23)
    crop4 = ucr_cmyk(book_crop(48, 32, 300, 200))
    cmyk444 = pillow_jpeg(syn4, quality=90, subsampling=0)
    add("cmyk_q90_37x23", cmyk444, "Adobe CMYK")
    add("cmyk_q75_crop", pillow_jpeg(crop4, quality=75, subsampling=0), "Adobe CMYK photo")
    add("cmyk420_q75_37x23", pillow_jpeg(syn4, quality=75, subsampling=2), "CMYK 2x2,1x1,1x1,1x1")
    add("cmyk422_q90_crop", pillow_jpeg(crop4, quality=90, subsampling=1), "CMYK 2x1,1x1,1x1,1x1 photo")
    add("progcmyk_q80_37x23", pillow_jpeg(syn4, quality=80, subsampling=0, progressive=True), "progressive CMYK")
    add("progcmyk420_q75_crop", pillow_jpeg(crop4, quality=75, subsampling=2, progressive=True),
        "progressive CMYK, first component subsampled")
    tiny4 = synthetic_cmyk(17, 17, seed=5)
    for (w, h) in ((1, 1), (3, 5), (17, 1)):
        px = np.ascontiguousarray(tiny4[:h, :w])
        add(f"cmyk420_q90_{w}x{h}", pillow_jpeg(px, quality=90, subsampling=2), "CMYK tiny")
    add("cmyk_noadobe_37x23", strip_app14(cmyk444), "4 components, no Adobe marker: CMYK")
    add("cmyk_as_ycck_37x23", adobe_transform(cmyk444, 2), "CMYK data labelled YCCK: clamped conversion")

    with tempfile.TemporaryDirectory() as tmp:
        exe = build_mkjpeg(tmp)
        if exe is not None:
            px = book_crop(72, 40, 200, 400)
            add("rst_420_q85", mkjpeg(exe, px, samp="2x2,1x1,1x1", restart=1), "restart every MCU")
            add("rst_444_q85", mkjpeg(exe, px, samp="1x1,1x1,1x1", restart=5), "restart every 5 MCUs")
            add("rst_gray_q85", mkjpeg(exe, gray(px), restart=3), "gray, restart every 3 MCUs")
            add("rst_prog420_q85", mkjpeg(exe, px, samp="2x2,1x1,1x1", prog=1, restart=2),
                "progressive with restarts (non-interleaved AC scans)")
            add("rst_prog3_422_q85", mkjpeg(exe, syn, samp="2x1,1x1,1x1", prog=3, restart=3),
                "progressive, non-interleaved DC scans, refinements, restarts")
            add("seqscans_420_q85", mkjpeg(exe, px, samp="2x2,1x1,1x1", prog=2),
                "sequential, one scan per component")
            add("seqscans_rst_420_q85", mkjpeg(exe, syn, samp="2x2,1x1,1x1", prog=2, restart=4),
                "sequential, one scan per component, restarts")
            for samp, tag in (("1x2,1x1,1x1", "440"), ("4x1,1x1,1x1", "411"), ("4x2,1x1,1x1", "410"),
                              ("2x2,2x1,2x1", "h1v2ratio"), ("3x1,1x1,1x1", "h3v1"),
                              ("1x1,2x2,2x2", "lumaup"), ("2x2,1x2,2x1", "mixed")):
                add(f"samp{tag}_q85_37x23", mkjpeg(exe, syn, samp=samp), f"sampling {samp}")
                add(f"samp{tag}_q85_crop", mkjpeg(exe, px, samp=samp), f"sampling {samp}")
            add("samp440_q85_3x5", mkjpeg(exe, np.ascontiguousarray(tiny[:5, :3]), samp="1x2,1x1,1x1"),
                "4:4:0 tiny")
            add("rgbspace_444_q85", mkjpeg(exe, px, samp="1x1,1x1,1x1", cs="rgb"), "RGB colour space (Adobe, no JFIF)")
            add("rgbspace_422_q85", mkjpeg(exe, syn, samp="2x1,1x1,1x1", cs="rgb"), "RGB colour space, subsampled")
            prog3 = mkjpeg(exe, px, samp="2x2,1x1,1x1", prog=3)
            add("prog3_420_q85", prog3, "progressive, non-interleaved scans only")
            # Luma complete, chroma never sent: libjpeg decodes chroma as 128
            # without smoothing (a DC is unknown), which we reproduce.
            add("prog3_lumaonly_420", drop_scans_after(prog3, 6), "progressive, chroma scans missing")
            # DC known everywhere but AC incomplete: libjpeg block-smooths.
            simple = mkjpeg(exe, px, samp="2x2,1x1,1x1", prog=1)
            add("prog_incomplete_420", drop_scans_after(simple, 3), "progressive, AC scans missing",
                expect="error:jpeg: unsupported incomplete progressive")

            # YCCK (Adobe transform 2), which Pillow cannot write.
            px4 = ucr_cmyk(px[:32, :48])
            ycck = mkjpeg(exe, syn4, samp="2x2,1x1,1x1,2x2", cs="ycck")
            add("ycck_q85_37x23", ycck, "YCCK 2x2,1x1,1x1,2x2")
            add("ycck_q85_crop", mkjpeg(exe, px4, samp="2x2,1x1,1x1,2x2", cs="ycck"), "YCCK photo")
            add("ycck444_q85_37x23", mkjpeg(exe, syn4, samp="1x1,1x1,1x1,1x1", cs="ycck"), "YCCK 4:4:4")
            add("ycck_adobe1_q85_37x23", adobe_transform(ycck, 1), "Adobe transform 1: libjpeg assumes YCCK")
            add("ycck_noadobe_q85_37x23", strip_app14(ycck), "YCCK data without Adobe marker: read as CMYK")
            add("progycck_q85_crop", mkjpeg(exe, px4, samp="2x2,1x1,1x1,2x2", prog=1, cs="ycck"),
                "progressive YCCK, interleaved 4-component DC scan")
            add("rst_prog3_ycck_q85", mkjpeg(exe, syn4, samp="2x2,1x1,1x1,2x2", prog=3, restart=2, cs="ycck"),
                "progressive YCCK, non-interleaved scans, refinements, restarts")
            add("seqscans_rst_cmyk_q85", mkjpeg(exe, syn4, samp="2x2,1x2,2x1,1x1", prog=2, restart=3, cs="cmyk"),
                "CMYK, one scan per component, mixed sampling, restarts")

    manifest = []
    total = 0
    for name, data, expect, note in cases:
        write_atomic(os.path.join(HERE, name + ".jpg"), data)
        total += len(data)
        im = Image.open(io.BytesIO(data))
        entry = {"name": name, "width": im.size[0], "height": im.size[1], "mode": im.mode,
                 "expect": expect, "note": note}
        if expect == "match":
            rgb, size = pillow_rgb(data)
            write_atomic(os.path.join(HERE, name + ".rgb"), rgb)
            total += len(rgb)
            if im.mode == "CMYK":
                raw = im.tobytes()
                write_atomic(os.path.join(HERE, name + ".cmyk"), raw)
                total += len(raw)
        manifest.append(entry)
    write_atomic(os.path.join(HERE, "manifest.json"), (json.dumps(manifest, indent=1) + "\n").encode())
    print(f"{len(manifest)} cases, {total} bytes of .jpg/.rgb/.cmyk")


if __name__ == "__main__":
    main()
