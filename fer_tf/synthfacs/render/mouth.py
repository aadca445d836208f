"""The mouth: corners (AU12, AU15, AU20, AU23), opening (AU25, AU26), lips and teeth, and the
creases around it (nasolabial folds, AU15 marionette lines, AU20 corner creases, AU23 ridge).

Lip lines run from corner to corner; the opening, lip thickness and lift at each point blend the
two sides' intensities, so an asymmetric expression gives a lopsided mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_tf.synthfacs._common import T9, bezier, rgb, scale
from fer_tf.synthfacs.render.canvas import FaceContext

_SIDES = (-1.0, 1.0)


@dataclass
class MouthShape:
    """The mouth's geometry, shared by the lips, the creases around them and the chin.

    Attributes:
        corners: image-left and image-right corner points.
        base: mean y of the corners.
        gt, gb: per side, top and bottom of the opening (at the centre).
        ul, ll: per side, upper and lower lip thickness (at the centre).
        mx, line0: x and y of the straight corner-to-corner line at :data:`T9`.
        w: the opening's profile along the line (0 at the corners, 1 at the centre).
    """

    corners: list[np.ndarray]
    base: float
    gt: np.ndarray
    gb: np.ndarray
    ul: np.ndarray
    ll: np.ndarray
    mx: np.ndarray
    line0: np.ndarray
    w: np.ndarray

    def lerp(self, v: np.ndarray, tt: np.ndarray = T9) -> np.ndarray:
        """Blend a per-side value ``v`` from the image-left corner (tt=0) to the right (tt=1)."""
        return v[0] + (v[1] - v[0]) * tt

    def edge(self, v: np.ndarray) -> np.ndarray:
        """The lip line whose centre sits at the per-side height ``v`` (9 points)."""
        return np.stack([self.mx, self.line0 + self.w * (self.lerp(v) - self.base)], 1)


def mouth_shape(f: FaceContext) -> MouthShape:
    """Where the corners, the opening and the lips are for this face's AUs."""
    idn, my, drop26 = f.idn, f.idn.mouth_y, f.drop26
    corners = []
    for si, s in enumerate(_SIDES):
        a12, a15, a20 = f.side(si, 12), f.side(si, 15), f.side(si, 20)
        a17, a23 = f.side(si, 17), f.side(si, 23)
        dx = 0.055 * a12 + 0.1 * a20 - 0.09 * a23
        dy = -0.075 * a12 + 0.08 * a15 + 0.015 * a20 + 0.03 * a17 + 0.5 * drop26 * 0.4
        corners.append(np.array([s * (idn.mouth_width + dx), my + dy]))
    cl, cr = corners
    base = 0.5 * (cl[1] + cr[1])
    # Per side: top and bottom of the opening, upper and lower lip thickness (at the centre).
    gt, gb, ul, ll = np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2)
    for si in range(2):
        a9, a17, a23, a25 = f.side(si, 9), f.side(si, 17), f.side(si, 23), f.side(si, 25)
        # AU23 thins the red of the lips (rolled in and pressed), AU20 stretches them thin.
        thin = (1.0 - 0.85 * a23) * (1.0 - 0.35 * f.side(si, 20))
        # The chin raiser pushes the lower lip (and so the mouth centre) up.
        centre = my - 0.06 * a17 + 0.25 * (base - my)
        gt[si] = centre - 0.035 * a25 - 0.008 * a9
        gb[si] = centre + 0.075 * a25 + drop26 * 1.1
        ul[si] = idn.lip_upper * thin + 0.025 * a9
        ll[si] = idn.lip_lower * thin * (1.0 + 0.35 * a17)
    t = T9
    w = 4.0 * t * (1.0 - t)
    mx = cl[0] + (cr[0] - cl[0]) * t
    line0 = cl[1] + (cr[1] - cl[1]) * t
    return MouthShape(corners, base, gt, gb, ul, ll, mx, line0, w)


def _draw_folds(f: FaceContext, ms: MouthShape, si: int, s: float) -> None:
    """Nasolabial fold (AU12 deepens it and swings it out, AU9 a little), AU15 and AU20 creases."""
    cv, skin, dark = f.cv, f.skin, f.dark
    nw, ny = f.idn.nose_width, f.idn.nose_length
    a12 = f.side(si, 12)
    k = min(1.0, f.idn.fold_depth + 0.8 * a12 + 0.35 * f.side(si, 9))
    c = ms.corners[si]
    fold = bezier(
        np.array([s * (nw + 0.04), ny - 0.04]),
        np.array([s * (nw + 0.1 + 0.04 * a12), ny + 0.06]),
        np.array([c[0] + s * 0.05, c[1] + 0.06]),
    )
    cv.line(fold, rgb(skin, dark, 0.85 * k), 1.1, depth=0.6)
    # AU15 marionette lines and AU20 corner creases below the corners.
    a15, a20 = f.side(si, 15), f.side(si, 20)
    if a15 > 0.02:
        seg = np.array(
            [[c[0] + s * 0.01, c[1] + 0.02], [c[0] + s * 0.02, c[1] + 0.05 + 0.08 * a15]]
        )
        cv.line(seg, rgb(skin, dark, 0.9 * a15), 1.0, depth=0.6)
    if a20 > 0.02:
        seg = np.array(
            [[c[0] + s * 0.02, c[1] - 0.02], [c[0] + s * (0.03 + 0.05 * a20), c[1] + 0.01]]
        )
        cv.line(seg, rgb(skin, dark, 0.9 * a20), 1.0, depth=0.6)


