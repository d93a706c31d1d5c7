"""Clinical linter, wording rules: textbook text spoken as findings, history and roles.

Called from :mod:`behaviorsft.build.lint` (one hook per case, one per turn). The rules
(documented in docs/building.md, "Clinical linter"):

``hedged-wording``       a documented finding, complaint or history item that is textbook
                         wording: a hedge or condition ("in some", "in severe cases",
                         "(rare)", "may be normal", "when encephalopathic") or an
                         alternative ("apical crackles or bronchial breathing")
``duration-restated``    a complaint that repeats its own duration threshold beside the
                         onset ("4 weeks of cough for more than 2-3 weeks", "2 days of
                         polyuria and polydipsia over days to weeks")
``history-demographic``  a demographic recorded or said as history ("age over 65 years",
                         "older age", "female sex": the age and sex are on the record)
``history-drug-absent``  a medicine recorded or said as history ("aspirin or NSAID use",
                         "loop or thiazide diuretic therapy") that the medication list lacks
``relative-implausible`` a relative who does not fit the patient: a husband of a man, a
                         wife of a woman, a son or daughter of a patient under 35
``history-untreated``    a chronic disease in the history that implies standing treatment
                         (heart failure, diabetes, COPD, asthma, cirrhosis, atrial
                         fibrillation, hypertension, coronary disease, immunosuppression...)
                         with no regular medicine for it (sources/history.py ``STANDING``),
                         or an admission that implies a chronic disease the history lacks
                         (a COPD exacerbation with no COPD)
``history-lab-state``    a laboratory state given as a past condition ("hypokalaemia") that
                         the current result contradicts (potassium 6.2)
``history-misfiled``     a habit, exposure, recent event or trigger given as past medical
                         history ("I use cocaine" to "past medical history?") or as a
                         symptom ("onset after a fatty meal")
``history-presumes``     a trigger that presumes a known disease or a medicine the record
                         lacks ("insulin omission" beside "new-onset diabetes" or with no
                         insulin listed; "medication non-adherence" on no medicine), or a
                         history diagnosis the findings contradict (hypopituitarism with
                         hyperpigmentation or hyperkalaemia: primary adrenal failure)
``history-unspecified``  a recent event given without its specifics ("recent surgery": what
                         operation, and when; sources/history.py ``SURGERY``)
``history-from-incapable-patient`` a patient the record documents as unable to give a
                         history (confused, drowsy, aphasic, too breathless to talk:
                         sources/collateral.py ``needed``) who answers the history
                         questions in fluent first-person sentences
``consultant-scope``     a medical consultant giving a surgeon's decision (an operation)
``report-commentary``    a study report that comments on the clinical course or the
                         examination, or gives management ("in a patient documented to
                         have ...", "did not resolve with glucose", "treat as STEMI")
``speaker-untitled``     a member of staff named by a bare surname ("Banerjee"): a question
                         naming the speaker ("Turn 22 (Banerjee) is missing") shows no role
``negation-scope``       an examination that lists a finding after a negated one with "and"
                         ("no flank ecchymosis and epigastric tenderness": read as absent)
``dangling-end``         a sentence cut off after a function word or a verb that wants its
                         object ("CT to confirm obstruction and look.", "doses adjusted for.")
``exam-negation-scope``  an examination turn joining a present finding to a negated one
                         ("no tophi and overlying erythema"), so it reads as absent
``exam-subject-missing`` "Examination shows appears unwell": a finding worded as what the
                         patient does, without its subject
``exam-and-chain``       an examination turn running findings together with two "and"s in
                         one clause ("oriented to time and place and agitation and ...")
``exam-imaging-term``    an examination naming what only imaging shows ("dullness over the
                         consolidation" before any chest film; a vegetation, air bronchograms)
``exam-normal-unfocused`` a documented normal result from a region of the examination the
                         condition and its differentials do not call for ("no generalised
                         peritonitis" beside atrial fibrillation; sources/exam_normals.py)
``exam-cardinal-missing`` an examination without any of its condition's cardinal findings
                         (a cellulitis without the erythema; kb/exam.yaml ``cardinal``)
``cause-undocumented``   a plan that treats a cause or predisposition the record never
                         documents ("treat the cause (vomiting, laxative misuse)" with no
                         laxative; "treat predisposing tinea pedis" with no tinea found)
``checklist-no-value``   a checklist line for an item that records a value (a score, a
                         grade, a duration, a status, a time) that names none ("Documented:
                         antibiotic duration.", "Documented: NIHSS.")
``filler-unshown``       filler that claims what no turn shows or says nothing ("Overnight
                         observations were stable", "we'll review progress daily")
``spoken-citation``      a guideline citation said aloud ("... for at least 5 days (IDSA/ATS
                         2019)"): the KB keeps it as provenance, a turn says the step
                         (sources/wording.py ``spoken``)

The wording rules apply to knowledge-base (synthetic) records, whose text the
generator controls; real-source text is quoted as its source wrote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from behaviorsft.build.lint_common import KB_CODES
from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.build.ward_turns import and_chain, exam_subject_missing, negation_scope
from behaviorsft.sources import exam_normals
from behaviorsft.sources.collateral import Reason, fluent_history, needed_for_record, said_of
from behaviorsft.sources.history import (
    IMPLIED,
    PRIMARY_AI_SIGNS,
    SECONDARY_AI,
    TRIGGER_AS_SYMPTOM,
    UNNAMED_SURGERY,
    covered,
    is_exposure,
    lab_named,
    mentions_implied,
    presumption_missing,
    standing_for,
)
from behaviorsft.sources.kb import KnowledgeBase
from behaviorsft.sources.wording import (
    CAUSE_LIST,
    DEMOGRAPHIC,
    DURATION_WORDING,
    FILLER,
    bare_checklist,
    citation,
    hedged,
    is_medicine,
    spoken_history,
    undocumented_causes,
)

# what only imaging (or an echocardiogram) shows, named in a bedside examination
IMAGING_TERM = re.compile(
    r"\b(?:consolidation|air bronchograms?|vegetations?|filling defects?|ground[- ]glass"
    r"|infiltrates?)\b",
    re.I,
)

TEXT_RULES: dict[str, tuple[str, str]] = {
    "hedged-wording": ("error", "textbook hedge or alternative documented as a finding"),
    "duration-restated": ("error", "a complaint restates its duration threshold by the onset"),
    "history-demographic": ("error", "a demographic (age, sex) given as history"),
    "history-drug-absent": ("error", "a medicine given as history but not in the medicines"),
    "history-untreated": ("error", "a chronic disease in the history without its treatment"),
    "history-lab-state": ("error", "a laboratory state as past history, contradicted now"),
    "history-misfiled": ("error", "a habit, exposure or trigger given as past history"),
    "history-presumes": ("error", "a trigger presumes a disease or medicine the record lacks"),
    "history-unspecified": ("error", "a recent event without its specifics (what, when)"),
    "relative-implausible": ("warning", "a relative inconsistent with the patient's sex or age"),
    "history-from-incapable-patient": (
        "error",
        "a patient documented as confused or too breathless gives a fluent history",
    ),
    "consultant-scope": ("error", "a medical consultant gives a surgical decision"),
    "report-commentary": ("error", "a study report comments on the course or management"),
    "dangling-end": ("error", "a sentence ends on a dangling word (truncated text)"),
    "negation-scope": ("error", "a found sign listed after a negated one reads as absent"),
    "speaker-untitled": ("error", "a member of staff named without a title showing the role"),
    "exam-negation-scope": (
        "error",
        "a present finding joined to a negated one ('no tophi and overlying erythema')",
    ),
    "exam-subject-missing": ("error", "'Examination shows appears unwell': a verb, no subject"),
    "exam-and-chain": ("error", "examination findings run together with two 'and's"),
    "exam-imaging-term": ("error", "an examination naming what only imaging shows"),
    "exam-normal-unfocused": (
        "warning",
        "a normal result from an examination region the presentation does not call for",
    ),
    "exam-cardinal-missing": ("error", "an examination without its condition's cardinal sign"),
    "cause-undocumented": ("error", "a plan treats a cause the record never documents"),
    "checklist-no-value": ("error", "'Documented: antibiotic duration': a value never named"),
    "filler-unshown": ("error", "filler: 'overnight observations were stable' with none shown"),
    "spoken-citation": ("error", "a guideline citation said aloud in a turn ('(BTS 2017)')"),
}


# An operation only a surgeon decides on; a referral to one is in any consultant's scope.
SURGICAL = re.compile(
    r"\b(laparotomy|laparoscop\w*|cholecystectomy|colectomy|surgical repair|resection)\b", re.I
)
REFERRAL = re.compile(r"\b(surgical (?:consultation|review|referral)|refer\w*)\b", re.I)
# A report saying what the clinicians documented, how the patient did, or what to do.
COMMENTARY = re.compile(
    r"\bin a patient\b|\bdespite\b|\bdocumented\b|\breported to have\b|\bdid not resolve\b|"
    r"\btreat as\b|\bis required\b|\bneeds? urgent\b|\bwould reclassify\b|"
    r"\bcontraindicated\b|\bnot SIADH\b",
    re.I,
)
REPORTERS = ("radiologist", "endoscopist", "laboratory scientist", "cardiologist")
# "4 weeks of ...", "For about 4 weeks I've had ...", "It started 4 weeks ago: ..."
ONSET = re.compile(
    r"\b\d+\s*(?:hour|day|week|month)s?(?:\s+of\b|\s+(?:I've|she's|he's) had\b|\s+ago:)", re.I
)
RELATIVE = re.compile(r"\bPatient's (\w+)\b")
# A sentence (or clause before a semicolon) cut off after a word that cannot end one: a
# conjunction, preposition or article, or a verb left without its object ("and look.").
DANGLING_END = re.compile(
    r"\b(?P<word>and|or|to|for|of|with|by|from|than|into|the|a|an|"
    r"(?:and|to) (?:look|check|screen|assess|search))\s*[.;](?=\s|$)"
)
# What ends a sentence well though its last word is one of those: an idiom ("aware of"), a
# term ("type and screen").
_ENDS_WELL = re.compile(
    r"\b(?:aware|kind|sort|heard|think|know|afraid|capable|sure|fond|unable|able|wanted|"
    r"want|need|have|going|used) (?:of|to)$|\btype and screen$",
    re.I,
)
# A negated finding followed by "and" and a finding that is not negated, in one list item
# run ("no tophi and overlying erythema").
NEGATION_SCOPE = re.compile(r"\b(?:no|without)\s[^,;.]*?\sand\s(?!no\b|not\b|without\b)\w+")
# The question whose answer is the past medical history.
PMH_QUESTION = re.compile(r"\bmedical conditions\b|\bpast medical history\b", re.I)


@dataclass
class TextFacts:
    """What the turn rules need of the case."""

    synthetic: bool
    sex: str | None
    age: float | None
    exposures: list[str] = field(default_factory=list)  # history items asked apart
    pmh_asked: bool = False  # the last clinician turn asked for the past medical history
    exam: list[str] = field(default_factory=list)  # the documented examination findings
    unable: Reason | None = None  # why the patient cannot give a history (collateral.py)
    said: list[str] = field(default_factory=list)  # the turns so far


def _is_synthetic(case: dict[str, Any]) -> bool:
    return any(c.get("code_system") == KB_CODES for c in case.get("conditions") or [])


def check_case_text(
    where: _Adds, case: dict[str, Any], kb: KnowledgeBase | None = None
) -> TextFacts:
    """The case's documented findings, complaints and history (synthetic records)."""
    demo = case.get("demographics") or {}
    facts = TextFacts(_is_synthetic(case), demo.get("sex"), demo.get("age_years"))
    if not facts.synthetic:
        return facts
    said: list[tuple[str, str]] = []
    for f in case.get("facts") or []:
        f = str(f)
        if f.startswith("Reports "):
            said.append(("complaint", f[len("Reports ") :].rstrip(".")))
        elif f.startswith("History: "):
            said.append(("history", f[len("History: ") :].rstrip(".")))
    for f in case.get("findings") or []:
        if f.get("kind") in ("exam", "imaging") and f.get("value_text"):
            said.append((str(f["kind"]), str(f["value_text"])))
        if f.get("kind") == "imaging":
            said.append(("study", str(f.get("name", ""))))
    meds = " ".join(
        f"{m.get('name', '')} {m.get('drug_class') or ''}" for m in case.get("medications") or []
    ).lower()
    _check_history(where, case, [t for k, t in said if k == "history"])
    facts.exposures = [t for k, t in said if k == "history" and is_exposure(t)]
    facts.exam = [t for k, t in said if k == "exam"]
    facts.unable = needed_for_record(case)
    if kb is not None:
        _check_exam(where, case, facts.exam, kb)
    for kind, text in said:
        if kind == "complaint" and TRIGGER_AS_SYMPTOM.search(text):
            where.add("history-misfiled", f"a trigger given as a symptom: '{text}'")
        problem = hedged(text)
        if problem is not None:
            rule = "duration-restated" if DURATION_WORDING.search(text) else "hedged-wording"
            where.add(rule, f"{kind} '{text}': {problem}")
        if kind != "history":
            continue
        if DEMOGRAPHIC.search(text):
            where.add("history-demographic", f"history '{text}' is a demographic")
        elif is_medicine(text) and not _taken(text, meds):
            where.add("history-drug-absent", f"history '{text}' but no such medicine is listed")
    return facts


