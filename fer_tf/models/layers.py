"""Layers with TF-Slim semantics and slim variable names kept as data.

Every layer here that owns weights carries a ``slim_scope`` (for example
``"InceptionV4/Mixed_5b/Branch_0/Conv2d_0a_1x1"``) and reports its weights under the names a
TF-Slim checkpoint uses (``<scope>/weights``, ``<scope>/BatchNorm/beta`` ...). Keras 3 layer names
may not contain ``/``, so the layer *name* is the scope with ``/`` replaced by ``_`` and the scope
itself travels in the layer config.

Any layer may also carry an ``endpoint`` name: its output is then one of the model's end points
(``Mixed_6h``, ``vgg_16/pool5`` ...), see :func:`fer_tf.models.get_endpoints`.

The conv-BN unit :class:`SlimConv2D` follows ``slim.conv2d`` with ``normalizer_fn=slim.batch_norm``:
convolution without bias, then batch normalisation *without gamma* (``scale=False``), epsilon
0.001, moving averages with a configurable decay, then ReLU. When the layer is frozen
(``trainable=False``) or called with ``training=False`` the moving statistics are used (inference
mode) and never updated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from fer_tf.checks import check_choice, check_number

__all__ = [
    "SlimLayer",
    "SlimConv2D",
    "SlimSeparableConv2D",
    "SlimDense",
    "SlimPool2D",
    "SlimGlobalPool",
    "SlimConcat",
    "SlimFlatten",
    "SlimResidual",
    "SlimActivation",
    "CUSTOM_OBJECTS",
]

_PADDINGS = ("SAME", "VALID")


# SlimSeparableConv2D: up to this many input channels, depthwise = dense block-diagonal conv.
_DENSE_DEPTHWISE_MAX_CHANNELS = 4


def _pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"The '{what}' parameter must be an int or a pair of ints. Got {value!r}.")
    return value  # type: ignore[return-value]


def _padding(value: str) -> str:
    return check_choice("padding", value.upper() if isinstance(value, str) else value, _PADDINGS)


def _l2(weight_decay: float) -> keras.regularizers.Regularizer | None:
    # slim.l2_regularizer(wd) adds wd * sum(w**2) / 2; keras L2(l) adds l * sum(w**2).
    check_number("weight_decay", weight_decay, min=0)
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay > 0 else None


class SlimLayer(keras.layers.Layer):
    """Base class: a layer that knows its slim scope and, optionally, its end point name.

    Args:
        slim_scope: Full slim variable scope of the layer (``None`` for weightless layers).
        endpoint: End point name of the layer's output, or ``None``.
        is_logits: Whether the layer produces class logits (the 1001-class background row of
            slim checkpoints is handled for these layers only).
        **kwargs: Passed to :class:`keras.layers.Layer`.
    """

    def __init__(
        self,
        *,
        slim_scope: str | None = None,
        endpoint: str | None = None,
        is_logits: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.slim_scope = slim_scope
        self.endpoint = endpoint
        self.is_logits = bool(is_logits)

    def slim_variables(self) -> dict[str, keras.Variable]:
        """Return ``{slim variable name: keras variable}`` for this layer's weights.

        Returns:
            An insertion-ordered dict; empty for weightless layers or layers without a scope.
        """
        if not self.slim_scope:
            return {}
        return {f"{self.slim_scope}/{leaf}": var for leaf, var in self._slim_leaves()}

    def _slim_leaves(self) -> list[tuple[str, keras.Variable]]:
        return []

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {"slim_scope": self.slim_scope, "endpoint": self.endpoint, "is_logits": self.is_logits}
        )
        return config


def _init_kernel_options(
    layer: Any,
    use_batch_norm: bool,
    activation: str | None,
    bn_decay: float,
    bn_epsilon: float,
    kernel_initializer: Any,
    weight_decay: float,
) -> None:
    """The options :class:`SlimConv2D` and :class:`SlimDense` share, checked and stored."""
    layer.use_batch_norm = bool(use_batch_norm)
    layer.activation_name = activation
    layer.activation = None if activation is None else keras.activations.get(activation)
    check_number("bn_decay", bn_decay, min=0.0, lt=1.0)
    layer.bn_decay = float(bn_decay)
    layer.bn_epsilon = float(bn_epsilon)
    layer.kernel_initializer = keras.initializers.get(kernel_initializer)
    layer.weight_decay = float(weight_decay)
    layer._regularizer = _l2(layer.weight_decay)


def _add_kernel_weights(layer: Any, kernel_shape: tuple[int, ...], use_bias: bool) -> None:
    """Kernel (L2-regularised), then the bias, then slim's BatchNorm (no gamma), as slim orders
    them; the output size is the kernel's last dimension."""
    units = kernel_shape[-1]
    layer.kernel = layer.add_weight(
        name="kernel",
        shape=kernel_shape,
        initializer=layer.kernel_initializer,
        regularizer=layer._regularizer,
    )
    layer.bias = None
    if use_bias:
        layer.bias = layer.add_weight(name="bias", shape=(units,), initializer="zeros")
    if layer.use_batch_norm:
        layer.beta = layer.add_weight(name="beta", shape=(units,), initializer="zeros")
        layer.moving_mean = layer.add_weight(
            name="moving_mean", shape=(units,), initializer="zeros", trainable=False
        )
        layer.moving_variance = layer.add_weight(
            name="moving_variance", shape=(units,), initializer="ones", trainable=False
        )


