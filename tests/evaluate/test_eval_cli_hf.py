"""The four commands end to end through the CLI, with a real tiny transformers model.

The model is random, so its answers are mostly unreadable or wrong; what is
checked is the plumbing: prompts reach the model through its chat template,
raw outputs, parsed letters, forced behaviour tokens and P(<proactive>) land in
the RUN folder, and ensemble / hard / report read those folders back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from behaviorsft.cli_eval import register
from behaviorsft.evaluate.runner import load_predictions
from tests.evaluate.conftest import bench_tasks, write_bench

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2-shaped model whose tokenizer knows the two behaviour tokens."""
    pytest.importorskip("behaviorsft.models.hf")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from behaviorsft.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen", hidden_size=32, num_layers=2)
    tok = AutoTokenizer.from_pretrained(path)
    tok.add_special_tokens({"additional_special_tokens": ["<reactive>", "<proactive>"]})
    model = AutoModelForCausalLM.from_pretrained(path)
    model.resize_token_embeddings(len(tok))
    tok.save_pretrained(path)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bench(tmp_path_factory.mktemp("bench"), bench_tasks(1, 3))


@pytest.fixture
def cli() -> tuple[CliRunner, typer.Typer]:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps typer in multi-command mode
        """Nothing."""

    return CliRunner(), app


def _invoke(cli: tuple[CliRunner, typer.Typer], *args: str) -> str:
    runner, app = cli
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_eval_ensemble_hard_report_with_a_tiny_model(
    cli: tuple[CliRunner, typer.Typer], tiny_model: Path, bench: Path, tmp_path: Path
) -> None:
    model = f"hf/{tiny_model}"
    common = [
        "--bench",
        bench,
        "--model",
        model,
        "--max-new-tokens",
        "6",
        "--no-progress",
        "--option",
        "dtype=float32",
        "--option",
        "device=cpu",
        "--bootstrap",
        "20",
    ]

    gen = tmp_path / "gen"
    out = _invoke(cli, "eval", *common, "--out", gen, "--seeds", "0", "1")
    assert "26 answers (0 reused, 26 new), 0 errors" in out
    preds = load_predictions(gen)
    assert len(preds) == 26 and all(p.error is None and p.raw_output is not None for p in preds)
    assert {p.seed for p in preds} == {0, 1}
    assert all(p.usage.completion_tokens for p in preds)
    metrics = json.loads((gen / "metrics.json").read_text())
    assert metrics["seeds"] == [0, 1] and metrics["counts"]["scored"] == 26
    # rerunning is free: everything is reused
    assert "26 answers (26 reused, 0 new)" in _invoke(
        cli, "eval", *common, "--out", gen, "--seeds", "0", "1"
    )

    choice = tmp_path / "choice"
    _invoke(cli, "eval", *common, "--out", choice, "--scoring", "choice")
    scored = load_predictions(choice)
    assert all(p.valid and p.parsed_answer in "ABCD" for p in scored)
    assert all(p.raw_output and p.raw_output.startswith("A=") for p in scored)

    forced = tmp_path / "forced"
    _invoke(
        cli,
        "eval",
        *common,
        "--out",
        forced,
        "--strategy",
        "behaviorsft",
        "--behavior",
        "proactive",
    )
    rows = load_predictions(forced)
    assert all(p.raw_output and p.raw_output.startswith("<proactive>") for p in rows)
    assert all(p.behavior_token == "<proactive>" for p in rows)
    # P(<proactive>) renormalised over the two tokens, from the unforced probe
    assert all(p.p_proactive is not None and 0.0 < p.p_proactive < 1.0 for p in rows)

    ens = tmp_path / "ens"
    assert "26 voted answers" in _invoke(
        cli, "ensemble", gen, choice, forced, "--out", ens, "--bootstrap", "0"
    )

    hard = tmp_path / "hard"
    out = _invoke(
        cli,
        "hard",
        "--bench",
        bench,
        "--runs",
        gen,
        choice,
        forced,
        "--out",
        hard,
        "--min-failing-models",
        "1",
        "--fail-rule",
        "any",
    )
    assert "hard tasks of 13" in out and "paper: 297 tasks" in out
    composition = json.loads((hard / "composition.json").read_text())
    assert composition["models"] == [model]  # three runs of one model count once
    assert composition["hard"]["n_tasks"] >= 1

    rep = tmp_path / "rep"
    out = _invoke(cli, "report", gen, choice, forced, ens, "--out", rep, "--hard", hard)
    for name in (
        "table2.md",
        "table2.csv",
        "table4.md",
        "safety.md",
        "report.md",
        "report.json",
        "figure5_radar.png",
    ):
        assert (rep / name).exists(), name


def test_cli_errors_name_the_problem(
    cli: tuple[CliRunner, typer.Typer], bench: Path, tmp_path: Path
) -> None:
    runner, app = cli
    result = runner.invoke(
        app,
        [
            "eval",
            "--bench",
            str(bench),
            "--model",
            "nope/x",
            "--out",
            str(tmp_path / "r"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 2
    assert "unknown provider 'nope'" in result.output
    result = runner.invoke(
        app,
        [
            "eval",
            "--bench",
            str(bench),
            "--model",
            "hf/x",
            "--out",
            str(tmp_path / "r"),
            "--seeds",
            "0",
            "x1",
        ],
    )
    assert result.exit_code == 2 and "'x1' is not a seed" in result.output
    result = runner.invoke(
        app,
        [
            "eval",
            "--bench",
            str(bench),
            "--model",
            "hf/x",
            "--out",
            str(tmp_path / "r"),
            "--strategy",
            "zero-shot",
        ],
    )
    assert result.exit_code == 2 and "choose one of zero_shot, few_shot" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "missing"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no metrics.json" in result.output


def test_choice_scoring_reads_the_same_p_proactive_as_generation(
    cli: tuple[CliRunner, typer.Typer], tiny_model: Path, bench: Path, tmp_path: Path
) -> None:
    """The choice path's probe (behaviour tokens scored as the next token) and the generation
    path's first-token probabilities are the same number, on a real hf/ model."""
    common = ["--bench", bench, "--model", f"hf/{tiny_model}", "--strategy", "behaviorsft"]
    common += ["--limit", "6", "--no-progress", "--bootstrap", "0", "--option", "dtype=float32"]
    gen, choice = tmp_path / "gen", tmp_path / "choice"
    _invoke(cli, "eval", *common, "--out", gen, "--max-new-tokens", "2")
    _invoke(cli, "eval", *common, "--out", choice, "--scoring", "choice")
    by_gen = {p.task_id: p.p_proactive for p in load_predictions(gen)}
    rows = load_predictions(choice)
    assert len(rows) == 6
    for p in rows:
        assert p.p_proactive == pytest.approx(by_gen[p.task_id], abs=1e-4)
        # auto: the answer under the likelier token, which starts raw_output
        assert p.behavior_token == ("<proactive>" if p.p_proactive >= 0.5 else "<reactive>")
        assert p.raw_output.startswith(p.behavior_token) and p.valid
