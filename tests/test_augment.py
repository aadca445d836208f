"""In-graph augmentation (fer_tf.preprocessing.augment): exactness, determinism, graph = eager."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tensorflow as tf

from fer_tf.preprocessing import augment as A

B, H, W = 6, 24, 28
SEED = tf.constant([3, 4], tf.int64)

ALL_GEOMETRY = A.AugmentPolicy(
    rotation_p=1.0,
    rotation=20.0,
    scale_p=1.0,
    scale=(0.8, 1.2),
    translate_p=1.0,
    translate=0.1,
    flip_p=0.5,
    crop_p=1.0,
    crop=0.1,
    fill_mode="constant",
)


@pytest.fixture(scope="module")
def images() -> tf.Tensor:
    return tf.random.stateless_uniform([B, H, W, 3], [0, 1], 0.0, 255.0)


def _same_in_graph(fn, *args):
    """fn(*args) eagerly, in tf.function and inside tf.data.Dataset.map: all equal."""
    eager = fn(*args)
    graph = tf.function(fn)(*args)
    mapped = next(iter(tf.data.Dataset.from_tensors(args).map(lambda *a: fn(*a))))
    np.testing.assert_allclose(graph.numpy(), eager.numpy(), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(mapped.numpy(), eager.numpy(), rtol=1e-5, atol=1e-3)
    return eager


# ------------------------------------------------------------------- eager == graph == tf.data


@pytest.mark.parametrize("name", ["christensen2018", "light"])
def test_policies_same_eagerly_and_in_tf_data(images, name):
    policy = A.get_policy(name)
    out = _same_in_graph(lambda x, s: policy(x, s), images, SEED)
    assert out.shape == images.shape and out.dtype == tf.float32
    assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 255.0


def test_photometric_same_eagerly_and_in_tf_data(images):
    policy = A.CHRISTENSEN2018.replace(blur_p=0.5, noise_p=0.5)
    _same_in_graph(lambda x, s: policy.photometric(x, s), images, SEED)
    _same_in_graph(lambda x, s: policy.photometric(x[:1], s), images, SEED)  # one-image path


def test_geometric_transforms_and_apply_same_in_tf_data(images):
    t = _same_in_graph(lambda s: A.geometric_transforms(ALL_GEOMETRY, B, H, W, s), SEED)
    assert t.shape == (B, 8)
    _same_in_graph(lambda x, m: A.apply_transforms(x, m, fill_mode="constant"), images, t)


def test_warp_and_augment_example_same_in_tf_data(images):
    src = images[0, :20, :25]
    _same_in_graph(
        lambda x, s: A.warp_to_size(x, (16, 18), A.CHRISTENSEN2018, s, flip=True), src, SEED
    )
    _same_in_graph(lambda x, s: A.CHRISTENSEN2018.augment_example(x, 16, s, flip=True), src, SEED)


def test_gaussian_blur_same_in_tf_data_and_matches_opencv(images):
    sigma = tf.constant([0.0, 0.3, 0.6, 0.9, 1.0, 1.0])
    out = _same_in_graph(lambda x, s: A.gaussian_blur(x, s, max_sigma=1.0), images, sigma)
    np.testing.assert_allclose(out[0].numpy(), images[0].numpy(), atol=1e-3)  # sigma 0
    for i in (2, 4):
        ref = cv2.GaussianBlur(
            images[i].numpy(), (7, 7), float(sigma[i]), borderType=cv2.BORDER_REFLECT_101
        )
        np.testing.assert_allclose(out[i].numpy(), ref, atol=1e-2)


# --------------------------------------------------------------------------------- exactness


def test_policy_with_nothing_enabled_is_identity(images):
    np.testing.assert_array_equal(A.AugmentPolicy()(images, SEED).numpy(), images.numpy())
    # Geometry on with zero ranges: the fused transform is the identity, exactly.
    policy = A.AugmentPolicy(rotation_p=1.0, scale_p=1.0, translate_p=1.0, crop_p=1.0)
    np.testing.assert_allclose(policy(images, SEED).numpy(), images.numpy(), atol=1e-3)
    np.testing.assert_array_equal(A.get_policy("none")(images, SEED).numpy(), images.numpy())


def test_flip_is_exact(images):
    out = A.AugmentPolicy(flip_p=1.0)(images, SEED)
    np.testing.assert_allclose(out.numpy(), images.numpy()[:, :, ::-1], atol=1e-3)


def test_fused_transform_moves_points_where_the_matrix_says():
    """A bright dot lands at the forward image of its position under each image's matrix."""
    n, h, w = 8, 41, 45
    y0, x0 = 17, 19
    dot = np.zeros((n, h, w, 1), np.float32)
    dot[:, y0 - 1 : y0 + 2, x0 - 1 : x0 + 2] = 255.0
    t = A.geometric_transforms(ALL_GEOMETRY, n, h, w, SEED).numpy()
    out = A.apply_transforms(tf.constant(dot), t, fill_mode="constant").numpy()
    for i in range(n):
        m = np.append(t[i], 1.0).reshape(3, 3)  # output -> input
        fx, fy, fz = np.linalg.inv(m) @ np.array([x0, y0, 1.0])
        ys, xs = np.nonzero(out[i, :, :, 0] > 0.5 * out[i].max())
        assert abs(xs.mean() - fx / fz) < 1.0 and abs(ys.mean() - fy / fz) < 1.0


