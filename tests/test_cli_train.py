"""fer-tf-train: --help without TensorFlow, shipped configs validate, bad configs fail early."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_tf import config as cfgmod
from fer_tf.cli import train as cli
from fer_tf.tasks import task_from_config
from fer_tf.training.validate import check_experiment


def test_help_is_fast_and_does_not_import_tensorflow():
    code = (
        "import sys, contextlib, io\n"
        "from fer_tf.cli.train import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "print('tensorflow' in sys.modules)\n"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert time.perf_counter() - t < 10  # the < 2 s target is measured in benchmarks/


@pytest.mark.parametrize("name", cfgmod.list_experiments())
def test_every_shipped_config_validates(name):
    config = cfgmod.load_config(name)
    text = (cfgmod.CONFIG_DIR / f"{name}.yaml").read_text()
    assert text.startswith("# ") and "Command:" in text and "Expected runtime:" in text
    task, _ = check_experiment(config, require_records=False)
    assert task.name == config.task.name
    assert config.name == name


def test_seed_configs_carry_the_seed_values():
    v4 = cfgmod.load_config("posed2_inception_v4")
    # Christensen 2018's "dropout" 0.4 (Fig. 5.6) is a keep probability (docs/seeds.md).
    assert (v4.optimizer.learning_rate, v4.data.batch_size, v4.model.keep_prob) == (5e-4, 64, 0.4)
    assert v4.model.train_layer_mode == 3  # Experiment 1 locked the Inception-C blocks (§5.1)
    assert v4.train.early_stopping_metric == "val/loss" and v4.data.augment == "christensen2018"
    cnn = cfgmod.load_config("posed12_shallow_cnn")
    assert cnn.optimizer.learning_rate == 5e-5 and task_from_config(cnn).num_outputs == 12
    i2 = cfgmod.load_config("emotionet11_inception_v2")
    assert (i2.data.batch_size, i2.optimizer.learning_rate) == (128, 0.001)
    assert (i2.optimizer.rmsprop_decay, i2.optimizer.momentum, i2.optimizer.epsilon) == (
        0.9,
        0.9,
        1.0,
    )
    assert cfgmod.load_config("emotionet11_vgg16").data.batch_size == 32
    e60 = cfgmod.load_config("emotionet60_vgg16")
    assert (e60.data.batch_size, e60.train.epochs * e60.train.steps_per_epoch) == (32, 5000)
    assert cfgmod.load_config("emotionet60_zero_filled").task.unknown_labels == "zero"
    assert cfgmod.load_config("emotionet60_masked").task.unknown_labels == "mask"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--config", "demo_au", "--set", "optimizer.lerning_rate=1"], "Did you mean"),
        (["--config", "demo_au", "--set", "data.batch_size=many"], "data.batch_size"),
        (
            ["--config", "demo_au", "--set", "task.name=va", "--set", "task.loss=softmax_ce"],
            "task.loss",
        ),
        (["--config", "demo_au", "--set", "train.early_stopping_metric=val/acuracy"], "val/"),
        (["--config", "demo_au"], "No records given"),
        (["--config", "demo_au", "--records", "/nonexistent/records"], "does not exist"),
        (["--config", "no_such_experiment"], "neither a YAML file"),
        ([], "--config"),
    ],
)
def test_bad_configs_fail_before_tensorflow(args, match, capsys):
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert match in err and err.startswith("fer-tf-train: error:")


def test_records_without_split_or_aus(tmp_path, capsys):
    from fer_tf import records

    records.write_manifest(tmp_path, {"au_ids": [1, 2], "splits": {}})
    (tmp_path / "train-00000-of-00001.tfrecord").write_bytes(b"")
    assert cli.main(["--config", "demo_au", "--records", str(tmp_path)]) == 2
    assert "no shards for split 'val'" in capsys.readouterr().err
    (tmp_path / "val-00000-of-00001.tfrecord").write_bytes(b"")
    assert cli.main(["--config", "demo_au", "--records", str(tmp_path)]) == 2
    assert "no labels for AU4" in capsys.readouterr().err


def test_model_mismatch_is_a_config_error(tmp_path):
    pytest.importorskip("tensorflow")
    from fer_tf.training.validate import check_model

    cfg = cfgmod.load_config("demo_au", ["model.name=inception_v4", "data.image_size=32"])
    with pytest.raises(cfgmod.ConfigError, match=">= 107"):
        check_model(cfg, task_from_config(cfg))
    cfg = cfgmod.load_config("demo_au", ["model.name=tiny_cnn", "model.train_layer_mode=4"])
    with pytest.raises(cfgmod.ConfigError, match=r"one of \[0, 1, 2, 3\] for tiny_cnn"):
        check_model(cfg, task_from_config(cfg))
    # An unknown model is rejected with the rest of the config, before TensorFlow loads.
    with pytest.raises(cfgmod.ConfigError, match="model.name"):
        cfgmod.load_config("demo_au", ["model.name=resnet9000"])


def test_dry_run_and_list(capsys):
    assert cli.main(["--list"]) == 0
    assert "demo_au" in capsys.readouterr().out
    assert cli.main(["--config", "demo_au", "--records", "/x", "--dry-run"]) == 2


@pytest.mark.parametrize(
    ("sets", "match"),
    [
        (["model.name=foo"], "model.name"),
        (["model.name=inception_v4", "data.image_size=32"], ">= 107"),
        (["model.train_layer_mode=9"], "train_layer_mode"),
        (["task.name=va", "data.aus=1,2,4"], None),
        (["data.aus=1,2,4,6"], "no labels for AU6"),
    ],
)
def test_dry_run_runs_the_checks_of_a_real_run(tmp_path, capsys, sets, match):
    pytest.importorskip("tensorflow")
    from fer_tf import records

    records.write_manifest(tmp_path, {"au_ids": [1, 2, 4], "splits": {}})
    for split in ("train", "val"):
        (tmp_path / f"{split}-00000-of-00001.tfrecord").write_bytes(b"")
    args = ["--config", "demo_au", "--records", str(tmp_path), "--dry-run"]
    args += [a for s in ["data.aus=1,2,4", *sets] for a in ("--set", s)]
    rc = cli.main(args)
    out, err = capsys.readouterr()
    if match is None:
        assert rc == 0 and "name: va" in out
    else:
        assert rc == 2 and match in err and not out


def test_end_to_end_on_synthfacs_records(tmp_path):
    """fer-tf-train on SynthFACS records with the registered tiny CNN learns the AU task."""
    pytest.importorskip("tensorflow")
    from fer_tf.synthfacs import write_records

    write_records(tmp_path / "rec", 240, seed=1, size=40, val_fraction=0.25)
    rc = cli.main(
        [
            "--config",
            "demo_au",
            "--records",
            str(tmp_path / "rec"),
            "--model-dir",
            str(tmp_path / "run"),
            "--quiet",
            "--set",
            "train.epochs=3",
            "--set",
            "model.name=tiny_cnn",
            "--set",
            "data.image_size=32",
            "--set",
            "data.batch_size=16",
        ]
    )
    assert rc == 0
    import json

    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert ev["metrics"]["loss"] < ev["chance_loss"]


def _labelled_records(tmp_path, stats, au_ids=(1, 2, 4)):
    from fer_tf import records

    manifest = {"au_ids": list(au_ids), "splits": {}}
    if stats is not None:
        manifest["label_stats"] = {"train": stats, "val": stats}
    records.write_manifest(tmp_path, manifest)
    for split in ("train", "val"):
        (tmp_path / f"{split}-00000-of-00001.tfrecord").write_bytes(b"")
    return tmp_path


def _build_stats(*, au_unknown=(), va_known=10, posed_known=10, emotion_known=10):
    """label_stats in fer-tf-build-records' layout (10 examples)."""
    from fer_tf import facs

    au = {
        str(a): {"present": 0, "absent": 0, "unknown": 10}
        if a in au_unknown
        else {"present": 4, "absent": 6, "unknown": 0}
        for a in (1, 2, 4)
    }
    emotion = dict.fromkeys(facs.EMOTIONS, 0)
    emotion["happiness"] = emotion_known
    emotion["unknown"] = 10 - emotion_known
    return {
        "count": 10,
        "au": au,
        "valence": {"known": va_known, "mean": None, "std": None},
        "arousal": {"known": va_known, "mean": None, "std": None},
        "emotion": emotion,
        "posed": {"posed": posed_known, "spontaneous": 0, "unknown": 10 - posed_known},
        "subjects": 3,
    }


