"""Planning shared-prefix computation for choice scoring.

BehaviorBench asks many questions about one conversation: the tasks of a case
share the system prompt and the record's first turns token for token, and
differ in how many turns they show, the question and the options. Scoring
them one full prompt at a time runs the shared part through the model again
and again. This module plans a tree over the tokenized prompts: each node
runs one segment of tokens once (extending its parent's key/value cache), and
the prompts below it only run the tokens after that segment. The plan is pure
Python and model-free; :class:`behaviorsft.models.hf.HFModel` executes it.

The tree is the token trie of the prompts, pruned by a simple cost model:
tokens run through the model, plus ``overhead`` token-equivalents for each
extra forward pass. A branch is only cut into its own cached segment when that
lowers the cost, and the depth of nested caches is bounded (each level holds
a cache in memory while its children run).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

# A forward pass costs about this many tokens' worth of compute on top of its
# tokens (kernel launches, cache copies): small segments are not worth a pass.
DEFAULT_OVERHEAD = 64
DEFAULT_MAX_DEPTH = 16

_Plan = tuple[float, list[int], list["PrefixNode"]]  # cost, leaves, child nodes


@dataclass
class PrefixNode:
    """One cached segment: tokens ``[start, end)`` of every prompt below it.

    ``item`` is one prompt holding the segment; ``leaves`` are prompts scored
    straight from this node's cache (their tokens from ``end`` on), and
    ``children`` extend the cache further. The root has ``start == end == 0``
    and no cache: its leaves are scored as plain full prompts.
    """

    start: int
    end: int
    item: int
    leaves: list[int] = field(default_factory=list)
    children: list[PrefixNode] = field(default_factory=list)

    def walk(self) -> list[PrefixNode]:
        """This node and every node below it, parents first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


def common_prefix_len(a: bytes, b: bytes, width: int) -> int:
    """Length in tokens of the common prefix of two packed token sequences."""
    lo, hi = 0, min(len(a), len(b)) // width
    while lo < hi:  # the largest m with a[:m] == b[:m]; slices compare in C
        mid = (lo + hi + 1) // 2
        if a[: mid * width] == b[: mid * width]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def plan_prefix_tree(
    seqs: Sequence[Sequence[int]],
    *,
    batch_size: int,
    overhead: float = DEFAULT_OVERHEAD,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[PrefixNode, float, float]:
    """Plan shared-prefix scoring of ``seqs`` (token ids, each non-empty).

    Returns the root node, the planned cost and the cost without any sharing,
    both in token-equivalents (see the module docstring). Every index of
    ``seqs`` is a leaf of exactly one node, and every leaf keeps at least one
    token after its node's segment, so its next-token logits come from its own
    last token.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: {batch_size} given, need >= 1")
    n = len(seqs)
    if any(len(s) == 0 for s in seqs):
        raise ValueError("every sequence needs at least one token")
    if n == 0:
        return PrefixNode(0, 0, -1), 0.0, 0.0
    packed = [array("q", s).tobytes() for s in seqs]
    width = array("q").itemsize
    # Any lexicographic order puts prompts with a common prefix next to each
    # other, and the common prefix of a sorted run is the minimum over its
    # neighbours'. Byte order on the packed ids is such an order.
    order = sorted(range(n), key=packed.__getitem__)
    lens = [len(seqs[i]) for i in order]
    adj = [common_prefix_len(packed[order[j]], packed[order[j + 1]], width) for j in range(n - 1)]
    per_item = overhead / batch_size  # leaves share a pass with batch_size - 1 others

    def flat(lo: int, hi: int, start: int) -> float:
        return sum(lens[lo:hi]) - (hi - lo) * start + (hi - lo) * per_item

    def solve(lo: int, hi: int, start: int, depth: int) -> _Plan:
        """The plan for sorted items ``[lo, hi)`` given a cache of ``start`` tokens."""
        best: _Plan = (
            flat(lo, hi, start),
            list(range(lo, hi)),
            [],
        )
        if hi - lo == 1:
            return best
        shared = min(min(adj[lo : hi - 1]), min(lens[lo:hi]) - 1)
        if shared > start and depth < max_depth:
            cost, leaves, children = partition(lo, hi, shared, depth + 1)
            cost += (shared - start) + overhead
            if cost < best[0]:
                best = (cost, [], [PrefixNode(start, shared, lo, leaves, children)])
        elif shared == start and any(a <= start for a in adj[lo : hi - 1]):
            cost, leaves, children = partition(lo, hi, start, depth)
            if cost < best[0]:
                best = (cost, leaves, children)
        return best

    def partition(lo: int, hi: int, start: int, depth: int) -> _Plan:
        """Split ``[lo, hi)`` where neighbours share only ``start`` tokens; solve each run."""
        total, leaves, children = 0.0, [], []
        begin = lo
        for j in range(lo, hi):
            if j == hi - 1 or adj[j] <= start:
                cost, sub_leaves, sub_children = solve(begin, j + 1, start, depth)
                total += cost
                leaves.extend(sub_leaves)
                children.extend(sub_children)
                begin = j + 1
        return total, leaves, children

    # A chain of prompts that each extend the previous one nests a level per
    # prompt (two frames a level): leave the recursion room for it.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * n + 100))
    try:
        cost, leaves, children = solve(0, n, 0, 0)
    finally:
        sys.setrecursionlimit(limit)
    root = PrefixNode(0, 0, -1, leaves, children)
    # Sorted positions back to the caller's indices.
    for node in root.walk():
        node.leaves = [order[p] for p in node.leaves]
        if node.item >= 0:
            node.item = order[node.item]
    return root, cost, flat(0, n, 0)


def tokens_saved(root: PrefixNode, seqs: Sequence[Sequence[int]]) -> float:
    """Fraction of prompt tokens the plan does not run (0: no sharing)."""
    total = sum(len(s) for s in seqs)
    run = 0
    for node in root.walk():
        run += node.end - node.start
        run += sum(len(seqs[i]) - node.end for i in node.leaves)
    return 0.0 if total == 0 else 1.0 - run / total


def batches(items: list[int], lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """``items`` longest first, in chunks of ``batch_size`` (similar lengths pad little)."""
    ordered = sorted(items, key=lambda i: lengths[i], reverse=True)
    return [ordered[k : k + batch_size] for k in range(0, len(ordered), batch_size)]


__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_OVERHEAD",
    "PrefixNode",
    "batches",
    "common_prefix_len",
    "plan_prefix_tree",
    "tokens_saved",
]
