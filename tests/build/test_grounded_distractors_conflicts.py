"""Conflict and standard-of-care items: wrong options as grounded in the record as the key.

"Pick the option whose words the record shows most" (or least) must not find the
answer; main items and restraint controls must offer the same option templates; and
every wrong option must still be wrong for this record when read.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest

from behaviorsft.bench import load_bench, task_context_text
from behaviorsft.build.audit import chance, record_match_hit, words
from behaviorsft.build.pipeline import build_bench
from behaviorsft.build.tasks.conflict_pools import (
    DIAGNOSIS_RIGHT,
    pick_even_quote,
)
from behaviorsft.build.tasks.omissions import MEETS_STANDARD
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_cases
from behaviorsft.store import write_jsonl
from behaviorsft.taxonomy import TaskType

T = TaskType
OWNED = (
    T.CONSISTENCY_CHECK,
    T.INTERPRETATION_CONFLICT,
    T.DATA_CONFLICT_RESOLUTION,
    T.STANDARD_OF_CARE,
)
_AGREE = re.compile(r"^The note \((.+?)\) and the table \((.+?)\) agree on (.+?)(?: \((.+)\))?: ")
_DISAGREE = re.compile(r"^The note \((.+?)\) and the table \((.+?)\) disagree on (.+): verify")
_NOTE = re.compile(r"^Note \((.+?)\): (.+) on this (?:sample|reading)\.$")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grounded")
    write_jsonl(tmp / "cases.jsonl", synthesize_cases(100, seed=3, kb=load_kb()))
    build_bench(tmp / "cases.jsonl", tmp / "bench", workers=1)
    return load_bench(tmp / "bench")


def _template(ttype: TaskType, text: str) -> str:
    """An option with its record-specific fill-ins (findings, values, items) removed."""
    if ttype is T.CONSISTENCY_CHECK:
        return "right" if text == DIAGNOSIS_RIGHT else text.split(":")[0]
    if ttype is T.INTERPRETATION_CONFLICT:
        if text.startswith("No conflict: the report fits the examination ("):
            return "no issue"
        if text.startswith("Flag the mismatch with the examination ("):
            return "flag"
        return "other"
    if ttype is T.DATA_CONFLICT_RESOLUTION:
        return "agree" if _AGREE.match(text) else "disagree" if _DISAGREE.match(text) else text
    if text == MEETS_STANDARD or re.match(
        r"^Yes: .* and all other requirements are documented$", text
    ):
        return "meets"
    return "required" if re.match(r"^No: .* is required( \(.*\))?$", text) else text


def test_record_match_stays_near_chance(bench):
    """Regression bound: both record-match shortcuts within chance + 0.10 (100 cases).

    On the 120-case build of the issue they were at most 0.77 (consistency_check), 0.53
    (interpretation_conflict), 0.36 (standard_of_care) and 0.30 fewest
    (data_conflict_resolution); see docs/building.md for the figures at 600 and 6,876
    cases.
    """
    by_type: dict[TaskType, list[tuple[float, float, float]]] = defaultdict(list)
    for t in bench.tasks:
        if t.task_type not in OWNED:
            continue
        record = words(task_context_text(t, bench.conversations.get(t.case_id)))
        most = record_match_hit(t, record)
        fewest = record_match_hit(t, record, most=False)
        by_type[t.task_type].append((chance(t), most, fewest))
    assert set(by_type) == set(OWNED)
    for ttype, rows in by_type.items():
        n = len(rows)
        ch, most, fewest = (sum(r[i] for r in rows) / n for i in range(3))
        print(ttype.value, f"n={n} chance={ch:.3f} most={most:.3f} fewest={fewest:.3f}")
        assert most <= ch + 0.10, (ttype, most)
        assert fewest <= ch + 0.10, (ttype, fewest)


def test_items_and_controls_share_option_templates(bench):
    for ttype in OWNED:
        of_type = [t for t in bench.tasks if t.task_type is ttype]
        main = Counter(
            tuple(sorted(Counter(_template(ttype, o.text) for o in t.options).items()))
            for t in of_type
            if not t.restraint_control
        )
        ctrl = Counter(
            tuple(sorted(Counter(_template(ttype, o.text) for o in t.options).items()))
            for t in of_type
            if t.restraint_control
        )
        assert main and ctrl
        if ttype is T.STANDARD_OF_CARE:
            # "meets the standard" is offered on only some items (so that it is the key
            # one time in five, ``omissions.yes_plans``): the others offer a fifth "No"
            # in its place, which an options-only reader cannot see (it scores each option)
            top = ctrl.most_common(1)[0][0]
            assert top == (("meets", 1), ("required", 4)), ctrl
            no_meets = (("required", 5),)
            assert set(main) <= {top, no_meets} and main[top] and main[no_meets], main
            assert ctrl[top] / sum(ctrl.values()) > 0.9, (ttype, ctrl)
            continue
        # the most common set of templates is the same on items and controls, and covers
        # nearly all of both
        top = main.most_common(1)[0][0]
        assert ctrl.most_common(1)[0][0] == top, (ttype, main, ctrl)
        assert main[top] / sum(main.values()) > 0.9, (ttype, main)
        assert ctrl[top] / sum(ctrl.values()) > 0.9, (ttype, ctrl)


def test_data_conflict_options_are_wrong_for_the_record(bench):
    """Exactly one option states what the note and the table say; the note's value is a
    plausible reading, clearly different from the table's."""
    for t in (x for x in bench.tasks if x.task_type is T.DATA_CONFLICT_RESOLUTION):
        note = _NOTE.match(t.context.excerpt)
        assert note, t.id
        stated = note[2]  # "<Test name> <value> <unit>"
        table = (t.perturbation.original if t.perturbation else None) or next(
            m[2] for o in t.options if (m := _AGREE.match(o.text)) and o.text == t.answer_text
        )
        note_value = t.perturbation.modified if t.perturbation else table
        assert stated.endswith(f" {note_value}"), t.id
        true_options = []
        for o in t.options:
            if m := _DISAGREE.match(o.text):
                assert m[2] == table and m[1] != table, t.id
                if m[1] == note_value:
                    true_options.append(o.text)
            elif m := _AGREE.match(o.text):
                assert m[1] == m[2], t.id
                if m[1] == table == note_value:
                    true_options.append(o.text)
            else:
                raise AssertionError((t.id, o.text))
        assert true_options == [t.answer_text], t.id
        if t.perturbation:
            a, b = (float(x.split()[0]) for x in (table, note_value))
            assert abs(a - b) >= 0.1 * abs(a) and b > 0, t.id
            if table.endswith(" %"):
                assert b <= 100, t.id


