"""Benchmark: ``fer_tf.Predictor`` against the ``fer`` package, images/s and video frames/s.

Issue 12 section 5. Writes a folder of ``--n`` SynthFACS faces (128 px PNG) plus ``--photos``
crops of a real photograph (scikit-image's astronaut, 256 px), and an MJPG video of the SynthFACS
faces; trains a one-epoch 7-emotion ``tiny_cnn`` on 64 px grey faces (or uses ``--run``); then,
on the same files:

- fer_tf: ``Predictor.predict`` end to end (decode, detect, crop, model) per detector and batch
  size, after one warm-up call;
- a profile of fer_tf's time per stage (decode, detect, crop/align, model) on the folder;
- the ``fer`` package: ``FER(mtcnn=True).detect_emotions`` on each image and on each video
  frame (decoded with OpenCV, as ``fer.Video`` does), in its own virtual environment (``fer``
  pulls TensorFlow and, through facenet-pytorch, PyTorch; it is not a dependency of fer_tf). The
  environment is made once under ``--fer-venv`` (default ``~/.cache/fer_tf_bench/fer-venv``).

Models: fer's emotion CNN (``emotion_model.hdf5``, run as its quantised TFLite copy by default)
has 58,423 parameters on 64x64 grey faces; fer_tf's ``tiny_cnn`` on the same input has 23,975.

Usage::

    python benchmarks/bench_predict.py [--n 100] [--photos 10] [--batch-sizes 1 32]
        [--detectors none mtcnn] [--tf-threads N] [--no-fer] [--fer-venv DIR]
        [--fer-threads 0 1]

fer runs once per ``--fer-threads`` value: on a busy machine torch's default (one OpenMP thread per
core) can be many times slower than one thread, so both are measured and the ratio is taken
against the faster.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FER_VENV = Path.home() / ".cache" / "fer_tf_bench" / "fer-venv"
#: Installed in this order into the fer venv. torch 2.14.1 and torchvision 0.29.1 are what pip
#: finds on this machine's disk for Python 3.11 (torchvision from the registry fails to import
#: next to other torch builds); facenet-pytorch 2.6.0 pins torch<2.3 and numpy<2, and fer pins
#: nothing, so both go in without their dependencies and those are installed by name after.
FER_INSTALL = (
    ["setuptools<81", "torch==2.14.1", "torchvision==0.29.1"],  # fer imports pkg_resources
    ["--no-deps", "facenet-pytorch==2.6.0", "fer==25.10.3"],
    ["tensorflow", "opencv-contrib-python", "pandas", "requests", "tqdm", "Pillow"]
    + ["matplotlib", "moviepy>=1.0.3,<2", "ffmpeg-python"],
)

# Run by the fer venv's Python: argv = folder, video, output JSON, torch threads (0: default).
FER_SCRIPT = r"""
import json, sys, time
import torch, torchvision.ops, facenet_pytorch  # before TensorFlow: the other order segfaults
import cv2
from pathlib import Path
if int(sys.argv[4]):
    torch.set_num_threads(int(sys.argv[4]))
t0 = time.perf_counter()
from fer.fer import FER
detector = FER(mtcnn=True)
load_s = time.perf_counter() - t0
files = sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_file())
detector.detect_emotions(cv2.imread(str(files[0])))  # warm-up
t = time.perf_counter()
faces = 0
for p in files:
    faces += bool(detector.detect_emotions(cv2.imread(str(p))))
folder_s = time.perf_counter() - t
cap = cv2.VideoCapture(sys.argv[2])
t = time.perf_counter()
frames = vfaces = 0
while True:
    ok, frame = cap.read()
    if not ok:
        break
    frames += 1
    vfaces += bool(detector.detect_emotions(frame))
video_s = time.perf_counter() - t
import fer
out = dict(version=fer.__version__, torch=torch.__version__, load_s=load_s, images=len(files),
           threads=torch.get_num_threads(),
           folder_s=folder_s, faces=faces, frames=frames, video_s=video_s, video_faces=vfaces)
