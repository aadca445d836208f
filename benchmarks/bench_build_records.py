"""Benchmark: fer-tf-build-records side by side with img2dataset (issue 14, part 1).

img2dataset (https://github.com/rom1504/img2dataset) is what a user would pick instead for
"URL list -> shards". Both tools run, one after the other, against the same loopback server
(:class:`fer_tf.testing.mirror.Mirror`, in its own process, a fixed latency per request, default
50 ms), on the same machine, with the same download concurrency and the same target size, and both
write every image. img2dataset is not a dependency of fer_tf: the benchmark installs it into its own
virtual environment (``~/.cache/fer_tf_bench/img2dataset-venv``, created on first use with
``python -m venv`` + ``pip install img2dataset==1.47.0``, reused afterwards;
``--img2dataset-python PATH`` points at an existing interpreter instead). When it cannot be
installed, the reason is printed and the fer_tf side still runs.

Workloads (``--workload web|small|both``, default both; deterministic with ``--seed``; the images
are generated once and cached in ``~/.cache/fer_tf_bench/workloads``):

- ``web``: 600 web photos, long side 320-3,000 px (log-normal, median ~900 px, ~80% between 500
  and 1,600; aspect ratios 4:3, 3:2, 1:1, 16:9, 5:4, 30% portrait; ``web_photo_sizes``), 5% served
  as RGB PNG, the rest as JPEG (quality 90), photo-like content (crops of scikit-image's sample
  photos with mild noise, ``photo_image``: ~1.6 bits per pixel as JPEG, mean file ~240 KB with the
  PNGs), target shorter side 299. Goal (steady state, 2 cores): fer_tf >= 1.5x img2dataset.
- ``small``: 2,000 photo-like JPEGs with each side 280-340 px, target shorter side 256. Goal:
  >= 1.2x.

Settings, and why they are comparable:

- fer_tf: ``fer-tf-build-records --spreadsheet urls.csv --image-size T --jpeg-quality 95
  --workers 2 --concurrency 64 --per-host 64 --num-shards 4 --allow-private-hosts --no-progress``
  with a fresh ``--cache-dir`` per run (nothing cached). It decodes every image fully, downscales
  those whose shorter side exceeds T to shorter side T (aspect kept, never upscaled) and re-encodes
  them as JPEG 95; JPEGs needing no change are kept as downloaded; TFRecord shards.
- img2dataset: its Python API ``img2dataset.download(...)`` with ``input_format="txt"`` (the same
  URLs), ``output_format="webdataset"`` (tar shards: the closest to fer_tf's shards without
  installing TensorFlow in its venv), ``image_size=T, resize_mode="keep_ratio",
  resize_only_if_bigger=True`` (shorter side T, never upscaled), ``downscale_interpolation="area"``
  (its default), ``encode_format="jpg", encode_quality=95``, ``skip_reencode=True`` (images left
  unresized are kept as downloaded, as fer_tf does), ``processes_count=2``,
  ``thread_count=64 // 2 = 32`` per process (img2dataset's ``thread_count`` is per process: 2 x 32 =
  the same 64 downloads in flight as fer_tf's ``--concurrency 64``; ``--i2d-thread-count 64``
  gives each process 64), ``number_sample_per_shard=ceil(N / 4)`` (4 shards, so both processes
  work: img2dataset parallelises over shards), ``enable_wandb=False``, ``retries=0``, ``timeout=10``
  and its other defaults (EXIF extraction, SHA-256 of each image: what a user gets). No per-host
  limit exists in img2dataset; fer_tf's ``--per-host`` is set to the concurrency, so neither tool
  throttles per host. ``NO_ALBUMENTATIONS_UPDATE=1`` stops albumentations from checking PyPI for
  updates at import.

Both write N images or the run is reported as failed: fer_tf's ``--summary-json`` ``written`` and
img2dataset's ``*_stats.json`` ``successes`` plus a count of the ``.jpg`` members in its tars.

Measured per tool and run:

- end to end: images / (process start to exit), as a user times the command;
- steady state: images / (first HTTP request the server receives to process exit). The server
  records ``time.monotonic()`` of its first request (reset between runs); CLOCK_MONOTONIC is
  system-wide on Linux, so it compares with the benchmark's own ``time.monotonic()`` at exit. This
  leaves out start-up (imports, spawning processes), which is what a user building a million
  images amortises;
- CPU-ms per image: user + system time of the tool's whole process tree (``os.wait4`` on the tool's
  process includes every descendant it reaped; the benchmark is a child subreaper, so descendants
  that outlive their parent are reaped and counted too), and the split main process / the rest
  (from a small runner that reads ``getrusage`` in the tool's main process at the end). Also in
  steady state: minus the tree's CPU when the server saw the first request (read from /proc by a
  thread that polls the server every 20 ms), which leaves out start-up (img2dataset imports its
  stack in four processes). CPU-ms per image hardly depends on machine load; images/s does, so the
  load average is printed. On an idle machine with both tools CPU-bound, the steady-state ratio
  tends to the ratio of steady-state CPU per image;
- peak RSS: the largest single process of the tree (``ru_maxrss``; a process started from this
  one inherits this one's high-water mark at exec, printed as the floor: it stays ~30 MB because
  the workload lives in the server process, and the serial baseline, which imports TensorFlow
  here, runs last);
- the most requests the server had in flight at once.

``--repeat K`` runs each tool K times (alternating, fresh output and cache each time) and takes
the best steady-state run of each. ``--n`` scales the workload. ``--rss-scan 2000,20000`` runs
fer_tf alone on the small workload at each size and prints its peak RSS (it must not grow with the
number of URLs). ``--profile`` runs fer_tf once more under cProfile: the main thread of the main
process (wall clock, top 25 cumulative entries: where it waits), its download threads and its pool
workers (CPU time per thread, ``time.thread_time``, merged, top 25 by own time), with the CPU split
main process / workers from rusage; the ``.prof`` files are kept (``fer_tf.prof*``).
``--baseline serial`` replaces img2dataset with the old serial-urllib baseline (Bartissol 2017's approach, timed on a subset).

Usage::

    python benchmarks/bench_build_records.py [--workload both] [--repeat 3] [--n N]
        [--latency 0.05] [--threads 64] [--workers 2] [--skip-img2dataset] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import json
import math
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CACHE = Path(os.environ.get("FER_TF_BENCH_CACHE", Path.home() / ".cache" / "fer_tf_bench"))
I2D_SPEC = "img2dataset==1.47.0"

#: name -> (default n, target shorter side, goal in steady state, description)
WORKLOADS: dict[str, dict[str, Any]] = {
    "web": {"n": 600, "target": 299, "goal": 1.5, "png_fraction": 0.05},
    "small": {"n": 2000, "target": 256, "goal": 1.2, "png_fraction": 0.0},
}

_FER_RUNNER = r"""
import json, os, resource, sys, threading, time
if __name__ == "__main__":
    out, prof = sys.argv[1], sys.argv[2]
    argv = sys.argv[3:]
    from fer_tf.cli.build_records import main
    if prof:
        import cProfile, multiprocessing.util, pstats

        class _Hook:  # register_after_fork keys on a weak reference
            pass

        hook, threads = _Hook(), []

        def _in_worker(_):
            # A forked pool worker: drop the parent thread's profiler, profile this process
            # and write its stats when multiprocessing shuts the worker down.
            sys.setprofile(None)
            threading.setprofile(None)
            p = cProfile.Profile(time.thread_time)  # CPU time: waits count for nothing
            def dump():
                p.disable()
                p.dump_stats(f"{prof}.worker-{os.getpid()}")
            multiprocessing.util.Finalize(hook, dump, exitpriority=100)
            p.enable()

        def _in_thread(frame, event, arg):
            p = cProfile.Profile(time.thread_time)  # one per new thread (downloads), CPU time
            threads.append(p)
            p.enable()

        multiprocessing.util.register_after_fork(hook, _in_worker)
        threading.setprofile(_in_thread)
        profiler = cProfile.Profile()
        rc = profiler.runcall(main, argv)
        threading.setprofile(None)
        profiler.dump_stats(prof)
        if threads:
            merged = pstats.Stats(threads[0])
            for p in threads[1:]:
                merged.add(p)
            merged.dump_stats(prof + ".threads")
    else:
        rc = main(argv)
    ru = {k: resource.getrusage(w) for k, w in
          (("self", resource.RUSAGE_SELF), ("children", resource.RUSAGE_CHILDREN))}
    with open(out, "w") as fh:
        json.dump({k: [u.ru_utime + u.ru_stime, u.ru_maxrss] for k, u in ru.items()}, fh)
    sys.exit(rc)
