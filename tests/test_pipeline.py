"""tf.data input pipeline (fer_tf.data.pipeline.make_dataset) on tiny hand-written records."""

from __future__ import annotations

import dataclasses
import json
import math

import cv2
import numpy as np
import pytest
import tensorflow as tf

from fer_tf import facs, records
from fer_tf.data import make_dataset, pipeline
from fer_tf.preprocessing import augment as aug

AU_IDS = [1, 2, 4, 12]
SIZE = (20, 24)  # stored image (height, width)
OUT = 16  # pipeline output size


def _image(i: int) -> np.ndarray:
    """A drawn image: colour depends on i, a bright bar on the left (so flips are visible)."""
    im = np.zeros((*SIZE, 3), np.uint8)
    im[:] = (20 * (i % 10), 100, 255 - 20 * (i % 10))
    im[:, :5] = 250
    return im


def _labels(i: int) -> dict:
    au = [(i + k) % 3 - 1 for k in range(len(AU_IDS))]  # -1, 0, 1 pattern
    return {
        "au": au,
        "valence": math.nan if i % 4 == 0 else 0.1 * i,
        "arousal": math.nan if i % 3 == 0 else -0.1 * i,
        "emotion": -1 if i % 5 == 0 else i % len(facs.EMOTIONS),
        "posed": -1 if i % 7 == 0 else i % 2,
    }


def _write(directory, split: str, indices: list[int], num_shards: int) -> list[str]:
    names = [records.shard_name(split, j, num_shards) for j in range(num_shards)]
    writers = [tf.io.TFRecordWriter(str(directory / n)) for n in names]
    for n, i in enumerate(indices):
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(_image(i), cv2.COLOR_RGB2BGR))
        assert ok
        rec = records.ExampleRecord(
            image=jpg.tobytes(), height=SIZE[0], width=SIZE[1], source=f"img{i}", **_labels(i)
        )
        writers[n % num_shards].write(records.encode_example(rec))
    for w in writers:
        w.close()
    return names


@pytest.fixture(scope="module")
def recs(tmp_path_factory):
    d = tmp_path_factory.mktemp("records")
    train = list(range(24))
    val = list(range(100, 110))
    splits = {
        "train": {"shards": _write(d, "train", train, 3), "count": len(train)},
        "val": {"shards": _write(d, "val", val, 1), "count": len(val)},
    }
    records.write_manifest(
        d, {"au_ids": AU_IDS, "emotion_names": list(facs.EMOTIONS), "splits": splits}
    )
    return d


def _by_id(ds) -> dict:
    """Flatten a dataset of batches with ids into {source index: (image, targets)}."""
    out = {}
    for images, t in ds:
        for b in range(images.shape[0]):
            out[t["id"][b].numpy().decode()] = (
                images[b].numpy(),
                {k: v[b].numpy() for k, v in t.items() if k != "id"},
            )
    return out


def _id(i: int) -> str:
    return records.image_id(f"img{i}")


def test_eval_structure_shapes_and_au_masks(recs):
    ds = make_dataset(recs, task="au", split="val", batch_size=4, image_size=OUT, include_ids=True)
    images, targets = next(iter(ds))
    assert images.dtype == tf.float32 and images.shape == (4, OUT, OUT, 3)
    assert set(targets) == {"au", "au_mask", "id"}
    assert targets["au"].dtype == tf.float32 and targets["au"].shape == (4, 4)
    assert float(tf.reduce_min(images)) >= -1.0 and float(tf.reduce_max(images)) <= 1.0
    got = _by_id(ds)
    assert len(got) == 10  # every example once, last partial batch kept
    for i in range(100, 110):
        _, t = got[_id(i)]
        au = np.array(_labels(i)["au"])
        np.testing.assert_array_equal(t["au_mask"], (au >= 0).astype(np.float32))
        np.testing.assert_array_equal(t["au"], (au == 1).astype(np.float32))
    # Evaluation is deterministic and in order.
    again = [t["id"].numpy().tolist() for _, t in ds]
    assert again == [t["id"].numpy().tolist() for _, t in ds]


def test_au_subset_chosen_by_id(recs):
    ds = make_dataset(
        recs, task="au", split="val", batch_size=10, image_size=OUT, aus="AU12,1", include_ids=True
    )
    got = _by_id(ds)
    for i in range(100, 110):
        au = np.array(_labels(i)["au"])[[3, 0]]  # AU12 is column 3, AU1 column 0
        _, t = got[_id(i)]
        np.testing.assert_array_equal(t["au"], (au == 1).astype(np.float32))
        np.testing.assert_array_equal(t["au_mask"], (au >= 0).astype(np.float32))


