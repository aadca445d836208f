"""Fine-tuning from a TF-Slim ImageNet checkpoint through the trainer's model builder.

The seed experiments start from 1001-class slim checkpoints; the task head (11 AUs here) never
fits their class layers, so everything but the class layers must be restored and the freezing of
the config applied on top.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from test_models_checkpoint import write_checkpoint  # noqa: E402
from test_models_slim import read_variables, reference_value  # noqa: E402

from fer_tf.config import load_config  # noqa: E402
from fer_tf.models import slim_variable_map  # noqa: E402
from fer_tf.tasks import task_from_config  # noqa: E402
from fer_tf.training.experiment import build_model  # noqa: E402


def test_seed_001_config_fine_tunes_from_a_1001_class_slim_checkpoint(tmp_path, capsys):
    values = {n: reference_value(n, s) for n, s in read_variables("inception_v2")}
    prefix = write_checkpoint(str(tmp_path / "inception_v2.ckpt"), values)
    cfg = load_config("emotionet11_inception_v2", ["data.image_size=96", f"model.weights={prefix}"])
    lines: list[str] = []
    model = build_model(cfg, task_from_config(cfg), log=lines.append)
    # One report line through the log, nothing printed.
    assert len(lines) == 1 and lines[0].startswith("restored ") and f"from {prefix}" in lines[0]
    assert "InceptionV2/Logits" in lines[0] and not capsys.readouterr().out

    by_name = slim_variable_map(model)
    conv = "InceptionV2/Mixed_4c/Branch_1/Conv2d_0b_3x3/weights"
    np.testing.assert_array_equal(by_name[conv].numpy(), values[conv])
    mean = "InceptionV2/Conv2d_2b_1x1/BatchNorm/moving_mean"
    np.testing.assert_array_equal(by_name[mean].numpy(), values[mean])
    logits = [n for n in by_name if "/Logits/" in n and n.endswith("weights")]
    assert logits and by_name[logits[0]].shape[-1] == 11  # the task head, not 1001 classes
    # Bartissol 2017: logits only.
    trainable = {v.path for v in model.trainable_variables}
    assert trainable and all("logits" in p.lower() for p in trainable), sorted(trainable)[:5]


def test_a_checkpoint_missing_backbone_variables_is_refused(tmp_path):
    values = {n: reference_value(n, s) for n, s in read_variables("inception_v2")}
    values.pop("InceptionV2/Mixed_5c/Branch_0/Conv2d_0a_1x1/weights")
    prefix = write_checkpoint(str(tmp_path / "partial.ckpt"), values)
    cfg = load_config("emotionet11_inception_v2", ["data.image_size=96", f"model.weights={prefix}"])
    with pytest.raises(ValueError, match="Mixed_5c/Branch_0/Conv2d_0a_1x1/weights"):
        build_model(cfg, task_from_config(cfg))


def _shipped_model_specs():
    from fer_tf.config import list_experiments

    seen, out = set(), []
    for name in list_experiments():
        m = load_config(name).model
        key = (m.name, m.train_layer_mode, tuple(m.trainable_scopes), m.unfreeze_last)
        if key not in seen:
            seen.add(key)
            out.append(name)
    return out


@pytest.mark.parametrize("experiment", _shipped_model_specs())
def test_every_shipped_freezing_spec_builds_and_matches(experiment):
    from fer_tf.models import get_model_info

    cfg = load_config(experiment)
    info = get_model_info(cfg.model.name)
    # Smallest size the model with its head accepts: freezing does not depend on it.
    size = max(info.min_top_input_size, 32)
    cfg = load_config(experiment, [f"data.image_size={size}"])
    model = build_model(cfg, task_from_config(cfg))
    n_train, n_all = len(model.trainable_variables), len(model.variables)
    assert n_train > 0
    if cfg.model.trainable_scopes or cfg.model.train_layer_mode or cfg.model.unfreeze_last:
        assert n_train < n_all, f"{experiment}: freezing left every variable trainable"
