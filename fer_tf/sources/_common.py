"""Helpers shared by the still-image sources: wrong-root errors, sorted walks, label files, path
templates.

Private to :mod:`fer_tf.sources` (the registry skips modules whose name starts with ``_``).
No TensorFlow.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fer_tf.sources.base import RootError, describe_root

#: File extensions read as images (lower case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")

#: Partition words accepted in tables and paths -> our partition names.
PARTITION_WORDS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


def root_error(source: str, shown: str, root: Path) -> RootError:
    """The wrong-root error in :meth:`Source.expect`'s words, for expectations that are not one
    fixed entry (``"*.tiff files named like 'KA.AN1.39.tiff'"``).

    Args:
        source: the source name.
        shown: what was expected.
        root: the root looked in.

    Returns:
        A :class:`RootError` to raise.
    """
    return RootError(
        f"Not a '{source}' dataset root: no {shown} under '{root}'; found: {describe_root(root)}."
    )


def is_image(name: str) -> bool:
    """True for a file name with one of :data:`IMAGE_EXTENSIONS`."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def sorted_entries(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of ``folder`` sorted by name (hidden ``.`` entries included); [] if unreadable."""
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []


def walk_files(root: Path, max_depth: int | None = None) -> Iterator[str]:
    """Relative POSIX paths of every file under ``root``, in sorted (deterministic) order.

    Args:
        root: a folder.
        max_depth: the deepest level listed (1: files directly in ``root``); None for all.

    Yields:
        ``"a/b/c.jpg"`` paths relative to ``root``.
    """

    def walk(folder: Path, prefix: str, depth: int) -> Iterator[str]:
        for e in sorted_entries(folder):
            if e.is_dir():
                if max_depth is None or depth < max_depth:
                    yield from walk(Path(e.path), f"{prefix}{e.name}/", depth + 1)
            else:
                yield prefix + e.name

    yield from walk(root, "", 1)


def read_csv_rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` for every non-blank row of a text table (1-based line numbers).

    Args:
        path: a UTF-8 (BOM tolerated) text file.
        delimiter: the cell separator.

    Yields:
        The line number where the row starts and its cells.
    """
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        line = 1
        for cells in reader:
            if any(c.strip() for c in cells):
                yield line, cells
            line = reader.line_num + 1


def count_rows(path: Path) -> int:
    """Non-blank data rows of a text table with one header row."""
    return max(0, sum(1 for _ in read_csv_rows(path)) - 1)


def header_index(header: list[str], names: tuple[str, ...], path: Path) -> dict[str, int]:
    """Column positions of ``names`` in ``header`` (case- and space-insensitive).

    Raises:
        SourceError: a column is missing (the message lists the header found).
    """
    from fer_tf.sources.base import SourceError

    norm = [h.strip().lower() for h in header]
    found: dict[str, int] = {}
    for n in names:
        if n.lower() not in norm:
            raise SourceError(
                f"The table '{path}' has no '{n}' column. Expected the columns {list(names)}; "
                f"found {header}."
            )
        found[n] = norm.index(n.lower())
    return found


def to_float(text: str) -> float | None:
    """A finite float, or None when ``text`` is not one."""
    try:
        x = float(text)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def to_int(text: str) -> int | None:
    """An integer written as ``5`` or ``5.0``, or None."""
    x = to_float(text.strip()) if isinstance(text, str) else None
    if x is None or x != int(x):
        return None
    return int(x)


# --------------------------------------------------------------------------------------------
# Path templates


#: Fields a path template fills; other ``{names}`` match one path part and are ignored.
TEMPLATE_FIELDS = ("posed", "subject", "emotion", "sequence", "frame", "split")
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class PathTemplate:
    """A compiled ``--path-template`` such as ``'{posed}/{subject}/{emotion}/{lighting}/*.jpg'``.

    Attributes:
        text: the template as given.
        pattern: the regular expression a relative POSIX path must match in full.
        fields: the ``{names}`` in order (known and ignored ones).
        depth: the number of path parts (files deeper or shallower never match).
    """

    text: str
    pattern: re.Pattern[str]
    fields: tuple[str, ...]
    depth: int

    def match(self, relative: str) -> dict[str, str] | None:
        """The known fields of a matching relative path (``{"emotion": "happy", ...}``), or None."""
        m = self.pattern.fullmatch(relative)
        if m is None:
            return None
        return {k: v for k, v in m.groupdict().items() if k in TEMPLATE_FIELDS}


def parse_template(text: str) -> PathTemplate:
    """Compile a path template.

    ``{name}`` matches a run of characters inside one path part, ``*`` any run, ``?`` one
    character; everything else is literal. Parts are separated by ``/``.

    Args:
        text: the template, relative to the root (``'{subject}/{emotion}/*.jpg'``).

    Returns:
        A :class:`PathTemplate`.

    Raises:
        ValueError: empty or absolute, a field used twice, or a ``{`` that is not a field.
    """
    t = text.strip().replace("\\", "/")
    if not t or t.startswith("/") or any(p in ("", ".", "..") for p in t.split("/")):
        raise ValueError(
            f"The 'path_template' parameter must be a relative path pattern such as "
            f"'{{subject}}/{{emotion}}/*.jpg'. Got {text!r} instead."
        )
    regex, fields, pos = "", [], 0
    for m in _FIELD.finditer(t):
        regex += _literal(t[pos : m.start()], text)
        name = m.group(1)
        if name in fields:
            raise ValueError(
                f"The 'path_template' parameter names each field once. Got {{{name}}} twice in "
                f"{text!r}."
            )
        fields.append(name)
        regex += f"(?P<{name}>[^/]+?)"
        pos = m.end()
    regex += _literal(t[pos:], text)
    return PathTemplate(text, re.compile(regex), tuple(fields), t.count("/") + 1)


def _literal(part: str, text: str) -> str:
    if "{" in part or "}" in part:
        raise ValueError(
            f"The 'path_template' parameter writes fields as {{name}} (letters, digits, _). Got "
            f"{text!r} instead."
        )
    out = ""
    for ch in part:
        out += "[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch)
    return out
