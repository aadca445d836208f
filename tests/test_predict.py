"""fer_tf.Predictor and fer-tf-predict on a tiny trained run: real photo, SynthFACS images, a video,
bad inputs; column layout, video rows, summaries, output formats, parity with training."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data as skdata

from fer_tf.inference.metadata import MetadataError, ModelMetadata
from fer_tf.inference.predictor import BASE_COLUMNS, Predictor
from fer_tf.inference.video import summarize_videos


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch tiny_cnn AU run on 48 SynthFACS faces (about 15 s, built once)."""
    from fer_tf.cli.train import main
    from fer_tf.synthfacs import write_records

    root = tmp_path_factory.mktemp("predict_run")
    write_records(root / "records", 48, seed=1, size=64, num_shards=1)
    argv = ["--config", "demo_au", "--records", str(root / "records"), "--quiet"]
    argv += ["--set", "model.name=tiny_cnn", "--set", "data.image_size=32"]
    argv += ["--set", "train.epochs=1", "--model-dir", str(root / "run")]
    assert main(argv) == 0
    return root / "run"


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from fer_tf.synthfacs import sample

    d = tmp_path_factory.mktemp("media")
    (d / "synth").mkdir()
    faces = sample(4, seed=3, size=96)
    for i, f in enumerate(faces):
        Image.fromarray(f.image).save(d / "synth" / f"face{i}.png")
    Image.fromarray(skdata.astronaut()).save(d / "astronaut.jpg", quality=92)
    (d / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (d / "notes.txt").write_text("not an image")
    video = d / "clip.avi"
    face = cv2.cvtColor(cv2.resize(skdata.astronaut()[:256, 96:352], (128, 128)), cv2.COLOR_RGB2BGR)
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (128, 128))
    for k in range(7):
        w.write(np.roll(face, k, axis=1))
    w.release()
    empty = d / "empty.avi"
    empty.write_bytes(b"")
    return {"dir": d, "video": video, "empty": empty}


@pytest.fixture(scope="session")
def predictor(tiny_run: Path) -> Predictor:
    return Predictor.from_run(tiny_run, batch_size=4)


def test_metadata_from_run(tiny_run: Path, tmp_path: Path):
    md = ModelMetadata.from_run(tiny_run)
    assert md.task == "au" and md.au_ids == [1, 2, 4, 6, 12, 25, 26, 43]
    assert md.input_size == (32, 32) and md.channels == 3 and md.normalization == "inception"
    assert md.activation == "sigmoid" and md.thresholds == [0.5] * 8
    assert md.face["detector"] == "none"  # SynthFACS records are not face-cropped
    assert ModelMetadata.load(md.save(tmp_path)) == md  # JSON round trip
    # Thresholds from thresholds.json, the face crop from the records' manifest.
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "best.keras"):
        shutil.copy(tiny_run / name, run / name)
    thr = {"au_ids": [43, 26, 25, 12, 6, 4, 2, 1], "thresholds": [0.8, 0.7, 0.6, 0.5, 0.4, 0.3]}
    thr["thresholds"] += [0.2, 0.1]
    (run / "thresholds.json").write_text(json.dumps(thr))
    md2 = ModelMetadata.from_run(run)
    assert md2.thresholds == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def test_metadata_face_from_manifest(tiny_run: Path, tmp_path: Path):
    rec = tmp_path / "records"
    rec.mkdir()
    args = {"face_crop": "haar", "face_margin": 0.3, "equalize": True}
    (rec / "manifest.json").write_text(json.dumps({"arguments": args}))
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_run / "best.keras", run / "best.keras")
    text = (tiny_run / "config.yaml").read_text()
    old = next(line for line in text.splitlines() if line.strip().startswith("records:"))
    (run / "config.yaml").write_text(text.replace(old, f"  records: {rec}"))
    md = ModelMetadata.from_run(run)
    assert md.face == {"detector": "haar", "align": False, "margin": 0.3} and md.equalize


def test_not_a_run_is_one_clear_error(tmp_path: Path, tiny_run: Path):
    with pytest.raises(MetadataError, match="not a fer_tf run directory"):
        ModelMetadata.from_run(tmp_path)
    shutil.copy(tiny_run / "config.yaml", tmp_path / "config.yaml")
    with pytest.raises(MetadataError, match="best.keras is missing"):
        Predictor.from_run(tmp_path)


