"""Who gives the history: the patient, or a relative when the patient cannot.

A patient the record documents as confused (new confusion, disorientation, inattention,
asterixis, a reduced level of consciousness), drowsy, aphasic or dysarthric, with a swollen
tongue (angioedema), or too breathless to talk (respiratory rate of 30/min or more, SpO2
below 88%, talking in phrases) does not answer the history questions in fluent sentences.
``needed`` reads that off the case's complaints, examination and triage vitals; the renderer
(``build/conversation.py``) then greets the patient, who says a few words at most, and
takes the history from the relative at the bedside, who tells it in the third person.

The third-person wording is built from the structured history items (``said_of``: a
table of templates for the items a patient says in their own words, the same rules as
``wording.spoken_history`` for the rest), so the facts are the same whoever tells them.
The linter (``lint_text.py``: ``history-from-incapable-patient``) uses ``needed`` and
``HISTORY_ANSWER`` to find a patient documented as unable to give a history who gives one.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from behaviorsft.sources.history import allergy_said_of
from behaviorsft.sources.wording import is_medicine

# ----------------------------------------------------------------------------- who


@dataclass(frozen=True)
class Reason:
    """Why the patient cannot give the history: ``kind`` (confused, drowsy, aphasic,
    swollen tongue, breathless) and the record's words that show it (``shown``)."""

    kind: str
    shown: str


# Complaints and examination findings (as documented: ``wording.complaint``/``observed``)
# that leave a patient unable to give a coherent history, by kind, first kind first.
_CONFUSED = re.compile(
    r"^(?:new )?confusion$|^disorientation\b|^inattention$|^asterixis\b|^altered mental status$",
    re.I,
)
_DROWSY = re.compile(r"^drowsiness$|^drowsy\b|^reduced level of consciousness$", re.I)
_APHASIC = re.compile(r"^expressive aphasia$|^slurred speech$", re.I)
_SWOLLEN = re.compile(r"^lip and tongue swelling$|^angioedema of the lips and tongue$", re.I)
_BREATHLESS = re.compile(
    r"^unable to complete sentences$|^talks in phrases rather than sentences$", re.I
)
_KINDS = (
    ("confused", _CONFUSED),
    ("drowsy", _DROWSY),
    ("aphasic", _APHASIC),
    ("swollen tongue", _SWOLLEN),
    ("breathless", _BREATHLESS),
)
# Too breathless to talk in sentences, from the triage observations.
RR_BREATHLESS = 30.0  # /min, at or above
SPO2_BREATHLESS = 88.0  # %, below


def needed(
    symptoms: Iterable[str],
    exam: Iterable[str],
    respiratory_rate: float | None = None,
    spo2: float | None = None,
) -> Reason | None:
    """Why the patient cannot give the history (None: they can), from the documented
    complaints, examination findings and triage observations."""
    said = [*symptoms, *exam]
    for kind, pattern in _KINDS:
        hit = next((s for s in said if pattern.search(s.strip())), None)
        if hit is not None:
            return Reason(kind, hit)
    if respiratory_rate is not None and respiratory_rate >= RR_BREATHLESS:
        return Reason("breathless", f"respiratory rate {respiratory_rate:g}/min")
    if spo2 is not None and spo2 < SPO2_BREATHLESS:
        return Reason("breathless", f"SpO2 {spo2:g}%")
    return None


_RR_NAMES = ("respiratory rate",)
_SPO2_NAMES = ("oxygen saturation (pulse oximetry)", "oxygen saturation", "spo2")


def needed_for_record(case: Mapping[str, Any]) -> Reason | None:
    """``needed`` for a case as JSON (a ``Case`` dumped, as the linter reads it)."""
    symptoms = [
        str(f)[len("Reports ") :].rstrip(".")
        for f in case.get("facts") or []
        if str(f).startswith("Reports ")
    ]
    exam: list[str] = []
    rr = spo2 = None
    for f in case.get("findings") or []:
        kind, name = f.get("kind"), str(f.get("name", "")).lower()
        if kind == "exam" and f.get("value_text"):
            exam.append(str(f["value_text"]))
        elif kind == "vital" and f.get("value") is not None and not f.get("day"):
            if name in _RR_NAMES and rr is None:
                rr = float(f["value"])
            elif name in _SPO2_NAMES and spo2 is None:
                spo2 = float(f["value"])
    return needed(symptoms, exam, rr, spo2)


