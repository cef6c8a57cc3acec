#!/usr/bin/python3
"""Generates the image-pipeline goldens for kernelext's tests with the reference stack.

Run from anywhere with Debian's Python (python3-pil, python3-numpy, python3-keras-preprocessing,
python3-keras-applications):

    /usr/bin/python3 kernelext/testdata/gen_golden.py

It (re)writes, under kernelext/testdata/:

  images/       inputs made here (deterministic): JPEGs of several kinds, PNGs of every colour
                type that matters, a GIF with transparency, BMPs, and broken files;
  golden/       NAME.224.png  = keras load_img(path, target_size=(224, 224)) as 8-bit RGB PNG,
                NAME.full.png = load_img(path) (no resize; only for the inputs made here),
                NAME.preprocessed.npy.gz = preprocess_input(expand_dims(img_to_array(...)))
                for two inputs, computed with NumPy in float32;
  manifest.json the list of cases and the versions that made them.

The book's seven images are read from <repo>/../shared/data/keras-workshop-ch08/Prediction/
(inputs are not copied; their goldens are). load_img, img_to_array and preprocess_input are
the real keras-preprocessing 1.1.0 and keras-applications 1.0.8 (Debian:
python3-keras-preprocessing, python3-keras-applications), through keras_libs.py next to this file.
"""
import gzip
import io
import json
import os
import struct
import sys
import zlib

import keras_applications
import keras_preprocessing
import numpy as np
import PIL
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BOOK = os.path.join(os.path.dirname(REPO), 'shared', 'data', 'keras-workshop-ch08', 'Prediction')
IMAGES = os.path.join(HERE, 'images')
sys.path.insert(0, HERE)
from keras_libs import img_to_array, load_img, preprocess_input  # noqa: E402
GOLDEN = os.path.join(HERE, 'golden')


# --- inputs -----------------------------------------------------------------------------------

