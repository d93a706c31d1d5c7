"""Splits by case and the shortcut audit, on hand-made tasks with hand-computed numbers."""

from __future__ import annotations

import pytest

from behaviorsft.build.audit import (
    audit,
    find_duplicates,
    find_leaks,
    longest_option_hit,
    option_only_hits,
    overlap_option_hit,
    record_match_hit,
    words,
)
from behaviorsft.build.splits import PAPER_PROPORTIONS, assign_splits, split_of
from behaviorsft.records import Conversation, Split, Task, TaskContext
from tests.conftest import make_task_dict


def mk(tid: str, question: str, options: list[str], answer: str, **kw) -> Task:
    return Task.model_validate(
        make_task_dict(
            id=tid,
            question=question,
            options=[{"label": "ABCDEF"[i], "text": t} for i, t in enumerate(options)],
            answer=answer,
            option_permutation=None,
            **kw,
        )
    )


def test_a_case_split_depends_only_on_its_id_and_the_seed():
    props = (0.6, 0.2, 0.2)
    ids = [f"c{i}" for i in range(200)]
    few = assign_splits(ids[:60], seed=3, proportions=props)
    many = assign_splits(ids, seed=3, proportions=props)
    assert few == {cid: many[cid] for cid in ids[:60]}  # adding cases moves none
    assert all(many[cid] is split_of(cid, seed=3, proportions=props) for cid in ids)
    assert assign_splits(list(reversed(ids)) + ids[:5], seed=3, proportions=props) == many
    assert assign_splits(ids, seed=4, proportions=props) != many


def test_split_proportions_hold_at_scale():
    ids = [f"case-{i}" for i in range(20_000)]
    counts = {s: 0 for s in Split}
    for s in assign_splits(ids, seed=0).values():
        counts[s] += 1
    expected = [20_000 * p for p in PAPER_PROPORTIONS]
    for got, want in zip(counts.values(), expected, strict=True):
        assert abs(got - want) < 4 * (want * (1 - want / 20_000)) ** 0.5  # 4 binomial sds
    assert split_of("x", seed=0, proportions=(1.0, 0.0, 0.0)) is Split.TRAIN
    with pytest.raises(ValueError, match="three non-negative"):
        split_of("x", seed=0, proportions=(1.0, -0.1, 0.1))


def test_small_samples_still_get_every_wanted_split():
    # 1.4% val: three or twelve cases would rarely draw one by hash alone.
    for n in (3, 12):
        got = assign_splits([f"synthetic:0-{i:06d}" for i in range(n)], seed=0)
        assert set(got.values()) == set(Split), n
    got = assign_splits(["a", "b"], seed=0, proportions=(1.0, 0.0, 0.0))
    assert set(got.values()) == {Split.TRAIN}


def test_longest_and_overlap_by_hand():
    t = mk("t", "Which drug treats the infection?", ["aa", "bbbb", "cccc", "d"], "B")
    assert longest_option_hit(t) == 0.5  # B and C tie at 4 characters
    t2 = mk("t2", "Which drug treats the infection?", ["a drug", "treats infection", "x", "y"], "B")
    assert overlap_option_hit(t2) == 1.0  # B shares {treats, infection}; A shares {drug}
    t3 = mk("t3", "Which drug treats the infection?", ["p", "q", "r", "s"], "D")
    assert overlap_option_hit(t3) == 0.25  # no overlap anywhere: four-way tie


def test_record_match_by_hand():
    record = words("Potassium 5.9 mmol/L on admission; furosemide started. Creatinine 140.")
    t = mk(
        "t",
        "What was the potassium on admission?",
        ["5.9 mmol/L", "3.2 mmol/L", "4.4 mmol/L", "furosemide started"],
        "A",
    )
    # Shares of own words in the record: A 2/2, B 1/2 ("mmol"+"l" both in), ... compute:
    # words() splits "mmol/L" into {mmol, l}: A {5, 9, mmol, l} -> 4/4; B {3, 2, mmol, l} -> 2/4;
    # C {4, mmol, l} -> 2/3; D {furosemide, started} -> 2/2: A and D tie at the top.
    assert record_match_hit(t, record) == 0.5
    assert record_match_hit(t, record, most=False) == 0.0  # B is the least quoted
    omission = mk(
        "o",
        "Which test is still missing?",
        ["potassium", "creatinine", "troponin", "furosemide"],
        "C",
    )
    assert record_match_hit(omission, record, most=False) == 1.0
    assert record_match_hit(omission, record) == 0.0


