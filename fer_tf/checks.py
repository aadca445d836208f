"""Parameter checks with scikit-learn-style messages, in one place.

Every check raises an error that names the parameter, says what is accepted and shows what was
given: ``The 'aus' parameter must be one of ['emotionet11', ...]. Got 'AU7x' instead. Did you
mean ...?``. Modules raise their own error class (``ConfigError``, ``ValueError``) through the
``error`` argument, so callers keep catching what they caught before.

This module imports nothing heavy (no TensorFlow) so that CLIs and configs can use it.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "did_you_mean",
    "invalid",
    "check_choice",
    "check_number",
    "check_path",
    "check_writable_dir",
    "describe_path",
]


def did_you_mean(value: Any, choices: Iterable[Any], prefix: str = "") -> str:
    """`` Did you mean 'x'?`` for the closest string choice, or ``""``.

    Args:
        value: what was given.
        choices: the accepted values (non-strings are ignored).
        prefix: text put before the suggestion inside the quotes (e.g. ``"val/"``).

    Returns:
        The hint with a leading space, or an empty string when nothing is close.
    """
    names = [str(c) for c in choices if isinstance(c, str)]
    close = difflib.get_close_matches(str(value), names, n=1)
    return f" Did you mean '{prefix}{close[0]}'?" if close else ""


def invalid(
    name: str, accepted: str, got: Any, *, hint: str = "", error: type[Exception] = ValueError
) -> Exception:
    """Build (not raise) ``The '<name>' parameter must be <accepted>. Got <got!r> instead.``.

    Args:
        name: the parameter as the user wrote it (``"model.name"``, ``"--output-dir"``).
        accepted: what is accepted, phrased to follow "must be".
        got: the offending value.
        hint: appended text, e.g. from :func:`did_you_mean`.
        error: the exception class to build.

    Returns:
        The exception, for ``raise invalid(...)``.
    """
    return error(f"The '{name}' parameter must be {accepted}. Got {got!r} instead.{hint}")


def check_choice(
    name: str, value: Any, choices: Iterable[Any], *, error: type[Exception] = ValueError
) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise with a did-you-mean hint.

    Args:
        name: the parameter name.
        value: the given value.
        choices: the accepted values.
        error: the exception class raised.

    Returns:
        ``value`` unchanged.

    Raises:
        error: ``value`` is not among ``choices``.
    """
    options = list(choices)
    if value in options:
        return value
    raise invalid(name, f"one of {options}", value, hint=did_you_mean(value, options), error=error)


def check_number(
    name: str,
    value: Any,
    *,
    min: float | None = None,  # noqa: A002 - mirrors the message
    max: float | None = None,  # noqa: A002
    gt: float | None = None,
    lt: float | None = None,
    integer: bool = False,
    allow_none: bool = False,
    error: type[Exception] = ValueError,
) -> Any:
    """Return ``value`` if it is a number (an integer when ``integer``) in range, else raise.

    Booleans are not numbers here. Bounds: ``min <= value <= max``, ``gt < value < lt``.

    Args:
        name: the parameter name.
        value: the given value.
        min: inclusive lower bound.
        max: inclusive upper bound.
        gt: exclusive lower bound.
        lt: exclusive upper bound.
        integer: require an ``int``.
        allow_none: accept ``None`` (returned as is).
        error: the exception class raised.

    Returns:
        ``value`` unchanged.

    Raises:
        error: wrong type or out of range.
    """
    if value is None and allow_none:
        return value
    kind = "an integer" if integer else "a number"
    parts = []
    if min is not None:
        parts.append(f">= {min}")
    if gt is not None:
        parts.append(f"> {gt}")
    if max is not None:
        parts.append(f"<= {max}")
    if lt is not None:
        parts.append(f"< {lt}")
    accepted = kind + (" " + " and ".join(parts) if parts else "")
    if allow_none:
        accepted += " or None"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or value != value:  # NaN fails every bound
        raise invalid(name, accepted, value, error=error)
    if (
        (min is not None and value < min)
        or (max is not None and value > max)
        or (gt is not None and value <= gt)
        or (lt is not None and value >= lt)
    ):
        raise invalid(name, accepted, value, error=error)
    return value


def describe_path(path: str | os.PathLike[str]) -> str:
    """What is at ``path``, in words: ``"a file"``, ``"a directory"``, ``"nothing"``, ...

    Args:
        path: any path.

    Returns:
        A short description for error messages.
    """
    p = Path(path)
    if p.is_symlink() and not p.exists():
        return "a broken symbolic link"
    if p.is_dir():
        return "a directory"
    if p.is_file():
        return "a file"
    if p.exists():
        return "a special file"
    return "nothing (it does not exist)"


def check_path(
    name: str,
    path: str | os.PathLike[str],
    *,
    kind: str = "dir",
    error: type[Exception] = ValueError,
) -> Path:
    """Check that ``path`` exists and is a directory (``kind="dir"``) or a file (``"file"``).

    Args:
        name: the parameter name (``"--records"``).
        path: the given path.
        kind: ``"dir"`` or ``"file"``.
        error: the exception class raised.

    Returns:
        The path as a :class:`~pathlib.Path`.

    Raises:
        error: nothing there, or the wrong kind of thing.
    """
    p = Path(path)
    ok = p.is_dir() if kind == "dir" else p.is_file()
    if not ok:
        want = "an existing directory" if kind == "dir" else "an existing file"
        raise error(
            f"The '{name}' parameter must be {want}. Got '{path}', which is {describe_path(p)}."
        )
    return p


def _can_create_in(directory: Path) -> bool:
    # os.access says yes to root on read-only mounts and /proc; creating (and removing) an empty
    # temporary directory is the only answer that holds for every user and file system.
    try:
        probe = tempfile.mkdtemp(prefix=".fer_tf_write_check_", dir=directory)
    except OSError:
        return False
    os.rmdir(probe)
    return True


def check_writable_dir(
    name: str, path: str | os.PathLike[str], *, error: type[Exception] = ValueError
) -> Path:
    """Check, without creating anything, that ``path`` is or can become a writable directory.

    The nearest existing ancestor must be a directory we may write to; an existing ``path`` must be
    a writable directory. Nothing is created, so a dry run can call this too.

    Args:
        name: the parameter name (``"--model-dir"``).
        path: the given path.
        error: the exception class raised.

    Returns:
        The path as a :class:`~pathlib.Path`.

    Raises:
        error: ``path`` is a file, or it (or its nearest existing parent) is not writable.
    """
    p = Path(path)
    want = "a writable directory (existing or to be created)"
    if p.exists() or p.is_symlink():
        if not p.is_dir():
            raise error(
                f"The '{name}' parameter must be {want}. Got '{path}', which is {describe_path(p)}."
            )
        if not _can_create_in(p):
            raise error(
                f"The '{name}' parameter must be {want}. Got '{path}', a directory this user "
                "cannot write to."
            )
        return p
    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise error(
            f"The '{name}' parameter must be {want}. Got '{path}', but '{parent}' is "
            f"{describe_path(parent)}, not a directory."
        )
    if not _can_create_in(parent):
        raise error(
            f"The '{name}' parameter must be {want}. Got '{path}', but its parent '{parent}' is "
            "not writable by this user."
        )
    return p
