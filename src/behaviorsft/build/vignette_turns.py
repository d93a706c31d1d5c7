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

The attending's question fits what the section holds (``prompt``): the vital signs, the
examination or both; a diagnosis, a decision or both; a later reassessment gets its time
("Four days later?"), and a kind of section asked for before gets "anything else" rather
than the same question twice. A MEDEC note puts its diagnosis or treatment sentence where
MEDEC inserted it, sometimes before the examination or the results it rests on
(``clinical_order``): that sentence is told after them, at the end of its episode (the
part of the note before a later reassessment). A sentence citing an image that is never
shown ("A photograph of the lesion is shown.") is left out, and a citation inside a
sentence that states the finding ("... as shown in Figure A") is cut from it
(``without_images``); ``image_unshown`` tells the task builder that a note rested on such
an image, so that its items are left out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence

from behaviorsft.records import Case

# Kinds of section, in the order a note gives them.
PRESENTING, BACKGROUND, EXAM, RESULTS, PLAN, FOLLOW_UP = (
    "presenting",
    "background",
    "exam",
    "results",
    "plan",
    "follow-up",
)

# Cues of each kind, tried in this order (a sentence naming a test result is a result
# even when it also says "diagnosed"; "diagnosed with" a past condition is background).
_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        PLAN,
        re.compile(
            r"\b(is|was|were|are) (started|treated|given|administered|prescribed|scheduled|"
            r"referred|admitted(?! for)|discharged|counsel+ed|recommended|advised|managed|"
            r"initiated|performed on|taken to the operating)\b|\bdiagnosis (of|is)\b|"
            r"\b(is|was) (then )?diagnosed\b|\bthe (patient|physician) (is|was) "
            r"(started|given)|\b(recommend|prescrib|administ)\w*\b.*\b(therapy|treatment)\b|"
            r"^(treatment|management|therapy) (with|of|is|was)\b|\bsuspected (of|to)\b|"
            r"\bthe patient (is|was) (started|given|prescribed|treated|scheduled)\b|"
            r"\b(is|was|were) (reassured|encouraged|instructed|discontinued|switched|"
            r"ordered)\b|"
            r"\b(section|version|surgery|repair|resection|excision|drainage|transfusion|"
            r"intubation|\w+ectomy|\w+otomy|\w+plasty) (is|was|were) (performed|done|"
            r"scheduled|planned)\b",
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
            r"(diabetes|hypertension|asthma|hyperlipid\w*)|medications?|"
            r"(takes|taking)(?! (short|small|long|slow|a) )|"
            r"smok\w*|cigarettes?|pack-years?|drinks|alcohol|illicit|drug use|works as|"
            r"lives (with|alone)|family history|mother|father|sister|brother|married|"
            r"immuniz\w*|vaccinat\w*|menarche|menstrual|sexually active|allerg\w*|"
            r"surgery (at|in|for)|underwent|was (born|delivered))\b",
            re.I,
        ),
    ),
)

# What the attending asks before a section, by what the section holds (one is drawn per
# turn): an examination section holds the vital signs, the examination or both, a plan
# section a diagnosis, a decision or both.
VITALS, EXAMINATION, VITALS_EXAM = "vitals", "examination", "vitals and examination"
DIAGNOSIS, DECISION, ASSESSMENT = "diagnosis", "decision", "assessment and plan"
PROMPTS: dict[str, tuple[str, ...]] = {
    PRESENTING: ("Go on.", "Anything else in the history?", "And then?"),
    BACKGROUND: (
        "What's the background?",
        "Any past history, medicines or social history?",
        "Anything relevant in the background?",
    ),
    VITALS: ("What were the vitals?", "And the vital signs?", "How were the observations?"),
    EXAMINATION: (
        "What did you find on examination?",
        "And on examination?",
        "What did the examination show?",
    ),
    VITALS_EXAM: ("How were the vitals and the examination?", "Vitals and examination?"),
    RESULTS: ("What have the tests shown?", "Any results back?", "What did the workup show?"),
    DIAGNOSIS: ("What's the diagnosis?", "What do you think is going on?", "So what is it?"),
    DECISION: ("So what's the plan?", "What was done?", "How was it managed?"),
    ASSESSMENT: ("What's the assessment and plan?", "So what's the impression and plan?"),
}
# The family of each prompt: a family asked about before gets one of these instead, never
# the same question twice ("And on examination?" after a reassessment).
FAMILY = {
    PRESENTING: PRESENTING,
    BACKGROUND: BACKGROUND,
    VITALS: EXAM,
    EXAMINATION: EXAM,
    VITALS_EXAM: EXAM,
    RESULTS: RESULTS,
    DIAGNOSIS: DIAGNOSIS,
    DECISION: DECISION,
    ASSESSMENT: DECISION,
}
AGAIN: dict[str, tuple[str, ...]] = {
    PRESENTING: ("Go on.", "And then?"),
    BACKGROUND: ("Anything else in the background?",),
    EXAM: ("Anything else on examination?", "And the rest of the examination?"),
    RESULTS: ("Any other results?", "What else came back?"),
    DIAGNOSIS: ("And the diagnosis?", "What was the final diagnosis?"),
    DECISION: ("What else was done?", "And then?"),
}
OPENERS = (
    "Who's next?",
    "Let's hear the next patient.",
    "Go ahead with the next case.",
)

