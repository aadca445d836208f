"""``make demo``: SynthFACS mirror → fer-tf-build-records → fer-tf-train (AU task) → report.

``python -m fer_tf.demo --output-dir runs/demo`` runs the whole chain offline on a CPU:

1. **mirror**: :class:`fer_tf.data.mirror.Mirror` renders SynthFACS faces and serves them on
   127.0.0.1 behind an EmotioNet-format spreadsheet (``urls.xlsx``: URL, AU1..AU60 with 999 for
   unscored, plus valence/arousal/emotion/posed/subject columns). A few URLs carry injected
   faults (404, 410, 503 with ``Retry-After``, a flaky 503 that recovers, a connection reset, a
   redirect, an HTML page served as 200, a truncated JPEG), a few are served as other image
   formats, and the sheet gets one duplicate row and one bad row;
2. **records**: ``fer-tf-build-records`` (a subprocess: the real CLI and downloader over
   loopback, ``--allow-private-hosts``, ``--split-by subject`` so validation identities are held
   out); the demo checks that every injected fault landed in ``errors.jsonl`` with the expected
   category and that ``rows = written + failed + skipped``;
3. **training**: ``fer-tf-train --config demo_au`` (seed 000's ``shallow_cnn`` at 64 px) on the records;
4. **evaluation** on the held-out identities (last epoch's weights, no model selection on the
   held-out split), against a majority-class baseline;
5. ``report.md`` with the build summary, the fault table, the metrics, learning curves and per-AU
   F1 bars (PNG).

``--no-download`` skips steps 1–2 and writes the records straight from SynthFACS.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEMO_FAULTS",
    "DEMO_VARIANTS",
    "BuildResult",
    "main",
    "build_via_mirror",
    "make_records_direct",
    "baseline",
    "always_present_f1",
    "write_report",
]

#: Faults injected into the demo's mirror (one URL each); see :mod:`fer_tf.data.mirror`.
DEMO_FAULTS: tuple[str, ...] = (
    "404",
    "410",
    "503",
    "flaky",
    "reset",
    "redirect",
    "html",
    "truncated",
)
#: Image variants served for a few URLs (each must decode to the same face).
DEMO_VARIANTS: tuple[str, ...] = ("png_alpha", "gif", "webp", "cmyk", "exif_rotated", "bmp")
#: AU columns stored in the records (the training config selects its own subset).
RECORD_AUS = "synthfacs15"
VAL_FRACTION = 0.25
UNKNOWN_FRACTION = 0.05


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def _fmt(value: Any, spec: str = ".3f") -> str:
    """``value`` formatted, or ``n/a`` for None/NaN (e.g. AUC of an AU with one class)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if v != v else format(v, spec)


def _num(value: Any) -> float:
    """A plottable number (None/NaN → 0)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if v != v else v


def _env() -> dict[str, str]:
    """Subprocess environment: TensorFlow's C++ info logs off unless the user set a level."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@dataclass
class BuildResult:
    """What the records step did.

    Attributes:
        records_dir: the records directory.
        how: one line describing the path taken.
        summary: ``fer-tf-build-records --summary-json`` content (empty for ``--no-download``).
        faults: one dict per injected fault or variant: ``index``, ``url``, ``kind``
            (``fault``/``variant``/``extra``), ``name``, ``expected``, ``observed``,
            ``attempts``, ``detail``, ``ok``.
        command: the build command line (empty for ``--no-download``).
        problems: self-check failures (empty when everything added up).
    """

    records_dir: Path
    how: str
    summary: dict[str, Any] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _plan(n: int) -> tuple[dict[int, str], dict[int, str]]:
    """Spread :data:`DEMO_FAULTS` and :data:`DEMO_VARIANTS` evenly over ``n`` items."""
    kinds = [("fault", f) for f in DEMO_FAULTS] + [("variant", v) for v in DEMO_VARIANTS]
    if n < 2 * len(kinds):
        raise ValueError(
            f"The demo needs at least {2 * len(kinds)} faces to inject its "
            f"{len(DEMO_FAULTS)} faults and {len(DEMO_VARIANTS)} variants. Got --faces {n}."
        )
    faults: dict[int, str] = {}
    variants: dict[int, str] = {}
    step = n / len(kinds)
    for k, (kind, name) in enumerate(kinds):
        idx = int((k + 0.5) * step)
        (faults if kind == "fault" else variants)[idx] = name
    return faults, variants


