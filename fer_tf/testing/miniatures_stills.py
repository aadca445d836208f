"""Miniature still-image datasets in their owners' exact layouts, drawn with SynthFACS faces.

Each writer puts a handful of faces in one dataset's file structure and label format, quirks
included (FER+ ``NF``/``unknown`` rows and a broken pixel row, AffectNet's -2 and codes 8-10, a
stray JAFFE file, both RAF-DB image variants, ...), and returns a :class:`Miniature` saying what a
source should make of it: the ``--input``, the source options, the expected items and Issues. Tests,
docs and notebooks share them. Nothing here downloads anything.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fer_tf.synthfacs import SynthFace

__all__ = [
    "Miniature",
    "face",
    "write_fer2013",
    "write_jaffe",
    "write_sfew",
    "write_affectnet",
    "write_rafdb",
    "write_table",
    "write_nvie_like",
]


@dataclass
class Miniature:
    """What a miniature holds.

    Attributes:
        input: the path for ``--input``.
        options: source options (``{"ferplus": Path(...)}``).
        items: expected items in order: dicts of :class:`~fer_tf.sources.base.SourceItem` fields
            (``source``, ``emotion``, ``partition``, ...; only the fields given are checked).
        issues: expected Issues in order: ``(path, line, reason, failure)``.
    """

    input: Path
    options: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    issues: list[tuple[str, int, str, bool]] = field(default_factory=list)


def face(emotion: str, index: int, size: int = 64, seed: int = 11) -> SynthFace:
    """One RGB SynthFACS face showing ``emotion`` (``"contempt"`` draws a neutral face).

    Args:
        emotion: a :data:`fer_tf.facs.EMOTIONS` name or ``"contempt"``.
        index: the face index (different faces for different indices).
        size: image side in pixels.
        seed: the SynthFACS seed.

    Returns:
        A :class:`~fer_tf.synthfacs.SynthFace` (``.image``: uint8 RGB).
    """
    from fer_tf.synthfacs import sample

    name = "neutral" if emotion == "contempt" else emotion
    return next(iter(sample(1, seed=seed, size=size, emotion_weights={name: 1.0}, start=index)))


def _image(emotion: str, index: int, size: int = 64) -> np.ndarray:
    return face(emotion, index, size).image


def _write(path: Path, rgb: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix, np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise ValueError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def _gray(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)


def _write_csv(path: Path, rows: list[list[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


# --------------------------------------------------------------------------------------------


_FER_ROWS = (
    # (emotion name, Usage, FER+ votes over the 10 columns, what FER+ makes of it)
    ("happiness", "Training", [1, 8, 0, 0, 0, 0, 0, 1, 0, 0], "happiness"),
    ("sadness", "Training", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], "ferplus_nf"),
    ("surprise", "Training", None, "bad_pixels"),
    ("anger", "PublicTest", [0, 0, 0, 0, 2, 0, 0, 0, 8, 0], "ferplus_unknown"),
    ("neutral", "PublicTest", [6, 0, 0, 0, 0, 0, 0, 4, 0, 0], "neutral"),
    ("fear", "PrivateTest", [0, 0, 3, 0, 0, 0, 3, 0, 2, 2], "surprise"),
    ("disgust", "PrivateTest", [0, 0, 0, 0, 1, 9, 0, 0, 0, 0], "disgust"),
)


def write_fer2013(root: Path, *, ferplus: bool = True) -> Miniature:
    """``root/fer2013.csv`` (7 rows: every Usage, a row with a broken pixel string) and, with
    ``ferplus``, ``root/fer2013new.csv`` (a majority row, an NF row with no image name as FER+
    writes them, an unknown row, a contempt vote, a 3-3 tie that goes to the earlier column).

    Returns:
        The expected items and Issues for ``fer2013`` with (or without) ``ferplus``.
    """
    from fer_tf.sources.fer2013 import FER2013_NAMES, FERPLUS_NAMES

    usage_split = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
    fer = [["emotion", "pixels", "Usage"]]
    plus = [["Usage", "Image name", *FERPLUS_NAMES, "unknown", "NF"]]
    mini = Miniature(root)
    for i, (emotion, usage, votes, outcome) in enumerate(_FER_ROWS):
        pixels = " ".join(map(str, _gray(_image(emotion, i, 48)).ravel()))
        if outcome == "bad_pixels":
            pixels = pixels.rsplit(" ", 1)[0]  # 2,303 values
        fer.append([FER2013_NAMES.index(emotion), pixels, usage])
        name = "" if outcome == "ferplus_nf" else f"fer{i:07d}.png"
        plus.append([usage, name, *(votes or [0, 0, 0, 0, 0, 0, 0, 0, 0, 10])])
        if outcome == "bad_pixels":
            mini.issues.append(("fer2013.csv", i + 2, "bad_pixels", True))
            continue
        expected: dict[str, Any] = {"source": f"fer2013.csv#row={i}"}
        expected["partition"] = usage_split[usage]
        if not ferplus:
            mini.items.append(expected | {"emotion": FER2013_NAMES.index(emotion)})
        elif outcome.startswith("ferplus_"):
            mini.issues.append(("fer2013new.csv", i + 2, outcome, False))
        else:
            shares = votes[:8]  # type: ignore[index]
            dist = [v / sum(shares) for v in shares]
            mini.items.append(
                expected | {"emotion": FERPLUS_NAMES.index(outcome), "emotion_dist": dist}
            )
    _write_csv(root / "fer2013.csv", fer)
    if ferplus:
        _write_csv(root / "fer2013new.csv", plus)
        mini.options["ferplus"] = root / "fer2013new.csv"
    return mini


_JAFFE = (
    ("KA", "AN", "anger", 1, 39),
    ("KA", "HA", "happiness", 2, 30),
    ("KA", "NE", "neutral", 1, 26),
    ("KM", "SU", "surprise", 3, 68),
    ("KM", "DI", "disgust", 1, 59),
    ("NA", "FE", "fear", 1, 211),
    ("NA", "SA", "sadness", 2, 214),
)


def write_jaffe(root: Path) -> Miniature:
    """``root/jaffedbase/`` with 7 grey 64x64 TIFFs of 3 subjects (every expression code), the
    README and a stray ``.DS_Store`` (both skipped).

    Returns:
        The expected items and Issues for ``jaffe`` on ``root``.
    """
    from PIL import Image

    from fer_tf.sources.jaffe import JaffeSource

    folder = root / "jaffedbase"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (subject, code, emotion, rep, number) in enumerate(_JAFFE):
        name = f"{subject}.{code}{rep}.{number}.tiff"
        Image.fromarray(_gray(_image(emotion, i))).save(folder / name, format="TIFF")
        rows.append(
            (name, {"subject": subject, "emotion": JaffeSource.emotion_names.index(emotion)})
        )
    (folder / "README").write_text("The Japanese Female Facial Expression (JAFFE) Database\n")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    mini = Miniature(root)
    for name, labels in sorted(rows):
        mini.items.append({"source": f"jaffedbase/{name}", "partition": None, **labels})
    mini.issues = [
        ("jaffedbase/.DS_Store", 0, "not_jaffe", False),
        ("jaffedbase/README", 0, "not_jaffe", False),
    ]
    return mini


def write_sfew(root: Path, *, test: bool = True) -> Miniature:
    """SFEW 2.0: ``Train/`` with one movie frame per class, ``Val/`` with two, a ``Thumbs.db``
    and, with ``test``, an unlabelled flat ``Test/`` of two frames.

    Returns:
        The expected items and Issues for ``sfew`` with ``unlabelled=skip``.
    """
    from fer_tf.sources.sfew import SFEW_CLASSES, SfewSource

    mini = Miniature(root)
    k = 0
    for part, classes in (("Train", list(SFEW_CLASSES)), ("Val", ["Happy", "Sad"])):
        for cls in classes:
            name = f"Airheads_{k:09d}_00000005.png"
            _write(root / part / cls / name, _image(SFEW_CLASSES[cls], k))
            emotion = SfewSource.emotion_names.index(SFEW_CLASSES[cls])
            source = f"{part}/{cls}/{name}"
            mini.items.append({"source": source, "emotion": emotion, "partition": part.lower()})
            k += 1
    (root / "Train" / "Happy" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    mini.issues.append(("Train/Happy/Thumbs.db", 0, "not_image", False))
    if test:
        for j in range(2):
            name = f"Test_{j:04d}.png"
            _write(root / "Test" / name, _image("neutral", 100 + j))
            mini.issues.append((f"Test/{name}", 0, "unlabelled", False))
    return mini


_AFFECTNET = (
    # (list, expression, valence, arousal, reason when skipped)
    ("training.csv", 1, 0.8, 0.3, ""),
    ("training.csv", 0, -2, -2, ""),
    ("training.csv", 8, 0.1, 0.2, "affectnet_none"),
    ("training.csv", 9, -2, -2, "affectnet_uncertain"),
    ("training.csv", "x", 0.1, 0.1, "bad_label"),
    ("training.csv", 7, -0.4, 0.5, ""),
    ("validation.csv", 6, -0.6, 0.7, ""),
    ("validation.csv", 10, -2, -2, "affectnet_no_face"),
    ("validation.csv", 3, 0.2, 0.9, ""),
)


def write_affectnet(root: Path) -> Miniature:
    """AffectNet: ``Manually_Annotated_file_lists/{training,validation}.csv`` and
    ``Manually_Annotated_Images/<dir>/<hash>.jpg`` (faces inside larger frames with their box),
    with -2 valence/arousal, expressions 8, 9, 10 and a row with a bad expression.

    Returns:
        The expected items and Issues for ``affectnet`` with ``non_classes=skip``.
    """
    from fer_tf.sources.affectnet import AFFECTNET_NAMES

    header = [
        "subDirectory_filePath",
        "face_x",
        "face_y",
        "face_width",
        "face_height",
        "facial_landmarks",
        "expression",
        "valence",
        "arousal",
    ]
    lists: dict[str, list[list[Any]]] = {"training.csv": [header], "validation.csv": [header]}
    mini = Miniature(root)
    for i, (file, code, valence, arousal, reason) in enumerate(_AFFECTNET):
        rel = f"{100 + i % 3}/{i:04x}e1b2c3d4.jpg"
        x, y, side = 10 + i, 20, 64
        canvas = np.full((side + 40, side + 30, 3), 90, np.uint8)
        emotion = AFFECTNET_NAMES[code] if isinstance(code, int) and code < 8 else "neutral"
        canvas[y : y + side, x : x + side] = _image(emotion, i, side)
        _write(root / "Manually_Annotated_Images" / rel, canvas)
        marks = ";".join(f"{v:.2f}" for v in np.linspace(x, x + side, 136))
        lists[file].append([rel, x, y, side, side, marks, code, valence, arousal])
        line = len(lists[file])
        if reason:
            failure = reason == "bad_label"
            mini.issues.append((f"Manually_Annotated_file_lists/{file}", line, reason, failure))
            continue
        mini.items.append(
            {
                "source": rel,
                "emotion": code,
                "valence": math.nan if valence == -2 else valence,
                "arousal": math.nan if arousal == -2 else arousal,
                "partition": None if file == "training.csv" else "test",
                "box": (x, y, side, side),
            }
        )
    for file, rows in lists.items():
        _write_csv(root / "Manually_Annotated_file_lists" / file, rows)
    return mini


_RAFDB = (
    ("train_00001.jpg", 4),
    ("train_00002.jpg", 1),
    ("test_0001.jpg", 7),
    ("test_0002.jpg", 6),
)


def write_rafdb(root: Path) -> Miniature:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` (with one broken line and a label 9),
    ``Image/aligned/*_aligned.jpg`` (100x100) and ``Image/original/*.jpg`` (larger frames).

    Returns:
        The expected items (aligned variant; the original variant's ``source`` differs) and
        Issues for ``rafdb``.
    """
    from fer_tf.sources.rafdb import RAFDB_NAMES

    lines, mini = [], Miniature(root)
    for i, (name, label) in enumerate(_RAFDB):
        emotion = RAFDB_NAMES[label - 1]
        stem = name[: -len(".jpg")]
        _write(root / "Image" / "aligned" / f"{stem}_aligned.jpg", _image(emotion, i, 100))
        frame = np.full((160, 140, 3), 60, np.uint8)
        frame[30:130, 20:120] = _image(emotion, i, 100)
        _write(root / "Image" / "original" / name, frame)
        lines.append(f"{name} {label}")
        mini.items.append(
            {
                "source": f"Image/aligned/{stem}_aligned.jpg",
                "emotion": label - 1,
                "partition": "test" if name.startswith("test") else None,
            }
        )
    lines.insert(2, "train_00003.jpg")  # the label is missing
    lines.append("test_0003.jpg 9")  # no such class
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    mini.issues = [
        ("EmoLabel/list_patition_label.txt", 3, "bad_label", True),
        ("EmoLabel/list_patition_label.txt", 6, "bad_label", True),
    ]
    return mini


