"""FACS catalogue: action units, named AU sets, emotion prototypes and class names.

Pure Python (no TensorFlow), so the CLIs can validate ``--aus`` before anything heavy loads.

EmotioNet's manual-annotation spreadsheets hold 60 AU columns (column k = AU k), so the
catalogue names every number from 1 to 60. Numbers that FACS leaves unassigned are kept, flagged
``defined=False``, so a spreadsheet column never goes unexplained.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ActionUnit",
    "AU_CATALOGUE",
    "AU_SETS",
    "EMOTIONS",
    "BASIC_EMOTIONS",
    "EMOTION_PROTOTYPES",
    "POSED_EMOTIONS",
    "POSED_CLASSES_2",
    "POSED_CLASSES_12",
    "au_name",
    "parse_aus",
    "posed_class_index",
]


@dataclass(frozen=True)
class ActionUnit:
    """One FACS action unit.

    Attributes:
        number: the AU number (1..60 here).
        name: the FACS name, e.g. ``"Inner Brow Raiser"``.
        region: ``"upper"``, ``"lower"``, ``"eyes"``, ``"head"``, ``"misc"`` or ``"unassigned"``.
        defined: False for numbers FACS does not assign (kept because EmotioNet has the column).
    """

    number: int
    name: str
    region: str
    defined: bool = True

    @property
    def code(self) -> str:
        """``"AU12"`` style code."""
        return f"AU{self.number}"


_NAMES: dict[int, tuple[str, str]] = {
    1: ("Inner Brow Raiser", "upper"),
    2: ("Outer Brow Raiser", "upper"),
    4: ("Brow Lowerer", "upper"),
    5: ("Upper Lid Raiser", "upper"),
    6: ("Cheek Raiser", "upper"),
    7: ("Lid Tightener", "upper"),
    8: ("Lips Toward Each Other", "lower"),
    9: ("Nose Wrinkler", "lower"),
    10: ("Upper Lip Raiser", "lower"),
    11: ("Nasolabial Deepener", "lower"),
    12: ("Lip Corner Puller", "lower"),
    13: ("Sharp Lip Puller", "lower"),
    14: ("Dimpler", "lower"),
    15: ("Lip Corner Depressor", "lower"),
    16: ("Lower Lip Depressor", "lower"),
    17: ("Chin Raiser", "lower"),
    18: ("Lip Pucker", "lower"),
    19: ("Tongue Show", "lower"),
    20: ("Lip Stretcher", "lower"),
    21: ("Neck Tightener", "misc"),
    22: ("Lip Funneler", "lower"),
    23: ("Lip Tightener", "lower"),
    24: ("Lip Pressor", "lower"),
    25: ("Lips Part", "lower"),
    26: ("Jaw Drop", "lower"),
    27: ("Mouth Stretch", "lower"),
    28: ("Lip Suck", "lower"),
    29: ("Jaw Thrust", "lower"),
    30: ("Jaw Sideways", "lower"),
    31: ("Jaw Clencher", "lower"),
    32: ("Lip Bite", "lower"),
    33: ("Cheek Blow", "lower"),
    34: ("Cheek Puff", "lower"),
    35: ("Cheek Suck", "lower"),
    36: ("Tongue Bulge", "lower"),
    37: ("Lip Wipe", "lower"),
    38: ("Nostril Dilator", "lower"),
    39: ("Nostril Compressor", "lower"),
    40: ("Sniff", "misc"),
    41: ("Lid Droop", "eyes"),
    42: ("Slit", "eyes"),
    43: ("Eyes Closed", "eyes"),
    44: ("Squint", "eyes"),
    45: ("Blink", "eyes"),
    46: ("Wink", "eyes"),
    50: ("Speech", "misc"),
    51: ("Head Turn Left", "head"),
    52: ("Head Turn Right", "head"),
    53: ("Head Up", "head"),
    54: ("Head Down", "head"),
    55: ("Head Tilt Left", "head"),
    56: ("Head Tilt Right", "head"),
    57: ("Head Forward", "head"),
    58: ("Head Back", "head"),
}

AU_CATALOGUE: dict[int, ActionUnit] = {
    n: (
        ActionUnit(n, *_NAMES[n])
        if n in _NAMES
        else ActionUnit(n, "Unassigned (EmotioNet column only)", "unassigned", defined=False)
    )
    for n in range(1, 61)
}

_EMOTIONET11 = (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26)
AU_SETS: dict[str, tuple[int, ...]] = {
    # Bartissol 2017 §4.3: the 11 AUs EmotioNet annotates for (almost) every image.
    "emotionet11": _EMOTIONET11,
    "emotionet12": (*_EMOTIONET11, 43),
    # EmotioNet challenge 2020 adds these 11.
    "emotionet23": tuple(sorted((*_EMOTIONET11, 43, 10, 15, 18, 24, 28, 51, 52, 53, 54, 55, 56))),
    "disfa12": (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26),
    "bp4d12": (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24),
    # The AUs SynthFACS renders.
    "synthfacs15": (1, 2, 4, 5, 6, 7, 9, 12, 15, 17, 20, 23, 25, 26, 43),
    "all60": tuple(range(1, 61)),
}

# Bartissol 2017 Table 2, in that order. Index = ``label/emotion`` value in records.
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "sadness",
    "surprise",
    "fear",
    "anger",
    "disgust",
)
BASIC_EMOTIONS: tuple[str, ...] = EMOTIONS[1:]

# Bartissol 2017 Table 2: AU -> prototype intensity in [0, 1]. "5B" (surprise) is a slight AU5, so it
# gets a lower intensity than the other AUs of the prototype.
EMOTION_PROTOTYPES: dict[str, dict[int, float]] = {
    "neutral": {},
    "happiness": {6: 1.0, 12: 1.0},
    "sadness": {1: 1.0, 4: 1.0, 14: 1.0},
    "surprise": {1: 1.0, 2: 1.0, 5: 0.4, 26: 1.0},
    "fear": {1: 1.0, 2: 1.0, 4: 1.0, 5: 1.0, 7: 1.0, 20: 1.0, 26: 1.0},
    "anger": {4: 1.0, 5: 1.0, 7: 1.0, 23: 1.0},
    "disgust": {9: 1.0, 15: 1.0, 16: 1.0},
}

# Christensen 2018 (NVIE): the six emotions of the 12-class task, in the order of its confusion matrices.
POSED_EMOTIONS: tuple[str, ...] = ("happiness", "disgust", "fear", "surprise", "anger", "sadness")
POSED_CLASSES_2: tuple[str, ...] = ("spontaneous", "posed")
POSED_CLASSES_12: tuple[str, ...] = tuple(
    f"{kind}_{emotion}" for kind in POSED_CLASSES_2 for emotion in POSED_EMOTIONS
)


def au_name(number: int) -> str:
    """Return the FACS name of an AU number.

    Args:
        number: AU number in 1..60.

    Returns:
        The name, e.g. ``"Lip Corner Puller"`` for 12.

    Raises:
        ValueError: if ``number`` is not in the catalogue.
    """
    if number not in AU_CATALOGUE:
        raise ValueError(f"The AU number must be an integer in 1..60. Got {number!r} instead.")
    return AU_CATALOGUE[number].name


_TOKEN = re.compile(r"^\s*(?:au)?[\s_-]*0*(\d+)\s*$", re.IGNORECASE)


def _parse_token(token: str, spec: object) -> int:
    match = _TOKEN.match(token)
    if not match:
        raise ValueError(
            f"The 'aus' parameter must be an AU set name ({', '.join(AU_SETS)}) or a list of AU "
            f"numbers like '1,2,4' or 'AU1,AU12'. Got {token!r} in {spec!r} instead."
        )
    number = int(match.group(1))
    if number not in AU_CATALOGUE:
        raise ValueError(
            f"The 'aus' parameter must name AUs in 1..60 (EmotioNet's columns). "
            f"Got AU{number} in {spec!r} instead."
        )
    return number


def parse_aus(spec: str | int | Iterable[int | str]) -> tuple[int, ...]:
    """Parse an AU selection into a tuple of AU numbers.

    Accepts a set name (``"emotionet11"``), a comma-separated string (``"1,2,4"``,
    ``"AU1, AU12"``, ``"au01"``), a single int, or an iterable of ints/strings. Order is kept
    as given (sets keep their defined order); duplicates are an error.

    Args:
        spec: the selection.

    Returns:
        AU numbers, e.g. ``(1, 2, 4)``.

    Raises:
        ValueError: for an unknown set name, a malformed token, an AU outside 1..60, an empty
            selection, or a duplicate AU.
    """
    if isinstance(spec, bool):
        raise ValueError(f"The 'aus' parameter must be an AU set name or AU numbers. Got {spec!r}.")
    if isinstance(spec, int):
        tokens: list[str] = [str(spec)]
    elif isinstance(spec, str):
        key = spec.strip().lower()
        if key in AU_SETS:
            return AU_SETS[key]
        if re.fullmatch(r"[a-z_]*[a-z]\d*[a-z_]*", key) and not _TOKEN.match(key):
            close = difflib.get_close_matches(key, list(AU_SETS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"The 'aus' parameter must be one of {sorted(AU_SETS)} or a list of AU numbers "
                f"like '1,2,4'. Got {spec!r} instead.{hint}"
            )
        tokens = re.split(r"[,;]", spec)
    else:
        tokens = [str(t) for t in spec]
    if not any(t.strip() for t in tokens):
        raise ValueError(f"The 'aus' parameter must select at least one AU. Got {spec!r} instead.")
    if any(not t.strip() for t in tokens):
        raise ValueError(f"The 'aus' parameter has an empty entry. Got {spec!r} instead.")
    numbers = [_parse_token(t, spec) for t in tokens]
    seen: set[int] = set()
    dups = [n for n in numbers if n in seen or seen.add(n)]
    if dups:
        raise ValueError(
            f"The 'aus' parameter must not repeat an AU. Got AU{dups[0]} twice in {spec!r}."
        )
    return tuple(numbers)


def posed_class_index(posed: int, emotion: str, num_classes: int = 12) -> int:
    """Map a posed flag and an emotion to the 2- or 12-class index of Christensen 2018.

    Args:
        posed: 1 posed, 0 spontaneous.
        emotion: one of :data:`POSED_EMOTIONS` (ignored for 2 classes).
        num_classes: 2 or 12.

    Returns:
        The class index into :data:`POSED_CLASSES_2` or :data:`POSED_CLASSES_12`.

    Raises:
        ValueError: for a bad ``posed``, ``emotion`` or ``num_classes``.
    """
    if posed not in (0, 1):
        raise ValueError(f"The 'posed' parameter must be 0 or 1. Got {posed!r} instead.")
    if num_classes == 2:
        return int(posed)
    if num_classes != 12:
        raise ValueError(f"The 'num_classes' parameter must be 2 or 12. Got {num_classes!r}.")
    if emotion not in POSED_EMOTIONS:
        raise ValueError(
            f"The 'emotion' parameter must be one of {POSED_EMOTIONS}. Got {emotion!r} instead."
        )
    return int(posed) * len(POSED_EMOTIONS) + POSED_EMOTIONS.index(emotion)
