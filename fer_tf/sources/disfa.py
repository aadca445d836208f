"""DISFA (Mavadati et al. 2013): spontaneous AU intensities of 27 subjects, one video each.

Layout as distributed::

    ActionUnit_Labels/SN001/SN001_au1.txt ... SN001_au26.txt     lines "frame,intensity"
    Videos_LeftCamera/LeftVideoSN001_comp.avi
    Videos_RightCamera/RightVideoSN001_comp.avi                 (--camera right)

Label lines are ``frame,intensity``: a 1-based frame number and an intensity 0..5, for AUs 1 2 4 5
6 9 12 15 17 20 25 26 (4,845 frames per subject). ``label/au_intensity`` keeps the intensity;
``label/au`` is presence, intensity >= ``--presence-threshold`` (2 by default, the AU literature's
convention; 1 counts trace A-level activity too). Items are video frames: ``video=`` the subject's
video, ``frame=`` label frame - 1 (0-based). Label frames past the video's end (its container
frame count) and frames missing from some AU files are reported; a frame lacking one AU's label
keeps that AU unknown. Subject and sequence ``SN001``, ``meta/frame`` the 0-based video frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fer_tf.checks import check_number
from fer_tf.facs import AU_SETS
from fer_tf.preprocessing.video import VideoError, video_info
from fer_tf.sources._sequtil import frame_spec, read_lines, rel, subdirs
from fer_tf.sources.base import (
    Issue,
    Report,
    Source,
    SourceError,
    SourceItem,
    SourceOption,
    register_source,
)
from fer_tf.sources.frames import FRAMES_OPTION, select_frames

__all__ = ["DISFA", "DISFA_FOLDS"]

LABELS = "ActionUnit_Labels"
_FOLD_SUBJECTS = (
    # The 3-fold subject split of the AU detection literature (JAA-Net, ME-GraphAU, ...).
    ("SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"),
    ("SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"),
    ("SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"),
)
#: Subject -> fold (0-based) of the standard DISFA 3-fold protocol.
DISFA_FOLDS: dict[str, int] = {s: k for k, part in enumerate(_FOLD_SUBJECTS) for s in part}


@register_source
class DISFA(Source):
    """DISFA videos and per-frame AU intensities."""

    name = "disfa"
    description = "DISFA: 27 subjects' spontaneous videos, 12 AU intensities (0-5) per frame"
    au_ids = AU_SETS["disfa12"]
    label_mapping = {
        "intensity": "0..5 as coded (label/au_intensity)",
        "presence": "intensity >= presence_threshold (default 2) -> 1, else 0",
        "frame": "label frame (1-based) - 1 = video frame (0-based)",
    }
    protocol = (
        "subject-independent 3-fold cross-validation with the literature's fixed subject split "
        "(JAA-Net / ME-GraphAU folds); F1 on AU presence (intensity >= 2), ICC/MAE on intensity"
    )
    default_folds = 3
    subject_folds = DISFA_FOLDS
    default_frames = "all"
    sequences = True
    source_options = (
        FRAMES_OPTION,
        SourceOption("camera", "DISFA camera: left or right", str, "left", ("left", "right")),
        SourceOption(
            "presence_threshold",
            "intensity at which an AU counts as present",
            float,
            2.0,
        ),
    )

    def __init__(self, root: Any, **options: Any) -> None:
        super().__init__(root, **options)
        self.frame_spec = frame_spec(self)
        check_number(
            "presence_threshold", self.options["presence_threshold"], gt=0, max=5, error=SourceError
        )

    @property
    def video_folder(self) -> str:
        """``Videos_LeftCamera`` or ``Videos_RightCamera``."""
        return f"Videos_{self.options['camera'].capitalize()}Camera"

    def check_root(self) -> None:
        """Raise :class:`RootError` unless the root holds the labels and the camera's videos."""
        super().check_root()
        self.expect(LABELS)
        self.expect(self.video_folder)

    def items(self, report: Report) -> Iterator[SourceItem]:
        """Yield the selected labelled frames of every subject, sorted by subject and frame."""
        for folder in subdirs(self.root / LABELS):
            yield from self._subject(folder, report)

    def _subject(self, folder: Path, report: Report) -> Iterator[SourceItem]:
        subject = folder.name
        cam = self.options["camera"].capitalize()
        video = self.root / self.video_folder / f"{cam}Video{subject}_comp.avi"
        if not video.is_file():
            report(
                Issue(
                    rel(self.root, video),
                    0,
                    "missing_video",
                    f"no video for subject {subject}; its labels are not used",
                )
            )
            return
        try:
            info = video_info(video, exact=False)
            length = info.frames or video_info(video, exact=True).frames
        except VideoError as exc:
            report(Issue(rel(self.root, video), 0, "unreadable_video", str(exc)))
            return
        labels = self._labels(folder, report)
        frames = sorted(set().union(*(set(v) for v in labels.values()))) if labels else []
        self._report_gaps(folder, labels, frames, report)
        past = [f for f in frames if f > length]
        if past:
            report(
                Issue(
                    rel(self.root, video),
                    0,
                    "past_video_end",
                    f"{len(past)} labelled "
                    f"frames ({past[0]}..{past[-1]}) are past the video's {length} frames",
                )
            )
            frames = [f for f in frames if f <= length]
        threshold = float(self.options["presence_threshold"])
        source_video = rel(self.root, video)
        for pos, _ in select_frames(self.frame_spec, len(frames)):
            number = frames[pos]
            levels = {au: labels.get(au, {}).get(number, math.nan) for au in self.au_ids}
            yield SourceItem(
                source=f"{source_video}#frame={number - 1}",
                video=video,
                frame=number - 1,
                au={au: -1 if math.isnan(v) else int(v >= threshold) for au, v in levels.items()},
                au_intensity=levels,
                posed=0,
                subject=subject,
                sequence=subject,
            )

    def _labels(self, folder: Path, report: Report) -> dict[int, dict[int, float]]:
        # AU -> label frame (1-based) -> intensity, from SN001_au<k>.txt.
        out: dict[int, dict[int, float]] = {}
        for au in self.au_ids:
            path = folder / f"{folder.name}_au{au}.txt"
            if not path.is_file():
                report(
                    Issue(
                        rel(self.root, path),
                        0,
                        "missing_label_file",
                        f"no AU{au} labels for {folder.name}: AU{au} unknown",
                    )
                )
                continue
            lines = read_lines(path, self.root, report)
            if lines is None:
                continue
            values: dict[int, float] = {}
            for i, text in enumerate(lines, 1):
                if not text.strip():
                    continue
                try:
                    f_text, v_text = text.split(",")
                    number, level = int(f_text), float(v_text)
                    if number < 1 or not 0 <= level <= 5:
                        raise ValueError
                except ValueError:
                    report(
                        Issue(
                            rel(self.root, path),
                            i,
                            "bad_label_line",
                            "expected 'frame,intensity' (frame >= 1, intensity 0..5); "
                            f"got {text!r}",
                        )
                    )
                    continue
                values[number] = level
            out[au] = values
        return out

    def _report_gaps(
        self, folder: Path, labels: dict[int, dict[int, float]], frames: list[int], report: Report
    ) -> None:
        for au, values in sorted(labels.items()):
            missing = [f for f in frames if f not in values]
            if missing:
                path = rel(self.root, folder / f"{folder.name}_au{au}.txt")
                report(
                    Issue(
                        path,
                        0,
                        "missing_labels",
                        f"{len(missing)} frames ({missing[0]}.."
                        f"{missing[-1]}) have no AU{au} label: AU{au} unknown there",
                    )
                )
