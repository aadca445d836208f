"""fer_tf's native image warp: built on first use, the same output as TensorFlow's stock kernel,
and a clean fall-back to the stock kernels when it cannot be built."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from fer_tf.preprocessing import augment as A
from fer_tf.preprocessing import native

MODES = ("REFLECT", "WRAP", "CONSTANT", "NEAREST")
HAVE_COMPILER = bool(os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++"))


@pytest.fixture(scope="module")
def op():
    module = native.image_ops()
    if HAVE_COMPILER:
        assert module is not None, native.status()
        assert native.status().startswith("loaded from")
    else:  # the documented fall-back: the reason is kept, the stock kernels are used
        assert module is None and "compiler" in native.status()
        pytest.skip("no C++ compiler on this machine: the native kernel cannot be built")
    return module


def _transforms(rng: np.random.Generator, n: int, projective: bool) -> np.ndarray:
    """Rotations, zooms and shifts, some far outside the image; some with a perspective term."""
    theta = rng.uniform(-0.6, 0.6, n)
    s = rng.uniform(0.5, 1.8, n)
    t = np.stack(
        [
            np.cos(theta) * s,
            -np.sin(theta) * s,
            rng.uniform(-40, 40, n),
            np.sin(theta) * s,
            np.cos(theta) * s,
            rng.uniform(-40, 40, n),
            np.zeros(n),
            np.zeros(n),
        ],
        axis=1,
    )
    t[0, 2] = 500.0  # every sample outside
    if projective:
        t[:, 6:] = rng.uniform(-2e-3, 2e-3, (n, 2))
    return t.astype(np.float32)


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("projective", [False, True])
def test_same_output_as_image_projective_transform_v3(op, channels, projective):
    rng = np.random.default_rng(channels + 10 * projective)
    images = rng.integers(0, 256, (5, 23, 31, channels)).astype(np.uint8)
    transforms = _transforms(rng, 5, projective)
    for mode in MODES:
        for interpolation in ("BILINEAR", "NEAREST"):
            kw = dict(
                transforms=transforms,
                output_shape=[19, 37],
                fill_value=7.5,
                interpolation=interpolation,
                fill_mode=mode,
            )
            ref = tf.raw_ops.ImageProjectiveTransformV3(images=images.astype(np.float32), **kw)
            for src in (images, images.astype(np.float32)):
                out = op.fer_image_warp(images=src, **kw)
                assert out.dtype == tf.float32 and out.shape == (5, 19, 37, channels)
                # Bit for bit: the same arithmetic as the stock kernel, SIMD lanes included.
                np.testing.assert_array_equal(out.numpy(), ref.numpy(), err_msg=mode)


def test_one_transform_for_the_whole_batch_and_large_images(op):
    rng = np.random.default_rng(3)
    # Large enough for the multi-threaded path (over 2M output values) and the 4-pixel SIMD path.
    images = rng.integers(0, 256, (8, 320, 300, 3)).astype(np.uint8)
    t = _transforms(rng, 1, False)
    t[0, 2] = 3.0
    kw = dict(
        transforms=t,
        output_shape=[299, 299],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    ref = tf.raw_ops.ImageProjectiveTransformV3(images=images.astype(np.float32), **kw)
    np.testing.assert_array_equal(op.fer_image_warp(images=images, **kw).numpy(), ref.numpy())


@pytest.mark.parametrize(
    "n_transform,output_shape,match",
    [(6, [4, 4], "transforms must be"), (8, [0, 4], "output_shape must be positive")],
)
def test_bad_shapes_raise_clear_errors(op, n_transform, output_shape, match):
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        op.fer_image_warp(
            images=np.zeros((1, 4, 4, 3), np.float32),
            transforms=np.zeros((1, n_transform), np.float32),
            output_shape=output_shape,
            fill_value=0.0,
            interpolation="BILINEAR",
        )


@pytest.mark.parametrize("dtype", [tf.uint8, tf.float32])
def test_warp_to_size_same_with_and_without_the_native_kernel(op, dtype):
    x = tf.cast(tf.random.stateless_uniform([37, 41, 3], [5, 6], 0.0, 255.0), dtype)
    for policy in (A.CHRISTENSEN2018, A.get_policy("light"), None):
        for seed in range(12):
            stock = A.warp_to_size(
                x, (29, 33), policy, [seed, 1], flip=True, fast=False, native=False
            )
            fused = A.warp_to_size(x, (29, 33), policy, [seed, 1], flip=True)
            np.testing.assert_array_equal(fused.numpy(), stock.numpy())


def test_warp_to_size_native_inside_tf_data_map(op):
    x = tf.cast(tf.random.stateless_uniform([40, 44, 3], [1, 2], 0.0, 255.0), tf.uint8)
    ds = tf.data.Dataset.range(6).map(
        lambda i: A.warp_to_size(x, 32, A.CHRISTENSEN2018, tf.stack([i, 7]), flip=True)
    )
    for i, got in enumerate(ds):
        want = A.warp_to_size(x, 32, A.CHRISTENSEN2018, [i, 7], flip=True, fast=False, native=False)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_colour_clip_is_matrix_offset_then_clip(op, channels):
    rng = np.random.default_rng(channels)
    x = rng.uniform(-20, 280, (3, 17, 19, channels)).astype(np.float32)
    m = rng.uniform(-0.5, 1.5, (3, channels, channels)).astype(np.float32)
    o = rng.uniform(-30, 30, (3, channels)).astype(np.float32)
    got = op.fer_colour_clip(images=x, matrix=m, offset=o, lo=0.0, hi=255.0).numpy()
    want = np.clip(np.einsum("bhwi,bij->bhwj", x, m) + o[:, None, None, :], 0.0, 255.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    assert got.min() >= 0.0 and got.max() <= 255.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="matrix must be"):
        op.fer_colour_clip(images=x, matrix=m[:1], offset=o, lo=0.0, hi=255.0)


@pytest.mark.parametrize("shape", [(2, 9, 11, 3), (1, 40, 37, 3), (3, 8, 5, 1), (1, 7, 7, 4)])
def test_gaussian_blur_matches_the_depthwise_convolutions(op, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.uniform(0, 255, shape).astype(np.float32)
    sigma = rng.uniform(0.0, 1.0, shape[0]).astype(np.float32)
    want = A.gaussian_blur(x, sigma, max_sigma=1.0).numpy()
    got = op.fer_gaussian_blur(images=x, taps=A.gaussian_taps(sigma, 1.0)).numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="needs images larger"):
        op.fer_gaussian_blur(images=x[:, :2, :2], taps=A.gaussian_taps(sigma, 1.0))
    with pytest.raises(tf.errors.InvalidArgumentError, match="taps must be"):
        op.fer_gaussian_blur(images=x, taps=np.ones((shape[0], 4), np.float32))


def test_augment_example_native_equals_stock_up_to_rounding(op):
    x = tf.cast(tf.random.stateless_uniform([40, 44, 3], [3, 4], 0.0, 255.0), tf.uint8)
    policy = A.CHRISTENSEN2018

    def stock(seed: tf.Tensor) -> tf.Tensor:
        # The same draws through the stock kernels: the projective warp, whose sampling the
        # native warp reproduces exactly (the stock crop_and_resize shortcut for unrotated
        # images differs from it along the constant-fill boundary), then the stock colour pass.
        warp_seed, photo_seed = tf.unstack(
            tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        )
        warped = A.warp_to_size(x, 32, policy, warp_seed, flip=True, fast=False, native=False)
        return policy.photometric(warped[None], photo_seed, native=False)[0]

    native_fn = tf.function(lambda s: policy.augment_example(x, 32, s, flip=True))
    for seed in range(16):
        s = tf.constant([seed, 2])
        np.testing.assert_allclose(native_fn(s).numpy(), stock(s).numpy(), rtol=0, atol=2e-3)


_CHILD = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="LOG %(message)s")
    import numpy as np, tensorflow as tf
    from fer_tf.preprocessing import augment as A, native
    x = tf.random.stateless_uniform([20, 24, 3], [1, 2], 0.0, 255.0)
    a = A.warp_to_size(x, 16, A.CHRISTENSEN2018, [3, 4], flip=True).numpy()
    b = A.warp_to_size(x, 16, A.CHRISTENSEN2018, [3, 4], flip=True, fast=False, native=False)
    print("SAME", bool(np.array_equal(a, b.numpy())))
    print("STATUS", native.status())
    """
)


