"""``--runner beam``: the record build as Apache Beam pipelines (DirectRunner) against the local
runner, on the loopback mirror (every fault kind) and on local dataset sources (image files, data
items, video frames); resume after a failed pipeline; the worker cache; the options and errors.

Only 127.0.0.1 is contacted. The pipeline tests need ``apache-beam`` (``pip install
'fer-tf[beam]'``); the option, error and cache tests do not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FAST_DOWNLOAD_FLAGS, make_mirror

from fer_tf.build import BuildError, BuildOptions, build_records
from fer_tf.cli.build_records import main
from fer_tf.records import list_shards, read_manifest
from fer_tf.sources.base import Source, SourceItem, register_source
from fer_tf.sources.download import DownloadCache, FetchResult
from fer_tf.testing import miniatures_sequences as mseq
from fer_tf.testing import miniatures_stills as mst
from fer_tf.testing.miniatures_ingest import write_avi, write_folder_dataset
from fer_tf.testing.mirror import Mirror

REPO = Path(__file__).resolve().parents[1]
FAST = list(FAST_DOWNLOAD_FLAGS)
#: Two DoFn instances in one process: two worker caches writing their own index parts.
TWO_THREADS = "--beam-options=--direct_num_workers=2 --direct_running_mode=multi_threading"


@pytest.fixture(scope="module")
def beam():
    # apache-beam is in the dev extra (make test installs it): missing, these tests fail, not skip.
    import apache_beam

    return apache_beam


def _main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse usage errors
        return int(exc.code or 0)


def _sheet_args(sheet: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    a = ["--spreadsheet", str(sheet), "--output-dir", str(out), "--cache-dir", str(cache), *FAST]
    return [*a, "--allow-private-hosts", "--no-progress", *extra]


def _shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.tfrecord"))}


def _examples(out: Path) -> dict[str, tuple[Any, ...]]:
    """id -> (split, source, labels...) of every record, parsed back."""
    import tensorflow as tf

    from fer_tf.records import decode_example

    got: dict[str, tuple[Any, ...]] = {}
    for split in read_manifest(out)["splits"]:
        for shard in list_shards(out, split):
            for raw in tf.data.TFRecordDataset(shard).as_numpy_iterator():
                r = decode_example(raw)
                assert r.id not in got
                labels = (tuple(r.au), r.emotion, r.posed, r.subject, r.fold, r.frame)
                got[r.id] = (split, r.source, *labels, np.float32(r.valence).tobytes())
    return got


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _entries(path: Path) -> list[tuple[Any, ...]]:
    # A Pillow error names a memory address (<_io.BytesIO object at 0x...>): compare the rest.
    keys = ("file", "sheet", "row", "source", "stage", "category", "reason", "attempts", "frame")
    return [tuple(e.get(k) for k in keys) for e in _jsonl(path)]


def _same_build(local: Path, beam_out: Path) -> dict[str, Any]:
    """Assert the Beam build holds the local build's records, failures and skips; its manifest."""
    assert _shards(beam_out) == _shards(local) and _shards(local)
    assert _examples(beam_out) == _examples(local)
    for name in ("errors.jsonl", "skipped.jsonl"):
        assert _entries(beam_out / name) == _entries(local / name)
    ml, mb = read_manifest(local), read_manifest(beam_out)
    for key in ("counts", "failures", "skipped", "splits", "label_stats", "split", "au_ids"):
        assert mb[key] == ml[key], key
    assert "runner" not in ml and "runner" not in ml["arguments"]
    assert mb["runner"] == mb["arguments"]["runner"] == "beam"
    assert mb["beam_runner"] == "DirectRunner" and "shard boundaries" in mb["runner_note"]
    assert not (beam_out / ".fer_tf-beam").exists()
    return mb


# --------------------------------------------------------------------------------------------
# Spreadsheets of URLs on the mirror


@pytest.fixture(scope="module")
def mirror() -> Iterator[Mirror]:
    with make_mirror() as m:  # every fault kind and image variant, 6 plain JPEGs
        yield m


