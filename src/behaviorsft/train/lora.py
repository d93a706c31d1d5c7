"""LoRA on every linear layer, plus trainable rows for the behaviour tokens.

The paper's adapter: LoRA rank 8, alpha 32, on all linear layers. The new
tokens must also learn, in the input embedding (to be read) and in the output
head (to be emitted), but training both matrices whole (PEFT
``modules_to_save``) would put two vocabulary-sized matrices into every
checkpoint: about 2 GB for a Qwen2.5-7B shape in bf16. PEFT's
``trainable_token_indices`` trains only the listed rows and saves only them,
so an adapter stays at tens of MB (``benchmarks/bench_train.py`` measures it).

Tied embeddings (Qwen2.5-0.5B/1.5B/3B) have one matrix: listing the input
embedding is enough, and PEFT ties the head to the same rows. Untied models
(Qwen2.5-7B, Llama-3.1-8B) list both matrices.

The TRL 1.16 + PEFT 0.21 crash, and its fix
-------------------------------------------
TRL 1.16's ``SFTTrainer`` always patches the model with a fused LM head
(``trl.trainer.utils.add_fused_lm_head``) that computes the loss in chunks
from ``lm_head.weight`` and ``lm_head.bias`` instead of calling the head. When
trainable tokens wrap the head, ``lm_head`` is a PEFT ``TrainableTokensWrapper``:
its ``weight`` attribute is forwarded (to the merged weight, base rows with
the trained rows swapped in, so gradients reach the new rows), but ``bias`` is
not, and training dies with ``'TrainableTokensWrapper' object has no attribute
'bias'``. That is every tied model, and every untied one once the head is
listed. PEFT exposed ``bias`` the same way on its other wrappers after the
same kind of report (huggingface/peft#1530 for tuner layers, #2081 for
``ModulesToSaveWrapper``); the trainable-tokens wrapper never got it.

The fix here is local and exact: on the wrapped head *instance* we set
``bias = None``, which is what the head really computes, since
``TrainableTokensLayer`` calls ``F.linear(x, W)`` without a bias
(huggingface/peft#3649, fix pending in #3688). A head that does have a bias is
refused with an error rather than trained inconsistently (the fused loss
would add it, PEFT's own forward and generation would not). Nothing global is
patched, versions are not pinned, and TRL's memory-saving fused loss is kept.
Tests train a tied and an untied tiny model and check that the new rows move.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_TARGET_MODULES = "all-linear"  # PEFT: every Linear except the output head


def module_name(model: Any, module: Any) -> str:
    """The dotted name of ``module`` inside ``model``."""
    for name, m in model.named_modules():
        if m is module:
            return name
    raise ValueError(f"{type(module).__name__} is not a submodule of {type(model).__name__}")


def is_tied(model: Any) -> bool:
    """True when the output head shares its weight with the input embedding."""
    head = model.get_output_embeddings()
    # Identity, not data_ptr(): meta tensors (benchmarks) all have pointer 0.
    return head is not None and head.weight is model.get_input_embeddings().weight


def trainable_token_indices(
    model: Any, token_ids: list[int] | tuple[int, ...], *, train_head_rows: bool = True
) -> dict[str, list[int]]:
    """PEFT ``trainable_token_indices`` for the behaviour tokens of ``model``.

    Tied models list only the input embedding (PEFT ties the head to it);
    untied ones also list the output head unless ``train_head_rows`` is off.
    """
    ids = [int(i) for i in token_ids]
    out = {module_name(model, model.get_input_embeddings()): ids}
    head = model.get_output_embeddings()
    if train_head_rows and head is not None and not is_tied(model):
        out[module_name(model, head)] = list(ids)
    return out


def lora_config(
    model: Any,
    token_ids: list[int] | tuple[int, ...] = (),
    *,
    r: int = 8,
    alpha: int = 32,
    dropout: float = 0.05,
    target_modules: str | list[str] = DEFAULT_TARGET_MODULES,
    train_head_rows: bool = True,
) -> Any:
    """The paper's LoRA config, with the behaviour tokens' rows trainable when given."""
    from peft import LoraConfig

    tti = (
        trainable_token_indices(model, token_ids, train_head_rows=train_head_rows)
        if token_ids
        else None
    )
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        trainable_token_indices=tti,
        bias="none",
        task_type="CAUSAL_LM",
    )


def fix_trainable_tokens_head(peft_model: Any) -> bool:
    """Make a trainable-tokens output head readable by TRL's fused LM head (see module doc).

    Returns True when the head was wrapped and fixed, False when there was
    nothing to fix. Idempotent.
    """
    from peft.utils.other import TrainableTokensWrapper

    head = peft_model.get_output_embeddings()
    if not isinstance(head, TrainableTokensWrapper):
        return False
    base_bias = getattr(head.token_adapter.base_layer, "bias", None)
    if base_bias is not None:
        raise ValueError(
            "the output head has a bias, which PEFT's trainable tokens drop in their forward "
            "(huggingface/peft#3649) while TRL's fused loss would add it: train with "
            "train_head_rows=false, or use a PEFT release that includes huggingface/peft#3688"
        )
    # A plain instance attribute (not a Parameter): nothing is saved or trained,
    # and it disappears with the wrapper when the adapter is merged.
    wrapper: Any = head  # typed as a module by PEFT; the attribute is ours
    wrapper.bias = None
    return True


def never_save_embedding_matrices(peft_model: Any) -> None:
    """Keep whole embedding matrices out of every adapter this model saves.

    After a resize, PEFT's ``save_embedding_layers="auto"`` notices that the
    vocabulary differs from the base model's and saves both matrices whole
    (GBs). The trained rows are already saved as trainable tokens, and loaders
    resize the base the same way before loading, so the matrices are never
    needed. ``Trainer`` calls ``save_pretrained`` without that argument, hence
    the default is changed on this instance.
    """
    if getattr(peft_model, "_behaviorsft_no_embedding_save", False):
        return
    original = peft_model.save_pretrained

    def save_pretrained(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("save_embedding_layers", False)
        return original(*args, **kwargs)

    peft_model.save_pretrained = save_pretrained
    peft_model._behaviorsft_no_embedding_save = True


def zero3_launch(trainer_args: dict[str, Any] | None = None) -> bool:
    """True when this process runs under DeepSpeed ZeRO-3 (accelerate config or ``deepspeed=``)."""
    sources: list[Any] = []
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        if os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
            return True
        sources.append(os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE"))
    sources.append((trainer_args or {}).get("deepspeed"))
    for ds in sources:
        if isinstance(ds, (str, os.PathLike)) and Path(ds).is_file():
            ds = json.loads(Path(ds).read_text(encoding="utf-8"))
        if isinstance(ds, dict) and ds.get("zero_optimization", {}).get("stage") == 3:
            return True
    return False


def upcast_trainable_rows(peft_model: Any) -> int:
    """Keep trainable half-precision parameters in fp32; return how many were cast.

    The token rows are created in the model's dtype. In bf16 an update of
    lr 1e-4 is below the format's resolution for most entries (8 bits of
    mantissa), so the rows would barely move; PEFT keeps LoRA weights in fp32
    for the same reason. The forward casts them back to the matrix's dtype.
    """
    import torch

    n = 0
    for param in peft_model.parameters():
        if param.requires_grad and param.dtype in (torch.bfloat16, torch.float16):
            param.data = param.data.float()
            n += 1
    return n


def wrap_model(model: Any, config: Any, *, zero3: bool = False) -> Any:
    """``get_peft_model`` plus the fixes above; returns the ``PeftModel``.

    Trainable parameters are kept in fp32, except under DeepSpeed ZeRO-3,
    which needs one dtype for all parameters it gathers together (TRL makes
    the same exception, huggingface/trl#6089).
    """
    from peft import get_peft_model

    peft_model = get_peft_model(model, config, autocast_adapter_dtype=not zero3)
    fix_trainable_tokens_head(peft_model)
    never_save_embedding_matrices(peft_model)
    if not zero3:
        upcast_trainable_rows(peft_model)
    return peft_model
