"""Evaluate a trained run on any split of any records: metrics, ``metrics.json``, report, plots.

The numbers equal what training reported in ``eval.json`` for the same weights and split: the
records go through training's evaluation pipeline (:func:`fer_tf.data.pipeline.make_dataset` with
the run's image size, normalisation and label mapping), the model's outputs through the task's
own loss and :mod:`fer_tf.metrics` statistics, batch by batch. ``best.keras`` holds the weights
``eval.json`` was computed with (the best epoch's with ``train.restore_best_weights``, else the
last; the moving averages when ``optimizer.ema_decay`` is on).

Cross-dataset: the records may come from another dataset with the same labels. AU outputs are
matched by AU number (the records may hold more AUs, in another order), emotion classes by name;
labels the model predicts that the records lack are an error naming them.

AU metrics are computed at 0.5 (as training does: ``metrics_at_0.5``) and, when the run holds
``thresholds.json`` or ``calibrate_thresholds`` is on, at the per-AU thresholds (``metrics``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_tf.evaluation.runs import (
    EvaluationError,
    RunInfo,
    check_records,
    load_run,
    read_thresholds,
    write_thresholds,
)
from fer_tf.evaluation.thresholds import au_metrics, calibrate_f1, sigmoid
from fer_tf.evaluation.videos import VideoResult, aggregate_videos
from fer_tf.tasks import Task

__all__ = ["EvaluationResult", "Predictions", "evaluate", "predict_split", "TEST_SPLITS"]

#: Splits reserved for final reporting: calibrating thresholds on them needs ``allow_test``.
TEST_SPLITS = ("test",)


@dataclass
class Predictions:
    """A split's model outputs, in the evaluation pipeline's order.

    Attributes:
        ids: ``image/id`` per example.
        outputs: ``[N, K]`` float32 main outputs (logits; predictions for va).
        labels: task labels: ``[N, K]`` AU 1/0/-1, ``[N]`` class (-1 unknown), ``[N, 2]`` va.
        metrics: the streaming metrics as training's evaluation computes them (``loss``,
            ``examples`` and the task's ``result()``).
        metric_set: the :class:`~fer_tf.metrics.StreamingMetrics` behind ``metrics``.
    """

    ids: list[str]
    outputs: np.ndarray
    labels: np.ndarray
    metrics: dict[str, float]
    metric_set: Any


@dataclass
class EvaluationResult:
    """What :func:`evaluate` measured and wrote.

    Attributes:
        run_dir: the run evaluated.
        records: the records directory.
        split: the split.
        task: the task name.
        output_names: the model's outputs.
        metrics: the task's metrics (AU: at ``thresholds``).
        metrics_at_default: AU metrics at 0.5, as training reports them (= ``metrics`` for the
            other tasks and for AU runs without thresholds).
        thresholds: per-AU thresholds used for ``metrics`` (AU task), else None.
        thresholds_source: ``"0.5"``, ``"thresholds.json (split ...)"`` or ``"calibrated"``.
        confusion_matrix: ``[K, K]`` rows true, columns predicted (classification), else None.
        videos: per-video results, or None without sequences.
        notes: label-mapping notes and warnings.
        output_dir: where the files went.
        files: the files written (names relative to ``output_dir``).
        training_eval: ``eval.json``'s metrics when this is training's split and records.
    """

    run_dir: Path
    records: Path
    split: str
    task: str
    output_names: list[str]
    metrics: dict[str, float]
    metrics_at_default: dict[str, float]
    thresholds: list[float] | None = None
    thresholds_source: str = ""
    confusion_matrix: np.ndarray | None = None
    videos: VideoResult | None = None
    notes: list[str] = field(default_factory=list)
    output_dir: Path | None = None
    files: list[str] = field(default_factory=list)
    training_eval: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``metrics.json`` contents (NaN as null)."""
        from fer_tf.training.actions import jsonable

        out: dict[str, Any] = {
            "run_dir": str(self.run_dir),
            "records": str(self.records),
            "split": self.split,
            "task": self.task,
            "output_names": list(self.output_names),
            "metrics": self.metrics,
        }
        if self.task == "au":
            out["metrics_at_0.5"] = self.metrics_at_default
            out["thresholds"] = self.thresholds
            out["thresholds_source"] = self.thresholds_source
        if self.confusion_matrix is not None:
            out["confusion_matrix"] = self.confusion_matrix
        if self.videos is not None:
            out["videos"] = {
                "count": len(self.videos.videos),
                "methods": self.videos.methods,
                "confusion": self.videos.confusion,
                "rows": self.videos.rows,
            }
        out["notes"] = list(self.notes)
        return jsonable(out)


