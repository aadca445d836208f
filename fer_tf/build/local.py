"""The local runner of the fetch-and-process phase: worker processes that download and process.

Each worker process runs its share of the download threads (one ``urllib3`` pool per worker; the
per-host and total request limits are shared by all workers, :class:`~fer_tf.sources.download.
SharedSlots`) and :data:`IMAGE_THREADS` image threads (one). A download thread fetches a URL into
the content-addressed cache (hash, format check, atomic rename) and hands the body, still in
memory, to an image thread, which validates it cheaply (an upright RGB JPEG that needs no change
is stored as downloaded: :func:`triage_data`) or decodes, processes and re-encodes it
(:func:`process_data`).
Results are cached under ``cache_dir/processed/<options fingerprint>/`` (a JPEG, or a ``.fail``
JSON marker), so a rerun with the same options does no image work twice.

The build process only reads the rows, answers what the cache index knows, sends the other URLs
to the workers in batches, applies the results (small tuples, in batches) and appends to
``index.jsonl``, of which it is the only writer.

Workers run NumPy/Pillow/OpenCV code only, never TensorFlow. The process pool of local dataset
builds (:func:`_make_pool`, used by :mod:`fer_tf.build.process`) is kept here too.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_tf.build.progress import Progress
from fer_tf.preprocessing.decode import needs_change, process_image, validate_as_is
from fer_tf.sources.download import (
    DownloadCache,
    Downloader,
    DownloadOptions,
    FetchResult,
    SharedSlots,
)
from fer_tf.sources.spreadsheet import SheetRow

__all__ = ["FetchOutcome", "fetch_and_process", "process_file", "triage_file"]


# --------------------------------------------------------------------------------------------
# Jobs (pool processes and checker threads)


_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


def _write_atomic(target: str, payload: bytes) -> None:
    # os-level calls: open, write, close, rename; the directory is made only when missing (a
    # buffered open() adds fstat/ioctl/lseek, and each syscall is a GIL hand-off in a busy worker).
    # The temporary name is the writer's own (process and thread): two image threads may store
    # the same content (two URLs, one original) at the same time; either rename leaves the same
    # bytes.
    tmp = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        fd = os.open(tmp, _WRITE_FLAGS, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd = os.open(tmp, _WRITE_FLAGS, 0o666)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, target)


def _fail_marker(status: str, detail: str) -> bytes:
    return json.dumps({"status": status, "detail": detail}).encode()


def process_data(data: bytes, dst: str, options: dict[str, Any]) -> tuple[str, str]:
    """Process an original's bytes into ``dst`` (JPEG) or ``dst + '.fail'`` (JSON marker).

    Args:
        data: the original's bytes.
        dst: the processed JPEG's path.
        options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.

    Returns:
        ``(status, detail)`` as :func:`~fer_tf.preprocessing.decode.process_image` gives them.
    """
    status, jpeg, detail = process_image(data, options)
    if status == "ok":
        _write_atomic(dst, jpeg)
    else:
        _write_atomic(dst + ".fail", _fail_marker(status, detail))
    return status, detail


def process_file(src: str, dst: str, options: dict[str, Any]) -> tuple[str, str]:
    """Pool job: :func:`process_data` on the bytes of the file ``src`` (the Beam runner's path).

    Args:
        src: the original's path; ``dst`` and ``options`` as for :func:`process_data`.

    Returns:
        What :func:`process_data` returns.
    """
    with open(src, "rb") as fh:
        data = fh.read()
    return process_data(data, dst, options)


def triage_data(
    data: bytes, dst: str, options: dict[str, Any]
) -> tuple[str, str, tuple[int, int] | None]:
    """Validate an original that :func:`process_image` would store unchanged, cheaply.

    An upright RGB JPEG that needs no resize is stored byte for byte as downloaded; validating it
    does not need full-size pixels. Its header is parsed (format, mode, EXIF orientation, size) and
    the entropy-coded data is decoded at 1/8 scale, greyscale (libjpeg's DCT scaling still reads
    every coefficient, so a truncated or corrupt JPEG fails exactly like a full decode).

    Args:
        data: the original's bytes.
        dst: the processed JPEG's path (only its ``.fail`` marker may be written here).
        options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.

    Returns:
        ``("pass", "", (width, height))``: store the original as it is; ``("fail", detail, None)``:
        a corrupt image (a ``.fail`` marker is written to ``dst + '.fail'``, as
        :func:`process_data` does); ``("process", "", None)``: anything else, for
        :func:`process_data`.
    """
    try:
        size = validate_as_is(data, options)
    except ValueError as exc:
        _write_atomic(dst + ".fail", _fail_marker("fail", str(exc)))
        return "fail", str(exc), None
    if size is None:
        return "process", "", None
    return "pass", "", size


def triage_file(
    src: str, dst: str, options: dict[str, Any]
) -> tuple[str, str, tuple[int, int] | None]:
    """:func:`triage_data` on the file ``src``.

    Args:
        src: the original's path.
        dst: the processed JPEG's path (only its ``.fail`` marker may be written here).
        options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.

    Returns:
        As :func:`triage_data`.
    """
    with open(src, "rb") as fh:
        data = fh.read()
    return triage_data(data, dst, options)


# --------------------------------------------------------------------------------------------
# Executors


def _noop() -> None:
    return None


def _worker_init() -> None:
    """Pool worker set-up: no OpenCV thread pool (it may have been copied mid-use by fork), and a
    watchdog that ends the worker when the build process dies."""
    try:
        import cv2

        cv2.setNumThreads(0)
    except ImportError:  # pragma: no cover - OpenCV is a dependency
        pass
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int, every: float = 0.5) -> None:
    # A forked worker holds both ends of the pool's pipes, so when the build is killed (SIGKILL,
    # OOM) it never sees end-of-file and would wait forever, an orphan. Poll the parent instead.
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def _make_pool(workers: int) -> ProcessPoolExecutor:
    """The image-processing pool.

    On Linux the workers are forked, all at once and before the download threads start: fast, and
    user scripts need no ``if __name__ == "__main__"`` guard. The workers only run Pillow/NumPy/
    OpenCV code, so a parent that has already imported TensorFlow (a second build in the same
    process, a notebook) is fine too. Elsewhere ``spawn`` is used.
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_worker_init,
    )
    pool.submit(_noop).result()  # with fork: starts every worker now
    return pool


