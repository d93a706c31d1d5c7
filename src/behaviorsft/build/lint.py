"""Clinical linter: coherence checks over a bench's cases and conversations.

A built record must read as one patient's story. The linter reads ``cases.jsonl`` and
``conversations.jsonl`` of a BENCH folder (raw JSON, one pass, no model validation, so a
6,876-case build lints in seconds) and reports every incoherence it can detect, each as
a :class:`LintFinding` with ``file:line``, the record id, the turn index where relevant,
a rule id, a severity and a message.

Rules (see docs/building.md, "Clinical linter"):

``bp-inverted``              diastolic pressure at or above systolic (``66/71``)
``allergy-clash``            a drug (or its group) planned, ordered or given to a patient
                             allergic to its allergy group (KB ``allergy_groups``)
``allergy-check-false``      a pharmacist's "no clash" while the plan clashes
``result-not-shown``         a clinician cites (or records as done) a test result that
                             the record never shows (Gram stain, NAAT, repeat potassium...)
``role-scope``               a radiologist reporting a study outside radiology (endoscopy,
                             microscopy, ECG, echocardiography)
``duration-conflict``        one statement gives two incompatible durations
                             ("2 days of cough for more than 2-3 weeks")
``abnormal-list-incomplete`` a list of abnormal results that omits an abnormal value in the
                             table it comments on (or calls a normal value abnormal)
``drug-contraindicated``     a drug started for this admission despite an absolute KB
                             contraindication the record meets (a condition, or a lab or
                             vital threshold: alteplase with BP 200/112, potassium chloride
                             with potassium 5.7)
``drug-not-in-record``       a statement presumes a drug the record never gives ("keep BP
                             below 180/105 after alteplase", "INR in patients on warfarin"
                             recorded as done) while no such medicine is recorded
``drug-interaction``         two of the patient's medicines with a contraindicated or major
                             KB interaction
``duplicate-therapy``        two medicines the KB marks as interchangeable choices for one
                             condition (``treatments.drugs[].choice``), or two of one
                             pharmacological family (two beta-blockers)
``age-implausible-drug``     a long-term preventive drug far below its usual age with no
                             indication in the history (a 22-year-old on atorvastatin)
``history-contradiction``    the diagnosis contradicts the history ("native valve"
                             endocarditis with a prosthetic valve)
``history-implausible``      a history item impossible for the patient's sex or age
                             (pregnancy in a man or a 70-year-old; "female sex" in a man)
``value-contradiction``      a clinician calls a result low, normal or raised (or below or
                             above a number) while the record's value says otherwise
                             ("normal BUN" with BUN 23, reference 6-20)

Severity: ``error`` is a contradiction a clinician would reject the record for;
``warning`` is implausible but possible. Both count as findings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from behaviorsft.build import (
    lint_chart,
    lint_dose,
    lint_encounter,
    lint_errors,
    lint_items,
    lint_patient,
    lint_plan,
    lint_record,
    lint_severity,
    lint_surgical,
    lint_values,
)
from behaviorsft.build.lint_common import KB_CODES
from behaviorsft.build.lint_common import num as _num
from behaviorsft.build.lint_text import TEXT_RULES, TextFacts, check_case_text, check_turn_text
from behaviorsft.build.vignette_turns import VIGNETTE_SOURCES
from behaviorsft.sources.kb import KnowledgeBase, compare, load_kb
from behaviorsft.sources.severity import corrected
from behaviorsft.taxonomy import TaskType

Severity = Literal["error", "warning"]

RULES: dict[str, tuple[Severity, str]] = {
    "bp-inverted": ("error", "diastolic blood pressure at or above systolic"),
    "allergy-clash": ("error", "drug planned/given in a patient allergic to its group"),
    "allergy-check-false": ("error", "pharmacist reports no clash while the plan clashes"),
    "result-not-shown": ("error", "a result is cited or recorded as done but never shown"),
    "role-scope": ("error", "a role reports outside its scope"),
    "duration-conflict": ("error", "incompatible durations in one statement"),
    "abnormal-list-incomplete": ("error", "a list of abnormal results omits or adds values"),
    "drug-contraindicated": ("error", "drug started despite an absolute contraindication"),
    "drug-not-in-record": ("error", "a statement presumes a drug the record never gives"),
    "drug-interaction": ("error", "contraindicated or major KB drug interaction"),
    "duplicate-therapy": ("error", "interchangeable or same-family drugs given together"),
    "age-implausible-drug": ("warning", "preventive drug implausible for age, no indication"),
    "history-contradiction": ("error", "diagnosis contradicts the recorded history"),
    "history-implausible": ("error", "history item impossible for the patient's sex or age"),
    "value-contradiction": ("error", "a result described against its recorded value"),
}
RULES.update(TEXT_RULES)  # type: ignore[arg-type]  # wording rules (lint_text.py)
RULES.update(lint_values.VALUE_RULES)  # values, kinetics, timing: build/lint_values.py
RULES.update(lint_plan.RULES)  # type: ignore[arg-type]  # plans, medicines, reasoning
RULES.update(lint_severity.RULES)  # type: ignore[arg-type]  # care matching the severity
RULES.update(lint_surgical.RULES)  # type: ignore[arg-type]  # surgical and GI coherence
RULES.update(lint_chart.RECORD_RULES)  # how a record reads as a chart: build/lint_chart.py
RULES.update(lint_encounter.RULES)  # how a record reads as an encounter: lint_encounter.py
RULES.update(lint_errors.RULES)  # type: ignore[arg-type]  # planted orders (tasks.jsonl)
RULES.update(lint_record.RULES)  # type: ignore[arg-type]  # agreement with the record
RULES.update(lint_items.RULES)  # type: ignore[arg-type]  # item metadata: lint_items.py
RULES.update(lint_patient.RULES)  # type: ignore[arg-type]  # one patient: build/lint_patient.py
RULES.update(lint_dose.RULES)  # type: ignore[arg-type]  # doses for the patient: lint_dose.py


@dataclass(frozen=True)
class LintFinding:
    """One incoherence: where it is, which rule, how bad, and what is wrong."""

    file: str
    line: int
    record_id: str
    turn: int | None
    rule: str
    severity: Severity
    message: str

    @property
    def location(self) -> str:
        """``file:line`` (plus ``#turn`` when the finding is in one turn)."""
        where = f"{self.file}:{self.line}"
        return f"{where}#turn{self.turn}" if self.turn is not None else where


# --------------------------------------------------------------------------- vocabulary

# Long-term preventive medicines and the age below which, without their indication in the
# history, a prescription is implausible (primary prevention starts at 40 for statins and
# aspirin: USPSTF 2022; hypertension and type 2 diabetes are uncommon below 30).
PREVENTIVE_MIN_AGE: dict[str, tuple[int, tuple[str, ...]]] = {
    "atorvastatin": (
        40,
        ("cholesterol", "hyperlipid", "dyslipid", "coronary", "ischaemic heart", "stroke"),
    ),
    "aspirin": (
        40,
        ("coronary", "ischaemic heart", "myocardial", "stroke", "stent", "vascular", "angina"),
    ),
    "metoprolol": (
        30,
        ("hypertension", "coronary", "ischaemic heart", "atrial fibrillation", "heart failure"),
    ),
    "lisinopril": (30, ("hypertension", "heart failure", "diabetes", "kidney", "proteinuria")),
    "metformin": (25, ("diabetes", "insulin resistance", "polycystic")),
}

# Pharmacological families where two members together duplicate therapy.
FAMILIES: dict[str, tuple[str, ...]] = {
    "beta-blocker": ("beta-blocker",),
    "statin": ("statin",),
    "P2Y12 inhibitor": ("p2y12",),
    "ACE inhibitor": ("ace inhibitor",),
    "benzodiazepine": ("benzodiazepine",),
    "proton pump inhibitor": ("proton pump",),
    "anticoagulant": ("anticoagulant", "low-molecular-weight heparin", "factor xa", "vitamin k"),
}

# Mutually exclusive descriptions: (said of the diagnosis, said of the history).
CONTRADICTIONS: tuple[tuple[str, str], ...] = (
    ("native valve", "prosthetic valve"),
    ("native-valve", "prosthetic valve"),
    # a cardiac device makes it device-related endocarditis (ESC 2023)
    ("native valve", "pacemaker"),
    ("native valve", "defibrillator"),
    ("uncomplicated", "pregnan"),
    ("type 1 diabetes", "type 2 diabetes"),
    ("first episode", "previous episode"),
)

# History wording that only fits one sex, or an age range: (pattern, sex, max age).
SEX_AGE_HISTORY: tuple[tuple[re.Pattern[str], str | None, int | None], ...] = (
    (re.compile(r"\bfemale sex\b", re.I), "female", None),
    (re.compile(r"(?<!fe)\bmale sex\b", re.I), "male", None),
    (re.compile(r"\b(pregnan\w*|postpartum)\b", re.I), "female", 55),
    (re.compile(r"\bmultiparity\b", re.I), "female", None),
    (re.compile(r"\bprostat\w*", re.I), "male", None),
)

_RELATIVE = re.compile(
    r"\b(father|mother|brother|sister|son|daughter|aunt|uncle|grand\w*|family|wife|husband|"
    r"sibling|parent\w*|relative\w*|cousin)\b",
    re.I,
)

# Studies a radiologist does not report (the rest of imaging is theirs).
NOT_RADIOLOGY = (
    "endoscopy",
    "colonoscopy",
    "microscopy",
    "ecg",
    "electrocardiogram",
    "echocardiogram",
    "gram stain",
    "culture",
    "synovial fluid",
    "biopsy",
    "spirometry",
)

# Named tests a clinician may cite beyond the KB lab names (KB names are added at load).
EXTRA_TESTS: dict[str, tuple[str, ...]] = {
    "gram stain": ("gram stain",),
    "naat": ("naat", "pcr"),
    "influenza test": ("influenza naat", "influenza a/b rna", "influenza testing"),
    "sars-cov-2 test": ("sars-cov-2 naat", "sars-cov-2 rna", "sars-cov-2 testing"),
    "m. tuberculosis naat": ("m. tuberculosis naat", "mycobacterium tuberculosis naat"),
    "sputum microbiology": ("in sputum", "sputum culture", "sputum gram stain"),
    "post-void residual": ("post-void residual", "bladder scan"),
    "culture": ("culture", "cultures"),
    "afb smear": ("afb smear", "acid-fast"),
    "echocardiogram": ("echocardiogram", "tte", "tee", "echo"),
    "ecg": ("ecg", "electrocardiogram"),
    "ct": ("ct", "cta", "computed tomography"),
    "x-ray": ("x-ray", "radiograph", "chest film"),
    "ultrasound": ("ultrasound", "duplex"),
    "endoscopy": ("endoscopy", "colonoscopy"),
    "microscopy": ("microscopy",),
    "troponin": ("troponin",),
    "d-dimer": ("d-dimer",),
    "lumbar puncture": ("lumbar puncture", "csf"),
}

# "low procalcitonin", "normal BUN", "raised troponin"; "urine sodium below 20".
_DESCRIBED = re.compile(
    r"\b(low|near-normal|normal|high|raised|elevated)\s+([A-Za-z][\w-]*(?:\s[\w-]+)?)"
)
_DESCRIBED_WORDS = ("low ", "normal ", "high ", "raised ", "elevated ")
_COMPARED_WORDS = (" below ", " under ", " above ", " over ", " < ", " > ")
_COMPARED = re.compile(
    r"\b([A-Za-z][\w-]*(?:\s[\w-]+){0,2})\s+(below|under|above|over|<|>)\s+(\d+(?:\.\d+)?)"
)

# A sentence is a claim about a result when it argues from it or records it as done.
_CLAIM = re.compile(
    r"\b(given|in view of|because of|on the basis of|as shown by|argues? against|"
    r"confirmed by|documented|done and recorded)\b",
    re.I,
)
# ...unless it is hypothetical or an order.
_HYPOTHETICAL = re.compile(
    r"\b(if|when|would|unless|whether|should|consider|plan|request|send|order|"
    r"in patients|where|once)\b",
    re.I,
)
_NEGATED_USE = re.compile(
    r"\b(allerg\w*|avoid\w*|instead of|alternative|not|no|without|clash\w*|"
    r"contraindicat\w*|except)\b",
    re.I,
)
_BP = re.compile(r"\b(\d{2,3})\s*/\s*(\d{2,3})\b(?=\s*(mm ?hg|\)|,|\.|$))", re.I)
_BP_CONTEXT = re.compile(r"\b(bp|blood pressure|mm ?hg)\b", re.I)
_DURATION = re.compile(
    r"\b(\d+(?:\.\d+)?)(?:\s*(?:-|–|to)\s*(\d+(?:\.\d+)?))?\s*(hour|day|week|month|year)s?\b",
    re.I,
)
_UNIT_DAYS = {"hour": 1 / 24, "day": 1, "week": 7, "month": 30, "year": 365}
_ONSET = re.compile(
    r"(?:^|\b(?:for about|started|began|it started)\s+)(\d+)\s*(day|week|month|hour)s?\b"
    r"(?:\s+ago)?(?:\s*of|:|\s+(?:I've|she's|he's) had)",
    re.I,
)
_ABNORMAL_LIST = re.compile(r"^(outside the reference range|abnormal results?)\s*:\s*(.*)$", re.I)
_NOTHING_ABNORMAL = re.compile(r"nothing outside the reference ranges?", re.I)
_SENTENCE = re.compile(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)(?<=[.;!?])\s+")
_REPORT = re.compile(r"^[^:]{3,80}:\s")
_NOT_REPORT = re.compile(r"^(plan|documented|done and recorded|day \d+ plan|from our side)\b", re.I)
_REPEAT = re.compile(
    r"\brepeat(?:ed)? ([a-z][a-z -]{2,30}?)(?= on\b| after\b| at\b| is\b| was\b|[,.;]|$)", re.I
)

# Roles that speak for the clinical team (cited results come from them).
LAY_ROLES = ("patient", "family member", "relative", "caregiver")


def _words(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])" + re.escape(term) + r"(?![\w-])", re.I)


