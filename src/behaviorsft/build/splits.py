"""Seeded train/val/test splits by case: no case ever contributes tasks to two splits.

A case's split is a function of its id and the seed alone: a keyed hash of
(seed, case id) gives it a position in [0, 1), and the proportions cut [0, 1)
into train, val and test bands. Adding cases to a benchmark therefore never
moves a case already built, and a resumed build equals a clean one.

The price: split sizes are binomial around the proportions instead of exact.
One rule keeps small benchmarks usable: when a split with a non-zero
proportion would get no case at all (1.4% val of a dozen cases), the case
whose position lies nearest its band is moved into it (see ``assign_splits``).
Only that rule depends on the other ids; ``build`` refuses to resume when it
would move a case already built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from behaviorsft.records import Split

# The paper's fixed split is 6776/110/977 (train/val/test, Section 4.1); we keep
# its proportions so that any benchmark size splits the same way.
PAPER_COUNTS = (6776, 110, 977)
PAPER_PROPORTIONS: tuple[float, float, float] = tuple(  # type: ignore[assignment]
    c / sum(PAPER_COUNTS) for c in PAPER_COUNTS
)
_ORDER = (Split.TRAIN, Split.VAL, Split.TEST)


def _check(proportions: tuple[float, float, float]) -> tuple[float, float, float]:
    if len(proportions) != 3 or any(p < 0 for p in proportions) or sum(proportions) <= 0:
        raise ValueError(f"proportions must be three non-negative numbers, got {proportions}")
    total = sum(proportions)
    a, b, c = (p / total for p in proportions)
    return a, b, c


def split_position(case_id: str, seed: int) -> float:
    """Where a case falls in [0, 1): the first 64 bits of SHA-256 of (seed, case id)."""
    digest = hashlib.sha256(f"behaviorsft-split\0{seed}\0{case_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _bands(proportions: tuple[float, float, float]) -> list[tuple[float, float]]:
    a, b, _ = _check(proportions)
    return [(0.0, a), (a, a + b), (a + b, 1.0)]


def _band_of(u: float, bands: list[tuple[float, float]]) -> int:
    for i, (lo, hi) in enumerate(bands):
        if lo <= u < hi:
            return i
    # Rounding at the top end: the last split with room.
    return max(i for i, (lo, hi) in enumerate(bands) if hi > lo)


def split_of(
    case_id: str, *, seed: int = 0, proportions: tuple[float, float, float] = PAPER_PROPORTIONS
) -> Split:
    """The split of one case by its id and the seed alone (without the small-sample rule)."""
    return _ORDER[_band_of(split_position(case_id, seed), _bands(proportions))]


def assign_splits(
    case_ids: Iterable[str],
    *,
    seed: int = 0,
    proportions: tuple[float, float, float] = PAPER_PROPORTIONS,
) -> dict[str, Split]:
    """Map each distinct case id to a split.

    Each case gets ``split_of`` its id, except that a split with a non-zero
    proportion that would stay empty takes the case nearest its band (from a
    split that keeps at least one case), when there are enough cases to go
    round. Independent of input order and repeats.
    """
    bands = _bands(proportions)
    pos = {cid: split_position(cid, seed) for cid in sorted(set(case_ids))}
    band = {cid: _band_of(u, bands) for cid, u in pos.items()}
    wanted = [i for i, (lo, hi) in enumerate(bands) if hi > lo]
    if len(pos) >= len(wanted):
        for i in wanted:
            sizes = [sum(1 for b in band.values() if b == j) for j in range(3)]
            if sizes[i]:
                continue
            lo, hi = bands[i]
            donors = [cid for cid, b in band.items() if sizes[b] > 1]
            nearest = min(donors, key=lambda c: (min(abs(pos[c] - lo), abs(pos[c] - hi)), c))
            band[nearest] = i
    return {cid: _ORDER[b] for cid, b in band.items()}
