"""Input normalisation families: the one home of the family names and their arithmetic.

Every model in the registry names one family (:mod:`fer_tf.models` imports the names from here,
never the reverse); the data pipeline turns decoded RGB images with
values in ``[0, 255]`` into network input with :func:`normalize`. All functions are pure
TensorFlow ops and can run inside ``tf.data`` graphs and XLA.

Families:

- ``inception``: ``x / 127.5 - 1`` (TF-Slim Inception, range ``[-1, 1]``).
- ``vgg``: RGB mean subtraction ``x - (123.68, 116.78, 103.94)`` (TF-Slim VGG; also what
  Keras-applications VGG16 expects once its first kernel is flipped to RGB).
- ``imagenet``: ``(x / 255 - mean) / std`` with mean ``(0.485, 0.456, 0.406)`` and std
  ``(0.229, 0.224, 0.225)`` (Athanasiadis 2022's mean/std normalisation).
- ``facenet``: ``(x - 127.5) / 128`` (FaceNet's fixed image standardisation).
- ``unit``: ``x / 255`` (range ``[0, 1]``).

For single-channel (greyscale) input the per-channel constants of ``vgg`` and ``imagenet`` are
replaced by their averages over the three channels.

Importing this module does not import TensorFlow (the functions do, when called), so configs and
CLIs can check a family name before TensorFlow loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from fer_tf.checks import check_choice

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "PREPROCESSING_FAMILIES",
    "VGG_MEAN_RGB",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "normalize",
    "get_normalizer",
]

PREPROCESSING_FAMILIES: tuple[str, ...] = ("inception", "vgg", "imagenet", "facenet", "unit")

VGG_MEAN_RGB: tuple[float, float, float] = (123.68, 116.78, 103.94)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def _check_family(family: str) -> None:
    check_choice("family", family, PREPROCESSING_FAMILIES)


def _per_channel(values: tuple[float, float, float], channels: int | None) -> np.ndarray:
    if channels == 1:
        return np.asarray([np.mean(values)], dtype=np.float32)
    if channels not in (3, None):
        raise ValueError(
            f"Per-channel normalisation needs 1 or 3 channels. Got {channels} channels instead."
        )
    return np.asarray(values, dtype=np.float32)


def normalize(images: tf.Tensor | np.ndarray, family: str) -> tf.Tensor:
    """Normalise RGB (or greyscale) images with values in ``[0, 255]`` for a model family.

    Args:
        images: A tensor or array ``[..., height, width, channels]``, any real or integer dtype,
            values in ``[0, 255]``.
        family: One of :data:`PREPROCESSING_FAMILIES`.

    Returns:
        A float32 tensor of the same shape.

    Raises:
        ValueError: If the family is unknown or, for ``vgg``/``imagenet``, the channel count is
            neither 1 nor 3.
    """
    import tensorflow as tf  # lazily: the family names above are read without TensorFlow

    _check_family(family)
    x = tf.cast(images, tf.float32)
    channels = x.shape[-1] if x.shape.rank else None
    if family == "inception":
        return x / 127.5 - 1.0
    if family == "vgg":
        return x - _per_channel(VGG_MEAN_RGB, channels)
    if family == "imagenet":
        mean = _per_channel(IMAGENET_MEAN, channels)
        std = _per_channel(IMAGENET_STD, channels)
        return (x / 255.0 - mean) / std
    if family == "facenet":
        return (x - 127.5) / 128.0
    return x / 255.0


class _Normalizer:
    """A picklable ``fn(images) -> tensor`` bound to one family."""

    def __init__(self, family: str) -> None:
        _check_family(family)
        self.family = family

    def __call__(self, images: tf.Tensor | np.ndarray) -> tf.Tensor:
        return normalize(images, self.family)

    def __repr__(self) -> str:
        return f"normalize[{self.family}]"


def get_normalizer(family: str) -> Callable[[tf.Tensor | np.ndarray], tf.Tensor]:
    """Return ``fn(images_float_0_255) -> tensor`` for a family, usable inside ``tf.data``.

    Args:
        family: One of :data:`PREPROCESSING_FAMILIES`.

    Returns:
        A callable applying :func:`normalize` with that family.

    Raises:
        ValueError: If the family is unknown.
    """
    return _Normalizer(family)
