"""The decode -> resize -> encode kernel: same validation as a full Pillow decode, cheaper pixels."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageOps, JpegImagePlugin

from fer_tf.preprocessing import decode as D
from fer_tf.testing.mirror import VARIANTS, encode_variant


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients with some texture: JPEG-friendly, not flat."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack(
        [
            128 + 90 * np.sin(x / (w / 5.0)) * np.cos(y / (h / 3.0)),
            128 + 80 * np.cos((x + y) / (w / 4.0)),
            100 + 60 * np.sin(y / (h / 7.0)),
        ],
        axis=2,
    )
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90, **kwargs)
    return buf.getvalue()


def _pillow_decode(data: bytes) -> np.ndarray:
    """The previous kernel's decode: Pillow, full size, EXIF transpose."""
    im = Image.open(io.BytesIO(data))
    im.load()
    return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


def _pillow_accepts(data: bytes) -> bool:
    try:
        _pillow_decode(data)
    except Exception:  # noqa: BLE001 - any failure is a rejection here
        return False
    return True


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _jpeg(_photo(24, 40), exif=exif)
    info: dict = {}
    out = D.decode_image(data, info)
    assert info == {"format": "JPEG", "mode": "RGB", "orientation": orientation}
    np.testing.assert_array_equal(out, _pillow_decode(data))  # OpenCV pixels == Pillow's
    status, jpeg, _ = D.process_image(data, {"image_size": 16})
    shape = np.asarray(Image.open(io.BytesIO(jpeg))).shape
    assert status == "ok" and shape == ((16, 27, 3) if orientation < 5 else (27, 16, 3))


@pytest.mark.parametrize("variant", VARIANTS)
def test_decode_image_pixels_unchanged(variant: str) -> None:
    data = encode_variant(_photo(30, 44, seed=1), variant)
    np.testing.assert_array_equal(D.decode_image(data), D._pil_pixels(D._open(data))[0])