@pytest.mark.parametrize(
    ("task_sets", "stats", "match"),
    [
        (["task.name=va"], {"va_known": 0}, "'va' task needs valence/arousal labels"),
        (["task.name=posed"], {"posed_known": 0}, "'posed' task needs posed/spontaneous"),
        (["task.name=emotion"], {"emotion_known": 0}, "'emotion' task needs emotion"),
        (["task.name=au", "data.aus=1,2,4"], {"au_unknown": (4,)}, "AU4 is unknown"),
    ],
)
def test_records_without_labels_for_the_task_fail(tmp_path, task_sets, stats, match):
    d = _labelled_records(tmp_path, _build_stats(**stats))
    cfg = cfgmod.load_config("demo_au", [f"data.records={d}", *task_sets])
    with pytest.raises(cfgmod.ConfigError, match=match) as err:
        check_experiment(cfg)
    msg = str(err.value)
    assert str(d) in msg and "'train' split" in msg
    if task_sets[0] != "task.name=au":
        # What the records can train instead.
        assert "Tasks these records can train: au (AUs with labels: 1, 2, 4)" in msg
    else:
        assert "[1, 2]" in msg
    # Through the CLI: exit 2 with the same message.
    args = ["--config", "demo_au", "--records", str(d)]
    for s in task_sets:
        args += ["--set", s]
    assert cli.main(args) == 2


