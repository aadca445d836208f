"""fer-tf-export / export_model / load_exported: parity of every format with the Keras model.

One tiny AU run and one tiny emotion run (tiny_cnn, 32 px, 1 epoch on SynthFACS records) are
trained once per session; each export is written once and shared. The reference is computed by
hand: the Keras model on ``x / 127.5 - 1`` (the ``inception`` family), then sigmoid or softmax in
NumPy. Tolerances (measured values in docs/inference.md, section Export): float formats 1e-4 relative; TFLite
float16 and dynamic, ONNX dynamic 1e-2 absolute; int8 0.05 absolute; the AU decisions at the
thresholds agree on at least 90% of the test images and the top emotion on at least 85% (the
1-epoch emotion model is nearly uniform: its top-2 margins are below 0.05, so an error of a few
thousandths may flip one or two of the 32 images; measured 94-97%).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fer_tf.cli import export as cli
from fer_tf.inference import export as ex
from fer_tf.inference.metadata import METADATA_NAME, MetadataError, ModelMetadata

SUFFIX = {"savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}
#: Max absolute error allowed per quantisation mode.
QUANT_TOL = {"dynamic": 1e-2, "float16": 1e-2, "int8": 0.05}


def _train(records: Path, run: Path, *sets: str) -> Path:
    from fer_tf.cli.train import main

    args = ["--config", "demo_au", "--records", str(records), "--model-dir", str(run), "--quiet"]
    for s in ("train.epochs=1", "model.name=tiny_cnn", "data.image_size=32", "data.batch_size=16"):
        args += ["--set", s]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return run


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two trained runs on the same SynthFACS records: ``au`` and ``emotion``."""
    from fer_tf.synthfacs import write_records

    base = tmp_path_factory.mktemp("export_runs")
    write_records(base / "rec", 120, seed=1, size=40, val_fraction=0.25)
    return {
        "au": _train(base / "rec", base / "au"),
        "emotion": _train(base / "rec", base / "emotion", "task.name=emotion"),
        "records": base / "rec",
    }


@pytest.fixture(scope="session")
def exports(runs, tmp_path_factory):
    """``get(task, format, quantize) -> Path``: each export written once per session."""
    base = tmp_path_factory.mktemp("exports")
    cache: dict[tuple, Path] = {}

    def get(task: str, fmt: str, quantize: str | None = None) -> Path:
        key = (task, fmt, quantize)
        if key not in cache:
            out = base / f"{task}_{fmt}_{quantize}{SUFFIX[fmt]}"
            cache[key] = ex.export_model(runs[task], fmt, out, quantize=quantize)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def crops(runs) -> np.ndarray:
    """uint8 face crops of the validation split, as evaluation preprocesses them (32 images)."""
    md = ModelMetadata.from_run(runs["au"])
    x = ex.representative_images(runs["records"], md, split="val", count=32)
    assert x.dtype == np.uint8 and x.shape == (32, 32, 32, 3)
    return x


def _reference(run: Path, images: np.ndarray) -> np.ndarray:
    """The Keras model's activated outputs, normalisation and activation done by hand."""
    import keras

    from fer_tf.models import CUSTOM_OBJECTS

    md = ModelMetadata.from_run(run)
    assert md.normalization == "inception"
    model = keras.models.load_model(run / "best.keras", custom_objects=CUSTOM_OBJECTS)
    logits = np.asarray(model(images.astype(np.float32) / 127.5 - 1.0, training=False))
    logits = logits.astype(np.float64)
    if md.activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-logits))
    assert md.activation == "softmax"
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="session")
def references(runs, crops) -> dict[str, np.ndarray]:
    return {task: _reference(runs[task], crops) for task in ("au", "emotion")}


# --------------------------------------------------------------------------------------------
# Metadata of a run directory.


