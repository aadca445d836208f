"""The au_intensity task and soft-label cross-entropy: losses, metrics (ICC(3,1) against a numpy
two-way ANOVA reference), task resolution and label conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from fer_tf import losses, metrics
from fer_tf.tasks import resolve_task


def icc_anova(ratings: np.ndarray, kind: str = "3,1") -> float:
    """Shrout & Fleiss (1979) ICCs from the ANOVA mean squares of an n targets x k raters table.

    BMS: between targets; JMS: between raters; EMS: residual; WMS: within targets.
    """
    x = np.asarray(ratings, np.float64)
    n, k = x.shape
    grand = x.mean()
    ss_total = ((x - grand) ** 2).sum()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ss_total - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    jms = ss_cols / (k - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    wms = (ss_cols + ss_err) / (n * (k - 1))
    if kind == "1,1":
        return (bms - wms) / (bms + (k - 1) * wms)
    if kind == "2,1":
        return (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
    return (bms - ems) / (bms + (k - 1) * ems)


# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
)


def test_reference_reproduces_shrout_and_fleiss_published_values():
    # The published values: ICC(1,1) = .17, ICC(2,1) = .29, ICC(3,1) = .71.
    assert round(icc_anova(SHROUT_FLEISS, "1,1"), 2) == 0.17
    assert round(icc_anova(SHROUT_FLEISS, "2,1"), 2) == 0.29
    assert round(icc_anova(SHROUT_FLEISS, "3,1"), 2) == 0.71


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_icc_3_1_matches_the_two_way_mixed_anova(seed):
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 5, 200)
    x = 0.8 * y + rng.normal(0, 0.7, 200) + (0.5 if seed else 0.0)
    got = metrics.icc_3_1(200, x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum())
    assert got == pytest.approx(icc_anova(np.stack([x, y], axis=1)), abs=1e-9)
    # Judge pairs from Shrout & Fleiss' table too.
    for a, b in [(0, 1), (1, 3), (2, 3)]:
        p, q = SHROUT_FLEISS[:, a].astype(float), SHROUT_FLEISS[:, b].astype(float)
        stats = (6, p.sum(), q.sum(), (p * p).sum(), (q * q).sum(), (p * q).sum())
        assert metrics.icc_3_1(*stats) == pytest.approx(icc_anova(np.stack([p, q], 1)), abs=1e-9)


def test_streaming_intensity_metrics_over_batches_with_unknowns():
    rng = np.random.default_rng(3)
    n, names = 90, ("AU1", "AU12")
    y = rng.uniform(0, 5, (n, 2)).astype(np.float32)
    x = (y + rng.normal(0, 0.5, (n, 2))).astype(np.float32)
    y[::5, 0] = np.nan  # unknown intensities of AU1
    m = metrics.AUIntensityMetrics(names)
    for i in range(0, n, 16):  # uneven batches: the sums are additive
        m.update_state(y[i : i + 16], x[i : i + 16])
    r = m.result()
    for j, name in enumerate(names):
        known = ~np.isnan(y[:, j])
        xs, ys = x[known, j].astype(np.float64), y[known, j].astype(np.float64)
        assert r[f"support/{name}"] == known.sum()
        assert r[f"icc/{name}"] == pytest.approx(icc_anova(np.stack([xs, ys], 1)), abs=1e-5)
        assert r[f"pearson/{name}"] == pytest.approx(np.corrcoef(xs, ys)[0, 1], abs=1e-5)
        assert r[f"mae/{name}"] == pytest.approx(np.abs(xs - ys).mean(), abs=1e-5)
        assert r[f"mse/{name}"] == pytest.approx(((xs - ys) ** 2).mean(), abs=1e-4)
    assert r["icc_mean"] == pytest.approx((r["icc/AU1"] + r["icc/AU12"]) / 2)
    assert set(m.summary()) == {"icc_mean", "pearson_mean", "mae_mean", "mse_mean"}


def test_icc_known_values():
    y = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]], np.float32)
    m = metrics.AUIntensityMetrics(["AU12"])
    m.update_state(y, y + 1.0)  # a constant offset: consistency ICC ignores it, MAE does not
    r = m.result()
    assert r["icc/AU12"] == pytest.approx(1.0) and r["pearson/AU12"] == pytest.approx(1.0)
    assert r["mae/AU12"] == pytest.approx(1.0) and r["ccc/AU12"] < 1.0
    m.reset_state()
    m.update_state(y, 2.0 * y)  # ICC = 2 cov / (vx + vy) = 2 * 2 / (4 + 1) = 0.8
    assert m.result()["icc/AU12"] == pytest.approx(0.8)
    m.reset_state()
    m.update_state(np.full((3, 1), np.nan, np.float32), np.zeros((3, 1), np.float32))
    assert m.result()["icc/AU12"] == 0.0 and m.result()["support/AU12"] == 0.0


def test_masked_mse_known_values():
    targets = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]], np.float32)
    preds = np.array([[2.0, 100.0, 5.0], [9.0, 9.0, 9.0]], np.float32)
    got = losses.masked_mse(targets, preds).numpy()
    np.testing.assert_allclose(got, [(1.0 + 4.0) / 2, 0.0])


def test_au_intensity_task():
    task = resolve_task("au_intensity", aus="1,2,12")
    assert task.output_names == ("AU1", "AU2", "AU12") and task.aus == (1, 2, 12)
    assert task.loss == "mse" and task.head_activation == "linear"
    assert task.primary_metric == "icc_mean" and math.isnan(task.chance_loss)
    assert isinstance(task.make_metrics(), metrics.AUIntensityMetrics)
    with pytest.raises(ValueError, match="task.loss"):
        resolve_task("au_intensity", loss="ccc")
    with pytest.raises(ValueError, match="num_classes"):
        resolve_task("au_intensity", num_classes=3)
    with pytest.raises(ValueError, match="emotion task only"):
        resolve_task("au_intensity", soft_labels=True)
    # The pipeline's 0 + mask 0 become NaN; the loss ignores them.
    labels = {
        "au_intensity": tf.constant([[2.0, 0.0, 4.0]]),
        "au_intensity_mask": tf.constant([[1.0, 0.0, 1.0]]),
    }
    y = task.labels(labels)
    assert np.isnan(y.numpy()[0, 1]) and y.numpy()[0, 2] == 4.0
    out = tf.constant([[3.0, 50.0, 4.0]])
    loss = task.replica_loss(y, out, global_batch_size=2)
    assert float(loss) == pytest.approx(0.5 / 2)  # ((3-2)^2 + 0) / 2 known, / global batch 2


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def test_soft_cross_entropy_against_a_hand_computation():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [1.0, 1.0, 1.0]], np.float32)
    votes = np.array([[6.0, 3.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    got = losses.soft_cross_entropy(votes, logits).numpy()
    q = votes / np.maximum(votes.sum(axis=1, keepdims=True), 1e-12)
    want = -(q * _log_softmax(logits.astype(np.float64))).sum(axis=1)
    want[1] = 0.0  # an all-zero row is unknown
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # 0.6 * -log p0 + 0.3 * -log p1 + 0.1 * -log p2, written out for row 0.
    p = np.exp(_log_softmax(logits[:1].astype(np.float64)))[0]
    hand = -(0.6 * math.log(p[0]) + 0.3 * math.log(p[1]) + 0.1 * math.log(p[2]))
    assert got[0] == pytest.approx(hand, rel=1e-5)
    # A one-hot target is the hard-label cross-entropy, class weights included.
    cw = [1.0, 2.0, 3.0]
    hard = losses.softmax_cross_entropy([1], logits[2:], class_weights=cw).numpy()
    soft = losses.soft_cross_entropy(votes[2:], logits[2:], class_weights=cw).numpy()
    np.testing.assert_allclose(soft, hard, rtol=1e-6)
    smooth = losses.soft_cross_entropy(votes[2:], logits[2:], label_smoothing=0.3).numpy()
    hard_smooth = losses.softmax_cross_entropy([1], logits[2:], label_smoothing=0.3).numpy()
    np.testing.assert_allclose(smooth, hard_smooth, rtol=1e-6)


def test_emotion_task_with_soft_labels():
    task = resolve_task("emotion", num_classes=7)
    assert task.soft_labels == "auto"
    dist = tf.constant([[0.7] + [0.05] * 6, [0.0] * 7])
    labels = {
        "emotion": tf.constant([0, 3]),
        "emotion_mask": tf.constant([1.0, 0.0]),
        "emotion_dist": dist,
    }
    y = task.labels(labels)
    assert set(y) == {"label", "dist"} and y["label"].numpy().tolist() == [0, -1]
    logits = tf.constant(np.tile(np.linspace(-1, 1, 7, dtype=np.float32), (2, 1)))
    per = task.per_example_loss(y, logits).numpy()
    want = -(dist.numpy()[0] * _log_softmax(logits.numpy()[0].astype(np.float64))).sum()
    assert per[0] == pytest.approx(want, rel=1e-5) and per[1] == 0.0
    # Metrics stay on the hard label: row 1 (unknown) is left out.
    m = task.make_metrics()
    m.update_state(y, logits.numpy())
    assert m.confusion_matrix().sum() == 1
    # soft_labels=false ignores the distribution; without one the hard label is used.
    off = resolve_task("emotion", soft_labels=False)
    assert not isinstance(off.labels(labels), dict)
    assert not isinstance(task.labels({"emotion": labels["emotion"]}), dict)
    with pytest.raises(ValueError, match="soft_labels"):
        resolve_task("emotion", soft_labels="yes")
    sig = resolve_task("emotion", loss="sigmoid_ce")
    with pytest.raises(ValueError, match="softmax_ce"):
        sig.per_example_loss(sig.labels(labels), logits)
