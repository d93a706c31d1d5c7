"""Seeded synthetic internal-medicine cases drawn from the clinical knowledge base.

Each case is one KB condition made concrete: a patient of the condition's age
and sex mix, presenting symptoms sampled by their frequency, vitals and labs
sampled inside the condition's typical ranges (and normal ones from the
reference intervals), the condition's imaging finding, a treatment plan from its
first-line drugs with the KB doses (skipping drugs the patient is allergic to),
and a day-by-day timeline. The ground truth every task is built from is thus
known by construction.

Determinism: case ``i`` of seed ``s`` depends only on ``(s, i)`` and the KB
(``random.Random`` seeded with a string is stable across processes and
platforms), so the same seed gives byte-identical output and cases can be made
in any order or in parallel.

The KB records its link on the case: a ``Condition`` with
``code_system == KB_CODE_SYSTEM`` and ``code`` the KB condition id.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from behaviorsft import __version__
from behaviorsft.build.coherence import organism_conflict
from behaviorsft.build.event_time import culture_report, draw_clocks
from behaviorsft.build.lint import drug_family
from behaviorsft.build.lint_plan import (
    ANTIBACTERIAL,
    cockcroft_gault,
    egfr,
    history_therapies,
    renal_dose,
    renal_problem,
)
from behaviorsft.build.lint_values import (
    ABSOLUTE_LIMITS,
    BASELINE_BY_DAY1,
    DAILY_LIMITS,
    HYPERACUTE_HOURS,
    MARKER_CAPS,
    NO_DAY1_REPEAT,
    PEAK_AFTER_ONSET,
    PENDING,
    SLOW_RESULTS,
    SLOW_SYMPTOMS,
    calculated_osmolality,
    ckd_epi_2021,
    hco3_for,
    henderson_hasselbalch_ph,
    winters_paco2,
)
from behaviorsft.build.ward_turns import exam_vitals_conflict, first_dose_index
from behaviorsft.records import (
    Allergy,
    Case,
    Condition,
    Demographics,
    Event,
    Finding,
    Medication,
    ReferenceRange,
    Section,
    Source,
)
from behaviorsft.sources import (
    dosing,
    exam_normals,
    patient,
    physiology,
    prescribing,
    severity,
    surgical,
)
from behaviorsft.sources.history import (
    CLASS_REACTION,
    COMMON_ALLERGIES,
    HIT_FALLBACK_SHARE,
    age_fits,
    allergy_pool,
    imaging_with_history,
    reaction_for,
    treat_history,
)
from behaviorsft.sources.kb import Condition as KBCondition
from behaviorsft.sources.kb import (
    Dose,
    Drug,
    KnowledgeBase,
    Lab,
    LabFinding,
    Range,
    compare,
    load_kb,
)
from behaviorsft.sources.planted_orders import Patient, orderable_group
from behaviorsft.sources.wording import complaint, history_item, is_history, observed

KB_CODE_SYSTEM = "behaviorsft-kb"
LOINC = "http://loinc.org"
SOURCE_NAME = "synthetic"
LICENCE = "Apache-2.0"
ATTRIBUTION = (
    f"behaviorsft {__version__} synthetic generator (knowledge base in behaviorsft/data/kb)"
)

# Vitals charted for every patient; a condition's own ranges override the normal ones.
VITALS = ("temperature", "heart_rate", "respiratory_rate", "sbp", "dbp", "spo2")
# Labs drawn for every patient on top of the condition's own panel.
BASE_LABS = ("sodium", "potassium", "creatinine", "hemoglobin", "wbc", "platelets", "glucose")

# Allergy reactions, most to least severe; anaphylaxis makes a re-challenge dangerous.
REACTIONS = ("anaphylaxis", "angioedema", "hives", "rash")

# Chronic medicines a patient may already take (KB ids), with an indication and the
# youngest age at which that long-term indication is usual (statin and aspirin primary
# prevention from 40, USPSTF 2022; hypertension and type 2 diabetes are uncommon below 30).
HOME_MEDS: dict[str, tuple[float, str, str, str, int]] = {
    # id: (amount, unit, frequency, indication, min age); usual oral maintenance doses (labels)
    "atorvastatin": (40, "mg", "once daily", "hypercholesterolaemia", 40),
    "metoprolol": (25, "mg", "twice daily", "hypertension", 30),
    "lisinopril": (10, "mg", "once daily", "hypertension", 30),
    "metformin": (500, "mg", "twice daily", "type 2 diabetes", 30),
    "pantoprazole": (40, "mg", "once daily", "gastro-oesophageal reflux disease", 18),
    # coronary disease itself (secondary prevention) is rare below 50 without risk factors
    # (round 12, 53-000479: a 40-year-old woman with CAD and nothing to explain it)
    "aspirin": (81, "mg", "once daily", "coronary artery disease", 50),
}

# Current drug therapies a history item may name, and the regular medicine that carries it
# (KB id, amount, unit, frequency, its indication): kept only with that medicine.
THERAPY_MEDS: dict[str, tuple[str, float, str, str, str]] = {
    "sulfonylurea": ("glipizide", 5, "mg", "once daily", "type 2 diabetes"),
}

# Narrowest pulse pressure generated (mmHg): diastolic stays this far below systolic.
MIN_PULSE_PRESSURE = 20

_DURATION_DAYS = {"hour": 1 / 24, "day": 1, "week": 7, "month": 30}
_DURATION = re.compile(r"(\d+)(?:\s*-\s*(\d+))?\s*(hour|day|week|month)s?\b")


@dataclass(frozen=True)
class SynthOptions:
    """Knobs of the generator (defaults give the documented mix)."""

    allergy_rate: float = 0.6  # share of patients with a recorded drug allergy
    max_home_meds: int = 3


def _round(value: float, decimals: int) -> float:
    return round(value, decimals) if decimals else float(round(value))


def fmt_value(value: float, decimals: int) -> str:
    """A lab value as a clinician writes it (no trailing '.0' for integers)."""
    return f"{value:.{decimals}f}" if decimals else str(round(value))


# Normal blood pressures are drawn where they were before the triage reference widened to
# 90-140/60-90 (labs.yaml, round 10): the middle of 90-120/60-80, so every case's draws stay.
NORMAL_DRAW: dict[str, tuple[float, float]] = {"sbp": (90, 120), "dbp": (60, 80)}


def _sample_numeric(rng: random.Random, finding: LabFinding | None, lab: Lab, sex: str) -> float:
    if finding is not None and finding.range is not None:
        lo, hi = finding.range.low, finding.range.high
    else:
        ref = lab.reference(sex)  # type: ignore[arg-type]
        if lab.id in NORMAL_DRAW:
            ref = Range(low=NORMAL_DRAW[lab.id][0], high=NORMAL_DRAW[lab.id][1])
        # Stay inside the middle of the normal interval so "normal" is unambiguous.
        span = ref.high - ref.low
        lo, hi = ref.low + 0.2 * span, ref.high - 0.2 * span
    if lab.bounds is not None:
        lo, hi = max(lo, lab.bounds.low), min(hi, lab.bounds.high)
    return _round(rng.uniform(lo, hi), lab.decimals)


def _finding(lab: Lab, *, value: float | None, text: str | None, day: float, sex: str) -> Finding:
    ref = None
    if lab.kind == "quantitative":
        r = lab.reference(sex)  # type: ignore[arg-type]
        ref = ReferenceRange(low=r.low, high=r.high)
    return Finding(
        name=lab.name,
        kind="vital" if lab.panel == "vitals" else "lab",
        value=value,
        value_text=text,
        unit=lab.unit,
        reference_range=ref,
        day=day,
        code_system=LOINC if lab.loinc else None,
        code=lab.loinc,
    )


def kb_condition_id(case: Case) -> str | None:
    """The KB condition a synthetic case was drawn from (None for other sources)."""
    for cond in case.conditions:
        if cond.code_system == KB_CODE_SYSTEM and cond.code:
            return cond.code
    return None


def medication(
    drug: Drug, condition_id: str, indication: str, dose: Dose | None = None
) -> Medication:
    """A KB drug at its dose for ``condition_id`` (or ``dose``) as a Medication record."""
    d = dose if dose is not None else drug.dose_for(condition_id)
    return Medication(
        name=drug.name,
        dose=f"{d.amount:g} {d.unit}",
        dose_value=d.amount,
        dose_unit=d.unit,
        route=d.route,
        frequency=d.frequency,
        drug_class=drug.drug_class,
        indication=indication,
    )


def medication_text(med: Medication) -> str:
    """'Ceftriaxone 1 g IV q24h'."""
    return " ".join(x for x in (med.name, med.dose, med.route, med.frequency) if x)


def allergy_name(kb: KnowledgeBase, group_id: str) -> str:
    """Display name of an allergy group without its parenthetical gloss."""
    return kb.allergy_groups[group_id].name.split(" (")[0]


def allergy_group_of(kb: KnowledgeBase, substance: str) -> str | None:
    """The KB allergy group a recorded substance names, if any."""
    for gid in kb.allergy_groups:
        if allergy_name(kb, gid).lower() == substance.lower():
            return gid
    return None


def symptom_min_days(symptom: str) -> float:
    """The shortest history a symptom's own wording implies ('cough for more than 2-3 weeks'
    -> 14 days; 'pain for more than 6 hours' -> 0.25; 'weight loss' -> 14, SLOW_SYMPTOMS); 0
    when it implies no duration."""
    days = 0.0
    for m in _DURATION.finditer(symptom):
        days = max(days, float(m.group(1)) * _DURATION_DAYS[m.group(3)])
    for slow, floor in SLOW_SYMPTOMS.items():  # weight loss takes weeks
        if re.search(rf"\b{slow}\b", symptom, re.I):
            days = max(days, float(floor))
    return days


def risk_fits(risk: str, sex: str, age: int) -> bool:
    """Whether a history item is possible for this sex and age."""
    r = risk.lower()
    if re.search(r"\bfemale sex\b", r):
        return sex == "female"
    if re.search(r"(?<!fe)\bmale sex\b|\bprostat", r):
        return sex == "male"
    if re.search(r"\b(pregnan|postpartum|multiparity|childbirth)", r):
        return sex == "female" and (age <= 50 or "oestrogen" in r or "multiparity" in r)
    return True


def onset_phrase(days: float) -> str:
    """'3 days', '1 day', '3 weeks' (whole weeks from two weeks on); under a day, hours
    ('2 hours')."""
    if days < 1:
        hours = max(1, round(days * 24))
        return f"{hours} hour{'s' if hours != 1 else ''}"
    days = round(days)
    if days >= 14 and days % 7 == 0:
        return f"{days // 7} weeks"
    return f"{days} day{'s' if days != 1 else ''}"


def contraindicated(drug: Drug, condition_id: str, values: dict[str, float]) -> bool:
    """Whether an absolute KB contraindication of ``drug`` holds: this condition, or a
    lab/vital (by KB id) past its threshold."""
    for ci in drug.contraindications:
        if ci.severity != "absolute":
            continue
        if ci.condition == condition_id:
            return True
        if ci.lab is not None and ci.op is not None and ci.value is not None:
            v = values.get(ci.lab)
            if v is not None and compare(v, ci.op, ci.value):
                return True
    return False


def clashes_with_plan(kb: KnowledgeBase, drug_id: str, plan_ids: list[str]) -> bool:
    """Whether a home medicine would interact badly with, or duplicate, the plan's drugs."""
    drug = kb.drug(drug_id)
    for pid in plan_ids:
        if pid == drug_id:
            return True
        if any(
            i.severity in ("contraindicated", "major")
            for i in kb.interactions_between(drug_id, pid)
        ):
            return True
        family = drug_family(drug.drug_class)
        if family is not None and family == drug_family(kb.drug(pid).drug_class):
            return True
    return False


