"""Render a structured Case as a multi-turn, multi-clinician conversation.

Synthetic (knowledge-base) cases get a full admission: triage, history taken
by the emergency physician, observations and lab panels as tables, radiology,
the attending's differential, the plan, a pharmacist's check, a consultant, a
family member, day-1 repeat bloods, the standard-of-care items documented and
the next steps. Other cases (MediQ facts, FHIR records, text reports, MEDEC
notes) are narrated from whatever they hold: presentation, sections, facts,
findings tables, medicines, allergies and timeline.

Wording varies by a seeded choice among phrasings; turn indices are stable.
Alongside the conversation the renderer returns *anchors*: which turn holds
which fact (allergy, vitals, labs, imaging, plan, ...), so the task
generators can point a question at the right turn range.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from behaviorsft.build import vignette_turns, ward_turns
from behaviorsft.build.coherence import (
    action_fits,
    advice_specialty,
    claim_checker,
    consultant_advice_fits,
    count_claim_shown,
    decisive_result,
    finding_cited,
    organism_conflict,
    premise_missing,
    provable,
    route_claim_shown,
    state_record,
    state_shown,
    step_fits,
    surgeon_advice,
    timed_check_shown,
)
from behaviorsft.build.discriminators import (
    against_reason,
    cause_sentence,
    discriminating_result,
    reconsider_with,
)
from behaviorsft.build.event_time import (
    after_plan,
    after_study,
    at_triage,
    day_label,
    draw_ecg_minutes,
    ecg_first,
    lp_after_ct,
)
from behaviorsft.build.lint import absent_drugs, allergy_groups_of, clashing_terms, unshown_tests
from behaviorsft.build.lint_plan import shown_record
from behaviorsft.build.lint_values import PENDING, SAMPLED_BY
from behaviorsft.build.record_index import split_condition
from behaviorsft.records import Attachment, Case, Conversation, Finding, Medication, Turn
from behaviorsft.sources import collateral, dosing, prescribing, severity, surgical
from behaviorsft.sources import patient as patient_fit
from behaviorsft.sources.history import (
    allergy_said,
    history_steps,
    is_exposure,
    known_step,
    past_conditions,
    self_taken,
    told_as_symptom,
)
from behaviorsft.sources.kb import Condition, Drug, KnowledgeBase, Lab
from behaviorsft.sources.severity import (
    level_of_care,
    review_words,
    statements,
    still_open,
    unit_of,
)
from behaviorsft.sources.synthetic import (
    COURSE_EVENTS,
    fmt_value,
    kb_condition_id,
    medication_text,
    onset_phrase,
)
from behaviorsft.sources.wording import checklist_item, for_patient, spoken, spoken_history

SURNAMES = (
    "Okafor",
    "Lindqvist",
    "Haddad",
    "Moreau",
    "Tanaka",
    "Osei",
    "Kowalski",
    "Silva",
    "Nguyen",
    "Petrov",
    "Mensah",
    "Rossi",
    "Fischer",
    "Kaur",
    "Ibrahim",
    "Novak",
    "Costa",
    "Reyes",
    "Achterberg",
    "Dubois",
    "Yilmaz",
    "Larsen",
    "Chen",
    "Adeyemi",
    "Murphy",
    "Santos",
    "Weber",
    "Kim",
    "Banerjee",
    "Horvath",
)
RELATIVES = ("daughter", "son", "wife", "husband", "sister", "partner")


def relatives_for(sex: str | None, age: int) -> tuple[str, ...]:
    """Relatives who fit the patient: a spouse of the other sex, grown-up children only
    from 45, parents under 35."""
    spouse = {"male": ("wife", "partner"), "female": ("husband", "partner")}.get(
        sex or "", ("partner",)
    )
    children = ("daughter", "son") if age >= 45 else ()
    parents = ("mother", "father") if age < 35 else ()
    return (*children, *spouse, "sister", *parents)


# Advice only a surgeon gives (an operation), not a medical consultant's.
SURGICAL_ADVICE = re.compile(
    r"\b(laparotomy|laparoscop\w*|cholecystectomy|colectomy|surgical repair|resection)\b", re.I
)
REFERRAL = re.compile(r"\b(surgical (?:consultation|review|referral)|refer\w*)\b", re.I)


def consultant_specialty(system: str, advice: str, condition: str | None = None) -> str:
    """Who gives ``advice``: a surgeon for an operation (or a referral for one), else the
    condition's specialty (``CONDITION_SPECIALTY``) or its system's."""
    if SURGICAL_ADVICE.search(advice) and (
        not REFERRAL.search(advice) or surgeon_advice(advice) is not None
    ):
        return "general surgery"
    other = advice_specialty(advice)  # renal replacement: nephrology's (coherence.py)
    if other is not None:
        return other
    own = patient_fit.CONDITION_SPECIALTY.get(condition or "")  # a leg DVT: haematology
    return own or SPECIALTY.get(system, "internal medicine")


SPECIALTY = {
    "cardiovascular": "cardiology",
    "respiratory": "respiratory medicine",
    "infectious": "infectious diseases",
    "endocrine_metabolic": "endocrinology",
    "renal_electrolyte": "nephrology",
    "gastrointestinal_hepatic": "gastroenterology",
    "neurological": "neurology",
    "musculoskeletal": "rheumatology",
    "allergy_immunology": "immunology",
    "toxicology_substance": "addiction medicine",
}


# Timeline kinds of a synthetic hospital course (besides the repeat bloods, a "lab" event
# after day 0), narrated in the order they happened.
COURSE_KINDS = frozenset(COURSE_EVENTS)

# Most recent timeline events narrated for sources with long histories (FHIR).
TIMELINE_SHOWN = 16


@dataclass
class Rendered:
    """A conversation plus where each kind of fact was said."""

    conversation: Conversation
    anchors: dict[str, int] = field(default_factory=dict)
    # finding (name, day) -> turn index of the table that shows it
    finding_turns: dict[tuple[str, float | None], int] = field(default_factory=dict)
    # dated finding (name, ISO date) -> turn of the table that shows it, where that table
    # has one row of the test (imported records: a test may be shown on several dates)
    dated_turns: dict[tuple[str, str], int] = field(default_factory=dict)
    # standard-of-care items left out of this record on purpose (their tests not shown)
    omitted: tuple[str, ...] = ()
    # differential name -> the reason the attending cited against it (only what the record
    # showed before; a differential set aside without a reason is absent)
    reasons: dict[str, str] = field(default_factory=dict)
    # the decisive result the attending says the working diagnosis fits best given ("CK
    # above 5x ULN": coherence.decisive_result), where no study report is decisive
    decisive: str | None = None
    # what the attending said would make the team reconsider the first differential (its
    # ``favoured_by`` less what the record already shows: discriminators.reconsider_with)
    reconsider: str | None = None
    # the whole record indexed (a ``RecordIndex`` of every turn, no excerpt) where the
    # renderer built it: ``Ctx.index`` cuts it to a task's turns instead of indexing again
    index: object | None = field(default=None, repr=False, compare=False)


class _Builder:
    def __init__(self, case: Case, rng: random.Random) -> None:
        self.case = case
        self.rng = rng
        self.turns: list[Turn] = []
        self.anchors: dict[str, int] = {}
        self.finding_turns: dict[tuple[str, float | None], int] = {}
        self.dated_turns: dict[tuple[str, str], int] = {}
        names = list(SURNAMES)
        rng.shuffle(names)
        self._names = iter(names)
        self.people: dict[str, tuple[str, str]] = {}
        self.reasons: dict[str, str] = {}
        self.decisive: str | None = None
        self.reconsider: str | None = None

    def person(self, key: str, title: str, role: str) -> tuple[str, str]:
        if key not in self.people:
            self.people[key] = (f"{title} {next(self._names)}".strip(), role)
        return self.people[key]

    def say(
        self,
        who: tuple[str, str],
        *variants: str,
        anchor: str | None = None,
        attachments: list[Attachment] | None = None,
    ) -> int:
        text = self.rng.choice(variants) if len(variants) > 1 else variants[0]
        idx = len(self.turns)
        self.turns.append(
            Turn(index=idx, speaker=who[0], role=who[1], text=text, attachments=attachments or [])
        )
        if anchor is not None:
            self.anchors.setdefault(anchor, idx)
        return idx

    def table(self, title: str, findings: list[Finding]) -> Attachment:
        rows = []
        for f in findings:
            value = f.value_text if f.value is None else format_finding_value(f)
            ref = ""
            if f.reference_range is not None and f.reference_range.low is not None:
                ref = f"{f.reference_range.low:g}-{f.reference_range.high:g}"
            rows.append([f.name, value or "", f.unit or "", ref])
        return Attachment(
            kind="table", title=title, columns=["Test", "Result", "Unit", "Reference"], rows=rows
        )

    def done(self, omitted: tuple[str, ...] = ()) -> Rendered:
        return Rendered(
            conversation=Conversation(case_id=self.case.id, turns=self.turns),
            anchors=self.anchors,
            finding_turns=self.finding_turns,
            dated_turns=self.dated_turns,
            omitted=omitted,
            reasons=self.reasons,
            decisive=self.decisive,
            reconsider=self.reconsider,
        )


def format_finding_value(f: Finding) -> str:
    """A finding's value as shown in tables and questions (its own precision, up to 4 dp)."""
    if f.value is None:
        return f.value_text or ""
    return _format_number(f.value)


