"""Clinical linter, values and timing: physiology a record's results must obey.

The checks here read one case (its findings, medicines, timeline and presentation) or one
conversation (its turns and tables) as raw JSON, like the rest of ``lint.py``, which calls
:func:`check_case` and :func:`check_conversation` and registers :data:`VALUE_RULES`.

The formulas and bounds are also what the synthetic generator uses to make its values
(``sources/synthetic.py``), so a generated record passes by construction:

- haematocrit about three times haemoglobin (MCHC 30-37 g/dL gives Hct/Hb 2.7-3.3);
- eGFR by the race-free CKD-EPI 2021 creatinine equation (Inker et al., NEJM 2021);
- measured serum osmolality not below the calculated ``2 Na + glucose/18 + BUN/2.8``
  by more than the normal osmolal gap (10 mOsm/kg);
- arterial pH by Henderson-Hasselbalch, ``6.1 + log10(HCO3 / (0.0307 x PaCO2))``;
- anion gap ``Na - (Cl + HCO3)``;
- capillary glucose within 15 mg/dL or 20% of serum glucose drawn at the same time
  (ISO 15197:2013 accepts 15 mg/dL / 15% for meters);
- day-over-day changes within what the analyte's kinetics allow (:data:`DAILY_LIMITS`);
- cultures reported as pending on the day they are taken (a blood culture flags after
  about 12-48 h), body-fluid counts only with the procedure that samples them;
- hyperacute conditions presenting within hours, and time-critical drugs inside their
  window (alteplase within 4.5 h of onset in ischaemic stroke: AHA/ASA 2019);
- a study report stating one finding, not "A or B";
- oxygenation, acid-base and rate coherence (session 8): pulse oximetry within
  :data:`SPO2_TOLERANCE` of the saturation the same draw's PaO2 gives on the oxyhaemoglobin
  dissociation curve (Severinghaus 1979, corrected for pH and PaCO2); the arterial pattern
  the condition's primary disorder makes (:data:`EXPECTED_ACID_BASE`) with its expected
  compensation; a sinus rate at most :data:`SINUS_MAX_SHARE` of the age-predicted maximum
  (220 - age); a BNP or NT-proBNP above its reference in a patient with known heart failure;
  a qualitative result (``detected``) never called "outside the reference range"; a blood
  gas reported whole (:data:`BLOOD_GAS`), not one value of it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Iterator
from typing import Any

from behaviorsft.build.event_time import FINAL_CULTURE_DAYS, culture_report, slow_result
from behaviorsft.build.lint_common import LAY_ROLES as _LAY
from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.build.lint_common import kb_code as _condition
from behaviorsft.build.lint_common import num as _num
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.severity import ALTEPLASE_ONSET_HOURS

VALUE_RULES: dict[str, tuple[Any, str]] = {
    "derived-value-mismatch": ("error", "a derived result disagrees with its inputs"),
    "kinetics-implausible": (
        "error",
        "a result changes faster (or slower) than its kinetics allow",
    ),
    "result-timing": ("error", "a slow result (culture) reported on the day it was taken"),
    "sample-not-taken": (
        "error",
        "a body-fluid, sputum, stool or swab result without the procedure or sample it needs",
    ),
    "result-unordered": (
        "error",
        "a synthetic record shows blood results while no turn up to them orders bloods",
    ),
    "result-too-fast": (
        "error",
        "a slow result (sputum AFB smear, TB NAAT, serum tryptase) reported with the first bloods",
    ),
    "onset-implausible": ("error", "history too long for a hyperacute condition, or too short"),
    "outside-time-window": ("error", "a time-critical drug given outside its window"),
    "report-ambiguous": ("error", "a study report states two alternative findings"),
    "marker-before-rise": (
        "error",
        "a cardiac marker of infarction higher than the hours since onset allow",
    ),
    "oxygenation-mismatch": (
        "error",
        "pulse oximetry disagrees with the same draw's PaO2 (dissociation curve)",
    ),
    "acid-base-pattern": (
        "error",
        "the blood gas shows another primary disorder than the condition's, or it is "
        "compensated beyond the expected range",
    ),
    "blood-gas-partial": ("error", "one value of a blood gas reported without the rest"),
    "rate-implausible": ("error", "a sinus heart rate above the age-predicted maximum"),
    "history-result-mismatch": (
        "error",
        "a natriuretic peptide within its reference range in known heart failure",
    ),
    "qualitative-as-range": (
        "error",
        "a qualitative result (detected, positive) called outside a reference range",
    ),
    "value-impossible": (
        "error",
        "a value no living patient has (outside the KB test's bounds), in a record or a note",
    ),
    "electrolyte-pattern": (
        "error",
        "sodium, chloride, bicarbonate and anion gap imply a chloride or gap no patient with "
        "the condition has, or the wrong metabolic acid-base direction",
    ),
}


# --------------------------------------------------------------------------- physiology


def ckd_epi_2021(creatinine_mg_dl: float, age: float, sex: str | None) -> float:
    """eGFR (mL/min/1.73 m2) by the race-free CKD-EPI 2021 creatinine equation."""
    female = sex == "female"
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine_mg_dl / kappa
    egfr = 142 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938**age
    return egfr * (1.012 if female else 1.0)


def calculated_osmolality(sodium: float, glucose_mg_dl: float, bun_mg_dl: float) -> float:
    """Calculated serum osmolality (mOsm/kg): 2 Na + glucose/18 + BUN/2.8."""
    return 2 * sodium + glucose_mg_dl / 18 + bun_mg_dl / 2.8


def henderson_hasselbalch_ph(paco2_mmhg: float, hco3: float) -> float:
    """Arterial pH from PaCO2 (mmHg) and bicarbonate (mmol/L)."""
    return 6.1 + math.log10(hco3 / (0.0307 * paco2_mmhg))


def paco2_for(ph: float, hco3: float) -> float:
    """The PaCO2 (mmHg) that ``ph`` and ``hco3`` imply (Henderson-Hasselbalch solved)."""
    return hco3 / (0.0307 * 10 ** (ph - 6.1))


def winters_paco2(hco3: float) -> float:
    """Expected PaCO2 (mmHg, +/- 2) in a compensated metabolic acidosis: 1.5 HCO3 + 8."""
    return 1.5 * hco3 + 8


def hco3_for(ph: float, paco2_mmhg: float) -> float:
    """The bicarbonate that makes ``ph`` at ``paco2_mmhg`` (Henderson-Hasselbalch solved)."""
    return 0.0307 * paco2_mmhg * 10 ** (ph - 6.1)


def severinghaus_saturation(pao2_mmhg: float, ph: float = 7.40, paco2_mmhg: float = 40.0) -> float:
    """Oxyhaemoglobin saturation (%) at ``pao2_mmhg`` by Severinghaus's (1979) equation,
    the PO2 first brought to standard conditions for the Bohr shift (his correction:
    x 10^(0.40 (pH - 7.40) + 0.06 log10(40 / PaCO2)); blood gases are reported at 37 degC)."""
    po2 = pao2_mmhg * 10 ** (0.40 * (ph - 7.40) + 0.06 * math.log10(40.0 / paco2_mmhg))
    return 100.0 / (23400.0 / (po2**3 + 150.0 * po2) + 1.0)


def pao2_for_saturation(saturation: float, ph: float = 7.40, paco2_mmhg: float = 40.0) -> float:
    """The PaO2 (mmHg) at which :func:`severinghaus_saturation` gives ``saturation`` (%)."""
    lo, hi = 1.0, 700.0
    for _ in range(50):  # bisection: the curve rises monotonically
        mid = (lo + hi) / 2
        if severinghaus_saturation(mid, ph, paco2_mmhg) < saturation:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# Acid-base normal ranges (arterial) and the primary disorder a record's gas shows.
NORMAL_PACO2 = (35.0, 45.0)
NORMAL_HCO3 = (22.0, 26.0)
RESP_ALKALOSIS = "respiratory alkalosis"
RESP_ACIDOSIS = "respiratory acidosis"
MET_ALKALOSIS = "metabolic alkalosis"
MET_ACIDOSIS = "metabolic acidosis"
NO_DISORDER = "no acid-base disorder"


def acid_base_disorder(ph: float, paco2_mmhg: float, hco3: float) -> str:
    """The primary disorder of a gas: none when PaCO2 and HCO3 are both normal; else, on the
    side of 7.40 the pH lies, the component that moves the pH that way the most (the
    respiratory term log10(40 / PaCO2) or the metabolic one log10(HCO3 / 24))."""
    if (
        NORMAL_PACO2[0] <= paco2_mmhg <= NORMAL_PACO2[1]
        and NORMAL_HCO3[0] <= hco3 <= NORMAL_HCO3[1]
    ):
        return NO_DISORDER
    resp, met = math.log10(40.0 / paco2_mmhg), math.log10(hco3 / 24.0)
    if ph >= 7.40:
        return RESP_ALKALOSIS if resp >= met else MET_ALKALOSIS
    return RESP_ACIDOSIS if resp <= met else MET_ACIDOSIS


def compensation_range(disorder: str, paco2_mmhg: float, hco3: float) -> tuple[str, float, float]:
    """The expected compensation of a primary disorder, as (the compensating quantity, its
    lowest, its highest expected value); the bedside rules (Berend, Seifter):

    - respiratory alkalosis: HCO3 falls 2 (acute) to 5 (chronic) mmol/L per 10 mmHg of PaCO2;
    - respiratory acidosis: HCO3 rises 1 (acute) to 4 (chronic) mmol/L per 10 mmHg;
    - metabolic acidosis: PaCO2 1.5 HCO3 + 8 +/- 2 (Winter's formula);
    - metabolic alkalosis: PaCO2 rises about 0.7 mmHg per mmol/L of HCO3 (+/- 5).
    """
    if disorder == RESP_ALKALOSIS:
        fall = 40.0 - paco2_mmhg
        return "HCO3", 24.0 - 0.5 * fall, 24.0 - 0.2 * fall
    if disorder == RESP_ACIDOSIS:
        rise = paco2_mmhg - 40.0
        return "HCO3", 24.0 + 0.1 * rise, 24.0 + 0.4 * rise
    if disorder == MET_ACIDOSIS:
        return "PaCO2", winters_paco2(hco3) - 2.0, winters_paco2(hco3) + 2.0
    expected = 40.0 + 0.7 * (hco3 - 24.0)
    return "PaCO2", expected - 5.0, expected + 5.0


def max_sinus_rate(age_years: float) -> float:
    """The fastest plausible sinus rate at an age: :data:`SINUS_MAX_SHARE` of 220 - age."""
    return SINUS_MAX_SHARE * (220.0 - age_years)


# Haematocrit (%) over haemoglobin (g/dL) is 100 / MCHC; MCHC 30-37 g/dL.
HCT_HB_RATIO = (2.7, 3.3)
OSMOLAL_GAP_MIN = -10.0  # mOsm/kg: a measured value further below the calculated one is wrong
PH_TOLERANCE = 0.03
# Shown pH and serum bicarbonate below this (metabolic acidosis) without a PaCO2: the PaCO2
# they imply must be within WINTERS_TOLERANCE of Winter's formula (its own +/-2, plus
# rounding): pH 6.91 with HCO3 16 implies a PaCO2 of 81 in a patient breathing off CO2.
ACIDOSIS_HCO3 = 22.0
WINTERS_TOLERANCE = 5.0
ANION_GAP_TOLERANCE = 2.0
EGFR_TOLERANCE = (5.0, 0.2)  # absolute mL/min/1.73 m2, or this share of the computed value
GLUCOSE_POC_TOLERANCE = (15.0, 0.2)  # mg/dL, or this share of serum glucose

# Pulse oximetry reads within about 2-3 points (Arms <= 3%, ISO 80601-2-61) of the arterial
# saturation; plus rounding of the shown SpO2 and PaO2.
SPO2_TOLERANCE = 4.0
# The primary acid-base disorder each condition's blood gas shows (KB condition id). A
# normal or rising PaCO2 in acute asthma is a sign of exhaustion (BTS/SIGN 2019: a
# life-threatening feature), not an ordinary exacerbation, so asthma keeps a low PaCO2.
EXPECTED_ACID_BASE: dict[str, str] = {
    "asthma_exacerbation": RESP_ALKALOSIS,
    "pulmonary_embolism": RESP_ALKALOSIS,
    "copd_exacerbation": RESP_ACIDOSIS,  # acute on chronic: HCO3 raised
    "dka": MET_ACIDOSIS,
}
# The metabolic pattern of a condition's serum electrolytes (KB condition id): vomiting
# or diuretics lose chloride (a hypochloraemic metabolic alkalosis: Gennari 1998), DKA adds
# ketoacids (a high-anion-gap acidosis), diarrhoea loses bicarbonate (a hyperchloraemic,
# normal-gap acidosis). A panel that shows Na, HCO3 and Cl or the anion gap (so the fourth
# is implied by Na = Cl + HCO3 + AG) must show it (:func:`electrolyte_problem`).
HYPOCHLORAEMIC_ALKALOSIS = "hypochloraemic metabolic alkalosis"
HIGH_GAP_ACIDOSIS = "high-anion-gap metabolic acidosis"
NORMAL_GAP_ACIDOSIS = "normal-anion-gap metabolic acidosis"
METABOLIC_PATTERN: dict[str, str] = {
    "hypokalemia": HYPOCHLORAEMIC_ALKALOSIS,  # vomiting, laxatives, diuretics (KB history)
    "dka": HIGH_GAP_ACIDOSIS,
    "c_difficile_infection": NORMAL_GAP_ACIDOSIS,
}
# Na - Cl (the strong-ion difference's bedside proxy, = HCO3 + AG): 34-40 in health (Na
# 135-145, Cl 98-107); below NA_CL_LIMITS[0] the chloride is raised beyond what the sodium
# explains (saline, diarrhoea, RTA), above [1] it is lost (vomiting, diuretics).
NA_CL_LIMITS = (32.0, 46.0)
ANION_GAP_LIMITS = (3.0, 45.0)  # any anion gap shown or implied (mmol/L)
ALKALOSIS_HCO3 = 30.0  # above the 22-29 reference: a metabolic alkalosis
ALKALOSIS_CHLORIDE = 97.0  # at most this: below the 98-107 reference
HIGH_GAP = 12.0  # an anion gap above this (reference 4-12) is raised
# Slack (mmHg or mmol/L) on the compensation ranges for the rounding of the shown values.
ACID_BASE_SLACK = 2.0
# Age-predicted maximum heart rate 220 - age (Fox 1971; Tanaka 2001 gives 208 - 0.7 age,
# within a few beats): a sinus tachycardia at rest stays below this share of it.
SINUS_MAX_SHARE = 0.95
# Conditions whose tachycardia is not sinus (no age cap), and rhythm words.
NON_SINUS_CONDITIONS = frozenset({"atrial_fibrillation_rvr"})
_NON_SINUS = re.compile(
    r"atrial fibrillation|atrial flutter|supraventricular|ventricular tachycardia|\bSVT\b"
    r"|\bAF\b|tachyarrhythmia",
    re.I,
)
_SINUS = re.compile(r"\bsinus\b", re.I)
# Known heart failure, in a history item; the natriuretic peptides it keeps above normal.
HEART_FAILURE = re.compile(r"\b(heart failure|cardiac failure|HFrEF|HFpEF|CHF)\b", re.I)
NATRIURETIC_PEPTIDES = ("bnp", "nt_probnp")

# How far a result can move in 24 h, as (largest rise, largest fall), each a share of the
# first value (``None``: no bound). Conservative: the generator keeps well inside them.
#   haemoglobin: no rise without a transfusion (1 g/dL allows for haemoconcentration and
#     assay variation); haematocrit likewise 3 points (handled as absolute, see ABSOLUTE).
#   CRP: half-life about 19 h, so even if synthesis stopped at once it could fall at most
#     about 58% a day; synthesis goes on for 24-48 h after treatment starts: at most 40%.
#   procalcitonin: half-life about 24-35 h: at most 50% a day.
#   TSH: suppressed for weeks after thyrotoxicosis: at most 50% either way in a day.
#   free T4: half-life about 7 days; even with thionamide and iodine at most 30% a day.
#   sodium: correction limited to 10 mmol/L in 24 h (osmotic demyelination; EU 2014).
#   creatinine and CK: at most 50% a day.
#   troponins: raised for 7-14 days after a myocardial infarction: at most 50% a day down.
DAILY_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "troponin_t_hs": (None, 0.50),
    "troponin_i": (None, 0.50),
    "crp": (None, 0.40),
    "procalcitonin": (None, 0.50),
    "tsh": (0.50, 0.50),
    "free_t4": (None, 0.30),
    "creatinine": (None, 0.50),
    "ck": (None, 0.50),
}
# Bounds in the lab's own unit per 24 h: (largest rise, largest fall).
ABSOLUTE_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "hemoglobin": (1.0, None),
    "hematocrit": (3.0, None),
    "sodium": (10.0, 10.0),
}
# Results back to baseline a day after the event: mast-cell tryptase has a half-life of
# about 2 h, so a raised value is normal again by 24 h (the baseline sample WAO 2020 asks
# for is drawn then).
BASELINE_BY_DAY1 = frozenset({"tryptase"})
# An arterial blood gas: its values are reported together (pH with the PaCO2, or with the
# serum bicarbonate for a metabolic picture), never one of them alone.
BLOOD_GAS = ("ph_arterial", "paco2", "pao2", "hco3_arterial")
GAS_NAMES = {"ph_arterial": "pH", "paco2": "PaCO2", "pao2": "PaO2", "hco3_arterial": "HCO3"}
# Results not repeated at 24 h: slow analytes, counts that need another procedure, and the
# single values of a blood gas (a repeat gas is a new arterial puncture, not one number).
NO_DAY1_REPEAT = frozenset(
    {"tsh", "hba1c", "esr", "csf_wbc", "csf_protein", "csf_glucose", "ascitic_pmn", "d_dimer"}
) | frozenset(BLOOD_GAS)
# Troponin rises to a peak 12-24 h after a myocardial infarction begins (ESC ACS 2023): a
# day-1 value below the admission one only fits an onset well before admission.
PEAK_AFTER_ONSET: dict[str, tuple[frozenset[str], float]] = {
    "troponin_t_hs": (frozenset({"stemi", "nstemi"}), 12.0),
    "troponin_i": (frozenset({"stemi", "nstemi"}), 12.0),
}
_TRANSFUSION = re.compile(r"transfus|red[- ]cell|packed cells|\bprbc", re.I)

# Cardiac markers of a myocardial infarction against the hours from onset to the admission
# draw (ESC ACS 2023; CK rises after about 4-6 h, troponin from about 1-3 h and peaks at
# 12-24 h): the most each can be, as a multiple of its upper reference limit, below each
# number of hours; none from 12 h on.
MI_MARKERS = frozenset({"stemi", "nstemi"})
_TROPONIN_CAPS = ((1.0, 5.0), (2.0, 10.0), (3.0, 25.0), (6.0, 70.0), (12.0, 200.0))
MARKER_CAPS: dict[str, tuple[tuple[float, float], ...]] = {
    "ck": ((4.0, 1.0), (8.0, 3.0), (12.0, 8.0)),
    "troponin_t_hs": _TROPONIN_CAPS,
    "troponin_i": _TROPONIN_CAPS,
}


def biomarker_cap(lab_id: str, hours: float, uln: float) -> float:
    """The highest ``lab_id`` an infarction ``hours`` old can show (``MARKER_CAPS``)."""
    for below, times in MARKER_CAPS.get(lab_id, ()):
        if hours < below:
            return times * uln
    return float("inf")


# Cultures: results that take a day or more, pending on the day the sample is taken.
SLOW_RESULTS = frozenset({"blood_culture", "urine_culture", "sputum_culture"})
PENDING = "pending"

# A culture's result cited as evidence ("... less likely given positive blood cultures")
# while the record's cultures are still pending: an argument made before the result exists.
_CULTURE_RESULT = re.compile(
    r"\b(positive (blood |urine |sputum |ascitic )?cultures?|bacteraemia|bacteremia"
    r"|monomicrobial|polymicrobial|culture-positive)\b",
    re.I,
)
_CITES = re.compile(r"\b(given|in view of|because of|as shown by|confirmed by)\b", re.I)
_CONDITIONAL = re.compile(r"\b(if|when|would|unless|should|consider|once|until)\b", re.I)
# Body-fluid and other non-blood results and the procedure or sample that yields them
# (words any turn may use): a sputum smear or NAAT back with nothing sent (41-000523).
_SPUTUM = ("a sputum sample", re.compile(r"\bsputum (?:sample|specimen)", re.I))
_SWAB = ("a nasopharyngeal swab", re.compile(r"\bnasopharyngeal swab|\bswab\b", re.I))
SAMPLED_BY: dict[str, tuple[str, re.Pattern[str]]] = {
    "ascitic": ("a diagnostic paracentesis", re.compile(r"paracentesis|ascitic tap", re.I)),
    "csf": ("a lumbar puncture", re.compile(r"lumbar puncture|\bLP\b", re.I)),
    "sputum": _SPUTUM,
    "mycobacterium tuberculosis naat (sputum)": _SPUTUM,
    "c. difficile stool": ("a stool sample", re.compile(r"\bstool (?:sample|specimen)", re.I)),
    "sars-cov-2 rna": _SWAB,
    "influenza a/b rna": _SWAB,
    "serum tryptase": ("a serum tryptase", re.compile(r"\btryptase\b", re.I)),
}

# Hyperacute conditions: presentation within hours (generator range, linter limit in h).
HYPERACUTE_HOURS: dict[str, tuple[int, int, float]] = {
    "anaphylaxis": (1, 3, 12.0),
    "stemi": (1, 6, 12.0),
    # arrives in time for alteplase: every onset the generator draws meets the thrombolysis
    # trigger (one constant, severity.ALTEPLASE_ONSET_HOURS)
    "ischemic_stroke": (1, int(ALTEPLASE_ONSET_HOURS), 24.0),
    # symptomatic hypoglycaemia (glucose in the 20s-40s) is brought in within hours, not
    # after days of sweating and confusion
    "hypoglycemia": (1, 6, 24.0),
}
# Symptoms that take weeks to develop, and the shortest history (days) they allow.
SLOW_SYMPTOMS: dict[str, int] = {"weight loss": 14}
_SLOW_SYMPTOM = re.compile(r"\b(" + "|".join(SLOW_SYMPTOMS) + r")\b", re.I)
# Time-critical drugs: (KB drug id, KB condition id) -> hours from onset.
TIME_WINDOWS: dict[tuple[str, str], float] = {("alteplase", "ischemic_stroke"): 4.5}
# "IV alteplase given 50 minutes after arrival" (a severity statement on the timeline)
_GIVEN_AFTER = re.compile(r"\bgiven (\d+) minutes? after arrival\b", re.I)


# --------------------------------------------------------------------------- reading


_LAB_IDS: dict[int, tuple[KnowledgeBase, dict[str, str]]] = {}


def _lab_ids(kb: KnowledgeBase) -> dict[str, str]:
    """Lab display name (lower case) -> KB id (cached per KB object; read only)."""
    hit = _LAB_IDS.get(id(kb))
    if hit is None or hit[0] is not kb:
        hit = _LAB_IDS[id(kb)] = (kb, {lab.name.lower(): lid for lid, lab in kb.labs.items()})
    return hit[1]


def _by_draw(kb: KnowledgeBase, case: dict[str, Any]) -> dict[Any, dict[str, dict[str, Any]]]:
    """Findings by draw (time, else day) and KB lab id (first of each kept)."""
    ids = _lab_ids(kb)
    out: dict[Any, dict[str, dict[str, Any]]] = {}
    for f in case.get("findings") or []:
        lid = ids.get(str(f.get("name", "")).lower())
        if lid is None:
            continue
        out.setdefault(f.get("time") or f.get("day"), {}).setdefault(lid, f)
    return out


_ONSET = re.compile(r"^\s*(?:about\s+)?(\d+(?:\.\d+)?)\s+(minute|hour|day|week|month)s?\b", re.I)
_UNIT_HOURS = {"minute": 1 / 60, "hour": 1.0, "day": 24.0, "week": 168.0, "month": 720.0}


def onset_hours(case: dict[str, Any]) -> float | None:
    """Hours from symptom onset to presentation: the timeline's first symptom event, else
    the presentation's opening duration ("3 days of ...")."""
    for ev in case.get("timeline") or []:
        day = _num(ev.get("day"))
        if ev.get("kind") == "symptom" and day is not None and day < 0:
            return -day * 24
    m = _ONSET.match(str(case.get("presentation") or ""))
    if m is not None:
        return float(m.group(1)) * _UNIT_HOURS[m.group(2).lower()]
    return None


# --------------------------------------------------------------------------- case checks


def _check_derived(
    where: _Adds, when: Any, v: dict[str, float], age: float | None, sex: Any
) -> None:
    at = f" ({'day ' if isinstance(when, (int, float)) else ''}{when})"
    hb, hct = v.get("hemoglobin"), v.get("hematocrit")
    if hb and hct and not HCT_HB_RATIO[0] <= hct / hb <= HCT_HB_RATIO[1]:
        where.add(
            "derived-value-mismatch",
            f"haematocrit {hct:g}% is {hct / hb:.1f} x haemoglobin {hb:g} g/dL "
            f"(expected {HCT_HB_RATIO[0]}-{HCT_HB_RATIO[1]}){at}",
        )
    cr, egfr = v.get("creatinine"), v.get("egfr")
    if cr and egfr is not None and age is not None:
        expected = ckd_epi_2021(cr, age, sex)
        if abs(egfr - expected) > max(EGFR_TOLERANCE[0], EGFR_TOLERANCE[1] * expected):
            where.add(
                "derived-value-mismatch",
                f"eGFR {egfr:g} with creatinine {cr:g} mg/dL, age {age:g}, {sex}: "
                f"CKD-EPI 2021 gives {expected:.0f}{at}",
            )
    na, glu, bun, osm = v.get("sodium"), v.get("glucose"), v.get("bun"), v.get("serum_osmolality")
    if None not in (na, glu, bun, osm):
        calc = calculated_osmolality(na, glu, bun)  # type: ignore[arg-type]
        if osm - calc < OSMOLAL_GAP_MIN:  # type: ignore[operator]
            where.add(
                "derived-value-mismatch",
                f"measured osmolality {osm:g} is below the calculated {calc:.0f} "
                f"(Na {na:g}, glucose {glu:g}, BUN {bun:g}){at}",
            )
    ph, paco2 = v.get("ph_arterial"), v.get("paco2")
    hco3 = v.get("hco3_arterial")
    if ph is not None and paco2 and hco3:
        expected = henderson_hasselbalch_ph(paco2, hco3)
        if abs(ph - expected) > PH_TOLERANCE:
            where.add(
                "derived-value-mismatch",
                f"pH {ph:g} with PaCO2 {paco2:g} and HCO3 {hco3:g}: Henderson-Hasselbalch "
                f"gives {expected:.2f}{at}",
            )
    cl, bicarb, ag = v.get("chloride"), v.get("bicarbonate"), v.get("anion_gap")
    if ph is not None and bicarb and bicarb < ACIDOSIS_HCO3 and paco2 is None and hco3 is None:
        implied, expected = paco2_for(ph, bicarb), winters_paco2(bicarb)
        if abs(implied - expected) > WINTERS_TOLERANCE:
            where.add(
                "derived-value-mismatch",
                f"pH {ph:g} with bicarbonate {bicarb:g} implies PaCO2 {implied:.0f}; "
                f"a metabolic acidosis compensates to {expected:.0f} (Winter's formula){at}",
            )
    if None not in (na, cl, bicarb, ag):
        expected = na - cl - bicarb  # type: ignore[operator]
        if abs(ag - expected) > ANION_GAP_TOLERANCE:  # type: ignore[operator]
            where.add(
                "derived-value-mismatch",
                f"anion gap {ag:g} but Na {na:g} - (Cl {cl:g} + HCO3 {bicarb:g}) = "
                f"{expected:g}{at}",
            )
    poc = v.get("glucose_poc")
    if (
        poc is not None
        and glu
        and abs(poc - glu) > max(GLUCOSE_POC_TOLERANCE[0], GLUCOSE_POC_TOLERANCE[1] * glu)
    ):
        where.add(
            "derived-value-mismatch",
            f"capillary glucose {poc:g} with serum glucose {glu:g} mg/dL at the same time{at}",
        )


def _rhythm(case: dict[str, Any]) -> str | None:
    """'sinus' when a finding (ECG) names only a sinus rhythm, 'other' when one names another
    (or both), None when none names a rhythm."""
    texts = [str(f.get("value_text") or "") for f in case.get("findings") or []]
    other = any(_NON_SINUS.search(t) for t in texts)
    if other:
        return "other"
    return "sinus" if any(_SINUS.search(t) for t in texts) else None


def _check_physiology(
    where: _Adds,
    when: Any,
    v: dict[str, float],
    age: float | None,
    cond: str | None,
    rhythm: str | None,
) -> None:
    """Oxygenation, acid-base and rate coherence of one draw's values."""
    at = f" ({'day ' if isinstance(when, (int, float)) else ''}{when})"
    ph, paco2, pao2, spo2 = v.get("ph_arterial"), v.get("paco2"), v.get("pao2"), v.get("spo2")
    if pao2 and spo2 is not None:
        sat = severinghaus_saturation(pao2, ph or 7.40, paco2 or 40.0)
        if abs(spo2 - sat) > SPO2_TOLERANCE:
            where.add(
                "oxygenation-mismatch",
                f"SpO2 {spo2:g}% with PaO2 {pao2:g} mmHg at the same time: the dissociation "
                f"curve gives a saturation of {sat:.0f}% (Severinghaus){at}",
            )
    gas = [k for k in BLOOD_GAS if k in v]
    if gas and (ph is None or not v.keys() & {"paco2", "bicarbonate"}):
        where.add(
            "blood-gas-partial",
            f"{', '.join(GAS_NAMES[k] for k in gas)} reported without the rest of the blood "
            f"gas (pH with PaCO2 or bicarbonate){at}",
        )
    if ph is not None:
        _check_acid_base(where, at, ph, paco2, v, cond)
    hr = v.get("heart_rate")
    if (
        hr is not None
        and age is not None
        and hr > max_sinus_rate(age)
        and (rhythm == "sinus" or (rhythm is None and cond and cond not in NON_SINUS_CONDITIONS))
    ):
        where.add(
            "rate-implausible",
            f"heart rate {hr:g}/min in sinus rhythm at {age:g} years: above "
            f"{SINUS_MAX_SHARE:.0%} of the age-predicted maximum ({220 - age:g}){at}",
        )


def _check_acid_base(
    where: _Adds, at: str, ph: float, paco2: float | None, v: dict[str, float], cond: str | None
) -> None:
    """The gas's primary disorder against the condition's, and its compensation. Without a
    shown PaCO2, the one the pH and (serum) bicarbonate imply; a metabolic acidosis whose
    implied PaCO2 misses Winter's formula is the derived-value rule's."""
    hco3 = v.get("hco3_arterial")
    if paco2 is None:
        hco3 = hco3 or v.get("bicarbonate")
        if not hco3:
            return
        implied = paco2_for(ph, hco3)
        if hco3 < ACIDOSIS_HCO3 and abs(implied - winters_paco2(hco3)) > WINTERS_TOLERANCE:
            return
    elif not paco2:
        return
    if not hco3:
        hco3 = hco3_for(ph, paco2)  # type: ignore[arg-type]
    gas_paco2 = paco2 if paco2 is not None else paco2_for(ph, hco3)
    disorder = acid_base_disorder(ph, gas_paco2, hco3)
    expected = EXPECTED_ACID_BASE.get(cond or "")
    gas = f"pH {ph:g}, PaCO2 {gas_paco2:.0f}, HCO3 {hco3:.0f}"
    if expected is not None and disorder != expected:
        where.add("acid-base-pattern", f"{gas} is {disorder}; {cond} gives a {expected}{at}")
    elif disorder != NO_DISORDER and paco2 is not None:
        what, low, high = compensation_range(disorder, paco2, hco3)
        value = hco3 if what == "HCO3" else paco2
        if not low - ACID_BASE_SLACK <= value <= high + ACID_BASE_SLACK:
            where.add(
                "acid-base-pattern",
                f"{gas}: a {disorder} compensates to {what} {low:.0f}-{high:.0f}{at}",
            )


def electrolyte_problem(v: dict[str, float], cond: str | None) -> tuple[str, float, float] | None:
    """What is wrong with one draw's Na, Cl, HCO3 and anion gap for condition ``cond``
    (:data:`METABOLIC_PATTERN`; others keep Na - Cl inside :data:`NA_CL_LIMITS`), with the
    chloride and gap shown or implied; None when the panel coheres or shows fewer than
    three of the four."""
    na, hco3 = v.get("sodium"), v.get("bicarbonate")
    cl, ag = v.get("chloride"), v.get("anion_gap")
    if na is None or not hco3 or (cl is None and ag is None):
        return None
    cl = na - hco3 - ag if cl is None else cl  # type: ignore[operator]
    ag = na - cl - hco3 if ag is None else ag
    pattern = METABOLIC_PATTERN.get(cond or "")
    why = None
    if not ANION_GAP_LIMITS[0] <= ag <= ANION_GAP_LIMITS[1]:
        why = f"an anion gap of {ag:g}"
    elif pattern == HYPOCHLORAEMIC_ALKALOSIS:
        if hco3 < ALKALOSIS_HCO3 or cl > ALKALOSIS_CHLORIDE:
            why = f"no {pattern} (HCO3 {hco3:g}, Cl {cl:g})"
    elif pattern in (HIGH_GAP_ACIDOSIS, NORMAL_GAP_ACIDOSIS) and (
        hco3 >= ACIDOSIS_HCO3 or (ag > HIGH_GAP) != (pattern == HIGH_GAP_ACIDOSIS)
    ):
        why = f"no {pattern} (HCO3 {hco3:g}, anion gap {ag:g})"
    elif pattern != NORMAL_GAP_ACIDOSIS and not NA_CL_LIMITS[0] <= na - cl <= NA_CL_LIMITS[1]:
        why = f"chloride {cl:g} with sodium {na:g} (Na - Cl {na - cl:g}, expected " + (
            f"{NA_CL_LIMITS[0]:g}-{NA_CL_LIMITS[1]:g})"
        )
    return None if why is None else (why, cl, ag)


# A chloride a living patient can have (mmol/L), implied by a panel's Na, HCO3 and gap.
CHLORIDE_POSSIBLE = (75.0, 130.0)
ELECTROLYTES = ("sodium", "chloride", "bicarbonate", "anion_gap")


def panel_possible(v: dict[str, float]) -> bool:
    """Whether one draw's Na, Cl, HCO3 and anion gap (by KB id) can all be true at once: the
    gap ``Na - Cl - HCO3`` inside :data:`ANION_GAP_LIMITS` where the chloride is shown, else
    the chloride ``Na - HCO3 - AG`` inside :data:`CHLORIDE_POSSIBLE` (True for a panel
    showing fewer than three of them). A planted slip of one keeps to this where it can."""
    na, hco3 = v.get("sodium"), v.get("bicarbonate")
    cl, ag = v.get("chloride"), v.get("anion_gap")
    if na is None or hco3 is None or (cl is None and ag is None):
        return True
    if cl is not None:
        return ANION_GAP_LIMITS[0] <= na - cl - hco3 <= ANION_GAP_LIMITS[1]
    assert ag is not None
    return (
        ANION_GAP_LIMITS[0] <= ag <= ANION_GAP_LIMITS[1]
        and CHLORIDE_POSSIBLE[0] <= na - hco3 - ag <= CHLORIDE_POSSIBLE[1]
    )


def _check_electrolytes(where: _Adds, when: Any, v: dict[str, float], cond: str | None) -> None:
    problem = electrolyte_problem(v, cond)
    if problem is None:
        return
    why, cl, ag = problem
    at = f" ({'day ' if isinstance(when, (int, float)) else ''}{when})"
    shown = ", ".join(
        f"{name} {v[k]:g}"
        for k, name in (("sodium", "Na"), ("chloride", "Cl"), ("bicarbonate", "HCO3"))
        if k in v
    ) + (f", anion gap {v['anion_gap']:g}" if "anion_gap" in v else "")
    implied = f"chloride {cl:g}" if "chloride" not in v else f"anion gap {ag:g}"
    where.add("electrolyte-pattern", f"{shown} imply {implied}: {why}{at}")


def heart_failure_history(case: dict[str, Any]) -> str | None:
    """The history item (past history, or a 'History:' fact) that records known heart
    failure, if any (not a negated one: "no heart failure")."""
    items: list[str] = []
    for sec in case.get("sections") or []:
        if str(sec.get("title", "")).lower() == "past history":
            items += re.split(r"[;.]\s*", str(sec.get("text", "")))
    items += [str(f)[9:] for f in case.get("facts") or [] if str(f).startswith("History: ")]
    for item in items:
        if HEART_FAILURE.search(item) and not _NEGATION.search(item):
            return item.strip().rstrip(".")
    return None


def _check_history_markers(where: _Adds, kb: KnowledgeBase, case: dict[str, Any]) -> None:
    history = heart_failure_history(case)
    if history is None:
        return
    ids = _lab_ids(kb)
    for f in case.get("findings") or []:
        lid = ids.get(str(f.get("name", "")).lower())
        value = _num(f.get("value"))
        if lid in NATRIURETIC_PEPTIDES and value is not None:
            ref = kb.labs[lid].ref
            if ref is not None and value <= ref.high:
                where.add(
                    "history-result-mismatch",
                    f"{f.get('name')} {value:g} {kb.labs[lid].unit} (reference up to "
                    f"{ref.high:g}) with a history of '{history}': known heart failure "
                    "keeps it raised",
                )


def _transfused(case: dict[str, Any]) -> bool:
    texts = [str(m.get("name", "")) for m in case.get("medications") or []]
    texts += [str(e.get("text", "")) for e in case.get("timeline") or []]
    return any(_TRANSFUSION.search(t) for t in texts)


def _check_kinetics(where: _Adds, kb: KnowledgeBase, case: dict[str, Any]) -> None:
    ids = _lab_ids(kb)
    series: dict[str, list[tuple[float, float]]] = {}
    for f in case.get("findings") or []:
        lid = ids.get(str(f.get("name", "")).lower())
        day, value = _num(f.get("day")), _num(f.get("value"))
        if lid is not None and day is not None and value is not None and f.get("time") is None:
            series.setdefault(lid, []).append((day, value))
    transfused = _transfused(case)
    cond, onset = _condition(case), onset_hours(case)
    for lid, points in series.items():
        points.sort()
        for (d0, v0), (d1, v1) in itertools.pairwise(points):
            days = d1 - d0
            if days <= 0 or days > 3:
                continue
            name = kb.labs[lid].name
            ref = kb.labs[lid].ref
            peak = PEAK_AFTER_ONSET.get(lid)
            if peak and cond in peak[0] and onset is not None and onset < peak[1] and v1 < v0:
                where.add(
                    "kinetics-implausible",
                    f"{name} falls {v0:g} -> {v1:g} the day after an infarction that began "
                    f"{onset:g} h before admission (it peaks at 12-24 h)",
                )
            if lid in BASELINE_BY_DAY1 and ref is not None and min(v0, v1) > ref.high:
                where.add(
                    "kinetics-implausible",
                    f"{name} still {v1:g} {days:g} day(s) after {v0:g} (reference up to "
                    f"{ref.high:g}): it is back to baseline within a day",
                )
            if lid in ABSOLUTE_LIMITS:
                rise, fall = ABSOLUTE_LIMITS[lid]
                if (
                    rise is not None
                    and v1 - v0 > rise * days
                    and not (transfused and lid in ("hemoglobin", "hematocrit"))
                ):
                    why = " with no transfusion" if lid in ("hemoglobin", "hematocrit") else ""
                    where.add(
                        "kinetics-implausible",
                        f"{name} rises {v0:g} -> {v1:g} in {days:g} day(s){why} "
                        f"(at most {rise:g}/day)",
                    )
                if fall is not None and v0 - v1 > fall * days:
                    where.add(
                        "kinetics-implausible",
                        f"{name} falls {v0:g} -> {v1:g} in {days:g} day(s) (at most {fall:g}/day)",
                    )
            if lid in DAILY_LIMITS and v0 > 0:
                rise, fall = DAILY_LIMITS[lid]
                if rise is not None and v1 > v0 * (1 + rise) ** days:
                    where.add(
                        "kinetics-implausible",
                        f"{name} rises {v0:g} -> {v1:g} in {days:g} day(s) "
                        f"(at most {rise:.0%}/day)",
                    )
                if fall is not None and v1 < v0 * (1 - fall) ** days:
                    where.add(
                        "kinetics-implausible",
                        f"{name} falls {v0:g} -> {v1:g} in {days:g} day(s) "
                        f"(at most {fall:.0%}/day)",
                    )


def _check_timing(where: _Adds, kb: KnowledgeBase, case: dict[str, Any]) -> None:
    ids = _lab_ids(kb)
    for f in case.get("findings") or []:
        lid = ids.get(str(f.get("name", "")).lower())
        text = str(f.get("value_text") or "").strip().lower()
        if lid in SLOW_RESULTS and _num(f.get("day")) == 0 and text and text != PENDING:
            where.add(
                "result-timing",
                f"{f.get('name')} '{f.get('value_text')}' reported on the day it was taken "
                "(a culture is pending on day 0)",
            )
        day = _num(f.get("day"))
        if lid in SLOW_RESULTS and day is not None and culture_report(text, day) != text:
            where.add(
                "result-timing",
                f"{f.get('name')} '{f.get('value_text')}' (a final report) on day {day:g}: a "
                f"negative culture is final after {FINAL_CULTURE_DAYS} days or more ('no "
                "growth to date' before then)",
            )


def _check_onset(where: _Adds, kb: KnowledgeBase, case: dict[str, Any]) -> None:
    cond = _condition(case)
    hours = onset_hours(case)
    if cond is None or hours is None:
        return
    if cond in HYPERACUTE_HOURS and hours > HYPERACUTE_HOURS[cond][2]:
        where.add(
            "onset-implausible",
            f"{kb.conditions[cond].name if cond in kb.conditions else cond} with symptoms for "
            f"{hours / 24:g} day(s): a hyperacute condition presents within hours",
        )
    slow = _SLOW_SYMPTOM.search(str(case.get("presentation") or ""))
    if slow is not None and hours < SLOW_SYMPTOMS[slow.group(1).lower()] / 2 * 24:
        where.add(
            "onset-implausible",
            f"'{slow.group(1)}' in a history of {hours / 24:g} day(s): it takes weeks",
        )
    if cond in MI_MARKERS:
        ids = _lab_ids(kb)
        sex = (case.get("demographics") or {}).get("sex")
        for f in case.get("findings") or []:
            lid = ids.get(str(f.get("name", "")).lower())
            value = _num(f.get("value"))
            if lid not in MARKER_CAPS or value is None or _num(f.get("day")) != 0:
                continue
            cap = biomarker_cap(lid, hours, kb.labs[lid].reference(sex).high)
            if value > cap:
                where.add(
                    "marker-before-rise",
                    f"{f.get('name')} {value:g} {hours:g} h after onset (at most {cap:g} then)",
                )
    names = {str(m.get("name", "")).lower() for m in case.get("medications") or []}
    for (drug, on), window in TIME_WINDOWS.items():
        if on != cond or drug not in kb.drugs or kb.drugs[drug].name.lower() not in names:
            continue
        # onset to arrival, plus the minutes after arrival the record says it was given
        name = kb.drugs[drug].name.lower()
        given = next(
            (
                int(m[1])
                for e in case.get("timeline") or []
                if name in str(e.get("text") or "").lower()
                and (m := _GIVEN_AFTER.search(str(e.get("text") or ""))) is not None
            ),
            0,
        )
        if hours + given / 60 > window:
            where.add(
                "outside-time-window",
                f"{kb.drugs[drug].name} given {hours + given / 60:.2g} h after onset "
                f"(window {window:g} h)",
            )


_OR = re.compile(r"\bor\b", re.I)
_NEGATION = re.compile(r"\b(no|without|neither|nor|not|absent)\b", re.I)


def ambiguous_report(text: str) -> bool:
    """Whether a study name or report offers alternatives ("A or B") outside a negation
    ("no consolidation or effusion") or a parenthesis."""
    plain = re.sub(r"\([^)]*\)", "", text)
    # a negation covers the rest of its sentence: "no haemorrhage, infarct or mass lesion"
    for sentence in re.split(r"[;.]", plain):
        m = _OR.search(sentence)
        if m is not None and not _NEGATION.search(sentence[: m.start()]):
            return True
    return False


def _check_reports(where: _Adds, case: dict[str, Any]) -> None:
    for f in case.get("findings") or []:
        if f.get("kind") != "imaging":
            continue
        for what in (str(f.get("name", "")), str(f.get("value_text") or "")):
            if ambiguous_report(what):
                where.add("report-ambiguous", f"{f.get('name')}: '{what[:90]}' states alternatives")


def check_case(kb: KnowledgeBase, where: _Adds, case: dict[str, Any]) -> None:
    """The value, kinetics, timing, onset and report rules over one case (raw JSON)."""
    demo = case.get("demographics") or {}
    age, sex = _num(demo.get("age_years")), demo.get("sex")
    cond, rhythm = _condition(case), _rhythm(case)
    for when, labs in _by_draw(kb, case).items():
        values = {lid: v for lid, f in labs.items() if (v := _num(f.get("value"))) is not None}
        _check_derived(where, when, values, age, sex)
        _check_physiology(where, when, values, age, cond, rhythm)
        if cond is not None:  # synthetic: an imported panel is quoted as its source gave it
            _check_electrolytes(where, when, values, cond)
    _check_history_markers(where, kb, case)
    _check_kinetics(where, kb, case)
    _check_timing(where, kb, case)
    _check_onset(where, kb, case)
    _check_reports(where, case)
    _check_possible(where, kb, case)


# --------------------------------------------------------------------------- possible values

_BOUNDS: dict[int, tuple[KnowledgeBase, dict[str, tuple[str | None, float, float]]]] = {}


def possible_bounds(kb: KnowledgeBase) -> dict[str, tuple[str | None, float, float]]:
    """Test display name (lower case) -> (unit, lowest, highest) a living patient can have
    (the KB lab's ``bounds``; cached per KB object)."""
    hit = _BOUNDS.get(id(kb))
    if hit is None or hit[0] is not kb:
        table = {
            lab.name.lower(): (lab.unit, lab.bounds.low, lab.bounds.high)
            for lab in kb.labs.values()
            if lab.kind == "quantitative" and lab.bounds is not None
        }
        hit = _BOUNDS[id(kb)] = (kb, table)
    return hit[1]


def impossible_value(kb: KnowledgeBase, name: str, value: float, unit: str | None) -> str | None:
    """Why ``value`` (in ``unit``) of the test ``name`` is impossible, or None (also when the
    KB has no bounds for the test in that unit)."""
    known = possible_bounds(kb).get(name.lower())
    if known is None or known[0] != unit:
        return None
    lo, hi = known[1], known[2]
    if lo <= value <= hi:
        return None
    return f"{name} {value:g} {unit or ''}".rstrip() + f" is outside the possible {lo:g}-{hi:g}"


def _check_possible(where: _Adds, kb: KnowledgeBase, case: dict[str, Any]) -> None:
    """Synthetic records only: an imported record's values are quoted as its source gave
    them (its units may differ, and a data error there is the source's)."""
    if _condition(case) is None:
        return
    for f in case.get("findings") or []:
        v = _num(f.get("value"))
        if v is None or f.get("kind") not in ("lab", "vital"):
            continue
        why = impossible_value(kb, str(f.get("name") or ""), v, f.get("unit"))
        if why is not None:
            where.add("value-impossible", why, None)


# A data_conflict_resolution note and the values its options quote (build/tasks/conflicts.py,
# conflict_pools.py): "Note (day 0): Sodium 256 mmol/L on this sample." and "The note
# (145 mmol/L) and the table (121 mmol/L) disagree on sodium: ...".
_NOTE = re.compile(
    r"^Note \([^)]*\): (?P<name>.+?) (?P<value>-?\d+(?:\.\d+)?)(?: (?P<unit>\S+))? on this"
)
_OPTION = re.compile(
    r"^The note \((?P<note>[^)]*)\) and the table \((?P<table>[^)]*)\) (?:dis)?agree on "
    r"(?P<name>.+?)(?: \([^)]*\))?:"
)
_VALUE = re.compile(r"^(?P<value>-?\d+(?:\.\d+)?)(?: (?P<unit>\S+))?$")
_DATA_CONFLICT = "data_conflict_resolution"


def checked_tasks(
    kb: KnowledgeBase, tasks: Iterable[tuple[int, dict[str, Any]]], where_of: Any
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``tasks`` passed through, each checked by :func:`check_task_values` on the way
    (``where_of(line, id)`` makes its adder)."""
    for line, task in tasks:
        if task.get("task_type") == _DATA_CONFLICT:
            check_task_values(kb, where_of(line, str(task.get("id", ""))), task)
        yield line, task


def check_task_values(kb: KnowledgeBase, where: _Adds, task: dict[str, Any]) -> None:
    """``value-impossible`` on a data_conflict_resolution item: the note's value and the
    values its options quote (a planted slip of sodium 256 mmol/L is a conflict found by
    knowing what is possible, not by reading the record)."""
    if task.get("task_type") != _DATA_CONFLICT:
        return
    excerpt = str((task.get("context") or {}).get("excerpt") or "")
    m = _NOTE.match(excerpt)
    if m is not None:
        why = impossible_value(kb, m["name"], float(m["value"]), m["unit"])
        if why is not None:
            where.add("value-impossible", f"the note: {why}", None)
    for opt in task.get("options") or []:
        o = _OPTION.match(str(opt.get("text") or ""))
        if o is None:
            continue
        for part in (o["note"],):  # the table's value is the record's own
            v = _VALUE.match(part)
            if v is None:
                continue
            why = impossible_value(kb, o["name"], float(v["value"]), v["unit"])
            if why is not None:
                where.add("value-impossible", f"option {opt.get('label')}: {why}", None)


# --------------------------------------------------------------------------- conversation


def _is_culture(kb: KnowledgeBase, name: str) -> bool:
    ids = _lab_ids(kb)
    return ids.get(name.lower()) in SLOW_RESULTS


_RANGE_LIST = re.compile(r"\boutside the reference ranges?\s*:\s*", re.I)
_LIST_END = re.compile(r"\.(?:\s+(?=[A-Z])|\s*$)")


def _qualitative_row(row: list[Any]) -> bool:
    """A table row with a worded result (not a number, not pending) and no numeric range."""
    result = str(row[1]).strip()
    ref = str(row[3]).strip() if len(row) > 3 and row[3] is not None else ""
    return (
        bool(result)
        and _num(result) is None
        and result.lower() != PENDING
        and not re.search(r"\d", ref)
    )


def _check_range_list(
    where: _Adds, turn: dict[str, Any], text: str, qualitative: list[str]
) -> None:
    """A qualitative result ('SARS-CoV-2 RNA detected') listed as outside a reference range:
    it has none; it is positive, detected or abnormal."""
    m = _RANGE_LIST.search(text)
    if m is None or not qualitative:
        return
    end = _LIST_END.search(text, m.end())
    listed = text[m.end() : end.start() if end else len(text)].lower()
    for item in qualitative:
        if item in listed:
            where.add(
                "qualitative-as-range",
                f"'{item}' listed as outside the reference range (a qualitative result has none)",
                turn.get("index"),
            )


# KB panels of venous or arterial blood (a capillary fingerstick, urine, CSF or swab is not
# "bloods"), and the words that order them (a synthetic record's own wording).
BLOOD_PANELS = frozenset(
    {"BMP", "CBC", "LFT", "electrolytes", "renal", "coag", "cardiac", "inflammatory"}
    | {"metabolic", "endocrine", "pancreatic", "lipid", "ABG"}
)
_BLOODS_ORDERED = re.compile(r"\bbloods\b|\bblood (?:sample|count|test|gas)", re.I)
_PANELS: dict[int, tuple[KnowledgeBase, dict[str, str]]] = {}


def _panel_of(kb: KnowledgeBase, name: str) -> str | None:
    hit = _PANELS.get(id(kb))
    if hit is None or hit[0] is not kb:
        hit = _PANELS[id(kb)] = (kb, {lab.name.lower(): lab.panel for lab in kb.labs.values()})
    return hit[1].get(name.lower())


def check_conversation(kb: KnowledgeBase, where: _Adds, conv: dict[str, Any]) -> None:
    """A body-fluid result shown while no earlier turn mentions the procedure that samples
    it (a paracentesis recorded as done after the count is back does not take the sample);
    a culture result cited as evidence while the record's cultures are still pending; a
    sputum smear or NAAT in the same results as the admission bloods."""
    turns = conv.get("turns") or []
    synthetic = str(conv.get("case_id") or "").startswith("synthetic:")
    said = ""
    pending = resulted = False
    qualitative: list[str] = []  # "name result" of the qualitative table rows shown so far
    for t in turns:
        text = str(t.get("text", ""))
        said += " " + text
        _check_range_list(where, t, text, qualitative)
        if pending and not resulted and str(t.get("role", "")) not in _LAY:
            for sent in re.split(r"(?<=[.;])\s+", text):
                cite = _CITES.search(sent)  # the evidence follows "given"
                m = _CULTURE_RESULT.search(sent, cite.end()) if cite else None
                if m and not _CONDITIONAL.search(sent):
                    where.add(
                        "result-timing",
                        f"{t.get('role')} cites '{m.group(0)}' while the cultures are pending: "
                        f"'{sent[:90]}'",
                        t.get("index"),
                    )
        for a in t.get("attachments") or []:
            for row in a.get("rows") or []:
                if len(row) > 1 and _qualitative_row(row):
                    qualitative.append(f"{row[0]} {row[1]}".lower())
                if len(row) > 1 and _is_culture(kb, str(row[0])):
                    if str(row[1]).strip().lower() == PENDING:
                        pending = True
                    else:
                        resulted = True
        for a in t.get("attachments") or []:
            for row in a.get("rows") or []:
                name = str(row[0]).lower() if row else ""
                for prefix, (procedure, pattern) in SAMPLED_BY.items():
                    if name.startswith(prefix) and not pattern.search(said):
                        where.add(
                            "sample-not-taken",
                            f"{row[0]} shown but no turn mentions {procedure}",
                            t.get("index"),
                        )
        rows = [str(r[0]) for a in t.get("attachments") or [] for r in a.get("rows") or [] if r]
        blood = [r for r in rows if _panel_of(kb, r) in BLOOD_PANELS]
        if synthetic and blood and not _BLOODS_ORDERED.search(said):
            where.add(
                "result-unordered",
                f"{', '.join(blood[:3])} shown but no turn up to it orders bloods",
                t.get("index"),
            )
        slow = [r for r in rows if slow_result(r)]
        if slow and len(slow) < len(rows):
            where.add(
                "result-too-fast",
                f"{', '.join(slow)} reported with the first bloods "
                f"({', '.join([r for r in rows if r not in slow][:3])}): it takes hours",
                t.get("index"),
            )
