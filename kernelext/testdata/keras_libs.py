"""The book's Keras image functions, taken from the real libraries (Debian 12:
python3-keras-preprocessing 1.1.0, python3-keras-applications 1.0.8), for the test oracles.

Keras 2.3 hands keras-applications its backend and utils modules through keyword arguments;
without TensorFlow, the two small stand-ins below supply exactly what the NumPy code paths call:
preprocess_input asks the backend for floatx() and image_data_format(), decode_predictions asks
utils.get_file for the class index, which the repository embeds (kernelext/imagenet_class_index.json,
the file Keras downloads, md5 c2c37ea517e94d9795004a39431a14cb). Everything else — Pillow
loading, the RGB-to-BGR flip, the mean subtraction, argsort and the sort of the top-k — is the
libraries' own code.

Import it from another script with sys.path pointing at this folder.
"""
import os

from keras_applications import imagenet_utils
from keras_preprocessing.image import img_to_array, load_img  # noqa: F401 (re-exported)

CLASS_INDEX_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'imagenet_class_index.json')


class _Backend:
    """What keras.backend gives keras-applications' NumPy paths under Keras 2.3's defaults."""

    @staticmethod
    def floatx():
        return 'float32'

    @staticmethod
    def image_data_format():
        return 'channels_last'


class _Utils:
    """keras.utils.get_file, answered with the embedded class index instead of a download."""

    @staticmethod
    def get_file(fname, origin=None, **kwargs):
        if fname != 'imagenet_class_index.json':
            raise ValueError('keras_libs: no local copy of ' + fname)
        return CLASS_INDEX_PATH


_SUBMODULES = dict(backend=_Backend, layers=None, models=None, utils=_Utils)


def preprocess_input(x):
    """keras.applications.vgg16/resnet50.preprocess_input: imagenet_utils in mode 'caffe'."""
    return imagenet_utils.preprocess_input(x, mode='caffe', **_SUBMODULES)


def decode_predictions(preds, top=5):
    """keras.applications.*.decode_predictions."""
    return imagenet_utils.decode_predictions(preds, top=top, **_SUBMODULES)