@lru_cache(maxsize=1 << 16)
def _format_number(value: float) -> str:
    """``value`` at its own precision, up to 4 dp (cached: tables and items repeat it)."""
    decimals = 0 if float(value).is_integer() else len(repr(value).split(".")[1])
    return fmt_value(value, min(decimals, 4))


# Studies a radiologist reports; the rest (ECG, endoscopy, microscopy) the treating team does.
def _is_radiology(modality: str) -> bool:
    m = modality.lower() + " "
    return any(w in m for w in ("x-ray", "ct ", "mri", "ultrasound", "scintigraphy", "angiograph"))


# Who reports a study that is not radiology: (key, title, role) by a word of its name.
REPORTERS = (
    ("endoscop", ("endoscopist", "Dr.", "endoscopist")),
    ("colonoscop", ("endoscopist", "Dr.", "endoscopist")),
    ("echocardiogra", ("echo", "Dr.", "cardiologist")),
    ("microscop", ("lab", "Scientist", "laboratory scientist")),
    ("fluid analysis", ("lab", "Scientist", "laboratory scientist")),
)


def _abnormal(kb: KnowledgeBase, f: Finding) -> bool:
    """Outside its reference range, or a qualitative result the KB does not call normal."""
    if f.value is not None:
        r = f.reference_range
        return (
            r is not None
            and r.low is not None
            and r.high is not None
            and not r.low <= f.value <= r.high
        )
    lab = _first_lab_named(kb).get(f.name)
    return (
        f.value_text != PENDING
        and lab is not None
        and lab.kind == "qualitative"
        and bool(f.value_text)
        and f.value_text not in lab.normal_values
    )


def _join(items: list[str]) -> str:
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def in_sentence(name: str) -> str:
    """A name inside a sentence: lower-case, except an acronym ("NSAIDs", "ACE inhibitors")."""
    return name if name[:2].isupper() else name[:1].lower() + name[1:]


# names that keep their capital inside a sentence: eponyms and a genus
_PROPER = ("Mallory", "Wolff", "Baker", "Todd", "Clostridioides", "Staphylococcus")


def named(name: str) -> str:
    """A diagnosis or study named inside a sentence: its first word lower-cased when it is
    an ordinary capitalised word, every acronym and eponym kept ("ST-elevation myocardial
    infarction", "non-ST-elevation ...", "COVID-19 pneumonia", "Mallory-Weiss tear",
    "Clostridioides difficile infection", "chest X-ray (PA and lateral)", "12-lead ECG");
    ``name.lower()`` gave "st-elevation", "covid-19", "12-lead ecg"."""
    if name[1:2].islower() and not name.startswith(_PROPER):
        return name[:1].lower() + name[1:]
    return name


_SAMPLED_PREFIXES = tuple(SAMPLED_BY)  # names of results a procedure or non-blood sample yields


def _with_procedures(labs0: list[Finding]) -> str:
    """'admission bloods', plus the procedure that takes any body-fluid sample shown
    ('admission bloods and a diagnostic paracentesis'), so no count appears untaken."""
    names = [n for f in labs0 if (n := f.name.lower()).startswith(_SAMPLED_PREFIXES)]
    done = [
        proc for prefix, (proc, _) in SAMPLED_BY.items() if any(n.startswith(prefix) for n in names)
    ]
    return _join(["admission bloods", *dict.fromkeys(done)])


def fits_best_given(symptoms: list[str], decisive: str | None = None) -> str:
    """What the attending says the working diagnosis fits best given: the decisive
    finding the record shows (``decisive_finding``), else the presenting complaint (the
    first two symptoms, as the patient's opening turn gives them)."""
    return decisive or complaint(symptoms) or "the presentation"


def decisive_finding(cond: Condition, case: Case) -> str | None:
    """The report of the study that makes ``cond``'s diagnosis (the knowledge base marks
    it ``decisive``: a vegetation on echocardiography, a thrombus on duplex), when this
    case's record reports it; else None."""
    for f in case.findings:
        if f.kind != "imaging" or not f.value_text:
            continue
        study = next((i for i in cond.imaging if i.modality == f.name), None)
        if study is not None and study.decisive and f.value_text == study.finding:
            return finding_cited(f.value_text)
    return None


def fits_best(cond: Condition, case: Case, symptoms: list[str], result: str | None = None) -> str:
    """The attending's sentence on why the working diagnosis fits best: the decisive
    finding (a study's report, else the decisive ``result`` the record shows), with the
    presenting complaint it explains; the complaint alone where the record has neither."""
    decisive = decisive_finding(cond, case) or result
    said = f"{cond.name} fits best given {fits_best_given(symptoms, decisive)}."
    if decisive is not None and symptoms:
        said += f" It also explains {complaint(symptoms)}."
    return said


def complaint(symptoms: list[str]) -> str:
    """The presenting complaint as the attending names it (the first two symptoms)."""
    return _join(symptoms[:2])


