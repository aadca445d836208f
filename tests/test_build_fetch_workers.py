"""The build's fetch workers: downloads inside the worker processes (limits shared across them),
bodies processed from memory, one index writer, worker failures surfaced. Loopback only."""

from __future__ import annotations

import json
import os
import queue
import threading
from pathlib import Path

import pytest

from fer_tf.build import build_records
from fer_tf.build import local as local_mod
from fer_tf.sources.download import (
    DownloadCache,
    Downloader,
    DownloadOptions,
    FetchResult,
    SharedSlots,
)
from fer_tf.testing.mirror import Mirror


def _build(sheet: Path, out: Path, **kw: object):  # noqa: ANN202
    opts = dict(
        allow_private_hosts=True,
        timeout=2.0,
        retries=0,
        backoff=0.01,
        progress=False,
        num_shards=1,
        cache_dir=out / "cache",
    )
    opts.update(kw)
    return build_records(sheet, out, **opts)


@pytest.fixture(scope="module")
def slow_mirror(tmp_path_factory: pytest.TempPathFactory):
    with Mirror(12, latency=0.1, comma_every=0, seed=3) as m:
        sheet = tmp_path_factory.mktemp("sheet") / "urls.csv"
        m.write_spreadsheet(sheet)
        yield m, sheet


def test_per_host_limit_holds_across_worker_processes(slow_mirror, tmp_path: Path) -> None:
    m, sheet = slow_mirror
    m.reset_counts()
    # 8 download threads, shared out over 2 processes; the per-host cap of 2 is shared by both.
    summary = _build(sheet, tmp_path / "out", workers=2, concurrency=8, per_host=2)
    assert summary.written == 12
    assert 1 <= m.max_active <= 2
    m.reset_counts()
    summary = _build(sheet, tmp_path / "out2", workers=2, concurrency=1)  # fewer threads than
    assert summary.written == 12  # workers: each worker still gets one, the total stays 1
    assert m.max_active == 1