@dataclass
class _Lexicon:
    drugs: list[tuple[str, re.Pattern[str], set[str]]]  # (drug id, name pattern, groups)
    any_drug: re.Pattern[str]  # every drug name at once
    groups: dict[str, re.Pattern[str]]  # group id -> pattern for its class word
    group_children: dict[str, set[str]]
    # key, pattern for any alias, one pattern per alias
    tests: list[tuple[str, re.Pattern[str], tuple[re.Pattern[str], ...]]]
    qualitative_normal: dict[str, set[str]]  # lab name (lower) -> normal values
    lab_bases: set[str]  # lab names without their parenthetical gloss, lower case
    lab_aliases: dict[str, str]  # "bun", "blood urea nitrogen", "alt" -> table name (lower)
    drug_by_name: dict[str, str]
    choices: dict[str, dict[str, str]]  # condition name -> drug id -> choice label
    roles: dict[str, dict[str, str]]  # condition name -> drug id -> role


def _strip_gloss(name: str) -> str:
    return re.split(r"\s*[\(,]", name)[0].strip()


_LEXICONS: dict[int, tuple[KnowledgeBase, _Lexicon]] = {}


def _lexicon(kb: KnowledgeBase) -> _Lexicon:
    """The lexicon of ``kb``, built once per KB object."""
    cached = _LEXICONS.get(id(kb))
    if cached is not None and cached[0] is kb:
        return cached[1]
    lexicon = _build_lexicon(kb)
    _LEXICONS[id(kb)] = (kb, lexicon)
    return lexicon


