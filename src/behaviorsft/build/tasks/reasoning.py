"""Reactive and balanced reasoning: ddx_reasoning, treatment_decision and
reasoning_differential_evolution."""

from __future__ import annotations

import re
from collections.abc import Iterator

from behaviorsft.build.conversation import (
    complaint,
    decisive_finding,
    fits_best,
    fits_best_given,
    in_sentence,
)
from behaviorsft.build.discriminators import settled_before
from behaviorsft.build.lint_items import clause_keys
from behaviorsft.build.lint_plan import join_clauses, shown_record, split_clauses
from behaviorsft.build.tasks.common import (
    Ctx,
    Draft,
    _cap,
    _unrelated,
)
from behaviorsft.build.tasks.grounding import grounded, shown_words
from behaviorsft.sources.history import is_exposure
from behaviorsft.sources.kb import Differential, KnowledgeBase
from behaviorsft.sources.patient import for_sex
from behaviorsft.sources.synthetic import medication_text
from behaviorsft.sources.wording import is_condition
from behaviorsft.taxonomy import TaskType

T = TaskType


def _patient_findings(ctx: Ctx) -> list[str]:
    """This patient's presenting symptoms and examination findings, as the record gives them."""
    symptoms = [f[len("Reports ") : -1] for f in ctx.case.facts if f.startswith("Reports ")]
    exam = [f.value_text for f in ctx.case.findings if f.kind == "exam" and f.value_text]
    return symptoms + exam


EXPLAINS = "what did the attending say the working diagnosis also explains?"


