"""Streaming metrics against hand-computed values, masking and batch splitting included."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from fer_tf import metrics  # noqa: E402


def _logit(p):
    p = np.asarray(p, np.float64)
    return np.log(p / (1 - p)).astype(np.float32)


# 4 examples x 2 AUs; -1 unknown.
LABELS = np.array([[1, 0], [1, 1], [0, -1], [0, 1]], np.float32)
PROBS = np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.99], [0.1, 0.4]])


def test_au_metrics_hand_computed():
    m = metrics.AUMetrics(["AU1", "AU2"])
    m.update_state(LABELS, _logit(PROBS))
    r = m.result()
    # AU1: y=[1,1,0,0], p=[1,0,1,0] -> TP1 FP1 TN1 FN1
    # AU2 (3 known): y=[0,1,1], p=[0,1,0] -> TP1 FP0 TN1 FN1
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (2.0, 1.0, 2.0, 2.0)
    assert r["precision/AU1"] == pytest.approx(0.5)
    assert r["recall/AU1"] == pytest.approx(0.5)
    assert r["f1/AU1"] == pytest.approx(0.5)
    assert r["precision/AU2"] == pytest.approx(1.0)
    assert r["recall/AU2"] == pytest.approx(0.5)
    assert r["f1/AU2"] == pytest.approx(2 / 3)
    assert r["f1_mean"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert r["accuracy/AU2"] == pytest.approx(2 / 3)
    # AUC AU1: pos scores {0.9, 0.3}, neg {0.6, 0.1}: pairs won 3 of 4.
    assert r["auc/AU1"] == pytest.approx(0.75)
    # AU2: pos {0.8, 0.4}, neg {0.2}: 2 of 2 (the unknown 0.99 is ignored).
    assert r["auc/AU2"] == pytest.approx(1.0)
    # Partial accuracy: per example fraction of known AUs right: 1, 1/2, 0/1, 1/2.
    assert r["partial_accuracy"] == pytest.approx((1 + 0.5 + 0 + 0.5) / 4)
    assert r["subset_accuracy"] == pytest.approx(1 / 4)
    assert r["f1_micro"] == pytest.approx(4 / (4 + 1 + 2))


def test_au_metrics_are_additive_over_batches_and_skip_all_unknown_rows():
    whole = metrics.AUMetrics(["a", "b"])
    whole.update_state(LABELS, _logit(PROBS))
    split = metrics.AUMetrics(["a", "b"])
    for lo, hi in ((0, 1), (1, 3), (3, 4)):
        split.update_state(LABELS[lo:hi], _logit(PROBS[lo:hi]))
    split.update_state(np.array([[-1, -1]], np.float32), np.array([[5.0, -5.0]], np.float32))
    assert split.result() == pytest.approx(whole.result(), nan_ok=True)
    whole.reset_state()
    assert whole.result()["tp"] == 0.0


def test_majority_baseline():
    train = np.array([[0, 1], [0, 1], [1, 1], [0, -1]])
    ev = np.array([[1, 1], [0, 0], [0, 1]])
    r = metrics.majority_baseline(train, ev, ["AU1", "AU2"])
    assert r["f1/AU1"] == 0.0  # predicts absent everywhere
    assert r["f1/AU2"] == pytest.approx(2 * 2 / (2 * 2 + 1))
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        metrics.majority_baseline(train[:, :1], ev, ["AU1", "AU2"])


def test_regression_metrics_hand_computed():
    y = np.array([[1.0, 0.0], [2.0, np.nan], [3.0, 1.0], [4.0, 2.0]], np.float32)
    x = np.array([[1.5, 0.5], [2.0, 7.0], [2.5, 1.0], [5.0, 1.0]], np.float32)
    m = metrics.RegressionMetrics()
    m.update_state(y[:2], x[:2])
    m.update_state(y[2:], x[2:])
    r = m.result()
    v_y, v_x = y[:, 0].astype(np.float64), x[:, 0].astype(np.float64)
    mse = np.mean((v_x - v_y) ** 2)
    assert r["mse/valence"] == pytest.approx(mse)
    assert r["rmse/valence"] == pytest.approx(np.sqrt(mse))
    assert r["pearson/valence"] == pytest.approx(np.corrcoef(v_x, v_y)[0, 1])
    cov = np.mean((v_x - v_x.mean()) * (v_y - v_y.mean()))
    ccc = 2 * cov / (v_x.var() + v_y.var() + (v_x.mean() - v_y.mean()) ** 2)
    assert r["ccc/valence"] == pytest.approx(ccc)
    a_y, a_x = np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 1.0])  # the NaN row dropped
    assert r["mse/arousal"] == pytest.approx(np.mean((a_x - a_y) ** 2))
    assert r["mae/arousal"] == pytest.approx(np.mean(np.abs(a_x - a_y)))


def test_classification_metrics_hand_computed():
    labels = np.array([0, 0, 1, 2, 2, -1])
    logits = np.eye(3, dtype=np.float32)[[0, 1, 1, 2, 0, 2]]
    m = metrics.ClassificationMetrics(["a", "b", "c"])
    m.update_state(labels, logits)
    cm = m.confusion_matrix()
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    r = m.result()
    assert r["accuracy"] == pytest.approx(3 / 5)
    f1 = [2 / (2 + 2), 2 / (1 + 2), 2 / (2 + 1)]
    assert r["macro_f1"] == pytest.approx(np.mean(f1))
    assert r["recall/c"] == pytest.approx(0.5)
    assert r["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)


def test_batch_stats_inside_tf_function():
    m = metrics.AUMetrics(["a", "b"])

    @tf.function
    def stats(y, z):
        return m.batch_stats(y, z)

    s = stats(tf.constant(LABELS), tf.constant(_logit(PROBS)))
    m.update_from_stats({k: v.numpy() for k, v in s.items()})
    assert m.result()["f1/a"] == pytest.approx(0.5)


def test_metric_arguments_are_checked():
    with pytest.raises(ValueError, match="at least one AU"):
        metrics.AUMetrics([])
    with pytest.raises(ValueError, match="threshold"):
        metrics.AUMetrics(["a"], threshold=1.5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        metrics.ClassificationMetrics(["a"])


@pytest.mark.parametrize(
    "cls", [metrics.AUMetrics, metrics.RegressionMetrics, metrics.ClassificationMetrics]
)
@pytest.mark.parametrize("method", ["batch_stats", "result", "summary", "stat_shapes"])
def test_public_methods_are_documented(cls, method):
    doc = getattr(cls, method).__doc__ or ""
    assert "Returns:" in doc, f"{cls.__name__}.{method}"
    if method == "batch_stats":
        assert "Args:" in doc and "labels:" in doc and "outputs:" in doc
