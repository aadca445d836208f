"""The SVM baseline of Christensen 2018 (§4.4.4): scikit-learn's SVC on the same records.

Features are the pixels of each face at a chosen size (optionally grey, scaled to ``[0, 1]``),
or, beyond the thesis, a trained run's embeddings (its penultimate end point, globally
average-pooled when spatial). Two fits: the default run (``C=1``, ``gamma=0.001``, RBF, as in the
thesis) and, with ``search``, a randomized search (``RandomizedSearchCV``; the thesis ran 70
iterations) over ``C`` log-uniform in ``[1e-3, 100]``, ``gamma`` log-uniform in ``[1e-5, 10]`` and
the kernel (rbf, poly, linear), optionally on a subset of the training examples, then refitted on
the whole training split. Classification tasks (``posed``, ``emotion``) report accuracy and
confusion matrices; ``au`` fits one SVC per AU (on that AU's known labels).

Written like ``fer-tf-evaluate``'s output: ``metrics.json``, ``report.md`` and PNGs
(:mod:`fer_tf.evaluation.plots`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_tf.checks import check_choice, check_number

__all__ = ["BaselineResult", "svm_baseline", "load_features", "DEFAULT_PARAMS", "SEARCH_SPACE"]

#: The thesis's first run: scikit-learn's example parameters (Christensen 2018, Table 4.4).
DEFAULT_PARAMS: dict[str, Any] = {"C": 1.0, "gamma": 0.001, "kernel": "rbf"}
#: The search space of Christensen 2018 (Table 4.3), as continuous log-uniform ranges.
SEARCH_SPACE: dict[str, Any] = {
    "C": (1e-3, 100.0),
    "gamma": (1e-5, 10.0),
    "kernel": ("rbf", "poly", "linear"),
}
TASKS = ("posed", "emotion", "au")
FEATURES = ("pixels", "embeddings")


@dataclass
class BaselineResult:
    """What :func:`svm_baseline` measured and wrote.

    Attributes:
        task: the task.
        features: ``pixels`` or ``embeddings``.
        output_names: class or AU names.
        runs: ``"default"`` (and ``"search"``) → ``{"params", "metrics", "confusion_matrix",
            "fit_seconds", ...}``.
        metrics: the best run's metrics (the search's when it ran).
        train_examples: training examples (all of the split; the search may use a subset).
        eval_examples: evaluated examples.
        notes: remarks (e.g. a class missing from training).
        output_dir: where the files went, or None.
        files: the files written.
    """

    task: str
    features: str
    output_names: list[str]
    runs: dict[str, dict[str, Any]]
    metrics: dict[str, float]
    train_examples: int
    eval_examples: int
    notes: list[str] = field(default_factory=list)
    output_dir: Path | None = None
    files: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``metrics.json`` contents (NaN as null)."""
        from fer_tf.training.actions import jsonable

        return jsonable(
            {
                "baseline": "svm",
                "task": self.task,
                "features": self.features,
                "output_names": self.output_names,
                "train_examples": self.train_examples,
                "eval_examples": self.eval_examples,
                "metrics": self.metrics,
                "runs": self.runs,
                **self.info,
                "notes": self.notes,
            }
        )


# ---------------------------------------------------------------------------------------------
# Features


def _names(records: Path, task: str, posed_classes: int) -> list[str]:
    from fer_tf import facs
    from fer_tf.records import read_manifest

    manifest = read_manifest(records)
    if task == "posed":
        return list(facs.POSED_CLASSES_2 if posed_classes == 2 else facs.POSED_CLASSES_12)
    if task == "emotion":
        return list(manifest.get("emotion_names") or facs.EMOTIONS)
    return [f"AU{int(a)}" for a in manifest.get("au_ids", [])]


