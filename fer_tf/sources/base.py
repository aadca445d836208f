"""The contract every dataset source fulfils: :class:`SourceItem`, :class:`Source`, the registry.

A source reads one dataset exactly as its owners distribute it and yields :class:`SourceItem`s:
where an image's bytes come from, its labels in record-schema terms, and where it sits (subject,
sequence, frame, the dataset's own partition). Everything after that -- decoding, face crop, resize,
encoding, split, folds, shards, manifest, resume, the error log -- is the one shared build
(:mod:`fer_tf.build`). A source never decodes images and never writes records.

Unreadable files and label lines are not exceptions: a source calls ``report(...)`` (an
:class:`Issue`) and goes on. A wrong root is an exception, raised by :meth:`Source.check_root`
before any work, saying what was expected and what was found.

This module imports no TensorFlow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from fer_tf.checks import did_you_mean

__all__ = [
    "SourceItem",
    "SourceOption",
    "Issue",
    "Report",
    "Source",
    "SourceError",
    "RootError",
    "register_source",
    "get_source",
    "list_sources",
    "describe_root",
    "PARTITIONS",
]

#: The dataset partitions a record can belong to (``--split`` names of the records).
PARTITIONS = ("train", "val", "test")


class SourceError(ValueError):
    """A dataset that cannot be read at all (wrong root, missing label file, bad option)."""


class RootError(SourceError):
    """The root folder does not hold the dataset's layout."""


@dataclass
class SourceItem:
    """One image (a still, a sequence frame or a sampled video frame) and its labels.

    Exactly one of ``path``, ``data`` and ``video`` says where the bytes come from.

    Attributes:
        source: stable identifier, relative to the dataset root (``"S005/001/S005_001_00000011.png"``,
            ``"fer2013.csv#row=17"``, ``"LeftVideoSN001_comp.avi#frame=120"``); the record id is its
            SHA-1, so it must not depend on where the root is mounted.
        path: a local image file.
        data: encoded image bytes (e.g. a PNG made from FER2013's pixel string).
        video: a local video file, with ``frame`` the 0-based frame index to take from it.
        au: AU number -> 1 present / 0 absent / -1 unknown (missing AUs are unknown).
        au_intensity: AU number -> intensity 0..5 (NaN unknown).
        emotion: class index into the source's ``emotion_names`` (-1 unknown).
        emotion_dist: soft label over ``emotion_names`` (e.g. FER+ vote shares), empty if none.
        valence, arousal: in [-1, 1], NaN unknown.
        posed: 1 posed, 0 spontaneous, -1 unknown.
        subject: subject id ("" unknown).
        sequence: sequence or video id ("" for stills).
        frame: frame index in the sequence (-1 for stills).
        partition: the dataset's own partition (one of :data:`PARTITIONS`), None if it has none.
        box: a face box ``(x, y, w, h)`` in pixels given by the dataset (AffectNet), or None.
    """

    source: str
    path: Path | None = None
    data: bytes | None = None
    video: Path | None = None
    au: Mapping[int, int] = field(default_factory=dict)
    au_intensity: Mapping[int, float] = field(default_factory=dict)
    emotion: int = -1
    emotion_dist: Sequence[float] = ()
    valence: float = math.nan
    arousal: float = math.nan
    posed: int = -1
    subject: str = ""
    sequence: str = ""
    frame: int = -1
    partition: str | None = None
    box: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        given = sum(x is not None for x in (self.path, self.data, self.video))
        if given != 1:
            raise ValueError(
                f"A SourceItem needs exactly one of 'path', 'data' and 'video'. Got {given} for "
                f"{self.source!r}."
            )
        if self.video is not None and self.frame < 0:
            raise ValueError(f"A video SourceItem needs a frame >= 0. Got {self.frame} instead.")
        if self.partition is not None and self.partition not in PARTITIONS:
            raise ValueError(
                f"The 'partition' of a SourceItem must be one of {list(PARTITIONS)} or None. "
                f"Got {self.partition!r} instead."
            )


@dataclass(frozen=True)
class Issue:
    """An unreadable file or label line, or an item skipped on purpose.

    Attributes:
        path: the file, relative to the root where possible.
        line: 1-based line (or row) number, 0 when not about a line.
        reason: a short category (``"bad_label_file"``, ``"unreadable"``, ``"ferplus_nf"``...).
        detail: what was wrong, for a person.
        failure: True for failures (``errors.jsonl``), False for deliberate skips
            (``skipped.jsonl``).
    """

    path: str
    line: int
    reason: str
    detail: str
    failure: bool = True

    def to_json(self) -> dict[str, Any]:
        """The ``errors.jsonl``/``skipped.jsonl`` entry."""
        return {
            "file": self.path,
            "row": self.line,
            "source": self.path,
            "reason": self.reason,
            "detail": self.detail,
        }


#: What a source calls for every :class:`Issue`.
Report = Callable[[Issue], None]


def describe_root(root: Path, limit: int = 12) -> str:
    """``"a/, b/, readme.txt"``: what a folder holds, for wrong-root messages.

    Args:
        root: a folder.
        limit: the most entries named.

    Returns:
        The entries, folders with a trailing slash, sorted; ``"nothing"`` for an empty folder.
    """
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        return f"nothing readable ({exc.strerror})"
    names = [e.name + ("/" if e.is_dir() else "") for e in entries]
    if not names:
        return "nothing (an empty folder)"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


