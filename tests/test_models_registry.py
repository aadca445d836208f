"""Registry, preprocessing families, small architectures, heads, serialisation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import fer_tf.models as fm
from fer_tf.models import (
    PREPROCESSING_FAMILIES,
    HeadSpec,
    build_classifier,
    create_model,
    get_endpoints,
    get_endpoints_model,
    get_model_info,
    get_preprocessing,
    list_models,
    normalize,
)
from fer_tf.models._common import make_input
from fer_tf.models.heads import TaskHead, head_kinds
from fer_tf.models.layers import (
    CUSTOM_OBJECTS,
    SlimConv2D,
    SlimDense,
    SlimResidual,
    SlimSeparableConv2D,
)

ALL_MODELS = list_models()


# --------------------------------------------------------------------------- registry


def test_list_models():
    assert sorted(ALL_MODELS) == ALL_MODELS and len(set(ALL_MODELS)) == len(ALL_MODELS)
    # The shipped architectures (one registered builder each; a new one must join the tests).
    assert {
        "fer2013_cnn",
        "inception_resnet_v1",
        "inception_v2",
        "inception_v4",
        "shallow_cnn",
        "tiny_cnn",
        "vgg16",
        "vgg16_reduced_fc",
    } <= set(ALL_MODELS)
    for name in ALL_MODELS:
        assert get_model_info(name).builder is not None


# The documented defaults (docs/models.md); every registered model must be listed.
DEFAULT_INPUTS = {
    "inception_v4": ((299, 299, 3), "inception"),
    "inception_v2": ((224, 224, 3), "inception"),
    "vgg16": ((224, 224, 3), "vgg"),
    "vgg16_reduced_fc": ((224, 224, 3), "vgg"),
    "inception_resnet_v1": ((160, 160, 3), "facenet"),
    "shallow_cnn": ((96, 96, 3), "unit"),
    "fer2013_cnn": ((36, 36, 1), "unit"),
    "tiny_cnn": ((64, 64, 3), "inception"),
}


def test_default_inputs_cover_every_registered_model():
    assert sorted(DEFAULT_INPUTS) == ALL_MODELS


@pytest.mark.parametrize(("name", "size", "family"), [(n, *v) for n, v in DEFAULT_INPUTS.items()])
def test_model_info(name, size, family):
    info = get_model_info(name)
    assert info.input_shape == size and info.input_size == size[:2]
    assert info.preprocessing == family
    assert get_preprocessing(name).family == family


def test_unknown_model_and_bad_arguments():
    with pytest.raises(ValueError, match=r"^The 'name' parameter must be a registered model name"):
        create_model("resnet50")
    with pytest.raises(ValueError, match="The 'pooling' parameter must be one of"):
        create_model("tiny_cnn", include_top=False, pooling="sum")
    with pytest.raises(ValueError, match="The 'classes' parameter must be a positive int"):
        create_model("tiny_cnn", classes=0)
    with pytest.raises(ValueError, match=r"needs inputs of at least 75x75"):
        create_model("inception_v4", include_top=False, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="auxiliary head needs Mixed_6h of at least 5x5"):
        create_model("inception_v4", input_shape=(100, 100, 3))
    with pytest.raises(ValueError, match="The 'final_endpoint' parameter must be one of"):
        create_model("inception_v2", include_top=False, final_endpoint="Mixed_9a")
    with pytest.raises(ValueError, match="The 'variant' parameter must be one of"):
        create_model("fer2013_cnn", variant=4)
    with pytest.raises(ValueError, match="needs pool5 of at least 7x7"):
        create_model("vgg16", input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="already registered"):
        fm.register_model(
            "tiny_cnn",
            input_shape=(1, 1, 1),
            preprocessing="unit",
            classes=1,
            slim_scope="x",
            min_input_size=1,
        )(lambda: None)


def _small_input(name: str) -> tuple[int, int, int]:
    """About the smallest input a model's backbone takes (at least 32 px), its channels."""
    info = get_model_info(name)
    size = max(info.min_input_size, 32)
    return (size, size, info.input_shape[-1])


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_builds_as_pooled_backbone(name):
    kwargs = {"depth_multiplier": 0.25} if name == "inception_v2" else {}
    model = create_model(
        name, input_shape=_small_input(name), include_top=False, pooling="avg", **kwargs
    )
    assert len(model.output.shape) == 2
    assert get_endpoints(model)  # every model exposes end points


