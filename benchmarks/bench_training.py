"""Training throughput: our loop with XLA vs without XLA vs ``model.fit`` defaults; loop overhead.

    python benchmarks/bench_training.py [--steps 5] [--repeats 3] [--models inception_v2,...]
    python benchmarks/bench_training.py --models "" --overhead-only   # just the overhead part

For each model (Inception V2 at 224 px, Inception V4 at 299 px, batch 16, AU task, 11 outputs,
random in-memory images) it prints images/s of

- ``fer_tf`` loop, ``jit_compile=True`` (the per-replica step is one XLA cluster);
- ``fer_tf`` loop, ``jit_compile=False`` (TensorFlow's kernels: oneDNN on CPU);
- ``model.fit`` with Keras defaults (``compile()`` with RMSProp and sigmoid BCE; Keras'
  ``jit_compile="auto"`` turns XLA off on a CPU-only machine);

then, on a tiny model, the per-step cost of the loop (``Trainer.train``) against a bare
``tf.function(jit_compile=True)`` step doing the same forward/backward/RMSProp update on batches
from the same kind of iterator, driven the same way (``steps_per_execution`` steps per call, a
``tf.range`` loop pulling batches in-graph):

- "equal work": the bare step also computes the task's metric statistics and sums them and the
  loss, i.e. exactly the work the loop does; the difference is the loop's own overhead;
- "with metrics": against the bare step without metrics (what metrics cost on top).

All configurations of one comparison are built, compiled and warmed up first (compilation is
never timed), then timed in interleaved rounds (A, B, C, A, B, C, ...) in one process, so load
from other processes hits them alike; the median round is reported (and the best, for the
overhead). Targets (issue 6): XLA >= 1.3x no-XLA on CPU; overhead < 5%. The measured values are
printed next to the targets; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from fer_tf.tasks import resolve_task  # noqa: E402
from fer_tf.testing import toy  # noqa: E402
from fer_tf.training.loop import Trainer  # noqa: E402
from fer_tf.training.optim import make_optimizer  # noqa: E402

SIZES = {"inception_v2": 224, "inception_v4": 299}
K = 11  # outputs (EmotioNet's 11 AUs)


def _data(batch: int, size: int, k: int = K, distinct: int = 4) -> tf.data.Dataset:
    """``distinct`` different random batches, repeated (static shapes: drop_remainder)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch * distinct, size, size, 3)).astype(np.float32)
    y = (rng.uniform(size=(batch * distinct, k)) > 0.7).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, {"au": y})).batch(batch, drop_remainder=True)
    return ds.cache().repeat().prefetch(2)


def _model(name: str, size: int, k: int = K) -> keras.Model:
    if name == "tiny":
        return toy.toy_model(k, size=size, dropout=0.0)
    from fer_tf.models import create_model

    kw = {"include_top": True, "input_shape": (size, size, 3), "classes": k}
    if name == "inception_v4":
        kw["aux_logits"] = False
    return create_model(name, **kw)


def _interleaved(runners: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    """Seconds of each runner over ``repeats`` interleaved rounds."""
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeats):
        for key, fn in runners.items():
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    return times


def loop_runner(
    name: str, size: int, batch: int, steps: int, jit: bool, spe: int = 1
) -> Callable[[], None]:
    """A warmed-up :class:`Trainer` that runs ``steps`` steps per call."""
    task = resolve_task("au")
    st = tf.distribute.OneDeviceStrategy("/cpu:0")
    with st.scope():
        model = _model(name, size, task.num_outputs)
        opt = make_optimizer("rmsprop", 1e-3)
    tr = Trainer(
        model, task, opt, st, global_batch_size=batch, jit_compile=jit, steps_per_execution=spe
    )
    it = iter(_data(batch, size, task.num_outputs))
    tr.train(it, 2 * spe)  # trace + compile, then one more warm call
    return lambda: tr.train(it, steps)


def fit_runner(name: str, size: int, batch: int, steps: int) -> Callable[[], None]:
    """A warmed-up ``model.fit`` with default compile settings."""
    model = _model(name, size)
    model.compile(optimizer="rmsprop", loss=keras.losses.BinaryCrossentropy(from_logits=True))
    ds = _data(batch, size).map(lambda x, y: (x, y["au"]))
    model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # compile
    return lambda: model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)


