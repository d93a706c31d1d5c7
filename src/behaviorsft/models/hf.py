"""Local transformers backend: ``hf/<hub-id-or-path>[:<adapter-path>]``.

Loading follows what BehaviorSFT training produces: an adapter folder carries
its own tokenizer (with ``<reactive>``/``<proactive>`` added), so the tokenizer
is read from the adapter folder when it has one; the base model's embeddings
are then resized *up* to the tokenizer's length when needed (never down: a
model shipped with spare rows, like Qwen2.5, keeps them), and the PEFT adapter
is applied on top.

Two ways to answer a multiple-choice task:

* ``generate``: batched greedy or sampled decoding with left padding; the text
  keeps special tokens (except pad/eos) so behaviour tokens stay visible;
* ``score_choices``: one forward pass per task, the next-token logits at the
  last prompt position restricted to the option letters and renormalised with
  a log-softmax over them. This reads the model's preference among the letters
  without parsing free text, in a single step. Prompt prefixes that several
  tasks share (the record they ask about) run once and are reused from a
  key/value cache (``prefix_sharing``, on by default).

A request's prompt is the tokenizer's chat template with the generation prompt,
followed by ``assistant_prefix``. Without a chat template (base models) the
messages are joined as plain text (see :func:`render_chat`).
"""

from __future__ import annotations

import gc
import inspect
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
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
from behaviorsft.records import ChatMessage, Usage

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json", "tokenizer.model", "vocab.json")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def _import_torch_transformers() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:  # core dependencies, but a stripped install may lack them
        raise MissingExtraError(
            "transformers/torch", "pip install torch transformers  (or: pip install behaviorsft)"
        ) from e
    return torch, transformers


def has_tokenizer_files(folder: str | os.PathLike[str]) -> bool:
    """True if ``folder`` is a local directory holding a saved tokenizer."""
    path = Path(folder)
    return path.is_dir() and any((path / f).exists() for f in TOKENIZER_FILES)


def render_chat(tokenizer: Any, messages: Sequence[ChatMessage], assistant_prefix: str = "") -> str:
    """The prompt text: chat template with generation prompt, then ``assistant_prefix``.

    A tokenizer without a chat template (a base model) gets the messages'
    contents separated by blank lines, then a blank line before the prefix.
    """
    msgs = [{"role": m.role, "content": m.content} for m in messages]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return str(text) + assistant_prefix
    return "\n\n".join(m["content"] for m in msgs) + "\n\n" + assistant_prefix


def default_device(torch: Any) -> str:
    """cuda if available, else mps, else cpu."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(torch: Any, dtype: str, device: str) -> Any:
    """``auto``: bf16 on CUDA when supported else fp16; fp16 on MPS; fp32 on CPU."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.startswith("mps"):
        return torch.float16
    return torch.float32


_KV = list[tuple[Any, Any]]  # per layer: keys and values of one cached prefix


class _PrefixMismatch(RuntimeError):
    """Scores from a cached prefix differ from scores of the whole prompt."""


