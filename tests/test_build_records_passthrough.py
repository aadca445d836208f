"""Pass-through JPEGs: the cheap thread check agrees with the full decode (same bytes, same faults)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_tf.build.local import triage_file as _triage_file
from fer_tf.preprocessing.decode import process_image
from fer_tf.testing.mirror import VARIANTS, encode_variant


def _face(h: int = 48, w: int = 40) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("image_size", [None, 32, 64])
def test_triage_agrees_with_process_image(tmp_path: Path, variant: str, image_size) -> None:
    data = encode_variant(_face(), variant)
    src = tmp_path / "orig"
    src.write_bytes(data)
    options = {"image_size": image_size, "jpeg_quality": 95}
    status, detail, size = _triage_file(str(src), str(tmp_path / "out.jpg"), options)
    full_status, jpeg, _ = process_image(data, options)
    assert full_status == "ok"
    if status == "pass":
        assert jpeg == data and size == (40, 48)  # the full path also keeps the bytes as they are
    else:
        assert status == "process" and jpeg != data


@pytest.mark.parametrize("cut", [0.3, 0.5, 0.9])
def test_truncated_jpeg_fails_like_the_full_decode(tmp_path: Path, cut: float) -> None:
    data = encode_variant(_face(256, 256), "jpeg")
    bad = data[: int(len(data) * cut)]
    src = tmp_path / "orig"
    src.write_bytes(bad)
    status, detail, _ = _triage_file(str(src), str(tmp_path / "out.jpg"), {})
    assert status == "fail" and detail.startswith("cannot decode the image")
    marker = json.loads((tmp_path / "out.jpg.fail").read_text())
    assert marker == {"status": "fail", "detail": detail}
    assert process_image(bad, {})[0] == "fail"


def test_not_an_image_goes_to_the_full_path(tmp_path: Path) -> None:
    src = tmp_path / "orig"
    src.write_bytes(b"<html>not an image</html>")
    assert _triage_file(str(src), str(tmp_path / "o.jpg"), {})[0] == "process"