def _build_lexicon(kb: KnowledgeBase) -> _Lexicon:
    drugs = []
    drug_by_name: dict[str, str] = {}
    for d in kb.drugs.values():
        names = {_strip_gloss(d.name).lower(), d.id.replace("_", " ")}
        inner = re.findall(r"\(([^)]+)\)", d.name)
        names |= {n.lower() for n in inner if n.isalpha() and len(n) > 4}
        pattern = re.compile(
            r"(?<![\w-])(" + "|".join(re.escape(n) for n in sorted(names, key=len)[::-1]) + r")"
            r"(?![\w-])",
            re.I,
        )
        drugs.append((d.id, pattern, set(d.allergy_groups)))
        for n in names:
            drug_by_name[n] = d.id
        drug_by_name[d.name.lower()] = d.id
    groups: dict[str, re.Pattern[str]] = {}
    for gid, g in kb.allergy_groups.items():
        if gid == "beta_lactams":
            groups[gid] = re.compile(r"(?<![\w-])beta-lactams?(?![\w-])", re.I)
            continue
        word = _strip_gloss(g.name).lower()
        if " " in word:  # multi-word labels (e.g. "sulfonamide antibiotics") as written
            groups[gid] = re.compile(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", re.I)
            continue
        stem = word[:-1] if word.endswith("s") else word
        groups[gid] = re.compile(r"(?<![\w-])" + re.escape(stem) + r"s?(?![\w-])", re.I)
    children = {"beta_lactams": {"penicillins", "cephalosporins", "carbapenems"}}
    tests: list[tuple[str, re.Pattern[str], tuple[re.Pattern[str], ...]]] = []
    for key, aliases in EXTRA_TESTS.items():
        pat = "|".join(re.escape(a) for a in aliases)
        any_alias = re.compile(r"(?<![\w-])(" + pat + r")(?![\w-])", re.I)
        tests.append((key, any_alias, tuple(_words(a) for a in aliases)))
    qual: dict[str, set[str]] = {}
    for lab in kb.labs.values():
        if lab.kind == "qualitative":
            qual[lab.name.lower()] = {v.lower() for v in lab.normal_values}
    choices: dict[str, dict[str, str]] = {}
    roles: dict[str, dict[str, str]] = {}
    for c in kb.conditions.values():
        choices[c.name] = {td.drug: td.choice for td in c.treatments.drugs if td.choice}
        roles[c.name] = {td.drug: td.role for td in c.treatments.drugs}
    return _Lexicon(
        drugs=drugs,
        any_drug=re.compile("|".join(p.pattern for _d, p, _g in drugs), re.I),
        groups=groups,
        group_children=children,
        tests=tests,
        qualitative_normal=qual,
        lab_bases={lab.name.lower().split(" (")[0] for lab in kb.labs.values()},
        lab_aliases=_lab_aliases(kb),
        drug_by_name=drug_by_name,
        choices=choices,
        roles=roles,
    )


def _lab_aliases(kb: KnowledgeBase) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for lab in kb.labs.values():
        if lab.kind != "quantitative" or lab.panel == "vitals":
            continue
        name = lab.name.lower()
        forms = {name, name.split(" (")[0], lab.id.replace("_", " ")}
        forms |= {g.lower() for g in re.findall(r"\(([^)]+)\)", lab.name) if len(g) <= 6}
        for form in forms:
            aliases.setdefault(form, name)
    return aliases


def allergy_groups_of(kb: KnowledgeBase, substance: str) -> set[str]:
    """KB allergy groups a recorded allergy names (a group label or a drug name)."""
    lex = _lexicon(kb)
    s = substance.strip().lower()
    out: set[str] = set()
    for gid, g in kb.allergy_groups.items():
        if _strip_gloss(g.name).lower() == s or lex.groups[gid].search(s):
            out.add(gid)
    did = lex.drug_by_name.get(s)
    if did is not None:
        out |= set(kb.drugs[did].allergy_groups) or {f"drug:{did}"}
    for gid in list(out):
        out |= lex.group_children.get(gid, set())
    return out


def clashing_terms(kb: KnowledgeBase, groups: set[str], text: str) -> list[str]:
    """Drug names or group words in ``text`` that belong to one of ``groups``."""
    if not groups:
        return []
    pattern = _clash_pattern(kb, frozenset(groups))
    return [m.group(0) for m in pattern.finditer(text)] if pattern is not None else []


_CLASH_PATTERNS: dict[tuple[int, frozenset[str]], re.Pattern[str] | None] = {}


def _clash_pattern(kb: KnowledgeBase, groups: frozenset[str]) -> re.Pattern[str] | None:
    """One pattern for every drug name and group word of ``groups`` (built once per set)."""
    key = (id(kb), groups)
    if key not in _CLASH_PATTERNS:
        lex = _lexicon(kb)
        parts = [
            pattern.pattern
            for did, pattern, dgroups in lex.drugs
            if dgroups & groups or f"drug:{did}" in groups
        ]
        parts += [lex.groups[g].pattern for g in sorted(groups) if g in lex.groups]
        _CLASH_PATTERNS[key] = re.compile("|".join(parts), re.I) if parts else None
    return _CLASH_PATTERNS[key]


# "after alteplase", "responding to ceftriaxone", "patients on warfarin" presume an earlier
# dose; "given", "started", "I take" state one (and so are evidence, not presumption).
_PRESUME_WORDS = ("after ", "responding to ", " on ")
_PRESUMES = re.compile(r"\b(after|responding to|patients on|while on)\s+$", re.I)
# What ``_PRESUMES`` needs somewhere in the text (so a text without it has no match).
_PRESUME_ANYWHERE = re.compile(r"(after|responding to|patients on|while on)\s", re.I)
_GIVES = re.compile(r"\b(given|started|first dose|i take|takes|taking|prescribed)\b", re.I)


def absent_drugs(kb: KnowledgeBase, text: str, medications: str) -> list[str]:
    """KB drugs ``text`` presumes were given ("after alteplase", "patients on warfarin")
    that ``medications`` (the record's medicine names) does not hold."""
    low = text.lower()
    if not any(w in low for w in _PRESUME_WORDS) or not _PRESUME_ANYWHERE.search(text):
        return []  # (cheap tests first: most statements presume nothing)
    meds = medications.lower()
    out = []
    for m in _lexicon(kb).any_drug.finditer(text):
        before = text[max(0, m.start() - 25) : m.start()]
        if _PRESUMES.search(before) and m.group(0).lower() not in meds:
            out.append(m.group(0))
    return out


def unshown_tests(kb: KnowledgeBase, text: str, shown: str) -> list[str]:
    """Tests named in ``text`` that ``shown`` (what the record reports) never mentions."""
    missing = []
    shown = shown.lower()
    for _key, pattern, aliases in _lexicon(kb).tests:
        m = pattern.search(text)
        if m is not None and not any(a.search(shown) for a in aliases):
            missing.append(m.group(0))
    return missing


# --------------------------------------------------------------------------- reading


def _read(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # `behaviorsft validate` reports malformed lines
            if isinstance(obj, dict):
                yield line_no, obj


def _case_file(folder: Path) -> Path | None:
    for name in ("cases.jsonl", "cases.json"):
        if (folder / name).is_file():
            return folder / name
    return None


# --------------------------------------------------------------------------- helpers


def _durations(text: str) -> list[tuple[float, float, str]]:
    out = []
    for m in _DURATION.finditer(text):
        lo = float(m.group(1))
        hi = float(m.group(2)) if m.group(2) else lo
        unit = _UNIT_DAYS[m.group(3).lower()]
        out.append((lo * unit, hi * unit, m.group(0)))
    return out


def _duration_conflict(text: str) -> str | None:
    """'2 days of cough for more than 2-3 weeks': an onset shorter than a stated duration."""
    onset = _ONSET.search(text)
    if onset is None:
        return None
    days = float(onset.group(1)) * _UNIT_DAYS[onset.group(2).lower()]
    # Only a longer stated duration conflicts: a shorter one is a later symptom.
    for lo, _hi, said in _durations(text[onset.end() :]):
        if lo > days * 1.5 + 1:
            return f"onset '{onset.group(0).strip()}' contradicts '{said}'"
    return None


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text) if s]


