"""Record schemas v1 and v2: ``tf.train.Example`` encode/parse, shard names, manifest I/O.

The schema is fixed in ``DESIGN.md`` ("Record schema v1", "Record schema v2"). Version 2 adds
``label/au_intensity``, ``label/emotion_dist``, ``meta/fold`` and ``meta/dataset``; every record
written now is v2, and readers accept v1 records (the new keys read as empty / -1 / ``""``).
Writing needs no TensorFlow:
:func:`encode_example` is a hand-written protobuf encoder and :class:`TFRecordWriter` frames records
exactly like ``tf.io.TFRecordWriter`` (CRC32C from ``google-crc32c``). Reading and parsing import
TensorFlow lazily, inside the functions that need it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SCHEMA_VERSION",
    "READABLE_SCHEMA_VERSIONS",
    "MANIFEST_NAME",
    "ERRORS_NAME",
    "ExampleRecord",
    "image_id",
    "encode_example",
    "TFRecordWriter",
    "tfrecord_frame",
    "decode_example",
    "feature_spec",
    "parse_example",
    "label_lengths",
    "shard_name",
    "list_shards",
    "read_manifest",
    "write_manifest",
    "ManifestError",
]

SCHEMA_VERSION = 2
#: Manifest schema versions this fer_tf reads (v1 records lack the v2 keys; they parse as unknown).
READABLE_SCHEMA_VERSIONS = (1, 2)
MANIFEST_NAME = "manifest.json"
ERRORS_NAME = "errors.jsonl"
UNKNOWN = -1


class ManifestError(ValueError):
    """A records directory or manifest that cannot be used."""


def image_id(source: str) -> str:
    """Stable id of an image: hex SHA-1 of its source string (URL or relative path)."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()


@dataclass
class ExampleRecord:
    """One example in schema-v2 terms (Python side; a v1 record decodes with the v2 defaults).

    Attributes:
        image: encoded RGB JPEG bytes.
        height, width: image size in pixels.
        source: URL as written in the spreadsheet (whitespace trimmed) or relative path.
        au: one value per ``manifest.au_ids``: 1 present, 0 absent, -1 unknown.
        valence, arousal: floats, NaN when unknown.
        emotion: index into ``manifest.emotion_names``, -1 unknown.
        posed: 1 posed, 0 spontaneous, -1 unknown.
        subject: subject id, empty when unknown.
        sequence, frame: video id and frame index; empty / -1 for stills.
        au_intensity: one float per ``manifest.au_ids`` (0..5, NaN unknown), or empty when the
            dataset has no intensities (v2).
        emotion_dist: soft label, one float per ``manifest.emotion_names``, or empty (v2).
        fold: subject-independent fold, -1 when none (v2).
        dataset: the source name (``"ckplus"``, ``"spreadsheet"``), ``""`` for v1 records (v2).
    """

    image: bytes
    height: int
    width: int
    source: str
    au: Sequence[int] = ()
    valence: float = math.nan
    arousal: float = math.nan
    emotion: int = UNKNOWN
    posed: int = UNKNOWN
    subject: str = ""
    sequence: str = ""
    frame: int = UNKNOWN
    id: str = field(default="")
    au_intensity: Sequence[float] = ()
    emotion_dist: Sequence[float] = ()
    fold: int = UNKNOWN
    dataset: str = ""

    def __post_init__(self) -> None:
        self.source = self.source.strip()
        if not self.id:
            self.id = image_id(self.source)
        bad = [v for v in self.au if v not in (-1, 0, 1)]
        if bad:
            raise ValueError(
                f"AU labels must be 1, 0 or -1 (unknown). Got {bad[0]!r} for {self.source!r}."
            )


