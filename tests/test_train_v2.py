"""Training on schema-v2 records: config keys, label checks, folds, grey models, and end-to-end
fer-tf-train runs with au_intensity (k-fold) and soft emotion labels (grey FER2013 CNN)."""

from __future__ import annotations

import csv
import json

import pytest

from fer_tf import config as cfgmod
from fer_tf.cli import train as cli
from fer_tf.tasks import task_from_config
from fer_tf.testing.records_v2 import synth_v2_examples, write_v2_records
from fer_tf.training.validate import (
    check_experiment,
    fold_plan,
    input_channels,
    resolve_soft_labels,
)

AUS = (1, 2, 4, 6, 12, 25)


@pytest.fixture(scope="module")
def v2_records(tmp_path_factory):
    """48 faces, 3 subject folds, intensities and (every other face) vote distributions."""
    ex = synth_v2_examples(48, seed=11, size=40, folds=3, dist_every=2)
    d = tmp_path_factory.mktemp("v2rec")
    write_v2_records(d, {"train": ex[:36], "val": ex[36:]}, au_ids=AUS, folds=3)
    return d


def _load(records, *sets):
    aus = "data.aus=1,2,4,6,12,25"
    return cfgmod.load_config("demo_au", [f"data.records={records}", aus, *sets])


def test_new_config_keys_and_their_errors():
    c = cfgmod.load_config(
        "demo_au",
        [
            "data.fold=2",
            "data.folds=5",
            "data.grayscale=true",
            "data.channels=1",
            "task.soft_labels=false",
        ],
    )
    assert (c.data.fold, c.data.folds, c.data.grayscale, c.data.channels) == (2, 5, True, 1)
    assert c.task.soft_labels is False
    assert cfgmod.load_config("demo_au").task.soft_labels == "auto"
    assert cfgmod.load_config("demo_au", ["task.soft_labels=true"]).task.soft_labels is True
    for bad, key in [
        ("data.channels=2", "data.channels"),
        ("data.fold=-2", "data.fold"),
        ("task.soft_labels=maybe", "task.soft_labels"),
        ("task.name=au_intensty", "task.name"),
    ]:
        with pytest.raises(cfgmod.ConfigError, match=key):
            cfgmod.load_config("demo_au", [bad])


def test_input_channels():
    def channels(*sets):
        return input_channels(cfgmod.load_config("demo_au", list(sets)))

    assert channels() == 3
    assert channels("data.grayscale=true") == 1  # trained from scratch: one grey channel
    # Pretrained RGB weights: the grey image is replicated to three channels.
    assert channels("data.grayscale=true", "model.weights=w.h5") == 3
    assert channels("data.grayscale=true", "data.channels=3") == 3
    with pytest.raises(cfgmod.ConfigError, match="data.grayscale"):
        channels("data.channels=1")


def test_build_model_gets_the_channel_count():
    from fer_tf.training.experiment import build_model

    for sets, want in [
        (["data.grayscale=true"], 1),
        (["data.grayscale=true", "data.channels=3"], 3),
        ([], 3),
    ]:
        cfg = cfgmod.load_config(
            "demo_au", ["model.name=fer2013_cnn", "task.name=emotion", "data.aus=1", *sets]
        )
        model = build_model(cfg, task_from_config(cfg))
        assert model.input_shape[-1] == want


