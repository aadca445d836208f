"""How fer-tf-build-records reports a spreadsheet without a URL column: one line, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_tf.cli.build_records import main


@pytest.mark.parametrize(
    "text", ["id,score\nfoo,1\nbar,0\n", "foo,1,0\nbar,0,1\n"], ids=["header", "no_header"]
)
def test_no_url_column_is_fatal_one_line(tmp_path: Path, capsys, text: str) -> None:
    p = tmp_path / "s.csv"
    p.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    code = main(["--spreadsheet", str(p), "--output-dir", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("fer-tf-build-records: error: The spreadsheet ") and str(p) in err
    assert "no URL column" in err and "http(s) URLs in the first column" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (out / "manifest.json").exists()