def _kernel_config(layer: Any) -> dict[str, Any]:
    """The config entries of the options :func:`_init_kernel_options` stored."""
    return {
        "use_batch_norm": layer.use_batch_norm,
        "activation": layer.activation_name,
        "bn_decay": layer.bn_decay,
        "bn_epsilon": layer.bn_epsilon,
        "kernel_initializer": keras.initializers.serialize(layer.kernel_initializer),
        "weight_decay": layer.weight_decay,
    }


def _kernel_leaves(layer: Any) -> list[tuple[str, keras.Variable]]:
    """slim's names of the weights :func:`_add_kernel_weights` made."""
    leaves = [("weights", layer.kernel)]
    if layer.bias is not None:
        leaves.append(("biases", layer.bias))
    if layer.use_batch_norm:
        leaves += [
            ("BatchNorm/beta", layer.beta),
            ("BatchNorm/moving_mean", layer.moving_mean),
            ("BatchNorm/moving_variance", layer.moving_variance),
        ]
    return leaves


@keras.saving.register_keras_serializable(package="fer_tf")
class SlimConv2D(SlimLayer):
    """``slim.conv2d``: convolution, optional slim BatchNorm (no gamma), optional bias, activation.

    Args:
        filters: Number of output channels.
        kernel_size: Kernel height and width (int or pair).
        strides: Stride (int or pair).
        padding: ``"SAME"`` or ``"VALID"`` (TensorFlow semantics).
        use_batch_norm: Apply slim BatchNorm (beta, moving mean/variance; no gamma).
        use_bias: Add a bias. Defaults to ``not use_batch_norm`` (slim drops the bias when a
            normaliser is used).
        activation: Activation name or ``None``.
        bn_decay: Moving-average decay of the BatchNorm statistics.
        bn_epsilon: BatchNorm epsilon.
        kernel_initializer: Keras initializer for the kernel.
        weight_decay: slim-style L2 weight decay on the kernel (``wd * sum(w**2) / 2``).
        **kwargs: See :class:`SlimLayer`.

    Raises:
        ValueError: For a bad padding, kernel size, stride or negative weight decay.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "SAME",
        *,
        use_batch_norm: bool = True,
        use_bias: bool | None = None,
        activation: str | None = "relu",
        bn_decay: float = 0.9997,
        bn_epsilon: float = 0.001,
        kernel_initializer: Any = "he_normal",
        weight_decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise ValueError(f"The 'filters' parameter must be >= 1. Got {filters!r} instead.")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = _padding(padding)
        _init_kernel_options(
            self, use_batch_norm, activation, bn_decay, bn_epsilon, kernel_initializer, weight_decay
        )
        self.use_bias = (not self.use_batch_norm) if use_bias is None else bool(use_bias)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        kh, kw = self.kernel_size
        _add_kernel_weights(self, (kh, kw, int(input_shape[-1]), self.filters), self.use_bias)

    def _slim_leaves(self) -> list[tuple[str, keras.Variable]]:
        return _kernel_leaves(self)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        kernel = tf.cast(self.kernel, self.compute_dtype)
        x = tf.nn.conv2d(inputs, kernel, strides=(1, *self.strides, 1), padding=self.padding)
        if self.bias is not None:
            x = tf.nn.bias_add(x, tf.cast(self.bias, self.compute_dtype))
        if self.use_batch_norm:
            x = self._batch_norm(x, training)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def _batch_norm(self, x: tf.Tensor, training: bool | None) -> tf.Tensor:
        beta = tf.cast(self.beta, tf.float32)
        if training and self.trainable:
            mean, variance = tf.nn.moments(tf.cast(x, tf.float32), axes=[0, 1, 2])
            # Moving variance uses the unbiased estimate, like TF's fused batch norm (slim).
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
            unbiased = variance * count / tf.maximum(count - 1.0, 1.0)
            decay = self.bn_decay
            self.moving_mean.assign(self.moving_mean * decay + mean * (1.0 - decay))
            self.moving_variance.assign(self.moving_variance * decay + unbiased * (1.0 - decay))
        else:
            mean = tf.cast(self.moving_mean, tf.float32)
            variance = tf.cast(self.moving_variance, tf.float32)
        inv = tf.math.rsqrt(variance + self.bn_epsilon)
        offset = beta - mean * inv
        return x * tf.cast(inv, x.dtype) + tf.cast(offset, x.dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": list(self.kernel_size),
                "strides": list(self.strides),
                "padding": self.padding,
                "use_bias": self.use_bias,
                **_kernel_config(self),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="fer_tf")
class SlimSeparableConv2D(SlimLayer):
    """``slim.separable_conv2d`` with biases and no normaliser (Inception V2's first layer).

    Slim variables: ``depthwise_weights`` ``[kh, kw, in, multiplier]``, ``pointwise_weights``
    ``[1, 1, in * multiplier, filters]`` and ``biases``.

    Args:
        filters: Output channels of the pointwise convolution.
        kernel_size: Depthwise kernel size.
        depth_multiplier: Depthwise channel multiplier.
        strides: Stride of the depthwise convolution.
        padding: ``"SAME"`` or ``"VALID"``.
        activation: Activation name or ``None``.
        weight_decay: slim-style L2 weight decay on both kernels.
        **kwargs: See :class:`SlimLayer`.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        depth_multiplier: int = 1,
        strides: int | Sequence[int] = 1,
        padding: str = "SAME",
        *,
        activation: str | None = "relu",
        weight_decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.depth_multiplier = int(depth_multiplier)
        self.strides = _pair(strides, "strides")
        if self.strides[0] != self.strides[1]:
            raise ValueError(f"Separable convolutions need equal strides. Got {self.strides}.")
        self.padding = _padding(padding)
        self.activation_name = activation
        self.activation = None if activation is None else keras.activations.get(activation)
        self.weight_decay = float(weight_decay)
        self._regularizer = _l2(self.weight_decay)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        in_channels = int(input_shape[-1])
        kh, kw = self.kernel_size
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel",
            shape=(kh, kw, in_channels, self.depth_multiplier),
            initializer="he_normal",
            regularizer=self._regularizer,
        )
        self.pointwise_kernel = self.add_weight(
            name="pointwise_kernel",
            shape=(1, 1, in_channels * self.depth_multiplier, self.filters),
            initializer="he_normal",
            regularizer=self._regularizer,
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def _slim_leaves(self) -> list[tuple[str, keras.Variable]]:
        return [
            ("depthwise_weights", self.depthwise_kernel),
            ("pointwise_weights", self.pointwise_kernel),
            ("biases", self.bias),
        ]

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        depthwise = tf.cast(self.depthwise_kernel, self.compute_dtype)
        pointwise = tf.cast(self.pointwise_kernel, self.compute_dtype)
        strides = (1, *self.strides, 1)
        kh, kw, channels, multiplier = depthwise.shape
        if channels <= _DENSE_DEPTHWISE_MAX_CHANNELS:
            # Few input channels (an RGB image): the depthwise convolution as an ordinary one
            # with a block-diagonal kernel. Bit-identical (the extra terms are exact zeros), and
            # faster: XLA's CPU backend lowers grouped convolutions' gradients to naive loops
            # (Inception V2 @224, batch 16: 5.0 s -> 0.33 s per step with XLA; oneDNN 0.16 s ->
            # 0.09 s without).
            eye = tf.eye(channels, dtype=depthwise.dtype)[None, None, :, :, None]
            dense = tf.reshape(
                depthwise[:, :, :, None, :] * eye, (kh, kw, channels, channels * multiplier)
            )
            x = tf.nn.conv2d(inputs, dense, strides=strides, padding=self.padding)
            x = tf.nn.conv2d(x, pointwise, strides=1, padding="VALID")
        else:
            x = tf.nn.separable_conv2d(
                inputs, depthwise, pointwise, strides=strides, padding=self.padding
            )
        x = tf.nn.bias_add(x, tf.cast(self.bias, self.compute_dtype))
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": list(self.kernel_size),
                "depth_multiplier": self.depth_multiplier,
                "strides": list(self.strides),
                "padding": self.padding,
                "activation": self.activation_name,
                "weight_decay": self.weight_decay,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="fer_tf")
