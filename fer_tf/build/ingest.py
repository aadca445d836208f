"""Phase 1 for local dataset sources: a :class:`~fer_tf.sources.base.Source` -> compact examples.

The source's root is checked first (a wrong root fails before any work, with what was expected and
what was found); then its items are read one at a time: labels are mapped onto the manifest's
``au_ids`` and ``emotion_names``, ``data`` items are written into the cache (so they are processed
like files), and every :class:`~fer_tf.sources.base.Issue` becomes an ``errors.jsonl``
(failure) or ``skipped.jsonl`` (deliberate skip) entry. Only small label records are kept per
item (:class:`LocalExample`, with ``__slots__``), never image bytes.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_tf.build.options import BuildOptions
from fer_tf.records import image_id
from fer_tf.sources.base import Issue, Source, SourceItem

__all__ = ["LocalExample", "LocalInputs", "read_local_sources", "LOCAL_FAILURES", "LOCAL_SKIPS"]

#: Failure categories of local builds, listed in the summary even when zero.
LOCAL_FAILURES = ("corrupt_image", "unreadable_frame", "bad_label")
#: Skip reasons of local builds, listed in the summary even when zero.
LOCAL_SKIPS = ("duplicate", "no_face", "unknown_label")


@dataclass(slots=True)
class LocalExample:
    """What the build keeps of one :class:`~fer_tf.sources.base.SourceItem` (no image bytes).

    It reads like the spreadsheet path's example dicts (``ex["au"]``, ``ex.get("size")``), so the
    shard writer and the label statistics take either.

    Attributes:
        source: the item's stable source string; ``id`` is its SHA-1 (a property).
        kind: ``"path"`` (an image file), ``"data"`` (bytes written into the cache) or
            ``"video"``.
        origin: the image file (or cached data), or the video file.
        path: the JPEG stored in the record (set by processing).
        size: ``(width, height)`` of ``path`` when known.
        split, fold: set by the split phase.
        dataset: the source name (``meta/dataset``).
        The others: the record's labels (see :mod:`fer_tf.records`).
    """

    source: str
    kind: str
    origin: str
    frame: int
    box: tuple[int, int, int, int] | None
    au: tuple[int, ...]
    au_intensity: tuple[float, ...] | None
    emotion: int
    emotion_dist: tuple[float, ...] | None
    valence: float
    arousal: float
    posed: int
    subject: str
    sequence: str
    partition: str | None
    dataset: str
    path: str = ""
    size: tuple[int, int] | None = None
    split: str = ""
    fold: int = -1

    @property
    def id(self) -> str:
        """The record id: hex SHA-1 of ``source`` (computed when asked: not kept per example)."""
        return image_id(self.source)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``ex.get(key, default)``, like a dict."""
        return getattr(self, key, default)