# ---------------------------------------------------------------------------------------------
# The evaluation pipeline: training's, with ids.


def _pipeline_fields(run: Any, task: Task, records: Any) -> dict[str, Any]:
    """:func:`make_dataset` keywords of training's evaluation data: training's own
    (:func:`fer_tf.training.experiment.pipeline_fields`), in evaluation mode."""
    from fer_tf.records import read_manifest
    from fer_tf.training.experiment import pipeline_fields

    fields = pipeline_fields(run.config, task, read_manifest(records))
    fields.update(training=False, include_ids=True)
    return fields


def _class_weights(run: RunInfo, notes: list[str]) -> np.ndarray | None:
    """Training's class weights (they weigh the loss): explicit, or balanced from the training
    records' train split when those records are still there."""
    task, d = run.task, run.config.data
    if isinstance(task.class_weights, list):
        return np.asarray(task.class_weights, np.float32)
    if task.class_weights != "balanced":
        return None
    from fer_tf import records
    from fer_tf.losses import balanced_class_weights
    from fer_tf.training.experiment import _class_counts

    if d.records and records.list_shards(d.records, d.train_split):
        return balanced_class_weights(_class_counts(str(d.records), d.train_split, task))
    notes.append(
        "The loss is unweighted: the run's balanced class weights need its training records "
        f"({d.records}), which are gone."
    )
    return None


def predict_split(
    run: RunInfo,
    model: Any,
    records: str | os.PathLike[str],
    split: str,
    batch_size: int,
    *,
    class_weights: np.ndarray | None = None,
    progress: bool = False,
) -> Predictions:
    """Run ``model`` over a split with training's evaluation pipeline; collect everything.

    Args:
        run: the run (config and task).
        model: its Keras model.
        records: the records directory.
        split: the split.
        batch_size: examples per batch.
        class_weights: training's class weights (they weigh the loss).
        progress: show a progress bar.

    Returns:
        The :class:`Predictions`.
    """
    import tensorflow as tf
    from tqdm import tqdm

    from fer_tf.data.pipeline import make_dataset

    task = run.task
    ds = make_dataset(
        str(records), split=split, batch_size=batch_size, **_pipeline_fields(run, task, records)
    )
    m = task.make_metrics()

    @tf.function
    def step(x: Any, targets: Any) -> Any:
        y = task.labels(targets)
        main = tf.cast(task.outputs(model(x, training=False)), tf.float32)
        if task.loss == "ccc":
            loss = task.replica_loss(y, main, global_batch_size=1, num_replicas=1)
        else:
            loss = tf.reduce_sum(task.per_example_loss(y, main, class_weights))
        return y, main, loss, m.batch_stats(y, task.metric_outputs(main))

    ids, outs, labels = [], [], []
    loss_sum = n_sum = 0.0
    batches = 0
    for x, targets in tqdm(ds, desc=f"evaluate {split}", unit="batch", disable=not progress):
        y, main, loss, stats = step(x, targets)
        m.update_from_stats({k: v.numpy() for k, v in stats.items()})
        loss_sum += float(loss)
        n_sum += float(main.shape[0])
        batches += 1
        ids += [i.decode("utf-8") for i in targets["id"].numpy()]
        outs.append(main.numpy())
        labels.append(y.numpy())
    denom = batches if task.loss == "ccc" else n_sum
    metrics = {"loss": loss_sum / max(denom, 1.0), "examples": n_sum, **m.result()}
    k = task.num_outputs
    return Predictions(
        ids=ids,
        outputs=np.concatenate(outs) if outs else np.zeros((0, k), np.float32),
        labels=np.concatenate(labels) if labels else np.zeros((0,), np.float32),
        metrics=metrics,
        metric_set=m,
    )


def load_model(run: RunInfo) -> Any:
    """The run's ``best.keras`` (custom layers registered)."""
    import keras

    from fer_tf.models import CUSTOM_OBJECTS

    return keras.models.load_model(str(run.model_path), custom_objects=CUSTOM_OBJECTS)


def scores_of(task: Task, outputs: np.ndarray) -> np.ndarray:
    """Scores from the main outputs: sigmoid (AU, sigmoid CE), softmax, or the predictions."""
    x = np.asarray(outputs, dtype=np.float64)
    act = task.head_activation
    if act == "sigmoid":
        return sigmoid(x)
    if act == "softmax":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return np.tanh(x) if act == "tanh" else x


