"""The patient is one person: record details that must agree with who the patient is.

Synthetic records are assembled from parts (the KB's wording, the exam's normal results,
the triage observations, the plan); each part can be right on its own and wrong for this
patient. This module holds the small fixes the generator applies (see docs/building.md,
"The patient is one person"); ``build/lint_patient.py`` checks records for the same faults.

- sex: an example naming an organ of the other sex is left out of a sentence
  ("(e.g. prostatic enlargement)" for a woman: ``for_sex``);
- vital signs: a normal result the vitals make untestable is said without that part
  ("no orthostatic hypotension" at a heart rate of 130: ``exam_fits_vitals``); an ECG
  read as "sinus rhythm" at a rate above 100 is sinus tachycardia (``ecg_fits_rate``);
- oxygen: a saturation below 92% on air gets oxygen at triage, said by the nurse
  (``oxygen_started``; BTS 2017: target 94-98%, or 88-92% at risk of hypercapnia);
- weight: the triage nurse records a weight (``triage_weight``), which any per-kilogram
  dose (30 mL/kg of crystalloid, isoniazid 5 mg/kg) needs; a wasted patient (cachexia on
  examination) weighs what wasting means (``wasted``; the doses follow: ``dosing.py``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping

from behaviorsft.build.ward_turns import exam_vitals_conflict

# Organs (and states) of one sex, as the other sex's record must not name them.
OTHER_SEX: dict[str, re.Pattern[str]] = {
    "female": re.compile(r"\b(?:prostat\w*|testic\w*|testis|testes|scrot\w*|epididym\w*)", re.I),
    "male": re.compile(
        r"\b(?:ovar\w*|uter(?:us|ine)|vagin\w*|cervical motion|pelvic inflammatory|"
        r"pregnan\w*|menstru\w*|multiparity|postpartum)",
        re.I,
    ),
}
_EXAMPLE = re.compile(r"\s*\((?:e\.g\.|such as|for example)[^)]*\)")


def for_sex(text: str, sex: str | None) -> str:
    """``text`` without a parenthetical example naming an organ of the other sex."""
    other = OTHER_SEX.get(sex or "")
    if other is None or not other.search(text):
        return text
    return _EXAMPLE.sub(lambda m: "" if other.search(m.group(0)) else m.group(0), text)


def other_sex_term(text: str, sex: str | None) -> str | None:
    """The first word of ``text`` that names an organ or state of the other sex, or None."""
    other = OTHER_SEX.get(sex or "")
    m = other.search(text) if other is not None else None
    return m.group(0) if m is not None else None


# "no orthostatic hypotension" inside a normal result ("clinically euvolaemic (moist mucosa,
# no orthostatic hypotension, no oedema)"): the clause the vitals can make untestable.
_ORTHOSTATIC_CLAUSE = re.compile(
    r"no (?:orthostatic|postural) hypotension,\s*|,\s*no (?:orthostatic|postural) hypotension"
)


def exam_fits_vitals(text: str, vitals: Mapping[str, float]) -> str:
    """A normal examination result said as far as the vitals allow: without the orthostatic
    clause when the patient is tachycardic or hypotensive lying down (no one stands such a
    patient up to test it; ``ward_turns.EXAM_VITALS``)."""
    if exam_vitals_conflict(text, vitals) is None:
        return text
    trimmed = _ORTHOSTATIC_CLAUSE.sub("", text)
    return trimmed if exam_vitals_conflict(trimmed, vitals) is None else text


SINUS_RHYTHM = re.compile(r"\bsinus rhythm\b", re.I)
TACHYCARDIA, BRADYCARDIA = 100.0, 60.0


def ecg_fits_rate(text: str, heart_rate: float | None) -> str:
    """An ECG's 'sinus rhythm' named for the rate the triage observations show."""
    if heart_rate is None or not SINUS_RHYTHM.search(text):
        return text
    if heart_rate > TACHYCARDIA:
        return SINUS_RHYTHM.sub("sinus tachycardia", text)
    if heart_rate < BRADYCARDIA:
        return SINUS_RHYTHM.sub("sinus bradycardia", text)
    return text


