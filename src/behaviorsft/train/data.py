"""SFT examples from a BENCH folder, and the report of what could not be used.

One task -> one conversational prompt-completion example:

* **prompt**: the messages the evaluation harness sends for the ``behaviorsft``
  strategy (``prompts.build_messages``: system message, then the record,
  question and options, then the format instruction), so the model is trained
  on exactly what it will be asked;
* **completion**: one assistant message, ``prompts.behaviorsft_target``:
  ``<proactive> rationale <answer>C</answer>`` in behaviour mode, the same
  without the token in general mode.

TRL renders both through the model's chat template and computes the loss on
the completion's tokens only.

Bad data is never trained on silently. Every example is checked before
training and each problem is counted by reason (``BAD_DATA_REASONS``); the
counts are printed and written to ``data_report.json``. The policy
(``bad_data``) is ``drop`` (leave those examples out, the default) or
``error`` (stop before training).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from behaviorsft.bench import Bench
from behaviorsft.prompts import (
    behaviorsft_target,
    build_messages,
    parse_behavior_token,
    training_strategy,
)
from behaviorsft.records import Task
from behaviorsft.store import write_jsonl
from behaviorsft.taxonomy import TokenInventory, all_tokens

Mode = Literal["behavior", "general"]

BAD_DATA_REASONS: dict[str, str] = {
    "empty_completion": "the target is empty",
    "empty_rationale": "the task has no rationale: the target would be only token and answer",
    "missing_token": "behaviour mode, but the target does not start with a behaviour token",
    "unknown_token": "the target's token is not in the chosen token inventory",
    "stray_token": "a behaviour token appears inside the rationale (or at all, in general mode)",
    "prompt_too_long": "the prompt alone fills max_length: the completion would be cut away",
    "completion_truncated": "prompt + completion exceed max_length: the answer would be cut off",
}


@dataclass(frozen=True)
class SFTExample:
    """One training (or validation) example in TRL's conversational prompt-completion form."""

    id: str
    task_type: str
    answer: str
    letters: tuple[str, ...]
    token: str | None  # the behaviour token the target starts with (None in general mode)
    prompt: list[dict[str, str]]
    completion: list[dict[str, str]]

    @property
    def target(self) -> str:
        """The completion text."""
        return self.completion[0]["content"]

    def to_row(self) -> dict[str, Any]:
        """A JSON-friendly row (what ``sft-data`` writes)."""
        row = asdict(self)
        row["letters"] = list(self.letters)
        return row


@dataclass(frozen=True)
class BadExample:
    """One example that cannot be trained on, and why."""

    id: str
    split: str
    reason: str
    detail: str = ""


