"""Reference points for the demo's metrics: the majority-class baseline and "every AU present"."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["always_present_f1", "baseline"]


def _read_au_labels(records_dir: Path, split: str, aus: tuple[int, ...]) -> np.ndarray:
    import tensorflow as tf

    from fer_tf import records

    manifest = records.read_manifest(records_dir)
    ids = [int(a) for a in manifest["au_ids"]]
    cols = [ids.index(a) for a in aus]
    spec = {"label/au": tf.io.FixedLenFeature([len(ids)], tf.int64)}
    files = records.list_shards(records_dir, split)
    rows = []
    for batch in tf.data.TFRecordDataset(files).batch(512):
        rows.append(tf.io.parse_example(batch, spec)["label/au"].numpy()[:, cols])
    return np.concatenate(rows) if rows else np.zeros((0, len(aus)), np.int64)


def always_present_f1(eval_labels: np.ndarray, names: list[str]) -> dict[str, float]:
    """F1 of predicting every AU present for every face (a reference for F1, which the
    all-absent majority predictor scores 0 on rare AUs): per AU ``2P / (2P + N)``.

    Args:
        eval_labels: ``[M, K]`` labels (1/0/-1; -1 ignored).
        names: the K AU names.

    Returns:
        ``{"f1/<name>": ..., "f1_mean": ...}``.
    """
    labels = np.asarray(eval_labels)
    out: dict[str, float] = {}
    for k, name in enumerate(names):
        pos = int((labels[:, k] == 1).sum())
        neg = int((labels[:, k] == 0).sum())
        out[f"f1/{name}"] = 2 * pos / (2 * pos + neg) if pos else 0.0
    out["f1_mean"] = float(np.mean([out[f"f1/{n}"] for n in names])) if names else 0.0
    return out


def baseline(records_dir: Path, aus: tuple[int, ...], train: str, val: str) -> dict[str, float]:
    """Majority-class baseline on ``val`` from ``train`` label frequencies (AU metrics).

    Args:
        records_dir: records directory.
        aus: AU numbers evaluated.
        train: split whose label frequencies pick each AU's majority value.
        val: split evaluated.

    Returns:
        :func:`fer_tf.metrics.majority_baseline`'s metrics, plus the always-present reference
        (:func:`always_present_f1`) under ``always_present/f1_mean`` and
        ``always_present/f1/<AU>``.
    """
    from fer_tf.metrics import majority_baseline

    names = [f"AU{a}" for a in aus]
    ev = _read_au_labels(records_dir, val, aus)
    out = dict(majority_baseline(_read_au_labels(records_dir, train, aus), ev, names))
    out.update({f"always_present/{k}": v for k, v in always_present_f1(ev, names).items()})
    return out
