"""The Beam runner of a record build: the heavy phases as Apache Beam pipelines.

``build_records(BuildOptions(..., runner="beam", beam_options=[...]))`` (``fer-tf-build-records
... --runner beam --beam-options="..."``) runs the same four phases as the local runner
(:mod:`fer_tf.build.phases`), with the two that scale with the number of images spread over Beam
workers:

1. **read sources** (the driver, as locally): spreadsheets -> rows, or a local dataset source ->
   examples; the work list is written as JSON lines under ``<output_dir>/.fer_tf-beam/``;
2. **fetch and process** (pipeline 1): each worker fetches URLs with the
   :class:`~fer_tf.sources.download.Downloader` (its safety checks, retries and per-host caps) into
   the shared content-addressed cache and processes each original with the local runner's jobs
   (:func:`~fer_tf.build.local.triage_file`, :func:`~fer_tf.build.local.process_file`,
   :func:`~fer_tf.build.jobs.process_local_file`, :func:`~fer_tf.build.jobs.extract_frames`);
   one JSON result per source comes back (ready JPEG path, failure or skip);
3. **split and shard**: the driver assigns splits and folds with the local functions
   (:func:`~fer_tf.build.phases.split_examples`, :func:`~fer_tf.build.splits.split_local`) and
   plans the shards as the local writer does (sorted by id, the same cut); pipeline 2 encodes and
   writes each shard on a worker (temporary name, then renamed);
4. **report** (the driver): ``errors.jsonl``, ``skipped.jsonl``, ``manifest.json`` (with
   ``"runner": "beam"``) and the summary, by :func:`fer_tf.build.report.write_reports`.

So the records are those of a local build of the same inputs: same examples, labels, splits, folds
and shard boundaries (byte-identical shards, given the same cached originals). Every source gets
exactly one result; a result missing from the pipeline's output is an error, never a silent drop.

Resume: the cache (``cache_dir``) is content-addressed and shared by the workers. A worker answers
a URL already in the cache's index without the network, and an original already processed (a
``processed/<fingerprint>/`` JPEG or failure marker) without decoding; so rerunning an interrupted
build skips every source already done. Workers append their index entries to their own files
(``cache_dir/index.d/<worker>.jsonl``: no two writers share a file, which a shared file system does
not make safe), merged into ``index.jsonl`` by the driver before and after the pipeline. On a
distributed runner (Dataflow, Flink, Spark), ``output_dir`` and ``cache_dir`` must therefore be
paths every worker and the driver see alike: a shared POSIX file system (NFS, Filestore, a FUSE
mount) mounted at the same path. See ``docs/scale.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fer_tf.build.options import BuildOptions
from fer_tf.build.summary import BuildError, BuildSummary
from fer_tf.sources.download import DownloadCache, Downloader, DownloadOptions, FetchResult

try:  # the DoFns need Beam's base class; this module imports without Beam (the error comes later)
    import apache_beam as _beam

    _DoFn: Any = _beam.DoFn
except ImportError:  # pragma: no cover - exercised by the "not installed" test's import hook
    _beam = None
    _DoFn = object

__all__ = [
    "INSTALL_HINT",
    "STAGING",
    "build_beam",
    "import_beam",
    "pipeline_flags",
    "check_flags",
    "merge_index",
    "WorkerCache",
    "fetch_rows",
    "process_item",
    "write_shard",
]

#: What to install for ``runner="beam"``.
INSTALL_HINT = "pip install 'fer-tf[beam]'"
#: The work lists and results of the pipelines, under the output directory (removed at the end).
STAGING = ".fer_tf-beam"
#: Work items per staged JSON-lines file (Beam reads the files in parallel).
_LINES_PER_FILE = 5000
_NOTE = (
    "Fetch-and-process and shard writing ran as Apache Beam pipelines; sources were read, split "
    "and planned on the driver with the local runner's functions. Examples, labels, splits, folds "
    "and shard boundaries (examples sorted by id, cut as the local runner cuts them) are those of "
    "a local build of the same inputs. The 'downloaded', 'cached' and 'processed' counts are "
    "summed over the workers."
)


def import_beam() -> Any:
    """Import Apache Beam, or say how to install it.

    Returns:
        The ``apache_beam`` module.

    Raises:
        BuildError: Beam is not installed (the message names ``pip install 'fer-tf[beam]'``).
    """
    try:
        import apache_beam as beam
    except ImportError as exc:
        raise BuildError(
            f"runner='beam' needs Apache Beam, which is not installed ({exc}). Install it with "
            f"{INSTALL_HINT} (or pip install apache-beam), or use runner='local'."
        ) from None
    return beam


def pipeline_flags(options: BuildOptions) -> list[str]:
    """Beam's pipeline flags for a build: ``beam_options`` as given, the DirectRunner by default.

    Args:
        options: the build options.

    Returns:
        The flags for ``PipelineOptions``.
    """
    flags = list(options.beam_options)
    if not any(f == "--runner" or f.startswith("--runner=") for f in flags):
        flags.insert(0, "--runner=DirectRunner")
    return flags


def check_flags(flags: Sequence[str]) -> None:
    """Check Beam's flags before any work: every flag known to Beam, the runner one it can make.

    Beam itself only logs a warning for a flag it does not know (a typo would be ignored).

    Args:
        flags: :func:`pipeline_flags`.

    Raises:
        BuildError: an unknown flag, or a runner Beam cannot make (unknown, or its extra missing:
            ``apache-beam[gcp]`` for Dataflow).
    """
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.runner import create_runner

    options = PipelineOptions(list(flags))
    known = options.get_all_options()
    unknown = sorted(set(options.get_all_options(retain_unknown_options=True)) - set(known))
    if unknown:
        raise BuildError(
            "The 'beam_options' parameter must hold Apache Beam pipeline flags. Got "
            f"{['--' + u for u in unknown]} instead, which no Beam pipeline option defines "
            "(see Beam's PipelineOptions, and the runner's own options)."
        )
    runner = _beam_runner(flags)
    try:
        create_runner(runner)
    except (ValueError, ImportError, RuntimeError, AttributeError) as exc:
        raise BuildError(f"Apache Beam cannot make the runner {runner!r}: {exc}") from None


def _beam_runner(flags: Sequence[str]) -> str:
    """The Beam runner the flags name (the last ``--runner``)."""
    runner = "DirectRunner"
    for i, f in enumerate(flags):
        if f.startswith("--runner="):
            runner = f.split("=", 1)[1]
        elif f == "--runner" and i + 1 < len(flags):
            runner = flags[i + 1]
    return runner


# --------------------------------------------------------------------------------------------
# The cache as workers share it


def _load_index(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Read an index file's entries (the last line for a URL wins) into ``entries``."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
                entries[entry["url"]] = entry
            except (ValueError, KeyError, TypeError):
                continue  # a torn line (a killed worker, or one still writing)


class WorkerCache(DownloadCache):
    """A :class:`~fer_tf.sources.download.DownloadCache` for one Beam worker among many.

    Reads ``index.jsonl`` and every worker's ``index.d/*.jsonl``; appends its own entries to its
    own ``index.d/<host>-<pid>-<random>.jsonl``, and downloads into its own ``tmp/<same>/``: no
    file is written by two processes, so no worker removes or interleaves another's work.
    :func:`merge_index` folds the part files into ``index.jsonl`` when no worker runs.

    Args:
        root: the cache directory (shared by the workers).
    """

    PARTS = "index.d"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        #: Set when a batch was abandoned: the downloads then stopped end as "interrupted"
        #: failures, which are not the URL's outcome and must not be remembered.
        self.interrupted = False
        super().__init__(root)  # removes stale files in tmp/, never other workers' folders
        self._fh.close()  # index.jsonl is only appended to by the driver (merge_index)
        worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        parts = self.root / self.PARTS
        parts.mkdir(exist_ok=True)
        # The other workers' entries, kept apart from the base class's own (newer) bookkeeping.
        self._parts: dict[str, dict[str, Any]] = {}
        for part in sorted(parts.glob("*.jsonl")):
            _load_index(part, self._parts)
        self._fh = (parts / f"{worker}.jsonl").open("a", encoding="utf-8")
        self.tmp = self.tmp / worker
        self.tmp.mkdir(parents=True, exist_ok=True)

    def record(self, result: FetchResult, max_bytes: int | None = None) -> None:
        """Remember a result, except a failure caused by stopping an abandoned batch.

        Args:
            result: the outcome of one URL.
            max_bytes: the byte cap it was fetched under.
        """
        if self.interrupted and not result.ok:
            return  # the rerun (or Beam's retry of the bundle) fetches it again
        super().record(result, max_bytes)
        self._parts.pop(result.source, None)  # this worker's line is the newest

    def lookup(self, url: str) -> dict[str, Any] | None:
        """Index entry of ``url``: another worker's part, else ``index.jsonl`` or this worker's.

        Args:
            url: the URL.

        Returns:
            The entry, or None.
        """
        entry = self._parts.get(url)
        return dict(entry) if entry is not None else super().lookup(url)

    def close(self) -> None:
        """Close the part file and remove this worker's (empty) download folder."""
        super().close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def merge_index(cache_root: Path) -> int:
    """Append the workers' index parts to ``index.jsonl`` and remove them (no worker may run).

    Args:
        cache_root: the cache directory.

    Returns:
        The number of part files merged.
    """
    parts = sorted((cache_root / WorkerCache.PARTS).glob("*.jsonl"))
    if not parts:
        return 0
    index = cache_root / DownloadCache.INDEX
    with index.open("ab") as fh:
        if fh.tell():
            with index.open("rb") as rd:
                rd.seek(-1, os.SEEK_END)
                if rd.read(1) != b"\n":
                    fh.write(b"\n")
        for part in parts:
            data = part.read_bytes()
            fh.write(data[: data.rfind(b"\n") + 1])  # a torn last line is dropped
    for part in parts:
        part.unlink()
    return len(parts)


