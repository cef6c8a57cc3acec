"""Python model of the Keras 2.3 / keras-preprocessing 1.1.0 behaviour the datasets package
reproduces, written from the project's semantics notes (section 9: folder indexing, random
parameter order, affine transform, reseeding) and used only to write the golden files next to
this script. The arithmetic that matters is delegated to the libraries Keras itself calls:
NumPy's global legacy generator, numpy.dot for the 3x3 matrices, scipy.ndimage.affine_transform
(order=1, mode='nearest') and Pillow for loading — which is what makes it an oracle.
"""
import os

import numpy as np
import scipy.ndimage
from PIL import Image

IMAGE_SUFFIXES = ('png', 'jpg', 'jpeg', 'bmp', 'ppm', 'tif', 'tiff')


def affine(x, shear_deg=0, zx=1, zy=1):
    """Shear (degrees) and zoom of an (h, w, c) float32 image, channels transformed one by one."""
    parts = []
    if shear_deg != 0:
        s = np.deg2rad(shear_deg)
        parts.append(np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]]))
    if zx != 1 or zy != 1:
        parts.append(np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]]))
    if not parts:
        return x
    m = parts[0] if len(parts) == 1 else np.dot(parts[0], parts[1])
    h, w = x.shape[0], x.shape[1]
    cr, cc = h / 2 + 0.5, w / 2 + 0.5  # the centre Keras uses (not (h-1)/2)
    to_centre = np.array([[1, 0, cr], [0, 1, cc], [0, 0, 1]])
    from_centre = np.array([[1, 0, -cr], [0, 1, -cc], [0, 0, 1]])
    m = np.dot(np.dot(to_centre, m), from_centre)
    out = [scipy.ndimage.affine_transform(x[:, :, k], m[:2, :2], m[:2, 2], order=1, mode='nearest', cval=0.)
           for k in range(x.shape[2])]
    return np.stack(out, axis=2)


class Augment:
    """The ImageDataGenerator options the book uses."""

    def __init__(self, rescale=None, shear_range=0., zoom_range=0., horizontal_flip=False, vertical_flip=False):
        self.rescale = rescale
        self.shear_range = shear_range
        self.zoom = [1 - zoom_range, 1 + zoom_range] if np.isscalar(zoom_range) else list(zoom_range)
        self.hflip, self.vflip = horizontal_flip, vertical_flip

    def draw(self):
        # Order and conditions of the draws: shear if enabled, two zooms if the range is not
        # [1, 1], then two random() calls (horizontal, vertical flip) in every case.
        p = {'shear': 0, 'zx': 1, 'zy': 1}
        if self.shear_range:
            p['shear'] = np.random.uniform(-self.shear_range, self.shear_range)
        if self.zoom != [1, 1]:
            p['zx'], p['zy'] = np.random.uniform(self.zoom[0], self.zoom[1], 2)
        p['flip_horizontal'] = bool(np.random.random() < 0.5) and self.hflip
        p['flip_vertical'] = bool(np.random.random() < 0.5) and self.vflip
        return p

    def apply(self, x, p):
        x = affine(x, p['shear'], p['zx'], p['zy'])
        if p['flip_horizontal']:
            x = x[:, ::-1, :]
        if p['flip_vertical']:
            x = x[::-1, :, :]
        x = np.array(x, dtype=np.float32)
        if self.rescale:
            x *= self.rescale  # float32 array times Python float: a float32 product
        return x


def class_files(class_dir):
    """Image files under class_dir: walk roots sorted by path string, names sorted."""
    for root, _, names in sorted(os.walk(class_dir), key=lambda t: t[0]):
        for name in sorted(names):
            if name.lower().endswith(IMAGE_SUFFIXES):
                yield os.path.join(os.path.relpath(root, class_dir), name) if root != class_dir else name


class DirectoryIterator:
    def __init__(self, directory, aug, target_size, class_mode='categorical', batch_size=32, shuffle=True, seed=None):
        names = sorted(os.listdir(directory))
        self.classes = [n for n in names if os.path.isdir(os.path.join(directory, n))]
        self.class_indices = {c: i for i, c in enumerate(self.classes)}
        self.filenames, labels = [], []
        for c in self.classes:
            for rel in class_files(os.path.join(directory, c)):
                self.filenames.append(os.path.join(c, rel))
                labels.append(self.class_indices[c])
        self.labels = np.array(labels, dtype=np.int64)
        self.n = len(self.filenames)
        self.message = 'Found %d images belonging to %d classes.' % (self.n, len(self.classes))
        self.directory, self.aug, self.size = directory, aug, tuple(target_size)
        self.class_mode, self.batch_size, self.shuffle, self.seed = class_mode, batch_size, shuffle, seed
        self.position = 0      # batch number within the pass (generator style)
        self.seen = 0          # batches produced so far, both styles
        self.order = None      # current permutation
        self.log = []          # (indices, params) of each batch produced

    def _new_order(self):
        self.order = np.random.permutation(self.n) if self.shuffle else np.arange(self.n)

    def _reseed(self):
        if self.seed is not None:
            np.random.seed(self.seed + self.seen)

    def next(self):
        """Python's next(it): reseed, new permutation at the start of a pass, slice."""
        self._reseed()
        if self.position == 0:
            self._new_order()
        start = (self.position * self.batch_size) % self.n
        self.position = self.position + 1 if self.n > start + self.batch_size else 0
        self.seen += 1
        return self._batch(self.order[start:start + self.batch_size])

    def __getitem__(self, i):
        """it[i] (the Sequence interface): reseed, permutation only on first use."""
        self._reseed()
        self.seen += 1
        if self.order is None:
            self._new_order()
        return self._batch(self.order[i * self.batch_size:(i + 1) * self.batch_size])

    def on_epoch_end(self):
        self._new_order()

    def _load(self, j):
        img = Image.open(os.path.join(self.directory, self.filenames[j]))
        if img.mode != 'RGB':
            img = img.convert('RGB')
        h, w = self.size
        if img.size != (w, h):
            img = img.resize((w, h), Image.NEAREST)
        return np.asarray(img, dtype=np.float32)

    def _batch(self, idx):
        xs, params = [], []
        for j in idx:
            x = self._load(j)
            p = self.aug.draw()
            params.append(p)
            xs.append(self.aug.apply(x, p))
        self.log.append((np.array(idx), params))
        x = np.stack(xs).astype(np.float32)
        if self.class_mode == 'binary':
            y = self.labels[idx].astype(np.float32)
        else:
            y = np.zeros((len(idx), len(self.classes)), dtype=np.float32)
            y[np.arange(len(idx)), self.labels[idx]] = 1
        return x, y
