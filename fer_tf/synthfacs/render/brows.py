"""The upper face: forehead wrinkles (AU1, AU2), glabella lines (AU4), nose-bridge wrinkles (AU9)
and the brows themselves (AU1 inner up, AU2 outer up, AU4 down and together, AU9 down)."""

from __future__ import annotations

import numpy as np

from fer_tf.synthfacs._common import T9, bezier, rgb, scale
from fer_tf.synthfacs.render.canvas import EYE_Y, FaceContext

_SIDES = (-1.0, 1.0)


def draw_forehead(f: FaceContext) -> None:
    """Horizontal forehead wrinkles: AU1 across the centre, AU2 over each outer brow."""
    cv, skin, dark, by = f.cv, f.skin, f.dark, f.idn.brow_y
    a1m = f.m(1)
    if a1m > 0.02:
        for k in range(3):
            y = by - 0.13 - 0.055 * k
            half = 0.06 + 0.1 * a1m
            seg = bezier(
                np.array([-half, y + 0.01]), np.array([0.0, y - 0.02]), np.array([half, y + 0.01])
            )
            cv.line(seg, rgb(skin, dark, 0.9 * a1m), 1.0, depth=0.3)
    for si, s in enumerate(_SIDES):
        a2 = f.side(si, 2)
        if a2 > 0.02:
            for k in range(2):
                y = by - 0.11 - 0.06 * k
                x0, x1 = s * 0.2, s * (0.2 + 0.1 + 0.14 * a2)
                seg = bezier(
                    np.array([x0, y]),
                    np.array([(x0 + x1) / 2, y - 0.025]),
                    np.array([x1, y + 0.02]),
                )
                cv.line(seg, rgb(skin, dark, 0.9 * a2), 1.0, depth=0.3)


def draw_glabella(f: FaceContext) -> None:
    """AU4's furrows between the brows and AU9's wrinkles across the nose bridge."""
    cv, skin, dark, by = f.cv, f.skin, f.dark, f.idn.brow_y
    a9m = f.m(9)
    for si, s in enumerate(_SIDES):
        a4 = f.side(si, 4)
        if a4 > 0.02:
            # Corrugator: vertical furrows between the brows, converging downward; procerus: a
            # short horizontal fold at the root of the nose, below the lowered inner brows.
            seg = np.array([[s * 0.05, by - 0.03], [s * (0.04 - 0.01 * a4), by + 0.03 + 0.07 * a4]])
            cv.line(seg, rgb(skin, dark, a4), 1.4 + 0.6 * a4, depth=0.6)
            fold = np.array([[s * 0.008, by + 0.125], [s * 0.035, by + 0.12 + 0.005 * a4]])
            cv.line(fold, rgb(skin, dark, 0.6 * a4), 1.0, depth=0.7)
    if a9m > 0.02:
        for k in range(3):
            y = EYE_Y + 0.01 + 0.035 * k
            half = 0.03 + 0.05 * a9m
            seg = np.array([[-half, y + 0.01], [0.0, y - 0.008], [half, y + 0.01]])
            cv.line(seg, rgb(skin, dark, a9m), 1.4, depth=0.8)


def draw_brows(f: FaceContext) -> None:
    """Both brows, tapered toward the temple, moved by AU1, AU2, AU4 and AU9."""
    idn, by = f.idn, f.idn.brow_y
    for si, s in enumerate(_SIDES):
        a1, a2, a4, a9 = f.side(si, 1), f.side(si, 2), f.side(si, 4), f.side(si, 9)
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
        top = bezier(inner, mid, outer)
        taper = (1.0 - 0.55 * T9)[:, None] * idn.brow_thickness
        bottom = top + np.hstack([np.zeros_like(taper), taper])
        brow = np.concatenate([top, bottom[::-1]], axis=0)
        f.cv.fill(brow, scale(idn.hair, 0.85), depth=0.5)