def test_translation_direction():
    policy = A.AugmentPolicy(translate_p=1.0, translate=0.25, fill_mode="constant")
    t = A.geometric_transforms(policy, 1, 40, 40, SEED).numpy()[0]
    # A pure shift: output (x, y) reads input (x - tx, y - ty).
    np.testing.assert_allclose(t[[0, 1, 3, 4]], [1, 0, 0, 1], atol=1e-6)
    assert abs(t[2]) <= 10.0 and abs(t[5]) <= 10.0


def test_colour_matrix_equals_the_sequential_ops(images):
    policy = A.AugmentPolicy(
        contrast_p=1.0,
        contrast=(0.5, 1.5),
        color_p=1.0,
        color_gain=(0.8, 1.2),
        saturation=(0.5, 1.5),
        brightness=(-20.0, 20.0),
    )
    fused = policy._colour_matrix(images, B, SEED).numpy()
    s = tf.random.experimental.stateless_split(SEED, 6)
    f = A._uniform(s[1], [B], 0.5, 1.5).numpy()[:, None, None, None]
    g = A._uniform(s[3], [B, 3], 0.8, 1.2).numpy()[:, None, None, :]
    sat = A._uniform(s[4], [B], 0.5, 1.5).numpy()[:, None, None, None]
    b = A._uniform(s[5], [B], -20.0, 20.0).numpy()[:, None, None, None]
    x = images.numpy()
    mean = x.mean(axis=(1, 2), keepdims=True)
    y = ((x - mean) * f + mean) * g
    grey = (y * np.array([0.299, 0.587, 0.114], np.float32)).sum(-1, keepdims=True)
    want = grey + sat * (y - grey) + b
    np.testing.assert_allclose(fused, want, atol=1e-2)
    # The one-image (1x1 convolution) path gives the same numbers as the batched matmul.
    one = policy._colour_matrix(images[:1], 1, SEED).numpy()
    first = policy._colour_matrix(tf.concat([images[:1]] * 2, 0), 2, SEED).numpy()[:1]
    np.testing.assert_allclose(one, first, atol=1e-2)


def test_warp_fast_path_matches_projective_kernel():
    x = tf.random.stateless_uniform([37, 41, 3], [5, 6], 0.0, 255.0)
    policy = A.AugmentPolicy(scale_p=1.0, scale=(1.02, 1.2), translate_p=1.0, translate=0.01)
    for seed in range(4):
        fast = A.warp_to_size(x, (29, 33), policy, [seed, 1], flip=True).numpy()
        slow = A.warp_to_size(x, (29, 33), policy, [seed, 1], flip=True, fast=False).numpy()
        np.testing.assert_allclose(fast, slow, atol=1e-2)


def test_warp_to_size_plain_resize_matches_tf_image_resize():
    x = tf.random.stateless_uniform([30, 40, 3], [7, 8], 0.0, 255.0)
    out = A.warp_to_size(x, (15, 20), None, SEED)  # exact 2x: half-pixel-centre bilinear
    ref = tf.image.resize(x, (15, 20), method="bilinear")
    np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-2)


# ------------------------------------------------------------------------------ determinism


def test_seeded_reproducible_and_vectorised(images):
    a = A.CHRISTENSEN2018(images, SEED).numpy()
    b = A.CHRISTENSEN2018(images, tf.constant([3, 4], tf.int32)).numpy()
    c = A.CHRISTENSEN2018(images, tf.constant([3, 5])).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # One batch: each image draws its own transform.
    t = A.geometric_transforms(ALL_GEOMETRY, B, H, W, SEED).numpy()
    assert len({tuple(np.round(r, 4)) for r in t}) == B


def test_probabilities_are_respected():
    policy = A.AugmentPolicy(flip_p=0.3)
    t = A.geometric_transforms(policy, 2000, 10, 10, SEED).numpy()
    assert 0.25 < (t[:, 0] < 0).mean() < 0.35


# ------------------------------------------------------------------------ face inside frame


