"""Every prompt a model sees during evaluation or training, each beside the parser that reads it.

A prompt is three blocks: a fixed system message, the *task block* (context,
question, lettered options) and an *instruction* that says what to output and
in which order. Strategies differ only in the instruction (and, for few-shot,
in the solved examples shown before the task), so each strategy is a small
named instruction template, and the behaviour-classification variants of the
paper's Table 3 are built by composing four output *steps*:

``BT``  the behaviour label, in ``<behavior></behavior>``
``BC``  reasoning about how reactive or proactive the situation calls for
``OC``  reasoning about the options
``OP``  the chosen option, in ``<answer></answer>``

Parsers (``parse_answer``, ``parse_behavior_token``, ``parse_behavior_label``)
read what those instructions ask for, plus the common ways models stray from
it. A reply the parser cannot read is *invalid* (``None``): the caller scores
it as wrong and counts it separately; it is never guessed.

Everything here is deterministic: the ``behaviorsft`` prompt is also the
training prompt, so the same task always renders to the same messages.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from behaviorsft.records import ChatMessage, Task
from behaviorsft.taxonomy import (
    BEHAVIOR_TOKENS,
    FINE_BEHAVIOR_TOKENS,
    LABEL_ABBREVIATIONS,
    BehaviorLabel,
    TokenInventory,
    behavior_token,
)

# --------------------------------------------------------------------------
# Templates with validated placeholders
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptTemplate:
    """A ``str.format`` template whose placeholders are checked when it is built and filled.

    ``fields`` must name exactly the placeholders in ``text``, so a typo in a
    template fails at import time, not halfway through an evaluation run.
    """

    name: str
    text: str
    fields: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        found = {f for _, f, _, _ in string.Formatter().parse(self.text) if f is not None}
        bad = [f for f in found if not f.isidentifier()]
        if bad:
            raise ValueError(f"template {self.name!r}: placeholders must be names, got {bad}")
        if found != set(self.fields):
            raise ValueError(
                f"template {self.name!r}: placeholders {sorted(found)} do not match "
                f"declared fields {sorted(self.fields)}"
            )

    def render(self, **values: str) -> str:
        """Fill the template; every declared field must be given, and nothing else."""
        missing = sorted(self.fields - values.keys())
        extra = sorted(values.keys() - self.fields)
        if missing or extra:
            raise ValueError(
                f"template {self.name!r}: missing fields {missing}, unexpected fields {extra}"
            )
        return self.text.format(**values)


def _template(name: str, text: str, *fields: str) -> PromptTemplate:
    return PromptTemplate(name, text, frozenset(fields))


SYSTEM_PROMPT = (
    "You are a careful clinical assistant. You read a clinical record and answer "
    "a multiple-choice question about it."
)

TASK_BLOCK = _template(
    "task_block",
    "Clinical record:\n{context}\n\nQuestion:\n{question}\n\nOptions:\n{options}",
    "context",
    "question",
    "options",
)

# The answer format every strategy asks for; ANSWER_TAG_PATTERN reads it back.
ANSWER_FORMAT = "<answer>X</answer>, where X is the letter of one option ({letters})"

ZERO_SHOT = _template(
    "zero_shot",
    "Choose the single best option. Reply with " + ANSWER_FORMAT + " and nothing else.",
    "letters",
)

COT = _template(
    "cot",
    "Think through the case step by step: what the question asks, which facts in the "
    "record bear on it, and why each option is right or wrong. Then finish with "
    + ANSWER_FORMAT
    + ".",
    "letters",
)

# Explicit-instruction strategy: zero-shot plus a statement of the behaviour the
# situation calls for, taken from the task's own annotation (its binary token).
EXPLICIT_REACTIVE = (
    "This situation calls for a reactive response: answer exactly what is asked, "
    "using only what the record states, and do not volunteer unrequested concerns."
)
EXPLICIT_PROACTIVE = (
    "This situation calls for a proactive response: appraise the record critically, "
    "look for errors, omissions, conflicts or departures from standard care, and "
    "anticipate what should happen next, even if the question does not ask outright."
)
EXPLICIT = _template(
    "explicit",
    "{behavior_instruction}\n\n{answer_instruction}",
    "behavior_instruction",
    "answer_instruction",
)

# The BehaviorSFT format (paper Appendix F, in our words): behaviour first, then
# the rationale, then the answer. Used verbatim as the training prompt, so it
# must stay free of anything that varies between runs.
BEHAVIORSFT = _template(
    "behaviorsft",
    "Start your reply with the behaviour token that fits the situation: <reactive> to "
    "answer only what is asked, or <proactive> to also flag problems, warn or suggest "
    "next steps. Then give a brief rationale, and finish with " + ANSWER_FORMAT + ".",
    "letters",
)

# The same format with the finer inventory (one token per 5-class label), for
# models trained with ``inventory: fine``: the prompt must name the tokens the
# model was trained to emit.
BEHAVIORSFT_FINE = _template(
    "behaviorsft_fine",
    "Start your reply with the behaviour token that fits the situation, from the most "
    "reactive to the most proactive: "
    + ", ".join(FINE_BEHAVIOR_TOKENS[label] for label in BehaviorLabel)
    + ". Then give a brief rationale, and finish with "
    + ANSWER_FORMAT
    + ".",
    "letters",
)

# The General SFT baseline: the same reply without any behavioural guidance
# (the paper's "general supervised fine-tuning without specific behavioral
# guidance"), so its prompt does not mention behaviour tokens either.
GENERAL_SFT = _template(
    "general_sft",
    "Give a brief rationale, and finish with " + ANSWER_FORMAT + ".",
    "letters",
)

# Output steps of the behaviour-classification variants (Table 3).
LABEL_LIST = ", ".join(label.value for label in BehaviorLabel)
BEHAVIOR_STEPS: dict[str, str] = {
    "BT": (
        "the behaviour the situation calls for, as one of the labels "
        f"{LABEL_LIST}, written as <behavior>label</behavior>"
    ),
    "BC": (
        "your reasoning about how reactive or proactive the situation calls for: is the "
        "answer stated in the record, or must you anticipate, appraise or flag something"
    ),
    "OC": "your reasoning about each option",
    "OP": "the answer as " + ANSWER_FORMAT,
}
BEHAVIOR_CLASSIFICATION = _template(
    "behavior_classification",
    "Reply in this order:\n{steps}",
    "steps",
)

# Strategy name -> the output steps of a behaviour-classification variant.
BC_VARIANTS: dict[str, tuple[str, ...]] = {
    "bt_oc_op": ("BT", "OC", "OP"),
    "bt_op": ("BT", "OP"),
    "bt_bc_oc_op": ("BT", "BC", "OC", "OP"),
    "bt_bc_op": ("BT", "BC", "OP"),
    "bc_bt_oc_op": ("BC", "BT", "OC", "OP"),
}

STRATEGIES: tuple[str, ...] = (
    "zero_shot",
    "few_shot",
    "cot",
    "explicit",
    "behaviorsft",
    "behaviorsft_fine",
    "general_sft",
    *BC_VARIANTS,
)

# Strategies whose reply starts with a behaviour token.
TOKEN_STRATEGIES: frozenset[str] = frozenset({"behaviorsft", "behaviorsft_fine"})

# Strategies whose reply carries a behaviour label (scored in Table 3).
LABEL_STRATEGIES: frozenset[str] = frozenset(BC_VARIANTS)

FEW_SHOT_K = 3


# --------------------------------------------------------------------------
# Building messages
# --------------------------------------------------------------------------


def letters_of(task: Task) -> tuple[str, ...]:
    """The option letters of a task, in order."""
    return tuple(o.label for o in task.options)


def _letters_text(task: Task) -> str:
    return ", ".join(letters_of(task))


def task_block(task: Task, context: str) -> str:
    """The record, the question and the lettered options, as the model sees them."""
    options = "\n".join(f"{o.label}. {o.text}" for o in task.options)
    return TASK_BLOCK.render(
        context=context.strip() or "(none)", question=task.question, options=options
    )


def binary_token_of(task: Task) -> str:
    """The task's ``<reactive>``/``<proactive>`` token, whatever inventory it was built with."""
    return behavior_token(task.task_type, task.behavior_score, "binary")


