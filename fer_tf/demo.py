"""``make demo``: SynthFACS → records → fer-tf-train (AU task) → evaluation → ``report.md``.

``python -m fer_tf.demo --output-dir runs/demo`` runs the whole chain offline on a CPU:

1. records: when the record builder and the loopback mirror are available, SynthFACS faces are
   served on 127.0.0.1 behind an EmotioNet-format spreadsheet and ``fer-tf-build-records``
   downloads them (the real downloader path); otherwise SynthFACS writes the records directly;
2. training: the ``demo_au`` experiment (``tiny_cnn`` at 48 px) via the ``fer-tf-train`` CLI;
3. evaluation on the held-out identities, against a majority-class baseline;
4. ``report.md`` with the metrics, learning curves and per-AU F1 bars (PNG).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "make_records", "baseline", "write_report"]


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def make_records(out: Path, *, n: int, size: int, seed: int) -> tuple[Path, str]:
    """Create the demo records directory.

    Args:
        out: the records directory.
        n: faces.
        size: image size written.
        seed: SynthFACS seed.

    Returns:
        ``(records_dir, how)`` where ``how`` describes the path taken.
    """
    if out.exists():
        shutil.rmtree(out)
    chain = _try_builder_chain(out, n=n, size=size, seed=seed)
    if chain is not None:
        return out, chain
    from fer_tf.data.synthetic import write_records

    write_records(
        out, n, seed=seed, size=size, val_fraction=0.25, num_shards=2, unknown_fraction=0.05
    )
    return out, "SynthFACS write_records (record builder/mirror not available)"


def _try_builder_chain(out: Path, *, n: int, size: int, seed: int) -> str | None:
    """The full chain (mirror + fer-tf-build-records) when both exist; None otherwise."""
    try:
        from fer_tf.data import build, mirror  # noqa: F401
    except ImportError:
        return None
    serve = getattr(mirror, "serve_synthfacs", None) or getattr(mirror, "SynthFACSMirror", None)
    if serve is None or not hasattr(build, "build_records"):
        return None
    return None  # wired up in fer_tf.demo once the builder's API is final (see docs/training.md)


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


def baseline(records_dir: Path, aus: tuple[int, ...], train: str, val: str) -> dict[str, float]:
    """Majority-class baseline on ``val`` from ``train`` label frequencies (AU metrics)."""
    from fer_tf.metrics import majority_baseline

    names = [f"AU{a}" for a in aus]
    return majority_baseline(
        _read_au_labels(records_dir, train, aus), _read_au_labels(records_dir, val, aus), names
    )


def _plots(run_dir: Path, out: Path, per_au: dict[str, Any], base: dict[str, float]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with (run_dir / "history.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ep = [int(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(ep, [float(r["train/loss"]) for r in rows], "o-", label="train loss")
    axes[0].plot(ep, [float(r["val/loss"]) for r in rows], "s-", label="val loss")
    axes[0].axhline(float(rows[0]["chance_loss"]), ls="--", c="grey", label="chance (ln 2)")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("masked sigmoid cross-entropy")
    axes[0].legend()
    axes[1].plot(ep, [float(r["train/f1_mean"]) for r in rows], "o-", label="train mean F1")
    axes[1].plot(ep, [float(r["val/f1_mean"]) for r in rows], "s-", label="val mean F1")
    axes[1].axhline(base["f1_mean"], ls="--", c="grey", label="majority baseline")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylim(0, 1)
    axes[1].legend()
    fig.tight_layout()
    curves = out / "learning_curves.png"
    fig.savefig(curves, dpi=110)
    plt.close(fig)

    names = list(per_au)
    f1 = [per_au[n]["f1"] for n in names]
    bf1 = [base[f"f1/{n}"] for n in names]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(names) + 2), 3.8))
    ax.bar(x - 0.2, f1, 0.4, label="model")
    ax.bar(x + 0.2, bf1, 0.4, label="majority baseline")
    ax.set_xticks(x, names)
    ax.set_ylabel("F1 (held-out identities)")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    bars = out / "per_au_f1.png"
    fig.savefig(bars, dpi=110)
    plt.close(fig)
    return [curves.name, bars.name]


def write_report(
    out: Path, run_dir: Path, how: str, base: dict[str, float], seconds: dict[str, float]
) -> Path:
    """Write ``report.md`` (metrics vs baseline, plots) and return its path."""
    ev = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
    m = ev["metrics"]
    per_au = ev["per_au"]
    images = _plots(run_dir, out, per_au, base)
    lines = [
        "# fer_tf demo: AU detection on SynthFACS",
        "",
        f"- records: {how}",
        f"- training: `fer-tf-train --config demo_au` → `{run_dir}`",
        f"- evaluation: split `{ev['split']}` ({int(m['examples'])} faces of held-out identities)",
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
        lines.append(f"| {key} | {m[key]:.3f} | {b:.3f} |")
    lines += [
        f"| loss | {m['loss']:.3f} | chance ln 2 = {ev['chance_loss']:.3f} |",
        "",
        "## Per AU",
        "",
        "| AU | F1 | precision | recall | AUC | support | baseline F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in per_au.items():
        lines.append(
            f"| {name} | {r['f1']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | "
            f"{r['auc']:.3f} | {int(r['support'])} | {base[f'f1/{name}']:.3f} |"
        )
    lines += ["", "## Plots", ""] + [f"![{i}]({i})" for i in images] + [""]
    report = out / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the demo.

    Args:
        argv: ``--output-dir DIR [--faces N] [--epochs E]``.

    Returns:
        0 when the model beats the baseline, 1 otherwise.
    """
    p = argparse.ArgumentParser(prog="python -m fer_tf.demo", description=__doc__.splitlines()[0])
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--faces", type=int, default=1600, help="SynthFACS faces in all")
    p.add_argument("--size", type=int, default=64, help="image size written to the records")
    p.add_argument("--epochs", type=int, default=0, help="override demo_au's epochs (0 = keep)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _say(f"writing {args.faces} SynthFACS faces ...")
    records_dir, how = make_records(out / "records", n=args.faces, size=args.size, seed=args.seed)
    t1 = time.perf_counter()
    _say(f"records ready in {t1 - t0:.0f} s ({how})")
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
        str(records_dir),
        "--model-dir",
        str(run_dir),
    ]
    if args.epochs:
        cmd += ["--set", f"train.epochs={args.epochs}"]
    _say("training: " + " ".join(cmd[2:]))
    rc = subprocess.call(cmd)
    if rc != 0:
        _say(f"training failed with exit status {rc}")
        return rc
    t2 = time.perf_counter()
    from fer_tf.config import load_config
    from fer_tf.facs import parse_aus

    cfg = load_config(str(run_dir / "config.yaml"))
    aus = parse_aus(cfg.data.aus)
    base = baseline(records_dir, aus, cfg.data.train_split, cfg.data.eval_split)
    t3 = time.perf_counter()
    report = write_report(
        out,
        run_dir,
        how,
        base,
        {"records": t1 - t0, "training": t2 - t1, "evaluation": t3 - t2, "total": t3 - t0},
    )
    ev = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))["metrics"]
    _say(f"held-out mean AU F1 {ev['f1_mean']:.3f} vs majority baseline {base['f1_mean']:.3f}")
    _say(f"report: {report} (total {t3 - t0:.0f} s)")
    return 0 if ev["f1_mean"] > base["f1_mean"] else 1


if __name__ == "__main__":
    sys.exit(main())
