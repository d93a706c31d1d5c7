"""Turns and excerpts that agree with the record (docs/building.md, "Turns that agree with
the record").

Helpers the renderer (``conversation.py``) and the task generators use so that what a
turn or an excerpt says fits the record it sits in, and that ``lint_record.py`` uses to
find the text that does not:

* a reason cited against a differential is one the record supports: an absence ("no chest
  pain") is never cited where the patient reports it, a finding "on a repeat sample" only
  once a repeat is shown, a finding never where the record only denies it, and an absence
  in the KB's word is said in the report's ("without infiltrate" -> "without
  consolidation");
* a step that happens after discharge ("recheck renal function 3 months after the
  episode") or runs for months is never listed as done in an admission, nor due in it;
* a step about an event (an operation, the first dose) is said only where the event
  fits: no "within 24 h of cholecystectomy" without an operation, no "first dose" once
  treatment has started, no site-of-care decision after admission;
* a consultation is not "not done" (nor outstanding) where a consultant of that specialty
  reviewed the patient;
* a consultant gives advice of their own specialty (renal replacement: nephrology).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

from behaviorsft.sources.kb import Condition, KnowledgeBase

# ----------------------------------------------------------------------------- timing

# A step that takes place after the patient has gone home.
AFTER_DISCHARGE = re.compile(
    r"\b\d+(?:-\d+)?\s*(?:weeks?|months?)\s+after\b|\bafter discharge\b|\bof discharge\b|"
    r"\boutpatient\b|\breassess at \d+\s*months?\b|\bmonthly\b",
    re.I,
)
# A course that runs for months: started in an admission, never done by its end.
LONG_COURSE = re.compile(r"\b(?:for|of) (?:at least )?\d+(?:-\d+)?\s*months?\b", re.I)


# A step done when the patient leaves ("autoinjector prescribed ... at discharge", "discharge
# on an ICS-containing controller"): still due, never done, before the record's discharge.
AT_DISCHARGE = re.compile(r"\b(?:at|on) discharge\b|^discharge on\b", re.I)
DISCHARGED = re.compile(r"\bdischarged\b|\bgoing home (?:today|now)\b|\bsent home\b", re.I)
# How ``unproved_claim`` begins its answer for such a claim (the linter's
# ``discharge-item-early``).
EARLY = "done at discharge"


def early_discharge_item(item: str, texts: Iterable[str]) -> bool:
    """Whether ``item`` is done at discharge and the record ``texts`` show none yet."""
    return AT_DISCHARGE.search(item) is not None and not any(DISCHARGED.search(t) for t in texts)


def after_discharge(step: str) -> bool:
    """Whether ``step`` happens after discharge (no admission can have it done or due)."""
    return AFTER_DISCHARGE.search(step) is not None


def done_by_discharge(step: str) -> bool:
    """Whether ``step`` can be done by the end of an admission (not after discharge, not a
    course: ``course``)."""
    return not after_discharge(step) and LONG_COURSE.search(step) is None and not course(step)


# A check claimed after each of an intervention ("sodium rechecked after each hypertonic
# bolus"): done only where a turn shows that check at its time after the intervention.
AFTER_EACH = re.compile(r"\b(?P<lab>[a-z]+) rechecked after each\b[^;,.]*?\bbolus\b", re.I)


def timed_check_shown(item: str, texts: Iterable[str]) -> bool:
    """Whether the record ``texts`` back a done-claim ``item`` that is time-qualified
    ("sodium rechecked after each hypertonic bolus"): a turn gives that recheck, minutes
    after the bolus, with its value. True for an item without such a qualifier."""
    m = AFTER_EACH.search(item)
    if m is None:
        return True
    shown = re.compile(rf"\b{m['lab']} rechecked \d+ minutes after (?:the|each) bolus: \d", re.I)
    return any(shown.search(t) for t in texts)


# Advice that holds only in a severity state, and the record words that show the state
# (IDSA/SHEA 2017: fulminant CDI is hypotension or shock, ileus or megacolon; the
# recurrence pathways need a previous episode).
SEVERITY_STATES: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (
        re.compile(r"\bfulminant\b", re.I),
        re.compile(r"\bhypotens\w*|\bshock\b|\bileus\b|\bmegacolon\b|\bvasopressor", re.I),
    ),
    (
        re.compile(r"\bfor a first recurrence\b|\bafter a second or later recurrence\b", re.I),
        re.compile(r"\bprevious (?:CDI|C\. difficile)\b|\brecurren\w*\b", re.I),
    ),
)
HYPOTENSION_SBP = 90  # mmHg


def state_record(history: Iterable[str], signs: Iterable[str], sbp: float | None) -> str:
    """What shows a severity state in a record: its history items, examination and imaging
    findings, and 'hypotension' for a day-0 systolic below 90 mmHg."""
    low = sbp is not None and sbp < HYPOTENSION_SBP
    return " ".join([*history, *signs, *(["hypotension"] if low else [])])


def state_shown(step: str, record: str) -> bool:
    """Whether advice conditional on a severity state ('surgical consultation for
    fulminant colitis') fits ``record`` (``state_record``): the record shows that state.
    True for advice that names none."""
    return all(shown.search(record) for said, shown in SEVERITY_STATES if said.search(step))


# A claim about an electrolyte given IV ("IV potassium rate documented and limited"): done
# only where a turn other than a checklist line gives that electrolyte IV.
IV_CLAIM = re.compile(r"\bIV (?P<drug>potassium|magnesium|phosphate|calcium)\b", re.I)
_CHECKLIST = re.compile(r"^(?:Documented|Done and recorded):", re.I)


def route_claim_shown(item: str, texts: Iterable[str]) -> bool:
    """Whether the record ``texts`` back a done-claim ``item`` about an electrolyte given
    IV: a plan or statement gives it IV (not only by mouth). True for other items."""
    m = IV_CLAIM.search(item)
    if m is None:
        return True
    drug = m["drug"]
    given = re.compile(rf"\b{drug}\w*\b[^;.]*\bIV\b|\bIV {drug}", re.I)
    return any(given.search(t) for t in texts if not _CHECKLIST.match(t))


# A claim of several samples ("at least 3 sets of blood cultures"): done only where the record
# shows that many day-0 results of the test (31-000012, 37-000206: one set shown).
COUNT_CLAIM = re.compile(
    r"\b(?:at least )?(?P<n>2|3|two|three) sets of (?P<test>blood cultures?)\b", re.I
)
_NUMBERS = {"2": 2, "3": 3, "two": 2, "three": 3}


# A repeat claimed done ("repeat blood cultures every 24-48 h until bacteraemia clears"):
# the record shows a sample beyond the first one's pending row and its result.
REPEAT_CLAIM = re.compile(r"^repeat (?P<test>blood cultures?)\b", re.I)


def count_claim_shown(item: str, day0_names: Iterable[str], all_names: Iterable[str] = ()) -> bool:
    """Whether a done-claim ``item`` naming a number of samples ("at least 3 sets of blood
    cultures") has that many day-0 results among ``day0_names`` (the record's finding
    names), and a repeat culture ("repeat blood cultures every 24-48 h") a third row of
    the test among ``all_names`` (beyond the first sample's pending row and result). True
    for an item naming neither."""
    m = COUNT_CLAIM.search(item)
    if m is not None:
        test = m["test"].lower().rstrip("s")
        shown = sum(1 for n in day0_names if n.lower().startswith(test))
        return shown >= _NUMBERS[m["n"].lower()]
    r = REPEAT_CLAIM.search(item)
    if r is not None:
        test = r["test"].lower().rstrip("s")
        return sum(1 for n in all_names if n.lower().startswith(test)) >= 3
    return True


# ----------------------------------------------------------------------------- events

# A step presupposing an operation: "within 24 h of cholecystectomy", "after source control".
AFTER_OPERATION = re.compile(
    r"\b(?:within|after)\b[^;]*?\b(?:of|after)\s+(?:cholecystectomy|surgery|the operation)\b|"
    r"\bafter source control\b",
    re.I,
)
OPERATION_DONE = re.compile(
    r"\b(cholecystectomy|laparotomy|laparoscopy|operation|surgery|source control)\b[^.;]*"
    r"\b(done|performed|completed|carried out)\b",
    re.I,
)
# Steps of the first hours: said on a later day they are out of order.
FIRST_HOURS = re.compile(
    r"\b(?:give|administer) the first (?:\w+ )?dose\b|\bonce the diagnosis is made\b|"
    r"\bsite of care\b|\bsearch for (?:and treat )?the precipitant\b|"
    r"\bconsider admission\b|^admit if\b|^outpatient management\b",
    re.I,
)


def step_fits(step: str, record: Iterable[str], *, treatment_started: bool) -> bool:
    """Whether a plan step said after admission fits the record's ``record`` texts: an
    operation it presupposes is in the record, and it is no step of the first hours (a
    first dose, deciding whether to admit) once treatment has started."""
    if treatment_started and FIRST_HOURS.search(step):
        return False
    if AFTER_OPERATION.search(step):
        return any(OPERATION_DONE.search(t) for t in record)
    return True


# A plan action for while a study is awaited, and one for a therapy the patient may take.
AWAITING = re.compile(r"\bwhile awaiting (?:imaging|the scan|the study)\b", re.I)
IF_TAKING = re.compile(r"^(?:continue )?(?P<what>.+?)\b[^;]*?\bif already taking it\b", re.I)


def action_fits(action: str, *, study_reported: bool, medicines: str) -> bool:
    """Whether a plan ``action`` fits the record when the plan is made: nothing "while
    awaiting imaging" once the study is reported, no "continue X if already taking it"
    unless a medicine of the patient's (``medicines``: names and classes) is X."""
    if study_reported and AWAITING.search(action):
        return False
    if FIRST_HOURS.search(action):
        return False  # whether to admit: the record's patient is admitted
    m = IF_TAKING.search(action)
    if m is not None:
        words = {w for w in _TOKEN.findall(m["what"].lower()) if len(w) >= 5} - {"therapy"}
        return bool(words) and any(w in medicines.lower() for w in words)
    return True


# ----------------------------------------------------------------------------- consultants

# Advice that belongs to another specialty than the condition's system.
ADVICE_SPECIALTY: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(renal replacement|dialysis|haemofiltration)\b", re.I), "nephrology"),
    # the duration of anticoagulation for a venous thrombosis: haematology's
    (re.compile(r"\banticoagula\w+ for at least 3 months\b", re.I), "haematology"),
)


# "surgical consultation for early cholecystectomy": a referral for an operation, which the
# surgeon reviewing the patient gives as their own advice ("early cholecystectomy").
SURGICAL_REFERRAL = re.compile(
    r"^(?:urgent |early )?surgical (?:consultation|review|referral) for (?P<what>.*\b(?:"
    r"cholecystectomy|laparotomy|laparoscop\w*|colectomy|resection|surgical repair)\b.*)$",
    re.I,
)


def surgeon_advice(advice: str) -> str | None:
    """What the surgeon says of a referral to surgery for an operation, or None."""
    m = SURGICAL_REFERRAL.match(advice)
    return m["what"] if m else None


def advice_specialty(advice: str) -> str | None:
    """The specialty whose decision ``advice`` is, where it is not the system's own."""
    return next((s for p, s in ADVICE_SPECIALTY if p.search(advice)), None)


def consultant_advice_fits(advice: str) -> bool:
    """Whether a consultant reviewing an admitted patient may give ``advice``: not a
    decision of the first hours (whether to admit, a first dose)."""
    return FIRST_HOURS.search(advice) is None


# A consultation an item asks for, by the words naming its specialty, and the role word
# of a consultant of that specialty.
CONSULTATION = re.compile(r"\b(consultation|consult|referral|review|refer)\b", re.I)
SPECIALTY_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bsurg(?:ical|eon|ery)\b", re.I), "surg"),
    (re.compile(r"\bnephrolog\w*|\brenal team\b", re.I), "nephrology"),
    (re.compile(r"\bcardiolog\w*", re.I), "cardiology"),
    (re.compile(r"\bneurolog\w*", re.I), "neurology"),
    (re.compile(r"\bgastroenterolog\w*|\bhepatolog\w*", re.I), "gastroenterology"),
    (re.compile(r"\binfectious diseases?\b|\bID (?:team|consult)", re.I), "infectious"),
    (re.compile(r"\bendocrin\w*|\bdiabetes specialist\b", re.I), "endocrinology"),
)


