"""The side jobs of a training run, as small actions the controller calls.

An action reacts to the controller's events through a tiny interface (every method optional;
the base class does nothing):

========================  =====================================================================
``on_begin(state)``       before the first epoch
``on_step(state)``        after each ``Trainer.train`` call (a few steps; ``state.step`` is new)
``on_epoch_end(state)``   after an epoch's evaluation (``state.row``, ``state.val`` are new)
``on_train_end(state)``   after the last epoch, whatever ended the run (``state.status``)
``on_finalise(state)``    after the final evaluation of a run that completed or stopped early,
                          with the weights the run ends with in place (``state.eval``)
``close()``               always, last, even when the run raised: release resources
========================  =====================================================================

An action asks the run to stop with :meth:`ControllerState.request_stop
<fer_tf.training.controller.ControllerState.request_stop>`; nothing is raised. The actions here
are the production ones, in the order :func:`fer_tf.training.experiment.prepare_experiment`
installs them; tests add their own (``fer_tf.testing.faults``).
"""

from __future__ import annotations

import json
import math
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fer_tf.training.controller import ControllerState

__all__ = [
    "Action",
    "Checkpoints",
    "EarlyStop",
    "BestModel",
    "History",
    "Summaries",
    "StopOnSigint",
    "EvalReport",
    "Export",
    "AngularSeparation",
    "jsonable",
]


class Action:
    """Base class: every event is a no-op. Override the ones the action needs."""

    def on_begin(self, state: ControllerState) -> None:
        """Called once before the first epoch."""

    def on_step(self, state: ControllerState) -> None:
        """Called after each training call (``state.step`` advanced)."""

    def on_epoch_end(self, state: ControllerState) -> None:
        """Called after an epoch was trained and evaluated."""

    def on_train_end(self, state: ControllerState) -> None:
        """Called once after the training loop, whatever ended it."""

    def on_finalise(self, state: ControllerState) -> None:
        """Called after the final evaluation of a completed or early-stopped run."""

    def close(self) -> None:
        """Called last, also when the run raised."""


class Checkpoints(Action):
    """Checkpoint every ``every`` steps inside an epoch, at each epoch end, and on interruption.

    Args:
        keeper: the run's :class:`~fer_tf.training.checkpoints.CheckpointKeeper`.
        every: steps between checkpoints inside an epoch (0 = epoch ends only).
    """

    def __init__(self, keeper: Any, every: int) -> None:
        self.keeper = keeper
        self.every = int(every)

    def on_step(self, state: ControllerState) -> None:
        # The epoch-end checkpoint covers a multiple of `every` that ends the epoch.
        if self.every and state.step % self.every == 0 and state.step < state.epoch_end_step:
            self.keeper.save(state.step)

    def on_epoch_end(self, state: ControllerState) -> None:
        self.keeper.save(state.step)

    def on_train_end(self, state: ControllerState) -> None:
        if state.status == "interrupted":
            self.keeper.save(state.step)


class EarlyStop(Action):
    """Track the monitored metric; request a stop after ``patience`` epochs without improvement.

    Tracking runs in every run (it sets ``state.improved`` for :class:`BestModel`); the stop is
    requested only when ``enabled`` (``train.early_stopping_metric`` set).

    Args:
        stopper: the :class:`~fer_tf.training.callbacks.EarlyStopping` (state in the checkpoint).
        enabled: whether to request the stop.
    """

    def __init__(self, stopper: Any, *, enabled: bool) -> None:
        self.stopper = stopper
        self.enabled = enabled

    def on_epoch_end(self, state: ControllerState) -> None:
        state.improved = False
        if not state.val:
            return
        improved, stop = self.stopper.update({f"val/{k}": v for k, v in state.val.items()})
        state.improved = improved
        if stop and self.enabled:
            state.request_stop(
                "early_stopped",
                f"early stopping: {self.stopper.monitor} did not improve for "
                f"{self.stopper.patience} epoch(s); best {self.stopper.best:.4g}",
            )


