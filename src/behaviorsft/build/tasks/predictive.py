"""Proactive: predictive_next_action (the next guideline step, or none).

A step is a key only when the record the task shows makes it due: a conditional step
("surgical review if necrotising infection is suspected", "ICU for high-flow oxygen
failure") only when the record documents its condition, never when the record rules it out
(the attending calls it unlikely) or is silent; a step the record already reports is not
"next". Steps that fail are left out and counted (``Ctx.drop``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from behaviorsft.build.coherence import (
    AT_DISCHARGE,
    SCHEDULE,
    after_discharge,
    done_by_discharge,
    startable,
    state_record,
    state_shown,
)
from behaviorsft.build.record_index import NEGATIVE, RecordIndex, condition_holds, split_condition
from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    _cap,
    _sample,
    _unrelated,
    control_of,
)
from behaviorsft.build.tasks.key_rates import key_rate, register, weighted_sample
from behaviorsft.sources import prescribing
from behaviorsft.sources.history import known_step
from behaviorsft.taxonomy import TaskType

T = TaskType


NO_ACTION = "No new action is needed now; continue the current plan"
# Work-up whose result the record must show before 'no new action' can be the key: an
# update calling it "done" without a result does not make it done (31-000216: new AF
# with no echocardiogram or thyroid function in the record).
WORKUP = re.compile(
    r"\b(?:echocardiogra\w*|thyroid function|TSH|ultrasound|CT|MRI|endoscopy|biopsy)\b"
)


def _not_due(action: str, idx: RecordIndex) -> str | None:
    """Why ``action`` is not a verified next step for the record ``idx``, or None if it is."""
    if NEGATIVE.search(action):
        return "is a recommendation against something"
    if after_discharge(action):
        return "happens after discharge"
    core, clause = split_condition(action)
    if clause is not None:
        holds = condition_holds(clause, idx)
        if holds is False:
            return "condition ruled out in record"
        if holds is None:
            return "condition not documented"
    if idx.phrase_refs(core, affirmed=True):
        return "already in record"
    # a step that asks for a test (named first, once: not a repeat, a trend or a use of
    # it) that the record shows done under another name ("thyroid function (TSH) at first
    # diagnosis" with a TSH in the day-0 table)
    if not _USES_AGAIN.search(core):
        asked = [c for c in idx.entities(" ".join(core.split()[:3])) if c.kind in _TESTS]
        if asked and all(idx.shows_done(c) for c in asked):
            return "already in record"
    return None


_TESTS = ("test", "group")
# a step that repeats, trends or uses a test the record has ("repeat potassium 1-2 h after
# treatment", "procalcitonin ... to guide shortening of antibiotics")
_USES_AGAIN = re.compile(
    r"\b(?:repeat|recheck|serial|again|until|guide|monitor|trend|daily|every|after)\b", re.I
)


def _due(ctx: Ctx, end: int) -> tuple[list[str], list[tuple[str, str]]]:
    """This condition's verified next steps at turn ``end``, and (step, why) for the rest."""
    assert ctx.cond is not None
    idx = ctx.index(turn_end=end)
    due, not_due = [], []
    # a step starting a drug whose indication the record lacks (allopurinol with no
    # recurrent flares or tophi) is not due: the day-2 plan says so (prescribing.py)
    facts = ctx.case.facts
    shown = prescribing.documented(
        [f[len("History: ") : -1] for f in facts if f.startswith("History: ")],
        [f.value_text or "" for f in ctx.case.findings if f.kind == "exam"],
    )
    history = [f[len("History: ") : -1] for f in facts if f.startswith("History: ")]
    states = _states(ctx)
    said = " ".join(f[len("History: ") :] for f in facts if f.startswith("History: "))
    steps = prescribing.steps_for_history(ctx.cond.id, ctx.cond.next_actions, said)
    for action in steps[1:] or steps:
        reason = _not_due(action, idx)
        if reason is None and known_step(action, history):
            reason = "the history rules it out"  # 3 months 'provoked' with active cancer
        if reason is None and prescribing.gated(ctx.cond.id, action, shown):
            reason = "candidate indication not documented"
        if reason is None and prescribing.presupposed_missing(action, _taken(ctx)):
            reason = "acts on a medicine the patient does not take"  # no PPI to review
        if (
            reason is None
            and prescribing.BASAL_START.search(action)
            and prescribing.basal_continued(ctx.cond.id, _home_names(ctx))
        ):
            reason = "basal insulin continued throughout"  # the home glargine runs on
        if reason is None and not state_shown(action, states):
            reason = "severity state not shown"  # fulminant colitis with none of its signs
        if reason is None:
            due.append(action)
        else:
            not_due.append((action, reason))
    return due, not_due