def antibacterial(drug: Drug) -> bool:
    """Whether a KB drug is an antibacterial (by its class)."""
    cls = drug.drug_class.lower()
    return any(w in cls for w in ANTIBACTERIAL)


def _same_role(a: Drug, b: Drug) -> bool:
    """Whether ``b`` can stand in for ``a`` in a plan: one class, family, or both antibacterial."""
    if a.drug_class == b.drug_class:
        return True
    fa = drug_family(a.drug_class)
    return (fa is not None and fa == drug_family(b.drug_class)) or (
        antibacterial(a) and antibacterial(b)
    )


def substitute(
    kb: KnowledgeBase,
    cond: KBCondition,
    drug: Drug,
    ok: Callable[[Drug], bool],
    choice: str | None = None,
) -> Drug | None:
    """The condition's first other drug that can replace ``drug`` and that ``ok`` accepts:
    another member of its interchangeable ``choice``, or an alternative or conditional drug
    of its role."""
    for td in cond.treatments.drugs:
        other = kb.drug(td.drug)
        if other.id == drug.id or not ok(other):
            continue
        if choice is not None and td.choice == choice:
            return other
        if td.role in ("alternative", "conditional") and _same_role(drug, other):
            return other
    return None


def allergy_fits(kb: KnowledgeBase, cond: KBCondition, group: str) -> bool:
    """Whether a patient with this condition can have an allergy to ``group``: not when it
    takes a first-line drug from the plan with nothing of its role to replace it (a
    sulfonamide allergy would leave heart failure without a loop diuretic, a
    benzodiazepine allergy alcohol withdrawal without a sedative)."""
    for td in cond.treatments.drugs:
        drug = kb.drug(td.drug)
        lost = td.role == "first_line" and group in drug.allergy_groups
        if not lost:
            continue
        if substitute(kb, cond, drug, lambda d: group not in d.allergy_groups, td.choice) is None:
            return False
    return True


