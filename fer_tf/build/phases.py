"""The phases of a record build, in order, and :func:`build_records` that runs them.

1. **read sources** (:func:`read_sources`): spreadsheets -> rows with their selected AU labels;
   bad rows, duplicates and (``drop_unknown``) rows with unknown labels are set aside. The rows
   and the URLs seen are streamed into stores that move to disk past a threshold
   (:mod:`fer_tf.build.spill`), so the build process's memory does not grow with the URLs. For a local
   dataset source (``source="folder"``, ``"ckplus"``...), :func:`fer_tf.build.ingest.
   read_local_sources` checks the root first, then reads the source's items and issues;
2. **fetch and process** (:func:`fer_tf.build.local.fetch_and_process`): download threads and a
   process pool, both resumable through the cache; local files, data and video frames go to the
   same pool (:func:`fer_tf.build.process.process_local`);
3. **split and shard** (:func:`split_examples`, :func:`fer_tf.build.splits.split_local`,
   :func:`fer_tf.build.shards.write_shards`): each example keeps its dataset's partition or goes
   to ``train``/``val``/``test`` by a hash of its id (or subject), gets its subject-independent
   fold, and is sorted by id, cut into shards written under temporary names and renamed;
4. **report** (:func:`fer_tf.build.report.write_reports`): ``errors.jsonl``, ``skipped.jsonl``,
   ``manifest.json`` and the :class:`~fer_tf.build.summary.BuildSummary`.

TensorFlow is never imported: records are encoded and framed by :mod:`fer_tf.records`' pure-Python
writer (byte-identical to ``tf.io.TFRecordWriter``). A rerun of the same build after a crash (even
SIGKILL) downloads nothing already cached and writes exactly the records an uninterrupted run
writes: the output depends only on the inputs, the options and the cached originals.
"""

from __future__ import annotations

import hashlib
import os
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_tf import facs
from fer_tf.build.local import FetchOutcome, fetch_and_process
from fer_tf.build.options import BuildOptions
from fer_tf.build.report import write_reports
from fer_tf.build.shards import SPLITS, write_shards
from fer_tf.build.spill import DEFAULT_SPILL_THRESHOLD, ExampleStore, SpillList, SpillMap
from fer_tf.build.splits import split_of
from fer_tf.build.summary import BuildError, BuildSummary
from fer_tf.sources.download import FAILURE_CATEGORIES, DownloadCache
from fer_tf.sources.spreadsheet import (
    SKIP_REASONS,
    SheetRow,
    SheetRowCodec,
    SpreadsheetData,
    SpreadsheetError,
)
from fer_tf.sources.spreadsheet import read_spreadsheets as _read_spreadsheets

__all__ = [
    "Inputs",
    "SheetExample",
    "read_sources",
    "split_examples",
    "example_store",
    "build_local",
    "build_records",
]

#: Spreadsheet rows (and URLs seen) phase 1 keeps in memory before moving them to disk.
ROW_SPILL_THRESHOLD = DEFAULT_SPILL_THRESHOLD