def test_label_checks_pass_with_labels_and_without_label_stats(tmp_path):
    for i, stats in enumerate([_build_stats(), None]):
        d = _labelled_records(tmp_path / str(i), stats)
        for task in ("va", "posed", "emotion"):
            cfg = cfgmod.load_config("demo_au", [f"data.records={d}", f"task.name={task}"])
            assert check_experiment(cfg)[0].name == task
        cfg = cfgmod.load_config("demo_au", [f"data.records={d}", "data.aus=1,2,4"])
        check_experiment(cfg)
    # 12 posed classes need one of the posed emotions; 6 emotions ignore neutral.
    st = _build_stats(emotion_known=0)
    st["emotion"]["neutral"] = 10
    d = _labelled_records(tmp_path / "neutral", st)
    cfg = cfgmod.load_config("demo_au", [f"data.records={d}", "task.name=emotion"])
    check_experiment(cfg)
    for sets, match in (
        (["task.name=emotion", "task.num_classes=6"], "needs emotion .one of happiness"),
        (["task.name=posed", "task.num_classes=12"], "12 posed classes"),
    ):
        cfg = cfgmod.load_config("demo_au", [f"data.records={d}", *sets])
        with pytest.raises(cfgmod.ConfigError, match=match):
            check_experiment(cfg)


def test_label_checks_read_the_synthfacs_manifest_layout(tmp_path):
    # SynthFACS write_records: au_present/au_absent lists aligned with au_ids, no VA stats.
    stats = {
        "au_present": [3, 0, 2],
        "au_absent": [7, 0, 8],
        "au_unknown_total": 10,
        "emotion": {"happiness": 10},
        "posed": {"posed": 0, "spontaneous": 0, "unknown": 10},
    }
    d = _labelled_records(tmp_path, stats)
    cfg = cfgmod.load_config("demo_au", [f"data.records={d}", "data.aus=1,4"])
    check_experiment(cfg)
    cfg = cfgmod.load_config("demo_au", [f"data.records={d}", "data.aus=1,2"])
    with pytest.raises(cfgmod.ConfigError, match="AU2 is unknown"):
        check_experiment(cfg)
    cfg = cfgmod.load_config("demo_au", [f"data.records={d}", "task.name=va"])
    check_experiment(cfg)  # not recorded: nothing to check
    cfg = cfgmod.load_config("demo_au", [f"data.records={d}", "task.name=posed"])
    with pytest.raises(cfgmod.ConfigError, match="posed/spontaneous") as err:
        check_experiment(cfg)
    accepted = (
        "au (AUs with labels: 1, 4); va (not recorded in label_stats); "
        "emotion (classes with labels: happiness)"
    )
    assert accepted in str(err.value)


