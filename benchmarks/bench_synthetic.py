"""SynthFACS speed: faces per second on one core (target: >= 300 faces/s at 128 px).

Prints, side by side, the vectorised renderer (``sample``) and a naive baseline that applies the
same background, lighting and noise with per-pixel Python loops (what a straightforward port of a
per-pixel shader would do), so the ratio shows what the OpenCV/NumPy design buys.

    python benchmarks/bench_synthetic.py [--n 1000] [--size 128]
"""

from __future__ import annotations

import argparse
import os

# One core: pin BLAS/OpenCV threads before numpy and cv2 load.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import math  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from fer_tf import synthfacs as S  # noqa: E402

TARGET = 300.0


def _bench_sample(n: int, size: int) -> tuple[float, float]:
    """Faces/s by wall clock and by this process's CPU time (robust when the machine is shared)."""
    list(S.sample(20, seed=1, size=size))  # warm caches (identities, noise bank)
    t, c = time.perf_counter(), time.process_time()
    for _ in S.sample(n, seed=0, size=size):
        pass
    return n / (time.perf_counter() - t), n / (time.process_time() - c)


def _naive_pixels(img: np.ndarray, light: S.Lighting, rng: np.random.Generator) -> np.ndarray:
    """Background ramp, lighting gain and noise per pixel in Python (the baseline)."""
    size = img.shape[0]
    out = np.empty_like(img)
    dx, dy = math.cos(light.direction), math.sin(light.direction)
    for y in range(size):
        for x in range(size):
            u, v = (x - size / 2) / (size / 2), (y - size / 2) / (size / 2)
            g = light.contrast * (1.0 + light.strength * (u * dx + v * dy))
            for c in range(3):
                p = img[y, x, c] * g + light.brightness + light.noise * rng.standard_normal()
                out[y, x, c] = min(255, max(0, int(p)))
    return out


def _bench_naive(n: int, size: int) -> float:
    rng = np.random.default_rng(0)
    light = S.Lighting(direction=0.5, strength=0.2, contrast=0.9, brightness=5.0, noise=3.0)
    ident = S.Identity()
    t = time.process_time()
    for i in range(n):
        img = S.render_face(
            {12: 0.8, 6: 0.8}, size=size, rng=i, identity=ident, lighting=S.Lighting()
        )
        _naive_pixels(img, light, rng)
    return n / (time.process_time() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="faces to time (default 1000)")
    parser.add_argument("--size", type=int, default=128, help="image size (default 128)")
    parser.add_argument("--naive-n", type=int, default=5, help="faces for the naive baseline")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    fast_wall, fast = _bench_sample(args.n, args.size)
    small_wall, small = _bench_sample(args.n, 64)
    naive = _bench_naive(args.naive_n, args.size)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} cores (wall figures suffer when shared)")
    print(f"{'':40s} {'CPU-time':>10s} {'wall':>10s}")
    print(f"SynthFACS sample(), {args.size:3d} px, faces/s:    {fast:10.1f} {fast_wall:10.1f}")
    print(f"SynthFACS sample(),  64 px, faces/s:    {small:10.1f} {small_wall:10.1f}")
    print(f"naive per-pixel Python baseline, {args.size} px: {naive:10.2f} faces/s (CPU time)")
    print(f"speed-up over the naive baseline: {fast / naive:.0f}x")
    verdict = "PASS" if fast >= TARGET else "BELOW TARGET"
    print(f"{verdict}: {fast:.0f} faces/s per core at {args.size} px (target {TARGET:.0f})")


if __name__ == "__main__":
    main()
