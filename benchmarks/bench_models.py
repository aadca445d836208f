"""Build time and training-step throughput of the slim models, with XLA off and on.

Measures, for Inception V4 @ 299, Inception V2 @ 224 and VGG16 @ 224 (slim classifiers, 1001 or
1000 classes):

- build time of ``create_model`` (graph construction and weight initialisation);
- one training step (forward, softmax cross-entropy on the logits -- plus the auxiliary logits for
  Inception V4 -- backward, SGD update) as a ``tf.function``, without and with
  ``jit_compile=True``: the first call (trace + compile) and the steady-state images/s.

Run from a checkout: ``python benchmarks/bench_models.py [--batch 8] [--steps 3]``. This is a
measurement script, not a test; numbers depend on the machine (CPU by default: ``--device``).
"""

from __future__ import annotations

import argparse
import gc
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIGS = {
    "inception_v4": (299, 1001),
    "inception_v2": (224, 1001),
    "vgg16": (224, 1000),
}


def _train_step_fn(model, optimizer, jit: bool):
    import tensorflow as tf

    def loss_of(out, labels):
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits
        if isinstance(out, dict):
            return tf.reduce_mean(ce(labels, out["logits"])) + 0.4 * tf.reduce_mean(
                ce(labels, out["aux_logits"])
            )
        return tf.reduce_mean(ce(labels, out))

    @tf.function(jit_compile=jit)
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_of(model(images, training=True), labels)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def bench(name: str, batch: int, steps: int, device: str) -> dict[str, float]:
    import keras
    import tensorflow as tf

    from fer_tf.models import create_model

    size, classes = CONFIGS[name]
    result: dict[str, float] = {}
    with tf.device(device):
        t0 = time.perf_counter()
        model = create_model(name, classes=classes)
        result["build_s"] = time.perf_counter() - t0
        images = tf.random.stateless_uniform((batch, size, size, 3), (1, 2), -1.0, 1.0)
        labels = tf.random.stateless_uniform((batch,), (3, 4), 0, classes, dtype=tf.int32)
        for jit in (False, True):
            key = "xla" if jit else "eager_graph"
            optimizer = keras.optimizers.SGD(0.001)
            optimizer.build(model.trainable_variables)
            step = _train_step_fn(model, optimizer, jit)
            t0 = time.perf_counter()
            float(step(images, labels))
            result[f"{key}_first_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = step(images, labels)
            float(loss)
            elapsed = time.perf_counter() - t0
            result[f"{key}_img_s"] = batch * steps / elapsed
    del model
    gc.collect()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps after the first call")
    parser.add_argument("--device", default="/CPU:0")
    args = parser.parse_args()

    import tensorflow as tf

    print(
        f"TF {tf.__version__}, device {args.device}, batch {args.batch}, {args.steps} timed steps"
        f", {os.cpu_count()} CPUs"
    )
    header = (
        f"{'model':<14}{'size':>5}{'build s':>9}{'1st step s':>12}{'img/s':>8}"
        f"{'1st XLA s':>11}{'XLA img/s':>11}{'XLA/no-XLA':>12}"
    )
    print(header)
    print("-" * len(header))
    for name in args.models:
        r = bench(name, args.batch, args.steps, args.device)
        ratio = r["xla_img_s"] / r["eager_graph_img_s"]
        print(
            f"{name:<14}{CONFIGS[name][0]:>5}{r['build_s']:>9.1f}{r['eager_graph_first_s']:>12.1f}"
            f"{r['eager_graph_img_s']:>8.2f}{r['xla_first_s']:>11.1f}{r['xla_img_s']:>11.2f}"
            f"{ratio:>11.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
