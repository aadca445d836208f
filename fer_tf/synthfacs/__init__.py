"""SynthFACS: procedurally rendered faces with known action units, emotion and posed/spontaneous.

Tests, CI and the demo run offline and need face images whose labels a model can genuinely learn.
SynthFACS draws faces with OpenCV primitives in a face-centred coordinate frame; each of the 15
AUs of ``facs.AU_SETS["synthfacs15"]`` moves landmarks or darkens wrinkles in proportion to its
intensity, so the appearance changes visibly and monotonically from 0 to 1. Identity, pose,
lighting, background and sensor noise vary around the expression.

Only NumPy and OpenCV are imported here (no TensorFlow): the sampler runs in process pools and in
the offline mirror server. :func:`write_records` imports TensorFlow lazily because it writes
TFRecords.

Coordinates: face units, x to the image right, y down, origin near the face centre; the face is
about 1.2 units wide. "Side" ``-1`` is the image-left half of the face (the subject's right),
``+1`` the image-right half (the subject's left).

Modules:

- :mod:`~fer_tf.synthfacs.scene`: :class:`Identity`, :class:`Pose`, :class:`Lighting`;
- :mod:`~fer_tf.synthfacs.render`: :func:`render_face`, one module per facial region;
- :mod:`~fer_tf.synthfacs.labels`: which AUs an emotion switches on, valence/arousal;
- :mod:`~fer_tf.synthfacs.sampling`: :class:`SynthFace` and :func:`sample`;
- :mod:`~fer_tf.synthfacs.records`: :func:`encode_jpeg`, :func:`to_record`, :func:`write_records`.
"""

from __future__ import annotations

from fer_tf.synthfacs._common import DEFAULT_NUM_IDENTITIES, RENDERED_AUS
from fer_tf.synthfacs.records import encode_jpeg, to_record, write_records
from fer_tf.synthfacs.render import render_face
from fer_tf.synthfacs.sampling import SynthFace, sample
from fer_tf.synthfacs.scene import Identity, Lighting, Pose

__all__ = [
    "RENDERED_AUS",
    "DEFAULT_NUM_IDENTITIES",
    "Identity",
    "Pose",
    "Lighting",
    "SynthFace",
    "render_face",
    "sample",
    "encode_jpeg",
    "to_record",
    "write_records",
]
