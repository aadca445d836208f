"""Spreadsheet reader: EmotioNet layouts, header detection, labels, bad rows, duplicates."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import openpyxl
import pytest

from fer_tf.sources.spreadsheet import SpreadsheetError, read_spreadsheet, read_spreadsheets


def _xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    wb.save(path)
    return path


def test_manual_xlsx_headerless_several_sheets(tmp_path: Path) -> None:
    row1 = ["http://a.org/1.jpg"] + [1, 0] + [999] * 58
    row2 = ["http://a.org/2.jpg"] + [0, 1] + [0] * 58
    p = _xlsx(tmp_path / "m.xlsx", {"S1": [row1], "S2": [row2]})
    d = read_spreadsheet(p)
    assert d.au_ids == tuple(range(1, 61))
    assert [r.source for r in d.rows] == ["http://a.org/1.jpg", "http://a.org/2.jpg"]
    assert d.rows[0].au((1, 2, 3)) == (1, 0, -1)
    assert d.rows[1].au((1, 2, 60)) == (0, 1, 0)
    assert (d.rows[1].sheet, d.rows[1].row) == ("S2", 1)
    assert d.total_rows == 2 and not d.issues
    assert d.files[0]["sha256"] and len(d.files[0]["sheets"]) == 2


def test_2020_csv_with_header_and_optional_columns(tmp_path: Path) -> None:
    p = tmp_path / "e2020.csv"
    p.write_text(
        "URL,AU 1,AU 2,AU 12,valence,arousal,emotion,posed,subject\n"
        '"http://b.org/x,y.jpg",1,0,999,0.5,-0.25,happiness,1,s7\n'
        "http://b.org/z.jpg,0,,1,,,3,spontaneous,12\n",
        encoding="utf-8",
    )
    d = read_spreadsheet(p)
    assert d.au_ids == (1, 2, 12)
    a, b = d.rows
    assert a.source == "http://b.org/x,y.jpg"
    assert a.au((1, 2, 12)) == (1, 0, -1)
    assert (a.valence, a.arousal, a.emotion, a.posed, a.subject) == (0.5, -0.25, 1, 1, "s7")
    assert b.au((1, 2, 12)) == (0, -1, 1)  # empty cell = unknown
    assert math.isnan(b.valence) and b.emotion == 3 and b.posed == 0 and b.subject == "12"


def test_datafile_tsv_two_url_columns(tmp_path: Path) -> None:
    p = tmp_path / "dataFile_001.txt"
    header = ["URL", "URL_orig"] + [f"AU{k}" for k in range(1, 61)]
    row = ["http://c.org/1.png", "http://orig/1.png"] + ["1"] + ["0"] * 59
    p.write_text("\t".join(header) + "\n" + "\t".join(row) + "\n", encoding="utf-8")
    d = read_spreadsheet(p)
    assert d.rows[0].source == "http://c.org/1.png"
    assert d.rows[0].au((1, 2)) == (1, 0)
    assert d.files[0]["format"] == "tsv"
    assert d.files[0]["sheets"][0]["ignored_columns"] == ["URL_orig"]


@pytest.mark.parametrize("name", ["AU1", "AU 1", "AU_1", "au01", "Au-1"])
def test_au_header_spellings(tmp_path: Path, name: str) -> None:
    p = tmp_path / "h.csv"
    p.write_text(f"image_url,{name}\nhttp://d.org/1.jpg,1\n", encoding="utf-8")
    d = read_spreadsheet(p)
    assert d.au_ids == (1,) and d.rows[0].au((1,)) == (1,)


def test_unquoted_commas_in_urls_are_rejoined(tmp_path: Path) -> None:
    # Bartissol 2017: CSV exports split URLs with commas over several columns.
    p = tmp_path / "u.csv"
    p.write_text(
        "http://e.org/a.jpg,1,0,999\nhttp://e.org/b,c,d.jpg,0,1,1\nhttp://e.org/e.jpg,1,1,0\n",
        encoding="utf-8",
    )
    d = read_spreadsheet(p)
    assert [r.source for r in d.rows][1] == "http://e.org/b,c,d.jpg"
    assert d.rows[1].au((1, 2, 3)) == (0, 1, 1)
    assert not d.issues


def test_bad_rows_reported_with_sheet_and_row(tmp_path: Path) -> None:
    p = _xlsx(
        tmp_path / "bad.xlsx",
        {
            "Main": [
                ["URL", "AU1", "AU2", "valence"],
                ["http://f.org/1.jpg", 1, 0, 0.1],
                ["http://f.org/2.jpg", 2, 0, 0.1],  # label outside {0,1,999}
                ["http://f.org/3.jpg", "x", 0, 0.1],  # not a number
                [None, 1, 0, 0.1],  # no URL
                ["http://f.org/4.jpg", 1, 0, "high"],  # valence not a number
                ["http://f.org/5.jpg", -1, 0, None],  # -1 is not an accepted code
                [None, None, None, None],  # blank: not data
                ["http://f.org/6.jpg", 999, 1, None],
            ]
        },
    )
    d = read_spreadsheet(p)
    assert [r.source for r in d.rows] == ["http://f.org/1.jpg", "http://f.org/6.jpg"]
    bad = [(i.sheet, i.row, i.reason) for i in d.issues]
    assert bad == [("Main", n, "bad_row") for n in (3, 4, 5, 6, 7)]
    assert "AU1" in d.issues[0].detail and "2" in d.issues[0].detail
    assert d.total_rows == 7 and d.blank_rows == 1
    assert d.skipped_counts() == {"bad_row": 5}


def test_duplicates_kept_once_conflicts_reported(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text("URL,AU1\nhttp://g.org/1.jpg,1\nhttp://g.org/1.jpg,1\n", encoding="utf-8")
    b = tmp_path / "b.csv"
    b.write_text("URL,AU1\n  http://g.org/1.jpg  ,0\nhttp://g.org/2.jpg,0\n", encoding="utf-8")
    d = read_spreadsheets([a, b])
    assert [r.source for r in d.rows] == ["http://g.org/1.jpg", "http://g.org/2.jpg"]
    assert d.rows[0].au((1,)) == (1,)  # the first occurrence wins
    reasons = [(i.file, i.row, i.reason) for i in d.issues]
    assert reasons == [("a.csv", 3, "duplicate"), ("b.csv", 2, "duplicate_conflict")]
    assert d.total_rows == 4 == len(d.rows) + len(d.issues)


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "empty.csv"
    p.write_text("", encoding="utf-8")
    with pytest.raises(SpreadsheetError, match="empty"):
        read_spreadsheet(p)


def test_no_url_column_is_a_clear_error(tmp_path: Path) -> None:
    p = _xlsx(tmp_path / "nourl.xlsx", {"S": [["name", "AU1", "AU2"], ["x", 1, 0]]})
    with pytest.raises(SpreadsheetError, match="no usable URL column"):
        read_spreadsheet(p)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(SpreadsheetError, match="does not exist"):
        read_spreadsheet(tmp_path / "nope.csv")
    p = tmp_path / "x.pdf"
    p.write_text("x")
    with pytest.raises(SpreadsheetError, match="unsupported extension"):
        read_spreadsheet(p)
    q = tmp_path / "garbage.xlsx"
    q.write_bytes(b"this is not a zip file")
    with pytest.raises(SpreadsheetError, match="Could not open"):
        read_spreadsheet(q)
    r = tmp_path / "latin.csv"
    r.write_bytes("URL,AU1\nhttp://h.org/\xe9.jpg,1\n".encode("latin-1"))
    with pytest.raises(SpreadsheetError, match="UTF-8"):
        read_spreadsheet(r)


def test_unreadable_sheet_reported_others_kept(tmp_path: Path) -> None:
    good = ["http://i.org/1.jpg", 1, 0]
    p = _xlsx(tmp_path / "two.xlsx", {"Good": [good], "Broken": [["http://i.org/2.jpg", 0, 1]]})
    broken = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(p) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet2.xml":
                # Well-formed XML, but the cell points at a shared string that does not exist.
                cell = b'<c r="A1" t="inlineStr"><is><t>http://i.org/2.jpg</t></is></c>'
                assert cell in data
                data = data.replace(cell, b'<c r="A1" t="s"><v>9999</v></c>')
            dst.writestr(item, data)
    d = read_spreadsheet(broken)
    assert [r.source for r in d.rows] == ["http://i.org/1.jpg"]
    sheet_issues = [i for i in d.issues if i.reason == "bad_sheet"]
    assert len(sheet_issues) == 1 and sheet_issues[0].sheet == "Broken"
    assert "could not be read" in sheet_issues[0].detail


def test_emotion_and_posed_values(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text(
        "URL,emotion,posed\n"
        "http://j.org/1,Anger,posed\n"
        "http://j.org/2,999,999\n"
        "http://j.org/3,9,1\n"  # emotion index out of range
        "http://j.org/4,0,maybe\n",  # posed not understood
        encoding="utf-8",
    )
    d = read_spreadsheet(p)
    assert [(r.emotion, r.posed) for r in d.rows] == [(5, 1), (-1, -1)]
    assert [i.row for i in d.issues] == [4, 5]
    assert d.au_ids == ()


def test_unrecognised_header_is_a_clear_error(tmp_path: Path) -> None:
    # Not read by position: the header would be a bad row and every value a bad URL.
    p = tmp_path / "scores.csv"
    p.write_text("id,score\nfoo,1\nbar,0\n", encoding="utf-8")
    with pytest.raises(SpreadsheetError) as info:
        read_spreadsheet(p)
    msg = str(info.value)
    assert str(p) in msg and "scores.csv" in msg  # the file and its (only) sheet
    assert "no URL column" in msg and "['id', 'score']" in msg
    assert "URL" in msg and "http(s) URLs in the first column" in msg  # what is accepted
    assert "\n" not in msg


@pytest.mark.parametrize(
    "text",
    [
        "foo,1,0\nbar,0,1\n",  # no header, no URLs
        "www.k.org/1.jpg,1\nftp://k.org/2.jpg,0\n",  # URL-like, but not http(s)
        "images/1.jpg,1\nimages/2.jpg,0\n",  # local paths: the downloader fetches http(s) only
    ],
)
def test_headerless_without_http_urls_is_a_clear_error(tmp_path: Path, text: str) -> None:
    p = tmp_path / "vals.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(SpreadsheetError, match=r"no usable URL column .*vals\.csv.*http:// or"):
        read_spreadsheet(p)


def test_headerless_xlsx_without_urls_is_a_clear_error(tmp_path: Path) -> None:
    p = _xlsx(tmp_path / "n.xlsx", {"Numbers": [[1, 0, 1], [0, 1, 999]]})
    with pytest.raises(
        SpreadsheetError, match=r"sheet 'Numbers': no URL column: row 1 \[1, 0, 1\]"
    ):
        read_spreadsheet(p)


def test_positional_needs_one_http_url_in_the_first_rows(tmp_path: Path) -> None:
    # One bad URL cell among real ones stays a per-row problem, not a fatal one.
    p = tmp_path / "mixed.csv"
    p.write_text("not-a-url,1,0\nhttps://l.org/1.jpg,0,1\n", encoding="utf-8")
    d = read_spreadsheet(p)
    assert [r.source for r in d.rows] == ["not-a-url", "https://l.org/1.jpg"]
    assert d.au_ids == (1, 2)


def test_sheet_without_url_column_reported_others_kept(tmp_path: Path) -> None:
    p = _xlsx(
        tmp_path / "wb.xlsx",
        {"Notes": [["Annotated by", "lab 3"], ["date", "2016"]], "Data": [["http://m.org/1", 1]]},
    )
    d = read_spreadsheet(p)
    assert [r.source for r in d.rows] == ["http://m.org/1"]
    (issue,) = d.issues
    assert (issue.sheet, issue.reason) == ("Notes", "bad_sheet") and "no URL column" in issue.detail
    assert d.total_rows == 1
    notes = d.files[0]["sheets"][0]
    assert notes["url_column"] == -1 and notes["au_ids"] == [] and "no URL column" in notes["error"]
