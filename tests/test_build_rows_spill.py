"""Phase 1's rows: streamed into a list that moves to disk past a threshold, so the build process
holds a bounded number of rows whatever the number of URLs, and writes the same outputs."""

from __future__ import annotations

import gc
import math
from pathlib import Path
from typing import Any

import pytest
from conftest import build_outputs

from fer_tf.build import BuildError, BuildOptions, build_records, phases
from fer_tf.build.spill import SpillList, SpillMap
from fer_tf.sources.spreadsheet import SheetRow, SheetRowCodec, read_spreadsheets
from fer_tf.testing.mirror import Mirror


@pytest.mark.parametrize("threshold", [0, 3, 1000])
def test_spill_list_and_map_answer_the_same_whether_spilled_or_not(
    tmp_path: Path, threshold: int
) -> None:
    items = [(i, f"v{i}", math.nan if i % 4 == 0 else i / 3) for i in range(20)]
    lst = SpillList(tmp_path / "s", threshold, prefix="rows")
    seen = SpillMap(tmp_path / "s", threshold, prefix="seen")
    for i, it in enumerate(items):
        assert seen.get(it[1]) is None
        seen[it[1]] = i
        lst.append(it)
    assert lst.spilled == seen.spilled == (threshold < 20)
    assert len(lst) == len(seen) == 20
    assert repr(list(lst)) == repr(items) == repr(list(lst))  # in order, re-iterable
    # items flushed at the spill and items still in the write buffer alike
    assert [repr(lst[i]) for i in (0, 4, 19, -1, -20)] == [
        repr(items[i]) for i in (0, 4, 19, -1, -20)
    ]
    assert [seen.get(f"v{i}") for i in (0, 4, 19)] == [0, 4, 19]
    assert seen.get("v20", -1) == -1
    with pytest.raises(IndexError):
        lst[20]
    with pytest.raises(IndexError):
        lst[-21]
    files = sorted(p.name.split("-")[0] for p in (tmp_path / "s").glob("*.sqlite"))
    assert files == (["rows", "seen"] if threshold < 20 else [])
    lst.close()
    seen.close()
    assert not list((tmp_path / "s").glob("*.sqlite"))
    assert len(lst) == 0 and not lst.spilled


def _sheet(path: Path, n: int) -> Path:
    """``n`` URL rows with every label kind, then a duplicate and a conflicting duplicate."""
    lines = ["URL,AU 1,AU 2,valence,subject"]
    for i in range(n):
        au1 = (1, 0, 999)[i % 3]
        valence = "" if i % 5 == 0 else f"{i / 10:.1f}"
        lines.append(f"http://h{i % 7}.org/{i}.jpg,{au1},{i % 2},{valence},s{i % 11}")
    lines += ["http://h3.org/3.jpg,0,1,0.3,s3", "http://h3.org/4.jpg,9,1,,s4"]  # bad row
    lines += ["http://h4.org/4.jpg,0,0,0.4,s4"]  # 4: au1 1 -> conflict
    lines += ["http://h5.org/5.jpg,999,1,0.5,s5"]  # the same as row 5: duplicate
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _live_rows() -> int:
    gc.collect()
    return sum(type(o) is SheetRow for o in gc.get_objects())


def test_phase_1_holds_a_bounded_number_of_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sheet = _sheet(tmp_path / "urls.csv", 600)
    want = read_spreadsheets([sheet])  # everything in memory, as a plain list
    want_rows = [repr(r) for r in want.rows]
    want_issues = [i.to_json() for i in want.issues]
    assert {i["reason"] for i in want_issues} == {"bad_row", "duplicate", "duplicate_conflict"}
    del want
    monkeypatch.setattr(phases, "ROW_SPILL_THRESHOLD", 16)
    before = _live_rows()
    options = BuildOptions([sheet], tmp_path / "out", progress=False)
    inputs = phases.read_sources(options)
    try:
        assert _live_rows() - before <= 16  # not one per URL: the rest are on disk
        assert inputs.rows.spilled and len(inputs.rows) == 600
        assert list((tmp_path / "out" / "cache").glob("rows-*.sqlite"))
        assert not list((tmp_path / "out" / "cache").glob("seen-*.sqlite"))  # closed
        assert [repr(r) for r in inputs.rows] == want_rows
        assert inputs.skipped == want_issues
        assert inputs.data.au_ids == (1, 2)
        for i, _ in enumerate(inputs.rows):  # phase 2 reads them one at a time
            if i % 150 == 0:
                assert _live_rows() - before <= 17
    finally:
        inputs.close()
    assert not list((tmp_path / "out" / "cache").glob("*.sqlite"))


def test_rows_round_trip_through_the_codec_sharing_what_a_sheet_shares() -> None:
    codec = SheetRowCodec()
    ids = (1, 2, 4)
    rows = [
        SheetRow(
            f"http://a/{i}",
            ids,
            bytes([i % 3, 1, 2]),
            i / 2,
            emotion=i % 7 - 1,
            subject=f"s{i}",
            file="f.csv",
            sheet="Sheet",
            row=i + 2,
        )  # fmt: skip
        for i in range(5)
    ]
    back = [codec.decode(codec.encode(r)) for r in rows]
    assert repr(back) == repr(rows)
    assert all(b.au_ids is back[0].au_ids for b in back)


@pytest.mark.parametrize("drop_unknown", [False, True])
def test_a_build_whose_rows_spill_writes_the_samebuild_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drop_unknown: bool
) -> None:
    kw: dict[str, Any] = dict(allow_private_hosts=True, progress=False, image_size=32)
    kw.update(max_failure_rate=None, timeout=2.0, retries=0, examples_per_shard=4)
    kw.update(drop_unknown=drop_unknown, workers=1)
    with Mirror(12, faults={2: "404"}, comma_every=0, unknown_fraction=0.3) as m:
        extra = [m.rows("2020")[2], [m.items[3].url] + [1] * len(m.aus), [m.items[5].url, 7]]
        sheet = m.write_spreadsheet(tmp_path / "urls.csv", extra_rows=extra)
        if drop_unknown:  # one AU: some rows know it, some do not
            kw["aus"] = [m.aus[0]]
        outs = {}
        for threshold in (None, 0, 3):
            if threshold is not None:
                monkeypatch.setattr(phases, "ROW_SPILL_THRESHOLD", threshold)
            cache = tmp_path / f"cache-{threshold}"
            s = build_records([sheet], tmp_path / f"out-{threshold}", cache_dir=cache, **kw)
            assert s.written >= 5 and s.skipped >= 3
            assert not list(cache.glob("*.sqlite"))  # every spill file is removed
            outs[threshold] = build_outputs(tmp_path / f"out-{threshold}")
    skipped = outs[None]["skipped.jsonl"].decode()
    assert "duplicate_conflict" in skipped and '"duplicate"' in skipped
    assert ("unknown_label" in skipped) == drop_unknown
    assert outs[0] == outs[None] and outs[3] == outs[None]


def test_rows_that_cannot_spill_are_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sheet = _sheet(tmp_path / "urls.csv", 5)
    (tmp_path / "file").write_text("x")
    monkeypatch.setattr(phases, "ROW_SPILL_THRESHOLD", 2)
    options = BuildOptions([sheet], tmp_path / "out", cache_dir=tmp_path / "file" / "c")
    with pytest.raises(BuildError, match="cache directory .*file"):
        phases.read_sources(options)
