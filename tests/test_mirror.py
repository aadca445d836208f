"""Loopback mirror: lifecycle, spreadsheets it writes, variants."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from fer_tf.sources.spreadsheet import read_spreadsheet
from fer_tf.testing.mirror import (
    FAULTS,
    VARIANTS,
    Mirror,
    encode_variant,
    uniform_sizes,
    web_photo_sizes,
)


def test_serves_images_and_stops_cleanly_with_a_hung_request() -> None:
    m = Mirror(3, faults={1: "timeout"}, hang=60.0)
    with m:
        assert m.base_url.startswith("http://127.0.0.1:") and m.port > 0
        with urllib.request.urlopen(m.items[0].url, timeout=5) as resp:
            assert resp.read() == m.items[0].body

        def hang() -> None:
            with contextlib.suppress(Exception):
                urllib.request.urlopen(m.items[1].url, timeout=30).read()

        t = threading.Thread(target=hang, daemon=True)
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 3.0  # stop() wakes the held request
    t.join(timeout=5)
    assert not t.is_alive()


@pytest.mark.parametrize(
    "fname,layout,header",
    [
        ("m.xlsx", "manual", False),
        ("m.xlsx", "manual", True),
        ("e.csv", "2020", True),
        ("d.tsv", "datafile", True),
        ("d.txt", "datafile", True),
    ],
)
def test_spreadsheets_read_back_with_labels(
    tmp_path: Path, mirror: Mirror, fname: str, layout: str, header: bool
) -> None:
    m = mirror
    path = m.write_spreadsheet(tmp_path / fname, layout=layout, header=header, sheets=2)
    d = read_spreadsheet(path)
    assert not d.issues
    assert [r.source for r in d.rows] == [it.url for it in m.items]
    assert any("," in r.source for r in d.rows)  # comma URLs survive
    assert any(-1 in it.expected_au(m.aus) for it in m.items)  # unknown labels (999) too
    for r, it in zip(d.rows, m.items):
        assert r.au(m.aus) == it.expected_au(m.aus)
        if header:
            assert r.emotion == it.emotion and r.posed == it.posed
            assert r.subject == it.subject and r.valence == pytest.approx(it.valence)


def test_start_on_another_port() -> None:
    m = Mirror(1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            m.start(port=taken.getsockname()[1])
    with m.start(port=0):
        assert m.port > 0 and m.items[0].url == f"http://127.0.0.1:{m.port}{m.items[0].path}"


def test_bad_assignments_rejected() -> None:
    with pytest.raises(ValueError, match="faults"):
        Mirror(2, faults={0: "explode"})
    with pytest.raises(ValueError, match="variants"):
        Mirror(2, variants={5: "png_alpha"})
    assert set(FAULTS) >= {"404", "410", "403", "500", "503", "timeout", "reset", "html"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variants_are_images(variant: str) -> None:
    import io

    import numpy as np
    from PIL import Image

    img = np.zeros((20, 30, 3), np.uint8)
    body = encode_variant(img, variant)
    with Image.open(io.BytesIO(body)) as im:
        assert im.format in ("JPEG", "PNG", "GIF", "WEBP", "BMP")


def test_web_photo_sizes_spread_like_web_images() -> None:
    sizes = web_photo_sizes(600, seed=0)
    assert sizes == web_photo_sizes(600, seed=0) != web_photo_sizes(600, seed=1)
    longs = [max(s) for s in sizes]
    assert min(longs) >= 320 and max(longs) <= 3000
    assert 0.7 < sum(500 <= x <= 1600 for x in longs) / len(longs) < 0.9
    assert sum(h > w for w, h in sizes) > 100  # portrait ones too
    with pytest.raises(ValueError, match="max_side"):
        web_photo_sizes(3, min_side=500, max_side=400)


def test_uniform_sizes_in_range() -> None:
    sizes = uniform_sizes(200, 280, 340, seed=3)
    assert sizes == uniform_sizes(200, 280, 340, seed=3)
    sides = [x for s in sizes for x in s]
    assert min(sides) >= 280 and max(sides) <= 340 and len(set(sides)) > 30
    with pytest.raises(ValueError, match="high"):
        uniform_sizes(2, 300, 200)


def test_photo_workload_sizes_png_share_and_cache(tmp_path: Path) -> None:
    import io

    from PIL import Image

    sizes = [(60, 40), (33, 50), (48, 48), (70, 30), (40, 41), (50, 20)]
    kw = dict(sizes=sizes, content="photo", png_fraction=0.5, seed=2, comma_every=0)
    m = Mirror(6, cache_dir=tmp_path, **kw)
    pngs = [it for it in m.items if it.variant == "png"]
    assert 0 < len(pngs) < 6 and all(it.path.endswith(".png") for it in pngs)
    for it, size in zip(m.items, sizes):
        with Image.open(io.BytesIO(it.body)) as im:
            assert im.size == size and im.mode == "RGB"
            assert im.format == ("PNG" if it.variant == "png" else "JPEG")
    assert len(list(tmp_path.glob("mirror-bodies-*.pkl"))) == 1
    again = Mirror(6, cache_dir=tmp_path, **kw)  # from the cache: same bytes
    fresh = Mirror(6, **kw)  # generated again: same bytes (deterministic)
    assert [it.body for it in again.items] == [it.body for it in m.items]
    assert [it.body for it in fresh.items] == [it.body for it in m.items]
    # photo-like: more detail (bytes) than SynthFACS faces of the same sizes, as JPEG alike
    faces = Mirror(6, sizes=sizes, seed=2, comma_every=0)
    jpeg = [i for i, it in enumerate(m.items) if it.variant == "jpeg"]
    assert sum(len(m.items[i].body) for i in jpeg) > sum(len(faces.items[i].body) for i in jpeg)
    with Image.open(io.BytesIO(faces.items[0].body)) as im:
        assert im.size == (60, 40)


def test_workload_options_rejected() -> None:
    with pytest.raises(ValueError, match="content"):
        Mirror(2, content="video")
    with pytest.raises(ValueError, match="sizes"):
        Mirror(2, sizes=[(10, 10)])
    with pytest.raises(ValueError, match="png_fraction"):
        Mirror(2, png_fraction=1.5)


def test_first_and_last_request_times() -> None:
    with Mirror(2, comma_every=0) as m:
        assert m.first_request_at is None
        t0 = time.monotonic()
        for it in m.items:
            urllib.request.urlopen(it.url, timeout=5).read()
        assert t0 <= m.first_request_at <= m.last_request_at <= time.monotonic()
        m.reset_counts()
        assert m.first_request_at is None and m.last_request_at is None
