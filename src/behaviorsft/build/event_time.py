"""Documented event times: when a record says an event happened, and which events it orders.

A synthetic admission dates its events by day (symptom onset days before presentation,
the day-2 ward round); the hospital course also has a clock time on each event
(``Event.clock``), drawn so that events of one day come at distinct times in the order
they happened, and the conversation says it ("Day 1, 09:40: repeat bloods."). Two events
are ordered by what the record documents only when their days differ, or when they share
a day and both have a clock time and the times differ: "later on day 1" and the order of
the turns are not a documented time (issue 16). timeline_sequence offers only events
every pair of which is ordered so (``strictly_ordered``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

# Clock times drawn for the hospital course, on a 10-minute grid: on the admission day
# the events follow the first dose (afternoon and evening); on later days, the working day.
_GRID_MIN = 10
_HOURS = {0: (12, 22)}  # day -> (first hour, hour after the last slot)
_WORKING_DAY = (8, 18)
# Latest slot of a kind after the admission day: medicines reconciliation is due within 24
# hours of admission, and an arrival may be in the morning ("Good morning"), so on day 1
# it is done in the morning.
_LATEST_AFTER_DAY_0 = {"reconciliation": 11 * 60 + 50}

# A documented time: (day, minutes after midnight, or None where the record gives none).
When = tuple[float, int | None]


def draw_clocks(days: Sequence[float], rng: random.Random, kinds: Sequence[str] = ()) -> list[str]:
    """Clock times ("HH:MM") for events on ``days`` (non-decreasing, in the order the
    events happened) of ``kinds``: the events of one day get distinct times, increasing in
    that order, each no later than its kind allows (``_LATEST_AFTER_DAY_0``)."""
    kinds = list(kinds) or [""] * len(days)
    clocks: list[str] = []
    i = 0
    while i < len(days):
        j = i
        while j < len(days) and days[j] == days[i]:
            j += 1
        first, end = _HOURS.get(int(days[i]), _WORKING_DAY)
        latest = [
            _LATEST_AFTER_DAY_0.get(k, end * 60 - _GRID_MIN) if days[i] else end * 60 - _GRID_MIN
            for k in kinds[i:j]
        ]
        times = sorted(rng.sample(range(first * 60, end * 60, _GRID_MIN), j - i))
        for n, t in enumerate(times):
            if t > latest[n]:  # too late: it and those before it drawn again before then
                times[: n + 1] = sorted(
                    rng.sample(range(first * 60, latest[n] + 1, _GRID_MIN), n + 1)
                )
        assert all(t <= last for t, last in zip(times, latest, strict=True)), (times, latest)
        clocks += [format_clock(m) for m in times]
        i = j
    return clocks


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def clock_minutes(clock: str | None) -> int | None:
    """Minutes after midnight of an "HH:MM" clock time (None for none)."""
    if not clock:
        return None
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def day_label(day: float, clock: str | None) -> str:
    """How a turn dates an event of the hospital course: "Day 1, 09:40" (or "Day 1")."""
    return f"Day {day:g}, {clock}" if clock else f"Day {day:g}"


def ordered(a: When, b: When) -> bool:
    """Whether the record documents that ``a`` happened before ``b``: an earlier day, or
    the same day at an earlier clock time (both documented)."""
    if a[0] != b[0]:
        return a[0] < b[0]
    return a[1] is not None and b[1] is not None and a[1] < b[1]


def strictly_ordered(times: Sequence[When]) -> bool:
    """Whether every pair of ``times`` (in the claimed order) is ordered by documented
    time: no tie, no two events of one day without a clock time on each."""
    return all(ordered(a, b) for i, a in enumerate(times) for b in times[i + 1 :])


# A suspected acute coronary syndrome: the 12-lead ECG is recorded and read within 10
# minutes of arrival (ESC ACS 2023), before any blood result; the record says when.
ECG_FIRST = frozenset({"stemi", "nstemi"})
ECG_WITHIN_MIN = 10


def ecg_first(cond_id: str, study: str | None) -> bool:
    """Whether the record's study ``study`` is an ECG recorded at arrival (``ECG_FIRST``)."""
    return cond_id in ECG_FIRST and study is not None and "ecg" in study.lower()