def consultation_of(item: str) -> str | None:
    """The role word of the consultant ``item`` asks for ("surgical consultation" ->
    "surg"), or None when it asks for no consultation."""
    if not CONSULTATION.search(item):
        return None
    return next((w for p, w in SPECIALTY_WORDS if p.search(item)), None)


def consulted(item: str, roles: Iterable[str]) -> bool:
    """Whether a consultant ``item`` asks for is among the record's speakers ``roles``."""
    word = consultation_of(item)
    if word is None:
        return False
    return any("consultant" in r.lower() and word in r.lower() for r in roles)


# ----------------------------------------------------------------------------- reasons

_NEGATIVE = re.compile(r"^(?:no|without|not)\s+", re.I)
_REPEAT = re.compile(r"\brepeat\b", re.I)
# The KB's word for a finding, and the words a report uses for it.
SYNONYMS: dict[str, str] = {"infiltrate": "consolidation", "infiltrates": "consolidation"}
_TOKEN = re.compile(r"[a-z0-9]+")


def _toks(text: str) -> set[str]:
    return set(_TOKEN.findall(text.lower()))


_NEGATORS = frozenset(["no", "not", "never", "without", "denies", "absent", "nil", "negative"])
_BREAKS = frozenset(["but", "with", "and", "while", "although", "which", "than"])
_LOOKBACK = 6


