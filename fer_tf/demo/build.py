"""The demo's records step: a fault-injecting loopback mirror and ``fer-tf-build-records``, with a
check that every injected fault landed where it should (or SynthFACS writing records directly)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEMO_FAULTS",
    "DEMO_VARIANTS",
    "BuildResult",
    "build_via_mirror",
    "make_records_direct",
]

#: Faults injected into the demo's mirror (one URL each); see :mod:`fer_tf.testing.mirror`.
DEMO_FAULTS: tuple[str, ...] = (
    "404",
    "410",
    "503",
    "flaky",
    "reset",
    "redirect",
    "html",
    "truncated",
)
#: Image variants served for a few URLs (each must decode to the same face).
DEMO_VARIANTS: tuple[str, ...] = ("png_alpha", "gif", "webp", "cmyk", "exif_rotated", "bmp")
#: AU columns stored in the records (the training config selects its own subset).
RECORD_AUS = "synthfacs15"
VAL_FRACTION = 0.25
UNKNOWN_FRACTION = 0.05
#: The mirror's port. Fixed because a record's id is the SHA-1 of its URL, port included, and the
#: build orders records by id: on another port the training order, and so the metrics, differ.
MIRROR_PORT = 47111


def say(msg: str) -> None:
    """One ``[demo]`` progress line on stdout."""
    print(f"[demo] {msg}", flush=True)


def subprocess_env() -> dict[str, str]:
    """Subprocess environment: TensorFlow's C++ info logs off unless the user set a level."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@dataclass
class BuildResult:
    """What the records step did.

    Attributes:
        records_dir: the records directory.
        how: one line describing the path taken.
        summary: ``fer-tf-build-records --summary-json`` content (empty for ``--no-download``).
        faults: one dict per injected fault or variant: ``index``, ``url``, ``kind``
            (``fault``/``variant``/``extra``), ``name``, ``expected``, ``observed``,
            ``attempts``, ``detail``, ``ok``.
        command: the build command line (empty for ``--no-download``).
        problems: self-check failures (empty when everything added up).
    """

    records_dir: Path
    how: str
    summary: dict[str, Any] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _plan(n: int) -> tuple[dict[int, str], dict[int, str]]:
    """Spread :data:`DEMO_FAULTS` and :data:`DEMO_VARIANTS` evenly over ``n`` items."""
    kinds = [("fault", f) for f in DEMO_FAULTS] + [("variant", v) for v in DEMO_VARIANTS]
    if n < 2 * len(kinds):
        raise ValueError(
            f"The demo needs at least {2 * len(kinds)} faces to inject its "
            f"{len(DEMO_FAULTS)} faults and {len(DEMO_VARIANTS)} variants. Got --faces {n}."
        )
    faults: dict[int, str] = {}
    variants: dict[int, str] = {}
    step = n / len(kinds)
    for k, (kind, name) in enumerate(kinds):
        idx = int((k + 0.5) * step)
        (faults if kind == "fault" else variants)[idx] = name
    return faults, variants


def make_records_direct(out: Path, *, n: int, size: int, seed: int) -> BuildResult:
    """``--no-download``: SynthFACS writes the records itself (no mirror, no downloader).

    Args:
        out: the records directory (replaced).
        n: faces.
        size: image size.
        seed: SynthFACS seed.

    Returns:
        A :class:`BuildResult` without a build summary.
    """
    from fer_tf.synthfacs import write_records

    if out.exists():
        shutil.rmtree(out)
    write_records(
        out,
        n,
        seed=seed,
        size=size,
        aus=RECORD_AUS,
        val_fraction=VAL_FRACTION,
        num_shards=2,
        unknown_fraction=UNKNOWN_FRACTION,
    )
    return BuildResult(out, "SynthFACS `write_records` directly (`--no-download`)")


def _write_sheet(mirror: Any, sheet: Path) -> tuple[str, str]:
    """The mirror's spreadsheet plus one duplicate row and one bad row; returns their URLs."""
    rows = mirror.rows("manual", header=True, meta=True)
    good = next(it for it in mirror.items if it.fault is None and it.variant == "jpeg")
    duplicate = list(rows[1 + good.index])
    bad = list(duplicate)
    bad[0] = mirror.base_url + "/img/bad-row.jpg"
    bad[1] = 2  # AU1 = 2: not in {0, 1, 999}
    mirror.write_spreadsheet(
        sheet, layout="manual", header=True, meta=True, extra_rows=[duplicate, bad]
    )
    return duplicate[0], bad[0]


