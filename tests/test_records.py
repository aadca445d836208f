"""Record schema v1: encode/decode round-trip, parse in graph, manifest checks."""

import json
import math

import numpy as np
import pytest

from fer_tf import records as R


def _jpeg(h=12, w=10):
    import cv2

    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    return buf.tobytes()


def _record(**kw):
    base = dict(image=_jpeg(), height=12, width=10, source="  http://x.org/a,b.jpg ", au=[1, 0, -1])
    base.update(kw)
    return R.ExampleRecord(**base)


def test_id_is_sha1_of_trimmed_source():
    rec = _record()
    assert rec.source == "http://x.org/a,b.jpg"
    assert rec.id == R.image_id("http://x.org/a,b.jpg")
    assert len(rec.id) == 40


def test_bad_au_value_is_rejected():
    with pytest.raises(ValueError, match="AU labels must be 1, 0 or -1"):
        _record(au=[1, 999])


def test_encode_is_deterministic_and_round_trips():
    rec = _record(valence=0.25, emotion=3, posed=1, subject="s1", sequence="v1", frame=7)
    a, b = (
        R.encode_example(rec),
        R.encode_example(
            _record(valence=0.25, emotion=3, posed=1, subject="s1", sequence="v1", frame=7)
        ),
    )
    assert a == b
    back = R.decode_example(a)
    assert back.au == [1, 0, -1] and back.emotion == 3 and back.posed == 1
    assert back.valence == pytest.approx(0.25) and math.isnan(back.arousal)
    assert back.subject == "s1" and back.sequence == "v1" and back.frame == 7
    assert back.id == rec.id and back.image == rec.image


def test_parse_single_and_batched_and_in_dataset():
    import tensorflow as tf

    ser = R.encode_example(_record())
    one = R.parse_example(tf.constant(ser), num_aus=3)
    assert one["label/au"].numpy().tolist() == [1, 0, -1]
    assert math.isnan(float(one["label/valence"]))
    batch = R.parse_example(tf.constant([ser, ser]), num_aus=3)
    assert batch["label/au"].shape == (2, 3)
    ds = tf.data.Dataset.from_tensor_slices([ser, ser]).map(lambda s: R.parse_example(s, 3))
    for el in ds:
        assert el["image/height"].numpy() == 12
        assert el["image/format"].numpy() == b"jpeg"


def test_shards_and_manifest(tmp_path):
    assert R.shard_name("train", 3, 12) == "train-00003-of-00012.tfrecord"
    for name in [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
        "val-00000-of-00001.tfrecord",
        "train-00002-of-00002.tfrecord.tmp",
    ]:
        (tmp_path / name).write_bytes(b"")
    assert [p.split("/")[-1] for p in R.list_shards(tmp_path, "train")] == [
        "train-00000-of-00002.tfrecord",
        "train-00001-of-00002.tfrecord",
    ]
    R.write_manifest(tmp_path, {"au_ids": [1, 2], "_dir": "ignored"})
    m = R.read_manifest(tmp_path)
    assert m["schema_version"] == R.SCHEMA_VERSION and m["au_ids"] == [1, 2]
    assert m["_dir"] == str(tmp_path)
    assert not (tmp_path / "manifest.json.tmp").exists()


def test_manifest_errors(tmp_path):
    with pytest.raises(R.ManifestError, match="No records manifest"):
        R.read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(R.ManifestError, match="not valid JSON"):
        R.read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(R.ManifestError, match="schema_version 99"):
        R.read_manifest(tmp_path / "manifest.json")
