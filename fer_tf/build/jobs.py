"""Worker-process jobs of local dataset builds: process one image file, extract a video's frames.

Both run in the build's process pool (NumPy/Pillow/OpenCV only, never TensorFlow) and return small
tuples: no image crosses the process boundary. Results are cached on disk, keyed by content, so a
rerun with the same options decodes nothing again (resume) and writes the same bytes (rebuild):

- ``processed/<fingerprint>/<sha[:2]>/<key>.jpg``: the processed JPEG (``key`` = SHA-256 of the
  original's bytes, plus a hash of the dataset's face box when the item has one);
- ``<key>.pass``: the original is an upright RGB JPEG needing no change, validated and stored as
  it is (the marker holds its size);
- ``<key>.jpg.fail``: why it could not be used (JSON, as the spreadsheet path writes it).

Video frames are decoded once per video (sequentially, never by seeking) and written as PNG
(lossless) under ``frames/<video key>/``; each frame then goes through :func:`process_local_file`
like any image file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fer_tf.build.local import _fail_marker, _write_atomic, triage_data
from fer_tf.preprocessing.decode import (
    DEFAULT_JPEG_QUALITY,
    decode_image,
    encode_jpeg,
    needs_change,
    process_image,
    resize_shorter,
)

__all__ = ["process_local_file", "extract_frames", "frame_dir", "box_key"]

#: A processing result: ``(status, detail, ready JPEG path or None, (width, height) or None,
#: whether the image was decoded in this call rather than found in the cache)``.
Result = tuple[str, str, "str | None", "tuple[int, int] | None", bool]


def box_key(box: Sequence[int] | None) -> str:
    """The part of a processed-image cache key that names a dataset face box (``""``: none)."""
    if box is None:
        return ""
    return "-" + hashlib.sha1(",".join(str(int(v)) for v in box).encode()).hexdigest()[:12]


def _crop_box(image: Any, box: Sequence[int], margin: float) -> Any:
    """Crop the dataset's face box ``(x, y, w, h)`` grown by ``margin`` on every side."""
    import numpy as np

    from fer_tf.preprocessing.faces.haar import margin_box  # the detector crop's margin arithmetic

    height, width = image.shape[:2]
    x0, y0, x1, y1 = margin_box(tuple(int(v) for v in box), margin, height, width)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"the face box {tuple(box)} lies outside the {width}x{height} image")
    return np.ascontiguousarray(image[y0:y1, x0:x1])


def _process_boxed(data: bytes, box: Sequence[int], options: Mapping[str, Any]) -> tuple[str, Any]:
    """Decode, crop the dataset's box (instead of the detector), equalise, resize, encode."""
    try:
        margin = float(options.get("box_margin") or 0.0)
        image = _crop_box(decode_image(data), box, margin)
    except ValueError as exc:
        return "fail", str(exc)
    if options.get("equalize"):
        from fer_tf.preprocessing import faces

        image = faces.equalize(image)
    if options.get("image_size"):
        image = resize_shorter(image, int(options["image_size"]))
    return "ok", encode_jpeg(image, int(options.get("jpeg_quality", DEFAULT_JPEG_QUALITY)))


def _cached(dst: Path, src: str) -> Result | None:
    """The cached outcome for ``dst`` (processed, passed through or failed), or None."""
    if dst.exists():
        return "ok", "", str(dst), None, False
    passed = dst.with_suffix(".pass")
    if passed.exists():
        size = json.loads(passed.read_text(encoding="utf-8")).get("size")
        return "ok", "", src, (int(size[0]), int(size[1])) if size else None, False
    marker = Path(str(dst) + ".fail")
    if marker.exists():
        info = json.loads(marker.read_text(encoding="utf-8"))
        return str(info.get("status", "fail")), str(info.get("detail", "")), None, None, False
    return None