def _read(
    ds: Any, task: str, limit: int | None, transform: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys, n = [], [], 0
    for x, t in ds:
        y = t[task].numpy()
        mask = t[f"{task}_mask"].numpy()
        y = np.where(mask > 0, y, -1).astype(np.int64)
        x = transform(x) if transform is not None else x.numpy()
        xs.append(x.reshape(len(x), -1))
        ys.append(y)
        n += len(y)
        if limit is not None and n >= limit:
            break
    if not xs:
        return np.zeros((0,), np.float32), np.zeros((0,), np.int64)
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    return (x_all[:limit], y_all[:limit]) if limit is not None else (x_all, y_all)


def load_features(
    records: str | os.PathLike[str],
    task: str,
    split: str,
    *,
    size: int = 48,
    grayscale: bool = False,
    posed_classes: int = 2,
    model: Any = None,
    end_point: str | None = None,
    preprocessing: str = "unit",
    limit: int | None = None,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels of a split: flattened pixels, or a model's end point.

    Args:
        records: the records directory.
        task: ``posed``, ``emotion`` or ``au``.
        split: the split.
        size: image side in pixels.
        grayscale: grey images (one channel).
        posed_classes: 2 or 12 (``posed``).
        model: a Keras model whose ``end_point`` gives the features (None: pixels).
        end_point: the end point's name (with ``model``).
        preprocessing: the normalisation family (``unit``: ``[0, 1]`` pixels).
        limit: read at most this many examples (None: all).
        batch_size: examples per batch while reading.

    Returns:
        ``(X [N, D] float32, y)``: ``y`` is ``[N]`` class indices, or ``[N, K]`` AU 1/0/-1.
    """
    from fer_tf.data.pipeline import make_dataset

    fields: dict[str, Any] = {"posed_classes": posed_classes} if task == "posed" else {}
    ds = make_dataset(
        str(records),
        task=task,
        split=split,
        batch_size=batch_size,
        image_size=size,
        preprocessing=preprocessing,
        training=False,
        crop="none",
        unknown="drop",
        grayscale=grayscale,
        channels=1 if grayscale else 3,
        **fields,
    )
    transform = None
    if model is not None:
        from fer_tf.evaluation.diagnostics import endpoint_features

        def transform(x: Any) -> np.ndarray:
            return endpoint_features(model, x, end_point)

    x, y = _read(ds, task, limit, transform)
    return x.reshape(len(x), -1).astype(np.float32), y


# ---------------------------------------------------------------------------------------------
# Fitting


def _svc(params: dict[str, Any], seed: int) -> Any:
    from sklearn.svm import SVC

    return SVC(**params, random_state=seed)


def _search(x: np.ndarray, y: np.ndarray, n_iter: int, seed: int, folds: int) -> Any:
    from scipy.stats import loguniform
    from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold

    space = {
        "C": loguniform(*SEARCH_SPACE["C"]),
        "gamma": loguniform(*SEARCH_SPACE["gamma"]),
        "kernel": list(SEARCH_SPACE["kernel"]),
    }
    counts = np.bincount(y)
    k = int(min(folds, counts[counts > 0].min(initial=folds)))
    search = RandomizedSearchCV(
        _svc({}, seed),
        space,
        n_iter=n_iter,
        cv=StratifiedKFold(max(k, 2), shuffle=True, random_state=seed),
        random_state=seed,
        n_jobs=1,
        refit=False,
        error_score=0.0,
    )
    search.fit(x, y)
    return search


def _subset(y: np.ndarray, subset: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded random subset (all when ``subset`` is None or large)."""
    idx = np.arange(len(y))
    if subset is None or subset >= len(y):
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, subset, replace=False))


def _classification_metrics(names: list[str], y: np.ndarray, pred: np.ndarray) -> Any:
    from fer_tf.metrics import ClassificationMetrics

    k = len(names)
    cm = np.zeros((k, k), np.float64)
    np.add.at(cm, (y, pred), 1.0)
    m = ClassificationMetrics(names)
    m.update_from_stats({"confusion": cm})
    return m


def _fit_classification(
    params: dict[str, Any], data: tuple[np.ndarray, ...], names: list[str], seed: int
) -> dict[str, Any]:
    xt, yt, xe, ye = data
    t0 = time.perf_counter()
    clf = _svc(params, seed).fit(xt, yt)
    fit_s = time.perf_counter() - t0
    m = _classification_metrics(names, ye, clf.predict(xe))
    return {
        "params": params,
        "metrics": {"examples": float(len(ye)), **m.result()},
        "confusion_matrix": m.confusion_matrix(),
        "fit_seconds": fit_s,
    }


def _fit_au(
    params: dict[str, Any], data: tuple[np.ndarray, ...], names: list[str], seed: int
) -> dict[str, Any]:
    """One SVC per AU on its known labels; scores = sigmoid(decision) so 0.5 is the SVC's cut."""
    from fer_tf.evaluation.thresholds import au_metrics, sigmoid

    xt, yt, xe, ye = data
    scores = np.zeros(ye.shape, np.float64)
    t0 = time.perf_counter()
    for j in range(len(names)):
        known = yt[:, j] >= 0
        classes = np.unique(yt[known, j])
        if len(classes) < 2:  # one class only: predict it everywhere
            scores[:, j] = 1.0 if classes.size and classes[0] == 1 else 0.0
            continue
        clf = _svc(params, seed).fit(xt[known], yt[known, j])
        scores[:, j] = sigmoid(clf.decision_function(xe))
    m = au_metrics(names, ye, scores, 0.5)
    return {
        "params": params,
        "metrics": {"examples": float(len(ye)), **m.result()},
        "fit_seconds": time.perf_counter() - t0,
    }


