"""Schema-v2 records for tests and notebooks, written straight from SynthFACS faces.

Faster than a build for the training tests: :func:`fer_tf.records.encode_example` with the v2
labels, and a manifest that states ``folds``, ``au_ids``, ``emotion_names``, per-split shards,
counts, ``fold_counts`` and the ``label_stats`` the training checks read (``au_intensity: {"<AU>":
{"known": n}}``, ``emotion_dist: {"known": n}``), as ``fer-tf-build-records`` writes them for local
sources.
"""

from __future__ import annotations

import dataclasses
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_tf import facs, records

__all__ = ["V2Example", "encode_v2", "write_v2_records", "synth_v2_examples"]


@dataclass
class V2Example:
    """One v2 example: the v1 record and the v2 labels.

    Attributes:
        record: the schema-v1 :class:`fer_tf.records.ExampleRecord`.
        au_intensity: one float per manifest ``au_ids`` (NaN unknown), or empty.
        emotion_dist: one float per manifest ``emotion_names``, or empty.
        fold: the subject-independent fold, -1 for none.
        dataset: the source name.
    """

    record: records.ExampleRecord
    au_intensity: Sequence[float] = ()
    emotion_dist: Sequence[float] = ()
    fold: int = -1
    dataset: str = "synthfacs"
    extra: dict[str, Any] = field(default_factory=dict)


def encode_v2(example: V2Example) -> bytes:
    """Serialized ``tf.train.Example`` with the v1 keys and the four v2 keys.

    Args:
        example: the example.

    Returns:
        The serialized proto (:func:`fer_tf.records.encode_example`, byte-identical to TF's).
    """
    record = dataclasses.replace(
        example.record,
        au_intensity=[float(v) for v in example.au_intensity],
        emotion_dist=[float(v) for v in example.emotion_dist],
        fold=int(example.fold),
        dataset=example.dataset,
    )
    return records.encode_example(record)


def _split_stats(examples: Sequence[V2Example], au_ids: Sequence[int], names: Sequence[str]) -> Any:
    au: dict[str, dict[str, int]] = {}
    intensity: dict[str, dict[str, int]] = {}
    for j, a in enumerate(au_ids):
        labels = [e.record.au[j] for e in examples if len(e.record.au) > j]
        au[str(a)] = {
            "present": sum(v == 1 for v in labels),
            "absent": sum(v == 0 for v in labels),
            "unknown": sum(v == -1 for v in labels),
        }
        known = sum(
            1 for e in examples if len(e.au_intensity) > j and not math.isnan(e.au_intensity[j])
        )
        intensity[str(a)] = {"known": known}
    emotion = dict.fromkeys(names, 0)
    emotion["unknown"] = 0
    for e in examples:
        k = e.record.emotion
        emotion[names[k] if 0 <= k < len(names) else "unknown"] += 1
    stats: dict[str, Any] = {"count": len(examples), "au": au, "emotion": emotion}
    if any(len(e.au_intensity) for e in examples):
        stats["au_intensity"] = intensity
    if any(len(e.emotion_dist) for e in examples):
        stats["emotion_dist"] = {"known": sum(1 for e in examples if len(e.emotion_dist))}
    return stats


def write_v2_records(
    directory: str | os.PathLike[str],
    splits: Mapping[str, Sequence[V2Example]],
    *,
    au_ids: Sequence[int],
    emotion_names: Sequence[str] = facs.EMOTIONS,
    folds: int = 0,
    num_shards: int = 2,
    label_stats: bool = True,
) -> Path:
    """Write v2 shards and a manifest.

    Args:
        directory: output directory (created).
        splits: split name -> examples.
        au_ids: the AU numbers of ``label/au`` and ``label/au_intensity``.
        emotion_names: the names of ``label/emotion`` and ``label/emotion_dist``.
        folds: the number of folds (manifest ``folds``; 0 = none).
        num_shards: shards per split (examples dealt round-robin).
        label_stats: write the manifest's ``label_stats``.

    Returns:
        The directory.
    """
    import tensorflow as tf

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    entries: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    for split, examples in splits.items():
        names = [records.shard_name(split, j, num_shards) for j in range(num_shards)]
        writers = [tf.io.TFRecordWriter(str(d / n)) for n in names]
        for i, e in enumerate(examples):
            writers[i % num_shards].write(encode_v2(e))
        for w in writers:
            w.close()
        counts: dict[str, int] = {}
        for e in examples:
            counts[str(e.fold)] = counts.get(str(e.fold), 0) + 1
        entries[split] = {"shards": names, "count": len(examples), "fold_counts": counts}
        stats[split] = _split_stats(examples, au_ids, emotion_names)
    manifest: dict[str, Any] = {
        "source": "synthfacs",
        "au_ids": [int(a) for a in au_ids],
        "emotion_names": list(emotion_names),
        "folds": int(folds),
        "protocol": f"{folds}-fold by subject" if folds else "none",
        "splits": entries,
    }
    if label_stats:
        manifest["label_stats"] = stats
    records.write_manifest(d, manifest)
    return d


def synth_v2_examples(
    n: int,
    *,
    seed: int,
    size: int = 32,
    aus: Sequence[int] = (1, 2, 4, 6, 12, 25),
    folds: int = 0,
    intensity: bool = True,
    dist_every: int = 0,
    unknown_intensity_every: int = 7,
    grey: bool = False,
    start: int = 0,
) -> list[V2Example]:
    """SynthFACS faces as v2 examples.

    Intensities are SynthFACS' rendered intensities times 5 (0..5); every
    ``unknown_intensity_every``-th value is NaN (unknown). With ``dist_every`` > 0, every such
    example gets a FER+-like vote distribution (0.7 on its emotion, the rest spread evenly), the
    others none. The fold is a hash of the subject modulo ``folds`` (-1 when 0).

    Args:
        n: number of faces.
        seed: SynthFACS seed.
        size: image side in pixels.
        aus: the AU columns.
        folds: number of subject folds (0 = no folds).
        intensity: write ``label/au_intensity`` (else empty).
        dist_every: every how many examples carry ``label/emotion_dist`` (0 = none).
        unknown_intensity_every: every how many intensity values are unknown (0 = none).
        grey: store grey images (R = G = B), as grey datasets do.
        start: first sample index.

    Returns:
        The examples.
    """
    from fer_tf.synthfacs import sample
    from fer_tf.synthfacs.records import to_record

    out = []
    k = len(facs.EMOTIONS)
    for i, face in enumerate(sample(n, seed=seed, size=size, aus=list(aus), start=start)):
        if grey:
            luma = face.image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
            face.image = np.repeat(np.round(luma).astype(np.uint8)[..., None], 3, axis=-1)
        rec = to_record(face)
        inten: list[float] = []
        if intensity:
            inten = [float(np.clip(v * 5.0, 0.0, 5.0)) for v in face.au_intensity]
            if unknown_intensity_every:
                inten = [
                    math.nan if (i * len(inten) + j) % unknown_intensity_every == 0 else v
                    for j, v in enumerate(inten)
                ]
        dist: list[float] = []
        if dist_every and i % dist_every == 0:
            dist = [0.3 / (k - 1)] * k
            dist[face.emotion] = 0.7
        fold = zlib.crc32(face.subject.encode()) % folds if folds else -1
        out.append(V2Example(rec, inten, dist, fold))
    return out
