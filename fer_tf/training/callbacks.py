"""Controller helpers: early stopping, ``history.csv``, TensorBoard summaries, progress bar.

These run on the host between ``tf.function`` calls; none of them touches the compiled step.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["EarlyStopping", "HistoryWriter", "SummaryWriter", "Progress", "metric_mode"]

# Metrics where lower is better; everything else is maximised.
_LOWER_IS_BETTER = ("loss", "mse", "rmse", "mae")


def metric_mode(name: str) -> str:
    """``min`` for losses and errors, ``max`` for everything else.

    Args:
        name: metric name, e.g. ``val/loss`` or ``val/f1_mean``.

    Returns:
        ``"min"`` or ``"max"``.
    """
    leaf = name.rsplit("/", 1)[-1]
    return "min" if any(leaf == k or leaf.startswith(k + "_") for k in _LOWER_IS_BETTER) else "max"


class EarlyStopping:
    """Stop when a monitored validation metric has not improved for ``patience`` evaluations.

    The state lives in a :class:`fer_tf.training.checkpoints.RunState` (``best``, ``bad_epochs``)
    so it survives a resume. Values are stored sign-adjusted (higher is better).

    Args:
        monitor: metric name in the evaluation results (``val/f1_mean``, ``val/loss``).
        patience: evaluations without improvement before stopping.
        state: the run state holding ``best`` and ``bad_epochs``.
        min_delta: smallest change that counts as an improvement.
    """

    def __init__(self, monitor: str, patience: int, state: Any, min_delta: float = 0.0) -> None:
        self.monitor = monitor
        self.patience = int(patience)
        self.state = state
        self.min_delta = float(min_delta)
        self.sign = 1.0 if metric_mode(monitor) == "max" else -1.0

    def update(self, results: dict[str, float]) -> tuple[bool, bool]:
        """Record one evaluation.

        Args:
            results: evaluation metrics keyed like :attr:`monitor`.

        Returns:
            ``(improved, stop)``.

        Raises:
            KeyError: if the monitored metric is missing, listing the available names.
        """
        if self.monitor not in results:
            raise KeyError(
                f"The early-stopping metric {self.monitor!r} is not among the evaluation "
                f"results: {', '.join(sorted(results))}."
            )
        value = float(results[self.monitor])
        if math.isnan(value):
            improved = False
        else:
            improved = self.sign * value > float(self.state.best.numpy()) + self.min_delta
        if improved:
            self.state.best.assign(self.sign * value)
            self.state.bad_epochs.assign(0)
        else:
            self.state.bad_epochs.assign_add(1)
        return improved, int(self.state.bad_epochs.numpy()) >= self.patience

    @property
    def best(self) -> float:
        """Best monitored value so far, in the metric's own sign."""
        return self.sign * float(self.state.best.numpy())


class HistoryWriter:
    """Appends one row per epoch to ``history.csv`` (columns grow as new metrics appear).

    Args:
        path: the CSV file; an existing file is kept and extended (resume).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        if self.path.exists():
            with self.path.open(newline="", encoding="utf-8") as f:
                self.rows = list(csv.DictReader(f))

    def append(self, row: dict[str, Any], *, drop_from_epoch: int | None = None) -> None:
        """Add a row and rewrite the file.

        Args:
            row: values by column.
            drop_from_epoch: first drop rows whose ``epoch`` is >= this (a resumed run redoes them).
        """
        if drop_from_epoch is not None:
            self.rows = [r for r in self.rows if int(float(r.get("epoch", 0))) < drop_from_epoch]
        self.rows.append(dict(row))
        columns: list[str] = []
        for r in self.rows:
            columns.extend(c for c in r if c not in columns)
        tmp = self.path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.path)


class SummaryWriter:
    """TensorBoard scalars under ``<run>/logs/{train,val}``.

    Args:
        logdir: the run's ``logs`` directory.
        enabled: False on non-chief workers.
    """

    def __init__(self, logdir: str | os.PathLike[str], *, enabled: bool = True) -> None:
        import tensorflow as tf

        self.enabled = enabled
        self._writers = {}
        if enabled:
            for split in ("train", "val"):
                self._writers[split] = tf.summary.create_file_writer(str(Path(logdir) / split))

    def scalars(self, split: str, values: dict[str, float], step: int) -> None:
        """Write scalar values at ``step``."""
        import tensorflow as tf

        if not self.enabled:
            return
        # tf.summary.write with the "scalars" plugin metadata: what tf.summary.scalar writes,
        # without needing the tensorboard package installed.
        meta = tf.compat.v1.SummaryMetadata()
        meta.plugin_data.plugin_name = "scalars"
        with self._writers[split].as_default():
            for k, v in values.items():
                if isinstance(v, (int, float)) and not math.isnan(float(v)):
                    tf.summary.write(k, tf.constant(float(v), tf.float32), step=step, metadata=meta)
        self._writers[split].flush()


class Progress:
    """A tqdm bar per epoch showing loss, headline metrics and images/s.

    Args:
        total: steps in the epoch.
        epoch: epoch number (1-based for display).
        epochs: total epochs.
        enabled: False to stay silent (tests, non-chief workers).
        initial: steps already done (resumed mid-epoch).
    """

    def __init__(
        self, total: int, epoch: int, epochs: int, *, enabled: bool = True, initial: int = 0
    ) -> None:
        self.bar = None
        self.start = time.perf_counter()
        self.images = 0
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                initial=initial,
                desc=f"epoch {epoch}/{epochs}",
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )

    def update(self, steps: int, images: int, postfix: dict[str, float]) -> float:
        """Advance the bar.

        Returns:
            Images per second since the bar started.
        """
        self.images += images
        rate = self.images / max(time.perf_counter() - self.start, 1e-9)
        if self.bar is not None:
            shown = {k: f"{v:.4g}" for k, v in postfix.items()}
            shown["img/s"] = f"{rate:.1f}"
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(steps)
        return rate

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
