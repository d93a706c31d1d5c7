"""Clinical linter, plans and reasoning: what the team cites, prescribes and leaves out.

Rules (called from ``lint.py``; see docs/building.md, "Clinical linter"):

``reason-not-shown``        the team's reasoning ("X fits best given ...", "Y is less likely
                            given ...") cites a finding the record shown before that turn
                            does not give, or contradicts ("positive blood cultures" with a
                            blood culture of "no growth"; "RV dilatation" the CT never reports)
``drug-no-indication``      a regular medicine whose indication the history never names
                            (metformin without diabetes, lisinopril without hypertension)
``therapy-without-drug``    the history gives a current drug therapy ("loop or thiazide
                            diuretic therapy", "sulfonylurea therapy") that no medicine of
                            the record matches
``renal-dose``              a renally cleared drug the KB forbids, or gives at a reduced dose,
                            below its eGFR/CrCl threshold at the unadjusted dose (metformin at
                            eGFR < 30; enoxaparin 40 mg daily at CrCl < 30)
``plan-missing-class``      a class of therapy the record requires is missing from the plan
                            (an infection named, as pneumonia on imaging or purulent sputum,
                            with no antibacterial; decompensated heart failure without a loop
                            diuretic; alcohol withdrawal without a sedative)
``plan-overlap``            two plan drugs of one role: a drug the condition gives as
                            monotherapy with another antibacterial (levofloxacin with
                            azithromycin), two atypical-cover agents, two drugs of one
                            interchangeable choice (nitrofurantoin with co-trimoxazole)
``conditional-unmet``       a conditional drug without the condition its KB note gives
                            (ampicillin for Listeria in a 28-year-old with no immunocompromise)
``drug-too-late``           a drug that works only early given past its window (colchicine
                            more than 36 h into a gout flare)
``sick-day-continued``      a regular metformin, ACE inhibitor/ARB, diuretic, MRA, SGLT2
                            inhibitor, NSAID or sulfonylurea continued (no "Held:" fact) in
                            acute kidney injury, a dehydrating illness, hypotension (SBP < 90),
                            sepsis or hyperkalaemia
``hold-not-taken``          a hold statement names a drug the patient does not take ("hold ACE
                            inhibitor/ARB, diuretics and metformin" with none of them listed),
                            or a clause continues or stops a class the patient does not take
                            ("stop potassium-raising drugs", "continuation of RAAS inhibitors")
``dialysis-incoherent``     a history of dialysis or end-stage kidney disease with a day-0
                            eGFR of 15 or more, or with metformin on the list
``history-duplicate``       the history names one disease twice ('diabetes mellitus' and
                            'type 2 diabetes') or a listed medicine's use ('glipizide use')
``history-step-missing``    the history holds an item whose pathway step the condition's KB
                            ``history_steps`` give (an operation: wound and VTE risk; injection
                            drug use: HIV and hepatitis testing, addiction services; alcohol use
                            disorder: thiamine and withdrawal monitoring) and no turn plans it
``regimen-incomplete``      a plan gives a stat dose whose KB regimen it never states
                            (hydrocortisone 100 mg IV once in adrenal crisis with no 50 mg
                            q6h), or a renally reduced antibacterial without its first dose
                            in full (meropenem 0.5 g q12h from the first dose in septic shock)
``care-without-drug``       a care item recorded as done presupposes a drug by a route the
                            record never gives ('IV potassium rate documented and limited'
                            after oral potassium only)
``step-against-history``    a step the history rules out: 'anticoagulate for at least 3
                            months (provoked)' for a clot with active cancer (6 months and
                            while the cancer is active, NICE NG158; ASCO 2023)
``plan-untaken-drug``       a plan clause names a drug group the patient takes none of ('stop
                            causative drugs (e.g. statins)' on metoprolol alone, 'reduce
                            insulin doses' with no insulin), or a checklist line records a care
                            item meant for the people on a drug the patient is not on
                            ('glucagon prescribed' for people on insulin, on glipizide alone)
``target-inconsistent``     two turns give different SpO2 targets (94-98% at triage, 93-95%
                            in the asthma plan)
``reorder-given``           the plan orders a one-off dose an earlier turn already gave (IV
                            magnesium 2 g given on arrival for life-threatening asthma, then
                            'Magnesium sulfate 2 g IV once' in the plan)
``planned-result-missing``  a turn does a study on day 0 'to look for' something and gives no
                            result ('CT angiography on day 0, to look for a large-vessel
                            occlusion ...' and nothing more)
``recheck-not-done``        a turn promises a lab rechecked within hours ('serum potassium
                            rechecked within 4-6 h') and the record shows no second value
                            of it that day
``glucose-after-study``     a patient with an altered mental state has a study requested (CT
                            head) before any capillary glucose is shown
``treat-without-order``     the plan says it treats a value the chart never treats ('treat
                            hyperkalaemia' with no insulin, binder or other potassium-lowering
                            drug given), or a day-0 value the condition replaces is left
                            alone (phosphate 2.1 in alcohol withdrawal, no phosphate given)
``step-without-indication`` a next step starts a long-term drug whose indication the record
                            does not document (allopurinol with no recurrent flares, tophi or
                            radiographic damage)

The same check of a cited reason (``supported_clauses``) is what the renderer uses to
decide which reasons the attending may give, so a rebuilt record cites only what it shows.
Renal function is estimated from the day-0 creatinine: the KB's eGFR rules read the CKD-EPI
2021 eGFR, its CrCl rules Cockcroft-Gault clearance at a nominal weight (70 kg men, 60 kg
women; no weight is recorded). The prescribing rules read ``sources/prescribing.py``'s tables.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.build.lint_common import kb_code as _kb_condition
from behaviorsft.build.lint_common import num as _num
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.patient import TARGET_SAID

RULES: dict[str, tuple[str, str]] = {
    "reason-not-shown": ("error", "reasoning cites a finding the record does not show"),
    "drug-no-indication": ("error", "a regular medicine with no indication in the history"),
    "therapy-without-drug": ("error", "history gives a drug therapy no medicine matches"),
    "renal-dose": ("error", "renally cleared drug unadjusted below its eGFR/CrCl threshold"),
    "plan-missing-class": ("error", "the plan lacks a class of therapy the record requires"),
    "plan-overlap": ("error", "two plan drugs of one role"),
    "conditional-unmet": ("error", "a conditional drug given without its condition"),
    "drug-too-late": ("error", "a drug that works only early given past its window"),
    "sick-day-continued": ("error", "a sick-day medicine continued in an acute illness"),
    "hold-not-taken": ("error", "a hold statement names a drug the patient does not take"),
    "step-without-indication": ("error", "a next step starts a drug with no documented indication"),
    "step-against-history": ("error", "a step the history rules out (3 months with cancer)"),
    "care-without-drug": ("error", "a care item recorded as done presupposes a drug not given"),
    "regimen-incomplete": ("error", "a stat dose without its regimen, or a reduced first dose"),
    "dialysis-incoherent": ("error", "a history of dialysis with an eGFR >= 15 or metformin"),
    "history-duplicate": ("error", "one disease (or a listed medicine's use) named twice"),
    "history-step-missing": ("error", "a step the history calls for is not in the plan"),
    "plan-untaken-drug": ("error", "a plan or checklist line names a drug the patient lacks"),
    "target-inconsistent": ("error", "two turns give different oxygen saturation targets"),
    "reorder-given": ("error", "the plan orders again a one-off dose already given"),
    "treat-without-order": ("error", "the plan treats a value but no such treatment is given"),
    "glucose-after-study": ("error", "altered mental state: a study requested before any glucose"),
    "recheck-not-done": ("error", "a recheck within hours that the record never shows"),
    "planned-result-missing": ("error", "a day-0 study the team does with no result shown"),
}


_STUDY_ASKED = re.compile(r"\bthis study: |\band request: ", re.I)  # the orders turn
# prescribing.NAMED_CLAUSES' verbs, and a step for the patients on a drug
_STOP_REDUCE = re.compile(
    r"\b(?:stop|reduce)\b|\b(?:people|patients|those) (?:on|taking|receiving)\b", re.I
)


# ----------------------------------------------------------------------------- renal


def egfr(creatinine: float, age: float, sex: str | None) -> float:
    """eGFR (mL/min/1.73 m2) by the race-free CKD-EPI 2021 creatinine equation."""
    female = sex == "female"
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = creatinine / kappa
    value = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938**age
    return value * 1.012 if female else value


# Weight (kg) standing in for the one the record does not give in Cockcroft-Gault.
NOMINAL_WEIGHT = {"male": 70.0, "female": 60.0}


def cockcroft_gault(
    creatinine: float, age: float, sex: str | None, kg: float | None = None
) -> float:
    """Creatinine clearance (mL/min) by Cockcroft-Gault at the weight ``kg`` the record
    shows, or the nominal weight of the sex (70 kg men, 60 kg women; 65 kg unknown): what
    labels' CrCl thresholds mean."""
    weight = kg if kg is not None else NOMINAL_WEIGHT.get(sex or "", 65.0)
    value = (140 - age) * weight / (72 * creatinine)
    return value * 0.85 if sex == "female" else value