def scene(w, h, seed):
    """A deterministic photo-like RGB picture: gradients, discs, edges and noise."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    img[..., 0] = 255 * x / max(w - 1, 1)
    img[..., 1] = 255 * y / max(h - 1, 1)
    img[..., 2] = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 5.0)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(4, max(w, h) / 3)
        disc = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[disc] = rng.uniform(0, 255, size=3)
    img += rng.normal(0, 12, size=img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), 'RGB')


def png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)


def raw_png(w, h, depth, ctype, rows, extra=b''):
    """A PNG written by hand, for colour types and depths Pillow cannot save."""
    raw = b''.join(b'\x00' + r for r in rows)
    return (b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, 0)) +
            extra + png_chunk(b'IDAT', zlib.compress(raw, 9)) + png_chunk(b'IEND', b''))


def make_inputs():
    os.makedirs(IMAGES, exist_ok=True)
    made = {}

    def save(name, img, fmt, **kw):
        path = os.path.join(IMAGES, name)
        img.save(path, fmt, **kw)
        made[name] = path

    def write(name, data):
        path = os.path.join(IMAGES, name)
        with open(path, 'wb') as f:
            f.write(data)
        made[name] = path

    save('gray.jpg', scene(150, 110, 1).convert('L'), 'JPEG', quality=85)
    save('progressive_420.jpg', scene(320, 240, 2), 'JPEG', quality=80, progressive=True, subsampling=2)
    save('odd_420.jpg', scene(301, 199, 3), 'JPEG', quality=90, subsampling=2)
    save('small_64.jpg', scene(64, 64, 4), 'JPEG', quality=75, subsampling=2)
    save('q_444.jpg', scene(97, 61, 5), 'JPEG', quality=95, subsampling=0)
    save('q_422.jpg', scene(83, 77, 6), 'JPEG', quality=90, subsampling=1)
    save('exact_224.jpg', scene(224, 224, 7), 'JPEG', quality=75)

    rgb = np.asarray(scene(90, 70, 8))
    alpha = np.tile(np.linspace(0, 255, 90).astype(np.uint8), (70, 1))
    alpha[:10] = 0  # fully transparent rows still carry colours Pillow keeps
    save('rgba.png', Image.fromarray(np.dstack([rgb, alpha]), 'RGBA'), 'PNG')
    save('gray.png', scene(70, 90, 9).convert('L'), 'PNG')
    la = np.dstack([np.asarray(scene(50, 40, 10).convert('L')), alpha[:40, :50]])
    save('gray_alpha.png', Image.fromarray(la, 'LA'), 'PNG')
    save('bilevel.png', scene(61, 33, 11).convert('1'), 'PNG')
    save('palette.png', scene(80, 60, 12).quantize(37), 'PNG', transparency=5)

    pal = scene(77, 55, 13).quantize(64)
    save('palette_trns.gif', pal, 'GIF', transparency=3)
    buf = io.BytesIO()
    pal.save(buf, 'GIF', transparency=7)
    gif = bytearray(buf.getvalue())
    gif[6:10] = struct.pack('<HH', 90, 70)  # logical screen larger than the only frame
    write('small_frame.gif', bytes(gif))

    save('rgb24.bmp', scene(53, 47, 14), 'BMP')
    save('palette8.bmp', scene(45, 38, 15).quantize(100), 'BMP')
    rgba_bmp = np.dstack([np.asarray(scene(31, 29, 16)), np.full((29, 31), 77, np.uint8)])
    save('rgba32.bmp', Image.fromarray(rgba_bmp, 'RGBA'), 'BMP')

    buf = io.BytesIO()
    scene(40, 30, 17).save(buf, 'PNG')
    write('png_named.jpg', buf.getvalue())

    rng = np.random.RandomState(18)
    v16 = rng.randint(0, 65536, size=(30, 20 * 3)).astype('>u2')
    write('rgb16.png', raw_png(20, 30, 16, 2, [r.tobytes() for r in v16]))
    v16 = rng.randint(0, 65536, size=(25, 18 * 4)).astype('>u2')
    write('rgba16.png', raw_png(18, 25, 16, 6, [r.tobytes() for r in v16]))
    g16 = rng.randint(0, 600, size=(21, 17)).astype('>u2')  # mostly above 255: Pillow clips
    write('gray16.png', raw_png(17, 21, 16, 0, [r.tobytes() for r in g16]))
    write('gray16_trns.png', raw_png(17, 21, 16, 0, [r.tobytes() for r in g16],
                                     png_chunk(b'tRNS', struct.pack('>H', 300))))
    plte = bytes(rng.randint(0, 256, size=3 * 6).astype(np.uint8))
    idx = rng.randint(0, 12, size=(9, 16)).astype(np.uint8)  # indices 6..11 are past the palette
    write('palette_short.png', raw_png(16, 9, 8, 3, [r.tobytes() for r in idx], png_chunk(b'PLTE', plte)))
    # CMYK JPEG with a real K channel (convert('CMYK') would leave K at 0 everywhere).
    cmyk = np.dstack([np.asarray(scene(46, 34, 20)), rng.randint(0, 256, size=(34, 46, 1)).astype(np.uint8)])
    save('cmyk.jpg', Image.fromarray(cmyk, 'CMYK'), 'JPEG', quality=90)
    g2 = rng.randint(0, 256, size=(7, 5)).astype(np.uint8)  # 2-bit gray, 20 pixels per row
    write('gray2.png', raw_png(20, 7, 2, 0, [r.tobytes() for r in g2]))
    return made


def make_broken():
    """Files LoadImg must refuse with a clear error (the Go test lists the expected reasons)."""
    with open(os.path.join(IMAGES, 'small_64.jpg'), 'rb') as f:
        jpg = f.read()
    broken = {
        'empty.jpg': b'',
        'truncated.jpg': jpg[:len(jpg) // 2],
        'text.jpg': b'this is not an image\n',
        'huge_header.png': raw_png(100000, 100000, 8, 2, [])[:33],  # header claims 10^10 pixels
    }
    sof = jpg.index(b'\xff\xc0')
    broken['huge_header.jpg'] = jpg[:sof + 5] + struct.pack('>HH', 65500, 65500) + jpg[sof + 9:]
    buf = io.BytesIO()
    scene(20, 20, 19).save(buf, 'TIFF')
    broken['image.tiff.jpg'] = buf.getvalue()
    for name, data in broken.items():
        with open(os.path.join(IMAGES, name), 'wb') as f:
            f.write(data)
    return sorted(broken)


# --- goldens ----------------------------------------------------------------------------------

def save_rgb_png(img, path):
    assert img.mode == 'RGB'
    # Rebuild from the pixels so no metadata (e.g. a transparency colour) is carried along.
    Image.fromarray(np.asarray(img), 'RGB').save(path, 'PNG', optimize=True)


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    made = make_inputs()
    broken = make_broken()
    cases = []
    for name in sorted(os.listdir(BOOK)) if os.path.isdir(BOOK) else []:
        cases.append({'name': 'book_' + os.path.splitext(name)[0], 'input': 'book:' + name,
                      'path': os.path.join(BOOK, name), 'full': False})
    if not cases:
        sys.exit('book images not found under ' + BOOK)
    for name in sorted(made):
        cases.append({'name': os.path.splitext(name)[0].replace('.', '_') + '_' + name.rsplit('.', 1)[1],
                      'input': 'images/' + name, 'path': made[name], 'full': True})
    preprocessed = {'book_pizza', 'small_64_jpg'}
    for c in cases:
        save_rgb_png(load_img(c['path'], target_size=(224, 224)), os.path.join(GOLDEN, c['name'] + '.224.png'))
        if c['full']:
            save_rgb_png(load_img(c['path']), os.path.join(GOLDEN, c['name'] + '.full.png'))
        if c['name'] in preprocessed:
            x = img_to_array(load_img(c['path'], target_size=(224, 224)))
            x = preprocess_input(np.expand_dims(x, axis=0))
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(x, dtype=np.float32))
            with open(os.path.join(GOLDEN, c['name'] + '.preprocessed.npy.gz'), 'wb') as f:
                with gzip.GzipFile(fileobj=f, mode='wb', mtime=0) as gz:
                    gz.write(buf.getvalue())
            c['preprocessed'] = True
        del c['path']
    manifest = {
        'generator': 'kernelext/testdata/gen_golden.py',
        'pillow': PIL.__version__,
        'numpy': np.__version__,
        'keras_preprocessing': keras_preprocessing.__version__,
        'keras_applications': keras_applications.__version__,
        'cases': cases,
        'broken': broken,
    }
    with open(os.path.join(HERE, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write('\n')


if __name__ == '__main__':
    main()
