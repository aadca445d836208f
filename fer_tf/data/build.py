"""Spreadsheets of image URLs -> validated, sharded schema-v1 TFRecords (``build_records``).

Three phases, each resumable by construction:

1. **download** (threads, :mod:`fer_tf.data.download`): originals go into a content-addressed cache
   with a URL index; a killed run loses at most the files in flight (written to temporary names);
2. **process** (a process pool): decode to RGB (PNG alpha, GIF first frame, WebP, BMP, CMYK/YCCK
   JPEG, greyscale, 16-bit, EXIF orientation), optional face crop / histogram equalisation / resize,
   JPEG re-encode; results are cached under ``cache_dir/processed/<options fingerprint>/`` so a
   rerun with the same options does no image work twice. Phases 1 and 2 overlap (pipelined);
3. **write** (main process): examples sorted by id per split, cut into shards, each written under a
   temporary name and renamed; then ``errors.jsonl``, ``skipped.jsonl`` and ``manifest.json``.

TensorFlow is never imported: records are encoded and framed by :mod:`fer_tf.records`' pure-Python
writer (byte-identical to ``tf.io.TFRecordWriter``).

A rerun of the same command after a crash (even SIGKILL) therefore downloads nothing already cached
and writes exactly the records an uninterrupted run writes: the output depends only on the inputs,
the options and the cached originals.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_tf import facs
from fer_tf.data.download import (
    FAILURE_CATEGORIES,
    DownloadCache,
    Downloader,
    DownloadOptions,
    FetchResult,
)
from fer_tf.data.spreadsheet import SKIP_REASONS, SheetRow, SpreadsheetError, read_spreadsheets

__all__ = [
    "BuildError",
    "FailureRateExceeded",
    "BuildSummary",
    "build_records",
    "decode_image",
    "process_image",
    "SKIPPED_NAME",
    "SPLITS",
    "SpreadsheetError",
]

SKIPPED_NAME = "skipped.jsonl"
SPLITS = ("train", "val")
DEFAULT_EXAMPLES_PER_SHARD = 1024
FACE_CROPS = ("none", "haar")
_PROCESS_VERSION = 1  # bump when processing changes the output bytes


class BuildError(RuntimeError):
    """A fatal problem: unreadable input, unwritable output, interrupted run."""


class FailureRateExceeded(BuildError):
    """More sources failed than ``max_failure_rate`` allows (the records were still written).

    Attributes:
        summary: the :class:`BuildSummary` of the run.
    """

    def __init__(self, message: str, summary: BuildSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class BuildSummary:
    """What a build did.

    Attributes:
        output_dir: the records directory.
        rows: spreadsheet data rows (blank rows and headers excluded).
        written: examples written (all splits).
        failed: sources that failed (download or decode), see ``failures``.
        skipped: rows skipped before download or after processing, see ``skipped_by_reason``.
        failures: failed sources per category (every category listed, zeros included).
        skipped_by_reason: skipped rows per reason.
        splits: examples per split.
        shards: shard file names per split.
        downloaded: originals fetched over the network in this run.
        cached: sources answered from the cache (originals or remembered failures).
        processed: images decoded/encoded in this run (the rest came from the processed cache).
        elapsed: seconds.
        manifest: path of ``manifest.json``.
        errors: path of ``errors.jsonl``.
        warnings: notes for the user (e.g. selected AUs missing from every spreadsheet).
        timings: seconds per phase (``read``, ``fetch_process``, ``write``).
    """

    output_dir: str
    rows: int = 0
    written: int = 0
    failed: int = 0
    skipped: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    shards: dict[str, list[str]] = field(default_factory=dict)
    downloaded: int = 0
    cached: int = 0
    processed: int = 0
    elapsed: float = 0.0
    manifest: str = ""
    errors: str = ""
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failure_rate(self) -> float:
        """``failed / (rows - skipped)`` (0 when nothing was attempted)."""
        attempted = self.rows - self.skipped
        return self.failed / attempted if attempted > 0 else 0.0

    def table(self) -> str:
        """A plain-text summary table."""
        lines = [
            f"records: {self.output_dir}",
            f"  {'rows':<28}{self.rows:>10}",
            f"  {'written':<28}{self.written:>10}",
        ]
        for split, n in self.splits.items():
            lines.append(f"    {split:<26}{n:>10}  ({len(self.shards.get(split, []))} shards)")
        lines.append(f"  {'failed':<28}{self.failed:>10}")
        for cat, n in self.failures.items():
            if n:
                lines.append(f"    {cat:<26}{n:>10}")
        lines.append(f"  {'skipped':<28}{self.skipped:>10}")
        for reason, n in self.skipped_by_reason.items():
            if n:
                lines.append(f"    {reason:<26}{n:>10}")
        lines += [
            f"  {'downloaded (network)':<28}{self.downloaded:>10}",
            f"  {'from cache':<28}{self.cached:>10}",
            f"  {'elapsed (s)':<28}{self.elapsed:>10.1f}",
            f"  manifest: {self.manifest}",
            f"  errors:   {self.errors}",
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict."""
        d = dict(self.__dict__)
        d["failure_rate"] = self.failure_rate
        return d