class SlimDense(SlimLayer):
    """``slim.fully_connected``: ``weights [in, out]``, ``biases``, optional slim BatchNorm.

    Args:
        units: Output size.
        use_batch_norm: Apply slim BatchNorm instead of a bias (FaceNet's ``Bottleneck``).
        activation: Activation name or ``None``.
        bn_decay: BatchNorm moving-average decay.
        bn_epsilon: BatchNorm epsilon.
        kernel_initializer: Keras initializer for the weights.
        weight_decay: slim-style L2 weight decay on the weights.
        **kwargs: See :class:`SlimLayer`.
    """

    def __init__(
        self,
        units: int,
        *,
        use_batch_norm: bool = False,
        activation: str | None = None,
        bn_decay: float = 0.9997,
        bn_epsilon: float = 0.001,
        kernel_initializer: Any = "glorot_uniform",
        weight_decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"The 'units' parameter must be >= 1. Got {units!r} instead.")
        self.units = int(units)
        _init_kernel_options(
            self, use_batch_norm, activation, bn_decay, bn_epsilon, kernel_initializer, weight_decay
        )

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        _add_kernel_weights(
            self, (int(input_shape[-1]), self.units), use_bias=not self.use_batch_norm
        )

    def _slim_leaves(self) -> list[tuple[str, keras.Variable]]:
        return _kernel_leaves(self)

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        x = tf.matmul(inputs, tf.cast(self.kernel, self.compute_dtype))
        if self.bias is not None:
            x = tf.nn.bias_add(x, tf.cast(self.bias, self.compute_dtype))
        if self.use_batch_norm:
            x = SlimConv2D._batch_norm(self, x[:, None, None, :], training)[:, 0, 0, :]
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                **_kernel_config(self),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="fer_tf")
class SlimPool2D(SlimLayer):
    """``slim.max_pool2d`` / ``slim.avg_pool2d`` with TensorFlow padding semantics.

    ``SAME`` average pooling divides by the number of valid (non-padded) inputs, as TF does.

    Args:
        pool_type: ``"max"`` or ``"avg"``.
        pool_size: Window size.
        strides: Stride.
        padding: ``"SAME"`` or ``"VALID"``.
        **kwargs: See :class:`SlimLayer`.
    """

    def __init__(
        self,
        pool_type: str,
        pool_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "SAME",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_choice("pool_type", pool_type, ("max", "avg"))
        self.pool_type = pool_type
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = _pair(strides, "strides")
        self.padding = _padding(padding)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        fn = tf.nn.max_pool2d if self.pool_type == "max" else tf.nn.avg_pool2d
        return fn(inputs, self.pool_size, self.strides, self.padding)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "pool_type": self.pool_type,
                "pool_size": list(self.pool_size),
                "strides": list(self.strides),
                "padding": self.padding,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="fer_tf")