@dataclass
class Inputs:
    """The read-sources phase's result.

    Attributes:
        data: what the spreadsheets held.
        au_ids: the AU columns stored (selected, or every one found).
        rows: the rows to fetch, in spreadsheet order (a :class:`~fer_tf.build.spill.SpillList`
            from :func:`read_sources`: on disk past a threshold; :meth:`close` deletes it).
        skipped: ``skipped.jsonl`` entries so far (bad rows, duplicates, unknown labels).
        sheet_errors: unusable sheets (manifest ``sheet_errors``).
        warnings: notes for the user.
    """

    data: SpreadsheetData
    au_ids: tuple[int, ...]
    rows: Sequence[SheetRow] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    sheet_errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    failure_categories: tuple[str, ...] = FAILURE_CATEGORIES
    skip_reasons: tuple[str, ...] = SKIP_REASONS
    emotion_names: tuple[str, ...] = facs.EMOTIONS

    def labels_of(self, row: SheetRow) -> Sequence[int]:
        """``row``'s AU labels for :attr:`au_ids` (one signed byte each), computed when needed:
        no per-URL map of labels is kept."""
        return array("b", row.au(self.au_ids))

    @property
    def total_rows(self) -> int:
        """Spreadsheet data rows (``written + failed + skipped`` at the end)."""
        return self.data.total_rows

    def close(self) -> None:
        """Delete the rows' temporary file, if they were moved to disk."""
        for rows in (self.rows, self.data.rows):
            close = getattr(rows, "close", None)
            if close is not None:
                close()

    def add_to_manifest(self, manifest: dict[str, Any], examples: dict[str, Any]) -> None:
        """Add the spreadsheet fields (inputs, sheet errors, blank rows, source, protocol)."""
        manifest.update(
            inputs=self.data.files,
            sheet_errors=self.sheet_errors,
            source="spreadsheet",
            label_mapping={},
            protocol="",
            folds=0,
            label_lengths={"au": len(self.au_ids), "au_intensity": 0, "emotion_dist": 0},
        )
        manifest["counts"]["blank_rows"] = self.data.blank_rows


def _unknown_label_entry(row: SheetRow, unknown: list[int]) -> dict[str, Any]:
    return {
        "file": row.file,
        "sheet": row.sheet,
        "row": row.row,
        "source": row.source,
        "reason": "unknown_label",
        "detail": f"unknown label for AU {unknown} (drop_unknown)",
    }


def read_sources(options: BuildOptions, threshold: int | None = None) -> Inputs:
    """Phase 1: read the spreadsheets and choose the rows to fetch.

    The rows are streamed into a :class:`~fer_tf.build.spill.SpillList` and the duplicate check
    uses a :class:`~fer_tf.build.spill.SpillMap` of the URLs seen: both move to a temporary
    SQLite file under ``cache_dir`` past ``threshold`` entries, so memory does not grow with the
    number of URLs. Close the result (:meth:`Inputs.close`) when done with it.

    Args:
        options: the build options.
        threshold: rows kept in memory (default :data:`ROW_SPILL_THRESHOLD`).

    Returns:
        The :class:`Inputs`.

    Raises:
        SpreadsheetError: a spreadsheet is missing, unreadable, empty or has no URL column, or no
            row of any input can be used.
        BuildError: the rows had to move to disk and the cache directory is not writable.
    """
    limit = ROW_SPILL_THRESHOLD if threshold is None else threshold
    codec = SheetRowCodec()

    def row_list() -> SpillList:
        return SpillList(options.cache_root, limit, encode=codec.encode, decode=codec.decode,
                         prefix="rows")  # fmt: skip

    rows, seen = row_list(), SpillMap(options.cache_root, limit, prefix="seen")
    try:
        data = _read_spreadsheets(options.paths, rows=rows, seen=seen)
    except BaseException:
        rows.close()
        raise
    finally:
        seen.close()  # only the duplicate check needs it
    au_ids = options.au_ids if options.au_ids is not None else data.au_ids
    inputs = Inputs(data=data, au_ids=tuple(au_ids))
    if not au_ids:
        inputs.warnings.append(
            "no AU columns found or selected: records hold an empty label/au list"
        )
    missing = [a for a in au_ids if a not in data.au_ids]
    if missing:
        inputs.warnings.append(
            f"selected AUs {missing} are in no spreadsheet: their labels are -1 (unknown)"
        )
    inputs.skipped = [i.to_json() for i in data.issues if i.reason != "bad_sheet"]
    inputs.sheet_errors = [i.to_json() for i in data.issues if i.reason == "bad_sheet"]
    try:
        if not options.drop_unknown:
            inputs.rows = data.rows  # every row is fetched: no copy
        else:
            inputs.rows = kept = row_list()
            for row in data.rows:
                labels = row.au(au_ids)
                if any(v == -1 for v in labels):
                    unknown = [a for a, v in zip(au_ids, labels) if v == -1]
                    inputs.skipped.append(_unknown_label_entry(row, unknown))
                    continue
                kept.append(row)
            rows.close()
        if not inputs.rows:
            raise SpreadsheetError(_no_usable_rows(options.paths, data, inputs.skipped))
    except BaseException:
        inputs.close()
        raise
    return inputs


