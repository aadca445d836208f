"""Per-video metrics from frame predictions: majority vote and mean scores (Athanasiadis 2022).

Frames that share a non-empty ``meta/sequence`` form a video; stills (empty sequence) are left
out. Per video:

- the true label is the most frequent known frame label (classification; ties go to the lower
  class index), the AU present when at least half of its known frames are, the mean of the known
  targets (valence/arousal); a video without a known label is left out;
- **majority vote**: the most frequent frame prediction (ties go to the class with the higher mean
  score); an AU present when at least half of the frames predict it;
- **mean scores**: the class of the mean frame probabilities; an AU present when its mean
  probability is above its threshold; valence/arousal: the mean prediction.

The metrics are the task's own (:mod:`fer_tf.metrics`) over videos instead of frames. No
TensorFlow import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fer_tf.evaluation.thresholds import au_stats

__all__ = ["VideoResult", "aggregate_videos", "group_frames"]


@dataclass
class VideoResult:
    """Per-video results of one split.

    Attributes:
        videos: the sequence ids, in first-seen order.
        frames: frames per video.
        methods: ``"majority"`` and ``"mean"`` (classification, AU) or ``"mean"`` (va) →
            the task's metrics over videos (``result()`` dict).
        confusion: method → ``[K, K]`` video-level confusion matrix (classification).
        rows: one dict per video: ``sequence``, ``frames``, ``true`` and each method's prediction.
    """

    videos: list[str]
    frames: list[int]
    methods: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: dict[str, np.ndarray] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


def group_frames(sequences: Sequence[str]) -> dict[str, np.ndarray]:
    """Indices of the frames of each non-empty sequence id, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(sequences):
        if s:
            groups.setdefault(str(s), []).append(i)
    return {k: np.asarray(v, dtype=np.int64) for k, v in groups.items()}


def _classification(
    groups: dict[str, np.ndarray], scores: np.ndarray, labels: np.ndarray, names: Sequence[str]
) -> VideoResult:
    from fer_tf.metrics import ClassificationMetrics

    k = len(names)
    res = VideoResult(videos=[], frames=[])
    cms = {m: np.zeros((k, k)) for m in ("majority", "mean")}
    for vid, idx in groups.items():
        y = labels[idx]
        y = y[y >= 0]
        if len(y) == 0:
            continue
        true = int(np.argmax(np.bincount(y, minlength=k)))
        mean = scores[idx].mean(axis=0)
        votes = np.bincount(scores[idx].argmax(axis=1), minlength=k)
        tied = np.flatnonzero(votes == votes.max())
        majority = int(tied[np.argmax(mean[tied])])
        by_mean = int(np.argmax(mean))
        cms["majority"][true, majority] += 1
        cms["mean"][true, by_mean] += 1
        res.videos.append(vid)
        res.frames.append(len(idx))
        res.rows.append(
            {
                "sequence": vid,
                "frames": len(idx),
                "true": names[true],
                "majority": names[majority],
                "mean": names[by_mean],
            }
        )
    for method, cm in cms.items():
        m = ClassificationMetrics(names)
        m.update_from_stats({"confusion": cm})
        res.methods[method] = {"videos": float(cm.sum()), **m.result()}
        res.confusion[method] = cm.astype(np.int64)
    return res


