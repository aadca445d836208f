"""Inception V4, layer for layer as TF-Slim's ``nets/inception_v4.py``.

Written low-level as Christensen 2018 did: every convolution is a :class:`SlimConv2D` conv-BN unit
(kernel, beta, moving mean and variance; no gamma; epsilon 0.001; decay 0.9997). Variable names
are slim's (``InceptionV4/Mixed_6b/Branch_1/Conv2d_0b_1x7/weights`` ...), so the published
``inception_v4_2016_09_09`` checkpoint (1001 classes, index 0 = background) loads one-to-one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from fer_tf.models import _common as c
from fer_tf.models._builder import BuildArgs, backbone_model, builder, classifier_model, run_steps

__all__ = ["inception_v4", "INCEPTION_V4_ENDPOINTS"]

SCOPE = "InceptionV4"

#: Base end points in order (``final_endpoint`` accepts any of them).
INCEPTION_V4_ENDPOINTS: tuple[str, ...] = (
    *["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Mixed_3a", "Mixed_4a"],
    *(f"Mixed_5{k}" for k in "abcde"),
    *(f"Mixed_6{k}" for k in "abcdefgh"),
    *(f"Mixed_7{k}" for k in "abcd"),
)


def _block_a(n: c.SlimNet, x: Any, s: str) -> Any:
    b0 = n.conv(x, 96, 1, f"{s}/Branch_0/Conv2d_0a_1x1")
    b1 = n.conv(x, 64, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1 = n.conv(b1, 96, 3, f"{s}/Branch_1/Conv2d_0b_3x3")
    b2 = n.conv(x, 64, 1, f"{s}/Branch_2/Conv2d_0a_1x1")
    b2 = n.conv(b2, 96, 3, f"{s}/Branch_2/Conv2d_0b_3x3")
    b2 = n.conv(b2, 96, 3, f"{s}/Branch_2/Conv2d_0c_3x3")
    b3 = n.avg_pool(x, 3, f"{s}/Branch_3/AvgPool_0a_3x3")
    b3 = n.conv(b3, 96, 1, f"{s}/Branch_3/Conv2d_0b_1x1")
    return n.concat([b0, b1, b2, b3], s, endpoint=s)


def _reduction_a(n: c.SlimNet, x: Any, s: str) -> Any:
    b0 = n.conv(x, 384, 3, f"{s}/Branch_0/Conv2d_1a_3x3", stride=2, padding="VALID")
    b1 = n.conv(x, 192, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1 = n.conv(b1, 224, 3, f"{s}/Branch_1/Conv2d_0b_3x3")
    b1 = n.conv(b1, 256, 3, f"{s}/Branch_1/Conv2d_1a_3x3", stride=2, padding="VALID")
    b2 = n.max_pool(x, 3, f"{s}/Branch_2/MaxPool_1a_3x3", stride=2, padding="VALID")
    return n.concat([b0, b1, b2], s, endpoint=s)


def _block_b(n: c.SlimNet, x: Any, s: str) -> Any:
    b0 = n.conv(x, 384, 1, f"{s}/Branch_0/Conv2d_0a_1x1")
    b1 = n.conv(x, 192, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1 = n.conv(b1, 224, (1, 7), f"{s}/Branch_1/Conv2d_0b_1x7")
    b1 = n.conv(b1, 256, (7, 1), f"{s}/Branch_1/Conv2d_0c_7x1")
    b2 = n.conv(x, 192, 1, f"{s}/Branch_2/Conv2d_0a_1x1")
    b2 = n.conv(b2, 192, (7, 1), f"{s}/Branch_2/Conv2d_0b_7x1")
    b2 = n.conv(b2, 224, (1, 7), f"{s}/Branch_2/Conv2d_0c_1x7")
    b2 = n.conv(b2, 224, (7, 1), f"{s}/Branch_2/Conv2d_0d_7x1")
    b2 = n.conv(b2, 256, (1, 7), f"{s}/Branch_2/Conv2d_0e_1x7")
    b3 = n.avg_pool(x, 3, f"{s}/Branch_3/AvgPool_0a_3x3")
    b3 = n.conv(b3, 128, 1, f"{s}/Branch_3/Conv2d_0b_1x1")
    return n.concat([b0, b1, b2, b3], s, endpoint=s)


def _reduction_b(n: c.SlimNet, x: Any, s: str) -> Any:
    b0 = n.conv(x, 192, 1, f"{s}/Branch_0/Conv2d_0a_1x1")
    b0 = n.conv(b0, 192, 3, f"{s}/Branch_0/Conv2d_1a_3x3", stride=2, padding="VALID")
    b1 = n.conv(x, 256, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1 = n.conv(b1, 256, (1, 7), f"{s}/Branch_1/Conv2d_0b_1x7")
    b1 = n.conv(b1, 320, (7, 1), f"{s}/Branch_1/Conv2d_0c_7x1")
    b1 = n.conv(b1, 320, 3, f"{s}/Branch_1/Conv2d_1a_3x3", stride=2, padding="VALID")
    b2 = n.max_pool(x, 3, f"{s}/Branch_2/MaxPool_1a_3x3", stride=2, padding="VALID")
    return n.concat([b0, b1, b2], s, endpoint=s)


def _block_c(n: c.SlimNet, x: Any, s: str) -> Any:
    b0 = n.conv(x, 256, 1, f"{s}/Branch_0/Conv2d_0a_1x1")
    b1 = n.conv(x, 384, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1a = n.conv(b1, 256, (1, 3), f"{s}/Branch_1/Conv2d_0b_1x3")
    b1b = n.conv(b1, 256, (3, 1), f"{s}/Branch_1/Conv2d_0c_3x1")
    b1 = n.concat([b1a, b1b], f"{s}/Branch_1/concat")
    b2 = n.conv(x, 384, 1, f"{s}/Branch_2/Conv2d_0a_1x1")
    b2 = n.conv(b2, 448, (3, 1), f"{s}/Branch_2/Conv2d_0b_3x1")
    b2 = n.conv(b2, 512, (1, 3), f"{s}/Branch_2/Conv2d_0c_1x3")
    b2a = n.conv(b2, 256, (1, 3), f"{s}/Branch_2/Conv2d_0d_1x3")
    b2b = n.conv(b2, 256, (3, 1), f"{s}/Branch_2/Conv2d_0e_3x1")
    b2 = n.concat([b2a, b2b], f"{s}/Branch_2/concat")
    b3 = n.avg_pool(x, 3, f"{s}/Branch_3/AvgPool_0a_3x3")
    b3 = n.conv(b3, 256, 1, f"{s}/Branch_3/Conv2d_0b_1x1")
    return n.concat([b0, b1, b2, b3], s, endpoint=s)


def _stem_steps(n: c.SlimNet) -> list[tuple[str, Callable[[Any], Any]]]:
    def conv_1a(x: Any) -> Any:
        return n.conv(
            x, 32, 3, "Conv2d_1a_3x3", stride=2, padding="VALID", endpoint="Conv2d_1a_3x3"
        )

    def conv_2a(x: Any) -> Any:
        return n.conv(x, 32, 3, "Conv2d_2a_3x3", padding="VALID", endpoint="Conv2d_2a_3x3")

    def conv_2b(x: Any) -> Any:
        return n.conv(x, 64, 3, "Conv2d_2b_3x3", endpoint="Conv2d_2b_3x3")

    def mixed_3a(x: Any) -> Any:
        b0 = n.max_pool(x, 3, "Mixed_3a/Branch_0/MaxPool_0a_3x3", stride=2, padding="VALID")
        b1 = n.conv(x, 96, 3, "Mixed_3a/Branch_1/Conv2d_0a_3x3", stride=2, padding="VALID")
        return n.concat([b0, b1], "Mixed_3a", endpoint="Mixed_3a")

    def mixed_4a(x: Any) -> Any:
        s = "Mixed_4a"
        b0 = n.conv(x, 64, 1, f"{s}/Branch_0/Conv2d_0a_1x1")
        b0 = n.conv(b0, 96, 3, f"{s}/Branch_0/Conv2d_1a_3x3", padding="VALID")
        b1 = n.conv(x, 64, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
        b1 = n.conv(b1, 64, (1, 7), f"{s}/Branch_1/Conv2d_0b_1x7")
        b1 = n.conv(b1, 64, (7, 1), f"{s}/Branch_1/Conv2d_0c_7x1")
        b1 = n.conv(b1, 96, 3, f"{s}/Branch_1/Conv2d_1a_3x3", padding="VALID")
        return n.concat([b0, b1], s, endpoint=s)

    def mixed_5a(x: Any) -> Any:
        s = "Mixed_5a"
        b0 = n.conv(x, 192, 3, f"{s}/Branch_0/Conv2d_1a_3x3", stride=2, padding="VALID")
        b1 = n.max_pool(x, 3, f"{s}/Branch_1/MaxPool_1a_3x3", stride=2, padding="VALID")
        return n.concat([b0, b1], s, endpoint=s)

    return [
        ("Conv2d_1a_3x3", conv_1a),
        ("Conv2d_2a_3x3", conv_2a),
        ("Conv2d_2b_3x3", conv_2b),
        ("Mixed_3a", mixed_3a),
        ("Mixed_4a", mixed_4a),
        ("Mixed_5a", mixed_5a),
    ]


def _steps(n: c.SlimNet) -> list[tuple[str, Callable[[Any], Any]]]:
    steps = _stem_steps(n)

    def bind(fn: Callable[[c.SlimNet, Any, str], Any], s: str) -> Callable[[Any], Any]:
        return lambda x: fn(n, x, s)

    steps += [(s, bind(_block_a, s)) for s in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_5e")]
    steps.append(("Mixed_6a", bind(_reduction_a, "Mixed_6a")))
    steps += [(f"Mixed_6{k}", bind(_block_b, f"Mixed_6{k}")) for k in "bcdefgh"]
    steps.append(("Mixed_7a", bind(_reduction_b, "Mixed_7a")))
    steps += [(f"Mixed_7{k}", bind(_block_c, f"Mixed_7{k}")) for k in "bcd"]
    return steps


def _mixed_6h_size(size: int | None) -> int | None:
    """Spatial size of Mixed_6h for an input size (stride-2 VALID steps and 3x3 VALID convs)."""
    if size is None:
        return None
    size = (size - 3) // 2 + 1 - 2  # Conv2d_1a_3x3 (s2), Conv2d_2a_3x3
    size = (size - 3) // 2 + 1 - 2  # Mixed_3a (s2), Mixed_4a
    return ((size - 3) // 2 + 1 - 3) // 2 + 1  # Mixed_5a (s2), Mixed_6a (s2)


def _aux_head(n: c.SlimNet, mixed_6h: Any, classes: int) -> Any:
    x = n.avg_pool(mixed_6h, 5, "AuxLogits/AvgPool_1a_5x5", stride=3, padding="VALID")
    x = n.conv(x, 128, 1, "AuxLogits/Conv2d_1b_1x1")
    kernel = tuple(x.shape[1:3])
    if any(d is None for d in kernel):
        raise ValueError(
            "Inception V4's auxiliary head needs a static input size (its Conv2d_2a kernel is the "
            "size of the pooled Mixed_6h map). Pass a full input_shape or aux_logits=False."
        )
    x = n.conv(x, 768, kernel, "AuxLogits/Conv2d_2a", padding="VALID")
    x = c.flatten(x, "AuxLogits_Flatten")
    return n.dense(x, classes, "AuxLogits/Aux_logits", endpoint="AuxLogits", is_logits=True)


@builder("inception_v4", dropout=0.2)
def inception_v4(
    args: BuildArgs,
    *,
    final_endpoint: str = "Mixed_7d",
    bn_decay: float = 0.9997,
    bn_epsilon: float = 0.001,
) -> keras.Model:
    """Inception V4 (Szegedy et al. 2016) as TF-Slim builds it.

    Args:
        include_top: Add slim's ``Logits`` (global average pool, dropout, fully connected) and,
            with ``aux_logits``, the ``AuxLogits`` head on ``Mixed_6h``.
        weights: ``None``, ``"imagenet"`` (TF-Slim's published checkpoint, downloaded once into
            a cache) or a local path: a TF-Slim checkpoint prefix (background row dropped when
            ``classes == 1000``), or a ``.weights.h5``/``.keras`` file.
        input_shape: ``(height, width, 3)``; default ``(299, 299, 3)``. Height and width may be
            ``None`` when ``include_top=False`` (or ``aux_logits=False``). At least 75.
        pooling: With ``include_top=False``: ``None`` (4-D features), ``"avg"`` or ``"max"``.
        classes: Number of classes (1001 for slim checkpoints: index 0 is background).
        dropout: Dropout rate before the logits (slim's ``dropout_keep_prob=0.8``).
        aux_logits: Build the auxiliary head (slim's ``create_aux_logits``). The model then
            outputs ``{"logits": ..., "aux_logits": ...}``.
        final_endpoint: With ``include_top=False``, the last end point to build.
        weight_decay: slim-style L2 weight decay (slim used 4e-5) added as layer losses.
        bn_decay: BatchNorm moving-average decay.
        bn_epsilon: BatchNorm epsilon.
    """
    if args.include_top and args.aux_logits:
        spatial = tuple(_mixed_6h_size(d) for d in args.inputs.shape[1:3])
        if any(d is not None and d < 5 for d in spatial):
            raise ValueError(
                "Inception V4's auxiliary head needs Mixed_6h of at least 5x5 (input >= 107); "
                f"got {spatial}. Pass aux_logits=False or a larger input_shape."
            )
    n = c.SlimNet(SCOPE, bn_decay=bn_decay, bn_epsilon=bn_epsilon, weight_decay=args.weight_decay)
    x, kept = run_steps(args, _steps(n), args.inputs, final_endpoint, keep=("Mixed_6h",))
    if not args.include_top:
        return backbone_model(args, x)

    aux = _aux_head(n, kept["Mixed_6h"], args.classes) if args.aux_logits else None
    x = c.global_pool(x, name="Logits_global_pool")
    x = c.dropout(x, args.dropout, "Logits_Dropout_1b")
    x = c.flatten(x, "Logits_PreLogitsFlatten", endpoint="PreLogitsFlatten")
    logits = n.dense(x, args.classes, "Logits/Logits", endpoint="Logits", is_logits=True)
    return classifier_model(
        args,
        logits,
        aux=aux,
        background="drop" if args.classes == 1000 else "keep",
        exclude_scopes=() if args.aux_logits else (f"{SCOPE}/AuxLogits",),
    )
