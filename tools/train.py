"""Run ``fer-tf-train`` from a checkout: ``python tools/train.py --config demo_au --records DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_tf.cli.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
