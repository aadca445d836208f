"""Dataclass configs: YAML load, ``--set a.b=c`` overrides, validation, YAML round-trip.

Pure Python (no TensorFlow): a bad config fails before any graph is built.

A config is a tree of dataclasses. Fields may carry ``metadata``:

- ``choices``: allowed values (``The 'task.name' parameter must be one of ...``);
- ``min`` / ``max``: inclusive numeric bounds; ``gt``: exclusive lower bound;
- ``help``: one line for docs and ``--help``.
- ``validate``: ``fn(value, key)`` raising :class:`ConfigError` (e.g. AU selections);
- ``join_list``: a YAML list is stored in the field's comma-separated string form.

Experiments are YAML files: shipped ones in ``fer_tf/configs/`` (use the name), or any path. A YAML
experiment may name a ``base`` experiment whose values it overrides.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from fer_tf.checks import check_choice, did_you_mean, invalid
from fer_tf.models.catalog import check_model_name
from fer_tf.preprocessing.names import AUGMENT_ALIASES, AUGMENT_POLICIES
from fer_tf.preprocessing.normalization import PREPROCESSING_FAMILIES
from fer_tf.tasks import LOSSES_BY_TASK, TASK_NAMES

__all__ = [
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "TaskConfig",
    "OptimizerConfig",
    "TrainConfig",
    "RunConfig",
    "ExperimentConfig",
    "from_dict",
    "to_dict",
    "to_yaml",
    "parse_override",
    "apply_overrides",
    "list_experiments",
    "load_config",
    "save_config",
]

T = TypeVar("T")
CONFIG_DIR = Path(__file__).with_name("configs")


class ConfigError(ValueError):
    """An invalid configuration: unknown key, wrong type or a value out of range."""


def _f(default: Any = dataclasses.MISSING, **meta: Any) -> Any:
    if isinstance(default, (list, dict, set)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------------------------
# The experiment schema.


def _validate_aus(value: Any, key: str) -> None:
    from fer_tf.facs import parse_aus

    try:
        parse_aus(value)
    except ValueError as exc:
        raise ConfigError(
            str(exc).replace("The 'aus' parameter", f"The '{key}' parameter")
        ) from exc


def _validate_model_name(value: Any, key: str) -> None:
    # The catalog needs no TensorFlow: a misspelt model fails here, before any graph is built.
    check_model_name(value, param=key, error=ConfigError)


# "auto" (the task's default) and every loss some task accepts, each once.
_LOSS_CHOICES = ("auto", *dict.fromkeys(loss for ls in LOSSES_BY_TASK.values() for loss in ls))


@dataclass
class DataConfig:
    """Where examples come from and how they become tensors."""

    records: str | None = _f(None, help="records directory (holds manifest.json)")
    train_split: str = _f("train", help="split name used for training")
    eval_split: str = _f("val", help="split evaluated each epoch (selection, early stopping)")
    test_split: str | None = _f(
        None, help="held-out split scored once at the end into eval.json 'test'; null = none"
    )
    aus: str = _f(
        "emotionet11",
        join_list=True,
        validate=_validate_aus,
        help="AU set name or list, e.g. '1,2,12' or [1, 2, 12] (see fer_tf.facs)",
    )
    image_size: int = _f(0, min=0, help="input size in pixels; 0 = the model's default")
    preprocessing: str | None = _f(
        None,
        choices=(None, *PREPROCESSING_FAMILIES),
        help="normalisation family; null = the model's default",
    )
    augment: str = _f(
        "none", choices=(*AUGMENT_POLICIES, *AUGMENT_ALIASES), help="augmentation policy"
    )
    batch_size: int = _f(32, min=1, help="global batch size")
    shuffle_buffer: int = _f(2048, min=0, help="shuffle buffer (examples)")
    cache: bool = _f(False, help="cache decoded examples in memory")
    grayscale: bool = _f(
        False,
        help="grey images: one channel for models trained from scratch, replicated to 3 channels "
        "for pretrained RGB models (see data.channels)",
    )
    channels: int = _f(
        0,
        choices=(0, 1, 3),
        help="model input channels; 0 = auto: 1 with grayscale and no model.weights, else 3",
    )
    fold: int = _f(
        -1,
        min=-1,
        help="k-fold protocols: the held-out fold k (meta/fold); training reads every other "
        "fold, evaluation fold k, over all splits of the records; -1 = no folds",
    )
    folds: int = _f(0, min=0, help="number of folds; 0 = the manifest's 'folds'")


@dataclass
class ModelConfig:
    """Backbone, heads and freezing."""

    name: str = _f(
        "tiny_cnn",
        validate=_validate_model_name,
        help="registered model name (fer_tf.models.list_models())",
    )
    weights: str | None = _f(None, help="checkpoint path (slim, .keras or .h5); null = random")
    dropout: float = _f(0.2, min=0.0, max=1.0, help="head dropout rate")
    keep_prob: float | None = _f(
        None,
        gt=0.0,
        max=1.0,
        help="TF-Slim keep probability; when set, the dropout rate is 1 - keep_prob (Christensen "
        "2018's 'dropout' values read as keep probabilities, docs/seeds.md); null = use dropout",
    )
    variant: int = _f(0, min=0, help="fer2013_cnn: Amaya & Dave's CNN 1, 2 or 3; 0 = default (3)")
    kernel_size: int = _f(0, min=0, help="shallow_cnn: convolution kernel size; 0 = default (3)")
    bottleneck_size: int = _f(
        0, min=0, help="inception_resnet_v1: embedding size (128 or 512); 0 = default (128)"
    )
    fc7_units: int = _f(
        0,
        min=0,
        help="vgg16/vgg16_reduced_fc: width of fc7 (Athanasiadis 2022's reduced second FC "
        "layer); 0 = the model's default (4096 / 1024)",
    )
    train_layer_mode: int = _f(0, min=0, help="Christensen 2018 freezing mode; 0 = all trainable")
    trainable_scopes: list[str] = _f([], help="slim-style regex patterns of trainable weights")
    unfreeze_last: int = _f(0, min=0, help="train only the last N weighted layers (0 = off)")
    unfreeze_modules: int = _f(
        0,
        min=0,
        max=18,
        help="Korber: inception_resnet_v1 trains only its last N top-level modules, counted as "
        "facenet-pytorch does (logits, last_bn, last_linear, dropout, ...); 0 = off",
    )


@dataclass
class TaskConfig:
    """What is predicted and how it is scored."""

    name: str = _f("au", choices=TASK_NAMES, help="task")
    num_classes: int = _f(0, min=0, help="classes for posed/emotion; 0 = task default")
    loss: str = _f(
        "auto",
        choices=_LOSS_CHOICES,
        help="loss; auto = the task's default",
    )
    unknown_labels: str = _f(
        "mask",
        choices=("mask", "zero"),
        help="AU -1 labels: mask them (correct) or treat as 0 (Bartissol 2017's behaviour)",
    )
    class_weights: str | list[float] | None = _f(
        None, help="null, 'balanced', or one weight per class"
    )
    label_smoothing: float = _f(0.0, min=0.0, max=1.0)
    bounded: bool = _f(False, help="va: tanh-bound the outputs to [-1, 1]")
    soft_labels: bool | str = _f(
        "auto",
        choices=("auto", True, False),
        help="emotion: cross-entropy on label/emotion_dist (FER+ votes); auto = when the "
        "records' manifest has emotion_dist labels",
    )


@dataclass
class OptimizerConfig:
    """Optimizer, schedule and regularisation."""

    name: str = _f("rmsprop", choices=("rmsprop", "adam", "sgd"))
    learning_rate: float = _f(0.001, gt=0.0)
    schedule: str = _f("constant", choices=("constant", "exponential", "cosine"))
    decay_rate: float = _f(0.94, gt=0.0, max=1.0, help="exponential: factor per decay period")
    decay_epochs: float = _f(2.0, gt=0.0, help="exponential: epochs per decay (staircase)")
    warmup_epochs: float = _f(0.0, min=0.0)
    momentum: float = _f(0.9, min=0.0, max=1.0)
    rmsprop_decay: float = _f(0.9, min=0.0, max=1.0, help="RMSProp rho (slim default 0.9)")
    epsilon: float = _f(1.0, gt=0.0, help="RMSProp epsilon (slim default 1.0)")
    weight_decay: float = _f(4e-5, min=0.0, help="L2 on kernels (slim 4e-5)")
    decoupled_weight_decay: bool = _f(False)
    clipnorm: float | None = _f(None, gt=0.0)
    ema_decay: float | None = _f(None, gt=0.0, max=1.0, help="slim moving_average_decay")


@dataclass
class TrainConfig:
    """Length of training, evaluation and early stopping."""

    epochs: int = _f(10, min=1)
    steps_per_epoch: int = _f(0, min=0, help="0 = one pass over the training split")
    eval_steps: int = _f(0, min=0, help="0 = the whole evaluation split")
    steps_per_execution: int = _f(1, min=1)
    early_stopping_metric: str | None = _f(None, help="e.g. 'val/f1_mean'; null = off")
    early_stopping_patience: int = _f(5, min=1)
    restore_best_weights: bool = _f(
        True, help="end with the best epoch's weights (by the monitored metric), not the last"
    )
    aux_loss_weight: float = _f(0.4, min=0.0, help="Inception V4 aux logits loss weight")
    checkpoint_every: int = _f(0, min=0, help="steps between checkpoints; 0 = every epoch")
    keep_checkpoints: int = _f(3, min=1)
    # Angular separation of hidden units (Korber, after Gedeon; docs/diagnostics.md).
    angular_separation_every: int = _f(
        0, min=0, help="epochs between angular-separation measurements; 0 = off"
    )
    angular_separation_end_point: str | None = _f(
        None, help="end point whose channels are the units; null = the one before Logits"
    )
    angular_separation_probe: int = _f(64, min=2, help="probe images (from the eval split)")
    angular_separation_units: int = _f(256, min=2, help="units sampled (seeded)")


@dataclass
class RunConfig:
    """Devices, precision, determinism and where outputs go."""

    model_dir: str = _f("runs/experiment")
    seed: int = _f(42, min=0)
    strategy: str = _f("auto", choices=("auto", "one_device", "mirrored", "multi_worker", "tpu"))
    mixed_precision: str | None = _f(
        None, choices=(None, "mixed_float16", "mixed_bfloat16"), help="Keras policy"
    )
    jit_compile: bool | str = _f(
        "auto",
        choices=("auto", True, False),
        help="XLA-compile the per-replica step; auto = on GPU/TPU, off on CPU (docs/training.md)",
    )
    deterministic: bool = _f(False, help="enable TF op determinism")


@dataclass
class ExperimentConfig:
    """A whole experiment."""

    name: str = _f("experiment")
    description: str = _f("")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)


# --------------------------------------------------------------------------------------------
# Machinery.


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        return f"list of {_type_name(arg)}"
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(
            f"The '{key}' parameter must be {_type_name(tp)}. Got {value!r} instead."
        ) from (errors[0] if errors else None)
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"The '{key}' parameter must be {_type_name(tp)}. Got {value!r} instead."
            )
        return [_coerce(v, arg, f"{key}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(
                f"The '{key}' section must be a mapping of keys to values. Got {value!r} instead."
            )
        return from_dict(tp, value, prefix=key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in (
            "true",
            "yes",
            "on",
            "1",
            "false",
            "no",
            "off",
            "0",
        ):
            return value.lower() in ("true", "yes", "on", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    raise ConfigError(f"The '{key}' parameter must be {_type_name(tp)}. Got {value!r} instead.")


def _check_meta(value: Any, meta: dict[str, Any], key: str) -> None:
    if "validate" in meta:
        meta["validate"](value, key)
    if meta.get("choices") is not None:
        check_choice(key, value, meta["choices"], error=ConfigError)
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if "min" in meta and value < meta["min"]:
        raise invalid(key, f">= {meta['min']}", value, error=ConfigError)
    if "max" in meta and value > meta["max"]:
        raise invalid(key, f"<= {meta['max']}", value, error=ConfigError)
    if "gt" in meta and value <= meta["gt"]:
        raise invalid(key, f"> {meta['gt']}", value, error=ConfigError)


def _unknown_key(cls: type, key: str, prefix: str) -> ConfigError:
    names = [f.name for f in dataclasses.fields(cls)]
    full = f"{prefix}.{key}" if prefix else key
    hint = did_you_mean(key, names, prefix=f"{prefix}." if prefix else "")
    where = f"section '{prefix}'" if prefix else "top level"
    return ConfigError(
        f"Unknown config key '{full}'.{hint} Keys allowed at the {where}: {', '.join(names)}."
    )


def from_dict(cls: type[T], data: dict[str, Any], *, prefix: str = "") -> T:
    """Build and validate a config dataclass from a nested dict.

    Args:
        cls: the dataclass type, e.g. :class:`ExperimentConfig`.
        data: nested mapping (from YAML); missing keys keep their defaults.
        prefix: dotted path of ``data`` inside the whole config, for messages.

    Returns:
        The validated instance.

    Raises:
        ConfigError: unknown key (with a did-you-mean), wrong type, or value out of range.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"A config must be a mapping of keys to values. Got {data!r} instead.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key(cls, str(key), prefix)
        full = f"{prefix}.{key}" if prefix else key
        if fields[key].metadata.get("join_list") and isinstance(value, (list, tuple)):
            # A YAML list such as `aus: [1, 2, 12]` is kept in the field's string form.
            value = ",".join(str(v) for v in value)
        coerced = _coerce(value, hints[key], full)
        _check_meta(coerced, dict(fields[key].metadata), full)
        kwargs[key] = coerced
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """Nested plain-dict view of a config dataclass (YAML-ready)."""
    return dataclasses.asdict(config)