def test_train_layer_mode_for_every_model_with_a_mode_table():
    pytest.importorskip("tensorflow")
    from fer_tf import models
    from fer_tf.models import freezing
    from fer_tf.training.validate import check_model, train_layer_modes

    # The slim models take their freezing table; the small CNNs what freezing accepts.
    for name in models.list_models():
        scope = models.get_model_info(name).slim_scope
        if scope in freezing.TRAIN_LAYER_MODES:
            assert train_layer_modes(name) == (0, *sorted(freezing.TRAIN_LAYER_MODES[scope]))
    assert train_layer_modes("shallow_cnn") == (0, 1, 2, 3, 4, 5)
    assert train_layer_modes("tiny_cnn") == (0, 1, 2, 3)
    for model, mode in (("inception_v2", 3), ("shallow_cnn", 5), ("vgg16", 5)):
        cfg = cfgmod.load_config(
            "posed2_shallow_cnn",
            [f"model.name={model}", f"model.train_layer_mode={mode}", "data.image_size=0"],
        )
        check_model(cfg, task_from_config(cfg))
    cfg = cfgmod.load_config("posed2_shallow_cnn", ["model.train_layer_mode=6"])
    with pytest.raises(cfgmod.ConfigError, match="shallow_cnn"):
        check_model(cfg, task_from_config(cfg))


# --------------------------------------------------------------------------- the first hour

_NO_TF = (
    "import sys, contextlib, io\n"
    "from fer_tf.cli.train import main\n"
    "err = io.StringIO()\n"
    "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(err):\n"
    "    rc = main(sys.argv[1:])\n"
    "print(rc, 'tensorflow' in sys.modules)\n"
    "print(out.getvalue() + err.getvalue(), end='')\n"
)


def _no_tf_run(*args: str) -> tuple[int, bool, str]:
    """Run main(args) in a fresh interpreter: exit status, whether TF got imported, output."""
    out = subprocess.run(
        [sys.executable, "-c", _NO_TF, *args], capture_output=True, text=True, check=True
    )
    first, _, rest = out.stdout.partition("\n")
    rc, tf_loaded = first.split()
    return int(rc), tf_loaded == "True", rest


@pytest.mark.parametrize("dry_run", [False, True])
def test_model_dir_that_is_a_file_fails_in_one_line_with_exit_1(tmp_path, capsys, dry_run):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    extra = ["--dry-run"] if dry_run else []
    for model_dir, what in ((a_file, "which is a file"), (a_file / "run", f"'{a_file}' is a file")):
        args = ["--config", "demo_au", "--records", "/nonexistent", "--model-dir", str(model_dir)]
        assert cli.main([*args, *extra]) == 1
        out, err = capsys.readouterr()
        assert not out and err.count("\n") == 1, err
        assert err.startswith("fer-tf-train: error: The '--model-dir' parameter must be a writable")
        assert what in err and str(model_dir) in err


