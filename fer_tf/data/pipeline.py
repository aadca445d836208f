"""tf.data input pipeline: schema-v1/v2 TFRecords → batches of normalised images and masked targets.

:func:`make_dataset` is the one entry point. Element structure (see ``docs/pipeline.md``)::

    (images, targets)
    images:  float32 [B, H, W, C], normalised for the preprocessing family; C = 3, or 1 with
             grayscale=True and channels=1
    targets: dict, for each requested task T:
        targets[T]           the labels
        targets[T + "_mask"] float32, 1.0 where the label is known, 0.0 where it is masked

    task "au":      au       float32 [B, K]  1 present / 0 absent (0 where unknown)
                    au_mask  float32 [B, K]
    task "va":      va       float32 [B, 2]  (valence, arousal), 0 where unknown
                    va_mask  float32 [B, 2]
    task "posed":   posed    int32   [B]     class index (2 or 12 classes), 0 where unknown
                    posed_mask float32 [B]
    task "emotion": emotion  int32   [B]     class index, 0 where unknown
                    emotion_mask float32 [B]
                    with soft_labels=True also emotion_dist float32 [B, K]: the record's
                    label/emotion_dist over the classes (normalised to sum 1), the one-hot hard
                    label where the record has no distribution, zeros where neither is known
    task "au_intensity": au_intensity float32 [B, K] intensity 0..5 (0 where unknown)
                    au_intensity_mask float32 [B, K]
    include_ids=True adds targets["id"]: string [B] (image/id).

Schema-v2 keys (``label/au_intensity``, ``label/emotion_dist``, ``meta/fold``) are parsed only when
a task or option needs them, with defaults, so v1 records read exactly as before. ``folds=[...]``
keeps the examples whose ``meta/fold`` is listed (k-fold protocols: training keeps every fold but
k, evaluation fold k; see :func:`fold_counts`).

In training (``split="train"`` by default) the dataset shuffles, repeats, drops the last partial
batch (static shapes, so XLA compiles once), crops at random, flips and augments; in evaluation it
reads each example once, in order, with an Inception-style central crop. Randomness is stateless
and derived from ``seed``: the same seed gives the same batches.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from fer_tf import facs, records
from fer_tf.checks import did_you_mean, invalid
from fer_tf.preprocessing import augment as aug
from fer_tf.preprocessing import image as img
from fer_tf.preprocessing.normalization import PREPROCESSING_FAMILIES
from fer_tf.tasks import TASK_NAMES

__all__ = [
    "TASKS",
    "UNKNOWN_MODES",
    "CLASSIFICATION_TASKS",
    "PipelineOptions",
    "make_dataset",
    "resolve_source",
    "num_examples",
    "target_names",
    "label_spec",
    "fold_counts",
    "to_channels",
    "V2_FEATURES",
]

TASKS = TASK_NAMES
CLASSIFICATION_TASKS = ("posed", "emotion")
UNKNOWN_MODES = ("auto", "mask", "drop")
AUTOTUNE = tf.data.AUTOTUNE


# --------------------------------------------------------------------------------------------
# Source resolution
# --------------------------------------------------------------------------------------------


def _manifest_files(manifest: Mapping[str, Any], split: str) -> list[str]:
    directory = Path(manifest["_dir"])
    splits = manifest.get("splits")
    if isinstance(splits, Mapping) and split in splits:
        entry = splits[split]
        shards = entry.get("shards") if isinstance(entry, Mapping) else None
        if shards:
            files = [str(directory / s) for s in shards]
            missing = [f for f in files if not os.path.exists(f)]
            if missing:
                raise records.ManifestError(
                    f"The manifest in '{directory}' lists shard(s) of split {split!r} that do not "
                    f"exist: {missing[:3]}. Rebuild the records or restore the files."
                )
            return files
    files = records.list_shards(directory, split)
    if not files:
        available = sorted(
            set(splits)
            if isinstance(splits, Mapping)
            else set()
            | {Path(p).name.split("-")[0] for p in glob.glob(str(directory / "*.tfrecord"))}
        )
        raise ValueError(
            f"The 'split' parameter of make_dataset must name a split of the records in "
            f"'{directory}'; available: {available}. Got {split!r} instead (no "
            f"'{split}-NNNNN-of-NNNNN.tfrecord' shards)."
        )
    return files


def resolve_source(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    split: str | Sequence[str] = "train",
) -> tuple[list[str], dict[str, Any]]:
    """Find the shard files and the manifest of a records source.

    Args:
        source: a records directory (with ``manifest.json``), the manifest file, a glob pattern
            of ``.tfrecord`` files, or a list of files; for files, the manifest is read from the
            directory of the first file.
        split: the split to read when ``source`` is a directory or manifest, or a list of
            splits (their shards, in the order given).

    Returns:
        ``(files, manifest)``: sorted shard paths and the manifest dict.

    Raises:
        ValueError: no file matches, or the split has no shards.
        records.ManifestError: missing manifest or another schema version.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir() or path.name == records.MANIFEST_NAME:
            manifest = records.read_manifest(path)
            splits = [split] if isinstance(split, str) else list(split)
            return [f for sp in splits for f in _manifest_files(manifest, sp)], manifest
        pattern = str(source)
        files = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        files = [f for f in files if os.path.isfile(f)]
        if not files:
            raise ValueError(
                f"The 'source' parameter of make_dataset must be a records directory, its "
                f"manifest.json, a glob pattern or a list of .tfrecord files. No file matches "
                f"{pattern!r}."
            )
    elif isinstance(source, Sequence) and source:
        files = [str(f) for f in source]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise ValueError(
                f"The 'source' parameter of make_dataset lists file(s) that do not exist: "
                f"{missing[:3]}."
            )
    else:
        raise ValueError(
            f"The 'source' parameter of make_dataset must be a records directory, its "
            f"manifest.json, a glob pattern or a non-empty list of .tfrecord files. Got "
            f"{source!r} instead."
        )
    manifest = records.read_manifest(Path(files[0]).parent)
    return files, manifest


