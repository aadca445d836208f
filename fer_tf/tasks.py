"""Tasks: what a model predicts, from which labels, with which loss and metrics.

=========  ============================  =====================================================
task       outputs                        default loss / metrics
=========  ============================  =====================================================
``au``     K sigmoid logits (one per AU)  masked sigmoid CE / F1, precision, recall, AUC, ...
``va``     2 linear (valence, arousal)    MSE (Bartissol 2017) or 1-CCC / RMSE, CCC, Pearson
``posed``  2 or 12 softmax logits         softmax CE / accuracy, confusion, chance ln K
``emotion`` 6 or 7 softmax logits         softmax CE (+ class weights; soft-label CE on
                                          ``label/emotion_dist``) / accuracy, macro-F1
``au_intensity`` K linear (0-5 per AU)   MSE masked where unknown / ICC(3,1), Pearson, MAE
=========  ============================  =====================================================

:func:`resolve_task` is pure Python (no TensorFlow), so the CLI can reject a bad task before any
graph is built; :meth:`Task.replica_loss` and :meth:`Task.make_metrics` import TensorFlow lazily.

Labels arrive as a dict (the input pipeline's second element). :meth:`Task.labels` picks the
task's entry and turns it into this module's convention: ``"au"`` ``[B, K]`` (1/0/-1),
``"va"`` ``[B, 2]`` float (NaN unknown), ``"posed"`` / ``"emotion"`` ``[B]`` int class indices
(-1 unknown), ``"au_intensity"`` ``[B, K]`` float (NaN unknown). When a ``"<task>_mask"`` entry is
present (the pipeline's convention: label 0, mask 0 where unknown), masked entries become -1 /
NaN. ``"valence"``/``"arousal"`` ``[B]`` pairs are stacked. A plain tensor is taken as the task's
labels. With soft labels (``emotion`` and an ``"emotion_dist"`` entry), the labels are the dict
``{"label": [B] hard class (-1 unknown), "dist": [B, K] target distribution}``: the loss reads
``dist``, the metrics ``label``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fer_tf import facs

__all__ = ["Task", "TASK_NAMES", "SOFT_LABEL_MODES", "resolve_task", "LOSSES_BY_TASK"]

TASK_NAMES = ("au", "va", "posed", "emotion", "au_intensity")
#: ``task.soft_labels`` values: ``auto`` uses ``label/emotion_dist`` when the records have it.
SOFT_LABEL_MODES = ("auto", True, False)

# Allowed losses per task; the first is the default.
LOSSES_BY_TASK: dict[str, tuple[str, ...]] = {
    "au": ("sigmoid_ce",),
    "va": ("mse", "ccc"),
    # Christensen 2018 Table 4.1 searched "softmax or sigmoid" for the posed task.
    "posed": ("softmax_ce", "sigmoid_ce"),
    "emotion": ("softmax_ce", "sigmoid_ce"),
    "au_intensity": ("mse",),
}


@dataclass
class Task:
    """A resolved task.

    Attributes:
        name: ``au``, ``va``, ``posed`` or ``emotion``.
        output_names: one name per model output (AU codes, dimensions or class names).
        loss: ``sigmoid_ce``, ``softmax_ce``, ``mse`` or ``ccc``.
        unknown_labels: AU task: ``mask`` or ``zero``.
        class_weights: None, ``"balanced"`` (resolved later from counts) or one weight per class.
        label_smoothing: softmax CE label smoothing.
        bounded: VA: outputs pass through ``tanh``.
        aus: AU numbers (AU and AU intensity tasks).
        soft_labels: emotion: ``"auto"``, True or False (see :data:`SOFT_LABEL_MODES`); the
            soft-label loss runs when the labels carry ``emotion_dist`` and this is not False.
    """

    name: str
    output_names: tuple[str, ...]
    loss: str
    unknown_labels: str = "mask"
    class_weights: Any = None
    label_smoothing: float = 0.0
    bounded: bool = False
    aus: tuple[int, ...] = field(default_factory=tuple)
    soft_labels: bool | str = "auto"

    @property
    def num_outputs(self) -> int:
        """Number of model outputs."""
        return len(self.output_names)

    @property
    def is_classification(self) -> bool:
        """True for single-label classification (posed, emotion)."""
        return self.name in ("posed", "emotion")

    @property
    def head_activation(self) -> str:
        """Activation applied at prediction time: ``sigmoid``, ``softmax`` or ``linear``."""
        if self.name == "au" or self.loss == "sigmoid_ce":
            return "sigmoid"
        if self.is_classification:
            return "softmax"
        return "tanh" if self.bounded else "linear"

    @property
    def chance_loss(self) -> float:
        """Loss of an uninformed uniform guess: ``ln K`` (softmax), ``ln 2`` per output (sigmoid:
        probability 0.5 everywhere); NaN for regression."""
        if self.is_classification and self.loss == "softmax_ce":
            return math.log(self.num_outputs)
        if self.loss == "sigmoid_ce":
            return math.log(2.0)
        return float("nan")

    @property
    def primary_metric(self) -> str:
        """The validation metric to monitor by default (higher is better)."""
        return {"au": "f1_mean", "va": "ccc_mean", "au_intensity": "icc_mean"}.get(
            self.name, "accuracy"
        )

    # -- TensorFlow side -----------------------------------------------------------------------
    def labels(self, labels: Any) -> Any:
        """The task's label tensor from the pipeline's label structure.

        Args:
            labels: a dict of label tensors or a tensor.

        Returns:
            The label tensor for this task.

        Raises:
            KeyError: if the dict lacks the task's labels.
        """
        if not isinstance(labels, Mapping):
            return labels
        if self.name in labels:
            y = labels[self.name]
            mask = labels.get(f"{self.name}_mask")
            if mask is not None:
                # The input pipeline's convention: label 0 + mask 0 where unknown. Back to ours.
                import tensorflow as tf

                known = tf.cast(mask, tf.float32) > 0
                if self.name in ("va", "au_intensity"):
                    y = tf.where(known, tf.cast(y, tf.float32), float("nan"))
                else:
                    y = tf.where(known, y, -tf.ones_like(y))
            if self.uses_soft_labels(labels):
                return {"label": y, "dist": labels["emotion_dist"]}
            return y
        if self.name == "va" and "valence" in labels and "arousal" in labels:
            import tensorflow as tf

            return tf.stack(
                [tf.cast(labels["valence"], tf.float32), tf.cast(labels["arousal"], tf.float32)],
                axis=-1,
            )
        raise KeyError(
            f"The batch's labels have no {self.name!r} entry (keys: {sorted(labels)}); "
            f"the input pipeline must be built for task {self.name!r}."
        )

    def uses_soft_labels(self, labels: Any) -> bool:
        """Whether the soft-label loss applies to these labels: an ``emotion`` task not set to
        ``soft_labels=False``, and labels that carry ``emotion_dist``."""
        return (
            self.name == "emotion"
            and self.soft_labels is not False
            and isinstance(labels, Mapping)
            and "emotion_dist" in labels
        )

    def outputs(self, outputs: Any) -> Any:
        """The main output among a model's outputs (drops auxiliary logits)."""
        if isinstance(outputs, Mapping):
            for key in (self.name, "logits", "predictions"):
                if key in outputs:
                    return outputs[key]
            return next(iter(outputs.values()))
        if isinstance(outputs, (list, tuple)):
            return outputs[0]
        return outputs

    def aux_outputs(self, outputs: Any) -> Any:
        """Auxiliary logits if the model returns them (``aux_logits`` key or 2nd element)."""
        if isinstance(outputs, Mapping):
            return outputs.get("aux_logits")
        if isinstance(outputs, (list, tuple)) and len(outputs) > 1:
            return outputs[1]
        return None

    def per_example_loss(self, labels: Any, outputs: Any, class_weights: Any = None) -> Any:
        """Per-example loss ``[B]`` (not for ``ccc``, which is batch-level).

        Args:
            labels: the task's labels.
            outputs: the task's float32 outputs.
            class_weights: resolved per-class weights (overrides :attr:`class_weights`).

        Returns:
            A ``[B]`` float32 tensor.

        Raises:
            ValueError: for the batch-level ``ccc`` loss.
        """
        import tensorflow as tf

        from fer_tf import losses

        cw = class_weights if class_weights is not None else self._explicit_weights()
        if isinstance(labels, Mapping) and "dist" in labels:
            if self.loss != "softmax_ce":
                raise ValueError(
                    f"Soft labels (label/emotion_dist) need the softmax_ce loss. Got {self.loss!r}; "
                    f"set task.soft_labels=false or task.loss=softmax_ce."
                )
            return losses.soft_cross_entropy(
                labels["dist"], outputs, class_weights=cw, label_smoothing=self.label_smoothing
            )
        if self.loss == "sigmoid_ce":
            if self.name == "au":
                return losses.masked_sigmoid_cross_entropy(
                    labels, outputs, unknown=self.unknown_labels
                )
            y = tf.cast(tf.reshape(labels, [-1]), tf.int32)
            known = tf.cast(y >= 0, tf.float32)
            onehot = tf.one_hot(tf.maximum(y, 0), self.num_outputs, dtype=tf.float32)
            onehot = onehot * known[:, None] + (known[:, None] - 1.0)  # unknown rows -> -1
            loss = losses.masked_sigmoid_cross_entropy(onehot, outputs)
            if cw is not None:
                loss = loss * tf.gather(tf.cast(cw, tf.float32), tf.maximum(y, 0))
            return loss
        if self.loss == "softmax_ce":
            return losses.softmax_cross_entropy(
                labels, outputs, class_weights=cw, label_smoothing=self.label_smoothing
            )
        if self.loss == "mse":
            return losses.masked_mse(labels, self.activate(outputs))
        raise ValueError(f"The {self.loss!r} loss is batch-level; use replica_loss().")

    def replica_loss(
        self,
        labels: Any,
        outputs: Any,
        *,
        global_batch_size: int,
        num_replicas: int = 1,
        class_weights: Any = None,
    ) -> Any:
        """This replica's share of the global loss (summing over replicas gives the global loss).

        Per-example losses are summed and divided by the global batch size; the batch-level
        ``ccc`` loss is divided by the number of replicas.

        Args:
            labels: the task's labels.
            outputs: the task's outputs.
            global_batch_size: examples per step over all replicas.
            num_replicas: replicas in sync.
            class_weights: resolved class weights.

        Returns:
            Scalar float32 tensor.
        """
        import tensorflow as tf

        from fer_tf import losses

        if self.loss == "ccc":
            return losses.ccc_loss(labels, self.activate(outputs)) / float(num_replicas)
        per = self.per_example_loss(labels, outputs, class_weights)
        return tf.reduce_sum(per) / float(global_batch_size)

    def activate(self, outputs: Any) -> Any:
        """Regression outputs after the optional ``tanh`` bound (identity otherwise)."""
        import tensorflow as tf

        outputs = tf.cast(outputs, tf.float32)
        if self.name == "va" and self.bounded:
            return tf.tanh(outputs)
        return outputs

    def make_metrics(self) -> Any:
        """A fresh :class:`fer_tf.metrics.StreamingMetrics` for this task."""
        from fer_tf import metrics

        if self.name == "au":
            return metrics.AUMetrics(self.output_names)
        if self.name == "va":
            return metrics.RegressionMetrics(self.output_names)
        if self.name == "au_intensity":
            return metrics.AUIntensityMetrics(self.output_names)
        return metrics.ClassificationMetrics(self.output_names)

    def metric_outputs(self, outputs: Any) -> Any:
        """Outputs as the metrics expect them (bounded VA passes through ``tanh``)."""
        return self.activate(outputs) if self.name == "va" else outputs

    def _explicit_weights(self) -> Any:
        if isinstance(self.class_weights, (list, tuple)):
            return list(self.class_weights)
        return None


