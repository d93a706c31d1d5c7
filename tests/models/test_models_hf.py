"""The transformers backend against tiny random models saved and loaded back from disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from behaviorsft.models import load_model  # noqa: E402
from behaviorsft.models.base import (  # noqa: E402
    ChoiceRequest,
    GenerationRequest,
    Model,
)
from behaviorsft.models.hf import HFModel, render_chat  # noqa: E402
from behaviorsft.records import ChatMessage  # noqa: E402
from behaviorsft.tiny import build_tiny_model  # noqa: E402

PROMPTS = [
    "Potassium 6.8 mmol/L?",
    "Which of the following is the most appropriate next step? A) B) C) D)",
    "Fever, cough and a penicillin allergy. " * 4,
    "A",
    "The patient is a 68-year-old woman.",
    "SpO2 88%, lactate 4.2 mmol/L, creatinine 2.1 mg/dL.",
]
BEHAVIOR_TOKENS = ["<reactive>", "<proactive>"]


def _messages(text: str) -> tuple[ChatMessage, ...]:
    return (
        ChatMessage(role="system", content="You are a careful clinical assistant."),
        ChatMessage(role="user", content=text),
    )


def _sharpen(path: Path) -> None:
    """Scale the residual branches so a random model's greedy output varies with the prompt.

    At initialisation the residual stream is almost the input embedding, so a
    tied model just repeats its last token; outputs that never vary would let
    a batching bug pass unnoticed.
    """
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                weight.mul_(30)
    model.save_pretrained(path)


@pytest.fixture(
    scope="module", params=[("qwen2", True), ("llama", False)], ids=["qwen2-tied", "llama-untied"]
)
def tiny_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    arch, tied = request.param
    path = build_tiny_model(
        tmp_path_factory.mktemp(arch) / "model",
        arch=arch,
        tie_word_embeddings=tied,
        hidden_size=32,
        num_layers=2,
    )
    _sharpen(path)
    return path


def _manual_next_logits(
    model: Any, tokenizer: Any, messages: tuple[ChatMessage, ...], prefix: str
) -> Any:
    """Unpadded single forward pass through a model object, last position's logits."""
    text = render_chat(tokenizer, messages, prefix)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits[0, -1]


def _manual_greedy(model: Any, tokenizer: Any, messages: tuple[ChatMessage, ...], n: int) -> str:
    """Greedy decoding one token at a time with full forwards, no batching, no generate()."""
    text = render_chat(tokenizer, messages)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    out: list[int] = []
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(input_ids=ids).logits[0, -1].argmax())
            if nxt == eos:
                break
            out.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return tokenizer.decode(out, skip_special_tokens=False)


def test_loads_through_spec_and_satisfies_protocol(tiny_path: Path) -> None:
    model = load_model(f"hf/{tiny_path}", batch_size=4)
    assert isinstance(model, Model)
    assert model.name == f"hf/{tiny_path}"
    assert model.supports_choice_scoring
    assert isinstance(model, HFModel)
    assert model.device == "cpu" and model.dtype == torch.float32
    assert model.tokenizer.padding_side == "left"


def test_batched_generation_equals_one_by_one(tiny_path: Path) -> None:
    model = load_model(f"hf/{tiny_path}", batch_size=4)
    reqs = [
        GenerationRequest(messages=_messages(p), key=str(i), max_new_tokens=10)
        for i, p in enumerate(PROMPTS)
    ]
    done: list[int] = []
    batched = model.generate(reqs, progress=done.append)
    single = [model.generate([r])[0] for r in reqs]
    assert sum(done) == len(reqs)
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.error is None and g.text for g in batched)
    # The prompts lead somewhere different, so the equality above is not vacuous.
    assert len({g.text for g in batched}) > 1
    # And the backend's greedy decoding is real greedy decoding.
    assert batched[1].text == _manual_greedy(
        model.model, model.tokenizer, _messages(PROMPTS[1]), 10
    )
    usage = batched[0].usage
    assert usage.prompt_tokens and usage.prompt_tokens > 5
    assert usage.completion_tokens and 0 < usage.completion_tokens <= 10


