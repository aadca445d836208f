"""fer-tf-train: Ctrl-C (SIGINT) saves a checkpoint, exits 130, and --resume continues from it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

tf = pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parents[1]


def _cmd(records: Path, run: Path, epochs: int, *extra: str) -> list[str]:
    sets = [
        "data.image_size=32",
        "data.batch_size=8",
        "data.shuffle_buffer=64",
        f"train.epochs={epochs}",
        "train.steps_per_epoch=6",
        "train.steps_per_execution=1",
        "train.checkpoint_every=2",
        "train.eval_steps=2",
    ]
    args = [sys.executable, "-m", "fer_tf.cli.train", "--config", "demo_au", "--quiet"]
    args += ["--records", str(records), "--model-dir", str(run), *extra]
    return args + [a for s in sets for a in ("--set", s)]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_saves_a_checkpoint_exits_130_and_resumes(tmp_path):
    from fer_tf.synthfacs import write_records

    records = tmp_path / "rec"
    write_records(records, 48, seed=5, size=32, val_fraction=0.25, num_shards=1)
    run = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        _cmd(records, run, epochs=1000),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # The SIGINT handler is in place once training runs: wait for the first checkpoint.
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "checkpoint").exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    found = re.search(r"interrupted at step (\d+); checkpoint saved", out)
    assert found, out
    step = int(found.group(1))
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert latest is not None and latest.endswith(f"ckpt-{step}"), (latest, out)
    assert not (run / "eval.json").exists()

    # --resume continues from that checkpoint and finishes the (now shorter) run.
    epochs = step // 6 + 1
    resumed = subprocess.run(
        _cmd(records, run, epochs, "--resume"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resumed from {latest} at step {step}" in resumed.stdout
    ev = json.loads((run / "eval.json").read_text())
    assert ev["steps"] == epochs * 6