def write_table(root: Path) -> Miniature:
    """``root/labels.csv`` listing images under ``root/img/`` with AU columns written ``AU1`` and
    ``AU 12``, emotion names and indices, valence, posed words, subject, split, and two bad rows
    (an AU value 2, a split ``dev``).

    Returns:
        The expected items and Issues for ``csv`` on ``root/labels.csv``.
    """
    rows: list[list[Any]] = [
        ["path", "AU1", "AU 12", "emotion", "valence", "posed", "subject", "split"]
    ]
    spec = [
        ("img/a.jpg", 1, 0, "happiness", 0.7, "posed", "s1", "train", 1),
        ("img/b.jpg", 999, 1, "3", -0.2, "spontaneous", "s1", "train", 3),
        ("img/c.jpg", 0, "", "", "", "", "s2", "test", -1),
        ("img/d.jpg", 2, 0, "anger", 0.1, 1, "s2", "train", None),
        ("img/e.jpg", 0, 1, "sadness", 0.0, 0, "s3", "dev", None),
        ("img/f.jpg", 1, 1, 4, 0.3, 1, "s3", "", 4),
    ]
    mini = Miniature(root / "labels.csv")
    au = {999: -1, "": -1, 0: 0, 1: 1}
    from fer_tf.facs import EMOTIONS

    for i, (path, a1, a12, emotion, valence, posed, subject, split, index) in enumerate(spec):
        name = EMOTIONS[index] if index is not None and index >= 0 else "neutral"
        _write(root / path, _image(name, i))
        rows.append([path, a1, a12, emotion, valence, posed, subject, split])
        if index is None:
            mini.issues.append(("labels.csv", i + 2, "bad_row", True))
            continue
        mini.items.append(
            {
                "source": path,
                "au": {1: au[a1], 12: au[a12]},
                "emotion": index,
                "valence": math.nan if valence == "" else valence,
                "posed": {"posed": 1, "spontaneous": 0, "": -1}.get(posed, posed),  # type: ignore[call-overload]
                "subject": subject,
                "partition": split or None,
            }
        )
    _write_csv(root / "labels.csv", rows)
    return mini


