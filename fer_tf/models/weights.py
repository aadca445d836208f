"""One way to load weights into a :mod:`fer_tf.models` network, for the builders and the trainer.

:func:`load_weights` reads every format fer_tf accepts and returns a :class:`WeightsReport`
instead of printing; the builders' ``weights=`` argument (:func:`load_weights_arg`) and the
trainer (``model.weights`` in a config) both go through it, so both accept the same paths:

- a Keras file: ``.keras``, ``.weights.h5`` or a legacy ``.h5`` (``model.save_weights``);
- a TF-Slim (name-based) checkpoint: its prefix (``.../inception_v4.ckpt``, next to
  ``inception_v4.ckpt.index``) or a directory holding a ``checkpoint`` file;
- a name from :mod:`fer_tf.models.pretrained` (``"imagenet"``, ...): the published file is
  downloaded on first use into a cache, verified, and loaded (class layers left to train when the
  model's classes differ from the file's, as fine-tuning does).

:func:`check_weights_value` checks a path or a name without TensorFlow (the config checks call it
before anything is built).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ACCEPTED",
    "CLASS_SCOPES",
    "KERAS_SUFFIXES",
    "WeightsReport",
    "check_weights",
    "check_weights_path",
    "check_weights_value",
    "load_weights",
    "load_weights_arg",
]

#: File endings read as Keras weights (``.weights.h5`` ends in ``.h5`` too).
KERAS_SUFFIXES: tuple[str, ...] = (".keras", ".weights.h5", ".h5")

#: What :func:`load_weights` accepts, in words (for error messages).
ACCEPTED = (
    "a Keras file (.keras, .weights.h5 or .h5), a TF-Slim checkpoint (its prefix, next to a "
    "'<prefix>.index' file, or a directory holding a 'checkpoint' file) or a named weight such "
    "as 'imagenet' (fer_tf.models.pretrained)"
)

#: Class-layer scopes under a model's top slim scope. An ImageNet checkpoint's class layers
#: (1001 or 1000 outputs) never fit a task head, so fine-tuning restores everything else, as
#: slim's ``--checkpoint_exclude_scopes`` recipes do.
CLASS_SCOPES: tuple[str, ...] = ("Logits", "AuxLogits", "fc8")


@dataclass
class WeightsReport:
    """What :func:`load_weights` did.

    Attributes:
        path: the path as given.
        kind: ``"keras"`` or ``"slim"``.
        loaded: slim variables assigned (None for Keras files, which do not say).
        excluded_scopes: slim scopes left untouched (class layers, ``exclude_scopes``).
        skip_mismatch: Keras files only: whether layers whose shapes differ were skipped.
        slim: the slim loader's :class:`~fer_tf.models.slim_checkpoint.LoadReport`, or None.
    """

    path: str
    kind: str
    loaded: int | None = None
    excluded_scopes: tuple[str, ...] = ()
    skip_mismatch: bool = False
    slim: Any = None

    def line(self) -> str:
        """One line for a log: what was restored from where, and what was left out.

        Returns:
            The line.
        """
        if self.kind == "keras":
            skipped = " (layers whose shapes differ, such as class layers, skipped)"
            return f"loaded Keras weights from {self.path}" + (
                skipped if self.skip_mismatch else ""
            )
        text = f"restored {self.loaded} variables from {self.path}"
        if self.excluded_scopes:
            text += f" (class layers {', '.join(self.excluded_scopes)} left to train from scratch)"
        return text


def check_weights(weights: Any, *, model: str | None = None) -> None:
    """Reject anything but ``None``, a path or a known weight name (before a model is built).

    Args:
        weights: the ``weights`` argument of a builder.
        model: the registry name of the model; a weight name must then be published for it.

    Raises:
        ValueError: a non-path value, or a name that is unknown (with a did-you-mean) or not
            published for ``model``.
    """
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(
            "The 'weights' parameter must be None, the path of a local checkpoint or a weight "
            f"name such as 'imagenet'. Got {weights!r} instead."
        )
    from fer_tf.models import pretrained

    if pretrained.is_pretrained_name(weights):
        if model is not None:
            pretrained.find_pretrained(str(weights), model=model)
        elif str(weights) not in pretrained.pretrained_names():
            pretrained.find_pretrained(str(weights))  # raises, with a did-you-mean


def check_weights_value(
    value: str | os.PathLike[str],
    *,
    model: str | None = None,
    name: str = "weights",
    error: type[Exception] = ValueError,
) -> str:
    """Check a path or a weight name (no TensorFlow, nothing downloaded).

    Args:
        value: the given path or name.
        model: the registry name of the model (a name must be published for it).
        name: the parameter name for the message (``"model.weights"``).
        error: the exception class raised.

    Returns:
        ``"keras"`` or ``"slim"`` for a path, ``"named"`` for a weight name.

    Raises:
        error: see :func:`check_weights_path`, or the name is unknown for the model.
    """
    from fer_tf.models import pretrained

    if pretrained.is_pretrained_name(value):
        try:
            check_weights(value, model=model)
        except ValueError as exc:
            raise error(str(exc).replace("'weights'", f"'{name}'", 1)) from None
        return "named"
    return check_weights_path(value, name=name, error=error)


def _kind(path: Path) -> str | None:
    """``"keras"``, ``"slim"``, or None when ``path`` is nothing :func:`load_weights` reads."""
    if path.name.endswith(KERAS_SUFFIXES):
        return "keras" if path.is_file() else None
    if path.is_dir():
        return "slim" if (path / "checkpoint").is_file() else None
    return "slim" if Path(f"{path}.index").is_file() else None


def check_weights_path(
    path: str | os.PathLike[str], *, name: str = "weights", error: type[Exception] = ValueError
) -> str:
    """Check that ``path`` is something :func:`load_weights` reads (no TensorFlow needed).

    Args:
        path: the given path.
        name: the parameter name for the message (``"model.weights"``).
        error: the exception class raised.

    Returns:
        ``"keras"`` or ``"slim"``.

    Raises:
        error: the path is none of the accepted kinds; the message says what is there.
    """
    from fer_tf.checks import describe_path

    p = Path(path)
    kind = _kind(p)
    if kind is not None:
        return kind
    what = describe_path(p)
    if p.is_dir():
        what = "a directory without a 'checkpoint' file"
    elif not p.exists() and not p.name.endswith(KERAS_SUFFIXES):
        what = f"nothing (no file '{p.name}' and no '{p.name}.index')"
    raise error(f"The '{name}' parameter must be {ACCEPTED}. Got '{path}', which is {what}.")


def _class_scopes(model: Any) -> tuple[str, ...]:
    """The class-layer scopes of ``model``: :data:`CLASS_SCOPES` under each top slim scope (whole
    scopes, so that e.g. Inception V4's aux-logits convolutions go too), plus the scope of any
    other class-logits layer (the small CNNs' ``logits``)."""
    from fer_tf.models.slim_checkpoint import logits_variable_names, slim_variable_map

    tops = sorted({n.split("/", 1)[0] for n in slim_variable_map(model)})
    scopes = [f"{t}/{s}" for t in tops for s in CLASS_SCOPES]
    for name in sorted(logits_variable_names(model)):
        layer_scope = name.rsplit("/", 1)[0]
        if not any(f"{layer_scope}/".startswith(f"{s}/") for s in scopes):
            scopes.append(layer_scope)
    return tuple(scopes)


def load_weights(
    model: Any,
    path: str | os.PathLike[str],
    *,
    exclude_class_layers: bool = False,
    exclude_scopes: Sequence[str] = (),
    background: str = "keep",
    backbone_only: bool = False,
) -> WeightsReport:
    """Load weights into ``model`` from a Keras file or a TF-Slim checkpoint.

    Keras files are loaded with ``model.load_weights``; slim checkpoints by slim variable name
    with :func:`~fer_tf.models.slim_checkpoint.load_slim_checkpoint` (every model variable
    outside the excluded scopes must be in the checkpoint, and nothing is assigned otherwise).

    Args:
        model: a model built by :mod:`fer_tf.models` (or any Keras model, for Keras files).
        path: see the module docstring for what is accepted.
        exclude_class_layers: fine-tuning to new classes: leave the class layers (slim
            ``Logits``, ``AuxLogits``, ``fc8`` under the model's scope, and any other
            class-logits layer) untouched; for a Keras file, skip the layers whose shapes differ.
        exclude_scopes: more slim scopes to leave untouched.
        background: slim class logits: ``"keep"`` the 1001st (background) row, or ``"drop"`` it
            for a 1000-class model.
        backbone_only: a slim checkpoint may hold variables the model lacks (``include_top=False``
            or an earlier ``final_endpoint``); missing ones are still an error.

    Returns:
        The :class:`WeightsReport`.

    Raises:
        ValueError: ``path`` is not an accepted kind of checkpoint (the message says what is
            there and what is accepted), or the checkpoint does not fit the model.
        fer_tf.models.pretrained.WeightsDownloadError: a named weight could not be downloaded
            (the message names the URL and how to download it by hand).
    """
    check_weights(path)
    from fer_tf.models.pretrained import is_pretrained_name

    if is_pretrained_name(path):
        return _load_named(
            model,
            str(path),
            exclude_class_layers=exclude_class_layers,
            exclude_scopes=exclude_scopes,
            background=background,
            backbone_only=backbone_only,
        )
    kind = check_weights_path(path)
    if kind == "keras" and _is_keras_vgg16_file(model, str(path)):
        # Keras-applications' VGG16 .h5 (Keras layer names, BGR): its own loader, as for the
        # named weight, so the class layers and a resized fc7 are handled the same way.
        from fer_tf.models import pretrained

        spec = next(p for p in pretrained.PRETRAINED if p.kind == "keras_vgg16")
        return _load_spec_file(
            model,
            spec,
            str(path),
            str(path),
            exclude_class_layers=exclude_class_layers,
            exclude_scopes=exclude_scopes,
            background=background,
            backbone_only=backbone_only,
        )
    if kind == "keras":
        model.load_weights(str(path), skip_mismatch=exclude_class_layers)
        return WeightsReport(str(path), "keras", skip_mismatch=exclude_class_layers)
    from fer_tf.models.slim_checkpoint import load_slim_checkpoint

    scopes = (*(_class_scopes(model) if exclude_class_layers else ()), *exclude_scopes)
    slim = load_slim_checkpoint(
        model,
        str(path),
        background=background,
        exclude_scopes=scopes,
        ignore_unexpected=backbone_only,
    )
    return WeightsReport(str(path), "slim", len(slim.loaded), tuple(scopes), slim=slim)


def _is_keras_vgg16_file(model: Any, path: str) -> bool:
    """Whether ``path`` is a Keras-applications VGG16 ``.h5`` and ``model`` a slim VGG16."""
    if not path.endswith(".h5") or path.endswith(".weights.h5"):
        return False
    from fer_tf.models.slim_checkpoint import slim_variable_map

    if "vgg_16/conv1/conv1_1/weights" not in slim_variable_map(model):
        return False
    import h5py

    with h5py.File(path, "r") as f:
        names = f.get("model_weights", f).attrs.get("layer_names", [])
        return any(n in (b"block1_conv1", "block1_conv1") for n in names)


def _file_shapes(spec: Any, path: str) -> dict[str, tuple[int, ...]]:
    """The shapes in a named weight's file, by slim name (Keras VGG16 layers mapped)."""
    if spec.kind == "slim":
        import tensorflow as tf

        shapes = tf.train.load_checkpoint(path).get_variable_to_shape_map()
        return {k: tuple(int(d) for d in v) for k, v in shapes.items()}
    if spec.kind != "keras_vgg16":
        return {}
    import h5py

    from fer_tf.models.slim_checkpoint import _KERAS_VGG_FC

    out: dict[str, tuple[int, ...]] = {}
    with h5py.File(path, "r") as f:
        root = f.get("model_weights", f)
        for keras_name, scope in _KERAS_VGG_FC.items():
            if keras_name in root:
                group = root[keras_name]
                while isinstance(group, h5py.Group) and keras_name in group:
                    group = group[keras_name]
                for key in group:
                    if key.startswith("kernel"):
                        out[f"{scope}/weights"] = tuple(group[key].shape)
    return out


def _named_exclusions(
    model: Any, spec: Any, shapes: dict[str, tuple[int, ...]], exclude_class_layers: bool
) -> tuple[list[str], str]:
    """Scopes a named weight must not restore into ``model``, and the background mode.

    Class layers are left to train when asked or when the model's classes differ from the
    file's (1001 vs 1000 drops slim's background row instead); the spec's optional scopes
    (VGG16's fc6/fc7) when their sizes differ from the file's.
    """
    import numpy as np

    from fer_tf.models.slim_checkpoint import logits_variable_names, slim_variable_map

    mapping = slim_variable_map(model)
    logits = [n for n in sorted(logits_variable_names(model)) if n.endswith("weights")]
    classes = int(mapping[logits[0]].shape[-1]) if logits else None
    background = "keep"
    scopes: list[str] = list(spec.extra_variables)
    if classes is not None and (exclude_class_layers or spec.classes not in (classes, classes + 1)):
        scopes += _class_scopes(model)
    elif classes is not None and spec.classes == classes + 1:
        background = "drop"
    for scope in spec.optional_scopes:
        for name, var in mapping.items():
            have = shapes.get(name)
            inside = name.startswith(f"{scope}/") and have is not None
            if inside and int(np.prod(have)) != int(np.prod(var.shape)):
                scopes.append(scope)
                break
    return scopes, background


def _load_named(
    model: Any,
    name: str,
    *,
    exclude_class_layers: bool,
    exclude_scopes: Sequence[str],
    background: str,
    backbone_only: bool,
) -> WeightsReport:
    """Load a named weight (:mod:`fer_tf.models.pretrained`): fetch, then the fitting loader."""
    from fer_tf.models import pretrained
    from fer_tf.models.slim_checkpoint import logits_variable_names, slim_variable_map

    tops = {n.split("/", 1)[0] for n in slim_variable_map(model)}
    spec = pretrained.find_pretrained(name, scopes=tops, top=bool(logits_variable_names(model)))
    path = str(pretrained.fetch_pretrained(spec))
    return _load_spec_file(
        model,
        spec,
        path,
        f"{name} ({path})",
        exclude_class_layers=exclude_class_layers,
        exclude_scopes=exclude_scopes,
        background=background,
        backbone_only=backbone_only,
    )


def _load_spec_file(
    model: Any,
    spec: Any,
    path: str,
    label: str,
    *,
    exclude_class_layers: bool,
    exclude_scopes: Sequence[str],
    background: str,
    backbone_only: bool,
) -> WeightsReport:
    """Load the file of a :class:`~fer_tf.models.pretrained.PretrainedWeights` with its loader."""
    from fer_tf.models.slim_checkpoint import (
        load_keras_vgg16_h5,
        load_slim_checkpoint,
        slim_variable_map,
    )

    scopes, bg = _named_exclusions(model, spec, _file_shapes(spec, path), exclude_class_layers)
    scopes += list(exclude_scopes)
    if spec.kind == "keras":
        model.load_weights(path, skip_mismatch=exclude_class_layers)
        return WeightsReport(label, "keras", skip_mismatch=exclude_class_layers)
    if spec.kind == "keras_vgg16":
        has_fc = "vgg_16/fc6/weights" in slim_variable_map(model)
        slim = load_keras_vgg16_h5(model, path, include_fc=has_fc, exclude_scopes=scopes)
    else:
        slim = load_slim_checkpoint(
            model,
            path,
            background=bg if background == "keep" else background,
            exclude_scopes=scopes,
            ignore_unexpected=backbone_only,
        )
    shown = tuple(s for s in scopes if s not in spec.extra_variables)
    return WeightsReport(label, "slim", len(slim.loaded), shown, slim=slim)


def load_weights_arg(
    model: Any,
    weights: str | os.PathLike[str] | None,
    *,
    background: str = "keep",
    backbone_only: bool = False,
    exclude_scopes: Sequence[str] = (),
) -> WeightsReport | None:
    """The ``weights`` argument of a builder: None (random initialisation), a path or a name.

    Args:
        model: the freshly built model.
        weights: None, a path or a weight name (see :func:`load_weights`).
        background: see :func:`load_weights`.
        backbone_only: ``include_top=False``: see :func:`load_weights`.
        exclude_scopes: slim scopes not to restore.

    Returns:
        The :class:`WeightsReport`, or None without weights.

    Raises:
        ValueError: see :func:`load_weights`.
    """
    check_weights(weights)
    if weights is None:
        return None
    return load_weights(
        model,
        weights,
        background=background,
        backbone_only=backbone_only,
        exclude_scopes=exclude_scopes,
    )