def _no_usable_rows(paths: Sequence[Path], data: SpreadsheetData, skipped: list[Any]) -> str:
    names = ", ".join(f"'{p}'" for p in paths)
    reasons = Counter(str(s["reason"]) for s in skipped)
    why = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
    hint = (
        " (drop_unknown: every row had an unknown selected AU)"
        if "unknown_label" in reasons
        else ""
    )
    return (
        f"No usable row in {names}: all {data.total_rows} data rows were skipped ({why}){hint}. "
        f"Expected rows of an http(s) image URL followed by AU labels (1/0/999)."
    )


@dataclass(slots=True)
class SheetExample:
    """One spreadsheet example on its way to a shard: a slotted record (a third of a dict's
    memory per example) that reads like one (``ex["au"]``, ``ex.get("size")``), as
    :class:`~fer_tf.build.ingest.LocalExample` does, so the shard writer and the label statistics
    take either.

    Attributes:
        id: the record id (hex SHA-1 of ``source``).
        source: the URL.
        path: the JPEG stored in the record.
        size: ``(width, height)`` of ``path`` when known.
        The others: the record's labels (see :mod:`fer_tf.records`).
    """

    id: str
    source: str
    path: str
    size: tuple[int, int] | None
    au: Sequence[int]
    valence: float
    arousal: float
    emotion: int
    posed: int
    subject: str
    dataset: str = "spreadsheet"

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """``ex.get(key, default)``, like a dict."""
        return getattr(self, key, default)


def _sheet_tuple(ex: SheetExample) -> tuple[Any, ...]:
    return (ex.id, ex.source, ex.path, ex.size, ex.au, ex.valence, ex.arousal, ex.emotion,
            ex.posed, ex.subject, ex.dataset)  # fmt: skip


def _sheet_example(t: tuple[Any, ...]) -> SheetExample:
    return SheetExample(*t)


def example_store(options: BuildOptions, threshold: int | None = None) -> ExampleStore:
    """The phase 3 store of a spreadsheet build (spills under ``cache_dir`` past ``threshold``).

    Args:
        options: the build options (``cache_root``, ``test_fraction``).
        threshold: examples kept in memory (default
            :data:`~fer_tf.build.spill.DEFAULT_SPILL_THRESHOLD`).

    Returns:
        An empty :class:`~fer_tf.build.spill.ExampleStore` (close it after the reports).
    """
    splits = SPLITS + (("test",) if options.test_fraction > 0 else ())
    return ExampleStore(
        splits,
        options.cache_root,
        DEFAULT_SPILL_THRESHOLD if threshold is None else threshold,
        encode=_sheet_tuple,
        decode=_sheet_example,
    )


class _Splitter:
    """Phase 3a, one ready source at a time: its example goes to its split in the store."""

    def __init__(self, inputs: Inputs, options: BuildOptions, add: Any) -> None:
        self.inputs = inputs
        self.add = add
        self.by_subject = options.resolved_split_by == "subject"
        self.seed = options.seed
        self.val, self.test = options.resolved_val_fraction, options.test_fraction
        self.fallback = 0  # rows whose missing subject fell back to their id

    def __call__(self, row: SheetRow, path: str, size: tuple[int, int] | None) -> None:
        url = row.source
        ex_id = hashlib.sha1(url.encode("utf-8")).hexdigest()
        key = ex_id
        if self.by_subject:
            if row.subject:
                key = "subject:" + row.subject
            else:
                self.fallback += 1
        self.add(
            split_of(key, self.seed, self.val, self.test),
            SheetExample(
                id=ex_id,
                source=url,
                path=path,
                size=size,
                au=self.inputs.labels_of(row),
                valence=row.valence,
                arousal=row.arousal,
                emotion=row.emotion,
                posed=row.posed,
                subject=row.subject,
            ),
        )


