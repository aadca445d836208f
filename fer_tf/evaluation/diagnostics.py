"""Diagnostics the theses used: angular separation of hidden units (Korber, after Gedeon), and
first-layer filters, feature maps and prediction grids (Amaya & Dave §3.4.3).

- :func:`angular_separation`: the angles between hidden units' activation vectors over a fixed
  probe batch. Each unit of a named end point is a channel, its activation over the probe the
  channel's global average (an ``[N, C]`` matrix); a seeded sample of at most ``max_units``
  channels, one matrix product for their cosine matrix, the angles of the unit pairs in degrees.
  Angles near 0 (or 180 with ``center``) mark redundant (duplicate or complementary) units;
  a distribution that stops moving over the epochs marks a network that stopped learning.
  :class:`fer_tf.training.actions.AngularSeparation` logs it during training.
- :func:`plot_filters`, :func:`plot_feature_maps`, :func:`plot_predictions`: matplotlib figures.

Importing this module loads no TensorFlow; the functions that run a model do.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "angular_separation",
    "pooled_activations",
    "endpoint_features",
    "penultimate_end_point",
    "angle_summary",
    "plot_angle_distribution",
    "plot_filters",
    "plot_feature_maps",
    "plot_predictions",
    "predict_classes",
    "unit_angles",
    "diagnose_run",
]

_ENDPOINT_MODELS: dict[tuple[int, str], Any] = {}


def penultimate_end_point(model: Any) -> str:
    """The end point before ``Logits`` (the embedding a classifier's last layer reads).

    Args:
        model: a model built by :mod:`fer_tf.models`.

    Returns:
        The end point name.

    Raises:
        ValueError: the model has fewer than two end points.
    """
    from fer_tf.models.endpoints import list_endpoints

    names = [n for n in list_endpoints(model) if "aux" not in n.lower()]
    if "Logits" in names:
        names = names[: names.index("Logits")]
    if not names:
        raise ValueError(f"Model {model.name!r} has no end point before its logits.")
    return names[-1]


def _endpoint_model(model: Any, end_point: str) -> Any:
    from fer_tf.models.endpoints import get_endpoints_model

    key = (id(model), end_point)
    if key not in _ENDPOINT_MODELS:
        _ENDPOINT_MODELS.clear()  # one model at a time: do not keep old models alive
        _ENDPOINT_MODELS[key] = get_endpoints_model(model, [end_point])
    return _ENDPOINT_MODELS[key]


def endpoint_features(model: Any, images: Any, end_point: str | None = None) -> np.ndarray:
    """An end point's output for ``images``, spatial maps averaged to one value per channel.

    Args:
        model: a model built by :mod:`fer_tf.models`.
        images: ``[N, H, W, C]`` preprocessed images (array or tensor).
        end_point: the end point (default: :func:`penultimate_end_point`).

    Returns:
        ``[N, C]`` float32 (``[N, H, W, C]`` outputs are global-average-pooled; other ranks
        flattened).
    """
    name = end_point or penultimate_end_point(model)
    out = _endpoint_model(model, name)(images, training=False)
    x = np.asarray(next(iter(out.values())), dtype=np.float32)
    if x.ndim == 4:
        return x.mean(axis=(1, 2))
    return x.reshape(len(x), -1)


def pooled_activations(model: Any, images: Any, end_point: str, batch_size: int = 64) -> np.ndarray:
    """:func:`endpoint_features` in batches: the ``[N, C]`` unit activations over a probe.

    Args:
        model: the model.
        images: ``[N, H, W, C]`` probe images.
        end_point: the end point.
        batch_size: images per forward pass.

    Returns:
        ``[N, C]`` float32.
    """
    images = np.asarray(images, dtype=np.float32)
    parts = [
        endpoint_features(model, images[i : i + batch_size], end_point)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(parts)


def unit_angles(
    activations: np.ndarray, max_units: int | None = 256, seed: int = 0, center: bool = False
) -> np.ndarray:
    """Angles (degrees) between the columns of an ``[N, C]`` activation matrix, unit pairs only.

    Args:
        activations: ``[N, C]``: each column a unit's activation vector over N probes.
        max_units: sample this many units (seeded) when there are more (None: all).
        seed: the sampling seed.
        center: subtract each unit's mean over the probes first (angles in 0..180, as Gedeon
            measured sigmoid units about 0.5); default: raw vectors (ReLU units: 0..90).

    Returns:
        ``[U * (U - 1) / 2]`` float64 angles of the sampled units' pairs; units whose vector is
        zero (dead over the whole probe) are left out.
    """
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"The 'activations' parameter must be [N, C]. Got shape {a.shape}.")
    c = a.shape[1]
    if max_units is not None and c > max_units:
        cols = np.sort(np.random.default_rng(seed).choice(c, int(max_units), replace=False))
        a = a[:, cols]
    if center:
        a = a - a.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(a, axis=0)
    alive = norms > 1e-12 * max(float(norms.max(initial=0.0)), 1.0)
    v = a[:, alive] / norms[alive]
    cos = np.clip(v.T @ v, -1.0, 1.0)  # one matrix product: every pair's cosine
    i, j = np.triu_indices(cos.shape[0], k=1)
    return np.degrees(np.arccos(cos[i, j]))


def angular_separation(
    model: Any,
    images: Any,
    end_point: str | None = None,
    max_units: int | None = 256,
    seed: int = 0,
    *,
    center: bool = False,
    batch_size: int = 64,
) -> np.ndarray:
    """Angles between hidden units' activation vectors over a probe batch (Gedeon 1995).

    Args:
        model: a model built by :mod:`fer_tf.models`.
        images: ``[N, H, W, C]`` preprocessed probe images (fixed across calls).
        end_point: the end point whose channels are the units (default: the penultimate).
        max_units: units sampled (seeded; the same units every call).
        seed: the sampling seed.
        center: see :func:`unit_angles`.
        batch_size: images per forward pass.

    Returns:
        The pair angles in degrees (:func:`unit_angles`).

    Raises:
        ValueError: an unknown end point.
    """
    from fer_tf.checks import check_number

    check_number("max_units", max_units, min=2, integer=True, allow_none=True)
    name = end_point or penultimate_end_point(model)
    acts = pooled_activations(model, images, name, batch_size)
    return unit_angles(acts, max_units, seed, center)


def angle_summary(angles: np.ndarray) -> dict[str, float]:
    """``mean``, ``min``, ``p05``, ``median``, ``p95``, ``max`` of pair angles, and ``pairs``
    and ``units`` (the live units measured: ``pairs = units * (units - 1) / 2``)."""
    a = np.asarray(angles, dtype=np.float64)
    units = float(round((1 + math.sqrt(1 + 8 * a.size)) / 2)) if a.size else 0.0
    if a.size == 0:
        nan = float("nan")
        keys = ("mean", "min", "p05", "median", "p95", "max")
        return dict.fromkeys(keys, nan) | {"pairs": 0.0, "units": units}
    q = np.percentile(a, [5, 50, 95])
    return {
        "mean": float(a.mean()),
        "min": float(a.min()),
        "p05": float(q[0]),
        "median": float(q[1]),
        "p95": float(q[2]),
        "max": float(a.max()),
        "pairs": float(a.size),
        "units": units,
    }


# ---------------------------------------------------------------------------------------------
# Figures


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_angle_distribution(
    history: Sequence[tuple[int, np.ndarray]], title: str = "Angular separation"
) -> Any:
    """Violins of the pair angles per logged epoch, with the median and 5-95% band.

    Args:
        history: ``(epoch, angles)`` per logged epoch.
        title: the figure title.

    Returns:
        The matplotlib ``Figure``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(history) + 3), 4.2))
    epochs = [e for e, _ in history]
    data = [np.asarray(a, dtype=np.float64) for _, a in history]
    shown = [(e, a) for e, a in zip(epochs, data) if a.size]
    if shown:
        width = 0.8 * (min(np.diff(epochs)) if len(epochs) > 1 else 1)
        ax.violinplot([a for _, a in shown], [e for e, _ in shown], widths=width, showextrema=False)
        q = np.array([np.percentile(a, [5, 50, 95]) for _, a in shown])
        x = [e for e, _ in shown]
        ax.fill_between(x, q[:, 0], q[:, 2], alpha=0.15, color="grey", label="5-95%")
        ax.plot(x, q[:, 1], "o-", ms=3, c="black", label="median")
        ax.plot(x, [a.min() for _, a in shown], "v:", ms=3, c="red", label="min")
        ax.legend(fontsize=8, loc="best")
    from fer_tf.evaluation.plots import _integer_epochs

    _integer_epochs(ax, epochs)
    ax.set_xlabel("epoch (0: before training)")
    ax.set_ylabel("angle between unit activation vectors (degrees)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _first_kernel_layer(model: Any, layer: str | None) -> tuple[str, np.ndarray]:
    from fer_tf.models.endpoints import iter_layers

    for lyr in iter_layers(model):
        if layer is not None and lyr.name != layer and getattr(lyr, "endpoint", None) != layer:
            continue
        kernels = [w for w in lyr.weights if len(w.shape) == 4]
        if kernels:
            return lyr.name, np.asarray(kernels[0].numpy())
        if layer is not None:
            raise ValueError(f"Layer {layer!r} has no 4-D convolution kernel.")
    where = f"named {layer!r}" if layer else "with a 4-D convolution kernel"
    raise ValueError(f"Model {model.name!r} has no layer {where}.")


def plot_filters(model: Any, layer: str | None = None, max_filters: int = 64) -> Any:
    """A convolution layer's filters as a grid (default: the first convolution).

    Each output filter is one panel: RGB for 3 input channels, grey for 1, the mean over the
    input channels otherwise; each scaled to its own min-max.

    Args:
        model: a Keras model.
        layer: a layer or end point name (default: the first layer with a 4-D kernel).
        max_filters: show at most this many filters.

    Returns:
        The matplotlib ``Figure`` (one image axes per filter shown).

    Raises:
        ValueError: no such layer, or it has no 4-D kernel.
    """
    plt = _pyplot()
    name, k = _first_kernel_layer(model, layer)  # [kh, kw, cin, cout]
    n = min(k.shape[3], max_filters)
    cols = min(8, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(1.1 * cols + 0.4, 1.1 * rows + 0.6), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            ax.remove()
            continue
        f = k[:, :, :, i]
        f = f if f.shape[2] == 3 else f.mean(axis=2)
        f = (f - f.min()) / max(float(f.max() - f.min()), 1e-12)
        ax.imshow(f, cmap=None if f.ndim == 3 else "gray", interpolation="nearest")
    fig.suptitle(f"{name}: {n} of {k.shape[3]} filters ({k.shape[0]}x{k.shape[1]})", fontsize=9)
    fig.tight_layout()
    return fig


def _display(image: np.ndarray) -> np.ndarray:
    """A preprocessed image scaled to ``[0, 1]`` for display (grey as 2-D)."""
    x = np.asarray(image, dtype=np.float64)
    x = (x - x.min()) / max(float(x.max() - x.min()), 1e-12)
    return x[..., 0] if x.shape[-1] == 1 else x


def plot_feature_maps(model: Any, image: Any, end_points: Sequence[str], max_maps: int = 16) -> Any:
    """Feature maps of named end points for one input image: one row per end point.

    Args:
        model: a model built by :mod:`fer_tf.models`.
        image: ``[H, W, C]`` (or ``[1, H, W, C]``) preprocessed image.
        end_points: end point names (spatial ones show maps; vectors show as one strip).
        max_maps: channels shown per end point (the first ones).

    Returns:
        The matplotlib ``Figure``: the input image, then ``max_maps`` panels per row.

    Raises:
        ValueError: an unknown end point, or none given.
    """
    from fer_tf.models.endpoints import get_endpoints_model

    if not end_points:
        raise ValueError("The 'end_points' parameter must name at least one end point.")
    x = np.asarray(image, dtype=np.float32)
    x = x[None] if x.ndim == 3 else x[:1]
    outs = get_endpoints_model(model, list(end_points))(x, training=False)
    plt = _pyplot()
    rows, cols = len(end_points), max_maps + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.05 * cols, 1.15 * rows + 0.4), squeeze=False)
    for r, (name, value) in enumerate(outs.items()):
        fmap = np.asarray(value)[0]
        row = axes[r]
        for ax in row:
            ax.axis("off")
        row[0].imshow(_display(x[0]), cmap="gray")
        row[0].set_title(name, fontsize=7)
        if fmap.ndim != 3:
            row[1].imshow(fmap.reshape(1, -1), aspect="auto", cmap="viridis")
            for ax in row[2:]:
                ax.remove()
            continue
        for c, ax in enumerate(row[1:]):
            if c < fmap.shape[-1]:
                ax.imshow(fmap[:, :, c], cmap="viridis")
            else:
                ax.remove()
    fig.suptitle("Feature maps (first column: the input)", fontsize=9)
    fig.tight_layout()
    return fig


