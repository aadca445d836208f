"""Freezing: trainable variable sets per mode, and a real training step leaving frozen state alone."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fer_tf.models import (
    HeadSpec,
    apply_freezing,
    build_classifier,
    create_model,
    freeze_up_to,
    set_trainable_scopes,
    train_layer_mode,
    unfreeze_last_n,
)
from fer_tf.models.freezing import TRAIN_LAYER_MODES, trainable_summary


@pytest.fixture(scope="module")
def v2_heads():
    return build_classifier(
        "inception_v2",
        {"au": 5, "va": HeadSpec("regression", 2, bound="tanh")},
        input_shape=(64, 64, 3),
        backbone_kwargs={"depth_multiplier": 0.25, "bn_decay": 0.5},
    )


def _blocks(model, trainable: bool) -> set[str]:
    out = set()
    for layer in model.layers:
        if layer.weights and layer.trainable == trainable:
            scope = getattr(layer, "slim_scope", None)
            out.add(scope.split("/")[1] if scope else layer.name)
    return out


V2_ORDER = [
    "Conv2d_1a_7x7",
    "Conv2d_2b_1x1",
    "Conv2d_2c_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "Mixed_4a",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_5a",
    "Mixed_5b",
    "Mixed_5c",
]
V2_FROZEN_THROUGH = {1: "Conv2d_2c_3x3", 2: "Mixed_3c", 3: "Mixed_4e", 4: "Mixed_5b", 5: "Mixed_5c"}


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4, 5])
def test_inception_v2_train_layer_mode_sets(v2_heads, mode):
    frozen = train_layer_mode(v2_heads, mode)
    cut = 0 if mode == 0 else V2_ORDER.index(V2_FROZEN_THROUGH[mode]) + 1
    assert _blocks(v2_heads, trainable=False) == set(V2_ORDER[:cut])
    assert _blocks(v2_heads, trainable=True) == set(V2_ORDER[cut:]) | {"head_au", "head_va"}
    assert len(frozen) == sum(
        1 for layer in v2_heads.layers if layer.weights and not layer.trainable
    )
    expected = {
        id(w) for layer in v2_heads.layers if layer.trainable for w in layer.trainable_weights
    }
    assert {id(v) for v in v2_heads.trainable_variables} == expected
    train_layer_mode(v2_heads, 0)


def test_train_layer_mode_boundaries_are_documented():
    assert set(TRAIN_LAYER_MODES) == {"InceptionV4", "InceptionV2", "vgg_16", "InceptionResnetV1"}
    for table in TRAIN_LAYER_MODES.values():
        assert sorted(table) == [1, 2, 3, 4, 5]


def test_mode_errors(v2_heads):
    with pytest.raises(ValueError, match=r"must be one of \(0, 1, 2, 3, 4, 5\) for InceptionV2"):
        train_layer_mode(v2_heads, 6)
    with pytest.raises(ValueError, match="must be an int >= 0"):
        train_layer_mode(v2_heads, -1)
    with pytest.raises(ValueError, match="at most one freezing choice"):
        apply_freezing(v2_heads, mode=1, last_n=2)
    with pytest.raises(ValueError, match="Unknown end point 'Mixed_9z'"):
        freeze_up_to(v2_heads, "Mixed_9z")
    with pytest.raises(ValueError, match="preset' parameter must be one of"):
        apply_freezing(v2_heads, preset="seed999")
    with pytest.raises(ValueError, match="No slim variable"):
        set_trainable_scopes(v2_heads, ["NotAScope/"])
    with pytest.raises(ValueError, match="Invalid trainable scope pattern"):
        set_trainable_scopes(v2_heads, ["InceptionV2/(("])
    with pytest.raises(ValueError, match=r"must be an int in \[0, "):
        unfreeze_last_n(v2_heads, 10_000)
    apply_freezing(v2_heads)


def test_unfreeze_last_n(v2_heads):
    assert unfreeze_last_n(v2_heads, 2) == ["head_au", "head_va"]
    names = unfreeze_last_n(v2_heads, 4)
    assert names[-2:] == ["head_au", "head_va"]
    assert all(n.startswith("Mixed_5c_") for n in names[:2])
    assert trainable_summary(v2_heads)["trainable_layers"] == names
    assert unfreeze_last_n(v2_heads, 0) == []
    assert v2_heads.trainable_variables == []
    apply_freezing(v2_heads)


def test_trainable_scopes_regex(v2_heads):
    names = set_trainable_scopes(v2_heads, r"InceptionV2/Mixed_5[bc]/Branch_3")
    assert names == ["Mixed_5b_Branch_3_Conv2d_0b_1x1", "Mixed_5c_Branch_3_Conv2d_0b_1x1"]
    # task heads (no slim names) keep training
    assert set(trainable_summary(v2_heads)["trainable_layers"]) == {*names, "head_au", "head_va"}
    apply_freezing(v2_heads)


def _snapshot(model):
    return {w.path: np.array(w.numpy()) for w in model.weights}


def test_one_training_step_leaves_frozen_weights_and_bn_statistics(v2_heads):
    apply_freezing(v2_heads, mode=3)  # frozen through Mixed_4e
    try:
        before = _snapshot(v2_heads)
        frozen_layers = [
            layer for layer in v2_heads.layers if layer.weights and not layer.trainable
        ]
        live_layers = [
            layer
            for layer in v2_heads.layers
            if layer.weights and layer.trainable and getattr(layer, "use_batch_norm", False)
        ]
        assert frozen_layers and live_layers
        x = tf.random.stateless_uniform((4, 64, 64, 3), seed=(1, 2), minval=-1, maxval=1)
        y_au = tf.constant(np.random.default_rng(0).integers(0, 2, (4, 5)), tf.float32)
        optimizer = tf.keras.optimizers.SGD(0.1)
        with tf.GradientTape() as tape:
            out = v2_heads(x, training=True)
            loss = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=y_au, logits=out["au"])
            ) + tf.reduce_mean(tf.square(out["va"]))
        variables = v2_heads.trainable_variables
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        after = _snapshot(v2_heads)
        for layer in frozen_layers:
            for w in layer.weights:  # kernels, beta and moving statistics
                np.testing.assert_array_equal(after[w.path], before[w.path], err_msg=w.path)
        for layer in live_layers:
            assert not np.array_equal(after[layer.kernel.path], before[layer.kernel.path])
            mean = layer.moving_mean.path
            assert not np.array_equal(after[mean], before[mean]), mean
    finally:
        apply_freezing(v2_heads)


def test_frozen_conv_bn_unit_runs_in_inference_mode():
    model = create_model("tiny_cnn", input_shape=(32, 32, 3))
    layer = model.get_layer("conv1")
    x = tf.random.stateless_normal((8, 32, 32, 3), seed=(3, 4)) * 3 + 1
    # trainable + training=True: batch statistics (outputs differ from inference)
    assert not np.allclose(layer(x, training=True), layer(x, training=False))
    layer.trainable = False
    mean_before = layer.moving_mean.numpy().copy()
    np.testing.assert_allclose(layer(x, training=True), layer(x, training=False), rtol=1e-6)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), mean_before)


def test_moving_statistics_follow_slim_update():
    model = create_model("tiny_cnn", input_shape=(32, 32, 3), bn_decay=0.9)
    layer = model.get_layer("conv1")
    x = tf.random.stateless_normal((4, 32, 32, 3), seed=(5, 6))
    conv = tf.nn.conv2d(x, layer.kernel, strides=2, padding="SAME")
    mean, var = tf.nn.moments(conv, axes=[0, 1, 2])
    n = float(np.prod(conv.shape[:3]))
    layer(x, training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * mean, rtol=1e-4, atol=1e-6)
    expected_var = 0.9 + 0.1 * var * n / (n - 1)
    np.testing.assert_allclose(layer.moving_variance.numpy(), expected_var, rtol=1e-4)


def test_vgg_and_v2_presets_with_heads():
    vgg = build_classifier("vgg16", {"emotion": 6}, input_shape=(32, 32, 3))
    summary = apply_freezing(vgg, preset="athanasiadis2022")
    assert summary["trainable_layers"] == ["head_emotion"]
    summary = apply_freezing(vgg, mode=4)
    assert summary["trainable_layers"] == [
        "conv5_conv5_1",
        "conv5_conv5_2",
        "conv5_conv5_3",
        "head_emotion",
    ]
    with pytest.raises(ValueError, match="Preset 'bartissol2017' is defined for"):
        apply_freezing(create_model("tiny_cnn"), preset="bartissol2017")


def test_small_cnn_modes():
    model = create_model("shallow_cnn")
    assert train_layer_mode(model, 2) == ["conv1", "conv2"]
    assert trainable_summary(model)["trainable_layers"] == ["conv3", "conv4", "fc1", "logits"]
    with pytest.raises(ValueError, match="must be < 6"):
        train_layer_mode(model, 6)


def test_earlier_preset_names_are_still_accepted():
    from fer_tf.models.freezing import FREEZING_PRESET_ALIASES, FREEZING_PRESETS

    assert set(FREEZING_PRESET_ALIASES.values()) <= set(FREEZING_PRESETS)
    a = apply_freezing(
        create_model("vgg16", input_shape=(32, 32, 3), include_top=False), preset="seed004"
    )
    b = apply_freezing(
        create_model("vgg16", input_shape=(32, 32, 3), include_top=False), preset="athanasiadis2022"
    )
    assert a == b
