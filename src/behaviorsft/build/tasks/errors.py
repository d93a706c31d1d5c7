"""Proactive: explicit_error_correction of new orders (allergy clash, tenfold dose, a
schedule far too frequent)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from behaviorsft.build.lint import drug_family
from behaviorsft.build.lint_plan import cockcroft_gault, egfr
from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    control_of,
    turn_ref,
)
from behaviorsft.records import Medication, Perturbation, PerturbationKind
from behaviorsft.sources import dosing, prescribing
from behaviorsft.sources.kb import Dose, KnowledgeBase
from behaviorsft.sources.patient import record_weight
from behaviorsft.sources.planted_orders import (
    IndicatedOrder,
    Patient,
    allergy_orders,
    indication,
    order_line,
    ward_orders,
)
from behaviorsft.sources.synthetic import allergy_group_of, medication_text
from behaviorsft.taxonomy import TaskType

T = TaskType


PROCEED = "Proceed: the order is appropriate as written"


# The issue options name no drug: the new order names one, and a drug name inside
# "stop"/"query" would let a reader of the options alone learn which drugs tend to be
# stopped (allergy-group drugs) and which queried (first-line drugs). The stop is about
# as long as a dose query, so being the longest option does not single it out.
STOP_ALLERGY = "Stop: the drug is in a group the patient is allergic to"


def query_dose(usual: str) -> str:
    """The dose-query option of explicit_error_correction, quoting a usual dose."""
    return f"Query the ordered dose: the usual dose is {usual}"


def query_frequency(usual: str) -> str:
    """The frequency-query option of explicit_error_correction, quoting a usual schedule."""
    return f"Query the ordered frequency: the usual schedule is {usual}"


# Scheduled frequencies of the KB's doses, and a schedule far too frequent for each (an
# hourly "q24h" drug): the frequency error of a new order. "once", infusions and "as
# needed" doses have no schedule to get wrong.
_TOO_OFTEN = {
    "once daily": "every 2 hours",
    "q24h": "q2h",
    "q12h": "q2h",
    "q8-12h": "q1h",
    "q8h": "q1h",
    "q6h": "q1h",
    "q4h": "q30min",
}
# Share of the eligible cases that get an item of each kind, ``(of, every)``: with a
# control every second case, allergy items in every case whose allergy allows an order
# with an indication (``planted_orders``: about two cases in five), tenfold doses in nearly
# every case (two dose queries) and frequency items in 5 of 6 cases with a scheduled drug,
# each of the five options is the answer about one time in five (the stop one in six).
# "ward": the controls that order a ward drug (VTE prophylaxis ...) where the patient
# has one, so that those indications come with a correct order as often as with a clash.
_KEEP = {"allergy": (1, 1), "frequency": (5, 6), "ward": (1, 1)}


# Share of the items that are no allergy clash offering the allergy stop as a false alarm
# (a third false dose query takes its place on the rest). Offered on all of them, the stop
# was the key on 14% of its offers once a past HIT became a rare fallback allergy (one
# patient in four: fewer clash items), and an options-only reader learnt to avoid it
# (26.9 on the 6,876-case build, target 25); this share puts it near one in five.
STOP_ALARM_SHARE = 0.65


def _stop_alarm(ctx: Ctx, name: str, unsafe: set[str]) -> list[str]:
    """The allergy stop as a false alarm for the order of ``name``, on ``STOP_ALARM_SHARE``
    of the orders whose drug is in no group the patient reacts to (none where it merely
    cross-reacts: the stop would be arguable)."""
    if name in unsafe or ctx.rng.random() >= STOP_ALARM_SHARE:
        return []
    return [STOP_ALLERGY]


def _kept(case_id: str, kind: str) -> bool:
    """Whether ``case_id`` gets its ``kind`` item (deterministic in the case id)."""
    of, every = _KEEP[kind]
    h = hashlib.sha1(f"{case_id}|explicit_error_correction:{kind}".encode()).digest()
    return h[0] % every < of


# Schedules written two ways: a query proposing one for an order written the other way
# proposes the schedule as ordered.
SAME_SCHEDULE = {
    "once daily": "q24h",
    "q24h": "once daily",
    "twice daily": "q12h",
    "q12h": "twice daily",
    "four times daily": "q6h",
    "q6h": "four times daily",
}

_AS_NEEDED = re.compile(r"\s+(?:as needed|prn)\b.*$", re.I)


def _usual_schedule(ctx: Ctx, ordered: str | None) -> str:
    """A schedule drawn as a plan's drug is (see ``_plan_doses``), other than ``ordered``
    (the schedule the order is written with): the query option always quotes a schedule
    and only knowing the drug's usual one tells whether it applies. A query proposing the
    schedule as ordered ("the usual schedule is once daily" for an order once daily) is
    ruled out by reading alone."""
    share = _schedule_shares(ctx.kb)
    # "q6h as needed" is ordered q6h: its schedule is not proposed either
    base = _AS_NEEDED.sub("", ordered) if ordered else ordered
    # nor the same schedule in other words ("q24h" for an order once daily)
    same = {ordered, base, *(SAME_SCHEDULE.get(f or "", ()) for f in (ordered, base))}
    options = [f for f in share if f not in same]

    # A schedule of share p is the ordered one (or its other spelling, of share p') on a
    # share p + p' of the items, where it cannot be drawn: drawn with weight
    # p / (1 - p - p') elsewhere, each is offered about as often as it is the key (the
    # usual schedule of a frequency item).
    def weight(f: str) -> float:
        return share[f] / (1 - share[f] - share.get(SAME_SCHEDULE.get(f, ""), 0.0))

    return ctx.rng.choices(options, [weight(f) for f in options])[0]


_SHARES: dict[int, dict[str, float]] = {}


def _schedule_shares(kb: KnowledgeBase) -> dict[str, float]:
    """Schedule -> the share of frequency items whose usual schedule it is (a condition,
    then one of its plan's drugs on a schedule ``_TOO_OFTEN`` makes too frequent; cached
    per KB)."""
    hit = _SHARES.get(id(kb))
    if hit is None:
        by_condition = _plan_doses(kb)
        raw: dict[str, float] = {}
        for doses in by_condition:  # as a frequency item draws: one of the timed drugs
            timed = [f for _, _, f in doses if f in _TOO_OFTEN]
            for f in timed:
                raw[f] = raw.get(f, 0.0) + 1 / len(timed)
        total = sum(raw.values())
        hit = _SHARES[id(kb)] = {f: v / total for f, v in sorted(raw.items())}
    return hit


def _order_options(drug: str) -> list[str]:
    return [
        f"Halve the {drug} dose because of the renal function",
        f"Switch {drug} to the oral route before the first dose",
        f"Check a {drug} level before the next dose is given",
        f"Give {drug} only after a supervised test dose",
        f"Delay {drug} until the culture results return",
        f"Give {drug} as ordered but double the monitoring",
        f"Add a second agent to {drug} for broader cover",
        f"Give {drug} as ordered and recheck the renal function in the morning",
        f"Give {drug} as ordered, then review the whole regimen with the pharmacist",
    ]


def _unsafe_drugs(ctx: Ctx) -> set[str]:
    """Lower-cased names of drugs the recorded allergies rule out, cross-reactive ones included."""
    out: set[str] = set()
    for a in ctx.case.allergies:
        group = allergy_group_of(ctx.kb, a.substance)
        if group is not None:
            out |= {
                d.name.lower()
                for d in ctx.kb.drugs_in_allergy_group(group, include_cross_reactive=True)
            }
    return out


_PLAN_DOSES: dict[int, list[list[tuple[float, str, str]]]] = {}


def _patient(ctx: Ctx) -> Patient:
    """The patient as ``planted_orders`` sees them, read from the case record."""
    age = ctx.case.demographics.age_years if ctx.case.demographics else None
    sex = ctx.case.demographics.sex if ctx.case.demographics else None
    complaints = tuple(
        f[len("Reports ") : -1] for f in ctx.case.facts if f.startswith("Reports ") and f[-1] == "."
    )
    day0 = {f.name: f.value for f in ctx.case.findings if f.day == 0 and f.value is not None}
    creat, sbp, k = (day0.get(ctx.kb.lab(x).name) for x in ("creatinine", "sbp", "potassium"))
    years = float(age) if age is not None else 50.0
    # the weight the triage turn records, and the clearance at it (sources/dosing.py)
    kg = record_weight(ctx.case.id, sex, ((s.title, s.text) for s in ctx.case.sections))
    crcl = cockcroft_gault(creat, years, sex, kg) if creat else None
    gfr = egfr(creat, years, sex) if creat else None
    return Patient(years, complaints, gfr, sbp, k, kg, crcl, creat)


def _not_taken(ctx: Ctx, orders: list[IndicatedOrder]) -> list[IndicatedOrder]:
    """``orders`` less those duplicating a medicine of the record (its drug or family:
    no VTE prophylaxis on apixaban, no pantoprazole on omeprazole)."""
    names = {m.name.lower() for m in ctx.case.medications}
    families = {drug_family(m.drug_class or "") for m in ctx.case.medications} - {None}
    return [
        o
        for o in orders
        if o.drug.name.lower() not in names and drug_family(o.drug.drug_class) not in families
    ]


def _plan_doses(kb: KnowledgeBase) -> list[list[tuple[float, str, str]]]:
    """Per condition, (amount, unit, frequency) of the drugs a synthetic plan gives for it
    (its first-line drugs, one per interchangeable choice), cached per KB.

    Wrong "usual" doses and schedules are drawn from these, a condition then one of its
    drugs, the way the ordered drug of a tenfold or frequency item is drawn (a case's
    condition, then one of its plan's drugs): a false "usual" dose then carries the same
    numbers and units as a true one, and only the record tells them apart. (Drawn from
    every first-line drug, the alternatives of one choice, never in a plan, were only
    ever false, and an options-only reader learnt which doses those were.)
    """
    cached = _PLAN_DOSES.get(id(kb))
    if cached is None:
        cached = []
        for cid in sorted(kb.conditions):
            doses = [(d.amount, d.unit, d.frequency) for d in _first_line_doses(kb, cid)]
            if doses:
                cached.append(doses)
        _PLAN_DOSES[id(kb)] = cached
    return cached


def _first_line_doses(kb: KnowledgeBase, cond_id: str) -> list[Dose]:
    """The doses of ``cond_id``'s first-line drugs, one per interchangeable choice."""
    chosen: set[str] = set()
    out = []
    for td in kb.conditions[cond_id].treatments.drugs:
        if td.role != "first_line" or (td.choice is not None and td.choice in chosen):
            continue
        if td.choice is not None:
            chosen.add(td.choice)
        # a weight-banded drug at the dose most plans give it (sources/dosing.py)
        out.append(dosing.pool_dose(td.drug, td.dose or kb.drug(td.drug).dose_for(cond_id)))
    return out


_POOLED: dict[tuple[int, str], set[tuple[float, str]]] = {}


def _pooled_doses(kb: KnowledgeBase, cond_id: str) -> set[tuple[float, str]]:
    """(amount, unit) of the doses ``_plan_doses`` holds for ``cond_id`` (cached)."""
    hit = _POOLED.get((id(kb), cond_id))
    if hit is None:
        hit = _POOLED[(id(kb), cond_id)] = {
            (d.amount, d.unit) for d in _first_line_doses(kb, cond_id)
        } | _fitted_doses(kb, cond_id)
    return hit


def _fitted_doses(kb: KnowledgeBase, cond_id: str) -> set[tuple[float, str]]:
    """(amount, unit) of the other doses a plan gives ``cond_id``'s first-line drugs for
    the patient's weight or age (their weight bands, a label's reduced dose)."""
    out: set[tuple[float, str]] = set()
    for td in kb.conditions[cond_id].treatments.drugs:
        if td.role == "first_line":
            out |= {(a, dosing.BAND_UNIT) for a in dosing.band_amounts(td.drug)}
            red = dosing.REDUCTIONS.get((td.drug, cond_id))
            if red is not None:
                out.add((red.amount, red.unit))
    return out


def _allergy_item_doses(
    ctx: Ctx, plan: list[Medication], dose: Dose, bands: tuple[float, ...] = (), k: int = 2
) -> list[str]:
    """``k`` false "usual" doses for ``dose``'s queries, neither it nor ten times it, nor
    another weight band's dose of its drug (``bands``, mg: ``_bands``): a dose of ``plan``
    where one differs, and ``_wrong_usual``s."""
    ruled_out = {
        _canonical_dose(dose.amount, dose.unit),
        _canonical_dose(dose.amount * 10, dose.unit),
        *((a, dosing.BAND_UNIT) for a in bands),
    }
    own = [
        f"{m.dose_value:g} {m.dose_unit}"
        for m in plan
        if m.dose_value is not None
        and m.dose_unit is not None
        and _canonical_dose(m.dose_value, m.dose_unit) not in ruled_out
    ]
    out = [ctx.rng.choice(own)] if own else []
    for u in _wrong_usuals(ctx, dose.amount, dose.unit, k + 1, bands):
        if len(out) < k and _canonical_dose(*_split_dose(u)) not in {
            _canonical_dose(*_split_dose(x)) for x in out
        }:
            out.append(u)
    return out


def _dose_of(m: Medication) -> Dose:
    assert m.dose_value is not None and m.dose_unit is not None
    return Dose(amount=m.dose_value, unit=m.dose_unit, route="PO", frequency=m.frequency or "once")


def _bands(kb: KnowledgeBase, m: Medication) -> tuple[float, ...]:
    """The doses (mg) of ``m``'s drug that are right for another patient, never a false
    "usual" dose (sources/dosing.py): its weight bands' doses, and for a drug with a
    label's reduction both the full and the reduced dose (apixaban 5 and 2.5 mg in AF)."""
    drug = prescribing._drug_named(kb, m.name)
    if drug is None:
        return ()
    out = list(dosing.band_amounts(drug.id))
    for (did, cid), red in dosing.REDUCTIONS.items():
        full = drug.dose_for(cid) if did == drug.id else None
        if full is not None and red.unit == dosing.BAND_UNIT == full.unit:
            out += [red.amount, full.amount]
    return tuple(out)


def _wrong_usuals(
    ctx: Ctx, amount: float, unit: str, k: int, bands: tuple[float, ...] = ()
) -> list[str]:
    """``k`` different doses from ``_wrong_usual``."""
    out: list[str] = []
    for _ in range(10 * k):
        u = _wrong_usual(ctx, amount, unit, bands)
        if _canonical_dose(*_split_dose(u)) not in {_canonical_dose(*_split_dose(x)) for x in out}:
            out.append(u)
        if len(out) == k:
            break
    return out


def _split_dose(text: str) -> tuple[float, str]:
    amount, _, unit = text.partition(" ")
    return float(amount), unit


def _wrong_usual(ctx: Ctx, amount: float, unit: str, bands: tuple[float, ...] = ()) -> str:
    """A dose that is neither the usual ``amount unit`` nor ten times it, nor a weight
    band's dose of the drug (``bands``, mg; see ``_plan_doses``)."""
    ruled_out = {_canonical_dose(amount, unit), _canonical_dose(amount * 10, unit)}
    ruled_out |= {(a, dosing.BAND_UNIT) for a in bands}
    by_condition = _plan_doses(ctx.kb)
    # A fluid's usual dose is a volume or a rate ("1 L", "500 mL/h", "30 mL/kg"), a drug's
    # never is: "the usual dose is 25 g" for Ringer's lactate is rejected unread
    # (synthetic:67-000101). (A drug's may still be drawn as a volume: "1 L" then stays a
    # wrong option as often as it is a key, which an options-only reader would learn.)
    if _is_volume(unit):
        fluids = [d for d in _volume_doses(ctx.kb) if _canonical_dose(*d) not in ruled_out]
        if fluids:
            a, u = ctx.rng.choice(fluids)
            return f"{a:g} {u}"
    for _ in range(20):
        a, u, _f = ctx.rng.choice(ctx.rng.choice(by_condition))
        if _canonical_dose(a, u) not in ruled_out:
            return f"{a:g} {u}"
    return f"{amount * 2:g} {unit}"


def _is_volume(unit: str) -> bool:
    """Whether a dose in ``unit`` is a volume or a volume rate (a fluid's: mL, L, mL/kg/h)."""
    return unit.split("/", 1)[0].strip() in ("mL", "L")


_VOLUME_DOSES: dict[int, list[tuple[float, str]]] = {}


def _volume_doses(kb: KnowledgeBase) -> list[tuple[float, str]]:
    """The plan doses (``_plan_doses``) given as a volume or a rate, once each (per KB)."""
    hit = _VOLUME_DOSES.get(id(kb))
    if hit is None:
        found = {(a, u) for doses in _plan_doses(kb) for a, u, _f in doses if _is_volume(u)}
        hit = _VOLUME_DOSES[id(kb)] = sorted(found)
    return hit


# Unit prefixes the KB doses use, to compare "1 g" with "1000 mg" (or "mg/kg" with "g/kg").
_DOSE_SCALE = {"mcg": ("mg", 0.001), "mg": ("mg", 1.0), "g": ("mg", 1000.0)}
_DOSE_SCALE |= {"mL": ("mL", 1.0), "L": ("mL", 1000.0)}


def _canonical_dose(amount: float, unit: str) -> tuple[float, str]:
    """``(amount, unit)`` in milligrams or millilitres where the unit allows it."""
    head, sep, tail = unit.partition("/")
    base, factor = _DOSE_SCALE.get(head, (head, 1.0))
    return round(amount * factor, 6), base + sep + tail


def gen_error_correction(ctx: Ctx) -> Iterator[Draft]:
    """New orders with an allergy clash, a tenfold dose or a schedule far too frequent,
    and correct orders as controls, each written with its indication (``order_line``):
    the error is in a detail of an order this patient could get, never in its existence.

    Every item offers the same five options: "proceed", an allergy stop, a dose query
    quoting the ordered drug's usual dose and one quoting a wrong "usual" dose, and a
    frequency query quoting a usual schedule (the ordered drug's where it has one). Which
    one is right depends on the order and the record, not on which templates are present;
    the stop and the queries name no drug, so a drug's name gives nothing away either.
    Each kind is the answer about one time in five (controls every second case, allergy
    items in about 40% of cases, tenfold doses in nearly all, frequencies in three in
    four of the cases with a scheduled drug): when the fifth option was another order
    change that was never right, an options-only reader left it out and scored 34%
    against a chance of 20%. Other order changes now fill in only where the allergy stop
    is left out (a drug that merely cross-reacts).
    """
    if ctx.cond is None or ctx.anchor("plan") is None:
        return
    cond, kb = ctx.cond, ctx.kb
    attending = ctx.rendered.conversation.turns[ctx.anchor("plan") or 0].speaker
    end = ctx.n_turns - 1
    # the condition's first-line KB drugs, whose doses the wrong "usual" doses are drawn
    # from (``_plan_doses``): a drug any admission may add (potassium chloride for a low
    # potassium) or severity brings (3% saline, calcium gluconate), or a conditional or
    # alternative drug, is in no such pool, so its dose would mark the key
    own = {kb.drug(td.drug).name for td in cond.treatments.drugs if td.role == "first_line"}
    # and at the dose that pool holds (not the second member of a choice, nor a first-line
    # drug whose route severity changed: IV potassium at 10 mEq/h for the 20 mEq by mouth)
    pooled = _pooled_doses(kb, cond.id)
    plan = [
        m
        for m in ctx.case.medications
        if m.indication == cond.name
        and m.dose_value
        and m.name in own
        and (m.dose_value, m.dose_unit) in pooled
    ]
    group = allergy_group_of(kb, ctx.case.allergies[0].substance) if ctx.case.allergies else None
    unsafe = _unsafe_drugs(ctx)
    # "prescription", not "order": "proceed: the order is ..." would otherwise be the one option
    # sharing a word with the question, a free hit for the overlap shortcut on controls.
    question = "Review the new prescription in the last note. What is the right response?"
    patient = _patient(ctx)
    # (a) allergy clash: a drug from the recorded allergy group that this patient has an
    # indication for (planted_orders.py): the slip is the group, never an order without a
    # reason (an ACE inhibitor in thyroid storm, IV vancomycin for improving cellulitis).
    if group is not None and _kept(ctx.case.id, "allergy"):
        pick = _not_taken(ctx, allergy_orders(kb, cond, group, patient))
        if pick:
            chosen = ctx.rng.choice(pick)
            drug, dose = chosen.drug, chosen.dose
            usual = f"{dose.amount:g} {dose.unit}"
            a = ctx.case.allergies[0]
            order = order_line(chosen.text, chosen.indication)
            name = drug.name.lower()
            yield Draft(
                task_type=T.EXPLICIT_ERROR_CORRECTION,
                key="x0",
                question=question,
                anchor_any=True,
                correct=STOP_ALLERGY,
                pool=_order_options(name),
                # Both dose queries are wrong: the order gives the usual dose.
                # The queries quote doses and a schedule of plans (the ordered drug, an
                # allergy group's, is in no plan: quoting its own dose would make those
                # numbers the ones that are never right): one dose of this plan, which the
                # record quotes as it quotes the usual dose on the other items, and one
                # drawn as a plan's is.
                fixed=[
                    PROCEED,
                    *(query_dose(u) for u in _allergy_item_doses(ctx, plan, dose)),
                    query_frequency(_usual_schedule(ctx, dose.frequency)),
                ],
                rationale=f"The patient reported {a.reaction} to {a.substance.lower()} (turn "
                f"{ctx.anchor('allergy')}); {drug.name} is in that group. The indication "
                f"({chosen.indication}) and the dose (the usual {usual}) are right.",
                turn_start=0,
                turn_end=end,
                excerpt=f"{attending}: New order: {order}.",
                perturbation=Perturbation(
                    kind=PerturbationKind.ERROR,
                    location="context.excerpt",
                    original=None,
                    modified=chosen.text,
                    description=f"Ordered {drug.name} despite a recorded {a.substance} allergy "
                    f"({a.reaction}).",
                ),
                safety_critical=a.reaction in ("anaphylaxis", "angioedema"),
            )
    # (b) tenfold dose
    if plan:
        m = ctx.rng.choice(plan)
        assert m.dose_value is not None and m.dose_unit is not None
        name = m.name.lower()
        usual = f"{m.dose_value:g} {m.dose_unit}"
        wrong = f"{m.dose_value * 10:g} {m.dose_unit}"
        written = f"{m.name} {wrong} {m.route} {m.frequency}"
        order = order_line(written, indication(kb, cond, m.name))
        # False alarms shared by the item and its control: an allergy stop (the drug is in
        # no group the patient is allergic to; left out when it merely cross-reacts, as
        # the stop would then be arguable) and a dose query quoting a dose that is not
        # the usual one.
        no_clash = _stop_alarm(ctx, name, unsafe)
        # Another drug of this plan's dose where one differs, so that the record quotes
        # the false "usual" dose as it quotes the true one (drawn otherwise).
        false_doses = _allergy_item_doses(
            ctx, [x for x in plan if x is not m], _dose_of(m), _bands(kb, m), k=3
        )
        not_usual = query_dose(false_doses[0])
        extra = [] if no_clash else [query_dose(u) for u in false_doses[1:2]]
        schedule = query_frequency(_usual_schedule(ctx, m.frequency))
        main = Draft(
            task_type=T.EXPLICIT_ERROR_CORRECTION,
            key="x1",
            question=question,
            anchor_any=True,
            correct=query_dose(usual),
            pool=_order_options(name),
            fixed=[PROCEED, *no_clash, not_usual, *extra, schedule],
            # (the plan's turn is after the record shown: not cited by number)
            rationale=f"{wrong} is ten times the usual {usual} (the plan later in the record "
            f"gives {medication_text(m)}).",
            turn_start=0,
            # The record up to the working diagnosis: the order is the first one for the
            # drug, so the usual dose is known, not copied from the plan's line.
            turn_end=(ctx.anchor("plan") or 1) - 1,
            excerpt=f"{attending}: New order: {order}.",
            perturbation=Perturbation(
                kind=PerturbationKind.ERROR,
                location="context.excerpt",
                original=medication_text(m),
                modified=written,
                description="Tenfold dosing error.",
            ),
            safety_critical=True,
        )
        yield main
        if ctx.is_control(T.EXPLICIT_ERROR_CORRECTION):
            ward = [
                o
                for o in _not_taken(ctx, ward_orders(kb, cond, patient))
                if o.drug.name.lower() not in unsafe
            ]
            if ward and _kept(ctx.case.id, "ward"):
                yield _ward_control(ctx, main, ctx.rng.choice(ward), plan, attending)
            else:
                order = order_line(medication_text(m), indication(kb, cond, m.name))
                yield control_of(
                    main,
                    key="xc",
                    correct=PROCEED,
                    # False alarms: the dose ordered is the usual one and no allergy applies.
                    # No query proposes the dose as ordered (ruled out by reading alone).
                    fixed=[
                        *no_clash,
                        *(query_dose(u) for u in false_doses[: 2 if no_clash else 3]),
                        schedule,
                    ],
                    rationale=f"{medication_text(m)} is the usual dose (the plan later in the "
                    "record gives the same) and clashes with no recorded allergy.",
                    excerpt=f"{attending}: New order: {order}.",
                )
    # (c) a schedule far too frequent, for a scheduled drug of the plan (three cases in four)
    timed = [m for m in plan if m.frequency in _TOO_OFTEN]
    if timed and _kept(ctx.case.id, "frequency"):
        m = ctx.rng.choice(timed)
        assert m.frequency is not None and m.dose_value is not None and m.dose_unit is not None
        name = m.name.lower()
        usual = f"{m.dose_value:g} {m.dose_unit}"
        written = f"{m.name} {usual} {m.route} {_TOO_OFTEN[m.frequency]}"
        order = order_line(written, indication(kb, cond, m.name))
        yield Draft(
            task_type=T.EXPLICIT_ERROR_CORRECTION,
            key="x2",
            question=question,
            anchor_any=True,
            correct=query_frequency(m.frequency),
            pool=_order_options(name),
            fixed=[
                PROCEED,
                *(stop := _stop_alarm(ctx, name, unsafe)),
                # doses other than the one ordered (a dose of this plan first)
                *(
                    query_dose(u)
                    for u in _allergy_item_doses(
                        ctx, [x for x in plan if x is not m], _dose_of(m), _bands(kb, m), k=3
                    )[: 2 if stop else 3]
                ),
            ],
            rationale=f"{_TOO_OFTEN[m.frequency]} is far more often than the usual "
            f"{m.frequency} ({medication_text(m)} {turn_ref(ctx.anchor('plan'), end)}).",
            turn_start=0,
            turn_end=end,
            excerpt=f"{attending}: New order: {order}.",
            perturbation=Perturbation(
                kind=PerturbationKind.ERROR,
                location="context.excerpt",
                original=medication_text(m),
                modified=written,
                description="Dosing frequency error (far too frequent).",
            ),
            safety_critical=True,
        )


def _ward_control(
    ctx: Ctx, main: Draft, o: IndicatedOrder, plan: list[Medication], attending: str
) -> Draft:
    """A correct ward order (VTE prophylaxis, analgesia) as the control: the allergy item
    orders these too, so "Indication: VTE prophylaxis" says nothing about the answer."""
    return control_of(
        main,
        key="xc",
        correct=PROCEED,
        # False alarms: no allergy to its group, and queries of the usual dose and schedule
        # proposing others (a dose of this plan, or drawn as a plan's is; never the dose or
        # schedule as ordered, which reading alone rules out).
        fixed=[
            *(stop := _stop_alarm(ctx, o.drug.name.lower(), set())),
            *(
                query_dose(u)
                for u in _allergy_item_doses(ctx, plan, o.dose, k=3)[: 2 if stop else 3]
            ),
            query_frequency(_usual_schedule(ctx, o.dose.frequency)),
        ],
        pool=_order_options(o.drug.name.lower()),
        rationale=f"{o.text} is indicated ({o.indication}) at the usual dose, and the patient "
        "has no allergy to its group.",
        excerpt=f"{attending}: New order: {order_line(o.text, o.indication)}.",
    )