def encode_example(record: ExampleRecord) -> bytes:
    """Serialise a record to ``tf.train.Example`` bytes, without TensorFlow.

    The bytes equal ``tf.train.Example(...).SerializeToString(deterministic=True)`` (map keys
    sorted): a hand-written protobuf encoder for the schema-v2 messages (every v2 key is written,
    the float lists possibly empty).

    Args:
        record: the example.

    Returns:
        The serialized proto.
    """

    def b(v: bytes | str) -> bytes:
        return _bytes_feature([v.encode("utf-8") if isinstance(v, str) else bytes(v)])

    return _example(
        {
            "image/encoded": b(record.image),
            "image/format": b("jpeg"),
            "image/height": _int64_feature([record.height]),
            "image/width": _int64_feature([record.width]),
            "image/id": b(record.id),
            "image/source": b(record.source),
            "label/au": _int64_feature(list(record.au)),
            "label/au_intensity": _float_feature(list(record.au_intensity)),
            "label/emotion_dist": _float_feature(list(record.emotion_dist)),
            "label/valence": _float_feature([record.valence]),
            "label/arousal": _float_feature([record.arousal]),
            "label/emotion": _int64_feature([record.emotion]),
            "label/posed": _int64_feature([record.posed]),
            "meta/subject": b(record.subject),
            "meta/sequence": b(record.sequence),
            "meta/frame": _int64_feature([record.frame]),
            "meta/fold": _int64_feature([record.fold]),
            "meta/dataset": b(record.dataset),
        }
    )


def decode_example(serialized: bytes) -> ExampleRecord:
    """Parse ``tf.train.Example`` bytes (schema v1 or v2) into an :class:`ExampleRecord`.

    Args:
        serialized: the proto bytes.

    Returns:
        The record; keys a v1 record lacks take their v2 defaults (empty lists, fold -1,
        dataset ``""``).
    """
    import tensorflow as tf

    ex = tf.train.Example.FromString(serialized)
    feat = ex.features.feature

    def b(k: str) -> bytes:
        return feat[k].bytes_list.value[0]

    def i(k: str) -> list[int]:
        return list(feat[k].int64_list.value)

    def f(k: str) -> list[float]:
        return list(feat[k].float_list.value) if k in feat else []

    return ExampleRecord(
        image=b("image/encoded"),
        height=i("image/height")[0],
        width=i("image/width")[0],
        source=b("image/source").decode("utf-8"),
        au=i("label/au"),
        valence=feat["label/valence"].float_list.value[0],
        arousal=feat["label/arousal"].float_list.value[0],
        emotion=i("label/emotion")[0],
        posed=i("label/posed")[0],
        subject=b("meta/subject").decode("utf-8"),
        sequence=b("meta/sequence").decode("utf-8"),
        frame=i("meta/frame")[0],
        id=b("image/id").decode("utf-8"),
        au_intensity=f("label/au_intensity"),
        emotion_dist=f("label/emotion_dist"),
        fold=i("meta/fold")[0] if "meta/fold" in feat else UNKNOWN,
        dataset=b("meta/dataset").decode("utf-8") if "meta/dataset" in feat else "",
    )


def label_lengths(manifest: Mapping[str, Any]) -> dict[str, int]:
    """The list lengths of a records directory's labels, from its manifest.

    Args:
        manifest: a manifest (:func:`read_manifest`), v1 or v2.

    Returns:
        ``{"au": K, "au_intensity": K or 0, "emotion_dist": E or 0}``: a length 0 means the
        records hold no such label (v1 records, or a dataset without intensities / soft labels);
        otherwise every record holds exactly that many values (NaN where unknown).
    """
    lengths = dict(manifest.get("label_lengths") or {})
    return {
        "au": int(lengths.get("au", len(manifest.get("au_ids", [])))),
        "au_intensity": int(lengths.get("au_intensity", 0)),
        "emotion_dist": int(lengths.get("emotion_dist", 0)),
    }


def feature_spec(num_aus: int, au_intensity: int = 0, emotion_dist: int = 0) -> dict[str, Any]:
    """``tf.io.parse_example`` spec for schema v2 (reads v1 records too).

    Args:
        num_aus: AU labels per record (``len(manifest.au_ids)``).
        au_intensity: intensities per record (:func:`label_lengths`); 0 leaves the key out of
            the spec (records holding intensities still parse: extra keys are ignored).
        emotion_dist: soft-label length per record (:func:`label_lengths`); 0 leaves it out.

    Returns:
        The spec. Keys a v1 record lacks parse to their defaults: ``label/au_intensity`` and
        ``label/emotion_dist`` NaN-filled (length as asked), ``meta/fold`` -1, ``meta/dataset``
        ``b""``.
    """
    import tensorflow as tf

    def floats(n: int) -> Any:
        return tf.io.FixedLenFeature([n], tf.float32, default_value=[math.nan] * n)

    spec = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/format": tf.io.FixedLenFeature([], tf.string, default_value="jpeg"),
        "image/height": tf.io.FixedLenFeature([], tf.int64),
        "image/width": tf.io.FixedLenFeature([], tf.int64),
        "image/id": tf.io.FixedLenFeature([], tf.string),
        "image/source": tf.io.FixedLenFeature([], tf.string),
        "label/au": tf.io.FixedLenFeature([num_aus], tf.int64),
        "label/valence": tf.io.FixedLenFeature([], tf.float32, default_value=math.nan),
        "label/arousal": tf.io.FixedLenFeature([], tf.float32, default_value=math.nan),
        "label/emotion": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "label/posed": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "meta/subject": tf.io.FixedLenFeature([], tf.string, default_value=""),
        "meta/sequence": tf.io.FixedLenFeature([], tf.string, default_value=""),
        "meta/frame": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "meta/fold": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        "meta/dataset": tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    if au_intensity:
        spec["label/au_intensity"] = floats(au_intensity)
    if emotion_dist:
        spec["label/emotion_dist"] = floats(emotion_dist)
    return spec


def parse_example(
    serialized: Any, num_aus: int, au_intensity: int = 0, emotion_dist: int = 0
) -> dict[str, Any]:
    """Parse one serialized example (scalar string tensor) or a batch (vector) into tensors.

    Args:
        serialized: a scalar or vector string tensor of v1 or v2 records.
        num_aus: AU labels per record.
        au_intensity: intensities per record (0: not parsed).
        emotion_dist: soft-label length (0: not parsed).

    Returns:
        The parsed tensors, keyed as :func:`feature_spec`.
    """
    import tensorflow as tf

    spec = feature_spec(num_aus, au_intensity, emotion_dist)
    if serialized.shape.rank == 0:
        return tf.io.parse_single_example(serialized, spec)
    return tf.io.parse_example(serialized, spec)


# --------------------------------------------------------------------------------------------
# TensorFlow-free wire format: tf.train.Example protobuf and TFRecord framing
#
# example.proto / feature.proto:
#   Example   { Features features = 1; }
#   Features  { map<string, Feature> feature = 1; }   (entry: string key = 1; Feature value = 2)
#   Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
#                            Int64List int64_list = 3; } }
#   BytesList { repeated bytes value = 1; }
#   FloatList { repeated float value = 1 [packed = true]; }
#   Int64List { repeated int64 value = 1 [packed = true]; }
# Deterministic serialization writes map entries sorted by key, and both key and value of every
# entry; packed lists are one length-delimited field (omitted when empty).

_FLOAT = struct.Struct("<f")


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative int64 values as their 64-bit two's complement."""
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2) with number ``tag``."""
    return _varint(tag << 3 | 2) + _varint(len(payload)) + payload


def _bytes_feature(values: Sequence[bytes]) -> bytes:
    return _field(1, b"".join(_field(1, v) for v in values))


#: Varints of the values labels take (-1 is ten bytes long): a lookup instead of a loop.
_SMALL_VARINTS = {v: _varint(v) for v in range(-1, 128)}


def _int64_feature(values: Sequence[int]) -> bytes:
    small = _SMALL_VARINTS
    packed = b"".join(small.get(v) or _varint(int(v)) for v in values)
    return _field(3, _field(1, packed) if values else b"")


def _float_feature(values: Sequence[float]) -> bytes:
    packed = b"".join(_FLOAT.pack(float(v)) for v in values)
    return _field(2, _field(1, packed) if values else b"")


def _map_key_order(a: bytes, b: bytes) -> int:
    """upb's deterministic map order: bytewise, but a key sorts AFTER the keys it prefixes.

    Python protobuf (upb, what ``SerializeToString(deterministic=True)`` runs) compares the common
    prefix with ``memcmp`` and, when equal, puts the longer key first (``label/au_intensity``
    before ``label/au``); schema v2 is the first schema with one key prefixing another.
    """
    common = min(len(a), len(b))
    if a[:common] != b[:common]:
        return -1 if a[:common] < b[:common] else 1
    return len(b) - len(a)


@functools.lru_cache(maxsize=8)
def _key_plan(keys: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
    """The keys in upb's map order, each with its encoded map-entry key field (computed once)."""
    order = functools.cmp_to_key(_map_key_order)
    ranked = sorted(keys, key=lambda k: order(k.encode("utf-8")))
    return tuple((k, _field(1, k.encode("utf-8"))) for k in ranked)


def _example(features: Mapping[str, bytes]) -> bytes:
    """``Example`` bytes from serialized ``Feature`` messages (map entries in upb's order).

    Equal to ``_field(1, b"".join(_field(1, _field(1, key) + _field(2, value)) ...))``, built
    with one join: the image bytes are copied once here instead of four times.
    """
    parts: list[bytes] = []
    for key, key_field in _key_plan(tuple(features)):
        value = features[key]
        value_len = _varint(len(value))
        entry_len = len(key_field) + 1 + len(value_len) + len(value)
        parts += (b"\x0a", _varint(entry_len), key_field, b"\x12", value_len, value)
    body = b"".join(parts)
    return b"\x0a" + _varint(len(body)) + body


def _masked_crc32c(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_frame(data: bytes) -> bytes:
    """One TFRecord: uint64 length, masked CRC32C of the length, data, masked CRC32C of the data."""
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", _masked_crc32c(header))
        + data
        + struct.pack("<I", _masked_crc32c(data))
    )


class TFRecordWriter:
    """Write a TFRecord file like ``tf.io.TFRecordWriter`` (no compression), without TensorFlow.

    The file is byte-identical to what ``tf.io.TFRecordWriter`` writes for the same records.

    Args:
        path: file to create (truncated if it exists).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()/__exit__

    def write(self, record: bytes) -> None:
        """Append one record."""
        self._fh.write(tfrecord_frame(record))

    def flush(self) -> None:
        """Flush buffered bytes to the file."""
        self._fh.flush()

    def close(self) -> None:
        """Flush and close the file."""
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shard_name(split: str, index: int, total: int) -> str:
    """``<split>-00000-of-000NN.tfrecord``."""
    return f"{split}-{index:05d}-of-{total:05d}.tfrecord"


_SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.tfrecord$")


def list_shards(directory: str | os.PathLike[str], split: str) -> list[str]:
    """Completed shard files of ``split`` in ``directory``, sorted (temporary files excluded)."""
    d = Path(directory)
    out = []
    for p in sorted(d.iterdir()) if d.is_dir() else []:
        m = _SHARD.match(p.name)
        if m and m.group("split") == split:
            out.append(str(p))
    return out


def read_manifest(directory_or_file: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``manifest.json``.

    Args:
        directory_or_file: a records directory or the manifest file itself.

    Returns:
        The manifest dict; ``manifest["_dir"]`` is set to the records directory.

    Raises:
        ManifestError: missing file, invalid JSON, or a schema version not in
            :data:`READABLE_SCHEMA_VERSIONS`.
    """
    p = Path(directory_or_file)
    path = p / MANIFEST_NAME if p.is_dir() else p
    if not path.exists():
        raise ManifestError(
            f"No records manifest at '{path}'. Build records with fer-tf-build-records "
            f"(or fer_tf.build.build_records) first."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"The manifest '{path}' is not valid JSON: {exc}.") from exc
    version = manifest.get("schema_version")
    if version not in READABLE_SCHEMA_VERSIONS:
        raise ManifestError(
            f"The manifest '{path}' has schema_version {version!r}; this fer_tf reads schema "
            f"versions {list(READABLE_SCHEMA_VERSIONS)}. Rebuild the records with this version "
            f"of fer_tf."
        )
    manifest["_dir"] = str(path.parent)
    return manifest


def write_manifest(directory: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest.json`` atomically (temporary file, then rename)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in manifest.items() if not k.startswith("_")}
    data.setdefault("schema_version", SCHEMA_VERSION)
    tmp = d / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, d / MANIFEST_NAME)
    return d / MANIFEST_NAME
