"""``fer-tf-build-records``: EmotioNet-style spreadsheets of image URLs -> sharded TFRecords.

Thin: parse the command line, call :func:`fer_tf.data.build_records`, print the summary. Parsing
(and ``--help``) imports nothing heavy; the whole run never imports TensorFlow.

Exit status: 0 when the run completed (failed URLs are data, listed in ``errors.jsonl``); 1 for a
fatal error (unreadable spreadsheet, output not writable); 2 for a bad command line; 3 when
``--max-failure-rate`` was exceeded (the records are still written); 130 when interrupted (run the
same command again to resume).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_FATAL, EXIT_USAGE, EXIT_FAILURE_RATE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
PROG = "fer-tf-build-records"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)


def _byte_size(text: str) -> int:
    """``"20M"``, ``"512k"``, ``"1048576"`` -> bytes."""
    m = _SIZE.match(text)
    if not m:
        raise argparse.ArgumentTypeError(
            f"must be a byte count like 20000000, 512K or 20M. Got {text!r}."
        )
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]
    value = int(float(m.group(1)) * scale)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 byte. Got {text!r}.")
    return value


def _checked(
    cast: Callable[[str], Any], bad: str, ok: Callable[[Any], bool], out_of_range: str
) -> Callable[[str], Any]:
    """An argparse ``type``: ``cast`` the text, then require ``ok``; each failure has its message."""

    def parse(text: str) -> Any:
        try:
            v = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{bad} Got {text!r}.") from None
        if not ok(v):  # `not` so that NaN fails every bound
            raise argparse.ArgumentTypeError(f"{out_of_range} Got {text!r}.")
        return v

    return parse


_fraction = _checked(
    float, "must be a number in [0, 1].", lambda v: 0.0 <= v <= 1.0, "must be a number in [0, 1]."
)
_positive_int = _checked(
    int, "must be an integer >= 1.", lambda v: v >= 1, "must be an integer >= 1."
)
_nonneg_int = _checked(
    int, "must be an integer >= 0.", lambda v: v >= 0, "must be an integer >= 0."
)
_seconds = _checked(
    float, "must be a number of seconds.", lambda v: v >= 0, "must be >= 0 seconds."
)
_positive_seconds = _checked(
    float, "must be a number of seconds.", lambda v: v > 0, "must be > 0 seconds."
)


def _aus(text: str) -> str:
    from fer_tf.facs import parse_aus

    try:
        parse_aus(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (imports nothing heavy).

    Returns:
        An :class:`argparse.ArgumentParser`.
    """
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Read EmotioNet-style spreadsheets (xlsx/csv/tsv) of image URLs and labels, download "
            "the images concurrently into a cache (resumable: run the same command again after "
            "an interruption), and write validated, sharded schema-v1 TFRecords with "
            "manifest.json, errors.jsonl and skipped.jsonl."
        ),
        epilog=(
            "Exit status: 0 completed (failed URLs are listed in errors.jsonl), 1 fatal error, "
            "2 bad command line, 3 --max-failure-rate exceeded, 130 interrupted. "
            "See docs/cli.md and docs/records.md."
        ),
    )
    io = p.add_argument_group("input and output")
    io.add_argument(
        "--spreadsheet", nargs="+", required=True, metavar="FILE", help="xlsx/csv/tsv/txt files"
    )
    io.add_argument("--output-dir", required=True, metavar="DIR", help="records directory")
    io.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="download cache (default: OUTPUT_DIR/cache); share it between builds",
    )
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
        help="skip rows with any unknown (999) selected AU, as seed 001 did",
    )
    lab.add_argument(
        "--val-fraction",
        type=_fraction,
        default=0.1,
        metavar="F",
        help="validation fraction (default 0.1)",
    )
    lab.add_argument(
        "--split-by",
        choices=("id", "subject"),
        default="id",
        help="assign splits by image id or by subject (default id)",
    )
    lab.add_argument("--seed", type=_nonneg_int, default=0, metavar="N", help="split seed")
    shard = lab.add_mutually_exclusive_group()
    shard.add_argument("--num-shards", type=_positive_int, metavar="N", help="shards per split")
    shard.add_argument(
        "--examples-per-shard",
        type=_positive_int,
        metavar="N",
        help="examples per shard (default 1024)",
    )
    img = p.add_argument_group("images")
    img.add_argument(
        "--image-size",
        type=_positive_int,
        metavar="N",
        help="downscale so the shorter side is at most N (aspect kept)",
    )
    img.add_argument(
        "--jpeg-quality",
        type=_positive_int,
        default=95,
        metavar="Q",
        help="JPEG quality 1..100 (default 95)",
    )
    img.add_argument(
        "--face-crop",
        choices=("none", "haar"),
        default="none",
        help="crop the largest Viola-Jones face (default none)",
    )
    img.add_argument(
        "--face-margin",
        type=float,
        default=0.2,
        metavar="F",
        help="margin around the face, fraction of its size (default 0.2)",
    )
    img.add_argument(
        "--face-fallback",
        choices=("keep", "drop"),
        default="keep",
        help="no face found: keep the whole image or drop the row (default keep)",
    )
    img.add_argument("--equalize", action="store_true", help="histogram equalisation (seed 004)")
    img.add_argument(
        "--reencode-jpeg",
        action="store_true",
        help="re-encode every image (default: upright RGB JPEGs needing no change are kept as "
        "downloaded, after a full decode)",
    )
    img.add_argument(
        "--workers",
        type=_nonneg_int,
        metavar="N",
        help="image-processing processes (default: CPU count, at most 8; 0 in-process)",
    )
    net = p.add_argument_group("downloading")
    net.add_argument(
        "--concurrency", type=_positive_int, default=32, metavar="N", help="download threads (32)"
    )
    net.add_argument(
        "--per-host",
        type=_positive_int,
        metavar="N",
        help="concurrent requests per host (default min(concurrency, 16))",
    )
    net.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=10.0,
        metavar="S",
        help="read timeout (default 10)",
    )
    net.add_argument(
        "--retries",
        type=_nonneg_int,
        default=3,
        metavar="N",
        help="retries on 429/5xx/timeouts/connection errors (default 3)",
    )
    net.add_argument(
        "--backoff",
        type=_seconds,
        default=0.5,
        metavar="S",
        help="base retry delay, doubled per attempt, with jitter (default 0.5)",
    )
    net.add_argument(
        "--max-retry-after",
        type=_seconds,
        default=60.0,
        metavar="S",
        help="cap on a server's Retry-After (default 60)",
    )
    net.add_argument(
        "--max-bytes",
        type=_byte_size,
        default=20 * 1024 * 1024,
        metavar="N",
        help="largest image accepted, e.g. 20M (default 20M)",
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
        type=_fraction,
        metavar="F",
        help="exit 3 when more than this fraction of the attempted sources failed",
    )
    out = p.add_argument_group("reporting")
    bar = out.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="progress bar"
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    out.add_argument(
        "--summary-json", metavar="FILE", help="also write the summary as JSON to FILE"
    )
    return p


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Args:
        argv: arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status (see the module docstring).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.jpeg_quality > 100:
        parser.error(f"argument --jpeg-quality: must be in 1..100. Got {args.jpeg_quality}.")

    from fer_tf.data.build import BuildError, FailureRateExceeded, build_records
    from fer_tf.data.download import DownloadOptions
    from fer_tf.data.spreadsheet import SpreadsheetError

    concurrency = args.concurrency
    options = DownloadOptions(
        concurrency=concurrency,
        per_host=args.per_host if args.per_host is not None else min(concurrency, 16),
        timeout=args.timeout,
        retries=args.retries,
        backoff=args.backoff,
        retry_after_max=args.max_retry_after,
        max_bytes=args.max_bytes,
        allow_private_hosts=args.allow_private_hosts,
    )
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    code = EXIT_OK
    try:
        summary = build_records(
            args.spreadsheet,
            args.output_dir,
            cache_dir=args.cache_dir,
            aus=args.aus,
            drop_unknown=args.drop_unknown,
            val_fraction=args.val_fraction,
            split_by=args.split_by,
            seed=args.seed,
            num_shards=args.num_shards,
            examples_per_shard=args.examples_per_shard,
            image_size=args.image_size,
            jpeg_quality=args.jpeg_quality,
            face_crop=args.face_crop,
            face_margin=args.face_margin,
            face_fallback=args.face_fallback,
            equalize=args.equalize,
            reencode_jpeg=args.reencode_jpeg,
            workers=args.workers,
            retry_failed=args.retry_failed,
            max_failure_rate=args.max_failure_rate,
            download_options=options,
            progress=progress,
        )
    except FailureRateExceeded as exc:
        summary = exc.summary
        print(summary.table())
        _error(str(exc))
        code = EXIT_FAILURE_RATE
    except SpreadsheetError as exc:
        _error(str(exc))
        return EXIT_FATAL
    except BuildError as exc:
        _error(str(exc))
        return EXIT_FATAL
    except ValueError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except OSError as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_FATAL
    except KeyboardInterrupt:
        _error("interrupted; run the same command again to resume (nothing cached is lost)")
        return EXIT_INTERRUPTED
    else:
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