def test_dynamic_input_size_backbone():
    model = create_model("tiny_cnn", include_top=False, input_shape=(None, None, 3))
    for size in (32, 48):
        out = model(np.zeros((1, size, size, 3), np.float32))
        assert out.shape == (1, size // 8, size // 8, 64)


# --------------------------------------------------------------------------- preprocessing


def test_preprocessing_families():
    x = np.array([[[[0.0, 127.5, 255.0]]]], np.float32)
    np.testing.assert_allclose(normalize(x, "inception"), [[[[-1.0, 0.0, 1.0]]]])
    np.testing.assert_allclose(normalize(x, "unit"), [[[[0.0, 0.5, 1.0]]]])
    np.testing.assert_allclose(
        normalize(x, "facenet"), [[[[-127.5 / 128, 0.0, 127.5 / 128]]]], rtol=1e-6
    )
    np.testing.assert_allclose(
        normalize(x, "vgg"), [[[[-123.68, 127.5 - 116.78, 255.0 - 103.94]]]], rtol=1e-5
    )
    np.testing.assert_allclose(
        normalize(x, "imagenet"),
        [[[[-0.485 / 0.229, (0.5 - 0.456) / 0.224, (1.0 - 0.406) / 0.225]]]],
        rtol=1e-5,
    )
    grey = np.full((2, 4, 4, 1), 100, np.uint8)
    out = normalize(grey, "vgg")
    assert out.dtype == tf.float32 and out.shape == (2, 4, 4, 1)
    np.testing.assert_allclose(out, 100 - np.mean([123.68, 116.78, 103.94]), rtol=1e-5)
    assert PREPROCESSING_FAMILIES == ("inception", "vgg", "imagenet", "facenet", "unit")


def test_preprocessing_errors_and_tf_data():
    with pytest.raises(ValueError, match=r"^The 'family' parameter must be one of \['inception'"):
        normalize(np.zeros((1, 2, 2, 3)), "caffe")
    with pytest.raises(ValueError, match="1 or 3 channels"):
        normalize(np.zeros((1, 2, 2, 4)), "imagenet")
    fn = get_preprocessing("inception_v2")
    ds = tf.data.Dataset.from_tensor_slices(np.full((3, 8, 8, 3), 255, np.uint8)).map(fn)
    np.testing.assert_allclose(next(iter(ds)).numpy(), 1.0)


# --------------------------------------------------------------------------- architectures


def _shapes(model) -> dict[str, tuple]:
    return {k: tuple(v.shape[1:]) for k, v in get_endpoints(model).items()}


@pytest.mark.parametrize("classes", [2, 12])
def test_shallow_cnn_table_4_2(classes):
    model = create_model("shallow_cnn", classes=classes)
    assert _shapes(model) == {
        "conv1": (96, 96, 8),
        "conv2": (96, 96, 16),
        "pool1": (32, 32, 16),
        "conv3": (32, 32, 24),
        "conv4": (32, 32, 32),
        "pool2": (11, 11, 32),
        "flatten": (3872,),
        "fc1": (2048,),
        "Logits": (classes,),
    }


@pytest.mark.parametrize(
    ("variant", "last_pool", "flat", "hidden"),
    [(1, (4, 4, 128), 2048, 556), (2, (2, 2, 128), 512, 56), (3, (4, 4, 64), 1024, 256)],
)
def test_fer2013_cnn_variants(variant, last_pool, flat, hidden):
    model = create_model("fer2013_cnn", variant=variant)
    shapes = _shapes(model)
    pools = [k for k in shapes if k.startswith("pool")]
    assert shapes[pools[-1]] == last_pool
    assert shapes["flatten"] == (flat,) and shapes["fc1"] == (hidden,)
    assert shapes["Logits"] == (7,)
    convs = [k for k in shapes if k.startswith("conv")]
    assert len(convs) == {1: 9, 2: 6, 3: 4}[variant]
    assert all(shapes[k][:2] in ((36, 36), (18, 18), (9, 9), (4, 4)) for k in convs)
    dense = model.get_layer("fc1").count_params() + model.get_layer("logits").count_params()
    assert dense == flat * hidden + hidden + hidden * 7 + 7


def test_inception_resnet_v1_facenet_layout():
    model = create_model("inception_resnet_v1", bottleneck_size=512, classes=7)
    shapes = _shapes(model)
    assert shapes["Conv2d_4b_3x3"] == (17, 17, 256)
    assert shapes["Mixed_5a"] == (17, 17, 256)
    assert shapes["Mixed_6b"] == (8, 8, 896)
    assert shapes["Mixed_8b"] == (3, 3, 1792)
    assert shapes["Bottleneck"] == (512,) and shapes["Logits"] == (7,)
    residuals = [layer for layer in model.layers if type(layer).__name__ == "SlimResidual"]
    assert [r.scale for r in residuals] == [0.17] * 5 + [0.1] * 10 + [0.2] * 5 + [1.0]
    assert residuals[-1].activation is None  # final Block8 has no activation
    convs = [layer for layer in model.layers if isinstance(layer, SlimConv2D)]
    assert {c.bn_decay for c in convs if c.use_batch_norm} == {0.995}
    names = fm.slim_variable_map(model)
    assert "InceptionResnetV1/Repeat/block35_1/Branch_0/Conv2d_1x1/weights" in names
    assert "InceptionResnetV1/Repeat_1/block17_10/Conv2d_1x1/biases" in names
    assert "InceptionResnetV1/Block8/Conv2d_1x1/weights" in names
    assert "InceptionResnetV1/Bottleneck/BatchNorm/moving_variance" in names
    assert "Logits/weights" in names
    assert model.get_layer("Bottleneck").kernel.shape == (1792, 512)


def test_vgg16_reduced_fc():
    model = create_model("vgg16_reduced_fc", fc7_units=256)
    shapes = _shapes(model)
    assert shapes["vgg_16/fc7"] == (1, 1, 256) and shapes["Logits"] == (6,)
    assert model.count_params() == 138_357_544 - (4096 * 4096 + 4096) - (4096 * 1000 + 1000) + (
        4096 * 256 + 256
    ) + (256 * 6 + 6)


def test_inception_v2_depth_multiplier_and_min_depth():
    model = create_model(
        "inception_v2", depth_multiplier=0.25, min_depth=16, input_shape=(64, 64, 3), classes=3
    )
    first = model.get_layer("Conv2d_1a_7x7")
    assert isinstance(first, SlimSeparableConv2D)
    assert first.filters == 16 and first.depth_multiplier == 5  # min(int(16 / 3), 8)
    assert model.get_layer("Mixed_3b_Branch_3_Conv2d_0b_1x1").filters == 16  # max(8, 16)
    assert _shapes(model)["Mixed_5c"] == (2, 2, 256)


def test_endpoints_model_and_errors():
    model = create_model("tiny_cnn", input_shape=(32, 32, 3))
    em = get_endpoints_model(model, ["conv2", "Logits"])
    out = em(np.zeros((2, 32, 32, 3), np.float32))
    assert out["conv2"].shape == (2, 8, 8, 32) and out["Logits"].shape == (2, 2)
    with pytest.raises(ValueError, match="Unknown end point 'conv9'"):
        get_endpoints(model, ["conv9"])


# --------------------------------------------------------------------------- heads


def test_build_classifier_heads_and_dtypes():
    model = build_classifier(
        "tiny_cnn",
        {
            "au": 12,
            "va": HeadSpec("regression", 2, bound="tanh"),
            "posed": {"kind": "softmax", "units": 12, "dropout": 0.3},
        },
        input_shape=(32, 32, 3),
        head_dropout=0.1,
    )
    out = model(np.random.default_rng(0).normal(size=(3, 32, 32, 3)).astype(np.float32))
    assert set(out) == {"au", "va", "posed"}
    assert (
        out["au"].shape == (3, 12) and out["va"].shape == (3, 2) and out["posed"].shape == (3, 12)
    )
    assert np.all(np.abs(out["va"]) < 1)
    assert head_kinds(model) == {"au": "sigmoid", "va": "regression", "posed": "softmax"}
    assert model.get_layer("head_posed").rate == 0.3 and model.get_layer("head_au").rate == 0.1


def test_heads_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_classifier("tiny_cnn", {"emotion": 7, "va": 2}, input_shape=(32, 32, 3))
        assert model.get_layer("conv1").compute_dtype == "bfloat16"
        out = model(np.zeros((2, 32, 32, 3), np.float32))
        assert out["emotion"].dtype == tf.float32 and out["va"].dtype == tf.float32
        logits = create_model("tiny_cnn", classifier_activation="softmax")(
            np.zeros((1, 64, 64, 3), np.float32)
        )
        assert logits.dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_head_spec_errors():
    with pytest.raises(ValueError, match=r"^The 'kind' parameter must be one of \['sigmoid'"):
        HeadSpec("linear", 2)
    with pytest.raises(ValueError, match="only meaningful for regression"):
        HeadSpec("softmax", 2, bound="tanh")
    with pytest.raises(ValueError, match="Cannot infer the kind of head 'gaze'"):
        build_classifier("tiny_cnn", {"gaze": 2})
    with pytest.raises(ValueError, match="at least one head"):
        build_classifier("tiny_cnn", {})
    with pytest.raises(ValueError, match="must be a registered model name"):
        build_classifier("resnet", {"au": 2})


# --------------------------------------------------------------------------- serialisation


def test_keras_round_trip_of_models(tmp_path):
    x = np.random.default_rng(1).normal(size=(2, 36, 36, 1)).astype(np.float32)
    for model in (
        create_model("fer2013_cnn", variant=1),
        build_classifier(
            "inception_v2",
            {"au": 4, "va": HeadSpec("regression", 2, bound="tanh")},
            input_shape=(36, 36, 1),
            backbone_kwargs={"depth_multiplier": 0.25},
        ),
    ):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        a, b = model(x, training=False), loaded(x, training=False)
        for u, v in zip(keras.tree.flatten(a), keras.tree.flatten(b)):
            np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-6, atol=1e-6)
        assert fm.list_endpoints(loaded) == fm.list_endpoints(model)
        assert fm.slim_variable_map(loaded).keys() == fm.slim_variable_map(model).keys()


