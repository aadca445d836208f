"""SFEW 2.0: Static Facial Expressions in the Wild (Dhall et al., EmotiW 2015).

Movie frames in ``Train/<Class>/*.png`` and ``Val/<Class>/*.png`` with the classes Angry, Disgust,
Fear, Happy, Neutral, Sad, Surprise -> train / val. The ``Test/`` images (flat, no class folders)
come without labels: the organisers never released them, so papers report accuracy on Val. With
``--unlabelled skip`` (default) each Test image is a counted skip; ``keep`` writes them as the
``test`` split with emotion -1 (for prediction, not evaluation).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fer_tf.sources._common import is_image, root_error, sorted_entries, walk_files
from fer_tf.sources.base import (
    Issue,
    Report,
    Source,
    SourceItem,
    SourceOption,
    register_source,
)

__all__ = ["SfewSource", "SFEW_CLASSES"]

#: SFEW's class folders -> our emotion names (``emotion_names`` follows this order).
SFEW_CLASSES = {
    "Angry": "anger",
    "Disgust": "disgust",
    "Fear": "fear",
    "Happy": "happiness",
    "Neutral": "neutral",
    "Sad": "sadness",
    "Surprise": "surprise",
}
_PARTS = (("Train", "train"), ("Val", "val"))


@register_source
class SfewSource(Source):
    """SFEW 2.0 ``Train/``, ``Val/`` (and unlabelled ``Test/``) class folders."""

    name = "sfew"
    description = "SFEW 2.0: Train/<Class>/*.png, Val/<Class>/*.png (7 emotions, movie frames)"
    emotion_names = tuple(SFEW_CLASSES.values())
    label_mapping = dict(SFEW_CLASSES)
    protocol = "Train -> train, Val -> val (results are reported on Val; Test has no labels)"
    source_options = (
        SourceOption(
            "unlabelled",
            "SFEW Test/ images without labels: skip (counted) or keep as split test (sfew)",
            str,
            "skip",
            ("skip", "keep"),
        ),
    )

    def check_root(self) -> None:
        """Raise :class:`RootError` unless the root holds ``Train/`` or ``Val/``."""
        super().check_root()
        if not any((self.root / part).is_dir() for part, _ in _PARTS):
            raise root_error(self.name, "'Train/' or 'Val/'", self.root)

    def items(self, report: Report) -> Iterator[SourceItem]:
        """Train then Val images by class folder and name, then Test; see the module docstring."""
        for part, partition in _PARTS:
            folder = self.root / part
            if folder.is_dir():
                yield from self._labelled(folder, part, partition, report)
        test = self.root / "Test"
        if test.is_dir():
            for rel in walk_files(test):
                path = f"Test/{rel}"
                if not is_image(rel):
                    report(Issue(path, 0, "not_image", "not an image file", failure=False))
                elif self.options["unlabelled"] == "skip":
                    detail = "SFEW test labels are not distributed (--unlabelled keep to write it)"
                    report(Issue(path, 0, "unlabelled", detail, failure=False))
                else:
                    yield SourceItem(path, path=test / rel, partition="test")

    def _labelled(
        self, folder: Path, part: str, partition: str, report: Report
    ) -> Iterator[SourceItem]:
        for cls in sorted_entries(folder):
            rel_cls = f"{part}/{cls.name}"
            if not cls.is_dir():
                report(Issue(rel_cls, 0, "not_image", "a file outside the class folders", False))
                continue
            if cls.name not in SFEW_CLASSES:
                detail = f"unknown class folder; expected one of {list(SFEW_CLASSES)}"
                for rel in walk_files(Path(cls.path)):
                    report(Issue(f"{rel_cls}/{rel}", 0, "unknown_class", detail))
                continue
            emotion = self.emotion_names.index(SFEW_CLASSES[cls.name])
            for rel in walk_files(Path(cls.path)):
                path = f"{rel_cls}/{rel}"
                if not is_image(rel):
                    report(Issue(path, 0, "not_image", "not an image file", failure=False))
                    continue
                yield SourceItem(
                    path, path=Path(cls.path) / rel, emotion=emotion, partition=partition
                )