def allergy_candidates(kb: KnowledgeBase, cond: KBCondition) -> list[str]:
    """Allergy groups of the condition's treatment drugs (so an allergy clash is possible)
    that the plan can work around (``allergy_fits``)."""
    groups: list[str] = []
    for td in cond.treatments.drugs:
        for g in kb.drug(td.drug).allergy_groups:
            if g not in groups and g != "beta_lactams":
                groups.append(g)
    return [g for g in groups if allergy_fits(kb, cond, g)]


def partner(kb: KnowledgeBase, note: str | None) -> Drug | None:
    """The drug a treatment's note says to give it with ("with metronidazole")."""
    m = re.match(r"\s*with ([a-z -]+)", note or "", re.I)
    if m is None:
        return None
    name = m[1].strip().lower()
    return next((d for d in kb.drugs.values() if d.name.lower() == name), None)


# The hospital course between the first dose (day 0) and the day-2 ward round: events
# whose order varies from case to case, so only the record tells it (timeline_sequence).
# kind -> (event text, earliest day, latest day). Medicines reconciliation is due within
# 24 hours of admission; physiotherapy assesses the patient once the acute phase allows.
COURSE_EVENTS: dict[str, tuple[str, int, int]] = {
    "consult": ("Specialist consult review.", 0, 2),
    "reconciliation": ("Medicines reconciliation by the pharmacist.", 0, 1),
    "physiotherapy": ("Physiotherapy assessment.", 1, 2),
}


def course_events(
    seed: int, index: int, repeat: Finding | None, physio: bool = True
) -> list[Event]:
    """The hospital course of case ``index``, in the order it happened: the consult, the
    medicines reconciliation, the physiotherapy assessment and the repeat of ``repeat``
    (on its day) in a uniformly random order, each on a day its window allows.

    Any order fits every window (all contain day 1), so the order is drawn first and the
    days after it, non-decreasing; events on one day happen in the listed order. A stream
    of its own (not the case's) leaves everything else about the case as it was. Each
    event has a clock time, drawn last: events of one day at distinct times in that order.
    """
    rng = random.Random(f"behaviorsft-synth-course:{seed}:{index}")
    windows = {k: (lo, hi) for k, (_, lo, hi) in COURSE_EVENTS.items()}
    if not physio:  # critical care or a short stay (severity.physiotherapy_due)
        del windows["physiotherapy"]
    if repeat is not None:
        day = int(repeat.day or 1)
        windows["lab"] = (day, day)
    order = list(windows)
    rng.shuffle(order)
    events: list[Event] = []
    prev = 0
    for i, kind in enumerate(order):
        lo, hi = windows[kind]
        # no later than any window still to come allows, so the rest stays possible
        hi = min([hi, *(windows[k][1] for k in order[i + 1 :])])
        prev = rng.randint(max(prev, lo), hi)
        text = f"Repeat {repeat.name} checked." if kind == "lab" and repeat else ""
        events.append(Event(day=prev, kind=kind, text=text or COURSE_EVENTS[kind][0]))
    # each event's clock time, distinct within a day and in the order drawn (event_time)
    clocks = draw_clocks([e.day or 0 for e in events], rng, [e.kind for e in events])
    return [e.model_copy(update={"clock": c}) for e, c in zip(events, clocks, strict=True)]


# Share of the linter's day-over-day bounds (lint_values.DAILY_LIMITS, ABSOLUTE_LIMITS) the
# generated day-1 repeat may use: it stays well inside what the kinetics allow.
KINETIC_MARGIN = 0.6


