"""Clinical linter, one patient: a record's parts that do not fit the patient it describes.

Rules (called from ``lint.py``; see docs/building.md, "The patient is one person"; the
generator's side is ``sources/patient.py``):

``sex-other-organ``        a turn names an organ or state of the other sex ("prostatic
                           enlargement" in a woman's record, "pregnancy" in a man's)
``ecg-rate-mismatch``      an ECG read as "sinus rhythm" while the triage heart rate is above
                           100/min (sinus tachycardia) or below 60/min (sinus bradycardia)
``reference-unclinical``   the triage table's systolic reference tops out below 130 mmHg, so
                           that ordinary pressures read as abnormal
``hypoxaemia-no-oxygen``   a triage saturation below 92% on air and no turn giving oxygen
                           (a plan to "titrate oxygen" is not oxygen given)
``weight-unrecorded``      a dose per kilogram (30 mL/kg, 5 mg/kg) in a record with no weight
``isolation-late``         a plan isolating against airborne spread (suspected TB) while the
                           patient was not separated at triage
``household-homeless``     a homeless patient speaking of "someone I live with"
``consultant-unfit``       a consultant of the condition's system where another specialty
                           reviews it (a cardiologist for a leg DVT)
``home-med-barred``        a regular medicine a disease in the history rules out (an ACE
                           inhibitor with ascites, an NSAID with cirrhosis or heart failure)
``heart-failure-untreated`` known heart failure with neither a beta-blocker nor a loop
                           diuretic among the regular medicines (and none held or replaced)
``advice-premise-unmet``   advice presupposing a state the day-0 values do not show
                           ("escalate to NIV if acidosis persists" with pH 7.37)
``pmh-not-condition``      the answer to "any medical conditions?" holds no past condition
                           (a symptom "recurrent vomiting", "several pregnancies", a
                           "long-term intravascular catheter"; sources/history.py kinds)
``history-contradiction``  the history contradicts itself: "No, that's about it" to other
                           symptoms and a symptom in the history, or beside a swollen tongue
                           the relative sees; "a lot of laxatives" and "nothing regularly";
                           a known infection the plan tests for (known H. pylori)
``home-med-missing``       a known condition without its maintenance drug (primary adrenal
                           insufficiency without fludrocortisone, hyperthyroidism without a
                           thionamide: history.py ``MAINTENANCE``)
``allergy-reaction-class`` a drug allergy's reaction its class does not cause (ACE inhibitors:
                           angioedema, not anaphylaxis or hives)

Only records of a KB condition (synthetic cases) are checked.
"""

from __future__ import annotations

import re
from typing import Any

from behaviorsft.build.lint_common import LAY_ROLES as _LAY
from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.build.lint_common import num as _num
from behaviorsft.build.lint_record import kb_condition
from behaviorsft.sources import collateral
from behaviorsft.sources.history import (
    contradictions,
    maintenance_missing,
    pmh_misfiled,
    reaction_misfits,
)
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.patient import (
    AIRBORNE,
    BRADYCARDIA,
    CONDITION_SPECIALTY,
    HOMELESS,
    OXYGEN_BELOW,
    OXYGEN_SAID,
    SINUS_RHYTHM,
    TACHYCARDIA,
    history_bars,
    other_sex_term,
    premise_unmet,
)

RULES: dict[str, tuple[str, str]] = {
    "sex-other-organ": ("error", "a turn names an organ or state of the other sex"),
    "ecg-rate-mismatch": ("error", "'sinus rhythm' at a triage heart rate above 100 or below 60"),
    "reference-unclinical": ("error", "a triage systolic reference range topping out below 130"),
    "hypoxaemia-no-oxygen": ("error", "triage SpO2 below 92% and no oxygen given"),
    "weight-unrecorded": ("error", "a dose per kilogram with no weight recorded"),
    "isolation-late": ("error", "airborne isolation planned, the patient not separated at triage"),
    "household-homeless": ("error", "a homeless patient speaks of someone they live with"),
    "consultant-unfit": ("error", "a consultant of a specialty that does not review the condition"),
    "home-med-barred": ("error", "a regular medicine a disease in the history rules out"),
    "heart-failure-untreated": (
        "error",
        "known heart failure with neither a beta-blocker nor a loop diuretic at home",
    ),
    "advice-premise-unmet": ("error", "advice presupposing a state the day-0 values do not show"),
    "pmh-not-condition": ("error", "a past-medical-history answer holds no past condition"),
    "history-contradiction": ("error", "the history contradicts itself"),
    "home-med-missing": ("error", "a known condition without its maintenance drug"),
    "allergy-reaction-class": ("error", "an allergy's reaction its drug class does not cause"),
}

