"""Video files: what they hold and their frames, through OpenCV's FFmpeg backend (no TensorFlow).

Used by the sequence/video dataset sources (frame lists), the record build (frame extraction) and
inference (frame sampling). Frame counts from the container header are often wrong (variable frame
rate, truncated files), so :func:`video_info` counts frames by grabbing them when asked to be exact,
and :func:`read_frames` reads sequentially, never by seeking: seeking in compressed streams lands on
key frames and returns the wrong frame on some codecs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["VIDEO_SUFFIXES", "VideoInfo", "VideoError", "video_info", "read_frames", "is_video"]

#: File suffixes treated as videos.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


class VideoError(OSError):
    """A video that cannot be opened or read."""


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds.

    Attributes:
        frames: number of frames (counted when ``exact``, else the container's figure).
        fps: frames per second from the container (0.0 when unknown).
        width: frame width in pixels.
        height: frame height in pixels.
    """

    frames: int
    fps: float
    width: int
    height: int


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` has a video suffix (:data:`VIDEO_SUFFIXES`, case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _open(path: str | os.PathLike[str]):  # -> cv2.VideoCapture
    import cv2

    p = Path(path)
    if not p.is_file():
        raise VideoError(f"No video file at '{p}'.")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise VideoError(
            f"OpenCV cannot open '{p}' as a video (accepted: {', '.join(VIDEO_SUFFIXES)} that its "
            "FFmpeg backend decodes)."
        )
    return cap


def video_info(path: str | os.PathLike[str], exact: bool = True) -> VideoInfo:
    """Frame count, frame rate and size of a video.

    Args:
        path: the video file.
        exact: count frames by grabbing every one (slower, always right) rather than trusting the
            container header.

    Returns:
        A :class:`VideoInfo`.

    Raises:
        VideoError: the file is missing or cannot be opened.
    """
    import cv2

    cap = _open(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if exact:
            frames = 0
            while cap.grab():
                frames += 1
        else:
            frames = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()
    return VideoInfo(frames=frames, fps=fps if fps == fps else 0.0, width=width, height=height)


def read_frames(
    path: str | os.PathLike[str], indices: Iterable[int] | None = None
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(index, time_s, rgb)`` for the wanted frames of a video, in file order.

    Args:
        path: the video file.
        indices: 0-based frame indices to return (any order, duplicates ignored); None for all.
            Indices past the end are not yielded (the caller compares what it got).

    Yields:
        The frame index, its presentation time in seconds (from the container's timestamps,
        falling back to ``index / fps``) and the frame as an RGB ``uint8`` array (H, W, 3).

    Raises:
        VideoError: the file is missing or cannot be opened.
    """
    import cv2

    wanted = None if indices is None else sorted(set(int(i) for i in indices))
    if wanted is not None and not wanted:
        return
    last = None if wanted is None else wanted[-1]
    want = None if wanted is None else set(wanted)
    cap = _open(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        index = 0
        while last is None or index <= last:
            if not cap.grab():
                break
            if want is None or index in want:
                ok, bgr = cap.retrieve()
                if ok and bgr is not None:
                    msec = float(cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
                    t = msec / 1000.0 if msec > 0 or index == 0 else (index / fps if fps else 0.0)
                    yield index, t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        cap.release()
