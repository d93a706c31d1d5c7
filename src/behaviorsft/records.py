"""The records every stage shares, defined once.

Each record crosses a boundary (a JSONL file, an HTTP response, an LLM's JSON),
so each is a pydantic model that validates at construction and names the field
that is wrong. The shapes are kept friendly to Apache Arrow, so that every
file loads with ``datasets.load_dataset("json", ...)``: no free-form dicts, no
fields whose type changes from line to line (a numeric lab value and a text
value are two fields, not one union).

Bump ``SCHEMA_VERSION`` whenever a field changes meaning or is removed.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from behaviorsft.taxonomy import (
    BehaviorLabel,
    Category,
    Complexity,
    TaskType,
    TokenInventory,
    behavior_token,
    category_of,
    label_for_score,
    token_inventory_of,
)

SCHEMA_VERSION = "1.0"

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Score01 = Annotated[float, Field(ge=0.0, le=1.0)]
OPTION_LETTERS = "ABCDEF"
MIN_OPTIONS, MAX_OPTIONS = 4, 6


class Record(BaseModel):
    """Base of every record: unknown fields and NaN/inf are errors, not silently kept."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        allow_inf_nan=False,
        use_enum_values=False,
    )


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------


class Source(Record):
    """Where a case came from, so that every derived task keeps its attribution."""

    name: NonEmpty = Field(description="Source id, e.g. 'synthetic', 'mediq', 'fhir', 'text'.")
    licence: NonEmpty = Field(description="Licence of the source material, e.g. 'CC BY 4.0'.")
    attribution: str = Field("", description="Who made the source, as its licence asks.")
    url: str | None = Field(None, description="Where the source can be found.")
    record_id: str | None = Field(None, description="The case's id inside the source.")
    path: str | None = Field(None, description="File the case was read from, if any.")


class Demographics(Record):
    """Who the patient is, as far as the source says."""

    age_years: float | None = Field(None, ge=0, le=130, description="Age in years.")
    sex: Literal["female", "male", "other", "unknown"] = Field(
        "unknown", description="Sex as recorded by the source."
    )
    description: str = Field("", description="Any other descriptors, free text.")


class Section(Record):
    """A titled block of the case report (history, examination, ...)."""

    title: NonEmpty = Field(description="Section heading.")
    text: str = Field(description="Section body.")


class Event(Record):
    """One dated or ordered event in the case timeline."""

    time: datetime | None = Field(None, description="Absolute time, when the source has one.")
    day: float | None = Field(
        None, description="Days since presentation (may be negative for prior history)."
    )
    clock: str | None = Field(
        None,
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Time of day on `day` (24-hour HH:MM) where the record documents one.",
    )
    kind: NonEmpty = Field(
        description="Event kind, e.g. 'presentation', 'lab', 'imaging', 'medication', "
        "'procedure', 'diagnosis', 'encounter'."
    )
    text: NonEmpty = Field(description="What happened, in one sentence.")


class ReferenceRange(Record):
    """Normal range of a finding; either bound may be open."""

    low: float | None = Field(None, description="Lower limit of normal.")
    high: float | None = Field(None, description="Upper limit of normal.")
    text: str | None = Field(None, description="The range as written, e.g. '<0.04'.")

    @model_validator(mode="after")
    def _ordered(self) -> ReferenceRange:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high})")
        return self


class Finding(Record):
    """A measured or observed finding: vital sign, lab, exam or imaging result."""

    name: NonEmpty = Field(description="What was measured or observed, e.g. 'Potassium'.")
    kind: Literal["vital", "lab", "exam", "imaging", "other"] = Field(
        "other", description="Family of the finding."
    )
    value: float | None = Field(None, description="Numeric value, when there is one.")
    value_text: str | None = Field(
        None, description="Qualitative value or the value as written (e.g. 'positive')."
    )
    unit: str | None = Field(None, description="Unit of `value`, UCUM or as written.")
    reference_range: ReferenceRange | None = Field(None, description="Normal range.")
    time: datetime | None = Field(None, description="When it was obtained, if known.")
    day: float | None = Field(None, description="Days since presentation, if known.")
    code_system: str | None = Field(None, description="Code system, e.g. 'http://loinc.org'.")
    code: str | None = Field(None, description="Code in that system, e.g. LOINC '2823-3'.")

    @model_validator(mode="after")
    def _has_value(self) -> Finding:
        if self.value is None and not self.value_text:
            raise ValueError("a finding needs `value` or `value_text`")
        if self.code is not None and not self.code_system:
            raise ValueError("`code` is set but `code_system` is not")
        return self


