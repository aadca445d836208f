"""``python -m fer_tf.demo``: see :mod:`fer_tf.demo`."""

from __future__ import annotations

import sys

from fer_tf.demo.run import main

if __name__ == "__main__":
    sys.exit(main())