"""

_I2D_RUNNER = r"""
import json, resource, sys
if __name__ == "__main__":
    with open(sys.argv[1]) as fh:
        cfg = json.load(fh)
    from img2dataset import download
    download(**cfg["kwargs"])
    ru = {k: resource.getrusage(w) for k, w in
          (("self", resource.RUSAGE_SELF), ("children", resource.RUSAGE_CHILDREN))}
    with open(cfg["rusage"], "w") as fh:
        json.dump({k: [u.ru_utime + u.ru_stime, u.ru_maxrss] for k, u in ru.items()}, fh)
"""


# -- the workload and its server --------------------------------------------------------------


def make_mirror(workload: str, n: int, *, latency: float, seed: int, cache_dir: Path | None):
    """The (not yet started) mirror of a workload: see the module docstring.

    Args:
        workload: ``"web"`` or ``"small"``.
        n: number of images.
        latency: seconds per request.
        seed: workload seed (sizes, content, which images are PNG).
        cache_dir: where the generated images are kept between runs (None: no cache).

    Returns:
        A :class:`fer_tf.testing.mirror.Mirror`.
    """
    from fer_tf.checks import check_choice
    from fer_tf.testing.mirror import Mirror, uniform_sizes, web_photo_sizes

    check_choice("workload", workload, tuple(WORKLOADS))
    if workload == "web":
        sizes = web_photo_sizes(n, seed=seed)
    else:
        sizes = uniform_sizes(n, 280, 340, seed=seed)
    return Mirror(
        n,
        sizes=sizes,
        content="photo",
        png_fraction=WORKLOADS[workload]["png_fraction"],
        seed=seed,
        latency=latency,
        comma_every=0,
        cache_dir=cache_dir,
    )


def describe(mirror: Any) -> dict[str, Any]:
    """Sizes and bytes of a mirror's images (for the printout and the docs)."""
    sizes = [_image_size(it.body) for it in mirror.items]
    longs = sorted(max(s) for s in sizes)
    nbytes = [len(it.body) for it in mirror.items]
    jpeg = [
        (b, w * h) for b, (w, h), it in zip(nbytes, sizes, mirror.items) if it.variant == "jpeg"
    ]
    return {
        "n": len(sizes),
        "png": sum(it.variant == "png" for it in mirror.items),
        "long_min": longs[0] if longs else 0,
        "long_median": longs[len(longs) // 2] if longs else 0,
        "long_max": longs[-1] if longs else 0,
        "mean_kb": sum(nbytes) / max(1, len(nbytes)) / 1024,
        "jpeg_bpp": sum(b * 8 / px for b, px in jpeg) / max(1, len(jpeg)),
    }


def _image_size(body: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(body)) as im:
        return im.size


def _serve(conn: Any, workload: str, n: int, latency: float, seed: int, work: str) -> None:
    """Server process: build the mirror, write the URL lists, answer commands until "stop"."""
    t0 = time.monotonic()
    m = make_mirror(workload, n, latency=latency, seed=seed, cache_dir=CACHE / "workloads")
    setup = time.monotonic() - t0
    with m:
        m.write_spreadsheet(Path(work) / "urls.csv", layout="2020")
        (Path(work) / "urls.txt").write_text("".join(it.url + "\n" for it in m.items))
        conn.send({"urls": [it.url for it in m.items], "setup": setup, **describe(m)})
        while True:
            cmd = conn.recv()
            if cmd == "reset":
                m.reset_counts()
                conn.send(True)
            elif cmd == "stats":
                conn.send(
                    {
                        "first": m.first_request_at,
                        "last": m.last_request_at,
                        "requests": m.requests(),
                        "max_active": m.max_active,
                    }
                )
            else:
                break


class Server:
    """The workload's mirror in its own process (``with Server(...) as s``)."""

    def __init__(self, workload: str, n: int, latency: float, seed: int, work: Path) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.lock = threading.Lock()
        self.work = work
        self.proc = ctx.Process(
            target=_serve, args=(child, workload, n, latency, seed, str(work)), daemon=True
        )

    def __enter__(self) -> Server:
        self.proc.start()
        if not self.conn.poll(3600):
            raise RuntimeError("the mirror did not start within an hour")
        try:
            self.info: dict[str, Any] = self.conn.recv()
        except EOFError:
            raise RuntimeError("the mirror process failed (its traceback is above)") from None
        return self

    def ask(self, cmd: str) -> Any:
        with self.lock:  # the first-request watcher asks from its own thread
            self.conn.send(cmd)
            return self.conn.recv()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.conn.send("stop")
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.terminate()


# -- running a tool -----------------------------------------------------------------------------


@dataclass
class Run:
    """One run of one tool."""

    tool: str
    images: int = 0
    wall: float = 0.0
    steady: float = 0.0
    startup: float = 0.0
    cpu: float = 0.0
    cpu_main: float | None = None
    rss_main_mb: float | None = None  # the build process (fer_tf runs)
    rss_children_mb: float | None = None  # its largest worker
    cpu_steady: float | None = None
    rss_mb: float = 0.0
    max_active: int = 0
    requests: int = 0
    load: float = 0.0
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error

    def rate(self, steady: bool) -> float:
        t = self.steady if steady else self.wall
        return self.images / t if t > 0 else 0.0


_SUBREAPER = False


def _become_subreaper() -> None:
    """Orphaned descendants of a tool are re-parented here (Linux), so their CPU is counted.

    Only when run as a script: inside another program (the tests) its children are left alone.
    """
    global _SUBREAPER
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        _SUBREAPER = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER


def _reap_orphans(keep: set[int], timeout: float = 10.0) -> tuple[float, float]:
    """Wait for re-parented descendants to exit; returns their (CPU s, largest maxrss KB)."""
    cpu, rss = 0.0, 0.0
    deadline = time.monotonic() + timeout
    while _SUBREAPER:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if not _children(keep) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
            continue
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, usage.ru_maxrss)
    return cpu, rss


