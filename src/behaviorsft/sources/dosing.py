"""Doses that fit this patient: a dose right in a textbook can be wrong for the patient shown.

The KB gives one usual adult dose per drug and indication (``drugs.yaml``); some of them
depend on who takes them. The case generator (``synthetic.synthesize_case``) gives each
plan drug the dose fitting the patient's weight, age and creatinine (``fit_dose``); the
linter (``build/lint_dose.py``) checks records against the same tables; the tasks about
dose errors (``build/tasks/errors.py``) draw their usual doses from the doses plans give.

- Weight bands: a fixed dose by the weight it is given at (``WEIGHT_BANDS``): the
  first-line TB drugs (ATS/CDC/IDSA TB 2016, table 3: pyrazinamide 1000/1500/2000 mg and
  ethambutol 800/1200/1600 mg at 40-55, 56-75 and 76-90 kg; the 76-90 kg dose is the
  maximum, also above 90 kg); isoniazid 5 mg/kg with a cap of 300 mg and rifampicin
  10 mg/kg with a cap of 600 mg, given as the tablets the cap allows (NICE NG33 2016:
  rifampicin 450 mg under 50 kg, 600 mg from 50 kg; isoniazid 300 mg).
- Reduction criteria: a lower dose when enough of the label's criteria hold
  (``REDUCTIONS``): apixaban for AF 2.5 mg q12h with two of age >= 80 y, weight <= 60 kg and
  creatinine >= 1.5 mg/dL (Label; round 12: 5 mg q12h at 91 years and 54 kg).
- Renal rules on creatinine clearance (enoxaparin below 30 mL/min, oseltamivir bands)
  stay in the KB's ``renal`` rules (``lint_plan.renal_dose``); the clearance is worked out
  by Cockcroft-Gault from the weight the record shows (``crcl``), not a nominal one (round
  11: oseltamivir 30 mg at a clearance of 79 mL/min for 80 kg).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from behaviorsft.sources.kb import Dose

# ----------------------------------------------------------------------------- weight bands

# drug id -> ((heaviest weight of the band in kg, amount in mg), ...) in rising order; the
# last band has no upper limit (the guideline's maximum dose).
WEIGHT_BANDS: dict[str, tuple[tuple[float, float], ...]] = {
    # ATS/CDC/IDSA TB 2016 (Nahid 2016, table 3): 40-55 kg 1000 mg, 56-75 kg 1500 mg,
    # 76-90 kg 2000 mg (maximum dose regardless of weight)
    "pyrazinamide": ((55.0, 1000.0), (75.0, 1500.0), (math.inf, 2000.0)),
    # the same table: 40-55 kg 800 mg, 56-75 kg 1200 mg, 76-90 kg 1600 mg (maximum)
    "ethambutol": ((55.0, 800.0), (75.0, 1200.0), (math.inf, 1600.0)),
    # 10 mg/kg, max 600 mg: NICE NG33 2016 450 mg under 50 kg, 600 mg from 50 kg
    "rifampin": ((49.9, 450.0), (math.inf, 600.0)),
    # 5 mg/kg, max 300 mg (ATS/CDC/IDSA TB 2016; NICE NG33 300 mg for adults)
    "isoniazid": ((math.inf, 300.0),),
}
BAND_UNIT = "mg"


def banded(drug_id: str, kg: float) -> float | None:
    """The amount (mg) of ``drug_id``'s weight band at ``kg``, or None for an unbanded drug."""
    bands = WEIGHT_BANDS.get(drug_id)
    if bands is None:
        return None
    return next(amount for upper, amount in bands if kg <= upper)


def band_amounts(drug_id: str) -> tuple[float, ...]:
    """Every band's amount (mg) of ``drug_id`` (none for an unbanded drug)."""
    return tuple(amount for _, amount in WEIGHT_BANDS.get(drug_id, ()))


# The weight the tasks' dose pools read a banded drug at (its middle band for most adults).
POOL_WEIGHT = 70.0


# ----------------------------------------------------------------------------- criteria


@dataclass(frozen=True)
class Reduction:
    """A lower dose when at least ``needed`` of the label's criteria hold."""

    amount: float
    unit: str
    frequency: str
    needed: int = 2
    age_at_least: float | None = None
    weight_at_most: float | None = None
    creatinine_at_least: float | None = None
    source: str = ""

    def met(self, age: float | None, kg: float | None, creatinine: float | None) -> list[str]:
        """The criteria this patient meets, as words ('age 91 y >= 80')."""
        out = []
        if self.age_at_least is not None and age is not None and age >= self.age_at_least:
            out.append(f"age {age:g} y >= {self.age_at_least:g}")
        if self.weight_at_most is not None and kg is not None and kg <= self.weight_at_most:
            out.append(f"weight {kg:g} kg <= {self.weight_at_most:g}")
        if (
            self.creatinine_at_least is not None
            and creatinine is not None
            and creatinine >= self.creatinine_at_least
        ):
            out.append(f"creatinine {creatinine:g} >= {self.creatinine_at_least:g} mg/dL")
        return out

    def applies(self, age: float | None, kg: float | None, creatinine: float | None) -> bool:
        return len(self.met(age, kg, creatinine)) >= self.needed


