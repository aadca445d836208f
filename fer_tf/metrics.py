"""Streaming metrics that stay exact under ``tf.distribute``.

A metric set splits into two halves:

- :meth:`StreamingMetrics.batch_stats` runs in the graph on each replica and returns **additive**
  statistics of one batch (confusion counts, score histograms, sums of moments);
- the training loop sums those statistics across replicas (``strategy.reduce(SUM)``) and across
  the steps of a ``steps_per_execution`` call, then :meth:`StreamingMetrics.update_from_stats` adds
  them into float64 accumulators on the host, and :meth:`StreamingMetrics.result` turns the totals
  into metrics.

Because every statistic is a sum, the result does not depend on how a batch is split across
replicas or hosts: F1 from summed TP/FP/FN is the F1 of the whole evaluation set, not a mean of
per-batch F1s. Unknown labels (AU ``-1``, class ``-1``, NaN targets) are left out of every count.

Four sets match the tasks: :class:`AUMetrics` (multi-label), :class:`RegressionMetrics`
(valence/arousal), :class:`ClassificationMetrics` (posed, emotion) and
:class:`AUIntensityMetrics` (AU intensity: ICC(3,1), Pearson, MAE).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "StreamingMetrics",
    "AUMetrics",
    "RegressionMetrics",
    "ClassificationMetrics",
    "AUIntensityMetrics",
    "icc_3_1",
    "majority_baseline",
]


def _div(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    out = np.zeros(np.broadcast(a, b).shape, dtype=np.float64)
    np.divide(a, b, out=out, where=b != 0)
    return out


class StreamingMetrics:
    """Base class: host-side float64 accumulators fed with additive batch statistics.

    Subclasses define :meth:`stat_shapes`, :meth:`batch_stats` and :meth:`result`.
    """

    def __init__(self) -> None:
        self._totals: dict[str, np.ndarray] = {}
        self.reset_state()

    # -- to override ---------------------------------------------------------------------------
    def stat_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the additive statistics, by name.

        Returns:
            ``name -> shape``; :meth:`batch_stats` returns exactly these keys and shapes.
        """
        raise NotImplementedError

    def batch_stats(self, labels: Any, outputs: Any) -> dict[str, Any]:
        """Additive statistics of one batch, as float32 tensors (graph-safe, per replica).

        Args:
            labels: the task's label tensor (see :mod:`fer_tf.tasks`).
            outputs: the model's float32 outputs (logits for classification tasks).

        Returns:
            A dict with exactly the keys and shapes of :meth:`stat_shapes`.
        """
        raise NotImplementedError

    def result(self) -> dict[str, float]:
        """All metrics of the accumulated statistics.

        Returns:
            A flat ``name -> float`` dict.
        """
        raise NotImplementedError

    def summary(self) -> dict[str, float]:
        """The headline metrics (for progress bars and ``history.csv``).

        Returns:
            A subset of :meth:`result` (all of it unless a subclass narrows it).
        """
        return self.result()

    # -- common --------------------------------------------------------------------------------
    def reset_state(self) -> None:
        """Zero the accumulators."""
        self._totals = {k: np.zeros(s, dtype=np.float64) for k, s in self.stat_shapes().items()}

    def zero_stats(self) -> dict[str, Any]:
        """Zero float32 tensors with the statistics' shapes (loop accumulators)."""
        import tensorflow as tf

        return {k: tf.zeros(s, tf.float32) for k, s in self.stat_shapes().items()}

    def update_from_stats(self, stats: Mapping[str, Any]) -> None:
        """Add (already cross-replica-reduced) statistics to the totals.

        Args:
            stats: arrays or tensors keyed like :meth:`stat_shapes`.

        Raises:
            KeyError: if a statistic is missing.
        """
        for k in self._totals:
            if k not in stats:
                raise KeyError(f"The statistics lack {k!r}; got keys {sorted(stats)}.")
            self._totals[k] += np.asarray(stats[k], dtype=np.float64).reshape(self._totals[k].shape)

    def update_state(self, labels: Any, outputs: Any) -> None:
        """Eager convenience: compute the batch statistics and add them.

        Args:
            labels: label array or tensor.
            outputs: model outputs.
        """
        stats = self.batch_stats(labels, outputs)
        self.update_from_stats({k: np.asarray(v) for k, v in stats.items()})

    @property
    def totals(self) -> dict[str, np.ndarray]:
        """A copy of the accumulated statistics."""
        return {k: v.copy() for k, v in self._totals.items()}


