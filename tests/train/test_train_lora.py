"""LoRA + trainable token rows under TRL's SFTTrainer: the crash and its fix, training, saving."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import torch
from datasets import Dataset
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from behaviorsft.train.lora import (
    fix_trainable_tokens_head,
    lora_config,
    never_save_embedding_matrices,
    trainable_token_indices,
    wrap_model,
)
from behaviorsft.train.merge import load_adapter_model
from behaviorsft.train.tokens import add_behavior_tokens

ROWS = [
    {
        "prompt": [{"role": "user", "content": f"Is the {drug} plan safe?"}],
        "completion": [{"role": "assistant", "content": f"<proactive> Flag {drug}."}],
    }
    for drug in ("heparin", "insulin", "warfarin", "digoxin")
] + [
    {
        "prompt": [{"role": "user", "content": f"What was the {lab} value?"}],
        "completion": [{"role": "assistant", "content": f"<reactive> Stated {lab}."}],
    }
    for lab in ("sodium", "lactate", "glucose", "troponin")
]


def _setup(path):
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    tokens = add_behavior_tokens(model, tok)
    return model, tok, tokens


def _train(model, tok, out, steps=4):
    args = SFTConfig(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        gradient_checkpointing=False,
        bf16=False,
    )
    trainer = SFTTrainer(
        model=model, processing_class=tok, args=args, train_dataset=Dataset.from_list(ROWS)
    )
    trainer.train()
    return trainer


def test_trainable_token_indices_by_tying(tiny_models):
    tied, _, t_tok = _setup(tiny_models["tied"])
    untied, _, u_tok = _setup(tiny_models["untied"])
    assert trainable_token_indices(tied, t_tok.token_ids) == {
        "model.embed_tokens": list(t_tok.token_ids)
    }
    assert trainable_token_indices(untied, u_tok.token_ids) == {
        "model.embed_tokens": list(u_tok.token_ids),
        "lm_head": list(u_tok.token_ids),
    }
    assert trainable_token_indices(untied, u_tok.token_ids, train_head_rows=False) == {
        "model.embed_tokens": list(u_tok.token_ids)
    }


@pytest.mark.skipif(
    not (version("trl").startswith("1.16.") and version("peft").startswith("0.21.")),
    reason="the crash is pinned down for trl 1.16 + peft 0.21",
)
def test_unfixed_head_reproduces_the_crash(tiny_models, tmp_path):
    """TRL 1.16 + PEFT 0.21: the fused LM head reads lm_head.bias from the PEFT wrapper."""
    from peft import get_peft_model

    model, tok, tokens = _setup(tiny_models["tied"])
    peft_model = get_peft_model(model, lora_config(model, tokens.token_ids))
    with pytest.raises(AttributeError, match="'TrainableTokensWrapper' object has no attribute"):
        _train(peft_model, tok, tmp_path, steps=1)


@pytest.mark.parametrize("kind", ["tied", "untied"])
def test_lora_and_token_rows_train_base_stays_frozen(tiny_models, tmp_path, kind):
    model, tok, tokens = _setup(tiny_models[kind])
    base_emb = model.get_input_embeddings().weight.detach().clone()
    base_head = model.get_output_embeddings().weight.detach().clone()
    peft_model = wrap_model(model, lora_config(model, tokens.token_ids))
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    _train(peft_model, tok, tmp_path)

    changed = {n for n, p in peft_model.named_parameters() if not torch.equal(p, before[n])}
    assert changed <= trainable  # nothing frozen moved
    assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)
    deltas = {n for n in changed if "trainable_tokens_delta" in n}
    assert any("embed_tokens" in n for n in deltas)
    if kind == "untied":
        assert any("lm_head" in n for n in deltas)
    # The effective matrices: only the new tokens' rows differ from the base.
    ids = list(tokens.token_ids)
    others = [i for i in range(base_emb.shape[0]) if i not in ids]
    emb_now = peft_model.get_input_embeddings().weight.detach()
    head_now = peft_model.get_output_embeddings().weight.detach()
    assert torch.equal(emb_now[others], base_emb[others])
    assert torch.equal(head_now[others], base_head[others])
    assert not torch.equal(emb_now[ids], base_emb[ids])
    assert not torch.equal(head_now[ids], base_head[ids])
    # and the base weights themselves were never written to
    assert torch.equal(model.get_input_embeddings().token_adapter.base_layer.weight, base_emb)


def test_head_with_bias_is_refused(tiny_models):
    model, _, tokens = _setup(tiny_models["untied"])
    old = model.lm_head
    model.lm_head = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with pytest.raises(ValueError, match=r"has a bias.*train_head_rows=false"):
        wrap_model(model, lora_config(model, tokens.token_ids))


def test_fix_is_a_no_op_without_trainable_tokens(tiny_models):
    from peft import get_peft_model

    model = AutoModelForCausalLM.from_pretrained(tiny_models["untied"])
    peft_model = get_peft_model(model, lora_config(model))
    assert fix_trainable_tokens_head(peft_model) is False


@pytest.mark.parametrize("kind", ["tied", "untied"])
def test_adapter_saves_rows_not_matrices_and_reloads_identically(tiny_models, tmp_path, kind):
    model, tok, tokens = _setup(tiny_models[kind])
    assert tokens.resized == (kind == "untied")
    peft_model = wrap_model(model, lora_config(model, tokens.token_ids))
    _train(peft_model, tok, tmp_path / "run", steps=2)
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)  # as Trainer does: no save_embedding_layers argument
    tok.save_pretrained(adapter)

    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and all("lora_" in k or "trainable_tokens_delta" in k for k in keys)
    vocab_bytes = model.get_input_embeddings().weight.numel() * 4
    size = (adapter / "adapter_model.safetensors").stat().st_size
    n_lora = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    assert size < (n_lora + 4 * model.config.hidden_size) * 4 + 16_384  # header slack
    assert size < vocab_bytes * 2 or kind == "tied"  # sanity: not a matrix copy

    # The evaluation harness's loading recipe reproduces the model exactly.
    reloaded, rtok = load_adapter_model(adapter, base=str(tiny_models[kind]))
    assert rtok.convert_tokens_to_ids(list(tokens.tokens)) == list(tokens.token_ids)
    ids = rtok("Is the heparin plan safe? <proactive>", return_tensors="pt")
    peft_model.eval()
    reloaded.eval()
    with torch.no_grad():
        a = peft_model(**ids).logits
        b = reloaded(**ids).logits
    assert torch.equal(a, b)


def test_embedding_matrices_stay_out_after_a_resize(tiny_models, tmp_path):
    """Without the guard, PEFT's 'auto' saves both whole matrices once the vocabulary grew."""
    from peft import get_peft_model

    model, _, tokens = _setup(tiny_models["untied"])
    assert tokens.resized
    plain = get_peft_model(model, lora_config(model, tokens.token_ids))
    plain.save_pretrained(tmp_path / "plain")
    with safe_open(str(tmp_path / "plain" / "adapter_model.safetensors"), "pt") as f:
        keys = f.keys()
    assert any("embed_tokens" in k and k.endswith("base_layer.weight") for k in keys)
    never_save_embedding_matrices(plain)
    plain.save_pretrained(tmp_path / "guarded")
    with safe_open(str(tmp_path / "guarded" / "adapter_model.safetensors"), "pt") as f:
        keys = f.keys()
    assert not any("base_layer.weight" in k for k in keys)


