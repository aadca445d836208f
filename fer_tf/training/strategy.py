"""Distribution strategy resolution and CPU device set-up.

``auto`` picks, in order: a TPU when a TPU resolver is configured (``TPU_NAME`` or an explicit
address), :class:`tf.distribute.MultiWorkerMirroredStrategy` when ``TF_CONFIG`` names a cluster,
:class:`tf.distribute.MirroredStrategy` when more than one GPU is visible, else one device.
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = [
    "STRATEGY_NAMES",
    "resolve_strategy",
    "auto_strategy_name",
    "configure_logical_cpus",
    "strategy_description",
]

STRATEGY_NAMES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


def _tf_config_workers() -> int:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"The TF_CONFIG environment variable is not valid JSON: {exc}.") from exc
    cluster = cfg.get("cluster", {})
    return sum(len(v) for k, v in cluster.items() if k in ("chief", "worker"))


def auto_strategy_name(*, tpu: str | None = None) -> str:
    """The strategy ``auto`` resolves to in this environment.

    Args:
        tpu: TPU address or name (also read from ``TPU_NAME``).

    Returns:
        One of ``tpu``, ``multi_worker``, ``mirrored``, ``one_device``.
    """
    import tensorflow as tf

    if tpu or os.environ.get("TPU_NAME"):
        return "tpu"
    if _tf_config_workers() > 0:
        return "multi_worker"
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return "mirrored"
    return "one_device"


def resolve_strategy(name: str = "auto", *, tpu: str | None = None, devices: Any = None) -> Any:
    """Create a ``tf.distribute.Strategy``.

    Args:
        name: ``auto``, ``one_device``, ``mirrored``, ``multi_worker`` or ``tpu``.
        tpu: TPU address for ``tpu`` (default: ``TPU_NAME`` or the local TPU).
        devices: device list for ``mirrored`` (default: all GPUs, else all logical CPUs).

    Returns:
        The strategy.

    Raises:
        ValueError: for an unknown name or ``multi_worker`` without ``TF_CONFIG``.
    """
    import tensorflow as tf

    if name not in STRATEGY_NAMES:
        raise ValueError(f"The 'strategy' parameter must be one of {STRATEGY_NAMES}. Got {name!r}.")
    if name == "auto":
        name = auto_strategy_name(tpu=tpu)
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu or os.environ.get("TPU_NAME", "")
        )
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "multi_worker":
        if _tf_config_workers() == 0:
            raise ValueError(
                "The 'multi_worker' strategy needs a TF_CONFIG environment variable describing the "
                "cluster (e.g. {'cluster': {'worker': ['host:port', ...]}, 'task': {...}})."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(
            devices=devices,
            cross_device_ops=None if tf.config.list_logical_devices("GPU") else _cpu_reduce(),
        )
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def _cpu_reduce() -> Any:
    import tensorflow as tf

    return tf.distribute.ReductionToOneDevice(reduce_to_device="/cpu:0")


def configure_logical_cpus(n: int) -> None:
    """Split the physical CPU into ``n`` logical devices (for MirroredStrategy tests on CPU).

    Must run before TensorFlow initialises its devices (before any op runs).

    Args:
        n: number of logical CPU devices (>= 1).

    Raises:
        ValueError: if ``n < 1``.
        RuntimeError: if TensorFlow has already initialised its devices.
    """
    import tensorflow as tf

    if n < 1:
        raise ValueError(f"The 'n' parameter must be >= 1. Got {n!r} instead.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
    )


def strategy_description(strategy: Any) -> str:
    """One line: strategy class and replica count."""
    import tensorflow as tf

    name = type(strategy).__name__
    for public in (
        tf.distribute.MultiWorkerMirroredStrategy,
        tf.distribute.MirroredStrategy,
        tf.distribute.OneDeviceStrategy,
        tf.distribute.TPUStrategy,
    ):
        if isinstance(strategy, public):
            name = public.__name__
            break
    if "CollectiveAllReduce" in name:
        name = "MultiWorkerMirroredStrategy"
    return f"{name} with {strategy.num_replicas_in_sync} replica(s)"