def test_stop_strings_and_prefix(tiny_path: Path) -> None:
    model = load_model(f"hf/{tiny_path}")
    free = model.generate([GenerationRequest(messages=_messages(PROMPTS[2]), max_new_tokens=12)])[
        0
    ].text
    assert free
    stop = free[3:6]  # a string the model is known to produce
    stopped = model.generate(
        [GenerationRequest(messages=_messages(PROMPTS[2]), max_new_tokens=12, stop=(stop,))]
    )[0].text
    assert stopped is not None and stop not in stopped and free.startswith(stopped)
    pref = model.generate(
        [
            GenerationRequest(
                messages=_messages(PROMPTS[0]), max_new_tokens=4, assistant_prefix="<answer>"
            )
        ]
    )[0]
    assert pref.text is not None and pref.text.startswith("<answer>")


def test_sampling_is_seeded(tiny_path: Path) -> None:
    model = load_model(f"hf/{tiny_path}")
    req = GenerationRequest(
        messages=_messages(PROMPTS[0]), max_new_tokens=10, temperature=1.5, seed=3
    )
    first, again = model.generate([req])[0].text, model.generate([req])[0].text
    assert first == again
    others = {
        model.generate(
            [GenerationRequest(messages=req.messages, max_new_tokens=10, temperature=1.5, seed=s)]
        )[0].text
        for s in range(4, 9)
    }
    assert len(others | {first}) > 1


def test_choice_scoring_matches_manual_forward(tiny_path: Path) -> None:
    model = load_model(f"hf/{tiny_path}", batch_size=3)
    letters = ("A", "B", "C", "D", "E")
    reqs = [
        ChoiceRequest(
            messages=_messages(p),
            letters=letters[: 4 + i % 2],
            key=str(i),
            assistant_prefix="<answer>",
        )
        for i, p in enumerate(PROMPTS)
    ]
    scores = model.score_choices(reqs)
    reference = AutoModelForCausalLM.from_pretrained(tiny_path).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    for req, sc in zip(reqs, scores, strict=True):
        assert sc.error is None and sc.logprobs is not None
        assert list(sc.logprobs) == list(req.letters)
        logits = _manual_next_logits(reference, tokenizer, req.messages, "<answer>")
        ids = [tokenizer.convert_tokens_to_ids(x) for x in req.letters]
        expected = torch.log_softmax(logits[ids], dim=-1)
        assert sc.best == req.letters[int(expected.argmax())]
        assert torch.allclose(torch.tensor(list(sc.logprobs.values())), expected, atol=1e-4)
        assert abs(sum(torch.tensor(list(sc.logprobs.values())).exp().tolist()) - 1) < 1e-5


def test_choice_scoring_rejects_multi_token_letters(tiny_path: Path) -> None:
    model = load_model(f"hf/{tiny_path}")
    with pytest.raises(ValueError, match="not a single token"):
        model.score_choices(
            [ChoiceRequest(messages=_messages("x"), letters=("A", "Zq\u00e9\u00e8"))]
        )


def test_too_long_prompt_is_an_error_row(tmp_path: Path) -> None:
    path = build_tiny_model(
        tmp_path / "short", hidden_size=32, num_layers=1, max_position_embeddings=64
    )
    model = load_model(f"hf/{path}")
    long = _messages("fever " * 200)
    gens = model.generate(
        [
            GenerationRequest(messages=long, max_new_tokens=2),
            GenerationRequest(messages=_messages("hi"), max_new_tokens=2),
        ]
    )
    assert gens[0].error is not None and "max_position_embeddings" in gens[0].error
    assert gens[1].error is None
    sc = model.score_choices([ChoiceRequest(messages=long, letters=("A", "B"))])
    assert sc[0].error is not None and sc[0].logprobs is None


