"""The seeds' small CNNs, and a tiny CNN for fast tests.

- ``shallow_cnn``: seed 000, Table 4.2. 96x96x3 input; conv 8, conv 16, max pool 3x3 stride 3
  (96 -> 32), conv 24, conv 32, max pool 3x3 stride 3 (32 -> 11, so ``SAME`` padding), fully
  connected 3872 -> 2048, fully connected 2048 -> 2 or 12. Convolutions keep the spatial size;
  their kernel size is not given in the thesis (``kernel_size`` parameter, default 3).
- ``fer2013_cnn``: seed 002, sections 3.1-3.3. 36x36x1 (greyscale) input, 3x3 convolutions with
  stride 1 and padding 1 (``SAME``), ReLU, 2x2 max pools with stride 2 and no padding; two dense
  layers with dropout before and after the first; 7 outputs.

  * variant 1 ("high overfit"): conv 16, 16, 32 + pool, 32, 32, 64 + pool, 64, 64, 128 + pool
    (128x4x4 = 2048), dense 556, dense 7;
  * variant 2 ("medium overfit"): conv 16, 32 + pool, 32, 64 + pool, 64 + pool, 128 + pool
    (128x2x2 = 512), dense 56, dense 7;
  * variant 3 ("no overfit", the one the seed keeps): conv 16, 32 + pool, 64 + pool, 64 + pool
    (64x4x4 = 1024), dense 256, dense 7.
- ``tiny_cnn``: three stride-2 conv-BN units (16, 32, 64) for CPU tests at 32-64 px.

All layers carry slim-style scopes and end points like the big models, so freezing, end points
and checkpoint tooling work the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from fer_tf.models import _common as c
from fer_tf.models._registry import register_model

__all__ = ["shallow_cnn", "fer2013_cnn", "tiny_cnn", "FER2013_VARIANTS"]

# (filters, pool after?) per conv layer, and the width of the first dense layer.
FER2013_VARIANTS: dict[int, tuple[tuple[tuple[int, bool], ...], int]] = {
    1: (
        (
            (16, False),
            (16, False),
            (32, True),
            (32, False),
            (32, False),
            (64, True),
            (64, False),
            (64, False),
            (128, True),
        ),
        556,
    ),
    2: (((16, False), (32, True), (32, False), (64, True), (64, True), (128, True)), 56),
    3: (((16, False), (32, True), (64, True), (64, True)), 256),
}


def _finish(
    inputs: Any,
    x: Any,
    n: c.SlimNet,
    *,
    include_top: bool,
    pooling: str | None,
    weights: str | None,
    classes: int,
    hidden: int,
    dropout: float,
    dropout_before_hidden: bool,
    classifier_activation: str | None,
    name: str,
) -> keras.Model:
    if not include_top:
        model = keras.Model(inputs, c.pool_features(x, pooling), name=name)
        c.load_weights_arg(model, weights, backbone_only=True)
        return model
    if any(d is None for d in x.shape[1:]):
        raise ValueError(
            f"{name} with include_top=True flattens its feature map and needs a static input "
            "shape; pass input_shape or include_top=False."
        )
    x = c.flatten(x, "flatten", endpoint="flatten")
    if dropout_before_hidden:
        x = c.dropout(x, dropout, "dropout0")
    x = n.dense(x, hidden, "fc1", activation="relu", endpoint="fc1")
    x = c.dropout(x, dropout, "dropout1")
    x = n.dense(x, classes, "logits", endpoint="Logits", is_logits=True)
    x = c.activation(x, classifier_activation)
    model = keras.Model(inputs, x, name=name)
    c.load_weights_arg(model, weights)
    return model


@register_model(
    "shallow_cnn",
    input_shape=(96, 96, 3),
    preprocessing="unit",
    classes=2,
    slim_scope="shallow_cnn",
    min_input_size=9,
    description="Seed 000's shallow CNN (Table 4.2): 4 convs, 2 pools, 2 FC; 2 or 12 classes",
)
def shallow_cnn(
    *,
    include_top: bool = True,
    weights: str | None = None,
    input_tensor: Any = None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int = 2,
    classifier_activation: str | None = None,
    dropout: float = 0.5,
    kernel_size: int = 3,
    weight_decay: float = 0.0,
    name: str = "shallow_cnn",
) -> keras.Model:
    """Seed 000's shallow CNN (Table 4.2), posed vs spontaneous (2) or x 6 emotions (12).

    Args:
        include_top: Add the two fully connected layers (3872 -> 2048 -> classes at 96 px).
        weights: ``None`` or a local ``.weights.h5``/``.keras``/checkpoint path.
        input_tensor: Optional Keras tensor to use as the input.
        input_shape: Default ``(96, 96, 3)``.
        pooling: With ``include_top=False``: ``None``, ``"avg"`` or ``"max"``.
        classes: 2 (posed/spontaneous) or 12 (x 6 emotions); any positive int is accepted.
        classifier_activation: ``None`` for logits, or an activation.
        dropout: Dropout rate after the first fully connected layer.
        kernel_size: Convolution kernel size (not stated in the thesis).
        weight_decay: L2 weight decay (slim convention).
        name: Model name.

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: For invalid arguments.
    """
    c.check_common_args(
        weights=weights,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )
    inputs = c.make_input(input_shape, (96, 96, 3), 9, input_tensor, name)
    n = c.SlimNet("shallow_cnn", weight_decay=weight_decay, kernel_initializer="glorot_uniform")
    x = inputs
    for i, filters in enumerate((8, 16), start=1):
        x = n.conv(x, filters, kernel_size, f"conv{i}", use_batch_norm=False, endpoint=f"conv{i}")
    x = n.max_pool(x, 3, "pool1", stride=3, endpoint="pool1")
    for i, filters in enumerate((24, 32), start=3):
        x = n.conv(x, filters, kernel_size, f"conv{i}", use_batch_norm=False, endpoint=f"conv{i}")
    x = n.max_pool(x, 3, "pool2", stride=3, endpoint="pool2")
    return _finish(
        inputs,
        x,
        n,
        include_top=include_top,
        pooling=pooling,
        weights=weights,
        classes=classes,
        hidden=2048,
        dropout=dropout,
        dropout_before_hidden=False,
        classifier_activation=classifier_activation,
        name=name,
    )


@register_model(
    "fer2013_cnn",
    input_shape=(36, 36, 1),
    preprocessing="unit",
    classes=7,
    slim_scope="fer2013_cnn",
    min_input_size=16,
    description="Seed 002's FER2013 CNNs (variants 1-3, 36x36 greyscale, 7 classes)",
)
def fer2013_cnn(
    *,
    include_top: bool = True,
    weights: str | None = None,
    input_tensor: Any = None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int = 7,
    classifier_activation: str | None = None,
    dropout: float = 0.5,
    variant: int = 3,
    weight_decay: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """Seed 002's CNNs for FER2013 (sections 3.1-3.3).

    Args:
        include_top: Add the two dense layers (with dropout before and after the first).
        weights: ``None`` or a local ``.weights.h5``/``.keras``/checkpoint path.
        input_tensor: Optional Keras tensor to use as the input.
        input_shape: Default ``(36, 36, 1)``.
        pooling: With ``include_top=False``: ``None``, ``"avg"`` or ``"max"``.
        classes: Number of classes (7 FER2013 emotions).
        classifier_activation: ``None`` for logits, or an activation.
        dropout: Dropout rate (the seed used 0.4-0.5).
        variant: 1, 2 or 3 (see the module docstring).
        weight_decay: L2 weight decay (slim convention).
        name: Model name (default ``fer2013_cnn_v<variant>``).

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: For invalid arguments.
    """
    if variant not in FER2013_VARIANTS:
        raise ValueError(
            f"The 'variant' parameter must be one of {tuple(FER2013_VARIANTS)}. "
            f"Got {variant!r} instead."
        )
    c.check_common_args(
        weights=weights,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )
    name = name or f"fer2013_cnn_v{variant}"
    convs, hidden = FER2013_VARIANTS[variant]
    inputs = c.make_input(input_shape, (36, 36, 1), 16, input_tensor, name)
    n = c.SlimNet("fer2013_cnn", weight_decay=weight_decay, kernel_initializer="he_normal")
    x = inputs
    pools = 0
    for i, (filters, pool) in enumerate(convs, start=1):
        x = n.conv(x, filters, 3, f"conv{i}", use_batch_norm=False, endpoint=f"conv{i}")
        if pool:
            pools += 1
            x = n.max_pool(x, 2, f"pool{pools}", stride=2, padding="VALID", endpoint=f"pool{pools}")
    return _finish(
        inputs,
        x,
        n,
        include_top=include_top,
        pooling=pooling,
        weights=weights,
        classes=classes,
        hidden=hidden,
        dropout=dropout,
        dropout_before_hidden=True,
        classifier_activation=classifier_activation,
        name=name,
    )


@register_model(
    "tiny_cnn",
    input_shape=(64, 64, 3),
    preprocessing="inception",
    classes=2,
    slim_scope="tiny_cnn",
    min_input_size=8,
    description="Tiny conv-BN network for fast CPU tests (any input >= 8 px)",
)
def tiny_cnn(
    *,
    include_top: bool = True,
    weights: str | None = None,
    input_tensor: Any = None,
    input_shape: Sequence[int | None] | None = None,
    pooling: str | None = None,
    classes: int = 2,
    classifier_activation: str | None = None,
    dropout: float = 0.0,
    width: int = 16,
    bn_decay: float = 0.99,
    weight_decay: float = 0.0,
    name: str = "tiny_cnn",
) -> keras.Model:
    """A tiny conv-BN network (``width``, 2x, 4x channels; each stride 2) for tests and demos.

    Args:
        include_top: Add global average pooling, dropout and a logits layer.
        weights: ``None`` or a local ``.weights.h5``/``.keras``/checkpoint path.
        input_tensor: Optional Keras tensor to use as the input.
        input_shape: Default ``(64, 64, 3)``; height/width may be ``None``.
        pooling: With ``include_top=False``: ``None``, ``"avg"`` or ``"max"``.
        classes: Number of classes.
        classifier_activation: ``None`` for logits, or an activation.
        dropout: Dropout rate before the logits.
        width: Channels of the first unit.
        bn_decay: BatchNorm decay (lower than slim's so statistics move in short tests).
        weight_decay: L2 weight decay (slim convention).
        name: Model name.

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: For invalid arguments.
    """
    c.check_common_args(
        weights=weights,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        dropout=dropout,
        classifier_activation=classifier_activation,
    )
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"The 'width' parameter must be a positive int. Got {width!r} instead.")
    inputs = c.make_input(input_shape, (64, 64, 3), 8, input_tensor, name)
    n = c.SlimNet("tiny_cnn", bn_decay=bn_decay, weight_decay=weight_decay)
    x = inputs
    for i, mult in enumerate((1, 2, 4), start=1):
        x = n.conv(x, width * mult, 3, f"conv{i}", stride=2, endpoint=f"conv{i}")
    if not include_top:
        model = keras.Model(inputs, c.pool_features(x, pooling), name=name)
        c.load_weights_arg(model, weights, backbone_only=True)
        return model
    x = c.global_pool(x, name="global_pool")
    x = c.flatten(x, "flatten")
    x = c.dropout(x, dropout, "dropout")
    x = n.dense(x, classes, "logits", endpoint="Logits", is_logits=True)
    x = c.activation(x, classifier_activation)
    model = keras.Model(inputs, x, name=name)
    c.load_weights_arg(model, weights)
    return model