def test_metadata_from_run(runs):
    md = ModelMetadata.from_run(runs["au"])
    assert md.task == "au" and md.activation == "sigmoid"
    assert md.au_ids == [1, 2, 4, 6, 12, 25, 26, 43]
    assert md.output_names == [f"AU{a}" for a in md.au_ids]
    assert md.thresholds == [0.5] * 8
    assert md.input_size == (32, 32) and md.channels == 3 and not md.grayscale
    assert md.normalization == "inception" and md.model_name == "tiny_cnn"
    assert md.face["detector"] == "none"
    emo = ModelMetadata.from_run(runs["emotion"])
    assert emo.task == "emotion" and emo.activation == "softmax" and emo.au_ids == []
    assert emo.output_names[:2] == ["neutral", "happiness"] and len(emo.output_names) == 7


def test_metadata_from_run_reads_thresholds_in_output_order(runs, tmp_path):
    shutil.copy(runs["au"] / "config.yaml", tmp_path / "config.yaml")
    shutil.copy(runs["au"] / "best.keras", tmp_path / "best.keras")
    ids = [43, 26, 25, 12, 6, 4, 2, 1]  # another order than the outputs
    (tmp_path / "thresholds.json").write_text(
        json.dumps({"au_ids": ids, "thresholds": [a / 100 for a in ids], "split": "val"})
    )
    md = ModelMetadata.from_run(tmp_path)
    assert md.thresholds == [a / 100 for a in md.au_ids]
    (tmp_path / "thresholds.json").write_text(json.dumps({"au_ids": [1], "thresholds": [0.3]}))
    with pytest.raises(MetadataError, match=r"no threshold for AU \[2, 4"):
        ModelMetadata.from_run(tmp_path)


def test_not_a_run_directory_is_one_clear_error(tmp_path):
    with pytest.raises(MetadataError, match="config.yaml"):
        ex.export_model(tmp_path, "savedmodel", tmp_path / "out")


# --------------------------------------------------------------------------------------------
# Parity.


