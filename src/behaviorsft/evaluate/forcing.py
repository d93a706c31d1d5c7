"""Token forcing, the proactivity dial and first-token behaviour classification, as pure functions.

Inputs are the runs of one BehaviorSFT model on the same tasks:

* a run with ``--behavior reactive`` (every reply starts with the forced ``<reactive>``),
* a run with ``--behavior proactive`` (forced ``<proactive>``),
* optionally the unforced run (``--behavior auto``: the model picks its token).

Forced runs still record P(``<proactive>``) from a one-token probe (see
``evaluate/runner.py``), so the two forced runs alone give, for each task, the
model's own P and its answer under either token.

**The dial.** At threshold ``T`` a task's reply is proactive iff ``P >= T``
(:func:`behaviorsft.dial.decide`; an unmeasurable P is never proactive), and
the answer is the one given under the chosen token. Sweeping ``T`` from 0
(always ``<proactive>``) to above the largest P (always ``<reactive>``) traces:

* ``false_alarm``: restraint controls of proactive task types (nothing is
  wrong, the gold answer is the "no issue" option) where the chosen answer is
  readable and not the gold one: the agent raised an issue that is not there.
* ``miss``: proactive-type tasks with an injected issue (``task.perturbation``)
  whose chosen answer is not correct (unreadable counts as a miss).
* ``accuracy``: correct chosen answers over all tasks.
* ``proactive_rate``: share of tasks where the dial chose ``<proactive>``.
* ``proactive_on_reactive``: decision-level false alarm, the share of tasks
  whose own token is ``<reactive>`` (reactive types, balanced ones below 0.5)
  where the dial chose ``<proactive>``.
* ``reactive_on_injected``: decision-level miss, the share of injected-issue
  tasks where the dial chose ``<reactive>``.

``false_alarm`` and ``miss`` are the definitions of ``metrics.safety_scores``,
applied to the dial's answers. Restraint controls keep their type's
``<proactive>`` token (taxonomy.behavior_token), so a proactive *decision* on a
control is not an error; only a flagged non-issue is.

The model's own **operating point** is the unforced run when given (its
answers and its emitted tokens), else ``T = 0.5`` (the more likely of the two
tokens, which is what greedy decoding picks when the first token is one of
them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from behaviorsft.dial import decide
from behaviorsft.evaluate.metrics import (
    Scored,
    false_alarm_rate,
    is_proactive_token,
    miss_rate,
    scored_items,
)
from behaviorsft.records import Prediction, Task
from behaviorsft.taxonomy import PROACTIVE_TOKEN, REACTIVE_TOKEN, Category

# The grid of the dial table; the figure also uses every distinct P as a breakpoint.
DEFAULT_STEPS = 10


@dataclass(frozen=True)
class DialItem:
    """One (task, seed) with its answers under both forced tokens.

    ``reactive`` and ``proactive`` are Scored items of the same task whose
    ``pred`` is the answer given under that token; ``own`` is the unforced
    answer when an unforced run was given.
    """

    reactive: Scored
    proactive: Scored
    p: float | None
    own: Scored | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.reactive.task_id, self.reactive.seed

    def own_proactive(self) -> bool:
        """The model's own first-token choice: the unforced run's token, else P >= 0.5."""
        if self.own is not None and self.own.pred_token is not None:
            return is_proactive_token(self.own.pred_token)
        return decide(self.p, 0.5)

    def own_token_known(self) -> bool:
        """Whether the model's own first token is known (emitted or from P)."""
        return (self.own is not None and self.own.pred_token is not None) or self.p is not None


def join_runs(
    tasks: Mapping[str, Task],
    reactive: Iterable[Prediction],
    proactive: Iterable[Prediction],
    unforced: Iterable[Prediction] | None = None,
) -> tuple[list[DialItem], dict[str, int]]:
    """Pair the forced runs' answers per (task, seed); return the items and what was left out.

    P(<proactive>) is taken from the unforced run when it measured one, else
    from a forced run's probe. Rows with ``error`` and (task, seed) pairs
    missing from either forced run are left out and counted.
    """
    r_items, r_err = scored_items(tasks, reactive)
    p_items, p_err = scored_items(tasks, proactive)
    by_r = {(s.task_id, s.seed): s for s in r_items}
    by_p = {(s.task_id, s.seed): s for s in p_items}
    own: dict[tuple[str, int], Scored] = {}
    u_err: list[Prediction] = []
    if unforced is not None:
        u_items, u_err = scored_items(tasks, unforced)
        own = {(s.task_id, s.seed): s for s in u_items}
    keys = [k for k in by_r if k in by_p and (unforced is None or k in own)]
    items = []
    for k in keys:
        candidates = [own[k].p_proactive] if k in own else []
        candidates += [by_r[k].p_proactive, by_p[k].p_proactive]
        p = next((c for c in candidates if c is not None), None)
        items.append(DialItem(by_r[k], by_p[k], p, own.get(k)))
    paired = set(by_r) & set(by_p)
    unpaired = len(set(by_r) ^ set(by_p))
    if unforced is not None:
        unpaired += len(paired - set(own))
    left_out = {
        "errors": len(r_err) + len(p_err) + len(u_err),
        "unpaired": unpaired,
        "no_p": sum(i.p is None for i in items),
    }
    return items, left_out


