"""The proactivity dial: P(<proactive>) from the first-token distribution, threshold, force."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from behaviorsft.dial import (
    Force,
    check_threshold,
    decide,
    dial_requests,
    p_proactive,
    read_dial,
    strip_behavior_token,
)
from behaviorsft.models import load_model
from behaviorsft.records import ChatMessage
from behaviorsft.taxonomy import BEHAVIOR_TOKENS, PROACTIVE_TOKEN, REACTIVE_TOKEN
from tests.chat_stub import ScriptedChat

MESSAGES = (ChatMessage(role="user", content="Potassium 6.8 mmol/L; plan: discharge."),)


@pytest.mark.parametrize(
    ("probs", "want"),
    [
        ({PROACTIVE_TOKEN: 0.3, REACTIVE_TOKEN: 0.1}, 0.75),
        ({PROACTIVE_TOKEN: 0.0, REACTIVE_TOKEN: 0.2}, 0.0),
        ({PROACTIVE_TOKEN: 0.02, REACTIVE_TOKEN: 0.0}, 1.0),
        ({PROACTIVE_TOKEN: 0.0, REACTIVE_TOKEN: 0.0}, None),  # neither in the top-k
        ({PROACTIVE_TOKEN: 0.5}, None),
        (None, None),
        ({PROACTIVE_TOKEN: math.nan, REACTIVE_TOKEN: 0.1}, None),
    ],
)
def test_p_proactive_renormalises_over_the_two_tokens(
    probs: dict[str, float] | None, want: float | None
) -> None:
    got = p_proactive(probs)
    assert got == (pytest.approx(want) if want is not None else None)


def test_decide_threshold_and_force() -> None:
    assert decide(0.6, 0.6) and not decide(0.59, 0.6)
    assert decide(0.0, 0.0) and not decide(0.99, 1.0)
    assert not decide(None, 0.0)  # an unreadable dial stays quiet
    assert decide(0.0, 1.0, Force.PROACTIVE) and not decide(1.0, 0.0, Force.REACTIVE)
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="threshold"):
            check_threshold(bad)


def test_forced_requests_pin_the_token_and_probe_separately() -> None:
    (plain,) = dial_requests(MESSAGES)
    assert plain.assistant_prefix == "" and plain.track_tokens == BEHAVIOR_TOKENS
    main, probe = dial_requests(MESSAGES, force=Force.REACTIVE, key="k")
    assert main.assistant_prefix == REACTIVE_TOKEN and main.track_tokens == ()
    assert probe.assistant_prefix == "" and probe.track_tokens == BEHAVIOR_TOKENS
    assert probe.max_new_tokens == 1 and probe.key == "k:p_proactive"
    assert strip_behavior_token(" <proactive> Stop the order.") == "Stop the order."


@pytest.fixture(scope="module")
def tiny_with_tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from behaviorsft.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("dial"), hidden_size=32, num_layers=2)
    tok = AutoTokenizer.from_pretrained(path)
    tok.add_tokens(list(BEHAVIOR_TOKENS), special_tokens=True)
    model = AutoModelForCausalLM.from_pretrained(path)
    model.resize_token_embeddings(len(tok))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_hf_dial_reads_the_first_position_logits(tiny_with_tokens: Path) -> None:
    import torch

    from behaviorsft.models.hf import HFModel

    model = load_model(f"hf/{tiny_with_tokens}", dtype="float32", device="cpu")
    assert isinstance(model, HFModel)
    reading = read_dial(model.generate, MESSAGES, threshold=0.5, force=Force.NONE, max_new_tokens=4)
    ids = model._encode(MESSAGES, "")
    with torch.no_grad():
        logits = model.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    probs = torch.softmax(logits, dim=-1)
    pro, rea = (float(probs[model.single_token_id(t)]) for t in (PROACTIVE_TOKEN, REACTIVE_TOKEN))
    assert reading.p_proactive == pytest.approx(pro / (pro + rea), rel=1e-4)
    assert reading.proactive == (reading.p_proactive >= 0.5)
    forced = read_dial(
        model.generate, MESSAGES, threshold=1.0, force=Force.PROACTIVE, max_new_tokens=4
    )
    assert forced.proactive and forced.text is not None and forced.text.startswith(PROACTIVE_TOKEN)
    assert forced.p_proactive == pytest.approx(reading.p_proactive, rel=1e-4)  # from the probe
    # Threshold 0 vs 1 flips the unforced decision on the same prompt.
    assert read_dial(model.generate, MESSAGES, threshold=0.0, max_new_tokens=4).proactive
    assert not read_dial(model.generate, MESSAGES, threshold=1.0, max_new_tokens=4).proactive


@pytest.fixture
def endpoint() -> Iterator[ScriptedChat]:
    ep = ScriptedChat(
        " Check the potassium.",
        "The",
        [(PROACTIVE_TOKEN, 0.3), ("The", 0.5), (REACTIVE_TOKEN, 0.1)],
    )
    yield ep
    ep.close()


def test_openai_compatible_dial_reads_top_logprobs_and_forces_a_prefix(
    endpoint: ScriptedChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    model = load_model("openai-compatible/agent", base_url=endpoint.url, max_retries=0)
    reading = read_dial(model.generate, MESSAGES, threshold=0.7)
    assert reading.p_proactive == pytest.approx(0.75) and reading.proactive
    assert not read_dial(model.generate, MESSAGES, threshold=0.8).proactive
    assert endpoint.bodies[0]["logprobs"] is True
    forced = read_dial(
        model.generate, MESSAGES, threshold=1.0, force=Force.PROACTIVE, max_new_tokens=4
    )
    assert forced.proactive and forced.text == PROACTIVE_TOKEN + " Check the potassium."
    main = next(b for b in endpoint.bodies[2:] if not b.get("logprobs"))
    assert main["messages"][-1] == {"role": "assistant", "content": PROACTIVE_TOKEN}
    model.close()
