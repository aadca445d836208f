"""The demo report's figures: learning curves and per-AU F1 bars (matplotlib, Agg backend)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["learning_curves", "per_au_f1", "plots"]


def _num(value: Any) -> float:
    """A plottable number (None/NaN → 0)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if v != v else v


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(history_csv: Path, path: Path, base: dict[str, float]) -> Path:
    """Loss and mean AU F1 per epoch, train and held-out, against the baselines.

    Args:
        history_csv: the run's ``history.csv``.
        path: the PNG written.
        base: :func:`fer_tf.demo.baseline.baseline` metrics.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    with history_csv.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ep = [int(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(ep, [float(r["train/loss"]) for r in rows], "o-", ms=3, label="train loss")
    axes[0].plot(ep, [float(r["val/loss"]) for r in rows], "s-", ms=3, label="held-out loss")
    axes[0].axhline(float(rows[0]["chance_loss"]), ls="--", c="grey", label="chance (ln 2)")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("masked sigmoid cross-entropy")
    axes[0].set_title("Loss")
    axes[0].legend()
    axes[1].plot(ep, [float(r["train/f1_mean"]) for r in rows], "o-", ms=3, label="train")
    axes[1].plot(ep, [float(r["val/f1_mean"]) for r in rows], "s-", ms=3, label="held-out")
    axes[1].axhline(base["f1_mean"], ls="--", c="grey", label="majority baseline")
    axes[1].axhline(
        base["always_present/f1_mean"], ls=":", c="black", label="always-present reference"
    )
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("mean AU F1")
    axes[1].set_title("Mean AU F1")
    axes[1].set_ylim(0, 1)
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def per_au_f1(per_au: dict[str, Any], path: Path, base: dict[str, float]) -> Path:
    """Grouped bars per AU: the model, the majority baseline, the always-present reference.

    The legend sits above the axes, in one row, so it never covers a bar or its value label.

    Args:
        per_au: ``eval.json``'s ``per_au`` (AU name -> metrics with ``f1``).
        path: the PNG written.
        base: :func:`fer_tf.demo.baseline.baseline` metrics.

    Returns:
        ``path``.
    """
    plt = _pyplot()
    names = list(per_au)
    f1 = [_num(per_au[n]["f1"]) for n in names]
    bf1 = [_num(base[f"f1/{n}"]) for n in names]
    pf1 = [_num(base[f"always_present/f1/{n}"]) for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(7, 1.0 * len(names) + 2), 4.4))
    w = 0.27
    for dx, vals, label in (
        (-w, f1, "model"),
        (0.0, bf1, "majority baseline"),
        (w, pf1, "always-present reference"),
    ):
        ax.bar_label(ax.bar(x + dx, vals, w, label=label), fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(x, names)
    ax.set_ylabel("F1 (held-out identities)")
    ax.set_title("Per-AU F1 on held-out identities", pad=28)
    # Bars reach 1.0 and their labels sit above them: leave headroom inside the axes, and put
    # the legend between the title and the axes instead of over the bars.
    ax.set_ylim(0, 1.1)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plots(run_dir: Path, out: Path, per_au: dict[str, Any], base: dict[str, float]) -> list[str]:
    """Both figures into ``out``; returns their file names (for the report's links).

    Args:
        run_dir: the training run directory (``history.csv``).
        out: where the PNGs go.
        per_au: ``eval.json``'s ``per_au``.
        base: :func:`fer_tf.demo.baseline.baseline` metrics.

    Returns:
        ``["learning_curves.png", "per_au_f1.png"]``.
    """
    curves = learning_curves(run_dir / "history.csv", out / "learning_curves.png", base)
    bars = per_au_f1(per_au, out / "per_au_f1.png", base)
    return [curves.name, bars.name]
