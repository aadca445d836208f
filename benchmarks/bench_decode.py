"""Benchmark: the record builder's per-image kernel (decode -> resize -> encode), CPU-ms per image.

Two workloads like issue 14's, generated in memory with a fixed seed from scikit-image's sample
photos (astronaut, coffee, chelsea, rocket, retina, hubble_deep_field, immunohistochemistry),
resized, with a little sensor-like noise so JPEG entropy is photo-like:

- ``web``: web photos, long side 320-3,000 px (log-normal, median 900), JPEG quality 80-92, every
  12th a PNG (one with alpha), every 15th an EXIF-rotated JPEG; target shorter side 299;
- ``small``: small JPEGs, 280-340 px a side, quality 90; target 256.

Candidates, each split into stages (header + EXIF, decode, resize, encode; every stage is run over
the whole workload and timed with ``time.process_time``, one OpenCV thread, best of
``--repeat``):

- ``baseline``: the previous kernel, frozen here: Pillow full decode, ``exif_transpose``, NumPy
  copies, Lanczos resize, Pillow encoder;
- ``pillow-draft``: Pillow with JPEG DCT scaling (``draft`` to the smallest scale still >= the
  target), then bicubic (antialiased, with the exact source box), Pillow encoder;
- ``opencv-full``: img2dataset's way: ``cv2.imdecode`` full size, ``INTER_AREA``, ``cv2.imencode``;
- ``opencv-reduced``: ``IMREAD_REDUCED_COLOR_2/4/8`` then ``INTER_AREA`` to the target size (the
  partial edge block stretched), ``cv2.imencode``;
- ``ours``: :func:`fer_tf.preprocessing.decode.process_image` (stages through its helpers; the
  total is the function itself).

Also prints the encoders side by side (Pillow vs OpenCV at quality 95 on the same pixels) and the
PSNR of ours (and of the other candidates) against the baseline's Lanczos output, over the images
that get resized: on the resized pixels and on the final JPEGs.

Usage::

    python benchmarks/bench_decode.py [--web 60] [--small 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_tf.preprocessing import decode as D  # noqa: E402

_SOURCES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "retina",
    "hubble_deep_field",
    "immunohistochemistry",
)


# --------------------------------------------------------------------------------------------
# Workloads


def _photos() -> list[np.ndarray]:
    import skimage.data

    return [getattr(skimage.data, name)() for name in _SOURCES]


def _render(src: np.ndarray, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    im = Image.fromarray(src).resize((width, height), Image.Resampling.BICUBIC)
    noisy = np.asarray(im).astype(np.int16) + rng.normal(0, 3, (height, width, 1)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def web_photos(n: int, seed: int = 0) -> list[bytes]:
    """Web-photo-like files: long side 320-3,000 px, mostly JPEG, a few PNGs and rotated JPEGs."""
    rng = np.random.default_rng(seed)
    photos, out = _photos(), []
    for i in range(n):
        src = photos[i % len(photos)]
        long = int(np.clip(rng.lognormal(np.log(900), 0.5), 320, 3000))
        scale = long / max(src.shape[:2])
        im = _render(src, round(src.shape[1] * scale), round(src.shape[0] * scale), rng)
        buf = io.BytesIO()
        if i % 12 == 11:
            if i == 11:  # one PNG with alpha
                im = im.convert("RGBA")
                im.putalpha(200)
            im.save(buf, "PNG", compress_level=6)
        elif i % 15 == 14:
            exif = Image.Exif()
            exif[0x0112] = 6
            im.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=90, exif=exif)
        else:
            im.save(buf, "JPEG", quality=int(rng.integers(80, 93)))
        out.append(buf.getvalue())
    return out


def small_jpegs(n: int, seed: int = 1) -> list[bytes]:
    """Small JPEGs, 280-340 px a side, quality 90."""
    rng = np.random.default_rng(seed)
    photos, out = _photos(), []
    for i in range(n):
        size = (int(rng.integers(280, 341)), int(rng.integers(280, 341)))
        buf = io.BytesIO()
        _render(photos[i % len(photos)], *size, rng).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


# --------------------------------------------------------------------------------------------
# The previous kernel (fer_tf.preprocessing.decode before issue 14), frozen for the comparison


def _old_decode(data: bytes) -> tuple[np.ndarray, dict]:
    im = Image.open(io.BytesIO(data))
    im.seek(0)
    im.load()
    info = {"format": im.format, "mode": im.mode, "orientation": D.exif_orientation(im)}
    im = ImageOps.exif_transpose(im) or im
    return np.asarray(D._to_rgb(im), dtype=np.uint8), info


def _old_resize(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    short = min(h, w)
    if short <= size:
        return image
    nh, nw = max(1, round(h * size / short)), max(1, round(w * size / short))
    out = Image.fromarray(image, "RGB").resize((nw, nh), Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.uint8)


def _old_encode(image: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, "JPEG", quality=int(quality))
    return buf.getvalue()


def old_process_image(data: bytes, size: int) -> bytes:
    """The previous ``process_image`` without face crop/equalisation."""
    image, info = _old_decode(data)
    upright = info["format"] == "JPEG" and info["mode"] == "RGB" and info["orientation"] == 1
    if upright and min(image.shape[:2]) <= size:
        return data
    return _old_encode(_old_resize(image, size))


# --------------------------------------------------------------------------------------------
# Candidates: stage functions over one item each; None means "passed through as it is"


def _timed(fn: Callable, items: list, repeat: int) -> tuple[float, list]:
    """Best-of-``repeat`` CPU-ms per item of ``fn`` over ``items`` (garbage collector off, as
    ``timeit`` does), and the last results."""
    best, out = float("inf"), []
    for _ in range(repeat):
        out = []
        gc.collect()
        gc.disable()
        try:
            t0 = time.process_time()
            out = [fn(x) for x in items]
            best = min(best, time.process_time() - t0)
        finally:
            gc.enable()
    return best * 1000.0 / max(1, len(items)), out


def _header(d: bytes) -> int:
    """Header and EXIF: Pillow's lazy open, the EXIF orientation where it sits in the header."""
    im = Image.open(io.BytesIO(d))
    return D.exif_orientation(im) if im.format in D._CV_FORMATS else 1  # PNG: after the pixels


