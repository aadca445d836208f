"""Export a trained run as a SavedModel, a TFLite or an ONNX model that carries its metadata.

Every export is the same function: **uint8 face crops in, activated scores out**.

- Input ``images``: ``uint8 [N, H, W, C]`` at the model's input size (``metadata.input_size``)
  and channel count (``metadata.channels``), pixels 0..255. The normalisation family the model
  was trained with runs inside the exported graph. Resizing, face cropping/alignment and an
  optional grey conversion (``metadata.grayscale``) are the caller's job, as in training.
- Output ``scores``: ``float32 [N, K]``, one column per ``metadata.output_names`` in that order,
  after the task's activation (``metadata.activation``): ``sigmoid`` for ``au`` (and a
  sigmoid-trained classifier), ``softmax`` for ``posed``/``emotion``, ``tanh`` for bounded
  ``va``, ``identity`` otherwise. A consumer never applies the activation again.

Where the metadata (:class:`~fer_tf.inference.metadata.ModelMetadata`) goes:

- SavedModel (a directory): ``assets/fer_tf_model.json`` (a tracked ``tf.saved_model.Asset``);
  the signature ``serving_default`` maps ``images`` to ``{"scores": ...}``.
- TFLite (a ``.tflite`` file): embedded as a zip archive appended to the flatbuffer, TFLite's
  "associated files" layout (interpreters ignore it; ``zipfile`` reads it), and a sidecar
  ``<output>.json``; the signature ``serving_default`` as above.
- ONNX (a ``.onnx`` file): ``metadata_props["fer_tf_model"]`` (the JSON text) and the sidecar
  ``<output>.json``; graph input ``images``, output ``scores``.

Quantisation (``quantize``): TFLite ``dynamic`` (int8 weights), ``float16`` (float16 weights),
``int8`` (int8 weights and activations calibrated on ~100 images of the run's records, float
fallback for ops without int8 kernels; the uint8 input and float32 output stay); ONNX
``dynamic`` and ``int8`` through ``onnxruntime.quantization``. A SavedModel is not quantised.

:func:`load_exported` reads any of the three back as ``(runner, metadata)`` where
``runner(uint8_batch) -> {"scores": float32 array}``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_tf.checks import check_choice, invalid
from fer_tf.inference.metadata import METADATA_NAME, MetadataError, ModelMetadata

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "FORMATS",
    "QUANTIZATIONS",
    "OUTPUT_NAME",
    "INPUT_NAME",
    "ONNX_METADATA_KEY",
    "export_model",
    "load_exported",
    "representative_images",
]

FORMATS: tuple[str, ...] = ("savedmodel", "tflite", "onnx")
#: Quantisation modes per format (None = float32).
QUANTIZATIONS: dict[str, tuple[str | None, ...]] = {
    "savedmodel": (None,),
    "tflite": (None, "dynamic", "float16", "int8"),
    "onnx": (None, "dynamic", "int8"),
}
INPUT_NAME = "images"
OUTPUT_NAME = "scores"
#: Key of the metadata JSON in an ONNX model's ``metadata_props``.
ONNX_METADATA_KEY = "fer_tf_model"
#: ONNX opset written by tf2onnx.
ONNX_OPSET = 17
#: Images of the run's records used to calibrate int8 quantisation.
CALIBRATION_IMAGES = 100

Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


# ---------------------------------------------------------------------------------------------
# The serving function.


def _load_keras_model(run_dir: Path) -> Any:
    import keras

    from fer_tf.models import CUSTOM_OBJECTS

    path = run_dir / "best.keras"
    if not path.is_file():
        raise MetadataError(
            f"The run directory '{run_dir}' has no trained model: expected '{path.name}' "
            "(fer-tf-train writes it after the first evaluation)."
        )
    return keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)


def _activate(logits: tf.Tensor, activation: str) -> tf.Tensor:
    import tensorflow as tf

    x = tf.cast(logits, tf.float32)
    if activation == "sigmoid":
        return tf.sigmoid(x)
    if activation == "softmax":
        return tf.nn.softmax(x, axis=-1)
    if activation == "tanh":
        return tf.tanh(x)
    return tf.identity(x)


def _serving_module(model: Any, metadata: ModelMetadata) -> tf.Module:
    """A ``tf.Module`` whose only function is ``serve(uint8 images) -> {"scores": ...}``.

    The Keras model is captured by the function, not tracked as an attribute: tracking it would
    save its training-mode functions too, whose moving-statistics updates make the TFLite
    converter keep every variable as a (never initialised, NaN) resource variable.
    """
    import tensorflow as tf

    from fer_tf.preprocessing.normalization import normalize

    h, w = metadata.input_size
    spec = tf.TensorSpec([None, h, w, metadata.channels], tf.uint8, name=INPUT_NAME)
    family, activation = metadata.normalization, metadata.activation

    def pick(outputs: Any) -> Any:
        if isinstance(outputs, dict):
            for key in (metadata.task, "logits", "predictions"):
                if key in outputs:
                    return outputs[key]
            return next(iter(outputs.values()))
        return outputs[0] if isinstance(outputs, (list, tuple)) else outputs

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = pick(model(normalize(images, family), training=False))
        return {OUTPUT_NAME: _activate(logits, activation)}

    module = tf.Module()
    module.model_variables = [getattr(v, "value", v) for v in model.variables]
    module.serve = tf.function(serve, input_signature=[spec])
    return module


# ---------------------------------------------------------------------------------------------
# Representative images (int8 calibration).


def _to_channels(images: tf.Tensor, channels: int, grayscale: bool) -> tf.Tensor:
    import tensorflow as tf

    if channels == 1:
        return tf.image.rgb_to_grayscale(images)
    if grayscale:
        return tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(images))
    return images


def representative_images(
    records_dir: str | os.PathLike[str],
    metadata: ModelMetadata,
    *,
    split: str = "val",
    count: int = CALIBRATION_IMAGES,
) -> np.ndarray:
    """Up to ``count`` uint8 images of a records split, preprocessed as evaluation does.

    Decode, central crop (0.875), resize to the model's input size (the pipeline's evaluation
    path, :func:`fer_tf.preprocessing.image.preprocess_for_eval`), the model's channels; no
    normalisation (the exported graph does it). Falls back to the ``train`` split when ``split``
    has no shards.

    Args:
        records_dir: a records directory (``manifest.json`` and shards).
        metadata: the model's metadata (input size, channels).
        split: the split to read.
        count: how many images.

    Returns:
        ``uint8 [n, H, W, C]`` with ``1 <= n <= count``.

    Raises:
        ValueError: the records cannot be read or hold no image.
    """
    import tensorflow as tf

    from fer_tf.data import pipeline
    from fer_tf.preprocessing import image as img

    try:
        files, _ = pipeline.resolve_source(records_dir, split)
    except ValueError:
        files, _ = pipeline.resolve_source(records_dir, "train")
    feature = {"image/encoded": tf.io.FixedLenFeature([], tf.string)}

    def load(serialized: tf.Tensor) -> tf.Tensor:
        encoded = tf.io.parse_single_example(serialized, feature)["image/encoded"]
        image = img.preprocess_for_eval(encoded, metadata.input_size, central_fraction=0.875)
        image = _to_channels(image, metadata.channels, metadata.grayscale)
        return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)

    ds = tf.data.TFRecordDataset(files).take(count).map(load)
    images = [x.numpy() for x in ds]
    if not images:
        raise ValueError(f"The records '{records_dir}' hold no image to calibrate int8 with.")
    return np.stack(images)


def _calibration(
    run_metadata: ModelMetadata, config_path: Path, records: str | os.PathLike[str] | None
) -> np.ndarray:
    from fer_tf.config import load_config

    config = load_config(str(config_path))
    source = records if records is not None else config.data.records
    if not source:
        raise ValueError(
            "int8 quantisation calibrates on records, but the run's config has no data.records. "
            "Pass representative_records=DIR (--representative-records)."
        )
    try:
        return representative_images(source, run_metadata, split=config.data.eval_split)
    except Exception as exc:  # tf.errors.OpError (corrupt shard), ManifestError, OSError
        raise ValueError(
            f"int8 quantisation needs the run's records to calibrate on; cannot read '{source}': "
            f"{exc} Pass representative_records=DIR (--representative-records)."
        ) from None


# ---------------------------------------------------------------------------------------------
# Writers.


def _write_savedmodel(module: tf.Module, metadata: ModelMetadata, output: Path) -> None:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        meta_file = metadata.save(Path(tmp) / METADATA_NAME)
        # A tracked asset: tf.saved_model.save copies it to assets/ and the loaded object points
        # at it, so the metadata travels with the SavedModel.
        module.metadata_asset = tf.saved_model.Asset(str(meta_file))
        tf.saved_model.save(module, str(output), signatures={"serving_default": module.serve})


def _tflite_converter(saved_model_dir: Path, quantize: str | None, calibration: Any) -> Any:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":

        def dataset() -> Iterator[dict[str, np.ndarray]]:
            for image in calibration:
                yield {INPUT_NAME: image[None]}

        converter.representative_dataset = dataset
    return converter


def _with_embedded_metadata(model_bytes: bytes, metadata: ModelMetadata) -> bytes:
    """The TFLite flatbuffer with a zip archive holding the metadata JSON appended."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(METADATA_NAME, json.dumps(metadata.to_json(), indent=2, sort_keys=True))
    return model_bytes + buffer.getvalue()


