"""Draw a prediction table on its images and videos (``fer-tf-predict --annotate DIR``).

NumPy/OpenCV only. Images are written as PNG, videos (the sampled frames) as MJPG ``.avi``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["annotate"]


def _label(row: Any, metadata: Any) -> str:
    t = metadata.task
    if t in ("emotion", "posed"):
        name = row.get(f"{t}_label")
        return f"{name} {row.get(name, float('nan')):.2f}" if isinstance(name, str) else ""
    if t == "au":
        on = [f"AU{a}" for a in metadata.au_ids if bool(row.get(f"AU{a}_present") is True)]
        return " ".join(on) or "no AU"
    if t == "au_intensity":
        return " ".join(f"AU{a}:{row.get(f'AU{a}_intensity', 0):.1f}" for a in metadata.au_ids)
    return " ".join(f"{c[:3]} {row.get(c, float('nan')):+.2f}" for c in metadata.output_names)


def _draw(rgb: np.ndarray, rows: Any, metadata: Any) -> np.ndarray:
    import cv2

    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    thick = max(1, round(min(bgr.shape[:2]) / 300))
    for _, r in rows.iterrows():
        if int(r["face"]) < 0:
            continue
        x, y, w, h = (int(r[c]) for c in ("x", "y", "w", "h"))
        cv2.rectangle(bgr, (x, y), (x + w, y + h), (0, 255, 0), thick)
        cv2.putText(
            bgr,
            _label(r, metadata),
            (x, max(12, y - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thick,
            (0, 255, 0),
            thick,
        )
    return bgr


def _unique(out: Path, name: str, suffix: str, used: set[str]) -> Path:
    stem, k = Path(name).stem, 0
    cand = stem
    while cand + suffix in used:
        k += 1
        cand = f"{stem}_{k}"
    used.add(cand + suffix)
    return out / (cand + suffix)


def annotate(table: Any, metadata: Any, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write every readable input of ``table`` with its face boxes and labels drawn.

    Args:
        table: a :meth:`fer_tf.Predictor.predict` DataFrame (``input`` must be file paths).
        metadata: the model's metadata (for the labels).
        out_dir: output directory (created).

    Returns:
        The files written.
    """
    import cv2

    from fer_tf.inference.video import sample_frames
    from fer_tf.preprocessing.decode import decode_image

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()
    ok = table[table["error"] == ""]
    for name, rows in ok.groupby("input", sort=False):
        if not Path(name).is_file():
            continue
        if int(rows["frame"].max()) < 0:
            dst = _unique(out, name, ".png", used)
            cv2.imwrite(str(dst), _draw(decode_image(Path(name).read_bytes()), rows, metadata))
            written.append(dst)
            continue
        frames = set(int(f) for f in rows["frame"])
        dst, writer = _unique(out, name, ".avi", used), None
        times = sorted(set(rows["time_s"]))
        fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > 0 else 5
        for index, _, rgb in sample_frames(name):
            if index not in frames:
                continue
            if writer is None:
                h, w = rgb.shape[:2]
                writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
            writer.write(_draw(rgb, rows[rows["frame"] == index], metadata))
        if writer is not None:
            writer.release()
            written.append(dst)
    return written
