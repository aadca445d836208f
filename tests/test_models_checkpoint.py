"""Loading TF-Slim checkpoints (written here with tf.raw_ops.SaveV2) and Keras VGG16 .h5 files."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_models_slim import read_variables, reference, reference_value

from fer_tf.models import create_model, load_keras_vgg16_h5, load_slim_checkpoint
from fer_tf.models.slim_checkpoint import slim_variable_shapes


def write_checkpoint(prefix: str, values: dict[str, np.ndarray]) -> str:
    names = list(values)
    tf.raw_ops.SaveV2(
        prefix=prefix,
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(values[n]) for n in names],
    )
    return prefix


@pytest.fixture(scope="module")
def v2_checkpoint(tmp_path_factory):
    """The full Inception V2 reference weights as a slim checkpoint (about 45 MB)."""
    prefix = str(tmp_path_factory.mktemp("ckpt") / "inception_v2.ckpt")
    values = {n: reference_value(n, s) for n, s in read_variables("inception_v2")}
    values["global_step"] = np.asarray(1234, dtype=np.int64)
    values["InceptionV2/Logits/Conv2d_1c_1x1/biases/RMSProp"] = np.zeros(1001, np.float32)
    return write_checkpoint(prefix, values)


@pytest.fixture(scope="module")
def tiny_v2():
    return create_model(
        "inception_v2", depth_multiplier=0.25, input_shape=(64, 64, 3), classes=1001
    )


@pytest.fixture(scope="module")
def tiny_values(tiny_v2):
    return {n: reference_value(n, s) for n, s in slim_variable_shapes(tiny_v2).items()}


def test_slim_checkpoint_loads_and_matches_slim_logits(v2_checkpoint):
    _, expected, x = reference("inception_v2", 224)
    model = create_model("inception_v2", classes=1001)
    report = load_slim_checkpoint(model, v2_checkpoint)
    assert len(report.loaded) == 277
    assert sorted(report.skipped) == [
        "InceptionV2/Logits/Conv2d_1c_1x1/biases/RMSProp",
        "global_step",
    ]
    assert not report.missing and not report.unexpected and not report.unmapped
    np.testing.assert_allclose(
        np.asarray(model(x, training=False)), expected["logits"], rtol=1e-3, atol=1e-3
    )


def test_background_drop_gives_1000_classes(v2_checkpoint):
    _, expected, x = reference("inception_v2", 224)
    # A misspelt weight name is refused before anything is built or downloaded.
    with pytest.raises(ValueError, match="Did you mean 'imagenet'"):
        create_model("inception_v2", classes=1000, weights="imagenett")
    # the builder's weights= argument drops the background row for 1000 classes
    model = create_model("inception_v2", classes=1000, weights=v2_checkpoint)
    np.testing.assert_allclose(
        np.asarray(model(x, training=False)), expected["logits"][:, 1:], rtol=1e-3, atol=1e-3
    )
    with pytest.raises(ValueError, match="background='drop'"):
        load_slim_checkpoint(model, v2_checkpoint)
    report = load_slim_checkpoint(model, v2_checkpoint, background="drop")
    assert sorted(report.background_dropped) == [
        "InceptionV2/Logits/Conv2d_1c_1x1/biases",
        "InceptionV2/Logits/Conv2d_1c_1x1/weights",
    ]


def test_exclude_scopes_for_new_classes(tmp_path, tiny_v2, tiny_values):
    prefix = write_checkpoint(str(tmp_path / "tiny"), tiny_values)
    model = create_model("inception_v2", depth_multiplier=0.25, input_shape=(64, 64, 3), classes=7)
    with pytest.raises(ValueError, match="Shape mismatch"):
        load_slim_checkpoint(model, prefix)
    report = load_slim_checkpoint(model, prefix, exclude_scopes=("InceptionV2/Logits",))
    assert sorted(report.excluded) == [
        "InceptionV2/Logits/Conv2d_1c_1x1/biases",
        "InceptionV2/Logits/Conv2d_1c_1x1/weights",
    ]
    assert len(report.loaded) == len(tiny_values) - 2
    # slim's comma-separated string form works too
    report = load_slim_checkpoint(model, prefix, exclude_scopes="InceptionV2/Logits, Foo/Bar")
    assert len(report.loaded) == len(tiny_values) - 2
    layer = model.get_layer("Mixed_5c_Branch_0_Conv2d_0a_1x1")
    np.testing.assert_array_equal(
        layer.kernel.numpy(), tiny_values["InceptionV2/Mixed_5c/Branch_0/Conv2d_0a_1x1/weights"]
    )


def test_missing_variable_is_listed(tmp_path, tiny_v2, tiny_values):
    gone = "InceptionV2/Mixed_4b/Branch_2/Conv2d_0b_3x3/BatchNorm/moving_variance"
    values = {k: v for k, v in tiny_values.items() if k != gone}
    prefix = write_checkpoint(str(tmp_path / "missing"), values)
    model = create_model("inception_v2", depth_multiplier=0.25, input_shape=(64, 64, 3))
    before = model.get_layer("Conv2d_2b_1x1").kernel.numpy().copy()
    with pytest.raises(ValueError, match="missing from checkpoint") as info:
        load_slim_checkpoint(model, prefix)
    assert gone in str(info.value)
    assert "does not have" not in str(info.value)
    # nothing was assigned
    np.testing.assert_array_equal(model.get_layer("Conv2d_2b_1x1").kernel.numpy(), before)
    report = load_slim_checkpoint(model, prefix, ignore_missing=True)
    assert report.missing == [gone]
    assert len(report.loaded) == len(tiny_values) - 1


def test_extra_variable_is_listed(tmp_path, tiny_values):
    extra = "InceptionV2/Mixed_9z/Branch_0/Conv2d_0a_1x1/weights"
    values = dict(tiny_values)
    values[extra] = np.zeros((1, 1, 4, 4), np.float32)
    prefix = write_checkpoint(str(tmp_path / "extra"), values)
    model = create_model("inception_v2", depth_multiplier=0.25, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="variables the model does not have") as info:
        load_slim_checkpoint(model, prefix)
    assert extra in str(info.value)
    report = load_slim_checkpoint(model, prefix, ignore_unexpected=True)
    assert report.unexpected == [extra]


def test_missing_and_extra_are_both_listed(tmp_path, tiny_values):
    values = dict(tiny_values)
    gone = "InceptionV2/Conv2d_2b_1x1/weights"
    del values[gone]
    values["vgg_16/fc8/biases"] = np.zeros(3, np.float32)
    prefix = write_checkpoint(str(tmp_path / "both"), values)
    model = create_model("inception_v2", depth_multiplier=0.25, input_shape=(64, 64, 3))
    with pytest.raises(ValueError) as info:
        load_slim_checkpoint(model, prefix)
    assert gone in str(info.value) and "vgg_16/fc8/biases" in str(info.value)


def test_checkpoint_errors(tmp_path, tiny_v2):
    with pytest.raises(ValueError, match=r"^The 'background' parameter must be one of \['keep', "):
        load_slim_checkpoint(tiny_v2, str(tmp_path / "x"), background="x")
    with pytest.raises(FileNotFoundError):
        load_slim_checkpoint(tiny_v2, str(tmp_path / "does_not_exist"))


def test_heads_model_loads_backbone_and_reports_unmapped(tmp_path, tiny_values):
    from fer_tf.models import build_classifier

    base_values = {k: v for k, v in tiny_values.items() if "/Logits/" not in k}
    prefix = write_checkpoint(str(tmp_path / "base"), base_values)
    model = build_classifier(
        "inception_v2",
        {"au": 5},
        input_shape=(64, 64, 3),
        backbone_kwargs={"depth_multiplier": 0.25},
    )
    report = load_slim_checkpoint(model, prefix)
    assert len(report.loaded) == len(base_values)
    assert report.unmapped == ["head_au/dense/kernel", "head_au/dense/bias"]


# --------------------------------------------------------------------------- Keras VGG16 .h5


@pytest.fixture(scope="module")
def keras_vgg():
    return keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))


@pytest.mark.parametrize("fmt", ["weights.h5", "legacy.h5"])
def test_load_keras_vgg16_h5(tmp_path, keras_vgg, fmt):
    path = str(tmp_path / f"vgg16_notop.{fmt}")
    if fmt == "weights.h5":
        keras_vgg.save_weights(path)  # Keras 3 layout
    else:
        keras_vgg.save(path)  # legacy HDF5 layout (layer_names / weight_names attributes)
    ours = create_model("vgg16", include_top=False, input_shape=(32, 32, 3))
    report = load_keras_vgg16_h5(ours, path)
    assert len(report.loaded) == 26
    rgb = np.random.default_rng(0).uniform(-120, 130, (2, 32, 32, 3)).astype(np.float32)
    expected = keras_vgg(rgb[..., ::-1])  # Keras-applications VGG16 takes BGR (caffe)
    np.testing.assert_allclose(np.asarray(ours(rgb)), np.asarray(expected), rtol=1e-4, atol=1e-4)
    # without the BGR->RGB flip the model reproduces Keras exactly on the same input
    load_keras_vgg16_h5(ours, path, bgr_to_rgb=False)
    np.testing.assert_allclose(
        np.asarray(ours(rgb)), np.asarray(keras_vgg(rgb)), rtol=1e-4, atol=1e-4
    )


def test_load_keras_vgg16_h5_errors(tmp_path):
    ours = create_model("vgg16", include_top=False, input_shape=(32, 32, 3))
    with pytest.raises(FileNotFoundError):
        load_keras_vgg16_h5(ours, str(tmp_path / "nope.h5"))
    small = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3, name="block1_conv1")]
    )
    path = str(tmp_path / "partial.weights.h5")
    small.save_weights(path)
    with pytest.raises(ValueError, match="lacks the Keras VGG16 layers"):
        load_keras_vgg16_h5(ours, path)


def test_weights_argument_for_backbones_and_heads(tmp_path, tiny_values):
    from fer_tf.models import build_classifier

    prefix = write_checkpoint(str(tmp_path / "full"), tiny_values)  # includes the logits
    model = build_classifier(
        "inception_v2",
        {"emotion": 7},
        input_shape=(64, 64, 3),
        backbone_kwargs={"depth_multiplier": 0.25},
        weights=prefix,
    )
    np.testing.assert_array_equal(
        model.get_layer("Conv2d_2b_1x1").kernel.numpy(),
        tiny_values["InceptionV2/Conv2d_2b_1x1/weights"],
    )
    # a checkpoint lacking a backbone variable still fails
    gone = "InceptionV2/Mixed_3b/Branch_0/Conv2d_0a_1x1/weights"
    partial = write_checkpoint(
        str(tmp_path / "partial"), {k: v for k, v in tiny_values.items() if k != gone}
    )
    with pytest.raises(ValueError, match=gone):
        create_model(
            "inception_v2",
            include_top=False,
            depth_multiplier=0.25,
            input_shape=(64, 64, 3),
            weights=partial,
        )


def test_weights_argument_keras_weights_file(tmp_path):
    model = create_model("tiny_cnn", input_shape=(32, 32, 3))
    path = str(tmp_path / "tiny.weights.h5")
    model.save_weights(path)
    clone = create_model("tiny_cnn", input_shape=(32, 32, 3), weights=path)
    for a, b in zip(model.weights, clone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
