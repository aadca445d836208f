"""The demo's command line and its steps: records → training → baseline → report → tidy up."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fer_tf.demo.build import (
    BuildResult,
    build_via_mirror,
    make_records_direct,
    say,
    subprocess_env,
)

__all__ = ["build_parser", "main"]

PROG = "python -m fer_tf.demo"
SPLIT_TRAIN, SPLIT_EVAL = "train", "val"
#: What the report does not need, relative to the output directory; deleted unless --keep-all.
#: Together about 230 MB of the 250 MB a default run writes (checkpoints alone 166 MB).
BULKY = (
    "train/checkpoints",
    "train/saved_model",
    "train/best.weights.h5",  # the same weights as train/best.keras, which stays
    "records/cache",  # the download cache, only needed to resume an interrupted build
)


def build_parser() -> argparse.ArgumentParser:
    """The demo's command line."""
    from fer_tf import demo

    p = argparse.ArgumentParser(
        prog=PROG,
        description=(demo.__doc__ or "").splitlines()[0],
        epilog="Exit status: 0 done and the model beats the majority baseline; 1 otherwise "
        "(a bad --output-dir, a step failed, a build self-check failed, or the model does not "
        "beat the baseline).",
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
    p.add_argument(
        "--keep-all",
        action="store_true",
        help="keep the training checkpoints, the SavedModel, the duplicate best weights and the "
        "download cache (about 230 MB by default); without it only what the report needs, the "
        "records and train/best.keras stay",
    )
    return p


def _records_step(args: argparse.Namespace, out: Path) -> BuildResult:
    """Records via the mirror and the real build CLI, or straight from SynthFACS."""
    if args.no_download:
        say(f"writing {args.faces} SynthFACS faces directly (--no-download) ...")
        return make_records_direct(out / "records", n=args.faces, size=args.size, seed=args.seed)
    return build_via_mirror(out, n=args.faces, size=args.size, seed=args.seed, workers=args.workers)


def _say_build(build: BuildResult, seconds: float) -> None:
    say(f"records ready in {seconds:.0f} s: {build.how}")
    if build.summary:
        s = build.summary
        say(
            f"build: {s['rows']} rows = {s['written']} written + {s['failed']} failed + "
            f"{s['skipped']} skipped; failures "
            + ", ".join(f"{k} {v}" for k, v in s["failures"].items() if v)
        )
        ok = sum(1 for r in build.faults if r["ok"])
        say(f"injected faults/variants/bad rows classified as expected: {ok}/{len(build.faults)}")
    for problem in build.problems:
        say(f"build self-check: {problem}")


def _start_baseline(build: BuildResult, aus: tuple[int, ...]) -> tuple[threading.Thread, dict]:
    """Compute the baseline in a thread while the training subprocess starts up.

    The baseline needs TensorFlow in this process: importing it and reading the labels overlaps
    with the training run instead of following it.
    """
    from fer_tf.demo.baseline import baseline

    box: dict[str, Any] = {}

    def _run() -> None:
        try:
            box["base"] = baseline(build.records_dir, aus, SPLIT_TRAIN, SPLIT_EVAL)
        except Exception as e:  # noqa: BLE001 - reported after training
            box["error"] = e

    worker = threading.Thread(target=_run, name="demo-baseline", daemon=True)
    worker.start()
    return worker, box


def _train_step(records_dir: Path, run_dir: Path, overrides: list[str]) -> subprocess.Popen:
    """Start ``fer-tf-train --config demo_au`` in a subprocess; returns it (``wait()`` for it)."""
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
    for o in overrides:
        cmd += ["--set", o]
    say("training: fer-tf-train " + " ".join(cmd[3:]))
    return subprocess.Popen(cmd, env=subprocess_env())


def _tidy(out: Path, keep_all: bool) -> list[str]:
    """The bulky paths that exist (deleted after the report unless ``keep_all``)."""
    return [] if keep_all else [rel for rel in BULKY if (out / rel).exists()]


def _remove(out: Path, removed: list[str]) -> None:
    freed = 0
    for rel in removed:
        path = out / rel
        if path.is_dir():
            freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
        elif path.exists():
            freed += path.stat().st_size
            path.unlink()
    if removed:
        say(f"removed {', '.join(removed)} ({freed / 1e6:.0f} MB; --keep-all keeps them)")


def _check_output_dir(path: str) -> str | None:
    """The error line for an unusable ``--output-dir`` (checked before TensorFlow loads)."""
    from fer_tf.checks import check_writable_dir

    try:
        check_writable_dir("--output-dir", path)
    except ValueError as e:
        return str(e)
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the demo.

    Args:
        argv: see :func:`build_parser` (``--output-dir DIR [--faces N] [--epochs E] ...``).

    Returns:
        The exit status (0 success; 1 a bad output directory, a failed step or self-check, or no
        win over the baseline).
    """
    args = build_parser().parse_args(argv)
    error = _check_output_dir(args.output_dir)
    if error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before this process imports TF
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        build = _records_step(args, out)
    except (RuntimeError, ValueError) as e:
        say(f"records step failed: {e}")
        return 1
    t1 = time.perf_counter()
    _say_build(build, t1 - t0)

    overrides = [
        f"data.train_split={SPLIT_TRAIN}",
        f"data.eval_split={SPLIT_EVAL}",
        "train.restore_best_weights=false",
    ]
    if args.epochs:
        overrides.append(f"train.epochs={args.epochs}")
    from fer_tf.config import load_config
    from fer_tf.facs import parse_aus

    cfg = load_config("demo_au", overrides)  # pure Python: fails early on a bad override
    run_dir = out / "train"
    training = _train_step(build.records_dir, run_dir, overrides)
    # The baseline imports TensorFlow here: quietly (its start-up noise, cuInit "E0000" included,
    # is not for a CPU user), and only now that the training process holds its own stderr,
    # since the quiet import points this process's file descriptor 2 at /dev/null meanwhile.
    from fer_tf.cli._quiet import import_tensorflow

    import_tensorflow()
    worker, base_box = _start_baseline(build, parse_aus(cfg.data.aus))
    rc = training.wait()
    t2 = time.perf_counter()
    worker.join()
    if rc != 0:
        say(f"training failed with exit status {rc}")
        return 1
    if "error" in base_box:
        say(f"majority baseline failed: {base_box['error']!r}")
        return 1
    t3 = time.perf_counter()
    seconds = {
        "records": t1 - t0,
        "training and held-out evaluation": t2 - t1,
        "baseline": t3 - t2,
        "total before plots": t3 - t0,
    }
    return _finish(args, out, run_dir, build, base_box["base"], seconds, t0)


def _finish(
    args: argparse.Namespace,
    out: Path,
    run_dir: Path,
    build: BuildResult,
    base: dict[str, float],
    seconds: dict[str, float],
    t0: float,
) -> int:
    """Write the report, drop the bulky files, say how it went; returns the exit status."""
    from fer_tf.demo.report import fmt, write_report

    removed = _tidy(out, args.keep_all)
    report = write_report(out, run_dir, build, base, seconds, removed)
    _remove(out, removed)
    ev = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))["metrics"]
    beats = ev["f1_mean"] > base["f1_mean"]
    say(
        f"held-out mean AU F1 {ev['f1_mean']:.3f} vs majority baseline {base['f1_mean']:.3f} "
        f"(always-present reference {base['always_present/f1_mean']:.3f}; "
        f"mean AUC {fmt(ev.get('auc_mean'))})"
        + ("" if beats else "  (model does NOT beat the baseline)")
    )
    say(f"report: {report} (total {time.perf_counter() - t0:.0f} s)")
    if build.problems:
        return 1
    return 0 if beats or args.no_baseline_check else 1
