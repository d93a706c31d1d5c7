"""The one narrow interface every model backend implements.

A backend turns a batch of chat requests into a batch of generations, and may
also score a fixed set of answer letters from next-token logits (choice
scoring). Nothing else in the toolkit talks to a model directly.

Model names follow ``provider/model``:

``openai/<model>``                  the OpenAI API (key from ``OPENAI_API_KEY``)
``openai-compatible/<model>``       any OpenAI-compatible endpoint, with ``base_url``
``hf/<id-or-path>[:<adapter>]``     local transformers, optional PEFT adapter
``vllm/<id-or-path>[:<adapter>]``   vLLM offline engine (extra ``[vllm]``)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from behaviorsft.records import ChatMessage, Usage

ProgressCallback = Callable[[int], None]
"""Called with the number of requests just finished (for progress bars)."""


class MissingExtraError(ImportError):
    """A backend needs an optional dependency that is not installed."""

    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} is not installed; run: {install}")
        self.install = install


def require_packages(command: str, packages: Mapping[str, tuple[str, ...]], install: str) -> None:
    """Raise MissingExtraError naming ``install`` when a package of ``packages`` is absent.

    ``packages`` maps each distribution to the module names it may provide (one is
    enough: python-multipart renamed its module). Nothing is imported: the check
    only looks the modules up.
    """
    from importlib.util import find_spec

    missing = [
        package
        for package, modules in packages.items()
        if all(find_spec(module) is None for module in modules)
    ]
    if missing:
        raise MissingExtraError(f"`{command}` needs {', '.join(missing)}, which", install)


@dataclass(frozen=True)
class GenerationRequest:
    """One chat completion to produce.

    ``assistant_prefix`` is text the assistant turn is forced to start with
    (e.g. ``"<proactive>"`` for the behaviour-forcing ablation); the returned
    text then starts with it too. ``track_tokens`` asks for the probability of
    each listed token at the first generated position (e.g. P(``<proactive>``));
    backends that cannot measure it leave ``Generation.token_probs`` as None.
    ``key`` identifies the request in caches and logs.
    ``response_format`` asks an HTTP endpoint for structured output, e.g.
    ``{"type": "json_schema", "json_schema": {...}}``; backends that cannot
    honour it ignore it, so a prompt using it must also describe the JSON it
    wants in text. None (the default) adds nothing to the request.
    """

    messages: tuple[ChatMessage, ...]
    key: str = ""
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    assistant_prefix: str = ""
    track_tokens: tuple[str, ...] = ()
    # Excluded from the hash: a dict is unhashable, and two requests that differ
    # only here are still told apart by equality.
    response_format: dict[str, Any] | None = field(default=None, hash=False)


@dataclass
class Generation:
    """A backend's answer to one request.

    Exactly one of ``text`` and ``error`` is set. ``error`` means the
    infrastructure failed (after retries); it is never a model's wrong answer.
    ``final`` marks an error that asking again cannot fix (the server refused
    the request itself, e.g. a prompt longer than the model's context), so
    callers do not spend retries on it.
    """

    text: str | None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_s: float | None = None
    token_probs: dict[str, float] | None = None
    cached: bool = False
    final: bool = False


@dataclass(frozen=True)
class ChoiceRequest:
    """Score answer letters as the next token after the prompt.

    ``assistant_prefix`` is appended after the generation prompt (e.g.
    ``"<answer>"``), so the letter is scored where the answer format puts it.
    """

    messages: tuple[ChatMessage, ...]
    letters: tuple[str, ...]
    key: str = ""
    assistant_prefix: str = ""


@dataclass
class ChoiceScores:
    """Log-probabilities of each letter (renormalised over the letters)."""

    logprobs: dict[str, float] | None
    error: str | None = None
    latency_s: float | None = None

    @property
    def best(self) -> str | None:
        if not self.logprobs:
            return None
        return max(self.logprobs, key=lambda k: self.logprobs[k])  # type: ignore[index]


@runtime_checkable
class Model(Protocol):
    """What every backend provides."""

    name: str
    supports_choice_scoring: bool

    def generate(
        self, requests: Sequence[GenerationRequest], *, progress: ProgressCallback | None = None
    ) -> list[Generation]:
        """One Generation per request, in order; failures are Generations with ``error``."""
        ...

    def score_choices(
        self, requests: Sequence[ChoiceRequest], *, progress: ProgressCallback | None = None
    ) -> list[ChoiceScores]:
        """Letter log-probabilities; backends without logits raise NotImplementedError."""
        ...

    def close(self) -> None:
        """Release resources (HTTP sessions, GPU memory)."""
        ...
