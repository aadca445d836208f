"""The local runner of the fetch-and-process phase: download threads feeding a process pool.

Originals are downloaded by :class:`~fer_tf.sources.download.Downloader` threads into the
content-addressed cache; each new original is then either validated cheaply in a thread (an upright
RGB JPEG that needs no change is stored as downloaded: :func:`triage_file`) or decoded, processed
and re-encoded in a worker process (:func:`process_file`). Results are cached under
``cache_dir/processed/<options fingerprint>/`` (a JPEG, or a ``.fail`` JSON marker), so a rerun with
the same options does no image work twice. Downloading and processing overlap.

Workers run NumPy/Pillow/OpenCV code only, never TensorFlow.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_tf.build.progress import Progress
from fer_tf.preprocessing.decode import exif_orientation, needs_change, process_image
from fer_tf.sources.download import DownloadCache, Downloader, DownloadOptions, FetchResult
from fer_tf.sources.spreadsheet import SheetRow

__all__ = ["FetchOutcome", "fetch_and_process", "process_file", "triage_file"]


# --------------------------------------------------------------------------------------------
# Jobs (pool processes and checker threads)


def _write_atomic(target: str, payload: bytes, tmp_suffix: str) -> None:
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{target}.{tmp_suffix}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(payload)
    os.replace(tmp, target)


def _fail_marker(status: str, detail: str) -> bytes:
    return json.dumps({"status": status, "detail": detail}).encode()


def process_file(src: str, dst: str, options: dict[str, Any]) -> tuple[str, str]:
    """Pool job: process ``src`` into ``dst`` (JPEG) or ``dst + '.fail'`` (JSON marker).

    Args:
        src: the original's path.
        dst: the processed JPEG's path.
        options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.

    Returns:
        ``(status, detail)`` as :func:`~fer_tf.preprocessing.decode.process_image` gives them.
    """
    with open(src, "rb") as fh:
        data = fh.read()
    status, jpeg, detail = process_image(data, options)
    if status == "ok":
        _write_atomic(dst, jpeg, str(os.getpid()))
    else:
        _write_atomic(dst + ".fail", _fail_marker(status, detail), str(os.getpid()))
    return status, detail


def triage_file(
    src: str, dst: str, options: dict[str, Any]
) -> tuple[str, str, tuple[int, int] | None]:
    """Thread job: validate an original that :func:`process_image` would store unchanged, cheaply.

    An upright RGB JPEG that needs no resize is stored byte for byte as downloaded; validating it
    does not need full-size pixels. Its header is parsed (format, mode, EXIF orientation, size) and
    the entropy-coded data is decoded at 1/8 scale, greyscale (libjpeg's DCT scaling still reads
    every coefficient, so a truncated or corrupt JPEG fails exactly like a full decode). Pillow
    releases the GIL while decoding, so this runs in threads, with no inter-process traffic.

    Args:
        src: the original's path.
        dst: the processed JPEG's path (only its ``.fail`` marker may be written here).
        options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.

    Returns:
        ``("pass", "", (width, height))``: store ``src`` as it is; ``("fail", detail, None)``: a
        corrupt image (a ``.fail`` marker is written to ``dst + '.fail'``, as the process pool
        does); ``("process", "", None)``: anything else, for :func:`process_file`.
    """
    from PIL import Image

    with open(src, "rb") as fh:
        data = fh.read()
    try:
        im = Image.open(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - the full decode in the process pool reports it
        return "process", "", None
    if im.format != "JPEG" or im.mode != "RGB":
        return "process", "", None
    width, height = im.size
    if exif_orientation(im) != 1 or needs_change(options, (height, width)):
        return "process", "", None
    try:
        im.draft("L", (max(1, width // 8), max(1, height // 8)))
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        detail = f"cannot decode the image: {exc}"
    except Image.DecompressionBombError as exc:
        detail = f"decompression bomb refused: {exc}"
    else:
        return "pass", "", (width, height)
    suffix = f"{os.getpid()}.{threading.get_ident()}"
    _write_atomic(dst + ".fail", _fail_marker("fail", detail), suffix)
    return "fail", detail, None


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
    failures: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    downloaded: int = 0
    cached: int = 0
    processed: int = 0
    frames_decoded: int = 0


class _Run:
    """The state of one fetch-and-process run (see :func:`fetch_and_process`)."""

    def __init__(
        self,
        rows: dict[str, SheetRow],
        cache: DownloadCache,
        processed_root: Path,
        proc_options: dict[str, Any],
        workers: int,
        bar: Progress,
    ) -> None:
        self.rows = rows
        self.cache = cache
        self.processed_root = processed_root
        self.proc_options = proc_options
        self.workers = workers
        self.bar = bar
        self.out = FetchOutcome()
        self.pool: Executor = _InlineExecutor() if workers == 0 else _make_pool(workers)
        # Pass-through checks (header + reduced decode) run in threads: cheaper than a process hop.
        self.checker = ThreadPoolExecutor(max(2, workers), thread_name_prefix="fer_tf-check")
        self.pass_through = not needs_change(proc_options)
        self.passed: dict[str, str] = {}  # sha -> original path (validated, kept as downloaded)
        self.waiting: dict[str, list[str]] = {}  # sha -> urls waiting for its processing
        self.jobs: dict[Future[Any], tuple[str, str]] = {}  # future -> (sha, "check"|"process")
        self.attempts_of: dict[str, int] = {}

    def dst(self, sha: str) -> Path:
        return self.processed_root / sha[:2] / f"{sha}.jpg"

    def fail(self, url: str, stage: str, category: str, detail: str, attempts: int) -> None:
        row = self.rows[url]
        self.out.failures.append(
            {
                "file": row.file,
                "sheet": row.sheet,
                "row": row.row,
                "source": url,
                "stage": stage,
                "category": category,
                "detail": detail,
                "attempts": attempts,
            }
        )
        self.bar.update(1, failed=1)

    def finish_sha(self, sha: str) -> None:
        """Apply the processed result of ``sha`` to every URL waiting on it."""
        dst = self.dst(sha)
        marker = Path(str(dst) + ".fail")
        for url in self.waiting.pop(sha, []):
            if sha in self.passed or dst.exists():
                self.out.ready[url] = self.passed.get(sha, str(dst))
                self.bar.update(1, ready=1)
                continue
            info = json.loads(marker.read_text(encoding="utf-8"))
            row = self.rows[url]
            if info.get("status") == "skip":
                self.out.skipped.append(
                    {
                        "file": row.file,
                        "sheet": row.sheet,
                        "row": row.row,
                        "source": url,
                        "reason": "no_face",
                        "detail": info.get("detail", ""),
                    }
                )
                self.bar.update(1)
                continue
            detail, attempts = str(info.get("detail", "")), self.attempts_of.get(url, 1)
            self.fail(url, "decode", "corrupt_image", detail, attempts)
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

    def submit_process(self, sha: str) -> None:
        src, dst = str(self.cache.object_path(sha)), str(self.dst(sha))
        self.jobs[self.pool.submit(process_file, src, dst, self.proc_options)] = (sha, "process")

    def drain(self, block_until: int) -> None:
        while len(self.jobs) > block_until:
            done, _ = wait(list(self.jobs), return_when=FIRST_COMPLETED)
            for fut in done:
                sha, kind = self.jobs.pop(fut)
                result = fut.result()  # re-raise worker crashes (bugs), not image problems
                if kind == "check":
                    status, _, size = result
                    if status == "process":
                        self.submit_process(sha)
                        continue
                    if status == "pass":
                        self.passed[sha] = str(self.cache.object_path(sha))
                        self.out.dims[self.passed[sha]] = size
                self.finish_sha(sha)

    def take(self, res: FetchResult) -> None:
        """Route one download result: failure, already processed, or a new check/process job."""
        if res.cached:
            self.out.cached += 1
            self.bar.update(cached=1)
        if not res.ok:
            self.fail(res.source, res.stage, res.category, res.detail, res.attempts)
            return
        if not res.cached:
            self.out.downloaded += 1
            self.bar.update(downloaded=1)
        self.attempts_of[res.source] = res.attempts
        sha = res.sha256
        if sha in self.waiting:
            self.waiting[sha].append(res.source)
            return
        self.waiting[sha] = [res.source]
        dst = self.dst(sha)
        if dst.exists() or Path(str(dst) + ".fail").exists():
            self.finish_sha(sha)
            return
        if self.pass_through:
            src = str(self.cache.object_path(sha))
            fut = self.checker.submit(triage_file, src, str(dst), self.proc_options)
            self.jobs[fut] = (sha, "check")
        else:
            self.submit_process(sha)
        self.out.processed += 1
        self.drain(block_until=16 * max(1, self.workers))

    def shutdown(self, interrupted: bool) -> None:
        self.bar.close()
        self.checker.shutdown(wait=not interrupted, cancel_futures=True)
        self.pool.shutdown(wait=not interrupted, cancel_futures=True)
        self.cache.close()


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
) -> FetchOutcome:
    """Download every row's URL and process each new original, pipelined.

    Args:
        rows: the rows to fetch (unique URLs).
        cache: the download cache (closed on return).
        processed_root: ``cache_dir/processed/<fingerprint>``.
        proc_options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.
        download_options: downloader settings.
        workers: worker processes (0: in this process).
        retry_failed: re-attempt sources whose failure the cache remembers.
        progress: show progress on stderr.

    Returns:
        A :class:`FetchOutcome`.
    """
    by_url = {row.source: row for row in rows}
    bar = Progress(
        len(rows),
        "fetch+process",
        "img",
        enabled=progress,
        counters=("downloaded", "cached", "failed", "ready"),
    )
    run = _Run(by_url, cache, processed_root, proc_options, workers, bar)
    interrupted = False
    try:
        with Downloader(cache, download_options) as dl:
            for res in dl.fetch_many((r.source for r in rows), retry_failed=retry_failed):
                run.take(res)
            run.drain(block_until=0)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        run.shutdown(interrupted)
    return run.out
