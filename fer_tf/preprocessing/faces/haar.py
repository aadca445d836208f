"""Viola–Jones face crops, histogram equalisation and grey → RGB (Athanasiadis 2022 §3.5), NumPy/OpenCV only.

Used when building records (``fer-tf-build-records --face-crop haar --equalize``), so this module
never imports TensorFlow: it runs inside process pools. Images are NumPy ``uint8`` arrays, RGB
``(H, W, 3)`` or grey ``(H, W)`` / ``(H, W, 1)``.

Athanasiadis 2022's chain is: detect the face (Viola–Jones), crop it, equalise the histogram, scale/resize,
and copy the grey channel into three to make "false RGB" for an ImageNet network.
:func:`preprocess_face` runs that chain; the steps are also exposed one by one.

Histogram equalisation follows Athanasiadis 2022 §3.5.3: the grey-level CDF is the mapping, and the result is
mapped back onto the input's own span (``y' = y (max - min) + min``, Eq. 3.4) unless
``keep_range=False`` (then the full 0..255 range, as ``cv2.equalizeHist``). Athanasiadis 2022 works on grey
frames; for colour images :func:`equalize` equalises the luminance (Y of YCrCb) and keeps the
chroma, so colours do not shift.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

__all__ = [
    "DEFAULT_CASCADE",
    "FALLBACKS",
    "detect_faces",
    "detect_largest_face",
    "crop_face",
    "equalize",
    "gray_to_rgb",
    "rgb_to_gray",
    "preprocess_face",
    "margin_box",
]

DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
FALLBACKS = ("keep", "drop")

Box = tuple[int, int, int, int]

_local = threading.local()


def _cascade(name: str) -> Any:
    """One ``cv2.CascadeClassifier`` per thread and cascade file (loaded on first use)."""
    cache = getattr(_local, "cascades", None)
    if cache is None:
        cache = _local.cascades = {}
    if name not in cache:
        path = name if ("/" in name or "\\" in name) else cv2.data.haarcascades + name
        clf = cv2.CascadeClassifier(path)
        if clf.empty():
            raise ValueError(
                f"The 'cascade' parameter must name an OpenCV Haar cascade file (a file in "
                f"cv2.data.haarcascades such as {DEFAULT_CASCADE!r}, or a path). Could not load "
                f"{name!r} (looked at {path!r})."
            )
        cache[name] = clf
    return cache[name]


def _check_image(image: Any, name: str = "image") -> np.ndarray:
    """Validate a uint8 grey or RGB image; return it as an ndarray (no copy)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"The '{name}' parameter must be a NumPy uint8 array (H, W), (H, W, 1) or (H, W, 3). "
            f"Got {type(image).__name__} instead."
        )
    ok_shape = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))
    if not ok_shape or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(
            f"The '{name}' parameter must have shape (H, W), (H, W, 1) or (H, W, 3). "
            f"Got shape {image.shape} instead."
        )
    if image.dtype != np.uint8:
        raise ValueError(
            f"The '{name}' parameter must have dtype uint8 (0..255). Got {image.dtype} instead; "
            f"convert with np.clip(x, 0, 255).astype(np.uint8)."
        )
    return image


