"""One way to load weights into a :mod:`fer_tf.models` network, for the builders and the trainer.

:func:`load_weights` reads every format fer_tf accepts and returns a :class:`WeightsReport`
instead of printing; the builders' ``weights=`` argument (:func:`load_weights_arg`) and the
trainer (``model.weights`` in a config) both go through it, so both accept the same paths:

- a Keras file: ``.keras``, ``.weights.h5`` or a legacy ``.h5`` (``model.save_weights``);
- a TF-Slim (name-based) checkpoint: its prefix (``.../inception_v4.ckpt``, next to
  ``inception_v4.ckpt.index``) or a directory holding a ``checkpoint`` file.

Nothing is ever downloaded. :func:`check_weights_path` checks a path without TensorFlow (the
config checks call it before anything is built).
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
    "load_weights",
    "load_weights_arg",
]

#: File endings read as Keras weights (``.weights.h5`` ends in ``.h5`` too).
KERAS_SUFFIXES: tuple[str, ...] = (".keras", ".weights.h5", ".h5")

#: What :func:`load_weights` accepts, in words (for error messages).
ACCEPTED = (
    "a Keras file (.keras, .weights.h5 or .h5) or a TF-Slim checkpoint (its prefix, next to a "
    "'<prefix>.index' file, or a directory holding a 'checkpoint' file)"
)

#: Class-layer scopes under a model's top slim scope. An ImageNet checkpoint's class layers
#: (1001 or 1000 outputs) never fit a task head, so fine-tuning restores everything else, as
#: slim's ``--checkpoint_exclude_scopes`` recipes do.
CLASS_SCOPES: tuple[str, ...] = ("Logits", "AuxLogits", "fc8")

# Names that look like keras.applications' download switches; fer_tf never downloads.
_DOWNLOAD_NAMES = ("imagenet", "vggface2", "casia-webface")


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


def check_weights(weights: Any) -> None:
    """Reject anything but ``None`` or a path (before a model is built).

    Args:
        weights: the ``weights`` argument of a builder.

    Raises:
        ValueError: for ``"imagenet"`` or another non-path value.
    """
    if weights is None:
        return
    if not isinstance(weights, (str, os.PathLike)) or str(weights) in _DOWNLOAD_NAMES:
        raise ValueError(
            "The 'weights' parameter must be None or the path of a local checkpoint "
            f"(fer_tf never downloads weights). Got {weights!r} instead."
        )


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
    """
    check_weights(path)
    kind = check_weights_path(path)
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


def load_weights_arg(
    model: Any,
    weights: str | os.PathLike[str] | None,
    *,
    background: str = "keep",
    backbone_only: bool = False,
    exclude_scopes: Sequence[str] = (),
) -> WeightsReport | None:
    """The ``weights`` argument of a builder: None (random initialisation) or a path.

    Args:
        model: the freshly built model.
        weights: None or a path (see :func:`load_weights`).
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
