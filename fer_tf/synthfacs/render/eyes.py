"""The eye region: cheeks (AU6), lids and irises (AU5, AU6, AU7, AU43), crow's feet, glasses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_tf.synthfacs._common import COS, SIN, X9, bezier, ellipse, rgb, scale
from fer_tf.synthfacs.render.canvas import EYE_Y, FaceContext

_SIDES = (-1.0, 1.0)


def draw_cheeks(f: FaceContext) -> None:
    """AU6 raises the cheeks (AU12 a little) and bunches a furrow under the lower lid."""
    cv, idn, skin, ey = f.cv, f.idn, f.skin, EYE_Y
    for si, s in enumerate(_SIDES):
        a6, a12 = f.side(si, 6), f.side(si, 12)
        cx = s * (idn.eye_spacing + 0.02)
        cy = ey + 0.2 - 0.06 * a6 - 0.02 * a12
        if a6 > 0.02:
            cv.fill(ellipse(cx, cy, 0.12, 0.07), rgb(skin, scale(skin, 0.8), a6), depth=0.5)
            # Infra-orbital furrow: the raised cheek bunches skin under the lower lid.
            ew = idn.eye_width
            arc = bezier(
                np.array([cx - s * ew * 0.9, ey + 0.075 - 0.02 * a6]),
                np.array([cx, ey + 0.13 - 0.03 * a6]),
                np.array([cx + s * ew * 1.1, ey + 0.06 - 0.02 * a6]),
            )
            cv.line(arc, rgb(skin, f.dark, a6), 1.6, depth=0.5)


@dataclass
class _Lids:
    """One eye's outline: lid x positions, upper and lower lid y, and the closed polygon."""

    x: np.ndarray
    y_up: np.ndarray
    y_lo: np.ndarray
    eye: np.ndarray
    tilt: np.ndarray
    shape: np.ndarray
    up: float


def _lids(f: FaceContext, si: int, s: float) -> _Lids:
    idn, ey = f.idn, EYE_Y
    ew, eh = idn.eye_width, idn.eye_height
    a5, a6, a7, a43 = f.side(si, 5), f.side(si, 6), f.side(si, 7), f.side(si, 43)
    a4 = f.side(si, 4)
    cx = s * idn.eye_spacing
    up = eh * (1.0 + 1.0 * a5 - 0.1 * a7 - 0.12 * a6 - 0.25 * a4)
    lo = eh * 0.7 * (1.0 - 0.3 * a6)
    up = up * (1.0 - a43) - 0.8 * lo * a43  # closing: the upper lid comes down to the lower
    xs = X9 * ew
    shape = 1.0 - X9 * X9
    # Outer corner sits slightly higher. AU7 raises the lower lid and straightens it (a flat
    # line across the lower iris); the upper lid barely moves, so the eye narrows from below
    # but stays open with the iris showing, unlike AU43 where the upper lid comes down.
    tilt = -0.012 * s * X9
    y_up = ey + tilt - up * shape**0.8
    y_lo = ey + tilt + lo * (1.0 - 0.55 * a7) * shape - 0.25 * eh * a7 * shape**0.3
    y_lo = np.maximum(y_lo, y_up)
    x = cx + xs
    eye = np.concatenate([np.stack([x, y_up], 1), np.stack([x[::-1], y_lo[::-1]], 1)], axis=0)
    return _Lids(x, y_up, y_lo, eye, tilt, shape, up)


def _draw_iris(f: FaceContext, lids: _Lids, cx: float) -> None:
    """Iris and pupil clipped by the lids (narrowing and closing cover them), and a highlight."""
    cv, idn, ey = f.cv, f.idn, EYE_Y
    ew, eh = idn.eye_width, idn.eye_height
    x, y_up, y_lo = lids.x, lids.y_up, lids.y_lo
    gazex, gazey = f.pose.gaze
    ir = ew * 0.48
    icx = cx + gazex * ew * 0.5
    icy = ey + gazey * ew * 0.5
    ix = icx + ir * COS
    top = np.interp(ix, x, y_up)
    bot = np.interp(ix, x, y_lo)
    iy = np.clip(icy + ir * SIN, top, np.maximum(top, bot))
    cv.fill(np.stack([ix, iy], 1), idn.iris, depth=0.6)
    px_ = icx + ir * 0.45 * COS
    py_ = np.clip(icy + ir * 0.45 * SIN, np.interp(px_, x, y_up), np.interp(px_, x, y_lo))
    cv.fill(np.stack([px_, np.maximum(py_, np.interp(px_, x, y_up))], 1), (15, 12, 12), 0.6)
    if lids.up > 0.3 * eh:
        hx, hy = icx + ir * (0.2 + 0.2 * f.iris_u[0]), icy - ir * 0.3
        cv.fill(ellipse(hx, hy, ir * 0.15, ir * 0.15), (250, 250, 250), depth=0.6)


