"""Freezing: which layers train.

Freezing works on whole layers (``layer.trainable``). A frozen :class:`SlimConv2D` freezes its
kernel *and* its BatchNorm: the unit then runs in inference mode (moving statistics, never
updated), as the issue asks and as Keras's own BatchNormalization does.

Four ways to choose, all resetting every layer first (so calls do not accumulate):

- :func:`train_layer_mode` -- Christensen 2018's "train layer mode": 0 trains everything; each higher
  mode freezes more from the bottom. Boundaries per model are in :data:`TRAIN_LAYER_MODES`
  (mode ``k`` freezes every layer the named end point depends on, that end point included).
- :func:`freeze_up_to` -- freeze everything up to and including an end point, e.g. single
  Inception-C blocks (``"Mixed_7b"``, ``"Mixed_7c"``), as Christensen 2018's section 5.1 did.
- :func:`unfreeze_last_n` -- only the last ``n`` layers with weights train.
- :func:`unfreeze_last_modules` -- Korber: only the last ``n`` top-level modules of FaceNet's
  Inception-ResNet-V1 train, counted as facenet-pytorch registers them (``logits``, ``last_bn``,
  ``last_linear``, ``dropout``, ``avgpool_1a``, ``block8``, ``repeat_3`` ...; see
  :data:`KORBER_MODULES`).
- :func:`set_trainable_scopes` -- TF-Slim's ``--trainable_scopes``: regular expressions matched
  (``re.match``) against slim variable names.

Layers outside the slim graph (task heads from :func:`fer_tf.models.heads.build_classifier`)
stay trainable in every mode except :func:`unfreeze_last_n`, which counts them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import keras

from fer_tf.models.endpoints import iter_layers

__all__ = [
    "TRAIN_LAYER_MODES",
    "FREEZING_PRESETS",
    "model_scope",
    "freeze_up_to",
    "train_layer_mode",
    "unfreeze_last_n",
    "unfreeze_last_modules",
    "KORBER_MODULES",
    "set_trainable_scopes",
    "apply_freezing",
    "trainable_summary",
]

#: ``{model scope: {mode: end point frozen through}}`` for Christensen 2018's train layer mode.
TRAIN_LAYER_MODES: dict[str, dict[int, str]] = {
    # Stem+A+reduction, +B+reduction, then the three Inception-C blocks one by one (5.1).
    "InceptionV4": {1: "Mixed_6a", 2: "Mixed_7a", 3: "Mixed_7b", 4: "Mixed_7c", 5: "Mixed_7d"},
    "InceptionV2": {
        1: "MaxPool_3a_3x3",
        2: "Mixed_3c",
        3: "Mixed_4e",
        4: "Mixed_5b",
        5: "Mixed_5c",
    },
    # Mode 5 trains fc6, fc7, fc8 only (slim builds them as convolutions): Bartissol 2017's "final
    # three convolutional layers" and Athanasiadis 2022's "last three FC layers".
    "vgg_16": {
        1: "vgg_16/pool1",
        2: "vgg_16/pool2",
        3: "vgg_16/pool3",
        4: "vgg_16/pool4",
        5: "vgg_16/pool5",
    },
    "InceptionResnetV1": {
        1: "Conv2d_4b_3x3",
        2: "Mixed_5a",
        3: "Mixed_6b",
        4: "Mixed_8a",
        5: "Mixed_8b",
    },
}

#: Named choices of the seeds: ``{preset: {model scope: end point frozen through}}``. Whatever
#: follows the end point trains: the slim logits, or the task heads of a ``build_classifier`` model.
FREEZING_PRESETS: dict[str, dict[str, str]] = {
    # Bartissol 2017: Inception V2 trains the logits only; VGG16 its last three (conv) layers, which in
    # slim's VGG16 are fc6, fc7 and fc8.
    "bartissol2017": {"InceptionV2": "Mixed_5c", "vgg_16": "vgg_16/pool5"},
    # Athanasiadis 2022: VGG16 with the last three FC layers fine-tuned.
    "athanasiadis2022": {"vgg_16": "vgg_16/pool5"},
}
#: Earlier preset names, still accepted.
FREEZING_PRESET_ALIASES: dict[str, str] = {
    "seed001": "bartissol2017",
    "seed004": "athanasiadis2022",
}


#: Korber's "layers" of FaceNet's Inception-ResNet-V1, from the output: the top-level modules of
#: facenet-pytorch's ``InceptionResnetV1`` in reverse registration order, each as
#: ``(module, slim scope, part)``. The scope is relative to ``InceptionResnetV1`` (``Logits`` sits
#: outside it); ``None`` marks a module without weights (it still counts, as in her Table 3);
#: ``part`` splits FaceNet's ``Bottleneck`` (fully connected + BatchNorm, one layer here) into
#: facenet-pytorch's ``last_linear`` (``"kernel"``) and ``last_bn`` (``"bn"``).
KORBER_MODULES: tuple[tuple[str, str | None, str | None], ...] = (
    ("logits", "Logits", None),
    ("last_bn", "Bottleneck", "bn"),
    ("last_linear", "Bottleneck", "kernel"),
    ("dropout", None, None),
    ("avgpool_1a", None, None),
    ("block8", "Block8", None),
    ("repeat_3", "Repeat_2", None),
    ("mixed_7a", "Mixed_7a", None),
    ("repeat_2", "Repeat_1", None),
    ("mixed_6a", "Mixed_6a", None),
    ("repeat_1", "Repeat", None),
    ("conv2d_4b", "Conv2d_4b_3x3", None),
    ("conv2d_4a", "Conv2d_4a_3x3", None),
    ("conv2d_3b", "Conv2d_3b_1x1", None),
    ("maxpool_3a", None, None),
    ("conv2d_2b", "Conv2d_2b_3x3", None),
    ("conv2d_2a", "Conv2d_2a_3x3", None),
    ("conv2d_1a", "Conv2d_1a_3x3", None),
)


def _weighted_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in iter_layers(model) if layer.weights]


def _reset(model: keras.Model) -> None:
    model.trainable = True
    for layer in iter_layers(model):
        layer.trainable = True
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and hasattr(kernel, "trainable"):
            kernel.trainable = True  # unfreeze_last_modules may have frozen a kernel alone


def model_scope(model: keras.Model) -> str | None:
    """Return the top-level slim scope of the backbone in ``model`` (``"InceptionV4"`` ...).

    Args:
        model: A model built by :mod:`fer_tf.models`.

    Returns:
        The scope, or ``None`` if no layer has a slim scope.
    """
    for layer in iter_layers(model):
        scope = getattr(layer, "slim_scope", None)
        if scope and "/" in scope:
            return scope.split("/", 1)[0]
    return None


def _ancestors(layer: keras.layers.Layer) -> set[int]:
    """ids of all layers that ``layer``'s (first) output depends on, ``layer`` included."""
    seen: set[int] = set()
    stack = [layer]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        nodes = getattr(current, "_inbound_nodes", [])
        if not nodes:
            continue
        for tensor in keras.tree.flatten(nodes[0].input_tensors):
            history = getattr(tensor, "_keras_history", None)
            if history is not None and history[0] is not None:
                stack.append(history[0])
    return seen


