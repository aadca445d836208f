"""In-graph preprocessing (fer_tf.preprocessing.image): every op eager == tf.function == tf.data."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from fer_tf.preprocessing import faces
from fer_tf.preprocessing import image as I

SEED = tf.constant([1, 2], tf.int64)


def _picture(h: int = 30, w: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    im = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (h + w)], axis=-1)
    return im.astype(np.uint8)


@pytest.fixture(scope="module")
def jpeg() -> tf.Tensor:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(_picture(), cv2.COLOR_RGB2BGR))
    assert ok
    return tf.constant(buf.tobytes())


@pytest.fixture(scope="module")
def png() -> tf.Tensor:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(_picture(), cv2.COLOR_RGB2BGR))
    assert ok
    return tf.constant(buf.tobytes())


def _same_in_graph(fn, *args):
    eager = fn(*args)
    graph = tf.function(fn)(*args)
    mapped = next(iter(tf.data.Dataset.from_tensors(args).map(lambda *a: fn(*a))))
    np.testing.assert_allclose(np.asarray(graph), np.asarray(eager), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(eager), rtol=1e-5, atol=1e-3)
    return eager


def test_decode_jpeg_and_png(jpeg, png):
    from_png = _same_in_graph(I.decode_image, png)
    np.testing.assert_array_equal(from_png.numpy(), _picture())  # lossless
    from_jpeg = _same_in_graph(I.decode_image, jpeg)
    assert from_jpeg.shape == (30, 40, 3) and from_jpeg.dtype == tf.uint8
    assert np.abs(from_jpeg.numpy().astype(int) - _picture()).mean() < 3
    np.testing.assert_array_equal(_same_in_graph(I.image_shape, jpeg).numpy(), [30, 40, 3])
    np.testing.assert_array_equal(_same_in_graph(I.image_shape, png).numpy(), [30, 40, 3])


def test_grey_jpeg_decodes_to_three_channels():
    ok, buf = cv2.imencode(".jpg", _picture()[:, :, 0])
    out = I.decode_image(tf.constant(buf.tobytes()))
    assert out.shape == (30, 40, 3)
    np.testing.assert_array_equal(out[..., 0].numpy(), out[..., 2].numpy())


def test_central_crop_window():
    w = _same_in_graph(lambda s: I.central_crop_window(s, 0.875), tf.constant([32, 40, 3]))
    np.testing.assert_array_equal(w.numpy(), [2, 2, 28, 35])
    w = I.central_crop_window(tf.constant([10, 10, 3]), 1.0)
    np.testing.assert_array_equal(w.numpy(), [0, 0, 10, 10])


def test_random_crop_window_is_stateless_and_in_range():
    shape = tf.constant([100, 120, 3])
    fn = lambda sh, s: I.random_crop_window(sh, s, area_range=(0.5, 0.8))  # noqa: E731
    w = _same_in_graph(fn, shape, SEED).numpy()
    np.testing.assert_array_equal(fn(shape, SEED).numpy(), w)
    y, x, h, ww = w
    assert 0.5 * 12000 * 0.9 <= h * ww <= 0.8 * 12000 * 1.1
    assert y >= 0 and x >= 0 and y + h <= 100 and x + ww <= 120
    windows = {tuple(fn(shape, tf.constant([1, i])).numpy()) for i in range(8)}
    assert len(windows) > 1


def test_decode_crop_matches_decode_then_slice(jpeg, png):
    window = tf.constant([3, 5, 20, 24])
    for enc in (jpeg, png):
        cropped = _same_in_graph(I.decode_crop, enc, window).numpy().astype(int)
        full = I.decode_image(enc).numpy().astype(int)[3:23, 5:29]
        assert cropped.shape == (20, 24, 3)
        assert np.abs(cropped - full).max() <= 8  # JPEG: chroma upsampling at the window edge


def test_resize_static_shape_and_batch():
    x = tf.constant(_picture())
    out = _same_in_graph(lambda a: I.resize(a, (12, 16)), x)
    assert out.shape == (12, 16, 3) and out.dtype == tf.float32
    assert I.resize(tf.stack([x, x]), 8).shape == (2, 8, 8, 3)


def test_preprocess_for_eval_and_train(jpeg):
    ev = _same_in_graph(lambda e: I.preprocess_for_eval(e, 16), jpeg)
    assert ev.shape == (16, 16, 3)
    whole = I.preprocess_for_eval(jpeg, 16, central_fraction=None)
    assert not np.allclose(ev.numpy(), whole.numpy())
    for crop in ("random", "central", "none"):
        tr = _same_in_graph(
            lambda e, s, c=crop: I.preprocess_for_train(e, 16, s, crop=c), jpeg, SEED
        )
        assert tr.shape == (16, 16, 3)
    flips = [
        I.preprocess_for_train(jpeg, 16, tf.constant([0, i]), crop="none").numpy()[:, 0, 0].mean()
        for i in range(10)
    ]
    assert len({round(f, 2) for f in flips}) == 2  # flipped or not
    with pytest.raises(ValueError, match="'crop' parameter must be one of"):
        I.preprocess_for_train(jpeg, 16, SEED, crop="zoom")


def test_equalize_histogram_matches_faces_equalize_on_grey():
    rng = np.random.default_rng(0)
    grey = np.clip(rng.normal(110, 15, (20, 24)), 40, 200).astype(np.uint8)
    rgb = faces.gray_to_rgb(grey)
    for keep in (True, False):
        out = _same_in_graph(lambda x, k=keep: I.equalize_histogram(x, keep_range=k), rgb)
        want = faces.equalize(rgb, keep_range=keep)
        np.testing.assert_allclose(out.numpy(), want.astype(np.float32), atol=1.0)
    batch = I.equalize_histogram(tf.stack([rgb, rgb]))
    assert batch.shape == (2, 20, 24, 3)


def test_equalize_histogram_colour_spreads_luminance():
    dark = (_picture() // 3).astype(np.uint8)
    out = _same_in_graph(lambda x: I.equalize_histogram(x, keep_range=False), dark).numpy()
    luma = lambda a: (a * [0.299, 0.587, 0.114]).sum(-1)  # noqa: E731
    assert luma(out).std() > 1.5 * luma(dark.astype(np.float32)).std()
    assert out.min() >= 0 and out.max() <= 255
    flat = np.full((5, 5, 3), 9, np.uint8)
    np.testing.assert_allclose(I.equalize_histogram(flat).numpy(), flat)


@pytest.mark.parametrize("family", ["inception", "vgg", "imagenet", "facenet", "unit"])
def test_normalize_delegates_to_the_normalization_families(family):
    from fer_tf.preprocessing.normalization import normalize

    x = tf.constant(_picture(), tf.float32)
    out = _same_in_graph(lambda a: I.normalize(a, family), x)
    np.testing.assert_allclose(out.numpy(), normalize(x, family).numpy())


def test_split_seed_and_as_size():
    a, b = I.split_seed(SEED, 2)
    assert a.shape == (2,) and not np.array_equal(a.numpy(), b.numpy())
    _same_in_graph(lambda s: tf.stack(I.split_seed(s, 3)), SEED)
    assert I.as_size(5) == (5, 5) and I.as_size((3, 4)) == (3, 4)
    for bad in (0, (3,), (3, 0), "big", True, (2.5, 3)):
        with pytest.raises(ValueError, match="'image_size' parameter"):
            I.as_size(bad)
