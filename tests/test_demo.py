"""``make demo``'s chain: SynthFACS mirror → fer-tf-build-records → fer-tf-train → report.md.

The default test runs the real chain with a tiny configuration (40 faces, 1 epoch); the slow one
runs ``make demo``'s defaults and checks the model beats the majority-class baseline.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fer_tf import demo
from fer_tf.demo.build import _plan
from fer_tf.demo.run import BULKY, _remove, _tidy
from fer_tf.testing.mirror import EXPECTED_CATEGORY


def _metric(report: str, key: str) -> tuple[float, float]:
    m = re.search(rf"^\| {key} \| ([0-9.]+) \| ([0-9.]+) \|$", report, re.M)
    assert m, f"{key} row missing from report.md"
    return float(m.group(1)), float(m.group(2))


def test_plan_needs_enough_faces():
    with pytest.raises(ValueError, match="at least 28 faces"):
        _plan(10)
    faults, variants = _plan(40)
    assert sorted(faults.values()) == sorted(demo.DEMO_FAULTS)
    assert sorted(variants.values()) == sorted(demo.DEMO_VARIANTS)
    assert not set(faults) & set(variants)


def test_demo_chain_tiny(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    n = 40
    rc = demo.main(
        ["--output-dir", str(tmp_path), "--faces", str(n), "--epochs", "1", "--no-baseline-check"]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "[demo] mirror on http://127.0.0.1:" in out
    assert "held-out mean AU F1" in out

    # The build summary adds up, with every injected fault where it belongs.
    s = json.loads((tmp_path / "build_summary.json").read_text())
    expected_fail = [f for f in demo.DEMO_FAULTS if EXPECTED_CATEGORY[f]]
    assert s["rows"] == n + 2  # + one duplicate row + one bad row
    assert s["rows"] == s["written"] + s["failed"] + s["skipped"]
    assert s["failed"] == len(expected_fail)
    assert s["skipped"] == 2
    assert s["skipped_by_reason"]["duplicate"] == 1 and s["skipped_by_reason"]["bad_row"] == 1
    want: dict[str, int] = {}
    for f in expected_fail:
        want[EXPECTED_CATEGORY[f]] = want.get(EXPECTED_CATEGORY[f], 0) + 1
    assert {k: v for k, v in s["failures"].items() if v} == want
    assert sum(s["splits"].values()) == s["written"] and s["splits"]["val"] > 0
    errors = (tmp_path / "records" / "errors.jsonl").read_text().splitlines()
    assert len(errors) == s["failed"]
    faults = json.loads((tmp_path / "faults.json").read_text())
    assert all(r["ok"] for r in faults), faults
    manifest = json.loads((tmp_path / "records" / "manifest.json").read_text())
    assert manifest["split"]["by"] == "subject"

    # The report: metrics next to the baseline, the build summary, the plots.
    report = (tmp_path / "report.md").read_text()
    for key in ("f1_mean", "precision_mean", "recall_mean", "auc_mean"):
        _metric(report, key)
    assert "majority baseline" in report
    assert "## Records: the build" in report
    assert f"| spreadsheet rows | {s['rows']} |" in report
    assert "fault `503` | http_5xx | http_5xx" in report
    assert "**NO**" not in report
    ev = json.loads((tmp_path / "train" / "eval.json").read_text())
    assert ev["split"] == "val"
    assert f"| f1_mean | {ev['metrics']['f1_mean']:.3f} |" in report
    for png in ("learning_curves.png", "per_au_f1.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert f"]({png})" in report

    # Only what the report needs stays (plus the records and the model); the report says so.
    for rel in BULKY:
        assert not (tmp_path / rel).exists(), rel
    assert "train/checkpoints" in report and "--keep-all" in report
    assert (tmp_path / "train" / "best.keras").stat().st_size > 0
    assert (tmp_path / "train" / "history.csv").exists()
    assert list((tmp_path / "records").glob("*.tfrecord"))


@pytest.mark.slow
def test_demo_full(tmp_path):
    """``make demo`` as shipped: the model clearly beats the majority baseline."""
    pytest.importorskip("tensorflow")
    rc = demo.main(["--output-dir", str(tmp_path)])
    report = (tmp_path / "report.md").read_text()
    model, base = _metric(report, "f1_mean")
    assert rc == 0
    assert model > base + 0.2
    assert (tmp_path / "learning_curves.png").stat().st_size > 5000
    assert (tmp_path / "per_au_f1.png").stat().st_size > 5000


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_unwritable_output_dir_is_one_line_before_tensorflow(tmp_path, repo_root, where):
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory")
    target = blocker if where == "file" else blocker / "demo"
    code = (
        "import sys\nfrom fer_tf.demo import main\n"
        f"rc = main(['--output-dir', {str(target)!r}])\n"
        "print('TF', 'tensorflow' in sys.modules)\nsys.exit(rc)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1
    assert r.stdout.strip() == "TF False"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("python -m fer_tf.demo: error: The '--output-dir' parameter")
    assert str(target) in lines[0] and "a file" in lines[0]
    assert blocker.read_text() == "not a directory"  # nothing was created or replaced


def test_python_m_demo_entry_point(tmp_path, repo_root):
    """``python -m fer_tf.demo`` runs the package's main (checked with a bad --output-dir)."""
    target = tmp_path / "file"
    target.write_text("x")
    r = subprocess.run(
        [sys.executable, "-m", "fer_tf.demo", "--output-dir", str(target)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "--output-dir" in r.stderr


def test_demo_output_has_no_tensorflow_start_up_noise(tmp_path, repo_root):
    """The demo's own TensorFlow import (the baseline) is as quiet as fer-tf-train's."""
    r = subprocess.run(
        [sys.executable, "-m", "fer_tf.demo", "--output-dir", str(tmp_path)]
        + ["--faces", "40", "--epochs", "1", "--no-baseline-check"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "held-out mean AU F1" in r.stdout
    for noise in ("absl::InitializeLog", "cuInit", "oneDNN", "cuda drivers"):
        assert noise not in r.stderr and noise not in r.stdout, noise


def test_tidy_removes_only_bulky_paths(tmp_path, capsys):
    (tmp_path / "train" / "checkpoints").mkdir(parents=True)
    (tmp_path / "train" / "checkpoints" / "ckpt-1.data").write_bytes(b"x" * 2_000_000)
    (tmp_path / "train" / "best.weights.h5").write_bytes(b"w")
    (tmp_path / "train" / "best.keras").write_bytes(b"k")
    (tmp_path / "report.md").write_text("r")
    assert _tidy(tmp_path, keep_all=True) == []
    removed = _tidy(tmp_path, keep_all=False)
    assert removed == ["train/checkpoints", "train/best.weights.h5"]
    _remove(tmp_path, removed)
    assert "removed train/checkpoints, train/best.weights.h5 (2 MB" in capsys.readouterr().out
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["report.md", "train", "train/best.keras"]


def test_per_au_legend_leaves_every_bar_visible(tmp_path):
    """The legend sits outside the axes: it overlaps no bar and no value label, even at F1 1.0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fer_tf.demo import plots

    names = [f"AU{a}" for a in (1, 2, 4, 6, 12, 25, 26, 43)]
    per_au = {n: {"f1": 1.0} for n in names}
    base = {f"f1/{n}": 1.0 for n in names} | {f"always_present/f1/{n}": 1.0 for n in names}
    captured = {}
    close = plt.close
    plt.close = lambda fig=None: captured.setdefault("fig", fig)  # keep the figure to measure
    try:
        path = plots.per_au_f1(per_au, tmp_path / "bars.png", base)
    finally:
        plt.close = close
    fig = captured["fig"]
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    artists = list(ax.patches) + list(ax.texts)
    assert len(ax.patches) == 3 * len(names) and len(ax.texts) == 3 * len(names)
    for a in artists:
        assert not legend.overlaps(a.get_window_extent(renderer)), a
    # Every value label sits inside the axes (headroom above bars of 1.0).
    box = ax.get_window_extent(renderer)
    for t in ax.texts:
        assert box.contains(*t.get_window_extent(renderer).get_points()[1])
    plt.close(fig)
    assert Path(path).read_bytes()[:4] == b"\x89PNG"


def test_mirror_port_is_fixed_with_a_fallback(capsys):
    """Record ids hash the URL (port included): the demo serves on a fixed port when it can,
    and on a free one, saying so, when that port is taken."""
    import socket

    from fer_tf.demo.build import MIRROR_PORT, _start
    from fer_tf.testing.mirror import Mirror

    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", MIRROR_PORT))
        blocker.listen()
    except OSError:  # already taken by something else: the fallback is exercised either way
        pass
    try:
        m = Mirror(1, port=MIRROR_PORT)
        _start(m)
        try:
            assert m.port != MIRROR_PORT
            assert m.items[0].url.startswith(f"http://127.0.0.1:{m.port}/")
        finally:
            m.stop()
    finally:
        blocker.close()
    assert f"port {MIRROR_PORT} is not available" in capsys.readouterr().out
    free = Mirror(1, port=MIRROR_PORT)
    _start(free)
    try:
        assert free.port == MIRROR_PORT
    finally:
        free.stop()
