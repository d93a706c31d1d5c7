"""Task generators: all 13 BehaviorBench types, with answers known by construction.

Every generator reads structured facts (the Case, its rendered conversation and
the knowledge base) and writes a question, the right option, a pool of wrong
ones and a rationale; ``finalise`` then picks distractors of similar length
(so "pick the longest option" stays at chance), adds the fixed options (e.g.
"no issue"), shuffles with the seeded RNG and stores the permutation.

Proactive challenges are put in the task's *excerpt*, a note shown after the
conversation turns (a new order, a handover checklist, a radiology report, a
discharge summary): the shared conversation stays clean, each perturbed task
carries its own ``Perturbation`` with provenance, and its restraint control is
the same question over an excerpt with nothing wrong.

Behaviour score = ``BASE_SCORE[type]`` + adjustments (``score_for``):

* +0.05 when the injected issue is safety-critical (anaphylaxis-type allergy,
  tenfold dose);
* up to +0.05 for long contexts (implicitness: the cue is far from the
  question), linear in the number of turns shown, saturating at 30;
* -0.10 for restraint controls (the appraisal is still proactive; no action
  follows).

Restraint controls: each proactive type gets one control per ``CONTROL_EVERY``
cases (deterministic in the case id), i.e. a 1:2 control-to-perturbed ratio
for the types with one perturbed item per case.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TypeVar

from behaviorsft import __version__
from behaviorsft.bench import format_turn
from behaviorsft.build.conversation import TIMELINE_SHOWN, Rendered, format_finding_value
from behaviorsft.records import (
    OPTION_LETTERS,
    Case,
    Finding,
    Generator,
    Option,
    Perturbation,
    PerturbationKind,
    Split,
    Task,
)
from behaviorsft.sources.kb import CareItem as KBCareItem
from behaviorsft.sources.kb import Condition as KBCondition
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.medec import medec_annotation
from behaviorsft.sources.synthetic import allergy_group_of, kb_condition_id, medication_text
from behaviorsft.taxonomy import Complexity, TaskType

T = TaskType
_T = TypeVar("_T")

BASE_SCORE: dict[TaskType, float] = {
    T.FACT_RETRIEVAL: 0.10,
    T.TIMELINE_SEQUENCE: 0.18,
    T.DDX_REASONING: 0.28,
    T.TREATMENT_DECISION: 0.32,
    T.REASONING_DIFFERENTIAL_EVOLUTION: 0.45,
    T.INTEGRITY_MISSING_TURN_INFERENCE: 0.50,
    T.PREDICTIVE_NEXT_ACTION: 0.68,
    T.EXPLICIT_ERROR_CORRECTION: 0.88,
    T.OMISSION_DETECTION: 0.85,
    T.STANDARD_OF_CARE: 0.80,
    T.INTERPRETATION_CONFLICT: 0.76,
    T.DATA_CONFLICT_RESOLUTION: 0.78,
    T.CONSISTENCY_CHECK: 0.72,
}
CONTROL_EVERY = 2
DEFAULT_OPTIONS = 5
GENERATOR_NAME = "programmatic"

# Which types each source can feed (and why the others are out of reach).
SOURCE_TYPES: dict[str, tuple[TaskType, ...]] = {
    "synthetic": tuple(TaskType),
    "fhir": (
        T.FACT_RETRIEVAL,
        T.TIMELINE_SEQUENCE,
        T.INTEGRITY_MISSING_TURN_INFERENCE,
        T.DATA_CONFLICT_RESOLUTION,
    ),
    "mediq": (T.INTEGRITY_MISSING_TURN_INFERENCE, T.DDX_REASONING, T.PREDICTIVE_NEXT_ACTION),
    "medec": (T.EXPLICIT_ERROR_CORRECTION, T.INTEGRITY_MISSING_TURN_INFERENCE),
    "aci-bench": (T.INTEGRITY_MISSING_TURN_INFERENCE,),
    "mts-dialog": (T.INTEGRITY_MISSING_TURN_INFERENCE,),
    "text": (T.INTEGRITY_MISSING_TURN_INFERENCE,),
}


@dataclass
class Ctx:
    """Everything a generator reads, plus the case's RNG."""

    case: Case
    rendered: Rendered
    kb: KnowledgeBase
    cond: KBCondition | None
    rng: random.Random
    generator: Generator
    split: Split | None = None

    @property
    def n_turns(self) -> int:
        return len(self.rendered.conversation.turns)

    def anchor(self, name: str) -> int | None:
        return self.rendered.anchors.get(name)

    def is_control(self, task_type: TaskType) -> bool:
        """Whether this case carries the restraint control of ``task_type``."""
        h = hashlib.sha1(f"{self.case.id}|{task_type.value}".encode()).digest()
        return h[0] % CONTROL_EVERY == 0