def read_sequences(records: str | os.PathLike[str], split: str) -> dict[str, str]:
    """``image/id`` → ``meta/sequence`` of a split (empty for stills; ids of v1 and v2 records).

    Args:
        records: the records directory.
        split: the split.

    Returns:
        The mapping (only ids whose sequence is non-empty).
    """
    import tensorflow as tf

    from fer_tf.data.pipeline import resolve_source

    files, _ = resolve_source(str(records), split)
    spec = {
        "image/id": tf.io.FixedLenFeature([], tf.string, default_value=""),
        "meta/sequence": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    out: dict[str, str] = {}
    ds = tf.data.TFRecordDataset(files).batch(4096).map(lambda s: tf.io.parse_example(s, spec))
    for batch in ds:
        for i, s in zip(batch["image/id"].numpy(), batch["meta/sequence"].numpy()):
            if s:
                out.setdefault(i.decode("utf-8"), s.decode("utf-8"))
    return out


# ---------------------------------------------------------------------------------------------
# evaluate()


def _check_args(split: Any, batch_size: Any) -> None:
    from fer_tf.checks import check_number

    if not isinstance(split, str) or not split:
        raise EvaluationError(f"The 'split' parameter must be a split name. Got {split!r}.")
    check_number("batch_size", batch_size, min=1, integer=True, allow_none=True)


def _au_thresholds(
    run: RunInfo, pred: Predictions, probs: np.ndarray, calibrate: bool, split: str, records: Path
) -> tuple[list[float] | None, str]:
    if run.task.name != "au":
        return None, ""
    if calibrate:
        t = calibrate_f1(pred.labels, probs)
        write_thresholds(run.run_dir, run.task.aus, t, split, str(records))
        return t, f"calibrated on split '{split}' (in-sample: optimistic here)"
    stored = read_thresholds(run.run_dir, run.task)
    if stored is None:
        return None, "0.5"
    t, data = stored
    source = f"thresholds.json (calibrated on split '{data.get('split', '?')}')"
    if data.get("split") == split:
        source += ": this split, so F1 here is in-sample (optimistic)"
    return t, source


def _same_records(run: RunInfo, records: Path) -> bool:
    """Whether ``records`` is the directory the run was trained on."""
    d = run.config.data
    try:
        return bool(d.records) and Path(d.records).resolve() == records.resolve()
    except OSError:
        return False


def _training_eval(run: RunInfo, records: Path, split: str) -> dict[str, Any] | None:
    """``eval.json``'s metrics when this evaluation is training's own (records and split)."""
    ev = run.eval_json()
    if ev is None or split != ev.get("split", run.config.data.eval_split):
        return None
    return ev.get("metrics") if _same_records(run, records) else None


def evaluate(
    model: str | os.PathLike[str],
    records: str | os.PathLike[str] | None = None,
    split: str = "val",
    output_dir: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    calibrate_thresholds: bool = False,
    *,
    allow_test_calibration: bool = False,
    plots: bool = True,
    progress: bool = False,
    log: Any = None,
) -> EvaluationResult:
    """Evaluate a run's ``best.keras`` on a split; write ``metrics.json``, ``report.md``, PNGs.

    Args:
        model: the run directory (from ``fer-tf-train``).
        records: a records directory (default: the run's own ``data.records``).
        split: the split to evaluate.
        output_dir: where the outputs go (None: compute only, write nothing but thresholds).
        batch_size: examples per batch (default: the run's ``data.batch_size``, which the loss of
            a ``ccc`` run depends on).
        calibrate_thresholds: AU task: choose per-AU thresholds maximising F1 on this split and
            write them to the run's ``thresholds.json``.
        allow_test_calibration: allow calibrating on a split in :data:`TEST_SPLITS` (the split
            of final reporting); refused otherwise.
        plots: write the PNGs (with ``output_dir``).
        progress: show a progress bar.
        log: ``log(line)`` for one-line messages (None: silent).

    Returns:
        The :class:`EvaluationResult`.

    Raises:
        EvaluationError: not a run directory, no trained model, records without the split or
            without the labels the model predicts, thresholds on the wrong task or on the test
            split, or a split without any known label.
    """
    say = log or (lambda _m: None)
    _check_args(split, batch_size)
    run = load_run(model)
    if calibrate_thresholds and run.task.name != "au":
        raise EvaluationError(
            f"--calibrate-thresholds applies to AU models; this run's task is {run.task.name!r}."
        )
    if calibrate_thresholds and split in TEST_SPLITS and not allow_test_calibration:
        raise EvaluationError(
            f"Calibrating thresholds on split {split!r} would tune them on the split of final "
            "reporting. Calibrate on 'val' (--split val --calibrate-thresholds), then report on "
            "'test'; pass --allow-test-calibration to do it anyway."
        )
    if records is None:
        if not run.config.data.records:
            raise EvaluationError(f"The run '{model}' names no records; pass --records.")
        records = run.config.data.records
    records = Path(records)
    _, notes = check_records(records, split, run.task)
    if _same_records(run, records):
        notes = []  # the mapping training used: nothing to report
    keras_model = load_model(run)
    weights = _class_weights(run, notes)
    batch = batch_size or run.config.data.batch_size
    say(f"fer-tf-evaluate: {run.name} ({run.task.name}) on {records} split {split!r}")
    pred = predict_split(
        run, keras_model, records, split, batch, class_weights=weights, progress=progress
    )
    if not _has_known_label(run.task, pred.labels):
        raise EvaluationError(
            f"Split {split!r} of the records in '{records}' has no example with a known "
            f"{run.task.name!r} label; nothing to evaluate."
        )
    return _finish(run, pred, records, split, output_dir, calibrate_thresholds, notes, plots)


def _has_known_label(task: Task, labels: np.ndarray) -> bool:
    """Whether any label is known (AU/class >= 0; valence/arousal not NaN)."""
    y = np.asarray(labels, dtype=np.float64)
    return bool(np.any(~np.isnan(y))) if task.name == "va" else bool(np.any(y >= 0))


def _finish(
    run: RunInfo,
    pred: Predictions,
    records: Path,
    split: str,
    output_dir: str | os.PathLike[str] | None,
    calibrate: bool,
    notes: list[str],
    plots: bool,
) -> EvaluationResult:
    """Thresholds, per-video metrics and the output files of an evaluation."""
    task = run.task
    scores = scores_of(task, pred.outputs)
    thresholds, source = _au_thresholds(run, pred, scores, calibrate, split, records)
    metrics = dict(pred.metrics)
    if thresholds is not None:
        m = au_metrics(task.output_names, pred.labels, scores, thresholds)
        metrics = {"loss": pred.metrics["loss"], "examples": pred.metrics["examples"], **m.result()}
    labels = pred.labels
    sequences = read_sequences(records, split)
    videos = None
    if sequences:
        seq = [sequences.get(i, "") for i in pred.ids]
        videos = aggregate_videos(task.name, seq, scores, labels, task.output_names, thresholds)
    result = EvaluationResult(
        run_dir=run.run_dir,
        records=records,
        split=split,
        task=task.name,
        output_names=list(task.output_names),
        metrics=metrics,
        metrics_at_default=dict(pred.metrics),
        thresholds=thresholds,
        thresholds_source=source or ("0.5" if task.name == "au" else ""),
        confusion_matrix=(pred.metric_set.confusion_matrix() if task.is_classification else None),
        videos=videos,
        notes=notes,
        training_eval=_training_eval(run, records, split),
    )
    if output_dir is not None:
        _write_outputs(result, run, pred, scores, Path(output_dir), plots)
    return result


def _write_outputs(
    result: EvaluationResult,
    run: RunInfo,
    pred: Predictions,
    scores: np.ndarray,
    out: Path,
    plots: bool,
) -> None:
    from fer_tf.evaluation import report

    out.mkdir(parents=True, exist_ok=True)
    result.output_dir = out
    images = report.figures(result, run, pred.labels, scores, out) if plots else []
    (out / "metrics.json").write_text(
        json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8"
    )
    report.write_report(result, run, images, out / "report.md")
    result.files = ["metrics.json", "report.md", *images]


def describe(result: EvaluationResult) -> str:
    """One line: the headline metric of an evaluation (for the CLI)."""
    task = result.task
    key = {"au": "f1_mean", "va": "ccc_mean"}.get(task, "accuracy")
    value = result.metrics.get(key, float("nan"))
    n = int(result.metrics.get("examples", 0))
    line = f"{result.split}: {n} examples, {key} {value:.4f}"
    if task == "au" and result.thresholds is not None:
        line += f" (at 0.5: {result.metrics_at_default.get(key, float('nan')):.4f})"
    if result.output_dir is not None:
        line += f"; report {result.output_dir / 'report.md'}"
    return line
