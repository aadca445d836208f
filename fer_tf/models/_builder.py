"""The builder machinery shared by every registered model (as timm's ``_builder.py``).

A model module writes only what is its own: ``@builder("tiny_cnn", dropout=0.0)`` over a
function ``impl(args, *, own keywords)`` gives the public builder. Every public builder
accepts the same common keywords (:data:`COMMON_KEYWORDS`; their defaults come from the model's
catalog entry and the decorator), checks them the same way, makes its input from the catalog
entry (:func:`fer_tf.models._common.make_input`) and gets the shared docstring for them; the
implementation ends with :func:`backbone_model` or :func:`classifier_model`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras

from fer_tf.checks import check_choice, check_number, invalid
from fer_tf.models import catalog
from fer_tf.models._common import (
    activation,
    check_weights,
    load_weights_arg,
    make_input,
    pool_features,
)
from fer_tf.models._registry import register_model
from fer_tf.models.catalog import ModelSpec

__all__ = [
    "COMMON_KEYWORDS",
    "BuildArgs",
    "builder",
    "backbone_model",
    "classifier_model",
    "run_steps",
]

_POOLINGS = (None, "avg", "max")

# (keyword, annotation, what it is): the common keywords of every builder, in signature order
# (``name`` comes last, after the model's own keywords).
_COMMON: tuple[tuple[str, str, str], ...] = (
    ("include_top", "bool", "Add the classifier head (else the backbone's feature map)."),
    (
        "weights",
        "str | None",
        "``None`` (random), a local checkpoint path, or a published weight's name such as "
        '``"imagenet"`` (downloaded once into a cache; see :mod:`fer_tf.models.pretrained`).',
    ),
    ("input_tensor", "Any", "Optional Keras tensor to use as the input."),
    (
        "input_shape",
        "Sequence[int | None] | None",
        "``(height, width, channels)``; ``None`` for the model's default {shape}.",
    ),
    (
        "pooling",
        "str | None",
        'With ``include_top=False``: ``None`` (4-D features), ``"avg"`` or ``"max"``.',
    ),
    ("classes", "int | None", "Number of classes (default {classes})."),
    (
        "classifier_activation",
        "str | None",
        '``None`` for logits, or an activation such as ``"softmax"``.',
    ),
    ("dropout", "float", "Dropout rate of the head (default {dropout})."),
    ("aux_logits", "bool", "Add the auxiliary head."),
    ("weight_decay", "float", "slim-style L2 weight decay on the kernels (default 0)."),
    ("name", "str | None", "Model name (default ``{name}``)."),
)

#: The keywords every registered builder accepts (``keras.applications`` style, plus
#: ``aux_logits``, which builders without an auxiliary head accept and reject only when True).
COMMON_KEYWORDS: tuple[str, ...] = tuple(k for k, _, _ in _COMMON)


@dataclass(frozen=True)
class BuildArgs:
    """The checked common keywords of one builder call, and the model's catalog entry.

    Attributes:
        spec: The model's :class:`~fer_tf.models.catalog.ModelSpec`.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, dropout, aux_logits, weight_decay, name: As given to the
            builder.
        inputs: The model's input tensor (made from ``input_shape``/``input_tensor``).
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
    weight_decay: float
    name: str
    inputs: Any = None


def _start(model: str, arguments: Mapping[str, Any]) -> BuildArgs:
    """The preamble of every builder: check the common keywords and make the input.

    Args:
        model: The registry name, whose catalog entry gives the input defaults.
        arguments: The builder's arguments; the keywords of :data:`COMMON_KEYWORDS` are read.

    Returns:
        The checked :class:`BuildArgs`, with the Keras input tensor in ``inputs``.

    Raises:
        ValueError: For an invalid common argument or input shape.
    """
    spec = catalog.get_spec(model)
    args = BuildArgs(spec, **{k: arguments[k] for k in COMMON_KEYWORDS})
    check_weights(args.weights, model=model)
    if not isinstance(args.include_top, bool):
        raise invalid("include_top", "a bool", args.include_top)
    check_choice("pooling", args.pooling, _POOLINGS)
    classes = args.classes
    bad_classes = not isinstance(classes, int) or isinstance(classes, bool) or classes < 1
    # Models without default classes (FaceNet's embedding) may leave them out.
    if args.include_top and not (spec.classes is None and classes is None) and bad_classes:
        raise invalid("classes", "a positive int when include_top=True", classes)
    check_number("dropout", args.dropout, min=0.0, lt=1.0)
    check_number("weight_decay", args.weight_decay, min=0.0)
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
    return dataclasses.replace(args, inputs=make_input(args.input_shape, spec, args.input_tensor))


def backbone_model(args: BuildArgs, features: Any) -> keras.Model:
    """The ``include_top=False`` model: features (pooled as asked), backbone weights loaded."""
    model = keras.Model(args.inputs, pool_features(features, args.pooling), name=args.name)
    load_weights_arg(model, args.weights, backbone_only=True)
    return model


