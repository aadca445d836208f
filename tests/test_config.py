"""Config machinery: YAML load, overrides, validation errors, round-trip."""

import dataclasses

import pytest
import yaml

from fer_tf import config as C


def test_defaults_validate_and_round_trip(tmp_path):
    cfg = C.ExperimentConfig()
    text = C.to_yaml(cfg)
    again = C.from_dict(C.ExperimentConfig, yaml.safe_load(text))
    assert again == cfg
    path = C.save_config(cfg, tmp_path / "run" / "config.yaml")
    assert C.load_config(str(path)) == cfg


def test_overrides_coerce_types():
    cfg = C.load_config(
        None,
        [
            "optimizer.learning_rate=1e-3",
            "data.batch_size=64",
            "data.cache=true",
            "model.trainable_scopes=[Logits, 'Mixed_7.*']",
            "task.name=posed",
            "task.num_classes=12",
            "run.mixed_precision=null",
        ],
    )
    assert cfg.optimizer.learning_rate == pytest.approx(1e-3)
    assert isinstance(cfg.data.batch_size, int) and cfg.data.batch_size == 64
    assert cfg.data.cache is True
    assert cfg.model.trainable_scopes == ["Logits", "Mixed_7.*"]
    assert cfg.task.name == "posed" and cfg.task.num_classes == 12
    assert cfg.run.mixed_precision is None


def test_string_numbers_and_comma_lists_are_coerced():
    cfg = C.from_dict(
        C.ExperimentConfig,
        {"data": {"batch_size": "16"}, "optimizer": {"learning_rate": "0.5"}},
    )
    assert cfg.data.batch_size == 16 and cfg.optimizer.learning_rate == 0.5
    cfg = C.load_config(None, ["model.trainable_scopes=Logits,AuxLogits"])
    assert cfg.model.trainable_scopes == ["Logits", "AuxLogits"]


def test_later_override_wins():
    cfg = C.load_config(None, ["data.batch_size=8", "data.batch_size=4"])
    assert cfg.data.batch_size == 4


@pytest.mark.parametrize(
    "override, fragments",
    [
        (
            "optimizer.learning_rat=0.1",
            ["optimizer.learning_rat", "Did you mean 'optimizer.learning_rate'"],
        ),
        ("dta.batch_size=3", ["'dta'", "Did you mean 'data'"]),
        ("data.batch_size=abc", ["'data.batch_size'", "int", "'abc'"]),
        ("data.batch_size=0", ["'data.batch_size'", ">= 1", "0"]),
        ("optimizer.learning_rate=0", ["'optimizer.learning_rate'", "> 0.0"]),
        ("model.dropout=1.5", ["'model.dropout'", "<= 1.0"]),
        ("task.name=valence", ["'task.name'", "'au'", "'va'", "'valence'"]),
        ("task.name=emotoin", ["Did you mean 'emotion'"]),
        ("data.cache=maybe", ["'data.cache'", "bool", "'maybe'"]),
        ("data=3", ["'data' section", "mapping"]),
        ("data.batch_size.x=1", ["'data.batch_size'", "must be int"]),
        ("no_equals_sign", ["section.key=value"]),
        (".x=1", ["empty"]),
        ("run.mixed_precision=float16", ["'run.mixed_precision'", "mixed_float16"]),
    ],
)
def test_errors_name_key_allowed_and_received(override, fragments):
    with pytest.raises(C.ConfigError) as info:
        C.load_config(None, [override])
    for fragment in fragments:
        assert fragment in str(info.value)


def test_config_error_is_value_error():
    assert issubclass(C.ConfigError, ValueError)


