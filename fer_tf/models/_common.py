"""Shared builder plumbing: inputs, slim-scoped layer factories, pooling and weights."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from fer_tf.checks import check_choice, check_number, invalid
from fer_tf.models import catalog
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

_POOLINGS = (None, "avg", "max")

#: The keywords every registered builder accepts (``keras.applications`` style, plus
#: ``aux_logits``, which builders without an auxiliary head accept and reject only when True).
COMMON_KEYWORDS: tuple[str, ...] = (
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
    "dropout",
    "aux_logits",
    "name",
)


def layer_name(scope: str) -> str:
    """Keras layer name for a slim scope (``/`` is not allowed in Keras 3 names)."""
    return scope.replace("/", "_")


@dataclass(frozen=True)
class BuildArgs:
    """The checked common keywords of one builder call, and the model's catalog entry.

    Attributes:
        spec: The model's :class:`~fer_tf.models.catalog.ModelSpec`.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, dropout, aux_logits, name: As given to the builder.
    """

    spec: ModelSpec
    include_top: bool
    weights: Any
    input_tensor: Any
    input_shape: Any
    pooling: str | None
    classes: int | None
    classifier_activation: str | None
    dropout: float
    aux_logits: bool
    name: str


def start(model: str, arguments: Mapping[str, Any]) -> tuple[BuildArgs, Any]:
    """The preamble of every builder: check the common keywords and make the input.

    Args:
        model: The registry name, whose catalog entry gives the input defaults.
        arguments: The builder's arguments (its ``locals()`` on entry); the keywords of
            :data:`COMMON_KEYWORDS` are read from it.

    Returns:
        ``(args, inputs)``: the checked :class:`BuildArgs` and the Keras input tensor.

    Raises:
        ValueError: For an invalid common argument or input shape.
    """
    spec = catalog.get_spec(model)
    args = BuildArgs(spec, **{k: arguments[k] for k in COMMON_KEYWORDS})
    check_weights(args.weights)
    if not isinstance(args.include_top, bool):
        raise invalid("include_top", "a bool", args.include_top)
    check_choice("pooling", args.pooling, _POOLINGS)
    classes = args.classes
    bad_classes = not isinstance(classes, int) or isinstance(classes, bool) or classes < 1
    # Models without default classes (FaceNet's embedding) may leave them out.
    if args.include_top and not (spec.classes is None and classes is None) and bad_classes:
        raise invalid("classes", "a positive int when include_top=True", classes)
    check_number("dropout", args.dropout, min=0.0, lt=1.0)
    if not isinstance(args.aux_logits, bool):
        raise invalid("aux_logits", "a bool", args.aux_logits)
    if args.aux_logits and not spec.has_aux_logits:
        with_aux = [n for n in catalog.model_names() if catalog.get_spec(n).has_aux_logits]
        raise ValueError(
            f"{model} has no auxiliary head, so the 'aux_logits' parameter must be False. "
            f"Got True instead (models with one: {', '.join(with_aux)})."
        )
    if args.classifier_activation is not None:
        keras.activations.get(args.classifier_activation)
    return args, make_input(args.input_shape, spec, args.input_tensor)


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


def backbone_model(args: BuildArgs, inputs: Any, features: Any) -> keras.Model:
    """The ``include_top=False`` model: features (pooled as asked), backbone weights loaded."""
    model = keras.Model(inputs, pool_features(features, args.pooling), name=args.name)
    load_weights_arg(model, args.weights, backbone_only=True)
    return model


def classifier_model(
    args: BuildArgs,
    inputs: Any,
    logits: Any,
    *,
    aux: Any = None,
    background: str = "keep",
    exclude_scopes: Sequence[str] = (),
) -> keras.Model:
    """The ``include_top=True`` model: classifier activation on the logits, weights loaded.

    Args:
        args: The builder's checked arguments.
        inputs: The input tensor.
        logits: The logits (or embedding) tensor.
        aux: Auxiliary logits; the model then outputs ``{"logits", "aux_logits"}``.
        background: Passed to the weight loading (``"drop"`` for 1000 of 1001 classes).
        exclude_scopes: Checkpoint scopes the model does not build.

    Returns:
        The functional model.
    """
    outputs: Any = activation(logits, args.classifier_activation)
    if aux is not None:
        aux = activation(aux, args.classifier_activation, "AuxPredictions", endpoint=None)
        outputs = {"logits": outputs, "aux_logits": aux}
    model = keras.Model(inputs, outputs, name=args.name)
    load_weights_arg(model, args.weights, background=background, exclude_scopes=exclude_scopes)
    return model


def check_final_endpoint(args: BuildArgs, final_endpoint: str, endpoints: Sequence[str]) -> None:
    """Check ``final_endpoint``: one of ``endpoints``, and the last one with the classifier top.

    Raises:
        ValueError: For an unknown end point, or another than the last with ``include_top``.
    """
    check_choice("final_endpoint", final_endpoint, endpoints)
    if args.include_top and final_endpoint != endpoints[-1]:
        raise ValueError("final_endpoint can only be changed with include_top=False.")


def run_steps(
    steps: Sequence[tuple[str, Callable[[Any], Any]]],
    x: Any,
    final_endpoint: str,
    keep: Sequence[str] = (),
) -> tuple[Any, dict[str, Any]]:
    """Apply ``(end point, step)`` pairs up to ``final_endpoint``.

    Returns:
        The output of the last step, and the outputs of the end points named in ``keep``.
    """
    kept: dict[str, Any] = {}
    for endpoint, step in steps:
        x = step(x)
        if endpoint in keep:
            kept[endpoint] = x
        if endpoint == final_endpoint:
            break
    return x, kept


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


def check_weights(weights: Any) -> None:
    """Reject anything but ``None`` or a local path (before the model is built).

    Raises:
        ValueError: For ``"imagenet"`` or another non-path value.
    """
    if weights is None:
        return
    if not isinstance(weights, str) or weights in ("imagenet", "vggface2", "casia-webface"):
        raise ValueError(
            "The 'weights' parameter must be None or the path of a local checkpoint "
            f"(fer_tf never downloads weights). Got {weights!r} instead."
        )


def load_weights_arg(
    model: keras.Model,
    weights: str | None,
    *,
    background: str = "keep",
    backbone_only: bool = False,
    exclude_scopes: Sequence[str] = (),
) -> None:
    """Handle the ``weights`` argument of a builder.

    ``None``: random initialisation. A path ending in ``.weights.h5`` or ``.keras`` loads Keras
    weights; any other path is read as a TF-Slim (name-based) checkpoint with
    :func:`fer_tf.models.slim_checkpoint.load_slim_checkpoint`. Nothing is ever downloaded.
    With ``backbone_only`` (``include_top=False``) checkpoint variables the model lacks (the
    logits, blocks after ``final_endpoint``) are ignored; missing ones are still an error.

    Raises:
        ValueError: For ``"imagenet"`` or another non-path value.
    """
    check_weights(weights)
    if weights is None:
        return
    if weights.endswith((".weights.h5", ".keras")):
        model.load_weights(weights)
        return
    from fer_tf.models.slim_checkpoint import load_slim_checkpoint

    load_slim_checkpoint(
        model,
        weights,
        background=background,
        exclude_scopes=tuple(exclude_scopes),
        ignore_unexpected=backbone_only,
    )


def dropout(x: Any, rate: float, name: str) -> Any:
    return keras.layers.Dropout(rate, name=name)(x) if rate > 0 else x