def classifier_model(
    args: BuildArgs,
    logits: Any,
    *,
    aux: Any = None,
    background: str = "keep",
    exclude_scopes: Sequence[str] = (),
) -> keras.Model:
    """The ``include_top=True`` model: classifier activation on the logits, weights loaded.

    Args:
        args: The builder's checked arguments.
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
    model = keras.Model(args.inputs, outputs, name=args.name)
    load_weights_arg(model, args.weights, background=background, exclude_scopes=exclude_scopes)
    return model


def run_steps(
    args: BuildArgs,
    steps: Sequence[tuple[str, Callable[[Any], Any]]],
    x: Any,
    final_endpoint: str,
    keep: Sequence[str] = (),
) -> tuple[Any, dict[str, Any]]:
    """Apply ``(end point, step)`` pairs up to ``final_endpoint``.

    Args:
        args: The builder's checked arguments (the classifier top needs every step).
        steps: The network's end points in order, each with the function that builds it.
        x: The input.
        final_endpoint: The last end point to build.
        keep: End points whose outputs are returned too.

    Returns:
        The output of the last step, and the outputs of the end points named in ``keep``.

    Raises:
        ValueError: For an unknown end point, or another than the last with ``include_top``.
    """
    endpoints = [endpoint for endpoint, _ in steps]
    check_choice("final_endpoint", final_endpoint, endpoints)
    if args.include_top and final_endpoint != endpoints[-1]:
        raise ValueError("final_endpoint can only be changed with include_top=False.")
    kept: dict[str, Any] = {}
    for endpoint, step in steps:
        x = step(x)
        if endpoint in keep:
            kept[endpoint] = x
        if endpoint == final_endpoint:
            break
    return x, kept


def _docstring(
    impl: Callable[..., Any], order: Sequence[str], defaults: Mapping[str, Any], spec: ModelSpec
) -> str:
    """The implementation's docstring, its Args completed with the common keywords it leaves
    out (in signature order)."""
    doc = inspect.cleandoc(impl.__doc__ or spec.description)
    summary, _, rest = doc.partition("\nArgs:\n")
    # One entry per documented argument: its first line and the indented lines that follow.
    entries = dict(re.findall(r"^    (\w+): (.*?)(?=^    \w+: |\Z)", rest, flags=re.M | re.S))
    fill = {**defaults, "shape": spec.input_shape}
    texts = {k: text.format(**fill) for k, _, text in _COMMON}
    if not spec.has_aux_logits:
        texts["aux_logits"] = "Must be False: this model has no auxiliary head."
    args = [f"    {k}: {entries.get(k, texts.get(k, '')).rstrip()}" for k in order]
    return "\n".join(
        [summary.rstrip(), "", "Args:", *args, "", "Returns:", "    A functional ``keras.Model``."]
        + ["", "Raises:", "    ValueError: For invalid arguments."]
    )


def builder(
    model: str, *, dropout: float, derived_name: bool = False
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Make and register the public builder of ``model`` from its implementation.

    The implementation is ``impl(args, *, own keywords) -> keras.Model``: ``args`` are the
    checked common keywords and the input tensor (:class:`BuildArgs`). The public
    builder takes the common keywords (:data:`COMMON_KEYWORDS`; ``classes`` and ``aux_logits``
    default to the catalog entry's) and the implementation's own, all keyword-only.

    Args:
        model: The registry name (its catalog entry gives the defaults).
        dropout: The default dropout rate of the head.
        derived_name: The default model name is ``None`` (the implementation derives one),
            not ``model``.

    Returns:
        The decorator; it returns the registered public builder.
    """
    spec = catalog.get_spec(model)
    defaults: dict[str, Any] = {
        "include_top": True,
        "weights": None,
        "input_tensor": None,
        "input_shape": None,
        "pooling": None,
        "classes": spec.classes,
        "classifier_activation": None,
        "dropout": dropout,
        "aux_logits": spec.has_aux_logits,
        "weight_decay": 0.0,
        "name": None if derived_name else model,
    }

    def decorate(impl: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        own = list(inspect.signature(impl).parameters.values())[1:]
        kw = inspect.Parameter.KEYWORD_ONLY
        params = [
            inspect.Parameter(k, kw, default=defaults[k], annotation=a)
            for k, a, _ in _COMMON
            if k != "name"
        ]
        params += [p.replace(kind=kw) for p in own]
        params.append(
            inspect.Parameter("name", kw, default=defaults["name"], annotation="str | None")
        )
        signature = inspect.Signature(params, return_annotation="keras.Model")

        @functools.wraps(impl)
        def build(**kwargs: Any) -> keras.Model:
            bound = signature.bind(**kwargs)
            bound.apply_defaults()
            values = bound.arguments
            return impl(_start(model, values), **{p.name: values[p.name] for p in own})

        del build.__wrapped__  # inspect must read the public signature, not the impl's
        build.__signature__ = signature  # type: ignore[attr-defined]
        build.__doc__ = _docstring(impl, [p.name for p in params], defaults, spec)
        return register_model(model)(build)

    return decorate
