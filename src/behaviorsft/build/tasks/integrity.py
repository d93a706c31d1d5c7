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
    pick_distractors,
)
from behaviorsft.taxonomy import TaskType

T = TaskType


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
    turns = ctx.rendered.conversation.turns
    if len(turns) < 6:
        return
    eligible = [
        t for t in turns[1:-2] if len(t.text) >= 20 and not t.attachments and len(t.text) <= 400
    ]
    if ctx.cond is not None:
        by_role = [
            [t for t in eligible if _lay(t.role)],
            [t for t in eligible if not _lay(t.role)],
        ]
        picks = [ctx.rng.choice(g) for g in by_role if g]
    else:
        picks = _sample(ctx.rng, eligible, 1)
    k = DEFAULT_OPTIONS - 1
    for i, t in enumerate(picks):
        start = max(0, t.index - 8)
        after = turns[t.index + 1 : t.index + 3]
        visible = {_norm(x.text) for x in turns[start : t.index + 3]}
        # Wrong turns come from those that could themselves be asked for, so no kind of
        # turn (a closing "thanks", say) is only ever a distractor; short transcripts
        # (imported notes) fall back to any turn not shown.
        candidates = [x for x in eligible if x.index != t.index and _norm(x.text) not in visible]
        if len(candidates) < k:
            candidates = [
                x
                for x in turns
                if x.index != t.index
                and _norm(x.text) not in visible
                and not x.attachments
                and len(x.text) <= 400
            ]
        # Half the wrong turns in the patient's voice and half in the clinicians',
        # whoever is missing: otherwise "the one turn that sounds like the patient" is
        # the answer whenever the patient's turn is the one asked for.
        lay = [x.text for x in candidates if _lay(x.role)]
        staff = [x.text for x in candidates if not _lay(x.role)]
        n_lay = min(len(lay), max(k // 2, k - len(staff)))
        wrong = pick_distractors(t.text, lay, n_lay, ctx.rng, [])
        wrong += pick_distractors(t.text, staff, k - len(wrong), ctx.rng, wrong)
        yield Draft(
            task_type=T.INTEGRITY_MISSING_TURN_INFERENCE,
            key=f"m{i}",
            question=f"Turn {t.index} ({_speaker_phrase(t.speaker)}) is missing from the "
            "transcript. What did it most probably say?",
            correct=t.text,
            pool=wrong,
            rationale=f"Turn {t.index} read: {t.text!r}; the surrounding turns lead into and "
            "follow from it.",
            turn_start=start,
            turn_end=t.index - 1,
            excerpt=f"[Turn {t.index} is missing]\n\n" + "\n\n".join(format_turn(x) for x in after)
            if after
            else f"[Turn {t.index} is missing]",
        )
