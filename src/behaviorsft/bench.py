"""A BENCH folder: the benchmark as files, and how every later stage reads it.

Layout (all JSONL, one record per line, loadable with ``datasets``)::

    BENCH/
      cases.jsonl           Case records
      conversations.jsonl   Conversation records (one per case, keyed by case_id)
      tasks.jsonl           Task records, each with its split once assigned
      manifest.json         counts, seed, sources, versions

Evaluation and training only need tasks and conversations; a task's context is
the turn range of its case's conversation plus any excerpt.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from behaviorsft.records import Attachment, Conversation, Split, Task, Turn
from behaviorsft.store import RecordFileError, load_records

CASES_FILE = "cases.jsonl"
CONVERSATIONS_FILE = "conversations.jsonl"
TASKS_FILE = "tasks.jsonl"


@dataclass
class Bench:
    """Tasks and the conversations they refer to."""

    path: Path
    tasks: list[Task]
    conversations: dict[str, Conversation] = field(default_factory=dict)

    def split(self, name: str | Split | None) -> list[Task]:
        """Tasks of one split (``None`` or ``"all"``: every task)."""
        if name is None or name == "all":
            return list(self.tasks)
        try:
            wanted = Split(name)
        except ValueError:
            choices = ", ".join([*(s.value for s in Split), "all"])
            raise ValueError(f"split {name!r}: choose one of {choices}") from None
        return [t for t in self.tasks if t.split == wanted]

    def conversation_for(self, task: Task) -> Conversation | None:
        return self.conversations.get(task.case_id)

    def context_text(self, task: Task) -> str:
        """The text a model sees before the question: turns in range, then the excerpt."""
        return task_context_text(task, self.conversation_for(task))


def load_bench(path: str | os.PathLike[str], *, splits: Iterable[str] | None = None) -> Bench:
    """Read a BENCH folder; any invalid line raises with file:line: field: problem."""
    folder = Path(path)
    tasks_path = folder / TASKS_FILE
    if not tasks_path.exists():
        raise FileNotFoundError(f"{folder}: not a BENCH folder (no {TASKS_FILE})")
    result = load_records(tasks_path, Task)
    if result.errors:
        raise RecordFileError(result.errors)
    tasks = result.records
    if splits is not None:
        wanted = {Split(s) for s in splits}
        tasks = [t for t in tasks if t.split in wanted]
    conversations: dict[str, Conversation] = {}
    conv_path = folder / CONVERSATIONS_FILE
    if conv_path.exists():
        needed = {t.case_id for t in tasks}
        conv_result = load_records(conv_path, Conversation)
        if conv_result.errors:
            raise RecordFileError(conv_result.errors)
        conversations = {c.case_id: c for c in conv_result.records if c.case_id in needed}
    return Bench(path=folder, tasks=tasks, conversations=conversations)


def format_attachment(att: Attachment) -> str:
    """A table as Markdown (an image as its caption and location)."""
    if att.kind == "image":
        return f"[image: {att.title or 'untitled'}{' ' + att.uri if att.uri else ''}]"
    lines = [f"**{att.title}**"] if att.title else []
    if att.columns:
        lines.append("| " + " | ".join(att.columns) + " |")
        lines.append("|" + "---|" * len(att.columns))
    lines.extend("| " + " | ".join(row) + " |" for row in att.rows)
    return "\n".join(lines)


def format_turn(turn: Turn) -> str:
    """``[3] Dr. Okafor (attending): text`` followed by any tables."""
    head = f"[{turn.index}] {turn.speaker} ({turn.role}): {turn.text}"
    if not turn.attachments:
        return head
    return "\n".join([head, *(format_attachment(a) for a in turn.attachments)])


def format_turns(
    conversation: Conversation, start: int | None = None, end: int | None = None
) -> str:
    """Turns ``start..end`` (inclusive; default: all) as plain text, one per paragraph."""
    lo = 0 if start is None else start
    hi = len(conversation.turns) - 1 if end is None else end
    return "\n\n".join(format_turn(t) for t in conversation.turns[lo : hi + 1])


def task_context_text(task: Task, conversation: Conversation | None) -> str:
    """Context for a task: its conversation turns (if any), then its excerpt (if any)."""
    parts: list[str] = []
    ctx = task.context
    if conversation is not None and (ctx.turn_start is not None or ctx.turn_end is not None):
        parts.append(format_turns(conversation, ctx.turn_start, ctx.turn_end))
    if ctx.excerpt:
        parts.append(ctx.excerpt)
    return "\n\n".join(parts)
