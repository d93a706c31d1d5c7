"""Turns that read like a ward (docs/building.md, "Turns that read like a ward (round 4)").

Helpers the renderer (``conversation.py``) and case synthesis (``sources/synthetic.py``)
use, and that ``lint_record.py`` uses to find the text that does not fit:

* the doctor's question about habits and recent events asks about what the patient has
  to tell (``exposure_question``), chosen from the items' kinds, never one fixed question;
* an examination finding does not contradict the same record's vital signs ("slow pulse"
  with a heart rate of 80: ``exam_vitals_conflict``);
* a first dose is stated once: the drug named by the emergency department nurse is one no
  severity statement already gave (``first_dose_index``);
* the overnight turn names where the patient is (``icu_planned``), and a consultant does
  not advise what is already done (``advice_done``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

# ----------------------------------------------------------------------------- exposures

# Kind of a habit/exposure/recent-event history item, and the question that asks for it.
EXPOSURE_KINDS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "habit",
        re.compile(r"smoking\b|alcohol|cocaine|amphetamine|injection drug", re.I),
        "Do you smoke, drink alcohol or use any drugs?",
    ),
    (
        "recent",
        re.compile(
            r"^recent\b(?! sexual)|close contact|travel|postoperative|infection|influenza|"
            r"leg in a cast|intercurrent",
            re.I,
        ),
        "Has anything happened recently: an illness, an operation, travel, contact with "
        "someone ill or a change in your medicines?",
    ),
    (
        "sexual",
        re.compile(r"sexual", re.I),
        "Any new sexual partner or recent sexual contact?",
    ),
    (  # a method answers "what contraception?", not "any new partner?"
        "contraception",
        re.compile(r"spermicide|contracept|diaphragm", re.I),
        "What do you use for contraception?",
    ),
    (
        "trigger",
        re.compile(
            r"missed|omission|non-adherence|abrupt|diet|unusual exercise|air pollution|"
            r"smoke exposure|laxative|stress dosing|pump failure|long lie",
            re.I,
        ),
        "Did anything set this off: a missed or stopped medicine, something you ate or did?",
    ),
    (
        "lifestyle",
        re.compile(r"inactivity|weight loss", re.I),
        "How active are you, and has your weight changed lately?",
    ),
    (
        "vaccination",
        re.compile(r"vaccinat", re.I),
        "Are your vaccinations up to date?",
    ),
    (
        "living",
        re.compile(r"residen|homeless|incarceration", re.I),
        "Where are you living at the moment, and how do you manage there?",
    ),
    (  # where the patient comes from (not where they live now)
        "origin",
        re.compile(r"birth in", re.I),
        "Where were you born?",
    ),
    (  # an obstetric history item: its own question, not "any medical conditions?" (h5)
        "obstetric",
        re.compile(r"^multiparity$", re.I),
        "Have you had any children?",
    ),
    ("pregnancy", re.compile(r"^pregnancy$", re.I), "Could you be pregnant?"),
    (  # what the patient has drunk: not "where are you living?" (h3-collateral)
        "intake",
        re.compile(r"access to water|fluid intake", re.I),
        "Have you been eating and drinking normally?",
    ),
)
# What an answer to each kind's question talks about (an answer that does not, answers
# another question: "Where are you living?" - "I couldn't get enough to drink.").
ANSWERS: dict[str, re.Pattern[str]] = {
    "habit": re.compile(r"\b(?:smok\w*|drink\w*|alcohol|beer|cocaine|inject\w*|drugs?)\b", re.I),
    "sexual": re.compile(r"\bsexual\b|\bpartner\b", re.I),
    "contraception": re.compile(r"\bspermicide\b|\bcontracept\w*|\bdiaphragm\b", re.I),
    "vaccination": re.compile(r"\bvaccin\w*", re.I),
    "living": re.compile(r"\bliv(?:e|es|ing)\b|\bhome\b|\bhomeless\b|\bprison\b", re.I),
    "origin": re.compile(r"\bborn\b", re.I),
    "intake": re.compile(r"\b(?:drink\w*|eat\w*|meals?|fluids?|water)\b", re.I),
    "obstetric": re.compile(r"\bchildren\b|\bpregnancies\b", re.I),
    "pregnancy": re.compile(r"\bpregnant\b", re.I),
}
# Asked when no item has a known kind.
EXPOSURE_FALLBACK = "Anything about your habits, your home or recent events we should know?"
# The one fixed question of round 4 (asks every kind at once).
OLD_EXPOSURE_QUESTION = "Do you smoke, drink or use drugs, and how are things at home?"


def exposure_kinds(items: Iterable[str]) -> list[str]:
    """The kinds of ``items`` (history items ``history.is_exposure`` accepts), in the fixed
    order of ``EXPOSURE_KINDS``."""
    items = list(items)
    return [k for k, p, _ in EXPOSURE_KINDS if any(p.search(i) for i in items)]


def exposure_question(items: Iterable[str]) -> str:
    """The question that asks for ``items``: one sentence per kind they hold."""
    return _exposure_question(tuple(items))


@lru_cache(maxsize=4096)
def _exposure_question(items: tuple[str, ...]) -> str:
    asks = {k: q for k, _, q in EXPOSURE_KINDS}
    kinds = exposure_kinds(items)
    return " ".join(asks[k] for k in kinds) if kinds else EXPOSURE_FALLBACK


def asked_kinds(text: str) -> list[str] | None:
    """The kinds a doctor's turn asks about (None: not an exposure question)."""
    if OLD_EXPOSURE_QUESTION in text:
        return [k for k, _, _ in EXPOSURE_KINDS]
    got = [k for k, _, q in EXPOSURE_KINDS if q in text]
    if not got and EXPOSURE_FALLBACK not in text:  # asked of a relative (sources/collateral)
        from behaviorsft.sources.collateral import asked_of_relative

        of = asked_of_relative(text)
        if of is not None:
            return [k for k, _, _ in EXPOSURE_KINDS if k in of]
    return got or ([] if EXPOSURE_FALLBACK in text else None)


