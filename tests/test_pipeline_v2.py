"""The input pipeline on schema-v2 records: AU intensities, soft emotion labels, folds, grey
images; v1 records read exactly as before when the v2 keys are parsed."""

from __future__ import annotations

import math
import shutil

import cv2
import numpy as np
import pytest
import tensorflow as tf

from fer_tf import facs, records
from fer_tf.data import make_dataset, pipeline
from fer_tf.models import get_spec
from fer_tf.testing.records_v2 import V2Example, synth_v2_examples, write_v2_records

AUS = (1, 2, 4, 6, 12, 25)
OUT = 16


@pytest.fixture(scope="module")
def v2(tmp_path_factory):
    """24 faces in 3 subject folds: 16 train, 8 val; every other one has a vote distribution."""
    ex = synth_v2_examples(24, seed=3, folds=3, dist_every=2)
    d = tmp_path_factory.mktemp("v2")
    write_v2_records(d, {"train": ex[:16], "val": ex[16:]}, au_ids=AUS, folds=3)
    return d, ex


def _by_id(ds):
    out = {}
    for images, t in ds:
        for b in range(images.shape[0]):
            key = t["id"][b].numpy().decode()
            out[key] = (images[b].numpy(), {k: v[b].numpy() for k, v in t.items() if k != "id"})
    return out


def test_au_intensity_targets_and_masks(v2):
    d, ex = v2
    got = _by_id(
        make_dataset(
            d, task="au_intensity", split="val", batch_size=3, image_size=OUT, include_ids=True
        )
    )
    assert len(got) == 8
    for e in ex[16:]:
        _, t = got[e.record.id]
        want = np.asarray(e.au_intensity, np.float32)
        known = ~np.isnan(want)
        np.testing.assert_array_equal(t["au_intensity_mask"], known.astype(np.float32))
        np.testing.assert_allclose(t["au_intensity"], np.where(known, want, 0.0), rtol=1e-6)
    # An AU subset is chosen by id through the manifest's au_ids.
    ds = make_dataset(
        d, task="au_intensity", split="val", batch_size=8, image_size=OUT, aus=[12, 1]
    )
    _, t = next(iter(ds))
    first = np.asarray(ex[16].au_intensity)
    np.testing.assert_allclose(t["au_intensity"][0], np.nan_to_num(first[[4, 0]]), rtol=1e-6)


def test_soft_label_targets(v2):
    d, ex = v2
    got = _by_id(
        make_dataset(
            d, task="emotion", split="val", batch_size=4, image_size=OUT, include_ids=True,
            soft_labels=True,
        )
    )  # fmt: skip
    for e in ex[16:]:
        _, t = got[e.record.id]
        if e.emotion_dist:
            np.testing.assert_allclose(t["emotion_dist"], e.emotion_dist, rtol=1e-6)
        else:  # no distribution: the one-hot hard label
            np.testing.assert_array_equal(t["emotion_dist"], np.eye(7)[e.record.emotion])
        assert t["emotion"] == e.record.emotion
    # Six classes (no neutral): the distribution is renormalised over them.
    six = list(facs.BASIC_EMOTIONS)
    ds = make_dataset(
        d, task="emotion", split="val", batch_size=8, image_size=OUT, include_ids=True,
        soft_labels=True, emotion_classes=six, unknown="mask",
    )  # fmt: skip
    for key, (_, t) in _by_id(ds).items():
        e = next(e for e in ex if e.record.id == key)
        if e.emotion_dist:
            q = np.asarray(e.emotion_dist)[[facs.EMOTIONS.index(c) for c in six]]
            np.testing.assert_allclose(t["emotion_dist"], q / q.sum(), rtol=1e-5)
        elif e.record.emotion == 0:  # neutral is not a class here, no distribution: unknown
            assert t["emotion_dist"].sum() == 0 and t["emotion_mask"] == 0
    # Without soft_labels there is no emotion_dist target.
    _, t = next(iter(make_dataset(d, task="emotion", split="val", batch_size=2, image_size=OUT)))
    assert "emotion_dist" not in t


