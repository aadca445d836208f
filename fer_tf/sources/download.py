"""Concurrent, resumable, defensive image downloads into a content-addressed cache.

Pure Python (``urllib3`` + Pillow for format sniffing); no TensorFlow.

- I/O threads sharing one thread-safe ``urllib3.PoolManager`` (keep-alive connections per host;
  ``requests`` is a layer over it that costs ~0.5 ms CPU per request, so it is used only when a
  proxy is configured in the environment); at most ``concurrency`` requests in flight and at most
  ``2 * concurrency`` URLs queued, so memory stays bounded (bodies stream to disk).
- At most ``per_host`` concurrent requests per host name.
- Connect and read timeouts, plus an overall deadline per response body.
- Retries with exponential backoff and jitter on 429, 5xx, timeouts and connection errors, honouring
  ``Retry-After`` (capped at ``retry_after_max``); no retry on other 4xx.
- A byte cap (``max_bytes``) checked against ``Content-Length`` and enforced while streaming.
- Only ``http`` and ``https``; redirects followed by hand and every hop re-checked (scheme, host,
  address); private, loopback, link-local, multicast and reserved addresses refused unless
  ``allow_private_hosts`` (spreadsheets are third-party input). The address check resolves the host
  name before the request; a DNS answer that changes between the check and the connection is not
  detected.
- Content is accepted only if Pillow recognises it as an image, whatever its ``Content-Type``.
- Originals are stored once under ``cache_dir/objects/<sha256[:2]>/<sha256>`` (written to a temporary
  name, then renamed), and ``cache_dir/index.jsonl`` maps each URL to its content hash or to its
  failure, so a rerun never downloads a URL twice.

Every failure gets exactly one category from :data:`FAILURE_CATEGORIES`.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import io
import ipaddress
import json
import os
import random
import socket
import sqlite3
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from fer_tf.checks import check_number

__all__ = [
    "FAILURE_CATEGORIES",
    "RETRYABLE_CATEGORIES",
    "DownloadOptions",
    "FetchResult",
    "DownloadCache",
    "Downloader",
    "SharedSlots",
    "check_url",
]

#: Every failed source gets exactly one of these (``errors.jsonl``, manifest ``failures``).
FAILURE_CATEGORIES = (
    "http_404",
    "http_4xx",
    "http_5xx",
    "timeout",
    "connection",
    "dns",
    "tls",
    "too_large",
    "not_image",
    "corrupt_image",
    "blocked_host",
    "bad_url",
)
#: Categories that are retried (with backoff) within one run.
RETRYABLE_CATEGORIES = ("http_5xx", "timeout", "connection", "dns")

_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024
_SNIFF_BYTES = 1024 * 1024  # bodies up to this size are sniffed from memory


class _Response(NamedTuple):
    """The parts of an HTTP response the downloader uses (urllib3 or requests underneath)."""

    status: int
    reason: str
    headers: Any  # case-insensitive mapping
    chunks: Callable[[int], Iterator[bytes]]
    close: Callable[[], None]


@dataclass
class DownloadOptions:
    """Downloader settings.

    Attributes:
        concurrency: I/O threads (requests in flight).
        per_host: concurrent requests per host name.
        timeout: read timeout in seconds (time allowed between bytes).
        connect_timeout: connect timeout; ``None`` uses ``min(timeout, 10)``.
        retries: extra attempts after the first for retryable failures.
        backoff: base delay in seconds; attempt k waits ``backoff * 2**(k-1)`` times a random
            jitter factor in [0.5, 1.5], at most ``backoff_max``.
        backoff_max: upper bound of one backoff delay.
        retry_after_max: upper bound on a server's ``Retry-After``.
        max_bytes: largest body accepted.
        max_redirects: redirect hops followed before giving up (``bad_url``).
        allow_private_hosts: allow private, loopback and link-local addresses.
        body_deadline: seconds allowed for a whole response; ``None`` uses ``max(60, 6 * timeout)``.
        user_agent: the ``User-Agent`` header.
    """

    concurrency: int = 32
    per_host: int = 16
    timeout: float = 10.0
    connect_timeout: float | None = None
    retries: int = 3
    backoff: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    max_bytes: int = 20 * 1024 * 1024
    max_redirects: int = 5
    allow_private_hosts: bool = False
    body_deadline: float | None = None
    user_agent: str = "fer_tf-build-records/0.1 (+https://github.com/fer-tf)"

    def validate(self) -> None:
        """Check every field.

        Raises:
            ValueError: naming the bad field, its value and what is accepted.
        """
        for name in ("concurrency", "per_host", "max_bytes"):
            check_number(name, getattr(self, name), min=1, integer=True)
        for name in ("retries", "max_redirects"):
            check_number(name, getattr(self, name), min=0, integer=True)
        for name in ("backoff", "backoff_max", "retry_after_max"):
            check_number(name, getattr(self, name), min=0)
        check_number("timeout", self.timeout, gt=0)
        for name in ("connect_timeout", "body_deadline"):
            check_number(name, getattr(self, name), gt=0, allow_none=True)


@dataclass
class FetchResult:
    """Outcome of one URL.

    Attributes:
        source: the URL as given.
        ok: True when an image is in the cache.
        sha256: content hash of the original (cache key) when ok.
        size: bytes of the original.
        category: failure category (one of :data:`FAILURE_CATEGORIES`) when not ok.
        detail: human-readable failure detail.
        attempts: HTTP attempts made (0 when nothing was sent, e.g. a bad URL).
        stage: ``"download"`` or ``"decode"`` (a remembered decode failure).
        cached: answered from the cache index without any network access.
        final_url: the URL after redirects.
    """

    source: str
    ok: bool
    sha256: str = ""
    size: int = 0
    category: str = ""
    detail: str = ""
    attempts: int = 0
    stage: str = "download"
    cached: bool = False
    final_url: str = ""


def _proxy_env_set() -> bool:
    """True when a proxy (or a proxy exception list) is configured in the environment."""
    return any(k.lower().endswith("_proxy") and v for k, v in os.environ.items())


class _Failure(Exception):
    def __init__(self, category: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.category = category
        self.detail = detail
        self.retry_after = retry_after


# --------------------------------------------------------------------------------------------
# Cache


#: Index lines a :class:`DownloadCache` keeps in memory; older ones move to a temporary SQLite
#: database (``sqlite3.connect("")``: private, deleted on close), so a cache of millions of
#: URLs costs a constant amount of memory to open.
INDEX_MEMORY_LINES = 4096


class _IndexLines:
    """URL -> its last index line: a dict of at most ``limit`` entries, the rest in SQLite.

    The dict holds the newest lines (it is a write buffer): a lookup asks it first, and a flush
    replaces older database rows, so the last line for a URL always wins. Not thread-safe: the
    cache's lock guards every call after loading.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._new: dict[str, str] = {}
        self._db: sqlite3.Connection | None = None

    def get(self, url: str) -> str | None:
        line = self._new.get(url)
        if line is None and self._db is not None:
            row = self._db.execute("SELECT line FROM idx WHERE url = ?", (url,)).fetchone()
            line = None if row is None else row[0]
        return line

    def set(self, url: str, line: str) -> None:
        self._new[url] = line
        if len(self._new) >= self.limit:
            self._flush()

    def pop(self, url: str) -> None:
        self._new.pop(url, None)
        if self._db is not None:
            self._db.execute("DELETE FROM idx WHERE url = ?", (url,))

    def _flush(self) -> None:
        if self._db is None:
            self._db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=OFF")
            self._db.execute("CREATE TABLE idx (url TEXT PRIMARY KEY, line TEXT) WITHOUT ROWID")
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO idx VALUES (?, ?)", self._new.items())
        self._db.execute("COMMIT")
        self._new = {}

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        self._new = {}


