"""TF-Slim checkpoint names for Keras weights, and checkpoint loading.

Each weight of a :mod:`fer_tf.models` network knows its TF-Slim variable name (kept as data in
the layer config, see :mod:`fer_tf.models.layers`). :func:`slim_variable_map` gathers them;
:func:`load_slim_checkpoint` reads a name-based TF checkpoint (``tf.train.load_checkpoint``) and
assigns every variable, after checking that both sides match.

Kernel layouts need no transposition: slim stores convolution kernels HWIO (``[kh, kw, in, out]``)
and fully connected weights ``[in, out]``, as Keras does. The only reshaping is the 1001-class
background row of slim's ImageNet Inception checkpoints (``background="drop"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fer_tf.checks import check_choice
from fer_tf.models.endpoints import iter_layers

__all__ = [
    "LoadReport",
    "slim_variable_map",
    "slim_variable_shapes",
    "logits_variable_names",
    "assign_slim_values",
    "load_slim_checkpoint",
    "load_keras_vgg16_h5",
    "AUXILIARY_CHECKPOINT_NAMES",
]

_BACKGROUND = ("keep", "drop")
_MAX_LISTED = 200

#: Checkpoint entries that are not model variables and are skipped silently: the global step,
#: optimiser slots and moving-average shadows written by slim's training script.
AUXILIARY_CHECKPOINT_NAMES = re.compile(
    r"(^global_step$|^_CHECKPOINTABLE_OBJECT_GRAPH$|"
    r"/(RMSProp|RMSProp_1|Momentum|Adam|Adam_1|Adagrad|ExponentialMovingAverage)$)"
)


@dataclass
class LoadReport:
    """What a load did.

    Attributes:
        loaded: Slim names assigned.
        excluded: Model variables left untouched because of ``exclude_scopes``.
        missing: Model variables absent from the checkpoint (only non-empty when ignored).
        unexpected: Checkpoint variables the model does not have (only when ignored).
        skipped: Checkpoint entries skipped as auxiliary or excluded.
        unmapped: Model weights without a slim name (new heads); never loaded.
        background_dropped: Logits variables whose background row was dropped.
    """

    loaded: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    background_dropped: list[str] = field(default_factory=list)


def _slim_layers(model: keras.Model) -> Iterable[Any]:
    for layer in iter_layers(model):
        if hasattr(layer, "slim_variables"):
            yield layer


def slim_variable_map(model: keras.Model) -> dict[str, keras.Variable]:
    """Return ``{slim variable name: keras variable}`` for every slim-named weight of ``model``.

    Args:
        model: A model built by :mod:`fer_tf.models` (nested models are searched too).

    Returns:
        An insertion-ordered dict in layer order.

    Raises:
        ValueError: If two weights claim the same slim name.
    """
    mapping: dict[str, keras.Variable] = {}
    for layer in _slim_layers(model):
        for name, var in layer.slim_variables().items():
            if name in mapping and mapping[name] is not var:
                raise ValueError(f"Two weights of {model.name!r} map to slim name {name!r}.")
            mapping[name] = var
    return mapping


def slim_variable_shapes(model: keras.Model) -> dict[str, tuple[int, ...]]:
    """Return ``{slim variable name: shape}`` (what a slim ``variables.tsv`` lists).

    Args:
        model: A model built by :mod:`fer_tf.models`.

    Returns:
        Shapes as tuples of ints.
    """
    return {k: tuple(int(d) for d in v.shape) for k, v in slim_variable_map(model).items()}


def logits_variable_names(model: keras.Model) -> set[str]:
    """Slim names of the variables of class-logits layers (where a background row can live).

    Args:
        model: A model built by :mod:`fer_tf.models`.

    Returns:
        A set of slim names.
    """
    names: set[str] = set()
    for layer in _slim_layers(model):
        if getattr(layer, "is_logits", False):
            names.update(layer.slim_variables())
    return names


def _unmapped_weights(model: keras.Model, mapped: Mapping[str, keras.Variable]) -> list[str]:
    ids = {id(v) for v in mapped.values()}
    return [w.path for w in model.weights if id(w) not in ids]


def _starts(name: str, scopes: Sequence[str]) -> bool:
    return any(name.startswith(s) for s in scopes)


def _fmt(names: Sequence[str]) -> str:
    names = sorted(names)
    shown = ", ".join(names[:_MAX_LISTED])
    more = f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else ""
    return f"{len(names)}: [{shown}{more}]"


def _check_background(background: str) -> None:
    check_choice("background", background, _BACKGROUND)


def _as_scopes(exclude_scopes: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(exclude_scopes, str):
        exclude_scopes = [s for s in exclude_scopes.split(",")]
    return tuple(s.strip() for s in exclude_scopes if s and s.strip())


def _plan(
    model: keras.Model,
    available: Mapping[str, tuple[int, ...]],
    *,
    background: str,
    exclude_scopes: Sequence[str],
    ignore_missing: bool,
    ignore_unexpected: bool,
    source: str,
) -> tuple[dict[str, keras.Variable], LoadReport, dict[str, bool]]:
    """Match model and checkpoint names; raise before anything is assigned."""
    _check_background(background)
    mapping = slim_variable_map(model)
    report = LoadReport(unmapped=_unmapped_weights(model, mapping))
    logits_names = logits_variable_names(model)

    wanted: dict[str, keras.Variable] = {}
    for name, var in mapping.items():
        if _starts(name, exclude_scopes):
            report.excluded.append(name)
        else:
            wanted[name] = var
    present: dict[str, tuple[int, ...]] = {}
    for name, shape in available.items():
        if AUXILIARY_CHECKPOINT_NAMES.search(name) or _starts(name, exclude_scopes):
            report.skipped.append(name)
        else:
            present[name] = tuple(int(d) for d in shape)

    missing = [k for k in wanted if k not in present]
    unexpected = [k for k in present if k not in wanted]
    problems = []
    if missing and not ignore_missing:
        problems.append(f"model variables missing from {source} {_fmt(missing)}")
    if unexpected and not ignore_unexpected:
        problems.append(f"{source} variables the model does not have {_fmt(unexpected)}")
    if problems:
        raise ValueError(
            f"Cannot load {source} into {model.name!r}: "
            + "; ".join(problems)
            + ". Pass exclude_scopes=(...) to skip scopes (e.g. the logits), or "
            "ignore_missing=True / ignore_unexpected=True."
        )
    report.missing, report.unexpected = missing, unexpected

    drop: dict[str, bool] = {}
    mismatched = []
    for name, var in wanted.items():
        if name not in present:
            continue
        src, dst = present[name], tuple(int(d) for d in var.shape)
        is_bg = (
            name in logits_names
            and len(src) == len(dst)
            and src[:-1] == dst[:-1]
            and src[-1] == dst[-1] + 1
        )
        if background == "drop" and name in logits_names:
            if not is_bg:
                mismatched.append(
                    f"{name}: checkpoint {src}, model {dst} (background='drop' needs exactly one "
                    "more class in the checkpoint)"
                )
            drop[name] = True
        elif src != dst:
            hint = " (use background='drop' for a 1000-class model)" if is_bg else ""
            mismatched.append(f"{name}: checkpoint {src}, model {dst}{hint}")
        else:
            drop[name] = False
    if mismatched:
        raise ValueError(
            f"Shape mismatch loading {source} into {model.name!r} ({len(mismatched)}): "
            + "; ".join(mismatched)
        )
    return wanted, report, drop


def assign_slim_values(
    model: keras.Model,
    values: Mapping[str, np.ndarray],
    *,
    background: str = "keep",
    exclude_scopes: str | Sequence[str] = (),
    ignore_missing: bool = False,
    ignore_unexpected: bool = False,
) -> LoadReport:
    """Assign in-memory arrays, keyed by slim name, to a model.

    Same checks and semantics as :func:`load_slim_checkpoint`.

    Args:
        model: A model built by :mod:`fer_tf.models`.
        values: ``{slim name: array}``.
        background: See :func:`load_slim_checkpoint`.
        exclude_scopes: See :func:`load_slim_checkpoint`.
        ignore_missing: See :func:`load_slim_checkpoint`.
        ignore_unexpected: See :func:`load_slim_checkpoint`.

    Returns:
        A :class:`LoadReport`.

    Raises:
        ValueError: On unmatched names or shapes (nothing is assigned then).
    """
    shapes = {k: tuple(np.shape(v)) for k, v in values.items()}
    wanted, report, drop = _plan(
        model,
        shapes,
        background=background,
        exclude_scopes=_as_scopes(exclude_scopes),
        ignore_missing=ignore_missing,
        ignore_unexpected=ignore_unexpected,
        source="the given values",
    )
    for name, var in wanted.items():
        if name not in values:
            continue
        value = np.asarray(values[name])
        if drop[name]:
            value = value[..., 1:]
            report.background_dropped.append(name)
        var.assign(value.astype(var.dtype))
        report.loaded.append(name)
    return report


def load_slim_checkpoint(
    model: keras.Model,
    path: str,
    *,
    background: str = "keep",
    exclude_scopes: str | Sequence[str] = (),
    ignore_missing: bool = False,
    ignore_unexpected: bool = False,
) -> LoadReport:
    """Load a TF-Slim (name-based) checkpoint into a :mod:`fer_tf.models` network.

    Every checkpoint variable is matched by its slim name (``InceptionV4/Mixed_5b/...``) to a
    Keras weight. Unmatched names on either side are an error that lists them, unless ignored.
    Global step, optimiser slots and moving-average shadows in the checkpoint are skipped.
    Nothing is assigned unless every check passes.

    Args:
        model: A model built by :mod:`fer_tf.models` (backbone, classifier or
            :func:`~fer_tf.models.heads.build_classifier` model; weights without slim names,
            such as new heads, are left alone and listed in ``LoadReport.unmapped``).
        path: Checkpoint prefix (``.../inception_v4.ckpt``) or a directory with a
            ``checkpoint`` file.
        background: For class-logits variables: ``"keep"`` loads them as they are (1001 classes,
            index 0 = background); ``"drop"`` removes the background row so that a 1000-class
            model loads a 1001-class checkpoint.
        exclude_scopes: Slim scopes (prefixes, or one comma-separated string, as slim's
            ``--checkpoint_exclude_scopes``) not to restore, e.g. ``("InceptionV4/Logits",
            "InceptionV4/AuxLogits")`` to fine-tune new classes.
        ignore_missing: Do not fail on model variables the checkpoint lacks.
        ignore_unexpected: Do not fail on checkpoint variables the model lacks.

    Returns:
        A :class:`LoadReport`.

    Raises:
        ValueError: For a bad ``background``, unmatched names or mismatched shapes.
        FileNotFoundError: If no checkpoint exists at ``path``.
    """
    _check_background(background)
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.NotFoundError, ValueError) as err:
        raise FileNotFoundError(f"No TF checkpoint found at {path!r}: {err}") from None
    shapes = reader.get_variable_to_shape_map()
    wanted, report, drop = _plan(
        model,
        shapes,
        background=background,
        exclude_scopes=_as_scopes(exclude_scopes),
        ignore_missing=ignore_missing,
        ignore_unexpected=ignore_unexpected,
        source=f"checkpoint {path!r}",
    )
    for name, var in wanted.items():
        if name not in shapes:
            continue
        value = reader.get_tensor(name)
        if drop[name]:
            value = value[..., 1:]
            report.background_dropped.append(name)
        var.assign(np.asarray(value, dtype=var.dtype))
        report.loaded.append(name)
    return report


# --------------------------------------------------------------------------- Keras VGG16 (.h5)

_KERAS_VGG_CONV = {
    f"block{b}_conv{i}": f"vgg_16/conv{b}/conv{b}_{i}"
    for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
    for i in range(1, n + 1)
}
_KERAS_VGG_FC = {"fc1": "vgg_16/fc6", "fc2": "vgg_16/fc7", "predictions": "vgg_16/fc8"}


def _read_h5_layers(path: str) -> dict[str, list[np.ndarray]]:
    """Read ``{layer name: [arrays in weight order]}`` from a Keras HDF5 weights file.

    Handles the legacy layout (``layer_names``/``weight_names`` attributes, as in
    ``vgg16_weights_tf_dim_ordering_tf_kernels*.h5`` and ``model.save("x.h5")``) and the
    Keras 3 ``.weights.h5`` layout (``layers/<name>/vars/<i>``).
    """
    import h5py

    def decode(v: Any) -> str:
        return v.decode("utf8") if isinstance(v, bytes) else str(v)

    layers: dict[str, list[np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        root = f.get("model_weights", f)
        if "layer_names" in root.attrs:
            for lname in (decode(n) for n in root.attrs["layer_names"]):
                group = root[lname]
                wnames = [decode(n) for n in group.attrs.get("weight_names", [])]
                if wnames:
                    layers[lname] = [np.asarray(group[w]) for w in wnames]
            return layers
        if "layers" in f:

            def visit(group: Any, prefix: str = "") -> None:
                for key in group:
                    sub = group[key]
                    if not isinstance(sub, h5py.Group):
                        continue
                    if "vars" in sub and len(sub["vars"]):
                        vars_ = sub["vars"]
                        layers[key] = [np.asarray(vars_[str(i)]) for i in range(len(vars_))]
                    elif key != "vars":
                        visit(sub)

            visit(f["layers"])
            return _name_keras3_vgg_layers(layers)
    raise ValueError(f"{path!r} is not a Keras HDF5 weights file (no layer_names, no layers/).")


def _name_keras3_vgg_layers(layers: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """Keras 3 ``.weights.h5`` files key layers by class-based paths (``conv2d``, ``conv2d_1``,
    ``dense`` ...) in creation order; give them the Keras-applications VGG16 names."""

    def ordered(prefix: str) -> list[str]:
        keys = [k for k in layers if k == prefix or re.fullmatch(rf"{prefix}_\d+", k)]
        return sorted(keys, key=lambda k: int(k.rsplit("_", 1)[1]) if k != prefix else 0)

    if any(k in layers for k in _KERAS_VGG_CONV):
        return layers
    named: dict[str, list[np.ndarray]] = {}
    for keras_name, key in zip(_KERAS_VGG_CONV, ordered("conv2d")):
        named[keras_name] = layers[key]
    for keras_name, key in zip(_KERAS_VGG_FC, ordered("dense")):
        named[keras_name] = layers[key]
    return named


def load_keras_vgg16_h5(
    model: keras.Model,
    path: str,
    *,
    include_fc: bool = False,
    bgr_to_rgb: bool = True,
    exclude_scopes: str | Sequence[str] = (),
) -> LoadReport:
    """Load Keras-applications VGG16 ImageNet weights (local ``.h5``) into our slim VGG16.

    Keras names ``blockB_convI`` map to slim ``vgg_16/convB/convB_I``; with ``include_fc``,
    ``fc1``/``fc2``/``predictions`` map to ``fc6``/``fc7``/``fc8`` (``fc1``'s ``[25088, 4096]``
    matrix is reshaped to the ``[7, 7, 512, 4096]`` kernel; Keras flattens HWC row-major).
    Keras-applications VGG16 was trained on BGR ``caffe``-preprocessed input; with
    ``bgr_to_rgb`` the input channels of the first kernel are reversed, so that the model takes
    RGB input with the ``vgg`` preprocessing family (the same channel means).

    Args:
        model: A model from :func:`fer_tf.models.vgg16.vgg16` (any ``include_top``).
        path: Local ``.h5`` file (legacy Keras layout, e.g.
            ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``, or Keras 3 ``.weights.h5``).
        include_fc: Also load the fully connected layers (``include_top`` file needed).
        bgr_to_rgb: Reverse the first kernel's input channels (BGR to RGB).
        exclude_scopes: Slim scopes not to restore (``"vgg_16/fc8"`` for new classes).

    Returns:
        A :class:`LoadReport`.

    Raises:
        ValueError: If the file lacks a layer the model needs or shapes do not match.
        FileNotFoundError: If ``path`` does not exist.
    """
    import os

    if not os.path.exists(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    h5 = _read_h5_layers(path)
    mapping = slim_variable_map(model)
    names = dict(_KERAS_VGG_CONV)
    if include_fc:
        names.update(_KERAS_VGG_FC)
    values: dict[str, np.ndarray] = {}
    absent = []
    excluded = _as_scopes(exclude_scopes)
    for keras_name, scope in names.items():
        if f"{scope}/weights" not in mapping or _starts(f"{scope}/", excluded):
            continue
        if keras_name not in h5:
            absent.append(keras_name)
            continue
        kernel, bias = h5[keras_name][:2]
        target = tuple(int(d) for d in mapping[f"{scope}/weights"].shape)
        if kernel.ndim == 2 and len(target) == 4 and kernel.size == int(np.prod(target)):
            kernel = kernel.reshape(target)
        if keras_name == "block1_conv1" and bgr_to_rgb:
            kernel = kernel[:, :, ::-1, :]
        values[f"{scope}/weights"] = kernel
        values[f"{scope}/biases"] = bias
    if absent:
        raise ValueError(f"{path!r} lacks the Keras VGG16 layers {absent}.")
    if not values:
        raise ValueError(f"Model {model.name!r} has no vgg_16 variables to load.")
    report = assign_slim_values(model, values, ignore_missing=True)
    return report