def unanswered(kinds: Iterable[str], answer: str) -> list[str]:
    """The kinds asked (``asked_kinds``) that ``answer`` says nothing about (``ANSWERS``)."""
    return [k for k in kinds if k in ANSWERS and not ANSWERS[k].search(answer)]


# ----------------------------------------------------------------------------- exam

# A finding documented as absent ("no tophi"); said apart from the present ones, since
# "no tophi and overlying erythema" reads as denying the erythema too.
_ABSENT = re.compile(r"^no\b", re.I)
# A finding worded as what the patient does ("appears unwell", "talks in phrases"), which
# cannot follow "Examination shows": said with its subject.
_DOES = re.compile(r"^(?:appears|looks|talks|is)\b", re.I)


_INNER_NEGATION = re.compile(r"\b(?:no|not|without)\b", re.I)


def exam_phrase(findings: Sequence[str]) -> str:
    """The examination's findings as one phrase: the present ones joined ("A, B and C"),
    then a finding worded as what the patient does, with its subject ("; the patient
    appears unwell"), then the absent ones, each with its own "no" ("; no D, no E")."""

    def join(items: list[str]) -> str:
        if len(items) == 1:
            return items[0]
        # a finding with its own negation or punctuation ("erythema without exudate",
        # "euvolaemic (moist mucosa, no oedema)") is set apart, so that "and" never follows
        # a negation: "without exudate and scattered rhonchi" reads as neither; so is one
        # with its own "and" ("oriented to time and place and agitation and ...")
        if any(_INNER_NEGATION.search(f) or re.search(r"[,;()]", f) for f in items[:-1]) or any(
            _AND.search(f) for f in items
        ):
            return "; ".join(items)
        return ", ".join(items[:-1]) + " and " + items[-1]

    present = [f for f in findings if not _ABSENT.match(f) and not _DOES.match(f)]
    clauses = [join(present)] if present else []
    clauses += [f"the patient {f}" for f in findings if _DOES.match(f)]
    absent = [f for f in findings if _ABSENT.match(f)]
    if absent:
        clauses.append(", ".join(absent))
    return "; ".join(clauses)


_AND = re.compile(r"\band\b")
# Two "and"s in one clause of an examination ("oriented to time and place and agitation
# and hyperreflexia"): findings run together.
_AND_CHAIN = re.compile(r"[^;,.:]*\band\b[^;,.:]*\band\b[^;,.:]*")


def and_chain(text: str) -> str | None:
    """The clause of an examination turn ``text`` that runs findings together with two
    "and"s ("tenderness and oedema and interdigital fissuring"), or None."""
    body = text.split(":", 1)[1] if ":" in text else re.sub(r"^Examination shows", "", text)
    m = _AND_CHAIN.search(body)
    return m.group(0).strip() if m else None