Path(sys.argv[3]).write_text(json.dumps(out))
"""


def _images(folder: Path, n: int, photos: int) -> list:
    """Write ``n`` SynthFACS PNGs and ``photos`` astronaut crops; return the SynthFACS frames."""
    import numpy as np
    from PIL import Image
    from skimage import data

    from fer_tf.synthfacs import sample

    folder.mkdir()
    faces = [f.image for f in sample(n, seed=7, size=128)]
    for i, f in enumerate(faces):
        Image.fromarray(f).save(folder / f"synth_{i:04d}.png")
    astronaut = data.astronaut()
    rng = np.random.default_rng(0)
    for i in range(photos):
        side = int(rng.integers(320, 449))
        y, x = int(rng.integers(0, 512 - side + 1)), int(rng.integers(0, 512 - side + 1))
        y, x = min(y, 40), min(x, 150)  # keep the face (about x 180-270, y 60-170) inside
        crop = Image.fromarray(astronaut[y : y + side, x : x + side]).resize((256, 256))
        crop.save(folder / f"photo_{i:02d}.png")
    return faces


def _setup(tmp: Path, n: int, photos: int, run: str | None) -> tuple[Path, Path, Path]:
    """The image folder, the video and the run directory."""
    import cv2

    from fer_tf.cli.train import main as train
    from fer_tf.synthfacs import write_records

    folder = tmp / "images"
    faces = _images(folder, n, photos)
    video = tmp / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (128, 128))
    for f in faces:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    if run is None:
        write_records(tmp / "records", 64, seed=1, size=64, num_shards=1)
        argv = ["--config", "demo_au", "--records", str(tmp / "records"), "--quiet"]
        for s in ("task.name=emotion", "model.name=tiny_cnn", "data.image_size=64"):
            argv += ["--set", s]
        argv += ["--set", "data.grayscale=true", "--set", "train.epochs=1"]
        argv += ["--model-dir", str(tmp / "run")]
        if train(argv) != 0:
            raise SystemExit("training the benchmark's tiny run failed")
        run = str(tmp / "run")
    return folder, video, Path(run)


def _time_fer_tf(run: Path, folder: Path, video: Path, det: str, bs: int) -> dict:
    """fer_tf's images/s on the folder and frames/s on the video, end to end."""
    from fer_tf.inference.predictor import Predictor

    p = Predictor.from_run(run, detector=det, batch_size=bs)
    p.predict([sorted(folder.iterdir())[0]])  # warm-up: traces, MTCNN weights
    n = len(list(folder.iterdir()))
    t = time.perf_counter()
    df = p.predict([folder])
    dt = time.perf_counter() - t
    t = time.perf_counter()
    dv = p.predict([video])
    dtv = time.perf_counter() - t
    if not (dv["error"] == "").all():
        raise SystemExit(f"the video was not read: {dv['error'].iloc[0]}")
    frames = int(dv["frame"].nunique())
    md = p.metadata
    return dict(
        model=f"{md.model_name}, {p.runner.model.count_params():,} parameters, "
        f"{md.input_size[0]} px {'grey' if md.grayscale or md.channels == 1 else 'RGB'}, {md.task} "
        f"({len(md.output_names)} outputs)",
        ips=n / dt,
        fps=frames / dtv,
        faces=int(df[df["face"] == 0]["input"].nunique()),
        images=n,
        video_faces=int((dv["face"] == 0).sum()),
        frames=frames,
    )


def _profile(run: Path, folder: Path, bs: int) -> dict[str, float]:
    """Seconds per stage for the folder with MTCNN at batch ``bs``: decode, detect, crop, model."""
    from fer_tf.inference.predictor import Predictor
    from fer_tf.preprocessing.decode import decode_image
    from fer_tf.preprocessing.faces import detect_faces

    p = Predictor.from_run(run, detector="mtcnn", batch_size=bs)
    p.predict([sorted(folder.iterdir())[0]])  # warm-up
    files = sorted(folder.iterdir())
    t0 = time.perf_counter()
    images = [decode_image(f.read_bytes()) for f in files]
    t1 = time.perf_counter()
    found = detect_faces(images, "mtcnn", min_score=p.min_face_score, batch_size=bs)
    t2 = time.perf_counter()
    crops = [p.prepare(im, fs[0]) for im, fs in zip(images, found) if fs]
    t3 = time.perf_counter()
    if crops:
        p._run(crops)  # noqa: SLF001 - the predictor's own batched model call
    t4 = time.perf_counter()
    return {"decode": t1 - t0, "detect": t2 - t1, "crop/align": t3 - t2, "model": t4 - t3}