_PER_KG = re.compile(r"\b\d+(?:\.\d+)?\s*(?:mg|mL|g|mcg|units?)/kg\b(?!/h)", re.I)
_WEIGHT = re.compile(r"\bweigh(?:t|s|ing)\b[^.;]{0,20}?\b\d+(?:\.\d+)? ?kg\b", re.I)
_SEPARATED = re.compile(r"\bside room\b|\bisolat(?:ion|ed)\b|\bmask\b", re.I)
_LIVE_WITH = re.compile(r"\bsomeone (?:I|he|she) lives? with\b|\b(?:my|his|her) household\b", re.I)
_HEART_FAILURE = re.compile(r"\bheart failure\b|\bHFrEF\b|\bCHF\b", re.I)
_BETA = re.compile(r"beta-blocker|beta1|beta-1", re.I)
_LOOP = re.compile(r"loop diuretic", re.I)
_ECG = re.compile(r"\bECG\b|electrocardiogra", re.I)
# Substrings the other-sex patterns need (a cheap test of the whole record first).
_OTHER_SEX_WORDS = {
    "female": ("prostat", "testi", "scrot", "epididym"),
    "male": (
        "ovar",
        "uter",
        "vagin",
        "cervical motion",
        "pelvic infl",
        "pregnan",
        "menstru",
        "multiparity",
        "postpartum",
    ),
}
_NIV_STARTED = re.compile(r"\bon NIV\b|NIV started|ventilation started", re.I)
_DOCUMENTED = re.compile(r"^(?:Documented|Done and recorded):", re.I)
_PMH_QUESTION = re.compile(r"medical conditions\b|past medical history\b", re.I)


def _triage(turns: list[dict[str, Any]]) -> tuple[int | None, dict[str, tuple[float, str]]]:
    """The triage observations turn and its rows (name, lower case -> value, reference)."""
    for i, t in enumerate(turns):
        for a in t.get("attachments") or []:
            if str(a.get("title", "")).lower().startswith("triage observations"):
                rows = {}
                for r in a.get("rows") or []:
                    v = _num(r[1]) if len(r) > 1 else None
                    if v is not None:
                        rows[str(r[0]).lower()] = (v, str(r[3]) if len(r) > 3 else "")
                return int(t.get("index", i)), rows
    return None, {}