def instruction(task: Task, strategy: str) -> str:
    """The instruction appended after the task block for ``strategy``."""
    letters = _letters_text(task)
    if strategy in ("zero_shot", "few_shot"):
        return ZERO_SHOT.render(letters=letters)
    if strategy == "cot":
        return COT.render(letters=letters)
    if strategy == "explicit":
        proactive = binary_token_of(task) == BEHAVIOR_TOKENS[1]
        return EXPLICIT.render(
            behavior_instruction=EXPLICIT_PROACTIVE if proactive else EXPLICIT_REACTIVE,
            answer_instruction=ZERO_SHOT.render(letters=letters),
        )
    if strategy == "behaviorsft":
        return BEHAVIORSFT.render(letters=letters)
    if strategy == "behaviorsft_fine":
        return BEHAVIORSFT_FINE.render(letters=letters)
    if strategy == "general_sft":
        return GENERAL_SFT.render(letters=letters)
    if strategy in BC_VARIANTS:
        steps = "\n".join(
            f"{i}. {BEHAVIOR_STEPS[step].format(letters=letters)}"
            for i, step in enumerate(BC_VARIANTS[strategy], start=1)
        )
        return BEHAVIOR_CLASSIFICATION.render(steps=steps)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def user_message(task: Task, context: str, strategy: str) -> str:
    """The user turn: task block, blank line, instruction."""
    return f"{task_block(task, context)}\n\n{instruction(task, strategy)}"


