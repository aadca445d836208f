"""Behind the face and over the whole image: the background, then light, contrast and noise."""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from fer_tf.synthfacs.render.canvas import AA
from fer_tf.synthfacs.scene import Lighting


def draw_background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A two-colour gradient with a little clutter (up to two rectangles or discs).

    Args:
        rng: the scene's random stream (this consumes its first draws).
        size: image size in pixels.

    Returns:
        ``(image, iris_u)``: the uint8 RGB background and two uniform draws for the iris
        highlight (drawn here so that the stream stays fixed whatever the expression).
    """
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
            cv2.circle(img, (x0, y0), rad, col, -1, AA)
    iris_u = rng.random(2)
    return img, iris_u


@functools.lru_cache(maxsize=8)
def noise_bank(size: int) -> np.ndarray:
    """Fixed standard-normal noise, (2 size, 2 size, 3) float32; faces read random windows."""
    return np.random.default_rng(12345).standard_normal((2 * size, 2 * size, 3), dtype=np.float32)


def apply_lighting(
    img: np.ndarray, light: Lighting, rng: np.random.Generator, size: int
) -> np.ndarray:
    """Light gradient, contrast, brightness and sensor noise over the finished drawing.

    Args:
        img: the uint8 RGB drawing.
        light: the lighting.
        rng: the scene's random stream (the noise window is drawn from it last).
        size: image size in pixels.

    Returns:
        The uint8 RGB image.
    """
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
        bank = noise_bank(size)
        ox, oy = (int(v) for v in rng.integers(0, size, size=2))
        out += bank[oy : oy + size, ox : ox + size] * np.float32(light.noise) + np.float32(offset)
    else:
        out += np.float32(offset)
    np.clip(out, 0.0, 255.0, out=out)
    return out.astype(np.uint8)
