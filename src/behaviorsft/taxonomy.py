"""The behaviour taxonomy of BehaviorBench, defined once.

Everything here is data or a pure function, so every other stage (builders,
evaluation, training, the clinician study) agrees on:

* the 13 task types and the category each belongs to (paper Section 2);
* how a continuous behaviour score in [0, 1] maps to the 5-class label, and the
  coarser 3-class and binary views used for behaviour classification (Table 3);
* the behaviour tokens and the rule that assigns one to a task (Section 3.2),
  plus an optional finer inventory with one token per 5-class label;
* the six-level autonomy taxonomy for health agents (Table 10), as data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Literal


class Category(str, Enum):
    """Where a task type sits on the reactive-proactive spectrum."""

    REACTIVE = "reactive"
    BALANCED = "balanced"
    PROACTIVE = "proactive"


class TaskType(str, Enum):
    """The 13 BehaviorBench task types, named as in the paper."""

    # Reactive: the answer is asked for explicitly and is in the record.
    FACT_RETRIEVAL = "fact_retrieval"
    TIMELINE_SEQUENCE = "timeline_sequence"
    DDX_REASONING = "ddx_reasoning"
    TREATMENT_DECISION = "treatment_decision"
    # Balanced: prompted by given information, but needs a synthesis step.
    REASONING_DIFFERENTIAL_EVOLUTION = "reasoning_differential_evolution"
    INTEGRITY_MISSING_TURN_INFERENCE = "integrity_missing_turn_inference"
    # Proactive: the agent must appraise, anticipate or flag unprompted.
    PREDICTIVE_NEXT_ACTION = "predictive_next_action"
    EXPLICIT_ERROR_CORRECTION = "explicit_error_correction"
    OMISSION_DETECTION = "omission_detection"
    STANDARD_OF_CARE = "standard_of_care"
    INTERPRETATION_CONFLICT = "interpretation_conflict"
    DATA_CONFLICT_RESOLUTION = "data_conflict_resolution"
    CONSISTENCY_CHECK = "consistency_check"


TASK_CATEGORY: dict[TaskType, Category] = {
    TaskType.FACT_RETRIEVAL: Category.REACTIVE,
    TaskType.TIMELINE_SEQUENCE: Category.REACTIVE,
    TaskType.DDX_REASONING: Category.REACTIVE,
    TaskType.TREATMENT_DECISION: Category.REACTIVE,
    TaskType.REASONING_DIFFERENTIAL_EVOLUTION: Category.BALANCED,
    TaskType.INTEGRITY_MISSING_TURN_INFERENCE: Category.BALANCED,
    TaskType.PREDICTIVE_NEXT_ACTION: Category.PROACTIVE,
    TaskType.EXPLICIT_ERROR_CORRECTION: Category.PROACTIVE,
    TaskType.OMISSION_DETECTION: Category.PROACTIVE,
    TaskType.STANDARD_OF_CARE: Category.PROACTIVE,
    TaskType.INTERPRETATION_CONFLICT: Category.PROACTIVE,
    TaskType.DATA_CONFLICT_RESOLUTION: Category.PROACTIVE,
    TaskType.CONSISTENCY_CHECK: Category.PROACTIVE,
}

# Row order and short names of the paper's result tables (Table 2), so reports
# can be laid out exactly like the paper and compared line by line.
TABLE_ORDER: tuple[TaskType, ...] = tuple(TASK_CATEGORY)
SHORT_NAMES: dict[TaskType, str] = {
    **{t: t.value for t in TaskType},
    TaskType.REASONING_DIFFERENTIAL_EVOLUTION: "reasoning_diff_evolution",
    TaskType.INTEGRITY_MISSING_TURN_INFERENCE: "integrity_missing_turn",
}

# One-line definitions in our own words; builders and prompts may show them.
TASK_DESCRIPTIONS: dict[TaskType, str] = {
    TaskType.FACT_RETRIEVAL: "Return a specific fact that is stated in the record.",
    TaskType.TIMELINE_SEQUENCE: "Order events or trace a change using explicit time references.",
    TaskType.DDX_REASONING: "Say which given evidence supports one diagnosis over another.",
    TaskType.TREATMENT_DECISION: "Link a documented clinical action to the data that justified it.",
    TaskType.REASONING_DIFFERENTIAL_EVOLUTION: (
        "Compare two time points and say how the differential should shift with new data."
    ),
    TaskType.INTEGRITY_MISSING_TURN_INFERENCE: (
        "Infer what a missing part of the conversation most likely contained."
    ),
    TaskType.PREDICTIVE_NEXT_ACTION: "Anticipate the most appropriate next clinical action.",
    TaskType.EXPLICIT_ERROR_CORRECTION: (
        "Spot and correct an error in the record or a proposed action (e.g. an allergy clash)."
    ),
    TaskType.OMISSION_DETECTION: (
        "Notice a clinically important test, finding or action that is missing."
    ),
    TaskType.STANDARD_OF_CARE: "Judge whether documented management follows accepted guidelines.",
    TaskType.INTERPRETATION_CONFLICT: (
        "Reconcile findings that point different ways (e.g. exam versus imaging)."
    ),
    TaskType.DATA_CONFLICT_RESOLUTION: (
        "Find a direct contradiction between data points and explain it."
    ),
    TaskType.CONSISTENCY_CHECK: "Judge whether the narrative hangs together clinically.",
}


def category_of(task_type: TaskType | str) -> Category:
    """Category of a task type (accepts the enum or its string value)."""
    return TASK_CATEGORY[TaskType(task_type)]


def types_in(category: Category | str) -> tuple[TaskType, ...]:
    """Task types of one category, in table order."""
    cat = Category(category)
    return tuple(t for t in TABLE_ORDER if TASK_CATEGORY[t] is cat)


# --------------------------------------------------------------------------
# Behaviour score -> labels
# --------------------------------------------------------------------------


class BehaviorLabel(str, Enum):
    """5-class behaviour label, from most reactive to most proactive."""

    HIGHLY_REACTIVE = "highly_reactive"
    PRIMARILY_REACTIVE = "primarily_reactive"
    BALANCED = "balanced"
    PRIMARILY_PROACTIVE = "primarily_proactive"
    HIGHLY_PROACTIVE = "highly_proactive"


# Lower edges of the five half-open bins [0,.2) [.2,.4) [.4,.6) [.6,.8) [.8,1];
# the top bin is closed so that a score of exactly 1.0 is highly proactive.
LABEL_LOWER_EDGES: tuple[tuple[float, BehaviorLabel], ...] = (
    (0.8, BehaviorLabel.HIGHLY_PROACTIVE),
    (0.6, BehaviorLabel.PRIMARILY_PROACTIVE),
    (0.4, BehaviorLabel.BALANCED),
    (0.2, BehaviorLabel.PRIMARILY_REACTIVE),
    (0.0, BehaviorLabel.HIGHLY_REACTIVE),
)

# Table 3's abbreviations, for reports laid out like the paper.
LABEL_ABBREVIATIONS: dict[BehaviorLabel, str] = {
    BehaviorLabel.HIGHLY_REACTIVE: "H_RE",
    BehaviorLabel.PRIMARILY_REACTIVE: "P_RE",
    BehaviorLabel.BALANCED: "BA",
    BehaviorLabel.PRIMARILY_PROACTIVE: "P_PR",
    BehaviorLabel.HIGHLY_PROACTIVE: "H_PR",
}


def check_score(score: float) -> float:
    """Return ``score`` if it is a finite number in [0, 1], else raise ValueError."""
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise ValueError(f"behaviour score must be a number, got {type(score).__name__}")
    if math.isnan(score) or not 0.0 <= score <= 1.0:
        raise ValueError(f"behaviour score must be in [0, 1], got {score!r}")
    return float(score)


def label_for_score(score: float) -> BehaviorLabel:
    """Map a continuous behaviour score in [0, 1] to its 5-class label."""
    s = check_score(score)
    for edge, label in LABEL_LOWER_EDGES:
        if s >= edge:
            return label
    raise AssertionError("unreachable: 0.0 is the last edge")  # pragma: no cover


def score_range(label: BehaviorLabel | str) -> tuple[float, float]:
    """The [low, high) interval of scores that map to ``label`` (high is 1.0 for the top)."""
    lab = BehaviorLabel(label)
    ascending = LABEL_LOWER_EDGES[::-1]
    uppers = [edge for edge, _ in ascending[1:]] + [1.0]
    for (low, lbl), high in zip(ascending, uppers, strict=True):
        if lbl is lab:
            return low, high
    raise AssertionError("unreachable: every label has a bin")  # pragma: no cover


ThreeClass = Literal["reactive", "balanced", "proactive"]
BinaryClass = Literal["proactive", "non_proactive"]

THREE_CLASS: dict[BehaviorLabel, ThreeClass] = {
    BehaviorLabel.HIGHLY_REACTIVE: "reactive",
    BehaviorLabel.PRIMARILY_REACTIVE: "reactive",
    BehaviorLabel.BALANCED: "balanced",
    BehaviorLabel.PRIMARILY_PROACTIVE: "proactive",
    BehaviorLabel.HIGHLY_PROACTIVE: "proactive",
}

# Table 3's binary view is proactive vs everything else: balanced counts as
# non-proactive there.
BINARY: dict[BehaviorLabel, BinaryClass] = {
    label: ("proactive" if view == "proactive" else "non_proactive")
    for label, view in THREE_CLASS.items()
}


def three_class(label: BehaviorLabel | str) -> ThreeClass:
    """Collapse a 5-class label to reactive / balanced / proactive."""
    return THREE_CLASS[BehaviorLabel(label)]


def binary(label: BehaviorLabel | str) -> BinaryClass:
    """Collapse a 5-class label to proactive / non_proactive."""
    return BINARY[BehaviorLabel(label)]


# --------------------------------------------------------------------------
# Behaviour tokens
# --------------------------------------------------------------------------

# The two control tokens BehaviorSFT puts first in every target sequence.
REACTIVE_TOKEN = "<reactive>"  # answer exactly what was asked, nothing unsolicited
PROACTIVE_TOKEN = "<proactive>"  # may flag issues, warn, suggest next steps, apply standards
BEHAVIOR_TOKENS: tuple[str, str] = (REACTIVE_TOKEN, PROACTIVE_TOKEN)

# Optional finer inventory (the paper's future-work direction): one token per
# 5-class label, so a model can be conditioned on *how* proactive to be.
FINE_BEHAVIOR_TOKENS: dict[BehaviorLabel, str] = {
    label: f"<{label.value}>" for label in BehaviorLabel
}

TokenInventory = Literal["binary", "fine"]

# Balanced types carry a token chosen by context (Section 3.2): simple
# reporting -> <reactive>, highlighting a change or its implications ->
# <proactive>. We read "context" off the task's behaviour score, splitting the
# balanced band at its midpoint.
BALANCED_PROACTIVE_THRESHOLD = 0.5


def behavior_token(
    task_type: TaskType | str,
    behavior_score: float,
    inventory: TokenInventory = "binary",
) -> str:
    """The behaviour token a task is trained and scored with.

    ``binary``: reactive types -> ``<reactive>``, proactive types ->
    ``<proactive>``, balanced types by their score (>= 0.5 -> ``<proactive>``).
    ``fine``: the token of the task's 5-class label.

    Restraint controls (proactive types where nothing is wrong) keep their
    type's token: the appraisal is still proactive, only its outcome is "no
    issue", and that is exactly what the control measures.
    """
    score = check_score(behavior_score)
    if inventory == "fine":
        return FINE_BEHAVIOR_TOKENS[label_for_score(score)]
    if inventory != "binary":
        raise ValueError(f"unknown token inventory {inventory!r}; use 'binary' or 'fine'")
    cat = category_of(task_type)
    if cat is Category.REACTIVE:
        return REACTIVE_TOKEN
    if cat is Category.PROACTIVE:
        return PROACTIVE_TOKEN
    return PROACTIVE_TOKEN if score >= BALANCED_PROACTIVE_THRESHOLD else REACTIVE_TOKEN


def all_tokens(inventory: TokenInventory = "binary") -> tuple[str, ...]:
    """Every special token of an inventory, in a stable order (for tokenizers)."""
    if inventory == "fine":
        return tuple(FINE_BEHAVIOR_TOKENS[label] for label in BehaviorLabel)
    return BEHAVIOR_TOKENS


def token_inventory_of(token: str) -> TokenInventory:
    """Which inventory a behaviour token belongs to; ValueError for an unknown token."""
    if token in BEHAVIOR_TOKENS:
        return "binary"
    if token in FINE_BEHAVIOR_TOKENS.values():
        return "fine"
    known = ", ".join([*BEHAVIOR_TOKENS, *FINE_BEHAVIOR_TOKENS.values()])
    raise ValueError(f"unknown behaviour token {token!r}; known tokens: {known}")


# --------------------------------------------------------------------------
# Complexity
# --------------------------------------------------------------------------


class Complexity(str, Enum):
    """Task complexity as annotated in BehaviorBench (Appendix C.2)."""

    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"


# --------------------------------------------------------------------------
# Six-level autonomy taxonomy (Table 10), paraphrased
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class AutonomyLevel:
    """One level of the health-agent autonomy taxonomy."""

    level: int
    name: str
    agent_role: str
    clinician_role: str


AUTONOMY_LEVELS: tuple[AutonomyLevel, ...] = (
    AutonomyLevel(
        0,
        "No Automation",
        "Takes no part in any clinical task.",
        "Does every task and makes every care decision alone.",
    ),
    AutonomyLevel(
        1,
        "Clinician Assistance",
        "Supplies information, rule-based alerts (interaction warnings, out-of-range labs) "
        "or simple visualisations; does no part of the dynamic task.",
        "Makes all decisions and interprets whatever the system shows.",
    ),
    AutonomyLevel(
        2,
        "Partial Automation (Reactive Support)",
        "Carries out well-defined reactive sub-tasks on explicit request or a preset trigger "
        "(retrieve history, summarise recent labs, segment an image on demand).",
        "Supervises each sub-task, supplies inputs, corrects the output and owns the task.",
    ),
    AutonomyLevel(
        3,
        "Conditional Automation (Contextual Proactivity)",
        "Acts proactively inside a narrow operational design domain: proposes differentials, "
        "flags omissions in a care plan, recommends the next test.",
        "Watches the system and the patient, ready to take over when it errs or leaves its domain.",
    ),
    AutonomyLevel(
        4,
        "High Automation (Proactive Decision Support)",
        "Makes significant decisions and acts on its own for long stretches within its domain "
        "(titrates a dose within set limits, starts standard protocols, triages).",
        "Steps in only for novel, complex or out-of-domain cases; may oversee many cases.",
    ),
    AutonomyLevel(
        5,
        "Full Automation (Autonomous Operation)",
        "Does everything a clinician could within its scope, adapting to novel situations.",
        "Oversees at a high level and handles what lies outside the system's scope.",
    ),
)
