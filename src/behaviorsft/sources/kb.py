"""Typed clinical knowledge base (labs, drugs, conditions) shipped as YAML data files.

Layout of a KB directory (the packaged one lives at ``behaviorsft/data/kb``)::

    labs.yaml              # {labs: [Lab, ...]}
    drugs.yaml             # {allergy_groups: [AllergyGroup, ...], drugs: [Drug, ...]}
    conditions/<id>.yaml   # one Condition per file; the file stem must equal its id

:func:`load_kb` parses every file into the pydantic models below and then cross-validates
the whole graph (every referenced id exists, ranges are ordered and inside the
physiological bounds of their lab, required sections are populated).  All problems are
collected and raised together as a :class:`KBValidationError` whose lines read
``<file>: <entry/field>: <problem>``, so a broken data file can be fixed in one pass.

Units: quantitative values are in the lab's conventional (US) ``unit``; ``si_factor``
converts them (``si = conventional * si_factor``).  Sources are YAML comments in the data
files and, for standard-of-care items, the required ``source`` field.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

if sys.version_info >= (3, 11):
    from importlib.resources.abc import Traversable
else:  # pragma: no cover - Python 3.10 keeps the protocol in importlib.abc
    from importlib.abc import Traversable

__all__ = [
    "MIN_SECTION_ITEMS",
    "AllergyGroup",
    "CareItem",
    "Condition",
    "Contraindication",
    "CrossReactivity",
    "Differential",
    "Dose",
    "Drug",
    "Imaging",
    "Interaction",
    "KBValidationError",
    "KnowledgeBase",
    "Lab",
    "LabFinding",
    "MaxDose",
    "Range",
    "RenalRule",
    "SexWeights",
    "Symptom",
    "Treatment",
    "TreatmentDrug",
    "compare",
    "default_kb_root",
    "load_kb",
]

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
# ICD-10(-CM): letter, two characters, optional dot and up to four more (e.g. T78.2XXA).
ICD10_PATTERN = r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$"
LOINC_PATTERN = r"^[0-9]{1,7}-[0-9]$"

#: Minimum number of items each required condition section must hold.  A generator that
#: samples "a missing standard-of-care lab" or "a distractor differential" needs at least
#: this much material per condition to produce a non-trivial multiple-choice item.
MIN_SECTION_ITEMS: dict[str, int] = {
    "symptoms": 3,
    "risk_factors": 2,
    "vitals": 3,
    "exam": 2,
    "labs": 3,
    "imaging": 1,
    "differentials": 2,
    "treatments.drugs": 1,
    "treatments.actions": 1,
    "standard_of_care": 2,
    "next_actions": 2,
}

Op = Literal["<", "<=", ">", ">="]
Sex = Literal["female", "male"]
Panel = Literal[
    "vitals",
    "POC",
    "BMP",
    "electrolytes",
    "renal",
    "LFT",
    "pancreatic",
    "lipid",
    "CBC",
    "coag",
    "cardiac",
    "inflammatory",
    "ABG",
    "metabolic",
    "endocrine",
    "urinalysis",
    "CSF",
    "body_fluid",
    "microbiology",
]
Route = Literal["PO", "IV", "IM", "SC", "SL", "inhaled", "intranasal", "PR", "NG"]
System = Literal[
    "cardiovascular",
    "respiratory",
    "infectious",
    "endocrine_metabolic",
    "renal_electrolyte",
    "gastrointestinal_hepatic",
    "neurological",
    "musculoskeletal",
    "allergy_immunology",
    "toxicology_substance",
]


def _fmt(value: float) -> str:
    """Render a number without a spurious ``.0`` so messages match the YAML the user wrote."""
    return f"{value:g}"


def compare(value: float, op: Op, threshold: float) -> bool:
    """Evaluate ``value <op> threshold`` for the comparison operators used in the KB."""
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == ">":
        return value > threshold
    return value >= threshold


def _loinc_check_digit_ok(code: str) -> bool:
    # LOINC uses the Luhn mod-10 check digit; verifying it catches transposed digits
    # in hand-typed codes, the commonest way a code silently points at another test.
    body, check = code.split("-")
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return (10 - total % 10) % 10 == int(check)


class _Model(BaseModel):
    # frozen: the default KB is cached and shared, so callers must not mutate it.
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- shared parts


class Range(_Model):
    """A closed numeric interval ``[low, high]``."""

    low: float = Field(description="Lower bound, inclusive.")
    high: float = Field(description="Upper bound, inclusive.")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low > self.high:
            raise ValueError(f"range {_fmt(self.low)}-{_fmt(self.high)} is reversed")
        return self

    def contains(self, other: Range) -> bool:
        """Whether ``other`` lies entirely inside this range."""
        return self.low <= other.low and other.high <= self.high


# --------------------------------------------------------------------------- labs


class Lab(_Model):
    """A laboratory test or vital sign, with its reference interval and generation bounds."""

    id: str = Field(pattern=ID_PATTERN, description="Stable snake_case identifier.")
    name: str = Field(min_length=1, description="Display name.")
    panel: Panel = Field(description="Panel or group the test is ordered/charted in.")
    kind: Literal["quantitative", "qualitative"] = Field(
        default="quantitative", description="Numeric result or one of a fixed set of values."
    )
    unit: str | None = Field(default=None, description="Conventional (US) unit; numeric only.")
    si_unit: str | None = Field(default=None, description="SI unit where it commonly differs.")
    si_factor: float | None = Field(
        default=None, gt=0, description="Multiply a conventional value by this to get SI."
    )
    ref: Range | None = Field(
        default=None, description="Adult reference interval (male/all adults); numeric only."
    )
    ref_female: Range | None = Field(
        default=None, description="Adult female reference interval where it differs."
    )
    bounds: Range | None = Field(
        default=None, description="Plausible physiological min/max for generated values."
    )
    decimals: int = Field(default=1, ge=0, le=4, description="Decimal places to report.")
    values: list[str] = Field(
        default_factory=list, description="Ordered allowed results of a qualitative test."
    )
    normal_values: list[str] = Field(
        default_factory=list, description="Subset of ``values`` that are normal/negative."
    )
    loinc: str | None = Field(
        default=None, pattern=LOINC_PATTERN, description="LOINC code, only where certain."
    )
    note: str | None = Field(default=None, description="Interpretive caveat.")

    @model_validator(mode="after")
    def _consistent(self) -> Lab:
        problems: list[str] = []
        if self.kind == "quantitative":
            for name in ("unit", "ref", "bounds"):
                if getattr(self, name) is None:
                    problems.append(f"{name} is required for a quantitative lab")
            if self.values or self.normal_values:
                problems.append("values/normal_values are only for qualitative labs")
            if self.bounds is not None:
                for name in ("ref", "ref_female"):
                    rng = getattr(self, name)
                    if rng is not None and not self.bounds.contains(rng):
                        problems.append(
                            f"{name} {_fmt(rng.low)}-{_fmt(rng.high)} lies outside bounds "
                            f"{_fmt(self.bounds.low)}-{_fmt(self.bounds.high)}"
                        )
        else:
            if not self.values:
                problems.append("values is required for a qualitative lab")
            if len(set(self.values)) != len(self.values):
                problems.append("values contains duplicates")
            if not self.normal_values:
                problems.append("normal_values is required for a qualitative lab")
            unknown = [v for v in self.normal_values if v not in self.values]
            if unknown:
                problems.append(f"normal_values {unknown} are not in values")
            if any(getattr(self, n) is not None for n in ("ref", "ref_female", "bounds")):
                problems.append("ref/ref_female/bounds are only for quantitative labs")
        if (self.si_unit is None) != (self.si_factor is None):
            problems.append("si_unit and si_factor must be given together")
        if self.loinc is not None and not _loinc_check_digit_ok(self.loinc):
            problems.append(f"loinc {self.loinc} fails its check digit")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def reference(self, sex: Sex | None = None) -> Range:
        """The reference interval for ``sex`` (the general one when no female range exists)."""
        if self.ref is None:
            raise ValueError(f"lab {self.id} is qualitative and has no numeric reference")
        if sex == "female" and self.ref_female is not None:
            return self.ref_female
        return self.ref

    def to_si(self, value: float) -> float:
        """Convert a value in the conventional unit to the SI unit (identity without one)."""
        return value * self.si_factor if self.si_factor is not None else value


# --------------------------------------------------------------------------- drugs


class CrossReactivity(_Model):
    """Clinically relevant cross-reactivity from one allergy group to another."""

    group: str = Field(pattern=ID_PATTERN, description="Allergy group id that may cross-react.")
    risk: Literal["very_low", "low", "moderate", "high"] = Field(description="Relative risk.")
    note: str = Field(min_length=1, description="Magnitude and practical guidance.")


class AllergyGroup(_Model):
    """A set of drugs an allergy label applies to (e.g. penicillins)."""

    id: str = Field(pattern=ID_PATTERN, description="Stable snake_case identifier.")
    name: str = Field(min_length=1, description="Display name.")
    note: str | None = Field(default=None, description="How the label should be interpreted.")
    cross_reactivity: list[CrossReactivity] = Field(
        default_factory=list, description="Other groups with documented cross-reactivity."
    )


class Dose(_Model):
    """One usual adult dose.  ``amount_max`` turns the amount into a range (e.g. 1-2 g)."""

    amount: float = Field(gt=0, description="Amount per administration (or rate).")
    amount_max: float | None = Field(default=None, gt=0, description="Upper end of a range.")
    unit: str = Field(min_length=1, description="Unit of amount, e.g. mg, mg/kg, units/kg/h.")
    route: Route = Field(description="Route of administration.")
    frequency: str = Field(min_length=1, description="Schedule, e.g. q8h, once daily, once.")
    duration: str | None = Field(default=None, description="Usual course length.")
    indication: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Condition id this dose is specific to."
    )
    note: str | None = Field(default=None, description="Loading dose, titration, caveats.")
    then: str | None = Field(
        default=None,
        description="The regimen that follows a stat or loading dose ('50 mg IV q6h'): a "
        "plan giving this dose states it (sources/prescribing.py).",
    )

    @model_validator(mode="after")
    def _amount_range(self) -> Dose:
        if self.amount_max is not None and self.amount_max < self.amount:
            raise ValueError(f"range {_fmt(self.amount)}-{_fmt(self.amount_max)} is reversed")
        return self


class MaxDose(_Model):
    """A labelled maximum daily dose."""

    amount: float = Field(gt=0, description="Maximum total per 24 h.")
    unit: str = Field(min_length=1, description="Unit of amount.")
    note: str | None = Field(default=None, description="Population or route it applies to.")


class Contraindication(_Model):
    """Exactly one trigger: an allergy group, a condition, a lab threshold or a finding."""

    allergy_group: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Allergy group id."
    )
    condition: str | None = Field(default=None, pattern=ID_PATTERN, description="Condition id.")
    lab: str | None = Field(default=None, pattern=ID_PATTERN, description="Lab/vital id.")
    op: Op | None = Field(default=None, description="Comparison for a lab trigger.")
    value: float | None = Field(default=None, description="Threshold in the lab's unit.")
    finding: str | None = Field(
        default=None, description="Free-text clinical state not modelled as a condition."
    )
    severity: Literal["absolute", "relative"] = Field(description="Absolute or relative.")
    note: str | None = Field(default=None, description="Context or exception.")

    @model_validator(mode="after")
    def _one_trigger(self) -> Contraindication:
        triggers = [n for n in ("allergy_group", "condition", "lab", "finding") if getattr(self, n)]
        if len(triggers) != 1:
            raise ValueError(
                "exactly one of allergy_group, condition, lab, finding is required, "
                f"got {triggers or 'none'}"
            )
        has_threshold = self.op is not None and self.value is not None
        if self.lab is not None and not has_threshold:
            raise ValueError("a lab contraindication needs op and value")
        if self.lab is None and (self.op is not None or self.value is not None):
            raise ValueError("op/value are only for a lab contraindication")
        return self


class RenalRule(_Model):
    """Dose adjustment or avoidance when a renal-function measure crosses a threshold.

    Rules are independent; when several match, the one with the tightest threshold (the
    most severe impairment) is the one that applies.
    """

    metric: str = Field(
        pattern=ID_PATTERN, description="Lab id measured: egfr, crcl or creatinine."
    )
    op: Op = Field(description="Comparison operator.")
    value: float = Field(description="Threshold in the lab's unit.")
    action: Literal[
        "contraindicated",
        "avoid",
        "do_not_initiate",
        "reduce_dose",
        "extend_interval",
        "adjust_by_levels",
        "caution",
    ] = Field(description="What to do when the rule matches.")
    detail: str = Field(min_length=1, description="The adjusted regimen or rationale.")

    def applies(self, value: float) -> bool:
        """Whether a measured ``value`` of ``metric`` triggers this rule."""
        return compare(value, self.op, self.value)


class Interaction(_Model):
    """A clinically important interaction with a KB drug or a named agent/class."""

    drug: str | None = Field(default=None, pattern=ID_PATTERN, description="KB drug id.")
    agent: str | None = Field(default=None, description="Drug or class not in the KB.")
    severity: Literal["contraindicated", "major", "moderate"] = Field(description="Severity.")
    effect: str = Field(min_length=1, description="Mechanism/consequence and management.")

    @model_validator(mode="after")
    def _one_target(self) -> Interaction:
        if (self.drug is None) == (self.agent is None):
            raise ValueError("exactly one of drug, agent is required")
        return self


class Drug(_Model):
    """A drug used first-line for one or more KB conditions."""

    id: str = Field(pattern=ID_PATTERN, description="Stable snake_case identifier.")
    name: str = Field(min_length=1, description="Generic name.")
    drug_class: str = Field(min_length=1, description="Pharmacological class.")
    allergy_groups: list[str] = Field(
        default_factory=list, description="Allergy group ids this drug belongs to."
    )
    doses: list[Dose] = Field(min_length=1, description="Usual adult doses.")
    max_daily: MaxDose | None = Field(default=None, description="Labelled maximum daily dose.")
    contraindications: list[Contraindication] = Field(
        default_factory=list, description="Structured contraindications."
    )
    renal: list[RenalRule] = Field(default_factory=list, description="Renal dosing rules.")
    interactions: list[Interaction] = Field(
        default_factory=list, description="Notable interactions."
    )
    note: str | None = Field(default=None, description="Anything else a prescriber must know.")

    def dose_for(self, condition_id: str | None = None) -> Dose:
        """The dose specific to ``condition_id`` if any, else the first general dose."""
        if condition_id is not None:
            for dose in self.doses:
                if dose.indication == condition_id:
                    return dose
        for dose in self.doses:
            if dose.indication is None:
                return dose
        return self.doses[0]


# --------------------------------------------------------------------------- conditions


class SexWeights(_Model):
    """Relative frequency of the condition by sex; weights sum to 1."""

    female: float = Field(ge=0, le=1, description="Share of cases that are female.")
    male: float = Field(ge=0, le=1, description="Share of cases that are male.")

    @model_validator(mode="after")
    def _sums_to_one(self) -> SexWeights:
        if not math.isclose(self.female + self.male, 1.0, abs_tol=1e-6):
            raise ValueError(f"weights sum to {_fmt(self.female + self.male)}, not 1")
        return self


class Symptom(_Model):
    """A presenting symptom and roughly how often it is present."""

    name: str = Field(min_length=1, description="Symptom as a patient/clinician states it.")
    frequency: float = Field(gt=0, le=1, description="Approximate share of patients with it.")


class LabFinding(_Model):
    """Typical result of a lab/vital in a condition: a numeric range or qualitative values."""

    low: float | None = Field(default=None, description="Lower end of the typical range.")
    high: float | None = Field(default=None, description="Upper end of the typical range.")
    values: list[str] | None = Field(default=None, description="Typical qualitative results.")
    note: str | None = Field(default=None, description="Interpretation or caveat.")

    @model_validator(mode="after")
    def _shape(self) -> LabFinding:
        numeric = self.low is not None or self.high is not None
        if numeric and self.values is not None:
            raise ValueError("give either low/high or values, not both")
        if numeric:
            if self.low is None or self.high is None:
                raise ValueError("both low and high are required")
            if self.low > self.high:
                raise ValueError(f"range {_fmt(self.low)}-{_fmt(self.high)} is reversed")
        elif not self.values:
            raise ValueError("either low/high or a non-empty values list is required")
        return self

    @property
    def range(self) -> Range | None:
        """The numeric range, or None for a qualitative finding."""
        if self.low is None or self.high is None:
            return None
        return Range(low=self.low, high=self.high)


class Imaging(_Model):
    """An imaging study or bedside diagnostic with its typical and a conflicting result."""

    modality: str = Field(min_length=1, description="e.g. Chest X-ray, CT head, ECG.")
    finding: str = Field(min_length=1, description="Typical finding in this condition.")
    contradicting_finding: str = Field(
        min_length=1, description="Plausible result that conflicts with exam/presentation."
    )
    note: str | None = Field(default=None, description="Indication or interpretation.")
    decisive: bool = Field(
        default=False,
        description="Whether the typical finding makes the diagnosis (a vegetation on "
        "echocardiography), so the team cites it for the working diagnosis.",
    )


class Differential(_Model):
    """An alternative diagnosis and what discriminates it from this condition."""

    name: str = Field(min_length=1, description="Alternative diagnosis.")
    condition_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="KB condition id when modelled."
    )
    favoured_by: str = Field(min_length=1, description="Finding that points to it instead.")
    argues_against: str = Field(
        min_length=1, description="Finding typical of this condition that argues against it."
    )
    also_against: tuple[str, ...] = Field(
        default=(),
        description="Other findings, each on its own arguing against it, cited in turn where "
        "the record does not show ``argues_against`` (build/discriminators.py).",
    )


class TreatmentDrug(_Model):
    """A drug in the condition's treatment plan."""

    drug: str = Field(pattern=ID_PATTERN, description="Drug id from drugs.yaml.")
    role: Literal["first_line", "alternative", "adjunct", "conditional"] = Field(
        description="Place in therapy."
    )
    dose: Dose | None = Field(default=None, description="Condition-specific dose, if any.")
    choice: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="Drugs of one condition sharing a choice label are interchangeable: a "
        "plan uses one of them, never two.",
    )
    note: str | None = Field(default=None, description="When/how to use it here.")