def test_predict_mixed_inputs(predictor: Predictor, media: dict[str, Path]):
    d = media["dir"]
    inputs = [d / "astronaut.jpg", d / "synth", d / "bad.jpg", d / "missing.png", d / "notes.txt"]
    df = predictor.predict(inputs)
    aus = [f"AU{a}" for a in predictor.metadata.au_ids]
    assert list(df.columns) == [*BASE_COLUMNS, *aus, *(a + "_present" for a in aus), "error"]
    astro = df[df["input"] == str(d / "astronaut.jpg")]
    assert len(astro) == 1 and astro["face"].iloc[0] == 0 and astro["face_score"].iloc[0] > 0.9
    assert astro["frame"].iloc[0] == -1 and np.isnan(astro["time_s"].iloc[0])
    assert astro[aus].notna().all(axis=1).iloc[0] and astro["error"].iloc[0] == ""
    errors = df.set_index("input")["error"]
    assert "cannot decode" in errors[str(d / "bad.jpg")]
    assert "no such file" in errors[str(d / "missing.png")]
    assert "unsupported file type '.txt'" in errors[str(d / "notes.txt")]
    for name in ("bad.jpg", "missing.png", "notes.txt"):
        row = df[df["input"] == str(d / name)]
        assert len(row) == 1 and row["face"].iloc[0] == -1 and row[aus].isna().all(axis=None)
    synth = df[df["input"].str.contains("/synth/")]
    assert sorted(synth["input"].unique()) == [str(d / "synth" / f"face{i}.png") for i in range(4)]


def test_no_face_gets_one_empty_row(predictor: Predictor):
    df = predictor.predict([np.full((80, 80, 3), 127, np.uint8)])
    assert len(df) == 1 and df["face"].iloc[0] == -1 and df["error"].iloc[0] == ""
    assert df["AU1"].isna().all() and df["x"].isna().all()


def test_video_rows_follow_the_sampled_frames(predictor: Predictor, media: dict[str, Path]):
    df = predictor.predict_video(media["video"], every_n_frames=3)
    assert sorted(df["frame"].unique()) == [0, 3, 6]
    times = df.drop_duplicates("frame")["time_s"].to_numpy()
    assert np.all(np.diff(times) > 0) and times[0] == 0
    np.testing.assert_allclose(times, [0.0, 0.3, 0.6], atol=0.02)
    every = predictor.predict_video(media["video"], fps=5)
    assert sorted(every["frame"].unique()) == [0, 2, 4, 6]
    empty = predictor.predict([media["empty"]])
    assert len(empty) == 1 and empty["error"].iloc[0]
    summary = predictor.summarize(df)
    assert len(summary) == 1 and summary["frames"].iloc[0] == 3


def _meta(task: str, names: list[str], au_ids: list[int] | None = None) -> ModelMetadata:
    return ModelMetadata(task, names, (8, 8), "unit", au_ids=au_ids or [])


def test_summary_both_aggregations_on_a_hand_made_table():
    md = _meta("emotion", ["happy", "sad"])
    rows = [  # frames: happy wins 2 of 3 votes, sad wins the mean score
        ("v.mp4", 0, 0.0, 0, 0.6, 0.4, "happy"),
        ("v.mp4", 1, 0.1, 0, 0.55, 0.45, "happy"),
        ("v.mp4", 2, 0.2, 0, 0.05, 0.95, "sad"),
        ("v.mp4", 3, 0.3, -1, np.nan, np.nan, None),
    ]
    df = pd.DataFrame(
        rows, columns=["input", "frame", "time_s", "face", "happy", "sad", "emotion_label"]
    )
    df["error"] = ""
    s = summarize_videos(df, md).iloc[0]
    assert s["emotion_vote"] == "happy" and s["emotion_mean"] == "sad"
    assert s["frames"] == 4 and s["frames_with_face"] == 3
    assert s["happy_mean"] == pytest.approx(0.4)
    au = _meta("au", ["AU1"], [1])
    t = pd.DataFrame({"input": "a.avi", "frame": [0, 1, 2], "time_s": [0, 1, 2], "face": 0})
    t["AU1"], t["AU1_present"], t["error"] = [0.9, 0.2, 0.3], [True, False, False], ""
    a = summarize_videos(t, au).iloc[0]
    assert a["AU1_peak"] == 0.9 and a["AU1_mean"] == pytest.approx(0.4667, abs=1e-3)
    assert not a["AU1_present_vote"] and not a["AU1_present_mean"]


