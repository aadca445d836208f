"""Experiment validation that runs before any TensorFlow graph is built.

:func:`check_experiment` resolves the task, checks the records directory (manifest, splits, AU
columns), the early-stopping metric and the config's internal consistency, in pure Python.
:func:`check_model` then checks the model against the task and input size (it imports the model
registry, hence TensorFlow, but builds nothing).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from fer_tf.config import ConfigError, ExperimentConfig
from fer_tf.tasks import Task, task_from_config

__all__ = ["check_experiment", "check_model", "metric_names"]


def metric_names(task: Task) -> list[str]:
    """Names a ``val/<name>`` early-stopping metric may take for ``task``."""
    from fer_tf import metrics

    if task.name == "au":
        m: Any = metrics.AUMetrics(task.output_names)
    elif task.name == "va":
        m = metrics.RegressionMetrics(task.output_names)
    else:
        m = metrics.ClassificationMetrics(task.output_names)
    return ["loss", *m.result().keys()]


def _check_records(config: ExperimentConfig, task: Task) -> dict[str, Any]:
    from fer_tf import records

    d = config.data.records
    if not d:
        raise ConfigError(
            "No records given: set 'data.records' in the config or pass --records DIR "
            "(a directory written by fer-tf-build-records, holding manifest.json)."
        )
    if not Path(d).is_dir():
        raise ConfigError(f"The records directory '{d}' does not exist.")
    try:
        manifest = records.read_manifest(d)
    except records.ManifestError as exc:
        raise ConfigError(str(exc)) from exc
    for split in (config.data.train_split, config.data.eval_split):
        if not records.list_shards(d, split):
            have = sorted({p.name.split("-", 1)[0] for p in Path(d).glob("*.tfrecord")}) or [
                "(none)"
            ]
            raise ConfigError(
                f"The records directory '{d}' has no shards for split {split!r}. "
                f"Splits present: {', '.join(have)}. Set data.train_split / data.eval_split."
            )
    if task.name == "au":
        au_ids = [int(a) for a in manifest.get("au_ids", [])]
        missing = [a for a in task.aus if a not in au_ids]
        if missing:
            raise ConfigError(
                f"The records in '{d}' have no labels for "
                f"{', '.join(f'AU{a}' for a in missing)} (their AUs: {au_ids}). Choose "
                f"data.aus among them."
            )
    return manifest


def check_experiment(
    config: ExperimentConfig, *, require_records: bool = True
) -> tuple[Task, dict[str, Any] | None]:
    """Validate an experiment without TensorFlow.

    Args:
        config: the experiment.
        require_records: check ``data.records`` (False when the caller supplies data).

    Returns:
        ``(task, manifest or None)``.

    Raises:
        ConfigError: with a message naming the parameter and the fix.
    """
    try:
        task = task_from_config(config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    es = config.train.early_stopping_metric
    if es is not None:
        names = metric_names(task)
        leaf = es[4:] if es.startswith("val/") else None
        if leaf not in names:
            close = difflib.get_close_matches(leaf or es, names, n=1)
            hint = f" Did you mean 'val/{close[0]}'?" if close else ""
            raise ConfigError(
                f"The 'train.early_stopping_metric' parameter must be 'val/<metric>' with a "
                f"metric of the {task.name!r} task (e.g. 'val/loss', 'val/{task.primary_metric}'). "
                f"Got {es!r} instead.{hint}"
            )
    if config.optimizer.decoupled_weight_decay and config.optimizer.weight_decay == 0:
        raise ConfigError(
            "The 'optimizer.decoupled_weight_decay' parameter is on but 'optimizer.weight_decay' "
            "is 0; set a weight decay or turn decoupling off."
        )
    if config.run.mixed_precision == "mixed_float16" and config.run.strategy == "tpu":
        raise ConfigError("TPUs use 'mixed_bfloat16'; 'mixed_float16' is for GPUs.")
    manifest = _check_records(config, task) if require_records else None
    return task, manifest


def check_model(config: ExperimentConfig, task: Task) -> Any:
    """Check the model name and its fit with the task and input size (imports the registry).

    Args:
        config: the experiment.
        task: its resolved task.

    Returns:
        The registry's ``ModelInfo``.

    Raises:
        ConfigError: unknown model, input size below the model's minimum, or a freezing option
            the model does not support.
    """
    from fer_tf import models

    try:
        info = models.get_model_info(config.model.name)
    except ValueError as exc:
        close = difflib.get_close_matches(config.model.name, models.list_models(), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"The 'model.name' parameter must be one of {models.list_models()}. "
            f"Got {config.model.name!r} instead.{hint}"
        ) from exc
    size = config.data.image_size or info.input_shape[0]
    if size < info.min_input_size:
        raise ConfigError(
            f"The 'data.image_size' parameter must be >= {info.min_input_size} for "
            f"{config.model.name}. Got {size} instead."
        )
    if config.model.train_layer_mode and config.model.name != "inception_v4":
        raise ConfigError(
            f"The 'model.train_layer_mode' parameter (seed 000) applies to inception_v4 only. "
            f"Got {config.model.train_layer_mode} with model {config.model.name!r}."
        )
    if config.model.train_layer_mode > 5:
        raise ConfigError(
            f"The 'model.train_layer_mode' parameter must be in 0..5 (seed 000 Table 4.1). "
            f"Got {config.model.train_layer_mode} instead."
        )
    if task.name in ("posed", "emotion") and info.classes is not None and config.model.weights:
        # Pretrained classifiers are re-headed to the task's classes; nothing to check here.
        pass
    return info
