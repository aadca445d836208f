"""make demo's chain end to end (small): records → fer-tf-train → baseline → report.md."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_demo_small(tmp_path):
    pytest.importorskip("tensorflow")
    from fer_tf import demo

    rc = demo.main(
        ["--output-dir", str(tmp_path), "--faces", "300", "--size", "48", "--epochs", "6"]
    )
    report = (tmp_path / "report.md").read_text()
    assert "majority baseline" in report and "f1_mean" in report
    assert (tmp_path / "learning_curves.png").stat().st_size > 1000
    assert (tmp_path / "per_au_f1.png").stat().st_size > 1000
    assert rc == 0  # beats the majority baseline
