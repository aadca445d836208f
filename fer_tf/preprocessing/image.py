"""In-graph image preprocessing: decode, crop, resize, flip, histogram equalisation, normalisation.

Everything here is TensorFlow ops that run eagerly, inside ``tf.data.Dataset.map`` and inside
``tf.function`` alike, with the same result. Randomness is *stateless*: every random op takes a
``seed`` tensor of shape ``[2]`` (int32/int64), so a given seed always gives the same crop and flip.

Images travel as ``float32`` in ``[0, 255]`` until :func:`normalize` maps them to the model's
preprocessing family (``inception``, ``vgg``, ``imagenet``, ``facenet``, ``unit``; the families
are defined once, in :mod:`fer_tf.preprocessing.normalization`).

Crops follow Inception practice: evaluation takes a central crop (``central_fraction=0.875`` by
default) and training a random crop whose area and aspect ratio are drawn from ranges; both are
decoded with ``tf.image.decode_and_crop_jpeg`` so only the window is decoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from fer_tf.checks import check_choice
from fer_tf.preprocessing import normalization

__all__ = [
    "TRAIN_CROPS",
    "as_size",
    "decode_image",
    "image_shape",
    "central_crop_window",
    "random_crop_window",
    "decode_crop",
    "resize",
    "preprocess_for_eval",
    "preprocess_for_train",
    "equalize_histogram",
    "normalize",
    "split_seed",
]

TRAIN_CROPS = ("random", "central", "none")


def as_size(size: int | Sequence[int], name: str = "image_size") -> tuple[int, int]:
    """Normalise an image size to ``(height, width)``.

    Args:
        size: an int (square) or a ``(height, width)`` pair of positive ints.
        name: the parameter name used in the error message.

    Returns:
        ``(height, width)``.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(size, bool):
        pass
    elif isinstance(size, int) and size > 0:
        return size, size
    elif (
        isinstance(size, Sequence)
        and not isinstance(size, str)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        return int(size[0]), int(size[1])
    raise ValueError(
        f"The '{name}' parameter must be a positive int or a (height, width) pair of positive "
        f"ints. Got {size!r} instead."
    )


def split_seed(seed: Any, num: int) -> list[tf.Tensor]:
    """Split a stateless seed ``[2]`` into ``num`` independent seeds.

    Args:
        seed: int tensor (or list) of shape ``[2]``.
        num: how many seeds to derive.

    Returns:
        ``num`` int64 tensors of shape ``[2]``.
    """
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, num)
    return [seeds[i] for i in range(num)]


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """Decode a JPEG (fast path) or PNG/BMP/GIF image to ``uint8 [H, W, 3]``.

    Args:
        encoded: scalar string tensor.

    Returns:
        ``uint8`` tensor ``[H, W, 3]`` (grey images are expanded to three channels).
    """
    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3),
        lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False),
    )


def image_shape(encoded: tf.Tensor) -> tf.Tensor:
    """``[height, width, channels]`` (int32) of an encoded image; JPEG headers only are read.

    Args:
        encoded: scalar string tensor.

    Returns:
        int32 tensor ``[3]``.
    """
    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.image.extract_jpeg_shape(encoded),
        lambda: tf.shape(tf.io.decode_image(encoded, channels=3, expand_animations=False)),
    )


