"""SynthFACS faces as schema-v1 records: :func:`encode_jpeg`, :func:`to_record`, :func:`write_records`.

:func:`write_records` imports TensorFlow (lazily) because it writes TFRecords; the rest of the
module needs only OpenCV.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_tf import facs
from fer_tf.checks import invalid
from fer_tf.synthfacs._common import DEFAULT_NUM_IDENTITIES, SPLIT, check_fraction, check_int
from fer_tf.synthfacs.sampling import SynthFace, sample

__all__ = ["encode_jpeg", "to_record", "write_records"]

_POSED_NAMES = {1: "posed", 0: "spontaneous", -1: "unknown"}


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode an RGB uint8 image as JPEG bytes.

    Args:
        image: uint8 array (H, W, 3) in RGB order.
        quality: JPEG quality 1..100.

    Returns:
        The JPEG file bytes.

    Raises:
        ValueError: for a non-uint8 or wrongly shaped image or a bad quality.
    """
    quality = check_int("quality", quality, lo=1, hi=100)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(
            f"The 'image' parameter must be a uint8 RGB array of shape (H, W, 3). Got "
            f"{getattr(image, 'dtype', type(image).__name__)} with shape "
            f"{getattr(image, 'shape', None)} instead."
        )
    if image.shape[2] != 3:
        raise ValueError(
            f"The 'image' parameter must have 3 channels (RGB). Got shape {image.shape} instead."
        )
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:  # pragma: no cover - OpenCV only fails here on invalid input, checked above
        raise RuntimeError("OpenCV could not encode the image as JPEG.")
    return buf.tobytes()


def to_record(face: SynthFace, jpeg_quality: int = 90) -> Any:
    """Convert a :class:`SynthFace` to a schema-v1 :class:`fer_tf.records.ExampleRecord`.

    Args:
        face: the face.
        jpeg_quality: JPEG quality 1..100.

    Returns:
        An ``ExampleRecord`` with source ``synthfacs://<seed>/<index>``.
    """
    from fer_tf.records import ExampleRecord

    h, w = face.image.shape[:2]
    return ExampleRecord(
        image=encode_jpeg(face.image, jpeg_quality),
        height=int(h),
        width=int(w),
        source=face.source,
        au=[int(v) for v in face.au_labels],
        valence=float(face.valence),
        arousal=float(face.arousal),
        emotion=int(face.emotion),
        posed=int(face.posed),
        subject=face.subject,
    )


def _val_subjects(seed: int, pool: int, val_fraction: float) -> set[int]:
    """The identities held out as ``val``: a seeded fraction of the pool (never all of it)."""
    if val_fraction <= 0.0:
        return set()
    count = min(pool - 1, max(1, int(round(pool * val_fraction)))) if pool > 1 else 0
    perm = np.random.default_rng([seed, SPLIT]).permutation(pool)
    return {int(k) for k in perm[:count]}


@dataclass
class _SplitStats:
    """Counts for one split's ``label_stats`` entry in the manifest."""

    num_aus: int
    count: int = 0
    au_present: list[int] = field(default_factory=list)
    au_absent: list[int] = field(default_factory=list)
    au_unknown_total: int = 0
    emotion: list[int] = field(default_factory=lambda: [0] * len(facs.EMOTIONS))
    posed: dict[str, int] = field(
        default_factory=lambda: {"posed": 0, "spontaneous": 0, "unknown": 0}
    )

    def __post_init__(self) -> None:
        self.au_present = [0] * self.num_aus
        self.au_absent = [0] * self.num_aus

    def add(self, face: SynthFace) -> None:
        """Count one face's labels."""
        for c, v in enumerate(face.au_labels):
            if v == 1:
                self.au_present[c] += 1
            elif v == 0:
                self.au_absent[c] += 1
            else:
                self.au_unknown_total += 1
        self.emotion[face.emotion] += 1
        self.posed[_POSED_NAMES[face.posed]] += 1

    def as_manifest(self) -> dict[str, Any]:
        """The manifest's ``label_stats[split]`` entry."""
        return {
            "au_present": self.au_present,
            "au_absent": self.au_absent,
            "au_unknown_total": self.au_unknown_total,
            "emotion": dict(zip(facs.EMOTIONS, self.emotion)),
            "posed": self.posed,
        }


def _write_shards(
    out: Path,
    faces: Iterable[SynthFace],
    split_of: Mapping[int, str],
    names: Mapping[str, list[str]],
    stats: Mapping[str, _SplitStats],
    jpeg_quality: int,
) -> None:
    """Write every face to its split's shards (round robin) under temporary names, then rename.

    ``split_of`` maps held-out identity numbers to ``"val"``; every other face goes to train.
    """
    import tensorflow as tf

    from fer_tf.records import encode_example

    writers = {
        s: [tf.io.TFRecordWriter(str(out / (nm + ".tmp"))) for nm in names[s]] for s in names
    }
    try:
        for face in faces:
            k = int(face.subject.split("-")[1])
            split = split_of.get(k, "train")
            st = stats[split]
            shard = writers[split][st.count % len(writers[split])]
            shard.write(encode_example(to_record(face, jpeg_quality)))
            st.count += 1
            st.add(face)
    finally:
        for ws in writers.values():
            for w in ws:
                w.close()
    for s in names:
        for nm in names[s]:
            os.replace(out / (nm + ".tmp"), out / nm)