class SlimGlobalPool(SlimLayer):
    """Global average or max pooling over height and width.

    Args:
        pool_type: ``"avg"`` or ``"max"``.
        keepdims: Keep the spatial axes (as slim's ``global_pool`` end point does).
        **kwargs: See :class:`SlimLayer`.
    """

    def __init__(self, pool_type: str = "avg", keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_choice("pool_type", pool_type, ("max", "avg"))
        self.pool_type = pool_type
        self.keepdims = bool(keepdims)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        fn = tf.reduce_mean if self.pool_type == "avg" else tf.reduce_max
        return fn(inputs, axis=[1, 2], keepdims=self.keepdims)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"pool_type": self.pool_type, "keepdims": self.keepdims})
        return config


@keras.saving.register_keras_serializable(package="fer_tf")
class SlimConcat(SlimLayer):
    """Channel concatenation (the output of an Inception block).

    Args:
        **kwargs: See :class:`SlimLayer`.
    """

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        return tf.concat(list(inputs), axis=-1)


@keras.saving.register_keras_serializable(package="fer_tf")
class SlimFlatten(SlimLayer):
    """Flatten all but the batch axis (``slim.flatten``; also slim's ``spatial_squeeze``).

    Args:
        **kwargs: See :class:`SlimLayer`.
    """

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        shape = inputs.shape
        if all(d is not None for d in shape[1:]):
            size = 1
            for d in shape[1:]:
                size *= int(d)
            return tf.reshape(inputs, (-1, size))
        return tf.reshape(inputs, (tf.shape(inputs)[0], -1))


