#!/usr/bin/python3
"""Writes the golden model.summary() texts in this directory (summary_*.txt).

The model definitions are the real ones: keras-applications 1.0.8's VGG16 and ResNet50
(Debian's python3-keras-applications), called with weights=None and the stand-in backend,
layers and models modules below — keras-applications takes those as keyword arguments.

What stays re-implemented here, independently of the Go code, is Keras core 2.3 (keras/engine,
keras/utils), which Debian 12 does not package and which needs TensorFlow:

* layers that compute output shapes and weight counts, named automatically from the
  per-class counters of keras/engine/base_layer.py (constructor options that change neither,
  such as activation, kernel_initializer or the BatchNormalization axis, are accepted and
  not used);
* Network's layer order (keras/engine/network.py, _map_graph_network): depth-first
  traversal from the outputs assigns each layer a traversal index, every node gets a depth
  (longest path to the output), and model.layers lists layers by decreasing depth, ties by
  traversal index;
* print_summary (keras/utils/layer_utils.py): the sequential_like test, positions, rows,
  truncation and the totals.

Run: /usr/bin/python3 gen_summary_goldens.py   (needs python3-keras-applications)
"""

import os
import re
import types

from keras_applications import resnet50 as keras_resnet50
from keras_applications import vgg16 as keras_vgg16

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------- mini Keras


class Session:
    def __init__(self):
        self.counters = {}

    def unique(self, cls_name):
        # base_layer.py: prefix = to_snake_case(class name); name = prefix + '_' + counter.
        s1 = re.sub('(.)([A-Z][a-z]+)', r'\1_\2', cls_name)
        prefix = re.sub('([a-z])([A-Z])', r'\1_\2', s1).lower()
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return '%s_%d' % (prefix, self.counters[prefix])


SESSION = Session()


class Tensor:
    def __init__(self, layer, shape):
        self.layer = layer
        self.shape = shape


class Layer:
    cls_name = None

    def __init__(self, name=None, **unused_options):
        self.name = name or SESSION.unique(self.cls_name)
        self.inbound = []  # layers feeding this one (single call per layer here)
        self.trainable = True
        self.out = None

    def __call__(self, inputs):
        ins = inputs if isinstance(inputs, list) else [inputs]
        self.inbound = [t.layer for t in ins]
        self.out = Tensor(self, self.compute_shape([t.shape for t in ins]))
        return self.out

    def weights(self):  # list of (size, updatable)
        return []

    def count_params(self):
        return sum(n for n, _ in self.weights())


def pair(v):
    """conv_utils.normalize_tuple: an int n stands for (n, n)."""
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_len(n, k, stride, padding):
    if n is None:
        return None
    if padding == 'same':
        return (n + stride - 1) // stride
    return (n - k) // stride + 1


class InputLayer(Layer):
    cls_name = 'InputLayer'

    def __init__(self, shape):
        # input_layer.py names inputs from the prefix 'input', not the class name.
        SESSION.counters['input'] = SESSION.counters.get('input', 0) + 1
        super().__init__('input_%d' % SESSION.counters['input'])
        self.out = Tensor(self, (None,) + tuple(shape))


class Conv2D(Layer):
    cls_name = 'Conv2D'

    def __init__(self, filters, kernel, strides=(1, 1), padding='valid', name=None, **unused_options):
        super().__init__(name)
        self.filters, self.kernel, self.strides, self.padding = filters, pair(kernel), pair(strides), padding

    def compute_shape(self, shapes):
        b, h, w, c = shapes[0]
        self.cin = c
        return (b, conv_len(h, self.kernel[0], self.strides[0], self.padding),
                conv_len(w, self.kernel[1], self.strides[1], self.padding), self.filters)

    def weights(self):
        return [(self.kernel[0] * self.kernel[1] * self.cin * self.filters, True), (self.filters, True)]


class MaxPooling2D(Layer):
    cls_name = 'MaxPooling2D'

    def __init__(self, pool, strides=None, name=None):
        super().__init__(name)
        self.pool, self.strides = pair(pool), pair(strides or pool)

    def compute_shape(self, shapes):
        b, h, w, c = shapes[0]
        return (b, conv_len(h, self.pool[0], self.strides[0], 'valid'),
                conv_len(w, self.pool[1], self.strides[1], 'valid'), c)


