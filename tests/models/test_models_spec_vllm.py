"""Model names, dispatch, and the vLLM backend's pure parts (vLLM itself is not installed here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from behaviorsft.models import PROVIDERS, ModelSpec, load_model, parse_model_spec
from behaviorsft.models.base import GenerationRequest, MissingExtraError
from behaviorsft.models.vllm_backend import check_adapter_for_vllm, sampling_kwargs
from behaviorsft.records import ChatMessage


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("openai/gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        ("openai/ft:gpt-4o-mini:org::abc123", ModelSpec("openai", "ft:gpt-4o-mini:org::abc123")),
        ("openai-compatible/llama3.1:8b", ModelSpec("openai-compatible", "llama3.1:8b")),
        ("hf/Qwen/Qwen2.5-7B-Instruct", ModelSpec("hf", "Qwen/Qwen2.5-7B-Instruct")),
        (
            "hf/Qwen/Qwen2.5-7B-Instruct:ckpt/best",
            ModelSpec("hf", "Qwen/Qwen2.5-7B-Instruct", "ckpt/best"),
        ),
        ("hf//abs/base:/abs/adapter", ModelSpec("hf", "/abs/base", "/abs/adapter")),
        ("hf/C:\\models\\base", ModelSpec("hf", "C:\\models\\base")),
        (
            "vllm/meta-llama/Llama-3.1-8B-Instruct:lora",
            ModelSpec("vllm", "meta-llama/Llama-3.1-8B-Instruct", "lora"),
        ),
    ],
)
def test_parse_model_spec(spec: str, expected: ModelSpec) -> None:
    parsed = parse_model_spec(spec)
    assert parsed == expected
    assert str(parsed) == spec


@pytest.mark.parametrize("spec", ["gpt-4o", "anthropic/claude", "hf/", "openai", "HF/x"])
def test_bad_specs_list_the_providers(spec: str) -> None:
    with pytest.raises(ValueError, match="openai-compatible") as err:
        parse_model_spec(spec)
    assert spec in str(err.value)


def test_adapter_needs_both_halves() -> None:
    with pytest.raises(ValueError, match="adapter"):
        parse_model_spec("hf/base:")


def test_base_url_only_for_http_providers() -> None:
    with pytest.raises(ValueError, match="base-url"):
        load_model("hf/some/model", base_url="http://127.0.0.1:8000/v1")


def test_providers_are_exactly_the_documented_ones() -> None:
    assert PROVIDERS == ("openai", "openai-compatible", "hf", "vllm")


def test_vllm_missing_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes `import vllm` fail as if it were not installed, even
    # on a machine where it is.
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'behaviorsft\[vllm\]'") as err:
        load_model("vllm/Qwen/Qwen2.5-0.5B-Instruct")
    assert err.value.install == "pip install 'behaviorsft[vllm]'"
    assert isinstance(err.value, ImportError)


def test_backend_modules_import_without_vllm_or_torch() -> None:
    """Heavy SDKs are imported only when a backend is built, not when its module is."""
    import subprocess

    code = (
        "import sys\n"
        "for name in ('vllm', 'torch', 'transformers', 'peft'):\n"
        "    sys.modules[name] = None\n"
        "import behaviorsft.models, behaviorsft.models.hf, behaviorsft.models.openai_compat\n"
        "import behaviorsft.models.vllm_backend\n"
        "print('imported')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "imported" in out.stdout


def _msg() -> tuple[ChatMessage, ...]:
    return (ChatMessage(role="user", content="hi"),)


def test_sampling_params_mapping_greedy() -> None:
    kw = sampling_kwargs(GenerationRequest(messages=_msg(), max_new_tokens=32, seed=5, top_p=0.9))
    assert kw == {
        "max_tokens": 32,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": None,
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
    }


def test_sampling_params_mapping_sampled_with_stop_and_tracking() -> None:
    req = GenerationRequest(
        messages=_msg(),
        temperature=0.7,
        top_p=0.9,
        seed=3,
        stop=("</answer>",),
        track_tokens=("<reactive>", "<proactive>"),
    )
    kw = sampling_kwargs(req, top_logprobs=5)
    assert kw["temperature"] == 0.7 and kw["top_p"] == 0.9 and kw["seed"] == 3
    assert kw["stop"] == ["</answer>"] and kw["logprobs"] == 5
    assert kw["skip_special_tokens"] is False


def test_sampling_params_accepted_by_a_stub_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mapping's keys are SamplingParams keywords (a stub stands in for vLLM's class)."""
    import types

    seen: list[dict[str, object]] = []

    class SamplingParams:  # the keyword set of vllm.SamplingParams we rely on
        def __init__(
            self,
            *,
            max_tokens: int,
            temperature: float,
            top_p: float,
            seed: int | None,
            skip_special_tokens: bool,
            spaces_between_special_tokens: bool,
            stop: list[str] | None = None,
            logprobs: int | None = None,
        ) -> None:
            seen.append(dict(locals()))

    stub = types.ModuleType("vllm")
    stub.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", stub)
    from behaviorsft.models.vllm_backend import import_vllm

    vllm = import_vllm()
    vllm.SamplingParams(**sampling_kwargs(GenerationRequest(messages=_msg(), stop=("x",))))
    assert seen and seen[0]["skip_special_tokens"] is False


def test_adapter_that_changes_the_vocabulary_is_refused(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from behaviorsft.tiny import build_tiny_model

    base = build_tiny_model(tmp_path / "base", hidden_size=16, num_layers=1)
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    check_adapter_for_vllm(plain, str(base))  # a plain LoRA adapter is fine

    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "trainable_token_indices": {"embed_tokens": [1024]}})
    )
    tok = AutoTokenizer.from_pretrained(base)
    tok.add_tokens(["<reactive>", "<proactive>"], special_tokens=True)
    tok.save_pretrained(tokens)
    with pytest.raises(ValueError, match="behaviorsft merge") as err:
        check_adapter_for_vllm(tokens, str(base))
    assert "trainable_token_indices" in str(err.value) and "tokenizer" in str(err.value)

    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "modules_to_save": ["embed_tokens", "lm_head"]})
    )
    with pytest.raises(ValueError, match="modules_to_save"):
        check_adapter_for_vllm(saved, str(base))
    with pytest.raises(ValueError, match="adapter_config"):
        check_adapter_for_vllm(tmp_path / "nothing", str(base))
