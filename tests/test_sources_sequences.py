"""Sequence sources (CK+, MUG, DISFA, BP4D, video table) and the frame selection, on miniatures.

The miniatures (:mod:`fer_tf.testing.miniatures_sequences`) are SynthFACS sequences written in
each dataset's distributed layout, with its quirks; no TensorFlow, no network.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fer_tf.preprocessing.video import read_frames
from fer_tf.sources.base import Issue, RootError, SourceError, get_source, list_sources
from fer_tf.sources.bp4d import BP4D_FOLDS
from fer_tf.sources.disfa import DISFA_FOLDS
from fer_tf.sources.frames import FrameSpec, parse_frames, select_frames
from fer_tf.testing import miniatures_sequences as mini

# --------------------------------------------------------------------------- frame selection


@pytest.mark.parametrize(
    ("spec", "n", "expected"),
    [
        ("all", 5, [0, 1, 2, 3, 4]),
        ("every:3", 10, [0, 3, 6, 9]),
        ("every:1", 3, [0, 1, 2]),
        ("last:3", 10, [7, 8, 9]),
        ("last:3", 2, [0, 1]),
        ("later-half", 10, [5, 6, 7, 8, 9]),
        ("later-half", 11, [5, 6, 7, 8, 9, 10]),
        ("middle-third", 9, [3, 4, 5]),
        ("middle-third", 10, [3, 4, 5, 6]),
        ("middle-third", 2, [0, 1]),
        ("middle-third", 1, [0]),
        ("last:3", 0, []),
    ],
)
def test_frame_specs_select(spec: str, n: int, expected: list[int]) -> None:
    parsed = parse_frames(spec)
    assert parsed.select(n) == expected
    assert str(parsed) == spec
    assert parse_frames(f" {spec} ") == parsed


def test_fps_sampling_includes_frame_zero_and_follows_the_rate() -> None:
    spec = parse_frames("fps:5", allow_fps=True)
    assert spec == FrameSpec("fps", 5.0)
    assert spec.select(30, fps=30.0) == [0, 6, 12, 18, 24]
    assert spec.select(3, fps=30.0) == [0]
    # 7 samples a second from 30 fps: the frame nearest each 1/7 s.
    assert parse_frames("fps:7", allow_fps=True).select(30, fps=30.0) == [0, 4, 9, 13, 17, 21, 26]
    # Faster than the video: every frame, once.
    assert parse_frames("fps:50", allow_fps=True).select(4, fps=25.0) == [0, 1, 2, 3]
    with pytest.raises(SourceError, match="frame rate"):
        spec.select(10, fps=0.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("last", "'last' is written 'last:K'"),
        ("every:0", "N must be an integer >= 1"),
        ("last:-2", "K must be an integer >= 1"),
        ("last:2.5", "K must be an integer >= 1"),
        ("later-half:2", "'later-half' is written 'later-half'"),
        ("lats:3", "Did you mean 'last'"),
        ("fps:5", "'fps:F' is for the 'video' source only"),
        ("", "Got '' instead"),
        (3, "Got 3 instead"),
    ],
)
def test_bad_frame_specs_are_clear_errors(spec: object, message: str) -> None:
    with pytest.raises(SourceError, match="The 'frames' parameter must be one of 'all', ") as err:
        parse_frames(spec)
    assert message in str(err.value)


@pytest.mark.parametrize("spec", ["fps:0", "fps:x", "fps:nan", "fps:-1"])
def test_bad_fps_specs(spec: str) -> None:
    with pytest.raises(SourceError, match="F must be a number > 0"):
        parse_frames(spec, allow_fps=True)


def test_neutral_first_adds_frame_zero_once() -> None:
    assert select_frames(parse_frames("last:2"), 5, neutral_first=True) == [
        (0, True),
        (3, False),
        (4, False),
    ]
    assert select_frames(parse_frames("every:2"), 5, neutral_first=True) == [
        (0, True),
        (2, False),
        (4, False),
    ]
    assert select_frames(parse_frames("last:2"), 5) == [(3, False), (4, False)]
    assert select_frames(parse_frames("all"), 0, neutral_first=True) == []


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sequence-miniatures")
    return {
        "ckplus": mini.write_ckplus(base / "ck"),
        "mug": mini.write_mug(base / "mug"),
        "disfa": mini.write_disfa(base / "disfa"),
        "bp4d": mini.write_bp4d(base / "bp4d"),
        "video": mini.write_video_table(base / "video"),
    }


def _run(name: str, root: Path, **options: object) -> tuple[list, list[Issue]]:
    source = get_source(name)(root, **options)
    source.check_root()
    issues: list[Issue] = []
    items = list(source.items(issues.append))
    again: list[Issue] = []
    assert [(i.source, i.frame) for i in source.items(again.append)] == [
        (i.source, i.frame) for i in items
    ]  # deterministic
    assert again == issues
    assert len({i.source for i in items}) == len(items)  # record ids are unique
    return items, issues


def _reasons(issues: list[Issue]) -> list[tuple[str, int, str, bool]]:
    return [(i.path, i.line, i.reason, i.failure) for i in issues]


def test_registered_with_protocols() -> None:
    names = list_sources()
    for name in ("ckplus", "mug", "disfa", "bp4d", "video"):
        assert name in names and names[name]
        cls = get_source(name)
        assert cls.sequences and cls.protocol and cls.default_frames
        assert [o.name for o in cls.source_options][0] == "frames"
    assert get_source("ckplus").default_folds == 10
    assert get_source("disfa").default_folds == 3 and get_source("bp4d").default_folds == 3
    assert get_source("disfa").subject_folds is DISFA_FOLDS
    assert len(DISFA_FOLDS) == 27 and sorted(DISFA_FOLDS.values()).count(0) == 9
    assert len(BP4D_FOLDS) == 41 and set(BP4D_FOLDS.values()) == {0, 1, 2}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ckplus", "no 'cohn-kanade-images/' under '{root}'; found: Emotion/, readme.txt."),
        ("mug", "no 'subjects3/' under '{root}'; found: Emotion/, readme.txt."),
        ("disfa", "no 'ActionUnit_Labels/' under '{root}'; found: Emotion/, readme.txt."),
        ("bp4d", "no 'AUCoding/AU_OCC/' under '{root}'; found: Emotion/, readme.txt."),
    ],
)
def test_wrong_root_says_what_was_expected_and_found(
    tmp_path: Path, name: str, expected: str
) -> None:
    (tmp_path / "Emotion").mkdir()
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(RootError) as err:
        get_source(name)(tmp_path).check_root()
    assert str(err.value) == f"Not a '{name}' dataset root: " + expected.format(root=tmp_path)
    with pytest.raises(RootError, match="must be the dataset's root folder"):
        get_source(name)(tmp_path / "nothing").check_root()


def test_bad_options_are_errors_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="The 'frames' parameter must be"):
        get_source("ckplus")(tmp_path, frames="apex")
    with pytest.raises(SourceError, match="'fps:F' is for the 'video' source only"):
        get_source("mug")(tmp_path, frames="fps:5")
    with pytest.raises(SourceError, match=r"one of \['skip', 'keep'\]"):
        get_source("ckplus")(tmp_path, unlabelled="drop")
    with pytest.raises(SourceError, match=r"one of \['left', 'right'\]"):
        get_source("disfa")(tmp_path, camera="top")
    with pytest.raises(SourceError, match="'presence_threshold' parameter must be a number > 0"):
        get_source("disfa")(tmp_path, presence_threshold=0.0)
    with pytest.raises(SourceError, match="takes the options"):
        get_source("mug")(tmp_path, camera="left")


# --------------------------------------------------------------------------- CK+


def test_ckplus_default_last_three_of_labelled_sequences(roots: dict[str, Path]) -> None:
    items, issues = _run("ckplus", roots["ckplus"])
    assert [(i.sequence, i.frame, i.emotion) for i in items] == [
        (seq, f, code)
        for seq, code in (("S005/001", 5), ("S005/002", 7), ("S010/002", 1))
        for f in (3, 4, 5)
    ]
    first = items[0]
    assert first.source == "cohn-kanade-images/S005/001/S005_001_00000003.png"
    assert first.path == roots["ckplus"] / first.source and first.path.is_file()
    assert (first.subject, first.posed, dict(first.au), dict(first.au_intensity)) == (
        "S005",
        1,
        {},
        {},
    )  # onset frame: AUs unknown
    apex = items[2]
    assert apex.au[6] == 1 and apex.au[12] == 1 and apex.au[1] == 0
    assert set(apex.au) == set(get_source("ckplus").au_ids)
    assert apex.au_intensity[6] == 3.0 and apex.au_intensity[12] == 4.0
    assert apex.au_intensity[1] == 0.0
    surprise = items[5]
    assert surprise.au[2] == 1 and math.isnan(surprise.au_intensity[2])  # intensity 0: not coded
    bad = items[8]  # S010/002: a bad FACS line, so unlisted AUs are unknown rather than absent
    assert bad.au[4] == 1 and bad.au[23] == 1 and bad.au[12] == -1
    assert math.isnan(bad.au_intensity[12])
    assert _reasons(issues) == [
        ("cohn-kanade-images/S010/001", 0, "no_emotion_label", False),
        ("FACS/S010/002/S010_002_00000005_facs.txt", 3, "bad_label_line", True),
        ("FACS/S010/002/S010_002_00000005_facs.txt", 4, "au_not_labelled", False),
    ]
    assert "'garbage'" in issues[1].detail


def test_ckplus_all_frames_neutral_first_and_unlabelled_kept(roots: dict[str, Path]) -> None:
    items, issues = _run(
        "ckplus", roots["ckplus"], frames="all", neutral_first=True, unlabelled="keep"
    )
    assert len(items) == 4 * 5
    firsts = [i for i in items if i.frame == 1]
    assert len(firsts) == 4
    for f in firsts:
        assert f.emotion == 0 and set(f.au.values()) == {0}
        assert set(f.au_intensity.values()) == {0.0}
    kept = [i for i in items if i.sequence == "S010/001"]
    assert [i.emotion for i in kept] == [0, -1, -1, -1, -1]
    assert kept[-1].au[4] == 1 and kept[-1].au[17] == 1 and kept[-1].au[1] == 0
    assert "no_emotion_label" not in {i.reason for i in issues}


def test_ckplus_later_half_and_missing_label_folders(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    items, _ = _run("ckplus", roots["ckplus"], frames="later-half")
    assert {i.frame for i in items} == {3, 4, 5}
    root = mini.write_ckplus(tmp_path / "ck", frames=3)
    import shutil

    shutil.rmtree(root / "FACS")
    items, issues = _run("ckplus", root, unlabelled="keep", frames="last:1")
    assert _reasons(issues)[0] == ("FACS", 0, "missing_labels_folder", False)
    assert len(items) == 4 and all(not i.au for i in items)
    assert [i.emotion for i in items] == [5, 7, -1, 1]


# --------------------------------------------------------------------------- MUG


def test_mug_middle_third_by_default_and_unknown_folder(roots: dict[str, Path]) -> None:
    items, issues = _run("mug", roots["mug"])
    assert [(i.sequence, i.frame, i.emotion) for i in items] == [
        (seq, f, e)
        for seq, e in (
            ("001/happiness/take000", 1),
            ("001/neutral/take000", 0),
            ("002/surprise/take000", 3),
            ("002/surprise/take001", 3),
        )
        for f in (4, 5, 6)
    ]
    assert items[0].source == "subjects3/001/happiness/take000/img_0004.jpg"
    assert items[0].subject == "001" and items[0].posed == 1 and not items[0].au
    assert _reasons(issues) == [("subjects3/002/contempt", 0, "unknown_emotion_folder", False)]
    assert get_source("mug").emotion_names[3] == "surprise"


def test_mug_later_half_and_neutral_first(roots: dict[str, Path]) -> None:
    items, _ = _run("mug", roots["mug"], frames="later-half", neutral_first=True)
    take = [(i.frame, i.emotion) for i in items if i.sequence == "002/surprise/take001"]
    assert take == [(1, 0), (5, 3), (6, 3), (7, 3), (8, 3), (9, 3)]


# --------------------------------------------------------------------------- DISFA


def test_disfa_items_labels_and_issues(roots: dict[str, Path]) -> None:
    items, issues = _run("disfa", roots["disfa"])
    assert [(i.subject, i.frame) for i in items] == [
        (s, f) for s in ("SN001", "SN002") for f in range(8)
    ]
    first = items[0]
    assert first.source == "Videos_LeftCamera/LeftVideoSN001_comp.avi#frame=0"
    assert first.video == roots["disfa"] / "Videos_LeftCamera/LeftVideoSN001_comp.avi"
    assert first.path is None and first.sequence == "SN001" and first.posed == 0
    for item in items:
        s = int(item.subject[2:])
        for au in mini.DISFA_MINI_AUS:
            if (s, au, item.frame) in ((1, 1, 2), (1, 26, 4)):  # the bad line, the missing line
                assert item.au[au] == -1 and math.isnan(item.au_intensity[au])
                continue
            level = mini._disfa_levels(s, au, item.frame + 1)  # label frames are 1-based
            assert item.au_intensity[au] == level
            assert item.au[au] == int(level >= 2)
    assert _reasons(issues) == [
        ("ActionUnit_Labels/SN001/SN001_au1.txt", 3, "bad_label_line", True),
        ("ActionUnit_Labels/SN001/SN001_au1.txt", 0, "missing_labels", True),
        ("ActionUnit_Labels/SN001/SN001_au26.txt", 0, "missing_labels", True),
        ("Videos_LeftCamera/LeftVideoSN002_comp.avi", 0, "past_video_end", True),
    ]
    assert "2 labelled frames (9..10)" in issues[3].detail
    # The item's frame is a real frame of the video (the build reads it by index).
    got = [i for i, _, _ in read_frames(items[-1].video, [items[-1].frame])]
    assert got == [7]


def test_disfa_threshold_right_camera_and_every(roots: dict[str, Path]) -> None:
    items, _ = _run("disfa", roots["disfa"], presence_threshold=4.0, frames="every:3")
    assert [(i.subject, i.frame) for i in items] == [
        (s, f) for s in ("SN001", "SN002") for f in (0, 3, 6)
    ]
    assert all(i.au[au] == int(i.au_intensity[au] >= 4) for i in items for au in (2, 12))
    items, issues = _run("disfa", roots["disfa"], camera="right")
    assert {i.subject for i in items} == {"SN001"}
    assert items[0].source == "Videos_RightCamera/RightVideoSN001_comp.avi#frame=0"
    assert ("Videos_RightCamera/RightVideoSN002_comp.avi", 0, "missing_video", True) in (
        _reasons(issues)
    )


def test_disfa_wrong_camera_root(tmp_path: Path) -> None:
    root = mini.write_disfa(tmp_path / "d", frames=2, right=False)
    with pytest.raises(RootError, match="no 'Videos_RightCamera/' under"):
        get_source("disfa")(root, camera="right").check_root()


# --------------------------------------------------------------------------- BP4D


def test_bp4d_padding_unknown_bad_rows_and_missing_images(roots: dict[str, Path]) -> None:
    items, issues = _run("bp4d", roots["bp4d"])
    assert [(i.sequence, i.frame) for i in items] == (
        [("F001/T1", f) for f in range(10, 15)]
        + [("F001/T2", f) for f in range(1, 5)]
        + [("M001/T1", f) for f in range(1, 5)]
    )
    assert items[0].source == "Sequences/F001/T1/10.jpg"  # unpadded
    assert items[5].source == "Sequences/F001/T2/0001.jpg"  # zero-padded
    assert all(i.path.is_file() and i.posed == 0 and i.emotion == -1 for i in items)
    assert items[0].subject == "F001" and set(items[0].au) == set(get_source("bp4d").au_ids)
    for item in items:
        subject, task = item.sequence.split("/")
        for au, v in item.au.items():
            if (item.sequence, item.frame, au) == ("M001/T1", 2, 7):
                assert v == -1  # coded 9
            else:
                assert v == mini._bp4d_value(subject, task, au, item.frame)
    assert _reasons(issues) == [
        ("AUCoding/AU_OCC/M001_T1.csv", 3, "bad_label_line", True),
        ("AUCoding/AU_OCC/M001_T1.csv", 7, "missing_image", True),
    ]


def test_bp4d_images_option_and_folder_guess(tmp_path: Path) -> None:
    root = mini.write_bp4d(tmp_path / "b", images="BP4D-training")
    items, _ = _run("bp4d", root, frames="last:1")
    assert [i.source for i in items] == [
        "BP4D-training/F001/T1/14.jpg",
        "BP4D-training/F001/T2/0004.jpg",
        "BP4D-training/M001/T1/4.jpg",
    ]
    elsewhere = mini.write_bp4d(tmp_path / "c", images="frames")
    items, _ = _run("bp4d", elsewhere, image_dir="frames", frames="last:1")
    assert items[0].source == "frames/F001/T1/14.jpg"
    assert _run("bp4d", elsewhere, image_dir=elsewhere / "frames")[0][0].path.is_file()
    with pytest.raises(RootError, match="The 'image_dir' option of source 'bp4d'"):
        get_source("bp4d")(root, image_dir=tmp_path / "none").check_root()


# --------------------------------------------------------------------------- video table


def test_video_table_ranges_labels_and_bad_rows(roots: dict[str, Path]) -> None:
    table = roots["video"]
    source = get_source("video")(table)
    source.check_root()
    assert source.au_ids == (1, 12)
    items, issues = _run("video", table)  # fps:5 of 10 fps videos: every other frame
    first = [(i.source, i.emotion, i.subject) for i in items[:5]]
    assert first == [(f"videos/clip1.mp4#frame={f}", 1, "s1") for f in (0, 2, 4, 6, 8)]
    assert items[0].video == table.parent / "videos/clip1.mp4"
    assert (items[0].valence, items[0].arousal) == (0.7, 0.4)
    assert dict(items[0].au) == {1: -1, 12: 1} and items[0].sequence == "videos/clip1.mp4"
    later = items[5]
    assert (later.frame, later.emotion, later.au[1], later.au_intensity[1]) == (10, 3, 1, 2.5)
    clip2 = [i for i in items if i.video.name == "clip2.avi"]
    assert [i.frame for i in clip2] == [0, 2, 4, 6, 8, 10]
    assert clip2[0].emotion == 0 and clip2[0].au == {1: 0, 12: 0}
    assert [i.frame for i in items[16:]] == [5, 7, 9, 11]  # row 7's own samples
    assert _reasons(issues) == [
        ("table.csv", 5, "bad_row", True),
        ("table.csv", 6, "bad_row", True),
    ]
    assert "No video file" in issues[0].detail and "'joy'" in issues[1].detail


def test_video_table_every_frame_reports_overlaps(roots: dict[str, Path]) -> None:
    items, issues = _run("video", roots["video"], frames="all")
    assert len(items) == 20 + 12
    repeats = [i for i in issues if i.reason == "duplicate"]
    assert len(repeats) == 8 and {i.line for i in repeats} == {7}
    assert not repeats[0].failure
    items, _ = _run("video", roots["video"], frames="last:2")
    assert [i.source for i in items][:2] == ["videos/clip1.mp4#frame=8", "videos/clip1.mp4#frame=9"]


def test_video_table_wrong_input(tmp_path: Path) -> None:
    with pytest.raises(RootError, match="must be a CSV table of videos and labels"):
        get_source("video")(tmp_path).check_root()
    table = tmp_path / "t.csv"
    table.write_text("file,emotion\na.mp4,1\n")
    with pytest.raises(RootError, match="must have a 'path' column; found: file, emotion"):
        get_source("video")(table).check_root()
    table.write_text("path,start_frame\nv.mp4,x\nnotes.txt,\n")
    mini.write_video(tmp_path / "v.mp4", mini.render_sequence({}, 3, seed=1, size=32))
    items, issues = _run("video", table)
    assert items == []
    assert [(i.line, i.reason) for i in issues] == [(2, "bad_row"), (3, "bad_row")]
    assert "'start_frame' must be an integer" in issues[0].detail
    assert "not a video file name" in issues[1].detail


def test_unreadable_label_files_are_reported_never_abort(tmp_path: Path) -> None:
    ck = mini.write_ckplus(tmp_path / "ck", frames=2)
    facs = ck / "FACS/S005/001/S005_001_00000002_facs.txt"
    facs.write_bytes(b"\xff\xfe\x00garbage")
    emotion = ck / "Emotion/S005/002/S005_002_00000002_emotion.txt"
    emotion.write_text("   9.0000000e+00\n")
    items, issues = _run("ckplus", ck, frames="last:1")
    assert [i.sequence for i in items] == ["S005/001", "S010/002"]
    assert not items[0].au  # FACS unreadable: AUs unknown
    assert _reasons(issues)[:2] == [
        ("FACS/S005/001/S005_001_00000002_facs.txt", 0, "bad_label_file", True),
        ("Emotion/S005/002/S005_002_00000002_emotion.txt", 1, "bad_label_line", True),
    ]
    assert "not an emotion code 0..7" in issues[1].detail

    bp = mini.write_bp4d(tmp_path / "bp")
    (bp / "AUCoding/AU_OCC/F001_T1.csv").write_text("")
    (bp / "AUCoding/AU_OCC/F001_T2.csv").write_text("frame,AU1,AU2\n1,0,1\n")
    (bp / "AUCoding/AU_OCC/notes.csv").write_text("0,1\n1,0\n")
    items, issues = _run("bp4d", bp)
    assert {i.sequence for i in items} == {"M001/T1"}
    assert _reasons(issues)[:2] == [
        ("AUCoding/AU_OCC/F001_T1.csv", 0, "bad_label_file", True),
        ("AUCoding/AU_OCC/F001_T2.csv", 1, "bad_label_file", True),
    ]
    assert _reasons(issues)[-1] == ("AUCoding/AU_OCC/notes.csv", 0, "bad_file_name", True)

    disfa = mini.write_disfa(tmp_path / "d", frames=3, right=False)
    (disfa / "ActionUnit_Labels/SN002/SN002_au9.txt").unlink()
    items, issues = _run("disfa", disfa)
    assert all(i.au[9] == -1 for i in items if i.subject == "SN002")
    assert ("ActionUnit_Labels/SN002/SN002_au9.txt", 0, "missing_label_file", True) in (
        _reasons(issues)
    )
