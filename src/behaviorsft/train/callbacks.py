"""Checkpoint selection by validation MCQ accuracy, and the training log.

The paper keeps the checkpoint with the best *validation accuracy*, not the
lowest loss: a model can lower its loss on rationales while its answer letter
gets worse. At every evaluation :class:`ValAccuracyCallback` generates a reply
for each validation task with the training prompt, reads the letter with the
evaluation harness's own parser (``prompts.parse_answer``) and the behaviour
token with ``prompts.parse_behavior_token``, and adds ``eval_val_accuracy``
(plus ``eval_val_token_accuracy`` and ``eval_val_invalid_rate``) to the
evaluation metrics *before* ``Trainer`` compares them, so
``metric_for_best_model="val_accuracy"`` selects the checkpoint.

Under several processes each rank generates its share of the tasks and the
counts are summed; ranks run the same number of batches (and ``generate``
gets ``synced_gpus``) so sharded DeepSpeed ZeRO-3 / FSDP forwards stay in step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from behaviorsft.prompts import parse_answer, parse_behavior_token
from behaviorsft.train.data import SFTExample

STOP_STRINGS = ("</answer>",)  # nothing after the answer tag is scored, so stop there


@dataclass
class ValResult:
    """Counts from one validation pass (summed over ranks)."""

    n: int = 0
    correct: int = 0
    invalid: int = 0
    token_total: int = 0  # tasks with an expected behaviour token
    token_correct: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # this rank's replies

    @property
    def accuracy(self) -> float:
        """Share of tasks whose parsed letter is the answer (invalid counts as wrong)."""
        return self.correct / self.n if self.n else 0.0

    @property
    def invalid_rate(self) -> float:
        """Share of replies with no readable letter."""
        return self.invalid / self.n if self.n else 0.0

    @property
    def token_accuracy(self) -> float | None:
        """Share of replies whose first behaviour token is the expected one (behaviour mode)."""
        return self.token_correct / self.token_total if self.token_total else None

    def metrics(self, prefix: str = "eval_val_") -> dict[str, float]:
        """Flat metrics for the trainer's log."""
        out = {
            f"{prefix}accuracy": self.accuracy,
            f"{prefix}invalid_rate": self.invalid_rate,
            f"{prefix}n": float(self.n),
        }
        if self.token_accuracy is not None:
            out[f"{prefix}token_accuracy"] = self.token_accuracy
        return out


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.append(configured)
    elif configured:
        ids.extend(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    return sorted(set(ids))


def render_prompts(
    tokenizer: Any, prompts: Sequence[list[dict[str, str]]], assistant_prefix: str = ""
) -> list[str]:
    """Chat-template text of each prompt, ending in the generation prompt (+ a forced prefix)."""
    return [
        tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
        + assistant_prefix
        for p in prompts
    ]


def generate_replies(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[list[dict[str, str]]],
    *,
    max_new_tokens: int = 512,
    batch_size: int = 8,
    assistant_prefix: str = "",
    stop_strings: Sequence[str] = STOP_STRINGS,
    synced_gpus: bool = False,
    min_batches: int = 0,
) -> list[str]:
    """Greedy replies to chat prompts, special tokens kept except padding and end-of-turn.

    ``assistant_prefix`` is appended after the generation prompt (to force a
    behaviour token); it is not repeated in the returned text. Prompts are
    sorted by length so batches pad little; the order is restored.
    ``min_batches`` runs idle batches so every rank calls ``generate`` the same
    number of times (needed with ``synced_gpus``).
    """
    import torch

    texts = render_prompts(tokenizer, prompts, assistant_prefix)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    replies: list[str] = [""] * len(texts)
    drop = set(_eos_ids(model, tokenizer))
    if tokenizer.pad_token_id is not None:
        drop.add(int(tokenizer.pad_token_id))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(drop)
    device = next(model.parameters()).device
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # generation continues from the right end
    was_training = model.training
    model.eval()
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    while len(batches) < min_batches:  # idle batches keep ranks in step
        batches.append(order[:1] if order else [])
    try:
        for b, idx in enumerate(batches):
            if not idx:
                continue
            enc = tokenizer(
                [texts[i] for i in idx],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,  # the chat template already placed them
            ).to(device)
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    # Plain greedy: a checkpoint's generation_config may carry
                    # sampling or a repetition penalty (Qwen2.5 ships 1.05).
                    do_sample=False,
                    num_beams=1,
                    repetition_penalty=1.0,
                    no_repeat_ngram_size=0,
                    eos_token_id=sorted(drop - {pad_id}) or None,
                    pad_token_id=pad_id,
                    stop_strings=list(stop_strings) or None,
                    tokenizer=tokenizer if stop_strings else None,
                    synced_gpus=synced_gpus,
                )
            if b >= math.ceil(len(order) / batch_size):
                continue  # an idle batch
            new = out[:, enc["input_ids"].shape[1] :]
            for row, i in zip(new.tolist(), idx, strict=True):
                kept = [t for t in row if t not in drop]
                replies[i] = tokenizer.decode(kept, skip_special_tokens=False)
    finally:
        tokenizer.padding_side = old_side
        if was_training:
            model.train()
    return replies