class Treatment(_Model):
    """First-line management: drugs and non-drug actions."""

    drugs: list[TreatmentDrug] = Field(default_factory=list, description="Drug therapy.")
    actions: list[str] = Field(default_factory=list, description="Non-drug actions.")


class CareItem(_Model):
    """Something the standard of care requires to be ordered, given or documented."""

    item: str = Field(min_length=1, description="What must be done.")
    kind: Literal["lab", "vital", "diagnostic", "drug", "documentation", "action"] = Field(
        description="Category; lab/vital/drug items should reference a KB id."
    )
    ref: str | None = Field(
        default=None, pattern=ID_PATTERN, description="Lab/vital or drug id for that kind."
    )
    timing: str | None = Field(default=None, description="Deadline or sequencing.")
    source: str = Field(min_length=1, description="Guideline that requires it.")


class HistoryStep(_Model):
    """A step of the pathway that a history item brings (an operation, a device, a habit)."""

    history: str = Field(
        min_length=1, description="Regular expression (any case) matched against history items."
    )
    step: str = Field(min_length=1, description="What the team does because of it.")
    source: str = Field(min_length=1, description="Guideline that requires it.")

    @model_validator(mode="after")
    def _pattern(self) -> HistoryStep:
        try:
            re.compile(self.history)
        except re.error as e:
            raise ValueError(f"history pattern {self.history!r} does not compile: {e}") from e
        return self


