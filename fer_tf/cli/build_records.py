"""``fer-tf-build-records``: spreadsheets of image URLs or local datasets -> sharded TFRecords.

Thin: parse the command line (defaults from :class:`fer_tf.build.options.BuildOptions`), call
:func:`fer_tf.build.build_records`, print the summary. Parsing (and ``--help``) imports nothing
heavy; the whole run never imports TensorFlow.

``--source NAME --input ROOT`` reads a local dataset (``--source list`` names them); every option a
source declares (:class:`~fer_tf.sources.base.SourceOption`) is a flag here, grouped per source in
``--help``, and only the chosen source's flags may be given.

Exit status: 0 when the run completed (failed URLs and unreadable images are data, listed in
``errors.jsonl``); 1 for a fatal error (unreadable spreadsheet or one without data rows, a dataset
root that does not hold the dataset, output not writable); 2 for a bad command line; 3 when more sources failed than ``--max-failure-rate`` allows (default 0.9; the
records are still written, and the failure table is printed); 130 when interrupted (run the same
command again to resume).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from fer_tf.build.options import (
    DEFAULT_EXAMPLES_PER_SHARD,
    DEFAULT_VAL_FRACTION,
    FACE_CROPS,
    FACE_FALLBACKS,
    MAX_DEFAULT_WORKERS,
    RUNNERS,
    SPLIT_BY,
    SPREADSHEET,
    BuildOptions,
    default,
)
from fer_tf.checks import check_number, check_path, check_writable_dir, invalid
from fer_tf.sources.download import DownloadOptions

EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_FAILURE_RATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
PROG = "fer-tf-build-records"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)


def _byte_size(text: str) -> int:
    """``"20M"``, ``"512k"``, ``"1048576"`` -> bytes (at least 1)."""
    m = _SIZE.match(text)
    value = 0
    if m:
        scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
        value = int(float(m.group(1)) * scale)
    if value < 1:
        accepted = "a byte count of at least 1, like 20000000, 512K or 20M"
        raise invalid("--max-bytes", accepted, text, error=argparse.ArgumentTypeError)
    return value


def _show_bytes(n: int) -> str:
    for unit, scale in (("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def _number(cast: Callable[[str], Any], name: str, **bounds: Any) -> Callable[[str], Any]:
    """An argparse ``type``: ``cast`` the text, then :func:`fer_tf.checks.check_number` it."""

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            value = text  # not a number: check_number says what is accepted
        integer = cast is int
        return check_number(
            name, value, integer=integer, error=argparse.ArgumentTypeError, **bounds
        )

    return parse


def _aus(text: str) -> str:
    from fer_tf.facs import parse_aus

    try:
        parse_aus(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _add_io_args(p: argparse.ArgumentParser) -> None:
    io = p.add_argument_group("input and output")
    io.add_argument(
        "--source",
        default=default("source"),
        metavar="NAME",
        help="where the images come from: 'spreadsheet' (image URLs, the default) or a local "
        "dataset source; '--source list' prints them",
    )
    io.add_argument(
        "--spreadsheet",
        nargs="+",
        metavar="FILE",
        help="xlsx/csv/tsv/txt files (the spreadsheet source)",
    )
    io.add_argument(
        "--input", metavar="PATH", help="the dataset's unpacked root folder (local sources)"
    )
    io.add_argument("--output-dir", metavar="DIR", help="records directory (required)")
    io.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="download and processed-image cache (default: OUTPUT_DIR/cache); share it "
        "between builds",
    )


def _folds(text: str) -> int | str:
    if text.strip().lower() == "loso":
        return "loso"
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value == 0 or value >= 2:
        return value
    raise invalid("--folds", "an integer >= 2, 'loso' or 0", text, error=argparse.ArgumentTypeError)


def _add_label_args(p: argparse.ArgumentParser) -> None:
    lab = p.add_argument_group("labels and splits")
    lab.add_argument(
        "--aus",
        type=_aus,
        metavar="SET",
        help="AU columns to store: a set name (emotionet11, emotionet12, emotionet23, disfa12, "
        "bp4d12, synthfacs15, all60) or numbers like 1,2,4 (default: every AU column found)",
    )
    lab.add_argument(
        "--drop-unknown",
        action="store_true",
        help="skip rows with any unknown (999) selected AU, as Bartissol 2017 did",
    )
    lab.add_argument(
        "--val-fraction",
        type=_number(float, "--val-fraction", min=0, max=1),
        default=default("val_fraction"),
        metavar="F",
        help=f"validation fraction when the source has no partition of its own (default "
        f"{DEFAULT_VAL_FRACTION}, or 0 when folds are written)",
    )
    lab.add_argument(
        "--test-fraction",
        type=_number(float, "--test-fraction", min=0, max=1),
        default=default("test_fraction"),
        metavar="F",
        help="test fraction when the source has no partition of its own (default %(default)s)",
    )
    lab.add_argument(
        "--split-by",
        choices=SPLIT_BY,
        default=default("split_by"),
        help="assign splits by image id or by subject (default: id for spreadsheets, subject "
        "for local sources; examples without a subject fall back to their id)",
    )
    lab.add_argument(
        "--folds",
        type=_folds,
        default=default("folds"),
        metavar="K|loso",
        help="subject-independent folds stored in meta/fold: K >= 2, 'loso' (one per subject) "
        "or 0 for none (default: the source's standard protocol)",
    )
    lab.add_argument(
        "--seed",
        type=_number(int, "--seed", min=0),
        default=default("seed"),
        metavar="N",
        help="split seed (default %(default)s)",
    )
    shard = lab.add_mutually_exclusive_group()
    shard.add_argument(
        "--num-shards", type=_number(int, "--num-shards", min=1), metavar="N",
        help="shards per split",
    )  # fmt: skip
    shard.add_argument(
        "--examples-per-shard",
        type=_number(int, "--examples-per-shard", min=1),
        metavar="N",
        help=f"examples per shard (default {DEFAULT_EXAMPLES_PER_SHARD})",
    )


def _add_image_args(p: argparse.ArgumentParser) -> None:
    img = p.add_argument_group("images")
    img.add_argument(
        "--image-size",
        type=_number(int, "--image-size", min=8),
        metavar="N",
        help="downscale so the shorter side is at most N (aspect kept)",
    )
    img.add_argument(
        "--jpeg-quality",
        type=_number(int, "--jpeg-quality", min=1, max=100),
        default=default("jpeg_quality"),
        metavar="Q",
        help="JPEG quality 1..100 (default %(default)s)",
    )
    img.add_argument(
        "--face-crop",
        choices=FACE_CROPS,
        default=default("face_crop"),
        help="crop the largest Viola-Jones face (default %(default)s)",
    )
    img.add_argument(
        "--face-margin",
        type=_number(float, "--face-margin", min=0),
        default=default("face_margin"),
        metavar="F",
        help="margin around the face, fraction of its size (default %(default)s)",
    )
    img.add_argument(
        "--face-fallback",
        choices=FACE_FALLBACKS,
        default=default("face_fallback"),
        help="no face found: keep the whole image or drop the row (default %(default)s)",
    )
    img.add_argument(
        "--equalize", action="store_true", help="histogram equalisation (Athanasiadis 2022)"
    )
    img.add_argument(
        "--reencode-jpeg",
        action="store_true",
        help="re-encode every image (default: upright RGB JPEGs needing no change are kept as "
        "downloaded, after a full decode)",
    )
    img.add_argument(
        "--workers",
        type=_number(int, "--workers", min=0),
        metavar="N",
        help=f"image-processing processes (default: CPU count, at most {MAX_DEFAULT_WORKERS}; "
        "0 in-process)",
    )


def _add_download_args(p: argparse.ArgumentParser) -> None:
    net = p.add_argument_group("downloading")
    net.add_argument(
        "--concurrency",
        type=_number(int, "--concurrency", min=1),
        default=default("concurrency"),
        metavar="N",
        help="download threads (default %(default)s)",
    )
    net.add_argument(
        "--per-host",
        type=_number(int, "--per-host", min=1),
        metavar="N",
        help=f"concurrent requests per host (default min(concurrency, {DownloadOptions.per_host}))",
    )
    net.add_argument(
        "--timeout",
        type=_number(float, "--timeout", gt=0),
        default=default("timeout"),
        metavar="S",
        help="read timeout, seconds (default %(default)s)",
    )
    net.add_argument(
        "--retries",
        type=_number(int, "--retries", min=0),
        default=default("retries"),
        metavar="N",
        help="retries on 429/5xx/timeouts/connection errors (default %(default)s)",
    )
    net.add_argument(
        "--backoff",
        type=_number(float, "--backoff", min=0),
        default=default("backoff"),
        metavar="S",
        help="base retry delay, doubled per attempt, with jitter (default %(default)s)",
    )
    net.add_argument(
        "--max-retry-after",
        type=_number(float, "--max-retry-after", min=0),
        default=default("max_retry_after"),
        metavar="S",
        help="cap on a server's Retry-After, seconds (default %(default)s)",
    )
    net.add_argument(
        "--max-bytes",
        type=_byte_size,
        default=default("max_bytes"),
        metavar="N",
        help=f"largest image accepted, e.g. 20M (default {_show_bytes(default('max_bytes'))})",
    )
    net.add_argument(
        "--allow-private-hosts",
        action="store_true",
        help="allow private/loopback/link-local addresses (refused by default)",
    )
    net.add_argument(
        "--retry-failed",
        action="store_true",
        help="re-attempt sources that failed in an earlier run (default: reuse their failure)",
    )
    net.add_argument(
        "--max-failure-rate",
        type=_number(float, "--max-failure-rate", min=0, max=1),
        default=default("max_failure_rate"),
        metavar="F",
        help="exit 3 (after writing everything) when more than this fraction of the attempted "
        "sources failed (default %(default)s; 1 never fails the build)",
    )


def _add_runner_args(p: argparse.ArgumentParser) -> None:
    run = p.add_argument_group("runner (docs/scale.md)")
    run.add_argument(
        "--runner",
        choices=RUNNERS,
        default=default("runner"),
        help="'local': this machine's processes (default); 'beam': fetch/process and shard "
        "writing as Apache Beam pipelines (pip install 'fer-tf[beam]'), same records",
    )
    run.add_argument(
        "--beam-options",
        dest="beam_options_line",
        metavar="FLAGS",
        help="Beam's own pipeline flags as one string, written with '=': "
        '--beam-options="--runner=DirectRunner --direct_num_workers=2" (default: the '
        "DirectRunner); Dataflow/Flink/Spark flags pass through unchanged",
    )
    run.add_argument(
        "--beam-option",
        dest="beam_option_list",
        action="append",
        default=[],
        metavar="FLAG",
        help="one Beam pipeline flag, written with '=' (--beam-option=--project=my-project); "
        "repeatable, added after --beam-options",
    )


def _beam_flags(args: argparse.Namespace) -> list[str]:
    """``--beam-options`` split like a shell line, then every ``--beam-option``."""
    import shlex

    line = args.beam_options_line
    try:
        flags = shlex.split(line) if line else []
    except ValueError as exc:
        raise ValueError(
            f"The '--beam-options' parameter must split like a shell line ({exc}). "
            f"Got {line!r} instead."
        ) from None
    return flags + list(args.beam_option_list)


def _add_report_args(p: argparse.ArgumentParser) -> None:
    out = p.add_argument_group("reporting")
    bar = out.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=default("progress"),
        help="show progress on stderr: a bar in a terminal, a line per 10%% otherwise (default)",
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="no progress")
    out.add_argument(
        "--summary-json", metavar="FILE", help="also write the summary as JSON to FILE"
    )


#: Prefix of the argparse ``dest`` of source-option flags (``src_class_names``).
_SRC = "src_"


def _source_flags(taken: set[str]) -> dict[str, dict[str, Any]]:
    """Every registered source's options as flags: flag -> option, group, sources taking it.

    A name that clashes with a build flag becomes ``--<source>-<name>``; a name declared by several
    sources is one flag (its first declaration's type), listed under the first source's group.
    """
    from fer_tf.sources.base import get_source, list_sources

    flags: dict[str, dict[str, Any]] = {}
    for name in list_sources():
        for opt in get_source(name).source_options:
            flag = "--" + opt.name.replace("_", "-")
            if flag in taken:
                flag = f"--{name}-{opt.name.replace('_', '-')}"
            entry = flags.setdefault(flag, {"option": opt, "group": name, "sources": []})
            entry["sources"].append(name)
    return flags


def _add_source_args(p: argparse.ArgumentParser) -> None:
    taken = {s for a in p._actions for s in a.option_strings}
    flags = _source_flags(taken)
    groups: dict[str, Any] = {}
    for flag, entry in flags.items():
        opt, src = entry["option"], entry["group"]
        if src not in groups:
            groups[src] = p.add_argument_group(f"--source {src}")
        also = [s for s in entry["sources"] if s != src]
        help_ = opt.help + (f" (also: {', '.join(also)})" if also else "")
        if opt.default is not None and opt.type is not bool:
            help_ += f" (default {opt.default})"
        kwargs: dict[str, Any] = {"dest": _SRC + flag[2:].replace("-", "_"), "default": None}
        if opt.type is bool:
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = opt.type if opt.type in (int, float, str) else _as(opt.type)
            kwargs["metavar"] = opt.name.upper()
            if opt.choices is not None:
                kwargs["choices"] = opt.choices
        groups[src].add_argument(flag, help=help_, **kwargs)
        entry["dest"] = kwargs["dest"]
    p.set_defaults(_source_flags=flags)


def _as(kind: Any) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        return kind(text)

    return convert


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (imports nothing heavy); defaults come from ``BuildOptions``.

    Returns:
        An :class:`argparse.ArgumentParser`.
    """
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Read EmotioNet-style spreadsheets (xlsx/csv/tsv) of image URLs and labels, or a "
            "local dataset (--source NAME --input ROOT; --source list), process the images "
            "concurrently through a cache (resumable: run the same command again after an "
            "interruption), and write validated, sharded schema-v2 TFRecords with "
            "manifest.json, errors.jsonl and skipped.jsonl."
        ),
        epilog=(
            "Exit status: 0 completed (failed URLs are listed in errors.jsonl), 1 fatal error, "
            "2 bad command line, 3 --max-failure-rate exceeded, 130 interrupted. "
            "See docs/cli.md, docs/records.md and docs/datasets.md."
        ),
    )
    _add_io_args(p)
    _add_label_args(p)
    _add_image_args(p)
    _add_download_args(p)
    _add_runner_args(p)
    _add_report_args(p)
    _add_source_args(p)
    return p


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _check_paths(args: argparse.Namespace) -> None:
    """Name each bad path as the user wrote it (``--output-dir``), with what is there instead."""
    from fer_tf.build import BuildError
    from fer_tf.sources.spreadsheet import SpreadsheetError

    for path in args.spreadsheet or []:
        check_path("--spreadsheet", path, kind="file", error=SpreadsheetError)
    check_writable_dir("--output-dir", args.output_dir, error=BuildError)
    if args.cache_dir is not None:
        check_writable_dir("--cache-dir", args.cache_dir, error=BuildError)