def _taken(ctx: Ctx) -> list[str]:
    """The name and class of every medicine the patient takes or is given."""
    return [f"{m.name} {m.drug_class or ''}" for m in ctx.case.medications]


def _home_names(ctx: Ctx) -> list[str]:
    """The names of the patient's regular medicines."""
    final = ctx.case.final_diagnosis
    return [m.name for m in ctx.case.medications if m.indication != final]


def _states(ctx: Ctx) -> str:
    """What shows a severity state in the case (``coherence.state_record``)."""
    facts = ctx.case.facts
    return state_record(
        [f[len("History: ") :] for f in facts if f.startswith("History: ")],
        [f.value_text or "" for f in ctx.case.findings if f.kind in ("exam", "imaging")],
        next((f.value for f in ctx.case.findings if f.name == "Systolic blood pressure"), None),
    )


def _done_by_now(ctx: Ctx, end: int) -> tuple[list[str], list[str]]:
    """The steps an update on this record may list as done, and the courses it may list as
    started (their first doses given): none after discharge, none recommending against
    something, none the history rules out or whose severity state the record lacks, a
    conditional one only where the record shows its condition; a course (weeks, months,
    "until") or a schedule of checks is never done by the next morning, and a course only
    started where it waits on no result (``coherence.startable``)."""
    assert ctx.cond is not None
    idx = ctx.index(turn_end=end)
    done, started = [], []
    facts = ctx.case.facts
    history = [f[len("History: ") : -1] for f in facts if f.startswith("History: ")]
    states = _states(ctx)
    said = " ".join(f[len("History: ") :] for f in facts if f.startswith("History: "))
    for action in prescribing.steps_for_history(ctx.cond.id, ctx.cond.next_actions, said):
        if NEGATIVE.search(action) or after_discharge(action):
            continue
        if known_step(action, history):
            continue  # the history rules it out (history.WRONG_STEPS)
        if prescribing.presupposed_missing(action, _taken(ctx)):
            continue  # no acid suppression to review
        if not state_shown(action, states):
            continue  # no surgical review for fulminant colitis the record does not show
        _, clause = split_condition(action)
        if clause is not None and condition_holds(clause, idx) is not True:
            continue
        if AT_DISCHARGE.search(action):
            continue  # done when the patient leaves, not by the next morning
        if startable(action):
            started.append(action)
        elif done_by_discharge(action) and SCHEDULE.search(action) is None:
            done.append(action)
    return done, started


def _discharge_items(ctx: Ctx, end: int) -> list[str]:
    """The condition's standard-of-care items done at discharge ("epinephrine autoinjector
    prescribed with a written action plan at discharge") that apply to this record: due
    until the patient leaves, so no update before then has every step done."""
    assert ctx.cond is not None
    idx = ctx.index(turn_end=end)
    out = []
    for item in ctx.cond.standard_of_care:
        core, clause = split_condition(item.item)
        if AT_DISCHARGE.search(core) and (clause is None or condition_holds(clause, idx)):
            out.append(core)
    return out


# A pathway check done once (not a repeated or counted one, whose claims are another's).
_REPEATED = re.compile(r"\bevery\b|\bhourly\b|\buntil\b|\bdaily\b|\bat least\b|\bthree\b", re.I)


def _pathway_done(ctx: Ctx, end: int) -> list[str]:
    """The KB pathway's one-off checks (standard of care: "HIV test for all patients with
    TB", "baseline liver tests") that the record documents done after turn ``end``: the next
    morning's update lists them done too, so "every step is done" holds for the pathway."""
    assert ctx.cond is not None
    start = ctx.anchor("care")
    if start is None or start < end:
        return []
    said = " ".join(t.text for t in ctx.rendered.conversation.turns[start:])
    out = []
    for item in ctx.cond.standard_of_care:
        done = split_condition(item.item)[0]
        if (
            item.kind in ("lab", "diagnostic")
            and not _REPEATED.search(f"{item.item} {item.timing or ''}")
            and f": {done}." in said
        ):
            out.append(done)
    return out


def _key_texts(ctx: object) -> tuple[list[str], int]:
    assert isinstance(ctx, Ctx)
    end = ctx.anchor("family")
    if ctx.cond is None or end is None:
        return [], 2
    return [_cap(a) for a in _due(ctx, end)[0]], 2


