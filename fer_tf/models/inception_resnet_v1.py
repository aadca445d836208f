"""FaceNet's Inception-ResNet-V1 (davidsandberg/facenet ``models/inception_resnet_v1.py``).

160x160 input; 5 x block35 (scale 0.17), reduction A (192, 192, 256, 384), 10 x block17 (scale
0.10), reduction B, 5 x block8 (scale 0.20) and a final block8 without activation; average pool,
dropout and the ``Bottleneck`` embedding layer (fully connected + BatchNorm, 128 or 512 units).
Conv-BN units use BatchNorm decay 0.995, epsilon 0.001, no gamma; the residual ``Conv2d_1x1``
projections have biases and no BatchNorm. Variable names are FaceNet's (``InceptionResnetV1/
Repeat/block35_1/Branch_0/Conv2d_1x1/weights`` ...), so FaceNet checkpoints load with
:func:`fer_tf.models.slim_checkpoint.load_slim_checkpoint`. The optional classifier is FaceNet's
``Logits`` layer (outside the ``InceptionResnetV1`` scope, as in ``train_softmax.py``).
"""

from __future__ import annotations

from typing import Any

import keras

from fer_tf.checks import check_number
from fer_tf.models import _common as c
from fer_tf.models._builder import BuildArgs, backbone_model, builder, classifier_model
from fer_tf.models.layers import SlimResidual

__all__ = ["inception_resnet_v1", "INCEPTION_RESNET_V1_ENDPOINTS"]

SCOPE = "InceptionResnetV1"

# The stem, then each repeat's blocks; the last block of a repeat carries the stage's name
# (block35_5 is Mixed_5a, block17_10 Mixed_6b, block8_5 Mixed_8a; Mixed_8b is Block8).
INCEPTION_RESNET_V1_ENDPOINTS: tuple[str, ...] = (
    *["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_3a_3x3", "Conv2d_3b_1x1"],
    *["Conv2d_4a_3x3", "Conv2d_4b_3x3"],
    *(f"block35_{i}" for i in range(1, 5)),
    *("Mixed_5a", "Mixed_6a"),
    *(f"block17_{i}" for i in range(1, 10)),
    *("Mixed_6b", "Mixed_7a"),
    *(f"block8_{i}" for i in range(1, 5)),
    *("Mixed_8a", "Mixed_8b"),
)


def _residual(
    n: c.SlimNet,
    net: Any,
    mixed: Any,
    s: str,
    scale: float,
    activation: str | None,
    endpoint: str,
) -> Any:
    up = n.conv(
        mixed,
        int(net.shape[-1]),
        1,
        f"{s}/Conv2d_1x1",
        use_batch_norm=False,
        activation=None,
        kernel_initializer="glorot_uniform",
    )
    return SlimResidual(scale, activation, endpoint=endpoint, name=c.layer_name(s))([net, up])


