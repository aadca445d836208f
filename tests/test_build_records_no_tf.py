"""The whole fer-tf-build-records run never imports TensorFlow (records are written in pure Python)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fer_tf.testing.mirror import Mirror

REPO = Path(__file__).resolve().parents[1]


def test_cli_run_never_imports_tensorflow(tmp_path: Path) -> None:
    with Mirror(6, faults={2: "truncated", 4: "404"}, variants={1: "png_alpha"}, seed=3) as m:
        sheet = m.write_spreadsheet(tmp_path / "urls.csv", layout="2020")
        args = [
            "--spreadsheet", str(sheet), "--output-dir", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "cache"), "--allow-private-hosts", "--workers", "2",
            "--retries", "0", "--no-progress",
        ]  # fmt: skip
        code = (
            "import sys\nfrom fer_tf.cli.build_records import main\n"
            f"rc = main({args!r})\n"
            "print('RC', rc, 'TF', 'tensorflow' in sys.modules)\n"
        )
        r = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
        )
    assert "RC 0 TF False" in r.stdout, r.stdout + r.stderr
    shards = sorted((tmp_path / "out").glob("*.tfrecord"))
    assert shards and sum(p.stat().st_size for p in shards) > 0

    import tensorflow as tf

    from fer_tf.records import decode_example

    got = [decode_example(raw) for s in shards for raw in tf.data.TFRecordDataset(str(s))
           .as_numpy_iterator()]  # fmt: skip
    assert len(got) == 4
    assert {r.source for r in got} == {it.url for i, it in enumerate(m.items) if i not in (2, 4)}


def test_decode_build_and_sources_modules_do_not_import_tensorflow() -> None:
    modules = [
        "fer_tf.preprocessing.decode",
        "fer_tf.build.phases",
        "fer_tf.build.local",
        "fer_tf.build.ingest",
        "fer_tf.build.jobs",
        "fer_tf.build.process",
        "fer_tf.build.splits",
        "fer_tf.sources.base",
        "fer_tf.sources.folder",
        "fer_tf.preprocessing.video",
        "fer_tf.sources.spreadsheet",
        "fer_tf.sources.download",
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('TF', 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert "TF False False" in r.stdout, r.stdout + r.stderr
