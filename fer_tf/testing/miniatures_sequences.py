"""Miniature sequence datasets in their distributed layouts, rendered with SynthFACS.

Each writer puts a few short SynthFACS sequences (one identity per sequence, AU intensity rising
from 0 to the apex, or rising and falling back for MUG) into the exact file structure and label
formats of CK+, MUG, DISFA, BP4D (FERA 2015) or a video table, including the quirks the sources
must cope with. Tests, docs and notebooks share them. NumPy and OpenCV only (no TensorFlow).

Every writer returns the root it wrote (for ``--input``; the video table's path for ``video``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_tf.facs import EMOTION_PROTOTYPES
from fer_tf.synthfacs import render_face

__all__ = [
    "render_sequence",
    "write_ckplus",
    "write_mug",
    "write_disfa",
    "write_bp4d",
    "write_video_table",
    "write_video",
]


def _levels(n: int, shape: str) -> list[float]:
    if n == 1:
        return [1.0]
    ts = [i / (n - 1) for i in range(n)]
    return ts if shape == "onset" else [1.0 - abs(2 * t - 1.0) for t in ts]


def render_sequence(
    apex: dict[int, float], n: int, *, seed: int, size: int = 64, shape: str = "onset"
) -> list[np.ndarray]:
    """``n`` frames of one person whose AUs rise from 0 to ``apex`` (and back, ``"onset-offset"``).

    Args:
        apex: AU number -> apex intensity in [0, 1].
        n: number of frames.
        seed: the person and scene (the same seed gives the same face, only the expression moves).
        size: frame size in pixels.
        shape: ``"onset"`` (neutral -> apex, CK+) or ``"onset-offset"`` (neutral -> apex ->
            neutral, MUG).

    Returns:
        RGB uint8 frames.
    """
    return [
        render_face({au: v * t for au, v in apex.items()}, size=size, rng=seed)
        for t in _levels(n, shape)
    ]


def _imwrite(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """Write RGB frames as a video (MJPG for ``.avi``, mp4v otherwise) with OpenCV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _sci(x: float) -> str:
    # CK+ writes label numbers like MATLAB's "   5.0000000e+00".
    return f"   {x:.7e}"


#: CK+ miniature: sequence -> (CK+ emotion code or None, FACS lines (AU, intensity)).
CKPLUS_MINI: dict[str, tuple[int | None, list[tuple[float, float]]]] = {
    "S005/001": (5, [(6, 3), (12, 4)]),  # happy
    "S005/002": (7, [(1, 2), (2, 0), (5, 1), (26, 3)]),  # surprise; AU2 intensity not coded
    "S010/001": (None, [(4, 2), (17, 1)]),  # no emotion file: an empty Emotion folder (quirk)
    "S010/002": (1, [(4, 3), (23, 2)]),  # anger; its FACS file has a bad line
}


