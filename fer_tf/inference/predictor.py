"""``fer_tf.Predictor``: a trained model applied to photos, folders and videos, one table row per face.

Pipeline: decode (:func:`fer_tf.preprocessing.decode.decode_image`; videos through
:func:`fer_tf.inference.video.sample_frames` on a reader thread) → detect faces in batches
(:func:`fer_tf.preprocessing.faces.detect_faces`) → crop or align each face the way the training
records were → the evaluation pipeline's central crop and resize → the model, in batches → columns
named by meaning. A bad input is a row with ``error`` set, never an exception that loses the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_tf.checks import check_choice, check_number
from fer_tf.inference.metadata import MODEL_NAME, ModelMetadata

__all__ = ["Predictor", "IMAGE_SUFFIXES", "BASE_COLUMNS", "output_columns", "KerasRunner"]

#: Image file suffixes read by the predictor.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
#: The columns before the model's outputs, in order (``error`` comes last).
BASE_COLUMNS = ("input", "frame", "time_s", "face", "x", "y", "w", "h", "face_score")


def output_columns(metadata: ModelMetadata) -> list[str]:
    """The model's output columns, in table order, named by meaning.

    Args:
        metadata: the model's metadata.

    Returns:
        Class names + ``<task>_label`` (emotion/posed); ``AU<n>`` then ``AU<n>_present`` (au);
        ``AU<n>_intensity`` (au_intensity); the output names (va: ``valence``, ``arousal``).
    """
    t = metadata.task
    if t in ("emotion", "posed"):
        return [*metadata.output_names, f"{t}_label"]
    if t == "au":
        aus = [f"AU{a}" for a in metadata.au_ids]
        return aus + [f"{c}_present" for c in aus]
    if t == "au_intensity":
        return [f"AU{a}_intensity" for a in metadata.au_ids]
    return list(metadata.output_names)


@dataclass
class _Item:
    """One image or sampled frame on its way through the pipeline."""

    input: str
    frame: int = -1
    time_s: float = float("nan")
    image: np.ndarray | None = None
    error: str = ""


def _activate(logits: np.ndarray, activation: str) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if activation == "softmax":
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if activation == "tanh":
        return np.tanh(x)
    return x


class KerasRunner:
    """A run directory's ``best.keras`` as a runner: float images 0..255 -> ``{"scores": ...}``.

    Normalisation and the task's activation are applied here, as in training and evaluation.

    Args:
        model_path: the ``.keras`` file.
        metadata: the model's metadata.
    """

    input_dtype = "float32"

    def __init__(self, model_path: str | os.PathLike[str], metadata: ModelMetadata) -> None:
        import keras
        import tensorflow as tf

        from fer_tf.models import CUSTOM_OBJECTS
        from fer_tf.preprocessing.normalization import normalize

        self.model = keras.models.load_model(
            str(model_path), custom_objects=CUSTOM_OBJECTS, compile=False
        )
        family = metadata.normalization

        h, w = metadata.input_size
        spec = tf.TensorSpec([None, h, w, metadata.channels], tf.float32)

        @tf.function(input_signature=[spec])  # one trace for every batch size
        def call(x: Any) -> Any:
            """Normalise, run the model, take the main logits."""
            out = self.model(normalize(x, family), training=False)
            return out["logits"] if isinstance(out, dict) else out

        self._call = call
        self._activation = metadata.activation

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Scores for a ``(N, H, W, C)`` batch of 0..255 images."""
        logits = np.asarray(self._call(np.asarray(batch, dtype=np.float32)))
        return {"scores": _activate(logits, self._activation).astype(np.float32)}


def _scores(out: Any, names: Sequence[str]) -> np.ndarray:
    """The ``(N, K)`` scores from a runner's answer.

    Accepted: an array; a dict with ``scores`` or ``probabilities``; a dict with one ``(N,)``
    array per output name (``AU1``, ``happiness``, ``valence``, ...); a dict of one array.
    """
    if isinstance(out, dict):
        for key in ("scores", "probabilities"):
            if key in out:
                return np.asarray(out[key], dtype=np.float32)
        if names and all(n in out for n in names):
            cols = [np.asarray(out[n], dtype=np.float32).reshape(-1) for n in names]
            return np.stack(cols, axis=1)
        if len(out) == 1:
            return np.asarray(next(iter(out.values())), dtype=np.float32)
        raise ValueError(
            f"The runner returned outputs {sorted(out)}; expected one array, a 'scores' key, or "
            f"one output per name {list(names)}."
        )
    return np.asarray(out, dtype=np.float32)


