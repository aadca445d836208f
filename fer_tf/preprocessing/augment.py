"""In-graph augmentation policies, vectorised over the batch, with stateless seeds.

Christensen 2018 (§4.3.2) augmented NVIE faces with imgaug: rotation, scaling, translation, Gaussian blur,
horizontal flip, crop, contrast change, Gaussian noise and colour change, each switched on at random
per image, with the face kept intact and inside the frame. imgaug cannot run in ``tf.data`` graphs
or on NumPy 2, so the ``christensen2018`` policy reimplements that list with TensorFlow ops:

* the geometric ops (rotation, scaling, translation, flip, crop) are composed into **one**
  projective transform per image and applied to the whole batch with a single
  ``tf.raw_ops.ImageProjectiveTransformV3`` call (one resampling, no intermediate images);
* Gaussian blur uses a per-image separable kernel, run as one depthwise convolution over the
  images that drew it;
* contrast, colour (per-channel gain, saturation, brightness) and Gaussian noise are element-wise
  ops broadcast over the batch.

Every op has a probability ``*_p`` and a range (:class:`AugmentPolicy`). Randomness is stateless:
``policy(images, seed)`` with the same ``seed`` (int tensor ``[2]``) gives the same result eagerly
and inside ``tf.data.Dataset.map``. The default ranges keep a face-cropped face (face box ≈ the
central 70% of the image, as :func:`fer_tf.preprocessing.faces.crop_face` with margin 0.2 gives)
inside the frame.

Policies: ``christensen2018`` (the list above), ``light`` (flip, small shifts and zooms, mild
contrast/brightness), ``none`` (identity) and ``randaugment`` (Keras 3 ``RandAugment``; stateful
Keras seeding, so it is reproducible for a seeded pipeline iterated from the start, but not
stateless). Images go in and come out as ``float32`` ``[B, H, W, C]`` in ``[0, 255]``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from fer_tf.checks import check_choice
from fer_tf.preprocessing import native as native_ops
from fer_tf.preprocessing.names import AUGMENT_ALIASES, AUGMENT_POLICIES

__all__ = [
    "POLICIES",
    "AugmentPolicy",
    "RandAugmentPolicy",
    "IdentityPolicy",
    "get_policy",
    "geometric_transforms",
    "apply_transforms",
    "gaussian_blur",
    "gaussian_taps",
    "standard_normal",
    "warp_to_size",
]

POLICIES = AUGMENT_POLICIES
FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")


def _native_module() -> Any | None:
    # Not converted by AutoGraph: the loader is plain Python (files, a compiler), run once.
    return tf.autograph.experimental.do_not_convert(native_ops.image_ops)()


def _uniform(seed: tf.Tensor, shape: Any, lo: float, hi: float) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed, minval=lo, maxval=hi, dtype=tf.float32)


def _gate(seed: tf.Tensor, batch: tf.Tensor, p: float) -> tf.Tensor:
    """Per-image Bernoulli(p) draw, bool ``[B]``."""
    return tf.random.stateless_uniform([batch], seed, dtype=tf.float32) < p


@dataclass(frozen=True)
class AugmentPolicy:
    """An augmentation policy: each op has a probability (``*_p``) and a range.

    Attributes:
        name: policy name (for logs and configs).
        rotation_p, rotation: probability; maximum angle in degrees (uniform in ±rotation).
        scale_p, scale: probability; zoom factor range (> 1 zooms in).
        translate_p, translate: probability; maximum shift as a fraction of width/height.
        flip_p: probability of a horizontal flip.
        crop_p, crop: probability; maximum fraction cut from each side (then resized back, as
            imgaug's ``Crop(percent=...)``).
        blur_p, blur_sigma: probability; Gaussian sigma range in pixels.
        contrast_p, contrast: probability; contrast factor range (around the per-channel mean).
        noise_p, noise_std: probability; range of the additive Gaussian noise std (0..255 scale).
        noise_per_channel: independent noise per channel (imgaug's default, used here: one
            value per pixel, added to all channels).
        color_p, color_gain, saturation, brightness: probability; per-channel gain range,
            saturation factor range, added brightness range (0..255 scale).
        fill_mode: ``"reflect"``, ``"wrap"``, ``"constant"`` or ``"nearest"`` for pixels
            mapped from outside the image.
        fill_value: value for ``fill_mode="constant"``.
        interpolation: ``"bilinear"`` or ``"nearest"``.
    """

    name: str = "custom"
    rotation_p: float = 0.0
    rotation: float = 0.0
    scale_p: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    translate_p: float = 0.0
    translate: float = 0.0
    flip_p: float = 0.0
    crop_p: float = 0.0
    crop: float = 0.0
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.0, 0.0)
    contrast_p: float = 0.0
    contrast: tuple[float, float] = (1.0, 1.0)
    noise_p: float = 0.0
    noise_std: tuple[float, float] = (0.0, 0.0)
    noise_per_channel: bool = False
    color_p: float = 0.0
    color_gain: tuple[float, float] = (1.0, 1.0)
    saturation: tuple[float, float] = (1.0, 1.0)
    brightness: tuple[float, float] = (0.0, 0.0)
    fill_mode: str = "reflect"
    fill_value: float = 0.0
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_p") and not (
                isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
            ):
                raise ValueError(
                    f"The '{f.name}' parameter of AugmentPolicy must be a probability in [0, 1]. "
                    f"Got {value!r} instead."
                )
            if f.type in ("tuple[float, float]",) and not (
                isinstance(value, (tuple, list)) and len(value) == 2 and value[0] <= value[1]
            ):
                raise ValueError(
                    f"The '{f.name}' parameter of AugmentPolicy must be a (low, high) pair with "
                    f"low <= high. Got {value!r} instead."
                )
        if self.scale[0] <= 0:
            raise ValueError(f"The 'scale' range must be positive. Got {self.scale!r} instead.")
        if not 0 <= self.crop < 0.5:
            raise ValueError(f"The 'crop' parameter must be in [0, 0.5). Got {self.crop!r}.")
        if self.blur_sigma[0] < 0 or self.noise_std[0] < 0:
            raise ValueError("The 'blur_sigma' and 'noise_std' ranges must be >= 0.")
        check_choice("fill_mode", self.fill_mode, FILL_MODES)
        check_choice("interpolation", self.interpolation, INTERPOLATIONS)

    @property
    def has_geometry(self) -> bool:
        """True when any geometric op can fire."""
        return any(
            p > 0
            for p in (self.rotation_p, self.scale_p, self.translate_p, self.flip_p, self.crop_p)
        )

    def replace(self, **changes: Any) -> AugmentPolicy:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def has_photometry(self) -> bool:
        """True when any photometric op (blur, contrast, colour, noise) can fire."""
        return any(p > 0 for p in (self.blur_p, self.contrast_p, self.color_p, self.noise_p))

    def __call__(self, images: tf.Tensor, seed: Any) -> tf.Tensor:
        """Augment a batch: one fused geometric warp, then the photometric ops.

        Args:
            images: ``[B, H, W, C]`` (or one ``[H, W, C]`` image), values in ``[0, 255]``.
            seed: stateless seed, int tensor ``[2]``.

        Returns:
            ``float32`` images of the same shape, in ``[0, 255]``.
        """
        x = tf.cast(images, tf.float32)
        single = x.shape.rank == 3
        if single:
            x = x[None]
        geo_seed, photo_seed = tf.unstack(
            tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        )
        if self.has_geometry:
            shape = tf.shape(x)
            transforms = geometric_transforms(self, shape[0], shape[1], shape[2], geo_seed)
            x = apply_transforms(
                x,
                transforms,
                fill_mode=self.fill_mode,
                fill_value=self.fill_value,
                interpolation=self.interpolation,
            )
        x = self.photometric(x, photo_seed)
        return x[0] if single else x

    def photometric(self, images: tf.Tensor, seed: Any, *, native: bool = False) -> tf.Tensor:
        """The non-geometric part: blur, noise, then contrast + colour (fused); clipped.

        Contrast (around each channel's mean), per-channel gain, saturation and brightness are
        all affine in the pixel values, so they are composed into one per-image 3×3 colour
        matrix and offset and applied in one pass. Blur and noise run only on the images that
        drew them. (imgaug applied Christensen 2018's list in random order; the order here is fixed.)
        A batch of one (static shape) takes a per-image fast path with the same random draws.

        Args:
            images: ``float32 [B, H, W, C]`` in ``[0, 255]``.
            seed: stateless seed ``[2]``.
            native: for a batch of one, blur, and apply the colour matrix and the clip in one
                pass, with fer_tf's native kernels (:mod:`fer_tf.preprocessing.native`) when
                they are available (the same values up to float rounding).

        Returns:
            ``float32`` images in ``[0, 255]``.
        """
        x = tf.cast(images, tf.float32)
        s = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
        batch = tf.shape(x)[0]
        if self.blur_p > 0 and self.blur_sigma[1] > 0:
            x = self._blur(x, batch, s[0], native)
        if self.noise_p > 0 and self.noise_std[1] > 0:
            x = self._noise(x, batch, s[2])
        if self.contrast_p > 0 or self.color_p > 0:
            op = _native_module() if native and x.shape[0] == 1 else None
            if op is not None:
                m, o, _ = self._colour_params(x, batch, s[1])
                return op.fer_colour_clip(images=x, matrix=m, offset=o, lo=0.0, hi=255.0)
            x = self._colour_matrix(x, batch, s[1])
        return tf.clip_by_value(x, 0.0, 255.0)

    def augment_example(
        self,
        image: tf.Tensor,
        image_size: Any,
        seed: Any,
        *,
        flip: bool = False,
        native: bool = True,
    ) -> tf.Tensor:
        """Per-example fast path: resize + flip + geometry in one warp, then photometry.

        Used by ``make_dataset`` in training: a decoded crop window of any size goes to
        ``image_size`` with a single resampling (:func:`warp_to_size`), then through
        :meth:`photometric` as a batch of one, while the image is still in cache.

        Args:
            image: ``[h, w, C]``, values in ``[0, 255]``.
            image_size: output size, int or ``(height, width)``.
            seed: stateless seed ``[2]``.
            flip: also flip left-right with probability 0.5.
            native: use fer_tf's native kernels where available (:mod:`fer_tf.preprocessing.
                native`): the warp bit-identical to the stock kernel, the colour pass equal up
                to float rounding. ``False``: TensorFlow's stock kernels only.

        Returns:
            ``float32 [height, width, C]`` in ``[0, 255]``.
        """
        warp_seed, photo_seed = tf.unstack(
            tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        )
        x = warp_to_size(image, image_size, self, warp_seed, flip=flip, native=native)
        return self.photometric(x[None], photo_seed, native=native)[0]

    def _blur(
        self, x: tf.Tensor, batch: tf.Tensor, seed: tf.Tensor, native: bool = False
    ) -> tf.Tensor:
        g, v = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        on = _gate(g, batch, self.blur_p)
        sigma = _uniform(v, [batch], *self.blur_sigma)
        if x.shape[0] == 1:
            op = _native_module() if native else None
            max_sigma = self.blur_sigma[1]

            def blur() -> tf.Tensor:
                if op is not None:
                    return op.fer_gaussian_blur(images=x, taps=gaussian_taps(sigma, max_sigma))
                return gaussian_blur(x, sigma, max_sigma=max_sigma)

            return tf.cond(on[0], blur, lambda: x)
        idx = tf.where(on)[:, 0]
        blurred = gaussian_blur(
            tf.gather(x, idx), tf.gather(sigma, idx), max_sigma=self.blur_sigma[1]
        )
        return tf.tensor_scatter_nd_update(x, idx[:, None], blurred)

    def _noise(self, x: tf.Tensor, batch: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        g, v, n = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        on = _gate(g, batch, self.noise_p)
        std = _uniform(v, [batch], *self.noise_std)

        def noisy(sub: tf.Tensor, sub_std: tf.Tensor) -> tf.Tensor:
            shape = tf.shape(sub)
            if not self.noise_per_channel:  # imgaug's default: one value per pixel
                shape = tf.concat([shape[:-1], [1]], axis=0)
            return sub + standard_normal(shape, n) * sub_std[:, None, None, None]

        if x.shape[0] == 1:
            return tf.cond(on[0], lambda: noisy(x, std), lambda: x)
        idx = tf.where(on)[:, 0]
        sub = noisy(tf.gather(x, idx), tf.gather(std, idx))
        return tf.tensor_scatter_nd_update(x, idx[:, None], sub)

    def _colour_params(
        self, x: tf.Tensor, batch: tf.Tensor, seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Each image's colour matrix ``[B, C, C]`` and offset ``[B, C]`` (row-vector convention,
        ``y = x M + o``) and whether contrast or colour fired ``[B]``."""
        s = tf.random.experimental.stateless_split(seed, 6)
        channels = x.shape[-1]
        if channels is None:
            raise ValueError("The images passed to an AugmentPolicy need a static channel count.")
        # Contrast: y = f x + (1 - f) m, m the per-image, per-channel mean.
        contrast_on = _gate(s[0], batch, self.contrast_p)
        f = tf.where(contrast_on, _uniform(s[1], [batch], *self.contrast), 1.0)
        on = _gate(s[2], batch, self.color_p)
        gain = tf.where(on[:, None], _uniform(s[3], [batch, channels], *self.color_gain), 1.0)
        sat = tf.where(on, _uniform(s[4], [batch], *self.saturation), 1.0)
        bright = tf.where(on, _uniform(s[5], [batch], *self.brightness), 0.0)
        if x.shape[0] == 1:
            # The mean only matters when contrast fired ((1 - f) = 0 otherwise): skip the pass.
            mean = tf.cond(
                contrast_on[0],
                lambda: tf.reduce_mean(x, axis=[1, 2]),
                lambda: tf.zeros([1, channels], x.dtype),
            )
        else:
            mean = tf.reduce_mean(x, axis=[1, 2])  # [B, C]
        eye = tf.eye(channels, batch_shape=[batch])
        m = f[:, None, None] * eye * gain[:, None, :]  # contrast then gain
        o = (1.0 - f[:, None]) * mean * gain  # [B, C]
        if channels == 3:
            sat_m = _saturation_matrix(sat)
            m = tf.linalg.matmul(m, sat_m)
            o = tf.linalg.matvec(sat_m, o, transpose_a=True)
        return m, o + bright[:, None], tf.logical_or(contrast_on, on)

    def _colour_matrix(self, x: tf.Tensor, batch: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        m, o, fired = self._colour_params(x, batch, seed)
        if x.shape[0] == 1:
            # One image: a 1x1 convolution is much faster than a batched matmul, and an image
            # that drew neither contrast nor colour (identity matrix, zero offset) is left as is.
            return tf.cond(
                fired[0], lambda: tf.nn.conv2d(x, m[0][None, None], 1, "VALID") + o[0], lambda: x
            )
        shape = tf.shape(x)
        channels = x.shape[-1]
        y = tf.linalg.matmul(tf.reshape(x, [batch, -1, channels]), m) + o[:, None, :]
        return tf.reshape(y, shape)


_LUMA = (0.299, 0.587, 0.114)


def _saturation_matrix(sat: tf.Tensor) -> tf.Tensor:
    """``[B, 3, 3]`` row-vector matrices of ``z = sat * y + (1 - sat) * (y . luma) 1^T``."""
    w = tf.constant(_LUMA, tf.float32)
    eye = tf.eye(3, batch_shape=tf.shape(sat)[:1])
    return sat[:, None, None] * eye + (1.0 - sat)[:, None, None] * (
        w[None, :, None] * tf.ones([1, 1, 3])
    )


def geometric_transforms(
    policy: AugmentPolicy,
    batch: Any,
    height: Any,
    width: Any,
    seed: Any,
) -> tf.Tensor:
    """Per-image projective transforms fusing crop, flip, rotation, scaling and translation.

    The forward warp is ``affine ∘ flip ∘ crop`` (crop-and-resize-back first, then the flip, then
    rotation/scale about the centre and translation). The returned matrices map *output* pixel
    coordinates to *input* ones, as ``ImageProjectiveTransformV3`` expects.

    Args:
        policy: supplies the probabilities and ranges.
        batch, height, width: batch size and image size (ints or scalar tensors).
        seed: stateless seed ``[2]``.

    Returns:
        ``float32 [B, 8]``: the first 8 entries of each row-major 3×3 matrix (last entry 1).
    """
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    s = tf.random.experimental.stateless_split(seed, 10)
    batch = tf.cast(batch, tf.int32)
    h = tf.cast(height, tf.float32)
    w = tf.cast(width, tf.float32)
    p = policy

    theta = tf.where(
        _gate(s[0], batch, p.rotation_p),
        _uniform(s[1], [batch], -p.rotation, p.rotation) * (math.pi / 180.0),
        0.0,
    )
    zoom = tf.where(_gate(s[2], batch, p.scale_p), _uniform(s[3], [batch], *p.scale), 1.0)
    shift = tf.where(
        _gate(s[4], batch, p.translate_p)[:, None],
        _uniform(s[5], [batch, 2], -p.translate, p.translate),
        0.0,
    ) * tf.stack([w, h])
    flip = _gate(s[6], batch, p.flip_p)
    cuts = tf.where(
        _gate(s[7], batch, p.crop_p)[:, None], _uniform(s[8], [batch, 4], 0.0, p.crop), 0.0
    ) * tf.stack([w, w, h, h])  # left, right, top, bottom in pixels

    zeros = tf.zeros([batch])
    ones = tf.ones([batch])

    def mat(rows: list[list[tf.Tensor]]) -> tf.Tensor:
        return tf.stack([tf.stack(r, axis=-1) for r in rows], axis=-2)  # [B, 3, 3]

    # Inverse of the affine part: p_in = R(-theta) (p_out - c - t) / zoom + c.
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    a = tf.cos(theta) / zoom
    b = tf.sin(theta) / zoom
    ux, uy = cx + shift[:, 0], cy + shift[:, 1]
    affine_inv = mat(
        [
            [a, b, cx - a * ux - b * uy],
            [-b, a, cy + b * ux - a * uy],
            [zeros, zeros, ones],
        ]
    )
    # Inverse of the flip (its own inverse).
    fx = tf.where(flip, -1.0, 1.0)
    flip_inv = mat(
        [[fx, zeros, tf.where(flip, w - 1.0, 0.0)], [zeros, ones, zeros], [zeros, zeros, ones]]
    )
    # Inverse of crop-and-resize-back, with pixel centres at integer coordinates.
    sx = (w - cuts[:, 0] - cuts[:, 1]) / w
    sy = (h - cuts[:, 2] - cuts[:, 3]) / h
    crop_inv = mat(
        [
            [sx, zeros, 0.5 * sx - 0.5 + cuts[:, 0]],
            [zeros, sy, 0.5 * sy - 0.5 + cuts[:, 2]],
            [zeros, zeros, ones],
        ]
    )
    m = tf.linalg.matmul(crop_inv, tf.linalg.matmul(flip_inv, affine_inv))
    return tf.reshape(m, [batch, 9])[:, :8]


def apply_transforms(
    images: tf.Tensor,
    transforms: tf.Tensor,
    *,
    fill_mode: str = "reflect",
    fill_value: float = 0.0,
    interpolation: str = "bilinear",
) -> tf.Tensor:
    """Warp a batch with per-image projective transforms (one ``ImageProjectiveTransformV3``).

    Args:
        images: ``float32 [B, H, W, C]``.
        transforms: ``[B, 8]`` output→input matrices (see :func:`geometric_transforms`).
        fill_mode: ``"reflect"``, ``"wrap"``, ``"constant"`` or ``"nearest"``.
        fill_value: for ``"constant"``.
        interpolation: ``"bilinear"`` or ``"nearest"``.

    Returns:
        Warped images, same shape and dtype.
    """
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=tf.cast(transforms, tf.float32),
        output_shape=tf.shape(images)[1:3],
        fill_value=tf.cast(fill_value, tf.float32),
        interpolation=interpolation.upper(),
        fill_mode=fill_mode.upper(),
    )


def _resize_flip_inverse(
    h: tf.Tensor, w: tf.Tensor, out_h: int, out_w: int, flip_seed: tf.Tensor | None
) -> tf.Tensor:
    """Output pixel -> input pixel ``[3, 3]`` matrix of a plain resize (pixel centres at integer
    coordinates), then of a left-right flip drawn from ``flip_seed`` (``None``: no flip)."""
    sx, sy = w / out_w, h / out_h
    m = tf.reshape(
        tf.stack([sx, 0.0, 0.5 * sx - 0.5, 0.0, sy, 0.5 * sy - 0.5, 0.0, 0.0, 1.0]), [3, 3]
    )
    if flip_seed is None:
        return m
    flipped = tf.random.stateless_uniform([], flip_seed) < 0.5
    f = tf.where(flipped, -1.0, 1.0)
    flip_inv = tf.reshape(
        tf.stack([f, 0.0, tf.where(flipped, out_w - 1.0, 0.0), 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
        [3, 3],
    )
    return tf.linalg.matmul(m, flip_inv)


def warp_to_size(
    image: tf.Tensor,
    image_size: Any,
    policy: AugmentPolicy | None,
    seed: Any,
    *,
    flip: bool = False,
    fast: bool = True,
    native: bool = True,
) -> tf.Tensor:
    """Resize one image *and* apply a policy's geometry (and a random flip) in one resampling.

    The input-pipeline fast path for training: the decoded crop window, of any size, is mapped
    straight to ``image_size`` through ``resize ∘ flip ∘ policy geometry`` as a single projective
    transform, so there is no separate resize pass and no second interpolation.

    Args:
        image: ``[h, w, C]`` image (any real or uint8 dtype), values in ``[0, 255]``.
        image_size: output size, an int or ``(height, width)``.
        policy: supplies the geometric probabilities and ranges (``None``: resize and flip only).
        seed: stateless seed ``[2]``.
        flip: also flip left-right with probability 0.5 (the pipeline's training flip).
        fast: when the fused matrix has no rotation (a scale/shift/flip), sample it with
            ``tf.image.crop_and_resize`` (same bilinear map, several times faster on CPU than
            ``ImageProjectiveTransformV3``) where that gives the same image: when no sample
            falls outside the input, or with ``fill_mode="constant"`` (then identical except
            along the fill boundary, where the projective kernel blends the last input pixel
            with the fill over one input pixel and crop_and_resize does not). ``False`` always
            uses the projective kernel.
        native: use fer_tf's native warp kernel (:mod:`fer_tf.preprocessing.native`) when it
            is available: the projective kernel's exact sampling for every matrix, reading
            ``uint8`` directly, faster than either stock kernel. ``False``, or no kernel
            (no compiler, ``FER_TF_NATIVE_OPS=0``): the stock kernels as ``fast`` says.

    Returns:
        ``float32 [height, width, C]``.
    """
    from fer_tf.preprocessing.image import as_size

    out_h, out_w = as_size(image_size)
    geo_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    )
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    h = tf.cast(shape[0], tf.float32)
    w = tf.cast(shape[1], tf.float32)
    m = _resize_flip_inverse(h, w, out_h, out_w, flip_seed if flip else None)
    fill_mode, fill_value, interpolation = "reflect", 0.0, "bilinear"
    if policy is not None and policy.has_geometry:
        g = geometric_transforms(policy, 1, out_h, out_w, geo_seed)
        g = tf.reshape(tf.concat([g, tf.ones([1, 1])], axis=1), [3, 3])
        m = tf.linalg.matmul(m, g)
        fill_mode, fill_value = policy.fill_mode, policy.fill_value
        interpolation = policy.interpolation

    sample = dict(
        transforms=tf.reshape(m, [1, 9])[:, :8],
        output_shape=[out_h, out_w],  # Python values: the ops convert them, _stock_warp reads them
        fill_value=float(fill_value),
        interpolation=interpolation.upper(),
        fill_mode=fill_mode.upper(),
    )
    native_op = _native_module() if native else None
    if native_op is not None:
        # The native kernel samples exactly like the projective one, reads uint8 directly and
        # is faster than both stock kernels, so it serves every matrix.
        if image.dtype not in (tf.uint8, tf.float32):
            image = tf.cast(image, tf.float32)
        out = native_op.fer_image_warp(images=image[None], **sample)[0]
    else:
        out = _stock_warp(tf.cast(image, tf.float32), m, sample, fast)
    return tf.ensure_shape(out, [out_h, out_w, image.shape[-1]])


def _stock_warp(x: tf.Tensor, m: tf.Tensor, sample: dict[str, Any], fast: bool) -> tf.Tensor:
    """:func:`warp_to_size`'s resampling with TensorFlow's kernels: ``ImageProjectiveTransformV3``,
    or ``crop_and_resize`` for a matrix without rotation where that gives the same image."""
    shape = tf.shape(x)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    out_h, out_w = sample["output_shape"]
    fill_value = sample["fill_value"]

    def projective() -> tf.Tensor:
        return tf.raw_ops.ImageProjectiveTransformV3(images=x[None], **sample)[0]

    def axis_aligned() -> tf.Tensor:
        # The same map for a matrix without rotation: x_in = m00 x + m02, y_in = m11 y + m12,
        # as a crop_and_resize box (corner-aligned sampling); ~5x faster than the projective
        # kernel on CPU. Points outside the image get fill_value (as fill_mode="constant").
        hm1 = tf.maximum(h - 1.0, 1.0)
        wm1 = tf.maximum(w - 1.0, 1.0)
        y1, x1 = m[1, 2] / hm1, m[0, 2] / wm1
        y2 = (m[1, 1] * (out_h - 1) + m[1, 2]) / hm1
        x2 = (m[0, 0] * (out_w - 1) + m[0, 2]) / wm1
        return tf.image.crop_and_resize(
            x[None],
            tf.stack([y1, x1, y2, x2])[None],
            tf.zeros([1], tf.int32),
            [out_h, out_w],
            method=sample["interpolation"].lower(),
            extrapolation_value=fill_value,
        )[0]

    if not fast:
        return projective()
    # Use the fast kernel when it gives the same result: no rotation/shear and either a
    # constant fill or no sample falling outside the image.
    tol = 1e-4
    aligned = tf.logical_and(tf.abs(m[0, 1]) < tol, tf.abs(m[1, 0]) < tol)
    corners_x = tf.stack([m[0, 2], m[0, 0] * (out_w - 1) + m[0, 2]])
    corners_y = tf.stack([m[1, 2], m[1, 1] * (out_h - 1) + m[1, 2]])
    inside = tf.logical_and(
        tf.reduce_all((corners_x > -tol) & (corners_x < w - 1.0 + tol)),
        tf.reduce_all((corners_y > -tol) & (corners_y < h - 1.0 + tol)),
    )
    use_fast = aligned if sample["fill_mode"] == "CONSTANT" else tf.logical_and(aligned, inside)
    return tf.cond(use_fast, axis_aligned, projective)


def standard_normal(shape: Any, seed: Any) -> tf.Tensor:
    """Standard normal ``float32`` samples by the Box-Muller transform of stateless uniforms.

    The same distribution as ``tf.random.stateless_normal`` (TensorFlow's CPU kernel is
    Box-Muller too, on Philox uniforms), computed with vectorised element-wise ops: about 1.8x
    as fast on CPU for an image's worth of noise (299 x 299 values). Values differ from
    ``stateless_normal``'s for the same seed; they are stateless and deterministic in the seed.

    Args:
        shape: output shape (1-D int tensor or list).
        seed: stateless seed ``[2]``.

    Returns:
        ``float32`` tensor of ``shape``.
    """
    shape = tf.cast(shape, tf.int32)
    n = tf.reduce_prod(shape)
    half = (n + 1) // 2
    u = tf.random.stateless_uniform(tf.stack([2, half]), seed, dtype=tf.float32)
    # 1 - u is in (0, 1]: the log is finite.
    radius = tf.sqrt(-2.0 * tf.math.log(1.0 - u[0]))
    angle = (2.0 * math.pi) * u[1]
    z = tf.concat([radius * tf.cos(angle), radius * tf.sin(angle)], axis=0)[:n]
    return tf.reshape(z, shape)


def gaussian_taps(sigma: tf.Tensor, max_sigma: float) -> tf.Tensor:
    """Each image's normalised 1-D Gaussian kernel, radius ``ceil(3 * max_sigma)`` (at least 1).

    Args:
        sigma: ``[B]`` in pixels.
        max_sigma: upper bound of ``sigma``.

    Returns:
        ``float32 [B, 2 * radius + 1]``, each row summing to 1.
    """
    radius = max(1, int(math.ceil(3.0 * max_sigma)))
    offsets = tf.range(-radius, radius + 1, dtype=tf.float32)
    sig = tf.maximum(tf.cast(sigma, tf.float32), 1e-3)[:, None]
    kernel = tf.exp(-0.5 * tf.square(offsets[None, :] / sig))
    kernel = kernel / tf.reduce_sum(kernel, axis=1, keepdims=True)
    return tf.ensure_shape(kernel, [None, 2 * radius + 1])


def gaussian_blur(images: tf.Tensor, sigma: tf.Tensor, *, max_sigma: float) -> tf.Tensor:
    """Blur each image with its own Gaussian sigma (separable, reflect padding).

    All images are blurred together by one depthwise convolution: the batch is folded into the
    channel axis so each (image, channel) pair gets its own kernel.

    Args:
        images: ``float32 [B, H, W, C]``.
        sigma: ``float32 [B]`` in pixels (0 leaves an image unchanged).
        max_sigma: upper bound of ``sigma``; sets the kernel radius ``ceil(3 * max_sigma)``.

    Returns:
        Blurred images, same shape.
    """
    kernel = gaussian_taps(sigma, max_sigma)  # [B, k]
    radius = (kernel.shape[1] - 1) // 2
    shape = tf.shape(images)
    b, h, w = shape[0], shape[1], shape[2]
    c = images.shape[-1]
    kernel = tf.reshape(tf.repeat(kernel, c, axis=0), [-1, 2 * radius + 1])  # [B*C, k]
    kernel = tf.transpose(kernel)  # [k, B*C]
    x = tf.transpose(images, [1, 2, 0, 3])  # [H, W, B, C]
    x = tf.reshape(x, [1, h, w, b * c])
    x = tf.pad(x, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    x = tf.nn.depthwise_conv2d(x, kernel[:, None, :, None], [1, 1, 1, 1], "VALID")
    x = tf.nn.depthwise_conv2d(x, kernel[None, :, :, None], [1, 1, 1, 1], "VALID")
    x = tf.reshape(x, [h, w, b, c])
    return tf.transpose(x, [2, 0, 1, 3])


class IdentityPolicy:
    """The ``none`` policy: returns the images unchanged (as float32)."""

    name = "none"

    def __call__(self, images: tf.Tensor, seed: Any = None) -> tf.Tensor:
        """Return ``images`` as float32.

        Args:
            images: any real tensor.
            seed: ignored.

        Returns:
            ``float32`` tensor.
        """
        return tf.cast(images, tf.float32)


class RandAugmentPolicy:
    """Keras 3 ``RandAugment`` on ``[0, 255]`` batches.

    Keras layers seed themselves with a stateful ``SeedGenerator``, so this policy is
    reproducible for the same ``seed`` when a fresh policy is iterated from the start in order
    (``make_dataset`` applies it sequentially for that reason), but it is not stateless: the
    ``seed`` argument of :meth:`__call__` is ignored.

    Args:
        num_ops: operations applied per image.
        factor: strength in ``[0, 1]``.
        seed: seed of the Keras layer.
    """

    name = "randaugment"

    def __init__(self, num_ops: int = 2, factor: float = 0.5, seed: int | None = None) -> None:
        import keras

        self.layer = keras.layers.RandAugment(
            value_range=(0, 255), num_ops=num_ops, factor=factor, seed=seed
        )

    def __call__(self, images: tf.Tensor, seed: Any = None) -> tf.Tensor:
        """Augment a batch (``seed`` ignored, see the class docstring).

        Args:
            images: ``[B, H, W, 3]`` in ``[0, 255]``.
            seed: ignored.

        Returns:
            ``float32`` images in ``[0, 255]``.
        """
        out = self.layer(tf.cast(images, tf.float32), training=True)
        return tf.clip_by_value(tf.cast(out, tf.float32), 0.0, 255.0)


CHRISTENSEN2018 = AugmentPolicy(
    name="christensen2018",
    rotation_p=0.5,
    rotation=10.0,
    scale_p=0.5,
    scale=(0.95, 1.1),
    translate_p=0.5,
    translate=0.05,
    flip_p=0.5,
    crop_p=0.3,
    crop=0.05,
    blur_p=0.2,
    blur_sigma=(0.0, 1.0),
    contrast_p=0.5,
    contrast=(0.75, 1.25),
    noise_p=0.2,
    noise_std=(0.0, 0.03 * 255.0),
    color_p=0.5,
    color_gain=(0.9, 1.1),
    saturation=(0.7, 1.3),
    brightness=(-20.0, 20.0),
    fill_mode="constant",  # imgaug's Affine default (cval=0): black where the image moved away
)

LIGHT = AugmentPolicy(
    name="light",
    scale_p=0.5,
    scale=(1.0, 1.05),
    translate_p=0.5,
    translate=0.03,
    flip_p=0.5,
    contrast_p=0.3,
    contrast=(0.9, 1.1),
    color_p=0.3,
    brightness=(-10.0, 10.0),
    fill_mode="constant",
)

_PRESETS: dict[str, AugmentPolicy] = {"christensen2018": CHRISTENSEN2018, "light": LIGHT}

Policy = Callable[[tf.Tensor, Any], tf.Tensor]


def get_policy(
    policy: str | AugmentPolicy | None, *, seed: int | None = None, **overrides: Any
) -> Any:
    """Resolve a policy name (or an :class:`AugmentPolicy`) to a callable ``(images, seed)``.

    Args:
        policy: ``"christensen2018"``, ``"light"``, ``"none"`` (or ``None``), ``"randaugment"``, an
            :class:`AugmentPolicy`, or any callable ``(images, seed) -> images``.
        seed: seed for the Keras ``randaugment`` layer (other policies take the seed per call).
        **overrides: fields to change on a preset :class:`AugmentPolicy` (e.g. ``rotation=5``),
            or ``num_ops``/``factor`` for ``randaugment``.

    Returns:
        The policy callable.

    Raises:
        ValueError: for an unknown name or a bad override.
    """
    if policy is None:
        policy = "none"
    if isinstance(policy, AugmentPolicy):
        return policy.replace(**overrides) if overrides else policy
    if isinstance(policy, str):
        key = policy.strip().lower()
        key = AUGMENT_ALIASES.get(key, key)
        if key in _PRESETS:
            unknown = set(overrides) - {f.name for f in dataclasses.fields(AugmentPolicy)}
            if unknown:
                raise ValueError(
                    f"Unknown augmentation parameter(s) {sorted(unknown)} for policy {policy!r}; "
                    f"accepted: {[f.name for f in dataclasses.fields(AugmentPolicy)]}."
                )
            return _PRESETS[key].replace(**overrides) if overrides else _PRESETS[key]
        if key == "none":
            return IdentityPolicy()
        if key == "randaugment":
            unknown = set(overrides) - {"num_ops", "factor"}
            if unknown:
                raise ValueError(
                    f"Unknown augmentation parameter(s) {sorted(unknown)} for 'randaugment'; "
                    f"accepted: ['factor', 'num_ops']."
                )
            return RandAugmentPolicy(seed=seed, **overrides)
    elif callable(policy):
        return policy
    raise ValueError(
        f"The 'augment' parameter must be one of {list(POLICIES)}, an AugmentPolicy or a callable "
        f"(images, seed) -> images. Got {policy!r} instead."
    )