# Every registered model at (about) the smallest input it allows, few classes. The weights, not the
# activations, dominate the cost: VGG16's 102M-parameter fc6 (7x7x512x4096, whatever the input)
# takes ~15 s to build, save and load on 2 cores, so the fc6/fc7/fc8 top is round-tripped once,
# through vgg16_reduced_fc (same builder, fc7 narrowed), and vgg16 without its top.
ROUND_TRIP = {
    "fer2013_cnn": {"variant": 1, "classes": 3},
    "inception_resnet_v1": {"classes": 3},
    "inception_v2": {"classes": 3, "depth_multiplier": 0.25},
    # The auxiliary head needs Mixed_6h >= 5x5 (input >= 107): round-trip both outputs there.
    "inception_v4": {"classes": 3, "input_size": 107},
    "shallow_cnn": {"classes": 3},
    "tiny_cnn": {"classes": 3},
    "vgg16": {"include_top": False, "pooling": "avg"},
    "vgg16_reduced_fc": {"classes": 3, "fc_conv_padding": "SAME", "fc7_units": 64},
}


@pytest.fixture(scope="module")
def keras_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("keras_round_trip")


def test_round_trip_covers_every_registered_model():
    assert sorted(ROUND_TRIP) == list_models()


@pytest.mark.parametrize("name", sorted(ROUND_TRIP))
def test_keras_round_trip_of_every_registered_model(name, keras_dir):
    kwargs = dict(ROUND_TRIP[name])
    info = get_model_info(name)
    size = max(kwargs.pop("input_size", 0), info.min_input_size)
    shape = (size, size, info.input_shape[-1])
    model = create_model(name, input_shape=shape, **kwargs)
    path = keras_dir / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model) and loaded.name == model.name
    assert loaded.input_shape == model.input_shape and loaded.count_params() == model.count_params()
    x = np.random.default_rng(4).normal(size=(2, *shape)).astype(np.float32)
    a, b = model(x, training=False), loaded(x, training=False)
    assert len(keras.tree.flatten(a)) == (2 if name == "inception_v4" else 1)  # V4: aux logits
    for u, v in zip(keras.tree.flatten(a), keras.tree.flatten(b), strict=True):
        assert u.shape == ((2, 512) if name == "vgg16" else (2, 3))
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert fm.list_endpoints(loaded) == fm.list_endpoints(model)
    assert fm.slim_variable_map(loaded).keys() == fm.slim_variable_map(model).keys()
    path.unlink()  # VGG16's file is ~0.5 GB