def _face_mask(h: int, w: int) -> np.ndarray:
    """A face-cropped image's face: crop_face(margin=0.2) leaves the face box at the central
    1/1.4 of each side; the mask is the ellipse inscribed in that box."""
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(
        mask, (w // 2, h // 2), (int(w / 2.8), int(h / 2.8)), 0, 0, 360, 255.0, thickness=-1
    )
    return mask


def _assert_inside(out: np.ndarray, area: float) -> None:
    frame = np.concatenate([out[:, 0], out[:, -1], out[:, :, 0], out[:, :, -1]], axis=1)
    assert frame.max() < 0.05 * 255.0, "the face touched the frame"
    kept = (out > 127.5).sum(axis=(1, 2)) / area
    assert kept.min() > 0.75  # the face is all there (zoom-out shrinks it by at most 0.95^2)


def test_default_christensen2018_keeps_the_face_inside_the_frame():
    n, h, w = 64, 64, 64
    mask = _face_mask(h, w)
    batch = tf.constant(np.repeat(mask[None, :, :, None], n, axis=0))
    policy = A.CHRISTENSEN2018.replace(fill_mode="constant", fill_value=0.0)
    for seed in range(4):
        out = A.apply_transforms(
            batch,
            A.geometric_transforms(policy, n, h, w, [seed, 9]),
            fill_mode="constant",
        ).numpy()[..., 0]
        _assert_inside(out, (mask > 127.5).sum())


def test_training_path_keeps_the_face_inside_the_frame():
    """make_dataset's path: the whole record image warped to the output size in one go."""
    mask = _face_mask(48, 56)
    out = np.stack(
        [
            A.warp_to_size(mask[:, :, None], 40, A.CHRISTENSEN2018, [s, 1], flip=True).numpy()[
                ..., 0
            ]
            for s in range(48)
        ]
    )
    _assert_inside(out, (_face_mask(40, 40) > 127.5).sum())


# ------------------------------------------------------------------------------- the rest


def test_randaugment_policy_runs(images):
    policy = A.get_policy("randaugment", seed=1, num_ops=1)
    out = policy(images, SEED)
    assert out.shape == images.shape
    assert float(tf.reduce_min(out)) >= 0 and float(tf.reduce_max(out)) <= 255


def test_get_policy_overrides_and_errors():
    assert A.get_policy("christensen2018", rotation=5.0).rotation == 5.0
    assert A.get_policy(None).name == "none"
    assert A.get_policy(A.LIGHT) is A.LIGHT

    def fn(x, s):
        return x

    assert A.get_policy(fn) is fn
    with pytest.raises(ValueError, match="'augment' parameter must be one of.*'imgaug'"):
        A.get_policy("imgaug")
    with pytest.raises(ValueError, match=r"Unknown augmentation parameter\(s\) \['spin'\]"):
        A.get_policy("christensen2018", spin=3)
    with pytest.raises(ValueError, match="'flip_p'.*probability"):
        A.AugmentPolicy(flip_p=1.5)
    with pytest.raises(ValueError, match="'scale'.*low <= high"):
        A.AugmentPolicy(scale=(1.2, 0.8))
    with pytest.raises(ValueError, match="'fill_mode'"):
        A.AugmentPolicy(fill_mode="mirror")
    with pytest.raises(ValueError, match="'interpolation'"):
        A.AugmentPolicy(interpolation="cubic")
    with pytest.raises(ValueError, match="'crop'"):
        A.AugmentPolicy(crop=0.6)


def test_the_earlier_policy_name_is_still_accepted():
    assert A.get_policy("seed000") == A.get_policy("christensen2018") == A.CHRISTENSEN2018


# ------------------------------------------------------------------------- fast paths


def test_an_image_that_drew_no_colour_op_is_left_unchanged(images):
    """The one-image colour path skips the matrix when neither contrast nor colour fired."""
    policy = A.AugmentPolicy(contrast_p=1e-9, contrast=(0.5, 1.5), color_p=1e-9, brightness=(5, 9))
    np.testing.assert_array_equal(policy.photometric(images[:1], SEED).numpy(), images[:1].numpy())
    # Only colour fired (no contrast): the channel means are not needed and the result is the
    # batched matmul's.
    policy = policy.replace(color_p=1.0)
    one = policy.photometric(images[:1], SEED).numpy()
    two = policy.photometric(tf.concat([images[:1]] * 2, 0), SEED).numpy()[:1]
    np.testing.assert_allclose(one, two, atol=1e-2)
    assert not np.allclose(one, images[:1].numpy())


def test_standard_normal_is_standard_normal_and_stateless():
    z = A.standard_normal([300, 301, 1], SEED).numpy().ravel()
    assert z.shape == (300 * 301,)
    np.testing.assert_array_equal(z, A.standard_normal([300, 301, 1], SEED).numpy().ravel())
    assert not np.array_equal(z, A.standard_normal([300, 301, 1], [3, 5]).numpy().ravel())
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert abs(((z - z.mean()) ** 4).mean() / z.var() ** 2 - 3.0) < 0.05
    # Kolmogorov-Smirnov distance to N(0, 1), below the 1% critical value 1.63 / sqrt(n).
    from math import erf, sqrt

    zs = np.sort(z)[::50]
    cdf = np.array([0.5 * (1 + erf(v / sqrt(2))) for v in zs])
    emp = (np.arange(len(zs)) * 50 + 0.5) / len(z)
    assert np.abs(cdf - emp).max() < 1.63 / sqrt(len(z))
    _same_in_graph(lambda s: A.standard_normal([5, 7, 3], s), SEED)
