"""Overhead of the angular-separation diagnostic (Korber, after Gedeon) on a training epoch.

    python benchmarks/bench_angular_separation.py [--models tiny_cnn,shallow_cnn,...]
        [--probe 64] [--units 256] [--batch 32] [--epoch-images 1000]

For each model (random images at its input size, 7 classes) it measures the seconds of one
training step (``train_on_batch``, SGD, after a warm-up; the median of ``--steps``) and of one
:func:`fer_tf.evaluation.diagnostics.angular_separation` measurement (``--probe`` images, at
most ``--units`` units of the end point, after a warm-up that builds the end-point model; the
median of 3), at the penultimate end point and at the last spatial one. The overhead is one
measurement over one epoch of ``--epoch-images`` images (Korber's SFEW training split holds
about 1,000 faces); ``train.angular_separation_every: N`` divides it by N. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from fer_tf import models  # noqa: E402
from fer_tf.evaluation.diagnostics import (  # noqa: E402
    angular_separation,
    penultimate_end_point,
)
from fer_tf.models.endpoints import get_endpoints, list_endpoints  # noqa: E402


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: tracing, the end-point model
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _last_spatial(model) -> str:
    eps = get_endpoints(model)
    spatial = [n for n, t in eps.items() if len(t.shape) == 4 and "aux" not in n.lower()]
    return spatial[-1]


def bench(name: str, args: argparse.Namespace) -> list[str]:
    model = models.create_model(name, include_top=True, weights=None, classes=7)
    size, channels = model.input_shape[1], model.input_shape[3]
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (args.batch, size, size, channels)).astype(np.float32)
    y = rng.integers(0, 7, args.batch)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    step = _median_seconds(lambda: model.train_on_batch(x, y), args.steps)
    epoch = step * args.epoch_images / args.batch
    probe = rng.uniform(-1, 1, (args.probe, size, size, channels)).astype(np.float32)
    lines = []
    for ep in dict.fromkeys([penultimate_end_point(model), _last_spatial(model)]):
        units = {"n": 0}

        def measure(ep=ep, units=units):
            a = angular_separation(model, probe, ep, args.units, 0)
            units["n"] = a.size

        t = _median_seconds(measure, 3)
        lines.append(
            f"| {name} ({size} px) | {ep} | {units['n']} | {step:.3f} | {epoch:.1f} | "
            f"{t:.3f} | {100 * t / epoch:.2f}% |"
        )
    print(f"{name}: end points {list_endpoints(model)[:3]}...", flush=True)
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="tiny_cnn,fer2013_cnn,shallow_cnn,inception_resnet_v1")
    p.add_argument("--probe", type=int, default=64)
    p.add_argument("--units", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--epoch-images", type=int, default=1000)
    args = p.parse_args()
    rows = []
    for name in [m for m in args.models.split(",") if m]:
        rows += bench(name, args)
    print(
        f"\nprobe {args.probe} images, at most {args.units} units, batch {args.batch}, "
        f"epoch of {args.epoch_images} images\n"
    )
    print("| model | end point | pairs | step s | epoch s | measurement s | overhead |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
