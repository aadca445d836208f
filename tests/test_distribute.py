"""Distribution on CPU: MirroredStrategy over 2 logical CPUs and MultiWorkerMirroredStrategy with
2 local worker processes give the same weights as one device with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SETS = [
    "run.deterministic=true",
    "train.epochs=1",
    "train.steps_per_epoch=8",
    "train.steps_per_execution=4",
    "data.batch_size=16",
    "model.dropout=0.0",
    "train.restore_best_weights=false",
    "optimizer.name=sgd",
    "optimizer.learning_rate=0.05",
]


def _cmd(model_dir: Path, out: Path, strategy: str, *extra: str) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "fer_tf.testing.toy",
        "--model-dir",
        str(model_dir),
        "--weights-out",
        str(out),
        "--no-batchnorm",
        "--set",
        f"run.strategy={strategy}",
    ]
    for s in SETS:
        cmd += ["--set", s]
    return [*cmd, *extra]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _weights(path: Path) -> list[np.ndarray]:
    z = np.load(path)
    return [z[k] for k in z.files]


def test_mirrored_and_multi_worker_match_one_device(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    procs = {
        "one": subprocess.Popen(
            _cmd(tmp_path / "one", tmp_path / "one.npz", "one_device"),
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
        "mirrored": subprocess.Popen(
            _cmd(tmp_path / "mir", tmp_path / "mir.npz", "mirrored", "--logical-cpus", "2"),
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
    }
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    for i in range(2):
        wenv = {
            **env,
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
        }
        procs[f"w{i}"] = subprocess.Popen(
            _cmd(tmp_path / "mw", tmp_path / f"w{i}.npz", "multi_worker"),
            env=wenv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    outs = {}
    for name, p in procs.items():
        try:
            outs[name], _ = p.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            for q in procs.values():
                q.kill()
            pytest.fail(f"{name} timed out")
    for name, p in procs.items():
        assert p.returncode == 0, f"{name}:\n{outs[name][-3000:]}"
    assert "MirroredStrategy with 2 replica(s)" in outs["mirrored"]
    assert "MultiWorkerMirroredStrategy with 2 replica(s)" in outs["w0"], outs["w0"][-2000:]
    one = _weights(tmp_path / "one.npz")
    mir = _weights(tmp_path / "mir.npz")
    w0, w1 = _weights(tmp_path / "w0.npz"), _weights(tmp_path / "w1.npz")
    init_moved = False
    for a, b, c, d in zip(one, mir, w0, w1):
        np.testing.assert_array_equal(c, d)  # both workers end identical
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(c, a, rtol=1e-4, atol=1e-5)
        init_moved = init_moved or not np.allclose(a, 0)
    assert init_moved
    # Only the chief wrote the run directory's checkpoints and outputs.
    assert (tmp_path / "mw" / "eval.json").exists()
    assert not list(tmp_path.glob("mw/checkpoints.worker-*"))
