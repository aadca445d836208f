"""Per-URL state of a spreadsheet build, in memory up to a threshold, then on disk.

A spreadsheet build may hold millions of items per phase: the rows read in phase 1 (and the
URLs seen, to find duplicates), the examples between fetching and writing shards. Kept as Python
objects they cost a few hundred bytes each in the build process; past ``threshold`` they are
moved to a SQLite file (the standard library's ``sqlite3``) keyed by ``(split, key)``, so reading
a split back sorted by key is an index scan and a lookup by key a B-tree search, and the build
process's memory stays bounded whatever the number of URLs. Below the threshold nothing touches
the disk.

:class:`ExampleStore` is the one mechanism: phase 3's examples per split (keyed by id), and, through
:class:`SpillList` (an append-only list, keyed by position) and :class:`SpillMap` (a string-keyed
map), phase 1's rows and the URLs already seen. The order read back is the same either way (sorted
by key; keys are unique), so the shards, manifest and reports do not depend on whether a build
spilled.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fer_tf.build.summary import BuildError

__all__ = ["DEFAULT_SPILL_THRESHOLD", "ExampleStore", "SplitExamples", "SpillList", "SpillMap"]

#: Items (rows, URLs seen, examples) a store keeps in memory before moving them to disk: a few
#: hundred KB each. Below it nothing touches the disk; past it, the build process's memory is the
#: same at 2,000 URLs as at 50,000 (`docs/records.md`, "Memory of the build process").
DEFAULT_SPILL_THRESHOLD = 1024
_INSERT_BATCH = 1024
_CACHE_KB = 256


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
    """Examples (or any items) per split, spilled to a temporary SQLite file past ``threshold``.

    Each item has a key unique within its split (an example's ``"id"`` unless :meth:`add` is
    given one): splits read back sorted by key, and :meth:`get` finds an item by key.

    Args:
        splits: the splits, in the order they are written.
        directory: where the temporary file goes when the store spills (created if needed).
        threshold: items kept in memory before spilling (0: spill from the first one).
        encode: item -> picklable value (stored on disk).
        decode: that value -> item.
        prefix: the temporary file's name prefix (``<prefix>-*.sqlite``).
    """

    def __init__(
        self,
        splits: Iterable[str],
        directory: str | os.PathLike[str],
        threshold: int = DEFAULT_SPILL_THRESHOLD,
        *,
        encode: Any = None,
        decode: Any = None,
        prefix: str = "examples",
    ) -> None:
        self.splits = tuple(splits)
        self.directory = Path(directory)
        self.threshold = threshold
        self._encode = encode or (lambda ex: ex)
        self._decode = decode or (lambda t: t)
        self.prefix = prefix
        self._mem: dict[str, dict[Any, Any]] = {s: {} for s in self.splits}
        self._counts = dict.fromkeys(self.splits, 0)
        # Items not yet inserted, by (split, key): a write buffer that :meth:`get` reads too.
        self._pending: dict[tuple[str, Any], bytes] = {}
        self._db: sqlite3.Connection | None = None
        self.path: Path | None = None

    @property
    def spilled(self) -> bool:
        """Whether the examples live on disk."""
        return self._db is not None

    def add(self, split: str, ex: Any, key: Any = None) -> None:
        """Add one item.

        Args:
            split: its split.
            ex: the item.
            key: its key, unique within the split (a ``str`` or an ``int``; None: ``ex["id"]``).
        """
        key = ex["id"] if key is None else key
        self._counts[split] += 1
        if self._db is None:
            self._mem[split][key] = ex
            if sum(self._counts.values()) > self.threshold:
                self._spill()
            return
        self._pending[(split, key)] = pickle.dumps(self._encode(ex), protocol=5)
        if len(self._pending) >= _INSERT_BATCH:
            self._flush()

    def get(self, split: str, key: Any, default: Any = None) -> Any:
        """The item of ``split`` with ``key``, or ``default``."""
        if self._db is None:
            return self._mem[split].get(key, default)
        data = self._pending.get((split, key))
        if data is None:
            found = self._db.execute(
                "SELECT data FROM ex WHERE split = ? AND id = ?", (split, key)
            ).fetchone()
            if found is None:
                return default
            data = found[0]
        return self._decode(pickle.loads(data))

    def _spill(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                dir=self.directory, prefix=f"{self.prefix}-", suffix=".sqlite"
            )
        except OSError as exc:
            raise BuildError(
                f"Cannot write a temporary file in the cache directory '{self.directory}': {exc}."
            ) from None
        os.close(fd)
        self.path = Path(name)
        db = sqlite3.connect(name, isolation_level=None)
        # A scratch file deleted at the end: durability buys nothing here.
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        # SQLite's page cache is this process's memory (2 MB per connection by default; a build
        # has up to three stores open): 256 KB each, the file's other pages are left to the OS's
        # file cache. Measured: no slower on phase 1's inserts and lookups, 3 MB less at peak.
        db.execute(f"PRAGMA cache_size=-{_CACHE_KB}")
        # ``id`` has no type: text keys sort as text, integer keys (positions) as numbers.
        db.execute(
            "CREATE TABLE ex (split TEXT, id, data BLOB, PRIMARY KEY (split, id)) WITHOUT ROWID"
        )
        self._db = db
        for split, items in self._mem.items():
            for key, ex in items.items():
                self._pending[(split, key)] = pickle.dumps(self._encode(ex), protocol=5)
        self._mem = {s: {} for s in self.splits}
        self._flush()

    def _flush(self) -> None:
        if self._db is not None and self._pending:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO ex VALUES (?, ?, ?)",
                ((s, k, d) for (s, k), d in self._pending.items()),
            )
            self._db.execute("COMMIT")
        self._pending = {}

    def count(self, split: str) -> int:
        """Examples in ``split``."""
        return self._counts[split]

    def iter_sorted(self, split: str) -> Iterator[Any]:
        """``split``'s items sorted by key (an example's id)."""
        if self._db is None:
            items = self._mem[split]
            yield from [items[k] for k in sorted(items)]
            return
        self._flush()
        cur = self._db.execute("SELECT data FROM ex WHERE split = ? ORDER BY id", (split,))
        for (data,) in cur:
            yield self._decode(pickle.loads(data))

    def views(self) -> dict[str, SplitExamples]:
        """``{split: SplitExamples}`` in split order (what the shard writer and reports take)."""
        return {s: SplitExamples(self, s) for s in self.splits}

    def close(self) -> None:
        """Delete the temporary file, if any (the store is empty afterwards)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        self._mem = {s: {} for s in self.splits}
        self._counts = dict.fromkeys(self.splits, 0)
        self._pending = {}
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None


