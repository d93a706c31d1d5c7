"""``train(config)``: BehaviorSFT or General SFT of any causal LM, with TRL + PEFT.

The steps, in order (each one a function of its own module):

1. load the tokenizer and the base model (bf16 where supported);
2. behaviour mode only: add the behaviour tokens, resizing only if needed
   (:mod:`.tokens`);
3. build the SFT examples of the train and val splits and report bad data
   before anything is trained (:mod:`.data`);
4. wrap the model with LoRA on all linear layers plus trainable token rows,
   with the fix for TRL's fused LM head (:mod:`.lora`);
5. train with TRL's ``SFTTrainer``, evaluating and saving every ``eval_steps``,
   selecting the checkpoint by validation MCQ accuracy (:mod:`.callbacks`);
6. save the best adapter and the tokenizer (with its new tokens) to ``OUT``,
   mark the best checkpoint, write the resolved config and a manifest.

Outputs in ``OUT`` are listed in ``docs/training.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from behaviorsft.bench import TASKS_FILE, load_bench
from behaviorsft.store import environment_versions, new_manifest, write_manifest
from behaviorsft.train.callbacks import TrainingLogCallback, ValAccuracyCallback
from behaviorsft.train.config import (
    ConfigError,
    TrainConfig,
    derive_grad_accum,
    dump_yaml,
    resolve_precision,
    trainer_default,
    world_size,
)
from behaviorsft.train.data import (
    DataReport,
    SFTExample,
    apply_policy,
    prepare_split,
    to_dataset,
    write_sft_data,
)
from behaviorsft.train.lora import lora_config, wrap_model, zero3_launch
from behaviorsft.train.tokens import TokenSetup, add_behavior_tokens

CONFIG_FILE = "train_config.yaml"
BEST_FILE = "best_checkpoint.json"
BEST_MARKER = "BEST"
LOG_FILE = "training_log.jsonl"


class TrainError(RuntimeError):
    """A training run that cannot start or continue; the message names the fix."""


@dataclass
class TrainResult:
    """What a finished run produced."""

    output_dir: Path
    best_checkpoint: Path | None
    best_metric: float | None
    global_step: int
    reports: list[DataReport]
    tokens: TokenSetup | None
    val_history: list[dict[str, float]] = field(default_factory=list)
    trainer: Any = field(default=None, repr=False)  # the SFTTrainer, model in memory


def _checkpoints(out: Path) -> list[Path]:
    found = [p for p in out.glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[11:]))


def _check_resume(config: TrainConfig, out: Path, resume: bool) -> None:
    ckpts = _checkpoints(out)
    if resume and not ckpts:
        raise TrainError(
            f"--resume: {out} has no checkpoint-* folder to resume from; drop --resume"
        )
    if not resume and ckpts:
        raise TrainError(
            f"{out} already holds {len(ckpts)} checkpoint(s): pass --resume to continue that run, "
            "or choose a new --out"
        )
    if resume and (out / CONFIG_FILE).exists():
        import yaml

        saved = yaml.safe_load((out / CONFIG_FILE).read_text(encoding="utf-8")) or {}
        before = saved.get("config", {})
        for key in ("mode", "model", "inventory", "lora_r", "lora_alpha"):
            if key in before and before[key] != getattr(config, key):
                raise TrainError(
                    f"--resume: {key} was {before[key]!r} in {out / CONFIG_FILE}, now "
                    f"{getattr(config, key)!r}; resume with the same settings or use a new --out"
                )


def _check_inputs(config: TrainConfig) -> None:
    """What can be checked before anything is loaded or written: the bench and a model path."""
    from behaviorsft.models import check_model_folder

    tasks = Path(config.bench) / TASKS_FILE
    if not tasks.is_file():
        raise FileNotFoundError(f"{config.bench}: not a BENCH folder (no {TASKS_FILE})")
    check_model_folder(config.model)


def _model_dtype(precision: str) -> Any:
    import torch

    # fp16 mixed precision keeps fp32 weights: a grad scaler cannot unscale fp16
    # trainable rows. bf16 needs no scaler, so the weights can live in bf16.
    return torch.bfloat16 if precision == "bf16" else torch.float32


def load_base(config: TrainConfig, precision: str) -> tuple[Any, Any]:
    """The tokenizer and the base model named by ``config.model``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from behaviorsft.models import load_error_line, resolve_model_name

    name = resolve_model_name(config.model)  # the smollm2 alias, ~
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=config.trust_remote_code)
    except OSError as exc:  # no such hub id, no network, not a model folder
        why = load_error_line(exc)
        raise TrainError(f"model {config.model}: cannot be loaded ({why})") from None
    kwargs: dict[str, Any] = {
        "dtype": _model_dtype(precision),
        "trust_remote_code": config.trust_remote_code,
    }
    if config.attn_implementation:
        kwargs["attn_implementation"] = config.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(name, **kwargs)
    return tokenizer, model


