"""Benchmark: fer-tf-build-records vs a serial urllib downloader (seed 001's approach).

N SynthFACS JPEGs (default 2,000 at 256 px) are served by the loopback mirror, in its own process,
with a fixed latency per request (default 50 ms). Both sides go from spreadsheet to TFRecords:

- fer_tf: the ``fer-tf-build-records`` CLI in a subprocess, fresh cache, timed end to end
  (interpreter start, TensorFlow import and the process pool included);
- serial baseline: one ``urllib`` request at a time, Pillow decode + JPEG re-encode, one
  ``tf.io.TFRecordWriter`` (TensorFlow imported before timing starts). Being ~50x slower, it is timed
  on a subset (``--baseline-n``, default 200) and its rate extrapolated; the output says so.

Prints images/s for both, the ratio, and the peak RSS of the fer_tf process. Targets (issue 3) on a
2-core machine: >= 300 images/s, >= 20x the baseline, peak RSS < 1 GB for 10,000 images.

Usage::

    python benchmarks/bench_build_records.py [--n 2000] [--size 256] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _serve(n: int, size: int, latency: float, sheet: str, ready, stop) -> None:  # noqa: ANN001
    from fer_tf.data.mirror import Mirror

    with Mirror(n, size=size, latency=latency, comma_every=0, seed=1) as m:
        m.write_spreadsheet(sheet, layout="2020")
        ready.put([it.url for it in m.items])
        stop.wait()


def _baseline(urls: list[str], out: Path) -> float:
    """Seed 001's approach: one urllib request at a time, decode, re-encode, write. Returns s."""
    import urllib.request

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from PIL import Image

    from fer_tf.records import ExampleRecord, encode_example

    t0 = time.perf_counter()
    with tf.io.TFRecordWriter(str(out / "baseline.tfrecord")) as writer:
        for url in urls:
            with urllib.request.urlopen(url, timeout=10) as resp:
                data = resp.read()
            im = Image.open(io.BytesIO(data)).convert("RGB")
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=95)
            rec = ExampleRecord(buf.getvalue(), im.height, im.width, url, au=[0] * 15)
            writer.write(encode_example(rec))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="images (default 2000)")
    ap.add_argument("--size", type=int, default=256, help="image size in px (default 256)")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per request (0.05)")
    ap.add_argument("--baseline-n", type=int, default=200, help="baseline subset (default 200)")
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

        cmd = [
            sys.executable,
            "-m",
            "fer_tf.cli.build_records",
            "--spreadsheet",
            str(sheet),
            "--output-dir",
            str(tmp / "out"),
            "--cache-dir",
            str(tmp / "cache"),
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
            str(tmp / "summary.json"),
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0 = before.ru_utime + before.ru_stime
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        fer_s = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout, proc.stderr, sep="\n")
            return 1
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        rss_mb = usage.ru_maxrss / 1024
        cpu_s = usage.ru_utime + usage.ru_stime - cpu0
        summary = json.loads((tmp / "summary.json").read_text())
        written = summary["written"]

        sub = urls[: max(1, min(args.baseline_n, len(urls)))]
        base_s = _baseline(sub, tmp)
        base_rate = len(sub) / base_s
        fer_rate = written / fer_s
        extrapolated = " (extrapolated)" if len(sub) < len(urls) else ""
        print(
            f"fer_tf   : {written} images in {fer_s:.1f}s end to end = {fer_rate:.0f} images/s "
            f"(failed {summary['failed']}, concurrency {args.concurrency}, "
            f"workers {args.workers})"
        )
        print(
            f"baseline : {len(sub)} images in {base_s:.1f}s = {base_rate:.1f} images/s serial "
            f"urllib; {len(urls)} images would take {len(urls) / base_rate:.0f}s{extrapolated}"
        )
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in summary.get("timings", {}).items())
        print(f"fer_tf phases (inside build_records): {phases}")
        print(
            f"fer_tf CPU: {cpu_s:.1f}s user+sys over all its processes; load average now "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus"
        )
        print(f"ratio    : {fer_rate / base_rate:.1f}x  (targets: >= 300 images/s, >= 20x)")
        print(f"peak RSS : {rss_mb:.0f} MB (largest fer_tf process; target < 1 GB at 10,000)")
    finally:
        stop.set()
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