def test_va_masks_nan(recs):
    ds = make_dataset(recs, task="va", split="val", batch_size=5, image_size=OUT, include_ids=True)
    got = _by_id(ds)
    assert len(got) == 10
    for i in range(100, 110):
        lab = _labels(i)
        _, t = got[_id(i)]
        v = np.array([lab["valence"], lab["arousal"]], np.float32)
        np.testing.assert_array_equal(t["va_mask"], (~np.isnan(v)).astype(np.float32))
        np.testing.assert_allclose(t["va"], np.nan_to_num(v, nan=0.0), rtol=1e-6)


def test_emotion_drop_and_mask(recs):
    dropped = _by_id(
        make_dataset(
            recs, task="emotion", split="val", batch_size=3, image_size=OUT, include_ids=True
        )
    )
    known = [i for i in range(100, 110) if _labels(i)["emotion"] >= 0]
    assert sorted(dropped) == sorted(_id(i) for i in known)
    for i in known:
        t = dropped[_id(i)][1]
        assert t["emotion"] == _labels(i)["emotion"] and t["emotion_mask"] == 1.0
    masked = _by_id(
        make_dataset(
            recs,
            task="emotion",
            split="val",
            batch_size=3,
            image_size=OUT,
            include_ids=True,
            unknown="mask",
        )
    )
    assert len(masked) == 10
    for i in range(100, 110):
        t = masked[_id(i)][1]
        e = _labels(i)["emotion"]
        assert t["emotion_mask"] == float(e >= 0) and t["emotion"] == max(e, 0)


def test_emotion_classes_remap(recs):
    classes = ["happiness", "sadness", "anger"]
    got = _by_id(
        make_dataset(
            recs,
            task="emotion",
            split="val",
            batch_size=10,
            image_size=OUT,
            include_ids=True,
            emotion_classes=classes,
        )
    )
    for i in range(100, 110):
        e = _labels(i)["emotion"]
        name = facs.EMOTIONS[e] if e >= 0 else None
        if name in classes:
            assert got[_id(i)][1]["emotion"] == classes.index(name)
        else:
            assert _id(i) not in got


@pytest.mark.parametrize("num_classes", [2, 12])
def test_posed_classes(recs, num_classes):
    got = _by_id(
        make_dataset(
            recs,
            task="posed",
            split="val",
            batch_size=10,
            image_size=OUT,
            include_ids=True,
            posed_classes=num_classes,
            unknown="mask",
        )
    )
    for i in range(100, 110):
        lab = _labels(i)
        t = got[_id(i)][1]
        if num_classes == 2:
            want = lab["posed"]
        else:
            name = facs.EMOTIONS[lab["emotion"]] if lab["emotion"] >= 0 else None
            want = (
                facs.posed_class_index(lab["posed"], name)
                if lab["posed"] >= 0 and name in facs.POSED_EMOTIONS
                else -1
            )
        assert t["posed_mask"] == float(want >= 0)
        assert t["posed"] == max(want, 0)


def test_multi_task_targets(recs):
    ds = make_dataset(recs, task=["au", "va", "posed"], split="val", batch_size=10, image_size=OUT)
    _, t = next(iter(ds))
    assert set(t) == set(pipeline.target_names(["au", "va", "posed"]))
    assert t["posed"].dtype == tf.int32 and t["posed_mask"].dtype == tf.float32
    assert t["au"].shape[0] == 10  # multi-task masks instead of dropping


def test_training_static_shapes_and_determinism(recs):
    def first(seed, n=2):
        ds = make_dataset(
            recs, task="au", batch_size=4, image_size=OUT, augment="christensen2018", seed=seed
        )
        assert ds.element_spec[0].shape == (4, OUT, OUT, 3)
        assert ds.element_spec[1]["au"].shape == (4, 4)
        return [(x.numpy(), t["au"].numpy()) for x, t in ds.take(n)]

    a, b, c = first(1, n=7), first(1), first(2)  # 7 x 4 > 24 examples: it repeats
    assert len(a) == 7
    for (xa, ta), (xb, tb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ta, tb)
    assert any(not np.array_equal(xa, xc) for (xa, _), (xc, _) in zip(a, c))


def test_training_flip_and_crop_defaults(recs):
    ds = make_dataset(
        recs,
        task="au",
        batch_size=24,
        image_size=OUT,
        seed=0,
        preprocessing="unit",
        crop_area_range=(0.95, 1.0),
    )
    images, _ = next(iter(ds))
    left = images[:, :, :2].numpy().mean(axis=(1, 2, 3))
    right = images[:, :, -2:].numpy().mean(axis=(1, 2, 3))
    flipped = right > left
    assert 0 < flipped.sum() < 24  # some images flipped, some not


