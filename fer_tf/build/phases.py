"""The phases of a record build, in order, and :func:`build_records` that runs them.

1. **read sources** (:func:`read_sources`): spreadsheets -> rows with their selected AU labels;
   bad rows, duplicates and (``drop_unknown``) rows with unknown labels are set aside;
2. **fetch and process** (:func:`fer_tf.build.local.fetch_and_process`): download threads and a
   process pool, both resumable through the cache;
3. **split and shard** (:func:`split_examples`, :func:`fer_tf.build.shards.write_shards`): each
   example goes to ``train``/``val`` by a hash of its id (or subject), sorted by id, cut into
   shards written under temporary names and renamed;
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
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_tf.build.local import FetchOutcome, fetch_and_process
from fer_tf.build.options import BuildOptions
from fer_tf.build.report import write_reports
from fer_tf.build.shards import SPLITS, write_shards
from fer_tf.build.summary import BuildError, BuildSummary
from fer_tf.sources.download import DownloadCache
from fer_tf.sources.spreadsheet import SheetRow, SpreadsheetData, SpreadsheetError
from fer_tf.sources.spreadsheet import read_spreadsheets as _read_spreadsheets

__all__ = ["Inputs", "read_sources", "split_examples", "build_records"]


@dataclass
class Inputs:
    """The read-sources phase's result.

    Attributes:
        data: what the spreadsheets held.
        au_ids: the AU columns stored (selected, or every one found).
        labels: URL -> AU labels (for ``au_ids``) of every row to fetch.
        rows: the rows to fetch, in spreadsheet order.
        skipped: ``skipped.jsonl`` entries so far (bad rows, duplicates, unknown labels).
        sheet_errors: unusable sheets (manifest ``sheet_errors``).
        warnings: notes for the user.
    """

    data: SpreadsheetData
    au_ids: tuple[int, ...]
    labels: dict[str, tuple[int, ...]] = field(default_factory=dict)
    rows: list[SheetRow] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    sheet_errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _unknown_label_entry(row: SheetRow, unknown: list[int]) -> dict[str, Any]:
    return {
        "file": row.file,
        "sheet": row.sheet,
        "row": row.row,
        "source": row.source,
        "reason": "unknown_label",
        "detail": f"unknown label for AU {unknown} (drop_unknown)",
    }


def read_sources(options: BuildOptions) -> Inputs:
    """Phase 1: read the spreadsheets and choose the rows to fetch.

    Args:
        options: the build options.

    Returns:
        The :class:`Inputs`.

    Raises:
        SpreadsheetError: a spreadsheet is missing, unreadable, empty or has no URL column, or no
            row of any input can be used.
    """
    data = _read_spreadsheets(options.paths)
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
    for row in data.rows:
        labels = row.au(au_ids)
        if options.drop_unknown and any(v == -1 for v in labels):
            unknown = [a for a, v in zip(au_ids, labels) if v == -1]
            inputs.skipped.append(_unknown_label_entry(row, unknown))
            continue
        inputs.rows.append(row)
        inputs.labels[row.source] = labels
    if not inputs.rows:
        raise SpreadsheetError(_no_usable_rows(options.paths, data, inputs.skipped))
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


def _split_of(key: str, seed: int, val_fraction: float) -> str:
    if val_fraction <= 0:
        return "train"
    h = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2.0**64
    return "val" if u < val_fraction else "train"


def split_examples(
    inputs: Inputs, fetched: FetchOutcome, options: BuildOptions
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Phase 3a: the examples of every split (unsorted; :func:`write_shards` sorts them by id).

    Args:
        inputs: phase 1's result.
        fetched: phase 2's result.
        options: the build options (``split_by``, ``seed``, ``val_fraction``).

    Returns:
        ``(examples per split, rows whose missing subject fell back to their id)``.
    """
    by_url = {row.source: row for row in inputs.rows}
    examples: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    fallback = 0
    for url, path in fetched.ready.items():
        row = by_url[url]
        ex_id = hashlib.sha1(url.encode("utf-8")).hexdigest()
        key = ex_id
        if options.split_by == "subject":
            if row.subject:
                key = "subject:" + row.subject
            else:
                fallback += 1
        examples[_split_of(key, options.seed, options.val_fraction)].append(
            {
                "id": ex_id,
                "source": url,
                "path": path,
                "size": fetched.dims.get(path),
                "au": inputs.labels[url],
                "valence": row.valence,
                "arousal": row.arousal,
                "emotion": row.emotion,
                "posed": row.posed,
                "subject": row.subject,
            }
        )
    return examples, fallback


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


def build_records(
    options: BuildOptions | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> BuildSummary:
    """Read spreadsheets of image URLs, download, validate and write sharded schema-v1 TFRecords.

    Output files in ``output_dir``: ``<split>-NNNNN-of-MMMMM.tfrecord``, ``manifest.json``,
    ``errors.jsonl`` (one line per failed source) and ``skipped.jsonl`` (one line per skipped row);
    see ``docs/records.md``. Running the same build again (after a crash too) resumes: cached
    originals are not downloaded again and the result is byte-identical.

    Args:
        options: a :class:`~fer_tf.build.options.BuildOptions`; or, as a shorthand, the
            spreadsheets, with ``output_dir`` and any other field as keywords
            (``build_records("urls.xlsx", "records", aus="emotionet11")``).
        output_dir: the records directory (shorthand form only).
        **overrides: other :class:`BuildOptions` fields (shorthand form only).

    Returns:
        A :class:`~fer_tf.build.summary.BuildSummary`.

    Raises:
        ValueError: a bad option (the message names it and says what is accepted).
        TypeError: ``output_dir`` or keywords given together with a :class:`BuildOptions`.
        fer_tf.sources.spreadsheet.SpreadsheetError: a spreadsheet is missing, unreadable, empty,
            has no URL column, or no row can be used.
        BuildError: the output or cache directory is not writable.
        FailureRateExceeded: ``max_failure_rate`` was exceeded (records were written).
    """
    if isinstance(options, BuildOptions):
        if output_dir is not None or overrides:
            raise TypeError("Pass either a BuildOptions or spreadsheets and keywords, not both.")
    else:
        if output_dir is None:
            raise TypeError("build_records() needs an output_dir (or a BuildOptions).")
        options = BuildOptions(options, output_dir, **overrides)
    t0 = time.monotonic()
    inputs = read_sources(options)
    cache = _open_cache(options)
    timings = {"read": time.monotonic() - t0}
    t1 = time.monotonic()
    fetched = fetch_and_process(
        inputs.rows,
        cache,
        options.cache_root / "processed" / options.fingerprint(),
        options.process_options(),
        download_options=options.download_options(),
        workers=options.resolved_workers,
        retry_failed=options.retry_failed,
        progress=options.progress,
    )
    timings["fetch_process"] = time.monotonic() - t1
    t2 = time.monotonic()
    examples, fallback = split_examples(inputs, fetched, options)
    shards = write_shards(options, examples)
    timings["write"] = time.monotonic() - t2
    return write_reports(options, inputs, fetched, examples, shards, fallback, timings, t0)