def make_records_direct(out: Path, *, n: int, size: int, seed: int) -> BuildResult:
    """``--no-download``: SynthFACS writes the records itself (no mirror, no downloader).

    Args:
        out: the records directory (replaced).
        n: faces.
        size: image size.
        seed: SynthFACS seed.

    Returns:
        A :class:`BuildResult` without a build summary.
    """
    from fer_tf.data.synthetic import write_records

    if out.exists():
        shutil.rmtree(out)
    write_records(
        out,
        n,
        seed=seed,
        size=size,
        aus=RECORD_AUS,
        val_fraction=VAL_FRACTION,
        num_shards=2,
        unknown_fraction=UNKNOWN_FRACTION,
    )
    return BuildResult(out, "SynthFACS `write_records` directly (`--no-download`)")


def build_via_mirror(
    work: Path, *, n: int, size: int, seed: int, workers: int | None = None
) -> BuildResult:
    """Serve ``n`` SynthFACS faces on loopback and build records with ``fer-tf-build-records``.

    The mirror is always stopped, whatever happens (context manager).

    Args:
        work: demo output directory; writes ``urls.xlsx``, ``records/``, ``build_summary.json``
            and ``faults.json`` in it.
        n: faces (URLs) served.
        size: image size served (and the ``--image-size`` cap of the build).
        seed: SynthFACS seed (also the split seed).
        workers: ``--workers`` of the build (None: the CLI's default).

    Returns:
        A :class:`BuildResult`; ``problems`` lists any self-check failure.

    Raises:
        RuntimeError: when ``fer-tf-build-records`` exits with a non-zero status.
    """
    from fer_tf.data.mirror import Mirror

    records = work / "records"
    if records.exists():
        shutil.rmtree(records)
    summary_path = work / "build_summary.json"
    faults, variants = _plan(n)
    _say(f"rendering {n} SynthFACS faces for the loopback mirror ...")
    mirror = Mirror(
        n,
        faults=faults,
        variants=variants,
        seed=seed,
        size=size,
        aus=RECORD_AUS,
        unknown_fraction=UNKNOWN_FRACTION,
        retry_after=1,
        flaky_failures=1,
    )
    with mirror:
        sheet = work / "urls.xlsx"
        rows = mirror.rows("manual", header=True, meta=True)
        good = next(it for it in mirror.items if it.fault is None and it.variant == "jpeg")
        duplicate = list(rows[1 + good.index])
        bad = list(duplicate)
        bad[0] = mirror.base_url + "/img/bad-row.jpg"
        bad[1] = 2  # AU1 = 2: not in {0, 1, 999}
        mirror.write_spreadsheet(
            sheet, layout="manual", header=True, meta=True, extra_rows=[duplicate, bad]
        )
        _say(
            f"mirror on {mirror.base_url}: {n} URLs in {sheet} ({len(faults)} faults, "
            f"{len(variants)} other image formats, 1 duplicate row, 1 bad row)"
        )
        cmd = [
            sys.executable,
            "-m",
            "fer_tf.cli.build_records",
            "--spreadsheet",
            str(sheet),
            "--output-dir",
            str(records),
            "--aus",
            RECORD_AUS,
            "--split-by",
            "subject",
            "--val-fraction",
            str(VAL_FRACTION),
            "--seed",
            str(seed),
            "--num-shards",
            "2",
            "--image-size",
            str(size),
            "--allow-private-hosts",
            "--timeout",
            "5",
            "--retries",
            "2",
            "--backoff",
            "0.1",
            "--no-progress",
            "--summary-json",
            str(summary_path),
        ]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        _say("records: fer-tf-build-records " + " ".join(cmd[3:]))
        rc = subprocess.call(cmd, env=_env())
        if rc != 0:
            raise RuntimeError(f"fer-tf-build-records exited with status {rc}; see its output.")
        items = list(mirror.items)
        served = {it.url: mirror.requests(it.path) for it in items}
        dup_url, bad_url = duplicate[0], bad[0]

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    errors = {}
    errors_path = records / "errors.jsonl"
    for line in errors_path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            e = json.loads(line)
            errors[e["source"]] = e
    skipped = {}
    skipped_path = records / "skipped.jsonl"
    if skipped_path.exists():
        for line in skipped_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                s = json.loads(line)
                skipped[(s["source"], s["reason"])] = s

    table: list[dict[str, Any]] = []
    problems: list[str] = []
    for it in items:
        if it.fault is None and it.variant == "jpeg":
            if it.url in errors:
                problems.append(f"good URL {it.url} failed: {errors[it.url]['category']}")
            continue
        e = errors.get(it.url, {})
        observed = e.get("category")
        row = {
            "index": it.index,
            "url": it.url,
            "kind": "fault" if it.fault else "variant",
            "name": it.fault or it.variant,
            "expected": it.expected_category,
            "observed": observed,
            "attempts": e.get("attempts", served[it.url]),
            "detail": e.get("detail", ""),
            "ok": observed == it.expected_category,
        }
        table.append(row)
        if not row["ok"]:
            problems.append(
                f"{row['name']} at {it.url}: expected {it.expected_category}, got {observed}"
            )
    for url, reason in ((dup_url, "duplicate"), (bad_url, "bad_row")):
        s = skipped.get((url, reason))
        table.append(
            {
                "index": "",
                "url": url,
                "kind": "extra",
                "name": f"{reason} row",
                "expected": f"skipped: {reason}",
                "observed": f"skipped: {reason}" if s else None,
                "attempts": 0,
                "detail": (s or {}).get("detail", ""),
                "ok": s is not None,
            }
        )
        if s is None:
            problems.append(f"the {reason} row ({url}) was not reported in skipped.jsonl")
    expected_failed = sum(1 for it in items if it.expected_category)
    counts = (summary["rows"], summary["written"], summary["failed"], summary["skipped"])
    if counts[0] != counts[1] + counts[2] + counts[3]:
        problems.append("rows != written + failed + skipped: {} != {} + {} + {}".format(*counts))
    if summary["rows"] != n + 2 or summary["failed"] != expected_failed or summary["skipped"] != 2:
        problems.append(
            f"expected {n + 2} rows, {expected_failed} failed, 2 skipped; got "
            f"{summary['rows']}, {summary['failed']}, {summary['skipped']}"
        )
    (work / "faults.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    how = (
        f"SynthFACS loopback mirror ({n} URLs) → `fer-tf-build-records` (real downloader, "
        "`--split-by subject`)"
    )
    return BuildResult(records, how, summary, table, cmd, problems)