class BestModel(Action):
    """Keep the best epoch's weights (in memory, and ``best.weights.h5`` on the chief); put them
    back at the end of a completed or early-stopped run when ``restore``.

    Args:
        model: the model.
        path: the ``best.weights.h5`` file.
        chief: whether this worker writes files.
        restore: ``train.restore_best_weights``.
    """

    def __init__(self, model: Any, path: Path, *, chief: bool, restore: bool) -> None:
        self.model = model
        self.path = Path(path)
        self.chief = chief
        self.restore = restore
        self.snapshot: list[np.ndarray] | None = None

    def on_epoch_end(self, state: ControllerState) -> None:
        if not state.improved:
            return
        self.snapshot = [np.array(v.numpy()) for v in self.model.weights]
        if self.chief:
            self.model.save_weights(str(self.path))

    def on_train_end(self, state: ControllerState) -> None:
        if not self.restore or state.status not in ("completed", "early_stopped"):
            return
        if self.snapshot is not None:
            for var, value in zip(self.model.weights, self.snapshot):
                var.assign(value)
        elif self.path.exists():  # a resumed run whose best epoch was before the restart
            self.model.load_weights(str(self.path))


class History(Action):
    """Append each epoch's row to ``history.csv`` and keep ``state.rows`` in step with it.

    Args:
        writer: the :class:`~fer_tf.training.callbacks.HistoryWriter` (chief), or None to keep
            the rows in memory only.
    """

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def on_begin(self, state: ControllerState) -> None:
        if self.writer is not None:
            state.rows = list(self.writer.rows)

    def on_epoch_end(self, state: ControllerState) -> None:
        if self.writer is None:
            state.rows = [*state.rows, state.row]
            return
        # A resumed run redoes the epochs after its checkpoint: drop their old rows.
        self.writer.append(state.row, drop_from_epoch=state.epoch)
        state.rows = list(self.writer.rows)


class Summaries(Action):
    """TensorBoard scalars of each epoch's row (train metrics with the learning rate, val).

    Args:
        writer: the :class:`~fer_tf.training.callbacks.SummaryWriter`.
    """

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def on_epoch_end(self, state: ControllerState) -> None:
        row = state.row
        train = {k[6:]: v for k, v in row.items() if k.startswith("train/")}
        self.writer.scalars("train", train | {"learning_rate": row["learning_rate"]}, state.step)
        val = {k[4:]: v for k, v in row.items() if k.startswith("val/")}
        self.writer.scalars("val", val, state.step)


class StopOnSigint(Action):
    """Ctrl-C (SIGINT) requests an ``interrupted`` stop after the current training call.

    The handler is installed at :meth:`on_begin` (main thread only) and the previous one put
    back at :meth:`close`.
    """

    def __init__(self) -> None:
        self.flag = False
        self._previous: Any = None

    def _handle(self, *_: Any) -> None:
        self.flag = True

    def on_begin(self, state: ControllerState) -> None:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: no handler, Ctrl-C keeps its default
            self._previous = None

    def on_step(self, state: ControllerState) -> None:
        if self.flag:
            state.request_stop(
                "interrupted",
                f"interrupted at step {state.step}; checkpoint saved, resume with --resume",
            )

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as Python numbers and lists, NaN as None.

    Args:
        value: nested dicts, lists, tuples, NumPy values.

    Returns:
        A structure ``json.dumps`` accepts.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return value


