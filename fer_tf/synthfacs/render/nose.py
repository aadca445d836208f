"""The nose: bridge line, wings and nostrils; AU9 raises and widens the wings."""

from __future__ import annotations

import numpy as np

from fer_tf.synthfacs._common import bezier, ellipse, scale
from fer_tf.synthfacs.render.canvas import EYE_Y, FaceContext


def draw_nose(f: FaceContext) -> None:
    """The bridge line, then per side the ala (wing) and the nostril, moved by AU9."""
    cv, skin = f.cv, f.skin
    nw, ny = f.idn.nose_width, f.idn.nose_length
    cv.line(np.array([[0.02, EYE_Y + 0.02], [0.035, ny - 0.06]]), f.shade, 1.0, depth=1.0)
    for si, s in enumerate((-1.0, 1.0)):
        a9 = f.side(si, 9)
        wing = s * (nw + 0.015 * a9)
        wy = ny - 0.035 * a9
        ala = bezier(
            np.array([s * 0.03, wy - 0.08]),
            np.array([wing * 1.35, wy - 0.01]),
            np.array([s * 0.02, wy + 0.03]),
        )
        cv.line(ala, scale(skin, 0.6), 1.3, depth=0.9)
        cv.fill(
            ellipse(s * (0.035 + 0.1 * nw), wy + 0.005, 0.022 + 0.01 * a9, 0.012 + 0.004 * a9),
            scale(skin, 0.35),
            depth=0.9,
        )