def _build_command(
    sheet: Path, records: Path, summary_path: Path, *, size: int, seed: int, workers: int | None
) -> list[str]:
    """``fer-tf-build-records`` over loopback, split by subject, with short timeouts."""
    cmd = [
        sys.executable,
        "-m",
        "fer_tf.cli.build_records",
        "--spreadsheet",
        str(sheet),
        "--output-dir",
        str(records),
        "--aus",
        RECORD_AUS,
        "--split-by",
        "subject",
        "--val-fraction",
        str(VAL_FRACTION),
        "--seed",
        str(seed),
        "--num-shards",
        "2",
        "--image-size",
        str(size),
        "--allow-private-hosts",
        "--timeout",
        "5",
        "--retries",
        "2",
        "--backoff",
        "0.1",
        "--no-progress",
        "--summary-json",
        str(summary_path),
    ]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return cmd


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _fault_table(
    items: list[Any],
    served: dict[str, int],
    records: Path,
    extras: tuple[str, str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per injected fault, variant and extra row: expected vs observed category."""
    errors = {e["source"]: e for e in _read_jsonl(records / "errors.jsonl")}
    skipped = {(s["source"], s["reason"]): s for s in _read_jsonl(records / "skipped.jsonl")}
    table: list[dict[str, Any]] = []
    problems: list[str] = []
    for it in items:
        if it.fault is None and it.variant == "jpeg":
            if it.url in errors:
                problems.append(f"good URL {it.url} failed: {errors[it.url]['category']}")
            continue
        e = errors.get(it.url, {})
        observed = e.get("category")
        row = {
            "index": it.index,
            "url": it.url,
            "kind": "fault" if it.fault else "variant",
            "name": it.fault or it.variant,
            "expected": it.expected_category,
            "observed": observed,
            "attempts": e.get("attempts", served[it.url]),
            "detail": e.get("detail", ""),
            "ok": observed == it.expected_category,
        }
        table.append(row)
        if not row["ok"]:
            problems.append(
                f"{row['name']} at {it.url}: expected {it.expected_category}, got {observed}"
            )
    for url, reason in zip(extras, ("duplicate", "bad_row")):
        s = skipped.get((url, reason))
        table.append(
            {
                "index": "",
                "url": url,
                "kind": "extra",
                "name": f"{reason} row",
                "expected": f"skipped: {reason}",
                "observed": f"skipped: {reason}" if s else None,
                "attempts": 0,
                "detail": (s or {}).get("detail", ""),
                "ok": s is not None,
            }
        )
        if s is None:
            problems.append(f"the {reason} row ({url}) was not reported in skipped.jsonl")
    return table, problems


def _check_counts(summary: dict[str, Any], n: int, expected_failed: int) -> list[str]:
    """rows = written + failed + skipped, with the numbers of failures and skips planned."""
    problems = []
    counts = (summary["rows"], summary["written"], summary["failed"], summary["skipped"])
    if counts[0] != counts[1] + counts[2] + counts[3]:
        problems.append("rows != written + failed + skipped: {} != {} + {} + {}".format(*counts))
    if summary["rows"] != n + 2 or summary["failed"] != expected_failed or summary["skipped"] != 2:
        problems.append(
            f"expected {n + 2} rows, {expected_failed} failed, 2 skipped; got "
            f"{summary['rows']}, {summary['failed']}, {summary['skipped']}"
        )
    return problems


def _start(mirror: Any) -> None:
    """Serve on :data:`MIRROR_PORT`, or on a free port (with a warning) when it is taken."""
    try:
        mirror.start()
    except OSError as e:
        say(
            f"port {MIRROR_PORT} is not available ({e.strerror or e}); serving on a free port: "
            "record ids hash the URL, so the training order and the metrics will differ from "
            f"runs on port {MIRROR_PORT}"
        )
        mirror.start(port=0)


def build_via_mirror(
    work: Path, *, n: int, size: int, seed: int, workers: int | None = None
) -> BuildResult:
    """Serve ``n`` SynthFACS faces on loopback and build records with ``fer-tf-build-records``.

    The mirror is always stopped, whatever happens (context manager).

    Args:
        work: demo output directory; writes ``urls.xlsx``, ``records/``, ``build_summary.json``
            and ``faults.json`` in it.
        n: faces (URLs) served.
        size: image size served (and the ``--image-size`` cap of the build).
        seed: SynthFACS seed (also the split seed).
        workers: ``--workers`` of the build (None: the CLI's default).

    Returns:
        A :class:`BuildResult`; ``problems`` lists any self-check failure.

    Raises:
        RuntimeError: when ``fer-tf-build-records`` exits with a non-zero status.
    """
    from fer_tf.testing.mirror import Mirror

    records = work / "records"
    if records.exists():
        shutil.rmtree(records)
    summary_path = work / "build_summary.json"
    faults, variants = _plan(n)
    say(f"rendering {n} SynthFACS faces for the loopback mirror ...")
    mirror = Mirror(
        n,
        faults=faults,
        variants=variants,
        seed=seed,
        size=size,
        aus=RECORD_AUS,
        unknown_fraction=UNKNOWN_FRACTION,
        retry_after=1,
        flaky_failures=1,
        port=MIRROR_PORT,
    )
    _start(mirror)
    with mirror:
        sheet = work / "urls.xlsx"
        extras = _write_sheet(mirror, sheet)
        say(
            f"mirror on {mirror.base_url}: {n} URLs in {sheet} ({len(faults)} faults, "
            f"{len(variants)} other image formats, 1 duplicate row, 1 bad row)"
        )
        cmd = _build_command(sheet, records, summary_path, size=size, seed=seed, workers=workers)
        say("records: fer-tf-build-records " + " ".join(cmd[3:]))
        rc = subprocess.call(cmd, env=subprocess_env())
        if rc != 0:
            raise RuntimeError(f"fer-tf-build-records exited with status {rc}; see its output.")
        items = list(mirror.items)
        served = {it.url: mirror.requests(it.path) for it in items}

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    table, problems = _fault_table(items, served, records, extras)
    problems += _check_counts(summary, n, sum(1 for it in items if it.expected_category))
    (work / "faults.json").write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    how = (
        f"SynthFACS loopback mirror ({n} URLs) → `fer-tf-build-records` (real downloader, "
        "`--split-by subject`)"
    )
    return BuildResult(records, how, summary, table, cmd, problems)