def test_au_intensity_label_checks(tmp_path, v2_records):
    # Records with intensities: accepted; the AUs must be among the manifest's.
    check_experiment(_load(v2_records, "task.name=au_intensity", "data.aus=1,12"))
    with pytest.raises(cfgmod.ConfigError, match="no labels for AU9"):
        check_experiment(_load(v2_records, "task.name=au_intensity", "data.aus=1,9"))
    # v1-style statistics (no au_intensity): refused, saying what the records can train.
    ex = synth_v2_examples(4, seed=1, size=32, intensity=False)
    d = write_v2_records(tmp_path / "v1", {"train": ex, "val": ex}, au_ids=AUS)
    with pytest.raises(cfgmod.ConfigError, match="needs AU intensity labels") as err:
        check_experiment(_load(d, "task.name=au_intensity", "data.aus=1,12"))
    assert "Tasks these records can train: au (AUs with labels" in str(err.value)
    # An AU whose every intensity is unknown.
    ex = synth_v2_examples(4, seed=1, size=32, unknown_intensity_every=0)
    for e in ex:
        e.au_intensity[1] = float("nan")
    d = write_v2_records(tmp_path / "nan", {"train": ex, "val": ex}, au_ids=AUS)
    with pytest.raises(cfgmod.ConfigError, match="intensity of AU2 is unknown"):
        check_experiment(_load(d, "task.name=au_intensity", "data.aus=1,2"))
    # Through the CLI: exit 2 before TensorFlow builds anything.
    args = ["--config", "demo_au", "--records", str(d), "--set", "task.name=au_intensity"]
    assert cli.main([*args, "--set", "data.aus=1,2"]) == 2


def test_fold_plan_and_its_errors(tmp_path, v2_records):
    manifest = check_experiment(_load(v2_records, "data.fold=1"))[1]
    plan = fold_plan(_load(v2_records, "data.fold=1"), manifest)
    assert plan.folds == 3 and plan.train_folds == (0, 2) and plan.splits == ("train", "val")
    assert fold_plan(_load(v2_records), manifest) is None
    for sets, match in [
        (["data.fold=3"], r"0\.\.2"),
        (["data.fold=0", "data.folds=5"], "contradicts"),
    ]:
        with pytest.raises(cfgmod.ConfigError, match=match):
            check_experiment(_load(v2_records, *sets))
    ex = synth_v2_examples(4, seed=1, size=32)
    d = write_v2_records(tmp_path / "nofolds", {"train": ex}, au_ids=AUS)  # no val split
    with pytest.raises(cfgmod.ConfigError, match="number of folds >= 2"):
        check_experiment(_load(d, "data.fold=0"))


def test_soft_labels_auto_reads_the_manifest(tmp_path, v2_records):
    cfg = _load(v2_records, "task.name=emotion")
    task, manifest = check_experiment(cfg)
    assert resolve_soft_labels(task, cfg, manifest) is True
    cfg = _load(v2_records, "task.name=emotion", "task.soft_labels=false")
    assert resolve_soft_labels(task_from_config(cfg), cfg, manifest) is False
    ex = synth_v2_examples(4, seed=1, size=32)  # no distributions
    d = write_v2_records(tmp_path / "hard", {"train": ex, "val": ex}, au_ids=AUS)
    cfg = _load(d, "task.name=emotion")
    task, manifest = check_experiment(cfg)
    assert resolve_soft_labels(task, cfg, manifest) is False
    with pytest.raises(cfgmod.ConfigError, match="softmax_ce"):
        check_experiment(_load(v2_records, "task.name=emotion", "task.loss=sigmoid_ce"))


def _train(records, run_dir, *sets):
    args = ["--config", "demo_au", "--records", str(records), "--model-dir", str(run_dir)]
    base = [
        "train.epochs=1",
        "model.name=tiny_cnn",
        "data.image_size=32",
        "data.batch_size=8",
        "run.seed=3",
        "data.aus=1,2,4,6,12,25",
    ]
    for s in (*base, *sets):
        args += ["--set", s]
    return cli.main([*args, "--quiet"])


