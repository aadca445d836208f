"""The still-image sources (fer2013, jaffe, sfew, affectnet, rafdb, csv) on miniatures in each
dataset's exact layout: items (labels, partitions, subjects, sources), Issues (paths, lines,
reasons) and wrong-root errors."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fer_tf.sources._common import parse_template
from fer_tf.sources.base import (
    Issue,
    RootError,
    Source,
    SourceError,
    SourceItem,
    get_source,
    list_sources,
)
from fer_tf.sources.fer2013 import FERPLUS_NAMES
from fer_tf.testing import miniatures_stills as mini

STILLS = ("fer2013", "jaffe", "sfew", "affectnet", "rafdb", "csv")


def run(source: Source) -> tuple[list[SourceItem], list[Issue]]:
    """check_root, then every item and Issue."""
    source.check_root()
    issues: list[Issue] = []
    items = list(source.items(issues.append))
    return items, issues


def same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(want, list):
        return list(got) == pytest.approx(want)
    if isinstance(want, dict):
        return dict(got) == want
    return got == want


def check(m: mini.Miniature, name: str, **options: Any) -> tuple[Source, list[SourceItem]]:
    """Run source ``name`` on a miniature and compare with what the miniature says."""
    source = get_source(name)(m.input, **{**m.options, **options})
    items, issues = run(source)
    assert [(i.path, i.line, i.reason, i.failure) for i in issues] == m.issues
    assert all(i.detail for i in issues)
    assert [it.source for it in items] == [e["source"] for e in m.items]
    for it, want in zip(items, m.items):
        for key, value in want.items():
            assert same(getattr(it, key), value), (it.source, key, getattr(it, key), value)
        if it.path is not None:
            assert it.path.is_file(), it.path
        assert 0 <= it.emotion < len(source.emotion_names) or it.emotion == -1
    # Deterministic: a second pass gives the same items.
    assert [it.source for it in source.items(lambda _: None)] == [it.source for it in items]
    return source, items


MINIATURES: dict[str, tuple[str, Callable[[Path], mini.Miniature]]] = {
    "fer2013+ferplus": ("fer2013", mini.write_fer2013),
    "jaffe": ("jaffe", mini.write_jaffe),
    "sfew": ("sfew", mini.write_sfew),
    "affectnet": ("affectnet", mini.write_affectnet),
    "rafdb": ("rafdb", mini.write_rafdb),
    "csv-table": ("csv", mini.write_table),
    "csv-nvie": ("csv", mini.write_nvie_like),
}


@pytest.mark.parametrize("case", list(MINIATURES))
def test_miniature_items_and_issues(tmp_path: Path, case: str) -> None:
    name, write = MINIATURES[case]
    check(write(tmp_path), name)


def test_registry_lists_every_still_source() -> None:
    listed = list_sources()
    for name in STILLS:
        cls = get_source(name)
        assert listed[name] == cls.description and cls.description
        assert cls.protocol
    # Each source's options get one CLI flag each: no two still sources share an option name.
    names = [o.name for n in STILLS for o in get_source(n).source_options]
    assert len(names) == len(set(names))


# --------------------------------------------------------------------------------------------
# fer2013


def test_fer2013_plain_labels_and_lossless_png(tmp_path: Path) -> None:
    import cv2

    m = mini.write_fer2013(tmp_path, ferplus=False)
    source, items = check(m, "fer2013")
    assert source.emotion_names[0] == "anger" and source.emotion_names[6] == "neutral"
    assert source.label_mapping["3"] == "happiness"
    assert {it.partition for it in items} == {"train", "val", "test"}
    assert all(it.emotion_dist == () for it in items)
    # The PNG holds exactly the 48x48 pixels of the csv row.
    row0 = (tmp_path / "fer2013.csv").read_text().splitlines()[1].split(",")[1]
    png = cv2.imdecode(np.frombuffer(items[0].data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.shape == (48, 48) and png.ravel().tolist() == [int(v) for v in row0.split()]


def test_fer2013_ferplus_names_and_input_as_file(tmp_path: Path) -> None:
    m = mini.write_fer2013(tmp_path)
    source, items = check(m, "fer2013")
    assert source.emotion_names == FERPLUS_NAMES
    assert get_source("fer2013").emotion_names[0] == "anger"  # the class keeps FER2013's names
    # --input may also be the csv file itself.
    m.input = tmp_path / "fer2013.csv"
    check(m, "fer2013")
    # A 3-3 tie goes to the earlier FER+ column (surprise before fear).
    assert items[2].emotion == FERPLUS_NAMES.index("surprise")


def test_fer2013_errors(tmp_path: Path) -> None:
    m = mini.write_fer2013(tmp_path)
    plus = tmp_path / "fer2013new.csv"
    plus.write_text("".join(plus.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(SourceError, match=r"has 6 data rows but .* has 7; the two files"):
        get_source("fer2013")(tmp_path, **m.options).check_root()
    with pytest.raises(SourceError, match="'ferplus' option .* which is nothing"):
        get_source("fer2013")(tmp_path, ferplus=tmp_path / "nope.csv").check_root()
    plus.write_text("Usage,Image name,neutral\n")
    with pytest.raises(SourceError, match="no 'happiness' column"):
        get_source("fer2013")(tmp_path, **m.options).check_root()
    csv = tmp_path / "fer2013.csv"
    lines = csv.read_text().splitlines()
    lines[1] = lines[1].replace(" ", " x", 1)
    lines[2] = "9," + lines[2].split(",", 1)[1]
    csv.write_text("\n".join(lines[:3]) + "\n")
    _, issues = run(get_source("fer2013")(tmp_path))
    assert [(i.line, i.reason) for i in issues] == [(2, "bad_pixels"), (3, "bad_label")]
    assert "is not a non-negative integer" in issues[0].detail


# --------------------------------------------------------------------------------------------
# jaffe, sfew


def test_jaffe_subjects_and_flat_root(tmp_path: Path) -> None:
    m = mini.write_jaffe(tmp_path)
    _, items = check(m, "jaffe")
    assert [it.subject for it in items] == ["KA", "KA", "KA", "KM", "KM", "NA", "NA"]
    assert all(it.partition is None and it.posed == 1 for it in items)
    assert get_source("jaffe").default_folds == 10  # 10 subjects: leave-one-subject-out
    # Pointing at jaffedbase/ itself gives sources relative to it.
    source = get_source("jaffe")(tmp_path / "jaffedbase")
    items2, issues = run(source)
    assert [it.source for it in items2] == [it.source.split("/", 1)[1] for it in items]
    assert [i.path for i in issues] == [".DS_Store", "README"]


def test_sfew_unlabelled_test_kept(tmp_path: Path) -> None:
    m = mini.write_sfew(tmp_path)
    source = get_source("sfew")(tmp_path, unlabelled="keep")
    items, issues = run(source)
    test = [it for it in items if it.partition == "test"]
    assert [it.source for it in test] == ["Test/Test_0000.png", "Test/Test_0001.png"]
    assert all(it.emotion == -1 for it in test)
    assert [i.reason for i in issues] == ["not_image"]
    assert len(items) == len(m.items) + 2
    with pytest.raises(SourceError, match=r"'unlabelled' option .* must be one of"):
        get_source("sfew")(tmp_path, unlabelled="drop")


def test_sfew_unknown_class_folder_is_a_failure(tmp_path: Path) -> None:
    mini.write_sfew(tmp_path, test=False)
    mini._write(tmp_path / "Val" / "Contempt" / "x.png", mini.face("neutral", 0).image)
    _, issues = run(get_source("sfew")(tmp_path))
    assert ("Val/Contempt/x.png", "unknown_class", True) in [
        (i.path, i.reason, i.failure) for i in issues
    ]


# --------------------------------------------------------------------------------------------
# affectnet, rafdb


def test_affectnet_keep_non_classes(tmp_path: Path) -> None:
    m = mini.write_affectnet(tmp_path)
    items, issues = run(get_source("affectnet")(tmp_path, non_classes="keep"))
    assert [i.reason for i in issues] == ["bad_label"]
    kept = [it for it in items if it.emotion == -1]
    assert len(kept) == 3 and len(items) == len(m.items) + 3
    assert kept[0].valence == pytest.approx(0.1) and math.isnan(kept[1].valence)


def test_affectnet_image_dir_option_and_nested_layout(tmp_path: Path) -> None:
    m = mini.write_affectnet(tmp_path)
    images = tmp_path / "Manually_Annotated_Images"
    nested = tmp_path / "Manually_Annotated" / "Manually_Annotated_Images"
    nested.parent.mkdir()
    images.rename(nested)
    check(m, "affectnet")  # the tarball's nested folder is found by default
    moved = tmp_path / "imgs"
    nested.rename(moved)
    with pytest.raises(RootError, match="no 'Manually_Annotated_Images/' .*see --image-dir"):
        get_source("affectnet")(tmp_path).check_root()
    _, items = check(m, "affectnet", image_dir=Path("imgs"))
    assert items[0].path == moved / m.items[0]["source"]
    check(m, "affectnet", image_dir=moved)  # absolute


def test_rafdb_original_images(tmp_path: Path) -> None:
    m = mini.write_rafdb(tmp_path)
    items, issues = run(get_source("rafdb")(tmp_path, images="original"))
    assert [it.source for it in items] == [
        "Image/original/train_00001.jpg",
        "Image/original/train_00002.jpg",
        "Image/original/test_0001.jpg",
        "Image/original/test_0002.jpg",
    ]
    assert [it.emotion for it in items] == [e["emotion"] for e in m.items]
    assert all(it.path.is_file() for it in items)
    assert [(i.line, i.reason) for i in issues] == [(3, "bad_label"), (6, "bad_label")]


# --------------------------------------------------------------------------------------------
# csv


def test_csv_xlsx_table_and_class_names(tmp_path: Path) -> None:
    import openpyxl

    mini._write(tmp_path / "img" / "a.png", mini.face("happiness", 0).image)
    mini._write(tmp_path / "img" / "b.png", mini.face("anger", 1).image)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "faces"
    ws.append(["File", "au01", "Emotion", "Sequence", "Frame", "Partition"])
    ws.append(["img/a.png", 1, "Happy", "v1", 3, "Training"])
    ws.append(["img/b.png", 0, 1, "v1", 4, "validation"])
    ws.append(["img/c.png", 0, "bored", "v2", 0, "test"])
    wb.save(tmp_path / "t.xlsx")
    source = get_source("csv")(tmp_path / "t.xlsx", class_names="happy, angry")
    items, issues = run(source)
    assert source.emotion_names == ("happy", "angry") and source.au_ids == (1,)
    assert [(it.source, it.emotion, it.sequence, it.frame, it.partition) for it in items] == [
        ("img/a.png", 0, "v1", 3, "train"),
        ("img/b.png", 1, "v1", 4, "val"),
    ]
    assert [(i.path, i.line, i.reason, i.failure) for i in issues] == [
        ("t.xlsx:faces", 4, "unknown_class", False)
    ]


def test_csv_collects_names_outside_the_facs_vocabulary(tmp_path: Path) -> None:
    (tmp_path / "t.tsv").write_text("path\temotion\nx.jpg\tHappy\ny.jpg\tangry\nz.jpg\t2\n")
    for n in "xyz":
        mini._write(tmp_path / f"{n}.jpg", mini.face("neutral", 0).image)
    source = get_source("csv")(tmp_path / "t.tsv")
    items, issues = run(source)
    assert source.emotion_names == ("angry", "happy")
    assert [it.emotion for it in items] == [1, 0]
    assert [(i.line, i.reason) for i in issues] == [(4, "bad_row")]


def test_csv_template_split_frame_and_class_names(tmp_path: Path) -> None:
    for rel in ("train/s1/happy/f0007.png", "test/s2/sad/f0001.png", "dev/s3/sad/f0002.png"):
        mini._write(tmp_path / rel, mini.face("neutral", 0).image)
    source = get_source("csv")(
        tmp_path, path_template="{split}/{subject}/{emotion}/f{frame}.png", class_names="sad,happy"
    )
    items, issues = run(source)
    assert [(it.source, it.emotion, it.subject, it.frame, it.partition) for it in items] == [
        ("test/s2/sad/f0001.png", 0, "s2", 1, "test"),
        ("train/s1/happy/f0007.png", 1, "s1", 7, "train"),
    ]
    assert [(i.path, i.reason, i.failure) for i in issues] == [
        ("dev/s3/sad/f0002.png", "bad_path_label", True)
    ]


@pytest.mark.parametrize(
    "template", ["", "/abs/{x}.jpg", "{a}/{a}.jpg", "{a}/../x.jpg", "{bad name}.jpg"]
)
def test_bad_templates(template: str) -> None:
    with pytest.raises(ValueError, match="'path_template' parameter"):
        parse_template(template)


def test_template_matches_whole_parts() -> None:
    t = parse_template("{subject}/{emotion}_{lighting}/*.jpg")
    assert t.match("S1/happy_front/0001.jpg") == {"subject": "S1", "emotion": "happy"}
    assert t.match("S1/happy_front/x/0001.jpg") is None
    assert t.match("S1/happy_front/0001.png") is None


# --------------------------------------------------------------------------------------------
# Wrong roots


WRONG_ROOTS = {
    "fer2013": ("no 'fer2013.csv' under", {}),
    "jaffe": ("no '\\*.tiff' files named like 'KA.AN1.39.tiff'", {}),
    "sfew": ("no 'Train/' or 'Val/' under", {}),
    "affectnet": ("no 'Manually_Annotated_file_lists/training.csv'", {}),
    "rafdb": ("no 'EmoLabel/list_patition_label.txt' under", {}),
    "csv": (
        "no file matching the path template '\\{subject\\}/\\*.jpg' under",
        {"path_template": "{subject}/*.jpg"},
    ),
}


@pytest.mark.parametrize("name", STILLS)
def test_wrong_root_says_what_it_expected_and_found(tmp_path: Path, name: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "readme.txt").write_text("x")
    expected, options = WRONG_ROOTS[name]
    with pytest.raises(RootError) as info:
        get_source(name)(tmp_path, **options).check_root()
    message = str(info.value)
    assert message.startswith(f"Not a '{name}' dataset root: ")
    assert f"under '{tmp_path}'; found: a/, readme.txt." in message
    assert re.search(expected, message), message


@pytest.mark.parametrize("name", STILLS)
def test_missing_root(tmp_path: Path, name: str) -> None:
    options = {"path_template": "{x}/*.jpg"} if name == "csv" else {}
    with pytest.raises(RootError, match="nothing"):
        get_source(name)(tmp_path / "nope", **options).check_root()


def test_rafdb_missing_image_variant(tmp_path: Path) -> None:
    mini.write_rafdb(tmp_path)
    for p in sorted((tmp_path / "Image" / "original").iterdir()):
        p.unlink()
    (tmp_path / "Image" / "original").rmdir()
    with pytest.raises(RootError, match="no 'Image/original/' under .*found: EmoLabel/, Image/"):
        get_source("rafdb")(tmp_path, images="original").check_root()


def test_csv_input_must_be_a_table_without_template(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    with pytest.raises(RootError, match=r"must be a table file .* a directory; found: img/"):
        get_source("csv")(tmp_path).check_root()
    (tmp_path / "t.csv").write_text("id,emotion\n1,happiness\n")
    with pytest.raises(SourceError, match="has no path column"):
        get_source("csv")(tmp_path / "t.csv").check_root()
    with pytest.raises(SourceError, match="'class_names' option must be distinct"):
        get_source("csv")(tmp_path / "t.csv", class_names="a,a")


def test_fer2013_checks_the_header_and_the_input_file(tmp_path: Path) -> None:
    (tmp_path / "fer2013.csv").write_text("label,pixels,Usage\n0,1 2,Training\n")
    with pytest.raises(SourceError, match=r"no 'emotion' column.*found \['label', 'pixels'"):
        get_source("fer2013")(tmp_path).check_root()
    (tmp_path / "fer2013.tar.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(RootError, match="folder holding fer2013.csv or that file"):
        get_source("fer2013")(tmp_path / "fer2013.tar.gz").check_root()


def test_affectnet_checks_list_columns(tmp_path: Path) -> None:
    mini.write_affectnet(tmp_path)
    (tmp_path / "Manually_Annotated_file_lists" / "validation.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match="validation.csv' has no 'subDirectory_filePath' column"):
        get_source("affectnet")(tmp_path).check_root()


def test_csv_table_broken_part_way_keeps_the_rows_before(tmp_path: Path) -> None:
    mini._write(tmp_path / "a.jpg", mini.face("neutral", 0).image)
    good = b"a.jpg,neutral\n" * 1000  # past the first 8 KB the reader decodes at once
    (tmp_path / "t.csv").write_bytes(b"path,emotion\n" + good + b"b.jpg,\xff\xfe\n" * 3000)
    items, issues = run(get_source("csv")(tmp_path / "t.csv"))
    assert 0 < len(items) <= 1000 and {it.source for it in items} == {"a.jpg"}
    assert [(i.path, i.reason) for i in issues] == [("t.csv", "bad_label_file")]
    assert "not UTF-8" in issues[0].detail


def test_still_sources_and_miniatures_do_not_import_tensorflow(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom pathlib import Path\n"
        "from fer_tf.sources.base import get_source, list_sources\n"
        "from fer_tf.testing.miniatures_stills import write_fer2013\n"
        "list_sources()\n"
        f"m = write_fer2013(Path({str(tmp_path)!r}))\n"
        "items = list(get_source('fer2013')(m.input, **m.options).items(lambda i: None))\n"
        "print('N', len(items), 'TF', 'tensorflow' in sys.modules)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert "N 4 TF False" in r.stdout, r.stdout + r.stderr
