"""CK+ (Extended Cohn-Kanade, Lucey et al. 2010): posed sequences from neutral to apex.

Layout as distributed (the unpacked zips side by side under one root)::

    cohn-kanade-images/S005/001/S005_001_00000001.png ... S005_001_00000011.png
    Emotion/S005/001/S005_001_00000011_emotion.txt    one float, "   3.0000000e+00"
    FACS/S005/001/S005_001_00000011_facs.txt          lines "AU intensity" as floats

Emotion codes (the file's float): 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy,
6 sadness, 7 surprise; ``label/emotion`` keeps that numbering (``emotion_names`` below). Only 327
of the 593 sequences have an emotion file (the others have an empty ``Emotion`` folder or none).
FACS intensity: 1..5 (A..E), 0 = intensity not coded (the AU is present, its intensity unknown).

Labels per frame. The label files name the frame they describe (the apex, the last frame):

- the apex frame: emotion; every AU of :attr:`CKPlus.au_ids` present (listed in the FACS file) or
  absent (not listed: CK+ codes the apex exhaustively); intensity as coded, NaN where coded 0,
  0 for absent AUs;
- the first frame with ``--neutral-first``: emotion neutral (0), every AU absent, intensity 0;
- every other selected frame: the sequence's emotion, AUs unknown (they are still rising).

Subject ``S005``, sequence ``S005/001``, frame the number in the file name. Sequences without an
emotion file are skipped by default (``--unlabelled skip``; reported as ``no_emotion_label``): the
327 labelled ones are the emotion protocol. ``--unlabelled keep`` keeps them with emotion unknown
(for AU work, all 593 have FACS codes).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fer_tf.sources._sequtil import (
    files,
    frame_spec,
    last_number,
    numbered_frames,
    read_lines,
    rel,
    subdirs,
)
from fer_tf.sources.base import Issue, Report, Source, SourceItem, SourceOption, register_source
from fer_tf.sources.frames import FRAMES_OPTION, NEUTRAL_FIRST_OPTION, select_frames

__all__ = ["CKPlus", "CKPLUS_EMOTIONS", "CKPLUS_AUS"]

#: CK+ emotion codes 0..7, in that order.
CKPLUS_EMOTIONS = (
    "neutral",
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happiness",
    "sadness",
    "surprise",
)
#: The 30 AUs CK+ codes (Lucey et al. 2010, Table 1).
# fmt: off
CKPLUS_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 20, 21, 23,
                               24, 25, 26, 27, 28, 29, 31, 34, 38, 39, 43)
# fmt: on

IMAGES = "cohn-kanade-images"


@register_source
class CKPlus(Source):
    """CK+ sequences (``cohn-kanade-images/``, ``Emotion/``, ``FACS/``)."""

    name = "ckplus"
    description = "CK+ (Extended Cohn-Kanade): 593 posed sequences neutral->apex, emotion + FACS"
    emotion_names = CKPLUS_EMOTIONS
    au_ids = CKPLUS_AUS
    label_mapping = {
        **{str(i): n for i, n in enumerate(CKPLUS_EMOTIONS)},
        "FACS intensity": "1..5 = A..E, 0 = present with intensity not coded (NaN)",
    }
    protocol = (
        "subject-independent 10-fold cross-validation over the 327 emotion-labelled sequences "
        "(118 subjects); the last 3 frames (apex) of each, optionally the first as neutral"
    )
    default_folds = 10
    default_frames = "last:3"
    sequences = True
    source_options = (
        FRAMES_OPTION,
        NEUTRAL_FIRST_OPTION,
        SourceOption(
            "unlabelled",
            "what to do with CK+ sequences without an emotion file (skip: the "
            "emotion protocol; keep: emotion unknown, for AU work)",
            str,
            "skip",
            ("skip", "keep"),
        ),
    )

    def __init__(self, root: Any, **options: Any) -> None:
        super().__init__(root, **options)
        self.frame_spec = frame_spec(self)

    def check_root(self) -> None:
        """Raise :class:`RootError` unless the root holds ``cohn-kanade-images/``.

        ``Emotion/`` and ``FACS/`` are looked for by :meth:`items` (a missing one is reported).
        """
        super().check_root()
        self.expect(IMAGES)

    def items(self, report: Report) -> Iterator[SourceItem]:
        """Yield the selected frames of every sequence, sorted by subject, sequence, frame."""
        for folder in ("Emotion", "FACS"):
            if not (self.root / folder).is_dir():
                report(
                    Issue(
                        folder,
                        0,
                        "missing_labels_folder",
                        f"no '{folder}/' under the root; its labels are unknown for every sequence",
                        failure=False,
                    )
                )
        for subject in subdirs(self.root / IMAGES):
            for seq in subdirs(subject):
                yield from self._sequence(subject.name, seq, report)

    def _sequence(self, subject: str, seq: Path, report: Report) -> Iterator[SourceItem]:
        sequence = f"{subject}/{seq.name}"
        frames = numbered_frames(self.root, seq, (".png",), report, "PNG frames")
        if not frames:
            return
        emotion, emotion_frame = self._emotion(sequence, report)
        aus, facs_frame, complete = self._facs(sequence, report)
        if emotion < 0 and self.options["unlabelled"] == "skip":
            report(
                Issue(
                    rel(self.root, seq),
                    0,
                    "no_emotion_label",
                    f"sequence {sequence} has no "
                    "emotion file (--unlabelled keep takes it with emotion unknown)",
                    failure=False,
                )
            )
            return
        apex = facs_frame if facs_frame is not None else emotion_frame
        numbers = [n for n, _ in frames]
        if apex is not None and apex not in numbers:
            report(
                Issue(
                    f"FACS/{sequence}",
                    0,
                    "label_frame_missing",
                    f"the labels name frame {apex}, which has no image",
                )
            )
        picks = select_frames(
            self.frame_spec, len(frames), neutral_first=bool(self.options["neutral_first"])
        )
        for pos, neutral in picks:
            number, path = frames[pos]
            item = SourceItem(
                source=rel(self.root, path),
                path=path,
                emotion=emotion,
                posed=1,
                subject=subject,
                sequence=sequence,
                frame=number,
            )
            if neutral:
                item.emotion = 0
                item.au = {a: 0 for a in self.au_ids}
                item.au_intensity = {a: 0.0 for a in self.au_ids}
            elif number == apex and aus is not None:
                # A bad FACS line may have named any AU: unlisted AUs are then unknown, not absent.
                absent, zero = (0, 0.0) if complete else (-1, math.nan)
                item.au = {a: 1 if a in aus else absent for a in self.au_ids}
                item.au_intensity = {a: aus.get(a, zero) for a in self.au_ids}
            yield item

    def _label_file(self, folder: str, sequence: str, suffix: str) -> Path | None:
        found = files(self.root / folder / sequence, (".txt",))
        found = [p for p in found if p.name.endswith(suffix)]
        return found[-1] if found else None

    def _emotion(self, sequence: str, report: Report) -> tuple[int, int | None]:
        path = self._label_file("Emotion", sequence, "_emotion.txt")
        if path is None:
            return -1, None
        lines = read_lines(path, self.root, report)
        values = [(i, s.strip()) for i, s in enumerate(lines or [], 1) if s.strip()]
        where = rel(self.root, path)
        if lines is None:
            return -1, None
        try:
            if len(values) != 1:
                raise ValueError(f"expected one number, found {len(values)} non-blank lines")
            code = float(values[0][1])
            if code != int(code) or not 0 <= code <= 7:
                raise ValueError(f"{values[0][1]!r} is not an emotion code 0..7")
        except ValueError as exc:
            line = values[0][0] if values else 1
            report(Issue(where, line, "bad_label_line", f"emotion: {exc}"))
            return -1, None
        return int(code), _label_frame(path.name, "_emotion.txt")

    def _facs(
        self, sequence: str, report: Report
    ) -> tuple[dict[int, float] | None, int | None, bool]:
        path = self._label_file("FACS", sequence, "_facs.txt")
        if path is None:
            return None, None, False
        lines = read_lines(path, self.root, report)
        if lines is None:
            return None, None, False
        complete = True
        where = rel(self.root, path)
        aus: dict[int, float] = {}
        for i, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                au_text, level_text = text.split()
                au, level = float(au_text), float(level_text)
                if au != int(au) or au < 1 or level != int(level) or not 0 <= level <= 5:
                    raise ValueError
            except ValueError:
                complete = False
                report(
                    Issue(
                        where,
                        i,
                        "bad_label_line",
                        f"expected 'AU intensity' (AU >= 1, intensity 0..5); got {text!r}",
                    )
                )
                continue
            if int(au) not in self.au_ids:
                report(
                    Issue(
                        where,
                        i,
                        "au_not_labelled",
                        f"AU {int(au)} is not among the CK+ AUs kept in the records",
                        failure=False,
                    )
                )
                continue
            aus[int(au)] = float(level) if level > 0 else math.nan
        return aus, _label_frame(path.name, "_facs.txt"), complete


def _label_frame(name: str, suffix: str) -> int | None:
    return last_number(name[: -len(suffix)])
