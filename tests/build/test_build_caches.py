"""The build's caches give what computing afresh gives (they only save time)."""

from __future__ import annotations

from typing import Any

from behaviorsft.build.audit import words
from behaviorsft.build.record_index import lexicon
from behaviorsft.build.tasks import grounding
from behaviorsft.build.tasks.grounding import _shown_words
from behaviorsft.records import Attachment, Conversation, Turn
from behaviorsft.sources.kb import load_kb


def _conv(texts: list[str]) -> Conversation:
    turns = [
        Turn(index=i, speaker=f"Dr. {chr(65 + i)}", role="medical resident", text=t)
        for i, t in enumerate(texts)
    ]
    turns.append(
        Turn(
            index=len(texts),
            speaker="Nurse B",
            role="ward nurse",
            text="Results below.",
            attachments=[
                Attachment(
                    kind="table", title="Labs", columns=["Test", "Value"], rows=[["Sodium", "139"]]
                )
            ],
        )
    )
    return Conversation(case_id="c1", turns=turns)


def _expected(conv: Conversation, start: int, end: int, excerpt: str | None) -> set[str]:
    from behaviorsft.bench import format_turns

    text = format_turns(conv, start, end)
    return words(f"{text}\n\n{excerpt}" if excerpt else text)


def test_shown_words_match_the_whole_text_for_every_range() -> None:
    conv = _conv(["Chest pain since morning.", "Troponin is pending", "ECG shows ST elevation."])
    n = len(conv.turns)
    for start in range(n):
        for end in range(start - 1, n):
            for excerpt in (None, "", "[Turn 2 is missing]\n\nDischarge note: aspirin given."):
                assert _shown_words(conv, start, end, excerpt) == _expected(
                    conv, start, end, excerpt
                )


def test_turn_words_are_not_reused_for_another_conversation() -> None:
    # A later conversation may get the id of one that was freed: its own words count.
    first = _conv(["Cough and fever for three days.", "Crackles at the right base."])
    other = _conv(["Headache since yesterday.", "Neck stiffness on examination."])
    grounding._TURN_WORDS[id(other)] = (first, grounding._turn_words(first))  # as if reused
    got = _shown_words(other, 0, 2, None)
    assert got == _expected(other, 0, 2, None)
    assert "crackles" not in got


def test_sentence_analysis_is_cached_per_text_and_reporting() -> None:
    # The same text reads as a request in a turn and as a result in a table row.
    lex = lexicon(load_kb())
    text = "Please send a potassium level."
    per_sentence = lex.analyse(text, None)
    as_result = lex.analyse(text, True)
    assert per_sentence[1] and not any(shows for _, shows in per_sentence[1])
    assert as_result[1] and all(shows for _, shows in as_result[1])
    assert lex.analyse(text, None) == per_sentence


# --------------------------------------------------------------------------- build speed


def test_shown_numbers_match_the_whole_text_for_every_range() -> None:
    from types import SimpleNamespace

    from behaviorsft.build.tasks.grounding import _NUMBER, shown_numbers, shown_text

    conv = _conv(["HR 112, BP 95/60 at 10:30.", "Lactate 4.2; repeat in 2 h.", "Given 1.5 L."])
    ctx = SimpleNamespace(rendered=SimpleNamespace(conversation=conv))
    n = len(conv.turns)
    for start in range(n):
        for end in range(start - 1, n):
            want = set(_NUMBER.findall(shown_text(ctx, start, end)))  # type: ignore[arg-type]
            assert shown_numbers(ctx, start, end) == want  # type: ignore[arg-type]
    assert {"112", "4.2", "139", "3"} <= shown_numbers(ctx, 0, n - 1)  # type: ignore[arg-type]


def _grounded_reference(
    correct: str, candidates: list[str], record: set[str], question: str, need: int, tol: float
) -> list[str]:
    """``grounded`` as it was written before it was made one pass (the reference)."""
    from behaviorsft.build.tasks.common import _norm
    from behaviorsft.build.tasks.grounding import _text_words, share

    q = _text_words(question)
    target = share(correct, record, q)
    seen = {_norm(correct)}
    scored = []
    for i, c in enumerate(candidates):
        n = _norm(c)
        if not n or n in seen:
            continue
        seen.add(n)
        scored.append((abs(share(c, record, q) - target), i, c))
    close = [c for d, _, c in scored if d <= tol + 1e-9]
    if len(close) >= need:
        return close
    rest = sorted((d, i, c) for d, i, c in scored if d > tol + 1e-9)
    return close + [c for _, _, c in rest[: need - len(close)]]