# --------------------------------------------------------------------------------------------
# Jobs (run on the workers; plain functions, testable without Beam)


def _row_entry(row: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An ``errors.jsonl``/``skipped.jsonl`` entry of a spreadsheet row, as the local runner's."""
    where = {"file": row["file"], "sheet": row["sheet"], "row": row["row"]}
    return where | {"source": row["source"]} | fields


def _route(
    res: FetchResult,
    row: dict[str, Any],
    cache: DownloadCache,
    processed_root: Path,
    proc_options: dict[str, Any],
    pass_through: bool,
) -> dict[str, Any]:
    """One download result -> its build result, like the local runner's ``_Run.take``."""
    from fer_tf.build.local import process_file, triage_file

    out: dict[str, Any] = {"source": res.source, "downloaded": 0, "cached": int(res.cached)}
    out["processed"] = 0
    if not res.ok:
        fields = {"category": res.category, "detail": res.detail, "attempts": res.attempts}
        out["failure"] = _row_entry(row, stage=res.stage, **fields)
        return out
    out["downloaded"] = int(not res.cached)
    sha = res.sha256
    src, dst = str(cache.object_path(sha)), processed_root / sha[:2] / f"{sha}.jpg"
    marker = Path(str(dst) + ".fail")
    if not (dst.exists() or marker.exists()):
        out["processed"] = 1
        status = "process"
        if pass_through:  # an upright RGB JPEG needing no change is validated and kept as it is
            status, _, size = triage_file(src, str(dst), proc_options)
            if status == "pass":
                return out | {"path": src, "size": list(size) if size else None}
        if status == "process":
            process_file(src, str(dst), proc_options)
    if dst.exists():
        return out | {"path": str(dst)}
    info = json.loads(marker.read_text(encoding="utf-8"))
    if info.get("status") == "skip":
        out["skipped"] = _row_entry(row, reason="no_face", detail=info.get("detail", ""))
        return out
    detail = str(info.get("detail", ""))
    out["failure"] = _row_entry(
        row, stage="decode", category="corrupt_image", detail=detail, attempts=res.attempts
    )
    cache.record(
        FetchResult(
            res.source,
            False,
            category="corrupt_image",
            detail=detail,
            attempts=res.attempts,
            stage="decode",
        )
    )
    return out


def fetch_rows(
    rows: Sequence[dict[str, Any]],
    cache: DownloadCache,
    download_options: DownloadOptions,
    processed_root: Path,
    proc_options: dict[str, Any],
    retry_failed: bool = False,
) -> Iterator[dict[str, Any]]:
    """Worker job: fetch a batch of spreadsheet rows concurrently and process each new original.

    Downloads overlap with processing: :meth:`~fer_tf.sources.download.Downloader.fetch_many`
    keeps its threads busy while this thread decodes.

    Args:
        rows: ``{"source", "file", "sheet", "row"}`` per URL (unique URLs).
        cache: the (worker's) download cache.
        download_options: the downloader settings.
        processed_root: ``cache_dir/processed/<fingerprint>``.
        proc_options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.
        retry_failed: re-attempt remembered failures.

    Yields:
        One result per row: ``{"source", "downloaded", "cached", "processed"}`` plus ``"path"``
        (and ``"size"``) when ready, ``"failure"`` (an ``errors.jsonl`` entry) or ``"skipped"``.
    """
    from fer_tf.preprocessing.decode import needs_change

    by_url = {row["source"]: row for row in rows}
    pass_through = not needs_change(proc_options)
    if isinstance(cache, WorkerCache):
        cache.interrupted = False  # an earlier batch's stopped downloads have all ended
    dl = Downloader(cache, download_options)
    results = dl.fetch_many(list(by_url), retry_failed=retry_failed)
    try:
        for res in results:
            yield _route(res, by_url[res.source], cache, processed_root, proc_options, pass_through)
    except BaseException:  # a crash, or Beam abandoning the bundle (GeneratorExit)
        if isinstance(cache, WorkerCache):
            cache.interrupted = True  # before the downloads in flight are stopped
        raise
    finally:
        results.close()  # stops the downloads in flight
        dl.close()


def _shown(path: str, root: str) -> str:
    """``path`` relative to the dataset root when it lies under it (as the local runner shows)."""
    try:
        return os.path.relpath(path, root) if Path(path).is_relative_to(root) else path
    except ValueError:
        return path


def _local_image(
    out: dict[str, Any], ex: dict[str, Any], path: str, item: dict[str, Any], cfg: dict[str, Any]
) -> None:
    """Process one example's image file into ``out``, like the local runner's ``image_done``."""
    from fer_tf.build.jobs import process_local_file

    box = tuple(ex["box"]) if ex.get("box") is not None else None
    status, detail, ready, size, fresh = process_local_file(
        path, cfg["processed_root"], cfg["proc_options"], box
    )
    out["processed"] += int(fresh)
    out["cached"] += int(not fresh)
    out["done"].append(ex["index"])
    if status == "ok":
        out["ready"].append([ex["index"], ready, list(size) if size else None])
        return
    if ex["kind"] == "data":  # bytes from a label file (FER2013 pixels): its source names it
        file = ex["source"]
    elif ex["kind"] == "video":
        file = f"{_shown(item['origin'], cfg['root'])}#frame={ex['frame']}"
    else:
        file = _shown(ex["origin"], cfg["root"])
    entry = {"file": file, "row": 0, "source": ex["source"], "detail": detail}
    if status == "skip":
        out["skipped"].append(entry | {"reason": "no_face"})
        return
    reason = {"reason": "corrupt_image", "stage": "decode", "category": "corrupt_image"}
    out["failures"].append(entry | reason)


def process_item(item: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Worker job: process one local work item (an image, or every wanted frame of one video).

    Args:
        item: ``{"kind": "image"|"video", "origin", "examples": [{"index", "source", "kind",
            "origin", "frame", "box"}]}``.
        cfg: ``{"root", "processed_root", "frames_root", "proc_options"}``.

    Returns:
        ``{"done": [indices], "ready": [[index, path, size]], "failures", "skipped",
        "processed", "cached", "frames_decoded"}``.
    """
    from fer_tf.build.jobs import extract_frames

    out: dict[str, Any] = {"done": [], "ready": [], "failures": [], "skipped": []}
    out.update(processed=0, cached=0, frames_decoded=0)
    if item["kind"] != "video":
        for ex in item["examples"]:
            _local_image(out, ex, ex["origin"], item, cfg)
        return out
    wanted = [ex["frame"] for ex in item["examples"]]
    frames, decoded = extract_frames(item["origin"], wanted, cfg["frames_root"])
    out["frames_decoded"] = decoded
    for ex, (index, png, detail) in zip(item["examples"], frames):
        if png is not None:
            _local_image(out, ex, png, item, cfg)
            continue
        out["done"].append(ex["index"])
        entry = {"file": _shown(item["origin"], cfg["root"]), "row": 0, "source": ex["source"]}
        entry.update(reason="unreadable_frame", detail=detail, stage="video")
        out["failures"].append(entry | {"category": "unreadable_frame", "frame": index})
    return out


def write_shard(task: dict[str, Any], out: str) -> dict[str, Any]:
    """Worker job: encode one shard's examples (in the given order) and write it atomically.

    Args:
        task: ``{"name": shard file name, "examples": [example dicts]}``.
        out: the records directory.

    Returns:
        ``{"name", "count"}``.
    """
    from fer_tf.build.shards import _encode  # the local writer's example -> record mapping
    from fer_tf.records import TFRecordWriter

    final, tmp = Path(out) / task["name"], Path(out) / f"{task['name']}.tmp"
    with TFRecordWriter(tmp) as writer:
        for ex in task["examples"]:
            writer.write(_encode(ex))
    os.replace(tmp, final)
    return {"name": task["name"], "count": len(task["examples"])}


# --------------------------------------------------------------------------------------------
# DoFns: the jobs with their per-worker state


class _FetchDoFn(_DoFn):  # type: ignore[misc,valid-type]
    """Batches of spreadsheet rows (JSON lines) -> results (JSON lines); one cache per worker."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        self.cache: WorkerCache | None = None

    def setup(self) -> None:
        self.cache = WorkerCache(self.cfg["cache_root"])

    def process(self, batch: list[str]) -> Iterator[str]:
        assert self.cache is not None  # setup() ran (Beam guarantees it)
        rows = [json.loads(line) for line in batch]
        cfg = self.cfg
        for result in fetch_rows(
            rows,
            self.cache,
            cfg["download_options"],
            Path(cfg["processed_root"]),
            cfg["proc_options"],
            cfg["retry_failed"],
        ):
            yield json.dumps(result, sort_keys=True)

    def teardown(self) -> None:
        if self.cache is not None:
            self.cache.close()


class _LocalDoFn(_DoFn):  # type: ignore[misc,valid-type]
    """Local work items (JSON lines) -> results (JSON lines)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg

    def process(self, line: str) -> Iterator[str]:
        yield json.dumps(process_item(json.loads(line), self.cfg), sort_keys=True)


class _ShardDoFn(_DoFn):  # type: ignore[misc,valid-type]
    """Shard tasks (JSON lines) -> written shards."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out = out

    def process(self, line: str) -> Iterator[str]:
        yield json.dumps(write_shard(json.loads(line), self.out))


# --------------------------------------------------------------------------------------------
# The driver


def _stage(staging: Path, name: str, lines: Iterable[str]) -> str:
    """Write JSON lines as ``<name>-NNNNN.jsonl`` files; return their glob pattern."""
    n, fh = 0, None
    try:
        for i, line in enumerate(lines):
            if i % _LINES_PER_FILE == 0:
                if fh is not None:
                    fh.close()
                fh = (staging / f"{name}-{i // _LINES_PER_FILE:05d}.jsonl").open("w")
            fh.write(line + "\n")
            n += 1
    finally:
        if fh is not None:
            fh.close()
    if n == 0:
        (staging / f"{name}-00000.jsonl").write_text("")
    return str(staging / f"{name}-*.jsonl")


def _run(beam: Any, flags: list[str], build: Callable[[Any], None], what: str) -> None:
    """Run one pipeline with Beam's own flags; a failure becomes a :class:`BuildError`."""
    from apache_beam.options.pipeline_options import PipelineOptions

    try:
        with beam.Pipeline(options=PipelineOptions(flags)) as pipeline:
            build(pipeline)
    except (KeyboardInterrupt, BuildError):
        raise
    except Exception as exc:
        raise BuildError(
            f"The Beam pipeline '{what}' failed ({type(exc).__name__}: {exc}). Run the same "
            "build again to resume: sources already fetched and processed are kept in the cache."
        ) from exc


def _results(beam: Any, flags: list[str], staging: Path, what: str, step: Any) -> list[Any]:
    """Run ``work -> Reshuffle -> step -> results`` and read every result back."""
    pattern = str(staging / "work-*.jsonl")
    prefix = str(staging / f"{what}-results")

    def build(p: Any) -> None:
        (
            p
            | "ReadWork" >> beam.io.ReadFromText(pattern)
            | "Spread" >> beam.Reshuffle()
            | step
            | "WriteResults" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl")
        )

    _run(beam, flags, build, what)
    results = []
    for path in sorted(staging.glob(f"{what}-results-*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            results.extend(json.loads(line) for line in fh if line.strip())
    return results


def _fetch_sheet(
    beam: Any, flags: list[str], options: BuildOptions, inputs: Any, staging: Path
) -> Any:
    """Phase 2 for spreadsheets: pipeline 1 over the rows -> a local-runner ``FetchOutcome``."""
    from fer_tf.build.local import FetchOutcome

    rows = inputs.rows
    _stage(
        staging,
        "work",
        (
            json.dumps({"source": r.source, "file": r.file, "sheet": r.sheet, "row": r.row})
            for r in rows
        ),
    )
    cfg = {
        "cache_root": str(options.cache_root),
        "processed_root": str(options.cache_root / "processed" / options.fingerprint()),
        "proc_options": options.process_options(),
        "download_options": options.download_options(),
        "retry_failed": options.retry_failed,
    }
    # Full batches keep a worker's download threads busy (fetch_many queues 2x concurrency);
    # Beam's adaptive sizing would start at one URL per batch, one request at a time.
    batch = options.download_options().concurrency * 4
    step = (
        "Batch" >> beam.BatchElements(min_batch_size=batch, max_batch_size=batch)
    ) | "FetchProcess" >> beam.ParDo(_FetchDoFn(cfg))
    results = _results(beam, flags, staging, "fetch", step)
    got = [r["source"] for r in results]
    if len(got) != len(rows) or set(got) != {r.source for r in rows}:
        raise BuildError(
            f"The Beam pipeline returned {len(got)} results ({len(set(got))} sources) for "
            f"{len(rows)} rows; every row must have exactly one. Run the build again."
        )
    out = FetchOutcome()
    for r in results:
        out.downloaded += r["downloaded"]
        out.cached += r["cached"]
        out.processed += r["processed"]
        if "failure" in r:
            out.failures.append(r["failure"])
        elif "skipped" in r:
            out.skipped.append(r["skipped"])
        else:
            out.ready[r["source"]] = r["path"]
            if r.get("size"):
                out.dims[r["path"]] = tuple(r["size"])
    return out


def _local_work(examples: Sequence[Any]) -> Iterator[str]:
    """One work item per image example; one per video, holding all its wanted frames."""
    videos: dict[str, list[dict[str, Any]]] = {}
    for i, ex in enumerate(examples):
        entry = {"index": i, "source": ex.source, "kind": ex.kind, "origin": ex.origin}
        entry.update(frame=ex.frame, box=list(ex.box) if ex.box is not None else None)
        if ex.kind == "video":
            videos.setdefault(ex.origin, []).append(entry)
            continue
        yield json.dumps({"kind": "image", "origin": ex.origin, "examples": [entry]})
    for video, entries in videos.items():
        yield json.dumps({"kind": "video", "origin": video, "examples": entries})


def _fetch_local(
    beam: Any, flags: list[str], options: BuildOptions, inputs: Any, staging: Path
) -> Any:
    """Phase 2 for local sources: pipeline 1 over the examples; sets their ``path``/``size``."""
    from fer_tf.build.local import FetchOutcome

    examples = inputs.examples
    _stage(staging, "work", _local_work(examples))
    cfg = {
        "root": str(inputs.source.root),
        "processed_root": str(options.cache_root / "processed" / options.fingerprint()),
        "frames_root": str(options.cache_root / "frames"),
        "proc_options": options.process_options(),
    }
    results = _results(beam, flags, staging, "process", "Process" >> beam.ParDo(_LocalDoFn(cfg)))
    done = sorted(i for r in results for i in r["done"])
    if done != list(range(len(examples))):
        raise BuildError(
            f"The Beam pipeline returned {len(done)} results for {len(examples)} examples; "
            "every example must have exactly one. Run the build again."
        )
    out = FetchOutcome()
    for r in results:
        out.processed += r["processed"]
        out.cached += r["cached"]
        out.frames_decoded += r["frames_decoded"]
        out.failures.extend(r["failures"])
        out.skipped.extend(r["skipped"])
        for index, path, size in r["ready"]:
            examples[index].path = path
            examples[index].size = tuple(size) if size else None
    return out


def _plain(ex: Any) -> dict[str, Any]:
    """An example (a dict, or a :class:`~fer_tf.build.ingest.LocalExample`) as a JSON-able dict."""
    if isinstance(ex, dict):
        return ex
    return {f.name: getattr(ex, f.name) for f in dataclasses.fields(ex)} | {"id": ex["id"]}


def _write_shards(
    beam: Any,
    flags: list[str],
    options: BuildOptions,
    examples: dict[str, list[Any]],
    staging: Path,
) -> dict[str, Any]:
    """Phase 3b: the local writer's shard plan, each shard written by pipeline 2."""
    from fer_tf.build.shards import _plan  # sorted by id, the same cut; stale shards removed

    out = options.out
    (out / "manifest.json").unlink(missing_ok=True)  # no manifest describes half-written shards
    plan = _plan(out, examples, options)
    tasks = (  # label sequences (tuples, arrays) become JSON lists
        json.dumps({"name": name, "examples": [_plain(ex) for ex in exs]}, default=list)
        for split in plan
        for name, exs in plan[split]
    )
    pattern = _stage(staging, "shards", tasks)

    def build(p: Any) -> None:
        (
            p
            | "ReadShards" >> beam.io.ReadFromText(pattern)
            | "Spread" >> beam.Reshuffle()
            | "WriteShard" >> beam.ParDo(_ShardDoFn(str(out)))
        )

    _run(beam, flags, build, "write")
    result: dict[str, Any] = {}
    for split in plan:
        result[split] = [str(out / name) for name, _ in plan[split]]
        result[f"{split}/counts"] = [len(exs) for _, exs in plan[split]]
        missing = [p for p in result[split] if not Path(p).is_file()]
        if missing:
            raise BuildError(f"The Beam pipeline 'write' did not write {missing}.")
    return result


def _read(options: BuildOptions) -> tuple[Any, Callable[..., Any]]:
    """Phase 1 on the driver, exactly as the local runner does it; also the phase-2 function."""
    from fer_tf.build.phases import _open_cache, _prepare_output, read_sources

    if not options.local:
        inputs = read_sources(options)
        _open_cache(options).close()  # checks and creates the output and cache directories
        return inputs, _fetch_sheet
    from fer_tf.build.ingest import read_local_sources

    source = options.make_source()
    source.check_root()  # a wrong root fails here, before any work
    _prepare_output(options)
    inputs = read_local_sources(options, options.cache_root, source)
    if not inputs.examples:
        raise BuildError(
            f"Source '{source.name}' found no usable image under '{source.root}' "
            f"({len(inputs.failures)} failures, {len(inputs.skipped)} skipped)."
        )
    return inputs, _fetch_local


def build_beam(options: BuildOptions) -> BuildSummary:
    """A record build with ``runner="beam"`` (see the module docstring).

    Args:
        options: the build options (``beam_options``: Beam's pipeline flags).

    Returns:
        The :class:`~fer_tf.build.summary.BuildSummary`, as the local runner's.

    Raises:
        BuildError: Apache Beam is not installed (before any work); output not writable; a
            pipeline failed; nothing usable.
        fer_tf.sources.spreadsheet.SpreadsheetError: as the local runner.
        fer_tf.sources.base.SourceError: as the local runner.
        FailureRateExceeded: ``max_failure_rate`` was exceeded (records were written).
    """
    from fer_tf.build.phases import split_examples
    from fer_tf.build.report import write_reports

    beam = import_beam()  # before any work
    flags = pipeline_flags(options)
    check_flags(flags)
    t0 = time.monotonic()
    inputs, fetch = _read(options)
    staging = options.out / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # a crashed run's work lists
    staging.mkdir(parents=True)
    try:
        merge_index(options.cache_root)  # a crashed run's worker entries, for a local rerun too
        timings = {"read": time.monotonic() - t0}
        t1 = time.monotonic()
        try:
            fetched = fetch(beam, flags, options, inputs, staging)
        finally:
            merge_index(options.cache_root)
        timings["fetch_process"] = time.monotonic() - t1
        t2 = time.monotonic()
        if options.local:
            from fer_tf.build.splits import split_local

            inputs.finish_labels()
            examples, inputs.plan = split_local(inputs.examples, options)
            fallback = inputs.plan.subject_fallback
        else:
            examples, fallback = split_examples(inputs, fetched, options)
        shards = _write_shards(beam, flags, options, examples, staging)
        timings["write"] = time.monotonic() - t2
        extra = {"runner": "beam", "beam_runner": _beam_runner(flags), "runner_note": _NOTE}
        return write_reports(
            options, inputs, fetched, examples, shards, fallback, timings, t0, extra=extra
        )
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        if hasattr(inputs, "close"):  # a spreadsheet build's rows may be on disk
            inputs.close()
