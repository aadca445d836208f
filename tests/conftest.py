"""Fixtures shared across test files: the repository root, a loopback mirror, a toy source,
fast download settings, and a build's outputs as bytes for comparing two builds.

Each is defined once here; a test file that needs a differently configured mirror still builds
its own (``Mirror(...)`` is cheap for a few dozen faces).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fer_tf.testing.mirror import FAULTS, VARIANTS, Mirror

ROOT = Path(__file__).resolve().parents[1]

#: ``fer-tf-build-records`` flags that keep a loopback build fast: tiny timeouts and backoff,
#: ``Retry-After`` capped, 1 MB size cap, two workers.
FAST_DOWNLOAD_FLAGS: tuple[str, ...] = (
    "--timeout",
    "1.0",
    "--retries",
    "1",
    "--backoff",
    "0.01",
    "--max-retry-after",
    "0.05",
    "--max-bytes",
    "1M",
    "--concurrency",
    "8",
    "--workers",
    "2",
    "--num-shards",
    "3",
    "--no-progress",
)
#: The same settings as keyword arguments of ``DownloadOptions``.
FAST_DOWNLOAD_OPTIONS: dict[str, object] = {
    "concurrency": 8,
    "timeout": 0.5,
    "retries": 1,
    "backoff": 0.01,
    "retry_after_max": 0.05,
    "max_bytes": 1 << 20,
    "allow_private_hosts": True,
}
#: Good (plain JPEG) items in the shared mirror, after one item per fault and per variant.
MIRROR_GOOD = 6


def build_outputs(out: Path) -> dict[str, bytes]:
    """Every file of a build's output directory by name, the manifest without the output and
    cache paths (two builds of the same inputs into different directories differ only there)."""
    got = {}
    for p in sorted(out.iterdir()):
        data = p.read_bytes()
        if p.name == "manifest.json":
            m = json.loads(data)
            m["arguments"].pop("output_dir")
            m["arguments"].pop("cache_dir")
            data = json.dumps(m, sort_keys=True).encode()
        got[p.name] = data
    return got


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (where ``pyproject.toml`` is)."""
    return ROOT


@pytest.fixture(scope="session")
def mirror() -> Iterator[Mirror]:
    """A running loopback mirror for the whole session: one item per fault in :data:`FAULTS`,
    then one per image variant in :data:`VARIANTS`, then :data:`MIRROR_GOOD` plain JPEGs.

    Shared: tests must not depend on its request counts without calling ``reset_counts()``
    first, and must not stop it. Timeouts hang for at most 4 s; ``Retry-After`` says 30 s so a
    test sees whether the client caps it.
    """
    with make_mirror() as m:
        yield m


def make_mirror() -> Mirror:
    """A (not yet started) mirror in the layout of the :func:`mirror` fixture, for tests that need
    their own: the flaky and slow items keep state per URL, so a module that counts requests from
    a clean slate starts its own instead of sharing the session's."""
    faults = list(FAULTS) + [None] * (len(VARIANTS) + MIRROR_GOOD)
    variants = [None] * len(FAULTS) + list(VARIANTS) + [None] * MIRROR_GOOD
    return Mirror(
        len(faults),
        faults=faults,
        variants=variants,
        hang=4.0,
        retry_after=30,
        slow_delay=0.1,
        oversized_bytes=2 * 1024 * 1024,
        unknown_fraction=0.15,
        seed=11,
    )


@pytest.fixture(scope="session")
def toy_mirror() -> Iterator[Mirror]:
    """A running mirror of 24 good SynthFACS faces (seed 5, no faults), for the session."""
    with Mirror(24, seed=5) as m:
        yield m


@pytest.fixture(scope="session")
def toy_source(toy_mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An EmotioNet-format ``urls.xlsx`` of :func:`toy_mirror`'s 24 faces: a source every
    build succeeds on."""
    return toy_mirror.write_spreadsheet(tmp_path_factory.mktemp("toy_source") / "urls.xlsx")


@pytest.fixture(scope="session")
def fast_download_flags() -> list[str]:
    """:data:`FAST_DOWNLOAD_FLAGS` as a fresh list (safe to extend)."""
    return list(FAST_DOWNLOAD_FLAGS)


@pytest.fixture(scope="session")
def fast_download_options() -> dict[str, object]:
    """:data:`FAST_DOWNLOAD_OPTIONS` as a fresh dict (``DownloadOptions(**opts)``)."""
    return dict(FAST_DOWNLOAD_OPTIONS)
