"""The controller: one experiment from config to run directory.

:func:`run_experiment` validates the config (before TensorFlow builds anything), picks the
strategy, builds data, model and optimizer, then alternates :class:`~fer_tf.training.loop.Trainer`
calls with the host-side work: checkpoints, evaluation, early stopping, summaries, history.

Run directory::

    config.yaml          the resolved config
    checkpoints/         tf.train.CheckpointManager (model, optimizer, run state, RNG, iterator)
    logs/{train,val}/    TensorBoard scalars
    history.csv          one row per epoch
    best.weights.h5      weights of the best epoch (by the monitored metric)
    best.keras           the best model; saved_model/ the same for serving
    eval.json            final evaluation (EMA weights when on)
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_tf.config import ConfigError, ExperimentConfig, save_config
from fer_tf.tasks import Task
from fer_tf.training.validate import check_experiment, check_model

__all__ = ["DataSource", "RunResult", "run_experiment", "build_model", "records_data_source"]

KILL_ENV = "FER_TF_FAULT_KILL_AFTER_STEP"


@dataclass
class DataSource:
    """Where the trainer's batches come from.

    Attributes:
        train: ``train(global_batch_size) -> tf.data.Dataset`` of ``(images, labels)`` global
            batches, repeating forever.
        eval: ``eval(global_batch_size) -> tf.data.Dataset``, finite, or None for no evaluation.
        steps_per_epoch: training steps in one pass over the training split.
        class_counts: per-class training counts (for ``balanced`` class weights), or None.
    """

    train: Callable[[int], Any]
    eval: Callable[[int], Any] | None
    steps_per_epoch: int
    class_counts: np.ndarray | None = None


@dataclass
class RunResult:
    """What a run did.

    Attributes:
        run_dir: the run directory.
        status: ``completed``, ``early_stopped``, ``interrupted`` or ``non_finite``.
        steps: optimizer steps done.
        epochs: epochs completed.
        best: best monitored value (None before any evaluation).
        monitor: the monitored metric.
        eval: the final evaluation (empty when interrupted or non-finite).
        history: one dict per epoch.
        message: a human-readable note (e.g. why training stopped).
        model: the trained model (best weights when ``train.restore_best_weights``).
    """

    run_dir: Path
    status: str
    steps: int
    epochs: int
    best: float | None
    monitor: str
    eval: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    model: Any = None


# ---------------------------------------------------------------------------------------------
# Building blocks.


def build_model(config: ExperimentConfig, task: Task) -> Any:
    """Build the registered model with the task's head, load weights, apply freezing.

    Args:
        config: the experiment.
        task: its task.

    Returns:
        A ``keras.Model`` returning float32 logits (``{"logits", "aux_logits"}`` for
        Inception V4 with aux logits).

    Raises:
        ConfigError: see :func:`fer_tf.training.validate.check_model`.
    """
    from fer_tf import models

    info = check_model(config, task)
    size = config.data.image_size or info.input_shape[0]
    channels = info.input_shape[2]
    model = models.create_model(
        config.model.name,
        include_top=True,
        input_shape=(size, size, channels),
        classes=task.num_outputs,
        dropout=config.model.dropout,
        aux_logits=info.has_aux_logits and config.train.aux_loss_weight > 0,
    )
    if config.model.weights:
        _load_weights(model, config.model.weights, info.slim_scope)
    _apply_freezing(model, config)
    return model


# The class layers of an ImageNet checkpoint (1001 or 1000 outputs) never fit a task head, so a
# fine-tuning run restores everything else, as slim's --checkpoint_exclude_scopes recipes do.
_CLASS_SCOPES = ("Logits", "AuxLogits", "fc8")


def _load_weights(model: Any, path: str, slim_scope: str) -> None:
    from fer_tf import models

    p = Path(path)
    if p.suffix in (".keras", ".h5") and p.exists():
        model.load_weights(str(p), skip_mismatch=True)
        return
    excluded = tuple(f"{slim_scope}/{s}" for s in _CLASS_SCOPES)
    report = models.load_slim_checkpoint(
        model, str(path), exclude_scopes=excluded, ignore_unexpected=False
    )
    print(
        f"[fer-tf-train] restored {len(report.loaded)} variables from {path} "
        f"(class layers {', '.join(excluded)} left to train from scratch)",
        flush=True,
    )


def _apply_freezing(model: Any, config: ExperimentConfig) -> None:
    m = config.model
    if not (m.train_layer_mode or m.trainable_scopes or m.unfreeze_last):
        return
    from fer_tf.models import freezing

    if m.train_layer_mode:
        freezing.train_layer_mode(model, m.train_layer_mode)
    if m.trainable_scopes:
        freezing.set_trainable_scopes(model, m.trainable_scopes)
    if m.unfreeze_last:
        freezing.unfreeze_last_n(model, m.unfreeze_last)


def records_data_source(
    config: ExperimentConfig, task: Task, manifest: dict[str, Any]
) -> DataSource:
    """A :class:`DataSource` over a schema-v1 records directory (:mod:`fer_tf.data.pipeline`).

    Args:
        config: the experiment.
        task: its task.
        manifest: the records manifest.

    Returns:
        The data source.
    """
    from fer_tf.data import pipeline
    from fer_tf.models import get_model_info

    info = get_model_info(config.model.name)
    d = config.data
    size = d.image_size or info.input_shape[0]
    records_dir = str(d.records)
    n_train = pipeline.num_examples(records_dir, d.train_split) or _count_examples(
        records_dir, d.train_split
    )
    common: dict[str, Any] = {
        "task": task.name,
        "image_size": size,
        "preprocessing": d.preprocessing or info.preprocessing,
        "seed": config.run.seed,
        "unknown": "mask",
    }
    if task.name == "au":
        common["aus"] = list(task.aus)
    if task.name == "posed":
        common["posed_classes"] = task.num_outputs
    if task.name == "emotion":
        common["emotion_classes"] = list(task.output_names)

    def train(batch: int) -> Any:
        return pipeline.make_dataset(
            records_dir,
            split=d.train_split,
            batch_size=batch,
            training=True,
            augment=d.augment,
            shuffle_buffer=max(d.shuffle_buffer, 1),
            cache=d.cache,
            **common,
        )

    def evaluate(batch: int) -> Any:
        return pipeline.make_dataset(
            records_dir, split=d.eval_split, batch_size=batch, training=False, **common
        )

    class_counts = None
    if task.is_classification and task.class_weights == "balanced":
        class_counts = _class_counts(records_dir, d.train_split, task)
    return DataSource(
        train=train,
        eval=evaluate,
        steps_per_epoch=max(1, n_train // d.batch_size),
        class_counts=class_counts,
    )


def _count_examples(records_dir: str, split: str) -> int:
    import tensorflow as tf

    from fer_tf import records

    files = records.list_shards(records_dir, split)
    return int(tf.data.TFRecordDataset(files).reduce(np.int64(0), lambda n, _: n + 1).numpy())


def _class_counts(records_dir: str, split: str, task: Task) -> np.ndarray:
    import tensorflow as tf

    from fer_tf import facs, records

    key = "label/posed" if task.name == "posed" else "label/emotion"
    spec = {
        key: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "label/emotion": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }
    counts = np.zeros(task.num_outputs, np.float64)
    ds = tf.data.TFRecordDataset(records.list_shards(records_dir, split)).batch(1024)
    for batch in ds.map(lambda s: tf.io.parse_example(s, spec)):
        if task.name == "posed" and task.num_outputs == 12:
            emo = batch["label/emotion"].numpy()
            posed = batch[key].numpy()
            for p, e in zip(posed, emo):
                name = facs.EMOTIONS[e] if 0 <= e < len(facs.EMOTIONS) else ""
                if p in (0, 1) and name in facs.POSED_EMOTIONS:
                    counts[facs.posed_class_index(int(p), name, 12)] += 1
        else:
            y = batch[key].numpy()
            y = y[(y >= 0) & (y < task.num_outputs)]
            counts += np.bincount(y, minlength=task.num_outputs)
    return counts


# ---------------------------------------------------------------------------------------------
# The controller.


def _setup_tf(config: ExperimentConfig) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.run.seed)
    if config.run.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(config.run.mixed_precision or "float32")


def _is_chief(strategy: Any) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None):
        return True
    spec = resolver.cluster_spec().as_dict()
    if not spec:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if "chief" in spec:
        return task_type == "chief"
    return task_type in (None, "worker") and (task_id or 0) == 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def run_experiment(
    config: ExperimentConfig,
    *,
    resume: bool = False,
    data: DataSource | None = None,
    model_fn: Callable[[ExperimentConfig, Task], Any] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
) -> RunResult:
    """Train and evaluate one experiment into ``config.run.model_dir``.

    Args:
        config: the validated experiment config.
        resume: continue from the newest checkpoint in the run directory.
        data: supply the data yourself (tests, notebooks); default: ``config.data.records``.
        model_fn: ``model_fn(config, task) -> keras.Model`` instead of the registry.
        progress: show tqdm progress bars.
        log: where one-line messages go (None = silent).

    Returns:
        The :class:`RunResult`.

    Raises:
        ConfigError: invalid config, missing records, or a run directory that already holds
            checkpoints without ``resume``.
    """
    say = log or (lambda _msg: None)
    task, manifest = check_experiment(config, require_records=data is None)
    if model_fn is None:
        check_model(config, task)
    run_dir = Path(config.run.model_dir)
    ckpt_dir = run_dir / "checkpoints"
    has_ckpt = (ckpt_dir / "checkpoint").exists()
    if has_ckpt and not resume:
        raise ConfigError(
            f"The run directory '{run_dir}' already holds checkpoints. Pass --resume to continue "
            f"that run, or choose another --model-dir."
        )

    import tensorflow as tf

    from fer_tf.losses import balanced_class_weights
    from fer_tf.training.callbacks import EarlyStopping, HistoryWriter, Progress, SummaryWriter
    from fer_tf.training.checkpoints import CheckpointKeeper, RunState
    from fer_tf.training.loop import NonFiniteLossError, Trainer
    from fer_tf.training.optim import make_optimizer, make_schedule
    from fer_tf.training.strategy import resolve_strategy, strategy_description

    _setup_tf(config)
    strategy = resolve_strategy(config.run.strategy)
    chief = _is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    batch = config.data.batch_size
    if batch % replicas:
        raise ConfigError(
            f"The 'data.batch_size' parameter ({batch}) must be divisible by the number of "
            f"replicas ({replicas})."
        )
    say(
        f"fer-tf-train: {config.name}: task {task.name} ({task.num_outputs} outputs), "
        f"{strategy_description(strategy)}, run dir {run_dir}"
    )
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")

    if data is None:
        data = records_data_source(config, task, manifest or {})
    spe = config.train.steps_per_epoch or data.steps_per_epoch
    epochs = config.train.epochs
    total_steps = spe * epochs

    class_weights = None
    if task.class_weights == "balanced":
        if data.class_counts is None:
            raise ConfigError("'balanced' class weights need class counts from the data source.")
        class_weights = balanced_class_weights(data.class_counts)
        say(f"balanced class weights: {np.round(class_weights, 3).tolist()}")
    elif isinstance(task.class_weights, list):
        class_weights = np.asarray(task.class_weights, np.float32)

    o = config.optimizer
    with strategy.scope():
        model = (model_fn or build_model)(config, task)
        schedule = make_schedule(
            o.schedule,
            o.learning_rate,
            steps_per_epoch=spe,
            total_steps=total_steps,
            decay_rate=o.decay_rate,
            decay_epochs=o.decay_epochs,
            warmup_epochs=o.warmup_epochs,
        )
        optimizer = make_optimizer(
            o.name,
            schedule,
            momentum=o.momentum,
            rmsprop_decay=o.rmsprop_decay,
            epsilon=o.epsilon,
            decoupled_weight_decay=o.weight_decay if o.decoupled_weight_decay else 0.0,
            clipnorm=(o.clipnorm / replicas) if o.clipnorm else None,
            ema_decay=o.ema_decay,
            loss_scale=config.run.mixed_precision == "mixed_float16",
        )
        trainer = Trainer(
            model,
            task,
            optimizer,
            strategy,
            global_batch_size=batch,
            jit_compile=config.run.jit_compile,
            steps_per_execution=config.train.steps_per_execution,
            weight_decay=0.0 if o.decoupled_weight_decay else o.weight_decay,
            aux_loss_weight=config.train.aux_loss_weight,
            class_weights=class_weights,
        )
        xla = "on" if trainer.jit_compile else "off"
        say(f"XLA {xla} (run.jit_compile: {config.run.jit_compile})")
        state = RunState(config.run.seed)
    train_iter = iter(data.train(batch))
    keeper = CheckpointKeeper(
        ckpt_dir,
        max_to_keep=config.train.keep_checkpoints,
        is_chief=chief,
        model=model,
        optimizer=optimizer,
        state=state,
        iterator=train_iter,
        # Keras 3 keeps the dropout RNG state (SeedGenerator) outside the layer's checkpoint
        # graph; save it explicitly or a resumed run draws different dropout masks.
        rng=tf.train.Checkpoint(
            generator=state.rng,
            **{f"seed_{i}": v.value for i, v in enumerate(_seed_states(model))},
        ),
    )
    if resume:
        restored = keeper.restore_latest()
        say(
            f"resumed from {restored} at step {int(state.step.numpy())}"
            if restored
            else "no checkpoint to resume from; starting a new run"
        )

    monitor = config.train.early_stopping_metric or f"val/{task.primary_metric}"
    stopper = EarlyStopping(monitor, config.train.early_stopping_patience, state)
    early = config.train.early_stopping_metric is not None
    history = HistoryWriter(run_dir / "history.csv") if chief else None
    summaries = SummaryWriter(run_dir / "logs", enabled=chief)
    eval_ds = None
    if data.eval is not None:
        eval_ds = data.eval(batch)
    eval_steps = config.train.eval_steps or None
    ckpt_every = config.train.checkpoint_every
    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)

    interrupted = {"flag": False}
    previous_handler = None
    try:
        previous_handler = signal.signal(
            signal.SIGINT, lambda *_: interrupted.__setitem__("flag", True)
        )
    except ValueError:  # not the main thread
        previous_handler = None

    step = int(state.step.numpy())
    epoch = int(state.epoch.numpy())
    status, message = "completed", ""
    rows: list[dict[str, Any]] = list(history.rows) if history else []
    best_weights_path = run_dir / "best.weights.h5"
    chance = task.chance_loss
    best_snapshot: list[np.ndarray] | None = None
    try:
        while epoch < epochs:
            first = step - epoch * spe
            trainer.reset_metrics()
            bar = Progress(spe, epoch + 1, epochs, enabled=progress and chief, initial=first)
            t0 = time.perf_counter()
            loss_sum, steps_run, images = 0.0, 0, 0
            while step < (epoch + 1) * spe:
                end = (epoch + 1) * spe
                if ckpt_every:
                    end = min(end, (step // ckpt_every + 1) * ckpt_every)
                # One progress update per call; at most ~20 updates per epoch.
                end = min(end, step + max(config.train.steps_per_execution, spe // 20 or 1))
                try:
                    res = trainer.train(train_iter, end - step)
                except NonFiniteLossError as exc:
                    status, message = "non_finite", str(exc)
                    say(f"error: {message}")
                    raise StopIteration from exc
                step += res.steps
                state.step.assign(step)
                loss_sum += res.loss * res.steps
                steps_run += res.steps
                images += res.examples
                shown = {"loss": res.loss, **_short(trainer.metrics.summary(), task)}
                bar.update(res.steps, res.examples, shown)
                if kill_at and step >= kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)  # fault injection for resume tests
                if ckpt_every and step % ckpt_every == 0 and step < (epoch + 1) * spe:
                    keeper.save(step)
                if interrupted["flag"]:
                    break
            bar.close()
            if interrupted["flag"]:
                keeper.save(step)
                status = "interrupted"
                message = f"interrupted at step {step}; checkpoint saved, resume with --resume"
                say(message)
                break
            seconds = time.perf_counter() - t0
            row: dict[str, Any] = {
                "epoch": epoch + 1,
                "step": step,
                "learning_rate": float(_lr(optimizer, step)),
                "train/loss": loss_sum / steps_run if steps_run else math.nan,
                "images_per_sec": images / max(seconds, 1e-9),
                "seconds": seconds,
            }
            row.update({f"train/{k}": v for k, v in trainer.metrics.summary().items()})
            val: dict[str, float] = {}
            if eval_ds is not None:
                trainer.swap_ema()
                val = trainer.evaluate(eval_ds, eval_steps)
                trainer.swap_ema()
                row.update({f"val/{k}": v for k, v in _headline(val, task).items()})
            epoch += 1
            state.epoch.assign(epoch)
            stop = False
            if val:
                improved, stop = stopper.update({f"val/{k}": v for k, v in val.items()})
                stop = stop and early
                if improved:
                    best_snapshot = [np.array(v.numpy()) for v in model.weights]
                    if chief:
                        model.save_weights(str(best_weights_path))
            row["chance_loss"] = chance
            if history is not None:
                history.append(row, drop_from_epoch=epoch)
            rows = list(history.rows) if history else [*rows, row]
            summaries.scalars(
                "train",
                {k[6:]: v for k, v in row.items() if k.startswith("train/")}
                | {"learning_rate": row["learning_rate"]},
                step,
            )
            summaries.scalars(
                "val", {k[4:]: v for k, v in row.items() if k.startswith("val/")}, step
            )
            keeper.save(step)
            say(_epoch_line(row, task, monitor, stopper))
            if stop:
                status = "early_stopped"
                message = (
                    f"early stopping: {monitor} did not improve for "
                    f"{config.train.early_stopping_patience} epoch(s); best {stopper.best:.4g}"
                )
                say(message)
                break
    except StopIteration:
        pass
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)

    result = RunResult(
        run_dir=run_dir,
        status=status,
        steps=step,
        epochs=epoch,
        best=stopper.best if math.isfinite(float(state.best.numpy())) else None,
        monitor=monitor,
        history=rows,
        message=message,
        model=model,
    )
    if status in ("interrupted", "non_finite"):
        keeper.cleanup()
        return result

    # Best weights back (early stopping restores them), final evaluation, exports.
    restore = config.train.restore_best_weights
    if restore and best_snapshot is not None:
        for var, value in zip(model.weights, best_snapshot):
            var.assign(value)
    elif restore and best_weights_path.exists():
        model.load_weights(str(best_weights_path))
    final: dict[str, Any] = {}
    if eval_ds is not None:
        trainer.swap_ema()
        final = trainer.evaluate(eval_ds, eval_steps)
        extra = _eval_extras(trainer, task)
        result.eval = {
            "task": task.name,
            "split": config.data.eval_split,
            "ema": trainer.has_ema,
            "chance_loss": chance,
            "monitor": monitor,
            "best": result.best,
            "status": status,
            "steps": step,
            "metrics": final,
            **extra,
        }
    if chief:
        (run_dir / "eval.json").write_text(
            json.dumps(_jsonable(result.eval), indent=2) + "\n", encoding="utf-8"
        )
        _export(model, run_dir, say)
    if eval_ds is not None:
        trainer.swap_ema()
    keeper.cleanup()
    return result


def _seed_states(model: Any) -> list[Any]:
    return [v for v in model.variables if "seed_generator" in getattr(v, "path", v.name)]


def _short(summary: dict[str, float], task: Task) -> dict[str, float]:
    key = task.primary_metric
    return {key: summary[key]} if key in summary else {}


def _headline(val: dict[str, float], task: Task) -> dict[str, float]:
    return {k: v for k, v in val.items() if "/" not in k}


def _lr(optimizer: Any, step: int) -> float:
    lr = optimizer.learning_rate
    try:
        return float(np.asarray(lr))
    except (TypeError, ValueError):
        return float("nan")


def _epoch_line(row: dict[str, Any], task: Task, monitor: str, stopper: Any) -> str:
    parts = [f"epoch {row['epoch']} step {row['step']}", f"loss {row['train/loss']:.4f}"]
    if "val/loss" in row:
        parts.append(f"val/loss {row['val/loss']:.4f}")
    key = f"val/{task.primary_metric}"
    if key in row:
        parts.append(f"{key} {row[key]:.4f}")
    if not math.isnan(row.get("chance_loss", math.nan)):
        parts.append(f"chance {row['chance_loss']:.3f}")
    parts.append(f"{row['images_per_sec']:.1f} img/s")
    return " | ".join(parts)


def _eval_extras(trainer: Any, task: Task) -> dict[str, Any]:
    m = getattr(trainer, "last_eval_metrics", None)
    if m is None:
        return {}
    out: dict[str, Any] = {"output_names": list(task.output_names)}
    if task.is_classification:
        out["confusion_matrix"] = m.confusion_matrix().tolist()
    if task.name == "au":
        per = m.per_au()
        out["per_au"] = {
            name: {k: float(per[k][i]) for k in per} for i, name in enumerate(task.output_names)
        }
    return out


def _export(model: Any, run_dir: Path, say: Callable[[str], None]) -> None:
    try:
        model.save(str(run_dir / "best.keras"))
    except Exception as exc:  # noqa: BLE001 - report, keep the run's other outputs
        say(f"warning: could not save best.keras: {exc}")
    try:
        model.export(str(run_dir / "saved_model"), verbose=False)
    except Exception as exc:  # noqa: BLE001
        say(f"warning: could not export the SavedModel: {exc}")
