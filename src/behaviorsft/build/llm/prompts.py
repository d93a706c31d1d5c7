"""Every prompt of the LLM builder, versioned, each next to the schema of its answer.

A :class:`Prompt` bundles a system text, a user template, the pydantic model
its answer must validate against and a version number. The id and version go
into every stage record and ``Task.generator.prompt_id`` (``"task/v1"``), so a
bench says which wording produced it. **Bump the version whenever a prompt or
its schema changes**: the response cache is keyed on the exact request, so an
edited prompt re-asks anyway, but the version is what a reader of a bench sees.

Answers are asked for as one JSON object. The schema travels twice: as the
endpoint's JSON-schema mode (``response_format``) when it has one, and in the
system text for endpoints without it, so both paths get the same answer shape.

Cross-field rules a JSON schema cannot state (a quote must be a verbatim span
of the source, a turn range must exist, a label must match its score) are
pydantic validators reading a validation *context* (the source text, the
number of turns, the option letters). Their messages are written to be sent
back to the model verbatim when it is re-asked, so they say what to change.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from behaviorsft.records import ChatMessage, PerturbationKind
from behaviorsft.taxonomy import (
    TASK_DESCRIPTIONS,
    BehaviorLabel,
    Category,
    Complexity,
    TaskType,
    category_of,
    label_for_score,
)

M = TypeVar("M", bound=BaseModel)


class Answer(BaseModel):
    """Base of every LLM answer schema: unknown keys are ignored, not fatal.

    Models add harmless extra keys ("notes", "confidence"); rejecting them
    would cost a re-ask for nothing.
    """

    model_config = ConfigDict(extra="ignore")


def _ctx(info: ValidationInfo, key: str) -> Any:
    return (info.context or {}).get(key)


# Score bands per category: loose on purpose (the LLM grades behaviour within a
# band; the band only catches a score on the wrong side of the spectrum).
SCORE_BANDS: dict[Category, tuple[float, float]] = {
    Category.REACTIVE: (0.0, 0.45),
    Category.BALANCED: (0.3, 0.7),
    Category.PROACTIVE: (0.5, 1.0),
}


def check_behavior(task_type: TaskType, score: float, label: BehaviorLabel) -> None:
    """Raise ValueError (model-readable) if ``score``/``label`` disagree or leave the band."""
    expected = label_for_score(score)
    if label is not expected:
        raise ValueError(
            f"behavior_label: a behavior_score of {score} maps to {expected.value!r}, "
            f"not {label.value!r} (bins: <0.2, <0.4, <0.6, <0.8, >=0.8)"
        )
    low, high = SCORE_BANDS[category_of(task_type)]
    if not low <= score <= high:
        raise ValueError(
            f"behavior_score: {task_type.value} is a {category_of(task_type).value} task type; "
            f"its score must lie in [{low}, {high}], not {score}"
        )


def _check_range(info: ValidationInfo, start: int, end: int) -> None:
    n = _ctx(info, "n_turns")
    if end < start:
        raise ValueError(f"turn_end ({end}) is before turn_start ({start})")
    if n is not None and end > n - 1:
        raise ValueError(f"turn_end ({end}) is past the last turn ({n - 1})")


# ----------------------------------------------------------------------------- prompt type


# Building a JSON schema costs milliseconds; at 10^5 calls it would dominate the client.
@cache
def _schema_of(schema: type[BaseModel]) -> dict[str, Any]:
    return schema.model_json_schema()


@cache
def _schema_text(schema: type[BaseModel]) -> str:
    return json.dumps(_schema_of(schema), separators=(",", ":"))


@dataclass(frozen=True)
class Prompt(Generic[M]):
    """A versioned prompt: system text, user template, and the schema of its answer."""

    name: str
    version: int
    system: str
    user: str
    schema: type[M]
    max_new_tokens: int = 2048
    fields: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        # Placeholders are checked once, here, not at the first render in a long run.
        names = {f for _, f, _, _ in string.Formatter().parse(self.user) if f is not None}
        bad = [f for f in names if not f.isidentifier()]
        if bad:
            raise ValueError(f"prompt {self.name}: placeholders must be plain names, got {bad}")
        object.__setattr__(self, "fields", frozenset(names))

    @property
    def id(self) -> str:
        """``name/vN``, recorded with everything this prompt produced."""
        return f"{self.name}/v{self.version}"

    def json_schema(self) -> dict[str, Any]:
        """The answer's JSON schema (pydantic's, stable key order; built once per schema)."""
        return _schema_of(self.schema)

    def response_format(self) -> dict[str, Any]:
        """The ``response_format`` of the chat-completions API for this answer.

        ``strict`` is off: strict mode needs every property required and no
        defaults, which our optional fields (a missing turn only some types
        have) would break; the pydantic validation after the call is the check.
        """
        return {
            "type": "json_schema",
            "json_schema": {
                "name": self.name.replace("-", "_"),
                "schema": self.json_schema(),
                "strict": False,
            },
        }

    def render(self, **values: Any) -> tuple[ChatMessage, ...]:
        """System + user messages; a missing or unknown placeholder raises KeyError."""
        missing = self.fields - values.keys()
        extra = values.keys() - self.fields
        if missing or extra:
            raise KeyError(
                f"prompt {self.id}: missing values {sorted(missing)}, unknown {sorted(extra)}"
            )
        schema = _schema_text(self.schema)
        system = (
            f"{self.system}\n\nReply with one JSON object and nothing else (no prose, no "
            f"code fences). It must match this JSON schema:\n{schema}"
        )
        return (
            ChatMessage(role="system", content=system),
            ChatMessage(role="user", content=self.user.format(**values)),
        )


# ----------------------------------------------------------------------------- 1. summary

FactSection = Literal[
    "history", "examination", "diagnostics", "conversation", "diagnosis", "management", "other"
]


class SummaryFact(Answer):
    """One fact of the grounded summary."""

    section: FactSection = Field(description="Part of the case the fact belongs to.")
    text: str = Field(min_length=1, description="The fact, in one short sentence.")
    quote: str = Field(
        min_length=3, description="A verbatim span of the source text that states the fact."
    )


class GroundedSummary(Answer):
    """Stage 1 answer: the case as a list of facts, each tied to a span of the source."""

    facts: list[SummaryFact] = Field(min_length=3, description="Facts, in source order.")
    final_diagnosis: str | None = Field(None, description="Final diagnosis, if the source has it.")

    @model_validator(mode="after")
    def _quotes_in_source(self, info: ValidationInfo) -> GroundedSummary:
        source = _ctx(info, "source")
        if source is None:
            return self
        bad = [i for i, f in enumerate(self.facts) if find_span(source, f.quote) is None]
        if bad:
            raise ValueError(
                f"facts {bad}: the quote is not a verbatim span of the source text; copy the "
                "supporting words exactly (whitespace and case may differ) or drop the fact"
            )
        return self


def _quote_pattern(quote: str) -> re.Pattern[str] | None:
    words = re.findall(r"\S+", quote.strip().strip("\"'“”‘’").strip())
    if not words:
        return None
    return re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)


def find_span(source: str, quote: str) -> tuple[int, int] | None:
    """(start, end) character offsets of ``quote`` in ``source``, ignoring case and spacing."""
    pattern = _quote_pattern(quote)
    if pattern is None:
        return None
    m = pattern.search(source)
    return (m.start(), m.end()) if m else None


SUMMARY = Prompt(
    name="summary",
    version=1,
    system=(
        "You are a physician preparing a clinical case report for a benchmark. Extract a "
        "grounded summary: the patient's history, examinations, diagnostic results, any "
        "conversation snippets, management and the final diagnosis. Every fact must be "
        "supported by a quote copied word for word from the source. Never add a fact the "
        "source does not state."
    ),
    user="Case id: {case_id}\n\nSource text:\n<<<\n{source}\n>>>",
    schema=GroundedSummary,
    max_new_tokens=3000,
)


# ----------------------------------------------------------------------------- 2. conversation


class TableOut(Answer):
    """A table shown in a turn (e.g. a lab panel)."""

    title: str = Field("", description="Table title.")
    columns: list[str] = Field(min_length=1, description="Header cells.")
    rows: list[list[str]] = Field(description="Body rows, each as long as the header.")

    @model_validator(mode="after")
    def _rectangular(self) -> TableOut:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"rows[{i}] has {len(row)} cells but the table has {len(self.columns)} columns"
                )
        return self


class TurnOut(Answer):
    """One utterance of the reconstructed conversation."""

    speaker: str = Field(min_length=1, description="Name, e.g. 'Dr. Adeyemi' or 'Patient'.")
    role: str = Field(
        min_length=1,
        description="Role: patient, attending, resident, nurse, radiologist, pharmacist, family.",
    )
    text: str = Field(min_length=1, description="What is said.")
    fact_ids: list[int] = Field(
        default_factory=list, description="Indices of the summary facts this turn uses."
    )
    table: TableOut | None = Field(None, description="A lab table shown in this turn, if any.")
    image: str | None = Field(
        None, description="Caption of an image shown in this turn (only if the source has one)."
    )


class ConversationOut(Answer):
    """Stage 2 answer: the multi-party conversation."""

    turns: list[TurnOut] = Field(min_length=4, description="Turns in order.")

    @model_validator(mode="after")
    def _facts_exist(self, info: ValidationInfo) -> ConversationOut:
        n = _ctx(info, "n_facts")
        if n is None:
            return self
        bad = sorted({i for t in self.turns for i in t.fact_ids if not 0 <= i < n})
        if bad:
            raise ValueError(f"fact_ids {bad} do not exist; the summary has facts 0..{n - 1}")
        return self


CONVERSATION = Prompt(
    name="conversation",
    version=1,
    system=(
        "You turn a grounded case summary into a realistic multi-turn conversation between "
        "the patient and several clinicians (attending, resident, nurse, radiologist, "
        "pharmacist, family as fits the case) that reconstructs the clinical reasoning in "
        "order: history taking, examination, tests, differential diagnosis, management, "
        "communication with the patient. Show laboratory panels as tables and mention images "
        "where the summary has them. Use only the facts in the summary: invent no finding, "
        "value, drug or diagnosis. List for each turn the indices of the facts it uses."
    ),
    user="Case id: {case_id}\n\nSummary facts (index: section: fact):\n{facts}\n\n"
    "Final diagnosis: {final_diagnosis}",
    schema=ConversationOut,
    max_new_tokens=8000,
)


class TurnCheck(Answer):
    """A turn with claims the summary does not support."""

    turn: int = Field(ge=0, description="Turn index.")
    unsupported_claims: list[str] = Field(
        min_length=1, description="Claims of the turn that no summary fact supports."
    )


class FactCheckOut(Answer):
    """Stage 2b answer: turns with invented facts (empty when there are none)."""

    flagged: list[TurnCheck] = Field(default_factory=list, description="Turns with problems.")

    @model_validator(mode="after")
    def _turns_exist(self, info: ValidationInfo) -> FactCheckOut:
        n = _ctx(info, "n_turns")
        bad = [c.turn for c in self.flagged if n is not None and c.turn >= n]
        if bad:
            raise ValueError(f"turns {bad} do not exist; the conversation has turns 0..{n - 1}")
        return self


FACT_CHECK = Prompt(
    name="fact-check",
    version=1,
    system=(
        "You check a clinical conversation against the summary it was written from. For each "
        "turn, list every clinical claim (finding, value, drug, dose, diagnosis, event) that "
        "no summary fact supports. Greetings, questions and reasoning that only restates "
        "summary facts are fine. Report only turns with unsupported claims."
    ),
    user="Case id: {case_id}\n\nSummary facts:\n{facts}\n\n"
    "Conversation (index, speaker, text):\n{turns}",
    schema=FactCheckOut,
    max_new_tokens=2000,
)


# ----------------------------------------------------------------------------- 3. tasks

# What each type asks for, in more words than the taxonomy's one-liners, so the
# generator knows where the answer must come from.
TYPE_GUIDANCE: dict[TaskType, str] = {
    TaskType.FACT_RETRIEVAL: "Ask for one specific fact stated in the turns (a value, a drug, a "
    "finding). The answer is stated in the context.",
    TaskType.TIMELINE_SEQUENCE: "Ask for the order of events, or how a finding changed between "
    "two named turns, using explicit time references in the turns.",
    TaskType.DDX_REASONING: "Ask which evidence given in the turns supports one diagnosis over "
    "another; use only evidence stated before turn_end.",
    TaskType.TREATMENT_DECISION: "Ask which stated data justified a documented clinical action "
    "or decision, using only what was known at that turn.",
    TaskType.REASONING_DIFFERENTIAL_EVOLUTION: "Compare two time points (name both turns) and ask "
    "how the differential should shift given the new data in the later one.",
    TaskType.INTEGRITY_MISSING_TURN_INFERENCE: "Choose one informative turn (set missing_turn); "
    "it will be hidden. Ask what it most likely said, from the turns before and after. The "
    "correct option paraphrases the hidden turn.",
    TaskType.PREDICTIVE_NEXT_ACTION: "Stop the context before an action the team takes; ask for "
    "the most appropriate next clinical action. The correct option is the action taken. Also "
    "write the restraint control of the same question: no_action_option (that no further "
    "action is needed now), control_excerpt (a short later note stating that this action and "
    "any other step due at that point have already been done) and control_rationale (why, "
    "after that note, no further action is the right answer).",
}


class TaskDraftOut(Answer):
    """Stage 3 answer: one task of a given type over the clean conversation."""

    question: str = Field(min_length=10, description="The question.")
    correct_option: str = Field(min_length=1, description="The right answer, as an option.")
    distractors: list[str] = Field(
        min_length=4,
        max_length=12,
        description="Plausible wrong options, about half longer and half shorter than the "
        "correct one.",
    )
    rationale: str = Field(min_length=1, description="Why the answer is right, citing turns.")
    behavior_score: float = Field(ge=0, le=1, description="0 fully reactive .. 1 fully proactive.")
    behavior_label: BehaviorLabel = Field(description="5-class label matching the score.")
    complexity: Complexity = Field(description="'intermediate' or 'advanced'.")
    turn_start: int = Field(ge=0, description="First turn of the context shown.")
    turn_end: int = Field(ge=0, description="Last turn of the context shown.")
    missing_turn: int | None = Field(
        None, description="integrity_missing_turn_inference only: the turn to hide."
    )
    no_action_option: str | None = Field(
        None, description="predictive_next_action only: the option that no action is needed."
    )
    control_excerpt: str | None = Field(
        None,
        description="predictive_next_action only: a later note saying every due step is done.",
    )
    control_rationale: str | None = Field(
        None, description="predictive_next_action only: why no action is right after that note."
    )

    @field_validator("distractors")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        norm = [" ".join(d.lower().split()) for d in v]
        if len(set(norm)) != len(norm):
            raise ValueError("distractors must all be different")
        return v

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> TaskDraftOut:
        ttype: TaskType | None = _ctx(info, "task_type")
        if ttype is not None:
            check_behavior(ttype, self.behavior_score, self.behavior_label)
        _check_range(info, self.turn_start, self.turn_end)
        norm = " ".join(self.correct_option.lower().split())
        if any(" ".join(d.lower().split()) == norm for d in self.distractors):
            raise ValueError("distractors: one of them repeats the correct option")
        if len(norm.split()) >= 3 and norm in " ".join(self.question.lower().split()):
            raise ValueError("question: it contains the correct option word for word")
        n = _ctx(info, "n_turns")
        if ttype is TaskType.PREDICTIVE_NEXT_ACTION:
            # The restraint control (as in the programmatic builder): same question, a
            # note saying everything due is done, and "no action" as the right answer.
            for name in ("no_action_option", "control_excerpt", "control_rationale"):
                if not (getattr(self, name) or "").strip():
                    raise ValueError(f"{name}: required for predictive_next_action")
            no_action = " ".join((self.no_action_option or "").lower().split())
            if no_action == norm or any(
                " ".join(d.lower().split()) == no_action for d in self.distractors
            ):
                raise ValueError(
                    "no_action_option: must differ from the correct option and the distractors"
                )
        if ttype is TaskType.INTEGRITY_MISSING_TURN_INFERENCE:
            if self.missing_turn is None:
                raise ValueError("missing_turn: required for integrity_missing_turn_inference")
            if n is not None and not 1 <= self.missing_turn <= n - 2:
                raise ValueError(
                    f"missing_turn: must have turns before and after it (1..{n - 2}), "
                    f"not {self.missing_turn}"
                )
        return self


TASK = Prompt(
    name="task",
    version=2,  # 2: restraint-control fields for predictive_next_action
    system=(
        "You write one multiple-choice benchmark task that tests a clinical agent on a "
        "conversation. Write the question, the correct option, several wrong options, a "
        "rationale, and grade the task's behaviour on the reactive (0) to proactive (1) "
        "scale with its 5-class label. Wrong options must be plausible for this case, "
        "clearly wrong on reading the context, in the same style as the correct option, and "
        "of similar length: about half of them longer than the correct option and half "
        "shorter. Do not put the answer's words in the question."
    ),
    user="Task type: {task_type} ({category}). {definition}\n{guidance}\n\n"
    "Case id: {case_id}\nConversation (turns 0..{last_turn}):\n{turns}",
    schema=TaskDraftOut,
    max_new_tokens=2000,
)


# ----------------------------------------------------------------------------- 4. augmentation

# The challenge each augmented type injects (paper Section 2 and records.PerturbationKind).
AUGMENT_KINDS: dict[TaskType, PerturbationKind] = {
    TaskType.EXPLICIT_ERROR_CORRECTION: PerturbationKind.ERROR,
    TaskType.OMISSION_DETECTION: PerturbationKind.OMISSION,
    TaskType.STANDARD_OF_CARE: PerturbationKind.DEVIATION,
    TaskType.INTERPRETATION_CONFLICT: PerturbationKind.CONFLICT,
    TaskType.DATA_CONFLICT_RESOLUTION: PerturbationKind.CONFLICT,
    TaskType.CONSISTENCY_CHECK: PerturbationKind.INCONSISTENCY,
}

AUGMENT_GUIDANCE: dict[TaskType, str] = {
    TaskType.EXPLICIT_ERROR_CORRECTION: "Inject a probable clinical error into a new order or "
    "note (a drug the patient is allergic to, a tenfold dose, the wrong drug).",
    TaskType.OMISSION_DETECTION: "Leave out of a handover or plan something clinical standards "
    "expect for this case (a test, a monitoring step, a critical symptom).",
    TaskType.STANDARD_OF_CARE: "Write management that departs from an accepted guideline for "
    "this condition.",
    TaskType.INTERPRETATION_CONFLICT: "Write a report (e.g. imaging) whose finding is at odds "
    "with the examination in the conversation.",
    TaskType.DATA_CONFLICT_RESOLUTION: "Repeat a numeric value from the conversation with the "
    "number changed, as if transcribed between reports.",
    TaskType.CONSISTENCY_CHECK: "Write a summary whose conclusion does not fit the findings.",
}


class AugmentOut(Answer):
    """Stage 4 answer: a perturbed note, its clean twin, and the task asked of both."""

    clean_excerpt: str = Field(min_length=10, description="A note consistent with the case.")
    perturbed_excerpt: str = Field(
        min_length=10, description="The same note with the challenge injected."
    )
    original: str | None = Field(
        None, description="Words of the clean note that were changed (None if text was added)."
    )
    modified: str | None = Field(
        None, description="Words of the perturbed note that replace them (None if removed)."
    )
    description: str = Field(min_length=1, description="What the change means clinically.")
    question: str = Field(min_length=10, description="Question asked about either note.")
    correct_option: str = Field(min_length=1, description="Right answer for the perturbed note.")
    no_issue_option: str = Field(
        min_length=1, description="Option saying nothing is wrong: right for the clean note."
    )
    distractors: list[str] = Field(
        min_length=4, max_length=12, description="Wrong options, of similar length."
    )
    rationale: str = Field(min_length=1, description="Why the answer is right (perturbed note).")
    control_rationale: str = Field(min_length=1, description="Why the clean note has no issue.")
    behavior_score: float = Field(ge=0, le=1, description="0 fully reactive .. 1 fully proactive.")
    behavior_label: BehaviorLabel = Field(description="5-class label matching the score.")
    complexity: Complexity = Field(description="'intermediate' or 'advanced'.")
    turn_start: int = Field(ge=0, description="First turn shown before the note.")
    turn_end: int = Field(ge=0, description="Last turn shown before the note.")

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> AugmentOut:
        ttype: TaskType | None = _ctx(info, "task_type")
        if ttype is not None:
            check_behavior(ttype, self.behavior_score, self.behavior_label)
        _check_range(info, self.turn_start, self.turn_end)
        if self.original is None and self.modified is None:
            raise ValueError("original/modified: give at least one of them")
        if _squash(self.clean_excerpt) == _squash(self.perturbed_excerpt):
            raise ValueError("perturbed_excerpt: identical to clean_excerpt; inject the change")
        if self.original is not None and find_span(self.clean_excerpt, self.original) is None:
            raise ValueError("original: must be copied word for word from clean_excerpt")
        if self.modified is not None and find_span(self.perturbed_excerpt, self.modified) is None:
            raise ValueError("modified: must be copied word for word from perturbed_excerpt")
        if self.original is not None and _squash(self.original) == _squash(self.modified or ""):
            raise ValueError("original and modified are the same: nothing was changed")
        opts = [self.correct_option, self.no_issue_option, *self.distractors]
        norm = [_squash(o) for o in opts]
        if len(set(norm)) != len(norm):
            raise ValueError("options: correct_option, no_issue_option and distractors must differ")
        return self


def _squash(text: str) -> str:
    return " ".join(text.lower().split())


AUGMENT = Prompt(
    name="augment",
    version=1,
    system=(
        "You make a proactive benchmark task from a clinical conversation by injecting a "
        "subtle challenge into a short note shown after it (an order, a handover, a report, "
        "a summary). Write the clean note (consistent with the case) and the same note with "
        "the challenge, record exactly which words changed, and write one question that fits "
        "both notes: for the perturbed note the right option flags the issue; for the clean "
        "note the right option is the 'no issue' one. Wrong options must be plausible and of "
        "similar length: about half longer than the correct option, half shorter."
    ),
    user="Task type: {task_type}. {definition}\nChallenge: {guidance} (perturbation kind: "
    "{kind})\n\nCase id: {case_id}\nConversation (turns 0..{last_turn}):\n{turns}",
    schema=AugmentOut,
    max_new_tokens=2500,
)


# ----------------------------------------------------------------------------- 5. verification


class VerifyOut(Answer):
    """Stage 5 answer: the verifier's choice, or null when it cannot tell."""

    answer: str | None = Field(description="Option letter, or null if it cannot be answered.")
    reason: str = Field("", description="One sentence.")

    @field_validator("answer", mode="before")
    @classmethod
    def _letter(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().strip("().").upper() or None
        return v

    @model_validator(mode="after")
    def _known_letter(self, info: ValidationInfo) -> VerifyOut:
        letters = _ctx(info, "letters")
        if self.answer is not None and letters is not None and self.answer not in letters:
            raise ValueError(f"answer: {self.answer!r} is not one of {''.join(letters)} or null")
        return self


VERIFY = Prompt(
    name="verify",
    version=1,
    system=(
        "You are an expert clinician answering a multiple-choice question about a case. "
        "Read the context, then choose the single best option. If the context does not let "
        "you decide, answer null."
    ),
    user="Case id: {case_id}\nContext:\n{context}\n\nQuestion: {question}\n{options}",
    schema=VerifyOut,
    max_new_tokens=300,
)

VERIFY_OPTIONS_ONLY = Prompt(
    name="verify-options-only",
    version=1,
    system=(
        "You see a multiple-choice question about a clinical case, but not the case. If one "
        "option is clearly right without the case (from the options' wording alone), give "
        "its letter; otherwise answer null. Do not guess."
    ),
    user="Case id: {case_id}\nQuestion: {question}\n{options}",
    schema=VerifyOut,
    max_new_tokens=200,
)

PROMPTS: dict[str, Prompt[Any]] = {
    p.name: p
    for p in (SUMMARY, CONVERSATION, FACT_CHECK, TASK, AUGMENT, VERIFY, VERIFY_OPTIONS_ONLY)
}


def prompt_versions() -> dict[str, str]:
    """``{name: id}`` of every prompt, for the manifest."""
    return {name: p.id for name, p in PROMPTS.items()}


def type_definition(task_type: TaskType) -> str:
    """The taxonomy's one-line definition of a type (shared with every other stage)."""
    return TASK_DESCRIPTIONS[task_type]
