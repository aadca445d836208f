"""VGG16 in TF-Slim's layout (``vgg_16``), and Athanasiadis 2022's VGG16 with a reduced FC layer.

Slim builds the fully connected layers as convolutions: ``fc6`` a 7x7 convolution (``VALID``),
``fc7`` and ``fc8`` 1x1 convolutions, then ``spatial_squeeze``. All convolutions have biases and
ReLU, no BatchNorm; max pools are 2x2 with stride 2. The published ``vgg_16_2016_08_28``
checkpoint (1000 classes, no background) loads one-to-one, and Keras-applications' VGG16 ``.h5``
weights load with :func:`fer_tf.models.slim_checkpoint.load_keras_vgg16_h5`.
"""

from __future__ import annotations

from typing import Any

import keras

from fer_tf.checks import check_choice, check_number
from fer_tf.models import _common as c
from fer_tf.models._builder import BuildArgs, backbone_model, builder, classifier_model

__all__ = ["vgg16", "vgg16_reduced_fc", "VGG16_ENDPOINTS"]

SCOPE = "vgg_16"
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))

VGG16_ENDPOINTS: tuple[str, ...] = tuple(
    name
    for b, reps, _ in _BLOCKS
    for name in (*(f"vgg_16/conv{b}/conv{b}_{i}" for i in range(1, reps + 1)), f"vgg_16/pool{b}")
) + ("vgg_16/fc6", "vgg_16/fc7", "vgg_16/fc8")


def _build(args: BuildArgs, fc_conv_padding: str, fc7_units: int) -> keras.Model:
    """The one VGG16 implementation behind :func:`vgg16` and :func:`vgg16_reduced_fc`."""
    check_choice("fc_conv_padding", fc_conv_padding, ("VALID", "SAME"))
    check_number("fc7_units", fc7_units, min=1, integer=True)
    n = c.SlimNet(SCOPE, weight_decay=args.weight_decay, kernel_initializer="glorot_uniform")
    x = args.inputs
    for b, reps, filters in _BLOCKS:
        for i in range(1, reps + 1):
            scope = f"conv{b}/conv{b}_{i}"
            x = n.conv(x, filters, 3, scope, use_batch_norm=False, endpoint=f"vgg_16/{scope}")
        x = n.max_pool(x, 2, f"pool{b}", stride=2, padding="VALID", endpoint=f"vgg_16/pool{b}")
    if not args.include_top:
        return backbone_model(args, x)

    spatial = tuple(x.shape[1:3])
    if fc_conv_padding == "VALID" and any(d is not None and d < 7 for d in spatial):
        raise ValueError(
            f"{args.name} with include_top=True and fc_conv_padding='VALID' needs pool5 of at "
            f"least 7x7 (input >= 224). Got pool5 {spatial}; use fc_conv_padding='SAME' or "
            "include_top=False."
        )
    x = n.conv(
        x, 4096, 7, "fc6", padding=fc_conv_padding, use_batch_norm=False, endpoint="vgg_16/fc6"
    )
    x = c.dropout(x, args.dropout, "dropout6")
    x = n.conv(x, fc7_units, 1, "fc7", use_batch_norm=False, endpoint="vgg_16/fc7")
    if not (x.shape[1] == 1 and x.shape[2] == 1):
        # slim's global_pool=True: average what is left of the map (inputs larger than 224).
        x = c.global_pool(x, endpoint=None, name="global_pool")
    x = c.dropout(x, args.dropout, "dropout7")
    logits = n.conv_logits(x, args.classes, "fc8", "fc8_squeezed", endpoint="vgg_16/fc8")
    return classifier_model(args, logits)


# The docstring both variants share; each adds its summary.
_ARGS = """

    Args:
        include_top: Add ``fc6`` (7x7 conv), ``fc7``, ``fc8`` (1x1 convs) and squeeze.
        weights: ``None``, ``"imagenet"`` (Keras's VGG16 file, MD5-checked; the notop file
            with ``include_top=False``), ``"imagenet-slim"`` (TF-Slim's checkpoint), or a local
            path (TF-Slim checkpoint prefix, Keras-applications ``.h5``, ``.weights.h5`` or
            ``.keras``).
        input_shape: ``(height, width, channels)``; default ``(224, 224, 3)``. With
            ``include_top=True`` and ``VALID`` ``fc6`` the input must be at least 224; larger
            inputs are averaged after ``fc7`` (slim's ``global_pool``).
        pooling: With ``include_top=False``: ``None`` (``pool5`` map), ``"avg"`` or ``"max"``.
        dropout: Dropout rate after ``fc6`` and ``fc7`` (slim's ``dropout_keep_prob=0.5``).
        fc_conv_padding: Padding of ``fc6``: ``"VALID"`` (slim default) or ``"SAME"``.
        fc7_units: Width of ``fc7`` (4096 in VGG16; Athanasiadis 2022 narrowed it, default 1024 here).
        weight_decay: slim-style L2 weight decay (slim used 5e-4).
    """


def _variant(model: str, fc7_default: int, summary: str) -> Any:
    """Register a VGG16 variant: :func:`_build` with its own ``fc7_units`` default."""

    def impl(
        args: BuildArgs,
        *,
        fc_conv_padding: str = "VALID",
        fc7_units: int = fc7_default,
    ) -> keras.Model:
        return _build(args, fc_conv_padding, fc7_units)

    impl.__name__ = impl.__qualname__ = model
    impl.__doc__ = summary + _ARGS
    return builder(model, dropout=0.5)(impl)


vgg16 = _variant(
    "vgg16",
    4096,
    "VGG16 (Simonyan & Zisserman 2014) as TF-Slim's ``vgg_16`` (1000 classes, no background).",
)
vgg16_reduced_fc = _variant(
    "vgg16_reduced_fc",
    1024,
    """Athanasiadis 2022's second implementation: VGG16 whose second FC layer is narrower.

    The seed reduces the width of the second fully connected layer to cut parameters and
    overfitting, and fine-tunes the last three FC layers for six emotions; it does not state the
    width, so ``fc7_units`` is a parameter (default 1024, our choice). Variable names are slim's,
    so conv1..fc6 load from the slim VGG16 checkpoint (exclude ``vgg_16/fc7`` and
    ``vgg_16/fc8``).""",
)
