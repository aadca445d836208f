"""Local dataset sources through the one shared build: the folder source end to end, resume and
byte-identical rebuilds, folds, data and video items (test-only sources), the CLI's source flags."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fer_tf.build import BuildOptions, build_records
from fer_tf.cli.build_records import main
from fer_tf.sources.base import Issue, Source, SourceItem, SourceOption, register_source
from fer_tf.testing.miniatures_ingest import (
    FOLDER_CLASSES,
    synth_images,
    write_avi,
    write_folder_dataset,
)

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# Test-only sources (registered once, for this module's process)


def _png(image: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


@register_source
class _SubjectsSource(Source):
    """``root/<subject>/<n>.png`` with AU labels: subjects for splits and folds."""

    name = "test_subjects"
    description = "test only: root/<subject>/*.png"
    au_ids = (1, 2, 12)
    emotion_names = ("neutral", "happy")
    default_folds = 3
    source_options = (SourceOption("tag", "test_subjects: a string carried along", str, "x"),)

    def check_root(self) -> None:
        super().check_root()
        self.expect("S00")

    def items(self, report) -> Iterator[SourceItem]:
        for subject in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for i, f in enumerate(sorted(subject.glob("*.png"))):
                yield SourceItem(
                    source=f.relative_to(self.root).as_posix(),
                    path=f,
                    au={1: 1, 2: 0, 12: -1},
                    au_intensity={1: 2.5} if i == 0 else {},
                    emotion=i % 2,
                    subject=subject.name,
                )


@register_source
class _DataSource(Source):
    """Pixels held in a label file: ``data`` items (like FER2013), one with a face box."""

    name = "test_data"
    description = "test only: images as bytes"
    emotion_names = ("a", "b")
    source_options = (SourceOption("box", "test_data: give item 0 a face box", bool, False),)

    def check_root(self) -> None:
        super().check_root()
        self.expect("pixels.npy", kind="file")

    def items(self, report) -> Iterator[SourceItem]:
        images = np.load(self.root / "pixels.npy")
        for i, image in enumerate(images):
            box = (8, 8, 16, 16) if (i == 0 and self.options["box"]) else None
            yield SourceItem(
                source=f"pixels.npy#row={i}",
                data=_png(image),
                emotion=i % 2,
                emotion_dist=(0.25, 0.75) if i == 1 else (),
                partition="test" if i == 2 else "train",
                box=box,
            )
        report(Issue("pixels.npy", 99, "bad_row", "row 99 has 3 pixels", failure=True))
        report(Issue("pixels.npy", 100, "unknown_class", "class 9 is not a class", failure=False))
        yield SourceItem(source="pixels.npy#row=0", data=b"dup")  # a duplicate source


@register_source
class _VideoSource(Source):
    """Frames 0, 2, 4 and (past the end) 40 of every ``*.avi`` in the root."""

    name = "test_video"
    description = "test only: frames of videos"
    sequences = True

    def check_root(self) -> None:
        super().check_root()

    def items(self, report) -> Iterator[SourceItem]:
        for video in sorted(self.root.glob("*.avi")):
            for frame in (0, 2, 4, 40):
                yield SourceItem(
                    source=f"{video.name}#frame={frame}",
                    video=video,
                    frame=frame,
                    sequence=video.stem,
                    subject=video.stem[:2],
                )


# --------------------------------------------------------------------------------------------
# Helpers


def _records(out: Path) -> dict[str, list]:
    """Every record of every split (pure-Python framing; protos parsed by TF's Example)."""
    from fer_tf.records import decode_example

    got: dict[str, list] = {}
    for shard in sorted(out.glob("*.tfrecord")):
        data, pos, recs = shard.read_bytes(), 0, []
        while pos < len(data):
            (n,) = struct.unpack_from("<Q", data, pos)
            recs.append(decode_example(data[pos + 12 : pos + 12 + n]))
            pos += 12 + n + 4
        got.setdefault(shard.name.split("-")[0], []).extend(recs)
    return got


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.tfrecord"))}


@pytest.fixture(scope="module")
def folder_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("folder") / "faces"
    write_folder_dataset(root, per_class=3)
    return root


@pytest.fixture(scope="module")
def subjects_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("subjects")
    import cv2

    for k, image in enumerate(synth_images(12, seed=4, size=32)):
        f = root / f"S{k // 2:02d}" / f"{k % 2}.png"
        f.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(f), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return root


# --------------------------------------------------------------------------------------------
# The folder source end to end


def test_folder_cli_end_to_end(folder_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    args = ["--source", "folder", "--input", str(folder_root), "--output-dir", str(out)]
    assert main([*args, "--val-fraction", "0.3", "--workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "corrupt_image" in printed and "not_an_image" in printed
    recs = _records(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(len(v) for v in recs.values()) == 9
    assert {s: len(v) for s, v in recs.items()} == {
        s: manifest["splits"][s]["count"] for s in ("train", "val")
    }
    for rec in (r for v in recs.values() for r in v):
        cls = rec.source.split("/")[0]
        assert rec.emotion == FOLDER_CLASSES.index(cls)
        assert (rec.dataset, rec.fold, rec.subject, rec.frame) == ("folder", -1, "", -1)
        assert rec.au == [] and rec.au_intensity == [] and rec.emotion_dist == []
    assert manifest["schema_version"] == 2 and manifest["source"] == "folder"
    assert manifest["emotion_names"] == list(FOLDER_CLASSES) and manifest["au_ids"] == []
    assert manifest["label_mapping"] == {"0": "anger", "1": "happiness", "2": "neutral"}
    assert manifest["folds"] == 0 and manifest["protocol"]
    assert manifest["input"] == {"root": str(folder_root), "options": {}}
    assert manifest["split"]["by"] == "id"  # no subjects in a folder tree
    assert manifest["label_lengths"] == {"au": 0, "au_intensity": 0, "emotion_dist": 0}
    assert manifest["counts"] == {"rows": 11, "written": 9, "failed": 1, "skipped": 1}
    (err,) = _jsonl(out / "errors.jsonl")
    assert err["file"] == "anger/broken.jpg" and err["category"] == "corrupt_image"
    (skip,) = _jsonl(out / "skipped.jsonl")
    assert skip["file"] == "anger/notes.txt" and skip["reason"] == "not_an_image"


def test_folder_partitions_and_class_names(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_folder_dataset(root, per_class=1, partitions=("train", "validation", "test"))
    out = tmp_path / "out"
    summary = build_records(
        BuildOptions(
            None,
            out,
            source="folder",
            input=root,
            source_options={"class_names": "neutral,anger"},
            workers=0,
            progress=False,
        )
    )
    recs = _records(out)
    assert {s: len(v) for s, v in recs.items()} == {"train": 2, "val": 2, "test": 2}
    for split, part in (("train", "train"), ("val", "validation"), ("test", "test")):
        assert all(r.source.startswith(part + "/") for r in recs[split])
    assert {r.emotion for r in recs["train"]} == {0, 1}
    assert all(
        r.emotion == ("neutral", "anger").index(r.source.split("/")[1])
        for v in recs.values()
        for r in v
    )
    assert summary.skipped_by_reason["not_a_class"] == 3  # happiness, in each partition
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["emotion_names"] == ["neutral", "anger"]
    assert manifest["split"]["partition_used"] == 6


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("empty", "no class folders under"),
        ("files", "found: a.jpg, readme.txt"),
        ("missing", "which is"),
    ],
)
def test_folder_wrong_root(tmp_path: Path, capsys, layout: str, message: str) -> None:
    root = tmp_path / "root"
    if layout != "missing":
        root.mkdir()
    if layout == "files":
        (root / "readme.txt").write_text("x")
        (root / "a.jpg").write_bytes(b"x")
    out = tmp_path / "out"
    code = main(["--source", "folder", "--input", str(root), "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err
    assert not out.exists()  # nothing was done


def test_folder_class_names_not_there(folder_root: Path, tmp_path: Path, capsys) -> None:
    args = ["--source", "folder", "--input", str(folder_root), "--output-dir", str(tmp_path)]
    assert main([*args, "--class-names", "anger,joy"]) == 1
    assert "names ['joy'], which are not class folders" in capsys.readouterr().err


def test_rebuild_is_byte_identical_and_resume_reprocesses_nothing(
    folder_root: Path, tmp_path: Path
) -> None:
    opts = dict(source="folder", input=folder_root, image_size=32, workers=2, progress=False)
    first = build_records(BuildOptions(None, tmp_path / "a", **opts))
    again = build_records(BuildOptions(None, tmp_path / "a", **opts))
    assert first.processed == 10 and again.processed == 0 and again.cached == 10
    fresh = build_records(BuildOptions(None, tmp_path / "b", **opts))  # its own, empty cache
    assert fresh.processed == 10
    a, b = _shard_bytes(tmp_path / "a"), _shard_bytes(tmp_path / "b")
    assert a and a == b
    assert (tmp_path / "a" / "errors.jsonl").read_bytes() == (
        tmp_path / "b" / "errors.jsonl"
    ).read_bytes()
    recs = _records(tmp_path / "a")
    assert all(min(r.height, r.width) == 32 for v in recs.values() for r in v)


def test_pass_through_jpegs_are_kept_and_resumed(folder_root: Path, tmp_path: Path) -> None:
    opts = dict(source="folder", input=folder_root, workers=0, progress=False)
    first = build_records(folder_root, tmp_path / "a", source="folder", workers=0, progress=False)
    again = build_records(BuildOptions(None, tmp_path / "a", **opts))
    assert again.processed == 0 and first.written == again.written == 9
    recs = [r for v in _records(tmp_path / "a").values() for r in v]
    jpeg = next(r for r in recs if r.source.endswith(".jpg"))
    assert jpeg.image == (folder_root / jpeg.source).read_bytes()  # stored as it is


# --------------------------------------------------------------------------------------------
# Subjects, splits and folds


def test_kfold_is_balanced_and_stored(subjects_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--source", "test_subjects", "--input", str(subjects_root), "--output-dir", str(out)]
    assert main([*args, "--workers", "0", "--no-progress"]) == 0  # default_folds = 3
    recs = [r for v in _records(out).values() for r in v]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["folds"] == 3 and manifest["fold_protocol"]["protocol"] == "kfold"
    assert manifest["fold_protocol"]["subjects_per_fold"] == [2, 2, 2]
    assert manifest["splits"]["val"]["count"] == 0  # folds are the protocol: all in train
    assert manifest["splits"]["train"]["folds"] == [4, 4, 4]
    fold_of = {}
    for r in recs:
        assert fold_of.setdefault(r.subject, r.fold) == r.fold  # subject-independent
    assert sorted(Counter(fold_of.values()).values()) == [2, 2, 2]
    assert all(r.au == [1, 0, -1] and r.dataset == "test_subjects" for r in recs)
    # Intensities: every record gets a list (NaN where the item had none).
    assert manifest["label_lengths"] == {"au": 3, "au_intensity": 3, "emotion_dist": 0}
    firsts = [r for r in recs if r.source.endswith("/0.png")]
    assert all(r.au_intensity[0] == 2.5 and np.isnan(r.au_intensity[1]) for r in firsts)
    assert all(np.isnan(r.au_intensity).all() for r in recs if r.source.endswith("/1.png"))


def test_loso_and_seeded_subject_split(subjects_root: Path, tmp_path: Path) -> None:
    opts = dict(source="test_subjects", input=subjects_root, workers=0, progress=False)
    build_records(BuildOptions(None, tmp_path / "loso", folds="loso", **opts))
    recs = [r for v in _records(tmp_path / "loso").values() for r in v]
    assert len({r.fold for r in recs}) == 6
    assert all(Counter(r.fold for r in recs)[r.fold] == 2 for r in recs)
    build_records(BuildOptions(None, tmp_path / "split", folds=0, val_fraction=0.5, **opts))
    split = _records(tmp_path / "split")
    assert all(r.fold == -1 for v in split.values() for r in v)
    train = {r.subject for r in split["train"]}
    assert train and not train & {r.subject for r in split.get("val", [])}  # by subject


def test_folds_need_enough_subjects(subjects_root: Path, tmp_path: Path, capsys) -> None:
    args = ["--source", "test_subjects", "--input", str(subjects_root)]
    assert main([*args, "--output-dir", str(tmp_path), "--folds", "7", "--no-progress"]) == 1
    assert "folds=7 needs at least 7 subjects" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--output-dir", str(tmp_path), "--folds", "1"])
    assert "'--folds' parameter must be an integer >= 2, 'loso' or 0" in capsys.readouterr().err


def test_folds_from_python_are_checked() -> None:
    with pytest.raises(ValueError, match="The 'folds' parameter must be"):
        BuildOptions(None, "o", source="folder", input=".", folds="lopo")
    with pytest.raises(ValueError, match="'input' parameter must be the root folder"):
        BuildOptions(None, "o", source="folder")
    with pytest.raises(ValueError, match="must be one of .*'folder'"):
        BuildOptions(None, "o", source="foldr", input=".")


# --------------------------------------------------------------------------------------------
# Data and video items


def test_data_items_box_soft_labels_issues_and_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    np.save(root / "pixels.npy", np.stack(synth_images(3, seed=2, size=32)))
    out = tmp_path / "out"
    args = ["--source", "test_data", "--input", str(root), "--output-dir", str(out)]
    assert main([*args, "--box", "--face-margin", "0.25", "--workers", "0", "--no-progress"]) == 0
    recs = _records(out)
    assert {s: len(v) for s, v in recs.items()} == {"train": 2, "val": 0, "test": 1}
    by_source = {r.source: r for v in recs.values() for r in v}
    assert (by_source["pixels.npy#row=0"].width, by_source["pixels.npy#row=0"].height) == (24, 24)
    assert by_source["pixels.npy#row=2"].width == 32
    assert by_source["pixels.npy#row=1"].emotion_dist == [0.25, 0.75]
    assert np.isnan(by_source["pixels.npy#row=0"].emotion_dist).all()
    errors, skipped = _jsonl(out / "errors.jsonl"), _jsonl(out / "skipped.jsonl")
    assert [(e["row"], e["reason"]) for e in errors] == [(99, "bad_row")]
    assert sorted(s["reason"] for s in skipped) == ["duplicate", "unknown_class"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"rows": 6, "written": 3, "failed": 1, "skipped": 2}
    assert manifest["label_lengths"]["emotion_dist"] == 2
    assert manifest["input"]["options"] == {"box": True}


def test_video_items_one_pass_per_video_and_unreadable_frames(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    frames = synth_images(6, seed=3, size=32)
    write_avi(root / "s1_a.avi", frames)
    write_avi(root / "s2_b.avi", frames[::-1])
    (root / "s3_c.avi").write_bytes(b"not a video")
    opts = dict(source="test_video", input=root, workers=2, progress=False, folds=0)
    summary = build_records(BuildOptions(None, tmp_path / "out", **opts))
    recs = [r for v in _records(tmp_path / "out").values() for r in v]
    assert len(recs) == 6 and summary.frames_decoded == 6
    assert {(r.sequence, r.frame) for r in recs} == {
        (s, f) for s in ("s1_a", "s2_b") for f in (0, 2, 4)
    }
    assert all(r.image[:2] == b"\xff\xd8" for r in recs)  # PNG frames -> JPEG records
    errors = _jsonl(tmp_path / "out" / "errors.jsonl")
    assert len(errors) == 6 and {e["category"] for e in errors} == {"unreadable_frame"}
    assert sorted((e["file"], e["frame"]) for e in errors)[:2] == [
        ("s1_a.avi", 40),
        ("s2_b.avi", 40),
    ]
    assert all("cannot" in e["detail"] for e in errors if e["file"] == "s3_c.avi")
    again = build_records(BuildOptions(None, tmp_path / "out", **opts))
    assert again.frames_decoded == 0 and again.processed == 0
    first = _shard_bytes(tmp_path / "out")
    build_records(BuildOptions(None, tmp_path / "fresh", **opts))
    assert _shard_bytes(tmp_path / "fresh") == first


# --------------------------------------------------------------------------------------------
# The command line


def test_source_list(capsys) -> None:
    assert main(["--source", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names[0] == "spreadsheet" and "folder" in names and "test_video" in names
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # one line each, described


def test_flag_of_another_source_is_an_error(folder_root: Path, tmp_path: Path, capsys) -> None:
    args = ["--source", "folder", "--input", str(folder_root), "--output-dir", str(tmp_path)]
    assert main([*args, "--tag", "y"]) == 2
    assert "'--tag' flag is an option of source 'test_subjects', not of 'folder'" in (
        capsys.readouterr().err
    )
    assert main(["--input", str(folder_root), "--output-dir", str(tmp_path)]) == 2
    assert "'--spreadsheet' parameter is required" in capsys.readouterr().err
    assert main(["--source", "folder", "--output-dir", str(tmp_path)]) == 2
    assert "'--input' parameter is required for source 'folder'" in capsys.readouterr().err


def test_help_groups_source_flags_without_tensorflow() -> None:
    code = (
        "import sys\nfrom fer_tf.cli.build_records import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\nprint('TF', 'tensorflow' in sys.modules)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert "TF False" in r.stdout, r.stdout + r.stderr
    # A flag several sources take is listed once, in the first source's group, naming the others.
    csv_group = r.stdout.split("--source csv:")[1].split("\n\n")[0]
    assert "--class-names" in csv_group and "(also: folder)" in csv_group
    assert "--folds K|loso" in r.stdout and "--test-fraction" in r.stdout


@pytest.mark.parametrize("variant", ["baseline", "progressive", "exif", "grey"])
def test_jpeg_size_reads_the_frame_header(variant: str) -> None:
    import io

    from PIL import Image

    from fer_tf.build.shards import jpeg_size

    im = Image.fromarray(synth_images(1, seed=1, size=40)[0][:, :30])
    if variant == "grey":
        im = im.convert("L")
    buf = io.BytesIO()
    kwargs = {"progressive": True} if variant == "progressive" else {}
    if variant == "exif":
        exif = Image.Exif()
        exif[0x010E] = "x" * 300  # an APP1 segment before the frame header
        kwargs["exif"] = exif
    im.save(buf, "JPEG", **kwargs)
    assert jpeg_size(buf.getvalue()) == (30, 40)
    assert jpeg_size(b"\x89PNG....") is None and jpeg_size(b"\xff\xd8\xff") is None


def test_drop_unknown_and_selected_aus(subjects_root: Path, tmp_path: Path) -> None:
    opts = dict(source="test_subjects", input=subjects_root, workers=0, progress=False, folds=0)
    build_records(BuildOptions(None, tmp_path / "a", aus="1,2,4", **opts))
    recs = [r for v in _records(tmp_path / "a").values() for r in v]
    assert all(r.au == [1, 0, -1] for r in recs)  # AU4: not labelled by the source
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["au_ids"] == [1, 2, 4]
    with pytest.raises(Exception, match="no usable image"):
        build_records(BuildOptions(None, tmp_path / "b", aus="1,12", drop_unknown=True, **opts))
    summary = build_records(
        BuildOptions(None, tmp_path / "c", aus="1,2", drop_unknown=True, **opts)
    )
    assert summary.written == 12 and summary.skipped == 0


def test_local_build_never_imports_tensorflow(folder_root: Path, tmp_path: Path) -> None:
    args = ["--source", "folder", "--input", str(folder_root), "--output-dir", str(tmp_path)]
    code = (
        "import sys\nfrom fer_tf.cli.build_records import main\n"
        f"rc = main({[*args, '--workers', '2', '--no-progress']!r})\n"
        "print('RC', rc, 'TF', 'tensorflow' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert "RC 0 TF False" in r.stdout, r.stdout + r.stderr


def test_training_on_records_missing_task_classes_is_one_clear_error(tmp_path, capsys) -> None:
    from fer_tf.cli import train

    root = tmp_path / "faces"
    write_folder_dataset(root)  # anger, happiness, neutral: not the emotion task's 7 classes
    out = tmp_path / "records"
    argv = ["--source", "folder", "--input", str(root), "--output-dir", str(out)]
    assert main([*argv, "--workers", "0", "--no-progress"]) == 0
    capsys.readouterr()
    args = ["--config", "fer2013_cnn", "--records", str(out), "--model-dir", str(tmp_path / "run")]
    args += ["--set", "data.test_split=null"]
    assert train.main([*args, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "lack" in err and "'sadness'" in err and "Traceback" not in err