class ZeroPadding2D(Layer):
    cls_name = 'ZeroPadding2D'

    def __init__(self, padding, name=None):
        super().__init__(name)
        self.padding = padding

    def compute_shape(self, shapes):
        b, h, w, c = shapes[0]
        p = self.padding
        return (b, None if h is None else h + 2 * p[0], None if w is None else w + 2 * p[1], c)


class BatchNormalization(Layer):
    cls_name = 'BatchNormalization'

    def compute_shape(self, shapes):
        self.c = shapes[0][-1]
        return shapes[0]

    def weights(self):
        # gamma, beta trainable; moving_mean, moving_variance never.
        return [(self.c, True), (self.c, True), (self.c, False), (self.c, False)]


class Activation(Layer):
    cls_name = 'Activation'

    def __init__(self, act, name=None):
        super().__init__(name)

    def compute_shape(self, shapes):
        return shapes[0]


class Add(Layer):
    cls_name = 'Add'

    def compute_shape(self, shapes):
        return shapes[0]


class Flatten(Layer):
    cls_name = 'Flatten'

    def compute_shape(self, shapes):
        n = 1
        for d in shapes[0][1:]:
            n *= d
        return (shapes[0][0], n)


class Dense(Layer):
    cls_name = 'Dense'

    def __init__(self, units, activation=None, name=None, **unused_options):
        super().__init__(name)
        self.units = units

    def compute_shape(self, shapes):
        self.inp = shapes[0][-1]
        return (shapes[0][0], self.units)

    def weights(self):
        return [(self.inp * self.units, True), (self.units, True)]


class GlobalAveragePooling2D(Layer):
    cls_name = 'GlobalAveragePooling2D'

    def compute_shape(self, shapes):
        return (shapes[0][0], shapes[0][3])


class GlobalMaxPooling2D(Layer):
    cls_name = 'GlobalMaxPooling2D'

    def compute_shape(self, shapes):
        return (shapes[0][0], shapes[0][3])


class Model:
    """keras.engine.network.Network's layer ordering, for single-use layers."""

    def __init__(self, inputs, outputs, name):
        self.name = name
        layer_indices = {}
        finished = set()
        in_decreasing_depth = []

        def build_map(layer):
            if layer in finished:
                return
            if layer not in layer_indices:
                layer_indices[layer] = len(layer_indices)
            for inbound in layer.inbound:
                build_map(inbound)
            finished.add(layer)
            in_decreasing_depth.append(layer)

        build_map(outputs.layer)
        depth = {}
        for layer in reversed(in_decreasing_depth):
            d = depth.setdefault(layer, 0)
            for inbound in layer.inbound:
                depth[inbound] = max(d + 1, depth.get(inbound, 0))
        by_depth = {}
        for layer, d in depth.items():
            by_depth.setdefault(d, []).append(layer)
        self.layers = []
        for d in sorted(by_depth, reverse=True):
            self.layers.extend(sorted(by_depth[d], key=lambda l: layer_indices[l]))
        self.by_depth = by_depth


class Sequential:
    """keras.Sequential built by adding existing layers, as Exercise 8.03 does; its layers
    property leaves out the InputLayer (keras/engine/sequential.py)."""

    is_sequential = True

    def __init__(self, layers, name):
        self.name = name
        self.layers = [l for l in layers if not isinstance(l, InputLayer)]


def print_summary(model, print_fn):
    """keras/utils/layer_utils.py print_summary (Keras 2.3.1), for this mini model."""
    sequential_like = True
    for v in ({} if getattr(model, 'is_sequential', False) else model.by_depth).values():
        if len(v) > 1 or (len(v) == 1 and len(v[0].inbound) > 1):
            sequential_like = False
            break
    if sequential_like:
        line_length = 65
        positions = [int(line_length * p) for p in [.45, .85, 1.]]
        to_display = ['Layer (type)', 'Output Shape', 'Param #']
    else:
        line_length = 98
        positions = [int(line_length * p) for p in [.33, .55, .67, 1.]]
        to_display = ['Layer (type)', 'Output Shape', 'Param #', 'Connected to']

    def print_row(fields, positions):
        line = ''
        for i in range(len(fields)):
            if i > 0:
                line = line[:-1] + ' '
            line += str(fields[i])
            line = line[:positions[i]]
            line += ' ' * (positions[i] - len(line))
        print_fn(line)

    print_fn('Model: "{}"'.format(model.name))
    print_fn('_' * line_length)
    print_row(to_display, positions)
    print_fn('=' * line_length)
    layers = model.layers
    for i, layer in enumerate(layers):
        fields = [layer.name + ' (' + layer.cls_name + ')', layer.out.shape, layer.count_params()]
        if sequential_like:
            print_row(fields, positions)
        else:
            connections = [l.name + '[0][0]' for l in layer.inbound]
            print_row(fields + [connections[0] if connections else ''], positions)
            for c in connections[1:]:
                print_row(['', '', '', c], positions)
        print_fn('=' * line_length if i == len(layers) - 1 else '_' * line_length)
    trainable = sum(n for l in layers if l.trainable for n, upd in l.weights() if upd)
    total = sum(l.count_params() for l in layers)
    print_fn('Total params: {:,}'.format(total))
    print_fn('Trainable params: {:,}'.format(trainable))
    print_fn('Non-trainable params: {:,}'.format(total - trainable))
    print_fn('_' * line_length)