@dataclass
class LocalInputs:
    """The read phase's result for a local source.

    Attributes:
        source: the source instance (root checked).
        au_ids: the AUs stored (``--aus`` selection, or the source's).
        emotion_names: the source's class names (``label/emotion`` indexes them).
        examples: one :class:`LocalExample` per usable item, in the source's order.
        failures: ``errors.jsonl`` entries so far (source issues, bad labels).
        skipped: ``skipped.jsonl`` entries so far (source skips, duplicates).
        total_rows: items and issues seen (``written + failed + skipped`` at the end).
        warnings: notes for the user.
        plan: the split phase's :class:`~fer_tf.build.splits.FoldPlan` (set by it).
    """

    source: Source
    au_ids: tuple[int, ...]
    emotion_names: tuple[str, ...]
    examples: list[LocalExample] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    total_rows: int = 0
    warnings: list[str] = field(default_factory=list)
    plan: Any = None
    failure_categories: tuple[str, ...] = LOCAL_FAILURES
    skip_reasons: tuple[str, ...] = LOCAL_SKIPS

    def label_lengths(self) -> dict[str, int]:
        """List lengths of the records' labels (manifest ``label_lengths``)."""
        return {
            "au": len(self.au_ids),
            "au_intensity": len(self.au_ids) if self.has_intensity else 0,
            "emotion_dist": len(self.emotion_names) if self.has_dist else 0,
        }

    def finish_labels(self) -> None:
        """Give every example the same list lengths: NaN where an example lacks what others have.

        A record set either holds intensities (soft labels) for every record or for none, so a
        reader parses fixed-length lists (:func:`fer_tf.records.label_lengths`).
        """
        lengths = self.label_lengths()
        nan_i = (math.nan,) * lengths["au_intensity"]
        nan_d = (math.nan,) * lengths["emotion_dist"]
        for ex in self.examples:
            ex.au_intensity = (ex.au_intensity or nan_i) if lengths["au_intensity"] else ()
            ex.emotion_dist = (ex.emotion_dist or nan_d) if lengths["emotion_dist"] else ()

    def add_to_manifest(self, manifest: dict[str, Any], examples: dict[str, Any]) -> None:
        """Add the source's fields to ``manifest`` (source, mapping, protocol, input, folds)."""
        src, plan = self.source, self.plan
        manifest.update(
            source=src.name,
            source_description=src.description,
            label_mapping={str(k): str(v) for k, v in dict(src.label_mapping).items()},
            protocol=src.protocol,
            input={"root": str(src.root), "options": manifest["arguments"]["source_options"]},
            folds=plan.folds,
            label_lengths=self.label_lengths(),
        )
        manifest["fold_protocol"] = {
            "protocol": plan.protocol,
            "subjects_per_fold": plan.fold_subjects,
        }
        manifest["split"]["partition_used"] = plan.partition_used
        manifest["split"]["by"] = plan.split_by
        for name, exs in examples.items():
            manifest["splits"][name]["folds"] = plan.fold_sizes(exs)

    @property
    def has_intensity(self) -> bool:
        """Whether any example carries AU intensities (then every record gets a list)."""
        return any(ex.au_intensity for ex in self.examples)

    @property
    def has_dist(self) -> bool:
        """Whether any example carries a soft emotion label."""
        return any(ex.emotion_dist for ex in self.examples)


def issue_entry(issue: Issue, category: str | None = None) -> dict[str, Any]:
    """An ``errors.jsonl``/``skipped.jsonl`` entry for an :class:`Issue` (``category`` = reason)."""
    entry = issue.to_json()
    if issue.failure:
        entry["category"] = category or issue.reason
        entry["stage"] = "read"
    return entry


def _bad_label(item: SourceItem, detail: str) -> Issue:
    return Issue(item.source, 0, "bad_label", detail, failure=True)


def _labels(
    item: SourceItem, au_ids: tuple[int, ...], n_classes: int
) -> tuple[tuple[int, ...], tuple[float, ...] | None, tuple[float, ...] | None]:
    """Map an item's AU dicts onto ``au_ids``; check its labels (ValueError says what is wrong)."""
    au = tuple(int(item.au.get(a, -1)) for a in au_ids)
    bad = [v for v in au if v not in (-1, 0, 1)]
    if bad:
        raise ValueError(f"AU labels must be 1, 0 or -1 (unknown). Got {bad[0]!r}")
    intensity = None
    if item.au_intensity:
        intensity = tuple(float(item.au_intensity.get(a, math.nan)) for a in au_ids)
    if item.emotion != -1 and not 0 <= item.emotion < n_classes:
        raise ValueError(
            f"emotion must be -1 (unknown) or a class index below {n_classes}. Got {item.emotion}"
        )
    dist = None
    if len(item.emotion_dist):
        dist = tuple(float(v) for v in item.emotion_dist)
        if len(dist) != n_classes:
            raise ValueError(
                f"emotion_dist must hold one value per class ({n_classes}). Got {len(dist)}"
            )
    return au, intensity, dist


_NAN = math.nan


def _float(value: float) -> float:
    """``float(value)``, with every NaN the same object (one per example adds up)."""
    v = float(value)
    return v if v == v else _NAN