def _search_run(
    task: str,
    data: tuple[np.ndarray, ...],
    names: list[str],
    n_iter: int,
    subset: int | None,
    seed: int,
) -> dict[str, Any]:
    """The randomized search (on a seeded subset; for ``au`` on the first AU with both values
    known) and the refit of the best parameters on the whole training split."""
    xt, yt = data[0], data[1]
    idx = _subset(yt if yt.ndim == 1 else yt[:, 0], subset, seed)
    if task == "au":
        cols = [j for j in range(yt.shape[1]) if len(np.unique(yt[idx][yt[idx, j] >= 0, j])) == 2]
        if not cols:
            raise ValueError("No AU has both values in the search's training examples.")
        j = cols[0]
        keep = idx[yt[idx, j] >= 0]
        xs, ys = xt[keep], yt[keep, j]
    else:
        xs, ys = xt[idx], yt[idx]
    t0 = time.perf_counter()
    search = _search(xs, ys, n_iter, seed, folds=3)
    search_s = time.perf_counter() - t0
    best = {k: (float(v) if k != "kernel" else str(v)) for k, v in search.best_params_.items()}
    fit = _fit_au if task == "au" else _fit_classification
    run = fit(best, data, names, seed)
    run.update(
        {
            "n_iter": n_iter,
            "search_examples": len(ys),
            "cv_score": float(search.best_score_),
            "search_seconds": search_s,
        }
    )
    return run


# ---------------------------------------------------------------------------------------------
# The baseline


def _check(task: Any, features: Any, search: Any, subset: Any, size: Any) -> None:
    check_choice("task", task, TASKS)
    check_choice("features", features, FEATURES)
    check_number("search", search, min=0, integer=True, allow_none=True)
    check_number("subset", subset, min=2, integer=True, allow_none=True)
    check_number("size", size, min=4, integer=True)


def _embedding_model(
    run_dir: str | os.PathLike[str], end_point: str | None
) -> tuple[Any, str, Any]:
    from fer_tf.evaluation.diagnostics import penultimate_end_point
    from fer_tf.evaluation.evaluator import load_model
    from fer_tf.evaluation.runs import load_run

    run = load_run(run_dir)
    model = load_model(run)
    return model, end_point or penultimate_end_point(model), run


def svm_baseline(
    records: str | os.PathLike[str],
    task: str = "posed",
    *,
    split_train: str = "train",
    split_eval: str = "val",
    size: int = 48,
    grayscale: bool = False,
    features: str = "pixels",
    model: str | os.PathLike[str] | None = None,
    end_point: str | None = None,
    search: int | None = None,
    subset: int | None = None,
    posed_classes: int = 2,
    seed: int = 0,
    output_dir: str | os.PathLike[str] | None = None,
    plots: bool = True,
) -> BaselineResult:
    """Fit the SVM baseline on ``split_train`` and score it on ``split_eval``.

    Args:
        records: the records directory.
        task: ``posed``, ``emotion`` or ``au`` (one SVC per AU).
        split_train: the training split.
        split_eval: the evaluated split.
        size: image side for pixel features (Christensen 2018 resized the faces).
        grayscale: grey pixels (one channel).
        features: ``pixels`` or ``embeddings`` (needs ``model``).
        model: a run directory (``fer-tf-train``) whose end point gives the embeddings; its own
            image size and normalisation are used.
        end_point: the end point (default: the one before ``Logits``).
        search: iterations of the randomized search (Christensen 2018: 70); None or 0: the
            default run only.
        subset: search on this many training examples (seeded); the refit uses all.
        posed_classes: 2 or 12 (``posed``).
        seed: seeds the subset, the search and the SVC.
        output_dir: where ``metrics.json``, ``report.md`` and the PNGs go (None: nothing).
        plots: write the PNGs.

    Returns:
        The :class:`BaselineResult`.

    Raises:
        ValueError: a bad parameter, ``embeddings`` without ``model``, or a split without
            labelled examples.
    """
    _check(task, features, search, subset, size)
    if features == "embeddings" and model is None:
        raise ValueError("The 'features' parameter 'embeddings' needs 'model' (a run directory).")
    names = _names(Path(records), task, posed_classes)
    kw: dict[str, Any] = {"size": size, "grayscale": grayscale, "posed_classes": posed_classes}
    info: dict[str, Any] = {"records": str(records), "split_train": split_train}
    info |= {"split_eval": split_eval, "size": size, "grayscale": grayscale}
    if features == "embeddings":
        net, ep, run = _embedding_model(model, end_point)
        d = run.config.data
        kw["size"] = int(net.input_shape[1])
        kw |= {"model": net, "end_point": ep, "preprocessing": d.preprocessing or "inception"}
        kw["grayscale"] = bool(d.grayscale)
        info |= {"model": str(model), "end_point": ep, "size": kw["size"]}
    xt, yt = load_features(records, task, split_train, **kw)
    xe, ye = load_features(records, task, split_eval, **kw)
    for split, y in ((split_train, yt), (split_eval, ye)):
        if len(y) == 0:
            raise ValueError(f"Split {split!r} of '{records}' has no example with a {task} label.")
    data = (xt, yt, xe, ye)
    fit = _fit_au if task == "au" else _fit_classification
    runs = {"default": fit(dict(DEFAULT_PARAMS), data, names, seed)}
    if search:
        runs["search"] = _search_run(task, data, names, int(search), subset, seed)
    best = runs["search" if search else "default"]["metrics"]
    result = BaselineResult(task, features, names, runs, best, len(yt), len(ye), info=info)
    if task != "au" and len(np.unique(yt)) < len(names):
        missing = [n for i, n in enumerate(names) if i not in set(yt.tolist())]
        result.notes.append(f"classes without training examples: {', '.join(missing)}")
    if output_dir is not None:
        _write(result, Path(output_dir), plots)
    return result