def _row_abnormal(lex: _Lexicon, row: list[Any]) -> bool | None:
    """Whether a table row (test, result, unit, reference) is outside its reference."""
    if len(row) < 2:
        return None
    name, result = str(row[0]).lower(), str(row[1])
    ref = str(row[3]) if len(row) > 3 else ""
    value = _num(result)
    if value is not None and (m := re.match(r"^\s*(-?[\d.]+)\s*-\s*(-?[\d.]+)\s*$", ref)):
        return not float(m.group(1)) <= value <= float(m.group(2))
    normal = lex.qualitative_normal.get(name)
    if normal is not None and result and result.lower() != "pending":
        return result.lower() not in normal
    return None


def _says(text: str, phrase: str) -> bool:
    """``phrase`` occurs in ``text`` as whole words ("potassium 3" is not "potassium 3.1")."""
    start = text.find(phrase)
    while start >= 0:
        end = start + len(phrase)
        before = text[start - 1] if start else " "
        after = text[end : end + 2]
        if not (before.isalnum() or before == "-") and not (
            after[:1].isalnum() or (after[:1] == "." and after[1:2].isdigit())
        ):
            return True
        start = text.find(phrase, start + 1)
    return False


def drug_family(drug_class: str) -> str | None:
    """The pharmacological family (``FAMILIES``) a KB drug class belongs to, if any."""
    return _family(drug_class)


def _family(drug_class: str) -> str | None:
    dc = drug_class.lower()
    for fam, words in FAMILIES.items():
        if any(w in dc for w in words):
            return fam
    return None


# --------------------------------------------------------------------------- case rules


@dataclass
class _Where:
    """The record being linted: every finding it adds carries its file, line and id."""

    file: str
    line: int
    record_id: str
    findings: list[LintFinding]

    def add(self, rule: str, message: str, turn: int | None = None) -> None:
        severity = RULES[rule][0]
        self.findings.append(
            LintFinding(self.file, self.line, self.record_id, turn, rule, severity, message)
        )


