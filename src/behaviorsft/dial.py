"""The proactivity dial: P(``<proactive>``) at the first generated position, and a threshold.

A BehaviorSFT model opens every reply with a behaviour token. Instead of taking
the argmax, the dial reads the first-token distribution over the two tokens,

    P(<proactive>) = p(<proactive>) / (p(<proactive>) + p(<reactive>)),

and calls the reply proactive when that is at least a threshold ``T``. ``T``
near 0 makes the agent speak up whenever it can; ``T`` near 1 only when it is
sure. Both backends report the two probabilities already
(``GenerationRequest.track_tokens``): ``hf/`` models from the logits of the
first generated position, ``openai-compatible/`` models from the first token's
top log-probabilities (a token outside the top-k counts as 0).

``force`` modes pin the first token instead (hf: the token is appended to the
prompt; API: a forced assistant prefix), for tests and ablations. A forced
reply still records what the model would have chosen, from a separate
one-token probe, as ``eval`` does for its token-forcing ablation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from behaviorsft.models.base import Generation, GenerationRequest
from behaviorsft.records import ChatMessage
from behaviorsft.taxonomy import BEHAVIOR_TOKENS, PROACTIVE_TOKEN, REACTIVE_TOKEN


class Force(str, Enum):
    """Whether the first token is the model's choice or pinned."""

    NONE = "none"
    REACTIVE = "reactive"
    PROACTIVE = "proactive"

    @property
    def token(self) -> str:
        """The forced first token ('' when not forced)."""
        return {Force.NONE: "", Force.REACTIVE: REACTIVE_TOKEN, Force.PROACTIVE: PROACTIVE_TOKEN}[
            self
        ]


def p_proactive(probs: dict[str, float] | None) -> float | None:
    """P(<proactive>) renormalised over the two behaviour tokens; None when not measurable."""
    if not probs:
        return None
    pro, rea = probs.get(PROACTIVE_TOKEN), probs.get(REACTIVE_TOKEN)
    if pro is None or rea is None or not math.isfinite(pro + rea) or pro + rea <= 0:
        return None
    return min(1.0, max(0.0, pro / (pro + rea)))


def check_threshold(value: float, what: str = "threshold") -> float:
    """``value`` if it is a probability, else ValueError naming ``what``."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{what}: {value!r} given, need a number in [0, 1]")
    return float(value)


@dataclass(frozen=True)
class DialReading:
    """One reply read through the dial."""

    text: str | None  # the reply, starting with its behaviour token; None on error
    p_proactive: float | None  # the model's own P(<proactive>) (None: not measurable)
    threshold: float
    force: Force
    proactive: bool  # the decision: forced token, or P >= threshold
    error: str | None = None
    latency_s: float | None = None


def decide(p: float | None, threshold: float, force: Force = Force.NONE) -> bool:
    """Proactive or not: the forced token, else P(<proactive>) >= threshold.

    An unmeasurable P is never proactive: a service that cannot read the dial
    stays quiet rather than guess.
    """
    if force is not Force.NONE:
        return force is Force.PROACTIVE
    return p is not None and p >= threshold


def dial_requests(
    messages: Sequence[ChatMessage],
    *,
    force: Force = Force.NONE,
    max_new_tokens: int = 256,
    key: str = "",
) -> list[GenerationRequest]:
    """The requests that answer ``messages`` and measure the dial (one, or two when forced)."""
    main = GenerationRequest(
        messages=tuple(messages),
        key=key,
        max_new_tokens=max_new_tokens,
        temperature=0.0,
        assistant_prefix=force.token,
        track_tokens=() if force is not Force.NONE else BEHAVIOR_TOKENS,
    )
    if force is Force.NONE:
        return [main]
    probe = GenerationRequest(
        messages=tuple(messages),
        key=f"{key}:p_proactive",
        max_new_tokens=1,
        temperature=0.0,
        track_tokens=BEHAVIOR_TOKENS,
    )
    return [main, probe]


def read_dial(
    generate: Callable[[list[GenerationRequest]], list[Generation]],
    messages: Sequence[ChatMessage],
    *,
    threshold: float,
    force: Force = Force.NONE,
    max_new_tokens: int = 256,
    key: str = "",
) -> DialReading:
    """Generate a reply to ``messages`` and decide proactive or not (see :func:`decide`).

    ``generate`` is a model's ``generate`` (or anything that batches calls to it).
    """
    check_threshold(threshold)
    gens = generate(dial_requests(messages, force=force, max_new_tokens=max_new_tokens, key=key))
    main = gens[0]
    probs = gens[-1].token_probs
    p = p_proactive(probs)
    latency = sum(g.latency_s or 0.0 for g in gens)
    if main.error is not None:
        return DialReading(None, p, threshold, force, False, error=main.error, latency_s=latency)
    return DialReading(
        main.text, p, threshold, force, decide(p, threshold, force), latency_s=latency
    )


def strip_behavior_token(text: str) -> str:
    """The reply without its leading behaviour token (and the space after it)."""
    stripped = text.lstrip()
    for tok in BEHAVIOR_TOKENS:
        if stripped.startswith(tok):
            return stripped[len(tok) :].lstrip()
    return stripped