def trainer_arguments(
    config: TrainConfig, precision: str, n_processes: int, *, has_val: bool
) -> dict[str, Any]:
    """The ``SFTConfig`` keyword arguments of a run: the user's, plus what we decide."""
    args = dict(config.trainer)
    args["output_dir"] = config.output_dir
    args["gradient_accumulation_steps"] = derive_grad_accum(config, n_processes)
    args["bf16"] = precision == "bf16"
    args["fp16"] = precision == "fp16"
    args["completion_only_loss"] = True
    if args.get("padding_free") and not args.get("packing"):
        # TRL refuses padding-free with a max_length it cannot enforce; the
        # lengths were already checked (and bad examples reported) in data.py.
        args["max_length"] = None
    if config.select_best:
        if not has_val:
            raise TrainError(
                "select_best needs validation tasks, but the BENCH has no usable 'val' split: "
                "assign one, or set select_best: false"
            )
        args.setdefault("eval_strategy", "steps")
        args.setdefault("save_strategy", args["eval_strategy"])
        if args["eval_strategy"] == "no":
            raise TrainError("select_best needs evaluations: set eval_strategy to steps or epoch")
        if args["eval_strategy"] == "steps":
            args.setdefault("eval_steps", 100)
            args.setdefault("save_steps", args["eval_steps"])
            if args["save_steps"] != args["eval_steps"]:
                # Otherwise an evaluated step may have no checkpoint to select.
                raise TrainError(
                    f"select_best: save_steps ({args['save_steps']}) must equal eval_steps "
                    f"({args['eval_steps']}) so that every evaluated step has a checkpoint: "
                    "set both to the same value"
                )
        if args.get("save_strategy") != args["eval_strategy"]:
            raise TrainError(
                f"select_best: save_strategy ({args.get('save_strategy')}) must equal "
                f"eval_strategy ({args['eval_strategy']})"
            )
        args["metric_for_best_model"] = "val_accuracy"
        args["greater_is_better"] = True
        args["load_best_model_at_end"] = True
    elif not has_val:
        args["eval_strategy"] = "no"
    return args


def _write_resolved(
    out: Path,
    config: TrainConfig,
    sft_args: Any,
    tokens: TokenSetup | None,
    reports: Sequence[DataReport],
    precision: str,
    n_processes: int,
) -> None:
    per_device = sft_args.per_device_train_batch_size
    ga = sft_args.gradient_accumulation_steps
    resolved = {
        "config": config.to_dict(),
        "resolved": {
            "world_size": n_processes,
            "precision": precision,
            "per_device_train_batch_size": per_device,
            "gradient_accumulation_steps": ga,
            "effective_batch_size": per_device * ga * n_processes,
        },
        "tokens": tokens.to_dict() if tokens else None,
        "data": {r.split: {"kept": r.kept, "bad": r.counts()} for r in reports},
        "versions": environment_versions(),
    }
    dump_yaml(resolved, out / CONFIG_FILE)
    (out / "trainer_args.json").write_text(sft_args.to_json_string(), encoding="utf-8")