def _child(tmp_path, **env: str) -> str:
    full = {**os.environ, "FER_TF_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    full.pop("CXX", None)
    full.update(env)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], env=full, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_disabled_by_environment_uses_the_stock_kernel(tmp_path):
    out = _child(tmp_path, FER_TF_NATIVE_OPS="0")
    assert "SAME True" in out
    assert "STATUS disabled by FER_TF_NATIVE_OPS=0" in out
    assert not (tmp_path / "home" / "ops").exists()


def test_a_failing_compiler_falls_back_with_the_reason(tmp_path):
    out = _child(tmp_path, CXX="false")
    assert "SAME True" in out
    assert "STATUS false failed (exit 1)" in out
    assert "native image kernels unavailable" in out  # the one warning, with what to expect
    # Nothing half-written is left to be loaded by the next process.
    assert not list((tmp_path / "home" / "ops").glob("*.so*"))


@pytest.mark.skipif(not HAVE_COMPILER, reason="needs a C++ compiler to build the kernel")
def test_built_once_then_loaded_from_the_cache(tmp_path):
    first = _child(tmp_path)
    assert "compiling the native image kernels" in first and "SAME True" in first
    built = list((tmp_path / "home" / "ops").glob("fer_image_ops-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    second = _child(tmp_path)
    assert "compiling" not in second and f"STATUS loaded from {built[0]}" in second
    assert built[0].stat().st_mtime_ns == stamp
