"""The ``folder`` source: ``root/<class>/*`` images, optionally under ``train/ val/ test/``.

The convention of ``tf.keras.utils.image_dataset_from_directory``: one folder per class, named by
the class; the sorted folder names are the ``emotion_names`` (unless ``--class-names`` gives them,
in the order that sets the label indices). When the root holds ``train/``, ``val/`` (or
``validation/``) and ``test/`` folders, each is such a tree and gives the dataset's partition.
Images: ``.jpg .jpeg .png .bmp .tif .tiff .webp .gif`` (any case); other files are skipped and
listed in ``skipped.jsonl``. There is no subject: splits go by image id.

This module imports no TensorFlow and decodes nothing (the build does).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fer_tf.sources.base import (
    Issue,
    Report,
    RootError,
    Source,
    SourceError,
    SourceItem,
    SourceOption,
    describe_root,
    register_source,
)

__all__ = ["FolderSource", "IMAGE_SUFFIXES", "PARTITION_DIRS"]

#: File suffixes read as images (lower case; matched case-insensitively).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
#: Partition folder names -> the records' split.
PARTITION_DIRS = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def _subdirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


@register_source
class FolderSource(Source):
    """``root/<class>/*`` (``image_dataset_from_directory``), optionally under train/val/test."""

    name = "folder"
    description = (
        "root/<class>/*.jpg|png|... (image_dataset_from_directory layout), optionally under "
        "train/ val/ test/; classes = sorted folder names"
    )
    protocol = "the train/val/test folders when present, else a seeded split by image id"
    source_options = (
        SourceOption(
            "class_names",
            "the class folders, comma-separated, in label order (default: sorted names)",
        ),
    )

    def __init__(self, root: str | os.PathLike[str], **options: Any) -> None:
        super().__init__(root, **options)
        self.emotion_names: tuple[str, ...] = ()
        self.label_mapping: dict[str, str] = {}
        self.partitions: list[tuple[str | None, Path]] = []
        given = self.options["class_names"]
        self._given: tuple[str, ...] | None = None
        if given is not None:
            names = tuple(n.strip() for n in str(given).split(",") if n.strip())
            if not names or len(set(names)) != len(names):
                raise SourceError(
                    "The 'class_names' option of source 'folder' must be distinct class folder "
                    f"names separated by commas, like 'angry,happy,sad'. Got {given!r} instead."
                )
            self._given = names

    def check_root(self) -> None:
        """Find the class folders (under the root, or under its train/val/test folders).

        Raises:
            RootError: no class folders, or ``class_names`` naming folders that are not there.
        """
        super().check_root()
        top = _subdirs(self.root)
        parts = [d for d in top if d.lower() in PARTITION_DIRS]
        if parts:
            self.partitions = [(PARTITION_DIRS[d.lower()], self.root / d) for d in parts]
        else:
            self.partitions = [(None, self.root)]
        found = sorted({c for _, base in self.partitions for c in _subdirs(base)})
        if not found:
            where = " or under its train/ val/ test/ folders" if parts else ""
            raise RootError(
                f"Not a 'folder' dataset root: no class folders under '{self.root}'{where}; "
                f"found: {describe_root(self.root)}. Expected root/<class>/<image> (e.g. "
                "root/happy/001.jpg), optionally under train/ val/ test/."
            )
        if self._given is not None:
            missing = [c for c in self._given if c not in found]
            if missing:
                raise RootError(
                    f"The 'class_names' option of source 'folder' names {missing}, which are not "
                    f"class folders under '{self.root}'; found: {', '.join(found)}."
                )
        self.emotion_names = self._given or tuple(found)
        # Like every source: the dataset's own label (here the class index) -> our class name.
        self.label_mapping = {str(i): name for i, name in enumerate(self.emotion_names)}

    def items(self, report: Report) -> Iterator[SourceItem]:
        """Yield every image of every class folder (sorted), with its class and partition.

        Args:
            report: called for every file that is not an image and every class folder not in
                ``class_names`` (skipped, not failures).

        Yields:
            :class:`~fer_tf.sources.base.SourceItem` with ``path``, ``emotion``, ``partition``.
        """
        if not self.partitions:
            self.check_root()
        index = {name: i for i, name in enumerate(self.emotion_names)}
        for partition, base in self.partitions:
            for cls in _subdirs(base):
                folder = base / cls
                if cls not in index:
                    report(self._issue(folder, "not_a_class", "not in class_names"))
                    continue
                for dirpath, dirnames, filenames in os.walk(folder):
                    dirnames.sort()  # deterministic walk, nested folders included
                    for fname in sorted(filenames):
                        path = Path(dirpath) / fname
                        if path.suffix.lower() not in IMAGE_SUFFIXES:
                            report(self._issue(path, "not_an_image", "not an image suffix"))
                            continue
                        yield SourceItem(
                            source=path.relative_to(self.root).as_posix(),
                            path=path,
                            emotion=index[cls],
                            partition=partition,
                        )

    def _issue(self, path: Path, reason: str, why: str) -> Issue:
        rel = path.relative_to(self.root).as_posix()
        accepted = " ".join(IMAGE_SUFFIXES)
        detail = f"'{rel}' skipped: {why}" + (
            f" (accepted: {accepted})" if reason == "not_an_image" else ""
        )
        return Issue(rel, 0, reason, detail, failure=False)
