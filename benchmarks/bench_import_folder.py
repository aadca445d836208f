"""Benchmark: importing a local image folder with ``fer-tf-build-records --source folder``.

N SynthFACS faces (default 5,000 at 256 px, JPEG quality 95) are written once as a
``root/<emotion>/<n>.jpg`` tree in a temporary folder that is kept between runs
(``--data-dir``). Both sides go from that folder to TFRecords with the same image work (decode,
resize the shorter side to ``--image-size``, JPEG-encode at quality 95):

- fer_tf: the ``fer-tf-build-records --source folder`` CLI in a subprocess, fresh output and cache,
  timed end to end (interpreter start and the process pool included; it never imports TensorFlow);
  its peak RSS comes from ``resource.getrusage`` inside that subprocess: the main process
  (``RUSAGE_SELF``) and the largest worker (``RUSAGE_CHILDREN``);
- baseline: a plain loop in one process: read the bytes, ``tf.image.decode_jpeg``,
  ``tf.image.resize`` (area-preserving, antialiased), ``tf.io.encode_jpeg``, one
  ``tf.io.TFRecordWriter`` (TensorFlow imported before timing starts), run in its own subprocess
  too so its RSS is measured the same way.

Prints images/s for both, the ratio (of the best of ``--repeat`` runs each: on a shared machine
single runs vary by 2x) and the peak RSS. Memory must not grow with N (the build streams:
only a small label record per image is kept); compare ``--n 5000`` with ``--n 50000
--baseline-n 0`` (the 50,000-image folder takes a few minutes to render the first time).

Usage::

    python benchmarks/bench_import_folder.py [--n 5000] [--size 256] [--image-size 128]
        [--workers N] [--baseline-n N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_folder(root: Path, n: int, size: int) -> Path:
    """Render ``n`` SynthFACS faces into ``root/<emotion>/<i>.jpg`` (reused when complete)."""
    done = root / ".complete"
    if done.exists() and done.read_text() == f"{n} {size}":
        return root
    import cv2

    from fer_tf.synthfacs import sample

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.perf_counter()
    for face in sample(n, seed=17, size=size):  # an iterator: one face in memory at a time
        folder = root / face.emotion_name
        folder.mkdir(exist_ok=True)
        bgr = cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(folder / f"{face.index:06d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    done.write_text(f"{n} {size}")
    print(f"rendered {n} faces at {size} px in {time.perf_counter() - t0:.1f} s -> {root}")
    return root


_FER_TF = """
import json, resource, sys, time
from fer_tf.cli.build_records import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
wall = time.perf_counter() - t0
self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("BENCH", json.dumps({"rc": rc, "wall": wall, "self_mb": self_kb / 1024,
      "child_mb": child_kb / 1024, "tf": "tensorflow" in sys.modules}))
"""

_BASELINE = """
import json, os, resource, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf
root, out, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
files = sorted(str(p) for p in __import__("pathlib").Path(root).rglob("*.jpg"))[:n]
def feature(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))
def ints(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
t0 = time.perf_counter()
with tf.io.TFRecordWriter(out) as writer:
    for path in files:
        image = tf.image.decode_jpeg(tf.io.read_file(path), channels=3)
        h, w = int(image.shape[0]), int(image.shape[1])
        scale = size / min(h, w)
        if scale < 1:
            image = tf.image.resize(image, (round(h * scale), round(w * scale)), antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        jpeg = tf.io.encode_jpeg(image, quality=95).numpy()
        ex = tf.train.Example(features=tf.train.Features(feature={
            "image/encoded": feature(jpeg), "image/source": feature(path.encode()),
            "image/height": ints(int(image.shape[0])), "image/width": ints(int(image.shape[1]))}))
        writer.write(ex.SerializeToString())
wall = time.perf_counter() - t0
print("BENCH", json.dumps({"n": len(files), "wall": wall,
      "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _bench_line(stdout: str) -> dict:
    for line in stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[6:])
    raise RuntimeError("no BENCH line in:\n" + stdout[-2000:])


def run_fer_tf(root: Path, work: Path, args: argparse.Namespace) -> dict:
    """One CLI run in a subprocess (fresh output and cache)."""
    out = work / "fer_tf_out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-c", _FER_TF, "--source", "folder", "--input", str(root)]
    cmd += ["--output-dir", str(out), "--image-size", str(args.image_size), "--no-progress"]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    total = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stdout[-3000:] + r.stderr[-3000:])
    res = _bench_line(r.stdout)
    written = json.loads((out / "manifest.json").read_text())["counts"]["written"]
    res.update(total=total, written=written)
    shutil.rmtree(out, ignore_errors=True)
    return res


def run_baseline(root: Path, work: Path, n: int, image_size: int) -> dict:
    """The plain ``tf.io.TFRecordWriter`` loop in its own subprocess."""
    out = work / "baseline.tfrecord"
    cmd = [sys.executable, "-c", _BASELINE, str(root), str(out), str(n), str(image_size)]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(r.stdout[-3000:] + r.stderr[-3000:])
    out.unlink(missing_ok=True)
    return _bench_line(r.stdout)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the comparison."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=5000, help="images in the folder (default 5000)")
    p.add_argument("--size", type=int, default=256, help="rendered side in px (default 256)")
    p.add_argument("--image-size", type=int, default=128, help="shorter side stored (default 128)")
    p.add_argument("--workers", type=int, help="fer_tf worker processes (default: CPU count)")
    p.add_argument(
        "--baseline-n", type=int, help="images for the baseline (default: all; 0 skips it)"
    )
    p.add_argument("--data-dir", help="where the folder is rendered and kept (default: temp)")
    p.add_argument(
        "--repeat", type=int, default=1, help="runs of each side; the best is compared (default 1)"
    )
    args = p.parse_args(argv)
    default_dir = Path(tempfile.gettempdir()) / f"fer_tf_bench_folder_{args.n}_{args.size}"
    root = make_folder(Path(args.data_dir) if args.data_dir else default_dir, args.n, args.size)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; {args.n} JPEGs at "
          f"{args.size} px -> records at {args.image_size} px (decode, resize, encode q95)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fer_tf_bench_") as tmp:
        work = Path(tmp)
        rates = []
        for _ in range(max(1, args.repeat)):
            ours = run_fer_tf(root, work, args)
            rates.append(ours["written"] / ours["total"])
            print(
                f"fer_tf (--source folder): {ours['written']} images in {ours['total']:.1f} s "
                f"(process start included) = {rates[-1]:.0f} img/s; peak RSS main "
                f"{ours['self_mb']:.0f} MB, largest worker {ours['child_mb']:.0f} MB; "
                f"TensorFlow imported: {ours['tf']}"
            )
        n_base = args.n if args.baseline_n is None else args.baseline_n
        if n_base <= 0:
            return 0
        brates = []
        for _ in range(max(1, args.repeat)):
            base = run_baseline(root, work, n_base, args.image_size)
            brates.append(base["n"] / base["wall"])
            print(
                f"baseline (tf.image loop + tf.io.TFRecordWriter): {base['n']} images in "
                f"{base['wall']:.1f} s (TensorFlow import excluded) = {brates[-1]:.0f} img/s; "
                f"peak RSS {base['self_mb']:.0f} MB"
            )
        best, bbest = max(rates), max(brates)
        print(f"best: fer_tf {best:.0f} img/s, baseline {bbest:.0f} img/s")
        print(f"ratio fer_tf / baseline: {best / bbest:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
