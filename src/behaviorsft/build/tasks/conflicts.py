"""Proactive: interpretation_conflict, data_conflict_resolution and consistency_check.

interpretation_conflict is built only from examination-report pairs that genuinely
conflict: each is listed, with its justification, in ``data/kb/conflicts.yaml``
(``conflict_pairs``), and an item needs the case's examination to include one of the
findings its pair names. Conditions without a listed pair, and cases whose examination
found none of its findings, are left out and counted (``Ctx.drop``).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from behaviorsft.build.audit import words
from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    _value_text,
    control_of,
)
from behaviorsft.build.tasks.conflict_pools import (
    DIAGNOSIS_RIGHT,
    considered_diagnoses,
    data_conflict_options,
    data_flag,
    data_phrasing,
    diagnosis_wrong,
    no_conflict_data,
    shown_text,
    slip_values,
    summary_excerpt,
)
from behaviorsft.build.tasks.dated_values import finding_turn, is_dated
from behaviorsft.build.tasks.key_rates import key_rate, register, weighted_sample
from behaviorsft.records import Finding, Perturbation, PerturbationKind
from behaviorsft.sources.exam_normals import alongside_findings, normal_results
from behaviorsft.sources.fhir_tidy import possible_range
from behaviorsft.sources.kb import KnowledgeBase, default_kb_root
from behaviorsft.sources.wording import observed
from behaviorsft.taxonomy import Complexity, TaskType

T = TaskType


class ConflictPair(BaseModel):
    """Examination findings a condition's contradicting report conflicts with, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exam: list[str] = Field(min_length=1, description="Examination findings it contradicts.")
    signs: list[str] = Field(min_length=1, description="The sign of each (same order).")
    alongside: list[str] = Field(
        min_length=3, description="Other signs whose normal result the examination documents."
    )
    justification: str = Field(min_length=1, description="Why both cannot be right.")


CONFLICTS_FILE = "conflicts.yaml"


