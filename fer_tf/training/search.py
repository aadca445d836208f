"""Hyperparameter search: grid or random over a search space, results ranked in a CSV.

The default space is Christensen 2018's Table 4.1 (Christensen 2018):

=========================  ==========================================
parameter                  values
=========================  ==========================================
dropout                    0.0, 0.1, ..., 0.9 (the table's 1.0 drops everything; Keras refuses it)
learning rate              1e-3, 1e-4, 1e-5, 1e-6
train layer mode           0..5 (models with a freezing mode table)
softmax or sigmoid         softmax_ce, sigmoid_ce
batch size                 8, 16, 32, 64
learning-rate decay        0 (none), 2, 4, 8, 10 (epochs per 0.94 decay)
L2 regularisation          on (4e-5), off
augmentation               christensen2018, none
=========================  ==========================================

``table4.1-cnn`` drops train layer mode and softmax/sigmoid, as the seed did for its shallow CNN.
A space is a mapping ``name -> list of values``; a value is either a scalar for the config key
``name`` or a mapping of several ``key: value`` overrides. YAML files use the same shape.

Each trial runs :func:`fer_tf.training.experiment.run_experiment` in ``<model_dir>/trial_NNN``;
``<model_dir>/search.csv`` lists every trial ranked by the monitored metric (best first).
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from fer_tf.config import ConfigError, ExperimentConfig, from_dict, to_dict

__all__ = [
    "TABLE_4_1",
    "TABLE_4_1_CNN",
    "SEARCH_DIR",
    "shipped_spaces",
    "load_space",
    "trial_overrides",
    "run_search",
]

_DECAY: dict[Any, dict[str, Any]] = {
    0: {"optimizer.schedule": "constant"},
    **{
        e: {"optimizer.schedule": "exponential", "optimizer.decay_epochs": float(e)}
        for e in (2, 4, 8, 10)
    },
}

TABLE_4_1: dict[str, list[Any]] = {
    "model.dropout": [round(0.1 * i, 1) for i in range(10)],
    "optimizer.learning_rate": [1e-3, 1e-4, 1e-5, 1e-6],
    "model.train_layer_mode": [0, 1, 2, 3, 4, 5],
    "task.loss": ["softmax_ce", "sigmoid_ce"],
    "data.batch_size": [8, 16, 32, 64],
    "lr_decay": [_DECAY[k] for k in (0, 2, 4, 8, 10)],
    "l2": [{"optimizer.weight_decay": 4e-5}, {"optimizer.weight_decay": 0.0}],
    "augment": [{"data.augment": "christensen2018"}, {"data.augment": "none"}],
}
TABLE_4_1_CNN = {
    k: v for k, v in TABLE_4_1.items() if k not in ("model.train_layer_mode", "task.loss")
}


#: Shipped search spaces (YAML), loadable by name.
SEARCH_DIR = Path(__file__).resolve().parents[1] / "configs" / "search"


def shipped_spaces() -> list[str]:
    """Names of the shipped YAML search spaces (``fer_tf/configs/search/*.yaml``).

    Returns:
        Sorted names, usable as ``--search-space NAME``.
    """
    return sorted(p.stem for p in SEARCH_DIR.glob("*.yaml"))


def load_space(spec: str | Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """A search space from a name (``table4.1``, ``table4.1-cnn``, or a shipped space in
    ``fer_tf/configs/search/``: ``christensen2018_table4_1``, ``bartissol2017_batch``,
    ``bartissol2017_lr``), a YAML file or a mapping.

    Args:
        spec: the space.

    Returns:
        ``name -> list of values``.

    Raises:
        ConfigError: unknown name, unreadable file, or a dimension that is not a non-empty list.
    """
    if isinstance(spec, Mapping):
        space = dict(spec)
    elif spec in ("table4.1", "table4.1-cnn"):
        space = dict(TABLE_4_1 if spec == "table4.1" else TABLE_4_1_CNN)
    else:
        path = Path(spec)
        shipped = SEARCH_DIR / f"{spec}.yaml"
        if not path.is_file() and shipped.is_file():
            path = shipped
        if not path.is_file():
            names = ", ".join(repr(n) for n in ("table4.1", "table4.1-cnn", *shipped_spaces()))
            raise ConfigError(
                f"The search space must be one of {names} or a YAML file. Got {spec!r} instead."
            )
        try:
            space = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"The search space '{path}' is not valid YAML: {exc}") from exc
        if not isinstance(space, dict):
            raise ConfigError(f"The search space '{path}' must map names to lists of values.")
    for name, values in space.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"The search dimension {name!r} must be a non-empty list. Got {values!r} instead."
            )
    return space


def trial_overrides(choice: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten one point of the space into ``config.key -> value`` overrides."""
    out: dict[str, Any] = {}
    for name, value in choice.items():
        if isinstance(value, Mapping):
            out.update(value)
        else:
            out[name] = value
    return out


def _apply(config: ExperimentConfig, overrides: Mapping[str, Any]) -> ExperimentConfig:
    data = to_dict(config)
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], dict):
                raise ConfigError(f"The search key {key!r} is not a config key.")
            node = node[p]
        node[parts[-1]] = value
    return from_dict(ExperimentConfig, data)


def _points(space: Mapping[str, list[Any]], mode: str, trials: int | None, seed: int) -> list[Any]:
    names = list(space)
    if mode == "grid":
        pts = [dict(zip(names, combo)) for combo in itertools.product(*space.values())]
        return pts[:trials] if trials else pts
    if mode != "random":
        raise ConfigError(f"The search mode must be 'grid' or 'random'. Got {mode!r} instead.")
    rng = random.Random(seed)
    total = math.prod(len(v) for v in space.values())
    n = min(trials or 10, total)
    seen: set[tuple[int, ...]] = set()
    out = []
    while len(out) < n:
        idx = tuple(rng.randrange(len(space[k])) for k in names)
        if idx in seen:
            continue
        seen.add(idx)
        out.append({k: space[k][i] for k, i in zip(names, idx)})
    return out


def run_search(
    config: ExperimentConfig,
    space: Mapping[str, list[Any]] | None = None,
    *,
    mode: str = "random",
    trials: int | None = None,
    metric: str | None = None,
    runner: Callable[..., Any] | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = print,
) -> list[dict[str, Any]]:
    """Run a grid or random search and write ``<model_dir>/search.csv``.

    Invalid combinations (e.g. a train layer mode on a model without one) are recorded as
    ``invalid`` with the reason, not silently dropped.

    Args:
        config: the base experiment.
        space: the search space (default :data:`TABLE_4_1`).
        mode: ``grid`` or ``random``.
        trials: number of trials (grid: the first N points; random: default 10).
        metric: the final evaluation metric to rank by (default: the task's primary metric);
            ``loss``, ``mse``... are minimised, everything else maximised.
        runner: ``runner(config, progress=..., log=...)`` (default :func:`run_experiment`).
        progress: progress bars per trial.
        log: message sink.

    Returns:
        The rows of ``search.csv``, best first.

    Raises:
        ConfigError: bad mode, space or key.
    """
    from fer_tf.tasks import task_from_config
    from fer_tf.training.callbacks import metric_mode
    from fer_tf.training.validate import train_layer_modes

    space = load_space(space if space is not None else TABLE_4_1)
    say = log or (lambda _m: None)
    if runner is None:
        from fer_tf.training.experiment import run_experiment

        runner = run_experiment
    root = Path(config.run.model_dir)
    points = _points(space, mode, trials, config.run.seed)
    rows: list[dict[str, Any]] = []
    csv_path = root / "search.csv"
    for i, point in enumerate(points):
        overrides = trial_overrides(point)
        row: dict[str, Any] = {"trial": i, **{k: _fmt(v) for k, v in overrides.items()}}
        trial_dir = root / f"trial_{i:03d}"
        try:
            cfg = _apply(config, {**overrides, "run.model_dir": str(trial_dir)})
            task = task_from_config(cfg)
            mode = cfg.model.train_layer_mode
            if mode and mode not in train_layer_modes(cfg.model.name):
                raise ConfigError(
                    f"train_layer_mode {mode} is not one of "
                    f"{list(train_layer_modes(cfg.model.name))} for {cfg.model.name}"
                )
        except (ConfigError, ValueError) as exc:
            row.update(status="invalid", metric=metric or "", value=math.nan, note=str(exc))
            rows.append(row)
            say(f"trial {i}: invalid: {exc}")
            continue
        key = metric or task.primary_metric
        say(f"trial {i}/{len(points)}: {overrides}")
        result = runner(cfg, progress=progress, log=None)
        value = float(result.eval.get("metrics", {}).get(key, math.nan))
        row.update(
            status=result.status,
            metric=key,
            value=value,
            steps=result.steps,
            run_dir=str(trial_dir),
        )
        rows.append(row)
        _write(csv_path, _ranked(rows, metric_mode(key)))
    ranked = _ranked(rows, metric_mode(metric or "accuracy") if not rows else _mode_of(rows))
    _write(csv_path, ranked)
    say(f"search results: {csv_path}")
    return ranked


def _fmt(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def _mode_of(rows: list[dict[str, Any]]) -> str:
    from fer_tf.training.callbacks import metric_mode

    key = next((r["metric"] for r in rows if r.get("metric")), "accuracy")
    return metric_mode(key)


def _ranked(rows: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    sign = -1.0 if mode == "max" else 1.0

    def key(r: dict[str, Any]) -> tuple[int, float]:
        v = float(r.get("value", math.nan))
        return (1, 0.0) if math.isnan(v) else (0, sign * v)

    return sorted(rows, key=key)


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: list[str] = ["rank"]
    for r in rows:
        columns.extend(c for c in r if c not in columns)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for rank, r in enumerate(rows, 1):
            w.writerow({"rank": rank, **r})
