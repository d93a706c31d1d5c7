"""The recipe YAML, key routing, CLI overrides and the batch-64 derivation."""

from __future__ import annotations

import pytest

from behaviorsft.train.config import (
    ConfigError,
    TrainConfig,
    config_help,
    derive_grad_accum,
    load_config,
    parse_set,
)
from behaviorsft.train.trainer import TrainError, trainer_arguments
from tests.conftest import REPO_ROOT

PAPER = REPO_ROOT / "configs" / "paper.yaml"


def test_paper_yaml_is_the_papers_recipe():
    cfg = load_config(PAPER)
    t = cfg.trainer
    assert (cfg.lora_r, cfg.lora_alpha, cfg.lora_target_modules) == (8, 32, "all-linear")
    assert cfg.effective_batch_size == 64
    assert t["num_train_epochs"] == 1
    assert t["optim"] == "adamw_torch"
    assert (t["adam_beta1"], t["adam_beta2"], t["adam_epsilon"]) == (0.9, 0.95, 1e-8)
    assert t["learning_rate"] == 1e-4
    assert t["lr_scheduler_type"] == "cosine"
    assert t["warmup_steps"] == 0.05
    assert t["weight_decay"] == 0.01
    assert t["max_grad_norm"] == 1.0
    assert t["eval_steps"] == t["save_steps"] == 100
    assert cfg.select_best


def test_paper_yaml_builds_a_valid_sft_config(tmp_path):
    from trl import SFTConfig

    cfg = load_config(PAPER, {"output_dir": str(tmp_path)})
    args = SFTConfig(**trainer_arguments(cfg, "fp32", 4, has_val=True))
    assert args.gradient_accumulation_steps == 4  # 4 per GPU x 4 GPUs x 4 = 64
    assert args.metric_for_best_model == "val_accuracy"
    assert args.greater_is_better and args.load_best_model_at_end
    assert args.completion_only_loss
    assert args.adam_beta2 == 0.95
    assert args.get_warmup_steps(1000) == 50


@pytest.mark.parametrize(
    ("per_device", "world", "expected"),
    [(4, 1, 16), (4, 4, 4), (8, 4, 2), (1, 8, 8), (16, 4, 1)],
)
def test_grad_accum_derived_from_world_size(per_device, world, expected):
    cfg = TrainConfig(trainer={"per_device_train_batch_size": per_device})
    assert derive_grad_accum(cfg, world) == expected
    assert per_device * expected * world == 64


def test_grad_accum_errors_name_the_fix():
    cfg = TrainConfig(trainer={"per_device_train_batch_size": 3})
    with pytest.raises(ConfigError, match=r"not a multiple.*change per_device_train_batch_size"):
        derive_grad_accum(cfg, 4)
    cfg = TrainConfig(trainer={"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2})
    with pytest.raises(ConfigError, match="drop gradient_accumulation_steps"):
        derive_grad_accum(cfg, 4)
    cfg.effective_batch_size = None  # opt out: taken as given
    assert derive_grad_accum(cfg, 4) == 2


def test_keys_are_routed_by_name():
    cfg = load_config(None, {"lora_r": 16, "learning_rate": 2e-4, "trainer": {"seed": 7}})
    assert cfg.lora_r == 16
    assert cfg.trainer == {"learning_rate": 2e-4, "seed": 7}


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rat'.*'learning_rate'"):
        load_config(None, {"learning_rat": 1e-4})


def test_reserved_keys_are_refused_with_reason():
    with pytest.raises(ConfigError, match=r"metric_for_best_model.*validation accuracy"):
        load_config(None, {"metric_for_best_model": "loss"})
    with pytest.raises(ConfigError, match="set precision"):
        load_config(None, {"bf16": True})


def test_bad_values_are_named():
    with pytest.raises(ConfigError, match="mode"):
        load_config(None, {"mode": "both"})
    with pytest.raises(ConfigError, match="lora_r"):
        load_config(None, {"lora_r": 0})


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: the top level must be a mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_parse_set_reads_yaml_scalars():
    assert parse_set(
        ["learning_rate=2e-4", "select_best=false", "lora_target_modules=[q_proj]"]
    ) == {
        "learning_rate": 2e-4,
        "select_best": False,
        "lora_target_modules": ["q_proj"],
    }
    with pytest.raises(ConfigError, match="key=value"):
        parse_set(["learning_rate"])


def test_select_best_without_val_is_an_error():
    cfg = TrainConfig(output_dir="x")
    with pytest.raises(TrainError, match="no usable 'val' split"):
        trainer_arguments(cfg, "fp32", 1, has_val=False)
    cfg.select_best = False
    assert trainer_arguments(cfg, "fp32", 1, has_val=False)["eval_strategy"] == "no"


def test_every_field_has_help():
    assert all(config_help().values())