def few_shot_reply(task: Task) -> str:
    """The assistant turn of a solved few-shot example (the zero-shot answer format)."""
    return f"<answer>{task.answer}</answer>"


def build_messages(
    task: Task,
    context: str,
    strategy: str,
    *,
    examples: Sequence[tuple[Task, str]] = (),
) -> list[ChatMessage]:
    """Chat messages for one task under one strategy.

    ``context`` is ``bench.context_text(task)``. ``examples`` are ``(task,
    context)`` pairs shown as solved user/assistant exchanges before the task;
    they are only allowed with ``few_shot`` (see ``select_few_shot``), which
    without examples is the same as zero-shot.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if examples and strategy != "few_shot":
        raise ValueError(f"examples are only used by 'few_shot', not {strategy!r}")
    messages = [ChatMessage(role="system", content=SYSTEM_PROMPT)]
    for ex_task, ex_context in examples:
        if ex_task.id == task.id:
            raise ValueError(f"few-shot example {ex_task.id!r} is the task being asked")
        messages.append(
            ChatMessage(role="user", content=user_message(ex_task, ex_context, strategy))
        )
        messages.append(ChatMessage(role="assistant", content=few_shot_reply(ex_task)))
    messages.append(ChatMessage(role="user", content=user_message(task, context, strategy)))
    return messages


def training_strategy(mode: Literal["behavior", "general"], inventory: TokenInventory) -> str:
    """The strategy whose prompt a model is trained with, and evaluated with afterwards.

    BehaviorSFT: ``behaviorsft`` (``behaviorsft_fine`` with the fine inventory);
    General SFT: ``general_sft``, which asks for the same reply without a token.
    """
    if mode == "general":
        return "general_sft"
    if mode != "behavior":
        raise ValueError(f"unknown training mode {mode!r}; use 'behavior' or 'general'")
    return "behaviorsft_fine" if inventory == "fine" else "behaviorsft"


def select_few_shot(
    task: Task, pool: Sequence[Task], *, k: int = FEW_SHOT_K, seed: int = 0
) -> list[Task]:
    """``k`` examples for ``task`` from ``pool`` (the train split): same task type, seeded.

    Tasks from the same case are left out, so an example never shows the
    answer's record. The choice depends only on ``seed`` and the task id, so
    it is the same on every run and independent of the order of ``pool``.
    Fewer than ``k`` are returned when the pool has fewer candidates.
    """
    candidates = sorted(
        (
            t
            for t in pool
            if t.task_type == task.task_type and t.case_id != task.case_id and t.id != task.id
        ),
        key=lambda t: t.id,
    )
    rng = random.Random(f"few-shot:{seed}:{task.id}")
    return rng.sample(candidates, min(k, len(candidates)))


# --------------------------------------------------------------------------
# Training targets
# --------------------------------------------------------------------------


def behaviorsft_target(
    task: Task,
    *,
    mode: Literal["behavior", "general"],
    inventory: TokenInventory = "binary",
) -> str:
    """The assistant reply a model is trained to produce for ``task``.

    ``behavior``: ``"<proactive> <rationale> <answer>C</answer>"``, the token
    chosen by the taxonomy rule for ``inventory`` (``binary`` or ``fine``).
    ``general`` (the General SFT baseline): the same without the token.
    """
    parts = [task.rationale.strip(), f"<answer>{task.answer}</answer>"]
    if mode == "behavior":
        parts.insert(0, behavior_token(task.task_type, task.behavior_score, inventory))
    elif mode != "general":
        raise ValueError(f"unknown target mode {mode!r}; use 'behavior' or 'general'")
    return " ".join(p for p in parts if p)


# --------------------------------------------------------------------------
# Parsers
# --------------------------------------------------------------------------

# Tag contents: one letter, optionally bracketed, optionally followed by its text.
ANSWER_TAG_PATTERN = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_TAG_LETTER = re.compile(
    r"^\s*(?:option\s+)?[\*\(\[]*([A-Fa-f])[\*\)\]]*\s*(?:$|[.:)\-]\s*\S.*$)", re.DOTALL
)
# "Answer: (c)", "the answer is B", "The best option is **A**", "**Final answer:** D".
# Only the anchor words ignore case: a lower-case letter counts only in brackets,
# so "the answer is a drug" is not option A.
_MARK = r"(?:\*\*|\*|__)?"
_LETTER = rf"{_MARK}(?:\(([A-Fa-f])\)|\[([A-Fa-f])\]|([A-F])(?![\w'’])){_MARK}"
_ANCHOR = (
    r"(?i:answer|(?:best|correct|right|final|most\s+appropriate)\s+(?:option|choice))"
    rf"{_MARK}\s*(?i:is|would\s+be|will\s+be|:|=|-)?\s*{_MARK}\s*"
    r"(?i:(?:option|choice|letter)\s*)?:?\s*"
)
_ANCHORED_PATTERNS = (
    re.compile(_ANCHOR + _LETTER),
    # "Option B is correct", "choice (C) is the best"
    re.compile(
        r"(?i:option|choice)\s*" + _LETTER + r"\s*(?i:is\s+(?:the\s+)?(?:correct|right|best))"
    ),
)
# A second letter right after the first ("A and C", "B/D", "A, C") makes it ambiguous.
_SECOND_LETTER = re.compile(
    r"^\s*(?:,|/|&|\+|and|or|and/or)\s*(?:option\s*)?(?:\*\*)?\(?[A-F]\)?(?![\w'’])",
    re.IGNORECASE,
)
# A whole reply that is a letter, possibly followed by the option's text: "B", "(B)",
# "**B**", "B.", "B) Initially treated ...".
_BARE_PATTERN = re.compile(
    r"^\s*(?:\*\*|\*)?[\(\[]?([A-F])[\)\]]?(?:\*\*|\*)?\s*(?:$|[.:)\-]\s*\S.*$|[.:)]\s*$)",
    re.DOTALL,
)


def _one(letters_found: list[str], allowed: set[str]) -> str | None:
    """The single letter all readings agree on, if it is an allowed option."""
    distinct = {c.upper() for c in letters_found}
    if len(distinct) != 1:
        return None
    letter = distinct.pop()
    return letter if letter in allowed else None


def parse_answer(text: str | None, letters: Sequence[str]) -> str | None:
    """The option letter a reply chose, or None when it cannot be read unambiguously.

    Looked for in order, the first kind present deciding:

    1. ``<answer>X</answer>`` tags (all tags must agree; a tag with two letters
       or with something other than a letter is unreadable);
    2. phrases like "Answer: (c)", "the answer is B", "best option is **A**"
       (all must agree; "A and C" is ambiguous);
    3. a reply that is just a letter, possibly followed by its option text.

    A letter that is not one of ``letters`` is unreadable too. Lower-case
    letters count only inside tags or brackets, so the article "a" is never
    read as option A.
    """
    if not text:
        return None
    allowed = {c.upper() for c in letters}
    tags = ANSWER_TAG_PATTERN.findall(text)
    if tags:
        found: list[str] = []
        for content in tags:
            m = _TAG_LETTER.match(content)
            if m is None or _SECOND_LETTER.match(content[m.end(1) :].lstrip("*)] ")):
                return None
            found.append(m.group(1))
        return _one(found, allowed)
    anchored: list[str] = []
    for pattern in _ANCHORED_PATTERNS:
        for m in pattern.finditer(text):
            letter = m.group(1) or m.group(2) or m.group(3)
            if _SECOND_LETTER.match(text[m.end(m.lastindex or 0) :].lstrip("*)] ")):
                return None
            anchored.append(letter)
    if anchored:
        return _one(anchored, allowed)
    m = _BARE_PATTERN.match(text)
    if m and not _SECOND_LETTER.match(text[m.end(1) :].lstrip("*)] ")):
        return _one([m.group(1)], allowed)
    return None


_TOKEN_PATTERN = re.compile(
    "|".join(re.escape(t) for t in (*BEHAVIOR_TOKENS, *FINE_BEHAVIOR_TOKENS.values()))
)


def parse_behavior_token(text: str | None) -> str | None:
    """The first behaviour token (binary or fine inventory) in ``text``, or None."""
    if not text:
        return None
    m = _TOKEN_PATTERN.search(text)
    return m.group(0) if m else None


# Label names as models write them: "primarily_proactive", "Primarily Proactive",
# "primarily-proactive", and Table 3's abbreviations "P_PR".
_LABEL_WORDS = {label: label.value.replace("_", r"[\s_\-]+") for label in BehaviorLabel}
_LABEL_NAME = "|".join(
    f"(?P<{label.name}>{_LABEL_WORDS[label]}|{LABEL_ABBREVIATIONS[label]}\\b)"
    for label in BehaviorLabel
)
_BEHAVIOR_TAG_PATTERN = re.compile(r"<behaviou?r>(.*?)</behaviou?r>", re.IGNORECASE | re.DOTALL)
_LABEL_PATTERN = re.compile(rf"(?<![\w])(?:{_LABEL_NAME})(?![\w])", re.IGNORECASE)
_FINE_TOKEN_LABEL = {token: label for label, token in FINE_BEHAVIOR_TOKENS.items()}


def _label_in(text: str) -> BehaviorLabel | None:
    m = _LABEL_PATTERN.search(text)
    if m is None:
        return None
    return BehaviorLabel[m.lastgroup]  # type: ignore[misc]


def parse_behavior_label(text: str | None) -> BehaviorLabel | None:
    """The 5-class behaviour label a reply gives, or None.

    Read from ``<behavior>label</behavior>`` when present (the first tag), else
    from a fine-inventory token (``<primarily_proactive>``), else from the first
    label name in the text. The bare words "reactive"/"proactive" are not a
    5-class label and are not read as one.
    """
    if not text:
        return None
    tag = _BEHAVIOR_TAG_PATTERN.search(text)
    if tag:
        return _label_in(tag.group(1))
    token = parse_behavior_token(text)
    if token in _FINE_TOKEN_LABEL:
        return _FINE_TOKEN_LABEL[token]
    return _label_in(text)