class _InlineExecutor(Executor):
    """``workers=0``: run jobs in the calling process (debugging, tiny inputs)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


# --------------------------------------------------------------------------------------------
# The phase


@dataclass
class FetchOutcome:
    """What fetch-and-process produced.

    Attributes:
        ready: URL -> JPEG path (processed, or the original kept as it is).
        dims: JPEG path -> ``(width, height)``, where already known (saves a header parse).
        failures: ``errors.jsonl`` entries (unsorted).
        skipped: ``skipped.jsonl`` entries added by processing (``no_face``).
        downloaded: originals fetched over the network.
        cached: sources answered from the cache.
        processed: originals validated or processed in this run.
        frames_decoded: video frames decoded in this run (local video sources).
    """

    ready: dict[str, str] = field(default_factory=dict)
    dims: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: ``on_ready(row, path, size)`` takes each ready source instead of ``ready``/``dims`` (the
    #: build hands it straight to phase 3, so no per-URL map is kept here).
    on_ready: Callable[[SheetRow, str, tuple[int, int] | None], None] | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    downloaded: int = 0
    cached: int = 0
    processed: int = 0
    frames_decoded: int = 0


# --------------------------------------------------------------------------------------------
# Fetch workers: download -> hash -> store -> process, all in one process per worker

#: URLs per task message to the workers, and results per message back.
_BATCH = 16
#: Downloaded originals waiting for a worker's image threads (bounds a worker's memory).
_READY_MAX = 4
#: Image threads per worker. A single one is the bottleneck of its worker on small images: each
#: time it needs the GIL back (after every OpenCV call and file operation) it waits behind the
#: download threads, more than half of its busy time in a build on the shared 2-core machine.
#: Two let one run while the other waits, but cost 3-4% more CPU per image (small JPEGs and web
#: photos) and gained no images/s beyond the noise there (``docs/records.md``, "Per-stage
#: profile... second round"), so one stays the default until a quiet machine says otherwise.
#: Memory: at most ``_READY_MAX + IMAGE_THREADS`` originals per worker.
IMAGE_THREADS = 1


@dataclass(frozen=True)
class _WorkerSpec:
    """What a fetch worker needs (picklable: handed to spawned processes too)."""

    cache_root: str
    processed_root: str
    proc_options: dict[str, Any]
    download_options: DownloadOptions
    threads: int
    slots: SharedSlots
    image_threads: int = IMAGE_THREADS


def _dst(processed_root: str, sha: str) -> str:
    return f"{processed_root}/{sha[:2]}/{sha}.jpg"


def _read_marker(path: str) -> tuple[str, str]:
    with open(path, encoding="utf-8") as fh:
        info = json.load(fh)
    return str(info.get("status", "fail")), str(info.get("detail", ""))


def settle(
    sha: str, data: bytes | None, cache: DownloadCache, processed_root: str, options: dict[str, Any]
) -> tuple[str, str, tuple[int, int] | None, bool]:
    """Validate or process the original ``sha`` (once: results are cached on disk).

    Args:
        sha: the original's content hash.
        data: its bytes, or None to read the stored original.
        cache: the store holding the original.
        processed_root: ``cache_dir/processed/<fingerprint>``.
        options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.

    Returns:
        ``(status, detail, size, fresh)``: status ``"ready"`` (the processed JPEG is at its cache
        path), ``"pass"`` (the original is kept as it is; ``size`` is ``(width, height)``),
        ``"skip"`` (no face) or ``"fail"`` (corrupt); ``fresh`` is False when the processed
        cache already answered.
    """
    dst = _dst(processed_root, sha)
    if os.path.exists(dst):
        return "ready", "", None, False
    if os.path.exists(dst + ".fail"):
        status, detail = _read_marker(dst + ".fail")
        return status, detail, None, False
    if data is None:
        with open(cache.object_path(sha), "rb") as fh:
            data = fh.read()
    if not needs_change(options):
        status, detail, size = triage_data(data, dst, options)
        if status != "process":
            return status, detail, size, True
    status, detail = process_data(data, dst, options)
    return ("ready" if status == "ok" else status), detail, None, True


#: One URL's result from a worker: ``(url, sha256, download, status, detail, size, fresh)``;
#: ``download`` is ``(ok, bytes, category, detail, attempts)`` for a URL fetched now, None for an
#: original that was already cached; ``status`` is empty when the download failed.
WorkerResult = tuple[str, str, Any, str, str, Any, bool]


class _FetchWorker:
    """One worker: download threads, and image threads validating/processing what they fetched.

    Tasks are batches of ``(url, sha256 or None)`` (a known sha256: a cached original to process);
    results go back in batches, a None after the last. Download threads block on a small queue
    when images arrive faster than they are processed, so memory stays bounded. The calling
    thread is one of the :attr:`~_WorkerSpec.image_threads`.
    """

    def __init__(self, spec: _WorkerSpec, tasks: Any, results: Any) -> None:
        self.spec = spec
        self.tasks = tasks
        self.results = results
        self.cache = DownloadCache.objects_only(spec.cache_root)
        self.todo: queue.Queue[tuple[str, str | None] | None] = queue.Queue(spec.threads)
        self.ready: queue.Queue[Any] = queue.Queue(_READY_MAX)
        self.downloading = spec.threads  # download threads not finished yet
        self.lock = threading.Lock()

    def run(self) -> None:
        try:
            dl = Downloader(self.cache, self.spec.download_options, slots=self.spec.slots)
            threads = [threading.Thread(target=self.feed, daemon=True)]
            threads += [
                threading.Thread(target=self.download, args=(dl,), daemon=True)
                for _ in range(self.spec.threads)
            ]
            helpers = [
                threading.Thread(target=self.process_or_report, daemon=True)
                for _ in range(self.spec.image_threads - 1)
            ]
            for t in threads + helpers:
                t.start()
            self.process()
            for t in helpers:
                t.join()
            dl.close()
        except BaseException:  # noqa: BLE001 - a bug: the build process re-raises it
            self.results.put(("error", traceback.format_exc()))
            return
        self.results.put(None)

    def feed(self) -> None:
        while (batch := self.tasks.get()) is not None:
            for item in batch:
                self.todo.put(item)
        for _ in range(self.spec.threads):
            self.todo.put(None)

    def download(self, dl: Downloader) -> None:
        try:
            while (item := self.todo.get()) is not None:
                url, sha = item
                if sha is not None:
                    self.ready.put((url, None, sha, None))
                    continue
                res, body = dl.fetch_data(url)
                self.ready.put((url, res, res.sha256, body))
        except BaseException:  # noqa: BLE001 - a bug: handed to an image thread, then up
            self.ready.put(("error", traceback.format_exc()))
        with self.lock:
            self.downloading -= 1
            last = self.downloading == 0
        if last:  # everything downloaded is queued before these: one end mark per image thread
            for _ in range(self.spec.image_threads):
                self.ready.put(None)

    def process_or_report(self) -> None:
        """:meth:`process` in a helper image thread: a failure (a bug) goes to the build process
        at once, as :meth:`run` reports one of the calling thread."""
        try:
            self.process()
        except BaseException:  # noqa: BLE001 - a bug: the build process re-raises it
            self.results.put(("error", traceback.format_exc()))

    def process(self) -> None:
        """Validate/process downloaded originals until the end mark; results go back in batches."""
        spec, out = self.spec, []
        while (item := self.ready.get()) is not None:
            if item[0] == "error" and len(item) == 2:
                raise RuntimeError(f"a download thread failed:\n{item[1]}")
            url, res, sha, body = item
            fetched = None
            if res is not None:
                fetched = (res.ok, res.size, res.category, res.detail, res.attempts)
            if res is not None and not res.ok:
                out.append((url, sha, fetched, "", "", None, False))
            else:
                status, detail, size, fresh = settle(
                    sha, body, self.cache, spec.processed_root, spec.proc_options
                )
                out.append((url, sha, fetched, status, detail, size, fresh))
            # Batches while busy; at once when nothing else is ready (no result waits long).
            if len(out) >= _BATCH or self.ready.empty():
                self.results.put(out)
                out = []
        if out:
            self.results.put(out)


def _worker_main(spec: _WorkerSpec, tasks: Any, results: Any) -> None:
    """Entry point of a fetch worker process."""
    _worker_init()
    _FetchWorker(spec, tasks, results).run()


class _Run:
    """The build process's side of fetch-and-process: route URLs, apply results, write the index.

    The index (``index.jsonl``) has one writer, this process: a worker stores an original before
    reporting it, and this process records it after, so the index never names a missing object.
    Only the rows out with the workers are kept by URL (``pending``, bounded by the routing
    limit), not a map of every row.
    """

    def __init__(
        self,
        cache: DownloadCache,
        processed_root: Path,
        proc_options: dict[str, Any],
        download_options: DownloadOptions,
        bar: Progress,
    ) -> None:
        self.pending: dict[str, SheetRow] = {}
        self.cache = cache
        self.processed_root = str(processed_root)
        self.proc_options = proc_options
        self.max_bytes = download_options.max_bytes
        self.bar = bar
        self.out = FetchOutcome()

    def fail(self, row: SheetRow, stage: str, category: str, detail: str, attempts: int) -> None:
        self.out.failures.append(
            {
                "file": row.file,
                "sheet": row.sheet,
                "row": row.row,
                "source": row.source,
                "stage": stage,
                "category": category,
                "detail": detail,
                "attempts": attempts,
            }
        )
        self.bar.update(1, failed=1)

    def cached(self, row: SheetRow, res: FetchResult) -> str | None:
        """Apply a result the index answered; returns the sha256 still to process, if any."""
        self.out.cached += 1
        self.bar.update(cached=1)
        if not res.ok:
            self.fail(row, res.stage, res.category, res.detail, res.attempts)
            return None
        dst = _dst(self.processed_root, res.sha256)
        if os.path.exists(dst):
            self.settled(row, "ready", "", None, res.sha256, 0)
            return None
        if os.path.exists(dst + ".fail"):
            status, detail = _read_marker(dst + ".fail")
            self.settled(row, status, detail, None, res.sha256, 0)
            return None
        return res.sha256

    def take(self, result: WorkerResult) -> None:
        """Apply one worker result (recording fresh downloads in the index)."""
        url, sha, fetched, status, detail, size, fresh = result
        row = self.pending.pop(url)
        attempts = 0  # an original from the cache (as the index answers it)
        if fetched is not None:
            ok, nbytes, category, why, attempts = fetched
            res = FetchResult(url, ok, sha, nbytes, category, why, attempts)
            self.cache.record(res, max_bytes=self.max_bytes)
            if not ok:
                self.fail(row, "download", category, why, attempts)
                return
            self.out.downloaded += 1
            self.bar.update(downloaded=1)
        self.out.processed += int(fresh)
        self.settled(row, status, detail, size, sha, attempts)

    def settled(
        self, row: SheetRow, status: str, detail: str, size: Any, sha: str, attempts: int
    ) -> None:
        """Apply the validation/processing outcome of ``row``'s original."""
        url = row.source
        if status in ("ready", "pass"):
            dims = None
            if status == "pass":
                path = str(self.cache.object_path(sha))
                if size:
                    dims = (int(size[0]), int(size[1]))
            else:
                path = _dst(self.processed_root, sha)
            if self.out.on_ready is not None:
                self.out.on_ready(row, path, dims)
            else:
                self.out.ready[url] = path
                if dims:
                    self.out.dims[path] = dims
            self.bar.update(1, ready=1)
            return
        if status == "skip":
            self.out.skipped.append(
                {
                    "file": row.file,
                    "sheet": row.sheet,
                    "row": row.row,
                    "source": url,
                    "reason": "no_face",
                    "detail": detail,
                }
            )
            self.bar.update(1)
            return
        self.fail(row, "decode", "corrupt_image", detail, attempts)
        self.cache.record(
            FetchResult(
                url,
                False,
                category="corrupt_image",
                detail=detail,
                attempts=attempts,
                stage="decode",
            )
        )


