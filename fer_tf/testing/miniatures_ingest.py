"""Miniature local datasets for the shared build: a ``folder`` tree and small videos.

Made from SynthFACS faces (:func:`fer_tf.synthfacs.sample`), in the exact layout the ``folder``
source reads (``root/<class>/*``, optionally under ``train/ val/ test/``), with the quirks a real
download has: a file that is not an image, an image that cannot be decoded. Tests, docs and the
import benchmark share these writers. NumPy and OpenCV only (no TensorFlow).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["FOLDER_CLASSES", "write_folder_dataset", "write_avi", "synth_images"]

#: The classes of the miniature folder dataset (sorted: their order is the label order).
FOLDER_CLASSES = ("anger", "happiness", "neutral")


def synth_images(n: int, *, seed: int = 0, size: int = 64) -> list[np.ndarray]:
    """``n`` SynthFACS face images (uint8 RGB, ``size`` x ``size``), deterministic for ``seed``.

    Args:
        n: how many.
        seed: the SynthFACS seed.
        size: the side in pixels.

    Returns:
        The images.
    """
    from fer_tf.synthfacs import sample

    return [face.image for face in sample(n, seed=seed, size=size)]


def _write_image(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV encodes every suffix used here
        raise OSError(f"OpenCV could not encode '{path}'")
    path.write_bytes(buf.tobytes())


def write_folder_dataset(
    root: str | os.PathLike[str],
    *,
    per_class: int = 2,
    classes: Sequence[str] = FOLDER_CLASSES,
    partitions: Sequence[str] = (),
    quirks: bool = True,
    size: int = 48,
    seed: int = 0,
) -> dict[str, int]:
    """Write a ``root/<class>/*`` image tree (``image_dataset_from_directory`` layout).

    Images alternate between ``.jpg`` and ``.png``. With ``quirks``, the first class also holds
    ``notes.txt`` (not an image: skipped) and ``broken.jpg`` (truncated JPEG bytes: a failure).

    Args:
        root: the dataset root (created).
        per_class: good images per class (per partition).
        classes: class folder names.
        partitions: e.g. ``("train", "test")`` to nest the class folders under them.
        quirks: add the non-image and the broken image.
        size: image side in pixels.
        seed: SynthFACS seed.

    Returns:
        ``{"images": good images written, "broken": 1 or 0, "other": 1 or 0}``.
    """
    base = Path(root)
    parts = list(partitions) or [""]
    faces = synth_images(per_class * len(classes) * len(parts), seed=seed, size=size)
    k = 0
    for part in parts:
        for cls in classes:
            for i in range(per_class):
                suffix = ".jpg" if k % 2 == 0 else ".png"
                _write_image(base / part / cls / f"{cls}_{i:03d}{suffix}", faces[k])
                k += 1
    if quirks:
        first = base / parts[0] / classes[0]
        (first / "notes.txt").write_text("not an image\n", encoding="utf-8")
        good = (first / f"{classes[0]}_000.jpg").read_bytes()
        (first / "broken.jpg").write_bytes(good[: len(good) // 3])
    return {"images": k, "broken": int(quirks), "other": int(quirks)}


def write_avi(
    path: str | os.PathLike[str], frames: Sequence[np.ndarray], fps: float = 10.0
) -> Path:
    """Write RGB frames as a small Motion-JPEG ``.avi`` (OpenCV's writer; any FFmpeg reads it).

    Args:
        path: the video file (its folder is created).
        frames: uint8 RGB frames, all the same size.
        fps: the frame rate in the container.

    Returns:
        The path.
    """
    import cv2

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return p
