"""Build progress: a tqdm bar on a terminal, a plain line per 10% in logs (no carriage returns)."""

from __future__ import annotations

import io

from fer_tf.build.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_every_ten_percent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bar = Progress(200, "fetch+process", "img", counters=("failed",), stream=stream)
    for i in range(200):
        bar.update(1, failed=int(i % 50 == 0))
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert [line.split("%")[0].split(":")[1].strip() for line in lines] == [
        str(p) for p in range(10, 101, 10)
    ]
    assert lines[0].startswith("fetch+process:  10% (20/200 img, failed 1, ")
    assert lines[-1].startswith("fetch+process: 100% (200/200 img, failed 4, ")


def test_small_totals_and_big_steps_still_give_one_line_per_step() -> None:
    stream = io.StringIO()
    bar = Progress(3, "write", "ex", stream=stream)
    bar.update(3)
    bar.close()
    assert [line.split("(")[0] for line in stream.getvalue().splitlines()] == [
        f"write: {p:3d}% " for p in range(10, 101, 10)
    ]


def test_bar_on_a_terminal_and_nothing_when_disabled() -> None:
    tty = _Terminal()
    bar = Progress(10, "write", "ex", stream=tty)
    bar.update(10)
    bar.close()
    assert "\r" in tty.getvalue() and "10/10" in tty.getvalue()
    quiet = io.StringIO()
    off = Progress(10, "write", "ex", enabled=False, stream=quiet)
    off.update(10)
    off.close()
    assert quiet.getvalue() == "" and off.done == 10
