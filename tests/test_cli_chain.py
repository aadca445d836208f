"""The two CLIs chain with default settings: build-records output is what fer-tf-train reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_build_records_output_trains_without_split_overrides(
    tmp_path: Path, toy_source: Path
) -> None:
    build = subprocess.run(
        [
            str(BIN / "fer-tf-build-records"), "--spreadsheet", str(toy_source),
            "--output-dir", str(tmp_path / "records"), "--allow-private-hosts",
            "--val-fraction", "0.3", "--aus", "synthfacs15", "--no-progress",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout + build.stderr
    # No data.train_split / data.eval_split override: the defaults must match what was built.
    train = subprocess.run(
        [
            str(BIN / "fer-tf-train"), "--config", "demo_au", "--records", str(tmp_path / "records"),
            "--model-dir", str(tmp_path / "run"), "--quiet", "--set", "train.epochs=1",
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    assert (tmp_path / "run" / "eval.json").exists()
