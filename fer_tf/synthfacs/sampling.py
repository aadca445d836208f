"""Sampling labelled faces: :class:`SynthFace` and :func:`sample`.

Face ``i`` of seed ``s`` comes from its own random stream ``(s, FACE, i)``; identity ``k`` from
``(s, IDENTITY, k)``. Only NumPy and OpenCV are imported (the sampler runs in process pools and in
the offline mirror server).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fer_tf import facs
from fer_tf.synthfacs._common import (
    DEFAULT_NUM_IDENTITIES,
    FACE,
    IDENTITY,
    check_fraction,
    check_int,
)
from fer_tf.synthfacs.labels import draw_expression, emotion_probs, valence_arousal
from fer_tf.synthfacs.render.face import render
from fer_tf.synthfacs.scene import Identity, Lighting, Pose

__all__ = ["SynthFace", "sample"]


@dataclass
class SynthFace:
    """One rendered face with its labels in record-schema terms.

    Attributes:
        image: uint8 RGB array (size, size, 3).
        aus: the label columns (AU numbers), as requested from :func:`sample`.
        au_labels: int8 array aligned with ``aus``: 1 present, 0 absent, -1 unknown. Columns for
            AUs that SynthFACS does not render are 0 (the image really shows none of them).
        au_intensity: float32 array aligned with ``aus``: the true rendered intensity (on the
            stronger side of the face), also where the label is marked unknown.
        emotion: index into :data:`fer_tf.facs.EMOTIONS` (0 = neutral).
        valence, arousal: in [-1, 1].
        posed: 1 posed, 0 spontaneous, -1 for neutral faces (no expression to pose).
        subject: identity id, ``"synth-000123"``; shared by every face of that identity.
        index: the sample index (sample ``i`` of a seed is the same whatever ``n`` is).
        seed: the seed the face was sampled with.
        asymmetry: the asymmetry the face was rendered with (see :func:`render_face`).
    """

    image: np.ndarray
    aus: tuple[int, ...]
    au_labels: np.ndarray
    au_intensity: np.ndarray
    emotion: int
    valence: float
    arousal: float
    posed: int
    subject: str
    index: int
    seed: int = 0
    asymmetry: float = 0.0

    @property
    def emotion_name(self) -> str:
        """The emotion's name, e.g. ``"happiness"``."""
        return facs.EMOTIONS[self.emotion]

    @property
    def source(self) -> str:
        """Stable source string ``synthfacs://<seed>/<index>`` (hashed into the record id)."""
        return f"synthfacs://{self.seed}/{self.index}"


@functools.lru_cache(maxsize=4096)
def _identity(seed: int, k: int) -> Identity:
    # Cached: a pool of a few hundred identities serves thousands of faces.
    return Identity.random(np.random.default_rng([seed, IDENTITY, k]))


def _subject(k: int) -> str:
    return f"synth-{k:06d}"


def _check_sample_args(
    n: Any,
    seed: Any,
    size: Any,
    aus: Any,
    unknown_fraction: Any,
    num_identities: Any,
    present_threshold: Any,
    posed_fraction: Any,
    start: Any,
) -> tuple[tuple[int, ...], int]:
    check_int("n", n, lo=0)
    check_int("seed", seed, lo=0)
    check_int("size", size, lo=32, hi=1024)
    check_int("start", start, lo=0)
    label_aus = facs.parse_aus(aus)
    check_fraction("unknown_fraction", unknown_fraction, lo=0.0, hi=1.0)
    if num_identities is None:
        pool = DEFAULT_NUM_IDENTITIES
    else:
        pool = check_int("num_identities", num_identities, lo=1, hi=999_999)
    check_fraction("present_threshold", present_threshold, exclusive=True)
    check_fraction("posed_fraction", posed_fraction)
    return label_aus, pool