def _write_tflite(
    module: tf.Module,
    metadata: ModelMetadata,
    output: Path,
    quantize: str | None,
    calibration: Any,
) -> None:
    import warnings

    with tempfile.TemporaryDirectory() as tmp:
        tf_dir = Path(tmp) / "saved_model"
        _write_savedmodel(module, metadata, tf_dir)
        converter = _tflite_converter(tf_dir, quantize, calibration)
        with warnings.catch_warnings():
            # int8 calibration runs TF's own (deprecated) interpreter, which warns about itself.
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            model_bytes = converter.convert()
    output.write_bytes(_with_embedded_metadata(model_bytes, metadata))
    metadata.save(_sidecar(output))


def _onnx_quantize(path: Path, quantize: str, calibration: Any) -> None:
    """Quantise the ONNX model at ``path`` in place (``dynamic`` or calibrated ``int8``)."""
    import logging

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration if calibration is not None else [])

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self.items, None)
            return None if image is None else {INPUT_NAME: image[None]}

    # onnxruntime.quantization logs a "consider pre-processing" advice on the root logger.
    logging.disable(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "quantized.onnx"
            if quantize == "dynamic":
                quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8)
            else:
                quantize_static(str(path), str(out), Reader(), weight_type=QuantType.QInt8)
            shutil.copyfile(out, path)
    finally:
        logging.disable(logging.NOTSET)