def gen_ddx_reasoning(ctx: Ctx) -> Iterator[Draft]:
    """What the team cited against a differential, what would make it reconsider one, or
    what the working diagnosis fits best given.

    The options are the four things the discussion said (against each differential, what
    would favour the first, and the presenting complaint the working diagnosis rests on),
    and the question asks about one of them, drawn uniformly: every option is in the
    record and each is the answer one time in four, so neither quoting the record nor the
    wording of an option points to the key. (The fourth option used to be one of this
    patient's findings the team never cited, never the answer: an options-only reader
    left it out and scored a third against a chance of a quarter.)
    """
    if ctx.cond is None or not ctx.cond.differentials or ctx.anchor("ddx") is None:
        return
    diffs = ctx.cond.differentials[:2]
    discriminator = ctx.anchor("ddx_discriminator")
    end = discriminator or ctx.anchor("ddx")
    assert end is not None
    cond = ctx.cond
    symptoms = [f[len("Reports ") : -1] for f in ctx.case.facts if f.startswith("Reports ")]
    # (question, answer, the differential it is said of; None: the working diagnosis)
    # what the attending cited against each (only a reason the record showed)
    reasons = ctx.rendered.reasons
    said: list[tuple[str, str, Differential | None]] = [
        (f"what argued against {x.name.lower()}?", reasons[x.name], x)
        for x in diffs
        if x.name in reasons
    ]
    if discriminator is not None:
        x = diffs[0]
        # as the attending said it (an example naming the other sex's organs left out)
        favour = for_sex(ctx.rendered.reconsider or x.favoured_by, ctx.case.demographics.sex)
        said.append((f"what did the attending say would favour {x.name.lower()}?", favour, x))
    turn = ctx.rendered.conversation.turns[ctx.anchor("ddx") or 0].text
    given = fits_best_given(symptoms, decisive_finding(cond, ctx.case) or ctx.rendered.decisive)
    if symptoms and fits_best(cond, ctx.case, symptoms, ctx.rendered.decisive) in turn:
        said.append(
            (
                # the diagnosis unnamed: a decisive finding shares words with its name
                # ("ST elevation" in ST-elevation myocardial infarction)
                "what did the attending give as the reason the working diagnosis fits best?",
                given,
                None,
            )
        )
    # a statement said of two things (one reason cut to "fever" for both differentials)
    # would be the answer to either question: ask only about what was said once
    texts = [text.lower() for _, text, _ in said]
    said = [x for x in said if texts.count(x[1].lower()) == 1]
    # Where the decisive finding is the reason, the presenting complaint it explains is a
    # statement too, asked about when fewer than four were said: the fillers below are
    # this patient's findings, never the answer, so without it a complaint-like option
    # would never be right.
    explains = complaint(symptoms)
    also = f"It also explains {explains}."
    if (
        given != explains
        and also in turn
        and len(said) < 4
        and explains.lower() not in [text.lower() for _, text, _ in said]
    ):
        said.append((EXPLAINS, explains, None))
    if not said:
        return
    # With fewer than four statements (a differential set aside with no reason shown) a
    # finding fills the last option, rarely the longest: ask less often about the longest
    # statement, so that the longest option is the answer about one time in four.
    # The same for what would favour a differential, which shares words with its name in
    # the question.
    longest = max(len(text) for _, text, _ in said)
    few = len(said) < 4
    # The same for the reason the working diagnosis fits best (a study's report, which no
    # filler resembles): asked as often as any other statement, it would be the key in a
    # third of the items with three statements.
    weights = [
        (0.6 if few and len(text) == longest else 1.0)
        * (0.7 if few and q.startswith("what did the attending say would favour") else 1.0)
        * (0.6 if few and x is None and q != EXPLAINS else 1.0)
        for q, text, x in said
    ]
    ask, correct, d = ctx.rng.choices(said, weights)[0]
    question = f"In the team's discussion, {ask}"
    fixed = [text for _, text, _ in said if text != correct]
    n_options = max(4, len(said))
    pool: list[str] = []
    if len(said) < 4:
        # This patient's symptoms and examination findings: the record gives them, and
        # the team cited none of them for or against a differential. Anything sharing
        # words with a discussion statement is left out, so no wrong option restates the
        # right one.
        single = _unrelated(_patient_findings(ctx), [text for _, text, _ in said])
        # pairs only as the record says them ("palpitations and drowsiness"), so every
        # option is something the record said
        said_text = " ".join(t.text.lower() for t in ctx.rendered.conversation.turns[: end + 1])
        findings = single + [
            pair
            for i, x in enumerate(single)
            for y in single[i + 1 :]
            if (pair := f"{x} and {y}").lower() in said_text
        ]
        pool = grounded(
            correct,
            findings,
            shown_words(ctx, 0, end),
            question,
            need=n_options - 1 - len(fixed),
        )
    # what each other option is, as the discussion said it (a filler is a finding the team
    # did not cite: the rationale no longer claims every option was cited)
    others = _said_roles(said, correct, reasons, bool(pool))
    if ask == EXPLAINS:
        rationale = (
            f"Turn {ctx.anchor('ddx')}: the attending says {cond.name} fits best given "
            f"{given}, which also explains {correct}; {others}"
        )
    elif d is None:
        rationale = (
            f"Turn {ctx.anchor('ddx')}: the attending says {cond.name} fits best given "
            f"{given}; {others}"
        )
    else:
        verb = "against" if correct == reasons.get(d.name) else "in favour of"
        rationale = (
            f"Turn {discriminator if verb == 'in favour of' else ctx.anchor('ddx')}: "
            f"the attending cites {correct} {verb} {d.name}; {others}"
        )
    yield Draft(
        task_type=T.DDX_REASONING,
        key="d0",
        question=question,
        correct=_cap(correct),
        pool=[_cap(p) for p in pool],
        fixed=[_cap(p) for p in fixed],
        rationale=rationale,
        turn_start=0,
        turn_end=end,
        n_options=n_options,
    )


def _said_roles(
    said: list[tuple[str, str, Differential | None]],
    correct: str,
    reasons: dict[str, str],
    fillers: bool,
) -> str:
    """The other options of a ddx_reasoning item as the discussion said them ("'known
    asthma' was cited against COPD exacerbation; ..."), ending with the fillers, findings
    the record gives that the team did not cite, where there are any."""
    roles = []
    for q, text, x in said:
        if text == correct:
            continue
        if x is None and q == EXPLAINS:
            role = "is what the working diagnosis also explains"
        elif x is None:
            role = "is why the working diagnosis fits best"
        elif text == reasons.get(x.name):
            role = f"was cited against {in_sentence(x.name)}"
        else:
            role = f"would favour {in_sentence(x.name)}"
        roles.append(f"'{_cap(text)}' {role}")
    if fillers:
        roles.append("the other options are findings the team did not cite")
    return ("; ".join(roles) or "no other option was said in the discussion") + "."


