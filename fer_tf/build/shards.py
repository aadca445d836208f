"""Phase 3b: examples -> ``<split>-NNNNN-of-MMMMM.tfrecord`` shards, each written atomically."""

from __future__ import annotations

import io
import itertools
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fer_tf.build.options import DEFAULT_EXAMPLES_PER_SHARD, BuildOptions
from fer_tf.build.progress import Progress
from fer_tf.build.spill import SplitExamples
from fer_tf.preprocessing.decode import jpeg_segments

__all__ = ["SPLITS", "ALL_SPLITS", "shard_sizes", "write_shards", "jpeg_size"]

#: The splits of a spreadsheet build (always written, possibly empty).
SPLITS = ("train", "val")
#: Every split a build may write (``test`` when a source's partition or ``test_fraction`` has one).
ALL_SPLITS = ("train", "val", "test")


def shard_sizes(n: int, num_shards: int | None, examples_per_shard: int | None) -> list[int]:
    """How ``n`` examples are cut into shards (sizes differ by at most one).

    Args:
        n: examples in the split.
        num_shards: shards wanted (capped at ``n``), or None.
        examples_per_shard: examples per shard (default :data:`DEFAULT_EXAMPLES_PER_SHARD`).

    Returns:
        The shard sizes (at least one shard, possibly empty).
    """
    if num_shards is not None:
        k = max(1, min(num_shards, n))
    else:
        eps = examples_per_shard or DEFAULT_EXAMPLES_PER_SHARD
        k = max(1, math.ceil(n / eps))
    return [(i + 1) * n // k - i * n // k for i in range(k)]


def _cut(
    out: Path, counts: dict[str, int], options: BuildOptions
) -> dict[str, list[tuple[str, int]]]:
    """Shard names and sizes per split; stale shards and temporary files are removed."""
    from fer_tf.records import list_shards, shard_name

    cut: dict[str, list[tuple[str, int]]] = {}
    for split, n in counts.items():
        sizes = shard_sizes(n, options.num_shards, options.examples_per_shard)
        cut[split] = [(shard_name(split, i, len(sizes)), size) for i, size in enumerate(sizes)]
    wanted = {name for split in cut for name, _ in cut[split]}
    for split in ALL_SPLITS:
        for p in list_shards(out, split):
            if Path(p).name not in wanted:
                Path(p).unlink()
    for p in out.glob("*.tfrecord.tmp*"):
        p.unlink()
    return cut


def _sorted(exs: Iterable[Any]) -> Iterator[Any]:
    # A spilled split (fer_tf.build.spill.SplitExamples) already iterates sorted by id.
    if isinstance(exs, SplitExamples):
        return iter(exs)
    return iter(sorted(exs, key=lambda e: e["id"]))


def _plan(
    out: Path, examples: dict[str, Any], options: BuildOptions
) -> dict[str, list[tuple[str, list[Any]]]]:
    """Shard names and contents (lists) per split; stale shards and temporary files are removed.

    Holds every example (the Beam runner's shard tasks); :func:`write_shards` streams instead.
    """
    cut = _cut(out, {s: len(examples[s]) for s in examples}, options)
    plan: dict[str, list[tuple[str, list[Any]]]] = {}
    for split, names in cut.items():
        it = _sorted(examples[split])
        plan[split] = [(name, list(itertools.islice(it, size))) for name, size in names]
    return plan


#: JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic...).
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's start-of-frame header, or None if none is found.

    A walk over the marker segments (microseconds), instead of opening the image with Pillow
    once more in the single writer process.

    Args:
        data: JPEG bytes (validated earlier by a full decode).

    Returns:
        The size, or None (the caller falls back to Pillow).
    """
    for marker, pos, _ in jpeg_segments(data):
        if marker in _SOF and pos + 9 <= len(data):
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return (width, height) if width and height else None
    return None  # a start of scan before any frame header, or not a JPEG


def _encode(ex: Any) -> bytes:
    from fer_tf.records import ExampleRecord, encode_example

    jpeg = Path(ex["path"]).read_bytes()
    size = ex.get("size") or jpeg_size(jpeg)
    if size:
        width, height = size
    else:
        from PIL import Image

        with Image.open(io.BytesIO(jpeg)) as im:
            width, height = im.size
    record = ExampleRecord(
        image=jpeg,
        height=height,
        width=width,
        source=ex["source"],
        au=ex["au"],
        valence=ex["valence"],
        arousal=ex["arousal"],
        emotion=ex["emotion"],
        posed=ex["posed"],
        subject=ex["subject"],
        sequence=ex.get("sequence", ""),
        frame=ex.get("frame", -1),
        id=ex["id"],
        au_intensity=ex.get("au_intensity") or (),
        emotion_dist=ex.get("emotion_dist") or (),
        fold=ex.get("fold", -1),
        dataset=ex.get("dataset", ""),
    )
    return encode_example(record)


def write_shards(options: BuildOptions, examples: dict[str, Any]) -> dict[str, Any]:
    """Write every split's shards (examples sorted by id); remove stale shards and temp files.

    ``manifest.json`` is removed first: no manifest ever describes half-written shards.

    Args:
        options: the build options (``output_dir``, ``num_shards``, ``examples_per_shard``,
            ``progress``).
        examples: examples per split, in the order the splits are written: lists (dicts,
            :class:`~fer_tf.build.phases.SheetExample` or
            :class:`~fer_tf.build.ingest.LocalExample`, sorted here) or
            :class:`~fer_tf.build.spill.SplitExamples` (already sorted; streamed).

    Returns:
        ``{split: [shard paths], "<split>/counts": [examples per shard]}``.
    """
    from fer_tf.records import TFRecordWriter

    out = options.out
    (out / "manifest.json").unlink(missing_ok=True)
    cut = _cut(out, {s: len(examples[s]) for s in examples}, options)
    total = sum(size for split in cut for _, size in cut[split])
    bar = Progress(total, "write", "ex", enabled=options.progress)
    result: dict[str, Any] = {}
    try:
        for split in cut:
            result[split] = []
            result[f"{split}/counts"] = []
            it = _sorted(examples[split])  # streamed: one example in memory at a time
            for name, size in cut[split]:
                final, tmp = out / name, out / f"{name}.tmp"
                with TFRecordWriter(tmp) as writer:
                    for ex in itertools.islice(it, size):
                        writer.write(_encode(ex))
                        bar.update(1)
                os.replace(tmp, final)
                result[split].append(str(final))
                result[f"{split}/counts"].append(size)
    finally:
        bar.close()
    return result