def test_duplicates_and_leaks():
    a = mk("a", "What is the potassium?", ["3.1", "4.0", "5.5", "6.2"], "C")
    b = mk("b", "what is  the POTASSIUM?", ["6.2", "5.5", "4.0", "3.1"], "B")
    c = mk(
        "c", "Is aspirin with warfarin safe here?", ["aspirin with warfarin", "x", "y", "z"], "A"
    )
    assert find_duplicates([a, b, c]) == [["a", "b"]]
    assert find_leaks([a, b, c]) == ["c"]


def test_audit_flags_a_longest_option_bias():
    # Answer is always the long option: a biased benchmark.
    biased = [
        mk(
            f"b{i}",
            f"Question {i}?",
            [f"w{i}", f"a much longer correct option {i}", "x1", "y1"],
            "B",
            case_id=f"c{i}",
        )
        for i in range(20)
    ]
    rep = audit(biased, option_only=False)
    overall = rep.shortcuts[-1]
    assert overall.task_type == "overall"
    assert overall.chance == 0.25
    assert overall.longest == 1.0
    assert overall.top_letter == 1.0
    assert not overall.passes
    assert not rep.passes
    assert rep.answer_letters == {"B": 20}


def test_audit_passes_a_balanced_set():
    opts = [["alpha one", "beta two", "gamma three", "delta four"]] * 4
    tasks = [
        mk(f"t{i}", f"Pick item number {i}?", opts[i], "ABCD"[i], case_id=f"c{i}") for i in range(4)
    ]
    rep = audit(tasks, option_only=False)
    row = rep.shortcuts[-1]
    # All options have 9-11 characters: "gamma three" (11) is uniquely longest -> hit only on C.
    assert row.longest == 0.25
    assert row.overlap == 0.25  # no option shares a content word with any question
    assert row.passes


def test_option_only_classifier_finds_a_textual_tell():
    # The answer always contains "correct"; an options-only model must find it out of fold.
    tasks = [
        mk(
            f"t{i}",
            f"Q{i}?",
            [f"option {i} plain", f"correct choice {i}", f"other {i} text", f"more {i} words"],
            "B",
            case_id=f"c{i}",
        )
        for i in range(40)
    ]
    hits = option_only_hits(tasks, folds=5, seed=0)
    assert len(hits) == 40
    assert sum(hits) / 40 > 0.9


def test_option_only_with_one_case_falls_back_to_chance():
    t = mk("solo", "Q?", ["a", "b", "c", "d"], "A", case_id="only")
    assert option_only_hits([t, t.model_copy(update={"id": "solo2"})]) == [0.25, 0.25]


def conv(case_id: str, texts: list[str]) -> Conversation:
    turns = [
        {"index": i, "speaker": "Dr Vale", "role": "attending", "text": x}
        for i, x in enumerate(texts)
    ]
    return Conversation.model_validate({"case_id": case_id, "turns": turns})


def quoting_tasks(n: int, *, answer_quoted: bool) -> tuple[list[Task], list[Conversation]]:
    """n cases; the record quotes the answer and no distractor (or every distractor, not it)."""
    tasks, convs = [], []
    for i in range(n):
        opts = [f"alpha{i} result", f"beta{i} result", f"gamma{i} result", f"delta{i} result"]
        right = i % 4
        quoted = [opts[right]] if answer_quoted else [o for j, o in enumerate(opts) if j != right]
        convs.append(conv(f"c{i}", ["Ward round.", *(f"We saw {q}." for q in quoted)]))
        tasks.append(
            mk(
                f"t{i}",
                "Which one?",
                opts,
                "ABCD"[right],
                case_id=f"c{i}",
                context={"turn_start": 0, "turn_end": len(quoted)},
            )
        )
    return tasks, convs


