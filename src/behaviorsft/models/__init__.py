"""Model backends behind one narrow interface (see :mod:`behaviorsft.models.base`).

A model is named ``provider/model``::

    openai/gpt-4o-mini                       the OpenAI API (key from $OPENAI_API_KEY)
    openai-compatible/<name>                 any OpenAI-compatible server; needs base_url
    hf/<hub-id-or-path>[:<adapter-path>]     local transformers, optional PEFT adapter
    vllm/<hub-id-or-path>[:<adapter-path>]   vLLM offline engine (extra ``[vllm]``)
    hf/smollm2[:<adapter-path>]              the folder `behaviorsft models prepare smollm2`
                                             wrote (see :mod:`behaviorsft.models.smollm2`)

The backend is chosen by the provider prefix only, never by a substring of the
model name, and each backend's heavy imports happen only when it is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behaviorsft.models.base import (
    ChoiceRequest,
    ChoiceScores,
    Generation,
    GenerationRequest,
    MissingExtraError,
    Model,
    ProgressCallback,
)

__all__ = [
    "PROVIDERS",
    "ChoiceRequest",
    "ChoiceScores",
    "Generation",
    "GenerationRequest",
    "MissingExtraError",
    "Model",
    "ModelSpec",
    "ProgressCallback",
    "check_model_spec",
    "load_model",
    "parse_model_spec",
    "resolve_model_name",
]

PROVIDERS: tuple[str, ...] = ("openai", "openai-compatible", "hf", "vllm")
# Only local-weight providers take an adapter after ':'. API model names may
# contain ':' themselves (OpenAI fine-tunes 'ft:gpt-4o-mini:org::id', Ollama
# tags 'llama3.1:8b'), so for them the whole rest is the name.
_ADAPTER_PROVIDERS = ("hf", "vllm")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model name: ``provider/name[:adapter]``."""

    provider: str
    name: str
    adapter: str | None = None

    def __str__(self) -> str:
        tail = f":{self.adapter}" if self.adapter else ""
        return f"{self.provider}/{self.name}{tail}"


