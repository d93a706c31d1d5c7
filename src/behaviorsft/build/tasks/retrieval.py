"""Reactive retrieval: fact_retrieval and timeline_sequence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from behaviorsft.build.conversation import TIMELINE_SHOWN
from behaviorsft.build.tasks.common import (
    DEFAULT_OPTIONS,
    Ctx,
    Draft,
    _near_values,
    _sample,
    _value_text,
)
from behaviorsft.records import Finding
from behaviorsft.taxonomy import TaskType

T = TaskType


def gen_fact_retrieval(ctx: Ctx) -> Iterator[Draft]:
    numeric = [
        f
        for f in ctx.case.findings
        if f.value is not None and (f.name, f.day) in ctx.rendered.finding_turns
    ]
    if not numeric:
        return
    vitals = [f for f in numeric if f.kind == "vital"]
    labs = [f for f in numeric if f.kind != "vital"]
    picks: list[Finding] = []
    if vitals:
        picks.append(ctx.rng.choice(vitals))
    picks += _sample(ctx.rng, [f for f in labs if f not in picks], 3 - len(picks))
    for i, f in enumerate(picks):
        turn = ctx.rendered.finding_turns[(f.name, f.day)]
        if f.time is not None:
            when = f"on {f.time.date().isoformat()}"
        elif f.kind == "vital" and f.day == 0:
            when = "at triage"
        else:
            when = f"on day {f.day:g}" if f.day is not None else "in the results shown"
        others = [
            _value_text(g)
            for g in ctx.case.findings
            if g.name == f.name and g is not f and g.value is not None
        ]
        n_options = ctx.rng.choice((4, 5))
        k = n_options - 1
        yield Draft(
            task_type=T.FACT_RETRIEVAL,
            key=f"f{i}",
            question=ctx.rng.choice(
                (
                    f"What {f.name.lower()} was recorded {when}?",
                    f"According to the record, what was the {f.name.lower()} {when}?",
                )
            ),
            correct=_value_text(f),
            # The same test on another day first (the hardest wrong answer), then close values.
            pool=(others[:k] + [v for v in _near_values(f, ctx.rng, k) if v not in others])[:k],
            rationale=f"Turn {turn} reports {f.name} {_value_text(f)} {when}.",
            turn_start=0,
            turn_end=min(ctx.n_turns - 1, turn + 2),
            n_options=n_options,
        )


_EVENT_ANCHORS = {
    ("symptom", None): "symptoms",
    ("presentation", None): "triage",
    ("vitals", None): "vitals",
    ("lab", 0.0): "labs",
    ("imaging", None): "imaging",
    ("diagnosis", None): "diagnosis",
    ("medication", None): "first_dose",
    ("lab", 1.0): "repeat_lab",
    ("review", None): "next_steps",
}


# Order of a synthetic case's same-day events in its workflow; kinds that share a rank
# (triage and its observations; bloods and the study ordered with them) happen together,
# so at most one of them is offered.
_WITHIN_DAY = {
    "symptom": 0,
    "presentation": 1,
    "vitals": 1,
    "lab": 2,
    "imaging": 2,
    "diagnosis": 3,
    "medication": 4,
    "review": 5,
}


def gen_timeline_sequence(ctx: Ctx) -> Iterator[Draft]:
    """Four narrated events in the order they *happened* (event time, not mention).

    Synthetic cases order by the event's day (symptom onset days before presentation
    comes first even though the patient mentions it after triage), then by the workflow
    rank within a day; imported timelines by the date the conversation shows. Events
    that tie at that resolution are never offered together: one per tie is kept.
    """
    events: list[tuple[tuple[float, int], str]] = []  # (order key, text)
    if ctx.cond is not None:
        for ev in ctx.case.timeline:
            name = _EVENT_ANCHORS.get((ev.kind, ev.day)) or _EVENT_ANCHORS.get((ev.kind, None))
            turn = ctx.anchor(name) if name else None
            if turn is not None and ev.day is not None:
                events.append(((ev.day, _WITHIN_DAY.get(ev.kind, 9)), ev.text.rstrip(".")))
    else:
        # Timeline events narrated in the conversation, ordered by the date it shows.
        shown = ctx.case.timeline[-TIMELINE_SHOWN:]
        events = [
            ((ev.time.date().toordinal(), 0), ev.text.rstrip("."))
            for ev in shown
            if ev.time is not None
        ]
    uniq: dict[tuple[float, int], str] = {}
    texts: set[str] = set()
    for key, text in events:  # case order: the first event of a tie is kept
        if key not in uniq and text not in texts:
            uniq[key] = text
            texts.add(text)
    if len(uniq) < 4:
        if len(events) >= 4:  # enough events, but they tie
            ctx.drop(T.TIMELINE_SEQUENCE, "fewer than 4 events at distinct times")
        return
    chosen = sorted(ctx.rng.sample(sorted(uniq), 4))
    labels = list(range(4))
    ctx.rng.shuffle(labels)  # labels[i] = position of chosen[i] in the listing
    listing = [""] * 4
    for i, key in enumerate(chosen):
        listing[labels[i]] = uniq[key]

    def seq(order: list[int]) -> str:
        return ", ".join(str(p + 1) for p in order)

    correct_order = [labels[i] for i in range(4)]
    perms = [
        [a, b, c, d]
        for a in range(4)
        for b in range(4)
        for c in range(4)
        for d in range(4)
        if len({a, b, c, d}) == 4
    ]
    # Exactly the distractors shown, drawn uniformly: every order has the same length, and
    # pick_distractors would break that tie alphabetically, so the wrong orders would
    # tend to start with "1, 2" and the right one would stand out.
    pool = [
        seq(p)
        for p in ctx.rng.sample([p for p in perms if p != correct_order], DEFAULT_OPTIONS - 1)
    ]
    yield Draft(
        task_type=T.TIMELINE_SEQUENCE,
        key="t0",
        question="In which order did these happen? "
        + " ".join(f"({i + 1}) {t}." for i, t in enumerate(listing)),
        correct=seq(correct_order),
        pool=pool,
        rationale="In the order they happened: "
        + "; ".join(f"{uniq[k]} ({_when(k, ctx.cond is not None)})" for k in chosen)
        + ".",
        turn_start=0,
        turn_end=ctx.n_turns - 1,
    )


def _when(key: tuple[float, int], synthetic: bool) -> str:
    if not synthetic:
        return date.fromordinal(int(key[0])).isoformat()
    return f"day {key[0]:g}"
