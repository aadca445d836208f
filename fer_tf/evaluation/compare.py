"""Many runs side by side: one table of their metrics and their learning curves overlaid.

A run's metrics come from its ``eval.json`` (training's final evaluation), or from a fresh
:func:`~fer_tf.evaluation.evaluator.evaluate` on given records and split. A search directory
(``fer-tf-train --search``: ``search.csv`` and ``trial_NNN/`` run directories) stands for all its
trials.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_tf.evaluation.report import HEADLINE, fmt
from fer_tf.evaluation.runs import EvaluationError, RunInfo, load_run

__all__ = ["CompareResult", "compare_runs", "expand_runs"]


@dataclass
class CompareResult:
    """The comparison.

    Attributes:
        rows: one dict per run (``run``, ``task``, ``split``, ``source``, metrics), best first.
        metric: the metric ranked by (the first run's task's primary metric).
        files: files written in the output directory.
        errors: ``run: reason`` for each run left out.
    """

    rows: list[dict[str, Any]]
    metric: str
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def expand_runs(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Run directories of ``paths``: a search directory stands for its ``trial_*`` runs.

    Args:
        paths: run or search directories.

    Returns:
        The run directories, in the given order (a search's trials sorted).
    """
    out: list[Path] = []
    for p in map(Path, paths):
        trials = sorted(d for d in p.glob("trial_*") if (d / "config.yaml").is_file())
        if not (p / "config.yaml").is_file() and trials:
            out += trials
        else:
            out.append(p)
    return out


def _label(run_dir: Path, all_dirs: Sequence[Path]) -> str:
    names = [d.name for d in all_dirs]
    if names.count(run_dir.name) > 1 or run_dir.name.startswith("trial_"):
        return f"{run_dir.parent.name}/{run_dir.name}"
    return run_dir.name


def _row(
    run: RunInfo, label: str, records: str | None, split: str | None, batch_size: int | None
) -> dict[str, Any]:
    if records is not None:
        from fer_tf.evaluation.evaluator import evaluate

        res = evaluate(run.run_dir, records, split or run.config.data.eval_split, None, batch_size)
        metrics, where, source = res.metrics, res.split, f"evaluated on {records}"
    else:
        ev = run.eval_json()
        if ev is None or not isinstance(ev.get("metrics"), dict):
            raise EvaluationError("no eval.json (the run did not finish); pass --records")
        metrics, where, source = ev["metrics"], str(ev.get("split", "")), "eval.json"
    row: dict[str, Any] = {
        "run": label,
        "task": run.task.name,
        "model": run.config.model.name,
        "split": where,
        "source": source,
        "examples": metrics.get("examples"),
        "loss": metrics.get("loss"),
    }
    row.update({k: metrics.get(k) for k in HEADLINE[run.task.name]})
    return row


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return -math.inf
    return -math.inf if f != f else f


def compare_runs(
    runs: Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    records: str | os.PathLike[str] | None = None,
    split: str | None = None,
    batch_size: int | None = None,
) -> CompareResult:
    """Compare runs: ``comparison.csv``, ``comparison.md`` and ``learning_curves.png``.

    Args:
        runs: run directories or search directories.
        output_dir: where the files go.
        records: evaluate every run afresh on these records (default: each run's ``eval.json``).
        split: the split for a fresh evaluation (default: each run's evaluation split).
        batch_size: batch size for a fresh evaluation.

    Returns:
        The :class:`CompareResult`; runs that cannot be read are listed in ``errors``.

    Raises:
        EvaluationError: no run could be read.
    """
    from fer_tf.evaluation import plots

    dirs = expand_runs(runs)
    rows, errors, histories = [], [], {}
    for d in dirs:
        label = _label(d, dirs)
        try:
            run = load_run(d, need_model=records is not None)
            rows.append(
                _row(run, label, None if records is None else str(records), split, batch_size)
            )
        except EvaluationError as exc:
            errors.append(f"{d}: {exc}")
            continue
        if (d / "history.csv").is_file():
            histories[label] = d / "history.csv"
    if not rows:
        raise EvaluationError("No run could be compared: " + "; ".join(errors))
    metric = HEADLINE[rows[0]["task"]][0]
    lower_better = metric.startswith(("rmse", "mae", "mse"))
    rows.sort(key=lambda r: _num(r.get(metric)) * (-1 if lower_better else 1), reverse=True)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = CompareResult(rows=rows, metric=metric, errors=errors)
    _write_csv(rows, out / "comparison.csv")
    result.files = ["comparison.csv", "comparison.md"]
    if histories:
        plots.overlaid_learning_curves(histories, out / "learning_curves.png", metric)
        result.files.append("learning_curves.png")
    _write_md(result, out / "comparison.md")
    return result


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def _write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    cols = _columns(rows)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in cols})


def _write_md(result: CompareResult, path: Path) -> None:
    cols = _columns(result.rows)
    lines = [
        "# Run comparison",
        "",
        f"{len(result.rows)} runs, best first by `{result.metric}`.",
        "",
    ]
    tasks = sorted({str(r["task"]) for r in result.rows})
    if len(tasks) > 1:
        lines += [
            f"The runs solve different tasks ({', '.join(tasks)}): only those of the first run's "
            f"task have `{result.metric}`; the others follow, in the given order.",
            "",
        ]
    lines += [
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in result.rows:
        cells = [
            fmt(r.get(c), ".0f" if c == "examples" else ".4f")
            if isinstance(r.get(c), (int, float)) or r.get(c) is None
            else str(r.get(c))
            for c in cols
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if result.errors:
        lines += ["", "Left out:", ""] + [f"- {e}" for e in result.errors]
    if "learning_curves.png" in result.files:
        lines += ["", "![learning curves](learning_curves.png)"]
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
