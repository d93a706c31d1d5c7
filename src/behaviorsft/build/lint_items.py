"""Clinical linter, item metadata: what a task says about its record agrees with the record.

Rules (called from ``lint_record.lint_tasks``; see docs/building.md, "Reasons that reason"):

``reason-shared``         a treatment_decision question asking which diagnosis the attending
                          judged less likely "citing R", where the turns shown cite a finding
                          of R against two differentials offered as options ("fever" against
                          uncomplicated cystitis and "fever and positive leukocyte esterase"
                          against ureteric colic): two options are right
``rationale-turn-unseen`` a key rationale citing a turn the task does not show ("turn 23"
                          for a record ending at turn 22); the turns a question or excerpt
                          names (the missing turn of an integrity item) are shown
``original-unshown``      a planted conflict's ``perturbation.original`` that is not what the
                          record shows: an imaging report the record never gives, or a
                          value no table of the record gives for that test
``slip-impossible``       a planted blood-pressure slip that the same reading's other pressure
                          rules out unread: a diastolic of 140 beside a systolic of 126, or
                          a pulse pressure under 15 mmHg
``correction-frame-misfit`` a wrong explicit_error_correction option ("the sentence should
                          read: ...") whose verb does not fit what it names: a drug
                          "performed", a test or procedure "administered" or "started on"
                          (``sources.medec.frame_misfit``): a reader rejects it unread

Each reads one task and its conversation (the turns it shows, or every turn's tables for
the original value); nothing is re-parsed per turn beyond what the rule needs.
"""

from __future__ import annotations

import re
from typing import Any

from behaviorsft.build.lint_common import Adds as _Adds
from behaviorsft.build.lint_plan import cited_reasons, split_clauses
from behaviorsft.sources.medec import frame_misfit

RULES: dict[str, tuple[str, str]] = {
    "reason-shared": ("error", "a reason asked about was cited against two options"),
    "rationale-turn-unseen": ("error", "a key rationale citing a turn the task does not show"),
    "original-unshown": ("error", "a planted conflict's original the record does not show"),
    "slip-impossible": ("error", "a planted pressure slip its reading's other pressure rules out"),
    "correction-frame-misfit": (
        "error",
        "a wrong correction whose verb does not fit its drug/test",
    ),
}
_PAIR = {
    "systolic blood pressure": ("diastolic blood pressure", 1),
    "diastolic blood pressure": ("systolic blood pressure", -1),
}
_MIN_PULSE_PRESSURE = 15.0

_CITING = re.compile(r"^Which diagnosis did the attending judge less likely, citing (?P<r>.+)\?$")
# "turn 23", "turns 4 and 6", "turn 3-5", "Turn 12:" (a number after "turn")
_TURN_REF = re.compile(r"\bturns?\s+(\d+(?:(?:,\s*|\s+and\s+|\s+to\s+|-)\d+)*)", re.I)
_NAMED = re.compile(r"\bturn\s+(\d+)\b|^\[(\d+)\]", re.I | re.M)
_TRANSCRIBED = re.compile(r"^(?P<name>.+?) transcribed with a different value")
_CORRECTION = re.compile(r'^In turn \d+, the sentence should read: "(?P<s>.*)"$')


def clause_keys(reason: str) -> set[str]:
    """The findings a reason cites, compared alike ("without free air" is "no free air")."""
    return {re.sub(r"^without ", "no ", c.lower()) for c in split_clauses(reason)}


def lint_task(where: _Adds, task: dict[str, Any], conv: dict[str, Any] | None) -> None:
    """One task's question, rationale and perturbation against its conversation."""
    ctx = task.get("context") or {}
    start, end = ctx.get("turn_start"), ctx.get("turn_end")
    if not isinstance(end, int):
        return
    start = start if isinstance(start, int) else 0
    _check_rationale(where, task, start, end, str(ctx.get("excerpt") or ""))
    if task.get("task_type") == "explicit_error_correction":
        _check_frames(where, task)
    if conv is None:
        return
    turns = conv.get("turns") or []
    m = _CITING.match(str(task.get("question") or ""))
    if m is not None:
        _check_shared(where, task, turns[: end + 1], m["r"])
    pert = task.get("perturbation") or {}
    if pert.get("kind") == "conflict" and pert.get("original"):
        _check_original(where, task, turns, str(pert["original"]), str(pert.get("description")))
        _check_slip(where, turns, pert)