def needed_for_case(case: Any) -> Reason | None:
    """``needed`` for a ``records.Case``."""
    return needed_for_record(
        {
            "facts": case.facts,
            "findings": [
                {
                    "kind": f.kind,
                    "name": f.name,
                    "value": f.value,
                    "value_text": f.value_text,
                    "day": f.day,
                }
                for f in case.findings
                if f.kind in ("exam", "vital")
            ],
        }
    )


# A patient's turn that is a history answer as the renderer words one (first person), or
# any turn long enough to be fluent: what a patient unable to give a history does not say.
HISTORY_ANSWER = re.compile(
    r"\bI(?:'ve| have| take| had| was| live| smoke| drink| use| stopped| missed| recently)\b|"
    r"\bIt gave me\b|^(?:For about|It started|Yes, also|No, that's about it|Nothing major)\b|"
    r"\bnone that I know of\b|\bNot that I'm aware of\b|\bI don't take\b",
)
FLUENT_WORDS = 8  # a patient's turn of more words is a fluent sentence


def fluent_history(text: str) -> bool:
    """Whether a patient's turn gives history fluently (a history answer, or a sentence of
    more than ``FLUENT_WORDS`` words)."""
    return HISTORY_ANSWER.search(text) is not None or len(text.split()) > FLUENT_WORDS


# ----------------------------------------------------------------------------- wording

# Pronouns: S/s subject, o object, p/P possessive (capitalised at a sentence start).
_PRONOUNS = {
    "female": {"S": "She", "s": "she", "o": "her", "p": "her", "P": "Her"},
    "male": {"S": "He", "s": "he", "o": "him", "p": "his", "P": "His"},
}
_NEUTRAL = {
    "S": "The patient",
    "s": "the patient",
    "o": "the patient",
    "p": "the patient's",
    "P": "The patient's",
}


def pronouns(sex: str | None) -> dict[str, str]:
    """The pronouns a relative uses for a patient of ``sex`` (the patient's, unknown)."""
    return _PRONOUNS.get(sex or "", _NEUTRAL)


# ``wording._CHEST_INFECTION`` as a relative says it.
_CHEST_INFECTION = "{S} had a chest infection last week and finished a course of antibiotics."

