"""One config for a training run: our options, plus any TRL/transformers argument.

A YAML file (``configs/paper.yaml``) and ``--set key=value`` overrides on the
command line use one flat namespace. Each key is routed by name: a field of
:class:`TrainConfig` sets that field; any field of TRL's ``SFTConfig`` (which
includes every ``transformers.TrainingArguments`` field) goes to the trainer
unchanged; anything else is an error that names the closest valid key.

The effective batch is a first-class setting: ``per_device_train_batch_size
x gradient_accumulation_steps x world_size``. With ``effective_batch_size``
set, the accumulation steps are derived from the world size of the launch
(``WORLD_SIZE``, set by ``accelerate launch``/``torchrun``), so the same YAML
gives a batch of 64 on 1, 2, 4 or 8 GPUs.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

Precision = Literal["auto", "bf16", "fp16", "fp32"]

# The paper's recipe (Appendix G), shipped as package data; configs/paper.yaml links to it.
PAPER_CONFIG = Path(__file__).resolve().parent.parent / "data" / "configs" / "paper.yaml"

# Set by ``train`` itself; a user value would break checkpoint selection or the
# loss mask, so these keys are refused with the reason.
RESERVED_TRAINER_KEYS: dict[str, str] = {
    "metric_for_best_model": "checkpoints are selected by validation accuracy (select_best)",
    "greater_is_better": "checkpoints are selected by validation accuracy (select_best)",
    "load_best_model_at_end": "set select_best instead",
    "completion_only_loss": "the loss is always on the completion only",
    "assistant_only_loss": "the loss is always on the completion only",
    "bf16": "set precision instead",
    "fp16": "set precision instead",
}


@dataclass
class TrainConfig:
    """Everything ``behaviorsft train`` needs; ``trainer`` holds TRL ``SFTConfig`` arguments."""

    mode: Literal["behavior", "general"] = field(
        default="behavior",
        metadata={
            "help": "'behavior': BehaviorSFT, target starts with the behaviour token; "
            "'general': General SFT baseline, same target without the token (no tokens added)."
        },
    )
    model: str = field(default="", metadata={"help": "Base model: a Hugging Face id or a path."})
    bench: str = field(default="", metadata={"help": "BENCH folder (tasks.jsonl with splits)."})
    output_dir: str = field(default="", metadata={"help": "Where checkpoints and outputs go."})
    inventory: Literal["binary", "fine"] = field(
        default="binary",
        metadata={
            "help": "Token inventory: 'binary' (<reactive>/<proactive>) or 'fine' "
            "(one token per 5-class behaviour label)."
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank (paper: 8)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (paper: 32)."})
    lora_dropout: float = field(
        default=0.05, metadata={"help": "LoRA dropout (not stated in the paper)."}
    )
    lora_target_modules: str | list[str] = field(
        default="all-linear",
        metadata={"help": "LoRA targets; 'all-linear' is every Linear but the output head."},
    )
    train_head_rows: bool = field(
        default=True,
        metadata={
            "help": "Also train the new tokens' rows of an untied output head (tied models "
            "share one matrix and always train it)."
        },
    )
    effective_batch_size: int | None = field(
        default=64,
        metadata={
            "help": "per-device batch x grad-accum x world size; grad-accum is derived from it. "
            "null: take gradient_accumulation_steps as given."
        },
    )
    precision: Precision = field(
        default="auto",
        metadata={
            "help": "'auto': bf16 where the GPU supports it, else fp32; or bf16, fp16, fp32."
        },
    )
    attn_implementation: str | None = field(
        default=None,
        metadata={"help": "Attention kernel, e.g. 'sdpa' or 'flash_attention_2'; null: default."},
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow custom model code from the hub."}
    )
    bad_data: Literal["drop", "error"] = field(
        default="drop",
        metadata={
            "help": "Bad examples (see docs/training.md) are reported with counts before "
            "training; 'drop' leaves them out, 'error' stops."
        },
    )
    select_best: bool = field(
        default=True,
        metadata={
            "help": "Evaluate validation MCQ accuracy at every eval step and keep the best "
            "checkpoint as the final adapter."
        },
    )
    exclude_rejected: bool = field(
        default=False,
        metadata={
            "help": "Leave out the tasks a clinician study rejected (BENCH/study_verdicts.jsonl, "
            "written by `study apply`); the manifest records how many and the file's hash."
        },
    )
    val_limit: int | None = field(
        default=None,
        metadata={"help": "Score at most this many val tasks (first by id); null: all."},
    )
    val_max_new_tokens: int = field(
        default=512, metadata={"help": "Generation budget per val task (stops at </answer>)."}
    )
    val_batch_size: int = field(default=8, metadata={"help": "Val generation batch size."})
    trainer: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "Arguments for TRL SFTConfig / transformers TrainingArguments."},
    )

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (for YAML/JSON)."""
        return dataclasses.asdict(self)


OWN_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(TrainConfig)) - {
    "trainer"
}


def trainer_fields() -> frozenset[str]:
    """Every argument TRL's ``SFTConfig`` accepts."""
    from trl import SFTConfig

    return frozenset(f.name for f in dataclasses.fields(SFTConfig) if f.init)