def draw_ecg_minutes(rng: random.Random) -> int:
    """Minutes after arrival the ECG of a suspected ACS is recorded at (3 to 9)."""
    return rng.randint(3, ECG_WITHIN_MIN - 1)


# A transfer to a unit (HDU, ICU) comes after the emergency work-up the record shows: the
# history, the admission bloods back (about an hour), a plan and its first doses.
TRANSFER_AFTER_MIN = 90


# A culture is final after about 48 hours or more (5 days for a blood culture): a negative
# one reported before that is "no growth to date", never the final "no growth".
FINAL_CULTURE_DAYS = 2
NO_GROWTH = "no growth"


def culture_report(text: str, days_since_sample: float) -> str:
    """How a culture's result ``text`` is reported ``days_since_sample`` after the sample."""
    if text == NO_GROWTH and days_since_sample < FINAL_CULTURE_DAYS:
        return f"{NO_GROWTH} to date"
    return text


# A statement whose time is that of a transfer to a unit ("admitted there {t}").
ADMITTED_AT = re.compile(r"\badmitted (?:to|there)\b[^.{]*\{t\}", re.I)
TRANSFERRED = re.compile(
    r"\badmitted (?:to|there)\b[^.]*?\b(?P<n>\d+) minutes after arrival\b", re.I
)


def said_minutes(say: str, after: int, within: int, rng: random.Random) -> int:
    """Minutes after arrival a statement ``say`` dates its event ``{t}`` at: drawn in
    ``after .. after + within`` (5-minute steps), and no sooner than ``TRANSFER_AFTER_MIN``
    where the event is a transfer to a unit (one draw either way)."""
    if ADMITTED_AT.search(say):
        after = max(after, TRANSFER_AFTER_MIN)
    return rng.randrange(after, after + within, 5)


# Results of a sample sent with the bloods but reported after the study (the first sputum
# specimen's AFB smear and TB NAAT take hours, not the minutes of a blood panel: 41-000523).
AFTER_STUDY = ("sputum acid-fast", "mycobacterium tuberculosis naat")


# ... and one that takes longer still: a serum tryptase (drawn 15 min to 3 h after onset) is
# back hours later, after the plan, not with the bloods of the first hour (41-000543).
AFTER_PLAN = ("serum tryptase",)


def after_study(result: str) -> bool:
    """Whether ``result`` is reported after the record's first study, not with the bloods."""
    return result.lower().startswith(AFTER_STUDY)


def after_plan(result: str) -> bool:
    """Whether ``result`` is reported after the plan (the first dose), not with the bloods."""
    return result.lower().startswith(AFTER_PLAN)


def slow_result(result: str) -> bool:
    """Whether ``result`` is never back with the first bloods (:func:`after_study`,
    :func:`after_plan`)."""
    return after_study(result) or after_plan(result)


# A capillary glucose is taken at triage for an altered mental state (ADA 2024; every
# triage pathway for confusion or reduced consciousness): before any CT head is requested,
# not with the bloods back an hour later (53-000469: a confused diabetic on a sulfonylurea
# had a CT head requested before the bedside glucose of 49).
AT_TRIAGE = ("capillary (fingerstick) glucose",)
ALTERED_MENTAL_STATE = re.compile(
    r"\bconfus|\bdrows|\bunresponsive|\bmuddled|altered (?:mental|conscious)|"
    r"reduced (?:level of )?consciousness|\bseizure|\bcoma\b|\bslurred",
    re.I,
)


def at_triage(result: str, symptoms: Sequence[str]) -> bool:
    """Whether ``result`` is measured at triage, given the presenting ``symptoms``: a
    capillary glucose when the mental state is altered."""
    return result.lower().startswith(AT_TRIAGE) and any(
        ALTERED_MENTAL_STATE.search(s) for s in symptoms
    )


def lp_after_ct(study: str, result: str) -> bool:
    """Whether the CSF ``result`` comes from a lumbar puncture done after the record's CT
    head ``study``: a CT before the LP (altered mental status, a focal sign) delays it."""
    return "ct head" in study.lower() and result.lower().startswith("csf")
