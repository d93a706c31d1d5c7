"""Proactive: interpretation_conflict, data_conflict_resolution and consistency_check.

interpretation_conflict is built only from examination-report pairs that genuinely
conflict: each is listed, with its justification, in ``data/kb/conflicts.yaml``
(``conflict_pairs``), and an item needs the case's examination to include one of the
findings its pair names. Conditions without a listed pair, and cases whose examination
found none of its findings, are left out and counted (``Ctx.drop``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    _alt_values,
    _decimals,
    _value_text,
    _words,
    control_of,
)
from behaviorsft.records import Perturbation, PerturbationKind
from behaviorsft.sources.kb import KnowledgeBase, default_kb_root
from behaviorsft.taxonomy import Complexity, TaskType

T = TaskType


class ConflictPair(BaseModel):
    """Examination findings a condition's contradicting report conflicts with, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exam: list[str] = Field(min_length=1, description="Examination findings it contradicts.")
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
    condition or an examination finding the condition does not list.
    """
    pairs = _read_pairs()
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
    if problems:
        raise ValueError("\n".join(problems))
    return pairs


NO_CONFLICT_REPORT = "No conflict: the report fits the examination"


def flag_report(exam: str) -> str:
    """The 'raise the issue' option of interpretation_conflict, naming an examination finding."""
    return f"Flag the mismatch with the examination ({exam}); recheck the study"


def gen_interpretation_conflict(ctx: Ctx) -> Iterator[Draft]:
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
    genuine = [e for e in found if e in pair.exam]
    if not genuine:
        ctx.drop(T.INTERPRETATION_CONFLICT, "examination has no finding the report contradicts")
        return
    exam = genuine[0]
    # The decoy flag names another finding of this examination that the report does not
    # contradict (not in the pair, sharing no word with the report): it is in the record
    # like the right one, so "the flag that quotes the record" gives nothing away, and
    # only knowing which findings the report contradicts tells them apart. Failing that, a
    # typical finding of the condition that this examination did NOT find.
    report_words = _words(imaging.contradicting_finding)
    compatible = [e for e in found if e not in pair.exam and not (_words(e) & report_words)]
    unfound = [e for e in cond.exam if e not in found] or [
        e for c in ctx.kb.conditions.values() if c.id != cond.id for e in c.exam
    ]
    # Longer or shorter than the right finding at random, so the flags' lengths say nothing.
    longer = ctx.rng.random() < 0.5
    sided = [e for e in compatible + unfound if (len(e) > len(exam)) == longer]
    decoy = ctx.rng.choice([e for e in sided if e in compatible] or sided or unfound)
    decoy_note = (
        f"{decoy}, also found, does not contradict the report"
        if decoy in compatible
        else f"the examination did not record {decoy}"
    )
    end = (ctx.anchor("imaging") or 1) - 1
    question = "How should the team handle the report in the last note?"
    # Wrong either way; each names the real or the decoy finding at random, so counting
    # which finding recurs across the options does not point at the right flag.
    e1, e2, e3, e4, e5 = (ctx.rng.choice((exam, decoy)) for _ in range(5))
    pool = [
        f"Accept the report over the examination ({e1}) and stop treatment",
        f"Ignore the report: the examination ({e2}) alone decides",
        f"Repeat the admission bloods, then decide between report and {e3}",
        f"Accept the report and discharge with follow-up for {cond.name.lower()}",
        f"Treat the report as confirming {cond.name.lower()} and continue",
        f"Start treatment for the report's finding and stop the plan for {e4}",
        f"Repeat the examination ({e5}) tomorrow and act on the report until then",
        f"Document the report, keep the current plan and re-image only if {exam} worsens",
    ]
    flag = flag_report(exam)
    # Main item and control offer the same three: the real flag, the decoy flag and
    # "no conflict"; only the report decides which one is right.
    main = Draft(
        task_type=T.INTERPRETATION_CONFLICT,
        key="i0",
        question=question,
        anchor_any=True,
        correct=flag,
        pool=pool,
        fixed=[NO_CONFLICT_REPORT, flag_report(decoy)],
        rationale=f"The examination found {exam}, but the report says "
        f"{imaging.contradicting_finding}. {pair.justification} The discrepancy must be "
        f"raised before acting on either; {decoy_note}.",
        turn_start=0,
        turn_end=end,
        excerpt=f"{imaging.modality} report: {imaging.contradicting_finding}.",
        perturbation=Perturbation(
            kind=PerturbationKind.CONFLICT,
            location="context.excerpt",
            original=imaging.finding,
            modified=imaging.contradicting_finding,
            description="Imaging report contradicts the examination.",
        ),
    )
    yield main
    if ctx.is_control(T.INTERPRETATION_CONFLICT):
        yield control_of(
            main,
            key="ic",
            correct=NO_CONFLICT_REPORT,
            fixed=[flag, flag_report(decoy)],  # false alarms: nothing contradicts
            rationale=f"The report ({imaging.finding}) agrees with the examination ({exam}); "
            f"flagging a mismatch would be a false alarm ({decoy_note}).",
            excerpt=f"{imaging.modality} report: {imaging.finding}.",
        )


NO_CONFLICT_DATA = "No conflict: the values agree"


def gen_data_conflict(ctx: Ctx) -> Iterator[Draft]:
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
    factors = [0.4, 0.5, 1.8, 2.2, 2.5, 3.0, 4.0]
    ctx.rng.shuffle(factors)
    d = max(_decimals(f.value), 1 if abs(f.value) < 10 else 0)
    unit = f" {f.unit}" if f.unit else ""
    texts = [(f"{f.value * k:.{d}f}" if d else str(round(f.value * k))) + unit for k in factors]
    bad_text = next((t for t in texts if t != _value_text(f) and float(t.split()[0]) != 0), "")
    if not bad_text:
        return
    when = f"day {f.day:g}" if f.day is not None else "the same draw"
    name = f.name.lower()
    others = ctx.rng.sample([g for g in numeric if g.name != f.name], 2 if len(numeric) < 4 else 3)
    pool = [
        f"Act on {bad_text}, the {name} value given in the note",
        f"Average the two {name} values and act on the mean",
        f"Ignore the note: the table is always right about {name}",
        f"Act on {_value_text(f)} and file the note without comment",
    ]
    for g in others:
        alt = _alt_values(g, ctx.rng)
        if alt:
            pool.append(
                f"Flag the {g.name.lower()} mismatch ({_value_text(g)} vs {alt[0]}); verify or "
                "repeat"
            )
    # Same lab, wrong numbers: only a reader who compares the actual values rules these out.
    for wrong in [t for t in texts if t not in (bad_text, _value_text(f))][:2]:
        pool.append(f"Flag the {name} mismatch ({_value_text(f)} vs {wrong}); verify or repeat")
    pool.append(f"Act on {bad_text}, the {name} value in the note, and recheck it tomorrow")
    correct = f"Flag the {name} mismatch ({_value_text(f)} vs {bad_text}); verify or repeat"
    question = "Two records of the same sample are shown above. What should happen next?"
    main = Draft(
        task_type=T.DATA_CONFLICT_RESOLUTION,
        key="c0",
        question=question,
        correct=correct,
        pool=pool,
        fixed=[NO_CONFLICT_DATA],
        rationale=f"Turn {turn} reports {f.name} {_value_text(f)} but the note gives {bad_text} "
        f"for the same sample ({when}); neither can be trusted until checked.",
        turn_start=0,
        turn_end=min(ctx.n_turns - 1, turn + 2),
        excerpt=f"Note ({when}): {f.name} {bad_text} on this sample.",
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
        yield control_of(
            main,
            key="cc",
            correct=NO_CONFLICT_DATA,
            rationale=f"The note repeats {f.name} {_value_text(f)} exactly as turn {turn}.",
            excerpt=f"Note ({when}): {f.name} {_value_text(f)} on this sample.",
        )


CONSISTENT = "Yes: it is consistent with the record"


def gen_consistency(ctx: Ctx) -> Iterator[Draft]:
    if ctx.cond is None or not ctx.cond.differentials:
        return
    cond = ctx.cond
    d = ctx.rng.choice(cond.differentials[:2])
    others = [c.name for c in ctx.kb.conditions.values() if c.id != cond.id]
    question = "Check the discharge summary against the case. Is its diagnosis right?"
    pool = [f"No: the findings point to {o.lower()}" for o in others]
    main = Draft(
        task_type=T.CONSISTENCY_CHECK,
        key="k0",
        question=question,
        correct=f"No: the findings point to {cond.name.lower()}",
        pool=[p for p in pool if d.name.lower() not in p],
        fixed=[CONSISTENT],
        rationale=f"The record supports {cond.name} and documents what argues against "
        f"{d.name} ({d.argues_against}).",
        turn_start=0,
        turn_end=ctx.n_turns - 1,
        excerpt=f"Discharge summary: final diagnosis {d.name}.",
        perturbation=Perturbation(
            kind=PerturbationKind.INCONSISTENCY,
            location="context.excerpt",
            original=cond.name,
            modified=d.name,
            description="Summary states a diagnosis the findings argue against.",
        ),
    )
    yield main
    if ctx.is_control(T.CONSISTENCY_CHECK):
        yield control_of(
            main,
            key="kc",
            correct=CONSISTENT,
            pool=pool,
            rationale=f"The summary's diagnosis, {cond.name}, is the one the record supports.",
            excerpt=f"Discharge summary: final diagnosis {cond.name}.",
        )
