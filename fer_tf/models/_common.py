"""Shared builder plumbing: inputs, slim-scoped layer factories, pooling and weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from fer_tf.models.layers import (
    SlimActivation,
    SlimConcat,
    SlimConv2D,
    SlimDense,
    SlimFlatten,
    SlimGlobalPool,
    SlimPool2D,
    SlimSeparableConv2D,
)

# The weight-loading path lives in weights.py; the builders reach it as c.load_weights_arg.
from fer_tf.models.weights import check_weights, load_weights_arg  # noqa: F401

_POOLINGS = (None, "avg", "max")


def layer_name(scope: str) -> str:
    """Keras layer name for a slim scope (``/`` is not allowed in Keras 3 names)."""
    return scope.replace("/", "_")


def check_common_args(
    *,
    include_top: bool,
    pooling: str | None,
    classes: int | None,
    dropout: float,
    classifier_activation: str | None,
    allow_no_classes: bool = False,
    weights: Any = None,
) -> None:
    """Validate the ``keras.applications``-style arguments shared by all builders.

    Raises:
        ValueError: For an invalid value.
    """
    check_weights(weights)
    if not isinstance(include_top, bool):
        raise ValueError(
            f"The 'include_top' parameter must be a bool. Got {include_top!r} instead."
        )
    if pooling not in _POOLINGS:
        raise ValueError(
            f"The 'pooling' parameter must be one of {_POOLINGS}. Got {pooling!r} instead."
        )
    bad_classes = not isinstance(classes, int) or isinstance(classes, bool) or classes < 1
    if include_top and not (allow_no_classes and classes is None) and bad_classes:
        raise ValueError(
            f"The 'classes' parameter must be a positive int when include_top=True. "
            f"Got {classes!r} instead."
        )
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"The 'dropout' parameter must be in [0, 1). Got {dropout!r} instead.")
    if classifier_activation is not None:
        keras.activations.get(classifier_activation)


def make_input(
    input_shape: Sequence[int | None] | None,
    default: tuple[int, int, int],
    min_size: int,
    input_tensor: Any = None,
    model_name: str = "model",
) -> Any:
    """Create (or validate) the model input.

    Args:
        input_shape: ``(height, width, channels)``; ``None`` entries allowed for height/width.
        default: Shape used when ``input_shape`` is ``None``.
        min_size: Smallest accepted static height/width.
        input_tensor: Optional existing Keras tensor to build on.
        model_name: For messages.

    Returns:
        A Keras input tensor.

    Raises:
        ValueError: If the shape has the wrong rank or is too small.
    """
    if input_tensor is not None:
        shape = tuple(input_tensor.shape[1:])
    else:
        shape = tuple(default) if input_shape is None else tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(
            f"The 'input_shape' parameter must be (height, width, channels). Got {shape!r} instead."
        )
    for dim in shape[:2]:
        if dim is not None and int(dim) < min_size:
            raise ValueError(
                f"{model_name} needs inputs of at least {min_size}x{min_size}. "
                f"Got input_shape={shape!r}."
            )
    if shape[2] is None:
        raise ValueError("The number of input channels must be known.")
    if input_tensor is not None:
        return input_tensor
    return keras.Input(shape=shape, name="images")


class SlimNet:
    """Factory of slim-scoped layers for one network.

    Args:
        scope: Top-level slim scope (``InceptionV4``, ``vgg_16`` ...).
        bn_decay: BatchNorm decay of every conv-BN unit.
        bn_epsilon: BatchNorm epsilon.
        weight_decay: slim-style L2 weight decay on every kernel.
        kernel_initializer: Initializer for convolution kernels.
    """

    def __init__(
        self,
        scope: str,
        *,
        bn_decay: float = 0.9997,
        bn_epsilon: float = 0.001,
        weight_decay: float = 0.0,
        kernel_initializer: Any = "he_normal",
    ) -> None:
        self.scope = scope
        self.bn_decay = bn_decay
        self.bn_epsilon = bn_epsilon
        self.weight_decay = weight_decay
        self.kernel_initializer = kernel_initializer

    def full(self, scope: str) -> str:
        return f"{self.scope}/{scope}" if self.scope else scope

    def conv(
        self,
        x: Any,
        filters: int,
        kernel_size: int | Sequence[int],
        scope: str,
        *,
        stride: int = 1,
        padding: str = "SAME",
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> Any:
        kwargs.setdefault("bn_decay", self.bn_decay)
        kwargs.setdefault("bn_epsilon", self.bn_epsilon)
        kwargs.setdefault("kernel_initializer", self.kernel_initializer)
        return SlimConv2D(
            filters,
            kernel_size,
            stride,
            padding,
            weight_decay=self.weight_decay,
            slim_scope=self.full(scope),
            endpoint=endpoint,
            name=layer_name(scope),
            **kwargs,
        )(x)

    def separable_conv(
        self,
        x: Any,
        filters: int,
        kernel_size: int,
        depth_multiplier: int,
        scope: str,
        *,
        stride: int = 1,
        padding: str = "SAME",
        endpoint: str | None = None,
    ) -> Any:
        return SlimSeparableConv2D(
            filters,
            kernel_size,
            depth_multiplier,
            stride,
            padding,
            weight_decay=self.weight_decay,
            slim_scope=self.full(scope),
            endpoint=endpoint,
            name=layer_name(scope),
        )(x)

    def dense(
        self,
        x: Any,
        units: int,
        scope: str,
        *,
        endpoint: str | None = None,
        is_logits: bool = False,
        slim_scope: str | None = None,
        **kwargs: Any,
    ) -> Any:
        kwargs.setdefault("bn_decay", self.bn_decay)
        kwargs.setdefault("bn_epsilon", self.bn_epsilon)
        return SlimDense(
            units,
            weight_decay=self.weight_decay,
            slim_scope=slim_scope or self.full(scope),
            endpoint=endpoint,
            is_logits=is_logits,
            name=layer_name(scope),
            **kwargs,
        )(x)

    def max_pool(
        self,
        x: Any,
        size: int,
        scope: str,
        *,
        stride: int = 1,
        padding: str = "SAME",
        endpoint: str | None = None,
    ) -> Any:
        return SlimPool2D("max", size, stride, padding, endpoint=endpoint, name=layer_name(scope))(
            x
        )

    def avg_pool(
        self,
        x: Any,
        size: int | Sequence[int],
        scope: str,
        *,
        stride: int = 1,
        padding: str = "SAME",
        endpoint: str | None = None,
    ) -> Any:
        return SlimPool2D("avg", size, stride, padding, endpoint=endpoint, name=layer_name(scope))(
            x
        )

    def concat(self, xs: list[Any], scope: str, *, endpoint: str | None = None) -> Any:
        return SlimConcat(endpoint=endpoint, name=layer_name(scope))(xs)


def pool_features(x: Any, pooling: str | None, name: str = "pool") -> Any:
    """Apply ``keras.applications``' ``pooling`` option to a 4-D feature map."""
    if pooling is None:
        return x
    return SlimGlobalPool(pooling, keepdims=False, name=name)(x)


def global_pool(x: Any, endpoint: str | None = "global_pool", name: str = "global_pool") -> Any:
    """slim's ``global_pool`` end point: spatial mean with kept dims."""
    return SlimGlobalPool("avg", keepdims=True, endpoint=endpoint, name=name)(x)


def flatten(x: Any, name: str, endpoint: str | None = None) -> Any:
    return SlimFlatten(endpoint=endpoint, name=name)(x)


def activation(
    x: Any,
    classifier_activation: str | None,
    name: str = "Predictions",
    endpoint: str | None = "Predictions",
) -> Any:
    """Apply the classifier activation (float32), or return the logits unchanged."""
    if classifier_activation is None:
        return x
    return SlimActivation(classifier_activation, endpoint=endpoint, name=name)(x)


def dropout(x: Any, rate: float, name: str) -> Any:
    return keras.layers.Dropout(rate, name=name)(x) if rate > 0 else x
