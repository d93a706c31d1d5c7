"""The five LLM stages for one case, and the records each stage writes.

Each stage is an async function that turns its inputs into one stage record
(a pydantic model defined here): ``status`` is ``"ok"`` or ``"failed"`` with a
``reason``; a failed record is final (it is written and not retried unless
asked), so every item of a run ends in one of the two states.

1. :func:`summarise` -> :class:`SummaryRecord`: grounded facts, each with the
   character span of the source text that states it.
2. :func:`converse` -> :class:`ConversationRecord`: the conversation, then a
   fact-check pass that flags turns with claims the summary does not support.
3. :func:`draft_task` -> :class:`DraftRecord` (stage ``"tasks"``): one task of
   a reactive, balanced or predictive type over the clean conversation.
4. :func:`augment` -> :class:`DraftRecord` (stage ``"augment"``): a note with
   an injected challenge (error, omission, deviation, conflict,
   inconsistency), its clean twin, and the question asked of both.
5. :func:`verify_task` -> :class:`VerifyRecord`: a blind answer with the
   context, and one from the options alone.

:func:`tasks_from_draft` turns a draft into ``Task`` records: it picks the
distractors (length-balanced, with the programmatic builder's
``pick_distractors``), shuffles the options with a seeded RNG, stores the
permutation, and adds the restraint control of augmented types.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from behaviorsft import __version__
from behaviorsft.bench import format_turn, task_context_text
from behaviorsft.build.llm.client import CallInfo, StructuredClient
from behaviorsft.build.llm.prompts import (
    AUGMENT,
    AUGMENT_GUIDANCE,
    AUGMENT_KINDS,
    CONVERSATION,
    FACT_CHECK,
    SUMMARY,
    TASK,
    TYPE_GUIDANCE,
    VERIFY,
    VERIFY_OPTIONS_ONLY,
    AugmentOut,
    SummaryFact,
    TaskDraftOut,
    find_span,
    type_definition,
)
from behaviorsft.build.tasks import CONTROL_EVERY
from behaviorsft.records import (
    OPTION_LETTERS,
    Attachment,
    Case,
    Conversation,
    Generator,
    Option,
    Perturbation,
    Split,
    Task,
    Turn,
)
from behaviorsft.taxonomy import TaskType, category_of

Status = Literal["ok", "failed"]

GENERATOR_NAME = "llm"
# Options per task: the correct one plus distractors (augmented tasks: plus "no issue").
N_OPTIONS = 5
# A restraint control scores lower than its perturbed twin (as in the programmatic builder).
CONTROL_SCORE_DROP = 0.10
# Context shown before a hidden turn (as in the programmatic builder).
MISSING_TURN_BEFORE = 8


class StageRecord(BaseModel):
    """Common shape of a stage record: an id, its case, how it ended, and what it cost."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="Item id (case id, 'case:type', or task id).")
    case_id: str = Field(description="Case the item belongs to.")
    status: Status = Field(description="'ok' or 'failed'.")
    reason: str | None = Field(None, description="Why it failed, when it did.")
    calls: list[CallInfo] = Field(default_factory=list, description="LLM calls it took.")


class GroundedFact(BaseModel):
    """A summary fact with the span of the source that states it."""

    model_config = ConfigDict(extra="forbid")
    section: str = Field(description="Part of the case (history, examination, ...).")
    text: str = Field(description="The fact.")
    quote: str = Field(description="Supporting words as the model quoted them.")
    start: int = Field(ge=0, description="Start offset of the quote in the source text.")
    end: int = Field(ge=0, description="End offset (exclusive) in the source text.")


class SummaryRecord(StageRecord):
    """Stage 1 output (``llm/summaries.jsonl``)."""

    facts: list[GroundedFact] = Field(default_factory=list, description="Grounded facts.")
    final_diagnosis: str | None = Field(None, description="Final diagnosis per the summary.")


class TurnFlag(BaseModel):
    """A turn the fact check found claims in that the summary does not support."""

    model_config = ConfigDict(extra="forbid")
    turn: int = Field(ge=0, description="Turn index.")
    claims: list[str] = Field(description="The unsupported claims.")


