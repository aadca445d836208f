"""End points: named intermediate outputs of a model, with TF-Slim's names.

Every layer that produces an end point carries its name in its config (``endpoint``), so the
information survives ``get_config`` and ``.keras`` round trips.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import keras

__all__ = ["iter_layers", "list_endpoints", "get_endpoints", "get_endpoints_model"]


def iter_layers(model: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Yield every layer of ``model`` in order, descending into nested models.

    Args:
        model: A Keras model or layer.

    Yields:
        Layers (nested models are expanded, not yielded themselves).
    """
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model) or (
            hasattr(layer, "layers") and not hasattr(layer, "slim_scope")
        ):
            yield from iter_layers(layer)
        else:
            yield layer


def _endpoint_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    found: dict[str, keras.layers.Layer] = {}
    for layer in model.layers:
        name = getattr(layer, "endpoint", None)
        if name:
            found[name] = layer
    return found


def list_endpoints(model: keras.Model) -> list[str]:
    """Return the end point names of ``model`` in layer order.

    Args:
        model: A model built by :mod:`fer_tf.models`.

    Returns:
        End point names (``Conv2d_1a_3x3`` ... ``Mixed_7d``, ``Logits`` ...).
    """
    return list(_endpoint_layers(model))


def _resolve(names: Sequence[str], available: dict[str, keras.layers.Layer]) -> list[str]:
    resolved = []
    for name in names:
        if name in available:
            resolved.append(name)
            continue
        # Short aliases: "pool5" for "vgg_16/pool5".
        matches = [k for k in available if k.endswith("/" + name)]
        if len(matches) != 1:
            raise ValueError(
                f"Unknown end point {name!r}. Available end points: {tuple(available)}."
            )
        resolved.append(matches[0])
    return resolved


def get_endpoints(model: keras.Model, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Return ``{end point name: symbolic Keras tensor}`` of a functional model.

    Args:
        model: A functional model built by :mod:`fer_tf.models` (or a model whose graph contains
            such layers, e.g. from :func:`fer_tf.models.heads.build_classifier`).
        names: End points to return (default: all). A suffix after ``/`` is accepted when it
            is unique (``"pool5"`` for ``"vgg_16/pool5"``).

    Returns:
        An insertion-ordered dict of the layers' output tensors.

    Raises:
        ValueError: If a name is unknown or the model has no end points.
    """
    available = _endpoint_layers(model)
    if not available:
        raise ValueError(f"Model {model.name!r} has no end points.")
    selected = list(available) if names is None else _resolve(list(names), available)
    return {name: available[name].output for name in selected}


def get_endpoints_model(model: keras.Model, names: Sequence[str] | None = None) -> keras.Model:
    """Build a model sharing ``model``'s layers whose output is a dict of end points.

    Args:
        model: A functional model built by :mod:`fer_tf.models`.
        names: End points to output (default: all).

    Returns:
        A ``keras.Model`` mapping the same inputs to ``{name: tensor}``.

    Raises:
        ValueError: If a name is unknown.
    """
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, get_endpoints(model, names), name=f"{model.name}_endpoints")