def _check_exam(where: _Adds, case: dict[str, Any], exam: list[str], kb: KnowledgeBase) -> None:
    """The examination against its condition: normal results from the regions a focused
    examination covers, and one of the condition's cardinal findings."""
    code = next(
        (
            str(c.get("code"))
            for c in case.get("conditions") or []
            if c.get("code_system") == KB_CODES
        ),
        None,
    )
    if code is None or code not in kb.conditions:
        return
    for finding, region in exam_normals.unfocused(kb, code, exam):
        where.add("exam-normal-unfocused", f"examination '{finding}' ({region}) in {code}")
    missing = exam_normals.cardinal_missing(kb, code, exam)
    if missing:
        where.add(
            "exam-cardinal-missing",
            f"{code}: the examination documents none of: {'; '.join(missing)}",
        )


def _check_history(where: _Adds, case: dict[str, Any], history: list[str]) -> None:
    """Chronic diseases against the regular medicines; laboratory states against today's
    results; the chronic disease the admission implies."""
    diagnosis = case.get("final_diagnosis")
    code = next(
        (
            str(c.get("code"))
            for c in case.get("conditions") or []
            if c.get("code_system") == KB_CODES
        ),
        None,
    )
    meds = case.get("medications") or []
    for item in history:
        standing = standing_for(item)
        if standing is not None:
            with_plan = code in standing.implied_by
            taken = [
                f"{m.get('name', '')} {m.get('drug_class') or ''}".lower()
                for m in meds
                if with_plan or m.get("indication") != diagnosis
            ]
            if covered(standing, taken) < standing.need:
                where.add(
                    "history-untreated",
                    f"history '{item}' but no regular medicine treats it "
                    f"({standing.need} of: {', '.join('/'.join(g) for g in standing.groups)})",
                )
        state = lab_named(item)
        if state is not None:
            lab, direction = state
            for f in case.get("findings") or []:
                if not str(f.get("name", "")).lower().startswith(lab) or f.get("day"):
                    continue
                value, ref = f.get("value"), f.get("reference_range") or {}
                low, high = ref.get("low"), ref.get("high")
                if value is None or low is None or high is None:
                    continue
                if (direction == "low" and value >= low) or (direction == "high" and value <= high):
                    where.add(
                        "history-lab-state",
                        f"history '{item}' but {f.get('name')} is {value:g} ({low:g}-{high:g})",
                    )
                break
    home = [
        f"{m.get('name', '')} {m.get('drug_class') or ''}".lower()
        for m in meds
        if m.get("indication") != diagnosis
    ]
    for item in history:
        missing = presumption_missing(item, history, home)
        if missing:
            where.add("history-presumes", f"history '{item}' presumes {missing}")
        if UNNAMED_SURGERY.match(item):
            where.add("history-unspecified", f"history '{item}' names no operation or date")
        if SECONDARY_AI.search(item) and _primary_adrenal_signs(case):
            where.add(
                "history-presumes",
                f"history '{item}' (secondary adrenal insufficiency) beside "
                f"{_primary_adrenal_signs(case)}, signs of primary adrenal failure",
            )
    documented = any(s.get("title") == "Past history" for s in case.get("sections") or [])
    if code in IMPLIED and documented and not any(mentions_implied(h, code) for h in history):
        where.add(
            "history-untreated",
            f"{diagnosis or code} implies {IMPLIED[code]}, which the history does not name",
        )