@dataclass
class Draft:
    """A task before option selection and shuffling."""

    task_type: TaskType
    key: str
    question: str
    correct: str
    pool: list[str]
    rationale: str
    turn_start: int | None = None
    turn_end: int | None = None
    excerpt: str | None = None
    fixed: list[str] = field(default_factory=list)  # always shown (e.g. "no issue")
    correct_is_fixed: bool = False
    restraint_control: bool = False
    perturbation: Perturbation | None = None
    safety_critical: bool = False
    complexity: Complexity | None = None
    n_options: int = DEFAULT_OPTIONS
    # Pick the distractors' lengths around the answer or any fixed option, at random: where
    # fixed options look like the answer (a decoy flag), lengths chosen around the answer
    # alone would leave it in the middle of the length ranking and the look-alikes at
    # the ends, a pattern an options-only reader can learn.
    anchor_any: bool = False


def control_of(
    main: Draft,
    *,
    key: str,
    correct: str,
    rationale: str,
    excerpt: str | None,
    fixed: Sequence[str] = (),
    pool: list[str] | None = None,
) -> Draft:
    """The restraint control of ``main``: the same question and record span, nothing wrong.

    ``correct`` is the fixed "no issue" option; ``fixed`` holds the issue options that
    are now false alarms; the distractor pool is ``main``'s unless given. The control
    has no perturbation and is neither safety-critical nor graded for complexity.
    """
    return replace(
        main,
        key=key,
        correct=correct,
        correct_is_fixed=True,
        pool=main.pool if pool is None else pool,
        fixed=list(fixed),
        rationale=rationale,
        excerpt=excerpt,
        perturbation=None,
        safety_critical=False,
        complexity=None,
        restraint_control=True,
    )


@lru_cache(maxsize=1 << 17)
def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9.]+", text.lower()))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def score_for(draft: Draft, n_context_turns: int) -> float:
    """Base score of the type plus the documented adjustments, rounded to 0.01."""
    score = BASE_SCORE[draft.task_type]
    if draft.safety_critical:
        score += 0.05
    score += 0.05 * min(n_context_turns, 30) / 30
    if draft.restraint_control:
        score -= 0.10
    return round(min(1.0, max(0.0, score)), 2)


def pick_distractors(
    correct: str, pool: list[str], k: int, rng: random.Random, exclude: list[str]
) -> list[str]:
    """``k`` distinct wrong options, chosen so that length carries no signal.

    The number of distractors longer than the answer is drawn uniformly from
    ``0..k`` (as far as the pool allows), so the answer is the longest option
    about as often as a uniform guess would pick it; within each side the
    candidates closest in length are preferred.
    """
    seen = {_norm(correct), *(_norm(x) for x in exclude)}
    uniq: list[str] = []
    for p in pool:
        n = _norm(p)
        if n and n not in seen:
            seen.add(n)
            uniq.append(p)
    if len(uniq) <= k:
        return uniq
    longer = sorted((p for p in uniq if len(p) > len(correct)), key=lambda p: (len(p), p))
    shorter = sorted((p for p in uniq if len(p) <= len(correct)), key=lambda p: (-len(p), p))
    n_long = rng.randint(max(0, k - len(shorter)), min(k, len(longer)))

    def near(side: list[str], m: int) -> list[str]:
        return rng.sample(side[: 2 * m + 1], m) if m else []

    return near(longer, n_long) + near(shorter, k - n_long)


def finalise(draft: Draft, ctx: Ctx) -> Task | None:
    """Choose options, shuffle them (seeded) and build the validated Task."""
    n = draft.n_options
    fixed = [f for f in draft.fixed if _norm(f) != _norm(draft.correct)]
    k = n - 1 - len(fixed)
    if draft.anchor_any and fixed:
        anchor = ctx.rng.choice([draft.correct, *fixed])
        wrong = pick_distractors(anchor, draft.pool, k, ctx.rng, [draft.correct, *fixed])
    else:
        wrong = pick_distractors(draft.correct, draft.pool, k, ctx.rng, fixed)
    if len(wrong) + len(fixed) + 1 < 4:
        return None  # not enough distinct options: skip rather than pad
    canonical = [draft.correct, *fixed, *wrong]
    order = list(range(len(canonical)))
    ctx.rng.shuffle(order)
    options = [Option(label=OPTION_LETTERS[i], text=canonical[j]) for i, j in enumerate(order)]
    answer = OPTION_LETTERS[order.index(0)]
    shown = 0
    if draft.turn_start is not None and draft.turn_end is not None:
        shown = draft.turn_end - draft.turn_start + 1
    complexity = draft.complexity or (
        Complexity.INTERMEDIATE
        if draft.task_type in (T.FACT_RETRIEVAL, T.TIMELINE_SEQUENCE, T.TREATMENT_DECISION)
        else Complexity.ADVANCED
    )
    return Task.model_validate(
        {
            "id": f"{ctx.case.id}:{draft.task_type.value}:{draft.key}",
            "case_id": ctx.case.id,
            "task_type": draft.task_type,
            "question": draft.question,
            "context": {
                "turn_start": draft.turn_start,
                "turn_end": draft.turn_end,
                "excerpt": draft.excerpt,
            },
            "options": options,
            "answer": answer,
            "rationale": draft.rationale,
            "behavior_score": score_for(draft, shown),
            "complexity": complexity,
            "restraint_control": draft.restraint_control,
            "perturbation": draft.perturbation,
            "generator": ctx.generator,
            "option_permutation": order,
            "split": ctx.split,
        }
    )


