"""Faithfulness to TF-Slim: parameter counts, variable names, end point shapes, logits parity.

Reference facts (variables.tsv, expected_*.npz/json) come from running the original slim network
definitions; see tests/data/slim/README.md (copied from the shared reference). Each big model is
built once per module.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from fer_tf.models import (
    apply_freezing,
    create_model,
    get_endpoints,
    get_endpoints_model,
    slim_variable_map,
)
from fer_tf.models.freezing import TRAIN_LAYER_MODES
from fer_tf.models.slim_checkpoint import assign_slim_values

DATA = Path(__file__).parent / "data" / "slim"


# --------------------------------------------------------------------------- reference spec


def reference_value(name: str, shape) -> np.ndarray:
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
    leaf = name.rsplit("/", 1)[-1]
    shape = tuple(int(s) for s in shape)
    if leaf == "depthwise_weights":
        return (rng.standard_normal(shape) * np.sqrt(2.0 / (shape[0] * shape[1]))).astype(
            np.float32
        )
    if leaf in ("weights", "pointwise_weights"):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[:-1]))).astype(np.float32)
    if leaf in ("biases", "beta", "moving_mean"):
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)
    if leaf == "moving_variance":
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    raise ValueError(name)


def reference_input(batch: int, height: int, width: int, seed: int) -> np.ndarray:
    return (
        np.random.default_rng(seed).uniform(-1.0, 1.0, (batch, height, width, 3)).astype(np.float32)
    )


def read_variables(folder: str) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (DATA / folder / "variables.tsv").read_text().splitlines():
        name, shape = line.split("\t")
        rows.append((name, tuple(int(s) for s in shape.split(","))))
    return rows


def reference(folder: str, size: int) -> tuple[dict, dict[str, np.ndarray], np.ndarray]:
    meta = json.loads((DATA / folder / f"expected_{size}.json").read_text())
    with np.load(DATA / folder / f"expected_{size}.npz") as npz:
        expected = {k: npz[k] for k in npz.files}
    x = reference_input(meta["batch"], size, size, meta["input_seed"])
    return meta, expected, x


def n_params(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def assign_reference(model, folder: str) -> None:
    rows = read_variables(folder)
    assign_slim_values(model, {name: reference_value(name, shape) for name, shape in rows})


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def v4():
    return create_model("inception_v4", classes=1001, aux_logits=True)


@pytest.fixture(scope="module")
def v2():
    return create_model("inception_v2", classes=1001)


@pytest.fixture(scope="module")
def vgg():
    return create_model("vgg16", classes=1000)


# --------------------------------------------------------------------------- parameter counts


def test_inception_v4_param_counts(v4):
    assert v4.count_params() == 46_074_066
    assert n_params(v4.trainable_weights) == 46_009_106


def test_inception_v4_base_param_counts():
    base = create_model("inception_v4", include_top=False, input_shape=(150, 150, 3))
    assert base.count_params() == 41_174_400
    assert n_params(base.trainable_weights) == 41_111_232
    # slim: Mixed_7d is 3x3 at 150x150.
    assert tuple(get_endpoints(base, ["Mixed_7d"])["Mixed_7d"].shape[1:]) == (3, 3, 1536)


def test_inception_v2_param_counts(v2):
    assert v2.count_params() == 11_199_137
    assert n_params(v2.trainable_weights) == 11_179_361


def test_inception_v2_base_param_counts():
    base = create_model("inception_v2", include_top=False)
    assert base.count_params() == 10_173_112
    assert n_params(base.trainable_weights) == 10_153_336


def test_vgg16_param_counts(vgg):
    assert vgg.count_params() == 138_357_544
    assert n_params(vgg.trainable_weights) == 138_357_544


# --------------------------------------------------------------------------- names and shapes


@pytest.mark.parametrize(
    ("fixture", "folder"),
    [("v4", "inception_v4"), ("v2", "inception_v2"), ("vgg", "vgg_16")],
)
def test_every_slim_variable_maps_one_to_one(request, fixture, folder):
    model = request.getfixturevalue(fixture)
    rows = read_variables(folder)
    mapping = slim_variable_map(model)
    assert len(rows) == len({name for name, _ in rows})
    assert set(mapping) == {name for name, _ in rows}
    assert len(mapping) == len(model.weights)  # every Keras weight has exactly one slim name
    assert len({id(v) for v in mapping.values()}) == len(mapping)
    for name, shape in rows:
        assert tuple(mapping[name].shape) == shape, name
    meta = json.loads(next((DATA / folder).glob("expected_*.json")).read_text())
    assert meta["num_variables"] == len(rows)
    assert meta["num_values"] == model.count_params()


V4_ENDPOINT_SHAPES_299 = {
    "Conv2d_1a_3x3": (149, 149, 32),
    "Conv2d_2a_3x3": (147, 147, 32),
    "Conv2d_2b_3x3": (147, 147, 64),
    "Mixed_3a": (73, 73, 160),
    "Mixed_4a": (71, 71, 192),
    "Mixed_5a": (35, 35, 384),
    **{f"Mixed_5{k}": (35, 35, 384) for k in "bcde"},
    "Mixed_6a": (17, 17, 1024),
    **{f"Mixed_6{k}": (17, 17, 1024) for k in "bcdefgh"},
    "Mixed_7a": (8, 8, 1536),
    **{f"Mixed_7{k}": (8, 8, 1536) for k in "bcd"},
    "global_pool": (1, 1, 1536),
    "PreLogitsFlatten": (1536,),
    "Logits": (1001,),
    "AuxLogits": (1001,),
}


def test_inception_v4_endpoint_shapes_299(v4):
    shapes = {k: tuple(v.shape[1:]) for k, v in get_endpoints(v4).items()}
    assert shapes == V4_ENDPOINT_SHAPES_299


def test_inception_v4_endpoint_shapes_350x400():
    base = create_model(
        "inception_v4", include_top=False, input_shape=(350, 400, 3), final_endpoint="Mixed_7d"
    )
    assert tuple(base.output.shape[1:]) == (9, 11, 1536)
    assert tuple(get_endpoints(base, ["Mixed_6h"])["Mixed_6h"].shape[1:]) == (20, 23, 1024)


def test_inception_v2_endpoint_shapes_224(v2):
    shapes = {k: tuple(v.shape[1:]) for k, v in get_endpoints(v2).items()}
    meta = json.loads((DATA / "inception_v2" / "expected_224.json").read_text())
    for name, stats in meta["endpoint_stats"].items():
        assert shapes[name] == tuple(stats["shape"][1:]), name
    assert shapes["Mixed_5c"] == (7, 7, 1024)
    assert shapes["Logits"] == (1001,)


def test_vgg16_endpoint_shapes_224(vgg):
    shapes = {k: tuple(v.shape[1:]) for k, v in get_endpoints(vgg).items()}
    assert shapes["vgg_16/pool5"] == (7, 7, 512)
    assert shapes["vgg_16/fc7"] == (1, 1, 4096)
    assert shapes["vgg_16/fc8"] == (1, 1, 1000)
    # short aliases resolve to slim's full end point names
    assert list(get_endpoints(vgg, ["pool5"])) == ["vgg_16/pool5"]


# --------------------------------------------------------------------------- numerical parity


def _check_endpoint_stats(model, x, meta) -> None:
    names = list(meta["endpoint_stats"])
    out = get_endpoints_model(model, names)(x, training=False)
    for name, stats in meta["endpoint_stats"].items():
        value = np.asarray(out[name])
        assert value.shape == tuple(stats["shape"]), name
        np.testing.assert_allclose(value.mean(), stats["mean"], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(value.std(), stats["std"], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(np.abs(value).max(), stats["abs_max"], rtol=1e-3, atol=1e-3)


def test_inception_v4_matches_slim_logits(v4):
    meta, expected, x = reference("inception_v4", 299)
    assign_reference(v4, "inception_v4")
    out = v4(x, training=False)
    np.testing.assert_allclose(np.asarray(out["logits"]), expected["logits"], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(
        np.asarray(out["aux_logits"]), expected["aux_logits"], rtol=1e-3, atol=1e-3
    )
    _check_endpoint_stats(v4, x, meta)


def test_inception_v2_matches_slim_logits(v2):
    meta, expected, x = reference("inception_v2", 224)
    assign_reference(v2, "inception_v2")
    out = v2(x, training=False)
    np.testing.assert_allclose(np.asarray(out), expected["logits"], rtol=1e-3, atol=1e-3)
    _check_endpoint_stats(v2, x, meta)


def test_vgg16_matches_slim_logits(vgg):
    meta, expected, x = reference("vgg_16", 224)
    assign_reference(vgg, "vgg_16")
    out = vgg(x, training=False)
    np.testing.assert_allclose(np.asarray(out), expected["logits"], rtol=1e-3, atol=1e-3)
    _check_endpoint_stats(vgg, x, meta)


# --------------------------------------------------------------------------- freezing boundaries


def _trainable_blocks(model) -> set[str]:
    blocks = set()
    for layer in model.layers:
        scope = getattr(layer, "slim_scope", None)
        if scope and layer.trainable and layer.weights:
            parts = scope.split("/")
            blocks.add(parts[1])
    return blocks


V4_MIXED = ["Mixed_6h", "Mixed_7a", "Mixed_7b", "Mixed_7c", "Mixed_7d"]


@pytest.mark.parametrize(
    ("mode", "trainable"),
    [
        (1, {*(f"Mixed_6{k}" for k in "bcdefgh"), *V4_MIXED[1:], "AuxLogits", "Logits"}),
        (2, {"Mixed_7b", "Mixed_7c", "Mixed_7d", "AuxLogits", "Logits"}),
        (3, {"Mixed_7c", "Mixed_7d", "AuxLogits", "Logits"}),
        (4, {"Mixed_7d", "AuxLogits", "Logits"}),
        (5, {"AuxLogits", "Logits"}),
    ],
)
def test_inception_v4_train_layer_modes(v4, mode, trainable):
    try:
        apply_freezing(v4, mode=mode)
        assert _trainable_blocks(v4) == trainable
        # a frozen conv-BN unit freezes its BN statistics too (they are never trainable anyway)
        frozen_ids = {id(w) for w in v4.non_trainable_weights}
        stem = v4.get_layer("Conv2d_1a_3x3")
        assert not stem.trainable and all(id(w) in frozen_ids for w in stem.weights)
    finally:
        apply_freezing(v4)
    assert "Conv2d_1a_3x3" in _trainable_blocks(v4)


def test_inception_v4_train_layer_mode_table_is_monotonic(v4):
    previous = None
    try:
        for mode in sorted(TRAIN_LAYER_MODES["InceptionV4"]):
            summary = apply_freezing(v4, mode=mode)
            if previous is not None:
                assert summary["trainable_params"] < previous
            previous = summary["trainable_params"]
    finally:
        apply_freezing(v4)


def test_single_inception_c_block_freezing(v4):
    try:
        apply_freezing(v4, up_to="Mixed_7b")
        assert {"Mixed_7c", "Mixed_7d", "Logits", "AuxLogits"} == _trainable_blocks(v4)
    finally:
        apply_freezing(v4)


def test_vgg16_bartissol2017_trains_last_three_conv_layers(vgg):
    try:
        summary = apply_freezing(vgg, preset="bartissol2017")
        assert summary["trainable_layers"] == ["fc6", "fc7", "fc8"]
        # slim-style scope patterns reach the same set
        summary2 = apply_freezing(vgg, trainable_scopes="vgg_16/fc")
        assert summary2["trainable_layers"] == ["fc6", "fc7", "fc8"]
        summary3 = apply_freezing(vgg, mode=4)
        conv5 = ["conv5_conv5_1", "conv5_conv5_2", "conv5_conv5_3"]
        assert summary3["trainable_layers"] == [*conv5, "fc6", "fc7", "fc8"]
    finally:
        apply_freezing(vgg)


def test_inception_v2_bartissol2017_trains_logits_only(v2):
    try:
        summary = apply_freezing(v2, preset="bartissol2017")
        assert summary["trainable_layers"] == ["Logits_Conv2d_1c_1x1"]
        assert summary["trainable_params"] == 1024 * 1001 + 1001
    finally:
        apply_freezing(v2)