def _stages_baseline(datas: list[bytes], size: int, repeat: int) -> dict:
    ms: dict = {}
    ms["header+exif"], _ = _timed(_header, datas, repeat)
    ms["decode"], dec = _timed(_old_decode, datas, repeat)
    keep = [
        (a, i["format"] == "JPEG" and i["mode"] == "RGB" and i["orientation"] == 1
         and min(a.shape[:2]) <= size)
        for a, i in dec
    ]  # fmt: skip
    ms["resize"], res = _timed(lambda x: None if x[1] else _old_resize(x[0], size), keep, repeat)
    ms["encode"], _ = _timed(lambda a: None if a is None else _old_encode(a), res, repeat)
    ms["total"], outs = _timed(lambda d: old_process_image(d, size), datas, repeat)
    ms["decode"] -= ms["header+exif"]  # _old_decode includes the header parse
    return {"ms": ms, "pixels": res, "jpegs": outs}


def _ours_decode(d: bytes, size: int):
    im = D._open(d)
    w, h = im.size
    cv = im.format in D._CV_FORMATS and im.mode in D._CV_MODES
    if cv and im.mode == "RGB" and D.exif_orientation(im) == 1 and min(w, h) <= size:
        return ("pass", D._cv_decode(d, 8, grey=True), None)
    if cv:
        scale = D._dct_scale(w, h, size)
        return ("cv", D._cv_decode(d, scale), (w, h, scale, D.exif_orientation(im)))
    image, orientation = D._pil_pixels(im)
    return ("pil", image, None)


def _ours_resize(item, size: int):
    kind, image, geo = item
    if kind == "pass":
        return None
    if kind == "pil":
        return (D.resize_shorter(image, size), False)
    w, h, scale, orientation = geo
    if min(w, h) > size:
        image = D._resample(image, w / scale, h / scale, *D._target(w, h, size))
    return (D._orient(image, orientation), True)