@dataclass
class _Facts:
    """What a case says that its conversation is checked against."""

    allergies: set[str]
    history: str
    shown: set[str]
    medications: list[dict[str, Any]]
    text: TextFacts | None = None


def _case_facts(kb: KnowledgeBase, case: dict[str, Any]) -> _Facts:
    allergies: set[str] = set()
    for a in case.get("allergies") or []:
        allergies |= allergy_groups_of(kb, str(a.get("substance", "")))
    history = " ".join(
        str(s.get("text", ""))
        for s in case.get("sections") or []
        if "history" in str(s.get("title", "")).lower()
        and not any(
            w in str(s.get("title", "")).lower() for w in ("presenting", "family", "social")
        )
    )
    history += " " + " ".join(
        str(f).removeprefix("History:").strip()
        for f in case.get("facts") or []
        if str(f).startswith("History")
    )
    findings = case.get("findings") or []
    shown = {str(f.get("name", "")).lower() for f in findings}
    shown |= {
        str(f.get("value_text") or "").lower() for f in findings if f.get("kind") == "imaging"
    }
    if (case.get("source") or {}).get("name") in VIGNETTE_SOURCES:
        # the resident presents the whole vignette: the results it reports are shown
        shown.add(str(case.get("presentation") or "").lower())
    return _Facts(allergies, history.lower(), shown, list(case.get("medications") or []))


def _check_case_bp(where: _Where, case: dict[str, Any]) -> None:
    by_time: dict[Any, dict[str, float]] = {}
    for f in case.get("findings") or []:
        name = str(f.get("name", "")).lower()
        value = _num(f.get("value"))
        if value is None or name not in ("systolic blood pressure", "diastolic blood pressure"):
            continue
        by_time.setdefault(f.get("time") or f.get("day"), {})[name.split()[0]] = value
    for when, bp in by_time.items():
        s, d = bp.get("systolic"), bp.get("diastolic")
        if s is not None and d is not None and d >= s:
            where.add("bp-inverted", f"blood pressure {s:g}/{d:g} ({when}): diastolic >= systolic")


