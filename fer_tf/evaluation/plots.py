"""Evaluation figures (matplotlib, Agg backend): confusion matrices, per-AU F1 bars, precision-
recall and ROC curves, reliability diagrams, learning curves (one run or many overlaid).

Every function writes one PNG and returns its path. No TensorFlow import.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "confusion_matrices",
    "video_confusion",
    "per_au_f1",
    "au_curves",
    "reliability",
    "learning_curves",
    "overlaid_learning_curves",
    "va_scatter",
    "read_history",
]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_epochs(ax: Any, epochs: Sequence[float] = ()) -> None:
    """Whole-number epoch ticks (each epoch when there are few)."""
    from matplotlib.ticker import MaxNLocator

    seen = sorted({e for e in epochs if e == e})
    if 0 < len(seen) <= 12:
        ax.set_xticks(seen)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _matrix(ax: Any, cm: np.ndarray, names: Sequence[str], title: str, normalise: bool) -> None:
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    shown = norm if normalise else cm
    ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    k = len(names)
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalise else f"{int(shown[i, j])}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=8 if k <= 8 else 6,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)


def confusion_matrices(cm: np.ndarray, names: Sequence[str], path: Path, title: str = "") -> Path:
    """Counts and row-normalised confusion matrix side by side (rows true, columns predicted).

    Args:
        cm: ``[K, K]`` counts.
        names: class names.
        path: the PNG.
        title: a prefix for the panel titles (e.g. the split).

    Returns:
        ``path``.
    """
    plt = _pyplot()
    size = max(4.5, 0.55 * len(names) + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size))
    _matrix(axes[0], cm, names, f"{title}counts", normalise=False)
    _matrix(axes[1], cm, names, f"{title}row-normalised (recall on the diagonal)", normalise=True)
    return _save(fig, path)


def video_confusion(cms: Mapping[str, np.ndarray], names: Sequence[str], path: Path) -> Path:
    """Video-level confusion matrices, one panel per aggregation (counts; colour = row share).

    Args:
        cms: method (``majority``, ``mean``) → ``[K, K]`` counts.
        names: class names.
        path: the PNG.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    size = max(4.5, 0.55 * len(names) + 2.5)
    fig, axes = plt.subplots(1, len(cms), figsize=(size * len(cms), size), squeeze=False)
    titles = {"majority": "videos: majority vote of frames", "mean": "videos: mean frame scores"}
    for ax, (method, cm) in zip(axes[0], cms.items()):
        _matrix(ax, cm, names, titles.get(method, method), normalise=False)
    return _save(fig, path)


