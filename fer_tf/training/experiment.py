"""One experiment from config to run directory: the set-up, then the controller.

:func:`run_experiment` validates the config (before TensorFlow builds anything), picks the
strategy, builds data, model and optimizer (:func:`prepare_experiment`), then hands them to the
:class:`~fer_tf.training.controller.Controller`, which alternates
:class:`~fer_tf.training.loop.Trainer` calls with its actions (:mod:`fer_tf.training.actions`):
checkpoints, evaluation, early stopping, summaries, history, exports.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_tf.checks import check_writable_dir
from fer_tf.config import ConfigError, ExperimentConfig, save_config
from fer_tf.tasks import Task
from fer_tf.training.controller import Controller, RunParts, RunResult
from fer_tf.training.validate import (
    check_experiment,
    check_model,
    fold_plan,
    input_channels,
    resolve_soft_labels,
)

__all__ = [
    "DataSource",
    "RunResult",
    "run_experiment",
    "prepare_experiment",
    "build_model",
    "records_data_source",
]


@dataclass
class DataSource:
    """Where the trainer's batches come from.

    Attributes:
        train: ``train(global_batch_size) -> tf.data.Dataset`` of ``(images, labels)`` global
            batches, repeating forever.
        eval: ``eval(global_batch_size) -> tf.data.Dataset``, finite, or None for no evaluation.
        steps_per_epoch: training steps in one pass over the training split.
        class_counts: per-class training counts (for ``balanced`` class weights), or None.
        test: ``test(global_batch_size) -> tf.data.Dataset`` of a held-out split scored once at
            the end (``data.test_split``), or None.
    """

    train: Callable[[int], Any]
    eval: Callable[[int], Any] | None
    steps_per_epoch: int
    class_counts: np.ndarray | None = None
    test: Callable[[int], Any] | None = None


# ---------------------------------------------------------------------------------------------
# Building blocks.


def build_model(
    config: ExperimentConfig, task: Task, *, log: Callable[[str], None] | None = None
) -> Any:
    """Build the registered model with the task's head, load weights, apply freezing.

    The head is the builder's own classifier top (``include_top=True`` with the task's outputs),
    so slim checkpoints map one-to-one; :mod:`fer_tf.models.heads` is the user API for other
    heads and multi-task models.

    Args:
        config: the experiment.
        task: its task.
        log: where the weight-loading report line goes (None = nowhere).

    Returns:
        A ``keras.Model`` returning float32 logits (``{"logits", "aux_logits"}`` for
        Inception V4 with aux logits).

    Raises:
        ConfigError: see :func:`fer_tf.training.validate.check_model`.
        ValueError: ``model.weights`` is not a loadable checkpoint (see
            :func:`fer_tf.models.load_weights`).
    """
    from fer_tf import models

    info = check_model(config, task)
    size = config.data.image_size or info.input_shape[0]
    # 1 for grey images on a model trained from scratch, else 3 (see input_channels).
    channels = input_channels(config)
    model = models.create_model(
        config.model.name,
        include_top=True,
        weights=None,  # loaded below, without the checkpoint's class layers
        input_shape=(size, size, channels),
        classes=task.num_outputs,
        dropout=dropout_rate(config),
        aux_logits=info.has_aux_logits and config.train.aux_loss_weight > 0,
        **model_options(config),
    )
    if config.model.weights:
        line = _load_weights(model, config)
        if log is not None:
            log(line)
    _apply_freezing(model, config)
    return model


def _load_weights(model: Any, config: ExperimentConfig) -> str:
    """Load ``model.weights`` (a path or a name such as ``imagenet``) for fine-tuning; return the
    report line.

    The class layers of an ImageNet checkpoint (1001 or 1000 outputs) never fit a task head, so
    fine-tuning restores everything else, as slim's ``--checkpoint_exclude_scopes``; the one
    loading path (:func:`fer_tf.models.load_weights`) also takes Keras-applications VGG16 files.
    """
    from fer_tf import models

    report = models.load_weights(
        model,
        config.model.weights,
        exclude_class_layers=True,
        exclude_scopes=_extra_exclude_scopes(config),
    )
    return report.line()


#: Model options of ``model.*`` passed to the builder when non-zero: config key -> builder keyword.
MODEL_OPTIONS: tuple[str, ...] = ("variant", "kernel_size", "bottleneck_size", "fc7_units")


def dropout_rate(config: ExperimentConfig) -> float:
    """The head's dropout rate: ``1 - model.keep_prob`` when it is set, else ``model.dropout``.

    Args:
        config: the experiment.

    Returns:
        The rate passed to the builder's ``dropout``.
    """
    keep = config.model.keep_prob
    return config.model.dropout if keep is None else round(1.0 - keep, 10)


def model_options(config: ExperimentConfig) -> dict[str, int]:
    """The builder keywords set in the config (``model.variant``, ``model.fc7_units`` ...).

    Args:
        config: the experiment.

    Returns:
        ``{keyword: value}`` for each option of :data:`MODEL_OPTIONS` that is not 0.

    Raises:
        ConfigError: an option is set that ``model.name``'s builder does not take (the message
            names the models that do).
    """
    from fer_tf import models
    from fer_tf.models._registry import _accepted_keywords

    options = {k: getattr(config.model, k) for k in MODEL_OPTIONS if getattr(config.model, k)}
    accepted = _accepted_keywords(models.get_model_info(config.model.name).builder)
    for key in options:
        if key not in accepted:
            takers = [
                name
                for name in models.list_models()
                if key in _accepted_keywords(models.get_model_info(name).builder)
            ]
            raise ConfigError(
                f"The 'model.{key}' parameter applies to {', '.join(takers)} only; "
                f"model.name is {config.model.name!r}. Got {options[key]!r}; set it to 0."
            )
    return options


def _extra_exclude_scopes(config: ExperimentConfig) -> tuple[str, ...]:
    """Checkpoint scopes the class-layer exclusion does not cover.

    FaceNet's classifier is ``Logits`` outside the ``InceptionResnetV1`` scope; a VGG16 whose
    ``fc7`` is narrower than 4096 (Athanasiadis 2022) cannot take the checkpoint's ``fc7``.
    """
    name = config.model.name
    if name == "inception_resnet_v1":
        return ("Logits",)
    if name == "vgg16_reduced_fc" or (name == "vgg16" and config.model.fc7_units not in (0, 4096)):
        return ("vgg_16/fc7",)
    return ()


def _apply_freezing(model: Any, config: ExperimentConfig) -> None:
    m = config.model
    if not (m.train_layer_mode or m.trainable_scopes or m.unfreeze_last or m.unfreeze_modules):
        return
    from fer_tf.models import freezing

    if m.train_layer_mode:
        freezing.train_layer_mode(model, m.train_layer_mode)
    if m.trainable_scopes:
        freezing.set_trainable_scopes(model, m.trainable_scopes)
    if m.unfreeze_last:
        freezing.unfreeze_last_n(model, m.unfreeze_last)
    if m.unfreeze_modules:
        freezing.unfreeze_last_modules(model, m.unfreeze_modules)


def _fold_selection(
    config: ExperimentConfig, manifest: dict[str, Any], say: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any], int] | None:
    """Pipeline arguments of the training and evaluation sides of a k-fold run, and the number
    of training examples; None without ``data.fold``.

    Raises:
        ConfigError: the held-out fold or the training folds hold no examples.
    """
    from fer_tf.data import pipeline

    plan = fold_plan(config, manifest)
    if plan is None:
        return None
    counts = pipeline.fold_counts(str(config.data.records), list(plan.splits))
    n_train = sum(counts.get(f, 0) for f in plan.train_folds)
    n_eval = counts.get(plan.fold, 0)
    found = ", ".join(f"{k}: {v}" for k, v in counts.items() if k >= 0) or "none"
    if n_eval == 0 or n_train == 0:
        empty = f"fold {plan.fold}" if n_eval == 0 else f"the other folds {list(plan.train_folds)}"
        raise ConfigError(
            f"The 'data.fold' parameter selects {empty}, which holds no examples in the records "
            f"in '{config.data.records}' (splits {', '.join(plan.splits)}; examples per "
            f"meta/fold: {found}; without a fold: {counts.get(-1, 0)}). Choose a fold among "
            f"those with examples, or rebuild the records with a fold protocol."
        )
    outside = sum(v for k, v in counts.items() if k < 0 or k >= plan.folds)
    say(
        f"fold {plan.fold} of {plan.folds} over splits {', '.join(plan.splits)}: "
        f"{n_train} training and {n_eval} held-out examples"
        + (
            f"; {outside} examples without a fold in 0..{plan.folds - 1} left out"
            if outside
            else ""
        )
    )
    splits = list(plan.splits)
    train = {"split": splits, "folds": list(plan.train_folds)}
    return train, {"split": splits, "folds": [plan.fold]}, n_train


def pipeline_fields(
    config: ExperimentConfig, task: Task, manifest: dict[str, Any]
) -> dict[str, Any]:
    """The :func:`~fer_tf.data.pipeline.make_dataset` settings a run's data share in training and
    evaluation (task and labels, size, normalisation, grey input, soft labels), in one place so
    that ``fer-tf-evaluate`` reads the records exactly as training did.

    Args:
        config: the experiment.
        task: its task.
        manifest: the records manifest (soft labels are used when it has them).

    Returns:
        ``make_dataset`` keywords.
    """
    from fer_tf.models import get_model_info

    info = get_model_info(config.model.name)
    d = config.data
    fields: dict[str, Any] = {
        "task": task.name,
        "image_size": d.image_size or info.input_shape[0],
        "preprocessing": d.preprocessing or info.preprocessing,
        "seed": config.run.seed,
        "unknown": "mask",
        "grayscale": d.grayscale,
        "channels": input_channels(config),
    }
    if task.name in ("au", "au_intensity"):
        fields["aus"] = list(task.aus)
    if task.name == "posed":
        fields["posed_classes"] = task.num_outputs
    if task.name == "emotion":
        fields["emotion_classes"] = list(task.output_names)
        fields["soft_labels"] = resolve_soft_labels(task, config, manifest)
    return fields


def records_data_source(
    config: ExperimentConfig,
    task: Task,
    manifest: dict[str, Any],
    *,
    log: Callable[[str], None] | None = None,
) -> DataSource:
    """A :class:`DataSource` over a schema-v1/v2 records directory (:mod:`fer_tf.data.pipeline`).

    Reads ``data.train_split`` and ``data.eval_split``, or with ``data.fold`` the folds of every
    split (:func:`~fer_tf.training.validate.fold_plan`); grey images with ``data.grayscale``;
    soft emotion targets when :func:`~fer_tf.training.validate.resolve_soft_labels` says so.

    Args:
        config: the experiment.
        task: its task.
        manifest: the records manifest.
        log: where one-line messages go (None = nowhere).

    Returns:
        The data source.

    Raises:
        ConfigError: a fold selection without examples.
    """
    from fer_tf.data import pipeline

    say = log or (lambda _msg: None)
    d = config.data
    records_dir = str(d.records)
    folds = _fold_selection(config, manifest, say)
    if folds is None:
        train_sel: dict[str, Any] = {"split": d.train_split}
        eval_sel: dict[str, Any] = {"split": d.eval_split}
        n_train = pipeline.num_examples(records_dir, d.train_split) or _count_examples(
            records_dir, d.train_split
        )
    else:
        train_sel, eval_sel, n_train = folds
    common = pipeline_fields(config, task, manifest)
    if common.get("soft_labels"):
        say("emotion: soft-label cross-entropy on label/emotion_dist (hard label otherwise)")

    def train(batch: int) -> Any:
        return pipeline.make_dataset(
            records_dir,
            batch_size=batch,
            training=True,
            augment=d.augment,
            shuffle_buffer=max(d.shuffle_buffer, 1),
            cache=d.cache,
            **train_sel,
            **common,
        )

    def evaluate(batch: int) -> Any:
        return pipeline.make_dataset(
            records_dir, batch_size=batch, training=False, **eval_sel, **common
        )

    def test(batch: int) -> Any:
        return pipeline.make_dataset(
            records_dir, batch_size=batch, training=False, split=d.test_split, **common
        )

    class_counts = None
    if task.is_classification and task.class_weights == "balanced":
        # The training side's own counts: its split, or its folds over every split.
        class_counts = _class_counts(records_dir, train_sel["split"], task, train_sel.get("folds"))
    return DataSource(
        train=train,
        eval=evaluate,
        steps_per_epoch=max(1, n_train // d.batch_size),
        class_counts=class_counts,
        test=test if d.test_split else None,
    )


def _count_examples(records_dir: str, split: str) -> int:
    import tensorflow as tf

    from fer_tf import records

    files = records.list_shards(records_dir, split)
    return int(tf.data.TFRecordDataset(files).reduce(np.int64(0), lambda n, _: n + 1).numpy())


def _class_counts(
    records_dir: str, split: str | list[str], task: Task, folds: list[int] | None = None
) -> np.ndarray:
    import tensorflow as tf

    from fer_tf import facs, records

    key = "label/posed" if task.name == "posed" else "label/emotion"
    spec = {
        key: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "label/emotion": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "meta/fold": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }
    counts = np.zeros(task.num_outputs, np.float64)
    # label/emotion indexes the manifest's emotion_names, which need not be the task's classes
    # (6 classes without neutral, another dataset's order).
    names = list(records.read_manifest(records_dir).get("emotion_names") or facs.EMOTIONS)
    classes = list(task.output_names)
    table = np.array([classes.index(n) if n in classes else -1 for n in names] + [-1], np.int64)
    splits = [split] if isinstance(split, str) else list(split)
    files = [f for s in splits for f in records.list_shards(records_dir, s)]
    ds = tf.data.TFRecordDataset(files).batch(1024)
    for batch in ds.map(lambda s: tf.io.parse_example(s, spec)):
        if folds is not None:
            keep = np.isin(batch["meta/fold"].numpy(), folds)
            batch = {k: v.numpy()[keep] for k, v in batch.items()}
        else:
            batch = {k: v.numpy() for k, v in batch.items()}
        if task.name == "posed" and task.num_outputs == 12:
            emo = batch["label/emotion"]
            posed = batch[key]
            for p, e in zip(posed, emo):
                name = names[e] if 0 <= e < len(names) else ""
                if p in (0, 1) and name in facs.POSED_EMOTIONS:
                    counts[facs.posed_class_index(int(p), name, 12)] += 1
        else:
            y = batch[key]
            if task.name == "emotion":
                y = table[np.where((y >= 0) & (y < len(names)), y, len(names))]
            y = y[(y >= 0) & (y < task.num_outputs)]
            counts += np.bincount(y, minlength=task.num_outputs)
    return counts


# ---------------------------------------------------------------------------------------------
# Set-up: from a config to a ready controller.


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


def _strategy(config: ExperimentConfig) -> Any:
    """The distribution strategy, with a global batch that splits evenly over its replicas."""
    from fer_tf.training.strategy import resolve_strategy

    strategy = resolve_strategy(config.run.strategy)
    replicas, batch = strategy.num_replicas_in_sync, config.data.batch_size
    if batch % replicas:
        raise ConfigError(
            f"The 'data.batch_size' parameter ({batch}) must be divisible by the number of "
            f"replicas ({replicas})."
        )
    return strategy


def _check_run_dir(config: ExperimentConfig, *, resume: bool) -> Path:
    """Check the run directory before anything is built (creates nothing).

    Args:
        config: the experiment.
        resume: whether the run continues from the directory's checkpoints.

    Returns:
        The run directory.

    Raises:
        ConfigError: the directory is a file or not writable, or it holds checkpoints and
            ``resume`` is off.
    """
    run_dir = check_writable_dir("run.model_dir", config.run.model_dir, error=ConfigError)
    if (run_dir / "checkpoints" / "checkpoint").exists() and not resume:
        raise ConfigError(
            f"The run directory '{run_dir}' already holds checkpoints. Pass --resume to continue "
            f"that run, or choose another --model-dir."
        )
    return run_dir


def _class_weights(task: Task, data: DataSource, say: Callable[[str], None]) -> np.ndarray | None:
    if task.class_weights == "balanced":
        from fer_tf.losses import balanced_class_weights

        if data.class_counts is None:
            raise ConfigError("'balanced' class weights need class counts from the data source.")
        weights = balanced_class_weights(data.class_counts)
        say(f"balanced class weights: {np.round(weights, 3).tolist()}")
        return weights
    if isinstance(task.class_weights, list):
        return np.asarray(task.class_weights, np.float32)
    return None


def _build_trainer(
    config: ExperimentConfig,
    task: Task,
    strategy: Any,
    model: Any,
    spe: int,
    class_weights: np.ndarray | None,
) -> Any:
    """The optimizer (with its schedule) and the :class:`Trainer`; call inside the scope."""
    from fer_tf.training.loop import Trainer
    from fer_tf.training.optim import make_optimizer, make_schedule

    o = config.optimizer
    replicas = strategy.num_replicas_in_sync
    schedule = make_schedule(
        o.schedule,
        o.learning_rate,
        steps_per_epoch=spe,
        total_steps=spe * config.train.epochs,
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
    return Trainer(
        model,
        task,
        optimizer,
        strategy,
        global_batch_size=config.data.batch_size,
        jit_compile=config.run.jit_compile,
        steps_per_execution=config.train.steps_per_execution,
        weight_decay=0.0 if o.decoupled_weight_decay else o.weight_decay,
        aux_loss_weight=config.train.aux_loss_weight,
        class_weights=class_weights,
    )


def _seed_states(model: Any) -> list[Any]:
    return [v for v in model.variables if "seed_generator" in getattr(v, "path", v.name)]


def _checkpoint_keeper(
    config: ExperimentConfig, run_dir: Path, chief: bool, trainer: Any, state: Any, it: Any
) -> Any:
    import tensorflow as tf

    from fer_tf.training.checkpoints import CheckpointKeeper

    model = trainer.model
    return CheckpointKeeper(
        run_dir / "checkpoints",
        max_to_keep=config.train.keep_checkpoints,
        is_chief=chief,
        model=model,
        optimizer=trainer.optimizer,
        state=state,
        iterator=it,
        # Keras 3 keeps the dropout RNG state (SeedGenerator) outside the layer's checkpoint
        # graph; save it explicitly or a resumed run draws different dropout masks.
        rng=tf.train.Checkpoint(
            generator=state.rng,
            **{f"seed_{i}": v.value for i, v in enumerate(_seed_states(model))},
        ),
    )


def _angular_separation(parts: RunParts, say: Callable[[str], None]) -> list[Any]:
    """The :class:`~fer_tf.training.actions.AngularSeparation` action of
    ``train.angular_separation_every``, its probe the first images of the evaluation data."""
    from fer_tf.training.actions import AngularSeparation

    t = parts.config.train
    if parts.eval_ds is None:
        say("angular separation: no evaluation data for a probe batch; left out")
        return []
    images: list[np.ndarray] = []
    for x, _ in parts.eval_ds:
        images.append(np.asarray(x))
        if sum(len(b) for b in images) >= t.angular_separation_probe:
            break
    probe = np.concatenate(images)[: t.angular_separation_probe]
    action = AngularSeparation(
        parts.model,
        t.angular_separation_end_point,
        probe,
        every=t.angular_separation_every,
        max_units=t.angular_separation_units,
        seed=parts.config.run.seed,
        run_dir=parts.run_dir,
    )
    say(
        f"angular separation of {action.end_point} every {action.every} epoch(s) on "
        f"{len(probe)} probe images"
    )
    return [action]


def default_actions(parts: RunParts, say: Callable[[str], None]) -> list[Any]:
    """The production actions of a run, in the order the controller calls them.

    Args:
        parts: what :func:`prepare_experiment` built.
        say: where the actions' messages go.

    Returns:
        Checkpoints, early stopping (tracks the best value), the best model, history,
        summaries, Ctrl-C, and on the chief ``eval.json`` and the exports.
    """
    from fer_tf.training import actions
    from fer_tf.training.callbacks import HistoryWriter, SummaryWriter

    t, run_dir, chief = parts.config.train, parts.run_dir, parts.chief
    out = [
        actions.Checkpoints(parts.keeper, t.checkpoint_every),
        actions.EarlyStop(parts.stopper, enabled=t.early_stopping_metric is not None),
        actions.BestModel(
            parts.model,
            run_dir / "best.weights.h5",
            chief=chief,
            restore=t.restore_best_weights,
        ),
        actions.History(HistoryWriter(run_dir / "history.csv") if chief else None),
        actions.Summaries(SummaryWriter(run_dir / "logs", enabled=chief)),
        actions.StopOnSigint(),
    ]
    if chief and t.angular_separation_every:
        out += _angular_separation(parts, say)
    if chief:
        out += [
            actions.EvalReport(run_dir / "eval.json"),
            actions.Export(parts.model, run_dir, say),
        ]
    return out


def prepare_experiment(
    config: ExperimentConfig,
    *,
    resume: bool = False,
    data: DataSource | None = None,
    model_fn: Callable[[ExperimentConfig, Task], Any] | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    actions: Sequence[Any] = (),
) -> Controller:
    """The set-up of :func:`run_experiment`: check, build, restore; return the controller.

    Args:
        config: the validated experiment config.
        resume: continue from the newest checkpoint in the run directory.
        data: supply the data yourself (tests, notebooks); default: ``config.data.records``.
        model_fn: ``model_fn(config, task) -> keras.Model`` instead of the registry.
        progress: show tqdm progress bars.
        log: where one-line messages go (None = silent).
        actions: extra :class:`~fer_tf.training.actions.Action` objects, called after the
            production ones (tests inject faults this way).

    Returns:
        The :class:`~fer_tf.training.controller.Controller`; ``.run()`` trains.

    Raises:
        ConfigError: invalid config, missing records, an unusable run directory, or one that
            already holds checkpoints without ``resume``.
    """
    say = log or (lambda _msg: None)
    task, manifest = check_experiment(config, require_records=data is None)
    if model_fn is None:
        check_model(config, task)
    run_dir = _check_run_dir(config, resume=resume)

    from fer_tf.training.callbacks import EarlyStopping
    from fer_tf.training.checkpoints import RunState
    from fer_tf.training.strategy import strategy_description

    _setup_tf(config)
    strategy = _strategy(config)
    chief, batch = _is_chief(strategy), config.data.batch_size
    say(
        f"fer-tf-train: {config.name}: task {task.name} ({task.num_outputs} outputs), "
        f"{strategy_description(strategy)}, run dir {run_dir}"
    )
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
    if data is None:
        data = records_data_source(config, task, manifest or {}, log=say)
    spe = config.train.steps_per_epoch or data.steps_per_epoch
    class_weights = _class_weights(task, data, say)
    with strategy.scope():
        if model_fn is None:
            model = build_model(config, task, log=say)
        else:
            model = model_fn(config, task)
        trainer = _build_trainer(config, task, strategy, model, spe, class_weights)
        xla = "on" if trainer.jit_compile else "off"
        say(f"XLA {xla} (run.jit_compile: {config.run.jit_compile})")
        state = RunState(config.run.seed)
    train_iter = iter(data.train(batch))
    keeper = _checkpoint_keeper(config, run_dir, chief, trainer, state, train_iter)
    if resume:
        restored = keeper.restore_latest()
        say(
            f"resumed from {restored} at step {int(state.step.numpy())}"
            if restored
            else "no checkpoint to resume from; starting a new run"
        )
    monitor = config.train.early_stopping_metric or f"val/{task.primary_metric}"
    parts = RunParts(
        config=config,
        task=task,
        model=model,
        optimizer=trainer.optimizer,
        trainer=trainer,
        run_state=state,
        keeper=keeper,
        train_iter=train_iter,
        eval_ds=data.eval(batch) if data.eval is not None else None,
        run_dir=run_dir,
        steps_per_epoch=spe,
        monitor=monitor,
        stopper=EarlyStopping(monitor, config.train.early_stopping_patience, state),
        chief=chief,
        test_ds=data.test(batch) if data.test is not None else None,
    )
    all_actions = [*default_actions(parts, say), *actions]
    return Controller(parts, all_actions, progress=progress, log=say)


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
        ConfigError: invalid config, missing records, an unusable run directory, or one that
            already holds checkpoints without ``resume``.
    """
    controller = prepare_experiment(
        config, resume=resume, data=data, model_fn=model_fn, progress=progress, log=log
    )
    return controller.run()