class EvalReport(Action):
    """Write ``eval.json`` (the final evaluation, ``state.eval``).

    Args:
        path: the ``eval.json`` file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def on_finalise(self, state: ControllerState) -> None:
        self.path.write_text(json.dumps(jsonable(state.eval), indent=2) + "\n", encoding="utf-8")


class Export(Action):
    """Save the final model as ``best.keras`` and a ``saved_model/`` for serving.

    A failed export is reported and the run's other outputs are kept.

    Args:
        model: the model.
        run_dir: the run directory.
        say: where the warnings go.
    """

    def __init__(self, model: Any, run_dir: Path, say: Callable[[str], None]) -> None:
        self.model = model
        self.run_dir = Path(run_dir)
        self.say = say

    def on_finalise(self, state: ControllerState) -> None:
        try:
            self.model.save(str(self.run_dir / "best.keras"))
        except Exception as exc:  # noqa: BLE001 - report, keep the run's other outputs
            self.say(f"warning: could not save best.keras: {exc}")
        try:
            self.model.export(str(self.run_dir / "saved_model"), verbose=False)
        except Exception as exc:  # noqa: BLE001
            self.say(f"warning: could not export the SavedModel: {exc}")


class AngularSeparation(Action):
    """Angular separation of hidden units (Korber, after Gedeon) every ``every`` epochs.

    Before the first epoch and every ``every`` epochs after it, the angles between the
    activation vectors of (at most ``max_units``, seeded) channels of ``end_point`` over the
    fixed ``probe_images`` (:func:`fer_tf.evaluation.diagnostics.angular_separation`). Each
    measurement goes to TensorBoard (``logs/angular``: a histogram and the mean/min/median)
    and to ``angular_separation.csv`` (with the seconds it took); at the end of training the
    distribution over the epochs is drawn into ``angular_separation.png``.

    Args:
        model: the model.
        end_point: the end point whose channels are the units (None: the penultimate).
        probe_images: ``[N, H, W, C]`` preprocessed images, the same at every measurement.
        every: epochs between measurements (>= 1).
        max_units: units sampled.
        seed: the sampling seed.
        run_dir: where the CSV, PNG and ``logs/angular`` go (None: keep in memory only).
    """

    def __init__(
        self,
        model: Any,
        end_point: str | None,
        probe_images: Any,
        every: int = 1,
        max_units: int = 256,
        seed: int = 0,
        run_dir: Path | None = None,
    ) -> None:
        from fer_tf.evaluation.diagnostics import penultimate_end_point

        self.model = model
        self.end_point = end_point or penultimate_end_point(model)
        self.probe = np.asarray(probe_images, dtype=np.float32)
        self.every = max(int(every), 1)
        self.max_units = int(max_units)
        self.seed = int(seed)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.history: list[tuple[int, np.ndarray]] = []
        self.rows: list[dict[str, float]] = []
        self._writer: Any = None

    def measure(self, epoch: int, step: int) -> np.ndarray:
        """Measure the angles now; log them as epoch ``epoch`` at ``step``.

        Args:
            epoch: epochs completed.
            step: the global step.

        Returns:
            The pair angles in degrees.
        """
        import time

        from fer_tf.evaluation.diagnostics import angle_summary, angular_separation

        t0 = time.perf_counter()
        angles = angular_separation(
            self.model, self.probe, self.end_point, self.max_units, self.seed
        )
        seconds = time.perf_counter() - t0
        self.history = [h for h in self.history if h[0] != epoch] + [(epoch, angles)]
        row = {"epoch": epoch, "step": step, **angle_summary(angles), "seconds": seconds}
        self.rows = [r for r in self.rows if r["epoch"] != epoch] + [row]
        self._log(angles, row, step)
        return angles

    def _log(self, angles: np.ndarray, row: dict[str, float], step: int) -> None:
        if self.run_dir is None:
            return
        import csv

        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.run_dir / "logs" / "angular"))
        scalars = tf.compat.v1.SummaryMetadata()
        scalars.plugin_data.plugin_name = "scalars"
        hist = tf.compat.v1.SummaryMetadata()
        hist.plugin_data.plugin_name = "histograms"
        counts, edges = np.histogram(angles, bins=30, range=(0.0, 180.0))
        buckets = np.stack([edges[:-1], edges[1:], counts]).T.astype(np.float64)
        with self._writer.as_default():
            tag = f"angular_separation/{self.end_point}"
            tf.summary.write(tag, tf.constant(buckets), step=step, metadata=hist)
            for k in ("mean", "min", "median"):
                if math.isfinite(row[k]):
                    tf.summary.write(f"{tag}/{k}", float(row[k]), step=step, metadata=scalars)
        self._writer.flush()
        with (self.run_dir / "angular_separation.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(self.rows[0]))
            w.writeheader()
            w.writerows(self.rows)

    def on_begin(self, state: ControllerState) -> None:
        if state.epoch == 0:
            self.measure(0, state.step)

    def on_epoch_end(self, state: ControllerState) -> None:
        if state.epoch % self.every == 0 or state.epoch == state.epochs:
            self.measure(state.epoch, state.step)

    def on_train_end(self, state: ControllerState) -> None:
        if self.run_dir is None or not self.history:
            return
        from fer_tf.evaluation.diagnostics import _pyplot, plot_angle_distribution

        fig = plot_angle_distribution(
            sorted(self.history, key=lambda h: h[0]),
            f"Angular separation of {self.end_point} ({self.probe.shape[0]} probe images, "
            f"at most {self.max_units} units)",
        )
        fig.savefig(self.run_dir / "angular_separation.png", dpi=110)
        _pyplot().close(fig)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
