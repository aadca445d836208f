"""Import TensorFlow without its start-up noise (for the CLIs; no TensorFlow import here).

On a CPU-only machine ``import tensorflow`` writes about a dozen lines to stderr: absl's
"All log messages before absl::InitializeLog() ..." warning, oneDNN and CUDA-driver notes
(printed before absl reads ``TF_CPP_MIN_LOG_LEVEL``, so that variable cannot hide them), and at
the first operation an ``E0000 ... failed call to cuInit ... CUDA error`` that a CPU-only user
reads as a failure. :func:`import_tensorflow` points file descriptor 2 at ``/dev/null`` for the
import only, and sets ``TF_CPP_MIN_LOG_LEVEL=3`` for the C++ logging that follows; our own
messages and Python warnings still reach stderr. ``verbose=True`` leaves everything as it is.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["import_tensorflow", "stderr_to_devnull"]


@contextlib.contextmanager
def stderr_to_devnull() -> Iterator[None]:
    """Send file descriptor 2 (C/C++ writes included) to ``/dev/null`` inside the block.

    Yields:
        Nothing; stderr is restored on exit, also when the block raises.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow(*, verbose: bool = False) -> None:
    """Import TensorFlow (and Keras) now, quietly unless ``verbose``.

    A no-op when TensorFlow is already imported. An import error still shows: the exception
    propagates after stderr is restored.

    Args:
        verbose: keep TensorFlow's start-up logging.
    """
    if "tensorflow" in sys.modules:
        return
    if verbose:
        import tensorflow  # noqa: F401

        return
    # Level 3 hides C++ INFO, WARNING and ERROR logs (the cuInit line is an ERROR); a user who
    # wants them passes --verbose.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with stderr_to_devnull():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