def _drug_ids(kb: KnowledgeBase, meds: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    lex = _lexicon(kb)
    out = []
    for m in meds:
        name = str(m.get("name", ""))
        did = lex.drug_by_name.get(name.lower())
        if did is None:
            did = next((d for d, pattern, _g in lex.drugs if pattern.search(name)), None)
        if did is not None:
            out.append((did, m))
    return out


def _check_case_drugs(
    kb: KnowledgeBase, where: _Where, case: dict[str, Any], facts: _Facts
) -> None:
    ids = _drug_ids(kb, facts.medications)
    for did, m in ids:
        clash = (set(kb.drugs[did].allergy_groups) | {f"drug:{did}"}) & facts.allergies
        if clash:
            groups = ", ".join(sorted(g.removeprefix("drug:") for g in clash))
            where.add(
                "allergy-clash", f"{m.get('name')} is given; the patient is allergic to {groups}"
            )
    age = _num((case.get("demographics") or {}).get("age_years"))
    for did, m in ids:
        rule = PREVENTIVE_MIN_AGE.get(did)
        if rule is None or age is None or age >= rule[0]:
            continue
        if m.get("indication") and m.get("indication") == case.get("final_diagnosis"):
            continue  # started for this admission's diagnosis, not long-term prevention
        if not any(w in facts.history for w in rule[1]):
            where.add(
                "age-implausible-drug",
                f"{m.get('name')} at age {age:g} with no indication in the history (usual from "
                f"{rule[0]}; recorded indication: {m.get('indication') or 'none'})",
            )
    _check_contraindications(kb, where, case, ids)
    lex = _lexicon(kb)
    for i, (a, ma) in enumerate(ids):
        for b, mb in ids[i + 1 :]:
            if a == b:
                continue
            serious = [
                x
                for x in kb.interactions_between(a, b)
                if x.severity in ("contraindicated", "major") and not _dose_exempt(x.effect, ma, mb)
            ]
            if serious:
                where.add(
                    "drug-interaction",
                    f"{ma.get('name')} with {mb.get('name')}: {serious[0].severity}, "
                    f"{serious[0].effect}",
                )
            indication = ma.get("indication")
            choice = lex.choices.get(str(indication), {})
            family = _family(kb.drugs[a].drug_class)
            if (
                indication == mb.get("indication")
                and choice.get(a)
                and choice.get(a) == choice.get(b)
            ):
                where.add(
                    "duplicate-therapy",
                    f"{ma.get('name')} and {mb.get('name')} are alternative choices "
                    f"({choice[a]}) for {indication}; a plan uses one",
                )
            elif family is not None and family == _family(kb.drugs[b].drug_class):
                where.add(
                    "duplicate-therapy",
                    f"{ma.get('name')} and {mb.get('name')} are both a {family}",
                )


def _check_contraindications(
    kb: KnowledgeBase,
    where: _Where,
    case: dict[str, Any],
    ids: list[tuple[str, dict[str, Any]]],
) -> None:
    """Drugs started for this admission's diagnosis against absolute KB contraindications."""
    conditions = {
        str(c.get("code")) for c in case.get("conditions") or [] if c.get("code_system") == KB_CODES
    }
    lab_ids = {lab.name.lower(): lab.id for lab in kb.labs.values()}
    values: dict[str, float] = {}
    for f in case.get("findings") or []:
        lid, value = lab_ids.get(str(f.get("name", "")).lower()), _num(f.get("value"))
        if lid is not None and value is not None and lid not in values and not f.get("day"):
            values[lid] = value
    for did, m in ids:
        if not m.get("indication") or m.get("indication") != case.get("final_diagnosis"):
            continue  # long-term medicines: holding them is the team's next step
        for ci in kb.drugs[did].contraindications:
            if ci.severity != "absolute":
                continue
            if ci.condition is not None and ci.condition in conditions:
                why = f"the diagnosis ({ci.condition})"
            elif ci.lab is not None and ci.op is not None and ci.value is not None:
                v = values.get(ci.lab)
                if v is None or not compare(v, ci.op, ci.value):
                    continue
                if corrected(did, ci.lab, [i for i, _ in ids]):
                    continue  # the plan corrects it first (labetalol before alteplase)
                why = f"{kb.lab(ci.lab).name} {v:g} ({ci.op} {ci.value:g})"
            else:
                continue
            where.add(
                "drug-contraindicated",
                f"{m.get('name')} is started despite {why}: {ci.note or 'absolute'}",
            )
            break


def _dose_exempt(effect: str, ma: dict[str, Any], mb: dict[str, Any]) -> bool:
    """A dose-conditional interaction ("maintenance aspirin > 100 mg/day") this dose avoids."""
    m = re.search(r"(\w+)\s*>\s*(\d+)\s*mg", effect)
    if m is None:
        return False
    for med in (ma, mb):
        if m.group(1).lower() not in str(med.get("name", "")).lower():
            continue
        if "maintenance" in effect.lower() and str(med.get("frequency")) == "once":
            return True  # a single loading dose is not the maintenance dose meant
        value = _num(med.get("dose_value"))
        return value is not None and value <= float(m.group(2))
    return False


def _check_case_text(where: _Where, case: dict[str, Any], facts: _Facts) -> None:
    problem = _duration_conflict(str(case.get("presentation") or ""))
    if problem:
        where.add("duration-conflict", f"presentation: {problem}")
    diagnosis = " ".join(
        [str(case.get("final_diagnosis") or "")]
        + [str(c.get("name", "")) for c in case.get("conditions") or []]
    ).lower()
    demo = case.get("demographics") or {}
    sex, age = demo.get("sex"), _num(demo.get("age_years"))
    items = dict.fromkeys(i.strip() for i in re.split(r"[;.]\s*|, (?!or\b)", facts.history))
    for item in items:
        # An item is possible when one of its alternatives ("oestrogen therapy or
        # pregnancy") is possible for this patient.
        if _RELATIVE.search(item):
            continue  # family history: the relative's sex and age, not the patient's
        for pattern, only_sex, max_age in SEX_AGE_HISTORY:
            m = pattern.search(item)
            if m is None or any(not pattern.search(alt) for alt in item.split(" or ")):
                continue
            if only_sex is not None and sex in ("female", "male") and sex != only_sex:
                where.add("history-implausible", f"'{item.strip()}' in the history of a {sex}")
            elif max_age is not None and age is not None and age > max_age:
                where.add("history-implausible", f"'{item.strip()}' in the history at age {age:g}")
    for said_dx, said_hx in CONTRADICTIONS:
        if said_dx in diagnosis and said_hx in facts.history:
            where.add(
                "history-contradiction",
                f"the diagnosis says '{said_dx}' but the history records '{said_hx}'",
            )


def _lint_case(kb: KnowledgeBase, where: _Where, case: dict[str, Any]) -> _Facts:
    facts = _case_facts(kb, case)
    _check_case_bp(where, case)
    _check_case_drugs(kb, where, case, facts)
    _check_case_text(where, case, facts)
    facts.text = check_case_text(where, case, kb)
    lint_values.check_case(kb, where, case)
    return facts


# --------------------------------------------------------------------------- conversation rules


@dataclass
class _Shown:
    """What a conversation (and its case) reports: table rows, findings and study reports."""

    text: str
    table_counts: dict[str, int]


def _shown(turns: list[dict[str, Any]], facts: _Facts | None) -> _Shown:
    names: set[str] = set(facts.shown) if facts else set()
    counts: dict[str, int] = {}
    reports = []
    for t in turns:
        for a in t.get("attachments") or []:
            for row in a.get("rows") or []:
                if row:
                    name = str(row[0]).lower()
                    names.add(name)
                    base = name.split(" (")[0]
                    counts[base] = counts.get(base, 0) + 1
        text = str(t.get("text", ""))
        # A report reads "<study>: <result>" (not a plan or a checklist line).
        if (
            str(t.get("role", "")) not in LAY_ROLES
            and _REPORT.match(text)
            and not _NOT_REPORT.match(text)
        ):
            reports.append(text.lower())
    return _Shown(" ".join(sorted(names)) + " " + " ".join(reports), counts)


def _check_bp_text(where: _Where, idx: int | None, t: dict[str, Any]) -> None:
    text = str(t.get("text", ""))
    if _BP_CONTEXT.search(text):
        for m in _BP.finditer(text):
            high, low = int(m.group(1)), int(m.group(2))
            if low >= high and 40 <= high <= 300:
                where.add("bp-inverted", f"'{m.group(0)}': diastolic >= systolic", idx)
    for a in t.get("attachments") or []:
        values = {str(r[0]).lower(): _num(r[1]) for r in a.get("rows") or [] if len(r) > 1}
        s, d = values.get("systolic blood pressure"), values.get("diastolic blood pressure")
        if s is not None and d is not None and d >= s:
            where.add(
                "bp-inverted",
                f"table '{a.get('title')}': {s:g}/{d:g}, diastolic >= systolic",
                idx,
            )


def _check_allergy(
    kb: KnowledgeBase,
    where: _Where,
    idx: int | None,
    role: str,
    sentences: list[str],
    facts: _Facts,
) -> list[str]:
    """Flag clinical statements naming the allergic group; return the planned clashes."""
    planned: list[str] = []
    groups = ", ".join(sorted(g.removeprefix("drug:") for g in facts.allergies))
    for sent in sentences:
        if _NEGATED_USE.search(sent):
            continue  # "avoid penicillins", "allergic to ...", "instead of ..."
        hits = sorted(set(clashing_terms(kb, facts.allergies, sent)))
        if hits:
            where.add(
                "allergy-clash",
                f"{role} names {', '.join(hits)} in a patient allergic to {groups}: '{sent[:100]}'",
                idx,
            )
            planned.extend(hits)
    return planned


def _check_pharmacist(
    kb: KnowledgeBase,
    where: _Where,
    idx: int | None,
    text: str,
    facts: _Facts,
    planned: list[str],
) -> None:
    if not re.search(r"\bno clash\b", text, re.I):
        return
    in_record = [
        str(m.get("name"))
        for m in facts.medications
        if clashing_terms(kb, facts.allergies, str(m.get("name", "")))
    ]
    if planned or in_record:
        drugs = ", ".join(sorted(set(planned + in_record)))
        where.add("allergy-check-false", f"'no clash' but the record plans {drugs}", idx)


def _check_abnormal_list(
    lex: _Lexicon, where: _Where, idx: int | None, text: str, table: list[list[Any]]
) -> None:
    m = _ABNORMAL_LIST.match(text.strip())
    if m is None and not _NOTHING_ABNORMAL.search(text):
        return
    listed = (m.group(2) if m else "").lower()
    for row in table:
        abnormal = _row_abnormal(lex, row)
        if abnormal is None:
            continue
        in_list = _says(listed, f"{row[0]} {row[1]}".lower())
        ref = row[3] if len(row) > 3 and row[3] else "not normal"
        if abnormal and not in_list:
            where.add("abnormal-list-incomplete", f"omits {row[0]} {row[1]} ({ref})", idx)
        elif not abnormal and in_list:
            where.add("abnormal-list-incomplete", f"lists normal {row[0]} {row[1]} ({ref})", idx)


def _check_results(
    kb: KnowledgeBase,
    where: _Where,
    idx: int | None,
    role: str,
    sentences: list[str],
    shown: _Shown,
) -> None:
    lex = _lexicon(kb)
    for sent in sentences:
        claim = _CLAIM.search(sent)
        if claim is None or _HYPOTHETICAL.search(sent):
            continue
        # The evidence follows "given" / "Documented:"; a test named before it is the
        # subject ("she had a colonoscopy because of ..."), not a cited result.
        for test in unshown_tests(kb, sent[claim.start() :], shown.text):
            where.add(
                "result-not-shown",
                f"{role} cites {test} but the record shows no such result: '{sent[:100]}'",
                idx,
            )
        for rm in _REPEAT.finditer(sent):
            what = rm.group(1).lower().strip()
            if what in lex.lab_bases and shown.table_counts.get(what, 0) < 2:
                where.add(
                    "result-not-shown",
                    f"{role} records a repeat {what}; the record shows one {what} result",
                    idx,
                )


def _table_values(turns: list[dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    """First (admission) value and reference of every numeric table row, by name."""
    values: dict[str, tuple[float, float, float]] = {}
    for t in turns:
        for a in t.get("attachments") or []:
            for row in a.get("rows") or []:
                if len(row) < 4 or str(row[0]).lower() in values:
                    continue
                value = _num(row[1])
                ref = re.match(r"^\s*(-?[\d.]+)\s*-\s*(-?[\d.]+)\s*$", str(row[3]))
                if value is not None and ref is not None:
                    values[str(row[0]).lower()] = (
                        value,
                        float(ref.group(1)),
                        float(ref.group(2)),
                    )
    return values


def _check_values(
    lex: _Lexicon,
    where: _Where,
    idx: int | None,
    role: str,
    sentences: list[str],
    values: dict[str, tuple[float, float, float]],
) -> None:
    if not values:
        return
    for sent in sentences:
        low_sent = sent.lower()
        described = any(w in low_sent for w in _DESCRIBED_WORDS)
        compared = any(w in low_sent for w in _COMPARED_WORDS)
        if not (described or compared) or _HYPOTHETICAL.search(sent):
            continue  # (a substring test first: these regexes are the linter's slowest)
        for m in _DESCRIBED.finditer(sent) if described else ():
            word, target = m.group(1).lower(), m.group(2).lower()
            name = lex.lab_aliases.get(target) or lex.lab_aliases.get(target.split()[0])
            if name is None or name not in values:
                continue
            value, low, high = values[name]
            wrong = (
                (word == "normal" and not low <= value <= high)
                or (word == "near-normal" and not low / 1.5 - 1e-9 <= value <= high * 1.5 + 1e-9)
                or (word == "low" and value > high)
                or (word in ("high", "raised", "elevated") and value <= high)
            )
            if wrong:
                where.add(
                    "value-contradiction",
                    f"{role} says '{m.group(0)}' but {name} is {value:g} "
                    f"(reference {low:g}-{high:g}): '{sent[:90]}'",
                    idx,
                )
        for m in _COMPARED.finditer(sent) if compared else ():
            words = m.group(1).lower().split()
            name = next(
                (
                    lex.lab_aliases[" ".join(words[i:])]
                    for i in range(len(words))
                    if " ".join(words[i:]) in lex.lab_aliases
                ),
                None,
            )
            if name is None or name not in values:
                continue
            value, limit = values[name][0], float(m.group(3))
            below = m.group(2) in ("below", "under", "<")
            if (below and value >= limit) or (not below and value <= limit):
                where.add(
                    "value-contradiction",
                    f"{role} says '{m.group(0)}' but {name} is {value:g}: '{sent[:90]}'",
                    idx,
                )


def _lint_conversation(
    kb: KnowledgeBase, where: _Where, conv: dict[str, Any], facts: _Facts | None
) -> None:
    lex = _lexicon(kb)
    turns = conv.get("turns") or []
    lint_values.check_conversation(kb, where, conv)
    lint_chart.check_conversation(where, conv)
    lint_encounter.check_conversation(where, conv)
    shown = _shown(turns, facts)
    values = _table_values(turns)
    # What the record gives: its medicines, and every statement that a drug was given.
    given = " ".join(str(m.get("name", "")) for m in (facts.medications if facts else []))
    given += " " + " ".join(
        str(t.get("text", "")) for t in turns if _GIVES.search(str(t.get("text", "")))
    )
    table: list[list[Any]] = []
    planned: list[str] = []
    asked_hypothetical = False
    for t in turns:
        idx = t.get("index")
        role = str(t.get("role", "")).lower()
        text = str(t.get("text", ""))
        attachments = t.get("attachments") or []
        _check_bp_text(where, idx, t)
        problem = _duration_conflict(text)
        if problem:
            where.add("duration-conflict", problem, idx)
        check_turn_text(
            where, idx, role, str(t.get("speaker", "")), text, facts.text if facts else None
        )
        # The answer to "What would make you reconsider X?" describes another patient.
        hypothetical, asked_hypothetical = (
            asked_hypothetical,
            text.rstrip().endswith("?") and _HYPOTHETICAL.search(text) is not None,
        )
        if role in LAY_ROLES:
            continue
        sentences = _sentences(text)
        if facts is not None and facts.allergies:
            planned += _check_allergy(kb, where, idx, role, sentences, facts)
            if "pharmacist" in role:
                _check_pharmacist(kb, where, idx, text, facts, planned)
        if facts is not None:
            meds = given
            for drug in absent_drugs(kb, text, meds):
                where.add(
                    "drug-not-in-record",
                    f"{role} presumes {drug}, which the record never gives: '{text[:90]}'",
                    idx,
                )
        if role == "radiologist":
            term = next((w for w in NOT_RADIOLOGY if _words(w).search(text)), None)
            if term is not None:
                where.add("role-scope", f"a radiologist reports {term}: '{text[:90]}'", idx)
        if attachments:
            table = [r for a in attachments for r in a.get("rows") or []]
        elif table:
            _check_abnormal_list(lex, where, idx, text, table)
        if not hypothetical:
            _check_results(kb, where, idx, role, sentences, shown)
            _check_values(lex, where, idx, role, sentences, values)


# --------------------------------------------------------------------------- entry points


def lint_records(
    cases: Iterable[tuple[int, dict[str, Any]]],
    conversations: Iterable[tuple[int, dict[str, Any]]],
    *,
    cases_file: str = "cases.jsonl",
    conversations_file: str = "conversations.jsonl",
    kb: KnowledgeBase | None = None,
    tasks: Iterable[tuple[int, dict[str, Any]]] | None = None,
    tasks_file: str = "tasks.jsonl",
    half: tuple[int, int] | None = None,
) -> list[LintFinding]:
    """Lint ``(line, record)`` pairs of cases, conversations and tasks (raw JSON dicts).

    ``half=(at, 0)`` lints only the cases and the conversations before the ``at``-th,
    ``half=(at, 1)`` only the conversations from the ``at``-th on and the tasks: the
    findings of the two halves, in that order, are those of the whole (for two processes).
    """
    kb = kb or load_kb()
    findings: list[LintFinding] = []
    facts: dict[str, _Facts] = {}
    raw: dict[str, dict[str, Any]] = {}  # what lint_plan's conversation checks need
    due: dict[str, dict[str, lint_severity.Trigger]] = {}  # items the severity shown requires
    convs: dict[str, dict[str, Any]] = {}  # what lint_record's task checks need
    at, second = half if half is not None else (0, 0)
    if half is not None and not second:
        tasks = None  # the second half's
    said = [] if second else findings  # the second half: case findings are the first's
    for line, case in cases:
        rid = str(case.get("id", ""))
        facts[rid] = _lint_case(kb, _Where(cases_file, line, rid, said), case)
        lint_plan.lint_case(kb, _Where(cases_file, line, rid, said), case)
        raw[rid] = case
        due[rid] = lint_severity.lint_case(kb, _Where(cases_file, line, rid, said), case)
    for nth, (line, conv) in enumerate(conversations):
        rid = str(conv.get("case_id", ""))
        if tasks is not None:
            convs[rid] = conv
        if half is not None and (nth < at) == bool(second):
            continue  # the other half's
        _lint_conversation(
            kb, _Where(conversations_file, line, rid, findings), conv, facts.get(rid)
        )
        where = _Where(conversations_file, line, rid, findings)
        lint_plan.lint_conversation(kb, where, conv, raw.get(rid))
        lint_severity.lint_conversation(kb, where, conv, due.get(rid))
        lint_surgical.lint_conversation(kb, where, conv, raw.get(rid))
        lint_record.lint_conversation(kb, where, conv, raw.get(rid))
        lint_patient.lint_conversation(kb, where, conv, raw.get(rid))
        lint_dose.lint_conversation(kb, where, conv, raw.get(rid))
    if tasks is not None:
        where_of = lambda line, tid: _Where(tasks_file, line, tid, findings)  # noqa: E731
        tasks = lint_values.checked_tasks(kb, tasks, where_of)  # value-impossible in notes
        lint_record.lint_tasks(kb, tasks, convs, raw, where_of)
    return findings


_ERROR_TASK = TaskType.EXPLICIT_ERROR_CORRECTION.value


def _is_order(task: dict[str, Any]) -> bool:
    """Whether ``task`` may be one lint_errors checks: an error correction whose excerpt is a
    new order (only these are kept for ``lint_errors.lint_tasks``, not all the tasks)."""
    ctx = task.get("context")
    return (
        task.get("task_type") == _ERROR_TASK
        and isinstance(ctx, dict)
        and "New order: " in str(ctx.get("excerpt") or "")
    )


def lint_bench(
    folder: Path | str, *, cases: Path | None = None, half: tuple[int, int] | None = None
) -> list[LintFinding]:
    """Lint a BENCH folder's cases (``cases.jsonl``, or ``cases``) and conversations
    (``half``: one of two halves, as ``lint_records`` says; the tasks are the second's)."""
    folder = Path(folder)
    case_path = cases or _case_file(folder)
    conv_path = folder / "conversations.jsonl"
    if case_path is None and not conv_path.is_file():
        raise FileNotFoundError(f"{folder}: no cases.jsonl or conversations.jsonl to lint")
    task_path = folder / "tasks.jsonl"
    # Each file is read and parsed once: the planted-order check (lint_errors.py) gets the
    # cases and error-correction tasks the record and task checks have already parsed.
    cases_seen: list[tuple[int, dict[str, Any]]] = []
    orders: list[tuple[int, dict[str, Any]]] = []

    def keep(
        rows: Iterable[tuple[int, dict[str, Any]]], into: list[Any], orders_only: bool
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        for row in rows:
            if not orders_only:
                into.append(row)
            elif _is_order(row[1]):  # what lint_errors reads of it (a whole task is large)
                task = row[1]
                excerpt = task["context"].get("excerpt")
                into.append(
                    (
                        row[0],
                        {
                            "id": task.get("id"),
                            "case_id": task.get("case_id"),
                            "task_type": task.get("task_type"),
                            "context": {"excerpt": excerpt},
                            "options": task.get("options"),  # query-as-ordered
                        },
                    )
                )
            yield row

    case_rows = keep(_read(case_path), cases_seen, False) if case_path is not None else None
    task_rows = (
        keep(_read(task_path), orders, True)
        if task_path.is_file() and (half is None or half[1])
        else None
    )
    findings = lint_records(
        case_rows if case_rows is not None else iter(()),
        _read(conv_path) if conv_path.is_file() else iter(()),
        cases_file=str(case_path) if case_path is not None else "cases.jsonl",
        conversations_file=str(conv_path),
        tasks=task_rows,
        tasks_file=str(task_path),
        half=half,
    )
    if case_rows is not None and task_rows is not None:  # planted orders: lint_errors.py
        for rows in (case_rows, task_rows):  # read to the end (both are, normally)
            for _ in rows:
                pass
        lint_errors.lint_tasks(
            cases_seen, orders, lambda line, tid: _Where(str(task_path), line, tid, findings)
        )
    return findings


def counts_by_rule(findings: Iterable[LintFinding]) -> dict[str, int]:
    """Findings per rule id (every rule present, zero where none)."""
    counts = dict.fromkeys(RULES, 0)
    for f in findings:
        counts[f.rule] = counts.get(f.rule, 0) + 1
    return counts