def _endpoint_layer(model: keras.Model, endpoint: str) -> keras.layers.Layer:
    layers = {
        layer.endpoint: layer for layer in iter_layers(model) if getattr(layer, "endpoint", None)
    }
    if endpoint in layers:
        return layers[endpoint]
    matches = [k for k in layers if k.endswith("/" + endpoint)]
    if len(matches) == 1:
        return layers[matches[0]]
    raise ValueError(f"Unknown end point {endpoint!r}. Available end points: {tuple(layers)}.")


def freeze_up_to(model: keras.Model, endpoint: str) -> list[str]:
    """Freeze every layer that ``endpoint`` depends on (the end point's own layer included).

    Everything else (later blocks, auxiliary and task heads) is made trainable.

    Args:
        model: A model built by :mod:`fer_tf.models`.
        endpoint: An end point name (``"Mixed_7b"``, ``"vgg_16/pool5"`` or ``"pool5"`` ...).

    Returns:
        Names of the frozen layers that have weights.

    Raises:
        ValueError: If the end point is unknown.
    """
    target = _endpoint_layer(model, endpoint)
    _reset(model)
    below = _ancestors(target)
    frozen = []
    for layer in iter_layers(model):
        if id(layer) in below:
            layer.trainable = False
            if layer.weights:
                frozen.append(layer.name)
    return frozen