@pytest.mark.parametrize(
    "layer",
    [
        SlimConv2D(
            8, (1, 7), 2, "valid", bn_decay=0.9, slim_scope="A/b", endpoint="b", weight_decay=4e-5
        ),
        SlimDense(4, use_batch_norm=True, slim_scope="A/fc", is_logits=True),
        SlimSeparableConv2D(8, 7, 2, 2, slim_scope="A/sep"),
        SlimResidual(0.17, None, endpoint="block35_1"),
        TaskHead(3, "sigmoid", 0.2, name="head"),
    ],
)
def test_custom_layer_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    x = np.random.default_rng(3).normal(size=(2, 9, 9, 3)).astype(np.float32)
    if isinstance(layer, (SlimDense, TaskHead)):
        x = x.reshape(2, -1)
    args = [x, 2 * x] if isinstance(layer, SlimResidual) else x
    layer(args)
    clone(args)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(args), layer(args), rtol=1e-6)
    if isinstance(layer, SlimConv2D):
        assert layer.padding == "VALID" and len(layer.losses) == 1  # L2 weight decay
        np.testing.assert_allclose(
            float(layer.losses[0]), 2e-5 * float(tf.reduce_sum(layer.kernel**2)), rtol=1e-5
        )
    assert type(layer).__name__ in CUSTOM_OBJECTS or isinstance(layer, TaskHead)


