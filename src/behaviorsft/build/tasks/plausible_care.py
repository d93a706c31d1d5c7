"""Which other conditions' requirements a note may plausibly decline for a patient.

``omissions.foreign_care`` offers, as requirements a note rightly declines, items of
other conditions that this patient plainly does not need. Drawn from any condition of
another body system, they read as absurd ("serum tryptase" or "interdigital toe spaces
examined" in a COPD note, "NIHSS" in a bowel obstruction): a reader drops them without
reasoning, and the note's real omission stands out. Here an item is plausible for a
condition when

- it is a test (a lab or a diagnostic study), not another disease's score, plan,
  precaution or discharge step;
- its text names no other disease ("HIV test for all patients with TB") and no
  treatment step ("before starting insulin", "before discharge");
- its own condition presents like this one: a presenting symptom of that condition
  (one with frequency of at least ``DEFINING``) falls in the same group (breathing,
  chest pain, abdomen, neurology, urine, skin, limb) as a common symptom of this one
  (frequency at least ``COMMON``). Fever alone links nothing: most infections share it.

Where fewer than ``MIN_POOL`` items pass, the pool is topped up with the remaining tests
that name no other disease, that several conditions measure and that name no other
presentation, then with the rest, so every condition keeps decoys (a note that declines
only the missing item would mark it). Last, every candidate item that no pool holds yet
joins the pools of the conditions that present most like its own (at most ``COVER``):
a key text never offered as a wrong option would mark itself, so each item must stay
offered somewhere, and there it reads as least out of place.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

from behaviorsft.sources.kb import CareItem as KBCareItem
from behaviorsft.sources.kb import Condition

DEFINING = 0.7
COMMON = 0.4
MIN_POOL = 12
COVER = 3

_GROUPS: dict[str, re.Pattern[str]] = {
    k: re.compile(p, re.I)
    for k, p in {
        "breathing": r"breath|dyspnoea|wheeze|cough|sputum|tightness|orthopnoea",
        "chest": r"chest (?:pain|pressure)|central chest|palpitation",
        "abdomen": r"abdom|epigastr|quadrant|vomit|nausea|diarrh|stool|bowel|melaena|"
        r"haematemesis|distension|flatus|coffee|rectum",
        "neurology": r"confus|drows|conscious|headache|speech|facial|numbness|seizure|"
        r"behaviour|disorient|tremor|agitation|hallucinat|delirium",
        "urine": r"dysuria|urinary|flank|urine",
        "skin": r"hives|itch|rash|flush|\blip\b|tongue",
        "limb": r"calf|\bleg\b|joint|redness|warmth|\btoe",
    }.items()
}
# words that tie an item to another disease or to a treatment step
_BOUND = re.compile(
    r"\b(TB|tuberculosis|HIV|DVT|CDI|C\. difficile|stroke|asthma|COPD|pancreatitis|"
    r"withdrawal|ketonaemia|DKA|HHS|thrombolysis|alteplase|insulin|discharge|"
    r"hypertonic|door-to|score|grade|treatment|isolate|first diagnosis)\b",
    re.I,
)


def groups(cond: Condition, at_least: float) -> set[str]:
    """The presentation groups of ``cond``'s symptoms with frequency >= ``at_least``."""
    return {
        g
        for s in cond.symptoms
        if s.frequency >= at_least
        for g, pat in _GROUPS.items()
        if pat.search(s.name)
    }


def is_test(item: KBCareItem) -> bool:
    """A lab or diagnostic study tied to no other disease or treatment step."""
    return item.kind in ("lab", "diagnostic") and not _BOUND.search(item.item)


def _common(item: KBCareItem, measured: Counter[str]) -> bool:
    return item.ref is None or measured[item.ref] >= 3


def plausible_pool(
    cond: Condition,
    pool: Sequence[tuple[Condition, KBCareItem]],
    measured: Counter[str],
) -> list[KBCareItem]:
    """``pool`` (other conditions' items, each with its condition) ordered and cut to
    those plausible for ``cond``'s presentation, topped up to ``MIN_POOL``.

    ``measured``: lab id -> how many conditions list it among their labs."""
    mine = groups(cond, COMMON)
    first = [i for c, i in pool if is_test(i) and groups(c, DEFINING) & mine]
    if len(first) >= MIN_POOL:
        return first
    # a top-up names a test several conditions measure, not another disease's marker
    # ("serum tryptase" is anaphylaxis's alone) and names no other presentation ("BNP ...
    # dyspnoea", "right upper quadrant ultrasound")
    tests = [
        i
        for _, i in pool
        if is_test(i)
        and i not in first
        and _common(i, measured)
        and not any(p.search(i.item) for g, p in _GROUPS.items() if g not in mine)
    ]
    out = first + tests[: MIN_POOL - len(first)]
    if len(out) >= MIN_POOL:
        return out
    rest = [i for _, i in pool if i not in out]
    return out + rest[: MIN_POOL - len(out)]


def plausible_pools(
    conds: Mapping[str, Condition],
    candidates: Mapping[str, Sequence[tuple[Condition, KBCareItem]]],
) -> dict[str, list[KBCareItem]]:
    """Per condition id, its pool of other conditions' items (``plausible_pool``), with
    every candidate item held by at least one pool (those of the ``COVER`` conditions
    whose presentation groups overlap its own condition's most)."""
    measured = Counter(lab for c in conds.values() for lab in c.labs)
    per = {cid: plausible_pool(conds[cid], pool, measured) for cid, pool in candidates.items()}
    held = {i.item for pool in per.values() for i in pool}
    common = {cid: groups(c, COMMON) for cid, c in conds.items()}
    order = list(candidates)
    for cid in order:
        for owner, item in candidates[cid]:
            if item.item in held:
                continue
            where = [c for c in order if any(i is item for _, i in candidates[c])]
            mine = common[owner.id]
            ranked = sorted(where, key=lambda c: (-len(common[c] & mine), order.index(c)))
            for c in ranked[:COVER]:
                per[c].append(item)
            held.add(item.item)
    return per