def mark_best(out: Path, trainer: Any, history: list[dict[str, float]]) -> Path | None:
    """Write ``best_checkpoint.json`` and a ``BEST`` file in the best checkpoint folder."""
    best = trainer.state.best_model_checkpoint
    info: dict[str, Any] = {
        "metric": "eval_val_accuracy",
        "best_checkpoint": Path(best).name if best else None,
        "best_step": trainer.state.best_global_step,
        "best_value": trainer.state.best_metric,
        "history": history,
        "note": "OUT itself holds the adapter of the best checkpoint (load_best_model_at_end)",
    }
    (out / BEST_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if not best:
        return None
    path = Path(best)
    if path.is_dir():
        (path / BEST_MARKER).write_text(
            json.dumps({"eval_val_accuracy": trainer.state.best_metric}) + "\n", encoding="utf-8"
        )
    return path


def _val_history(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [h for h in log_history if "eval_val_accuracy" in h]


def build_data(
    config: TrainConfig, tokenizer: Any, *, log: Callable[[str], None] = print
) -> tuple[list[SFTExample], list[SFTExample], list[DataReport]]:
    """Train and val examples of ``config.bench``, reported and filtered by the policy."""
    bench = load_bench(config.bench)
    max_length = config.trainer.get("max_length", trainer_default("max_length"))
    train_ex, train_rep = prepare_split(
        bench,
        "train",
        mode=config.mode,
        inventory=config.inventory,
        tokenizer=tokenizer,
        max_length=max_length,
    )
    val_ex, val_rep = prepare_split(
        bench,
        "val",
        mode=config.mode,
        inventory=config.inventory,
        tokenizer=tokenizer,
        max_length=max_length,
    )
    reports = [train_rep, val_rep]
    for r in reports:
        log(r.summary())
    apply_policy(reports, config.bad_data)
    if not train_ex:
        raise TrainError(
            f"{config.bench}: no usable training examples (split 'train'): "
            "assign splits to the tasks, or see the report above"
        )
    if config.val_limit is not None:
        val_ex = val_ex[: config.val_limit]
    return train_ex, val_ex, reports


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    callbacks: Sequence[Any] = (),
) -> TrainResult:
    """Run one BehaviorSFT (``mode="behavior"``) or General SFT (``"general"``) training."""
    from trl import SFTConfig, SFTTrainer

    if not config.model or not config.bench or not config.output_dir:
        raise ConfigError("model, bench and output_dir must all be set")
    out = Path(config.output_dir)
    _check_inputs(config)
    _check_resume(config, out, resume)
    precision = resolve_precision(config.precision)
    n_processes = world_size()
    main_process = int(os.environ.get("RANK", "0")) == 0
    if not main_process:  # one copy of the reports, not one per rank

        def log(_: str) -> None:
            return None

    tokenizer, model = load_base(config, precision)
    out.mkdir(parents=True, exist_ok=True)  # once the model loads: a wrong name writes nothing
    tokens = (
        add_behavior_tokens(model, tokenizer, config.inventory)
        if config.mode == "behavior"
        else None
    )
    if tokens is not None:
        how = "resized" if tokens.resized else "no resize"
        log(
            f"tokens {', '.join(tokens.tokens)} -> ids {list(tokens.token_ids)}; embedding rows "
            f"{tokens.rows_before} -> {tokens.rows_after} ({how})"
        )

    train_ex, val_ex, reports = build_data(config, tokenizer, log=log)
    if main_process:
        write_sft_data(out, {}, reports)  # data_report.json only

    peft_cfg = lora_config(
        model,
        tokens.token_ids if tokens else (),
        r=config.lora_r,
        alpha=config.lora_alpha,
        dropout=config.lora_dropout,
        target_modules=config.lora_target_modules,
        train_head_rows=config.train_head_rows,
    )
    peft_model = wrap_model(model, peft_cfg, zero3=zero3_launch(config.trainer))

    sft_args = SFTConfig(**trainer_arguments(config, precision, n_processes, has_val=bool(val_ex)))
    val_cb = ValAccuracyCallback(
        val_ex,
        max_new_tokens=config.val_max_new_tokens,
        batch_size=config.val_batch_size,
        replies_dir=out / "val_replies",
    )
    all_callbacks: list[Any] = []
    if config.select_best:
        all_callbacks.append(val_cb)
    all_callbacks.append(TrainingLogCallback(out / LOG_FILE))  # after val_cb: logs its metrics
    all_callbacks.extend(callbacks)
    trainer = SFTTrainer(
        model=peft_model,
        processing_class=tokenizer,
        args=sft_args,
        train_dataset=to_dataset(train_ex),
        eval_dataset=to_dataset(val_ex) if val_ex and sft_args.eval_strategy != "no" else None,
        callbacks=all_callbacks,
    )
    val_cb.attach(trainer)
    if main_process:
        _write_resolved(out, config, sft_args, tokens, reports, precision, n_processes)

    trainer.train(resume_from_checkpoint=True if resume else None)

    # With select_best the model now holds the best checkpoint's adapter.
    trainer.save_model(str(out))
    history = _val_history(trainer.state.log_history)
    state_best = trainer.state.best_model_checkpoint if config.select_best else None
    best = Path(state_best) if state_best else None
    if trainer.is_world_process_zero():
        if config.select_best:
            mark_best(out, trainer, history)
        manifest = new_manifest(
            "train",
            config={**config.to_dict(), "resolved_precision": precision, "world_size": n_processes},
            seeds=[int(sft_args.seed)],
            counts={"train_examples": len(train_ex), "val_examples": len(val_ex)},
            notes=[
                f"mode {config.mode}; adapter in this folder"
                + (f", best checkpoint {best.name}" if best else "")
            ],
        )
        write_manifest(out, manifest)
    return TrainResult(
        output_dir=out,
        best_checkpoint=best,
        best_metric=trainer.state.best_metric,
        global_step=trainer.state.global_step,
        reports=reports,
        tokens=tokens,
        val_history=history,
        trainer=trainer,
    )