def test_end_to_end_au_intensity_on_one_fold_of_grey_images(tmp_path, v2_records, capsys):
    rc = _train(
        v2_records,
        tmp_path / "fold1",
        "task.name=au_intensity",
        "data.aus=1,2,4,6,12,25",
        "data.fold=1",
        "data.grayscale=true",
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "fold 1 of 3 over splits train, val" in out
    ev = json.loads((tmp_path / "fold1" / "eval.json").read_text())
    assert ev["task"] == "au_intensity" and ev["split"] == "fold 1"
    m = ev["metrics"]
    for key in ("icc_mean", "pearson_mean", "mae_mean", "icc/AU12", "mae/AU1", "support/AU6"):
        assert key in m
    # The held-out fold's examples were all evaluated (one example per known intensity).
    manifest = json.loads((v2_records / "manifest.json").read_text())
    held = sum(int(e["fold_counts"].get("1", 0)) for e in manifest["splits"].values())
    assert m["examples"] == held
    with (tmp_path / "fold1" / "history.csv").open() as f:
        assert "val/icc_mean" in next(csv.reader(f))


def test_end_to_end_soft_labels_on_a_grey_fer2013_cnn(tmp_path, v2_records, capsys):
    rc = _train(
        v2_records,
        tmp_path / "soft",
        "task.name=emotion",
        "model.name=fer2013_cnn",
        "data.image_size=36",
        "data.grayscale=true",
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "soft-label cross-entropy on label/emotion_dist" in out
    ev = json.loads((tmp_path / "soft" / "eval.json").read_text())
    assert ev["task"] == "emotion" and "accuracy" in ev["metrics"]
    assert len(ev["confusion_matrix"]) == 7
    saved = cfgmod.load_config(str(tmp_path / "soft" / "config.yaml"))
    assert saved.data.grayscale and saved.task.soft_labels == "auto"


def test_a_fold_without_examples_is_refused(tmp_path, capsys):
    ex = [e for e in synth_v2_examples(30, seed=2, size=32, folds=3) if e.fold != 2]
    d = write_v2_records(tmp_path / "rec", {"train": ex}, au_ids=AUS, folds=3)
    rc = _train(d, tmp_path / "run", "data.fold=2")
    err = capsys.readouterr().err
    assert rc == 2
    assert "selects fold 2, which holds no examples" in err and "examples per meta/fold" in err


def test_balanced_class_counts_per_fold_in_the_task_class_order(v2_records):
    from fer_tf import facs
    from fer_tf.training.experiment import _class_counts

    ex = synth_v2_examples(48, seed=11, size=40, folds=3, dist_every=2)  # the fixture's faces
    for k, names in [(7, facs.EMOTIONS), (6, facs.BASIC_EMOTIONS)]:
        task = task_from_config(
            cfgmod.load_config("demo_au", ["task.name=emotion", f"task.num_classes={k}"])
        )
        got = _class_counts(str(v2_records), ["train", "val"], task, [0, 2])
        want = [0] * k
        for e in ex:
            name = facs.EMOTIONS[e.record.emotion]
            if e.fold in (0, 2) and name in names:
                want[names.index(name)] += 1
        assert got.tolist() == want
    # Through a k-fold run's data source: balanced weights from the training folds.
    from fer_tf.training.experiment import records_data_source

    cfg = _load(v2_records, "task.name=emotion", "task.class_weights=balanced", "data.fold=1")
    task, manifest = check_experiment(cfg)
    source = records_data_source(cfg, task, manifest)
    assert source.class_counts.sum() == sum(1 for e in ex if e.fold != 1)


def test_test_split_is_scored_once_into_eval_json(tmp_path, capsys):
    ex = synth_v2_examples(30, seed=4, size=32)
    d = write_v2_records(
        tmp_path / "rec", {"train": ex[:16], "val": ex[16:23], "test": ex[23:]}, au_ids=AUS
    )
    rc = _train(d, tmp_path / "run", "task.name=au_intensity", "data.test_split=test")
    assert rc == 0, capsys.readouterr().out
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert ev["split"] == "val" and ev["metrics"]["examples"] == 7
    assert ev["test"]["split"] == "test" and ev["test"]["metrics"]["examples"] == 7
    assert "icc_mean" in ev["test"]["metrics"] and "per_au" not in ev["test"]
    # A split that does not exist, and test_split with folds, are refused before training.
    with pytest.raises(cfgmod.ConfigError, match="no shards for split 'tst'"):
        check_experiment(_load(d, "data.test_split=tst"))
    with pytest.raises(cfgmod.ConfigError, match="does not combine with data.fold"):
        check_experiment(_load(d, "data.test_split=test", "data.fold=0", "data.folds=2"))
