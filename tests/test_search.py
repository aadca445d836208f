"""Hyperparameter search: Table 4.1 space, grid/random points, ranked CSV."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import pytest

from fer_tf.config import ConfigError, load_config
from fer_tf.training import search


def test_table_4_1_space():
    s = search.TABLE_4_1
    assert s["optimizer.learning_rate"] == [1e-3, 1e-4, 1e-5, 1e-6]
    assert s["data.batch_size"] == [8, 16, 32, 64]
    assert s["model.train_layer_mode"] == [0, 1, 2, 3, 4, 5]
    assert len(s["model.dropout"]) == 10 and len(s["lr_decay"]) == 5
    assert "task.loss" not in search.TABLE_4_1_CNN
    with pytest.raises(ConfigError, match="non-empty list"):
        search.load_space({"model.dropout": []})
    with pytest.raises(ConfigError, match="table4.1"):
        search.load_space("nope")


def _fake_runner(calls):
    def run(cfg, progress=False, log=None):
        calls.append(cfg)
        acc = 1.0 - cfg.model.dropout - cfg.optimizer.learning_rate * 100
        return SimpleNamespace(status="completed", steps=1, eval={"metrics": {"accuracy": acc}})

    return run


def test_grid_and_random_search_rank_results(tmp_path):
    base = load_config("demo_posed", [f"run.model_dir={tmp_path}"])
    space = {
        "model.dropout": [0.0, 0.5],
        "optimizer.learning_rate": [1e-3, 1e-4],
        "l2": [{"optimizer.weight_decay": 4e-5}, {"optimizer.weight_decay": 0.0}],
    }
    calls = []
    rows = search.run_search(base, space, mode="grid", runner=_fake_runner(calls), log=None)
    assert len(calls) == 8 and len(rows) == 8
    assert rows[0]["model.dropout"] == 0.0 and rows[0]["optimizer.learning_rate"] == 1e-4
    with (tmp_path / "search.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [int(r["rank"]) for r in table] == list(range(1, 9))
    values = [float(r["value"]) for r in table]
    assert values == sorted(values, reverse=True)
    assert calls[0].run.model_dir.endswith("trial_000")

    calls.clear()
    rows = search.run_search(
        base, space, mode="random", trials=3, runner=_fake_runner(calls), log=None
    )
    assert len(calls) == 3
    assert (
        len({(c.model.dropout, c.optimizer.learning_rate, c.optimizer.weight_decay) for c in calls})
        == 3
    )


def test_invalid_points_are_reported_not_dropped(tmp_path):
    base = load_config("demo_posed", [f"run.model_dir={tmp_path}"])
    calls = []
    rows = search.run_search(
        base, {"model.train_layer_mode": [0, 7]}, mode="grid", runner=_fake_runner(calls), log=None
    )
    assert len(calls) == 1
    assert [r["status"] for r in rows] == ["completed", "invalid"]
    assert "[0, 1, 2, 3] for tiny_cnn" in rows[1]["note"]


@pytest.mark.parametrize("space", ["table4.1", "table4.1-cnn"])
def test_table_4_1_search_runs_on_the_shallow_cnn(tmp_path, space):
    # Train layer modes 1-5 exist for the shallow CNN (fer_tf.models.freezing): no invalid points.
    pytest.importorskip("tensorflow")
    base = load_config("posed2_shallow_cnn", [f"run.model_dir={tmp_path}"])
    calls = []
    rows = search.run_search(
        base,
        search.load_space(space),
        mode="random",
        trials=40,
        runner=_fake_runner(calls),
        log=None,
    )
    assert len(rows) == 40 and len(calls) == 40
    assert all(r["status"] == "completed" for r in rows)
    if space == "table4.1":
        assert {c.model.train_layer_mode for c in calls} >= {1, 2, 3, 4, 5}
