"""MUG Facial Expression Database (Aifanti et al. 2010): posed sequences neutral -> apex -> neutral.

Layout as distributed (the "subjects3" image sequences)::

    subjects3/<subject>/<emotion>/<take>/img_0001.jpg ... img_0150.jpg

Emotion folders ``anger disgust fear happiness neutral sadness surprise`` map onto
:data:`fer_tf.facs.EMOTIONS` (``label/emotion`` is its index; folder ``happiness`` ->
``happiness``, ...). Other folder names are reported (``unknown_emotion_folder``) and skipped.

Unlike CK+, a MUG take returns to neutral after the apex, so the apex is near the middle: the
default selection is ``middle-third``, and ``later-half`` (Athanasiadis 2022's choice for CK+)
takes the apex *and* the offset here. ``last:K`` takes the final, nearly neutral frames. Every
selected frame gets its take's emotion; ``--neutral-first`` labels the first frame neutral.
Subject ``<subject>``, sequence ``<subject>/<emotion>/<take>``, frame the number in the file name.
MUG has no AU labels; every face is posed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fer_tf.facs import EMOTIONS
from fer_tf.sources._sequtil import frame_spec, numbered_frames, rel, subdirs
from fer_tf.sources.base import Issue, Report, Source, SourceItem, register_source
from fer_tf.sources.frames import FRAMES_OPTION, NEUTRAL_FIRST_OPTION, select_frames

__all__ = ["MUG", "MUG_FOLDERS"]

#: MUG's emotion folder names, each an index into :data:`fer_tf.facs.EMOTIONS`.
MUG_FOLDERS: dict[str, int] = {name: EMOTIONS.index(name) for name in EMOTIONS}

IMAGES = "subjects3"


@register_source
class MUG(Source):
    """MUG image sequences (``subjects3/<subject>/<emotion>/<take>/img_NNNN.jpg``)."""

    name = "mug"
    description = "MUG: posed sequences neutral->apex->neutral of 7 emotions (86 subjects)"
    emotion_names = EMOTIONS
    label_mapping = {folder: EMOTIONS[i] for folder, i in sorted(MUG_FOLDERS.items())}
    protocol = (
        "subject-independent 10-fold cross-validation; the frames around the apex (the middle "
        "third of each take), optionally the first frame as neutral"
    )
    default_folds = 10
    default_frames = "middle-third"
    sequences = True
    source_options = (FRAMES_OPTION, NEUTRAL_FIRST_OPTION)

    def __init__(self, root: Any, **options: Any) -> None:
        super().__init__(root, **options)
        self.frame_spec = frame_spec(self)

    def check_root(self) -> None:
        """Raise :class:`RootError` unless the root holds ``subjects3/``."""
        super().check_root()
        self.expect(IMAGES)

    def items(self, report: Report) -> Iterator[SourceItem]:
        """Yield the selected frames of every take, sorted by subject, emotion, take, frame."""
        for subject in subdirs(self.root / IMAGES):
            for folder in subdirs(subject):
                emotion = MUG_FOLDERS.get(folder.name.lower())
                if emotion is None:
                    report(
                        Issue(
                            rel(self.root, folder),
                            0,
                            "unknown_emotion_folder",
                            f"'{folder.name}' is not one of {sorted(MUG_FOLDERS)}",
                            failure=False,
                        )
                    )
                    continue
                for take in subdirs(folder):
                    yield from self._take(subject.name, folder.name, emotion, take, report)

    def _take(
        self, subject: str, folder: str, emotion: int, take: Path, report: Report
    ) -> Iterator[SourceItem]:
        frames = numbered_frames(self.root, take, (".jpg", ".jpeg", ".png"), report, "frames")
        if not frames:
            return
        sequence = f"{subject}/{folder}/{take.name}"
        picks = select_frames(
            self.frame_spec, len(frames), neutral_first=bool(self.options["neutral_first"])
        )
        for pos, neutral in picks:
            number, path = frames[pos]
            yield SourceItem(
                source=rel(self.root, path),
                path=path,
                emotion=0 if neutral else emotion,
                posed=1,
                subject=subject,
                sequence=sequence,
                frame=number,
            )
