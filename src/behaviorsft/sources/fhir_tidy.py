"""Clinical tidying of Synthea FHIR content: names, precision and the encounter note.

Synthea writes what a clinician would never read that way, and the record showed it
as written:

* vital signs to the simulator's precision (a temperature of 36.043 C, a pulse of
  51.582/min): ``clinical_value`` rounds them as a chart records them (temperature,
  weight, height and BMI to 0.1; pulse, respiratory rate, SpO2 and blood pressure to
  whole numbers);
* the HIV-module observations are coded with padded OpenMRS/CIEL concept ids under
  the LOINC system ("5085AAAA..."), both blood-pressure readings as 5085 named
  "LOINC Code": ``ciel_name`` names them ("Systolic blood pressure"), and
  ``name_blood_pressures`` tells the two readings of one time apart (the higher is
  the systolic);
* the encounter note (``tidy_note``) carries the simulator's name tokens
  ("Lanell756"), lines broken mid-sentence, sections with no content ("# Assessment
  and Plan" followed by nothing of its own), and a medication or allergy statement
  that the structured lists contradict on the note's own date ("No Active
  Medications." beside four active prescriptions; a drug stopped years before listed
  as current). Those statements are dropped (the structured lists are what the rest
  of the record shows), then sections left empty.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from behaviorsft.records import Condition, Finding

# Vital signs by code (LOINC, or the OpenMRS/CIEL id Synthea pads under the LOINC
# system): their name when the source gives none, and the decimals a chart keeps.
_VITALS: dict[str, tuple[str, int]] = {
    "8310-5": ("Body temperature", 1),
    "5088": ("Temperature", 1),
    "8867-4": ("Heart rate", 0),
    "5087": ("Pulse", 0),
    "9279-1": ("Respiratory rate", 0),
    "5242": ("Respiratory rate", 0),
    "2708-6": ("Oxygen saturation", 0),
    "59408-5": ("Oxygen saturation", 0),
    "5092": ("Oxygen saturation", 0),
    "8480-6": ("Systolic blood pressure", 0),
    "5085": ("Systolic blood pressure", 0),
    "8462-4": ("Diastolic blood pressure", 0),
    "5086": ("Diastolic blood pressure", 0),
    "29463-7": ("Body weight", 1),
    "5089": ("Weight", 1),
    "8302-2": ("Body height", 1),
    "5090": ("Height", 1),
    "39156-5": ("Body mass index", 1),
}
# Values a living patient's vital sign can take (wide: Synthea's HIV module records blood
# pressures of 250/212), by the name ``_VITALS`` gives it; a wrong option or a
# transcription slip outside them is no reading at all (a temperature of 17 C).
_POSSIBLE: dict[str, tuple[float, float]] = {
    "Body temperature": (30.0, 43.0),
    "Temperature": (30.0, 43.0),
    "Heart rate": (20.0, 250.0),
    "Pulse": (20.0, 250.0),
    "Respiratory rate": (4.0, 70.0),
    "Oxygen saturation": (40.0, 100.0),
    "Systolic blood pressure": (40.0, 300.0),
    "Diastolic blood pressure": (20.0, 250.0),
    "Body weight": (0.3, 350.0),
    "Weight": (0.3, 350.0),
    "Body height": (30.0, 250.0),
    "Height": (30.0, 250.0),
    "Body mass index": (8.0, 90.0),
}
# Display texts that name no test (Synthea's HIV module writes "LOINC Code").
_PLACEHOLDER_NAMES = frozenset({"loinc code", "code", "observation"})
_PADDED = re.compile(r"^(\d+)A+$")
SYSTOLIC, DIASTOLIC = "Systolic blood pressure", "Diastolic blood pressure"


def _bare(code: str | None) -> str | None:
    """A padded CIEL id ("5085AAAA...") as its number; any other code as it is."""
    if code is None:
        return None
    m = _PADDED.match(code)
    return m.group(1) if m else code


def is_vital_code(code: str | None) -> bool:
    return _bare(code) in _VITALS


def ciel_name(code: str | None, name: str) -> str:
    """``name``, or the vital sign's name where the source's text names nothing (or is a
    CIEL concept's display in capitals: "PULSE")."""
    known = _VITALS.get(_bare(code) or "")
    if known is None:
        return name
    if name.strip().lower() in _PLACEHOLDER_NAMES:
        return known[0]
    if code != _bare(code) and name.isupper():  # a CIEL id's display in capitals
        return known[0]
    return name


def possible_range(code: str | None) -> tuple[float, float] | None:
    """The values the vital sign ``code`` can take, if it is one."""
    known = _VITALS.get(_bare(code) or "")
    return _POSSIBLE.get(known[0]) if known is not None else None


def clinical_value(code: str | None, value: float | None) -> float | None:
    """``value`` rounded to the precision a chart keeps for the vital sign ``code``."""
    known = _VITALS.get(_bare(code) or "")
    if value is None or known is None:
        return value
    return float(round(value, known[1]))


def name_blood_pressures(findings: Sequence[Finding]) -> list[Finding]:
    """Two "systolic" readings of one time (Synthea codes both as CIEL 5085): the lower
    is the diastolic."""
    by_time: dict[object, list[int]] = defaultdict(list)
    for i, f in enumerate(findings):
        if f.name == SYSTOLIC and f.value is not None:
            by_time[f.time].append(i)
    out = list(findings)
    for idx in by_time.values():
        if len(idx) == 2:
            lo = min(idx, key=lambda i: findings[i].value or 0.0)
            if findings[idx[0]].value != findings[idx[1]].value:
                out[lo] = out[lo].model_copy(update={"name": DIASTOLIC})
    return out


# ----------------------------------------------------------------------------- the note

# Synthea appends digits to every generated name ("Lanell756", "Goodwin327"); a token
# of chemistry ("Ca2+", "Pco2") is none.
SYNTHEA_NAME = re.compile(r"\b([A-Z][a-z]{1,}(?:['-][A-Za-z]+)*)\d{1,4}\b(?![+-])")
_NOT_NAMES = frozenset(
    {"ca", "mg", "fe", "co", "po", "pco", "pao", "paco", "sao", "spo", "fio", "hco", "etco"}
)


def synthea_names(text: str) -> list[str]:
    """The simulator's name tokens in ``text`` ("Lanell756")."""
    return [m.group(0) for m in SYNTHEA_NAME.finditer(text) if m.group(1).lower() not in _NOT_NAMES]


_HEADER = re.compile(r"^(#+)\s")
_DATE_LINE = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")
_NO_MEDS = re.compile(r"^\s*no (known |active |current )?medications?\.?\s*$", re.I)
_NO_ALLERGIES = re.compile(r"^\s*no (known )?(drug )?allergies\.?\s*$", re.I)


def strip_synthetic_names(text: str) -> str:
    """Names without the digits Synthea appends to make them unique."""
    return SYNTHEA_NAME.sub(
        lambda m: m.group(1) if m.group(1).lower() not in _NOT_NAMES else m.group(0), text
    )


def _join_continuations(lines: list[str]) -> list[str]:
    """A line that starts with a space continues the sentence before it (Synthea breaks
    "Lanell\\n is a 53 year-old ..." after the name)."""
    out: list[str] = []
    for line in lines:
        if (
            line[:1] == " "
            and line.strip()
            and out
            and out[-1].strip()
            and not _HEADER.match(out[-1])
        ):
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line.rstrip())
    return out


