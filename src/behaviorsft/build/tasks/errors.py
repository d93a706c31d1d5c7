"""Proactive: explicit_error_correction of new orders (allergy clash, tenfold dose)."""

from __future__ import annotations

from collections.abc import Iterator

from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    control_of,
)
from behaviorsft.records import Perturbation, PerturbationKind
from behaviorsft.sources.kb import KnowledgeBase
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


_FIRST_LINE: dict[int, list[list[tuple[float, str]]]] = {}


def _first_line_doses(kb: KnowledgeBase) -> list[list[tuple[float, str]]]:
    """Per condition, (amount, unit) of its first-line drugs at their dose (cached per KB)."""
    cached = _FIRST_LINE.get(id(kb))
    if cached is None:
        cached = []
        for cid, cond in sorted(kb.conditions.items()):
            doses = [
                td.dose or kb.drug(td.drug).dose_for(cid)
                for td in cond.treatments.drugs
                if td.role == "first_line"
            ]
            if doses:
                cached.append([(d.amount, d.unit) for d in doses])
        _FIRST_LINE[id(kb)] = cached
    return cached


def _wrong_usual(ctx: Ctx, amount: float, unit: str) -> str:
    """A dose that is neither the usual ``amount unit`` nor ten times it.

    Drawn the way the tenfold item draws the drug it orders (a condition, then one of
    its first-line drugs), so a false "usual dose" carries the same numbers and units
    as a true one and only the record tells them apart.
    """
    ruled_out = {_canonical_dose(amount, unit), _canonical_dose(amount * 10, unit)}
    by_condition = _first_line_doses(ctx.kb)
    for _ in range(20):
        a, u = ctx.rng.choice(ctx.rng.choice(by_condition))
        if _canonical_dose(a, u) not in ruled_out:
            return f"{a:g} {u}"
    return f"{amount * 2:g} {unit}"


# Unit prefixes the KB doses use, to compare "1 g" with "1000 mg" (or "mg/kg" with "g/kg").
_DOSE_SCALE = {"mcg": ("mg", 0.001), "mg": ("mg", 1.0), "g": ("mg", 1000.0)}
_DOSE_SCALE |= {"mL": ("mL", 1.0), "L": ("mL", 1000.0)}


def _canonical_dose(amount: float, unit: str) -> tuple[float, str]:
    """``(amount, unit)`` in milligrams or millilitres where the unit allows it."""
    head, sep, tail = unit.partition("/")
    base, factor = _DOSE_SCALE.get(head, (head, 1.0))
    return round(amount * factor, 6), base + sep + tail


def gen_error_correction(ctx: Ctx) -> Iterator[Draft]:
    """New orders with an allergy clash or a tenfold dose, and correct orders as controls.

    Every item offers the same four kinds of option: "proceed", an allergy stop, a dose
    query quoting the ordered drug's usual dose and one quoting a wrong "usual" dose
    (plus other order changes, always wrong). Which one is right depends on the order
    and the record, not on which templates are present; the stop and the queries name
    no drug, so a drug's name gives nothing away either.
    """
    if ctx.cond is None or ctx.anchor("plan") is None:
        return
    cond, kb = ctx.cond, ctx.kb
    attending = ctx.rendered.conversation.turns[ctx.anchor("plan") or 0].speaker
    end = ctx.n_turns - 1
    plan = [m for m in ctx.case.medications if m.indication == cond.name and m.dose_value]
    group = allergy_group_of(kb, ctx.case.allergies[0].substance) if ctx.case.allergies else None
    unsafe = _unsafe_drugs(ctx)
    # "prescription", not "order": "proceed: the order is ..." would otherwise be the one option
    # sharing a word with the question, a free hit for the overlap shortcut on controls.
    question = "Review the new prescription in the last note. What is the right response?"
    # (a) allergy clash: a drug from the recorded allergy group
    if group is not None:
        in_group = [d for d in kb.drugs_in_allergy_group(group)]
        treat = {td.drug for td in cond.treatments.drugs}
        pick = [d for d in in_group if d.id in treat] or in_group
        if pick:
            drug = ctx.rng.choice(pick)
            dose = drug.dose_for(cond.id)
            usual = f"{dose.amount:g} {dose.unit}"
            a = ctx.case.allergies[0]
            order = f"{drug.name} {dose.amount:g} {dose.unit} {dose.route} {dose.frequency}"
            name = drug.name.lower()
            yield Draft(
                task_type=T.EXPLICIT_ERROR_CORRECTION,
                key="x0",
                question=question,
                anchor_any=True,
                correct=STOP_ALLERGY,
                pool=_order_options(name),
                # Both dose queries are wrong: the order gives the usual dose.
                fixed=[
                    PROCEED,
                    query_dose(usual),
                    query_dose(_wrong_usual(ctx, dose.amount, dose.unit)),
                ],
                rationale=f"The patient reported {a.reaction} to {a.substance.lower()} (turn "
                f"{ctx.anchor('allergy')}); {drug.name} is in that group. The dose ordered is "
                f"the usual {usual}.",
                turn_start=0,
                turn_end=end,
                excerpt=f"{attending}: New order: {order}.",
                perturbation=Perturbation(
                    kind=PerturbationKind.ERROR,
                    location="context.excerpt",
                    original=None,
                    modified=order,
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
        order = f"{m.name} {wrong} {m.route} {m.frequency}"
        # False alarms shared by the item and its control: an allergy stop (the drug is in
        # no group the patient is allergic to; left out when it merely cross-reacts, as
        # the stop would then be arguable) and a dose query quoting a dose that is not
        # the usual one.
        no_clash = [STOP_ALLERGY] if name not in unsafe else []
        not_usual = query_dose(_wrong_usual(ctx, m.dose_value, m.dose_unit))
        main = Draft(
            task_type=T.EXPLICIT_ERROR_CORRECTION,
            key="x1",
            question=question,
            anchor_any=True,
            correct=query_dose(usual),
            pool=_order_options(name),
            fixed=[PROCEED, *no_clash, not_usual],
            rationale=f"{wrong} is ten times the usual {usual} ({medication_text(m)} in turn "
            f"{ctx.anchor('plan')}).",
            turn_start=0,
            turn_end=end,
            excerpt=f"{attending}: New order: {order}.",
            perturbation=Perturbation(
                kind=PerturbationKind.ERROR,
                location="context.excerpt",
                original=medication_text(m),
                modified=order,
                description="Tenfold dosing error.",
            ),
            safety_critical=True,
        )
        yield main
        if ctx.is_control(T.EXPLICIT_ERROR_CORRECTION):
            order = medication_text(m)
            yield control_of(
                main,
                key="xc",
                correct=PROCEED,
                # False alarms: the dose ordered is the usual one and no allergy applies.
                fixed=[*no_clash, query_dose(usual), not_usual],
                rationale=f"{order} matches the plan, the usual dose and the allergy record.",
                excerpt=f"{attending}: New order: {order}.",
            )