def score_replies(examples: Sequence[SFTExample], replies: Sequence[str]) -> ValResult:
    """Parse each reply with the harness's parsers and count (pure)."""
    res = ValResult()
    for ex, reply in zip(examples, replies, strict=True):
        letter = parse_answer(reply, ex.letters)
        token = parse_behavior_token(reply)
        res.n += 1
        res.correct += int(letter == ex.answer)
        res.invalid += int(letter is None)
        if ex.token is not None:
            res.token_total += 1
            res.token_correct += int(token == ex.token)
        res.rows.append(
            {"id": ex.id, "reply": reply, "letter": letter, "token": token, "answer": ex.answer}
        )
    return res


def evaluate_examples(
    model: Any,
    tokenizer: Any,
    examples: Sequence[SFTExample],
    *,
    max_new_tokens: int = 512,
    batch_size: int = 8,
    assistant_prefix: str = "",
) -> ValResult:
    """Generate and score on one process (tests, benchmarks, and the callback's shard)."""
    replies = generate_replies(
        model,
        tokenizer,
        [e.prompt for e in examples],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        assistant_prefix=assistant_prefix,
    )
    return score_replies(examples, replies)


class ValAccuracyCallback(TrainerCallback):
    """Adds validation MCQ accuracy to every evaluation (see module doc).

    Call :meth:`attach` with the trainer before training: the callback needs
    its accelerator to unwrap a DeepSpeed/FSDP model for generation.
    """

    def __init__(
        self,
        examples: Sequence[SFTExample],
        *,
        max_new_tokens: int = 512,
        batch_size: int = 8,
        replies_dir: str | Path | None = None,
    ) -> None:
        self.examples = list(examples)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.replies_dir = Path(replies_dir) if replies_dir else None
        self.trainer: Any = None
        self.history: list[dict[str, float]] = []

    def attach(self, trainer: Any) -> None:
        """Give the callback the trainer whose model it evaluates."""
        self.trainer = trainer

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Generate on the val split and add the accuracy to ``metrics`` in place."""
        if self.trainer is None or metrics is None or not self.examples:
            return
        import torch
        from trl.models.utils import unwrap_model_for_generation

        trainer = self.trainer
        acc = trainer.accelerator
        rank, world = acc.process_index, acc.num_processes
        shard = self.examples[rank::world]
        per_rank = math.ceil(len(self.examples) / world)
        # A rank with no task of its own still generates (one task, not scored)
        # so that it joins every synced forward pass.
        to_generate = shard or self.examples[:1]
        with unwrap_model_for_generation(trainer.model_wrapped, acc) as model:
            replies = generate_replies(
                model,
                trainer.processing_class,
                [e.prompt for e in to_generate],
                max_new_tokens=self.max_new_tokens,
                batch_size=self.batch_size,
                synced_gpus=world > 1,
                min_batches=math.ceil(per_rank / self.batch_size),
            )
        res = score_replies(shard, replies[: len(shard)])
        if world > 1:
            counts = torch.tensor(
                [res.n, res.correct, res.invalid, res.token_total, res.token_correct],
                device=acc.device,
            )
            counts = acc.reduce(counts, reduction="sum")
            res.n, res.correct, res.invalid, res.token_total, res.token_correct = (
                int(x) for x in counts.tolist()
            )
        new = res.metrics()
        metrics.update(new)  # before Trainer picks the best checkpoint from these
        entry = {**new, "step": float(state.global_step)}
        self.history.append(entry)
        # Trainer logged the loss metrics already; keep ours in the same history
        # (it is saved with every checkpoint, so it survives --resume).
        state.log_history.append(entry)
        if self.replies_dir is not None:
            self.replies_dir.mkdir(parents=True, exist_ok=True)
            path = self.replies_dir / f"val_replies_step{state.global_step}_rank{rank}.jsonl"
            with open(path, "w", encoding="utf-8") as fh:
                for row in res.rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")


class TrainingLogCallback(TrainerCallback):
    """Appends every log entry (loss, lr, eval metrics) to ``training_log.jsonl``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Write one JSON line per log call, on the main process only."""
        if not logs or not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        row = {"step": state.global_step, "epoch": state.epoch, **logs}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, default=float) + "\n")

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Log the validation accuracy, which is added after Trainer's own eval log."""
        if not metrics or not state.is_world_process_zero:
            return
        extra = {k: v for k, v in metrics.items() if k.startswith("eval_val_")}
        if extra:
            self.on_log(args, state, control, logs=extra)
