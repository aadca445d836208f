"""What a face expresses: emotion draws, the AUs switched on (prototypes with variation, posed
or spontaneous morphology) and valence/arousal.

Every function here consumes a fixed number of random draws, so face ``i`` of a seed is the same
whatever else is asked of the sampler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fer_tf import facs
from fer_tf.checks import did_you_mean, invalid
from fer_tf.synthfacs._common import RENDERED_AUS

# Valence/arousal anchors on the circumplex (Russell's layout, as in Bartissol 2017 Figure 3).
_VA_ANCHORS: dict[str, tuple[float, float]] = {
    "neutral": (0.0, -0.2),
    "happiness": (0.8, 0.45),
    "sadness": (-0.7, -0.4),
    "surprise": (0.25, 0.8),
    "fear": (-0.6, 0.7),
    "anger": (-0.7, 0.6),
    "disgust": (-0.65, 0.3),
}

# AUs that co-occur with an emotion's prototype often enough that real data shows them together
# (open-mouth smiles, sad chin raise, ...): AU -> probability.
_COMPANIONS: dict[str, dict[int, float]] = {
    "neutral": {},
    "happiness": {25: 0.4, 26: 0.15},
    "sadness": {15: 0.5, 17: 0.4},
    "surprise": {25: 0.8},
    "fear": {25: 0.6},
    "anger": {17: 0.3, 25: 0.15},
    "disgust": {17: 0.3, 4: 0.3, 25: 0.2},
}
# Chance that any other rendered AU joins a non-neutral expression, so every AU also varies
# independently of the emotion (otherwise a classifier could learn emotions instead of AUs).
_EXTRA_PROB: dict[int, float] = {au: 0.06 for au in RENDERED_AUS}
_EXTRA_PROB[43] = 0.2  # eyes closed belongs to no prototype; make it common enough to learn
_DROP_PROB = 0.1  # chance to drop one AU from a prototype with three or more rendered AUs
_TRACE_PROB = 0.08  # chance that an absent AU shows a sub-threshold trace


def emotion_probs(emotion_weights: Any) -> np.ndarray:
    """Emotion probabilities aligned with :data:`fer_tf.facs.EMOTIONS` (uniform for None).

    Args:
        emotion_weights: a mapping name -> weight (missing names get 0), a sequence of one weight
            per emotion, or None.

    Returns:
        Probabilities summing to 1.

    Raises:
        ValueError: unknown names, a wrong length, or weights that are negative, not finite or
            sum to 0.
    """
    names = facs.EMOTIONS
    if emotion_weights is None:
        return np.full(len(names), 1.0 / len(names))
    if isinstance(emotion_weights, Mapping):
        unknown = [k for k in emotion_weights if k not in names]
        if unknown:
            raise invalid(
                "emotion_weights",
                f"a mapping from emotion names {list(names)} to weights",
                emotion_weights,
                hint=did_you_mean(unknown[0], names),
            )
        w = np.array([float(emotion_weights.get(k, 0.0)) for k in names])
    else:
        try:
            w = np.asarray(emotion_weights, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            w = np.array([])
        if w.shape != (len(names),):
            raise invalid(
                "emotion_weights",
                f"a mapping name -> weight or a sequence of {len(names)} weights in the order "
                f"{list(names)}",
                emotion_weights,
            )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise invalid(
            "emotion_weights", "non-negative finite weights with a positive sum", emotion_weights
        )
    return w / w.sum()


def draw_expression(
    r: np.random.Generator, emotion: str, thr: float, posed: int
) -> tuple[dict[int, float], float]:
    """Nominal AU intensities and asymmetry for one face (a fixed number of draws).

    Args:
        r: the face's random stream.
        emotion: the emotion's name.
        thr: the intensity at which an AU counts as present.
        posed: 1 posed, 0 spontaneous, -1 neutral.

    Returns:
        ``(intensities, asymmetry)``: rendered AU -> intensity (present AUs above ``thr``, a few
        sub-threshold traces), and the asymmetry to render with.
    """
    u = r.random(3 * len(RENDERED_AUS) + 8)
    present_u = u[: len(RENDERED_AUS)]
    extra_u = u[len(RENDERED_AUS) : 2 * len(RENDERED_AUS)]
    trace_u = u[2 * len(RENDERED_AUS) : 3 * len(RENDERED_AUS)]
    v = u[3 * len(RENDERED_AUS) :]

    proto = {au: s for au, s in facs.EMOTION_PROTOTYPES[emotion].items() if au in RENDERED_AUS}
    active: dict[int, float] = dict(proto)
    # Variation: sometimes one AU of a larger prototype is missing ...
    if len(proto) >= 3 and v[0] < _DROP_PROB:
        keys = sorted(proto)
        active.pop(keys[int(v[1] * len(keys))])
    if emotion != "neutral":
        # ... typical companions join, and any other AU may join at random.
        for i, au in enumerate(RENDERED_AUS):
            p = _COMPANIONS[emotion].get(au, 0.0)
            if au not in active and (extra_u[i] < p or extra_u[i] > 1.0 - _EXTRA_PROB[au]):
                active[au] = 1.0
        # Eyes cannot be closed and widened at once.
        if 43 in active and 5 in active:
            active.pop(5 if 5 not in proto else 43)
    # Posed/spontaneous smile morphology (Christensen 2018): Duchenne AU6 with AU12 only if spontaneous.
    if 12 in active:
        if posed == 1:
            active.pop(6, None)
        elif posed == 0:
            active.setdefault(6, 1.0)

    out: dict[int, float] = {}
    for i, au in enumerate(RENDERED_AUS):
        if au in active:
            # Present: above the threshold with a margin; a slight prototype AU ("5B") is weaker.
            strength = active[au]
            out[au] = thr + (1.0 - thr) * (0.15 + 0.85 * present_u[i]) * (0.5 + 0.5 * strength)
        elif (
            emotion != "neutral"
            and trace_u[i] < _TRACE_PROB
            and not ((au == 6 and posed == 1 and 12 in active) or (au == 43 and 5 in active))
        ):
            out[au] = thr * (0.1 + 0.5 * present_u[i])  # a visible trace, still labelled absent
    if posed == 1:
        # Posed: clearly asymmetric, mostly stronger on the subject's left (Christensen 2018).
        asym = (0.3 + 0.35 * v[2]) * (1.0 if v[3] < 0.8 else -1.0)
    else:
        asym = 0.06 * (2.0 * v[2] - 1.0)
    return out, float(asym)


def valence_arousal(
    r: np.random.Generator, emotion: str, intensities: dict[int, float]
) -> tuple[float, float]:
    """The emotion's circumplex anchor scaled by its prototype's intensity, plus noise (sd 0.08).

    Args:
        r: the face's random stream (two normal draws).
        emotion: the emotion's name.
        intensities: the face's AU intensities.

    Returns:
        ``(valence, arousal)``, each in [-1, 1].
    """
    proto = [au for au in facs.EMOTION_PROTOTYPES[emotion] if au in intensities]
    k = float(np.mean([intensities[au] for au in proto])) if proto else 0.0
    base_v, base_a = _VA_ANCHORS[emotion]
    noise = r.normal(0.0, 0.08, size=2)
    scale = 1.0 if emotion == "neutral" else 0.55 + 0.45 * k
    v = float(np.clip(base_v * scale + noise[0], -1.0, 1.0))
    a = float(np.clip(base_a * scale + noise[1], -1.0, 1.0))
    return v, a