def trainer_default(name: str) -> Any:
    """The default TRL gives an ``SFTConfig`` argument (e.g. ``max_length``)."""
    from trl import SFTConfig

    for f in dataclasses.fields(SFTConfig):
        if f.name == name:
            return f.default
    raise KeyError(name)


def config_help() -> dict[str, str]:
    """Help text of every :class:`TrainConfig` field, for the docs and ``--help``."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(TrainConfig)}


class ConfigError(ValueError):
    """A config key or value that cannot be used; the message names the fix."""


def _suggest(key: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


# PyYAML follows YAML 1.1, where "2e-4" (no dot) is a string, not a float; a
# learning rate written that way would reach TrainingArguments as text.
_FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _coerce(value: Any) -> Any:
    if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [_coerce(v) for v in value]
    return value


def apply_overrides(
    config: TrainConfig, values: dict[str, Any], *, where: str = "override"
) -> TrainConfig:
    """Route each ``key: value`` to our field or to the trainer arguments (see module doc)."""
    known_trainer = trainer_fields()
    for key, raw in values.items():
        value = _coerce(raw)
        if key == "trainer":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: 'trainer' must be a mapping of SFTConfig arguments")
            apply_overrides(config, value, where=f"{where}: trainer")
            continue
        if key in OWN_FIELDS:  # output_dir is ours: checked before the reserved trainer keys
            setattr(config, key, value)
        elif key in RESERVED_TRAINER_KEYS:
            raise ConfigError(f"{where}: {key!r} cannot be set here: {RESERVED_TRAINER_KEYS[key]}")
        elif key in known_trainer:
            config.trainer[key] = value
        else:
            raise ConfigError(
                f"{where}: unknown key {key!r}: not a behaviorsft option nor a TRL SFTConfig "
                f"argument.{_suggest(key, OWN_FIELDS | known_trainer)}"
            )
    return config


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of key: value")
    return data


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``["learning_rate=2e-4", "lora_r=16"]`` -> a dict, values read as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set learning_rate=2e-4")
        try:
            out[key.strip()] = _coerce(yaml.safe_load(raw))
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from None
    return out


def load_config(
    path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Defaults, then the YAML file, then the overrides (later wins).

    ``path="paper"`` names the paper's recipe shipped inside the package
    (:data:`PAPER_CONFIG`, the same file as the repository's configs/paper.yaml),
    so it works from a pip install too.
    """
    config = TrainConfig()
    if path is not None and str(path) == "paper" and not Path("paper").exists():
        path = PAPER_CONFIG
    if path is not None:
        apply_overrides(config, load_yaml(path), where=str(path))
    if overrides:
        apply_overrides(config, overrides)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    """Check values that would otherwise fail deep inside training."""
    if config.mode not in ("behavior", "general"):
        raise ConfigError(f"mode: {config.mode!r}; use 'behavior' or 'general'")
    if config.inventory not in ("binary", "fine"):
        raise ConfigError(f"inventory: {config.inventory!r}; use 'binary' or 'fine'")
    if config.precision not in ("auto", "bf16", "fp16", "fp32"):
        raise ConfigError(f"precision: {config.precision!r}; use auto, bf16, fp16 or fp32")
    if config.bad_data not in ("drop", "error"):
        raise ConfigError(f"bad_data: {config.bad_data!r}; use 'drop' or 'error'")
    for name in ("lora_r", "lora_alpha", "val_max_new_tokens", "val_batch_size"):
        if not isinstance(getattr(config, name), int) or getattr(config, name) < 1:
            raise ConfigError(f"{name}: must be a positive integer, got {getattr(config, name)!r}")
    if config.effective_batch_size is not None and config.effective_batch_size < 1:
        raise ConfigError("effective_batch_size: must be a positive integer or null")


def world_size() -> int:
    """Processes in this launch (``accelerate launch``/``torchrun`` set ``WORLD_SIZE``)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def derive_grad_accum(config: TrainConfig, n_processes: int) -> int:
    """Gradient-accumulation steps that make the effective batch ``effective_batch_size``.

    With ``effective_batch_size`` null, the trainer's own value is returned.
    Raises ConfigError when the numbers do not divide, or contradict an
    explicit ``gradient_accumulation_steps``.
    """
    per_device = int(config.trainer.get("per_device_train_batch_size", 8))
    explicit = config.trainer.get("gradient_accumulation_steps")
    if config.effective_batch_size is None:
        return int(explicit or 1)
    target = config.effective_batch_size
    per_step = per_device * n_processes
    if target % per_step:
        raise ConfigError(
            f"effective_batch_size {target} is not a multiple of per_device_train_batch_size "
            f"({per_device}) x world size ({n_processes}) = {per_step}: change "
            "per_device_train_batch_size or effective_batch_size"
        )
    derived = target // per_step
    if explicit is not None and int(explicit) != derived:
        raise ConfigError(
            f"gradient_accumulation_steps={explicit} gives an effective batch of "
            f"{per_device * int(explicit) * n_processes}, not effective_batch_size={target}: "
            "drop gradient_accumulation_steps (it is derived) or set effective_batch_size: null"
        )
    return derived


def resolve_precision(precision: Precision) -> Literal["bf16", "fp16", "fp32"]:
    """``auto`` -> bf16 on a CUDA device that supports it, else fp32."""
    if precision != "auto":
        return precision
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def dump_yaml(data: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``data`` as YAML (keys in insertion order)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return p
