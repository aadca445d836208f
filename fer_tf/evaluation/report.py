"""The evaluation's figures and ``report.md``. No TensorFlow import."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_tf.evaluation import plots

if TYPE_CHECKING:
    from fer_tf.evaluation.evaluator import EvaluationResult
    from fer_tf.evaluation.runs import RunInfo

__all__ = ["figures", "write_report", "fmt", "HEADLINE"]

#: Headline metrics per task, in table order.
HEADLINE = {
    "au": (
        "f1_mean",
        "precision_mean",
        "recall_mean",
        "accuracy_mean",
        "auc_mean",
        "f1_micro",
        "partial_accuracy",
        "subset_accuracy",
        # Bartissol 2017's pooled figures (every known example x AU cell), beside the means.
        "total_accuracy",
        "precision_pooled",
        "recall_pooled",
        "auc_pooled",
    ),
    "va": ("ccc_mean", "pearson_mean", "rmse_mean", "mae_mean", "mse_mean"),
    "posed": ("accuracy", "macro_f1", "balanced_accuracy"),
    "emotion": ("accuracy", "macro_f1", "balanced_accuracy"),
}


def fmt(value: Any, spec: str = ".4f") -> str:
    """``value`` formatted, or ``n/a`` for None/NaN."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if v != v else format(v, spec)


def figures(
    result: EvaluationResult, run: RunInfo, labels: np.ndarray, scores: np.ndarray, out: Path
) -> list[str]:
    """Write the evaluation's PNGs into ``out``.

    Args:
        result: the evaluation.
        run: the run (``history.csv``).
        labels: the task labels per example.
        scores: probabilities (au, posed, emotion) or predictions (va) per example.
        out: the output directory.

    Returns:
        The PNG file names written.
    """
    names, task = result.output_names, result.task
    files: list[Path] = []
    if result.confusion_matrix is not None:
        files.append(
            plots.confusion_matrices(
                result.confusion_matrix, names, out / "confusion_matrix.png", f"{result.split}: "
            )
        )
        known = labels >= 0
        top = scores[known].argmax(axis=1)
        files.append(
            plots.reliability(
                scores[known].max(axis=1),
                top == labels[known],
                out / "reliability.png",
                "Reliability of the top-class probability",
            )
        )
    if task == "au":
        files += _au_figures(result, labels, scores, out)
    if task == "va":
        files.append(plots.va_scatter(names, labels, scores, out / "va_scatter.png"))
    if result.videos is not None and result.videos.confusion:
        files.append(plots.video_confusion(result.videos.confusion, names, out / "videos.png"))
    history = run.run_dir / "history.csv"
    if history.is_file():
        metric = {"au": "f1_mean", "va": "ccc_mean"}.get(task, "accuracy")
        files.append(plots.learning_curves(history, out / "learning_curves.png", metric))
    return [f.name for f in files]


def _au_figures(
    result: EvaluationResult, labels: np.ndarray, scores: np.ndarray, out: Path
) -> list[Path]:
    names = result.output_names
    series = {"at 0.5": [result.metrics_at_default.get(f"f1/{n}") for n in names]}
    if result.thresholds is not None:
        series["at the per-AU thresholds"] = [result.metrics.get(f"f1/{n}") for n in names]
    known = labels >= 0
    return [
        plots.per_au_f1(names, series, out / "per_au_f1.png"),
        plots.au_curves(names, labels, scores, out / "pr_curves.png", "pr", result.thresholds),
        plots.au_curves(names, labels, scores, out / "roc_curves.png", "roc", result.thresholds),
        plots.reliability(
            scores[known],
            labels[known] > 0.5,
            out / "reliability.png",
            "Reliability of the AU probabilities (all AUs)",
        ),
    ]


def _header(result: EvaluationResult, run: RunInfo) -> list[str]:
    m = result.metrics
    lines = [
        f"# Evaluation of `{run.name}` ({result.task})",
        "",
        f"- model: `{run.model_path}` ({run.config.model.name}, trained on "
        f"`{run.config.data.records}`)",
        f"- records: `{result.records}`, split `{result.split}`: {int(m['examples'])} examples "
        "with a known label",
    ]
    if result.task == "au":
        lines.append(f"- AU thresholds: {result.thresholds_source}")
    lines += [f"- note: {n}" for n in result.notes]
    return [*lines, ""]