def render(case: Case, kb: KnowledgeBase, *, seed: int = 0) -> Rendered:
    """The conversation for ``case`` (deterministic in case id and seed)."""
    rng = random.Random(f"behaviorsft-render:{seed}:{case.id}")
    cond_id = kb_condition_id(case)
    if cond_id is not None and cond_id in kb.conditions:
        return _with_omission(case, kb, cond_id, seed)
    return _render_generic(case, rng)


# The task types whose restraint controls need every required item in the record.
CARE_TYPES = ("omission_detection", "standard_of_care")


def is_control_case(case_id: str, task_type: str, every: int) -> bool:
    """Whether ``case_id`` carries the restraint control of ``task_type`` (1 case in ``every``)."""
    h = hashlib.sha1(f"{case_id}|{task_type}".encode()).digest()
    return h[0] % every == 0


def _with_omission(case: Case, kb: KnowledgeBase, cond_id: str, seed: int) -> Rendered:
    """The full record, or the same record with one standard-of-care item genuinely left out.

    The item is drawn per case from (seed, case id) among all the condition's items, so
    that across cases every item that can be verified absent is the missing one in
    proportion (were only the items a full record never shows ever missing, their names
    alone would mark the key). A lab item's rows are not shown; no item left out is
    documented. The item is kept only if the whole record then shows it nowhere, under
    any name, no turn names its tests, and it applies to this patient; otherwise the
    next one drawn is tried. A case that carries an omission or standard-of-care control
    leaves out only an item naming nothing the record could show (a score documented):
    its control lists such an item on the note's word, and needs every test shown.

    The full record is rendered only when no item can be left out: what an item names
    is the lexicon's reading of its text, not the record's, and each rendering draws
    from its own generator seeded by (seed, case id), so the order does not change
    either record (rendering it first cost a second rendering in seven cases in ten).
    """
    from behaviorsft.build.record_index import NEGATIVE, RecordIndex, lexicon
    from behaviorsft.build.tasks.common import CONTROL_EVERY
    from behaviorsft.build.tasks.omissions import check_item, foreign_care, named_concepts

    control = any(is_control_case(case.id, t, CONTROL_EVERY) for t in CARE_TYPES)
    cond = kb.condition(cond_id)
    lex = lexicon(kb)
    pick = random.Random(f"behaviorsft-omit:{seed}:{case.id}")
    # a recommendation against something ("no test of cure") is never the missing item,
    # nor is care that no other condition offers as a wrong option (its items are not
    # emitted, ``omissions.offered_wrong_elsewhere``): another item is left out instead
    _, avail = foreign_care(kb)
    given = [(m.name, m.route or "") for m in case.medications]
    items = [
        i
        for i in cond.standard_of_care
        if not NEGATIVE.search(i.item)
        and avail[i.item] > 0
        and prescribing.care_given(i.item, given)  # (no IV potassium rate without IV potassium)
    ]
    pick.shuffle(items)
    for item in items:
        named = named_concepts(item, lex)
        if control and named:
            continue
        tests: set[str] = set()
        for c in named:
            if c.kind == "test":
                tests.add(c.id)
            elif c.kind == "group":
                tests |= set(c.members)
        hide = frozenset(
            f.name
            for f in case.findings
            if f.kind == "lab" and lex.by_lab_name.get(f.name.lower()) in tests
        )
        rng = random.Random(f"behaviorsft-render:{seed}:{case.id}")
        out = _render_kb(case, kb, cond_id, rng, hide=hide, omit=item.item)
        out.index = RecordIndex.build(case, out.conversation.turns, kb)
        checked = check_item(item, out.index)
        if checked.absent and checked.required and not _names_lab(out, kb, item.ref, tests):
            return out
    full = _render_kb(case, kb, cond_id, random.Random(f"behaviorsft-render:{seed}:{case.id}"))
    full.index = RecordIndex.build(case, full.conversation.turns, kb)
    return full


def _names_lab(out: Rendered, kb: KnowledgeBase, ref: str | None, tests: set[str]) -> bool:
    """Whether any turn names one of the left-out tests, even in passing ("potassium
    chloride" in a plan that gives potassium presumes a potassium level)."""
    labs = [kb.labs[t.split(":", 1)[1]] for t in tests if t.split(":", 1)[1] in kb.labs]
    if ref is not None and ref in kb.labs:
        labs.append(kb.labs[ref])
    names = {n.lower() for lab in labs for n in (lab.name, lab.name.split(" (")[0])}
    text = "\n".join(
        [t.text for t in out.conversation.turns]
        + [" ".join(row) for t in out.conversation.turns for a in t.attachments for row in a.rows]
    ).lower()
    return any(n in text for n in names)


