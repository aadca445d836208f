"""The demo's ``report.md``: what was built, the held-out metrics next to the baselines, plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fer_tf.demo.build import BuildResult
from fer_tf.demo.plots import plots

__all__ = ["write_report"]


def fmt(value: Any, spec: str = ".3f") -> str:
    """``value`` formatted, or ``n/a`` for None/NaN (e.g. AUC of an AU with one class)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if v != v else format(v, spec)


def _build_section(build: BuildResult) -> list[str]:
    if not build.summary:
        return []
    s = build.summary
    lines = [
        "## Records: the build",
        "",
        "`fer-tf-build-records " + " ".join(build.command[3:]) + "`",
        "",
        "| | count |",
        "|---|---|",
        f"| spreadsheet rows | {s['rows']} |",
        f"| written | {s['written']} |",
    ]
    lines += [f"| &nbsp;&nbsp;{k} | {v} |" for k, v in s["splits"].items()]
    lines.append(f"| failed | {s['failed']} |")
    lines += [f"| &nbsp;&nbsp;{k} | {v} |" for k, v in s["failures"].items() if v]
    lines.append(f"| skipped | {s['skipped']} |")
    lines += [f"| &nbsp;&nbsp;{k} | {v} |" for k, v in s["skipped_by_reason"].items() if v]
    lines += [
        f"| downloaded over HTTP | {s['downloaded']} |",
        f"| build time | {s['elapsed']:.1f} s |",
        "",
        f"rows = written + failed + skipped: {s['rows']} = {s['written']} + {s['failed']} + "
        f"{s['skipped']}. Failures are listed in `records/errors.jsonl`, skipped rows in "
        "`records/skipped.jsonl`.",
        "",
        "### Injected faults, image formats and bad rows",
        "",
        "| row | injected | expected | observed | attempts | detail | ok |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in build.faults:
        detail = str(r["detail"]).replace("|", "\\|")[:70]
        lines.append(
            f"| {r['index']} | {r['kind']} `{r['name']}` | {r['expected'] or 'written'} | "
            f"{r['observed'] or 'written'} | {r['attempts']} | {detail} | "
            f"{'yes' if r['ok'] else '**NO**'} |"
        )
    lines.append("")
    if build.problems:
        lines += ["**Build self-check problems:**", ""] + [f"- {p}" for p in build.problems]
        lines.append("")
    return lines


_METRICS = (
    "f1_mean",
    "precision_mean",
    "recall_mean",
    "accuracy_mean",
    "auc_mean",
    "partial_accuracy",
    "subset_accuracy",
)


def _header(
    run_dir: Path, build: BuildResult, ev: dict[str, Any], seconds: dict[str, float]
) -> list[str]:
    manifest = json.loads((build.records_dir / "manifest.json").read_text(encoding="utf-8"))
    subjects = {
        split: stats.get("subjects")
        for split, stats in manifest.get("label_stats", {}).items()
        if isinstance(stats, dict) and stats.get("subjects") is not None
    }
    m = ev["metrics"]
    return [
        "# fer_tf demo: AU detection on SynthFACS",
        "",
        f"- records: {build.how}",
        *(
            [f"- subjects per split: {', '.join(f'{k} {v}' for k, v in subjects.items())}"]
            if subjects
            else []
        ),
        f"- training: `fer-tf-train --config demo_au` → `{run_dir}` ({ev['steps']} steps)",
        f"- evaluation: split `{ev['split']}` ({int(m['examples'])} faces of held-out identities; "
        "last epoch's weights, no model selection on this split)",
        "- wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()),
        "",
    ]


def _metrics_section(ev: dict[str, Any], base: dict[str, float]) -> list[str]:
    m = ev["metrics"]
    lines = [
        "## Held-out metrics",
        "",
        "| metric | model | majority baseline |",
        "|---|---|---|",
    ]
    for key in _METRICS:
        b = base.get(key, float("nan"))
        lines.append(f"| {key} | {fmt(m.get(key))} | {fmt(b)} |")
    lines += [
        f"| loss | {fmt(m['loss'])} | chance ln 2 = {fmt(ev['chance_loss'])} |",
        "",
        "The majority baseline predicts each AU's most frequent training value (absent, for all "
        "but the most common AUs), so its F1 is 0 on most AUs. A stronger reference for F1 is to "
        "predict every AU present: mean F1 "
        f"{fmt(base['always_present/f1_mean'])} (per AU below).",
        "",
        "## Per AU",
        "",
        "| AU | F1 | precision | recall | AUC | support | majority F1 | always-present F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in ev["per_au"].items():
        lines.append(
            f"| {name} | {fmt(r['f1'])} | {fmt(r['precision'])} | {fmt(r['recall'])} | "
            f"{fmt(r['auc'])} | {fmt(r['support'], '.0f')} | {fmt(base[f'f1/{name}'])} | "
            f"{fmt(base[f'always_present/f1/{name}'])} |"
        )
    return lines


def _files_section(removed: Sequence[str]) -> list[str]:
    if not removed:
        return []
    return [
        "## Files",
        "",
        "Removed after this report to keep the output small (run with `--keep-all` to keep them): "
        + ", ".join(f"`{r}`" for r in removed)
        + ". The trained model stays in `train/best.keras`, the records in `records/`.",
        "",
    ]


def write_report(
    out: Path,
    run_dir: Path,
    build: BuildResult,
    base: dict[str, float],
    seconds: dict[str, float],
    removed: Sequence[str] = (),
) -> Path:
    """Write ``report.md`` (build summary, metrics vs baseline, plots) and return its path.

    Args:
        out: demo output directory (``report.md`` and the PNGs go there).
        run_dir: the training run directory (``eval.json``, ``history.csv``).
        build: the records step.
        base: :func:`fer_tf.demo.baseline.baseline` metrics.
        seconds: wall time per phase.
        removed: paths (relative to ``out``) the demo deletes after the report, listed in it.

    Returns:
        The report path.
    """
    ev = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
    images = plots(run_dir, out, ev["per_au"], base)
    lines = _header(run_dir, build, ev, seconds) + _metrics_section(ev, base)
    lines += ["", "## Plots", ""] + [f"![{i}]({i})" for i in images] + [""]
    lines += _build_section(build)
    lines += _files_section(removed)
    report = out / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report
