"""Loopback image mirror: SynthFACS faces served on 127.0.0.1 behind an EmotioNet-style spreadsheet.

The real downloader path (``fer-tf-build-records``) runs offline against it in tests, the demo and
the notebooks. Standard library HTTP server (``ThreadingHTTPServer``), no TensorFlow.

Each item is one SynthFACS face with its labels, served at ``/img/<index>.<ext>``, optionally with an
injected *fault* or an image *variant*:

========================  ==========================================  ===========================
fault                     what the server does                        category expected
========================  ==========================================  ===========================
``"404"``                 404 Not Found                               ``http_404``
``"410"``, ``"403"``      410 Gone, 403 Forbidden                     ``http_4xx``
``"429"``                 429 with ``Retry-After`` (always)           ``http_4xx``
``"500"``                 500                                         ``http_5xx``
``"503"``                 503 with ``Retry-After`` (always)           ``http_5xx``
``"flaky"``               503 with ``Retry-After: 0`` for the first   (success)
                          ``flaky_failures`` requests, then the image
``"slow"``                waits ``slow_delay`` s, then the image      (success)
``"timeout"``             accepts, never answers (until ``hang`` s)   ``timeout``
``"reset"``               half the body, then a TCP reset             ``connection``
``"redirect"``            302 to another path serving the image       (success)
``"redirect_loop"``       302 back and forth forever                  ``bad_url``
``"html"``                200 with an HTML page                       ``not_image``
``"truncated"``           200 with the first half of the JPEG         ``corrupt_image``
``"oversized"``           200, ``Content-Length`` = ``oversized_bytes``  ``too_large``
``"oversized_stream"``    200, no length, streams ``oversized_bytes``  ``too_large``
========================  ==========================================  ===========================

Variants (all decode to the same upright face): ``jpeg`` (default), ``png_alpha`` (RGBA PNG),
``gif`` (two frames; the first is the face), ``webp``, ``cmyk`` (CMYK JPEG), ``grey`` (greyscale
JPEG), ``exif_rotated`` (JPEG stored rotated, EXIF orientation 6), ``bmp``, ``png16`` (16-bit grey).
One more, ``png`` (plain RGB PNG, as web photos come), is accepted everywhere but kept out of
:data:`VARIANTS`, whose every entry the test fixtures serve.

Benchmark workloads: ``sizes`` gives every item its own ``(width, height)``
(:func:`web_photo_sizes`, :func:`uniform_sizes`), ``content="photo"`` serves photo-like images
(crops of scikit-image's sample photos with mild sensor-like noise: ~1-3 bits per pixel as JPEG,
like web photos, where SynthFACS faces are very smooth and decode unrealistically fast),
``png_fraction`` serves a share of them as RGB PNG, and ``cache_dir`` keeps the generated bodies
between runs. :attr:`Mirror.first_request_at` and :attr:`Mirror.last_request_at` time a client.

Example::

    with Mirror(20, faults={3: "404", 5: "timeout"}, latency=0.01) as m:
        m.write_spreadsheet("urls.xlsx")
        build_records(["urls.xlsx"], "records", allow_private_hosts=True)
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import socket
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import numpy as np

from fer_tf import facs
from fer_tf.checks import check_choice, check_number, invalid

__all__ = [
    "CONTENTS",
    "FAULTS",
    "VARIANTS",
    "EXPECTED_CATEGORY",
    "MirrorItem",
    "Mirror",
    "encode_variant",
    "photo_image",
    "uniform_sizes",
    "web_photo_sizes",
]

#: Fault kinds and the failure category the downloader must report (None: the image arrives).
EXPECTED_CATEGORY: dict[str, str | None] = {
    "404": "http_404",
    "410": "http_4xx",
    "403": "http_4xx",
    "429": "http_4xx",
    "500": "http_5xx",
    "503": "http_5xx",
    "flaky": None,
    "slow": None,
    "timeout": "timeout",
    "reset": "connection",
    "redirect": None,
    "redirect_loop": "bad_url",
    "html": "not_image",
    "truncated": "corrupt_image",
    "oversized": "too_large",
    "oversized_stream": "too_large",
}
FAULTS: tuple[str, ...] = tuple(EXPECTED_CATEGORY)
VARIANTS: tuple[str, ...] = (
    "jpeg",
    "png_alpha",
    "gif",
    "webp",
    "cmyk",
    "grey",
    "exif_rotated",
    "bmp",
    "png16",
)
#: Accepted as well, but not in VARIANTS (the test fixtures serve one item per entry there).
_EXTRA_VARIANTS: tuple[str, ...] = ("png",)
_ALL_VARIANTS: tuple[str, ...] = VARIANTS + _EXTRA_VARIANTS
#: Content kinds (see Mirror's ``content``).
CONTENTS: tuple[str, ...] = ("synthfacs", "photo")
_EXT = {
    "png": "png",
    "jpeg": "jpg",
    "png_alpha": "png",
    "gif": "gif",
    "webp": "webp",
    "cmyk": "jpg",
    "grey": "jpg",
    "exif_rotated": "jpg",
    "bmp": "bmp",
    "png16": "png",
}
_STATUS_TEXT = {403: "Forbidden", 404: "Not Found", 410: "Gone", 429: "Too Many Requests"}


def encode_variant(image: np.ndarray, variant: str = "jpeg", quality: int = 90) -> bytes:
    """Encode an upright RGB face in one of :data:`VARIANTS`.

    Args:
        image: uint8 RGB ``(H, W, 3)``.
        variant: one of :data:`VARIANTS`, or ``"png"`` (plain RGB PNG).
        quality: JPEG/WebP quality.

    Returns:
        The file bytes. Decoded with EXIF orientation applied and composited on white, every
        variant shows the same face (greyscale ones in grey).

    Raises:
        ValueError: for an unknown variant.
    """
    from PIL import Image

    check_choice("variant", variant, _ALL_VARIANTS)
    im = Image.fromarray(np.ascontiguousarray(image), "RGB")
    buf = io.BytesIO()
    if variant == "jpeg":
        im.save(buf, "JPEG", quality=quality)
    elif variant == "png":
        im.save(buf, "PNG")
    elif variant == "png_alpha":
        alpha = np.full(image.shape[:2], 255, np.uint8)
        alpha[:, : image.shape[1] // 8] = 0  # a transparent band on the left
        rgba = im.convert("RGBA")
        rgba.putalpha(Image.fromarray(alpha, "L"))
        rgba.save(buf, "PNG")
    elif variant == "gif":
        second = Image.fromarray(255 - np.asarray(image), "RGB").convert("P")
        im.convert("P").save(buf, "GIF", save_all=True, append_images=[second], duration=100)
    elif variant == "webp":
        im.save(buf, "WEBP", quality=quality)
    elif variant == "cmyk":
        im.convert("CMYK").save(buf, "JPEG", quality=quality)
    elif variant == "grey":
        im.convert("L").save(buf, "JPEG", quality=quality)
    elif variant == "exif_rotated":
        exif = Image.Exif()
        exif[0x0112] = 6  # "rotate 90 CW to display": stored rotated 90 CCW
        im.transpose(Image.Transpose.ROTATE_90).save(buf, "JPEG", quality=quality, exif=exif)
    elif variant == "bmp":
        im.save(buf, "BMP")
    else:  # png16
        grey = np.asarray(im.convert("L"), dtype=np.uint16) * 257
        Image.fromarray(grey.astype("<u2")).save(buf, "PNG")
    return buf.getvalue()


@dataclass
class MirrorItem:
    """One served URL and its labels.

    Attributes:
        index: position in the mirror (row order in the spreadsheet).
        path: URL path (percent-encoded).
        url: full URL (valid once the mirror is started).
        fault: injected fault or None.
        variant: image variant.
        aus: AU numbers of ``au_labels``.
        au_labels: 1 present, 0 absent, -1 unknown (written as 999).
        valence, arousal, emotion, posed, subject: SynthFACS labels.
        body: the image bytes served when the request succeeds.
        expected_category: the failure category the downloader must report, or None.
    """

    index: int
    path: str
    url: str
    fault: str | None
    variant: str
    aus: tuple[int, ...]
    au_labels: tuple[int, ...]
    valence: float
    arousal: float
    emotion: int
    posed: int
    subject: str
    body: bytes = field(repr=False, default=b"")
    expected_category: str | None = None

    def expected_au(self, au_ids: Sequence[int]) -> tuple[int, ...]:
        """Labels for ``au_ids`` as records must hold them (-1 for AUs not in the sheet)."""
        pos = dict(zip(self.aus, self.au_labels))
        return tuple(pos.get(a, -1) for a in au_ids)


def _faces(
    n: int, seed: int, size: int, aus: Sequence[int], unknown_fraction: float
) -> list[dict[str, Any]]:
    from fer_tf import synthfacs

    out = []
    for face in synthfacs.sample(
        n, seed=seed, size=size, aus=tuple(aus), unknown_fraction=unknown_fraction
    ):
        out.append(
            {
                "image": face.image,
                "au_labels": tuple(int(v) for v in face.au_labels),
                "valence": float(face.valence),
                "arousal": float(face.arousal),
                "emotion": int(face.emotion),
                "posed": int(face.posed),
                "subject": str(face.subject),
            }
        )
    return out


def web_photo_sizes(
    n: int, *, seed: int = 0, min_side: int = 320, max_side: int = 3000
) -> list[tuple[int, int]]:
    """``(width, height)`` of ``n`` web photos, sized like EmotioNet's web images.

    The long side is log-normal (median 900 px, sigma 0.45: ~80% between 500 and 1,600 px),
    clipped to ``[min_side, max_side]``; the aspect ratio is 4:3 (40%), 3:2 (25%), 1:1 (15%),
    16:9 (15%) or 5:4 (5%), in landscape 70% of the time and portrait otherwise.

    Args:
        n: number of sizes.
        seed: random seed (same seed, same sizes).
        min_side: smallest long side.
        max_side: largest long side.

    Returns:
        ``n`` ``(width, height)`` pairs.

    Raises:
        ValueError: for a bad ``n`` or sides.
    """
    check_number("n", n, min=0, integer=True)
    check_number("min_side", min_side, min=1, integer=True)
    check_number("max_side", max_side, min=min_side, integer=True)
    rng = np.random.default_rng([seed, 0x5EB])
    longs = np.clip(np.rint(900.0 * np.exp(0.45 * rng.standard_normal(n))), min_side, max_side)
    ratios = rng.choice([4 / 3, 3 / 2, 1.0, 16 / 9, 5 / 4], size=n, p=[0.4, 0.25, 0.15, 0.15, 0.05])
    portrait = rng.random(n) < 0.3
    out = []
    for long, ratio, tall in zip(longs.astype(int), ratios, portrait):
        short = max(1, int(round(long / ratio)))
        out.append((short, int(long)) if tall else (int(long), short))
    return out


def uniform_sizes(n: int, low: int, high: int, *, seed: int = 0) -> list[tuple[int, int]]:
    """``(width, height)`` pairs with each side drawn uniformly from ``low..high`` (inclusive).

    Args:
        n: number of sizes.
        low: smallest side.
        high: largest side.
        seed: random seed.

    Returns:
        ``n`` ``(width, height)`` pairs.

    Raises:
        ValueError: for a bad ``n``, ``low`` or ``high``.
    """
    check_number("n", n, min=0, integer=True)
    check_number("low", low, min=1, integer=True)
    check_number("high", high, min=low, integer=True)
    sides = np.random.default_rng([seed, 0x512E]).integers(low, high + 1, size=(n, 2))
    return [(int(w), int(h)) for w, h in sides]


#: scikit-image sample photos (bundled with the package, never downloaded) used for "photo".
_PHOTO_SOURCES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)
_PHOTOS: list[np.ndarray] = []


def _photo_sources() -> list[np.ndarray]:
    if not _PHOTOS:
        try:
            import skimage.data
        except ImportError as err:  # pragma: no cover - scikit-image is a dev dependency
            raise ImportError(
                "content='photo' needs scikit-image (pip install 'fer-tf[dev]')."
            ) from err
        _PHOTOS.extend(np.ascontiguousarray(getattr(skimage.data, k)()) for k in _PHOTO_SOURCES)
    return _PHOTOS


def photo_image(
    width: int, height: int, rng: np.random.Generator, noise: float = 3.0
) -> np.ndarray:
    """A photo-like RGB image: a random crop of a sample photo, resized, with sensor-like noise.

    The crop (35-100% of the largest one with the target's aspect ratio, anywhere in one of
    scikit-image's seven colour sample photos, mirrored half the time) is resized with bicubic
    filtering to ``width x height``; Gaussian noise (``noise`` grey levels) then gives upscaled
    crops the fine texture of real photos, so that as JPEG (quality 90) they take ~1-3 bits per
    pixel like web photos, and decoding costs what it costs on them.

    Args:
        width: image width.
        height: image height.
        rng: random generator (the image is a function of its state).
        noise: standard deviation of the added noise, in grey levels.

    Returns:
        uint8 RGB ``(height, width, 3)``.
    """
    from PIL import Image

    photos = _photo_sources()
    src = photos[int(rng.integers(len(photos)))]
    sh, sw = src.shape[:2]
    aspect = width / height
    ch, cw = min(sh, sw / aspect), min(sh, sw / aspect) * aspect
    frac = float(np.sqrt(rng.uniform(0.35, 1.0)))
    ch, cw = max(8, int(ch * frac)), max(8, int(cw * frac))
    y, x = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    crop = src[y : y + ch, x : x + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    im = Image.fromarray(np.ascontiguousarray(crop), "RGB").resize(
        (width, height), Image.Resampling.BICUBIC
    )
    arr = np.asarray(im, np.float32)
    if noise > 0:
        arr = arr + rng.standard_normal(arr.shape, np.float32) * np.float32(noise)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def _bodies(
    faces: list[dict[str, Any]],
    sizes: Sequence[tuple[int, int]] | None,
    content: str,
    variants: Sequence[str],
    quality: int,
    seed: int,
    size: int,
) -> list[bytes]:
    """The served bytes of every item (see Mirror's ``sizes`` and ``content``)."""
    from PIL import Image

    out = []
    for i, (face, variant) in enumerate(zip(faces, variants)):
        if content == "photo":
            w, h = sizes[i] if sizes is not None else (size, size)
            image = photo_image(w, h, np.random.default_rng([seed, 0x9407, i]))
        elif sizes is not None and tuple(sizes[i]) != face["image"].shape[1::-1]:
            im = Image.fromarray(face["image"], "RGB")
            image = np.asarray(im.resize(tuple(sizes[i]), Image.Resampling.BICUBIC))
        else:
            image = face["image"]
        out.append(encode_variant(image, variant, quality))
    return out


def _cached_bodies(cache_dir: str | os.PathLike[str] | None, key: tuple, make: Any) -> list[bytes]:
    """``make()``, kept in ``cache_dir`` under a hash of ``key`` (every input of the bytes)."""
    if cache_dir is None:
        return make()
    import hashlib
    import pickle

    import PIL

    full = (key, PIL.__version__, np.__version__, 1)
    digest = hashlib.sha256(repr(full).encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"mirror-bodies-{digest}.pkl"
    if path.exists():
        with path.open("rb") as fh:
            return pickle.load(fh)  # our own cache file, written below
    bodies = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        pickle.dump(bodies, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return bodies


def _as_assignment(spec: Any, n: int, name: str, allowed: Sequence[str]) -> dict[int, str]:
    if spec is None:
        return {}
    items = spec.items() if isinstance(spec, Mapping) else enumerate(spec)
    out: dict[int, str] = {}
    for k, v in items:
        if v is None:
            continue
        if not isinstance(k, int) or not 0 <= k < n:
            raise invalid(name, f"indexed by item numbers 0..{n - 1}", k)
        check_choice(f"{name}[{k}]", v, allowed)
        out[k] = str(v)
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    mirror: Mirror


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError, BrokenPipeError, TimeoutError, OSError):
            super().handle()

    def _send(self, status: int, body: bytes, ctype: str, headers: Mapping[str, str] = {}) -> None:
        self.send_response(status, _STATUS_TEXT.get(status))
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        m = self.server.mirror
        m._count(self.path)
        m._enter()
        try:
            self._get(m)
        finally:
            m._leave()

    def _get(self, m: Mirror) -> None:
        if m.latency and m._stop.wait(m.latency):
            self.close_connection = True
            return
        path = urlsplit(self.path).path
        if path.startswith("/loop/"):
            nxt = path[:-1] + ("b" if path.endswith("a") else "a")
            self._send(302, b"", "text/plain", {"Location": nxt})
            return
        if path.startswith("/target/"):
            item = m._by_path.get("/img/" + path[len("/target/") :])
            if item is None:
                self._send(404, b"not found", "text/plain")
            else:
                self._send(200, item.body, "image/jpeg")
            return
        item = m._by_path.get(path)
        if item is None:
            self._send(404, b"not found", "text/plain")
            return
        fault = item.fault
        if fault in ("404", "410", "403", "500"):
            self._send(int(fault), b"<html>error</html>", "text/html")
        elif fault in ("503", "429"):
            self._send(int(fault), b"busy", "text/plain", {"Retry-After": str(m.retry_after)})
        elif fault == "flaky" and m.requests(item.path) <= m.flaky_failures:
            self._send(503, b"busy", "text/plain", {"Retry-After": "0"})
        elif fault == "slow":
            if m._stop.wait(m.slow_delay):
                return
            self._send(200, item.body, "image/jpeg")
        elif fault == "timeout":
            m._stop.wait(m.hang)
            self.close_connection = True
        elif fault == "reset":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(item.body)))
            self.end_headers()
            self.wfile.write(item.body[: len(item.body) // 2])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif fault == "redirect":
            self._send(302, b"", "text/plain", {"Location": "/target/" + item.path[len("/img/") :]})
        elif fault == "redirect_loop":
            self._send(302, b"", "text/plain", {"Location": f"/loop/{item.index}/a"})
        elif fault == "html":
            page = b"<!DOCTYPE html><html><body><h1>Photo removed</h1></body></html>"
            self._send(200, page, "image/jpeg")  # a lying Content-Type: content decides
        elif fault == "truncated":
            self._send(200, item.body[: len(item.body) // 2], "image/jpeg")
        elif fault in ("oversized", "oversized_stream"):
            self._oversized(item, with_length=fault == "oversized")
        else:
            self._send(200, item.body, "image/jpeg")

    def _oversized(self, item: MirrorItem, with_length: bool) -> None:
        total = self.server.mirror.oversized_bytes
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        if with_length:
            self.send_header("Content-Length", str(total))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = item.body[:2] + b"\0" * (64 * 1024 - 2)  # starts like a JPEG
        sent = 0
        while sent < total and not self.server.mirror._stop.is_set():
            n = min(len(chunk), total - sent)
            self.wfile.write(chunk[:n])
            sent += n


class Mirror:
    """SynthFACS images on a loopback HTTP server, with per-URL faults and image variants.

    Args:
        n: number of items (URLs).
        faults: fault per item: a mapping ``index -> fault`` or a sequence (item i gets
            ``faults[i]``; ``None`` entries are good). See :data:`FAULTS`.
        variants: image variant per item, same forms; default ``"jpeg"``. See :data:`VARIANTS`.
        seed: SynthFACS seed.
        size: image size in pixels.
        aus: AU columns labelled (a :mod:`fer_tf.facs` set name or numbers).
        unknown_fraction: fraction of AU labels written as 999 (unknown).
        quality: JPEG quality of the served images.
        latency: seconds added to every request.
        slow_delay: delay of the ``"slow"`` fault.
        hang: how long a ``"timeout"`` request is held (ends early on :meth:`stop`).
        retry_after: ``Retry-After`` seconds sent with 503/429.
        flaky_failures: 503 answers a ``"flaky"`` URL gives before it works.
        oversized_bytes: body size of the ``"oversized"`` faults.
        comma_every: every k-th item gets a URL with a comma (0: none).
        host: address to bind (loopback by default).
        port: port (0: an ephemeral one).
        sizes: ``(width, height)`` of every item (``n`` pairs), for benchmark workloads
            (:func:`web_photo_sizes`, :func:`uniform_sizes`); default: every item ``size`` square.
            SynthFACS faces are drawn at ``size`` and resized (bicubic) to their item's size.
        content: ``"synthfacs"`` (the faces, default) or ``"photo"`` (:func:`photo_image`: photo-
            like crops, which decode like web photos; labels are still SynthFACS's, drawn at
            32 px). ``"photo"`` needs scikit-image.
        png_fraction: share of the items without an assigned variant served as plain RGB PNG
            (``"png"`` variant), picked at random with ``seed``.
        cache_dir: keep the generated image bytes here between runs (keyed by every parameter
            that shapes them, and the Pillow and NumPy versions); None: no cache.

    Raises:
        ValueError: for a bad fault/variant assignment or parameter.
    """

    def __init__(
        self,
        n: int = 16,
        *,
        faults: Mapping[int, str | None] | Sequence[str | None] | None = None,
        variants: Mapping[int, str | None] | Sequence[str | None] | None = None,
        seed: int = 0,
        size: int = 64,
        aus: str | Sequence[int] = "synthfacs15",
        unknown_fraction: float = 0.1,
        quality: int = 90,
        latency: float = 0.0,
        slow_delay: float = 0.3,
        hang: float = 30.0,
        retry_after: int = 1,
        flaky_failures: int = 1,
        oversized_bytes: int = 3 * 1024 * 1024,
        comma_every: int = 5,
        host: str = "127.0.0.1",
        port: int = 0,
        sizes: Sequence[tuple[int, int]] | None = None,
        content: str = "synthfacs",
        png_fraction: float = 0.0,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        check_number("n", n, min=0, integer=True)
        check_choice("content", content, CONTENTS)
        check_number("png_fraction", png_fraction, min=0.0, max=1.0)
        if sizes is not None:
            sizes = [(int(w), int(h)) for w, h in sizes]
            if len(sizes) != n or any(w < 1 or h < 1 for w, h in sizes):
                raise invalid("sizes", f"{n} (width, height) pairs of positive sides", sizes[:3])
        self.n = n
        self.aus = facs.parse_aus(aus)
        self.latency = float(latency)
        self.slow_delay = float(slow_delay)
        self.hang = float(hang)
        self.retry_after = int(retry_after)
        self.flaky_failures = int(flaky_failures)
        self.oversized_bytes = int(oversized_bytes)
        self.host = host
        self._port = port
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()
        self._active = 0
        #: Most requests handled at the same time (for concurrency checks).
        self.max_active = 0
        #: ``time.monotonic()`` of the first and the latest request since the last
        #: :meth:`reset_counts` (None before any): CLOCK_MONOTONIC is system-wide on Linux, so a
        #: benchmark in another process can time a client from its first request.
        self.first_request_at: float | None = None
        self.last_request_at: float | None = None
        fault_of = _as_assignment(faults, n, "faults", FAULTS)
        variant_of = _as_assignment(variants, n, "variants", _ALL_VARIANTS)
        if png_fraction > 0:
            pick = np.random.default_rng([seed, 0x96]).random(n) < png_fraction
            variant_of = {**{i: "png" for i in range(n) if pick[i]}, **variant_of}
        face_size = 32 if content == "photo" else size
        faces = _faces(n, seed, face_size, self.aus, unknown_fraction)
        kinds = [variant_of.get(i, "jpeg") for i in range(n)]
        bodies = _cached_bodies(
            cache_dir,
            (n, seed, size, self.aus, unknown_fraction, quality, sizes, content, kinds),
            lambda: _bodies(faces, sizes, content, kinds, quality, seed, size),
        )
        self.items: list[MirrorItem] = []
        for i, face in enumerate(faces):
            variant = kinds[i]
            name = (
                f"{i:05d},s={size}"
                if comma_every and i % comma_every == comma_every - 1
                else f"{i:05d}"
            )
            path = "/img/" + quote(f"{name}.{_EXT[variant]}", safe=",=.")
            fault = fault_of.get(i)
            self.items.append(
                MirrorItem(
                    index=i,
                    path=path,
                    url="",
                    fault=fault,
                    variant=variant,
                    aus=self.aus,
                    au_labels=face["au_labels"],
                    valence=face["valence"],
                    arousal=face["arousal"],
                    emotion=face["emotion"],
                    posed=face["posed"],
                    subject=face["subject"],
                    body=bodies[i],
                    expected_category=EXPECTED_CATEGORY[fault] if fault else None,
                )
            )
        self._by_path = {it.path: it for it in self.items}
        self._by_path.update({unquote(it.path): it for it in self.items})

    # -- lifecycle --

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("The mirror is not running; call start() or use it as a context.")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    def start(self, port: int | None = None) -> Mirror:
        """Bind and serve in a background thread (nothing happens if already serving).

        Args:
            port: bind this port instead of the one given to the constructor (0: a free one).

        Returns:
            self.

        Raises:
            OSError: the port cannot be bound (e.g. it is in use).
        """
        if self._server is not None:
            return self
        if port is not None:
            self._port = port
        self._stop.clear()
        server = _Server((self.host, self._port), _Handler)
        server.mirror = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        for it in self.items:
            it.url = self.base_url + it.path
        return self

    def stop(self) -> None:
        """Stop serving: wakes held requests, closes the socket, joins the server thread."""
        if self._server is None:
            return
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Mirror:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- bookkeeping --

    def _count(self, path: str) -> None:
        key = unquote(urlsplit(path).path)
        now = time.monotonic()
        with self._counts_lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            if self.first_request_at is None:
                self.first_request_at = now
            self.last_request_at = now

    def _enter(self) -> None:
        with self._counts_lock:
            self._active += 1
            self.max_active = max(self.max_active, self._active)

    def _leave(self) -> None:
        with self._counts_lock:
            self._active -= 1

    def requests(self, path: str | None = None) -> int:
        """Requests received for ``path`` (an item path or URL), or in total when None."""
        with self._counts_lock:
            if path is None:
                return sum(self._counts.values())
            return self._counts.get(unquote(urlsplit(path).path), 0)

    def reset_counts(self) -> None:
        """Forget request counts (``"flaky"`` URLs fail again), ``max_active`` and the
        first/last request times."""
        with self._counts_lock:
            self._counts.clear()
            self.max_active = 0
            self.first_request_at = None
            self.last_request_at = None

    @property
    def good(self) -> list[MirrorItem]:
        """Items whose image must arrive."""
        return [it for it in self.items if it.expected_category is None]

    @property
    def bad(self) -> list[MirrorItem]:
        """Items that must fail."""
        return [it for it in self.items if it.expected_category is not None]

    # -- spreadsheets --

    def rows(
        self, layout: str = "manual", *, header: bool | None = None, meta: bool | None = None
    ) -> list[list[Any]]:
        """The spreadsheet as a list of rows (first row the header when there is one).

        Args:
            layout: ``"manual"`` (URL then AU1..AU60, EmotioNet manual annotations),
                ``"2020"`` (``URL``, ``AU 1``... for the mirror's AUs) or ``"datafile"``
                (``URL``, ``URL_orig``, ``AU1``..``AU60``, EmotioNet's auto-annotated files).
            header: write a header row (default: False for ``manual``, True otherwise).
            meta: add valence, arousal, emotion, posed and subject columns (needs a header;
                default: same as ``header``).

        Returns:
            Rows of cells; AU labels are 1/0/999.

        Raises:
            ValueError: for an unknown layout, or ``meta`` without a header.
        """
        check_choice("layout", layout, ("manual", "2020", "datafile"))
        header = (layout != "manual") if header is None else header
        meta = header if meta is None else meta
        if meta and not header:
            raise ValueError("The 'meta' columns need a header row (header=True).")
        if self._server is None:
            raise RuntimeError("Start the mirror first: URLs carry its port.")
        cols = self.aus if layout == "2020" else tuple(range(1, 61))
        rows: list[list[Any]] = []
        if header:
            names = [f"AU {a}" for a in cols] if layout == "2020" else [f"AU{a}" for a in cols]
            first = ["URL", "URL_orig"] if layout == "datafile" else ["URL"]
            extra = ["valence", "arousal", "emotion", "posed", "subject"] if meta else []
            rows.append(first + names + extra)
        for it in self.items:
            lab = dict(zip(it.aus, it.au_labels))
            values = [999 if lab.get(a, -1) == -1 else lab[a] for a in cols]
            first = [it.url, it.url + "?orig=1"] if layout == "datafile" else [it.url]
            extra = (
                [it.valence, it.arousal, it.emotion, 999 if it.posed < 0 else it.posed, it.subject]
                if meta
                else []
            )
            rows.append(first + values + extra)
        return rows

    def write_spreadsheet(
        self,
        path: str | os.PathLike[str],
        *,
        layout: str | None = None,
        header: bool | None = None,
        meta: bool | None = None,
        sheets: int = 1,
        extra_rows: Iterable[Sequence[Any]] = (),
    ) -> Path:
        """Write the item list as an EmotioNet-style spreadsheet.

        Args:
            path: ``.xlsx`` (openpyxl), ``.csv`` or ``.tsv``/``.txt``.
            layout: see :meth:`rows`; default ``"manual"`` for xlsx, ``"2020"`` for csv and
                ``"datafile"`` for tsv/txt.
            header, meta: see :meth:`rows`.
            sheets: xlsx only: spread the rows over this many sheets (each with the header).
            extra_rows: rows appended at the end (e.g. bad rows for tests).

        Returns:
            The path written.

        Raises:
            ValueError: for an unknown extension or layout.
        """
        p = Path(path)
        ext = p.suffix.lower()
        if ext not in (".xlsx", ".csv", ".tsv", ".txt"):
            raise invalid("path", "a file name ending in .xlsx, .csv, .tsv or .txt", p.name)
        if layout is None:
            layout = {".xlsx": "manual", ".csv": "2020"}.get(ext, "datafile")
        rows = self.rows(layout, header=header, meta=meta)
        has_header = (layout != "manual") if header is None else header
        head, body = (rows[:1], rows[1:]) if has_header else ([], rows)
        body = body + [list(r) for r in extra_rows]
        p.parent.mkdir(parents=True, exist_ok=True)
        if ext == ".xlsx":
            import openpyxl

            wb = openpyxl.Workbook(write_only=True)
            k = max(1, int(sheets))
            per = math.ceil(len(body) / k) if body else 0
            for s in range(k):
                ws = wb.create_sheet(f"Sheet{s + 1}")
                for r in head + body[s * per : (s + 1) * per]:
                    ws.append(r)
            wb.save(p)
        else:
            delim = "," if ext == ".csv" else "\t"
            with p.open("w", encoding="utf-8", newline="") as fh:
                w = csv.writer(fh, delimiter=delim)
                for r in head + body:
                    w.writerow(r)
        return p
