"""Phase 2 for local dataset sources: every example's image through the process pool.

Image files (and ``data`` items, already written into the cache) go to
:func:`~fer_tf.build.jobs.process_local_file` in the same worker pool the spreadsheet path uses;
video items are grouped by video, each video decoded once by
:func:`~fer_tf.build.jobs.extract_frames` (its wanted frames written as PNG into the cache) and
its frames then processed like files. Jobs are submitted as earlier ones finish (a bounded number
in flight), and only paths and small tuples travel between processes: memory does not grow with
the number of images beyond one small :class:`~fer_tf.build.ingest.LocalExample` each.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from pathlib import Path
from typing import Any

from fer_tf.build.ingest import LocalExample, LocalInputs
from fer_tf.build.jobs import extract_frames, process_local_file
from fer_tf.build.local import FetchOutcome, _InlineExecutor, _make_pool
from fer_tf.build.progress import Progress

__all__ = ["process_local", "make_pool"]


class _LocalRun:
    """The state of one local processing run (see :func:`process_local`)."""

    def __init__(
        self,
        root: Path,
        processed_root: Path,
        frames_root: Path,
        proc_options: dict[str, Any],
        workers: int,
        bar: Progress,
        pool: Executor | None = None,
    ) -> None:
        self.root = root
        self.processed_root = str(processed_root)
        self.frames_root = str(frames_root)
        self.proc_options = proc_options
        self.limit = 16 * max(1, workers)
        self.bar = bar
        self.out = FetchOutcome()
        self.pool: Executor = pool if pool is not None else make_pool(workers)
        self.jobs: dict[Future[Any], tuple[str, Any]] = {}

    def shown(self, path: str) -> str:
        """``path`` relative to the dataset root when it lies under it."""
        try:
            return (
                os.path.relpath(path, self.root) if Path(path).is_relative_to(self.root) else path
            )
        except ValueError:
            return path

    def entry(self, ex: LocalExample, file: str, reason: str, detail: str) -> dict[str, Any]:
        return {"file": file, "row": 0, "source": ex.source, "reason": reason, "detail": detail}

    def submit_image(self, ex: LocalExample, path: str) -> None:
        fut = self.pool.submit(
            process_local_file, path, self.processed_root, self.proc_options, ex.box
        )
        self.jobs[fut] = ("image", ex)

    def submit_video(self, video: str, exs: list[LocalExample]) -> None:
        fut = self.pool.submit(extract_frames, video, [e.frame for e in exs], self.frames_root)
        self.jobs[fut] = ("video", exs)

    def image_done(self, ex: LocalExample, result: tuple[Any, ...]) -> None:
        status, detail, path, size, fresh = result
        self.out.processed += int(fresh)
        self.out.cached += int(not fresh)
        if status == "ok":
            ex.path, ex.size = path, size
            self.bar.update(1, ready=1)
            return
        if ex.kind == "data":  # bytes from a label file (FER2013 pixels): its source names it
            file = ex.source
        elif ex.kind == "video":
            file = f"{self.shown(ex.origin)}#frame={ex.frame}"
        else:
            file = self.shown(ex.origin)
        if status == "skip":
            self.out.skipped.append(self.entry(ex, file, "no_face", detail))
            self.bar.update(1)
            return
        failure = self.entry(ex, file, "corrupt_image", detail)
        failure.update(stage="decode", category="corrupt_image")
        self.out.failures.append(failure)
        self.bar.update(1, failed=1)

    def video_done(self, exs: list[LocalExample], result: tuple[Any, ...]) -> None:
        frames, decoded = result
        self.out.frames_decoded += decoded
        for ex, (index, png, detail) in zip(exs, frames):
            if png is not None:
                self.submit_image(ex, png)
                continue
            video = self.shown(ex.origin)
            failure = self.entry(ex, video, "unreadable_frame", detail)
            failure.update(stage="video", category="unreadable_frame", frame=index)
            self.out.failures.append(failure)
            self.bar.update(1, failed=1)

    def drain(self, block_until: int) -> None:
        while len(self.jobs) > block_until:
            done, _ = wait(list(self.jobs), return_when=FIRST_COMPLETED)
            for fut in done:
                kind, what = self.jobs.pop(fut)
                result = fut.result()  # re-raise worker crashes (bugs), not image problems
                if kind == "image":
                    self.image_done(what, result)
                else:
                    self.video_done(what, result)

    def shutdown(self, interrupted: bool) -> None:
        self.bar.close()
        self.pool.shutdown(wait=not interrupted, cancel_futures=True)


def make_pool(workers: int) -> Executor:
    """The image-processing pool (``workers=0``: jobs run in this process).

    The build makes it before reading the source's items: forked workers then start from a small
    parent, instead of each inheriting a copy-on-write view of every example's label record.

    Args:
        workers: worker processes.

    Returns:
        The executor.
    """
    return _InlineExecutor() if workers == 0 else _make_pool(workers)


def process_local(
    inputs: LocalInputs,
    processed_root: Path,
    frames_root: Path,
    proc_options: dict[str, Any],
    *,
    workers: int,
    progress: bool = True,
    pool: Executor | None = None,
) -> FetchOutcome:
    """Process every example's image (files, cached data, video frames) in the process pool.

    Sets ``path`` and ``size`` of every example that could be used.

    Args:
        inputs: phase 1's result.
        processed_root: ``cache_dir/processed/<fingerprint>``.
        frames_root: ``cache_dir/frames`` (extracted video frames).
        proc_options: :meth:`~fer_tf.build.options.BuildOptions.process_options`.
        workers: worker processes (0: in this process).
        progress: show progress on stderr.
        pool: the pool to use (:func:`make_pool`; shut down on return), or None to make one.

    Returns:
        A :class:`~fer_tf.build.local.FetchOutcome` (``processed``: images decoded in this run;
        ``cached``: answered by the processed-image cache; ``frames_decoded``: video frames).
    """
    bar = Progress(
        len(inputs.examples), "process", "img", enabled=progress, counters=("failed", "ready")
    )
    run = _LocalRun(
        inputs.source.root, processed_root, frames_root, proc_options, workers, bar, pool
    )
    interrupted = False
    try:
        videos: dict[str, list[LocalExample]] = {}
        for ex in inputs.examples:
            if ex.kind == "video":
                videos.setdefault(ex.origin, []).append(ex)
                continue
            run.submit_image(ex, ex.origin)
            run.drain(block_until=run.limit)
        for video, exs in videos.items():
            run.submit_video(video, exs)
            run.drain(block_until=run.limit)
        run.drain(block_until=0)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        run.shutdown(interrupted)
    return run.out
