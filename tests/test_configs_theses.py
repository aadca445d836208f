"""The theses' configs and the model options they need: parameter counts, Korber's unfreeze-N,
Bartissol's pooled metrics, dropout as keep probability, shipped search spaces (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_tf import config as cfgmod
from fer_tf.config import ConfigError
from fer_tf.tasks import task_from_config
from fer_tf.training import experiment, search
from fer_tf.training.validate import check_model

tf = pytest.importorskip("tensorflow")

from fer_tf import metrics, models  # noqa: E402
from fer_tf.models import freezing  # noqa: E402
from fer_tf.models.endpoints import iter_layers  # noqa: E402

AUTHORS = ("Christensen 2018", "Bartissol 2017", "Amaya & Dave", "Korber", "Athanasiadis 2022")


def _count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


# ------------------------------------------------------------------------------------------
# Every shipped config: the --dry-run model checks, and a thesis and figure in --list.


@pytest.mark.parametrize("name", cfgmod.list_experiments())
def test_every_shipped_config_passes_the_model_checks(name):
    config = cfgmod.load_config(name)
    check_model(config, task_from_config(config))
    if not name.startswith("demo") and name not in ("disfa_au_intensity",):
        text = (cfgmod.CONFIG_DIR / f"{name}.yaml").read_text()
        assert any(a in config.description for a in AUTHORS) or "Barsoum" in text, name


# ------------------------------------------------------------------------------------------
# Amaya & Dave's three CNNs (36x36x1, 7 classes).


@pytest.mark.parametrize(
    ("variant", "total", "dense", "thesis_feature"),
    [
        # The thesis's "feature extraction" figures count 10 per filter (3x3 + bias, ignoring
        # the input channels): 448 filters -> 4,480 for CNN 1, where it says "about 4320".
        (1, 1_334_967, 1_143_143, 4480),
        (2, 172_455, 29_127, 3360),
        (3, 324_423, 264_199, 1760),
    ],
)
def test_fer2013_cnn_variants_match_the_thesis_architectures(variant, total, dense, thesis_feature):
    config = cfgmod.load_config(
        "fer2013_cnn" if variant == 3 else f"fer2013_cnn_v{variant}", ["data.records=/x"]
    )
    assert config.model.variant == variant and config.data.grayscale
    task = task_from_config(config)
    model = experiment.build_model(config, task)
    assert model.input_shape == (None, 36, 36, 1) and model.output_shape == (None, 7)
    assert model.count_params() == total
    convs = [layer for layer in iter_layers(model) if layer.name.startswith("conv")]
    assert model.count_params() - _count(w for c in convs for w in c.weights) == dense
    assert sum(10 * c.filters for c in convs) == thesis_feature


def test_shallow_cnn_kernel_size_and_keep_prob_reach_the_builder():
    config = cfgmod.load_config(
        "posed2_shallow_cnn", ["model.kernel_size=5", "data.image_size=48", "data.augment=none"]
    )
    assert config.model.keep_prob == 0.4 and experiment.dropout_rate(config) == pytest.approx(0.6)
    model = experiment.build_model(config, task_from_config(config))
    conv1 = next(layer for layer in iter_layers(model) if layer.name == "conv1")
    assert tuple(conv1.kernel.shape[:2]) == (5, 5)
    rates = [
        layer.rate for layer in iter_layers(model) if isinstance(layer, tf.keras.layers.Dropout)
    ]
    assert rates and all(r == pytest.approx(0.6) for r in rates)


def test_model_options_are_checked_against_the_model():
    config = cfgmod.load_config("demo_posed", ["model.fc7_units=512"])
    with pytest.raises(ConfigError, match="'model.fc7_units' parameter applies to vgg16"):
        check_model(config, task_from_config(config))
    config = cfgmod.load_config("demo_posed", ["model.unfreeze_modules=2"])
    with pytest.raises(ConfigError, match="inception_resnet_v1 only"):
        check_model(config, task_from_config(config))
    with pytest.raises(ConfigError, match="model.keep_prob"):
        cfgmod.load_config("demo_posed", ["model.keep_prob=0"])


def test_fc7_units_and_checkpoint_exclusions_from_the_config(monkeypatch):
    impl2 = cfgmod.load_config("athanasiadis2022_impl2_vgg16_reduced")
    assert experiment.model_options(impl2) == {"fc7_units": 1024}
    assert experiment._extra_exclude_scopes(impl2) == ("vgg_16/fc7",)
    full = cfgmod.load_config("athanasiadis2022_impl1_vgg16")
    assert experiment._extra_exclude_scopes(full) == ()
    narrow = cfgmod.load_config("athanasiadis2022_impl1_vgg16", ["model.fc7_units=256"])
    assert experiment._extra_exclude_scopes(narrow) == ("vgg_16/fc7",)
    # FaceNet's classifier is Logits/, outside the InceptionResnetV1 scope.
    korber = cfgmod.load_config("korber_sfew_facenet")
    assert experiment._extra_exclude_scopes(korber) == ("Logits",)
    assert experiment.model_options(korber) == {"bottleneck_size": 512}

    # Every file goes through the one loading path (which recognises a Keras-applications VGG16
    # .h5 by its contents), with the class layers and the config's extra scopes left out.
    calls = []

    class _Report:
        def line(self):
            return "report"

    monkeypatch.setattr(
        models, "load_weights", lambda m, p, **kw: calls.append((p, kw)) or _Report()
    )
    for weights in ("v.h5", "v.weights.h5", "imagenet"):
        cfg = cfgmod.load_config(
            "athanasiadis2022_impl2_vgg16_reduced", [f"model.weights={weights}"]
        )
        assert experiment._load_weights(None, cfg) == "report"
        assert calls[-1] == (
            weights,
            {"exclude_class_layers": True, "exclude_scopes": ("vgg_16/fc7",)},
        )


# ------------------------------------------------------------------------------------------
# Korber's unfreeze-N: facenet-pytorch's top-level modules and her Table 3 counts.


@pytest.fixture(scope="module")
def facenet():
    return models.create_model(
        "inception_resnet_v1",
        include_top=True,
        input_shape=(80, 80, 3),
        classes=7,
        bottleneck_size=512,
    )


@pytest.mark.parametrize(
    ("n", "korber", "bn_channels"),
    [
        (1, 3_591, 0),
        (2, 4_615, 512),
        (3, 922_119, 512),
        (4, 922_119, 512),
        (6, 2_522_887, 1_280),
        (9, 20_773_383, 12_160),
    ],
)
def test_korber_unfreeze_n_counts_her_table_3(facenet, n, korber, bn_channels):
    modules = freezing.unfreeze_last_modules(facenet, n)
    assert modules[0] == "logits" and len(modules) == n
    trainable = _count(facenet.trainable_weights)
    # facenet-pytorch's BatchNorm has a gamma per channel; FaceNet's TF layout (ours) has none.
    gammas = sum(
        int(np.prod(layer.beta.shape))
        for layer in iter_layers(facenet)
        if getattr(layer, "beta", None) is not None and layer.trainable
    )
    assert (trainable, gammas) == (korber - bn_channels, bn_channels)
    assert trainable + gammas == korber


def test_korber_modules_reset_and_refuse_other_models(facenet):
    freezing.unfreeze_last_modules(facenet, 2)
    bottleneck = next(layer for layer in iter_layers(facenet) if layer.name == "Bottleneck")
    assert bottleneck.trainable and not bottleneck.kernel.trainable
    freezing.unfreeze_last_n(facenet, 2)  # another mode resets the kernel flag
    assert bottleneck.trainable and bottleneck.kernel.trainable
    with pytest.raises(ValueError, match="'n' parameter"):
        freezing.unfreeze_last_modules(facenet, 19)
    tiny = models.create_model("tiny_cnn", input_shape=(32, 32, 3), classes=2)
    with pytest.raises(ValueError, match="inception_resnet_v1"):
        freezing.unfreeze_last_modules(tiny, 1)


# ------------------------------------------------------------------------------------------
# Bartissol's pooled AU metrics.


def test_pooled_metrics_reproduce_bartissol_table_3_from_table_4():
    hist = np.zeros((1, 4))
    r = metrics._pooled(1094, 1240, 373_967, 7699, hist, hist)
    # 375,061 / 384,000 = 0.976721 (her float32 streaming mean printed 0.97671616).
    assert r["total_accuracy"] == pytest.approx(0.97671616, abs=1e-5)
    assert r["recall_pooled"] == pytest.approx(0.12441715, abs=1e-6)
    assert r["precision_pooled"] == pytest.approx(1094 / 2334)  # 0.4687; the table prints 0.4683
    assert np.isnan(r["auc_pooled"])


def test_pooled_metrics_beside_the_per_au_means():
    labels = np.array([[1, 0], [1, 1], [0, -1], [0, 1]], np.float32)
    probs = np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.99], [0.1, 0.4]])
    m = metrics.AUMetrics(["AU1", "AU2"])
    m.update_state(labels, np.log(probs / (1 - probs)).astype(np.float32))
    r = m.result()
    assert r["total_accuracy"] == pytest.approx(4 / 7)
    assert r["precision_pooled"] == pytest.approx(2 / 3)
    assert r["recall_pooled"] == pytest.approx(2 / 4)
    # Positives {0.9, 0.3, 0.8, 0.4} vs negatives {0.6, 0.1, 0.2}: 10 of 12 pairs.
    assert r["auc_pooled"] == pytest.approx(10 / 12)
    assert r["precision_mean"] == pytest.approx((0.5 + 1.0) / 2)  # the per-AU mean differs


# ------------------------------------------------------------------------------------------
# Shipped search spaces.


@pytest.mark.parametrize("name", search.shipped_spaces())
def test_shipped_search_spaces_load_by_name_and_give_valid_configs(name):
    space = search.load_space(name)
    base = cfgmod.load_config("posed2_inception_v4")
    for dim, values in space.items():
        for value in values:
            overrides = search.trial_overrides({dim: value})
            data = cfgmod.to_dict(base)
            for key, v in overrides.items():
                section, field = key.split(".")
                data[section][field] = v
            cfgmod.from_dict(cfgmod.ExperimentConfig, data)


def test_shipped_spaces_are_the_theses():
    assert search.shipped_spaces() == [
        "bartissol2017_batch",
        "bartissol2017_lr",
        "christensen2018_table4_1",
    ]
    t41 = search.load_space("christensen2018_table4_1")
    assert t41["model.keep_prob"] == [round(0.1 * i, 1) for i in range(1, 11)]
    assert search.load_space("bartissol2017_batch") == {"data.batch_size": [32, 64, 128, 256]}
    with pytest.raises(ConfigError, match="christensen2018_table4_1"):
        search.load_space("nope")