def test_consistency_options_name_diagnoses_the_summary_lists(bench):
    for t in (x for x in bench.tasks if x.task_type is T.CONSISTENCY_CHECK):
        summary = t.context.excerpt
        m = re.match(
            r"^Discharge summary: final diagnosis (.+?)\. Also considered: (.+)\.$", summary
        )
        assert m, t.id
        final, considered = m[1].lower(), [x.lower() for x in m[2].split("; ")]
        named = [
            o.text.split("Incorrect: the findings point to ", 1)[1]
            for o in t.options
            if o.text.startswith("Incorrect:")
        ]
        # every option is listed; so are the differentials the team discussed, which are
        # no options (17-000341: a summary leaving them out; test_record_agreement.py)
        assert set(named) <= set(considered), t.id
        said = " ".join(x.text for x in bench.conversations[t.case_id].turns).lower()
        for extra in set(considered) - set(named) - {final}:
            assert f"{extra} is less likely" in said, (t.id, extra)
        assert final not in named, t.id  # "incorrect, it is X" when the summary says X: never
        # no disease twice under two names ("cellulitis", "cellulitis (non-purulent)")
        bases = [n.split(" (")[0] for n in [final, *named]]
        assert len(set(bases)) == len(bases), t.id
        assert (t.answer_text == DIAGNOSIS_RIGHT) == t.restraint_control, t.id
        if not t.restraint_control:  # the key names the diagnosis the record supports
            assert t.perturbation.original.lower() in t.answer_text, t.id


def test_pick_even_quote_spreads_the_anchor_rank():
    import random

    rng = random.Random(0)
    anchor = "x" * 20
    pool = ["y" * n for n in range(5, 40)]
    score = {p: (len(p) * 7919) % 13 / 13 for p in pool}
    score[anchor] = 0.5
    top = longest = 0
    for _ in range(2000):
        picked = pick_even_quote([anchor], pool, 4, rng, score.__getitem__)
        assert len(picked) == 4 and len(set(picked)) == 4
        top += all(score[p] <= 0.5 for p in picked)
        longest += all(len(p) <= 20 for p in picked)
    # about 1 in 5 each, as for a uniform guess
    assert 0.12 < top / 2000 < 0.28
    assert 0.12 < longest / 2000 < 0.28
