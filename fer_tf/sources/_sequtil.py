"""Helpers shared by the sequence sources (CK+, MUG, DISFA, BP4D, video). No TensorFlow."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fer_tf.sources.base import Issue, Report, Source
from fer_tf.sources.frames import FrameSpec, parse_frames

_DIGITS = re.compile(r"(\d+)")


def rel(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` with forward slashes (stable ``source`` strings)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def subdirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder``, sorted by name; hidden ones (``.DS_Store``-style) left out."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    return [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]


def files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of ``folder`` with one of ``suffixes`` (lower-case, with dot), sorted by name."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    return [
        Path(e.path)
        for e in entries
        if e.is_file() and not e.name.startswith(".") and Path(e.name).suffix.lower() in suffixes
    ]


def last_number(name: str) -> int | None:
    """The last run of digits in a file stem (``S005_001_00000011`` -> 11), or None."""
    found = _DIGITS.findall(Path(name).stem)
    return int(found[-1]) if found else None


def numbered_frames(
    root: Path, folder: Path, suffixes: tuple[str, ...], report: Report, what: str
) -> list[tuple[int, Path]]:
    """The images of a sequence folder by frame number (the last number in the file name).

    A name without a number is reported (``bad_file_name``); an empty folder is a deliberate skip
    (``empty_sequence``, detail ``no <what>``).

    Args:
        root: the dataset root (for relative paths in reports).
        folder: the sequence folder.
        suffixes: image suffixes to read.
        report: the Issue callback.
        what: what the folder should hold, for the empty-folder detail (``"PNG frames"``).

    Returns:
        ``(number, path)`` pairs sorted by number; empty when there are none.
    """
    frames = []
    for p in files(folder, suffixes):
        number = last_number(p.name)
        if number is None:
            report(Issue(rel(root, p), 0, "bad_file_name", "no frame number in the name"))
        else:
            frames.append((number, p))
    frames.sort()
    if not frames:
        report(Issue(rel(root, folder), 0, "empty_sequence", f"no {what}", failure=False))
    return frames


def read_lines(path: Path, root: Path, report: Report) -> list[str] | None:
    """The lines of a text label file, or None after reporting it as unreadable.

    Args:
        path: the file.
        root: the dataset root (for the reported path).
        report: the issue callback.

    Returns:
        The lines without line ends, or None.
    """
    try:
        return path.read_text(encoding="utf-8-sig", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        report(Issue(rel(root, path), 0, "bad_label_file", f"cannot read the label file: {exc}"))
        return None


def frame_spec(source: Source, allow_fps: bool = False) -> FrameSpec:
    """The source's ``frames`` option parsed, its ``default_frames`` when the option is None."""
    value = source.options.get("frames")
    return parse_frames(value if value is not None else source.default_frames, allow_fps=allow_fps)