def to_yaml(config: Any) -> str:
    """YAML text of a config; ``from_dict(type(c), yaml.safe_load(to_yaml(c))) == c``."""
    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=False)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one ``a.b=c`` override; the value is read as YAML (``1e-3``, ``true``, ``[1, 2]``).

    Raises:
        ConfigError: if there is no ``=`` or the key is empty.
    """
    if "=" not in text:
        raise ConfigError(
            f"An override must look like 'section.key=value' (e.g. 'optimizer.learning_rate=0.01'). "
            f"Got {text!r} instead."
        )
    key, _, raw = text.partition("=")
    parts = [p.strip() for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"The override key in {text!r} is empty or has an empty part.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides to a nested dict (a copy); keys are checked later by from_dict."""
    out: dict[str, Any] = yaml.safe_load(yaml.safe_dump(data)) if data else {}
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(
                    f"The override {text!r} goes inside '{'.'.join(parts[: i + 1])}', "
                    f"which is a value, not a section."
                )
            node = child
        node[parts[-1]] = value
    return out


def list_experiments() -> list[str]:
    """Names of the experiments shipped in ``fer_tf/configs/``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _read_yaml(name_or_path: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        names = list_experiments()
        hint = did_you_mean(name_or_path, names)
        raise ConfigError(
            f"The config {name_or_path!r} is neither a YAML file nor a shipped experiment. "
            f"Shipped experiments: {', '.join(names) or '(none)'}.{hint}"
        )
    if str(path.resolve()) in seen:
        raise ConfigError(f"The config {str(path)!r} is its own base (a 'base:' cycle).")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"The config file '{path}' is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"The config file '{path}' must hold a mapping. Got {type(data).__name__}."
        )
    base = data.pop("base", None)
    if base:
        merged = _read_yaml(str(base), (*seen, str(path.resolve())))
        data = _deep_merge(merged, data)
    return data


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = (
            _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def load_config(
    name_or_path: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> ExperimentConfig:
    """Load an experiment: shipped name or YAML path, then ``--set`` overrides, then validation.

    Args:
        name_or_path: experiment name (see :func:`list_experiments`), a YAML path, or None for
            the defaults.
        overrides: ``section.key=value`` strings, applied in order.

    Returns:
        The validated :class:`ExperimentConfig`.

    Raises:
        ConfigError: unknown experiment, bad YAML, unknown key, wrong type or value.
    """
    data = _read_yaml(name_or_path) if name_or_path else {}
    data = apply_overrides(data, overrides)
    return from_dict(ExperimentConfig, data)


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (the run directory's ``config.yaml``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_yaml(config), encoding="utf-8")
    return path
