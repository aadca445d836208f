"""fer_tf.evaluation and fer-tf-evaluate: training's numbers on any split, cross-dataset label
mapping, report and figures, threshold calibration, per-video metrics, run comparison, CLI errors.

Two tiny runs (tiny_cnn, 32 px, 2 epochs on SynthFACS records) are trained once per session: an
AU run and a 7-class emotion run on the same records.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_tf import facs, records
from fer_tf.evaluation.runs import EvaluationError, check_records, load_run
from fer_tf.evaluation.thresholds import au_metrics, calibrate_f1
from fer_tf.evaluation.videos import aggregate_videos

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5


def _train(records_dir: Path, run_dir: Path, config: str, *extra: str) -> Path:
    from fer_tf.cli import train

    args = ["--config", config, "--records", str(records_dir), "--model-dir", str(run_dir)]
    sets = ["model.name=tiny_cnn", "data.image_size=32", "train.epochs=2", "data.batch_size=16"]
    for s in [*sets, *extra]:
        args += ["--set", s]
    assert train.main([*args, "--quiet"]) == 0
    return run_dir


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fer_tf.synthfacs import write_records

    d = tmp_path_factory.mktemp("eval_records") / "rec"
    write_records(d, 192, seed=3, size=32, val_fraction=0.25, num_shards=1)
    return d


@pytest.fixture(scope="module")
def au_run(rec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(rec, tmp_path_factory.mktemp("au") / "run_au", "demo_au")


@pytest.fixture(scope="module")
def emo_run(rec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("emo") / "run_emo"
    # Balanced class weights weigh the loss: the evaluation must weigh it as training did.
    sets = ("task.name=emotion", "task.num_classes=7", "task.class_weights=balanced")
    return _train(rec, run, "demo_posed", *sets)


@pytest.fixture(scope="module")
def va_run(rec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("va") / "run_va"
    return _train(rec, run, "demo_posed", "task.name=va", "task.loss=ccc", "task.num_classes=0")


def _copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("checkpoints", "saved_model", "logs"))
    return dest


def _rewrite(src: Path, dest: Path, split: str, change) -> Path:
    """Copy ``split`` of ``src`` into ``dest`` with ``change(i, ExampleRecord, manifest)``."""
    import tensorflow as tf

    manifest = records.read_manifest(src)
    new_manifest = {k: v for k, v in manifest.items() if not k.startswith("_")}
    out = []
    files = records.list_shards(src, split)
    for i, raw in enumerate(tf.data.TFRecordDataset(files).as_numpy_iterator()):
        ex = records.decode_example(raw)
        change(i, ex, new_manifest)
        out.append(records.encode_example(ex))
    dest.mkdir(parents=True)
    name = records.shard_name(split, 0, 1)
    with records.TFRecordWriter(dest / name) as w:
        for b in out:
            w.write(b)
    new_manifest["splits"] = {split: {"shards": [name], "count": len(out)}}
    new_manifest.pop("label_stats", None)
    records.write_manifest(dest, new_manifest)
    return dest


def _training_metrics(run: Path) -> dict:
    return json.loads((run / "eval.json").read_text())


def _assert_close(ours: dict, theirs: dict) -> float:
    worst = 0.0
    for k, v in theirs.items():
        if v is None or not isinstance(v, (int, float)):
            continue
        assert k in ours, k
        worst = max(worst, abs(float(ours[k]) - float(v)))
        assert abs(float(ours[k]) - float(v)) <= TOL, (k, ours[k], v)
    return worst


# ---------------------------------------------------------------------------------------------
# Equality with training's eval.json


def test_au_evaluation_equals_training_eval_json(au_run, rec, tmp_path):
    from fer_tf.evaluation import evaluate

    res = evaluate(au_run, rec, split="val", output_dir=tmp_path / "out")
    ev = _training_metrics(au_run)
    assert ev["split"] == "val"
    worst = _assert_close(res.metrics, ev["metrics"])
    assert worst <= TOL
    for name, per in ev["per_au"].items():
        assert res.metrics[f"f1/{name}"] == pytest.approx(per["f1"], abs=TOL)
    assert res.training_eval is not None and res.thresholds is None
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["metrics"]["f1_mean"] == pytest.approx(ev["metrics"]["f1_mean"], abs=TOL)
    assert saved["metrics_at_0.5"]["loss"] == pytest.approx(ev["metrics"]["loss"], abs=TOL)
    # The defaults: the run's own records, split val, nothing written.
    _assert_close(evaluate(au_run).metrics, ev["metrics"])


def test_emotion_evaluation_equals_training_eval_json(emo_run, rec, tmp_path):
    from fer_tf.evaluation import evaluate

    res = evaluate(emo_run, rec, split="val", output_dir=tmp_path / "out")
    ev = _training_metrics(emo_run)
    _assert_close(res.metrics, ev["metrics"])
    assert res.confusion_matrix.tolist() == ev["confusion_matrix"]
    assert res.output_names == list(facs.EMOTIONS)


def test_va_evaluation_equals_training_eval_json(va_run, rec, tmp_path):
    from fer_tf.evaluation import evaluate

    res = evaluate(va_run, rec, split="val", output_dir=tmp_path / "out")
    _assert_close(res.metrics, _training_metrics(va_run)["metrics"])  # the batch-level CCC loss too
    _png_ok(tmp_path / "out" / "va_scatter.png")
    assert "## Per dimension" in (tmp_path / "out" / "report.md").read_text()


# ---------------------------------------------------------------------------------------------
# Outputs


def _png_ok(path: Path) -> None:
    from PIL import Image

    assert path.is_file() and path.stat().st_size > 5000, path
    img = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    assert img.shape[0] > 200 and img.shape[1] > 200 and img.std() > 5, path


def test_au_report_metrics_and_figures(au_run, rec, tmp_path):
    from fer_tf.evaluation import evaluate

    out = tmp_path / "out"
    res = evaluate(au_run, rec, split="val", output_dir=out)
    for png in ("per_au_f1", "pr_curves", "roc_curves", "reliability", "learning_curves"):
        _png_ok(out / f"{png}.png")
        assert f"{png}.png" in res.files
    report = (out / "report.md").read_text()
    for heading in ("# Evaluation of", "## Metrics", "## Per AU", "## Figures", "f1_mean"):
        assert heading in report
    assert "training's eval.json" in report
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "au" and metrics["thresholds_source"] == "0.5"


def test_emotion_report_has_confusion_matrices(emo_run, rec, tmp_path):
    from fer_tf.evaluation import evaluate

    out = tmp_path / "out"
    res = evaluate(emo_run, rec, split="val", output_dir=out)
    for png in ("confusion_matrix", "reliability", "learning_curves"):
        _png_ok(out / f"{png}.png")
    assert "## Per class" in (out / "report.md").read_text()
    m = json.loads((out / "metrics.json").read_text())
    assert np.asarray(m["confusion_matrix"]).sum() == res.metrics["examples"]


# ---------------------------------------------------------------------------------------------
# Cross-dataset: labels mapped by AU number and class name


def test_cross_dataset_mapping_gives_the_same_metrics(au_run, emo_run, rec, tmp_path):
    from fer_tf.evaluation import evaluate

    au_ids = records.read_manifest(rec)["au_ids"]
    new_ids = [45, *reversed(au_ids)]  # another order and one AU more
    names = list(facs.EMOTIONS)
    new_names = [*reversed(names), "confusion"]  # another order and one class more
    rng = np.random.default_rng(0)

    def change(i, ex, manifest):
        ex.au = [int(rng.integers(-1, 2)), *reversed(list(ex.au))]
        ex.emotion = new_names.index(names[ex.emotion]) if ex.emotion >= 0 else -1
        manifest["au_ids"], manifest["emotion_names"] = new_ids, new_names

    other = _rewrite(rec, tmp_path / "other", "val", change)
    for run in (au_run, emo_run):
        a = evaluate(run, rec, split="val")
        b = evaluate(run, other, split="val")
        _assert_close(b.metrics, a.metrics)
        assert b.training_eval is None and b.notes  # the mapping is reported
    assert any("AU labels mapped by AU number" in n for n in evaluate(au_run, other).notes)


def _fake_records(d: Path, **manifest) -> Path:
    records.write_manifest(
        d, {"splits": {"val": {"shards": ["val-00000-of-00001.tfrecord"]}}, **manifest}
    )
    (d / "val-00000-of-00001.tfrecord").write_bytes(b"")
    return d


def test_records_without_the_models_labels_are_an_error_naming_them(au_run, emo_run, tmp_path):
    au = load_run(au_run)
    emo = load_run(emo_run)
    no_au4 = _fake_records(tmp_path / "a", au_ids=[1, 2, 6, 12, 25, 26, 43])
    with pytest.raises(EvaluationError, match=r"lack labels for AU4\b"):
        check_records(no_au4, "val", au.task)
    no_neutral = _fake_records(
        tmp_path / "e", emotion_names=list(facs.BASIC_EMOTIONS) + ["contempt"]
    )
    with pytest.raises(EvaluationError, match="neutral"):
        check_records(no_neutral, "val", emo.task)
    with pytest.raises(EvaluationError, match="'--split'.*'test'"):
        check_records(no_au4, "test", au.task)


# ---------------------------------------------------------------------------------------------
# Thresholds


def test_calibrate_f1_finds_the_known_best_threshold():
    labels = np.array([[1, 1], [1, 0], [0, 0], [0, -1]])
    probs = np.array([[0.9, 0.7], [0.3, 0.6], [0.2, 0.4], [0.1, 0.99]])
    t = calibrate_f1(labels, probs)
    assert t[0] == pytest.approx(0.25)  # between 0.3 (positive) and 0.2 (negative): F1 1.0
    assert 0.6 < t[1] < 0.7  # AU 2: the unknown 0.99 is ignored
    m0 = au_metrics(["A", "B"], labels, probs, 0.5).result()
    m1 = au_metrics(["A", "B"], labels, probs, t).result()
    assert m0["f1/A"] == pytest.approx(2 / 3) and m1["f1/A"] == 1.0 and m1["f1/B"] == 1.0
    # No known positive: the default stays.
    assert calibrate_f1(np.array([[0], [0]]), np.array([[0.7], [0.2]])) == [0.5]


def test_au_metrics_at_0_5_equal_the_streaming_metrics():
    from fer_tf.metrics import AUMetrics

    rng = np.random.default_rng(1)
    labels = rng.integers(-1, 2, size=(50, 3)).astype(np.float32)
    logits = rng.normal(size=(50, 3)).astype(np.float32)
    ref = AUMetrics(["a", "b", "c"])
    ref.update_state(labels, logits)
    ours = au_metrics(["a", "b", "c"], labels, 1 / (1 + np.exp(-logits.astype(np.float64))))
    for k, v in ref.result().items():
        assert ours.result()[k] == pytest.approx(v, abs=1e-9), k


def test_calibration_improves_f1_and_round_trips(au_run, rec, tmp_path):
    from fer_tf.evaluation import evaluate

    run = _copy_run(au_run, tmp_path / "run")
    cal = evaluate(run, rec, split="val", output_dir=tmp_path / "cal", calibrate_thresholds=True)
    stored = json.loads((run / "thresholds.json").read_text())
    assert stored["au_ids"] == list(load_run(run).task.aus)
    assert stored["split"] == "val" and stored["metric"] == "f1"
    assert stored["thresholds"] == pytest.approx(cal.thresholds)
    for name in cal.output_names:
        assert cal.metrics[f"f1/{name}"] >= cal.metrics_at_default[f"f1/{name}"] - 1e-12
    assert cal.metrics["f1_mean"] >= cal.metrics_at_default["f1_mean"]
    report = (tmp_path / "cal" / "report.md").read_text()
    assert "at the per-AU thresholds" in report and "at 0.5" in report
    # A later evaluation reads the stored thresholds and gets the same numbers.
    again = evaluate(run, rec, split="val")
    assert "thresholds.json" in again.thresholds_source
    _assert_close(again.metrics, cal.metrics)
    # Calibrating on the split of final reporting is refused.
    with pytest.raises(EvaluationError, match="calibrate on 'val'|Calibrate on 'val'"):
        evaluate(run, rec, split="test", calibrate_thresholds=True)


def test_calibration_is_refused_for_classification_runs(emo_run, rec):
    from fer_tf.evaluation import evaluate

    with pytest.raises(EvaluationError, match="AU models"):
        evaluate(emo_run, rec, split="val", calibrate_thresholds=True)


# ---------------------------------------------------------------------------------------------
# Per video


def test_video_aggregation_known_answers_classification():
    names = ["a", "b", "c"]
    seq = ["v1", "v1", "v1", "v2", "v2", "", "v3"]
    scores = np.array(
        [
            [0.6, 0.4, 0.0],  # v1: two frames vote a, one votes b strongly;
            [0.6, 0.4, 0.0],  #     mean [0.4, 0.6, 0] says b
            [0.0, 1.0, 0.0],
            [0.1, 0.1, 0.8],  # v2: both frames say c
            [0.2, 0.1, 0.7],
            [1.0, 0.0, 0.0],  # a still: left out
            [0.3, 0.3, 0.4],  # v3: no known label: left out
        ]
    )
    labels = np.array([1, 1, 1, 2, 2, 0, -1])
    res = aggregate_videos("emotion", seq, scores, labels, names)
    assert res.videos == ["v1", "v2"] and res.frames == [3, 2]
    assert [r["majority"] for r in res.rows] == ["a", "c"]
    assert [r["mean"] for r in res.rows] == ["b", "c"]
    assert res.methods["majority"]["accuracy"] == 0.5
    assert res.methods["mean"]["accuracy"] == 1.0
    assert res.confusion["majority"].tolist() == [[0, 0, 0], [1, 0, 0], [0, 0, 1]]
    assert res.confusion["mean"].tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_video_aggregation_known_answers_au_and_va():
    seq = ["v1"] * 4 + ["v2"] * 2
    # AU "A": v1 frames 0.9, 0.9, 0.1, 0.1 (vote share 0.5 -> present; mean 0.5 -> absent at 0.5)
    probs = np.array([[0.9], [0.9], [0.1], [0.1], [0.2], [0.3]])
    labels = np.array([[1], [1], [1], [-1], [0], [0]])
    res = aggregate_videos("au", seq, probs, labels, ["A"])
    assert [r["majority"] for r in res.rows] == ["A", ""]
    assert [r["mean"] for r in res.rows] == ["", ""]
    assert [r["true"] for r in res.rows] == ["A", ""]
    assert res.methods["majority"]["f1/A"] == 1.0 and res.methods["mean"]["f1/A"] == 0.0
    # With a threshold of 0.4 the mean (0.5) says present too.
    res = aggregate_videos("au", seq, probs, labels, ["A"], thresholds=[0.4])
    assert res.methods["mean"]["f1/A"] == 1.0
    va = aggregate_videos(
        "va",
        ["v", "v", "w"],
        np.array([[0.2, 0.0], [0.4, 0.2], [-0.5, 0.5]]),
        np.array([[0.3, np.nan], [0.3, 0.1], [-0.5, 0.5]]),
        ["valence", "arousal"],
    )
    assert va.methods["mean"]["mae/valence"] == pytest.approx(0.0)
    assert va.methods["mean"]["mae/arousal"] == pytest.approx(0.0)
    assert aggregate_videos("emotion", ["", ""], np.eye(2), np.array([0, 1]), ["x", "y"]) is None


def test_records_with_sequences_get_per_video_metrics(emo_run, au_run, rec, tmp_path):
    from fer_tf.evaluation import evaluate

    def change(i, ex, manifest):
        ex.sequence, ex.frame = f"video{i // 4:03d}", i % 4

    vids = _rewrite(rec, tmp_path / "vids", "val", change)
    n = records.read_manifest(vids)["splits"]["val"]["count"]
    plain = evaluate(emo_run, rec, split="val")
    res = evaluate(emo_run, vids, split="val", output_dir=tmp_path / "out")
    _assert_close(res.metrics, plain.metrics)  # frame metrics do not change
    v = res.videos
    assert v is not None and len(v.videos) == (n + 3) // 4 and sum(v.frames) == n
    assert set(v.methods) == {"majority", "mean"}
    for method in ("majority", "mean"):
        assert v.confusion[method].sum() == len(v.videos)
    _png_ok(tmp_path / "out" / "videos.png")
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Per video" in report and "majority vote" in report and "mean scores" in report
    au = evaluate(au_run, vids, split="val")
    assert set(au.videos.methods) == {"majority", "mean"} and "f1_mean" in au.videos.methods["mean"]


# ---------------------------------------------------------------------------------------------
# Comparison


def test_compare_runs_table_and_curves(au_run, rec, tmp_path):
    from fer_tf.evaluation import compare_runs

    search = tmp_path / "search"
    search.mkdir()
    _copy_run(au_run, search / "trial_000")
    _copy_run(au_run, search / "trial_001")
    (search / "search.csv").write_text("trial\n0\n1\n")
    res = compare_runs([au_run, search, tmp_path / "nothing"], tmp_path / "cmp")
    assert [r["run"] for r in res.rows] == ["run_au", "search/trial_000", "search/trial_001"]
    ev = _training_metrics(au_run)["metrics"]
    assert all(r["f1_mean"] == pytest.approx(ev["f1_mean"]) for r in res.rows)
    assert len(res.errors) == 1 and "nothing" in res.errors[0]
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "search/trial_001" in table and "f1_mean" in table
    assert (tmp_path / "cmp" / "comparison.csv").read_text().count("\n") == 4
    _png_ok(tmp_path / "cmp" / "learning_curves.png")
    fresh = compare_runs([au_run], tmp_path / "cmp2", records=rec, split="val")
    assert fresh.rows[0]["source"].startswith("evaluated on")
    assert fresh.rows[0]["f1_mean"] == pytest.approx(ev["f1_mean"], abs=TOL)


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_evaluates_and_calibrates(au_run, rec, tmp_path, capsys):
    from fer_tf.cli import evaluate as cli

    run = _copy_run(au_run, tmp_path / "run")
    out = tmp_path / "out"
    args = ["--model", str(run), "--records", str(rec), "--output-dir", str(out), "--quiet"]
    assert cli.main([*args, "--split", "val", "--calibrate-thresholds"]) == 0
    stdout = capsys.readouterr().out
    assert "f1_mean" in stdout and "thresholds written" in stdout
    assert (run / "thresholds.json").is_file() and (out / "report.md").is_file()
    assert cli.main([*args, "--split", "test", "--calibrate-thresholds"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Calibrate on 'val'" in err[0]
    cmp_out = tmp_path / "cmp"
    assert cli.main(["--compare", str(run), str(au_run), "--output-dir", str(cmp_out)]) == 0
    assert (cmp_out / "comparison.md").is_file()


@pytest.mark.parametrize("what", ["missing", "file", "not_a_run"])
def test_cli_bad_model_is_one_line_exit_1_without_tensorflow(tmp_path, what):
    target = tmp_path / "m"
    if what == "file":
        target.write_text("x")
    elif what == "not_a_run":
        target.mkdir()
        (target / "eval.json").write_text("{}")
    code = (
        "import sys\nfrom fer_tf.cli.evaluate import main\n"
        f"rc = main(['--model', {str(target)!r}, '--output-dir', {str(tmp_path / 'o')!r}])\n"
        "sys.exit(rc * 10 + ('tensorflow' in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 10, out.stderr  # exit 1, TensorFlow never imported
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fer-tf-evaluate: error: The '--model'")
    assert str(target) in lines[0] and not out.stdout


def test_cli_argument_errors(capsys):
    from fer_tf.cli import evaluate as cli

    assert cli.main(["--model", "x"]) == 2
    assert "--output-dir" in capsys.readouterr().err
    assert cli.main(["--output-dir", "o"]) == 2
    assert "--model" in capsys.readouterr().err


def test_a_split_without_known_labels_is_an_error(emo_run, rec, tmp_path):
    from fer_tf.evaluation import evaluate

    def change(i, ex, manifest):
        ex.emotion = -1

    unlabelled = _rewrite(rec, tmp_path / "unlabelled", "val", change)
    with pytest.raises(EvaluationError, match="no example with a known 'emotion' label"):
        evaluate(emo_run, unlabelled, split="val")