class SpillList(Sequence[Any]):
    """An append-only list that moves to disk past ``threshold`` items (an :class:`ExampleStore`
    of one split, keyed by position): ``append``, ``len``, iteration in order, ``[i]``.

    Args:
        directory, threshold, encode, decode, prefix: as for :class:`ExampleStore`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        threshold: int = DEFAULT_SPILL_THRESHOLD,
        *,
        encode: Callable[[Any], Any] | None = None,
        decode: Callable[[Any], Any] | None = None,
        prefix: str = "list",
    ) -> None:
        self.store = ExampleStore(
            ("",), directory, threshold, encode=encode, decode=decode, prefix=prefix
        )

    @property
    def spilled(self) -> bool:
        """Whether the items live on disk."""
        return self.store.spilled

    def append(self, item: Any) -> None:
        """Add ``item`` at the end."""
        self.store.add("", item, key=len(self))

    def __len__(self) -> int:
        return self.store.count("")

    def __iter__(self) -> Iterator[Any]:
        return self.store.iter_sorted("")

    def __getitem__(self, i: Any) -> Any:
        if not isinstance(i, int):
            raise TypeError(f"SpillList indices must be integers, not {type(i).__name__}")
        n = len(self)
        if not -n <= i < n:
            raise IndexError("SpillList index out of range")
        return self.store.get("", i % n)

    def close(self) -> None:
        """Delete the temporary file, if any (the list is empty afterwards)."""
        self.store.close()


class SpillMap:
    """A ``str`` -> value map that moves to disk past ``threshold`` entries (an
    :class:`ExampleStore` of one split, keyed by the string): ``m[key] = value`` for a new key,
    ``m.get(key)``, ``len``.

    Args:
        directory, threshold, prefix: as for :class:`ExampleStore` (values are pickled as they are).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        threshold: int = DEFAULT_SPILL_THRESHOLD,
        *,
        prefix: str = "map",
    ) -> None:
        self.store = ExampleStore(("",), directory, threshold, prefix=prefix)

    @property
    def spilled(self) -> bool:
        """Whether the entries live on disk."""
        return self.store.spilled

    def __setitem__(self, key: str, value: Any) -> None:
        # A key is set once (a build records the first occurrence of each URL).
        self.store.add("", value, key=key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        return self.store.get("", key, default)

    def __len__(self) -> int:
        return self.store.count("")

    def close(self) -> None:
        """Delete the temporary file, if any."""
        self.store.close()