# History items that are not a diagnosis (an exposure, a drug, a demographic), so they
# cannot stand among diagnoses as an option.
_NOT_A_DIAGNOSIS = re.compile(
    r"\d|\b(use|age|aged|sex|recent|previous|prior|exposure|therapy|drugs?|withdrawal|"
    r"adherence|cessation|contact|diet|smoking|alcohol|residence|pregnancy|surgery|"
    r"hospitali[sz]ation|travel|lines?|catheter|e\.g)\b",
    re.I,
)


_KB_NAMES: dict[int, tuple[KnowledgeBase, list[str], dict[str, list[str]]]] = {}


def _kb_names(kb: KnowledgeBase, drug: str) -> tuple[list[str], list[str]]:
    """The KB's drug names (lower case, without a bracketed gloss), and the conditions
    (lower case) a drug of the name ``drug`` (lower case) treats: cached per KB."""
    hit = _KB_NAMES.get(id(kb))
    if hit is None or hit[0] is not kb:  # an id reused by a later KB
        names = [d.name.lower().split(" (")[0] for d in kb.drugs.values()]
        hit = _KB_NAMES[id(kb)] = (kb, names, {})
    treats = hit[2].get(drug)
    if treats is None:
        drug_ids = {d.id for d in kb.drugs.values() if d.name.lower() == drug}
        treats = hit[2][drug] = [
            c.name.lower()
            for c in kb.conditions.values()
            if any(t.drug in drug_ids for t in c.treatments.drugs)
        ]
    return hit[1], treats


def _history_diagnoses(ctx: Ctx, drug: str) -> list[str]:
    """This patient's documented history items that are diagnoses the drug does not treat."""
    drug_names, treats = _kb_names(ctx.kb, drug.lower())
    out = []
    for fact in ctx.case.facts:
        if not fact.startswith("History: "):
            continue
        item = re.sub(r" \([^)]*\)", "", fact[len("History: ") : -1])
        low = item.lower()
        if (
            not is_condition(item)  # said as an event or exposure, not a diagnosis
            # a recent event the record gives with the recent events ("an infection
            # recently"): a precipitant, not a condition the patient already had
            or is_exposure(item)
            or _NOT_A_DIAGNOSIS.search(item)
            or any(low in t or t in low for t in treats)
            or any(n in low for n in drug_names)
        ):
            continue
        out.append(item)
    return out


def _own_reason(reasons: dict[str, str], name: str) -> str | None:
    """What the attending cited against ``name`` and against no other differential: the
    whole reason, or the findings of it cited only against ``name`` ("fever" was cited
    against cystitis and, with leukocyte esterase, against ureteric colic: "which diagnosis
    was judged less likely, citing fever?" would have two answers, "citing positive
    leukocyte esterase" one); None when every finding was cited against another too."""
    clauses = split_clauses(reasons[name])
    # (compared alike: "without P waves" against flutter is "no P waves" against MAT)
    others = {k for n, r in reasons.items() if n != name for k in clause_keys(r)}
    own = [c for c in clauses if not clause_keys(c) <= others]
    if len(own) == len(clauses):
        return reasons[name]
    if not own:
        return None
    said = join_clauses(own)
    return "no " + said[len("without ") :] if said.startswith("without ") else said


def _turn_saying(ctx: Ctx, item: str, end: int, fallback: str) -> int | None:
    """The first turn up to ``end`` that says ``item`` (the history item a rationale cites:
    a recent infection is said with recent events, not with the past history); else the
    anchor ``fallback``."""
    low = item.lower()
    for i, t in enumerate(ctx.rendered.conversation.turns[: end + 1]):
        if low in t.text.lower():
            return i
    return ctx.anchor(fallback)


