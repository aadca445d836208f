"""The seeds' small CNNs, and a tiny CNN for fast tests.

- ``shallow_cnn``: Christensen 2018, Table 4.2. 96x96x3 input; conv 8, conv 16, max pool 3x3 stride 3
  (96 -> 32), conv 24, conv 32, max pool 3x3 stride 3 (32 -> 11, so ``SAME`` padding), fully
  connected 3872 -> 2048, fully connected 2048 -> 2 or 12. Convolutions keep the spatial size;
  their kernel size is not given in the thesis (``kernel_size`` parameter, default 3).
- ``fer2013_cnn``: Amaya & Dave, sections 3.1-3.3. 36x36x1 (greyscale) input, 3x3 convolutions with
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

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras

from fer_tf.checks import check_choice, check_number
from fer_tf.models import _common as c
from fer_tf.models._builder import BuildArgs, backbone_model, builder, classifier_model
from fer_tf.models._common import SlimNet

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


# A layer of a small CNN: ("conv", filters, kernel size, stride, BatchNorm?) or
# ("pool", size, stride, padding). Layers are named conv1, conv2 ... and pool1, pool2 ... in order,
# and each is an end point of that name.
Layer = tuple[Any, ...]


def _small_cnn(
    args: BuildArgs,
    n: SlimNet,
    layers: Sequence[Layer],
    *,
    head: str,
    hidden: int = 0,
    dropout_before_hidden: bool = False,
) -> keras.Model:
    """The one implementation of the small CNNs: a stack of layers, then a head.

    Args:
        args: The builder's checked arguments.
        n: The slim layer factory of the model.
        layers: The stack (see :data:`Layer`).
        head: ``"fc"``: flatten, dense ``hidden`` (ReLU) with dropout after it (and before it
            with ``dropout_before_hidden``), logits; ``"gap"``: global average pool, dropout,
            logits.
        hidden: Width of the hidden dense layer of the ``"fc"`` head.
        dropout_before_hidden: Dropout before the hidden layer too (Amaya & Dave).

    Returns:
        The functional model.
    """
    x = args.inputs
    convs = pools = 0
    for kind, *spec in layers:
        if kind == "conv":
            convs += 1
            filters, kernel, stride, bn = spec
            scope = f"conv{convs}"
            x = n.conv(x, filters, kernel, scope, stride=stride, use_batch_norm=bn, endpoint=scope)
        else:
            pools += 1
            size, stride, padding = spec
            scope = f"pool{pools}"
            x = n.max_pool(x, size, scope, stride=stride, padding=padding, endpoint=scope)
    if not args.include_top:
        return backbone_model(args, x)
    if head == "gap":
        x = c.global_pool(x, name="global_pool")
        x = c.flatten(x, "flatten")
        x = c.dropout(x, args.dropout, "dropout")
    else:
        if any(d is None for d in x.shape[1:]):
            raise ValueError(
                f"{args.name} with include_top=True flattens its feature map and needs a static "
                "input shape; pass input_shape or include_top=False."
            )
        x = c.flatten(x, "flatten", endpoint="flatten")
        if dropout_before_hidden:
            x = c.dropout(x, args.dropout, "dropout0")
        x = n.dense(x, hidden, "fc1", activation="relu", endpoint="fc1")
        x = c.dropout(x, args.dropout, "dropout1")
    x = n.dense(x, args.classes, "logits", endpoint="Logits", is_logits=True)
    return classifier_model(args, x)


@builder("shallow_cnn", dropout=0.5)
def shallow_cnn(args: BuildArgs, *, kernel_size: int = 3) -> keras.Model:
    """Christensen 2018's shallow CNN (Table 4.2), posed vs spontaneous (2) or x 6 emotions (12).

    Args:
        include_top: Add the two fully connected layers (3872 -> 2048 -> classes at 96 px),
            with dropout after the first.
        kernel_size: Convolution kernel size (not stated in the thesis).
        weight_decay: L2 weight decay (slim convention).
    """
    n = SlimNet("shallow_cnn", weight_decay=args.weight_decay, kernel_initializer="glorot_uniform")
    # conv 8, conv 16, pool, conv 24, conv 32, pool (0 = a 3x3 stride-3 max pool).
    layers = [
        ("conv", f, kernel_size, 1, False) if f else ("pool", 3, 3, "SAME")
        for f in (8, 16, 0, 24, 32, 0)
    ]
    return _small_cnn(args, n, layers, head="fc", hidden=2048)


@builder("fer2013_cnn", dropout=0.5, derived_name=True)
def fer2013_cnn(args: BuildArgs, *, variant: int = 3) -> keras.Model:
    """Amaya & Dave's CNNs for FER2013 (sections 3.1-3.3).

    Args:
        include_top: Add the two dense layers, with dropout (the seed used 0.4-0.5) before and
            after the first.
        variant: 1, 2 or 3 (see the module docstring).
        weight_decay: L2 weight decay (slim convention).
        name: Model name (default ``fer2013_cnn_v<variant>``).
    """
    check_choice("variant", variant, FER2013_VARIANTS)
    args = dataclasses.replace(args, name=args.name or f"fer2013_cnn_v{variant}")
    n = SlimNet("fer2013_cnn", weight_decay=args.weight_decay, kernel_initializer="he_normal")
    convs, hidden = FER2013_VARIANTS[variant]
    layers: list[Layer] = []
    for filters, pool in convs:
        layers.append(("conv", filters, 3, 1, False))
        if pool:
            layers.append(("pool", 2, 2, "VALID"))
    return _small_cnn(args, n, layers, head="fc", hidden=hidden, dropout_before_hidden=True)


@builder("tiny_cnn", dropout=0.0)
def tiny_cnn(
    args: BuildArgs,
    *,
    width: int = 16,
    bn_decay: float = 0.99,
) -> keras.Model:
    """A tiny conv-BN network (``width``, 2x, 4x channels; each stride 2) for tests and demos.

    Args:
        include_top: Add global average pooling, dropout and a logits layer.
        input_shape: Default ``(64, 64, 3)``; height/width may be ``None``.
        width: Channels of the first unit.
        bn_decay: BatchNorm decay (lower than slim's so statistics move in short tests).
        weight_decay: L2 weight decay (slim convention).
    """
    check_number("width", width, min=1, integer=True)
    n = SlimNet("tiny_cnn", bn_decay=bn_decay, weight_decay=args.weight_decay)
    layers = [("conv", width * mult, 3, 2, True) for mult in (1, 2, 4)]
    return _small_cnn(args, n, layers, head="gap")