# --------------------------------------------------------------------------
# LoRA adapters
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_pair(tiny_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """A saved LoRA adapter with perturbed weights, and the in-memory PEFT model it came from."""
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(tiny_path)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.0
    )
    peft_model = get_peft_model(base, config)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:  # B starts at zero: without this the adapter is a no-op
                param.normal_(0, 0.5)
    adapter = tmp_path_factory.mktemp("adapter") / "lora"
    peft_model.save_pretrained(adapter)
    return tiny_path, adapter, peft_model.eval()


def test_lora_adapter_changes_outputs_and_matches_in_memory_peft(
    lora_pair: tuple[Path, Path, Any],
) -> None:
    base_path, adapter, peft_model = lora_pair
    with_adapter = load_model(f"hf/{base_path}:{adapter}", batch_size=4)
    plain = load_model(f"hf/{base_path}", batch_size=4)
    assert with_adapter.name == f"hf/{base_path}:{adapter}"
    reqs = [GenerationRequest(messages=_messages(p), max_new_tokens=8) for p in PROMPTS]
    tuned = [g.text for g in with_adapter.generate(reqs)]
    untuned = [g.text for g in plain.generate(reqs)]
    assert tuned != untuned
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    expected = [_manual_greedy(peft_model, tokenizer, r.messages, 8) for r in reqs]
    assert tuned == expected
    choice = [ChoiceRequest(messages=_messages(p), letters=("A", "B", "C", "D")) for p in PROMPTS]
    scores = with_adapter.score_choices(choice)
    base_scores = plain.score_choices(choice)
    for req, sc in zip(choice, scores, strict=True):
        logits = _manual_next_logits(peft_model, tokenizer, req.messages, "")
        ids = [tokenizer.convert_tokens_to_ids(x) for x in req.letters]
        exp = torch.log_softmax(logits[ids], dim=-1)
        assert torch.allclose(torch.tensor(list(sc.logprobs.values())), exp, atol=1e-4)
    assert any(
        not torch.allclose(
            torch.tensor(list(a.logprobs.values())),
            torch.tensor(list(b.logprobs.values())),
            atol=1e-3,
        )
        for a, b in zip(scores, base_scores, strict=True)
    )


@pytest.mark.parametrize("spare_rows", [0, 8], ids=["resize", "spare-rows"])
def test_adapter_with_added_behavior_tokens(tmp_path: Path, spare_rows: int) -> None:
    """An adapter whose tokenizer adds <reactive>/<proactive> loads, emits and forces them."""
    from peft import LoraConfig, get_peft_model

    base_path = build_tiny_model(
        tmp_path / "base", hidden_size=32, num_layers=2, spare_rows=spare_rows
    )
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    n_before = len(tokenizer)
    tokenizer.add_tokens(BEHAVIOR_TOKENS, special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids(BEHAVIOR_TOKENS)
    assert ids == [n_before, n_before + 1]
    model = AutoModelForCausalLM.from_pretrained(base_path)
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer))
    messages = _messages("Potassium 6.8 mmol/L and the team plans to discharge.")
    # Make <proactive> the model's first choice for this prompt: set its (tied)
    # row along the final hidden state of the last prompt position.
    text = render_chat(tokenizer, messages)
    prompt_ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        hidden = model(input_ids=prompt_ids, output_hidden_states=True).hidden_states[-1][0, -1]
    config = LoraConfig(
        r=4, target_modules=["q_proj", "v_proj"], trainable_token_indices={"embed_tokens": ids}
    )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        delta = next(p for n, p in peft_model.named_parameters() if "trainable_tokens_delta" in n)
        delta[1] = hidden * 4.0
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)

    loaded = load_model(f"hf/{base_path}:{adapter}")
    assert isinstance(loaded, HFModel)
    assert len(loaded.tokenizer) == len(tokenizer)
    assert loaded._base.get_input_embeddings().weight.shape[0] == max(rows, len(tokenizer))
    gen = loaded.generate(
        [
            GenerationRequest(
                messages=messages, max_new_tokens=4, track_tokens=tuple(BEHAVIOR_TOKENS)
            )
        ]
    )[0]
    assert gen.text is not None and gen.text.startswith("<proactive>")
    assert gen.token_probs is not None and gen.token_probs["<proactive>"] > 0.9
    assert set(gen.token_probs) == set(BEHAVIOR_TOKENS)
    # Forcing the other token: the prompt then ends with <reactive> as one token.
    forced = loaded.generate(
        [GenerationRequest(messages=messages, max_new_tokens=3, assistant_prefix="<reactive>")]
    )[0]
    assert forced.text is not None and forced.text.startswith("<reactive>")
    encoded = loaded._encode(messages, "<reactive>")
    assert encoded[-1] == ids[0]
    assert len(encoded) == len(prompt_ids[0]) + 1
    # The base model without the adapter has no such tokens to report.
    plain = load_model(f"hf/{base_path}").generate(
        [
            GenerationRequest(
                messages=messages, max_new_tokens=2, track_tokens=tuple(BEHAVIOR_TOKENS)
            )
        ]
    )[0]
    assert plain.token_probs is None
    assert "<proactive>" not in (plain.text or "")