def test_record_match_both_ways_is_scored_per_type_and_gates_passes():
    tasks, convs = quoting_tasks(12, answer_quoted=True)
    row = audit(tasks, conversations=convs, option_only=False).shortcuts[-1]
    # Every option shares "result" (1 of 2 own words); only the answer's other word is quoted.
    assert row.record_most == 1.0
    assert row.record_fewest == 0.0
    assert "record_most" in row.missed and not row.passes
    # Without conversations the record-match baselines are not computed (and do not gate).
    plain = audit(tasks, option_only=False).shortcuts[-1]
    assert plain.record_most is None and plain.record_fewest is None
    assert "record_most" not in plain.missed

    omitted, convs2 = quoting_tasks(12, answer_quoted=False)
    row2 = audit(omitted, conversations={c.case_id: c for c in convs2}, option_only=False)
    assert row2.shortcuts[-1].record_fewest == 1.0
    assert row2.shortcuts[-1].missed == ["record_fewest"]


def test_record_match_sees_only_the_turns_the_task_shows_plus_its_excerpt():
    tasks, convs = quoting_tasks(8, answer_quoted=True)
    # Show only turn 0 ("Ward round."): the quoting turn is outside the task's context.
    hidden = [
        t.model_copy(update={"context": TaskContext(turn_start=0, turn_end=0)}) for t in tasks
    ]
    rep = audit(hidden, conversations=convs, option_only=False)
    assert rep.shortcuts[-1].record_most == 0.25  # four-way tie everywhere: chance
    assert rep.no_record == 0
    # An excerpt is part of the record too.
    with_excerpt = [
        t.model_copy(
            update={"context": TaskContext(turn_start=0, turn_end=0, excerpt=t.answer_text)}
        )
        for t in tasks
    ]
    assert audit(with_excerpt, conversations=[], option_only=False).shortcuts[-1].record_most == 1.0


def test_passes_needs_every_gated_baseline_within_target():
    # Balanced options, no record bias; only the letter is a giveaway: always "A".
    tasks = [
        mk(
            f"t{i}",
            f"Pick {i}?",
            [f"p{i} one", f"q{i} two", f"r{i} six", f"s{i} ten"],
            "A",
            case_id=f"c{i}",
        )
        for i in range(20)
    ]
    row = audit(tasks, option_only=False).shortcuts[-1]
    assert row.top_letter == 1.0
    assert row.missed == ["top_letter"]
    assert not row.passes
    # The options-only classifier gates too when it runs: the answer, at any letter,
    # is the option that says "right" (all options have the same length).
    tell = []
    for i in range(40):
        opts = [f"plain {i}", f"other {i}", f"extra {i}"]
        opts.insert(i % 4, f"right {i}")
        tell.append(mk(f"u{i}", f"Q{i}?", opts, "ABCD"[i % 4], case_id=f"k{i}"))
    row = audit(tell, option_only=True).shortcuts[-1]
    assert row.option_only is not None and row.option_only > 0.9
    assert row.missed == ["option_only"]


def test_top_letter_is_held_out_so_balanced_letters_score_chance():
    # Letters A-D in turn over 40 cases: in-sample the top letter would score 0.25 by a
    # tie; held out, every fold's training letters are again balanced -> still 0.25.
    tasks = [
        mk(
            f"t{i}",
            f"Pick {i}?",
            [f"p{i} one", f"q{i} two", f"r{i} six", f"s{i} ten"],
            "ABCD"[i % 4],
            case_id=f"c{i}",
        )
        for i in range(40)
    ]
    assert audit(tasks, option_only=False).shortcuts[-1].top_letter <= 0.25 + 0.05