def test_index_written_once_per_url_by_the_build_process(slow_mirror, tmp_path: Path) -> None:
    m, sheet = slow_mirror
    _build(sheet, tmp_path / "out", workers=2, concurrency=4)
    lines = (tmp_path / "out" / "cache" / "index.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert sorted(e["url"] for e in entries) == sorted(it.url for it in m.items)
    cache = DownloadCache(tmp_path / "out" / "cache")
    for e in entries:
        assert e["ok"] and cache.object_path(e["sha256"]).read_bytes()
    m.reset_counts()
    again = _build(sheet, tmp_path / "out", workers=2, concurrency=4)
    assert (again.downloaded, again.cached, m.requests()) == (0, 12, 0)


def test_cached_original_without_processed_image_is_processed_again(
    slow_mirror, tmp_path: Path
) -> None:
    m, sheet = slow_mirror
    first = _build(sheet, tmp_path / "out", workers=1, image_size=32)
    processed = list((tmp_path / "out" / "cache" / "processed").rglob("*.jpg"))
    assert len(processed) == 12
    shards = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.tfrecord")}
    for p in processed[:5]:
        p.unlink()  # as if the run had been killed after storing these originals
    m.reset_counts()
    again = _build(sheet, tmp_path / "out", workers=1, image_size=32)
    assert (again.downloaded, again.processed, m.requests()) == (0, 5, 0)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.tfrecord")} == shards
    assert first.written == again.written == 12


def _boom(*args: object, **kw: object) -> None:
    raise ValueError("a bug in the image code")


def _die(*args: object, **kw: object) -> None:
    os._exit(3)


@pytest.mark.parametrize(
    ("workers", "patch", "message"),
    [
        (2, _boom, "a fetch worker failed"),
        (0, _boom, "a fetch worker failed"),
        (2, _die, "a fetch worker died"),
    ],
)
def test_worker_failures_are_raised_not_hidden(
    slow_mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers, patch, message
) -> None:
    _, sheet = slow_mirror
    monkeypatch.setattr(local_mod, "settle", patch)  # inherited by the forked workers
    with pytest.raises(RuntimeError, match=message):
        _build(sheet, tmp_path / "out", workers=workers, concurrency=4)


def test_fetch_data_returns_the_body_it_stored(slow_mirror, tmp_path: Path) -> None:
    m, _ = slow_mirror
    cache = DownloadCache(tmp_path)
    with Downloader(cache, DownloadOptions(allow_private_hosts=True)) as dl:
        res, body = dl.fetch_data(m.items[0].url)
    assert res.ok and body == m.items[0].body == cache.object_path(res.sha256).read_bytes()
    assert cache.lookup(m.items[0].url) is None  # fetch_data records nothing; fetch() does


def test_objects_only_store_has_no_index(tmp_path: Path) -> None:
    DownloadCache(tmp_path).close()
    (tmp_path / "tmp" / "x.part").write_bytes(b"a body being written by the owner")
    store = DownloadCache.objects_only(tmp_path)
    assert (tmp_path / "tmp" / "x.part").exists()  # not cleaned: the owner's files
    with pytest.raises(RuntimeError, match="objects_only"):
        store.record(FetchResult("http://x.org/1", False, category="http_404"))
    fd, tmp = store.new_tmp()
    os.write(fd, b"abc")
    os.close(fd)
    assert store.store(tmp, "ab" * 32).read_bytes() == b"abc"
    fd, tmp = store.new_tmp()
    os.write(fd, b"abc")
    os.close(fd)
    assert store.store(tmp, "ab" * 32).read_bytes() == b"abc"  # stored twice: same object
    assert not tmp.exists()


def test_shared_slots_cap_a_host_and_the_total() -> None:
    slots = SharedSlots(per_host=2, concurrency=3, buckets=8)
    active: dict[str, int] = {"a": 0, "b": 0, "all": 0}
    peak: dict[str, int] = {"a": 0, "b": 0, "all": 0}
    lock = threading.Lock()

    def request(host: str) -> None:
        with slots.slot(host):
            with lock:
                for k in (host, "all"):
                    active[k] += 1
                    peak[k] = max(peak[k], active[k])
            threading.Event().wait(0.02)
            with lock:
                for k in (host, "all"):
                    active[k] -= 1

    threads = [threading.Thread(target=request, args=(h,)) for h in "aaaaabbbbb"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak["a"] <= 2 and peak["b"] <= 2 and peak["all"] <= 3
    assert peak["all"] >= 2


def test_cache_forgets_lines_it_appends_when_asked(tmp_path: Path) -> None:
    cache = DownloadCache(tmp_path)
    cache.record(FetchResult("http://x.org/1", False, category="http_404", attempts=1))
    cache.close()
    cache = DownloadCache(tmp_path)
    cache.remember_new = False  # what a build does: memory for the index it started from only
    cache.record(FetchResult("http://x.org/1", True, "ab" * 32, 3))
    cache.record(FetchResult("http://x.org/2", True, "ab" * 32, 3))
    assert cache.lookup("http://x.org/1") is None  # never the outdated failure
    assert cache.lookup("http://x.org/2") is None
    cache.close()
    again = DownloadCache(tmp_path)  # the file has every line: the last one wins
    assert again.lookup("http://x.org/1")["ok"] and again.lookup("http://x.org/2")["ok"]


def _worker(tmp_path: Path, image_threads: int) -> tuple[local_mod._FetchWorker, queue.Queue]:
    DownloadCache(tmp_path / "cache").close()
    spec = local_mod._WorkerSpec(
        cache_root=str(tmp_path / "cache"),
        processed_root=str(tmp_path / "processed"),
        proc_options={},
        download_options=DownloadOptions(allow_private_hosts=True),
        threads=3,
        slots=SharedSlots(per_host=3, concurrency=3),
        image_threads=image_threads,
    )
    tasks: queue.Queue = queue.Queue()
    results: queue.Queue = queue.Queue()
    tasks.put([(f"http://x.org/{i}", f"{i:064x}") for i in range(20)])  # cached originals
    tasks.put(None)
    return local_mod._FetchWorker(spec, tasks, results), results


def _drain(results: queue.Queue) -> list[object]:
    got: list[object] = []
    while (msg := results.get(timeout=10)) is not None:
        got.append(msg)
        if isinstance(msg, tuple):  # a failure report ends the worker's results
            break
    return got


def test_every_image_thread_works_and_each_result_comes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: set[int] = set()
    second = threading.Event()

    def fake_settle(sha: str, *args: object) -> tuple[str, str, None, bool]:
        seen.add(threading.get_ident())
        if len(seen) >= 2:
            second.set()
        if not second.wait(5):  # the first image thread waits here for another one to work
            second.set()  # (none came: fail below, without waiting on every image)
        return "ready", "", None, True

    monkeypatch.setattr(local_mod, "settle", fake_settle)
    worker, results = _worker(tmp_path, image_threads=2)
    worker.run()
    got = [r for batch in _drain(results) for r in batch]
    assert sorted(r[0] for r in got) == sorted(f"http://x.org/{i}" for i in range(20))
    assert len(seen) == 2 and all(r[3] == "ready" for r in got)
    assert results.empty()  # one end mark for the worker, after every result


def test_a_failing_helper_image_thread_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main: list[int] = []  # the thread that runs the worker: its first image thread

    def fake_settle(sha: str, *args: object) -> tuple[str, str, None, bool]:
        if threading.get_ident() != main[0]:
            raise ValueError("a bug in a helper image thread")
        threading.Event().wait(0.01)  # leaves work for the helper
        return "ready", "", None, True

    monkeypatch.setattr(local_mod, "settle", fake_settle)
    worker, results = _worker(tmp_path, image_threads=2)

    def run() -> None:
        main.append(threading.get_ident())
        worker.run()

    threading.Thread(target=run, daemon=True).start()
    failures = [m for m in _drain(results) if isinstance(m, tuple)]
    assert failures and "a bug in a helper image thread" in failures[0][1]


def test_concurrent_writes_of_one_processed_image_are_safe(tmp_path: Path) -> None:
    target = str(tmp_path / "ab" / "same.jpg")
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(50):
                local_mod._write_atomic(target, b"the same bytes" * 100)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Path(target).read_bytes() == b"the same bytes" * 100
    assert os.listdir(tmp_path / "ab") == ["same.jpg"]  # no temporary file left


def test_two_image_threads_write_the_same_records(
    slow_mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, sheet = slow_mirror
    one = _build(sheet, tmp_path / "one", workers=2, concurrency=8, image_size=32, num_shards=2)
    monkeypatch.setattr(local_mod, "IMAGE_THREADS", 2)  # read when the workers are made
    two = _build(sheet, tmp_path / "two", workers=2, concurrency=8, image_size=32, num_shards=2)
    shards = sorted(p.name for p in (tmp_path / "one").glob("*.tfrecord"))
    assert one.written == two.written == 12 and len(shards) >= 2
    for name in shards:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