def _render_kb(
    case: Case,
    kb: KnowledgeBase,
    cond_id: str,
    rng: random.Random,
    *,
    hide: frozenset[str] = frozenset(),
    omit: str | None = None,
) -> Rendered:
    """The admission; lab rows named in ``hide`` and the care item ``omit`` left out."""
    cond = kb.condition(cond_id)
    b = _Builder(case, rng)
    age = int(case.demographics.age_years or 0)
    sex = case.demographics.sex
    allergic = set().union(*(allergy_groups_of(kb, a.substance) for a in case.allergies))

    given = " ".join(m.name for m in case.medications)
    memo = _checks(kb)
    allergic_key = frozenset(allergic)

    def safe(text: str) -> bool:
        # Nothing of the patient's allergy group is planned, given or cited as given, and
        # nothing presumes a drug this patient never got ("after alteplase").
        key = ("safe", text, allergic_key, given)
        got = memo.get(key)
        if got is None:
            got = memo[key] = not clashing_terms(kb, allergic, text) and not absent_drugs(
                kb, text, given
            )
        return got

    def all_shown(text: str, shown: str) -> bool:
        """``not unshown_tests(kb, text, shown)`` (cached: a case is rendered again for
        each care item it tries to leave out)."""
        key = ("shown", text, shown)
        got = memo.get(key)
        if got is None:
            got = memo[key] = not unshown_tests(kb, text, shown)
        return got

    patient = ("Patient", "patient")
    triage = b.person("triage", "Nurse", "triage nurse")
    edp = b.person("edp", "Dr.", "emergency physician")
    resident = b.person("resident", "Dr.", "medical resident")
    attending = b.person("attending", "Dr.", "attending physician")
    radiologist = b.person("radiologist", "Dr.", "radiologist")
    pharmacist = b.person("pharmacist", "Pharmacist", "clinical pharmacist")

    known = [f[len("History: ") :] for f in case.facts if f.startswith("History: ")]
    # the steps as they read for this history (a cancer-associated clot: not 3 months)
    next_actions = prescribing.steps_for_history(cond_id, cond.next_actions, " ".join(known))

    states = state_record(
        known,
        [f.value_text or "" for f in case.findings if f.kind in ("exam", "imaging")],
        next((f.value for f in case.findings if f.name == "Systolic blood pressure"), None),
    )

    is_current: dict[str, bool] = {}
    day0_values = {
        f.name.lower(): f.value for f in case.findings if f.day == 0 and f.value is not None
    }

    def current(text: str) -> bool:
        # not an item the record's severity already had done left conditional (severity.py),
        # nor a search for a disease the history names (history.known_step), nor advice for
        # a severity state the record does not show (coherence.state_shown: fulminant);
        # cached: the same actions are asked about for each part of the record
        got = is_current.get(text)
        if got is None:
            got = is_current[text] = bool(
                safe(text)
                and still_open(kb, case, cond_id, text)
                and not known_step(text, known)
                and state_shown(text, states)
                # nor advice for a state the values do not show ('if acidosis persists'
                # at pH 7.37: sources/patient.py)
                and patient_fit.premise_unmet(text, day0_values) is None
            )
        return got

    # nothing the record already did (ward_turns.advice_done): no ICU advice in intensive care
    plan_drugs = " ".join(f"{m.name} {m.drug_class or ''}" for m in case.medications)
    in_icu = _in_icu(case, [a for a in cond.treatments.actions if current(a)])
    studies = [f.name for f in case.findings if f.kind == "imaging"]
    regular = [
        f"{m.name} {m.drug_class or ''}" for m in case.medications if m.indication != cond.name
    ]
    advice = next(
        (
            a
            for a in next_actions
            if current(a)
            and consultant_advice_fits(a)
            and ward_turns.advice_done(a, icu=in_icu, plan_drugs=plan_drugs, studies=studies)
            is None
            # nor resuming or continuing a regular medicine the patient does not take
            and prescribing.untaken(a, regular) is None
        ),
        "we agree with the plan",
    )
    said_advice = surgeon_advice(advice) or advice  # the surgeon's own words for a referral
    consultant = b.person(
        "consultant", "Dr.", f"{consultant_specialty(cond.system, advice, cond_id)} consultant"
    )
    ward = b.person("ward", "Nurse", "ward nurse")
    relative = (f"Patient's {rng.choice(relatives_for(sex, age))}", "family member")

    symptoms = [f[len("Reports ") : -1] for f in case.facts if f.startswith("Reports ")]
    risks = [f[len("History: ") : -1] for f in case.facts if f.startswith("History: ")]
    onset = -(case.timeline[0].day or -1) if case.timeline else 1  # days; hours when < 1
    vitals = [f for f in case.findings if f.kind == "vital"]
    labs0 = [f for f in case.findings if f.kind == "lab" and f.day == 0 and f.name not in hide]
    labs1 = [f for f in case.findings if f.kind == "lab" and f.day == 1 and f.name not in hide]
    exam = [f.value_text or "" for f in case.findings if f.kind == "exam"]
    # A case may lack the imaging finding (a user's edit): render it without the study.
    imaging = next((f for f in case.findings if f.kind == "imaging"), None)
    home = [m for m in case.medications if m.indication != cond.name]
    plan = [m for m in case.medications if m.indication == cond.name]

    b.say(
        triage,
        f"Triage handover: {age}-year-old {sex}, {case.presentation[0].lower()}"
        f"{case.presentation[1:]}",
        f"New arrival, {age}-year-old {sex}. Complaint: {case.presentation}",
        anchor="triage",
    )
    isolated = patient_fit.isolation_at_triage(cond.treatments.actions, omit)
    if isolated is not None:  # suspected TB: masked and separated on arrival
        b.say(triage, isolated)
    # what severity brings at once is said when it was done: before the history (IM
    # adrenaline at triage), or after the orders (not after the plan it came before)
    said_when = {
        at: [x for x in statements(case) if severity.placement(x) == at]
        for at in ("arrival", "orders", "plan")
    }
    for text in said_when["arrival"]:
        b.say(edp, text)
    # a patient documented as unable to give a history: the relative gives it, in the
    # third person (sources/collateral.py)
    unable = collateral.needed_for_case(case)
    if unable is not None:
        for speaker, variants, anchor in collateral.history_turns(
            unable,
            sex=sex,
            relative=relative[0].split("'s ", 1)[1],
            onset=onset_phrase(onset),
            symptoms=symptoms,
            conditions=past_conditions(risks),
            exposures=[r for r in risks if is_exposure(r)],
            medicines=[medication_text(m) for m in home],
            more=told_as_symptom(risks),  # a symptom item with the symptoms (history.py)
            self_taken=self_taken(risks),
            allergy=(case.allergies[0].substance, case.allergies[0].reaction or "a reaction")
            if case.allergies
            else None,
            draw=random.Random(f"behaviorsft-collateral:{case.id}"),
        ):
            b.say(
                {"edp": edp, "patient": patient, "relative": relative}[speaker],
                *(patient_fit.one_home(v, risks) for v in variants),
                anchor=anchor,
            )
    else:
        b.say(
            edp,
            "Hello, I'm one of the emergency doctors. What brought you in today?",
            "Good morning. Can you tell me what has been going on?",
        )
        b.say(
            patient,
            f"For about {onset_phrase(onset)} I've had {_join(symptoms[:2])}.",
            f"It started {onset_phrase(onset)} ago: {_join(symptoms[:2])}.",
            anchor="symptoms",
        )
        b.say(edp, "Anything else you've noticed?", "Any other symptoms at all?")
        more = [*symptoms[2:], *told_as_symptom(risks)]  # "recurrent vomiting" (history.py)
        b.say(
            patient,
            f"Yes, also {_join(more)}." if more else "No, that's about it.",
            anchor="symptoms_more",
        )
        b.say(
            edp,
            "Do you have any medical conditions we should know about?",
            "What about your past medical history?",
        )
        b.say(
            patient,
            patient_fit.one_home(spoken_history(past_conditions(risks)), risks),
            anchor="history",
        )
        exposures = [r for r in risks if is_exposure(r)]  # habits and recent events: own question
        if exposures:
            b.say(edp, ward_turns.exposure_question(exposures))  # asks what the patient tells
            b.say(
                patient, patient_fit.one_home(spoken_history(exposures), risks), anchor="exposures"
            )
        b.say(edp, "Which medicines do you take regularly?", "Are you on any regular medication?")
        unprescribed = self_taken(risks)  # "the laxatives I mentioned" (history.py)
        own = f"the {_join(unprescribed)} I mentioned" if unprescribed else ""
        b.say(
            patient,
            f"I take {_join([medication_text(m) for m in home] + ([own] if own else []))}."
            if home
            else (
                f"Nothing prescribed; only {own}."
                if own
                else "None, I don't take anything regularly."
            ),
            anchor="home_meds",
        )
        b.say(edp, "Are you allergic to any medicines?", "Any drug allergies?")
        if case.allergies:
            a = case.allergies[0]
            b.say(
                patient,
                *(
                    allergy_said(a.substance, a.reaction or "")  # HIT with its story
                    or (
                        f"Yes, {in_sentence(a.substance)}: I had {a.reaction} once.",
                        f"{a.substance}. It gave me {a.reaction}.",
                    )
                ),
                anchor="allergy",
            )
        else:
            b.say(patient, "No, none that I know of.", "Not that I'm aware of.", anchor="allergy")
    # any per-kg dose needs it; a wasted patient weighs little (patient.py, dosing.py)
    kg = patient_fit.record_weight(case.id, sex, ((s.title, s.text) for s in case.sections))
    idx = b.say(
        triage,
        f"Observations at triage are in the chart; weight {kg} kg.",
        f"First set of observations below; weight {kg} kg.",
        anchor="vitals",
        attachments=[b.table("Triage observations", vitals)],
    )
    for f in vitals:
        b.finding_turns[(f.name, f.day)] = idx
    # oxygen for a saturation below 92% on air, unless the record already gives it (IM
    # adrenaline 'with high-flow oxygen') or leaves oxygen out as this record's omission
    oxygen = patient_fit.oxygen_started(
        next((f.value for f in vitals if f.name.startswith("Oxygen saturation")), None),
        [cond.name, *known],
        said_when["arrival"],
        patient_fit.oxygen_target(cond.treatments.actions),  # the plan's range (GINA 93-95%)
    )
    if oxygen is not None and not (omit and "oxygen" in omit.lower()):
        b.say(triage, oxygen)
    # an altered mental state: the capillary glucose is taken at triage (event_time.at_triage)
    bedside = [f for f in labs0 if at_triage(f.name, symptoms)]
    if bedside:
        idx = b.say(
            triage,
            "Altered mental state, so a bedside glucose at triage: "
            + _join(
                [
                    f"{in_sentence(f.name)} {format_finding_value(f)} {f.unit or ''}".rstrip()
                    for f in bedside
                ]
            )
            + ".",
            attachments=[b.table("Bedside glucose (triage)", bedside)],
        )
        for f in bedside:
            b.finding_turns[(f.name, f.day)] = idx
    # a suspected ACS: the ECG recorded and read at arrival, before any blood (event_time)
    study = imaging  # the study requested with the bloods, reported after them
    if imaging is not None and ecg_first(cond_id, imaging.name):
        at = draw_ecg_minutes(rng)
        b.say(
            edp,
            f"{imaging.name}: {imaging.value_text}. Recorded {at} minutes after arrival.",
            anchor="imaging",
        )
        study = None  # reported: not requested with the bloods
    # found signs first, each absent one in its own clause ("no X and Y" reads as neither),
    # a finding worded as what the patient does with its subject (ward_turns.exam_phrase)
    said_exam = ward_turns.exam_phrase(exam)
    b.say(edp, f"On examination: {said_exam}.", f"Examination shows {said_exam}.", anchor="exam")
    home_today = severity.outpatient(cond_id)  # treated from the ED: no admission
    # a CT head before the lumbar puncture: the CSF is taken once the CT is reported
    # (event_time.lp_after_ct), so its results come after the CT's report
    csf = [f for f in labs0 if study is not None and lp_after_ct(study.name, f.name)]
    # a sputum smear or NAAT: sent with the bloods, back after the study is reported
    after_report = [f for f in labs0 if study is not None and f not in csf and after_study(f.name)]
    # a serum tryptase: back after the plan (event_time.after_plan)
    awaited = [f for f in labs0 if f not in csf and f not in after_report and after_plan(f.name)]
    drawn = [
        f
        for f in labs0
        if f not in csf and f not in after_report and f not in awaited and f not in bedside
    ]
    bloods = severity.SAMPLE if home_today else _with_procedures(drawn + after_report + awaited)
    after = "; lumbar puncture once the CT is reported" if csf else ""
    b.say(
        edp,
        f"Let's send {bloods} and request: {study.name}{after}."
        if study
        else f"Let's send {bloods}.",
        f"{bloods[0].upper()}{bloods[1:]} please, and I'd like this study: {study.name}{after}."
        if study
        else f"{bloods[0].upper()}{bloods[1:]} please.",
        anchor="orders",
    )
    for text in said_when["orders"]:
        b.say(edp, text)

    def tables_of(found: list[Finding]) -> list[Attachment]:
        by_panel: dict[str, list[Finding]] = defaultdict(list)
        first_lab = _first_lab_named(kb)
        for f in found:
            lab = first_lab.get(f.name)
            by_panel[lab.panel if lab else "other"].append(f)
        return [b.table(f"{panel} (day 0)", fs) for panel, fs in by_panel.items()]

    def comment_on(found: list[Finding]) -> str:
        flagged = [f for f in found if _abnormal(kb, f)]
        ranged = [
            f"{f.name.lower()} {format_finding_value(f)}" for f in flagged if f.value is not None
        ]
        # a qualitative result has no reference range: it is reported as found (detected, 3+)
        worded = [f"{f.name.lower()} {format_finding_value(f)}" for f in flagged if f.value is None]
        comment = (
            f"Outside the reference range: {_join(ranged)}."
            if ranged
            else "Abnormal results: " + _join(worded) + "; the numeric results are within range."
            if worded
            else "Nothing outside the reference ranges."
        )
        if ranged and worded:
            comment += f" Also abnormal: {_join(worded)}."
        return comment

    idx = b.say(
        resident,
        *(() if home_today else ("Admission bloods are back.",)),
        "The first results are in.",
        anchor="labs",
        attachments=tables_of(drawn),
    )
    for f in drawn:
        b.finding_turns[(f.name, f.day)] = idx
    b.say(resident, comment_on(drawn), anchor="labs_comment")
    if study is not None:
        reporter = radiologist
        if not _is_radiology(study.name):
            who = next((r for w, r in REPORTERS if w in study.name.lower()), None)
            # An ECG (or anything else at the bedside) is read by the doctor who ordered it.
            reporter = b.person(*who) if who is not None else edp
        b.say(
            reporter,
            f"{study.name}: {study.value_text}.",
            f"I've reported the {named(study.name)}: {study.value_text}."
            if reporter is radiologist
            else f"{study.name}: {study.value_text}.",
            anchor="imaging",
        )
    if after_report:
        idx = b.say(
            resident,
            "The first sputum specimen is back: "
            + _join([f"{in_sentence(f.name)} {format_finding_value(f)}" for f in after_report])
            + ".",
            anchor="sputum",
            attachments=tables_of(after_report),
        )
        for f in after_report:
            b.finding_turns[(f.name, f.day)] = idx
    if csf:
        idx = b.say(
            resident,
            f"Lumbar puncture done after the {study.name if study else 'CT'}; the CSF results "
            "are back.",
            anchor="csf",
            attachments=tables_of(csf),
        )
        for f in csf:
            b.finding_turns[(f.name, f.day)] = idx
        b.say(resident, "CSF: " + comment_on(csf)[0].lower() + comment_on(csf)[1:])
    diffs = cond.differentials[:2]
    # Only what the record has shown so far is cited against a differential (the KB's
    # reason cut to the findings this patient has; none left: no reason given).
    so_far = shown_record(
        kb, [(t.text, [r for a in t.attachments for r in a.rows]) for t in b.turns]
    )
    against = []
    for d in diffs:
        reason = against_reason(kb, so_far, d)  # (build/discriminators.py)
        if reason is not None:
            b.reasons[d.name] = reason
        against.append(
            f"{d.name} is less likely given {reason}."
            if reason is not None
            else f"{d.name} is less likely on what we have so far."
        )
    if decisive_finding(cond, case) is None:
        # else a finding that sets it apart from its differentials (known COPD, purulent
        # sputum), not the complaint they share (discriminators.discriminating_result)
        b.decisive = decisive_result(kb, so_far, cond) or discriminating_result(kb, so_far, cond)
    # a known hernia is weighed against its examination (sources/surgical.py)
    hernia = surgical.hernia_reason(
        cond,
        [f for f in case.facts if f.startswith("History: ")],
        [f.value_text or "" for f in case.findings if f.kind == "exam"],
    )
    if hernia is not None and not any(surgical.HERNIA.search(d.name) for d in diffs):
        against.append(hernia)
    # a diagnosis named after a result ("hypokalaemia") with the cause the record gives
    fits = fits_best(cond, case, symptoms, b.decisive)
    cause = [c for c in [cause_sentence(cond, case, " ".join(so_far.sentences), fits)] if c]
    b.say(
        attending,
        " ".join(
            # h16-b: the presenting complaint the working diagnosis rests on, so that
            # ddx_reasoning can ask about it (``fits_best_given``).
            [fits, *cause, *against]
        ),
        anchor="ddx",
    )
    # only what the record does not show already (a criterion already met is no criterion)
    reconsider = reconsider_with(kb, so_far, diffs[0]) if diffs else None
    if diffs and reconsider is not None:
        b.reconsider = reconsider
        b.say(resident, f"What would make you reconsider {named(diffs[0].name)}?")
        b.say(
            attending,
            # said as what would change the team's mind, not as this patient's findings (an
            # excerpt may start after the question)
            f"I would reconsider {named(diffs[0].name)} with "
            f"{patient_fit.for_sex(reconsider, sex)}.",
            anchor="ddx_discriminator",
        )
    b.say(
        attending,
        f"Working diagnosis: {cond.name}.",
        f"So our working diagnosis is {named(cond.name)}.",
        anchor="diagnosis",
    )
    said_so_far = " ".join(t.text for t in b.turns)
    # none naming an organism the microbiology contradicts (coherence.organism_conflict)
    micro = [f.value_text or "" for f in case.findings if f.kind == "lab"]
    taking = " ".join(f"{m.name} {m.drug_class or ''}" for m in home)
    actions = [
        a
        for a in cond.treatments.actions
        if current(a)
        and organism_conflict(a, micro) is None
        and action_fits(a, study_reported=imaging is not None, medicines=taking)
        # no device to remove unless the record documents one
        and premise_missing(a, said_so_far) is None
    ]
    # a cause named only where the record documents it (wording.for_patient)
    actions = [s for s in (for_patient(a, said_so_far) for a in actions) if s]
    if cond_id == "acute_cholecystitis":  # the TG18 grade said, not the guideline cited
        grade = severity.tg18_grade(
            {f.name: f.value for f in labs0 if f.value is not None},
            next((f.value for f in vitals if f.name == "Systolic blood pressure"), None),
            " ".join(exam),
            imaging.value_text or "" if imaging is not None else "",
            onset,
            any("confusion" in s for s in symptoms),
        )
        actions = [a.replace("(TG18)", f"(TG18 grade {grade})") for a in actions]
    # prescribing: no 'continue X if already taking it' for an X not taken; hold clauses
    # name only the medicines held for this patient (sick-day rules)
    held = prescribing.held_names(case.facts)
    home_said = [f"{m.name} {m.drug_class or ''}" for m in home]  # 'continue/stop X' only on X
    home_pairs = [(m.name, m.drug_class or "") for m in home]  # 'stop statins': the one taken
    actions = prescribing.drop_untaken(prescribing.own_drugs(actions, home_pairs), home_said)[:2]
    potassium = next((f.value for f in labs0 if f.name == "Potassium"), None)
    actions = [prescribing.potassium_action(a, potassium) for a in actions]  # K 6.5: treated
    actions = prescribing.plan_actions(actions, held)
    actions += prescribing.cautions([(m.name, m.drug_class or "") for m in plan], age)

    def regimen(m: Medication) -> str:  # a stat dose with its regimen; a full first dose
        return prescribing.regimen_text(
            kb,
            cond_id,
            m.name,
            m.dose_value,
            m.dose_unit or "",
            m.route or "",
            m.frequency or "",
            medication_text(m),
        )

    # a dose the severity statements gave before the plan is not ordered again (severity.py)
    before_plan = said_when["arrival"] + said_when["orders"]
    regimens = [
        severity.after_given(regimen(m), m.name, m.frequency or "", before_plan) for m in plan
    ]
    actions += prescribing.basal_kept(  # the home glargine beside the IV insulin
        cond.id,
        [(m.name, m.route or "") for m in plan],
        [(m.name, m.dose or "", m.route or "", m.frequency or "") for m in home],
    )
    actions += prescribing.replaced_home(  # IV hydrocortisone for the home dose
        [(m.name, m.route or "", m.drug_class or "") for m in plan],
        [(m.name, m.dose or "", m.route or "", m.drug_class or "") for m in home],
    )
    actions += [a for a in history_steps(cond, risks) if safe(a)]  # what the history brings

    b.say(
        attending,
        "Plan: " + "; ".join(regimens + actions) + ".",
        anchor="plan",
    )
    for text in said_when["plan"]:  # done on day 0 because of the severity shown
        b.say(attending, text)
    if case.allergies:
        a = case.allergies[0]
        check = f"I've checked the plan against the {in_sentence(a.substance)} allergy; no clash."
        swap = prescribing.stand_in(kb, cond_id, [m.name for m in plan], a.substance)
        if swap is not None:  # the drug the allergy rules out, and what stands in for it
            check = check.replace("; no clash.", f": {swap}; no clash.")
    else:
        check = "No allergies recorded; doses checked against renal function."
    fitted = _fitted_doses(case, kb, cond_id, plan, age)  # weight bands, label criteria
    if fitted is not None:
        check = f"{check} {fitted[0].upper()}{fitted[1:]}"
    b.say(pharmacist, check, anchor="pharmacist")
    course = [e for e in case.timeline if e.kind in COURSE_KINDS or (e.kind == "lab" and e.day)]
    if not home_today and not any(e.kind == "consult" for e in course):  # (before the course)
        b.say(consultant, f"From our side: {said_advice}.", anchor="consultant")
    # given in the emergency department, once: a drug no severity statement already gave
    # (nothing by mouth before the swallow screen where the pathway requires one: stroke)
    swallow_first = any("dysphagia screen" in i.item for i in cond.standard_of_care)
    can = [i for i, m in enumerate(plan) if not (swallow_first and m.route == "PO")]
    k = ward_turns.first_dose_index([plan[i].name for i in can], statements(case))
    first = can[k] if k is not None else None
    b.say(
        b.person("ed_nurse", "Nurse", "emergency department nurse"),
        f"First dose of {plan[first].name.lower()} given."
        if plan and first is not None
        else "The first doses are in, as above."
        if plan
        else "Plan started.",
        anchor="first_dose",
    )
    if awaited:
        idx = b.say(
            resident,
            f"The {_join([in_sentence(f.name) for f in awaited])} sent on arrival is back: "
            + _join([f"{format_finding_value(f)} {f.unit or ''}".rstrip() for f in awaited])
            + ".",
            anchor="awaited",
            attachments=tables_of(awaited),
        )
        for f in awaited:
            b.finding_turns[(f.name, f.day)] = idx
    b.say(relative, "Is this serious? What happens now?", "Can you tell us what's going on?")
    # the review the unit gives: daily on the ward, twice-daily senior reviews in a unit
    unit = unit_of(case)
    if unit is None and ward_turns.icu_planned([b.turns[b.anchors["plan"]].text]):
        unit = "the intensive care unit"
    b.say(
        attending,
        f"We think this is {named(cond.name)}; {review_words(unit, cond_id)}.",
        anchor="family",
    )

    def repeat_labs(when: str = "Day 1") -> None:
        if not labs1:
            return
        # a culture resulting on day 1 is not a repeat
        repeats = all(f.value is not None for f in labs1)
        idx = b.say(
            resident,
            *(
                (f"{when}: repeat bloods.", f"{when}: the repeat results are back.")
                if repeats
                else (f"{when}: results are back.",)
            ),
            anchor="repeat_lab",
            attachments=[b.table("Repeat (day 1)" if repeats else "Day 1 results", labs1)],
        )
        for f in labs1:
            b.finding_turns[(f.name, f.day)] = idx
        f1 = next((f for f in labs1 if f.value is not None), labs1[0])
        f0 = next((f for f in labs0 if f.name == f1.name), None)
        if f0 is not None and f1.value is not None:
            b.say(
                attending,
                f"{f1.name} {format_finding_value(f0)} on day 0, {format_finding_value(f1)} today.",
                anchor="trend",
            )

    def overnight() -> None:
        # where the patient is: intensive care where the plan or the severity admitted them

        def icu() -> tuple[str, str]:
            return b.person("icu_nurse", "Nurse", "intensive care nurse")

        if unit is not None and not any("vasopressor" in (m.drug_class or "") for m in plan):
            b.say(
                icu() if "intensive care" in unit else ward,
                f"Overnight in {unit}: close observation, no deterioration.",
            )
        elif any("vasopressor" in (m.drug_class or "") for m in plan):
            # a patient on a vasopressor is not "stable on the ward"
            b.say(
                icu(),
                "Overnight in the intensive care unit: still on the vasopressor, observed hourly.",
            )
        else:
            b.say(ward, *ward_turns.WARD_NIGHT)  # what the ward did, no values unshown

    if home_today:  # home from the emergency department; the culture results the next day
        b.say(b.person("ed_nurse", "Nurse", "emergency department nurse"), severity.DISCHARGED)
        repeat_labs()
    elif not course:
        repeat_labs()
        overnight()
    # The hospital course in the order it happened, each event saying its day and clock
    # time (a case made before the course had times: after the first of a day, that it
    # came later that day).
    told: set[float] = set()  # days of the events told so far
    for i, ev in enumerate(course):
        if ev.day and not any(e.day for e in course[:i]):
            overnight()  # the first event after the admission day
        day = day_label(ev.day or 0, ev.clock)
        if ev.clock is None and ev.day in told:
            day = f"Later on day {ev.day:g}"
        if ev.kind == "lab" and not labs1:
            continue  # its rows left out (an omission): nothing to tell
        told.add(ev.day or 0)
        if ev.kind == "lab":
            repeat_labs(day)
        elif ev.kind == "consult":
            b.say(
                consultant,
                f"{day}: consult review. From our side: {said_advice}.",
                anchor="consultant",
            )
        elif ev.kind == "reconciliation":
            b.say(
                pharmacist,
                f"{day}: medicines reconciliation done; the regular medicines match the "
                "patient's own list" + (f"; {prescribing.held_text(held)}." if held else ".")
                if home
                else f"{day}: medicines reconciliation done; no regular medicines, as the "
                + ("patient said." if unable is None else f"{relative[0].lower()} said."),
                anchor="reconciliation",
            )
        elif ev.kind == "physiotherapy":
            # what a physiotherapist finds for this patient: the chest in a respiratory
            # illness, mobility in an older patient, a screen with no needs otherwise
            if level_of_care(case) is not None or in_icu:
                found = "physiotherapy review done; early mobilisation agreed with the unit team."
            elif cond.system == "respiratory":
                found = (
                    "chest physiotherapy review done; airway clearance and breathing "
                    "exercises taught."
                )
            elif age >= 65:
                found = "physiotherapy assessment done; a mobility plan is in place."
            else:
                found = "physiotherapy screen done; independently mobile, no needs identified."
            b.say(
                b.person("physio", "Physiotherapist", "physiotherapist"),
                f"{day}: {found}",
                anchor="physiotherapy",
            )
    # Only what this record can back is recorded as done: no test whose result it never
    # shows, nothing of the patient's allergy group.
    shown = " ".join(
        [f.name.lower() for f in case.findings if f.name not in hide]
        + ([imaging.name.lower(), imaging.value_text or ""] if imaging is not None else [])
    )
    # ...and only a claim it proves: its count, repeat, time and order (coherence.py)
    proves = claim_checker(
        kb,
        [
            (f.name, f.day, f.value_text)
            for f in case.findings
            if f.kind in ("vital", "lab", "imaging") and f.name not in hide
        ],
        [t.text for t in b.turns],
        [(f"{m.name} {m.drug_class or ''}", m.route or "") for m in case.medications],
    )
    first_day = [f.name for f in case.findings if f.day == 0]
    lab_names = [f.name for f in case.findings if f.kind == "lab"]
    given_routes = [(m.name, m.route or "") for m in case.medications]
    given_classes = [(m.name, m.drug_class or "") for m in case.medications]
    care = [
        i
        for i in cond.standard_of_care
        if i.item != omit
        and safe(i.item)
        and all_shown(i.item, shown)
        # a check "after each bolus" only where a turn shows it at that time
        and timed_check_shown(i.item, (t.text for t in b.turns))
        # and "IV potassium rate documented" only where potassium was given IV
        and route_claim_shown(i.item, (t.text for t in b.turns))
        # and "at least 3 sets of blood cultures" only where 3 sets are shown
        and count_claim_shown(i.item, first_day, lab_names)
        and prescribing.care_given(i.item, given_routes)
        # and "glucagon prescribed for people on insulin" only for a patient on insulin
        and prescribing.care_applies(i.item, (f"{n} {c}" for n, c in given_classes))
    ]
    b.anchors["care"] = len(b.turns)
    # what was done, not the rule's condition ("ABG", not "ABG if PEF/FEV1 <50%"), and
    # of a claim the record does not prove whole, the part it proves ("blood cultures")
    proved = [provable(proves, split_condition(i.item)[0]) for i in care]
    listed: set[str] = set()
    record = " ".join(t.text for t in b.turns)

    def checklist() -> None:  # said once, before the first line: the lines are day 0's
        if not listed:
            b.say(resident, CHECKLIST_INTRO)
            listed.add("")

    for item, done in zip(care, proved, strict=True):
        asked = surgical.requested(item.item)  # a test whose result the record lacks
        if asked is not None:
            checklist()
            b.say(resident, f"Requested: {asked}.")
            continue
        # a score, duration or time listed with its value, or not at all (wording.py)
        done = checklist_item(done, record) if done else None
        if not done or done in listed:
            continue
        checklist()
        listed.add(done)
        said_done = surgical.documented(done)  # "Documented: X", not "Documented: X documented"
        if said_done is not None:
            b.say(resident, said_done)
            continue
        b.say(resident, f"Documented: {done}.", f"Done and recorded: {done}.")
    # the steps after the consultant's, none that presumes an operation the record lacks
    # or belongs to the first hours (coherence.step_fits)
    said = [t.text for t in b.turns]
    steps = [
        a
        for a in next_actions
        if current(a)
        and step_fits(a, said, treatment_started=True)
        and ward_turns.advice_done(a, icu=in_icu, plan_drugs=plan_drugs, studies=studies) is None
    ]
    steps = prescribing.drop_untaken(prescribing.own_drugs(steps, home_pairs), home_said)
    if prescribing.basal_continued(cond.id, [m.name for m in home]):
        steps = [s for s in steps if not prescribing.BASAL_START.search(s)]  # already on it
    later = [a for a in steps if a != advice or home_today]  # (no consultant at home)
    # prescribing: a step that starts a drug only with the indication the record documents
    documented = prescribing.documented(risks, exam)
    steps = prescribing.due_steps(cond.id, later[:2], documented)  # never the consultant's again
    b.say(
        attending,
        f"{severity.FOLLOW_UP if home_today else 'Day 2 ward round'}. Plan: "
        + "; ".join(steps or ["continue the current plan"])
        + ".",
        anchor="next_steps",
    )
    if unable is not None and unable.kind == "aphasic":  # still struggling for words
        b.say(relative, *collateral.thanks(sex))
    else:
        b.say(patient, "Thank you, I'm feeling a little better.", "Thanks, that makes sense.")
    for t in b.turns:  # said, not cited: the KB's guideline citations stay in the KB
        if spoken(t.text) != t.text:
            t.text = spoken(t.text)
    return b.done(omitted=(omit,) if omit is not None else ())


