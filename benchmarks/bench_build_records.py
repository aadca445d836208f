"""Benchmark: fer-tf-build-records vs a serial urllib downloader (Bartissol 2017's approach).

N SynthFACS JPEGs (default 2,000 at 256 px) are served by the loopback mirror, in its own process,
with a fixed latency per request (default 50 ms). Both sides go from spreadsheet to TFRecords:

- fer_tf: the ``fer-tf-build-records`` CLI in a subprocess, fresh cache, timed end to end
  (interpreter start and the process pool included; the CLI never imports TensorFlow);
- serial baseline: one ``urllib`` request at a time, Pillow decode + JPEG re-encode, one
  ``tf.io.TFRecordWriter`` (TensorFlow imported before timing starts). Being ~50x slower, it is timed
  on a subset (``--baseline-n``, default 200) and its rate extrapolated; the output says so.

Prints images/s for both, the ratio, CPU seconds per image (user+sys of every fer_tf process;
unlike images/s it hardly depends on what else the machine runs) and the peak RSS of the largest
fer_tf process. ``--repeat K`` runs the fer_tf side K times (fresh cache each time) and prints
each run and the best. Targets (issue 3) on a 2-core machine: >= 300 images/s, >= 20x the
baseline, peak RSS < 1 GB for 10,000 images (``--n 10000 --baseline-n 0`` measures that).

Usage::

    python benchmarks/bench_build_records.py [--n 2000] [--size 256] [--latency 0.05] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _serve(n: int, size: int, latency: float, sheet: str, ready, stop) -> None:  # noqa: ANN001
    from fer_tf.testing.mirror import Mirror

    with Mirror(n, size=size, latency=latency, comma_every=0, seed=1) as m:
        m.write_spreadsheet(sheet, layout="2020")
        ready.put([it.url for it in m.items])
        stop.wait()


def _baseline(urls: list[str], out: Path) -> tuple[float, float]:
    """Bartissol 2017's approach: one urllib request at a time, decode, re-encode, write.

    Returns:
        (wall seconds, CPU seconds).
    """
    import urllib.request

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from PIL import Image

    from fer_tf.records import ExampleRecord, encode_example

    t0 = time.perf_counter()
    c0 = time.process_time()
    with tf.io.TFRecordWriter(str(out / "baseline.tfrecord")) as writer:
        for url in urls:
            with urllib.request.urlopen(url, timeout=10) as resp:
                data = resp.read()
            im = Image.open(io.BytesIO(data)).convert("RGB")
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=95)
            rec = ExampleRecord(buf.getvalue(), im.height, im.width, url, au=[0] * 15)
            writer.write(encode_example(rec))
    return time.perf_counter() - t0, time.process_time() - c0


def _run_fer_tf(
    work: Path, sheet: Path, args: argparse.Namespace
) -> tuple[int, float, float, float, dict] | None:
    """One CLI run in a subprocess: (written, wall s, CPU s, peak RSS MB, summary) or None."""
    cmd = [
        sys.executable,
        "-m",
        "fer_tf.cli.build_records",
        "--spreadsheet",
        str(sheet),
        "--output-dir",
        str(work / "out"),
        "--cache-dir",
        str(work / "cache"),
        "--allow-private-hosts",
        "--concurrency",
        str(args.concurrency),
        "--per-host",
        str(args.concurrency),
        "--workers",
        str(args.workers),
        "--num-shards",
        "4",
        "--no-progress",
        "--summary-json",
        str(work / "summary.json"),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    work.mkdir(parents=True, exist_ok=True)
    log = work / "cli.log"
    t0 = time.perf_counter()
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
        # wait4: this run's own rusage (CPU of the CLI and of the pool workers it reaped; maxrss =
        # the largest of those processes), not that of earlier children.
        _, status, usage = os.wait4(proc.pid, 0)
    fer_s = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(log.read_text(errors="replace"))
        return None
    cpu_s = usage.ru_utime + usage.ru_stime
    rss_mb = usage.ru_maxrss / 1024
    summary = json.loads((work / "summary.json").read_text())
    return summary["written"], fer_s, cpu_s, rss_mb, summary


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="images (default 2000)")
    ap.add_argument("--size", type=int, default=256, help="image size in px (default 256)")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per request (0.05)")
    ap.add_argument(
        "--baseline-n", type=int, default=200, help="baseline subset (default 200; 0 skips it)"
    )
    ap.add_argument("--repeat", type=int, default=1, help="fer_tf runs (fresh cache each)")
    ap.add_argument("--concurrency", type=int, default=64, help="fer_tf download threads (64)")
    ap.add_argument("--workers", type=int, default=2, help="fer_tf processes (default 2)")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_build_records_"))
    sheet = tmp / "urls.csv"
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Queue(), ctx.Event()
    t_setup = time.perf_counter()
    server = ctx.Process(
        target=_serve, args=(args.n, args.size, args.latency, str(sheet), ready, stop), daemon=True
    )
    server.start()
    try:
        urls = ready.get(timeout=1800)
        setup = time.perf_counter() - t_setup
        print(
            f"mirror: {len(urls)} SynthFACS JPEGs at {args.size}px, {args.latency * 1000:.0f} ms "
            f"latency per request, in its own process (setup {setup:.1f}s); cpus={os.cpu_count()}"
        )

        runs = []
        for k in range(max(1, args.repeat)):
            run = _run_fer_tf(tmp / f"run{k}", sheet, args)
            if run is None:
                return 1
            runs.append(run)
            written, fer_s, cpu_s, rss_mb, summary = run
            print(
                f"fer_tf   : {written} images in {fer_s:.2f}s end to end = "
                f"{written / fer_s:.0f} images/s; CPU {cpu_s:.2f}s = "
                f"{cpu_s / max(1, written) * 1000:.2f} ms/image; peak RSS {rss_mb:.0f} MB; "
                f"load {os.getloadavg()[0]:.1f} (failed {summary['failed']}, concurrency "
                f"{args.concurrency}, workers {args.workers})"
            )
            phases = ", ".join(f"{k} {v:.2f}s" for k, v in summary.get("timings", {}).items())
            print(f"           phases inside build_records: {phases}")
        written, fer_s, cpu_s, rss_mb, _ = min(runs, key=lambda r: r[1])
        fer_rate = written / fer_s
        if args.baseline_n > 0:
            sub = urls[: max(1, min(args.baseline_n, len(urls)))]
            base_s, base_cpu = _baseline(sub, tmp)
            base_rate = len(sub) / base_s
            extrapolated = " (extrapolated)" if len(sub) < len(urls) else ""
            print(
                f"baseline : {len(sub)} images in {base_s:.1f}s = {base_rate:.1f} images/s serial "
                f"urllib; CPU {base_cpu / len(sub) * 1000:.2f} ms/image; {len(urls)} images "
                f"would take {len(urls) / base_rate:.0f}s{extrapolated}; load "
                f"{os.getloadavg()[0]:.1f}"
            )
            print(
                f"ratio    : {fer_rate / base_rate:.1f}x  (best fer_tf run {fer_rate:.0f} "
                f"images/s; targets: >= 300 images/s, >= 20x)"
            )
        print(
            f"best     : {fer_rate:.0f} images/s, {cpu_s / max(1, written) * 1000:.2f} ms CPU/image, "
            f"peak RSS {rss_mb:.0f} MB over {written} images (RSS target < 1 GB at 10,000); "
            f"{os.cpu_count()} cpus"
        )
        print(f"files    : {tmp}")
    finally:
        stop.set()
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
