"""Data: the tf.data input pipeline (records → batches).

Light at import: heavy modules load on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY_ATTRS = {
    "make_dataset": "fer_tf.data.pipeline",
    "PipelineOptions": "fer_tf.data.pipeline",
}
_LAZY_MODULES = {"pipeline"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRS:
        return getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
    if name in _LAZY_MODULES:
        return importlib.import_module(f"fer_tf.data.{name}")
    raise AttributeError(f"module 'fer_tf.data' has no attribute {name!r}")