@pytest.mark.parametrize("fmt", ex.FORMATS)
def test_float_exports_match_keras_within_1e4_relative(fmt, runs, exports, crops, references):
    path = exports("au", fmt)
    run, md = ex.load_exported(path)
    out = run(crops)
    assert set(out) == {"scores"} and out["scores"].dtype == np.float32
    assert out["scores"].shape == (len(crops), 8)
    np.testing.assert_allclose(out["scores"], references["au"], rtol=1e-4, atol=1e-7)
    # Metadata round trip: what the run says is what the export carries.
    assert md.to_json() == ModelMetadata.from_run(runs["au"]).to_json()
    assert run.format == fmt


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_emotion_exports_match_keras_softmax(fmt, exports, crops, references):
    run, md = ex.load_exported(exports("emotion", fmt))
    scores = run(crops)["scores"]
    np.testing.assert_allclose(scores, references["emotion"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-5)
    assert md.task == "emotion" and md.activation == "softmax"


@pytest.mark.parametrize(
    "fmt, quantize",
    [
        ("tflite", "dynamic"),
        ("tflite", "float16"),
        ("tflite", "int8"),
        ("onnx", "dynamic"),
        ("onnx", "int8"),
    ],
)
def test_quantized_exports_within_tolerance(fmt, quantize, exports, crops, references):
    run, md = ex.load_exported(exports("au", fmt, quantize))
    scores = run(crops)["scores"]
    ref = references["au"]
    assert np.abs(scores - ref).max() <= QUANT_TOL[quantize]
    thresholds = np.asarray(md.thresholds)
    same_set = ((scores >= thresholds) == (ref >= thresholds)).all(axis=1)
    assert same_set.mean() >= 0.9, same_set.mean()
    emo_run, _ = ex.load_exported(exports("emotion", fmt, quantize))
    emo = emo_run(crops)["scores"]
    assert np.abs(emo - references["emotion"]).max() <= QUANT_TOL[quantize]
    top_agrees = emo.argmax(axis=1) == references["emotion"].argmax(axis=1)
    assert top_agrees.mean() >= 0.85, top_agrees.mean()


def test_quantized_tflite_is_smaller(exports):
    sizes = {q: exports("au", "tflite", q).stat().st_size for q in (None, "float16", "int8")}
    assert sizes["int8"] < sizes["float16"] < sizes[None]


# --------------------------------------------------------------------------------------------
# Where the metadata lives.


def test_savedmodel_carries_metadata_asset_and_signature(exports):
    import tensorflow as tf

    path = exports("au", "savedmodel")
    assert (path / "assets" / METADATA_NAME).is_file()
    loaded = tf.saved_model.load(str(path))
    sig = loaded.signatures["serving_default"]
    assert sig.structured_input_signature[1]["images"].dtype == tf.uint8
    assert list(sig.structured_outputs) == ["scores"]


def test_tflite_metadata_is_embedded_and_in_a_sidecar(exports, tmp_path, crops):
    path = exports("au", "tflite")
    embedded = json.loads(zipfile.ZipFile(path).read(METADATA_NAME))
    sidecar = ModelMetadata.load(path.with_name(path.name + ".json"))
    assert ModelMetadata.from_json(embedded) == sidecar
    lone = tmp_path / "lone.tflite"  # without its sidecar: the embedded copy answers
    shutil.copy(path, lone)
    run, md = ex.load_exported(lone)
    assert md == sidecar and run(crops[:2])["scores"].shape == (2, 8)


def test_onnx_metadata_props_and_sidecar(exports, tmp_path):
    import onnx

    path = exports("au", "onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    md = ModelMetadata.from_json(json.loads(props[ex.ONNX_METADATA_KEY]))
    assert md == ModelMetadata.load(path.with_name(path.name + ".json"))
    lone = tmp_path / "lone.onnx"
    shutil.copy(path, lone)
    assert ex.load_exported(lone)[1] == md


def test_exports_without_metadata_are_one_clear_error(exports, tmp_path):
    sm = tmp_path / "sm"
    shutil.copytree(exports("au", "savedmodel"), sm)
    (sm / "assets" / METADATA_NAME).unlink()
    with pytest.raises(MetadataError, match="carries no fer_tf metadata .no 'assets/fer_tf"):
        ex.load_exported(sm)
    with pytest.raises(MetadataError, match="not an exported SavedModel"):
        ex.load_exported(tmp_path)
    raw = tmp_path / "raw.tflite"  # the flatbuffer alone: no zip, no sidecar
    blob = exports("au", "tflite").read_bytes()
    raw.write_bytes(blob[: blob.rfind(b"PK\x03\x04")])
    with pytest.raises(MetadataError, match="carries no fer_tf metadata"):
        ex.load_exported(raw)
    with pytest.raises(MetadataError, match="does not exist"):
        ex.load_exported(tmp_path / "missing.onnx")
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(MetadataError, match="not an exported fer_tf model"):
        ex.load_exported(tmp_path / "model.pt")


def test_tflite_falls_back_to_tensorflows_interpreter(exports, crops, references, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    run, _ = ex.load_exported(exports("au", "tflite"))
    assert type(run.backend.interpreter).__module__.startswith("tensorflow")
    np.testing.assert_allclose(run(crops)["scores"], references["au"], rtol=1e-4, atol=1e-7)


def test_runner_checks_its_input(exports, crops):
    run, _ = ex.load_exported(exports("au", "tflite"))
    assert run(crops[0])["scores"].shape == (1, 8)  # one image is a batch of one
    empty = run(np.zeros((0, 32, 32, 3), np.uint8))["scores"]
    assert empty.shape == (0, 8) and empty.dtype == np.float32
    with pytest.raises(ValueError, match="uint8 pixels"):
        run(crops.astype(np.float32))
    with pytest.raises(ValueError, match=r"shape \(N, 32, 32, 3\)"):
        run(np.zeros((2, 64, 64, 3), np.uint8))


# --------------------------------------------------------------------------------------------
# Argument errors.


def test_bad_format_and_quantize_are_clear_errors(runs, tmp_path):
    with pytest.raises(ValueError, match="'format' parameter must be one of"):
        ex.export_model(runs["au"], "tflit", tmp_path / "x")
    with pytest.raises(ValueError, match="'quantize' parameter must be one of .* onnx"):
        ex.export_model(runs["au"], "onnx", tmp_path / "x.onnx", quantize="float16")
    with pytest.raises(ValueError, match="savedmodel"):
        ex.export_model(runs["au"], "savedmodel", tmp_path / "x", quantize="int8")


def test_int8_without_readable_records_says_what_to_pass(runs, tmp_path):
    with pytest.raises(ValueError, match="--representative-records"):
        ex.export_model(
            runs["au"],
            "tflite",
            tmp_path / "x.tflite",
            quantize="int8",
            representative_records=tmp_path / "nowhere",
        )


def test_existing_output_needs_overwrite(runs, exports, tmp_path):
    out = tmp_path / "m.tflite"
    out.write_bytes(b"old")
    with pytest.raises(FileExistsError, match="--overwrite"):
        ex.export_model(runs["au"], "tflite", out)
    assert ex.export_model(runs["au"], "tflite", out, overwrite=True) == out
    assert out.stat().st_size > 1000


# --------------------------------------------------------------------------------------------
# CLI.


def _no_tf_main(*args: str) -> subprocess.CompletedProcess:
    code = (
        "import sys\nfrom fer_tf.cli.export import main\n"
        "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "print('TF' if bad else 'noTF'); sys.exit(rc)"
    )
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)


def test_help_does_not_import_tensorflow():
    out = _no_tf_main("--help")
    assert out.returncode == 0 and "fer-tf-export" in out.stdout and "--quantize" in out.stdout
    assert out.stdout.strip().endswith("noTF")


def test_cli_bad_format_is_one_line_before_tensorflow():
    out = _no_tf_main("--model", "x", "--format", "tflit")
    assert out.returncode == 2 and out.stdout.strip() == "noTF"
    assert out.stderr.strip() == (
        "fer-tf-export: error: The '--format' parameter must be one of ['savedmodel', 'tflite', "
        "'onnx']. Got 'tflit' instead. Did you mean 'tflite'?"
    )
    out = _no_tf_main("--model", "x", "--format", "onnx", "--quantize", "float16")
    assert out.returncode == 2 and out.stdout.strip() == "noTF"
    assert "'--quantize' parameter must be one of ['dynamic', 'int8'] for --format onnx" in (
        out.stderr
    )
    assert "use --format tflite" in out.stderr


def test_cli_exports_and_reports_errors(runs, tmp_path, capsys, crops, references):
    out = tmp_path / "cli.onnx"
    assert cli.main(["--model", str(runs["au"]), "--format", "onnx", "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"fer-tf-export: wrote {out}"
    run, _ = ex.load_exported(out)
    np.testing.assert_allclose(run(crops)["scores"], references["au"], rtol=1e-4, atol=1e-7)
    assert cli.main(["--model", str(runs["au"]), "--format", "onnx", "--output", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["--model", str(tmp_path), "--output", str(tmp_path / "sm")]) == 1
    assert "config.yaml" in capsys.readouterr().err
    args = ["--model", str(runs["au"]), "--format", "savedmodel", "--quantize", "int8"]
    assert cli.main([*args, "--output", str(tmp_path / "q")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fer-tf-export: error: A savedmodel export is not quantised")
    assert err.count("\n") == 1


def test_importing_export_does_not_import_tensorflow():
    code = (
        "import sys, fer_tf.inference.export, fer_tf.cli.export\n"
        "bad = [m for m in ('tensorflow', 'keras', 'onnx', 'tf2onnx') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# --------------------------------------------------------------------------------------------
# The predictor on an export answers with the run directory's table.


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_predictor_on_an_export_gives_the_run_directorys_table(fmt, runs, exports, tmp_path):
    from PIL import Image

    from fer_tf import Predictor
    from fer_tf.synthfacs import sample

    paths = []
    for i, face in enumerate(sample(4, seed=3, size=64)):
        paths.append(tmp_path / f"face{i}.png")
        Image.fromarray(face.image).save(paths[-1])
    ours = Predictor.from_run(runs["au"], detector="none").predict(paths)
    theirs = Predictor.from_export(exports("au", fmt), detector="none").predict(paths)
    assert list(theirs.columns) == list(ours.columns)
    aus = [c for c in ours.columns if c.startswith("AU") and not c.endswith("_present")]
    # The export takes uint8 crops; the run directory's Keras runner takes the float resize, so
    # the two differ by the rounding of the resized pixels (measured: at most ~3e-4).
    np.testing.assert_allclose(theirs[aus].to_numpy(float), ours[aus].to_numpy(float), atol=2e-3)