# What the relative says of each history item a patient says in their own words
# (``wording.SPOKEN``): {S}/{s}/{o}/{p}/{P} pronouns, {father} the patient's father as the
# relative names him.
THIRD: dict[str, str] = {
    "birth in a high-incidence country": "{S} was born in a country where TB is common.",
    "residence in a care home": "{S} lives in a care home.",
    "residential care": "{S} lives in a care home.",
    "homelessness": "{S} has been homeless.",
    "incarceration": "{S} has been in prison.",
    "current smoking": "{S} smokes.",
    "smoking": "{S} smokes.",
    "heavy alcohol use": "{S} drinks heavily.",
    "daily heavy alcohol use": "{S} drinks heavily every day.",
    "alcohol excess": "{S} drinks too much alcohol.",
    "alcohol intake": "{S} had been drinking alcohol.",
    "alcohol use disorder": "{S} has an alcohol problem.",
    "alcohol misuse": "{S} drinks too much alcohol.",
    "alcohol": "{S} drinks quite a lot of beer.",
    "unusual exercise": "{S} had done much more exercise than usual.",
    "extreme or unaccustomed exertion": "{S} had done much more exercise than usual.",
    "missed or delayed meals": "{S} had missed a meal.",
    "missed meals": "{S} had missed a meal.",
    "reduced access to water": "{S} couldn't get enough to drink.",
    "injection drug use": "{S} injects drugs.",
    "cocaine use": "{S} uses cocaine.",
    "physical inactivity": "{S} doesn't get much exercise.",
    "poor dental health": "{P} teeth are in poor condition.",
    "dietary sodium excess": "{S} has been eating a lot of salty food.",
    "medication non-adherence": "{S} hasn't been taking {p} tablets.",
    "non-adherence to antihypertensives": "{S} stopped taking {p} blood pressure tablets.",
    "not vaccinated this season": "{S} hasn't had this season's flu vaccine.",
    "not up to date with vaccination": "{S} isn't up to date with {p} vaccinations.",
    "close contact with infectious TB": "Someone {s} lives with had infectious TB.",
    "close contact with meningococcal disease": "Someone close to {o} had meningococcal disease.",
    "recent long-haul travel": "{S} recently came back from a long-haul flight.",
    "long-distance travel": "{S} recently came back from a long-haul flight.",
    "recent sexual intercourse": "{S} recently had sexual intercourse.",
    "new sexual partner": "{S} has a new sexual partner.",
    "spermicide use": "{S} uses a spermicide.",
    "leg in a cast until last week": "{P} leg was in a cast for a broken ankle until last week.",
    "air pollution exposure": "{S} lives somewhere with a lot of air pollution.",
    "allergen or smoke exposure": "{S} was around smoke.",
    "smoke exposure": "{S} was around smoke.",
    "long smoking history": "{S} has smoked for many years.",
    "poor inhaler technique": "I'm not sure {s} uses {p} inhaler properly.",
    "poor adherence to inhaled corticosteroid": "{S} hasn't been using {p} preventer inhaler.",
    "multiparity": "{S}'s had five children.",
    "pregnancy": "{S}'s pregnant.",
    "long lie after a fall": (
        "{S} tripped on the rug at home and couldn't get up; {s} was on the floor for hours."
    ),
    "abrupt cessation of alcohol": "{S} stopped drinking suddenly a couple of days ago.",
    "insulin omission": "{S} missed {p} insulin doses.",
    "intercurrent illness without stress dosing": (
        "{S}'s been unwell and didn't increase {p} steroid dose."
    ),
    "TIPS": "{S} has a TIPS shunt.",
    "Child-Pugh class C": "The liver doctors told us {p} cirrhosis is advanced.",
    "low ascitic fluid protein (below 1.5 g/dL)": (
        "{S} was told the fluid in {p} abdomen is low in protein."
    ),
    "recent antibiotics": "{S} finished a course of antibiotics last month.",
    "abrupt withdrawal of long-term glucocorticoids": (
        "{S} stopped {p} long-term steroid tablets suddenly."
    ),
    "recent stopping of antithyroid drugs": "{S} stopped {p} thyroid tablets recently.",
    "abrupt withdrawal of clonidine": "{S} stopped {p} clonidine suddenly.",
    "recent iodinated contrast": "{S} recently had a scan with contrast dye.",
    "recent NSAID use": "{S}'s been taking ibuprofen for the last week.",
    "postoperative pain and nausea": "{S} had an operation a few days ago.",
    "viral upper respiratory infection": "{S}'s had a cold.",
    "viral respiratory infection": "{S}'s had a cold.",
    "frequent reliever use (more than one SABA canister per month)": (
        "{S} uses more than one reliever inhaler a month."
    ),
    "chemotherapy": "{S}'s having chemotherapy.",
    "leg ulcer": "{S} has a leg ulcer.",
    "recent urinary tract infection": "{S} recently had a urinary tract infection.",
    "cochlear implant": "{S} has a cochlear implant.",
    "family history of premature coronary disease": "{father} had a heart attack at 50.",
    "groin hernia": "{S} has a groin hernia.",
    "haemodialysis": "{S}'s on haemodialysis.",
    "immunosuppression": "{S}'s immunosuppressed.",
    "infection": _CHEST_INFECTION,
    "intercurrent infection": _CHEST_INFECTION,
    "recent infection": _CHEST_INFECTION,
    "insect-venom allergy": "{S}'s allergic to bee stings.",
    "previous head injury": "{S} had a head injury some years ago.",
    "laxative misuse": "{S} takes a lot of laxatives.",
    "permanent pacemaker": "{S} has a pacemaker.",
    "rapid weight loss": "{S}'s lost a lot of weight quickly on a diet.",
    "urinary tract abnormality": "{S} has a urinary tract abnormality.",
    "poor fluid intake": "{S} hasn't been drinking enough.",
    "recent diarrhoea": "{S} had a bout of diarrhoea last week.",
    "recent childbirth": "{S} gave birth recently.",
    "recent heat illness": "{S} recently had heatstroke.",
    "previous episode of hepatic encephalopathy": "{S}'s been confused from {p} liver before.",
    "previous ICU admission for asthma": "{S}'s been in intensive care with asthma before.",
    "previous stroke": "{S}'s had a stroke before.",
    "previous exacerbations": "{S}'s had flare-ups before.",
    "previous peptic ulcer": "{S}'s had a peptic ulcer before.",
    "previous adrenal haemorrhage": "{S}'s had a bleed into {p} adrenal glands before.",
    "new-onset diabetes": "{S}'s never been told {s} has diabetes.",
    "urinary catheter": "{S} has a urinary catheter.",
    "gastrointestinal bleeding": "{S}'s had some bleeding from the gut.",
    "recent ERCP": "{S} had an ERCP for a stone in {p} bile duct just before this started.",
    "previous VTE": "{S}'s had a blood clot before.",
    "previous CDI": "{S}'s had C. diff before.",
    "previous SBP": "{S}'s had an infection of the fluid in {p} abdomen before.",
    "previous Helicobacter pylori infection": (
        "{S} was treated for a stomach infection called H. pylori a few years ago."
    ),
}

