"""Task heads on a backbone: multi-label sigmoid, softmax, regression; multi-task by name.

This module is the user API for heads: multi-task models, notebooks, and custom training
through ``run_experiment(config, model_fn=...)`` (the trainer reads the output named after the
task, e.g. ``{"au": ...}``). The trainer's own models (``fer_tf.training.experiment.build_model``)
do not use it: they keep each builder's classifier top, whose slim names (``Logits``,
``AuxLogits``, ``fc8``) the slim checkpoints, the class-layer exclusion when fine-tuning and the
freezing tables refer to, and Inception V4's auxiliary logits come with it.

Heads output *logits* (no sigmoid/softmax; losses take ``from_logits=True``) or, for regression,
linear values optionally bounded with ``tanh``. Heads compute in float32, so under a
``mixed_float16``/``mixed_bfloat16`` policy the outputs stay float32.

Example:
    >>> model = build_classifier(
    ...     "inception_v2",
    ...     heads={"au": 12, "va": HeadSpec("regression", 2, bound="tanh")},
    ...     input_shape=(96, 96, 3),
    ...     backbone_kwargs={"depth_multiplier": 0.25},
    ... )
    >>> outputs = model(images)  # {"au": [N, 12] logits, "va": [N, 2]}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from fer_tf.checks import check_choice, check_number
from fer_tf.models._registry import create_model, get_model_info
from fer_tf.models.layers import SlimGlobalPool

__all__ = ["HEAD_KINDS", "TASK_HEAD_KINDS", "HeadSpec", "TaskHead", "build_classifier"]

HEAD_KINDS: tuple[str, ...] = ("sigmoid", "softmax", "regression")
_BOUNDS = (None, "tanh")

#: Default head kind for the project's task names (``heads={"au": 12}``).
TASK_HEAD_KINDS: dict[str, str] = {
    "au": "sigmoid",
    "va": "regression",
    "posed": "softmax",
    "emotion": "softmax",
    "au_intensity": "regression",
}


@dataclass(frozen=True)
class HeadSpec:
    """One task head.

    Attributes:
        kind: ``"sigmoid"`` (multi-label logits, e.g. K action units), ``"softmax"`` (K-class
            logits) or ``"regression"`` (linear outputs, e.g. valence and arousal).
        units: Number of outputs.
        dropout: Dropout rate before the head's dense layer; ``None`` uses the
            ``head_dropout`` of :func:`build_classifier`.
        bound: ``None`` or ``"tanh"`` (regression only: outputs in ``(-1, 1)``).
    """

    kind: str
    units: int
    dropout: float | None = None
    bound: str | None = None

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, HEAD_KINDS)
        check_number("units", self.units, min=1, integer=True)
        check_number("dropout", self.dropout, min=0.0, lt=1.0, allow_none=True)
        check_choice("bound", self.bound, _BOUNDS)
        if self.bound is not None and self.kind != "regression":
            raise ValueError("A 'bound' is only meaningful for regression heads.")


@keras.saving.register_keras_serializable(package="fer_tf")
class TaskHead(keras.layers.Layer):
    """Dropout, a dense layer and an optional ``tanh``, computed in float32.

    Args:
        units: Number of outputs.
        kind: One of :data:`HEAD_KINDS` (recorded for losses/metrics; sigmoid and softmax heads
            both output logits).
        dropout: Dropout rate before the dense layer.
        bound: ``None`` or ``"tanh"``.
        kernel_initializer: Initializer of the dense kernel.
        **kwargs: Passed to :class:`keras.layers.Layer` (``dtype`` defaults to float32).
    """

    def __init__(
        self,
        units: int,
        kind: str = "softmax",
        dropout: float = 0.0,
        bound: str | None = None,
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        spec = HeadSpec(kind, int(units), float(dropout), bound)
        self.units = spec.units
        self.kind = spec.kind
        self.rate = float(dropout)
        self.bound = spec.bound
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.dropout = keras.layers.Dropout(self.rate, dtype="float32", name="dropout")
        self.dense = keras.layers.Dense(
            self.units,
            kernel_initializer=self.kernel_initializer,
            dtype="float32",
            name="dense",
        )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.dense.build(tuple(input_shape))

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        x = tf.cast(inputs, tf.float32)
        if self.rate > 0:
            x = self.dropout(x, training=training)
        x = self.dense(x)
        if self.bound == "tanh":
            x = tf.tanh(x)
        return x

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*tuple(input_shape)[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kind": self.kind,
                "dropout": self.rate,
                "bound": self.bound,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


def _as_spec(name: str, value: HeadSpec | int | Mapping[str, Any]) -> HeadSpec:
    if isinstance(value, HeadSpec):
        return value
    if isinstance(value, Mapping):
        return HeadSpec(**value)
    if isinstance(value, int) and not isinstance(value, bool):
        if name not in TASK_HEAD_KINDS:
            raise ValueError(
                f"Cannot infer the kind of head {name!r} from its name; known task names are "
                f"{tuple(TASK_HEAD_KINDS)}. Pass a HeadSpec (kind, units) instead."
            )
        return HeadSpec(TASK_HEAD_KINDS[name], value)
    raise ValueError(
        f"Head {name!r} must be a HeadSpec, a dict of HeadSpec fields or an int. Got {value!r}."
    )


def build_classifier(
    backbone: str | keras.Model,
    heads: Mapping[str, HeadSpec | int | Mapping[str, Any]],
    *,
    input_shape: Sequence[int | None] | None = None,
    pooling: str = "avg",
    head_dropout: float = 0.0,
    weights: str | None = None,
    backbone_kwargs: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> keras.Model:
    """Backbone features followed by named task heads; outputs a dict of float32 tensors.

    The backbone's layers become layers of the returned model (the graph is not nested), so
    end points, slim checkpoint loading and freezing work on it directly.

    Args:
        backbone: A registered model name (built with ``include_top=False``) or a Keras model
            whose output is a feature map (pooled here) or a feature vector.
        heads: ``{output name: spec}``; a spec is a :class:`HeadSpec`, a dict of its fields, or
            an int (units) for the task names in :data:`TASK_HEAD_KINDS` (``"au"`` sigmoid,
            ``"va"`` regression, ``"posed"``/``"emotion"`` softmax).
        input_shape: Backbone input shape (default: the registry's).
        pooling: ``"avg"`` or ``"max"`` global pooling of the backbone features.
        head_dropout: Default dropout rate of the heads.
        weights: Backbone weights: a path or a name such as ``"imagenet"`` (see the builders).
        backbone_kwargs: Extra builder arguments (``depth_multiplier=0.25``, ``bn_decay`` ...).
        name: Model name (default ``<backbone>_heads``).

    Returns:
        A ``keras.Model`` mapping images to ``{head name: [N, units] float32}``.

    Raises:
        ValueError: For an unknown backbone, bad head specs or no heads.
    """
    if not heads:
        raise ValueError("The 'heads' parameter must name at least one head.")
    if pooling not in ("avg", "max"):
        raise ValueError(
            f"The 'pooling' parameter must be one of ('avg', 'max'). Got {pooling!r} instead."
        )
    if not 0.0 <= float(head_dropout) < 1.0:
        raise ValueError(f"The 'head_dropout' parameter must be in [0, 1). Got {head_dropout!r}.")
    specs = {str(k): _as_spec(str(k), v) for k, v in heads.items()}
    if isinstance(backbone, str):
        get_model_info(backbone)
        kwargs = dict(backbone_kwargs or {})
        if input_shape is not None:
            kwargs["input_shape"] = tuple(input_shape)
        base = create_model(backbone, include_top=False, pooling=pooling, weights=weights, **kwargs)
        backbone_name = backbone
    elif isinstance(backbone, keras.Model):
        if backbone_kwargs or weights is not None or input_shape is not None:
            raise ValueError(
                "backbone_kwargs, weights and input_shape apply to a backbone given by name only."
            )
        base = backbone
        backbone_name = backbone.name
    else:
        raise ValueError(
            f"The 'backbone' parameter must be a model name or a keras.Model. Got {backbone!r}."
        )
    features = base.output
    if isinstance(features, (list, tuple, dict)):
        raise ValueError("The backbone must have a single output (use include_top=False).")
    if len(features.shape) == 4:
        features = SlimGlobalPool(pooling, name="features_pool")(features)
    elif len(features.shape) != 2:
        raise ValueError(f"Backbone features must be 2-D or 4-D. Got shape {features.shape}.")
    outputs = {}
    for head_name, spec in specs.items():
        rate = head_dropout if spec.dropout is None else spec.dropout
        outputs[head_name] = TaskHead(
            spec.units, spec.kind, rate, spec.bound, name=f"head_{head_name}"
        )(features)
    inputs = base.inputs[0] if len(base.inputs) == 1 else base.inputs
    return keras.Model(inputs, outputs, name=name or f"{backbone_name}_heads")


def head_kinds(model: keras.Model) -> dict[str, str]:
    """Return ``{head name: kind}`` for a model built by :func:`build_classifier`.

    Args:
        model: A model from :func:`build_classifier`.

    Returns:
        The kinds, keyed by output name.
    """
    return {
        layer.name.removeprefix("head_"): layer.kind
        for layer in model.layers
        if isinstance(layer, TaskHead)
    }
