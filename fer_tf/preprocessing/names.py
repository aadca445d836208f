"""Names of the preprocessing choices, importable without TensorFlow.

The configs and CLIs validate against these before TensorFlow loads; the modules that implement
the choices (:mod:`fer_tf.preprocessing.augment`) import them from here, so each list has one home. The normalisation family names live with their arithmetic
in :mod:`fer_tf.preprocessing.normalization`, which is TensorFlow-free at import too.
"""

from __future__ import annotations

__all__ = ["AUGMENT_POLICIES"]

#: Augmentation policies by name (:func:`fer_tf.preprocessing.augment.get_policy`).
AUGMENT_POLICIES: tuple[str, ...] = ("christensen2018", "light", "none", "randaugment")
#: Earlier names, still accepted (configs written before the theses were named by author).
AUGMENT_ALIASES: dict[str, str] = {"seed000": "christensen2018"}