# Renal thresholds (mL/min) at or below which a dose reduction is checked: severe impairment,
# where eGFR standing in for clearance cannot mislead (a 2.25 g piperacillin-tazobactam band
# at CrCl 20-40 needs a weight the record does not give).
SEVERE = 30


def renal_problem(
    kb: KnowledgeBase,
    drug_id: str,
    gfr: float,
    dose: tuple[float | None, str, str],
    crcl: float | None = None,
) -> str | None:
    """Why ``drug_id`` at ``dose`` (amount, unit, frequency) is wrong at ``gfr`` (and, for
    the KB's CrCl rules, ``crcl`` when given), or None.

    A rule that forbids the drug (contraindicated, avoid) always applies; a dose reduction
    applies when the dose given is one of the drug's standard (unadjusted) KB doses.
    """
    drug = kb.drugs.get(drug_id)
    if drug is None:
        return None
    for rule in sorted(drug.renal, key=lambda r: r.value):
        by_crcl = rule.metric == "crcl" and crcl is not None
        value = crcl if by_crcl and crcl is not None else gfr
        if rule.metric not in ("egfr", "crcl") or not rule.applies(value):
            continue
        at = f"{'CrCl' if by_crcl else 'eGFR'} {value:.0f}"
        if rule.action in ("contraindicated", "avoid"):
            return f"{drug.name} at {at}: {rule.detail}"
        if rule.action == "reduce_dose" and rule.value <= SEVERE:
            amount, unit, freq = dose
            standard = any(
                d.amount == amount and d.unit == unit and d.frequency == freq for d in drug.doses
            )
            if standard:
                return f"{drug.name} {amount:g} {unit} {freq} at {at}: {rule.detail}"
    return None


# "2.25 g q8h", "30 mg SC once daily", "1 mg/kg SC once daily" in a renal rule's detail
_DOSE = re.compile(
    r"(\d+(?:\.\d+)?)\s*(mg/kg|mg|g|units)(?![/\w])\s*(?:IV|SC|PO)?\s*"
    r"(once daily|twice daily|q\d+h)"
)


def renal_dose(
    kb: KnowledgeBase,
    drug_id: str,
    gfr: float,
    amount: float,
    unit: str,
    crcl: float | None = None,
) -> tuple[float, str] | None:
    """The KB's reduced dose (amount, frequency) of enoxaparin-like rules at ``gfr`` (and,
    for CrCl rules, ``crcl`` when given, whose extended intervals count too: levofloxacin
    750 mg q48h at CrCl 20-49), if any.

    Reads the rule's detail ("treatment 1 mg/kg SC once daily; prophylaxis 30 mg SC once
    daily"): the weight-based dose keeps its amount once daily, a fixed dose takes the
    prophylaxis amount.
    """
    drug = kb.drugs.get(drug_id)
    if drug is None:
        return None
    for rule in sorted(drug.renal, key=lambda r: r.value):
        by_crcl = rule.metric == "crcl" and crcl is not None
        actions = ("reduce_dose", "extend_interval") if by_crcl else ("reduce_dose",)
        if rule.action not in actions or rule.metric not in ("egfr", "crcl"):
            continue
        if not rule.applies(crcl if by_crcl and crcl is not None else gfr):
            continue
        load = re.search(
            r"(\d+(?:\.\d+)?) (mg|g) once then (\d+(?:\.\d+)? (?:mg|g) q\d+h)", rule.detail
        )
        if load and load[2] == unit:  # levofloxacin at CrCl 10-19: a load, then less
            return (float(load[1]), f"once, then {load[3]}")
        half = re.search(r"half the usual dose (q\d+h)", rule.detail)
        if half:
            return (amount / 2, half[1])
        for m in _DOSE.finditer(rule.detail):
            if m[2] == unit:
                return (float(m[1]) if unit != "mg/kg" else amount, m[3])
    return None


