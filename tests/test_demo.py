"""`behaviorsft demo` end to end at a reduced size: tiny model path and API model path."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from behaviorsft.cli import app
from behaviorsft.demo import DemoConfig, run_demo
from behaviorsft.evaluate.runner import load_predictions
from behaviorsft.taxonomy import TABLE_ORDER
from tests.http_stub import LoopbackServer, Reply, completion

# 15 cases: the fewest whose seed-0 splits (a hash of seed and case id) hold two test cases,
# enough for 26 test tasks (two per type).
SMALL = dict(
    base="tiny",
    cases=15,
    tiny_steps=2,
    pretrain_epochs=1,
    eval_limit=26,
    eval_max_new_tokens=16,
    threads=1,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200), buf


def test_tiny_demo_runs_end_to_end_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "demo_out"
    config = DemoConfig(out=str(out), **SMALL)
    console, buf = _console()
    result = run_demo(config, console=console)
    log = buf.getvalue()

    # Everything the issue asks to find in demo_out/.
    for name in ("behaviorsft", "general-sft"):
        adapter = out / "adapters" / name
        assert (adapter / "adapter_config.json").exists()
        assert (adapter / "manifest.json").exists()
    assert (out / "bench" / "audit.json").exists()
    assert sorted(p.name for p in (out / "report" / "dataset").glob("*.png"))
    radar = out / "report" / "figure5_radar.png"
    assert radar.stat().st_size > 0
    table = (out / "report" / "table2.md").read_text(encoding="utf-8")
    header = next(line for line in table.splitlines() if line.startswith("| Category"))
    # The paper's Table 2 order: baselines, base model zero-shot and explicit, then the SFTs.
    assert [c.strip() for c in header.strip("|").split("|")][2:] == [
        "random option",
        "longest option",
        "base zero-shot",
        "base explicit instr.",
        "General SFT",
        "BehaviorSFT",
    ]
    for ttype in TABLE_ORDER:
        assert ttype.value[:12] in table
    assert "Table 2" in log and "tiny base model is a random transformer" in log
    # Token forcing and the dial, from the BehaviorSFT adapter's forced runs.
    dial = out / "report" / "dial"
    assert (dial / "dial.png").stat().st_size > 0
    for name in ("dial", "forcing", "first_token"):
        assert (dial / f"{name}.md").exists()
    data = json.loads((dial / "dial.json").read_text(encoding="utf-8"))
    assert data["n"]["tasks"] == SMALL["eval_limit"]
    assert data["operating_point"]["source"] == "unforced run"
    assert "The proactivity dial" in log and "Token forcing" in log
    for token in ("reactive", "proactive"):
        forced = load_predictions(result.runs[f"behaviorsft-forced-{token}"])
        assert len(forced) == SMALL["eval_limit"]
        assert all(p.raw_output.startswith(f"<{token}>") for p in forced)

    # The baselines answered every selected test task; the models were really run.
    rnd = load_predictions(result.runs["baseline-random"])
    assert len(rnd) == SMALL["eval_limit"] and all(p.valid for p in rnd)
    sft = load_predictions(result.runs["behaviorsft"])
    assert len(sft) == SMALL["eval_limit"]
    assert all(p.raw_output is not None and p.model.startswith("hf/") for p in sft)
    (timings,) = json.loads((out / "demo_timings.json").read_text(encoding="utf-8"))
    assert set(timings["seconds"]) == {
        "cases",
        "build",
        "audit",
        "base",
        "train-behaviorsft",
        "train-general-sft",
        "eval-baselines",
        "eval-base",
        "eval-sft",
        "eval-forced",
        "report",
    }
    assert "Wall time per step" in log

    # A second run reuses everything: no retraining, no new predictions.
    stamps = {
        name: (out / "adapters" / name / "adapter_model.safetensors").stat().st_mtime_ns
        for name in ("behaviorsft", "general-sft")
    }
    console2, buf2 = _console()
    run_demo(config, console=console2)
    log2 = buf2.getvalue()
    assert log2.count("reusing the finished adapter") == 2
    assert "reusing" in log2 and "pretraining" not in log2
    for name, stamp in stamps.items():
        assert (out / "adapters" / name / "adapter_model.safetensors").stat().st_mtime_ns == stamp
    assert len(load_predictions(result.runs["behaviorsft"])) == SMALL["eval_limit"]
    runs = json.loads((out / "demo_timings.json").read_text(encoding="utf-8"))
    assert len(runs) == 2 and runs[0]["seconds"] == timings["seconds"]  # first run kept


class _ScriptedServer(LoopbackServer):
    """Chat completions on 127.0.0.1 that always answer B, counting requests."""

    def __init__(self) -> None:
        self.requests = 0
        super().__init__(self._respond)
        self.url = self.base_url
        self.start()

    def _respond(self, body: dict[str, Any], headers: Message) -> Reply:
        self.requests += 1
        return Reply(body=completion("<answer>B</answer>", model="scripted"))


def test_api_model_demo_evaluates_without_training(tmp_path: Path) -> None:
    server = _ScriptedServer()
    try:
        out = tmp_path / "demo_api"
        args = ["demo", "--out", str(out), "--cases", "12", "--eval-limit", "13"]
        args += ["--model", "openai-compatible/scripted", "--base-url", server.url]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert not (out / "adapters").exists()  # nothing to train for an API model
        for strategy in ("zero_shot", "explicit"):
            preds = load_predictions(out / "runs" / f"api-{strategy}")
            assert len(preds) == 13
            assert {p.parsed_answer for p in preds} == {"B"}
        assert server.requests == 26
        table = (out / "report" / "table2.md").read_text(encoding="utf-8")
        assert "openai-compatible/scripted zero_shot" in table
        # Resumed: nothing is asked twice.
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert server.requests == 26
        assert "differ from the last run" not in res.output
        # Changed options are named, and only the new work is done.
        args[args.index("--eval-limit") + 1] = "14"
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert "eval_limit differ from the last run" in " ".join(res.output.split())
        assert server.requests == 28
    finally:
        server.close()


def test_openai_compatible_demo_needs_base_url(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path / "d"), "--model", "openai-compatible/x"]
    )
    assert res.exit_code != 0
    assert "--base-url" in res.output


def test_demo_refuses_models_it_cannot_train_or_call(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["demo", "--out", str(tmp_path / "d"), "--model", "vllm/Qwen/Qwen2.5-7B-Instruct"]
    )
    assert res.exit_code != 0
    assert "trains an HF model" in res.output


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("extra", "says", "writes"),
    [
        (["--model", "./no-such-model"], "./no-such-model: no such folder", False),
        (["--model", "openai-compatible/x", "--option", "colour=red"], "colour", False),
        # Found at the evaluation step: the cases and bench made before it are kept.
        (["--model", "openai-compatible/x", "--eval-limit", "2"], "nothing answers at", True),
    ],
    ids=["model-path", "unknown-option", "nothing-listening"],
)
def test_demo_input_errors_exit_2_in_one_line(
    tmp_path: Path, extra: list[str], says: str, writes: bool
) -> None:
    out = tmp_path / "d"
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    args = ["demo", "--out", str(out), "--cases", "10", "--base-url", url, *extra]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert says in res.output and "Traceback" not in res.output
    assert sum(ln.lower().startswith("error:") for ln in res.output.splitlines()) == 1, res.output
    assert out.exists() == writes


def test_demo_refuses_an_unknown_base(tmp_path: Path) -> None:
    out = tmp_path / "d"
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--base", "gpt2"])
    assert res.exit_code == 2, res.output
    assert "--base" in res.output and "smollm2, tiny" in res.output
    assert not out.exists()


def test_smollm2_demo_names_its_model_by_alias_so_a_moved_cache_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from behaviorsft.demo import _train_config
    from behaviorsft.models import resolve_model_name
    from behaviorsft.models.smollm2 import default_cache_dir

    monkeypatch.chdir(tmp_path)
    names = []
    for cache in ("cache-a", "cache-b"):
        monkeypatch.setenv("BEHAVIORSFT_CACHE", str(tmp_path / cache))
        config = DemoConfig(out=str(tmp_path / "d"), base="smollm2")
        # The folder follows the cache; the name runs record does not.
        assert config.base_model == str(default_cache_dir().absolute())
        assert str(tmp_path / cache) in config.base_model
        train = _train_config(config, tmp_path / "d" / "bench", "behavior", tmp_path / "a")
        names.append((config.model_id, train.model))
    assert names == [("smollm2", "smollm2")] * 2
    # ... and the alias loads the folder of the current cache (once it is prepared).
    with pytest.raises(ValueError, match="not prepared"):
        resolve_model_name("smollm2")
    # A folder named smollm2 in the working directory would shadow the alias.
    (tmp_path / "smollm2").mkdir()
    assert DemoConfig(out=str(tmp_path / "d"), base="smollm2").model_id == str(
        default_cache_dir().absolute()
    )
    # Other bases keep their own names.
    assert DemoConfig(out=str(tmp_path / "d"), base="tiny").model_id == str(
        tmp_path / "d" / "tiny-base-model"
    )