def mentions(sentences: Iterable[str], clause: str) -> list[bool]:
    """For each statement of the record naming ``clause``'s finding (its words, in one
    sentence that is no question), whether that mention denies it: a negation ("no",
    "never", "without") within a few words before it, in the same part of the sentence
    ("hyperinflation ... and no consolidation" denies consolidation, not hyperinflation;
    "I've never been told I have diabetes" denies diabetes)."""
    return _mentions(_statements(sentences), clause)


_Statement = tuple[tuple[str, ...], frozenset[str]]


def _statements(sentences: Iterable[str]) -> list[_Statement]:
    """The words of each sentence that is no question (tuple and set)."""
    out = []
    for s in sentences:
        words = _statement(s)
        if words is not None:
            out.append(words)
    return out


@lru_cache(maxsize=1 << 12)  # one record's sentences, many times each
def _statement(sentence: str) -> _Statement | None:
    """(cached: a record's sentences are tokenised for every reason checked against it)"""
    if sentence.rstrip().endswith("?"):
        return None
    words = tuple(_TOKEN.findall(sentence.lower()))
    return words, frozenset(words)


def _mentions(statements: list[_Statement], clause: str) -> list[bool]:
    want = set(_TOKEN.findall(_NEGATIVE.sub("", clause).lower()))
    if not want:
        return []
    out: list[bool] = []
    for words, vocab in statements:
        if not want <= vocab:
            continue
        at = min(i for i, w in enumerate(words) if w in want)
        denied = False
        for w in reversed(words[max(0, at - _LOOKBACK) : at]):
            if w in _BREAKS:
                break
            if w in _NEGATORS:
                denied = True
                break
        out.append(denied)
    return out