def test_grounded_gives_what_the_reference_gives() -> None:
    import random

    from behaviorsft.build.tasks.grounding import grounded

    vocab = ["chest", "pain", "troponin", "aspirin", "fever", "cough", "sodium", "renal", "scan"]
    rng = random.Random(5)
    for _ in range(300):
        record = set(rng.sample(vocab, rng.randint(0, len(vocab))))
        cands = [" ".join(rng.sample(vocab, rng.randint(0, 3))) for _ in range(rng.randint(0, 9))]
        correct = " ".join(rng.sample(vocab, 2))
        need, tol = rng.randint(0, 5), rng.choice((0.0, 0.1, 0.34))
        want = _grounded_reference(correct, cands, record, "What about the pain?", need, tol)
        scores: dict[str, float] = {}
        for _ in range(2):  # the second time from the caller's score cache
            got = grounded(
                correct,
                cands,
                record,
                "What about the pain?",
                need=need,
                tolerance=tol,
                scores=scores,
            )
            assert got == want


def test_record_index_lists_each_place_once_as_a_fresh_index_does() -> None:
    from behaviorsft.build.record_index import RecordIndex, Ref

    kb = load_kb()
    conv = _conv(
        [
            "Potassium 5.9 today. Potassium was 5.1 yesterday; repeat the potassium.",
            "Would a potassium of 6 change the plan?",
            "Yes: potassium above 6 needs calcium gluconate.",
        ]
    )
    for end in range(len(conv.turns)):
        # (the index reads the case only for its medicines, not asked here)
        idx = RecordIndex.build(None, conv.turns, kb, turn_end=end, excerpt="Potassium 6.")  # type: ignore[arg-type]
        # The reference: every text analysed afresh, places listed once, in order.
        hits: dict[str, list[Ref]] = {}
        done: dict[str, list[Ref]] = {}
        lex = idx.lexicon
        for ref, text in idx.texts:
            reported = None
            if ref.turn is None:
                reported = False
            elif text != conv.turns[ref.turn].text:
                reported = True
            elif ref.turn > 0 and "Would" in conv.turns[ref.turn - 1].text:
                reported = False
            for cid, shows in lex.analyse(text, reported)[1]:
                for table in (hits, done) if shows else (hits,):
                    if ref not in table.setdefault(cid, []):
                        table[cid].append(ref)
        assert idx.hits == hits and idx.done_hits == done
        assert all(len(set(refs)) == len(refs) for refs in idx.hits.values())


def test_render_gives_the_same_conversation_with_its_checks_cached_or_not() -> None:
    from behaviorsft.build import conversation
    from behaviorsft.build.conversation import render
    from behaviorsft.sources.synthetic import synthesize_case

    kb = load_kb()
    cases = [synthesize_case(i, seed=3, kb=kb) for i in range(12)]
    warm = [render(c, kb, seed=3).conversation.model_dump_json() for c in cases]
    for case, want in zip(reversed(cases), reversed(warm), strict=True):
        conversation._CHECKS.clear()  # cold: every check made afresh
        assert render(case, kb, seed=3).conversation.model_dump_json() == want


def test_a_build_in_this_process_leaves_the_gc_settings_as_they_were() -> None:
    import gc

    from behaviorsft.build.pipeline import GC_THRESHOLDS, lean_gc

    before = gc.get_threshold()
    with lean_gc():
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_distinct_shown_values_match_the_values_shown() -> None:
    from types import SimpleNamespace

    from behaviorsft.build.tasks.grounding import distinct_values, shown_value_set, shown_values

    conv = _conv(["HR 112, then 112 again; BP 95/60.", "Lactate 4.2 and 4.20.", "Nothing."])
    ctx: Any = SimpleNamespace(rendered=SimpleNamespace(conversation=conv))
    for end in range(len(conv.turns)):
        values = shown_values(ctx, 0, end)
        assert distinct_values(ctx, 0, end) == tuple((v, float(v)) for v in dict.fromkeys(values))
        assert shown_value_set(ctx, 0, end) == set(values)