def test_folds_select_examples_over_splits(v2):
    d, ex = v2
    folds = [e.fold for e in ex]
    counts = pipeline.fold_counts(d, ["train", "val"])
    assert counts == {k: folds.count(k) for k in sorted(set(folds))}
    # Without the manifest's fold_counts, the records are scanned: the same counts.
    manifest = records.read_manifest(d)
    for entry in manifest["splits"].values():
        del entry["fold_counts"]
    scanned = d.parent / "scan"
    scanned.mkdir()
    for split in manifest["splits"]:
        for f in records.list_shards(d, split):
            shutil.copy(f, scanned)
    records.write_manifest(scanned, manifest)
    assert pipeline.fold_counts(scanned, ["train", "val"]) == counts
    for k in range(3):
        held = make_dataset(
            d, task="au", split=["train", "val"], folds=[k], batch_size=5, image_size=OUT,
            include_ids=True, training=False,
        )  # fmt: skip
        rest = make_dataset(
            d, task="au", split=["train", "val"], folds=[f for f in range(3) if f != k],
            batch_size=5, image_size=OUT, include_ids=True, training=False,
        )  # fmt: skip
        held_ids, rest_ids = set(_by_id(held)), set(_by_id(rest))
        assert held_ids == {e.record.id for e in ex if e.fold == k}
        assert rest_ids == {e.record.id for e in ex if e.fold != k}
    # Training batches of the selected folds: only those folds, repeated.
    train = make_dataset(
        d, task="au", split=["train", "val"], folds=[0], batch_size=2, image_size=OUT,
        include_ids=True, training=True, seed=1,
    )  # fmt: skip
    seen = {i.decode() for _, t in train.take(6) for i in t["id"].numpy()}
    assert seen <= {e.record.id for e in ex if e.fold == 0}
    with pytest.raises(ValueError, match="'folds' parameter"):
        make_dataset(d, task="au", folds=[-1])


def test_v1_records_give_the_same_batches_when_v2_keys_are_parsed(tmp_path):
    """Old records (no v2 keys) through the v2 parser: same images and labels, defaults for the
    v2 targets (unknown intensities, one-hot soft labels)."""
    ex = synth_v2_examples(12, seed=5, intensity=False)
    d = tmp_path / "v1"
    d.mkdir()
    with tf.io.TFRecordWriter(str(d / records.shard_name("train", 0, 1))) as w:
        for e in ex:
            w.write(records.encode_example(e.record))  # schema v1 only
    records.write_manifest(
        d, {"au_ids": list(AUS), "emotion_names": list(facs.EMOTIONS), "splits": {}}
    )
    kw = {"batch_size": 4, "image_size": OUT, "seed": 7, "augment": "light"}
    v1 = list(make_dataset(d, task="au", **kw).take(4))
    both = list(make_dataset(d, task=["au", "au_intensity"], **kw).take(4))
    for (xa, ta), (xb, tb) in zip(v1, both):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ta["au"].numpy(), tb["au"].numpy())
        assert tb["au_intensity_mask"].numpy().sum() == 0
    hard = list(make_dataset(d, task="emotion", **kw).take(3))
    soft = list(make_dataset(d, task="emotion", soft_labels=True, **kw).take(3))
    for (xa, ta), (xb, tb) in zip(hard, soft):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        np.testing.assert_array_equal(ta["emotion"].numpy(), tb["emotion"].numpy())
        np.testing.assert_array_equal(tb["emotion_dist"].numpy(), np.eye(7)[ta["emotion"]])
    assert pipeline.fold_counts(d, "train") == {-1: 12}