# ----------------------------------------------------------------------------- reasons

# Words for a finding that a number in the record settles: (lab id, op, threshold).
TERMS: dict[str, tuple[str, str, float]] = {
    "fever": ("temperature", ">=", 38.0),
    "febrile": ("temperature", ">=", 38.0),
    "afebrile": ("temperature", "<", 38.0),
    "tachycardia": ("heart_rate", ">", 100),
    "hypotension": ("sbp", "<", 90),
    "normotension": ("sbp", ">=", 90),
    "hypoxaemia": ("spo2", "<", 94),
    "hypoxemia": ("spo2", "<", 94),
    "leukocytosis": ("wbc", ">", 11),
    "hyperkalaemia": ("potassium", ">", 5.0),
    "hyperkalemia": ("potassium", ">", 5.0),
    "hyponatraemia": ("sodium", "<", 135),
    "hyponatremia": ("sodium", "<", 135),
    "hypoglycaemia": ("glucose", "<", 70),
    "hypoglycemia": ("glucose", "<", 70),
}

_OPS = {"above": ">", "over": ">", "below": "<", "under": "<", "≥": ">=", "≤": "<="}
_COMPARE = re.compile(
    r"^(?P<name>[A-Za-z][\w .:/()-]*?)\s*(?P<op>>=|<=|≥|≤|>|<|\babove\b|\bbelow\b|\bover\b"
    r"|\bunder\b)\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<uln>x\s*ULN)?",
    re.I,
)
_QUALIFIED = re.compile(
    r"^(?:a |an )?(?P<q>normal|raised|high|elevated|very high|low|suppressed|positive|"
    r"negative)\s+(?P<name>.+)$",
    re.I,
)
_NEGATIVE_CLAUSE = re.compile(r"^(?:no|without|not)\b", re.I)
_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+|\s+with\s+|\s+(?=without\s)|\s+despite\s+")
# "filling defects on CTPA": where a finding was seen, which the report itself does not say
_WHERE_SEEN = re.compile(
    r"\s+on\s+(?:CT\w*|chest X-ray|ultrasound|Gram stain|CT pulmonary angiography)$", re.I
)
_REASON = re.compile(
    r"(?P<dx>[A-Z][^.]*?(?:\.\s[a-z][^.]*?)*?) (?P<verb>fits best|is less likely) given "
    r"(?P<reason>.+?)\.(?=\s+[A-Z]|\s*$)"
)
_STOP = frozenset(
    {"a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "for", "with", "by", "is"}
    | {"are", "be", "if", "when", "that", "this", "it", "as", "from", "after", "before"}
    | {"than", "then"}
)
_TOKEN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1 << 12)  # one record's sentences, many times each
def _toks(text: str) -> frozenset[str]:
    """The content words of ``text`` (cached: each record sentence is tested against every
    cited clause of every reason rendered for it)."""
    out = set()
    for t in _TOKEN.findall(text.lower()):
        if len(t) > 3 and t.endswith("s") and not t.endswith("ss"):
            t = t[:-1]
        if t not in _STOP:
            out.add(t)
    return frozenset(out)


@dataclass
class Shown:
    """What a record shows up to a turn: its sentences, and its table rows by lab id."""

    sentences: list[str] = field(default_factory=list)
    # lab id -> [(value, text, low, high)] in the order shown
    rows: dict[str, list[tuple[float | None, str, float | None, float | None]]] = field(
        default_factory=dict
    )


_SHOWN_SENTENCE = re.compile(r"(?<=[.;!?:])\s+")
_SHOWN_RANGE = re.compile(r"\s*(-?\d+(?:\.\d+)?)-(-?\d+(?:\.\d+)?)\s*")


def shown_record(
    kb: KnowledgeBase, turns: Iterable[tuple[str, list[list[Any]]]], *, lay: bool = True
) -> Shown:
    """``Shown`` of ``(text, table rows)`` pairs: every sentence and every result row."""
    from behaviorsft.build.lint_values import _lab_ids

    by_name = _lab_ids(kb)  # (cached per knowledge base)
    out = Shown()
    for text, rows in turns:
        out.sentences += [s for s in _SHOWN_SENTENCE.split(text) if s]
        for row in rows:
            if not row:
                continue
            lab_id = by_name.get(str(row[0]).lower())
            out.sentences.append(" ".join(str(x) for x in row))
            if lab_id is None:
                continue
            low = high = None
            ref = str(row[3]) if len(row) > 3 else ""
            m = _SHOWN_RANGE.fullmatch(ref)
            if m:
                low, high = float(m[1]), float(m[2])
            out.rows.setdefault(lab_id, []).append(
                (
                    _num(row[1]) if len(row) > 1 else None,
                    str(row[1]) if len(row) > 1 else "",
                    low,
                    high,
                )
            )
    return out


# A specimen a cited result names, and the word its lab's id carries: "low urinary
# potassium" is no serum potassium, "ascitic glucose" no blood glucose.
_SPECIMENS = (
    (re.compile(r"\burin(?:e|ary)\b", re.I), "urine"),
    (re.compile(r"\bascitic\b", re.I), "ascitic"),
    (re.compile(r"\bcsf\b", re.I), "csf"),
    (re.compile(r"\bsynovial\b", re.I), "synovial"),
    (re.compile(r"\bpleural\b", re.I), "pleural"),
)


