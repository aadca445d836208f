"""What a trained model needs at inference time, in one JSON-able object: :class:`ModelMetadata`.

A run directory (``config.yaml``, ``best.keras``, optional ``thresholds.json``) and every export
(SavedModel, TFLite, ONNX) carry the same metadata, so the predictor applies exactly the input
size, normalisation, face preprocessing, output names and AU thresholds the model was trained with,
whatever format it is in. No TensorFlow import.

``thresholds.json`` in a run directory (written by ``fer-tf-evaluate --calibrate-thresholds``)::

    {"au_ids": [1, 2, ...], "thresholds": [0.41, 0.55, ...], "split": "val", "metric": "f1"}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ModelMetadata", "METADATA_NAME", "THRESHOLDS_NAME", "FORMAT_VERSION", "MetadataError"]

#: File name of the metadata next to (or inside) an export.
METADATA_NAME = "fer_tf_model.json"
#: Per-AU thresholds in a run directory.
THRESHOLDS_NAME = "thresholds.json"
FORMAT_VERSION = 1


class MetadataError(ValueError):
    """A run directory or export whose metadata is missing or unusable."""


@dataclass
class ModelMetadata:
    """Everything inference needs to know about a model besides its weights.

    Attributes:
        task: ``au``, ``au_intensity``, ``va``, ``posed`` or ``emotion``.
        output_names: one name per model output unit: class names (``emotion``/``posed``),
            ``AU<n>`` (``au``/``au_intensity``), ``valence``/``arousal`` (``va``).
        au_ids: AU numbers of the outputs (AU tasks), else empty.
        thresholds: per-output decision thresholds for ``au`` (0.5 each when not calibrated).
        input_size: ``(height, width)`` the model takes.
        channels: 1 (grey) or 3.
        grayscale: images were turned grey before the model (replicated to ``channels``).
        normalization: the normalisation family (:mod:`fer_tf.preprocessing.normalization`),
            applied to 0..255 float pixels.
        face: the face preprocessing the training records had: ``{"detector": "none"|"haar"|
            "mtcnn", "align": bool, "margin": float}``.
        model_name: the registry name of the architecture.
        activation: what turns logits into scores: ``sigmoid`` (au), ``softmax`` (posed/emotion),
            ``identity`` (va, au_intensity, or a bounded ``tanh`` already in the model).
        fer_tf_version: the version that wrote the metadata.
        format_version: :data:`FORMAT_VERSION`.
    """

    task: str
    output_names: list[str]
    input_size: tuple[int, int]
    normalization: str
    au_ids: list[int] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    channels: int = 3
    grayscale: bool = False
    face: dict[str, Any] = field(
        default_factory=lambda: {"detector": "none", "align": False, "margin": 0.0}
    )
    model_name: str = ""
    activation: str = "identity"
    fer_tf_version: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        if self.task == "au" and not self.thresholds:
            self.thresholds = [0.5] * len(self.output_names)

    # -- serialisation --

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (lists, not tuples)."""
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelMetadata:
        """Rebuild from :meth:`to_json` output.

        Raises:
            MetadataError: a newer format version or missing keys.
        """
        if int(data.get("format_version", 0)) > FORMAT_VERSION:
            raise MetadataError(
                f"The model metadata has format version {data.get('format_version')}; this "
                f"fer_tf reads version {FORMAT_VERSION} and older. Upgrade fer_tf."
            )
        known = {f for f in cls.__dataclass_fields__}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise MetadataError(f"Incomplete model metadata: {exc}.") from None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the metadata as JSON to ``path`` (a file, or a directory: ``METADATA_NAME``)."""
        p = Path(path)
        if p.is_dir():
            p = p / METADATA_NAME
        p.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ModelMetadata:
        """Read metadata from a JSON file or a directory holding :data:`METADATA_NAME`.

        Raises:
            MetadataError: no metadata there, or unreadable.
        """
        p = Path(path)
        if p.is_dir():
            p = p / METADATA_NAME
        if not p.is_file():
            raise MetadataError(
                f"No fer_tf model metadata at '{p}': expected '{METADATA_NAME}' written by "
                "fer-tf-export (or a run directory from fer-tf-train)."
            )
        try:
            return cls.from_json(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise MetadataError(f"Cannot read the model metadata '{p}': {exc}.") from None
