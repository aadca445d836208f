"""fer_tf: facial expression analysis in TensorFlow 2 / Keras 3.

``import fer_tf`` is cheap: it does not import TensorFlow. Submodules that need TensorFlow
(``fer_tf.models``, ``fer_tf.data.pipeline``, ``fer_tf.training``) import it when first used.

Public entry points:

- :mod:`fer_tf.facs` — AU catalogue, AU sets, emotion prototypes;
- :mod:`fer_tf.config` — experiment configs (YAML + ``--set`` overrides);
- :mod:`fer_tf.records` — record schema v1;
- :mod:`fer_tf.synthfacs` — SynthFACS, synthetic faces with known AUs;
- :mod:`fer_tf.sources` — spreadsheets of image URLs and their downloader; dataset sources;
- :mod:`fer_tf.build` — record building (``build_records``, ``BuildOptions``);
- :mod:`fer_tf.data` — the tf.data input pipeline;
- :mod:`fer_tf.models` — model registry (``create_model``, ``list_models``);
- :mod:`fer_tf.training` — the ``tf.distribute`` training loop;
- :class:`fer_tf.Predictor` — a trained model applied to photos, folders and videos.
- :mod:`fer_tf.evaluation` — judge a trained run on any split or dataset (``evaluate``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "facs",
    "config",
    "records",
    "data",
    "sources",
    "build",
    "synthfacs",
    "models",
    "preprocessing",
    "training",
    "evaluation",
    "tasks",
    "losses",
    "metrics",
}

#: Public classes loaded on first use: name -> module.
_LAZY_NAMES = {"Predictor": "fer_tf.inference.predictor"}

__all__ = ["__version__", *sorted(_LAZY), *sorted(_LAZY_NAMES)]


def __getattr__(name: str) -> Any:
    # Lazy submodules keep `import fer_tf` (and every CLI's --help) free of TensorFlow.
    if name in _LAZY:
        return importlib.import_module(f"fer_tf.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'fer_tf' has no attribute {name!r}")