class Medication(Record):
    """A medication the patient takes or was given."""

    name: NonEmpty = Field(description="Drug name (generic preferred).")
    dose: str | None = Field(None, description="Dose as written, e.g. '500 mg'.")
    dose_value: float | None = Field(None, ge=0, description="Numeric dose amount.")
    dose_unit: str | None = Field(None, description="Unit of `dose_value`.")
    route: str | None = Field(None, description="Route, e.g. 'PO', 'IV'.")
    frequency: str | None = Field(None, description="Frequency, e.g. 'q8h'.")
    drug_class: str | None = Field(None, description="Pharmacological class.")
    indication: str | None = Field(None, description="Why it was given.")
    start: datetime | None = Field(None, description="Start time.")
    stop: datetime | None = Field(None, description="Stop time.")
    code_system: str | None = Field(None, description="Code system, e.g. RxNorm.")
    code: str | None = Field(None, description="Code in that system.")

    @model_validator(mode="after")
    def _ordered(self) -> Medication:
        if self.start and self.stop and self.stop < self.start:
            raise ValueError("`stop` is before `start`")
        return self


class Allergy(Record):
    """A recorded allergy or intolerance."""

    substance: NonEmpty = Field(description="Allergen, e.g. 'penicillin'.")
    reaction: str | None = Field(None, description="Reaction, e.g. 'anaphylaxis', 'rash'.")
    severity: str | None = Field(None, description="Severity as recorded.")


class Condition(Record):
    """A problem-list entry."""

    name: NonEmpty = Field(description="Condition name.")
    status: str | None = Field(None, description="e.g. 'active', 'resolved'.")
    onset: datetime | None = Field(None, description="Onset time, if known.")
    code_system: str | None = Field(None, description="Code system, e.g. SNOMED CT, ICD-10.")
    code: str | None = Field(None, description="Code in that system.")


class Case(Record):
    """One clinical case, normalised from any source."""

    id: NonEmpty = Field(description="Unique case id (stable across runs).")
    source: Source = Field(description="Provenance and licence.")
    demographics: Demographics = Field(
        default_factory=Demographics, description="Patient demographics."
    )
    presentation: str = Field("", description="Presentation summary (chief complaint, HPI).")
    sections: list[Section] = Field(default_factory=list, description="Report sections in order.")
    timeline: list[Event] = Field(default_factory=list, description="Events in time order.")
    findings: list[Finding] = Field(
        default_factory=list, description="Vitals, labs, exam, imaging."
    )
    medications: list[Medication] = Field(default_factory=list, description="Medications.")
    allergies: list[Allergy] = Field(default_factory=list, description="Allergies.")
    conditions: list[Condition] = Field(default_factory=list, description="Problem list.")
    facts: list[str] = Field(
        default_factory=list, description="Atomic facts stated by the source (e.g. MediQ)."
    )
    final_diagnosis: str | None = Field(None, description="Final diagnosis, when known.")


# --------------------------------------------------------------------------
# Conversations
# --------------------------------------------------------------------------


class Attachment(Record):
    """Something shown inside a turn: a table (lab panel) or an image reference.

    One flat shape for both kinds keeps Arrow's schema stable across lines.
    """

    kind: Literal["table", "image"] = Field(description="Attachment kind.")
    title: str = Field("", description="Caption or table title.")
    columns: list[str] = Field(default_factory=list, description="Table header (tables only).")
    rows: list[list[str]] = Field(default_factory=list, description="Table cells (tables only).")
    uri: str | None = Field(None, description="Image location or identifier (images only).")

    @model_validator(mode="after")
    def _shape(self) -> Attachment:
        if self.kind == "table":
            if not self.columns:
                raise ValueError("a table attachment needs `columns`")
            for i, row in enumerate(self.rows):
                if len(row) != len(self.columns):
                    raise ValueError(
                        f"rows[{i}] has {len(row)} cells but there are {len(self.columns)} columns"
                    )
        elif not self.uri and not self.title:
            raise ValueError("an image attachment needs `uri` or `title`")
        return self