# ----------------------------------------------------------------------------- pools

_POOLS: dict[int, dict[str, list[str]]] = {}


def kb_pools(kb: KnowledgeBase) -> dict[str, list[str]]:
    """Option pools drawn from the whole KB (cached per KB object)."""
    cached = _POOLS.get(id(kb))
    if cached is not None:
        return cached
    conds = list(kb.conditions.values())
    pools = {
        "names": [c.name for c in conds],
        "against": [d.argues_against for c in conds for d in c.differentials],
        # What argued against the two differentials a conversation discusses (askable).
        "asked_against": [d.argues_against for c in conds for d in c.differentials[:2]],
        "favoured": [d.favoured_by for c in conds for d in c.differentials],
        "next": [a for c in conds for a in c.next_actions],
        "care": [i.item for c in conds for i in c.standard_of_care],
        "imaging": [i.finding for c in conds for i in c.imaging],
    }
    _POOLS[id(kb)] = pools
    return pools


@lru_cache(maxsize=1 << 16)
def _words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z]{4,}", text.lower()))


def _unrelated(candidates: list[str], own: list[str], max_overlap: float = 0.34) -> list[str]:
    """Candidates sharing few content words with any of ``own`` (so they are really wrong)."""
    key = (tuple(candidates), tuple(own), max_overlap)
    hit = _UNRELATED.get(key)
    if hit is None:
        hit = _UNRELATED[key] = _unrelated_uncached(candidates, own, max_overlap)
        if len(_UNRELATED) > 4096:
            _UNRELATED.clear()
    return hit


_UNRELATED: dict[tuple[tuple[str, ...], tuple[str, ...], float], list[str]] = {}


def _unrelated_uncached(candidates: list[str], own: list[str], max_overlap: float) -> list[str]:
    own_words = [_words(o) for o in own]
    out = []
    for c in candidates:
        cw = _words(c)
        if not cw:
            continue
        if all(len(cw & ow) / len(cw) <= max_overlap for ow in own_words):
            out.append(c)
    return out


def _sample(rng: random.Random, items: list[_T], k: int) -> list[_T]:
    return rng.sample(items, min(k, len(items)))


def _value_text(f: Finding) -> str:
    return f"{format_finding_value(f)} {f.unit}" if f.unit else format_finding_value(f)


def _decimals(v: float) -> int:
    s = repr(float(v))
    frac = s.split(".")[1] if "." in s else ""
    return 0 if frac == "0" else min(len(frac), 4)


def _alt_values(f: Finding, rng: random.Random) -> list[str]:
    assert f.value is not None
    d = _decimals(f.value)
    out = []
    for factor in (0.5, 0.7, 0.8, 1.25, 1.4, 1.6, 2.0):
        v = round(f.value * factor, d)
        if v != f.value and v > 0:
            text = f"{v:.{d}f}" if d else str(round(v))
            out.append(f"{text} {f.unit}" if f.unit else text)
    return out


def _near_values(f: Finding, rng: random.Random, k: int) -> list[str]:
    """``k`` other values of ``f``'s test, close to it, the true one at a random rank.

    Scaled values (half, double) are often implausible for the test (an SpO2 of
    150 %), so a reader of the options alone could pick the plausible one; values
    close to the truth are as plausible as it is, and how many lie below it is drawn
    uniformly so "the middle value" is no shortcut either.
    """
    assert f.value is not None
    d = _decimals(f.value)
    res = 10.0**-d
    # A step of 1.5 % of the value, or (with a reference range) the geometric mean of that
    # and a tenth of the range: a pH moves in hundredths, a troponin of 5000 in tens.
    step = abs(f.value) * 0.015
    ref = f.reference_range
    if ref is not None and ref.low is not None and ref.high is not None and ref.high > ref.low:
        step = (step * (ref.high - ref.low) / 10) ** 0.5
    step = max(res, round(step, d))
    cap = 100.0 if f.unit == "%" else float("inf")
    reach = k + k // 2 + 1  # at most this many steps away
    below = [f.value - step * j for j in range(1, reach + 1) if f.value - step * j > 0]
    above = [f.value + step * j for j in range(1, reach + 1) if f.value + step * j <= cap]
    n_below = min(len(below), max(k - len(above), rng.randint(0, k)))
    n_above = min(len(above), k - n_below)
    # Random gaps between the chosen steps, so the spacing does not mark the true value.
    values = [below[i] for i in sorted(rng.sample(range(len(below)), n_below))] + [
        above[i] for i in sorted(rng.sample(range(len(above)), n_above))
    ]
    texts = [f"{v:.{d}f}" if d else str(round(v)) for v in values]
    return [f"{t} {f.unit}" if f.unit else t for t in texts]


