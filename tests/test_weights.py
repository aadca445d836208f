"""One weight-loading path: fer_tf.models.load_weights for the builders' weights= and the trainer.

Every accepted kind (.keras, .weights.h5, .h5, a slim checkpoint prefix or directory) loads the
same values through both callers; anything else is refused naming the path and what is accepted.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from test_models_checkpoint import write_checkpoint  # noqa: E402

from fer_tf.config import ConfigError, load_config  # noqa: E402
from fer_tf.models import (  # noqa: E402
    WeightsReport,
    create_model,
    load_weights,
    slim_variable_map,
)
from fer_tf.models.weights import ACCEPTED  # noqa: E402
from fer_tf.tasks import task_from_config  # noqa: E402
from fer_tf.training.experiment import build_model  # noqa: E402
from fer_tf.training.validate import check_model  # noqa: E402

SHAPE = (32, 32, 3)


def _model(classes: int = 3, seed: int = 0):
    tf.keras.utils.set_random_seed(seed)
    return create_model("tiny_cnn", input_shape=SHAPE, classes=classes)


def _same(a, b) -> bool:
    return all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a.weights, b.weights))


@pytest.fixture(scope="module")
def source():
    return _model(seed=1)


@pytest.fixture(scope="module")
def files(source, tmp_path_factory):
    """The source model's weights in every accepted form."""
    d = tmp_path_factory.mktemp("weights")
    out = {
        "keras": d / "m.keras",
        "weights.h5": d / "m.weights.h5",
        "h5": d / "legacy.h5",
    }
    source.save(str(out["keras"]))
    source.save_weights(str(out["weights.h5"]))
    source.save(str(out["h5"]))  # Keras' legacy HDF5 format
    values = {n: v.numpy() for n, v in slim_variable_map(source).items()}
    out["slim prefix"] = d / "slim" / "model.ckpt"
    out["slim prefix"].parent.mkdir()
    write_checkpoint(str(out["slim prefix"]), values)
    # A directory with a 'checkpoint' state file naming the prefix.
    (d / "slim" / "checkpoint").write_text('model_checkpoint_path: "model.ckpt"\n')
    out["slim directory"] = d / "slim"
    return out


@pytest.mark.parametrize("kind", ["keras", "weights.h5", "h5", "slim prefix", "slim directory"])
def test_every_accepted_kind_loads_through_load_weights_and_the_builders(source, files, kind):
    path = files[kind]
    model = _model()
    assert not _same(model, source)
    report = load_weights(model, path)
    assert isinstance(report, WeightsReport)
    assert report.kind == ("slim" if kind.startswith("slim") else "keras")
    assert _same(model, source)
    if report.kind == "slim":
        assert report.loaded == len(slim_variable_map(source))
        assert report.line() == f"restored {report.loaded} variables from {path}"
    else:
        assert report.line() == f"loaded Keras weights from {path}"
    # The builders' weights= argument takes the same path the same way.
    built = create_model("tiny_cnn", input_shape=SHAPE, classes=3, weights=str(path))
    assert _same(built, source)


@pytest.mark.parametrize("kind", ["weights.h5", "slim prefix"])
def test_excluding_class_layers_loads_the_backbone_under_a_new_head(source, files, kind):
    model = _model(classes=5)
    head_before = model.get_layer("logits").kernel.numpy().copy()
    report = load_weights(model, files[kind], exclude_class_layers=True)
    backbone = [w for w in model.weights if "logits" not in w.path]
    reference = {w.path: w.numpy() for w in source.weights}
    for w in backbone:
        np.testing.assert_array_equal(w.numpy(), reference[w.path])
    np.testing.assert_array_equal(model.get_layer("logits").kernel.numpy(), head_before)
    if report.kind == "slim":
        assert "tiny_cnn/logits" in report.excluded_scopes
        assert "left to train from scratch" in report.line()
    else:
        assert report.skip_mismatch and "skipped" in report.line()


def test_anything_else_is_refused_naming_the_path_and_what_is_accepted(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("x")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    cases = {
        text: "which is a file",
        empty_dir: "which is a directory without a 'checkpoint' file",
        tmp_path
        / "missing.ckpt": "which is nothing (no file 'missing.ckpt' and no 'missing.ckpt.index')",
        tmp_path / "missing.keras": "which is nothing (it does not exist)",
    }
    for path, what in cases.items():
        with pytest.raises(ValueError) as err:
            load_weights(_model(), path)
        msg = str(err.value)
        assert f"Got '{path}', {what}" in msg and ACCEPTED in msg, msg
        with pytest.raises(ValueError, match="must be a Keras file"):
            create_model("tiny_cnn", input_shape=SHAPE, weights=str(path))
    # A name is not a missing file: tiny_cnn has no published weights (fer_tf.models.pretrained).
    with pytest.raises(ValueError, match="no named weights are published"):
        load_weights(_model(), "imagenet")


def test_the_trainer_checks_model_weights_with_the_config_and_logs_the_report(files):
    cfg = load_config(
        "demo_au",
        ["model.name=tiny_cnn", "data.image_size=32", "model.weights=/nonexistent/w.keras"],
    )
    with pytest.raises(ConfigError, match=r"The 'model\.weights' parameter must be a Keras file"):
        check_model(cfg, task_from_config(cfg))
    cfg = load_config(
        "demo_au",
        ["model.name=tiny_cnn", "data.image_size=32", f"model.weights={files['slim prefix']}"],
    )
    lines: list[str] = []
    model = build_model(cfg, task_from_config(cfg), log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("restored ")
    assert "class layers" in lines[0] and "tiny_cnn/logits" in lines[0]
    assert model.get_layer("logits").kernel.shape[-1] == 8  # the task's 8 AUs
