"""Seeded train/val/test splits by case: no case ever contributes tasks to two splits."""

from __future__ import annotations

import random
from collections.abc import Iterable

from behaviorsft.records import Split

# The paper's fixed split is 6776/110/977 (train/val/test, Section 4.1); we keep
# its proportions so that any benchmark size splits the same way.
PAPER_COUNTS = (6776, 110, 977)
PAPER_PROPORTIONS: tuple[float, float, float] = tuple(  # type: ignore[assignment]
    c / sum(PAPER_COUNTS) for c in PAPER_COUNTS
)


def split_sizes(n: int, proportions: tuple[float, float, float]) -> tuple[int, int, int]:
    """Case counts per split: largest-remainder rounding, every non-zero split gets >= 1 case
    when there are enough cases to go round."""
    if len(proportions) != 3 or any(p < 0 for p in proportions) or sum(proportions) <= 0:
        raise ValueError(f"proportions must be three non-negative numbers, got {proportions}")
    total = sum(proportions)
    exact = [n * p / total for p in proportions]
    sizes = [int(x) for x in exact]
    by_remainder = sorted(range(3), key=lambda i: exact[i] - sizes[i], reverse=True)
    for i in by_remainder[: n - sum(sizes)]:
        sizes[i] += 1
    wanted = [i for i in range(3) if proportions[i] > 0]
    if n >= len(wanted):
        for i in wanted:
            if sizes[i] == 0:
                donor = max(range(3), key=lambda j: sizes[j])
                sizes[donor] -= 1
                sizes[i] += 1
    return sizes[0], sizes[1], sizes[2]


def assign_splits(
    case_ids: Iterable[str],
    *,
    seed: int = 0,
    proportions: tuple[float, float, float] = PAPER_PROPORTIONS,
) -> dict[str, Split]:
    """Map each distinct case id to a split.

    The result depends only on the set of ids, the seed and the proportions (not
    on input order), so re-running a build reproduces it exactly.
    """
    ids = sorted(set(case_ids))
    random.Random(seed).shuffle(ids)
    n_train, n_val, _ = split_sizes(len(ids), proportions)
    out: dict[str, Split] = {}
    for pos, cid in enumerate(ids):
        if pos < n_train:
            out[cid] = Split.TRAIN
        elif pos < n_train + n_val:
            out[cid] = Split.VAL
        else:
            out[cid] = Split.TEST
    return out