# ----------------------------------------------------------------------------- reactive


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


def gen_timeline_sequence(ctx: Ctx) -> Iterator[Draft]:
    events: list[tuple[float, str]] = []  # (order key, text)
    if ctx.cond is not None:
        for ev in ctx.case.timeline:
            name = _EVENT_ANCHORS.get((ev.kind, ev.day)) or _EVENT_ANCHORS.get((ev.kind, None))
            turn = ctx.anchor(name) if name else None
            if turn is not None:
                events.append((turn, ev.text.rstrip(".")))
    else:
        # Timeline events narrated in the conversation, ordered by their absolute time.
        shown = ctx.case.timeline[-TIMELINE_SHOWN:]
        events = [
            (ev.time.timestamp(), f"{ev.text.rstrip('.')}") for ev in shown if ev.time is not None
        ]
    uniq: dict[float, str] = {}
    texts: set[str] = set()
    for key, text in sorted(events):
        if key not in uniq and text not in texts:
            uniq[key] = text
            texts.add(text)
    if len(uniq) < 4:
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
        rationale="The conversation gives the events in this order: "
        + "; ".join(uniq[k] for k in chosen)
        + ".",
        turn_start=0,
        turn_end=ctx.n_turns - 1,
    )


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


def _lay(role: str) -> bool:
    """Whether a speaker talks as a lay person (patient, relative) rather than as staff."""
    return role in ("patient", "family member", "relative", "caregiver")


def _speaker_phrase(speaker: str) -> str:
    """'Patient's husband' -> 'husband of the patient'.

    The question names the speaker; a possessive would share the word "s" with every
    option that says "what's" or "that's" (relatives' turns), a free point for the
    question-overlap shortcut. ("most probably" rather than "most likely" for the same
    reason: the attending's differential says "less likely".)
    """
    m = re.fullmatch(r"(\w+)'s (\w+)", speaker)
    return f"{m[2]} of the {m[1].lower()}" if m else speaker


