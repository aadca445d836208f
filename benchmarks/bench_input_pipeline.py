"""Input-pipeline throughput: images/s at 299 px from TFRecords.

Measures three training pipelines built by ``fer_tf.data.make_dataset`` on the same records:

(a) decode-only: decode + preprocess (random crop, resize, flip, normalise), no augmentation;
(b) (a) + the ``christensen2018`` policy, the path users get with ``augment="christensen2018"``
    (parameters drawn per block of examples; per example one fused resampling: resize, flip,
    rotation, scale, translation, crop; then blur, noise, one colour matrix);
(c) (a) + the same augmentations as a chain of stock Keras 3 preprocessing layers applied per
    batch (the naive baseline);
(b-stock) (b) with TensorFlow's stock kernels only (what runs without a C++ compiler or with
    ``FER_TF_NATIVE_OPS=0``): the baseline for fer_tf's native warp and colour kernels;
(b') with ``--batch-variant``: ``christensen2018`` applied to whole batches after batching (the
    vectorised form) instead of per example inside the parallel map.

Prints, side by side, images/s (wall clock), CPU milliseconds per image (all threads, via
``process_time``: hardly affected by other processes), the ratio of each to (a) and the goal
(b) >= 50% of (a). Records are SynthFACS faces (``--record-size`` px JPEGs) written to a
temporary directory; serialized records are cached in memory so the disk is not measured.

Usage::

    python benchmarks/bench_input_pipeline.py [--batches 20] [--batch-size 32] [--size 299]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def _write_records(directory: str, n: int, size: int) -> None:
    from fer_tf import synthfacs

    synthfacs.write_records(directory, n, seed=0, size=size, val_fraction=0.0, num_shards=4)


def _keras_chain(seed: int):
    import keras

    layers = [
        keras.layers.RandomRotation(10.0 / 360.0, seed=seed),
        keras.layers.RandomZoom((-0.1, 0.05), seed=seed + 1),
        keras.layers.RandomTranslation(0.05, 0.05, seed=seed + 2),
        keras.layers.RandomFlip("horizontal", seed=seed + 3),
        keras.layers.RandomZoom((-0.1, 0.0), seed=seed + 4),  # crop 0-5% per side, resized back
        keras.layers.RandomGaussianBlur(factor=1.0, sigma=(0.0, 1.0), seed=seed + 5),
        keras.layers.RandomContrast(0.25, value_range=(0, 1), seed=seed + 6),
        keras.layers.GaussianNoise(0.03, seed=seed + 7),
        keras.layers.RandomBrightness(20.0 / 255.0, value_range=(0, 1), seed=seed + 8),
        keras.layers.RandomSaturation((0.35, 0.65), value_range=(0, 1), seed=seed + 9),
    ]
    model = keras.Sequential(layers)

    def apply(images, _seed):
        import tensorflow as tf

        # The chain works on [0, 1] (GaussianNoise takes stddev <= 1).
        return tf.clip_by_value(model(images / 255.0, training=True), 0.0, 1.0) * 255.0

    return apply


def _throughput(ds, batches: int, warmup: int) -> tuple[float, float]:
    """Return (images/s wall-clock, CPU milliseconds per image over all threads)."""
    it = iter(ds)
    batch = 0
    for _ in range(warmup):
        batch = next(it)[0].shape[0]
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(it)[0].numpy()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return batches * batch / wall, 1000.0 * cpu / (batches * batch)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print (a), (b), (c) side by side with the ratios and the goal.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", help="existing records directory (default: write SynthFACS)")
    parser.add_argument("--num-images", type=int, default=256, help="records to write")
    parser.add_argument("--record-size", type=int, default=320, help="stored image size (px)")
    parser.add_argument("--size", type=int, default=299, help="output image size (px)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per pipeline")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches first")
    parser.add_argument("--repeats", type=int, default=2, help="best of N timings")
    parser.add_argument(
        "--batch-variant",
        action="store_true",
        help="also time christensen2018 applied to whole batches (the vectorised form) after batching",
    )
    args = parser.parse_args(argv)

    import tensorflow as tf

    from fer_tf.data import make_dataset

    print(
        f"TensorFlow {tf.__version__}; CPU cores visible: {os.cpu_count()}; load average: "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    from fer_tf.preprocessing import native

    native.image_ops()
    print(f"fer_tf native kernels: {native.status()}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.records
        if directory is None:
            directory = tmp
            t0 = time.perf_counter()
            _write_records(directory, args.num_images, args.record_size)
            print(
                f"wrote {args.num_images} SynthFACS records at {args.record_size} px "
                f"in {time.perf_counter() - t0:.1f}s"
            )

        def build(augment) -> tf.data.Dataset:
            return make_dataset(
                directory,
                task="au",
                split="train",
                batch_size=args.batch_size,
                image_size=args.size,
                augment=augment,
                cache=True,
                seed=0,
            )

        pipelines = {
            "(a) decode-only (no augmentation)": lambda: build("none"),
            "(b) christensen2018 (fer_tf default)": lambda: build("christensen2018"),
            "(c) Keras layers chain": lambda: build(_keras_chain(0)),
        }

        def build_stock() -> tf.data.Dataset:
            # The map functions are traced inside make_dataset, so switching the native kernels
            # off while it runs gives the fall-back pipeline.
            from fer_tf.preprocessing import augment

            saved = augment._native_module
            augment._native_module = lambda: None
            try:
                return build("christensen2018")
            finally:
                augment._native_module = saved

        pipelines["(b-stock) (b) on TF's stock kernels"] = build_stock
        if args.batch_variant:
            from fer_tf.preprocessing.augment import CHRISTENSEN2018

            pipelines["(b') christensen2018 per batch"] = lambda: build(
                lambda images, seed: CHRISTENSEN2018(images, seed)
            )
        results = {}
        for name, make in pipelines.items():
            runs = [_throughput(make(), args.batches, args.warmup) for _ in range(args.repeats)]
            results[name] = (max(r[0] for r in runs), min(r[1] for r in runs))
    _report(results)


def _report(results: dict[str, tuple[float, float]]) -> None:
    """Print the table (each pipeline next to decode-only) and the goal."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    (a, ca), (b, cb), (c, cc) = list(results.values())[:3]
    print(
        f"{'pipeline':38s} {'images/s':>9s} {'/ (a)':>6s} {'CPU ms/image':>13s} "
        f"{'(a) CPU / this':>15s} {'CPU-bound images/s on ' + str(cores) + ' cores':>31s}"
    )
    for name, (rate, cpu_ms) in results.items():
        print(
            f"{name:38s} {rate:9.1f} {rate / a:6.2f} {cpu_ms:13.2f} {ca / cpu_ms:15.2f} "
            f"{1000.0 * cores / cpu_ms:31.1f}"
        )
    print(
        f"(b) vs (c): {b / c:.2f}x wall-clock, {cc / cb:.2f}x CPU time;  "
        f"(b) vs (a): {b / a:.0%} wall-clock, {ca / cb:.0%} by CPU time"
    )
    stock = results.get("(b-stock) (b) on TF's stock kernels")
    if stock is not None:
        print(
            f"(b) vs (b-stock): {b / stock[0]:.2f}x wall-clock, {stock[1] / cb:.2f}x less CPU time "
            "(the native kernels against TensorFlow's)"
        )
    print(
        f"goal: (b) >= 50% of (a) [{'met' if b / a >= 0.5 else 'NOT met'} wall-clock; "
        f"{'met' if ca / cb >= 0.5 else 'NOT met'} by CPU time: (b) would need <= "
        f"{2 * ca:.2f} CPU-ms/image, it takes {cb:.2f}]"
    )
    print(
        f"load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())} "
        f"(a load above the core count means other processes shared the CPUs)"
    )


if __name__ == "__main__":
    main()
