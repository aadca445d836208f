"""FER2013 (Kaggle, ICML 2013 challenge) with optional FER+ relabelling.

``fer2013.csv``: columns ``emotion,pixels,Usage``; ``pixels`` is a 48x48 grey image as 2,304
space-separated integers 0..255; ``emotion`` 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad,
5 Surprise, 6 Neutral; ``Usage`` Training / PublicTest / PrivateTest -> train / val / test.

FER+ (``fer2013new.csv``, Microsoft): ``Usage,Image name,neutral,happiness,surprise,sadness,anger,
disgust,fear,contempt,unknown,NF``, ten crowd votes per row, rows aligned with ``fer2013.csv``.
With ``--ferplus`` the label is the class with the most votes (ties go to the earlier column) over
the 10 columns, the soft label the vote shares over the 8 classes; rows whose winner is
``unknown`` or ``NF`` (not a face) are skipped and counted.

Items carry the image as PNG bytes (lossless) and ``source`` ``fer2013.csv#row=N`` with N the
0-based data row (FER+ calls that image ``fer{N:07d}.png``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fer_tf.checks import describe_path
from fer_tf.sources._common import count_rows, header_index, read_csv_rows, to_int
from fer_tf.sources.base import (
    Issue,
    Report,
    RootError,
    Source,
    SourceError,
    SourceItem,
    SourceOption,
    register_source,
)

__all__ = ["Fer2013Source", "FER2013_NAMES", "FERPLUS_NAMES", "encode_png"]

#: FER2013's classes in its own order (index = the ``emotion`` code).
FER2013_NAMES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
#: FER+'s 8 classes in its column order.
FERPLUS_NAMES = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)
_FERPLUS_COLUMNS = ("Usage", "Image name", *FERPLUS_NAMES, "unknown", "NF")
_COLUMNS = ("emotion", "pixels", "Usage")
_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
_SIDE = 48


def encode_png(gray: np.ndarray) -> bytes:
    """Lossless PNG bytes of a uint8 grey image.

    Raises:
        ValueError: OpenCV could not encode it.
    """
    import cv2

    ok, buf = cv2.imencode(".png", gray)
    if not ok:
        raise ValueError("OpenCV could not encode the image as PNG")
    return buf.tobytes()


def _pixels(text: str) -> tuple[np.ndarray | None, str]:
    """The 48x48 image of a pixels field, or None and what is wrong with it."""
    with warnings.catch_warnings():
        # NumPy's text parser is ~4x faster than split + int; it warns (or raises) at a bad token,
        # and the slow path below then names it.
        warnings.simplefilter("error")
        try:
            values = np.fromstring(text, dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            values = None
    if values is None or values.size != _SIDE * _SIDE:
        parts = text.split()
        bad = next((p for p in parts if not p.isdigit()), None)
        if bad is not None:
            return None, f"pixel value {bad!r} is not a non-negative integer"
        return None, f"{len(parts)} pixel values; expected {_SIDE * _SIDE} (48x48)"
    if values.min() < 0 or values.max() > 255:
        return None, "pixel values outside 0..255"
    return values.astype(np.uint8).reshape(_SIDE, _SIDE), ""


@register_source
class Fer2013Source(Source):
    """FER2013 from ``fer2013.csv`` (``--input`` the folder holding it, or the file itself)."""

    name = "fer2013"
    description = "FER2013 fer2013.csv (48x48 grey, 7 emotions; --ferplus fer2013new.csv for FER+)"
    emotion_names = FER2013_NAMES
    label_mapping = {str(i): n for i, n in enumerate(FER2013_NAMES)}
    protocol = "Usage: Training -> train, PublicTest -> val, PrivateTest -> test"
    source_options = (
        SourceOption(
            "ferplus",
            "FER+ fer2013new.csv: majority labels over 8 classes and vote shares (fer2013)",
            Path,
        ),
    )

    def __init__(self, root: Any, **options: Any) -> None:
        super().__init__(root, **options)
        if self.options["ferplus"]:
            # FER+ relabels the same images with its own 8 classes.
            self.emotion_names = FERPLUS_NAMES
            self.label_mapping = {n: n for n in FERPLUS_NAMES} | {
                "unknown": "skipped (ferplus_unknown)",
                "NF": "skipped (ferplus_nf)",
            }

    @property
    def csv_path(self) -> Path:
        """The ``fer2013.csv`` read."""
        return self.root if self.root.is_file() else self.root / "fer2013.csv"

    def check_root(self) -> None:
        """Check for ``fer2013.csv`` (and the FER+ file, with its row count).

        Raises:
            RootError: no ``fer2013.csv``.
            SourceError: ``fer2013.csv`` lacks a column; the FER+ file is missing, lacks a
                column or has another row count.
        """
        if not self.root.is_file():
            super().check_root()
            self.expect("fer2013.csv", "file")
        elif self.root.suffix.lower() != ".csv":
            raise RootError(
                f"The '--input' of source 'fer2013' must be the folder holding fer2013.csv or "
                f"that file. Got '{self.root}' (unpack the Kaggle archive first)."
            )
        header = next(read_csv_rows(self.csv_path), (0, []))[1]
        header_index(header, _COLUMNS, self.csv_path)
        ferplus = self.options["ferplus"]
        if ferplus:
            fp = Path(ferplus)
            if not fp.is_file():
                raise SourceError(
                    f"The 'ferplus' option of source 'fer2013' must be FER+'s fer2013new.csv. "
                    f"Got '{fp}', which is {describe_path(fp)}."
                )
            rows = list(read_csv_rows(fp))
            header_index(rows[0][1] if rows else [], _FERPLUS_COLUMNS, fp)
            n_fer, n_plus = count_rows(self.csv_path), len(rows) - 1
            if n_fer != n_plus:
                raise SourceError(
                    f"FER+ '{fp}' has {n_plus} data rows but '{self.csv_path}' has {n_fer}; the "
                    f"two files must be row-aligned (the FER+ file of this FER2013 release)."
                )

    def items(self, report: Report) -> Iterator[SourceItem]:
        """Yield one item per usable row (see the module docstring)."""
        rows = read_csv_rows(self.csv_path)
        header = next(rows, None)
        if header is None:
            raise SourceError(f"'{self.csv_path}' is empty; expected 'emotion,pixels,Usage'.")
        cols = header_index(header[1], _COLUMNS, self.csv_path)
        plus = self._ferplus_rows()
        for index, (line, cells) in enumerate(rows):
            votes = next(plus) if plus is not None else None
            item = self._item(index, line, cells, cols, votes, report)
            if item is not None:
                yield item

    def _ferplus_rows(self) -> Iterator[tuple[int, list[str]]] | None:
        if not self.options["ferplus"]:
            return None
        rows = read_csv_rows(Path(self.options["ferplus"]))
        next(rows, None)  # header, checked by check_root
        return rows

    def _item(
        self,
        index: int,
        line: int,
        cells: list[str],
        cols: dict[str, int],
        votes: tuple[int, list[str]] | None,
        report: Report,
    ) -> SourceItem | None:
        name = self.csv_path.name

        def fail(reason: str, detail: str) -> None:
            report(Issue(name, line, reason, detail))

        get = lambda c: cells[cols[c]].strip() if cols[c] < len(cells) else ""  # noqa: E731
        usage = get("Usage")
        if usage not in _USAGE:
            fail("bad_usage", f"Usage {usage!r} is not one of {list(_USAGE)}")
            return None
        gray, problem = _pixels(get("pixels"))
        if gray is None:
            fail("bad_pixels", problem)
            return None
        item = SourceItem(f"{name}#row={index}", data=encode_png(gray), partition=_USAGE[usage])
        if votes is None:
            code = to_int(get("emotion"))
            if code is None or not 0 <= code < len(FER2013_NAMES):
                fail("bad_label", f"emotion {get('emotion')!r} is not a code 0..6")
                return None
            item.emotion = code
            return item
        return self._with_votes(item, votes, report)

    def _with_votes(
        self, item: SourceItem, votes: tuple[int, list[str]], report: Report
    ) -> SourceItem | None:
        line, cells = votes
        name = Path(self.options["ferplus"]).name
        counts = [to_int(c) for c in cells[2:12]]
        if len(counts) != 10 or any(c is None or c < 0 for c in counts):
            report(Issue(name, line, "bad_label", f"FER+ votes {cells[2:12]} are not 10 counts"))
            return None
        if sum(counts) == 0:  # type: ignore[arg-type]
            report(Issue(name, line, "ferplus_no_votes", "no votes at all", failure=False))
            return None
        winner = counts.index(max(counts))  # type: ignore[type-var]
        if winner >= len(FERPLUS_NAMES):
            reason = "ferplus_unknown" if winner == 8 else "ferplus_nf"
            detail = f"most votes for {_FERPLUS_COLUMNS[2 + winner]!r} ({counts[winner]} of 10)"
            report(Issue(name, line, reason, detail, failure=False))
            return None
        shares = counts[: len(FERPLUS_NAMES)]
        total = sum(shares)  # type: ignore[arg-type]
        item.emotion = winner
        item.emotion_dist = tuple(c / total if total else math.nan for c in shares)  # type: ignore[operator]
        return item
