"""AffectNet (Mollahosseini, Hasani, Mahoor 2017), manually annotated part.

As distributed: ``Manually_Annotated_file_lists/training.csv`` and ``validation.csv`` (also
accepted directly under the root) with the columns ``subDirectory_filePath, face_x, face_y,
face_width, face_height, facial_landmarks, expression, valence, arousal``, and the images under
``Manually_Annotated_Images/<subDirectory>/<file>`` (``--image-dir``; the tarball unpacks it as
``Manually_Annotated/Manually_Annotated_Images/``, also found by default).

``expression`` 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt;
8 None, 9 Uncertain, 10 No-Face are not classes: ``--non-classes skip`` (default) reports them as
counted skips, ``keep`` writes them with emotion -1 (their valence/arousal kept). Valence and
arousal lie in [-1, 1]; -2 means not annotated (NaN). The face box becomes ``item.box``.

Protocol: the validation set is the test set (the official test set is not released);
``training.csv`` rows carry no partition, so the build carves ``val`` out of them with
``--val-fraction`` (by image id: AffectNet has no subject ids).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from fer_tf.sources._common import header_index, read_csv_rows, root_error, to_float, to_int
from fer_tf.sources.base import (
    Issue,
    Report,
    Source,
    SourceItem,
    SourceOption,
    register_source,
)

__all__ = ["AffectNetSource", "AFFECTNET_NAMES", "AFFECTNET_NON_CLASSES"]

#: AffectNet's classes in its own order (index = the ``expression`` code).
AFFECTNET_NAMES = (
    "neutral",
    "happiness",
    "sadness",
    "surprise",
    "fear",
    "disgust",
    "anger",
    "contempt",
)
#: Codes that are not classes.
AFFECTNET_NON_CLASSES = {8: "none", 9: "uncertain", 10: "no_face"}
_COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "expression",
    "valence",
    "arousal",
)
_LISTS = ("Manually_Annotated_file_lists", "")
_DEFAULT_IMAGES = "Manually_Annotated_Images"
_FILES = (("training.csv", None), ("validation.csv", "test"))


@register_source
class AffectNetSource(Source):
    """AffectNet's manually annotated lists and images."""

    name = "affectnet"
    description = (
        "AffectNet: training.csv/validation.csv + Manually_Annotated_Images (8 classes, VA)"
    )
    emotion_names = AFFECTNET_NAMES
    label_mapping = {str(i): n for i, n in enumerate(AFFECTNET_NAMES)} | {
        str(k): f"not a class ({v}): skipped, or emotion -1 with --non-classes keep"
        for k, v in AFFECTNET_NON_CLASSES.items()
    }
    protocol = (
        "validation.csv -> test; training.csv -> train, with val carved by --val-fraction (by id)"
    )
    source_options = (
        SourceOption(
            "image_dir",
            "AffectNet images folder, relative to --input or absolute "
            "(default Manually_Annotated_Images) (affectnet)",
            Path,
        ),
        SourceOption(
            "non_classes",
            "AffectNet expressions 8-10 (None, Uncertain, No-Face): skip or keep as emotion -1 "
            "(affectnet)",
            str,
            "skip",
            ("skip", "keep"),
        ),
    )

    def _lists(self) -> Path:
        for sub in _LISTS:
            if (self.root / sub / "training.csv").is_file():
                return self.root / sub
        raise root_error(
            self.name,
            "'Manually_Annotated_file_lists/training.csv' (nor 'training.csv')",
            self.root,
        )

    def _images(self) -> Path:
        given = self.options["image_dir"]
        if given:
            return self.root / Path(given)
        nested = self.root / "Manually_Annotated" / _DEFAULT_IMAGES
        return nested if nested.is_dir() else self.root / _DEFAULT_IMAGES

    def check_root(self) -> None:
        """Check for ``training.csv`` (and its columns) and the images folder.

        Raises:
            RootError: no ``training.csv`` or no images folder.
            SourceError: a list lacks one of the expected columns.
        """
        super().check_root()
        lists = self._lists()
        for name, _ in _FILES:
            if (lists / name).is_file():
                header = next(read_csv_rows(lists / name), (0, []))[1]
                header_index(header, _COLUMNS, lists / name)
        images = self._images()
        if not images.is_dir():
            shown = images.relative_to(self.root) if images.is_relative_to(self.root) else images
            raise root_error(self.name, f"'{shown}/' (the images; see --image-dir)", self.root)

    def items(self, report: Report) -> Iterator[SourceItem]:
        """training.csv rows then validation.csv rows, in file order.

        ``source`` is ``subDirectory_filePath`` as the lists write it (the dataset's own image id,
        the same however the images folder was unpacked).
        """
        lists, images = self._lists(), self._images()
        for name, partition in _FILES:
            path = lists / name
            file = path.relative_to(self.root).as_posix()
            if not path.is_file():
                if partition is not None:  # validation.csv may be absent; training.csv is not
                    report(Issue(file, 0, "missing_file", "no validation.csv: no test split"))
                continue
            rows = read_csv_rows(path)
            header = next(rows, None)
            if header is None:
                report(Issue(file, 0, "bad_label_file", "empty file"))
                continue
            cols = header_index(header[1], _COLUMNS, path)
            for line, cells in rows:
                item = self._item(file, line, cells, cols, partition, report)
                if item is not None:
                    item.path = images / item.path  # type: ignore[operator]
                    yield item

    def _item(
        self,
        file: str,
        line: int,
        cells: list[str],
        cols: dict[str, int],
        partition: str | None,
        report: Report,
    ) -> SourceItem | None:
        def get(c: str) -> str:
            return cells[cols[c]].strip() if cols[c] < len(cells) else ""

        rel = get("subDirectory_filePath").replace("\\", "/")
        box = [to_int(get(c)) for c in ("face_x", "face_y", "face_width", "face_height")]
        code = to_int(get("expression"))
        va = [to_float(get(c)) for c in ("valence", "arousal")]
        problem = ""
        if not rel:
            problem = "no subDirectory_filePath"
        elif code is None or not 0 <= code <= 10:
            problem = f"expression {get('expression')!r} is not a code 0..10"
        elif any(b is None for b in box):
            problem = "the face box (face_x, face_y, face_width, face_height) is not integers"
        elif any(v is None or not (-1 <= v <= 1 or v == -2) for v in va):
            problem = "valence/arousal must be in [-1, 1] or -2 (not annotated)"
        if problem:
            report(Issue(file, line, "bad_label", problem))
            return None
        kind = AFFECTNET_NON_CLASSES.get(code)  # type: ignore[arg-type]
        if kind is not None:
            if self.options["non_classes"] == "skip":
                detail = f"expression {code} ({kind}) is not a class"
                report(Issue(file, line, f"affectnet_{kind}", detail, failure=False))
                return None
            code = -1
        valence, arousal = (math.nan if v == -2 else v for v in va)
        return SourceItem(
            rel,
            path=Path(rel),
            emotion=code,  # type: ignore[arg-type]
            valence=valence,  # type: ignore[arg-type]
            arousal=arousal,  # type: ignore[arg-type]
            partition=partition,
            box=tuple(box),  # type: ignore[arg-type]
        )
