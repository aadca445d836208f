"""Every setting of a record build, with its default, in one dataclass (:class:`BuildOptions`).

``fer-tf-build-records`` reads its argparse defaults from here (:func:`default`), so a default is
written once. Numbers and choices are checked when the options are made; paths are checked when the
build starts (:meth:`BuildOptions.check_paths`), since the file system may change in between.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Union

from fer_tf import facs
from fer_tf.checks import check_choice, check_number, check_writable_dir, invalid
from fer_tf.preprocessing.decode import DEFAULT_JPEG_QUALITY
from fer_tf.sources.download import DownloadOptions

__all__ = [
    "BuildOptions",
    "default",
    "DEFAULT_EXAMPLES_PER_SHARD",
    "FACE_CROPS",
    "FACE_FALLBACKS",
    "SPLIT_BY",
    "MAX_DEFAULT_WORKERS",
    "PROCESS_VERSION",
    "SPREADSHEET",
    "DEFAULT_VAL_FRACTION",
    "RUNNERS",
]

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_EXAMPLES_PER_SHARD = 1024
FACE_CROPS = ("none", "haar")
FACE_FALLBACKS = ("keep", "drop")
SPLIT_BY = ("id", "subject")
#: How the build runs: in this process and its pool (``"local"``) or as an Apache Beam pipeline.
RUNNERS = ("local", "beam")
#: The default source: EmotioNet-style spreadsheets of image URLs (``spreadsheets``).
SPREADSHEET = "spreadsheet"
#: ``val_fraction=None`` means this, or 0 when folds are written (the folds are the protocol).
DEFAULT_VAL_FRACTION = 0.1
#: ``workers=None`` uses the CPU count, at most this many processes.
MAX_DEFAULT_WORKERS = 8
#: Bump when image processing changes the output bytes (it keys the processed-image cache).
PROCESS_VERSION = 1

_DL = DownloadOptions()  # the downloader's defaults are the build's defaults


@dataclass
class BuildOptions:
    """Settings of :func:`fer_tf.build.build_records`.

    Attributes:
        spreadsheets: one or more ``.xlsx``/``.csv``/``.tsv``/``.txt`` files (the
            ``"spreadsheet"`` source only; empty for local sources).
        output_dir: records directory (created).
        source: ``"spreadsheet"`` (image URLs, the default) or a registered local dataset source
            (:func:`fer_tf.sources.base.list_sources`: ``"folder"``, ``"ckplus"``...).
        input: the dataset's root folder (local sources).
        source_options: options passed to the source class (its ``source_options``; checked by
            it), e.g. ``{"class_names": "a,b"}``.
        folds: subject-independent folds stored in ``meta/fold``: an int >= 2 (k-fold: subjects
            sorted, shuffled with ``seed``, dealt round-robin), ``"loso"`` (one fold per subject),
            0 for none, or None for the source's ``default_folds``. The build is not repeated per
            fold: training selects folds.
        cache_dir: download cache (default ``<output_dir>/cache``); share it between builds.
        aus: AU columns to store: a :mod:`fer_tf.facs` set name (``"emotionet11"``), a list, or
            None for every AU column found in the spreadsheets.
        drop_unknown: skip rows (items) where any selected AU is unknown (Bartissol 2017's filtering).
        val_fraction: fraction of examples assigned to the ``val`` split (0..1) when the source
            has no partition of its own; None: :data:`DEFAULT_VAL_FRACTION`, or 0 when folds are
            written (all examples in ``train``, the folds are the protocol).
        test_fraction: fraction assigned to a ``test`` split (0..1) when the source has no
            partition of its own (default 0: no test split).
        split_by: ``"id"`` (per image) or ``"subject"`` (subject-independent; rows without a
            subject fall back to their id); None: ``"id"`` for the spreadsheet source,
            ``"subject"`` for local sources.
        seed: split seed.
        num_shards: shards per split (capped at the split's size); exclusive with
            ``examples_per_shard``.
        examples_per_shard: examples per shard (:data:`DEFAULT_EXAMPLES_PER_SHARD` when neither
            is given).
        image_size: downscale so the shorter side is at most this (aspect kept); None keeps size.
        jpeg_quality: quality of the re-encoded JPEG (1..100).
        face_crop: ``"none"`` or ``"haar"`` (Viola–Jones largest face,
            :mod:`fer_tf.preprocessing.faces`). An item with a face box from its dataset
            (AffectNet) is always cropped to that box with ``face_margin``, never detected.
        face_margin: margin around the detected face (fraction of its size).
        face_fallback: when no face is found: ``"keep"`` the whole image or ``"drop"`` the row
            (counted as skipped, reason ``no_face``).
        equalize: histogram-equalise (Athanasiadis 2022).
        reencode_jpeg: re-encode every image; by default an upright RGB JPEG that needs no change
            is stored as downloaded (fully decoded first, to validate it).
        workers: image-processing processes (None: the CPU count, at most
            :data:`MAX_DEFAULT_WORKERS`; 0 processes in this process).
        concurrency: download threads.
        per_host: concurrent requests per host (None: ``min(concurrency, DownloadOptions
            per_host default)``).
        timeout: read timeout (s) per request.
        retries: retries for 429/5xx/timeouts/connection errors.
        backoff: base retry delay (s), doubled per attempt, with jitter.
        max_retry_after: cap (s) on a server's ``Retry-After``.
        max_bytes: largest original accepted.
        allow_private_hosts: allow private/loopback/link-local addresses (refused by default).
        retry_failed: re-attempt sources that failed in an earlier run (otherwise their
            remembered failure is reused; ``blocked_host``/``bad_url`` are always re-checked).
        max_failure_rate: raise :class:`~fer_tf.build.summary.FailureRateExceeded` (after writing
            everything) when ``failed / (rows - skipped)`` exceeds this; None never raises. The
            default, 0.9, lets old URL lists with heavy link rot through but stops a build in which
            (almost) nothing could be fetched: a blocked network, a proxy, a wrong URL column.
        progress: report progress on stderr: a bar in a terminal, one line per 10% otherwise.
        runner: ``"local"`` (this process and its pool) or ``"beam"``: the fetch-and-process and
            shard-writing phases run as Apache Beam pipelines (:mod:`fer_tf.build.beam`; needs
            ``pip install 'fer-tf[beam]'``). Same examples, splits and shards as ``"local"``;
            ``workers`` is not used (the Beam runner sets the parallelism). See docs/scale.md.
        beam_options: Beam's own pipeline flags, passed to ``PipelineOptions`` as they are
            (``["--runner=DataflowRunner", "--project=p", ...]``, or one string split like a
            shell line); default: the DirectRunner. Only with ``runner="beam"``.

    Raises:
        ValueError: a bad number or choice (the message names it and says what is accepted).
    """

    spreadsheets: PathLike | Sequence[PathLike] | None = None
    output_dir: PathLike | None = None
    cache_dir: PathLike | None = None
    source: str = SPREADSHEET
    input: PathLike | None = None
    source_options: dict[str, Any] = field(default_factory=dict)
    folds: int | str | None = None
    aus: str | Sequence[int | str] | None = None
    drop_unknown: bool = False
    val_fraction: float | None = None
    test_fraction: float = 0.0
    split_by: str | None = None
    seed: int = 0
    num_shards: int | None = None
    examples_per_shard: int | None = None
    image_size: int | None = None
    jpeg_quality: int = DEFAULT_JPEG_QUALITY
    face_crop: str = "none"
    face_margin: float = 0.2
    face_fallback: str = "keep"
    equalize: bool = False
    reencode_jpeg: bool = False
    workers: int | None = None
    concurrency: int = _DL.concurrency
    per_host: int | None = None
    timeout: float = _DL.timeout
    retries: int = _DL.retries
    backoff: float = _DL.backoff
    max_retry_after: float = _DL.retry_after_max
    max_bytes: int = _DL.max_bytes
    allow_private_hosts: bool = False
    retry_failed: bool = False
    max_failure_rate: float | None = 0.9
    progress: bool = True
    runner: str = "local"
    beam_options: str | Sequence[str] = ()
    au_ids: tuple[int, ...] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if isinstance(self.spreadsheets, (str, os.PathLike)):
            self.spreadsheets = [self.spreadsheets]
        self.spreadsheets = list(self.spreadsheets or [])
        if self.output_dir is None:
            raise ValueError(
                "The 'output_dir' parameter is required: the records directory to write "
                "(created if missing)."
            )
        self._check_source()
        check_number("val_fraction", self.val_fraction, min=0.0, max=1.0, allow_none=True)
        check_number("test_fraction", self.test_fraction, min=0.0, max=1.0)
        if self.resolved_val_fraction + self.test_fraction >= 1.0 and self.test_fraction > 0:
            raise ValueError(
                "The 'val_fraction' and 'test_fraction' parameters must add up to less than 1 "
                f"(something must be left for train). Got {self.resolved_val_fraction} + "
                f"{self.test_fraction} instead."
            )
        check_choice("split_by", self.split_by, (*SPLIT_BY, None))
        check_number("seed", self.seed, min=0, integer=True)
        if self.num_shards is not None and self.examples_per_shard is not None:
            raise ValueError(
                "The 'num_shards' and 'examples_per_shard' parameters are exclusive; pass one of "
                "them."
            )
        check_number("num_shards", self.num_shards, min=1, integer=True, allow_none=True)
        check_number(
            "examples_per_shard", self.examples_per_shard, min=1, integer=True, allow_none=True
        )
        check_number("image_size", self.image_size, min=8, integer=True, allow_none=True)
        check_number("jpeg_quality", self.jpeg_quality, min=1, max=100, integer=True)
        check_choice("face_crop", self.face_crop, FACE_CROPS)
        check_choice("face_fallback", self.face_fallback, FACE_FALLBACKS)
        check_number("face_margin", self.face_margin, min=0.0)
        check_number("workers", self.workers, min=0, integer=True, allow_none=True)
        check_number("max_failure_rate", self.max_failure_rate, min=0.0, max=1.0, allow_none=True)
        self._check_runner()
        self.au_ids = facs.parse_aus(self.aus) if self.aus is not None else None
        self.download_options().validate()

    def _check_source(self) -> None:
        """Check ``source``, ``input``, ``spreadsheets``, ``source_options`` and ``folds``."""
        if self.source == SPREADSHEET:
            if not self.spreadsheets:
                raise ValueError(
                    "The 'spreadsheets' parameter must name at least one .xlsx/.csv/.tsv/.txt "
                    "file for the 'spreadsheet' source. Got none instead."
                )
            if self.input is not None or self.source_options:
                raise ValueError(
                    "The 'input' and 'source_options' parameters are for local dataset sources "
                    "(source='folder', 'ckplus', ...); the 'spreadsheet' source reads "
                    "'spreadsheets'."
                )
        else:
            from fer_tf.sources.base import get_source

            get_source(self.source)  # SourceError (a ValueError) naming the registered sources
            if self.spreadsheets:
                raise ValueError(
                    f"The 'spreadsheets' parameter is for the 'spreadsheet' source; source "
                    f"'{self.source}' reads its dataset root from 'input'."
                )
            if self.input is None:
                raise invalid("input", f"the root folder of the '{self.source}' dataset", None)
            self.make_source()  # the source checks its options (names, choices) now
        folds = self.folds
        if isinstance(folds, str):
            if folds != "loso":
                raise invalid("folds", "an integer >= 2, 'loso', 0 or None", folds)
        elif folds not in (None, 0):
            check_number("folds", folds, min=2, integer=True)

    def _check_runner(self) -> None:
        """Check ``runner`` and ``beam_options`` (a shell-like string becomes a list of flags)."""
        check_choice("runner", self.runner, RUNNERS)
        flags = self.beam_options
        if isinstance(flags, str):
            try:
                flags = shlex.split(flags)
            except ValueError as exc:
                raise invalid("beam_options", "flags split like a shell line", flags) from exc
        if flags is None:
            flags = ()
        flags = tuple(flags)
        for flag in flags:
            if not isinstance(flag, str) or not flag.startswith("--"):
                raise invalid(
                    "beam_options", "Apache Beam pipeline flags like '--runner=DirectRunner'", flag
                )
        if flags and self.runner != "beam":
            raise ValueError(
                "The 'beam_options' parameter is for runner='beam' (Apache Beam's own pipeline "
                f"flags). Got {list(flags)!r} with runner={self.runner!r} instead."
            )
        self.beam_options = flags

    def make_source(self) -> Any:
        """The :class:`~fer_tf.sources.base.Source` these options read (local sources only).

        Returns:
            The source instance (its root not yet checked).

        Raises:
            fer_tf.sources.base.SourceError: an unknown source or a bad source option.
        """
        from fer_tf.sources.base import get_source

        return get_source(self.source)(self.input, **dict(self.source_options))

    # -- derived settings --

    @property
    def local(self) -> bool:
        """Whether the source is a local dataset (not the spreadsheet of URLs)."""
        return self.source != SPREADSHEET

    @property
    def resolved_folds(self) -> int | str:
        """``folds``, with None replaced by the source's ``default_folds`` (0: none)."""
        if self.folds is not None:
            return self.folds
        if not self.local:
            return 0
        from fer_tf.sources.base import get_source

        return int(get_source(self.source).default_folds)

    @property
    def resolved_val_fraction(self) -> float:
        """``val_fraction``; None is :data:`DEFAULT_VAL_FRACTION`, or 0 when folds are written."""
        if self.val_fraction is not None:
            return float(self.val_fraction)
        return 0.0 if self.resolved_folds else DEFAULT_VAL_FRACTION

    @property
    def resolved_split_by(self) -> str:
        """``split_by``; None is ``"id"`` for spreadsheets, ``"subject"`` for local sources."""
        if self.split_by is not None:
            return self.split_by
        return "subject" if self.local else "id"

    @property
    def paths(self) -> list[Path]:
        """The spreadsheets as paths."""
        return [Path(p) for p in self.spreadsheets]  # type: ignore[union-attr]

    @property
    def out(self) -> Path:
        """The records directory."""
        return Path(self.output_dir)

    @property
    def cache_root(self) -> Path:
        """The download cache (``cache_dir``, or ``<output_dir>/cache``)."""
        return Path(self.cache_dir) if self.cache_dir is not None else self.out / "cache"

    @property
    def resolved_workers(self) -> int:
        """``workers``; None becomes the CPU count (at most :data:`MAX_DEFAULT_WORKERS`)."""
        if self.workers is not None:
            return self.workers
        return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))

    def download_options(self) -> DownloadOptions:
        """The downloader settings these options ask for.

        Returns:
            A :class:`~fer_tf.sources.download.DownloadOptions` (not yet validated).
        """
        per_host = (
            self.per_host if self.per_host is not None else min(self.concurrency, _DL.per_host)
        )
        return DownloadOptions(
            concurrency=self.concurrency,
            per_host=per_host,
            timeout=self.timeout,
            retries=self.retries,
            backoff=self.backoff,
            retry_after_max=self.max_retry_after,
            max_bytes=self.max_bytes,
            allow_private_hosts=self.allow_private_hosts,
        )

    def process_options(self) -> dict[str, Any]:
        """What :func:`fer_tf.preprocessing.decode.process_image` needs (and the cache key holds).

        Returns:
            A JSON-able dict; :meth:`fingerprint` hashes it.
        """
        cropping = self.face_crop != "none"
        local = {"box_margin": float(self.face_margin)} if self.local else {}
        return {
            **local,  # a dataset's face box (AffectNet) is cropped with the face margin
            "version": PROCESS_VERSION,
            "image_size": self.image_size,
            "jpeg_quality": self.jpeg_quality,
            "face_crop": self.face_crop,
            "face_margin": float(self.face_margin) if cropping else None,
            "face_fallback": self.face_fallback if cropping else None,
            "equalize": bool(self.equalize),
            "reencode_jpeg": bool(self.reencode_jpeg),
        }

    def fingerprint(self) -> str:
        """16 hex digits naming the processed-image cache of these processing options."""
        blob = json.dumps(self.process_options(), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:16]

    def check_paths(self, error: type[Exception] = ValueError) -> None:
        """Check, creating nothing, that the output and cache directories can be written.

        Args:
            error: the exception class raised.

        Raises:
            error: a path is a file, or not writable (the message names it and says why).
        """
        check_writable_dir("output_dir", self.out, error=error)
        check_writable_dir("cache_dir", self.cache_root, error=error)

    def manifest_arguments(self) -> dict[str, Any]:
        """The options as ``manifest.json`` records them (``arguments``).

        Returns:
            A JSON-able dict.
        """
        dl = self.download_options()
        return {
            "spreadsheets": [str(p) for p in self.paths],
            "output_dir": str(self.out),
            "cache_dir": str(self.cache_root),
            "aus": list(self.au_ids) if self.au_ids is not None else None,
            "drop_unknown": self.drop_unknown,
            "val_fraction": self.resolved_val_fraction,
            "test_fraction": self.test_fraction,
            "split_by": self.resolved_split_by,
            "source": self.source,
            "input": str(self.input) if self.input is not None else None,
            "source_options": {k: _plain(v) for k, v in sorted(self.source_options.items())},
            "folds": self.resolved_folds,
            "seed": self.seed,
            "num_shards": self.num_shards,
            "examples_per_shard": self.examples_per_shard,
            "image_size": self.image_size,
            "jpeg_quality": self.jpeg_quality,
            "face_crop": self.face_crop,
            "face_margin": self.face_margin,
            "face_fallback": self.face_fallback,
            "equalize": self.equalize,
            "reencode_jpeg": self.reencode_jpeg,
            "concurrency": dl.concurrency,
            "per_host": dl.per_host,
            "timeout": dl.timeout,
            "retries": dl.retries,
            "max_bytes": dl.max_bytes,
            "allow_private_hosts": dl.allow_private_hosts,
            "retry_failed": self.retry_failed,
            "max_failure_rate": self.max_failure_rate,
            # Only Beam builds name their runner: local manifests keep their keys.
            **(
                {"runner": self.runner, "beam_options": list(self.beam_options)}
                if self.runner != "local"
                else {}
            ),
        }


def _plain(value: Any) -> Any:
    """A JSON-able form of a source option value (paths as strings)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def default(name: str) -> Any:
    """The default of a :class:`BuildOptions` field (what the CLI shows and uses).

    Args:
        name: the field name.

    Returns:
        The default value.

    Raises:
        KeyError: no such field, or the field has no default.
    """
    for f in fields(BuildOptions):
        if f.name == name and f.default is not MISSING:
            return f.default
    raise KeyError(f"BuildOptions has no field {name!r} with a default.")