def _primary_adrenal_signs(case: dict[str, Any]) -> str:
    """Hyperpigmentation on examination or a day-0 potassium above its range ('' if none)."""
    for f in case.get("findings") or []:
        text = str(f.get("value_text") or "")
        if f.get("kind") == "exam" and PRIMARY_AI_SIGNS.search(text):
            return f"'{text}'"
        if str(f.get("name", "")).lower().startswith("potassium") and not f.get("day"):
            high = (f.get("reference_range") or {}).get("high")
            value = f.get("value")
            if value is not None and high is not None and value > high:
                return f"potassium {value:g}"
    return ""


def _taken(item: str, meds: str) -> bool:
    """Whether any drug the history item names is in ``meds`` (names and classes)."""
    for part in re.split(r",\s*|\s+or\s+", item):
        phrase = re.sub(r"\s+(?:use|therapy)\b.*$", "", part.strip()).lower()
        phrase = re.sub(r"s$", "", phrase)
        if phrase and phrase in meds:
            return True
    return False


def dangling_end(text: str) -> str | None:
    """The dangling word a sentence of ``text`` ends on ("and look"), or None."""
    for m in DANGLING_END.finditer(text):
        if not _ENDS_WELL.search(text[: m.end("word")]):
            return m["word"]
    return None