class Predictor:
    """Apply a trained model to images, folders and videos.

    Args:
        runner: a callable taking a ``(N, H, W, C)`` batch at the model's input size (uint8, or
            float32 0..255 when the runner has ``input_dtype = "float32"``) and returning the
            ``(N, K)`` scores (after the activation), or a dict holding them (``"scores"``,
            ``"probabilities"``, one entry, or one ``(N,)`` array per output name).
        metadata: the model's :class:`~fer_tf.inference.metadata.ModelMetadata`.
        detector: ``"mtcnn"``, ``"haar"`` or ``"none"``; default: the detector the training
            records were cropped with, MTCNN when they were not cropped (real media are not face
            crops).
        align: five-point alignment; default: what the records had.
        margin: face margin; default: the records' (0.2 when they were not cropped).
        batch_size: images per detector and per model call.
        min_face_score: MTCNN faces below this confidence are dropped.

    Raises:
        ValueError: a bad parameter.
    """

    def __init__(
        self,
        runner: Any,
        metadata: ModelMetadata,
        *,
        detector: str | None = None,
        align: bool | None = None,
        margin: float | None = None,
        batch_size: int = 32,
        min_face_score: float = 0.9,
    ) -> None:
        from fer_tf.preprocessing.faces import DETECTORS

        face = dict(metadata.face or {})
        recorded = str(face.get("detector") or "none")
        self.detector = detector or (recorded if recorded != "none" else "mtcnn")
        check_choice("detector", self.detector, DETECTORS)
        self.align = bool(face.get("align", False)) if align is None else bool(align)
        if margin is None:
            margin = float(face.get("margin") or 0.0) if recorded != "none" else 0.2
        self.margin = float(check_number("margin", margin, min=0.0))
        self.batch_size = int(check_number("batch_size", batch_size, min=1, integer=True))
        self.min_face_score = float(check_number("min_face_score", min_face_score, min=0, max=1))
        self.runner = runner
        self.metadata = metadata
        self.columns = [*BASE_COLUMNS, *output_columns(metadata), "error"]

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def from_run(cls, path: str | os.PathLike[str], **kwargs: Any) -> Predictor:
        """A predictor for a run directory (``best.keras`` + its metadata).

        Args:
            path: the run directory.
            **kwargs: as :class:`Predictor` (detector, align, margin, batch_size, ...).

        Returns:
            The predictor.

        Raises:
            fer_tf.inference.metadata.MetadataError: not a usable run directory.
        """
        metadata = ModelMetadata.from_run(path)
        return cls(KerasRunner(Path(path) / MODEL_NAME, metadata), metadata, **kwargs)

    @classmethod
    def from_export(cls, path: str | os.PathLike[str], **kwargs: Any) -> Predictor:
        """A predictor for an exported model (``fer_tf.inference.export.load_exported``).

        Args:
            path: the export (SavedModel directory, ``.tflite`` or ``.onnx``).
            **kwargs: as :class:`Predictor`.

        Returns:
            The predictor.

        Raises:
            fer_tf.inference.metadata.MetadataError: the export has no metadata.
        """
        from fer_tf.inference.export import load_exported

        runner, metadata = load_exported(path)
        return cls(runner, metadata, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> Predictor:
        """:meth:`from_run` for a run directory, else :meth:`from_export`.

        A directory without export metadata (``fer_tf_model.json``) or a SavedModel is read as a
        run directory, so a wrong path gets the run directory's error line.
        """
        from fer_tf.inference.metadata import METADATA_NAME

        p = Path(path)
        is_export = (p / METADATA_NAME).is_file() or (p / "saved_model.pb").is_file()
        if p.is_dir() and ((p / "config.yaml").is_file() or not is_export):
            return cls.from_run(p, **kwargs)
        return cls.from_export(p, **kwargs)

    # -- public API --------------------------------------------------------------------------------

    def predict(
        self,
        inputs: Any,
        *,
        every_n_frames: int | None = None,
        fps: float | None = None,
        progress: bool = False,
    ) -> Any:
        """Predict on images, image arrays, folders (recursive) and videos.

        Args:
            inputs: a path, a uint8 RGB array (or an ``(N, H, W, 3)`` batch), or a sequence of
                paths and arrays.
            every_n_frames, fps: video frame sampling (see :func:`predict_video`).
            progress: draw a progress bar (images and frames) on stderr.

        Returns:
            A ``pandas.DataFrame`` with :attr:`columns`: one row per face per image or sampled
            frame; an image or frame without a face, or an input that failed, is one row with
            ``face`` -1 (and ``error`` saying why it failed).
        """
        from fer_tf.inference import video as vid

        if isinstance(inputs, np.ndarray) and inputs.ndim == 4:
            inputs = list(inputs)  # a batch of images
        elif isinstance(inputs, (str, os.PathLike, np.ndarray)):
            inputs = [inputs]
        check_number("every_n_frames", every_n_frames, min=1, integer=True, allow_none=True)
        check_number("fps", fps, gt=0.0, allow_none=True)
        items = vid.prefetch(_expand(inputs, every_n_frames, fps))
        if progress:
            from tqdm import tqdm

            items = tqdm(items, unit="img", desc="fer-tf-predict", leave=False)
        return self._table(self._rows(items))

    def predict_video(
        self,
        path: str | os.PathLike[str],
        every_n_frames: int | None = None,
        fps: float | None = None,
    ) -> Any:
        """Predict on the sampled frames of one video.

        Args:
            path: the video file.
            every_n_frames: keep frames 0, N, 2N, ...
            fps: keep about ``fps`` frames per second (frame 0 always). At most one of the two.

        Returns:
            The frame table (see :meth:`predict`); ``time_s`` from the container.
        """
        if every_n_frames is not None and fps is not None:
            raise ValueError("Pass at most one of 'every_n_frames' and 'fps'. Got both.")
        return self.predict([path], every_n_frames=every_n_frames, fps=fps)

    def summarize(self, table: Any) -> Any:
        """One row per video of ``table`` (:func:`fer_tf.inference.video.summarize_videos`)."""
        from fer_tf.inference.video import summarize_videos

        return summarize_videos(table, self.metadata)

    # -- internals -------------------------------------------------------------------------------

    def _table(self, rows: list[dict[str, Any]]) -> Any:
        import pandas as pd

        df = pd.DataFrame(rows, columns=self.columns)
        for c in ("frame", "face"):
            df[c] = df[c].astype("int64")
        for c in ("x", "y", "w", "h"):
            df[c] = df[c].astype("Int64")
        df["time_s"] = df["time_s"].astype("float64")
        df["face_score"] = df["face_score"].astype("float64")
        for c in output_columns(self.metadata):
            if c.endswith("_present"):
                df[c] = df[c].astype("boolean")
            elif c.endswith("_label"):
                df[c] = df[c].astype("object")
            else:
                df[c] = df[c].astype("float64")
        df["error"] = df["error"].fillna("").astype(str)
        return df

    def _rows(self, items: Iterator[_Item]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        chunk: list[_Item] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= self.batch_size:
                rows.extend(self._predict_chunk(chunk))
                chunk = []
        if chunk:
            rows.extend(self._predict_chunk(chunk))
        return rows

    def _detect(self, good: list[_Item]) -> list[list[Any]]:
        from fer_tf.preprocessing.faces import detect_faces

        images = [it.image for it in good]
        try:
            return detect_faces(
                images, self.detector, min_score=self.min_face_score, batch_size=self.batch_size
            )
        except Exception:  # noqa: BLE001 - retried one by one so one bad image fails alone
            found = []
            for it in good:
                try:
                    one = detect_faces([it.image], self.detector, min_score=self.min_face_score)
                    found.append(one[0])
                except Exception as exc:  # noqa: BLE001
                    it.error = f"face detection failed: {exc}"
                    found.append([])
            return found

    def _predict_chunk(self, chunk: list[_Item]) -> list[dict[str, Any]]:
        good = [it for it in chunk if it.image is not None and not it.error]
        faces = dict(zip(map(id, good), self._detect(good))) if good else {}
        crops, owners = [], []
        for it in good:
            for k, f in enumerate(faces[id(it)]):
                crops.append(self.prepare(it.image, f))
                owners.append((id(it), k))
        scores = self._run(crops) if crops else np.zeros((0, len(self.metadata.output_names)))
        by_owner = {o: s for o, s in zip(owners, scores)}
        rows = []
        for it in chunk:
            found = faces.get(id(it), []) if not it.error else []
            if not found:
                rows.append(self._row(it, -1, None, None))
            for k, f in enumerate(found):
                rows.append(self._row(it, k, f, by_owner[(id(it), k)]))
        return rows

    def prepare(self, image: np.ndarray, face: Any) -> np.ndarray:
        """The model input for one face: crop/align, equalise, grey, central crop, resize.

        Args:
            image: uint8 RGB image.
            face: a :class:`~fer_tf.preprocessing.faces.Face`.

        Returns:
            float32 ``(H, W, C)`` in 0..255 at the model's input size.
        """
        import cv2

        from fer_tf.preprocessing import faces as F

        md = self.metadata
        h, w = md.input_size
        frac = md.central_fraction if md.central_fraction and md.central_fraction < 1 else 1.0
        if self.detector == "none":
            crop = image
        elif self.align and face.landmarks is not None:
            crop = F.align_face(image, face, (round(h / frac), round(w / frac)), self.margin)
        else:
            crop = F.crop_box(image, face, self.margin)
        crop = F.gray_to_rgb(np.ascontiguousarray(crop))
        if md.equalize:
            crop = F.equalize(crop)
        if md.grayscale or md.channels == 1:
            crop = F.gray_to_rgb(F.rgb_to_gray(crop))
        if frac < 1.0:
            ch, cw = crop.shape[:2]
            nh, nw = max(1, int(round(ch * frac))), max(1, int(round(cw * frac)))
            y0, x0 = (ch - nh) // 2, (cw - nw) // 2
            crop = crop[y0 : y0 + nh, x0 : x0 + nw]
        out = cv2.resize(crop.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        if md.channels == 1:
            return out[:, :, :1]
        return out

    def _run(self, crops: list[np.ndarray]) -> np.ndarray:
        batch = np.stack(crops)
        if getattr(self.runner, "input_dtype", "uint8") != "float32":
            batch = np.clip(np.rint(batch), 0, 255).astype(np.uint8)
        out = []
        for s in range(0, len(batch), self.batch_size):
            out.append(
                _scores(self.runner(batch[s : s + self.batch_size]), self.metadata.output_names)
            )
        return np.concatenate(out, axis=0)

    def _row(self, it: _Item, k: int, face: Any, scores: np.ndarray | None) -> dict[str, Any]:
        row: dict[str, Any] = {
            "input": it.input,
            "frame": it.frame,
            "time_s": it.time_s,
            "face": k,
            "error": it.error,
        }
        if face is not None:
            row.update(x=face.x, y=face.y, w=face.w, h=face.h, face_score=face.score)
        if scores is not None:
            row.update(self._outputs(scores))
        return row

    def _outputs(self, s: np.ndarray) -> dict[str, Any]:
        md = self.metadata
        if md.task in ("emotion", "posed"):
            d: dict[str, Any] = {c: float(v) for c, v in zip(md.output_names, s)}
            d[f"{md.task}_label"] = md.output_names[int(np.argmax(s))]
            return d
        if md.task == "au":
            d = {f"AU{a}": float(v) for a, v in zip(md.au_ids, s)}
            for a, v, t in zip(md.au_ids, s, md.thresholds):
                d[f"AU{a}_present"] = bool(v >= t)
            return d
        if md.task == "au_intensity":
            return {f"AU{a}_intensity": float(v) for a, v in zip(md.au_ids, s)}
        return {c: float(v) for c, v in zip(md.output_names, s)}


# -- inputs -----------------------------------------------------------------------------------------


def _read_image(path: Path) -> _Item:
    from fer_tf.preprocessing.decode import decode_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        return _Item(str(path), error=f"cannot read the file: {exc.strerror or exc}")
    try:
        return _Item(str(path), image=decode_image(data))
    except ValueError as exc:
        return _Item(str(path), error=f"{exc} (accepted: {', '.join(IMAGE_SUFFIXES)})")


def _video_items(path: Path, every_n: int | None, fps: float | None) -> Iterator[_Item]:
    from fer_tf.inference.video import sample_frames

    n = 0
    try:
        for index, t, rgb in sample_frames(path, every_n, fps):
            n += 1
            yield _Item(str(path), frame=index, time_s=t, image=rgb)
    except (OSError, ValueError) as exc:
        yield _Item(str(path), error=str(exc))
        return
    if n == 0:
        yield _Item(str(path), error="the video has no frame that could be read (empty or broken)")


def _path_items(p: Path, every_n: int | None, fps: float | None) -> Iterator[_Item]:
    from fer_tf.preprocessing.video import VIDEO_SUFFIXES

    suffix = p.suffix.lower()
    if not p.exists():
        yield _Item(str(p), error="no such file or directory")
    elif p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            if f.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
                yield from _path_items(f, every_n, fps)
    elif suffix in VIDEO_SUFFIXES:
        yield from _video_items(p, every_n, fps)
    elif suffix in IMAGE_SUFFIXES:
        yield _read_image(p)
    else:
        yield _Item(
            str(p),
            error=f"unsupported file type '{suffix or p.name}' (accepted images: "
            f"{', '.join(IMAGE_SUFFIXES)}; videos: {', '.join(VIDEO_SUFFIXES)})",
        )


def _expand(inputs: Sequence[Any], every_n: int | None, fps: float | None) -> Iterator[_Item]:
    """Every input as items: images, sampled video frames, or error rows."""
    for i, x in enumerate(inputs):
        if isinstance(x, np.ndarray):
            ok = x.dtype == np.uint8 and (x.ndim == 2 or (x.ndim == 3 and x.shape[2] in (1, 3)))
            name = f"<array {i}>"
            if ok:
                yield _Item(name, image=x if x.ndim == 3 and x.shape[2] == 3 else _rgb(x))
            else:
                yield _Item(name, error=f"not a uint8 (H, W[, 1|3]) image: {x.dtype} {x.shape}")
        else:
            yield from _path_items(Path(x), every_n, fps)


def _rgb(x: np.ndarray) -> np.ndarray:
    from fer_tf.preprocessing.faces import gray_to_rgb

    return gray_to_rgb(x)
