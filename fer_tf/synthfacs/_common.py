"""What every SynthFACS module shares: the AU set, random streams, argument checks, colours.

NumPy only (no OpenCV, no TensorFlow).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fer_tf import facs
from fer_tf.checks import check_number

RENDERED_AUS: tuple[int, ...] = facs.AU_SETS["synthfacs15"]
DEFAULT_NUM_IDENTITIES = 500

# Sub-stream tags for np.random.SeedSequence entropy: sample i of seed s always uses the stream
# (s, FACE, i), identity k the stream (s, IDENTITY, k), whatever n or the consumed prefix.
FACE = 0
IDENTITY = 1
SPLIT = 2


def _plain(value: Any) -> Any:
    # NumPy scalars (np.int64 from an array, np.float32 intensities) are numbers to the user;
    # check_number accepts only Python int/float.
    return value.item() if isinstance(value, np.generic) else value


def check_fraction(
    name: str, value: Any, *, lo: float = 0.0, hi: float = 1.0, exclusive: bool = False
) -> float:
    """``value`` as a float in ``[lo, hi]``, else the library's ValueError naming ``name``.

    Args:
        name: the parameter name.
        value: the given value (a Python or NumPy number).
        lo: lower bound.
        hi: upper bound.
        exclusive: the open interval ``(lo, hi)`` instead.

    Returns:
        The value as a float.

    Raises:
        ValueError: not a number, NaN, or out of range.
    """
    if exclusive:
        return float(check_number(name, _plain(value), gt=lo, lt=hi))
    return float(check_number(name, _plain(value), min=lo, max=hi))


def check_int(name: str, value: Any, *, lo: int, hi: int | None = None) -> int:
    """``value`` as an int in ``[lo, hi]`` (``hi=None``: no upper bound), else ValueError.

    Args:
        name: the parameter name.
        value: the given value (a Python or NumPy integer; never a bool).
        lo: inclusive lower bound.
        hi: inclusive upper bound, or None.

    Returns:
        The value as an int.

    Raises:
        ValueError: not an integer, or out of range.
    """
    return int(check_number(name, _plain(value), min=lo, max=hi, integer=True))


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator, an int seed or None (fresh entropy).

    Args:
        rng: the given random source.

    Returns:
        A numpy Generator.

    Raises:
        ValueError: for anything else.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(
        f"The 'rng' parameter must be a numpy Generator, an int seed or None. Got {rng!r} instead."
    )


def rgb(lo: Sequence[float], hi: Sequence[float], t: float) -> tuple[float, float, float]:
    """The colour ``t`` of the way from ``lo`` to ``hi`` (``t=0``: ``lo``)."""
    return (
        lo[0] + (hi[0] - lo[0]) * t,
        lo[1] + (hi[1] - lo[1]) * t,
        lo[2] + (hi[2] - lo[2]) * t,
    )


def scale(c: Sequence[float], k: float) -> tuple[float, float, float]:
    """The colour ``c`` times ``k``, capped at 255."""
    return (min(255.0, c[0] * k), min(255.0, c[1] * k), min(255.0, c[2] * k))


# Unit circle (32 points) and 9-point parameters shared by the drawing code.
T_CIRCLE = np.linspace(0.0, 2.0 * math.pi, 33)[:-1]
COS, SIN = np.cos(T_CIRCLE), np.sin(T_CIRCLE)
T9 = np.linspace(0.0, 1.0, 9)
X9 = np.linspace(-1.0, 1.0, 9)


def bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, t: np.ndarray = T9) -> np.ndarray:
    """Quadratic Bezier points (len(t), 2)."""
    a = (1.0 - t)[:, None]
    b = t[:, None]
    return a * a * p0 + 2.0 * a * b * p1 + b * b * p2


def ellipse(cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    """32 points of the axis-aligned ellipse centred at ``(cx, cy)`` with half-axes ax, ay."""
    return np.stack([cx + ax * COS, cy + ay * SIN], axis=1)