# Said before the checklist lines, which come after the course: they are day 0's.
CHECKLIST_INTRO = "Going back over the day-0 checklist now."

_BY_NAME: dict[int, tuple[KnowledgeBase, dict[str, Lab], dict[str, list[Drug]]]] = {}


def _fitted_doses(
    case: Case, kb: KnowledgeBase, cond_id: str, plan: list[Medication], age: float
) -> str | None:
    """The pharmacist's words on the plan doses fitted to this patient (sources/dosing.py)."""
    rows = [
        (drug.id, m.name, m.dose_value, m.dose_unit or "", m.frequency or "")
        for m in plan
        if (drug := prescribing._drug_named(kb, m.name)) is not None
    ]
    sex = case.demographics.sex if case.demographics else None
    kg = patient_fit.record_weight(case.id, sex, ((s.title, s.text) for s in case.sections))
    creat = next((f.value for f in case.findings if f.name == "Creatinine" and not f.day), None)
    return dosing.pharmacist_note(rows, cond_id, kg, age, creat)


def _by_name(kb: KnowledgeBase) -> tuple[dict[str, Lab], dict[str, list[Drug]]]:
    """The KB's first test of each name, and its drugs of each name in order (cached per
    KB: rendering looks them up for every result and dose it writes)."""
    hit = _BY_NAME.get(id(kb))
    if hit is None or hit[0] is not kb:  # an id reused by a later KB
        labs: dict[str, Lab] = {}
        for lb in kb.labs.values():
            labs.setdefault(lb.name, lb)
        drugs: dict[str, list[Drug]] = {}
        for drug in kb.drugs.values():
            drugs.setdefault(drug.name, []).append(drug)
        hit = _BY_NAME[id(kb)] = (kb, labs, drugs)
    return hit[1], hit[2]