def test_yaml_file_with_base(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("name: base\ndata:\n  batch_size: 8\n  aus: disfa12\n")
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {base}\nname: child\ndata:\n  batch_size: 4\n")
    cfg = C.load_config(str(child), ["data.image_size=64"])
    assert cfg.name == "child"
    assert cfg.data.batch_size == 4 and cfg.data.aus == "disfa12" and cfg.data.image_size == 64


def test_base_cycle_and_bad_files(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text(f"base: {a}\n")
    with pytest.raises(C.ConfigError, match="cycle"):
        C.load_config(str(a))
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(C.ConfigError, match="not valid YAML"):
        C.load_config(str(bad))
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(C.ConfigError, match="must hold a mapping"):
        C.load_config(str(scalar))
    with pytest.raises(C.ConfigError, match="neither a YAML file nor a shipped experiment"):
        C.load_config("no_such_experiment_xyz")


def test_unknown_top_level_key_lists_allowed(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("modle:\n  name: vgg16\n")
    with pytest.raises(C.ConfigError) as info:
        C.load_config(str(f))
    msg = str(info.value)
    assert "Did you mean 'model'" in msg and "data" in msg and "optimizer" in msg


def test_every_field_has_a_default():
    # `fer-tf-train` with no config must give a valid experiment.
    def walk(cls):
        for f in dataclasses.fields(cls):
            assert (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )

    for cls in (
        C.ExperimentConfig,
        C.DataConfig,
        C.ModelConfig,
        C.TaskConfig,
        C.OptimizerConfig,
        C.TrainConfig,
        C.RunConfig,
    ):
        walk(cls)


def test_shipped_experiments_are_listed():
    names = C.list_experiments()
    assert names == sorted(names)
    for name in names:
        assert isinstance(C.load_config(name), C.ExperimentConfig)


def test_override_into_a_value_is_refused():
    with pytest.raises(C.ConfigError, match="is a value, not a section"):
        C.apply_overrides({"data": {"batch_size": 8}}, ["data.batch_size.x=1"])


def test_aus_accepts_yaml_lists_and_is_validated_at_the_edge():
    assert C.load_config(None, ["data.aus=[1, 2, 12]"]).data.aus == "1,2,12"
    assert C.load_config(None, ["data.aus=AU4,AU12"]).data.aus == "AU4,AU12"
    assert C.load_config(None, ["data.aus=disfa12"]).data.aus == "disfa12"
    with pytest.raises(C.ConfigError) as info:
        C.load_config(None, ["data.aus=emotionet13"])
    assert "'data.aus' parameter" in str(info.value) and "Did you mean 'emotionet23'" in str(
        info.value
    )
    with pytest.raises(C.ConfigError, match="AU61"):
        C.load_config(None, ["data.aus=[1, 61]"])


def test_config_imports_no_tensorflow_and_reuses_the_owners_names():
    import subprocess
    import sys

    from fer_tf import tasks
    from fer_tf.preprocessing import augment, normalization

    out = subprocess.run(
        [sys.executable, "-c", "import sys, fer_tf.config; print('tensorflow' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"
    meta = {f.name: f.metadata for f in dataclasses.fields(C.DataConfig)}
    assert meta["augment"]["choices"] == (*augment.POLICIES, *augment.AUGMENT_ALIASES)
    assert meta["preprocessing"]["choices"] == (None, *normalization.PREPROCESSING_FAMILIES)
    task_meta = {f.name: f.metadata for f in dataclasses.fields(C.TaskConfig)}
    assert task_meta["name"]["choices"] == tasks.TASK_NAMES
    losses = {loss for ls in tasks.LOSSES_BY_TASK.values() for loss in ls}
    assert set(task_meta["loss"]["choices"]) == {"auto", *losses}


def test_unknown_model_name_is_a_config_error_with_the_names():
    from fer_tf.models import list_models

    with pytest.raises(C.ConfigError) as info:
        C.load_config(None, ["model.name=shalow_cnn"])
    msg = str(info.value)
    assert "'model.name' parameter" in msg and "Did you mean 'shallow_cnn'?" in msg
    assert all(name in msg for name in list_models())
    assert C.load_config(None, ["model.name=vgg16"]).model.name == "vgg16"


def test_train_cli_rejects_a_misspelt_model_before_tensorflow_loads():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from fer_tf.cli.train import main\n"
        "rc = main(['--config', 'demo_au', '--set', 'model.name=shalow_cnn', '--dry-run'])\n"
        "print('tensorflow' in sys.modules, rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    loaded, rc = out.stdout.split()
    assert loaded == "False" and rc != "0", out.stdout + out.stderr
    assert "Did you mean 'shallow_cnn'?" in out.stderr and "tiny_cnn" in out.stderr


def test_the_earlier_augmentation_policy_name_loads():
    cfg = C.load_config("posed2_shallow_cnn", ["data.augment=seed000"])
    assert cfg.data.augment == "seed000"
    assert C.load_config("posed2_shallow_cnn").data.augment == "christensen2018"
