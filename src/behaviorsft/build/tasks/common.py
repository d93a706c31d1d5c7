"""What every task generator shares: the context, the draft, option selection and scoring.

Every generator reads structured facts (the Case, its rendered conversation and
the knowledge base) and writes a ``Draft``: a question, the right option, a pool of
wrong ones and a rationale; ``finalise`` then picks distractors of similar length
(so "pick the longest option" stays at chance), adds the fixed options (e.g.
"no issue"), shuffles with the seeded RNG and stores the permutation.

Behaviour score = ``BASE_SCORE[type]`` + adjustments (``score_for``):

* +0.05 when the injected issue is safety-critical (anaphylaxis-type allergy,
  tenfold dose);
* up to +0.05 for long contexts (implicitness: the cue is far from the
  question), linear in the number of turns shown, saturating at 30;
* -0.10 for restraint controls (the appraisal is still proactive; no action
  follows).

Restraint controls: each proactive type gets one control per ``CONTROL_EVERY``
cases (deterministic in the case id), i.e. a 1:2 control-to-perturbed ratio
for the types with one perturbed item per case. omission_detection and
standard_of_care emit one wherever the record shows every required item done
(perturbed item or not) and keep it on a share of those cases
(``Ctx.keeps_control``, ``key_rates.control_share``).
"""

import hashlib
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TypeVar

from behaviorsft.build.conversation import Rendered, format_finding_value, is_control_case
from behaviorsft.build.record_index import RecordIndex
from behaviorsft.records import (
    OPTION_LETTERS,
    Case,
    Finding,
    Generator,
    Perturbation,
    Split,
    Task,
)
from behaviorsft.sources.kb import Condition as KBCondition
from behaviorsft.sources.kb import KnowledgeBase
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
    # Why items were not emitted: "<task type>: <reason>" -> count (see ``drop``).
    dropped: Counter[str] = field(default_factory=Counter)
    _indexes: dict[tuple[int | None, str | None], RecordIndex] = field(
        default_factory=dict, repr=False
    )

    @property
    def n_turns(self) -> int:
        return len(self.rendered.conversation.turns)

    def anchor(self, name: str) -> int | None:
        return self.rendered.anchors.get(name)

    def index(self, turn_end: int | None = None, excerpt: str | None = None) -> RecordIndex:
        """The record a task shows (turns 0..``turn_end`` plus ``excerpt``), indexed (cached)."""
        key = (turn_end, excerpt)
        if key not in self._indexes:
            whole = self.rendered.index  # the renderer's index of every turn, when it made one
            if (
                excerpt is None
                and turn_end is not None
                and isinstance(whole, RecordIndex)
                and whole.case is self.case
            ):
                self._indexes[key] = whole.prefix(turn_end)
                return self._indexes[key]
            self._indexes[key] = RecordIndex.build(
                self.case,
                self.rendered.conversation.turns,
                self.kb,
                turn_end=turn_end,
                excerpt=excerpt,
            )
        return self._indexes[key]

    def drop(self, task_type: TaskType, reason: str, n: int = 1) -> None:
        """Count an item left out because its key could not be verified (build manifest)."""
        self.dropped[f"{task_type.value}: {reason}"] += n

    def is_control(self, task_type: TaskType) -> bool:
        """Whether this case carries the restraint control of ``task_type``."""
        return is_control_case(self.case.id, task_type.value, CONTROL_EVERY)

    def keeps_control(self, task_type: TaskType, share: float) -> bool:
        """Whether this case keeps its (eligible) restraint control of ``task_type``: a
        share ``share`` of the cases, drawn from the case id (no draw of ``rng``, so the
        case's other tasks do not change with the share)."""
        h = hashlib.sha1(f"{self.case.id}|{task_type.value}|keep".encode()).digest()
        return int.from_bytes(h[:4], "big") < share * (1 << 32)


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


@lru_cache(maxsize=1 << 16)
def turn_ref(turn: int | None, end: int) -> str:
    """How a rationale points to ``turn`` for a task showing turns up to ``end``: "in turn
    N" when the task shows it, else "later in the record" (never a turn number the
    test-taker cannot see)."""
    return f"in turn {turn}" if turn is not None and turn <= end else "later in the record"


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


def unique_candidates(pool: Sequence[str], taken: Sequence[str]) -> list[str]:
    """``pool`` in order, without blanks, repeats and texts already ``taken`` (normalised)."""
    seen = {_norm(x) for x in taken}
    uniq: list[str] = []
    for p in pool:
        n = _norm(p)
        if n and n not in seen:
            seen.add(n)
            uniq.append(p)
    return uniq


def pick_distractors(
    correct: str, pool: list[str], k: int, rng: random.Random, exclude: list[str]
) -> list[str]:
    """``k`` distinct wrong options, chosen so that length carries no signal.

    The number of distractors longer than the answer is drawn uniformly from
    ``0..k`` (as far as the pool allows), so the answer is the longest option
    about as often as a uniform guess would pick it; within each side the
    candidates closest in length are preferred.
    """
    uniq = unique_candidates(pool, [correct, *exclude])
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
    # Plain dicts: validated once, as part of the Task (an Option built here would be
    # validated twice, and serialises the same).
    options = [{"label": OPTION_LETTERS[i], "text": canonical[j]} for i, j in enumerate(order)]
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