# ------------------------------------ keras-applications 1.0.8, run on the layers above


def Input(shape):
    return InputLayer(shape).out


def add(inputs, **options):
    return Add(**options)(inputs)


SUBMODULES = dict(
    backend=types.SimpleNamespace(image_data_format=lambda: 'channels_last'),
    layers=types.SimpleNamespace(
        Input=Input, Conv2D=Conv2D, MaxPooling2D=MaxPooling2D, ZeroPadding2D=ZeroPadding2D,
        BatchNormalization=BatchNormalization, Activation=Activation, add=add, Flatten=Flatten,
        Dense=Dense, GlobalAveragePooling2D=GlobalAveragePooling2D,
        GlobalMaxPooling2D=GlobalMaxPooling2D),
    models=types.SimpleNamespace(Model=lambda inputs, outputs, name: Model(inputs, outputs, name)),
    utils=None)


def VGG16(**kwargs):
    return keras_vgg16.VGG16(weights=None, **kwargs, **SUBMODULES)


def ResNet50(**kwargs):
    return keras_resnet50.ResNet50(weights=None, **kwargs, **SUBMODULES)


# ------------------------------------------------------------------------------- goldens


def write(name, model_fn, trainable_from=None):
    global SESSION
    SESSION = Session()  # each golden is a fresh Keras session
    model = model_fn()
    if trainable_from is not None:
        names = [l.name for l in model.layers]
        k = names.index(trainable_from)
        for layer in model.layers[:k]:
            layer.trainable = False
    lines = []
    print_summary(model, lines.append)
    path = os.path.join(HERE, 'summary_%s.txt' % name)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(''.join(line + '\n' for line in lines))
    os.replace(tmp, path)


def exercise_8_03():
    """vgg_model = VGG16(); classifier = Sequential(); add every layer but the last;
    freeze them all; classifier.add(Dense(1, activation='sigmoid'))."""
    vgg = VGG16()
    layers = vgg.layers[:-1]
    for layer in layers:
        layer.trainable = False
    SESSION.unique('Sequential')  # the Sequential model takes "sequential_1"
    dense = Dense(1, activation='sigmoid')
    dense(layers[-1].out)
    return Sequential(layers + [dense], name='sequential_1')


def resnet50_notop_gap_dense():
    """ResNet50(include_top=False) frozen, then GlobalAveragePooling2D and Dense(1) on its
    output in a functional model (keras.Model(base.input, out))."""
    base = ResNet50(include_top=False, input_shape=(224, 224, 3))
    for layer in base.layers:
        layer.trainable = False
    x = GlobalAveragePooling2D()(base.layers[-1].out)
    x = Dense(1, activation='sigmoid')(x)
    return Model(base.layers[0].out, x, name='model_1')


write('vgg16', lambda: VGG16())
write('exercise_8_03', exercise_8_03)
write('resnet50_notop_gap_dense', resnet50_notop_gap_dense)
write('vgg16_notop', lambda: VGG16(include_top=False))
write('vgg16_notop_avg', lambda: VGG16(include_top=False, pooling='avg'))
write('vgg16_notop_224_max', lambda: VGG16(include_top=False, pooling='max', input_shape=(224, 224, 3)))
write('vgg16_block5_trainable', lambda: VGG16(), trainable_from='block5_conv1')
write('resnet50', lambda: ResNet50())
write('resnet50_notop', lambda: ResNet50(include_top=False))
write('resnet50_notop_224_avg', lambda: ResNet50(include_top=False, pooling='avg', input_shape=(224, 224, 3)))
write('resnet50_frozen', lambda: ResNet50(), trainable_from='fc1000')