class ConversationRecord(StageRecord):
    """Stage 2 output (``llm/conversations.jsonl``)."""

    conversation: Conversation | None = Field(None, description="The conversation.")
    fact_check: Status | None = Field(None, description="Whether the fact check ran.")
    flags: list[TurnFlag] = Field(default_factory=list, description="Turns flagged.")


class DraftRecord(StageRecord):
    """Stage 3/4 output (``llm/drafts.jsonl``): the validated LLM answer for one type."""

    stage: Literal["tasks", "augment"] = Field(description="Which stage wrote it.")
    task_type: TaskType = Field(description="Task type asked for.")
    draft: dict[str, Any] | None = Field(None, description="The validated answer, as JSON.")
    length_bias: str | None = Field(
        None, description="The length check that still failed after the re-asks, if any."
    )


VerifyFlag = Literal["wrong", "unanswerable", "options_only", "unverified", "length_bias"]


class VerifyRecord(StageRecord):
    """Stage 5 output (``llm/verification.jsonl``), one per task."""

    answer: str | None = Field(None, description="Letter the verifier chose (with context).")
    options_only_answer: str | None = Field(
        None, description="Letter chosen from the options alone (None: declined)."
    )
    flags: list[VerifyFlag] = Field(default_factory=list, description="Why the task is doubtful.")
    kept: bool = Field(True, description="Whether the task was written to tasks.jsonl.")


