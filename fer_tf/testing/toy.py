"""Tiny learnable data and models for tests, benchmarks and smoke runs of the trainer.

The data are in-memory ``tf.data`` pipelines with the same element structure as
:func:`fer_tf.data.pipeline.make_dataset` (``(images, labels_dict)``), generated from a seed, so a
run is reproducible. Each label is a simple function of mean colour in image quadrants, so a
small CNN learns it in a few dozen steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["toy_arrays", "toy_dataset", "toy_model"]


def toy_arrays(
    n: int, *, size: int = 16, num_aus: int = 3, seed: int = 0, unknown_fraction: float = 0.1
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Images and labels for every task.

    Args:
        n: examples.
        size: image side in pixels.
        num_aus: AU labels per example.
        seed: random seed.
        unknown_fraction: fraction of AU labels set to -1 (unknown).

    Returns:
        ``(images [n, size, size, 3] float32 in [0, 1], labels)`` with labels ``au`` [n, K] int
        (1/0/-1), ``va`` [n, 2] float, ``posed`` [n] in {0, 1}, ``emotion`` [n] in 0..6.
    """
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.3, size=(n, size, size, 3)).astype(np.float32)
    h = size // 2
    quads = [(slice(0, h), slice(0, h)), (slice(0, h), slice(h, None))]
    quads += [(slice(h, None), slice(0, h)), (slice(h, None), slice(h, None))]
    bright = rng.uniform(0.0, 1.0, size=(n, 4)).astype(np.float32)
    for q, (rs, cs) in enumerate(quads):
        images[:, rs, cs, q % 3] += 0.7 * bright[:, q, None, None]
    au = np.stack([(bright[:, k % 4] > 0.5).astype(np.int64) for k in range(num_aus)], axis=1)
    au[rng.uniform(size=au.shape) < unknown_fraction] = -1
    va = np.stack([bright[:, 0] - bright[:, 1], bright[:, 2] - 0.5], axis=1).astype(np.float32)
    posed = (bright[:, 0] > bright[:, 1]).astype(np.int64)
    emotion = np.minimum((bright[:, 2] * 7).astype(np.int64), 6)
    return images, {"au": au, "va": va, "posed": posed, "emotion": emotion}


def toy_dataset(
    n: int,
    batch_size: int,
    *,
    size: int = 16,
    num_aus: int = 3,
    seed: int = 0,
    shuffle: bool = True,
    repeat: bool = True,
) -> Any:
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches from :func:`toy_arrays`.

    Args:
        n: examples.
        batch_size: global batch size.
        size: image side.
        num_aus: AU labels.
        seed: data and shuffle seed.
        shuffle: shuffle each epoch (seeded).
        repeat: repeat forever.

    Returns:
        The dataset (batches of exactly ``batch_size`` when repeating).
    """
    import tensorflow as tf

    images, labels = toy_arrays(n, size=size, num_aus=num_aus, seed=seed)
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(2)


def toy_model(
    num_outputs: int,
    *,
    size: int = 16,
    dropout: float = 0.1,
    aux: bool = False,
    seed: int = 0,
    batchnorm: bool = True,
) -> Any:
    """A small CNN with BatchNorm and dropout (optionally with auxiliary logits).

    Args:
        num_outputs: logits.
        size: input side.
        dropout: dropout rate before the logits.
        aux: also return auxiliary logits (``{"logits", "aux_logits"}``), like Inception V4.
        seed: initializer seed.
        batchnorm: include the BatchNorm layer (its batch statistics depend on how a batch is
            split across replicas, so distribution-equivalence tests turn it off).

    Returns:
        A ``keras.Model``.
    """
    import keras

    init = keras.initializers.GlorotUniform(seed=seed)
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", kernel_initializer=init)(inp)
    if batchnorm:
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", kernel_initializer=init)(x)
    x = keras.layers.ReLU()(x)
    feat = keras.layers.GlobalAveragePooling2D()(x)
    h = keras.layers.Dropout(dropout, seed=seed)(feat)
    logits = keras.layers.Dense(num_outputs, kernel_initializer=init, dtype="float32")(h)
    if aux:
        aux_logits = keras.layers.Dense(num_outputs, kernel_initializer=init, dtype="float32")(feat)
        return keras.Model(inp, {"logits": logits, "aux_logits": aux_logits})
    return keras.Model(inp, logits)


def main(argv: list[str] | None = None) -> int:
    """Run a toy experiment (used by the subprocess tests of resume and distribution).

    ``python -m fer_tf.testing.toy --model-dir D [--logical-cpus 2] [--weights-out W.npz]
    [--resume] [--kill-after-step N] [--set key=value ...]``: trains :func:`toy_model` on
    :func:`toy_dataset` with the full controller, then saves the final weights to
    ``--weights-out``. ``--kill-after-step N`` adds a
    :class:`~fer_tf.testing.faults.KillAfterStep` action: the process dies with SIGKILL after
    step N (the resume tests).

    Args:
        argv: command-line arguments.

    Returns:
        0 on success, 3 when the run stopped on a non-finite loss, 130 when interrupted.
    """
    import argparse

    p = argparse.ArgumentParser(prog="python -m fer_tf.testing.toy")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--logical-cpus", type=int, default=0)
    p.add_argument("--weights-out")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--kill-after-step", type=int, default=0)
    p.add_argument("--examples", type=int, default=256)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--no-batchnorm", action="store_true")
    args = p.parse_args(argv)
    if args.logical_cpus:
        from fer_tf.training.strategy import configure_logical_cpus

        configure_logical_cpus(args.logical_cpus)
    from fer_tf.config import load_config
    from fer_tf.testing.faults import KillAfterStep
    from fer_tf.training.experiment import DataSource, prepare_experiment

    base = ["data.aus=1,2,4", "run.model_dir=" + args.model_dir, "optimizer.name=adam"]
    config = load_config(None, [*base, *args.set])
    size, n = args.size, args.examples
    num_aus = len(config.data.aus.split(",")) if "," in config.data.aus else 3
    data = DataSource(
        train=lambda b: toy_dataset(n, b, size=size, num_aus=num_aus, seed=config.run.seed),
        eval=lambda b: toy_dataset(
            n // 2,
            b,
            size=size,
            num_aus=num_aus,
            seed=config.run.seed + 1,
            shuffle=False,
            repeat=False,
        ),
        steps_per_epoch=max(1, n // config.data.batch_size),
    )
    controller = prepare_experiment(
        config,
        resume=args.resume,
        data=data,
        model_fn=lambda c, t: toy_model(
            t.num_outputs, size=size, dropout=c.model.dropout, batchnorm=not args.no_batchnorm
        ),
        progress=False,
        actions=[KillAfterStep(args.kill_after_step)] if args.kill_after_step else [],
    )
    result = controller.run()
    if args.weights_out:
        np.savez(args.weights_out, *[np.asarray(v.numpy()) for v in result.model.weights])
    print(f"status={result.status} steps={result.steps}")
    return {"non_finite": 3, "interrupted": 130}.get(result.status, 0)


if __name__ == "__main__":
    import sys

    sys.exit(main())