def _load_any_model(model: Any) -> Any:
    if isinstance(model, (str, os.PathLike)):
        from fer_tf.evaluation.evaluator import load_model
        from fer_tf.evaluation.runs import load_run

        return load_model(load_run(model))
    return model


def predict_classes(model: Any, images: Any, batch_size: int = 64) -> np.ndarray:
    """Argmax class of a classifier's main output (``logits`` of a dict output)."""
    net = _load_any_model(model)
    images = np.asarray(images, dtype=np.float32)
    preds = []
    for i in range(0, len(images), batch_size):
        out = net(images[i : i + batch_size], training=False)
        if isinstance(out, dict):
            out = out.get("logits", next(iter(out.values())))
        preds.append(np.asarray(out).argmax(axis=-1))
    return np.concatenate(preds) if preds else np.zeros((0,), np.int64)


def plot_predictions(
    model: Any,
    images: Any,
    true_labels: Sequence[int],
    class_names: Sequence[str],
    max_images: int = 25,
) -> Any:
    """A grid of images with predicted and true labels; wrong predictions in red.

    Args:
        model: a Keras classifier, or a run directory (its ``best.keras``).
        images: ``[N, H, W, C]`` preprocessed images (the model's input).
        true_labels: ``[N]`` class indices (-1: unknown).
        class_names: the class names.
        max_images: show at most this many (the first).

    Returns:
        The matplotlib ``Figure`` (one image axes per image shown).
    """
    images = np.asarray(images, dtype=np.float32)[:max_images]
    y = np.asarray(true_labels)[: len(images)]
    pred = predict_classes(model, images)
    plt = _pyplot()
    n = len(images)
    cols = min(5, max(n, 1))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.25 * rows + 0.3), squeeze=False)
    names = list(class_names)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            ax.remove()
            continue
        ax.imshow(_display(images[i]), cmap="gray")
        true = names[y[i]] if 0 <= y[i] < len(names) else "?"
        ok = pred[i] == y[i]
        ax.set_title(
            f"pred {names[pred[i]]}\ntrue {true}", fontsize=7, color="green" if ok else "red"
        )
    wrong = int((pred != y)[y >= 0].sum())
    fig.suptitle(f"Predictions: {n - wrong} of {n} right (red: wrong)", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# A run's diagnostics in one call (fer-tf-diagnose)


def _run_images(run: Any, records: str, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` images of a split through the run's evaluation pipeline, and labels."""
    from fer_tf.data.pipeline import make_dataset
    from fer_tf.evaluation.evaluator import _pipeline_fields

    fields = _pipeline_fields(run, run.task, records)  # grey and channels as in training
    fields["include_ids"] = False
    if run.task.is_classification:
        fields["unknown"] = "drop"
    xs, ys, got = [], [], 0
    for x, t in make_dataset(records, split=split, batch_size=min(n, 64), **fields):
        xs.append(x.numpy())
        ys.append(t[run.task.name].numpy())
        got += len(xs[-1])
        if got >= n:
            break
    if not xs:
        raise ValueError(f"Split {split!r} of the records in '{records}' holds no example.")
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def diagnose_run(
    run_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    records: str | os.PathLike[str] | None = None,
    split: str = "val",
    end_points: Sequence[str] | None = None,
    num_images: int = 20,
    max_units: int = 256,
) -> list[str]:
    """Write a trained run's diagnostics: ``filters.png``, ``feature_maps.png``,
    ``predictions.png`` (classification runs) and ``angular_separation.png``.

    Args:
        run_dir: the run directory (``fer-tf-train``).
        output_dir: where the PNGs go.
        records: the records (default: the run's ``data.records``).
        split: the split the images come from.
        end_points: feature-map end points (default: the first two).
        num_images: images in the prediction grid and the angular-separation probe.
        max_units: units sampled for the angular separation (at the penultimate end point).

    Returns:
        The PNG file names written.

    Raises:
        EvaluationError: not a run directory, or no records.
        ValueError: an unknown end point, or an empty split.
    """
    from pathlib import Path

    from fer_tf.evaluation.evaluator import load_model
    from fer_tf.evaluation.runs import EvaluationError, load_run
    from fer_tf.models.endpoints import list_endpoints

    run = load_run(run_dir)
    records = records or run.config.data.records
    if not records:
        raise EvaluationError(f"The run '{run_dir}' names no records; pass --records.")
    model = load_model(run)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    x, y = _run_images(run, str(records), split, num_images)
    eps = list(end_points or list_endpoints(model)[:2])
    figures = {
        "filters.png": plot_filters(model),
        "feature_maps.png": plot_feature_maps(model, x[0], eps),
    }
    if run.task.is_classification:
        names = list(run.task.output_names)
        figures["predictions.png"] = plot_predictions(model, x, y, names, max_images=num_images)
    ep = penultimate_end_point(model)
    angles = angular_separation(model, x, ep, max_units)
    figures["angular_separation.png"] = plot_angle_distribution(
        [(run.config.train.epochs, angles)],
        f"Angular separation of {ep} ({len(x)} images of split {split!r})",
    )
    plt = _pyplot()
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
    return list(figures)