def num_examples(source: str | os.PathLike[str], split: str = "train") -> int | None:
    """Number of examples of a split according to the manifest (``None`` if not recorded).

    Args:
        source: records directory or manifest file.
        split: split name.

    Returns:
        The count, or ``None``.

    Raises:
        records.ManifestError: missing manifest or another schema version.
    """
    manifest = records.read_manifest(source)
    entry = (manifest.get("splits") or {}).get(split)
    if isinstance(entry, Mapping) and isinstance(entry.get("count"), int):
        return int(entry["count"])
    return None


def fold_counts(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    split: str | Sequence[str] = "train",
) -> dict[int, int]:
    """Examples per ``meta/fold`` value (``-1``: no fold) in a split or splits.

    Reads the manifest's ``splits[<split>]["fold_counts"]`` (``{"0": n, ...}``) when every
    split has them, else scans the records (only ``meta/fold`` is parsed).

    Args:
        source: see :func:`resolve_source`.
        split: a split name or a list of them.

    Returns:
        ``{fold: count}``, sorted by fold; v1 records (no folds) give ``{-1: total}``.

    Raises:
        ValueError: see :func:`resolve_source`.
        records.ManifestError: missing manifest or another schema version.
    """
    files, manifest = resolve_source(source, split)
    splits = [split] if isinstance(split, str) else list(split)
    entries = [(manifest.get("splits") or {}).get(s) for s in splits]
    if all(isinstance(e, Mapping) and isinstance(e.get("fold_counts"), Mapping) for e in entries):
        out: dict[int, int] = {}
        for e in entries:
            for k, v in e["fold_counts"].items():
                out[int(k)] = out.get(int(k), 0) + int(v)
        return dict(sorted(out.items()))
    spec = {"meta/fold": tf.io.FixedLenFeature([], tf.int64, default_value=-1)}
    ds = tf.data.TFRecordDataset(files).batch(4096)
    ds = ds.map(lambda s: tf.io.parse_example(s, spec)["meta/fold"], num_parallel_calls=AUTOTUNE)
    counts: dict[int, int] = {}
    for batch in ds.as_numpy_iterator():
        values, n = np.unique(batch, return_counts=True)
        for v, c in zip(values.tolist(), n.tolist()):
            counts[int(v)] = counts.get(int(v), 0) + int(c)
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


def _au_indices(manifest: Mapping[str, Any], aus: Any, where: str) -> tuple[list[int], list[int]]:
    au_ids = [int(a) for a in manifest.get("au_ids", [])]
    if aus is None:
        if not au_ids:
            raise records.ManifestError(f"The manifest in '{where}' has no 'au_ids'.")
        return list(range(len(au_ids))), au_ids
    wanted = list(facs.parse_aus(aus))
    missing = [a for a in wanted if a not in au_ids]
    if missing:
        raise ValueError(
            f"The 'aus' parameter of make_dataset must name AUs that the records hold; the "
            f"manifest in '{where}' has au_ids {au_ids}. Got {aus!r}, which asks for "
            f"{', '.join(f'AU{a}' for a in missing)}."
        )
    return [au_ids.index(a) for a in wanted], wanted


def _emotion_names(manifest: Mapping[str, Any], where: str) -> list[str]:
    names = manifest.get("emotion_names")
    if not names:
        raise records.ManifestError(
            f"The manifest in '{where}' has no 'emotion_names', which the emotion and 12-class "
            f"posed tasks need."
        )
    return [str(n) for n in names]