def negation_scope(text: str, present: Iterable[str]) -> str | None:
    """A present finding of ``present`` that ``text`` joins to a negated one ("no tophi and
    overlying erythema"), or None."""
    for p in present:
        if _ABSENT.match(p) or not p:
            continue
        if re.search(rf"\bno\b[^;.:()]*?\b(?:and|or) {re.escape(p)}\b", text):
            return p
    return None


def exam_subject_missing(text: str) -> str | None:
    """The finding after "Examination shows" / "On examination:" worded as what the patient
    does ("Examination shows appears unwell"), or None."""
    m = re.match(r"(?:Examination shows|On examination:)\s+(\w+)", text)
    return m.group(1) if m is not None and _DOES.match(m.group(1)) else None


# An examination finding that states a vital sign, and when the vitals contradict it
# (vital id, the test that the value contradicts the finding).
_NOT_NEGATED = r"(?<!no )(?<!without )(?<!orthostatic )(?<!postural )"
EXAM_VITALS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(_NOT_NEGATED + r"\b(?:slow pulse|bradycardi\w*)", re.I), "heart_rate", "ge60"),
    (re.compile(_NOT_NEGATED + r"\b(?:tachycardi\w*|rapid pulse)", re.I), "heart_rate", "le100"),
    (re.compile(_NOT_NEGATED + r"\bhypotensi\w*", re.I), "sbp", "ge100"),
    (re.compile(_NOT_NEGATED + r"\b(?:febrile|fever|pyrexi\w*)", re.I), "temperature", "lt37.5"),
    (re.compile(r"\bafebrile\b", re.I), "temperature", "ge38"),
    (re.compile(_NOT_NEGATED + r"\btachypno\w*", re.I), "respiratory_rate", "le20"),
    (re.compile(_NOT_NEGATED + r"\bhypox\w*", re.I), "spo2", "ge95"),
    # orthostatic testing is for a patient normotensive lying down and not tachycardic:
    # none is done at a systolic below 90 or a heart rate above 100 (round 10: 'postural
    # hypotension' at 88/53; 'no orthostatic hypotension' at a heart rate of 161)
    (re.compile(r"(?<!no )\b(?:postural|orthostatic) (?:hypotension|drop)", re.I), "sbp", "lt90"),
    (re.compile(r"\bno (?:postural|orthostatic) hypotension", re.I), "sbp", "lt90"),
    (re.compile(r"\bno (?:postural|orthostatic) hypotension", re.I), "heart_rate", "gt100"),
)
_SAID = {"heart_rate": "heart rate", "sbp": "systolic BP", "temperature": "temperature"}


def _contradicts(test: str, value: float) -> bool:
    op, bound = test[:2], float(test[2:])
    checks = {"ge": value >= bound, "le": value <= bound, "lt": value < bound}
    return checks.get(op, value > bound)  # else "gt"


def exam_vitals_conflict(text: str, vitals: Mapping[str, float]) -> str | None:
    """Why examination finding ``text`` contradicts ``vitals`` (id -> value), or None."""
    for pattern, vid, test in EXAM_VITALS:
        m = pattern.search(text)
        if m is None or vid not in vitals:
            continue
        if _contradicts(test, vitals[vid]):
            said = _SAID.get(vid, vid.replace("_", " "))
            return f"'{m.group(0)}' with {said} {vitals[vid]:g}"
    return None


# Vital finding names (labs.yaml) -> ids, for records read back from JSON.
VITAL_IDS = {
    "body temperature": "temperature",
    "heart rate": "heart_rate",
    "respiratory rate": "respiratory_rate",
    "systolic blood pressure": "sbp",
    "diastolic blood pressure": "dbp",
    "oxygen saturation (pulse oximetry)": "spo2",
}


# ----------------------------------------------------------------------------- first dose