def central_crop_window(shape: tf.Tensor, fraction: float) -> tf.Tensor:
    """Window ``[y, x, h, w]`` of the central ``fraction`` of each side.

    Args:
        shape: ``[height, width, ...]`` int tensor.
        fraction: in ``(0, 1]``; 0.875 is Inception's evaluation crop.

    Returns:
        int32 tensor ``[4]``.
    """
    shape = tf.cast(shape, tf.int32)
    height, width = shape[0], shape[1]
    h = tf.maximum(1, tf.cast(tf.round(tf.cast(height, tf.float32) * fraction), tf.int32))
    w = tf.maximum(1, tf.cast(tf.round(tf.cast(width, tf.float32) * fraction), tf.int32))
    return tf.stack([(height - h) // 2, (width - w) // 2, h, w])


def random_crop_window(
    shape: tf.Tensor,
    seed: Any,
    *,
    area_range: Sequence[float] = (0.7, 1.0),
    aspect_ratio_range: Sequence[float] = (0.9, 1.0 / 0.9),
    max_attempts: int = 20,
) -> tf.Tensor:
    """Random window ``[y, x, h, w]`` covering a fraction of the area (stateless).

    Args:
        shape: ``[height, width, ...]`` int tensor.
        seed: stateless seed, shape ``[2]``.
        area_range: fraction of the image area the window covers.
        aspect_ratio_range: width/height of the window.
        max_attempts: tries before falling back to the whole image.

    Returns:
        int32 tensor ``[4]``.
    """
    shape = tf.cast(shape, tf.int32)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4]),
        seed=tf.cast(seed, tf.int64),
        min_object_covered=float(area_range[0]),
        aspect_ratio_range=[float(v) for v in aspect_ratio_range],
        area_range=[float(v) for v in area_range],
        max_attempts=max_attempts,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], size[0], size[1]])


