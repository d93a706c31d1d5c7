"""vLLM offline backend: ``vllm/<hub-id-or-path>[:<adapter-path>]`` (extra ``[vllm]``).

vLLM is imported only when this backend is loaded; without it the error names
the ``pip install`` to run. Prompts are rendered with the model's chat
template exactly as the ``hf`` backend renders them (same text, same token
ids), and the output keeps special tokens so ``<proactive>`` stays visible.

LoRA adapters go through ``LoRARequest``. vLLM cannot load an adapter that
changes the vocabulary (added ``<reactive>``/``<proactive>`` rows, trained
embedding rows or ``modules_to_save`` on the embeddings): such an adapter must
be merged into its base first with ``behaviorsft merge``, then served as
``vllm/<merged-folder>``. :func:`check_adapter_for_vllm` says so before vLLM
spends minutes starting.

This module is not exercised against a real vLLM in the project's tests (vLLM
needs a GPU build): only the missing-extra error, the request-to-
``SamplingParams`` mapping and the adapter check are tested.
"""

from __future__ import annotations

import gc
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from behaviorsft.models.base import (
    ChoiceRequest,
    ChoiceScores,
    Generation,
    GenerationRequest,
    MissingExtraError,
    ProgressCallback,
)
from behaviorsft.models.hf import has_tokenizer_files, render_chat
from behaviorsft.records import Usage

VLLM_INSTALL = "pip install 'behaviorsft[vllm]'"
# Modules whose presence in an adapter means it carries vocabulary rows.
_VOCAB_MODULES = ("embed_tokens", "lm_head", "wte", "embed_in", "embed_out", "output")


def import_vllm() -> Any:
    """Import vLLM, or raise MissingExtraError naming the pip install.

    A broken vLLM install (an ImportError from inside vLLM) is re-raised as is:
    telling the user to install what is installed would hide the real problem.
    """
    try:
        import vllm
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] == "vllm":
            raise MissingExtraError("vLLM", VLLM_INSTALL) from e
        raise
    return vllm


