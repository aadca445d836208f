"""Judge a trained run on any split of any records: metrics, report, plots, thresholds.

- :func:`~fer_tf.evaluation.evaluator.evaluate` (module ``evaluator``: a module named ``evaluate`` would shadow the function): the task's metrics of a run's ``best.keras`` on a
  split (cross-dataset: labels are matched by AU id / class name through the manifests), the
  same numbers training reported in ``eval.json`` for the same weights and split, written as
  ``metrics.json``, ``report.md`` and PNGs; per-video metrics when the records carry
  ``meta/sequence``.
- :mod:`~fer_tf.evaluation.thresholds`: per-AU decision thresholds that maximise F1
  (``thresholds.json`` in the run directory).
- :mod:`~fer_tf.evaluation.videos`: per-video aggregation (majority vote and mean scores).
- :func:`~fer_tf.evaluation.compare.compare_runs`: many runs in one table, overlaid curves.

Importing this package loads no TensorFlow; :func:`evaluate` does, when called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate", "EvaluationResult", "EvaluationError", "compare_runs", "calibrate_f1"]

_LAZY = {
    "evaluate": "fer_tf.evaluation.evaluator",
    "EvaluationResult": "fer_tf.evaluation.evaluator",
    "EvaluationError": "fer_tf.evaluation.runs",
    "compare_runs": "fer_tf.evaluation.compare",
    "calibrate_f1": "fer_tf.evaluation.thresholds",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fer_tf.evaluation' has no attribute {name!r}")
