"""What a build did (:class:`BuildSummary`) and how it can fail (:class:`BuildError`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["BuildError", "FailureRateExceeded", "BuildSummary"]


class BuildError(RuntimeError):
    """A fatal problem: unreadable input, unwritable output, interrupted run."""


class FailureRateExceeded(BuildError):
    """More sources failed than ``max_failure_rate`` allows (the records were still written).

    Attributes:
        summary: the :class:`BuildSummary` of the run.
    """

    def __init__(self, message: str, summary: BuildSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass
class BuildSummary:
    """What a build did.

    Attributes:
        output_dir: the records directory.
        rows: spreadsheet data rows (blank rows and headers excluded).
        written: examples written (all splits).
        failed: sources that failed (download or decode), see ``failures``.
        skipped: rows skipped before download or after processing, see ``skipped_by_reason``.
        failures: failed sources per category (every category listed, zeros included).
        skipped_by_reason: skipped rows per reason.
        splits: examples per split.
        shards: shard file names per split.
        downloaded: originals fetched over the network in this run.
        cached: sources answered from the cache (originals or remembered failures).
        processed: images decoded/encoded in this run (the rest came from the processed cache).
        frames_decoded: video frames decoded in this run (local video sources).
        elapsed: seconds.
        manifest: path of ``manifest.json``.
        errors: path of ``errors.jsonl``.
        warnings: notes for the user (e.g. selected AUs missing from every spreadsheet).
        timings: seconds per phase (``read``, ``fetch_process``, ``write``).
    """

    output_dir: str
    rows: int = 0
    written: int = 0
    failed: int = 0
    skipped: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    shards: dict[str, list[str]] = field(default_factory=dict)
    downloaded: int = 0
    cached: int = 0
    processed: int = 0
    frames_decoded: int = 0
    elapsed: float = 0.0
    manifest: str = ""
    errors: str = ""
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failure_rate(self) -> float:
        """``failed / (rows - skipped)`` (0 when nothing was attempted)."""
        attempted = self.rows - self.skipped
        return self.failed / attempted if attempted > 0 else 0.0

    def table(self) -> str:
        """A plain-text summary table."""
        lines = [
            f"records: {self.output_dir}",
            f"  {'rows':<28}{self.rows:>10}",
            f"  {'written':<28}{self.written:>10}",
        ]
        for split, n in self.splits.items():
            lines.append(f"    {split:<26}{n:>10}  ({len(self.shards.get(split, []))} shards)")
        lines.append(f"  {'failed':<28}{self.failed:>10}")
        for cat, n in self.failures.items():
            if n:
                lines.append(f"    {cat:<26}{n:>10}")
        lines.append(f"  {'skipped':<28}{self.skipped:>10}")
        for reason, n in self.skipped_by_reason.items():
            if n:
                lines.append(f"    {reason:<26}{n:>10}")
        lines += [
            f"  {'downloaded (network)':<28}{self.downloaded:>10}",
            f"  {'from cache':<28}{self.cached:>10}",
            f"  {'processed (decoded)':<28}{self.processed:>10}",
            *(
                [f"  {'video frames decoded':<28}{self.frames_decoded:>10}"]
                if self.frames_decoded
                else []
            ),
            f"  {'elapsed (s)':<28}{self.elapsed:>10.1f}",
            f"  manifest: {self.manifest}",
            f"  errors:   {self.errors}",
        ]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict."""
        d = dict(self.__dict__)
        d["failure_rate"] = self.failure_rate
        return d
