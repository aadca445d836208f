"""SynthFACS: procedurally rendered faces with known action units, emotion and posed/spontaneous.

Tests, CI and the demo run offline and need face images whose labels a model can genuinely learn.
SynthFACS draws faces with OpenCV primitives in a face-centred coordinate frame; each of the 15
AUs of ``facs.AU_SETS["synthfacs15"]`` moves landmarks or darkens wrinkles in proportion to its
intensity, so the appearance changes visibly and monotonically from 0 to 1. Identity, pose,
lighting, background and sensor noise vary around the expression.

Only NumPy and OpenCV are imported here (no TensorFlow): the sampler runs in process pools and in
the offline mirror server. :func:`write_records` imports TensorFlow lazily because it writes
TFRecords.

Coordinates: face units, x to the image right, y down, origin near the face centre; the face is
about 1.2 units wide. "Side" ``-1`` is the image-left half of the face (the subject's right),
``+1`` the image-right half (the subject's left).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_tf import facs

__all__ = [
    "RENDERED_AUS",
    "DEFAULT_NUM_IDENTITIES",
    "Identity",
    "Pose",
    "Lighting",
    "SynthFace",
    "render_face",
    "sample",
    "encode_jpeg",
    "to_record",
    "write_records",
]

RENDERED_AUS: tuple[int, ...] = facs.AU_SETS["synthfacs15"]
DEFAULT_NUM_IDENTITIES = 500

# Sub-stream tags for np.random.SeedSequence entropy: sample i of seed s always uses the stream
# (s, _FACE, i), identity k the stream (s, _IDENTITY, k), whatever n or the consumed prefix.
_FACE = 0
_IDENTITY = 1
_SPLIT = 2

_SHIFT = 4  # cv2 fractional bits: points are drawn with 1/16 pixel precision
_ONE = float(1 << _SHIFT)
_AA = cv2.LINE_AA

# Valence/arousal anchors on the circumplex (Russell's layout, as in seed 001 Figure 3).
_VA_ANCHORS: dict[str, tuple[float, float]] = {
    "neutral": (0.0, -0.2),
    "happiness": (0.8, 0.45),
    "sadness": (-0.7, -0.4),
    "surprise": (0.25, 0.8),
    "fear": (-0.6, 0.7),
    "anger": (-0.7, 0.6),
    "disgust": (-0.65, 0.3),
}

# AUs that co-occur with an emotion's prototype often enough that real data shows them together
# (open-mouth smiles, sad chin raise, ...): AU -> probability.
_COMPANIONS: dict[str, dict[int, float]] = {
    "neutral": {},
    "happiness": {25: 0.4, 26: 0.15},
    "sadness": {15: 0.5, 17: 0.4},
    "surprise": {25: 0.8},
    "fear": {25: 0.6},
    "anger": {17: 0.3, 25: 0.15},
    "disgust": {17: 0.3, 4: 0.3, 25: 0.2},
}
# Chance that any other rendered AU joins a non-neutral expression, so every AU also varies
# independently of the emotion (otherwise a classifier could learn emotions instead of AUs).
_EXTRA_PROB: dict[int, float] = {au: 0.06 for au in RENDERED_AUS}
_EXTRA_PROB[43] = 0.2  # eyes closed belongs to no prototype; make it common enough to learn
_DROP_PROB = 0.1  # chance to drop one AU from a prototype with three or more rendered AUs
_TRACE_PROB = 0.08  # chance that an absent AU shows a sub-threshold trace


def _check_unit(name: str, value: float, *, lo: float = 0.0, hi: float = 1.0) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"The '{name}' parameter must be a number in [{lo}, {hi}]. Got {value!r} instead."
        ) from None
    if not (lo <= v <= hi) or math.isnan(v):
        raise ValueError(
            f"The '{name}' parameter must be a number in [{lo}, {hi}]. Got {value!r} instead."
        )
    return v


def _check_int(name: str, value: Any, *, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(
            f"The '{name}' parameter must be an int {bound}. Got {value!r} "
            f"({type(value).__name__}) instead."
        )
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"The '{name}' parameter must be an int {bound}. Got {value!r} instead.")
    return v


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(
        f"The 'rng' parameter must be a numpy Generator, an int seed or None. Got {rng!r} instead."
    )


def _rgb(lo: Sequence[float], hi: Sequence[float], t: float) -> tuple[float, float, float]:
    return (
        lo[0] + (hi[0] - lo[0]) * t,
        lo[1] + (hi[1] - lo[1]) * t,
        lo[2] + (hi[2] - lo[2]) * t,
    )


def _scale(c: Sequence[float], k: float) -> tuple[float, float, float]:
    return (min(255.0, c[0] * k), min(255.0, c[1] * k), min(255.0, c[2] * k))


_SKIN_LIGHT = (242.0, 208.0, 184.0)
_SKIN_DARK = (92.0, 58.0, 42.0)
_HAIR_COLOURS = (
    (25.0, 20.0, 18.0),
    (60.0, 40.0, 28.0),
    (105.0, 70.0, 40.0),
    (190.0, 150.0, 95.0),
    (150.0, 70.0, 35.0),
    (150.0, 150.0, 150.0),
)
_IRIS_COLOURS = ((60.0, 40.0, 25.0), (90.0, 60.0, 30.0), (70.0, 110.0, 150.0), (80.0, 110.0, 70.0))


@dataclass(frozen=True)
class Identity:
    """The person: everything that stays fixed across one subject's images.

    Lengths are in face units (the face is about 1.2 units wide, 1.55 tall).

    Attributes:
        face_width, face_height: half-axes of the face outline.
        jaw: 0 round chin .. 1 square jaw.
        skin: RGB skin tone.
        hair: RGB hair colour.
        hair_style: 0 bald, 1 short, 2 long, 3 fringe.
        hairline: y of the hairline (more negative = higher forehead).
        eye_spacing: x distance of each eye centre from the midline.
        eye_width: half-width of an eye.
        eye_height: upper-lid height of a neutral eye.
        iris: RGB iris colour.
        brow_y: y of the brows at rest.
        brow_thickness: thickness of the brows.
        brow_arch: height of the brow arch.
        nose_width: half-width of the nose wings.
        nose_length: y of the nose tip.
        mouth_y: y of the mouth line at rest.
        mouth_width: half-width of the mouth at rest.
        lip_upper, lip_lower: lip thicknesses.
        lip: RGB lip colour.
        fold_depth: resting darkness of the nasolabial folds (age), 0..1.
        glasses: 0 none, 1 round frames, 2 rectangular frames (a partial occlusion of the eyes).
        frame: RGB colour of the glasses.
        clothing: RGB colour of the shirt.
    """

    face_width: float = 0.6
    face_height: float = 0.78
    jaw: float = 0.4
    skin: tuple[float, float, float] = (214.0, 170.0, 140.0)
    hair: tuple[float, float, float] = (60.0, 40.0, 28.0)
    hair_style: int = 1
    hairline: float = -0.52
    eye_spacing: float = 0.25
    eye_width: float = 0.105
    eye_height: float = 0.042
    iris: tuple[float, float, float] = (90.0, 60.0, 30.0)
    brow_y: float = -0.26
    brow_thickness: float = 0.035
    brow_arch: float = 0.035
    nose_width: float = 0.085
    nose_length: float = 0.2
    mouth_y: float = 0.42
    mouth_width: float = 0.19
    lip_upper: float = 0.035
    lip_lower: float = 0.045
    lip: tuple[float, float, float] = (185.0, 100.0, 95.0)
    fold_depth: float = 0.1
    glasses: int = 0
    frame: tuple[float, float, float] = (30.0, 30.0, 30.0)
    clothing: tuple[float, float, float] = (60.0, 90.0, 140.0)

    @classmethod
    def random(cls, rng: np.random.Generator | int | None = None) -> Identity:
        """Draw a random identity.

        Args:
            rng: a numpy Generator, an int seed, or None (fresh entropy).

        Returns:
            A new :class:`Identity`.
        """
        r = _as_rng(rng)
        u = r.random(24)
        skin = _rgb(_SKIN_LIGHT, _SKIN_DARK, float(u[0]))
        skin = (skin[0], skin[1] * (0.96 + 0.08 * u[1]), skin[2] * (0.94 + 0.12 * u[2]))
        hair = _HAIR_COLOURS[int(u[3] * len(_HAIR_COLOURS))]
        lip = _scale((skin[0] * 0.8 + 10.0, skin[1] * 0.5, skin[2] * 0.52), 0.85 + 0.1 * u[4])
        glasses = 0 if u[5] > 0.18 else 1 + int(u[6] * 2)
        return cls(
            face_width=0.55 + 0.12 * u[7],
            face_height=0.73 + 0.1 * u[8],
            jaw=float(u[9]),
            skin=skin,
            hair=hair,
            hair_style=int(u[10] * 4),
            hairline=-0.58 + 0.1 * u[11],
            eye_spacing=0.22 + 0.07 * u[12],
            eye_width=0.09 + 0.025 * u[13],
            eye_height=0.036 + 0.014 * u[14],
            iris=_IRIS_COLOURS[int(u[15] * len(_IRIS_COLOURS))],
            brow_y=-0.29 + 0.06 * u[16],
            brow_thickness=0.025 + 0.022 * u[17],
            brow_arch=0.015 + 0.04 * u[18],
            nose_width=0.07 + 0.035 * u[19],
            nose_length=0.17 + 0.07 * u[20],
            mouth_y=0.39 + 0.06 * u[21],
            mouth_width=0.16 + 0.07 * u[22],
            lip_upper=0.025 + 0.02 * u[23],
            lip_lower=0.035 + 0.02 * r.random(),
            lip=lip,
            fold_depth=0.25 * r.random(),
            glasses=glasses,
            frame=_scale((40.0, 35.0, 30.0), 0.5 + 3.0 * r.random()),
            clothing=tuple(float(c) for c in r.integers(20, 230, size=3)),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Pose:
    """Head pose and framing.

    Attributes:
        roll: in-plane rotation in degrees (positive = counter-clockwise on screen).
        yaw: yaw-like warp in [-1, 1]: nose and features slide sideways by depth (a 2-D stand-in
            for a head turn; positive looks toward image-right).
        scale: face size relative to the default framing.
        shift: (dx, dy) translation as fractions of the image size.
        gaze: (dx, dy) iris offset as fractions of the eye width.
    """

    roll: float = 0.0
    yaw: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    gaze: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def random(cls, rng: np.random.Generator | int | None = None, jitter: float = 1.0) -> Pose:
        """Draw a random residual pose, as left after face detection and alignment.

        With ``jitter=1``: roll sd 2.5° (within ±6°), yaw-like warp within ±0.25, scale within
        -5%..+8.5%, shift within ±2.5% (x) and ±2% (y) of the image.

        Args:
            rng: a numpy Generator, an int seed, or None.
            jitter: scales every deviation from the frontal, centred pose (0 = always frontal;
                2 = a loosely aligned crop).

        Returns:
            A new :class:`Pose`.
        """
        r = _as_rng(rng)
        u = r.random(7)
        z = float(np.clip(r.normal(0.0, 5.0), -12.0, 12.0))
        # Half the spread below is the default: the learnability test shows a linear model on HOG
        # finds every AU at that spread (see docs/synthfacs.md); jitter=2 doubles it.
        j = 0.5 * float(jitter)
        return cls(
            roll=j * z,
            yaw=j * (-0.5 + 1.0 * float(u[0])),
            scale=1.0 + j * (-0.1 + 0.17 * float(u[1])),
            shift=(j * (-0.05 + 0.1 * float(u[2])), j * (-0.04 + 0.08 * float(u[3]))),
            gaze=(-0.25 + 0.5 * float(u[4]), -0.1 + 0.2 * float(u[5])),
        )


@dataclass(frozen=True)
class Lighting:
    """Illumination and sensor.

    Attributes:
        direction: angle (radians) of the light in the image plane (0 = from image-right).
        strength: brightness gradient across the image, 0 (flat) .. ~0.5.
        contrast: contrast multiplier around mid-grey.
        brightness: offset added to every channel (0..255 scale).
        noise: standard deviation of Gaussian sensor noise (0..255 scale).
    """

    direction: float = 0.0
    strength: float = 0.0
    contrast: float = 1.0
    brightness: float = 0.0
    noise: float = 0.0

    @classmethod
    def random(cls, rng: np.random.Generator | int | None = None) -> Lighting:
        """Draw random lighting: side light, contrast 0.75–1.15, brightness ±20, noise 0–6.

        Args:
            rng: a numpy Generator, an int seed, or None.

        Returns:
            A new :class:`Lighting`.
        """
        r = _as_rng(rng)
        u = r.random(5)
        return cls(
            direction=float(u[0] * 2.0 * math.pi),
            strength=0.35 * float(u[1]),
            contrast=0.75 + 0.4 * float(u[2]),
            brightness=-20.0 + 40.0 * float(u[3]),
            noise=6.0 * float(u[4]),
        )


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

_T_CIRCLE = np.linspace(0.0, 2.0 * math.pi, 33)[:-1]
_COS, _SIN = np.cos(_T_CIRCLE), np.sin(_T_CIRCLE)
_T9 = np.linspace(0.0, 1.0, 9)
_X9 = np.linspace(-1.0, 1.0, 9)


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, t: np.ndarray = _T9) -> np.ndarray:
    """Quadratic Bezier points (len(t), 2)."""
    a = (1.0 - t)[:, None]
    b = t[:, None]
    return a * a * p0 + 2.0 * a * b * p1 + b * b * p2


def _ellipse(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    return np.stack([cx + ax * _COS, cy + ay * _SIN], axis=1)


@functools.lru_cache(maxsize=8)
def _noise_bank(size: int) -> np.ndarray:
    """Fixed standard-normal noise, (2 size, 2 size, 3) float32; faces read random windows."""
    return np.random.default_rng(12345).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)


class _Canvas:
    """Maps face units to pixels (pose) and draws anti-aliased primitives with sub-pixel precision."""

    def __init__(self, img: np.ndarray, pose: Pose, size: int) -> None:
        self.img = img
        self.size = size
        # A face crop as after detection: the face fills about 60% of the width, hair to chin.
        unit = 0.5 * size * pose.scale
        a = math.radians(pose.roll)
        # Counter-clockwise on screen: y points down, so the rotation sign flips.
        self.m = unit * np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
        self.t = np.array(
            [size / 2.0 + pose.shift[0] * size, size / 2.0 + (0.03 + pose.shift[1]) * size]
        )
        self.m16 = (self.m * _ONE).T.copy()
        self.t16 = self.t * _ONE + 0.5
        self.yaw = pose.yaw
        self.px = size / 128.0  # pixel thickness scale

    def pts(self, p: np.ndarray, depth: float = 0.0) -> np.ndarray:
        if depth and self.yaw:
            p = p.copy()
            # Yaw-like warp: nearer features slide more, and the face compresses toward the turn.
            p[:, 0] += self.yaw * (0.12 * depth - 0.08 * p[:, 0] * np.abs(p[:, 0]))
        # Scale to fixed point in the matrix; +0.5 then truncation rounds (coordinates are
        # essentially never negative, where truncation would be off by 1/16 px).
        return (p @ self.m16 + self.t16).astype(np.int32)

    def th(self, w: float) -> int:
        return max(1, int(round(w * self.px)))

    def fill(self, p: np.ndarray, colour: Sequence[float], depth: float = 0.0) -> None:
        cv2.fillPoly(self.img, [self.pts(p, depth)], colour, _AA, _SHIFT)

    def line(
        self,
        p: np.ndarray,
        colour: Sequence[float],
        width: float,
        depth: float = 0.0,
        closed: bool = False,
    ) -> None:
        cv2.polylines(self.img, [self.pts(p, depth)], closed, colour, self.th(width), _AA, _SHIFT)


def _side_intensities(
    aus: Mapping[int, float], asymmetry: float
) -> tuple[dict[int, float], dict[int, float]]:
    # Positive asymmetry weakens the image-left side (subject's right): the subject's left is
    # stronger, the direction seed 000 reports for posed expressions.
    k_left = 1.0 - max(asymmetry, 0.0)
    k_right = 1.0 - max(-asymmetry, 0.0)
    left = {au: v * k_left for au, v in aus.items()}
    right = {au: v * k_right for au, v in aus.items()}
    return left, right


def _validate_aus(aus: Mapping[int, float]) -> dict[int, float]:
    if not isinstance(aus, Mapping):
        raise ValueError(
            f"The 'aus' parameter must be a mapping AU number -> intensity in [0, 1], e.g. "
            f"{{12: 1.0}}. Got {type(aus).__name__} {aus!r} instead."
        )
    out: dict[int, float] = {}
    for au, value in aus.items():
        if isinstance(au, bool) or not isinstance(au, (int, np.integer)) or not 1 <= au <= 60:
            raise ValueError(
                f"The 'aus' parameter must have AU numbers in 1..60 as keys. Got {au!r} instead."
            )
        v = _check_unit(f"aus[{int(au)}]", value)
        if int(au) in RENDERED_AUS:
            out[int(au)] = v
    return out


def render_face(
    aus: Mapping[int, float],
    *,
    size: int = 128,
    rng: np.random.Generator | int | None = None,
    identity: Identity | None = None,
    pose: Pose | None = None,
    lighting: Lighting | None = None,
    asymmetry: float = 0.0,
) -> np.ndarray:
    """Render one face with the given AU intensities.

    The random draws (identity, pose, lighting when not given, background, clutter and noise) are
    made in a fixed order that does not depend on ``aus``, so the same ``rng`` seed with different
    intensities gives the same person in the same scene with a different expression.

    Args:
        aus: AU number -> intensity in [0, 1]. AUs 1, 2, 4, 5, 6, 7, 9, 12, 15, 17, 20, 23, 25,
            26 and 43 are rendered; other AUs in 1..60 are accepted and ignored.
        size: output height and width in pixels (32..1024).
        rng: numpy Generator, int seed, or None (fresh entropy).
        identity: the person; drawn from ``rng`` when None.
        pose: head pose and framing; drawn from ``rng`` when None.
        lighting: illumination and noise; drawn from ``rng`` when None.
        asymmetry: in [-1, 1]; positive weakens every AU on the image-left side (subject's right)
            by that fraction, negative the image-right side; 0 is symmetric.

    Returns:
        uint8 RGB array of shape (size, size, 3).

    Raises:
        ValueError: for AU numbers outside 1..60, intensities outside [0, 1], a bad ``size``,
            ``asymmetry`` or ``rng``.
    """
    size = _check_int("size", size, lo=32, hi=1024)
    a = _validate_aus(aus)
    asymmetry = _check_unit("asymmetry", asymmetry, lo=-1.0, hi=1.0)
    r = _as_rng(rng)
    # Always consume the same draws, so the scene does not depend on which arguments are given.
    id_rng, pose_rng, light_rng, scene_rng = r.spawn(4)
    ident = identity if identity is not None else Identity.random(id_rng)
    pose = pose if pose is not None else Pose.random(pose_rng)
    light = lighting if lighting is not None else Lighting.random(light_rng)
    return _render(a, size, scene_rng, ident, pose, light, asymmetry)


def _render(
    aus: dict[int, float],
    size: int,
    rng: np.random.Generator,
    idn: Identity,
    pose: Pose,
    light: Lighting,
    asymmetry: float,
) -> np.ndarray:
    sides = _side_intensities(aus, asymmetry)
    mean = {au: 0.5 * (sides[0][au] + sides[1][au]) for au in aus}
    m = mean.get

    # ---- background: two-colour gradient plus a little clutter --------------------------------
    u = rng.random(16)
    # A bilinear 2x2 -> size resize is a smooth gradient at a fraction of the cost of
    # per-pixel NumPy arithmetic (the renderer must reach 300 faces/s on one core).
    corners = rng.integers(30, 226, size=(2, 2, 3)).astype(np.uint8)
    img = cv2.resize(corners, (size, size), interpolation=cv2.INTER_LINEAR)
    for k in range(int(u[1] * 3)):
        col = tuple(float(c) for c in rng.integers(20, 236, size=3))
        x0, y0 = int(u[2 + 2 * k] * size), int(u[3 + 2 * k] * size)
        rad = int((0.08 + 0.2 * u[8 + k]) * size)
        if u[11 + k] < 0.5:
            cv2.rectangle(img, (x0 - rad, y0 - rad), (x0 + rad, y0 + rad // 2), col, -1)
        else:
            cv2.circle(img, (x0, y0), rad, col, -1, _AA)
    iris_u = rng.random(2)  # iris highlight jitter, drawn now so the stream stays fixed
    cv = _Canvas(img, pose, size)

    skin = idn.skin
    dark = _scale(skin, 0.55)  # wrinkle / crease colour
    shade = _scale(skin, 0.82)
    fw, fh = idn.face_width, idn.face_height
    fcy = -0.05

    # ---- torso, neck, hair behind, ears ----------------------------------------------------
    drop26 = 0.12 * m(26, 0.0)
    cv.fill(_ellipse(0.0, 1.45, 1.25, 0.55), idn.clothing)
    cv.fill(np.array([[-0.24, 0.3], [0.24, 0.3], [0.26, 1.05], [-0.26, 1.05]]), shade)
    if idn.hair_style == 2:
        back = _ellipse(0.0, fcy - 0.05, fw + 0.12, fh + 0.08)
        back = np.concatenate(
            [back[back[:, 1] < 0.2], [[fw + 0.14, 0.75], [-(fw + 0.14), 0.75]]], axis=0
        )
        back = back[np.argsort(np.arctan2(back[:, 1] - 0.2, back[:, 0]))]
        cv.fill(back, idn.hair)
    for s in (-1.0, 1.0):
        cv.fill(_ellipse(s * (fw - 0.01), -0.02, 0.075, 0.13), shade, depth=0.2)

    # ---- face outline (the jaw follows AU26) ----------------------------------------------
    face = _ellipse(0.0, fcy, fw, fh)
    lower = face[:, 1] > fcy
    # Square jaws widen the lower half; the jaw drop stretches everything below the mouth.
    face[lower, 0] *= 1.0 + 0.12 * idn.jaw * np.sin(np.pi * (face[lower, 1] - fcy) / fh)
    below = np.clip((face[:, 1] - idn.mouth_y + 0.1) / (fh + fcy - idn.mouth_y + 0.1), 0.0, 1.0)
    face[:, 1] += drop26 * below
    cv.fill(face, skin)

    # ---- hair in front -----------------------------------------------------------------------
    if idn.hair_style in (1, 2, 3):
        hl = idn.hairline + (0.1 if idn.hair_style == 3 else 0.0)
        A, B = fw + 0.035, fh + 0.06
        th0 = math.asin(max(-0.99, min(0.99, (hl - fcy) / B)))
        t = np.linspace(math.pi - th0, 2.0 * math.pi + th0, 17)
        cap = np.stack([A * np.cos(t), fcy + B * np.sin(t)], axis=1)
        xr = abs(cap[-1, 0])
        xs = np.linspace(xr, -xr, 9)
        dip = 0.06 if idn.hair_style == 3 else -0.03
        fringe = np.stack([xs, hl + dip * (1.0 - (xs / max(xr, 1e-3)) ** 2)], axis=1)
        cv.fill(np.concatenate([cap, fringe], axis=0), idn.hair)

    # ---- cheeks (AU6 raises them; AU12 pushes them up a little) ------------------------------
    ey = -0.08
    for si, s in enumerate((-1.0, 1.0)):
        sd = sides[si].get
        a6, a12 = sd(6, 0.0), sd(12, 0.0)
        cx = s * (idn.eye_spacing + 0.02)
        cy = ey + 0.2 - 0.06 * a6 - 0.02 * a12
        if a6 > 0.02:
            cv.fill(_ellipse(cx, cy, 0.12, 0.07), _rgb(skin, _scale(skin, 0.8), a6), depth=0.5)
            # Infra-orbital furrow: the raised cheek bunches skin under the lower lid.
            ew = idn.eye_width
            arc = _bezier(
                np.array([cx - s * ew * 0.9, ey + 0.075 - 0.02 * a6]),
                np.array([cx, ey + 0.13 - 0.03 * a6]),
                np.array([cx + s * ew * 1.1, ey + 0.06 - 0.02 * a6]),
            )
            cv.line(arc, _rgb(skin, dark, a6), 1.6, depth=0.5)

    # ---- forehead wrinkles: AU1 centre, AU2 lateral ------------------------------------------
    by = idn.brow_y
    a1m = m(1, 0.0)
    if a1m > 0.02:
        for k in range(3):
            y = by - 0.13 - 0.055 * k
            half = 0.06 + 0.1 * a1m
            seg = _bezier(
                np.array([-half, y + 0.01]), np.array([0.0, y - 0.02]), np.array([half, y + 0.01])
            )
            cv.line(seg, _rgb(skin, dark, 0.9 * a1m), 1.0, depth=0.3)
    for si, s in enumerate((-1.0, 1.0)):
        a2 = sides[si].get(2, 0.0)
        if a2 > 0.02:
            for k in range(2):
                y = by - 0.11 - 0.06 * k
                x0, x1 = s * 0.2, s * (0.2 + 0.1 + 0.14 * a2)
                seg = _bezier(
                    np.array([x0, y]),
                    np.array([(x0 + x1) / 2, y - 0.025]),
                    np.array([x1, y + 0.02]),
                )
                cv.line(seg, _rgb(skin, dark, 0.9 * a2), 1.0, depth=0.3)

    # ---- glabella lines (AU4) and nose-bridge wrinkles (AU9) --------------------------------
    a9m = m(9, 0.0)
    for si, s in enumerate((-1.0, 1.0)):
        a4 = sides[si].get(4, 0.0)
        if a4 > 0.02:
            # Corrugator: vertical furrows between the brows, converging downward; procerus: a
            # short horizontal fold at the root of the nose, below the lowered inner brows.
            seg = np.array([[s * 0.05, by - 0.03], [s * (0.04 - 0.01 * a4), by + 0.03 + 0.07 * a4]])
            cv.line(seg, _rgb(skin, dark, a4), 1.4 + 0.6 * a4, depth=0.6)
            fold = np.array([[s * 0.008, by + 0.125], [s * 0.035, by + 0.12 + 0.005 * a4]])
            cv.line(fold, _rgb(skin, dark, 0.6 * a4), 1.0, depth=0.7)
    if a9m > 0.02:
        for k in range(3):
            y = ey + 0.01 + 0.035 * k
            half = 0.03 + 0.05 * a9m
            seg = np.array([[-half, y + 0.01], [0.0, y - 0.008], [half, y + 0.01]])
            cv.line(seg, _rgb(skin, dark, a9m), 1.4, depth=0.8)

    # ---- eyes --------------------------------------------------------------------------------
    ew, eh = idn.eye_width, idn.eye_height
    gazex, gazey = pose.gaze
    for si, s in enumerate((-1.0, 1.0)):
        sd = sides[si].get
        a5, a6, a7, a43 = sd(5, 0.0), sd(6, 0.0), sd(7, 0.0), sd(43, 0.0)
        a4 = sd(4, 0.0)
        cx = s * idn.eye_spacing
        up = eh * (1.0 + 1.0 * a5 - 0.1 * a7 - 0.12 * a6 - 0.25 * a4)
        lo = eh * 0.7 * (1.0 - 0.3 * a6)
        up = up * (1.0 - a43) - 0.8 * lo * a43  # closing: the upper lid comes down to the lower
        xs = _X9 * ew
        shape = 1.0 - _X9 * _X9
        # Outer corner sits slightly higher. AU7 raises the lower lid and straightens it (a flat
        # line across the lower iris); the upper lid barely moves, so the eye narrows from below
        # but stays open with the iris showing, unlike AU43 where the upper lid comes down.
        tilt = -0.012 * s * _X9
        y_up = ey + tilt - up * shape**0.8
        y_lo = ey + tilt + lo * (1.0 - 0.55 * a7) * shape - 0.25 * eh * a7 * shape**0.3
        y_lo = np.maximum(y_lo, y_up)
        x = cx + xs
        eye = np.concatenate([np.stack([x, y_up], 1), np.stack([x[::-1], y_lo[::-1]], 1)], axis=0)
        if a7 > 0.02:
            # The tensed orbicularis bulges under the raised lid, bounded by a furrow below it.
            furrow = ey + tilt + (eh * 0.45 + 0.03 * a7) * shape**0.7 + 0.012
            bulge = np.concatenate([eye[9:], np.stack([x, furrow], 1)], axis=0)
            cv.fill(bulge, _rgb(skin, _scale(skin, 1.12), a7), depth=0.6)
            cv.line(np.stack([x, furrow], 1)[1:-1], _rgb(skin, dark, a7), 1.3, depth=0.6)
        # Lid crease: AU5 pulls the lid up toward it, AU43 and AU7 hide it.
        crease = np.stack([x[1:-1], ey + tilt[1:-1] - (eh * 1.9) * shape[1:-1] ** 0.6], 1)
        cv.line(crease, _rgb(skin, dark, 0.45 * (1.0 - a43)), 1.0, depth=0.6)
        cv.fill(eye, (238.0, 236.0, 230.0), depth=0.6)
        # Iris clipped by the lids so narrowing and closing cover it.
        ir = ew * 0.48
        icx = cx + gazex * ew * 0.5
        icy = ey + gazey * ew * 0.5
        ix = icx + ir * _COS
        top = np.interp(ix, x, y_up)
        bot = np.interp(ix, x, y_lo)
        iy = np.clip(icy + ir * _SIN, top, np.maximum(top, bot))
        cv.fill(np.stack([ix, iy], 1), idn.iris, depth=0.6)
        px_ = icx + ir * 0.45 * _COS
        py_ = np.clip(icy + ir * 0.45 * _SIN, np.interp(px_, x, y_up), np.interp(px_, x, y_lo))
        cv.fill(np.stack([px_, np.maximum(py_, np.interp(px_, x, y_up))], 1), (15, 12, 12), 0.6)
        if up > 0.3 * eh:
            hx, hy = icx + ir * (0.2 + 0.2 * iris_u[0]), icy - ir * 0.3
            cv.fill(_ellipse(hx, hy, ir * 0.15, ir * 0.15), (250, 250, 250), depth=0.6)
        # Upper lid line (lashes) thick, lower lid thin; AU7 darkens the lower lid.
        cv.line(eye[:9], (35.0, 25.0, 25.0), 1.8, depth=0.6)
        cv.line(eye[9:], _rgb(_scale(skin, 0.7), _scale(skin, 0.45), a7), 1.0, depth=0.6)
        # Crow's feet (AU6): wrinkles fanning out from the outer corner.
        if a6 > 0.02:
            ox = cx + s * ew * 1.15
            for k, dy in enumerate((-0.035, 0.0, 0.035)):
                length = 0.04 + 0.08 * a6
                seg = np.array(
                    [[ox, ey + dy * 0.5], [ox + s * length, ey + dy * (1.4 + 0.3 * k / 2)]]
                )
                cv.line(seg, _rgb(skin, dark, a6), 1.4, depth=0.5)

    # ---- brows: AU1 inner up, AU2 outer up, AU4 down and together; AU9 pulls them down -----
    for si, s in enumerate((-1.0, 1.0)):
        sd = sides[si].get
        a1, a2, a4, a9 = sd(1, 0.0), sd(2, 0.0), sd(4, 0.0), sd(9, 0.0)
        inner = np.array(
            [s * (0.075 - 0.045 * a4), by - 0.1 * a1 + 0.08 * a4 + 0.015 * a9 + 0.01 * a2]
        )
        outer = np.array([s * (idn.eye_spacing + 0.2), by + 0.035 - 0.1 * a2 + 0.025 * a4])
        mid = np.array(
            [
                s * (idn.eye_spacing + 0.02),
                by - idn.brow_arch * (2.0 + 0.5 * a2) - 0.045 * a1 - 0.06 * a2 + 0.05 * a4,
            ]
        )
        top = _bezier(inner, mid, outer)
        taper = (1.0 - 0.55 * _T9)[:, None] * idn.brow_thickness
        bottom = top + np.hstack([np.zeros_like(taper), taper])
        brow = np.concatenate([top, bottom[::-1]], axis=0)
        cv.fill(brow, _scale(idn.hair, 0.85), depth=0.5)

    # ---- nose: AU9 raises and widens the wings ------------------------------------------------
    nw, ny = idn.nose_width, idn.nose_length
    cv.line(np.array([[0.02, ey + 0.02], [0.035, ny - 0.06]]), shade, 1.0, depth=1.0)
    for si, s in enumerate((-1.0, 1.0)):
        a9 = sides[si].get(9, 0.0)
        wing = s * (nw + 0.015 * a9)
        wy = ny - 0.035 * a9
        ala = _bezier(
            np.array([s * 0.03, wy - 0.08]),
            np.array([wing * 1.35, wy - 0.01]),
            np.array([s * 0.02, wy + 0.03]),
        )
        cv.line(ala, _scale(skin, 0.6), 1.3, depth=0.9)
        cv.fill(
            _ellipse(s * (0.035 + 0.1 * nw), wy + 0.005, 0.022 + 0.01 * a9, 0.012 + 0.004 * a9),
            _scale(skin, 0.35),
            depth=0.9,
        )

    # ---- mouth ---------------------------------------------------------------------------
    # Lip lines run from corner to corner; the opening, lip thickness and lift at each point
    # blend the two sides' intensities, so an asymmetric expression gives a lopsided mouth.
    my = idn.mouth_y
    a23m, a25m = m(23, 0.0), m(25, 0.0)
    corners = []
    for si, s in enumerate((-1.0, 1.0)):
        sd = sides[si].get
        a12, a15, a20 = sd(12, 0.0), sd(15, 0.0), sd(20, 0.0)
        a17, a23 = sd(17, 0.0), sd(23, 0.0)
        dx = 0.055 * a12 + 0.1 * a20 - 0.09 * a23
        dy = -0.075 * a12 + 0.08 * a15 + 0.015 * a20 + 0.03 * a17 + 0.5 * drop26 * 0.4
        corners.append(np.array([s * (idn.mouth_width + dx), my + dy]))
    cl, cr = corners
    base = 0.5 * (cl[1] + cr[1])
    # Per side: top and bottom of the opening, upper and lower lip thickness (at the centre).
    gt, gb, ul, ll = np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2)
    for si in range(2):
        sd = sides[si].get
        a9, a17, a23, a25 = sd(9, 0.0), sd(17, 0.0), sd(23, 0.0), sd(25, 0.0)
        # AU23 thins the red of the lips (rolled in and pressed), AU20 stretches them thin.
        thin = (1.0 - 0.85 * a23) * (1.0 - 0.35 * sd(20, 0.0))
        # The chin raiser pushes the lower lip (and so the mouth centre) up.
        centre = my - 0.06 * a17 + 0.25 * (base - my)
        gt[si] = centre - 0.035 * a25 - 0.008 * a9
        gb[si] = centre + 0.075 * a25 + drop26 * 1.1
        ul[si] = idn.lip_upper * thin + 0.025 * a9
        ll[si] = idn.lip_lower * thin * (1.0 + 0.35 * a17)
    t = _T9
    w = 4.0 * t * (1.0 - t)
    mx = cl[0] + (cr[0] - cl[0]) * t
    line0 = cl[1] + (cr[1] - cl[1]) * t

    def _lerp(v: np.ndarray, tt: np.ndarray = t) -> np.ndarray:
        return v[0] + (v[1] - v[0]) * tt

    upper_in = np.stack([mx, line0 + w * (_lerp(gt) - base)], 1)
    lower_in = np.stack([mx, line0 + w * (_lerp(gb) - base)], 1)
    lower_out = np.stack([mx, line0 + w * (_lerp(gb + ll) - base)], 1)
    # Upper outer edge with a cupid's bow; AU9 raises it.
    tb = np.array([0.225, 0.41, 0.5, 0.59, 0.775])
    uo = _lerp(gt - ul, tb) + np.array([0.003, -0.006, 0.006, -0.006, 0.003])
    upper_out = np.concatenate([[cl], np.stack([cl[0] + (cr[0] - cl[0]) * tb, uo], 1), [cr]])
    # Nasolabial folds: AU12 deepens them and swings them outward, AU9 a little too.
    for si, s in enumerate((-1.0, 1.0)):
        sd = sides[si].get
        k = min(1.0, idn.fold_depth + 0.8 * sd(12, 0.0) + 0.35 * sd(9, 0.0))
        c = corners[si]
        fold = _bezier(
            np.array([s * (nw + 0.04), ny - 0.04]),
            np.array([s * (nw + 0.1 + 0.04 * sd(12, 0.0)), ny + 0.06]),
            np.array([c[0] + s * 0.05, c[1] + 0.06]),
        )
        cv.line(fold, _rgb(skin, dark, 0.85 * k), 1.1, depth=0.6)
        # AU15 marionette lines and AU20 corner creases below the corners.
        a15, a20 = sd(15, 0.0), sd(20, 0.0)
        if a15 > 0.02:
            seg = np.array(
                [[c[0] + s * 0.01, c[1] + 0.02], [c[0] + s * 0.02, c[1] + 0.05 + 0.08 * a15]]
            )
            cv.line(seg, _rgb(skin, dark, 0.9 * a15), 1.0, depth=0.6)
        if a20 > 0.02:
            seg = np.array(
                [[c[0] + s * 0.02, c[1] - 0.02], [c[0] + s * (0.03 + 0.05 * a20), c[1] + 0.01]]
            )
            cv.line(seg, _rgb(skin, dark, 0.9 * a20), 1.0, depth=0.6)
        a23 = sd(23, 0.0)
        if a23 > 0.02:
            # AU23: the tightened lips bulge the skin around them into a ridge (an oval furrow
            # around the mouth, drawn per half).
            half = t <= 0.5 if si == 0 else t >= 0.5
            ring_top = np.stack([mx, line0 + w * (_lerp(gt - ul) - base) - 0.03], 1)[half]
            ring_bot = np.stack([mx, line0 + w * (_lerp(gb + ll) - base) + 0.03], 1)[half]
            tip = np.array([[c[0] + s * 0.035, c[1]]])
            if si == 0:
                ring = np.concatenate([ring_top[::-1], tip, ring_bot])
            else:
                ring = np.concatenate([ring_top, tip, ring_bot[::-1]])
            cv.line(ring, _rgb(skin, dark, a23), 1.6, depth=0.7)
            # Small bulges bracket the tightened corners.
            bracket = _bezier(
                np.array([c[0] + s * 0.005, c[1] - 0.055]),
                np.array([c[0] + s * 0.065, c[1]]),
                np.array([c[0] + s * 0.005, c[1] + 0.055]),
            )
            cv.line(bracket, _rgb(skin, dark, a23), 1.6, depth=0.7)
            # Fine perioral lines fan out above and below the lips, pointing at the mouth.
            mc = np.array([0.0, base])
            for fx in (0.15, 0.45, 0.75):
                for ring_half, sgn in ((ring_top, -1.0), (ring_bot, 1.0)):
                    lx = s * fx * abs(c[0])
                    ly = float(np.interp(lx, ring_half[:, 0], ring_half[:, 1]))
                    d = np.array([lx, ly]) - mc
                    d = d / max(float(np.hypot(d[0], d[1])), 1e-6)
                    p0 = np.array([lx, ly]) + 0.004 * sgn * np.abs(d)
                    seg = np.stack([p0, p0 + 0.05 * d])
                    cv.line(seg, _rgb(skin, dark, 0.8 * a23), 1.2, depth=0.7)

    lips = np.concatenate([upper_out, lower_out[::-1][1:-1]], axis=0)
    cv.fill(lips, idn.lip, depth=0.7)
    if float(np.max(lower_in[:, 1] - upper_in[:, 1])) > 0.004:
        hole = np.concatenate([upper_in, lower_in[::-1][1:-1]], axis=0)
        cv.fill(hole, (45.0, 18.0, 22.0), depth=0.7)
        if a25m > 0.02:
            # Upper teeth fill most of the parted-lips gap.
            teeth_bot = np.minimum(
                upper_in[:, 1]
                + 0.055 * w * _lerp(np.array([sides[0].get(25, 0.0), sides[1].get(25, 0.0)]))
                + 0.01 * a25m,
                lower_in[:, 1],
            )
            teeth = np.concatenate(
                [upper_in, np.stack([upper_in[::-1, 0], teeth_bot[::-1]], 1)], axis=0
            )
            cv.fill(teeth, (236.0, 232.0, 220.0), depth=0.7)
    # The line between the lips: pressed lips (AU23) make it darker and heavier.
    press = _rgb(_scale(idn.lip, 0.55), _scale(idn.lip, 0.3), a23m)
    cv.line(upper_in, press, 1.0 + 0.6 * a23m, depth=0.7)

    # ---- chin: AU17 crease, raised chin boss with dimpled skin ---------------------------
    for si, s in enumerate((-1.0, 1.0)):
        a17 = sides[si].get(17, 0.0)
        if a17 <= 0.02:
            continue
        cb = float(gb[si] + ll[si]) + 0.04 + drop26
        # The boss bulges up (a highlight, drawn per half), the mentolabial sulcus above it
        # deepens into a curved crease and the skin over the boss dimples.
        half = _COS * s >= -1e-9
        boss = np.stack([s * 0.095 * np.abs(_COS[half]), cb + 0.075 + 0.055 * _SIN[half]], 1)
        boss = boss[np.argsort(boss[:, 1])]
        cv.fill(
            np.concatenate([boss, [[0.0, cb + 0.13], [0.0, cb + 0.02]]]),
            _rgb(skin, _scale(skin, 1.12), 0.8 * a17),
            depth=0.5,
        )
        crease = _bezier(
            np.array([s * 0.11, cb + 0.02]),
            np.array([s * 0.06, cb - 0.02]),
            np.array([0.0, cb - 0.015]),
        )
        cv.line(crease, _rgb(skin, dark, a17), 1.9, depth=0.6)
        shadow = np.stack([s * 0.085 * _X9[4:], cb + 0.13 - 0.03 * _X9[4:] ** 2], 1)
        cv.line(shadow, _rgb(skin, dark, 0.6 * a17), 1.3, depth=0.5)

    # ---- glasses (partial occlusion of the eyes) -------------------------------------------
    if idn.glasses:
        rx, ry = ew * 1.45, ew * (1.05 if idn.glasses == 1 else 0.8)
        for s in (-1.0, 1.0):
            cx = s * idn.eye_spacing
            if idn.glasses == 1:
                rim = _ellipse(cx, ey + 0.01, rx, ry)
            else:
                rim = np.array(
                    [[cx - rx, ey - ry], [cx + rx, ey - ry], [cx + rx, ey + ry], [cx - rx, ey + ry]]
                )
            cv.line(rim, idn.frame, 1.6, depth=0.7, closed=True)
            cv.line(
                np.array([[cx + s * rx, ey - 0.02], [s * (fw - 0.02), ey - 0.04]]),
                idn.frame,
                1.4,
                depth=0.4,
            )
        bridge = np.array([[-idn.eye_spacing + rx, ey - 0.01], [idn.eye_spacing - rx, ey - 0.01]])
        cv.line(bridge, idn.frame, 1.4, depth=0.8)

    # ---- lighting, contrast, sensor noise -----------------------------------------------------
    # Light falls off linearly along `direction`; the gain is linear in x and y, so its four
    # corner values and a bilinear resize give a close, much cheaper approximation.
    dx, dy = math.cos(light.direction), math.sin(light.direction)
    k = light.strength * light.contrast
    cgain = np.array([[-dx - dy, dx - dy], [-dx + dy, dx + dy]], dtype=np.float32) * np.float32(
        k
    ) + np.float32(light.contrast)
    gain = cv2.resize(cgain, (size, size), interpolation=cv2.INTER_LINEAR)
    out = img * gain[..., None]
    offset = 128.0 * (1.0 - light.contrast) + light.brightness
    if light.noise > 0:
        # A random window of a fixed noise bank: sensor noise at ~1/10 the cost of fresh draws.
        bank = _noise_bank(size)
        ox, oy = (int(v) for v in rng.integers(0, size, size=2))
        out += bank[oy : oy + size, ox : ox + size] * np.float32(light.noise) + np.float32(offset)
    else:
        out += np.float32(offset)
    np.clip(out, 0.0, 255.0, out=out)
    return out.astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Sampling faces with labels
# --------------------------------------------------------------------------------------------


@dataclass
class SynthFace:
    """One rendered face with its labels in record-schema terms.

    Attributes:
        image: uint8 RGB array (size, size, 3).
        aus: the label columns (AU numbers), as requested from :func:`sample`.
        au_labels: int8 array aligned with ``aus``: 1 present, 0 absent, -1 unknown. Columns for
            AUs that SynthFACS does not render are 0 (the image really shows none of them).
        au_intensity: float32 array aligned with ``aus``: the true rendered intensity (on the
            stronger side of the face), also where the label is marked unknown.
        emotion: index into :data:`fer_tf.facs.EMOTIONS` (0 = neutral).
        valence, arousal: in [-1, 1].
        posed: 1 posed, 0 spontaneous, -1 for neutral faces (no expression to pose).
        subject: identity id, ``"synth-000123"``; shared by every face of that identity.
        index: the sample index (sample ``i`` of a seed is the same whatever ``n`` is).
        seed: the seed the face was sampled with.
        asymmetry: the asymmetry the face was rendered with (see :func:`render_face`).
    """

    image: np.ndarray
    aus: tuple[int, ...]
    au_labels: np.ndarray
    au_intensity: np.ndarray
    emotion: int
    valence: float
    arousal: float
    posed: int
    subject: str
    index: int
    seed: int = 0
    asymmetry: float = 0.0

    @property
    def emotion_name(self) -> str:
        """The emotion's name, e.g. ``"happiness"``."""
        return facs.EMOTIONS[self.emotion]

    @property
    def source(self) -> str:
        """Stable source string ``synthfacs://<seed>/<index>`` (hashed into the record id)."""
        return f"synthfacs://{self.seed}/{self.index}"


@functools.lru_cache(maxsize=4096)
def _identity(seed: int, k: int) -> Identity:
    return Identity.random(np.random.default_rng([seed, _IDENTITY, k]))


def _subject(k: int) -> str:
    return f"synth-{k:06d}"


def _emotion_probs(emotion_weights: Any) -> np.ndarray:
    names = facs.EMOTIONS
    if emotion_weights is None:
        return np.full(len(names), 1.0 / len(names))
    if isinstance(emotion_weights, Mapping):
        unknown = [k for k in emotion_weights if k not in names]
        if unknown:
            raise ValueError(
                f"The 'emotion_weights' parameter must map emotion names from {names} to "
                f"weights. Got unknown name {unknown[0]!r} instead."
            )
        w = np.array([float(emotion_weights.get(k, 0.0)) for k in names])
    else:
        try:
            w = np.asarray(emotion_weights, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            w = np.array([])
        if w.shape != (len(names),):
            raise ValueError(
                f"The 'emotion_weights' parameter must be a mapping name -> weight or a sequence "
                f"of {len(names)} weights in the order {names}. Got {emotion_weights!r} instead."
            )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(
            f"The 'emotion_weights' parameter must hold non-negative finite weights with a "
            f"positive sum. Got {emotion_weights!r} instead."
        )
    return w / w.sum()


def _draw_expression(
    r: np.random.Generator, emotion: str, thr: float, posed: int
) -> tuple[dict[int, float], float]:
    """Nominal AU intensities and asymmetry for one face (fixed number of draws)."""
    u = r.random(3 * len(RENDERED_AUS) + 8)
    present_u = u[: len(RENDERED_AUS)]
    extra_u = u[len(RENDERED_AUS) : 2 * len(RENDERED_AUS)]
    trace_u = u[2 * len(RENDERED_AUS) : 3 * len(RENDERED_AUS)]
    v = u[3 * len(RENDERED_AUS) :]

    proto = {au: s for au, s in facs.EMOTION_PROTOTYPES[emotion].items() if au in RENDERED_AUS}
    active: dict[int, float] = dict(proto)
    # Variation: sometimes one AU of a larger prototype is missing ...
    if len(proto) >= 3 and v[0] < _DROP_PROB:
        keys = sorted(proto)
        active.pop(keys[int(v[1] * len(keys))])
    if emotion != "neutral":
        # ... typical companions join, and any other AU may join at random.
        for i, au in enumerate(RENDERED_AUS):
            p = _COMPANIONS[emotion].get(au, 0.0)
            if au not in active and (extra_u[i] < p or extra_u[i] > 1.0 - _EXTRA_PROB[au]):
                active[au] = 1.0
        # Eyes cannot be closed and widened at once.
        if 43 in active and 5 in active:
            active.pop(5 if 5 not in proto else 43)
    # Posed/spontaneous smile morphology (seed 000): Duchenne AU6 with AU12 only if spontaneous.
    if 12 in active:
        if posed == 1:
            active.pop(6, None)
        elif posed == 0:
            active.setdefault(6, 1.0)

    out: dict[int, float] = {}
    for i, au in enumerate(RENDERED_AUS):
        if au in active:
            # Present: above the threshold with a margin; a slight prototype AU ("5B") is weaker.
            strength = active[au]
            out[au] = thr + (1.0 - thr) * (0.15 + 0.85 * present_u[i]) * (0.5 + 0.5 * strength)
        elif (
            emotion != "neutral"
            and trace_u[i] < _TRACE_PROB
            and not ((au == 6 and posed == 1 and 12 in active) or (au == 43 and 5 in active))
        ):
            out[au] = thr * (0.1 + 0.5 * present_u[i])  # a visible trace, still labelled absent
    if posed == 1:
        # Posed: clearly asymmetric, mostly stronger on the subject's left (seed 000).
        asym = (0.3 + 0.35 * v[2]) * (1.0 if v[3] < 0.8 else -1.0)
    else:
        asym = 0.06 * (2.0 * v[2] - 1.0)
    return out, float(asym)


def _valence_arousal(
    r: np.random.Generator, emotion: str, intensities: dict[int, float]
) -> tuple[float, float]:
    proto = [au for au in facs.EMOTION_PROTOTYPES[emotion] if au in intensities]
    k = float(np.mean([intensities[au] for au in proto])) if proto else 0.0
    base_v, base_a = _VA_ANCHORS[emotion]
    noise = r.normal(0.0, 0.08, size=2)
    scale = 1.0 if emotion == "neutral" else 0.55 + 0.45 * k
    v = float(np.clip(base_v * scale + noise[0], -1.0, 1.0))
    a = float(np.clip(base_a * scale + noise[1], -1.0, 1.0))
    return v, a


def _check_sample_args(
    n: Any,
    seed: Any,
    size: Any,
    aus: Any,
    unknown_fraction: Any,
    num_identities: Any,
    present_threshold: Any,
    posed_fraction: Any,
    start: Any,
) -> tuple[tuple[int, ...], int]:
    _check_int("n", n, lo=0)
    _check_int("seed", seed, lo=0)
    _check_int("size", size, lo=32, hi=1024)
    _check_int("start", start, lo=0)
    label_aus = facs.parse_aus(aus)
    _check_unit("unknown_fraction", unknown_fraction, lo=0.0, hi=1.0)
    if num_identities is None:
        pool = DEFAULT_NUM_IDENTITIES
    else:
        pool = _check_int("num_identities", num_identities, lo=1, hi=999_999)
    thr = _check_unit("present_threshold", present_threshold)
    if not 0.0 < thr < 1.0:
        raise ValueError(
            f"The 'present_threshold' parameter must be in the open interval (0, 1). "
            f"Got {present_threshold!r} instead."
        )
    _check_unit("posed_fraction", posed_fraction)
    return label_aus, pool


def sample(
    n: int,
    *,
    seed: int,
    size: int = 128,
    aus: Sequence[int] | str = "synthfacs15",
    unknown_fraction: float = 0.0,
    num_identities: int | None = None,
    emotion_weights: Mapping[str, float] | Sequence[float] | None = None,
    present_threshold: float = 0.5,
    posed_fraction: float = 0.5,
    pose_jitter: float = 1.0,
    start: int = 0,
) -> Iterator[SynthFace]:
    """Yield ``n`` labelled SynthFACS faces, deterministically for ``seed``.

    Face ``i`` comes from its own random stream ``(seed, i)``, so it is the same whatever ``n``,
    ``start`` or how much of the iterator is consumed; different label columns (``aus``) or
    ``unknown_fraction`` change only the labels, never the image.

    How a face is made: an identity is drawn from a pool of ``num_identities``; an emotion from
    ``emotion_weights``; the emotion's prototype AUs (seed 001 Table 2, rendered ones only) are
    switched on, with variation (one AU of a 3+ AU prototype dropped 10% of the time, typical
    companions such as AU25 with surprise, and any other AU at random 6% of the time, AU43 12%);
    present AUs get intensities above ``present_threshold``, a few absent ones a sub-threshold
    trace. Non-neutral faces are posed with probability ``posed_fraction``: posed faces are
    rendered asymmetrically (one side 30–65% weaker, usually the subject's right) and never show
    AU6 with AU12; spontaneous faces are symmetric (within 6%) and every AU12 comes with AU6
    (a Duchenne smile). Valence/arousal are the emotion's circumplex anchor scaled by the
    prototype intensity, plus Gaussian noise (sd 0.08).

    Args:
        n: number of faces.
        seed: non-negative int.
        size: image size in pixels (32..1024).
        aus: label columns: an AU set name or AU numbers (``facs.parse_aus`` syntax). Columns for
            AUs that are not rendered are labelled 0 (absent).
        unknown_fraction: fraction of AU labels marked -1 (unknown), independently per label,
            like EmotioNet's 999; the image and ``au_intensity`` are unaffected.
        num_identities: size of the identity pool (default :data:`DEFAULT_NUM_IDENTITIES`);
            subject ids are ``synth-<k>`` for k in the pool, so held-out-subject splits work.
        emotion_weights: relative frequency of each emotion: a mapping name -> weight (missing
            names get 0) or a sequence aligned with :data:`fer_tf.facs.EMOTIONS`; uniform if None.
        present_threshold: intensity at which an AU counts as present (label 1).
        posed_fraction: probability that a non-neutral face is posed.
        pose_jitter: scales head-pose variation (roll, yaw, scale, shift) in [0, 2]; 0 gives
            frontal, centred faces, 1 the default residual misalignment of an aligned face
            crop (see :meth:`Pose.random`).
        start: index of the first face (to continue a sequence or to shard work).

    Yields:
        :class:`SynthFace` objects with ``index`` from ``start`` to ``start + n - 1``.

    Raises:
        ValueError: for any argument outside its allowed values (raised on the call, before the
            first face).
    """
    label_aus, pool = _check_sample_args(
        n,
        seed,
        size,
        aus,
        unknown_fraction,
        num_identities,
        present_threshold,
        posed_fraction,
        start,
    )
    probs = _emotion_probs(emotion_weights)
    return _sample_iter(
        int(n),
        int(seed),
        int(size),
        label_aus,
        float(unknown_fraction),
        pool,
        probs,
        float(present_threshold),
        float(posed_fraction),
        int(start),
        _check_unit("pose_jitter", pose_jitter, lo=0.0, hi=2.0),
    )


def _sample_iter(
    n: int,
    seed: int,
    size: int,
    label_aus: tuple[int, ...],
    unknown_fraction: float,
    pool: int,
    probs: np.ndarray,
    thr: float,
    posed_fraction: float,
    start: int,
    pose_jitter: float,
) -> Iterator[SynthFace]:
    cdf = np.cumsum(probs)
    for i in range(start, start + n):
        r = np.random.default_rng([seed, _FACE, i])
        u = r.random(3)
        k = int(u[0] * pool)
        emo_idx = min(int(np.searchsorted(cdf, u[1] * cdf[-1], side="right")), len(cdf) - 1)
        emotion = facs.EMOTIONS[emo_idx]
        posed = -1 if emotion == "neutral" else int(u[2] < posed_fraction)
        intensities, asym = _draw_expression(r, emotion, thr, posed)
        valence, arousal = _valence_arousal(r, emotion, intensities)
        unknown_u = r.random(len(label_aus))
        # Same stream layout as render_face(rng=...): the identity slot is unused here because
        # the identity comes from the subject pool.
        _, pose_rng, light_rng, scene_rng = r.spawn(1)[0].spawn(4)
        pose = Pose.random(pose_rng, jitter=pose_jitter)
        image = _render(
            intensities,
            size,
            scene_rng,
            _identity(seed, k),
            pose,
            Lighting.random(light_rng),
            asym,
        )
        inten = np.array([intensities.get(au, 0.0) for au in label_aus], dtype=np.float32)
        labels = (inten >= thr).astype(np.int8)
        labels[unknown_u < unknown_fraction] = -1
        yield SynthFace(
            image=image,
            aus=label_aus,
            au_labels=labels,
            au_intensity=inten,
            emotion=emo_idx,
            valence=valence,
            arousal=arousal,
            posed=posed,
            subject=_subject(k),
            index=i,
            seed=seed,
            asymmetry=asym,
        )


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode an RGB uint8 image as JPEG bytes.

    Args:
        image: uint8 array (H, W, 3) in RGB order.
        quality: JPEG quality 1..100.

    Returns:
        The JPEG file bytes.

    Raises:
        ValueError: for a non-uint8 or wrongly shaped image or a bad quality.
    """
    quality = _check_int("quality", quality, lo=1, hi=100)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(
            f"The 'image' parameter must be a uint8 RGB array of shape (H, W, 3). Got "
            f"{getattr(image, 'dtype', type(image).__name__)} with shape "
            f"{getattr(image, 'shape', None)} instead."
        )
    if image.shape[2] != 3:
        raise ValueError(
            f"The 'image' parameter must have 3 channels (RGB). Got shape {image.shape} instead."
        )
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:  # pragma: no cover - OpenCV only fails here on invalid input, checked above
        raise RuntimeError("OpenCV could not encode the image as JPEG.")
    return buf.tobytes()


def to_record(face: SynthFace, jpeg_quality: int = 90) -> Any:
    """Convert a :class:`SynthFace` to a schema-v1 :class:`fer_tf.records.ExampleRecord`.

    Args:
        face: the face.
        jpeg_quality: JPEG quality 1..100.

    Returns:
        An ``ExampleRecord`` with source ``synthfacs://<seed>/<index>``.
    """
    from fer_tf.records import ExampleRecord

    h, w = face.image.shape[:2]
    return ExampleRecord(
        image=encode_jpeg(face.image, jpeg_quality),
        height=int(h),
        width=int(w),
        source=face.source,
        au=[int(v) for v in face.au_labels],
        valence=float(face.valence),
        arousal=float(face.arousal),
        emotion=int(face.emotion),
        posed=int(face.posed),
        subject=face.subject,
    )


def _val_subjects(seed: int, pool: int, val_fraction: float) -> set[int]:
    if val_fraction <= 0.0:
        return set()
    count = min(pool - 1, max(1, int(round(pool * val_fraction)))) if pool > 1 else 0
    perm = np.random.default_rng([seed, _SPLIT]).permutation(pool)
    return {int(k) for k in perm[:count]}


def write_records(
    directory: str | os.PathLike[str],
    n: int,
    *,
    seed: int,
    size: int = 64,
    aus: Sequence[int] | str = "synthfacs15",
    val_fraction: float = 0.2,
    num_shards: int = 2,
    unknown_fraction: float = 0.0,
    num_identities: int | None = None,
    emotion_weights: Mapping[str, float] | Sequence[float] | None = None,
    posed_fraction: float = 0.5,
    jpeg_quality: int = 90,
) -> dict[str, Any]:
    """Write ``n`` SynthFACS faces as a schema-v1 records directory (no downloader involved).

    Splits are by subject: a fixed fraction of the identity pool (chosen by ``seed``) is held out
    for ``val``, so validation identities never appear in ``train``. Each split is written to
    ``num_shards`` shards (``<split>-00000-of-0000N.tfrecord``; face ``j`` of a split goes to
    shard ``j % num_shards``), first under a temporary name, renamed when complete. Also writes
    ``manifest.json`` and an empty ``errors.jsonl``.

    Args:
        directory: output directory (created if needed).
        n: number of faces in total.
        seed: sampling seed.
        size: image size in pixels.
        aus: label columns (``manifest.au_ids``).
        val_fraction: fraction of identities held out as ``val``, in [0, 1); 0 writes only
            ``train``.
        num_shards: shards per split (>= 1).
        unknown_fraction: fraction of AU labels stored as -1.
        num_identities: identity pool size (default :data:`DEFAULT_NUM_IDENTITIES`).
        emotion_weights: see :func:`sample`.
        posed_fraction: see :func:`sample`.
        jpeg_quality: JPEG quality 1..100.

    Returns:
        The manifest dict as written (``splits`` maps split name to ``{"shards": [file names
        relative to directory], "count": N}``).

    Raises:
        ValueError: for bad arguments (see :func:`sample`).
    """
    import tensorflow as tf

    from fer_tf import __version__
    from fer_tf.records import (
        ERRORS_NAME,
        SCHEMA_VERSION,
        encode_example,
        shard_name,
        write_manifest,
    )

    val_fraction = _check_unit("val_fraction", val_fraction)
    if val_fraction >= 1.0:
        raise ValueError(
            f"The 'val_fraction' parameter must be in [0, 1) so that train keeps identities. "
            f"Got {val_fraction!r} instead."
        )
    num_shards = _check_int("num_shards", num_shards, lo=1, hi=10_000)
    jpeg_quality = _check_int("jpeg_quality", jpeg_quality, lo=1, hi=100)
    faces = sample(
        n,
        seed=seed,
        size=size,
        aus=aus,
        unknown_fraction=unknown_fraction,
        num_identities=num_identities,
        emotion_weights=emotion_weights,
        posed_fraction=posed_fraction,
    )
    label_aus = facs.parse_aus(aus)
    pool = DEFAULT_NUM_IDENTITIES if num_identities is None else int(num_identities)
    val_ids = _val_subjects(int(seed), pool, val_fraction)
    split_names = ["train", "val"] if val_fraction > 0 else ["train"]

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    names = {s: [shard_name(s, j, num_shards) for j in range(num_shards)] for s in split_names}
    writers = {
        s: [tf.io.TFRecordWriter(str(out / (nm + ".tmp"))) for nm in names[s]] for s in split_names
    }
    counts = dict.fromkeys(split_names, 0)
    stats = {
        s: {"au_present": [0] * len(label_aus), "au_absent": [0] * len(label_aus)}
        for s in split_names
    }
    unknown = dict.fromkeys(split_names, 0)
    emotions = {s: [0] * len(facs.EMOTIONS) for s in split_names}
    posed = {s: {"posed": 0, "spontaneous": 0, "unknown": 0} for s in split_names}
    try:
        for face in faces:
            k = int(face.subject.split("-")[1])
            split = "val" if k in val_ids else "train"
            j = counts[split]
            writers[split][j % num_shards].write(encode_example(to_record(face, jpeg_quality)))
            counts[split] = j + 1
            for c, v in enumerate(face.au_labels):
                if v == 1:
                    stats[split]["au_present"][c] += 1
                elif v == 0:
                    stats[split]["au_absent"][c] += 1
                else:
                    unknown[split] += 1
            emotions[split][face.emotion] += 1
            posed[split][{1: "posed", 0: "spontaneous", -1: "unknown"}[face.posed]] += 1
    finally:
        for ws in writers.values():
            for w in ws:
                w.close()
    for s in split_names:
        for nm in names[s]:
            os.replace(out / (nm + ".tmp"), out / nm)
    (out / ERRORS_NAME).write_text("", encoding="utf-8")
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "fer_tf_version": __version__,
        "source": "synthfacs",
        "arguments": {
            "n": int(n),
            "seed": int(seed),
            "size": int(size),
            "aus": list(label_aus),
            "val_fraction": val_fraction,
            "num_shards": num_shards,
            "unknown_fraction": float(unknown_fraction),
            "num_identities": pool,
            "posed_fraction": float(posed_fraction),
            "jpeg_quality": jpeg_quality,
            "split_by": "subject",
        },
        "inputs": [],
        "au_ids": list(label_aus),
        "emotion_names": list(facs.EMOTIONS),
        "splits": {s: {"shards": names[s], "count": counts[s]} for s in split_names},
        "label_stats": {
            s: {
                **stats[s],
                "au_unknown_total": unknown[s],
                "emotion": dict(zip(facs.EMOTIONS, emotions[s])),
                "posed": posed[s],
            }
            for s in split_names
        },
        "failures": {},
    }
    write_manifest(out, manifest)
    return manifest
