"""Progress on stderr: a tqdm bar in a terminal, one plain line per step of 10% elsewhere.

A log file or a CI console shows carriage-return bars as one ever-growing line (or thousands of
lines); there a line per 10% says the same in eleven lines.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress", "LINE_STEP"]

#: Fraction of the total between two progress lines when stderr is not a terminal.
LINE_STEP = 0.1


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


class Progress:
    """Counts and shows the progress of one phase.

    Args:
        total: the number of items expected.
        desc: the phase name shown (``"fetch+process"``, ``"write"``).
        unit: the item unit (``"img"``, ``"ex"``).
        enabled: show anything at all.
        counters: named counters shown with the progress (e.g. ``downloaded``, ``failed``).
        stream: where to write (default ``sys.stderr``).
        bar: force a tqdm bar (True) or plain lines (False); default: a bar on a terminal.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str,
        *,
        enabled: bool = True,
        counters: tuple[str, ...] = (),
        stream: TextIO | None = None,
        bar: bool | None = None,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.enabled = enabled
        self.done = 0
        self.counts = {name: 0 for name in counters}
        self.stream = stream if stream is not None else sys.stderr
        self._bar: Any = None
        self._last_postfix = 0.0
        self._next_line = 1
        self._start = time.monotonic()
        if enabled and (bar if bar is not None else _is_terminal(self.stream)):
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total, unit=unit, desc=desc, dynamic_ncols=True, file=self.stream
            )

    def update(self, done: int = 0, **counts: int) -> None:
        """Advance by ``done`` items and add to the named counters.

        Args:
            done: items finished.
            **counts: increments of named counters (unknown names are added).
        """
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        self.done += done
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(done)
            now = time.monotonic()
            if now - self._last_postfix > 0.2:
                self._last_postfix = now
                self._bar.set_postfix(self.counts, refresh=False)
            return
        # Lines at every LINE_STEP of the total (the 100% line comes from close()).
        steps = round(1 / LINE_STEP)
        while (
            self.total > 0
            and self._next_line < steps
            and self.done * steps >= (self._next_line * self.total)
        ):
            self._line(self._next_line * 100 // steps)
            self._next_line += 1

    def _line(self, percent: int) -> None:
        counts = "".join(f", {k} {v}" for k, v in self.counts.items())
        elapsed = time.monotonic() - self._start
        self.stream.write(
            f"{self.desc}: {percent:3d}% ({self.done}/{self.total} {self.unit}{counts}, "
            f"{elapsed:.1f} s)\n"
        )
        self.stream.flush()

    def close(self) -> None:
        """Finish: the final counters on the bar, or a last line (when anything was expected)."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.set_postfix(self.counts, refresh=True)
            self._bar.close()
        elif self.total > 0:
            self._line(100 if self.done >= self.total else self.done * 100 // self.total)
