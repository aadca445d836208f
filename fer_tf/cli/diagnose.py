"""``fer-tf-diagnose``: a trained run's filters, feature maps, predictions, angular separation.

Examples::

    fer-tf-diagnose --model runs/x --output-dir diag
    fer-tf-diagnose --model runs/x --records REC --split test --end-points conv1,conv2 \\
        --images 25 --output-dir diag

Writes ``filters.png`` (the first convolution's filters), ``feature_maps.png`` (the end points'
maps for the first image), ``predictions.png`` (classification runs: predicted vs true labels,
wrong ones in red) and ``angular_separation.png`` (the penultimate end point's unit angles over
the images) into ``--output-dir`` (Amaya & Dave §3.4.3; Korber). ``--help`` and argument errors
never import TensorFlow. Exit status: 0 done, 1 a bad run, records or end point, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

from fer_tf.cli import fail

__all__ = ["build_parser", "main"]

PROG = "fer-tf-diagnose"


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (no TensorFlow import).

    Returns:
        The parser.
    """
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Diagnostic figures of a trained fer_tf run: first-layer filters, feature "
        "maps, a prediction grid and the angular separation of hidden units.",
        epilog="Docs: docs/diagnostics.md.",
    )
    p.add_argument("--model", metavar="RUN", help="run directory written by fer-tf-train")
    p.add_argument("--records", metavar="DIR", help="records (default: the run's data.records)")
    p.add_argument("--split", default="val", help="split the images come from (default: val)")
    p.add_argument(
        "--end-points", default=None, help="comma-separated end points (default: the first two)"
    )
    p.add_argument("--images", type=int, default=20, help="images in the grid and the probe")
    p.add_argument("--units", type=int, default=256, help="units sampled for the angles")
    p.add_argument("--output-dir", metavar="OUT", help="where the PNGs go")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up logging")
    return p


_fail = partial(fail, PROG)


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    if not args.model or not args.output_dir:
        return _fail("--model RUN and --output-dir OUT are required.", 2)
    if args.images < 2 or args.units < 2:
        return _fail(f"--images and --units must be >= 2. Got {args.images}, {args.units}.", 2)
    from fer_tf.evaluation.runs import EvaluationError, load_run

    try:
        load_run(args.model)
    except EvaluationError as exc:
        return _fail(str(exc), 1)
    from fer_tf.cli._quiet import import_tensorflow

    import_tensorflow(verbose=args.verbose)
    from fer_tf.evaluation.diagnostics import diagnose_run

    eps = [e for e in (args.end_points or "").split(",") if e] or None
    try:
        files = diagnose_run(
            args.model,
            args.output_dir,
            records=args.records,
            split=args.split,
            end_points=eps,
            num_images=args.images,
            max_units=args.units,
        )
    except ValueError as exc:
        return _fail(str(exc), 1)
    for f in files:
        print(f"{args.output_dir}/{f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
