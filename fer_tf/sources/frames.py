"""Frame selection of the sequence and video sources (``--frames SPEC``, ``--neutral-first``).

A sequence (CK+, MUG, BP4D task, DISFA video, a range of a video file) has ``n`` frames at
positions ``0 .. n-1``. A :class:`FrameSpec` picks positions from it:

=================  ================================================================================
``all``            every frame.
``every:N``        positions ``0, N, 2N, ...`` (N >= 1; ``every:1`` is ``all``).
``last:K``         the last K frames: the apex of a neutral -> apex sequence (CK+).
``later-half``     positions ``n // 2 .. n - 1`` (Athanasiadis 2022 on CK+ and MUG). For a
                   neutral -> apex -> neutral sequence (MUG) this is apex *and* offset.
``middle-third``   positions ``n // 3 .. n - n // 3 - 1``: around the apex of a
                   neutral -> apex -> neutral sequence (the MUG default).
``fps:F``          video source only: one frame every ``1 / F`` seconds of the video's own rate,
                   the frame nearest each time ``0, 1/F, 2/F, ...``; frame 0 always included.
=================  ================================================================================

``neutral_first`` (the ``--neutral-first`` flag of CK+ and MUG) adds position 0 labelled as
*neutral*: emotion neutral, every AU absent (intensity 0), whatever the spec selects. When the spec
already selects position 0 (``all``, ``every:N``) that frame becomes the neutral one; it is never
taken twice. This is the usual "first frame as neutral" of 7- and 8-class CK+ protocols.

This module imports no TensorFlow.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fer_tf.checks import did_you_mean
from fer_tf.sources.base import SourceError, SourceOption

__all__ = [
    "FrameSpec",
    "SPEC_KINDS",
    "parse_frames",
    "select_frames",
    "FRAMES_OPTION",
    "NEUTRAL_FIRST_OPTION",
]

#: Spec kinds with the syntax shown in errors.
SPEC_KINDS: dict[str, str] = {
    "all": "all",
    "every": "every:N",
    "last": "last:K",
    "later-half": "later-half",
    "middle-third": "middle-third",
    "fps": "fps:F",
}

_SPEC = re.compile(r"^\s*([a-z\-]+)\s*(?::\s*([^\s]+)\s*)?$")

#: The ``frames`` option every sequence source declares. Its default is None here (the CLI adds
#: one flag for every source); each source resolves None to its own ``default_frames``.
FRAMES_OPTION = SourceOption(
    "frames",
    "frames taken from each sequence: all, every:N, last:K, later-half, middle-third, fps:F "
    "(video); default per source",
    str,
    None,
)
#: The ``neutral_first`` flag of CK+ and MUG.
NEUTRAL_FIRST_OPTION = SourceOption(
    "neutral_first",
    "also take each sequence's first frame, labelled neutral (emotion neutral, AUs absent)",
    bool,
    False,
)


@dataclass(frozen=True)
class FrameSpec:
    """A parsed frame selection.

    Attributes:
        kind: one of :data:`SPEC_KINDS`.
        value: N of ``every:N``, K of ``last:K``, F of ``fps:F``; 0 for the others.
    """

    kind: str
    value: float = 0

    def __str__(self) -> str:
        if self.kind in ("every", "last"):
            return f"{self.kind}:{int(self.value)}"
        if self.kind == "fps":
            return f"fps:{self.value:g}"
        return self.kind

    def select(self, n: int, fps: float = 0.0) -> list[int]:
        """Positions ``0 <= p < n`` this spec picks, ascending.

        Args:
            n: number of frames in the sequence.
            fps: the video's frame rate (``fps:F`` only; 0 when unknown).

        Returns:
            The sorted positions (empty when ``n`` is 0).

        Raises:
            SourceError: ``fps:F`` on a video whose rate is unknown.
        """
        if n <= 0:
            return []
        if self.kind == "all":
            return list(range(n))
        if self.kind == "every":
            return list(range(0, n, int(self.value)))
        if self.kind == "last":
            return list(range(max(0, n - int(self.value)), n))
        if self.kind == "later-half":
            return list(range(n // 2, n))
        if self.kind == "middle-third":
            lo, hi = n // 3, n - n // 3
            return list(range(lo, max(hi, lo + 1)))
        if fps <= 0 or not math.isfinite(fps):
            raise SourceError(
                f"The frame selection '{self}' needs the video's frame rate, which its container "
                "does not give. Use 'every:N' instead."
            )
        step = fps / self.value  # video frames per sample
        if step <= 1:
            return list(range(n))  # sampling faster than the video: every frame, once
        # Frame nearest each sample time k / F (half up, so 0.5 steps are not banker-rounded).
        picked = (int(k * step + 0.5) for k in range(int(n / step) + 2))
        return sorted({p for p in picked if p < n})


def parse_frames(spec: object, *, allow_fps: bool = False, name: str = "frames") -> FrameSpec:
    """Parse a frame selection string (``"last:3"``).

    Args:
        spec: the string (a :class:`FrameSpec` is returned as is).
        allow_fps: accept ``fps:F`` (the video source).
        name: the option name for messages.

    Returns:
        The :class:`FrameSpec`.

    Raises:
        SourceError: not a valid spec; the message lists the accepted forms.
    """
    if isinstance(spec, FrameSpec):
        kinds_ok = allow_fps or spec.kind != "fps"
        if kinds_ok:
            return spec
    kinds = [k for k in SPEC_KINDS if allow_fps or k != "fps"]
    accepted = "one of " + ", ".join(repr(SPEC_KINDS[k]) for k in kinds)

    def bad(extra: str = "") -> SourceError:
        return SourceError(
            f"The '{name}' parameter must be {accepted}. Got {spec!r} instead.{extra}"
        )

    m = _SPEC.match(spec) if isinstance(spec, str) else None
    if m is None:
        raise bad()
    kind, arg = m.group(1), m.group(2)
    if kind not in kinds:
        hint = " 'fps:F' is for the 'video' source only." if kind == "fps" else ""
        raise bad(hint or did_you_mean(kind, kinds))
    takes_arg = kind in ("every", "last", "fps")
    if takes_arg != (arg is not None):
        raise bad(f" '{kind}' is written '{SPEC_KINDS[kind]}'.")
    if not takes_arg:
        return FrameSpec(kind)
    if kind == "fps":
        try:
            value = float(arg)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise bad(" F must be a number > 0.")
        return FrameSpec(kind, value)
    if not arg.isdigit() or int(arg) < 1:
        raise bad(f" {'N' if kind == 'every' else 'K'} must be an integer >= 1.")
    return FrameSpec(kind, int(arg))


def select_frames(
    spec: FrameSpec, n: int, *, neutral_first: bool = False, fps: float = 0.0
) -> list[tuple[int, bool]]:
    """``(position, is_neutral)`` for the frames to take from a sequence of ``n`` frames.

    Args:
        spec: the selection.
        n: number of frames.
        neutral_first: add position 0 as a neutral frame (see the module docstring).
        fps: the video's frame rate, for ``fps:F``.

    Returns:
        Ascending positions, each once; ``is_neutral`` is True only for position 0 with
        ``neutral_first``.
    """
    picked = spec.select(n, fps)
    if neutral_first and n > 0 and (not picked or picked[0] != 0):
        picked = [0, *picked]
    return [(p, neutral_first and p == 0) for p in picked]
