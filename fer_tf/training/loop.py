"""The distributed training step: forward/backward per replica, XLA-compiled; update outside.

:class:`Trainer` owns the model, optimizer and task, and runs steps under ``strategy.run``. It
knows nothing of epochs, checkpoints or files (that is :mod:`fer_tf.training.controller`).

One training step, per replica::

    grads, loss, stats = forward_backward(x, y)  # tf.function(jit_compile=...): one XLA cluster;
                                                 # stats = metrics.batch_stats(y, outputs), additive
    optimizer.apply(grads)                       # outside XLA: all-reduce + update

With a single replica there is nothing to all-reduce, so the update joins the compiled function
(one cluster per step, like ``model.fit(jit_compile=True)``). ``steps_per_execution`` steps run
inside one ``tf.function`` call (a ``tf.range`` loop pulling batches from the iterator in-graph),
summing losses and metric statistics; only the sums cross back to Python, once per call. The
optimizer's slots are built before the first step, so the compiled function never creates
variables.

``jit_compile="auto"`` resolves to XLA on GPU/TPU and no XLA on CPU: XLA's CPU backend is slower
than TensorFlow's oneDNN kernels for these convolutional networks (docs/training.md, "XLA on CPU").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fer_tf.tasks import Task

__all__ = [
    "Trainer",
    "StepResult",
    "NonFiniteLossError",
    "kernel_variables",
    "resolve_jit_compile",
]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class StepResult:
    """Sums over the steps of one call.

    Attributes:
        steps: optimizer steps run.
        examples: training examples seen.
        loss: mean task loss (without regularisation) per step.
        total_loss: mean loss including aux logits and L2.
        stats: metric statistics summed over replicas and steps (numpy).
    """

    steps: int
    examples: int
    loss: float
    total_loss: float
    stats: dict[str, np.ndarray]


def kernel_variables(model: Any) -> list[Any]:
    """Trainable convolution / dense kernels (slim's ``weights_regularizer`` targets)."""
    out = []
    for v in model.trainable_variables:
        leaf = getattr(v, "path", v.name).rsplit("/", 1)[-1]
        if "kernel" in leaf:
            out.append(v)
    return out


def resolve_jit_compile(value: bool | str, strategy: Any) -> bool:
    """Resolve ``run.jit_compile``: ``True``/``False`` as given; ``"auto"`` = XLA on GPU/TPU only.

    Args:
        value: ``True``, ``False`` or ``"auto"``.
        strategy: the ``tf.distribute.Strategy`` whose devices decide ``"auto"``.

    Returns:
        Whether to XLA-compile the per-replica step.

    Raises:
        ValueError: for any other value.
    """
    if isinstance(value, bool):
        return value
    if value != "auto":
        raise ValueError(
            f"The 'jit_compile' parameter must be True, False or 'auto'. Got {value!r} instead."
        )
    devices = getattr(strategy.extended, "worker_devices", ()) or ()
    return (
        any(":GPU:" in d.upper() or ":TPU:" in d.upper() for d in (str(d) for d in devices))
        or "TPU" in type(strategy).__name__
    )


class Trainer:
    """Runs training and evaluation steps of one model on one task under a strategy.

    Create the model and optimizer inside ``strategy.scope()``.

    Args:
        model: a built ``keras.Model`` returning logits (a tensor, a ``(logits, aux)`` tuple or a
            dict with ``logits`` / ``aux_logits``).
        task: the :class:`fer_tf.tasks.Task`.
        optimizer: a Keras 3 optimizer (``LossScaleOptimizer`` for float16).
        strategy: the ``tf.distribute.Strategy`` the model was built under.
        global_batch_size: examples per step over all replicas.
        jit_compile: XLA-compile the per-replica step: ``True``, ``False`` or ``"auto"`` (XLA on
            GPU/TPU, not on CPU; see :func:`resolve_jit_compile`).
        steps_per_execution: steps per ``tf.function`` call.
        weight_decay: coupled L2 factor on kernels (``wd * sum(w**2) / 2``, slim); 0 = off.
        aux_loss_weight: weight of the auxiliary-logits loss (Inception V4: 0.4).
        class_weights: resolved per-class weights or None.

    Raises:
        ValueError: for a non-positive batch size or steps per execution, or a bad
            ``jit_compile``.
    """

    def __init__(
        self,
        model: Any,
        task: Task,
        optimizer: Any,
        strategy: Any,
        *,
        global_batch_size: int,
        jit_compile: bool | str = "auto",
        steps_per_execution: int = 1,
        weight_decay: float = 0.0,
        aux_loss_weight: float = 0.4,
        class_weights: Any = None,
    ) -> None:
        if global_batch_size < 1 or steps_per_execution < 1:
            raise ValueError(
                f"The 'global_batch_size' and 'steps_per_execution' parameters must be >= 1. "
                f"Got {global_batch_size} and {steps_per_execution}."
            )
        self.model = model
        self.task = task
        self.optimizer = optimizer
        self.strategy = strategy
        self.global_batch_size = int(global_batch_size)
        self.jit_compile = resolve_jit_compile(jit_compile, strategy)
        # One replica: no all-reduce, so the update can join the compiled step.
        self._fused_update = strategy.num_replicas_in_sync == 1
        self.steps_per_execution = int(steps_per_execution)
        self.weight_decay = float(weight_decay)
        self.aux_loss_weight = float(aux_loss_weight)
        self.class_weights = None if class_weights is None else np.asarray(class_weights, "float32")
        self.metrics = task.make_metrics()
        self._loss_scale = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        self._kernels = kernel_variables(model)
        self._train_fns: list[tuple[Any, Any]] = []
        shapes = self.metrics.stat_shapes()
        self._stat_keys = list(shapes)
        self._stat_slices = []  # (key, start, stop, shape) in the packed result vector
        start = 3
        for k in self._stat_keys:
            shape = tuple(int(d) for d in shapes[k])
            stop = start + int(np.prod(shape, dtype=np.int64))
            self._stat_slices.append((k, start, stop, shape))
            start = stop
        self._eval_fn: Any = None
        self._fwd_bwd: Any = None
        with strategy.scope():
            # Slots before the first step: the compiled step never creates variables.
            optimizer.build(model.trainable_variables)

    # -- per replica ---------------------------------------------------------------------------
    def _losses(self, y: Any, outputs: Any) -> tuple[Any, Any]:
        n = self.strategy.num_replicas_in_sync
        kw = {
            "global_batch_size": self.global_batch_size,
            "num_replicas": n,
            "class_weights": self.class_weights,
        }
        main = tf.cast(self.task.outputs(outputs), tf.float32)
        loss = self.task.replica_loss(y, main, **kw)
        total = loss
        aux = self.task.aux_outputs(outputs)
        if aux is not None and self.aux_loss_weight:
            total = total + self.aux_loss_weight * self.task.replica_loss(
                y, tf.cast(aux, tf.float32), **kw
            )
        if self.weight_decay and self._kernels:
            l2 = tf.add_n([tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in self._kernels])
            total = total + self.weight_decay * l2 / float(n)
        if self.model.losses:
            total = total + tf.add_n([tf.cast(x, tf.float32) for x in self.model.losses]) / float(n)
        return loss, total

    def _make_forward_backward(self) -> Any:
        model, opt, fused = self.model, self.optimizer, self._fused_update

        def forward_backward(x: Any, y: Any) -> Any:
            variables = model.trainable_variables
            with tf.GradientTape() as tape:
                outputs = model(x, training=True)
                loss, total = self._losses(y, outputs)
                scaled = opt.scale_loss(total) if self._loss_scale else total
            grads = tape.gradient(scaled, variables)
            main = tf.cast(self.task.outputs(outputs), tf.float32)
            # Additive metric statistics (a few reductions) fuse into the compiled step.
            stats = self.metrics.batch_stats(y, self.task.metric_outputs(main))
            examples = tf.cast(tf.shape(main)[0], tf.float32)
            return grads, loss, total, examples, stats

        def fused_step(x: Any, y: Any, acc: Any) -> Any:
            # One replica: the update and the accumulation join the compiled step, so the
            # in-graph step loop runs just get_next + this call per step (no separate add ops
            # for the loss sums and each metric statistic, no per-statistic outputs).
            grads, loss, total, examples, stats = forward_backward(x, y)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return acc + self._pack(loss, total, examples, stats)

        fn = fused_step if fused else forward_backward
        return tf.function(fn, jit_compile=self.jit_compile, reduce_retracing=True)

    def _pack(self, loss: Any, total: Any, examples: Any, stats: Any) -> Any:
        """``[loss, total, examples, *stats]`` as one float32 vector (:attr:`_stat_slices`)."""
        return tf.concat(
            [tf.stack([loss, total, examples])]
            + [tf.reshape(stats[k], [-1]) for k in self._stat_keys],
            axis=0,
        )

    def _replica_train_step(self, x: Any, labels: Any) -> Any:
        y = self.task.labels(labels)
        grads, loss, total, examples, stats = self._fwd_bwd(x, y)
        # Outside the XLA cluster: the optimizer all-reduces and applies.
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        return loss, total, examples, stats

    def _replica_fused_step(self, x: Any, labels: Any, acc: Any) -> Any:
        return self._fwd_bwd(x, self.task.labels(labels), acc)

    def _replica_eval_step(self, x: Any, labels: Any) -> Any:
        y = self.task.labels(labels)
        outputs = self.model(x, training=False)
        n = self.strategy.num_replicas_in_sync
        main = tf.cast(self.task.outputs(outputs), tf.float32)
        examples = tf.cast(tf.shape(main)[0], tf.float32)
        if self.task.loss == "ccc":
            loss = self.task.replica_loss(y, main, global_batch_size=1, num_replicas=n)
        else:
            loss = tf.reduce_sum(self.task.per_example_loss(y, main, self.class_weights))
        stats = self.metrics.batch_stats(y, self.task.metric_outputs(main))
        return loss, examples, stats

    # -- compiled calls ------------------------------------------------------------------------
    def _reduce(self, value: Any) -> Any:
        if self.strategy.num_replicas_in_sync == 1:
            return value
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)

    def _split(self, batch: Any) -> Any:
        """Split a global batch into per-replica slices (replica ``r`` takes the ``r``-th slice).

        Every worker reads the same global batch and keeps its replicas' slices, so a run is the
        same computation on one device, N devices or N workers; and the input iterator stays a
        plain (checkpointable) ``tf.data`` iterator.
        """
        n = self.strategy.num_replicas_in_sync
        if n == 1:
            return batch

        def take(ctx: Any) -> Any:
            r = ctx.replica_id_in_sync_group

            def piece(t: Any) -> Any:
                size = tf.shape(t)[0]
                per = (size + n - 1) // n
                lo = tf.minimum(r * per, size)
                hi = tf.minimum(lo + per, size)
                return t[lo:hi]

            return tf.nest.map_structure(piece, batch)

        return self.strategy.experimental_distribute_values_from_function(take)

    def _build_train_fn(self, iterator: Any) -> Any:
        """The ``tf.function`` running ``num_steps`` steps on ``iterator`` (captured, not an
        argument: an iterator argument costs a type-spec match on every call).

        It returns one float32 vector, ``[loss, total, examples, *stats]`` summed over the steps
        (stats flattened in :attr:`_stat_keys` order), so one host transfer per call.
        """
        zero = self.metrics.zero_stats
        keys = self._stat_keys
        size = self._stat_slices[-1][2] if self._stat_slices else 3

        def fused_train_fn(num_steps: Any) -> Any:
            acc = tf.zeros([size], tf.float32)
            for _ in tf.range(num_steps):
                x, labels = next(iterator)
                acc = self.strategy.run(self._replica_fused_step, (x, labels, acc))
            return acc

        if self._fused_update:
            return tf.function(fused_train_fn)

        def train_fn(num_steps: Any) -> Any:
            acc_loss = tf.constant(0.0)
            acc_total = tf.constant(0.0)
            acc_n = tf.constant(0.0)
            acc_stats = zero()
            for _ in tf.range(num_steps):
                x, labels = self._split(next(iterator))
                loss, total, n, stats = self.strategy.run(self._replica_train_step, (x, labels))
                acc_loss += self._reduce(loss)
                acc_total += self._reduce(total)
                acc_n += self._reduce(n)
                acc_stats = {k: acc_stats[k] + self._reduce(stats[k]) for k in acc_stats}
            return tf.concat(
                [tf.stack([acc_loss, acc_total, acc_n])]
                + [tf.reshape(acc_stats[k], [-1]) for k in keys],
                axis=0,
            )

        return tf.function(train_fn)

    def _train_fn_for(self, iterator: Any) -> Any:
        for it, fn in self._train_fns:
            if it is iterator:
                return fn
        fn = self._build_train_fn(iterator)
        # A few recent iterators (strong references: an id cannot be reused while cached).
        self._train_fns = [(iterator, fn), *self._train_fns[:3]]
        return fn

    def _unpack_stats(self, packed: np.ndarray) -> dict[str, np.ndarray]:
        return {k: packed[a:b].reshape(shape) for k, a, b, shape in self._stat_slices}

    def _build_eval_fn(self) -> Any:
        def eval_fn(batch: Any) -> Any:
            x, labels = self._split(batch)
            loss, n, stats = self.strategy.run(self._replica_eval_step, (x, labels))
            return (
                self._reduce(loss),
                self._reduce(n),
                {k: self._reduce(v) for k, v in stats.items()},
            )

        return tf.function(eval_fn)

    def train(self, iterator: Any, num_steps: int) -> StepResult:
        """Run ``num_steps`` optimizer steps, ``steps_per_execution`` per ``tf.function`` call.

        Args:
            iterator: an iterator over the training dataset of *global* batches (a plain
                ``tf.data`` iterator; it is split across replicas here).
            num_steps: steps to run.

        Returns:
            The :class:`StepResult`; the statistics are also added to :attr:`metrics`.

        Raises:
            NonFiniteLossError: if the loss is NaN or infinite.
        """
        if self._fwd_bwd is None:
            self._fwd_bwd = self._make_forward_backward()
        train_fn = self._train_fn_for(iterator)
        done = 0
        loss_sum = total_sum = n_sum = 0.0
        stats_sum: dict[str, np.ndarray] = {}
        while done < num_steps:
            k = min(self.steps_per_execution, num_steps - done)
            packed = train_fn(tf.constant(k, tf.int32)).numpy()
            loss_v, total_v, n = float(packed[0]), float(packed[1]), float(packed[2])
            if not (np.isfinite(loss_v) and np.isfinite(total_v)):
                raise NonFiniteLossError(
                    f"The training loss became {loss_v} (total {total_v}) within optimizer steps "
                    f"{int(self.optimizer.iterations.numpy()) - k + 1}.."
                    f"{int(self.optimizer.iterations.numpy())}. Training stopped; the last good "
                    f"checkpoint is kept. Lower the learning rate, enable gradient clipping "
                    f"(optimizer.clipnorm) or check the inputs for NaNs."
                )
            done += k
            loss_sum += loss_v
            total_sum += total_v
            n_sum += n
            s = self._unpack_stats(packed)
            self.metrics.update_from_stats(s)
            stats_sum = s if not stats_sum else {key: stats_sum[key] + s[key] for key in s}
        return StepResult(
            steps=done,
            examples=int(n_sum),
            loss=loss_sum / max(done, 1),
            total_loss=total_sum / max(done, 1),
            stats=stats_sum,
        )

    def evaluate(self, dataset: Iterable[Any], steps: int | None = None) -> dict[str, float]:
        """Evaluate on a (distributed) dataset: loss and the task's metrics.

        Args:
            dataset: a ``tf.data`` dataset of global ``(x, labels)`` batches.
            steps: stop after this many batches (None = the whole dataset).

        Returns:
            ``{"loss": mean per-example loss, "examples": n, **metrics}``.
        """
        if self._eval_fn is None:
            self._eval_fn = self._build_eval_fn()
        m = self.task.make_metrics()
        loss_sum = n_sum = 0.0
        batches = 0
        for batch in dataset:
            if steps is not None and batches >= steps:
                break
            loss, n, stats = self._eval_fn(batch)
            loss_sum += float(loss)
            n_sum += float(n)
            batches += 1
            m.update_from_stats({k: v.numpy() for k, v in stats.items()})
        denom = batches if self.task.loss == "ccc" else n_sum
        out = {"loss": loss_sum / max(denom, 1.0), "examples": n_sum}
        out.update(m.result())
        self.last_eval_metrics = m
        return out

    def reset_metrics(self) -> None:
        """Zero the training metrics (at the start of an epoch)."""
        self.metrics.reset_state()

    # -- EMA -----------------------------------------------------------------------------------
    @property
    def has_ema(self) -> bool:
        """Whether the optimizer keeps a moving average of the weights."""
        opt = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        return bool(getattr(opt, "use_ema", False))

    def swap_ema(self) -> None:
        """Swap the model's trainable weights with their moving averages (call twice to undo)."""
        if not self.has_ema:
            return
        opt = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        averages = opt._model_variables_moving_average  # Keras 3 keeps them here.
        with self.strategy.scope():
            for var, avg in zip(self.model.trainable_variables, averages):
                current = tf.identity(var.value)
                var.assign(avg.value)
                avg.assign(current)
