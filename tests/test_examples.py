"""examples/: each notebook source runs, and each committed .ipynb matches its .py source."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _tool():
    spec = importlib.util.spec_from_file_location(
        "make_notebooks", ROOT / "tools/make_notebooks.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


make_notebooks = _tool()
SOURCES = make_notebooks.sources(EXAMPLES)


def test_there_are_notebooks():
    assert [p.name for p in SOURCES] == [
        "01_synthfacs_and_records.py",
        "02_models.py",
        "03_train_au.py",
        "04_apply_a_model.py",
        "05_christensen2018_posed.py",
        "06_bartissol2017_emotionet_aus.py",
        "07_amaya_dave_fer2013.py",
        "08_korber_facenet_transfer.py",
        "09_athanasiadis2022_video.py",
    ]
    assert (EXAMPLES / "README.md").exists()


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_is_up_to_date(source):
    target = source.with_suffix(".ipynb")
    assert target.exists(), f"{target.name} missing: run python tools/make_notebooks.py"
    assert target.read_text(encoding="utf-8") == make_notebooks.render(source), (
        f"{target.name} is out of date: run python tools/make_notebooks.py"
    )
    nb = json.loads(target.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4 and nb["cells"][0]["cell_type"] == "markdown"
    assert all(c.get("outputs", []) == [] for c in nb["cells"])


def test_percent_format_parsing():
    text = "# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n\n# %%\n\n# %%\nprint(x)\n"
    nb = make_notebooks.to_notebook(text)
    assert [c["cell_type"] for c in nb["cells"]] == ["markdown", "code", "code"]
    assert nb["cells"][0]["source"] == ["# Title\n", "\n", "text"]
    assert nb["cells"][1]["source"] == ["x = 1"]
    with pytest.raises(ValueError, match="unknown cell type"):
        make_notebooks.parse_cells("# %% [raw]\nx\n", "nb.py")
    with pytest.raises(ValueError, match=r"nb.py:2: a markdown cell line"):
        make_notebooks.parse_cells("# %% [markdown]\nnot a comment\n", "nb.py")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs(source, tmp_path):
    """Each notebook's source runs top to bottom (as ``Run all`` would) in a fresh process and
    leaves nothing behind in the temporary folder."""
    pytest.importorskip("tensorflow")
    env = dict(os.environ, MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2", TMPDIR=str(tmp_path))
    code = f"import runpy; runpy.run_path({str(source)!r}, run_name='__main__')"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard: 03 trains for about two minutes on 2 cores
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Each notebook removes its working directory (03's run alone is over 200 MB).
    assert list(tmp_path.iterdir()) == [], sorted(p.name for p in tmp_path.iterdir())