class DownloadCache:
    """Content-addressed store of original downloads plus a URL index.

    Layout under ``root``: ``objects/<h[:2]>/<h>`` (originals, named by SHA-256), ``tmp/`` (bodies
    being downloaded; removed on open), ``index.jsonl`` (append-only; one JSON object per line,
    the last line for a URL wins; a torn last line after a crash is ignored).

    Args:
        root: cache directory (created).

    Raises:
        OSError: the directory cannot be created or written.
    """

    INDEX = "index.jsonl"
    #: Keep the lines appended by this instance for :meth:`lookup`. A build asks about each URL
    #: once, before recording it, and sets this to False: its memory then holds only the index it
    #: started from, not one line per URL of the run.
    remember_new: bool = True

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        for stale in self.tmp.iterdir():
            # Bodies of downloads interrupted by a crash; harmless to remove.
            with contextlib.suppress(OSError):
                stale.unlink()
        self._lock = threading.Lock()
        # URL -> its last index line, kept as the JSON text (a third of a parsed dict's memory);
        # past INDEX_MEMORY_LINES lines, in a temporary SQLite database.
        self._entries = _IndexLines(INDEX_MEMORY_LINES)
        index = self.root / self.INDEX
        if index.exists():
            with index.open("r", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                        self._entries.set(str(entry["url"]), line.rstrip("\n"))
                    except (ValueError, KeyError, TypeError):
                        continue  # torn line from a killed run
        self._fh: Any = index.open("a", encoding="utf-8")
        if index.stat().st_size:
            with index.open("rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    self._fh.write("\n")
                    self._fh.flush()

    @classmethod
    def objects_only(cls, root: str | os.PathLike[str]) -> DownloadCache:
        """The object store of a cache that another process has open (a build's worker).

        Nothing is cleaned and the index is neither read nor written: :meth:`record` raises, and
        :meth:`lookup` knows nothing. Originals are stored and read as usual.

        Args:
            root: the cache directory (already created by the owning :class:`DownloadCache`).

        Returns:
            The store.
        """
        self = cls.__new__(cls)
        self.root = Path(root)
        self.objects = self.root / "objects"
        self.tmp = self.root / "tmp"
        self._lock = threading.Lock()
        self._entries = _IndexLines(1)
        self._fh = None
        return self

    def object_path(self, sha256: str) -> Path:
        """Path of the original with this hash."""
        return self.objects / sha256[:2] / sha256

    def lookup(self, url: str) -> dict[str, Any] | None:
        """Index entry of ``url`` (``{"url", "ok", "sha256"...}`` or a failure), or None."""
        with self._lock:
            line = self._entries.get(url)
        return None if line is None else dict(json.loads(line))

    def _append(self, entry: dict[str, Any]) -> None:
        if self._fh is None:
            raise RuntimeError("this DownloadCache is objects_only(): its index belongs to another")
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False)
        with self._lock:
            if self.remember_new:
                self._entries.set(entry["url"], line)
            else:
                self._entries.pop(entry["url"])  # never answer with an outdated line
            self._fh.write(line + "\n")
            self._fh.flush()

    def record(self, result: FetchResult, max_bytes: int | None = None) -> None:
        """Remember a result (success or failure) for ``result.source``."""
        entry: dict[str, Any] = {"url": result.source, "ok": result.ok}
        if result.ok:
            entry.update(sha256=result.sha256, size=result.size)
        else:
            entry.update(
                category=result.category,
                detail=result.detail,
                attempts=result.attempts,
                stage=result.stage,
            )
            if result.category == "too_large" and max_bytes is not None:
                entry["max_bytes"] = max_bytes
        self._append(entry)

    def store(self, tmp_path: Path, sha256: str) -> Path:
        """Move a fully written temporary file into the store (atomic rename)."""
        dst = self.object_path(sha256)
        # Same name, same bytes: replacing an object already there changes nothing. One rename,
        # and a mkdir only the first time a prefix directory is used.
        try:
            os.replace(tmp_path, dst)
        except FileNotFoundError:
            if not tmp_path.exists():
                raise
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_path, dst)
        return dst

    def new_tmp(self) -> tuple[int, Path]:
        """A new temporary file in ``tmp/`` (fd, path)."""
        fd, name = tempfile.mkstemp(dir=self.tmp, suffix=".part")
        return fd, Path(name)

    def close(self) -> None:
        """Close the index file (:meth:`lookup` still answers)."""
        with self._lock:
            if self._fh is not None and not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> DownloadCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# URL and address checks


