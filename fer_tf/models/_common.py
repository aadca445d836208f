"""Shared builder plumbing: inputs, slim-scoped layer factories, pooling and weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from fer_tf.checks import invalid
from fer_tf.models.catalog import ModelSpec
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


def _check_shape(input_shape: Any) -> tuple[int | None, ...]:
    accepted = "(height, width, channels): positive ints, height and width may be None"
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise invalid("input_shape", accepted, input_shape)
    shape = tuple(input_shape)
    ok = len(shape) == 3 and all(
        d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0)
        for d in shape
    )
    if not ok:
        raise invalid("input_shape", accepted, input_shape)
    return tuple(None if d is None else int(d) for d in shape)


def make_input(
    input_shape: Sequence[int | None] | None, spec: ModelSpec, input_tensor: Any = None
) -> Any:
    """Create (or validate) the model input, with the defaults of the model's catalog entry.

    Args:
        input_shape: ``(height, width, channels)``; ``None`` entries allowed for height/width;
            ``None`` for the model's default.
        spec: The model's catalog entry (default shape, smallest size).
        input_tensor: Optional existing Keras tensor to build on.

    Returns:
        A Keras input tensor.

    Raises:
        ValueError: If the shape is not three positive sizes, is too small, or has no channels.
    """
    if input_tensor is not None:
        shape = tuple(input_tensor.shape[1:])
        if len(shape) != 3:
            raise invalid("input_tensor", "a Keras tensor of shape (batch, h, w, c)", input_tensor)
    else:
        shape = _check_shape(spec.input_shape if input_shape is None else input_shape)
    for dim in shape[:2]:
        if dim is not None and int(dim) < spec.min_input_size:
            raise ValueError(
                f"{spec.name} needs inputs of at least {spec.min_input_size}x"
                f"{spec.min_input_size}. Got input_shape={shape!r}."
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

    def _scoped(self, cls: type, args: tuple[Any, ...], scope: str, **kwargs: Any) -> Any:
        """A slim layer of this network: its weight decay, full slim scope and Keras name."""
        kwargs.setdefault("slim_scope", self.full(scope))
        return cls(*args, weight_decay=self.weight_decay, name=layer_name(scope), **kwargs)

    def conv(
        self,
        x: Any,
        filters: int,
        kernel_size: int | Sequence[int],
        scope: str,
        *,
        stride: int = 1,
        padding: str = "SAME",
        **kwargs: Any,
    ) -> Any:
        """A :class:`SlimConv2D` (conv-BN-ReLU unless told otherwise) applied to ``x``."""
        kwargs.setdefault("bn_decay", self.bn_decay)
        kwargs.setdefault("bn_epsilon", self.bn_epsilon)
        kwargs.setdefault("kernel_initializer", self.kernel_initializer)
        return self._scoped(SlimConv2D, (filters, kernel_size, stride, padding), scope, **kwargs)(x)

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
        """A :class:`SlimSeparableConv2D` applied to ``x``."""
        args = (filters, kernel_size, depth_multiplier, stride, padding)
        return self._scoped(SlimSeparableConv2D, args, scope, endpoint=endpoint)(x)

    def dense(self, x: Any, units: int, scope: str, **kwargs: Any) -> Any:
        """A :class:`SlimDense` applied to ``x`` (``slim_scope`` may replace the full scope)."""
        kwargs.setdefault("bn_decay", self.bn_decay)
        kwargs.setdefault("bn_epsilon", self.bn_epsilon)
        if kwargs.get("slim_scope") is None:
            kwargs.pop("slim_scope", None)
        return self._scoped(SlimDense, (units,), scope, **kwargs)(x)

    def conv_logits(self, x: Any, classes: int, scope: str, squeeze: str, **kwargs: Any) -> Any:
        """slim's convolutional logits: a 1x1 convolution (bias, no BatchNorm, no activation)
        and the spatial squeeze (layer ``squeeze``, end point ``Logits``)."""
        x = self.conv(
            x, classes, 1, scope, use_batch_norm=False, activation=None, is_logits=True, **kwargs
        )
        return flatten(x, squeeze, endpoint="Logits")

    def pool(self, kind: str, x: Any, size: int | Sequence[int], scope: str, **kwargs: Any) -> Any:
        """A ``"max"`` or ``"avg"`` :class:`SlimPool2D` (``stride`` 1 and ``padding`` ``SAME``
        unless given; ``endpoint``) applied to ``x``."""
        stride, padding = kwargs.pop("stride", 1), kwargs.pop("padding", "SAME")
        return SlimPool2D(kind, size, stride, padding, name=layer_name(scope), **kwargs)(x)

    def max_pool(self, x: Any, size: int, scope: str, **kwargs: Any) -> Any:
        """``pool("max", ...)``."""
        return self.pool("max", x, size, scope, **kwargs)

    def avg_pool(self, x: Any, size: int | Sequence[int], scope: str, **kwargs: Any) -> Any:
        """``pool("avg", ...)``."""
        return self.pool("avg", x, size, scope, **kwargs)

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