def _first_lab_named(kb: KnowledgeBase) -> dict[str, Lab]:
    """``next(lab for lab in kb.labs.values() if lab.name == name)``, by name."""
    return _by_name(kb)[0]


def _in_icu(case: Case, actions: list[str]) -> bool:
    """Whether the patient goes to intensive care: the severity's level of care, a
    vasopressor, or a plan action admitting them."""
    unit = level_of_care(case) or ""
    return (
        "intensive care" in unit
        or any("vasopressor" in (m.drug_class or "") for m in case.medications)
        or ward_turns.icu_planned(actions)
    )


# Per KB: results of the record checks ``_render_kb`` makes of KB texts (pure in the KB
# and their arguments), shared by the renders of a case and by cases alike.
_CHECKS: dict[int, tuple[KnowledgeBase, dict[tuple[object, ...], bool]]] = {}


def _checks(kb: KnowledgeBase) -> dict[tuple[object, ...], bool]:
    hit = _CHECKS.get(id(kb))
    if hit is None or hit[0] is not kb:  # an id reused by a later KB
        if len(_CHECKS) > 8:
            _CHECKS.clear()
        hit = _CHECKS[id(kb)] = (kb, {})
    if len(hit[1]) > 1 << 16:
        hit[1].clear()
    return hit[1]