def lint_conversation(
    kb: KnowledgeBase, where: _Adds, conv: dict[str, Any], case: dict[str, Any] | None
) -> None:
    """The turns of one synthetic conversation, against the patient its case describes."""
    cond = kb_condition(kb, case)
    if cond is None or case is None:
        return
    turns = conv.get("turns") or []
    texts = [(int(t.get("index", i)), str(t.get("text", ""))) for i, t in enumerate(turns)]
    roles = [str(t.get("role", "")).lower() for t in turns]
    sex = (case.get("demographics") or {}).get("sex")
    history = [
        str(f)[len("History: ") :]
        for f in case.get("facts") or []
        if str(f).startswith("History: ")
    ]
    at, vitals = _triage(turns)
    day0 = {
        str(f.get("name", "")).lower(): v
        for f in case.get("findings") or []
        if f.get("day") == 0 and (v := _num(f.get("value"))) is not None
    }

    # one search of the whole record first; the turns only where it finds something
    said = "\n".join(t for _, t in texts)
    lower = said.lower()
    if any(w in lower for w in _OTHER_SEX_WORDS.get(sex or "", ())):
        for idx, text in texts:
            term = other_sex_term(text, sex)
            if term is not None:
                where.add("sex-other-organ", f"'{term}' in a {sex} patient's record", idx)
    if "acidosis persists" in lower:
        for idx, text in texts:
            why = premise_unmet(text, day0)
            if why is not None and not _NIV_STARTED.search(text):
                where.add("advice-premise-unmet", why, idx)

    hr = vitals.get("heart rate", (None, ""))[0]
    if hr is not None and not BRADYCARDIA <= hr <= TACHYCARDIA:
        for idx, text in texts:
            if _ECG.search(text) and SINUS_RHYTHM.search(text):
                where.add("ecg-rate-mismatch", f"'sinus rhythm' at a heart rate of {hr:g}", idx)
    sbp_ref = vitals.get("systolic blood pressure", (None, ""))[1]
    m = re.match(r"\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)", sbp_ref)
    if m is not None and float(m[2]) < 130:
        where.add("reference-unclinical", f"systolic reference {sbp_ref} mmHg", at)

    spo2 = vitals.get("oxygen saturation (pulse oximetry)", (None, ""))[0]
    if (
        spo2 is not None
        and spo2 < OXYGEN_BELOW
        and not any(OXYGEN_SAID.search(t) for _, t in texts)
    ):
        # the record's own omission (an oxygen item left out for an omission task) excepted
        documented = " ".join(t for _, t in texts if _DOCUMENTED.match(t)).lower()
        left_out = any(
            "oxygen" in c.item.lower() and c.item.lower() not in documented
            for c in cond.standard_of_care
        )
        if not left_out:
            where.add("hypoxaemia-no-oxygen", f"SpO2 {spo2:g}% at triage, no oxygen given", at)

    per_kg = (
        next(((i, m[0]) for i, t in texts if (m := _PER_KG.search(t))), None)
        if "/kg" in said
        else None
    )
    if per_kg is not None and not _WEIGHT.search(said):
        where.add("weight-unrecorded", f"'{per_kg[1]}' with no weight recorded", per_kg[0])

    planned = (
        next((i for i, t in texts if AIRBORNE.search(t)), None)
        if "airborne isolation" in lower
        else None
    )
    if planned is not None and not any(
        "triage" in r and _SEPARATED.search(t) for r, (_, t) in zip(roles, texts, strict=True)
    ):
        where.add("isolation-late", "airborne isolation planned; not separated at triage", planned)

    if any(HOMELESS.search(h) for h in history):
        for idx, text in texts:
            if _LIVE_WITH.search(text):
                where.add("household-homeless", f"'{_LIVE_WITH.search(text)[0]}'", idx)  # type: ignore[index]

    wanted = CONDITION_SPECIALTY.get(cond.id)
    if wanted is not None:
        for (idx, _), role in zip(texts, roles, strict=True):
            if role.endswith("consultant") and wanted not in role and "surg" not in role:
                where.add("consultant-unfit", f"a {role} reviews {cond.name.lower()}", idx)

    home = [m for m in case.get("medications") or [] if m.get("indication") != cond.name]
    for m in home:
        hit = history_bars(str(m.get("drug_class") or ""), history)
        if hit is not None:
            where.add("home-med-barred", f"{m.get('name')} with '{hit}' in the history")
    if any(_HEART_FAILURE.search(h) for h in history):
        classes = " ".join(str(m.get("drug_class") or "") for m in home)
        if not _BETA.search(classes) and not _LOOP.search(classes):
            where.add(
                "heart-failure-untreated",
                "heart failure in the history; no beta-blocker or loop diuretic at home",
            )
    _lint_history(where, case, texts, roles, history, sex)


def _lint_history(
    where: _Adds,
    case: dict[str, Any],
    texts: list[tuple[int, str]],
    roles: list[str],
    history: list[str],
    sex: str | None,
) -> None:
    """The history rules (sources/history.py kinds and checks): what the answer to "any
    medical conditions?" holds, what contradicts what, maintenance drugs, allergy reactions."""
    history = [h.rstrip(".") for h in history]
    lay = [(i, t) for (i, t), r in zip(texts, roles, strict=True) if r in _LAY]
    for n, ((_, q), r) in enumerate(zip(texts, roles, strict=True)):
        if r in _LAY or not _PMH_QUESTION.search(q) or n + 1 >= len(texts):
            continue
        idx, answer = texts[n + 1]
        if roles[n + 1] in _LAY and (word := pmh_misfiled(answer)) is not None:
            where.add("pmh-not-condition", f"'{word}' given as past medical history", idx)
    for idx, why in contradictions(history, lay, texts):
        where.add("history-contradiction", why, idx)
    unable = collateral.needed_for_record(case)
    if unable is not None:
        told = [
            str(f)[len("Reports ") :]
            for f in case.get("facts") or []
            if str(f).startswith("Reports ")
        ]
        seen = collateral.seen(unable, told, sex)
        for (idx, text), r in zip(texts, roles, strict=True):
            if seen is not None and r != "patient" and r in _LAY and text == "No, that's about it.":
                where.add("history-contradiction", f"'No, that's about it' though {seen}", idx)
    taking = [
        f"{m.get('name', '')} {m.get('drug_class') or ''}".lower()
        for m in case.get("medications") or []
    ]
    for why in maintenance_missing(history, taking):
        where.add("home-med-missing", why)
    for a in case.get("allergies") or []:
        misfit = reaction_misfits(str(a.get("substance") or ""), str(a.get("reaction") or ""))
        if misfit is not None:
            where.add("allergy-reaction-class", misfit)
