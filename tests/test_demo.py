"""``make demo``'s chain: SynthFACS mirror → fer-tf-build-records → fer-tf-train → report.md.

The default test runs the real chain with a tiny configuration (40 faces, 1 epoch); the slow one
runs ``make demo``'s defaults and checks the model beats the majority-class baseline.
"""

from __future__ import annotations

import json
import re

import pytest

from fer_tf import demo
from fer_tf.testing.mirror import EXPECTED_CATEGORY


def _metric(report: str, key: str) -> tuple[float, float]:
    m = re.search(rf"^\| {key} \| ([0-9.]+) \| ([0-9.]+) \|$", report, re.M)
    assert m, f"{key} row missing from report.md"
    return float(m.group(1)), float(m.group(2))


def test_plan_needs_enough_faces():
    with pytest.raises(ValueError, match="at least 28 faces"):
        demo._plan(10)
    faults, variants = demo._plan(40)
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