# BTS 2017 emergency oxygen: start oxygen below 92% (94-98% target), or aim for 88-92% in
# a patient at risk of hypercapnic respiratory failure (COPD, obesity hypoventilation).
OXYGEN_BELOW = 92.0
HYPERCAPNIA_RISK = re.compile(
    r"\bCOPD\b|chronic obstructive|obesity hypoventilation|neuromuscular|kyphoscoliosis|"
    r"bronchiectasis|cystic fibrosis",
    re.I,
)
OXYGEN_SAID = re.compile(
    r"\b(?:oxygen|O2)\b[^.;]*\b(?:started|given|via|at \d+ ?L|applied|on)\b|"
    r"\bnasal cannula|venturi|non-rebreather|high-flow oxygen|\bon \d+ ?L",
    re.I,
)


# The SpO2 range a plan action gives ('controlled oxygen to SpO2 93-95%', GINA 2024; 'oxygen
# to SpO2 92-96%', NIH COVID-19): one range, not the BTS pair '94-98% (88-92% if ...)'.
_TARGET = re.compile(r"\bSpO2 (?:of )?(?P<range>\d\d-\d\d)%(?! \(\d\d-\d\d% if)")
TARGET_SAID = re.compile(r"(?:\btarget|\bSpO2)[^.;]*?\b(?P<range>\d\d-\d\d)%(?! if)")


def oxygen_target(actions: Iterable[str]) -> str | None:
    """The one SpO2 range the condition's plan ``actions`` set, or None."""
    return next((m["range"] for a in actions if (m := _TARGET.search(a))), None)


def oxygen_started(
    spo2: float | None, texts: Iterable[str], said: Iterable[str], target: str | None = None
) -> str | None:
    """The triage nurse's words starting oxygen for a saturation below 92% on air, or None
    (saturation at or above 92%, or oxygen already said in ``said``). ``texts``: the
    condition and history, which say whether the patient risks hypercapnia; ``target``: the
    condition's own range (``oxygen_target``), which the plan later gives too (53-000477:
    94-98% at triage, 93-95% in the asthma plan)."""
    if spo2 is None or spo2 >= OXYGEN_BELOW or any(OXYGEN_SAID.search(s) for s in said):
        return None
    if any(HYPERCAPNIA_RISK.search(t) for t in texts):
        return (
            f"Saturation {spo2:g}% on air: controlled oxygen started by 28% Venturi mask, "
            "target 88-92%."
        )
    return (
        f"Saturation {spo2:g}% on air: oxygen started by nasal cannula at 2 L/min, "
        f"target {target or '94-98'}%."
    )


# Adult weights at triage (kg), drawn per case: a range by sex, so a dose per kg reads
# with a weight it could be worked out from.
WEIGHT_RANGE = {"female": (52, 88), "male": (62, 102)}
# A wasted patient (cachexia on examination) weighs what wasting means: a BMI below about
# 18.5 at an ordinary height (ESPEN 2015 malnutrition criteria), never 90 kg (round 12:
# 53-000515 and 53-000179, cachexia at 92 and 97 kg).
WASTED_RANGE = {"female": (40, 50), "male": (45, 56)}
WASTED = re.compile(r"\b(?:cachex\w*|emaciat\w*|wasted|severely malnourished)\b", re.I)
# Heavier than this, a wasted habitus is not credible (lint: exam-weight).
WASTED_ABOVE = 70


def wasted(exam: str) -> str | None:
    """The word of ``exam`` (examination findings, '; '-separated) that says the patient
    is wasted ('cachexia'), or None; a negated finding ('no cachexia') says nothing."""
    for part in re.split(r"[;.]\s*", exam):
        m = WASTED.search(part)
        if m is not None and not re.match(r"\s*(?:no|not)\b", part, re.I):
            return m[0]
    return None


# Obesity in the history only for a patient whose weight makes it credible: a BMI of 30 at
# an ordinary height (1.63 m for a woman, 1.73 m for a man) is about 80 and 90 kg (round 11:
# 47-000118, obesity at 68 kg). The weight is drawn first; the history follows it.
OBESE = re.compile(r"\bobes(?:e|ity)\b", re.I)
OBESE_FROM = {"female": 80, "male": 90}


def obesity_unfit(item: str, sex: str | None, kg: float) -> bool:
    """Whether a history ``item`` says obesity of a patient too light for it."""
    return OBESE.search(item) is not None and kg < OBESE_FROM.get(sex or "", 85)