def test_eval_central_crop_matches_manual(recs):
    ds = make_dataset(
        recs, task="au", split="val", batch_size=1, image_size=OUT, preprocessing="unit"
    )
    images, _ = next(iter(ds))
    enc = next(iter(tf.data.TFRecordDataset(str(recs / "val-00000-of-00001.tfrecord"))))
    raw = tf.io.decode_jpeg(records.parse_example(enc, 4)["image/encoded"], channels=3)
    h, w = round(SIZE[0] * 0.875), round(SIZE[1] * 0.875)
    y0, x0 = (SIZE[0] - h) // 2, (SIZE[1] - w) // 2
    want = tf.image.resize(tf.cast(raw[y0 : y0 + h, x0 : x0 + w], tf.float32), [OUT, OUT]) / 255.0
    np.testing.assert_allclose(images[0].numpy(), want.numpy(), atol=2e-2)


def test_normalisation_families(recs):
    from fer_tf.preprocessing.normalization import normalize

    def first(family):
        ds = make_dataset(recs, split="val", batch_size=2, image_size=OUT, preprocessing=family)
        return next(iter(ds))[0]

    unit = first("unit")
    assert float(tf.reduce_min(unit)) >= 0.0 and float(tf.reduce_max(unit)) <= 1.0
    for family in ("vgg", "facenet"):  # all five: tests/test_preprocessing.py
        np.testing.assert_allclose(
            first(family).numpy(), normalize(unit * 255.0, family).numpy(), atol=1e-4
        )


def test_model_defaults(recs):
    from fer_tf.models import get_spec

    ds = make_dataset(recs, split="val", batch_size=2, model=get_spec("vgg16"))
    assert ds.element_spec[0].shape[1:] == (224, 224, 3)
    first = next(iter(ds))[0].numpy()
    by_hand = make_dataset(recs, split="val", batch_size=2, image_size=224, preprocessing="vgg")
    np.testing.assert_array_equal(first, next(iter(by_hand))[0].numpy())
    # A name would need the model registry, which the pipeline never imports: say what to pass.
    with pytest.raises(ValueError, match=r"'model' parameter.*get_spec\('inception_v4'\)"):
        make_dataset(recs, split="val", model="vgg16")


def test_options_object_and_keywords_give_the_same_batches(recs):
    opts = pipeline.PipelineOptions(
        task=["au", "emotion"], batch_size=4, image_size=OUT, augment="christensen2018", seed=3
    )
    a = next(iter(make_dataset(recs, opts)))
    b = next(iter(make_dataset(recs, **dataclasses.asdict(opts))))
    c = next(iter(make_dataset(recs, opts, seed=4)))  # keywords override the options
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())
    for key in a[1]:
        np.testing.assert_array_equal(a[1][key].numpy(), b[1][key].numpy())


def test_unknown_keyword_names_the_options(recs):
    with pytest.raises(TypeError, match=r"unknown keyword 'batchsize'.*Did you mean 'batch_size'"):
        make_dataset(recs, batchsize=4)
    with pytest.raises(ValueError, match="'options' parameter"):
        make_dataset(recs, {"batch_size": 4})


def test_input_context_splits_files_without_overlap(recs):
    def ids(pipeline_id, split="train"):
        ctx = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        ds = make_dataset(
            recs,
            split=split,
            training=False,
            batch_size=4,
            image_size=OUT,
            input_context=ctx,
            include_ids=True,
        )
        assert ds.element_spec[0].shape[0] in (None, 2)  # per-replica batch 4 / 2
        return [i.decode() for _, t in ds for i in t["id"].numpy()]

    for split, n in (("train", 24), ("val", 10)):  # 3 shards: by file; 1 shard: by example
        a, b = ids(0, split), ids(1, split)
        assert not set(a) & set(b)
        assert len(set(a) | set(b)) == n == len(a) + len(b)
        assert a and b

    # Training, unseeded (each pipeline draws its own seed), example-level sharding: one epoch
    # of each pipeline still covers its own half.
    def epoch(pipeline_id):
        ctx = tf.distribute.InputContext(2, pipeline_id, 2)
        ds = make_dataset(
            recs,
            split="val",
            training=True,
            batch_size=2,
            image_size=8,
            input_context=ctx,
            include_ids=True,
        )
        # Three epochs, not one: unseeded training maps in parallel without keeping order, so
        # under load an element of the next epoch can overtake one of this epoch.
        return [t["id"][0].numpy().decode() for _, t in ds.take(15)]

    a, b = epoch(0), epoch(1)
    assert len(set(a)) == len(set(b)) == 5 and not set(a) & set(b)


def test_distribute_datasets_from_function(recs):
    strategy = tf.distribute.get_strategy()

    def fn(ctx):
        return make_dataset(
            recs, batch_size=4, image_size=OUT, input_context=ctx, seed=0, augment="light"
        )

    dist = strategy.distribute_datasets_from_function(fn)
    images, targets = next(iter(dist))
    assert images.shape == (4, OUT, OUT, 3) and targets["au_mask"].shape == (4, 4)