def _stages_ours(datas: list[bytes], size: int, repeat: int) -> dict:
    ms: dict = {}
    ms["header+exif"], _ = _timed(_header, datas, repeat)
    ms["validate"], _ = _timed(D._jpeg_complete, datas, repeat)
    ms["decode"], dec = _timed(lambda d: _ours_decode(d, size), datas, repeat)
    ms["decode"] -= ms["header+exif"] + ms["validate"]
    ms["resize"], res = _timed(lambda x: _ours_resize(x, size), dec, repeat)
    ms["encode"], _ = _timed(
        lambda r: None if r is None else D._encode(r[0], 95, r[1]), res, repeat
    )
    opts = {"image_size": size, "jpeg_quality": 95}
    ms["total"], outs = _timed(lambda d: D.process_image(d, opts)[1], datas, repeat)
    pixels = [None if r is None else (r[0][..., ::-1] if r[1] else r[0]) for r in res]
    return {"ms": ms, "pixels": pixels, "jpegs": outs}


def _pillow_draft(d: bytes, size: int):
    im = Image.open(io.BytesIO(d))
    w, h = im.size
    orientation = D.exif_orientation(im)
    if min(w, h) <= size:
        im.load()
        return im, orientation, None
    tw, th = D._target(w, h, size)
    drafted = im.draft("RGB", (tw, th)) if im.format == "JPEG" else None
    im.load()
    return im, orientation, ((tw, th), drafted[1] if drafted else (0, 0, w, h))


def _pillow_resize(item):
    im, orientation, geo = item
    im = D._to_rgb(im)  # alpha on white, as the kernel does
    if geo is not None:
        im = im.resize(geo[0], Image.Resampling.BICUBIC, box=geo[1])
    method = D._PIL_TRANSPOSE.get(orientation)
    im = im.transpose(getattr(Image.Transpose, method)) if method else im
    return im


def _pillow_encode(im) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _stages_pillow_draft(datas: list[bytes], size: int, repeat: int) -> dict:
    ms: dict = {}
    ms["decode"], dec = _timed(lambda d: _pillow_draft(d, size), datas, repeat)
    ms["resize"], res = _timed(_pillow_resize, dec, repeat)
    ms["encode"], _ = _timed(_pillow_encode, res, repeat)
    ms["total"] = ms["decode"] + ms["resize"] + ms["encode"]
    return {"ms": ms, "pixels": [np.asarray(r) for r in res], "jpegs": None}


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}  # fmt: skip


def _cv_decode(d: bytes, size: int, reduced: bool):
    w, h = Image.open(io.BytesIO(d)).size  # the header: the scale and the target size
    flag = _REDUCED[D._dct_scale(w, h, size)] if reduced else cv2.IMREAD_COLOR
    image = cv2.imdecode(np.frombuffer(d, np.uint8), flag)  # applies EXIF orientation itself
    if (image.shape[0] > image.shape[1]) != (h > w):
        w, h = h, w
    return image, (w, h)


def _cv_resize(item, size: int) -> np.ndarray:
    a, (w, h) = item
    if min(h, w) <= size:
        return a
    return cv2.resize(a, D._target(w, h, size), interpolation=cv2.INTER_AREA)


def _stages_opencv(datas: list[bytes], size: int, repeat: int, reduced: bool) -> dict:
    ms: dict = {}
    ms["decode"], dec = _timed(lambda d: _cv_decode(d, size, reduced), datas, repeat)
    ms["resize"], res = _timed(lambda a: _cv_resize(a, size), dec, repeat)
    ms["encode"], _ = _timed(lambda a: D._encode(a, 95, True), res, repeat)
    ms["total"] = ms["decode"] + ms["resize"] + ms["encode"]
    return {"ms": ms, "pixels": [a[..., ::-1] for a in res], "jpegs": None}


# --------------------------------------------------------------------------------------------
# Report


def _psnr(pairs: list) -> tuple[float, float]:
    """PSNR over all pairs (pooled MSE) and the worst single pair, in dB."""
    mses = [np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) for a, b in pairs]
    db = [10 * np.log10(255.0**2 / m) if m > 0 else 99.0 for m in (np.mean(mses), max(mses))]
    return float(db[0]), float(db[1])


