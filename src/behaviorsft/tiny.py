"""Tiny, randomly initialised causal LMs for tests and the offline demo.

No weights can be downloaded on an offline machine, so tests and ``make demo``
build a small Qwen2- or Llama-shaped model locally: a byte-level BPE tokenizer
trained with ``tokenizers`` on the given texts (with a ChatML chat template),
and a model config with random weights, both saved to a folder that loads back
through ``AutoTokenizer.from_pretrained`` / ``AutoModelForCausalLM.from_pretrained``
exactly like a hub model does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_DEFAULT_TEXTS = [
    "The patient is a 68-year-old woman with fever, cough and a penicillin allergy.",
    "Which of the following is the most appropriate next step? A) B) C) D) E) F)",
    "<answer>A</answer> <answer>B</answer> <answer>C</answer> <answer>D</answer>",
    "Answer: the best option is B. No issue identified; no action needed.",
    "Potassium 6.8 mmol/L, creatinine 2.1 mg/dL, lactate 4.2 mmol/L, SpO2 88%.",
]


def train_tokenizer(
    texts: Iterable[str] | None = None, *, vocab_size: int = 1024
) -> object:
    """A byte-level BPE ``PreTrainedTokenizerFast`` with a ChatML template.

    Every byte is in the base alphabet, so any text round-trips and each option
    letter ``A``-``F`` is a single token.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = list(texts) if texts is not None else []
    tok.train_from_iterator(corpus + _DEFAULT_TEXTS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(
    out_dir: str | os.PathLike[str],
    *,
    arch: Literal["qwen2", "llama"] = "qwen2",
    tie_word_embeddings: bool = True,
    texts: Iterable[str] | None = None,
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    max_position_embeddings: int = 4096,
    spare_rows: int = 0,
    seed: int = 0,
) -> Path:
    """Save a random tiny model + tokenizer to ``out_dir`` and return the path.

    ``spare_rows`` pads the embedding matrix beyond the tokenizer's vocabulary,
    the way Qwen2.5 ships spare rows, so code that adds tokens can be tested
    both with and without a resize.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    n_vocab = len(tokenizer) + spare_rows  # type: ignore[arg-type]
    common = dict(
        vocab_size=n_vocab,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),  # type: ignore[attr-defined]
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),  # type: ignore[attr-defined]
        bos_token_id=None,
    )
    config = Qwen2Config(**common) if arch == "qwen2" else LlamaConfig(**common)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = common["eos_token_id"]
    model.generation_config.pad_token_id = common["pad_token_id"]
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)  # type: ignore[attr-defined]
    return out


def pretrain_tiny_model(
    model_dir: str | os.PathLike[str],
    texts: Iterable[str],
    *,
    epochs: int = 8,
    block_size: int = 512,
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> list[float]:
    """Language-model ``texts`` with all weights for a few epochs; save in place.

    A random model fine-tuned with LoRA cannot learn much: its embeddings and
    output head stay frozen at a scale where every next-token distribution is
    nearly uniform. A short full-parameter pass over in-domain text stands in
    for the pretraining a real base model has, so that the LoRA stage after it
    has something to adapt. ``progress(step, total, loss)`` is called per step.
    Returns the mean loss of each epoch.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text)["input_ids"])
        stream.append(tokenizer.eos_token_id)
    n_blocks = len(stream) // block_size
    if n_blocks == 0:
        raise ValueError(f"pretraining needs at least {block_size} tokens, got {len(stream)}")
    blocks = torch.tensor(stream[: n_blocks * block_size]).view(n_blocks, block_size)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    per_epoch = -(-n_blocks // batch_size)
    total = epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=learning_rate, total_steps=total, pct_start=0.1
    )
    model.train()
    losses: list[float] = []
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n_blocks, generator=gen)
        epoch_loss = 0.0
        for start in range(0, n_blocks, batch_size):
            batch = blocks[order[start : start + batch_size]]
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            epoch_loss += float(loss.detach())
            if progress is not None:
                progress(step, total, float(loss.detach()))
        losses.append(epoch_loss / per_epoch)
    model.save_pretrained(path)
    return losses
