"""``fer-tf-train``: train a named experiment or a YAML config, or search its hyperparameters.

Examples::

    fer-tf-train --list
    fer-tf-train --config demo_au --records runs/demo/records
    fer-tf-train --config emotionet11_inception_v2 --records /data/emotionet --set data.batch_size=64
    fer-tf-train --config runs/x/config.yaml --resume
    fer-tf-train --config posed2_shallow_cnn --records R --search random --trials 20

``--help``, ``--list`` and config errors never import TensorFlow; TensorFlow's start-up logging
is silenced unless ``--verbose``. Progress bars are drawn only when stderr is a terminal; the
per-epoch lines go to stdout either way. Exit status: 0 done, 1 the run directory cannot be used
(a file, or not writable), 2 bad config or arguments, 3 stopped on a NaN/Inf loss, 130
interrupted (a checkpoint was saved first).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import TYPE_CHECKING

from fer_tf.cli import fail

if TYPE_CHECKING:
    from fer_tf.config import ExperimentConfig

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (no TensorFlow import).

    Returns:
        The parser.
    """
    p = argparse.ArgumentParser(
        prog="fer-tf-train",
        description="Train a fer_tf experiment (a shipped config name or a YAML file).",
        epilog="Shipped experiments: fer-tf-train --list. Config keys: docs/configs.md.",
    )
    p.add_argument("--config", help="experiment name (see --list) or YAML file")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optimizer.learning_rate=1e-4 (repeatable)",
    )
    p.add_argument("--records", help="records directory (overrides data.records)")
    p.add_argument("--model-dir", help="run directory (overrides run.model_dir)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument(
        "--search",
        choices=("grid", "random"),
        help="hyperparameter search over the search space instead of one run",
    )
    p.add_argument("--trials", type=int, default=0, help="search trials (0 = whole grid)")
    p.add_argument(
        "--search-space",
        default="table4.1",
        help="search space: 'table4.1' (Christensen 2018), 'table4.1-cnn', a shipped space "
        "(christensen2018_table4_1, bartissol2017_batch, bartissol2017_lr) or a YAML file",
    )
    p.add_argument("--list", action="store_true", help="list the shipped experiments and exit")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="run every check of a real run (config, records, labels, model), print the resolved "
        "config, then exit",
    )
    p.add_argument(
        "--quiet", action="store_true", help="no progress bars (none either when not a terminal)"
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="keep TensorFlow's start-up logging (silenced by default)",
    )
    return p


PROG = "fer-tf-train"
_fail = partial(fail, PROG)


def _list_experiments() -> int:
    """Print each shipped experiment with its one-line description (YAML only, no TensorFlow)."""
    from fer_tf import config as cfgmod

    names = cfgmod.list_experiments()
    width = max((len(n) for n in names), default=0)
    for name in names:
        description = cfgmod.load_config(name).description
        print(f"{name:<{width}}  {description}".rstrip())
    return 0


def _check_model_dir(config: ExperimentConfig, given: bool) -> str | None:
    """The run directory's problem in one line, or None (checked before TensorFlow loads)."""
    from fer_tf.checks import check_writable_dir
    from fer_tf.config import ConfigError

    name = "--model-dir" if given else "run.model_dir"
    try:
        check_writable_dir(name, config.run.model_dir, error=ConfigError)
    except ConfigError as exc:
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    from fer_tf import config as cfgmod

    if args.list:
        return _list_experiments()
    if not args.config:
        return _fail("--config NAME|FILE is required (see --list for the shipped experiments).")
    if args.trials < 0:
        return _fail(f"--trials must be >= 0. Got {args.trials}.")
    overrides = list(args.set)
    if args.records:
        overrides.append(f"data.records={args.records}")
    if args.model_dir:
        overrides.append(f"run.model_dir={args.model_dir}")
    try:
        config = cfgmod.load_config(args.config, overrides)
    except cfgmod.ConfigError as exc:
        return _fail(str(exc))
    problem = _check_model_dir(config, given=bool(args.model_dir))
    if problem:
        return _fail(problem, status=1)
    try:
        from fer_tf.training.validate import check_experiment

        task, _ = check_experiment(config)
        space = None
        if args.search:
            from fer_tf.training.search import load_space

            space = load_space(args.search_space)
        # The model checks (name, input size, freezing modes) import the registry, hence
        # TensorFlow; they run after the pure-Python checks above, for --dry-run too.
        from fer_tf.cli._quiet import import_tensorflow
        from fer_tf.training.validate import check_model

        import_tensorflow(verbose=args.verbose)
        check_model(config, task)
    except (cfgmod.ConfigError, ValueError) as exc:
        return _fail(str(exc))
    if args.dry_run:
        print(cfgmod.to_yaml(config), end="")
        return 0

    # Carriage-return bars only where someone watches them: a log file gets the epoch lines.
    progress = not args.quiet and sys.stderr.isatty()
    try:
        if args.search:
            from fer_tf.training.search import run_search

            results = run_search(
                config, space, mode=args.search, trials=args.trials or None, progress=progress
            )
            best = results[0] if results else None
            if best is not None:
                print(f"best trial {best['trial']}: {best['metric']}={best['value']:.4g}")
            return 0
        from fer_tf.training.experiment import run_experiment

        result = run_experiment(config, resume=args.resume, progress=progress)
    except cfgmod.ConfigError as exc:
        return _fail(str(exc))
    if result.status == "non_finite":
        return 3
    if result.status == "interrupted":
        return 130
    m = result.eval.get("metrics", {})
    key = task.primary_metric
    split = result.eval.get("split", config.data.eval_split)  # "fold k" in fold mode
    if key in m:
        print(
            f"done: {result.status}, {result.steps} steps; final {split} {key} "
            f"{m[key]:.4f}; outputs in {result.run_dir}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
