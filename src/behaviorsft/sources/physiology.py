"""Oxygenation, acid-base and rate coherence of a synthetic case's day-0 values.

:func:`synthesize_case <behaviorsft.sources.synthetic.synthesize_case>` samples each vital
and lab inside the condition's typical range on its own; the values here are then made to
agree with one another by the formulas the linter checks them with
(``build/lint_values.py``):

- the arterial gas follows the condition's primary disorder (``lint_values.EXPECTED_ACID_BASE``)
  with its expected compensation: the PaCO2 is kept and the bicarbonate drawn inside the
  compensation range (acute for asthma and pulmonary embolism, acute-on-chronic for COPD),
  then the pH by Henderson-Hasselbalch (inside the condition's pH range where the two
  ranges meet);
- the PaO2 is the one the charted SpO2 implies on the oxyhaemoglobin dissociation curve
  (Severinghaus 1979, at the gas's pH and PaCO2), the oximeter reading up to 2 points off
  the arterial saturation;
- a sinus tachycardia stays below ``lint_values.SINUS_MAX_SHARE`` of the age-predicted maximum
  heart rate (220 - age);
- a patient with known heart failure has a BNP / NT-proBNP above its reference range;
- sodium, chloride, bicarbonate and the anion gap (Na = Cl + HCO3 + AG, the fourth implied
  when three are shown) follow the condition's metabolic pattern
  (``lint_values.METABOLIC_PATTERN``): a hypochloraemic alkalosis in hypokalaemia from
  vomiting or diuretics, a high-gap acidosis in DKA, elsewhere a chloride the sodium
  explains (:func:`electrolytes`, before the pH is derived from the bicarbonate).

Each case draws these from a stream of its own, so everything else about it stays as it was.
"""

from __future__ import annotations

import math
import random

from behaviorsft.build.lint_values import (
    ALKALOSIS_CHLORIDE,
    ALKALOSIS_HCO3,
    EXPECTED_ACID_BASE,
    HEART_FAILURE,
    HIGH_GAP_ACIDOSIS,
    HYPOCHLORAEMIC_ALKALOSIS,
    METABOLIC_PATTERN,
    MI_MARKERS,
    NON_SINUS_CONDITIONS,
    RESP_ACIDOSIS,
    RESP_ALKALOSIS,
    biomarker_cap,
    compensation_range,
    hco3_for,
    henderson_hasselbalch_ph,
    max_sinus_rate,
    pao2_for_saturation,
)

# How far the oximeter reads from the arterial saturation (points, either way).
OXIMETER_SCATTER = 2.0
# Bicarbonate drawn within this of the acute expectation (mmol/L): a respiratory alkalosis
# of hours (asthma, pulmonary embolism) has had no time for renal compensation.
ACUTE_SCATTER = 1.0
# Natriuretic peptides in known (chronic, compensated) heart failure: above the reference
# range, below the acute decompensation the KB's heart-failure condition draws from.
KNOWN_HF_PEPTIDE: dict[str, tuple[float, float]] = {
    "bnp": (150.0, 450.0),
    "nt_probnp": (400.0, 1500.0),
}
# Their reference upper limits (labs.yaml; the ESC 2021 rule-out thresholds): only a value
# within the reference range is raised (a raised one may already be the day-1 repeat's base).
PEPTIDE_UPPER: dict[str, float] = {"bnp": 100.0, "nt_probnp": 125.0}


# What the generator draws inside the linter's electrolyte limits (mmol/L): Na - Cl (= HCO3 +
# anion gap) by metabolic pattern, the anion gap when the panel does not show it, and the
# chloride of a patient whose condition does not set its range.
NA_CL_TARGET: dict[str | None, tuple[float, float]] = {
    None: (34.0, 40.0),
    HIGH_GAP_ACIDOSIS: (34.0, 42.0),
    HYPOCHLORAEMIC_ALKALOSIS: (42.0, 50.0),
}
IMPLIED_GAP = (8.0, 14.0)
CHLORIDE_TARGET = (92.0, 114.0)
# A sodium moved to make the panel cohere stays inside this (and the condition's range).
SODIUM_SHIFT = (130.0, 150.0)


def electrolytes_rng(seed: int, index: int) -> random.Random:
    """The stream case ``index`` of ``seed`` draws its electrolyte panel's coherence from."""
    return random.Random(f"behaviorsft-synth-electrolytes:{seed}:{index}")