def _cuts(data: bytes) -> list[bytes]:
    step = max(1, len(data) // 40)
    return [data[:n] for n in range(2, len(data), step)] + [data[:-1], data[:-2]]


@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_jpegs_fail_exactly_when_pillow_fails(progressive: bool) -> None:
    data = _jpeg(_photo(96, 128, seed=2), progressive=progressive)
    rejected = 0
    for bad in _cuts(data) + [data[: len(data) // 2] + b"\xff\xd9", data + b"trailing junk"]:
        expected = _pillow_accepts(bad)
        rejected += not expected
        for options in ({}, {"image_size": 20}, {"image_size": 64}, {"reencode_jpeg": True}):
            status, _, detail = D.process_image(bad, options)
            assert (status == "ok") == expected, (len(bad), options, detail)
            if not expected:
                assert detail.startswith("cannot decode the image"), detail
    assert rejected >= 40  # the cuts did reach the image data


def test_corrupt_middle_is_judged_like_pillow() -> None:
    data = _jpeg(_photo(64, 96, seed=3))
    rng = np.random.default_rng(0)
    for trial in range(12):
        bad = bytearray(data)
        for pos in rng.integers(len(data) // 3, len(data) - 4, 1 + trial):
            bad[pos] ^= 0xFF
        expected = _pillow_accepts(bytes(bad))
        for options in ({}, {"image_size": 16}):
            assert (D.process_image(bytes(bad), options)[0] == "ok") == expected


def test_truncated_jpeg_never_reaches_a_lenient_opencv(monkeypatch) -> None:
    """OpenCV before 4.10 only warns on a truncated JPEG (and fills it grey): never trusted."""
    import cv2

    data = _jpeg(_photo(64, 64, seed=4))
    bad = data[: len(data) // 2]
    grey = np.full((64, 64, 3), 128, np.uint8)
    monkeypatch.setattr(cv2, "imdecode", lambda buf, flag: grey)
    for options in ({}, {"image_size": 16}, {"reencode_jpeg": True}):
        status, _, detail = D.process_image(bad, options)
        assert status == "fail" and "truncated" in detail
    with pytest.raises(ValueError, match="truncated"):
        D.decode_image(bad)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP"])
def test_truncated_other_formats_fail(fmt: str) -> None:
    rgba = np.dstack([_photo(48, 48, seed=5), np.full((48, 48), 200, np.uint8)])
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, fmt)
    data = buf.getvalue()
    assert D.process_image(data, {"image_size": 32})[0] == "ok"
    for bad in (data[: len(data) // 2], data[: len(data) * 9 // 10]):
        status, _, detail = D.process_image(bad, {"image_size": 32})
        assert status == "fail" and not _pillow_accepts(bad), detail


@pytest.mark.parametrize(
    ("width", "height", "size", "scale"),
    [(3000, 2000, 299, 4), (2400, 2392, 299, 8), (2391, 4000, 299, 4), (598, 900, 299, 2),
     (597, 900, 299, 1), (340, 300, 256, 1), (300, 300, None, 1)],
)  # fmt: skip
def test_dct_scale_keeps_the_shorter_side_at_least_the_target(width, height, size, scale) -> None:
    assert D._dct_scale(width, height, size) == scale


@pytest.mark.parametrize(
    ("h", "w", "orientation"), [(701, 1003, 1), (600, 450, 1), (310, 290, 1), (420, 640, 6)]
)
def test_reduced_decode_is_close_to_full_lanczos(h: int, w: int, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _jpeg(_photo(h, w, seed=6), exif=exif)
    size = 96 if h > 400 else 256
    status, jpeg, _ = D.process_image(data, {"image_size": size})
    out = np.asarray(Image.open(io.BytesIO(jpeg)))
    full = Image.fromarray(_pillow_decode(data))  # upright
    ref = np.asarray(full.resize(D._target(*full.size, size), Image.Resampling.LANCZOS))
    assert status == "ok" and out.shape == ref.shape and min(out.shape[:2]) == size
    assert _psnr(out, ref) >= 35.0, _psnr(out, ref)


@pytest.mark.parametrize(("h", "w", "size"), [(1203, 1605, 299), (605, 803, 150)])
def test_reduced_decode_maps_the_partial_edge_block_exactly(h: int, w: int, size: int) -> None:
    """Sizes not a multiple of the DCT block: stretching the padded edge would shift the stripes
    by up to a pixel at the far side (about 25 dB against Lanczos instead of over 40)."""
    y, x = np.mgrid[0:h, 0:w]
    stripes = 128 + 100 * np.sin(2 * np.pi * x / 40.0) * np.cos(2 * np.pi * y / 56.0)
    data = _jpeg(np.repeat(stripes[..., None], 3, 2).astype(np.uint8))
    assert D._dct_scale(w, h, size) == 4 and (w % 32, h % 32) != (0, 0)
    status, jpeg, _ = D.process_image(data, {"image_size": size})
    out = np.asarray(Image.open(io.BytesIO(jpeg)))
    full = Image.open(io.BytesIO(data))
    ref = np.asarray(full.resize(D._target(w, h, size), Image.Resampling.LANCZOS))
    assert status == "ok" and _psnr(out, ref) >= 40.0, _psnr(out, ref)


def test_the_encoder_keeps_baseline_420_and_the_quality_tables() -> None:
    img = _photo(40, 56, seed=7)
    ours = D.encode_jpeg(img, 95)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=95)
    im = Image.open(io.BytesIO(ours))
    ref = Image.open(io.BytesIO(buf.getvalue()))
    assert im.format == "JPEG" and "progressive" not in im.info
    assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0
    assert im.quantization == ref.quantization
    assert ours == buf.getvalue()  # the same libjpeg-turbo settings: the same bytes


def test_passthrough_and_small_images() -> None:
    data = _jpeg(_photo(40, 50, seed=8))
    assert D.process_image(data, {"image_size": 64}) == ("ok", data, "")
    assert D.process_image(data, {}) == ("ok", data, "")
    status, jpeg, _ = D.process_image(data, {"reencode_jpeg": True})
    assert status == "ok" and jpeg != data and Image.open(io.BytesIO(jpeg)).size == (50, 40)
    small = np.zeros((5, 7, 3), np.uint8)
    assert D.resize_shorter(small, 8) is small
    assert D.resize_shorter(_photo(50, 80), 20).shape == (20, 32, 3)


def test_mpo_first_frame() -> None:
    first, second = _photo(40, 60, seed=9), 255 - _photo(40, 60, seed=9)
    buf = io.BytesIO()
    Image.fromarray(first).save(
        buf, "MPO", save_all=True, append_images=[Image.fromarray(second)], quality=95
    )
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    out = D.decode_image(data)
    assert np.abs(out.astype(int) - first).mean() < 4
    status, jpeg, _ = D.process_image(data, {"image_size": 20})
    small = np.asarray(Image.open(io.BytesIO(jpeg))).astype(int)
    assert status == "ok" and small.shape == (20, 30, 3) and abs(small.mean() - first.mean()) < 4


_HASH_SCRIPT = """
import hashlib, sys
from fer_tf.preprocessing.decode import process_image
from fer_tf.testing.mirror import VARIANTS, encode_variant
import numpy as np
rng = np.random.default_rng(11)
img = rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)
for v in VARIANTS:
    for size in (None, 32, 48):
        s, out, _ = process_image(encode_variant(img, v), {"image_size": size, "reencode_jpeg": True})
        print(v, size, s, hashlib.sha256(out).hexdigest())
"""


def test_rebuilds_are_byte_identical_across_processes() -> None:
    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", _HASH_SCRIPT], capture_output=True, text=True, check=True
        )
        return done.stdout

    here = io.StringIO()
    rng = np.random.default_rng(11)
    img = rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)
    for v in VARIANTS:
        for size in (None, 32, 48):
            data = encode_variant(img, v)
            s, out, _ = D.process_image(data, {"image_size": size, "reencode_jpeg": True})
            again = D.process_image(data, {"image_size": size, "reencode_jpeg": True})[1]
            assert s == "ok" and out == again
            print(v, size, s, hashlib.sha256(out).hexdigest(), file=here)
    assert run() == here.getvalue()


def test_a_non_image_gets_the_same_detail_every_time():
    # Pillow's message for bytes holds a BytesIO's memory address; errors.jsonl must not.
    from fer_tf.preprocessing.decode import process_image

    results = [process_image(b"<html>not an image</html>", {}) for _ in range(2)]
    assert results[0] == results[1]
    status, _, detail = results[0]
    assert status == "fail" and "0x" not in detail
    assert detail == "cannot decode the image: cannot identify image file"
