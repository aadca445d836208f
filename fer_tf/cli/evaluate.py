"""``fer-tf-evaluate``: judge a trained run on any split of any records, or compare runs.

Examples::

    fer-tf-evaluate --model runs/demo/train --records runs/demo/records --split val --output-dir ev
    fer-tf-evaluate --model RUN --records other_dataset --split test --output-dir ev_cross
    fer-tf-evaluate --model RUN --records R --split val --calibrate-thresholds --output-dir ev_val
    fer-tf-evaluate --compare runs/search runs/baseline --output-dir cmp

Writes ``metrics.json``, ``report.md`` and PNGs into ``--output-dir`` (comparison:
``comparison.csv``, ``comparison.md``, ``learning_curves.png``). ``--help`` and argument or
run-directory errors never import TensorFlow; TensorFlow's start-up logging is silenced unless
``--verbose``. Exit status: 0 done, 1 a bad run directory, records or thresholds (one line on
stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

from fer_tf.cli import fail

__all__ = ["build_parser", "main"]

PROG = "fer-tf-evaluate"


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (no TensorFlow import).

    Returns:
        The parser.
    """
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Evaluate a trained fer_tf run on a split of any records (metrics.json, "
        "report.md, figures), calibrate per-AU thresholds, or compare runs.",
        epilog="Docs: docs/inference.md (section Evaluate).",
    )
    p.add_argument("--model", metavar="RUN", help="run directory written by fer-tf-train")
    p.add_argument(
        "--records",
        metavar="DIR",
        help="records directory (default: the run's own data.records); another dataset's "
        "records work when they hold the model's AUs / classes",
    )
    p.add_argument("--split", default=None, help="split to evaluate (default: val)")
    p.add_argument("--output-dir", metavar="OUT", help="where the report and figures go")
    p.add_argument(
        "--batch-size", type=int, default=None, help="default: the run's data.batch_size"
    )
    p.add_argument(
        "--calibrate-thresholds",
        action="store_true",
        help="AU runs: per-AU thresholds maximising F1 on this split, written to the run's "
        "thresholds.json (used by later evaluations, predict and export)",
    )
    p.add_argument(
        "--allow-test-calibration",
        action="store_true",
        help="allow --calibrate-thresholds on the 'test' split (refused by default: calibrate on "
        "val, report on test)",
    )
    p.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN",
        help="compare runs (or search directories) in one table; with --records, evaluate each "
        "afresh instead of reading its eval.json",
    )
    p.add_argument("--no-plots", action="store_true", help="write no PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up logging")
    return p


_fail = partial(fail, PROG)


def _compare(args: argparse.Namespace) -> int:
    from fer_tf.evaluation.compare import compare_runs
    from fer_tf.evaluation.runs import EvaluationError

    if args.records:
        from fer_tf.cli._quiet import import_tensorflow

        import_tensorflow(verbose=args.verbose)
    try:
        res = compare_runs(
            args.compare,
            args.output_dir,
            records=args.records,
            split=args.split,
            batch_size=args.batch_size,
        )
    except EvaluationError as exc:
        return _fail(str(exc), 1)
    for e in res.errors:
        print(f"{PROG}: warning: left out {e}", file=sys.stderr)
    from fer_tf.evaluation.report import fmt

    best = res.rows[0]
    print(
        f"{len(res.rows)} runs compared; best {best['run']} {res.metric} "
        f"{fmt(best.get(res.metric))}; table {args.output_dir}/comparison.md"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    if not args.output_dir:
        return _fail("--output-dir OUT is required.", 2)
    if args.batch_size is not None and args.batch_size < 1:
        return _fail(f"--batch-size must be >= 1. Got {args.batch_size}.", 2)
    if args.compare:
        if args.model or args.calibrate_thresholds:
            return _fail("--compare takes the runs itself; drop --model/--calibrate-thresholds.", 2)
        return _compare(args)
    if not args.model:
        return _fail("--model RUN (or --compare RUN ...) is required.", 2)
    from fer_tf.evaluation.runs import EvaluationError, load_run

    try:
        load_run(args.model)  # a bad run directory is one line, before TensorFlow loads
    except EvaluationError as exc:
        return _fail(str(exc), 1)
    from fer_tf.cli._quiet import import_tensorflow

    import_tensorflow(verbose=args.verbose)
    from fer_tf.evaluation.evaluator import describe, evaluate

    try:
        result = evaluate(
            args.model,
            args.records,
            split=args.split or "val",
            output_dir=args.output_dir,
            batch_size=args.batch_size,
            calibrate_thresholds=args.calibrate_thresholds,
            allow_test_calibration=args.allow_test_calibration,
            plots=not args.no_plots,
            progress=not args.quiet and sys.stderr.isatty(),
        )
    except ValueError as exc:  # EvaluationError and the checks' parameter errors
        return _fail(str(exc), 1)
    for note in result.notes:
        print(f"note: {note}")
    if args.calibrate_thresholds:
        print(f"thresholds written to {result.run_dir / 'thresholds.json'}")
    print(describe(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
