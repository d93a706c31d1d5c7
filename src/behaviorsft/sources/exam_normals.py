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
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import yaml

from behaviorsft.sources.kb import KnowledgeBase, default_kb_root
from behaviorsft.sources.wording import observed

CONFLICTS_FILE = "conflicts.yaml"
# Normal results documented per examination (interpretation_conflict names three, by key rate).
ALONGSIDE = 4


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
        for s in signs:
            share[s] = share.get(s, 0.0) + min(1.0, 2 / max(n, 1)) / len(signs)
    out = {s: max(share.get(s, 0.0), 0.1) / hosts[s] for s in hosts}
    _WEIGHTS[id(kb)] = out
    return out


def alongside_findings(
    kb: KnowledgeBase,
    cond_id: str,
    exam: Sequence[str],
    history: Sequence[str],
    seed: int,
    index: int,
) -> list[str]:
    """The normal results case ``index`` of ``seed`` documents beside ``exam`` (empty for a
    condition without a conflict pair): ``ALONGSIDE`` signs of the condition's list, drawn
    with the weights of ``_weights``, leaving out a regular pulse in a patient with atrial
    fibrillation in the history and any sign the examination already documents."""
    normal = normal_results()
    said = " ".join([*exam, *history]).lower()
    signs = [
        s
        for s in alongside_signs(cond_id)
        if normal[s] not in exam
        and s.lower() not in said
        and not (s == "pulse" and ("atrial fibrillation" in said or "pulse" in said))
    ]
    if not signs:
        return []
    rng = random.Random(f"behaviorsft-exam-normals:{seed}:{index}")
    weight = _weights(kb)
    # Efraimidis-Spirakis: key u ** (1 / w)
    keyed = sorted(((rng.random() ** (1 / weight[s]), s) for s in signs), reverse=True)
    return [normal[s] for _, s in keyed[:ALONGSIDE]]