def gen_missing_turn(ctx: Ctx) -> Iterator[Draft]:
    turns = ctx.rendered.conversation.turns
    if len(turns) < 6:
        return
    eligible = [
        t for t in turns[1:-2] if len(t.text) >= 20 and not t.attachments and len(t.text) <= 400
    ]
    if ctx.cond is not None:
        by_role = [
            [t for t in eligible if _lay(t.role)],
            [t for t in eligible if not _lay(t.role)],
        ]
        picks = [ctx.rng.choice(g) for g in by_role if g]
    else:
        picks = _sample(ctx.rng, eligible, 1)
    k = DEFAULT_OPTIONS - 1
    for i, t in enumerate(picks):
        start = max(0, t.index - 8)
        after = turns[t.index + 1 : t.index + 3]
        visible = {_norm(x.text) for x in turns[start : t.index + 3]}
        # Wrong turns come from those that could themselves be asked for, so no kind of
        # turn (a closing "thanks", say) is only ever a distractor; short transcripts
        # (imported notes) fall back to any turn not shown.
        candidates = [x for x in eligible if x.index != t.index and _norm(x.text) not in visible]
        if len(candidates) < k:
            candidates = [
                x
                for x in turns
                if x.index != t.index
                and _norm(x.text) not in visible
                and not x.attachments
                and len(x.text) <= 400
            ]
        # Half the wrong turns in the patient's voice and half in the clinicians',
        # whoever is missing: otherwise "the one turn that sounds like the patient" is
        # the answer whenever the patient's turn is the one asked for.
        lay = [x.text for x in candidates if _lay(x.role)]
        staff = [x.text for x in candidates if not _lay(x.role)]
        n_lay = min(len(lay), max(k // 2, k - len(staff)))
        wrong = pick_distractors(t.text, lay, n_lay, ctx.rng, [])
        wrong += pick_distractors(t.text, staff, k - len(wrong), ctx.rng, wrong)
        yield Draft(
            task_type=T.INTEGRITY_MISSING_TURN_INFERENCE,
            key=f"m{i}",
            question=f"Turn {t.index} ({_speaker_phrase(t.speaker)}) is missing from the "
            "transcript. What did it most probably say?",
            correct=t.text,
            pool=wrong,
            rationale=f"Turn {t.index} read: {t.text!r}; the surrounding turns lead into and "
            "follow from it.",
            turn_start=start,
            turn_end=t.index - 1,
            excerpt=f"[Turn {t.index} is missing]\n\n" + "\n\n".join(format_turn(x) for x in after)
            if after
            else f"[Turn {t.index} is missing]",
        )


# ----------------------------------------------------------------------------- proactive

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


PROCEED = "Proceed: the order is appropriate as written"


# The issue options name no drug: the new order names one, and a drug name inside
# "stop"/"query" would let a reader of the options alone learn which drugs tend to be
# stopped (allergy-group drugs) and which queried (first-line drugs). The stop is about
# as long as a dose query, so being the longest option does not single it out.
STOP_ALLERGY = "Stop: the drug is in a group the patient is allergic to"


def query_dose(usual: str) -> str:
    """The dose-query option of explicit_error_correction, quoting a usual dose."""
    return f"Query the ordered dose: the usual dose is {usual}"


def _order_options(drug: str) -> list[str]:
    return [
        f"Halve the {drug} dose because of the renal function",
        f"Switch {drug} to the oral route before the first dose",
        f"Check a {drug} level before the next dose is given",
        f"Give {drug} only after a supervised test dose",
        f"Delay {drug} until the culture results return",
        f"Give {drug} as ordered but double the monitoring",
        f"Add a second agent to {drug} for broader cover",
        f"Give {drug} as ordered and recheck the renal function in the morning",
        f"Give {drug} as ordered, then review the whole regimen with the pharmacist",
    ]


def _unsafe_drugs(ctx: Ctx) -> set[str]:
    """Lower-cased names of drugs the recorded allergies rule out, cross-reactive ones included."""
    out: set[str] = set()
    for a in ctx.case.allergies:
        group = allergy_group_of(ctx.kb, a.substance)
        if group is not None:
            out |= {
                d.name.lower()
                for d in ctx.kb.drugs_in_allergy_group(group, include_cross_reactive=True)
            }
    return out


_FIRST_LINE: dict[int, list[list[tuple[float, str]]]] = {}


def _first_line_doses(kb: KnowledgeBase) -> list[list[tuple[float, str]]]:
    """Per condition, (amount, unit) of its first-line drugs at their dose (cached per KB)."""
    cached = _FIRST_LINE.get(id(kb))
    if cached is None:
        cached = []
        for cid, cond in sorted(kb.conditions.items()):
            doses = [
                td.dose or kb.drug(td.drug).dose_for(cid)
                for td in cond.treatments.drugs
                if td.role == "first_line"
            ]
            if doses:
                cached.append([(d.amount, d.unit) for d in doses])
        _FIRST_LINE[id(kb)] = cached
    return cached


def _wrong_usual(ctx: Ctx, amount: float, unit: str) -> str:
    """A dose that is neither the usual ``amount unit`` nor ten times it.

    Drawn the way the tenfold item draws the drug it orders (a condition, then one of
    its first-line drugs), so a false "usual dose" carries the same numbers and units
    as a true one and only the record tells them apart.
    """
    ruled_out = {_canonical_dose(amount, unit), _canonical_dose(amount * 10, unit)}
    by_condition = _first_line_doses(ctx.kb)
    for _ in range(20):
        a, u = ctx.rng.choice(ctx.rng.choice(by_condition))
        if _canonical_dose(a, u) not in ruled_out:
            return f"{a:g} {u}"
    return f"{amount * 2:g} {unit}"


# Unit prefixes the KB doses use, to compare "1 g" with "1000 mg" (or "mg/kg" with "g/kg").
_DOSE_SCALE = {"mcg": ("mg", 0.001), "mg": ("mg", 1.0), "g": ("mg", 1000.0)}
_DOSE_SCALE |= {"mL": ("mL", 1.0), "L": ("mL", 1000.0)}


def _canonical_dose(amount: float, unit: str) -> tuple[float, str]:
    """``(amount, unit)`` in milligrams or millilitres where the unit allows it."""
    head, sep, tail = unit.partition("/")
    base, factor = _DOSE_SCALE.get(head, (head, 1.0))
    return round(amount * factor, 6), base + sep + tail


def gen_error_correction(ctx: Ctx) -> Iterator[Draft]:
    """New orders with an allergy clash or a tenfold dose, and correct orders as controls.

    Every item offers the same four kinds of option: "proceed", an allergy stop, a dose
    query quoting the ordered drug's usual dose and one quoting a wrong "usual" dose
    (plus other order changes, always wrong). Which one is right depends on the order
    and the record, not on which templates are present; the stop and the queries name
    no drug, so a drug's name gives nothing away either.
    """
    if ctx.cond is None or ctx.anchor("plan") is None:
        return
    cond, kb = ctx.cond, ctx.kb
    attending = ctx.rendered.conversation.turns[ctx.anchor("plan") or 0].speaker
    end = ctx.n_turns - 1
    plan = [m for m in ctx.case.medications if m.indication == cond.name and m.dose_value]
    group = allergy_group_of(kb, ctx.case.allergies[0].substance) if ctx.case.allergies else None
    unsafe = _unsafe_drugs(ctx)
    # "prescription", not "order": "proceed: the order is ..." would otherwise be the one option
    # sharing a word with the question, a free hit for the overlap shortcut on controls.
    question = "Review the new prescription in the last note. What is the right response?"
    # (a) allergy clash: a drug from the recorded allergy group
    if group is not None:
        in_group = [d for d in kb.drugs_in_allergy_group(group)]
        treat = {td.drug for td in cond.treatments.drugs}
        pick = [d for d in in_group if d.id in treat] or in_group
        if pick:
            drug = ctx.rng.choice(pick)
            dose = drug.dose_for(cond.id)
            usual = f"{dose.amount:g} {dose.unit}"
            a = ctx.case.allergies[0]
            order = f"{drug.name} {dose.amount:g} {dose.unit} {dose.route} {dose.frequency}"
            name = drug.name.lower()
            yield Draft(
                task_type=T.EXPLICIT_ERROR_CORRECTION,
                key="x0",
                question=question,
                anchor_any=True,
                correct=STOP_ALLERGY,
                pool=_order_options(name),
                # Both dose queries are wrong: the order gives the usual dose.
                fixed=[
                    PROCEED,
                    query_dose(usual),
                    query_dose(_wrong_usual(ctx, dose.amount, dose.unit)),
                ],
                rationale=f"The patient reported {a.reaction} to {a.substance.lower()} (turn "
                f"{ctx.anchor('allergy')}); {drug.name} is in that group. The dose ordered is "
                f"the usual {usual}.",
                turn_start=0,
                turn_end=end,
                excerpt=f"{attending}: New order: {order}.",
                perturbation=Perturbation(
                    kind=PerturbationKind.ERROR,
                    location="context.excerpt",
                    original=None,
                    modified=order,
                    description=f"Ordered {drug.name} despite a recorded {a.substance} allergy "
                    f"({a.reaction}).",
                ),
                safety_critical=a.reaction in ("anaphylaxis", "angioedema"),
            )
    # (b) tenfold dose
    if plan:
        m = ctx.rng.choice(plan)
        assert m.dose_value is not None and m.dose_unit is not None
        name = m.name.lower()
        usual = f"{m.dose_value:g} {m.dose_unit}"
        wrong = f"{m.dose_value * 10:g} {m.dose_unit}"
        order = f"{m.name} {wrong} {m.route} {m.frequency}"
        # False alarms shared by the item and its control: an allergy stop (the drug is in
        # no group the patient is allergic to; left out when it merely cross-reacts, as
        # the stop would then be arguable) and a dose query quoting a dose that is not
        # the usual one.
        no_clash = [STOP_ALLERGY] if name not in unsafe else []
        not_usual = query_dose(_wrong_usual(ctx, m.dose_value, m.dose_unit))
        main = Draft(
            task_type=T.EXPLICIT_ERROR_CORRECTION,
            key="x1",
            question=question,
            anchor_any=True,
            correct=query_dose(usual),
            pool=_order_options(name),
            fixed=[PROCEED, *no_clash, not_usual],
            rationale=f"{wrong} is ten times the usual {usual} ({medication_text(m)} in turn "
            f"{ctx.anchor('plan')}).",
            turn_start=0,
            turn_end=end,
            excerpt=f"{attending}: New order: {order}.",
            perturbation=Perturbation(
                kind=PerturbationKind.ERROR,
                location="context.excerpt",
                original=medication_text(m),
                modified=order,
                description="Tenfold dosing error.",
            ),
            safety_critical=True,
        )
        yield main
        if ctx.is_control(T.EXPLICIT_ERROR_CORRECTION):
            order = medication_text(m)
            yield control_of(
                main,
                key="xc",
                correct=PROCEED,
                # False alarms: the dose ordered is the usual one and no allergy applies.
                fixed=[*no_clash, query_dose(usual), not_usual],
                rationale=f"{order} matches the plan, the usual dose and the allergy record.",
                excerpt=f"{attending}: New order: {order}.",
            )


NOTHING_MISSING = "Nothing: every necessary order is already done"


def gen_omission(ctx: Ctx) -> Iterator[Draft]:
    """A handover checklist missing one required item; the control lists every item.

    Both offer "nothing outstanding", an item of this condition that the checklist
    does list (wrong: it is done) and other conditions' items of the same kinds, so
    neither the item's name nor its kind says whether it is the missing one.
    """
    if ctx.cond is None or ctx.anchor("care") is None:
        return
    cond = ctx.cond
    kinds: tuple[str, ...] = ("lab", "vital", "diagnostic")
    items = [i.item for i in cond.standard_of_care if i.kind in kinds]
    if len(items) < 2:
        kinds = ("lab", "vital", "diagnostic", "drug", "documentation", "action")
        items = [i.item for i in cond.standard_of_care]
    if len(items) < 2:
        return
    others = _unrelated(
        [
            i.item
            for c in ctx.kb.conditions.values()
            if c.id != cond.id
            for i in c.standard_of_care
            if i.kind in kinds
        ],
        [i.item for i in cond.standard_of_care],
    )
    end = (ctx.anchor("care") or 1) - 1
    question = "Before handover, which required item is still outstanding?"
    missing = ctx.rng.choice(items)
    listed = [i for i in items if i != missing]
    main = Draft(
        task_type=T.OMISSION_DETECTION,
        key="o0",
        question=question,
        correct=_cap(missing),
        pool=[_cap(o) for o in others],
        fixed=[NOTHING_MISSING, _cap(ctx.rng.choice(listed))],  # the latter is on the list
        rationale=f"For {cond.name} the standard of care requires: {missing}; it appears "
        "nowhere in the record or the checklist. The other items offered are either done "
        "(on the checklist) or not required for this condition.",
        turn_start=0,
        turn_end=end,
        excerpt="Handover checklist, done: " + "; ".join(listed) + ".",
        perturbation=Perturbation(
            kind=PerturbationKind.OMISSION,
            location="context.excerpt",
            original=missing,
            modified=None,
            description=f"Required item left out: {missing}.",
        ),
    )
    yield main
    if ctx.is_control(T.OMISSION_DETECTION):
        yield control_of(
            main,
            key="oc",
            correct=NOTHING_MISSING,
            fixed=[_cap(ctx.rng.choice(items))],  # false alarm: it is on the checklist
            rationale=f"Every item the standard of care for {cond.name} requires is on the "
            "checklist.",
            excerpt="Handover checklist, done: " + "; ".join(items) + ".",
        )


MEETS_STANDARD = "Yes: this meets the standard of care"


def _required(item: KBCareItem) -> str:
    return f"No: {item.item} is required ({item.source})"


def gen_standard_of_care(ctx: Ctx) -> Iterator[Draft]:
    """A note declining a required item; the control documents every item.

    Both offer "meets the standard", a requirement of this condition that the note
    documents (wrong: it was done) and other conditions' requirements of the same
    kinds, so the requirement's name and kind do not point at the answer.
    """
    if ctx.cond is None or ctx.anchor("care") is None:
        return
    cond = ctx.cond
    kinds: tuple[str, ...] = ("documentation", "action", "drug")
    items = [i for i in cond.standard_of_care if i.kind in kinds]
    if not items:
        kinds = ("lab", "vital", "diagnostic", "drug", "documentation", "action")
        items = list(cond.standard_of_care)
    if not items:
        return
    others = [
        i
        for c in ctx.kb.conditions.values()
        if c.id != cond.id
        for i in c.standard_of_care
        if i.kind in kinds
    ]
    unrelated = set(_unrelated([i.item for i in others], [i.item for i in cond.standard_of_care]))
    pool = [_required(i) for i in others if i.item in unrelated]
    end = (ctx.anchor("care") or 1) - 1
    question = "Does the management described in the note follow accepted guidance?"
    item = ctx.rng.choice(items)
    done = [i for i in cond.standard_of_care if i is not item]
    # A documented requirement: same kind as the declined one where the condition has one.
    decoys = [i for i in done if i.kind in kinds] or done
    note = (
        "Team note: "
        + ("; ".join(i.item for i in done) + ". " if done else "")
        + (f"Not done, not felt necessary: {item.item}.")
    )
    main = Draft(
        task_type=T.STANDARD_OF_CARE,
        key="s0",
        question=question,
        correct=_required(item),
        pool=pool,
        fixed=[MEETS_STANDARD, *(_required(d) for d in _sample(ctx.rng, decoys, 1))],
        rationale=f"{item.source} requires {item.item} in {cond.name}; the note declines it. "
        "The other requirements offered are documented in the note or belong to other "
        "conditions.",
        turn_start=0,
        turn_end=end,
        excerpt=note,
        perturbation=Perturbation(
            kind=PerturbationKind.DEVIATION,
            location="context.excerpt",
            original=item.item,
            modified=f"Not done, not felt necessary: {item.item}",
            description=f"Deviation from {item.source}.",
        ),
    )
    yield main
    if ctx.is_control(T.STANDARD_OF_CARE):
        yield control_of(
            main,
            key="sc",
            correct=MEETS_STANDARD,
            fixed=[_required(ctx.rng.choice(items))],  # false alarm: it is documented
            rationale=f"All items the guidance requires for {cond.name} are documented.",
            excerpt="Team note: " + "; ".join(i.item for i in cond.standard_of_care) + ".",
        )


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
    exam = found[0]
    # A typical finding of the same condition that this examination did NOT find: a flag
    # naming it is wrong on every item (the examination never said so), yet it reads like
    # the right flag, so "the option that flags something" gives nothing away.
    unfound = [e for e in cond.exam if e not in found] or [
        e for c in ctx.kb.conditions.values() if c.id != cond.id for e in c.exam
    ]
    decoy = ctx.rng.choice(unfound)
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
        f"{imaging.contradicting_finding}; the two cannot both be right, so the discrepancy "
        f"must be raised before acting on either. The examination did not record {decoy}.",
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


# ----------------------------------------------------------------------------- imported sources

NO_ERROR = "No sentence contains a clinical error"
_MEDQA = re.compile(
    r"Question:\s*(?P<q>.+?)\nOptions:\n(?P<opts>(?:[A-F]\.\s.*\n?)+)Answer:\s*(?P<a>[A-F])", re.S
)


def gen_medec(ctx: Ctx) -> Iterator[Draft]:
    ann = medec_annotation(ctx.case)
    if ann is None:
        return
    turns = ctx.rendered.conversation.turns
    question = "Does any sentence of this note contain a clinical error? If so, which one?"
    quoted = [f'"{t.text}"' for t in turns]
    if ann.error_flag and ann.error_sentence:
        err = next((t for t in turns if t.text.strip() == ann.error_sentence.strip()), None)
        if err is None:
            return
        yield Draft(
            task_type=T.EXPLICIT_ERROR_CORRECTION,
            key="x0",
            question=question,
            correct=f'"{err.text}"',
            pool=[q for q in quoted if q != f'"{err.text}"'],
            fixed=[NO_ERROR],
            rationale=f"Turn {err.index} is wrong ({ann.error_type}); it should read: "
            f"{ann.corrected_sentence}",
            turn_start=0,
            turn_end=len(turns) - 1,
            perturbation=Perturbation(
                kind=PerturbationKind.ERROR,
                location=f"turn {err.index}",
                original=ann.corrected_sentence,
                modified=ann.error_sentence,
                description=f"MEDEC annotated error ({ann.error_type}).",
            ),
        )
    elif not ann.error_flag:
        yield Draft(
            task_type=T.EXPLICIT_ERROR_CORRECTION,
            key="xc",
            question=question,
            correct=NO_ERROR,
            correct_is_fixed=True,
            pool=quoted,
            rationale="MEDEC annotates this note as error-free.",
            turn_start=0,
            turn_end=len(turns) - 1,
            restraint_control=True,
        )


def gen_mediq(ctx: Ctx) -> Iterator[Draft]:
    sec = next((s for s in ctx.case.sections if s.title == "Source question"), None)
    if sec is None:
        return
    m = _MEDQA.search(sec.text)
    if m is None:
        return
    q = " ".join(m["q"].split())
    opts = dict(
        (line[0], line[3:].strip()) for line in m["opts"].strip().splitlines() if line[1:3] == ". "
    )
    if not 4 <= len(opts) <= 6 or m["a"] not in opts:
        return
    low = q.lower()
    if re.search(r"next (best )?step|most appropriate (next|initial)|best initial", low):
        ttype = T.PREDICTIVE_NEXT_ACTION
    elif re.search(r"most likely (diagnosis|cause)|diagnosis", low):
        ttype = T.DDX_REASONING
    else:
        return
    correct = opts[m["a"]]
    yield Draft(
        task_type=ttype,
        key="q0",
        question=q,
        correct=correct,
        pool=[v for k, v in opts.items() if k != m["a"]],
        rationale=f"Answer given by the source (MedQA via MediQ): {correct}.",
        turn_start=0,
        turn_end=ctx.n_turns - 1,
        n_options=len(opts),
    )


GENERATORS: dict[TaskType, tuple[Callable[[Ctx], Iterator[Draft]], ...]] = {
    T.FACT_RETRIEVAL: (gen_fact_retrieval,),
    T.TIMELINE_SEQUENCE: (gen_timeline_sequence,),
    T.DDX_REASONING: (gen_ddx_reasoning,),
    T.TREATMENT_DECISION: (gen_treatment_decision,),
    T.REASONING_DIFFERENTIAL_EVOLUTION: (gen_differential_evolution,),
    T.INTEGRITY_MISSING_TURN_INFERENCE: (gen_missing_turn,),
    T.PREDICTIVE_NEXT_ACTION: (gen_predictive_next_action,),
    T.EXPLICIT_ERROR_CORRECTION: (gen_error_correction, gen_medec),
    T.OMISSION_DETECTION: (gen_omission,),
    T.STANDARD_OF_CARE: (gen_standard_of_care,),
    T.INTERPRETATION_CONFLICT: (gen_interpretation_conflict,),
    T.DATA_CONFLICT_RESOLUTION: (gen_data_conflict,),
    T.CONSISTENCY_CHECK: (gen_consistency,),
}
SOURCE_GENERATORS: tuple[Callable[[Ctx], Iterator[Draft]], ...] = (gen_mediq,)


def case_tasks(
    case: Case,
    rendered: Rendered,
    kb: KnowledgeBase,
    *,
    seed: int = 0,
    split: Split | None = None,
    types: set[TaskType] | None = None,
) -> list[Task]:
    """All tasks of the requested types that ``case`` supports (deterministic)."""
    cond_id = kb_condition_id(case)
    ctx = Ctx(
        case=case,
        rendered=rendered,
        kb=kb,
        cond=kb.conditions.get(cond_id) if cond_id else None,
        rng=random.Random(f"behaviorsft-tasks:{seed}:{case.id}"),
        generator=Generator(name=GENERATOR_NAME, version=__version__, seed=seed),
        split=split,
    )
    out: list[Task] = []
    gens = [g for t, gs in GENERATORS.items() if types is None or t in types for g in gs]
    for gen in [*gens, *SOURCE_GENERATORS]:
        for draft in gen(ctx):
            if types is not None and draft.task_type not in types:
                continue
            task = finalise(draft, ctx)
            if task is not None:
                out.append(task)
    return out
