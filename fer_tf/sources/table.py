"""The ``csv`` source: local images listed in a table, or labelled by their folder names.

**Table mode** (``--input TABLE``; ``.csv``, ``.tsv``/``.txt`` or ``.xlsx``, read with the
spreadsheet module's readers): a header row naming a ``path`` column (also ``file``, ``filename``,
``image``, ``filepath``, ``imagepath``) of image paths relative to the table's folder, and any of
the label columns the spreadsheet reader knows: AU columns (``AU1``, ``AU 1``, ``AU_1``, ``au01``;
1 present, 0 absent, 999 or empty unknown), ``valence``, ``arousal``, ``emotion`` (a name or an
index), ``posed`` (1/0 or posed/spontaneous), ``subject``; and ``sequence`` (``video``), ``frame``
and ``split`` (train/val/test, also training/validation/testing). A bad row is reported with its
line and skipped.

**Template mode** (``--input FOLDER --path-template T``): labels come from path parts, e.g.
``'{posed}/{subject}/{emotion}/{lighting}/*.jpg'``. Known fields: posed, subject, emotion,
sequence, frame, split; other ``{names}`` match one path part and are ignored. Files that do not
match are counted skips.

Emotion names: ``--class-names a,b,c`` fixes them (names or indices into them); otherwise a
template's names are collected and sorted, and a table's are :data:`fer_tf.facs.EMOTIONS` when
every value is one of those names or an index into them (the spreadsheet convention), else the
names found, sorted. The source's ``emotion_names`` and ``au_ids`` are known after
:meth:`TableSource.check_root`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from fer_tf.facs import EMOTIONS
from fer_tf.sources import spreadsheet as ss
from fer_tf.sources._common import (
    PARTITION_WORDS,
    PathTemplate,
    is_image,
    parse_template,
    root_error,
    to_int,
    walk_files,
)
from fer_tf.sources.base import (
    Issue,
    Report,
    RootError,
    Source,
    SourceError,
    SourceItem,
    SourceOption,
    describe_root,
    register_source,
)

__all__ = ["TableSource", "TABLE_EXTENSIONS"]

#: Table files the ``csv`` source reads.
TABLE_EXTENSIONS = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm")
_PATH_HEADERS = ("path", "file", "filename", "image", "filepath", "imagepath")
_EXTRA = {
    "sequence": ("sequence", "sequenceid", "video", "videoid"),
    "frame": ("frame", "frameindex"),
    "split": ("split", "partition"),
}


def _norm(v: Any) -> str:
    return re.sub(r"[\s_\-]+", "", str(v)).lower() if v is not None else ""


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _safely(
    rows: Iterator[tuple[int, list[Any]]], where: str, report: Report
) -> Iterator[tuple[int, list[Any]]]:
    """The rows of a sheet until one cannot be read; that is reported, not raised (the rows
    before it are kept)."""
    try:
        yield from rows
    except ss._SheetError as exc:
        report(Issue(where, 0, "bad_label_file", f"the table could not be read to the end: {exc}"))


class _Columns:
    """Column positions of one sheet's header."""

    def __init__(self, header: list[Any]) -> None:
        norm = [_norm(c) for c in header]
        self.path = next((norm.index(n) for n in _PATH_HEADERS if n in norm), -1)
        self.au: list[tuple[int, int]] = []
        for j, c in enumerate(header):
            m = ss._AU_HEADER.match(str(c)) if isinstance(c, str) else None
            if m:
                self.au.append((j, int(m.group(1))))
        self.opt: dict[str, int] = {}
        for key, names in {**ss._OPTIONAL, **_EXTRA}.items():
            hit = next((j for j, n in enumerate(norm) if n in names), None)
            if hit is not None:
                self.opt[key] = hit