@keras.saving.register_keras_serializable(package="fer_tf")
class SlimResidual(SlimLayer):
    """Inception-ResNet residual: ``activation(net + scale * up)``.

    Args:
        scale: Residual scale (0.17, 0.10, 0.20 in FaceNet's blocks 35, 17 and 8).
        activation: Activation name or ``None``.
        **kwargs: See :class:`SlimLayer`.
    """

    def __init__(self, scale: float = 1.0, activation: str | None = "relu", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.activation_name = activation
        self.activation = None if activation is None else keras.activations.get(activation)

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        net, up = inputs
        x = net + tf.cast(self.scale, up.dtype) * up
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"scale": self.scale, "activation": self.activation_name})
        return config


@keras.saving.register_keras_serializable(package="fer_tf")
class SlimActivation(SlimLayer):
    """An activation applied to logits (``Predictions`` end point), computed in float32.

    Args:
        activation: Activation name.
        **kwargs: See :class:`SlimLayer`.
    """

    def __init__(self, activation: str = "softmax", **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.activation_name = activation
        self.activation = None if activation is None else keras.activations.get(activation)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return self.activation(inputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"activation": self.activation_name})
        return config


CUSTOM_OBJECTS: dict[str, type[keras.layers.Layer]] = {
    cls.__name__: cls
    for cls in (
        SlimConv2D,
        SlimSeparableConv2D,
        SlimDense,
        SlimPool2D,
        SlimGlobalPool,
        SlimConcat,
        SlimFlatten,
        SlimResidual,
        SlimActivation,
    )
}