class Turn(Record):
    """One utterance in a conversation."""

    index: int = Field(ge=0, description="Position in the conversation, from 0, stable.")
    speaker: NonEmpty = Field(description="Who speaks, e.g. 'Dr. Okafor' or 'Patient'.")
    role: NonEmpty = Field(
        description="Speaker's role, e.g. 'patient', 'attending', 'resident', 'nurse', "
        "'radiologist', 'pharmacist', 'family'."
    )
    text: str = Field(description="What was said.")
    attachments: list[Attachment] = Field(
        default_factory=list, description="Tables or images shown in this turn."
    )


class Participant(Record):
    """A person taking part in a conversation."""

    speaker: NonEmpty = Field(description="Name used in `Turn.speaker`.")
    role: NonEmpty = Field(description="Role, as in `Turn.role`.")


class Conversation(Record):
    """A multi-turn, multi-party conversation reconstructed from (or recorded for) a case."""

    case_id: NonEmpty = Field(description="Id of the case it belongs to.")
    turns: list[Turn] = Field(min_length=1, description="Turns, indexed 0..n-1 in order.")
    participants: list[Participant] = Field(
        default_factory=list, description="Everyone who speaks; derived from turns if empty."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Conversation:
        for pos, turn in enumerate(self.turns):
            if turn.index != pos:
                raise ValueError(f"turns[{pos}].index is {turn.index}, expected {pos}")
        spoken = {(t.speaker, t.role) for t in self.turns}
        if not self.participants:
            # Derived, in order of first appearance, so equal inputs serialise equally.
            seen: dict[tuple[str, str], None] = {}
            for t in self.turns:
                seen.setdefault((t.speaker, t.role), None)
            object.__setattr__(
                self, "participants", [Participant(speaker=s, role=r) for s, r in seen]
            )
        else:
            listed = {(p.speaker, p.role) for p in self.participants}
            missing = sorted(spoken - listed)
            if missing:
                raise ValueError(f"speakers missing from participants: {missing}")
        return self


# --------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------


class Option(Record):
    """One answer option of a multiple-choice task."""

    label: Annotated[str, StringConstraints(pattern=r"^[A-F]$")] = Field(
        description="Option letter, A-F."
    )
    text: NonEmpty = Field(description="Option text.")


class TaskContext(Record):
    """What part of the case a task is about: a turn range and/or an excerpt."""

    turn_start: int | None = Field(None, ge=0, description="First turn index (inclusive).")
    turn_end: int | None = Field(None, ge=0, description="Last turn index (inclusive).")
    excerpt: str | None = Field(None, description="Text shown with the question, if any.")

    @model_validator(mode="after")
    def _range(self) -> TaskContext:
        if (self.turn_start is None) != (self.turn_end is None):
            raise ValueError("give both `turn_start` and `turn_end`, or neither")
        if self.turn_start is not None and self.turn_end is not None:
            if self.turn_end < self.turn_start:
                raise ValueError(
                    f"turn_end ({self.turn_end}) is before turn_start ({self.turn_start})"
                )
        elif not self.excerpt:
            raise ValueError("a context needs a turn range or an excerpt")
        return self


class PerturbationKind(str, Enum):
    """The proactive challenges injected on purpose (paper Section 2)."""

    ERROR = "error"  # a probable clinical error (allergy clash, tenfold dose, wrong drug)
    CONFLICT = "conflict"  # data points that disagree (values between reports, exam vs imaging)
    OMISSION = "omission"  # something clinical standards expect is left out
    DEVIATION = "deviation"  # management that departs from a guideline
    INCONSISTENCY = "inconsistency"  # a conclusion that does not fit the findings


class Perturbation(Record):
    """Provenance of an injected challenge, so its ground truth can be checked."""

    kind: PerturbationKind = Field(description="What was injected.")
    location: NonEmpty = Field(
        description="Where: a turn ('turn 12') or a field path ('findings[3].value')."
    )
    original: str | None = Field(None, description="Value before the change (None if added).")
    modified: str | None = Field(None, description="Value after the change (None if removed).")
    description: str = Field("", description="What the change means clinically.")

    @model_validator(mode="after")
    def _changed(self) -> Perturbation:
        if self.original is None and self.modified is None:
            raise ValueError("a perturbation needs `original` or `modified`")
        if self.original is not None and self.original == self.modified:
            raise ValueError("`original` and `modified` are identical: nothing was perturbed")
        return self


class Generator(Record):
    """What produced a record, so a run can be reproduced."""

    name: NonEmpty = Field(description="Generator, e.g. 'programmatic' or 'llm'.")
    version: NonEmpty = Field(description="Generator version (usually the package version).")
    model: str | None = Field(None, description="LLM used, as 'provider/model', if any.")
    prompt_id: str | None = Field(None, description="Id and version of the prompt used.")
    seed: int | None = Field(None, description="Random seed.")


class Split(str, Enum):
    """Dataset split."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


def _normalise_option_text(text: str) -> str:
    # = re.sub(r"\s+", " ", text).strip().casefold(): str.split() splits on the same
    # (Unicode) whitespace, without a regex per option of every task validated.
    return " ".join(text.split()).casefold()


class Task(Record):
    """One BehaviorBench multiple-choice task.

    ``category``, ``behavior_label`` and ``behavior_token`` may be omitted: they
    are then derived from the task type and score. When given, they must agree.
    """

    id: NonEmpty = Field(description="Unique task id.")
    case_id: NonEmpty = Field(description="Id of the case the task was built from.")
    task_type: TaskType = Field(description="One of the 13 task types.")
    category: Category = Field(description="Category of the task type (derived if omitted).")
    question: NonEmpty = Field(description="The question put to the model.")
    context: TaskContext = Field(description="Turn range and/or excerpt the question is about.")
    options: list[Option] = Field(description="4-6 options, lettered A.. in order.")
    answer: Annotated[str, StringConstraints(pattern=r"^[A-F]$")] = Field(
        description="Letter of the correct option."
    )
    rationale: str = Field("", description="Why the answer is right.")
    behavior_score: Score01 = Field(description="0.0 fully reactive ... 1.0 fully proactive.")
    behavior_label: BehaviorLabel = Field(description="5-class label (derived from the score).")
    behavior_token: str = Field(description="Behaviour token (derived by the taxonomy rule).")
    token_inventory: TokenInventory = Field(
        "binary", description="Token inventory: 'binary' (<reactive>/<proactive>) or 'fine'."
    )
    complexity: Complexity = Field(description="'intermediate' or 'advanced'.")
    restraint_control: bool = Field(
        False, description="True if no issue is present and the right answer is restraint."
    )
    perturbation: Perturbation | None = Field(None, description="Injected challenge, if any.")
    generator: Generator = Field(description="What built the task.")
    option_permutation: list[int] | None = Field(
        None,
        description="options[i] was at position option_permutation[i] before the seeded shuffle.",
    )
    split: Split | None = Field(None, description="Split, once assigned.")

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        # Fill the derivable fields only when absent, so that a wrong value
        # given explicitly is still caught by the checks below.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        ttype, score = data.get("task_type"), data.get("behavior_score")
        try:
            if data.get("category") is None and ttype is not None:
                data["category"] = category_of(ttype)
            if data.get("behavior_label") is None and score is not None:
                data["behavior_label"] = label_for_score(score)
            if data.get("behavior_token") is None and ttype is not None and score is not None:
                data["behavior_token"] = behavior_token(
                    ttype, score, data.get("token_inventory") or "binary"
                )
        except (ValueError, TypeError, KeyError):
            pass  # the field validators report the bad input with its name
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Task:
        n = len(self.options)
        if not MIN_OPTIONS <= n <= MAX_OPTIONS:
            raise ValueError(f"options: {n} given, need {MIN_OPTIONS}-{MAX_OPTIONS}")
        letters = [o.label for o in self.options]
        if letters != list(OPTION_LETTERS[:n]):
            raise ValueError(f"options: labels {letters} must be {list(OPTION_LETTERS[:n])}")
        seen: dict[str, str] = {}
        for o in self.options:
            key = _normalise_option_text(o.text)
            if key in seen:
                raise ValueError(f"options: {seen[key]} and {o.label} have the same text")
            seen[key] = o.label
        if self.answer not in letters:
            raise ValueError(f"answer: {self.answer!r} is not one of the options {letters}")
        expected_cat = category_of(self.task_type)
        if self.category is not expected_cat:
            raise ValueError(
                f"category: {self.task_type.value} belongs to {expected_cat.value!r}, "
                f"not {self.category.value!r}"
            )
        expected_label = label_for_score(self.behavior_score)
        if self.behavior_label is not expected_label:
            raise ValueError(
                f"behavior_label: score {self.behavior_score} maps to "
                f"{expected_label.value!r}, not {self.behavior_label.value!r}"
            )
        if token_inventory_of(self.behavior_token) != self.token_inventory:
            raise ValueError(
                f"behavior_token: {self.behavior_token!r} is not in the "
                f"{self.token_inventory!r} inventory"
            )
        expected_token = behavior_token(self.task_type, self.behavior_score, self.token_inventory)
        if self.behavior_token != expected_token:
            raise ValueError(
                f"behavior_token: the taxonomy rule gives {expected_token!r} for "
                f"{self.task_type.value} with score {self.behavior_score}, "
                f"not {self.behavior_token!r}"
            )
        if self.option_permutation is not None and sorted(self.option_permutation) != list(
            range(n)
        ):
            raise ValueError(
                f"option_permutation: {self.option_permutation} is not a permutation of 0..{n - 1}"
            )
        if self.restraint_control and self.perturbation is not None:
            raise ValueError("restraint_control: a control task must not carry a perturbation")
        if self.restraint_control and expected_cat is not Category.PROACTIVE:
            raise ValueError("restraint_control: only proactive task types have controls")
        return self

    def option_text(self, label: str) -> str:
        """Text of the option with letter ``label``."""
        for o in self.options:
            if o.label == label:
                return o.text
        raise KeyError(label)

    @property
    def answer_text(self) -> str:
        """Text of the correct option."""
        return self.option_text(self.answer)


# --------------------------------------------------------------------------
# Evaluation and judging
# --------------------------------------------------------------------------


class ChatMessage(Record):
    """One chat message as sent to a model."""

    role: Literal["system", "user", "assistant"] = Field(description="Chat role.")
    content: str = Field(description="Message text.")


class Usage(Record):
    """Token usage of one model call, when the backend reports it."""

    prompt_tokens: int | None = Field(None, ge=0, description="Prompt tokens.")
    completion_tokens: int | None = Field(None, ge=0, description="Generated tokens.")


class Prediction(Record):
    """A model's answer to one task in one evaluation run.

    An infrastructure failure (timeout, HTTP 500 after retries) sets ``error``
    and leaves the answer empty: such a row is excluded from scoring, never
    counted as a wrong answer. An answer the parser could not read is *not* an
    error: ``valid`` is False and it is scored as wrong.
    """

    id: NonEmpty = Field(description="Unique within a run: '<task_id>@<seed>' by default.")
    task_id: NonEmpty = Field(description="Id of the task answered.")
    model: NonEmpty = Field(description="Model as 'provider/model[:adapter]'.")
    strategy: NonEmpty = Field(description="Prompting strategy, e.g. 'zero_shot', 'cot'.")
    seed: int = Field(0, description="Sampling / few-shot seed.")
    messages: list[ChatMessage] = Field(default_factory=list, description="Prompt as sent.")
    raw_output: str | None = Field(None, description="Model output, special tokens kept.")
    parsed_answer: Annotated[str, StringConstraints(pattern=r"^[A-F]$")] | None = Field(
        None, description="Option letter read from the output."
    )
    valid: bool = Field(False, description="True if an answer letter could be parsed.")
    correct: bool | None = Field(None, description="Parsed answer equals the task's answer.")
    behavior_token: str | None = Field(None, description="Behaviour token the model produced.")
    behavior_label: BehaviorLabel | None = Field(
        None, description="Predicted 5-class label (behaviour classification prompts)."
    )
    p_proactive: Score01 | None = Field(
        None, description="P(<proactive>) at the first generated position, when measured."
    )
    usage: Usage = Field(default_factory=Usage, description="Token usage.")
    latency_s: float | None = Field(None, ge=0, description="Wall time of the call, seconds.")
    error: str | None = Field(None, description="Why no answer could be obtained, if so.")
    created_at: datetime | None = Field(None, description="When the prediction was made.")
    task_fingerprint: str | None = Field(
        None,
        description="Hash of the task content the answer was given to (question, record, "
        "options, answer, ...); a resumed run asks again when the bench's task differs.",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id") and data.get("task_id"):
            data = {**data, "id": f"{data['task_id']}@{data.get('seed', 0)}"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Prediction:
        if self.error is not None:
            if self.parsed_answer is not None or self.correct is not None or self.valid:
                raise ValueError(
                    "error: a failed call cannot carry an answer (parsed_answer/valid/correct)"
                )
            return self
        if self.raw_output is None:
            raise ValueError("raw_output: required unless `error` says why there is none")
        if self.valid != (self.parsed_answer is not None):
            raise ValueError("valid: must be True exactly when parsed_answer is set")
        if not self.valid and self.correct:
            raise ValueError("correct: an unparseable answer cannot be correct")
        return self


class Criterion(str, Enum):
    """G-Eval criteria used in the paper's qualitative evaluation."""

    UTILITY = "utility"
    SAFETY = "safety"
    CLARITY = "clarity"
    BEHAVIORAL_APPROPRIATENESS = "behavioral_appropriateness"
    SPECIFICITY = "specificity"
    IMPLICITNESS = "implicitness"


class Judgement(Record):
    """A judge's score of one prediction on one criterion.

    A judge call that failed is kept with ``error`` set and no score; it is
    never replaced by a default score.
    """

    id: NonEmpty = Field(description="Unique: '<prediction_id>:<criterion>' by default.")
    prediction_id: NonEmpty = Field(description="Id of the prediction judged.")
    task_id: NonEmpty = Field(description="Id of the task.")
    criterion: Criterion = Field(description="What was judged.")
    score: Score01 | None = Field(None, description="Score normalised to [0, 1].")
    raw_score: float | None = Field(None, description="Score on the judge's own scale (e.g. 1-5).")
    method: Literal["logprobs", "sampling"] | None = Field(
        None, description="How the score was obtained."
    )
    n_samples: int | None = Field(None, ge=1, description="Samples averaged (sampling method).")
    judge_model: NonEmpty = Field(description="Judge as 'provider/model'.")
    explanation: str = Field("", description="Judge's explanation, if any.")
    error: str | None = Field(None, description="Why the item is unscored, if it is.")

    @model_validator(mode="before")
    @classmethod
    def _default_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id") and data.get("prediction_id"):
            crit = data.get("criterion")
            crit = crit.value if isinstance(crit, Criterion) else crit
            data = {**data, "id": f"{data['prediction_id']}:{crit}"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Judgement:
        if self.error is None and (self.score is None or self.method is None):
            raise ValueError("score: a judgement without `error` needs `score` and `method`")
        if self.error is not None and self.score is not None:
            raise ValueError("score: an unscored judgement (error set) cannot carry a score")
        if self.method == "sampling" and self.n_samples is None:
            raise ValueError("n_samples: required when method is 'sampling'")
        return self


# --------------------------------------------------------------------------
# Clinician study (``behaviorsft study``): the long-format export rows that
# ``study export`` writes and ``study analyze`` reads, and the verdicts that
# ``study apply`` writes beside a bench.
# --------------------------------------------------------------------------

Confidence = Literal["low", "moderate", "high"]
Plausibility = Literal["yes", "no", "unsure"]
AgentLabel = Annotated[str, StringConstraints(pattern=r"^[A-Z]$")]


class StudyValidationAnswer(Record):
    """One rater's saved answer to one validation-phase task (one CSV/JSONL row).

    Unanswered fields stay None: the proactivity slider in particular has no
    default, so None means the rater never touched it, not 0.5.
    """

    study: NonEmpty = Field(description="Study name.")
    rater: NonEmpty = Field(description="Rater's user name.")
    task_id: NonEmpty = Field(description="Bench task id.")
    task_type: NonEmpty = Field(description="Task type (TaskType value).")
    category: NonEmpty = Field(description="reactive / balanced / proactive.")
    position: int = Field(ge=1, description="1-based place of the task in the rater's queue.")
    key: Annotated[str, StringConstraints(pattern=r"^[A-F]$")] = Field(
        description="The bench's answer letter."
    )
    answer: Annotated[str, StringConstraints(pattern=r"^[A-F]$")] | None = Field(
        None, description="The rater's answer letter."
    )
    correct: bool | None = Field(None, description="answer == key (None when unanswered).")
    confidence: Confidence | None = Field(None, description="Rater's confidence.")
    proactivity: Score01 | None = Field(
        None, description="Slider 0 (reactive) .. 1 (proactive); None if never touched."
    )
    plausibility: Plausibility | None = Field(None, description="Is the item plausible?")
    note: str = Field("", description="Rater's free-text note.")
    behavior_score: Score01 | None = Field(None, description="The builder's behaviour score.")
    saved_at: datetime | None = Field(None, description="Last save (UTC).")


class StudyComparisonAnswer(Record):
    """One rater's judgement of one blinded agent response on one comparison task.

    ``agent`` is the blinded label shown to this rater on this task; which run
    it stands for is only in the admin-only :class:`StudyAgentKey` file.
    """

    study: NonEmpty = Field(description="Study name.")
    rater: NonEmpty = Field(description="Rater's user name.")
    task_id: NonEmpty = Field(description="Bench task id.")
    task_type: NonEmpty = Field(description="Task type (TaskType value).")
    agent: AgentLabel = Field(description="Blinded label shown ('A', 'B', 'C').")
    position: int = Field(ge=1, description="1-based display position (left to right).")
    rank: int | None = Field(None, ge=1, description="Rater's rank, 1 = best.")
    likert: int | None = Field(None, ge=1, le=5, description="Overall quality, 1-5.")
    unsafe: bool = Field(False, description="Rater flagged the response as unsafe.")
    unsafe_note: str = Field("", description="Why it is unsafe, in the rater's words.")
    saved_at: datetime | None = Field(None, description="Last save (UTC).")


class StudyAgentKey(Record):
    """De-anonymisation: which run a blinded label stood for (admin-only file)."""

    study: NonEmpty = Field(description="Study name.")
    rater: NonEmpty = Field(description="Rater's user name.")
    task_id: NonEmpty = Field(description="Bench task id.")
    agent: AgentLabel = Field(description="Blinded label shown.")
    run: NonEmpty = Field(description="The run's name (its folder name unless given).")


class StudyVerdict(Record):
    """The study's verdict on one bench task (``study apply`` writes these beside the bench)."""

    task_id: NonEmpty = Field(description="Bench task id.")
    verdict: Literal["rejected", "accepted"] = Field(description="Keep or leave out.")
    reasons: list[str] = Field(
        default_factory=list,
        description="Why, e.g. 'majority disagreed with the key', 'judged implausible by 2/3'.",
    )
    study: NonEmpty = Field(description="Study the verdict comes from.")
    n_raters: int = Field(ge=0, description="Raters who answered the task.")


RECORD_TYPES: dict[str, type[Record]] = {
    "case": Case,
    "conversation": Conversation,
    "task": Task,
    "prediction": Prediction,
    "judgement": Judgement,
}


def record_type_name(model: type[Record]) -> str:
    """The short name ('task', 'case', ...) of a record class."""
    for name, cls in RECORD_TYPES.items():
        if cls is model:
            return name
    raise KeyError(model.__name__)
