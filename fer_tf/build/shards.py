"""Phase 3b: examples -> ``<split>-NNNNN-of-MMMMM.tfrecord`` shards, each written atomically."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

from fer_tf.build.options import DEFAULT_EXAMPLES_PER_SHARD, BuildOptions
from fer_tf.build.progress import Progress

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


def _plan(
    out: Path, examples: dict[str, list[Any]], options: BuildOptions
) -> dict[str, list[tuple[str, list[Any]]]]:
    """Shard names and contents per split; stale shards and temporary files are removed."""
    from fer_tf.records import list_shards, shard_name

    plan: dict[str, list[tuple[str, list[Any]]]] = {}
    for split in examples:
        exs = sorted(examples[split], key=lambda e: e["id"])
        sizes = shard_sizes(len(exs), options.num_shards, options.examples_per_shard)
        start = 0
        plan[split] = []
        for i, size in enumerate(sizes):
            plan[split].append((shard_name(split, i, len(sizes)), exs[start : start + size]))
            start += size
    wanted = {name for split in plan for name, _ in plan[split]}
    for split in ALL_SPLITS:
        for p in list_shards(out, split):
            if Path(p).name not in wanted:
                Path(p).unlink()
    for p in out.glob("*.tfrecord.tmp*"):
        p.unlink()
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
    pos, n = 2, len(data)
    if data[:2] != b"\xff\xd8":
        return None
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF and pos + 9 <= n:
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return (width, height) if width and height else None
        if marker == 0xDA:  # start of scan before any frame header: give up
            return None
        pos += 2 + length
    return None


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


def write_shards(options: BuildOptions, examples: dict[str, list[Any]]) -> dict[str, Any]:
    """Write every split's shards (examples sorted by id); remove stale shards and temp files.

    ``manifest.json`` is removed first: no manifest ever describes half-written shards.

    Args:
        options: the build options (``output_dir``, ``num_shards``, ``examples_per_shard``,
            ``progress``).
        examples: examples per split, in the order the splits are written (dicts from
            :func:`fer_tf.build.phases.split_examples` or
            :class:`~fer_tf.build.ingest.LocalExample`).

    Returns:
        ``{split: [shard paths], "<split>/counts": [examples per shard]}``.
    """
    from fer_tf.records import TFRecordWriter

    out = options.out
    (out / "manifest.json").unlink(missing_ok=True)
    plan = _plan(out, examples, options)
    total = sum(len(exs) for split in plan for _, exs in plan[split])
    bar = Progress(total, "write", "ex", enabled=options.progress)
    result: dict[str, Any] = {}
    try:
        for split in plan:
            result[split] = []
            result[f"{split}/counts"] = []
            for name, exs in plan[split]:
                final, tmp = out / name, out / f"{name}.tmp"
                with TFRecordWriter(tmp) as writer:
                    for ex in exs:
                        writer.write(_encode(ex))
                        bar.update(1)
                os.replace(tmp, final)
                result[split].append(str(final))
                result[f"{split}/counts"].append(len(exs))
    finally:
        bar.close()
    return result
