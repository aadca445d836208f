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
from fer_tf.testing.mirror import FAULTS, VARIANTS, Mirror, encode_variant


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