def decode_crop(encoded: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Decode only ``window`` (``[y, x, h, w]``) of an encoded image.

    Args:
        encoded: scalar string tensor.
        window: int32 ``[4]``.

    Returns:
        ``uint8 [h, w, 3]``.
    """
    window = tf.cast(window, tf.int32)

    def other() -> tf.Tensor:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        return tf.image.crop_to_bounding_box(image, window[0], window[1], window[2], window[3])

    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.image.decode_and_crop_jpeg(encoded, window, channels=3),
        other,
    )


def resize(image: tf.Tensor, size: int | Sequence[int], *, antialias: bool = False) -> tf.Tensor:
    """Bilinear resize to ``size``; returns ``float32`` in the input's value range.

    Args:
        image: ``[H, W, C]`` or ``[B, H, W, C]``, any real dtype.
        size: int or ``(height, width)``.
        antialias: low-pass when shrinking (slower; off in Inception preprocessing).

    Returns:
        ``float32`` image of the requested size (static shape).
    """
    h, w = as_size(size, "size")
    out = tf.image.resize(tf.cast(image, tf.float32), [h, w], antialias=antialias)
    return tf.ensure_shape(out, [*out.shape[:-3], h, w, out.shape[-1]])


def preprocess_for_eval(
    encoded: tf.Tensor,
    image_size: int | Sequence[int],
    *,
    central_fraction: float | None = 0.875,
) -> tf.Tensor:
    """Evaluation preprocessing: central crop, resize (deterministic).

    Args:
        encoded: scalar string tensor (an encoded image).
        image_size: output size.
        central_fraction: fraction of each side kept; ``None`` or 1.0 keeps the whole image.

    Returns:
        ``float32 [h, w, 3]`` in ``[0, 255]``.
    """
    if central_fraction is None or central_fraction >= 1.0:
        image = decode_image(encoded)
    else:
        image = decode_crop(encoded, central_crop_window(image_shape(encoded), central_fraction))
    return resize(image, image_size)


def preprocess_for_train(
    encoded: tf.Tensor,
    image_size: int | Sequence[int],
    seed: Any,
    *,
    crop: str = "random",
    central_fraction: float | None = 0.875,
    area_range: Sequence[float] = (0.7, 1.0),
    aspect_ratio_range: Sequence[float] = (0.9, 1.0 / 0.9),
    flip: bool = True,
) -> tf.Tensor:
    """Training preprocessing: (random) crop, resize, random horizontal flip (stateless).

    Args:
        encoded: scalar string tensor.
        image_size: output size.
        seed: stateless seed ``[2]``.
        crop: ``"random"`` (area/aspect ranges), ``"central"`` (``central_fraction``) or
            ``"none"``.
        central_fraction: used when ``crop="central"``.
        area_range, aspect_ratio_range: see :func:`random_crop_window`.
        flip: random left-right flip with probability 0.5.

    Returns:
        ``float32 [h, w, 3]`` in ``[0, 255]``.

    Raises:
        ValueError: for an unknown ``crop``.
    """
    if crop not in TRAIN_CROPS:
        check_choice("crop", crop, TRAIN_CROPS)
    crop_seed, flip_seed = split_seed(seed, 2)
    if crop == "random":
        window = random_crop_window(
            image_shape(encoded),
            crop_seed,
            area_range=area_range,
            aspect_ratio_range=aspect_ratio_range,
        )
        image = resize(decode_crop(encoded, window), image_size)
    elif crop == "central":
        image = preprocess_for_eval(encoded, image_size, central_fraction=central_fraction)
    else:
        image = resize(decode_image(encoded), image_size)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return image


_LUMA = (0.299, 0.587, 0.114)


def equalize_histogram(images: tf.Tensor, *, keep_range: bool = True) -> tf.Tensor:
    """Histogram equalisation in graph, per image, on luminance (Athanasiadis 2022 §3.5.3).

    The grey level ``round(luma)`` of each pixel is mapped through the image's normalised CDF,
    shifted so the darkest level present maps to 0 (the same mapping as
    :func:`fer_tf.preprocessing.faces.equalize`); with ``keep_range`` the result is mapped back
    onto the image's own ``[min, max]`` (Eq. 3.4), else onto ``[0, 255]``. Colour images are
    scaled per pixel by ``new_luma / old_luma`` (chroma ratios kept); grey-as-RGB images stay grey
    and match ``faces.equalize`` exactly up to float rounding.

    Args:
        images: ``[H, W, 3]`` or ``[B, H, W, 3]``, values in ``[0, 255]`` (any real dtype).
        keep_range: see above.

    Returns:
        ``float32`` images of the same shape in ``[0, 255]``.
    """
    x = tf.cast(images, tf.float32)
    single = x.shape.rank == 3
    if single:
        x = x[None]

    def one(img: tf.Tensor) -> tf.Tensor:
        luma = tf.tensordot(img, tf.constant(_LUMA, tf.float32), axes=[[2], [0]])
        level = tf.cast(tf.clip_by_value(tf.round(luma), 0.0, 255.0), tf.int32)
        hist = tf.math.bincount(tf.reshape(level, [-1]), minlength=256, maxlength=256)
        cdf = tf.cast(tf.cumsum(hist), tf.float32) / tf.cast(tf.size(level), tf.float32)
        lo = tf.reduce_min(level)
        hi = tf.reduce_max(level)
        cdf_lo = tf.gather(cdf, lo)
        y = (cdf - cdf_lo) / tf.maximum(1.0 - cdf_lo, 1e-12)
        if keep_range:
            out_lo, out_hi = tf.cast(lo, tf.float32), tf.cast(hi, tf.float32)
        else:
            out_lo, out_hi = tf.constant(0.0), tf.constant(255.0)
        lut = tf.clip_by_value(tf.round(y * (out_hi - out_lo) + out_lo), 0.0, 255.0)
        new = tf.gather(lut, level)
        new = tf.where(hi > lo, new, tf.cast(level, tf.float32))  # flat image: unchanged
        ratio = tf.math.divide_no_nan(new, tf.cast(level, tf.float32))
        is_grey = tf.reduce_all(
            tf.logical_and(tf.equal(img[..., 0], img[..., 1]), tf.equal(img[..., 0], img[..., 2]))
        )
        grey_out = tf.repeat(new[..., None], 3, axis=-1)
        colour_out = tf.clip_by_value(img * ratio[..., None], 0.0, 255.0)
        colour_out = tf.where(
            tf.equal(level, 0)[..., None], tf.repeat(new[..., None], 3, axis=-1), colour_out
        )
        return tf.where(is_grey, grey_out, colour_out)

    out = tf.map_fn(one, x, fn_output_signature=tf.float32)
    return out[0] if single else out


def normalize(images: tf.Tensor, family: str) -> tf.Tensor:
    """Map ``[0, 255]`` images to a model's preprocessing family.

    Thin wrapper over :func:`fer_tf.preprocessing.normalization.normalize` (where the families
    are defined: ``inception``, ``vgg``, ``imagenet``, ``facenet``, ``unit``).

    Args:
        images: real tensor in ``[0, 255]``.
        family: the family name.

    Returns:
        ``float32`` tensor.

    Raises:
        ValueError: for an unknown family.
    """
    return normalization.normalize(tf.cast(images, tf.float32), family)