def label_spec(
    manifest: Mapping[str, Any],
    tasks: Sequence[str],
    *,
    aus: Any = None,
    posed_classes: int = 2,
    emotion_classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Resolve the label configuration of ``tasks`` against a manifest.

    Args:
        manifest: the records manifest.
        tasks: task names (see :data:`TASKS`).
        aus: AU selection for ``au`` and ``au_intensity`` (``facs.parse_aus`` syntax); ``None`` =
            all ``au_ids``.
        posed_classes: 2 (spontaneous/posed) or 12 (posed × :data:`facs.POSED_EMOTIONS`).
        emotion_classes: emotion names, in class order, for ``emotion``; ``None`` = the
            manifest's ``emotion_names``. Examples with another emotion are unknown.

    Returns:
        A dict with ``au_index``/``au_ids`` (``au``, ``au_intensity``), ``posed_table``
        (``posed`` 12), the ``emotion_table``/``emotion_classes``/``emotion_dist_index``
        (``emotion``), and ``num_classes`` per class task.

    Raises:
        ValueError: an AU the manifest does not hold, bad ``posed_classes``, unknown emotion.
        records.ManifestError: the manifest lacks ``au_ids`` or ``emotion_names``.
    """
    where = manifest.get("_dir", "<manifest>")
    spec: dict[str, Any] = {"num_classes": {}}
    if "au" in tasks or "au_intensity" in tasks:
        spec["au_index"], spec["au_ids"] = _au_indices(manifest, aus, where)
        spec["num_aus"] = len(manifest.get("au_ids", []))
    if "posed" in tasks:
        if posed_classes not in (2, 12):
            raise invalid("posed_classes", "2 or 12", posed_classes)
        spec["num_classes"]["posed"] = posed_classes
        if posed_classes == 12:
            names = _emotion_names(manifest, where)
            spec["posed_table"] = [
                facs.POSED_EMOTIONS.index(n) if n in facs.POSED_EMOTIONS else -1 for n in names
            ]
            spec["posed_class_names"] = list(facs.POSED_CLASSES_12)
        else:
            spec["posed_class_names"] = list(facs.POSED_CLASSES_2)
    if "emotion" in tasks:
        names = _emotion_names(manifest, where)
        classes = list(names) if emotion_classes is None else [str(c) for c in emotion_classes]
        unknown = [c for c in classes if c not in names]
        if unknown or not classes or len(set(classes)) != len(classes):
            raise ValueError(
                f"The 'emotion_classes' parameter of make_dataset must be distinct names from the "
                f"manifest's emotion_names {names}. Got {emotion_classes!r} instead."
            )
        spec["emotion_table"] = [classes.index(n) if n in classes else -1 for n in names]
        # label/emotion_dist holds one value per manifest name: where each class's share sits.
        spec["emotion_dist_index"] = [names.index(c) for c in classes]
        spec["num_emotion_names"] = len(names)
        spec["emotion_classes"] = classes
        spec["num_classes"]["emotion"] = len(classes)
    return spec


def target_names(tasks: str | Sequence[str], include_ids: bool = False) -> list[str]:
    """Keys of the targets dict for ``tasks``: each task and its ``<task>_mask``.

    Args:
        tasks: a task name or several.
        include_ids: whether ``"id"`` is included.

    Returns:
        Key names.
    """
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    out = [k for t in tasks for k in (t, f"{t}_mask")]
    return [*out, "id"] if include_ids else out


def _lookup(table: Sequence[int], index: tf.Tensor) -> tf.Tensor:
    """``table[index]``, -1 where index is out of range (unknown)."""
    t = tf.constant(list(table), tf.int64)
    n = tf.cast(tf.size(t), tf.int64)
    ok = tf.logical_and(index >= 0, index < n)
    return tf.where(ok, tf.gather(t, tf.clip_by_value(index, 0, n - 1)), tf.constant(-1, tf.int64))


def _v2_features() -> dict[str, Any]:
    """The schema-v2 keys, with defaults so that v1 records (which lack them) parse too. The
    float lists may be empty (no intensities, no soft label): see :func:`_fixed_length`."""
    return {
        "label/au_intensity": tf.io.VarLenFeature(tf.float32),
        "label/emotion_dist": tf.io.VarLenFeature(tf.float32),
        "meta/fold": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "meta/dataset": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }


V2_FEATURES = tuple(sorted(_v2_features()))


def _parse(serialized: tf.Tensor, num_aus: int, v2: bool) -> dict[str, tf.Tensor]:
    """One example: the v1 keys (:func:`records.parse_example`), plus the v2 keys when asked."""
    if not v2:
        return records.parse_example(serialized, num_aus)
    spec = dict(records.feature_spec(num_aus))
    spec.update(_v2_features())  # ours win: they read v1 records (no such keys) too
    parsed = dict(tf.io.parse_single_example(serialized, spec))
    for key in ("label/au_intensity", "label/emotion_dist"):
        value = parsed[key]
        if isinstance(value, tf.SparseTensor):
            parsed[key] = tf.sparse.to_dense(value, default_value=float("nan"))
    return parsed


def _fixed_length(values: tf.Tensor, n: int, key: str) -> tf.Tensor:
    """``values`` when it holds ``n`` floats, ``n`` NaNs when empty; any other length is an error
    (a record that disagrees with its manifest)."""
    size = tf.size(values)
    check = tf.debugging.Assert(
        tf.logical_or(tf.equal(size, 0), tf.equal(size, n)),
        [
            f"The record key label/{key} must hold 0 or {n} values (one per manifest entry); it holds",
            size,
        ],
    )
    with tf.control_dependencies([check]):
        out = tf.cond(
            tf.equal(size, n),
            lambda: tf.reshape(values, [n]),
            lambda: tf.fill([n], float("nan")),
        )
    return tf.reshape(out, [n])


def _emotion_dist(parsed: Mapping[str, tf.Tensor], cls: tf.Tensor, spec: Mapping[str, Any]) -> Any:
    """Soft target over the classes: the record's distribution renormalised over the chosen
    classes; the one-hot hard label where it has none; zeros where neither is known."""
    k = spec["num_classes"]["emotion"]
    raw = _fixed_length(parsed["label/emotion_dist"], spec["num_emotion_names"], "emotion_dist")
    dist = tf.gather(tf.where(tf.math.is_nan(raw), 0.0, raw), spec["emotion_dist_index"])
    dist = tf.maximum(dist, 0.0)
    total = tf.reduce_sum(dist)
    onehot = tf.one_hot(tf.maximum(cls, 0), k, dtype=tf.float32) * tf.cast(cls >= 0, tf.float32)
    return tf.where(total > 0, dist / tf.maximum(total, 1e-12), onehot)


def _targets(
    parsed: Mapping[str, tf.Tensor],
    tasks: Sequence[str],
    spec: Mapping[str, Any],
    soft_labels: bool = False,
) -> tuple[dict[str, tf.Tensor], dict[str, tf.Tensor]]:
    """Labels and masks of one parsed example; also returns per-task 'known' flags."""
    out: dict[str, tf.Tensor] = {}
    known: dict[str, tf.Tensor] = {}
    for task in tasks:
        if task == "au_intensity":
            raw = _fixed_length(parsed["label/au_intensity"], spec["num_aus"], "au_intensity")
            v = tf.gather(raw, spec["au_index"])
            mask = tf.logical_not(tf.math.is_nan(v))
            out["au_intensity"] = tf.where(mask, v, 0.0)
            out["au_intensity_mask"] = tf.cast(mask, tf.float32)
            known["au_intensity"] = tf.reduce_any(mask)
        elif task == "au":
            raw = tf.gather(parsed["label/au"], spec["au_index"])
            mask = raw >= 0
            out["au"] = tf.cast(tf.equal(raw, 1), tf.float32)
            out["au_mask"] = tf.cast(mask, tf.float32)
            known["au"] = tf.reduce_any(mask)
        elif task == "va":
            v = tf.stack([parsed["label/valence"], parsed["label/arousal"]])
            mask = tf.logical_not(tf.math.is_nan(v))
            out["va"] = tf.where(mask, v, 0.0)
            out["va_mask"] = tf.cast(mask, tf.float32)
            known["va"] = tf.reduce_any(mask)
        else:
            if task == "posed":
                posed = parsed["label/posed"]
                if spec["num_classes"]["posed"] == 2:
                    cls = tf.where(tf.logical_or(posed == 0, posed == 1), posed, -1)
                else:
                    emo = _lookup(spec["posed_table"], parsed["label/emotion"])
                    ok = tf.logical_and(tf.logical_or(posed == 0, posed == 1), emo >= 0)
                    cls = tf.where(ok, posed * len(facs.POSED_EMOTIONS) + emo, -1)
            else:
                cls = _lookup(spec["emotion_table"], parsed["label/emotion"])
            mask = cls >= 0
            out[task] = tf.cast(tf.maximum(cls, 0), tf.int32)
            out[f"{task}_mask"] = tf.cast(mask, tf.float32)
            known[task] = mask
            if task == "emotion" and soft_labels:
                dist = _emotion_dist(parsed, cls, spec)
                out["emotion_dist"] = dist
                known[task] = tf.reduce_sum(dist) > 0
    return out, known


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineOptions:
    """How :func:`make_dataset` turns records into batches: the one home of its defaults.

    Pass an instance to :func:`make_dataset`, or its fields as keywords (``make_dataset(src,
    task="va", batch_size=64)``); ``dataclasses.replace(options, seed=1)`` derives another.

    Attributes:
        task: ``"au"``, ``"va"``, ``"posed"``, ``"emotion"``, ``"au_intensity"``, or a list of
            them (multi-task).
        split: split to read from a directory/manifest, or a list of splits; also sets the
            ``training`` default (``split == "train"``; False for a list).
        batch_size: **global** batch size; with an ``input_context`` each pipeline batches
            ``input_context.get_per_replica_batch_size(batch_size)``.
        image_size: output ``(height, width)`` or int; default: the ``model``'s, else 299.
        preprocessing: normalisation family (``inception``, ``vgg``, ``imagenet``,
            ``facenet``, ``unit``); default: the ``model``'s, else ``inception``.
        augment: ``"christensen2018"``, ``"light"``, ``"none"``, ``"randaugment"``, an
            :class:`~fer_tf.preprocessing.augment.AugmentPolicy` or a callable
            ``(images, seed) -> images``; applied in training only (ignored otherwise).
        training: training mode (random crop/flip/augment, shuffle, repeat, drop remainder);
            default ``split == "train"``.
        shuffle: shuffle files and examples; default ``training``.
        shuffle_buffer: examples in the shuffle buffer.
        cache: ``True`` caches the serialized records in memory, a string caches to that file.
        repeat: repeat forever; default ``training``.
        drop_remainder: drop the last partial batch; default ``training``.
        seed: makes shuffling, crops and augmentation reproducible (``None``: random).
        aus: AU subset for ``au`` and ``au_intensity`` (set name or numbers, chosen by id
            through the manifest's ``au_ids``); default: all of them in manifest order.
        unknown: ``"mask"`` (keep, mask 0), ``"drop"`` (skip examples whose label is unknown:
            a class of -1, all selected AUs unknown, or both of valence/arousal unknown), or
            ``"auto"``: drop for a single classification task, mask otherwise.
        posed_classes: 2 or 12 for ``posed``.
        emotion_classes: class names for ``emotion`` (default: the manifest's
            ``emotion_names``).
        crop: ``"random"``, ``"central"`` or ``"none"``. Default: ``"central"``
            (``central_fraction``) in evaluation; in training ``"none"`` when the ``augment``
            policy has its own geometry (``christensen2018``, ``light``: they crop and zoom
            themselves), else ``"random"``. ``"random"`` is not allowed in evaluation.
        central_fraction: side fraction of the central crop (Inception evaluation: 0.875).
        crop_area_range: area range of the random training crop.
        crop_aspect_ratio_range: aspect-ratio range of the random training crop.
        flip: random horizontal flip; default ``training``.
        equalize: histogram-equalise each image (Athanasiadis 2022) before augmentation.
        include_ids: add ``targets["id"]`` (string ``image/id``).
        cycle_length: shards read in parallel.
        num_parallel_calls: parallelism of the map stages.
        soft_labels: ``emotion``: add ``targets["emotion_dist"]`` from ``label/emotion_dist``
            (FER+ votes), falling back to the one-hot hard label where a record has none.
        grayscale: convert every image to grey (ITU-R 601 luma, ``tf.image.rgb_to_grayscale``)
            after decoding, cropping and augmentation, before normalisation.
        channels: output channels, 1 or 3. Default: 3, or with ``grayscale`` the ``model``'s
            channel count (1 without a ``model``); grey images are replicated to 3 channels.
            1 needs ``grayscale``.
        folds: keep only the examples whose ``meta/fold`` is in this list (``None``: all).
            ``split`` may then name several splits (a list) that the folds partition.
    """

    task: str | Sequence[str] = "au"
    split: str = "train"
    batch_size: int = 32
    image_size: int | Sequence[int] | None = None
    preprocessing: str | None = None
    augment: Any = "none"
    training: bool | None = None
    shuffle: bool | None = None
    shuffle_buffer: int = 1024
    cache: bool | str = False
    repeat: bool | None = None
    drop_remainder: bool | None = None
    seed: int | None = None
    aus: Any = None
    unknown: str = "auto"
    posed_classes: int = 2
    emotion_classes: Sequence[str] | None = None
    crop: str | None = None
    central_fraction: float | None = 0.875
    crop_area_range: Sequence[float] = (0.7, 1.0)
    crop_aspect_ratio_range: Sequence[float] = (0.9, 1.0 / 0.9)
    flip: bool | None = None
    equalize: bool = False
    include_ids: bool = False
    cycle_length: int = 8
    num_parallel_calls: int = AUTOTUNE
    soft_labels: bool = False
    grayscale: bool = False
    channels: int | None = None
    folds: Sequence[int] | None = None


@dataclass(frozen=True)
class _Plan:
    """The checked options with every default resolved (what the steps below read)."""

    tasks: list[str]
    size: tuple[int, int]
    family: str
    training: bool
    shuffle: bool
    repeat: bool
    drop_remainder: bool
    flip: bool
    unknown: str
    crop: str
    area_range: tuple[float, float]
    aspect_range: tuple[float, float]
    policy: Any  # the per-example or per-batch augmentation, None when there is none
    fused: bool  # the policy has its own geometry and runs per example with the resize
    deterministic: bool
    seed: int
    options: PipelineOptions
    channels: int
    folds: tuple[int, ...] | None
    v2: bool  # the schema-v2 keys are parsed


@dataclass(frozen=True)
class _Sharding:
    """Which part of the records this input pipeline reads, and its batch size."""

    files: list[str]
    num_pipelines: int
    pipeline_id: int
    per_batch: int
    by_example: bool  # fewer shards than pipelines: every pipeline reads all, keeps 1/n


def _channels(o: PipelineOptions, model: Any) -> int:
    """Output channels: 3 (RGB, or grey replicated), or 1 (grey) for one-channel models."""
    channels = o.channels
    if channels is None:
        channels = 3
        if o.grayscale:
            channels = int(model.input_shape[2]) if model is not None else 1
    if isinstance(channels, bool) or channels not in (1, 3):
        raise invalid("channels", "1, 3 or None", o.channels)
    if channels == 1 and not o.grayscale:
        raise invalid("channels", "3 or None when grayscale is False (1 channel is grey)", channels)
    return int(channels)


def _folds(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    ok = (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        and all(v >= 0 for v in value)
    )
    if not ok:
        raise invalid("folds", "None or a non-empty list of fold numbers >= 0", value)
    return tuple(int(v) for v in value)


def _model_defaults(
    model: Any, image_size: Any, preprocessing: str | None
) -> tuple[tuple[int, int], str]:
    if model is not None:
        if isinstance(model, str) or not hasattr(model, "input_shape"):
            raise invalid(
                "model",
                "a model's catalog entry such as fer_tf.models.get_spec('inception_v4') (or "
                "pass image_size and preprocessing)",
                model,
            )
        if image_size is None:
            image_size = tuple(model.input_shape[:2])
        if preprocessing is None:
            preprocessing = model.preprocessing
    size = img.as_size(299 if image_size is None else image_size)
    family = "inception" if preprocessing is None else preprocessing
    if family not in PREPROCESSING_FAMILIES:
        raise invalid("preprocessing", f"one of {list(PREPROCESSING_FAMILIES)}", preprocessing)
    return size, family


def _check_range(name: str, value: Any, lo: float, hi: float) -> tuple[float, float]:
    if (
        not isinstance(value, Sequence)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) for v in value)
        or not lo < value[0] <= value[1] <= hi
    ):
        raise invalid(name, f"a (low, high) pair with {lo} < low <= high <= {hi}", value)
    return float(value[0]), float(value[1])


def _check_counts(o: PipelineOptions) -> None:
    for name in ("batch_size", "shuffle_buffer", "cycle_length"):
        value = getattr(o, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise invalid(name, "a positive int", value)
    seed = o.seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise invalid("seed", "an int or None", seed)
    if o.central_fraction is not None and not 0 < o.central_fraction <= 1:
        raise invalid("central_fraction", "None or a fraction in (0, 1]", o.central_fraction)


def _plan(o: PipelineOptions, model: Any) -> _Plan:
    """Check the options and resolve their defaults (nothing is read yet)."""
    task = o.task
    tasks = [task] if isinstance(task, str) else list(task) if isinstance(task, Sequence) else None
    if not tasks or any(t not in TASKS for t in tasks) or len(set(tasks)) != len(tasks):
        raise invalid("task", f"one of {list(TASKS)} or a list of distinct ones", task)
    split_ok = (isinstance(o.split, str) and o.split) or (
        isinstance(o.split, Sequence)
        and len(o.split) > 0
        and all(isinstance(x, str) and x for x in o.split)
    )
    if not split_ok:
        raise invalid("split", "a split name such as 'train' or 'val', or a list of them", o.split)
    if o.unknown not in UNKNOWN_MODES:
        raise invalid("unknown", f"one of {list(UNKNOWN_MODES)}", o.unknown)
    _check_counts(o)
    area_range = _check_range("crop_area_range", o.crop_area_range, 0.0, 1.0)
    aspect_range = _check_range("crop_aspect_ratio_range", o.crop_aspect_ratio_range, 0.0, 100.0)
    size, family = _model_defaults(model, o.image_size, o.preprocessing)
    training = (o.split == "train") if o.training is None else bool(o.training)
    channels = _channels(o, model)
    folds = _folds(o.folds)
    if isinstance(o.augment, str) and o.augment.strip().lower() not in aug.POLICIES:
        raise invalid(
            "augment", f"one of {list(aug.POLICIES)}, an AugmentPolicy or a callable", o.augment
        )
    unknown = o.unknown
    if unknown == "auto":
        unknown = "drop" if len(tasks) == 1 and tasks[0] in CLASSIFICATION_TASKS else "mask"
    # Augmentation runs in training only.
    policy = aug.get_policy(o.augment, seed=o.seed) if training else None
    if isinstance(policy, aug.IdentityPolicy):
        policy = None
    fused = isinstance(policy, aug.AugmentPolicy) and policy.has_geometry
    crop = o.crop
    if crop is None:
        # A policy with its own geometry (christensen2018, light) crops and zooms itself: the training
        # image is the whole record image, as Christensen 2018 fed imgaug.
        crop = "central" if not training else "none" if fused else "random"
    if crop not in img.TRAIN_CROPS:
        raise invalid("crop", f"one of {list(img.TRAIN_CROPS)}", crop)
    if crop == "random" and not training:
        raise invalid("crop", "'central' or 'none' when training is False (no random crops)", crop)
    # Seeded runs and evaluation keep the order; unseeded training may reorder for speed.
    seed = o.seed
    deterministic = seed is not None or not training
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)

    def default(value: bool | None) -> bool:
        return training if value is None else bool(value)

    return _Plan(
        tasks=tasks,
        size=size,
        family=family,
        training=training,
        shuffle=default(o.shuffle),
        repeat=default(o.repeat),
        drop_remainder=default(o.drop_remainder),
        flip=default(o.flip),
        unknown=unknown,
        crop=crop,
        area_range=area_range,
        aspect_range=aspect_range,
        policy=policy,
        fused=fused,
        deterministic=deterministic,
        seed=int(seed) % (2**63 - 1),
        options=o,
        channels=channels,
        folds=folds,
        v2=folds is not None
        or "au_intensity" in tasks
        or (bool(o.soft_labels) and "emotion" in tasks),
    )


def _shard(
    files: list[str], input_context: tf.distribute.InputContext | None, batch_size: int
) -> _Sharding:
    """Split the shards across input pipelines (by file when there are enough files)."""
    if input_context is None:
        return _Sharding(files, 1, 0, batch_size, False)
    num_pipelines = int(input_context.num_input_pipelines)
    pipeline_id = int(input_context.input_pipeline_id)
    per_batch = int(input_context.get_per_replica_batch_size(batch_size))
    by_example = num_pipelines > 1 and len(files) < num_pipelines
    if num_pipelines > 1 and not by_example:
        files = files[pipeline_id::num_pipelines]
    return _Sharding(files, num_pipelines, pipeline_id, per_batch, by_example)


def _read_records(plan: _Plan, shard: _Sharding, shuffle_seed: int) -> tf.data.Dataset:
    """Step 1: serialized examples: interleaved shards, sharded, cached, shuffled, repeated."""
    o, files = plan.options, shard.files
    ds = tf.data.Dataset.from_tensor_slices(files)
    if plan.shuffle and len(files) > 1 and not shard.by_example:
        # (Example-level sharding needs the same example order in every pipeline.)
        ds = ds.shuffle(len(files), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20),
        cycle_length=max(1, min(o.cycle_length, len(files))),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=plan.deterministic or shard.by_example,
    )
    if shard.by_example:
        ds = ds.shard(shard.num_pipelines, shard.pipeline_id)
    if o.cache:
        ds = ds.cache() if o.cache is True else ds.cache(str(o.cache))
    if plan.shuffle:
        ds = ds.shuffle(o.shuffle_buffer, seed=shuffle_seed + 1, reshuffle_each_iteration=True)
    if plan.repeat:
        ds = ds.repeat()
    return ds


def _parse_targets(
    ds: tf.data.Dataset, plan: _Plan, spec: Mapping[str, Any], num_aus: int
) -> tf.data.Dataset:
    """Step 2: ``(encoded image, targets)``; unknown labels dropped when the plan says so."""
    tasks, include_ids, drop = plan.tasks, plan.options.include_ids, plan.unknown == "drop"
    soft, folds = bool(plan.options.soft_labels), plan.folds
    select = drop or folds is not None

    def parse(serialized: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor], tf.Tensor]:
        parsed = _parse(serialized, num_aus, plan.v2)
        targets, known = _targets(parsed, tasks, spec, soft)
        if include_ids:
            targets["id"] = parsed["image/id"]
        keep = tf.constant(True)
        if drop:
            for k in known.values():
                keep = tf.logical_and(keep, k)
        if folds is not None:
            in_folds = tf.reduce_any(tf.equal(parsed["meta/fold"], tf.constant(folds, tf.int64)))
            keep = tf.logical_and(keep, in_folds)
        return parsed["image/encoded"], targets, keep

    ds = ds.map(
        parse, num_parallel_calls=plan.options.num_parallel_calls, deterministic=plan.deterministic
    )
    if select:
        ds = ds.filter(lambda e, t, keep: keep)
    return ds.map(lambda e, t, keep: (e, t))


def to_channels(images: tf.Tensor, *, grayscale: bool, channels: int = 3) -> tf.Tensor:
    """RGB images to what the model takes: unchanged, or grey in one or three channels.

    Grey is the ITU-R 601 luma ``0.2989 R + 0.587 G + 0.114 B`` (``tf.image.rgb_to_grayscale``);
    with ``channels=3`` it is replicated to three equal channels, which is how an RGB model
    (pretrained on ImageNet) sees a grey dataset (Athanasiadis 2022). Runs eagerly and in graphs.

    Args:
        images: ``[..., H, W, 3]`` real tensor.
        grayscale: convert to grey.
        channels: 1 or 3 (with ``grayscale``).

    Returns:
        ``float32`` ``[..., H, W, channels]`` when ``grayscale``, else ``images``.
    """
    if not grayscale:
        return images
    grey = tf.image.rgb_to_grayscale(tf.cast(images, tf.float32))
    return grey if channels == 1 else tf.repeat(grey, 3, axis=-1)


def _to_channels(images: tf.Tensor, plan: _Plan) -> tf.Tensor:
    """:func:`to_channels` for the plan. Augmentation runs on the decoded RGB image first (colour
    policies need three channels; a grey record decodes to R = G = B and stays grey under them),
    then the luma is taken."""
    return to_channels(images, grayscale=plan.options.grayscale, channels=plan.channels)


def _load_images(ds: tf.data.Dataset, plan: _Plan, example_seed: tf.Tensor) -> tf.data.Dataset:
    """Step 3: decode, crop, resize, flip and (per-example policies) augment; normalise unless a
    batch policy still has to run."""
    o = plan.options
    size, family, policy, fused, crop = plan.size, plan.family, plan.policy, plan.fused, plan.crop
    batch_policy = policy is not None and not fused

    def finish(image: tf.Tensor) -> tf.Tensor:
        # Normalise per example (cache-friendly) unless a batch policy still has to run.
        if batch_policy:
            return image
        return img.normalize(_to_channels(image, plan), family)

    def load_train(index: tf.Tensor, encoded: tf.Tensor, targets: Any) -> tuple[tf.Tensor, Any]:
        s = tf.random.experimental.stateless_fold_in(example_seed, index)
        crop_seed, warp_seed = tf.unstack(tf.random.experimental.stateless_split(s, 2))
        shape = img.image_shape(encoded)
        if crop == "random":
            window = img.random_crop_window(
                shape, crop_seed, area_range=plan.area_range, aspect_ratio_range=plan.aspect_range
            )
        elif crop == "central" and o.central_fraction is not None and o.central_fraction < 1:
            window = img.central_crop_window(shape, o.central_fraction)
        else:
            window = tf.stack([0, 0, shape[0], shape[1]])
        image = img.decode_crop(encoded, window)
        if o.equalize:
            image = img.equalize_histogram(image)
        if fused:
            # One resampling (resize + flip + the policy's geometry), then the photometric ops,
            # per example while the image is in cache; then normalise.
            image = policy.augment_example(image, size, warp_seed, flip=plan.flip)
        else:
            image = img.resize(image, size)
            if plan.flip:
                image = tf.image.stateless_random_flip_left_right(image, warp_seed)
        return finish(image), targets

    def load_eval(encoded: tf.Tensor, targets: Any) -> tuple[tf.Tensor, Any]:
        fraction = o.central_fraction if crop == "central" else None
        image = img.preprocess_for_eval(encoded, size, central_fraction=fraction)
        if o.equalize:
            image = img.equalize_histogram(image)
        return finish(image), targets

    if plan.training:
        return ds.enumerate().map(
            lambda i, element: load_train(i, *element),
            num_parallel_calls=o.num_parallel_calls,
            deterministic=plan.deterministic,
        )
    return ds.map(
        load_eval, num_parallel_calls=o.num_parallel_calls, deterministic=plan.deterministic
    )


def _batch(
    ds: tf.data.Dataset, plan: _Plan, per_batch: int, batch_seed: tf.Tensor
) -> tf.data.Dataset:
    """Step 4: batches; policies that run on whole batches (Keras RandAugment, callables,
    photometric-only policies) and their normalisation; options and prefetch."""
    ds = ds.batch(per_batch, drop_remainder=plan.drop_remainder)
    batch_policy = None if plan.fused else plan.policy
    if batch_policy is not None:
        stateful = isinstance(batch_policy, aug.RandAugmentPolicy)

        def augment_batch(index: tf.Tensor, images: tf.Tensor, targets: Any) -> Any:
            s = tf.random.experimental.stateless_fold_in(batch_seed, index)
            images = _to_channels(batch_policy(images, s), plan)
            return img.normalize(images, plan.family), targets

        ds = ds.enumerate().map(
            lambda i, element: augment_batch(i, *element),
            num_parallel_calls=None if stateful else plan.options.num_parallel_calls,
            deterministic=None if stateful else plan.deterministic,
        )
    options = tf.data.Options()
    options.deterministic = plan.deterministic
    ds = ds.with_options(options)
    return ds.prefetch(AUTOTUNE)


def _options(options: PipelineOptions | None, fields: Mapping[str, Any]) -> PipelineOptions:
    names = [f.name for f in dataclasses.fields(PipelineOptions)]
    for key in fields:
        if key not in names:
            raise TypeError(
                f"make_dataset got an unknown keyword {key!r}. It accepts source, options, "
                f"model, input_context and the PipelineOptions fields: {', '.join(names)}."
                f"{did_you_mean(key, names)}"
            )
    if options is None:
        return PipelineOptions(**fields)
    if not isinstance(options, PipelineOptions):
        raise invalid("options", "a PipelineOptions or None", options)
    return dataclasses.replace(options, **fields)


def make_dataset(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    options: PipelineOptions | None = None,
    *,
    model: Any = None,
    input_context: tf.distribute.InputContext | None = None,
    **fields: Any,
) -> tf.data.Dataset:
    """Build a ``tf.data.Dataset`` of ``(images, targets)`` batches from schema-v1/v2 records.

    Four steps: read the records (:func:`_read_records`), parse them into targets
    (:func:`_parse_targets`), load and augment the images (:func:`_load_images`), batch
    (:func:`_batch`).

    Args:
        source: records directory, its ``manifest.json``, a glob pattern or a list of shard
            files (the manifest must sit next to the files).
        options: a :class:`PipelineOptions`; ``None`` for the defaults.
        model: a model's catalog entry (``fer_tf.models.get_spec(name)`` or
            ``get_model_info(name)``: anything with ``input_shape`` and ``preprocessing``)
            supplying the ``image_size`` and ``preprocessing`` defaults.
        input_context: from ``strategy.distribute_datasets_from_function``; shards by file when
            there are at least as many shards as pipelines, else by example.
        **fields: :class:`PipelineOptions` fields, overriding ``options``
            (``make_dataset(src, task="va", split="val")``).

    Returns:
        A dataset of ``(images, targets)``, prefetched (see the module docstring).

    Raises:
        ValueError: bad argument, no file matches, unknown split, an AU the records lack.
        tf.errors.InvalidArgumentError: (while iterating) a record whose ``label/au_intensity``
            or ``label/emotion_dist`` length disagrees with the manifest.
        TypeError: a keyword that is not a :class:`PipelineOptions` field.
        records.ManifestError: missing manifest or another schema version.
    """
    o = _options(options, fields)
    plan = _plan(o, model)
    files, manifest = resolve_source(source, o.split)
    spec = label_spec(
        manifest,
        plan.tasks,
        aus=o.aus,
        posed_classes=o.posed_classes,
        emotion_classes=o.emotion_classes,
    )
    shard = _shard(files, input_context, o.batch_size)
    base_seed = tf.constant([plan.seed, shard.pipeline_id], tf.int64)
    example_seed = tf.random.experimental.stateless_fold_in(base_seed, 0)
    batch_seed = tf.random.experimental.stateless_fold_in(base_seed, 1)
    shuffle_seed = (plan.seed * 1000003 + shard.pipeline_id) % (2**63 - 1)

    ds = _read_records(plan, shard, shuffle_seed)
    ds = _parse_targets(ds, plan, spec, len(manifest.get("au_ids", [])))
    ds = _load_images(ds, plan, example_seed)
    return _batch(ds, plan, shard.per_batch, batch_seed)