def test_finding_values_are_formatted_as_before_caching() -> None:
    from behaviorsft.build.conversation import format_finding_value
    from behaviorsft.records import Finding
    from behaviorsft.sources.synthetic import fmt_value

    for value in (4.0, 4.2, 0.05, 137.0, 1.23456, 12.5, 0.0, 250.75):
        f = Finding(kind="lab", name="Potassium", value=value, unit="mmol/L")
        places = 0 if float(value).is_integer() else len(repr(value).split(".")[1])
        assert format_finding_value(f) == fmt_value(value, min(places, 4))


def test_option_texts_are_compared_as_the_regex_compared_them() -> None:
    import re
    import sys

    from behaviorsft.records import _normalise_option_text

    spaces = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if re.fullmatch(r"\s", c))
    assert spaces == "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
    for text in ("  Aspirin\u00a0 300\u2003mg ", "x\n\ty", "", " ", "STRASSE  straße"):
        assert _normalise_option_text(text) == re.sub(r"\s+", " ", text).strip().casefold()


# --------------------------------------------------------------------------- coherence
# and lint caches (session 9): token sets and lab ids are memoised; the same answers.


_SENTENCES = [
    "I've never been told I have diabetes.",
    "Chest X-ray: hyperinflation and no consolidation.",
    "Any chest pain?",
    "For about 4 days I've had blurred vision and chest pain.",
    "Chest X-ray: hyperinflation and no consolidation.",  # repeated: a cache hit
]


def test_cached_statements_match_a_fresh_tokenisation() -> None:
    from behaviorsft.build.coherence import _TOKEN, _statements, mentions

    want = [
        (words, set(words))
        for s in _SENTENCES
        if not s.rstrip().endswith("?")
        for words in [_TOKEN.findall(s.lower())]
    ]
    for _ in range(2):  # the second time from the cache
        got = _statements(_SENTENCES)
        assert [(list(w), set(v)) for w, v in got] == want
        assert mentions(_SENTENCES, "diabetes") == [True]
        assert mentions(_SENTENCES, "no chest pain") == [False]
        assert mentions(_SENTENCES, "consolidation") == [True, True]


def test_cached_clause_tokens_match_a_fresh_tokenisation() -> None:
    from behaviorsft.build.lint_plan import _STOP, _TOKEN, _toks

    def fresh(text: str) -> set[str]:
        out = set()
        for t in _TOKEN.findall(text.lower()):
            t = t[:-1] if len(t) > 3 and t.endswith("s") and not t.endswith("ss") else t
            if t not in _STOP:
                out.add(t)
        return out

    for s in [*_SENTENCES, "Fevers and rigors with a cough", "Abscess of the thighs"]:
        assert _toks(s) == fresh(s) == _toks(s)
        assert isinstance(_toks(s), frozenset)  # shared between callers: never changed


def test_lab_ids_are_kept_per_knowledge_base() -> None:
    from behaviorsft.build.lint_values import _lab_ids

    kb = load_kb()
    other = kb.model_copy(deep=True)
    lab_id = next(iter(other.labs))
    other.labs[lab_id] = other.labs[lab_id].model_copy(update={"name": "Renamed test"})
    assert _lab_ids(kb) == {lab.name.lower(): lid for lid, lab in kb.labs.items()}
    assert _lab_ids(other)["renamed test"] == lab_id
    assert "renamed test" not in _lab_ids(kb)


