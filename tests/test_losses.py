"""Losses against hand-computed values (masking included)."""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from fer_tf import losses  # noqa: E402


def _bce(y: float, z: float) -> float:
    p = 1.0 / (1.0 + math.exp(-z))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_masked_sigmoid_ce_ignores_unknown_labels():
    labels = np.array([[1, 0, -1], [-1, -1, -1], [0, 1, 1]], np.int64)
    logits = np.array([[2.0, -1.0, 50.0], [3.0, 3.0, 3.0], [0.5, 0.0, -2.0]], np.float32)
    got = losses.masked_sigmoid_cross_entropy(labels, logits).numpy()
    want = [
        (_bce(1, 2.0) + _bce(0, -1.0)) / 2,  # the unknown third AU adds nothing
        0.0,  # nothing known
        (_bce(0, 0.5) + _bce(1, 0.0) + _bce(1, -2.0)) / 3,
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # Changing the logit of an unknown label changes nothing.
    logits2 = logits.copy()
    logits2[0, 2] = -50.0
    np.testing.assert_allclose(losses.masked_sigmoid_cross_entropy(labels, logits2).numpy(), got)


def test_zero_filled_mode_reads_unknown_as_absent():
    labels = np.array([[1, -1]], np.int64)
    logits = np.array([[1.0, 2.0]], np.float32)
    got = losses.masked_sigmoid_cross_entropy(labels, logits, unknown="zero").numpy()
    np.testing.assert_allclose(got, [(_bce(1, 1.0) + _bce(0, 2.0)) / 2], rtol=1e-6)
    with pytest.raises(ValueError, match="'mask' or 'zero'"):
        losses.masked_sigmoid_cross_entropy(labels, logits, unknown="drop")


def test_softmax_ce_weights_smoothing_and_unknown():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0], [3.0, 1.0, 1.0]], np.float32)
    labels = np.array([1, 2, -1])

    def ce(row, k):
        z = row - row.max()
        return -(z[k] - math.log(np.exp(z).sum()))

    got = losses.softmax_cross_entropy(labels, logits).numpy()
    np.testing.assert_allclose(got, [ce(logits[0], 1), math.log(3), 0.0], rtol=1e-6)
    w = [0.5, 2.0, 3.0]
    got_w = losses.softmax_cross_entropy(labels, logits, class_weights=w).numpy()
    np.testing.assert_allclose(got_w, [2.0 * ce(logits[0], 1), 3.0 * math.log(3), 0.0], rtol=1e-6)
    s = 0.3
    got_s = losses.softmax_cross_entropy(labels[:1], logits[:1], label_smoothing=s).numpy()
    target = np.full(3, s / 3)
    target[1] += 1 - s
    want_s = sum(target[k] * ce(logits[0], k) for k in range(3))
    np.testing.assert_allclose(got_s, [want_s], rtol=1e-6)
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.softmax_cross_entropy(labels, logits, label_smoothing=1.5)


def test_masked_mse_and_ccc():
    y = np.array([[0.5, np.nan], [-0.5, 1.0], [0.0, 0.0]], np.float32)
    p = np.array([[0.0, 9.0], [0.5, 0.0], [0.25, 0.5]], np.float32)
    got = losses.masked_mse(y, p).numpy()
    np.testing.assert_allclose(got, [0.25, (1.0 + 1.0) / 2, (0.0625 + 0.25) / 2], rtol=1e-6)

    yy = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    pp = np.array([[1.5], [2.0], [2.5], [5.0]], np.float32)
    mx, my = pp.mean(), yy.mean()
    vx, vy = pp.var(), yy.var()
    cov = ((pp - mx) * (yy - my)).mean()
    want = 2 * cov / (vx + vy + (mx - my) ** 2)
    np.testing.assert_allclose(losses.ccc(yy, pp).numpy(), [want], rtol=1e-5)
    np.testing.assert_allclose(losses.ccc_loss(yy, pp).numpy(), 1 - want, rtol=1e-5)
    np.testing.assert_allclose(losses.ccc(yy, yy).numpy(), [1.0], rtol=1e-6)
    # A NaN target drops that example from the moments.
    y_nan = np.concatenate([yy, [[np.nan]]])
    p_nan = np.concatenate([pp, [[100.0]]])
    np.testing.assert_allclose(losses.ccc(y_nan, p_nan).numpy(), [want], rtol=1e-5)


def test_balanced_weights_and_chance_loss():
    # Athanasiadis 2022's imbalance, Table 4.2 (anger, disgust, fear, happiness, sadness, surprise).
    counts = [1246, 1495, 1165, 2875, 1904, 1960]
    w = losses.balanced_class_weights(counts)
    np.testing.assert_allclose(w, sum(counts) / (6 * np.array(counts)), rtol=1e-6)
    assert w[2] > w[3]  # fear (rarest) weighs more than happiness (commonest)
    np.testing.assert_allclose(
        losses.balanced_class_weights([2, 0, 2]), [2 / 3, 0.0, 2 / 3], rtol=1e-6
    )
    with pytest.raises(ValueError, match="non-negative class counts"):
        losses.balanced_class_weights([0, 0])
    assert losses.chance_loss(2) == pytest.approx(0.6931, abs=1e-4)
    assert losses.chance_loss(12) == pytest.approx(2.4849, abs=1e-4)
    with pytest.raises(ValueError):
        losses.chance_loss(1)
