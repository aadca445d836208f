"""Record building: spreadsheets of image URLs or local datasets -> sharded schema-v2 TFRecords.

:func:`build_records` runs the phases of :mod:`fer_tf.build.phases` with the settings of
:class:`~fer_tf.build.options.BuildOptions` (the one home of every default, read by
``fer-tf-build-records`` too). Light at import: modules load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BuildOptions",
    "BuildSummary",
    "BuildError",
    "FailureRateExceeded",
    "build_records",
]

_LAZY_ATTRS = {
    "BuildOptions": "fer_tf.build.options",
    "BuildSummary": "fer_tf.build.summary",
    "BuildError": "fer_tf.build.summary",
    "FailureRateExceeded": "fer_tf.build.summary",
    "build_records": "fer_tf.build.phases",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRS:
        return getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
    raise AttributeError(f"module 'fer_tf.build' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
