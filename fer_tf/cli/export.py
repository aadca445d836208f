"""``fer-tf-export``: a trained run as a SavedModel, TFLite or ONNX model with its metadata.

Examples::

    fer-tf-export --model runs/demo --format savedmodel --output exported/demo
    fer-tf-export --model runs/demo --format tflite --output demo.tflite --quantize int8
    fer-tf-export --model runs/demo --format onnx --output demo.onnx

The exported model takes uint8 face crops ``[N, H, W, C]`` and returns activated scores
(docs/inference.md, "Export"). ``--help`` and argument errors never import TensorFlow; its
start-up logging is silenced unless ``--verbose``. Exit status: 0 written, 1 the model or the
output cannot be used, 2 bad arguments or a missing optional package.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

from fer_tf.cli import fail

__all__ = ["build_parser", "main"]

_FORMATS = ("savedmodel", "tflite", "onnx")


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (no TensorFlow import).

    Returns:
        The parser.
    """
    p = argparse.ArgumentParser(
        prog="fer-tf-export",
        description="Export a fer-tf-train run as a SavedModel, TFLite or ONNX model that takes "
        "uint8 face crops and carries its metadata (task, output names, thresholds, input size, "
        "normalisation, face preprocessing).",
        epilog="TFLite needs fer-tf[tflite] to run (ai-edge-litert; TensorFlow converts); ONNX "
        "needs fer-tf[onnx] (tf2onnx, onnxruntime).",
    )
    p.add_argument("--model", required=True, help="run directory (config.yaml, best.keras)")
    p.add_argument(
        "--format", default="savedmodel", help=f"one of {', '.join(_FORMATS)} (default savedmodel)"
    )
    p.add_argument(
        "--output",
        help="SavedModel directory or .tflite/.onnx file (default: RUN/export/model[.suffix])",
    )
    p.add_argument(
        "--quantize",
        help="tflite: dynamic, float16 or int8; onnx: dynamic or int8 (default: float32)",
    )
    p.add_argument(
        "--representative-records",
        metavar="DIR",
        help="records to calibrate int8 on (default: the run's data.records, eval split)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument(
        "--verbose", action="store_true", help="keep TensorFlow's start-up and converter logging"
    )
    return p


PROG = "fer-tf-export"
_fail = partial(fail, PROG)


def _check_args(args: argparse.Namespace) -> str | None:
    """The arguments' problem in one line, or None (pure Python, before TensorFlow loads)."""
    from fer_tf.checks import did_you_mean
    from fer_tf.inference.export import QUANTIZATIONS

    if args.format not in _FORMATS:
        return (
            f"The '--format' parameter must be one of {list(_FORMATS)}. Got {args.format!r} "
            f"instead.{did_you_mean(args.format, _FORMATS)}"
        )
    allowed = [q for q in QUANTIZATIONS[args.format] if q is not None]
    if args.quantize is not None and args.quantize not in allowed:
        if not allowed:
            return (
                f"A {args.format} export is not quantised: drop --quantize {args.quantize} or use "
                "--format tflite (dynamic, float16, int8) or onnx (dynamic, int8)."
            )
        hint = did_you_mean(args.quantize, allowed)
        if args.quantize == "float16":
            hint = " For float16 weights use --format tflite."
        return (
            f"The '--quantize' parameter must be one of {allowed} for --format {args.format}. "
            f"Got {args.quantize!r} instead.{hint}"
        )
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    problem = _check_args(args)
    if problem:
        return _fail(problem)
    from fer_tf.cli._quiet import import_tensorflow, stderr_to_devnull
    from fer_tf.inference.metadata import MetadataError

    import_tensorflow(verbose=args.verbose)
    from fer_tf.inference.export import export_model

    try:
        if args.verbose:
            out = _export(args, export_model)
        else:
            # The converters print MLIR and calibration notes from C++ straight to fd 2.
            with stderr_to_devnull():
                out = _export(args, export_model)
    except (MetadataError, FileExistsError, OSError) as exc:
        return _fail(str(exc), status=1)
    except (ValueError, ImportError) as exc:
        return _fail(str(exc))
    print(f"fer-tf-export: wrote {out}")
    return 0


def _export(args: argparse.Namespace, export_model: object) -> object:
    return export_model(  # type: ignore[operator]
        args.model,
        args.format,
        args.output,
        quantize=args.quantize,
        representative_records=args.representative_records,
        overwrite=args.overwrite,
    )


if __name__ == "__main__":
    sys.exit(main())