def _source_options(args: argparse.Namespace) -> dict[str, Any]:
    """The chosen source's flags as its options; a flag of another source is a usage error."""
    chosen: dict[str, Any] = {}
    for flag, entry in args._source_flags.items():
        value = getattr(args, entry["dest"])
        if value is None:
            continue
        if args.source not in entry["sources"]:
            takers = ", ".join(f"'{s}'" for s in entry["sources"])
            raise ValueError(
                f"The '{flag}' flag is an option of source {takers}, not of '{args.source}'. "
                f"Drop it, or pass --source {entry['sources'][0]}."
            )
        chosen[entry["option"].name] = value
    return chosen


def _check_command(args: argparse.Namespace) -> None:
    """Required flags of the chosen source (argparse cannot express 'one of, per source')."""
    if args.output_dir is None:
        raise ValueError("The '--output-dir' parameter is required.")
    if args.source == SPREADSHEET:
        if not args.spreadsheet:
            raise ValueError(
                "The '--spreadsheet' parameter is required for the spreadsheet source (or pass "
                "--source NAME --input ROOT for a local dataset; --source list names them)."
            )
        if args.input is not None:
            raise ValueError(
                "The '--input' parameter is for local dataset sources; the spreadsheet source "
                "reads '--spreadsheet'. Pass --source NAME with --input (--source list)."
            )
        return
    if args.spreadsheet:
        raise ValueError(
            f"The '--spreadsheet' parameter is for the spreadsheet source, not '{args.source}' "
            "(which reads its dataset root from '--input')."
        )
    if args.input is None:
        raise ValueError(
            f"The '--input' parameter is required for source '{args.source}': the dataset's "
            "unpacked root folder."
        )


