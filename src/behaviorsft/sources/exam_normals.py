"""Normal examination results a record documents beside a condition's own findings.

A clinician examines more than the signs of the illness: the pulse, the chest, the
abdomen, a neurological screen. For the conditions with an examination-report conflict
pair (``kb/conflicts.yaml``) a synthetic examination documents four such normal results
(``alongside``), drawn from the signs the file lists for the condition: signs that are
plausible beside its own findings and that neither its report nor the contradicting
report bears on. interpretation_conflict names these signs in its wrong options
(``build/tasks/conflicts.py``), so every option names a sign the examination documents.

Each sign is drawn with weight (how often it is a key on its own condition's items) /
(number of conditions listing it), so that every sign is documented elsewhere about as
often as it is a key. The draw has a random stream of its own: the rest of the case is the
same as without it.

The examination stays focused (``kb/exam.yaml``): each sign belongs to a region of the
examination (the pulse is the general line; the heart, chest, abdomen, neurological
examination, volume status), a condition's ``alongside`` signs come only from the regions
its own findings and its differential diagnoses call for (``focused``), and an examination
documents at most one general normal result and two of any other region. Every
examination also documents one of its condition's cardinal findings (``cardinal``: the
warm erythema of a cellulitis, the distended abdomen of an obstruction), put in by
``with_cardinal`` when the drawn findings have none. ``unfocused`` and ``cardinal_missing``
are the linter's checks of a record (``build/lint_text.py``).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from functools import lru_cache

import yaml

from behaviorsft.sources.kb import KnowledgeBase, default_kb_root
from behaviorsft.sources.wording import observed

CONFLICTS_FILE = "conflicts.yaml"
EXAM_FILE = "exam.yaml"
# Normal results documented per examination (interpretation_conflict names three, by key rate).
ALONGSIDE = 4
# The region of the examination's short general line, and the most normal results an
# examination documents from it, from the condition's own (first focused) region and from
# any other region.
GENERAL = "general"
PER_GENERAL = 1
PER_OWN_REGION = 3
PER_OTHER_REGION = 2


@lru_cache(maxsize=1)
def _read() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    return _read_file()[:2]


@lru_cache(maxsize=1)
def _read_file() -> tuple[dict[str, str], dict[str, tuple[str, ...]], dict[str, list[str]]]:
    path = default_kb_root() / CONFLICTS_FILE
    with path.open("r", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    normal = {str(k): str(v) for k, v in (doc.get("normal_results") or {}).items()}
    alongside = {
        str(cid): tuple(str(s) for s in (entry or {}).get("alongside") or [])
        for cid, entry in (doc.get("conflicts") or {}).items()
    }
    keys = {
        str(cid): [str(x) for x in (entry or {}).get("signs") or []]
        for cid, entry in (doc.get("conflicts") or {}).items()
    }
    problems = [
        f"{CONFLICTS_FILE}: {cid}: alongside: {s!r} is not in normal_results"
        for cid, signs in alongside.items()
        for s in signs
        if s not in normal
    ]
    if problems:
        raise ValueError("\n".join(problems))
    return normal, alongside, keys


def _groups(entry: object) -> tuple[tuple[str, ...], ...]:
    """A ``cardinal`` entry as groups: a flat list is one group (any one of its findings),
    a list of lists several."""
    items = list(entry) if isinstance(entry, list) else []
    if items and all(isinstance(g, list) for g in items):
        return tuple(tuple(str(f) for f in g) for g in items)
    return (tuple(str(f) for f in items),)


@lru_cache(maxsize=1)
def _read_exam() -> tuple[
    dict[str, str], dict[str, tuple[str, ...]], dict[str, tuple[tuple[str, ...], ...]]
]:
    """(sign -> region, condition -> focused regions, condition -> cardinal findings),
    checked against ``conflicts.yaml``: every sign has a region and every ``alongside``
    sign's region is general or one its condition's examination focuses on."""
    path = default_kb_root() / EXAM_FILE
    with path.open("r", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    regions = {str(k): str(v) for k, v in (doc.get("regions") or {}).items()}
    focused = {
        str(cid): tuple(str(r) for r in rs or []) for cid, rs in (doc.get("focused") or {}).items()
    }
    cardinal = {str(cid): _groups(entry) for cid, entry in (doc.get("cardinal") or {}).items()}
    normal, alongside = _read()
    problems = [f"{EXAM_FILE}: regions: {s!r} has none" for s in normal if s not in regions]
    for cid, signs in alongside.items():
        allowed = {*focused.get(cid, ()), GENERAL}
        problems += [
            f"{CONFLICTS_FILE}: {cid}: alongside: {s!r} ({regions.get(s)}) is outside the "
            f"focused examination ({EXAM_FILE}: focused: {', '.join(sorted(allowed))})"
            for s in signs
            if regions.get(s) not in allowed
        ]
    if problems:
        raise ValueError("\n".join(problems))
    return regions, focused, cardinal


def region(sign: str) -> str | None:
    """The region of the examination ``sign`` belongs to (``kb/exam.yaml``)."""
    return _read_exam()[0].get(sign)


def focused_regions(cond_id: str) -> frozenset[str]:
    """The regions a focused examination of ``cond_id`` covers, the general line included."""
    return frozenset({*_read_exam()[1].get(cond_id, ()), GENERAL})


def cardinal_groups(kb: KnowledgeBase, cond_id: str) -> list[list[str]]:
    """The cardinal findings of ``cond_id`` as a record documents them: groups, each of
    which the examination documents one of (empty: none)."""
    cond = kb.conditions.get(cond_id)
    raw = _read_exam()[2].get(cond_id, ())
    if cond is None or not raw:
        return []
    missing = [f for group in raw for f in group if f not in cond.exam]
    if missing:
        raise ValueError(f"{EXAM_FILE}: cardinal: {cond_id}: {missing!r} not in its exam")
    return [[x for f in group if (x := observed(f)) is not None] for group in raw]


def cardinal_findings(kb: KnowledgeBase, cond_id: str) -> list[str]:
    """Every cardinal finding of ``cond_id`` as a record documents it (empty: none)."""
    return [f for group in cardinal_groups(kb, cond_id) for f in group]


def with_cardinal(
    kb: KnowledgeBase, cond_id: str, exam: Sequence[str], allowed: Sequence[str], key: str
) -> list[str]:
    """``exam`` with one finding of each cardinal group it has none of, first: one
    ``allowed`` (the vitals do not contradict it), drawn on a stream of its own (``key``),
    in place of the last drawn finding that is not cardinal (added beside cardinal ones),
    so the examination keeps its size."""
    rng = random.Random(f"behaviorsft-exam-cardinal:{key}")
    every = set(cardinal_findings(kb, cond_id))
    out = list(exam)
    put = 0
    for group in cardinal_groups(kb, cond_id):
        cards = [c for c in group if c in allowed]
        if not cards or any(e in cards for e in out):
            continue
        others = [i for i, e in enumerate(out) if e not in every]
        if len(out) > 1 and others:
            del out[others[-1]]
        out.insert(put, rng.choice(cards))
        put += 1
    return out


def cardinal_missing(kb: KnowledgeBase, cond_id: str, exam: Sequence[str]) -> list[str]:
    """The findings of the first cardinal group the documented ``exam`` has none of
    (empty: every group is documented, or the condition names none)."""
    if not exam:
        return []
    for group in cardinal_groups(kb, cond_id):
        if not any(e in group for e in exam):
            return group
    return []


_BY_TEXT: dict[str, str] = {}


def unfocused(kb: KnowledgeBase, cond_id: str, exam: Sequence[str]) -> list[tuple[str, str]]:
    """(finding, region) for each normal result in ``exam`` (a ``normal_results`` text
    that is not one of the condition's own findings) from a region a focused examination
    of ``cond_id`` does not cover: "no generalised peritonitis" beside atrial
    fibrillation."""
    if not _BY_TEXT:
        _BY_TEXT.update({v: k for k, v in normal_results().items()})
    cond = kb.conditions.get(cond_id)
    own = {observed(e) for e in cond.exam} if cond is not None else set()
    allowed = focused_regions(cond_id)
    out = []
    for e in exam:
        sign = _BY_TEXT.get(e)
        if sign is None or e in own:
            continue
        where = region(sign)
        if where not in allowed:
            out.append((e, str(where)))
    return out


def normal_results() -> dict[str, str]:
    """Sign -> its normal result as a record documents it."""
    return _read()[0]


def alongside_signs(cond_id: str) -> tuple[str, ...]:
    """The signs whose normal result an examination of ``cond_id`` may document."""
    return _read()[1].get(cond_id, ())


_WEIGHTS: dict[int, dict[str, float]] = {}


def _weights(kb: KnowledgeBase) -> dict[str, float]:
    """Per sign, how often it is the key on its own condition's items (about the chance
    that a case of the condition documents its finding: two of the condition's documented
    examination findings are drawn) over the number of conditions that may document it as
    a normal result: drawn in proportion, every sign is a wrong option about as often as
    it is a key."""
    hit = _WEIGHTS.get(id(kb))
    if hit is not None:
        return hit
    _, alongside, keys = _read_file()
    hosts = Counter(s for signs in alongside.values() for s in signs)
    share: dict[str, float] = {}
    for cid, signs in keys.items():
        cond = kb.conditions.get(cid)
        if cond is None:
            continue
        n = sum(observed(e) is not None for e in cond.exam)
        for s, e in zip(signs, _key_findings().get(cid, []), strict=False):
            share[s] = share.get(s, 0.0) + _documented_share(kb, cid, n, observed(e)) / len(signs)
    out = {s: max(share.get(s, 0.0), 0.1) / hosts[s] for s in hosts}
    _WEIGHTS[id(kb)] = out
    return out


@lru_cache(maxsize=1)
def _key_findings() -> dict[str, list[str]]:
    """Per condition, the examination findings (KB wording) its report contradicts."""
    path = default_kb_root() / CONFLICTS_FILE
    with path.open("r", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    return {
        str(cid): [str(x) for x in (entry or {}).get("exam") or []]
        for cid, entry in (doc.get("conflicts") or {}).items()
    }


def _documented_share(kb: KnowledgeBase, cond_id: str, n: int, finding: str | None) -> float:
    """About the chance that a case of ``cond_id`` documents ``finding``: two of its ``n``
    documented findings are drawn, then a cardinal one put first in place of the last
    drawn when neither is cardinal (``with_cardinal``)."""
    if finding is None or n < 1:
        return 0.0
    drawn = min(1.0, 2 / n)
    cards = cardinal_findings(kb, cond_id)
    c = len(cards)
    if not c or n <= 2:
        return drawn
    if finding in cards:  # drawn, or put in when no cardinal finding was drawn
        none_drawn = (n - c) * (n - c - 1) / (n * (n - 1))
        return min(1.0, drawn + none_drawn / c)
    # kept beside a drawn cardinal finding, or as the first of two others
    return drawn * (c / (n - 1) + (n - 1 - c) / (n - 1) / 2)


def alongside_findings(
    kb: KnowledgeBase,
    cond_id: str,
    exam: Sequence[str],
    history: Sequence[str],
    seed: int,
    index: int,
    *,
    fluid_losses: bool = False,
) -> list[str]:
    """The normal results case ``index`` of ``seed`` documents beside ``exam`` (empty for a
    condition without a conflict pair): up to ``ALONGSIDE`` signs of the condition's list,
    drawn with the weights of ``_weights``, at most one of the general line, three of the
    condition's own region and two of any other (a focused examination), leaving out a
    regular pulse in a patient with atrial fibrillation in the history, any sign the
    examination already documents and generalised peritonitis where it records the
    peritonism already."""
    normal = normal_results()
    said = " ".join([*exam, *history]).lower()
    signs = [
        s
        for s in alongside_signs(cond_id)
        if normal[s] not in exam
        and s.lower() not in said
        and not (s == "pulse" and ("atrial fibrillation" in said or "pulse" in said))
        and not (s == "peritonitis" and "peritonism" in said)
        # no "clinically euvolaemic (moist mucosa)" after days of vomiting or diarrhoea
        and not (s == "clinically euvolaemic" and fluid_losses)
    ]
    if not signs:
        return []
    rng = random.Random(f"behaviorsft-exam-normals:{seed}:{index}")
    weight = _weights(kb)
    # Efraimidis-Spirakis: key u ** (1 / w)
    keyed = sorted(((rng.random() ** (1 / weight[s]), s) for s in signs), reverse=True)
    taken: defaultdict[str | None, int] = defaultdict(int)
    own = _read_exam()[1].get(cond_id, ())[:1]
    out = []
    for _, s in keyed:
        where = region(s)
        most = (
            PER_GENERAL
            if where == GENERAL
            else PER_OWN_REGION
            if where in own
            else PER_OTHER_REGION
        )
        if taken[where] >= most:
            continue
        taken[where] += 1
        out.append(normal[s])
        if len(out) == ALONGSIDE:
            break
    return out
