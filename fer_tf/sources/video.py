"""Video files listed in a table, labelled per video or per frame range (``--source video``).

``--input`` is the table (``.csv``, comma-separated, one header row). Columns, by header name
(case-insensitive):

- ``path`` (required): the video (mp4, avi, mov, mkv, webm, ...), relative to the table's folder
  or absolute;
- ``start_frame``, ``end_frame``: the labelled range, 0-based and inclusive (empty: the whole
  video); several rows may label different ranges of one video;
- ``emotion``: an index into :data:`fer_tf.facs.EMOTIONS` or its name (``happiness``);
- ``valence``, ``arousal``: in [-1, 1]; ``posed``: 1/0 or ``posed``/``spontaneous``;
- ``subject``, ``sequence`` (default: the ``path`` as written, so frames group back into videos);
- AU columns ``AU12`` (1 present, 0 absent, -1/999/empty unknown) and ``AU12_intensity`` (0..5).

Empty cells are unknown. Each row's range is sampled with ``--frames`` (``fps:F`` at the video's
container rate, frame 0 of the range always included; ``every:N``; ``all``; ...; default
``fps:5``). A bad row (missing video, unreadable value, range outside the video) is reported with
the table's line number and skipped; a frame labelled by two rows is taken once (the first) and the
repeat reported. Frames are read by the build through OpenCV's FFmpeg backend.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fer_tf.facs import EMOTIONS
from fer_tf.preprocessing.video import VideoError, is_video, video_info
from fer_tf.sources._sequtil import frame_spec
from fer_tf.sources.base import (
    Issue,
    Report,
    RootError,
    Source,
    SourceItem,
    register_source,
)
from fer_tf.sources.frames import FRAMES_OPTION, select_frames

__all__ = ["VideoTable"]

_AU = re.compile(r"^au[\s_\-]*0*(\d+)$", re.IGNORECASE)
_AU_INT = re.compile(r"^au[\s_\-]*0*(\d+)[\s_\-]*(?:intensity|int)$", re.IGNORECASE)
_KNOWN = (
    "path",
    "start_frame",
    "end_frame",
    "emotion",
    "valence",
    "arousal",
    "posed",
    "subject",
    "sequence",
)
_POSED = {"1": 1, "0": 0, "posed": 1, "spontaneous": 0, "-1": -1}


class _RowError(ValueError):
    pass


@register_source
class VideoTable(Source):
    """Videos listed in a CSV table with labels per video or frame range."""

    name = "video"
    description = "video files (mp4, avi, mov, mkv, webm) listed in a CSV table with labels"
    emotion_names = EMOTIONS
    label_mapping = {
        "emotion": "index into fer_tf.facs.EMOTIONS or its name",
        "AU<n>": "1 present, 0 absent, -1/999/empty unknown",
        "AU<n>_intensity": "0..5, empty unknown",
    }
    protocol = "subject-independent folds by the 'subject' column (the build's --folds)"
    default_frames = "fps:5"
    sequences = True
    source_options = (FRAMES_OPTION,)

    def __init__(self, root: Any, **options: Any) -> None:
        super().__init__(root, **options)
        self.frame_spec = frame_spec(self, allow_fps=True)
        self.au_ids: tuple[int, ...] = ()  # from the table's header, set by check_root

    def check_root(self) -> None:
        """Raise :class:`RootError` unless ``--input`` is a CSV table with a ``path`` column.

        Sets :attr:`au_ids` to the AU numbers of the table's ``AU<n>``/``AU<n>_intensity`` columns.
        """
        if not self.root.is_file():
            from fer_tf.checks import describe_path

            raise RootError(
                f"The '--input' of source 'video' must be a CSV table of videos and labels. Got "
                f"'{self.root}', which is {describe_path(self.root)}."
            )
        header = self._header()
        if "path" not in header:
            raise RootError(
                f"The video table '{self.root}' must have a 'path' column; found: "
                f"{', '.join(header) or 'no header'}."
            )
        aus = {int(m.group(1)) for h in header for m in [_AU.match(h) or _AU_INT.match(h)] if m}
        self.au_ids = tuple(sorted(aus))

    def _header(self) -> list[str]:
        try:
            with self.root.open(newline="", encoding="utf-8-sig") as fh:
                first = next(csv.reader(fh), [])
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise RootError(f"Cannot read the video table '{self.root}': {exc}.") from exc
        return [h.strip().lower() for h in first]

    def items(self, report: Report) -> Iterator[SourceItem]:
        """Yield the sampled frames of every row's range, in table order."""
        if not self.au_ids:
            self.check_root()
        where = self.root.name
        seen: set[str] = set()
        infos: dict[Path, Any] = {}
        with self.root.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            for line, cells in enumerate(reader, 2):
                if not any(c.strip() for c in cells):
                    continue
                row = {
                    h: (cells[i].strip() if i < len(cells) else "") for i, h in enumerate(header)
                }
                try:
                    yield from self._row(row, infos, seen, line, report)
                except (_RowError, VideoError) as exc:
                    report(Issue(where, line, "bad_row", str(exc)))

    def _row(
        self, row: dict[str, str], infos: dict[Path, Any], seen: set[str], line: int, report: Report
    ) -> Iterator[SourceItem]:
        written = row.get("path", "")
        if not written:
            raise _RowError("no 'path'")
        video = Path(written) if Path(written).is_absolute() else self.root.parent / written
        if not is_video(video):
            raise _RowError(f"'{written}' is not a video file name (mp4, avi, mov, mkv, webm...)")
        if video not in infos:
            info = video_info(video, exact=False)
            if info.frames <= 0:
                info = video_info(video, exact=True)
            infos[video] = info
        info = infos[video]
        start = _int(row.get("start_frame", ""), 0, "start_frame")
        end = _int(row.get("end_frame", ""), info.frames - 1, "end_frame")
        if not 0 <= start <= end < info.frames:
            raise _RowError(
                f"frames {start}..{end} are not within '{written}' (frames 0..{info.frames - 1})"
            )
        labels = self._labels(row)
        sequence = row.get("sequence") or written
        for pos, _ in select_frames(self.frame_spec, end - start + 1, fps=info.fps):
            frame = start + pos
            source = f"{written}#frame={frame}"
            if source in seen:
                report(
                    Issue(
                        self.root.name,
                        line,
                        "duplicate",
                        f"frame {frame} of '{written}' is labelled by an earlier row; taken once",
                        failure=False,
                    )
                )
                continue
            seen.add(source)
            yield SourceItem(source=source, video=video, frame=frame, sequence=sequence, **labels)

    def _labels(self, row: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {"subject": row.get("subject", "")}
        emotion = row.get("emotion", "")
        if emotion:
            if emotion.lower() in EMOTIONS:
                out["emotion"] = EMOTIONS.index(emotion.lower())
            else:
                try:
                    out["emotion"] = _int(emotion, -1, "emotion")
                    if not -1 <= out["emotion"] < len(EMOTIONS):
                        raise _RowError
                except _RowError:
                    raise _RowError(
                        f"'emotion' must be an index 0..{len(EMOTIONS) - 1} (-1 unknown) or one "
                        f"of {list(EMOTIONS)}; got {emotion!r}"
                    ) from None
        for key in ("valence", "arousal"):
            value = _float(row.get(key, ""), key)
            if not (math.isnan(value) or -1 <= value <= 1):
                raise _RowError(f"'{key}' must be in [-1, 1]; got {row[key]!r}")
            out[key] = value
        posed = row.get("posed", "").lower()
        if posed:
            if posed not in _POSED:
                raise _RowError(f"'posed' must be 1, 0, posed or spontaneous; got {posed!r}")
            out["posed"] = _POSED[posed]
        au: dict[int, int] = {}
        intensity: dict[int, float] = {}
        for key, text in row.items():
            if key in _KNOWN:
                continue
            if m := _AU_INT.match(key):
                value = _float(text, key)
                if not (math.isnan(value) or 0 <= value <= 5):
                    raise _RowError(f"'{key}' must be an intensity 0..5; got {text!r}")
                intensity[int(m.group(1))] = value
            elif m := _AU.match(key):
                value = _int(text, -1, key)
                if value not in (1, 0, -1, 999):
                    raise _RowError(f"'{key}' must be 1, 0, -1 or 999 (unknown); got {text!r}")
                au[int(m.group(1))] = -1 if value == 999 else value
        out["au"], out["au_intensity"] = au, intensity
        return out


def _int(text: str, default: int, name: str) -> int:
    if not text:
        return default
    try:
        value = float(text)
        if value != int(value):
            raise ValueError
    except ValueError:
        raise _RowError(f"'{name}' must be an integer; got {text!r}") from None
    return int(value)


def _float(text: str, name: str) -> float:
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise _RowError(f"'{name}' must be a number; got {text!r}") from None
