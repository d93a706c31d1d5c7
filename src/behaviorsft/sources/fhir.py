"""FHIR R4 ``Bundle`` JSON, as Synthea exports it, to one ``Case`` per bundle.

Resources are validated with ``fhir.resources`` (its ``R4B`` model set), one
entry at a time, so that a bad entry is reported as ``entry[i].<field>`` and
the rest of the bundle still imports. Measured on the six Synthea bundles in
``shared/data/fhir`` (1.3-2.4 MB, 430-1,062 entries), one CPU core, warm:

* this importer (``fhir.resources`` 8.3.0, ``R4B``, only the resource types
  read here are validated): 0.04-0.12 s per bundle, 0.5 s for all six in a
  fresh process including the library's import;
* validating each whole ``Bundle`` with the same models: 0.15-0.38 s per
  bundle; all six validate, so the library accepts valid Synthea output;
* ``fhir.resources`` 8.x default (R5) models reject all six bundles (370-580
  errors each: ``Encounter.class`` is a list in R5, ``DocumentReference.context``
  changed, ...); R4 and R4B agree on every resource this module reads;
* ``fhir.resources`` 6.x (the last line with an ``R4`` package) needs pydantic
  1 and fails to import beside pydantic 2. 8.0.0 and 8.3.0 both pass the tests.

Why the library and not hand parsing: it checks cardinality, required
elements ("Observation.status is required"), FHIR date/decimal syntax and
choice types for us, names the offending element in its errors, and is fast
enough. It is a dependency: ``fhir.resources>=8.0,<9``.

What is read: Patient (sex, age at the most recent encounter), Encounter,
Condition, Observation (with components), MedicationRequest (and Medication
resources it references), AllergyIntolerance, Procedure and DiagnosticReport.
Other resource types (Claim, ExplanationOfBenefit, Immunization, ...) are
counted in the "FHIR import notes" section and otherwise ignored. A
MedicationRequest no longer in force (stopped, completed, ...) is a timeline
event, not one of the case's medications; ``fhir_tidy`` rounds vital signs,
names CIEL-coded ones and tidies the encounter note.

Finding kinds: the ``vital-signs`` category (or a vital-sign LOINC code or
name, which some exporters file under 'exam' or 'survey') gives 'vital';
``laboratory`` 'lab'; ``exam`` 'exam'; ``imaging`` 'imaging'; no category
'lab'; any other category ('survey', 'social-history': questionnaire answers,
not measurements) 'other'. Codes are kept as the bundle gives them (the
synthea-hiv sample puts padded OpenMRS concept ids, "5089AAAA...", under the
LOINC system URL).

One Synthea bundle spans a whole life, so a case keeps only the most recent
``MAX_OBSERVATIONS`` observations, ``MAX_EVENTS`` timeline events,
``MAX_MEDICATIONS`` medication requests and ``MAX_CONDITIONS`` conditions, and
says so in its "FHIR import notes" section. Its presentation summarises the
most recent encounter; the clinical note Synthea attaches to that encounter
(a DiagnosticReport's ``presentedForm``) becomes the section "Most recent
encounter note".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

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
)
from behaviorsft.sources._common import (
    Imported,
    decode_utf8,
    error,
    error_from_validation,
    guarded,
    make_source,
    read_bytes,
)
from behaviorsft.sources.fhir_tidy import (
    ciel_name,
    clinical_value,
    is_vital_code,
    name_blood_pressures,
    settle_conditions,
    tidy_findings,
    tidy_note,
)

SOURCE = "fhir"
# Caps that keep a whole-life bundle to a case an LLM prompt can hold.
MAX_OBSERVATIONS = 200
MAX_EVENTS = 300
MAX_MEDICATIONS = 100
MAX_CONDITIONS = 100
# Observations of the most recent encounter listed in the presentation.
_MAX_PRESENTED_OBSERVATIONS = 20

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

FHIR_DEPENDENCY = "fhir.resources>=8.0,<9"

# MedicationRequest statuses of a prescription no longer in force.
_ENDED_REQUESTS = frozenset({"stopped", "completed", "cancelled", "entered-in-error"})

_READ_TYPES = frozenset(
    {
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
        "MedicationRequest",
        "Medication",
        "AllergyIntolerance",
        "Procedure",
        "DiagnosticReport",
    }
)

# LOINC codes of vital signs, for observations whose category does not say so.
_VITAL_LOINC = frozenset(
    {
        "8310-5",  # body temperature
        "8867-4",  # heart rate
        "9279-1",  # respiratory rate
        "85354-9",  # blood pressure panel
        "8480-6",  # systolic
        "8462-4",  # diastolic
        "2708-6",  # oxygen saturation (arterial)
        "59408-5",  # oxygen saturation (pulse oximetry)
        "29463-7",  # body weight
        "8302-2",  # body height
        "39156-5",  # BMI
        "8287-5",  # head circumference
    }
)
_VITAL_NAMES = (
    "temperature",
    "pulse",
    "heart rate",
    "respiratory rate",
    "blood pressure",
    "oxygen saturation",
    "weight",
    "height",
    "body mass index",
)
_CATEGORY_KIND = {
    "vital-signs": "vital",
    "laboratory": "lab",
    "exam": "exam",
    "imaging": "imaging",
}


@cache
def _model_class(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


class _EntryProblem(ValueError):
    """A resource that validated as FHIR but cannot become a record; names the element."""

    def __init__(self, element: str, message: str) -> None:
        super().__init__(message)
        self.element = element


@dataclass
class _Entry:
    index: int
    full_url: str | None
    resource: Any  # a fhir.resources model


@dataclass
class _Bundle:
    """The validated entries of one bundle, by type."""

    by_type: dict[str, list[_Entry]] = field(default_factory=dict)
    ignored: Counter[str] = field(default_factory=Counter)
    total: int = 0

    def of(self, resource_type: str) -> list[_Entry]:
        return self.by_type.get(resource_type, [])


def read(path: Path) -> Iterator[Imported]:
    """Import one FHIR Bundle JSON file as one case; bad entries are reported, not fatal."""
    path = Path(path)
    data = read_bytes(path)
    if isinstance(data, Imported):
        yield data
        return
    text = decode_utf8(path, data)
    if isinstance(text, Imported):
        yield text
        return
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        yield error(
            path,
            exc.lineno,
            "<file>",
            f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
        )
        return
    except RecursionError:
        yield error(path, 1, "<file>", "not JSON: nested too deeply")
        return
    yield from read_document(doc, path)


def read_document(doc: object, path: Path) -> Iterator[Imported]:
    """Import an already parsed Bundle (e.g. a CDS Hooks prefetch); ``path`` names its origin."""
    if not isinstance(doc, dict):
        yield error(
            path,
            1,
            "resourceType",
            f"expected a FHIR Bundle object, got a JSON {type(doc).__name__}",
        )
        return
    rtype = doc.get("resourceType")
    if rtype != "Bundle":
        yield error(path, 1, "resourceType", f"resourceType was {rtype!r} not 'Bundle'")
        return
    entries = doc.get("entry")
    if not isinstance(entries, list) or not entries:
        yield error(path, 1, "entry", "a Bundle needs a non-empty `entry` list")
        return
    try:
        _model_class("Patient")
    except ImportError:
        yield error(
            path, 0, "<file>", f"the FHIR importer needs {FHIR_DEPENDENCY!r}: pip install it"
        )
        return

    bundle = _Bundle(total=len(entries))
    for i, entry in enumerate(entries):
        problem = _collect(path, i, entry, bundle)
        if problem is not None:
            yield problem

    patients = bundle.of("Patient")
    if not patients:
        yield error(path, 1, "entry", "no valid Patient resource in the bundle")
        return
    for extra in patients[1:]:
        yield error(
            path,
            extra.index,
            f"entry[{extra.index}].resource",
            "a second Patient in one bundle: only the first is imported",
        )
    yield from _build(path, doc, bundle)


def _collect(path: Path, i: int, entry: object, bundle: _Bundle) -> Imported | None:
    """Validate entry ``i`` and file it by type; return an error if it is bad."""
    where = f"entry[{i}]"
    if not isinstance(entry, dict):
        return error(path, i, where, f"expected an object, got {type(entry).__name__}")
    res = entry.get("resource")
    if res is None and ("request" in entry or "response" in entry):
        bundle.ignored["(request/response only)"] += 1  # e.g. a DELETE in a transaction
        return None
    if not isinstance(res, dict):
        return error(path, i, f"{where}.resource", "missing: every entry needs a resource object")
    rtype = res.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return error(path, i, f"{where}.resource.resourceType", "missing")
    if rtype not in _READ_TYPES:
        bundle.ignored[rtype] += 1
        return None
    try:
        model = _model_class(rtype).model_validate(res)
    except ValidationError as exc:
        return error_from_validation(path, i, exc, prefix=f"{where}.resource")
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        # A validator of the FHIR library that chokes on odd input is still the
        # entry's problem, not a reason to lose the bundle.
        return error(path, i, f"{where}.resource", f"invalid {rtype}: {type(exc).__name__}: {exc}")
    full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
    bundle.by_type.setdefault(rtype, []).append(_Entry(i, full_url, model))
    return None


# --------------------------------------------------------------------------
# Small readers of FHIR datatypes
# --------------------------------------------------------------------------


def _as_datetime(value: object) -> datetime | None:
    """A FHIR date/dateTime (model value or partial string) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    s = str(value)
    # Partial dates ("1980", "1980-05") mean "some time then": take the first day.
    for fmt in ("%Y-%m-%d", "%Y-%m", "%Y"):
        try:
            return datetime.strptime(s[: len(fmt) + 2], fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _concept_text(cc: Any) -> str | None:
    """Readable name of a CodeableConcept: its text, else the first coding's display or code."""
    if cc is None:
        return None
    if getattr(cc, "text", None):
        return str(cc.text).strip() or None
    for coding in getattr(cc, "coding", None) or []:
        if coding.display:
            return str(coding.display).strip()
    for coding in getattr(cc, "coding", None) or []:
        if coding.code:
            return str(coding.code)
    return None


def _coding(cc: Any, prefer: str) -> tuple[str | None, str | None]:
    """(system, code) of a CodeableConcept, preferring the ``prefer`` system."""
    codings = [c for c in (getattr(cc, "coding", None) or []) if c.code]
    if not codings:
        return None, None
    best = next((c for c in codings if c.system == prefer), codings[0])
    return (best.system or "unknown"), str(best.code)


def _codes(ccs: Iterable[Any] | None) -> set[str]:
    return {str(c.code) for cc in ccs or [] for c in (cc.coding or []) if c.code}


def _number(value: object) -> float | None:
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return float(value)
    return None


def _ref_matches(reference: Any, targets: set[str]) -> bool:
    ref = getattr(reference, "reference", None)
    return bool(ref) and ref in targets


def _targets(entry: _Entry, resource_type: str) -> set[str]:
    """Every way another resource may reference ``entry``."""
    rid = getattr(entry.resource, "id", None)
    out = {u for u in (entry.full_url,) if u}
    if rid:
        out |= {f"{resource_type}/{rid}", f"urn:uuid:{rid}"}
    return out


def _fmt_number(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e15 else str(x)


# --------------------------------------------------------------------------
# Resources to records
# --------------------------------------------------------------------------


def _value(
    element: Any,
) -> tuple[float | None, str | None, str | None] | None:
    """(value, unit, value_text) of an Observation or component; None when it has no value."""
    q = getattr(element, "valueQuantity", None)
    if q is not None and q.value is not None:
        value = _number(q.value)
        unit = q.unit or q.code
        text = f"{q.comparator}{_fmt_number(value)}" if q.comparator and value is not None else None
        return value, unit, text
    cc = getattr(element, "valueCodeableConcept", None)
    if cc is not None and _concept_text(cc):
        return None, None, _concept_text(cc)
    s = getattr(element, "valueString", None)
    if s:
        return None, None, str(s)
    b = getattr(element, "valueBoolean", None)
    if b is not None:
        return None, None, "true" if b else "false"
    n = getattr(element, "valueInteger", None)
    if n is not None:
        return float(n), None, None
    r = getattr(element, "valueRange", None)
    if r is not None and (r.low is not None or r.high is not None):
        lo = (
            _fmt_number(float(r.low.value)) if r.low is not None and r.low.value is not None else ""
        )
        hi = (
            _fmt_number(float(r.high.value))
            if r.high is not None and r.high.value is not None
            else ""
        )
        return None, None, f"{lo}-{hi}"
    for name in ("valueDateTime", "valueTime"):
        v = getattr(element, name, None)
        if v is not None:
            return None, None, v.isoformat() if hasattr(v, "isoformat") else str(v)
    return None


def _reference_range(ranges: list[Any] | None) -> ReferenceRange | None:
    if not ranges:
        return None
    rr = ranges[0]
    low = _number(rr.low.value) if rr.low is not None else None
    high = _number(rr.high.value) if rr.high is not None else None
    text = str(rr.text) if rr.text else None
    if low is None and high is None and not text:
        return None
    try:
        return ReferenceRange(low=low, high=high, text=text)
    except ValidationError as exc:
        msg = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise _EntryProblem("referenceRange[0]", msg) from None


def _finding_kind(obs: Any, name: str, code: str | None) -> str:
    categories = _codes(obs.category)
    if "vital-signs" in categories or code in _VITAL_LOINC or is_vital_code(code):
        return "vital"
    # Some exporters file vitals under 'exam' or 'survey' (the Synthea HIV
    # sample does); a vital sign's name is unambiguous enough to go by.
    lowered = name.lower()
    if "laboratory" not in categories and any(v in lowered for v in _VITAL_NAMES):
        return "vital"
    for cat, kind in _CATEGORY_KIND.items():
        if cat in categories:
            return kind
    # No category: FHIR servers mostly leave it off lab results. Questionnaire
    # answers ('survey', 'social-history') are not measurements.
    return "lab" if not categories else "other"


def _observation_time(obs: Any) -> datetime | None:
    if obs.effectiveDateTime is not None:
        return _as_datetime(obs.effectiveDateTime)
    if obs.effectivePeriod is not None and obs.effectivePeriod.start is not None:
        return _as_datetime(obs.effectivePeriod.start)
    if getattr(obs, "effectiveInstant", None) is not None:
        return _as_datetime(obs.effectiveInstant)
    return _as_datetime(obs.issued)


def _findings(obs: Any) -> list[Finding]:
    """The findings of one Observation: its own value and one per valued component."""
    system, code = _coding(obs.code, LOINC)
    name = ciel_name(code, _concept_text(obs.code) or "Observation")
    kind = _finding_kind(obs, name, code)
    time = _observation_time(obs)
    out: list[Finding] = []
    own = _value(obs)
    if own is not None:
        value, unit, text = own
        out.append(
            Finding(
                name=name,
                kind=kind,
                value=clinical_value(code, value),
                value_text=text,
                unit=unit,
                reference_range=_reference_range(obs.referenceRange),
                time=time,
                code_system=system,
                code=code,
            )
        )
    for comp in obs.component or []:
        got = _value(comp)
        if got is None:
            continue
        value, unit, text = got
        c_system, c_code = _coding(comp.code, LOINC)
        out.append(
            Finding(
                name=ciel_name(c_code, _concept_text(comp.code) or name),
                kind=kind,
                value=clinical_value(c_code, value),
                value_text=text,
                unit=unit,
                reference_range=_reference_range(comp.referenceRange),
                time=time,
                code_system=c_system,
                code=c_code,
            )
        )
    return out


def _condition(res: Any) -> tuple[Condition, list[Event]]:
    name = _concept_text(res.code) or "Unnamed condition"
    system, code = _coding(res.code, SNOMED)
    status = _concept_text(res.clinicalStatus)
    onset = _as_datetime(res.onsetDateTime) or (
        _as_datetime(res.onsetPeriod.start) if res.onsetPeriod is not None else None
    )
    if onset is None:
        onset = _as_datetime(res.recordedDate)
    cond = Condition(name=name, status=status, onset=onset, code_system=system, code=code)
    events = [Event(time=onset, kind="diagnosis", text=f"Diagnosis: {name}")]
    abated = _as_datetime(res.abatementDateTime)
    if abated is not None:
        events.append(Event(time=abated, kind="diagnosis", text=f"Resolved: {name}"))
    return cond, events


def _medication(res: Any, medications: dict[str, Any]) -> tuple[Medication, Event]:
    concept = res.medicationCodeableConcept
    if concept is None and res.medicationReference is not None:
        ref = res.medicationReference
        target = medications.get(ref.reference or "")
        concept = target.code if target is not None else None
        name = _concept_text(concept) or (str(ref.display) if ref.display else None)
    else:
        name = _concept_text(concept)
    if not name:
        raise _EntryProblem("medication[x]", "no name (no text, display or resolvable reference)")
    system, code = _coding(concept, RXNORM) if concept is not None else (None, None)
    dosage = res.dosageInstruction[0] if res.dosageInstruction else None
    route = _concept_text(dosage.route) if dosage is not None else None
    reason = "; ".join(t for t in (_concept_text(c) for c in res.reasonCode or []) if t) or None
    start = _as_datetime(res.authoredOn)
    med = Medication(
        name=name,
        dose=str(dosage.text) if dosage is not None and dosage.text else None,
        route=route,
        indication=reason,
        start=start,
        code_system=system,
        code=code,
    )
    status = f" ({res.status})" if res.status else ""
    return med, Event(time=start, kind="medication", text=f"Prescribed: {name}{status}")


def _allergy(res: Any) -> tuple[Allergy, Event | None]:
    substance = _concept_text(res.code)
    if not substance:
        raise _EntryProblem("code", "the allergy names no substance")
    reaction = severity = None
    if res.reaction:
        first = res.reaction[0]
        reaction = "; ".join(t for t in (_concept_text(m) for m in first.manifestation or []) if t)
        severity = first.severity
    allergy = Allergy(
        substance=substance, reaction=reaction or None, severity=severity or res.criticality
    )
    when = _as_datetime(res.onsetDateTime) or _as_datetime(res.recordedDate)
    event = (
        Event(time=when, kind="allergy", text=f"Allergy recorded: {substance}") if when else None
    )
    return allergy, event


def _procedure(res: Any) -> Event:
    name = _concept_text(res.code) or "Procedure"
    when = _as_datetime(res.performedDateTime) or (
        _as_datetime(res.performedPeriod.start) if res.performedPeriod is not None else None
    )
    reason = "; ".join(t for t in (_concept_text(c) for c in res.reasonCode or []) if t)
    return Event(
        time=when,
        kind="procedure",
        text=f"Procedure: {name}" + (f" for {reason}" if reason else ""),
    )


def _report(res: Any) -> Event:
    name = _concept_text(res.code) or "Report"
    when = _as_datetime(res.effectiveDateTime) or (
        _as_datetime(res.effectivePeriod.start) if res.effectivePeriod is not None else None
    )
    when = when or _as_datetime(res.issued)
    categories = {c.lower() for c in _codes(res.category)}
    kind = (
        "imaging" if categories & {"rad", "imaging"} else "lab" if "lab" in categories else "report"
    )
    text = f"Report: {name}"
    if res.conclusion:
        text += f" - {res.conclusion}"
    return Event(time=when, kind=kind, text=text)


def _encounter_label(res: Any) -> str:
    kind = next((t for t in (_concept_text(c) for c in res.type or []) if t), None) or "Encounter"
    cls = getattr(res, "class_fhir", None)
    cls_code = getattr(cls, "code", None) or getattr(cls, "display", None)
    reasons = "; ".join(t for t in (_concept_text(c) for c in res.reasonCode or []) if t)
    label = kind + (f" ({cls_code})" if cls_code else "")
    return label + (f", reason: {reasons}" if reasons else "")


def _encounter_start(res: Any) -> datetime | None:
    return _as_datetime(res.period.start) if res.period is not None else None


def _note_text(report: Any) -> str | None:
    """Plain-text clinical note attached to a DiagnosticReport, if any."""
    for form in report.presentedForm or []:
        if form.contentType and not str(form.contentType).startswith("text/"):
            continue
        raw = form.data
        if raw is None:
            continue
        if isinstance(raw, str):
            try:
                raw = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                continue
        text = bytes(raw).decode("utf-8", errors="replace").strip()
        if text:
            return text
    return None


def _age_years(birth: datetime, at: datetime) -> float:
    days = (at - birth).total_seconds() / 86400
    years = max(days, 0.0) / 365.2425
    # Whole years as clinicians state them; fractions only for infants.
    return float(int(years)) if years >= 2 else round(years, 2)


def _patient_description(patient: Any) -> str:
    parts: list[str] = []
    for ext in patient.extension or []:
        url = str(ext.url or "")
        if url.endswith(("us-core-race", "us-core-ethnicity")):
            for sub in ext.extension or []:
                if sub.url == "text" and sub.valueString:
                    parts.append(str(sub.valueString))
    deceased = _as_datetime(patient.deceasedDateTime)
    if deceased is not None:
        parts.append(f"deceased {deceased.date().isoformat()}")
    elif patient.deceasedBoolean:
        parts.append("deceased")
    return "; ".join(parts)


def _sort_key(t: datetime | None) -> tuple[bool, datetime]:
    return (t is None, t or datetime.min.replace(tzinfo=timezone.utc))


def _build(path: Path, doc: dict[str, Any], bundle: _Bundle) -> Iterator[Imported]:
    """Map the validated resources to one Case; a resource that fails alone is an error."""
    patient_entry = bundle.of("Patient")[0]
    patient = patient_entry.resource
    pid = patient.id or (patient_entry.full_url or "").removeprefix("urn:uuid:") or path.stem
    case_id = f"{SOURCE}:{pid}"

    def entry_error(entry: _Entry, exc: Exception) -> Imported:
        prefix = f"entry[{entry.index}].resource"
        if isinstance(exc, ValidationError):
            return error_from_validation(path, entry.index, exc, prefix=prefix)
        if isinstance(exc, _EntryProblem):
            return error(path, entry.index, f"{prefix}.{exc.element}", str(exc))
        return error(path, entry.index, prefix, str(exc))

    events: list[Event] = []
    notes: list[str] = []

    # Encounters, newest last.
    encounters = sorted(
        bundle.of("Encounter"), key=lambda e: _sort_key(_encounter_start(e.resource))
    )
    for enc in encounters:
        try:
            events.append(
                Event(
                    time=_encounter_start(enc.resource),
                    kind="encounter",
                    text=f"Encounter: {_encounter_label(enc.resource)}",
                )
            )
        except (ValidationError, ValueError) as exc:
            yield entry_error(enc, exc)
    last = encounters[-1] if encounters else None
    last_refs = _targets(last, "Encounter") if last is not None else set()

    conditions: list[Condition] = []
    for entry in bundle.of("Condition"):
        try:
            cond, evs = _condition(entry.resource)
        except (ValidationError, ValueError) as exc:
            yield entry_error(entry, exc)
            continue
        conditions.append(cond)
        events.extend(evs)

    med_index: dict[str, Any] = {}
    for entry in bundle.of("Medication"):
        for key in _targets(entry, "Medication"):
            med_index[key] = entry.resource
    medications: list[Medication] = []
    last_meds: list[str] = []
    active_meds: set[str] = set()
    active_since: list[tuple[str, datetime | None]] = []
    ended = 0
    for entry in bundle.of("MedicationRequest"):
        try:
            med, ev = _medication(entry.resource, med_index)
        except (ValidationError, ValueError) as exc:
            yield entry_error(entry, exc)
            continue
        events.append(ev)
        # The medicines list is what the patient takes: a request no longer in force
        # (stopped, completed, cancelled, entered in error) is history, in the timeline.
        if entry.resource.status in _ENDED_REQUESTS:
            ended += 1
        else:
            medications.append(med)
        if entry.resource.status == "active":
            active_meds.add(med.name)
            active_since.append((med.name, med.start))
        if _ref_matches(entry.resource.encounter, last_refs):
            last_meds.append(med.name)

    allergies: list[Allergy] = []
    for entry in bundle.of("AllergyIntolerance"):
        try:
            allergy, allergy_event = _allergy(entry.resource)
        except (ValidationError, ValueError) as exc:
            yield entry_error(entry, exc)
            continue
        allergies.append(allergy)
        if allergy_event is not None:
            events.append(allergy_event)

    last_procedures: list[str] = []
    for entry in bundle.of("Procedure"):
        try:
            ev = _procedure(entry.resource)
        except (ValidationError, ValueError) as exc:
            yield entry_error(entry, exc)
            continue
        events.append(ev)
        if _ref_matches(entry.resource.encounter, last_refs):
            last_procedures.append(ev.text.removeprefix("Procedure: "))

    last_note: str | None = None
    for entry in bundle.of("DiagnosticReport"):
        try:
            report = _report(entry.resource)
        except (ValidationError, ValueError) as exc:
            yield entry_error(entry, exc)
            continue
        note = _note_text(entry.resource)
        # A clinical note with no conclusion says nothing in the timeline but its title
        # ("Report: History and physical note" after every encounter): left out.
        if note is None or entry.resource.conclusion:
            events.append(report)
        if _ref_matches(entry.resource.encounter, last_refs):
            last_note = note or last_note

    # Observations: the most recent MAX_OBSERVATIONS, in time order.
    observations = sorted(
        bundle.of("Observation"), key=lambda e: _sort_key(_observation_time(e.resource))
    )
    kept = observations[-MAX_OBSERVATIONS:]
    findings: list[Finding] = []
    valueless = 0
    last_findings: list[Finding] = []
    for entry in kept:
        try:
            got = _findings(entry.resource)
        except (ValidationError, ValueError) as exc:
            yield entry_error(entry, exc)
            continue
        if not got:
            valueless += 1  # FHIR allows an observation without a value (dataAbsentReason)
        findings.extend(got)
        if _ref_matches(entry.resource.encounter, last_refs):
            last_findings.extend(got)
    findings = name_blood_pressures(findings)
    last_findings = name_blood_pressures(last_findings)
    # What a clinician would reject (fhir_tidy): impossible vital signs, results long
    # before the encounter, results implying a diagnosis the record lacks; and acute
    # events long past are history, not active problems.
    seen_at = _encounter_start(last.resource) if last is not None else None
    conditions, settled = settle_conditions(conditions, at=seen_at)
    findings, tidied = tidy_findings(findings, at=seen_at, conditions=conditions)
    last_findings, _ = tidy_findings(last_findings, at=seen_at, conditions=conditions)
    notes += settled + tidied
    if len(observations) > len(kept):
        notes.append(
            f"Findings: only the most recent {MAX_OBSERVATIONS} of {len(observations)} "
            "observations are kept (by effective time)."
        )
    if valueless:
        notes.append(f"{valueless} observation(s) without a value were left out of the findings.")

    if ended:
        notes.append(
            f"{ended} medication request(s) no longer active (stopped, completed, cancelled) "
            "are in the timeline, not the medication list."
        )
    # Caps on the other lists, newest kept.
    if len(medications) > MAX_MEDICATIONS:
        notes.append(
            f"Medications: only the most recent {MAX_MEDICATIONS} of {len(medications)} "
            "medication requests are kept."
        )
        medications = sorted(medications, key=lambda m: _sort_key(m.start))[-MAX_MEDICATIONS:]
    if len(conditions) > MAX_CONDITIONS:
        notes.append(
            f"Conditions: only the most recent {MAX_CONDITIONS} of {len(conditions)} are kept."
        )
        conditions = sorted(conditions, key=lambda c: _sort_key(c.onset))[-MAX_CONDITIONS:]
    events.sort(key=lambda e: _sort_key(e.time))
    if len(events) > MAX_EVENTS:
        notes.append(
            f"Timeline: only the most recent {MAX_EVENTS} of {len(events)} events are kept."
        )
        events = events[-MAX_EVENTS:]

    # Demographics: age at the most recent encounter, else at the bundle's time.
    birth = _as_datetime(patient.birthDate)
    deceased = _as_datetime(patient.deceasedDateTime)
    at = _encounter_start(last.resource) if last is not None else None
    if at is None:
        at = _as_datetime(doc.get("timestamp")) or _as_datetime(
            (doc.get("meta") or {}).get("lastUpdated")
            if isinstance(doc.get("meta"), dict)
            else None
        )
    if at is not None and deceased is not None and deceased < at:
        at = deceased
    age = _age_years(birth, at) if birth is not None and at is not None else None
    sex = patient.gender if patient.gender in ("female", "male", "other") else "unknown"

    read_counts = ", ".join(f"{t} {len(v)}" for t, v in sorted(bundle.by_type.items()))
    ignored = ", ".join(f"{t} {n}" for t, n in sorted(bundle.ignored.items()))
    notes.insert(0, f"Bundle of {bundle.total} entries. Read: {read_counts}.")
    if ignored:
        notes.insert(1, f"Not imported (resource types this importer does not read): {ignored}.")

    presentation = _presentation(
        last=last,
        age=age,
        sex=sex,
        conditions=conditions,
        active_meds=sorted(active_meds),
        allergies=allergies,
        procedures=last_procedures,
        findings=last_findings,
        prescribed=last_meds,
    )
    sections: list[Section] = []
    if last_note:
        # As of the note's date: what the structured lists say then decides.
        note_at = _encounter_start(last.resource) if last is not None else None
        last_note = tidy_note(
            last_note,
            active_medications=[
                n
                for n, start in active_since
                if note_at is None or start is None or start <= note_at
            ],
            allergies=[a.substance for a in allergies],
        )
    if last_note:
        sections.append(Section(title="Most recent encounter note", text=last_note))
    sections.append(Section(title="FHIR import notes", text="\n".join(notes)))

    def build() -> Imported:
        case = Case(
            id=case_id,
            source=make_source(SOURCE, str(pid), path),
            demographics=Demographics(
                age_years=age, sex=sex, description=_patient_description(patient)
            ),
            presentation=presentation,
            sections=sections,
            timeline=events,
            findings=findings,
            medications=medications,
            allergies=allergies,
            conditions=conditions,
        )
        return Imported(case=case)

    yield guarded(path, patient_entry.index, build)


def _presentation(
    *,
    last: _Entry | None,
    age: float | None,
    sex: str,
    conditions: list[Condition],
    active_meds: list[str],
    allergies: list[Allergy],
    procedures: list[str],
    findings: list[Finding],
    prescribed: list[str],
) -> str:
    """A few sentences on the most recent encounter and the standing problem list."""
    who = "Patient"
    if age is not None:
        who = f"{int(age)}-year-old" if age >= 2 else f"{round(age * 12)}-month-old"
        who += f" {sex}" if sex != "unknown" else " patient"
    elif sex != "unknown":
        who = f"{sex.capitalize()} patient"
    lines: list[str] = []
    if last is not None:
        start = _encounter_start(last.resource)
        when = f" on {start.date().isoformat()}" if start is not None else ""
        lines.append(f"{who}, most recent encounter{when}: {_encounter_label(last.resource)}.")
    else:
        lines.append(f"{who}; the bundle holds no encounters.")
    active = [
        c.name
        for c in conditions
        if (c.status or "active").lower() in ("active", "recurrence", "relapse")
    ]
    if active:
        lines.append("Active conditions: " + "; ".join(dict.fromkeys(active)) + ".")
    if active_meds:
        lines.append("Active medications: " + "; ".join(active_meds) + ".")
    if allergies:
        lines.append("Allergies: " + "; ".join(a.substance for a in allergies) + ".")
    if procedures:
        lines.append("Procedures at this encounter: " + "; ".join(procedures) + ".")
    if prescribed:
        lines.append("Prescribed at this encounter: " + "; ".join(prescribed) + ".")
    if findings:
        shown = [_finding_text(f) for f in findings[:_MAX_PRESENTED_OBSERVATIONS]]
        more = len(findings) - len(shown)
        lines.append(
            "Observations at this encounter: "
            + "; ".join(shown)
            + (f"; and {more} more" if more > 0 else "")
            + "."
        )
    return "\n".join(lines)


def _finding_text(f: Finding) -> str:
    if f.value_text:
        value = f.value_text
    elif f.value is not None:
        value = _fmt_number(f.value)
    else:  # pragma: no cover - a Finding always has one of the two
        value = "?"
    return f"{f.name} {value}" + (f" {f.unit}" if f.unit and not f.value_text else "")