class Condition(_Model):
    """An internal-medicine condition with everything needed to synthesise a case."""

    id: str = Field(pattern=ID_PATTERN, description="Stable id; equals the file stem.")
    name: str = Field(min_length=1, description="Display name.")
    system: System = Field(description="Organ system / category.")
    icd10: list[str] = Field(
        default_factory=list, description="ICD-10-CM codes, only where certain."
    )
    age: Range = Field(description="Typical adult age range in years.")
    sex_weights: SexWeights = Field(description="Sex distribution.")
    symptoms: list[Symptom] = Field(description="Presenting symptoms.")
    risk_factors: list[str] = Field(description="History and risk factors.")
    vitals: dict[str, LabFinding] = Field(description="Vital id -> typical range.")
    exam: list[str] = Field(description="Typical examination findings.")
    labs: dict[str, LabFinding] = Field(description="Lab id -> typical (deranged) result.")
    normal_labs: dict[str, str] = Field(
        default_factory=dict, description="Lab id -> why a normal result is discriminating."
    )
    imaging: list[Imaging] = Field(description="Imaging and other diagnostics.")
    decisive_results: list[str] = Field(
        default_factory=list,
        description=(
            "Results that make the diagnosis where no study report does, cited as a "
            "differential's argues_against is ('CK above 5x ULN'): the attending's 'fits "
            "best given' cites the first the record shows (build/coherence.decisive_result)."
        ),
    )
    fits_best_by: list[str] = Field(
        default_factory=list,
        description=(
            "Where neither a study nor a decisive result makes the diagnosis: findings, typical "
            "of it, that set it apart from its differentials ('known COPD with purulent sputum "
            "and PaCO2 above 45 mmHg'); the attending's 'fits best given' cites the first the "
            "record shows instead of the presenting complaint (build/discriminators.py)."
        ),
    )
    differentials: list[Differential] = Field(description="Differential diagnoses.")
    treatments: Treatment = Field(description="First-line management.")
    standard_of_care: list[CareItem] = Field(description="Required orders/documentation.")
    next_actions: list[str] = Field(description="Typical next steps after diagnosis.")
    history_steps: list[HistoryStep] = Field(
        default_factory=list,
        description="Steps the plan takes when the history holds an item (sources/history.py).",
    )
    sources: list[str] = Field(min_length=1, description="Guidelines the entry draws on.")

    @model_validator(mode="after")
    def _icd_codes(self) -> Condition:
        bad = [c for c in self.icd10 if not re.match(ICD10_PATTERN, c)]
        if bad:
            raise ValueError(f"icd10 codes {bad} are malformed")
        return self


