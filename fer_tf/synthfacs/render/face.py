""":func:`render_face`: one face, drawn region by region in a fixed order.

The order is part of the output: later regions paint over earlier ones (the eyes over the
cheeks, the brows over the forehead wrinkles, the glasses over everything), and the random
stream is consumed only by the background (first) and the sensor noise (last).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fer_tf.checks import invalid
from fer_tf.synthfacs._common import RENDERED_AUS, as_rng, check_fraction, check_int
from fer_tf.synthfacs.render.background import apply_lighting, draw_background
from fer_tf.synthfacs.render.brows import draw_brows, draw_forehead, draw_glabella
from fer_tf.synthfacs.render.canvas import Canvas, FaceContext, side_intensities
from fer_tf.synthfacs.render.chin import draw_chin
from fer_tf.synthfacs.render.eyes import draw_cheeks, draw_eyes, draw_glasses
from fer_tf.synthfacs.render.head import draw_body_and_back_hair, draw_face_outline, draw_front_hair
from fer_tf.synthfacs.render.mouth import draw_mouth
from fer_tf.synthfacs.render.nose import draw_nose
from fer_tf.synthfacs.scene import Identity, Lighting, Pose

__all__ = ["render_face"]


def _validate_aus(aus: Mapping[int, float]) -> dict[int, float]:
    if not isinstance(aus, Mapping):
        raise invalid(
            "aus",
            "a mapping AU number -> intensity in [0, 1], e.g. {12: 1.0}",
            aus,
        )
    out: dict[int, float] = {}
    for au, value in aus.items():
        if isinstance(au, bool) or not isinstance(au, (int, np.integer)) or not 1 <= au <= 60:
            raise invalid("aus", "a mapping with AU numbers in 1..60 as keys", au)
        v = check_fraction(f"aus[{int(au)}]", value)
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
    size = check_int("size", size, lo=32, hi=1024)
    a = _validate_aus(aus)
    asymmetry = check_fraction("asymmetry", asymmetry, lo=-1.0, hi=1.0)
    r = as_rng(rng)
    # Always consume the same draws, so the scene does not depend on which arguments are given.
    id_rng, pose_rng, light_rng, scene_rng = r.spawn(4)
    ident = identity if identity is not None else Identity.random(id_rng)
    pose = pose if pose is not None else Pose.random(pose_rng)
    light = lighting if lighting is not None else Lighting.random(light_rng)
    return render(a, size, scene_rng, ident, pose, light, asymmetry)


def render(
    aus: dict[int, float],
    size: int,
    rng: np.random.Generator,
    idn: Identity,
    pose: Pose,
    light: Lighting,
    asymmetry: float,
) -> np.ndarray:
    """Draw a face from checked arguments (the sampler calls this directly).

    Args:
        aus: rendered AU number -> intensity in [0, 1] (already checked).
        size: image size in pixels.
        rng: the scene's random stream (background, clutter, noise).
        idn: the identity.
        pose: the pose.
        light: the lighting.
        asymmetry: in [-1, 1], see :func:`render_face`.

    Returns:
        uint8 RGB array of shape (size, size, 3).
    """
    sides = side_intensities(aus, asymmetry)
    mean = {au: 0.5 * (sides[0][au] + sides[1][au]) for au in aus}
    img, iris_u = draw_background(rng, size)
    f = FaceContext(Canvas(img, pose, size), idn, pose, sides, mean, iris_u)
    draw_body_and_back_hair(f)
    draw_face_outline(f)
    draw_front_hair(f)
    draw_cheeks(f)
    draw_forehead(f)
    draw_glabella(f)
    draw_eyes(f)
    draw_brows(f)
    draw_nose(f)
    draw_chin(f, draw_mouth(f))
    draw_glasses(f)
    return apply_lighting(img, light, rng, size)