def train_layer_mode(model: keras.Model, mode: int) -> list[str]:
    """Christensen 2018's train layer mode: 0 trains everything, higher modes freeze more from the bottom.

    Boundaries (mode: frozen through) are listed in :data:`TRAIN_LAYER_MODES` for the slim
    models. For the small CNNs mode ``k`` freezes their first ``k`` layers with weights (the last
    layer always trains).

    Args:
        model: A model built by :mod:`fer_tf.models`.
        mode: 0-5 for the slim models; 0 to (number of weighted layers - 1) for small CNNs.

    Returns:
        Names of the frozen layers that have weights.

    Raises:
        ValueError: If the mode is out of range for the model.
    """
    if not isinstance(mode, int) or isinstance(mode, bool) or mode < 0:
        raise ValueError(f"The 'mode' parameter must be an int >= 0. Got {mode!r} instead.")
    if mode == 0:
        _reset(model)
        return []
    scope = model_scope(model)
    if scope in TRAIN_LAYER_MODES:
        table = TRAIN_LAYER_MODES[scope]
        if mode not in table:
            raise ValueError(
                f"The 'mode' parameter must be one of {(0, *table)} for {scope}. Got {mode!r}."
            )
        return freeze_up_to(model, table[mode])
    weighted = [layer for layer in _weighted_layers(model) if getattr(layer, "slim_scope", None)]
    if mode >= len(weighted):
        raise ValueError(
            f"The 'mode' parameter must be < {len(weighted)} for {model.name!r}. Got {mode!r}."
        )
    _reset(model)
    for layer in weighted[:mode]:
        layer.trainable = False
    return [layer.name for layer in weighted[:mode]]


def unfreeze_last_n(model: keras.Model, n: int) -> list[str]:
    """Korber: freeze everything except the last ``n`` layers that have weights.

    Layers are counted from the output in Keras's topological order (``model.layers``), each
    layer with weights counting once: a conv-BN unit is one layer, each task head is one layer.
    Weightless layers (pooling, dropout, concatenation) are not counted.

    Args:
        model: Any Keras model.
        n: Number of trainable layers (0 freezes everything).

    Returns:
        Names of the trainable layers.

    Raises:
        ValueError: If ``n`` is negative or larger than the number of weighted layers.
    """
    weighted = _weighted_layers(model)
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= len(weighted):
        raise ValueError(
            f"The 'n' parameter must be an int in [0, {len(weighted)}]. Got {n!r} instead."
        )
    _reset(model)
    keep = weighted[len(weighted) - n :]
    keep_ids = {id(layer) for layer in keep}
    for layer in weighted:
        if id(layer) not in keep_ids:
            layer.trainable = False
    return [layer.name for layer in keep]


def _module_layers(model: keras.Model, scope: str) -> list[keras.layers.Layer]:
    """The weighted layers of one top-level module (``Repeat`` is not ``Repeat_1``)."""
    out = []
    for layer in _weighted_layers(model):
        name = getattr(layer, "slim_scope", "") or ""
        rel = name.split("/", 1)[1] if name.startswith("InceptionResnetV1/") else name
        if rel == scope or rel.startswith(scope + "/"):
            out.append(layer)
    return out


def unfreeze_last_modules(model: keras.Model, n: int) -> list[str]:
    """Korber: train only the last ``n`` top-level modules of Inception-ResNet-V1.

    Modules are counted as facenet-pytorch registers them (:data:`KORBER_MODULES`): ``n = 1``
    trains the classifier, 2 adds the embedding's BatchNorm, 3 its fully connected layer, 4 and
    5 add the weightless dropout and pooling, 6 ``Block8``, 9 reaches ``Repeat_1`` (10 x block17).
    Korber's trainable-parameter counts (Table 3: 3,591 / 4,615 / 922,119 / 2,522,887 /
    20,773,383 for 1, 2, 4, 6, 9 with 7 classes and a 512-d bottleneck) count facenet-pytorch's
    BatchNorm gamma too, which FaceNet's TF checkpoints (and this model) lack: here each count is
    smaller by the number of BatchNorm channels that train.

    Args:
        model: An ``inception_resnet_v1`` model (with its ``Logits`` for ``n >= 1``).
        n: Number of modules, 0 to ``len(KORBER_MODULES)``.

    Returns:
        The modules that train, from the output.

    Raises:
        ValueError: If the model is not Inception-ResNet-V1 or ``n`` is out of range.
    """
    if model_scope(model) != "InceptionResnetV1":
        raise ValueError(
            "The 'model' parameter must be an inception_resnet_v1 model (Korber's modules are "
            f"FaceNet's). Got {model.name!r} (scope {model_scope(model)!r}) instead."
        )
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= len(KORBER_MODULES):
        raise ValueError(
            f"The 'n' parameter must be an int in [0, {len(KORBER_MODULES)}]. Got {n!r} instead."
        )
    _reset(model)
    for layer in _weighted_layers(model):
        layer.trainable = False
    parts: dict[int, set[str]] = {}
    layers: dict[int, keras.layers.Layer] = {}
    for _, scope, part in KORBER_MODULES[:n]:
        for layer in _module_layers(model, scope) if scope else ():
            layers[id(layer)] = layer
            parts.setdefault(id(layer), set()).add(part or "all")
    for key, layer in layers.items():
        layer.trainable = True
        if parts[key] == {"bn"}:
            layer.kernel.trainable = False  # last_bn without last_linear
    return [module for module, _, _ in KORBER_MODULES[:n]]


