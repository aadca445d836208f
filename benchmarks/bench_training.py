"""Training throughput: our loop with XLA vs without XLA vs ``model.fit`` defaults; loop overhead.

    python benchmarks/bench_training.py [--steps 5] [--models inception_v2,inception_v4]

For each model (Inception V2 at 224 px, Inception V4 at 299 px, batch 16, AU task, 11 outputs,
random in-memory images) it prints images/s of

- ``fer_tf`` loop, ``jit_compile=True`` (the per-replica forward/backward is one XLA cluster);
- ``fer_tf`` loop, ``jit_compile=False``;
- ``model.fit`` with Keras defaults (``compile()`` with RMSProp and sigmoid BCE);

then, on a tiny model, the per-step overhead of the loop (``Trainer.train``) against a bare
``tf.function(jit_compile=True)`` step doing the same forward/backward/update on the same batch.
Targets (issue 6): XLA >= 1.3x no-XLA on CPU; overhead < 5%. Not a test: it prints, it does not
assert.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fer_tf.tasks import resolve_task  # noqa: E402
from fer_tf.training import toy  # noqa: E402
from fer_tf.training.loop import Trainer  # noqa: E402
from fer_tf.training.optim import make_optimizer  # noqa: E402

SIZES = {"inception_v2": 224, "inception_v4": 299}


def _data(batch: int, size: int, k: int) -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    y = (rng.uniform(size=(batch, k)) > 0.7).astype(np.float32)
    return tf.data.Dataset.from_tensors((x, {"au": y})).repeat()


def _model(name: str, size: int, k: int) -> keras.Model:
    if name == "tiny":
        return toy.toy_model(k, size=size, dropout=0.0)
    from fer_tf.models import create_model

    kw = {"include_top": True, "input_shape": (size, size, 3), "classes": k}
    if name == "inception_v4":
        kw["aux_logits"] = False
    return create_model(name, **kw)


def bench_loop(name: str, size: int, batch: int, steps: int, jit: bool, spe: int = 1) -> float:
    """Images/s of :class:`Trainer` (after one warm-up call)."""
    task = resolve_task("au")
    st = tf.distribute.OneDeviceStrategy("/cpu:0")
    with st.scope():
        model = _model(name, size, task.num_outputs)
        opt = make_optimizer("rmsprop", 1e-3)
    tr = Trainer(
        model, task, opt, st, global_batch_size=batch, jit_compile=jit, steps_per_execution=spe
    )
    it = iter(_data(batch, size, task.num_outputs))
    tr.train(it, spe)  # compile
    t = time.perf_counter()
    tr.train(it, steps)
    return steps * batch / (time.perf_counter() - t)


def bench_fit(name: str, size: int, batch: int, steps: int) -> float:
    """Images/s of ``model.fit`` with default compile settings."""
    model = _model(name, size, 11)
    model.compile(optimizer="rmsprop", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    ds = _data(batch, size, 11).map(lambda x, y: (x, y["au"]))
    model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)  # compile
    t = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - t)


def bench_bare(size: int, batch: int, steps: int) -> float:
    """Seconds per step of a bare XLA-compiled step on the tiny model (the lower bound)."""
    model = toy.toy_model(11, size=size, dropout=0.0)
    opt = make_optimizer("rmsprop", 1e-3)
    opt.build(model.trainable_variables)
    x, y = next(iter(_data(batch, size, 11)))
    y = y["au"]

    @tf.function(jit_compile=True)
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            z = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(y, z))
        opt.apply_gradients(
            zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        )
        return loss

    @tf.function
    def run(n: tf.Tensor) -> tf.Tensor:
        acc = tf.constant(0.0)
        for _ in tf.range(n):
            acc += step(x, y)
        return acc

    run(tf.constant(2))
    t = time.perf_counter()
    float(run(tf.constant(steps)))
    return (time.perf_counter() - t) / steps


def main(argv: list[str] | None = None) -> None:
    """Run and print the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--models", default="inception_v2,inception_v4")
    p.add_argument("--tiny-steps", type=int, default=400)
    args = p.parse_args(argv)
    print(
        f"TF {tf.__version__}, Keras {keras.__version__}, CPU threads: "
        f"{os.cpu_count()}, batch {args.batch}, {args.steps} timed steps"
    )
    for name in [m for m in args.models.split(",") if m]:
        size = SIZES.get(name, 224)
        xla = bench_loop(name, size, args.batch, args.steps, jit=True)
        plain = bench_loop(name, size, args.batch, args.steps, jit=False)
        fit = bench_fit(name, size, args.batch, args.steps)
        print(
            f"{name}@{size}: loop+XLA {xla:7.2f} img/s | loop no-XLA {plain:7.2f} img/s | "
            f"model.fit {fit:7.2f} img/s | XLA/no-XLA {xla / plain:.2f}x | "
            f"loop+XLA/fit {xla / fit:.2f}x",
            flush=True,
        )
    bare = bench_bare(32, 32, args.tiny_steps)
    for spe in (1, 50):
        ours = 32 / bench_loop("tiny", 32, 32, args.tiny_steps, jit=True, spe=spe)
        print(
            f"tiny@32 batch 32: bare compiled step {bare * 1e3:.3f} ms | loop "
            f"(steps_per_execution={spe}) {ours * 1e3:.3f} ms | overhead "
            f"{(ours - bare) / bare * 100:+.1f}%",
            flush=True,
        )


if __name__ == "__main__":
    main()
