"""fer_tf.preprocessing.video: frame counts, timestamps and sequential frame reading."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_tf.preprocessing.video import VideoError, is_video, read_frames, video_info


def _write(path: Path, fourcc: str, n: int = 17, fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), i * 12, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize(("suffix", "fourcc"), [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_info_and_selected_frames(tmp_path: Path, suffix: str, fourcc: str) -> None:
    path = _write(tmp_path / f"clip{suffix}", fourcc)
    info = video_info(path)
    assert (info.frames, info.width, info.height) == (17, 64, 48)
    assert info.fps == pytest.approx(10.0)
    got = list(read_frames(path, [16, 0, 5, 5, 40]))
    assert [i for i, _, _ in got] == [
        0,
        5,
        16,
    ]  # file order, duplicates once, past-the-end left out
    assert [t for _, t, _ in got] == pytest.approx([0.0, 0.5, 1.6], abs=1e-3)
    means = [float(f.mean()) for _, _, f in got]
    assert means == pytest.approx([0, 60, 192], abs=6)  # the right frames, not key frames
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for _, _, f in got)
    assert len(list(read_frames(path))) == 17


def test_missing_and_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="No video file"):
        video_info(tmp_path / "none.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoError, match="cannot open"):
        list(read_frames(bad))
    assert is_video("a/B.MKV") and not is_video("a/b.jpg")