def triage_weight(case_id: str, sex: str | None, exam: str = "") -> int:
    """The weight the triage nurse records, drawn from the case id (same case, same weight);
    from the wasted range when the examination ``exam`` finds the patient wasted."""
    ranges = WASTED_RANGE if wasted(exam) else WEIGHT_RANGE
    low, high = ranges.get(sex or "", (45, 55) if ranges is WASTED_RANGE else (55, 95))
    return random.Random(f"behaviorsft-weight:{case_id}").randint(low, high)


def record_weight(case_id: str, sex: str | None, sections: Iterable[tuple[str, str]]) -> int:
    """``triage_weight`` of a record from its sections (title, text): what the triage turn
    says, so the doses and the creatinine clearance are worked out from the same weight."""
    exam = " ".join(text for title, text in sections if title.lower() == "examination")
    return triage_weight(case_id, sex, exam)


# Regular medicines a disease in the history rules out (drug-class words, history pattern,
# why): an ACE inhibitor with ascites (AASLD 2021: renal failure and hypotension); an
# NSAID with cirrhosis, heart failure or chronic kidney disease (KDIGO 2024; ACC/AHA 2022).
HISTORY_BARS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    (("ace inhibitor", "angiotensin"), re.compile(r"\bascites\b", re.I), "ascites"),
    (
        ("nsaid",),
        re.compile(r"cirrhosis|ascites|heart failure|chronic kidney disease|\bCKD\b", re.I),
        "the history",
    ),
)


def history_bars(drug_class: str, history: Iterable[str]) -> str | None:
    """The history item that rules out a regular medicine of ``drug_class``, or None."""
    cls = drug_class.lower()
    for words, pattern, _ in HISTORY_BARS:
        if any(w in cls for w in words):
            hit = next((h for h in history if pattern.search(h)), None)
            if hit is not None:
                return hit
    return None


# Advice that presupposes a state ("escalate to NIV if acidosis persists"): the day-0 value
# (finding name, lower case) that must show it, or the advice reads wrong (pH 7.37).
PREMISES: tuple[tuple[re.Pattern[str], str, float, str], ...] = (
    (re.compile(r"\bacidosis persists\b", re.I), "ph (arterial)", 7.35, "no acidaemia"),
)


def premise_unmet(text: str, day0: Mapping[str, float]) -> str | None:
    """Why advice ``text`` presupposes a state the day-0 values (finding name, lower case ->
    value) do not show ("'acidosis persists' with pH 7.37"), or None."""
    for pattern, name, below, _ in PREMISES:
        m = pattern.search(text)
        if m is None:
            continue
        value = day0.get(name)
        if value is None:
            return f"'{m.group(0)}' with no {name} shown"
        if value >= below:
            return f"'{m.group(0)}' with {name} {value:g}"
    return None


# One home: a homeless patient has no household ('Someone I live with had infectious TB').
HOMELESS = re.compile(r"\bhomeless", re.I)
_HOUSEHOLD = re.compile(r"\b(?P<s>[Ss])omeone (?P<who>I|he|she) lives? with\b")


def one_home(spoken: str, history: Iterable[str]) -> str:
    """The patient's (or the relative's) words with a household contact said as a shelter
    contact when the history says the patient is homeless."""
    if not any(HOMELESS.search(h) for h in history):
        return spoken
    return _HOUSEHOLD.sub(
        lambda m: (
            f"{m['s']}omeone at the shelter where {m['who']} "
            + ("stay" if m["who"] == "I" else "stays")
        ),
        spoken,
    )


# A condition whose plan isolates the patient against airborne spread: the triage nurse
# masks and separates the patient on arrival (CDC 2005 TB infection control: a suspected
# case is masked and placed in an airborne-isolation room at once, not after the work-up).
AIRBORNE = re.compile(r"\bairborne isolation\b", re.I)
ISOLATED_AT_TRIAGE = (
    "Possible infectious TB: surgical mask on the patient and moved to a side room on "
    "arrival, pending an airborne-isolation room."
)


def isolation_at_triage(actions: Iterable[str], omitted: str | None) -> str | None:
    """The triage nurse's words isolating the patient, or None (no airborne isolation in the
    plan, or isolation is what this record leaves out)."""
    if omitted is not None and re.search(r"\bisolation\b", omitted, re.I):  # not 'isolate'
        return None
    return ISOLATED_AT_TRIAGE if any(AIRBORNE.search(a) for a in actions) else None


# Conditions another specialty than their system's reviews (a leg DVT: the thrombosis
# service, not cardiology; round 10, 43-000396).
CONDITION_SPECIALTY = {"dvt": "haematology"}