def _render_generic(case: Case, rng: random.Random) -> Rendered:
    b = _Builder(case, rng)
    doctor = b.person("doctor", "Dr.", "physician")
    colleague = b.person("colleague", "Dr.", "medical resident")
    nurse = b.person("nurse", "Nurse", "nurse")
    speakers = [doctor, colleague]
    told = vignette_turns.vignette_sentences(case)
    if told:  # a written vignette: the resident presents it to the attending
        for by_resident, text, _kind in vignette_turns.presentation(told, rng):
            b.say(colleague if by_resident else doctor, text)
    elif case.presentation:
        b.say(doctor, f"Summary: {case.presentation}", anchor="presentation")
    for i, sec in enumerate(case.sections):
        if sec.title in ("MEDEC error annotation", "Source question", "FHIR import notes"):
            continue  # annotations and source questions are ground truth, not context
        if sec.title == "Sentences":
            if told:
                continue
            for line in sec.text.splitlines():
                text = line.split(" ", 1)[1] if " " in line else line
                if text.strip():
                    b.say(speakers[len(b.turns) % 2], text.strip())
            continue
        b.say(
            speakers[i % 2], f"{sec.title}: {sec.text.strip()}" if sec.text.strip() else sec.title
        )
    for fact in [] if told else case.facts:  # a vignette's facts restate its sentences
        b.say(speakers[len(b.turns) % 2], fact)
    if case.allergies:
        b.say(
            nurse,
            "Allergies: "
            + "; ".join(
                f"{a.substance}{f' ({a.reaction})' if a.reaction else ''}" for a in case.allergies
            )
            + ".",
            anchor="allergy",
        )
    if case.medications:
        b.say(
            nurse,
            "Medicines: " + "; ".join(medication_text(m) for m in case.medications[:15]) + ".",
            anchor="meds",
        )
    numeric = [f for f in case.findings if f.value is not None]
    # Most recent dates first, a few tables only: a Synthea record spans decades.
    by_date: dict[str, list[Finding]] = defaultdict(list)
    for f in numeric:
        by_date[f.time.date().isoformat() if f.time else f"day {f.day}"].append(f)
    shown_dates = sorted(by_date)[-3:]
    names = [f.name for d in shown_dates for f in by_date[d][:20]]
    for date in shown_dates:
        fs = by_date[date][:20]
        idx = b.say(nurse, f"Results from {date}.", attachments=[b.table(date, fs)])
        for f in fs:
            # Only results shown once can be asked about without ambiguity.
            if names.count(f.name) == 1:
                b.finding_turns[(f.name, f.day)] = idx
            if f.time is not None and [g.name for g in fs].count(f.name) == 1:
                b.dated_turns[(f.name, date)] = idx
    for ev in case.timeline[-TIMELINE_SHOWN:]:
        when = (
            ev.time.date().isoformat()
            if ev.time
            else (f"day {ev.day:g}" if ev.day is not None else "")
        )
        b.say(colleague, f"{when}: {ev.text}" if when else ev.text)
    if not b.turns:
        b.say(doctor, "No case details were recorded.")
    return b.done()