def check_url(url: str) -> tuple[str, str, int]:
    """Validate a URL's syntax.

    Args:
        url: the URL.

    Returns:
        ``(scheme, host, port)``.

    Raises:
        _Failure: ``bad_url`` for a non-http(s) scheme, a missing host or a malformed URL.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _Failure("bad_url", f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _Failure(
            "bad_url",
            f"unsupported scheme {parts.scheme!r}; accepted: http, https"
            if scheme
            else "no scheme; accepted: http://..., https://...",
        )
    host = parts.hostname
    if not host:
        raise _Failure("bad_url", "no host name in the URL")
    if any(c.isspace() for c in host):
        raise _Failure("bad_url", f"host name {host!r} contains whitespace")
    return scheme, host, port or (443 if scheme == "https" else 80)


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


class _Resolver:
    """Resolves host names once per run (successes cached) and applies the address policy."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._cache: dict[tuple[str, int], list[str]] = {}
        self._lock = threading.Lock()

    def check(self, host: str, port: int) -> None:
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
            addrs = [str(literal)]
        except ValueError:
            with self._lock:
                addrs = self._cache.get((host, port), [])
            if not addrs:
                try:
                    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                except (socket.gaierror, UnicodeError) as exc:
                    raise _Failure("dns", f"cannot resolve {host!r}: {exc}") from None
                addrs = sorted({str(info[4][0]).split("%")[0] for info in infos})
                with self._lock:
                    self._cache[(host, port)] = addrs
        if self.allow_private:
            return
        for a in addrs:
            if not _is_public(ipaddress.ip_address(a)):
                raise _Failure(
                    "blocked_host",
                    f"{host!r} resolves to non-public address {a} (private, loopback or "
                    f"link-local); pass allow_private_hosts=True / --allow-private-hosts to allow",
                )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _classify_exception(exc: BaseException) -> tuple[str, str]:
    """Map a urllib3/requests/socket exception to a failure category."""
    import urllib3.exceptions as u3

    text = f"{type(exc).__name__}: {exc}"
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    names = " ".join(type(x).__name__ for x in chain) + " " + text
    # urllib3's NewConnectionError (and NameResolutionError) subclass ConnectTimeoutError: test
    # them first.
    if isinstance(exc, u3.NameResolutionError) or "NameResolutionError" in names:
        return "dns", text
    if "gaierror" in names or "Name or service" in text:
        return "dns", text
    if isinstance(exc, u3.SSLError) or "SSLError" in names or "CertificateError" in names:
        return "tls", text
    if isinstance(exc, u3.NewConnectionError):
        return ("timeout" if "timed out" in text.lower() else "connection"), text
    if isinstance(exc, (u3.TimeoutError, socket.timeout, TimeoutError)):
        return "timeout", text
    if "Timeout" in names or "timed out" in text.lower():
        return "timeout", text
    if isinstance(exc, (u3.LocationValueError, u3.URLSchemeUnknown)):
        return "bad_url", text
    if any(
        n in names
        for n in (
            "LocationParseError",
            "LocationValueError",
            "InvalidURL",
            "MissingSchema",
            "InvalidSchema",
            "URLRequired",
        )
    ):
        return "bad_url", text
    return "connection", text


