"""Proactive: interpretation_conflict, data_conflict_resolution and consistency_check."""

from __future__ import annotations

from collections.abc import Iterator

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
    quoted_decoy,
    report_handling_options,
    shown_text,
    shown_words,
    slip_values,
    summary_excerpt,
)
from behaviorsft.records import Perturbation, PerturbationKind
from behaviorsft.taxonomy import Complexity, TaskType

T = TaskType


NO_CONFLICT_REPORT = "No conflict: the report fits the examination"


def no_conflict_report(exam: str) -> str:
    """The 'no issue' option of interpretation_conflict, naming the examination's finding."""
    return f"{NO_CONFLICT_REPORT} ({exam}); no recheck needed"


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
    exam = found[0]
    # A typical finding of the same condition that this examination did NOT find: a flag
    # naming it is wrong on every item (the examination never said so), yet it reads like
    # the right flag, so "the option that flags something" gives nothing away.
    unfound = [e for e in cond.exam if e not in found] or [
        e for c in ctx.kb.conditions.values() if c.id != cond.id for e in c.exam
    ]
    end = (ctx.anchor("imaging") or 1) - 1
    question = "How should the team handle the report in the last note?"
    excerpt = f"{imaging.modality} report: {imaging.contradicting_finding}."
    record = shown_words(ctx, 0, end, excerpt)
    decoy = quoted_decoy(unfound, record, ctx.rng)
    pool = report_handling_options(ctx, exam, decoy, record, question)
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
        fixed=[no_conflict_report(exam), flag_report(decoy)],
        rationale=f"The examination found {exam}, but the report says "
        f"{imaging.contradicting_finding}; the two cannot both be right, so the discrepancy "
        f"must be raised before acting on either. The examination did not record {decoy}.",
        turn_start=0,
        turn_end=end,
        excerpt=excerpt,
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
            correct=no_conflict_report(exam),
            fixed=[flag, flag_report(decoy)],  # false alarms: nothing contradicts
            rationale=f"The report ({imaging.finding}) agrees with the examination ({exam}); "
            f"flagging a mismatch would be a false alarm (and {decoy} was not found).",
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
    end = min(ctx.n_turns - 1, turn + 2)
    # The note's value and the wrong options' values come from one list of plausible,
    # clearly different readings of this test (the record's own numbers first), so
    # neither plausibility nor record quotes tell the note's value from the others.
    slips = slip_values(ctx, f, shown_text(ctx, 0, end, None))
    if len(slips) < 5:
        return
    bad_text, others = slips[0], slips[1:]
    when = f"day {f.day:g}" if f.day is not None else "the same draw"
    name = f.name.lower()
    phrasing = data_phrasing(ctx.rng, when)
    correct = data_flag(name, _value_text(f), bad_text, phrasing)
    question = "Two records of the same sample are shown above. What should happen next?"
    note = f"Note ({when}): {f.name} {bad_text} on this sample."
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
        f"for the same sample ({when}); neither can be trusted until checked.",
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
        note_c = f"Note ({when}): {f.name} {_value_text(f)} on this sample."
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
    if ctx.cond is None or not ctx.cond.differentials:
        return
    cond = ctx.cond
    d = ctx.rng.choice(cond.differentials[:2])
    question = "Check the discharge summary against the case. Is its diagnosis right?"
    # Item and control: "correct" for the summary's diagnosis and "incorrect" naming others,
    # all of them this patient's differentials (or conditions of the same system) that the
    # summary lists as considered, so the record quotes every option alike.
    wrong = considered_diagnoses(ctx, d.name, 3)
    main = Draft(
        task_type=T.CONSISTENCY_CHECK,
        key="k0",
        question=question,
        correct=diagnosis_wrong(cond.name),
        pool=[diagnosis_wrong(n) for n in wrong],
        fixed=[DIAGNOSIS_RIGHT],
        rationale=f"The record supports {cond.name} and documents what argues against "
        f"{d.name} ({d.argues_against}).",
        turn_start=0,
        turn_end=ctx.n_turns - 1,
        excerpt=summary_excerpt(d.name, [cond.name, *wrong], ctx.rng),
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
        wrong_c = considered_diagnoses(ctx, cond.name, 4)
        yield control_of(
            main,
            key="kc",
            correct=DIAGNOSIS_RIGHT,
            pool=[diagnosis_wrong(n) for n in wrong_c],
            rationale=f"The summary's diagnosis, {cond.name}, is the one the record supports.",
            excerpt=summary_excerpt(cond.name, wrong_c, ctx.rng),
        )