def negation_contradicted(sentences: Iterable[str], clause: str) -> bool:
    """Whether ``clause`` ("no chest pain") is contradicted: the record states the finding
    without denying it ("For about 4 days I've had blurred vision and chest pain.")."""
    return _contradicted(_mentions(_statements(sentences), clause))


def only_negated(sentences: Iterable[str], clause: str) -> bool:
    """Whether the record names ``clause`` ("diabetes") only to deny it ("I've never been
    told I have diabetes")."""
    return _denied(_mentions(_statements(sentences), clause))


def _contradicted(found: list[bool]) -> bool:
    return any(not denied for denied in found)


def _denied(found: list[bool]) -> bool:
    return bool(found) and all(found)


def repeat_unshown(rows: dict[str, list[object]], clause: str, lab_id: str | None) -> bool:
    """Whether ``clause`` cites a repeat result ("raised potassium on a repeat sample")
    while the record shows one result of that test at most."""
    if not _REPEAT.search(clause):
        return False
    return lab_id is None or len(rows.get(lab_id, [])) < 2


# A finding cited against a differential that a documented state contradicts, and the
# record's words for that state: "normotension" where the history gives hypertension
# (treated blood pressure is not normotension), "afebrile" where fever is reported.
OPPOSITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bnormotensi\w*|\bnormal blood pressure\b", re.I), "hypertension"),
    (re.compile(r"\bafebrile\b", re.I), "fever"),
)


def opposite_stated(sentences: Iterable[str], clause: str) -> str | None:
    """The state the record affirms that contradicts ``clause`` ("hypertension" for
    "normotension"), or None."""
    statements: list[_Statement] | None = None
    for pattern, state in OPPOSITES:
        if pattern.search(clause):
            statements = statements if statements is not None else _statements(sentences)
            if _contradicted(_mentions(statements, state)):
                return state
    return None


_TREATED = re.compile(r"[,;]\s*treated\b.*$", re.I)


def finding_cited(report: str) -> str:
    """A report's finding as the team cites it for the diagnosis: without what was done
    about it ("duodenal ulcer with a visible vessel (Forrest IIa)", not "..., treated with
    adrenaline injection and two clips")."""
    return _TREATED.sub("", report)


# A premise some differentials and plan steps rest on, and the record's words that
# document it: a line or catheter ("catheter-related bacteraemia", "line removal"), or any
# intravascular or implanted device ("remove infected intravascular devices").
_LINE = (
    r"\bcatheter\b|\bcentral (?:venous )?line\b|\bPICC\b|\bport\b|\bcannula\b|"
    r"\bhaemodialysis\b|\bdialysis\b"
)
PREMISES: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (
        re.compile(
            r"\bcatheter-related\b|\bline[- ]related\b|\bline removal\b|"
            r"\bremov\w* (?:the |any |infected )*(?:intravascular )?(?:lines?|catheters?)\b",
            re.I,
        ),
        re.compile(_LINE, re.I),
    ),
    (
        re.compile(r"\bremov\w* (?:the |any |infected )*(?:intravascular )?devices?\b", re.I),
        re.compile(_LINE + r"|\bpacemaker\b|\bdefibrillator\b|\bcardiac device\b", re.I),
    ),
)


def premise_missing(text: str, record: str) -> str | None:
    """What ``text`` rests on ("line removal") that the ``record`` before it never
    documents (no line or catheter; for a device, none of any kind), or None."""
    for said, documented in PREMISES:
        m = said.search(text)
        if m is not None and not documented.search(record):
            return m[0]
    return None


def agreeing_reason(kb: KnowledgeBase, shown: object, reason: str) -> str | None:
    """``supported_reason`` made to agree with the record: the clauses it keeps are not
    contradicted (an absence the patient reports), a repeat result is shown, a KB word the
    report says otherwise is said in the report's word ("without infiltrate" where the
    report gives "no consolidation"); None when nothing supported is left, or when the
    first cited finding is not: the knowledge base gives first the finding that argues
    against the differential on its own ("consolidation" against pulmonary embolism), and
    the findings after it only with it ("fever" alone argues against nothing)."""
    from behaviorsft.build.lint_plan import (
        _lab_of,
        clause_supported,
        join_clauses,
        split_clauses,
    )

    sentences: list[str] = getattr(shown, "sentences", [])
    rows: dict[str, list[object]] = getattr(shown, "rows", {})
    ok: list[str] = []
    bad: list[str] = []
    clauses = split_clauses(reason)
    statements: list[_Statement] | None = None  # tokenised once, if needed
    for clause in clauses:
        said = clause
        good = clause_supported(kb, shown, clause)  # type: ignore[arg-type]
        if not good and _NEGATIVE.match(clause):
            alt = " ".join(SYNONYMS.get(w.lower(), w) for w in clause.split())
            if alt != clause and clause_supported(kb, shown, alt):  # type: ignore[arg-type]
                said, good = alt, True
        if good:
            statements = statements if statements is not None else _statements(sentences)
            found = _mentions(statements, said)
            negative = _NEGATIVE.match(said) is not None
            contradicted = _contradicted(found) if negative else _denied(found)
            if contradicted or (not negative and opposite_stated(sentences, said) is not None):
                good = False
        if (
            good
            and _REPEAT.search(said)
            and repeat_unshown(rows, said, _lab_of(kb, _REPEAT.split(said)[0]))
        ):
            good = False
        (ok if good else bad).append(said)
        if not good and clause is clauses[0]:
            return None
    if not bad:
        return reason if ok == clauses else join_clauses(ok)
    if not ok:
        return None
    if all(_NEGATIVE.match(c) for c in ok):
        return None
    return join_clauses(ok)


