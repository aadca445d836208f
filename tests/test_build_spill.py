"""Phase 3's example store: a build that spills its examples to disk writes the same outputs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from conftest import build_outputs

from fer_tf.build import build_records, phases
from fer_tf.build.report import label_stats
from fer_tf.build.spill import ExampleStore
from fer_tf.testing.mirror import Mirror


def _ex(i: int) -> dict[str, Any]:
    return {
        "id": f"{(i * 7919) % 101:04d}",
        "au": (1, 0, -1)[i % 3 :] + (0,) * (i % 3),
        "valence": math.nan if i % 4 == 0 else i / 10,
        "arousal": -i / 7,
        "emotion": i % 5 - 1,
        "posed": i % 3 - 1,
        "subject": f"s{i % 4}" if i % 5 else "",
    }


@pytest.mark.parametrize("threshold", [0, 3, 1000])
def test_store_reads_back_sorted_by_id_whether_spilled_or_not(
    tmp_path: Path, threshold: int
) -> None:
    store = ExampleStore(("train", "val"), tmp_path / "spill", threshold)
    exs = [_ex(i) for i in range(20)]
    for i, ex in enumerate(exs):
        store.add("train" if i % 3 else "val", ex)
    assert store.spilled == (threshold < 20)
    views = store.views()
    for split in ("train", "val"):
        want = sorted(
            (ex for i, ex in enumerate(exs) if (split == "train") == bool(i % 3)),
            key=lambda e: e["id"],
        )
        assert len(views[split]) == len(want)
        # repr: NaN labels compare equal as text (a NaN read back is another object)
        assert repr(list(views[split])) == repr(want)
        assert repr(list(views[split])) == repr(want)  # re-iterable
        assert label_stats(views[split], (1, 2, 4)) == label_stats(want, (1, 2, 4))
    files = list((tmp_path / "spill").glob("examples-*.sqlite")) if store.spilled else []
    assert len(files) == (1 if store.spilled else 0)
    store.close()
    assert not any((tmp_path / "spill").glob("examples-*")) if store.spilled else True


def test_spilled_build_writes_the_samebuild_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spills: list[int] = []
    real = ExampleStore._spill

    def spy(self: ExampleStore) -> None:
        spills.append(sum(self._counts.values()))
        real(self)

    monkeypatch.setattr(ExampleStore, "_spill", spy)
    kw = dict(allow_private_hosts=True, progress=False, image_size=32, examples_per_shard=3)
    kw.update(max_failure_rate=None, timeout=2.0, retries=0, test_fraction=0.3)
    with Mirror(14, faults={2: "404", 9: "500"}, comma_every=0) as m:
        sheet = m.write_spreadsheet(tmp_path / "urls.csv")
        outs = {}
        for threshold in (None, 0, 4):
            if threshold is not None:
                monkeypatch.setattr(phases, "DEFAULT_SPILL_THRESHOLD", threshold)
            cache = tmp_path / f"cache-{threshold}"
            s = build_records([sheet], tmp_path / f"out-{threshold}", cache_dir=cache, **kw)
            assert s.written == 12 and s.failed == 2
            assert not list(cache.glob("examples-*"))  # the spill file is removed
            outs[threshold] = build_outputs(tmp_path / f"out-{threshold}")
    assert spills == [1, 5]  # the default kept 12 examples in memory; the others spilled
    # three splits, one of them cut in several shards (the split hashes depend on the port)
    assert len([n for n in outs[None] if n.endswith(".tfrecord")]) >= 4
    assert outs[0] == outs[None] and outs[4] == outs[None]


def test_cache_index_past_its_memory_limit_answers_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fer_tf.sources import download
    from fer_tf.sources.download import DownloadCache, FetchResult

    with DownloadCache(tmp_path / "c") as cache:
        for i in range(9):
            cache.record(FetchResult(f"http://h/{i}", True, f"{i:064x}", i))
        cache.record(FetchResult("http://h/3", False, category="http_4xx", detail="404"))
        cache.record(FetchResult("http://h/5", True, "f" * 64, 55))  # the last line wins
    with (tmp_path / "c" / "index.jsonl").open("a") as fh:
        fh.write('{"url": "http://h/torn", "ok": tr')  # a torn line from a killed run
    urls = [f"http://h/{i}" for i in range(10)]

    def reference() -> dict[str, Any]:  # everything in memory, as before
        monkeypatch.setattr(download, "INDEX_MEMORY_LINES", 1000)
        cache = DownloadCache(tmp_path / "c")
        assert cache._entries._db is None
        return {u: cache.lookup(u) for u in urls}

    want = reference()
    assert want["http://h/3"]["category"] == "http_4xx" and want["http://h/5"]["size"] == 55
    assert want["http://h/9"] is None
    for i, limit in enumerate((1, 2, 4)):
        want = reference()
        monkeypatch.setattr(download, "INDEX_MEMORY_LINES", limit)
        cache = DownloadCache(tmp_path / "c")
        assert cache._entries._db is not None  # spilled
        assert {u: cache.lookup(u) for u in urls} == want
        assert cache.lookup("http://h/torn") is None
        cache.remember_new = False  # a build: a recorded URL is never answered from old lines
        cache.record(FetchResult(urls[i], False, category="timeout", detail="t"))
        assert cache.lookup(urls[i]) is None and cache.lookup(urls[i + 5]) == want[urls[i + 5]]
        cache.close()
    assert reference()["http://h/2"]["category"] == "timeout"
