"""``fer-tf-build-records --source NAME --input ROOT`` end to end on two still miniatures: FER2013
with FER+ (PNG bytes, soft labels, skipped NF/unknown rows, a failed pixel row) and an NVIE-style
tree read through the ``csv`` source's path template (labels from folder names).

Needs the build to consume sources (``--source``/``--input`` and one flag per source option).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from fer_tf.cli.build_records import main
from fer_tf.records import list_shards, read_manifest
from fer_tf.sources.fer2013 import FERPLUS_NAMES
from fer_tf.testing import miniatures_stills as mini

FLAGS = ["--workers", "1", "--no-progress", "--num-shards", "1"]


def records(out: Path, split: str) -> list[dict[str, Any]]:
    """Every record of a split as ``{key: python value}``."""
    import tensorflow as tf

    rows = []
    for shard in list_shards(out, split):
        for raw in tf.data.TFRecordDataset(shard).as_numpy_iterator():
            feat = tf.train.Example.FromString(raw).features.feature
            row: dict[str, Any] = {}
            for key, f in feat.items():
                kind = f.WhichOneof("kind")
                values = list(getattr(f, kind).value)
                row[key] = values
            rows.append(row)
    return rows


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_build_fer2013_with_ferplus(tmp_path: Path) -> None:
    m = mini.write_fer2013(tmp_path / "fer")
    out = tmp_path / "out"
    argv = ["--source", "fer2013", "--input", str(m.input), "--ferplus", str(m.options["ferplus"])]
    assert main([*argv, "--output-dir", str(out), *FLAGS]) == 0
    manifest = read_manifest(out)
    assert manifest["schema_version"] == 2 and manifest["source"] == "fer2013"
    assert manifest["emotion_names"] == list(FERPLUS_NAMES)
    assert manifest["protocol"] and manifest["label_mapping"]
    want = {"train": 1, "val": 1, "test": 2}
    assert {s: manifest["splits"][s]["count"] for s in want} == want
    assert manifest["skipped"]["ferplus_nf"] == 1 and manifest["skipped"]["ferplus_unknown"] == 1
    errors = jsonl(out / "errors.jsonl")
    assert [(e["file"], e["row"]) for e in errors] == [("fer2013.csv", 4)]
    skipped = jsonl(out / "skipped.jsonl")
    assert sorted((s["row"], s["reason"]) for s in skipped) == [
        (3, "ferplus_nf"),
        (5, "ferplus_unknown"),
    ]
    by_source = {}
    for split in want:
        for r in records(out, split):
            by_source[r["image/source"][0].decode()] = (split, r)
    assert sorted(by_source) == sorted(e["source"] for e in m.items)
    for e in m.items:
        split, r = by_source[e["source"]]
        assert split == e["partition"]
        assert r["label/emotion"] == [e["emotion"]]
        assert r["label/emotion_dist"] == pytest.approx(e["emotion_dist"])
        assert r["meta/dataset"] == [b"fer2013"]
        assert r["meta/fold"] == [-1]


def test_build_csv_path_template_nvie(tmp_path: Path) -> None:
    m = mini.write_nvie_like(tmp_path / "nvie")
    out = tmp_path / "out"
    argv = ["--source", "csv", "--input", str(m.input), "--path-template", mini.NVIE_TEMPLATE]
    argv += ["--split-by", "subject", "--val-fraction", "0.3"]
    assert main([*argv, "--output-dir", str(out), *FLAGS]) == 0
    manifest = read_manifest(out)
    assert manifest["source"] == "csv"
    assert manifest["emotion_names"] == ["disgust", "fear", "happiness"]
    assert manifest["counts"]["written"] == len(m.items)
    assert manifest["skipped"]["template_mismatch"] == 2
    got = {}
    for split in ("train", "val", "test"):
        for r in records(out, split):
            got[r["image/source"][0].decode()] = (split, r)
    assert sorted(got) == [e["source"] for e in m.items]
    subjects_by_split: dict[str, set[str]] = {}
    for e in m.items:
        split, r = got[e["source"]]
        assert r["label/emotion"] == [e["emotion"]]
        assert r["label/posed"] == [e["posed"]]
        assert r["meta/subject"] == [e["subject"].encode()]
        assert math.isnan(r["label/valence"][0])
        subjects_by_split.setdefault(split, set()).add(e["subject"])
    # Split by subject: no subject in two splits.
    seen = [s for subjects in subjects_by_split.values() for s in subjects]
    assert len(seen) == len(set(seen))