def _options(args: argparse.Namespace) -> BuildOptions:
    _check_command(args)
    given = {f.name: getattr(args, f.name) for f in fields(BuildOptions) if hasattr(args, f.name)}
    given["source_options"] = _source_options(args)
    given["beam_options"] = _beam_flags(args)
    return BuildOptions(spreadsheets=args.spreadsheet, **given)


def _list_sources() -> int:
    from fer_tf.sources.base import list_sources

    rows = {SPREADSHEET: "EmotioNet-style spreadsheets of image URLs (--spreadsheet; default)"}
    rows.update(list_sources())
    width = max(len(n) for n in rows)
    for name, text in rows.items():
        print(f"{name:<{width}}  {text}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> tuple[int, Any]:
    """Build; map every expected failure to an exit status and one error line."""
    from fer_tf.build import BuildError, FailureRateExceeded, build_records
    from fer_tf.sources.base import SourceError
    from fer_tf.sources.spreadsheet import SpreadsheetError

    try:
        options = _options(args)
    except ValueError as exc:  # SourceError too: an unknown source or a bad source option
        _error(str(exc))
        return EXIT_USAGE, None
    try:
        _check_paths(args)
        return EXIT_OK, build_records(options)
    except FailureRateExceeded as exc:
        print(exc.summary.table())
        _error(str(exc))
        return EXIT_FAILURE_RATE, exc.summary
    except (SpreadsheetError, SourceError, BuildError) as exc:
        _error(str(exc))
        return EXIT_FATAL, None
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE, None
    except OSError as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_FATAL, None
    except KeyboardInterrupt:
        _error("interrupted; run the same command again to resume (nothing cached is lost)")
        return EXIT_INTERRUPTED, None


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status (see the module docstring).
    """
    args = build_parser().parse_args(argv)
    if args.source == "list":
        return _list_sources()
    code, summary = _run(args)
    if summary is None:
        return code
    if code == EXIT_OK:
        print(summary.table())
    if args.summary_json:
        try:
            with open(args.summary_json, "w", encoding="utf-8") as fh:
                json.dump(summary.to_json(), fh, indent=2, sort_keys=True)
        except OSError as exc:
            _error(f"cannot write --summary-json '{args.summary_json}': {exc}")
            return EXIT_FATAL
    return code


if __name__ == "__main__":
    sys.exit(main())
