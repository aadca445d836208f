"""benchmarks/bench_build_records.py: its command line, workloads and a tiny fer_tf-only run.

No img2dataset here (it would be installed from the network) and no timing asserts.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_build_records", ROOT / "benchmarks" / "bench_build_records.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_command_line_defaults(bench: ModuleType) -> None:
    a = bench.build_parser().parse_args([])
    assert (a.workload, a.latency, a.threads, a.workers) == ("both", 0.05, 64, 2)
    assert (a.baseline, a.repeat, a.n, a.skip_img2dataset) == ("img2dataset", 1, 0, False)
    a = bench.build_parser().parse_args(["--workload", "web", "--n", "9", "--baseline", "serial"])
    assert (a.workload, a.n, a.baseline) == ("web", 9, "serial")
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(["--workload", "huge"])


@pytest.mark.parametrize("workload,n,low,high", [("web", 4, 320, 3000), ("small", 12, 280, 340)])
def test_workloads(
    bench: ModuleType, tmp_path: Path, workload: str, n: int, low: int, high: int
) -> None:
    m = bench.make_mirror(workload, n, latency=0.0, seed=4, cache_dir=tmp_path)
    for it in m.items:
        with Image.open(io.BytesIO(it.body)) as im:
            assert im.mode == "RGB" and low <= max(im.size) <= high
            if workload == "small":
                assert low <= min(im.size)
    d = bench.describe(m)
    assert d["n"] == n and low <= d["long_min"] <= d["long_max"] <= high
    assert d["jpeg_bpp"] > 0.5  # photo-like, not flat
    again = bench.make_mirror(workload, n, latency=0.0, seed=4, cache_dir=None)
    assert [it.body for it in again.items] == [it.body for it in m.items]  # deterministic
    with pytest.raises(ValueError, match="workload"):
        bench.make_mirror("huge", 2, latency=0.0, seed=0, cache_dir=None)


def test_fer_tf_side_runs_and_counts_every_image(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setattr(bench, "CACHE", tmp_path / "cache")  # no writes to ~/.cache in tests
    argv = ["--workload", "small", "--n", "6", "--latency", "0", "--skip-img2dataset"]
    assert bench.main([*argv, "--tmp", str(tmp_path / "work")]) == 0
    out = capsys.readouterr().out
    assert "== workload small: 6 photo-like images" in out
    line = next(ln for ln in out.splitlines() if "fer_tf #1" in ln)
    assert "     6 img" in line and "steady" in line and "CPU" in line and "peak RSS" in line
    assert "file create" in line  # the file-system probe of the run's folder
    assert not (tmp_path / "work" / "small" / "fer0" / "out").exists()  # deleted after the end
    assert "FAILED" not in out and list((tmp_path / "cache" / "workloads").glob("*.pkl"))


def test_missing_img2dataset_is_reported_not_fatal(bench: ModuleType, tmp_path: Path) -> None:
    args = bench.build_parser().parse_args(["--img2dataset-python", str(tmp_path / "nope")])
    python, why = bench.img2dataset_python(args)  # given explicitly: never installs
    assert python is None and "not importable" in why


def test_file_probe_and_pairwise_ratios(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    us = bench._file_create_us(tmp_path / "run")
    assert us > 0 and len(list((tmp_path / "run" / "fsprobe").iterdir())) == 200

    def run(tool: str, steady: float, create_us: float) -> object:
        return bench.Run(tool, images=100, steady=steady, extra={"create_us": create_us})

    fer = [run("fer_tf", 1.0, 12.0), run("fer_tf", 0.5, 80.0)]
    base = [run("img2dataset", 1.25, 11.0), run("img2dataset", 0.75, 11.0)]
    bench._print_pairs(fer, base)
    bench._warn_slow_files(fer + base)
    out = capsys.readouterr().out
    assert "pairwise steady-state ratios (run k of each): 1.25, 1.50; median 1.38x" in out
    assert "cost up to 80 us" in out
    bench._warn_slow_files(base)
    assert capsys.readouterr().out == ""