# A named operation ("recent operation: total knee replacement 12 days ago").
_OPERATION = re.compile(r"^recent operation: (?P<op>.+) (?P<days>\d+) days ago$", re.I)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _father(relative: str | None, p: Mapping[str, str]) -> str:
    """The patient's father as ``relative`` names him (the father himself: "I")."""
    return {"father": "I", "mother": "My husband"}.get(relative or "", f"{p['P']} father")


def said_of(items: list[str], sex: str | None, relative: str | None = None) -> str:
    """What a relative says when asked about the patient's history: ``spoken_history``
    in the third person (conditions as "She has ...", events and exposures as told of
    the patient)."""
    if not items:
        return "Nothing major."
    p = pronouns(sex)
    said: list[str] = []
    have: list[str] = []
    for item in items:
        if item in THIRD:
            said.append(THIRD[item].format(father=_father(relative, p), **p))
        elif is_medicine(item):
            said.append(f"{p['S']} takes {re.sub(r' (?:use|therapy)$', '', item)}.")
        elif (op := _OPERATION.match(item)) is not None:  # history.operation_item
            article = "an" if op["op"][0] in "aeiou" else "a"
            said.append(f"{p['S']} had {article} {op['op']} {op['days']} days ago.")
        elif item.startswith("recent "):
            said.append(f"{p['S']} recently had {item[len('recent ') :]}.")
        elif item.startswith("previous "):
            said.append(f"{p['S']}'s had {item[len('previous ') :]} before.")
        else:
            have.append(item)
    if have:
        said.insert(0, f"{p['S']} has {_join(have)}.")
    return " ".join(said)


def symptoms_of(onset: str, symptoms: list[str], sex: str | None) -> str:
    """The relative's account of the presenting complaint ("For about 4 days she's had
    confusion and drowsiness."); a complaint that is no noun ("unable to complete
    sentences") as what the patient has been."""
    p = pronouns(sex)
    nouns = [s for s in symptoms if not s.startswith("unable ")]
    states = [s for s in symptoms if s.startswith("unable ")]
    parts = ([f"had {_join(nouns)}"] if nouns else []) + (
        [f"been {_join(states)}"] if states else []
    )
    return f"For about {onset} {p['s']}'s {' and '.join(parts) or 'been unwell'}."


def medicines_of(names: list[str], sex: str | None, self_taken: Sequence[str] = ()) -> str:
    """The relative's answer on the regular medicines (``names``: as the record words them;
    ``self_taken``: what the patient takes unprescribed, "laxatives")."""
    p = pronouns(sex)
    own = f"the {_join(list(self_taken))} I mentioned" if self_taken else ""
    if not names:
        if own:
            return f"Nothing prescribed; only {own}."
        return f"None, {p['s']} doesn't take anything regularly."
    return f"{p['S']} takes {_join([*names, own] if own else names)}."


# What a relative sees of the reason the patient cannot talk, when the complaint does not
# already say it (round 12, 53-000525: "No, that's about it" beside a swollen tongue).
_SEEN: dict[str, tuple[re.Pattern[str], str]] = {
    "swollen tongue": (re.compile(r"swell|angioedema", re.I), "{p} lips and tongue swelled up"),
    "confused": (re.compile(r"confus|muddl|disorient", re.I), "{s}'s been confused"),
    "drowsy": (re.compile(r"drows|conscious", re.I), "{s}'s been very drowsy"),
}


def seen(reason: Reason, symptoms: Sequence[str], sex: str | None) -> str | None:
    """What the relative adds of the ``reason`` the patient cannot give a history, or None
    when the complaint (``symptoms``) says it already or it is not seen as a symptom."""
    hit = _SEEN.get(reason.kind)
    if hit is None or any(hit[0].search(s) for s in symptoms):
        return None
    return hit[1].format(**pronouns(sex))


