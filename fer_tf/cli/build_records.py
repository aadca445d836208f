"""``fer-tf-build-records``: spreadsheets of image URLs -> sharded TFRecords (placeholder)."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (no TensorFlow import)."""
    p = argparse.ArgumentParser(
        prog="fer-tf-build-records",
        description="Download images listed in EmotioNet-style spreadsheets into TFRecords.",
    )
    p.add_argument("--spreadsheet", nargs="+", required=True, help="xlsx/csv/tsv files")
    p.add_argument("--output-dir", required=True, help="records directory")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    build_parser().parse_args(argv)
    print("fer-tf-build-records: not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
