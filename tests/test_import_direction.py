"""Imports point down: preprocessing/ and data/ never import fer_tf.models (docs: DESIGN.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOWER = ("fer_tf/preprocessing", "fer_tf/data")


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports (absolute names), with its line, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


@pytest.mark.parametrize("package", LOWER)
def test_no_module_of_preprocessing_or_data_imports_models(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    bad = [
        f"{f.relative_to(ROOT)}:{line} imports {name}"
        for f in files
        for line, name in _imports(f)
        if name == "fer_tf.models" or name.startswith("fer_tf.models.")
    ]
    assert not bad, bad


def test_the_scan_sees_a_lazy_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from fer_tf.models.catalog import get_spec\n")
    assert (2, "fer_tf.models.catalog") in _imports(f)


def test_importing_the_pipeline_loads_no_model_module():
    code = (
        "import sys\n"
        "import fer_tf.data.pipeline, fer_tf.preprocessing.image, fer_tf.preprocessing.augment\n"
        "import fer_tf.preprocessing.normalization\n"
        "print(sorted(m for m in sys.modules if m.startswith('fer_tf.models')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