class CaseOutcome(BaseModel):
    """How one case ended (``llm/outcomes.jsonl``): the commit marker of a case."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="Case id.")
    status: Literal["completed", "failed"] = Field(description="Completed, or failed and why.")
    reason: str | None = Field(None, description="Why the case failed.")
    tasks: int = Field(0, ge=0, description="Tasks written to tasks.jsonl.")
    dropped: int = Field(0, ge=0, description="Tasks dropped by the verification policy.")
    failed_items: list[str] = Field(
        default_factory=list, description="Stage items that failed, as 'item: reason'."
    )


# ----------------------------------------------------------------------------- source text


def case_source_text(case: Case) -> str:
    """The text the summary is grounded in: the case as the user gave it, section by section.

    Free-text cases are their presentation and sections verbatim; structured
    cases (synthetic, FHIR) add their findings, medications, allergies and
    timeline as one line each, so every fact has a span to point at.
    """
    parts: list[str] = []
    demo = case.demographics
    who = " ".join(
        x
        for x in (
            f"{demo.age_years:g}-year-old" if demo.age_years is not None else "",
            demo.sex if demo.sex != "unknown" else "",
            demo.description,
        )
        if x
    )
    if who and who.lower() not in case.presentation.lower():
        parts.append(f"Patient: {who}.")
    if case.presentation:
        parts.append(case.presentation)
    parts.extend(f"{s.title}\n{s.text}" for s in case.sections if s.text.strip())
    for label, lines in (
        (
            "Timeline",
            [f"day {e.day:g}: {e.text}" if e.day is not None else e.text for e in case.timeline],
        ),
        ("Findings", [_finding_line(f) for f in case.findings]),
        (
            "Medications",
            [
                " ".join(x for x in (m.name, m.dose, m.route, m.frequency) if x)
                for m in case.medications
            ],
        ),
        (
            "Allergies",
            [a.substance + (f" ({a.reaction})" if a.reaction else "") for a in case.allergies],
        ),
        ("Conditions", [c.name for c in case.conditions]),
        ("Facts", list(case.facts)),
    ):
        if lines:
            parts.append(label + "\n" + "\n".join(f"- {x}" for x in lines))
    if case.final_diagnosis and case.final_diagnosis not in "\n".join(parts):
        parts.append(f"Final diagnosis\n{case.final_diagnosis}")
    return "\n\n".join(parts)


def _finding_line(f: Any) -> str:
    value = f.value_text if f.value is None else f"{f.value:g}"
    unit = f" {f.unit}" if f.unit else ""
    when = f" (day {f.day:g})" if f.day is not None else ""
    return f"{f.name}: {value}{unit}{when}"


def _facts_text(facts: list[GroundedFact]) -> str:
    return "\n".join(f"{i}: {f.section}: {f.text}" for i, f in enumerate(facts))


def turns_text(conversation: Conversation) -> str:
    """Every turn as ``[i] speaker (role): text`` with its tables (what the prompts show)."""
    return "\n".join(format_turn(t) for t in conversation.turns)


# ----------------------------------------------------------------------------- stage 1


async def summarise(client: StructuredClient, case: Case) -> SummaryRecord:
    """Stage 1: a grounded summary whose every fact points at a span of the source."""
    source = case_source_text(case)
    res = await client.call(
        SUMMARY,
        {"case_id": case.id, "source": source},
        key=f"{case.id}:summary",
        context={"source": source},
    )
    if res.value is None:
        return SummaryRecord(
            id=case.id, case_id=case.id, status="failed", reason=res.info.error, calls=[res.info]
        )
    facts = []
    for f in res.value.facts:
        span = find_span(source, f.quote)
        assert span is not None  # the schema's validator checked every quote
        facts.append(_grounded(f, span))
    return SummaryRecord(
        id=case.id,
        case_id=case.id,
        status="ok",
        facts=facts,
        final_diagnosis=res.value.final_diagnosis or case.final_diagnosis,
        calls=[res.info],
    )


def _grounded(f: SummaryFact, span: tuple[int, int]) -> GroundedFact:
    return GroundedFact(section=f.section, text=f.text, quote=f.quote, start=span[0], end=span[1])


# ----------------------------------------------------------------------------- stage 2


async def converse(
    client: StructuredClient, case: Case, summary: SummaryRecord
) -> ConversationRecord:
    """Stage 2: the conversation from the summary, then the fact check against it."""
    facts = _facts_text(summary.facts)
    res = await client.call(
        CONVERSATION,
        {
            "case_id": case.id,
            "facts": facts,
            "final_diagnosis": summary.final_diagnosis or "not stated",
        },
        key=f"{case.id}:conversation",
        context={"n_facts": len(summary.facts)},
    )
    if res.value is None:
        return ConversationRecord(
            id=case.id, case_id=case.id, status="failed", reason=res.info.error, calls=[res.info]
        )
    turns = []
    for i, t in enumerate(res.value.turns):
        attachments = []
        if t.table is not None:
            attachments.append(
                Attachment(
                    kind="table", title=t.table.title, columns=t.table.columns, rows=t.table.rows
                )
            )
        if t.image:
            attachments.append(Attachment(kind="image", title=t.image))
        turns.append(
            Turn(
                index=i,
                speaker=t.speaker,
                role=t.role.lower(),
                text=t.text,
                attachments=attachments,
            )
        )
    conversation = Conversation(case_id=case.id, turns=turns)
    check = await client.call(
        FACT_CHECK,
        {"case_id": case.id, "facts": facts, "turns": turns_text(conversation)},
        key=f"{case.id}:fact-check",
        context={"n_turns": len(turns)},
    )
    flags = (
        [TurnFlag(turn=c.turn, claims=c.unsupported_claims) for c in check.value.flagged]
        if check.value is not None
        else []
    )
    return ConversationRecord(
        id=case.id,
        case_id=case.id,
        status="ok",
        # A failed fact check does not lose the conversation: it is recorded as not done.
        reason=None if check.ok else f"fact check failed: {check.info.error}",
        conversation=conversation,
        fact_check="ok" if check.ok else "failed",
        flags=flags,
        calls=[res.info, check.info],
    )


# ----------------------------------------------------------------------------- stages 3 and 4


def length_problem(correct: str, distractors: list[str], k: int) -> str | None:
    """Why length would give the answer away, or None.

    ``k`` distractors will be shown; ``pick_distractors`` draws how many of
    them are longer than the answer, so the pool needs enough on both sides
    for the answer to be the longest option no more often than chance.
    """
    need = math.ceil(k / 2)
    n = len(correct)
    longer = sum(len(d) > n for d in distractors)
    shorter = sum(len(d) < n for d in distractors)
    if longer >= need and shorter >= need:
        return None
    return (
        f"- distractors: the correct option has {n} characters, but {longer} distractors are "
        f"longer and {shorter} shorter. Rewrite them so that at least {need} are longer and at "
        f"least {need} shorter than {n} characters (same style), so that length gives no hint."
    )


def _draft_key(case_id: str, task_type: TaskType) -> str:
    return f"{case_id}:{task_type.value}"


async def draft_task(
    client: StructuredClient, case_id: str, conversation: Conversation, task_type: TaskType
) -> DraftRecord:
    """Stage 3: one task of ``task_type`` over the clean conversation."""
    k = N_OPTIONS - 1
    res = await client.call(
        TASK,
        {
            "task_type": task_type.value,
            "category": category_of(task_type).value,
            "definition": type_definition(task_type),
            "guidance": TYPE_GUIDANCE[task_type],
            "case_id": case_id,
            "last_turn": len(conversation.turns) - 1,
            "turns": turns_text(conversation),
        },
        key=_draft_key(case_id, task_type),
        context={"task_type": task_type, "n_turns": len(conversation.turns)},
        check=lambda d: length_problem(d.correct_option, d.distractors, k),
    )
    return _draft_record("tasks", case_id, task_type, res.value, res.info)


async def augment(
    client: StructuredClient, case_id: str, conversation: Conversation, task_type: TaskType
) -> DraftRecord:
    """Stage 4: a perturbed note, its clean twin, and the task asked of both."""
    k = N_OPTIONS - 2  # the "no issue" option is always shown
    res = await client.call(
        AUGMENT,
        {
            "task_type": task_type.value,
            "definition": type_definition(task_type),
            "guidance": AUGMENT_GUIDANCE[task_type],
            "kind": AUGMENT_KINDS[task_type].value,
            "case_id": case_id,
            "last_turn": len(conversation.turns) - 1,
            "turns": turns_text(conversation),
        },
        key=_draft_key(case_id, task_type),
        context={"task_type": task_type, "n_turns": len(conversation.turns)},
        check=lambda d: length_problem(d.correct_option, d.distractors, k),
    )
    return _draft_record("augment", case_id, task_type, res.value, res.info)


def _draft_record(
    stage: Literal["tasks", "augment"],
    case_id: str,
    task_type: TaskType,
    value: BaseModel | None,
    info: CallInfo,
) -> DraftRecord:
    return DraftRecord(
        id=_draft_key(case_id, task_type),
        case_id=case_id,
        stage=stage,
        task_type=task_type,
        status="ok" if value is not None else "failed",
        reason=info.error,
        draft=value.model_dump(mode="json") if value is not None else None,
        length_bias=info.check_failed,
        calls=[info],
    )


def is_control(case_id: str, task_type: TaskType) -> bool:
    """Whether a case carries the restraint control of a type (the programmatic builder's rule)."""
    h = hashlib.sha1(f"{case_id}|{task_type.value}".encode()).digest()
    return h[0] % CONTROL_EVERY == 0


def answer_is_longest(slot: int, task_type: TaskType, control: bool = False) -> bool:
    """Whether a case's task of this type should have the longest option as its answer.

    Systematic, not random: cases are numbered (``slot``, their position among
    the build's sorted case ids) and every ``N_OPTIONS``-th one gets it, offset
    by type, so within each type the answer is the longest option in 1 of
    ``N_OPTIONS`` tasks, as a uniform guess would pick it. A random draw per
    task reaches that rate only on average, and the per-type shortcut audit
    runs on a few dozen tasks per type, where a binomial draw often lands
    well above it.
    """
    offset = list(TaskType).index(task_type) + (2 if control else 0)
    return (slot + offset) % N_OPTIONS == 0


def select_distractors(
    correct: str, pool: list[str], k: int, rng: random.Random, exclude: list[str], longest: bool
) -> list[str]:
    """``k`` distinct distractors; all shorter than the answer iff ``longest``.

    Otherwise 1..k of them (drawn uniformly, as the pool allows) are longer.
    Within each side the candidates closest in length to the answer are
    preferred, so no option stands out. (The programmatic builder's
    ``pick_distractors`` draws 0..k longer at random; here the answer-longest
    rate is set per type by :func:`answer_is_longest` instead.)
    """
    seen = {_squash(correct), *(_squash(x) for x in exclude)}
    uniq: list[str] = []
    for p in pool:
        norm = _squash(p)
        if norm and norm not in seen:
            seen.add(norm)
            uniq.append(p)
    n = len(correct)
    longer = sorted((p for p in uniq if len(p) > n), key=lambda p: (len(p), p))
    shorter = sorted((p for p in uniq if len(p) <= n), key=lambda p: (-len(p), p))
    lo = max(0 if longest else 1, k - len(shorter))
    hi = 0 if longest else min(k, len(longer))
    # lo > hi: the pool cannot honour the wish; take as many longer ones as it needs.
    n_long = rng.randint(lo, hi) if lo <= hi else min(lo, len(longer))

    def near(side: list[str], m: int) -> list[str]:
        return rng.sample(side[: 2 * m + 1], m) if m else []

    return near(longer, n_long) + near(shorter, min(k - n_long, len(shorter)))


def _squash(text: str) -> str:
    return " ".join(text.lower().split())


def _shuffled(
    correct: str, fixed: list[str], pool: list[str], rng: random.Random, longest: bool
) -> tuple[list[Option], str, list[int]] | None:
    k = N_OPTIONS - 1 - len(fixed)
    wrong = select_distractors(correct, pool, k, rng, fixed, longest)
    canonical = [correct, *fixed, *wrong]
    if len(canonical) < 4:
        return None
    order = list(range(len(canonical)))
    rng.shuffle(order)
    options = [Option(label=OPTION_LETTERS[i], text=canonical[j]) for i, j in enumerate(order)]
    return options, OPTION_LETTERS[order.index(0)], order


def tasks_from_draft(
    record: DraftRecord,
    conversation: Conversation,
    *,
    model_name: str,
    seed: int,
    split: Split | None,
    slot: int = 0,
) -> list[Task]:
    """The Task records of one draft: the task, plus its restraint control for augmented types.

    Distractors are chosen by :func:`select_distractors` (whether the answer is
    the longest option: :func:`answer_is_longest` of the case's ``slot``) and
    the options shuffled with an RNG seeded by (seed, task id), so a resumed
    run rebuilds identical tasks.
    """
    assert record.draft is not None
    ttype = record.task_type
    generator = Generator(
        name=GENERATOR_NAME,
        version=__version__,
        model=model_name,
        prompt_id=(TASK if record.stage == "tasks" else AUGMENT).id,
        seed=seed,
    )
    base_id = f"{record.case_id}:{ttype.value}:llm"
    out: list[Task] = []

    def make(
        tid: str, correct: str, fixed: list[str], pool: list[str], fields: dict[str, Any]
    ) -> None:
        rng = random.Random(f"behaviorsft-llm:{seed}:{tid}")
        longest = answer_is_longest(slot, ttype, control=bool(fields.get("restraint_control")))
        picked = _shuffled(correct, fixed, pool, rng, longest)
        if picked is None:
            return
        options, answer, order = picked
        out.append(
            Task.model_validate(
                {
                    "id": tid,
                    "case_id": record.case_id,
                    "task_type": ttype,
                    "options": options,
                    "answer": answer,
                    "option_permutation": order,
                    "generator": generator,
                    "split": split,
                    **fields,
                }
            )
        )

    if record.stage == "tasks":
        d = TaskDraftOut.model_validate(record.draft)
        start, end, excerpt = d.turn_start, d.turn_end, None
        if d.missing_turn is not None and ttype is TaskType.INTEGRITY_MISSING_TURN_INFERENCE:
            # The hidden turn is cut out here, not by the model: the context ends
            # before it and the two turns after it follow as an excerpt.
            k = d.missing_turn
            start, end = max(0, k - MISSING_TURN_BEFORE), k - 1
            after = conversation.turns[k + 1 : k + 3]
            excerpt = "\n\n".join([f"[Turn {k} is missing]", *(format_turn(t) for t in after)])
        no_action = d.no_action_option if ttype is TaskType.PREDICTIVE_NEXT_ACTION else None
        make(
            base_id + "0",
            d.correct_option,
            [no_action] if no_action else [],
            d.distractors,
            {
                "question": d.question,
                "context": {"turn_start": start, "turn_end": end, "excerpt": excerpt},
                "rationale": d.rationale,
                "behavior_score": round(d.behavior_score, 2),
                "complexity": d.complexity,
            },
        )
        if no_action and d.control_excerpt and is_control(record.case_id, ttype):
            # Same question and options, plus a note that everything due is done:
            # the right answer is restraint (the programmatic builder's control).
            make(
                base_id + "c",
                no_action,
                [d.correct_option],
                d.distractors,
                {
                    "question": d.question,
                    "context": {"turn_start": start, "turn_end": end, "excerpt": d.control_excerpt},
                    "rationale": d.control_rationale or "",
                    "behavior_score": round(max(0.0, d.behavior_score - CONTROL_SCORE_DROP), 2),
                    "complexity": d.complexity,
                    "restraint_control": True,
                },
            )
        return out

    a = AugmentOut.model_validate(record.draft)
    context = {"turn_start": a.turn_start, "turn_end": a.turn_end}
    score = round(a.behavior_score, 2)
    make(
        base_id + "0",
        a.correct_option,
        [a.no_issue_option],
        a.distractors,
        {
            "question": a.question,
            "context": {**context, "excerpt": a.perturbed_excerpt},
            "rationale": a.rationale,
            "behavior_score": score,
            "complexity": a.complexity,
            "perturbation": Perturbation(
                kind=AUGMENT_KINDS[ttype],
                location="context.excerpt",
                original=a.original,
                modified=a.modified,
                description=a.description,
            ),
        },
    )
    if is_control(record.case_id, ttype):
        # Same question, same option set, clean note: the right answer is restraint.
        make(
            base_id + "c",
            a.no_issue_option,
            [a.correct_option],
            a.distractors,
            {
                "question": a.question,
                "context": {**context, "excerpt": a.clean_excerpt},
                "rationale": a.control_rationale,
                "behavior_score": round(max(0.0, score - CONTROL_SCORE_DROP), 2),
                "complexity": a.complexity,
                "restraint_control": True,
            },
        )
    return out


# ----------------------------------------------------------------------------- stage 5


def options_text(task: Task) -> str:
    """``A. text`` lines."""
    return "\n".join(f"{o.label}. {o.text}" for o in task.options)


async def verify_task(
    client: StructuredClient,
    task: Task,
    conversation: Conversation,
    *,
    options_only: bool = True,
    length_bias: bool = False,
) -> VerifyRecord:
    """Stage 5: answer the task blind (no answer shown), with context and from the options alone.

    Flags: ``wrong`` (the verifier chose another option), ``unanswerable`` (it
    declined), ``options_only`` (it found the answer without the case),
    ``unverified`` (the call failed), ``length_bias`` (carried over from the
    draft's length check).
    """
    letters = [o.label for o in task.options]
    common = {"case_id": task.case_id, "question": task.question, "options": options_text(task)}
    res = await client.call(
        VERIFY,
        {**common, "context": task_context_text(task, conversation)},
        key=f"{task.id}:verify",
        context={"letters": letters},
    )
    calls = [res.info]
    flags: list[VerifyFlag] = []
    answer = res.value.answer if res.value is not None else None
    reason = None
    if res.value is None:
        flags.append("unverified")
        reason = res.info.error
    elif answer is None:
        flags.append("unanswerable")
    elif answer != task.answer:
        flags.append("wrong")
    oo_answer = None
    if options_only:
        oo = await client.call(
            VERIFY_OPTIONS_ONLY, common, key=f"{task.id}:verify-oo", context={"letters": letters}
        )
        calls.append(oo.info)
        oo_answer = oo.value.answer if oo.value is not None else None
        if oo_answer == task.answer:
            flags.append("options_only")
    if length_bias:
        flags.append("length_bias")
    return VerifyRecord(
        id=task.id,
        case_id=task.case_id,
        status="ok" if res.value is not None else "failed",
        reason=reason,
        answer=answer,
        options_only_answer=oo_answer,
        flags=flags,
        calls=calls,
    )