def test_lint_bench_reads_each_file_once_with_the_same_findings(tmp_path, monkeypatch) -> None:
    import json

    from behaviorsft.build import lint, lint_errors
    from tests.build.kb_records import kb_record

    case, conv = kb_record("thyroid_storm")
    task = {
        "id": f"{case['id']}:explicit_error_correction:x0",
        "case_id": case["id"],
        "task_type": "explicit_error_correction",
        "context": {"turn_start": 0, "turn_end": 3, "excerpt": "New order: Lisinopril 10 mg."},
    }
    other = {"id": f"{case['id']}:fact_retrieval:0", "case_id": case["id"], "task_type": "x"}
    (tmp_path / "cases.jsonl").write_text(json.dumps(case) + "\n")
    (tmp_path / "conversations.jsonl").write_text(json.dumps(conv) + "\n")
    (tmp_path / "tasks.jsonl").write_text(json.dumps(other) + "\n" + json.dumps(task) + "\n")

    # the reference: every file read for itself, as lint_bench did before
    expected = lint.lint_records(
        lint._read(tmp_path / "cases.jsonl"),
        lint._read(tmp_path / "conversations.jsonl"),
        cases_file=str(tmp_path / "cases.jsonl"),
        conversations_file=str(tmp_path / "conversations.jsonl"),
        tasks=lint._read(tmp_path / "tasks.jsonl"),
        tasks_file=str(tmp_path / "tasks.jsonl"),
    )
    lint_errors.lint_tasks(
        lint._read(tmp_path / "cases.jsonl"),
        [row for row in lint._read(tmp_path / "tasks.jsonl") if lint._is_order(row[1])],
        lambda line, tid: lint._Where(str(tmp_path / "tasks.jsonl"), line, tid, expected),
    )
    assert [f.rule for f in expected].count("order-no-indication") == 1

    reads: list[str] = []
    real_read = lint._read
    monkeypatch.setattr(lint, "_read", lambda path: reads.append(path.name) or real_read(path))
    assert lint.lint_bench(tmp_path) == expected
    assert sorted(reads) == ["cases.jsonl", "conversations.jsonl", "tasks.jsonl"]


def test_a_record_index_cut_to_its_first_turns_equals_one_built_for_them() -> None:
    """``Ctx.index`` cuts the renderer's index of the whole record (``RecordIndex.prefix``)
    instead of indexing a task's turns again: the same places, in the same order."""
    from behaviorsft.build.conversation import render
    from behaviorsft.build.record_index import RecordIndex
    from behaviorsft.sources.synthetic import synthesize_case

    kb = load_kb()
    for i in range(3):
        case = synthesize_case(i, seed=7, kb=kb)
        rendered = render(case, kb, seed=7)
        whole = rendered.index
        assert isinstance(whole, RecordIndex)
        turns = rendered.conversation.turns
        for end in range(-1, len(turns) + 1):
            cut = whole.prefix(end)
            built = RecordIndex.build(case, turns, kb, turn_end=end)
            assert cut.texts == built.texts
            assert cut.sentences == built.sentences
            assert cut.roles == built.roles
            assert list(cut.hits.items()) == list(built.hits.items())
            assert list(cut.done_hits.items()) == list(built.done_hits.items())
            assert not cut.memo


def test_key_rates_read_back_from_the_disk_cache_are_the_same(monkeypatch, tmp_path) -> None:
    """The key-rate tables kept on disk come back float for float and in order; the probe
    runs again when the cache is off."""
    from behaviorsft.build.tasks import key_rates

    kb = load_kb()
    monkeypatch.setattr(key_rates, "PROBES", 1)  # a small probe (part of the fingerprint)
    monkeypatch.setenv(key_rates.KEY_RATE_CACHE, str(tmp_path))
    key_rates._RATES.clear()
    key_rates._EMITTED.clear()
    try:
        key_rates.measure(kb)
        measured = [(k, list(v.items())) for k, v in key_rates._RATES.items()]
        emitted = [(k, list(v.items())) for k, v in key_rates._EMITTED.items()]
        assert measured and emitted
        assert len(list(tmp_path.glob("key_rates-*.json"))) == 1

        probed: list[int] = []
        real = key_rates._probe
        monkeypatch.setattr(key_rates, "_probe", lambda kb, i: probed.append(i) or real(kb, i))
        key_rates._RATES.clear()
        key_rates._EMITTED.clear()
        key_rates.measure(kb)
        assert not probed  # read from the cache
        assert [(k, list(v.items())) for k, v in key_rates._RATES.items()] == measured
        assert [(k, list(v.items())) for k, v in key_rates._EMITTED.items()] == emitted

        monkeypatch.setenv(key_rates.KEY_RATE_CACHE, "off")
        key_rates._RATES.clear()
        key_rates._EMITTED.clear()
        key_rates.measure(kb)
        assert len(probed) == len(kb.conditions)
        assert [(k, list(v.items())) for k, v in key_rates._RATES.items()] == measured
    finally:  # the tables of the full probe for the tests that follow
        key_rates._RATES.clear()
        key_rates._EMITTED.clear()