def write_ckplus(root: Path, *, frames: int = 5, size: int = 64) -> Path:
    """CK+: ``cohn-kanade-images/``, ``Emotion/``, ``FACS/`` for :data:`CKPLUS_MINI`.

    Quirks: ``S010/001`` has an empty ``Emotion`` folder; ``S010/002``'s FACS file has a bad line
    (``garbage``) and an AU outside CK+'s 30 (AU 62); a ``.DS_Store`` file sits in a sequence
    folder;
    frame numbers are 8-digit, 1-based.
    """
    for k, (sequence, (emotion, facs)) in enumerate(CKPLUS_MINI.items()):
        subject, number = sequence.split("/")
        apex = {int(au): 1.0 for au, _ in facs}
        for i, img in enumerate(render_sequence(apex, frames, seed=100 + k, size=size), 1):
            _imwrite(
                root / "cohn-kanade-images" / sequence / f"{subject}_{number}_{i:08d}.png", img
            )
        stem = f"{subject}_{number}_{frames:08d}"
        (root / "Emotion" / sequence).mkdir(parents=True, exist_ok=True)
        if emotion is not None:
            (root / "Emotion" / sequence / f"{stem}_emotion.txt").write_text(_sci(emotion) + "\n")
        lines = [f"{_sci(au)}{_sci(level)}" for au, level in facs]
        if sequence == "S010/002":
            lines += ["garbage", f"{_sci(62)}{_sci(0)}"]
        (root / "FACS" / sequence).mkdir(parents=True, exist_ok=True)
        (root / "FACS" / sequence / f"{stem}_facs.txt").write_text("\n".join(lines) + "\n")
    (root / "cohn-kanade-images" / "S005" / "001" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return root


#: MUG miniature: (subject, emotion folder, take).
MUG_MINI = (
    ("001", "happiness", "take000"),
    ("001", "neutral", "take000"),
    ("002", "surprise", "take000"),
    ("002", "surprise", "take001"),
    ("002", "contempt", "take000"),  # not a MUG emotion folder: reported
)


def write_mug(root: Path, *, frames: int = 9, size: int = 64) -> Path:
    """MUG: ``subjects3/<subject>/<emotion>/<take>/img_0001.jpg`` for :data:`MUG_MINI`."""
    for k, (subject, emotion, take) in enumerate(MUG_MINI):
        apex = EMOTION_PROTOTYPES.get(emotion, {12: 0.5})
        seq = render_sequence(apex, frames, seed=200 + k, size=size, shape="onset-offset")
        for i, img in enumerate(seq, 1):
            _imwrite(root / "subjects3" / subject / emotion / take / f"img_{i:04d}.jpg", img)
    return root


DISFA_MINI_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def _disfa_levels(subject: int, au: int, frame: int) -> int:
    # A deterministic intensity 0..5 per subject, AU and 1-based frame.
    return (subject * 7 + au * 3 + frame) % 6


def write_disfa(root: Path, *, frames: int = 8, size: int = 64, right: bool = True) -> Path:
    """DISFA: ``ActionUnit_Labels/SN00k/SN00k_au<n>.txt`` and ``Videos_*Camera/*_comp.avi``.

    SN001: ``frames`` labelled frames and a ``frames``-frame MJPG video; ``SN001_au1.txt`` has a bad
    line (``3;x``, its frame then has AU1 unknown) and ``SN001_au26.txt`` lacks frame 5 (when
    ``frames`` is large enough). SN002: labels
    for ``frames + 2`` frames but a ``frames``-frame video (2 frames past the end). Intensities:
    ``(7 * subject + 3 * au + frame) % 6``. The right camera holds SN001 only.
    """
    for s, n_labels in ((1, frames), (2, frames + 2)):
        sn = f"SN{s:03d}"
        folder = root / "ActionUnit_Labels" / sn
        folder.mkdir(parents=True, exist_ok=True)
        for au in DISFA_MINI_AUS:
            lines = [f"{f},{_disfa_levels(s, au, f)}" for f in range(1, n_labels + 1)]
            if s == 1 and au == 1 and len(lines) > 2:
                lines[2] = "3;x"
            if s == 1 and au == 26 and len(lines) > 4:
                del lines[4]
            (folder / f"{sn}_au{au}.txt").write_text("\n".join(lines) + "\n")
        video = render_sequence({12: 1.0, 6: 0.8}, frames, seed=300 + s, size=size)
        write_video(root / "Videos_LeftCamera" / f"LeftVideo{sn}_comp.avi", video)
        if right and s == 1:
            write_video(root / "Videos_RightCamera" / f"RightVideo{sn}_comp.avi", video)
    return root


#: The BP4D miniature's CSV header AUs (a wider set than the 12 kept, like the real files).
BP4D_MINI_HEADER = tuple(range(1, 28))


def _bp4d_value(subject: str, task: str, au: int, frame: int) -> int:
    return (len(subject) + int(task[1:]) + au + frame) % 2


def write_bp4d(root: Path, *, size: int = 64, images: str = "Sequences") -> Path:
    """BP4D (FERA 2015): ``AUCoding/AU_OCC/<subject>_<task>.csv``, ``<images>/<subject>/<task>/``.

    F001/T1: frames 10..14 named unpadded (``10.jpg``); F001/T2: frames 1..4 zero-padded
    (``0001.jpg``); M001/T1: frames 1..4, AU 7 coded 9 (unknown) in frame 2, a bad row
    (``x,...``), and a labelled frame 5 without an image. Values: ``_bp4d_value``; AUs outside the
    12 are 9.
    """
    tasks = {
        ("F001", "T1"): (range(10, 15), "{}.jpg"),
        ("F001", "T2"): (range(1, 5), "{:04d}.jpg"),
        ("M001", "T1"): (range(1, 5), "{}.jpg"),
    }
    labels = root / "AUCoding" / "AU_OCC"
    labels.mkdir(parents=True, exist_ok=True)
    kept = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
    for k, ((subject, task), (numbers, pattern)) in enumerate(tasks.items()):
        seq = render_sequence({12: 1.0, 6: 1.0}, len(numbers), seed=400 + k, size=size)
        for number, img in zip(numbers, seq):
            _imwrite(root / images / subject / task / pattern.format(number), img)
        rows = [",".join(["0", *map(str, BP4D_MINI_HEADER)])]
        label_numbers = [*numbers, 5] if (subject, task) == ("M001", "T1") else list(numbers)
        for number in label_numbers:
            values = [
                _bp4d_value(subject, task, au, number) if au in kept else 9
                for au in BP4D_MINI_HEADER
            ]
            if (subject, task, number) == ("M001", "T1", 2):
                values[BP4D_MINI_HEADER.index(7)] = 9
            rows.append(",".join(map(str, [number, *values])))
        if (subject, task) == ("M001", "T1"):
            rows.insert(2, "x," + ",".join("0" * len(BP4D_MINI_HEADER)))
        (labels / f"{subject}_{task}.csv").write_text("\n".join(rows) + "\n")
    return root


def write_video_table(root: Path, *, size: int = 64) -> Path:
    """``table.csv`` and ``videos/clip1.mp4`` (20 frames, 10 fps), ``videos/clip2.avi`` (12 frames).

    Rows (line numbers of the table): 2 clip1 0..9 happiness subject s1; 3 clip1 10..19 surprise
    with AU1/AU1_intensity; 4 clip2 whole video neutral, AU12 0, subject s2; 5 a missing video;
    6 an unknown emotion; 7 clip1 5..12, overlapping rows 2 and 3 (repeats reported).

    Returns:
        The table's path (``--input``).
    """
    write_video(
        root / "videos" / "clip1.mp4", render_sequence({12: 1.0}, 20, seed=500, size=size), fps=10.0
    )
    write_video(
        root / "videos" / "clip2.avi", render_sequence({1: 1.0}, 12, seed=501, size=size), fps=10.0
    )
    rows = [
        "path,start_frame,end_frame,emotion,valence,arousal,subject,AU1,AU1_intensity,AU12",
        "videos/clip1.mp4,0,9,happiness,0.7,0.4,s1,,,1",
        "videos/clip1.mp4,10,19,3,0.2,0.8,s1,1,2.5,",
        "videos/clip2.avi,,,neutral,,,s2,0,0,0",
        "videos/missing.mp4,,,1,,,s3,,,",
        "videos/clip2.avi,0,3,joy,,,s2,,,",
        "videos/clip1.mp4,5,12,1,,,s1,,,",
    ]
    table = root / "table.csv"
    table.write_text("\n".join(rows) + "\n")
    return table