class _FakeRunner:
    """An export-like runner: uint8 batches in, fixed softmax scores out."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        assert batch.dtype == np.uint8
        self.shapes.append(batch.shape)
        s = np.tile([[0.7, 0.2, 0.1]], (len(batch), 1)).astype(np.float32)
        return {"probabilities": s}


def test_public_constructor_with_a_fake_runner():
    md = ModelMetadata("posed", ["a", "b", "c"], (16, 16), "unit")
    runner = _FakeRunner()
    p = Predictor(runner, md, detector="none", batch_size=2)
    df = p.predict([np.zeros((20, 30, 3), np.uint8)] * 3)
    assert list(df.columns)[9:] == ["a", "b", "c", "posed_label", "error"]
    assert (df["posed_label"] == "a").all() and df["a"].tolist() == pytest.approx([0.7] * 3)
    assert runner.shapes == [(2, 16, 16, 3), (1, 16, 16, 3)]


def test_output_formats_round_trip(predictor: Predictor, media: dict[str, Path], tmp_path: Path):
    from fer_tf.cli.predict import write_table

    df = predictor.predict([media["dir"] / "astronaut.jpg", media["dir"] / "bad.jpg"])
    for suffix, read in ((".csv", pd.read_csv), (".parquet", pd.read_parquet)):
        write_table(df, str(tmp_path / f"p{suffix}"))
        back = read(tmp_path / f"p{suffix}")
        assert list(back.columns) == list(df.columns)
        np.testing.assert_allclose(back["AU1"].to_numpy(float), df["AU1"].to_numpy(float))
    write_table(df, str(tmp_path / "p.jsonl"))
    back = pd.read_json(tmp_path / "p.jsonl", lines=True)
    assert list(back.columns) == list(df.columns) and back["error"].iloc[1]


def test_parity_with_the_training_pipeline(tiny_run: Path, media: dict[str, Path], tmp_path: Path):
    import keras
    import tensorflow as tf

    from fer_tf.models import CUSTOM_OBJECTS
    from fer_tf.preprocessing import image as img

    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.yaml", "best.keras"):
        shutil.copy(tiny_run / name, run / name)
    aus = [1, 2, 4, 6, 12, 25, 26, 43]
    thr = [0.45, 0.5, 0.55, 0.4, 0.6, 0.5, 0.45, 0.52]
    (run / "thresholds.json").write_text(json.dumps({"au_ids": aus, "thresholds": thr}))
    path = media["dir"] / "synth" / "face0.png"
    row = Predictor.from_run(run, detector="none").predict([path]).iloc[0]
    # By hand: the evaluation pipeline's preprocessing, the model, the sigmoid.
    x = img.preprocess_for_eval(tf.constant(path.read_bytes()), 32, central_fraction=0.875)
    model = keras.models.load_model(run / "best.keras", custom_objects=CUSTOM_OBJECTS)
    p = tf.sigmoid(model(img.normalize(x[None], "inception"), training=False)).numpy()[0]
    got = row[[f"AU{a}" for a in aus]].to_numpy(float)
    np.testing.assert_allclose(got, p, atol=2e-3)
    assert [bool(row[f"AU{a}_present"]) for a in aus] == [bool(v >= t) for v, t in zip(got, thr)]
    # A face crop: the Viola-Jones box with the builder's margin, then the same by hand.
    from fer_tf.preprocessing.faces import crop_face

    photo = media["dir"] / "astronaut.jpg"
    row = Predictor.from_run(run, detector="haar", margin=0.2).predict([photo]).iloc[0]
    crop, info = crop_face(np.asarray(Image.open(photo)), margin=0.2)
    assert (row["x"], row["y"], row["w"], row["h"]) == info["box"]
    png = tf.io.encode_png(crop).numpy()  # lossless, so only the resize can differ
    x = img.preprocess_for_eval(tf.constant(png), 32, central_fraction=0.875)
    p = tf.sigmoid(model(img.normalize(x[None], "inception"), training=False)).numpy()[0]
    np.testing.assert_allclose(row[[f"AU{a}" for a in aus]].to_numpy(float), p, atol=2e-3)


def test_cli_end_to_end(tiny_run: Path, media: dict[str, Path], tmp_path: Path, capsys):
    from fer_tf.cli.predict import main

    d = media["dir"]
    out, summary, ann = tmp_path / "p.csv", tmp_path / "s.csv", tmp_path / "ann"
    argv = ["--model", str(tiny_run), str(d / "astronaut.jpg"), str(media["video"])]
    argv += [str(d / "missing.jpg"), "--output", str(out), "--summary", str(summary)]
    argv += ["--every-n-frames", "2", "--annotate", str(ann), "--batch-size", "3"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "missing.jpg" in err and "no such file" in err
    df = pd.read_csv(out)
    assert sorted(df.loc[df["input"] == str(media["video"]), "frame"]) == [0, 2, 4, 6]
    assert len(pd.read_csv(summary)) == 1
    assert sorted(p.name for p in ann.iterdir()) == ["astronaut.png", "clip.avi"]
    assert main(["--model", str(tiny_run), str(d / "bad.jpg"), "--output", str(out)]) == 1
    assert main(["--model", str(tmp_path), str(d / "bad.jpg"), "--output", str(out)]) == 2
    assert "not a fer_tf run directory" in capsys.readouterr().err


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\nfrom fer_tf.cli.predict import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "import fer_tf; fer_tf.Predictor\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "sys.exit(1 if bad else 0)"
    )
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert probe.returncode == 0, probe.stdout + probe.stderr[-2000:]


def _formats(d: Path) -> list[Path]:
    """The astronaut in every accepted image format and mode, one EXIF-rotated."""
    rgb = Image.fromarray(skdata.astronaut()).resize((256, 256))
    out = []
    for name, im, kw in [
        ("grey.png", rgb.convert("L"), {}),
        ("rgba.png", rgb.convert("RGBA"), {}),
        ("palette.gif", rgb.convert("P"), {}),
        ("cmyk.jpg", rgb.convert("CMYK"), {}),
        ("plain.bmp", rgb, {}),
        ("plain.tiff", rgb, {}),
        ("plain.webp", rgb, {"quality": 90}),
    ]:
        im.save(d / name, **kw)
        out.append(d / name)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: the viewer turns it 90 degrees clockwise
    rgb.transpose(Image.Transpose.ROTATE_90).save(d / "exif.jpg", exif=exif)
    return [*out, d / "exif.jpg"]


def test_runner_outputs_by_name():
    md = ModelMetadata("va", ["valence", "arousal"], (8, 8), "unit")

    def runner(batch: np.ndarray) -> dict[str, np.ndarray]:
        n = len(batch)
        return {"arousal": np.full(n, -0.5), "valence": np.full(n, 0.25)}

    df = Predictor(runner, md, detector="none").predict([np.zeros((9, 9, 3), np.uint8)])
    assert list(df.columns)[9:] == ["valence", "arousal", "error"]
    assert (df["valence"].iloc[0], df["arousal"].iloc[0]) == (0.25, -0.5)


def test_every_image_format_and_mode(tmp_path: Path):
    md = ModelMetadata("posed", ["a", "b", "c"], (16, 16), "unit")
    p = Predictor(_FakeRunner(), md, detector="mtcnn", batch_size=8)
    paths = _formats(tmp_path)
    df = p.predict([tmp_path])
    assert sorted(df["input"].unique()) == sorted(str(x) for x in paths)
    assert (df["error"] == "").all()
    by = df[df["face"] == 0].set_index("input")
    assert set(by.index) == {str(x) for x in paths}  # the face is found in every one
    ref = by.loc[str(tmp_path / "plain.bmp"), ["x", "y", "w", "h"]].to_numpy(float)
    exif = by.loc[str(tmp_path / "exif.jpg"), ["x", "y", "w", "h"]].to_numpy(float)
    np.testing.assert_allclose(exif, ref, atol=6)  # upright after the EXIF rotation


def test_aligned_crops_when_the_records_were_aligned(tmp_path: Path):
    from fer_tf.preprocessing.faces import align_face, detect_faces

    md = ModelMetadata("posed", ["a", "b", "c"], (48, 48), "unit", central_fraction=None)
    md.face = {"detector": "mtcnn", "align": True, "margin": 0.1}
    seen: list[np.ndarray] = []

    def runner(batch: np.ndarray) -> np.ndarray:
        seen.append(batch)
        return np.tile([[0.1, 0.2, 0.7]], (len(batch), 1))

    p = Predictor(runner, md)
    assert (p.detector, p.align, p.margin) == ("mtcnn", True, 0.1)
    astro = skdata.astronaut()
    df = p.predict([astro])
    assert df["posed_label"].tolist() == ["c"]
    face = detect_faces([astro])[0][0]
    np.testing.assert_array_equal(seen[0][0], align_face(astro, face, 48, 0.1))


def test_prefetch_hands_reader_errors_to_the_consumer():
    from fer_tf.inference.video import prefetch

    def items():
        yield 1
        raise RuntimeError("disk gone")

    got = []
    with pytest.raises(RuntimeError, match="disk gone"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1]
    assert list(prefetch(range(200), size=4)) == list(range(200))


def test_bad_arguments_are_clear(predictor: Predictor, media: dict[str, Path]):
    with pytest.raises(ValueError, match="at most one"):
        predictor.predict_video(media["video"], every_n_frames=2, fps=3.0)
    with pytest.raises(ValueError, match="detector"):
        Predictor(_FakeRunner(), predictor.metadata, detector="dlib")
    with pytest.raises(ValueError, match="batch_size"):
        Predictor(_FakeRunner(), predictor.metadata, batch_size=0)