# --------------------------------------------------------------------------- the KB


class KnowledgeBase(_Model):
    """The loaded, cross-validated knowledge base, keyed by id."""

    labs: dict[str, Lab] = Field(description="Lab/vital id -> Lab.")
    allergy_groups: dict[str, AllergyGroup] = Field(description="Group id -> AllergyGroup.")
    drugs: dict[str, Drug] = Field(description="Drug id -> Drug.")
    conditions: dict[str, Condition] = Field(description="Condition id -> Condition.")

    def lab(self, lab_id: str) -> Lab:
        """Look up a lab by id; raises KeyError naming the unknown id."""
        return _lookup(self.labs, lab_id, "lab")

    def drug(self, drug_id: str) -> Drug:
        """Look up a drug by id; raises KeyError naming the unknown id."""
        return _lookup(self.drugs, drug_id, "drug")

    def condition(self, condition_id: str) -> Condition:
        """Look up a condition by id; raises KeyError naming the unknown id."""
        return _lookup(self.conditions, condition_id, "condition")

    def drugs_in_allergy_group(
        self, group_id: str, *, include_cross_reactive: bool = False
    ) -> list[Drug]:
        """Drugs labelled with ``group_id`` (plus cross-reactive groups if asked), by id."""
        groups = {_lookup(self.allergy_groups, group_id, "allergy group").id}
        if include_cross_reactive:
            groups |= {c.group for c in self.allergy_groups[group_id].cross_reactivity}
        return [d for _, d in sorted(self.drugs.items()) if groups & set(d.allergy_groups)]

    def interactions_between(self, drug_a: str, drug_b: str) -> list[Interaction]:
        """Interactions recorded on either drug that name the other (order-insensitive)."""
        first, second = self.drug(drug_a), self.drug(drug_b)
        return [i for i in first.interactions if i.drug == second.id] + [
            i for i in second.interactions if i.drug == first.id
        ]