def _meet(*spans: tuple[float, float]) -> tuple[float, float]:
    return max(s[0] for s in spans), min(s[1] for s in spans)


def electrolytes(
    condition_id: str,
    values: dict[str, float],
    ranges: dict[str, tuple[float, float]],
    rng: random.Random,
) -> dict[str, float]:
    """Sodium, chloride, bicarbonate and anion gap (by KB id) made to agree, when the panel
    shows the sodium, the bicarbonate and the chloride or the gap: Na - Cl (= HCO3 + AG)
    drawn inside the condition's pattern (:data:`NA_CL_TARGET`), the gap inside the
    condition's range (else :data:`IMPLIED_GAP`), the chloride inside the condition's range
    (else :data:`CHLORIDE_TARGET`, below :data:`lint_values.ALKALOSIS_CHLORIDE` in an
    alkalosis). The bicarbonate, then the sodium, move (inside their ranges) only where
    their draw leaves no such panel. The gap is then ``Na - Cl - HCO3`` exactly."""
    if not {"sodium", "bicarbonate"} <= values.keys() or not values.keys() & {
        "chloride",
        "anion_gap",
    }:
        return values
    v = dict(values)
    pattern = METABOLIC_PATTERN.get(condition_id)
    target = NA_CL_TARGET.get(pattern, NA_CL_TARGET[None])
    gap = ranges.get("anion_gap", IMPLIED_GAP)
    chloride = ranges.get("chloride", CHLORIDE_TARGET)
    hco3_span = ranges.get("bicarbonate", (v["bicarbonate"], v["bicarbonate"]))
    if pattern == HYPOCHLORAEMIC_ALKALOSIS:
        chloride = (chloride[0], min(chloride[1], ALKALOSIS_CHLORIDE))
        hco3_span = (max(hco3_span[0], ALKALOSIS_HCO3), max(hco3_span[1], ALKALOSIS_HCO3))
    na, hco3 = v["sodium"], min(max(v["bicarbonate"], hco3_span[0]), hco3_span[1])
    # Na - Cl the sodium allows (the chloride in its range), and the gap the HCO3 allows
    diff = _meet(target, (na - chloride[1], na - chloride[0]))
    if diff[0] > diff[1]:  # the sodium leaves no chloride in range: move it (least)
        na = min(max(na, chloride[0] + target[0]), chloride[1] + target[1])
        low, high = _meet(SODIUM_SHIFT, ranges.get("sodium", SODIUM_SHIFT))
        na = min(max(na, low), high)
        diff = _meet(target, (na - chloride[1], na - chloride[0]))
    span = _meet(diff, (hco3 + gap[0], hco3 + gap[1]))
    if span[0] > span[1]:  # the bicarbonate leaves no gap in range: move it (least)
        hco3 = min(max(hco3, diff[0] - gap[1]), diff[1] - gap[0])
        hco3 = float(round(min(max(hco3, hco3_span[0]), hco3_span[1])))
        span = _meet(diff, (hco3 + gap[0], hco3 + gap[1]))
    if span[0] > span[1]:
        return values  # (no coherent panel within the condition's ranges: left as drawn)
    d = float(round(rng.uniform(*span)))
    d = min(max(d, math.ceil(span[0])), math.floor(span[1])) if span[1] - span[0] >= 1 else d
    v["sodium"], v["bicarbonate"] = float(round(na)), hco3
    cl = v["sodium"] - d
    if "chloride" in v:
        v["chloride"] = cl
    if "anion_gap" in v:
        v["anion_gap"] = v["sodium"] - cl - hco3
    return v


def physiology_rng(seed: int, index: int) -> random.Random:
    """The stream case ``index`` of ``seed`` draws its coherence adjustments from."""
    return random.Random(f"behaviorsft-synth-physiology:{seed}:{index}")


