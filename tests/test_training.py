"""The trainer and controller end to end: every task learns, resume is exact, NaN stops cleanly."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from fer_tf.config import ConfigError, load_config  # noqa: E402
from fer_tf.metrics import majority_baseline  # noqa: E402
from fer_tf.testing import toy  # noqa: E402
from fer_tf.training.callbacks import EarlyStopping, metric_mode  # noqa: E402
from fer_tf.training.checkpoints import RunState  # noqa: E402
from fer_tf.training.experiment import DataSource, run_experiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _toy_data(n: int = 256, size: int = 16, num_aus: int = 3, nan_after: int | None = None):
    def train(b):
        ds = toy.toy_dataset(n, b, size=size, num_aus=num_aus)
        if nan_after is not None:
            ds = ds.enumerate().map(
                lambda i, e: (tf.where(i >= nan_after, e[0] * np.nan, e[0]), e[1])
            )
        return ds

    return DataSource(
        train=train,
        eval=lambda b: toy.toy_dataset(
            n // 2, b, size=size, num_aus=num_aus, seed=1, shuffle=False, repeat=False
        ),
        steps_per_epoch=n // 16,
    )


def _run(tmp_path, task, extra=(), **kw):
    sets = [
        f"task.name={task}",
        "data.aus=1,2,4",
        "data.batch_size=16",
        "train.epochs=2",
        "train.steps_per_epoch=25",
        "train.steps_per_execution=5",
        "optimizer.name=adam",
        "optimizer.learning_rate=0.01",
        f"run.model_dir={tmp_path / task}",
        *extra,
    ]
    cfg = load_config(None, sets)
    return run_experiment(
        cfg,
        data=kw.pop("data", _toy_data()),
        model_fn=lambda c, t: toy.toy_model(t.num_outputs, aux=kw.get("aux", False)),
        progress=False,
        log=None,
    )


@pytest.mark.parametrize("task", ["au", "posed", "emotion", "va"])
def test_each_task_learns_on_toy_data(tmp_path, task):
    extra = ["task.num_classes=12"] if task == "posed" else []
    r = _run(tmp_path, task, extra, aux=task == "posed")
    assert r.status == "completed" and r.steps == 50
    hist = r.history
    assert len(hist) == 2
    metrics = r.eval["metrics"]
    if task == "va":
        assert metrics["pearson_mean"] > 0.5
        assert float(hist[-1]["train/loss"]) < float(hist[0]["train/loss"])
    else:
        assert float(hist[-1]["train/loss"]) < r.eval["chance_loss"]
    if task == "au":
        images, labels = toy.toy_arrays(256, num_aus=3)
        _, ev = toy.toy_arrays(128, num_aus=3, seed=1)
        base = majority_baseline(labels["au"], ev["au"], ["AU1", "AU2", "AU4"])
        assert metrics["f1_mean"] > base["f1_mean"] + 0.1
        assert set(r.eval["per_au"]) == {"AU1", "AU2", "AU4"}
    if task == "posed":
        cm = np.array(r.eval["confusion_matrix"])
        assert cm.shape == (12, 12)
    run_dir = tmp_path / task
    for name in ("config.yaml", "history.csv", "eval.json", "best.keras", "best.weights.h5"):
        assert (run_dir / name).exists(), name
    assert (run_dir / "saved_model" / "saved_model.pb").exists()
    assert list((run_dir / "logs" / "train").iterdir())
    assert json.loads((run_dir / "eval.json").read_text())["task"] == task


def test_run_dir_with_checkpoints_needs_resume(tmp_path):
    _run(tmp_path, "posed", ["train.epochs=1", "train.steps_per_epoch=5"])
    with pytest.raises(ConfigError, match="--resume"):
        _run(tmp_path, "posed", ["train.epochs=1", "train.steps_per_epoch=5"])


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    r = _run(
        tmp_path,
        "au",
        ["train.checkpoint_every=5", "train.steps_per_execution=1"],
        data=_toy_data(nan_after=12),
    )
    assert r.status == "non_finite"
    assert "NaN" in r.message or "nan" in r.message
    assert "last good checkpoint" in r.message
    latest = tf.train.latest_checkpoint(str(tmp_path / "au" / "checkpoints"))
    assert latest.endswith("ckpt-10")
    assert not (tmp_path / "au" / "eval.json").exists()


def test_mixed_bfloat16_and_ema_and_schedule(tmp_path):
    r = _run(
        tmp_path,
        "posed",
        [
            "run.mixed_precision=mixed_bfloat16",
            "optimizer.ema_decay=0.9",
            "optimizer.schedule=exponential",
            "optimizer.warmup_epochs=0.2",
            "optimizer.name=rmsprop",
            "optimizer.learning_rate=0.003",
            "optimizer.clipnorm=5.0",
        ],
    )
    import keras

    keras.mixed_precision.set_global_policy("float32")
    assert r.status == "completed"
    assert r.eval["ema"] is True
    assert float(r.history[-1]["train/loss"]) < math.log(2)


def test_early_stopping_state():
    state = RunState()
    es = EarlyStopping("val/loss", 2, state)
    assert es.update({"val/loss": 1.0}) == (True, False)
    assert es.update({"val/loss": 0.5}) == (True, False)
    assert es.update({"val/loss": 0.7}) == (False, False)
    assert es.update({"val/loss": 0.6}) == (False, True)
    assert es.best == pytest.approx(0.5)
    with pytest.raises(KeyError, match="val/loss"):
        es.update({"val/f1_mean": 1.0})
    assert metric_mode("val/f1_mean") == "max" and metric_mode("val/rmse_mean") == "min"


def test_early_stopping_restores_best_weights(tmp_path):
    # Whether or not the run stops early, it ends with the best epoch's weights.
    r = _run(
        tmp_path,
        "posed",
        [
            "train.epochs=6",
            "train.steps_per_epoch=10",
            "train.early_stopping_metric=val/loss",
            "train.early_stopping_patience=1",
        ],
    )
    assert r.status in ("early_stopped", "completed")
    if r.status == "early_stopped":
        assert r.epochs < 6
    best_epoch = min(r.history, key=lambda row: float(row["val/loss"]))
    assert r.eval["metrics"]["loss"] == pytest.approx(float(best_epoch["val/loss"]), rel=1e-4)


def _toy_cmd(model_dir, *extra):
    return [
        sys.executable,
        "-m",
        "fer_tf.testing.toy",
        "--model-dir",
        str(model_dir),
        "--set",
        "run.deterministic=true",
        "--set",
        "train.epochs=2",
        "--set",
        "train.steps_per_epoch=12",
        "--set",
        "train.checkpoint_every=4",
        "--set",
        "data.batch_size=8",
        "--set",
        "train.restore_best_weights=false",
        "--set",
        "model.dropout=0.3",
        *extra,
    ]


def test_resume_after_sigkill_is_exact(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    full = subprocess.Popen(
        _toy_cmd(tmp_path / "full", "--weights-out", str(tmp_path / "full.npz")),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    killed = subprocess.run(
        _toy_cmd(tmp_path / "killed", "--kill-after-step", "10"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stdout + killed.stderr  # SIGKILL, after ckpt-8
    assert tf.train.latest_checkpoint(str(tmp_path / "killed" / "checkpoints")).endswith("ckpt-8")
    resumed = subprocess.run(
        _toy_cmd(tmp_path / "killed", "--resume", "--weights-out", str(tmp_path / "res.npz")),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed from" in resumed.stdout and "at step 8" in resumed.stdout
    out, _ = full.communicate(timeout=300)
    assert full.returncode == 0, out
    a, b = np.load(tmp_path / "full.npz"), np.load(tmp_path / "res.npz")
    assert a.files == b.files
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])


def test_a_heads_model_is_the_user_api_and_trains_through_model_fn(tmp_path):
    """fer_tf.models.heads is the user API for heads: a build_classifier model with the task's
    name as its head trains through run_experiment(model_fn=...) and round-trips as .keras."""
    import keras

    from fer_tf.models import build_classifier
    from fer_tf.models.heads import TaskHead, head_kinds

    built = []

    def model_fn(cfg, task):
        model = build_classifier("tiny_cnn", {task.name: task.num_outputs}, input_shape=(32, 32, 3))
        built.append(model)
        return model

    cfg = load_config(
        None,
        [
            "data.aus=1,2,4",
            "data.batch_size=16",
            "train.epochs=2",
            "train.steps_per_epoch=15",
            "optimizer.name=adam",
            "optimizer.learning_rate=0.01",
            f"run.model_dir={tmp_path / 'heads'}",
        ],
    )
    r = run_experiment(cfg, data=_toy_data(size=32), model_fn=model_fn, progress=False, log=None)
    assert r.status == "completed" and head_kinds(built[0]) == {"au": "sigmoid"}
    assert float(r.history[-1]["train/loss"]) < r.eval["chance_loss"]
    loaded = keras.models.load_model(tmp_path / "heads" / "best.keras")
    assert isinstance(loaded.get_layer("head_au"), TaskHead)


def test_an_action_stops_a_run_by_a_flag_and_faults_are_injected_only_by_tests(tmp_path):
    from fer_tf.training.actions import Action
    from fer_tf.training.experiment import prepare_experiment

    class StopAtStep(Action):
        def on_step(self, state):
            if state.step >= 10:
                state.request_stop("stopped_by_test", "enough steps")

    cfg = load_config(
        None,
        [
            "data.aus=1,2,4",
            "data.batch_size=16",
            "train.epochs=3",
            "train.steps_per_epoch=6",
            "train.steps_per_execution=2",
            f"run.model_dir={tmp_path / 'stop'}",
        ],
    )
    lines: list[str] = []
    controller = prepare_experiment(
        cfg,
        data=_toy_data(),
        model_fn=lambda c, t: toy.toy_model(t.num_outputs),
        progress=False,
        log=lines.append,
        actions=[StopAtStep()],
    )
    r = controller.run()
    assert (r.status, r.steps, r.epochs, r.message) == ("stopped_by_test", 10, 1, "enough steps")
    assert lines[-1] == "enough steps" and r.eval == {} and len(r.history) == 1
    assert not (tmp_path / "stop" / "eval.json").exists()
    # The production loop holds no fault injection: the resume tests add it as an action.
    for path in (ROOT / "fer_tf" / "training").glob("*.py"):
        text = path.read_text()
        assert "SIGKILL" not in text and "FER_TF_FAULT" not in text, path