def _lab_of(kb: KnowledgeBase, name: str) -> str | None:
    from behaviorsft.build.record_index import lexicon

    for cid in lexicon(kb).find(name):
        if cid.startswith("test:"):
            lab = cid[len("test:") :]
            if any(p.search(name) and word not in lab for p, word in _SPECIMENS):
                return None  # another specimen's test
            return lab
    return None


def _cmp(value: float, op: str, threshold: float) -> bool:
    return {
        ">": value > threshold,
        ">=": value >= threshold,
        "<": value < threshold,
        "<=": value <= threshold,
    }[op]


def _phrase(shown: Shown, clause: str, *, negative: bool) -> bool:
    from behaviorsft.build.record_index import _stance

    want = _toks(re.sub(r"^(?:no|without|not)\s+", "", clause, flags=re.I))
    if not want:
        return False
    for s in shown.sentences:
        # the record's own words, or a sentence that states them without doubt
        if want <= _toks(s) and (
            negative or clause.lower() in s.lower() or _stance(s) == "affirmed"
        ):
            return True
    return False


# a finding cited as what the history or the patient gave (discriminators.against_reason)
_KNOWN = re.compile(r"^(?:known|a preceding|a patient)\s+(?=\w)", re.I)


def clause_supported(kb: KnowledgeBase, shown: Shown, clause: str) -> bool:
    """Whether the record ``shown`` gives (and does not contradict) one cited ``clause``."""
    clause = _WHERE_SEEN.sub("", clause.strip().rstrip("."))
    known = _KNOWN.match(clause)  # "known asthma": the history gives asthma
    if known is not None:
        clause = clause[known.end() :]
    low = clause.lower()
    if low in TERMS:
        term_lab, op, threshold = TERMS[low]
        rows = [r for r in shown.rows.get(term_lab, []) if r[0] is not None]
        if rows and _cmp(rows[0][0], op, threshold):  # type: ignore[arg-type]
            return True
        # else only as the patient or a clinician said it ("fever" the patient reports)
        return _phrase(shown, clause, negative=False)
    m = _COMPARE.match(clause)
    if m is not None:
        lab_id = _lab_of(kb, m["name"])
        rows = [r for r in shown.rows.get(lab_id or "", []) if r[0] is not None]
        if not rows:
            return False
        value, _, _, high = rows[0]
        op = _OPS.get(m["op"].lower(), m["op"])
        threshold = float(m["num"])
        if m["uln"]:
            if high is None:
                return False
            threshold *= high
        return _cmp(value, op, threshold)  # type: ignore[arg-type]
    m = _QUALIFIED.match(clause)
    if m is not None:
        lab_id = _lab_of(kb, m["name"])
        rows = shown.rows.get(lab_id or "", [])
        if lab_id is not None and rows:
            value, text, lo, hi = rows[0]
            q = m["q"].lower()
            lab = kb.labs[lab_id]
            if value is None:  # qualitative
                normal = text in lab.normal_values
                return (q == "negative") == normal if q in ("positive", "negative") else False
            if q in ("positive", "negative") or lo is None or hi is None:
                return False
            if q == "normal":
                return lo <= value <= hi
            if q in ("raised", "high", "elevated", "very high"):
                return value > hi * (3 if q == "very high" else 1)
            return value < lo or (lo == 0 and value <= hi)  # low, suppressed
    return _phrase(shown, clause, negative=bool(_NEGATIVE_CLAUSE.match(clause)))


def split_clauses(reason: str) -> list[str]:
    """'fever, leukocytosis and positive blood cultures' -> its three cited findings."""
    parts = []
    for part in _SPLIT.split(reason):
        part = part.strip(" ,")
        if part:
            parts.append(part)
    return parts


def supported_clauses(kb: KnowledgeBase, shown: Shown, reason: str) -> tuple[list[str], list[str]]:
    """``(supported, unsupported)`` cited findings of ``reason`` against ``shown``."""
    ok: list[str] = []
    bad: list[str] = []
    for clause in split_clauses(reason):
        (ok if clause_supported(kb, shown, clause) else bad).append(clause)
    return ok, bad


def join_clauses(clauses: Sequence[str]) -> str:
    """Cited findings as one phrase: 'a and b without c'."""
    pos = [c for c in clauses if not c.lower().startswith("without ")]
    neg = [c for c in clauses if c.lower().startswith("without ")]
    if not pos:
        return " ".join(neg)
    head = pos[0] if len(pos) == 1 else ", ".join(pos[:-1]) + " and " + pos[-1]
    return " ".join([head, *neg])


def supported_reason(kb: KnowledgeBase, shown: Shown, reason: str) -> str | None:
    """``reason`` cut to the findings ``shown`` gives (the KB's words when all are), or None."""
    ok, bad = supported_clauses(kb, shown, reason)
    if not bad:
        return reason
    if not ok or all(c.lower().startswith("without ") for c in ok):
        return None
    return join_clauses(ok)


def cited_reasons(text: str) -> list[tuple[str, str, str]]:
    """``(diagnosis, verb, reason)`` of each "X fits best / is less likely given R." in ``text``."""
    if "fits best given " not in text and "is less likely given " not in text:
        return []  # (what every match holds: most turns cite no reason)
    return [(m["dx"], m["verb"], m["reason"]) for m in _REASON.finditer(text)]


# ----------------------------------------------------------------------------- medicines

# Regular medicines and the history words that give their indication.
INDICATIONS: dict[str, tuple[str, ...]] = {
    "metformin": ("diabetes", "insulin resistance", "polycystic"),
    "lisinopril": ("hypertension", "heart failure", "diabetes", "kidney", "proteinuria"),
    "metoprolol": (
        "hypertension",
        "coronary",
        "ischaemic heart",
        "atrial fibrillation",
        "heart failure",
        "angina",
        "myocardial",
    ),
    "atorvastatin": (
        "cholesterol",
        "lipid",
        "coronary",
        "ischaemic heart",
        "stroke",
        "vascular",
        "myocardial",
    ),
    "aspirin": (
        "coronary",
        "ischaemic heart",
        "myocardial",
        "stroke",
        "stent",
        "vascular",
        "angina",
    ),
    "pantoprazole": ("reflux", "ulcer", "dyspepsia", "gastritis", "oesophag", "esophag"),
}

