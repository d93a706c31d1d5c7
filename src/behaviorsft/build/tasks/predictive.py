"""Proactive: predictive_next_action (the next guideline step, or none)."""

from __future__ import annotations

from collections.abc import Iterator

from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    _cap,
    _sample,
    _unrelated,
    control_of,
)
from behaviorsft.taxonomy import TaskType

T = TaskType


NO_ACTION = "No new action is needed now; continue the current plan"


def gen_predictive_next_action(ctx: Ctx) -> Iterator[Draft]:
    """The next guideline step after treatment starts; the control has every step done.

    The control also offers one of this condition's steps (wrong: the update lists it
    as done), and wrong options on both come from other conditions' steps of the same
    standing (their steps after the first, the ones that can be asked for), so a step's
    name alone does not say whether it is due.
    """
    if ctx.cond is None or ctx.anchor("family") is None:
        return
    cond = ctx.cond
    own = cond.next_actions + cond.treatments.actions + [i.item for i in cond.standard_of_care]
    others = _unrelated(
        [
            a
            for c in ctx.kb.conditions.values()
            if c.id != cond.id
            for a in (c.next_actions[1:] or c.next_actions)
        ],
        own,
    )
    end = ctx.anchor("family")
    assert end is not None
    candidates = cond.next_actions[1:] or cond.next_actions
    main = None
    for i, action in enumerate(_sample(ctx.rng, candidates, 2)):
        main = Draft(
            task_type=T.PREDICTIVE_NEXT_ACTION,
            key=f"p{i}",
            question="Given everything so far, what should the team do next?",
            correct=_cap(action),
            pool=[_cap(o) for o in others],
            fixed=[NO_ACTION],
            rationale=f"For {cond.name} the next step after starting treatment is: {action} "
            f"({'; '.join(cond.sources[:2])}). The other actions belong to other conditions.",
            turn_start=0,
            turn_end=end,
        )
        yield main
    if main is not None and ctx.is_control(T.PREDICTIVE_NEXT_ACTION):
        done = "; ".join(cond.next_actions)
        yield control_of(
            main,
            key="pc",
            correct=NO_ACTION,
            fixed=[_cap(ctx.rng.choice(candidates))],  # false alarm: already done
            rationale="Every step the guideline lists at this point is already done; "
            "further action would be unnecessary.",
            excerpt=f"Ward round update: done already: {done}.",
        )
