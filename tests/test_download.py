"""Downloader: failure categories, retries, caps, address policy, cache. Loopback only."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from fer_tf.sources.download import (
    FAILURE_CATEGORIES,
    DownloadCache,
    Downloader,
    DownloadOptions,
    FetchResult,
)
from fer_tf.testing.mirror import FAULTS, Mirror


def _opts(**kw: object) -> DownloadOptions:
    base = dict(
        concurrency=8,
        timeout=0.5,
        retries=1,
        backoff=0.01,
        retry_after_max=0.05,
        max_bytes=1 << 20,
        allow_private_hosts=True,
    )
    base.update(kw)
    return DownloadOptions(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def mirror():
    with Mirror(len(FAULTS) + 2, faults=list(FAULTS), hang=3.0, retry_after=30) as m:
        yield m


def test_every_fault_gets_its_category(mirror: Mirror, tmp_path: Path) -> None:
    with Downloader(DownloadCache(tmp_path), _opts()) as dl:
        t0 = time.monotonic()
        results = {r.source: r for r in dl.fetch_many(it.url for it in mirror.items)}
        elapsed = time.monotonic() - t0
    for it in mirror.items:
        r = results[it.url]
        if it.fault == "truncated":  # recognised as a JPEG; the decoder rejects it later
            assert r.ok, r
            continue
        assert (r.category or None) == it.expected_category, (it.fault, r)
        assert r.category in ("", *FAILURE_CATEGORIES)
    # Retry-After: 30 s is capped by retry_after_max, so the run stays fast.
    assert elapsed < 10


def test_retries_only_where_it_helps(mirror: Mirror, tmp_path: Path) -> None:
    by_fault = {it.fault: it for it in mirror.items if it.fault}
    mirror.reset_counts()
    with Downloader(DownloadCache(tmp_path), _opts(retries=2)) as dl:
        for fault, expected in [("404", 1), ("403", 1), ("410", 1), ("503", 3), ("500", 3)]:
            r = dl.fetch(by_fault[fault].url)
            assert r.attempts == expected, (fault, r)
            assert mirror.requests(by_fault[fault].path) == expected
        flaky = dl.fetch(by_fault["flaky"].url)
        assert flaky.ok and flaky.attempts == 2


def test_redirects_followed_and_rechecked(mirror: Mirror, tmp_path: Path) -> None:
    by_fault = {it.fault: it for it in mirror.items if it.fault}
    with Downloader(DownloadCache(tmp_path), _opts(max_redirects=3)) as dl:
        r = dl.fetch(by_fault["redirect"].url)
        assert r.ok and "/target/" in r.final_url
        loop = dl.fetch(by_fault["redirect_loop"].url)
        assert loop.category == "bad_url" and "too many redirects" in loop.detail


def test_loopback_refused_without_allow_private_hosts(mirror: Mirror, tmp_path: Path) -> None:
    mirror.reset_counts()
    with Downloader(DownloadCache(tmp_path), _opts(allow_private_hosts=False)) as dl:
        for url in (mirror.items[-1].url, f"http://localhost:{mirror.port}/img/00000.jpg"):
            r = dl.fetch(url)
            assert r.category == "blocked_host", r
    assert mirror.requests() == 0


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3/a.jpg", "http://169.254.1.1/a.jpg", "http://[::1]/a.jpg"]
)
def test_private_addresses_blocked_without_network(tmp_path: Path, url: str) -> None:
    with Downloader(DownloadCache(tmp_path), _opts(allow_private_hosts=False)) as dl:
        assert dl.fetch(url).category == "blocked_host"


@pytest.mark.parametrize(
    "url", ["ftp://x.org/a.jpg", "file:///etc/passwd", "not a url", "http://", "http://x:99999/"]
)
def test_bad_urls(tmp_path: Path, url: str) -> None:
    with Downloader(DownloadCache(tmp_path), _opts()) as dl:
        r = dl.fetch(url)
    assert r.category == "bad_url" and r.attempts == 0


def test_dns_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kw: object) -> None:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with Downloader(DownloadCache(tmp_path), _opts(retries=0)) as dl:
        r = dl.fetch("http://no-such-host.example/a.jpg")
    assert r.category == "dns"


def test_tls_failure_against_plain_http(mirror: Mirror, tmp_path: Path) -> None:
    with Downloader(DownloadCache(tmp_path), _opts(retries=0)) as dl:
        r = dl.fetch(mirror.items[-1].url.replace("http://", "https://"))
    assert r.category == "tls", r


def test_connection_refused(tmp_path: Path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with Downloader(DownloadCache(tmp_path), _opts(retries=0)) as dl:
        r = dl.fetch(f"http://127.0.0.1:{port}/a.jpg")
    assert r.category == "connection"


def test_byte_cap(mirror: Mirror, tmp_path: Path) -> None:
    good = mirror.items[-1]
    with Downloader(DownloadCache(tmp_path), _opts(max_bytes=len(good.body) - 1)) as dl:
        r = dl.fetch(good.url)
    assert r.category == "too_large"


def test_per_host_cap(tmp_path: Path) -> None:
    with Mirror(12, latency=0.1, comma_every=0) as m:
        with Downloader(DownloadCache(tmp_path), _opts(concurrency=8, per_host=2)) as dl:
            assert all(r.ok for r in dl.fetch_many(it.url for it in m.items))
        assert m.max_active <= 2


def test_cache_answers_reruns_without_network(mirror: Mirror, tmp_path: Path) -> None:
    urls = [it.url for it in mirror.items if it.fault in (None, "404")]
    with Downloader(DownloadCache(tmp_path), _opts()) as dl:
        first = {r.source: r for r in dl.fetch_many(urls)}
    mirror.reset_counts()
    cache = DownloadCache(tmp_path)
    with Downloader(cache, _opts()) as dl:
        again = {r.source: r for r in dl.fetch_many(urls)}
    assert mirror.requests() == 0
    for url in urls:
        assert again[url].cached
        assert (again[url].ok, again[url].sha256, again[url].category) == (
            first[url].ok,
            first[url].sha256,
            first[url].category,
        )
        if again[url].ok:
            assert cache.object_path(again[url].sha256).read_bytes()
    # retry_failed sends the remembered failure again.
    with Downloader(DownloadCache(tmp_path), _opts()) as dl:
        list(dl.fetch_many(urls, retry_failed=True))
    assert mirror.requests() == 1


def test_index_survives_a_torn_line(tmp_path: Path) -> None:
    cache = DownloadCache(tmp_path)
    cache.record(FetchResult("http://x.org/1", False, category="http_404", attempts=1))
    cache.close()
    with (tmp_path / "index.jsonl").open("a") as fh:
        fh.write('{"url": "http://x.org/2", "ok": tr')  # killed mid-write
    (tmp_path / "tmp" / "partial.part").write_bytes(b"half a body")
    cache = DownloadCache(tmp_path)
    assert cache.lookup("http://x.org/1")["category"] == "http_404"
    assert cache.lookup("http://x.org/2") is None
    assert not list((tmp_path / "tmp").iterdir())
    cache.record(FetchResult("http://x.org/3", False, category="timeout", attempts=2))
    cache.close()
    assert DownloadCache(tmp_path).lookup("http://x.org/3")["category"] == "timeout"


@pytest.mark.parametrize(
    "field,value",
    [("concurrency", 0), ("timeout", 0), ("retries", -1), ("max_bytes", "1M"), ("per_host", True)],
)
def test_options_validated(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        DownloadOptions(**{field: value}).validate()  # type: ignore[arg-type]


def test_a_non_image_body_gets_the_same_detail_every_time():
    # Pillow's message for bytes names a BytesIO's memory address; errors.jsonl must not, or
    # two builds of the same spreadsheet would write different failure details.
    from fer_tf.sources.download import _Failure, _sniff_image

    details = []
    for _ in range(2):
        with pytest.raises(_Failure) as info:
            _sniff_image(b"<!DOCTYPE html><html><body>Photo removed</body></html>")
        details.append(info.value.detail)
    assert details[0] == details[1]
    assert "0x" not in details[0] and "cannot identify image file" in details[0]
