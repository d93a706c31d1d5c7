"""Care that matches the severity the record shows (synthetic cases).

A KB item with a threshold ("non-invasive ventilation if pH <= 7.35 and PaCO2 >= 45",
"manage in a high-dependency unit if osmolality > 350", alteplase "within 4.5 h of last
known well") is either below its trigger in a case, and stays conditional or unused, or
the case meets it, and then the plan does it on day 0, stated as done with its time.
:data:`TRIGGERS` is the one machine-readable table of those items: the generator
(:func:`escalate`, called from ``synthetic.synthesize_case``) acts on it, the renderer
drops the KB's conditional wording of an item the record meets (:func:`still_open`) and
tells what was done (:func:`statements`, :func:`level_of_care`), and the linter
(``build/lint_severity.py``) checks a record against it.

A trigger row holds when all its clauses hold; rows of one (condition, item) are
alternatives (any one brings the item). Clause ids are KB lab/vital ids, or ``age``
(years) and ``onset_hours`` (symptom onset to presentation); ``sign`` is a regex over the
signs. Each row says what the item needs: a KB ``drug`` given (by
``route`` when set; ``route`` without a drug: no plan medicine by mouth; ``replaces``: the
plan drug it stands in for), a ``level`` of care, the KB wording (``pending``) that must no
longer be offered as conditional, and the statement (``done``) that it was done. Signs are the
examination and imaging findings and the reported symptoms.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from behaviorsft.build.event_time import said_minutes
from behaviorsft.records import Case, Event, Medication
from behaviorsft.sources.kb import Condition as KBCondition
from behaviorsft.sources.kb import Dose, Drug, KnowledgeBase, compare

HDU = "high-dependency unit"

# Timeline kinds the generator adds (not course events: timeline_sequence leaves them out).
ESCALATION = "escalation"
LEVEL = "level_of_care"


class Placement(str, Enum):
    """Where the record says a severity statement (``Trigger.at``)."""

    ARRIVAL = "arrival"  # after the triage handover, before the history
    ORDERS = "orders"  # after the examination and the orders, before any result
    PLAN = "plan"  # after the plan: it cites results or the plan's own drugs


@dataclass(frozen=True)
class Trigger:
    """One threshold item: the clauses that bring it and what it then requires."""

    condition: str
    item: str
    when: tuple[tuple[str, str, float], ...] = ()  # (lab/vital id, age, onset_hours; op; value)
    sign: str | None = None  # regex over the signs (examination, imaging, symptoms)
    drug: str | None = None  # KB drug that must be given
    route: str | None = None  # route it must be given by (no drug: no plan medicine PO)
    level: str | None = None  # level of care required
    pending: str | None = None  # KB wording that leaves the item conditional
    done: str | None = None  # regex of the statement that it was done
    say: str | None = None  # what the attending states (``{why}``, ``{t}``: its time)
    covered_by: str | None = None  # another item whose statement includes this one
    replaces: str | None = None  # KB drug of the plan the required drug takes the place of
    after: int = 15  # earliest minute after arrival it is done at (within ``within`` min)
    within: int = 30  # minutes after ``after`` it is done by (5-minute steps)
    first: bool = False  # time-critical: its drug heads the plan (in table order)
    served_by: tuple[str, ...] = ()  # class words of plan drugs that already do it
    recheck: tuple[str, float] | None = None  # (lab id, rise): ``{recheck}``, its value after
    # class words of plan drugs given with it, before it (``{gives}``: "aspirin, ticagrelor
    # and heparin" before primary PCI), so no later turn gives their first dose
    gives: tuple[str, ...] = ()
    at: Placement = Placement.PLAN  # where the record says it, in turn order as in time


# The signs of an airway at risk in anaphylaxis (tongue or throat swelling, stridor,
# hoarseness), as the examination or the complaints say them.
AIRWAY_SIGN = (
    r"(?:angioedema|swelling)[^.;]*\b(?:tongue|throat)\b|\b(?:tongue|throat)\b[^.;]*swelling|"
    r"\bstridor\b|\bhoarse voice\b|\bthroat tightness\b"
)

# (the KB's only systemic steroid for asthma is prednisone: said given here, the nurse's
# "first dose" turn names another drug)
_SEVERE_ASTHMA = (
    "Acute severe asthma ({why}): salbutamol nebulisers with ipratropium added and "
    "prednisone 40 mg PO given {t}, with a senior review; IV magnesium if there is no "
    "response to the first hour of treatment."
)
_LIFE_THREATENING_ASTHMA = (
    "Life-threatening features ({why}): back-to-back salbutamol nebulisers with "
    "ipratropium, prednisone 40 mg PO and IV magnesium sulfate 2 g given {t}; senior "
    "review, and admitted to the high-dependency unit."
)
# EU hyponatraemia 2014: the symptoms that make hyponatraemia severe.
SEVERE_HYPONATRAEMIA_SIGNS = (
    r"\bvomiting|\bseizure|\bsomnolen|reduced (?:level of )?consciousness|\bcoma\b"
)
SEVERE_HYPONATRAEMIA = (
    "Severe symptoms ({sign}) with {why}: 3% saline 150 mL IV over 20 min given {t}; "
    "sodium rechecked 20 minutes after the bolus: {recheck} mmol/L with the symptoms "
    "easing, so no second bolus; fluid restriction once they settle."
)
MODERATE_HYPONATRAEMIA = (
    "Moderately severe symptoms ({sign}) with {why}: a single 3% saline 150 mL IV over 20 "
    "min given {t}; sodium rechecked 20 minutes after the bolus: {recheck} mmol/L, so no "
    "second bolus; fluid restriction to follow."
)
_HDU_SAY = (
    "{why}, past the high-dependency threshold: we manage this in a high-dependency unit, "
    "admitted there {t}."
)

# AHA/ASA 2019: alteplase within 4.5 h of last known well. It is given 30-60 minutes
# after arrival (``after=30`` below), so a stroke that arrives more than 3.5 h after onset
# is past the window by the time it could be given. The generator's stroke onsets
# (build/lint_values.HYPERACUTE_HOURS) stop at this bound, so each one is thrombolysed.
ALTEPLASE_ONSET_HOURS = 3.5

# Class words of the antibacterials (a served_by for "an antibiotic").
ANTIBACTERIAL_WORDS = (
    "penicillin",
    "cephalosporin",
    "carbapenem",
    "tetracycline",
    "macrolide",
    "fluoroquinolone",
    "beta-lactamase",
    "glycopeptide",
    "lipopeptide",
)


def served(t: Trigger, classes: Iterable[str]) -> bool:
    """Whether a drug of ``classes`` (the plan's) already does what ``t`` requires."""
    return bool(t.served_by) and any(w in c.lower() for c in classes for w in t.served_by)


TRIGGERS: tuple[Trigger, ...] = (
    # GINA 2024 / BTS-SIGN 2019: acute severe asthma (HR > 120, RR > 25) brings ipratropium;
    # SpO2 < 92% is life-threatening: IV magnesium and high-dependency care.
    *(
        Trigger(
            "asthma_exacerbation",
            "ipratropium",
            (clause,),
            drug="ipratropium",
            say=_SEVERE_ASTHMA,
            covered_by="IV magnesium",
            at=Placement.ORDERS,  # its reasons are the triage observations
        )
        for clause in (("heart_rate", ">", 120), ("respiratory_rate", ">", 25), ("spo2", "<", 92))
    ),
    Trigger(
        "asthma_exacerbation",
        "IV magnesium",
        (("spo2", "<", 92),),
        drug="magnesium_sulfate",
        level=HDU,
        pending=r"\bIV magnesium if\b",
        say=_LIFE_THREATENING_ASTHMA,
        at=Placement.ORDERS,
    ),
    # GOLD 2024: NIV for pH <= 7.35 with PaCO2 >= 45 mmHg.
    Trigger(
        "copd_exacerbation",
        "non-invasive ventilation",
        (("ph_arterial", "<=", 7.35), ("paco2", ">=", 45)),
        level="respiratory high-dependency unit",
        pending=r"non-invasive ventilation if|escalate to NIV",
        done=r"non-invasive ventilation started",
        say="{why} meets the NIV criterion (pH <= 7.35 with PaCO2 >= 45 mmHg) after {gives} "
        "by nebuliser: non-invasive ventilation started {t}; ICU review if the acidosis "
        "persists on NIV.",
        gives=("beta2-agonist", "muscarinic antagonist"),
    ),
    # GOLD 2024: an exacerbation needing ventilatory support is given an antibiotic (any
    # antibacterial of the plan serves).
    Trigger(
        "copd_exacerbation",
        "antibiotic with ventilatory support",
        (("ph_arterial", "<=", 7.35), ("paco2", ">=", 45)),
        drug="amoxicillin_clavulanate",
        served_by=ANTIBACTERIAL_WORDS,
        say="On non-invasive ventilation: an antibiotic is given as well (GOLD 2024), "
        "{drug} started {t}.",
        after=50,  # once ventilation runs (NIV starts within 15-45 minutes)
    ),
    # JBDS HHS 2015: high-dependency care for osmolality > 350, sodium > 160 or GCS < 12.
    *(
        Trigger(
            "hhs",
            "high-dependency care",
            (clause,),
            level=HDU,
            pending=r"high-dependency unit if",
            say=_HDU_SAY,
        )
        for clause in (("serum_osmolality", ">", 350), ("sodium", ">", 160), ("gcs", "<", 12))
    ),
    # Reduced consciousness: nothing by mouth.
    Trigger(
        "hhs",
        "IV routes",
        sign=r"reduced level of consciousness",
        route="IV",
        say="Reduced level of consciousness: nothing by mouth, so every medicine goes IV.",
    ),
    # JBDS DKA: high-dependency care when severe.
    *(
        Trigger(
            "dka",
            "high-dependency care",
            (clause,),
            level=HDU,
            pending=r"high-dependency setting when severe",
            say="Severe DKA ({why}): admitted to a high-dependency setting {t}.",
        )
        for clause in (
            ("beta_hydroxybutyrate", ">", 6),
            ("bicarbonate", "<", 5),
            ("potassium", "<", 3.5),
            ("gcs", "<", 12),
        )
    ),
    # AHA/ASA 2019: BP below 185/110 before alteplase, alteplase within 4.5 h, CTA for a
    # large-vessel occlusion at once (thrombectomy within 6 h).
    Trigger(
        "ischemic_stroke",
        "CT angiography on arrival",
        (("onset_hours", "<=", 6),),
        pending=r"\bCTA\b",
        done=r"CT angiography",
        # with its result (53-000229: CTA planned, never reported): no occlusion, as the
        # record has no thrombectomy
        say="CT angiography on day 0, to look for a large-vessel occlusion while "
        "thrombectomy is possible (6 h from onset): no large-vessel occlusion, so no "
        "thrombectomy.",
    ),
    *(
        Trigger(
            "ischemic_stroke",
            "blood pressure lowered before alteplase",
            (("onset_hours", "<=", ALTEPLASE_ONSET_HOURS), clause),
            drug="labetalol",
            first=True,
            say="Blood pressure {bp} is above 185/110: IV labetalol brought it below 185/110 "
            "before the alteplase.",
        )
        for clause in (("sbp", ">", 185), ("dbp", ">", 110))
    ),
    Trigger(
        "ischemic_stroke",
        "IV thrombolysis",
        (("onset_hours", "<=", ALTEPLASE_ONSET_HOURS),),
        drug="alteplase",
        first=True,
        level="stroke unit",
        say="Within the 4.5-h thrombolysis window, no haemorrhage on CT and no "
        "contraindication: IV alteplase given {t}; aspirin waits until 24 h after it.",
        after=30,
    ),
    # WAO 2020 / Resuscitation Council UK 2021: IM adrenaline the moment anaphylaxis is
    # recognised (at triage, before the history and the bloods), with oxygen and fluids.
    Trigger(
        "anaphylaxis",
        "IM adrenaline",
        drug="epinephrine",
        first=True,
        done=r"IM adrenaline",
        say="Recognised at triage: IM adrenaline into the anterolateral thigh given {t}, with "
        "high-flow oxygen, before the history was taken; repeat after 5 minutes if there is "
        "no improvement.",
        after=3,
        within=5,
        at=Placement.ARRIVAL,
    ),
    # RCUK 2021 / WAO 2020: tongue or throat swelling, stridor or a hoarse voice is an
    # airway problem: a senior airway assessment (anaesthetist) at once, not a plan that
    # never mentions the airway (53-000525, 47-000427: tongue angioedema, SpO2 falling)
    Trigger(
        "anaphylaxis",
        "airway assessment",
        sign=AIRWAY_SIGN,
        done=r"airway assessed",
        say="Upper-airway involvement ({sign}): the airway assessed by the on-call "
        "anaesthetist {t}, with difficult-airway equipment at the bedside.",
        after=15,
        within=15,
        at=Placement.ORDERS,
    ),
    # ADA 2024: glucose rechecked 15 minutes after treatment, repeated if still low; the
    # recheck shown with its value, not only recorded as done (53-000553)
    Trigger(
        "hypoglycemia",
        "glucose rechecked after treatment",
        (("glucose_poc", "<", 70),),
        drug="dextrose_50",
        done=r"rechecked 15 minutes later",
        say="Capillary glucose {poc} mg/dL at triage: dextrose 50% 25 g IV given {t}, before the "
        "history and the bloods; capillary glucose rechecked 15 minutes later: {recheck} "
        "mg/dL, so no second dose.",
        recheck=("glucose_poc", 60),
        # at once, not after the CT and the bloods (rounds 14-15: dextrose 20-40 minutes
        # after arrival in a confused patient with a glucose of 41 mg/dL)
        after=5,
        within=10,
        first=True,
        at=Placement.ARRIVAL,
    ),
    # ACC/AHA 2013 STEMI: ST elevation brings primary PCI at once (door-to-device <= 90 min),
    # not a day-1 consultant's advice to activate the laboratory; then coronary care.
    Trigger(
        "stemi",
        "primary PCI",
        sign=r"\bST elevation\b",
        level="coronary care unit",
        pending=r"activate the catheterisation laboratory|^primary PCI with|"
        r"^fibrinolysis within 30 min of arrival if PCI cannot",
        done=r"primary PCI",
        say="ST elevation on the ECG: catheterisation laboratory activated, {gives} given "
        "and primary PCI done {t} (door-to-balloon time recorded); to the coronary care unit "
        "after it.",
        gives=("antiplatelet", "P2Y12", "anticoagulant"),
        after=45,
        within=40,
    ),
    # ATA 2016: thyroid storm with signs of heart failure takes short-acting IV
    # beta-blockade (esmolol) in place of oral propranolol.
    Trigger(
        "thyroid_storm",
        "short-acting beta-blocker",
        sign=r"crackles|raised JVP|heart failure|peripheral oedema",
        drug="esmolol",
        replaces="propranolol",
        route="IV",
        say="Signs of heart failure with the storm: short-acting IV esmolol instead of oral "
        "propranolol, titrated to heart rate and blood pressure (ATA 2016), started {t}.",
    ),
    # ATA 2016: thyroid storm is managed in intensive care (the KB's "ICU admission"); so is
    # a hypertensive emergency on IV antihypertensives (ACC/AHA 2017: arterial-line monitoring).
    Trigger("thyroid_storm", "intensive care", level="intensive care unit"),
    Trigger("hypertensive_emergency", "intensive care", level="intensive care unit"),
    # Endocrine Society 2016: adrenal crisis with hypotension needs high-dependency care
    # (fluid resuscitation with hourly observations), not a ward bed.
    Trigger(
        "adrenal_crisis",
        "high-dependency care",
        (("sbp", "<", 90),),
        level=HDU,
        say="Adrenal crisis with hypotension ({why}): admitted to the high-dependency unit "
        "{t}, with hourly observations and fluid balance.",
    ),
    # ACG 2021 / NICE CG141: an upper GI bleed with shock (SBP < 90) is resuscitated in a
    # high-dependency unit before endoscopy.
    Trigger(
        "upper_gi_bleed",
        "high-dependency care",
        (("sbp", "<", 90),),
        level=HDU,
        say="Bleeding with hypotension ({why}): admitted to the high-dependency unit {t}, with "
        "observations at least hourly before the endoscopy.",
    ),
    # ACG LGIB 2023: active extravasation on CT angiography goes to catheter angiography and
    # embolisation the same day, not to a next step on day 2 (the report is the reason: said
    # after the plan).
    Trigger(
        "lower_gi_bleed",
        "embolisation",
        sign=r"active contrast extravasation",
        pending=r"angiographic embolisation for active extravasation",
        done=r"embolis",
        say="Active contrast extravasation on the CT angiogram: interventional radiology "
        "embolised the bleeding vessel, the procedure starting {t}.",
        after=120,
        within=60,
    ),
    # SSC 2021: septic shock (a vasopressor to keep MAP >= 65 mmHg) is cared for in ICU.
    Trigger("sepsis", "intensive care", level="intensive care unit"),
    # ESCMID 2016 / NICE NG240: a CT head before the lumbar puncture delays it, so the
    # empirical antibiotic (with dexamethasone) is given first, after blood cultures
    # (build/event_time.lp_after_ct: the record's LP follows its CT).
    Trigger(
        "bacterial_meningitis",
        "antibiotics before the lumbar puncture",
        drug="ceftriaxone",
        say="CT head before the lumbar puncture: blood cultures taken, then dexamethasone "
        "and ceftriaxone given {t}, not waiting for the lumbar puncture.",
        after=10,
        within=20,
        first=True,
        at=Placement.ORDERS,
    ),
    # IDSA 2004: ampicillin for Listeria over 50 years.
    Trigger(
        "bacterial_meningitis",
        "Listeria cover",
        (("age", ">", 50),),
        drug="ampicillin",
        say="Age {age}, over 50: ampicillin added for Listeria cover {t}.",
    ),
    # IDSA SSTI 2014: cellulitis with systemic signs (fever with tachycardia) is treated IV.
    Trigger(
        "cellulitis",
        "IV antibiotic",
        (("temperature", ">", 38), ("heart_rate", ">", 90)),
        drug="cefazolin",
        replaces="cephalexin",
        pending=r"switch to IV therapy if",
        say="Systemic signs of infection ({why}): IV cefazolin instead of oral treatment, "
        "the first dose {t}.",
    ),
    # UK Kidney Association 2020: ECG changes (or K >= 6.5) bring IV calcium and monitoring,
    # whatever raised the potassium (41-000515: K 6.4 with peaked T waves in adrenal crisis).
    *(
        Trigger(
            cond,
            "cardiac monitoring",
            when,
            sign=sign,
            drug="calcium_gluconate",
            pending=r"cardiac monitoring when" if cond == "hyperkalemia" else None,
            say=say,
            # membrane stabilisation is the first thing done: within minutes, not half an hour
            after=5,
            within=10,
        )
        for cond in ("hyperkalemia", "adrenal_crisis", "aki", "dka")
        for when, sign, say in (
            (
                (("potassium", ">", 5.5),),
                r"peaked T waves|QRS widening",
                "ECG changes with {why}: IV calcium gluconate given {t}, on continuous "
                "cardiac monitoring from arrival.",
            ),
            (
                (("potassium", ">=", 6.5),),
                None,
                "{why}: IV calcium gluconate given {t}, on continuous cardiac monitoring "
                "from arrival.",
            ),
        )
    ),
    # ACG UGIB 2021: restrictive red-cell transfusion below 7 g/dL (the generator's range
    # starts at 7: its day-1 haemoglobin does not show a transfusion).
    Trigger(
        "upper_gi_bleed",
        "red-cell transfusion",
        (("hemoglobin", "<", 7),),
        done=r"red cells transfused",
        say="{why} is below the transfusion threshold (7 g/dL): red cells transfused, the "
        "first unit {t}.",
    ),
    # EU hyponatraemia 2014: severe symptoms (vomiting, seizures, deep somnolence, coma)
    # bring 3% saline at once, sodium rechecked 20 min after each bolus; without them,
    # fluid restriction and no hypertonic saline. The KB's "first line without severe
    # symptoms" is then not the plan's first line.
    Trigger(
        "hyponatremia_siadh",
        "hypertonic saline",
        (("sodium", "<", 130),),
        sign=SEVERE_HYPONATRAEMIA_SIGNS,
        drug="hypertonic_saline_3",
        pending=r"first line for SIADH without severe symptoms",
        say=SEVERE_HYPONATRAEMIA,
        recheck=("sodium", 2),
    ),
    # EU hyponatraemia 2014: moderately severe symptoms (confusion) with profound
    # hyponatraemia (< 125) bring a single 150 mL bolus of 3% saline, not fluid restriction
    # alone (the severe row above comes first where both hold).
    Trigger(
        "hyponatremia_siadh",
        "hypertonic saline",
        (("sodium", "<", 125),),
        sign=r"\bconfusion|\bconfused\b",
        drug="hypertonic_saline_3",
        pending=r"first line for SIADH without severe symptoms",
        say=MODERATE_HYPONATRAEMIA,
        recheck=("sodium", 2),
    ),
    # IDSA 2004 / ESCMID 2016: meningitis with reduced consciousness is cared for in ICU.
    Trigger(
        "bacterial_meningitis",
        "intensive care",
        sign=r"altered mental status|reduced (?:level of )?consciousness|\bconfusion",
        level="intensive care unit",
        pending=r"ICU admission for reduced consciousness",
        say="Meningitis with an altered mental state: admitted to the intensive care unit {t}.",
    ),
    # Severe hypokalaemia (K < 2.5) or ECG changes: IV replacement with cardiac monitoring,
    # the potassium rechecked and the magnesium replaced (Kardalas 2018; KCl injection label).
    Trigger(
        "hypokalemia",
        "IV potassium",
        (("potassium", "<", 2.5),),
        drug="potassium_chloride",
        route="IV",
        say="{why} is below 2.5, so the potassium chloride goes in IV on a cardiac monitor, "
        "started {t}; potassium rechecked every 4-6 h and magnesium checked and replaced "
        "if low.",
    ),
    Trigger(
        "hypokalemia",
        "IV potassium",
        (("potassium", "<", 3.5),),
        sign=r"U waves|ST depression|T-wave flattening|\bQU\b|arrhythmi|ectopics",
        drug="potassium_chloride",
        route="IV",
        say="ECG changes with {why}, so the potassium chloride goes in IV, up to 10 mEq/h "
        "through a peripheral line, on a cardiac monitor, started {t}; potassium rechecked "
        "every 4-6 h and magnesium checked and replaced if low.",
    ),
    # SSC 2021: 30 mL/kg crystalloid for hypotension or lactate >= 4.
    *(
        Trigger("sepsis", "crystalloid", (clause,), drug="lactated_ringers")
        for clause in (("lactate", ">=", 4), ("sbp", "<", 90))
    ),
    # AASLD 2021: albumin when creatinine > 1, BUN > 30 or bilirubin > 4.
    *(
        Trigger("spontaneous_bacterial_peritonitis", "albumin", (clause,), drug="albumin_human")
        for clause in (("creatinine", ">", 1), ("bun", ">", 30), ("bilirubin_total", ">", 4))
    ),
    # ESC 2023 ACS: a haemoglobin below the (male) reference in an NSTEMI on antiplatelet
    # and anticoagulant drugs is weighed as bleeding risk, not left flagged and unsaid
    # (41-000024: haemoglobin 11.6 on DAPT and enoxaparin, never addressed).
    Trigger(
        "nstemi",
        "bleeding risk",
        (("hemoglobin", "<", 13.8),),
        done=r"bleeding risk weighed",
        say="{why} with antiplatelet and anticoagulant treatment: bleeding risk weighed in "
        "the plan, haemoglobin rechecked daily and any fall investigated.",
    ),
    # ACR 2020: a raised creatinine in a gout flare is said and acted on (no NSAID:
    # prescribing.BARRED_BY_VALUE), not left flagged (43-000462, 43-000420).
    Trigger(
        "acute_gout",
        "renal function",
        (("creatinine", ">", 1.1),),
        done=r"reduced renal function, so no NSAID",
        say="{why}: reduced renal function, so no NSAID for the flare; creatinine rechecked "
        "tomorrow.",
    ),
    # A flagged cardiac marker is read, not left unsaid (round 10: 43-000035, troponin 22 and
    # BNP 446 in AF; 43-000363, troponin 23 in decompensated heart failure). ESC AF 2024: a
    # mild troponin rise with a fast rate is demand-related; a raised BNP leaves a reduced
    # LVEF possible (no diltiazem: prescribing.BARRED_BY_VALUE). ESC HF 2021: low-level
    # troponin is common in heart failure; an ACS is sought with ischaemic pain or ECG change.
    Trigger(
        "atrial_fibrillation_rvr",
        "troponin read",
        (("troponin_t_hs", ">", 14),),
        done=r"a mild rise the fast rate explains",
        say="{why}: a mild rise the fast rate explains (demand), not an infarction on its own.",
    ),
    Trigger(
        "atrial_fibrillation_rvr",
        "BNP read",
        (("bnp", ">", 100),),
        done=r"a failing ventricle cannot be excluded",
        say="{why}: a failing ventricle cannot be excluded, so rate control without diltiazem.",
    ),
    Trigger(
        "acute_decompensated_heart_failure",
        "troponin read",
        (("troponin_t_hs", ">", 14),),
        done=r"a low-level rise, common in decompensated heart failure",
        say="{why}: a low-level rise, common in decompensated heart failure, not an "
        "infarction on its own.",
    ),
    # ESC 2019: systemic thrombolysis for high-risk PE (SBP < 90).
    Trigger("pulmonary_embolism", "systemic thrombolysis", (("sbp", "<", 90),), drug="alteplase"),
)

# A contraindication (drug, KB lab id) the plan corrects before the drug, by the drug
# named, and the value it brings the lab to (AHA/ASA 2019: BP below 185/110 with labetalol
# before alteplase).
CORRECTED_BY: dict[tuple[str, str], tuple[str, float]] = {
    ("alteplase", "sbp"): ("labetalol", 180),
    ("alteplase", "dbp"): ("labetalol", 105),
}

# How a clause's value is named in a statement (values as the record's tables give them).
_LABELS = {
    "heart_rate": "heart rate {v}/min",
    "respiratory_rate": "respiratory rate {v}/min",
    "spo2": "SpO2 {v}%",
    "ph_arterial": "pH {v}",
    "paco2": "PaCO2 {v} mmHg",
    "serum_osmolality": "measured osmolality {v} mOsm/kg",
    "sodium": "sodium {v} mmol/L",
    "beta_hydroxybutyrate": "beta-hydroxybutyrate {v} mmol/L",
    "bicarbonate": "bicarbonate {v} mmol/L",
    "potassium": "potassium {v} mmol/L",
    "onset_hours": "onset {v} hour(s) ago",
    "temperature": "temperature {v} degC",
    "hemoglobin": "haemoglobin {v} g/dL",
    "creatinine": "creatinine {v} mg/dL",
    "troponin_t_hs": "high-sensitivity troponin T {v} ng/L",
    "bnp": "BNP {v} pg/mL",
    "age": "age {v}",
    "sbp": "systolic blood pressure {v} mmHg",
}


def corrected(drug_id: str, lab: str, plan_ids: Iterable[str]) -> bool:
    """Whether the plan corrects ``drug_id``'s contraindication on ``lab`` before giving it
    (``CORRECTED_BY``)."""
    fix = CORRECTED_BY.get((drug_id, lab))
    return fix is not None and fix[0] in plan_ids


def triggers_for(condition_id: str) -> list[Trigger]:
    return [t for t in TRIGGERS if t.condition == condition_id]


def owned(condition_id: str, drug_id: str) -> bool:
    """Whether ``drug_id`` is given in ``condition_id`` only when a trigger's threshold is
    met (3% saline for severe hyponatraemia): never as the plan's fallback drug."""
    return any(t.drug == drug_id for t in triggers_for(condition_id))


def row_holds(t: Trigger, values: dict[str, float], signs: Iterable[str]) -> bool:
    """Whether every clause of ``t`` holds (an unmeasured value holds nothing)."""
    if t.sign is not None and not any(re.search(t.sign, s, re.I) for s in signs):
        return False
    for lab, op, threshold in t.when:
        v = values.get(lab)
        if v is None or not compare(v, op, threshold):  # type: ignore[arg-type]
            return False
    return True


def met(condition_id: str, values: dict[str, float], signs: Iterable[str]) -> dict[str, Trigger]:
    """The items whose trigger the record meets: item -> its first row that holds."""
    signs = list(signs)
    out: dict[str, Trigger] = {}
    for t in triggers_for(condition_id):
        if t.item not in out and row_holds(t, values, signs):
            out[t.item] = t
    return out


def _fmt(v: float) -> str:
    return f"{v:g}"


def _as_table(v: float, decimals: int) -> str:
    """A value as the record's tables print it (``synthetic.fmt_value``)."""
    return f"{v:.{decimals}f}" if decimals else str(round(v))


def _why(rows: list[Trigger], values: dict[str, float], shown: dict[str, str]) -> str:
    parts: list[str] = []
    for t in rows:
        for lab, _, _ in t.when:
            label = _LABELS.get(lab)
            if label is None:
                continue
            v = shown.get(lab, _fmt(values[lab]))
            text = label.format(v=v).replace("hour(s)", "hour" if v == "1" else "hours")
            if text not in parts:
                parts.append(text)
    return ", ".join(parts)


def record_values(kb: KnowledgeBase, case: Case) -> tuple[dict[str, float], list[str]]:
    """Day-0 values of a case by KB id (with age and onset hours) and its signs
    (examination and imaging findings, reported symptoms)."""
    by_name = {lab.name: lid for lid, lab in kb.labs.items()}
    values: dict[str, float] = {}
    signs: list[str] = []
    signs += [f[len("Reports ") :] for f in case.facts if f.startswith("Reports ")]
    for f in case.findings:
        if f.kind in ("exam", "imaging") and f.value_text:
            signs.append(f.value_text)
        if f.day == 0 and f.value is not None and f.name in by_name:
            values.setdefault(by_name[f.name], f.value)
    if case.demographics.age_years is not None:
        values["age"] = case.demographics.age_years
    onset = next((e.day for e in case.timeline if e.kind == "symptom" and e.day), None)
    if onset is not None and onset < 0:
        values["onset_hours"] = -onset * 24
    return values, signs


def still_open(kb: KnowledgeBase, case: Case, condition_id: str, text: str) -> bool:
    """Whether KB ``text`` may still be offered as it stands: it does not leave an item the
    record meets conditional ("escalate to NIV if acidosis persists" after NIV started)."""
    pendings = [t.pending for t in triggers_for(condition_id) if t.pending]
    if not any(re.search(p, text, re.I) for p in pendings):
        return True
    values, signs = record_values(kb, case)
    return not any(
        t.pending and re.search(t.pending, text, re.I)
        for t in met(condition_id, values, signs).values()
    )


def _join_names(names: list[str]) -> str:
    """The plan drugs a statement gives, joined ("aspirin, ticagrelor and heparin")."""
    if not names:
        return "the first treatment"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def statements(case: Case) -> list[str]:
    """What the team did on day 0 because of the severity the record shows."""
    return [e.text for e in case.timeline if e.kind == ESCALATION]


def _said(say: str) -> re.Pattern[str]:
    """A statement template (``Trigger.say``) as a pattern: its own words, any text for
    each ``{field}``."""
    parts = re.split(r"\{\w+\}", say)
    if not parts[0]:
        raise ValueError(f"a statement said before the plan opens with a field: {say!r}")
    return re.compile(".*?".join(map(re.escape, parts)), re.S)


def _before_plan() -> tuple[tuple[re.Pattern[str], Placement], ...]:
    """The statements said before the plan, each with its trigger's placement (all others
    are said with the plan); one statement has one placement."""
    at: dict[str, Placement] = {}
    for t in TRIGGERS:
        if t.say is None:
            continue
        if at.setdefault(t.say, t.at) is not t.at:
            raise ValueError(f"one statement placed at {at[t.say]} and {t.at}: {t.say!r}")
    return tuple((_said(say), a) for say, a in at.items() if a is not Placement.PLAN)


_SAID_BEFORE_PLAN = _before_plan()


def placement(text: str) -> Placement:
    """Where a severity statement ``text`` is said: its trigger's ``at``, for the trigger
    whose statement it is (``text`` opens with the whole statement); PLAN for any other."""
    return next((at for said, at in _SAID_BEFORE_PLAN if said.match(text)), Placement.PLAN)


# A plan drug the severity statements already said given before the plan (53-000477: IV
# magnesium 2 g given 30 minutes after arrival, then "Magnesium sulfate 2 g IV once" in the
# plan): a one-off dose is not ordered again, a course goes on from the dose given.
ALREADY_GIVEN = "already given, not repeated"
CONTINUING = "continuing from the dose already given"
_GIVEN = re.compile(r"\bgiven\b")
_SENTENCE_END = re.compile(r"[.;]")
_NAME_WORD = re.compile(r"[a-z]{5,}")


def given_before(name: str, said: Iterable[str]) -> bool:
    """Whether a sentence of ``said`` gives the drug ``name`` ('Albuterol (salbutamol)':
    'salbutamol nebulisers ... given')."""
    words = _NAME_WORD.findall(name.lower())
    for text in said:
        low = text.lower()
        if "given" not in low or not any(w in low for w in words):
            continue  # (most turns: no need to split them)
        for sentence in _SENTENCE_END.split(low):
            if _GIVEN.search(sentence) and any(w in sentence for w in words):
                return True
    return False


def after_given(regimen: str, name: str, frequency: str, said: Sequence[str]) -> str:
    """The plan's ``regimen`` of drug ``name`` said against the doses ``said`` given before
    the plan: a one-off dose already given is not repeated, a course continues from it."""
    if not said or not given_before(name, said):
        return regimen
    once = re.search(r"\bonce\b(?! daily)", frequency, re.I) is not None
    return f"{regimen}: {ALREADY_GIVEN}" if once else f"{regimen}, {CONTINUING}"


def level_of_care(case: Case) -> str | None:
    """Where the patient is cared for after day 0, when severity set it ('the
    high-dependency unit')."""
    return next((e.text for e in case.timeline if e.kind == LEVEL), None)


def _by_vein(
    drug: Drug, med: Medication, to_medication: Callable[[Drug, Dose], Medication]
) -> Medication:
    """``med`` given IV: the drug's KB IV dose, or the same (possibly renally adjusted) dose
    IV where the KB says 'same dose IV'; unchanged when it has no IV form."""
    for d in drug.doses:
        if d.route == "IV":
            return to_medication(drug, d)
    if any("same dose IV" in (d.note or "") for d in drug.doses):
        return med.model_copy(update={"route": "IV"})
    return med


def escalate(
    kb: KnowledgeBase,
    cond: KBCondition,
    values: dict[str, float],
    signs: list[str],
    plan: list[Medication],
    plan_ids: list[str],
    *,
    usable: Callable[[Drug, dict[str, float]], bool],
    prescribe: Callable[[Drug, Dose | None], None],
    to_medication: Callable[[Drug, Dose], Medication],
    rng: random.Random,
) -> list[Event]:
    """Do on day 0 what the case's severity requires (``TRIGGERS``): give the drugs (by
    the route required; a drug barred only by what an earlier item corrects, the blood
    pressure before alteplase, once it is corrected), and return the day-0 events that
    state it, each with its time, and the level of care."""
    due = met(cond.id, values, signs)
    if not due:
        return []
    after = dict(values)  # values once the earlier items have acted
    events: list[Event] = []
    shown = {
        k: _fmt(v) if k not in kb.labs else _as_table(v, kb.labs[k].decimals)
        for k, v in values.items()
    }
    level: str | None = None
    front = 0  # where the next time-critical drug goes in the plan
    for item, t in due.items():
        if served(t, (kb.drug(d).drug_class for d in plan_ids)):
            continue  # (an antibiotic the plan already gives)
        if t.drug is not None and t.drug not in plan_ids:
            drug = kb.drug(t.drug)
            if not usable(drug, after) and t.served_by:
                # another drug of the condition that serves (doxycycline for a penicillin
                # allergy), stated by its own name
                other = next(
                    (
                        kb.drug(x.drug)
                        for x in cond.treatments.drugs
                        if served(t, [kb.drug(x.drug).drug_class])
                        and usable(kb.drug(x.drug), after)
                    ),
                    None,
                )
                drug = other or drug
            if not usable(drug, after):
                continue  # (an allergy): nothing done, nothing stated
            td = next((x for x in cond.treatments.drugs if x.drug == drug.id), None)
            prescribe(drug, td.dose if td is not None else None)
            if t.replaces is not None and t.replaces in plan_ids:
                k = plan_ids.index(t.replaces)
                del plan[k], plan_ids[k]
            if t.first:
                plan.insert(front, plan.pop())
                plan_ids.insert(front, plan_ids.pop())
                front += 1
        for (_, lab), (by, value) in CORRECTED_BY.items():
            if by == t.drug and by in plan_ids and lab in after:
                after[lab] = min(after[lab], value)
        if t.route == "IV":
            for i, med in enumerate(plan):
                if med.route != "PO" or (t.drug is not None and plan_ids[i] != t.drug):
                    continue
                plan[i] = _by_vein(kb.drug(plan_ids[i]), med, to_medication)
        if t.level is not None:
            level = t.level
        if t.say is not None and (t.covered_by is None or t.covered_by not in due):
            rows = [
                r for r in triggers_for(cond.id) if r.item == item and row_holds(r, values, signs)
            ]
            recheck = "" if t.recheck is None else _fmt(values[t.recheck[0]] + t.recheck[1])
            seen = [m[0] for x in signs if t.sign and (m := re.search(t.sign, x, re.I))]
            text = t.say.format(
                sign=seen[0].lower() if seen else "",
                why=_why(rows, values, shown),
                recheck=recheck,
                t=f"{said_minutes(t.say, t.after, t.within, rng)} minutes after arrival",
                age=shown.get("age", ""),
                bp=f"{shown.get('sbp', '')}/{shown.get('dbp', '')}",
                poc=shown.get("glucose_poc", ""),
                drug=kb.drug(
                    next((d for d in plan_ids if served(t, [kb.drug(d).drug_class])), t.drug or "")
                ).name.lower()
                if t.served_by
                else "",
                gives=_join_names(
                    [
                        kb.drug(d).name.split(" (")[0].lower()
                        for d in plan_ids
                        if any(w in (kb.drug(d).drug_class or "") for w in t.gives)
                    ]
                ),
            )
            if not text.startswith("pH"):
                text = text[0].upper() + text[1:]
            events.append(Event(day=0, kind=ESCALATION, text=text))
    if level is not None:
        events.append(Event(day=0, kind=LEVEL, text=f"the {level}"))
    return events


# ----------------------------------------------------------------------------- review

# How often a unit reviews its patient and what it watches (the family is told; a ward
# patient is reviewed daily). Units of critical care take no ward physiotherapy plan in the
# first days; a stroke unit or a respiratory high-dependency unit keeps its therapists.
UNIT_REVIEW: dict[str, str] = {
    "intensive care": "continuous monitoring and a consultant review at least twice a day",
    "coronary care": "continuous ECG monitoring and a senior review at least twice a day",
    "high-dependency": "observations at least hourly and a senior review at least twice a day",
    "stroke unit": "neurological observations and a senior review at least twice a day",
}
# (when the family hears next, not "we'll review progress daily")
WARD_REVIEW = "we'll talk with you again tomorrow morning, once we've seen how the night went"
# Conditions with a review of their own on the ward (RCUK 2021: observation after
# anaphylaxis, as a biphasic reaction can follow).
CONDITION_REVIEW: dict[str, str] = {
    "anaphylaxis": "treatment has started; we'll keep observing closely for at least 12 hours, "
    "as the reaction can come back, with observations hourly at first",
    # ADA 2024: glucose rechecked until stable; a sulfonylurea's effect outlasts the first
    # correction, so monitoring continues for a day or more
    "hypoglycemia": "treatment has started; we'll keep checking the glucose, for a day or "
    "more if a sulfonylurea caused it, as it can drop again",
}
NO_PHYSIO_LEVELS = frozenset({"intensive care unit", "coronary care unit", HDU})
# Conditions whose stay is short and has no physiotherapy: an anaphylaxis observed after
# adrenaline, a lower urinary tract infection.
NO_PHYSIO_CONDITIONS = frozenset({"anaphylaxis", "uncomplicated_cystitis"})
VASOPRESSOR = "vasopressor"


# Conditions treated from the emergency department without admission (IDSA 2010 / NICE
# NG109: an afebrile lower urinary tract infection): a urine sample and the renal function
# the antibiotic is dosed by (AGS Beers 2023: nitrofurantoin), not a full admission work-up;
# home on the first dose; the culture result and a follow-up by telephone, no ward round.
OUTPATIENT = frozenset({"uncomplicated_cystitis"})
OUTPATIENT_REVIEW = (
    "it can be treated at home, so you can go home today on the antibiotic; we'll phone "
    "with the urine culture result"
)
DISCHARGED = "Discharged home from the emergency department on the antibiotic, with advice "
DISCHARGED += "to come back with fever, flank pain or no improvement in 48 hours."
# what an outpatient's work-up sends (its blood results are ordered too: 43-000213)
SAMPLE = "a urine sample and bloods for renal function before the antibiotic"
FOLLOW_UP = "Day 2 telephone follow-up"


def outpatient(cond_id: str | None) -> bool:
    """Whether the condition is treated without admission (no ward, no ward round)."""
    return cond_id in OUTPATIENT


def unit_of(case: Case) -> str | None:
    """The unit a patient is cared for in after day 0: the level severity set, or intensive
    care for a patient on a vasopressor ('the intensive care unit'); None: a ward."""
    level = level_of_care(case)
    if level is not None:
        return level
    if any(VASOPRESSOR in (m.drug_class or "") for m in case.medications):
        return "the intensive care unit"
    return None


def review_words(unit: str | None, cond_id: str | None = None) -> str:
    """What the family is told of the review after 'treatment has started': daily on the
    ward (or the condition's own observation), the unit's monitoring and twice-daily
    senior reviews in a unit."""
    if unit is None and outpatient(cond_id):
        return f"treatment has started; {OUTPATIENT_REVIEW}"
    if unit is None:
        return CONDITION_REVIEW.get(cond_id or "", f"treatment has started and {WARD_REVIEW}")
    name = unit if unit.startswith("the ") else f"the {unit}"
    for words, review in UNIT_REVIEW.items():
        if words in unit:
            return f"treatment has started in {name}, with {review}"
    return f"treatment has started in {name}, with close monitoring"


def physiotherapy_due(cond_id: str, levels: Iterable[str], classes: Iterable[str]) -> bool:
    """Whether the first days of an admission include a physiotherapy assessment: not in
    a short stay (anaphylaxis, cystitis), nor in intensive, coronary or high-dependency care
    (its ``levels``; a vasopressor among the plan's drug ``classes``)."""
    if cond_id in NO_PHYSIO_CONDITIONS:
        return False
    if any(level.removeprefix("the ") in NO_PHYSIO_LEVELS for level in levels):
        return False
    return not any(VASOPRESSOR in c for c in classes)


# Tokyo Guidelines 2018 severity of acute cholecystitis: grade III with organ dysfunction
# (hypotension, reduced consciousness, creatinine > 2.0 mg/dL, INR > 1.5, platelets <
# 100 x10^3/uL); grade II with WBC > 18 x10^3/uL, a palpable tender mass in the right
# upper quadrant, complaints for more than 72 h or marked local inflammation; else grade I.
_TG18_MARKED = re.compile(r"\bgangren\w*|\bemphysematous\b|\babscess\b|\bperitonitis\b", re.I)


def tg18_grade(
    labs: dict[str, float], sbp: float | None, exam: str, imaging: str, days: float, confused: bool
) -> str:
    """The TG18 severity grade ("I", "II", "III") of acute cholecystitis in this record:
    ``labs`` day-0 values by name, the systolic pressure, the examination and study text,
    the days since onset, and whether the patient is confused."""
    if (
        (sbp is not None and sbp < 90)
        or confused
        or labs.get("Creatinine", 0) > 2.0
        or labs.get("INR", 0) > 1.5
        or labs.get("Platelet count", 1000) < 100
    ):
        return "III"
    marked = _TG18_MARKED.search(imaging) is not None and not re.search(r"\bno\b", imaging)
    if (
        labs.get("White blood cell count", 0) > 18
        or re.search(r"\bpalpable tender (?:gallbladder|mass)\b", exam, re.I)
        or days > 3
        or marked
    ):
        return "II"
    return "I"
