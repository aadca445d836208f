"""Diagnostics: angular separation (function and training action), filters, feature maps,
prediction grids, and the SVM baseline on a run's embeddings.

One tiny run (tiny_cnn, 32 px, 2 epochs, angular separation every epoch) is trained per module.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest


def _toy_model(channels: int):
    """images [N, 1, 1, C] -> an end point 'units' that passes them through: the pooled
    activations are the images' values, so the angles are known."""
    import keras

    class Units(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.endpoint = "units"

        def call(self, x):
            return x

    inp = keras.Input((1, 1, channels))
    units = Units(name="units")(inp)
    out = keras.layers.Flatten()(units)
    return keras.Model(inp, out)


def _probe(acts: np.ndarray) -> np.ndarray:
    return np.asarray(acts, np.float32)[:, None, None, :]


def test_known_angles_on_a_toy_model():
    from fer_tf.evaluation.diagnostics import angular_separation

    model = _toy_model(3)
    # Columns: unit 0 and 1 orthogonal, unit 2 identical to unit 0.
    acts = np.array([[1.0, 0.0, 1.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    angles = angular_separation(model, _probe(acts), "units", max_units=None)
    # Pairs in order (0,1), (0,2), (1,2).
    np.testing.assert_allclose(angles, [90.0, 0.0, 90.0], atol=1e-4)
    # Scaled copies are the same direction; a 45-degree pair.
    acts = np.array([[1.0, 3.0, 1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(
        angular_separation(model, _probe(acts), "units", None), [0.0, 45.0, 45.0], atol=1e-4
    )


def test_unit_angles_sampling_centering_and_dead_units():
    from fer_tf.evaluation.diagnostics import angle_summary, unit_angles

    rng = np.random.default_rng(0)
    acts = rng.normal(size=(40, 300))
    a = unit_angles(acts, max_units=50, seed=7)
    assert a.shape == (50 * 49 // 2,)
    np.testing.assert_array_equal(a, unit_angles(acts, max_units=50, seed=7))
    assert not np.array_equal(a, unit_angles(acts, max_units=50, seed=8))
    # Centred, a unit and its negation are 180 degrees apart; a dead unit is left out.
    x = rng.normal(size=(10, 1))
    acts = np.hstack([x, -x, np.zeros((10, 1))])
    np.testing.assert_allclose(unit_angles(acts, None, center=True), [180.0], atol=1e-4)
    s = angle_summary(unit_angles(rng.random((20, 8)), None))
    assert 0 <= s["min"] <= s["median"] <= s["max"] <= 90 and s["pairs"] == 28 and s["units"] == 8
    with pytest.raises(ValueError, match="activations"):
        unit_angles(np.zeros(5))


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fer_tf.synthfacs import write_records

    d = tmp_path_factory.mktemp("diag_records") / "rec"
    write_records(d, 128, seed=5, size=32, val_fraction=0.25, num_shards=1)
    return d


@pytest.fixture(scope="module")
def run(rec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fer_tf.cli import train

    run_dir = tmp_path_factory.mktemp("diag_run") / "run"
    args = ["--config", "demo_posed", "--records", str(rec), "--model-dir", str(run_dir)]
    sets = [
        "model.name=tiny_cnn",
        "data.image_size=32",
        "train.epochs=2",
        "data.batch_size=16",
        "train.angular_separation_every=1",
        "train.angular_separation_end_point=conv3",
        "train.angular_separation_probe=24",
        "train.angular_separation_units=40",
    ]
    for s in sets:
        args += ["--set", s]
    assert train.main([*args, "--quiet"]) == 0
    return run_dir


def test_action_writes_png_csv_and_summaries(run):
    import tensorflow as tf

    png = run / "angular_separation.png"
    assert png.is_file() and png.stat().st_size > 5000
    with (run / "angular_separation.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    # conv3 has 64 units, 40 drawn; a unit dead over the whole probe (ReLU) is left out.
    assert all(30 <= float(r["units"]) <= 40 for r in rows)
    assert all(float(r["pairs"]) == float(r["units"]) * (float(r["units"]) - 1) / 2 for r in rows)
    assert all(0 <= float(r["min"]) <= float(r["mean"]) <= 90 for r in rows)
    events = list((run / "logs" / "angular").glob("events.*"))
    assert events
    tags = {
        v.tag
        for e in events
        for ev in tf.compat.v1.train.summary_iterator(str(e))
        for v in ev.summary.value
    }
    assert "angular_separation/conv3" in tags and "angular_separation/conv3/mean" in tags


def test_action_off_by_default(rec, tmp_path):
    from fer_tf.config import ExperimentConfig

    assert ExperimentConfig().train.angular_separation_every == 0


def _val_batch(run: Path, rec: Path, n: int = 12):
    from fer_tf.data.pipeline import make_dataset

    ds = make_dataset(
        str(rec), task="posed", split="val", batch_size=n, image_size=32, unknown="drop"
    )
    x, t = next(iter(ds))
    return x.numpy(), t["posed"].numpy()


def test_filters_feature_maps_predictions(run, rec, tmp_path):
    from fer_tf.evaluation.diagnostics import (
        plot_feature_maps,
        plot_filters,
        plot_predictions,
        predict_classes,
    )
    from fer_tf.evaluation.evaluator import load_model
    from fer_tf.evaluation.runs import load_run

    model = load_model(load_run(run))
    fig = plot_filters(model)
    assert len([a for a in fig.axes if a.images]) == 16  # tiny_cnn's conv1: 16 filters
    assert "conv1" in fig._suptitle.get_text()
    fig.savefig(tmp_path / "filters.png")
    x, y = _val_batch(run, rec)
    fig = plot_feature_maps(model, x[0], ["conv1", "conv2"], max_maps=8)
    assert len(fig.axes) == 2 * 9 and all(len(a.images) == 1 for a in fig.axes)
    fig.savefig(tmp_path / "feature_maps.png")
    fig = plot_predictions(run, x, y, ["spontaneous", "posed"], max_images=10)
    assert len(fig.axes) == 10
    wrong = int((predict_classes(model, x[:10]) != y[:10]).sum())
    reds = sum(a.title.get_color() == "red" for a in fig.axes)
    assert reds == wrong
    fig.savefig(tmp_path / "predictions.png")
    with pytest.raises(ValueError, match="end point"):
        plot_feature_maps(model, x[0], ["no_such"])


def test_svm_on_embeddings(run, rec, tmp_path):
    from fer_tf.evaluation.baseline import svm_baseline

    res = svm_baseline(rec, "posed", features="embeddings", model=run, output_dir=tmp_path)
    assert res.info["end_point"] == "global_pool" and res.info["size"] == 32
    assert res.eval_examples > 0 and 0.0 <= res.metrics["accuracy"] <= 1.0
    assert "global_pool" in (tmp_path / "report.md").read_text()


def test_diagnose_cli(run, rec, tmp_path, capsys):
    from fer_tf.cli import diagnose

    out = tmp_path / "diag"
    args = ["--model", str(run), "--images", "6", "--end-points", "conv1,conv3"]
    assert diagnose.main([*args, "--output-dir", str(out)]) == 0
    names = {"filters.png", "feature_maps.png", "predictions.png", "angular_separation.png"}
    assert {p.name for p in out.iterdir()} == names
    assert str(out / "predictions.png") in capsys.readouterr().out
    assert diagnose.main(["--model", str(run)]) == 2
    assert diagnose.main(["--model", str(tmp_path), "--output-dir", str(out)]) == 1
    bad = [*args[:2], "--end-points", "nope", "--output-dir", str(out)]
    assert diagnose.main(bad) == 1
    assert "Unknown end point 'nope'" in capsys.readouterr().err
