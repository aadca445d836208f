"""Optimizers and learning-rate schedules (slim defaults where the seeds used slim).

- RMSProp: slim's ``rmsprop`` with decay (``rho``) 0.9, momentum 0.9, epsilon 1.0 (Bartissol 2017).
- Adam, SGD with momentum.
- Schedules: ``constant``; ``exponential`` = slim's ``exponential_decay`` with factor 0.94 every
  ``decay_epochs`` = 2 epochs, staircase; ``cosine`` decay to 0 over the run; any of them behind a
  linear warm-up of ``warmup_epochs``.
- Weight decay: coupled L2 on kernels (added to the loss by the trainer, slim ``4e-5``), or
  decoupled (the optimizer's ``weight_decay``, biases and normalisation excluded).
- Mixed float16: the optimizer is wrapped in Keras 3's ``LossScaleOptimizer``.
"""

from __future__ import annotations

import math
from typing import Any

import keras

__all__ = ["WarmUp", "make_schedule", "make_optimizer"]


@keras.saving.register_keras_serializable(package="fer_tf")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to the base schedule's value, then the base schedule (shifted).

    Args:
        base: the schedule after warm-up (or a float).
        warmup_steps: steps of the linear ramp (>= 1).
    """

    def __init__(self, base: Any, warmup_steps: int) -> None:
        self.base = base
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: Any) -> Any:
        step = keras.ops.cast(step, "float32")
        w = float(self.warmup_steps)
        if callable(self.base):
            after = self.base(keras.ops.maximum(step - w, 0.0))
            peak = self.base(0.0)
        else:
            after = peak = keras.ops.convert_to_tensor(self.base, "float32")
        ramp = peak * (step + 1.0) / w
        return keras.ops.where(step < w, ramp, after)

    def get_config(self) -> dict[str, Any]:
        """Serializable config."""
        base = self.base
        if isinstance(base, keras.optimizers.schedules.LearningRateSchedule):
            base = keras.saving.serialize_keras_object(base)
        return {"base": base, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WarmUp:
        """Inverse of :meth:`get_config`."""
        base = config["base"]
        if isinstance(base, dict):
            base = keras.saving.deserialize_keras_object(base)
        return cls(base, config["warmup_steps"])


def make_schedule(
    name: str,
    learning_rate: float,
    *,
    steps_per_epoch: int,
    total_steps: int,
    decay_rate: float = 0.94,
    decay_epochs: float = 2.0,
    warmup_epochs: float = 0.0,
) -> Any:
    """Build a learning-rate schedule.

    Args:
        name: ``constant``, ``exponential`` (slim staircase) or ``cosine``.
        learning_rate: peak learning rate.
        steps_per_epoch: optimizer steps per epoch.
        total_steps: optimizer steps in the whole run (cosine length).
        decay_rate: exponential factor per decay period.
        decay_epochs: epochs per decay period (staircase).
        warmup_epochs: linear warm-up length in epochs (0 = none).

    Returns:
        A float (constant, no warm-up) or a ``LearningRateSchedule``.

    Raises:
        ValueError: for an unknown name or non-positive step counts.
    """
    if steps_per_epoch < 1 or total_steps < 1:
        raise ValueError(
            f"The step counts must be >= 1. Got steps_per_epoch={steps_per_epoch}, "
            f"total_steps={total_steps}."
        )
    warmup = int(round(warmup_epochs * steps_per_epoch))
    if name == "constant":
        sched: Any = float(learning_rate)
    elif name == "exponential":
        sched = keras.optimizers.schedules.ExponentialDecay(
            learning_rate,
            decay_steps=max(1, int(math.ceil(decay_epochs * steps_per_epoch))),
            decay_rate=decay_rate,
            staircase=True,
        )
    elif name == "cosine":
        sched = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(1, total_steps - warmup)
        )
    else:
        raise ValueError(
            f"The 'schedule' parameter must be one of ['constant', 'exponential', 'cosine']. "
            f"Got {name!r} instead."
        )
    return WarmUp(sched, warmup) if warmup > 0 else sched


def make_optimizer(
    name: str,
    learning_rate: Any,
    *,
    momentum: float = 0.9,
    rmsprop_decay: float = 0.9,
    epsilon: float = 1.0,
    decoupled_weight_decay: float = 0.0,
    clipnorm: float | None = None,
    ema_decay: float | None = None,
    loss_scale: bool = False,
) -> Any:
    """Build a Keras 3 optimizer.

    Args:
        name: ``rmsprop``, ``adam`` or ``sgd``.
        learning_rate: float or schedule.
        momentum: RMSProp / SGD momentum.
        rmsprop_decay: RMSProp ``rho`` (slim ``decay``).
        epsilon: RMSProp epsilon (slim 1.0; Adam uses 1e-7 regardless).
        decoupled_weight_decay: decoupled weight decay (0 = off); biases, BatchNorm and
            normalisation weights are excluded.
        clipnorm: clip the gradient's global norm (per replica contribution).
        ema_decay: keep an exponential moving average of the weights (slim
            ``moving_average_decay``).
        loss_scale: wrap in ``LossScaleOptimizer`` (``mixed_float16``).

    Returns:
        The optimizer.

    Raises:
        ValueError: for an unknown optimizer name.
    """
    common: dict[str, Any] = {"learning_rate": learning_rate}
    if clipnorm:
        common["global_clipnorm"] = float(clipnorm)
    if decoupled_weight_decay:
        common["weight_decay"] = float(decoupled_weight_decay)
    if ema_decay:
        common["use_ema"] = True
        common["ema_momentum"] = float(ema_decay)
    if name == "rmsprop":
        opt = keras.optimizers.RMSprop(
            rho=rmsprop_decay, momentum=momentum, epsilon=epsilon, **common
        )
    elif name == "adam":
        opt = keras.optimizers.Adam(**common)
    elif name == "sgd":
        opt = keras.optimizers.SGD(momentum=momentum, **common)
    else:
        raise ValueError(
            f"The 'optimizer.name' parameter must be one of ['rmsprop', 'adam', 'sgd']. "
            f"Got {name!r} instead."
        )
    if decoupled_weight_decay:
        opt.exclude_from_weight_decay(
            var_names=["bias", "beta", "gamma", "moving_mean", "moving_variance"]
        )
    if loss_scale:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt
