"""Every dataset source through ``fer-tf-build-records --source NAME`` on its miniature.

The per-source files test labels in depth (``test_sources_*.py``, ``test_sources_*_build.py``);
this one checks that each importer, including those tested there only at the item level, goes
through the one shared build: records written, the source and the dataset name stored, labels
mapped, and every record accounted for in the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fer_tf.cli.build_records import main
from fer_tf.records import decode_example, list_shards, read_manifest
from fer_tf.sources.base import get_source, list_sources
from fer_tf.testing import miniatures_ingest as mi
from fer_tf.testing import miniatures_sequences as ms
from fer_tf.testing import miniatures_stills as mst

FLAGS = ["--workers", "0", "--no-progress", "--num-shards", "1"]


def _still(writer: Callable[[Path], mst.Miniature]) -> Callable[[Path], tuple[Path, list[str]]]:
    def make(root: Path) -> tuple[Path, list[str]]:
        m = writer(root)
        extra: list[str] = []
        for key, value in m.options.items():
            extra += [f"--{key.replace('_', '-')}", str(value)]
        return Path(m.input), extra

    return make


def _root(writer: Callable[[Path], Path]) -> Callable[[Path], tuple[Path, list[str]]]:
    return lambda root: (writer(root), [])


# name -> (writer, extra flags); folds 0 where the standard fold count needs more subjects than a
# miniature has.
CASES: dict[str, tuple[Callable[[Path], tuple[Path, list[str]]], list[str]]] = {
    "fer2013": (_still(mst.write_fer2013), []),
    "jaffe": (_still(mst.write_jaffe), ["--folds", "0"]),
    "sfew": (_still(mst.write_sfew), []),
    "affectnet": (_still(mst.write_affectnet), []),
    "rafdb": (_still(mst.write_rafdb), []),
    "csv": (_still(mst.write_table), []),
    "ckplus": (_root(ms.write_ckplus), ["--folds", "0"]),
    "mug": (_root(ms.write_mug), ["--folds", "0"]),
    "disfa": (_root(ms.write_disfa), ["--folds", "0"]),
    "bp4d": (_root(ms.write_bp4d), ["--folds", "0"]),
    "video": (_root(ms.write_video_table), []),
    "folder": (_root(lambda r: (mi.write_folder_dataset(r), Path(r))[1]), []),
}


def test_every_registered_source_has_a_case() -> None:
    # Sources the package ships (tests register their own, test-only ones in the same process).
    shipped = {n for n in list_sources() if get_source(n).__module__.startswith("fer_tf.sources.")}
    assert set(CASES) == shipped - {"spreadsheet"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_source_builds_records(name: str, tmp_path: Path) -> None:
    make, flags = CASES[name]
    root, extra = make(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["--source", name, "--input", str(root), *extra, "--output-dir", str(out)]
    try:
        status = main([*argv, *flags, *FLAGS])
    except SystemExit as exc:  # argparse usage errors
        status = int(exc.code or 0)
    assert status == 0
    manifest = read_manifest(out)
    assert manifest["schema_version"] == 2 and manifest["source"] == name
    counts = {s: v["count"] for s, v in manifest["splits"].items()}
    assert sum(counts.values()) == manifest["counts"]["written"] > 0
    n = 0
    import tensorflow as tf

    for split in counts:
        for shard in list_shards(out, split):
            for raw in tf.data.TFRecordDataset(shard).as_numpy_iterator():
                ex = decode_example(raw)
                assert ex.dataset == name
                assert ex.height > 0 and ex.width > 0
                labelled = (
                    ex.emotion >= 0
                    or any(v != -1 for v in ex.au)
                    or ex.valence == ex.valence  # not NaN
                )
                assert labelled, ex.source
                n += 1
    assert n == manifest["counts"]["written"]
