"""Proactive: omission_detection (handover checklist) and standard_of_care (team note).

Both build on the condition's standard-of-care items, and both are verified against the
record the task shows (``RecordIndex``) before they are emitted:

* the omitted (or declined) item is absent from that record under every name: none of the
  tests, procedures or drugs it names appears in any shown turn, table or the excerpt;
* a conditional item ("INR in patients on warfarin", "blood cultures if septic") is a key
  only when its condition holds in this record; otherwise it is not required here;
* an item listed as done names only things the record shows (a "blood count" only with a
  blood count in a table); a conditional item is listed without its condition, and an
  item naming nothing the record could show (a score documented, an isolation order) is
  listed on the note's word;
* the restraint control ("nothing outstanding", "meets the standard") is emitted only when
  every required item is listed as done.

An item that fails a check is not emitted; ``Ctx.drop`` counts why.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass

from behaviorsft.build.coherence import (
    claim_checker,
    consulted,
    distinct_claims,
    provable,
    required_as,
    required_by_state,
)
from behaviorsft.build.record_index import (
    NEGATIVE,
    Concept,
    Lexicon,
    RecordIndex,
    condition_holds,
    split_condition,
)
from behaviorsft.build.tasks.common import (
    DEFAULT_OPTIONS,
    Ctx,
    Draft,
    _cap,
    control_of,
)
from behaviorsft.build.tasks.conflict_pools import (
    pick_at_even_rank,
    score_in,
    shown_words,
)
from behaviorsft.build.tasks.key_rates import (
    control_share,
    emitted,
    key_rate,
    register,
    register_restraint,
    restraint_offer_rate,
    weighted_sample,
)
from behaviorsft.records import Perturbation, PerturbationKind
from behaviorsft.sources.kb import CareItem as KBCareItem
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.taxonomy import TaskType

T = TaskType


@dataclass(frozen=True)
class CheckedItem:
    """A standard-of-care item checked against one record."""

    item: KBCareItem
    core: str  # the item without its applicability clause
    clause: str | None
    holds: bool | None  # whether the clause holds here (True when there is none)
    named: tuple[Concept, ...]  # tests, procedures (and for drug items, drugs) it names
    present: tuple[Concept, ...]  # those the record names anywhere (even as a request)
    shown: tuple[Concept, ...]  # those the record shows done (results, reports, medicines)
    mentioned: bool  # one sentence of the record holds all its words
    # why the record cannot show it done as it claims (count, repeat, time, order; None: it
    # can), ``coherence.unproved_claim``
    unproved: str | None = None
    part: str | None = None  # what of it the record proves, when not all (``provable``)

    @property
    def absent(self) -> bool:
        """Nothing the item names is in the record, under any name."""
        return not self.present and not self.mentioned

    @property
    def required(self) -> bool:
        """The item applies to this patient: unconditional, or its condition holds."""
        return self.holds is True

    @property
    def listable(self) -> bool:
        """It may be listed as done: all it names is shown done, or it names nothing
        checkable, and the record proves the claim (``unproved``) or the part of it listed
        (``part``: "blood cultures" of "at least 3 sets of blood cultures")."""
        return len(self.shown) == len(self.named) and (self.unproved is None or bool(self.part))

    @property
    def complete(self) -> bool:
        """It is done as a whole: listable, and the record proves the whole claim (a control
        saying nothing is outstanding needs every required item complete)."""
        return len(self.shown) == len(self.named) and self.unproved is None

    @property
    def done_text(self) -> str:
        """How a note lists it as done (a condition that does not hold is left out; a claim
        the record does not prove whole, by the part it proves)."""
        if self.unproved is not None and self.part:
            return self.part
        return self.item.item if self.holds is True else self.core

    @property
    def as_done(self) -> KBCareItem:
        """The item as a note lists it done."""
        return self.item.model_copy(update={"item": self.done_text})


def named_concepts(item: KBCareItem, lex: Lexicon) -> list[Concept]:
    """The tests, groups and procedures (and, for a drug item, the drugs) ``item`` names,
    in order, with its KB reference: the lexicon's reading of its text, whatever the
    record shows."""
    core, _ = split_condition(item.item)
    kinds = {"test", "group", "procedure"}
    if item.kind == "drug":
        kinds |= {"drug", "family"}
    named: list[Concept] = []
    for cid in lex.find(core):
        if (c := lex.concepts[cid]).kind in kinds and c not in named:
            named.append(c)
    if item.ref is not None:
        for cid in (f"test:{item.ref}", f"drug:{item.ref}"):
            r = lex.concepts.get(cid)
            if r is not None and r.kind in kinds and r not in named:
                named.append(r)
    return named


def check_item(
    item: KBCareItem, idx: RecordIndex, proves: Callable[[str], str | None] | None = None
) -> CheckedItem:
    """``item`` against the record ``idx`` indexes (``proves``: ``claim_checker`` of it)."""
    core, clause = split_condition(item.item)
    named = named_concepts(item, idx.lexicon)
    drugs = [c for c in named if c.kind in ("drug", "family")]
    present = [c for c in named if idx.has(c)]
    shown = [c for c in named if (idx.takes(c) if c in drugs else idx.shows_done(c))]
    return CheckedItem(
        item=item,
        core=core,
        clause=clause,
        holds=True if clause is None else condition_holds(clause, idx),
        named=tuple(named),
        present=tuple(present),
        shown=tuple(shown),
        mentioned=bool(idx.phrase_refs(core)),
        unproved=(why := proves(core) if proves is not None else None),
        part=provable(proves, core) if proves is not None and why is not None else None,
    )


def distinct_done(items: list[CheckedItem]) -> list[CheckedItem]:
    """``items`` whose done texts differ, without one whose text another's covers ("blood
    cultures" beside "blood cultures before antibiotics": ``coherence.distinct_claims``),
    so that no list names one thing twice."""
    keep = set(distinct_claims(c.done_text for c in items))
    out: list[CheckedItem] = []
    for c in items:
        if c.done_text in keep:
            keep.discard(c.done_text)
            out.append(c)
    return out


def _verdicts(ctx: Ctx, items: list[KBCareItem], end: int) -> list[CheckedItem]:
    idx = ctx.index(turn_end=end)
    key = ("care items", tuple(i.item for i in items))
    if key not in idx.memo:  # omission and standard of care check the same items
        proves = record_claims(ctx, end)
        idx.memo[key] = [check_item(i, idx, proves) for i in items]
    out = idx.memo[key]
    assert isinstance(out, list)
    return out


def record_claims(ctx: Ctx, end: int) -> Callable[[str], str | None]:
    """``coherence.claim_checker`` of the record turns ``0..end`` show: the results shown
    by then, the turns, the medicines given."""
    turns = ctx.rendered.conversation.turns[: end + 1]
    at = ctx.rendered.finding_turns
    imaging = ctx.rendered.anchors.get("imaging")
    shown = [
        (f.name, f.day, f.value_text)
        for f in ctx.case.findings
        if (
            f.kind in ("vital", "lab")
            and (at.get((f.name, f.day)) is not None)
            and at[(f.name, f.day)] <= end
        )
        or (f.kind == "imaging" and imaging is not None and imaging <= end)
    ]
    given = [(f"{m.name} {m.drug_class or ''}", m.route or "") for m in ctx.case.medications]
    return claim_checker(ctx.kb, shown, [t.text for t in turns], given)


def _key_reason(c: CheckedItem) -> str | None:
    """Why ``c`` cannot be the missing item, or None when it can."""
    if NEGATIVE.search(c.item.item):
        return "is a recommendation against something"
    if not c.absent:
        return "item present in record"
    if c.holds is False:
        return "condition not met"
    if c.holds is None:
        return "condition not verifiable"
    return None


IN_OTHER_WORDS = "names nothing checkable and its words are in the record"

# Abbreviations a plan writes for an item's words ("reduce SBP ..." for "BP targets").
_ABBREV = {"sbp": "bp", "dbp": "bp", "map": "bp", "pressure": "bp"}


def _said_words(text: str) -> set[str]:
    found = re.findall(r"[a-z0-9]{2,}", text.lower())
    return {_ABBREV.get(w, w) for w in found}


def _in_other_words(ctx: Ctx, c: CheckedItem, end: int) -> bool:
    """Whether an item that names nothing the index can look for ("BP targets and timeline
    documented", "contact precautions for CDI") may be in the record in other words: a
    word of its own (not how it is done) appears in a turn shown. Its absence cannot be
    verified then (the plan may say "reduce SBP by no more than 25% ..."), so it is no key."""
    if c.named:
        return False
    own = _said_words(c.core) - _HOW - {"and", "for", "or", "of", "the", "to", "in", "on", "at"}
    return bool(own & _said_up_to(ctx, end))


_SAID: dict[int, tuple[object, int, set[str]]] = {}


def _said_up_to(ctx: Ctx, end: int) -> set[str]:
    """``_said_words`` of turns ``0..end`` of this conversation (computed once per end)."""
    conv = ctx.rendered.conversation
    hit = _SAID.get(id(conv))
    if hit is None or hit[0] is not conv or hit[1] != end:
        if len(_SAID) > 64:
            _SAID.clear()
        said = set().union(*(_said_words(t.text) for t in conv.turns[: end + 1]))
        hit = _SAID[id(conv)] = (conv, end, said)
    return hit[2]


def _consulted(ctx: Ctx, c: CheckedItem, end: int) -> bool:
    """Whether the consultation ``c`` asks for ("early surgical consultation") took place:
    a consultant of that specialty speaks in turns ``0..end`` (``coherence.consulted``)."""
    return consulted(c.item.item, (t.role for t in ctx.rendered.conversation.turns[: end + 1]))


def _left_out(ctx: Ctx, keys: list[CheckedItem]) -> list[CheckedItem]:
    """The verified keys, narrowed to the item the renderer left out of this record if it is
    among them (else all): drawn per case, it makes each item the key in proportion."""
    chosen = [c for c in keys if c.item.item in ctx.rendered.omitted]
    return chosen or keys


NOTHING_MISSING = "Nothing: every necessary order is already done"

# Care any inpatient may need whatever the diagnosis: never offered as another condition's
# item (as "not required here" it could be wrong for this patient).
GENERIC_CARE = re.compile(
    r"\b(vte|thrombo\w*|renal function|electrolytes?|blood count|medication review|fluid"
    r"|urine output|cultures?|pregnan\w*|oxygen|oximetry|saturation|allerg\w*|observations?"
    r"|vital signs|ecg|troponin"
    # tests nearly every admission shows (so another condition's record can seldom
    # offer them as "not required": such a key would mark itself)
    r"|glucose|creatinine|ha?emoglobin)\b",
    re.I,
)
# Words that say how an item is done, not what it is about.
_HOW = frozenset(
    [
        "documented",
        "documentation",
        "checked",
        "assessed",
        "assessment",
        "before",
        "after",
        "measured",
        "score",
        "given",
        "during",
        "prescribed",
        "discharge",
        "with",
        "within",
        "from",
        "when",
        "risk",
        "test",
        "testing",
        "serum",
        "blood",
        "review",
        "hourly",
        "initial",
        "first",
        "monitored",
        "monitoring",
        "repeat",
        "every",
    ]
)


def _topic(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"[a-z]{4,}", text.lower())) - _HOW


_FOREIGN: dict[tuple[int, bool], tuple[dict[str, list[KBCareItem]], Counter[str]]] = {}


def foreign_care(
    kb: KnowledgeBase, *, soc: bool = False
) -> tuple[dict[str, list[KBCareItem]], Counter[str]]:
    """Per condition, other conditions' requirements that are plainly not required for it,
    and for each such item the number of conditions it is offered for.

    An item qualifies for condition ``c`` when it belongs to a condition of another body
    system that is not among ``c``'s differentials, names no drug, recommends nothing
    against, holds no applicability clause, is not care any inpatient may need
    (``GENERIC_CARE``), and shares no topic word with any of ``c``'s own requirements
    ("serum magnesium" is not foreign to "electrolytes including magnesium"). With ``soc``
    (standard_of_care's "No: X is required" options), nor does it name what this condition
    requires under another name (``coherence.required_as``: no "LVEF assessed" where a TTE
    is required).
    """
    hit = _FOREIGN.get((id(kb), soc))
    if hit is not None:
        return hit
    conds = list(kb.conditions.values())
    eligible = [
        (c, i)
        for c in conds
        for i in c.standard_of_care
        if i.kind != "drug"
        and not GENERIC_CARE.search(i.item)
        and not NEGATIVE.search(i.item)
        and split_condition(i.item)[1] is None
    ]
    per: dict[str, list[KBCareItem]] = {}
    avail: Counter[str] = Counter()
    for cond in conds:
        near = {d.condition_id for d in cond.differentials} | {cond.id}
        own = set().union(*(_topic(i.item) for i in cond.standard_of_care))
        per[cond.id] = [
            i
            for c, i in eligible
            if c.id not in near
            and c.system != cond.system
            and not (_topic(i.item) & own)
            and not (soc and required_as(cond, i.item) is not None)
        ]
        avail.update(i.item for i in per[cond.id])
    _FOREIGN[(id(kb), soc)] = (per, avail)
    return per, avail


_NEAR: dict[int, tuple[dict[str, list[tuple[KBCareItem, str]]], Counter[str]]] = {}


def _linked(kb: KnowledgeBase, cond_id: str) -> list[str]:
    """Conditions in this condition's differential, or with it in theirs."""
    out = [d.condition_id for d in kb.conditions[cond_id].differentials if d.condition_id]
    out += [
        o.id
        for o in kb.conditions.values()
        if o.id != cond_id and any(d.condition_id == cond_id for d in o.differentials)
    ]
    return list(dict.fromkeys(out))


def near_conditions(kb: KnowledgeBase, cond_id: str) -> dict[str, str]:
    """The conditions of this presentation's differential: those linked to this condition
    as a differential either way round, then those linked to them (a leg swelling beside a
    cellulitis: DVT, and heart failure beside the DVT), then, outside the broad systems
    (``_BROAD_SYSTEMS``), the other conditions of its body system. Condition id -> the
    name a note gives it (this condition's name for it when it lists it, else its own).

    The second step is needed for balance: without it the notes' pools are smaller, more
    options are other conditions' items the record never quotes, and on 1,000 cases (seed
    11) "the option the record quotes most" scores 33.0% (24.2% with it), an options-only
    classifier of this type alone 35.6% (27.0%)."""
    cond = kb.conditions[cond_id]
    out = {d.condition_id: d.name for d in cond.differentials if d.condition_id}
    first = _linked(kb, cond_id)
    same = [] if cond.system in _BROAD_SYSTEMS else _same_system(kb, cond_id)
    for cid in first + [c for f in first for c in _linked(kb, f)] + same:
        if cid != cond_id and cid not in out:
            out[cid] = kb.conditions[cid].name
    return out


# Body systems too broad to share a presentation (tuberculosis and cellulitis are both
# infections): their conditions are not one another's differential by system alone.
_BROAD_SYSTEMS = frozenset({"infectious"})


def _same_system(kb: KnowledgeBase, cond_id: str) -> list[str]:
    """The other conditions of this condition's body system (a small bowel obstruction
    beside a pancreatitis, a hypokalaemia beside a hyperkalaemia)."""
    system = kb.conditions[cond_id].system
    return [c.id for c in kb.conditions.values() if c.system == system and c.id != cond_id]


def near_care(
    kb: KnowledgeBase,
) -> tuple[dict[str, list[tuple[KBCareItem, str]]], Counter[str]]:
    """Per condition, the requirements of its differential diagnoses that a note may rightly
    decline for it (the differential judged unlikely), each with the differential's name,
    and for each such item the number of conditions it is offered for.

    The workup of a diagnosis the team weighed (a leg duplex for a possible DVT beside a
    cellulitis), never care from an unrelated system (an LVEF in a cellulitis note). The
    filters of ``foreign_care`` apply: no drug, no recommendation against, no clause, no
    care any inpatient may need, no topic word shared with this condition's own items."""
    hit = _NEAR.get(id(kb))
    if hit is not None:
        return hit
    per: dict[str, list[tuple[KBCareItem, str]]] = {}
    avail: Counter[str] = Counter()
    for cond in kb.conditions.values():
        own = set().union(*(_topic(i.item) for i in cond.standard_of_care))
        mine = {i.item for i in cond.standard_of_care}
        seen: set[str] = set()
        pool: list[tuple[KBCareItem, str]] = []
        for cid, name in near_conditions(kb, cond.id).items():
            for i in kb.conditions[cid].standard_of_care:
                if (
                    i.kind != "drug"
                    and not GENERIC_CARE.search(i.item)
                    and not NEGATIVE.search(i.item)
                    and split_condition(i.item)[1] is None
                    and not (_topic(i.item) & own)
                    and i.item not in mine
                    and i.item not in seen
                    and required_as(cond, i.item) is None
                ):
                    seen.add(i.item)
                    pool.append((i, name))
        per[cond.id] = pool
        avail.update(i.item for i, _ in pool)
    _NEAR[id(kb)] = (per, avail)
    return per, avail


# A declined item's reason in a team note: "X (only if deep vein thrombosis is likely, not
# the case here)". Every declined item carries one, the key's included (a restriction the
# guidance does not make, or a condition the record shows met), so the reason's form marks
# no option.
NOT_THE_CASE = ", not the case here"
# How much more often, at the same weight (``soc_weights``), a team note's wrong options
# draw an item the note may rightly decline (``near_care``, ``_clause_decoys``) than one
# of the requirements it documents
NEAR_BOOST = 40.0
# ... and than another condition's item (``foreign_care``: offered, never declined), which
# is drawn mostly where the notes that may decline its text are too few to offer it wrong
# as often as it is the key
FOREIGN_SHARE = 0.002
DECLINE_REASON = re.compile(r"\s+\((?P<why>only [^()]*), not the case here\)$")
# restrictions a note wrongly puts on an unconditional requirement
_FALSE_LIMITS = ("only in severe disease", "only if not improving", "only if complicated")


def _dx_name(name: str) -> str:
    """A diagnosis's name inside a sentence ("deep vein thrombosis", "COVID-19 pneumonia"),
    without a parenthesis ("heart failure (hypervolaemic hyponatraemia)")."""
    name = name.split(" (")[0].strip()
    return name[0].lower() + name[1:] if name[1:2].islower() else name


def clause_limit(clause: str) -> str:
    """An applicability clause as a note states it ("only in patients on warfarin"), cut
    before any parenthesis (``split_condition`` may leave one open)."""
    text = clause.split(" (")[0].split("(")[0].strip(" ,;")
    return text if text.lower().startswith("only ") else f"only {text}"


def decline_text(item: str, why: str) -> str:
    """How a team note declines ``item`` for the reason ``why`` (``DECLINE_REASON``)."""
    return f"{item} ({why}{NOT_THE_CASE})"


_WEIGHTS: dict[tuple[int, TaskType], dict[str, float]] = {}


def foreign_weights(kb: KnowledgeBase, task_type: TaskType) -> dict[str, float]:
    """Item -> the weight with which other conditions' tasks draw it as a wrong option
    (``foreign_care``), so that over a build each is offered in proportion to how often
    it is the key (``key_rate``: items per case of its condition).

    Dividing the key rate by the number of conditions that may offer the item (as
    before) left two biases: conditions that emit few tasks (their records can seldom
    lack a verifiable item) offer their pool rarely, and a condition whose pool weighs
    little in all offers each member more often. The weights solve
    ``key_rate(t) = sum over conditions c offering t of tasks(c) * w(t) / W(c)``, with
    ``W(c)`` the total weight of c's pool and ``tasks(c)`` its items and controls per
    case (``key_rates.emitted``), by fixed-point iteration; they are then scaled to the
    old weights' total, so they mix with the key rates of a condition's own items as
    before (standard_of_care draws both in one weighted order)."""
    hit = _WEIGHTS.get((id(kb), task_type))
    if hit is not None:
        return hit
    per, avail = foreign_care(kb)
    tasks = {c: i + r for c, (i, r) in emitted(kb, task_type).items()}
    text = _cap if task_type is T.OMISSION_DETECTION else _required_text
    rate: dict[str, float] = {}
    where: dict[str, list[str]] = {}
    for cid, pool in per.items():
        for i in pool:
            rate[i.item] = key_rate(kb, task_type, text(i.item))
            where.setdefault(i.item, []).append(cid)
    old_total = sum(rate[t] / avail[t] * len(where[t]) for t in rate)
    w = {t: r / avail[t] for t, r in rate.items()}
    for _ in range(50):
        pool_weight = {cid: sum(w[i.item] for i in pool) for cid, pool in per.items()}
        reach = {
            t: sum(tasks.get(c, 0.0) / pool_weight[c] for c in cs if pool_weight[c] > 0)
            for t, cs in where.items()
        }
        w = {t: rate[t] / reach[t] if reach[t] > 0 else 0.0 for t in rate}
        total = sum(w[t] * len(where[t]) for t in w)
        if total <= 0:
            break
        w = {t: v * old_total / total for t, v in w.items()}
    if len(_WEIGHTS) > 64:
        _WEIGHTS.clear()
    _WEIGHTS[(id(kb), task_type)] = w
    return w


_SOC_WEIGHTS: dict[int, dict[str, float]] = {}


def _fill(
    slots: float, weights: dict[str, float], caps: dict[str, float] | None = None
) -> dict[str, float]:
    """The chance that each text is among ``slots`` drawn from ``weights``, approximated as
    ``min(cap, l * weight)`` (``cap`` 1 unless ``caps`` says less) with ``l`` such that the
    chances sum to ``slots`` (or to the sum of the caps of the texts of positive weight,
    if less)."""
    caps = caps or {}
    ranked = sorted(
        (caps.get(t, 1.0) / v, v, t) for t, v in weights.items() if v > 0 and caps.get(t, 1.0) > 0
    )
    rest = sum(v for _, v, _ in ranked)
    full = 0.0
    for m, (limit, v, _) in enumerate(ranked):
        scale = (slots - full) / rest if rest > 0 else 0.0
        if scale <= limit:
            return {
                t: caps.get(t, 1.0) if j < m else scale * u for j, (_, u, t) in enumerate(ranked)
            }
        full += caps.get(ranked[m][2], 1.0)
        rest -= v
    return {t: caps.get(t, 1.0) for _, _, t in ranked}


def soc_weights(kb: KnowledgeBase, n_options: int = DEFAULT_OPTIONS) -> dict[str, float]:
    """Requirement -> the weight with which standard_of_care's wrong "No" options draw it,
    so that over a build each text is offered wrong about ``n_options - 1`` times as often
    as it is the key (``key_rate``).

    A condition's items draw from one pool: its own requirements (documented in the note,
    weight divided by ``NEAR_BOOST``), its differentials' workup and its own clauses the
    record rules out (declined in the note), and other conditions' requirements (offered
    only, weight times ``FOREIGN_SHARE``). The weights solve, by fixed-point iteration,
    ``(n - 1) key_rate(t) = sum over pools c holding t of min(tasks(c), slots(c) w(t)
    role(c, t) / W(c))``, with ``slots(c)`` the wrong "No" options c's items and controls
    offer per case (``key_rates.emitted``, ``yes_plans``) and ``W(c)`` the pool's total
    weight. A text only few notes may decline (modified Duke criteria, a stroke's imaging)
    thereby gets the weight that makes other conditions' items offer it often enough,
    which a weight divided among the conditions offering it left short."""
    hit = _SOC_WEIGHTS.get(id(kb))
    if hit is not None:
        return hit
    per_near, _ = near_care(kb)
    per_foreign, _ = foreign_care(kb, soc=True)
    plans = yes_plans(kb, n_options)
    target: dict[str, float] = {}
    pools: dict[str, dict[str, float]] = {}
    slots: dict[str, tuple[float, float]] = {}
    caps: dict[str, dict[str, float]] = {}
    for cid, (items, controls) in emitted(kb, T.STANDARD_OF_CARE).items():
        cond = kb.conditions.get(cid)
        if cond is None or items + controls <= 0:
            continue
        plan = plans.get(cid, YesPlan(1.0, 0.0, 1.0))
        yes = plan.cited + (1 - plan.cited) * plan.generic
        slots[cid] = (items + controls, items * (n_options - 1 - yes) + controls * (n_options - 1))
        pool = {i.item: FOREIGN_SHARE for i in per_foreign[cid]}
        pool |= {i.item: 1.0 for i, _ in per_near[cid]}
        pool |= {
            i.item: 1.0 if split_condition(i.item)[1] is not None else 1.0 / NEAR_BOOST
            for i in cond.standard_of_care
        }
        pools[cid] = pool
        # an own conditional requirement is offered wrong (declined) only in the tasks it
        # is not the key of; an unconditional one only where the record shows it done,
        # which is seldom where it can be the key, so it is not counted on
        caps[cid] = {
            i.item: max(
                0.0,
                1 - key_rate(kb, T.STANDARD_OF_CARE, _required(i)) / (items + controls),
            )
            if split_condition(i.item)[1] is not None
            else 0.0
            for i in cond.standard_of_care
        }
    for pool in pools.values():
        for t in pool:
            target[t] = (n_options - 1) * key_rate(kb, T.STANDARD_OF_CARE, _required_text(t))
    w = {t: 1.0 for t in target}
    for _ in range(100):
        offered = dict.fromkeys(target, 0.0)
        for cid, pool in pools.items():
            tasks, n_slots = slots[cid]
            weights = {t: w[t] * r for t, r in pool.items()}
            for t, p in _fill(n_slots / tasks, weights, caps[cid]).items():
                offered[t] += tasks * p
        w = {
            t: 0.0 if target[t] <= 0 or offered[t] <= 0 else w[t] * (target[t] / offered[t]) ** 0.5
            for t in target
        }
    if len(_SOC_WEIGHTS) > 16:
        _SOC_WEIGHTS.clear()
    _SOC_WEIGHTS[id(kb)] = w
    return w


def _omission_keys(
    ctx: Ctx, checked: list[CheckedItem]
) -> tuple[list[CheckedItem], tuple[str, ...]]:
    """The verified missing items omission_detection may key, and the kinds it offers."""
    # The item the renderer left out, whatever its kind; otherwise prefer a test or study,
    # documentation items only when none verifies.
    end = (ctx.anchor("care") or 1) - 1

    def ok(c: CheckedItem) -> bool:
        return (
            _key_reason(c) is None
            and not _in_other_words(ctx, c, end)
            and not _consulted(ctx, c, end)
        )

    kinds: tuple[str, ...] = ("lab", "vital", "diagnostic")
    keys = [c for c in checked if c.item.kind in kinds and ok(c)]
    left_out = [c for c in checked if c.item.item in ctx.rendered.omitted]
    if any(c.item.kind not in kinds and ok(c) for c in left_out) or not keys:
        kinds = ("lab", "vital", "diagnostic", "drug", "documentation", "action")
        keys = [c for c in checked if ok(c)]
    return _offerable(ctx, _left_out(ctx, keys)), kinds


def _offerable(ctx: Ctx, keys: list[CheckedItem], *, soc: bool = False) -> list[CheckedItem]:
    """``keys``, narrowed to those another condition's items may offer as a wrong option
    when there are any: a key text never offered wrong anywhere would mark itself."""
    _, avail = foreign_care(ctx.kb, soc=soc)
    return [c for c in keys if avail[c.item.item] > 0] or keys


def offered_wrong_elsewhere(
    ctx: Ctx, keys: list[CheckedItem], *, soc: bool = False
) -> list[CheckedItem]:
    """The ``keys`` that other conditions' items may offer as a wrong option.

    Care any inpatient may need (VTE prophylaxis, a fluid balance chart, a medication
    review: ``GENERIC_CARE``) is never offered as another condition's item, and the
    records of the conditions that require it never show it done, so where it is the
    only verified key it would be the key of every item that offers it (an options-only
    reader picks it on sight). Such an item is not emitted (``Ctx.drop`` counts it);
    the case's restraint control still is."""
    _, avail = foreign_care(ctx.kb, soc=soc)
    return [c for c in keys if avail[c.item.item] > 0]


def _care_checked(ctx: Ctx) -> tuple[int, list[CheckedItem]] | None:
    if ctx.cond is None or ctx.anchor("care") is None:
        return None
    end = (ctx.anchor("care") or 1) - 1
    return end, _verdicts(ctx, list(ctx.cond.standard_of_care), end)


def _omission_key_texts(ctx: object) -> tuple[list[str], int]:
    assert isinstance(ctx, Ctx)
    got = _care_checked(ctx)
    if got is None:
        return [], 1
    keys, _ = _omission_keys(ctx, got[1])
    return [_cap(c.item.item) for c in offered_wrong_elsewhere(ctx, keys)], 1


def all_done(checked: list[CheckedItem]) -> bool:
    """Whether the record shows every item that applies here done as a whole (and some
    item applies): only then is "nothing outstanding" / "meets the standard" right. An item
    whose condition the record cannot settle must be done too."""
    required = [c for c in checked if c.holds is not False]
    return bool(required) and all(c.complete for c in required)


def _omission_emitted(ctx: object) -> tuple[float, float]:
    """(perturbed items, restraint controls) ``gen_omission`` emits for this record."""
    assert isinstance(ctx, Ctx)
    got = _care_checked(ctx)
    if got is None:
        return 0.0, 0.0
    checked = got[1]
    # the control (eligible: ``control_share`` of these carry it) needs no perturbed item
    control = float(ctx.is_control(T.OMISSION_DETECTION) and all_done(checked))
    verified, _ = _omission_keys(ctx, checked)
    if not verified:
        return 0.0, control
    keys = offered_wrong_elsewhere(ctx, verified)
    missing = (keys or verified)[0]
    if not [c for c in checked if c.listable and c.holds is not False and c is not missing]:
        return 0.0, control
    return float(bool(keys)), control


register(T.OMISSION_DETECTION, _omission_key_texts)
register_restraint(T.OMISSION_DETECTION, _omission_emitted)


def _listed_option(
    ctx: Ctx, listed: list[CheckedItem], foreign: dict[str, float], end: int
) -> tuple[list[str], str]:
    """One item the checklist shows, as a (wrong) option, and the checklist's tail.

    A listed item, drawn by how often its text is the missing item in other cases; or
    the workup of a differential diagnosis the team judged unlikely (``near_care``), drawn
    by how often its text is the missing item in its own condition's cases and shown on
    the checklist as "not applicable" with that reason (checked absent from the record;
    never an unrelated condition's item, which no checklist of this patient would name).
    Either way the record quotes it, which keeps "the option the record quotes most"
    from pointing to the key. A listed item is offered with probability (the summed key
    rates of the listed items) / (tasks per case of this condition), so that over the
    build each listed text is offered here about as often as it is the key: offered on
    every task, an item that is listable in most cases of its condition but seldom
    missing (lipase beside a TG18 grade) was the listed option nearly every time, and
    an options-only reader learnt to avoid it.
    """
    rate = {
        _cap(c.done_text): key_rate(ctx.kb, T.OMISSION_DETECTION, _cap(c.item.item)) for c in listed
    }
    tasks = sum(emitted(ctx.kb, T.OMISSION_DETECTION).get(ctx.cond.id if ctx.cond else "", (0, 0)))
    share = min(1.0, sum(rate.values()) / tasks) if tasks > 0 else 1.0
    if not foreign or (any(rate.values()) and ctx.rng.random() < share):
        return weighted_sample(ctx.rng, list(rate), list(rate.values()), 1), ""
    per, _ = near_care(ctx.kb)
    items = {_cap(i.item): (i, name) for i, name in per[ctx.cond.id]} if ctx.cond else {}
    near = {t: key_rate(ctx.kb, T.OMISSION_DETECTION, t) for t in items}
    idx = ctx.index(turn_end=end)
    for text in weighted_sample(ctx.rng, list(near), list(near.values()), len(near)):
        item, name = items[text]
        if near[text] > 0 and check_item(item, idx).absent:
            return [text], f" Not applicable: {item.item} ({_dx_name(name)} judged unlikely)."
    return weighted_sample(ctx.rng, list(rate), list(rate.values()), 1), ""


def gen_omission(ctx: Ctx) -> Iterator[Draft]:
    """A handover checklist missing one required item; the control lists every item.

    Both offer an item the checklist shows (one of this condition's, done, or another
    condition's marked "not applicable") and other conditions' items of the same kinds,
    so neither the item's name nor its kind says whether it is the missing one; the
    control and a share of the items (``restraint_offer_rate``) offer "nothing
    outstanding". The listed and other conditions' items are drawn in proportion to how
    often their text is the missing item elsewhere (``key_rates``, ``foreign_weights``),
    so no text is a key more often than others; a case whose only verified missing item
    is never offered wrong elsewhere (``offered_wrong_elsewhere``) emits its control only.
    """
    got = _care_checked(ctx)
    if got is None:
        return
    cond = ctx.cond
    assert cond is not None
    end, checked = got
    verified, kinds = _omission_keys(ctx, checked)
    for c in checked:
        reason = _key_reason(c)
        if reason is not None:
            ctx.drop(T.OMISSION_DETECTION, f"candidate {reason}")
        elif _in_other_words(ctx, c, end):
            ctx.drop(T.OMISSION_DETECTION, f"candidate {IN_OTHER_WORDS}")
        elif _consulted(ctx, c, end):
            ctx.drop(T.OMISSION_DETECTION, "candidate consultation took place")
    listable = [c for c in checked if c.listable and c.holds is not False]
    if not verified:
        ctx.drop(T.OMISSION_DETECTION, "no verified missing item")
    keys = offered_wrong_elsewhere(ctx, verified)
    if verified and not keys:
        ctx.drop(T.OMISSION_DETECTION, "key never offered wrong elsewhere")
    question = "At handover, which item is still outstanding?"
    missing = ctx.rng.choice(keys or verified) if verified else None
    # Other conditions' items plainly not required here (``foreign_care``), drawn with
    # weights (``foreign_weights``) under which, over the build, each text is offered in
    # proportion to how often it is the key, whatever it names.
    per, _ = foreign_care(ctx.kb)
    weight = foreign_weights(ctx.kb, T.OMISSION_DETECTION)
    foreign = {_cap(i.item): weight[i.item] for i in per[cond.id]}
    others = weighted_sample(ctx.rng, list(foreign), list(foreign.values()), 7)
    if missing is not None:
        # (less the item its checklist offers, which the control's pool leaves out too)
        others = yield from _omission_item(
            ctx, missing, keys, kinds, listable, foreign, others, end
        )
    if ctx.is_control(T.OMISSION_DETECTION):
        if not all_done(checked):
            ctx.drop(T.OMISSION_DETECTION, "control: a required item is not in the record")
            return
        if not ctx.keeps_control(T.OMISSION_DETECTION, control_share(ctx.kb, T.OMISSION_DETECTION)):
            return
        all_done_texts = distinct_claims(c.done_text for c in checked if c.holds is not False)
        alarm, not_applicable_c = _listed_option(
            ctx, distinct_done([c for c in checked if c.holds is not False]), foreign, end
        )
        frame = Draft(
            task_type=T.OMISSION_DETECTION,
            key="o0",
            question=question,
            correct="",
            pool=others,
            rationale="",
            turn_start=0,
            turn_end=end,
        )
        yield control_of(
            frame,
            key="oc",
            correct=NOTHING_MISSING,
            fixed=alarm,  # false alarm: it is on the checklist
            rationale=f"Every item the standard of care for {cond.name} requires is on the "
            "checklist, and the tests it lists are in the record.",
            excerpt="Handover checklist, done: "
            + "; ".join(all_done_texts)
            + "."
            + not_applicable_c,
            pool=[o for o in others if o not in alarm],
        )


def _omission_item(
    ctx: Ctx,
    missing: CheckedItem,
    keys: list[CheckedItem],
    kinds: tuple[str, ...],
    listable: list[CheckedItem],
    foreign: dict[str, float],
    others: list[str],
    end: int,
) -> Generator[Draft, None, list[str]]:
    """``gen_omission``'s perturbed item: the checklist without ``missing`` (emitted only
    when ``missing`` is one of ``keys``, offered wrong elsewhere); returns ``others`` less
    the option the checklist offers."""
    cond = ctx.cond
    assert cond is not None
    # "Nothing outstanding" is the key of every control; offered on every item it would
    # be the key too seldom or too often, so it is offered on the share of items that
    # makes it the key about one time in the number of options (``restraint_offer_rate``).
    offer_nothing = ctx.rng.random() < restraint_offer_rate(
        ctx.kb, T.OMISSION_DETECTION, DEFAULT_OPTIONS
    )
    listed = [c for c in listable if c is not missing and c.item.kind in kinds] or [
        c for c in listable if c is not missing
    ]
    listed = distinct_done(listed)
    if not listed:
        ctx.drop(T.OMISSION_DETECTION, "no verified done item to list")
        return others
    done = list(dict.fromkeys(c.done_text for c in listed))
    # A listed item is offered (wrong: it is done), drawn the same way.
    on_list, not_applicable = _listed_option(ctx, listed, foreign, end)
    others = [o for o in others if o not in on_list]
    main = Draft(
        task_type=T.OMISSION_DETECTION,
        key="o0",
        question="At handover, which item is still outstanding?",
        correct=_cap(missing.item.item),
        pool=others,
        # the latter is on the list
        fixed=[NOTHING_MISSING, *on_list] if offer_nothing else on_list,
        rationale=f"For {cond.name} the standard of care requires: {missing.item.item}; it "
        "appears nowhere in the record or the checklist. The other items offered are either "
        "done (on the checklist) or not required for this condition.",
        turn_start=0,
        turn_end=end,
        excerpt="Handover checklist, done: " + "; ".join(done) + "." + not_applicable,
        perturbation=Perturbation(
            kind=PerturbationKind.OMISSION,
            location="context.excerpt",
            original=missing.item.item,
            modified=None,
            description=f"Required item left out: {missing.item.item}.",
        ),
    )
    if keys:
        yield main
    return others


MEETS_STANDARD = "Yes: this meets the standard of care"


def _required_text(item: str) -> str:
    return f"No: {item} is required"


def _required(item: KBCareItem) -> str:
    return _required_text(item.item)


def meets_standard(documented: KBCareItem) -> str:
    """The 'no issue' option, citing one requirement the note documents."""
    return f"Yes: {documented.item} and all other requirements are documented"


@dataclass(frozen=True)
class YesPlan:
    """How one condition's standard_of_care tasks offer "meets the standard"."""

    cited: float  # share of items offering "Yes: <a documented item> and all other ..."
    generic: float  # share of the other items offering MEETS_STANDARD
    control_cites: float  # share of controls whose key cites an item (else MEETS_STANDARD)


_YES_PLANS: dict[int, dict[str, YesPlan]] = {}


def yes_plans(kb: KnowledgeBase, n_options: int = DEFAULT_OPTIONS) -> dict[str, YesPlan]:
    """Per condition, how often its items and controls offer which "Yes" option, so that
    each "Yes" text is the key about one time in ``n_options`` of the tasks offering it.

    "Yes: X and all other requirements are documented" cites one of the condition's own
    items, so it is offered only in that condition's tasks: with ``c`` controls and ``i``
    items per case (measured on the probe cases, ``key_rates.emitted``) its items offer
    it with probability ``(n - 1) c / i``; where controls are more than ``i / (n - 1)``,
    every item offers it and only that many controls cite an item, the others keying the
    generic MEETS_STANDARD, which the items of all conditions offer in turn (wrong there:
    the note declines a requirement) just often enough to balance it."""
    hit = _YES_PLANS.get(id(kb))
    if hit is not None:
        return hit
    per = emitted(kb, T.STANDARD_OF_CARE)
    cited: dict[str, tuple[float, float]] = {}
    generic_keys = 0.0
    for cid, (items, controls) in per.items():
        share = min(1.0, (n_options - 1) * controls / items) if items else 0.0
        cites = min(1.0, items / ((n_options - 1) * controls)) if controls else 1.0
        cited[cid] = (share, cites)
        generic_keys += controls * (1 - cites)
    room = sum(items * (1 - cited[cid][0]) for cid, (items, _) in per.items())
    generic = min(1.0, (n_options - 1) * generic_keys / room) if room else 0.0
    plans = {cid: YesPlan(share, generic, cites) for cid, (share, cites) in cited.items()}
    if len(_YES_PLANS) > 16:
        _YES_PLANS.clear()
    _YES_PLANS[id(kb)] = plans
    return plans


def _soc_keys(ctx: Ctx, checked: list[CheckedItem]) -> list[CheckedItem]:
    """The verified requirements standard_of_care may have the note decline."""
    # Any verified requirement may be the declined one; the item the renderer left out
    # when it names a test or study (one naming nothing, a score documented, made the
    # declined items of a condition recur).
    end = (ctx.anchor("care") or 1) - 1
    keys = [
        c
        for c in checked
        if _key_reason(c) is None
        and not _in_other_words(ctx, c, end)
        and not _consulted(ctx, c, end)
    ]
    named = [c for c in keys if c.named and c.item.item in ctx.rendered.omitted]
    return _offerable(ctx, named or keys, soc=True)


def _soc_key_texts(ctx: object) -> tuple[list[str], int]:
    assert isinstance(ctx, Ctx)
    got = _care_checked(ctx)
    if got is None:
        return [], 1
    keys = offered_wrong_elsewhere(ctx, _soc_keys(ctx, got[1]), soc=True)
    return [_required(c.item) for c in keys], 1


def _soc_emitted(ctx: object) -> tuple[float, float]:
    """(perturbed items, restraint controls) ``gen_standard_of_care`` emits here."""
    assert isinstance(ctx, Ctx)
    got = _care_checked(ctx)
    if got is None:
        return 0.0, 0.0
    checked = got[1]
    # the control (eligible: ``control_share`` of these carry it) needs no perturbed item
    control = float(ctx.is_control(T.STANDARD_OF_CARE) and all_done(checked))
    verified = _soc_keys(ctx, checked)
    if not verified:
        return 0.0, control
    return float(bool(offered_wrong_elsewhere(ctx, verified, soc=True))), control


register(T.STANDARD_OF_CARE, _soc_key_texts)
register_restraint(T.STANDARD_OF_CARE, _soc_emitted)


def _decoys(ctx: Ctx) -> dict[str, tuple[KBCareItem, str]]:
    """Requirements a note may rightly decline for this patient, as "No: X is required" ->
    (X, why it is declined): the workup of a differential diagnosis (``near_care``; "only
    if deep vein thrombosis is likely"), each checked absent from the record when drawn.
    A conditional requirement of this condition whose condition the record rules out
    (``_clause_decoys``) is added by the caller."""
    assert ctx.cond is not None
    per, _ = near_care(ctx.kb)
    return {
        _required(i): (i, f"only if {_dx_name(name)} is likely") for i, name in per[ctx.cond.id]
    }


def _clause_decoys(checked: list[CheckedItem]) -> dict[str, tuple[CheckedItem, str]]:
    """This condition's conditional requirements whose condition the record rules out and
    which it does not show done ("blood cultures only with systemic toxicity ..." in a
    patient who is not toxic), as "No: X is required" -> (the item, the clause the note
    cites): wrong here, and the key in the cases where the condition holds."""
    return {
        _required(c.item): (c, clause_limit(c.clause))
        for c in checked
        if c.holds is False
        and c.clause is not None
        and c.absent
        and not NEGATIVE.search(c.item.item)
        and not c.clause.lower().startswith(("unless", "where"))
    }


def key_reason(c: CheckedItem, rng: random.Random, beside: Sequence[str] = ()) -> str:
    """The (wrong) reason a note gives for declining the required item ``c``: its own
    clause, which the record shows met, or else one of the differential reasons the note
    gives for its rightly declined items (``beside``: "only if atrial fibrillation is
    likely"), which does not apply to an unconditional requirement of this condition.
    Only a note declining nothing else gets a restriction the guidance does not make
    ("only if not improving"): a reason of a form no decoy had marked the key (round 13,
    59-000163, 59-000212, 59-000391)."""
    if c.clause is not None:
        return clause_limit(c.clause)
    if beside:
        return rng.choice(list(beside))
    return rng.choice(_FALSE_LIMITS)


def gen_standard_of_care(ctx: Ctx) -> Iterator[Draft]:
    """A note declining a required item; the control documents every item.

    The note also declines, each with its reason, requirements this patient rightly goes
    without (a differential's workup, its own clauses the record rules out), so that
    "not done" in the note does not mark the key. The control offers four "No: X is
    required" options and "meets the standard"
    (citing a requirement the note documents, or the generic MEETS_STANDARD); the item
    offers the same on a share of items (``yes_plans``), five "No" options otherwise,
    so that each "Yes" text is the key about one time in five. The wrong "No" options
    are the note's documented requirements, the ones it rightly declines and, offered
    only, other conditions' requirements, drawn with weights solved so that each text is
    offered wrong about four times as often as it is the key (``soc_weights``), so no
    text marks itself as right or wrong. The declined item is verified absent from the
    record and required for this patient; the items the note documents are verified as
    for omission_detection.
    """
    got = _care_checked(ctx)
    if got is None:
        return
    cond = ctx.cond
    assert cond is not None
    end, checked = got
    verified = _soc_keys(ctx, checked)
    for c in checked:
        reason = _key_reason(c)
        if reason is not None:
            ctx.drop(T.STANDARD_OF_CARE, f"candidate {reason}")
        elif _in_other_words(ctx, c, end):
            ctx.drop(T.STANDARD_OF_CARE, f"candidate {IN_OTHER_WORDS}")
        elif _consulted(ctx, c, end):
            ctx.drop(T.STANDARD_OF_CARE, "candidate consultation took place")
    if not verified:
        ctx.drop(T.STANDARD_OF_CARE, "no verified declined item")
        # a record showing every requirement done still carries its control
        if not (ctx.is_control(T.STANDARD_OF_CARE) and all_done(checked)):
            return
    keys = offered_wrong_elsewhere(ctx, verified, soc=True)
    if verified and not keys:
        ctx.drop(T.STANDARD_OF_CARE, "key never offered wrong elsewhere")
    # one question for every item, whether or not it offers a "Yes" option (a yes/no question
    # with only "No: ..." options reads as asked the wrong way)
    question = "Which statement about the management in the note is right?"
    declined = ctx.rng.choice(keys or verified) if verified else None
    decoys = _decoys(ctx)
    own_decoys = {k: v for k, v in _clause_decoys(checked).items() if v[0] is not declined}
    # other conditions' requirements (``foreign_care``): wrong options only when the
    # others run out (they keep each text's key rate even), never declined in the note
    per_foreign, _ = foreign_care(ctx.kb, soc=True)
    foreign = {
        f: (i, "")
        for i in per_foreign[cond.id]
        if (f := _required(i)) not in decoys and f not in own_decoys
    }

    def wrong_no(documented: list[CheckedItem], k: int) -> tuple[list[str], list[str]]:
        """``k`` wrong "No" options and the decoys among them (to be declined).

        Drawn in one weighted order with the weights ``soc_weights`` solves (a documented
        requirement's divided by ``NEAR_BOOST``, another condition's times
        ``FOREIGN_SHARE``), so that over the build each text is offered wrong about four
        times as often as it is the key."""
        weight = soc_weights(ctx.kb)
        rate = {_required(c.as_done): weight.get(c.item.item, 0.0) / NEAR_BOOST for c in documented}
        rate |= {d: weight.get(i.item, 0.0) for d, (i, _) in decoys.items()}
        rate |= {d: weight.get(c.item.item, 0.0) for d, (c, _) in own_decoys.items()}
        rate |= {
            f: FOREIGN_SHARE * weight.get(i.item, 0.0)
            for f, (i, _) in foreign.items()
            if f not in rate
        }
        outside = decoys | foreign
        # in one weighted order (texts never keyed anywhere last); a decoy only if the
        # record shows nothing it names
        order = weighted_sample(ctx.rng, list(rate), list(rate.values()), len(rate))
        idx = ctx.index(turn_end=end)
        picked: list[str] = []
        for p in order:  # (the first k only: a decoy's check reads the whole record)
            if len(picked) >= k:
                break
            # (nor one the record's state requires: no echocardiogram in heart failure)
            if (
                p in own_decoys
                or p not in outside
                or (
                    check_item(outside[p][0], idx).absent
                    and not required_by_state(
                        outside[p][0].item, lambda s: bool(idx.phrase_refs(s, affirmed=True))
                    )
                )
            ):
                picked.append(p)
        # the note declines the differential's workup and the clauses ruled out; another
        # condition's item is only offered (no note declines care foreign to the patient)
        return picked, [
            decline_text(decoys[p][0].item, decoys[p][1])
            if p in decoys
            else decline_text(own_decoys[p][0].item.item, own_decoys[p][1])
            for p in picked
            if p in decoys or p in own_decoys
        ]

    def note_of(done: list[CheckedItem], declined_items: list[str]) -> str:
        ctx.rng.shuffle(declined_items)
        return (
            "Team note: "
            + ("; ".join(distinct_claims(c.done_text for c in done)) + ". " if done else "")
            + (
                f"Not done, not felt necessary: {'; '.join(declined_items)}."
                if declined_items
                else ""
            )
        ).strip()

    plan = yes_plans(ctx.kb).get(cond.id, YesPlan(1.0, 0.0, 1.0))
    if declined is not None:
        item = declined.item
        key = _required(item)
        done = distinct_done(
            [c for c in checked if c is not declined and c.listable and c.holds is not False]
        )
        # "Meets the standard" (citing a documented item, or the generic text) is offered on
        # the share of items that makes each "Yes" text the key about one time in five
        # (``yes_plans``); otherwise a fourth wrong "No" takes its place.
        offer = "cited" if ctx.rng.random() < plan.cited else None
        if offer is None and ctx.rng.random() < plan.generic:
            offer = "generic"
        wrong, declined_decoys = wrong_no(done, 4 if offer is None else 3)
        # the key's reason is one of this note's decoys' reasons. Drawn otherwise it named
        # differentials decoys seldom name: the next decoy's in the same weighted order read
        # 50.0 for the excerpt-context classifier (300 cases, chance 20), a differential
        # drawn uniformly 63.7; copied, 34.1 (about the one in three declined items of a note)
        beside = [decoys[p][1] for p in wrong if p in decoys]
        why = key_reason(declined, ctx.rng, beside)
        # The note leaves the requirement out instead of declining it with the probability
        # that balances the two: the share of the wrong "No" options the note does not
        # mention (other conditions' requirements). With q that share, a key declined
        # (1 - q) is one of the K + 1 declined options as often as a key left out (q) is one
        # of the A not mentioned: (1 - q) / (K + 1 - q) = q / (A + q) gives q = A / (A + K).
        # Declined on every item, the key was always a declined option, and the options the
        # note does not mention were ruled out by that alone (excerpt-context classifier 40.1
        # on the 6,876-case build, chance 20; 36.7 with a fixed quarter left out, as notes
        # with few declined items made each of them likelier the key). A key with no
        # differential reason to borrow (no decoy declined: q = 1) is left out: a restriction
        # of the form no decoy has ("only if not improving") marked it (round 13).
        mentioned = set(decoys) | set(own_decoys) | {_required(c.as_done) for c in done}
        unmentioned = [p for p in wrong if p not in mentioned]
        share = len(unmentioned) / len(wrong) if wrong else 0.0
        omitted = bool(done or declined_decoys) and (
            ctx.rng.random() < share or (declined.clause is None and not beside)
        )
        note = note_of(
            done,
            list(declined_decoys) if omitted else [decline_text(item.item, why), *declined_decoys],
        )
        meets: list[str] = []
        if offer == "cited" and done:
            score = score_in(shown_words(ctx, 0, end, note), question)
            cite = [meets_standard(c.as_done) for c in done]
            meets = [pick_at_even_rank(cite, [key, *wrong], ctx.rng, score)]
        elif offer is not None:
            meets = [MEETS_STANDARD]
        main = Draft(
            task_type=T.STANDARD_OF_CARE,
            key="s0",
            question=question,
            correct=key,
            pool=wrong,
            fixed=meets,
            rationale=f"{item.source} requires {item.item} in {cond.name}; the note "
            f"{'leaves it out' if omitted else 'declines it'} and the record does not show it. "
            "The other requirements offered are documented in "
            "the note, or rightly declined for this patient (their condition is not met here, or "
            "they belong to a differential diagnosis judged unlikely).",
            turn_start=0,
            turn_end=end,
            excerpt=note,
            perturbation=Perturbation(
                kind=PerturbationKind.DEVIATION,
                location="context.excerpt",
                original=item.item,
                modified=None if omitted else f"Not done, not felt necessary: {item.item}",
                description=f"Deviation from {item.source}"
                + (": left out of the note." if omitted else "."),
            ),
        )
        if keys:
            yield main
    if ctx.is_control(T.STANDARD_OF_CARE):
        required = [c for c in checked if c.holds is not False]
        if not all_done(checked):
            ctx.drop(T.STANDARD_OF_CARE, "control: a required item is not in the record")
            return
        if not ctx.keeps_control(T.STANDARD_OF_CARE, control_share(ctx.kb, T.STANDARD_OF_CARE)):
            return
        # false alarms: requirements the note documents and ones it rightly declines; the
        # same templates as the item (four "No", one "Yes")
        alarms, declined_c = wrong_no(required, 4)
        if declined_c:
            note_c = note_of(required, declined_c)
        else:
            note_c = "Team note: " + "; ".join(distinct_claims(c.done_text for c in required)) + "."
        score_c = score_in(shown_words(ctx, 0, end, note_c), question)
        frame = Draft(
            task_type=T.STANDARD_OF_CARE,
            key="s0",
            question=question,
            correct="",
            pool=[],
            rationale="",
            turn_start=0,
            turn_end=end,
        )
        yield control_of(
            frame,
            key="sc",
            correct=pick_at_even_rank(
                [meets_standard(c.as_done) for c in required], alarms, ctx.rng, score_c
            )
            if ctx.rng.random() < plan.control_cites
            else MEETS_STANDARD,
            pool=alarms,
            rationale=f"All items the guidance requires for {cond.name} are documented"
            + ("; the ones the note declines do not apply to this patient." if declined_c else "."),
            excerpt=note_c,
        )