def sampling_kwargs(req: GenerationRequest, *, top_logprobs: int = 20) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one request."""
    sampled = req.temperature > 0
    kwargs: dict[str, Any] = {
        "max_tokens": req.max_new_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p if sampled else 1.0,
        "seed": req.seed if sampled else None,
        # Keep <reactive>/<proactive> (and any other special token) in the text.
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
    }
    if req.stop:
        kwargs["stop"] = list(req.stop)
    if req.track_tokens:
        kwargs["logprobs"] = top_logprobs
    return kwargs


def check_adapter_for_vllm(adapter: str | Path, base: str) -> None:
    """Raise ValueError if vLLM cannot serve ``adapter`` on ``base`` without merging."""
    folder = Path(adapter)
    config_path = folder / "adapter_config.json"
    if not config_path.exists():
        raise ValueError(f"{adapter}: no adapter_config.json; is this a PEFT adapter folder?")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    reasons: list[str] = []
    if config.get("trainable_token_indices"):
        reasons.append("it trains embedding rows (trainable_token_indices)")
    saved = config.get("modules_to_save") or []
    vocab_saved = [m for m in saved if any(v in str(m) for v in _VOCAB_MODULES)]
    if vocab_saved:
        reasons.append(f"it saves whole vocabulary matrices (modules_to_save={vocab_saved})")
    if has_tokenizer_files(folder):
        from transformers import AutoTokenizer

        n_adapter = len(AutoTokenizer.from_pretrained(folder))
        n_base = len(AutoTokenizer.from_pretrained(base))
        if n_adapter != n_base:
            reasons.append(f"its tokenizer has {n_adapter} tokens, the base's has {n_base}")
    if reasons:
        raise ValueError(
            f"vLLM cannot load adapter {adapter}: {'; '.join(reasons)}. vLLM rejects adapters "
            f"that change the vocabulary; merge it first with "
            f"`behaviorsft merge {adapter} --out MERGED` and use vllm/MERGED"
        )


class VLLMModel:
    """vLLM's offline ``LLM`` engine behind the Model protocol.

    Options: ``dtype``, ``max_model_len``, ``gpu_memory_utilization``,
    ``tensor_parallel_size``, ``max_lora_rank``, ``seed``,
    ``trust_remote_code``, ``top_logprobs`` (top-k read for tracked tokens),
    ``chunk_size`` (requests per ``llm.generate`` call, for progress), and any
    other ``vllm.LLM`` keyword in ``engine_kwargs``.
    """

    supports_choice_scoring = False

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        max_lora_rank: int = 64,
        seed: int = 0,
        trust_remote_code: bool = False,
        top_logprobs: int = 20,
        chunk_size: int = 512,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        vllm = import_vllm()
        if adapter:
            check_adapter_for_vllm(adapter, model)
        self.name = f"vllm/{model}" + (f":{adapter}" if adapter else "")
        self.top_logprobs = top_logprobs
        self.chunk_size = chunk_size
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=model,
            dtype=dtype,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            enable_lora=bool(adapter),
            max_lora_rank=max_lora_rank,
            seed=seed,
            trust_remote_code=trust_remote_code,
            **(engine_kwargs or {}),
        )
        self.lora = None
        if adapter:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(adapter))
        self.tokenizer = self.llm.get_tokenizer()
        try:
            self.max_length: int | None = int(self.llm.llm_engine.model_config.max_model_len)
        except AttributeError:  # engine internals moved between vLLM versions
            self.max_length = None
        strip = {self.tokenizer.eos_token, self.tokenizer.pad_token}
        self._strip = tuple(s for s in strip if s)

    def _prompt_ids(self, req: GenerationRequest) -> list[int]:
        text = render_chat(self.tokenizer, req.messages, req.assistant_prefix)
        add_special = not getattr(self.tokenizer, "chat_template", None)
        return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def _token_id(self, text: str) -> int | None:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return int(ids[0]) if len(ids) == 1 else None

    def generate(
        self, requests: Sequence[GenerationRequest], *, progress: ProgressCallback | None = None
    ) -> list[Generation]:
        """Generate every request; vLLM schedules and batches them itself."""
        results: list[Generation] = []
        for start in range(0, len(requests), self.chunk_size):
            chunk = requests[start : start + self.chunk_size]
            results.extend(self._generate_chunk(chunk))
            if progress is not None:
                progress(len(chunk))
        return results

    def _generate_chunk(self, chunk: Sequence[GenerationRequest]) -> list[Generation]:
        prompts: list[dict[str, Any]] = []
        params: list[Any] = []
        out: list[Generation | None] = [None] * len(chunk)
        live: list[int] = []
        for i, req in enumerate(chunk):
            ids = self._prompt_ids(req)
            if self.max_length is not None and len(ids) >= self.max_length:
                out[i] = Generation(
                    text=None,
                    error=f"prompt has {len(ids)} tokens; max_model_len is {self.max_length}",
                )
                continue
            prompts.append({"prompt_token_ids": ids})
            params.append(
                self._vllm.SamplingParams(**sampling_kwargs(req, top_logprobs=self.top_logprobs))
            )
            live.append(i)
        if live:
            t0 = time.perf_counter()
            outputs = self.llm.generate(
                prompts, params, lora_request=self.lora, use_tqdm=False
            )
            share = (time.perf_counter() - t0) / len(live)
            for i, res in zip(live, outputs, strict=True):
                req = chunk[i]
                completion = res.outputs[0]
                text = completion.text
                for s in self._strip:
                    while text.endswith(s):
                        text = text[: -len(s)]
                out[i] = Generation(
                    text=req.assistant_prefix + text,
                    usage=Usage(
                        prompt_tokens=len(res.prompt_token_ids or []),
                        completion_tokens=len(completion.token_ids),
                    ),
                    latency_s=share,
                    token_probs=self._tracked(completion.logprobs, req.track_tokens),
                )
        return [g if g is not None else Generation(text=None, error="not generated") for g in out]

    def _tracked(self, logprobs: Any, tokens: Sequence[str]) -> dict[str, float] | None:
        if not tokens or not logprobs:
            return None
        first = logprobs[0]  # {token_id: Logprob} at the first generated position
        found: dict[str, float] = {}
        for tok in tokens:
            tok_id = self._token_id(tok)
            if tok_id is None:
                continue
            entry = first.get(tok_id)
            found[tok] = math.exp(entry.logprob) if entry is not None else 0.0
        return found or None

    def score_choices(
        self, requests: Sequence[ChoiceRequest], *, progress: ProgressCallback | None = None
    ) -> list[ChoiceScores]:
        """Not implemented for vLLM: use the hf backend for choice scoring."""
        raise NotImplementedError(
            f"{self.name}: choice scoring is implemented by the hf/ backend only; "
            "use hf/<same model> or generation mode"
        )

    def close(self) -> None:
        """Drop the engine (vLLM frees GPU memory when it is garbage collected)."""
        self.llm = None
        gc.collect()