def split_examples(
    inputs: Inputs,
    fetched: FetchOutcome,
    options: BuildOptions,
    store: ExampleStore | None = None,
) -> tuple[dict[str, Any], int]:
    """Phase 3a: the examples of every split, from ``fetched.ready`` (the Beam runner's way; the
    local build splits each source as it becomes ready, see :func:`build_records`).

    Args:
        inputs: phase 1's result.
        fetched: phase 2's result.
        options: the build options (``split_by``, ``seed``, ``val_fraction``, ``test_fraction``).
        store: where the examples go (:func:`example_store`; it may spill them to disk). None:
            plain lists, unsorted (:func:`write_shards` sorts them by id).

    Returns:
        ``(examples per split, rows whose missing subject fell back to their id)``; with a
        ``store``, the examples per split are its :meth:`~ExampleStore.views` (sorted by id).
    """
    splits = SPLITS + (("test",) if options.test_fraction > 0 else ())
    lists: dict[str, list[SheetExample]] = {s: [] for s in splits}
    add = store.add if store is not None else (lambda split, ex: lists[split].append(ex))
    splitter = _Splitter(inputs, options, add)
    for row in inputs.rows:  # spreadsheet order; no second map of URL -> row
        path = fetched.ready.get(row.source)
        if path is not None:
            splitter(row, path, fetched.dims.get(path))
    return (store.views() if store is not None else lists), splitter.fallback


def _open_cache(options: BuildOptions) -> DownloadCache:
    out = options.out
    options.check_paths(error=BuildError)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"Cannot create the output directory '{out}': {exc}.") from None
    try:
        return DownloadCache(options.cache_root)
    except OSError as exc:
        raise BuildError(
            f"The cache directory '{options.cache_root}' is not writable: {exc}."
        ) from None


def _prepare_output(options: BuildOptions) -> None:
    options.check_paths(error=BuildError)
    for d in (options.out, options.cache_root):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BuildError(f"Cannot create the directory '{d}': {exc}.") from None


def build_local(options: BuildOptions) -> BuildSummary:
    """A build from a local dataset source (``options.source`` other than ``"spreadsheet"``).

    Args:
        options: the build options.

    Returns:
        The :class:`~fer_tf.build.summary.BuildSummary`.

    Raises:
        fer_tf.sources.base.RootError: the root does not hold the dataset (before any work).
        fer_tf.sources.base.SourceError: the dataset cannot be read at all.
        BuildError: output not writable; folds that cannot be made; nothing usable.
        FailureRateExceeded: ``max_failure_rate`` was exceeded (records were written).
    """
    from fer_tf.build.ingest import read_local_sources
    from fer_tf.build.process import make_pool, process_local
    from fer_tf.build.splits import split_local

    t0 = time.monotonic()
    source = options.make_source()
    source.check_root()  # a wrong root fails here, before any work
    _prepare_output(options)
    pool = make_pool(options.resolved_workers)  # forked now, while this process is small
    try:
        inputs = read_local_sources(options, options.cache_root, source)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    if not inputs.examples:
        pool.shutdown()
        raise BuildError(
            f"Source '{source.name}' found no usable image under '{source.root}' "
            f"({len(inputs.failures)} failures, {len(inputs.skipped)} skipped)."
        )
    timings = {"read": time.monotonic() - t0}
    t1 = time.monotonic()
    fetched = process_local(
        inputs,
        options.cache_root / "processed" / options.fingerprint(),
        options.cache_root / "frames",
        options.process_options(),
        workers=options.resolved_workers,
        progress=options.progress,
        pool=pool,
    )
    timings["fetch_process"] = time.monotonic() - t1
    t2 = time.monotonic()
    inputs.finish_labels()
    examples, plan = split_local(inputs.examples, options)
    inputs.plan = plan
    shards = write_shards(options, examples)
    timings["write"] = time.monotonic() - t2
    fallback = plan.subject_fallback
    return write_reports(options, inputs, fetched, examples, shards, fallback, timings, t0)