def _prefix_sharing_unsupported(config: Any) -> str | None:
    """Why a model's cache cannot continue a shared prefix exactly (None: it can)."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    kinds = set(getattr(text, "layer_types", None) or [])
    if kinds - {"full_attention"}:
        return f"layer types {sorted(kinds)} (only full attention continues a cache exactly)"
    if (
        not kinds
        and getattr(text, "sliding_window", None)
        and getattr(text, "use_sliding_window", True)
    ):
        return "sliding-window attention"
    return None


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class HFModel:
    """A transformers causal LM (optionally with a PEFT adapter) behind the Model protocol.

    Options: ``dtype`` (auto|float32|bfloat16|float16), ``device`` (auto, or a
    torch device string), ``batch_size`` (requests per forward pass),
    ``trust_remote_code``, ``attn_implementation`` (e.g. ``sdpa``),
    ``chat_template`` (a Jinja template that replaces the tokenizer's), and
    ``prefix_sharing`` (default on: choice scoring runs a prompt prefix shared
    by several tasks once; see :mod:`behaviorsft.models.prefix`).
    """

    supports_choice_scoring = True

    def __init__(
        self,
        model: str,
        *,
        adapter: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int = 8,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        chat_template: str | None = None,
        prefix_sharing: bool = True,
    ) -> None:
        torch, transformers = _import_torch_transformers()
        if batch_size < 1:
            raise ValueError(f"batch_size: {batch_size} given, need >= 1")
        self._torch = torch
        self.name = f"hf/{model}" + (f":{adapter}" if adapter else "")
        self.batch_size = batch_size
        self.device = default_device(torch) if device == "auto" else device
        self.dtype = resolve_dtype(torch, dtype, self.device)

        tok_source = adapter if adapter and has_tokenizer_files(adapter) else model
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            tok_source, trust_remote_code=trust_remote_code
        )
        if chat_template is not None:
            tokenizer.chat_template = chat_template
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token_id is None:
                raise ValueError(
                    f"{tok_source}: the tokenizer has neither a pad nor an eos token; "
                    "set pad_token in its tokenizer_config.json"
                )
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer

        # transformers renamed torch_dtype to dtype in 4.56.
        major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
        dtype_key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
        load_kwargs: dict[str, Any] = {
            dtype_key: self.dtype,
            "trust_remote_code": trust_remote_code,
        }
        if attn_implementation is not None:
            load_kwargs["attn_implementation"] = attn_implementation
        base = transformers.AutoModelForCausalLM.from_pretrained(model, **load_kwargs)
        n_rows = base.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > n_rows:
            # The adapter's tokenizer added tokens (e.g. <proactive>) beyond the
            # base matrix: grow it. Never shrink: spare rows are harmless and
            # the adapter may index them.
            log.info("resizing %s embeddings %d -> %d", model, n_rows, len(tokenizer))
            base.resize_token_embeddings(len(tokenizer))
        base.to(self.device)
        net = self._load_adapter(base, adapter) if adapter else base
        net.eval()
        self.model = net
        self._base = base
        accepts_keep = "logits_to_keep" in inspect.signature(base.forward).parameters
        self._keep_mode = "per_row" if accepts_keep else "all"
        self.max_length: int | None = getattr(base.config, "max_position_embeddings", None)
        self._stop_ids = self._eos_ids(base)
        self._drop_ids = self._stop_ids | {tokenizer.pad_token_id}
        self._letter_cache: dict[str, int] = {}
        self._single_cache: dict[str, int | None] = {}
        why_not = _prefix_sharing_unsupported(base.config)
        if prefix_sharing and why_not:
            log.info("%s: choice scoring without prefix sharing: %s", self.name, why_not)
        self.prefix_sharing = prefix_sharing and why_not is None
        self._prefix_checked = False
        self.last_prefix_stats: dict[str, float] | None = None

    @staticmethod
    def _load_adapter(base: Any, adapter: str) -> Any:
        try:
            from peft import PeftModel
        except ImportError as e:
            raise MissingExtraError("peft", "pip install peft") from e
        path = Path(adapter)
        if path.exists() and not (path / "adapter_config.json").exists():
            raise ValueError(
                f"{adapter}: no adapter_config.json; give the folder of a PEFT adapter "
                "(a checkpoint saved by `behaviorsft train`), or a merged model as hf/<path>"
            )
        return PeftModel.from_pretrained(base, adapter)

    def _eos_ids(self, base: Any) -> set[int]:
        ids: set[int] = set()
        for source in (base.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, (list, tuple)):
                ids.update(int(i) for i in source)
        return ids

    # ------------------------------------------------------------------ helpers

    def render(self, messages: Sequence[ChatMessage], assistant_prefix: str = "") -> str:
        """The exact prompt text this model sees for ``messages`` (see :func:`render_chat`)."""
        return render_chat(self.tokenizer, messages, assistant_prefix)

    def _encode(self, messages: Sequence[ChatMessage], assistant_prefix: str) -> list[int]:
        return self._encode_many([(messages, assistant_prefix)])[0]

    def _encode_many(self, items: Sequence[tuple[Sequence[ChatMessage], str]]) -> list[list[int]]:
        """Token ids of each (messages, prefix) prompt, tokenized in one batched call."""
        if not items:
            return []
        texts = [self.render(messages, prefix) for messages, prefix in items]
        # A chat template already writes any BOS token into the text; adding
        # special tokens again would double it.
        add_special = not getattr(self.tokenizer, "chat_template", None)
        return [
            list(ids) for ids in self.tokenizer(texts, add_special_tokens=add_special)["input_ids"]
        ]

    def _too_long(self, n: int) -> str | None:
        if self.max_length is not None and n > self.max_length:
            return (
                f"prompt has {n} tokens, more than the model's max_position_embeddings "
                f"({self.max_length})"
            )
        return None

    def _batch_tensors(self, seqs: list[list[int]]) -> tuple[Any, Any]:
        """Left-padded ids and attention mask, for generate()."""
        torch = self._torch
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _last_logits(self, seqs: list[list[int]], past: Any = None) -> Any:
        """Next-token logits after each sequence, from one batched forward pass.

        Sequences are padded on the *right* and no attention mask is passed: a
        causal model never looks ahead, so the pads cannot change the real
        tokens' states, positions stay 0..n-1 as in an unpadded pass, and the
        attention kernel keeps its fast causal path (a padding mask forces a
        dense one, about twice as slow). Only each row's last real position
        goes through the output head.

        ``past`` is a key/value cache of a prefix shared by every row (batch
        size ``len(seqs)``); ``seqs`` then hold only the tokens after it, and
        positions continue from the prefix's length.
        """
        torch = self._torch
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        ids = ids.to(self.device)
        last = torch.tensor([len(s) - 1 for s in seqs], device=self.device)
        rows = torch.arange(len(seqs), device=self.device)
        # Without a prefix nothing is cached: building a cache of the whole
        # batch's keys and values would only cost copies.
        cache: dict[str, Any] = {"use_cache": False}
        if past is not None:
            cache = {
                "past_key_values": past,
                "use_cache": True,
                "attention_mask": self._suffix_mask(past.get_seq_length(), width),
            }
        if self._keep_mode == "per_row":
            try:  # (batch, 1) positions: newer transformers keep one position per row
                logits = self.model(input_ids=ids, logits_to_keep=last[:, None], **cache).logits
                if logits.shape[:2] == (len(seqs), 1):
                    return logits[:, 0, :]
            except torch.cuda.OutOfMemoryError:
                raise
            except (TypeError, ValueError, IndexError, RuntimeError):
                # An older transformers does not understand per-row positions. With a
                # shared prefix, the caller falls back to whole prompts instead.
                if past is not None:
                    raise
            self._keep_mode = "shared"  # fall back for good, once
        if self._keep_mode == "shared":
            # A 1D tensor keeps the same positions for every row: keep the
            # distinct last positions and pick each row's own.
            keep, which = torch.unique(last, return_inverse=True)
            logits = self.model(input_ids=ids, logits_to_keep=keep, **cache).logits
            return logits[rows, which]
        return self.model(input_ids=ids, **cache).logits[rows, last]

    # ------------------------------------------------------------------ shared prefixes

    def _suffix_mask(self, prefix: int, width: int) -> Any:
        """Additive mask of ``width`` new tokens after ``prefix`` cached ones, one for all rows.

        Each new token sees the whole prefix and the new tokens up to itself.
        Built here as a (1, 1, width, prefix + width) float mask because the
        boolean mask transformers would build is converted to this on every
        layer by the CPU attention kernel, and costs as much as the attention.
        """
        torch = self._torch
        dtype = self.model.dtype if hasattr(self.model, "dtype") else self.dtype
        allowed = torch.ones((width, prefix + width), dtype=torch.bool, device=self.device)
        allowed = allowed.tril(diagonal=prefix)
        mask = torch.zeros((width, prefix + width), dtype=dtype, device=self.device)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[None, None]

    def _new_cache(self, kv: _KV | None, batch: int) -> Any:
        """A key/value cache holding ``kv`` (one prefix) repeated for ``batch`` rows."""
        from transformers import DynamicCache

        data = None
        if kv is not None:
            data = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv]
        try:
            return DynamicCache(ddp_cache_data=data, config=self._base.config)
        except TypeError:  # transformers < 4.56: no config argument
            if data is None:
                return DynamicCache()
            return DynamicCache.from_legacy_cache(tuple(data))  # type: ignore[attr-defined]

    @staticmethod
    def _cache_tensors(cache: Any) -> _KV:
        if hasattr(cache, "layers"):
            return [(layer.keys, layer.values) for layer in cache.layers]
        return list(zip(cache.key_cache, cache.value_cache, strict=True))  # transformers < 4.56

    def _extend(self, kv: _KV | None, segment: list[int]) -> _KV:
        """The cache of a prefix: ``kv`` (or nothing) followed by ``segment``."""
        torch = self._torch
        cache = self._new_cache(kv, 1)
        ids = torch.tensor([segment], dtype=torch.long, device=self.device)
        extra: dict[str, Any] = {} if self._keep_mode == "all" else {"logits_to_keep": 1}
        if kv is not None:
            extra["attention_mask"] = self._suffix_mask(kv[0][0].shape[-2], len(segment))
        self.model(input_ids=ids, past_key_values=cache, use_cache=True, **extra)
        return self._cache_tensors(cache)

    def _check_prefix_path(self, seq: list[int], cut: int) -> None:
        """Once per model: a prompt split at ``cut`` must score like the whole prompt.

        Guards against architectures whose cache does not continue a prefix
        exactly (remote code, sliding or recurrent layers the config does not
        declare). Raises ``_PrefixMismatch`` when the two disagree.
        """
        torch = self._torch
        whole = torch.log_softmax(self._last_logits([seq]).float(), dim=-1)
        kv = self._extend(None, seq[:cut])
        split = self._last_logits([seq[cut:]], past=self._new_cache(kv, 1)).float()
        split = torch.log_softmax(split, dim=-1)
        if self.dtype == torch.float32:  # the same arithmetic in another order
            gap = float((whole - split).abs().max())
            ok = gap <= 1e-3
        else:  # half precision rounds differently along the two paths: compare probabilities
            gap = float((whole.exp() - split.exp()).abs().max())
            ok = gap <= 2e-2
        if not ok:
            raise _PrefixMismatch(
                f"a prompt scored from a cached prefix differs from the whole prompt by {gap:.3g}"
            )
        self._prefix_checked = True

    def _score_shared(
        self,
        todo: list[int],
        encoded: list[list[int]],
        requests: Sequence[ChoiceRequest],
        results: list[ChoiceScores | None],
        progress: ProgressCallback | None,
    ) -> None:
        """Score ``todo`` along a prefix tree: every shared prefix runs once."""
        from behaviorsft.models.prefix import batches, plan_prefix_tree, tokens_saved

        seqs = [encoded[i] for i in todo]
        root, _, _ = plan_prefix_tree(seqs, batch_size=self.batch_size)
        lengths = [len(s) for s in seqs]
        self.last_prefix_stats = {
            "prompt_tokens": float(sum(lengths)),
            "tokens_saved": tokens_saved(root, seqs),
        }
        torch = self._torch
        if root.children and not self._prefix_checked:
            node = root.children[0]
            while not node.leaves:
                node = node.children[0]
            with torch.inference_mode():
                self._check_prefix_path(seqs[node.leaves[0]], node.end)

        def under(node: Any) -> int:
            return len(node.leaves) + sum(under(c) for c in node.children)

        def run(node: Any, kv: _KV | None, inherited: float) -> None:
            if node.end > node.start:
                t0 = time.perf_counter()
                with torch.inference_mode():
                    kv = self._extend(kv, seqs[node.item][node.start : node.end])
                inherited += (time.perf_counter() - t0) / under(node)
            for chunk in batches(node.leaves, lengths, self.batch_size):
                t0 = time.perf_counter()
                with torch.inference_mode():
                    if kv is None:
                        last = self._last_logits([seqs[i] for i in chunk])
                    else:
                        past = self._new_cache(kv, len(chunk))
                        last = self._last_logits([seqs[i][node.end :] for i in chunk], past=past)
                share = (time.perf_counter() - t0) / len(chunk) + inherited
                self._store([todo[i] for i in chunk], last.float(), requests, results, share)
                if progress is not None:
                    progress(len(chunk))
            for child in node.children:
                run(child, kv, inherited)

        run(root, None, 0.0)

    # ------------------------------------------------------------------ tokens

    def single_token_id(self, text: str) -> int | None:
        """The id of ``text`` if it is exactly one token (an added token or one BPE piece)."""
        if text not in self._single_cache:
            self._single_cache[text] = self._find_single_token(text)
        return self._single_cache[text]

    def _find_single_token(self, text: str) -> int | None:
        tok_id = self.tokenizer.convert_tokens_to_ids(text)
        # convert_tokens_to_ids finds added tokens by their surface form; a
        # plain vocab entry must also decode back to the same text.
        if (
            isinstance(tok_id, int)
            and tok_id >= 0
            and tok_id != self.tokenizer.unk_token_id
            and self.tokenizer.decode([tok_id]) == text
        ):
            return tok_id
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        return int(ids[0]) if len(ids) == 1 else None

    def letter_id(self, letter: str) -> int:
        """Token id used to score an option letter: ``"A"`` if one token, else ``" A"``."""
        if letter not in self._letter_cache:
            for variant in (letter, " " + letter):
                tok_id = self.single_token_id(variant)
                if tok_id is not None:
                    self._letter_cache[letter] = tok_id
                    break
            else:
                raise ValueError(
                    f"{self.name}: option letter {letter!r} is not a single token "
                    f"(neither {letter!r} nor {' ' + letter!r}), so choice scoring cannot "
                    "read it from one next-token distribution; use generation mode"
                )
        return self._letter_cache[letter]

    def _decode(self, ids: list[int]) -> tuple[str, int]:
        """Text of generated ids (special tokens kept, pad/eos dropped) and the token count."""
        end = len(ids)
        for i, tok in enumerate(ids):
            if tok in self._stop_ids:
                end = i + 1
                break
        kept = [t for t in ids[:end] if t not in self._drop_ids]
        text = self.tokenizer.decode(kept, skip_special_tokens=False)
        return text, end

    # ------------------------------------------------------------------ generation

    def generate(
        self, requests: Sequence[GenerationRequest], *, progress: ProgressCallback | None = None
    ) -> list[Generation]:
        """Generate in batches of similar length; one Generation per request, in order."""
        torch = self._torch
        results: list[Generation | None] = [None] * len(requests)
        encoded = self._encode_many([(r.messages, r.assistant_prefix) for r in requests])
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for i, req in enumerate(requests):
            ids = encoded[i]
            problem = self._too_long(len(ids))
            if problem:
                results[i] = Generation(text=None, error=problem)
                if progress is not None:
                    progress(1)
                continue
            # Only requests with the same decoding settings can share a generate() call.
            sampled = req.temperature > 0
            key = (
                req.max_new_tokens,
                sampled,
                req.temperature if sampled else None,
                req.top_p if sampled else None,
                req.seed if sampled else None,
                req.stop,
                bool(req.track_tokens),
            )
            groups[key].append(i)
        for members in groups.values():
            # Longest first, so an out-of-memory batch shows up at the start.
            members.sort(key=lambda i: len(encoded[i]), reverse=True)
            for chunk in _chunks(members, self.batch_size):
                t0 = time.perf_counter()
                with torch.inference_mode():
                    outs = self._generate_batch([requests[i] for i in chunk], chunk, encoded)
                share = (time.perf_counter() - t0) / len(chunk)
                for i, gen in zip(chunk, outs, strict=True):
                    gen.latency_s = share
                    results[i] = gen
                if progress is not None:
                    progress(len(chunk))
        return [
            r if r is not None else Generation(text=None, error="not generated") for r in results
        ]

    def _generation_config(self, req: GenerationRequest) -> Any:
        from transformers import GenerationConfig

        # Every sampling knob is set explicitly: unset fields would be filled
        # from the checkpoint's generation_config.json (e.g. Qwen's
        # repetition_penalty=1.05, top_k=20), and greedy would not be greedy.
        sampled = req.temperature > 0
        return GenerationConfig(
            max_new_tokens=req.max_new_tokens,
            do_sample=sampled,
            temperature=req.temperature if sampled else 1.0,
            top_p=req.top_p if sampled else 1.0,
            # 0 disables top-k when sampling; greedy must not set it at all.
            top_k=0 if sampled else None,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            num_beams=1,
            num_return_sequences=1,
            eos_token_id=sorted(self._stop_ids) or None,
            pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=list(req.stop) or None,
            return_dict_in_generate=True,
            output_logits=bool(req.track_tokens),
        )

    def _generate_batch(
        self,
        reqs: list[GenerationRequest],
        chunk: list[int],
        encoded: list[list[int]],
    ) -> list[Generation]:
        torch = self._torch
        first = reqs[0]
        ids, mask = self._batch_tensors([encoded[i] for i in chunk])
        if first.temperature > 0:
            torch.manual_seed(first.seed)
        kwargs: dict[str, Any] = {}
        if first.stop:
            kwargs["tokenizer"] = self.tokenizer  # needed by stop_strings
        out = self.model.generate(
            input_ids=ids,
            attention_mask=mask,
            generation_config=self._generation_config(first),
            **kwargs,
        )
        new_tokens = out.sequences[:, ids.shape[1] :].tolist()
        first_probs = None
        if first.track_tokens and out.logits:
            first_probs = torch.softmax(out.logits[0].float(), dim=-1)
        gens: list[Generation] = []
        for row, (req, i) in enumerate(zip(reqs, chunk, strict=True)):
            text, n_new = self._decode(new_tokens[row])
            if req.stop:
                cut = [text.find(s) for s in req.stop if s and s in text]
                if cut:  # the stop string itself is not part of the answer (as in the API)
                    text = text[: min(cut)]
            token_probs = None
            if first_probs is not None:
                token_probs = self._tracked(first_probs[row], req.track_tokens)
            gens.append(
                Generation(
                    text=req.assistant_prefix + text,
                    usage=Usage(prompt_tokens=len(encoded[i]), completion_tokens=n_new),
                    token_probs=token_probs,
                )
            )
        return gens

    def _tracked(self, probs: Any, tokens: Sequence[str]) -> dict[str, float] | None:
        # A tracked string that is not one token (e.g. <proactive> on a model
        # that was never given it) has no single next-token probability: omit it.
        out: dict[str, float] = {}
        for tok in tokens:
            tok_id = self.single_token_id(tok)
            if tok_id is not None and tok_id < probs.shape[-1]:
                out[tok] = float(probs[tok_id])
        return out or None

    # ------------------------------------------------------------------ choice scoring

    def score_choices(
        self, requests: Sequence[ChoiceRequest], *, progress: ProgressCallback | None = None
    ) -> list[ChoiceScores]:
        """Log-probabilities of the option letters as the next token.

        One forward pass per task, except that prompt prefixes several tasks share
        run once when ``prefix_sharing`` is on (see :mod:`behaviorsft.models.prefix`).
        """
        torch = self._torch
        results: list[ChoiceScores | None] = [None] * len(requests)
        for i, req in enumerate(requests):
            if not req.letters:
                raise ValueError(f"request {req.key or i}: no letters to score")
            for letter in req.letters:
                self.letter_id(letter)  # raises once, clearly, before any compute
        encoded = self._encode_many([(r.messages, r.assistant_prefix) for r in requests])
        todo: list[int] = []
        for i in range(len(requests)):
            problem = self._too_long(len(encoded[i]))
            if problem:
                results[i] = ChoiceScores(logprobs=None, error=problem)
                if progress is not None:
                    progress(1)
            else:
                todo.append(i)
        if self.prefix_sharing and len(todo) > 1:
            try:
                self._score_shared(todo, encoded, requests, results, progress)
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as e:  # any failure: score the rest plainly
                log.warning(
                    "%s: prefix sharing turned off, scoring whole prompts instead: %s: %s",
                    self.name,
                    type(e).__name__,
                    e,
                )
                self.prefix_sharing = False
            todo = [i for i in todo if results[i] is None]
        todo.sort(key=lambda i: len(encoded[i]), reverse=True)
        for chunk in _chunks(todo, self.batch_size):
            t0 = time.perf_counter()
            with torch.inference_mode():
                last = self._last_logits([encoded[i] for i in chunk]).float()
            share = (time.perf_counter() - t0) / len(chunk)
            self._store(chunk, last, requests, results, share)
            if progress is not None:
                progress(len(chunk))
        return [
            r if r is not None else ChoiceScores(logprobs=None, error="not scored") for r in results
        ]

    def _store(
        self,
        chunk: list[int],
        last: Any,
        requests: Sequence[ChoiceRequest],
        results: list[ChoiceScores | None],
        latency_s: float,
    ) -> None:
        """Letter log-probabilities of ``chunk`` from its rows of next-token logits."""
        torch = self._torch
        for row, i in enumerate(chunk):
            letters = requests[i].letters
            idx = torch.tensor([self.letter_id(x) for x in letters], device=last.device)
            logprobs = torch.log_softmax(last[row].index_select(0, idx), dim=-1).tolist()
            results[i] = ChoiceScores(
                logprobs=dict(zip(letters, logprobs, strict=True)), latency_s=latency_s
            )

    def close(self) -> None:
        """Drop the weights and free accelerator memory."""
        torch = self._torch
        self.model = None
        self._base = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
