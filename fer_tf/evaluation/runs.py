"""Run directories and records, checked before TensorFlow loads: what a run is, which labels of a
records directory its outputs map to, its stored AU thresholds.

No TensorFlow import here, so the CLI reports a bad ``--model`` or ``--records`` in one line
without the start-up cost.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_tf import facs
from fer_tf.inference.metadata import THRESHOLDS_NAME
from fer_tf.tasks import Task

__all__ = [
    "EvaluationError",
    "RunInfo",
    "load_run",
    "check_records",
    "read_thresholds",
    "write_thresholds",
    "MODEL_FILE",
]

#: The model file of a run directory: the weights ``eval.json`` was computed with (the best
#: epoch's when ``train.restore_best_weights``, else the last; EMA weights when on).
MODEL_FILE = "best.keras"


class EvaluationError(ValueError):
    """A run directory, records directory or thresholds file that cannot be evaluated."""


@dataclass
class RunInfo:
    """A trained run directory.

    Attributes:
        run_dir: the directory.
        config: the resolved :class:`~fer_tf.config.ExperimentConfig` (``config.yaml``).
        task: its :class:`~fer_tf.tasks.Task`.
        model_path: ``best.keras``.
    """

    run_dir: Path
    config: Any
    task: Task
    model_path: Path

    @property
    def name(self) -> str:
        """The run's directory name."""
        return self.run_dir.name or str(self.run_dir)

    def eval_json(self) -> dict[str, Any] | None:
        """``eval.json`` (training's final evaluation), or None when missing or unreadable."""
        return read_json(self.run_dir / "eval.json")


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_run(path: str | os.PathLike[str], *, need_model: bool = True) -> RunInfo:
    """Check and load a run directory written by ``fer-tf-train``.

    Args:
        path: the run directory.
        need_model: require ``best.keras`` (evaluation); comparison from ``eval.json`` does not.

    Returns:
        The :class:`RunInfo`.

    Raises:
        EvaluationError: not a directory, no ``config.yaml`` (not a run directory), an
            unreadable config, or no ``best.keras`` (a run that never finished).
    """
    from fer_tf.checks import describe_path
    from fer_tf.config import ConfigError, load_config
    from fer_tf.tasks import task_from_config

    run_dir = Path(path)
    if not run_dir.is_dir():
        raise EvaluationError(
            f"The '--model' parameter must be a run directory written by fer-tf-train. Got "
            f"'{path}', which is {describe_path(run_dir)}."
        )
    if not (run_dir / "config.yaml").is_file():
        raise EvaluationError(
            f"The '--model' parameter must be a run directory written by fer-tf-train (with "
            f"config.yaml and {MODEL_FILE}). Got '{path}', which has no config.yaml."
        )
    try:
        config = load_config(str(run_dir / "config.yaml"))
        task = task_from_config(config)
    except (ConfigError, ValueError) as exc:
        raise EvaluationError(
            f"The run directory '{path}' has an unusable config.yaml: {exc}"
        ) from None
    model_path = run_dir / MODEL_FILE
    if need_model and not model_path.is_file():
        raise EvaluationError(
            f"The run directory '{path}' holds no trained model ({MODEL_FILE} is missing): the "
            f"run did not finish. Resume it with fer-tf-train --config {run_dir / 'config.yaml'} "
            f"--resume."
        )
    return RunInfo(run_dir=run_dir, config=config, task=task, model_path=model_path)


def _manifest_list(manifest: Mapping[str, Any], key: str) -> list[Any]:
    value = manifest.get(key)
    return list(value) if isinstance(value, (list, tuple)) else []


def check_records(
    records: str | os.PathLike[str], split: str, task: Task
) -> tuple[dict[str, Any], list[str]]:
    """Check that ``records`` holds ``split`` and the labels the task's outputs map to.

    AU outputs map by AU number (the records may hold more AUs, in any order); emotion classes
    by name; the 12-class posed task needs the posed emotions among ``emotion_names``.

    Args:
        records: the records directory.
        split: the split to evaluate.
        task: the run's task.

    Returns:
        ``(manifest, notes)``: the manifest and human-readable notes on the mapping.

    Raises:
        EvaluationError: no records there, no such split, or labels the model predicts that the
            records do not have (named).
    """
    from fer_tf import records as rec
    from fer_tf.checks import describe_path

    p = Path(records)
    if not p.is_dir():
        raise EvaluationError(
            f"The '--records' parameter must be a records directory (with manifest.json). Got "
            f"'{records}', which is {describe_path(p)}."
        )
    try:
        manifest = rec.read_manifest(p)
    except rec.ManifestError as exc:
        raise EvaluationError(str(exc)) from None
    splits = manifest.get("splits") if isinstance(manifest.get("splits"), Mapping) else {}
    if split not in splits and not rec.list_shards(p, split):
        raise EvaluationError(
            f"The '--split' parameter must name a split of the records in '{records}': "
            f"{sorted(splits)}. Got {split!r} instead."
        )
    return manifest, _label_notes(manifest, task, str(records))