_CLOSED = re.compile(r"[.!?][\"')\]]*$")


# A sentence about the past ("One week ago, she was diagnosed with ... and started on
# ...", "She had a blood pressure of 148/94 mm Hg on her previous visit") is history,
# whatever treatment, vital sign or test it names.
_PAST = re.compile(
    r"\b(ago|yesterday|previously|prior to|earlier|last (week|month|year|visit)|in the past|"
    r"previous (visit|examination|admission)|at the age of|as a (child|teenager)|history|"
    r"recently|during (infancy|childhood)|"
    r"since (childhood|birth))\b",
    re.I,
)
_NOW = re.compile(r"\b(now|currently|today|on arrival|at this visit)\b", re.I)
# A later reassessment: a sentence opening with the time since what came before ("Four
# days later, ...", "The next day, ...", "After 1 hour of treatment, ...").
_LATER = re.compile(
    r"^((about |approximately |over the next |within )?[\w-]+ (minutes?|hours?|days?|weeks?|"
    r"months?|years?) (later|after (admission|the \w+|\w+ing)|following)|"
    r"(the )?next (day|morning|week)|the following (day|morning|week|night)|"
    r"later (that|the same) (day|night|evening)|on (the )?(second|third|fourth|fifth|"
    r"sixth|seventh|next) (day|night|visit|postoperative day)|on (hospital|postoperative) day "
    r"\d+|after (\w+ ){0,3}(minutes?|hours?|days?|weeks?)( of (\w+ )?(treatment|therapy|"
    r"observation))?|at (the|a|her|his) follow-up( (visit|examination))?|"
    r"(she|he|the patient) (returns|comes back|is seen again)\b)\b",
    re.I,
)
_EXAM_OPENS = re.compile(
    r"^(on|upon) (physical )?exam(ination)?\b|^(physical|cardiac|cardiopulmonary|pulmonary|"
    r"abdominal|neurologic\w*|pelvic|skin|general) exam(ination)?\b",
    re.I,
)
# Cues of what an examination or a plan section holds (for its prompt).
_VITAL = re.compile(
    r"\b(temperature|pulse|blood pressure|respirations|respiratory rate|heart rate|"
    r"oxygen saturation|pulse oximetry|vital signs|bmi|body mass index|mm hg|weighs|"
    r"percentile)\b",
    re.I,
)
_EXAMINED = re.compile(
    r"\b(examination|exam|on palpation|palpat\w*|auscultation|appears|looks|is alert|"
    r"oriented|tender(ness)?|murmur|rales|crackles|wheez\w*|bowel sounds|reflexes|"
    r"inspection|swelling|rash|lesions?|mass|distended|soft|clear|shows|notable)\b",
    re.I,
)
_DIAGNOSED = re.compile(
    r"\bdiagnos(is|ed|e)\b|\bsuspected (of|to)\b|\b(is|was) suspected\b|"
    r"\bconsistent with\b|\bimpression\b",
    re.I,
)
_DECIDED = re.compile(
    r"\b(started|treated|treatment|given|administered|prescribed|scheduled|referred|"
    r"admitted|discharged|counsel+ed|recommended|advised|managed|initiated|performed|"
    r"begun|therapy|plan|operating|surgery|drainage|ordered)\b",
    re.I,
)