def rgb_to_gray(image: np.ndarray) -> np.ndarray:
    """Convert an RGB (or already grey) uint8 image to a 2-D grey image.

    Args:
        image: uint8 ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` (RGB order).

    Returns:
        uint8 ``(H, W)``.

    Raises:
        TypeError, ValueError: for a non-array, a bad shape or a non-uint8 dtype.
    """
    image = _check_image(image)
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def gray_to_rgb(image: np.ndarray) -> np.ndarray:
    """Make a "false RGB" image by copying the grey channel into three (Athanasiadis 2022 §3.5.5).

    Args:
        image: uint8 ``(H, W)`` or ``(H, W, 1)``; an ``(H, W, 3)`` image is returned unchanged.

    Returns:
        uint8 ``(H, W, 3)``.

    Raises:
        TypeError, ValueError: for a non-array, a bad shape or a non-uint8 dtype.
    """
    image = _check_image(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    grey = image if image.ndim == 2 else image[:, :, 0]
    return np.repeat(grey[:, :, None], 3, axis=2)


def _check_detect_args(scale_factor: float, min_neighbors: int, min_size: Sequence[int]) -> None:
    if not isinstance(scale_factor, (int, float)) or not scale_factor > 1.0:
        raise ValueError(
            f"The 'scale_factor' parameter must be a number > 1 (e.g. 1.1). Got {scale_factor!r}."
        )
    if isinstance(min_neighbors, bool) or not isinstance(min_neighbors, int) or min_neighbors < 0:
        raise ValueError(
            f"The 'min_neighbors' parameter must be an integer >= 0. Got {min_neighbors!r}."
        )
    if len(tuple(min_size)) != 2 or not all(
        isinstance(v, (int, np.integer)) and v >= 1 for v in min_size
    ):
        raise ValueError(
            f"The 'min_size' parameter must be a (width, height) pair of positive integers. "
            f"Got {min_size!r}."
        )


def detect_faces(
    image_rgb: np.ndarray,
    *,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    min_size: Sequence[int] = (30, 30),
    cascade: str = DEFAULT_CASCADE,
) -> list[Box]:
    """Detect frontal faces with OpenCV's Viola–Jones Haar cascade.

    Args:
        image_rgb: uint8 RGB ``(H, W, 3)`` or grey ``(H, W)`` / ``(H, W, 1)`` image.
        scale_factor: image-pyramid step of ``detectMultiScale`` (> 1).
        min_neighbors: overlapping detections needed to keep a face (higher: fewer false faces).
        min_size: smallest face, ``(width, height)`` in pixels.
        cascade: a file name in ``cv2.data.haarcascades`` or a path to a cascade XML.

    Returns:
        Boxes ``(x, y, w, h)`` in pixels, largest area first (empty when no face is found).

    Raises:
        TypeError, ValueError: for a bad image or parameter, or a cascade that cannot be loaded.
    """
    grey = rgb_to_gray(image_rgb)
    _check_detect_args(scale_factor, min_neighbors, min_size)
    found = _cascade(cascade).detectMultiScale(
        grey,
        scaleFactor=float(scale_factor),
        minNeighbors=int(min_neighbors),
        minSize=(int(min_size[0]), int(min_size[1])),
    )
    boxes = [tuple(int(v) for v in b) for b in np.asarray(found).reshape(-1, 4)]
    # Largest first; ties broken by position so the order is deterministic.
    boxes.sort(key=lambda b: (-b[2] * b[3], b[1], b[0]))
    return boxes  # type: ignore[return-value]


def detect_largest_face(
    image_rgb: np.ndarray,
    *,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    min_size: Sequence[int] = (30, 30),
    cascade: str = DEFAULT_CASCADE,
) -> Box | None:
    """The largest face found by :func:`detect_faces`, or ``None``.

    Args:
        image_rgb: uint8 RGB or grey image.
        scale_factor, min_neighbors, min_size, cascade: as in :func:`detect_faces`.

    Returns:
        ``(x, y, w, h)`` or ``None`` when no face is found.

    Raises:
        TypeError, ValueError: as :func:`detect_faces`.
    """
    boxes = detect_faces(
        image_rgb,
        scale_factor=scale_factor,
        min_neighbors=min_neighbors,
        min_size=min_size,
        cascade=cascade,
    )
    return boxes[0] if boxes else None


def _resize(image: np.ndarray, size: int | Sequence[int] | None) -> np.ndarray:
    if size is None:
        return image
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    elif (
        not isinstance(size, (str, bytes))
        and len(tuple(size)) == 2
        and all(isinstance(v, (int, np.integer)) for v in size)
    ):
        h, w = (int(v) for v in size)
    else:
        raise ValueError(
            f"The 'size' parameter must be None, an int or a (height, width) pair. Got {size!r}."
        )
    if h < 1 or w < 1:
        raise ValueError(f"The 'size' parameter must be positive. Got {size!r}.")
    if image.shape[:2] == (h, w):
        return image
    shrinking = h * w < image.shape[0] * image.shape[1]
    out = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if image.ndim == 3 and out.ndim == 2:  # cv2 drops a trailing 1-channel axis
        out = out[:, :, None]
    return out


def margin_box(box: Box, margin: float, height: int, width: int) -> tuple[int, int, int, int]:
    """Grow ``box`` by ``margin`` × its size on every side, clip to the image: ``(x0, y0, x1, y1)``."""
    x, y, w, h = box
    dx, dy = margin * w, margin * h
    x0 = max(0, int(round(x - dx)))
    y0 = max(0, int(round(y - dy)))
    x1 = min(width, int(round(x + w + dx)))
    y1 = min(height, int(round(y + h + dy)))
    return x0, y0, x1, y1


def crop_face(
    image_rgb: np.ndarray,
    *,
    margin: float = 0.2,
    fallback: str = "keep",
    size: int | Sequence[int] | None = None,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    min_size: Sequence[int] = (30, 30),
    cascade: str = DEFAULT_CASCADE,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Crop the largest Viola–Jones face, with a margin; report what happened.

    Args:
        image_rgb: uint8 RGB or grey image.
        margin: fraction of the face box added on each side (0.2 on a 100-px box: 20 px each
            side), clipped at the image border.
        fallback: when no face is found, ``"keep"`` returns the whole image (resized to ``size``
            if given), ``"drop"`` returns ``None``.
        size: output size, an int (square) or ``(height, width)``; ``None`` keeps the crop size.
        scale_factor, min_neighbors, min_size, cascade: as in :func:`detect_faces`.

    Returns:
        ``(image or None, info)``. ``info`` has ``face_found`` (bool), ``num_faces`` (int),
        ``box`` (``(x, y, w, h)`` of the detected face or ``None``), ``crop_box``
        (``(x0, y0, x1, y1)`` actually cut from the input, ``None`` when dropped) and
        ``fallback`` (``None`` when a face was found, else the fallback applied).

    Raises:
        TypeError, ValueError: for a bad image, margin, fallback, size or detector parameter.
    """
    image = _check_image(image_rgb, "image_rgb")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise ValueError(f"The 'margin' parameter must be a number >= 0. Got {margin!r} instead.")
    if fallback not in FALLBACKS:
        raise ValueError(
            f"The 'fallback' parameter must be one of {FALLBACKS}. Got {fallback!r} instead."
        )
    _resize(image[:1, :1], size)  # validate size before detecting
    boxes = detect_faces(
        image,
        scale_factor=scale_factor,
        min_neighbors=min_neighbors,
        min_size=min_size,
        cascade=cascade,
    )
    height, width = image.shape[:2]
    info: dict[str, Any] = {
        "face_found": bool(boxes),
        "num_faces": len(boxes),
        "box": boxes[0] if boxes else None,
        "crop_box": None,
        "fallback": None,
    }
    if not boxes:
        info["fallback"] = fallback
        if fallback == "drop":
            return None, info
        info["crop_box"] = (0, 0, width, height)
        return _resize(image, size), info
    x0, y0, x1, y1 = margin_box(boxes[0], float(margin), height, width)
    info["crop_box"] = (x0, y0, x1, y1)
    return _resize(np.ascontiguousarray(image[y0:y1, x0:x1]), size), info


def _equalize_channel(grey: np.ndarray, keep_range: bool) -> np.ndarray:
    """Histogram-equalise one uint8 channel (Athanasiadis 2022 §3.5.3, Eqs. 3.1–3.4)."""
    hist = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    cdf = np.cumsum(hist) / grey.size  # Eq. 3.2: accumulated normalised histogram
    lo, hi = int(grey.min()), int(grey.max())
    if lo == hi:  # a flat image has nothing to spread
        return grey.copy()
    # Shift so that the darkest present level maps to 0 and the brightest to 1 (T maps to [0, 1]).
    y = (cdf - cdf[lo]) / (1.0 - cdf[lo])
    out_lo, out_hi = (lo, hi) if keep_range else (0, 255)
    lut = np.clip(np.round(y * (out_hi - out_lo) + out_lo), 0, 255).astype(np.uint8)  # Eq. 3.4
    return lut[grey]


def equalize(image_rgb: np.ndarray, *, keep_range: bool = True) -> np.ndarray:
    """Histogram equalisation (Athanasiadis 2022 §3.5.3).

    Grey images (and RGB images whose three channels are equal) are equalised directly; colour
    images are equalised on luminance (Y of YCrCb) with the chroma kept.

    Args:
        image_rgb: uint8 RGB ``(H, W, 3)`` or grey ``(H, W)`` / ``(H, W, 1)``.
        keep_range: map the result back onto the input's own ``[min, max]`` (Athanasiadis 2022 Eq. 3.4);
            ``False`` stretches to the full 0..255 range (what ``cv2.equalizeHist`` does).

    Returns:
        A uint8 image of the same shape.

    Raises:
        TypeError, ValueError: for a non-array, a bad shape or a non-uint8 dtype.
    """
    image = _check_image(image_rgb, "image_rgb")
    if image.ndim == 2:
        return _equalize_channel(image, keep_range)
    if image.shape[2] == 1:
        return _equalize_channel(image[:, :, 0], keep_range)[:, :, None]
    if np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(
        image[:, :, 0], image[:, :, 2]
    ):
        return gray_to_rgb(_equalize_channel(image[:, :, 0], keep_range))
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    ycrcb[:, :, 0] = _equalize_channel(ycrcb[:, :, 0], keep_range)
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB)


def preprocess_face(
    image_rgb: np.ndarray,
    *,
    face_crop: bool = True,
    equalize_hist: bool = False,
    grayscale: bool = False,
    size: int | Sequence[int] | None = None,
    margin: float = 0.2,
    fallback: str = "keep",
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    min_size: Sequence[int] = (30, 30),
    cascade: str = DEFAULT_CASCADE,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Athanasiadis 2022's chain: face crop → (grey) → histogram equalisation → false RGB → resize.

    Args:
        image_rgb: uint8 RGB or grey image.
        face_crop: crop the largest Viola–Jones face (see :func:`crop_face`).
        equalize_hist: apply :func:`equalize` (``keep_range=True``) after cropping.
        grayscale: convert to grey first (Athanasiadis 2022 works on grey frames); the output is always
            3-channel RGB (grey copied into three channels).
        size: output size, an int or ``(height, width)``; ``None`` keeps the crop size.
        margin, fallback, scale_factor, min_neighbors, min_size, cascade: see :func:`crop_face`.

    Returns:
        ``(uint8 (H, W, 3) image or None, info)``; ``None`` only when no face was found and
        ``fallback="drop"``. ``info`` is :func:`crop_face`'s (``face_found`` is ``None`` when
        ``face_crop`` is False).

    Raises:
        TypeError, ValueError: for a bad image or parameter.
    """
    image = _check_image(image_rgb, "image_rgb")
    if face_crop:
        out, info = crop_face(
            image,
            margin=margin,
            fallback=fallback,
            scale_factor=scale_factor,
            min_neighbors=min_neighbors,
            min_size=min_size,
            cascade=cascade,
        )
        if out is None:
            return None, info
    else:
        out = image
        h, w = image.shape[:2]
        info = {
            "face_found": None,
            "num_faces": None,
            "box": None,
            "crop_box": (0, 0, w, h),
            "fallback": None,
        }
    if grayscale:
        out = rgb_to_gray(out)
    if equalize_hist:
        out = equalize(out)
    return gray_to_rgb(_resize(out, size)), info