register(T.PREDICTIVE_NEXT_ACTION, _key_texts)


def gen_predictive_next_action(ctx: Ctx) -> Iterator[Draft]:
    """The next guideline step after treatment starts; the control has every step done.

    The control also offers one of this condition's steps (wrong: the update lists it
    as done), and wrong options on both come from other conditions' steps of the same
    standing (their steps after the first, the ones that can be asked for), drawn in
    proportion to how often each is the key in its own cases (``key_rates``), so a step's
    name alone does not say whether it is due.
    """
    if ctx.cond is None or ctx.anchor("family") is None:
        return
    cond = ctx.cond
    own = cond.next_actions + cond.treatments.actions + [i.item for i in cond.standard_of_care]
    # Steps of conditions that are not this one's differentials: a differential's step may
    # well be due for this patient too, so it could not be called wrong.
    near = {d.condition_id for d in cond.differentials} | {cond.id}
    theirs = {a for c in near if c in ctx.kb.conditions for a in ctx.kb.conditions[c].next_actions}
    diff_steps = {  # the differentials' own steps
        a
        for c in near - {cond.id}
        if c in ctx.kb.conditions
        for a in ctx.kb.conditions[c].next_actions
    }
    others = _unrelated(
        [
            a
            for c in ctx.kb.conditions.values()
            if c.id not in near
            for a in (c.next_actions[1:] or c.next_actions)
            if a not in theirs  # the same step text as a differential's
        ],
        own,
    )
    end = ctx.anchor("family")
    assert end is not None
    due, not_due = _due(ctx, end)
    for _, reason in not_due:
        ctx.drop(T.PREDICTIVE_NEXT_ACTION, f"candidate {reason}")
    if not due:
        ctx.drop(T.PREDICTIVE_NEXT_ACTION, "no verified next action")
        return
    texts = [_cap(o) for o in dict.fromkeys(others)]
    weights = [key_rate(ctx.kb, T.PREDICTIVE_NEXT_ACTION, t) for t in texts]
    main = None
    for i, action in enumerate(_sample(ctx.rng, due, 2)):
        main = Draft(
            task_type=T.PREDICTIVE_NEXT_ACTION,
            key=f"p{i}",
            question="Given everything so far, which step is still due in this admission "
            "(now, or before discharge)?",
            correct=_cap(action),
            pool=weighted_sample(ctx.rng, texts, weights, 6),
            fixed=[NO_ACTION],
            rationale=f"For {cond.name} the next step after starting treatment is: {action} "
            f"({'; '.join(cond.sources[:2])}). The other actions belong to other conditions.",
            turn_start=0,
            turn_end=end,
        )
        yield main
    if main is not None and ctx.is_control(T.PREDICTIVE_NEXT_ACTION):
        if any(WORKUP.search(a) for a in due):
            ctx.drop(T.PREDICTIVE_NEXT_ACTION, "control: due work-up the record does not show")
            return
        if _discharge_items(ctx, end):
            # "nothing is due" while the autoinjector is still to be prescribed at discharge
            ctx.drop(T.PREDICTIVE_NEXT_ACTION, "control: a discharge-time item is still due")
            return
        listed, started = _done_by_now(ctx, end)
        if any(a not in listed and a not in started for a in due):
            # "every step is done" only where the update can list each due step done (or,
            # a course, started): a course waiting on a result is neither
            ctx.drop(T.PREDICTIVE_NEXT_ACTION, "control: a due step cannot be listed done")
            return
        pathway = [p for p in _pathway_done(ctx, end) if p not in listed]
        done = "; ".join(listed + pathway)
        # the false alarm is a due step the update lists as done (or started)
        due = [a for a in due if a in listed] or [a for a in due if a in started]
        if not due:
            ctx.drop(T.PREDICTIVE_NEXT_ACTION, "control: no due step can be listed done")
            return
        update = (f"done already: {done}." if listed else "") + (
            f" Started and continuing: {'; '.join(started)}." if started else ""
        )
        yield control_of(
            main,
            key="pc",
            correct=NO_ACTION,
            # false alarm: already done (not a differential's step too, which the test of
            # wrong options keeps out: "liver transplant evaluation" is SBP's and HE's)
            fixed=[_cap(ctx.rng.choice([a for a in due if a not in diff_steps] or due))],
            rationale="Every step the guideline lists at this point is already done; "
            "further action would be unnecessary.",
            # the next morning's round: a step due within 24 h can be done by then
            excerpt=f"Ward round update, the next morning: {update.strip()}",
        )