class _Workers:
    """The fetch workers (processes; ``workers=0``: one thread of this process) and their queues."""

    def __init__(self, spec: dict[str, Any], workers: int) -> None:
        o: DownloadOptions = spec["download_options"]
        self.count = max(1, workers)
        if workers == 0:
            self.tasks: Any = queue.Queue()
            self.results: Any = queue.Queue()
            slots = SharedSlots(o.per_host, o.concurrency)
            one = _WorkerSpec(
                threads=o.concurrency, slots=slots, image_threads=IMAGE_THREADS, **spec
            )
            self.procs: list[Any] = [
                threading.Thread(
                    target=_FetchWorker(one, self.tasks, self.results).run, daemon=True
                )
            ]
        else:
            # Forked on Linux (fast; no __main__ guard needed in user scripts); spawned elsewhere.
            ctx = multiprocessing.get_context(
                "fork" if sys.platform.startswith("linux") else "spawn"
            )
            self.tasks, self.results = ctx.Queue(), ctx.Queue()
            slots = SharedSlots(o.per_host, o.concurrency, context=ctx)
            # The download threads are shared out; ``slots`` caps the total at ``concurrency``.
            shares = [
                o.concurrency // workers + (i < o.concurrency % workers) for i in range(workers)
            ]
            self.procs = [
                ctx.Process(
                    target=_worker_main,
                    args=(
                        _WorkerSpec(
                            threads=max(1, n), slots=slots, image_threads=IMAGE_THREADS, **spec
                        ),
                        self.tasks,
                        self.results,
                    ),
                    daemon=True,
                )
                for n in shares
            ]
        for p in self.procs:
            p.start()
        self.running = len(self.procs)

    def get(self, timeout: float = 1.0) -> list[WorkerResult] | None:
        """The next batch of results (None: nothing for ``timeout`` seconds).

        Raises:
            RuntimeError: a worker failed (a bug) or died.
        """
        try:
            msg = self.results.get(timeout=timeout)
        except queue.Empty:
            dead = [p for p in self.procs if not p.is_alive()]
            if len(dead) <= len(self.procs) - self.running:
                return None
            try:  # a worker that finished may have exited just after the wait timed out
                msg = self.results.get(timeout=timeout)
            except queue.Empty:
                codes = [getattr(p, "exitcode", None) for p in dead]
                raise RuntimeError(f"a fetch worker died (exit codes {codes})") from None
        if msg is None:
            self.running -= 1
            return []
        if isinstance(msg, tuple):
            raise RuntimeError(f"a fetch worker failed:\n{msg[1]}")
        return msg

    def finish(self) -> None:
        """Tell every worker that no more tasks come."""
        for _ in self.procs:
            self.tasks.put(None)

    def close(self, interrupted: bool) -> None:
        """Wait for the workers to end; after an error or interrupt, end them first."""
        if interrupted and not hasattr(self.procs[0], "terminate"):
            self.finish()  # a worker thread (workers=0) cannot be killed: it is told to stop
        for p in self.procs:
            if interrupted and hasattr(p, "terminate"):
                p.terminate()
            p.join(timeout=None if not interrupted else 5)
        for q in (self.tasks, self.results):
            if hasattr(q, "cancel_join_thread"):
                q.cancel_join_thread()
                q.close()