@lru_cache(maxsize=1)
def _read_pairs() -> dict[str, ConflictPair]:
    path = default_kb_root() / CONFLICTS_FILE
    with path.open("r", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    out: dict[str, ConflictPair] = {}
    for cid, entry in (doc.get("conflicts") or {}).items():
        try:
            out[cid] = ConflictPair.model_validate(entry)
        except ValidationError as exc:
            raise ValueError(f"{CONFLICTS_FILE}: {cid}: {exc}") from None
    return out


def conflict_pairs(kb: KnowledgeBase) -> dict[str, ConflictPair]:
    """The genuine examination-report conflicts, by condition id, checked against ``kb``.

    Raises ValueError naming the file, entry and problem when an entry names an unknown
    condition or an examination finding the condition does not list, gives a sign per
    finding that does not match, or lists its own sign (or an unknown one) alongside.
    """
    pairs = _read_pairs()
    normal = normal_results()
    problems = []
    for cid, pair in pairs.items():
        cond = kb.conditions.get(cid)
        if cond is None:
            problems.append(f"{CONFLICTS_FILE}: {cid}: unknown condition id")
            continue
        problems += [
            f"{CONFLICTS_FILE}: {cid}: exam: {e!r} is not in conditions/{cid}.yaml exam"
            for e in pair.exam
            if e not in cond.exam
        ]
        if len(pair.signs) != len(pair.exam):
            problems.append(f"{CONFLICTS_FILE}: {cid}: signs: one per exam finding")
        problems += [
            f"{CONFLICTS_FILE}: {cid}: alongside: {s!r} is its own sign or not in normal_results"
            for s in pair.alongside
            if s in pair.signs or s not in normal
        ]
    if problems:
        raise ValueError("\n".join(problems))
    # The examination findings as a case documents them (sources/wording.py).
    out = {}
    for cid, pair in pairs.items():
        kept = [
            (x, sign) for e, sign in zip(pair.exam, pair.signs, strict=True) if (x := observed(e))
        ]
        out[cid] = pair.model_copy(
            update={"exam": [x for x, _ in kept], "signs": [sign for _, sign in kept]}
        )
    return out


NO_CONFLICT_REPORT = "No conflict: the report confirms the examination"


def no_conflict_report(sign: str) -> str:
    """The 'no issue' option of interpretation_conflict, naming an examined sign."""
    return f"{NO_CONFLICT_REPORT} ({sign}); no recheck needed"


def flag_report(sign: str) -> str:
    """The 'raise the issue' option of interpretation_conflict, naming an examined sign."""
    return f"Flag the mismatch with the examination ({sign}); recheck the study first"


def _key_sign(ctx: Ctx) -> tuple[ConflictPair, str, str] | None:
    """(pair, finding, sign): the first examination finding of this record that its
    condition's report genuinely contradicts, and its sign; None when there is none."""
    if ctx.cond is None or ctx.anchor("imaging") is None:
        return None
    pair = conflict_pairs(ctx.kb).get(ctx.cond.id)
    if pair is None:
        return None
    genuine = [
        (f.value_text, pair.signs[pair.exam.index(f.value_text)])
        for f in ctx.case.findings
        if f.kind == "exam" and f.value_text in pair.exam
    ]
    if not genuine:
        return None
    # the one whose sign other conditions' items name most as a wrong option (see below)
    hosts = sign_hosts(ctx.kb)
    exam, sign = max(genuine, key=lambda g: hosts[g[1]])
    return pair, exam, sign


def _ic_key_texts(ctx: object) -> tuple[list[str], int]:
    """The flag interpretation_conflict keys for this record (for ``key_rates``)."""
    assert isinstance(ctx, Ctx)
    key = _key_sign(ctx)
    return ([flag_report(key[2])] if key is not None else []), 1


register(T.INTERPRETATION_CONFLICT, _ic_key_texts)

# Wrong options per item: flags and "no conflict" statements naming other signs this
# examination documents (their normal results, kb/conflicts.yaml ``alongside``). Two flags
# and one "no conflict": a flag text is the key on its own condition's items and a "no
# conflict" text only on its controls (one case in two), so flags need more offers
# elsewhere to be the key as rarely as the others.
DECOY_FLAGS = 2
DECOY_NO_CONFLICT = 1

_HOSTS: dict[int, Counter[str]] = {}


def sign_hosts(kb: KnowledgeBase) -> Counter[str]:
    """For each sign, the number of conditions whose examination may document it as a
    wrong option's sign (``alongside``)."""
    hit = _HOSTS.get(id(kb))
    if hit is None:
        hit = _HOSTS[id(kb)] = Counter(
            s for pair in conflict_pairs(kb).values() for s in pair.alongside
        )
    return hit


# The offer-weight solve: documented examinations sampled per condition, and rounds of
# multiplicative correction toward offers in proportion to key counts.
SOLVE_SAMPLES = 96
SOLVE_ROUNDS = 12
_OFFER_WEIGHTS: dict[int, dict[str, float]] = {}


def _documented_sets(kb: KnowledgeBase) -> dict[str, list[list[str]]]:
    """Per condition with a pair, ``SOLVE_SAMPLES`` sets of the ``alongside`` signs an
    examination of it documents (``exam_normals.alongside_findings``, on a seed of its own)."""
    normal = normal_results()
    by_text = {v: k for k, v in normal.items()}
    out = {}
    for cid in conflict_pairs(kb):
        # the share of its cases reporting vomiting or diarrhoea, whose examination documents
        # no euvolaemia (synthetic.py): that share of the samples leaves it out too
        losses = 1.0 - math.prod(
            1.0 - s.frequency
            for s in kb.conditions[cid].symptoms
            if re.search(r"\bvomit|\bdiarrh", s.name, re.I)
        )
        out[cid] = [
            [
                by_text[t]
                for t in alongside_findings(
                    kb, cid, [], [], seed=-1, index=i, fluid_losses=i < losses * SOLVE_SAMPLES
                )
            ]
            for i in range(SOLVE_SAMPLES)
        ]
    return out


def _offers(
    sets: dict[str, list[list[str]]], items: dict[str, float], weight: dict[str, float]
) -> dict[str, float]:
    """Expected wrong-option offers per sign when ``DECOY_FLAGS + DECOY_NO_CONFLICT`` of each
    documented set are drawn by ``weight`` (a fixed stream: the same for every build)."""
    rng = random.Random("behaviorsft-ic-offer-solve")
    n = DECOY_FLAGS + DECOY_NO_CONFLICT
    got: dict[str, float] = {}
    for cid, samples in sets.items():
        share = items[cid] / len(samples)
        for signs in samples:
            if len(signs) < n:
                continue
            for s in weighted_sample(rng, signs, [weight[s] for s in signs], n):
                got[s] = got.get(s, 0.0) + share
    return got


def offer_weights(kb: KnowledgeBase) -> dict[str, float]:
    """Per ``alongside`` sign, the weight interpretation_conflict draws its wrong options'
    signs by, solved so that each sign is offered wrong about in proportion to how often
    its flag is the key (``key_rates``).

    Key rates alone are not enough: an examination documents up to four normal results
    and three are offered, so a sign documented in most examinations (the pulse, the
    general line taken whenever too few signs of the focused regions fit) is offered in
    most items whatever its weight would say, and a text offered far more often than it is
    the key marks itself wrong to a reader of the options alone. Here the documented sets
    are sampled per condition (weighted by its items per case), the expected offers per
    sign computed, and each weight multiplied by (target / offers) ** 0.5 for a few
    rounds, the targets being the offers shared in proportion to the key rates."""
    hit = _OFFER_WEIGHTS.get(id(kb))
    if hit is not None:
        return hit
    key = _sign_keys(kb)
    weight = {s: max(k, 1e-3) for s, k in key.items()}
    for _ in range(SOLVE_ROUNDS):
        for s, ratio in offer_balance(kb, weight).items():
            weight[s] *= (1 / ratio) ** 0.5 if ratio > 0 else 2.0
        top = max(weight.values())
        weight = {s: max(w / top, 1e-6) for s, w in weight.items()}
    _OFFER_WEIGHTS[id(kb)] = weight
    return weight


def _sign_keys(kb: KnowledgeBase) -> dict[str, float]:
    """Per ``alongside`` sign, the key rate of its flag."""
    return {s: key_rate(kb, T.INTERPRETATION_CONFLICT, flag_report(s)) for s in sign_hosts(kb)}


_SOLVE_INPUTS: dict[int, tuple[dict[str, list[list[str]]], dict[str, float]]] = {}


def offer_balance(kb: KnowledgeBase, weight: dict[str, float]) -> dict[str, float]:
    """Per sign that is ever a key, its expected wrong-option offers over its share of
    them in proportion to its key rate, when the signs are drawn by ``weight`` (1: offered
    as often as its key rate asks; above 1: over-offered, a text marking itself wrong)."""
    got = _SOLVE_INPUTS.get(id(kb))
    if got is None:
        pairs = conflict_pairs(kb)
        keyed_by = Counter(s for pair in pairs.values() for s in set(pair.signs))
        # items per case of each condition: the key rates of its signs, shared among the
        # conditions keyed by them
        items = {
            cid: sum(
                key_rate(kb, T.INTERPRETATION_CONFLICT, flag_report(s)) / keyed_by[s]
                for s in set(pair.signs)
            )
            for cid, pair in pairs.items()
        }
        got = _SOLVE_INPUTS[id(kb)] = (_documented_sets(kb), items)
    sets, items = got
    key = _sign_keys(kb)
    offers = _offers(sets, items, weight)
    total_offers = sum(offers.values())
    total_keys = sum(key.values()) or 1.0
    return {
        s: offers.get(s, 0.0) / (total_offers * k / total_keys) for s, k in key.items() if k > 0
    }


def gen_interpretation_conflict(ctx: Ctx) -> Iterator[Draft]:
    """A study report contradicting the examination; the control's report agrees.

    The report comes with its request, which quotes the examination as documented: the
    finding the report contradicts (``kb/conflicts.yaml``), the condition's other finding
    and the normal results of other signs examined (``sources/exam_normals.py``). Every
    option names a sign this examination documents: the flag and "no conflict" naming the
    contradicted finding's sign, and two flags and one "no conflict" naming signs of the
    normal results, which the report does not bear on (flagging them is a false alarm; the
    report cannot confirm them). So the reader must judge which documented finding the
    report contradicts. The wrong options' signs are drawn by weights solved so that each
    is offered in proportion to how often its flag is the key in its own cases
    (``offer_weights``), so every flag and "no conflict" text is the key in about the same
    share of the items offering it.
    """
    if ctx.cond is None or ctx.anchor("imaging") is None:
        return
    cond = ctx.cond
    imaging = cond.imaging[0]
    found = [f.value_text for f in ctx.case.findings if f.kind == "exam" and f.value_text]
    if not found:
        return
    pair = conflict_pairs(ctx.kb).get(cond.id)
    if pair is None:
        ctx.drop(T.INTERPRETATION_CONFLICT, "no genuine exam-report conflict for the condition")
        return
    key = _key_sign(ctx)
    if key is None:
        ctx.drop(T.INTERPRETATION_CONFLICT, "examination has no finding the report contradicts")
        return
    _, exam, sign = key
    normal = normal_results()
    documented = {
        s: normal[s] for s in pair.alongside if normal[s] in found
    }  # the normal results this examination documents, by sign
    candidates = list(documented)
    # drawn by weights solved so that each sign is offered about in proportion to how
    # often it is the key (``offer_weights``), however often examinations document it
    solved = offer_weights(ctx.kb)
    weights = [solved.get(s, 0.0) for s in candidates]
    n_decoys = DECOY_FLAGS + DECOY_NO_CONFLICT
    negatives = weighted_sample(ctx.rng, candidates, weights, n_decoys)
    if len(negatives) < n_decoys:
        ctx.drop(T.INTERPRETATION_CONFLICT, "too few other signs documented")
        return
    end = (ctx.anchor("imaging") or 1) - 1
    # the report as the record gives it (a known tumour adds its mass: sources/history.py),
    # the original the planted report replaces
    reported = next(
        (
            f.value_text
            for f in ctx.case.findings
            if f.kind == "imaging" and f.name == imaging.modality and f.value_text
        ),
        imaging.finding,
    )
    question = "Does the report in the last note fit the examination, and what should the team do?"
    request = f"{imaging.modality} request. Examination: {'; '.join(found)}."
    excerpt = f"{request} Report: {imaging.contradicting_finding}."
    flag = flag_report(sign)
    decoys = [flag_report(s) for s in negatives[:DECOY_FLAGS]] + [
        no_conflict_report(s) for s in negatives[DECOY_FLAGS:]
    ]
    others = "; ".join(f"{s}: {documented[s]}" for s in negatives)
    silent = f"the report does not bear on the other signs named ({others})"
    main = Draft(
        task_type=T.INTERPRETATION_CONFLICT,
        key="i0",
        question=question,
        anchor_any=True,
        correct=flag,
        pool=[],
        fixed=[no_conflict_report(sign), *decoys],
        rationale=f"The examination found {exam}, but the report says "
        f"{imaging.contradicting_finding}. {pair.justification} The discrepancy must be "
        f"raised before acting on either; {silent}.",
        turn_start=0,
        turn_end=end,
        excerpt=excerpt,
        perturbation=Perturbation(
            kind=PerturbationKind.CONFLICT,
            location="context.excerpt",
            original=reported,
            modified=imaging.contradicting_finding,
            description="Imaging report contradicts the examination.",
        ),
    )
    yield main
    if ctx.is_control(T.INTERPRETATION_CONFLICT):
        yield control_of(
            main,
            key="ic",
            correct=no_conflict_report(sign),
            fixed=[flag, *decoys],  # false alarms, or a confirmation the report cannot give
            rationale=f"The report ({reported}) confirms the examination ({exam}); "
            f"flagging a mismatch would be a false alarm, and {silent}, so it confirms "
            "none of them.",
            excerpt=f"{request} Report: {reported}.",
        )


NO_CONFLICT_DATA = "No conflict: the values agree"


def gen_data_conflict(ctx: Ctx) -> Iterator[Draft]:
    if is_dated(ctx):
        yield from _dated_data_conflict(ctx)
        return
    numeric = [
        f
        for f in ctx.case.findings
        if f.value is not None
        and f.kind != "exam"
        and (f.name, f.day) in ctx.rendered.finding_turns
    ]
    if len(numeric) < 3:
        return
    f = ctx.rng.choice(numeric)
    assert f.value is not None
    turn = ctx.rendered.finding_turns[(f.name, f.day)]
    end = min(ctx.n_turns - 1, turn + 2)
    # The note's value and the wrong options' values come from one list of plausible,
    # clearly different readings of this test (the record's own numbers first), so
    # neither plausibility nor record quotes tell the note's value from the others.
    slips = slip_values(ctx, f, shown_text(ctx, 0, end, None))
    if len(slips) < 5:
        return
    yield from _data_conflict_items(ctx, f, turn, end, slips)


def _dated_data_conflict(ctx: Ctx) -> Iterator[Draft]:
    """data_conflict_resolution on a dated (imported) record: a result of any date shown,
    drawn among those with five slip values the record quotes (so every option quotes
    it alike: values it never states made the quoted key the best-quoted option)."""
    numeric = [
        f
        for f in ctx.case.findings
        if f.value is not None and f.kind != "exam" and finding_turn(ctx, f) is not None
    ]
    if len(numeric) < 3:
        return
    ctx.rng.shuffle(numeric)
    for f in numeric:
        turn = finding_turn(ctx, f)
        assert turn is not None
        end = min(ctx.n_turns - 1, turn + 2)
        text = shown_text(ctx, 0, end, None)
        record = words(text)
        every = slip_values(ctx, f, text, k=1 << 10, possible=possible_range(f.code))
        quoted = [v for v in every if words(v) <= record]
        # Written as long as the table's value first: the options differ in their values
        # alone, and a slip of another length made the key the longest option.
        size = len(_value_text(f))
        slips = [v for v in quoted if len(v) == size] + [v for v in quoted if len(v) != size]
        if len(slips) >= 5:
            slips = slips[:5]
            ctx.rng.shuffle(slips)
            yield from _data_conflict_items(ctx, f, turn, end, slips)
            return
    ctx.drop(T.DATA_CONFLICT_RESOLUTION, "no result with 5 slip values the record quotes")


def _data_conflict_items(
    ctx: Ctx, f: Finding, turn: int, end: int, slips: list[str]
) -> Iterator[Draft]:
    bad_text, others = slips[0], slips[1:]
    when = f"day {f.day:g}" if f.day is not None else "the same draw"
    if f.day is None and f.time is not None:  # a dated record: the reading's date
        when = f.time.date().isoformat()
    name = f.name.lower()
    phrasing = data_phrasing(ctx.rng, when)
    correct = data_flag(name, _value_text(f), bad_text, phrasing)
    # A vital sign is a reading, not a sample (a specimen).
    what = "reading" if f.kind == "vital" else "sample"
    question = f"Two records of the same {what} are shown above. What should happen next?"
    note = f"Note ({when}): {f.name} {bad_text} on this {what}."
    # Item and control offer the same two templates, with values of this test only:
    # three flags of a pair and two "no conflict" statements, one of each quoting the
    # table's value as it is; only comparing the note with the table decides.
    fixed, pool = data_conflict_options(name, _value_text(f), others, phrasing, main=True)
    main = Draft(
        task_type=T.DATA_CONFLICT_RESOLUTION,
        key="c0",
        question=question,
        correct=correct,
        pool=pool,
        fixed=fixed,
        rationale=f"Turn {turn} reports {f.name} {_value_text(f)} but the note gives {bad_text} "
        f"for the same {what} ({when}); neither can be trusted until checked.",
        turn_start=0,
        turn_end=end,
        excerpt=note,
        perturbation=Perturbation(
            kind=PerturbationKind.CONFLICT,
            location="context.excerpt",
            original=_value_text(f),
            modified=bad_text,
            description=f"{f.name} transcribed with a different value.",
        ),
        complexity=Complexity.ADVANCED,
    )
    yield main
    if ctx.is_control(T.DATA_CONFLICT_RESOLUTION):
        note_c = f"Note ({when}): {f.name} {_value_text(f)} on this {what}."
        fixed_c, pool_c = data_conflict_options(name, _value_text(f), others, phrasing, main=False)
        yield control_of(
            main,
            key="cc",
            correct=no_conflict_data(name, _value_text(f), phrasing),
            fixed=fixed_c,
            pool=pool_c,
            rationale=f"The note repeats {f.name} {_value_text(f)} exactly as turn {turn}.",
            excerpt=note_c,
        )


CONSISTENT = "Yes: it is consistent with the record"


def gen_consistency(ctx: Ctx) -> Iterator[Draft]:
    """Discharge summaries naming a discussed differential, and (every second case) one
    naming the working diagnosis as the control.

    Both discussed differentials get an item (one when the condition has one): with one
    control per two cases, "Correct" is then the answer of one task in five, as often as
    each "Incorrect" option, so the options alone do not favour it (with one item per case
    it was the answer of one task in three, and always picking it scored 33%).
    """
    if ctx.cond is None or not ctx.cond.differentials:
        return
    cond = ctx.cond
    question = "Check the discharge summary against the case. Is its diagnosis right?"
    main: Draft | None = None

    def discussed(stated: str, listed: list[str]) -> list[str]:
        """The differentials the team discussed (turn "ddx"), other than ``stated`` and
        those ``listed``: the summary lists them as considered too, as a real one would."""
        seen = {n.lower() for n in [stated, cond.name, *listed]}
        return [x.name for x in cond.differentials[:2] if x.name.lower() not in seen]

    for i, d in enumerate(cond.differentials[:2]):
        # Item and control: "correct" for the summary's diagnosis and "incorrect" naming
        # others, all conditions this patient could have (see ``considered_diagnoses``)
        # that the summary lists as considered, so the record quotes every option alike.
        wrong = considered_diagnoses(ctx, d.name, 3)
        item = Draft(
            task_type=T.CONSISTENCY_CHECK,
            key=f"k{i}",
            question=question,
            correct=diagnosis_wrong(cond.name),
            pool=[diagnosis_wrong(n) for n in wrong],
            fixed=[DIAGNOSIS_RIGHT],
            rationale=f"The record supports {cond.name} and the team judged {d.name} less "
            "likely"
            + (f" ({ctx.rendered.reasons[d.name]})." if d.name in ctx.rendered.reasons else "."),
            turn_start=0,
            turn_end=ctx.n_turns - 1,
            excerpt=summary_excerpt(
                d.name, [cond.name, *discussed(d.name, wrong), *wrong], ctx.rng
            ),
            perturbation=Perturbation(
                kind=PerturbationKind.INCONSISTENCY,
                location="context.excerpt",
                original=cond.name,
                modified=d.name,
                description="Summary states a diagnosis the findings argue against.",
            ),
        )
        main = main or item
        yield item
    if main is not None and ctx.is_control(T.CONSISTENCY_CHECK):
        wrong_c = considered_diagnoses(ctx, cond.name, 4)
        yield control_of(
            main,
            key="kc",
            correct=DIAGNOSIS_RIGHT,
            pool=[diagnosis_wrong(n) for n in wrong_c],
            rationale=f"The summary's diagnosis, {cond.name}, is the one the record supports.",
            excerpt=summary_excerpt(cond.name, [*discussed(cond.name, wrong_c), *wrong_c], ctx.rng),
        )
