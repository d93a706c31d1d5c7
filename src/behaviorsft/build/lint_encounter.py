"""Linter rules for how a record reads as an encounter (imported notes told as speech).

* ``turn-fragment``: a clinician's turn that is only a header or one bare word ("Serum",
  "Laboratory studies show:"), cut from the values it introduces;
* ``sentence-split``: a clinician's written sentence cut between two turns ("Her pulse
  is" | "106/min ..."): the turn ends on a word that cannot end a sentence and the next
  clinician's turn carries it on;
* ``summary-duplicate``: a turn that repeats other turns of the record word for word
  (an opening "Summary:" of the whole note before the note is read out again);
* ``vital-impossible``: a vital sign no living patient at a visit shows (a blood pressure
  whose diastolic is within 10 of its systolic or above 150, a systolic above 280, a
  pulse above 250 or below 20, a saturation below 50%), in a turn's text or a table;
* ``image-unshown``: a turn citing an image the record does not hold ("A photograph of
  the lesion is shown.", "... as seen in Figure A"), in a turn with no attachment;
* ``turn-empty``: a turn with nothing said and nothing attached (a transcript's bare
  "[doctor]" line);
* ``speaker-swap``: a transcript whose doctor and patient labels read swapped (the
  "patient" examines and refers, the "doctor" says "i'm having a lot of pain");
* ``quote-split``: a quotation opened in one turn and closed in the speaker's next (a
  vignette cut inside a relative's quoted words, so the teller seems to say them);
* ``backref-moved``: a sentence opening "At that time" / "At the same visit" right after a
  decision of the visit (a past sentence moved after the plan, its "that time" lost).

Each finding names the turn; ``build/vignette_turns.py``, ``sources/_common.py`` and
``sources/fhir_tidy.py`` are the builder's and importers' side of each.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.build.lint_common import num as _num
from behaviorsft.build.vignette_turns import (
    BACK_REFERENCE,
    PLAN,
    cites_image,
    kind,
    open_quote,
    split_sentences,
)
from behaviorsft.sources._common import (
    MIN_SPO2,
    OPEN_END,
    PULSE_RANGE,
    bp_impossible,
    impossible_vitals,
    swapped_speakers,
)

RULES: dict[str, tuple[Any, str]] = {
    "turn-fragment": ("error", "a clinician's turn that is only a header or one bare word"),
    "sentence-split": ("error", "a written sentence cut between two turns"),
    "summary-duplicate": ("error", "a turn repeating other turns of the record word for word"),
    "vital-impossible": ("error", "a vital sign no living patient at a visit shows"),
    "image-unshown": ("error", "a turn citing an image the record does not show"),
    "turn-empty": ("error", "a turn with nothing said and nothing attached"),
    "speaker-swap": ("error", "a transcript whose doctor and patient labels read swapped"),
    "quote-split": ("error", "a quotation opened in one turn and closed in the next"),
    "backref-moved": ("error", "'At that time' right after a decision of the visit"),
}


# Speakers who are not clinicians: their one-word answers ("Yes", "No") are speech.
_LAY = frozenset({"patient", "family", "caregiver", "parent", "relative", "unknown"})
_HEADER = re.compile(r"^[A-Z][^.!?]{0,60}:$")
_BARE_WORD = re.compile(r"^[A-Z][A-Za-z+]*(-[A-Za-z]+)*$")  # not "Well-": speech trailing off
# Replies and interjections a clinician may say alone ("Okay", "Right").
_INTERJECTION = re.compile(
    r"^(ok(ay)?|right|good|great|yes|yeah|no|sure|thanks|hmm+|mhm|uh-huh|alright|fine|"
    r"perfect|excellent|go|continue|and)$",
    re.I,
)
_STARTS_WRITTEN = re.compile(r"^[A-Z0-9\"'(]")
_CARRIES_ON = re.compile(r"^([a-z(/]|\d|Hg\b)")
# A turn is compared with the others only when it is long enough to hold two of them,
# and only turns of at least this many words count as repeated.
_SUMMARY_MIN_CHARS = 200
_REPEATED_MIN_WORDS = 6


def _lay(role: str) -> bool:
    return role.lower() in _LAY


def _check_vitals(where: _Adds, idx: int | None, text: str, attachments: list[Any]) -> None:
    for problem in impossible_vitals(text):
        where.add("vital-impossible", problem, idx)
    for a in attachments:
        values: dict[str, float] = {}
        for row in a.get("rows") or []:
            if len(row) > 1 and (v := _num(row[1])) is not None:
                values[str(row[0]).lower()] = v
        s, d = values.get("systolic blood pressure"), values.get("diastolic blood pressure")
        if s is not None and d is not None and bp_impossible(s, d):
            where.add("vital-impossible", f"table '{a.get('title')}': BP {s:g}/{d:g}", idx)
        for name in ("pulse", "heart rate"):
            p = values.get(name)
            if p is not None and not PULSE_RANGE[0] <= p <= PULSE_RANGE[1]:
                where.add("vital-impossible", f"table '{a.get('title')}': {name} {p:g}", idx)
        o = values.get("oxygen saturation")
        if o is not None and o < MIN_SPO2:
            where.add("vital-impossible", f"table '{a.get('title')}': SpO2 {o:g}%", idx)


# A turn can cite an image only with one of these words (a cheap filter before the
# sentence-level check of ``vignette_turns.cites_image``).
_IMAGE_WORD = re.compile(r"\b(shown|displayed|depicted|figures?|images?|exhibit|picture)\b", re.I)
# A list after "... are shown." (the table is the thing shown): rows joined by "; ".
_ROW_NEXT = re.compile(r"^[A-Za-z][\w+\-(),/ ]{0,40}?:?\s[<>]?\d|^[A-Z][^.!?]{0,60}:$")


def _check_images(where: _Adds, idx: int | None, text: str) -> None:
    sentences = split_sentences(text)
    for j, s in enumerate(sentences):
        nxt = sentences[j + 1] if j + 1 < len(sentences) else ""
        table = _ROW_NEXT.match(nxt) and (";" in nxt or nxt.endswith(":"))
        if cites_image(s) and not table:
            where.add("image-unshown", f"'{s[:60]}' with no image", idx)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def check_conversation(where: _Adds, conv: dict[str, Any]) -> None:
    """The rules above, over one conversation (raw JSON)."""
    turns = conv.get("turns") or []
    texts = [str(t.get("text", "")).strip() for t in turns]
    roles = [str(t.get("role", "")) for t in turns]
    long_ones = [i for i, x in enumerate(texts) if len(x) >= _SUMMARY_MIN_CHARS]
    repeated = (
        [(i, _norm(x)) for i, x in enumerate(texts) if len(x.split()) >= _REPEATED_MIN_WORDS]
        if long_ones
        else []
    )
    for i, t in enumerate(turns):
        idx = t.get("index")
        text = texts[i]
        _check_vitals(where, idx, text, t.get("attachments") or [])
        if not t.get("attachments"):
            if not text:
                where.add("turn-empty", f"{roles[i] or 'a speaker'}: nothing said", idx)
                continue
            if _IMAGE_WORD.search(text):
                _check_images(where, idx, text)
        if _lay(roles[i]) or t.get("attachments"):
            continue
        if _HEADER.match(text) or (_BARE_WORD.match(text) and not _INTERJECTION.match(text)):
            where.add("turn-fragment", f"'{text}' alone", idx)
        nxt = next((j for j in range(i + 1, len(turns)) if not _lay(roles[j])), None)
        if (
            nxt == i + 1
            and _STARTS_WRITTEN.match(text)
            and OPEN_END.search(text)
            and _CARRIES_ON.match(texts[nxt])
        ):
            where.add("sentence-split", f"'...{text[-30:]}' | '{texts[nxt][:30]}...'", idx)
    _check_speech(where, turns, texts, roles)
    for i in long_ones:
        mine = _norm(texts[i])
        inside = [j for j, other in repeated if j != i and other in mine]
        if len(inside) >= 2:
            where.add(
                "summary-duplicate",
                f"repeats turns {', '.join(map(str, inside[:5]))} word for word",
                turns[i].get("index"),
            )


_TIMED = re.compile(r"\b(later|ago|after|then|when)\b", re.I)


def _check_speech(where: _Adds, turns: list[Any], texts: list[str], roles: list[str]) -> None:
    """``speaker-swap``, ``quote-split`` and ``backref-moved`` over one conversation."""
    swapped = swapped_speakers(
        [
            SimpleNamespace(role=roles[i], text=texts[i], index=t.get("index"), speaker=roles[i])
            for i, t in enumerate(turns)
        ]
    )
    if swapped is not None:
        where.add("speaker-swap", swapped)
    for i, t in enumerate(turns):
        text = texts[i]
        if _lay(roles[i]):
            continue
        if ("\u201c" in text or "\u201d" in text or '"' in text) and open_quote(text):
            nxt = next((j for j in range(i + 1, len(turns)) if roles[j] == roles[i]), None)
            if nxt is not None and open_quote(texts[nxt]):  # one quotation over two turns
                where.add(
                    "quote-split",
                    f"'...{text[-30:]}' | '{texts[nxt][:30]}...' split a quotation",
                    t.get("index"),
                )
        if "At th" in text:  # cheap filter before the sentences
            sentences = split_sentences(text)
            for j in range(1, len(sentences)):
                before = sentences[j - 1]
                if (
                    BACK_REFERENCE.match(sentences[j])
                    and kind(before) == PLAN
                    and not _TIMED.search(before)  # "1 week later she ... At that point"
                ):
                    where.add(
                        "backref-moved",
                        f"'{sentences[j][:40]}...' after '{sentences[j - 1][:40]}...'",
                        t.get("index"),
                    )
