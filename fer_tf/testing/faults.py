"""Faults injected into a training run, as controller actions (never part of the production loop).

Example:
    >>> from fer_tf.training.experiment import prepare_experiment
    >>> controller = prepare_experiment(config, actions=[KillAfterStep(10)])
    >>> controller.run()  # the process dies with SIGKILL once step 10 is done
"""

from __future__ import annotations

import os
import signal

from fer_tf.training.actions import Action
from fer_tf.training.controller import ControllerState

__all__ = ["KillAfterStep"]


class KillAfterStep(Action):
    """SIGKILL this process once the run has done ``step`` optimizer steps (a power cut).

    Called after the production actions, so a checkpoint due at the same step is written first.

    Args:
        step: the step after which to die (>= 1).

    Raises:
        ValueError: ``step`` is not a positive integer.
    """

    def __init__(self, step: int) -> None:
        from fer_tf.checks import check_number

        self.step = check_number("step", step, min=1, integer=True)

    def on_step(self, state: ControllerState) -> None:
        if state.step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)
