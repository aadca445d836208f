"""``fer-tf-baseline``: the SVM baseline of Christensen 2018 (§4.4.4) on a records directory.

Examples::

    fer-tf-baseline --records REC --task posed --size 48 --grayscale --output-dir svm
    fer-tf-baseline --records REC --task posed --search 70 --subset 2000 --output-dir svm_search
    fer-tf-baseline --records REC --task emotion --embeddings-from runs/x --output-dir svm_emb

Fits scikit-learn's SVC on ``--train-split`` (the default run: C=1, gamma=0.001; with
``--search N`` also a randomized search of N iterations over C, gamma and the kernel) and
scores it on ``--split``; writes ``metrics.json``, ``report.md`` and confusion-matrix PNGs into
``--output-dir``, as ``fer-tf-evaluate`` does. ``--help`` and argument errors never import
TensorFlow. Exit status: 0 done, 1 bad records or run directory (one line on stderr), 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

from fer_tf.cli import fail

__all__ = ["build_parser", "main"]

PROG = "fer-tf-baseline"


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (no TensorFlow import).

    Returns:
        The parser.
    """
    p = argparse.ArgumentParser(
        prog=PROG,
        description="SVM baseline (Christensen 2018 §4.4.4): scikit-learn SVC on a records "
        "directory's pixels or a trained run's embeddings; metrics.json, report.md, figures.",
        epilog="Docs: docs/diagnostics.md.",
    )
    p.add_argument("--records", metavar="DIR", help="records directory (fer-tf-build-records)")
    p.add_argument("--task", default="posed", choices=("posed", "emotion", "au"))
    p.add_argument("--posed-classes", type=int, default=2, choices=(2, 12))
    p.add_argument("--train-split", default="train", help="split the SVM is fitted on")
    p.add_argument("--split", default="val", help="split it is scored on (default: val)")
    p.add_argument("--size", type=int, default=48, help="image side of pixel features")
    p.add_argument("--grayscale", action="store_true", help="grey pixel features")
    p.add_argument(
        "--search",
        type=int,
        default=0,
        metavar="N",
        help="also run a randomized search of N iterations (the thesis: 70)",
    )
    p.add_argument(
        "--subset", type=int, default=None, metavar="N", help="search on N training examples"
    )
    p.add_argument(
        "--embeddings-from",
        metavar="RUN",
        help="features from this trained run's end point instead of pixels",
    )
    p.add_argument(
        "--end-point", default=None, help="with --embeddings-from (default: penultimate)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", metavar="OUT", help="where the report and figures go")
    p.add_argument("--no-plots", action="store_true", help="write no PNGs")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up logging")
    return p


_fail = partial(fail, PROG)


def _check(args: argparse.Namespace) -> str | None:
    if not args.records:
        return "--records DIR is required."
    if not args.output_dir:
        return "--output-dir OUT is required."
    if args.size < 4:
        return f"--size must be >= 4. Got {args.size}."
    if args.search < 0:
        return f"--search must be >= 0 (0: no search). Got {args.search}."
    if args.subset is not None and args.subset < 2:
        return f"--subset must be >= 2. Got {args.subset}."
    if args.end_point and not args.embeddings_from:
        return "--end-point needs --embeddings-from RUN."
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    problem = _check(args)
    if problem:
        return _fail(problem, 2)
    from fer_tf.records import ManifestError, read_manifest

    try:
        read_manifest(args.records)
    except (ManifestError, OSError) as exc:
        return _fail(f"--records: {exc}", 1)
    if args.embeddings_from:
        from fer_tf.evaluation.runs import EvaluationError, load_run

        try:
            load_run(args.embeddings_from)
        except EvaluationError as exc:
            return _fail(str(exc).replace("'--model'", "'--embeddings-from'"), 1)
    from fer_tf.cli._quiet import import_tensorflow

    import_tensorflow(verbose=args.verbose)
    from fer_tf.evaluation.baseline import svm_baseline
    from fer_tf.evaluation.report import fmt

    try:
        res = svm_baseline(
            args.records,
            args.task,
            split_train=args.train_split,
            split_eval=args.split,
            size=args.size,
            grayscale=args.grayscale,
            features="embeddings" if args.embeddings_from else "pixels",
            model=args.embeddings_from,
            end_point=args.end_point,
            search=args.search,
            subset=args.subset,
            posed_classes=args.posed_classes,
            seed=args.seed,
            output_dir=args.output_dir,
            plots=not args.no_plots,
        )
    except ValueError as exc:
        return _fail(str(exc), 1)
    key = "f1_mean" if res.task == "au" else "accuracy"
    for name, run in res.runs.items():
        print(f"svm {name}: {res.eval_examples} examples, {key} {fmt(run['metrics'].get(key))}")
    print(f"report {res.output_dir / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