@pytest.fixture(scope="module")
def sheet(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Path:
    first = mirror.rows("manual", header=True)[1]
    extra = [
        ["http://127.0.0.1:9/x.jpg"] + ["x"] + [0] * 59 + [0.0, 0.0, 0, 0, "x"],  # bad label
        list(first),  # a duplicate
    ]
    path = tmp_path_factory.mktemp("sheet") / "urls.xlsx"
    return mirror.write_spreadsheet(path, header=True, meta=True, extra_rows=extra)


@pytest.fixture(scope="module")
def builds(beam, mirror: Mirror, sheet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("builds")
    assert main(_sheet_args(sheet, root / "local", root / "cache-local")) == 0
    mirror.reset_counts()
    summary = root / "beam.json"
    args = _sheet_args(sheet, root / "beam", root / "cache-beam", "--runner", "beam")
    assert main([*args, "--summary-json", str(summary)]) == 0
    assert mirror.requests() > 0
    return root


def test_beam_build_equals_the_local_build(builds: Path, mirror: Mirror) -> None:
    manifest = _same_build(builds / "local", builds / "beam")
    assert manifest["counts"]["written"] == len(mirror.good)
    errors = {e["source"]: e["category"] for e in _jsonl(builds / "beam" / "errors.jsonl")}
    assert errors == {it.url: it.expected_category for it in mirror.bad}
    summary = json.loads((builds / "beam.json").read_text())
    assert summary["downloaded"] == len(mirror.good) + 1  # and the corrupt JPEG
    assert summary["processed"] == summary["downloaded"]
    assert summary["rows"] == summary["written"] + summary["failed"] + summary["skipped"]


def test_rerun_on_two_workers_downloads_nothing(
    builds: Path, mirror: Mirror, sheet: Path, tmp_path: Path
) -> None:
    mirror.reset_counts()
    out, summary = tmp_path / "again", tmp_path / "s.json"
    args = _sheet_args(sheet, out, builds / "cache-beam", "--runner", "beam", TWO_THREADS)
    assert main([*args, "--summary-json", str(summary)]) == 0
    assert mirror.requests() == 0
    s = json.loads(summary.read_text())
    assert s["downloaded"] == 0 and s["cached"] == len(mirror.items)
    assert _shards(out) == _shards(builds / "local")
    cache = builds / "cache-beam"
    assert not list((cache / "index.d").glob("*.jsonl"))  # merged into index.jsonl
    assert not [p for p in (cache / "tmp").iterdir()]  # worker download folders removed


def test_failed_pipeline_then_rerun_resumes(
    beam, mirror: Mirror, sheet: Path, builds: Path, tmp_path: Path, monkeypatch
) -> None:
    import fer_tf.build.local as local_jobs

    broken = mirror.good[0].url
    real = local_jobs.triage_file

    def crash(src: str, dst: str, options: dict[str, Any]) -> Any:
        raise RuntimeError("worker crashed")  # a bug in a worker, not a bad image

    monkeypatch.setattr(local_jobs, "triage_file", crash)
    cache, out = tmp_path / "cache", tmp_path / "out"
    mirror.reset_counts()
    args = _sheet_args(sheet, out, cache, "--runner", "beam")
    assert main(args) == 1  # BuildError: the pipeline failed
    first = {it.url for it in mirror.items if mirror.requests(it.path)}
    done = DownloadCache(cache)  # what the failed run left (worker parts merged)
    remembered = {it.url for it in mirror.items if done.lookup(it.url)}
    # Downloads stopped by the crash are not remembered as failures ("connection: interrupted").
    details = {done.lookup(u).get("detail") for u in remembered}
    done.close()
    assert "interrupted" not in details
    assert remembered and remembered <= first
    monkeypatch.setattr(local_jobs, "triage_file", real)
    mirror.reset_counts()
    assert main(args) == 0
    again = {it.url for it in mirror.items if mirror.requests(it.path)}
    assert not again & remembered  # nothing fetched twice
    assert broken in remembered or broken in again
    assert _shards(out) == _shards(builds / "local")


# --------------------------------------------------------------------------------------------
# Local dataset sources


@register_source
class _BeamVideoSource(Source):
    """Frames 0, 2 and (past the end) 30 of every ``*.avi``: video items, unreadable frames."""

    name = "test_beam_video"
    description = "test only: frames of videos"
    sequences = True

    def items(self, report) -> Iterator[SourceItem]:
        for video in sorted(self.root.glob("*.avi")):
            for frame in (0, 2, 30):
                yield SourceItem(
                    source=f"{video.name}#frame={frame}",
                    video=video,
                    frame=frame,
                    sequence=video.stem,
                    subject=video.stem[:3],
                )


def _videos(root: Path) -> None:
    from fer_tf.testing.miniatures_ingest import synth_images

    for k, name in enumerate(("s01_a", "s02_b")):
        write_avi(root / f"{name}.avi", synth_images(5, seed=k, size=48))


LOCAL_CASES = {
    # files (jpg + png), a broken JPEG, a non-image, the dataset's own partitions
    "folder": (lambda d: write_folder_dataset(d, per_class=2, partitions=("train", "test")), []),
    # pixels held in a CSV (data items), FER+ soft labels, a broken pixel row
    "fer2013": (mst.write_fer2013, []),
    # videos with AU intensities, bad label lines, frames past the end, 2 subject folds
    "disfa": (lambda d: mseq.write_disfa(d, frames=4), ["--folds", "2"]),
    "test_beam_video": (_videos, ["--image-size", "32"]),
}


@pytest.mark.parametrize("source", list(LOCAL_CASES))
def test_local_source_beam_equals_local(beam, source: str, tmp_path: Path) -> None:
    make, extra = LOCAL_CASES[source]
    make(tmp_path / "data")
    base = ["--source", source, "--input", str(tmp_path / "data"), "--no-progress", *extra]
    assert main([*base, "--output-dir", str(tmp_path / "local"), "--workers", "0"]) == 0
    beam_args = [*base, "--output-dir", str(tmp_path / "beam"), "--runner", "beam"]
    assert main(beam_args) == 0
    manifest = _same_build(tmp_path / "local", tmp_path / "beam")
    ml = read_manifest(tmp_path / "local")
    assert manifest["folds"] == ml["folds"] and manifest["label_lengths"] == ml["label_lengths"]
    if source == "test_beam_video":
        assert manifest["failures"]["unreadable_frame"] == 2
    # A rerun decodes nothing: every image comes from the processed cache.
    summary = tmp_path / "s.json"
    assert main([*beam_args, "--summary-json", str(summary)]) == 0
    s = json.loads(summary.read_text())
    assert s["processed"] == 0 and s["frames_decoded"] == 0 and s["cached"] > 0
    assert _shards(tmp_path / "beam") == _shards(tmp_path / "local")


def test_python_api(beam, tmp_path: Path) -> None:
    written = write_folder_dataset(tmp_path / "data", per_class=2, quirks=False)["images"]
    options = BuildOptions(
        source="folder",
        input=tmp_path / "data",
        output_dir=tmp_path / "out",
        runner="beam",
        beam_options="--runner=DirectRunner --direct_num_workers=1",
        progress=False,
    )
    assert options.beam_options == ("--runner=DirectRunner", "--direct_num_workers=1")
    summary = build_records(options)
    assert summary.written == written and read_manifest(tmp_path / "out")["runner"] == "beam"
    out = tmp_path / "bad"
    for flags, why in (
        (["--no_such_beam_flag=1"], r"\['--no_such_beam_flag'\].*no Beam pipeline option"),
        (["--runner=NoSuchRunner"], "cannot make the runner 'NoSuchRunner'"),
    ):
        bad = BuildOptions(**{**_fields(options), "beam_options": flags, "output_dir": out})
        with pytest.raises(BuildError, match=why):
            build_records(bad)
        assert not out.exists()  # checked before any work


def _fields(options: BuildOptions) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(options, f.name) for f in dataclasses.fields(options) if f.init}


# --------------------------------------------------------------------------------------------
# Without Beam: options, errors, the worker cache


def test_not_installed_is_a_clear_error_before_any_work(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # ``import apache_beam`` now fails
    write_folder_dataset(tmp_path / "data", per_class=1, quirks=False)
    out = tmp_path / "out"
    args = ["--source", "folder", "--input", str(tmp_path / "data"), "--output-dir", str(out)]
    assert _main([*args, "--runner", "beam"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'fer-tf[beam]'" in err and "Traceback" not in err
    assert not out.exists()  # nothing was read, created or written
    with pytest.raises(BuildError, match=r"pip install 'fer-tf\[beam\]'"):
        build_records(tmp_path / "data", out, source="folder", runner="beam")


def test_runner_and_beam_options_are_checked(tmp_path: Path, capsys) -> None:
    kw = {"source": "folder", "input": tmp_path, "output_dir": tmp_path / "o"}
    with pytest.raises(ValueError, match="'runner' parameter must be one of.*Got 'spark'"):
        BuildOptions(runner="spark", **kw)
    with pytest.raises(ValueError, match="'beam_options' parameter is for runner='beam'"):
        BuildOptions(beam_options=["--runner=DirectRunner"], **kw)
    with pytest.raises(ValueError, match="'beam_options' parameter must be Apache Beam"):
        BuildOptions(runner="beam", beam_options=["DirectRunner"], **kw)
    with pytest.raises(ValueError, match="split like a shell line"):
        BuildOptions(runner="beam", beam_options="--project='unclosed", **kw)
    base = ["--source", "folder", "--input", str(tmp_path), "--output-dir", str(tmp_path / "o")]
    assert _main([*base, "--runner", "spark"]) == 2
    assert "invalid choice: 'spark'" in capsys.readouterr().err
    assert _main([*base, "--beam-option=--runner=DirectRunner"]) == 2
    assert "for runner='beam'" in capsys.readouterr().err


def test_cli_collects_beam_flags() -> None:
    from fer_tf.cli.build_records import _options, build_parser

    args = build_parser().parse_args(
        ["--spreadsheet", "u.csv", "--output-dir", "o", "--runner", "beam"]
        + ['--beam-options=--runner=FlinkRunner --flink_master="host:8081"']
        + ["--beam-option=--parallelism=4", "--beam-option=--environment_type=LOOPBACK"]
    )
    options = _options(args)
    assert options.runner == "beam"
    assert options.beam_options == (
        "--runner=FlinkRunner",
        "--flink_master=host:8081",
        "--parallelism=4",
        "--environment_type=LOOPBACK",
    )
    assert options.manifest_arguments()["beam_options"] == list(options.beam_options)
    from fer_tf.build.beam import _beam_runner, pipeline_flags

    assert _beam_runner(pipeline_flags(options)) == "FlinkRunner"
    plain = BuildOptions(spreadsheets=["u.csv"], output_dir="o", runner="beam")
    assert pipeline_flags(plain) == ["--runner=DirectRunner"]


def test_help_imports_neither_tensorflow_nor_beam() -> None:
    code = (
        "import sys\nfrom fer_tf.cli.build_records import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in ('tensorflow', 'apache_beam') if m in sys.modules))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert "--beam-options" in r.stdout and "HEAVY []" in r.stdout


def test_worker_caches_share_one_index(tmp_path: Path) -> None:
    from fer_tf.build.beam import WorkerCache, merge_index

    DownloadCache(tmp_path).close()
    a, b = WorkerCache(tmp_path), WorkerCache(tmp_path)
    assert a.tmp != b.tmp and a.tmp.parent == b.tmp.parent == tmp_path / "tmp"
    a.record(FetchResult("http://h/a.jpg", True, "ab" * 32, 3))
    b.record(FetchResult("http://h/b.jpg", False, category="http_404", detail="404", attempts=1))
    fd, part = b.new_tmp()
    assert part.parent == b.tmp
    c = WorkerCache(tmp_path)  # a worker started later sees both
    assert c.lookup("http://h/a.jpg")["ok"] and c.lookup("http://h/b.jpg")["category"] == "http_404"
    c._fh.write('{"url": "http://h/torn.jpg", "ok": tr')  # a worker killed mid-line
    c._fh.flush()
    for cache in (a, b, c):
        cache.close()
    assert not b.tmp.exists()
    assert merge_index(tmp_path) == 3 and merge_index(tmp_path) == 0
    merged = DownloadCache(tmp_path)
    assert merged.lookup("http://h/a.jpg") and merged.lookup("http://h/b.jpg")
    assert merged.lookup("http://h/torn.jpg") is None
    merged.close()