def sample(
    n: int,
    *,
    seed: int,
    size: int = 128,
    aus: Sequence[int] | str = "synthfacs15",
    unknown_fraction: float = 0.0,
    num_identities: int | None = None,
    emotion_weights: Mapping[str, float] | Sequence[float] | None = None,
    present_threshold: float = 0.5,
    posed_fraction: float = 0.5,
    pose_jitter: float = 1.0,
    start: int = 0,
) -> Iterator[SynthFace]:
    """Yield ``n`` labelled SynthFACS faces, deterministically for ``seed``.

    Face ``i`` comes from its own random stream ``(seed, i)``, so it is the same whatever ``n``,
    ``start`` or how much of the iterator is consumed; different label columns (``aus``) or
    ``unknown_fraction`` change only the labels, never the image.

    How a face is made: an identity is drawn from a pool of ``num_identities``; an emotion from
    ``emotion_weights``; the emotion's prototype AUs (Bartissol 2017 Table 2, rendered ones only) are
    switched on, with variation (one AU of a 3+ AU prototype dropped 10% of the time, typical
    companions such as AU25 with surprise, and any other AU at random 6% of the time, AU43 12%);
    present AUs get intensities above ``present_threshold``, a few absent ones a sub-threshold
    trace. Non-neutral faces are posed with probability ``posed_fraction``: posed faces are
    rendered asymmetrically (one side 30–65% weaker, usually the subject's right) and never show
    AU6 with AU12; spontaneous faces are symmetric (within 6%) and every AU12 comes with AU6
    (a Duchenne smile). Valence/arousal are the emotion's circumplex anchor scaled by the
    prototype intensity, plus Gaussian noise (sd 0.08).

    Args:
        n: number of faces.
        seed: non-negative int.
        size: image size in pixels (32..1024).
        aus: label columns: an AU set name or AU numbers (``facs.parse_aus`` syntax). Columns for
            AUs that are not rendered are labelled 0 (absent).
        unknown_fraction: fraction of AU labels marked -1 (unknown), independently per label,
            like EmotioNet's 999; the image and ``au_intensity`` are unaffected.
        num_identities: size of the identity pool (default :data:`DEFAULT_NUM_IDENTITIES`);
            subject ids are ``synth-<k>`` for k in the pool, so held-out-subject splits work.
        emotion_weights: relative frequency of each emotion: a mapping name -> weight (missing
            names get 0) or a sequence aligned with :data:`fer_tf.facs.EMOTIONS`; uniform if None.
        present_threshold: intensity at which an AU counts as present (label 1).
        posed_fraction: probability that a non-neutral face is posed.
        pose_jitter: scales head-pose variation (roll, yaw, scale, shift) in [0, 2]; 0 gives
            frontal, centred faces, 1 the default residual misalignment of an aligned face
            crop (see :meth:`Pose.random`).
        start: index of the first face (to continue a sequence or to shard work).

    Yields:
        :class:`SynthFace` objects with ``index`` from ``start`` to ``start + n - 1``.

    Raises:
        ValueError: for any argument outside its allowed values (raised on the call, before the
            first face).
    """
    label_aus, pool = _check_sample_args(
        n,
        seed,
        size,
        aus,
        unknown_fraction,
        num_identities,
        present_threshold,
        posed_fraction,
        start,
    )
    probs = emotion_probs(emotion_weights)
    return _sample_iter(
        int(n),
        int(seed),
        int(size),
        label_aus,
        float(unknown_fraction),
        pool,
        probs,
        float(present_threshold),
        float(posed_fraction),
        int(start),
        check_fraction("pose_jitter", pose_jitter, lo=0.0, hi=2.0),
    )


def _sample_iter(
    n: int,
    seed: int,
    size: int,
    label_aus: tuple[int, ...],
    unknown_fraction: float,
    pool: int,
    probs: np.ndarray,
    thr: float,
    posed_fraction: float,
    start: int,
    pose_jitter: float,
) -> Iterator[SynthFace]:
    cdf = np.cumsum(probs)
    for i in range(start, start + n):
        r = np.random.default_rng([seed, FACE, i])
        u = r.random(3)
        k = int(u[0] * pool)
        emo_idx = min(int(np.searchsorted(cdf, u[1] * cdf[-1], side="right")), len(cdf) - 1)
        emotion = facs.EMOTIONS[emo_idx]
        posed = -1 if emotion == "neutral" else int(u[2] < posed_fraction)
        intensities, asym = draw_expression(r, emotion, thr, posed)
        valence, arousal = valence_arousal(r, emotion, intensities)
        unknown_u = r.random(len(label_aus))
        # Same stream layout as render_face(rng=...): the identity slot is unused here because
        # the identity comes from the subject pool.
        _, pose_rng, light_rng, scene_rng = r.spawn(1)[0].spawn(4)
        pose = Pose.random(pose_rng, jitter=pose_jitter)
        image = render(
            intensities,
            size,
            scene_rng,
            _identity(seed, k),
            pose,
            Lighting.random(light_rng),
            asym,
        )
        inten = np.array([intensities.get(au, 0.0) for au in label_aus], dtype=np.float32)
        labels = (inten >= thr).astype(np.int8)
        labels[unknown_u < unknown_fraction] = -1
        yield SynthFace(
            image=image,
            aus=label_aus,
            au_labels=labels,
            au_intensity=inten,
            emotion=emo_idx,
            valence=valence,
            arousal=arousal,
            posed=posed,
            subject=_subject(k),
            index=i,
            seed=seed,
            asymmetry=asym,
        )
