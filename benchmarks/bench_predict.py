"""Benchmark: ``fer_tf.Predictor`` images/s on a folder of SynthFACS images (and video frames/s).

Trains a tiny one-epoch run on SynthFACS (or uses ``--run``), writes ``--n`` SynthFACS PNGs
(default 100, 128 px) and a video, then times ``Predictor.predict`` end to end (decode, detect,
crop/align, model) for each detector and batch size, after one warm-up call. The comparison with
the ``fer`` package asked by issue 12 section 5 is not here yet.

Usage::

    python benchmarks/bench_predict.py [--n 100] [--batch-sizes 1 32] [--detectors none mtcnn]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def _setup(tmp: Path, n: int, run: str | None) -> tuple[Path, Path, Path]:
    import cv2
    from PIL import Image

    from fer_tf.cli.train import main as train
    from fer_tf.synthfacs import sample, write_records

    folder = tmp / "images"
    folder.mkdir()
    faces = list(sample(n, seed=7, size=128))
    for i, f in enumerate(faces):
        Image.fromarray(f.image).save(folder / f"{i:04d}.png")
    video = tmp / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (128, 128))
    for f in faces:
        w.write(cv2.cvtColor(f.image, cv2.COLOR_RGB2BGR))
    w.release()
    if run is None:
        write_records(tmp / "records", 48, seed=1, size=64, num_shards=1)
        argv = ["--config", "demo_au", "--records", str(tmp / "records"), "--quiet"]
        argv += ["--set", "model.name=tiny_cnn", "--set", "data.image_size=32"]
        argv += ["--set", "train.epochs=1", "--model-dir", str(tmp / "run")]
        assert train(argv) == 0
        run = str(tmp / "run")
    return folder, video, Path(run)


def main() -> None:
    """Run the benchmark and print one line per configuration."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--run", help="an existing run directory (default: train a tiny one)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--detectors", nargs="+", default=["none", "mtcnn"])
    args = ap.parse_args()
    from fer_tf.cli._quiet import import_tensorflow

    import_tensorflow()
    from fer_tf.inference.predictor import Predictor

    with tempfile.TemporaryDirectory() as d:
        folder, video, run = _setup(Path(d), args.n, args.run)
        for det in args.detectors:
            for bs in args.batch_sizes:
                p = Predictor.from_run(run, detector=det, batch_size=bs)
                p.predict([next(folder.iterdir())])  # warm-up: traces, MTCNN weights
                t = time.perf_counter()
                df = p.predict([folder])
                dt = time.perf_counter() - t
                faces = int((df["face"] >= 0).sum())
                t = time.perf_counter()
                dv = p.predict([video])
                dtv = time.perf_counter() - t
                assert (dv["error"] == "").all() and len(dv) >= args.n, "the video was not read"
                print(
                    f"detector={det:5s} batch={bs:3d}: {args.n / dt:7.1f} images/s "
                    f"({faces}/{args.n} with a face) | video {len(dv) / dtv:7.1f} frames/s"
                )


if __name__ == "__main__":
    main()