def _sniff_image(path_or_data: Path | bytes) -> str:
    """Pillow's format name for the file (or the whole body), or raise ``not_image``."""
    from PIL import Image, UnidentifiedImageError

    src = io.BytesIO(path_or_data) if isinstance(path_or_data, bytes) else path_or_data
    try:
        with Image.open(src) as im:
            return str(im.format or "unknown")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        from fer_tf.preprocessing.decode import open_error_detail

        reason = open_error_detail(exc)
        raise _Failure(
            "not_image", f"the body is not an image Pillow can read ({reason})"
        ) from None
    except Image.DecompressionBombError as exc:
        raise _Failure("too_large", f"decompression bomb: {exc}") from None


# --------------------------------------------------------------------------------------------
# Downloader


class SharedSlots:
    """Request limits shared by the threads of several processes (the build's workers).

    ``per_host`` requests per host name and ``concurrency`` requests in all, counted across every
    process the object is handed to (POSIX semaphores; create it before starting the processes).
    Host names are hashed (CRC-32) into ``buckets`` semaphores: two hosts that share a bucket share
    its ``per_host`` budget, so no host ever gets more than ``per_host`` requests at once, and a
    colliding host may get fewer.

    Args:
        per_host: requests per host name.
        concurrency: requests in all.
        context: a ``multiprocessing`` context (its semaphores), or None for ``threading`` ones
            (one process).
        buckets: semaphores the host names are hashed into.
    """

    def __init__(
        self, per_host: int, concurrency: int, context: Any = None, buckets: int = 256
    ) -> None:
        make = threading.BoundedSemaphore if context is None else context.BoundedSemaphore
        self.total = make(concurrency)
        self.hosts = [make(per_host) for _ in range(buckets)]

    @contextlib.contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Hold one request slot of ``host`` (and one of the total) for the ``with`` block."""
        sem = self.hosts[zlib.crc32(host.encode("utf-8", "surrogatepass")) % len(self.hosts)]
        with self.total, sem:
            yield


class Downloader:
    """Fetch URLs into a :class:`DownloadCache`, concurrently and defensively.

    Args:
        cache: where originals and the URL index live.
        options: settings (validated).
        slots: request limits shared with other processes; None: this downloader's own per-host
            semaphores (its threads are then the only ones counted).

    Raises:
        ValueError: for invalid options.
    """

    def __init__(
        self,
        cache: DownloadCache,
        options: DownloadOptions | None = None,
        slots: SharedSlots | None = None,
    ) -> None:
        self.cache = cache
        self.options = options or DownloadOptions()
        self.options.validate()
        self._slots = slots
        self._local = threading.local()
        self._sessions: list[Any] = []
        self._sessions_lock = threading.Lock()
        self._pool: Any = None
        self._use_requests = _proxy_env_set()
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._hosts_lock = threading.Lock()
        self._resolver = _Resolver(self.options.allow_private_hosts)
        self._stop = threading.Event()
        self.rng = random.Random()

    # -- plumbing --

    def _pool_manager(self) -> Any:
        """The shared ``urllib3.PoolManager`` (thread-safe; created on first use)."""
        with self._sessions_lock:
            if self._pool is None:
                import urllib3

                kw: dict[str, Any] = {}
                with contextlib.suppress(ImportError):
                    import certifi  # the CA bundle requests uses, so behaviour stays the same

                    kw["ca_certs"] = certifi.where()
                self._pool = urllib3.PoolManager(
                    num_pools=64,
                    maxsize=self.options.per_host,
                    block=False,
                    retries=False,
                    headers={
                        "User-Agent": self.options.user_agent,
                        "Accept": "image/*,*/*;q=0.5",
                    },
                    **kw,
                )
            return self._pool

    def _open(self, url: str, timeouts: tuple[float, float]) -> _Response:
        """Send one GET (no redirects followed, no retries); the body is not read yet."""
        if self._use_requests:
            resp = self._session().get(url, stream=True, allow_redirects=False, timeout=timeouts)
            return _Response(
                resp.status_code,
                resp.reason or "",
                resp.headers,
                lambda n: resp.iter_content(n),
                resp.close,
            )
        import urllib3

        r = self._pool_manager().request(
            "GET",
            url,
            preload_content=False,
            redirect=False,
            retries=False,
            timeout=urllib3.Timeout(connect=timeouts[0], read=timeouts[1]),
        )

        def close() -> None:  # like requests' Response.close()
            if not r.isclosed():
                r.close()
            r.release_conn()

        return _Response(r.status, r.reason or "", r.headers, lambda n: r.stream(n), close)

    def _session(self) -> Any:
        """A ``requests.Session`` for this thread (only used when a proxy is configured)."""
        s = getattr(self._local, "session", None)
        if s is None:
            import requests
            from requests.adapters import HTTPAdapter

            s = requests.Session()
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=4, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.trust_env = True  # proxies from the environment: the reason this path exists
            s.headers["User-Agent"] = self.options.user_agent
            s.headers["Accept"] = "image/*,*/*;q=0.5"
            self._local.session = s
            with self._sessions_lock:
                self._sessions.append(s)
        return s

    def _host_slot(self, host: str) -> Any:
        if self._slots is not None:
            return self._slots.slot(host)
        with self._hosts_lock:
            sem = self._hosts.get(host)
            if sem is None:
                sem = self._hosts[host] = threading.BoundedSemaphore(self.options.per_host)
            return sem

    def close(self) -> None:
        """Stop waiting threads (backoff sleeps end at once) and close the sessions."""
        self._stop.set()
        with self._sessions_lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()
            if self._pool is not None:
                self._pool.clear()

    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one URL --

    def _get_once(self, url: str) -> tuple[str, int, str, bytes | None]:
        """One attempt including redirects: returns (sha256, size, final_url, body or None)."""
        o = self.options
        timeouts = (o.connect_timeout or min(o.timeout, 10.0), o.timeout)
        deadline = time.monotonic() + (o.body_deadline or max(60.0, 6 * o.timeout))
        current = url
        for hop in range(o.max_redirects + 2):
            if hop > o.max_redirects:
                raise _Failure(
                    "bad_url",
                    f"too many redirects (more than {o.max_redirects}); last hop {current!r}",
                )
            _, host, port = check_url(current)
            self._resolver.check(host, port)
            if self._stop.is_set():
                raise _Failure("connection", "interrupted")
            with self._host_slot(host):
                resp = self._open(current, timeouts)
                try:
                    status = resp.status
                    if status in _REDIRECTS:
                        loc = resp.headers.get("Location")
                        if not loc:
                            raise _Failure("bad_url", f"HTTP {status} redirect without Location")
                        current = urljoin(current, loc.strip())
                        continue
                    if status == 404:
                        raise _Failure("http_404", "HTTP 404 Not Found")
                    if status == 429:
                        raise _Failure(
                            "http_4xx",
                            "HTTP 429 Too Many Requests",
                            _retry_after(resp.headers.get("Retry-After")),
                        )
                    if 400 <= status < 500:
                        raise _Failure("http_4xx", f"HTTP {status} {resp.reason}".strip())
                    if status >= 500:
                        raise _Failure(
                            "http_5xx",
                            f"HTTP {status} {resp.reason}".strip(),
                            _retry_after(resp.headers.get("Retry-After")),
                        )
                    if status < 200 or status >= 300:
                        raise _Failure("http_4xx", f"unexpected HTTP status {status}")
                    sha, size, body = self._save_body(resp, deadline)
                    return sha, size, current, body
                finally:
                    resp.close()
        raise AssertionError("unreachable")  # pragma: no cover

    def _save_body(self, resp: _Response, deadline: float) -> tuple[str, int, bytes | None]:
        o = self.options
        length = resp.headers.get("Content-Length")
        if length and length.strip().isdigit() and int(length) > o.max_bytes:
            raise _Failure(
                "too_large", f"Content-Length {int(length)} exceeds max_bytes={o.max_bytes}"
            )
        fd, tmp = self.cache.new_tmp()
        h = hashlib.sha256()
        size = 0
        ok = False
        head = bytearray()  # the first bytes, for sniffing without reading the file back
        try:
            with os.fdopen(fd, "wb", buffering=0) as fh:  # chunks are 64 KiB already
                for chunk in resp.chunks(_CHUNK):
                    size += len(chunk)
                    if size > o.max_bytes:
                        raise _Failure(
                            "too_large", f"body exceeds max_bytes={o.max_bytes} while streaming"
                        )
                    if time.monotonic() > deadline:
                        raise _Failure("timeout", "the response did not finish before the deadline")
                    if self._stop.is_set():
                        raise _Failure("connection", "interrupted")
                    h.update(chunk)
                    view = memoryview(chunk)
                    while view:  # unbuffered: a short write is possible, if rare
                        view = view[fh.write(view) :]
                    if len(head) < _SNIFF_BYTES:
                        head += chunk
            if size == 0:
                raise _Failure("not_image", "empty body")
            body = bytes(head) if size <= len(head) else None
            _sniff_image(body if body is not None else tmp)
            sha = h.hexdigest()
            self.cache.store(tmp, sha)
            ok = True
            return sha, size, body
        finally:
            if not ok:
                tmp.unlink(missing_ok=True)

    def fetch(self, url: str) -> FetchResult:
        """Download one URL into the cache (ignores the index) and record the outcome there.

        Args:
            url: the URL, as written in the spreadsheet.

        Returns:
            A :class:`FetchResult`; failures are results, not exceptions.
        """
        result, _ = self.fetch_data(url)
        self.cache.record(result, max_bytes=self.options.max_bytes)
        return result

    def fetch_data(self, url: str) -> tuple[FetchResult, bytes | None]:
        """Download one URL into the cache (ignores the index), without recording the outcome.

        For callers that record results elsewhere (the build's worker processes hand them to the
        one process that writes ``index.jsonl``) and want to process the body without reading
        the stored original back.

        Args:
            url: the URL, as written in the spreadsheet.

        Returns:
            ``(result, body)``: ``body`` is the original's bytes when it is at most 1 MB (kept in
            memory anyway for the format check), else None (read the stored original).
        """
        o = self.options
        attempts = 0
        body: bytes | None = None
        result: FetchResult
        while True:
            try:
                check_url(url)
                attempts += 1
                sha, size, final, body = self._get_once(url)
                result = FetchResult(url, True, sha, size, attempts=attempts, final_url=final)
                break
            except _Failure as f:
                failure = f
            except Exception as exc:  # urllib3/requests/socket/http.client errors
                category, detail = _classify_exception(exc)
                failure = _Failure(category, detail)
            retryable = failure.category in RETRYABLE_CATEGORIES or (
                failure.category == "http_4xx" and failure.detail.startswith("HTTP 429")
            )
            if not retryable or attempts > o.retries or attempts == 0 or self._stop.is_set():
                result = FetchResult(
                    url, False, category=failure.category, detail=failure.detail, attempts=attempts
                )
                break
            delay = min(o.backoff_max, o.backoff * 2 ** (attempts - 1)) * self.rng.uniform(0.5, 1.5)
            if failure.retry_after is not None:
                delay = max(delay, min(failure.retry_after, o.retry_after_max))
            if self._stop.wait(delay):
                result = FetchResult(
                    url, False, category=failure.category, detail=failure.detail, attempts=attempts
                )
                break
        return result, body

    def cached_result(self, url: str, *, retry_failed: bool = False) -> FetchResult | None:
        """The remembered outcome of ``url``, or None when it must be (re)fetched.

        A success counts only while its original is still in the store. A remembered failure is
        reused unless ``retry_failed``, except ``blocked_host`` and a malformed-URL ``bad_url``
        (re-checked: they depend on options or cost nothing) and ``too_large`` recorded under a
        smaller ``max_bytes``.

        Args:
            url: the URL.
            retry_failed: re-attempt remembered failures.

        Returns:
            The cached :class:`FetchResult` (``cached=True``) or None.
        """
        entry = self.cache.lookup(url)
        if entry is None:
            return None
        if entry.get("ok"):
            sha = str(entry.get("sha256", ""))
            if sha and self.cache.object_path(sha).exists():
                return FetchResult(url, True, sha, int(entry.get("size", 0)), cached=True)
            return None
        category = str(entry.get("category", ""))
        if retry_failed or category not in FAILURE_CATEGORIES:
            return None
        if category == "blocked_host" or (category == "bad_url" and not entry.get("attempts")):
            return None  # policy or syntax: re-checked without cost, options may have changed
        if category == "too_large" and int(entry.get("max_bytes", 0)) < self.options.max_bytes:
            return None
        return FetchResult(
            url,
            False,
            category=category,
            detail=str(entry.get("detail", "")),
            attempts=int(entry.get("attempts", 0)),
            stage=str(entry.get("stage", "download")),
            cached=True,
        )

    def fetch_many(
        self,
        urls: Iterable[str],
        *,
        retry_failed: bool = False,
        on_submit: Callable[[str], None] | None = None,
    ) -> Iterator[FetchResult]:
        """Fetch many URLs concurrently; results come back as they complete (any order).

        URLs already in the cache index are answered from it (see :meth:`cached_result`) without
        network access. At most ``2 * concurrency`` URLs are queued at a time.

        Args:
            urls: URLs (each once).
            retry_failed: re-attempt remembered failures.
            on_submit: called with each URL handed to a thread (for progress).

        Returns:
            An iterator of :class:`FetchResult`.
        """
        o = self.options
        pending: set[Future[FetchResult]] = set()
        it = iter(urls)
        exhausted = False
        with ThreadPoolExecutor(o.concurrency, thread_name_prefix="fer_tf-dl") as pool:
            try:
                while True:
                    while not exhausted and len(pending) < 2 * o.concurrency:
                        url = next(it, None)
                        if url is None:
                            exhausted = True
                            break
                        hit = self.cached_result(url, retry_failed=retry_failed)
                        if hit is not None:
                            yield hit
                            continue
                        if on_submit is not None:
                            on_submit(url)
                        pending.add(pool.submit(self.fetch, url))
                    if not pending:
                        return
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        yield fut.result()
            finally:
                if pending:
                    self._stop.set()
                    for fut in pending:
                        fut.cancel()


def result_to_json(result: FetchResult) -> dict[str, Any]:
    """JSON-able dict of a result (for logs)."""
    return asdict(result)
