"""Orders a clinician could plausibly write for this patient: the planted allergy error.

explicit_error_correction plants a new order of a drug from the group the patient is
allergic to (build/tasks/errors.py). An order only makes sense with a reason, so the
drug is one this patient has an indication for, stated as a prescriber states it:

* a drug the guideline gives for the working diagnosis (first-line, alternative or add-on,
  at the condition's dose), e.g. amoxicillin for pneumonia in a penicillin allergy, the classic
  slip of switching to the guideline choice without re-reading the allergy list;
* else a ward order any inpatient of this kind may get, when the record supports it:
  enoxaparin VTE prophylaxis (no anticoagulant or bleed in the picture; the KB's reduced
  dose at CrCl < 30; age 60 or over unless the illness itself carries the risk), naproxen
  for a reported pain (under 65, eGFR at least 60, an illness where an NSAID is a
  reasonable analgesic), and after a myocardial infarction on dual antiplatelet therapy,
  pantoprazole for gastric protection, and there or in heart failure lisinopril 2.5 mg
  once stable (systolic BP at least 100, potassium at most 5.0, eGFR above 30) (ESC ACS
  2023, ESC HF 2021).

Conditional drugs are left out: their indication ("add MRSA cover if ...") is one the
record does not give. A case whose drawn allergy allows no such order has its
allergy group re-drawn, at synthesis, among the groups that do (``orderable_group``), so
that the allergy item stays as common as before and is never an order without a reason.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from behaviorsft.build.lint_plan import renal_dose, renal_problem
from behaviorsft.sources import dosing
from behaviorsft.sources.kb import Condition, Dose, Drug, KnowledgeBase

# Roles of a condition's drug that the working diagnosis alone indicates (an adjunct is an
# add-on to the plan: rifaximin with lactulose).
INDICATED_ROLES = ("first_line", "alternative", "adjunct")

VTE_PROPHYLAXIS = "VTE prophylaxis"

# Drug classes (KB ``drug_class``, lower case) that make VTE prophylaxis redundant.
_ANTITHROMBOTIC = ("heparin", "anticoagulant", "factor xa", "vitamin k")
# Illnesses with no LMWH prophylaxis on day 2: bleeding, or cirrhosis with coagulopathy.
NO_VTE_PROPHYLAXIS = frozenset(
    {
        "upper_gi_bleed",
        "lower_gi_bleed",
        "spontaneous_bacterial_peritonitis",
        "hepatic_encephalopathy",
    }
)
# Illnesses that by themselves make a medical inpatient's VTE risk outweigh the bleeding
# risk (acute infection or inflammation with reduced mobility, heart failure, stroke,
# bowel obstruction, a hyperosmolar state); in the others, only age 60 or over adds the
# risk that calls for prophylaxis (NICE NG89): no LMWH for a mobile 25-year-old.
VTE_AT_ANY_AGE = frozenset(
    {
        "sepsis",
        "community_acquired_pneumonia",
        "copd_exacerbation",
        "ischemic_stroke",
        "small_bowel_obstruction",
        "acute_pancreatitis",
        "acute_cholecystitis",
        "bacterial_meningitis",
        "infective_endocarditis",
        "hhs",
        "dka",
        "thyroid_storm",
    }
)
# Myocardial infarction treated with dual antiplatelet therapy.
AFTER_MI = frozenset({"stemi", "nstemi"})
GASTRIC_PROTECTION = "Gastric protection on dual antiplatelet therapy"
# Illnesses where an ACE inhibitor is started once stable, and the indication written.
ACE_INHIBITOR_FOR = {
    "stemi": "Secondary prevention after myocardial infarction",
    "nstemi": "Secondary prevention after myocardial infarction",
    "acute_decompensated_heart_failure": "Heart failure (guideline therapy once stable)",
}
# Illnesses whose pain an NSAID may treat (no renal, bleeding, cardiac, bowel or asthma
# reason against it, and the patient can take tablets).
NSAID_FOR_PAIN = frozenset(
    {
        "cellulitis",
        "community_acquired_pneumonia",
        "covid19_pneumonia",
        "influenza",
        "pulmonary_tuberculosis",
        "uncomplicated_cystitis",
    }
)


@dataclass(frozen=True)
class Patient:
    """What the choice of an order needs to know of the patient (all on the record)."""

    age: float
    complaints: tuple[str, ...]  # as the record gives them ("pleuritic chest pain")
    gfr: float | None  # day-0 eGFR, mL/min/1.73 m2
    sbp: float | None = None  # day-0 systolic blood pressure, mmHg
    potassium: float | None = None  # day-0 potassium, mmol/L
    kg: float | None = None  # the triage weight (sources/patient.py)
    crcl: float | None = None  # Cockcroft-Gault clearance at that weight, mL/min
    creatinine: float | None = None  # day-0 creatinine, mg/dL


@dataclass(frozen=True)
class IndicatedOrder:
    """A drug, its dose and the indication a prescriber would write beside it."""

    drug: Drug
    dose: Dose
    indication: str

    @property
    def text(self) -> str:
        d = self.dose
        return f"{self.drug.name} {d.amount:g} {d.unit} {d.route} {d.frequency}"


def order_line(order: str, indication: str) -> str:
    """An order as the excerpt writes it: the drug line, then its indication."""
    return f"{order}. Indication: {indication}"


def _lower_first(name: str) -> str:
    """``name`` as it reads mid-sentence ("Hyperosmolar ..." -> "hyperosmolar ...", "DKA")."""
    return name[0].lower() + name[1:] if name[1:2].islower() else name


def indication(kb: KnowledgeBase, cond: Condition, drug_name: str) -> str:
    """The indication a prescriber writes beside a plan drug of ``cond``: the working
    diagnosis, or the infection a non-infective illness's antibacterial treats (the
    ceftriaxone of a hyperosmolar state is for the pneumonia that precipitated it)."""
    for td in cond.treatments.drugs:
        if kb.drug(td.drug).name != drug_name or not td.note:
            continue
        if "pneumonia" in td.note and "pneumonia" not in cond.name.lower():
            return f"Pneumonia precipitating the {_lower_first(cond.name)}"
    return cond.name


def _renal_ok(
    kb: KnowledgeBase, drug: Drug, dose: Dose, gfr: float | None, crcl: float | None = None
) -> bool:
    if gfr is None:
        return True
    return renal_problem(kb, drug.id, gfr, (dose.amount, dose.unit, dose.frequency), crcl) is None


def condition_orders(
    kb: KnowledgeBase, cond: Condition, group: str, patient: Patient
) -> list[IndicatedOrder]:
    """Drugs of ``group`` the guideline gives for ``cond`` (see ``INDICATED_ROLES``)."""
    out: list[IndicatedOrder] = []
    for td in cond.treatments.drugs:
        drug = kb.drug(td.drug)
        if td.role not in INDICATED_ROLES or group not in drug.allergy_groups:
            continue
        if any(
            ci.condition == cond.id and ci.severity == "absolute" for ci in drug.contraindications
        ):
            continue
        dose = td.dose or drug.dose_for(cond.id)
        # its weight band or the label's reduced dose (sources/dosing.py)
        dose = dosing.fit_dose(drug.id, cond.id, dose, patient.kg, patient.age, patient.creatinine)
        if _renal_ok(kb, drug, dose, patient.gfr, patient.crcl) and all(
            o.drug.id != drug.id for o in out
        ):
            out.append(IndicatedOrder(drug, dose, indication(kb, cond, drug.name)))
    return out


def ward_orders(kb: KnowledgeBase, cond: Condition, patient: Patient) -> list[IndicatedOrder]:
    """Ward orders the record supports for this patient, whatever their allergies."""
    classes = [kb.drug(td.drug).drug_class.lower() for td in cond.treatments.drugs]
    out: list[IndicatedOrder] = []
    enox = kb.drugs.get("enoxaparin")
    if (
        enox is not None
        and cond.id not in NO_VTE_PROPHYLAXIS
        and (cond.id in VTE_AT_ANY_AGE or patient.age >= 60)
        and not any(a in c for c in classes for a in _ANTITHROMBOTIC)
    ):
        dose = next((d for d in enox.doses if d.note == VTE_PROPHYLAXIS), None)
        if dose is not None and patient.gfr is not None:
            reduced = renal_dose(kb, enox.id, patient.gfr, dose.amount, dose.unit, patient.crcl)
            if reduced is not None:  # 30 mg once daily at CrCl < 30
                dose = dose.model_copy(update={"amount": reduced[0], "frequency": reduced[1]})
        if dose is not None:
            out.append(IndicatedOrder(enox, dose, VTE_PROPHYLAXIS))
    pain = next((c for c in patient.complaints if "pain" in c.lower()), None)
    nsaid = kb.drugs.get("naproxen")
    if (
        nsaid is not None
        and pain is not None
        and cond.id in NSAID_FOR_PAIN
        and patient.age < 65
        and (patient.gfr is None or patient.gfr >= 60)
    ):
        out.append(IndicatedOrder(nsaid, nsaid.dose_for(None), f"Pain ({pain})"))
    ppi = kb.drugs.get("pantoprazole")
    if cond.id in AFTER_MI and ppi is not None:
        dose = Dose(amount=40, unit="mg", route="PO", frequency="once daily")
        out.append(IndicatedOrder(ppi, dose, GASTRIC_PROTECTION))
    acei = kb.drugs.get("lisinopril")
    if (
        cond.id in ACE_INHIBITOR_FOR
        and acei is not None
        and (
            (patient.sbp is None or patient.sbp >= 100)
            and (patient.potassium is None or patient.potassium <= 5.0)
            and (patient.gfr is None or patient.gfr > 30)
        )
    ):
        dose = Dose(amount=2.5, unit="mg", route="PO", frequency="once daily")
        out.append(IndicatedOrder(acei, dose, ACE_INHIBITOR_FOR[cond.id]))
    return out


def allergy_orders(
    kb: KnowledgeBase, cond: Condition, group: str, patient: Patient
) -> list[IndicatedOrder]:
    """Orders of a drug of ``group`` with an indication the record gives: the condition's
    own drugs first, else ward orders of the group; none when the group has neither."""
    own = condition_orders(kb, cond, group, patient)
    if own:
        return own
    return [o for o in ward_orders(kb, cond, patient) if group in o.drug.allergy_groups]


def orderable_group(
    kb: KnowledgeBase,
    cond: Condition,
    group: str,
    fitting: Sequence[str],
    patient: Patient,
    key: str,
) -> str:
    """``group``, or when no order of it would have an indication, one of the ``fitting``
    groups that has one (drawn by ``key``, off the case's random stream); ``group`` when
    none has."""
    if allergy_orders(kb, cond, group, patient):
        return group
    pool = [g for g in fitting if allergy_orders(kb, cond, g, patient)]
    if not pool:
        return group
    return random.Random(f"behaviorsft-allergy:{key}").choice(pool)