def test_adapter_folder_without_config_names_the_problem(tiny_path: Path, tmp_path: Path) -> None:
    (tmp_path / "not_an_adapter").mkdir()
    with pytest.raises(ValueError, match=r"adapter_config\.json"):
        load_model(f"hf/{tiny_path}:{tmp_path / 'not_an_adapter'}")


def test_choice_scoring_fallback_paths_agree(tiny_path: Path) -> None:
    """Older transformers keep logits differently; every path gives the same scores."""
    model = load_model(f"hf/{tiny_path}", batch_size=4)
    assert isinstance(model, HFModel)
    reqs = [ChoiceRequest(messages=_messages(p), letters=("A", "B", "C")) for p in PROMPTS]
    assert model._keep_mode == "per_row"
    expected = [s.logprobs for s in model.score_choices(reqs)]
    for mode in ("shared", "all"):
        model._keep_mode = mode
        got = [s.logprobs for s in model.score_choices(reqs)]
        for e, g in zip(expected, got, strict=True):
            assert e is not None and g is not None
            assert g == pytest.approx(e, abs=1e-5)


# --------------------------------------------------------------------------
# Prefix sharing in choice scoring
# --------------------------------------------------------------------------

TURNS = [
    "[0] Nurse Larsen (triage nurse): New arrival, 75-year-old man with epigastric pain.",
    "[1] Dr. Costa (emergency physician): What brought you in today?",
    "[2] Patient (patient): Two days of pain radiating to the back, and vomiting.",
    "[3] Dr. Costa (emergency physician): Which medicines do you take regularly?",
    "[4] Patient (patient): Metformin 500 mg twice daily.",
    "[5] Dr. Costa (emergency physician): Any drug allergies?",
    "[6] Patient (patient): Penicillin, it gave me a rash.",
    "[7] Nurse Larsen (triage nurse): Heart rate 108/min, temperature 37.9 C.",
]


def _record_requests() -> list[ChoiceRequest]:
    """Questions about one conversation at three points, plus prompts about nothing shared."""
    reqs = []
    for end in (3, 5, 8):
        record = "\n\n".join(TURNS[:end])
        for q in ("What is the next step?", "Which value is missing?", "Any allergy?"):
            text = f"Clinical record:\n{record}\n\nQuestion:\n{q}\n\nOptions:\nA) B) C) D)"
            reqs.append(
                ChoiceRequest(
                    messages=_messages(text),
                    letters=("A", "B", "C", "D"),
                    key=f"{end}:{q}",
                    assistant_prefix="<answer>",
                )
            )
    reqs += [ChoiceRequest(messages=_messages(p), letters=("A", "B", "C")) for p in PROMPTS]
    return reqs