def _store_data(data: bytes, data_root: Path) -> str:
    """Write encoded image bytes into the content-addressed cache; return the file's path."""
    sha = hashlib.sha256(data).hexdigest()
    path = data_root / sha[:2] / sha
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{sha}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


class _Reader:
    """Turns a source's items and issues into :class:`LocalInputs` entries."""

    def __init__(
        self, inputs: LocalInputs, data_root: Path, name: str, drop_unknown: bool = False
    ) -> None:
        self.inputs = inputs
        self.data_root = data_root
        self.name = name
        self.drop_unknown = drop_unknown
        self.seen: set[str] = set()
        # Label tuples repeat (a few hundred AU patterns over a dataset): keep one of each.
        self.shared: dict[tuple[int, ...], tuple[int, ...]] = {}

    def intern(self, labels: tuple[int, ...]) -> tuple[int, ...]:
        return self.shared.setdefault(labels, labels)

    def report(self, issue: Issue) -> None:
        self.inputs.total_rows += 1
        target = self.inputs.failures if issue.failure else self.inputs.skipped
        target.append(issue_entry(issue))

    def take(self, item: SourceItem) -> None:
        inputs = self.inputs
        inputs.total_rows += 1
        source = item.source.strip()
        if source in self.seen:
            inputs.total_rows -= 1  # report() counts it again
            self.report(Issue(source, 0, "duplicate", "the same source twice", failure=False))
            return
        self.seen.add(source)
        try:
            au, intensity, dist = _labels(item, inputs.au_ids, len(inputs.emotion_names))
        except ValueError as exc:
            inputs.total_rows -= 1
            self.report(_bad_label(item, str(exc)))
            return
        if self.drop_unknown and -1 in au:
            unknown = [a for a, v in zip(inputs.au_ids, au) if v == -1]
            inputs.total_rows -= 1
            detail = f"unknown label for AU {unknown} (drop_unknown)"
            self.report(Issue(source, 0, "unknown_label", detail, failure=False))
            return
        if item.data is not None:
            kind, origin = "data", _store_data(item.data, self.data_root)
        elif item.video is not None:
            kind, origin = "video", str(item.video)
        else:
            kind, origin = "path", str(item.path)
        intern = self.intern
        inputs.examples.append(
            LocalExample(
                source=source,
                kind=kind,
                origin=origin,
                frame=int(item.frame),
                box=tuple(int(v) for v in item.box) if item.box is not None else None,  # type: ignore[arg-type]
                au=intern(au),
                au_intensity=intensity,
                emotion=int(item.emotion),
                emotion_dist=dist,
                valence=_float(item.valence),
                arousal=_float(item.arousal),
                posed=int(item.posed),
                subject=sys.intern(str(item.subject)),
                sequence=sys.intern(str(item.sequence)),
                partition=item.partition,
                dataset=self.name,
            )
        )


def read_local_sources(
    options: BuildOptions, cache_root: Path, source: Source | None = None
) -> LocalInputs:
    """Phase 1 (local sources): check the root, then read every item and issue.

    Args:
        options: the build options (``source``, ``input``, ``source_options``, ``aus``).
        cache_root: the cache; ``data`` items are written under ``cache_root/data``.
        source: the source instance, if already made and its root checked.

    Returns:
        The :class:`LocalInputs`.

    Raises:
        fer_tf.sources.base.RootError: the root does not hold the dataset (before any work).
        fer_tf.sources.base.SourceError: the dataset cannot be read at all.
    """
    if source is None:
        source = options.make_source()
        source.check_root()
    au_ids = tuple(options.au_ids) if options.au_ids is not None else tuple(source.au_ids)
    inputs = LocalInputs(source, au_ids, tuple(source.emotion_names))
    missing = [a for a in au_ids if source.au_ids and a not in source.au_ids]
    if missing:
        inputs.warnings.append(
            f"selected AUs {missing} are not labelled by '{source.name}': their labels are -1"
        )
    reader = _Reader(inputs, cache_root / "data", source.name, options.drop_unknown)
    for item in source.items(reader.report):
        reader.take(item)
    return inputs
