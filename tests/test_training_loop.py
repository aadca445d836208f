"""The Trainer's step machinery: ``jit_compile`` resolution, fused update, iterator handling."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from fer_tf.config import ConfigError, ExperimentConfig, apply_overrides, from_dict  # noqa: E402
from fer_tf.tasks import resolve_task  # noqa: E402
from fer_tf.testing import toy  # noqa: E402
from fer_tf.training.loop import Trainer, resolve_jit_compile  # noqa: E402
from fer_tf.training.optim import make_optimizer  # noqa: E402


def _dataset(n: int = 64, batch: int = 16, size: int = 16) -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")
    y = (rng.uniform(size=(n, 11)) > 0.7).astype("float32")
    y[:4, :3] = -1.0  # unknown labels
    ds = tf.data.Dataset.from_tensor_slices((x, {"au": y}))
    return ds.batch(batch, drop_remainder=True).repeat()


def _trainer(jit: bool | str, spe: int = 1) -> Trainer:
    st = tf.distribute.OneDeviceStrategy("/cpu:0")
    with st.scope():
        model = toy.toy_model(11, size=16, dropout=0.0)
        opt = make_optimizer("rmsprop", 1e-2)
    return Trainer(
        model, resolve_task("au"), opt, st, global_batch_size=16, jit_compile=jit,
        steps_per_execution=spe,
    )  # fmt: skip


class _FakeExtended:
    def __init__(self, devices: tuple[str, ...]) -> None:
        self.worker_devices = devices


class _FakeStrategy:
    def __init__(self, devices: tuple[str, ...]) -> None:
        self.extended = _FakeExtended(devices)


def test_resolve_jit_compile():
    cpu = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert resolve_jit_compile("auto", cpu) is False
    assert resolve_jit_compile(True, cpu) is True
    assert resolve_jit_compile(False, cpu) is False
    gpus = _FakeStrategy(("/job:localhost/replica:0/task:0/device:GPU:0",))
    assert resolve_jit_compile("auto", gpus) is True
    assert resolve_jit_compile(False, gpus) is False
    with pytest.raises(ValueError, match="jit_compile"):
        resolve_jit_compile("xla", cpu)


def test_config_jit_compile_accepts_auto_true_false():
    assert ExperimentConfig().run.jit_compile == "auto"
    for text, want in (("auto", "auto"), ("true", True), ("false", False)):
        cfg = from_dict(ExperimentConfig, apply_overrides({}, [f"run.jit_compile={text}"]))
        assert cfg.run.jit_compile == want
    with pytest.raises(ConfigError, match="run.jit_compile"):
        from_dict(ExperimentConfig, {"run": {"jit_compile": "xla"}})


def test_xla_and_no_xla_agree_and_steps_per_execution_does_not_matter():
    results = {}
    for jit, spe in ((True, 1), (False, 1), (True, 3), (False, 3)):
        tr = _trainer(jit, spe)
        assert tr.jit_compile is jit
        res = tr.train(iter(_dataset()), 7)
        assert res.steps == 7 and res.examples == 7 * 16
        assert int(tr.optimizer.iterations.numpy()) == 7
        weights = [w.numpy() for w in tr.model.weights]
        results[jit, spe] = (res, weights, tr.metrics.result())
    ref_res, ref_w, ref_m = results[False, 1]
    assert set(ref_res.stats) == set(tr.metrics.stat_shapes())
    for res, weights, metrics in results.values():
        assert res.loss == pytest.approx(ref_res.loss, rel=1e-5)
        for a, b in zip(weights, ref_w):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        for k, v in res.stats.items():
            assert v.shape == ref_res.stats[k].shape
        assert metrics["f1_mean"] == pytest.approx(ref_m["f1_mean"], abs=1e-6)


def test_each_iterator_is_consumed_in_order():
    ds = tf.data.Dataset.range(100).map(
        lambda i: (tf.fill((2, 16, 16, 3), tf.cast(i, tf.float32) / 100.0), {"au": tf.zeros((2, 11))})
    )  # fmt: skip
    tr = _trainer(False)
    tr.global_batch_size = 2
    a, b = iter(ds), iter(ds)
    tr.train(a, 3)
    tr.train(b, 1)
    tr.train(a, 2)
    assert len(tr._train_fns) == 2
    assert float(next(a)[0][0, 0, 0, 0]) == pytest.approx(0.05)
    assert float(next(b)[0][0, 0, 0, 0]) == pytest.approx(0.01)