def test_model_dir_is_checked_before_tensorflow_loads(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    rc, tf_loaded, out = _no_tf_run(
        "--config", "demo_au", "--records", "/x", "--model-dir", str(a_file), "--dry-run"
    )
    assert (rc, tf_loaded) == (1, False) and "which is a file" in out


def test_list_shows_one_line_descriptions_without_tensorflow():
    rc, tf_loaded, out = _no_tf_run("--list")
    assert (rc, tf_loaded) == (0, False)
    lines = out.splitlines()
    assert len(lines) == len(cfgmod.list_experiments())
    for line, name in zip(lines, cfgmod.list_experiments()):
        description = cfgmod.load_config(name).description
        assert description and line.split()[0] == name and line.endswith(description)


def test_records_that_is_a_file_says_what_it_is_and_what_was_expected(tmp_path, capsys):
    a_file = tmp_path / "records.tfrecord"
    a_file.write_bytes(b"")
    assert cli.main(["--config", "demo_au", "--records", str(a_file)]) == 2
    err = capsys.readouterr().err
    assert f"Got '{a_file}', which is a file." in err
    assert "records directory holding manifest.json" in err and "fer-tf-build-records" in err


def test_empty_train_split_says_so_and_how_to_rebuild(tmp_path, capsys):
    from fer_tf import records

    stats = {"count": 0, "au": {str(a): {"present": 0, "absent": 0, "unknown": 0} for a in (1, 2)}}
    records.write_manifest(
        tmp_path,
        {
            "au_ids": [1, 2],
            "splits": {"train": {"count": 0, "shards": []}, "val": {"count": 3, "shards": []}},
            "label_stats": {"train": stats, "val": stats},
        },
    )
    for split in ("train", "val"):
        (tmp_path / f"{split}-00000-of-00001.tfrecord").write_bytes(b"")
    assert (
        cli.main(["--config", "demo_au", "--records", str(tmp_path), "--set", "data.aus=1,2"]) == 2
    )
    err = capsys.readouterr().err
    assert f"The 'train' split of the records in '{tmp_path}' is empty (0 examples" in err
    assert "train: 0, val: 3" in err and "fer-tf-build-records" in err and "--val-fraction" in err
    assert "unknown" not in err and "Choose" not in err


def test_quiet_import_hides_fd2_noise_unless_verbose(tmp_path):
    # A stand-in TensorFlow that writes to file descriptor 2 on import, as the real one does.
    for name in ("tensorflow", "keras"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(
            f"import os\nos.write(2, b'E0000 {name} cuInit noise\\n')\n"
        )
    code = (
        "import os, sys\n"
        "from fer_tf.cli._quiet import import_tensorflow\n"
        "import_tensorflow(verbose=sys.argv[1] == 'verbose')\n"
        "print('ours', file=sys.stderr)\n"
        "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(root)])
    runs = {}
    for mode in ("quiet", "verbose"):
        runs[mode] = subprocess.run(
            [sys.executable, "-c", code, mode], env=env, capture_output=True, text=True, check=True
        )
    assert runs["quiet"].stderr == "ours\n" and runs["quiet"].stdout.strip() == "3"
    assert "E0000 tensorflow cuInit noise" in runs["verbose"].stderr
    assert runs["verbose"].stderr.endswith("ours\n") and runs["verbose"].stdout.strip() == "None"


def test_a_run_outside_a_terminal_has_epoch_lines_and_no_bars_or_tf_noise(tmp_path):
    pytest.importorskip("tensorflow")
    from fer_tf.synthfacs import write_records

    write_records(tmp_path / "rec", 64, seed=2, size=32, val_fraction=0.25, num_shards=1)
    sets = ["train.epochs=2", "model.name=tiny_cnn", "data.image_size=32", "data.batch_size=16"]
    args = ["--config", "demo_au", "--records", str(tmp_path / "rec")]
    args += ["--model-dir", str(tmp_path / "run")] + [a for s in sets for a in ("--set", s)]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    # stdout and stderr are pipes, not terminals (no --quiet: the bars are off by themselves).
    out = subprocess.run(
        [sys.executable, "-m", "fer_tf.cli.train", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    epoch_lines = [line for line in out.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(" step ")[0] for line in epoch_lines] == ["epoch 1", "epoch 2"]
    for noise in ("cuInit", "E0000", "\r", "absl::InitializeLog"):
        assert noise not in out.stderr and noise not in out.stdout, (noise, out.stderr)