def _fer_python(venv: Path) -> tuple[Path | None, str]:
    """The fer venv's Python, made on first use; ``(None, why)`` when it cannot be made."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import torch, torchvision.ops, facenet_pytorch, fer.fer"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    print(f"[fer] making the virtual environment {venv} (once; PyTorch, TensorFlow, fer) ...")
    steps = [[sys.executable, "-m", "venv", "--clear", str(venv)]]
    steps += [[str(python), "-m", "pip", "install", "-q", *pkgs] for pkgs in FER_INSTALL]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return (
                None,
                f"`{' '.join(cmd[-4:])}` failed (exit {proc.returncode}): {' | '.join(tail)}",
            )
    proc = subprocess.run(check, capture_output=True, text=True)
    if proc.returncode != 0:
        return None, f"fer does not import: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    return python, ""


def _run_fer(
    venv: Path, folder: Path, video: Path, tmp: Path, threads: list[int]
) -> tuple[list[dict], str]:
    """fer's timings on the same files from its own venv, once per torch thread count (0: torch's
    default); ``([], why)`` when fer cannot be installed or run."""
    python, why = _fer_python(venv)
    if python is None:
        return [], why
    script = tmp / "fer_bench.py"
    script.write_text(FER_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)
    results = []
    for n in threads:
        out = tmp / f"fer_{n}.json"
        proc = subprocess.run(
            [str(python), str(script), str(folder), str(video), str(out), str(n)],
            capture_output=True,
            text=True,
            cwd=tmp,  # not the checkout: a local ``fer*`` module must not shadow the package
            env=env,
        )
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return results, f"the fer run failed (exit {proc.returncode}): {tail}"
        results.append(json.loads(out.read_text()))
    return results, ""


def _report_fer(ours: dict, fers: list[dict], why: str) -> None:
    """Print fer's figures and the ratios against its fastest setting."""
    if why:
        print(f"\nfer: {'not measured' if not fers else 'partly measured'}: {why}")
    if not fers:
        return
    f0 = fers[0]
    print(
        f"\nfer {f0['version']} (torch {f0['torch']}), FER(mtcnn=True).detect_emotions, one image"
    )
    print("  at a time (facenet-pytorch MTCNN + mini-Xception, 58,423 parameters, TFLite int8):")
    for f in fers:
        f["ips"], f["fps"] = f["images"] / f["folder_s"], f["frames"] / f["video_s"]
        print(
            f"  torch threads={f['threads']}: {f['ips']:7.1f} images/s ({f['faces']}/{f['images']} "
            f"with a face) | video {f['fps']:7.1f} frames/s ({f['video_faces']}/{f['frames']} "
            "with a face)"
        )
    ips, fps = max(f["ips"] for f in fers), max(f["fps"] for f in fers)
    print("\nfer_tf / fer (MTCNN both; fer at its faster thread setting):")
    for (det, bs), r in ours.items():
        if det == "mtcnn":
            print(f"  batch {bs:3d}: images x{r['ips'] / ips:.2f}, video x{r['fps'] / fps:.2f}")


def _report(ours: dict, profile: dict, bs_prof: int) -> None:
    """Print fer_tf's figures and profile."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{os.cpu_count()} CPU cores, load average {load}")
    print(f"fer_tf ({next(iter(ours.values()))['model']}):")
    for (det, bs), r in ours.items():
        line = f"  detector={det:5s} batch={bs:3d}: {r['ips']:7.1f} images/s "
        line += f"({r['faces']}/{r['images']} with a face) | video {r['fps']:7.1f} frames/s "
        print(line + f"({r['video_faces']}/{r['frames']} with a face)")
    total = sum(profile.values())
    print(f"fer_tf profile, folder, MTCNN, batch {bs_prof} ({total:.2f} s):")
    for k, v in profile.items():
        print(f"  {k:10s} {v:6.2f} s  {100 * v / total:5.1f}%")


def main() -> None:
    """Run the benchmark and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="SynthFACS images (and video frames)")
    ap.add_argument("--photos", type=int, default=10, help="crops of a real photograph")
    ap.add_argument("--run", help="an existing run directory (default: train a tiny one)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--detectors", nargs="+", default=["none", "mtcnn"])
    ap.add_argument(
        "--tf-threads", type=int, default=0, help="TensorFlow intra/inter-op threads (0: default)"
    )
    ap.add_argument("--no-fer", action="store_true", help="skip the fer package")
    ap.add_argument("--fer-venv", type=Path, default=FER_VENV)
    ap.add_argument(
        "--fer-threads",
        type=int,
        nargs="+",
        default=[0, 1],
        help="torch threads for fer, one run each (0: torch's default, one per core)",
    )
    args = ap.parse_args()
    from fer_tf.cli._quiet import import_tensorflow

    import_tensorflow()
    if args.tf_threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.tf_threads)
    with tempfile.TemporaryDirectory() as d:
        folder, video, run = _setup(Path(d), args.n, args.photos, args.run)
        ours = {}
        for det in args.detectors:
            for bs in args.batch_sizes:
                ours[(det, bs)] = _time_fer_tf(run, folder, video, det, bs)
        bs_prof = max(args.batch_sizes)
        profile = _profile(run, folder, bs_prof)
        _report(ours, profile, bs_prof)
        if args.no_fer:
            print("\nfer: skipped (--no-fer)")
        else:
            fers, why = _run_fer(args.fer_venv, folder, video, Path(d), args.fer_threads)
            _report_fer(ours, fers, why)


if __name__ == "__main__":
    main()