def kind(sentence: str) -> str | None:
    """The kind of section ``sentence`` opens, or None where no cue places it."""
    if _LATER.match(sentence):
        return FOLLOW_UP
    if _EXAM_OPENS.match(sentence):  # "On examination, she ... ECG leads": the exam
        return EXAM
    for name, cue in _CUES:
        if cue.search(sentence):
            if name == PLAN and _PAST.search(sentence):
                continue  # "diagnosed 8 months ago and currently undergoing treatment"
            if name in (EXAM, RESULTS) and _PAST.search(sentence) and not _NOW.search(sentence):
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
    one, unless the sentence before it is unfinished (it then stays with it). A later
    reassessment ("Four days later, ...") keeps the history and examination that follow it
    in its own section; its results, diagnosis and plan start sections of their own."""
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
        if (
            (unfinished(body[-1]) and not (found == PLAN and _row(body[-1])))
            or found is None
            or found == current
            or (current == FOLLOW_UP and found in (BACKGROUND, EXAM))
        ):
            body.append(text)
        else:
            out.append((found, [text]))
    return out


def _episodes(sentences: Sequence[str]) -> list[list[str]]:
    """The sentences cut before each later reassessment ("Four days later, ...")."""
    out: list[list[str]] = []
    for s in sentences:
        if not out or (_LATER.match(s) and not unfinished(out[-1][-1])):
            out.append([])
        out[-1].append(s)
    return out


# A sentence whose time is the one before it ("At that time, her HbA1c was 8.8%", "At
# the same visit, ..."): it stays after that sentence.
BACK_REFERENCE = re.compile(r"^At (that|the same|this) (time|visit|point)\b")


def clinical_order(sentences: Sequence[str]) -> list[str]:
    """The sentences with each diagnosis or decision told after the examination and the
    results of its episode that the note gives after it ("Diltiazem is administered." |
    "An ECG is performed ..." becomes the ECG, then diltiazem): MEDEC inserts its
    diagnosis or treatment sentence where it chose, and a decision is not made before what
    it rests on. Every sentence is kept once; only a closed sentence between two closed
    ones moves (never a list's header or row), and never across a later reassessment."""
    out: list[str] = []
    for episode in _episodes([s.strip() for s in sentences if s.strip()]):
        kinds = [kind(s) for s in episode]
        moved: list[str] = []
        for i, s in enumerate(episode):
            movable = (
                i > 0
                and kinds[i] == PLAN
                and not BACK_REFERENCE.match(s)
                and not unfinished(s)
                and not unfinished(episode[i - 1])
                and any(k in (EXAM, RESULTS) for k in kinds[i + 1 :])
            )
            (moved if movable else out).append(s)
        out += moved
    return out


def prompt(name: str, body: Sequence[str]) -> str:
    """The class of the attending's question before a section of kind ``name`` holding
    ``body``: a key of ``PROMPTS`` (a follow-up's question is its time, see ``presentation``)."""
    text = " ".join(body)
    if name == EXAM:
        vitals, examined = bool(_VITAL.search(text)), bool(_EXAMINED.search(text))
        return VITALS_EXAM if vitals and examined else VITALS if vitals else EXAMINATION
    if name == PLAN:
        diagnosed, decided = bool(_DIAGNOSED.search(text)), bool(_DECIDED.search(text))
        return ASSESSMENT if diagnosed and decided else DIAGNOSIS if diagnosed else DECISION
    return name


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
    asked: set[str] = set()
    told = sections(sentences)
    for i, (name, body) in enumerate(told):
        if i and name == PLAN and _interim(told[i + 1 :]):
            # a step before more findings (MedQA: "is given 2 L of Ringer's lactate" |
            # "Laboratory studies show ..."): not "the plan", which comes last
            q = next((q for q in INTERIM if q not in asked), "What next?")
            asked.add(q)
            turns.append((False, q, None))
        elif i:
            turns.append((False, _ask(name, body, asked, rng), None))
        turns.append((True, joined(body), name))
    return turns


# What the attending asks before a decision that more findings follow.
INTERIM = ("What was done first?", "What happened next?", "And then?")


def _interim(after: Sequence[tuple[str, list[str]]]) -> bool:
    """Whether the examination or results follow (before a later reassessment)."""
    for name, _ in after:
        if name == FOLLOW_UP:
            return False
        if name in (EXAM, RESULTS):
            return True
    return False


def _ask(name: str, body: Sequence[str], asked: set[str], rng: random.Random) -> str:
    """The attending's question before a section (``prompt``); ``asked`` holds the prompt
    families and the questions asked already (none is asked twice)."""
    if name == FOLLOW_UP:
        m = _LATER.match(body[0])
        if m is None or not re.search(r"\d|later|after|next|following|day", m.group(0), re.I):
            return "And at the follow-up?"  # "She returns 1 month later ..."
        when = re.sub(r" following$", " later", m.group(0))  # "One hour following"
        return f"{when[:1].upper()}{when[1:]}?"
    cls = prompt(name, body)
    family = FAMILY[cls]
    if family in asked:
        fresh = [q for q in (*AGAIN[family], *_ANYTHING) if q not in asked]
        out = rng.choice(fresh[:2] if fresh else _ANYTHING)
    else:
        asked.add(family)
        out = rng.choice(PROMPTS[cls])
    asked.add(out)
    return out


# Questions of any section, once those of its family are spent.
_ANYTHING = ("Anything else?", "What next?", "Go on.")


_SENTENCE_END = re.compile(r"(?<=[a-z0-9)%\]][.!?])\s+(?=[A-Z(\"'])")


def split_sentences(text: str) -> list[str]:
    """A vignette split into sentences at a full stop (or ?!) after a word, a number or a
    bracket and before a capital ("... 37.8 C (100 F). Her pulse ..."); decimals, "mm Hg"
    and "vs." inside a sentence stay."""
    parts = [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]
    if '"' not in text and "\u201c" not in text:
        return parts
    out: list[str] = []  # a quotation's sentences stay together (when it closes)
    i = 0
    while i < len(parts):
        current, j = parts[i], i + 1
        if open_quote(current):
            joined_, k = current, i + 1
            while k < len(parts) and open_quote(joined_):
                joined_, k = f"{joined_} {parts[k]}", k + 1
            if not open_quote(joined_):
                current, j = joined_, k
        out.append(current)
        i = j
    return out


# Quotation marks, a doubled one (a source's typo: '""bad kidneys”') counted once.
_QUOTE_MARKS = re.compile('["\u201c\u201d]+')


def open_quote(text: str) -> bool:
    """Whether ``text`` opens or closes a quotation it does not finish."""
    return len(_QUOTE_MARKS.findall(text)) % 2 == 1


# Sources whose presentation is a written vignette told this way (MEDEC carries its
# sentences in a "Sentences" section; a MediQ case's presentation is its MedQA vignette,
# which reads better than its atomic facts, one per line).
VIGNETTE_SOURCES = frozenset({"medec", "mediq"})


def vignette_sentences(case: Case) -> list[str]:
    """The sentences of ``case``'s vignette as told, in order, or [] for a case of another
    kind: images never shown left out (``without_images``), and a MEDEC note's diagnosis
    or decision after what it rests on (``clinical_order``)."""
    told = source_sentences(case)
    if case.source is not None and case.source.name == "medec":
        told = clinical_order(told)
    return without_images(told)


def source_sentences(case: Case) -> list[str]:
    """The sentences of ``case``'s vignette as the source gives them."""
    if case.source is None or case.source.name not in VIGNETTE_SOURCES:
        return []
    for sec in case.sections:
        if sec.title == "Sentences":
            return _closed_quotes(
                [
                    (line.split(" ", 1)[1] if " " in line else line).strip()
                    for line in sec.text.splitlines()
                    if line.strip() and (line.split(" ", 1)[1] if " " in line else line).strip()
                ]
            )
    return split_sentences(case.presentation or "")


def _closed_quotes(sentences: list[str]) -> list[str]:
    """MEDEC's sentences with a closing quotation mark that opens the next sentence ('...
    "as naturally as possible.' | '" Dilation and curettage ...') moved back to its own."""
    out = sentences[:1]
    for s in sentences[1:]:
        if s[:2] in ('" ', "\u201d ") and open_quote(out[-1]):
            out[-1], s = out[-1] + s[0], s[2:].strip()
        out.append(s)
    return out


# Images the written source showed and a dialogue cannot: a citation inside a sentence
# ("... as seen in Figure A", "(as shown in the image)", "(see exhibit)"), and a sentence
# that only says an image is shown ("A photograph of the lesion is shown.", "An ECG is
# performed as seen in Figure A.", "Physical exam is notable for the finding in Figure A.").
_IMAGE = r"(figures?|fig\.|images?|exhibits?|pictures?|photographs?|photos?)"
_CITATION = re.compile(
    rf"\s*,?\s*\(?\b(?:(?:as |is |are )?(?:seen|shown|demonstrated|displayed|depicted|"
    rf"pictured|noted) )?(?:in|on) (?:the )?{_IMAGE}(?: [A-Z0-9]\b)?"
    rf"(?: (?:and|or) (?:{_IMAGE} )?[A-Z0-9]\b)?(?: below)?\)?"
    rf"|\s*\(?\bsee (?:the )?{_IMAGE}(?: [A-Z0-9])?\)?",
    re.I,
)
# A sentence whose point is the image itself (nothing of what it shows is said): "... is
# shown (in Figure A)", "An ECG is performed as seen in Figure A", "the findings in figure
# A", "a renal angiogram shown in the picture", "the following result (see image)".
_BARE = re.compile(
    rf"\b(is|are|was|were) (shown|show|displayed|demonstrated|depicted|given|seen)\b[^.]*?"
    rf"\b(in|on) (the )?{_IMAGE}|\b(is|are) (shown|displayed|depicted)( here| below)?\s*\.?\s*$|"
    rf"\b(is|are|was|were) (performed|taken|obtained|done),? \(?(as )?(see|seen|shown)\b|"
    rf"\b(findings?|data|results?|tracings?|angiogram|x-rays?|radiographs?|scans?|ecg|"
    rf"electrocardiogram|smear|biopsy|ultrasound|mri)( seen| shown)? (in|on) (the )?{_IMAGE}|"
    rf"\bthe following (results?|findings?)\b",
    re.I,
)


def cites_image(sentence: str) -> bool:
    """Whether ``sentence`` points at an image (a figure, an exhibit, "... is shown.")."""
    return bool(_CITATION.search(sentence) or _SHOWN.search(sentence))


_SHOWN = re.compile(r"\b(is|are) (shown|displayed|depicted)( here| below)?\s*\.?\s*$", re.I)


def _unshown(s: str, nxt: str) -> str | None:
    """Sentence ``s`` without the image it cites: itself where it cites none or the image is
    a table that follows (``nxt``: "Results ... are shown." | "Pco2 16 mm Hg"), the
    sentence with the citation cut where it states the finding itself ("white patches on
    her tongue (as seen in the image)"), None where its point is the image (``_BARE``)."""
    if not cites_image(s):
        return s
    table = (_row(nxt) and unfinished(nxt)) or _header(nxt)  # a row has no full stop
    if _SHOWN.search(s) and not _CITATION.search(s) and table:
        return s
    if _BARE.search(s):
        return None
    return uncited(s)


def uncited(sentence: str) -> str:
    """``sentence`` with the image citations inside it cut ("... masses as seen in Figure
    A" reads "... masses"), as ``without_images`` tells it where it states a finding."""
    if not _CITATION.search(sentence):
        return sentence
    return re.sub(r"\s+([.,;])", r"\1", _CITATION.sub("", sentence).strip())


_CELL = " | "


def _parts(line: str) -> tuple[list[str], str]:
    """A line cut into its sentences (a MEDEC line sometimes holds two) or the cells of a
    table it holds (MediQ's "... | Hemoglobin 14.6 g/dL | ..."), and the joint."""
    if _CELL in line:
        return line.split(_CELL), _CELL
    return split_sentences(line) or [line], " "


def _told(sentences: Sequence[str]) -> Iterator[tuple[str, list[str | None], str]]:
    """Each line citing an image: the line, each of its parts without the image
    (``_unshown``; None for a part left out), and the joint of its parts."""
    for i, line in enumerate(sentences):
        if cites_image(line):
            parts, joint = _parts(line)
            after = sentences[i + 1] if i + 1 < len(sentences) else ""
            nexts = [*parts[1:], after]
            yield line, [_unshown(x, n) for x, n in zip(parts, nexts, strict=True)], joint


def without_images(sentences: Sequence[str]) -> list[str]:
    """``sentences`` with each image citation cut, and each sentence whose point is an
    image never shown left out."""
    told = {line: (parts, joint) for line, parts, joint in _told(sentences)}
    out: list[str] = []
    for line in sentences:
        if line not in told:
            out.append(line)
            continue
        parts, joint = told[line]
        kept = [x for x in parts if x is not None and x.strip()]
        if kept:
            out.append(joint.join(kept))
    return out


def image_unshown(case: Case) -> bool:
    """Whether ``case``'s vignette rests on an image that is never shown: a sentence
    citing one says nothing of what it shows (``_unshown`` leaves nothing of it). Its
    key (a diagnosis, an organism, the sentence MEDEC changed) may rest on that image."""
    return any(None in parts for _, parts, _ in _told(source_sentences(case)))