def test_bf16_model_trains_fp32_rows_that_move(tiny_models, tmp_path):
    """A bf16 base keeps its trainable rows in fp32, where a small update is not rounded away."""
    model = AutoModelForCausalLM.from_pretrained(tiny_models["untied"], dtype=torch.bfloat16)
    tok = AutoTokenizer.from_pretrained(tiny_models["untied"])
    tokens = add_behavior_tokens(model, tok)
    peft_model = wrap_model(model, lora_config(model, tokens.token_ids))
    deltas = {n: p for n, p in peft_model.named_parameters() if "trainable_tokens_delta" in n}
    assert deltas and all(p.dtype == torch.float32 for p in deltas.values())
    assert all(p.dtype == torch.float32 for p in peft_model.parameters() if p.requires_grad)
    before = {n: p.detach().clone() for n, p in deltas.items()}
    batch = tok("Is the heparin plan safe? <proactive> Flag", return_tensors="pt")
    loss = peft_model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    with torch.no_grad():
        for p in deltas.values():
            p -= 1e-4 * p.grad.sign()  # an lr-1e-4-sized step
    assert all(not torch.equal(before[n], p) for n, p in deltas.items())
    out = peft_model(**batch).logits
    assert out.dtype == torch.bfloat16  # the forward still runs in the model's dtype


def test_zero3_detection(tmp_path, monkeypatch):
    from behaviorsft.train.lora import zero3_launch

    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED", raising=False)
    assert not zero3_launch({})
    ds = tmp_path / "z3.json"
    ds.write_text('{"zero_optimization": {"stage": 3}}')
    assert zero3_launch({"deepspeed": str(ds)})
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(ds))
    assert zero3_launch({})
    ds.write_text('{"zero_optimization": {"stage": 2}}')
    assert not zero3_launch({})