def acid_base(
    condition_id: str,
    values: dict[str, float],
    ranges: dict[str, tuple[float, float]],
    rng: random.Random,
) -> dict[str, float]:
    """pH (and the arterial bicarbonate, when shown) from the PaCO2 by the condition's
    respiratory disorder and its compensation. A metabolic acidosis (DKA) is already made
    from its bicarbonate by Winter's formula (``synthetic.derive_values``)."""
    disorder = EXPECTED_ACID_BASE.get(condition_id)
    if (
        disorder not in (RESP_ALKALOSIS, RESP_ACIDOSIS)
        or not {"ph_arterial", "paco2"} <= values.keys()
    ):
        return values
    v = dict(values)
    paco2 = v["paco2"]
    _, low, high = compensation_range(disorder, paco2, 24.0)
    if disorder == RESP_ALKALOSIS:  # acute: about 2 mmol/L per 10 mmHg
        low, high = high - ACUTE_SCATTER, high + ACUTE_SCATTER
    else:  # acute on chronic: between the acute and chronic rises
        low = low + 0.25 * (high - low)
    ph_low, ph_high = ranges.get("ph_arterial", (6.8, 7.8))
    # where the condition's pH range allows, keep the pH inside it too
    a, b = max(low, hco3_for(ph_low, paco2)), min(high, hco3_for(ph_high, paco2))
    if a <= b:
        low, high = a, b
    hco3 = rng.uniform(low, high)
    v["ph_arterial"] = round(henderson_hasselbalch_ph(paco2, hco3), 2)
    if "hco3_arterial" in v:
        v["hco3_arterial"] = float(round(hco3_for(v["ph_arterial"], paco2)))
    return v


def oxygenation(values: dict[str, float], rng: random.Random) -> dict[str, float]:
    """The PaO2 the charted SpO2 implies, the reading up to :data:`OXIMETER_SCATTER`
    points off the arterial saturation (at the same draw's pH and PaCO2)."""
    if "pao2" not in values or "spo2" not in values:
        return values
    v = dict(values)
    saturation = min(99.0, v["spo2"] + rng.uniform(-OXIMETER_SCATTER, OXIMETER_SCATTER))
    pao2 = pao2_for_saturation(saturation, v.get("ph_arterial", 7.40), v.get("paco2", 40.0))
    v["pao2"] = float(round(pao2))
    return v


def sinus_rate(
    condition_id: str,
    heart_rate: float,
    hr_range: tuple[float, float] | None,
    age: float,
    rng: random.Random,
) -> float:
    """A sinus heart rate redrawn below the age-predicted cap when above it (inside the
    condition's range where the cap allows)."""
    cap = math.floor(max_sinus_rate(age))
    if condition_id in NON_SINUS_CONDITIONS or heart_rate <= cap:
        return heart_rate
    low, high = hr_range or (cap - 10.0, cap)
    high = min(high, cap)
    return float(round(rng.uniform(min(low, high), high)))


def cohere(
    condition_id: str,
    values: dict[str, float],
    ranges: dict[str, tuple[float, float]],
    age: float,
    rng: random.Random,
) -> dict[str, float]:
    """The day-0 vitals and labs (by KB id) made coherent: acid-base first (the
    dissociation curve depends on pH and PaCO2), then the PaO2, then the heart rate."""
    v = acid_base(condition_id, values, ranges, rng)
    v = oxygenation(v, rng)
    if "heart_rate" in v:
        v["heart_rate"] = sinus_rate(
            condition_id, v["heart_rate"], ranges.get("heart_rate"), age, rng
        )
    return v


def known_heart_failure(
    history: list[str], values: dict[str, float], rng: random.Random
) -> dict[str, float]:
    """BNP / NT-proBNP raised above their reference range when the history records heart
    failure (a chronic failing ventricle keeps secreting them)."""
    if not any(HEART_FAILURE.search(h) for h in history):
        return values
    v = dict(values)
    for lid, (low, high) in KNOWN_HF_PEPTIDE.items():
        if lid in v and v[lid] <= PEPTIDE_UPPER[lid]:
            v[lid] = float(round(rng.uniform(low, high)))
    return v


def fit_markers(
    cond_id: str,
    values: dict[str, float],
    onset_hours: float,
    uln: dict[str, float],
    rng: random.Random,
) -> dict[str, float]:
    """``values`` with the cardiac markers of an infarction no higher than the hours since
    onset allow (``lint_values.MARKER_CAPS``): one above its cap is drawn again below it
    (a CK within its reference range before about 4 h)."""
    if cond_id not in MI_MARKERS:
        return values
    out = dict(values)
    for lid, high in uln.items():
        cap = biomarker_cap(lid, onset_hours, high)
        if lid in out and out[lid] > cap:
            out[lid] = rng.uniform(0.4 * cap, cap)
    return out