def _metrics_table(result: EvaluationResult) -> list[str]:
    keys = ["loss", *HEADLINE[result.task]]
    ref = result.training_eval
    au_t = result.task == "au" and result.thresholds is not None
    cols = ["metric", "value"]
    if au_t:
        cols = ["metric", "at the per-AU thresholds", "at 0.5"]
    if ref is not None:
        cols.append("training's eval.json")
    lines = ["## Metrics", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for k in keys:
        row = [k, fmt(result.metrics.get(k))]
        if au_t:
            row.append(fmt(result.metrics_at_default.get(k)))
        if ref is not None:
            row.append(fmt(ref.get(k)))
        lines.append("| " + " | ".join(row) + " |")
    if ref is not None:
        lines += [
            "",
            "This is the split and the records training evaluated on: the last column is "
            "training's own figure for the same weights (`eval.json`, at 0.5).",
        ]
    return [*lines, ""]


def _per_output_table(result: EvaluationResult) -> list[str]:
    names, m = result.output_names, result.metrics
    if result.task == "va":
        keys: Sequence[str] = ("ccc", "pearson", "rmse", "mae")
        head = "| dimension | " + " | ".join(keys) + " |"
        lines = ["## Per dimension", "", head, "|" + "---|" * (len(keys) + 1)]
        for n in names:
            lines.append(f"| {n} | " + " | ".join(fmt(m.get(f"{k}/{n}")) for k in keys) + " |")
        return [*lines, ""]
    if result.task == "au":
        d = result.metrics_at_default
        lines = [
            "## Per AU",
            "",
            "| AU | threshold | F1 at 0.5 | F1 | precision | recall | AUC |",
            "|---|---|---|---|---|---|---|",
        ]
        t = result.thresholds or [0.5] * len(names)
        for n, th in zip(names, t):
            lines.append(
                f"| {n} | {th:.3f} | {fmt(d.get(f'f1/{n}'))} | {fmt(m.get(f'f1/{n}'))} | "
                f"{fmt(m.get(f'precision/{n}'))} | {fmt(m.get(f'recall/{n}'))} | "
                f"{fmt(m.get(f'auc/{n}'))} |"
            )
        return [*lines, ""]
    lines = ["## Per class", "", "| class | precision | recall | F1 |", "|---|---|---|---|"]
    for n in names:
        lines.append(
            f"| {n} | {fmt(m.get(f'precision/{n}'))} | {fmt(m.get(f'recall/{n}'))} | "
            f"{fmt(m.get(f'f1/{n}'))} |"
        )
    return [*lines, ""]


def _video_section(result: EvaluationResult) -> list[str]:
    v = result.videos
    if v is None or not v.methods:
        return []
    methods = list(v.methods)
    keys = ["videos", *HEADLINE[result.task]]
    titles = {"majority": "majority vote", "mean": "mean scores"}
    lo, hi = min(v.frames), max(v.frames)
    per = f"{lo}" if lo == hi else f"{lo}-{hi}"
    lines = [
        "## Per video",
        "",
        f"{len(v.videos)} videos ({sum(v.frames)} frames, {per} per video). Each video's "
        "prediction by majority vote over its frames and by the mean of the frame scores "
        "(Athanasiadis 2022).",
        "",
        "| metric | " + " | ".join(titles.get(m, m) for m in methods) + " |",
        "|" + "---|" * (len(methods) + 1),
    ]
    for k in keys:
        spec = ".0f" if k == "videos" else ".4f"
        lines.append(
            f"| {k} | " + " | ".join(fmt(v.methods[m].get(k), spec) for m in methods) + " |"
        )
    return [*lines, ""]


def write_report(result: EvaluationResult, run: RunInfo, images: Sequence[str], path: Path) -> Path:
    """Write ``report.md``: what was evaluated, the metrics, per output, per video, the figures.

    Args:
        result: the evaluation.
        run: the run.
        images: the PNG names (in the report's directory).
        path: the report file.

    Returns:
        ``path``.
    """
    lines = _header(result, run) + _metrics_table(result) + _per_output_table(result)
    lines += _video_section(result)
    if images:
        lines += ["## Figures", ""] + [f"![{i}]({i})" for i in images] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