def _children(keep: set[int]) -> list[int]:
    me, out = os.getpid(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in keep:
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me:
            out.append(int(d.name))
    return out


def _tree_cpu(root: int) -> float:
    """CPU seconds so far of ``root`` and its live descendants, with what they have reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after "(comm)": state, ppid, ... utime, stime, cutime, cstime (stat fields 14-17)
        parent[int(d.name)] = int(fields[1])
        cpu[int(d.name)] = sum(int(x) for x in fields[11:15]) / tick
    tree, total = {root}, 0.0
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                changed = True
    for pid in tree:
        total += cpu.get(pid, 0.0)
    return total


def _watch_first_request(server: Server, pid: int, box: dict[str, float], done: Any) -> None:
    """Snapshot the tool's CPU when the server sees its first request (polled every 20 ms)."""
    while not done.is_set():
        if server.ask("stats")["first"] is not None:
            box["cpu_at_first"] = _tree_cpu(pid)
            return
        done.wait(0.02)


def _timed(cmd: list[str], env: dict[str, str], log: Path, server: Server) -> Run:
    """Run ``cmd`` against the server; fills wall/steady/CPU/RSS (images left to the caller)."""
    server.ask("reset")
    run = Run(tool="")
    box: dict[str, float] = {}
    done = threading.Event()
    t0 = time.monotonic()
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
        watch = threading.Thread(
            target=_watch_first_request, args=(server, proc.pid, box, done), daemon=True
        )
        watch.start()
        _, status, usage = os.wait4(proc.pid, 0)
    t_exit = time.monotonic()
    done.set()
    watch.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    orphan_cpu, orphan_rss = _reap_orphans({server.proc.pid})
    stats = server.ask("stats")
    run.wall = t_exit - t0
    first = stats["first"]
    run.startup = (first - t0) if first is not None else float("nan")
    run.steady = (t_exit - first) if first is not None else 0.0
    run.cpu = usage.ru_utime + usage.ru_stime + orphan_cpu
    run.cpu_steady = run.cpu - box["cpu_at_first"] if "cpu_at_first" in box else None
    run.rss_mb = max(usage.ru_maxrss, orphan_rss) / 1024
    run.max_active, run.requests = stats["max_active"], stats["requests"]
    run.load = os.getloadavg()[0]
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        run.error = f"exit status {proc.returncode}; log {log}:\n{tail}"
    return run


def _split(run: Run, rusage_file: Path) -> None:
    """Main-process CPU from the runner's own getrusage (the rest is workers/threads' processes)."""
    if rusage_file.exists():
        ru = json.loads(rusage_file.read_text())
        run.cpu_main = ru["self"][0]
        run.rss_main_mb, run.rss_children_mb = ru["self"][1] / 1024, ru["children"][1] / 1024


def run_fer_tf(
    work: Path, server: Server, target: int, args: argparse.Namespace, profile: Path | None = None
) -> Run:
    """One ``fer-tf-build-records`` run (fresh output and cache) against the server."""
    work.mkdir(parents=True, exist_ok=True)
    argv = [
        "--spreadsheet",
        str(server.work / "urls.csv"),
        "--output-dir",
        str(work / "out"),
        "--cache-dir",
        str(work / "cache"),
        "--image-size",
        str(target),
        "--jpeg-quality",
        "95",
        "--allow-private-hosts",
        "--concurrency",
        str(args.threads),
        "--per-host",
        str(args.threads),
        "--workers",
        str(args.workers),
        "--num-shards",
        "4",
        "--no-progress",
        "--summary-json",
        str(work / "summary.json"),
    ]
    runner = work / "fer_runner.py"
    runner.write_text(_FER_RUNNER)
    rusage = work / "rusage.json"
    cmd = [sys.executable, str(runner), str(rusage), str(profile or ""), *argv]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    run = _timed(cmd, env, work / "fer_tf.log", server)
    run.tool = "fer_tf"
    _split(run, rusage)
    if run.ok:
        summary = json.loads((work / "summary.json").read_text())
        run.images = int(summary["written"])
        run.extra = {"failed": summary["failed"], "timings": summary.get("timings", {})}
        if summary["failed"] or run.images != len(server.info["urls"]):
            run.error = (
                f"fer_tf wrote {run.images} of {len(server.info['urls'])} images "
                f"(failed {summary['failed']}: {summary.get('failures')})"
            )
    return run


def run_img2dataset(
    work: Path, server: Server, target: int, python: str, args: argparse.Namespace
) -> Run:
    """One img2dataset run (fresh output) against the server, settings as in the docstring."""
    work.mkdir(parents=True, exist_ok=True)
    n = len(server.info["urls"])
    threads = args.i2d_thread_count or max(1, args.threads // args.workers)
    kwargs = {
        "url_list": str(server.work / "urls.txt"),
        "input_format": "txt",
        "output_folder": str(work / "out"),
        "output_format": "webdataset",
        "image_size": target,
        "resize_mode": "keep_ratio",
        "resize_only_if_bigger": True,
        "downscale_interpolation": "area",
        "encode_format": "jpg",
        "encode_quality": 95,
        "skip_reencode": True,
        "processes_count": args.workers,
        "thread_count": threads,
        "number_sample_per_shard": max(1, math.ceil(n / 4)),
        "enable_wandb": False,
        "retries": 0,
        "timeout": 10,
    }
    cfg = work / "i2d.json"
    cfg.write_text(json.dumps({"kwargs": kwargs, "rusage": str(work / "rusage.json")}))
    runner = work / "i2d_runner.py"
    runner.write_text(_I2D_RUNNER)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "WANDB_MODE": "disabled",
    }
    run = _timed([python, str(runner), str(cfg)], env, work / "img2dataset.log", server)
    run.tool = "img2dataset"
    run.extra = {"thread_count": threads}
    _split(run, work / "rusage.json")
    if run.ok:
        successes, in_tars = _i2d_written(work / "out")
        run.images = in_tars
        if successes != n or in_tars != n:
            run.error = (
                f"img2dataset wrote {in_tars} images in its tars, its stats say {successes} "
                f"successes, of {n} (log {work / 'img2dataset.log'})"
            )
    return run


def _i2d_written(out: Path) -> tuple[int, int]:
    """(successes in img2dataset's ``*_stats.json``, ``.jpg`` members in its tars)."""
    successes = sum(json.loads(p.read_text())["successes"] for p in out.glob("*_stats.json"))
    in_tars = 0
    for tar in out.glob("*.tar"):
        with tarfile.open(tar) as tf:
            in_tars += sum(1 for m in tf.getmembers() if m.name.endswith(".jpg"))
    return successes, in_tars


def _serial_baseline(urls: list[str], out: Path) -> tuple[float, float]:
    """Bartissol 2017's approach: one urllib request at a time, decode, re-encode, write.

    Returns:
        (wall seconds, CPU seconds).
    """
    import urllib.request

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from PIL import Image

    from fer_tf.records import ExampleRecord, encode_example

    out.mkdir(parents=True, exist_ok=True)
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


# -- img2dataset's environment ------------------------------------------------------------------


def img2dataset_python(args: argparse.Namespace) -> tuple[str | None, str]:
    """The interpreter that has img2dataset, installing it on first use.

    Returns:
        (python path or None, a line saying which version, or why there is none).
    """
    probe = "import importlib.metadata as m; print(m.version('img2dataset'))"
    if args.img2dataset_python:
        py = args.img2dataset_python
    else:
        venv = CACHE / "img2dataset-venv"
        py = str(venv / "bin" / "python")
        if not _probe(py, probe):
            print(f"installing {I2D_SPEC} into {venv} (first use) ...", flush=True)
            err = _install(venv)
            if err:
                return None, f"img2dataset could not be installed: {err}"
    version = _probe(py, probe)
    if not version:
        return None, f"img2dataset is not importable with {py}"
    return py, f"img2dataset {version} ({py})"


def _probe(py: str, code: str) -> str:
    if not Path(py).exists():
        return ""
    res = subprocess.run([py, "-c", code], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else ""


def _install(venv: Path) -> str:
    """Create the venv and pip-install img2dataset; returns '' or why it failed."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    log = venv.parent / "img2dataset-install.log"
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", "--clear", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", I2D_SPEC],
    ]
    with log.open("w") as fh:
        for cmd in steps:
            res = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
            if res.returncode != 0:
                lines = [
                    ln for ln in log.read_text(errors="replace").splitlines() if "WARNING" not in ln
                ]
                return f"{' '.join(cmd[-3:])} failed ({log}): " + " | ".join(lines[-5:])
    return ""


# -- printing -----------------------------------------------------------------------------------


def _line(r: Run, label: str) -> str:
    if not r.ok:
        return f"  {label:<16} FAILED: {r.error}"
    per = 1000 / max(1, r.images)
    parts = []
    if r.cpu_steady is not None:
        parts.append(f"steady {r.cpu_steady * per:.2f}")
    if r.cpu_main is not None:
        parts.append(f"main {r.cpu_main * per:.2f} + rest {(r.cpu - r.cpu_main) * per:.2f}")
    main = f" ({'; '.join(parts)})" if parts else ""
    return (
        f"  {label:<16} {r.images:>6} img  end to end {r.wall:6.2f}s = {r.rate(False):6.1f} img/s"
        f"  start-up {r.startup:5.2f}s  steady {r.steady:6.2f}s = {r.rate(True):6.1f} img/s"
        f"  CPU {r.cpu * per:6.2f} ms/img{main}  peak RSS {r.rss_mb:5.0f} MB"
        f"  in flight <= {r.max_active}  load {r.load:.1f}{_probe_text(r)}"
    )


def _probe_text(r: Run) -> str:
    us = r.extra.get("create_us")
    return "" if us is None else f"  file create {us:.0f} us"


def _best(runs: list[Run]) -> Run | None:
    ok = [r for r in runs if r.ok]
    return max(ok, key=lambda r: r.rate(True)) if ok else None


def bench_workload(
    name: str, args: argparse.Namespace, i2d: str | None, tmp: Path, outputs: list[Path]
) -> dict[str, Any]:
    """Run one workload: img2dataset and fer_tf, ``--repeat`` times each; print; return figures.

    The runs' outputs are appended to ``outputs`` (deleted by the caller after every workload).
    """
    spec = WORKLOADS[name]
    n = args.n or spec["n"]
    work = tmp / name
    work.mkdir(parents=True, exist_ok=True)
    with Server(name, n, args.latency, args.seed, work) as server:
        d = server.info
        print(
            f"\n== workload {name}: {d['n']} photo-like images ({d['png']} PNG), long side "
            f"{d['long_min']}-{d['long_max']} px (median {d['long_median']}), mean file "
            f"{d['mean_kb']:.0f} KB, JPEGs {d['jpeg_bpp']:.2f} bits/pixel -> shorter side "
            f"{spec['target']}; server: {args.latency * 1000:.0f} ms per request, own process "
            f"(ready in {d['setup']:.1f}s)",
            flush=True,
        )
        fer_runs: list[Run] = []
        base_runs: list[Run] = []
        for k in range(max(1, args.repeat)):
            if i2d is not None and args.baseline == "img2dataset":
                _settle_disk()
                us = _file_create_us(work / f"i2d{k}")
                r = run_img2dataset(work / f"i2d{k}", server, spec["target"], i2d, args)
                r.extra["create_us"] = us
                base_runs.append(r)
                print(_line(r, f"img2dataset #{k + 1}"), flush=True)
            _settle_disk()
            us = _file_create_us(work / f"fer{k}")
            r = run_fer_tf(work / f"fer{k}", server, spec["target"], args)
            r.extra["create_us"] = us
            fer_runs.append(r)
            print(_line(r, f"fer_tf #{k + 1}"), flush=True)
            if r.ok:
                phases = ", ".join(f"{a} {b:.2f}s" for a, b in r.extra["timings"].items())
                print(f"  {'':<16} fer_tf phases: {phases}", flush=True)
        result = _summarise(name, spec, fer_runs, base_runs, args)
        if not args.keep:
            outputs.extend(
                sub
                for k in range(max(1, args.repeat))
                for sub in (
                    work / f"i2d{k}" / "out",
                    work / f"fer{k}" / "out",
                    work / f"fer{k}" / "cache",
                )
            )
        if args.profile:
            _profile(work, server, spec["target"], args)
        if args.baseline == "serial" and result["fer_tf"] is not None:
            _serial(server, result["fer_tf"], args)  # last: it imports TensorFlow here
    return result


def _summarise(
    name: str,
    spec: dict[str, Any],
    fer_runs: list[Run],
    base_runs: list[Run],
    args: argparse.Namespace,
) -> dict[str, Any]:
    fer, base = _best(fer_runs), _best(base_runs)
    out: dict[str, Any] = {"workload": name, "fer_tf": fer, "img2dataset": base}
    if fer is not None:
        print(_line(fer, "fer_tf best"))
    if base is not None:
        print(_line(base, "img2dataset best"))
    if fer is not None and base is not None:
        e2e = fer.rate(False) / base.rate(False)
        steady = fer.rate(True) / base.rate(True)
        cpu = base.cpu / max(1, base.images) / (fer.cpu / max(1, fer.images))
        out.update(e2e=e2e, steady=steady)
        print(
            f"  ratio fer_tf/img2dataset ({name}): end to end {e2e:.2f}x, steady state "
            f"{steady:.2f}x (goal >= {spec['goal']}x steady on 2 cores); CPU per image, "
            f"img2dataset/fer_tf: {cpu:.2f}x all in",
            end="",
        )
        if fer.cpu_steady and base.cpu_steady:
            out["cpu_steady"] = (base.cpu_steady / base.images) / (fer.cpu_steady / fer.images)
            print(
                f", {out['cpu_steady']:.2f}x in steady state (what the steady-state ratio tends "
                "to when both are CPU-bound; hardly depends on load)"
            )
        else:
            print()
        _print_pairs(fer_runs, base_runs)
    _warn_slow_files(fer_runs + base_runs)
    return out


def _print_pairs(fer_runs: list[Run], base_runs: list[Run]) -> None:
    """Each fer_tf run against the img2dataset run just before it (steady state): the spread."""
    pairs = [
        f.rate(True) / b.rate(True)
        for f, b in zip(fer_runs, base_runs, strict=False)
        if f.ok and b.ok and b.rate(True) > 0
    ]
    if len(pairs) > 1:
        print(
            f"  pairwise steady-state ratios (run k of each): "
            f"{', '.join(f'{p:.2f}' for p in pairs)}; median {statistics.median(pairs):.2f}x"
        )


def _warn_slow_files(runs: list[Run]) -> None:
    probes = [r.extra["create_us"] for r in runs if r.extra.get("create_us") is not None]
    if probes and max(probes) > SLOW_CREATE_US:
        print(
            f"  note: creating a file in the work folder cost up to {max(probes):.0f} us of CPU "
            f"(median {statistics.median(probes):.0f} us; a fresh spot on this disk: ~10 us). "
            "fer_tf stores two files per image, img2dataset a few per shard, so part of fer_tf's "
            "figure is the file system (see _file_create_us); --tmp on another folder or a tmpfs "
            "shows the tools' own cost"
        )


def _serial(server: Server, fer: Run, args: argparse.Namespace) -> None:
    urls = server.info["urls"]
    sub = urls[: max(1, min(args.baseline_n, len(urls)))]
    server.ask("reset")
    base_s, base_cpu = _serial_baseline(sub, server.work / "serial")
    rate = len(sub) / base_s
    print(
        f"  serial urllib   {len(sub)} images in {base_s:.1f}s = {rate:.1f} img/s, CPU "
        f"{base_cpu / len(sub) * 1000:.2f} ms/img (a subset; the rate extrapolates); "
        f"fer_tf end to end {fer.rate(False) / rate:.1f}x"
    )


def _profile(work: Path, server: Server, target: int, args: argparse.Namespace) -> None:
    """One more fer_tf run, profiled: main thread, download threads and pool workers apart."""
    import pstats

    prof = work / "fer_tf.prof"
    r = run_fer_tf(work / "fer_profile", server, target, args, profile=prof)
    print(_line(r, "fer_tf profiled"))
    if not r.ok or not prof.exists():
        return
    rest = r.cpu - (r.cpu_main or 0.0)
    per = 1000 / max(1, r.images)
    print(
        f"  profile (cProfile slows Python code; CPU figures from rusage): main process "
        f"{r.cpu_main or 0.0:.2f}s = {(r.cpu_main or 0.0) * per:.2f} ms/img (main thread and "
        f"download threads), pool workers {rest:.2f}s = {rest * per:.2f} ms/img; {prof}*"
    )
    print("\n  -- main thread, top 25 by cumulative time (waits included) --")
    pstats.Stats(str(prof), stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    threads = Path(f"{prof}.threads")
    if threads.exists():
        print("  -- download and pool-manager threads of the main process, top 25 by own CPU --")
        pstats.Stats(str(threads), stream=sys.stdout).sort_stats("tottime").print_stats(25)
    workers = sorted(work.glob("fer_tf.prof.worker-*"))
    if workers:
        print(f"  -- {len(workers)} pool workers merged, top 25 by own CPU time --")
        stats = pstats.Stats(*map(str, workers), stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(25)


def _settle_disk(pause: float = 2.0) -> None:
    """Write back what earlier runs left dirty and let the writeback threads finish, so a timed
    run does not pay for the one before it (either tool's)."""
    os.sync()
    time.sleep(pause)


def _file_create_us(folder: Path, n: int = 200) -> float:
    """CPU microseconds per empty file created in ``folder`` (a run's own, made here).

    fer_tf stores two files per image (the original and the processed JPEG), img2dataset a few
    per shard, so a slow file system weighs on fer_tf alone. On ext4 without a journal (this
    machine's) the inode allocator steps over every recently deleted inode of the directory's
    block group (``recently_deleted`` in ``fs/ext4/ialloc.c``): 8-15 us per file in a fresh
    spot, 70-420 us measured in a folder whose group saw thousands of deletions.
    """
    probe = folder / "fsprobe"
    probe.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    start = time.thread_time()
    for i in range(n):
        os.close(os.open(probe / f"{i}", flags, 0o644))
    return (time.thread_time() - start) * 1e6 / n


#: Above this (us per file created) the summary warns that the file system, not the tools, is
#: being measured in part.
SLOW_CREATE_US = 50.0


def rss_scan(args: argparse.Namespace, tmp: Path) -> int:
    """fer_tf alone on the small workload at each size: does its peak RSS grow with N?"""
    sizes = [int(s) for s in args.rss_scan.split(",") if s.strip()]
    rows = []
    for n in sizes:
        work = tmp / f"rss{n}"
        work.mkdir(parents=True, exist_ok=True)
        with Server("small", n, args.latency, args.seed, work) as server:
            r = run_fer_tf(work / "fer", server, WORKLOADS["small"]["target"], args)
            print(_line(r, f"fer_tf n={n}"), flush=True)
            rows.append((n, r))
            shutil.rmtree(work / "fer", ignore_errors=True)
    ok = [(n, r) for n, r in rows if r.ok]
    pairs = list(zip(ok, ok[1:]))
    if len(ok) > 2:
        pairs.append((ok[0], ok[-1]))
    for (n0, r0), (n1, r1) in pairs:
        print(
            f"peak RSS: {r0.rss_mb:.0f} MB at {n0} URLs, {r1.rss_mb:.0f} MB at {n1} URLs "
            f"({(r1.rss_mb - r0.rss_mb) / (n1 - n0) * 1000:.1f} MB per 1,000 more URLs)"
        )
        if r0.rss_main_mb is not None and r1.rss_main_mb is not None:
            print(
                f"build process peak RSS: {r0.rss_main_mb:.1f} MB at {n0} URLs, "
                f"{r1.rss_main_mb:.1f} MB at {n1} URLs "
                f"({(r1.rss_main_mb - r0.rss_main_mb) / (n1 - n0) * 1e6:.0f} bytes per URL); "
                f"largest worker {r0.rss_children_mb:.1f} and {r1.rss_children_mb:.1f} MB "
                f"({(r1.rss_children_mb - r0.rss_children_mb) / (n1 - n0) * 1e6:.0f} bytes per URL)"
            )
    return 0 if len(ok) == len(rows) else 1


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=("web", "small", "both"), default="both")
    ap.add_argument("--n", type=int, default=0, help="images (default: 600 web, 2000 small)")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per request (0.05)")
    ap.add_argument("--threads", type=int, default=64, help="downloads in flight (64)")
    ap.add_argument("--workers", type=int, default=2, help="processes of each tool (2)")
    ap.add_argument(
        "--i2d-thread-count",
        type=int,
        default=0,
        help="img2dataset thread_count per process (default: threads / workers)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool, best taken (1)")
    ap.add_argument("--seed", type=int, default=0, help="workload seed (0)")
    ap.add_argument("--baseline", choices=("img2dataset", "serial"), default="img2dataset")
    ap.add_argument("--baseline-n", type=int, default=200, help="serial baseline subset (200)")
    ap.add_argument("--img2dataset-python", default="", help="a python that has img2dataset")
    ap.add_argument("--skip-img2dataset", action="store_true", help="fer_tf side only")
    ap.add_argument("--profile", action="store_true", help="one more fer_tf run under cProfile")
    ap.add_argument(
        "--rss-scan", default="", metavar="N1,N2", help="fer_tf peak RSS at these sizes only"
    )
    ap.add_argument("--keep", action="store_true", help="keep every run's output")
    ap.add_argument("--tmp", default="", help="work folder (default: a new temporary one)")
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    args = build_parser().parse_args(argv)
    for name in ("n", "repeat", "threads", "workers", "baseline_n", "i2d_thread_count"):
        if getattr(args, name) < 0:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 0")
    tmp = Path(args.tmp) if args.tmp else Path(tempfile.mkdtemp(prefix="bench_build_records_"))
    tmp.mkdir(parents=True, exist_ok=True)
    # A child inherits its launcher's RSS high-water mark at exec (the kernel records the old
    # address space's), so a peak RSS below this process's own means nothing.
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"machine: {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f} "
        f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; python {sys.version.split()[0]}; "
        f"work {tmp}; peak RSS floor (this process) {floor:.0f} MB"
    )
    if args.rss_scan:
        return rss_scan(args, tmp)
    i2d = None
    if args.baseline == "img2dataset" and not args.skip_img2dataset:
        i2d, line = img2dataset_python(args)
        print(line)
    print(
        f"both tools: {args.workers} processes, {args.threads} downloads in flight, no per-host "
        f"limit below that, JPEG quality 95, shorter side downscaled to the target"
    )
    names = ("web", "small") if args.workload == "both" else (args.workload,)
    # Outputs go only after the last timed run of every workload: deleting thousands of files
    # between runs made every later fer_tf run slower (small JPEGs, fer_tf alone, 4 runs: 613,
    # 570, 511, 475 img/s with deletes in between; 537, 611, 614, 590 without), which measured
    # the file system's clean-up (see _file_create_us), not the tools.
    outputs: list[Path] = []
    results = [bench_workload(name, args, i2d, tmp, outputs) for name in names]
    for sub in outputs:
        shutil.rmtree(sub, ignore_errors=True)
    failed = any(r["fer_tf"] is None for r in results)
    if sum("steady" in r for r in results) > 1:
        print("\nsummary (best runs, steady state = images / (first request -> exit)):")
        for r in results:
            if "steady" in r:
                print(
                    f"  {r['workload']:<6} end to end {r['e2e']:.2f}x, steady state "
                    f"{r['steady']:.2f}x (goal {WORKLOADS[r['workload']]['goal']}x), steady-state "
                    f"CPU per image {r.get('cpu_steady', float('nan')):.2f}x"
                )
    print(f"load at the end {os.getloadavg()[0]:.2f}; files {tmp}")
    return 1 if failed else 0


if __name__ == "__main__":
    _become_subreaper()
    sys.exit(main())