#: The NVIE-style template of :func:`write_nvie_like`.
NVIE_TEMPLATE = "{posed}/{subject}/{emotion}/{lighting}/*.jpg"


def write_nvie_like(root: Path) -> Miniature:
    """An NVIE-style tree ``<posed|spontaneous>/<subject>/<emotion>/<lighting>/NNNN.jpg`` (the
    layout of Christensen 2018's NVIE export) with a stray ``readme.txt`` and a ``Thumbs.db``.

    Returns:
        The expected items and Issues for ``csv`` with ``path_template`` :data:`NVIE_TEMPLATE`
        (emotion names collected and sorted: disgust, fear, happiness).
    """
    files = [
        ("posed", "S01", "happiness", "front", 1),
        ("posed", "S01", "fear", "left", 2),
        ("posed", "S02", "disgust", "front", 3),
        ("spontaneous", "S01", "happiness", "right", 4),
        ("spontaneous", "S03", "fear", "front", 5),
    ]
    names = sorted({f[2] for f in files})
    mini = Miniature(root, options={"path_template": NVIE_TEMPLATE})
    expected = []
    for i, (posed, subject, emotion, light, n) in enumerate(files):
        rel = f"{posed}/{subject}/{emotion}/{light}/{n:04d}.jpg"
        _write(root / rel, _image(emotion, i))
        expected.append(
            {
                "source": rel,
                "emotion": names.index(emotion),
                "posed": int(posed == "posed"),
                "subject": subject,
                "partition": None,
            }
        )
    (root / "readme.txt").write_text("NVIE visible-light apex images\n")
    (root / "posed" / "S01" / "fear" / "left" / "Thumbs.db").write_bytes(b"\xd0\xcf")
    mini.items = sorted(expected, key=lambda d: d["source"])
    mini.issues = [
        ("posed/S01/fear/left/Thumbs.db", 0, "template_mismatch", False),
        ("readme.txt", 0, "template_mismatch", False),
    ]
    return mini
