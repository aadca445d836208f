"""Experiment validation that runs before any TensorFlow graph is built.

:func:`check_experiment` resolves the task, checks the records directory (manifest, splits, AU
columns, and -- from the manifest's ``label_stats`` -- that the training split has known labels
for the task), the early-stopping metric and the config's internal consistency, in pure Python.
:func:`check_model` then checks the model against the task and input size (it imports the model
registry, hence TensorFlow; it builds nothing except, once per small CNN, the model whose layers
:func:`train_layer_modes` counts).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_tf.checks import describe_path
from fer_tf.config import ConfigError, ExperimentConfig
from fer_tf.tasks import Task, task_from_config

__all__ = [
    "check_experiment",
    "check_model",
    "label_coverage",
    "metric_names",
    "train_layer_modes",
    "input_channels",
    "resolve_soft_labels",
    "fold_plan",
    "FoldPlan",
]


def metric_names(task: Task) -> list[str]:
    """Names a ``val/<name>`` early-stopping metric may take for ``task``."""
    return ["loss", *task.make_metrics().result().keys()]


def input_channels(config: ExperimentConfig) -> int:
    """The model's input channels: ``data.channels``, or (0 = auto) 1 for grey images on a
    model trained from scratch and 3 otherwise (RGB, or grey replicated for pretrained RGB
    weights, Athanasiadis 2022's "grey to RGB").

    Args:
        config: the experiment.

    Returns:
        1 or 3.

    Raises:
        ConfigError: ``data.channels`` is 1 without ``data.grayscale``.
    """
    d = config.data
    if d.channels == 1 and not d.grayscale:
        raise ConfigError(
            "The 'data.channels' parameter is 1 (grey input) but 'data.grayscale' is false; set "
            "data.grayscale=true (or data.channels to 0 or 3)."
        )
    if d.channels:
        return int(d.channels)
    return 1 if d.grayscale and not config.model.weights else 3


@dataclass(frozen=True)
class FoldPlan:
    """A k-fold selection: which splits the folds partition and which folds each side reads.

    Attributes:
        fold: the held-out fold k.
        folds: the number of folds.
        splits: the record splits the folds partition (all of them).
        train_folds: the folds training reads (all but k).
    """

    fold: int
    folds: int
    splits: tuple[str, ...]
    train_folds: tuple[int, ...]


def _record_splits(manifest: dict[str, Any], records_dir: Any) -> list[str]:
    from fer_tf import records

    names = set(manifest.get("splits") or {}) | {
        p.name.split("-", 1)[0] for p in Path(records_dir).glob("*.tfrecord")
    }
    return [n for n in sorted(names) if records.list_shards(records_dir, n)]


def fold_plan(config: ExperimentConfig, manifest: dict[str, Any]) -> FoldPlan | None:
    """The fold selection of ``data.fold``/``data.folds`` (pure Python), or None without folds.

    The folds partition the whole dataset (every split of the records): training reads the
    examples whose ``meta/fold`` is not k, evaluation those whose fold is k; examples without a
    fold (-1) are in neither.

    Args:
        config: the experiment.
        manifest: the records manifest (its ``folds`` is the default number of folds).

    Returns:
        The :class:`FoldPlan`, or None when ``data.fold`` is -1.

    Raises:
        ConfigError: no fold count, a fold out of range, a count that contradicts the manifest,
            or records without shards.
    """
    d = config.data
    if d.fold < 0:
        return None
    where = f"the records in '{d.records}'"
    stated = _int(manifest.get("folds")) or 0
    folds = d.folds or stated
    if folds < 2:
        raise ConfigError(
            f"The 'data.fold' parameter ({d.fold}) needs a number of folds >= 2: {where} state "
            f"'folds': {manifest.get('folds')!r} in manifest.json. Rebuild them with a fold "
            f"protocol or set data.folds."
        )
    if d.folds and stated and d.folds != stated:
        raise ConfigError(
            f"The 'data.folds' parameter ({d.folds}) contradicts {where}, built with {stated} "
            f"folds (manifest.json 'folds'). Set data.folds=0 or {stated}."
        )
    if d.fold >= folds:
        raise ConfigError(
            f"The 'data.fold' parameter must be a fold in 0..{folds - 1} ({folds} folds) or -1. "
            f"Got {d.fold} instead."
        )
    splits = _record_splits(manifest, d.records) if d.records else []
    if d.records and not splits:
        raise ConfigError(f"{where.capitalize()} have no shards; there is nothing to split.")
    return FoldPlan(
        fold=d.fold,
        folds=folds,
        splits=tuple(splits),
        train_folds=tuple(f for f in range(folds) if f != d.fold),
    )


def _has_emotion_dist(manifest: dict[str, Any], splits: Any) -> bool:
    stats = manifest.get("label_stats")
    if not isinstance(stats, dict):
        return False
    for split in splits:
        entry = (
            stats.get(split, {}).get("emotion_dist") if isinstance(stats.get(split), dict) else None
        )
        known = entry.get("known") if isinstance(entry, dict) else entry
        if (_int(known) or 0) > 0:
            return True
    return False


def resolve_soft_labels(task: Task, config: ExperimentConfig, manifest: dict[str, Any]) -> bool:
    """Whether the emotion task trains on ``label/emotion_dist`` (soft-label cross-entropy).

    ``task.soft_labels: auto`` reads the training split's ``label_stats`` (``emotion_dist:
    {known: n}``, n > 0) in the manifest; true and false are taken as they are.

    Args:
        task: the resolved task.
        config: the experiment.
        manifest: the records manifest.

    Returns:
        True when the pipeline should provide soft targets.
    """
    if task.name != "emotion" or task.soft_labels is False:
        return False
    if task.soft_labels is True:
        return True
    plan = fold_plan(config, manifest)
    splits = plan.splits if plan is not None else (config.data.train_split,)
    return _has_emotion_dist(manifest, splits)


def _check_records(config: ExperimentConfig, task: Task) -> dict[str, Any]:
    from fer_tf import records

    d = config.data.records
    if not d:
        raise ConfigError(
            "No records given: set 'data.records' in the config or pass --records DIR "
            "(a directory written by fer-tf-build-records, holding manifest.json)."
        )
    if not Path(d).is_dir():
        raise ConfigError(
            f"The 'data.records' parameter (--records) must be a records directory holding "
            f"manifest.json, written by fer-tf-build-records. Got '{d}', which is "
            f"{describe_path(d)}."
        )
    try:
        manifest = records.read_manifest(d)
    except records.ManifestError as exc:
        raise ConfigError(str(exc)) from exc
    plan = fold_plan(config, manifest)
    if plan is None:
        _check_not_empty(manifest, d, config.data.train_split)
    if plan is not None and config.data.test_split:
        raise ConfigError(
            f"The 'data.test_split' parameter ({config.data.test_split!r}) does not combine with "
            f"data.fold: the folds partition every split of the records, so the held-out fold is "
            f"the test set. Set data.test_split=null."
        )
    checked = (config.data.train_split, config.data.eval_split, config.data.test_split)
    for split in [s for s in checked if s] if plan is None else ():
        if not records.list_shards(d, split):
            have = sorted({p.name.split("-", 1)[0] for p in Path(d).glob("*.tfrecord")}) or [
                "(none)"
            ]
            raise ConfigError(
                f"The records directory '{d}' has no shards for split {split!r}. "
                f"Splits present: {', '.join(have)}. Set data.train_split / data.eval_split / "
                f"data.test_split."
            )
    if task.name in ("au", "au_intensity"):
        au_ids = [int(a) for a in manifest.get("au_ids", [])]
        missing = [a for a in task.aus if a not in au_ids]
        if missing:
            raise ConfigError(
                f"The records in '{d}' have no labels for "
                f"{', '.join(f'AU{a}' for a in missing)} (their AUs: {au_ids}). Choose "
                f"data.aus among them."
            )
    names = [str(n) for n in manifest.get("emotion_names") or []]
    if task.name == "emotion" and names:  # (without names, the label checks below speak)
        missing = [c for c in task.output_names if c not in names]
        if missing:
            raise ConfigError(
                f"The emotion task's classes {list(task.output_names)} must all be among the "
                f"records' emotion_names. The records in '{d}' have {names}, which lack "
                f"{missing}. Choose task.num_classes (6 or 7) to match, or rebuild the records "
                f"with these class names (fer-tf-build-records --class-names ...)."
            )
    if task.loss != "softmax_ce" and resolve_soft_labels(task, config, manifest):
        raise ConfigError(
            f"Soft labels (label/emotion_dist) need task.loss=softmax_ce. Got "
            f"{task.loss!r}; set task.soft_labels=false or task.loss=softmax_ce."
        )
    splits = [config.data.train_split] if plan is None else list(plan.splits)
    errors = []
    for split in splits:
        try:
            _check_label_coverage(manifest, config, task, split)
        except ConfigError as exc:
            errors.append(exc)
    if splits and len(errors) == len(splits):
        # Refused only when no split the training reads has the labels.
        raise errors[0]
    return manifest


def _check_not_empty(manifest: dict[str, Any], records_dir: Any, split: str) -> None:
    """Refuse a training split that the manifest says holds no examples."""
    entry = (manifest.get("splits") or {}).get(split)
    count = _int(entry.get("count")) if isinstance(entry, dict) else None
    if count != 0:
        return
    sizes = {
        name: _int(e.get("count"))
        for name, e in (manifest.get("splits") or {}).items()
        if isinstance(e, dict)
    }
    shown = ", ".join(f"{k}: {v}" for k, v in sizes.items() if v is not None)
    raise ConfigError(
        f"The {split!r} split of the records in '{records_dir}' is empty (0 examples; "
        f"examples per split: {shown}), so there is nothing to train on. Rebuild the records "
        f"with examples in that split, e.g. fer-tf-build-records --spreadsheet FILE "
        f"--output-dir {records_dir} --val-fraction 0.1 (a smaller --val-fraction leaves more "
        f"rows for {split!r}; check the build's errors.jsonl and skipped.jsonl for rows that "
        f"were dropped), or set data.train_split to a split with examples."
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def label_coverage(manifest: dict[str, Any], split: str) -> dict[str, Any] | None:
    """Known-label counts of one split, from the manifest's ``label_stats``.

    Reads both layouts: ``fer-tf-build-records`` (``au: {"1": {present, absent, unknown}}``,
    ``valence``/``arousal: {known}``, ``emotion: {name: n, unknown}``, ``posed: {posed,
    spontaneous, unknown}``) and SynthFACS ``write_records`` (``au_present``/``au_absent`` lists
    aligned with ``au_ids``, no valence/arousal statistics).

    Args:
        manifest: the records manifest.
        split: the split name.

    Returns:
        None when the manifest has no statistics for ``split``; else a dict with ``au``
        (``{AU number: known count}``, only AUs with statistics), ``va`` (known valence plus
        arousal values, or None when not recorded), ``posed`` (known posed/spontaneous labels,
        or None), ``emotion`` (``{emotion name: count}``, or None) and ``au_intensity``
        (``{AU number: known intensities}`` from ``au_intensity: {"12": {"known": n}}``, or None
        when not recorded).
    """
    stats = manifest.get("label_stats")
    if not isinstance(stats, dict) or not isinstance(stats.get(split), dict):
        return None
    st = stats[split]
    out: dict[str, Any] = {
        "au": {},
        "va": None,
        "posed": None,
        "emotion": None,
        "au_intensity": _intensity_counts(st.get("au_intensity")),
    }
    au_ids = [_int(a) for a in manifest.get("au_ids", [])]
    if isinstance(st.get("au"), dict):
        for key, counts in st["au"].items():
            a = _int(key)
            if a is not None and isinstance(counts, dict):
                out["au"][a] = (_int(counts.get("present")) or 0) + (
                    _int(counts.get("absent")) or 0
                )
    elif isinstance(st.get("au_present"), list) and isinstance(st.get("au_absent"), list):
        for a, pos, neg in zip(au_ids, st["au_present"], st["au_absent"]):
            if a is not None:
                out["au"][a] = (_int(pos) or 0) + (_int(neg) or 0)
    va = [st.get(k) for k in ("valence", "arousal")]
    if any(isinstance(v, dict) and "known" in v for v in va):
        out["va"] = sum(_int(v.get("known")) or 0 for v in va if isinstance(v, dict))
    posed = st.get("posed")
    if isinstance(posed, dict):
        out["posed"] = (_int(posed.get("posed")) or 0) + (_int(posed.get("spontaneous")) or 0)
    emotion = st.get("emotion")
    if isinstance(emotion, dict):
        out["emotion"] = {str(k): _int(v) or 0 for k, v in emotion.items() if k != "unknown"}
    return out


def _intensity_counts(entry: Any) -> dict[int, int] | None:
    """``{AU: known intensities}`` from ``label_stats[split]["au_intensity"]`` (``{"12": {"known":
    n, ...}}`` or ``{"12": n}``); None when the records have no intensity statistics."""
    if not isinstance(entry, dict):
        return None
    out: dict[int, int] = {}
    for key, value in entry.items():
        a = _int(key)
        n = _int(value.get("known")) if isinstance(value, dict) else _int(value)
        if a is not None:
            out[a] = n or 0
    return out


def _trainable_tasks(cov: dict[str, Any]) -> list[str]:
    out = []
    known_aus = [a for a, n in cov["au"].items() if n > 0]
    if known_aus:
        out.append(f"au (AUs with labels: {', '.join(str(a) for a in sorted(known_aus))})")
    if cov["va"] is None or cov["va"] > 0:
        out.append("va" if cov["va"] is not None else "va (not recorded in label_stats)")
    if cov["posed"] is None or cov["posed"] > 0:
        out.append("posed")
    known_intensity = [a for a, n in (cov.get("au_intensity") or {}).items() if n > 0]
    if known_intensity:
        aus = ", ".join(str(a) for a in sorted(known_intensity))
        out.append(f"au_intensity (AUs with intensities: {aus})")
    if cov["emotion"] is None:
        out.append("emotion")
    elif sum(cov["emotion"].values()) > 0:
        known = [e for e, n in cov["emotion"].items() if n > 0]
        out.append(f"emotion (classes with labels: {', '.join(known)})")
    return out


def _check_intensity_coverage(cov: dict[str, Any], task: Task, where: str, accepted: str) -> None:
    known = cov["au_intensity"]
    if known is None:
        raise ConfigError(
            f"The 'au_intensity' task needs AU intensity labels (label/au_intensity), but "
            f"{where} has none (no 'au_intensity' statistics: records without intensities, such "
            f"as schema-v1 records). Tasks these records can train: {accepted}. Use records of "
            f"a dataset with intensities (DISFA, CK+ FACS codes) or set task.name accordingly."
        )
    unknown = [a for a in task.aus if known.get(a, 0) == 0]
    if unknown:
        have = sorted(a for a, n in known.items() if n > 0)
        raise ConfigError(
            f"Every training intensity of {', '.join(f'AU{a}' for a in unknown)} is unknown in "
            f"{where}; task.name=au_intensity would train on an all-masked column. Choose "
            f"data.aus among the AUs with known intensities: {have or 'none'}."
        )


def _check_label_coverage(
    manifest: dict[str, Any], config: ExperimentConfig, task: Task, split: str
) -> None:
    """Refuse a task whose training labels are all unknown (an all-zero mask trains nothing)."""
    from fer_tf import facs

    cov = label_coverage(manifest, split)
    if cov is None:
        return
    d = config.data.records
    where = f"the {split!r} split of the records in '{d}' (manifest.json label_stats)"
    accepted = _trainable_tasks(cov)
    accepted_text = "; ".join(accepted) if accepted else "none"
    problem = None
    if task.name == "au_intensity":
        _check_intensity_coverage(cov, task, where, accepted_text)
        return
    if task.name == "au":
        unknown = [a for a in task.aus if cov["au"].get(a, 1) == 0]
        if unknown:
            known = sorted(a for a, n in cov["au"].items() if n > 0)
            raise ConfigError(
                f"Every training label of {', '.join(f'AU{a}' for a in unknown)} is unknown in "
                f"{where}; task.name=au would train on an all-masked column. Choose data.aus "
                f"among the AUs with known labels: {known or 'none'}."
            )
        return
    if task.name == "va" and cov["va"] == 0:
        problem = "valence/arousal"
    elif task.name == "posed" and cov["posed"] == 0:
        problem = "posed/spontaneous"
    elif task.name == "posed" and task.num_outputs == 12 and cov["emotion"] is not None:
        if sum(cov["emotion"].get(e, 0) for e in facs.POSED_EMOTIONS) == 0:
            problem = f"emotion (one of {', '.join(facs.POSED_EMOTIONS)}, for 12 posed classes)"
    elif (
        task.name == "emotion"
        and cov["emotion"] is not None
        and sum(cov["emotion"].get(e, 0) for e in task.output_names) == 0
    ):
        problem = f"emotion (one of {', '.join(task.output_names)})"
    if problem:
        raise ConfigError(
            f"The {task.name!r} task needs {problem} labels, but every training label is unknown "
            f"in {where}; it would train on an all-zero mask. Tasks these records can train: "
            f"{accepted_text}. Set task.name accordingly, or rebuild the records with those labels."
        )


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


_MODES_CACHE: dict[str, tuple[int, ...]] = {}


def train_layer_modes(model_name: str) -> tuple[int, ...]:
    """The train layer modes (Christensen 2018) that :mod:`fer_tf.models.freezing` supports for a model.

    Models with a slim scope in :data:`fer_tf.models.freezing.TRAIN_LAYER_MODES` (Inception
    V4/V2, VGG16, Inception-ResNet-V1) take that table's modes. For the others (the small CNNs)
    freezing counts weighted layers, so the model is built once (cached; the Python and NumPy
    RNG states are restored, so later initialisation is unaffected) and each mode is asked of
    :func:`fer_tf.models.freezing.train_layer_mode`.

    Args:
        model_name: a registered model name.

    Returns:
        The accepted modes, 0 included.

    Raises:
        ValueError: unknown model name.
    """
    if model_name in _MODES_CACHE:
        return _MODES_CACHE[model_name]
    import random

    import numpy as np

    from fer_tf import models
    from fer_tf.models import freezing

    info = models.get_model_info(model_name)
    table = freezing.TRAIN_LAYER_MODES.get(info.slim_scope)
    if table is not None:
        modes: tuple[int, ...] = (0, *sorted(table))
    else:
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            model = models.create_model(model_name)
            found = [0]
            for m in range(1, 64):
                try:
                    freezing.train_layer_mode(model, m)
                except ValueError:
                    break
                found.append(m)
            modes = tuple(found)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
    _MODES_CACHE[model_name] = modes
    return modes


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
    if config.model.weights:
        from fer_tf.models.weights import check_weights_value

        # A path, or a published weight's name ("imagenet", downloaded when the model is built).
        check_weights_value(
            config.model.weights, model=config.model.name, name="model.weights", error=ConfigError
        )
    size = config.data.image_size or info.input_shape[0]
    # The trainer always builds the classifier top, which may need more than the backbone.
    if size < info.min_top_input_size:
        raise ConfigError(
            f"The 'data.image_size' parameter must be >= {info.min_top_input_size} for "
            f"{config.model.name} with its classifier head. Got {size} instead."
        )
    mode = config.model.train_layer_mode
    if mode:
        modes = train_layer_modes(config.model.name)
        if mode not in modes:
            raise ConfigError(
                f"The 'model.train_layer_mode' parameter (Christensen 2018) must be one of "
                f"{list(modes)} for {config.model.name}. Got {mode} instead."
            )
    if config.model.unfreeze_modules and config.model.name != "inception_resnet_v1":
        raise ConfigError(
            "The 'model.unfreeze_modules' parameter (Korber) counts FaceNet's modules and "
            f"applies to inception_resnet_v1 only; model.name is {config.model.name!r}. Got "
            f"{config.model.unfreeze_modules}; use model.unfreeze_last for other models."
        )
    from fer_tf.training.experiment import model_options

    model_options(config)  # raises for an option model.name's builder does not take
    if task.name in ("posed", "emotion") and info.classes is not None and config.model.weights:
        # Pretrained classifiers are re-headed to the task's classes; nothing to check here.
        pass
    return info
