"""Inception V2 (BN-Inception) as TF-Slim's ``inception_v2``.

The first layer ``Conv2d_1a_7x7`` is a separable convolution with biases and no BatchNorm
(slim's ``use_separable_conv=True``; depthwise multiplier ``min(int(depth(64) / 3), 8)``), every
other convolution is a conv-BN unit (no gamma, epsilon 0.001, decay 0.9997). ``depth_multiplier``
and ``min_depth`` scale the channel counts as slim does (``max(int(d * multiplier), min_depth)``),
which also gives the tiny variants used in tests. The published ``inception_v2_2016_08_28``
checkpoint (1001 classes, index 0 = background) loads one-to-one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from fer_tf.checks import check_number
from fer_tf.models import _common as c
from fer_tf.models._builder import BuildArgs, backbone_model, builder, classifier_model, run_steps

__all__ = ["inception_v2", "INCEPTION_V2_ENDPOINTS"]

SCOPE = "InceptionV2"

INCEPTION_V2_ENDPOINTS: tuple[str, ...] = (
    *["Conv2d_1a_7x7", "MaxPool_2a_3x3", "Conv2d_2b_1x1", "Conv2d_2c_3x3", "MaxPool_3a_3x3"],
    *(f"Mixed_3{k}" for k in "bc"),
    *(f"Mixed_4{k}" for k in "abcde"),
    *(f"Mixed_5{k}" for k in "abc"),
)

# (b0, (b1a, b1b), (b2a, b2b, b2c), (pool type, b3)) for the plain Inception modules.
_MODULES: dict[str, tuple[int, tuple[int, int], tuple[int, int, int], tuple[str, int]]] = {
    "Mixed_3b": (64, (64, 64), (64, 96, 96), ("avg", 32)),
    "Mixed_3c": (64, (64, 96), (64, 96, 96), ("avg", 64)),
    "Mixed_4b": (224, (64, 96), (96, 128, 128), ("avg", 128)),
    "Mixed_4c": (192, (96, 128), (96, 128, 128), ("avg", 128)),
    "Mixed_4d": (160, (128, 160), (128, 160, 160), ("avg", 96)),
    "Mixed_4e": (96, (128, 192), (160, 192, 192), ("avg", 96)),
    "Mixed_5b": (352, (192, 320), (160, 224, 224), ("avg", 128)),
    "Mixed_5c": (352, (192, 320), (192, 224, 224), ("max", 128)),
}
# (b0a, b0b), (b1a, b1b, b1c) for the grid reductions.
_REDUCTIONS: dict[str, tuple[tuple[int, int], tuple[int, int, int]]] = {
    "Mixed_4a": ((128, 160), (64, 96, 96)),
    "Mixed_5a": ((128, 192), (192, 256, 256)),
}


def _steps(
    n: c.SlimNet, depth: Callable[[int], int], use_separable_conv: bool
) -> list[tuple[str, Callable[[Any], Any]]]:
    def conv_1a(x: Any) -> Any:
        if use_separable_conv:
            multiplier = min(int(depth(64) / 3), 8)
            return n.separable_conv(
                x, depth(64), 7, multiplier, "Conv2d_1a_7x7", stride=2, endpoint="Conv2d_1a_7x7"
            )
        return n.conv(x, depth(64), 7, "Conv2d_1a_7x7", stride=2, endpoint="Conv2d_1a_7x7")

    def module(s: str) -> Callable[[Any], Any]:
        d0, (d1a, d1b), (d2a, d2b, d2c), (pool, d3) = _MODULES[s]

        def step(x: Any) -> Any:
            b0 = n.conv(x, depth(d0), 1, f"{s}/Branch_0/Conv2d_0a_1x1")
            b1 = n.conv(x, depth(d1a), 1, f"{s}/Branch_1/Conv2d_0a_1x1")
            b1 = n.conv(b1, depth(d1b), 3, f"{s}/Branch_1/Conv2d_0b_3x3")
            b2 = n.conv(x, depth(d2a), 1, f"{s}/Branch_2/Conv2d_0a_1x1")
            b2 = n.conv(b2, depth(d2b), 3, f"{s}/Branch_2/Conv2d_0b_3x3")
            b2 = n.conv(b2, depth(d2c), 3, f"{s}/Branch_2/Conv2d_0c_3x3")
            if pool == "avg":
                b3 = n.avg_pool(x, 3, f"{s}/Branch_3/AvgPool_0a_3x3")
            else:
                b3 = n.max_pool(x, 3, f"{s}/Branch_3/MaxPool_0a_3x3")
            b3 = n.conv(b3, depth(d3), 1, f"{s}/Branch_3/Conv2d_0b_1x1")
            return n.concat([b0, b1, b2, b3], s, endpoint=s)

        return step

    def reduction(s: str) -> Callable[[Any], Any]:
        (d0a, d0b), (d1a, d1b, d1c) = _REDUCTIONS[s]

        def step(x: Any) -> Any:
            b0 = n.conv(x, depth(d0a), 1, f"{s}/Branch_0/Conv2d_0a_1x1")
            b0 = n.conv(b0, depth(d0b), 3, f"{s}/Branch_0/Conv2d_1a_3x3", stride=2)
            b1 = n.conv(x, depth(d1a), 1, f"{s}/Branch_1/Conv2d_0a_1x1")
            b1 = n.conv(b1, depth(d1b), 3, f"{s}/Branch_1/Conv2d_0b_3x3")
            b1 = n.conv(b1, depth(d1c), 3, f"{s}/Branch_1/Conv2d_1a_3x3", stride=2)
            b2 = n.max_pool(x, 3, f"{s}/Branch_2/MaxPool_1a_3x3", stride=2)
            return n.concat([b0, b1, b2], s, endpoint=s)

        return step

    steps: list[tuple[str, Callable[[Any], Any]]] = [
        ("Conv2d_1a_7x7", conv_1a),
        (
            "MaxPool_2a_3x3",
            lambda x: n.max_pool(x, 3, "MaxPool_2a_3x3", stride=2, endpoint="MaxPool_2a_3x3"),
        ),
        (
            "Conv2d_2b_1x1",
            lambda x: n.conv(
                x,
                depth(64),
                1,
                "Conv2d_2b_1x1",
                endpoint="Conv2d_2b_1x1",
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.1),
            ),
        ),
        (
            "Conv2d_2c_3x3",
            lambda x: n.conv(x, depth(192), 3, "Conv2d_2c_3x3", endpoint="Conv2d_2c_3x3"),
        ),
        (
            "MaxPool_3a_3x3",
            lambda x: n.max_pool(x, 3, "MaxPool_3a_3x3", stride=2, endpoint="MaxPool_3a_3x3"),
        ),
    ]
    for s in INCEPTION_V2_ENDPOINTS[5:]:
        steps.append((s, reduction(s) if s in _REDUCTIONS else module(s)))
    return steps


@builder("inception_v2", dropout=0.2)
def inception_v2(
    args: BuildArgs,
    *,
    depth_multiplier: float = 1.0,
    min_depth: int = 16,
    use_separable_conv: bool = True,
    final_endpoint: str = "Mixed_5c",
    bn_decay: float = 0.9997,
    bn_epsilon: float = 0.001,
) -> keras.Model:
    """Inception V2 (BN-Inception, Ioffe & Szegedy 2015) as TF-Slim builds it.

    Args:
        include_top: Add slim's ``Logits``: average pool over the whole map (slim's 7x7 pool at
            224 px), dropout, and the 1x1 convolution ``Conv2d_1c_1x1``, squeezed.
        input_shape: ``(height, width, 3)``; default ``(224, 224, 3)``; ``None`` height/width
            allowed. At least 32.
        classes: Number of classes (1001 for slim checkpoints: index 0 is background).
        dropout: Dropout rate before the logits (slim's ``dropout_keep_prob=0.8``).
        depth_multiplier: Channel multiplier (> 0).
        min_depth: Minimum channel count when ``depth_multiplier < 1``.
        use_separable_conv: Separable first layer (slim default) or a plain conv-BN.
        final_endpoint: With ``include_top=False``, the last end point to build.
        weight_decay: slim-style L2 weight decay (slim used 4e-5).
        bn_decay: BatchNorm moving-average decay.
        bn_epsilon: BatchNorm epsilon.
    """
    check_number("depth_multiplier", depth_multiplier, gt=0)
    check_number("min_depth", min_depth, min=1)

    def depth(d: int) -> int:
        return max(int(d * depth_multiplier), int(min_depth))

    n = c.SlimNet(SCOPE, bn_decay=bn_decay, bn_epsilon=bn_epsilon, weight_decay=args.weight_decay)
    x, _ = run_steps(args, _steps(n, depth, use_separable_conv), args.inputs, final_endpoint)
    if not args.include_top:
        return backbone_model(args, x)

    x = c.global_pool(x, name="Logits_global_pool")
    x = c.dropout(x, args.dropout, "Logits_Dropout_1b")
    logits = n.conv_logits(
        x,
        args.classes,
        "Logits/Conv2d_1c_1x1",
        "Logits_SpatialSqueeze",
        kernel_initializer="glorot_uniform",
    )
    return classifier_model(args, logits, background="drop" if args.classes == 1000 else "keep")