def decisive_result(kb: KnowledgeBase, shown: object, cond: Condition) -> str | None:
    """The first of ``cond``'s decisive results (``Condition.decisive_results``: "CK above
    5x ULN" for rhabdomyolysis) that the record ``shown`` gives, cut as ``agreeing_reason``
    cuts a reason; None when it shows none."""
    for result in cond.decisive_results:
        said = agreeing_reason(kb, shown, result)
        if said is not None:
            return said
    return None


# ----------------------------------------------------------------------------- organisms

# An organism, the words that name it, and the Gram-stain patterns that point to it.
ORGANISMS: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...] = (
    (
        "meningococcus",
        re.compile(r"(?<!non-)\bmeningococc\w*|\bneisseria meningitidis\b", re.I),
        ("gram-negative diplococci",),
    ),
    (
        "pneumococcus",
        re.compile(r"(?<!non-)\bpneumococc\w*|\bstreptococcus pneumoniae\b", re.I),
        ("gram-positive diplococci", "gram-positive cocci in chains/pairs"),
    ),
    (
        "haemophilus",
        re.compile(r"\bhaemophilus influenzae\b", re.I),
        ("gram-negative coccobacilli",),
    ),
)


def organisms_named(text: str) -> set[str]:
    """The organisms ``text`` names ("close contact with meningococcal disease")."""
    return {name for name, words, _ in ORGANISMS if words.search(text)}


def organisms_found(results: Iterable[str]) -> set[str]:
    """The organisms microbiology ``results`` point to, by name or Gram-stain pattern."""
    out: set[str] = set()
    for r in results:
        low = r.lower().strip()
        out |= organisms_named(low)
        out |= {name for name, _, patterns in ORGANISMS if low in patterns}
    return out


def organism_conflict(text: str, results: Iterable[str]) -> str | None:
    """Why ``text`` contradicts the microbiology ``results`` (it names an organism while
    the results point only to others), or None."""
    named = organisms_named(text)
    if not named:
        return None
    found = organisms_found(results)
    if found and not named & found:
        return f"names {', '.join(sorted(named))} but the results point to " + ", ".join(
            sorted(found)
        )
    return None


# ----------------------------------------------------------------------------- claims

# Care one concept names in several ways: another condition's item in one of them is this
# condition's requirement under another name where its own care names the concept too
# ("transmission-based isolation precautions" for a TB patient in airborne isolation, "LVEF
# assessed" for a new AF that has a transthoracic echocardiogram).
CARE_CONCEPTS = (
    re.compile(r"\bisolation\b|\bairborne\b|\bnegative-pressure\b", re.I),
    re.compile(
        r"\bechocardiogra\w*|\bTTE\b|\bTOE\b|\bLVEF\b|\bLV function\b|\bejection fraction\b",
        re.I,
    ),
)


# A state the record may show that requires a concept whatever the diagnosis: heart failure
# an echocardiogram (ESC HF 2021), so no note declines one as another diagnosis's workup.
STATE_REQUIRES: tuple[tuple[str, re.Pattern[str]], ...] = (("heart failure", CARE_CONCEPTS[1]),)


def required_by_state(text: str, shows: Callable[[str], bool]) -> str | None:
    """The state (``STATE_REQUIRES``) that requires what ``text`` names and that the record
    shows (``shows(phrase)``: a sentence affirms it), or None."""
    for state, concept in STATE_REQUIRES:
        if concept.search(text) and shows(state):
            return state
    return None


def required_as(cond: Condition, text: str) -> str | None:
    """The care of ``cond`` (a KB condition: its requirements, first actions and next steps)
    that requires what ``text`` names under another name (``CARE_CONCEPTS``), or None."""
    own = [
        *(i.item for i in cond.standard_of_care),
        *cond.treatments.actions,
        *cond.next_actions,
    ]
    for concept in CARE_CONCEPTS:
        if concept.search(text):
            hit = next((o for o in own if concept.search(o)), None)
            if hit is not None:
                return hit
    return None


