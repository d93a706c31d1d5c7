"""Behaviour tokens in the tokenizer and the model: add, resize only when needed, initialise.

The tokens themselves are defined once, in :mod:`behaviorsft.taxonomy`
(``<reactive>``/``<proactive>``, or the finer 5-class inventory). Here they are
made real:

* **Added as special tokens**, so each is one id that BPE never splits and a
  rationale can never spell by accident. Decoders that keep special tokens
  (our ``hf`` backend, vLLM with ``skip_special_tokens=False``) show them.
* **Rows: resize only when needed, never shrink.** Qwen2.5 ships its embedding
  matrix with spare rows beyond the tokenizer (152064 rows for 151665 tokens
  in Qwen2.5-7B), so the new ids already have rows and nothing is resized.
  Llama-3.1 has none, so its matrices grow to exactly ``len(tokenizer)``:
  that is also what the evaluation harness does before loading an adapter, so
  a checkpoint loads into the same shapes it was trained with.
* **Rows are initialised deliberately**, never left as they come: a spare
  Qwen row was never trained, and a freshly resized row is random. Each new
  token's *input* row is the mean of the input rows of the word pieces of its
  name (``<proactive>`` starts as the average of the pieces of "proactive"),
  so the two tokens start apart and near words the model already knows. An
  untied *output* row is the mean of all real output rows: the new token's
  first logits are then the average logit, so training starts neither
  favouring nor suppressing it (Hewitt, "Initializing new word embeddings
  for pretrained language models", 2021). With tied weights the one shared
  row gets the name-based value.

Only tokens that this call adds to the tokenizer are initialised: a tokenizer
that already has them (a BehaviorSFT model trained further) keeps its rows.
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from typing import Any

from behaviorsft.taxonomy import TokenInventory, all_tokens


@dataclass(frozen=True)
class TokenSetup:
    """What adding the behaviour tokens did to a tokenizer and a model."""

    tokens: tuple[str, ...]
    token_ids: tuple[int, ...]
    added: tuple[str, ...]  # tokens new to the tokenizer (the others were already there)
    rows_before: int  # embedding rows before
    rows_after: int  # embedding rows after (== rows_before unless resized)
    resized: bool
    tied: bool
    initialised: tuple[str, ...]  # tokens whose rows were set here

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view for the resolved config and the log."""
        return asdict(self)


def token_description(token: str) -> str:
    """The words a token stands for: ``<primarily_proactive>`` -> ``primarily proactive``."""
    return token.strip("<>").replace("_", " ").strip()


def add_tokens_to_tokenizer(tokenizer: Any, inventory: TokenInventory = "binary") -> list[str]:
    """Add the inventory's behaviour tokens as special tokens; return those that were new."""
    tokens = list(all_tokens(inventory))
    vocab = tokenizer.get_vocab()
    new = [t for t in tokens if t not in vocab]
    if new:
        # Extend, never replace, the special tokens the model already declares
        # (chat-template markers, tool tokens). transformers 5 renamed the key.
        params = inspect.signature(tokenizer.add_special_tokens).parameters
        if "replace_extra_special_tokens" in params:
            tokenizer.add_special_tokens(
                {"extra_special_tokens": new}, replace_extra_special_tokens=False
            )
        else:  # transformers 4.x
            tokenizer.add_special_tokens(
                {"additional_special_tokens": new}, replace_additional_special_tokens=False
            )
    for t in tokens:
        ids = tokenizer.encode(t, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(
                f"behaviour token {t!r} encodes to {len(ids)} ids {ids}; it must be one id. "
                "Is the tokenizer a fast tokenizer that supports added special tokens?"
            )
    return new


def _real_rows(tokenizer_len_before: int, n_rows: int) -> int:
    # Rows beyond the original tokenizer (Qwen's spare rows) were never trained:
    # they must not pull the mean.
    return max(1, min(tokenizer_len_before, n_rows))


def init_token_rows(
    model: Any,
    tokenizer: Any,
    tokens: list[str],
    *,
    tokenizer_len_before: int,
) -> None:
    """Set the input (and untied output) rows of ``tokens`` as the module docstring explains."""
    import torch

    emb = model.get_input_embeddings().weight
    head_module = model.get_output_embeddings()
    head = head_module.weight if head_module is not None else None
    tied = head is not None and head is emb
    n_real = _real_rows(tokenizer_len_before, emb.shape[0])
    with torch.no_grad():
        emb_mean = emb[:n_real].float().mean(dim=0)
        head_mean = None
        if head is not None and not tied:
            head_mean = head[: _real_rows(tokenizer_len_before, head.shape[0])].float().mean(dim=0)
        for token in tokens:
            tid = tokenizer.convert_tokens_to_ids(token)
            # Leading space: the form the word takes inside a sentence in BPE vocabularies.
            pieces = [
                i
                for i in tokenizer.encode(" " + token_description(token), add_special_tokens=False)
                if i < n_real
            ]
            value = emb[pieces].float().mean(dim=0) if pieces else emb_mean
            emb[tid] = value.to(emb.dtype)
            if head is not None and head_mean is not None:
                head[tid] = head_mean.to(head.dtype)


def add_behavior_tokens(
    model: Any, tokenizer: Any, inventory: TokenInventory = "binary"
) -> TokenSetup:
    """Add the behaviour tokens to ``tokenizer`` and give them rows in ``model``.

    Resizes the embeddings (to exactly ``len(tokenizer)``) only when a new id
    has no row; never shrinks them. New rows are initialised as described in
    the module docstring.
    """
    len_before = len(tokenizer)
    rows_before = int(model.get_input_embeddings().weight.shape[0])
    new = add_tokens_to_tokenizer(tokenizer, inventory)
    tokens = tuple(all_tokens(inventory))
    ids = tuple(int(tokenizer.convert_tokens_to_ids(t)) for t in tokens)
    resized = False
    if max(ids) >= rows_before:
        # mean_resizing=False: we set the new rows ourselves right below, and
        # transformers' covariance-based init would be wasted work on a 7B matrix.
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        resized = True
    rows_after = int(model.get_input_embeddings().weight.shape[0])
    if new:
        init_token_rows(model, tokenizer, new, tokenizer_len_before=len_before)
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is model.get_input_embeddings().weight
    return TokenSetup(
        tokens=tokens,
        token_ids=ids,
        added=tuple(new),
        rows_before=rows_before,
        rows_after=rows_after,
        resized=resized,
        tied=tied,
        initialised=tuple(new),
    )
