"""Per-AU decision thresholds: AU metrics at any thresholds, and the thresholds that maximise F1.

An AU is predicted present when its probability is *above* the threshold (as
:class:`fer_tf.metrics.AUMetrics` does at 0.5). :func:`au_metrics` feeds NumPy statistics to
:class:`~fer_tf.metrics.AUMetrics`, so the metrics at per-AU thresholds use the very formulas of
training's metrics. No TensorFlow import.

Calibrate on a validation split and report on the test split: thresholds chosen on a split make
that split's F1 optimistic (in-sample).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["au_stats", "au_metrics", "calibrate_f1", "sigmoid"]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Float64 logistic function of ``logits`` (stable for large magnitudes)."""
    z = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def au_stats(
    labels: np.ndarray,
    probs: np.ndarray,
    thresholds: Sequence[float] | float = 0.5,
    num_bins: int = 1000,
) -> dict[str, np.ndarray]:
    """:meth:`fer_tf.metrics.AUMetrics.batch_stats` in NumPy, with one threshold per AU.

    Args:
        labels: ``[N, K]`` 1 present, 0 absent, -1 unknown.
        probs: ``[N, K]`` probabilities.
        thresholds: one per AU, or one for all.
        num_bins: histogram bins of the AUC statistics.

    Returns:
        The statistics dict (``tp``, ``fp``, ``tn``, ``fn``, ``pos_hist``, ``neg_hist``,
        ``partial_sum``, ``exact_sum``, ``examples``).
    """
    y_raw = np.asarray(labels, dtype=np.float64)
    prob = np.asarray(probs, dtype=np.float64)
    k = y_raw.shape[1]
    known = (y_raw >= 0).astype(np.float64)
    y = (y_raw > 0.5).astype(np.float64)
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (k,))
    p = (prob > t[None, :]).astype(np.float64)
    bins = np.clip(np.floor(prob * num_bins).astype(np.int64), 0, num_bins - 1)
    pos = np.zeros((k, num_bins))
    neg = np.zeros((k, num_bins))
    for j in range(k):
        pos[j] = np.bincount(bins[:, j], weights=known[:, j] * y[:, j], minlength=num_bins)
        neg[j] = np.bincount(bins[:, j], weights=known[:, j] * (1 - y[:, j]), minlength=num_bins)
    n_known = known.sum(axis=1)
    correct = (known * (y == p)).sum(axis=1)
    has = n_known > 0
    partial = np.divide(correct, n_known, out=np.zeros_like(correct), where=has)
    return {
        "tp": (known * y * p).sum(0),
        "fp": (known * (1 - y) * p).sum(0),
        "tn": (known * (1 - y) * (1 - p)).sum(0),
        "fn": (known * y * (1 - p)).sum(0),
        "pos_hist": pos,
        "neg_hist": neg,
        "partial_sum": np.asarray(partial.sum()),
        "exact_sum": np.asarray((has & (correct == n_known)).sum(), dtype=np.float64),
        "examples": np.asarray(has.sum(), dtype=np.float64),
    }


def au_metrics(
    names: Sequence[str],
    labels: np.ndarray,
    probs: np.ndarray,
    thresholds: Sequence[float] | float = 0.5,
) -> Any:
    """An :class:`~fer_tf.metrics.AUMetrics` holding ``labels``/``probs`` at ``thresholds``.

    Args:
        names: AU names.
        labels: ``[N, K]`` 1/0/-1.
        probs: ``[N, K]`` probabilities.
        thresholds: one per AU, or one for all.

    Returns:
        The metrics object (``.result()``, ``.per_au()``).
    """
    from fer_tf.metrics import AUMetrics

    m = AUMetrics(names)
    m.update_from_stats(au_stats(labels, probs, thresholds, m.num_bins))
    return m


def _best_cut(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """Threshold maximising F1 of ``s > t`` for binary ``y`` (known labels only), and that F1.

    Candidates: 0.5 and the midpoints between consecutive distinct scores (and just above and
    below all of them), inside ``[1e-6, 1 - 1e-6]``; each is scored exactly as it will be used.
    Among equal F1 the threshold nearest 0.5 wins, so a flat optimum keeps the default.
    """
    positives = float(y.sum())
    if positives == 0 or len(s) == 0:
        return 0.5, 0.0
    values = np.unique(s)
    cuts = np.r_[0.5, (values[1:] + values[:-1]) / 2.0, values[0] / 2.0, (values[-1] + 1.0) / 2.0]
    cuts = np.unique(np.clip(cuts, 1e-6, 1.0 - 1e-6))
    pos = np.sort(s[y > 0.5])
    neg = np.sort(s[y <= 0.5])
    tp = len(pos) - np.searchsorted(pos, cuts, side="right")  # positives scored above the cut
    fp = len(neg) - np.searchsorted(neg, cuts, side="right")
    f1 = 2.0 * tp / (tp + positives + fp)  # 2tp / (2tp + fp + fn), fn = positives - tp
    best = f1.max()
    candidates = np.flatnonzero(f1 >= best - 1e-12)
    pick = candidates[np.argmin(np.abs(cuts[candidates] - 0.5))]
    return float(cuts[pick]), float(f1[pick])


def calibrate_f1(labels: np.ndarray, probs: np.ndarray) -> list[float]:
    """Per-AU thresholds maximising F1 of ``probs > threshold`` on these examples.

    Unknown labels (-1) are ignored; an AU without a known positive keeps 0.5. The F1 at the
    returned thresholds is at least the F1 at 0.5 on the same examples (0.5 is one of the cuts
    searched).

    Args:
        labels: ``[N, K]`` 1/0/-1.
        probs: ``[N, K]`` probabilities.

    Returns:
        K thresholds in ``(0, 1)``.
    """
    y_all = np.asarray(labels)
    s_all = np.asarray(probs, dtype=np.float64)
    out = []
    for j in range(y_all.shape[1]):
        known = y_all[:, j] >= 0
        t, _ = _best_cut((y_all[known, j] > 0.5).astype(np.float64), s_all[known, j])
        out.append(t)
    return out