def _read_au_labels(records_dir: Path, split: str, aus: tuple[int, ...]) -> np.ndarray:
    import tensorflow as tf

    from fer_tf import records

    manifest = records.read_manifest(records_dir)
    ids = [int(a) for a in manifest["au_ids"]]
    cols = [ids.index(a) for a in aus]
    spec = {"label/au": tf.io.FixedLenFeature([len(ids)], tf.int64)}
    files = records.list_shards(records_dir, split)
    rows = []
    for batch in tf.data.TFRecordDataset(files).batch(512):
        rows.append(tf.io.parse_example(batch, spec)["label/au"].numpy()[:, cols])
    return np.concatenate(rows) if rows else np.zeros((0, len(aus)), np.int64)


def always_present_f1(eval_labels: np.ndarray, names: list[str]) -> dict[str, float]:
    """F1 of predicting every AU present for every face (a reference for F1, which the
    all-absent majority predictor scores 0 on rare AUs): per AU ``2P / (2P + N)``.

    Args:
        eval_labels: ``[M, K]`` labels (1/0/-1; -1 ignored).
        names: the K AU names.

    Returns:
        ``{"f1/<name>": ..., "f1_mean": ...}``.
    """
    labels = np.asarray(eval_labels)
    out: dict[str, float] = {}
    for k, name in enumerate(names):
        pos = int((labels[:, k] == 1).sum())
        neg = int((labels[:, k] == 0).sum())
        out[f"f1/{name}"] = 2 * pos / (2 * pos + neg) if pos else 0.0
    out["f1_mean"] = float(np.mean([out[f"f1/{n}"] for n in names])) if names else 0.0
    return out


def baseline(records_dir: Path, aus: tuple[int, ...], train: str, val: str) -> dict[str, float]:
    """Majority-class baseline on ``val`` from ``train`` label frequencies (AU metrics).

    Args:
        records_dir: records directory.
        aus: AU numbers evaluated.
        train: split whose label frequencies pick each AU's majority value.
        val: split evaluated.

    Returns:
        :func:`fer_tf.metrics.majority_baseline`'s metrics, plus the always-present reference
        (:func:`always_present_f1`) under ``always_present/f1_mean`` and
        ``always_present/f1/<AU>``.
    """
    from fer_tf.metrics import majority_baseline

    names = [f"AU{a}" for a in aus]
    ev = _read_au_labels(records_dir, val, aus)
    out = dict(majority_baseline(_read_au_labels(records_dir, train, aus), ev, names))
    out.update({f"always_present/{k}": v for k, v in always_present_f1(ev, names).items()})
    return out


