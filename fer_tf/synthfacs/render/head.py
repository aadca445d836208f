"""The head without its features: torso, neck, ears, the face outline (AU26 drops the jaw), hair."""

from __future__ import annotations

import math

import numpy as np

from fer_tf.synthfacs._common import ellipse
from fer_tf.synthfacs.render.canvas import FACE_CY, FaceContext


def draw_body_and_back_hair(f: FaceContext) -> None:
    """Torso, neck, long hair falling behind the head, and the ears."""
    cv, idn = f.cv, f.idn
    fw, fh, fcy = idn.face_width, idn.face_height, FACE_CY
    cv.fill(ellipse(0.0, 1.45, 1.25, 0.55), idn.clothing)
    cv.fill(np.array([[-0.24, 0.3], [0.24, 0.3], [0.26, 1.05], [-0.26, 1.05]]), f.shade)
    if idn.hair_style == 2:
        back = ellipse(0.0, fcy - 0.05, fw + 0.12, fh + 0.08)
        back = np.concatenate(
            [back[back[:, 1] < 0.2], [[fw + 0.14, 0.75], [-(fw + 0.14), 0.75]]], axis=0
        )
        back = back[np.argsort(np.arctan2(back[:, 1] - 0.2, back[:, 0]))]
        cv.fill(back, idn.hair)
    for s in (-1.0, 1.0):
        cv.fill(ellipse(s * (fw - 0.01), -0.02, 0.075, 0.13), f.shade, depth=0.2)


def draw_face_outline(f: FaceContext) -> None:
    """The skin-coloured face; square jaws widen the lower half, AU26 stretches the chin down."""
    idn = f.idn
    fh, fcy = idn.face_height, FACE_CY
    face = ellipse(0.0, fcy, idn.face_width, fh)
    lower = face[:, 1] > fcy
    # Square jaws widen the lower half; the jaw drop stretches everything below the mouth.
    face[lower, 0] *= 1.0 + 0.12 * idn.jaw * np.sin(np.pi * (face[lower, 1] - fcy) / fh)
    below = np.clip((face[:, 1] - idn.mouth_y + 0.1) / (fh + fcy - idn.mouth_y + 0.1), 0.0, 1.0)
    face[:, 1] += f.drop26 * below
    f.cv.fill(face, f.skin)


def draw_front_hair(f: FaceContext) -> None:
    """The hair cap over the forehead, with a fringe for ``hair_style`` 3 (none when bald)."""
    idn = f.idn
    if idn.hair_style not in (1, 2, 3):
        return
    fw, fh, fcy = idn.face_width, idn.face_height, FACE_CY
    hl = idn.hairline + (0.1 if idn.hair_style == 3 else 0.0)
    A, B = fw + 0.035, fh + 0.06
    th0 = math.asin(max(-0.99, min(0.99, (hl - fcy) / B)))
    t = np.linspace(math.pi - th0, 2.0 * math.pi + th0, 17)
    cap = np.stack([A * np.cos(t), fcy + B * np.sin(t)], axis=1)
    xr = abs(cap[-1, 0])
    xs = np.linspace(xr, -xr, 9)
    dip = 0.06 if idn.hair_style == 3 else -0.03
    fringe = np.stack([xs, hl + dip * (1.0 - (xs / max(xr, 1e-3)) ** 2)], axis=1)
    f.cv.fill(np.concatenate([cap, fringe], axis=0), idn.hair)