def _words(name: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", name.lower()) if len(w) >= 5]


def named_in(name: str, texts: Iterable[str]) -> bool:
    """Whether a drug ``name`` ("Albuterol (salbutamol)") is named in any of ``texts``."""
    said = " ".join(texts).lower()
    return any(re.search(rf"\b{w}\b", said) for w in _words(name))


def first_dose_index(names: Sequence[str], statements: Iterable[str]) -> int | None:
    """The plan drug whose first dose the nurse reports: the first that no severity
    statement already says was given (None: all were)."""
    return _first_dose_index(tuple(names), tuple(statements))


@lru_cache(maxsize=4096)
def _first_dose_index(names: tuple[str, ...], said: tuple[str, ...]) -> int | None:
    return next((i for i, n in enumerate(names) if not named_in(n, said)), None)


# ----------------------------------------------------------------------------- care level

_ICU = r"(?:ICU|intensive care(?: unit)?|critical care)"
ICU_ADMISSION = re.compile(
    rf"\b(?:{_ICU} admission|admi(?:t|tted|ssion) to (?:an? |the )?{_ICU}|"
    rf"transfer(?:red)? to (?:an? |the )?{_ICU}|in {_ICU})\b",
    re.I,
)
_CONDITIONAL = re.compile(r"\b(?:if|when|unless|consider|referral)\b", re.I)
WARD_OVERNIGHT = re.compile(
    r"\b(?:stable overnight on the ward|overnight observations were|overnight on the ward)\b",
    re.I,
)
# The ward nurse's overnight turn: what happened (no "observations were stable" with none
# of them shown; wording.FILLER), in words no care item uses (the audit's record match:
# "every 4 hours" or "early warning" quote other conditions' items offered as wrong options)
WARD_NIGHT = (
    "Overnight on the ward: nothing that needed a doctor.",
    "Quiet overnight on the ward: no call to the doctor.",
)


def icu_planned(texts: Iterable[str]) -> bool:
    """Whether any clause of ``texts`` (plan, severity statements) admits to intensive
    care unconditionally ("ICU admission with arterial BP monitoring", not "ICU referral
    for drowsiness")."""
    return _icu_planned(tuple(texts))


@lru_cache(maxsize=4096)
def _icu_planned(texts: tuple[str, ...]) -> bool:
    for text in texts:
        for clause in re.split(r"[;:]|\.\s", text):
            if ICU_ADMISSION.search(clause) and not _CONDITIONAL.search(clause):
                return True
    return False


_ADVICE_ICU = re.compile(rf"\b(?:admi(?:t|ssion) to {_ICU}|{_ICU} (?:admission|referral))", re.I)
_ADVICE_ANTICOAG = re.compile(r"\b(?:start|begin|initiate|commence)\b.*\banticoagula", re.I)
_IMAGING = (
    ("ultrasound", re.compile(r"\bultrasound|\bUS\b|sonograph|duplex", re.I)),
    ("ct", re.compile(r"\bCT\b|computed tomograph", re.I)),
    ("mri", re.compile(r"\bMRI?\b|magnetic resonance", re.I)),
    ("echo", re.compile(r"\bechocardiogra\w*|\becho\b", re.I)),
)
_ASKS = re.compile(r"^(?:(?:urgent|early|bedside|point-of-care|formal)\s+)*(?P<rest>.*)$", re.I)
_ANTICOAG = re.compile(
    r"anticoagula|apixaban|rivaroxaban|edoxaban|dabigatran|warfarin|heparin|enoxaparin|"
    r"dalteparin|fondaparinux",
    re.I,
)


def advice_done(advice: str, *, icu: bool, plan_drugs: str, studies: Iterable[str]) -> str | None:
    """What in the record already does ``advice`` (None: not done): intensive care for a
    patient already there, starting anticoagulation with an anticoagulant prescribed, a
    study of the modality already reported."""
    return _advice_done(advice, icu, plan_drugs, tuple(studies))


@lru_cache(maxsize=8192)
def _advice_done(advice: str, icu: bool, plan_drugs: str, studies: tuple[str, ...]) -> str | None:
    if icu and _ADVICE_ICU.search(advice):
        return "the patient is already in intensive care"
    if _ADVICE_ANTICOAG.search(advice) and _ANTICOAG.search(plan_drugs):
        return "an anticoagulant is already prescribed"
    for kind, pattern in _IMAGING:
        # advice to do the study ("ultrasound for an abscess if ..."), not one citing it
        asks = _ASKS.match(advice)
        if asks and pattern.match(asks["rest"]) and any(pattern.search(s) for s in studies):
            if re.search(r"\b(?:repeat|follow-up|serial)\b", advice, re.I):
                continue
            return f"the {kind} study is already reported"
    return None