def _check_rationale(
    where: _Adds, task: dict[str, Any], start: int, end: int, excerpt: str
) -> None:
    rationale = str(task.get("rationale") or "")
    if "turn" not in rationale.lower():
        return
    named = {int(a or b) for a, b in _NAMED.findall(f"{task.get('question') or ''}\n{excerpt}")}
    for m in _TURN_REF.finditer(rationale):
        for n in map(int, re.findall(r"\d+", m.group(1))):
            if not start <= n <= end and n not in named:
                where.add(
                    "rationale-turn-unseen",
                    f"the rationale cites turn {n}, but the task shows turns {start}-{end}",
                )
                return


def _check_shared(
    where: _Adds, task: dict[str, Any], turns: list[dict[str, Any]], reason: str
) -> None:
    asked = clause_keys(reason)
    options = {str(o.get("text", "")).lower() for o in task.get("options") or []}
    fits = sorted(
        {
            dx
            for t in turns
            for dx, verb, said in cited_reasons(str(t.get("text", "")))
            if verb == "is less likely" and dx.lower() in options and asked & clause_keys(said)
        }
    )
    if len(fits) > 1:
        where.add(
            "reason-shared",
            f"'citing {reason}': the record cites it against {' and '.join(fits)}, both options",
        )


def _check_original(
    where: _Adds, task: dict[str, Any], turns: list[dict[str, Any]], original: str, why: str
) -> None:
    m = _TRANSCRIBED.match(why)
    if m is not None:  # a value: some table of the record gives it for that test
        name = m["name"].lower()
        value = original.split(" ")[0]
        if not any(
            str(row[0]).lower() == name and str(row[1]) == value
            for t in turns
            for a in t.get("attachments") or []
            for row in a.get("rows") or []
            if len(row) > 1
        ):
            where.add(
                "original-unshown",
                f"the planted {m['name']} replaces '{original}', a value the record never shows",
            )
        return
    if task.get("task_type") == "interpretation_conflict":
        low = original.lower()
        if not any(low in str(t.get("text", "")).lower() for t in turns):
            where.add(
                "original-unshown",
                f"the planted report replaces '{original}', which the record never reports",
            )


def _check_slip(where: _Adds, turns: list[dict[str, Any]], pert: dict[str, Any]) -> None:
    m = _TRANSCRIBED.match(str(pert.get("description")))
    pair = _PAIR.get(m["name"].lower()) if m is not None else None
    if m is None or pair is None:
        return
    name, value = m["name"].lower(), str(pert["original"]).split(" ")[0]
    try:
        slip = float(str(pert.get("modified")).split(" ")[0])
    except ValueError:
        return
    for t in turns:
        for a in t.get("attachments") or []:
            rows = [r for r in a.get("rows") or [] if len(r) > 1]
            if not any(str(r[0]).lower() == name and str(r[1]) == value for r in rows):
                continue
            for r in rows:
                if str(r[0]).lower() != pair[0]:
                    continue
                try:
                    other = float(r[1])
                except ValueError:
                    continue
                if pair[1] * (slip - other) < _MIN_PULSE_PRESSURE:
                    where.add(
                        "slip-impossible",
                        f"the planted {m['name']} {pert['modified']} beside {r[0]} {r[1]} "
                        "of the same reading is impossible",
                    )
                return


def _check_frames(where: _Adds, task: dict[str, Any]) -> None:
    for o in task.get("options") or []:
        m = _CORRECTION.match(str(o.get("text", "")))
        if m is None or o.get("label") == task.get("answer"):
            continue
        why = frame_misfit(m["s"])
        if why is not None:
            where.add("correction-frame-misfit", f"option {o.get('label')}: {why}")