def _assert_same_scores(got: list[Any], expected: list[Any], atol: float = 1e-5) -> None:
    for g, e in zip(got, expected, strict=True):
        assert g.error is None and e.error is None
        assert g.logprobs == pytest.approx(e.logprobs, abs=atol)


def test_prefix_sharing_scores_like_whole_prompts(tiny_path: Path) -> None:
    reqs = _record_requests()
    whole = load_model(f"hf/{tiny_path}", batch_size=2, prefix_sharing=False)
    shared = load_model(f"hf/{tiny_path}", batch_size=2)
    assert isinstance(shared, HFModel) and shared.prefix_sharing
    expected = whole.score_choices(reqs)
    got = shared.score_choices(reqs)
    _assert_same_scores(got, expected)
    assert shared._prefix_checked and shared.prefix_sharing
    stats = shared.last_prefix_stats
    assert stats is not None and stats["tokens_saved"] > 0.4
    assert all(s.latency_s is not None and s.latency_s > 0 for s in got)
    # the order of requests does not matter
    again = shared.score_choices(list(reversed(reqs)))
    _assert_same_scores(list(reversed(again)), expected)


def test_prefix_sharing_with_a_lora_adapter(lora_pair: tuple[Path, Path, Any]) -> None:
    base_path, adapter, _ = lora_pair
    reqs = _record_requests()
    whole = load_model(f"hf/{base_path}:{adapter}", batch_size=3, prefix_sharing=False)
    shared = load_model(f"hf/{base_path}:{adapter}", batch_size=3)
    _assert_same_scores(shared.score_choices(reqs), whole.score_choices(reqs))


def _expected_and_sharing_model(tiny_path: Path) -> tuple[list[Any], list[Any], HFModel]:
    """The record requests, their whole-prompt scores, and a fresh model that shares prefixes."""
    reqs = _record_requests()
    expected = load_model(f"hf/{tiny_path}", prefix_sharing=False).score_choices(reqs)
    model = load_model(f"hf/{tiny_path}", batch_size=2)
    assert isinstance(model, HFModel) and model.prefix_sharing
    return reqs, expected, model


def test_prefix_sharing_turns_itself_off_when_a_cache_does_not_continue(
    tiny_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model whose cached prefix scores differently (simulated) is scored whole, correctly."""
    reqs, expected, model = _expected_and_sharing_model(tiny_path)
    real_extend = model._extend
    model._extend = lambda kv, segment: real_extend(kv, segment[::-1])  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="behaviorsft.models.hf"):
        got = model.score_choices(reqs)
    assert not model.prefix_sharing
    assert (
        "prefix sharing turned off" in caplog.text
        and "differs from the whole prompt" in caplog.text
    )
    _assert_same_scores(got, expected)


def test_a_failure_midway_scores_the_rest_whole(
    tiny_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reqs, expected, model = _expected_and_sharing_model(tiny_path)
    real_new_cache = model._new_cache
    calls = {"n": 0}

    def flaky(kv: Any, batch: int) -> Any:
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("simulated cache failure")
        return real_new_cache(kv, batch)

    model._new_cache = flaky  # type: ignore[method-assign]
    done: list[int] = []
    with caplog.at_level("WARNING", logger="behaviorsft.models.hf"):
        got = model.score_choices(reqs, progress=done.append)
    assert calls["n"] == 5 and not model.prefix_sharing
    assert "simulated cache failure" in caplog.text
    assert sum(done) == len(reqs)  # progress counts each request once
    _assert_same_scores(got, expected)


def test_sliding_window_models_score_whole_prompts() -> None:
    from transformers import Qwen2Config

    from behaviorsft.models.hf import _prefix_sharing_unsupported

    assert _prefix_sharing_unsupported(Qwen2Config()) is None
    windowed = Qwen2Config(use_sliding_window=True, sliding_window=16, max_window_layers=0)
    reason = _prefix_sharing_unsupported(windowed)
    assert reason is not None and "sliding_attention" in reason
