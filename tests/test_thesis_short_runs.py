"""benchmarks/thesis_short_runs.py and docs/seeds.md's reproduction table agree (no training)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from fer_tf import config as cfgmod
from fer_tf.training.search import shipped_spaces

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "docs" / "seeds.md"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "thesis_short_runs", ROOT / "benchmarks" / "thesis_short_runs.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def _table_rows() -> list[str]:
    text = SEEDS.read_text(encoding="utf-8")
    start = text.index("| experiment | command | thesis's figure |")
    block = text[start:].split("\n\n")[0]
    return [line for line in block.splitlines()[2:] if line.startswith("| ")]


def test_every_row_is_a_valid_shortened_config(bench):
    names = set(cfgmod.list_experiments())
    for row in bench._rows():
        assert row.config in names, row.key
        # the short-run overrides are real config keys with valid values
        config = cfgmod.load_config(row.config, [*bench.COMMON, *row.sets])
        assert config.data.test_split is None and config.train.early_stopping_metric is None
        if row.search:
            assert row.search[1] in shipped_spaces()


def test_docs_table_commands_name_shipped_configs_and_spaces():
    names = set(cfgmod.list_experiments())
    rows = _table_rows()
    assert len(rows) >= 20
    for line in rows:
        command = line.split(" | ")[1]
        for name in re.findall(r"--config (\S+)", command):
            assert name in names, line[:60]
        for space in re.findall(r"--search-space (\w+)", command):
            assert space in shipped_spaces(), line[:60]


def test_every_table_row_is_measured(bench):
    firsts = {line.split(" | ")[0][2:] for line in _table_rows()}
    keys = {r.key for r in bench._rows()}
    for first, measured in bench.DOC_ROWS.items():
        assert first in firsts, first
        assert {k for k, _ in measured} <= keys
    for line in _table_rows():
        assert not line.split(" | ")[-1].startswith("not run"), line[:60]


def test_fill_docs_rewrites_only_the_last_cell(bench, tmp_path):
    doc = tmp_path / "seeds.md"
    doc.write_text(
        "| a | b | c | d |\n|---|---|---|---|\n"
        "| Amaya & Dave, CNN 3 on JAFFE | `cmd` | 88% | not run |\n| other | x | y | z |\n"
    )
    entry = {
        "rc": 0,
        "how": "from scratch",
        "epochs": 2,
        "steps": 10,
        "batch_size": 16,
        "image_size": 36,
        "loss_first": 2.0,
        "loss_last": 1.5,
        "eval": {"accuracy": 0.25, "loss": 1.9, "examples": 40},
        "classes": 7,
        "majority": 0.2,
        "chance_loss": 1.946,
        "s_per_step": 0.02,
        "wall_s": 39.0,
        "cpu_s": 21.0,
    }
    assert bench.fill_docs(doc, {"jaffe_fer2013_cnn": entry}) == 1
    lines = doc.read_text().splitlines()
    assert lines[2].startswith("| Amaya & Dave, CNN 3 on JAFFE | `cmd` | 88% | from scratch; 2 ")
    assert "train loss 2.000 → 1.500" in lines[2] and "accuracy 0.250" in lines[2]
    assert lines[2].endswith("|") and lines[3] == "| other | x | y | z |"