# (drug id, condition id) -> the reduction of the drug's dose for that condition.
REDUCTIONS: dict[tuple[str, str], Reduction] = {
    # Label (apixaban, AF): 2.5 mg q12h with >= 2 of age >= 80 y, weight <= 60 kg,
    # serum creatinine >= 1.5 mg/dL
    ("apixaban", "atrial_fibrillation_rvr"): Reduction(
        2.5,
        "mg",
        "q12h",
        age_at_least=80,
        weight_at_most=60,
        creatinine_at_least=1.5,
        source="per the apixaban label",
    ),
}


# ----------------------------------------------------------------------------- the dose


def fit_dose(
    drug_id: str,
    cond_id: str,
    dose: Dose,
    kg: float | None,
    age: float | None,
    creatinine: float | None,
) -> Dose:
    """``dose`` (a KB dose of ``drug_id`` for ``cond_id``) as it is given to this patient:
    its weight band's amount, or the label's reduced dose when the criteria hold."""
    if kg is not None and drug_id in WEIGHT_BANDS and dose.unit in (BAND_UNIT, "mg/kg"):
        amount = banded(drug_id, kg)
        return dose.model_copy(update={"amount": amount, "amount_max": None, "unit": BAND_UNIT})
    red = REDUCTIONS.get((drug_id, cond_id))
    if (
        red is not None
        and dose.unit == red.unit
        and dose.frequency == red.frequency
        and dose.amount > red.amount
        and red.applies(age, kg, creatinine)
    ):
        return dose.model_copy(update={"amount": red.amount, "amount_max": None})
    return dose


def pool_dose(drug_id: str, dose: Dose) -> Dose:
    """``dose`` as the tasks' dose pools hold it: a banded drug at ``POOL_WEIGHT``."""
    if drug_id in WEIGHT_BANDS and dose.unit in (BAND_UNIT, "mg/kg"):
        return fit_dose(drug_id, "", dose, POOL_WEIGHT, None, None)
    return dose


def band_problem(drug_id: str, amount: float | None, unit: str, kg: float) -> str | None:
    """Why a rendered dose of a banded drug is outside the patient's band, or None."""
    want = banded(drug_id, kg)
    if want is None or amount is None:
        return None
    if unit == "mg/kg":
        return f"{amount:g} mg/kg at {kg:g} kg gives {amount * kg:g} mg; the dose is {want:g} mg"
    if unit == BAND_UNIT and amount != want:
        return f"{amount:g} mg at {kg:g} kg; the band's dose is {want:g} mg"
    return None


def criteria_problem(
    drug_id: str,
    cond_id: str,
    amount: float | None,
    unit: str,
    frequency: str,
    age: float | None,
    kg: float | None,
    creatinine: float | None,
) -> str | None:
    """Why a dose is the full one while the label's reduction criteria hold, or None."""
    red = REDUCTIONS.get((drug_id, cond_id))
    if red is None or amount is None or unit != red.unit or frequency != red.frequency:
        return None
    met = red.met(age, kg, creatinine)
    if amount > red.amount and len(met) >= red.needed:
        return (
            f"{amount:g} {unit} {frequency} with {', '.join(met)}: "
            f"{red.amount:g} {red.unit} {red.frequency} ({red.source})"
        )
    return None


def pharmacist_note(
    plan: list[tuple[str, str, float | None, str, str]],
    cond_id: str,
    kg: float | None,
    age: float | None,
    creatinine: float | None,
) -> str | None:
    """What the pharmacist says of the plan's doses fitted to this patient, or None: the
    weight band the banded drugs follow, the label criteria a reduced dose meets. ``plan``:
    (drug id, name, amount, unit, frequency) of the plan's medicines."""
    parts = []
    banded_names = [
        f"{name.split(' (')[0].lower()} {amount:g} {unit}"
        for did, name, amount, unit, _ in plan
        if did in WEIGHT_BANDS and amount is not None and kg is not None
    ]
    if banded_names:
        parts.append(f"TB drug doses by weight band ({kg:g} kg): " + ", ".join(banded_names))
    for did, name, amount, unit, freq in plan:
        red = REDUCTIONS.get((did, cond_id))
        if red is None or amount != red.amount or unit != red.unit or freq != red.frequency:
            continue
        met = red.met(age, kg, creatinine)
        if len(met) >= red.needed:
            parts.append(
                f"{name.lower()} at the reduced {amount:g} {unit} {freq} "
                f"({', '.join(met)}; {red.source})"
            )
    return "; ".join(parts) + "." if parts else None