def _draw_au23_ridge(f: FaceContext, ms: MouthShape, si: int, s: float) -> None:
    """AU23: the tightened lips bulge the skin around them into a ridge (an oval furrow around
    the mouth, drawn per half), bracket the corners and fan fine perioral lines."""
    a23 = f.side(si, 23)
    if a23 <= 0.02:
        return
    cv, skin, dark, c = f.cv, f.skin, f.dark, ms.corners[si]
    t, w, mx, line0, base = T9, ms.w, ms.mx, ms.line0, ms.base
    half = t <= 0.5 if si == 0 else t >= 0.5
    ring_top = np.stack([mx, line0 + w * (ms.lerp(ms.gt - ms.ul) - base) - 0.03], 1)[half]
    ring_bot = np.stack([mx, line0 + w * (ms.lerp(ms.gb + ms.ll) - base) + 0.03], 1)[half]
    tip = np.array([[c[0] + s * 0.035, c[1]]])
    if si == 0:
        ring = np.concatenate([ring_top[::-1], tip, ring_bot])
    else:
        ring = np.concatenate([ring_top, tip, ring_bot[::-1]])
    cv.line(ring, rgb(skin, dark, a23), 1.6, depth=0.7)
    # Small bulges bracket the tightened corners.
    bracket = bezier(
        np.array([c[0] + s * 0.005, c[1] - 0.055]),
        np.array([c[0] + s * 0.065, c[1]]),
        np.array([c[0] + s * 0.005, c[1] + 0.055]),
    )
    cv.line(bracket, rgb(skin, dark, a23), 1.6, depth=0.7)
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
            cv.line(seg, rgb(skin, dark, 0.8 * a23), 1.2, depth=0.7)


def _draw_lips(f: FaceContext, ms: MouthShape) -> None:
    """The red of the lips, the opening (AU25/AU26) with the upper teeth, the line between."""
    cv, idn = f.cv, f.idn
    a23m, a25m = f.m(23), f.m(25)
    cl, cr = ms.corners
    upper_in = ms.edge(ms.gt)
    lower_in = ms.edge(ms.gb)
    lower_out = ms.edge(ms.gb + ms.ll)
    # Upper outer edge with a cupid's bow; AU9 raises it.
    tb = np.array([0.225, 0.41, 0.5, 0.59, 0.775])
    uo = ms.lerp(ms.gt - ms.ul, tb) + np.array([0.003, -0.006, 0.006, -0.006, 0.003])
    upper_out = np.concatenate([[cl], np.stack([cl[0] + (cr[0] - cl[0]) * tb, uo], 1), [cr]])
    lips = np.concatenate([upper_out, lower_out[::-1][1:-1]], axis=0)
    cv.fill(lips, idn.lip, depth=0.7)
    if float(np.max(lower_in[:, 1] - upper_in[:, 1])) > 0.004:
        hole = np.concatenate([upper_in, lower_in[::-1][1:-1]], axis=0)
        cv.fill(hole, (45.0, 18.0, 22.0), depth=0.7)
        if a25m > 0.02:
            # Upper teeth fill most of the parted-lips gap.
            teeth_bot = np.minimum(
                upper_in[:, 1]
                + 0.055 * ms.w * ms.lerp(np.array([f.side(0, 25), f.side(1, 25)]))
                + 0.01 * a25m,
                lower_in[:, 1],
            )
            teeth = np.concatenate(
                [upper_in, np.stack([upper_in[::-1, 0], teeth_bot[::-1]], 1)], axis=0
            )
            cv.fill(teeth, (236.0, 232.0, 220.0), depth=0.7)
    # The line between the lips: pressed lips (AU23) make it darker and heavier.
    press = rgb(scale(idn.lip, 0.55), scale(idn.lip, 0.3), a23m)
    cv.line(upper_in, press, 1.0 + 0.6 * a23m, depth=0.7)


def draw_mouth(f: FaceContext) -> MouthShape:
    """The creases around the mouth (per side), then the lips; returns the shape for the chin."""
    ms = mouth_shape(f)
    for si, s in enumerate(_SIDES):
        _draw_folds(f, ms, si, s)
        _draw_au23_ridge(f, ms, si, s)
    _draw_lips(f, ms)
    return ms
