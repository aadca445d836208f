"""Losses for the fer_tf tasks, written for custom distributed loops.

Every loss here returns **per-example** values (shape ``[batch]``) except the batch-level
:func:`ccc_loss`; the training loop sums them and divides by the *global* batch size, so the result
is the same on one device and on N replicas.

Unknown labels never contribute:

- AUs: a label of ``-1`` is unknown. :func:`masked_sigmoid_cross_entropy` averages the per-AU
  cross-entropy over the *known* AUs of each example (an example with no known AU contributes 0).
  ``unknown="zero"`` reproduces Bartissol 2017's behaviour (unknowns read as "absent") for comparison.
- classes: a label of ``-1`` gives the example weight 0; a soft target (:func:`soft_cross_entropy`)
  that is all zeros gives weight 0.
- valence/arousal: ``NaN`` targets are masked per dimension.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

__all__ = [
    "masked_sigmoid_cross_entropy",
    "softmax_cross_entropy",
    "soft_cross_entropy",
    "masked_mse",
    "ccc",
    "ccc_loss",
    "balanced_class_weights",
    "chance_loss",
]


def masked_sigmoid_cross_entropy(
    labels: Any, logits: Any, *, unknown: str = "mask", pos_weight: Any = None
) -> tf.Tensor:
    """Per-example multi-label sigmoid cross-entropy with unknown (``-1``) labels masked.

    Args:
        labels: ``[batch, K]`` integers or floats: 1 present, 0 absent, -1 unknown.
        logits: ``[batch, K]`` logits (any float dtype; computed in float32).
        unknown: ``"mask"`` (unknowns add nothing) or ``"zero"`` (unknowns read as 0, Bartissol 2017).
        pos_weight: optional ``[K]`` weights of the positive term (class imbalance).

    Returns:
        ``[batch]`` float32: mean cross-entropy over the example's known AUs (0 when none known).

    Raises:
        ValueError: if ``unknown`` is not ``"mask"`` or ``"zero"``.
    """
    if unknown not in ("mask", "zero"):
        raise ValueError(f"The 'unknown' parameter must be 'mask' or 'zero'. Got {unknown!r}.")
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.float32)
    if unknown == "mask":
        mask = tf.cast(labels >= 0.0, tf.float32)
    else:
        mask = tf.ones_like(labels)
    targets = tf.clip_by_value(labels, 0.0, 1.0)
    if pos_weight is None:
        ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    else:
        ce = tf.nn.weighted_cross_entropy_with_logits(
            labels=targets, logits=logits, pos_weight=tf.cast(pos_weight, tf.float32)
        )
    known = tf.reduce_sum(mask, axis=-1)
    return tf.math.divide_no_nan(tf.reduce_sum(ce * mask, axis=-1), known)


def softmax_cross_entropy(
    labels: Any,
    logits: Any,
    *,
    class_weights: Any = None,
    label_smoothing: float = 0.0,
) -> tf.Tensor:
    """Per-example softmax cross-entropy with optional class weights and label smoothing.

    The weight of an example is ``class_weights[label]`` (Athanasiadis 2022's cost-sensitive loss); an
    unknown label (``-1``) gives weight 0.

    Args:
        labels: ``[batch]`` integer class indices, -1 unknown.
        logits: ``[batch, K]`` logits.
        class_weights: optional ``[K]`` per-class weights.
        label_smoothing: in ``[0, 1]``; the target becomes ``(1 - s) * onehot + s / K``.

    Returns:
        ``[batch]`` float32 weighted losses.

    Raises:
        ValueError: if ``label_smoothing`` is outside ``[0, 1]``.
    """
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    # A hard label is a one-hot target; tf.one_hot gives -1 (unknown) an all-zero row, which
    # soft_cross_entropy weighs 0, and a one-hot row's expected class weight is w[label].
    onehot = tf.one_hot(labels, tf.shape(logits)[-1], dtype=tf.float32)
    return soft_cross_entropy(
        onehot, logits, class_weights=class_weights, label_smoothing=label_smoothing
    )


def soft_cross_entropy(
    targets: Any,
    logits: Any,
    *,
    class_weights: Any = None,
    label_smoothing: float = 0.0,
) -> tf.Tensor:
    """Per-example cross-entropy against a target distribution (soft labels, e.g. FER+ votes).

    ``loss = -sum_k q_k log softmax(logits)_k`` with ``q`` the target renormalised to sum 1. An
    all-zero target row (unknown) has weight 0. With class weights the example's weight is
    ``sum_k q_k w_k`` (the expected weight of its class), which equals ``w[label]`` for a one-hot
    target, as in :func:`softmax_cross_entropy`.

    Args:
        targets: ``[batch, K]`` non-negative class shares (rows need not sum to 1).
        logits: ``[batch, K]`` logits.
        class_weights: optional ``[K]`` per-class weights.
        label_smoothing: in ``[0, 1]``; the target becomes ``(1 - s) * q + s / K``.

    Returns:
        ``[batch]`` float32 weighted losses.

    Raises:
        ValueError: if ``label_smoothing`` is outside ``[0, 1]``.
    """
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(
            f"The 'label_smoothing' parameter must be in [0, 1]. Got {label_smoothing!r} instead."
        )
    logits = tf.cast(logits, tf.float32)
    q = tf.maximum(tf.cast(targets, tf.float32), 0.0)
    total = tf.reduce_sum(q, axis=-1, keepdims=True)
    q = tf.math.divide_no_nan(q, total)
    smoothed = q
    if label_smoothing:
        k = tf.cast(tf.shape(logits)[-1], tf.float32)
        smoothed = q * (1.0 - label_smoothing) + label_smoothing / k
    ce = tf.nn.softmax_cross_entropy_with_logits(labels=smoothed, logits=logits)
    weight = tf.cast(total[:, 0] > 0, tf.float32)
    if class_weights is not None:
        cw = tf.cast(tf.convert_to_tensor(class_weights), tf.float32)
        weight = weight * tf.reduce_sum(q * cw, axis=-1)
    return ce * weight


def masked_mse(targets: Any, predictions: Any) -> tf.Tensor:
    """Per-example mean squared error over the known (non-NaN) target dimensions.

    Args:
        targets: ``[batch, D]`` floats, NaN unknown.
        predictions: ``[batch, D]``.

    Returns:
        ``[batch]`` float32 (0 for an example with no known target).
    """
    targets = tf.cast(targets, tf.float32)
    predictions = tf.cast(predictions, tf.float32)
    known = tf.logical_not(tf.math.is_nan(targets))
    diff = tf.where(known, predictions - tf.where(known, targets, 0.0), 0.0)
    count = tf.reduce_sum(tf.cast(known, tf.float32), axis=-1)
    return tf.math.divide_no_nan(tf.reduce_sum(tf.square(diff), axis=-1), count)


def ccc(targets: Any, predictions: Any) -> tf.Tensor:
    """Lin's concordance correlation coefficient per dimension over a batch (NaN targets masked).

    ``CCC = 2 cov(x, y) / (var(x) + var(y) + (mean(x) - mean(y))^2)`` with population moments.

    Args:
        targets: ``[batch, D]`` floats, NaN unknown.
        predictions: ``[batch, D]``.

    Returns:
        ``[D]`` float32.
    """
    targets = tf.cast(targets, tf.float32)
    predictions = tf.cast(predictions, tf.float32)
    known = tf.cast(tf.logical_not(tf.math.is_nan(targets)), tf.float32)
    y = tf.where(known > 0, targets, 0.0)
    x = predictions * known
    n = tf.reduce_sum(known, axis=0)
    mx = tf.math.divide_no_nan(tf.reduce_sum(x, axis=0), n)
    my = tf.math.divide_no_nan(tf.reduce_sum(y, axis=0), n)
    dx = (predictions - mx) * known
    dy = (y - my) * known
    vx = tf.math.divide_no_nan(tf.reduce_sum(dx * dx, axis=0), n)
    vy = tf.math.divide_no_nan(tf.reduce_sum(dy * dy, axis=0), n)
    cov = tf.math.divide_no_nan(tf.reduce_sum(dx * dy, axis=0), n)
    return tf.math.divide_no_nan(2.0 * cov, vx + vy + tf.square(mx - my))


def ccc_loss(targets: Any, predictions: Any) -> tf.Tensor:
    """``1 - CCC`` averaged over dimensions: a scalar batch-level loss.

    Args:
        targets: ``[batch, D]`` floats, NaN unknown.
        predictions: ``[batch, D]``.

    Returns:
        Scalar float32 in ``[0, 2]``.
    """
    return tf.reduce_mean(1.0 - ccc(targets, predictions))


def balanced_class_weights(counts: Sequence[float] | np.ndarray) -> np.ndarray:
    """scikit-learn's ``balanced`` weights ``n / (K * count_k)`` from per-class counts.

    Args:
        counts: number of training examples per class.

    Returns:
        ``[K]`` float32 weights; a class with no examples gets weight 0.

    Raises:
        ValueError: if ``counts`` is empty, negative or sums to 0.
    """
    c = np.asarray(counts, dtype=np.float64).reshape(-1)
    if c.size == 0 or np.any(c < 0) or c.sum() <= 0:
        raise ValueError(
            f"The 'counts' parameter must be non-negative class counts with a positive sum. "
            f"Got {list(c)} instead."
        )
    with np.errstate(divide="ignore"):
        w = np.where(c > 0, c.sum() / (c.size * c), 0.0)
    return w.astype(np.float32)


def chance_loss(num_classes: int) -> float:
    """Cross-entropy of a uniform guess, ``ln K`` (Christensen 2018: ln 2 = 0.69, ln 12 = 2.48).

    Args:
        num_classes: K >= 2.

    Returns:
        ``ln K``.

    Raises:
        ValueError: if ``num_classes < 2``.
    """
    if int(num_classes) < 2:
        raise ValueError(f"The 'num_classes' parameter must be >= 2. Got {num_classes!r}.")
    return math.log(int(num_classes))
