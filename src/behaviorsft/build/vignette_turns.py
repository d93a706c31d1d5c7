"""A written vignette (MEDEC note, MedQA/MediQ case) told as a ward-round presentation.

The resident presents the case to the attending in turns the size of a note section (the
presenting complaint and its history; the background: past history, medicines, social and
family history; the examination and vital signs; the results; the assessment and plan),
and the attending asks a short question before each section after the first. The source's
sentences keep their order and their words: a section starts where a sentence of another
kind starts one, a sentence that no cue places stays in the section before it, and a
sentence never leaves the turn of the one before it when that one is unfinished (a lab
header such as "Serum" or "Laboratory studies show:", or a list row with no full stop), so
no sentence and no header is split from what follows it. The whole note is never read out
twice (there is no summary turn).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from behaviorsft.records import Case

# Kinds of section, in the order a note gives them.
PRESENTING, BACKGROUND, EXAM, RESULTS, PLAN = (
    "presenting",
    "background",
    "exam",
    "results",
    "plan",
)

# Cues of each kind, tried in this order (a sentence naming a test result is a result
# even when it also says "diagnosed"; "diagnosed with" a past condition is background).
_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        PLAN,
        re.compile(
            r"\b(is|was|were|are) (started|treated|given|administered|prescribed|scheduled|"
            r"referred|admitted|discharged|counsel+ed|recommended|advised|managed|"
            r"initiated|performed on|taken to the operating)\b|\bdiagnosis (of|is)\b|"
            r"\b(is|was) (then )?diagnosed\b|\bthe (patient|physician) (is|was) "
            r"(started|given)|\b(recommend|prescrib|administ)\w*\b.*\b(therapy|treatment)\b|"
            r"^(treatment|management|therapy) (with|of|is|was)\b|\bsuspected (of|to)\b|"
            r"\bthe patient (is|was) (started|given|prescribed|treated|scheduled)\b",
            re.I,
        ),
    ),
    (
        RESULTS,
        re.compile(
            r"\b(laboratory|lab|labs|serum|plasma|urinalysis|urine (studies|toxicology|"
            r"drug)|hemoglobin|haemoglobin|leukocyte|platelet|hematocrit|creatinine|"
            r"x-ray|radiograph|ct scan|\bct\b|mri|ultrasound|ultrasonography|sonograph|"
            r"ecg|ekg|electrocardiogra|echocardiogra|biopsy|culture|gram stain|"
            r"arterial blood gas|cerebrospinal|lumbar puncture|smear|titer|titre|"
            r"assay|antibod|imaging|scan|endoscop|colonoscop|spirometr|test(s|ing)? "
            r"(show|reveal|indicate|confirm|is|are|was|were)|(mg|g|meq|mmol|u|iu|ng|pg)/"
            r"(dl|l|ml)|/mm3|/mm\u00b3)\b",
            re.I,
        ),
    ),
    (
        EXAM,
        re.compile(
            r"\b(temperature|pulse|blood pressure|respirations|respiratory rate|heart rate|"
            r"oxygen saturation|pulse oximetry|vital signs|examination|exam|on palpation|"
            r"auscultation|appears|looks (ill|well|uncomfortable)|is alert|oriented|"
            r"tender(ness)?|murmur|rales|crackles|wheez\w*|bowel sounds|reflexes|"
            r"percentile|bmi|body mass index|mm hg)\b",
            re.I,
        ),
    ),
    (
        BACKGROUND,
        re.compile(
            r"\b(history of|medical history|past history|has (had )?(a )?(type [12] )?"
            r"(diabetes|hypertension|asthma|hyperlipid\w*)|medications?|takes|taking|"
            r"smok\w*|cigarettes?|pack-years?|drinks|alcohol|illicit|drug use|works as|"
            r"lives (with|alone)|family history|mother|father|sister|brother|married|"
            r"immuniz\w*|vaccinat\w*|menarche|menstrual|sexually active|allerg\w*|"
            r"surgery (at|in|for)|underwent|was (born|delivered))\b",
            re.I,
        ),
    ),
)

# What the attending asks before a section of each kind (one is drawn per turn).
PROMPTS: dict[str, tuple[str, ...]] = {
    PRESENTING: ("Go on.", "Anything else in the history?", "And then?"),
    BACKGROUND: (
        "What's the background?",
        "Any past history, medicines or social history?",
        "Anything relevant in the background?",
    ),
    EXAM: (
        "What did you find on examination?",
        "How were the vitals and the examination?",
        "And on examination?",
    ),
    RESULTS: ("What have the tests shown?", "Any results back?", "What did the workup show?"),
    PLAN: ("What's the assessment and plan?", "What was decided?", "So what's the plan?"),
}
OPENERS = (
    "Who's next?",
    "Let's hear the next patient.",
    "Go ahead with the next case.",
)

_CLOSED = re.compile(r"[.!?][\"')\]]*$")


# A sentence about the past ("One week ago, she was diagnosed with ... and started on
# ...") is history, whatever treatment it names.
_PAST = re.compile(
    r"\b(ago|previously|prior to|earlier|last (week|month|year)|in the past|"
    r"at the age of|as a child|since (childhood|birth))\b",
    re.I,
)


def kind(sentence: str) -> str | None:
    """The kind of section ``sentence`` opens, or None where no cue places it."""
    for name, cue in _CUES:
        if cue.search(sentence):
            if name == PLAN and _PAST.search(sentence):
                continue
            return name
    return None


def unfinished(sentence: str) -> bool:
    """Whether ``sentence`` needs the one after it: a header ("Serum", "Laboratory studies
    show:") or a row of a list with no closing full stop ("Hemoglobin 14.1 g/dL")."""
    return not _CLOSED.search(sentence.strip())


def sections(sentences: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The sentences grouped into sections in their order: ``(kind, sentences)`` each.

    A section starts where a sentence of another kind than the current section's starts
    one, unless the sentence before it is unfinished (it then stays with it)."""
    out: list[tuple[str, list[str]]] = []
    for raw in sentences:
        text = raw.strip()
        if not text:
            continue
        found = kind(text)
        if not out:  # the opening sentence presents the patient, whatever it names
            out.append((PRESENTING, [text]))
            continue
        current, body = out[-1]
        if unfinished(body[-1]) or found is None or found == current:
            body.append(text)
        else:
            out.append((found, [text]))
    return out


def joined(sentences: Sequence[str]) -> str:
    """One turn's sentences as spoken: a space after a closed sentence or a header, "; "
    between the rows of a list ("Hemoglobin 14.1 g/dL; Platelets 250,000/mm3") and a full
    stop after a list's last row."""
    text = ""
    prev = ""
    for s in sentences:
        if not text:
            text = s
        elif unfinished(prev) and _row(prev):
            text = f"{text}{'; ' if _row(s) or _header(s) else '. '}{s}"
        else:
            text = f"{text} {s}"
        prev = s
    return text


# A list row: a test name then a number ("Na+ 137 mEq/L", "Leukocyte count 11,000/mm3").
_ROW = re.compile(r"^[A-Za-z][\w+\-(),/ ]{0,40}?\s[<>]?\d")


def _row(sentence: str) -> bool:
    return bool(_ROW.match(sentence)) and len(sentence.split()) <= 8


def _header(sentence: str) -> bool:
    """A list's header: one word ("Serum", "Urine") or words ending in a colon."""
    return unfinished(sentence) and (len(sentence.split()) == 1 or sentence.endswith(":"))


def presentation(
    sentences: Sequence[str], rng: random.Random
) -> list[tuple[bool, str, str | None]]:
    """The turns of the presentation: ``(by_resident, text, kind)`` each, the attending's
    prompts (``by_resident`` False, kind None) between the resident's sections."""
    turns: list[tuple[bool, str, str | None]] = [(False, rng.choice(OPENERS), None)]
    for i, (name, body) in enumerate(sections(sentences)):
        if i:
            turns.append((False, rng.choice(PROMPTS[name]), None))
        turns.append((True, joined(body), name))
    return turns


_SENTENCE_END = re.compile(r"(?<=[a-z0-9)%\]][.!?])\s+(?=[A-Z(\"'])")


def split_sentences(text: str) -> list[str]:
    """A vignette split into sentences at a full stop (or ?!) after a word, a number or a
    bracket and before a capital ("... 37.8 C (100 F). Her pulse ..."); decimals, "mm Hg"
    and "vs." inside a sentence stay."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


# Sources whose presentation is a written vignette told this way (MEDEC carries its
# sentences in a "Sentences" section; a MediQ case's presentation is its MedQA vignette,
# which reads better than its atomic facts, one per line).
VIGNETTE_SOURCES = frozenset({"medec", "mediq"})


def vignette_sentences(case: Case) -> list[str]:
    """The sentences of ``case``'s vignette, in order, or [] for a case of another kind."""
    if case.source is None or case.source.name not in VIGNETTE_SOURCES:
        return []
    for sec in case.sections:
        if sec.title == "Sentences":
            return [
                (line.split(" ", 1)[1] if " " in line else line).strip()
                for line in sec.text.splitlines()
                if line.strip() and (line.split(" ", 1)[1] if " " in line else line).strip()
            ]
    return split_sentences(case.presentation or "")