def check_turn_text(
    where: _Adds, idx: int | None, role: str, speaker: str, text: str, facts: TextFacts | None
) -> None:
    """One turn of a conversation (``role`` lower-case)."""
    if facts is None or not facts.synthetic:
        return
    if (
        role not in ("patient", "family member", "relative", "caregiver")
        and len(speaker.split()) < 2
    ):
        where.add("speaker-untitled", f"the {role} is named '{speaker}' with no title", idx)
    cited = citation(text)
    if cited is not None:
        where.add("spoken-citation", f"'{cited}' said aloud: '{text[:90]}'", idx)
    if CAUSE_LIST.search(text) and role not in ("patient", "family member"):
        for cause in undocumented_causes(text, " ".join(facts.said)):
            where.add("cause-undocumented", f"'{cause}' never documented: '{text[:90]}'", idx)
    facts.said.append(text)
    filler = FILLER.search(text)
    if filler is not None:
        where.add("filler-unshown", f"'{filler.group(0)}': '{text[:90]}'", idx)
    bare = bare_checklist(text)
    if bare is not None:
        where.add("checklist-no-value", f"'{bare}' listed without its value", idx)
    cut = dangling_end(text)
    if cut is not None:
        where.add("dangling-end", f"a sentence ends on '{cut}': '{text[:90]}'", idx)
    onset = ONSET.search(text)
    if onset is not None:
        m = DURATION_WORDING.search(text, onset.end())
        if m is not None:
            where.add(
                "duration-restated",
                f"onset '{onset.group(0)}' beside '{m.group(0)}': '{text[:90]}'",
                idx,
            )
    if role == "patient" and facts.unable is not None and fluent_history(text):
        where.add(
            "history-from-incapable-patient",
            f"the patient is documented {facts.unable.kind} ({facts.unable.shown}) but says "
            f"'{text[:80]}'",
            idx,
        )
    if role in ("patient", "family member") and facts.pmh_asked:
        for item in facts.exposures:  # in the patient's words, or the relative's
            if spoken_history([item]) in text or said_of([item], facts.sex) in text:
                where.add("history-misfiled", f"'{item}' given as past medical history", idx)
    if role != "patient":
        facts.pmh_asked = PMH_QUESTION.search(text) is not None
    if role in ("patient", "family member") and text.startswith("The doctors have mentioned"):
        for item in re.split(r",\s*| and ", text[len("The doctors have mentioned") :]):
            if DEMOGRAPHIC.search(item):
                where.add("history-demographic", f"the patient gives '{item.strip()}'", idx)
    if role in ("emergency physician",) and text.startswith(("On examination:", "Examination")):
        body = text.split(":", 1)[1] if ":" in text else text[len("Examination shows") :]
        problem = hedged(body)
        if problem is not None:
            where.add("hedged-wording", f"examination '{body.strip()[:80]}': {problem}", idx)
        scope = NEGATION_SCOPE.search(body)
        if scope is not None:
            where.add("negation-scope", f"examination '{scope.group(0)}...': '{body[:90]}'", idx)
        joined = negation_scope(body, facts.exam)
        if joined is not None:
            where.add("exam-negation-scope", f"'{joined}' read as negated: '{text[:90]}'", idx)
        verb = exam_subject_missing(text)
        if verb is not None:
            where.add("exam-subject-missing", f"'{verb}' with no subject: '{text[:90]}'", idx)
        chain = and_chain(text)
        if chain is not None:
            where.add("exam-and-chain", f"findings run together: '{chain[:90]}'", idx)
        seen = IMAGING_TERM.search(body)
        if seen is not None:
            where.add("exam-imaging-term", f"the examination names '{seen.group(0)}'", idx)
    rel = RELATIVE.search(speaker)
    if rel is not None:
        who = rel.group(1).lower()
        bad = (
            (who == "husband" and facts.sex == "male")
            or (who == "wife" and facts.sex == "female")
            or (who in ("son", "daughter") and facts.age is not None and facts.age < 35)
        )
        if bad:
            where.add(
                "relative-implausible",
                f"'{speaker}' for a {facts.age:g}-year-old {facts.sex}"
                if facts.age is not None
                else f"'{speaker}' for a {facts.sex} patient",
                idx,
            )
    medical = "consultant" in role and "surg" not in role
    if medical and SURGICAL.search(text) and not REFERRAL.search(text):
        where.add("consultant-scope", f"a {role} decides an operation: '{text[:90]}'", idx)
    if role in REPORTERS:
        m = COMMENTARY.search(text)
        if m is not None:
            where.add("report-commentary", f"a {role} says '{m.group(0)}': '{text[:90]}'", idx)
