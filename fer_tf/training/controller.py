"""The training controller: train an epoch, evaluate, let the actions react; finalise.

In the spirit of Orbit's ``Controller``: the controller owns the loop over epochs and the
:class:`~fer_tf.training.loop.Trainer` calls inside an epoch; everything else a run does
(checkpoints, the best model, early stopping, ``history.csv``, TensorBoard summaries, Ctrl-C,
``eval.json`` and the exports) is an :class:`~fer_tf.training.actions.Action` it calls at named
events. An action asks for a stop by setting a flag on the :class:`ControllerState`
(:meth:`ControllerState.request_stop`); no control flow goes through exceptions.

Set-up (config checks, strategy, data, model, optimizer, checkpoint restore) is
:func:`fer_tf.training.experiment.prepare_experiment`, which returns a ready controller;
:func:`fer_tf.training.experiment.run_experiment` runs it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_tf.tasks import Task

__all__ = ["ControllerState", "RunParts", "RunResult", "Controller"]

#: Statuses of a run that reached its end normally (finalised: best weights, eval, exports).
FINISHED = ("completed", "early_stopped")


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


@dataclass
class ControllerState:
    """What the controller and its actions share during a run.

    Attributes:
        step: optimizer steps done.
        epoch: epochs completed.
        epochs: epochs to run.
        steps_per_epoch: steps in one epoch.
        status: ``completed`` until an action or the trainer says otherwise.
        message: why the run stopped (logged once when the loop ends).
        stop_requested: set by :meth:`request_stop`; the loop ends after the current call.
        row: the epoch's ``history.csv`` row (set before ``on_epoch_end``).
        val: the epoch's validation results (empty without evaluation).
        improved: whether the monitored metric improved this epoch (set by ``EarlyStop``).
        rows: the history so far (kept by the ``History`` action).
        eval: the final evaluation (set before ``on_finalise``).
    """

    step: int
    epoch: int
    epochs: int
    steps_per_epoch: int
    status: str = "completed"
    message: str = ""
    stop_requested: bool = False
    row: dict[str, Any] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    improved: bool = False
    rows: list[dict[str, Any]] = field(default_factory=list)
    eval: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch_end_step(self) -> int:
        """The global step at which the current epoch ends."""
        return (self.epoch + 1) * self.steps_per_epoch

    def request_stop(self, status: str, message: str) -> None:
        """Ask the controller to stop after the current training call (the first request wins).

        Args:
            status: the run's status (``early_stopped``, ``interrupted``, ``non_finite``).
            message: a one-line explanation, logged when the loop ends.
        """
        if self.stop_requested:
            return
        self.stop_requested = True
        self.status = status
        self.message = message


@dataclass
class RunParts:
    """Everything the set-up built that the controller drives.

    Attributes:
        config: the experiment config.
        task: its task.
        model: the model.
        optimizer: the optimizer.
        trainer: the :class:`~fer_tf.training.loop.Trainer`.
        run_state: the checkpointed :class:`~fer_tf.training.checkpoints.RunState`.
        keeper: the :class:`~fer_tf.training.checkpoints.CheckpointKeeper`.
        train_iter: the training iterator (checkpointed with the rest).
        eval_ds: the evaluation dataset, or None.
        run_dir: the run directory.
        steps_per_epoch: training steps per epoch.
        monitor: the monitored metric (``val/<metric>``).
        stopper: the :class:`~fer_tf.training.callbacks.EarlyStopping` tracker.
        chief: whether this worker writes the run's files.
        test_ds: a held-out test dataset scored once at the end (``eval.json``'s ``test``), or
            None.
    """

    config: Any
    task: Task
    model: Any
    optimizer: Any
    trainer: Any
    run_state: Any
    keeper: Any
    train_iter: Any
    eval_ds: Any
    run_dir: Path
    steps_per_epoch: int
    monitor: str
    stopper: Any
    chief: bool
    test_ds: Any = None


class Controller:
    """Runs epochs of training and evaluation and calls its actions at each event.

    Args:
        parts: what the set-up built.
        actions: the side jobs, called in this order at each event.
        progress: show a progress bar per epoch (chief only).
        log: where one-line messages go (None = silent).
    """

    def __init__(
        self,
        parts: RunParts,
        actions: Sequence[Any] = (),
        *,
        progress: bool = True,
        log: Callable[[str], None] | None = print,
    ) -> None:
        self.parts = parts
        self.actions = list(actions)
        self.progress = progress and parts.chief
        self.say = log or (lambda _msg: None)
        rs = parts.run_state
        self.state = ControllerState(
            step=int(rs.step.numpy()),
            epoch=int(rs.epoch.numpy()),
            epochs=parts.config.train.epochs,
            steps_per_epoch=parts.steps_per_epoch,
        )

    def _call(self, event: str) -> None:
        for action in self.actions:
            getattr(action, event)(self.state)

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Train until the last epoch or a stop request, then finalise.

        Returns:
            The :class:`RunResult`.
        """
        s = self.state
        try:
            self._call("on_begin")
            while s.epoch < s.epochs and not s.stop_requested:
                sums = self.train_epoch()
                if sums is not None:
                    self.end_epoch(sums)
            self._call("on_train_end")
        finally:
            for action in self.actions:
                action.close()
        if s.message:
            self.say(f"error: {s.message}" if s.status == "non_finite" else s.message)
        result = self._result()
        if s.status in FINISHED:
            self.finalise(result)
        self.parts.keeper.cleanup()
        return result

    def train_epoch(self) -> dict[str, float] | None:
        """Train the rest of the current epoch, a few steps per :meth:`Trainer.train` call.

        Returns:
            The epoch's training sums (``loss_sum``, ``steps``, ``images``, ``seconds``), or None
            when a stop was requested inside the epoch.
        """
        from fer_tf.training.callbacks import Progress

        p, s = self.parts, self.state
        spe, end = s.steps_per_epoch, s.epoch_end_step
        p.trainer.reset_metrics()
        bar = Progress(
            spe, s.epoch + 1, s.epochs, enabled=self.progress, initial=s.step - s.epoch * spe
        )
        t0 = time.perf_counter()
        sums = {"loss_sum": 0.0, "steps": 0, "images": 0}
        while s.step < end and not s.stop_requested:
            res = self._train_call(self._call_end(end))
            if res is None:
                break
            s.step += res.steps
            p.run_state.step.assign(s.step)
            sums["loss_sum"] += res.loss * res.steps
            sums["steps"] += res.steps
            sums["images"] += res.examples
            shown = {"loss": res.loss, **_short(p.trainer.metrics.summary(), p.task)}
            bar.update(res.steps, res.examples, shown)
            self._call("on_step")
        bar.close()
        if s.stop_requested:
            return None
        return {**sums, "seconds": time.perf_counter() - t0}

    def _call_end(self, epoch_end: int) -> int:
        """The step the next training call runs to: the epoch's end, the next checkpoint, or
        about a twentieth of the epoch (one progress update per call)."""
        cfg, step = self.parts.config.train, self.state.step
        end = epoch_end
        if cfg.checkpoint_every:
            end = min(end, (step // cfg.checkpoint_every + 1) * cfg.checkpoint_every)
        return min(end, step + max(cfg.steps_per_execution, self.state.steps_per_epoch // 20 or 1))

    def _train_call(self, end: int) -> Any:
        from fer_tf.training.loop import NonFiniteLossError

        try:
            return self.parts.trainer.train(self.parts.train_iter, end - self.state.step)
        except NonFiniteLossError as exc:  # the trainer's error becomes the run's status
            self.state.request_stop("non_finite", str(exc))
            return None

    def evaluate(self) -> dict[str, float]:
        """Evaluate on the evaluation data (EMA weights when on).

        Returns:
            The trainer's evaluation results, or ``{}`` without evaluation data.
        """
        p = self.parts
        if p.eval_ds is None:
            return {}
        p.trainer.swap_ema()
        val = p.trainer.evaluate(p.eval_ds, p.config.train.eval_steps or None)
        p.trainer.swap_ema()
        return val

    def end_epoch(self, sums: dict[str, float]) -> None:
        """Evaluate, build the epoch's row, count the epoch, call ``on_epoch_end``, log the line.

        Args:
            sums: what :meth:`train_epoch` returned.
        """
        p, s = self.parts, self.state
        seconds = sums["seconds"]
        row: dict[str, Any] = {
            "epoch": s.epoch + 1,
            "step": s.step,
            "learning_rate": _lr(p.optimizer),
            "train/loss": sums["loss_sum"] / sums["steps"] if sums["steps"] else math.nan,
            "images_per_sec": sums["images"] / max(seconds, 1e-9),
            "seconds": seconds,
        }
        row.update({f"train/{k}": v for k, v in p.trainer.metrics.summary().items()})
        s.val = self.evaluate()
        row.update({f"val/{k}": v for k, v in s.val.items() if "/" not in k})
        row["chance_loss"] = p.task.chance_loss
        s.row, s.improved = row, False
        s.epoch += 1
        p.run_state.epoch.assign(s.epoch)
        self._call("on_epoch_end")
        self.say(_epoch_line(row, p.task))

    # -- the end ---------------------------------------------------------------------------------
    def _result(self) -> RunResult:
        p, s = self.parts, self.state
        best = p.stopper.best if math.isfinite(float(p.run_state.best.numpy())) else None
        return RunResult(
            run_dir=p.run_dir,
            status=s.status,
            steps=s.step,
            epochs=s.epoch,
            best=best,
            monitor=p.monitor,
            history=s.rows,
            message=s.message,
            model=p.model,
        )

    def finalise(self, result: RunResult) -> None:
        """Final evaluation into ``result.eval``, then ``on_finalise`` (reports, exports) with the
        weights the run ends with (EMA weights when on) in place.

        Args:
            result: the run's result, completed here.
        """
        p, s = self.parts, self.state
        has_eval = p.eval_ds is not None
        if has_eval:
            p.trainer.swap_ema()
            final = p.trainer.evaluate(p.eval_ds, p.config.train.eval_steps or None)
            result.eval = {
                "task": p.task.name,
                "split": p.config.data.eval_split
                if p.config.data.fold < 0
                else f"fold {p.config.data.fold}",
                "ema": p.trainer.has_ema,
                "chance_loss": p.task.chance_loss,
                "monitor": p.monitor,
                "best": result.best,
                "status": s.status,
                "steps": s.step,
                "metrics": final,
                **_eval_extras(p.trainer, p.task),
            }
            if p.test_ds is not None:
                # Scored once, with the weights the run ends with; never used for selection.
                test = p.trainer.evaluate(p.test_ds)
                result.eval["test"] = {
                    "split": p.config.data.test_split,
                    "metrics": test,
                    **_eval_extras(p.trainer, p.task),
                }
        s.eval = result.eval
        self._call("on_finalise")
        if has_eval:
            p.trainer.swap_ema()


def _short(summary: dict[str, float], task: Task) -> dict[str, float]:
    key = task.primary_metric
    return {key: summary[key]} if key in summary else {}


def _lr(optimizer: Any) -> float:
    try:
        return float(np.asarray(optimizer.learning_rate))
    except (TypeError, ValueError):
        return float("nan")


def _epoch_line(row: dict[str, Any], task: Task) -> str:
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
