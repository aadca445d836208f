"""TensorFlow-free writing: our protobuf encoder and TFRecord framing equal TensorFlow's, byte for byte."""

import math
import subprocess
import sys

import numpy as np
import pytest

from fer_tf import records as R


def _jpeg(h=12, w=10, seed=0):
    import cv2

    img = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    return buf.tobytes()


RECORDS = {
    "plain": dict(au=[1, 0, -1]),
    "all_unknown": dict(au=[], valence=math.nan, arousal=math.nan, subject="", sequence=""),
    "labels": dict(
        au=[1, 0, -1] * 20,
        valence=-0.75,
        arousal=1e-30,
        emotion=5,
        posed=0,
        subject="sübject 7",
        sequence="vid,1",
        frame=123456,
    ),
    "negative_int64": dict(au=[-1] * 60, emotion=-1, posed=-1, frame=-(2**63)),
    "big_ints": dict(height=2**31 + 5, width=2**62, frame=2**63 - 1, au=[0]),
    "floats": dict(valence=float("inf"), arousal=-0.0),
    "empty_image": dict(image=b"", source="relative/path.png"),
    "large_image": dict(image=bytes(range(256)) * 1000),  # multi-byte length varints
    "v2_labels": dict(
        au=[1, 0, -1],
        au_intensity=[3.0, math.nan, 0.5],
        emotion_dist=[0.1, 0.0, 0.9],
        fold=4,
        dataset="ckplus",
    ),
    "v2_negative_fold": dict(au_intensity=[], emotion_dist=[0.25] * 8, fold=-1, dataset="fer2013"),
}


def _record(name):
    base = dict(image=_jpeg(), height=12, width=10, source="http://x.org/a,b.jpg?q=1&r=%20", au=[])
    base.update(RECORDS[name])
    return R.ExampleRecord(**base)


def _tf_example(rec, v1=False):
    import tensorflow as tf

    def b(v):
        v = v.encode("utf-8") if isinstance(v, str) else v
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

    def i(vs):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in vs]))

    def f(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))

    def fs(vs):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in vs]))

    feats = {
        "image/encoded": b(rec.image),
        "image/format": b("jpeg"),
        "image/height": i([rec.height]),
        "image/width": i([rec.width]),
        "image/id": b(rec.id),
        "image/source": b(rec.source),
        "label/au": i(rec.au),
        "label/valence": f(rec.valence),
        "label/arousal": f(rec.arousal),
        "label/emotion": i([rec.emotion]),
        "label/posed": i([rec.posed]),
        "meta/subject": b(rec.subject),
        "meta/sequence": b(rec.sequence),
        "meta/frame": i([rec.frame]),
    }
    if not v1:
        feats["label/au_intensity"] = fs(rec.au_intensity)
        feats["label/emotion_dist"] = fs(rec.emotion_dist)
        feats["meta/fold"] = i([rec.fold])
        feats["meta/dataset"] = b(rec.dataset)
    ex = tf.train.Example(features=tf.train.Features(feature=feats))
    return ex.SerializeToString(deterministic=True)


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_encode_equals_tensorflow_serialize_deterministic(name):
    rec = _record(name)
    assert R.encode_example(rec) == _tf_example(rec)


def test_varints_match_protobuf():
    from google.protobuf.internal import encoder

    for v in [0, 1, 127, 128, 300, 2**31, 2**63 - 1, -1, -2, -(2**63)]:
        out = []
        encoder._SignedVarintEncoder()(out.append, v, True)
        assert R._varint(v) == b"".join(out), v


def test_tfrecord_file_equals_tensorflow_and_parses(tmp_path):
    import tensorflow as tf

    sers = [R.encode_example(_record(n)) for n in sorted(RECORDS)] + [b""]
    ours, theirs = tmp_path / "ours.tfrecord", tmp_path / "tf.tfrecord"
    with R.TFRecordWriter(ours) as w:
        for s in sers:
            w.write(s)
    with tf.io.TFRecordWriter(str(theirs)) as w:
        for s in sers:
            w.write(s)
    assert ours.read_bytes() == theirs.read_bytes()

    read = [t.numpy() for t in tf.data.TFRecordDataset(str(ours))]
    assert read == sers
    plain = sorted(RECORDS).index("plain")
    ds = tf.data.TFRecordDataset(str(ours)).skip(plain).take(1).map(lambda s: R.parse_example(s, 3))
    el = next(iter(ds))
    assert el["label/au"].numpy().tolist() == [1, 0, -1]
    assert math.isnan(float(el["label/valence"]))
    assert el["image/encoded"].numpy() == _jpeg()
    neg = R.parse_example(tf.constant(R.encode_example(_record("negative_int64"))), 60)
    assert int(neg["meta/frame"]) == -(2**63)
    assert neg["label/au"].numpy().tolist() == [-1] * 60
    back = R.decode_example(R.encode_example(_record("labels")))
    assert back.subject == "sübject 7" and back.sequence == "vid,1" and back.frame == 123456
    assert back.valence == pytest.approx(-0.75) and back.au == [1, 0, -1] * 20


def test_writing_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys; from fer_tf import records as R\n"
        "rec = R.ExampleRecord(image=b'x', height=1, width=1, source='s', au=[1, -1])\n"
        f"w = R.TFRecordWriter({str(tmp_path / 'a.tfrecord')!r}); w.write(R.encode_example(rec))\n"
        "w.close(); assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_v1_records_still_parse_with_v2_defaults():
    import tensorflow as tf

    rec = _record("labels")
    v1 = _tf_example(rec, v1=True)  # what fer_tf wrote before schema v2
    back = R.decode_example(v1)
    assert back.au_intensity == [] and back.emotion_dist == []
    assert back.fold == -1 and back.dataset == "" and back.frame == 123456
    plain = R.parse_example(tf.constant(v1), 60)
    assert int(plain["meta/fold"]) == -1 and plain["meta/dataset"].numpy() == b""
    assert "label/au_intensity" not in plain
    full = R.parse_example(tf.constant([v1, v1]), 60, au_intensity=60, emotion_dist=8)
    assert full["label/au_intensity"].shape == (2, 60)
    assert np.isnan(full["label/emotion_dist"].numpy()).all()


def test_v2_records_parse_and_decode():
    import tensorflow as tf

    ser = R.encode_example(_record("v2_labels"))
    back = R.decode_example(ser)
    assert back.au_intensity[0] == 3.0 and math.isnan(back.au_intensity[1])
    assert back.emotion_dist == pytest.approx([0.1, 0.0, 0.9])
    assert (back.fold, back.dataset) == (4, "ckplus")
    el = R.parse_example(tf.constant(ser), 3, au_intensity=3, emotion_dist=3)
    assert el["label/au_intensity"].numpy()[0] == 3.0 and int(el["meta/fold"]) == 4
    assert el["meta/dataset"].numpy() == b"ckplus"
    assert R.parse_example(tf.constant(ser), 3)["label/au"].numpy().tolist() == [1, 0, -1]
    lengths = R.label_lengths({"au_ids": [1, 2, 4]})
    assert lengths == {"au": 3, "au_intensity": 0, "emotion_dist": 0}
