"""``fer-tf-train``: train a model from a named experiment or YAML config (placeholder)."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (no TensorFlow import)."""
    p = argparse.ArgumentParser(prog="fer-tf-train", description="Train a fer_tf experiment.")
    p.add_argument("--config", help="experiment name or YAML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    build_parser().parse_args(argv)
    print("fer-tf-train: not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