# A course of treatment or monitoring that runs on (weeks, months, a daily review, "until"
# something happens): an admission can start it, with its first doses, never have it done.
COURSE = re.compile(
    r"\b\d+(?:-\d+)?[- ]?(?:days?|weeks?|months?)\b(?!\s+after)|\buntil\b|\bcounted from\b|"
    r"\bcourse\b|\bdaily\b|\bmonthly\b",
    re.I,
)
# A schedule of checks (hourly, every 2-4 h, for at least 6 h): more than a record shows.
SCHEDULE = re.compile(
    r"\bhourly\b|\bevery \d|\b\d+(?:-\d+)?-hourly\b|\bfor at least \d+\s*h\b", re.I
)
# How many samples a claim says were taken ("at least 3 sets", "three sputum specimens").
_COUNT_WORDS = {"two": 2, "three": 3, "four": 4}
COUNT = re.compile(
    r"\b(?:at least )?(?P<n>\d+|two|three|four) (?:[a-z]+ )?(?:sets|specimens|samples)\b", re.I
)
REPEATED = re.compile(r"\b(?:repeat(?:ed)?|serial)\b", re.I)
# An interval in hours between serial samples ("(0 h and 1-3 h)"): the repeat that day.
_HOURS_APART = re.compile(r"\b\d+(?:-\d+)?\s*h\b", re.I)
WITHIN = re.compile(
    r"\bwithin (?P<n>\d+)\s*(?P<unit>min(?:utes?)?|h(?:ours?)?)\b(?: of (?:arrival|presentation|"
    r"admission|request))?",
    re.I,
)
AFTER_ARRIVAL = re.compile(r"\b(?P<n>\d+) minutes after arrival\b", re.I)
# "X before Y" (not "before discharge", which is a deadline, not an order of events).
BEFORE = re.compile(
    r"^(?P<x>.+?)\s+(?:given |drawn |measured )?before (?!discharge)(?P<y>.+)$", re.I
)
# "IV potassium rate documented": a claim about a medicine given into a vein.
IV_DRUG = re.compile(
    r"\bIV (?P<what>(?!therapy|fluids?|contrast|diuresis|access|line)[a-z]+)\b", re.I
)
# "(and T3)": a further test a claim names in passing, which the record must show too.
_ALSO = re.compile(r"\(and (?P<what>[^)]+)\)", re.I)
_RECORDED = re.compile(r"\b(?:documented|checked|screen|assessed|considered)\b", re.I)
_TREATMENT = re.compile(r"\b(?:needle|antimicrob\w*|antibiotics?|dose|thromboly\w*)\b", re.I)
FIRST_DOSE_OF = re.compile(r"\bfirst dose of (?P<drug>[^.;]+?) given\b", re.I)


def course(step: str) -> bool:
    """Whether ``step`` is a course (weeks, months, "until", daily): an admission starts it
    and shows its first doses, never has it done."""
    return COURSE.search(step) is not None


# The documented results of one test: (day, clock minutes or None), in record order.
Results = list[tuple[float, int | None]]


def unproved_claim(
    item: str,
    results: Callable[[str], dict[str, Results]],
    texts: Sequence[str],
    given: Iterable[tuple[str, str]],
) -> str | None:
    """Why the record cannot show ``item`` done, or None where it can.

    ``results(text)``: for each test (or study) ``text`` names, the results the record
    shows (a pending culture counts as its sample); ``texts``: the record's turns so far;
    ``given``: (name and class, route) of each medicine given in hospital. Beyond the
    plain presence of the tests it names, a claim is checked for its count ("at least 3
    sets"), its repetition ("repeat", "serial", at "1-3 h"), its time ("within 10 min of
    arrival": a documented time after arrival), its order ("X before Y": X's result with
    the admission bloods, a drug X's first dose in the record) and its medicines ("IV
    potassium": a potassium given IV); a course or a schedule of checks is never done."""
    if course(item):
        return "a course runs on: an admission starts it, never has it done"
    if early_discharge_item(item, texts):
        return f"{EARLY}, and the record has not reached the discharge"
    if SCHEDULE.search(item):
        return "a schedule of checks the record cannot show"
    core = _ALSO.sub("", item)
    named = results(core)
    measured: frozenset[str] = getattr(results, "measured", frozenset())
    for test, got in named.items():
        if not got:
            if test in measured:
                return f"{NO_VALUE} ({test}) the record never states"
            return f"no {test} result in the record"
    for also in _ALSO.finditer(item):
        extra = results(also["what"])
        if not extra or not all(extra.values()):
            return f"no {also['what']} result in the record"
    m = COUNT.search(item)
    if m is not None:
        n = _COUNT_WORDS.get(m["n"].lower()) or int(m["n"])
        if not named or min(len(v) for v in named.values()) < n:
            return f"claims {n} samples; the record shows fewer"
    if REPEATED.search(item):
        if not named or min(len(v) for v in named.values()) < 2:
            return "claims a repeat the record never shows"
        if _HOURS_APART.search(item) and not any(v[1][0] == v[0][0] for v in named.values()):
            return "claims a repeat within hours; the record's repeat is a day later"
    m = WITHIN.search(item)
    if m is not None:
        limit = int(m["n"]) * (1 if m["unit"].lower().startswith("m") else 60)
        subject = item[: m.start()]
        if not _timed(subject, limit, results, texts):
            return f"claims a time (within {m['n']} {m['unit']}) the record does not document"
    m = BEFORE.match(split_before(item))
    if m is not None:
        why = _order_unproved(m["x"], results, texts, given)
        if why is not None:
            return why
    m = IV_DRUG.search(item)
    if m is not None:
        what = m["what"].lower()
        if not any(what in name.lower() and route.upper() == "IV" for name, route in given):
            return f"claims IV {what}; none was given IV"
    return value_unstated(item, texts)


# Words that join a claim's parts, not what it claims.
_JOINERS = frozenset(["and", "or", "of", "the", "a", "an", "for", "in", "on", "to", "with", "at"])