def write_records(
    directory: str | os.PathLike[str],
    n: int,
    *,
    seed: int,
    size: int = 64,
    aus: Sequence[int] | str = "synthfacs15",
    val_fraction: float = 0.2,
    num_shards: int = 2,
    unknown_fraction: float = 0.0,
    num_identities: int | None = None,
    emotion_weights: Mapping[str, float] | Sequence[float] | None = None,
    posed_fraction: float = 0.5,
    jpeg_quality: int = 90,
) -> dict[str, Any]:
    """Write ``n`` SynthFACS faces as a schema-v1 records directory (no downloader involved).

    Splits are by subject: a fixed fraction of the identity pool (chosen by ``seed``) is held out
    for ``val``, so validation identities never appear in ``train``. Each split is written to
    ``num_shards`` shards (``<split>-00000-of-0000N.tfrecord``; face ``j`` of a split goes to
    shard ``j % num_shards``), first under a temporary name, renamed when complete. Also writes
    ``manifest.json`` and an empty ``errors.jsonl``.

    Args:
        directory: output directory (created if needed).
        n: number of faces in total.
        seed: sampling seed.
        size: image size in pixels.
        aus: label columns (``manifest.au_ids``).
        val_fraction: fraction of identities held out as ``val``, in [0, 1); 0 writes only
            ``train``.
        num_shards: shards per split (>= 1).
        unknown_fraction: fraction of AU labels stored as -1.
        num_identities: identity pool size (default :data:`DEFAULT_NUM_IDENTITIES`).
        emotion_weights: see :func:`~fer_tf.synthfacs.sample`.
        posed_fraction: see :func:`~fer_tf.synthfacs.sample`.
        jpeg_quality: JPEG quality 1..100.

    Returns:
        The manifest dict as written (``splits`` maps split name to ``{"shards": [file names
        relative to directory], "count": N}``).

    Raises:
        ValueError: for bad arguments (see :func:`~fer_tf.synthfacs.sample`).
    """
    from fer_tf.records import ERRORS_NAME, shard_name, write_manifest

    val_fraction = check_fraction("val_fraction", val_fraction)
    if val_fraction >= 1.0:
        raise invalid("val_fraction", "in [0, 1) so that train keeps identities", val_fraction)
    num_shards = check_int("num_shards", num_shards, lo=1, hi=10_000)
    jpeg_quality = check_int("jpeg_quality", jpeg_quality, lo=1, hi=100)
    faces = sample(
        n,
        seed=seed,
        size=size,
        aus=aus,
        unknown_fraction=unknown_fraction,
        num_identities=num_identities,
        emotion_weights=emotion_weights,
        posed_fraction=posed_fraction,
    )
    label_aus = facs.parse_aus(aus)
    pool = DEFAULT_NUM_IDENTITIES if num_identities is None else int(num_identities)
    split_of = dict.fromkeys(_val_subjects(int(seed), pool, val_fraction), "val")
    split_names = ["train", "val"] if val_fraction > 0 else ["train"]

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    names = {s: [shard_name(s, j, num_shards) for j in range(num_shards)] for s in split_names}
    stats = {s: _SplitStats(len(label_aus)) for s in split_names}
    _write_shards(out, faces, split_of, names, stats, jpeg_quality)
    (out / ERRORS_NAME).write_text("", encoding="utf-8")
    arguments = {
        "n": int(n),
        "seed": int(seed),
        "size": int(size),
        "aus": list(label_aus),
        "val_fraction": val_fraction,
        "num_shards": num_shards,
        "unknown_fraction": float(unknown_fraction),
        "num_identities": pool,
        "posed_fraction": float(posed_fraction),
        "jpeg_quality": jpeg_quality,
        "split_by": "subject",
    }
    manifest = _manifest(arguments, label_aus, names, stats)
    write_manifest(out, manifest)
    return manifest


def _manifest(
    arguments: dict[str, Any],
    label_aus: tuple[int, ...],
    names: Mapping[str, list[str]],
    stats: Mapping[str, _SplitStats],
) -> dict[str, Any]:
    from fer_tf import __version__
    from fer_tf.records import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
        "fer_tf_version": __version__,
        "source": "synthfacs",
        "arguments": arguments,
        "inputs": [],
        "au_ids": list(label_aus),
        "emotion_names": list(facs.EMOTIONS),
        "splits": {s: {"shards": names[s], "count": stats[s].count} for s in names},
        "label_stats": {s: stats[s].as_manifest() for s in names},
        "failures": {},
    }