def set_trainable_scopes(model: keras.Model, patterns: str | Sequence[str]) -> list[str]:
    """TF-Slim ``--trainable_scopes``: only layers with a slim variable matching a pattern train.

    Args:
        model: A model built by :mod:`fer_tf.models`.
        patterns: Regular expressions (or one comma-separated string) matched with ``re.match``
            against slim variable names, e.g. ``"InceptionV4/Logits,InceptionV4/AuxLogits"``
            or ``r"InceptionV4/Mixed_7[cd]"``.

    Returns:
        Names of the trainable slim layers.

    Raises:
        ValueError: If no pattern is given, a pattern is not a valid regex, or nothing matches.
    """
    if isinstance(patterns, str):
        patterns = patterns.split(",")
    patterns = [p.strip() for p in patterns if p and p.strip()]
    if not patterns:
        raise ValueError("The 'patterns' parameter must contain at least one scope pattern.")
    try:
        compiled = [re.compile(p) for p in patterns]
    except re.error as err:
        raise ValueError(f"Invalid trainable scope pattern: {err}.") from None
    _reset(model)
    trainable = []
    for layer in iter_layers(model):
        names = list(getattr(layer, "slim_variables", dict)())
        if not names:
            continue
        if any(rx.match(name) for rx in compiled for name in names):
            trainable.append(layer.name)
        else:
            layer.trainable = False
    if not trainable:
        raise ValueError(f"No slim variable of {model.name!r} matches the patterns {patterns}.")
    return trainable


def apply_freezing(
    model: keras.Model,
    *,
    mode: int | None = None,
    up_to: str | None = None,
    last_n: int | None = None,
    trainable_scopes: str | Sequence[str] | None = None,
    preset: str | None = None,
) -> dict[str, Any]:
    """Apply one freezing choice (at most one argument) and summarise the result.

    Args:
        model: A model built by :mod:`fer_tf.models`.
        mode: Christensen 2018's train layer mode (:func:`train_layer_mode`).
        up_to: End point to freeze through (:func:`freeze_up_to`).
        last_n: Number of last weighted layers to train (:func:`unfreeze_last_n`).
        trainable_scopes: Slim trainable scope patterns (:func:`set_trainable_scopes`).
        preset: A name in :data:`FREEZING_PRESETS` (``"bartissol2017"``, ``"athanasiadis2022"``).

    Returns:
        :func:`trainable_summary` of the model afterwards. With no argument, everything trains.

    Raises:
        ValueError: If more than one choice is given or a choice is invalid for the model.
    """
    given = {
        k: v
        for k, v in dict(
            mode=mode, up_to=up_to, last_n=last_n, trainable_scopes=trainable_scopes, preset=preset
        ).items()
        if v is not None
    }
    if len(given) > 1:
        raise ValueError(f"Give at most one freezing choice. Got {sorted(given)}.")
    if mode is not None:
        train_layer_mode(model, mode)
    elif up_to is not None:
        freeze_up_to(model, up_to)
    elif last_n is not None:
        unfreeze_last_n(model, last_n)
    elif trainable_scopes is not None:
        set_trainable_scopes(model, trainable_scopes)
    elif preset is not None:
        preset = FREEZING_PRESET_ALIASES.get(preset, preset)
        if preset not in FREEZING_PRESETS:
            raise ValueError(
                f"The 'preset' parameter must be one of {tuple(FREEZING_PRESETS)}. "
                f"Got {preset!r} instead."
            )
        scope = model_scope(model)
        table = FREEZING_PRESETS[preset]
        if scope not in table:
            raise ValueError(
                f"Preset {preset!r} is defined for {tuple(table)}, not for {scope!r} models."
            )
        freeze_up_to(model, table[scope])
    else:
        _reset(model)
    return trainable_summary(model)


def trainable_summary(model: keras.Model) -> dict[str, Any]:
    """Summarise which layers train.

    Args:
        model: Any Keras model.

    Returns:
        ``{"trainable_layers": [...], "frozen_layers": [...], "trainable_params": int,
        "non_trainable_params": int}`` (layers with weights only).
    """
    trainable, frozen = [], []
    for layer in _weighted_layers(model):
        (trainable if layer.trainable else frozen).append(layer.name)

    def count(weights: Sequence[Any]) -> int:
        total = 0
        for w in weights:
            size = 1
            for d in w.shape:
                size *= int(d)
            total += size
        return total

    return {
        "trainable_layers": trainable,
        "frozen_layers": frozen,
        "trainable_params": count(model.trainable_weights),
        "non_trainable_params": count(model.non_trainable_weights),
    }