def test_a_record_that_disagrees_with_its_manifest_fails_clearly(tmp_path):
    rec = synth_v2_examples(1, seed=1)[0].record
    bad = V2Example(rec, au_intensity=[1.0, 2.0], emotion_dist=[])  # 2 values for 6 AUs
    write_v2_records(tmp_path, {"val": [bad]}, au_ids=AUS, num_shards=1)
    ds = make_dataset(tmp_path, task="au_intensity", split="val", batch_size=1, image_size=OUT)
    with pytest.raises(tf.errors.InvalidArgumentError, match="label/au_intensity must hold 0 or 6"):
        next(iter(ds))


def _rgb_image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (2, 8, 8, 3)).astype(np.float32)


def test_grayscale_conversion_eager_and_in_tf_data():
    images = _rgb_image()
    luma = images @ np.array([0.2989, 0.587, 0.114], np.float32)
    grey1 = pipeline.to_channels(tf.constant(images), grayscale=True, channels=1).numpy()
    grey3 = pipeline.to_channels(tf.constant(images), grayscale=True, channels=3).numpy()
    assert grey1.shape == (2, 8, 8, 1) and grey3.shape == (2, 8, 8, 3)
    np.testing.assert_allclose(grey1[..., 0], luma, atol=0.05)
    for c in range(3):
        np.testing.assert_array_equal(grey3[..., c], grey1[..., 0])
    same = pipeline.to_channels(tf.constant(images), grayscale=False, channels=3).numpy()
    np.testing.assert_array_equal(same, images)
    # The same ops inside tf.data.Dataset.map (graph mode) give the same values.
    ds = tf.data.Dataset.from_tensor_slices(images).map(
        lambda x: pipeline.to_channels(x, grayscale=True, channels=1)
    )
    np.testing.assert_array_equal(np.stack(list(ds.as_numpy_iterator())), grey1)


@pytest.mark.parametrize("augment", ["none", "light", "randaugment"])
def test_grayscale_batches(v2, augment):
    d, _ = v2
    kw = {"task": "au", "batch_size": 4, "image_size": OUT, "seed": 2, "augment": augment}
    one = next(iter(make_dataset(d, grayscale=True, **kw)))[0].numpy()
    three = next(iter(make_dataset(d, grayscale=True, channels=3, **kw)))[0].numpy()
    assert one.shape == (4, OUT, OUT, 1) and three.shape == (4, OUT, OUT, 3)
    np.testing.assert_allclose(three[..., 1], one[..., 0], atol=1e-6)
    # The channel count follows a model's catalog entry: fer2013_cnn takes 1, tiny_cnn 3.
    spec = make_dataset(d, grayscale=True, model=get_spec("fer2013_cnn"), **kw).element_spec
    assert spec[0].shape[-1] == 1
    spec = make_dataset(d, grayscale=True, model=get_spec("tiny_cnn"), **kw).element_spec
    assert spec[0].shape[-1] == 3
    with pytest.raises(ValueError, match="'channels' parameter"):
        make_dataset(d, channels=1, **kw)
    with pytest.raises(ValueError, match="'channels' parameter"):
        make_dataset(d, grayscale=True, channels=2, **kw)


def test_grey_records_decode_to_their_grey_values(tmp_path):
    """A grey record (R = G = B) with grayscale=True: one channel holding the stored values."""
    grey = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    ok, png = cv2.imencode(".png", grey)
    assert ok
    rec = records.ExampleRecord(image=png.tobytes(), height=16, width=16, source="g", au=[1])
    write_v2_records(tmp_path, {"val": [V2Example(rec)]}, au_ids=[1], num_shards=1)
    ds = make_dataset(
        tmp_path, task="au", split="val", batch_size=1, image_size=16, grayscale=True,
        preprocessing="unit", central_fraction=None,
    )  # fmt: skip
    image = next(iter(ds))[0].numpy()[0, ..., 0]
    np.testing.assert_allclose(image * 255.0, grey, atol=0.06)
    assert not math.isnan(float(image.sum()))