def _sections(lines: list[str]) -> list[tuple[str | None, list[str]]]:
    """(header line or None for the text before the first, body lines)."""
    out: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in lines:
        if _HEADER.match(line):
            out.append((line, []))
        else:
            out[-1][1].append(line)
    return out


def _title(header: str) -> str:
    return header.lstrip("#").strip().lower()


def _norm(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").split())


def _medication_lines(body: list[str], active: set[str]) -> list[str]:
    """The note's medication statements the structured list of that date bears out."""
    out = []
    for line in body:
        if not line.strip():
            out.append(line)
            continue
        if _NO_MEDS.match(line):
            if not active:
                out.append(line)
            continue
        items = [x for x in re.split(r";\s*", line.strip().rstrip(".")) if x.strip()]
        kept = [x for x in items if _norm(x) in active]
        if kept:
            out.append("; ".join(kept))
    return out


def _allergy_lines(body: list[str], allergies: set[str]) -> list[str]:
    return [line for line in body if not (allergies and _NO_ALLERGIES.match(line))]


def _drop_empty(sections: list[tuple[str | None, list[str]]]) -> list[str]:
    """Sections with no content of their own are left out; their subsections move up a
    level ("# Assessment and Plan" with nothing but "## Plan" becomes "# Plan")."""
    out: list[str] = []
    dropped: list[int] = []  # levels of the dropped headers still open
    for header, body in sections:
        if header is None:
            out += body
            continue
        m = _HEADER.match(header)
        assert m is not None
        level = len(m.group(1))
        while dropped and dropped[-1] >= level:
            dropped.pop()
        if not any(line.strip() for line in body):
            dropped.append(level)
            continue
        out.append("#" * max(1, level - len(dropped)) + header[len(m.group(1)) :])
        out += body
    # No run of blank lines left by a dropped section.
    tidy: list[str] = []
    for line in out:
        if not line.strip() and (not tidy or not tidy[-1].strip()):
            continue
        tidy.append(line)
    while tidy and not tidy[-1].strip():
        tidy.pop()
    return tidy


def tidy_note(
    text: str, *, active_medications: Iterable[str], allergies: Iterable[str]
) -> str | None:
    """The encounter note as a clinician would read it beside the structured record of its
    date (``active_medications``: the prescriptions active then; ``allergies``: those
    recorded); None when nothing of substance is left."""
    active = {_norm(m) for m in active_medications}
    allergic = {a.lower() for a in allergies}
    lines = _join_continuations(strip_synthetic_names(text).splitlines())
    sections = _sections(lines)
    checked: list[tuple[str | None, list[str]]] = []
    for header, body in sections:
        title = _title(header) if header else ""
        if title.startswith("medication"):
            body = _medication_lines(body, active)
        elif title.startswith("allerg"):
            body = _allergy_lines(body, allergic)
        checked.append((header, body))
    out = _drop_empty(checked)
    if all(_DATE_LINE.match(line) for line in out if line.strip()):
        return None  # a date line and nothing else
    return "\n".join(out)


# ------------------------------------------------------------------- findings, conditions

# Vital signs no chart would carry for a patient walking into a routine visit: Synthea's
# HIV module draws them at random (186/167, 241/202 with a pulse of 194, SpO2 71%).
# A pair of blood-pressure readings is dropped whole where the diastolic is within
# MIN_PULSE_PRESSURE of the systolic, above MAX_DIASTOLIC or under a systolic above
# MAX_SYSTOLIC; a pulse or saturation outside these bounds alone.
MIN_PULSE_PRESSURE = 15.0
MAX_DIASTOLIC = 140.0
MAX_SYSTOLIC = 250.0
_PLAUSIBLE: dict[str, tuple[float, float]] = {
    "Heart rate": (35.0, 180.0),
    "Pulse": (35.0, 180.0),
    "Oxygen saturation": (85.0, 100.0),
    "Respiratory rate": (6.0, 40.0),
}
# Results older than this (years) before the most recent encounter are no longer what
# the record reports as its results (an encounter of 2021 with results of 2003-2007).
STALE_YEARS = 5.0
# Kinds of finding that are results (a questionnaire answer such as a smoking status of
# 1990 is history, kept).
_RESULT_KINDS = frozenset({"vital", "lab", "exam", "imaging"})
# Results that imply a diagnosis the problem list must carry (HIV viral loads with no HIV
# among the conditions, and no therapy), and the condition that would carry it.
_IMPLIES: tuple[tuple[re.Pattern[str], re.Pattern[str], str], ...] = (
    (
        re.compile(r"\bHIV\b|\bCD4\b|antiretroviral|\bPCP prophylaxis\b", re.I),
        re.compile(r"\bHIV\b|human immunodeficiency", re.I),
        "HIV",
    ),
)
# Acute events Synthea leaves "active" for decades ("Cardiac Arrest" at a vaccine visit
# 38 years on): past ACUTE_DAYS they are history, not an active problem.
_ACUTE_EVENT = re.compile(r"^\s*(cardiac arrest|myocardial infarction|acute\b.*)$", re.I)
ACUTE_DAYS = 30


def _bp_impossible(systolic: float, diastolic: float) -> bool:
    return (
        diastolic >= systolic - MIN_PULSE_PRESSURE
        or diastolic > MAX_DIASTOLIC
        or systolic > MAX_SYSTOLIC
    )


def vitals_impossible(values: dict[str, float]) -> list[str]:
    """The names among ``values`` (one time's vital signs, by name) that no chart of a
    routine visit would carry (both blood pressures where the pair is impossible)."""
    out = []
    s, d = values.get(SYSTOLIC), values.get(DIASTOLIC)
    if s is not None and d is not None and _bp_impossible(s, d):
        out += [SYSTOLIC, DIASTOLIC]
    for name, (lo, hi) in _PLAUSIBLE.items():
        v = values.get(name)
        if v is not None and not lo <= v <= hi:
            out.append(name)
    return out


def tidy_findings(
    findings: Sequence[Finding], *, at: datetime | None, conditions: Iterable[Condition]
) -> tuple[list[Finding], list[str]]:
    """``findings`` without what a clinician would reject (see the constants above):
    impossible vital signs, results more than ``STALE_YEARS`` before ``at`` (the most
    recent encounter), and results implying a diagnosis that ``conditions`` lack. Also
    returns one import note per kind of drop, with its count."""
    at = _naive(at) if at is not None else None
    problems = " ".join(c.name for c in conditions)
    by_time: dict[object, dict[str, float]] = defaultdict(dict)
    for f in findings:
        if f.value is not None and (f.kind == "vital" or f.name in (SYSTOLIC, DIASTOLIC)):
            by_time[f.time][f.name] = f.value
    bad = {t: set(vitals_impossible(v)) for t, v in by_time.items()}
    stale_before = at - timedelta(days=365.25 * STALE_YEARS) if at is not None else None
    kept: list[Finding] = []
    dropped: Counter[str] = Counter()
    for f in findings:
        if f.name in bad.get(f.time, set()):
            dropped["impossible vital sign(s) left out"] += 1
        elif (
            stale_before is not None
            and f.kind in _RESULT_KINDS
            and f.time is not None
            and _naive(f.time) < stale_before
        ):
            dropped[f"result(s) more than {STALE_YEARS:g} years before the encounter left out"] += 1
        elif any(
            lab.search(f.name) and not diagnosis.search(problems) for lab, diagnosis, _ in _IMPLIES
        ):
            what = next(n for lab, _, n in _IMPLIES if lab.search(f.name))
            dropped[f"{what} result(s) with no {what} diagnosis in the record left out"] += 1
        else:
            kept.append(f)
    return kept, [f"Findings: {n} {why}." for why, n in dropped.items()]


def settle_conditions(
    conditions: Sequence[Condition], *, at: datetime | None
) -> tuple[list[Condition], list[str]]:
    """``conditions`` with an acute event long past ("Cardiac Arrest" decades ago) no
    longer active (resolved: it is history), and a note of how many were."""
    if at is None:
        return list(conditions), []
    at = _naive(at)
    out = []
    settled = 0
    for c in conditions:
        if (
            _ACUTE_EVENT.match(c.name)
            and (c.status or "active").lower() == "active"
            and c.onset is not None
            and _naive(c.onset) < at - timedelta(days=ACUTE_DAYS)
        ):
            c = c.model_copy(update={"status": "resolved"})
            settled += 1
        out.append(c)
    note = f"Conditions: {settled} acute event(s) long past marked resolved, not active."
    return out, [note] if settled else []


def _naive(when: datetime) -> datetime:
    return when.replace(tzinfo=None)