# --------------------------------------------------------------------------------------------
# Image processing (runs in pool workers: NumPy/Pillow/OpenCV only, never TensorFlow)


def decode_image(data: bytes, info: dict[str, Any] | None = None) -> Any:
    """Decode image bytes to an upright uint8 RGB array.

    Handles PNG/GIF/WebP with transparency (composited on white), the first frame of animations,
    palette, greyscale, 16-bit and 32-bit integer images (scaled to 8 bits), CMYK/YCCK JPEG and the
    EXIF orientation tag.

    Args:
        data: the file bytes.
        info: if given, filled with the source ``format``, ``mode`` and EXIF ``orientation``.

    Returns:
        ``numpy.ndarray`` of shape ``(H, W, 3)``, dtype uint8.

    Raises:
        ValueError: the bytes are not a decodable image (message says why).
    """
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
        im.seek(0)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ValueError(f"cannot decode the image: {exc}") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"decompression bomb refused: {exc}") from None
    if info is not None:
        info["format"], info["mode"], info["orientation"] = im.format, im.mode, 1
        with contextlib.suppress(Exception):
            info["orientation"] = int(im.getexif().get(0x0112, 1) or 1)
    with contextlib.suppress(Exception):  # a broken EXIF block must not lose the image
        im = ImageOps.exif_transpose(im) or im
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(im).astype(np.float64)
        scale = 257.0 if (mode.startswith("I;16") or arr.max(initial=0) > 255) else 1.0
        if mode == "I" and arr.max(initial=0) > 65535:
            scale = arr.max() / 255.0
        grey = np.clip(np.rint(arr / scale), 0, 255).astype(np.uint8)
        im = Image.fromarray(grey, "L")
    elif mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        hi = arr.max(initial=0)
        arr = arr * 255.0 if hi <= 1.0 else arr
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def _resize_shorter(image: Any, size: int) -> Any:
    """Downscale so the shorter side is ``size`` (aspect kept); smaller images are kept as is."""
    import numpy as np
    from PIL import Image

    h, w = image.shape[:2]
    short = min(h, w)
    if short <= size:
        return image
    nh, nw = max(1, round(h * size / short)), max(1, round(w * size / short))
    out = Image.fromarray(image, "RGB").resize((nw, nh), Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.uint8)


def process_image(data: bytes, options: dict[str, Any]) -> tuple[str, Any, str]:
    """Decode, optionally face-crop/equalise/resize, and (re-)encode one image as RGB JPEG.

    The image is always fully decoded (that is the validation). An original that is already an
    upright RGB JPEG and needs no change (no resize, crop or equalisation) is stored as it is, like
    TF-Slim's ``build_image_data`` does: no generation loss, less CPU. Everything else (PNG, GIF,
    WebP, BMP, CMYK or greyscale JPEG, EXIF-rotated JPEG) is re-encoded with ``jpeg_quality``;
    ``reencode_jpeg=True`` re-encodes every image.

    Args:
        data: original file bytes.
        options: ``image_size`` (int or None), ``jpeg_quality`` (int), ``face_crop``
            (``"none"``/``"haar"``), ``face_margin`` (float), ``face_fallback``
            (``"keep"``/``"drop"``), ``equalize`` (bool), ``reencode_jpeg`` (bool).

    Returns:
        ``("ok", jpeg_bytes, "")``, ``("fail", None, detail)`` for an undecodable image
        (``corrupt_image``) or ``("skip", None, detail)`` when no face was found and
        ``face_fallback="drop"`` (``no_face``).
    """
    from PIL import Image

    src: dict[str, Any] = {}
    try:
        image = decode_image(data, src)
    except ValueError as exc:
        return "fail", None, str(exc)
    unchanged = not (
        options.get("face_crop", "none") != "none"
        or options.get("equalize")
        or (options.get("image_size") and min(image.shape[:2]) > int(options["image_size"]))
        or options.get("reencode_jpeg")
    )
    upright_rgb_jpeg = (
        src.get("format") == "JPEG" and src.get("mode") == "RGB" and src.get("orientation") == 1
    )
    if unchanged and upright_rgb_jpeg:
        return "ok", data, ""
    if options.get("face_crop", "none") == "haar":
        from fer_tf.preprocessing import faces

        cropped, info = faces.crop_face(
            image,
            margin=float(options.get("face_margin", 0.2)),
            fallback=str(options.get("face_fallback", "keep")),
        )
        if cropped is None:
            return "skip", None, "no face found (Viola-Jones) and face_fallback='drop'"
        image = cropped
    if options.get("equalize"):
        from fer_tf.preprocessing import faces

        image = faces.equalize(image)
    if options.get("image_size"):
        image = _resize_shorter(image, int(options["image_size"]))
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, "JPEG", quality=int(options.get("jpeg_quality", 95)))
    return "ok", buf.getvalue(), ""