def other_symptoms(more: Sequence[str], seen_: str | None) -> str:
    """The relative's answer to "any other symptoms?"."""
    if not more and seen_ is None:
        return "No, that's about it."
    if not more:
        return f"Yes, {seen_}."
    return f"Yes, also {_join(list(more))}" + (f"; and {seen_}." if seen_ else ".")


def allergy_of(substance: str, reaction: str, sex: str | None) -> tuple[str, str]:
    """Two wordings of the relative's answer on a drug allergy."""
    p = pronouns(sex)
    lower = substance if substance[:2].isupper() else substance[:1].lower() + substance[1:]
    return (
        f"Yes, {lower}: {p['s']} had {reaction} once.",
        f"{substance}. It gave {p['o']} {reaction}.",
    )


# What the doctor says turning from the patient to the relative, by the reason.
_TURN_TO: dict[str, str] = {
    "confused": "{S} seems too muddled to tell me much.",
    "drowsy": "{S} is too drowsy to tell me much.",
    "aphasic": "{S} is struggling to get the words out.",
    "swollen tongue": "{S} can barely talk with that swelling.",
    "breathless": "{S} is too breathless to talk much.",
}
# What the patient manages to say, by the reason: a few words.
PATIENT_SAYS: dict[str, tuple[str, str]] = {
    "confused": ("Not sure... I'm all muddled.", "I don't know... what day is it?"),
    "drowsy": ("Mm... so tired...", "Just... let me sleep."),
    "aphasic": ("I... can't... the words...", "Can't... get it... out."),
    "swollen tongue": ("Tongue's... so swollen...", "Can't... talk... properly."),
    "breathless": ("Can't... catch... my breath.", "So... breathless..."),
}


def turn_to_relative(reason: Reason, sex: str | None, relative: str) -> tuple[str, str]:
    """Two wordings of the doctor asking ``relative`` (their word: "daughter") for the
    history, saying why."""
    p = pronouns(sex)
    why = _TURN_TO[reason.kind].format(**p)
    whose = "the patient's" if p is _NEUTRAL else p["p"]
    return (
        f"{why} You're {whose} {relative}? Can you tell me what has been going on?",
        f"{why} Are you {whose} {relative}? What has been happening?",
    )


def pmh_questions(sex: str | None) -> tuple[str, str]:
    p = pronouns(sex)
    return (
        f"Does {p['s']} have any medical conditions we should know about?",
        f"What about {p['p']} past medical history?",
    )


def medicine_questions(sex: str | None) -> tuple[str, str]:
    p = pronouns(sex)
    return (
        f"Which medicines does {p['s']} take regularly?",
        f"Is {p['s']} on any regular medication?",
    )


def allergy_questions(sex: str | None) -> tuple[str, str]:
    p = pronouns(sex)
    return (f"Is {p['s']} allergic to any medicines?", "Any drug allergies?")


# The doctor's question on habits and recent events asked of a relative, by the kind
# (``ward_turns.EXPOSURE_KINDS``), and the fallback.
THIRD_QUESTIONS: dict[str, str] = {
    "habit": "Does {s} smoke, drink alcohol or use any drugs?",
    "recent": (
        "Has anything happened to {o} recently: an illness, an operation, travel, contact "
        "with someone ill or a change in {p} medicines?"
    ),
    "sexual": "Any new sexual partner or recent sexual contact that you know of?",
    "contraception": "What does {s} use for contraception?",
    "trigger": "Did anything set this off: a missed or stopped medicine, something {s} ate or did?",
    "lifestyle": "How active is {s}, and has {p} weight changed lately?",
    "vaccination": "Are {p} vaccinations up to date?",
    "living": "Where is {s} living at the moment, and how does {s} manage there?",
    "origin": "Where was {s} born?",
    "intake": "Has {s} been eating and drinking normally?",
    "obstetric": "Has {s} had any children?",
    "pregnancy": "Could {s} be pregnant?",
}
THIRD_FALLBACK = "Anything about {p} habits, {p} home or recent events we should know?"


def exposure_question_of(kinds: list[str], sex: str | None) -> str:
    """The exposure question for ``kinds`` (``ward_turns.exposure_kinds``) asked of a
    relative."""
    p = pronouns(sex)
    if not kinds:
        return THIRD_FALLBACK.format(**p)
    return " ".join(THIRD_QUESTIONS[k].format(**p) for k in kinds)