def test_audit_bench_streams_the_same_report_as_the_in_memory_audit(tmp_path):
    from behaviorsft.bench import load_bench
    from behaviorsft.build.audit import audit_bench
    from behaviorsft.build.pipeline import build_bench
    from behaviorsft.sources.kb import load_kb
    from behaviorsft.sources.synthetic import synthesize_case
    from behaviorsft.store import write_jsonl

    kb = load_kb()
    write_jsonl(tmp_path / "cases.jsonl", [synthesize_case(i, seed=3, kb=kb) for i in range(8)])
    build_bench(tmp_path / "cases.jsonl", tmp_path / "bench", workers=1)
    seen: list[str] = []
    streamed = audit_bench(tmp_path / "bench", progress=lambda s, d, t: seen.append(s))
    b = load_bench(tmp_path / "bench")
    in_memory = audit(b.tasks, conversations=b.conversations)
    assert streamed.model_dump() == in_memory.model_dump()
    assert {"reading tasks", "record match", "options-only classifier"} <= set(seen)
    assert all(r.record_most is not None for r in streamed.shortcuts)


def test_empty_bench_is_an_error(tmp_path):
    from behaviorsft.build.audit import EmptyBenchError, audit_bench

    (tmp_path / "tasks.jsonl").write_text("")
    with pytest.raises(EmptyBenchError, match="no tasks"):
        audit_bench(tmp_path)


def _note_tasks(n: int, *, tell: bool) -> list[Task]:
    """n cases whose note declines four items: the key "only if not improving" and the
    others "only if <a diagnosis> is likely" (``tell``), or every one alike."""
    tasks = []
    for i in range(n):
        items = [f"alpha{i} check", f"beta{i} scan", f"gamma{i} score", f"delta{i} test"]
        right = i % 4
        why = [
            "only if not improving" if tell and j == right else "only if sepsis is likely"
            for j in range(4)
        ]
        note = "Not done, not felt necessary: " + "; ".join(
            f"{it} ({w}, not the case here)" for it, w in zip(items, why, strict=True)
        )
        tasks.append(
            mk(
                f"n{i}",
                "Which statement is right?",
                [f"No: {it} is required" for it in items],
                "ABCD"[right],
                case_id=f"c{i}",
                context={"turn_start": 0, "turn_end": 0, "excerpt": note},
            )
        )
    return tasks


def test_excerpt_context_classifier_finds_a_cue_in_how_the_note_frames_the_key():
    # Round 13: the declined key alone read "only if not improving". Options and record
    # quotes are alike; only the words around each option in the excerpt tell.
    row = audit(_note_tasks(60, tell=True)).shortcuts[-1]
    assert row.excerpt_context is not None and row.excerpt_context > 0.9
    assert "excerpt_context" in row.missed and not row.passes
    assert row.option_only is not None and row.option_only < 0.5
    fair = audit(_note_tasks(60, tell=False)).shortcuts[-1]
    assert fair.excerpt_context == pytest.approx(0.25, abs=0.1)
    assert "excerpt_context" not in fair.missed
    # Tasks without an excerpt count at chance; without learned baselines it is not run.
    assert audit(_note_tasks(8, tell=True), option_only=False).shortcuts[-1].excerpt_context is None


def test_excerpt_clauses_keep_parentheses_and_abbreviations_whole():
    from behaviorsft.build.audit import excerpt_clauses

    note = (
        "Team note: ECG; troponin. Not done, not felt necessary: risk stratification (e.g. "
        "Oakland score) documented (only if lower gastrointestinal bleeding is likely, not the "
        "case here); lipase (only if acute pancreatitis is likely, not the case here)."
    )
    assert excerpt_clauses(note) == [
        "Team note",
        "ECG",
        "troponin",
        "Not done, not felt necessary",
        "risk stratification (e.g. Oakland score) documented (only if lower gastrointestinal "
        "bleeding is likely, not the case here)",
        "lipase (only if acute pancreatitis is likely, not the case here).",
    ]
