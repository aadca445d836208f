"""Phase 3a: splits and subject-independent folds.

Splits: an example keeps its dataset's own partition (``train``/``val``/``test``) when the source
gives one; otherwise a hash of its subject (``split_by="subject"``) or id, with the seed, puts it in
``test`` (``test_fraction``), ``val`` (``val_fraction``) or ``train``, so reruns agree.

Folds (``meta/fold``): subject-independent and balanced in subjects. The subjects are sorted,
shuffled with the seed and dealt round-robin to K folds (``folds=K``), or each gets its own fold
(``folds="loso"``, leave one subject out). Examples without a subject count as their own unit
(reported). The build is not repeated per fold: training selects folds from one set of records.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fer_tf.build.ingest import LocalExample
from fer_tf.build.options import BuildOptions
from fer_tf.build.summary import BuildError

__all__ = ["split_of", "assign_folds", "FoldPlan", "split_local"]


def split_of(key: str, seed: int, val_fraction: float, test_fraction: float = 0.0) -> str:
    """The split of ``key`` (an id or ``"subject:<id>"``): a seeded hash compared to the fractions.

    Args:
        key: what is hashed.
        seed: the split seed.
        val_fraction: the ``val`` share (0..1).
        test_fraction: the ``test`` share (0..1).

    Returns:
        ``"train"``, ``"val"`` or ``"test"``.
    """
    if val_fraction <= 0 and test_fraction <= 0:
        return "train"
    h = hashlib.sha1(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2.0**64
    if u < test_fraction:
        return "test"
    return "val" if u < test_fraction + val_fraction else "train"


def assign_folds(units: Iterable[str], folds: int | str, seed: int) -> dict[str, int]:
    """Deal subjects (units) to folds: sorted, shuffled with ``seed``, round-robin.

    Args:
        units: subject ids (duplicates ignored).
        folds: K >= 2, or ``"loso"`` (one fold per subject).
        seed: the shuffle seed.

    Returns:
        Subject -> fold index in ``0..K-1`` (fold sizes in subjects differ by at most one).
    """
    order = sorted(set(units))
    random.Random(seed).shuffle(order)
    k = len(order) if folds == "loso" else int(folds)
    return {unit: i % max(k, 1) for i, unit in enumerate(order)}


@dataclass
class FoldPlan:
    """How the examples were split and folded (manifest ``split`` and ``folds`` fields).

    Attributes:
        splits: the split names written, in order.
        folds: the number of folds (0: none).
        protocol: ``""``, ``"kfold"``, ``"loso"`` or ``"standard"`` (the dataset's own subject folds).
        subject_fallback: examples without a subject (split or folded by their id).
        fold_subjects: subjects per fold.
        partition_used: examples that kept the dataset's own partition.
        split_by: what the hash split used: ``"subject"``, or ``"id"`` (asked for, or no
            example has a subject).
    """

    splits: tuple[str, ...] = ("train", "val")
    folds: int = 0
    protocol: str = ""
    subject_fallback: int = 0
    fold_subjects: list[int] = field(default_factory=list)
    partition_used: int = 0
    split_by: str = "id"

    def fold_sizes(self, examples: Sequence[LocalExample]) -> list[int]:
        """Examples per fold in ``examples``."""
        counts = Counter(ex.fold for ex in examples)
        return [counts.get(i, 0) for i in range(self.folds)]


def _unit(ex: LocalExample) -> str:
    return f"subject:{ex.subject}" if ex.subject else f"id:{ex.id}"


def _fold_all(examples: Sequence[LocalExample], options: BuildOptions, plan: FoldPlan) -> None:
    folds = options.resolved_folds
    if not folds:
        return
    units = [_unit(ex) for ex in examples]
    subjects = {u for u in units if u.startswith("subject:")}
    if folds == "loso" and not subjects:
        raise BuildError(
            "folds='loso' (leave one subject out) needs subjects, and no example of source "
            f"'{options.source}' has one. Use folds=K for image-level folds, or folds=0."
        )
    if _standard_folds(examples, options, plan):
        return
    if folds != "loso" and len(set(units)) < int(folds):
        raise BuildError(
            f"folds={folds} needs at least {folds} subjects; the examples have "
            f"{len(set(units))}. Use fewer folds."
        )
    table = assign_folds(units, folds, options.seed)
    for ex, unit in zip(examples, units):
        ex.fold = table[unit]
    plan.folds = len(set(table.values()))
    plan.protocol = "loso" if folds == "loso" else "kfold"
    per_fold = Counter(table.values())
    plan.fold_subjects = [per_fold.get(i, 0) for i in range(plan.folds)]


def _standard_folds(
    examples: Sequence[LocalExample], options: BuildOptions, plan: FoldPlan
) -> bool:
    # The dataset's own subject split (BP4D and DISFA 3-fold of the AU literature), used when the
    # build writes the source's default number of folds; subjects it does not list (a partial or
    # extended copy) are dealt round-robin after it, so every example still gets a fold.
    from fer_tf.sources.base import get_source

    source = get_source(options.source)
    standard = getattr(source, "subject_folds", {}) or {}
    folds = options.resolved_folds
    if not standard or folds != source.default_folds:
        return False
    k = int(folds)
    others = sorted({_unit(ex) for ex in examples if ex.subject not in standard})
    extra = assign_folds(others, k, options.seed) if len(others) >= k else {}
    extra.update({u: i % k for i, u in enumerate(u for u in others if u not in extra)})
    for ex in examples:
        ex.fold = standard[ex.subject] if ex.subject in standard else extra[_unit(ex)]
    plan.folds = k
    plan.protocol = "standard"
    per_fold = Counter(fold for _, fold in {(_unit(ex), ex.fold) for ex in examples})
    plan.fold_subjects = [per_fold.get(i, 0) for i in range(k)]
    return True


def split_local(
    examples: Sequence[LocalExample], options: BuildOptions
) -> tuple[dict[str, list[LocalExample]], FoldPlan]:
    """Phase 3a (local sources): the split and fold of every processed example.

    Args:
        examples: the examples (those without a processed ``path`` are left out).
        options: ``split_by``, ``seed``, ``val_fraction``, ``test_fraction``, ``folds``.

    Returns:
        ``(examples per split, the plan)``; ``test`` is present when used.

    Raises:
        BuildError: folds that cannot be made (``loso`` without subjects, fewer subjects than
            folds).
    """
    ready = [ex for ex in examples if ex.path]
    plan = FoldPlan()
    # A source without subjects (folder) splits by id: "subject" would fall back for every one.
    by_subject = options.resolved_split_by == "subject" and any(ex.subject for ex in ready)
    plan.split_by = "subject" if by_subject else "id"
    val, test = options.resolved_val_fraction, options.test_fraction
    for ex in ready:
        if ex.partition is not None:
            ex.split = ex.partition
            plan.partition_used += 1
            continue
        key = ex.id
        if by_subject and ex.subject:
            key = "subject:" + ex.subject
        ex.split = split_of(key, options.seed, val, test)
    plan.subject_fallback = sum(1 for ex in ready if not ex.subject) if by_subject else 0
    _fold_all(ready, options, plan)
    used = {ex.split for ex in ready}
    plan.splits = ("train", "val") + (("test",) if "test" in used or test > 0 else ())
    out: dict[str, list[LocalExample]] = {s: [] for s in plan.splits}
    for ex in ready:
        out[ex.split].append(ex)
    return out, plan


def fold_table(plan: FoldPlan, per_split: dict[str, list[LocalExample]]) -> dict[str, Any]:
    """The manifest's fold description: protocol, subjects per fold, examples per fold and split.

    Args:
        plan: from :func:`split_local`.
        per_split: examples per split.

    Returns:
        A JSON-able dict.
    """
    return {
        "count": plan.folds,
        "protocol": plan.protocol,
        "subjects": plan.fold_subjects,
        "examples": {s: plan.fold_sizes(exs) for s, exs in per_split.items()},
    }