def _block35(n: c.SlimNet, x: Any, s: str, scale: float, endpoint: str) -> Any:
    b0 = n.conv(x, 32, 1, f"{s}/Branch_0/Conv2d_1x1")
    b1 = n.conv(x, 32, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1 = n.conv(b1, 32, 3, f"{s}/Branch_1/Conv2d_0b_3x3")
    b2 = n.conv(x, 32, 1, f"{s}/Branch_2/Conv2d_0a_1x1")
    b2 = n.conv(b2, 32, 3, f"{s}/Branch_2/Conv2d_0b_3x3")
    b2 = n.conv(b2, 32, 3, f"{s}/Branch_2/Conv2d_0c_3x3")
    mixed = n.concat([b0, b1, b2], f"{s}/concat")
    return _residual(n, x, mixed, s, scale, "relu", endpoint)


def _block17(n: c.SlimNet, x: Any, s: str, scale: float, endpoint: str) -> Any:
    b0 = n.conv(x, 128, 1, f"{s}/Branch_0/Conv2d_1x1")
    b1 = n.conv(x, 128, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1 = n.conv(b1, 128, (1, 7), f"{s}/Branch_1/Conv2d_0b_1x7")
    b1 = n.conv(b1, 128, (7, 1), f"{s}/Branch_1/Conv2d_0c_7x1")
    mixed = n.concat([b0, b1], f"{s}/concat")
    return _residual(n, x, mixed, s, scale, "relu", endpoint)


def _block8(
    n: c.SlimNet, x: Any, s: str, scale: float, endpoint: str, activation: str | None = "relu"
) -> Any:
    b0 = n.conv(x, 192, 1, f"{s}/Branch_0/Conv2d_1x1")
    b1 = n.conv(x, 192, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1 = n.conv(b1, 192, (1, 3), f"{s}/Branch_1/Conv2d_0b_1x3")
    b1 = n.conv(b1, 192, (3, 1), f"{s}/Branch_1/Conv2d_0c_3x1")
    mixed = n.concat([b0, b1], f"{s}/concat")
    return _residual(n, x, mixed, s, scale, activation, endpoint)


@builder("inception_resnet_v1", dropout=0.2)
def inception_resnet_v1(
    args: BuildArgs,
    *,
    bottleneck_size: int = 128,
    bn_decay: float = 0.995,
    bn_epsilon: float = 0.001,
) -> keras.Model:
    """FaceNet's Inception-ResNet-V1.

    Args:
        include_top: Add FaceNet's head: average pool, dropout, ``Bottleneck`` (fully connected
            + BatchNorm, the embedding before L2 normalisation) and, when ``classes`` is given,
            the ``Logits`` classifier.
        input_shape: ``(height, width, 3)``; default ``(160, 160, 3)``; at least 75.
        pooling: With ``include_top=False``: ``None`` (``Mixed_8b`` map), ``"avg"`` or ``"max"``.
        classes: ``None`` to output the bottleneck embedding, or a number of classes.
        dropout: Dropout rate before the bottleneck (FaceNet's ``keep_probability`` 0.8).
        bottleneck_size: Embedding size (128 in the 2017 models, 512 in the 2018 ones).
        weight_decay: slim-style L2 weight decay.
        bn_decay: BatchNorm moving-average decay (FaceNet: 0.995).
        bn_epsilon: BatchNorm epsilon.
    """
    check_number("bottleneck_size", bottleneck_size, min=1, integer=True)
    n = c.SlimNet(
        SCOPE,
        bn_decay=bn_decay,
        bn_epsilon=bn_epsilon,
        weight_decay=args.weight_decay,
        kernel_initializer="glorot_uniform",
    )
    x = n.conv(
        args.inputs, 32, 3, "Conv2d_1a_3x3", stride=2, padding="VALID", endpoint="Conv2d_1a_3x3"
    )
    x = n.conv(x, 32, 3, "Conv2d_2a_3x3", padding="VALID", endpoint="Conv2d_2a_3x3")
    x = n.conv(x, 64, 3, "Conv2d_2b_3x3", endpoint="Conv2d_2b_3x3")
    x = n.max_pool(x, 3, "MaxPool_3a_3x3", stride=2, padding="VALID", endpoint="MaxPool_3a_3x3")
    x = n.conv(x, 80, 1, "Conv2d_3b_1x1", padding="VALID", endpoint="Conv2d_3b_1x1")
    x = n.conv(x, 192, 3, "Conv2d_4a_3x3", padding="VALID", endpoint="Conv2d_4a_3x3")
    x = n.conv(x, 256, 3, "Conv2d_4b_3x3", stride=2, padding="VALID", endpoint="Conv2d_4b_3x3")
    # The last block of each repeat carries FaceNet's stage end point name.
    for i in range(1, 6):
        x = _block35(n, x, f"Repeat/block35_{i}", 0.17, "Mixed_5a" if i == 5 else f"block35_{i}")
    # Reduction A (k, l, m, n) = (192, 192, 256, 384).
    s = "Mixed_6a"
    b0 = n.conv(x, 384, 3, f"{s}/Branch_0/Conv2d_1a_3x3", stride=2, padding="VALID")
    b1 = n.conv(x, 192, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1 = n.conv(b1, 192, 3, f"{s}/Branch_1/Conv2d_0b_3x3")
    b1 = n.conv(b1, 256, 3, f"{s}/Branch_1/Conv2d_1a_3x3", stride=2, padding="VALID")
    b2 = n.max_pool(x, 3, f"{s}/Branch_2/MaxPool_1a_3x3", stride=2, padding="VALID")
    x = n.concat([b0, b1, b2], s, endpoint=s)
    for i in range(1, 11):
        x = _block17(n, x, f"Repeat_1/block17_{i}", 0.10, "Mixed_6b" if i == 10 else f"block17_{i}")
    s = "Mixed_7a"
    b0 = n.conv(x, 256, 1, f"{s}/Branch_0/Conv2d_0a_1x1")
    b0 = n.conv(b0, 384, 3, f"{s}/Branch_0/Conv2d_1a_3x3", stride=2, padding="VALID")
    b1 = n.conv(x, 256, 1, f"{s}/Branch_1/Conv2d_0a_1x1")
    b1 = n.conv(b1, 256, 3, f"{s}/Branch_1/Conv2d_1a_3x3", stride=2, padding="VALID")
    b2 = n.conv(x, 256, 1, f"{s}/Branch_2/Conv2d_0a_1x1")
    b2 = n.conv(b2, 256, 3, f"{s}/Branch_2/Conv2d_0b_3x3")
    b2 = n.conv(b2, 256, 3, f"{s}/Branch_2/Conv2d_1a_3x3", stride=2, padding="VALID")
    b3 = n.max_pool(x, 3, f"{s}/Branch_3/MaxPool_1a_3x3", stride=2, padding="VALID")
    x = n.concat([b0, b1, b2, b3], s, endpoint=s)
    for i in range(1, 6):
        x = _block8(n, x, f"Repeat_2/block8_{i}", 0.20, "Mixed_8a" if i == 5 else f"block8_{i}")
    x = _block8(n, x, "Block8", 1.0, "Mixed_8b", activation=None)

    if not args.include_top:
        return backbone_model(args, x)

    x = c.global_pool(x, endpoint="AvgPool", name="Logits_AvgPool_1a_8x8")
    x = c.flatten(x, "Logits_Flatten", endpoint="PreLogitsFlatten")
    x = c.dropout(x, args.dropout, "Logits_Dropout")
    x = n.dense(
        x,
        bottleneck_size,
        "Bottleneck",
        endpoint="Bottleneck",
        use_batch_norm=True,
        kernel_initializer="glorot_uniform",
    )
    if args.classes is None:
        # FaceNet's embedding: no classifier, no activation; a checkpoint's Logits are skipped.
        model = keras.Model(args.inputs, x, name=args.name)
        c.load_weights_arg(model, args.weights, exclude_scopes=("Logits",))
        return model
    x = n.dense(x, args.classes, "Logits", slim_scope="Logits", endpoint="Logits", is_logits=True)
    return classifier_model(args, x)