def gen_treatment_decision(ctx: Ctx) -> Iterator[Draft]:
    """Connect a decision to its stated reason: the diagnosis a drug was started for, or
    the diagnosis the attending set aside for a stated finding.

    The options are diagnoses: the working diagnosis, the two differentials discussed,
    and one from the patient's history (never one the drug treats) or, when the history
    has none, the next differential for this presentation that the record never names.
    Each option is the answer to one question (the working diagnosis: what the drug was
    started for; a differential: what the attending set aside for its finding; the
    history item: what the patient already had; the unnamed differential: which was not
    weighed), drawn uniformly, so every option is the key one time in four whatever its
    kind, text or length. (The unnamed differential used to be offered but never asked
    about: the wrong option in half the items, its text marked itself, and an
    options-only reader scored 31.5% against a chance of 25% at 1,500 cases.)
    """
    if ctx.cond is None or ctx.anchor("plan") is None or ctx.anchor("ddx") is None:
        return
    plan = [m for m in ctx.case.medications if m.indication == ctx.cond.name]
    diffs = ctx.cond.differentials[:2]
    if not plan or len(diffs) < 2:
        return
    m = ctx.rng.choice(plan)
    plan_turn = ctx.anchor("plan")
    ddx_turn = ctx.anchor("ddx")
    assert plan_turn is not None and ddx_turn is not None
    end = min(ctx.n_turns - 1, plan_turn + 1)
    names = [ctx.cond.name, *(d.name for d in diffs)]
    reasons = ctx.rendered.reasons  # only reasons the record showed were cited
    asks = [
        (
            f"The team prescribed {m.name.lower()}. For which working diagnosis?",
            ctx.cond.name,
            f"Turn {ctx.anchor('diagnosis')} states the working diagnosis and turn "
            f"{plan_turn} starts {medication_text(m)} for it.",
        )
    ] + [
        (
            f"Which diagnosis did the attending judge less likely, citing {own}?",
            d.name,
            f"Turn {ddx_turn}: {d.name} is less likely given {reasons[d.name]}.",
        )
        for d in diffs
        if d.name in reasons and (own := _own_reason(reasons, d.name)) is not None
    ]
    # A differential set aside with no reason shown is the answer to a question too (else
    # its name would only ever be wrong): the one set aside without a reason, or the one
    # the resident asked about reconsidering.
    bare = [d for d in diffs if d.name not in reasons]
    if len(bare) == 1:
        asks.append(
            (
                "Which diagnosis did the attending set aside without giving a reason?",
                bare[0].name,
                f"Turn {ddx_turn}: {bare[0].name} is less likely on what the team had so far; "
                "a reason is given for the other differential.",
            )
        )
    reconsider = ctx.anchor("ddx_discriminator")
    if diffs[0] in bare and reconsider is not None and reconsider <= end:
        asks.append(
            (
                "About which differential did the resident ask what would make the team "
                "reconsider it?",
                diffs[0].name,
                f"Turn {reconsider - 1}: the resident asks what would make the team "
                f"reconsider {diffs[0].name.lower()}.",
            )
        )
        if len(bare) == 2:
            asks.append(
                (
                    "Besides the differential the resident asked about, which diagnosis did "
                    "the attending judge less likely?",
                    diffs[1].name,
                    f"Turn {ddx_turn}: the attending judges {diffs[0].name} and "
                    f"{diffs[1].name} less likely; turn {reconsider - 1} asks about "
                    f"{diffs[0].name.lower()}.",
                )
            )
    # A diagnosis from the history; failing that, the next differential the knowledge
    # base gives for this presentation (plausible for this patient, though not discussed).
    documented = _unrelated(_history_diagnoses(ctx, m.name), names)
    if documented:
        record = shown_words(ctx, 0, end)
        fourth = _cap(ctx.rng.choice(grounded(ctx.cond.name, documented, record, names[0], need=1)))
        # Which condition predates the decision, rather than prompting it.
        asks.append(
            (
                f"The team prescribed {m.name.lower()}. Which of these was a condition the "
                "patient already had, rather than the reason for it?",
                fourth,
                f"Turn {_turn_saying(ctx, fourth, end, 'history')}: the patient's history "
                f"includes {fourth.lower()}; "
                f"{m.name} was started for {ctx.cond.name} (turn {plan_turn}), and the "
                "differentials were judged less likely.",
            )
        )
    else:
        # Verified unnamed: nowhere in the conversation (not even inside a longer name,
        # as "bacterial meningitis" is inside "acute bacterial meningitis").
        said = " ".join(t.text.lower() for t in ctx.rendered.conversation.turns)
        unnamed = [
            d.name
            for d in ctx.cond.differentials[2:]
            if d.name.lower() not in said and not any(d.name.lower() in n.lower() for n in names)
        ]
        if not unnamed:
            return
        fourth = unnamed[0]
        asks.append(
            (
                f"The team prescribed {m.name.lower()} after weighing the working diagnosis "
                "against alternatives. Which of these diagnoses was never discussed?",
                fourth,
                f"Turn {ctx.anchor('diagnosis')} names {ctx.cond.name} and turn {ddx_turn} "
                f"weighs {names[1]} and {names[2]}; the record never mentions "
                f"{fourth.lower()}.",
            )
        )
    # Each option the answer about one time in four: an answer is drawn first, then one of
    # the questions it answers (a differential may answer two: its reason, and the
    # resident's "what would make you reconsider").
    answers = list(dict.fromkeys(c for _, c, _ in asks))
    chosen = ctx.rng.choice(answers)
    question, correct, rationale = ctx.rng.choice([a for a in asks if a[1] == chosen])
    options = [*names, fourth]
    yield Draft(
        task_type=T.TREATMENT_DECISION,
        key="r0",
        question=question,
        correct=correct,
        pool=[o for o in options if o != correct][-1:],
        fixed=[o for o in options if o != correct][:-1],
        rationale=rationale,
        turn_start=0,
        turn_end=end,
        n_options=4,
    )


