"""RAF-DB basic emotion set (Li, Deng, Du 2017).

As distributed (``basic/``): ``EmoLabel/list_patition_label.txt`` (sic) with lines
``train_00001.jpg 5``; labels 1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger,
7 Neutral. Images ``Image/aligned/train_00001_aligned.jpg`` (100x100, aligned; ``--images
aligned``, the default) or ``Image/original/train_00001.jpg`` (``--images original``). The
partition is the file name's prefix: ``train_`` and ``test_``.

Protocol: test -> test; the train images carry no partition, so the build carves ``val`` out of
them with ``--val-fraction`` (``--val-fraction 0`` for the papers' plain train/test).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fer_tf.sources._common import to_int
from fer_tf.sources.base import (
    Issue,
    Report,
    Source,
    SourceItem,
    SourceOption,
    register_source,
)

__all__ = ["RafDbSource", "RAFDB_NAMES"]

#: RAF-DB's classes in its own order (index = label - 1).
RAFDB_NAMES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
_LABELS = "EmoLabel/list_patition_label.txt"
_NAME = re.compile(r"^(train|test)_(\d+)\.jpg$")


@register_source
class RafDbSource(Source):
    """RAF-DB basic: the partition/label list and the aligned or original images."""

    name = "rafdb"
    description = "RAF-DB basic: EmoLabel/list_patition_label.txt + Image/aligned (7 emotions)"
    emotion_names = RAFDB_NAMES
    label_mapping = {str(i + 1): n for i, n in enumerate(RAFDB_NAMES)}
    protocol = "test_* -> test; train_* -> train, with val carved by --val-fraction (by id)"
    source_options = (
        SourceOption(
            "images",
            "RAF-DB images: aligned (Image/aligned, 100x100) or original (Image/original) (rafdb)",
            str,
            "aligned",
            ("aligned", "original"),
        ),
    )

    def check_root(self) -> None:
        """Raise :class:`RootError` without the label list or the chosen images folder."""
        super().check_root()
        self.expect(_LABELS, "file")
        self.expect(f"Image/{self.options['images']}")

    def _image(self, name: str) -> str:
        if self.options["images"] == "aligned":
            return f"Image/aligned/{name[: -len('.jpg')]}_aligned.jpg"
        return f"Image/original/{name}"

    def items(self, report: Report) -> Iterator[SourceItem]:
        """One item per label line, in the list's order (train then test, by number)."""
        path = self.root / _LABELS
        with path.open("r", encoding="utf-8-sig") as fh:
            lines = list(enumerate(fh, start=1))
        for line, text in lines:
            parts = text.split()
            if not parts:
                continue
            m = _NAME.match(parts[0]) if len(parts) == 2 else None
            label = to_int(parts[1]) if m else None
            if m is None or label is None or not 1 <= label <= len(RAFDB_NAMES):
                detail = (
                    f"{text.strip()!r} is not 'train_00001.jpg 5' / 'test_0001.jpg 5' with a label "
                    f"1..{len(RAFDB_NAMES)}"
                )
                report(Issue(_LABELS, line, "bad_label", detail))
                continue
            rel = self._image(parts[0])
            yield SourceItem(
                rel,
                path=self.root / rel,
                emotion=label - 1,
                partition="test" if m.group(1) == "test" else None,
            )
