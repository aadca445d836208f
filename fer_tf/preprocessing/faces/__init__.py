"""Faces: detection (MTCNN, Viola–Jones), five-point alignment, crops and histogram equalisation.

- :func:`detect_faces` — a batch of RGB images -> one list of :class:`Face` per image
  (``detector="mtcnn" | "haar" | "none"``);
- :func:`align_face` / :func:`crop_box` — a face -> the model's input crop;
- :mod:`~fer_tf.preprocessing.faces.haar` — Athanasiadis 2022's Viola–Jones chain (``crop_face``,
  ``equalize``, ``preprocess_face``, ...), used by the record builder.

No TensorFlow import (the builder runs this in process pools); MTCNN loads TensorFlow when first
used.
"""

from __future__ import annotations

from fer_tf.preprocessing.faces.align import TEMPLATE_112, align_face, crop_box, umeyama
from fer_tf.preprocessing.faces.detect import DETECTORS, Face, detect_faces
from fer_tf.preprocessing.faces.haar import (
    DEFAULT_CASCADE,
    FALLBACKS,
    crop_face,
    detect_largest_face,
    equalize,
    gray_to_rgb,
    preprocess_face,
    rgb_to_gray,
)

__all__ = [
    "DEFAULT_CASCADE",
    "DETECTORS",
    "FALLBACKS",
    "Face",
    "TEMPLATE_112",
    "align_face",
    "crop_box",
    "crop_face",
    "detect_faces",
    "detect_largest_face",
    "equalize",
    "gray_to_rgb",
    "preprocess_face",
    "rgb_to_gray",
    "umeyama",
]
