"""Checkpoints that resume exactly: model, optimizer, step, RNG and the input iterator.

A :class:`RunState` holds the loop's own counters as variables (global step, epoch, step within
the epoch, early-stopping state), so they are saved and restored with everything else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tensorflow as tf

__all__ = ["RunState", "CheckpointKeeper"]


class RunState(tf.Module):
    """The controller's counters, as checkpointable variables.

    Attributes:
        step: optimizer steps done.
        epoch: completed epochs.
        best: best monitored value so far (``-inf`` before the first evaluation).
        bad_epochs: epochs since the best value improved.
        rng: a ``tf.random.Generator`` for anything the loop draws itself.
    """

    def __init__(self, seed: int = 0) -> None:
        super().__init__(name="run_state")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.best = tf.Variable(float("-inf"), dtype=tf.float64, trainable=False, name="best")
        self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_epochs")
        self.rng = tf.random.Generator.from_seed(seed)


class CheckpointKeeper:
    """``tf.train.CheckpointManager`` over model, optimizer, run state and the data iterator.

    In multi-worker training every worker saves (the collective ops need all of them), but only
    the chief writes into ``directory``; the others write into a temporary sibling that is removed.

    Args:
        directory: checkpoint directory.
        max_to_keep: checkpoints kept.
        is_chief: whether this worker is the chief.
        **objects: trackables to save (``model=...``, ``optimizer=...``, ``iterator=...``).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_to_keep: int = 3,
        is_chief: bool = True,
        **objects: Any,
    ) -> None:
        self.directory = Path(directory)
        self.is_chief = is_chief
        target = (
            self.directory
            if is_chief
            else self.directory.with_name(f"{self.directory.name}.worker-{os.getpid()}")
        )
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(target), max_to_keep=max_to_keep
        )

    @property
    def latest(self) -> str | None:
        """Path prefix of the newest checkpoint in ``directory``, or None."""
        return tf.train.latest_checkpoint(str(self.directory))

    def restore_latest(self) -> str | None:
        """Restore the newest checkpoint if there is one.

        Returns:
            Its path, or None when the directory holds none.
        """
        path = self.latest
        if path:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, step: int) -> str:
        """Save a checkpoint numbered ``step``.

        Returns:
            The checkpoint path prefix.
        """
        return self.manager.save(checkpoint_number=step)

    def cleanup(self) -> None:
        """Remove a non-chief worker's temporary checkpoint directory."""
        if not self.is_chief and tf.io.gfile.exists(str(self.manager.directory)):
            tf.io.gfile.rmtree(str(self.manager.directory))