def _draw_eye(f: FaceContext, si: int, s: float) -> None:
    cv, idn, skin, dark, ey = f.cv, f.idn, f.skin, f.dark, EYE_Y
    ew, eh = idn.eye_width, idn.eye_height
    a6, a7, a43 = f.side(si, 6), f.side(si, 7), f.side(si, 43)
    cx = s * idn.eye_spacing
    lids = _lids(f, si, s)
    x, eye, tilt, shape = lids.x, lids.eye, lids.tilt, lids.shape
    if a7 > 0.02:
        # The tensed orbicularis bulges under the raised lid, bounded by a furrow below it.
        furrow = ey + tilt + (eh * 0.45 + 0.03 * a7) * shape**0.7 + 0.012
        bulge = np.concatenate([eye[9:], np.stack([x, furrow], 1)], axis=0)
        cv.fill(bulge, rgb(skin, scale(skin, 1.12), a7), depth=0.6)
        cv.line(np.stack([x, furrow], 1)[1:-1], rgb(skin, dark, a7), 1.3, depth=0.6)
    # Lid crease: AU5 pulls the lid up toward it, AU43 and AU7 hide it.
    crease = np.stack([x[1:-1], ey + tilt[1:-1] - (eh * 1.9) * shape[1:-1] ** 0.6], 1)
    cv.line(crease, rgb(skin, dark, 0.45 * (1.0 - a43)), 1.0, depth=0.6)
    cv.fill(eye, (238.0, 236.0, 230.0), depth=0.6)
    _draw_iris(f, lids, cx)
    # Upper lid line (lashes) thick, lower lid thin; AU7 darkens the lower lid.
    cv.line(eye[:9], (35.0, 25.0, 25.0), 1.8, depth=0.6)
    cv.line(eye[9:], rgb(scale(skin, 0.7), scale(skin, 0.45), a7), 1.0, depth=0.6)
    # Crow's feet (AU6): wrinkles fanning out from the outer corner.
    if a6 > 0.02:
        ox = cx + s * ew * 1.15
        for k, dy in enumerate((-0.035, 0.0, 0.035)):
            length = 0.04 + 0.08 * a6
            seg = np.array([[ox, ey + dy * 0.5], [ox + s * length, ey + dy * (1.4 + 0.3 * k / 2)]])
            cv.line(seg, rgb(skin, dark, a6), 1.4, depth=0.5)


def draw_eyes(f: FaceContext) -> None:
    """Both eyes: AU5 widens, AU7 narrows from below, AU43 closes, AU6 adds crow's feet."""
    for si, s in enumerate(_SIDES):
        _draw_eye(f, si, s)


def draw_glasses(f: FaceContext) -> None:
    """Round (``glasses`` 1) or rectangular (2) frames: a partial occlusion of the eyes."""
    cv, idn, ey = f.cv, f.idn, EYE_Y
    if not idn.glasses:
        return
    ew = idn.eye_width
    rx, ry = ew * 1.45, ew * (1.05 if idn.glasses == 1 else 0.8)
    for s in _SIDES:
        cx = s * idn.eye_spacing
        if idn.glasses == 1:
            rim = ellipse(cx, ey + 0.01, rx, ry)
        else:
            rim = np.array(
                [[cx - rx, ey - ry], [cx + rx, ey - ry], [cx + rx, ey + ry], [cx - rx, ey + ry]]
            )
        cv.line(rim, idn.frame, 1.6, depth=0.7, closed=True)
        cv.line(
            np.array([[cx + s * rx, ey - 0.02], [s * (idn.face_width - 0.02), ey - 0.04]]),
            idn.frame,
            1.4,
            depth=0.4,
        )
    bridge = np.array([[-idn.eye_spacing + rx, ey - 0.01], [idn.eye_spacing - rx, ey - 0.01]])
    cv.line(bridge, idn.frame, 1.4, depth=0.8)
