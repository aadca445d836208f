"""The demo report's figures: learning curves and per-AU F1 bars against the baselines.

Both are :mod:`fer_tf.evaluation.plots` figures with the demo's reference lines and bars.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_tf.evaluation import plots as evaluation_plots

__all__ = ["learning_curves", "per_au_f1", "plots"]


def _num(value: Any) -> float:
    """A plottable number (None/NaN → 0)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if v != v else v


def learning_curves(history_csv: Path, path: Path, base: dict[str, float]) -> Path:
    """Loss and mean AU F1 per epoch, train and held-out, against the baselines.

    Args:
        history_csv: the run's ``history.csv``.
        path: the PNG written.
        base: :func:`fer_tf.demo.baseline.baseline` metrics.

    Returns:
        ``path``.
    """
    return evaluation_plots.learning_curves(
        history_csv,
        path,
        "f1_mean",
        references={
            "majority baseline": base["f1_mean"],
            "always-present reference": base["always_present/f1_mean"],
        },
        split_labels={"val": "held-out"},
        loss_label="masked sigmoid cross-entropy",
        metric_range=(0.0, 1.0),
    )


def per_au_f1(per_au: dict[str, Any], path: Path, base: dict[str, float]) -> Path:
    """Grouped bars per AU: the model, the majority baseline, the always-present reference.

    Args:
        per_au: ``eval.json``'s ``per_au`` (AU name -> metrics with ``f1``).
        path: the PNG written.
        base: :func:`fer_tf.demo.baseline.baseline` metrics.

    Returns:
        ``path``.
    """
    names = list(per_au)
    series = {
        "model": [_num(per_au[n]["f1"]) for n in names],
        "majority baseline": [_num(base[f"f1/{n}"]) for n in names],
        "always-present reference": [_num(base[f"always_present/f1/{n}"]) for n in names],
    }
    return evaluation_plots.per_au_f1(
        names,
        series,
        path,
        title="Per-AU F1 on held-out identities",
        ylabel="F1 (held-out identities)",
    )


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
