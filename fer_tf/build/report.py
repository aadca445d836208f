"""Phase 4: ``errors.jsonl``, ``skipped.jsonl``, ``manifest.json`` and the build summary."""

from __future__ import annotations

import json
import math
import os
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fer_tf import facs
from fer_tf.build.options import BuildOptions
from fer_tf.build.summary import BuildError, BuildSummary, FailureRateExceeded

if TYPE_CHECKING:
    from fer_tf.build.ingest import LocalInputs
    from fer_tf.build.local import FetchOutcome
    from fer_tf.build.phases import Inputs

__all__ = ["ERRORS_NAME", "SKIPPED_NAME", "label_stats", "write_reports"]

ERRORS_NAME = "errors.jsonl"
SKIPPED_NAME = "skipped.jsonl"


def _write_jsonl(path: Path, entries: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for e in entries:
            fh.write(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)


def label_stats(
    examples: Sequence[Any], au_ids: Sequence[int], emotion_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Label counts and distributions of one split (manifest ``label_stats``).

    Args:
        examples: the split's examples (``au``, ``valence``, ``arousal``, ``emotion``, ``posed``,
            ``subject``).
        au_ids: the AU ids of the ``au`` labels.
        emotion_names: the class names ``emotion`` indexes (default :data:`fer_tf.facs.EMOTIONS`).

    Returns:
        A JSON-able dict (NaN-free: unknown values are counted, not averaged).
    """
    au = {str(a): {"present": 0, "absent": 0, "unknown": 0} for a in au_ids}
    cells = [au[str(a)] for a in au_ids]
    # One pass (the examples may be streamed from disk); only the known valence/arousal values
    # are kept, 8 bytes each, for the mean and standard deviation.
    values = {"valence": array("d"), "arousal": array("d")}
    emotion: Counter[int] = Counter()
    posed: Counter[int] = Counter()
    subjects: set[str] = set()
    count = 0
    v2 = _V2Stats(len(au_ids))
    for ex in examples:
        count += 1
        for cell, v in zip(cells, ex["au"]):
            cell["present" if v == 1 else "absent" if v == 0 else "unknown"] += 1
        for key, vals in values.items():
            if not math.isnan(ex[key]):
                vals.append(ex[key])
        emotion[ex["emotion"]] += 1
        posed[ex["posed"]] += 1
        if ex["subject"]:
            subjects.add(ex["subject"])
        v2.add(ex)

    def dist(key: str) -> dict[str, Any]:
        vals = values[key]
        if not vals:
            return {"known": 0, "mean": None, "std": None}
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
        return {"known": len(vals), "mean": round(mean, 6), "std": round(std, 6)}

    names = facs.EMOTIONS if emotion_names is None else emotion_names
    stats = {
        "count": count,
        "au": au,
        "valence": dist("valence"),
        "arousal": dist("arousal"),
        "emotion": {
            **{name: emotion.get(i, 0) for i, name in enumerate(names)},
            "unknown": emotion.get(-1, 0),
        },
        "posed": {
            "posed": posed.get(1, 0),
            "spontaneous": posed.get(0, 0),
            "unknown": posed.get(-1, 0),
        },
        "subjects": len(subjects),
    }
    stats.update(v2.result(au_ids))
    return stats


class _V2Stats:
    # Known intensities per AU and examples with a soft label: what fer-tf-train's label checks
    # and soft_labels=auto read. Only for builds whose examples carry those lists (local sources),
    # so spreadsheet manifests keep their v1 shape.
    def __init__(self, n_aus: int) -> None:
        self.known = [0] * n_aus
        self.any_intensity = self.any_dist = False
        self.dists = 0

    def add(self, ex: Any) -> None:
        values = getattr(ex, "au_intensity", None)
        if values:
            self.any_intensity = True
            for i, v in enumerate(values):
                self.known[i] += not math.isnan(v)
        d = getattr(ex, "emotion_dist", None)
        if d:
            self.any_dist = True
            self.dists += any(not math.isnan(x) for x in d)

    def result(self, au_ids: Sequence[int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.any_intensity:
            out["au_intensity"] = {str(a): {"known": n} for a, n in zip(au_ids, self.known)}
        if self.any_dist:
            out["emotion_dist"] = {"known": self.dists}
        return out


def _manifest(
    options: BuildOptions,
    inputs: Any,
    summary: BuildSummary,
    examples: dict[str, list[Any]],
    shards: dict[str, Any],
    fallback: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from fer_tf import __version__
    from fer_tf.records import SCHEMA_VERSION

    names = list(inputs.emotion_names)
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "fer_tf_version": __version__,
        "created_by": "fer_tf.build.build_records",
        "arguments": options.manifest_arguments(),
        "au_ids": list(inputs.au_ids),
        "emotion_names": names,
        "image": {
            "format": "jpeg",
            "image_size": options.image_size,
            "jpeg_quality": options.jpeg_quality,
            "face_crop": options.face_crop,
            "equalize": bool(options.equalize),
            "reencode_jpeg": bool(options.reencode_jpeg),
        },
        "split": {
            "by": options.resolved_split_by,
            "val_fraction": options.resolved_val_fraction,
            "test_fraction": options.test_fraction,
            "seed": options.seed,
            "subject_fallback_to_id": fallback,
        },
        "splits": {
            s: {
                "count": len(examples[s]),
                "shards": [Path(p).name for p in shards[s]],
                "shard_counts": shards[f"{s}/counts"],
            }
            for s in examples
        },
        "label_stats": {s: label_stats(examples[s], inputs.au_ids, names) for s in examples},
        "counts": {
            "rows": summary.rows,
            "written": summary.written,
            "failed": summary.failed,
            "skipped": summary.skipped,
        },
        "failures": summary.failures,
        "skipped": summary.skipped_by_reason,
        "errors_file": ERRORS_NAME,
        "skipped_file": SKIPPED_NAME,
    }
    inputs.add_to_manifest(manifest, examples)
    manifest.update(extra or {})
    return manifest


def _order(e: dict[str, Any]) -> tuple[Any, ...]:
    # The tie-breakers make the order independent of when pool jobs finished.
    return (
        str(e.get("file", "")),
        str(e.get("sheet", "")),
        int(e.get("row", 0)),
        str(e.get("source", "")),
        str(e.get("detail", "")),
    )


def write_reports(
    options: BuildOptions,
    inputs: Inputs | LocalInputs,
    fetched: FetchOutcome,
    examples: dict[str, list[Any]],
    shards: dict[str, Any],
    fallback: int,
    timings: dict[str, float],
    started: float,
    extra: dict[str, Any] | None = None,
) -> BuildSummary:
    """Write ``errors.jsonl``, ``skipped.jsonl`` and ``manifest.json``; check the failure rate.

    Args:
        options: the build options.
        inputs: phase 1's result (spreadsheet :class:`~fer_tf.build.phases.Inputs` or local
            :class:`~fer_tf.build.ingest.LocalInputs`: both give ``total_rows``, ``failures``,
            ``skipped``, ``warnings``, ``au_ids``, ``emotion_names``, ``failure_categories``,
            ``skip_reasons`` and ``add_to_manifest``).
        fetched: phase 2's result.
        examples: examples per split, in split order.
        shards: :func:`fer_tf.build.shards.write_shards`' result.
        fallback: rows whose missing subject fell back to their id.
        timings: seconds per phase so far.
        started: ``time.monotonic()`` at the start of the build.
        extra: top-level manifest fields to add (the Beam runner's ``runner`` and note).

    Returns:
        The :class:`BuildSummary`.

    Raises:
        BuildError: the counts do not add up (a bug; no manifest is written).
        FailureRateExceeded: ``max_failure_rate`` was exceeded (everything was written).
    """
    out = options.out
    failures = sorted(inputs.failures + fetched.failures, key=_order)
    skipped = sorted(inputs.skipped + fetched.skipped, key=_order)
    _write_jsonl(out / ERRORS_NAME, failures)
    _write_jsonl(out / SKIPPED_NAME, skipped)
    summary = BuildSummary(output_dir=str(out), warnings=inputs.warnings)
    summary.downloaded, summary.cached = fetched.downloaded, fetched.cached
    summary.processed, summary.timings = fetched.processed, timings
    summary.frames_decoded = fetched.frames_decoded
    summary.failures = {c: 0 for c in inputs.failure_categories}
    summary.failures.update(Counter(f["category"] for f in failures))
    summary.skipped_by_reason = {r: 0 for r in inputs.skip_reasons}
    summary.skipped_by_reason.update(Counter(s["reason"] for s in skipped))
    summary.rows = inputs.total_rows
    summary.written = sum(len(v) for v in examples.values())
    summary.failed, summary.skipped = len(failures), len(skipped)
    summary.splits = {s: len(v) for s, v in examples.items()}
    summary.shards = {s: [Path(p).name for p in shards[s]] for s in examples}
    if summary.rows != summary.written + summary.failed + summary.skipped:
        raise BuildError(  # a bug, never expected: refuse to write an inconsistent manifest
            f"Internal accounting error: rows={summary.rows} != written={summary.written} + "
            f"failed={summary.failed} + skipped={summary.skipped}. Please report this."
        )
    from fer_tf.records import write_manifest

    manifest = _manifest(options, inputs, summary, examples, shards, fallback, extra)
    summary.manifest = str(write_manifest(out, manifest))
    summary.errors = str(out / ERRORS_NAME)
    summary.elapsed = time.monotonic() - started
    limit = options.max_failure_rate
    if limit is not None and summary.failure_rate > limit:
        raise FailureRateExceeded(
            f"{summary.failed} of {summary.rows - summary.skipped} sources failed "
            f"({summary.failure_rate:.1%}), more than max_failure_rate={limit:.1%}. "
            f"The records and '{summary.errors}' were written; see the error categories there.",
            summary,
        )
    return summary