def process_local_file(
    src: str, processed_root: str, options: Mapping[str, Any], box: Sequence[int] | None = None
) -> Result:
    """Pool job: validate and process one local image file, through the content-keyed cache.

    Args:
        src: the image file.
        processed_root: ``cache_dir/processed/<options fingerprint>``.
        options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.
        box: the dataset's face box ``(x, y, w, h)``, cropped with ``face_margin`` instead of the
            detector; None for none.

    Returns:
        ``(status, detail, path, size, fresh)``: ``("ok", "", jpeg_path, size or None, fresh)``,
        ``("fail", why, None, None, fresh)`` (unreadable or corrupt) or ``("skip", why, None,
        None, fresh)`` (no face and ``face_fallback="drop"``); ``fresh`` is False when the cache
        answered.
    """
    try:
        with open(src, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return "fail", f"cannot read the file: {exc.strerror or exc}", None, None, True
    sha = hashlib.sha256(data).hexdigest()
    dst = Path(processed_root) / sha[:2] / f"{sha}{box_key(box)}.jpg"
    cached = _cached(dst, src)
    if cached is not None:
        return cached
    if box is None and not needs_change(options):
        status, detail, size = triage_data(data, str(dst), options)  # bytes already read
        if status == "pass":
            payload = json.dumps({"size": list(size) if size else None}).encode()
            _write_atomic(str(dst.with_suffix(".pass")), payload)
            return "ok", "", src, size, True
        if status == "fail":
            return "fail", detail, None, None, True
    if box is not None:
        status, out = _process_boxed(data, box, options)
        detail = out if status != "ok" else ""
    else:
        status, out, detail = process_image(data, options)
    if status == "ok":
        _write_atomic(str(dst), out)
        return "ok", "", str(dst), None, True
    _write_atomic(str(dst) + ".fail", _fail_marker(status, detail))
    return status, detail, None, None, True


def frame_dir(frames_root: str | os.PathLike[str], video: str | os.PathLike[str]) -> Path:
    """Where a video's extracted frames are cached, keyed by its path, size and mtime.

    A video is not hashed (DISFA's are gigabytes): its resolved path, size and modification time
    name it; the frames themselves are then keyed by content like any image.

    Args:
        frames_root: ``cache_dir/frames``.
        video: the video file.

    Returns:
        The folder (not created).
    """
    p = Path(video).resolve()
    try:
        st = p.stat()
        ident = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        ident = str(p)
    return Path(frames_root) / hashlib.sha1(ident.encode("utf-8")).hexdigest()[:20]


def extract_frames(
    video: str, indices: Sequence[int], frames_root: str
) -> tuple[list[tuple[int, str | None, str]], int]:
    """Pool job: decode a video once and write the wanted frames as PNG (already cached: skipped).

    Args:
        video: the video file.
        indices: 0-based frame indices wanted.
        frames_root: ``cache_dir/frames``.

    Returns:
        ``(frames, decoded)``: ``(index, png path or None, detail)`` for every wanted index, in the
        order given (None with the reason when the frame could not be read: past the end,
        undecodable video), and how many frames were decoded in this call (0 when cached).
    """
    import cv2

    from fer_tf.preprocessing.video import VideoError, read_frames

    folder = frame_dir(frames_root, video)
    paths = {i: folder / f"{int(i):07d}.png" for i in indices}
    missing = sorted(i for i, p in paths.items() if not p.exists())
    detail: dict[int, str] = {}
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        got: set[int] = set()
        try:
            for index, _, rgb in read_frames(video, missing):
                ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                if ok:
                    _write_atomic(str(paths[index]), buf.tobytes())
                    got.add(index)
        except (VideoError, cv2.error) as exc:
            detail = {i: f"cannot read the video: {exc}" for i in missing if i not in got}
        for i in missing:
            if i not in got and i not in detail:
                detail[i] = f"frame {i} could not be read (the video ends earlier or is damaged)"
    frames = [(i, None if i in detail else str(paths[i]), detail.get(i, "")) for i in indices]
    return frames, len(missing) - len([i for i in missing if i in detail])