@dataclass
class DataReport:
    """What one split yielded: counts, problems by reason, token balance, lengths."""

    split: str
    mode: str
    inventory: str
    total: int = 0
    kept: int = 0
    problems: list[BadExample] = field(default_factory=list)
    tokens: dict[str, int] = field(default_factory=dict)
    lengths_checked: bool = False
    max_length: int | None = None
    longest: int | None = None  # longest prompt + completion, in tokens

    def counts(self) -> dict[str, int]:
        """Problems per reason, in the order of ``BAD_DATA_REASONS``."""
        c = Counter(p.reason for p in self.problems)
        return {r: c[r] for r in BAD_DATA_REASONS if c[r]}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly, with the first 50 problems listed by id."""
        return {
            "split": self.split,
            "mode": self.mode,
            "inventory": self.inventory,
            "total": self.total,
            "kept": self.kept,
            "bad": len(self.problems),
            "bad_by_reason": self.counts(),
            "tokens": self.tokens,
            "lengths_checked": self.lengths_checked,
            "max_length": self.max_length,
            "longest": self.longest,
            "problems": [asdict(p) for p in self.problems[:50]],
        }

    def summary(self) -> str:
        """One readable paragraph for the console."""
        head = f"{self.split}: {self.total} task(s), {self.kept} usable, {len(self.problems)} bad"
        lines = [head]
        for reason, n in self.counts().items():
            lines.append(f"  {n:6d}  {reason}: {BAD_DATA_REASONS[reason]}")
        if self.tokens:
            lines.append("  tokens: " + ", ".join(f"{t} {n}" for t, n in self.tokens.items()))
        if not self.lengths_checked:
            lines.append("  lengths not checked (no tokenizer given)")
        elif self.longest is not None:
            lines.append(f"  longest example: {self.longest} tokens (max_length {self.max_length})")
        return "\n".join(lines)


class BadDataError(ValueError):
    """Raised by the ``error`` policy; carries the reports."""

    def __init__(self, reports: Sequence[DataReport]) -> None:
        self.reports = list(reports)
        body = "\n".join(r.summary() for r in self.reports if r.problems)
        super().__init__(
            f"bad training data (policy 'error'):\n{body}\n"
            "Fix the tasks, raise max_length, or set bad_data: drop to leave them out."
        )


def check_target(target: str, rationale: str, mode: Mode, inventory: TokenInventory) -> str | None:
    """The bad-data reason of a target string, or None when it is fine (pure)."""
    if not target.strip():
        return "empty_completion"
    if not rationale.strip():
        return "empty_rationale"
    if parse_behavior_token(rationale) is not None:
        return "stray_token"
    if mode == "general":
        return "stray_token" if parse_behavior_token(target) is not None else None
    first = target.split(maxsplit=1)[0]
    token = parse_behavior_token(first)
    if token is None or not first.startswith(token):
        return "missing_token"
    if token not in all_tokens(inventory):
        return "unknown_token"
    return None


def example_for(task: Task, context: str, mode: Mode, inventory: TokenInventory) -> SFTExample:
    """The SFT example of one task (no checks)."""
    # The training prompt is the evaluation prompt of the matching strategy.
    messages = build_messages(task, context, training_strategy(mode, inventory))
    target = behaviorsft_target(task, mode=mode, inventory=inventory)
    return SFTExample(
        id=task.id,
        task_type=task.task_type.value,
        answer=task.answer,
        letters=tuple(o.label for o in task.options),
        token=parse_behavior_token(target) if mode == "behavior" else None,
        prompt=[{"role": m.role, "content": m.content} for m in messages],
        completion=[{"role": "assistant", "content": target}],
    )


def token_lengths(tokenizer: Any, example: SFTExample) -> tuple[int, int]:
    """(prompt tokens, prompt + completion tokens), rendered as TRL renders them."""
    prompt = tokenizer.apply_chat_template(
        example.prompt, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    full = tokenizer.apply_chat_template(
        example.prompt + example.completion, tokenize=True, return_dict=True
    )["input_ids"]
    return len(prompt), len(full)


def prepare_split(
    bench: Bench,
    split: str,
    *,
    mode: Mode,
    inventory: TokenInventory = "binary",
    tokenizer: Any = None,
    max_length: int | None = None,
) -> tuple[list[SFTExample], DataReport]:
    """Usable examples of one split, and the report of the rest.

    Lengths are checked only when a ``tokenizer`` (with the behaviour tokens
    added) and a ``max_length`` are given.
    """
    report = DataReport(split=split, mode=mode, inventory=inventory, max_length=max_length)
    kept: list[SFTExample] = []
    tokens: Counter[str] = Counter()
    check_lengths = tokenizer is not None and max_length is not None
    report.lengths_checked = check_lengths
    longest = 0
    for task in sorted(bench.split(split), key=lambda t: t.id):
        report.total += 1
        ex = example_for(task, bench.context_text(task), mode, inventory)
        reason = check_target(ex.target, task.rationale, mode, inventory)
        detail = ""
        if reason is None and check_lengths:
            n_prompt, n_full = token_lengths(tokenizer, ex)
            longest = max(longest, n_full)
            assert max_length is not None
            if n_prompt >= max_length:
                reason, detail = "prompt_too_long", f"prompt {n_prompt} >= max_length {max_length}"
            elif n_full > max_length:
                reason, detail = "completion_truncated", f"{n_full} > max_length {max_length}"
        if reason is not None:
            report.problems.append(BadExample(task.id, split, reason, detail))
            continue
        kept.append(ex)
        if ex.token:
            tokens[ex.token] += 1
    report.kept = len(kept)
    report.tokens = dict(sorted(tokens.items()))
    report.longest = longest if check_lengths and report.total else None
    return kept, report


def apply_policy(reports: Iterable[DataReport], policy: str) -> None:
    """Raise :class:`BadDataError` under the ``error`` policy when any example is bad."""
    reports = list(reports)
    if policy == "error" and any(r.problems for r in reports):
        raise BadDataError(reports)


def write_sft_data(
    out_dir: str | os.PathLike[str],
    examples: dict[str, list[SFTExample]],
    reports: Sequence[DataReport],
) -> list[Path]:
    """Write ``<split>.jsonl`` per split and ``data_report.json``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, rows in examples.items():
        path = out / f"{split}.jsonl"
        write_jsonl(path, (r.to_row() for r in rows))
        paths.append(path)
    report_path = out / "data_report.json"
    report_path.write_text(
        json.dumps({r.split: r.to_dict() for r in reports}, indent=2) + "\n", encoding="utf-8"
    )
    paths.append(report_path)
    return paths


def to_dataset(examples: Sequence[SFTExample]) -> Any:
    """A ``datasets.Dataset`` with only the ``prompt`` and ``completion`` columns TRL reads."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": e.prompt, "completion": e.completion} for e in examples])
