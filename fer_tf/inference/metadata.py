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

__all__ = [
    "ModelMetadata",
    "METADATA_NAME",
    "MODEL_NAME",
    "THRESHOLDS_NAME",
    "FORMAT_VERSION",
    "MetadataError",
]

#: File name of the metadata next to (or inside) an export.
METADATA_NAME = "fer_tf_model.json"
#: Per-AU thresholds in a run directory.
THRESHOLDS_NAME = "thresholds.json"
#: The trained Keras model in a run directory.
MODEL_NAME = "best.keras"
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
            ``tanh`` (va trained with ``task.bounded``), ``identity`` (va, au_intensity).
        central_fraction: side fraction of the central crop the evaluation pipeline took from
            each (face) image before resizing (``fer_tf.data.pipeline``'s 0.875); None or 1.0:
            the whole crop.
        equalize: the records were histogram-equalised (``fer-tf-build-records --equalize``).
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
    central_fraction: float | None = 0.875
    equalize: bool = False
    fer_tf_version: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.input_size = (int(self.input_size[0]), int(self.input_size[1]))
        if self.task == "au" and not self.thresholds:
            self.thresholds = [0.5] * len(self.output_names)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike[str]) -> ModelMetadata:
        """Read what a run directory says about its model (no TensorFlow import).

        Task, output names and AU ids from ``config.yaml`` (:func:`fer_tf.tasks.task_from_config`);
        input size from ``data.image_size`` or the model catalog; channels and normalisation
        family from ``data.preprocessing`` or the catalog; thresholds from ``thresholds.json``
        when present (0.5 each otherwise); the face preprocessing and histogram equalisation
        from the training records' ``manifest.json`` (``none`` when absent or gone).

        Args:
            run_dir: a directory written by ``fer-tf-train``.

        Returns:
            The metadata.

        Raises:
            MetadataError: not a run directory, no ``best.keras``, an unreadable config or
                thresholds file (one line saying which and why).
        """
        return _from_run(cls, run_dir)

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


# -- from a run directory ----------------------------------------------------------------------


def _activation(task: Any) -> str:
    act = task.head_activation
    return "identity" if act == "linear" else act


def _read_thresholds(run: Path, au_ids: list[int]) -> list[float]:
    """Thresholds in output order from ``thresholds.json``; [] when absent."""
    p = run / THRESHOLDS_NAME
    if not p.is_file():
        return []
    try:
        data = json.loads(p.read_text())
        by_au = dict(zip((int(a) for a in data["au_ids"]), (float(t) for t in data["thresholds"])))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MetadataError(
            f'Cannot read \'{p}\': {exc}. Expected {{"au_ids": [...], "thresholds": [...]}} '
            "as fer-tf-evaluate --calibrate-thresholds writes it."
        ) from None
    missing = [a for a in au_ids if a not in by_au]
    if missing:
        raise MetadataError(
            f"'{p}' has no threshold for AU {missing} of this model (it has {sorted(by_au)})."
        )
    return [by_au[a] for a in au_ids]


def _face_from_records(records: str | None, run: Path) -> tuple[dict[str, Any], bool]:
    """The face preprocessing of the training records (``manifest.json`` arguments)."""
    none = {"detector": "none", "align": False, "margin": 0.0}
    if not records:
        return none, False
    candidates = [Path(records)]
    if not Path(records).is_absolute():
        candidates.append(run / records)
    for d in candidates:
        m = d / "manifest.json"
        if m.is_file():
            try:
                args = json.loads(m.read_text()).get("arguments") or {}
            except (OSError, ValueError):
                return none, False
            detector = str(args.get("face_crop") or "none")
            equalize = bool(args.get("equalize", False))
            if detector == "none":
                return none, equalize
            margin = args.get("face_margin")
            face = {
                "detector": detector,
                "align": bool(args.get("align", False)),
                "margin": float(0.2 if margin is None else margin),
            }
            return face, equalize
    return none, False


def _from_run(cls: type[ModelMetadata], run_dir: str | os.PathLike[str]) -> ModelMetadata:
    from fer_tf import __version__
    from fer_tf.config import ConfigError, load_config
    from fer_tf.models.catalog import get_spec
    from fer_tf.tasks import task_from_config
    from fer_tf.training.validate import input_channels

    run = Path(run_dir)
    if not run.is_dir() or not (run / "config.yaml").is_file():
        raise MetadataError(
            f"'{run}' is not a fer_tf run directory: expected a directory with config.yaml and "
            f"{MODEL_NAME} written by fer-tf-train (or an export with {METADATA_NAME})."
        )
    if not (run / MODEL_NAME).is_file():
        raise MetadataError(
            f"The run directory '{run}' has no trained model ({MODEL_NAME} is missing): train it "
            "to the end with fer-tf-train, or pass another run."
        )
    try:
        config = load_config(str(run / "config.yaml"))
        task = task_from_config(config)
        spec = get_spec(config.model.name)
        input_channels(config)
    except (ConfigError, ValueError, KeyError) as exc:
        raise MetadataError(
            f"Cannot read the run's config '{run / 'config.yaml'}': {exc}"
        ) from None
    size = int(config.data.image_size or 0)
    input_size = (size, size) if size else spec.input_size
    au_ids = [int(a) for a in task.aus] if task.name in ("au", "au_intensity") else []
    face, equalize = _face_from_records(config.data.records, run)
    return cls(
        task=task.name,
        output_names=list(task.output_names),
        input_size=input_size,
        normalization=config.data.preprocessing or spec.preprocessing,
        au_ids=au_ids,
        thresholds=_read_thresholds(run, au_ids) if task.name == "au" else [],
        channels=input_channels(config),
        grayscale=bool(config.data.grayscale),
        face=face,
        model_name=config.model.name,
        activation=_activation(task),
        equalize=equalize,
        fer_tf_version=__version__,
    )
