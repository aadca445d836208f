"""Task resolution (pure Python) and task losses through the Task API."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fer_tf import tasks


def test_resolve_defaults():
    au = tasks.resolve_task("au", aus="1,2,12")
    assert au.output_names == ("AU1", "AU2", "AU12") and au.loss == "sigmoid_ce"
    assert au.chance_loss == pytest.approx(math.log(2)) and au.primary_metric == "f1_mean"
    posed = tasks.resolve_task("posed", num_classes=12)
    assert posed.num_outputs == 12 and posed.chance_loss == pytest.approx(2.4849, abs=1e-4)
    assert tasks.resolve_task("posed").num_outputs == 2
    assert tasks.resolve_task("emotion").num_outputs == 7
    va = tasks.resolve_task("va", loss="ccc")
    assert va.output_names == ("valence", "arousal") and math.isnan(va.chance_loss)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "au", "loss": "mse"}, "must be one of"),
        ({"name": "va", "loss": "softmax_ce"}, "for the 'va' task"),
        ({"name": "posed", "num_classes": 7}, "must be 2 or 12"),
        ({"name": "emotion", "num_classes": 3}, "must be 6 or 7"),
        ({"name": "au", "class_weights": "balanced"}, "posed and emotion tasks only"),
        ({"name": "emotion", "class_weights": [1.0, 2.0]}, "7 non-negative"),
        ({"name": "emotion", "class_weights": "inverse"}, "'balanced'"),
        ({"name": "au", "aus": "emotionet99"}, "aus"),
        ({"name": "faces"}, "task.name"),
        ({"name": "au", "label_smoothing": 0.1}, "softmax_ce"),
    ],
)
def test_bad_task_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tasks.resolve_task(**kwargs)


def test_task_losses_and_labels():
    pytest.importorskip("tensorflow")
    t = tasks.resolve_task("emotion", num_classes=6, class_weights=[1, 1, 2, 1, 1, 1])
    labels = {"emotion": np.array([2, -1]), "au": np.zeros((2, 3))}
    y = t.labels(labels)
    logits = np.zeros((2, 6), np.float32)
    loss = t.replica_loss(y, logits, global_batch_size=4, num_replicas=2).numpy()
    assert loss == pytest.approx(2 * math.log(6) / 4, rel=1e-6)
    va = tasks.resolve_task("va")
    y = va.labels({"valence": np.array([0.5, 0.0]), "arousal": np.array([np.nan, 1.0])})
    assert y.shape == (2, 2)
    per = va.per_example_loss(y, np.zeros((2, 2), np.float32)).numpy()
    np.testing.assert_allclose(per, [0.25, 0.5])
    with pytest.raises(KeyError, match="no 'posed' entry"):
        tasks.resolve_task("posed").labels({"au": np.zeros((1, 2))})
    # Sigmoid CE on one-hot classes (Christensen 2018 "softmax or sigmoid").
    sig = tasks.resolve_task("posed", loss="sigmoid_ce")
    per = sig.per_example_loss(np.array([1, -1]), np.zeros((2, 2), np.float32)).numpy()
    np.testing.assert_allclose(per, [math.log(2), 0.0], rtol=1e-6)
    # Aux logits: tuple or dict outputs.
    assert sig.outputs((1, 2)) == 1 and sig.aux_outputs((1, 2)) == 2
    assert sig.outputs({"logits": 3, "aux_logits": 4}) == 3