def _label_notes(manifest: Mapping[str, Any], task: Task, where: str) -> list[str]:
    notes: list[str] = []
    if task.name == "au":
        au_ids = [int(a) for a in _manifest_list(manifest, "au_ids")]
        missing = [a for a in task.aus if a not in au_ids]
        if missing:
            raise EvaluationError(
                f"The records in '{where}' lack labels for "
                f"{', '.join(f'AU{a}' for a in missing)}, which the model predicts (the model: "
                f"{', '.join(task.output_names)}; the records' au_ids: {au_ids})."
            )
        if au_ids != list(task.aus):
            notes.append(
                f"AU labels mapped by AU number: the records hold au_ids {au_ids}; the model's "
                f"outputs are {list(task.aus)}."
            )
    elif task.is_classification and (task.name == "emotion" or task.num_outputs == 12):
        names = [str(n) for n in _manifest_list(manifest, "emotion_names")]
        wanted = list(task.output_names) if task.name == "emotion" else list(facs.POSED_EMOTIONS)
        missing = [n for n in wanted if n not in names]
        if missing:
            raise EvaluationError(
                f"The records in '{where}' lack the emotion class(es) {missing}, which the model "
                f"predicts (the model: {wanted}; the records' emotion_names: {names})."
            )
        if task.name == "emotion" and names != wanted:
            notes.append(
                f"Emotion classes mapped by name: the records hold {names}; the model's classes "
                f"are {wanted}."
            )
    return notes


def read_thresholds(run_dir: Path, task: Task) -> tuple[list[float], dict[str, Any]] | None:
    """The run's stored per-AU thresholds (``thresholds.json``), in the model's output order.

    Args:
        run_dir: the run directory.
        task: its task (AU task; other tasks return None).

    Returns:
        ``(thresholds, file contents)``, or None when the task is not ``au`` or there is no file.

    Raises:
        EvaluationError: an unreadable file, or one whose AUs do not cover the model's outputs.
    """
    path = Path(run_dir) / THRESHOLDS_NAME
    if task.name != "au" or not path.exists():
        return None
    data = read_json(path)
    if data is None:
        raise EvaluationError(f"The thresholds file '{path}' is not a JSON object.")
    ids, values = data.get("au_ids"), data.get("thresholds")
    ok = isinstance(ids, list) and isinstance(values, list) and len(ids) == len(values)
    by_au = dict(zip(ids, values)) if ok else {}
    missing = [a for a in task.aus if a not in by_au]
    if not ok or missing:
        raise EvaluationError(
            f"The thresholds file '{path}' must map every AU of the model "
            f"({', '.join(task.output_names)}) to a threshold (keys au_ids, thresholds). "
            f"Missing: {', '.join(f'AU{a}' for a in missing) or 'the keys'}. Recalibrate with "
            f"fer-tf-evaluate --calibrate-thresholds or delete the file."
        )
    out = [float(by_au[a]) for a in task.aus]
    if not all(0.0 < t < 1.0 and math.isfinite(t) for t in out):
        raise EvaluationError(f"The thresholds in '{path}' must lie in (0, 1). Got {out}.")
    return out, data


def write_thresholds(
    run_dir: Path, au_ids: Sequence[int], thresholds: Sequence[float], split: str, records: str
) -> Path:
    """Write ``thresholds.json`` in the format of :mod:`fer_tf.inference.metadata`.

    Args:
        run_dir: the run directory.
        au_ids: AU numbers, in the model's output order.
        thresholds: one threshold per AU.
        split: the split they were calibrated on.
        records: the records directory of that split.

    Returns:
        The file written (atomically: a temporary file, then a rename).
    """
    data = {
        "au_ids": [int(a) for a in au_ids],
        "thresholds": [float(t) for t in thresholds],
        "split": split,
        "metric": "f1",
        "records": str(records),
    }
    path = Path(run_dir) / THRESHOLDS_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
