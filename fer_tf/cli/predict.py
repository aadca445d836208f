"""``fer-tf-predict``: apply a trained model (run directory or export) to images, folders, videos.

Examples::

    fer-tf-predict --model runs/demo photos/ clip.mp4 --output predictions.csv
    fer-tf-predict --model runs/demo clip.mp4 --fps 5 --output p.parquet --summary summary.csv
    fer-tf-predict --model model.tflite face.jpg --detector none --output p.jsonl

``--help`` does not import TensorFlow; TensorFlow's start-up logging is silenced unless
``--verbose``. Exit status: 0 when at least one input was read (bad inputs are rows with an
``error``), 1 when none could be, 2 for bad arguments or a model that cannot be used.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["build_parser", "main", "OUTPUT_SUFFIXES"]

OUTPUT_SUFFIXES = (".csv", ".parquet", ".jsonl")


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (no TensorFlow import).

    Returns:
        The parser.
    """
    p = argparse.ArgumentParser(
        prog="fer-tf-predict",
        description="Predict facial expressions on images, folders (recursive) and videos: one "
        "table row per face per image or sampled frame.",
        epilog="Columns and the video summary: docs/inference.md.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, videos")
    p.add_argument("--model", required=True, help="run directory (fer-tf-train) or an export")
    p.add_argument(
        "--output", required=True, help="predictions file: .csv, .parquet or .jsonl (by suffix)"
    )
    p.add_argument("--summary", help="per-video summary CSV (majority vote and mean scores)")
    p.add_argument("--annotate", metavar="DIR", help="write images/videos with boxes and labels")
    p.add_argument(
        "--detector",
        choices=("mtcnn", "haar", "none"),
        help="face detector (default: what the model was trained with; mtcnn when its records "
        "were not face-cropped); none: the whole image is the face",
    )
    p.add_argument("--batch-size", type=int, default=32, help="images per detector/model call")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--every-n-frames", type=int, help="video: keep frames 0, N, 2N, ...")
    g.add_argument("--fps", type=float, help="video: keep about F frames per second")
    p.add_argument(
        "--quiet", action="store_true", help="no progress bar (none either when not a terminal)"
    )
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up logging")
    return p


def write_table(df: object, path: str) -> None:
    """Write a DataFrame as CSV, Parquet or JSON lines, chosen by the suffix of ``path``."""
    from pathlib import Path

    suffix = Path(path).suffix.lower()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(path, index=False)  # type: ignore[attr-defined]
    elif suffix == ".parquet":
        df.to_parquet(path, index=False)  # type: ignore[attr-defined]
    else:
        df.to_json(path, orient="records", lines=True)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    """Run ``fer-tf-predict``.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    from pathlib import Path

    args = build_parser().parse_args(argv)
    err = sys.stderr
    if Path(args.output).suffix.lower() not in OUTPUT_SUFFIXES:
        print(f"fer-tf-predict: --output must end in {', '.join(OUTPUT_SUFFIXES)}.", file=err)
        return 2
    if args.summary and Path(args.summary).suffix.lower() not in OUTPUT_SUFFIXES:
        print(f"fer-tf-predict: --summary must end in {', '.join(OUTPUT_SUFFIXES)}.", file=err)
        return 2
    if not Path(args.model).exists():
        print(f"fer-tf-predict: no model at '{args.model}'.", file=err)
        return 2
    from fer_tf.cli._quiet import import_tensorflow

    import_tensorflow(verbose=args.verbose)
    from fer_tf.inference.metadata import MetadataError
    from fer_tf.inference.predictor import Predictor

    try:
        pred = Predictor.load(args.model, detector=args.detector, batch_size=args.batch_size)
        df = pred.predict(
            args.inputs,
            every_n_frames=args.every_n_frames,
            fps=args.fps,
            progress=not args.quiet and sys.stderr.isatty(),
        )
    except (MetadataError, ValueError, ImportError) as exc:
        print(f"fer-tf-predict: {exc}", file=err)
        return 2
    write_table(df, args.output)
    failed = df[df["error"] != ""].drop_duplicates("input")
    for _, r in failed.iterrows():
        print(f"fer-tf-predict: skipped '{r['input']}': {r['error']}", file=err)
    if args.summary:
        write_table(pred.summarize(df), args.summary)
    if args.annotate:
        from fer_tf.inference.annotate import annotate

        annotate(df, pred.metadata, args.annotate)
    n_ok = df.loc[df["error"] == "", "input"].nunique()
    print(f"{len(df)} rows, {n_ok} inputs read, {len(failed)} failed -> {args.output}")
    return 0 if n_ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