def _decoded(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


def run_workload(name: str, datas: list[bytes], size: int, repeat: int) -> None:
    """Time every candidate on one workload and print the tables."""
    mb = sum(map(len, datas)) / len(datas) / 1024
    print(f"\n== {name}: {len(datas)} files, {mb:.0f} KiB mean, target shorter side {size} ==")
    _timed(_header, datas, 1)  # warm-up: plugin imports, first-call costs
    results = {
        "baseline": _stages_baseline(datas, size, repeat),
        "pillow-draft": _stages_pillow_draft(datas, size, repeat),
        "opencv-full": _stages_opencv(datas, size, repeat, reduced=False),
        "opencv-reduced": _stages_opencv(datas, size, repeat, reduced=True),
        "ours": _stages_ours(datas, size, repeat),
    }
    stages = ("header+exif", "validate", "decode", "resize", "encode", "total")
    print(f"{'CPU-ms/image':16s}" + "".join(f"{s:>12s}" for s in stages))
    for cand, r in results.items():
        cells = "".join(f"{r['ms'][s]:12.2f}" if s in r["ms"] else f"{'-':>12s}" for s in stages)
        print(f"{cand:16s}{cells}")
    base = results["baseline"]
    opened = [Image.open(io.BytesIO(d)) for d in datas]
    resized = [i for i, im in enumerate(opened) if min(im.size) > size]
    jpegs = [i for i in resized if opened[i].format == "JPEG"]
    print(
        f"PSNR vs the baseline's Lanczos output (pooled / worst image), over the {len(jpegs)}"
        f" resized JPEGs [and all {len(resized)} resized images]:"
    )
    for cand, r in results.items():
        if cand == "baseline":
            continue
        line = f"  {cand:16s} pixels"
        for pool in (jpegs, resized) if cand == "ours" else (jpegs,):
            pix = _psnr([(r["pixels"][i], base["pixels"][i]) for i in pool])
            line += (
                f" {pix[0]:5.1f} / {pix[1]:5.1f} dB"
                if pool is jpegs
                else f" [{pix[0]:.1f} / {pix[1]:.1f}]"
            )
        if r["jpegs"] is not None:
            jp = _psnr([(_decoded(r["jpegs"][i]), _decoded(base["jpegs"][i])) for i in resized])
            line += f";  final JPEGs {jp[0]:5.1f} / {jp[1]:5.1f} dB [all resized]"
        print(line)
    ours, old = results["ours"]["ms"]["total"], base["ms"]["total"]
    t0 = time.perf_counter()
    opts = {"image_size": size, "jpeg_quality": 95}
    for d in datas:
        D.process_image(d, opts)
    wall_ours = (time.perf_counter() - t0) * 1000 / len(datas)
    t0 = time.perf_counter()
    for d in datas:
        old_process_image(d, size)
    wall_old = (time.perf_counter() - t0) * 1000 / len(datas)
    print(
        f"ours vs baseline: {ours:.2f} vs {old:.2f} CPU-ms/image, {old / ours:.2f}x less CPU"
        f" (wall, one pass: {wall_ours:.2f} vs {wall_old:.2f} ms/image);"
        f" img2dataset's way (opencv-full): {results['opencv-full']['ms']['total']:.2f}"
    )


def _encoders(datas: list[bytes], size: int, repeat: int) -> None:
    decoded = [D._decode(d, size) for d in datas]
    arrays = [np.ascontiguousarray(a[..., ::-1] if bgr else a) for a, bgr in decoded]  # RGB
    pil_ms, pil = _timed(lambda a: _old_encode(a), arrays, repeat)
    cv_ms, ocv = _timed(lambda a: D.encode_jpeg(a, 95), arrays, repeat)
    same = sum(a == b for a, b in zip(pil, ocv))
    print(
        f"encoders at quality 95 on {len(arrays)} images ~{size} px: Pillow {pil_ms:.2f},"
        f" OpenCV {cv_ms:.2f} CPU-ms/image ({pil_ms / cv_ms:.2f}x); identical bytes: "
        f"{same}/{len(arrays)}"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--web", type=int, default=60, help="web photos (default 60)")
    ap.add_argument("--small", type=int, default=200, help="small JPEGs (default 200)")
    ap.add_argument("--repeat", type=int, default=3, help="best of N per stage (default 3)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import PIL

    print(
        f"bench_decode: one core (cv2 threads 1), time.process_time; load {load:.2f};"
        f" Pillow {PIL.__version__}, OpenCV {cv2.__version__}, NumPy {np.__version__}"
    )
    web, small = web_photos(args.web), small_jpegs(args.small)
    run_workload("web photos", web, 299, args.repeat)
    run_workload("small JPEGs", small, 256, args.repeat)
    print()
    _encoders(web, 299, args.repeat)
    _encoders(small, 256, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
