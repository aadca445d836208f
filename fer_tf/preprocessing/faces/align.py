"""Five-point face alignment (similarity transform to a canonical template) and box crops.

:func:`align_face` maps the five MTCNN landmarks onto the ArcFace/InsightFace 112x112 template
(the same five points FaceNet-style pipelines align to) by the least-squares similarity transform
of Umeyama (1991): rotation, uniform scale and translation, no shear, so the face keeps its shape
and the eyes end on a horizontal line. ``margin`` shrinks the template towards the centre of the
output so that a band of ``margin`` x the face size shows on every side. Without landmarks it falls
back to a square crop of the box, grown by the margin. :func:`crop_box` cuts the box grown by the
margin and clipped to the image, as the record builder's Viola–Jones crop does
(:func:`fer_tf.preprocessing.faces.haar.crop_face`). NumPy/OpenCV only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from fer_tf.checks import check_number

__all__ = ["TEMPLATE_112", "umeyama", "align_face", "crop_box", "alignment_matrix"]

#: ArcFace's five-point template for a 112x112 crop: left eye, right eye, nose, left and right
#: mouth corner (image left first), in pixels ``(x, y)``.
TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares similarity transform taking ``src`` points to ``dst`` (Umeyama 1991).

    Args:
        src: ``(N, 2)`` points.
        dst: ``(N, 2)`` points.

    Returns:
        The ``(2, 3)`` affine matrix ``[s R | t]`` with ``dst ≈ s R src + t``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_s = (s0**2).sum() / len(src)
    scale = float((sig * d).sum() / var_s) if var_s > 0 else 1.0
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    elif not isinstance(size, (str, bytes)) and len(tuple(size)) == 2:
        h, w = (int(v) for v in size)
    else:
        raise ValueError(f"The 'size' parameter must be an int or (height, width). Got {size!r}.")
    if h < 1 or w < 1:
        raise ValueError(f"The 'size' parameter must be positive. Got {size!r}.")
    return h, w


def _template(h: int, w: int, margin: float) -> np.ndarray:
    """The 112 template scaled to ``(h, w)`` with ``margin`` x the face on every side."""
    unit = TEMPLATE_112 / 112.0
    unit = (unit + margin) / (1.0 + 2.0 * margin)
    return unit * np.array([w, h], dtype=np.float64)


def alignment_matrix(face: Any, size: int | Sequence[int], margin: float = 0.0) -> np.ndarray:
    """The ``(2, 3)`` matrix :func:`align_face` warps with (image -> output pixels).

    Args:
        face: a :class:`~fer_tf.preprocessing.faces.Face` (landmarks used when present).
        size: output size, an int or ``(height, width)``.
        margin: band around the face, as a fraction of the face size, on every side.

    Returns:
        ``(2, 3)`` float64 affine matrix.
    """
    h, w = _size(size)
    check_number("margin", margin, min=0.0)
    marks = getattr(face, "landmarks", None)
    if marks is not None:
        return umeyama(np.asarray(marks, dtype=np.float64).reshape(5, 2), _template(h, w, margin))
    # Square crop of the box grown by the margin, centred on the box.
    side = max(face.w, face.h) * (1.0 + 2.0 * margin)
    cx, cy = face.x + face.w / 2.0, face.y + face.h / 2.0
    sx, sy = w / side, h / side
    return np.array([[sx, 0.0, w / 2.0 - sx * cx], [0.0, sy, h / 2.0 - sy * cy]])


def align_face(
    image: np.ndarray, face: Any, size: int | Sequence[int] = 112, margin: float = 0.0
) -> np.ndarray:
    """Warp a face to a canonical pose: eyes level, at fixed places (see the module docstring).

    Args:
        image: uint8 RGB ``(H, W, 3)`` (or grey) image.
        face: a :class:`~fer_tf.preprocessing.faces.Face`; with ``landmarks`` the five points go
            to the template, without them a square crop of the box is taken.
        size: output size, an int or ``(height, width)`` (112 is ArcFace's).
        margin: band around the face as a fraction of its size, on every side (0: the template's
            own framing).

    Returns:
        uint8 image of ``size`` (pixels outside the photo are black).

    Raises:
        ValueError: a bad size or margin.
    """
    h, w = _size(size)
    m = alignment_matrix(face, (h, w), margin)
    shrink = abs(np.linalg.det(m[:, :2])) < 1.0
    out = cv2.warpAffine(
        image,
        m,
        (w, h),
        flags=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    if image.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


def crop_box(image: np.ndarray, face: Any, margin: float = 0.2) -> np.ndarray:
    """Cut the face box grown by ``margin`` x its size on every side, clipped to the image.

    The same crop as the record builder's ``--face-crop haar`` (not square at image borders).

    Args:
        image: uint8 image.
        face: a :class:`~fer_tf.preprocessing.faces.Face` (or anything with x, y, w, h).
        margin: fraction of the box added on each side.

    Returns:
        The crop (a view into ``image``).
    """
    from fer_tf.preprocessing.faces.haar import margin_box

    check_number("margin", margin, min=0.0)
    height, width = image.shape[:2]
    x0, y0, x1, y1 = margin_box((face.x, face.y, face.w, face.h), float(margin), height, width)
    if x1 <= x0 or y1 <= y0:
        return image
    return image[y0:y1, x0:x1]