def per_au_f1(
    names: Sequence[str],
    series: Mapping[str, Sequence[float]],
    path: Path,
    *,
    title: str = "Per-AU F1",
    ylabel: str = "F1",
) -> Path:
    """Grouped F1 bars per AU, one bar per series (e.g. at 0.5 and at calibrated thresholds).

    The legend sits above the axes, in one row, so it never covers a bar or its value label.

    Args:
        names: AU names.
        series: label → one F1 per AU.
        path: the PNG.
        title: the axes title.
        ylabel: the F1 axis label.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    x = np.arange(len(names))
    n = max(len(series), 1)
    w = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(7, (0.25 * n + 0.25) * len(names) + 2), 4.4))
    for i, (label, values) in enumerate(series.items()):
        vals = [0.0 if v is None or v != v else float(v) for v in values]
        bars = ax.bar(x + (i - (n - 1) / 2) * w, vals, w, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(x, names)
    ax.set_ylabel(ylabel)
    # Bars reach 1.0 and their labels sit above them: headroom inside the axes, and the legend
    # between the title and the axes instead of over the bars.
    ax.set_ylim(0, 1.1)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_title(title, pad=28)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=n, frameon=False, fontsize=8)
    return _save(fig, path)


def _grid(n: int) -> tuple[int, int]:
    cols = min(5, n)
    return math.ceil(n / cols), cols


def au_curves(
    names: Sequence[str],
    labels: np.ndarray,
    probs: np.ndarray,
    path: Path,
    kind: str,
    thresholds: Sequence[float] | None = None,
) -> Path:
    """Per-AU precision-recall (``kind="pr"``) or ROC (``"roc"``) curves, one panel per AU, the
    operating point at each AU's threshold marked.

    Args:
        names: AU names.
        labels: ``[N, K]`` 1/0/-1 (unknown left out).
        probs: ``[N, K]`` probabilities.
        path: the PNG.
        kind: ``pr`` or ``roc``.
        thresholds: per-AU thresholds (default 0.5).

    Returns:
        ``path``.
    """
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    plt = _pyplot()
    rows, cols = _grid(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.5 * rows), squeeze=False)
    t = [0.5] * len(names) if thresholds is None else list(thresholds)
    for j, ax in enumerate(axes.flat):
        if j >= len(names):
            ax.axis("off")
            continue
        known = labels[:, j] >= 0
        y, s = (labels[known, j] > 0.5).astype(int), probs[known, j]
        op = s > t[j]
        if y.min(initial=1) == y.max(initial=0):  # one class only: no curve
            ax.text(0.5, 0.5, "one class only", ha="center", va="center", fontsize=8)
        elif kind == "pr":
            prec, rec, _ = precision_recall_curve(y, s)
            ax.plot(rec, prec, lw=1.2)
            ax.axhline(y.mean(), ls=":", c="grey", lw=0.8)
            tp = float((op & (y == 1)).sum())
            ax.plot(tp / max(y.sum(), 1), tp / max(op.sum(), 1), "o", c="red", ms=4)
            ax.set_title(f"{names[j]}  AP {average_precision_score(y, s):.2f}", fontsize=9)
        else:
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, lw=1.2)
            ax.plot([0, 1], [0, 1], ls=":", c="grey", lw=0.8)
            fp = float((op & (y == 0)).sum())
            tp = float((op & (y == 1)).sum())
            ax.plot(fp / max((y == 0).sum(), 1), tp / max(y.sum(), 1), "o", c="red", ms=4)
            ax.set_title(f"{names[j]}  AUC {auc(fpr, tpr):.2f}", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
    what = ("recall", "precision") if kind == "pr" else ("false positive rate", "true pos. rate")
    fig.supxlabel(what[0], fontsize=9)
    fig.supylabel(what[1], fontsize=9)
    title = "Precision-recall per AU" if kind == "pr" else "ROC per AU"
    fig.suptitle(f"{title} (red: the operating point at the AU's threshold)", fontsize=10)
    return _save(fig, path)


def reliability(
    confidence: np.ndarray, correct: np.ndarray, path: Path, title: str, bins: int = 10
) -> Path:
    """Reliability (calibration) diagram: observed frequency against predicted probability, in
    equal-width bins, with the expected calibration error (ECE) and a histogram of the scores.

    Args:
        confidence: predicted probabilities (AU: every known AU probability; classification:
            the top class's probability).
        correct: the matching outcomes (AU present; top class right), 0/1.
        path: the PNG.
        title: the figure title.
        bins: number of bins.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    c = np.asarray(confidence, dtype=np.float64).ravel()
    y = np.asarray(correct, dtype=np.float64).ravel()
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(c, edges[1:-1]), 0, bins - 1)
    count = np.bincount(idx, minlength=bins).astype(np.float64)
    mean_c = np.divide(np.bincount(idx, c, bins), count, out=np.zeros(bins), where=count > 0)
    freq = np.divide(np.bincount(idx, y, bins), count, out=np.zeros(bins), where=count > 0)
    ece = float((count * np.abs(freq - mean_c)).sum() / max(count.sum(), 1))
    fig, (ax, hx) = plt.subplots(
        2, 1, figsize=(5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True
    )
    centres = (edges[:-1] + edges[1:]) / 2
    used = count > 0
    ax.bar(
        centres[used], freq[used], width=1 / bins, edgecolor="black", alpha=0.7, label="observed"
    )
    ax.plot([0, 1], [0, 1], ls="--", c="grey", label="perfect calibration")
    ax.plot(mean_c[used], freq[used], "o-", c="red", ms=3, label="mean predicted")
    ax.set_ylabel("observed frequency")
    ax.set_ylim(0, 1)
    ax.set_title(f"{title}\nECE {ece:.3f} ({int(count.sum())} predictions)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    hx.bar(centres, count, width=1 / bins, edgecolor="black", color="grey")
    hx.set_xlabel("predicted probability")
    hx.set_ylabel("count")
    hx.set_xlim(0, 1)
    return _save(fig, path)


def read_history(history_csv: Path) -> list[dict[str, float]]:
    """``history.csv`` rows as floats (empty or unparsable cells become NaN)."""
    with Path(history_csv).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    def num(v: Any) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            return float("nan")

    return [{k: num(v) for k, v in r.items()} for r in rows]


def learning_curves(
    history_csv: Path,
    path: Path,
    metric: str,
    *,
    references: Mapping[str, float] | None = None,
    split_labels: Mapping[str, str] | None = None,
    loss_label: str = "loss",
    metric_range: tuple[float, float] | None = None,
) -> Path:
    """Loss and ``metric`` per epoch, train and validation, from a run's ``history.csv``.

    Args:
        history_csv: the run's ``history.csv``.
        path: the PNG.
        metric: the metric (``f1_mean``, ``accuracy``, ``ccc_mean``).
        references: label → value of horizontal reference lines on the metric panel
            (baselines).
        split_labels: legend names of ``train`` and ``val`` (default: the split names).
        loss_label: the loss axis label.
        metric_range: the metric axis limits (default: matplotlib's).

    Returns:
        ``path``.
    """
    plt = _pyplot()
    rows = read_history(history_csv)
    ep = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
    labels = {"train": "train", "val": "val", **(split_labels or {})}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key in zip(axes, ("loss", metric)):
        for split, style in (("train", "o-"), ("val", "s-")):
            values = [r.get(f"{split}/{key}", float("nan")) for r in rows]
            if not all(v != v for v in values):
                ax.plot(ep, values, style, ms=3, label=labels[split])
        if key == "loss" and rows and math.isfinite(rows[0].get("chance_loss", math.nan)):
            ax.axhline(rows[0]["chance_loss"], ls="--", c="grey", label="chance")
        ax.set_xlabel("epoch")
        _integer_epochs(ax, ep)
        ax.set_title(key)
    for (label, value), style in zip((references or {}).items(), ("--", ":", "-.")):
        axes[1].axhline(value, ls=style, c="grey" if style == "--" else "black", label=label)
    axes[0].set_ylabel(loss_label)
    axes[1].set_ylabel(metric)
    if metric_range is not None:
        axes[1].set_ylim(*metric_range)
    for ax in axes:
        ax.legend(fontsize=8)
    return _save(fig, path)


def overlaid_learning_curves(
    histories: Mapping[str, Path], path: Path, metric: str, split: str = "val"
) -> Path:
    """Several runs' ``split`` loss and ``metric`` per epoch on shared axes.

    Args:
        histories: run label → its ``history.csv``.
        path: the PNG.
        metric: the metric plotted next to the loss.
        split: ``val`` or ``train``.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    all_epochs: list[float] = []
    for label, csv_path in histories.items():
        rows = read_history(csv_path)
        ep = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
        all_epochs += ep
        for ax, key in zip(axes, ("loss", metric)):
            ax.plot(
                ep, [r.get(f"{split}/{key}", float("nan")) for r in rows], "o-", ms=2.5, label=label
            )
    for ax, key in zip(axes, ("loss", metric)):
        ax.set_xlabel("epoch")
        _integer_epochs(ax, all_epochs)
        ax.set_title(f"{split}/{key}")
    axes[1].legend(fontsize=7, loc="best", ncol=1 + len(histories) // 12)
    return _save(fig, path)


def va_scatter(names: Sequence[str], targets: np.ndarray, preds: np.ndarray, path: Path) -> Path:
    """Predicted against true valence/arousal, one panel per dimension.

    Args:
        names: dimension names.
        targets: ``[N, D]`` (NaN unknown).
        preds: ``[N, D]``.
        path: the PNG.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4), squeeze=False)
    for j, ax in enumerate(axes[0]):
        known = ~np.isnan(targets[:, j])
        ax.scatter(targets[known, j], preds[known, j], s=6, alpha=0.5)
        lo = float(np.nanmin([targets[known, j].min(initial=-1), preds[:, j].min(initial=-1)]))
        hi = float(np.nanmax([targets[known, j].max(initial=1), preds[:, j].max(initial=1)]))
        ax.plot([lo, hi], [lo, hi], ls="--", c="grey")
        ax.set_xlabel(f"true {names[j]}")
        ax.set_ylabel(f"predicted {names[j]}")
    return _save(fig, path)