def _split_adapter(rest: str) -> tuple[str, str | None]:
    # Split on the last ':' that is not a Windows drive letter ('C:\\models\\x').
    start = 2 if _WINDOWS_DRIVE.match(rest) else 0
    idx = rest.rfind(":", start)
    if idx == -1:
        return rest, None
    name, adapter = rest[:idx], rest[idx + 1 :]
    if not name or not adapter:
        raise ValueError(
            f"model {rest!r}: expected '<id-or-path>:<adapter-path>' with both parts non-empty"
        )
    return name, adapter


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse ``provider/model[:adapter]``; unknown providers list the valid ones."""
    spec = spec.strip()
    provider, sep, rest = spec.partition("/")
    if not sep or not rest:
        raise ValueError(
            f"model {spec!r}: expected 'provider/model', e.g. 'hf/Qwen/Qwen2.5-0.5B-Instruct' "
            f"or 'openai/gpt-4o-mini'; providers: {', '.join(PROVIDERS)}"
        )
    if provider not in PROVIDERS:
        raise ValueError(
            f"model {spec!r}: unknown provider {provider!r}; "
            f"use one of: {', '.join(p + '/' for p in PROVIDERS)}"
        )
    if provider in _ADAPTER_PROVIDERS:
        name, adapter = _split_adapter(rest)
        return ModelSpec(provider, name, adapter)
    return ModelSpec(provider, rest, None)


def looks_local(name: str) -> bool:
    """Whether a model or adapter name can only be a local path (not a hub id 'org/name')."""
    return (
        name.startswith(("/", ".", "~", "\\"))
        or bool(_WINDOWS_DRIVE.match(name))
        or name.count("/") >= 2
        or "\\" in name
    )


def resolve_model_name(name: str) -> str:
    """The name transformers should load for a local-weights model name.

    ``~`` is expanded. The alias ``smollm2`` is the folder that ``behaviorsft
    models prepare smollm2`` writes by default, unless a folder named
    ``smollm2`` exists in the working directory (a path always wins); when it
    has not been prepared, ValueError says the command to run. Anything else is
    returned unchanged (a hub id, a path).
    """
    from behaviorsft.models.smollm2 import SMOLLM2

    if name == SMOLLM2 and not Path(name).exists():
        from behaviorsft.models.smollm2 import MODEL_NAME, default_cache_dir, is_prepared

        folder = default_cache_dir()
        if not is_prepared(folder):
            raise ValueError(
                f"{SMOLLM2}: {MODEL_NAME} is not prepared in {folder}; run "
                f"`behaviorsft models prepare {SMOLLM2}` once (a ~20 s conversion), "
                "or name a prepared folder"
            )
        return str(folder)
    if name.startswith("~"):
        return str(Path(name).expanduser())
    return name


def check_model_folder(name: str, what: str = "model") -> str:
    """ValueError when ``name`` can only be a local path (``./x``, ``/m/x``) and is no folder.

    Returns the name to load (:func:`resolve_model_name`: the ``smollm2``
    alias resolved, ``~`` expanded).
    """
    try:
        resolved = resolve_model_name(name)
    except ValueError as exc:
        raise ValueError(f"{what} {exc}") from None
    if not Path(resolved).exists() and looks_local(resolved):
        raise ValueError(f"{what} {name}: no such folder")
    return resolved


def load_error_line(exc: BaseException) -> str:
    """The first line of a model-loading error (transformers words them as paragraphs)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def check_model_spec(spec: str) -> ModelSpec:
    """Parse ``spec`` and check what can be checked without loading anything.

    For ``hf/`` and ``vllm/`` a name or adapter that can only be a local path
    (``./ckpt``, ``/models/x``, ``runs/a/final``) must be an existing folder;
    ``org/name`` may be a hub id and is left to the backend. Raises ValueError
    with a one-line message.
    """
    parsed = parse_model_spec(spec)
    if parsed.provider in _ADAPTER_PROVIDERS:
        for what, name in (("model", parsed.name), ("adapter", parsed.adapter)):
            if name is None:
                continue
            if what == "model":
                try:
                    name = resolve_model_name(name)
                except ValueError as exc:
                    raise ValueError(f"model {spec!r}: {exc}") from None
            path = Path(name).expanduser()
            if path.exists() and not path.is_dir():
                raise ValueError(f"model {spec!r}: {what} {name}: not a folder")
            if not path.exists() and looks_local(name):
                raise ValueError(f"model {spec!r}: {what} {name}: no such folder")
    return parsed


def load_model(
    spec: str,
    *,
    base_url: str | None = None,
    cache_dir: str | Path | None = None,
    **options: Any,
) -> Model:
    """Build the backend named by ``spec``.

    ``base_url`` is for the HTTP providers (required for ``openai-compatible/``);
    ``cache_dir`` holds their response cache (no cache when None). ``options``
    go to the backend's constructor (e.g. ``concurrency``, ``max_retries``,
    ``api_key_env`` for HTTP; ``dtype``, ``device``, ``batch_size`` for ``hf``);
    an option the backend does not know raises TypeError naming it.
    """
    parsed = parse_model_spec(spec)
    if parsed.provider in ("openai", "openai-compatible"):
        from behaviorsft.models.openai_compat import OpenAICompatModel

        return OpenAICompatModel(
            parsed.name,
            provider="openai" if parsed.provider == "openai" else "openai-compatible",
            base_url=base_url,
            cache_dir=cache_dir,
            **options,
        )
    if base_url is not None:
        raise ValueError(
            f"model {spec!r}: --base-url only applies to openai/ and openai-compatible/ models"
        )
    try:
        name = resolve_model_name(parsed.name)
    except ValueError as exc:
        raise ValueError(f"model {spec!r}: {exc}") from None
    adapter = str(Path(parsed.adapter).expanduser()) if parsed.adapter else None
    if parsed.provider == "hf":
        from behaviorsft.models.hf import HFModel

        return HFModel(name, adapter=adapter, **options)
    from behaviorsft.models.vllm_backend import VLLMModel

    return VLLMModel(name, adapter=adapter, **options)
