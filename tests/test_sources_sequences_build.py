"""``fer-tf-build-records --source ckplus|disfa`` end to end on the sequence miniatures.

Needs the build to consume :class:`~fer_tf.sources.base.SourceItem`s (``--source``, ``--input``,
``--frames``; video items read by the build; schema v2 with ``label/au_intensity`` and
``meta/fold``; the source's ``subject_folds`` used for its default folds).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fer_tf.cli.build_records import main
from fer_tf.records import list_shards, read_manifest
from fer_tf.sources.ckplus import CKPLUS_AUS, CKPLUS_EMOTIONS
from fer_tf.sources.disfa import DISFA_FOLDS
from fer_tf.testing import miniatures_sequences as mini

FLAGS = ["--workers", "0", "--no-progress"]


def _main(argv: list[str]) -> int:
    # The CLI returns its exit status, or exits through argparse for usage errors.
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _records(out: Path) -> dict[str, dict[str, Any]]:
    import tensorflow as tf

    manifest = read_manifest(out)
    found: dict[str, dict[str, Any]] = {}
    for split in manifest["splits"]:
        for shard in list_shards(out, split):
            for raw in tf.data.TFRecordDataset(shard).as_numpy_iterator():
                feat = tf.train.Example.FromString(raw).features.feature
                source = feat["image/source"].bytes_list.value[0].decode()
                found[source] = {
                    "split": split,
                    "image": feat["image/encoded"].bytes_list.value[0],
                    "au": list(feat["label/au"].int64_list.value),
                    "au_intensity": list(feat["label/au_intensity"].float_list.value),
                    "emotion": feat["label/emotion"].int64_list.value[0],
                    "subject": feat["meta/subject"].bytes_list.value[0].decode(),
                    "sequence": feat["meta/sequence"].bytes_list.value[0].decode(),
                    "frame": feat["meta/frame"].int64_list.value[0],
                    "fold": feat["meta/fold"].int64_list.value[0],
                    "dataset": feat["meta/dataset"].bytes_list.value[0].decode(),
                }
    return found


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_ckplus_last_three_frames(tmp_path: Path) -> None:
    root = mini.write_ckplus(tmp_path / "ck")
    out = tmp_path / "out"
    # Two subjects in the miniature: two folds (CK+'s default 10 needs ten subjects).
    args = ["--source", "ckplus", "--input", str(root), "--output-dir", str(out)]
    code = _main([*args, "--frames", "last:3", "--folds", "2", *FLAGS])
    assert code == 0
    manifest = read_manifest(out)
    assert manifest["schema_version"] == 2 and manifest["source"] == "ckplus"
    assert manifest["folds"] == 2
    assert tuple(manifest["emotion_names"]) == CKPLUS_EMOTIONS
    assert tuple(manifest["au_ids"]) == CKPLUS_AUS
    records = _records(out)
    assert sorted((r["sequence"], r["frame"]) for r in records.values()) == [
        (s, f) for s in ("S005/001", "S005/002", "S010/002") for f in (3, 4, 5)
    ]
    apex = records["cohn-kanade-images/S005/001/S005_001_00000005.png"]
    assert apex["emotion"] == 5 and apex["dataset"] == "ckplus" and apex["subject"] == "S005"
    i6, i12 = CKPLUS_AUS.index(6), CKPLUS_AUS.index(12)
    assert apex["au"][i6] == 1 and apex["au"][i12] == 1
    assert apex["au_intensity"][i6] == 3.0 and apex["au_intensity"][i12] == 4.0
    onset = records["cohn-kanade-images/S005/001/S005_001_00000003.png"]
    assert set(onset["au"]) == {-1} and all(math.isnan(v) for v in onset["au_intensity"])
    folds = {r["subject"]: r["fold"] for r in records.values()}
    assert all(r["fold"] == folds[r["subject"]] for r in records.values())
    assert sorted(folds.values()) == [0, 1]
    skipped = _jsonl(out / "skipped.jsonl")
    assert any(s["reason"] == "no_emotion_label" for s in skipped)
    errors = _jsonl(out / "errors.jsonl")
    assert any(e["reason"] == "bad_label_line" and e["row"] == 3 for e in errors)


def test_disfa_video_frames(tmp_path: Path) -> None:
    from fer_tf.preprocessing.decode import decode_image

    root = mini.write_disfa(tmp_path / "disfa")
    out = tmp_path / "out"
    args = ["--source", "disfa", "--input", str(root), "--output-dir", str(out)]
    assert _main([*args, "--folds", "2", *FLAGS]) == 0
    manifest = read_manifest(out)
    assert manifest["source"] == "disfa" and manifest["folds"] == 2
    assert tuple(manifest["au_ids"]) == mini.DISFA_MINI_AUS
    records = _records(out)
    assert sorted((r["subject"], r["frame"]) for r in records.values()) == [
        (s, f) for s in ("SN001", "SN002") for f in range(8)
    ]
    for source, r in records.items():
        assert source.endswith(f"#frame={r['frame']}") and r["sequence"] == r["subject"]
        assert r["dataset"] == "disfa"
        s = int(r["subject"][2:])
        j = mini.DISFA_MINI_AUS.index(12)
        assert r["au_intensity"][j] == mini._disfa_levels(s, 12, r["frame"] + 1)
        assert r["au"][j] == int(r["au_intensity"][j] >= 2)
        image = decode_image(r["image"])
        assert np.asarray(image).shape[:2] == (64, 64)
    assert {r["fold"] for r in records.values()} == {0, 1}
    errors = _jsonl(out / "errors.jsonl")
    assert {"bad_label_line", "past_video_end"} <= {e["reason"] for e in errors}


def test_disfa_standard_folds_by_default(tmp_path: Path) -> None:
    # Needs the build to use Source.subject_folds when it writes the source's default folds.
    root = mini.write_disfa(tmp_path / "disfa", frames=3)
    out = tmp_path / "out"
    assert _main(["--source", "disfa", "--input", str(root), "--output-dir", str(out), *FLAGS]) == 0
    assert read_manifest(out)["folds"] == 3
    records = _records(out)
    assert records and all(r["fold"] == DISFA_FOLDS[r["subject"]] for r in records.values())


@pytest.mark.parametrize("name", ["ckplus", "disfa"])
def test_wrong_root_cli_message(tmp_path: Path, name: str, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "readme.txt").write_text("x")
    code = _main(
        ["--source", name, "--input", str(tmp_path), "--output-dir", str(tmp_path / "out"), *FLAGS]
    )
    assert code != 0
    assert "found: readme.txt" in capsys.readouterr().err
