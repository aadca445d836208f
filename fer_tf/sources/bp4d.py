"""BP4D-Spontaneous (Zhang et al. 2014) in the FERA 2015 layout: AU occurrence per frame.

Layout::

    AUCoding/AU_OCC/F001_T1.csv      header: <frame column>, AU numbers...; rows: frame, 0/1/9
    <images>/F001/T1/2440.jpg        one folder per subject and task; names with or without
                                     zero padding (2440.jpg, 02440.jpg, 0001.jpg)

``<images>`` is the ``--image-dir`` option (relative to the root or absolute); by default the
first of :data:`IMAGE_FOLDERS` under the root that exists, else the root itself (the FERA 2015
archive unpacks to ``BP4D/BP4D-training/<subject>/<task>/`` next to ``BP4D/AUCoding/``; the
Binghamton release has ``Sequences(2D+3D)/``).
Values: 1 present, 0 absent, 9 not coded (-> unknown, -1); other values are bad lines, reported with
path and line. ``label/au`` holds the 12 AUs of the FERA/AU literature (:attr:`BP4D.au_ids`,
``facs.AU_SETS["bp4d12"]``); other columns are not kept. A labelled frame without an image is
reported (``missing_image``). Subject ``F001``, sequence ``F001/T1``, frame the CSV's frame number.
Tasks T1..T8 elicit emotions but are not emotion labels: ``label/emotion`` stays unknown. All
spontaneous (``posed`` 0).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fer_tf.facs import AU_SETS
from fer_tf.sources._sequtil import files, frame_spec, last_number, rel
from fer_tf.sources.base import (
    Issue,
    Report,
    RootError,
    Source,
    SourceItem,
    SourceOption,
    register_source,
)
from fer_tf.sources.frames import FRAMES_OPTION, select_frames

__all__ = ["BP4D", "BP4D_FOLDS", "IMAGE_FOLDERS"]

LABELS = "AUCoding/AU_OCC"
#: Where the frame images are looked for under the root, in order, without ``--image-dir``.
IMAGE_FOLDERS = ("BP4D-training", "Sequences", "Sequences(2D+3D)", "BP4D-Spontaneous", "images")
_FOLD_SUBJECTS = (
    # The 3-fold subject split of the AU detection literature (JAA-Net, ME-GraphAU, ...).
    (
        "F001",
        "M007",
        "F018",
        "F008",
        "F002",
        "M004",
        "F010",
        "F009",
        "M012",
        "M001",
        "F016",
        "M014",
        "F023",
        "M008",
    ),
    (
        "M011",
        "F003",
        "M010",
        "M002",
        "F005",
        "F022",
        "M018",
        "M017",
        "F013",
        "M016",
        "F020",
        "F011",
        "M013",
        "M005",
    ),
    (
        "F007",
        "F015",
        "F006",
        "F019",
        "M006",
        "M009",
        "F012",
        "M003",
        "F004",
        "F021",
        "F017",
        "M015",
        "F014",
    ),
)
#: Subject -> fold (0-based) of the standard BP4D 3-fold protocol.
BP4D_FOLDS: dict[str, int] = {s: k for k, part in enumerate(_FOLD_SUBJECTS) for s in part}
_VALUES = {1: 1, 0: 0, 9: -1}


@register_source
class BP4D(Source):
    """BP4D-Spontaneous AU occurrence (FERA 2015 ``AUCoding/AU_OCC``) and frame images."""

    name = "bp4d"
    description = "BP4D-Spontaneous (FERA 2015 layout): 41 subjects x 8 tasks, 12 AU occurrences"
    au_ids = AU_SETS["bp4d12"]
    label_mapping = {"1": "present", "0": "absent", "9": "unknown (-1)"}
    protocol = (
        "subject-independent 3-fold cross-validation with the literature's fixed subject split "
        "(JAA-Net / ME-GraphAU folds); F1 per AU"
    )
    default_folds = 3
    subject_folds = BP4D_FOLDS
    default_frames = "all"
    sequences = True
    source_options = (
        FRAMES_OPTION,
        SourceOption(
            "image_dir",
            "BP4D frame images folder (<image_dir>/<subject>/<task>/<frame>.jpg), relative to "
            "--input or absolute (default: BP4D-training/, Sequences/, Sequences(2D+3D)/, "
            "BP4D-Spontaneous/ or images/ under --input)",
            Path,
            None,
        ),
    )

    def __init__(self, root: Any, **options: Any) -> None:
        super().__init__(root, **options)
        self.frame_spec = frame_spec(self)

    @property
    def images_root(self) -> Path:
        """The frame images root: ``--image-dir`` or the first of :data:`IMAGE_FOLDERS` found."""
        if self.options["image_dir"]:
            return self.root / Path(self.options["image_dir"])
        for name in IMAGE_FOLDERS:
            if (self.root / name).is_dir():
                return self.root / name
        return self.root

    def check_root(self) -> None:
        """Raise :class:`RootError` unless the root holds ``AUCoding/AU_OCC/`` and the images."""
        super().check_root()
        self.expect(LABELS)
        if not self.images_root.is_dir():
            raise RootError(
                f"The 'image_dir' option of source 'bp4d' must be a folder of "
                f"<subject>/<task>/<frame>.jpg. Got '{self.images_root}', which is not a folder."
            )

    def items(self, report: Report) -> Iterator[SourceItem]:
        """Yield the selected labelled frames of every subject and task, sorted."""
        for path in files(self.root / LABELS, (".csv",)):
            subject, _, task = path.stem.partition("_")
            if not subject or not task:
                report(
                    Issue(
                        rel(self.root, path),
                        0,
                        "bad_file_name",
                        "expected '<subject>_<task>.csv' such as 'F001_T1.csv'",
                    )
                )
                continue
            yield from self._task(path, subject, task, report)

    def _task(self, path: Path, subject: str, task: str, report: Report) -> Iterator[SourceItem]:
        rows = self._rows(path, report)
        if rows is None:
            return
        folder = self.images_root / subject / task
        images: dict[int, Path] = {}
        for p in files(folder, (".jpg", ".jpeg", ".png")):
            number = last_number(p.name)
            if number is not None:
                images.setdefault(number, p)  # 0001.jpg and 1.jpg: the first by name
        where = rel(self.root, path)
        usable = []
        for line, number, au in rows:
            if number in images:
                usable.append((number, au))
            else:
                report(
                    Issue(
                        where,
                        line,
                        "missing_image",
                        f"frame {number} has no image in '{rel(self.root, folder)}'",
                    )
                )
        for pos, _ in select_frames(self.frame_spec, len(usable)):
            number, au = usable[pos]
            image = images[number]
            yield SourceItem(
                source=rel(self.root, image)
                if image.is_relative_to(self.root)
                else f"{subject}/{task}/{image.name}",
                path=image,
                au=au,
                posed=0,
                subject=subject,
                sequence=f"{subject}/{task}",
                frame=number,
            )

    def _rows(self, path: Path, report: Report) -> list[tuple[int, int, dict[int, int]]] | None:
        # (line, frame, AU labels) per usable row, sorted by frame.
        where = rel(self.root, path)
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                table = list(csv.reader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            report(Issue(where, 0, "bad_label_file", f"cannot read the label file: {exc}"))
            return None
        if not table:
            report(Issue(where, 0, "bad_label_file", "empty label file"))
            return None
        try:
            header = [int(float(c)) for c in table[0][1:]]
        except ValueError:
            report(
                Issue(
                    where,
                    1,
                    "bad_label_file",
                    "the header row must hold AU numbers after "
                    f"the frame column; got {table[0][:6]!r}",
                )
            )
            return None
        columns = {au: i + 1 for i, au in enumerate(header) if au in self.au_ids}
        lacking = [au for au in self.au_ids if au not in columns]
        if lacking:
            report(
                Issue(
                    where,
                    1,
                    "missing_au_columns",
                    f"no columns for AUs {lacking}: unknown",
                    failure=False,
                )
            )
        rows = []
        for line, cells in enumerate(table[1:], 2):
            if not any(c.strip() for c in cells):
                continue
            try:
                number = int(float(cells[0]))
                au = {a: _value(cells[i]) for a, i in columns.items()}
            except (ValueError, KeyError, IndexError):
                report(
                    Issue(
                        where,
                        line,
                        "bad_label_line",
                        "expected a frame number and AU "
                        f"values 0, 1 or 9; got {','.join(cells[:6])!r}...",
                    )
                )
                continue
            rows.append((line, number, au))
        rows.sort(key=lambda r: r[1])
        return rows


def _value(text: str) -> int:
    # "1", "0", "9" (also written "1.0"): present, absent, not coded; anything else is bad.
    value = float(text)
    if value not in _VALUES:
        raise ValueError(text)
    return _VALUES[int(value)]