def _plots(run_dir: Path, out: Path, per_au: dict[str, Any], base: dict[str, float]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with (run_dir / "history.csv").open(newline="", encoding="utf-8") as f:
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
    curves = out / "learning_curves.png"
    fig.savefig(curves, dpi=110)
    plt.close(fig)

    names = list(per_au)
    f1 = [_num(per_au[n]["f1"]) for n in names]
    bf1 = [_num(base[f"f1/{n}"]) for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(7, 1.0 * len(names) + 2), 4.0))
    pf1 = [_num(base[f"always_present/f1/{n}"]) for n in names]
    w = 0.27
    for dx, vals, label in (
        (-w, f1, "model"),
        (0.0, bf1, "majority baseline"),
        (w, pf1, "always-present reference"),
    ):
        ax.bar_label(ax.bar(x + dx, vals, w, label=label), fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(x, names)
    ax.set_ylabel("F1 (held-out identities)")
    ax.set_title("Per-AU F1 on held-out identities")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    bars = out / "per_au_f1.png"
    fig.savefig(bars, dpi=110)
    plt.close(fig)
    return [curves.name, bars.name]


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


def write_report(
    out: Path,
    run_dir: Path,
    build: BuildResult,
    base: dict[str, float],
    seconds: dict[str, float],
) -> Path:
    """Write ``report.md`` (build summary, metrics vs baseline, plots) and return its path.

    Args:
        out: demo output directory (``report.md`` and the PNGs go there).
        run_dir: the training run directory (``eval.json``, ``history.csv``).
        build: the records step.
        base: :func:`baseline` metrics.
        seconds: wall time per phase.

    Returns:
        The report path.
    """
    ev = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
    m = ev["metrics"]
    per_au = ev["per_au"]
    images = _plots(run_dir, out, per_au, base)
    manifest = json.loads((build.records_dir / "manifest.json").read_text(encoding="utf-8"))
    subjects = {
        split: stats.get("subjects")
        for split, stats in manifest.get("label_stats", {}).items()
        if isinstance(stats, dict) and stats.get("subjects") is not None
    }
    lines = [
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
        "## Held-out metrics",
        "",
        "| metric | model | majority baseline |",
        "|---|---|---|",
    ]
    for key in (
        "f1_mean",
        "precision_mean",
        "recall_mean",
        "accuracy_mean",
        "auc_mean",
        "partial_accuracy",
        "subset_accuracy",
    ):
        b = base.get(key, float("nan"))
        lines.append(f"| {key} | {_fmt(m.get(key))} | {_fmt(b)} |")
    lines += [
        f"| loss | {_fmt(m['loss'])} | chance ln 2 = {_fmt(ev['chance_loss'])} |",
        "",
        "The majority baseline predicts each AU's most frequent training value (absent, for all "
        "but the most common AUs), so its F1 is 0 on most AUs. A stronger reference for F1 is to "
        "predict every AU present: mean F1 "
        f"{_fmt(base['always_present/f1_mean'])} (per AU below).",
        "",
        "## Per AU",
        "",
        "| AU | F1 | precision | recall | AUC | support | majority F1 | always-present F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in per_au.items():
        lines.append(
            f"| {name} | {_fmt(r['f1'])} | {_fmt(r['precision'])} | {_fmt(r['recall'])} | "
            f"{_fmt(r['auc'])} | {_fmt(r['support'], '.0f')} | {_fmt(base[f'f1/{name}'])} | "
            f"{_fmt(base[f'always_present/f1/{name}'])} |"
        )
    lines += ["", "## Plots", ""] + [f"![{i}]({i})" for i in images] + [""]
    lines += _build_section(build)
    report = out / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report


def build_parser() -> argparse.ArgumentParser:
    """The demo's command line."""
    p = argparse.ArgumentParser(
        prog="python -m fer_tf.demo",
        description=__doc__.splitlines()[0],
        epilog="Exit status: 0 done and the model beats the majority baseline; 1 otherwise "
        "(a step failed, a build self-check failed, or the model does not beat the baseline).",
    )
    p.add_argument("--output-dir", default="runs/demo", help="where everything goes (replaced)")
    p.add_argument("--faces", type=int, default=3200, help="SynthFACS faces in all (3200)")
    p.add_argument("--size", type=int, default=64, help="image size served and stored (64)")
    p.add_argument("--epochs", type=int, default=0, help="override demo_au's epochs (0 = keep)")
    p.add_argument("--seed", type=int, default=0, help="SynthFACS and split seed")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="fer-tf-build-records --workers (default: its own)",
    )
    p.add_argument(
        "--no-download",
        action="store_true",
        help="skip the mirror and fer-tf-build-records: SynthFACS writes the records directly",
    )
    p.add_argument(
        "--no-baseline-check",
        action="store_true",
        help="exit 0 even if the model does not beat the baseline (smoke runs with 1 epoch)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the demo.

    Args:
        argv: see :func:`build_parser` (``--output-dir DIR [--faces N] [--epochs E] ...``).

    Returns:
        The exit status (0 success; 1 a failed step or self-check, or no win over the baseline).
    """
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before this process imports TF
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        if args.no_download:
            _say(f"writing {args.faces} SynthFACS faces directly (--no-download) ...")
            build = make_records_direct(
                out / "records", n=args.faces, size=args.size, seed=args.seed
            )
        else:
            build = build_via_mirror(
                out, n=args.faces, size=args.size, seed=args.seed, workers=args.workers
            )
    except (RuntimeError, ValueError) as e:
        _say(f"records step failed: {e}")
        return 1
    t1 = time.perf_counter()
    _say(f"records ready in {t1 - t0:.0f} s: {build.how}")
    if build.summary:
        s = build.summary
        _say(
            f"build: {s['rows']} rows = {s['written']} written + {s['failed']} failed + "
            f"{s['skipped']} skipped; failures "
            + ", ".join(f"{k} {v}" for k, v in s["failures"].items() if v)
        )
        ok = sum(1 for r in build.faults if r["ok"])
        _say(f"injected faults/variants/bad rows classified as expected: {ok}/{len(build.faults)}")
    for problem in build.problems:
        _say(f"build self-check: {problem}")

    split_train, split_eval = "train", "val"
    overrides = [
        f"data.train_split={split_train}",
        f"data.eval_split={split_eval}",
        "train.restore_best_weights=false",
    ]
    if args.epochs:
        overrides.append(f"train.epochs={args.epochs}")
    from fer_tf.config import load_config
    from fer_tf.facs import parse_aus

    cfg = load_config("demo_au", overrides)  # pure Python: fails early on a bad override
    aus = parse_aus(cfg.data.aus)
    # The baseline needs TensorFlow in this process: import it and read the labels while the
    # training subprocess starts up, instead of after it.
    base_box: dict[str, Any] = {}

    def _baseline() -> None:
        try:
            base_box["base"] = baseline(build.records_dir, aus, split_train, split_eval)
        except Exception as e:  # noqa: BLE001 - reported after training
            base_box["error"] = e

    worker = threading.Thread(target=_baseline, name="demo-baseline", daemon=True)
    worker.start()

    run_dir = out / "train"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cmd = [
        sys.executable,
        "-m",
        "fer_tf.cli.train",
        "--config",
        "demo_au",
        "--records",
        str(build.records_dir),
        "--model-dir",
        str(run_dir),
    ]
    for o in overrides:
        cmd += ["--set", o]
    _say("training: fer-tf-train " + " ".join(cmd[3:]))
    rc = subprocess.call(cmd, env=_env())
    t2 = time.perf_counter()
    worker.join()
    if rc != 0:
        _say(f"training failed with exit status {rc}")
        return 1
    if "error" in base_box:
        _say(f"majority baseline failed: {base_box['error']!r}")
        return 1
    base = base_box["base"]
    t3 = time.perf_counter()
    seconds = {
        "records": t1 - t0,
        "training and held-out evaluation": t2 - t1,
        "baseline": t3 - t2,
        "total before plots": t3 - t0,
    }
    report = write_report(out, run_dir, build, base, seconds)
    t4 = time.perf_counter()
    ev = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))["metrics"]
    beats = ev["f1_mean"] > base["f1_mean"]
    _say(
        f"held-out mean AU F1 {ev['f1_mean']:.3f} vs majority baseline {base['f1_mean']:.3f} "
        f"(always-present reference {base['always_present/f1_mean']:.3f}; "
        f"mean AUC {_fmt(ev.get('auc_mean'))})"
        + ("" if beats else "  (model does NOT beat the baseline)")
    )
    _say(f"report: {report} (total {t4 - t0:.0f} s)")
    if build.problems:
        return 1
    return 0 if beats or args.no_baseline_check else 1


if __name__ == "__main__":
    sys.exit(main())