def build_records(
    options: BuildOptions | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> BuildSummary:
    """Read a dataset (spreadsheets of image URLs, or a local dataset source) into TFRecords.

    Writes validated, sharded schema-v2 records. The spreadsheet path downloads every URL; a local
    source (``source="folder"``, ``"ckplus"``, ...; ``input`` its unpacked root) reads files,
    encoded data and video frames from disk.

    Output files in ``output_dir``: ``<split>-NNNNN-of-MMMMM.tfrecord``, ``manifest.json``,
    ``errors.jsonl`` (one line per failed source) and ``skipped.jsonl`` (one line per skipped row);
    see ``docs/records.md``. Running the same build again (after a crash too) resumes: cached
    originals are not downloaded again and the result is byte-identical.

    Args:
        options: a :class:`~fer_tf.build.options.BuildOptions`; or, as a shorthand, the
            spreadsheets (or, with ``source=`` a local source, the dataset root), with
            ``output_dir`` and any other field as keywords
            (``build_records("urls.xlsx", "records", aus="emotionet11")``,
            ``build_records("FER/", "records", source="folder")``).
        output_dir: the records directory (shorthand form only).
        **overrides: other :class:`BuildOptions` fields (shorthand form only).

    Returns:
        A :class:`~fer_tf.build.summary.BuildSummary`.

    Raises:
        ValueError: a bad option (the message names it and says what is accepted).
        TypeError: ``output_dir`` or keywords given together with a :class:`BuildOptions`.
        fer_tf.sources.spreadsheet.SpreadsheetError: a spreadsheet is missing, unreadable, empty,
            has no URL column, or no row can be used.
        fer_tf.sources.base.SourceError: a local dataset root that does not hold the dataset
            (:class:`~fer_tf.sources.base.RootError`) or cannot be read.
        BuildError: the output or cache directory is not writable.
        FailureRateExceeded: ``max_failure_rate`` was exceeded (records were written).
    """
    if isinstance(options, BuildOptions):
        if output_dir is not None or overrides:
            raise TypeError("Pass either a BuildOptions or spreadsheets and keywords, not both.")
    else:
        if output_dir is None:
            raise TypeError("build_records() needs an output_dir (or a BuildOptions).")
        if overrides.get("source", "spreadsheet") != "spreadsheet" and "input" not in overrides:
            overrides["input"], options = options, None  # the shorthand's first argument
        options = BuildOptions(options, output_dir, **overrides)
    if options.runner == "beam":
        from fer_tf.build.beam import build_beam

        return build_beam(options)
    if options.local:
        return build_local(options)
    t0 = time.monotonic()
    inputs = read_sources(options)
    # Each ready source goes straight to its split in the store (spilled to disk past a
    # threshold), as the rows of phase 1 do: nothing per URL is kept in memory between phases.
    store = example_store(options)
    try:
        cache = _open_cache(options)
        timings = {"read": time.monotonic() - t0}
        t1 = time.monotonic()
        splitter = _Splitter(inputs, options, store.add)
        fetched = fetch_and_process(
            inputs.rows,
            cache,
            options.cache_root / "processed" / options.fingerprint(),
            options.process_options(),
            download_options=options.download_options(),
            workers=options.resolved_workers,
            retry_failed=options.retry_failed,
            progress=options.progress,
            on_ready=splitter,
        )
        timings["fetch_process"] = time.monotonic() - t1
        t2 = time.monotonic()
        examples, fallback = store.views(), splitter.fallback
        shards = write_shards(options, examples)
        timings["write"] = time.monotonic() - t2
        return write_reports(options, inputs, fetched, examples, shards, fallback, timings, t0)
    finally:
        store.close()
        inputs.close()
