"""Normal examination results a record documents beside a condition's own findings.

A clinician examines more than the signs of the illness: the pulse, the chest, the
abdomen, a neurological screen. For the conditions with an examination-report conflict
pair (``kb/conflicts.yaml``) a synthetic examination documents three such normal results
(``alongside``), drawn from the signs the file lists for the condition: signs that are
plausible beside its own findings and that neither its report nor the contradicting
report bears on. interpretation_conflict names these signs in its wrong options
(``build/tasks/conflicts.py``), so every option names a sign the examination documents.

Each sign is drawn with weight ``1 / (number of conditions listing it)``, so that the
signs that are a key on their own condition's items are documented elsewhere about
equally often. The draw has a random stream of its own: the rest of the case is the
same as without it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import yaml

from behaviorsft.sources.kb import default_kb_root

CONFLICTS_FILE = "conflicts.yaml"
# Normal results documented per examination.
ALONGSIDE = 3


@lru_cache(maxsize=1)
def _read() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    path = default_kb_root() / CONFLICTS_FILE
    with path.open("r", encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    normal = {str(k): str(v) for k, v in (doc.get("normal_results") or {}).items()}
    alongside = {
        str(cid): tuple(str(s) for s in (entry or {}).get("alongside") or [])
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
    return normal, alongside


def normal_results() -> dict[str, str]:
    """Sign -> its normal result as a record documents it."""
    return _read()[0]


def alongside_signs(cond_id: str) -> tuple[str, ...]:
    """The signs whose normal result an examination of ``cond_id`` may document."""
    return _read()[1].get(cond_id, ())


@lru_cache(maxsize=1)
def _hosts() -> Counter[str]:
    return Counter(s for signs in _read()[1].values() for s in signs)


def sign_of(finding: str) -> str | None:
    """The sign whose normal result ``finding`` is, or None."""
    for sign, text in normal_results().items():
        if text == finding:
            return sign
    return None


def alongside_findings(
    cond_id: str, exam: Sequence[str], history: Sequence[str], seed: int, index: int
) -> list[str]:
    """The normal results case ``index`` of ``seed`` documents beside ``exam`` (empty for a
    condition without a conflict pair): ``ALONGSIDE`` signs of the condition's list, drawn
    with weight 1 / hosts, leaving out a regular pulse in a patient with atrial
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
    hosts = _hosts()
    keyed = sorted(
        ((rng.random() ** hosts[s], s) for s in signs), reverse=True
    )  # Efraimidis-Spirakis: key u ** (1 / w) with w = 1 / hosts
    return [normal[s] for _, s in keyed[:ALONGSIDE]]