def derive_values(
    values: dict[str, float],
    ranges: dict[str, tuple[float, float]],
    age: int,
    sex: str,
    rng: random.Random,
) -> dict[str, float]:
    """Day-0 results recomputed from the ones they derive from (by KB lab id), so that a
    record's values agree: haematocrit about 3 x haemoglobin, eGFR by CKD-EPI 2021, measured
    osmolality at or a little above the calculated one, arterial HCO3 from pH and PaCO2
    (Henderson-Hasselbalch), or pH from serum bicarbonate and its compensating PaCO2 (Winter's
    formula) when no PaCO2 is shown, anion gap from Na, Cl and HCO3, capillary within 8% of
    serum glucose. The condition's own (deranged) result is kept and its partner derived;
    ``ranges`` are the condition's typical ranges by lab id."""
    cond_labs = set(ranges)
    v = dict(values)
    if "hematocrit" in v and "hemoglobin" in v:
        if "hematocrit" in cond_labs and "hemoglobin" not in cond_labs:
            v["hemoglobin"] = round(v["hematocrit"] / rng.uniform(2.9, 3.1), 1)
        else:
            v["hematocrit"] = round(v["hemoglobin"] * rng.uniform(2.9, 3.1), 1)
    if "egfr" in v and "creatinine" in v:
        v["egfr"] = float(round(min(180.0, ckd_epi_2021(v["creatinine"], age, sex))))
    if "serum_osmolality" in v and "sodium" in v and "glucose" in v:
        calc = calculated_osmolality(v["sodium"], v["glucose"], v.get("bun", 14.0))
        v["serum_osmolality"] = float(round(calc + rng.uniform(0.0, 8.0)))
    if {"ph_arterial", "paco2", "hco3_arterial"} <= v.keys():
        v["hco3_arterial"] = float(round(hco3_for(v["ph_arterial"], v["paco2"])))
    if {"ph_arterial", "bicarbonate"} <= v.keys() and "paco2" not in v and "hco3_arterial" not in v:
        # pH from the bicarbonate and the PaCO2 it is compensated to (Winter's formula in a
        # metabolic acidosis, else a normal PaCO2): DKA and HHS show no PaCO2
        # (kept inside the condition's own pH range: DKA below 7.3, HHS from 7.3)
        hco3 = v["bicarbonate"]
        paco2 = winters_paco2(hco3) + rng.uniform(-1.5, 1.5) if hco3 < 22 else rng.uniform(36, 44)
        low, high = ranges.get("ph_arterial", (6.8, 7.8))
        v["ph_arterial"] = round(min(max(henderson_hasselbalch_ph(paco2, hco3), low), high), 2)
    if {"anion_gap", "sodium", "chloride", "bicarbonate"} <= v.keys():
        v["anion_gap"] = v["sodium"] - v["chloride"] - v["bicarbonate"]
    if "glucose_poc" in v and "glucose" in v:
        src, dst = (
            ("glucose_poc", "glucose") if "glucose_poc" in cond_labs else ("glucose", "glucose_poc")
        )
        value = v[src] * rng.uniform(0.92, 1.08)
        if dst in ranges:  # both are the condition's: the partner stays in its range too
            value = min(max(value, ranges[dst][0]), ranges[dst][1])  # (below 54 in hypoglycaemia)
        v[dst] = float(round(value))
    return v


def day1_value(lab_id: str, first: float, proposed: float, rng: random.Random) -> float:
    """A day-1 repeat moved no faster than the analyte's kinetics allow: ``proposed``
    (towards normal) held inside ``KINETIC_MARGIN`` of the linter's daily bounds; a low
    haemoglobin does not rise without a transfusion (it drifts down on fluids)."""
    if lab_id in ("hemoglobin", "hematocrit") and proposed > first:
        return first - rng.uniform(0.1, 0.5) * (3 if lab_id == "hematocrit" else 1)
    if lab_id in ABSOLUTE_LIMITS:
        rise, fall = ABSOLUTE_LIMITS[lab_id]
        if rise is not None:
            proposed = min(proposed, first + rise * KINETIC_MARGIN)
        if fall is not None:
            proposed = max(proposed, first - fall * KINETIC_MARGIN)
    if lab_id in DAILY_LIMITS and first > 0:
        rise, fall = DAILY_LIMITS[lab_id]
        if rise is not None:
            proposed = min(proposed, first * (1 + rise * KINETIC_MARGIN))
        if fall is not None:
            proposed = max(proposed, first * (1 - fall * KINETIC_MARGIN))
    return proposed


