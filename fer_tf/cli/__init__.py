"""Thin command-line entry points: parse, build config, call one library function."""

from __future__ import annotations

import sys

__all__ = ["fail"]


def fail(prog: str, msg: str, status: int = 2) -> int:
    """Report a command-line error in argparse's form (``PROG: error: MSG`` on stderr).

    Args:
        prog: the command's name.
        msg: what was wrong.
        status: the exit status to return (2: bad arguments, 1: bad input found later).

    Returns:
        ``status``, for ``return fail(...)`` in a ``main``.
    """
    print(f"{prog}: error: {msg}", file=sys.stderr)
    return status
