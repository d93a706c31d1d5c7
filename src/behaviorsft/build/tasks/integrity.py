"""Balanced: integrity_missing_turn_inference (which turn is missing, and what did it say)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from behaviorsft.bench import format_turn
from behaviorsft.build.tasks.common import (
    DEFAULT_OPTIONS,
    Ctx,
    Draft,
    _norm,
    _sample,
)
from behaviorsft.build.tasks.grounding import grounded, shown_words
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
    k_min = 3  # four options where the role has few turns
    # Not the opening turns (a greeting, or a note's opening sentence, would otherwise
    # be an answer that is never a wrong option), nor the last two.
    eligible = [
        t for t in turns[2:-2] if len(t.text) >= 20 and not t.attachments and len(t.text) <= 400
    ]

    # Three turns before the gap and two after: a longer window would hide the turns of
    # the same speaker near the gap (a patient's history, medicines and allergies come
    # one after another) from the wrong options, so only the turns at the ends of such a
    # run could be asked about, and the others would only ever be wrong options.
    before = 3
    # Wrong options come from the turns that could themselves be asked about, so no kind
    # of turn is only ever wrong (a very short transcript falls back below).
    wrong_from = eligible

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

    def candidates(t: Turn) -> tuple[list[Turn], list[Turn]]:
        """Unshown turns by the same role, and by others of the same kind (lay or staff)."""
        start, _ = window(t)
        visible = {_norm(x.text) for x in turns[start : t.index + 3]}
        same = [x for x in wrong_from if x.index != t.index and _norm(x.text) not in visible]
        by_role = [x for x in same if x.role == t.role]
        return by_role, [x for x in same if x.role != t.role and _lay(x.role) == _lay(t.role)]

    def question(t: Turn) -> str:
        return (
            f"Turn {t.index} ({_speaker_phrase(t.speaker)}) is missing from the "
            "transcript. What did it most probably say?"
        )

    def pool(t: Turn) -> list[str]:
        """Up to k wrong turns: the same role's, the same kind's only to reach k_min."""
        start, excerpt = window(t)
        record = shown_words(ctx, start, t.index - 1, excerpt)
        by_role, same_kind = candidates(t)
        texts = [x.text for x in by_role]
        chosen = grounded(t.text, texts, record, question(t), need=k, tolerance=_TOLERANCE)
        if len(chosen) < k_min:
            more = [x.text for x in same_kind]
            chosen += grounded(
                t.text, more, record, question(t), need=k_min - len(chosen), tolerance=_TOLERANCE
            )[: k_min - len(chosen)]
        return chosen

    def askable(among: list[Turn]) -> list[Turn]:
        """Turns with enough wrong options by the same role, or at worst the same kind.

        Not only those with enough by the same role: in a synthetic transcript that would
        leave one patient turn (the first) askable, an answer of one kind every time.
        """
        return [t for t in among if sum(map(len, candidates(t))) >= k_min]

    if ctx.cond is not None:
        picks = []
        for group in (
            [t for t in eligible if _lay(t.role)],
            [t for t in eligible if not _lay(t.role)],
        ):
            # Ask about a turn its neighbours do not quote more than its wrong options.
            # Any askable turn, uniformly: preferring those whose wrong options the record
            # quotes as much (``balanced``) brings record-matching to chance but makes
            # some kinds of turn answers far more often than wrong options, which a
            # reader of the options alone learns (measured: 0.67 against chance 0.24).
            options = askable(group)
            if options:
                picks.append(ctx.rng.choice(options))
    else:
        if not askable(eligible):
            # A short transcript (a brief imported report): one turn before the gap, and
            # any unshown turn after the first may serve as a wrong option.
            before = 1
            wrong_from = [
                t
                for t in turns[1:]
                if len(t.text) >= 20 and not t.attachments and len(t.text) <= 400
            ]
        # An imported note: any sentence, whatever its position, so that the sentences
        # asked for are not of one kind (a note's early history, say) and the wrong
        # options of another.
        picks = _sample(ctx.rng, askable(eligible), 1)
    for i, t in enumerate(picks):
        start, excerpt = window(t)
        wrong = pool(t)
        yield Draft(
            task_type=T.INTEGRITY_MISSING_TURN_INFERENCE,
            key=f"m{i}",
            question=question(t),
            correct=t.text,
            pool=wrong,
            rationale=f"Turn {t.index} read: {t.text!r}; the surrounding turns lead into and "
            "follow from it.",
            turn_start=start,
            turn_end=t.index - 1,
            excerpt=excerpt,
            n_options=min(DEFAULT_OPTIONS, len(wrong) + 1),
        )
