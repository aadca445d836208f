"""Generate ``examples/*.ipynb`` from their ``.py`` sources (jupytext "percent" format).

The ``.py`` file is the source of truth; the notebook is generated, committed, and checked by
``tests/test_examples.py``. Cells start at lines beginning with ``# %%``; ``# %% [markdown]``
starts a markdown cell whose lines are comments (``# text``). No nbformat or jupytext needed: the
notebook JSON (nbformat 4.5) is written here, without outputs, deterministically.

    python tools/make_notebooks.py            # rewrite every examples/*.ipynb
    python tools/make_notebooks.py --check    # exit 1 if a notebook is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_MARKER = re.compile(r"^# %%(?P<rest>.*)$")


def _trim(lines: list[str]) -> list[str]:
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _source(lines: list[str]) -> list[str]:
    """Notebook ``source``: lines with their newlines, the last one without."""
    return [line + "\n" for line in lines[:-1]] + lines[-1:]


def _uncomment(line: str, where: str) -> str:
    if line.startswith("# "):
        return line[2:]
    if line.rstrip() in ("#", ""):
        return ""
    raise ValueError(
        f"{where}: a markdown cell line must start with '# ', be '#' or be blank. Got {line!r}."
    )


def parse_cells(text: str, name: str = "<source>") -> list[tuple[str, list[str]]]:
    """Split percent-format source into ``(kind, lines)`` cells (``"code"`` or ``"markdown"``).

    Args:
        text: the ``.py`` source.
        name: file name for error messages.

    Returns:
        The cells in order; blank cells are dropped.

    Raises:
        ValueError: for an unknown cell type or a markdown line that is not a comment.
    """
    cells: list[tuple[str, list[str], int]] = []
    kind, body, start = "code", [], 1
    for number, line in enumerate(text.splitlines(), start=1):
        m = _MARKER.match(line)
        if m is None:
            body.append(line)
            continue
        cells.append((kind, body, start))
        rest = m.group("rest").strip()
        if rest.startswith("[markdown]") or rest.startswith("[md]"):
            kind = "markdown"
        elif rest == "" or not rest.startswith("["):
            kind = "code"
        else:
            raise ValueError(f"{name}:{number}: unknown cell type {rest!r}; use [markdown].")
        body, start = [], number + 1
    cells.append((kind, body, start))
    out: list[tuple[str, list[str]]] = []
    for kind, body, start in cells:
        if kind == "markdown":
            body = [_uncomment(b, f"{name}:{start + i}") for i, b in enumerate(body)]
        body = _trim(list(body))
        if body:
            out.append((kind, body))
    return out


def to_notebook(text: str, name: str = "<source>") -> dict[str, Any]:
    """The notebook (nbformat 4.5 JSON object) for percent-format ``text``, without outputs."""
    cells = []
    for i, (kind, lines) in enumerate(parse_cells(text, name)):
        cell: dict[str, Any] = {
            "cell_type": kind,
            "id": f"cell-{i:02d}",
            "metadata": {},
            "source": _source(lines),
        }
        if kind == "code":
            cell["execution_count"] = None
            cell["outputs"] = []
        cells.append(cell)
    return {
        "cells": cells,
        "metadata": {
            "colab": {"provenance": []},
            "jupytext": {"formats": "ipynb,py:percent"},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(source: Path) -> str:
    """The ``.ipynb`` text generated from ``source`` (stable: same input, same bytes)."""
    nb = to_notebook(source.read_text(encoding="utf-8"), source.name)
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def sources(directory: Path = EXAMPLES) -> list[Path]:
    """The notebook sources: ``NN_*.py`` files in ``directory``."""
    return sorted(p for p in directory.glob("[0-9][0-9]_*.py"))


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` verify) every notebook; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if a notebook is out of date")
    p.add_argument("--dir", type=Path, default=EXAMPLES, help="examples directory")
    args = p.parse_args(argv)
    stale = []
    for src in sources(args.dir):
        target = src.with_suffix(".ipynb")
        text = render(src)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(target.name)
        else:
            target.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
    if stale:
        print("out of date (run python tools/make_notebooks.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