def test_layer_argument_errors():
    with pytest.raises(ValueError, match=r"^The 'padding' parameter must be one of \['SAME'"):
        SlimConv2D(4, 3, padding="full")
    with pytest.raises(
        ValueError, match="The 'bn_decay' parameter must be a number >= 0.0 and < 1.0"
    ):
        SlimConv2D(4, 3, bn_decay=1.5)
    with pytest.raises(ValueError, match="The 'weight_decay' parameter must be a number >= 0"):
        SlimConv2D(4, 3, weight_decay=-1.0)


# --------------------------------------------------------------------------- uniform builders


COMMON = (
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
    "dropout",
    "aux_logits",
    "weight_decay",
    "name",
)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_builder_accepts_the_common_keywords(name):
    import inspect

    params = inspect.signature(get_model_info(name).builder).parameters
    assert set(COMMON) <= set(params)
    assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in params)


@pytest.mark.parametrize("name", [n for n in ALL_MODELS if not get_model_info(n).has_aux_logits])
def test_aux_logits_is_accepted_false_and_rejected_true(name):
    if name in ("tiny_cnn", "shallow_cnn", "fer2013_cnn"):  # cheap to build
        create_model(name, include_top=False, input_shape=_small_input(name), aux_logits=False)
    with pytest.raises(ValueError, match=rf"^{name} has no auxiliary head.*inception_v4"):
        create_model(name, input_shape=_small_input(name), aux_logits=True)


def test_create_model_errors_name_the_problem():
    with pytest.raises(TypeError) as info:
        create_model("tiny_cnn", num_classes=3)
    msg = str(info.value)
    assert "unknown keyword 'num_classes'" in msg and "tiny_cnn accepts:" in msg
    assert "classes, classifier_activation" in msg and "width" in msg
    assert msg.endswith("Did you mean 'classes'?")
    with pytest.raises(TypeError, match=r"unknown keyword 'widht'.*Did you mean 'width'\?"):
        create_model("tiny_cnn", widht=8)
    with pytest.raises(ValueError, match=r"'shalow_cnn' instead\. Did you mean 'shallow_cnn'\?"):
        create_model("shalow_cnn")
    for bad in ("abc", (32, 32), (32, "a", 3), (32, 32, 0), 64, (32.5, 32, 3)):
        with pytest.raises(ValueError, match=r"^The 'input_shape' parameter must be \(height"):
            create_model("tiny_cnn", input_shape=bad)


def test_catalog_is_the_registry_facts_and_needs_no_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from fer_tf.models import list_models, get_spec\n"
        "print(len(list_models()), get_spec('vgg16').preprocessing, "
        "'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(len(ALL_MODELS)), "vgg", "False", "False"]
    for name in ALL_MODELS:
        info = get_model_info(name)
        spec = fm.get_spec(name)
        assert all(getattr(info, f) == getattr(spec, f) for f in spec.__dataclass_fields__)
        # The builders' default input is the catalog's (make_input reads the same entry).
        assert tuple(make_input(None, spec).shape[1:]) == spec.input_shape
    for name in ("tiny_cnn", "fer2013_cnn"):
        model = create_model(name, include_top=False)
        assert tuple(model.input_shape[1:]) == fm.get_spec(name).input_shape


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_builder_documents_each_keyword_once(name):
    import inspect

    builder = get_model_info(name).builder
    doc = builder.__doc__
    for key in inspect.signature(builder).parameters:
        assert doc.count(f"\n    {key}: ") == 1, key
    assert "Returns:" in doc and "Raises:" in doc