class AUMetrics(StreamingMetrics):
    """Multi-label AU metrics (Bartissol 2017 §2.4.6): per-AU and mean F1, precision, recall,
    accuracy, AUC; partial accuracy; subset (total) accuracy; TP/FP/TN/FN.

    A prediction is positive when ``sigmoid(logit) > threshold``. Labels are 1/0/-1 (unknown);
    unknown labels are excluded from every count. AUC is the Mann–Whitney statistic on scores
    binned into ``num_bins`` equal bins of ``[0, 1]`` (exact when no positive and negative share a
    bin; ties inside a bin count one half).

    Args:
        names: one name per AU (e.g. ``("AU1", "AU2")``).
        threshold: decision threshold on the probability.
        num_bins: histogram bins for AUC.
    """

    def __init__(self, names: Sequence[str], threshold: float = 0.5, num_bins: int = 1000) -> None:
        if not names:
            raise ValueError("The 'names' parameter must name at least one AU. Got none.")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"The 'threshold' parameter must be in (0, 1). Got {threshold!r}.")
        self.names = tuple(str(n) for n in names)
        self.threshold = float(threshold)
        self.num_bins = int(num_bins)
        super().__init__()

    def stat_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the additive statistics for ``K = len(names)`` AUs.

        Returns:
            ``tp``, ``fp``, ``tn``, ``fn``: ``(K,)`` confusion counts; ``pos_hist``,
            ``neg_hist``: ``(K, num_bins)`` score histograms of known positives/negatives (AUC);
            ``partial_sum``, ``exact_sum``: ``()`` sums of per-example partial and subset
            accuracy; ``examples``: ``()`` examples with at least one known AU.
        """
        k = len(self.names)
        return {
            "tp": (k,),
            "fp": (k,),
            "tn": (k,),
            "fn": (k,),
            "pos_hist": (k, self.num_bins),
            "neg_hist": (k, self.num_bins),
            "partial_sum": (),
            "exact_sum": (),
            "examples": (),
        }

    def batch_stats(self, labels: Any, outputs: Any) -> dict[str, Any]:
        """Additive statistics of one batch (graph-safe; runs per replica).

        Args:
            labels: ``[B, K]`` AU labels, 1 present, 0 absent, -1 unknown (any numeric dtype).
            outputs: ``[B, K]`` logits; a prediction is positive when
                ``sigmoid(logit) > threshold``.

        Returns:
            float32 tensors keyed and shaped as :meth:`stat_shapes`; unknown labels add nothing.
        """
        import tensorflow as tf

        k = len(self.names)
        logits = tf.cast(outputs, tf.float32)
        labels = tf.cast(labels, tf.float32)
        known = tf.cast(labels >= 0.0, tf.float32)
        y = tf.cast(labels > 0.5, tf.float32)
        prob = tf.sigmoid(logits)
        p = tf.cast(prob > self.threshold, tf.float32)
        tp = tf.reduce_sum(known * y * p, axis=0)
        fp = tf.reduce_sum(known * (1 - y) * p, axis=0)
        tn = tf.reduce_sum(known * (1 - y) * (1 - p), axis=0)
        fn = tf.reduce_sum(known * y * (1 - p), axis=0)
        bins = tf.clip_by_value(
            tf.cast(tf.floor(prob * self.num_bins), tf.int32), 0, self.num_bins - 1
        )
        seg = bins + tf.range(k, dtype=tf.int32)[tf.newaxis, :] * self.num_bins
        pos = tf.math.unsorted_segment_sum(known * y, seg, k * self.num_bins)
        neg = tf.math.unsorted_segment_sum(known * (1 - y), seg, k * self.num_bins)
        n_known = tf.reduce_sum(known, axis=-1)
        correct = tf.reduce_sum(known * tf.cast(tf.equal(y, p), tf.float32), axis=-1)
        has = tf.cast(n_known > 0, tf.float32)
        return {
            "tp": tp,
            "fp": fp,
            "tn": tn,
            "fn": fn,
            "pos_hist": tf.reshape(pos, [k, self.num_bins]),
            "neg_hist": tf.reshape(neg, [k, self.num_bins]),
            "partial_sum": tf.reduce_sum(tf.math.divide_no_nan(correct, n_known)),
            "exact_sum": tf.reduce_sum(has * tf.cast(tf.equal(correct, n_known), tf.float32)),
            "examples": tf.reduce_sum(has),
        }

    def per_au(self) -> dict[str, np.ndarray]:
        """Per-AU arrays: tp, fp, tn, fn, precision, recall, f1, accuracy, auc, support."""
        t = self._totals
        tp, fp, tn, fn = t["tp"], t["fp"], t["tn"], t["fn"]
        pos, neg = t["pos_hist"], t["neg_hist"]
        neg_below = np.cumsum(neg, axis=1) - neg
        p_total, n_total = pos.sum(axis=1), neg.sum(axis=1)
        auc_num = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
        auc = np.where((p_total > 0) & (n_total > 0), _div(auc_num, p_total * n_total), np.nan)
        return {
            "tp": tp,
            "fp": fp,
            "tn": tn,
            "fn": fn,
            "precision": _div(tp, tp + fp),
            "recall": _div(tp, tp + fn),
            "f1": _div(2 * tp, 2 * tp + fp + fn),
            "accuracy": _div(tp + tn, tp + fp + tn + fn),
            "auc": auc,
            "support": tp + fn,
        }

    def result(self) -> dict[str, float]:
        """Metrics of everything accumulated since the last :meth:`reset_state`.

        Returns:
            A flat dict: ``f1_mean``, ``precision_mean``, ``recall_mean``, ``accuracy_mean``
            (unweighted means over AUs), ``auc_mean`` (mean over AUs with both classes seen; NaN
            if none), ``f1_micro``, ``partial_accuracy``, ``subset_accuracy``; Bartissol 2017's
            pooled figures over all known (example, AU) cells: ``total_accuracy``,
            ``precision_pooled``, ``recall_pooled`` (with ``f1_micro``, her "F1 score") and
            ``auc_pooled`` (one ROC over every cell's score; NaN without both classes); the
            summed ``tp``,
            ``fp``, ``tn``, ``fn``, and per AU ``f1/<name>``, ``precision/<name>``,
            ``recall/<name>``, ``accuracy/<name>``, ``auc/<name>``. Ratios with a zero
            denominator are 0.
        """
        per = self.per_au()
        t = self._totals
        out: dict[str, float] = {}
        for key in ("f1", "precision", "recall", "accuracy"):
            out[f"{key}_mean"] = float(np.mean(per[key]))
        auc = per["auc"]
        out["auc_mean"] = float(np.nanmean(auc)) if np.any(~np.isnan(auc)) else float("nan")
        tp, fp, tn, fn = (float(per[k].sum()) for k in ("tp", "fp", "tn", "fn"))
        out["f1_micro"] = float(_div(2 * tp, 2 * tp + fp + fn))
        out["partial_accuracy"] = float(_div(t["partial_sum"], t["examples"]))
        out["subset_accuracy"] = float(_div(t["exact_sum"], t["examples"]))
        out.update(_pooled(tp, fp, tn, fn, t["pos_hist"], t["neg_hist"]))
        out.update({"tp": tp, "fp": fp, "tn": tn, "fn": fn})
        for i, name in enumerate(self.names):
            for key in ("f1", "precision", "recall", "accuracy", "auc"):
                out[f"{key}/{name}"] = float(per[key][i])
        return out

    def summary(self) -> dict[str, float]:
        """The headline AU metrics (progress bars, ``history.csv``).

        Returns:
            ``f1_mean``, ``precision_mean``, ``recall_mean``, ``accuracy_mean``, ``auc_mean``,
            ``partial_accuracy`` and ``subset_accuracy`` from :meth:`result`.
        """
        r = self.result()
        keys = ("f1_mean", "precision_mean", "recall_mean", "accuracy_mean", "auc_mean")
        return {k: r[k] for k in (*keys, "partial_accuracy", "subset_accuracy")}


def _pooled(
    tp: float, fp: float, tn: float, fn: float, pos_hist: np.ndarray, neg_hist: np.ndarray
) -> dict[str, float]:
    """Bartissol 2017's AU figures, pooled over every known (example, AU) cell.

    Her Table 4 (Inception V2, 60 AUs): TP 1,094, FP 1,240, TN 373,967, FN 7,699 give total
    accuracy 0.9767, precision 1094/2334 = 0.469 and recall 0.124, as her Table 3 reports.

    Args:
        tp: true positives summed over AUs; likewise ``fp``, ``tn``, ``fn``.
        fp: false positives.
        tn: true negatives.
        fn: false negatives.
        pos_hist: ``(K, bins)`` score histograms of the known positives.
        neg_hist: ``(K, bins)`` score histograms of the known negatives.

    Returns:
        ``total_accuracy``, ``precision_pooled``, ``recall_pooled``, ``auc_pooled``.
    """
    pos, neg = np.asarray(pos_hist).sum(axis=0), np.asarray(neg_hist).sum(axis=0)
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    if n_pos > 0 and n_neg > 0:
        below = np.cumsum(neg) - neg
        auc = float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))
    else:
        auc = float("nan")
    return {
        "total_accuracy": float(_div(tp + tn, tp + fp + tn + fn)),
        "precision_pooled": float(_div(tp, tp + fp)),
        "recall_pooled": float(_div(tp, tp + fn)),
        "auc_pooled": auc,
    }


class RegressionMetrics(StreamingMetrics):
    """Valence/arousal metrics per dimension and averaged: MSE, RMSE, MAE, Pearson r, CCC.

    NaN targets are left out. Moments are accumulated as sums, so the result is exact over the
    whole set.

    Args:
        names: one name per output dimension, e.g. ``("valence", "arousal")``.
    """

    def __init__(self, names: Sequence[str] = ("valence", "arousal")) -> None:
        if not names:
            raise ValueError("The 'names' parameter must name at least one dimension. Got none.")
        self.names = tuple(str(n) for n in names)
        super().__init__()

    def stat_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the additive statistics for ``D = len(names)`` dimensions.

        Returns:
            Seven ``(D,)`` sums over known targets: ``n`` (count), ``sx``, ``sy``, ``sxx``,
            ``syy``, ``sxy`` (first and second moments of predictions x and targets y) and
            ``sae`` (absolute errors).
        """
        d = (len(self.names),)
        return {k: d for k in ("n", "sx", "sy", "sxx", "syy", "sxy", "sae")}

    def batch_stats(self, labels: Any, outputs: Any) -> dict[str, Any]:
        """Additive statistics of one batch (graph-safe; runs per replica).

        Args:
            labels: ``[B, D]`` targets; NaN marks an unknown target, left out per dimension.
            outputs: ``[B, D]`` predictions.

        Returns:
            float32 tensors keyed and shaped as :meth:`stat_shapes`.
        """
        import tensorflow as tf

        y = tf.cast(labels, tf.float32)
        x = tf.cast(outputs, tf.float32)
        known = tf.logical_not(tf.math.is_nan(y))
        m = tf.cast(known, tf.float32)
        y = tf.where(known, y, 0.0)
        x = tf.where(known, x, 0.0)
        return {
            "n": tf.reduce_sum(m, 0),
            "sx": tf.reduce_sum(x, 0),
            "sy": tf.reduce_sum(y, 0),
            "sxx": tf.reduce_sum(x * x, 0),
            "syy": tf.reduce_sum(y * y, 0),
            "sxy": tf.reduce_sum(x * y, 0),
            "sae": tf.reduce_sum(tf.abs(x - y), 0),
        }

    def result(self) -> dict[str, float]:
        """Metrics of everything accumulated since the last :meth:`reset_state`.

        Returns:
            A flat dict with ``mse``, ``rmse``, ``mae``, ``pearson`` and ``ccc`` per dimension
            (``<metric>/<name>``) and averaged over dimensions (``<metric>_mean``). Moments use
            population (1/n) normalisation; a dimension with no known target, or zero variance
            for Pearson, gives 0.
        """
        t = self._totals
        n = t["n"]
        mx, my = _div(t["sx"], n), _div(t["sy"], n)
        vx = np.maximum(_div(t["sxx"], n) - mx**2, 0.0)
        vy = np.maximum(_div(t["syy"], n) - my**2, 0.0)
        cov = _div(t["sxy"], n) - mx * my
        mse = _div(t["sxx"] - 2 * t["sxy"] + t["syy"], n)
        per = {
            "mse": mse,
            "rmse": np.sqrt(np.maximum(mse, 0.0)),
            "mae": _div(t["sae"], n),
            "pearson": _div(cov, np.sqrt(vx * vy)),
            "ccc": _div(2 * cov, vx + vy + (mx - my) ** 2),
        }
        out: dict[str, float] = {}
        for key, arr in per.items():
            out[f"{key}_mean"] = float(np.mean(arr))
            for i, name in enumerate(self.names):
                out[f"{key}/{name}"] = float(arr[i])
        return out

    def summary(self) -> dict[str, float]:
        """The headline regression metrics (progress bars, ``history.csv``).

        Returns:
            ``mse_mean``, ``rmse_mean``, ``pearson_mean`` and ``ccc_mean`` from :meth:`result`.
        """
        r = self.result()
        return {k: r[k] for k in ("mse_mean", "rmse_mean", "pearson_mean", "ccc_mean")}


class ClassificationMetrics(StreamingMetrics):
    """Single-label metrics from a streaming confusion matrix: accuracy, macro-F1, per-class
    precision/recall/F1, balanced accuracy.

    Rows of :meth:`confusion_matrix` are true classes, columns predicted (argmax of the outputs).
    Label ``-1`` (unknown) is left out.

    Args:
        names: class names, in index order.
    """

    def __init__(self, names: Sequence[str]) -> None:
        if len(names) < 2:
            raise ValueError(f"The 'names' parameter must name at least 2 classes. Got {names!r}.")
        self.names = tuple(str(n) for n in names)
        super().__init__()

    def stat_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of the additive statistics for ``K = len(names)`` classes.

        Returns:
            ``{"confusion": (K, K)}``: counts, rows true class, columns predicted class.
        """
        k = len(self.names)
        return {"confusion": (k, k)}

    def batch_stats(self, labels: Any, outputs: Any) -> dict[str, Any]:
        """Additive statistics of one batch (graph-safe; runs per replica).

        Args:
            labels: ``[B]`` (or ``[B, 1]``) class indices in ``0..K-1``; -1 marks an unknown
                label, left out. A soft-label dict ``{"label", "dist"}`` is read by its
                ``label``.
            outputs: ``[B, K]`` scores (logits or probabilities); the prediction is the argmax.

        Returns:
            ``{"confusion": [K, K] float32 tensor}`` of this batch's counts.
        """
        import tensorflow as tf

        if isinstance(labels, Mapping):
            # Soft labels ({"label", "dist"}): metrics stay on the hard label.
            labels = labels["label"]
        k = len(self.names)
        y = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        pred = tf.argmax(tf.cast(outputs, tf.float32), axis=-1, output_type=tf.int32)
        known = y >= 0
        seg = tf.where(known, y * k + pred, tf.zeros_like(y))
        cm = tf.math.unsorted_segment_sum(tf.cast(known, tf.float32), seg, k * k)
        return {"confusion": tf.reshape(cm, [k, k])}

    def confusion_matrix(self) -> np.ndarray:
        """``[K, K]`` int64 counts, rows true, columns predicted."""
        return self._totals["confusion"].astype(np.int64)

    def result(self) -> dict[str, float]:
        """Metrics of the confusion matrix accumulated since the last :meth:`reset_state`.

        Returns:
            A flat dict: ``accuracy``, ``macro_f1`` (unweighted mean over all K classes),
            ``balanced_accuracy`` (mean recall over classes present in the labels; 0 if none),
            and per class ``precision/<name>``, ``recall/<name>``, ``f1/<name>``. Ratios with a
            zero denominator are 0.
        """
        cm = self._totals["confusion"]
        tp = np.diag(cm)
        support = cm.sum(axis=1)
        predicted = cm.sum(axis=0)
        precision = _div(tp, predicted)
        recall = _div(tp, support)
        f1 = _div(2 * tp, support + predicted)
        present = support > 0
        out = {
            "accuracy": float(_div(tp.sum(), cm.sum())),
            "macro_f1": float(np.mean(f1)),
            "balanced_accuracy": float(np.mean(recall[present])) if present.any() else 0.0,
        }
        for i, name in enumerate(self.names):
            out[f"precision/{name}"] = float(precision[i])
            out[f"recall/{name}"] = float(recall[i])
            out[f"f1/{name}"] = float(f1[i])
        return out

    def summary(self) -> dict[str, float]:
        """The headline classification metrics (progress bars, ``history.csv``).

        Returns:
            ``accuracy``, ``macro_f1`` and ``balanced_accuracy`` from :meth:`result`.
        """
        r = self.result()
        return {k: r[k] for k in ("accuracy", "macro_f1", "balanced_accuracy")}


def icc_3_1(n: Any, sx: Any, sy: Any, sxx: Any, syy: Any, sxy: Any) -> np.ndarray:
    """ICC(3,1) of two raters (prediction x, ground truth y) from sums of moments.

    Shrout & Fleiss (1979) case 3, single rater, consistency: ``(BMS - EMS) / (BMS + (k-1) EMS)``
    from the two-way mixed ANOVA of n targets by k = 2 raters. With k = 2 the mean squares reduce
    to population moments: ``BMS - EMS`` is proportional to ``2 cov(x, y)`` and ``BMS + EMS`` to
    ``var(x) + var(y)``, so ``ICC(3,1) = 2 cov / (var x + var y)``: Lin's CCC without the mean
    difference term (a constant offset between the raters is not penalised). This is the ICC
    that OpenFace and LibreFace report for DISFA intensities.

    Args:
        n, sx, sy, sxx, syy, sxy: arrays of the count and the sums of x, y, x², y², xy.

    Returns:
        float64 array; 0 where n < 2 or both raters are constant.
    """
    n = np.asarray(n, np.float64)
    mx, my = _div(sx, n), _div(sy, n)
    vx = np.maximum(_div(sxx, n) - mx**2, 0.0)
    vy = np.maximum(_div(syy, n) - my**2, 0.0)
    cov = _div(sxy, n) - mx * my
    return np.where(n >= 2, _div(2 * cov, vx + vy), 0.0)


class AUIntensityMetrics(RegressionMetrics):
    """AU intensity metrics per AU and averaged over AUs: ICC(3,1), Pearson r, MAE, MSE, RMSE.

    The statistics are :class:`RegressionMetrics`' sums of moments (NaN targets, i.e. unknown
    intensities, left out per AU), so the result is exact over the whole set. ICC(3,1) is
    :func:`icc_3_1`; per-AU values and the unweighted mean over AUs, as the DISFA literature
    reports them.

    Args:
        names: one name per AU, e.g. ``("AU1", "AU2")``.
    """

    def result(self) -> dict[str, float]:
        """Metrics of everything accumulated since the last :meth:`reset_state`.

        Returns:
            :meth:`RegressionMetrics.result` (``mse``, ``rmse``, ``mae``, ``pearson``, ``ccc``)
            plus ``icc`` and ``support`` (known targets), per AU (``icc/AU12``) and
            ``<metric>_mean`` over AUs; an AU with fewer than 2 known targets has ICC 0.
        """
        out = super().result()
        t = self._totals
        icc = icc_3_1(t["n"], t["sx"], t["sy"], t["sxx"], t["syy"], t["sxy"])
        out["icc_mean"] = float(np.mean(icc))
        for i, name in enumerate(self.names):
            out[f"icc/{name}"] = float(icc[i])
            out[f"support/{name}"] = float(t["n"][i])
        return out

    def summary(self) -> dict[str, float]:
        """The headline intensity metrics (progress bars, ``history.csv``).

        Returns:
            ``icc_mean``, ``pearson_mean``, ``mae_mean`` and ``mse_mean`` from :meth:`result`.
        """
        r = self.result()
        return {k: r[k] for k in ("icc_mean", "pearson_mean", "mae_mean", "mse_mean")}


def majority_baseline(
    train_labels: np.ndarray, eval_labels: np.ndarray, names: Sequence[str]
) -> dict[str, float]:
    """AU metrics of the majority-class baseline: each AU predicted as its most frequent known
    training value, for every evaluation example.

    Args:
        train_labels: ``[N, K]`` training labels (1/0/-1).
        eval_labels: ``[M, K]`` evaluation labels (1/0/-1).
        names: AU names.

    Returns:
        :meth:`AUMetrics.result` of the constant predictor.

    Raises:
        ValueError: if the label arrays do not have K columns.
    """
    train = np.asarray(train_labels, dtype=np.float64)
    ev = np.asarray(eval_labels, dtype=np.float64)
    k = len(names)
    if train.ndim != 2 or ev.ndim != 2 or train.shape[1] != k or ev.shape[1] != k:
        raise ValueError(
            f"The label arrays must be [N, {k}]. Got {train.shape} and {ev.shape} instead."
        )
    pos = (train == 1).sum(axis=0)
    neg = (train == 0).sum(axis=0)
    majority = pos > neg
    logits = np.where(majority, 10.0, -10.0)[None, :].repeat(ev.shape[0], axis=0)
    m = AUMetrics(names)
    m.update_state(ev.astype(np.float32), logits.astype(np.float32))
    return m.result()
