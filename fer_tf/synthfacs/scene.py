"""Who is drawn, how the head sits and how it is lit: :class:`Identity`, :class:`Pose`, :class:`Lighting`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fer_tf.synthfacs._common import as_rng, rgb, scale

__all__ = ["Identity", "Pose", "Lighting"]

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
        r = as_rng(rng)
        u = r.random(24)
        skin = rgb(_SKIN_LIGHT, _SKIN_DARK, float(u[0]))
        skin = (skin[0], skin[1] * (0.96 + 0.08 * u[1]), skin[2] * (0.94 + 0.12 * u[2]))
        hair = _HAIR_COLOURS[int(u[3] * len(_HAIR_COLOURS))]
        lip = scale((skin[0] * 0.8 + 10.0, skin[1] * 0.5, skin[2] * 0.52), 0.85 + 0.1 * u[4])
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
            frame=scale((40.0, 35.0, 30.0), 0.5 + 3.0 * r.random()),
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
        r = as_rng(rng)
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
        r = as_rng(rng)
        u = r.random(5)
        return cls(
            direction=float(u[0] * 2.0 * math.pi),
            strength=0.35 * float(u[1]),
            contrast=0.75 + 0.4 * float(u[2]),
            brightness=-20.0 + 40.0 * float(u[3]),
            noise=6.0 * float(u[4]),
        )