def _process_file(src: str, dst: str, options: dict[str, Any]) -> tuple[str, str]:
    """Pool job: process ``src`` into ``dst`` (JPEG) or ``dst + '.fail'`` (JSON marker)."""
    with open(src, "rb") as fh:
        data = fh.read()
    status, jpeg, detail = process_image(data, options)
    target = dst if status == "ok" else dst + ".fail"
    payload = jpeg if status == "ok" else json.dumps({"status": status, "detail": detail}).encode()
    tmp = f"{target}.{os.getpid()}.tmp"
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as fh:
        fh.write(payload)
    os.replace(tmp, target)
    return status, detail


def _may_pass_through(options: dict[str, Any]) -> bool:
    """Whether these options can keep an original JPEG as downloaded (no crop/equalise/re-encode)."""
    return not (
        options.get("face_crop", "none") != "none"
        or options.get("equalize")
        or options.get("reencode_jpeg")
    )


def _triage_file(
    src: str, dst: str, options: dict[str, Any]
) -> tuple[str, str, tuple[int, int] | None]:
    """Thread job: validate an original that :func:`process_image` would store unchanged, cheaply.

    An upright RGB JPEG that needs no resize is stored byte for byte as downloaded; validating it
    does not need full-size pixels. Its header is parsed (format, mode, EXIF orientation, size) and
    the entropy-coded data is decoded at 1/8 scale, greyscale (libjpeg's DCT scaling still reads
    every coefficient, so a truncated or corrupt JPEG fails exactly like a full decode). Pillow
    releases the GIL while decoding, so this runs in threads, with no inter-process traffic.

    Returns:
        ``("pass", "", (width, height))``: store ``src`` as it is; ``("fail", detail, None)``: a
        corrupt image (a ``.fail`` marker is written to ``dst + '.fail'``, as the process pool
        does); ``("process", "", None)``: anything else, for :func:`_process_file`.
    """
    from PIL import Image

    with open(src, "rb") as fh:
        data = fh.read()
    try:
        im = Image.open(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - the full decode in the process pool reports it
        return "process", "", None
    if im.format != "JPEG" or im.mode != "RGB":
        return "process", "", None
    orientation = 1
    with contextlib.suppress(Exception):
        orientation = int(im.getexif().get(0x0112, 1) or 1)
    width, height = im.size
    size = options.get("image_size")
    if orientation != 1 or (size and min(width, height) > int(size)):
        return "process", "", None
    try:
        im.draft("L", (max(1, width // 8), max(1, height // 8)))
        im.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        detail = f"cannot decode the image: {exc}"
    except Image.DecompressionBombError as exc:
        detail = f"decompression bomb refused: {exc}"
    else:
        return "pass", "", (width, height)
    target = dst + ".fail"
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(json.dumps({"status": "fail", "detail": detail}).encode())
    os.replace(tmp, target)
    return "fail", detail, None


def _noop() -> None:
    return None


def _worker_init() -> None:
    """Pool worker set-up: no OpenCV thread pool (it may have been copied mid-use by fork)."""
    try:
        import cv2

        cv2.setNumThreads(0)
    except ImportError:  # pragma: no cover - OpenCV is a dependency
        pass


def _make_pool(workers: int) -> ProcessPoolExecutor:
    """The image-processing pool.

    On Linux the workers are forked, all at once and before the download threads start: fast, and
    user scripts need no ``if __name__ == "__main__"`` guard. The workers only run Pillow/NumPy/
    OpenCV code, so a parent that has already imported TensorFlow (a second build in the same
    process, a notebook) is fine too. Elsewhere ``spawn`` is used.
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_worker_init,
    )
    pool.submit(_noop).result()  # with fork: starts every worker now
    return pool


class _InlineExecutor(Executor):
    """``workers=0``: run jobs in the calling process (debugging, tiny inputs)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


# --------------------------------------------------------------------------------------------
# Helpers


def _split_of(key: str, seed: int, val_fraction: float) -> str:
    if val_fraction <= 0:
        return "train"
    h = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2.0**64
    return "val" if u < val_fraction else "train"


def _check_number(
    name: str, value: Any, lo: float, hi: float | None = None, integer: bool = False
) -> None:
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not value >= lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"The '{name}' parameter must be {kind} {rng}. Got {value!r} instead.")


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BuildError(
            f"The output directory '{out}' is not writable: {exc.strerror or exc}. "
            f"Pass an --output-dir you can write to."
        ) from None


def _write_jsonl(path: Path, entries: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for e in entries:
            fh.write(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _label_stats(examples: Sequence[dict[str, Any]], au_ids: Sequence[int]) -> dict[str, Any]:
    au = {str(a): {"present": 0, "absent": 0, "unknown": 0} for a in au_ids}
    for ex in examples:
        for a, v in zip(au_ids, ex["au"]):
            au[str(a)]["present" if v == 1 else "absent" if v == 0 else "unknown"] += 1

    def dist(key: str) -> dict[str, Any]:
        vals = [ex[key] for ex in examples if not math.isnan(ex[key])]
        if not vals:
            return {"known": 0, "mean": None, "std": None}
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
        return {"known": len(vals), "mean": round(mean, 6), "std": round(std, 6)}

    emotion = Counter(ex["emotion"] for ex in examples)
    posed = Counter(ex["posed"] for ex in examples)
    return {
        "count": len(examples),
        "au": au,
        "valence": dist("valence"),
        "arousal": dist("arousal"),
        "emotion": {
            **{name: emotion.get(i, 0) for i, name in enumerate(facs.EMOTIONS)},
            "unknown": emotion.get(-1, 0),
        },
        "posed": {
            "posed": posed.get(1, 0),
            "spontaneous": posed.get(0, 0),
            "unknown": posed.get(-1, 0),
        },
        "subjects": len({ex["subject"] for ex in examples if ex["subject"]}),
    }


class _Progress:
    """tqdm bar (or nothing) with downloaded/failed/written counters."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="img", desc="fetch+process", dynamic_ncols=True)
        self.counts = {"downloaded": 0, "cached": 0, "failed": 0, "ready": 0}
        self._last = 0.0

    def update(self, **inc: int) -> None:
        for k, v in inc.items():
            self.counts[k] += v
        if self.bar is not None:
            self.bar.update(inc.get("failed", 0) + inc.get("ready", 0) + inc.get("skip", 0))
            now = time.monotonic()
            if now - self._last > 0.2:
                self._last = now
                self.bar.set_postfix(
                    {k: v for k, v in self.counts.items() if k != "skip"}, refresh=False
                )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix(self.counts, refresh=True)
            self.bar.close()


# --------------------------------------------------------------------------------------------
# Main entry point


def build_records(
    spreadsheets: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    aus: str | Sequence[int | str] | None = None,
    drop_unknown: bool = False,
    val_fraction: float = 0.1,
    split_by: str = "id",
    seed: int = 0,
    num_shards: int | None = None,
    examples_per_shard: int | None = None,
    image_size: int | None = None,
    jpeg_quality: int = 95,
    face_crop: str = "none",
    face_margin: float = 0.2,
    face_fallback: str = "keep",
    equalize: bool = False,
    reencode_jpeg: bool = False,
    workers: int | None = None,
    concurrency: int = 32,
    per_host: int | None = None,
    timeout: float = 10.0,
    retries: int = 3,
    max_bytes: int = 20 * 1024 * 1024,
    allow_private_hosts: bool = False,
    retry_failed: bool = False,
    max_failure_rate: float | None = None,
    download_options: DownloadOptions | None = None,
    progress: bool = False,
) -> BuildSummary:
    """Read spreadsheets of image URLs, download, validate and write sharded schema-v1 TFRecords.

    Output files in ``output_dir``: ``<split>-NNNNN-of-MMMMM.tfrecord``, ``manifest.json``,
    ``errors.jsonl`` (one line per failed source) and ``skipped.jsonl`` (one line per skipped row);
    see ``docs/records.md``. Running the same call again (after a crash too) resumes: cached
    originals are not downloaded again and the result is byte-identical.

    Args:
        spreadsheets: one or more ``.xlsx``/``.csv``/``.tsv``/``.txt`` files.
        output_dir: records directory (created).
        cache_dir: download cache (default ``<output_dir>/cache``); share it between builds.
        aus: AU columns to store: a :mod:`fer_tf.facs` set name (``"emotionet11"``), a list, or
            None for every AU column found in the spreadsheets.
        drop_unknown: skip rows where any selected AU is unknown (seed 001's filtering).
        val_fraction: fraction of examples assigned to the ``val`` split (0..1).
        split_by: ``"id"`` (per image) or ``"subject"`` (subject-independent; rows without a
            subject fall back to their id).
        seed: split seed.
        num_shards: shards per split (capped at the split's size); exclusive with
            ``examples_per_shard``.
        examples_per_shard: examples per shard (default 1024 when neither is given).
        image_size: downscale so the shorter side is at most this (aspect kept); None keeps size.
        jpeg_quality: quality of the re-encoded JPEG (1..100).
        face_crop: ``"none"`` or ``"haar"`` (Viola–Jones largest face, :mod:`fer_tf.preprocessing.faces`).
        face_margin: margin around the detected face (fraction of its size).
        face_fallback: when no face is found: ``"keep"`` the whole image or ``"drop"`` the row
            (counted as skipped, reason ``no_face``).
        equalize: histogram-equalise (seed 004).
        reencode_jpeg: re-encode every image; by default an upright RGB JPEG that needs no change
            is stored as downloaded (fully decoded first, to validate it).
        workers: image-processing processes (default: CPU count; 0 processes in this process).
        concurrency: download threads.
        per_host: concurrent requests per host (default ``min(concurrency, 16)``).
        timeout: read timeout (s) per request.
        retries: retries for 429/5xx/timeouts/connection errors.
        max_bytes: largest original accepted.
        allow_private_hosts: allow private/loopback/link-local addresses (refused by default).
        retry_failed: re-attempt sources that failed in an earlier run (otherwise their
            remembered failure is reused; ``blocked_host``/``bad_url`` are always re-checked).
        max_failure_rate: raise :class:`FailureRateExceeded` (after writing everything) when
            ``failed / (rows - skipped)`` exceeds this.
        download_options: full downloader settings (overrides ``concurrency``, ``per_host``,
            ``timeout``, ``retries``, ``max_bytes`` and ``allow_private_hosts``).
        progress: show a tqdm progress bar on stderr.

    Returns:
        A :class:`BuildSummary`.

    Raises:
        ValueError: a bad argument (the message names it and says what is accepted).
        fer_tf.data.spreadsheet.SpreadsheetError: a spreadsheet is missing, unreadable, empty or
            has no URL column.
        BuildError: the output or cache directory is not writable.
        FailureRateExceeded: ``max_failure_rate`` was exceeded (records were written).
    """
    t0 = time.monotonic()
    from fer_tf import __version__

    # ---- arguments ----
    if isinstance(spreadsheets, (str, os.PathLike)):
        spreadsheets = [spreadsheets]
    paths = [Path(p) for p in spreadsheets]
    out = Path(output_dir)
    cache_root = Path(cache_dir) if cache_dir is not None else out / "cache"
    _check_number("val_fraction", val_fraction, 0.0, 1.0)
    if split_by not in ("id", "subject"):
        raise ValueError(f"The 'split_by' parameter must be 'id' or 'subject'. Got {split_by!r}.")
    _check_number("seed", seed, 0, integer=True)
    if num_shards is not None and examples_per_shard is not None:
        raise ValueError(
            "The 'num_shards' and 'examples_per_shard' parameters are exclusive; pass one of them."
        )
    if num_shards is not None:
        _check_number("num_shards", num_shards, 1, integer=True)
    if examples_per_shard is not None:
        _check_number("examples_per_shard", examples_per_shard, 1, integer=True)
    if image_size is not None:
        _check_number("image_size", image_size, 8, integer=True)
    _check_number("jpeg_quality", jpeg_quality, 1, 100, integer=True)
    if face_crop not in FACE_CROPS:
        raise ValueError(
            f"The 'face_crop' parameter must be one of {FACE_CROPS}. Got {face_crop!r}."
        )
    if face_fallback not in ("keep", "drop"):
        raise ValueError(
            f"The 'face_fallback' parameter must be 'keep' or 'drop'. Got {face_fallback!r}."
        )
    _check_number("face_margin", face_margin, 0.0)
    if workers is None:
        workers = max(1, min(os.cpu_count() or 1, 8))
    _check_number("workers", workers, 0, integer=True)
    if max_failure_rate is not None:
        _check_number("max_failure_rate", max_failure_rate, 0.0, 1.0)
    au_ids_sel = facs.parse_aus(aus) if aus is not None else None
    if download_options is None:
        download_options = DownloadOptions(
            concurrency=concurrency,
            per_host=per_host if per_host is not None else min(concurrency, 16),
            timeout=timeout,
            retries=retries,
            max_bytes=max_bytes,
            allow_private_hosts=allow_private_hosts,
        )
    download_options.validate()
    proc_options = {
        "version": _PROCESS_VERSION,
        "image_size": image_size,
        "jpeg_quality": jpeg_quality,
        "face_crop": face_crop,
        "face_margin": float(face_margin) if face_crop != "none" else None,
        "face_fallback": face_fallback if face_crop != "none" else None,
        "equalize": bool(equalize),
        "reencode_jpeg": bool(reencode_jpeg),
    }
    fingerprint = hashlib.sha1(json.dumps(proc_options, sort_keys=True).encode()).hexdigest()[:16]

    # ---- inputs ----
    data = read_spreadsheets(paths)
    au_ids = au_ids_sel if au_ids_sel is not None else data.au_ids
    warnings: list[str] = []
    if not au_ids:
        warnings.append("no AU columns found or selected: records hold an empty label/au list")
    missing = [a for a in au_ids if a not in data.au_ids]
    if missing:
        warnings.append(
            f"selected AUs {missing} are in no spreadsheet: their labels are -1 (unknown)"
        )
    _check_writable(out)
    try:
        cache = DownloadCache(cache_root)
    except OSError as exc:
        raise BuildError(f"The cache directory '{cache_root}' is not writable: {exc}.") from None
    processed_root = cache_root / "processed" / fingerprint

    skipped: list[dict[str, Any]] = [i.to_json() for i in data.issues if i.reason != "bad_sheet"]
    sheet_errors: list[dict[str, Any]] = [
        i.to_json() for i in data.issues if i.reason == "bad_sheet"
    ]
    candidates: list[tuple[SheetRow, tuple[int, ...]]] = []
    for row in data.rows:
        labels = row.au(au_ids)
        if drop_unknown and any(v == -1 for v in labels):
            unknown = [a for a, v in zip(au_ids, labels) if v == -1]
            skipped.append(
                {
                    "file": row.file,
                    "sheet": row.sheet,
                    "row": row.row,
                    "source": row.source,
                    "reason": "unknown_label",
                    "detail": f"unknown label for AU {unknown} (drop_unknown)",
                }
            )
            continue
        candidates.append((row, labels))

    summary_timings = {"read": time.monotonic() - t0}
    t1 = time.monotonic()
    # ---- phases 1+2: download and process (pipelined) ----
    by_url = {row.source: (row, labels) for row, labels in candidates}
    failures: list[dict[str, Any]] = []
    ready: dict[str, str] = {}  # url -> JPEG path (processed, or the original kept as it is)
    dims: dict[str, tuple[int, int]] = {}  # JPEG path -> (width, height), where already known
    passed: dict[str, str] = {}  # sha -> original path (validated, stored as downloaded)
    summary = BuildSummary(output_dir=str(out), warnings=warnings)
    bar = _Progress(len(candidates), progress)
    pool: Executor
    if workers == 0:
        pool = _InlineExecutor()
    else:
        pool = _make_pool(workers)
    # Pass-through checks (header + reduced decode) run in threads: cheaper than a process hop.
    checker = ThreadPoolExecutor(max(2, workers), thread_name_prefix="fer_tf-check")
    pass_through = _may_pass_through(proc_options)
    waiting: dict[str, list[str]] = {}  # sha -> urls waiting for its processing
    jobs: dict[Future[Any], tuple[str, str]] = {}  # future -> (sha, "check" | "process")

    def fail(url: str, stage: str, category: str, detail: str, attempts: int) -> None:
        row, _ = by_url[url]
        failures.append(
            {
                "file": row.file,
                "sheet": row.sheet,
                "row": row.row,
                "source": url,
                "stage": stage,
                "category": category,
                "detail": detail,
                "attempts": attempts,
            }
        )
        bar.update(failed=1)

    attempts_of: dict[str, int] = {}

    def finish_sha(sha: str) -> None:
        """Apply the processed result of ``sha`` to every URL waiting on it."""
        dst = processed_root / sha[:2] / f"{sha}.jpg"
        marker = Path(str(dst) + ".fail")
        for url in waiting.pop(sha, []):
            if sha in passed:
                ready[url] = passed[sha]
                bar.update(ready=1)
                continue
            if dst.exists():
                ready[url] = str(dst)
                bar.update(ready=1)
                continue
            info = json.loads(marker.read_text(encoding="utf-8"))
            row, _ = by_url[url]
            if info.get("status") == "skip":
                skipped.append(
                    {
                        "file": row.file,
                        "sheet": row.sheet,
                        "row": row.row,
                        "source": url,
                        "reason": "no_face",
                        "detail": info.get("detail", ""),
                    }
                )
                bar.update(skip=1)
            else:
                detail = str(info.get("detail", ""))
                fail(url, "decode", "corrupt_image", detail, attempts_of.get(url, 1))
                cache.record(
                    FetchResult(
                        url,
                        False,
                        category="corrupt_image",
                        detail=detail,
                        attempts=attempts_of.get(url, 1),
                        stage="decode",
                    )
                )

    def drain(block_until: int) -> None:
        while len(jobs) > block_until:
            done, _ = wait(list(jobs), return_when=FIRST_COMPLETED)
            for fut in done:
                sha, kind = jobs.pop(fut)
                result = fut.result()  # re-raise worker crashes (bugs), not image problems
                if kind == "check":
                    status, _, size = result
                    if status == "process":
                        submit_process(sha)
                        continue
                    if status == "pass":
                        passed[sha] = str(cache.object_path(sha))
                        dims[passed[sha]] = size
                finish_sha(sha)

    def submit_process(sha: str) -> None:
        dst = processed_root / sha[:2] / f"{sha}.jpg"
        fut = pool.submit(_process_file, str(cache.object_path(sha)), str(dst), proc_options)
        jobs[fut] = (sha, "process")

    interrupted = False
    try:
        with Downloader(cache, download_options) as dl:
            for res in dl.fetch_many((r.source for r, _ in candidates), retry_failed=retry_failed):
                if res.cached:
                    summary.cached += 1
                    bar.update(cached=1)
                if not res.ok:
                    fail(res.source, res.stage, res.category, res.detail, res.attempts)
                    continue
                if not res.cached:
                    summary.downloaded += 1
                    bar.update(downloaded=1)
                attempts_of[res.source] = res.attempts
                sha = res.sha256
                if sha in waiting:
                    waiting[sha].append(res.source)
                    continue
                waiting[sha] = [res.source]
                dst = processed_root / sha[:2] / f"{sha}.jpg"
                if dst.exists() or Path(str(dst) + ".fail").exists():
                    finish_sha(sha)
                    continue
                if pass_through:
                    fut = checker.submit(
                        _triage_file, str(cache.object_path(sha)), str(dst), proc_options
                    )
                    jobs[fut] = (sha, "check")
                else:
                    submit_process(sha)
                summary.processed += 1
                drain(block_until=16 * max(1, workers))
            drain(block_until=0)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        bar.close()
        checker.shutdown(wait=not interrupted, cancel_futures=True)
        pool.shutdown(wait=not interrupted, cancel_futures=True)
        cache.close()

    summary_timings["fetch_process"] = time.monotonic() - t1
    t2 = time.monotonic()
    # ---- phase 3: split, shard, write ----
    examples: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    split_fallback = 0
    for url, path in ready.items():
        row, labels = by_url[url]
        ex_id = hashlib.sha1(url.encode("utf-8")).hexdigest()
        key = ex_id
        if split_by == "subject":
            if row.subject:
                key = "subject:" + row.subject
            else:
                split_fallback += 1
        examples[_split_of(key, seed, val_fraction)].append(
            {
                "id": ex_id,
                "source": url,
                "path": path,
                "size": dims.get(path),
                "au": labels,
                "valence": row.valence,
                "arousal": row.arousal,
                "emotion": row.emotion,
                "posed": row.posed,
                "subject": row.subject,
            }
        )
    shards = _write_shards(out, examples, num_shards, examples_per_shard, bar_enabled=progress)

    summary_timings["write"] = time.monotonic() - t2
    summary.timings = summary_timings

    # ---- reports ----
    def order(e: dict[str, Any]) -> tuple[Any, ...]:
        return (str(e.get("file", "")), str(e.get("sheet", "")), int(e.get("row", 0)))

    failures.sort(key=order)
    skipped.sort(key=order)
    _write_jsonl(out / "errors.jsonl", failures)
    _write_jsonl(out / SKIPPED_NAME, skipped)
    fail_counts = {c: 0 for c in FAILURE_CATEGORIES}
    fail_counts.update(Counter(f["category"] for f in failures))
    skip_counts = {r: 0 for r in SKIP_REASONS}
    skip_counts.update(Counter(s["reason"] for s in skipped))
    written = sum(len(v) for v in examples.values())
    summary.rows = data.total_rows
    summary.written = written
    summary.failed = len(failures)
    summary.skipped = len(skipped)
    summary.failures = fail_counts
    summary.skipped_by_reason = skip_counts
    summary.splits = {s: len(v) for s, v in examples.items()}
    summary.shards = {s: [Path(p).name for p in shards[s]] for s in SPLITS}
    if summary.rows != written + summary.failed + summary.skipped:
        raise BuildError(  # a bug, never expected: refuse to write an inconsistent manifest
            f"Internal accounting error: rows={summary.rows} != written={written} + "
            f"failed={summary.failed} + skipped={summary.skipped}. Please report this."
        )
    from fer_tf.records import write_manifest

    arguments = {
        "spreadsheets": [str(p) for p in paths],
        "output_dir": str(out),
        "cache_dir": str(cache_root),
        "aus": list(au_ids_sel) if au_ids_sel is not None else None,
        "drop_unknown": drop_unknown,
        "val_fraction": val_fraction,
        "split_by": split_by,
        "seed": seed,
        "num_shards": num_shards,
        "examples_per_shard": examples_per_shard,
        "image_size": image_size,
        "jpeg_quality": jpeg_quality,
        "face_crop": face_crop,
        "face_margin": face_margin,
        "face_fallback": face_fallback,
        "equalize": equalize,
        "reencode_jpeg": reencode_jpeg,
        "concurrency": download_options.concurrency,
        "per_host": download_options.per_host,
        "timeout": download_options.timeout,
        "retries": download_options.retries,
        "max_bytes": download_options.max_bytes,
        "allow_private_hosts": download_options.allow_private_hosts,
        "retry_failed": retry_failed,
        "max_failure_rate": max_failure_rate,
    }
    manifest = {
        "schema_version": 1,
        "fer_tf_version": __version__,
        "created_by": "fer_tf.data.build_records",
        "arguments": arguments,
        "inputs": data.files,
        "sheet_errors": sheet_errors,
        "au_ids": list(au_ids),
        "emotion_names": list(facs.EMOTIONS),
        "image": {
            "format": "jpeg",
            "image_size": image_size,
            "jpeg_quality": jpeg_quality,
            "face_crop": face_crop,
            "equalize": bool(equalize),
            "reencode_jpeg": bool(reencode_jpeg),
        },
        "split": {
            "by": split_by,
            "val_fraction": val_fraction,
            "seed": seed,
            "subject_fallback_to_id": split_fallback,
        },
        "splits": {
            s: {
                "count": len(examples[s]),
                "shards": [Path(p).name for p in shards[s]],
                "shard_counts": shards[f"{s}/counts"],
            }
            for s in SPLITS
        },
        "label_stats": {s: _label_stats(examples[s], au_ids) for s in SPLITS},
        "counts": {
            "rows": summary.rows,
            "written": written,
            "failed": summary.failed,
            "skipped": summary.skipped,
            "blank_rows": data.blank_rows,
        },
        "failures": fail_counts,
        "skipped": skip_counts,
        "errors_file": "errors.jsonl",
        "skipped_file": SKIPPED_NAME,
    }
    summary.manifest = str(write_manifest(out, manifest))
    summary.errors = str(out / "errors.jsonl")
    summary.elapsed = time.monotonic() - t0
    if max_failure_rate is not None and summary.failure_rate > max_failure_rate:
        raise FailureRateExceeded(
            f"{summary.failed} of {summary.rows - summary.skipped} sources failed "
            f"({summary.failure_rate:.1%}), more than max_failure_rate={max_failure_rate:.1%}. "
            f"The records and '{summary.errors}' were written; see the error categories there.",
            summary,
        )
    return summary


def _shard_sizes(n: int, num_shards: int | None, examples_per_shard: int | None) -> list[int]:
    if num_shards is not None:
        k = max(1, min(num_shards, n))
    else:
        eps = examples_per_shard or DEFAULT_EXAMPLES_PER_SHARD
        k = max(1, math.ceil(n / eps))
    return [(i + 1) * n // k - i * n // k for i in range(k)]


def _write_shards(
    out: Path,
    examples: dict[str, list[dict[str, Any]]],
    num_shards: int | None,
    examples_per_shard: int | None,
    bar_enabled: bool,
) -> dict[str, Any]:
    """Write every split's shards (examples sorted by id); remove stale shards and temp files."""
    from PIL import Image

    from fer_tf.records import (
        ExampleRecord,
        TFRecordWriter,
        encode_example,
        list_shards,
        shard_name,
    )

    (out / "manifest.json").unlink(missing_ok=True)  # no manifest describes half-written shards
    plan: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
    for split in SPLITS:
        exs = sorted(examples[split], key=lambda e: e["id"])
        sizes = _shard_sizes(len(exs), num_shards, examples_per_shard)
        start = 0
        plan[split] = []
        for i, size in enumerate(sizes):
            plan[split].append((shard_name(split, i, len(sizes)), exs[start : start + size]))
            start += size
    wanted = {name for split in SPLITS for name, _ in plan[split]}
    for split in SPLITS:
        for p in list_shards(out, split):
            if Path(p).name not in wanted:
                Path(p).unlink()
    for p in out.glob("*.tfrecord.tmp*"):
        p.unlink()

    total = sum(len(exs) for split in SPLITS for _, exs in plan[split])
    bar = None
    if bar_enabled:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="ex", desc="write", dynamic_ncols=True, file=sys.stderr)
    result: dict[str, Any] = {}
    try:
        for split in SPLITS:
            result[split] = []
            result[f"{split}/counts"] = []
            for name, exs in plan[split]:
                final = out / name
                tmp = out / f"{name}.tmp"
                with TFRecordWriter(tmp) as writer:
                    for ex in exs:
                        jpeg = Path(ex["path"]).read_bytes()
                        if ex.get("size"):
                            width, height = ex["size"]
                        else:
                            with Image.open(io.BytesIO(jpeg)) as im:
                                width, height = im.size
                        record = ExampleRecord(
                            image=jpeg,
                            height=height,
                            width=width,
                            source=ex["source"],
                            au=ex["au"],
                            valence=ex["valence"],
                            arousal=ex["arousal"],
                            emotion=ex["emotion"],
                            posed=ex["posed"],
                            subject=ex["subject"],
                            id=ex["id"],
                        )
                        writer.write(encode_example(record))
                        if bar is not None:
                            bar.update(1)
                os.replace(tmp, final)
                result[split].append(str(final))
                result[f"{split}/counts"].append(len(exs))
    finally:
        if bar is not None:
            bar.close()
    return result