# ----------------------------------------------------------------------------- balanced


def _join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _later_reasons(ctx: Ctx, diffs: list[Differential]) -> str:
    """What the attending later cites against the differentials the record gives a reason
    for (" The attending later judges X less likely given R."), rather than a blanket claim
    that they rest on findings the patient does not have (a drinker's alcoholic
    ketoacidosis does not); no turn number, as the task does not show that turn."""
    said = [
        f"{d.name} less likely given {ctx.rendered.reasons[d.name]}"
        for d in diffs
        if d.name in ctx.rendered.reasons
    ]
    return f" The attending later judges {'; '.join(said)}." if said else ""


def gen_differential_evolution(ctx: Ctx) -> Iterator[Draft]:
    """Which diagnosis should have led once the one new result came in.

    Timepoint A is after the admission results (and the resident's comment on them),
    timepoint B after the imaging report, so the report is the only new information.
    The question lists the diagnoses in play (the working diagnosis and the first three
    differentials the knowledge base gives for this presentation), numbered in random
    order, and the options are the numbers: a diagnosis's name is the answer in its own
    cases and a wrong option in others, so options naming it would let a reader of the
    options alone learn which names tend to be right; numbers carry nothing, and
    neither the record nor the options' wording singles one out: the findings do.
    """
    if ctx.cond is None:
        return
    a = ctx.anchor("labs_comment") or ctx.anchor("labs")
    b = ctx.anchor("imaging")
    imaging = next((f for f in ctx.case.findings if f.kind == "imaging"), None)
    diffs = ctx.cond.differentials[:3]
    if a is None or b is None or imaging is None or b <= a or len(diffs) < 3:
        return
    # the report must be what decides: not asked where a result before it already made
    # the diagnosis (a positive stool test before the CT: discriminators.settled_before)
    before = shown_record(
        ctx.kb,
        [
            (t.text, [r for x in t.attachments for r in x.rows])
            for t in ctx.rendered.conversation.turns[:b]
        ],
    )
    if settled_before(ctx.kb, before, ctx.cond.id) is not None:
        ctx.drop(T.REASONING_DIFFERENTIAL_EVOLUTION, "diagnosis settled before the report")
        return
    names = [ctx.cond.name, *(d.name for d in diffs)]
    order = list(range(len(names)))
    ctx.rng.shuffle(order)  # order[i]: which name is listed as number i + 1
    study = imaging.name.split(" (")[0]
    listing = "; ".join(f"({i + 1}) {names[j].lower()}" for i, j in enumerate(order))
    question = (
        f"At turn {a} the admission results were in; turn {b} adds the {study} report. "
        f"Of these diagnoses: {listing}, which should lead the differential after that report?"
    )

    def label(j: int) -> str:
        return f"Diagnosis ({order.index(j) + 1})"

    yield Draft(
        task_type=T.REASONING_DIFFERENTIAL_EVOLUTION,
        key="e0",
        question=question,
        correct=label(0),
        pool=[label(j) for j in range(1, len(names))],
        rationale=f"Turn {b} adds {imaging.name}: {imaging.value_text}. With the history, "
        # only what the window shows: the team names its working diagnosis after turn b
        f"examination and admission results it supports {ctx.cond.name} over "
        + _join_names([d.name for d in diffs])
        + "."
        + _later_reasons(ctx, diffs),
        turn_start=0,
        turn_end=b,
        n_options=4,
    )