# --------------------------------------------------------------------------
# Rates of one set of answers
# --------------------------------------------------------------------------


def _rate(hits: int, n: int) -> dict[str, Any]:
    return {"rate": hits / n if n else None, "n": n, "count": hits}


def outcome(answers: Sequence[Scored], proactive: Sequence[bool]) -> dict[str, Any]:
    """False alarm, miss, accuracy and the decision rates of one set of chosen answers.

    ``answers[i]`` is task i's Scored item carrying the chosen answer;
    ``proactive[i]`` whether its chosen token was ``<proactive>``.
    """
    injected = [
        i for i, s in enumerate(answers) if s.perturbed and s.category is Category.PROACTIVE
    ]
    reactive_tasks = [i for i, s in enumerate(answers) if s.gold_token == REACTIVE_TOKEN]
    return {
        "n": len(answers),
        "false_alarm": false_alarm_rate(answers),
        "miss": miss_rate(answers),
        "accuracy": _rate(sum(s.correct for s in answers), len(answers)),
        "proactive_rate": _rate(sum(proactive), len(answers)),
        "proactive_on_reactive": _rate(
            sum(proactive[i] for i in reactive_tasks), len(reactive_tasks)
        ),
        "reactive_on_injected": _rate(sum(not proactive[i] for i in injected), len(injected)),
    }


def at_threshold(items: Sequence[DialItem], threshold: float) -> dict[str, Any]:
    """The dial at ``threshold``: each task answered under the token P >= T picks."""
    chosen = [decide(it.p, threshold) for it in items]
    answers = [it.proactive if c else it.reactive for it, c in zip(items, chosen, strict=True)]
    return {"threshold": threshold, **outcome(answers, chosen)}


def thresholds(items: Sequence[DialItem], steps: int = DEFAULT_STEPS) -> list[float]:
    """0, 1/steps, ..., 1, every distinct P, and one point above the largest P (if it is 1)."""
    grid = {round(i / steps, 10) for i in range(steps + 1)} if steps > 0 else {0.0, 1.0}
    ps = {it.p for it in items if it.p is not None}
    out = sorted(grid | ps)
    if ps and max(ps) >= out[-1]:
        # P = 1 stays proactive at T = 1: one more point where every reply is reactive.
        out.append(float("inf"))
    return out


def sweep(items: Sequence[DialItem], ts: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """:func:`at_threshold` at each threshold (default :func:`thresholds`)."""
    return [at_threshold(items, t) for t in (thresholds(items) if ts is None else ts)]


def operating_point(items: Sequence[DialItem]) -> dict[str, Any]:
    """The model's own point: unforced answers and tokens when given, else T = 0.5."""
    if items and all(it.own is not None for it in items):
        answers = [it.own for it in items if it.own is not None]
        chosen = [it.own_proactive() for it in items]
        return {"source": "unforced run", "threshold": None, **outcome(answers, chosen)}
    return {"source": "P >= 0.5 (forced runs)", **at_threshold(items, 0.5)}


# --------------------------------------------------------------------------
# Token forcing
# --------------------------------------------------------------------------


def forcing_rows(items: Sequence[DialItem]) -> list[dict[str, Any]]:
    """Own token vs the forced opposite token vs each token forced on every task.

    Rows: ``own`` (the operating point), ``opposite`` (each task answered under
    the token the model did *not* pick), ``all_reactive``, ``all_proactive``.
    """
    own_choice = [it.own_proactive() for it in items]
    opposite = [not c for c in own_choice]
    rows = [{"row": "own", **operating_point(items)}]
    rows.append(
        {
            "row": "opposite",
            **outcome(
                [it.proactive if c else it.reactive for it, c in zip(items, opposite, strict=True)],
                opposite,
            ),
        }
    )
    rows.append(
        {"row": "all_reactive", **outcome([it.reactive for it in items], [False] * len(items))}
    )
    rows.append(
        {"row": "all_proactive", **outcome([it.proactive for it in items], [True] * len(items))}
    )
    return rows


# --------------------------------------------------------------------------
# First-token behaviour classification (metrics.first_token_scores)
# --------------------------------------------------------------------------


def first_tokens(items: Sequence[DialItem]) -> list[Scored]:
    """Scored items whose ``pred_token`` is the model's own first token (emitted, or P >= 0.5)."""
    out = []
    for it in items:
        if it.own is not None and it.own.pred_token is not None:
            out.append(it.own)
        elif it.p is not None:
            token = PROACTIVE_TOKEN if decide(it.p, 0.5) else REACTIVE_TOKEN
            out.append(replace(it.reactive, pred_token=token))
        else:
            out.append(replace(it.reactive, pred_token=None))
    return out