_T = TypeVar("_T")


def _lookup(table: dict[str, _T], key: str, what: str) -> _T:
    try:
        return table[key]
    except KeyError:
        raise KeyError(f"unknown {what} id {key!r}") from None


class KBValidationError(ValueError):
    """The KB on disk is malformed; ``errors`` holds one ``file: field: problem`` per issue."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  {e}" for e in self.errors)
        super().__init__(f"knowledge base is invalid ({len(self.errors)} problem(s)):\n{lines}")


# --------------------------------------------------------------------------- loading


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys.

    PyYAML silently keeps the last duplicate, which would drop e.g. one of two ``glucose``
    entries in a condition without anyone noticing.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, raising on a repeated key."""
        seen: set[Any] = set()
        for key_node, _value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable key; let PyYAML report it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _clean_msg(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


class _Collector:
    """Accumulates ``file: where: problem`` lines so every issue is reported at once."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, file: str, where: str, problem: str) -> None:
        self.errors.append(f"{file}: {where}: {problem}" if where else f"{file}: {problem}")

    def validation(self, file: str, where: str, exc: ValidationError) -> None:
        for err in exc.errors():
            loc = _format_loc(tuple(err["loc"]))
            self.add(file, _join(where, loc), _clean_msg(err["msg"]))


def _read_yaml(root: Traversable, rel: str, out: _Collector) -> Any:
    node = root
    for part in rel.split("/"):
        node = node.joinpath(part)
    if not node.is_file():
        out.add(rel, "", "file is missing")
        return None
    try:
        doc = yaml.load(node.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        out.add(rel, "", f"invalid YAML: {detail}")
        return None
    if doc is None:
        out.add(rel, "", "file is empty")
    return doc


_M = TypeVar("_M", bound=_Model)


def _parse_list(
    doc: Any, file: str, section: str, model: type[_M], out: _Collector
) -> dict[str, _M]:
    """Validate ``doc[section]`` (a list of entries) into ``{id: model}``."""
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get(section), list):
        out.add(file, section, "expected a top-level list under this key")
        return {}
    parsed: dict[str, _M] = {}
    for index, raw in enumerate(doc[section]):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        label = f"{section}[{raw_id if isinstance(raw_id, str) else index}]"
        try:
            item = model.model_validate(raw)
        except ValidationError as exc:
            out.validation(file, label, exc)
            continue
        item_id = item.id  # type: ignore[attr-defined]
        if item_id in parsed:
            out.add(file, label, f"duplicate id {item_id!r}")
            continue
        parsed[item_id] = item
    return parsed


def _condition_files(root: Traversable) -> list[Traversable]:
    folder = root.joinpath("conditions")
    if not folder.is_dir():
        return []
    return sorted(
        (f for f in folder.iterdir() if f.is_file() and f.name.endswith((".yaml", ".yml"))),
        key=lambda f: f.name,
    )


class _Checker:
    """Cross-file checks, run once every file has parsed."""

    def __init__(
        self,
        labs: dict[str, Lab],
        groups: dict[str, AllergyGroup],
        drugs: dict[str, Drug],
        conditions: dict[str, tuple[str, Condition]],
        out: _Collector,
    ) -> None:
        self.labs = labs
        self.groups = groups
        self.drugs = drugs
        self.conditions = conditions
        self.out = out

    # -- helpers

    def _known(self, file: str, where: str, kind: str, ref: str, table: dict[str, Any]) -> bool:
        if ref in table:
            return True
        self.out.add(file, where, f"unknown {kind} id {ref!r}")
        return False

    def _threshold(self, file: str, where: str, lab_id: str, value: float) -> None:
        if not self._known(file, where, "lab", lab_id, self.labs):
            return
        lab = self.labs[lab_id]
        if lab.bounds is None:
            self.out.add(file, where, f"lab {lab_id!r} is qualitative; it has no threshold")
        elif not lab.bounds.low <= value <= lab.bounds.high:
            self.out.add(
                file,
                where,
                f"threshold {_fmt(value)} lies outside bounds "
                f"{_fmt(lab.bounds.low)}-{_fmt(lab.bounds.high)} of {lab_id!r}",
            )

    def _finding(self, file: str, where: str, lab_id: str, finding: LabFinding) -> None:
        lab = self.labs[lab_id]
        rng = finding.range
        if lab.kind == "qualitative":
            if rng is not None:
                self.out.add(file, where, f"lab {lab_id!r} is qualitative; give values")
                return
            unknown = [v for v in finding.values or [] if v not in lab.values]
            if unknown:
                self.out.add(file, where, f"values {unknown} are not among {lab.values}")
            return
        if rng is None:
            self.out.add(file, where, f"lab {lab_id!r} is quantitative; give low/high")
            return
        assert lab.bounds is not None  # guaranteed for quantitative labs by Lab validation
        if not lab.bounds.contains(rng):
            self.out.add(
                file,
                where,
                f"range {_fmt(rng.low)}-{_fmt(rng.high)} lies outside bounds "
                f"{_fmt(lab.bounds.low)}-{_fmt(lab.bounds.high)}",
            )

    def _dose(self, file: str, where: str, dose: Dose) -> None:
        if dose.indication is not None:
            self._known(file, f"{where}.indication", "condition", dose.indication, self.conditions)

    # -- per file

    def allergy_groups(self) -> None:
        for gid, group in self.groups.items():
            for i, cr in enumerate(group.cross_reactivity):
                where = f"allergy_groups[{gid}].cross_reactivity[{i}].group"
                self._known("drugs.yaml", where, "allergy group", cr.group, self.groups)

    def drug(self, drug: Drug) -> None:
        file, base = "drugs.yaml", f"drugs[{drug.id}]"
        for i, gid in enumerate(drug.allergy_groups):
            self._known(file, f"{base}.allergy_groups[{i}]", "allergy group", gid, self.groups)
        for i, dose in enumerate(drug.doses):
            self._dose(file, f"{base}.doses[{i}]", dose)
        for i, ci in enumerate(drug.contraindications):
            where = f"{base}.contraindications[{i}]"
            if ci.allergy_group is not None:
                self._known(
                    file, f"{where}.allergy_group", "allergy group", ci.allergy_group, self.groups
                )
            if ci.condition is not None:
                self._known(file, f"{where}.condition", "condition", ci.condition, self.conditions)
            if ci.lab is not None and ci.value is not None:
                self._threshold(file, f"{where}.lab", ci.lab, ci.value)
        for i, rule in enumerate(drug.renal):
            where = f"{base}.renal[{i}].metric"
            if rule.metric not in {"egfr", "crcl", "creatinine"}:
                self.out.add(file, where, f"{rule.metric!r} is not egfr, crcl or creatinine")
            self._threshold(file, where, rule.metric, rule.value)
        for i, ia in enumerate(drug.interactions):
            if ia.drug is not None:
                where = f"{base}.interactions[{i}].drug"
                if ia.drug == drug.id:
                    self.out.add(file, where, "a drug cannot interact with itself")
                else:
                    self._known(file, where, "drug", ia.drug, self.drugs)

    def condition(self, file: str, cond: Condition) -> None:
        for section, table, want_vitals in (
            ("vitals", cond.vitals, True),
            ("labs", cond.labs, False),
        ):
            for lab_id, finding in table.items():
                where = f"{section}.{lab_id}"
                if not self._known(file, where, "lab", lab_id, self.labs):
                    continue
                is_vital = self.labs[lab_id].panel == "vitals"
                if is_vital != want_vitals:
                    self.out.add(
                        file, where, f"{lab_id!r} belongs under {'vitals' if is_vital else 'labs'}"
                    )
                self._finding(file, where, lab_id, finding)
        for lab_id in cond.normal_labs:
            where = f"normal_labs.{lab_id}"
            if self._known(file, where, "lab", lab_id, self.labs) and lab_id in cond.labs:
                self.out.add(file, where, "also listed under labs")
        for i, diff in enumerate(cond.differentials):
            if diff.condition_id is None:
                continue
            where = f"differentials[{i}].condition_id"
            if diff.condition_id == cond.id:
                self.out.add(file, where, "a condition cannot be its own differential")
            else:
                self._known(file, where, "condition", diff.condition_id, self.conditions)
        for i, td in enumerate(cond.treatments.drugs):
            where = f"treatments.drugs[{i}]"
            self._known(file, f"{where}.drug", "drug", td.drug, self.drugs)
            if td.dose is not None:
                self._dose(file, f"{where}.dose", td.dose)
        for i, care in enumerate(cond.standard_of_care):
            where = f"standard_of_care[{i}].ref"
            if care.kind in {"lab", "vital", "drug"} and care.ref is None:
                self.out.add(file, where, f"a {care.kind} item must reference a KB id")
            elif care.ref is not None:
                ids: dict[str, Any] = self.drugs if care.kind == "drug" else self.labs
                kind = "drug" if care.kind == "drug" else "lab"
                if care.kind not in {"lab", "vital", "drug"}:
                    self.out.add(
                        file, where, f"ref is only for lab, vital and drug items, not {care.kind}"
                    )
                else:
                    self._known(file, where, kind, care.ref, ids)
        counts: dict[str, int] = {
            "symptoms": len(cond.symptoms),
            "risk_factors": len(cond.risk_factors),
            "vitals": len(cond.vitals),
            "exam": len(cond.exam),
            "labs": len(cond.labs),
            "imaging": len(cond.imaging),
            "differentials": len(cond.differentials),
            "treatments.drugs": len(cond.treatments.drugs),
            "treatments.actions": len(cond.treatments.actions),
            "standard_of_care": len(cond.standard_of_care),
            "next_actions": len(cond.next_actions),
        }
        for section, minimum in MIN_SECTION_ITEMS.items():
            if counts[section] < minimum:
                self.out.add(
                    file, section, f"needs at least {minimum} item(s), has {counts[section]}"
                )


def _load(root: Traversable) -> KnowledgeBase:
    out = _Collector()

    labs = _parse_list(_read_yaml(root, "labs.yaml", out), "labs.yaml", "labs", Lab, out)
    drugs_doc = _read_yaml(root, "drugs.yaml", out)
    groups = _parse_list(drugs_doc, "drugs.yaml", "allergy_groups", AllergyGroup, out)
    drugs = _parse_list(drugs_doc, "drugs.yaml", "drugs", Drug, out)

    conditions: dict[str, tuple[str, Condition]] = {}
    names: dict[str, str] = {}
    cond_files = _condition_files(root)
    if not cond_files:
        out.add("conditions/", "", "no condition files found")
    for node in cond_files:
        rel = f"conditions/{node.name}"
        doc = _read_yaml(root, rel, out)
        if doc is None:
            continue
        try:
            cond = Condition.model_validate(doc)
        except ValidationError as exc:
            out.validation(rel, "", exc)
            continue
        stem = node.name.rsplit(".", 1)[0]
        if cond.id != stem:
            out.add(rel, "id", f"id {cond.id!r} does not match the file name {stem!r}")
        if cond.id in conditions:
            out.add(rel, "id", f"duplicate id {cond.id!r} (also in {conditions[cond.id][0]})")
            continue
        key = cond.name.casefold()
        if key in names:
            out.add(rel, "name", f"duplicate condition name {cond.name!r} (also in {names[key]})")
        names.setdefault(key, rel)
        conditions[cond.id] = (rel, cond)

    check = _Checker(labs, groups, drugs, conditions, out)
    check.allergy_groups()
    for drug in drugs.values():
        check.drug(drug)
    for rel, cond in conditions.values():
        check.condition(rel, cond)

    if out.errors:
        raise KBValidationError(out.errors)
    return KnowledgeBase(
        labs=labs,
        allergy_groups=groups,
        drugs=drugs,
        conditions={cid: cond for cid, (_, cond) in sorted(conditions.items())},
    )


def default_kb_root() -> Traversable:
    """Location of the packaged KB (``behaviorsft/data/kb``), via importlib.resources."""
    return files("behaviorsft") / "data" / "kb"


@functools.lru_cache(maxsize=1)
def _default_kb() -> KnowledgeBase:
    # Parsing ~50 YAML files costs a noticeable fraction of a second; case generation
    # asks for the KB per case, so the packaged (immutable) copy is parsed once.
    return _load(default_kb_root())


def load_kb(path: Path | None = None) -> KnowledgeBase:
    """Load and cross-validate a knowledge base.

    Args:
        path: A KB directory (``labs.yaml``, ``drugs.yaml``, ``conditions/``).  ``None``
            loads the copy packaged with behaviorsft, cached after the first call.

    Raises:
        KBValidationError: listing every problem as ``<file>: <entry/field>: <problem>``.
    """
    if path is None:
        return _default_kb()
    return _load(Path(path))
