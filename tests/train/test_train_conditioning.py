"""The conditioning really works: a tiny model learns to pick the token, and to follow it.

Trained with ``train()`` on a synthetic bench (see conftest): reactive and
proactive task types ask in their own words, so the token is learnable from
the prompt; two balanced types ask the same question on both sides of the 0.5
threshold, so their prompt does not tell the token, and the rationale can only
be learned by following the token. The recipe is overridden (more steps, a
higher learning rate, a constant schedule) because a random tiny model has to
learn in a few hundred steps what a pretrained one brings along.
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from behaviorsft.bench import load_bench
from behaviorsft.tiny import build_tiny_model
from behaviorsft.train.callbacks import evaluate_examples, generate_replies
from behaviorsft.train.config import load_config
from behaviorsft.train.data import prepare_split
from behaviorsft.train.merge import load_adapter_model
from behaviorsft.train.trainer import train
from tests.train.conftest import (
    BALANCED_TYPES,
    PROACTIVE_RATIONALE,
    REACTIVE_RATIONALE,
    corpus,
    write_bench,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("conditioning")
    bench = write_bench(root / "bench", {"train": 20, "val": 2, "test": 10}, seed=0)
    base = build_tiny_model(root / "base", texts=corpus(bench), spare_rows=8, seed=0)
    # Random init gives logits within about +-1 over the whole vocabulary, so a
    # frozen head could never be confident; scale it to a pretrained-like range.
    model = AutoModelForCausalLM.from_pretrained(base)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)
    model.save_pretrained(base)
    cfg = load_config(
        None,
        {
            "model": str(base),
            "bench": str(bench),
            "output_dir": str(root / "out"),
            "select_best": False,
            "max_steps": 250,
            "per_device_train_batch_size": 8,
            "effective_batch_size": 8,
            "learning_rate": 5e-3,
            "lr_scheduler_type": "constant",
            "warmup_steps": 0.05,
            "lora_dropout": 0.0,
            "max_length": 512,
            "gradient_checkpointing": False,
            "logging_steps": 50,
            "seed": 0,
            "report_to": "none",
        },
    )
    result = train(cfg, log=lambda s: None)
    adapter, tok = load_adapter_model(result.output_dir, base=str(base))  # as the harness does
    test, _ = prepare_split(load_bench(bench), "test", mode="behavior")
    return adapter.eval(), tok, test, base, result.output_dir, bench


def test_emits_the_right_token_on_held_out_tasks(trained):
    model, tok, test, *_ = trained
    typed = [e for e in test if e.task_type not in BALANCED_TYPES]
    assert len(typed) == 40 and {e.token for e in typed} == {"<reactive>", "<proactive>"}
    result = evaluate_examples(model, tok, typed, max_new_tokens=2, batch_size=64)
    assert result.token_total == 40
    assert result.token_accuracy >= 0.95, result.rows


@pytest.mark.parametrize(
    ("token", "expected", "other"),
    [
        ("<reactive>", REACTIVE_RATIONALE, PROACTIVE_RATIONALE),
        ("<proactive>", PROACTIVE_RATIONALE, REACTIVE_RATIONALE),
    ],
)
def test_forcing_a_token_changes_what_follows(trained, token, expected, other):
    model, tok, test, *_ = trained
    balanced = [e for e in test if e.task_type in BALANCED_TYPES]
    replies = generate_replies(
        model, tok, [e.prompt for e in balanced], max_new_tokens=4, assistant_prefix=token
    )
    first_word = expected.split()[0].rstrip(":")
    follows = [r.strip().startswith(first_word) for r in replies]
    assert sum(follows) / len(follows) >= 0.9, replies
    assert not any(r.strip().startswith(other.split()[0].rstrip(":")) for r in replies)


@pytest.mark.parametrize("merged", [False, True], ids=["adapter", "merged"])
def test_evaluation_harness_sees_the_token(trained, tmp_path, merged):
    """``hf/BASE:CKPT`` and ``hf/MERGED`` through the harness's own backend and prompt."""
    pytest.importorskip("behaviorsft.models.hf")
    from behaviorsft.models import GenerationRequest, load_model
    from behaviorsft.prompts import build_messages, parse_behavior_token
    from behaviorsft.train.merge import merge_adapter

    *_, base, out, bench_dir = trained
    spec = f"hf/{base}:{out}"
    if merged:
        spec = f"hf/{merge_adapter(out, tmp_path / 'merged', dtype='float32')}"
    model = load_model(spec, device="cpu", dtype="float32")
    bench = load_bench(bench_dir)
    tasks = [t for t in bench.split("test") if t.task_type.value not in BALANCED_TYPES][:8]
    requests = [
        GenerationRequest(
            messages=tuple(build_messages(t, bench.context_text(t), "behaviorsft")),
            max_new_tokens=4,
            track_tokens=("<reactive>", "<proactive>"),
        )
        for t in tasks
    ]
    gens = model.generate(requests)
    tokens = [parse_behavior_token(g.text) for g in gens]
    assert tokens == [t.behavior_token for t in tasks], [g.text for g in gens]
    assert all(g.token_probs and set(g.token_probs) == {"<reactive>", "<proactive>"} for g in gens)