def _class_names(name: str, num_classes: int) -> tuple[str, ...]:
    if name == "posed":
        if num_classes == 2:
            return facs.POSED_CLASSES_2
        if num_classes == 12:
            return facs.POSED_CLASSES_12
        raise ValueError(
            f"The 'task.num_classes' parameter must be 2 or 12 for the posed task (Christensen 2018). "
            f"Got {num_classes} instead."
        )
    if num_classes == 7:
        return facs.EMOTIONS
    if num_classes == 6:
        return facs.BASIC_EMOTIONS
    raise ValueError(
        f"The 'task.num_classes' parameter must be 6 or 7 for the emotion task. "
        f"Got {num_classes} instead."
    )


def _output_names(
    name: str, aus: str | Sequence[int], num_classes: int
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The task's output names and, for the AU tasks, AU numbers."""
    if name in ("au", "au_intensity"):
        if name == "au_intensity" and num_classes:
            raise ValueError(
                f"The 'task.num_classes' parameter does not apply to the {name} task (one output "
                f"per AU of data.aus). Got {num_classes} instead."
            )
        au_numbers = facs.parse_aus(aus)
        return tuple(f"AU{n}" for n in au_numbers), au_numbers
    if name == "va":
        if num_classes not in (0, 2):
            raise ValueError(
                f"The 'task.num_classes' parameter does not apply to the va task (2 outputs). "
                f"Got {num_classes} instead."
            )
        return ("valence", "arousal"), ()
    default = 2 if name == "posed" else 7
    return _class_names(name, num_classes or default), ()


def resolve_task(
    name: str,
    *,
    aus: str | Sequence[int] = "emotionet11",
    num_classes: int = 0,
    loss: str = "auto",
    unknown_labels: str = "mask",
    class_weights: str | Sequence[float] | None = None,
    label_smoothing: float = 0.0,
    bounded: bool = False,
    soft_labels: bool | str = "auto",
) -> Task:
    """Resolve a task from config values (pure Python).

    Args:
        name: ``au``, ``va``, ``posed``, ``emotion`` or ``au_intensity``.
        aus: AU selection for the AU and AU intensity tasks (see
            :func:`fer_tf.facs.parse_aus`).
        num_classes: posed: 2 or 12 (0 = 2); emotion: 6 or 7 (0 = 7).
        loss: ``auto`` or one of :data:`LOSSES_BY_TASK` ``[name]``.
        unknown_labels: ``mask`` or ``zero`` (AU task).
        class_weights: None, ``"balanced"`` or one weight per class (classification tasks).
        label_smoothing: in ``[0, 1)``.
        bounded: VA outputs through ``tanh``.
        soft_labels: ``"auto"``, True or False: the emotion task's soft-label cross-entropy on
            ``label/emotion_dist`` (``auto``: when the records have it).

    Returns:
        The :class:`Task`.

    Raises:
        ValueError: for an unknown task, a loss the task cannot use, a bad class count, class
            weights of the wrong length or on a task without classes.
    """
    if name not in TASK_NAMES:
        raise ValueError(
            f"The 'task.name' parameter must be one of {list(TASK_NAMES)}. Got {name!r}."
        )
    allowed = LOSSES_BY_TASK[name]
    if loss == "auto":
        loss = allowed[0]
    if loss not in allowed:
        raise ValueError(
            f"The 'task.loss' parameter must be one of {['auto', *allowed]} for the {name!r} task. "
            f"Got {loss!r} instead."
        )
    if unknown_labels not in ("mask", "zero"):
        raise ValueError(
            f"The 'task.unknown_labels' parameter must be 'mask' or 'zero'. Got {unknown_labels!r}."
        )
    if not (soft_labels == "auto" or isinstance(soft_labels, bool)):
        raise ValueError(
            f"The 'task.soft_labels' parameter must be 'auto', true or false. Got {soft_labels!r}."
        )
    if soft_labels is True and name != "emotion":
        raise ValueError(
            f"The 'task.soft_labels' parameter applies to the emotion task only (FER+ vote "
            f"distributions). Got true for the {name!r} task."
        )
    names, au_numbers = _output_names(name, aus, num_classes)
    if class_weights is not None:
        if name not in ("posed", "emotion"):
            raise ValueError(
                f"The 'task.class_weights' parameter applies to the posed and emotion tasks only. "
                f"Got {class_weights!r} for the {name!r} task."
            )
        if isinstance(class_weights, str):
            if class_weights != "balanced":
                raise ValueError(
                    f"The 'task.class_weights' parameter must be null, 'balanced' or a list of "
                    f"{len(names)} weights. Got {class_weights!r} instead."
                )
        else:
            cw = [float(w) for w in class_weights]
            if len(cw) != len(names) or any(w < 0 or not math.isfinite(w) for w in cw):
                raise ValueError(
                    f"The 'task.class_weights' parameter must hold {len(names)} non-negative "
                    f"weights (one per class). Got {list(class_weights)!r} instead."
                )
            class_weights = cw
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(
            f"The 'task.label_smoothing' parameter must be in [0, 1). Got {label_smoothing!r}."
        )
    if label_smoothing and loss != "softmax_ce":
        raise ValueError(
            f"The 'task.label_smoothing' parameter needs the softmax_ce loss. Got loss {loss!r}."
        )
    return Task(
        name=name,
        output_names=tuple(names),
        loss=loss,
        unknown_labels=unknown_labels,
        class_weights=class_weights,
        label_smoothing=float(label_smoothing),
        bounded=bool(bounded),
        aus=au_numbers,
        soft_labels=soft_labels if name == "emotion" else False,
    )


def task_from_config(config: Any) -> Task:
    """Resolve the task of an :class:`fer_tf.config.ExperimentConfig` (pure Python).

    Args:
        config: the experiment config.

    Returns:
        The :class:`Task`.

    Raises:
        ValueError: see :func:`resolve_task`.
    """
    t = config.task
    return resolve_task(
        t.name,
        aus=config.data.aus,
        num_classes=t.num_classes,
        loss=t.loss,
        unknown_labels=t.unknown_labels,
        class_weights=t.class_weights,
        label_smoothing=t.label_smoothing,
        bounded=t.bounded,
        soft_labels=t.soft_labels,
    )


__all__.append("task_from_config")
