"""Phase 3's example store: examples per split, in memory up to a threshold, then on disk.

A spreadsheet build may hold millions of examples between fetching and writing shards. Kept as
Python objects they cost a few hundred bytes each in the build process; past ``threshold`` they
are moved to a SQLite file (the standard library's ``sqlite3``) keyed by ``(split, id)``, so
reading a split back sorted by id (the shard order) is an index scan, and the build process's
memory stays bounded whatever the number of URLs. Below the threshold nothing touches the disk.

The order read back is the same either way (sorted by id; ids are unique), so the shards,
manifest and reports do not depend on whether a build spilled.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_SPILL_THRESHOLD", "ExampleStore", "SplitExamples"]

#: Examples kept in memory before the store moves them to disk (about 1 MB of examples).
DEFAULT_SPILL_THRESHOLD = 4096
_INSERT_BATCH = 1024


class SplitExamples:
    """One split's examples: ``len()`` and iteration sorted by id (re-iterable)."""

    def __init__(self, store: ExampleStore, split: str) -> None:
        self._store = store
        self._split = split

    def __len__(self) -> int:
        return self._store.count(self._split)

    def __iter__(self) -> Iterator[Any]:
        return self._store.iter_sorted(self._split)


class ExampleStore:
    """Examples per split, spilled to a temporary SQLite file past ``threshold``.

    Args:
        splits: the splits, in the order they are written.
        directory: where the temporary file goes when the store spills (created if needed).
        threshold: examples kept in memory before spilling (0: spill from the first one).
        encode: example -> picklable tuple (stored on disk).
        decode: that tuple -> example.
    """

    def __init__(
        self,
        splits: Iterable[str],
        directory: str | os.PathLike[str],
        threshold: int = DEFAULT_SPILL_THRESHOLD,
        *,
        encode: Any = None,
        decode: Any = None,
    ) -> None:
        self.splits = tuple(splits)
        self.directory = Path(directory)
        self.threshold = threshold
        self._encode = encode or (lambda ex: ex)
        self._decode = decode or (lambda t: t)
        self._mem: dict[str, list[Any]] = {s: [] for s in self.splits}
        self._counts = dict.fromkeys(self.splits, 0)
        self._pending: list[tuple[str, str, bytes]] = []
        self._db: sqlite3.Connection | None = None
        self.path: Path | None = None

    @property
    def spilled(self) -> bool:
        """Whether the examples live on disk."""
        return self._db is not None

    def add(self, split: str, ex: Any) -> None:
        """Add one example (``ex["id"]`` unique within the split)."""
        self._counts[split] += 1
        if self._db is None:
            self._mem[split].append(ex)
            if sum(self._counts.values()) > self.threshold:
                self._spill()
            return
        self._pending.append((split, ex["id"], pickle.dumps(self._encode(ex), protocol=5)))
        if len(self._pending) >= _INSERT_BATCH:
            self._flush()

    def _spill(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.directory, prefix="examples-", suffix=".sqlite")
        os.close(fd)
        self.path = Path(name)
        db = sqlite3.connect(name, isolation_level=None)
        # A scratch file deleted at the end: durability buys nothing here.
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute(
            "CREATE TABLE ex (split TEXT, id TEXT, data BLOB, PRIMARY KEY (split, id))"
            " WITHOUT ROWID"
        )
        self._db = db
        for split, exs in self._mem.items():
            for ex in exs:
                self._pending.append((split, ex["id"], pickle.dumps(self._encode(ex), protocol=5)))
        self._mem = {s: [] for s in self.splits}
        self._flush()

    def _flush(self) -> None:
        if self._db is not None and self._pending:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO ex VALUES (?, ?, ?)", self._pending)
            self._db.execute("COMMIT")
        self._pending = []

    def count(self, split: str) -> int:
        """Examples in ``split``."""
        return self._counts[split]

    def iter_sorted(self, split: str) -> Iterator[Any]:
        """``split``'s examples sorted by id."""
        if self._db is None:
            yield from sorted(self._mem[split], key=lambda e: e["id"])
            return
        self._flush()
        cur = self._db.execute("SELECT data FROM ex WHERE split = ? ORDER BY id", (split,))
        for (data,) in cur:
            yield self._decode(pickle.loads(data))

    def views(self) -> dict[str, SplitExamples]:
        """``{split: SplitExamples}`` in split order (what the shard writer and reports take)."""
        return {s: SplitExamples(self, s) for s in self.splits}

    def close(self) -> None:
        """Delete the temporary file, if any."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None
