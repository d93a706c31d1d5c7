"""Merge a trained adapter into its base model, for servers that cannot load it as an adapter.

vLLM serves LoRA adapters, but not adapters that change the vocabulary, and
a BehaviorSFT adapter adds the behaviour tokens. ``merge`` loads the adapter
the same way the evaluation harness does (tokenizer from the adapter folder,
base embeddings resized up to the tokenizer when needed, then
``PeftModel.from_pretrained``), folds LoRA and the trained token rows into the
weights, and saves a plain model folder plus the tokenizer.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"


class MergeError(ValueError):
    """The folder is not a usable adapter; the message names the fix."""


def adapter_base(adapter_dir: str | os.PathLike[str]) -> str:
    """The base model an adapter was trained on (``base_model_name_or_path``)."""
    path = Path(adapter_dir) / ADAPTER_CONFIG
    if not path.exists():
        raise MergeError(
            f"{Path(adapter_dir)}: no {ADAPTER_CONFIG}; pass the output folder of "
            "'behaviorsft train' or one of its checkpoint-* folders"
        )
    base = json.loads(path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise MergeError(f"{path}: base_model_name_or_path is empty; pass --base")
    return str(base)


def load_adapter_model(
    adapter_dir: str | os.PathLike[str],
    *,
    base: str | None = None,
    dtype: Any = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """(PeftModel, tokenizer), loaded like the harness's ``hf/BASE:ADAPTER``."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from behaviorsft.models import check_model_folder, load_error_line

    adapter = Path(adapter_dir)
    base_id = base or adapter_base(adapter)
    try:
        base_id = check_model_folder(base_id, "base model")
    except ValueError as exc:
        raise MergeError(f"{exc} (pass --base)") from None
    has_tokenizer = any((adapter / f).exists() for f in ("tokenizer.json", "tokenizer_config.json"))
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            adapter if has_tokenizer else base_id, trust_remote_code=trust_remote_code
        )
        model: Any = AutoModelForCausalLM.from_pretrained(base_id, **kwargs)
    except OSError as exc:  # no such hub id, no network, not a model folder
        why = load_error_line(exc)
        raise MergeError(f"base model {base_id}: cannot be loaded ({why})") from None
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:  # up, never down (Qwen keeps spare rows)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return PeftModel.from_pretrained(model, adapter), tokenizer


def merge_adapter(
    adapter_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    base: str | None = None,
    dtype: str = "auto",
    trust_remote_code: bool = False,
) -> Path:
    """Merge ``adapter_dir`` into its base and save model + tokenizer to ``out_dir``.

    ``dtype``: ``auto`` keeps the base's own dtype (``torch_dtype`` in its
    config), or ``bfloat16``/``float16``/``float32``.
    """
    import torch

    torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype, None)
    if torch_dtype is None:
        raise MergeError(f"--dtype {dtype!r}: use auto, bfloat16, float16 or float32")
    model, tokenizer = load_adapter_model(
        adapter_dir, base=base, dtype=torch_dtype, trust_remote_code=trust_remote_code
    )
    merged = model.merge_and_unload()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "merged_from.json").write_text(
        json.dumps(
            {
                "adapter": str(Path(adapter_dir).resolve()),
                "base": base or adapter_base(adapter_dir),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return out
