"""JAFFE: the Japanese Female Facial Expression database (Lyons, Kamachi, Gyoba 1998).

213 grey 256x256 TIFFs of 10 subjects, named ``KA.AN1.39.tiff``: subject ``KA``, expression code
``AN`` (AN DI FE HA NE SA SU) with repeat index ``1``, image number ``39``. The distribution puts
them in one folder (``jaffe/`` or, in the 2019+ Zenodo release, ``jaffedbase/``) next to a README
and the semantic-ratings file; ``--input`` is that folder (or its parent holding ``jaffedbase/`` or
``jaffe/``). Files not named like that are skipped and reported. JAFFE has no partition: the source
asks for 10 folds by subject (leave-one-subject-out), and ``--split-by subject`` keeps subjects
apart in train/val.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fer_tf.sources._common import root_error, sorted_entries
from fer_tf.sources.base import Issue, Report, Source, SourceItem, register_source

__all__ = ["JaffeSource", "JAFFE_CODES"]

#: JAFFE's expression codes -> our emotion names (``emotion_names`` follows this order).
JAFFE_CODES = {
    "AN": "anger",
    "DI": "disgust",
    "FE": "fear",
    "HA": "happiness",
    "NE": "neutral",
    "SA": "sadness",
    "SU": "surprise",
}
_NAME = re.compile(r"^([A-Za-z]{2})\.([A-Za-z]{2})(\d+)\.(\d+)\.tiff?$", re.IGNORECASE)
_SUBFOLDERS = ("jaffedbase", "jaffe")


@register_source
class JaffeSource(Source):
    """JAFFE TIFFs in one folder."""

    name = "jaffe"
    description = "JAFFE: 213 grey TIFFs KA.AN1.39.tiff of 10 subjects, 7 emotions"
    emotion_names = tuple(JAFFE_CODES.values())
    label_mapping = dict(JAFFE_CODES)
    protocol = "no partition: 10 subject folds (leave-one-subject-out); --split-by subject"
    # Ten subjects: ten folds by subject is leave-one-subject-out, the usual JAFFE protocol.
    default_folds = 10

    def _folder(self) -> Path:
        if self._has_images(self.root):
            return self.root
        for sub in _SUBFOLDERS:
            if self._has_images(self.root / sub):
                return self.root / sub
        raise root_error(
            self.name,
            "'*.tiff' files named like 'KA.AN1.39.tiff' (nor a 'jaffedbase/' folder of them)",
            self.root,
        )

    @staticmethod
    def _has_images(folder: Path) -> bool:
        return any(_NAME.match(e.name) and e.is_file() for e in sorted_entries(folder))

    def check_root(self) -> None:
        """Raise :class:`RootError` unless the root (or its ``jaffedbase/``) holds JAFFE TIFFs."""
        super().check_root()
        self._folder()

    def items(self, report: Report) -> Iterator[SourceItem]:
        """One item per TIFF, sorted by file name; other files are skipped Issues."""
        folder = self._folder()
        prefix = "" if folder == self.root else folder.name + "/"
        for e in sorted_entries(folder):
            rel = prefix + e.name
            if e.is_dir():
                report(Issue(rel, 0, "not_jaffe", "a folder (JAFFE is flat)", failure=False))
                continue
            m = _NAME.match(e.name)
            if m is None:
                detail = "not named like 'KA.AN1.39.tiff' (subject.EXPRESSION+repeat.number.tiff)"
                report(Issue(rel, 0, "not_jaffe", detail, failure=False))
                continue
            code = m.group(2).upper()
            if code not in JAFFE_CODES:
                report(Issue(rel, 0, "bad_label", f"unknown expression code {code!r}"))
                continue
            yield SourceItem(
                rel,
                path=Path(e.path),
                emotion=self.emotion_names.index(JAFFE_CODES[code]),
                posed=1,
                subject=m.group(1).upper(),
            )