# A current drug therapy in the history, and the KB drug classes (lower-case substrings)
# or drug ids that would carry it.
THERAPIES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"\bdiuretic", re.I), ("diuretic",)),
    (re.compile(r"\bsulfonylurea", re.I), ("sulfonylurea",)),
    (re.compile(r"\binsulin therapy\b", re.I), ("insulin",)),
    (re.compile(r"\btnf|\bimmunosuppressive therapy\b", re.I), ("immunosuppress", "tnf")),
    (re.compile(r"\banticoagula\w* therapy\b", re.I), ("anticoagulant", "heparin", "factor xa")),
    (re.compile(r"\bstatin therapy\b", re.I), ("statin",)),
    (re.compile(r"\boestrogen therapy\b", re.I), ("oestrogen", "estrogen")),
    (re.compile(r"\bbenzodiazepines or opioids\b", re.I), ("benzodiazepine", "opioid")),
    (re.compile(r"\bace inhibitor, arb\b", re.I), ("ace inhibitor", "angiotensin", "diuretic")),
    (re.compile(r"\bssris?\b", re.I), ("ssri", "serotonin")),
    (re.compile(r"\bglucocorticoids\b", re.I), ("corticosteroid", "glucocorticoid")),
    (re.compile(r"\bproton pump inhibitor use\b", re.I), ("proton pump",)),
    (re.compile(r"\bbeta-blocker or ace inhibitor use\b", re.I), ("beta-blocker", "ace inhib")),
    (re.compile(r"\bsglt2 inhibitor use\b", re.I), ("sglt2",)),
    (re.compile(r"\bbeta2-agonists or insulin therapy\b", re.I), ("beta2", "insulin")),
)


