"""Surgical and gastrointestinal coherence of a synthetic admission (issue 16, review round 7).

What a clinician expects of an acute abdomen or a bleed that a knowledge-base item alone does
not give (docs/building.md, "Surgical and gastrointestinal coherence"):

* the hernial orifices are examined wherever the KB says they must be, and the finding
  agrees with the history: a known groin hernia is found (soft and reducible: the
  obstruction is not treated as an incarcerated hernia), a previous operation leaves a scar,
  otherwise no scar (``with_orifices``); a known hernia enters the team's reasoning
  (``hernia_reason``);
* an early or urgent consultation the record claims as done happens on the admission day,
  and a nil-by-mouth surgical patient sees the physiotherapist only after the surgical
  review (``order_course``);
* a test whose result the record never shows, with treatment only if it is positive, is
  recorded as requested, not as done (``requested``).

The checks of these on a built record are in :mod:`behaviorsft.build.lint_surgical`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from behaviorsft.build.event_time import draw_clocks
from behaviorsft.records import Event
from behaviorsft.sources.kb import Condition

# An examination the KB says must include the hernial orifices.
ORIFICES = re.compile(r"\bhernial orifices\b", re.I)
HERNIA = re.compile(r"\bhernias?\b", re.I)
# A previous abdominal operation in the history (adhesions, a scar).
OPERATED = re.compile(
    r"\b(?:previous|prior) (?:abdominal|pelvic)\b[^;]*\bsurgery\b|\blaparotomy\b", re.I
)
# A care item that claims its consultation was early ("early surgical consultation").
EARLY_CONSULT = re.compile(
    r"\b(?:early|urgent|prompt|immediate) (?:\w+ )?(?:consultation|review|referral)\b", re.I
)
# A plan that keeps the patient nil by mouth (an acute abdomen awaiting the surgeons).
NIL_BY_MOUTH = re.compile(r"\bnil by mouth\b|\bbowel rest\b", re.I)
SURGICAL_CONSULT = re.compile(
    r"\bsurgical (?:consultation|review|referral)\b|\blaparotom|\blaparoscop|"
    r"\bcholecystectomy\b|\bcolectomy\b",
    re.I,
)
# "Helicobacter pylori testing and eradication if positive": a test and its treatment.
TEST_THEN_TREAT = re.compile(
    r"^(?P<test>.+?\btest(?:ing)?)\s+and\s+(?P<then>eradication|treatment)\b(?:\s+if positive)?$",
    re.I,
)


def examines_orifices(cond: Condition) -> bool:
    """Whether the condition's examination must record the hernial orifices."""
    return any(ORIFICES.search(e) for e in cond.exam)


def orifice_finding(history: Sequence[str], key: str) -> str:
    """The hernial orifices as examined, agreeing with ``history`` (KB risk factors or
    documented history items); ``key`` draws the side of a known hernia."""
    if any(HERNIA.search(h) for h in history):
        side = random.Random(f"behaviorsft-hernia:{key}").choice(("right", "left"))
        return f"a soft, non-tender, reducible {side} groin hernia; other hernial orifices clear"
    if any(OPERATED.search(h) for h in history):
        return "a healed midline laparotomy scar; hernial orifices clear"
    return "no abdominal scars; hernial orifices clear"


def with_orifices(
    cond: Condition, exam: Sequence[str], history: Sequence[str], key: str
) -> list[str]:
    """``exam`` with the hernial orifices recorded as ``history`` has them (the condition's
    other findings kept), or unchanged where the KB does not ask for them."""
    if not examines_orifices(cond):
        return list(exam)
    kept = [e for e in exam if not ORIFICES.search(e)]
    return [*kept, orifice_finding(history, key)]


def hernia_reason(cond: Condition, history: Sequence[str], exam: Sequence[str]) -> str | None:
    """The attending's sentence on a known hernia ("Incarcerated hernia is less likely given
    a soft, non-tender, reducible right groin hernia."), or None: no hernia in the history,
    no hernia differential in the KB, or no examination of it."""
    diff = next((d for d in cond.differentials if HERNIA.search(d.name)), None)
    found = next((e for e in exam if HERNIA.search(e) and "reducible" in e), None)
    if diff is None or found is None or not any(HERNIA.search(h) for h in history):
        return None
    return f"{diff.name} is less likely given {found.split(';')[0]}."


def claims_early_consult(cond: Condition) -> bool:
    """Whether a care item of the condition claims an early or urgent consultation."""
    return any(EARLY_CONSULT.search(i.item) for i in cond.standard_of_care)


def surgical_admission(cond: Condition) -> bool:
    """Whether the patient is nil by mouth awaiting a surgical opinion (an acute abdomen)."""
    texts = [*cond.treatments.actions, *cond.next_actions, *(i.item for i in cond.standard_of_care)]
    return any(NIL_BY_MOUTH.search(t) for t in texts) and any(
        SURGICAL_CONSULT.search(t) for t in texts
    )


def order_course(cond: Condition, events: list[Event], key: str) -> list[Event]:
    """The hospital course with the consult on the admission day where a care item claims
    it early (the clock times drawn again on a stream of their own, ``key``), and a
    nil-by-mouth surgical patient's physiotherapy after the surgical review (the two events
    swap their places in time)."""
    kinds = [e.kind for e in events]
    if "consult" not in kinds:
        return events
    out = list(events)
    c = kinds.index("consult")
    if claims_early_consult(cond) and (out[c].day or 0) > 0:
        consult = out.pop(c).model_copy(update={"day": 0})
        out.insert(0, consult)
        rng = random.Random(f"behaviorsft-early-consult:{key}")
        clocks = draw_clocks([e.day or 0 for e in out], rng, [e.kind for e in out])
        out = [e.model_copy(update={"clock": k}) for e, k in zip(out, clocks, strict=True)]
    kinds = [e.kind for e in out]
    if surgical_admission(cond) and "physiotherapy" in kinds:
        p, c = kinds.index("physiotherapy"), kinds.index("consult")
        if p < c:
            first, second = out[p], out[c]
            out[p] = first.model_copy(update={"kind": second.kind, "text": second.text})
            out[c] = second.model_copy(update={"kind": first.kind, "text": first.text})
    return out


def requested(item: str) -> str | None:
    """A care item recorded as requested rather than done: a test whose result the record
    does not show, with treatment only if it is positive ("Helicobacter pylori testing;
    eradication therapy only if the result is positive"); None for any other item."""
    m = TEST_THEN_TREAT.match(item.strip())
    if m is None:
        return None
    then = "eradication therapy" if m["then"].lower() == "eradication" else "treatment"
    return f"{m['test']}; {then} only if the result is positive"


# A documentation item that says so itself ("hernial orifices examined and documented").
_SAYS_DOCUMENTED = re.compile(r"\s+(?:and\s+)?documented$", re.I)


def documented(done: str) -> str | None:
    """How a documentation item is recorded as done without saying "documented" twice
    ("Documented: hernial orifices examined."), or None for an item that does not end in
    "documented"."""
    core = _SAYS_DOCUMENTED.sub("", done.strip())
    return None if core == done.strip() or not core else f"Documented: {core}."
