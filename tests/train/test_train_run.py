"""End to end: train() on tied and untied tiny models; best checkpoint, reload, merge, CLI."""

from __future__ import annotations

import json

import pytest
import torch
import typer
import yaml
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from behaviorsft.cli_train import register
from behaviorsft.train.callbacks import generate_replies
from behaviorsft.train.config import load_config
from behaviorsft.train.merge import load_adapter_model, merge_adapter
from behaviorsft.train.trainer import BEST_FILE, BEST_MARKER, CONFIG_FILE, LOG_FILE, train

pytestmark = pytest.mark.slow

QUICK = {
    "max_steps": 4,
    "per_device_train_batch_size": 4,
    "effective_batch_size": 8,
    "eval_steps": 2,
    "logging_steps": 1,
    "learning_rate": 1e-2,
    "max_length": 512,
    "gradient_checkpointing": False,
    "val_max_new_tokens": 8,
    "val_batch_size": 16,
    "report_to": "none",
}


@pytest.fixture(scope="module", params=["tied", "untied"])
def run(request, tiny_models, small_bench, tmp_path_factory):
    kind = request.param
    out = tmp_path_factory.mktemp(f"run-{kind}")
    cfg = load_config(
        None,
        {
            **QUICK,
            "model": str(tiny_models[kind]),
            "bench": str(small_bench),
            "output_dir": str(out),
        },
    )
    result = train(cfg, log=lambda s: None)
    return kind, result, tiny_models[kind]


def test_outputs_and_best_checkpoint(run):
    kind, result, _ = run
    out = result.output_dir
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json"):
        assert (out / name).exists(), name
    for name in (CONFIG_FILE, BEST_FILE, LOG_FILE, "data_report.json", "manifest.json"):
        assert (out / name).exists(), name
    assert result.global_step == 4
    assert (result.tokens is not None) and result.tokens.resized == (kind == "untied")

    best = json.loads((out / BEST_FILE).read_text())
    values = [h["eval_val_accuracy"] for h in best["history"]]
    assert [h["step"] for h in best["history"]] == [2.0, 4.0]
    assert best["best_value"] == max(values)
    first_best_step = 2 * (values.index(max(values)) + 1)  # ties keep the earlier checkpoint
    assert best["best_checkpoint"] == f"checkpoint-{first_best_step}"
    assert (out / best["best_checkpoint"] / BEST_MARKER).exists()
    other = {"checkpoint-2", "checkpoint-4"} - {best["best_checkpoint"]}
    assert not any((out / o / BEST_MARKER).exists() for o in other)

    # OUT holds the selected checkpoint's adapter, not the last one.
    with (
        safe_open(str(out / "adapter_model.safetensors"), "pt") as final,
        safe_open(str(out / best["best_checkpoint"] / "adapter_model.safetensors"), "pt") as chosen,
    ):
        keys = list(final.keys())
        assert set(keys) == set(chosen.keys())
        assert all(torch.equal(final.get_tensor(k), chosen.get_tensor(k)) for k in keys)

    logged = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert any("loss" in row for row in logged)
    assert sum("eval_val_accuracy" in row for row in logged) == 2

    resolved = yaml.safe_load((out / CONFIG_FILE).read_text())["resolved"]
    assert resolved["gradient_accumulation_steps"] == 2  # 8 / (4 per device x 1 process)
    assert resolved["effective_batch_size"] == 8


def test_every_checkpoint_carries_the_tokenizer(run):
    _, result, _ = run
    for ckpt in ("checkpoint-2", "checkpoint-4"):
        tok = AutoTokenizer.from_pretrained(result.output_dir / ckpt)
        assert tok.convert_tokens_to_ids(list(result.tokens.tokens)) == list(
            result.tokens.token_ids
        )


def _prompt(tok):
    msgs = [{"role": "user", "content": "Is the planned heparin order safe for this patient?"}]
    text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    return tok(text + "<proactive>", return_tensors="pt", add_special_tokens=False)


def test_adapter_reloads_with_identical_logits(run):
    _, result, base = run
    model = result.trainer.model.eval()
    reloaded, tok = load_adapter_model(result.output_dir, base=str(base))
    reloaded.eval()
    ids = _prompt(tok)
    with torch.no_grad():
        assert torch.equal(model(**ids).logits, reloaded(**ids).logits)


def test_merged_model_matches_adapter(run, tmp_path):
    kind, result, base = run
    merged_dir = merge_adapter(result.output_dir, tmp_path / "merged", dtype="float32")
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    tok = AutoTokenizer.from_pretrained(merged_dir)
    assert tok.convert_tokens_to_ids(list(result.tokens.tokens)) == list(result.tokens.token_ids)
    assert not (merged_dir / "adapter_config.json").exists()
    adapter, atok = load_adapter_model(result.output_dir, base=str(base))
    adapter.eval()
    ids = _prompt(tok)
    with torch.no_grad():
        a = adapter(**ids).logits
        m = merged(**ids).logits
    assert torch.allclose(a, m, atol=1e-4, rtol=1e-4)
    prompts = [[{"role": "user", "content": "What was the recorded lactate value?"}]]
    assert generate_replies(merged, tok, prompts, max_new_tokens=6) == generate_replies(
        adapter, atok, prompts, max_new_tokens=6
    )
    if kind == "tied":
        assert merged.get_output_embeddings().weight.data_ptr() == (
            merged.get_input_embeddings().weight.data_ptr()
        )


def test_cli_general_mode_and_merge(tiny_models, small_bench, tmp_path):
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    out = tmp_path / "general"
    args = ["train", "--mode", "general", "--model", str(tiny_models["untied"])]
    args += ["--bench", str(small_bench), "--out", str(out), "--set", "select_best=false"]
    for key, value in QUICK.items():
        args += ["--set", f"{key}={value}"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "done: 4 steps" in res.output
    tok = AutoTokenizer.from_pretrained(out)
    assert "<proactive>" not in tok.get_vocab()  # General SFT adds no tokens
    assert json.loads((out / "adapter_config.json").read_text())["trainable_token_indices"] is None

    res = runner.invoke(app, ["merge", str(out), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m" / "config.json").exists()


def test_cli_errors_name_the_problem(tiny_models, small_bench, tmp_path):
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    base = ["train", "--mode", "behavior", "--model", str(tiny_models["tied"])]
    base += ["--bench", str(small_bench), "--out", str(tmp_path / "x")]
    res = runner.invoke(app, [*base, "--set", "learning_rat=1e-4"])
    assert res.exit_code == 2
    assert "unknown key 'learning_rat'" in res.output and "'learning_rate'" in res.output
    res = runner.invoke(app, [*base, "--resume"])
    assert res.exit_code == 2 and "no checkpoint-*" in res.output
    res = runner.invoke(app, ["merge", str(tmp_path), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "no adapter_config.json" in res.output


def test_cli_sft_data(tiny_models, small_bench, tmp_path):
    app = typer.Typer()
    register(app)
    res = CliRunner().invoke(
        app,
        [
            "sft-data",
            "--bench",
            str(small_bench),
            "--out",
            str(tmp_path),
            "--model",
            str(tiny_models["tied"]),
            "--max-length",
            "512",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "data_report.json").read_text())
    assert report["train"]["lengths_checked"] and report["train"]["bad"] == 0
    assert (tmp_path / "train.jsonl").exists() and (tmp_path / "val.jsonl").exists()