def _route(
    run: _Run,
    pool: _Workers,
    rows: Iterable[SheetRow],
    index: Downloader,
    retry_failed: bool,
    limit: int,
) -> None:
    """Answer what the cache knows, send the rest to the workers in batches, apply results."""
    batch: list[tuple[str, str | None]] = []
    outstanding = 0

    def collect(limit: int | None) -> None:
        # Apply results until at most ``limit`` URLs are out (None: until every worker is done).
        nonlocal outstanding
        while outstanding > limit if limit is not None else pool.running:
            for result in pool.get() or ():
                run.take(result)
                outstanding -= 1

    for row in rows:
        hit = index.cached_result(row.source, retry_failed=retry_failed)
        if hit is not None:
            sha = run.cached(row, hit)
            if sha is None:
                continue
        run.pending[row.source] = row
        batch.append((row.source, hit.sha256 if hit is not None else None))
        if len(batch) >= _BATCH:
            pool.tasks.put(batch)
            outstanding += len(batch)
            batch = []
            collect(limit)
    if batch:
        pool.tasks.put(batch)
        outstanding += len(batch)
    pool.finish()
    collect(None)


def fetch_and_process(
    rows: Sequence[SheetRow],
    cache: DownloadCache,
    processed_root: Path,
    proc_options: dict[str, Any],
    *,
    download_options: DownloadOptions,
    workers: int,
    retry_failed: bool = False,
    progress: bool = True,
    on_ready: Callable[[SheetRow, str, tuple[int, int] | None], None] | None = None,
) -> FetchOutcome:
    """Download every row's URL and validate/process each new original, in worker processes.

    Each worker downloads with its share of the ``concurrency`` threads (the per-host and total
    limits are shared by all workers), stores the original, and validates or processes it from
    memory; this process only routes URLs and results in batches and writes the index.

    Args:
        rows: the rows to fetch (unique URLs).
        cache: the download cache (closed on return).
        processed_root: ``cache_dir/processed/<fingerprint>``.
        proc_options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.
        download_options: downloader settings.
        workers: worker processes (0: one thread of this process).
        retry_failed: re-attempt sources whose failure the cache remembers.
        progress: show progress on stderr.
        on_ready: called with ``(row, JPEG path, (width, height) or None)`` for each source
            ready, in completion order, instead of filling :attr:`FetchOutcome.ready`/``dims``.

    Returns:
        A :class:`FetchOutcome`.

    Raises:
        ValueError: invalid download options.
        RuntimeError: a worker failed (a bug) or died.
    """
    download_options.validate()
    cache.remember_new = False  # each URL is looked up once, before its result is recorded
    bar = Progress(
        len(rows),
        "fetch+process",
        "img",
        enabled=progress,
        counters=("downloaded", "cached", "failed", "ready"),
    )
    run = _Run(cache, processed_root, proc_options, download_options, bar)
    run.out.on_ready = on_ready
    spec = {
        "cache_root": str(cache.root),
        "processed_root": str(processed_root),
        "proc_options": dict(proc_options),
        "download_options": download_options,
    }
    pool = _Workers(spec, workers)
    interrupted = False
    limit = 2 * download_options.concurrency + pool.count * _BATCH
    try:
        with Downloader(cache, download_options) as index:  # the index only: no request is sent
            _route(run, pool, rows, index, retry_failed, limit)
    except BaseException:
        interrupted = True
        raise
    finally:
        bar.close()
        pool.close(interrupted)
        cache.close()
    return run.out