def test_cache_glob_and_file_list_sources(recs):
    by_glob = make_dataset(str(recs / "val-*.tfrecord"), split="val", batch_size=10, image_size=8)
    by_list = make_dataset(
        [str(recs / "val-00000-of-00001.tfrecord")], split="val", batch_size=10, image_size=8
    )
    by_manifest = make_dataset(
        recs / "manifest.json", split="val", batch_size=10, image_size=8, cache=True
    )
    xs = [next(iter(d))[0].numpy() for d in (by_glob, by_list, by_manifest)]
    np.testing.assert_array_equal(xs[0], xs[1])
    np.testing.assert_array_equal(xs[0], xs[2])
    assert pipeline.num_examples(recs, "val") == 10


def test_equalize_option_runs(recs):
    ds = make_dataset(recs, split="val", batch_size=2, image_size=OUT, equalize=True)
    assert next(iter(ds))[0].shape == (2, OUT, OUT, 3)


def test_randaugment_is_reproducible(recs):
    def run():
        ds = make_dataset(recs, batch_size=2, image_size=8, augment="randaugment", seed=5)
        return [x.numpy() for x, _ in ds.take(2)]

    a, b = run(), run()
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=1e-5)


def test_custom_policy_and_callable(recs):
    policy = aug.AugmentPolicy(contrast_p=1.0, contrast=(0.5, 0.5))
    ds = make_dataset(recs, batch_size=4, image_size=OUT, augment=policy, seed=1)
    assert next(iter(ds))[0].shape == (4, OUT, OUT, 3)
    ds = make_dataset(recs, batch_size=4, image_size=OUT, augment=lambda x, s: x * 0.0, seed=1)
    np.testing.assert_allclose(next(iter(ds))[0].numpy(), -1.0)  # inception: 0 -> -1


# ---------------------------------------------------------------------------------- errors


def test_error_no_file_matches(tmp_path):
    with pytest.raises(ValueError, match="No file matches"):
        make_dataset(str(tmp_path / "nothing-*.tfrecord"))
    with pytest.raises(ValueError, match="do not exist"):
        make_dataset([str(tmp_path / "missing.tfrecord")])


def test_error_manifest_missing_or_other_version(tmp_path, recs):
    with pytest.raises(records.ManifestError, match="No records manifest"):
        make_dataset(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(records.ManifestError, match="schema_version 99"):
        make_dataset(tmp_path)


def test_error_au_not_in_manifest(recs):
    with pytest.raises(ValueError, match=r"AU6.*|au_ids \[1, 2, 4, 12\]") as exc:
        make_dataset(recs, aus="1,6")
    assert "AU6" in str(exc.value) and "[1, 2, 4, 12]" in str(exc.value)


def test_error_unknown_split(recs):
    with pytest.raises(ValueError, match=r"available: \['train', 'val'\]"):
        make_dataset(recs, split="test")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"task": "age"}, "'task' parameter.*'au', 'va', 'posed', 'emotion'.*'age'"),
        ({"augment": "imgaug"}, "'augment' parameter.*christensen2018.*'imgaug'"),
        ({"preprocessing": "caffe"}, "'preprocessing' parameter.*inception.*'caffe'"),
        ({"batch_size": 0}, "'batch_size'"),
        ({"unknown": "zero"}, "'unknown' parameter"),
        ({"posed_classes": 3, "task": "posed"}, "'posed_classes'"),
        ({"emotion_classes": ["joy"], "task": "emotion"}, "'emotion_classes'"),
        ({"crop": "random", "split": "val"}, "'crop' parameter"),
        ({"crop_area_range": (0.0, 1.0)}, "'crop_area_range'"),
        ({"image_size": (0, 3)}, "'image_size'"),
        ({"central_fraction": 1.5}, "'central_fraction'"),
    ],
)
def test_bad_arguments_give_clear_errors(recs, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_dataset(recs, **kwargs)


def test_synthfacs_records_end_to_end(tmp_path):
    from fer_tf import synthfacs

    synthfacs.write_records(tmp_path, 12, seed=0, size=40, val_fraction=0.25, num_shards=2)
    train = make_dataset(
        tmp_path,
        task=["au", "emotion"],
        batch_size=4,
        image_size=32,
        augment="christensen2018",
        seed=0,
    )
    images, targets = next(iter(train))
    assert images.shape == (4, 32, 32, 3)
    assert targets["au"].shape == (4, len(facs.AU_SETS["synthfacs15"]))
    assert set(targets) == {"au", "au_mask", "emotion", "emotion_mask"}
    n_val = pipeline.num_examples(tmp_path, "val")
    val = make_dataset(tmp_path, task="au", split="val", batch_size=64, image_size=32)
    assert sum(int(x.shape[0]) for x, _ in val) == n_val