def synthesize_case(
    index: int,
    *,
    seed: int = 0,
    kb: KnowledgeBase | None = None,
    options: SynthOptions = SynthOptions(),
) -> Case:
    """Case number ``index`` of the stream for ``seed`` (deterministic)."""
    kb = kb or load_kb()
    rng = random.Random(f"behaviorsft-synth:{seed}:{index}")
    cond_ids = sorted(kb.conditions)
    # Round-robin over conditions (shuffled once per seed) keeps every condition
    # equally represented at any N.
    order = list(cond_ids)
    random.Random(f"behaviorsft-synth-order:{seed}").shuffle(order)
    cond = kb.condition(order[index % len(order)])

    sex = "female" if rng.random() < cond.sex_weights.female else "male"
    age = rng.randint(int(cond.age.low), int(cond.age.high))
    symptoms = [s.name for s in cond.symptoms if rng.random() < s.frequency]
    if len(symptoms) < 2:
        by_freq = sorted(cond.symptoms, key=lambda s: -s.frequency)
        symptoms = list(dict.fromkeys(symptoms + [s.name for s in by_freq]))[:2]
    # The history is at least as long as any symptom's own wording says ("cough for more
    # than 2-3 weeks" cannot have begun 2 days ago).
    floor = max((symptom_min_days(s) for s in symptoms), default=0.0)
    onset_days: float
    if cond.id in HYPERACUTE_HOURS:
        # anaphylaxis, STEMI, stroke for thrombolysis: hours, not days
        lo_h, hi_h, _limit = HYPERACUTE_HOURS[cond.id]
        onset_days = rng.randint(lo_h, hi_h) / 24
    elif floor >= 7:
        onset_days = 7 * rng.randint(int(-(-floor // 7)), int(-(-floor // 7)) + 2)
    else:
        onset_days = rng.randint(max(1, int(-(-floor // 1))), 4)
    # Only history this patient can have: no pregnancy in a man or a 70-year-old; no
    # demographic ("age over 65 years" is not history; the age is on the record); no current
    # drug therapy the medicine list would not show ("loop diuretic therapy"), unless the
    # medicine that carries it is added below (sulfonylurea: glipizide).
    possible = [
        r
        for r in cond.risk_factors
        if risk_fits(r, sex, age)
        and is_history(r)
        and all(c[0] in THERAPY_MEDS for _, c in history_therapies(r))
    ] or cond.risk_factors[:1]
    risks = rng.sample(possible, k=min(len(possible), rng.randint(1, 2)))
    # a care home, a long lie: an older patient's (history.py; drawn first, the stream kept)
    risks = [r for r in risks if age_fits(r, age)]
    risks = prescribing.with_exposure(cond.id, risks, possible)  # C. difficile: antibiotics

    # Allergy first: the treatment plan must respect it.
    allergies: list[Allergy] = []
    allergy_group: str | None = None
    candidates = allergy_candidates(kb, cond)
    if rng.random() < options.allergy_rate:
        # (only allergies this patient could have met: history.allergy_pool)
        pool = allergy_pool(candidates, [*risks, cond.name]) or [
            g for g in COMMON_ALLERGIES if allergy_fits(kb, cond, g)
        ]
        allergy_group = rng.choice(pool)
        reaction = reaction_for(allergy_group, rng.choice(REACTIONS))  # ACE: angioedema
        allergies.append(
            Allergy(
                substance=allergy_name(kb, allergy_group),
                reaction=reaction,
                severity="severe" if reaction in ("anaphylaxis", "angioedema") else "mild",
            )
        )

    findings: list[Finding] = []
    vitals: dict[str, float] = {}
    for vid in VITALS:
        lab = kb.lab(vid)
        value = _sample_numeric(rng, cond.vitals.get(vid), lab, sex)
        if vid == "dbp" and value > vitals["sbp"] - MIN_PULSE_PRESSURE:
            # Diastolic below systolic: keep its own range where it can, else a narrow
            # (but physiological) pulse pressure under a low systolic.
            bounds = lab.bounds
            high = vitals["sbp"] - MIN_PULSE_PRESSURE
            low = max(bounds.low if bounds else 0.0, vitals["sbp"] * 0.5)
            value = _round(rng.uniform(min(low, high), high), lab.decimals)
        vitals[vid] = value
        findings.append(_finding(lab, value=value, text=None, day=0, sex=sex))
    lab_ids = list(dict.fromkeys([*BASE_LABS, *cond.labs, *cond.normal_labs]))
    sampled: dict[str, float] = {}
    cultures: list[Finding] = []  # resulted on day 1; pending in the admission results
    for lid in lab_ids:
        lab = kb.lab(lid)
        lf = cond.labs.get(lid)
        if lab.kind == "qualitative":
            pool = lf.values if lf is not None and lf.values else lab.normal_values
            result = rng.choice(pool)
            if lid in SLOW_RESULTS:
                # not final on day 1: "no growth to date" (build/event_time.py)
                text = culture_report(result, 1)
                cultures.append(_finding(lab, value=None, text=text, day=1, sex=sex))
                result = PENDING
            findings.append(_finding(lab, value=None, text=result, day=0, sex=sex))
        else:
            sampled[lid] = _sample_numeric(rng, lf, lab, sex)
            findings.append(_finding(lab, value=sampled[lid], text=None, day=0, sex=sex))
    ranges = {
        lid: (lf.low, lf.high)
        for lid, lf in cond.labs.items()
        if lf.low is not None and lf.high is not None
    }
    # Na, Cl, HCO3 and anion gap agree (physiology.py), on a stream of their own.
    sampled = physiology.electrolytes(
        cond.id, sampled, ranges, physiology.electrolytes_rng(seed, index)
    )
    derived = derive_values(sampled, ranges, age, sex, rng)
    # Oxygenation, acid-base and rate coherence (physiology.py), on a stream of its own.
    prng = physiology.physiology_rng(seed, index)
    vital_ranges = {
        vid: (vf.low, vf.high)
        for vid, vf in cond.vitals.items()
        if vf.low is not None and vf.high is not None
    }
    derived = physiology.cohere(
        cond.id, {**vitals, **derived}, {**ranges, **vital_ranges}, age, prng
    )
    # cardiac markers no higher than the hours since onset allow (CK normal before ~4 h)
    uln = {lid: kb.lab(lid).reference(sex).high for lid in lab_ids if lid in MARKER_CAPS}  # type: ignore[arg-type]
    derived = physiology.fit_markers(cond.id, derived, onset_days * 24, uln, prng)
    for i, did in enumerate([*VITALS, *lab_ids]):  # findings follow VITALS, lab_ids
        if did in derived and derived[did] != findings[i].value:
            lab = kb.lab(did)
            value = min(max(derived[did], lab.bounds.low), lab.bounds.high)  # type: ignore[union-attr]
            findings[i] = findings[i].model_copy(update={"value": _round(value, lab.decimals)})
    # What was found, as documented: one concrete observation per finding (wording.py).
    documented = [e for e in cond.exam if observed(e) is not None]
    exam = [str(observed(e)) for e in rng.sample(documented, k=min(2, len(documented)))]
    # no finding naming an organism the microbiology contradicts (build/coherence.py)
    micro = [f.value_text or "" for f in [*findings, *cultures] if f.kind == "lab"]
    exam = [e for e in exam if organism_conflict(e, micro) is None] or exam
    # nor one the vital signs contradict ("slow pulse" at 80/min; build/ward_turns.py)
    shown_vitals = {
        vid: f.value
        for vid, f in zip(VITALS, findings[: len(VITALS)], strict=True)
        if f.value is not None
    }
    allowed = [str(observed(e)) for e in documented]
    allowed = [e for e in allowed if exam_vitals_conflict(e, shown_vitals) is None]
    exam = [e for e in exam if e in allowed] or allowed[:1] or exam
    # one of the condition's cardinal findings (its erythema, its distension; exam_normals)
    exam = exam_normals.with_cardinal(kb, cond.id, exam, allowed, f"{seed}:{index}")
    # the hernial orifices where the KB asks for them, agreeing with the history (surgical.py)
    exam = surgical.with_orifices(cond, exam, risks, f"{seed}:{index}")
    for e in exam:
        findings.append(Finding(name="Examination", kind="exam", value_text=e, day=0))
    imaging = cond.imaging[0]
    findings.append(
        Finding(
            name=imaging.modality,
            kind="imaging",
            # 'sinus rhythm' at 114/min reads as sinus tachycardia (sources/patient.py)
            value_text=patient.ecg_fits_rate(imaging.finding, shown_vitals.get("heart_rate")),
            day=0,
        )
    )

    # Day-1 repeat of the most deranged numeric condition lab, moving towards normal.
    repeat: Finding | None = None
    for lid, lf in cond.labs.items():
        lab = kb.lab(lid)
        if lab.kind != "quantitative" or lf.range is None or lid in NO_DAY1_REPEAT:
            continue  # (a TSH or a CSF count is not repeated at 24 h)
        if severity.outpatient(cond.id):
            break  # sent home: no repeat the next day (the culture still results)
        first = next(f for f in findings if f.name == lab.name)
        ref = lab.reference(sex)  # type: ignore[arg-type]
        assert first.value is not None
        if ref.low <= first.value <= ref.high:
            continue  # the deranged result is repeated, not a normal one
        target = ref.high if first.value > ref.high else ref.low
        proposed = first.value + (target - first.value) * rng.uniform(0.35, 0.65)
        peak = PEAK_AFTER_ONSET.get(lid)
        if peak is not None and cond.id in peak[0] and onset_days * 24 < peak[1]:
            proposed = first.value * rng.uniform(1.5, 3.0)  # still rising to its peak
        if lid in BASELINE_BY_DAY1:  # (tryptase: a 2-h half-life, normal again by day 1)
            proposed = rng.uniform(ref.low + 0.2 * (ref.high - ref.low), 0.7 * ref.high)
        elif lid in ("glucose", "glucose_poc") and first.value < ref.low:
            proposed = rng.uniform(90, 140)  # hypoglycaemia treated: normal within hours
        value = _round(day1_value(lid, first.value, proposed, rng), lab.decimals)
        if lab.bounds is not None:
            value = min(max(value, lab.bounds.low), lab.bounds.high)
        if value != first.value:
            repeat = _finding(lab, value=value, text=None, day=1, sex=sex)
            findings.append(repeat)
            break
    findings.extend(cultures)

    meds: list[Medication] = []
    home = sorted(HOME_MEDS)
    home_pick = rng.sample(home, k=rng.randint(0, options.max_home_meds))
    plan: list[Medication] = []
    plan_ids: list[str] = []
    chosen: set[str] = set()  # interchangeable choices already filled (one drug each)
    lab_order = [*VITALS, *lab_ids]  # findings start with these, in this order
    day0 = {
        lid: f.value for lid, f in zip(lab_order, findings, strict=False) if f.value is not None
    }
    creat = day0.get("creatinine")
    gfr = egfr(creat, age, sex) if creat else None
    # the weight the triage nurse records (a wasted patient weighs little): the doses and
    # the creatinine clearance are worked out from it (sources/dosing.py)
    kg = patient.triage_weight(f"synthetic:{seed}-{index:06d}", sex, "; ".join(exam))
    crcl = cockcroft_gault(creat, age, sex, kg) if creat else None  # for the KB's CrCl rules
    if allergy_group is not None:  # one a plausible order could clash with (planted_orders.py)
        groups = [g for g in sorted(kb.allergy_groups) if allergy_fits(kb, cond, g)]
        reported = tuple(complaint(s) for s in symptoms)
        who = Patient(age, reported, gfr, day0.get("sbp"), day0.get("potassium"), kg, crcl, creat)
        # a past HIT as the fallback that fits almost any admission only now and then
        # (round 12: a stamp in many unrelated cases; history.HIT_FALLBACK_SHARE)
        hit = random.Random(f"behaviorsft-hit:{seed}:{index}").random() < HIT_FALLBACK_SHARE
        groups = [g for g in groups if g != "beta_lactams" and (hit or g != "heparins")]
        allergy_group = orderable_group(kb, cond, allergy_group, groups, who, f"{seed}:{index}")
        update: dict[str, str] = {"substance": allergy_name(kb, allergy_group)}
        if allergy_group in CLASS_REACTION:
            update |= {"reaction": CLASS_REACTION[allergy_group], "severity": "severe"}
        if allergy_group == "heparins":
            # a heparin 'allergy' on a real chart is nearly always a past HIT
            update |= {"reaction": "heparin-induced thrombocytopenia", "severity": "severe"}
        allergies = [allergies[0].model_copy(update=update)]

    def usable(drug: Drug, values: dict[str, float] | None = None) -> bool:
        """Not of the allergy group, not contraindicated here (at ``values``, the day-0 ones
        by default), not barred by renal function."""
        if allergy_group is not None and allergy_group in drug.allergy_groups:
            return False
        if contraindicated(drug, cond.id, day0 if values is None else values):
            return False  # e.g. potassium chloride with potassium above 5.0
        return gfr is None or renal_problem(kb, drug.id, gfr, (None, "", ""), crcl) is None

    def prescribe(drug: Drug, dose: Dose | None) -> None:
        d0 = dose if dose is not None else drug.dose_for(cond.id)  # its band or criteria:
        d0 = dosing.fit_dose(drug.id, cond.id, d0, kg, age, creat)  # (sources/dosing.py)
        med = medication(drug, cond.id, cond.name, d0)
        if gfr is not None and med.dose_value is not None and med.dose_unit:
            adjusted = renal_dose(kb, drug.id, gfr, med.dose_value, med.dose_unit, crcl)
            if adjusted is not None:  # enoxaparin at CrCl < 30: the KB's reduced dose
                d = Dose(
                    amount=adjusted[0],
                    unit=med.dose_unit,
                    route=med.route or "SC",
                    frequency=adjusted[1],
                )
                med = medication(drug, cond.id, cond.name, d)
        plan.append(med)
        plan_ids.append(drug.id)

    said = " ".join(risks)  # the history drawn so far (prescribing: conditional drugs)

    def fits(d: Drug) -> bool:
        return (
            usable(d)
            and d.id not in plan_ids
            and prescribing.condition_met(cond.id, d.id, age, said)
            and not prescribing.clashes(kb, cond, d, plan_ids)
        )

    for td in cond.treatments.drugs:
        if td.role != "first_line" or (td.choice is not None and td.choice in chosen):
            continue
        drug = kb.drug(td.drug)
        if not prescribing.timely(cond.id, drug.id, onset_days) and td.choice is not None:
            continue  # colchicine past 36 h of the flare: the next member of its choice
        if prescribing.barred(cond.id, drug.id, said, day0) and td.choice is not None:
            continue  # diltiazem with heart failure or a raised BNP: metoprolol instead
        if not usable(drug):
            if td.choice is not None:
                continue  # the next member of its choice stands in
            # another drug of its role, when the condition lists one (meropenem for
            # piperacillin-tazobactam in a penicillin allergy; doxycycline, the atypical
            # cover, for azithromycin in a macrolide allergy)
            alt = prescribing.partner_substitute(kb, cond, drug, fits) or substitute(
                kb, cond, drug, fits
            )
            if alt is None:
                continue
            drug = alt
        prescribe(drug, td.dose if drug.id == td.drug else None)
        if td.choice is not None:
            chosen.add(td.choice)
    # A conditional drug whose condition this patient meets (ampicillin for Listeria over
    # 50); no two drugs of one role (a fluoroquinolone given as monotherapy stands alone).
    for did in prescribing.conditional_adds(kb, cond.id, age, said, plan_ids):
        if did not in plan_ids and usable(kb.drug(did)):
            prescribe(kb.drug(did), None)
    for did in prescribing.drop_overlaps(kb, cond, plan_ids):
        del plan[plan_ids.index(did)]
        plan_ids.remove(did)
    if not plan:  # every first-line drug clashes with the allergy: use an alternative
        for td in cond.treatments.drugs:
            drug = kb.drug(td.drug)
            if severity.owned(cond.id, drug.id):
                continue  # given only at its severity (3% saline for severe symptoms)
            with_ = partner(kb, td.note)
            if with_ is not None and not usable(with_):
                continue  # "ciprofloxacin with metronidazole" needs both
            if usable(drug):
                prescribe(drug, td.dose)
                if with_ is not None and with_.id not in plan_ids:
                    prescribe(with_, None)
                break
    # A low potassium is replaced (prescribing.potassium_route): potassium chloride.
    route = prescribing.potassium_route(cond.id, day0, symptoms)
    if route is not None and "potassium_chloride" not in plan_ids:
        kcl = kb.drug("potassium_chloride")
        if usable(kcl):
            prescribe(kcl, next(d for d in kcl.doses if d.route == route))
    # A low glucose is treated (prescribing.glucose_low): dextrose 50% IV.
    if prescribing.glucose_low(day0) and "dextrose_50" not in plan_ids:
        dex = kb.drug("dextrose_50")
        if usable(dex):
            prescribe(dex, next(d for d in dex.doses if d.indication == "hypoglycemia"))
    # A plan that treats hyperkalaemia gives insulin with glucose for K >= 6.0 (prescribing.py)
    if prescribing.potassium_treated(cond.treatments.actions, day0):
        for did in prescribing.POTASSIUM_LOWERING:
            if did not in plan_ids and usable(kb.drug(did)):
                doses = kb.drug(did).doses
                prescribe(kb.drug(did), next(d for d in doses if d.indication == "hyperkalemia"))
    for did in prescribing.value_adds(cond.id, day0):  # magnesium sulfate for a low Mg
        if did not in plan_ids and usable(kb.drug(did)):
            own = [d for d in kb.drug(did).doses if d.indication == cond.id]
            prescribe(kb.drug(did), own[0] if own else None)
    # Purulent sputum: the condition's conditional antibacterial (GOLD 2024).
    if any("purulent" in s for s in symptoms) and not any(
        antibacterial(kb.drug(d)) for d in plan_ids
    ):
        for td in cond.treatments.drugs:
            drug = kb.drug(td.drug)
            if td.role in ("conditional", "alternative") and antibacterial(drug) and usable(drug):
                prescribe(drug, td.dose)
                break
    # Care that matches the severity shown (severity.py): what a met threshold requires.
    severe = severity.escalate(
        kb,
        cond,
        {**day0, "age": age, "onset_hours": onset_days * 24},
        [*exam, imaging.finding, *(complaint(s) for s in symptoms)],  # as the record says
        plan,
        plan_ids,
        usable=usable,
        prescribe=prescribe,
        to_medication=lambda d, dose: medication(d, cond.id, cond.name, dose),
        rng=random.Random(f"behaviorsft-severity:{seed}:{index}"),
    )
    for did in home_pick:
        drug = kb.drug(did)
        amount, unit, freq, why, min_age = HOME_MEDS[did]
        if allergy_group in drug.allergy_groups or age < min_age:
            continue
        if clashes_with_plan(kb, did, plan_ids):
            continue  # the admission plan replaces it (or it would interact)
        if any(ci.condition == cond.id for ci in drug.contraindications) and not (
            prescribing.held_in(drug, cond.id)
        ):
            continue  # not for this illness (metformin in DKA); held ones stay, held below
        home_dose = Dose(amount=amount, unit=unit, route="PO", frequency=freq)
        if gfr is not None and renal_problem(kb, did, gfr, (amount, unit, freq), crcl):
            # lisinopril below CrCl 30 at the KB's reduced dose; metformin below eGFR 30 not
            lower = renal_dose(kb, did, gfr, amount, unit, crcl)
            if lower is None or renal_problem(kb, did, gfr, (lower[0], unit, lower[1]), crcl):
                continue  # (2.5 mg, a KB dose of its own, reads as unadjusted: left out)
            home_dose = Dose(amount=lower[0], unit=unit, route="PO", frequency=lower[1])
        meds.append(medication(drug, cond.id, why, home_dose))
        if why not in risks:
            risks.append(why)  # the history gives every regular medicine's indication
    for risk in list(risks):
        for _, classes in history_therapies(risk):
            did, amount, unit, freq, why = THERAPY_MEDS.get(classes[0], ("", 0, "", "", ""))
            carrier = kb.drugs.get(did)
            dose = (amount, unit, freq)
            if (
                carrier is None
                or (allergy_group is not None and allergy_group in carrier.allergy_groups)
                or clashes_with_plan(kb, did, plan_ids)
                or (gfr is not None and renal_problem(kb, did, gfr, dose, crcl) is not None)
            ):
                risks.remove(risk)  # the therapy cannot be shown: leave it out
                break
            if all(m.name != carrier.name for m in meds):
                home_dose = Dose(amount=amount, unit=unit, route="PO", frequency=freq)
                meds.append(medication(carrier, cond.id, why, home_dose))
                if why not in risks:
                    risks.append(why)
    meds.extend(plan)
    # The history as documented: a medicine risk factor only when the patient takes it;
    # a remaining "A or B" settled by a draw of its own (the case's stream is unchanged).
    pick = random.Random(f"behaviorsft-history:{seed}:{index}")
    taken = [(m.name, m.drug_class or "") for m in meds if m.indication != cond.name]
    history: list[str] = []
    spare = [r for r in possible if r not in risks]
    pick.shuffle(spare)
    for r in [*risks, *spare]:
        if len(history) == len(risks):
            break  # as many items as drawn: a medicine not taken gives way to another
        h = history_item(r, pick, taken)
        if (
            h is not None
            and risk_fits(h, sex, age)
            and h not in history
            and organism_conflict(h, micro) is None
            and not patient.obesity_unfit(h, sex, kg)  # obesity only at its weight
        ):
            history.append(h)
    # Each chronic disease with its standing treatment (sources/history.py).
    history, home_meds = treat_history(
        kb,
        cond,
        history,
        meds[: len(meds) - len(plan)],
        plan_ids,
        allergy_group=allergy_group,
        values=day0,
        gfr=gfr,
        seed=seed,
        index=index,
        clashes=lambda did, ids: clashes_with_plan(kb, did, ids),
        renal=lambda did, g, dose: renal_problem(kb, did, g, dose, crcl),
    )
    # no regular medicine the history rules out (an ACE inhibitor with ascites: patient.py)
    home_meds = [m for m in home_meds if patient.history_bars(m.drug_class or "", history) is None]
    meds = [*home_meds, *plan]
    # A chest study shows a known thoracic tumour (history.py).
    seen = imaging_with_history(imaging.modality, imaging.finding, history)
    if seen != imaging.finding:
        j = next(k for k, f in enumerate(findings) if f.kind == "imaging")
        findings[j] = findings[j].model_copy(update={"value_text": seen})
    # Sick-day rules: the regular medicines held in this acute illness (prescribing.py).
    held = prescribing.holds(
        kb,
        cond.id,
        [(m.name, m.drug_class or "") for m in home_meds],
        day0,
        sex,
        [complaint(s) for s in symptoms],  # as the record reports them ("nausea")
    )
    # Known heart failure keeps the natriuretic peptides raised (physiology.py).
    shown = {lid: f.value for lid, f in zip(lab_order, findings, strict=False) if f.value}
    for lid, value in physiology.known_heart_failure(history, shown, prng).items():
        if value != shown[lid]:
            j = lab_order.index(lid)
            findings[j] = findings[j].model_copy(update={"value": value})
    complaints = list(dict.fromkeys(complaint(s) for s in symptoms))

    timeline = [
        Event(day=-onset_days, kind="symptom", text=f"{complaints[0].capitalize()} began."),
        Event(day=0, kind="presentation", text="Presented to the emergency department."),
        Event(day=0, kind="vitals", text="Triage observations recorded."),
        Event(
            day=0,
            kind="lab",
            text="Urine sample sent."  # (treated from the emergency department)
            if severity.outpatient(cond.id)
            else "Admission bloods drawn.",
        ),
        Event(day=0, kind="imaging", text=f"{imaging.modality} performed."),
        Event(day=0, kind="diagnosis", text=f"Working diagnosis: {cond.name}."),
    ]
    if plan:  # the first drug no severity statement gives (build/ward_turns.py)
        stated = [e.text for e in severe if e.kind == severity.ESCALATION]
        first_med = plan[first_dose_index([m.name for m in plan], stated) or 0]
        timeline.append(Event(day=0, kind="medication", text=f"{first_med.name} started."))
    timeline += severe
    # an early consult on the admission day; physiotherapy after the surgical review
    physio = severity.physiotherapy_due(
        cond.id,
        [e.text for e in severe if e.kind == severity.LEVEL],
        [m.drug_class or "" for m in plan],
    )
    if severity.outpatient(cond.id):  # home from the emergency department: no ward course
        timeline.append(Event(day=2, kind="review", text="Telephone follow-up."))
    else:
        course = course_events(seed, index, repeat, physio)
        timeline += surgical.order_course(cond, course, f"{seed}:{index}")
        timeline.append(Event(day=2, kind="review", text="Ward round review of progress."))

    presentation = (
        f"{onset_phrase(onset_days)} of "
        + (
            ", ".join(complaints[:-1]) + f" and {complaints[-1]}"
            if len(complaints) > 1
            else complaints[0]
        )
        + "."
    )
    # Normal results of other signs examined (kb/conflicts.yaml; sources/exam_normals.py).
    losses = any(re.search(r"\bvomit|\bdiarrh", c, re.I) for c in complaints)
    for e in exam_normals.alongside_findings(
        kb, cond.id, exam, history, seed, index, fluid_losses=losses
    ):
        e = patient.exam_fits_vitals(e, shown_vitals)  # no orthostatic test at 130/min
        exam.append(e)
        findings.append(Finding(name="Examination", kind="exam", value_text=e, day=0))
    sections = [
        Section(title="History of presenting illness", text=presentation),
        Section(title="Past history", text="; ".join(history) + "." if history else "None."),
        Section(title="Examination", text="; ".join(exam) + "."),
    ]
    facts = [
        f"Age {age} years, {sex}.",
        *(f"Reports {s}." for s in complaints),
        *(f"History: {r}." for r in history),
        *(f"Allergy: {a.substance} ({a.reaction})." for a in allergies),
        *(prescribing.held_fact(name, why) for name, why in held),
        f"Final diagnosis: {cond.name}.",
    ]
    return Case(
        id=f"synthetic:{seed}-{index:06d}",
        source=Source(
            name=SOURCE_NAME,
            licence=LICENCE,
            attribution=ATTRIBUTION,
            record_id=f"{seed}-{index}",
        ),
        demographics=Demographics(age_years=age, sex=sex),
        presentation=presentation,
        sections=sections,
        timeline=timeline,
        findings=findings,
        medications=meds,
        allergies=allergies,
        conditions=[
            Condition(name=cond.name, status="active", code_system=KB_CODE_SYSTEM, code=cond.id),
            *(
                Condition(name=cond.name, status="active", code_system="ICD-10-CM", code=c)
                for c in cond.icd10[:1]
            ),
        ],
        facts=facts,
        final_diagnosis=cond.name,
    )


def synthesize_cases(
    n: int, *, seed: int = 0, start: int = 0, kb: KnowledgeBase | None = None
) -> Iterator[Case]:
    """Cases ``start .. n-1`` of the stream for ``seed``."""
    kb = kb or load_kb()
    for i in range(start, n):
        yield synthesize_case(i, seed=seed, kb=kb)