def bare_runner(
    size: int, batch: int, steps: int, spe: int, with_metrics: bool
) -> Callable[[], None]:
    """A bare ``tf.function(jit_compile=True)`` step on the tiny model, ``spe`` steps per call.

    Same model, optimizer, data and iterator as the loop; no strategy, no NaN check, no Python
    bookkeeping. ``with_metrics`` adds the task's metric statistics and loss sums (the loop's
    work).
    """
    task = resolve_task("au")
    metrics = task.make_metrics()
    model = toy.toy_model(K, size=size, dropout=0.0)
    opt = make_optimizer("rmsprop", 1e-3)
    opt.build(model.trainable_variables)
    it = iter(_data(batch, size))

    @tf.function(jit_compile=True)
    def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        with tf.GradientTape() as tape:
            z = model(x, training=True)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(y, z))
        variables = model.trainable_variables
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss, (metrics.batch_stats(y, z) if with_metrics else {})

    @tf.function
    def run(n: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        acc = tf.constant(0.0)
        acc_stats = metrics.zero_stats() if with_metrics else {}
        for _ in tf.range(n):
            x, y = next(it)
            loss, stats = step(x, y["au"])
            acc += loss
            acc_stats = {k: acc_stats[k] + stats[k] for k in acc_stats}
        return acc, acc_stats

    def go() -> None:
        done = 0
        while done < steps:
            k = min(spe, steps - done)
            loss, stats = run(tf.constant(k, tf.int32))
            float(loss)
            if with_metrics:
                {key: v.numpy() for key, v in stats.items()}
            done += k

    run(tf.constant(spe, tf.int32))
    run(tf.constant(spe, tf.int32))
    return go


def bench_model(name: str, batch: int, steps: int, repeats: int) -> None:
    """Print images/s of loop+XLA, loop without XLA and ``model.fit`` for one model."""
    size = SIZES.get(name, 224)
    t = time.perf_counter()
    runners = {
        "xla": loop_runner(name, size, batch, steps, jit=True),
        "no_xla": loop_runner(name, size, batch, steps, jit=False),
        "fit": fit_runner(name, size, batch, steps),
    }
    setup = time.perf_counter() - t
    times = _interleaved(runners, repeats)
    ips = {k: steps * batch / statistics.median(v) for k, v in times.items()}
    rounds = " ".join(
        f"{k}=[{', '.join(f'{steps * batch / s:.2f}' for s in v)}]" for k, v in times.items()
    )
    ratio = ips["xla"] / ips["no_xla"]
    print(
        f"{name}@{size} batch {batch}: loop+XLA {ips['xla']:6.2f} img/s | loop no-XLA "
        f"{ips['no_xla']:6.2f} img/s | model.fit {ips['fit']:6.2f} img/s | XLA/no-XLA "
        f"{ratio:.2f}x (target >= 1.3x: {'met' if ratio >= 1.3 else 'NOT met'}) | "
        f"no-XLA/fit {ips['no_xla'] / ips['fit']:.2f}x",
        flush=True,
    )
    print(f"  per-round img/s: {rounds}; setup+compile {setup:.0f} s (not timed)", flush=True)


def bench_overhead(steps: int, repeats: int, spes: tuple[int, ...]) -> None:
    """Print the loop's per-step cost against the bare compiled step on the tiny model."""
    size, batch = 32, 32
    for spe in spes:
        runners = {
            "bare": bare_runner(size, batch, steps, spe, with_metrics=False),
            "bare+metrics": bare_runner(size, batch, steps, spe, with_metrics=True),
            "loop": loop_runner("tiny", size, batch, steps, jit=True, spe=spe),
        }
        times = _interleaved(runners, repeats)
        med = {k: statistics.median(v) / steps * 1e3 for k, v in times.items()}
        best = {k: min(v) / steps * 1e3 for k, v in times.items()}
        eq = (med["loop"] - med["bare+metrics"]) / med["bare+metrics"] * 100
        eq_best = (best["loop"] - best["bare+metrics"]) / best["bare+metrics"] * 100
        wm = (med["loop"] - med["bare"]) / med["bare"] * 100
        print(
            f"tiny@{size} batch {batch}, steps_per_execution={spe}: ms/step (median of {repeats}) "
            f"bare {med['bare']:.3f} | bare+metrics {med['bare+metrics']:.3f} | loop "
            f"{med['loop']:.3f} || overhead, equal work {eq:+.1f}% (best rounds {eq_best:+.1f}%; "
            f"target < 5%: {'met' if eq < 5 else 'NOT met'}) | with metrics vs bare {wm:+.1f}%",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    """Run and print the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5, help="timed steps per round (big models)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (big models)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--models", default="inception_v2,inception_v4")
    p.add_argument("--tiny-steps", type=int, default=200, help="timed steps per round (tiny)")
    p.add_argument("--tiny-repeats", type=int, default=7)
    p.add_argument("--spe", default="1,50", help="steps_per_execution values for the overhead")
    p.add_argument("--overhead-only", action="store_true")
    args = p.parse_args(argv)
    print(
        f"TF {tf.__version__}, Keras {keras.__version__}, CPU threads: {os.cpu_count()}, "
        f"devices: {[d.device_type for d in tf.config.list_physical_devices()]}",
        flush=True,
    )
    if not args.overhead_only:
        print(f"batch {args.batch}, {args.steps} timed steps x {args.repeats} rounds", flush=True)
        for name in [m for m in args.models.split(",") if m]:
            bench_model(name, args.batch, args.steps, args.repeats)
    spes = tuple(int(s) for s in args.spe.split(",") if s)
    bench_overhead(args.tiny_steps, args.tiny_repeats, spes)


if __name__ == "__main__":
    main()
