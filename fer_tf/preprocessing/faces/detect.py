"""One entry point for face detection: :func:`detect_faces` over a batch of images, any detector.

No TensorFlow import here; ``detector="mtcnn"`` imports it on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_tf.checks import check_choice, check_number

__all__ = ["DETECTORS", "Face", "detect_faces"]

#: Detector names accepted by :func:`detect_faces` and ``--detector``.
DETECTORS = ("mtcnn", "haar", "none")


@dataclass(frozen=True, eq=False)
class Face:
    """A detected face.

    Attributes:
        x, y, w, h: the box in pixels (top-left corner, width, height).
        score: the detector's confidence (MTCNN), 1.0 for Viola–Jones, None for ``none``.
        landmarks: ``(5, 2)`` float32 ``(x, y)`` points (left eye, right eye, nose, left and right
            mouth corner; "left" is the image's left), or None when the detector gives none.
    """

    x: int
    y: int
    w: int
    h: int
    score: float | None = None
    landmarks: np.ndarray | None = None

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)``."""
        return self.x, self.y, self.w, self.h


def _check_images(images: Sequence[Any]) -> list[np.ndarray]:
    from fer_tf.preprocessing.faces.haar import _check_image

    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise TypeError(
            "The 'images' parameter must be a sequence (list or tuple) of uint8 RGB arrays. "
            f"Got {type(images).__name__} instead."
        )
    return [_check_image(im, f"images[{i}]") for i, im in enumerate(images)]


def detect_faces(
    images: Any,
    detector: str = "mtcnn",
    *,
    min_score: float = 0.9,
    batch_size: int = 16,
    **haar_kwargs: Any,
) -> Any:
    """Detect the faces in a batch of images.

    Args:
        images: a sequence of uint8 RGB ``(H, W, 3)`` (or grey) images, or an ``(N, H, W, C)``
            array. A single NumPy image
            (not in a sequence) is the older Viola–Jones call, kept for compatibility: it returns
            that image's boxes ``[(x, y, w, h), ...]`` as
            :func:`fer_tf.preprocessing.faces.haar.detect_faces` does.
        detector: ``"mtcnn"`` (five landmarks, batched), ``"haar"`` (OpenCV Viola–Jones, no
            landmarks, score 1.0) or ``"none"`` (the whole image is the face).
        min_score: MTCNN faces with a lower confidence are dropped.
        batch_size: images per MTCNN call.
        **haar_kwargs: ``scale_factor``, ``min_neighbors``, ``min_size``, ``cascade`` for Haar.

    Returns:
        One list of :class:`Face` per image, largest face first (empty when none is found).

    Raises:
        TypeError, ValueError: a bad image or parameter (the message names it).
    """
    from fer_tf.preprocessing.faces import haar

    if isinstance(images, np.ndarray):
        if images.ndim != 4:  # one image: the older Viola-Jones call
            return haar.detect_faces(images, **haar_kwargs)
        images = list(images)
    check_choice("detector", detector, DETECTORS)
    check_number("min_score", min_score, min=0.0, max=1.0)
    check_number("batch_size", batch_size, min=1, integer=True)
    ims = _check_images(images)
    if detector == "none":
        return [[Face(0, 0, im.shape[1], im.shape[0], None, None)] for im in ims]
    if detector == "haar":
        return [
            [Face(*box, 1.0, None) for box in haar.detect_faces(im, **haar_kwargs)] for im in ims
        ]
    if haar_kwargs:
        raise TypeError(
            f"detect_faces(detector='mtcnn') got unexpected parameters {sorted(haar_kwargs)}; "
            "scale_factor, min_neighbors, min_size and cascade belong to detector='haar'."
        )
    from fer_tf.preprocessing.faces.mtcnn import detect_mtcnn

    return detect_mtcnn(ims, min_score=min_score, batch_size=batch_size)