def _write_onnx(
    module: tf.Module,
    metadata: ModelMetadata,
    output: Path,
    quantize: str | None,
    calibration: Any,
) -> None:
    import onnx
    import tf2onnx

    spec = module.serve.input_signature
    proto, _ = tf2onnx.convert.from_function(
        module.serve, input_signature=spec, opset=ONNX_OPSET, output_path=None
    )
    onnx.save(proto, str(output))
    if quantize is not None:
        _onnx_quantize(output, quantize, calibration)
    proto = onnx.load(str(output))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_METADATA_KEY, json.dumps(metadata.to_json(), sort_keys=True)
    proto.producer_name = "fer_tf"
    onnx.save(proto, str(output))
    metadata.save(_sidecar(output))


def _sidecar(output: Path) -> Path:
    return output.with_name(output.name + ".json")


# ---------------------------------------------------------------------------------------------
# The public API.


def _require(module: str, extra: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(
            f"This needs the '{module}' package, which is not installed. Install it with "
            f"pip install 'fer-tf[{extra}]'."
        )


def _check_output(output: Path, fmt: str, overwrite: bool) -> None:
    if output.exists() and not overwrite:
        raise FileExistsError(
            f"The output '{output}' exists; pass overwrite=True (--overwrite) to replace it."
        )
    if output.exists() and output.is_dir() != (fmt == "savedmodel"):
        kind = "a directory" if output.is_dir() else "a file"
        raise invalid(
            "output",
            "a directory path for savedmodel, a file path for tflite and onnx",
            f"{output} ({kind}, format {fmt})",
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.is_dir():
        shutil.rmtree(output)


def export_model(
    run_dir: str | os.PathLike[str],
    format: str = "savedmodel",  # noqa: A002 - the CLI's --format
    output: str | os.PathLike[str] | None = None,
    *,
    quantize: str | None = None,
    representative_records: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Export a trained run's best model as a SavedModel, TFLite or ONNX model with metadata.

    The exported model takes ``uint8 [N, H, W, C]`` face crops (``images``) and returns the
    activated ``float32 [N, K]`` ``scores`` (see the module docstring).

    Args:
        run_dir: a ``fer-tf-train`` run directory (``config.yaml``, ``best.keras``).
        format: ``savedmodel``, ``tflite`` or ``onnx``.
        output: the SavedModel directory or the ``.tflite``/``.onnx`` file; default
            ``<run_dir>/export/model`` plus the format's suffix.
        quantize: None, or ``dynamic``/``float16``/``int8`` (TFLite), ``dynamic``/``int8``
            (ONNX).
        representative_records: records directory to calibrate ``int8`` on (default: the
            run's ``data.records``, its evaluation split).
        overwrite: replace an existing output.

    Returns:
        The path written.

    Raises:
        ValueError: an unknown format, a quantisation the format does not have, or int8 without
            readable records.
        MetadataError: not a run directory, or no trained model in it.
        ImportError: the format's optional package is missing (``fer-tf[tflite]``/``[onnx]``).
        FileExistsError: ``output`` exists and ``overwrite`` is False.
    """
    check_choice("format", format, FORMATS)
    allowed = QUANTIZATIONS[format]
    if quantize not in allowed:
        hint = {
            "savedmodel": " A SavedModel is not quantised; use format 'tflite' or 'onnx'.",
            "onnx": " For float16 weights use format 'tflite'.",
        }.get(format, "")
        raise invalid(
            "quantize", f"one of {list(allowed)} for the {format} format", quantize, hint=hint
        )
    run = Path(run_dir)
    metadata = ModelMetadata.from_run(run)
    suffix = {"savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}[format]
    out = Path(output) if output is not None else run / "export" / f"model{suffix}"
    if format == "onnx":
        _require("tf2onnx", "onnx")
        _require("onnxruntime", "onnx")
    _check_output(out, format, overwrite)
    calibration = None
    if quantize == "int8":
        calibration = _calibration(metadata, run / "config.yaml", representative_records)
    module = _serving_module(_load_keras_model(run), metadata)
    if format == "savedmodel":
        _write_savedmodel(module, metadata, out)
    elif format == "tflite":
        _write_tflite(module, metadata, out, quantize, calibration)
    else:
        _write_onnx(module, metadata, out, quantize, calibration)
    return out


def _format_of(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise MetadataError(
            f"'{path}' is a directory but not an exported SavedModel (no saved_model.pb). "
            "Export a run with fer-tf-export --format savedmodel."
        )
    if path.suffix.lower() in (".tflite", ".onnx"):
        return path.suffix.lower()[1:]
    raise MetadataError(
        f"'{path}' is not an exported fer_tf model: expected a SavedModel directory, a .tflite "
        "or an .onnx file written by fer-tf-export."
    )


def _embedded_tflite_metadata(path: Path) -> dict[str, Any] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(METADATA_NAME))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return None


def _read_metadata(path: Path, fmt: str) -> ModelMetadata:
    """The export's metadata: embedded first, else the sidecar ``<path>.json``."""
    if fmt == "savedmodel":
        for where in (path / "assets" / METADATA_NAME, path / METADATA_NAME):
            if where.is_file():
                return ModelMetadata.load(where)
        raise MetadataError(
            f"The SavedModel '{path}' carries no fer_tf metadata (no 'assets/{METADATA_NAME}'). "
            "Export the run with fer-tf-export, which writes it."
        )
    embedded: dict[str, Any] | None = None
    if fmt == "tflite":
        embedded = _embedded_tflite_metadata(path)
    else:
        import onnx

        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError / ValidationError subclasses
            raise MetadataError(f"Cannot read the ONNX model '{path}': {exc}") from None
        props = {p.key: p.value for p in proto.metadata_props}
        embedded = json.loads(props[ONNX_METADATA_KEY]) if ONNX_METADATA_KEY in props else None
    if embedded is not None:
        return ModelMetadata.from_json(embedded)
    sidecar = _sidecar(path)
    if not sidecar.is_file():
        raise MetadataError(
            f"The {fmt} model '{path}' carries no fer_tf metadata (none embedded, no sidecar "
            f"'{sidecar.name}'). Export it with fer-tf-export, which writes both."
        )
    return ModelMetadata.load(sidecar)


def _checked_batch(images: Any, metadata: ModelMetadata) -> np.ndarray:
    """``images`` as a ``uint8 [N, H, W, C]`` array of the model's size, or a clear error."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[None]
    h, w = metadata.input_size
    if x.ndim != 4 or tuple(x.shape[1:]) != (h, w, metadata.channels):
        raise invalid(
            "images", f"a uint8 batch of shape (N, {h}, {w}, {metadata.channels})", x.shape
        )
    if x.dtype != np.uint8:
        raise invalid("images", "uint8 pixels 0..255 (face crops, not normalised)", x.dtype)
    return np.ascontiguousarray(x)


def _savedmodel_runner(path: Path) -> Runner:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        out = fn(**{INPUT_NAME: tf.constant(batch)})
        return {k: v.numpy().astype(np.float32) for k, v in out.items()}

    run.model = loaded  # keep the loaded object (and its variables) alive
    return run


def _tflite_interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        import tensorflow as tf

        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        Interpreter = tf.lite.Interpreter  # noqa: N806
    return Interpreter(model_path=str(path))


def _tflite_runner(path: Path) -> Runner:
    interpreter = _tflite_interpreter(path)
    runner = interpreter.get_signature_runner("serving_default")

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        out = runner(**{INPUT_NAME: batch})
        return {k: np.asarray(v, dtype=np.float32).copy() for k, v in out.items()}

    run.interpreter = interpreter
    return run


def _onnx_runner(path: Path) -> Runner:
    _require("onnxruntime", "onnx")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        values = session.run(names, {INPUT_NAME: batch})
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(names, values)}

    run.session = session
    return run


def load_exported(path: str | os.PathLike[str]) -> tuple[Runner, ModelMetadata]:
    """Load an export written by :func:`export_model`: a runner and the metadata.

    The runner takes ``uint8 [N, H, W, C]`` face crops at ``metadata.input_size`` (a single
    ``[H, W, C]`` image is a batch of one; an empty batch gives an empty answer) and returns
    ``{"scores": float32 [N, K]}``, columns in ``metadata.output_names`` order, already
    activated. Backends: SavedModel
    (``tf.saved_model.load``), TFLite (``ai_edge_litert``'s interpreter, else TensorFlow's),
    ONNX (``onnxruntime``).

    Args:
        path: a SavedModel directory, a ``.tflite`` or an ``.onnx`` file.

    Returns:
        ``(runner, metadata)``.

    Raises:
        MetadataError: the path does not exist, is not an export, or carries no metadata.
        ImportError: ``onnxruntime`` is missing for an ONNX model.
    """
    p = Path(path)
    if not p.exists():
        raise MetadataError(f"The exported model '{p}' does not exist.")
    fmt = _format_of(p)
    metadata = _read_metadata(p, fmt)
    backend = {"savedmodel": _savedmodel_runner, "tflite": _tflite_runner, "onnx": _onnx_runner}
    model_run = backend[fmt](p)

    width = len(metadata.output_names)

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        batch = _checked_batch(images, metadata)
        if batch.shape[0] == 0:  # no face in a frame: an empty answer, not a backend error
            return {OUTPUT_NAME: np.zeros((0, width), np.float32)}
        return model_run(batch)

    run.format = fmt
    run.backend = model_run
    return run, metadata
