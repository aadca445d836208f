"""Video for inference: frame sampling with container timestamps, a read-ahead thread, and the
per-video summary of a frame table (Athanasiadis 2022: majority vote and mean scores).

No TensorFlow import.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from fer_tf.checks import check_number

__all__ = ["sample_frames", "prefetch", "summarize_videos"]


def sample_frames(
    path: str | os.PathLike[str], every_n_frames: int | None = None, fps: float | None = None
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(index, time_s, rgb)`` for the sampled frames of a video, in order.

    Frames are read sequentially (never by seeking) and only the sampled ones are decoded to RGB.
    Frame 0 is always included. ``time_s`` is the container's presentation time of the frame
    (``index / fps`` where the container gives none).

    Args:
        path: the video file.
        every_n_frames: keep frames 0, N, 2N, ...
        fps: keep the first frame at or after each multiple of ``1 / fps`` seconds. At most one of
            the two; neither keeps every frame.

    Yields:
        Frame index, time in seconds, uint8 RGB ``(H, W, 3)``.

    Raises:
        ValueError: both or bad sampling parameters.
        fer_tf.preprocessing.video.VideoError: the file is missing or cannot be opened.
    """
    import cv2

    from fer_tf.preprocessing.video import _open

    if every_n_frames is not None and fps is not None:
        raise ValueError("Pass at most one of 'every_n_frames' and 'fps'. Got both.")
    check_number("every_n_frames", every_n_frames, min=1, integer=True, allow_none=True)
    check_number("fps", fps, gt=0.0, allow_none=True)
    cap = _open(path)
    try:
        native = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        native = native if native == native else 0.0
        index, next_t = 0, 0.0
        while cap.grab():
            msec = float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
            t = msec / 1000.0 if msec > 0 or index == 0 else (index / native if native else 0.0)
            if every_n_frames is not None:
                keep = index % every_n_frames == 0
            elif fps is not None:
                keep = index == 0 or t >= next_t - 1e-6
            else:
                keep = True
            if keep:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    if fps is not None:
                        next_t = (np.floor(t * fps + 1e-6) + 1.0) / fps
                    yield index, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()


_END = object()


def prefetch(items: Iterable[Any], size: int = 64) -> Iterator[Any]:
    """Iterate ``items`` on a reader thread, ``size`` ahead, so decoding overlaps the consumer.

    An exception in the reader is raised in the consumer at that point of the sequence.

    Args:
        items: any iterable (a generator of decoded frames).
        size: queue length.

    Yields:
        The items, in order.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=size)
    stop = threading.Event()

    def run() -> None:
        """Fill the queue; end with a sentinel, or hand over the exception."""
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(("__error__", exc))

    thread = threading.Thread(target=run, name="fer_tf-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, tuple) and len(item) == 2 and item[0] == "__error__":
                raise item[1]
            yield item
    finally:
        stop.set()


def _vote(labels: Any, means: dict[str, float]) -> Any:
    """Most frequent label; ties go to the label with the higher mean score."""
    counts = labels.value_counts()
    if counts.empty:
        return None
    top = counts[counts == counts.max()].index
    return max(top, key=lambda c: means.get(str(c), 0.0))


def _summary_row(g: Any, metadata: Any) -> dict[str, Any]:
    frames = g.drop_duplicates("frame")
    faces = g[(g["face"] == 0) & (g["error"].fillna("") == "")]  # the largest face per frame
    row: dict[str, Any] = {
        "input": g["input"].iloc[0],
        "frames": int(len(frames)),
        "frames_with_face": int(len(faces)),
        "duration_s": float(frames["time_s"].max()) if len(frames) else float("nan"),
    }
    names = list(metadata.output_names)
    task = metadata.task
    if task in ("emotion", "posed"):
        means = {c: float(faces[c].mean()) for c in names} if len(faces) else {}
        row[f"{task}_vote"] = _vote(faces[f"{task}_label"], means) if len(faces) else None
        row[f"{task}_mean"] = max(means, key=lambda c: means[c]) if means else None
        for c in names:
            row[f"{c}_mean"] = means.get(c, float("nan"))
    elif task == "au":
        for a, thr in zip(metadata.au_ids, metadata.thresholds):
            p = faces[f"AU{a}"].astype(float)
            present = faces[f"AU{a}_present"].astype(float)
            row[f"AU{a}_mean"] = float(p.mean()) if len(p) else float("nan")
            row[f"AU{a}_peak"] = float(p.max()) if len(p) else float("nan")
            row[f"AU{a}_present_vote"] = bool(present.mean() > 0.5) if len(p) else None
            row[f"AU{a}_present_mean"] = bool(p.mean() >= thr) if len(p) else None
    elif task == "au_intensity":
        for a in metadata.au_ids:
            v = faces[f"AU{a}_intensity"].astype(float)
            row[f"AU{a}_intensity_mean"] = float(v.mean()) if len(v) else float("nan")
            row[f"AU{a}_intensity_peak"] = float(v.max()) if len(v) else float("nan")
    else:
        for c in names:
            row[f"{c}_mean"] = float(faces[c].astype(float).mean()) if len(faces) else float("nan")
    return row


def summarize_videos(table: Any, metadata: Any) -> Any:
    """One row per video of a prediction table (rows with ``frame >= 0``), Athanasiadis 2022.

    Both aggregations over the sampled frames' largest face (``face == 0``): the majority vote
    over the frame predictions (``<task>_vote``; ties to the higher mean score) and the class of
    the mean scores (``<task>_mean``), with the mean score per class; for AUs the mean and peak
    probability and ``AU<n>_present_vote`` (present in most frames) /
    ``AU<n>_present_mean`` (mean probability at or above the threshold); mean valence/arousal.

    Args:
        table: a :meth:`fer_tf.Predictor.predict` DataFrame.
        metadata: the model's :class:`~fer_tf.inference.metadata.ModelMetadata`.

    Returns:
        A DataFrame, one row per video, in the order the videos appear.
    """
    import pandas as pd

    videos = table[table["frame"] >= 0]
    rows = [_summary_row(g, metadata) for _, g in videos.groupby("input", sort=False)]
    return pd.DataFrame(rows)
