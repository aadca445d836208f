"""``make demo``: SynthFACS mirror → fer-tf-build-records → fer-tf-train (AU task) → report.

``python -m fer_tf.demo --output-dir runs/demo`` runs the whole chain offline on a CPU:

1. **mirror**: :class:`fer_tf.testing.mirror.Mirror` renders SynthFACS faces and serves them on
   127.0.0.1 behind an EmotioNet-format spreadsheet (``urls.xlsx``: URL, AU1..AU60 with 999 for
   unscored, plus valence/arousal/emotion/posed/subject columns). A few URLs carry injected
   faults (404, 410, 503 with ``Retry-After``, a flaky 503 that recovers, a connection reset, a
   redirect, an HTML page served as 200, a truncated JPEG), a few are served as other image
   formats, and the sheet gets one duplicate row and one bad row;
2. **records**: ``fer-tf-build-records`` (a subprocess: the real CLI and downloader over
   loopback, ``--allow-private-hosts``, ``--split-by subject`` so validation identities are held
   out); the demo checks that every injected fault landed in ``errors.jsonl`` with the expected
   category and that ``rows = written + failed + skipped``;
3. **training**: ``fer-tf-train --config demo_au`` (Christensen 2018's ``shallow_cnn`` at 64 px) on the records;
4. **evaluation** on the held-out identities (last epoch's weights, no model selection on the
   held-out split), against a majority-class baseline;
5. ``report.md`` with the build summary, the fault table, the metrics, learning curves and per-AU
   F1 bars (PNG); then the checkpoints, the SavedModel and the download cache are deleted
   (``--keep-all`` keeps them).

``--no-download`` skips steps 1–2 and writes the records straight from SynthFACS.

Modules: :mod:`~fer_tf.demo.run` (command line and steps), :mod:`~fer_tf.demo.build` (the
records step), :mod:`~fer_tf.demo.baseline`, :mod:`~fer_tf.demo.report`,
:mod:`~fer_tf.demo.plots`. Nothing here imports TensorFlow at import time.
"""

from __future__ import annotations

from fer_tf.demo.baseline import always_present_f1, baseline
from fer_tf.demo.build import (
    DEMO_FAULTS,
    DEMO_VARIANTS,
    BuildResult,
    build_via_mirror,
    make_records_direct,
)
from fer_tf.demo.report import write_report
from fer_tf.demo.run import main

__all__ = [
    "DEMO_FAULTS",
    "DEMO_VARIANTS",
    "BuildResult",
    "main",
    "build_via_mirror",
    "make_records_direct",
    "baseline",
    "always_present_f1",
    "write_report",
]
