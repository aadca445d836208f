#!/usr/bin/env python
"""Run ``fer-tf-build-records`` from a checkout: ``python tools/build_records.py --help``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_tf.cli.build_records import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