@dataclass(frozen=True)
class SourceOption:
    """An option a source takes (``--ferplus FILE``, ``--camera left``).

    The build CLI adds one ``--<name>`` flag (dashes for underscores) per option of every
    registered source, and passes the chosen source the options it declares, so a source's options
    are declared once, here, next to the code that reads them.

    Attributes:
        name: Python name (``"ferplus"``; the flag is ``--ferplus``).
        help: one line for ``--help``.
        type: ``str``, ``int``, ``float``, ``bool`` (a flag) or ``Path``.
        default: the default value.
        choices: accepted values, or None for any.
    """

    name: str
    help: str
    type: type = str
    default: Any = None
    choices: tuple[Any, ...] | None = None


class Source:
    """Base class of a dataset source. Subclasses set the class attributes and implement
    :meth:`check_root` and :meth:`items`.

    Attributes:
        name: registry name (``--source NAME``).
        description: one line for ``--source list``.
        emotion_names: the class names ``emotion`` indexes (empty when the source has none).
        au_ids: the AUs the source labels (empty when none).
        label_mapping: the dataset's own numbering -> our names, for the manifest and docs.
        protocol: the standard protocol in words (manifest ``protocol``).
        default_folds: subject-independent folds written by default (0: none).
        subject_folds: the dataset's standard subject -> fold (0-based) assignment for
            ``default_folds`` folds (e.g. the 3-fold BP4D and DISFA splits of the AU literature);
            empty when the build assigns folds itself. Subjects not listed get the build's own
            assignment.
        default_frames: the frame selection (:mod:`fer_tf.sources.frames`) a sequence source
            uses when its ``frames`` option is None.
        sequences: True for sequence/video sources (they take a frame selection).
        source_options: the options this source reads from ``self.options``.

    The build reads ``emotion_names``, ``au_ids``, ``label_mapping`` and ``protocol`` from the
    instance after :meth:`check_root`, so a source whose classes or AU columns depend on the data
    (``folder``: its class folders; ``csv``: its columns) sets them there, per instance.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    emotion_names: ClassVar[tuple[str, ...]] = ()
    au_ids: ClassVar[tuple[int, ...]] = ()
    label_mapping: ClassVar[Mapping[str, str]] = {}
    protocol: ClassVar[str] = ""
    default_folds: ClassVar[int] = 0
    subject_folds: ClassVar[Mapping[str, int]] = {}
    default_frames: ClassVar[str] = ""
    sequences: ClassVar[bool] = False
    source_options: ClassVar[tuple[SourceOption, ...]] = ()

    def __init__(self, root: str | os.PathLike[str], **options: Any) -> None:
        self.root = Path(root)
        known = {o.name: o for o in self.source_options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise SourceError(
                f"Source '{self.name}' takes the options {sorted(known) or 'none'}. Got "
                f"{unknown[0]!r} instead." + did_you_mean(unknown[0], known)
            )
        self.options = {o.name: options.get(o.name, o.default) for o in self.source_options}
        for o in self.source_options:
            if o.choices is not None and self.options[o.name] not in o.choices:
                raise SourceError(
                    f"The '{o.name}' option of source '{self.name}' must be one of "
                    f"{list(o.choices)}. Got {self.options[o.name]!r} instead."
                )

    def check_root(self) -> None:
        """Raise :class:`RootError` unless :attr:`root` holds the dataset's layout.

        Raises:
            RootError: naming what was expected and what was found.
        """
        if not self.root.is_dir():
            from fer_tf.checks import describe_path

            raise RootError(
                f"The '--input' of source '{self.name}' must be the dataset's root folder. Got "
                f"'{self.root}', which is {describe_path(self.root)}."
            )

    def expect(self, relative: str, kind: str = "dir") -> Path:
        """Return ``root/relative`` or raise :class:`RootError` saying what the root holds.

        Args:
            relative: the expected entry (``"cohn-kanade-images"``).
            kind: ``"dir"`` or ``"file"``.

        Returns:
            The path.

        Raises:
            RootError: ``no 'cohn-kanade-images/' under 'X'; found: a/, b/, readme.txt``.
        """
        p = self.root / relative
        ok = p.is_dir() if kind == "dir" else p.is_file()
        if not ok:
            shown = relative + ("/" if kind == "dir" else "")
            raise RootError(
                f"Not a '{self.name}' dataset root: no '{shown}' under '{self.root}'; found: "
                f"{describe_root(self.root)}."
            )
        return p

    def items(self, report: Report) -> Iterator[SourceItem]:
        """Yield the dataset's items in a deterministic order.

        Args:
            report: called once per :class:`Issue` (unreadable file, bad label line, deliberate
                skip); the source carries on.

        Yields:
            :class:`SourceItem`.
        """
        raise NotImplementedError


_SOURCES: dict[str, type[Source]] = {}


def register_source(cls: type[Source]) -> type[Source]:
    """Class decorator adding a :class:`Source` subclass to the registry under ``cls.name``."""
    if not cls.name or cls.name in _SOURCES:
        raise ValueError(f"A source needs a unique, non-empty name. Got {cls.name!r}.")
    _SOURCES[cls.name] = cls
    return cls


def list_sources() -> dict[str, str]:
    """Registered source names -> one-line descriptions (importing every source module)."""
    _import_all()
    return {name: _SOURCES[name].description for name in sorted(_SOURCES)}


def get_source(name: str) -> type[Source]:
    """The :class:`Source` class registered as ``name``.

    Raises:
        SourceError: unknown name (with the registered names and a did-you-mean).
    """
    _import_all()
    if name not in _SOURCES:
        names = sorted(_SOURCES)
        raise SourceError(
            f"The 'source' parameter must be one of {names}. Got {name!r} instead."
            + did_you_mean(name, names)
        )
    return _SOURCES[name]


def _import_all() -> None:
    # Every module of fer_tf.sources registers its sources on import; they are light (no
    # TensorFlow), so the registry imports them all rather than keeping a second list of names.
    import importlib
    import pkgutil

    import fer_tf.sources as package

    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")
