"""Read EmotioNet-style spreadsheets of image URLs and labels (``.xlsx``, ``.csv``, ``.tsv``/``.txt``).

Pure Python (openpyxl + ``csv``); no TensorFlow. Files are streamed: ``.xlsx`` through openpyxl's
``read_only`` mode (every sheet), text files line by line.

Layouts (see ``DESIGN.md``, "Spreadsheet input"):

- EmotioNet manual annotations (``.xlsx``): column 0 the URL, then column k = AU k (60 columns),
  values 1 present / 0 absent / 999 not scored; several sheets; with or without a header row;
- EmotioNet 2020 (``.csv``): a ``URL`` column and AU columns named like ``AU 1``;
- EmotioNet auto-annotated ``dataFile_*.txt``: tab-separated ``URL``, ``URL_orig``, ``AU1``..``AU60``.

Every sheet is looked at on its own: the first non-blank row is a header when it names a URL column
or an AU column and holds no URL; otherwise the sheet is positional (column 0 URL, column k AU k),
but only when column 0 of at least one of its first 200 non-blank rows holds an ``http://`` or
``https://`` URL (the only schemes the downloader fetches; local paths are not supported). A sheet
with neither a URL header nor such URLs has no URL column: it is reported (``bad_sheet``), and a file
none of whose sheets has a URL column raises :class:`SpreadsheetError`.
AU headers may be written ``AU1``, ``AU 1``, ``AU_1``, ``au01``. Optional columns (by header):
``valence``, ``arousal``, ``emotion`` (an index into :data:`fer_tf.facs.EMOTIONS` or a name),
``posed`` (1/0 or ``posed``/``spontaneous``) and ``subject``.

Label values: ``1`` present, ``0`` absent, ``999`` or an empty cell unknown (stored as ``-1``).
Anything else (``2``, ``"x"``) makes the row *bad*: it is reported with its file, sheet and row number
and skipped, never silently dropped. Rows without a URL are bad too. A URL that appears again is kept
once (the first occurrence); the repeat is reported as ``duplicate``, or ``duplicate_conflict`` when
its labels differ. In comma-separated files written without quoting, a URL that contains commas is
split over several cells; such rows are longer than the sheet's width and the URL is re-joined.

Rows are streamed from the files into a list-like ``rows`` and duplicates found through a
``seen`` map (URL -> position in ``rows``): plain ``list``/``dict`` by default; a build passes
ones that move to disk past a threshold (:mod:`fer_tf.build.spill`), so that reading millions of
URLs holds a constant number of rows in memory.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fer_tf.checks import check_path
from fer_tf.facs import EMOTIONS

__all__ = [
    "SpreadsheetError",
    "SheetRow",
    "RowIssue",
    "SheetInfo",
    "SpreadsheetData",
    "SheetRowCodec",
    "RowList",
    "SeenMap",
    "SKIP_REASONS",
    "read_spreadsheet",
    "read_spreadsheets",
    "iter_table",
]

#: Why a spreadsheet row is skipped (``skipped.jsonl`` / manifest ``skipped``).
SKIP_REASONS = ("bad_row", "duplicate", "duplicate_conflict", "unknown_label", "no_face")

UNKNOWN = -1
_UNKNOWN_CODE = 999
_XLSX = (".xlsx", ".xlsm")
_TEXT = (".csv", ".tsv", ".txt")

_AU_HEADER = re.compile(r"^\s*au[\s_\-]*0*(\d+)\s*$", re.IGNORECASE)
_URL_HEADERS = ("url", "imageurl", "image", "link", "source", "path", "file", "filename")
_OPTIONAL = {
    "valence": ("valence",),
    "arousal": ("arousal",),
    "emotion": ("emotion", "expression", "emotionlabel", "emotioncategory"),
    "posed": ("posed", "posedspontaneous"),
    "subject": ("subject", "subjectid", "person", "identity"),
}
_POSED_WORDS = {"posed": 1, "spontaneous": 0}


class SpreadsheetError(ValueError):
    """A spreadsheet that cannot be used at all (unreadable, empty, no URL column)."""


@dataclass(slots=True)  # one per URL: no __dict__ each
class SheetRow:
    """One usable spreadsheet row.

    Attributes:
        source: the URL as written (whitespace trimmed).
        au_ids: AU numbers of this row's sheet (shared tuple).
        au_values: one byte per ``au_ids`` entry holding ``label + 1`` (0 unknown, 1 absent,
            2 present); use :meth:`au` to read labels.
        valence, arousal: floats, NaN when unknown.
        emotion: index into :data:`fer_tf.facs.EMOTIONS`, -1 unknown.
        posed: 1 posed, 0 spontaneous, -1 unknown.
        subject: subject id, empty when unknown.
        file, sheet, row: where the row came from (``row`` is 1-based, as a spreadsheet shows it).
    """

    source: str
    au_ids: tuple[int, ...]
    au_values: bytes
    valence: float = math.nan
    arousal: float = math.nan
    emotion: int = UNKNOWN
    posed: int = UNKNOWN
    subject: str = ""
    file: str = ""
    sheet: str = ""
    row: int = 0

    def au(self, au_ids: Sequence[int]) -> tuple[int, ...]:
        """Labels for ``au_ids`` (1 present, 0 absent, -1 unknown or not in this sheet)."""
        pos = {a: i for i, a in enumerate(self.au_ids)}
        return tuple(self.au_values[pos[a]] - 1 if a in pos else UNKNOWN for a in au_ids)

    def labels(self) -> tuple[Any, ...]:
        """Comparable label tuple (NaN-safe), used to detect conflicting duplicates."""
        au = {a: v - 1 for a, v in zip(self.au_ids, self.au_values) if v != 0}

        def f(x: float) -> Any:
            return None if math.isnan(x) else x

        return (
            tuple(sorted(au.items())),
            f(self.valence),
            f(self.arousal),
            self.emotion,
            self.posed,
            self.subject,
        )

    @property
    def where(self) -> str:
        """``file:sheet:row`` for messages."""
        return f"{self.file}:{self.sheet}:{self.row}"


class SheetRowCodec:
    """:class:`SheetRow` <-> a compact tuple, for rows kept on disk: what rows of one sheet share
    (its AU ids, file and sheet names) is stored once here, and decoded rows share it again."""

    def __init__(self) -> None:
        self._index: dict[tuple[tuple[int, ...], str, str], int] = {}
        self._shared: list[tuple[tuple[int, ...], str, str]] = []

    def encode(self, row: SheetRow) -> tuple[Any, ...]:
        """``row`` as a picklable tuple."""
        shared = (row.au_ids, row.file, row.sheet)
        i = self._index.get(shared)
        if i is None:
            i = self._index[shared] = len(self._shared)
            self._shared.append(shared)
        return (row.source, i, row.au_values, row.valence, row.arousal, row.emotion, row.posed,
                row.subject, row.row)  # fmt: skip

    def decode(self, t: tuple[Any, ...]) -> SheetRow:
        """The :class:`SheetRow` that :meth:`encode` gave ``t`` for."""
        au_ids, file, sheet = self._shared[t[1]]
        return SheetRow(t[0], au_ids, t[2], t[3], t[4], t[5], t[6], t[7], file, sheet, t[8])


class RowList(Protocol):
    """Where :func:`read_spreadsheets` puts the rows (a ``list``, or a list kept on disk)."""

    def append(self, row: SheetRow) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[SheetRow]: ...
    def __getitem__(self, i: int) -> SheetRow: ...


class SeenMap(Protocol):
    """URL -> position of its first row in the :class:`RowList` (a ``dict``, or one on disk)."""

    def get(self, url: str, default: Any = None) -> Any: ...
    def __setitem__(self, url: str, pos: int) -> None: ...


@dataclass
class RowIssue:
    """A skipped row (or sheet) and why.

    Attributes:
        file, sheet, row: location (``row`` 0 for a whole sheet).
        source: the URL cell as written ("" when missing).
        reason: one of :data:`SKIP_REASONS` or ``"bad_sheet"``.
        detail: human-readable explanation.
    """

    file: str
    sheet: str
    row: int
    source: str
    reason: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict (one line of ``skipped.jsonl``)."""
        return {
            "file": self.file,
            "sheet": self.sheet,
            "row": self.row,
            "source": self.source,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass
class SheetInfo:
    """What was found in one sheet."""

    file: str
    sheet: str
    header: bool
    url_column: int
    au_ids: tuple[int, ...]
    optional_columns: dict[str, int]
    ignored_columns: list[str]
    rows: int = 0
    blank_rows: int = 0
    bad_rows: int = 0
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict for the manifest."""
        return {
            "sheet": self.sheet,
            "header": self.header,
            "url_column": self.url_column,
            "au_ids": list(self.au_ids),
            "optional_columns": dict(self.optional_columns),
            "ignored_columns": list(self.ignored_columns),
            "rows": self.rows,
            "blank_rows": self.blank_rows,
            "bad_rows": self.bad_rows,
            "error": self.error,
        }


@dataclass
class SpreadsheetData:
    """Everything read from one or more spreadsheets.

    Attributes:
        rows: usable rows, duplicates removed, in file/sheet/row order (a ``list`` unless
            :func:`read_spreadsheets` was given another :class:`RowList`).
        issues: skipped rows and sheets (bad rows, duplicates, unreadable sheets).
        au_ids: union of the AU columns found, ascending.
        files: per input file: ``path``, ``sha256``, ``format``, ``sheets`` (list of dicts).
        total_rows: data rows seen (non-blank, header excluded) = ``len(rows)`` + skipped rows.
        blank_rows: fully empty rows (not data; counted for the record).
    """

    rows: RowList = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    au_ids: tuple[int, ...] = ()
    files: list[dict[str, Any]] = field(default_factory=list)
    total_rows: int = 0
    blank_rows: int = 0

    def skipped_counts(self) -> dict[str, int]:
        """Skipped rows per reason (``bad_sheet`` entries are not rows and are not counted)."""
        return dict(Counter(i.reason for i in self.issues if i.reason != "bad_sheet"))


# --------------------------------------------------------------------------------------------
# Raw tables


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _XLSX:
        return "xlsx"
    if suffix in _TEXT:
        return "text"
    raise SpreadsheetError(
        f"The spreadsheet '{path}' has an unsupported extension {path.suffix!r}. "
        f"Accepted: .xlsx, .xlsm, .csv, .tsv, .txt."
    )


def _sniff_delimiter(path: Path) -> str:
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            first = fh.readline()
    except UnicodeDecodeError as exc:
        raise SpreadsheetError(
            f"The spreadsheet '{path}' is not UTF-8 text ({exc}). Save it as UTF-8 CSV/TSV or xlsx."
        ) from exc
    if path.suffix.lower() == ".tsv":
        return "\t"
    if "\t" in first:
        return "\t"
    return ","


class _SheetError(Exception):
    """Reading one sheet failed part-way (reported, other sheets go on)."""


def iter_table(
    path: str | os.PathLike[str],
) -> Iterator[tuple[str, Iterator[tuple[int, list[Any]]]]]:
    """Stream the raw cells of every sheet.

    Args:
        path: an ``.xlsx``/``.xlsm``, ``.csv``, ``.tsv`` or ``.txt`` file.

    Returns:
        An iterator of ``(sheet_name, rows)``, where ``rows`` yields ``(row_number, cells)`` with
        1-based row numbers. Text files have one sheet named after the file. Raw rows of a sheet
        that fails part-way raise an internal error that :func:`read_spreadsheet` reports.

    Raises:
        SpreadsheetError: the file is missing, of an unknown type or cannot be opened.
    """
    p = check_path("spreadsheet", path, kind="file", error=SpreadsheetError)
    fmt = _file_format(p)
    if fmt == "xlsx":
        yield from _iter_xlsx(p)
    else:
        delimiter = _sniff_delimiter(p)
        yield p.name, _iter_text(p, delimiter)


def _iter_xlsx(p: Path) -> Iterator[tuple[str, Iterator[tuple[int, list[Any]]]]]:
    try:
        import openpyxl

        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken files
        raise SpreadsheetError(
            f"Could not open the spreadsheet '{p}' as xlsx: {type(exc).__name__}: {exc}. "
            f"Accepted: a valid .xlsx workbook, or .csv/.tsv text."
        ) from exc
    try:
        for name in wb.sheetnames:

            def rows(name: str = name) -> Iterator[tuple[int, list[Any]]]:
                try:
                    ws = wb[name]
                    for i, values in enumerate(ws.iter_rows(values_only=True), start=1):
                        yield i, list(values)
                except Exception as exc:
                    raise _SheetError(f"{type(exc).__name__}: {exc}") from exc

            yield name, rows()
    finally:
        wb.close()


def _iter_text(p: Path, delimiter: str) -> Iterator[tuple[int, list[Any]]]:
    try:
        with p.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            yield from enumerate(reader, start=1)
    except UnicodeDecodeError as exc:
        raise _SheetError(f"not UTF-8 text ({exc})") from exc
    except csv.Error as exc:
        raise _SheetError(f"CSV error: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Cells


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _norm_header(v: Any) -> str:
    return re.sub(r"[\s_\-]+", "", str(v)).lower() if v is not None else ""


def _is_http_url(v: Any) -> bool:
    """An ``http://`` or ``https://`` URL (the only schemes the downloader fetches)."""
    return isinstance(v, str) and v.strip().lower().startswith(("http://", "https://"))


def _looks_like_url(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    s = v.strip().lower()
    return "://" in s or s.startswith("www.")


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _parse_au(v: Any) -> int | None:
    """0/1/999/blank -> 0/1/-1/-1; anything else None."""
    if _blank(v):
        return UNKNOWN
    x = _number(v)
    if x is None:
        return None
    if x == 1:
        return 1
    if x == 0:
        return 0
    if x == _UNKNOWN_CODE:
        return UNKNOWN
    return None


def _parse_float(v: Any) -> float | None:
    if _blank(v):
        return math.nan
    x = _number(v)
    return None if x is None or math.isinf(x) else x


def _parse_emotion(v: Any) -> int | None:
    if _blank(v):
        return UNKNOWN
    if isinstance(v, str) and v.strip().lower() in EMOTIONS:
        return EMOTIONS.index(v.strip().lower())
    x = _number(v)
    if x is None or x != int(x):
        return None
    if x in (-1, _UNKNOWN_CODE):
        return UNKNOWN
    return int(x) if 0 <= x < len(EMOTIONS) else None


def _parse_posed(v: Any) -> int | None:
    if _blank(v):
        return UNKNOWN
    if isinstance(v, str) and v.strip().lower() in _POSED_WORDS:
        return _POSED_WORDS[v.strip().lower()]
    x = _number(v)
    if x in (0, 1):
        return int(x)  # type: ignore[arg-type]
    if x in (-1, _UNKNOWN_CODE):
        return UNKNOWN
    return None


def _subject(v: Any) -> str:
    if _blank(v):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


# --------------------------------------------------------------------------------------------
# Sheets


def _detect_header(cells: list[Any]) -> SheetInfo | None:
    """Column map from a header row, or None when the row is data."""
    if any(_looks_like_url(c) for c in cells):
        return None
    norm = [_norm_header(c) for c in cells]
    au: list[tuple[int, int]] = []
    for j, c in enumerate(cells):
        if isinstance(c, str):
            m = _AU_HEADER.match(c)
            if m:
                au.append((j, int(m.group(1))))
    url_col = -1
    for name in _URL_HEADERS:
        if name in norm:
            url_col = norm.index(name)
            break
    if url_col < 0 and not au:
        return None
    optional: dict[str, int] = {}
    for key, names in _OPTIONAL.items():
        for j, n in enumerate(norm):
            if n in names:
                optional[key] = j
                break
    used = {url_col, *(j for j, _ in au), *optional.values()}
    ignored = [str(c) for j, c in enumerate(cells) if j not in used and not _blank(c)]
    info = SheetInfo("", "", True, url_col, tuple(a for _, a in au), optional, ignored)
    info._au_cols = [j for j, _ in au]  # type: ignore[attr-defined]
    return info


def _positional(width: int) -> SheetInfo:
    n = max(0, min(width - 1, 60))
    info = SheetInfo("", "", False, 0, tuple(range(1, n + 1)), {}, [])
    info._au_cols = list(range(1, n + 1))  # type: ignore[attr-defined]
    if width > 61:
        info.ignored_columns = [f"column {j}" for j in range(61, width)]
    return info


def _trim(cells: list[Any]) -> list[Any]:
    end = len(cells)
    while end and _blank(cells[end - 1]):
        end -= 1
    return cells[:end]


def _read_sheet(
    file: str,
    sheet: str,
    rows: Iterator[tuple[int, list[Any]]],
    comma_text: bool,
    take: Callable[[SheetRow], None],
    issues: list[RowIssue],
) -> SheetInfo | None:
    """Parse one sheet: each usable row to ``take``, bad ones to ``issues``; None when the sheet
    holds no rows at all."""
    info: SheetInfo | None = None
    blank = 0
    lookahead: list[tuple[int, list[Any]]] = []
    it = iter(rows)
    error = ""
    try:
        # First non-blank row: header or data.
        for i, cells in it:
            if all(_blank(c) for c in cells):
                blank += 1
                continue
            info = _detect_header(cells)
            if info is None:
                lookahead.append((i, cells))
            break
        if info is None and not lookahead:
            return None
        if info is None:
            # Positional layout: the sheet's width is the most common row length.
            for i, cells in it:
                lookahead.append((i, cells))
                if len(lookahead) >= 200:
                    break
            widths = Counter(len(_trim(c)) for _, c in lookahead if not all(_blank(x) for x in c))
            info = _positional(widths.most_common(1)[0][0])
            width = widths.most_common(1)[0][0]
            # Read by position only when column 0 really holds URLs: a sheet whose header is not
            # recognised (``id,score``) or that holds no URLs at all is not read as garbage rows.
            if not any(_is_http_url(c[0]) for _, c in lookahead if c):
                info.file, info.sheet = file, sheet
                info.url_column = -1
                info.au_ids = ()
                info.error = _no_url_column_message(lookahead)
                issues.append(RowIssue(file, sheet, 0, "", "bad_sheet", info.error))
                info.blank_rows = blank
                return info
        else:
            width = len(_trim(cells))  # header width
        info.file, info.sheet = file, sheet
        if info.url_column < 0:
            info.error = (
                "no URL column: the header names AU columns but none of "
                f"{list(_URL_HEADERS)} (case-insensitive)"
            )
            issues.append(RowIssue(file, sheet, 0, "", "bad_sheet", info.error))
            return info

        def all_rows() -> Iterator[tuple[int, list[Any]]]:
            yield from lookahead
            yield from it

        for i, cells in all_rows():
            if all(_blank(c) for c in cells):
                blank += 1
                continue
            info.rows += 1
            row, problem, source = _parse_row(info, cells, width, comma_text)
            if row is None:
                info.bad_rows += 1
                issues.append(RowIssue(file, sheet, i, source, "bad_row", problem))
                continue
            row.file, row.sheet, row.row = file, sheet, i
            take(row)
    except _SheetError as exc:
        error = str(exc)
    if error:
        if info is None:
            info = SheetInfo(file, sheet, False, -1, (), {}, [])
        info.error = f"the sheet could not be read to the end: {error}"
        issues.append(RowIssue(file, sheet, 0, "", "bad_sheet", info.error))
    if info is not None:
        info.blank_rows = blank
    return info


def _no_url_column_message(lookahead: list[tuple[int, list[Any]]]) -> str:
    """Why a header-less-looking sheet cannot be read by position (no URLs in column 1)."""
    first_row, first = lookahead[0]
    cells = _trim(first)
    shown = ", ".join(repr(c if isinstance(c, (int, float)) else str(c)[:40]) for c in cells[:8])
    more = ", ..." if len(cells) > 8 else ""
    n = len(lookahead)
    return (
        f"no URL column: row {first_row} [{shown}{more}] is not a recognised header and the first "
        f"column of the first {n} row{'s' if n != 1 else ''} holds no http:// or https:// URL"
    )


def _parse_row(
    info: SheetInfo, cells: list[Any], width: int, comma_text: bool
) -> tuple[SheetRow | None, str, str]:
    cells = list(cells)
    u = info.url_column
    trimmed = _trim(cells)
    if comma_text and len(trimmed) > width >= 1 and u < len(trimmed):
        # An unquoted URL with commas spans several cells: re-join them.
        extra = len(trimmed) - width
        joined = ",".join(str(c) for c in trimmed[u : u + extra + 1])
        cells = trimmed[:u] + [joined] + trimmed[u + extra + 1 :]
    raw = cells[u] if u < len(cells) else None
    source = "" if _blank(raw) else str(raw).strip()
    if not source:
        return None, "no URL in the URL column", ""

    def cell(j: int) -> Any:
        return cells[j] if j < len(cells) else None

    values = bytearray()
    for a, j in zip(info.au_ids, info._au_cols):  # type: ignore[attr-defined]
        v = _parse_au(cell(j))
        if v is None:
            return (
                None,
                f"AU{a} value {cell(j)!r} is not a label; accepted: 1 (present), 0 (absent), "
                f"999 or empty (unknown)",
                source,
            )
        values.append(v + 1)
    row = SheetRow(source, info.au_ids, bytes(values))
    opt = info.optional_columns
    for key in ("valence", "arousal"):
        if key in opt:
            x = _parse_float(cell(opt[key]))
            if x is None:
                return None, f"{key} {cell(opt[key])!r} is not a number", source
            setattr(row, key, x)
    if "emotion" in opt:
        e = _parse_emotion(cell(opt["emotion"]))
        if e is None:
            return (
                None,
                f"emotion {cell(opt['emotion'])!r} is not an index 0..{len(EMOTIONS) - 1} or one "
                f"of {list(EMOTIONS)}",
                source,
            )
        row.emotion = e
    if "posed" in opt:
        p = _parse_posed(cell(opt["posed"]))
        if p is None:
            return None, f"posed {cell(opt['posed'])!r} is not 1/0/posed/spontaneous", source
        row.posed = p
    if "subject" in opt:
        row.subject = _subject(cell(opt["subject"]))
    return row, "", source


# --------------------------------------------------------------------------------------------
# Public API


def read_spreadsheet(path: str | os.PathLike[str]) -> SpreadsheetData:
    """Read one spreadsheet (every sheet); duplicates are resolved as in :func:`read_spreadsheets`.

    Args:
        path: an ``.xlsx``/``.xlsm``, ``.csv``, ``.tsv`` or ``.txt`` file.

    Returns:
        The rows, the skipped-row report and what was found per sheet.

    Raises:
        SpreadsheetError: the file is missing, unreadable, empty, or has no usable URL column.
    """
    return read_spreadsheets([path])


def _no_data_rows(p: Path, sheets: list[SheetInfo]) -> str:
    headers = [s.sheet for s in sheets if s.header]
    what = f"only a header row (sheet {', '.join(map(repr, headers))})" if headers else "no rows"
    return (
        f"The spreadsheet '{p}' has no data rows: {what}. Expected rows of an image URL followed "
        f"by AU labels (1/0/999) under the header."
    )


class _Dedup:
    """Keeps the first row of each URL (into ``rows``); a repeat becomes a ``duplicate`` or
    ``duplicate_conflict`` issue, and the AU union grows with the kept rows only."""

    def __init__(self, rows: RowList, seen: SeenMap) -> None:
        self.rows = rows
        self.seen = seen
        self.au_union: set[int] = set()
        self.issues: list[RowIssue] = []  # this file's repeats, reported after its bad rows
        self._au_seen: tuple[int, ...] | None = None

    def __call__(self, row: SheetRow) -> None:
        pos = self.seen.get(row.source)
        if pos is None:
            self.seen[row.source] = len(self.rows)
            self.rows.append(row)
            if row.au_ids is not self._au_seen:  # rows of a sheet share one tuple
                self.au_union.update(row.au_ids)
                self._au_seen = row.au_ids
            return
        first = self.rows[pos]
        if first.labels() == row.labels():
            reason, detail = "duplicate", f"same URL and labels as {first.where}"
        else:
            reason = "duplicate_conflict"
            detail = f"same URL as {first.where} but different labels; the first is kept"
        self.issues.append(RowIssue(row.file, row.sheet, row.row, row.source, reason, detail))


def _check_file(p: Path, sheets: list[SheetInfo]) -> None:
    """Raise when no sheet of ``p`` can be used (no row of it was taken then)."""
    if not sheets:
        raise SpreadsheetError(
            f"The spreadsheet '{p}' is empty (no non-blank rows in any sheet). Expected rows "
            f"of an image URL followed by AU labels (1/0/999)."
        )
    usable = [s for s in sheets if s.url_column >= 0 and (s.rows or not s.error)]
    if not usable:
        detail = "; ".join(f"sheet {s.sheet!r}: {s.error}" for s in sheets if s.error)
        raise SpreadsheetError(
            f"The spreadsheet '{p}' has no usable URL column ({detail}). Accepted: a header "
            f"row naming a URL column ({', '.join(_URL_HEADERS)}; case-insensitive) and AU "
            f"columns (AU1, AU 1, AU_1), or no header with http(s) URLs in the first column "
            f"and AU k in column k+1 (EmotioNet's manual annotations)."
        )
    if not any(s.rows for s in sheets):
        raise SpreadsheetError(_no_data_rows(p, sheets))


def read_spreadsheets(
    paths: Iterable[str | os.PathLike[str]],
    *,
    rows: RowList | None = None,
    seen: SeenMap | None = None,
) -> SpreadsheetData:
    """Read several spreadsheets into one table of rows.

    A URL seen before (in any file) is skipped as ``duplicate``, or ``duplicate_conflict`` when its
    labels differ from the first occurrence, which is the one kept. Rows are streamed: each goes
    to ``rows`` as it is read, and only ``rows`` and ``seen`` grow with the number of URLs.

    Args:
        paths: spreadsheet files.
        rows: an empty :class:`RowList` that receives the rows (default: a new ``list``).
        seen: an empty :class:`SeenMap` for the duplicate check (default: a new ``dict``).

    Returns:
        A :class:`SpreadsheetData` (``rows`` is ``rows``).

    Raises:
        SpreadsheetError: a file is missing, unreadable, empty, has a header but no data rows, or
            no sheet of it has a URL column.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise SpreadsheetError("No spreadsheet given. Pass at least one .xlsx/.csv/.tsv file.")
    data = SpreadsheetData(rows=[] if rows is None else rows)
    dedup = _Dedup(data.rows, {} if seen is None else seen)
    for p in paths:
        file_issues: list[RowIssue] = []
        dedup.issues = []
        sheets: list[SheetInfo] = []
        fmt = _file_format(p) if p.is_file() else ""
        comma = fmt == "text" and _sniff_delimiter(p) == ","
        for sheet, sheet_rows in iter_table(p):
            info = _read_sheet(p.name, sheet, sheet_rows, comma, dedup, file_issues)
            if info is not None:
                sheets.append(info)
        _check_file(p, sheets)
        data.issues.extend(file_issues)
        data.issues.extend(dedup.issues)
        data.total_rows += sum(s.rows for s in sheets)
        data.blank_rows += sum(s.blank_rows for s in sheets)
        data.files.append(
            {
                "path": str(p),
                "sha256": _sha256(p),
                "format": "xlsx" if fmt == "xlsx" else ("csv" if comma else "tsv"),
                "sheets": [s.to_json() for s in sheets],
            }
        )
    data.au_ids = tuple(sorted(dedup.au_union))
    return data
