"""fer-tf-build-records end to end against the loopback mirror (every fault kind, resume, SIGKILL).

Only 127.0.0.1 is contacted. Timeouts and backoff are tiny so the file stays fast.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FAST_DOWNLOAD_FLAGS, MIRROR_GOOD, make_mirror

from fer_tf.build import build_records
from fer_tf.cli.build_records import main
from fer_tf.preprocessing.decode import decode_image
from fer_tf.records import list_shards, read_manifest
from fer_tf.sources.download import FAILURE_CATEGORIES
from fer_tf.testing.mirror import VARIANTS, Mirror, encode_variant

REPO = Path(__file__).resolve().parents[1]
FAST = list(FAST_DOWNLOAD_FLAGS)
N_GOOD = MIRROR_GOOD


def _args(sheet: Path, out: Path, cache: Path, *extra: str, private: bool = True) -> list[str]:
    a = ["--spreadsheet", str(sheet), "--output-dir", str(out), "--cache-dir", str(cache), *FAST]
    return a + (["--allow-private-hosts"] if private else []) + list(extra)


@pytest.fixture(scope="module")
def mirror():
    with make_mirror() as m:  # its own: the flaky items keep state per URL
        yield m


BAD_ROWS = 3  # label 2, label "x", no URL
DUP_ROWS = 2  # one duplicate, one conflicting duplicate


@pytest.fixture(scope="module")
def sheet(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Path:
    first = mirror.rows("manual", header=True)[1]
    conflicting = [first[0]] + [1 if v == 0 else v for v in first[1:61]] + first[61:]
    extra = [
        ["http://127.0.0.1:9/two.jpg"] + [2] + [0] * 59 + [0.0, 0.0, 0, 0, "x"],
        ["http://127.0.0.1:9/x.jpg"] + ["x"] + [0] * 59 + [0.0, 0.0, 0, 0, "x"],
        [None] + [1] * 60 + [0.0, 0.0, 0, 0, "x"],
        list(first),
        conflicting,
    ]
    path = tmp_path_factory.mktemp("sheet") / "emotionet.xlsx"
    return mirror.write_spreadsheet(path, header=True, meta=True, sheets=2, extra_rows=extra)


@pytest.fixture(scope="module")
def reference(mirror: Mirror, sheet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ref")
    assert main(_args(sheet, root / "out", root / "cache")) == 0
    return root


def _records(out: Path) -> dict[str, dict[str, Any]]:
    import tensorflow as tf

    from fer_tf.records import decode_example

    got: dict[str, dict[str, Any]] = {}
    for split in ("train", "val"):
        for shard in list_shards(out, split):
            for raw in tf.data.TFRecordDataset(shard).as_numpy_iterator():
                rec = decode_example(raw)
                assert rec.source not in got, f"{rec.source} written twice"
                got[rec.source] = {"split": split, "rec": rec}
    return got


def _shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.tfrecord"))}


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --------------------------------------------------------------------------------------------


def test_every_fault_and_every_good_image(mirror: Mirror, sheet: Path, reference: Path) -> None:
    out = reference / "out"
    manifest = read_manifest(out)
    au_ids = manifest["au_ids"]
    assert au_ids == list(range(1, 61))
    got = _records(out)
    # Each good image exactly once, with the labels of its row.
    assert set(got) == {it.url for it in mirror.good}
    for it in mirror.good:
        rec = got[it.url]["rec"]
        assert list(rec.au) == list(it.expected_au(au_ids))
        assert rec.valence == pytest.approx(it.valence, abs=1e-6)
        assert rec.arousal == pytest.approx(it.arousal, abs=1e-6)
        assert (rec.emotion, rec.posed, rec.subject) == (it.emotion, it.posed, it.subject)
        assert rec.image[:2] == b"\xff\xd8" and rec.height == rec.width == 64
    # Each fault in errors.jsonl with its category (one line per failed source).
    errors = _jsonl(out / "errors.jsonl")
    by_source = {e["source"]: e for e in errors}
    assert len(by_source) == len(errors)
    assert {it.url: it.expected_category for it in mirror.bad} == {
        s: e["category"] for s, e in by_source.items()
    }
    for e in errors:
        assert set(e) >= {"row", "source", "stage", "category", "detail", "attempts"}
        assert e["sheet"] in ("Sheet1", "Sheet2") and e["row"] >= 2
        assert e["stage"] == ("decode" if e["category"] == "corrupt_image" else "download")
    # The manifest adds up, per category.
    counts = manifest["counts"]
    rows = len(mirror.items) + BAD_ROWS + DUP_ROWS
    assert counts["rows"] == rows == counts["written"] + counts["failed"] + counts["skipped"]
    assert (
        counts["written"]
        == len(mirror.good)
        == sum(s["count"] for s in manifest["splits"].values())
    )
    assert manifest["failures"] == {
        c: Counter(e["category"] for e in errors).get(c, 0) for c in FAILURE_CATEGORIES
    }
    skipped = _jsonl(out / "skipped.jsonl")
    assert Counter(s["reason"] for s in skipped) == {
        "bad_row": BAD_ROWS,
        "duplicate": 1,
        "duplicate_conflict": 1,
    }
    assert sum(manifest["skipped"].values()) == counts["skipped"] == len(skipped)
    for split, info in manifest["splits"].items():
        assert info["count"] == sum(1 for g in got.values() if g["split"] == split)
        assert info["shards"] == [Path(p).name for p in list_shards(out, split)]
    stats = manifest["label_stats"]["train"]
    assert stats["count"] == manifest["splits"]["train"]["count"]
    assert manifest["inputs"][0]["sha256"] and manifest["fer_tf_version"]


def test_rerun_downloads_nothing_and_is_identical(
    mirror: Mirror, sheet: Path, reference: Path
) -> None:
    before = _shard_bytes(reference / "out")
    mirror.reset_counts()
    assert main(_args(sheet, reference / "out", reference / "cache")) == 0
    assert mirror.requests() == 0
    assert _shard_bytes(reference / "out") == before


def test_two_full_runs_byte_identical(
    mirror: Mirror, sheet: Path, reference: Path, tmp_path: Path
) -> None:
    assert main(_args(sheet, tmp_path / "out", tmp_path / "cache")) == 0
    a, b = _shard_bytes(reference / "out"), _shard_bytes(tmp_path / "out")
    assert a == b and len(a) >= 2


def test_sigkill_then_resume_gives_the_same_records(
    mirror: Mirror, sheet: Path, reference: Path, tmp_path: Path
) -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    out, cache = tmp_path / "out", tmp_path / "cache"
    cmd = [sys.executable, "-m", "fer_tf.cli.build_records", *_args(sheet, out, cache)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    mirror.latency = 0.05
    kills: list[tuple[float, int]] = []
    orphans: list[int] = []
    try:
        for lo, hi in ((0.3, 1.5), (0.5, 6.0)):
            proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            delay = rng.uniform(lo, hi)
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                workers = _children(proc.pid)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                orphans.extend(_still_running(workers, within=5.0))
            kills.append((round(delay, 2), proc.returncode))
        cached_ok = []
        if (cache / "index.jsonl").exists():
            for line in (cache / "index.jsonl").read_text().splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("ok"):
                    cached_ok.append(e["url"])
        counts = {u: mirror.requests(u) for u in cached_ok}
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    finally:
        mirror.latency = 0.0
    info = f"seed={seed} kills={kills} stderr={done.stderr[-2000:]}"
    assert done.returncode == 0, info
    assert {u: mirror.requests(u) for u in cached_ok} == counts, info  # nothing downloaded twice
    assert _shard_bytes(out) == _shard_bytes(reference / "out"), info
    ref_err = {(e["source"], e["category"]) for e in _jsonl(reference / "out" / "errors.jsonl")}
    assert {(e["source"], e["category"]) for e in _jsonl(out / "errors.jsonl")} == ref_err, info
    assert not list(out.glob("*.tmp"))
    assert not orphans, f"pool workers outlived the killed build: {orphans}"


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (Linux /proc; empty elsewhere)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _still_running(pids: list[int], within: float) -> list[int]:
    """The ``pids`` still alive after ``within`` seconds (zombies count as gone)."""
    deadline = time.monotonic() + within
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _alive(p)]
    return alive


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_loopback_refused_without_allow_private_hosts(
    mirror: Mirror, sheet: Path, tmp_path: Path, capsys
) -> None:
    mirror.reset_counts()
    # Every source fails: the build is an error (exit 3) with the failure table on stdout.
    assert main(_args(sheet, tmp_path / "out", tmp_path / "cache", private=False)) == 3
    out, err = capsys.readouterr()
    assert f"    {'blocked_host':<26}{len(mirror.items):>10}" in out.splitlines()
    assert "max_failure_rate=90.0%" in err and "Traceback" not in err
    assert mirror.requests() == 0
    errors = _jsonl(tmp_path / "out" / "errors.jsonl")
    assert {e["category"] for e in errors} == {"blocked_host"}
    m = read_manifest(tmp_path / "out")
    assert m["counts"]["written"] == 0
    assert m["failures"]["blocked_host"] == len(mirror.items)


def test_selected_aus_drop_unknown_and_options(
    mirror: Mirror, sheet: Path, reference: Path, tmp_path: Path
) -> None:
    mirror.reset_counts()
    summary = build_records(
        [sheet],
        tmp_path / "out",
        cache_dir=reference / "cache",
        aus="emotionet11",
        drop_unknown=True,
        image_size=32,
        jpeg_quality=80,
        face_crop="haar",
        equalize=True,
        workers=0,
        allow_private_hosts=True,
        timeout=1.0,
    )
    assert mirror.requests() == 0  # everything came from the shared cache
    assert summary.rows == summary.written + summary.failed + summary.skipped
    assert summary.skipped_by_reason["unknown_label"] > 0
    got = _records(tmp_path / "out")
    assert len(got) == summary.written > 0
    for g in got.values():
        rec = g["rec"]
        assert len(rec.au) == 11 and -1 not in rec.au
        assert min(rec.height, rec.width) <= 32
    assert read_manifest(tmp_path / "out")["au_ids"] == [1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26]


def test_split_by_subject_keeps_subjects_together(
    mirror: Mirror, sheet: Path, reference: Path, tmp_path: Path
) -> None:
    build_records(
        sheet,
        tmp_path / "out",
        cache_dir=reference / "cache",
        split_by="subject",
        val_fraction=0.5,
        seed=3,
        examples_per_shard=4,
        allow_private_hosts=True,
        workers=1,
    )
    got = _records(tmp_path / "out")
    split_of: dict[str, set[str]] = {}
    for g in got.values():
        split_of.setdefault(g["rec"].subject, set()).add(g["split"])
    assert all(len(s) == 1 for s in split_of.values())
    m = read_manifest(tmp_path / "out")
    for info in m["splits"].values():
        assert all(c <= 4 for c in info["shard_counts"])


def test_remembered_failures_and_retry_failed(tmp_path: Path) -> None:
    with Mirror(3, faults={1: "500"}, comma_every=0) as m:
        sheet = m.write_spreadsheet(tmp_path / "s.csv")
        kw: dict[str, Any] = dict(
            cache_dir=tmp_path / "cache", allow_private_hosts=True, retries=0, workers=0
        )
        s1 = build_records(sheet, tmp_path / "out", **kw)
        assert (s1.written, s1.failures["http_5xx"]) == (2, 1)
        m.items[1].fault = None  # the server recovered
        m.reset_counts()
        s2 = build_records(sheet, tmp_path / "out", **kw)
        assert (s2.written, s2.failed, m.requests()) == (2, 1, 0)  # failure remembered
        s3 = build_records(sheet, tmp_path / "out", retry_failed=True, **kw)
        assert (s3.written, s3.failed, m.requests()) == (3, 0, 1)


def test_max_failure_rate_exit_code(mirror: Mirror, sheet: Path, reference: Path, capsys) -> None:
    code = main(_args(sheet, reference / "out2", reference / "cache", "--max-failure-rate", "0.1"))
    assert code == 3
    err = capsys.readouterr().err
    assert "max_failure_rate" in err and "Traceback" not in err
    assert (reference / "out2" / "manifest.json").exists()


@pytest.mark.parametrize("case", ["empty", "no_url", "garbage", "missing"])
def test_bad_spreadsheets_give_a_clear_error(tmp_path: Path, capsys, case: str) -> None:
    p = tmp_path / ("s.xlsx" if case == "garbage" else "s.csv")
    if case == "empty":
        p.write_text("")
    elif case == "no_url":
        p.write_text("name,AU1,AU2\nalice,1,0\n")
    elif case == "garbage":
        p.write_bytes(b"\x00\x01 not a workbook")
    code = main(["--spreadsheet", str(p), "--output-dir", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("fer-tf-build-records: error: ") and str(p) in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_bad_labels_are_reported_per_row(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text(
        "URL,AU1,AU2\nhttp://127.0.0.1:9/a.jpg,2,0\nhttp://127.0.0.1:9/b.jpg,x,0\n"
        "http://127.0.0.1:9/c.jpg,1,999\n"
    )
    args = ["--spreadsheet", str(p), "--output-dir", str(tmp_path / "out"), "--no-progress"]
    assert main([*args, "--max-failure-rate", "1"]) == 0  # its one good row is blocked
    skipped = _jsonl(tmp_path / "out" / "skipped.jsonl")
    assert [(s["row"], s["reason"]) for s in skipped] == [(2, "bad_row"), (3, "bad_row")]
    errors = _jsonl(tmp_path / "out" / "errors.jsonl")
    assert [(e["row"], e["category"]) for e in errors] == [(4, "blocked_host")]


def test_cli_subprocess_no_traceback_and_light_help(tmp_path: Path) -> None:
    p = tmp_path / "empty.csv"
    p.write_text("")
    r = subprocess.run(
        [sys.executable, "-m", "fer_tf.cli.build_records", "--spreadsheet", str(p)]
        + ["--output-dir", str(tmp_path / "o")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr and "empty" in r.stderr
    code = (
        "import sys\nfrom fer_tf.cli.build_records import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\nprint('TF', 'tensorflow' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert "--spreadsheet" in r.stdout and "TF False" in r.stdout


def test_output_dir_not_writable(tmp_path: Path, capsys) -> None:
    p = tmp_path / "s.csv"
    p.write_text("URL,AU1\nhttp://127.0.0.1:9/a.jpg,1\n")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["--spreadsheet", str(p), "--output-dir", str(blocker / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and f"but '{blocker}' is a file, not a directory" in err
    assert (
        "'--output-dir' parameter must be a writable directory (existing or to be created)" in err
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_decode_variants_upright_rgb(variant: str) -> None:
    rng = np.random.default_rng(0)
    img = np.zeros((40, 60, 3), np.uint8)  # non-square: a wrong rotation changes the shape
    img[:, :30] = (200, 40, 40)
    img[:20, 30:] = (40, 200, 40)
    img[20:, 30:] = (40, 40, 200)
    img = np.clip(img.astype(int) + rng.integers(-5, 5, img.shape), 0, 255).astype(np.uint8)
    out = decode_image(encode_variant(img, variant))
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    ref = img.astype(float)
    if variant in ("grey", "png16"):
        ref = (ref @ [0.299, 0.587, 0.114])[..., None].repeat(3, axis=2)
    diff = np.abs(out.astype(float) - ref)
    if variant == "png_alpha":  # a transparent band on the left is composited on white
        assert np.all(out[:, :5] >= 250)
        diff = diff[:, 60 // 8 :]
    tol = 40 if variant == "gif" else 12
    assert diff.mean() < tol, (variant, diff.mean())


def test_decode_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="cannot decode"):
        decode_image(b"<html>nope</html>")
    body = encode_variant(np.zeros((64, 64, 3), np.uint8) + 100, "jpeg")
    with pytest.raises(ValueError, match="cannot decode"):
        decode_image(body[: len(body) // 2])


def test_library_argument_errors(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text("URL,AU1\nhttp://127.0.0.1:9/a.jpg,1\n")
    for kw, name in [
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"split_by": "person"}, "split_by"),
        ({"num_shards": 2, "examples_per_shard": 3}, "exclusive"),
        ({"jpeg_quality": 0}, "jpeg_quality"),
        ({"face_crop": "mtcnn"}, "face_crop"),
        ({"aus": "emotionet1"}, "aus"),
    ]:
        with pytest.raises(ValueError, match=name):
            build_records(p, tmp_path / "out", **kw)


def test_label_stats_are_nan_safe() -> None:
    from fer_tf.build.report import label_stats as _label_stats

    examples = [
        {
            "au": (1, -1),
            "valence": math.nan,
            "arousal": 0.5,
            "emotion": 1,
            "posed": -1,
            "subject": "",
        },
        {
            "au": (0, 1),
            "valence": 0.2,
            "arousal": math.nan,
            "emotion": -1,
            "posed": 1,
            "subject": "s",
        },
    ]
    stats = _label_stats(examples, (1, 2))
    assert stats["au"]["2"] == {"present": 1, "absent": 0, "unknown": 1}
    assert stats["valence"] == {"known": 1, "mean": 0.2, "std": 0.0}
    assert stats["emotion"]["happiness"] == 1 and stats["emotion"]["unknown"] == 1
    assert stats["posed"] == {"posed": 1, "spontaneous": 0, "unknown": 1} and stats["subjects"] == 1


# --------------------------------------------------------------------------------------------
# First-hour errors: each names the input, what was wrong and what is expected.


def _cli(sheet: Path, out: Path, *extra: str) -> list[str]:
    return ["--spreadsheet", str(sheet), "--output-dir", str(out), "--no-progress", *extra]


@pytest.mark.parametrize("header", ["url,AU1\n", "URL,AU 1,AU 2\n\n\n"])
def test_header_only_csv_is_an_error(tmp_path: Path, capsys, header: str) -> None:
    p = tmp_path / "s.csv"
    p.write_text(header)
    code = main(_cli(p, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert f"The spreadsheet '{p}' has no data rows: only a header row" in err
    assert "no AU columns" not in err
    assert not (tmp_path / "out").exists()  # nothing written


def test_no_usable_row_in_any_input_is_an_error(tmp_path: Path, capsys) -> None:
    p = tmp_path / "s.csv"
    p.write_text("URL,AU1\nhttp://127.0.0.1:9/a.jpg,2\nhttp://127.0.0.1:9/b.jpg,x\n")
    code = main(_cli(p, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 1 and f"No usable row in '{p}': all 2 data rows were skipped (2 bad_row)" in err


def test_drop_unknown_removing_every_row_is_an_error(tmp_path: Path) -> None:
    from fer_tf.sources.spreadsheet import SpreadsheetError

    p = tmp_path / "s.csv"
    p.write_text("URL,AU1,AU2\nhttp://127.0.0.1:9/a.jpg,1,999\n")
    with pytest.raises(SpreadsheetError, match=r"1 unknown_label\) \(drop_unknown"):
        build_records(p, tmp_path / "out", aus=[1, 2], drop_unknown=True, progress=False)


def test_every_download_failed_exits_nonzero_with_the_table(tmp_path: Path, capsys) -> None:
    p = tmp_path / "s.csv"
    p.write_text("URL,AU1\nhttp://127.0.0.1:9/a.jpg,1\nhttp://127.0.0.1:9/b.jpg,0\n")
    code = main(_cli(p, tmp_path / "out"))  # loopback refused: both fail, blocked_host
    out, err = capsys.readouterr()
    assert code == 3
    assert f"    {'blocked_host':<26}{2:>10}" in out.splitlines()
    assert "2 of 2 sources failed (100.0%), more than max_failure_rate=90.0%" in err
    assert (tmp_path / "out" / "manifest.json").exists()  # everything was still written


@pytest.mark.parametrize("what", ["directory", "missing"])
def test_spreadsheet_that_is_not_a_file_is_named(tmp_path: Path, capsys, what: str) -> None:
    p = tmp_path / "sheets"
    if what == "directory":
        p.mkdir()
    code = main(_cli(p, tmp_path / "out"))
    err = capsys.readouterr().err
    said = "a directory" if what == "directory" else "nothing (it does not exist)"
    assert code == 1
    assert (
        f"The '--spreadsheet' parameter must be an existing file. Got '{p}', which is {said}."
        in err
    )


def test_output_dir_that_is_a_file_is_named(tmp_path: Path, capsys) -> None:
    p = tmp_path / "s.csv"
    p.write_text("URL,AU1\nhttp://127.0.0.1:9/a.jpg,1\n")
    target = tmp_path / "records"
    target.write_text("not a directory")
    code = main(_cli(p, target))
    err = capsys.readouterr().err
    assert code == 1 and "File exists" not in err
    assert (
        f"The '--output-dir' parameter must be a writable directory (existing or to be created). "
        f"Got '{target}', which is a file." in err
    )


@pytest.mark.parametrize(
    "flag,value,accepted",
    [
        ("--val-fraction", "1.5", "a number >= 0 and <= 1"),
        ("--jpeg-quality", "101", "an integer >= 1 and <= 100"),
        ("--seed", "x", "an integer >= 0"),
        ("--timeout", "0", "a number > 0"),
        ("--max-failure-rate", "nan", "a number >= 0 and <= 1"),
    ],
)
def test_cli_numbers_checked(tmp_path: Path, capsys, flag: str, value: str, accepted: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(_cli(tmp_path / "s.csv", tmp_path / "out", flag, value))
    assert exc.value.code == 2
    assert f"The '{flag}' parameter must be {accepted}. Got" in capsys.readouterr().err


def test_cli_defaults_come_from_build_options() -> None:
    from fer_tf.build.options import BuildOptions
    from fer_tf.cli.build_records import build_parser

    args = build_parser().parse_args(["--spreadsheet", "s.csv", "--output-dir", "o"])
    ref = BuildOptions("s.csv", "o")
    for name in ("val_fraction", "split_by", "seed", "jpeg_quality", "face_crop", "face_margin"):
        assert getattr(args, name) == getattr(ref, name), name
    for name in ("concurrency", "timeout", "retries", "backoff", "max_retry_after", "max_bytes"):
        assert getattr(args, name) == getattr(ref, name), name
    assert (args.max_failure_rate, args.progress) == (ref.max_failure_rate, ref.progress)
    assert 0 < ref.max_failure_rate < 1


def test_build_options_form_and_shorthand_agree(tmp_path: Path) -> None:
    from fer_tf.build import BuildOptions

    with pytest.raises(TypeError, match="either a BuildOptions"):
        build_records(BuildOptions("s.csv", tmp_path), tmp_path)
    with pytest.raises(ValueError, match="The 'face_fallback' parameter must be one of"):
        BuildOptions("s.csv", tmp_path, face_fallback="skip")


def test_progress_in_a_log_is_lines_not_bars(
    mirror: Mirror, sheet: Path, reference: Path, tmp_path: Path, capsys
) -> None:
    args = [a for a in _args(sheet, tmp_path / "out", reference / "cache") if a != "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err  # captured: not a terminal
    assert "\r" not in err
    fetch = [line for line in err.splitlines() if line.startswith("fetch+process:")]
    write = [line for line in err.splitlines() if line.startswith("write:")]
    assert len(fetch) == 10 and fetch[-1].startswith("fetch+process: 100% (")
    assert len(write) == 10 and write[-1].startswith("write: 100% (")


def test_face_fallback_drop_skips_faceless_images(
    mirror: Mirror, sheet: Path, reference: Path, tmp_path: Path
) -> None:
    # Before fer_tf.build, a dropped face crashed the build (KeyError in the progress counters).
    summary = build_records(
        sheet,
        tmp_path / "out",
        cache_dir=reference / "cache",
        face_crop="haar",
        face_fallback="drop",
        allow_private_hosts=True,
        workers=0,
        max_failure_rate=None,
    )
    no_face = summary.skipped_by_reason["no_face"]
    assert no_face > 0 and summary.rows == summary.written + summary.failed + summary.skipped
    reasons = Counter(s["reason"] for s in _jsonl(tmp_path / "out" / "skipped.jsonl"))
    assert reasons["no_face"] == no_face


def test_library_names_an_output_dir_that_is_a_file(tmp_path: Path) -> None:
    from fer_tf.build import BuildError

    p = tmp_path / "s.csv"
    p.write_text("URL,AU1\nhttp://127.0.0.1:9/a.jpg,1\n")
    target = tmp_path / "records"
    target.write_text("")
    with pytest.raises(BuildError, match=r"'output_dir' parameter .* which is a file\."):
        build_records(p, target, progress=False)


@pytest.mark.parametrize("text", ["0", "lots", "0.5"])
def test_max_bytes_checked(tmp_path: Path, capsys, text: str) -> None:
    with pytest.raises(SystemExit):
        main(_cli(tmp_path / "s.csv", tmp_path / "out", "--max-bytes", text))
    err = capsys.readouterr().err
    assert "The '--max-bytes' parameter must be a byte count of at least 1, like 20000000" in err
    assert f"Got '{text}' instead." in err