@register_source
class TableSource(Source):
    """Local images from a table (``--input`` the table) or a path template (``--input`` a
    folder)."""

    name = "csv"
    description = "local images listed in a csv/tsv/xlsx table, or labelled by --path-template"
    protocol = "the table's split column or the template's {split}; else none (split by the build)"
    source_options = (
        SourceOption(
            "path_template",
            "read labels from path parts, e.g. '{posed}/{subject}/{emotion}/{lighting}/*.jpg'; "
            "--input is then a folder (csv)",
        ),
        SourceOption(
            "class_names",
            "emotion class names in index order, comma-separated (csv; default: found)",
        ),
    )

    def __init__(self, root: Any, **options: Any) -> None:
        super().__init__(root, **options)
        template = self.options["path_template"]
        try:
            self.template: PathTemplate | None = parse_template(template) if template else None
        except ValueError as exc:
            raise SourceError(str(exc)) from exc
        names = self.options["class_names"]
        self._fixed = tuple(n.strip().lower() for n in names.split(",")) if names else None
        if self._fixed is not None and (
            not all(self._fixed) or len(set(self._fixed)) < len(self._fixed)
        ):
            raise SourceError(
                f"The 'class_names' option must be distinct comma-separated names. Got {names!r}."
            )
        self._ready = False

    # ---------------------------------------------------------------------------------------
    # Root and label vocabulary

    def check_root(self) -> None:
        """Check the input and settle ``emotion_names``/``au_ids``/``label_mapping``.

        Raises:
            RootError: a folder without a template, a table file with a template, or a missing
                or unsupported table; a table without a path column.
        """
        if self.template is not None:
            super().check_root()
        elif not self.root.is_file() or self.root.suffix.lower() not in TABLE_EXTENSIONS:
            from fer_tf.checks import describe_path

            found = f"; found: {describe_root(self.root)}" if self.root.is_dir() else ""
            raise RootError(
                f"The '--input' of source 'csv' must be a table file "
                f"({', '.join(TABLE_EXTENSIONS)}), or a folder with --path-template. Got "
                f"'{self.root}', which is {describe_path(self.root)}{found}."
            )
        self._prepare()

    def _prepare(self) -> None:
        if self._ready:
            return
        if self.template is not None:
            matches = [
                f
                for rel in walk_files(self.root, self.template.depth)
                if is_image(rel) and (f := self.template.match(rel)) is not None
            ]
            found = {f["emotion"].strip().lower() for f in matches if f.get("emotion", "").strip()}
            if not matches:
                raise root_error(
                    self.name, f"file matching the path template {self.template.text!r}", self.root
                )
            self.au_ids: tuple[int, ...] = ()
            names = self._fixed or tuple(sorted(found))
        else:
            au, found, numeric = self._scan_table()
            self.au_ids = tuple(sorted(au))
            if self._fixed is not None:
                names = self._fixed
            elif all(n in EMOTIONS for n in found):
                names = EMOTIONS if (found or numeric) else ()
            else:
                names = tuple(sorted(found))
        self.emotion_names = names
        self.label_mapping = {n: n for n in names}
        self._ready = True

    def _sheets(self) -> Iterator[tuple[str, _Columns | None, Iterator[tuple[int, list[Any]]]]]:
        xlsx = self.root.suffix.lower() in (".xlsx", ".xlsm")
        try:
            for sheet, rows in ss.iter_table(self.root):
                where = f"{self.root.name}:{sheet}" if xlsx else self.root.name
                cols = None
                for _, cells in rows:
                    if any(_cell(c) for c in cells):
                        cols = _Columns(list(cells))
                        break
                yield where, cols, rows
        except ss.SpreadsheetError as exc:
            raise SourceError(str(exc)) from exc

    def _scan_table(self) -> tuple[set[int], set[str], bool]:
        au: set[int] = set()
        found: set[str] = set()
        numeric = False
        any_path = False
        for _, cols, rows in self._sheets():
            if cols is None or cols.path < 0:
                continue
            any_path = True
            au.update(a for _, a in cols.au)
            j = cols.opt.get("emotion")
            for _, cells in _safely(rows, "", lambda _: None):  # items() reports it
                v = _cell(cells[j]) if j is not None and j < len(cells) else ""
                if v and to_int(v) is None:
                    found.add(v.lower())
                elif v:
                    numeric = True
        if not any_path:
            raise SourceError(
                f"The table '{self.root}' has no path column: its header must name one of "
                f"{list(_PATH_HEADERS)} (image paths relative to the table)."
            )
        return au, found, numeric

    # ---------------------------------------------------------------------------------------
    # Items

    def items(self, report: Report) -> Iterator[SourceItem]:
        """Table rows in order, or template matches in sorted path order."""
        self._prepare()
        if self.template is not None:
            yield from self._template_items(report)
            return
        for where, cols, rows in self._sheets():
            if cols is None:
                continue
            if cols.path < 0:
                report(Issue(where, 0, "bad_sheet", "no path column; the sheet is not read"))
                continue
            for line, cells in _safely(rows, where, report):
                if not any(_cell(c) for c in cells):
                    continue
                item, problem = self._row_item(cols, list(cells))
                if item is None:
                    report(Issue(where, line, "bad_row", problem))
                elif isinstance(item, str):
                    report(Issue(where, line, "unknown_class", item, failure=False))
                else:
                    yield item

    def _emotion(self, text: str) -> int | str | None:
        """Index, a skip reason (a name outside --class-names) or None (bad)."""
        text = text.strip()
        if not text or text in ("-1", "999"):
            return -1
        names = self.emotion_names
        if text.lower() in names:
            return names.index(text.lower())
        k = to_int(text)
        if k is not None:
            return k if 0 <= k < len(names) and self._indexable() else None
        return f"emotion {text!r} is not one of --class-names {list(names)}"

    def _indexable(self) -> bool:
        return self._fixed is not None or self.emotion_names == EMOTIONS

    def _row_item(self, cols: _Columns, cells: list[Any]) -> tuple[SourceItem | str | None, str]:
        def get(j: int | None) -> Any:
            return cells[j] if j is not None and j < len(cells) else None

        rel = _cell(get(cols.path)).replace("\\", "/")
        if not rel:
            return None, "no image path"
        item = SourceItem(rel, path=self.root.parent / rel)
        au: dict[int, int] = {}
        for j, a in cols.au:
            v = ss._parse_au(get(j))
            if v is None:
                return None, f"AU{a} value {get(j)!r} is not 1, 0, 999 or empty"
            au[a] = v
        item.au = au
        for key in ("valence", "arousal"):
            if key in cols.opt:
                x = ss._parse_float(get(cols.opt[key]))
                if x is None or not (math.isnan(x) or -1 <= x <= 1):
                    return None, f"{key} {get(cols.opt[key])!r} is not a number in [-1, 1]"
                setattr(item, key, x)
        fields = {k: _cell(get(cols.opt.get(k))) for k in ("emotion", "posed", "subject")}
        fields |= {k: _cell(get(cols.opt.get(k))) for k in _EXTRA}
        return self._apply(item, fields)

    def _apply(self, item: SourceItem, f: dict[str, str]) -> tuple[SourceItem | str | None, str]:
        """Fill emotion, posed, subject, sequence, frame and split from text fields."""
        e = self._emotion(f.get("emotion", ""))
        if isinstance(e, str):
            return e, ""
        if e is None:
            return None, f"emotion {f['emotion']!r} is not one of {list(self.emotion_names)}"
        item.emotion = e
        p = ss._parse_posed(f.get("posed", "")) if f.get("posed") else -1
        if p is None:
            return None, f"posed {f['posed']!r} is not 1/0/posed/spontaneous"
        item.posed = p
        item.subject = f.get("subject", "")
        item.sequence = f.get("sequence", "")
        if f.get("frame"):
            frame = to_int(f["frame"])
            if frame is None or frame < 0:
                return None, f"frame {f['frame']!r} is not a non-negative integer"
            item.frame = frame
        if f.get("split"):
            split = PARTITION_WORDS.get(f["split"].lower())
            if split is None:
                return None, f"split {f['split']!r} is not one of train/val/test"
            item.partition = split
        return item, ""

    def _template_items(self, report: Report) -> Iterator[SourceItem]:
        assert self.template is not None  # checked by the caller; not user input
        for rel in walk_files(self.root, self.template.depth):
            fields = self.template.match(rel)
            if fields is None or not is_image(rel):
                detail = f"does not match the path template {self.template.text!r}"
                if fields is not None:
                    detail = "not an image file"
                report(Issue(rel, 0, "template_mismatch", detail, failure=False))
                continue
            item, problem = self._apply(SourceItem(rel, path=self.root / rel), fields)
            if item is None:
                report(Issue(rel, 0, "bad_path_label", problem))
            elif isinstance(item, str):
                report(Issue(rel, 0, "unknown_class", item, failure=False))
            else:
                yield item