def _claim_words(item: str) -> frozenset[str]:
    return frozenset(w.rstrip("s") for w in _TOKEN.findall(item.lower())) - _JOINERS


def covered_claim(item: str, others: Iterable[str]) -> str | None:
    """The claim among ``others`` that already says all ``item`` says ("blood cultures before
    antibiotics" for "blood cultures"), or None: listed beside it, ``item`` is the same line
    twice."""
    own = _claim_words(item)
    for other in others:
        if other != item and own and own <= _claim_words(other):
            return other
    return None


def distinct_claims(items: Iterable[str]) -> list[str]:
    """``items`` once each, without one another claim covers (``covered_claim``)."""
    unique = list(dict.fromkeys(items))
    words = {i: _claim_words(i) for i in unique}
    kept: list[str] = []
    for i in unique:
        if any(words[i] < words[o] for o in unique) or any(words[i] == words[k] for k in kept):
            continue
        kept.append(i)
    return kept


# How ``unproved_claim`` begins its answer for a claim of a value the record never states
# (the linter's ``claim-no-value``, not ``claim-unproved``).
NO_VALUE = "claims a value"


def value_unstated(item: str, texts: Sequence[str]) -> str | None:
    """Why a claim that records a value (a score, a grade, a stroke risk: ``wording.
    RECORDS_VALUE``) is unproved where the record ``texts`` state no value for it, or None
    ("CHA2DS2-VASc stroke risk documented" with no score anywhere)."""
    from behaviorsft.sources.wording import RECORDS_VALUE, checklist_item

    m = RECORDS_VALUE.search(item)
    if m is None or checklist_item(item, " ".join(texts)) is not None:
        return None
    return f"{NO_VALUE} ({m.group(0)}) the record never states"


def split_before(item: str) -> str:
    """``item`` without a trailing condition that is no order ("..., if this causes no
    substantial delay")."""
    return re.split(r",\s*(?:if|unless|only|when)\b|\s+only if\b", item, maxsplit=1)[0]


def _timed(
    subject: str, limit: int, results: Callable[[str], dict[str, Results]], texts: Sequence[str]
) -> bool:
    """Whether the record documents ``subject`` (its tests) ``limit`` minutes or less after
    arrival: a turn naming it says "N minutes after arrival", or, for a limit of a day or
    more, its result is dated within it."""
    tests = results(subject)
    if not tests:
        # a treatment's time ("door-to-needle", "antimicrobials within 1 h"): a dose the
        # record says was given that many minutes after arrival
        if not _TREATMENT.search(subject):
            return False
        return any(
            (m := AFTER_ARRIVAL.search(t)) is not None
            and int(m["n"]) <= limit
            and re.search(r"\bgiven\b", t[: m.start()])
            for t in texts
        )
    if limit >= 24 * 60:
        return all(v and v[0][0] * 24 * 60 <= limit for v in tests.values())
    for text in texts:
        m = AFTER_ARRIVAL.search(text)
        if m is not None and int(m["n"]) <= limit and set(results(text)) >= set(tests):
            return True
    return False


def _order_unproved(
    first: str,
    results: Callable[[str], dict[str, Results]],
    texts: Sequence[str],
    given: Iterable[tuple[str, str]],
) -> str | None:
    """Why the record cannot show ``first`` (of "X before Y") done first, or None: its tests
    resulted with the admission bloods (day 0, before the first dose), a drug's first dose
    documented."""
    tests = results(first)
    if tests:
        late = [t for t, v in tests.items() if v and v[0][0] > 0]
        return f"claims {', '.join(late)} first; its first result is after day 0" if late else None
    words = {w for w in _TOKEN.findall(first.lower()) if len(w) >= 5} - {"given", "baseline"}
    if not words or _RECORDED.search(first):
        return None  # a documentation item ("clinical probability documented", a screen)
    doses = [m["drug"].lower() for t in texts for m in FIRST_DOSE_OF.finditer(t)]
    # the drug by name, or a medicine of its class ("thionamide": propylthiouracil) by name
    names = [n.lower() for n, _ in given if any(w in n.lower() for w in words)]
    if any(w in d for w in words for d in doses) or any(d in n for n in names for d in doses if d):
        return None
    return f"claims '{first}' first; the record documents no first dose of it"


PENDING = "pending"
# A test a result of another name shows done: a prothrombin time by its INR, a fingerstick
# glucose by a plasma glucose of the same draw.
SAME_RESULT: dict[str, tuple[str, ...]] = {
    "test:pt": ("test:inr",),
    "test:glucose_poc": ("test:glucose",),
}


# Procedures whose result is a value: claimed done only where the record shows one.
MEASURED = frozenset({"proc:pef", "proc:echocardiogram"})