def _write(result: BaselineResult, out: Path, plots: bool) -> None:
    from fer_tf.evaluation import plots as p

    out.mkdir(parents=True, exist_ok=True)
    result.output_dir = out
    images: list[str] = []
    if plots and result.task != "au":
        for name, run in result.runs.items():
            path = out / f"confusion_matrix_{name}.png"
            title = f"SVM {name} run: "
            images.append(
                p.confusion_matrices(run["confusion_matrix"], result.output_names, path, title).name
            )
    if plots and result.task == "au":
        series = {
            name: [run["metrics"].get(f"f1/{n}") for n in result.output_names]
            for name, run in result.runs.items()
        }
        images.append(
            p.per_au_f1(
                result.output_names, series, out / "per_au_f1.png", title="SVM per-AU F1"
            ).name
        )
    (out / "metrics.json").write_text(
        json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8"
    )
    (out / "report.md").write_text(_report(result, images), encoding="utf-8")
    result.files = ["metrics.json", "report.md", *images]


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _per_output(result: BaselineResult) -> list[str]:
    from fer_tf.evaluation.report import fmt

    best = "search" if "search" in result.runs else "default"
    m = result.runs[best]["metrics"]
    what = "AU" if result.task == "au" else "class"
    lines = ["", f"## Per {what} ({best} run)", "", f"| {what} | precision | recall | F1 |"]
    lines.append("|---|---|---|---|")
    for n in result.output_names:
        lines.append(
            f"| {n} | {fmt(m.get(f'precision/{n}'))} | {fmt(m.get(f'recall/{n}'))} | "
            f"{fmt(m.get(f'f1/{n}'))} |"
        )
    return lines


def _report(result: BaselineResult, images: list[str]) -> str:
    from fer_tf.evaluation.report import HEADLINE, fmt

    i = result.info
    lines = [
        f"# SVM baseline ({result.task}, {result.features})",
        "",
        "Christensen 2018 §4.4.4: scikit-learn SVC, the default run (C=1, gamma=0.001) and a "
        "randomized search over C, gamma and the kernel.",
        "",
        f"- records: `{i['records']}`: trained on `{i['split_train']}` ({result.train_examples} "
        f"examples), evaluated on `{i['split_eval']}` ({result.eval_examples} examples)",
        f"- features: {result.features}"
        + (
            f" of `{i.get('model')}` at `{i.get('end_point')}`"
            if result.features == "embeddings"
            else ""
        )
        + f", {i['size']}x{i['size']} px"
        + (", grey" if i["grayscale"] else ""),
    ]
    lines += [f"- note: {n}" for n in result.notes]
    names = list(result.runs)
    lines += [
        "",
        "## Metrics",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|" + "---|" * (len(names) + 1),
    ]
    for k in HEADLINE[result.task]:
        lines.append(
            f"| {k} | " + " | ".join(fmt(result.runs[n]["metrics"].get(k)) for n in names) + " |"
        )
    lines += ["", "## Runs", "", "| run | parameters | fit seconds | search |", "|---|---|---|---|"]
    for n, run in result.runs.items():
        extra = (
            f"{run['n_iter']} iterations on {run['search_examples']} examples, CV score "
            f"{fmt(run['cv_score'])}, {run['search_seconds']:.1f} s"
            if "n_iter" in run
            else ""
        )
        lines.append(
            f"| {n} | {_params_text(run['params'])} | {run['fit_seconds']:.2f} | {extra} |"
        )
    lines += _per_output(result)
    lines += [
        "",
        "Christensen 2018 (NVIE, posed vs spontaneous, Table 4.6): 52.01% before and 53.8% "
        "after the search; the default run predicted one class for every image (Table 4.4).",
    ]
    if images:
        lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in images]
    return "\n".join([*lines, ""])
