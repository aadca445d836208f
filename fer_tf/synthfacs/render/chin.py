"""The chin: AU17 raises the chin boss, deepens the crease under the lower lip, dimples the skin."""

from __future__ import annotations

import numpy as np

from fer_tf.synthfacs._common import COS, SIN, X9, bezier, rgb, scale
from fer_tf.synthfacs.render.canvas import FaceContext
from fer_tf.synthfacs.render.mouth import MouthShape


def draw_chin(f: FaceContext, ms: MouthShape) -> None:
    """Per side with AU17: the boss highlight, the mentolabial crease and the boss's shadow."""
    cv, skin, dark = f.cv, f.skin, f.dark
    for si, s in enumerate((-1.0, 1.0)):
        a17 = f.side(si, 17)
        if a17 <= 0.02:
            continue
        cb = float(ms.gb[si] + ms.ll[si]) + 0.04 + f.drop26
        # The boss bulges up (a highlight, drawn per half), the mentolabial sulcus above it
        # deepens into a curved crease and the skin over the boss dimples.
        half = COS * s >= -1e-9
        boss = np.stack([s * 0.095 * np.abs(COS[half]), cb + 0.075 + 0.055 * SIN[half]], 1)
        boss = boss[np.argsort(boss[:, 1])]
        cv.fill(
            np.concatenate([boss, [[0.0, cb + 0.13], [0.0, cb + 0.02]]]),
            rgb(skin, scale(skin, 1.12), 0.8 * a17),
            depth=0.5,
        )
        crease = bezier(
            np.array([s * 0.11, cb + 0.02]),
            np.array([s * 0.06, cb - 0.02]),
            np.array([0.0, cb - 0.015]),
        )
        cv.line(crease, rgb(skin, dark, a17), 1.9, depth=0.6)
        shadow = np.stack([s * 0.085 * X9[4:], cb + 0.13 - 0.03 * X9[4:] ** 2], 1)
        cv.line(shadow, rgb(skin, dark, 0.6 * a17), 1.3, depth=0.5)