def results_finder(
    kb: KnowledgeBase, findings: Iterable[tuple[str, float | None, str | None]]
) -> Callable[[str], dict[str, Results]]:
    """``unproved_claim``'s ``results`` over the record's shown ``findings`` ((name, day,
    value text) in record order): per test or study a text names, its samples (a culture
    pending on day 0 and resulted on day 1 is one sample, taken on day 0)."""
    from behaviorsft.build.record_index import lexicon

    lx = lexicon(kb)
    by_test: dict[str, Results] = {}
    waiting: set[str] = set()
    for name, day, text in findings:
        cid = lx.by_lab_name.get(name.lower())
        cid = f"test:{cid}" if cid and not cid.startswith(("test:", "proc:")) else cid
        cid = cid or lx.resolve(name)
        if not cid:
            continue
        if (text or "").strip().lower() == PENDING:
            waiting.add(cid)
        elif cid in waiting:
            waiting.discard(cid)  # the result of the sample already counted
            continue
        by_test.setdefault(cid, []).append((day or 0.0, None))

    def rows(cid: str) -> Results:
        return sorted(
            (r for c in (cid, *SAME_RESULT.get(cid, ())) for r in by_test.get(c, [])),
            key=lambda r: r[0],
        )

    def results(text: str) -> dict[str, Results]:
        out: dict[str, Results] = {}
        for cid in lx.find(text):
            c = lx.concepts[cid]
            if c.kind == "test" and (cid[len("test:") :] in kb.labs or cid in by_test):
                out[c.name or cid] = rows(cid)
            elif c.kind == "procedure" and (cid in by_test or cid in MEASURED):
                # a study or procedure: only where the record reports one (its results may
                # be rows of other names: a paracentesis, the ascitic fluid counts); a
                # measurement always (a PEF "measured" with no value shown is no PEF)
                out[c.name or cid] = rows(cid)
            elif c.kind == "group":
                out[c.name or cid] = sorted(
                    (r for m in c.members for r in rows(m)), key=lambda r: r[0]
                )
        return out

    results.measured = frozenset(  # type: ignore[attr-defined]
        lx.concepts[c].name or c for c in MEASURED if c in lx.concepts
    )
    return results


def claim_checker(
    kb: KnowledgeBase,
    findings: Iterable[tuple[str, float | None, str | None]],
    texts: Sequence[str],
    given: Iterable[tuple[str, str]],
) -> Callable[[str], str | None]:
    """``unproved_claim`` bound to one record (its shown ``findings``, its ``texts`` and the
    medicines ``given``), each item checked once."""
    results = results_finder(kb, findings)
    texts, given = list(texts), list(given)
    memo: dict[str, str | None] = {}

    def check(item: str) -> str | None:
        if item not in memo:
            memo[item] = unproved_claim(item, results, texts, given)
        return memo[item]

    check.results = results  # type: ignore[attr-defined]
    return check


def provable(check: Callable[[str], str | None], item: str) -> str | None:
    """``item`` as a record checked by ``check`` (a ``claim_checker``) may list it done:
    whole, or its ``proved_part``; None when neither."""
    if check(item) is None:
        return item
    return proved_part(item, check, check.results)  # type: ignore[attr-defined]


# A course an update may call started (its first doses given): not one that waits on a
# result the record does not have ("counted from the first negative blood culture").
_WAITS = re.compile(r"\bcounted from\b|\bpathogen-directed\b|\bonce\b|\bafter recovery\b", re.I)


def startable(step: str) -> bool:
    """Whether an update may list the course ``step`` as started (its first doses given):
    not one begun at discharge ("discharge on ... plus an oral corticosteroid course")."""
    return (
        course(step)
        and _WAITS.search(step) is None
        and not after_discharge(step)
        and AT_DISCHARGE.search(step) is None
    )


# What a claim says beyond its tests, taken off to leave the part a record proves: a count,
# a repeat or schedule, a time limit, a passing test, a course's span; then an order.
_BEYOND = (
    re.compile(
        r"^(?:at least )?(?:\d+|two|three|four) (?:sets|specimens|samples) (?:of|for) ", re.I
    ),
    re.compile(r"^(?:(?:serial|repeat(?:ed)?|hourly|baseline) )+", re.I),
    re.compile(r"\s*\([^)]*\)", re.I),
    re.compile(r"\s+from separate \w+", re.I),
    re.compile(
        r"\s+within \d+\s*(?:min\w*|h\w*)(?: of (?:arrival|presentation|admission|request))?",
        re.I,
    ),
    re.compile(r"\s+(?:every|until|during|daily|for at least|counted from)\b.*$", re.I),
)
_ORDER = re.compile(r"\s+(?:given |drawn |measured )?before .*$", re.I)


def proved_part(
    item: str,
    proves: Callable[[str], str | None],
    results_of: Callable[[str], dict[str, Results]],
) -> str | None:
    """What of ``item`` the record proves when the whole claim fails ``proves``: its tests
    without the count, repeat, time or passing test it cannot show ("blood cultures before
    antibiotics" of "at least 3 sets of blood cultures from separate venepunctures before
    antibiotics", "12-lead ECG" of "... within 10 min of arrival"), then without the order
    too; only where they name tests the record shows and nothing else fails, else None."""
    part = item
    for pattern in _BEYOND:
        part = pattern.sub("", part).strip(" ,")
    for candidate in (part, _ORDER.sub("", part).strip(" ,")):
        if not candidate or candidate == item or IV_DRUG.search(candidate):
            continue
        tests = results_of(candidate)
        if tests and all(tests.values()) and proves(candidate) is None:
            return candidate
    return None
