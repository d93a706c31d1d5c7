"""Reactive and balanced reasoning: ddx_reasoning, treatment_decision and
reasoning_differential_evolution."""

from __future__ import annotations

from collections.abc import Iterator

from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    _cap,
    _sample,
    _unrelated,
    kb_pools,
)
from behaviorsft.sources.synthetic import medication_text
from behaviorsft.taxonomy import TaskType

T = TaskType


def gen_ddx_reasoning(ctx: Ctx) -> Iterator[Draft]:
    if ctx.cond is None or not ctx.cond.differentials or ctx.anchor("ddx") is None:
        return
    diffs = ctx.cond.differentials[:2]
    d = ctx.rng.choice(diffs)
    pools = kb_pools(ctx.kb)
    own = [x.argues_against for x in diffs if x is not d]
    pool = (
        own
        + [d.favoured_by]
        # Other conditions' answers to this same question: each such text is right in its
        # own cases, so "an argument against" read without the record points nowhere.
        + _unrelated(_sample(ctx.rng, pools["asked_against"], 60), [d.argues_against])
    )
    end = ctx.anchor("ddx_discriminator") or ctx.anchor("ddx")
    assert end is not None
    yield Draft(
        task_type=T.DDX_REASONING,
        key="d0",
        question=f"In the team's discussion, what argued against {d.name.lower()}?",
        correct=_cap(d.argues_against),
        pool=[_cap(p) for p in pool],
        # The hardest wrong answers: evidence *for* d, and what argued against the other one.
        fixed=[_cap(p) for p in [d.favoured_by, *own][:2]],
        rationale=f"Turn {ctx.anchor('ddx')}: the attending cites {d.argues_against} against "
        f"{d.name}; {d.favoured_by} would instead favour it.",
        turn_start=0,
        turn_end=end,
    )


def gen_treatment_decision(ctx: Ctx) -> Iterator[Draft]:
    if ctx.cond is None or ctx.anchor("plan") is None:
        return
    plan = [m for m in ctx.case.medications if m.indication == ctx.cond.name]
    if not plan:
        return
    m = ctx.rng.choice(plan)
    pools = kb_pools(ctx.kb)
    diffs = [d.name for d in ctx.cond.differentials[:2]]
    pool = diffs + [n for n in pools["names"] if n != ctx.cond.name]
    plan_turn = ctx.anchor("plan")
    assert plan_turn is not None
    yield Draft(
        task_type=T.TREATMENT_DECISION,
        key="r0",
        question=f"The team prescribed {m.name.lower()}. For which working diagnosis?",
        correct=ctx.cond.name,
        pool=pool,
        rationale=f"Turn {ctx.anchor('diagnosis')} states the working diagnosis and turn "
        f"{plan_turn} starts {medication_text(m)} for it.",
        turn_start=0,
        turn_end=min(ctx.n_turns - 1, plan_turn + 1),
    )


# ----------------------------------------------------------------------------- balanced


def gen_differential_evolution(ctx: Ctx) -> Iterator[Draft]:
    if ctx.cond is None:
        return
    a, b = ctx.anchor("exam"), ctx.anchor("imaging")
    imaging = next((f for f in ctx.case.findings if f.kind == "imaging"), None)
    if a is None or b is None or imaging is None:
        return
    correct = f"Towards {ctx.cond.name.lower()}, given {imaging.value_text}"
    pool = [f"Towards {d.name.lower()}, given {d.favoured_by}" for d in ctx.cond.differentials]
    other = [c for c in ctx.kb.conditions.values() if c.id != ctx.cond.id]
    for c in other:
        pool.append(f"Towards {c.name.lower()}, given {c.imaging[0].finding}")
    yield Draft(
        task_type=T.REASONING_DIFFERENTIAL_EVOLUTION,
        key="e0",
        question=f"Compare what was known after the examination (turn {a}) with what was known "
        f"after turn {b}. Where should the differential have moved?",
        correct=correct,
        pool=pool,
        rationale=f"Turn {b} adds {imaging.name}: {imaging.value_text}, which supports "
        f"{ctx.cond.name}; the alternatives rest on findings this patient does not have.",
        turn_start=0,
        turn_end=b,
    )