def asked_of_relative(text: str) -> list[str] | None:
    """The kinds a doctor's turn asks a relative about (None: no such exposure question)."""
    got = [
        k
        for k, q in THIRD_QUESTIONS.items()
        if any(q.format(**p) in text for p in (*_PRONOUNS.values(), _NEUTRAL))
    ]
    if got:
        return got
    fallback = any(THIRD_FALLBACK.format(**p) in text for p in (*_PRONOUNS.values(), _NEUTRAL))
    return [] if fallback else None


# ----------------------------------------------------------------------------- turns

# A turn of the history as the renderer says it: who ("edp", "patient", "relative"), its
# wordings (one drawn) and its anchor.
HistoryTurn = tuple[str, tuple[str, ...], str | None]


def history_turns(
    reason: Reason,
    *,
    sex: str | None,
    relative: str,
    onset: str,
    symptoms: list[str],
    conditions: list[str],
    exposures: list[str],
    medicines: list[str],
    allergy: tuple[str, str] | None,
    draw: random.Random,
    more: Sequence[str] = (),
    self_taken: Sequence[str] = (),
) -> list[HistoryTurn]:
    """The history taken from ``relative`` (their word: "daughter") for a patient who cannot
    give it: the doctor greets the patient, who manages a few words, turns to the
    relative and asks the usual questions about the patient; the same facts, in the
    third person (anchors as for a history the patient gives). ``more``: symptoms the
    history items hold ("vomiting on and off ...": ``history.told_as_symptom``), told with
    the other symptoms, as is what the relative can see (``seen``: the swollen tongue);
    ``self_taken``: what the patient takes unprescribed (``history.self_taken``).

    The turns a history the patient gives lacks (the patient's words, the doctor turning
    to the relative) are worded by ``draw``, so that the renderer's own stream draws as
    many wordings as for that history and the rest of the record reads the same."""
    from behaviorsft.build.ward_turns import exposure_kinds

    turns: list[HistoryTurn] = [
        (
            "edp",
            (
                "Hello, I'm one of the emergency doctors. What brought you in today?",
                "Good morning. Can you tell me what has been going on?",
            ),
            None,
        ),
        ("patient", (draw.choice(PATIENT_SAYS[reason.kind]),), None),
        ("edp", (draw.choice(turn_to_relative(reason, sex, relative)),), None),
        (
            "relative",
            (
                symptoms_of(onset, symptoms[:2], sex),
                f"It started {onset} ago: {_join(symptoms[:2])}."
                if symptoms[:2]
                else symptoms_of(onset, [], sex),
            ),
            "symptoms",
        ),
        ("edp", ("Anything else you've noticed?", "Any other symptoms at all?"), None),
        (
            "relative",
            (other_symptoms([*symptoms[2:], *more], seen(reason, symptoms, sex)),),
            "symptoms_more",
        ),
        ("edp", pmh_questions(sex), None),
        ("relative", (said_of(conditions, sex, relative),), "history"),
    ]
    if exposures:
        turns += [
            ("edp", (exposure_question_of(exposure_kinds(exposures), sex),), None),
            ("relative", (said_of(exposures, sex, relative),), "exposures"),
        ]
    turns += [
        ("edp", medicine_questions(sex), None),
        ("relative", (medicines_of(medicines, sex, self_taken),), "home_meds"),
        ("edp", allergy_questions(sex), None),
        (
            "relative",
            (allergy_said_of(*allergy, pronouns(sex)) or allergy_of(*allergy, sex))
            if allergy is not None
            else ("No, none that I know of.", "Not that I'm aware of."),
            "allergy",
        ),
    ]
    return turns


def thanks(sex: str | None) -> tuple[str, str]:
    """The relative's thanks at the day-2 ward round, for a patient still short of words."""
    p = pronouns(sex)
    return (f"Thank you. {p['S']} seems a little better today.", "Thanks, that makes sense.")


# A relative's turn that speaks of the patient ("She has ...", "It gave him ...").
THIRD_PERSON = re.compile(r"\b(?:she|he|her|his|him)\b|\bthe patient\b", re.I)


def told_by_relative(turns: Iterable[tuple[str, str]]) -> bool:
    """Whether a conversation's history was told by a relative: some lay turn ((role,
    text) pairs) other than the patient's speaks of the patient in the third person.
    The patient's few words and the relative's account are then told apart by their
    voice alone, so neither is a fair wrong option for the other (tasks/integrity.py)."""
    return any(
        role in ("family member", "relative", "caregiver") and THIRD_PERSON.search(text)
        for role, text in turns
    )
