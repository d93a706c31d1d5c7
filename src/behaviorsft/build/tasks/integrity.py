"""Balanced: integrity_missing_turn_inference (which turn is missing, and what did it say)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from behaviorsft.bench import format_turn
from behaviorsft.build.audit import words
from behaviorsft.build.tasks.common import (
    DEFAULT_OPTIONS,
    Ctx,
    Draft,
    _norm,
    _sample,
)
from behaviorsft.build.tasks.grounding import grounded, share, shown_words
from behaviorsft.records import Turn
from behaviorsft.taxonomy import TaskType

T = TaskType


# How far a wrong turn's share of words in the record may differ from the missing turn's.
_TOLERANCE = 0.15


def _lay(role: str) -> bool:
    """Whether a speaker talks as a lay person (patient, relative) rather than as staff."""
    return role in ("patient", "family member", "relative", "caregiver")


def _speaker_phrase(speaker: str) -> str:
    """'Patient's husband' -> 'husband of the patient'.

    The question names the speaker; a possessive would share the word "s" with every
    option that says "what's" or "that's" (relatives' turns), a free point for the
    question-overlap shortcut. ("most probably" rather than "most likely" for the same
    reason: the attending's differential says "less likely".)
    """
    m = re.fullmatch(r"(\w+)'s (\w+)", speaker)
    return f"{m[2]} of the {m[1].lower()}" if m else speaker


def gen_missing_turn(ctx: Ctx) -> Iterator[Draft]:
    """Which turn is missing: the wrong options are other turns of the same conversation
    spoken by someone in the same role (the same kind of person, failing that), chosen
    so that the record shown quotes them as much as it quotes the missing turn."""
    turns = ctx.rendered.conversation.turns
    if len(turns) < 6:
        return
    k = DEFAULT_OPTIONS - 1
    # Not the opening turns (a greeting, or a note's opening sentence, would otherwise
    # be an answer that is never a wrong option), nor the last two.
    eligible = [
        t for t in turns[2:-2] if len(t.text) >= 20 and not t.attachments and len(t.text) <= 400
    ]

    # Eight turns before the gap; fewer in a short transcript (an imported note), so that
    # enough turns are left unshown to serve as wrong options.
    before = 8 if len(turns) >= 24 else 3

    def window(t: Turn) -> tuple[int, str | None]:
        """First turn shown, and the excerpt (the missing marker and the two turns after)."""
        start = max(0, t.index - before)
        # An imported note's first turn is a summary of the whole note: showing it would
        # show the missing sentence.
        if start == 0 and _norm(t.text) in _norm(turns[0].text):
            start = 1
        after = turns[t.index + 1 : t.index + 3]
        marker = f"[Turn {t.index} is missing]"
        return start, marker + "".join("\n\n" + format_turn(x) for x in after)

    def candidates(t: Turn) -> list[Turn]:
        start, _ = window(t)
        visible = {_norm(x.text) for x in turns[start : t.index + 3]}
        same = [x for x in eligible if x.index != t.index and _norm(x.text) not in visible]
        by_role = [x for x in same if x.role == t.role]
        if len(by_role) >= k:
            return by_role
        return by_role + [x for x in same if x.role != t.role and _lay(x.role) == _lay(t.role)]

    def question(t: Turn) -> str:
        return (
            f"Turn {t.index} ({_speaker_phrase(t.speaker)}) is missing from the "
            "transcript. What did it most probably say?"
        )

    def pool(t: Turn) -> list[str]:
        start, excerpt = window(t)
        record = shown_words(ctx, start, t.index - 1, excerpt)
        texts = [x.text for x in candidates(t)]
        return grounded(t.text, texts, record, question(t), need=k, tolerance=_TOLERANCE)

    def balanced(t: Turn) -> bool:
        """Whether k wrong turns are quoted by the record shown about as much as ``t``."""
        start, excerpt = window(t)
        record = shown_words(ctx, start, t.index - 1, excerpt)
        q = words(question(t))
        target = share(t.text, record, q)
        close = [p for p in pool(t) if abs(share(p, record, q) - target) <= _TOLERANCE]
        return len(close) >= k

    # Ask about a turn whose neighbours do not quote it more than its wrong options;
    # failing that, any turn with enough wrong options.
    askable = [t for t in eligible if len(candidates(t)) >= k]
    if ctx.cond is not None:
        good = [t for t in askable if balanced(t)]
        groups = [
            ([t for t in good if _lay(t.role)] or [t for t in askable if _lay(t.role)]),
            ([t for t in good if not _lay(t.role)] or [t for t in askable if not _lay(t.role)]),
        ]
        picks = [ctx.rng.choice(g) for g in groups if g]
    else:
        # An imported note: any sentence, whatever its position, so that the sentences
        # asked for are not of one kind (a note's early history, say) and the wrong
        # options of another.
        picks = _sample(ctx.rng, askable, 1)
    for i, t in enumerate(picks):
        start, excerpt = window(t)
        yield Draft(
            task_type=T.INTEGRITY_MISSING_TURN_INFERENCE,
            key=f"m{i}",
            question=question(t),
            correct=t.text,
            pool=pool(t),
            rationale=f"Turn {t.index} read: {t.text!r}; the surrounding turns lead into and "
            "follow from it.",
            turn_start=start,
            turn_end=t.index - 1,
            excerpt=excerpt,
        )
