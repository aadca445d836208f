"""The drawing surface and what every facial region reads while it draws.

:class:`Canvas` maps face units to pixels (the pose) and draws anti-aliased OpenCV primitives
with 1/16 pixel precision. :class:`FaceContext` holds the per-face state the regions share: the
canvas, the identity, the AU intensities per side and the colours derived from the skin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fer_tf.synthfacs._common import scale
from fer_tf.synthfacs.scene import Identity, Pose

SHIFT = 4  # cv2 fractional bits: points are drawn with 1/16 pixel precision
ONE = float(1 << SHIFT)
AA = cv2.LINE_AA

# Face-frame landmarks shared by several regions (face units, y down).
FACE_CY = -0.05  # centre of the face outline
EYE_Y = -0.08  # eye line


class Canvas:
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
        self.m16 = (self.m * ONE).T.copy()
        self.t16 = self.t * ONE + 0.5
        self.yaw = pose.yaw
        self.px = size / 128.0  # pixel thickness scale

    def pts(self, p: np.ndarray, depth: float = 0.0) -> np.ndarray:
        """Face-unit points ``(N, 2)`` as fixed-point pixel coordinates (int32, 4 fraction bits).

        ``depth`` (0 at the ears .. 1 at the nose tip) sets how far the yaw warp slides a point.
        """
        if depth and self.yaw:
            p = p.copy()
            # Yaw-like warp: nearer features slide more, and the face compresses toward the turn.
            p[:, 0] += self.yaw * (0.12 * depth - 0.08 * p[:, 0] * np.abs(p[:, 0]))
        # Scale to fixed point in the matrix; +0.5 then truncation rounds (coordinates are
        # essentially never negative, where truncation would be off by 1/16 px).
        return (p @ self.m16 + self.t16).astype(np.int32)

    def th(self, w: float) -> int:
        """A line width given for a 128 px face, in pixels at this size (at least 1)."""
        return max(1, int(round(w * self.px)))

    def fill(self, p: np.ndarray, colour: Sequence[float], depth: float = 0.0) -> None:
        """Fill the polygon ``p`` (face units)."""
        cv2.fillPoly(self.img, [self.pts(p, depth)], colour, AA, SHIFT)

    def line(
        self,
        p: np.ndarray,
        colour: Sequence[float],
        width: float,
        depth: float = 0.0,
        closed: bool = False,
    ) -> None:
        """Draw the polyline ``p`` (face units), ``width`` as for a 128 px face."""
        cv2.polylines(self.img, [self.pts(p, depth)], closed, colour, self.th(width), AA, SHIFT)


def side_intensities(
    aus: Mapping[int, float], asymmetry: float
) -> tuple[dict[int, float], dict[int, float]]:
    """AU intensities on the image-left and image-right halves of the face.

    Args:
        aus: AU number -> intensity.
        asymmetry: in [-1, 1]; see :func:`fer_tf.synthfacs.render_face`.

    Returns:
        ``(left, right)`` intensity dicts.
    """
    # Positive asymmetry weakens the image-left side (subject's right): the subject's left is
    # stronger, the direction Christensen 2018 reports for posed expressions.
    k_left = 1.0 - max(asymmetry, 0.0)
    k_right = 1.0 - max(-asymmetry, 0.0)
    left = {au: v * k_left for au, v in aus.items()}
    right = {au: v * k_right for au, v in aus.items()}
    return left, right


@dataclass
class FaceContext:
    """Per-face state every region reads.

    Attributes:
        cv: the canvas.
        idn: the identity.
        pose: the pose (gaze is read by the eyes).
        sides: AU intensities on the image-left and image-right halves.
        mean: the mean of the two sides per AU.
        iris_u: two uniform draws for the iris highlight (drawn with the background, so the
            random stream does not depend on the expression).
    """

    cv: Canvas
    idn: Identity
    pose: Pose
    sides: tuple[dict[int, float], dict[int, float]]
    mean: dict[int, float]
    iris_u: np.ndarray

    def __post_init__(self) -> None:
        skin = self.idn.skin
        self.skin = skin
        self.dark = scale(skin, 0.55)  # wrinkle / crease colour
        self.shade = scale(skin, 0.82)
        # The jaw drop (AU26) moves the face outline, the mouth corners and the chin.
        self.drop26 = 0.12 * self.mean.get(26, 0.0)

    def m(self, au: int) -> float:
        """Mean intensity of ``au`` over the two sides (0 when absent)."""
        return self.mean.get(au, 0.0)

    def side(self, si: int, au: int) -> float:
        """Intensity of ``au`` on side ``si`` (0 image-left, 1 image-right)."""
        return self.sides[si].get(au, 0.0)