def _au(
    groups: dict[str, np.ndarray],
    scores: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    thresholds: Sequence[float],
) -> VideoResult:
    from fer_tf.metrics import AUMetrics

    t = np.asarray(thresholds, dtype=np.float64)
    res = VideoResult(videos=[], frames=[])
    ys, votes, means = [], [], []
    for vid, idx in groups.items():
        y = labels[idx].astype(np.float64)
        known = y >= 0
        n_known = known.sum(axis=0)
        if not n_known.any():
            continue
        share = np.divide((y > 0.5).sum(axis=0), n_known, out=np.zeros(len(t)), where=n_known > 0)
        ys.append(np.where(n_known > 0, (share >= 0.5).astype(np.float64), -1.0))
        votes.append((scores[idx] > t).mean(axis=0))
        means.append(scores[idx].mean(axis=0))
        res.videos.append(vid)
        res.frames.append(len(idx))
        res.rows.append({"sequence": vid, "frames": len(idx)})
    if not ys:
        return res
    y_v = np.stack(ys)
    # Majority vote: the vote share against 0.5 (ties present); its histograms rank by share.
    for method, s, thr in (
        ("majority", np.stack(votes), np.full(len(t), 0.5 - 1e-9)),
        ("mean", np.stack(means), t),
    ):
        m = AUMetrics(names)
        m.update_from_stats(au_stats(y_v, s, thr, m.num_bins))
        res.methods[method] = {"videos": float(len(ys)), **m.result()}
        for row, pred in zip(res.rows, s > thr):
            row[method] = " ".join(n for n, on in zip(names, pred) if on)
    for row, y in zip(res.rows, y_v):
        row["true"] = " ".join(n for n, on in zip(names, y) if on > 0)
    return res


def _regression(
    groups: dict[str, np.ndarray], outputs: np.ndarray, labels: np.ndarray, names: Sequence[str]
) -> VideoResult:
    from fer_tf.metrics import RegressionMetrics

    res = VideoResult(videos=[], frames=[])
    xs, ys = [], []
    for vid, idx in groups.items():
        y = labels[idx].astype(np.float64)
        if np.isnan(y).all():
            continue
        with np.errstate(invalid="ignore"):
            ys.append(np.nanmean(np.where(np.isnan(y), np.nan, y), axis=0))
        xs.append(outputs[idx].mean(axis=0))
        res.videos.append(vid)
        res.frames.append(len(idx))
        res.rows.append({"sequence": vid, "frames": len(idx)})
    if not ys:
        return res
    x, y = np.stack(xs), np.stack(ys)
    known = ~np.isnan(y)
    x0, y0 = np.where(known, x, 0.0), np.where(known, y, 0.0)
    m = RegressionMetrics(names)
    m.update_from_stats(
        {
            "n": known.sum(0),
            "sx": x0.sum(0),
            "sy": y0.sum(0),
            "sxx": (x0 * x0).sum(0),
            "syy": (y0 * y0).sum(0),
            "sxy": (x0 * y0).sum(0),
            "sae": np.abs(x0 - y0).sum(0),
        }
    )
    res.methods["mean"] = {"videos": float(len(ys)), **m.result()}
    return res


def aggregate_videos(
    task: str,
    sequences: Sequence[str],
    scores: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    thresholds: Sequence[float] | None = None,
) -> VideoResult | None:
    """Per-video metrics of frame predictions, by majority vote and by mean scores.

    Args:
        task: ``au``, ``va``, ``posed`` or ``emotion``.
        sequences: one sequence id per frame (empty for stills).
        scores: ``[N, K]`` frame scores: probabilities (au, posed, emotion) or predictions (va).
        labels: frame labels in the task convention: ``[N]`` class indices (-1 unknown),
            ``[N, K]`` AU labels 1/0/-1, ``[N, 2]`` targets (NaN unknown).
        names: output names.
        thresholds: AU thresholds (default 0.5 each).

    Returns:
        The :class:`VideoResult`, or None when no frame belongs to a video.

    Raises:
        ValueError: the arrays disagree in length.
    """
    if len(sequences) != len(scores) or len(scores) != len(labels):
        raise ValueError(
            f"sequences, scores and labels must have one entry per frame. Got {len(sequences)}, "
            f"{len(scores)} and {len(labels)}."
        )
    groups = group_frames(sequences)
    if not groups:
        return None
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if task == "au":
        t = [0.5] * len(names) if thresholds is None else list(thresholds)
        return _au(groups, scores, labels, names, t)
    if task == "va":
        return _regression(groups, scores, labels, names)
    return _classification(groups, scores, labels.astype(np.int64), names)
