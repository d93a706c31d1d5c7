"""Planning shared-prefix scoring: every prompt scored once, from a prefix it really has."""

from __future__ import annotations

import random
from array import array

import pytest

from behaviorsft.models.prefix import (
    PrefixNode,
    batches,
    common_prefix_len,
    plan_prefix_tree,
    tokens_saved,
)


def _check_plan(root: PrefixNode, seqs: list[list[int]], max_depth: int | None = None) -> None:
    """Structural invariants of a plan."""
    seen: list[int] = []

    def visit(node: PrefixNode, depth: int) -> None:
        if node is not root:
            assert node.end > node.start
            head = seqs[node.item][: node.end]
            for i in _under(node):
                assert seqs[i][: node.end] == head, "an item below a node lacks its prefix"
        for i in node.leaves:
            assert len(seqs[i]) > node.end, "a leaf needs a token of its own"
            seen.append(i)
        for child in node.children:
            assert child.start == node.end
            visit(child, depth + 1)
        if max_depth is not None:
            assert depth <= max_depth

    visit(root, 0)
    assert sorted(seen) == list(range(len(seqs))), "every item is a leaf exactly once"


def _under(node: PrefixNode) -> list[int]:
    return node.leaves + [i for c in node.children for i in _under(c)]


def test_common_prefix_len_on_packed_ids() -> None:
    def pack(s: list[int]) -> bytes:
        return array("q", s).tobytes()

    w = array("q").itemsize
    assert common_prefix_len(pack([1, 2, 3]), pack([1, 2, 4]), w) == 2
    assert common_prefix_len(pack([1, 2, 3]), pack([1, 2, 3, 9]), w) == 3
    assert common_prefix_len(pack([7]), pack([8]), w) == 0
    assert common_prefix_len(pack([]), pack([1]), w) == 0
    # 256 and 1 share their low byte: the comparison is per token, not per byte
    assert common_prefix_len(pack([5, 256]), pack([5, 1]), w) == 1


def test_prompts_about_one_record_share_it() -> None:
    record = list(range(100, 300))  # 200 tokens every prompt starts with
    seqs = [record + [1, 2, 3], record + [4, 5], record + [6, 7, 8, 9]]
    root, cost, flat = plan_prefix_tree(seqs, batch_size=8, overhead=10)
    _check_plan(root, seqs)
    assert root.leaves == [] and len(root.children) == 1
    node = root.children[0]
    assert (node.start, node.end) == (0, 200)
    assert sorted(node.leaves) == [0, 1, 2] and node.children == []
    # runs 200 + (3 + 2 + 4) tokens instead of 609
    assert tokens_saved(root, seqs) == pytest.approx(1 - 209 / 609)
    assert cost == pytest.approx(209 + 10 + 3 * 10 / 8)
    assert flat == pytest.approx(609 + 3 * 10 / 8)


def test_unrelated_prompts_are_scored_whole() -> None:
    seqs = [[1, 2, 3, 4], [5, 6, 7], [8, 9]]
    root, cost, flat = plan_prefix_tree(seqs, batch_size=2)
    _check_plan(root, seqs)
    assert root.children == [] and sorted(root.leaves) == [0, 1, 2]
    assert cost == flat and tokens_saved(root, seqs) == 0


def test_short_shared_prefix_is_not_worth_a_pass() -> None:
    seqs = [[1, 2] + [10 + i] * 50 for i in range(3)]  # share 2 tokens
    root, _, _ = plan_prefix_tree(seqs, batch_size=8, overhead=64)
    assert root.children == []
    root, _, _ = plan_prefix_tree(seqs, batch_size=8, overhead=0)
    assert [(c.start, c.end) for c in root.children] == [(0, 2)]


def test_identical_prompts_keep_one_token_each() -> None:
    seqs = [[3] * 40, [3] * 40, [3] * 40]
    root, _, _ = plan_prefix_tree(seqs, batch_size=4, overhead=0)
    _check_plan(root, seqs)
    assert [(c.start, c.end) for c in root.children] == [(0, 39)]


def test_nested_records_nest_caches_and_max_depth_bounds_them() -> None:
    """Tasks at turn 5, 10 and 15 of one conversation: each record extends the last."""
    turns = [list(range(1000 + 20 * t, 1020 + 20 * t)) for t in range(16)]
    seqs = []
    for end in (5, 10, 15):
        record = [x for t in turns[:end] for x in t]
        seqs += [record + [1, q, 2] for q in range(3)]
    root, _, _ = plan_prefix_tree(seqs, batch_size=4, overhead=8)
    _check_plan(root, seqs)
    depth = 0
    node = root
    while node.children:
        node = max(node.children, key=lambda c: c.end)
        depth += 1
    assert depth == 3 and node.end == 15 * 20 + 1
    assert tokens_saved(root, seqs) > 0.6
    shallow, _, _ = plan_prefix_tree(seqs, batch_size=4, overhead=8, max_depth=1)
    _check_plan(shallow, seqs, max_depth=1)


def test_random_prompt_sets_keep_the_invariants() -> None:
    rng = random.Random(0)
    for _ in range(30):
        stems = [[rng.randrange(50) for _ in range(rng.randrange(1, 30))] for _ in range(4)]
        seqs = [
            rng.choice(stems)[: rng.randrange(0, 30)]
            + [rng.randrange(50) for _ in range(rng.randrange(1, 6))]
            for _ in range(rng.randrange(1, 40))
        ]
        for depth in (1, 3, 16):
            root, cost, flat = plan_prefix_tree(
                seqs,
                batch_size=rng.randrange(1, 5),
                overhead=rng.choice([0, 4, 64]),
                max_depth=depth,
            )
            _check_plan(root, seqs, max_depth=depth)
            assert cost <= flat + 1e-9


def test_a_long_chain_does_not_hit_the_recursion_limit() -> None:
    base = list(range(3000))
    seqs = [base[: k + 1] + [5000] for k in range(0, 3000, 1)]  # each extends the previous
    root, _, _ = plan_prefix_tree(seqs, batch_size=8, overhead=0, max_depth=4)
    _check_plan(root, seqs, max_depth=4)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one token"):
        plan_prefix_tree([[1], []], batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        plan_prefix_tree([[1]], batch_size=0)
    root, cost, flat = plan_prefix_tree([], batch_size=2)
    assert root.leaves == [] and cost == flat == 0


def test_batches_are_longest_first() -> None:
    lengths = [3, 9, 1, 7, 5]
    assert batches([0, 1, 2, 3, 4], lengths, 2) == [[1, 3], [4, 0], [2]]