def history_therapies(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """The current drug therapies ``text`` (a history item) names, with their classes."""
    return [(m[0], classes) for p, classes in THERAPIES if (m := p.search(text))]


def _drug_matches(
    kb: KnowledgeBase, meds: Sequence[dict[str, Any]], classes: Sequence[str]
) -> bool:
    for med in meds:
        name = str(med.get("name", "")).lower()
        cls = str(med.get("drug_class") or "").lower()
        drug = next((d for d in kb.drugs.values() if d.name.lower() == name), None)
        if drug is not None:
            cls += " " + drug.drug_class.lower()
        if any(c in cls or c in name for c in classes):
            return True
    return False


# Infections a plan must treat with an antibacterial, as records name them.
INFECTION = re.compile(
    r"\bpneumonia\b|\bpurulent sputum\b|\bsputum purulence\b|\bconsolidation\b", re.I
)
# Findings that say the infection is absent, said with the same words.
NO_INFECTION = re.compile(r"\b(no|without)\b[^.;]*\b(pneumonia|consolidation|purulen)", re.I)
ANTIBACTERIAL = (
    "penicillin",
    "cephalosporin",
    "carbapenem",
    "fluoroquinolone",
    "macrolide",
    "tetracycline",
    "glycopeptide",
    "lipopeptide",
    "nitroimidazole",
    "lincosamide",
    "sulfonamide",
    "nitrofuran",
    "aminopenicillin",
    "beta-lactam",
    "phosphonic",
    "antibiotic",
)
# Conditions (KB ids) whose plan needs a drug of one of these classes.
REQUIRED: dict[str, tuple[str, tuple[str, ...]]] = {
    "acute_decompensated_heart_failure": ("a loop diuretic", ("loop diuretic",)),
    "alcohol_withdrawal": ("a sedative for withdrawal", ("benzodiazepine", "barbiturate")),
    "spontaneous_bacterial_peritonitis": ("an antibacterial", ANTIBACTERIAL),
    "sepsis": ("an antibacterial", ANTIBACTERIAL),
    "bacterial_meningitis": ("an antibacterial", ANTIBACTERIAL),
    "pyelonephritis": ("an antibacterial", ANTIBACTERIAL),
    "community_acquired_pneumonia": ("an antibacterial", ANTIBACTERIAL),
    "diverticulitis": ("anaerobic cover", ("nitroimidazole", "penicillin", "carbapenem")),
    # AHA 2015 / ESC 2023: empirical therapy covers MRSA until sensitivities return
    # (vancomycin; daptomycin in a glycopeptide allergy), never cefazolin alone
    "infective_endocarditis": ("MRSA cover", ("glycopeptide", "lipopeptide", "oxazolidinone")),
}


def required_missing(
    kb: KnowledgeBase, cond_id: str | None, meds: Sequence[dict[str, Any]], record: str
) -> list[str]:
    """What class of therapy the plan (``meds``) lacks for this condition or record text."""
    out = []
    if cond_id in REQUIRED:
        what, classes = REQUIRED[cond_id]
        if not _drug_matches(kb, meds, classes):
            out.append(what)
    # an infection a statement names, not one it rules out ("hyperinflation without
    # consolidation" says nothing of the purulent sputum the patient reports)
    named = [
        m[0]
        for seg in re.split(r"[.;]\s*", record)
        if (m := INFECTION.search(seg)) and not NO_INFECTION.search(seg)
    ]
    if named and not _drug_matches(kb, meds, ANTIBACTERIAL) and "an antibacterial" not in out:
        out.append(f"an antibacterial ({named[0].lower()} named)")
    return out


# ----------------------------------------------------------------------------- lint


def _history(case: dict[str, Any]) -> str:
    parts = [
        str(s.get("text", ""))
        for s in case.get("sections") or []
        if "history" in str(s.get("title", "")).lower()
        and "presenting" not in str(s.get("title", "")).lower()
    ]
    parts += [
        str(f).removeprefix("History:").strip()
        for f in case.get("facts") or []
        if str(f).startswith("History")
    ]
    return " ".join(parts)


def lint_case(kb: KnowledgeBase, where: _Adds, case: dict[str, Any]) -> None:
    """Medicines against the history and renal function; the plan against the condition."""
    history = _history(case)
    meds = list(case.get("medications") or [])
    diagnosis = str(case.get("final_diagnosis") or "")
    if history.strip():
        for med in meds:
            name = str(med.get("name", "")).lower().split(" (")[0]
            terms = INDICATIONS.get(name)
            if terms is None or str(med.get("indication") or "") == diagnosis:
                continue
            if not any(t in history.lower() for t in terms):
                where.add(
                    "drug-no-indication",
                    f"{med.get('name')} with no indication in the history ('{history[:80]}')",
                )
        items = dict.fromkeys(i.strip(" .") for i in re.split(r";|\.\s", history))
        from behaviorsft.sources.history import duplicates

        listed = [i for i in items if i] if _kb_condition(case) is not None else []  # synthetic
        for item in duplicates(listed, [str(m.get("name", "")) for m in meds]):
            where.add("history-duplicate", f"history names '{item[:80]}' twice ('{history[:80]}')")
        for item in items:
            for said, classes in history_therapies(item):
                if not _drug_matches(kb, meds, classes):
                    where.add(
                        "therapy-without-drug",
                        f"history gives '{item.strip()[:80]}' but no {said} is recorded",
                    )
    demo = case.get("demographics") or {}
    age, sex = _num(demo.get("age_years")), demo.get("sex")
    creat = next(
        (
            _num(f.get("value"))
            for f in case.get("findings") or []
            if str(f.get("name", "")).lower() == "creatinine" and f.get("value") is not None
        ),
        None,
    )
    if _kb_condition(case) is not None:  # (synthetic cases)
        from behaviorsft.sources.history import kidney_failure_conflict

        gfr0 = egfr(creat, age, sex) if creat and age is not None else None
        why = kidney_failure_conflict(history, gfr0, [str(m.get("name", "")) for m in meds])
        if why:
            where.add("dialysis-incoherent", f"history of dialysis: {why}")
    if creat and age is not None:
        gfr = egfr(creat, age, sex)
        from behaviorsft.sources.patient import record_weight

        kg = record_weight(  # the triage weight (sources/patient.py)
            str(case.get("id", "")),
            sex,
            ((str(x.get("title", "")), str(x.get("text", ""))) for x in case.get("sections") or []),
        )
        crcl = cockcroft_gault(creat, age, sex, kg)
        by_name = {d.name.lower(): d.id for d in kb.drugs.values()}
        for med in meds:
            did = by_name.get(str(med.get("name", "")).lower())
            if did is None:
                continue
            dose = (
                _num(med.get("dose_value")),
                str(med.get("dose_unit") or ""),
                str(med.get("frequency") or ""),
            )
            problem = renal_problem(kb, did, gfr, dose, crcl)
            if problem:
                where.add("renal-dose", problem)
    cond_id = _kb_condition(case)
    if cond_id is not None:
        plan = [m for m in meds if str(m.get("indication") or "") == diagnosis]
        record = ". ".join(
            [
                str(f.get("value_text") or "")
                for f in case.get("findings") or []
                if f.get("kind") == "imaging"
            ]
            + [str(f) for f in case.get("facts") or [] if str(f).startswith("Reports")]
        )
        for what in required_missing(kb, cond_id, plan, record):
            where.add("plan-missing-class", f"the plan for {diagnosis or cond_id} lacks {what}")
        _lint_prescribing(kb, where, case, cond_id, plan, history)
        _check_value_treated(kb, where, case, cond_id, meds)


def _check_value_treated(
    kb: KnowledgeBase,
    where: _Adds,
    case: dict[str, Any],
    cond_id: str,
    meds: Sequence[dict[str, Any]],
) -> None:
    """``treat-without-order``: a day-0 value the condition replaces (a low magnesium or
    phosphate in alcohol withdrawal, prescribing.BY_VALUE) with no replacement given."""
    from behaviorsft.sources import prescribing

    labs = {lab for (c, _), (lab, _, _) in prescribing.BY_VALUE.items() if c == cond_id}
    values = {
        lab: v
        for lab in labs
        if lab in kb.labs and (v := _day0(case, kb.labs[lab].name.lower())) is not None
    }
    for did in prescribing.value_adds(cond_id, values):
        if did in kb.drugs and not _gives(kb, meds, did):
            lab, op, limit = prescribing.BY_VALUE[(cond_id, did)]
            where.add(
                "treat-without-order",
                f"{lab} {values[lab]:g} ({op} {limit:g}) with no {kb.drugs[did].name} given",
            )


def _day0(case: dict[str, Any], name: str) -> float | None:
    return next(
        (
            _num(f.get("value"))
            for f in case.get("findings") or []
            if str(f.get("name", "")).lower() == name
            and f.get("value") is not None
            and not f.get("day")
        ),
        None,
    )


def _lint_prescribing(
    kb: KnowledgeBase,
    where: _Adds,
    case: dict[str, Any],
    cond_id: str,
    plan: Sequence[dict[str, Any]],
    history: str,
) -> None:
    """The plan's combinations, conditional and time-bound drugs, and the regular
    medicines held in an acute illness, against ``prescribing``'s tables."""
    from behaviorsft.sources import prescribing

    cond = kb.conditions.get(cond_id)
    if cond is None:
        return
    by_name = {d.name.lower(): d.id for d in kb.drugs.values()}
    plan_ids = [by_name[n] for m in plan if (n := str(m.get("name", "")).lower()) in by_name]
    for why in prescribing.overlaps(kb, cond, plan_ids):
        where.add("plan-overlap", why)
    demo = case.get("demographics") or {}
    age = _num(demo.get("age_years"))
    for did in plan_ids:
        req = prescribing.CONDITIONAL.get((cond_id, did))
        if req is not None and not req.met(age, history):
            where.add(
                "conditional-unmet",
                f"{kb.drugs[did].name} for {cond.name} needs {req.why}; the record has none "
                f"(age {age if age is not None else 'not given'})",
            )
    onset = next(
        (-float(e["day"]) for e in case.get("timeline") or [] if e.get("kind") == "symptom"),
        None,
    )
    if onset is not None:
        for did in plan_ids:
            if not prescribing.timely(cond_id, did, onset):
                where.add(
                    "drug-too-late",
                    f"{kb.drugs[did].name} given {onset:g} days into {cond.name} "
                    f"(within {prescribing.TIMELY[(cond_id, did)] * 24:g} h only)",
                )
    diagnosis = str(case.get("final_diagnosis") or "")
    home = [
        (str(m.get("name", "")), str(m.get("drug_class") or ""))
        for m in case.get("medications") or []
        if str(m.get("indication") or "") != diagnosis
    ]
    values = {
        lid: v
        for lid in ("creatinine", "potassium", *prescribing.VITALS)
        if lid in kb.labs and (v := _day0(case, kb.labs[lid].name.lower())) is not None
    }
    complaints = [
        str(f)[len("Reports ") :] for f in case.get("facts") or [] if str(f).startswith("Reports ")
    ]
    held = prescribing.held_names(str(f) for f in case.get("facts") or [])
    for name, why in prescribing.holds(kb, cond_id, home, values, demo.get("sex"), complaints):
        if prescribing.short_name(name) not in held:
            where.add("sick-day-continued", f"{name} continued in {why} with no hold recorded")


_DOCUMENTED = re.compile(r"^(?:Documented|Done and recorded): (?P<item>.+?)\.?$")


def _gives(kb: KnowledgeBase, meds: Sequence[dict[str, Any]], drug_id: str) -> bool:
    """Whether ``meds`` hold ``drug_id`` or a drug of its family or class."""
    from behaviorsft.build.lint import drug_family

    want = kb.drugs[drug_id]
    if any(w in want.drug_class.lower() for w in ANTIBACTERIAL):
        return _drug_matches(kb, meds, ANTIBACTERIAL)  # any antibacterial serves
    family = drug_family(want.drug_class)
    by_name = {d.name.lower(): d for d in kb.drugs.values()}
    for med in meds:
        drug = by_name.get(str(med.get("name", "")).lower())
        if drug is None:
            continue
        if drug.id == drug_id or drug.drug_class == want.drug_class:
            return True
        if family is not None and drug_family(drug.drug_class) == family:
            return True
    return False


def split_condition(item: str) -> tuple[str, str | None]:
    """``record_index.split_condition`` (imported late: record_index loads after lint)."""
    from behaviorsft.build.record_index import split_condition as split

    return split(item)


def _check_history_steps(
    where: _Adds, conv: dict[str, Any], case: dict[str, Any], cond: Any
) -> None:
    """The steps the history calls for (KB ``history_steps``) against the turns' plans."""
    from behaviorsft.sources.history import history_steps

    history = [
        str(f).removeprefix("History:").strip()
        for f in case.get("facts") or []
        if str(f).startswith("History")
    ]
    said = " ".join(str(t.get("text", "")) for t in conv.get("turns") or []).lower()
    for step in history_steps(cond, history):
        if step.lower() not in said:
            where.add(
                "history-step-missing", f"the history calls for '{step[:80]}'; no turn plans it"
            )


# "CT angiography on day 0, to look for a large-vessel occlusion ...", ending with no result
_DAY0_STUDY = re.compile(r"^[A-Z][^,:.]* on day 0, to look for [^:]*$")
# "guided by serum potassium rechecked within 4-6 h": a recheck the same day, in hours
_RECHECK = re.compile(
    r"\b(?P<lab>[a-z]+) (?:is |are )?rechecked within (?P<hours>\d+)(?:-\d+)? ?h\b", re.I
)


def _check_recheck(where: _Adds, turn: dict[str, Any], case: dict[str, Any]) -> None:
    """``recheck-not-done``: a turn promises a lab rechecked within hours, and the record's
    only later value of that lab is on a later day (or there is none)."""
    for m in _RECHECK.finditer(str(turn.get("text", ""))):
        if int(m["hours"]) >= 24:
            continue
        word = m["lab"].lower()
        days = [
            f.get("day") or 0
            for f in case.get("findings") or []
            if word in str(f.get("name", "")).lower().split()
        ]
        if len([d for d in days if d == 0]) < 2:  # no second value on the day
            where.add(
                "recheck-not-done",
                f"'{m[0]}' but the record shows no {word} later that day",
                turn.get("index"),
            )


def _check_reordered(
    where: _Adds, turn: dict[str, Any], plan: Sequence[dict[str, Any]], before: Sequence[str]
) -> None:
    """``reorder-given``: the plan ``turn`` orders a one-off dose of a drug an earlier turn
    (``before``) said given, without saying it was (severity.after_given)."""
    from behaviorsft.sources import severity

    text = str(turn.get("text", ""))
    for m in plan:
        name, freq = str(m.get("name", "")), str(m.get("frequency") or "")
        if not re.search(r"\bonce\b(?! daily)", freq) or not severity.given_before(name, before):
            continue
        said = next((p for p in text[6:].split("; ") if p.startswith(name)), None)
        if said is not None and severity.ALREADY_GIVEN not in said:
            where.add(
                "reorder-given",
                f"'{said[:70]}' ordered again after an earlier turn gave it",
                turn.get("index"),
            )


def lint_conversation(
    kb: KnowledgeBase, where: _Adds, conv: dict[str, Any], case: dict[str, Any] | None = None
) -> None:
    """Each reason the team cites against what the record showed before that turn; each
    drug care item recorded as done ("VTE prophylaxis") against the medicines given."""
    cond = kb.conditions.get(_kb_condition(case) or "") if case is not None else None
    seen: list[tuple[str, list[list[Any]]]] = []
    from behaviorsft.sources import prescribing

    taken = [
        (str(m.get("name", "")), str(m.get("drug_class") or ""))
        for m in (case or {}).get("medications") or []
    ]
    diagnosis = str((case or {}).get("final_diagnosis") or "")
    home = [
        (n, c)
        for m in (case or {}).get("medications") or []
        if str(m.get("indication") or "") != diagnosis
        for n, c in [(str(m.get("name", "")), str(m.get("drug_class") or ""))]
    ]
    history = _history(case) if case is not None else ""
    given = [
        (str(m.get("name", "")), str(m.get("route") or ""))
        for m in (case or {}).get("medications") or []
    ]
    gate = prescribing.GATED.get(cond.id) if cond is not None else None
    documented = ""
    if gate is not None and case is not None:
        documented = " ".join(
            [_history(case)]
            + [
                str(f.get("value_text") or "")
                for f in case.get("findings") or []
                if f.get("kind") == "exam" and not re.match(r"no\b", str(f.get("value_text")), re.I)
            ]
        )
    if case is not None and cond is not None and cond.history_steps:
        _check_history_steps(where, conv, case, cond)
    target: str | None = None  # the first SpO2 target said
    from behaviorsft.build.event_time import ALTERED_MENTAL_STATE, AT_TRIAGE

    altered = case is not None and any(
        str(f).startswith("Reports ") and ALTERED_MENTAL_STATE.search(str(f))
        for f in case.get("facts") or []
    )
    studied = False  # a study requested in an earlier turn
    for t in conv.get("turns") or []:
        text = str(t.get("text", ""))
        if altered:
            named = [
                str(r[0]).lower() for a in t.get("attachments") or [] for r in a.get("rows") or []
            ]
            if studied and any(n.startswith(AT_TRIAGE) for n in named):
                where.add(
                    "glucose-after-study",
                    "altered mental state: the capillary glucose is first shown after a study "
                    "was requested",
                    t.get("index"),
                )
            if any(n.startswith(AT_TRIAGE) for n in named):
                altered = False  # shown: nothing more to check
            studied = studied or bool(_STUDY_ASKED.search(text))
        for said in TARGET_SAID.finditer(text) if "%" in text else ():
            if target is None:
                target = said["range"]
            elif said["range"] != target:
                where.add(
                    "target-inconsistent",
                    f"SpO2 target {said['range']}% here, {target}% in an earlier turn",
                    t.get("index"),
                )
        if case is not None and cond is not None and " hold " in f" {text}":
            named = [
                t for t in prescribing.hold_terms(text) if not prescribing.taken_term(t, taken)
            ]
            if named:
                where.add(
                    "hold-not-taken",
                    f"'hold ...' names {', '.join(named)} but the patient takes none of them",
                    t.get("index"),
                )
        if case is not None and cond is not None and re.search(r"continu|stop |diuretic", text):
            clause = prescribing.untaken(text, [f"{n} {c}" for n, c in home])
            if clause is not None:
                where.add(
                    "hold-not-taken",
                    f"'{clause}' but the patient takes no such drug",
                    t.get("index"),
                )
        if _DAY0_STUDY.match(text):
            where.add(
                "planned-result-missing",
                f"'{text[:90]}' but no result of it is given",
                t.get("index"),
            )
        if case is not None and " within " in text:
            _check_recheck(where, t, case)
        if case is not None and "treat hyperkal" in text.lower():
            lowering = [n for n, c in taken if prescribing.LOWERS_POTASSIUM.search(f"{n} {c}")]
            if not lowering:
                where.add(
                    "treat-without-order",
                    "'treat hyperkalaemia' but no potassium-lowering drug is given",
                    t.get("index"),
                )
        if case is not None and _STOP_REDUCE.search(text):
            for clause in prescribing.named_untaken(text, [f"{n} {c}" for n, c in taken]):
                where.add(
                    "plan-untaken-drug",
                    f"'{clause}' but the patient takes no such drug",
                    t.get("index"),
                )
        wrong = prescribing.history_step_wrong(cond.id, text, history) if cond else None
        if wrong is not None:
            where.add("step-against-history", wrong, t.get("index"))
        if cond is not None and case is not None and text.startswith("Plan: "):
            plan = [m for m in (case.get("medications") or []) if m.get("indication") == diagnosis]
            _check_reordered(where, t, plan, [x for x, _ in seen])
            for gap in prescribing.regimen_gaps(kb, cond.id, plan, text):
                where.add("regimen-incomplete", gap, t.get("index"))
        if (
            gate is not None
            and text.startswith("Day 2 ward round")
            and re.search(gate.steps, text.split("Plan:", 1)[-1], re.I)
            and not re.search(gate.indication, documented, re.I)
        ):
            where.add(
                "step-without-indication",
                f"'{text[:90]}' with no documented indication ({gate.indication[:40]}...)",
                t.get("index"),
            )
        m = _DOCUMENTED.match(text)
        if m is not None and case is not None and not prescribing.care_given(m["item"], given):
            where.add(
                "care-without-drug",
                f"'{m['item'][:80]}' recorded as done but no such drug was given by that route",
                t.get("index"),
            )
        if m is not None and cond is not None and case is not None:
            for item in cond.standard_of_care:
                if split_condition(item.item)[0] == m["item"] and not prescribing.care_applies(
                    item.item, (f"{n} {c}" for n, c in taken)
                ):
                    where.add(
                        "plan-untaken-drug",
                        f"'{m['item']}' recorded as done, but it is for '{item.item}' and the "
                        "patient takes no such drug",
                        t.get("index"),
                    )
                if item.item != m["item"] or item.kind != "drug" or item.ref not in kb.drugs:
                    continue
                clause = split_condition(item.item)[1]
                if clause is not None and clause.lower() != "unless contraindicated":
                    continue  # "for people on insulin": whether it applies is another check
                if not _gives(kb, case.get("medications") or [], item.ref):
                    where.add(
                        "plan-missing-class",
                        f"'{item.item}' recorded as done but no {kb.drugs[item.ref].drug_class} "
                        "is given",
                        t.get("index"),
                    )
        found = cited_reasons(text)
        if found:
            shown = shown_record(kb, seen)
            for dx, verb, reason in found:
                # a report's finding cited in its own words is shown as a whole
                verbatim = any(reason in t for t, _ in seen)
                _, bad = ([], []) if verbatim else supported_clauses(kb, shown, reason)
                if bad:
                    where.add(
                        "reason-not-shown",
                        f"'{dx} {verb} given {reason}': not shown before this turn: "
                        + "; ".join(bad),
                        t.get("index"),
                    )
        rows = [r for a in t.get("attachments") or [] for r in a.get("rows") or []]
        seen.append((text, rows))
