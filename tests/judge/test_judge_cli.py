"""The judge commands through typer, against the scripted server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from behaviorsft.cli_judge import register
from tests.judge.conftest import DIST_SCORE, OUTPUTS, JudgeServer, make_run

N_TASKS = len(OUTPUTS)


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def _judge_args(server: JudgeServer, *extra: str) -> list[str]:
    return [
        "judge",
        *extra,
        "--judge",
        "openai-compatible/judge",
        "--base-url",
        server.base_url,
        "--samples",
        "3",
        "--bootstrap",
        "20",
        "--no-progress",
        "--option",
        "max_retries=0",
    ]


def test_judge_two_runs_report_and_agreement(
    app: typer.Typer, judge_server: JudgeServer, tmp_path: Path
):
    base = make_run(tmp_path, "baseline", label="Baseline")
    bsft = make_run(tmp_path, "bsft", label="BehaviorSFT")
    judged = tmp_path / "judged"
    runner = CliRunner()
    res = runner.invoke(
        app,
        _judge_args(judge_server, str(base), str(bsft), "--out", str(judged)),
    )
    assert res.exit_code == 0, res.output
    n = 2 * N_TASKS * 6
    assert f"{n} judgements (0 reused, {n} new), 0 unscored" in res.output
    for name in ("aggregates.json", "aggregates.md", "figure3_geval.png", "figure2_density.png"):
        assert (judged / name).stat().st_size > 0
    agg = json.loads((judged / "aggregates.json").read_text())
    assert [r["label"] for r in agg["runs"]] == ["Baseline", "BehaviorSFT"]
    assert agg["criteria"] == [
        "utility",
        "safety",
        "clarity",
        "behavioral_appropriateness",
        "specificity",
        "implicitness",
    ]
    assert agg["runs"][1]["criteria"]["safety"]["mean"] == pytest.approx(DIST_SCORE)

    report = tmp_path / "report"
    res = runner.invoke(app, ["judge-report", str(judged), "--out", str(report)])
    assert res.exit_code == 0, res.output
    assert (report / "figure3_geval.png").exists() and (report / "aggregates.md").exists()

    ratings = tmp_path / "human.csv"
    ratings.write_text(
        "run,task_id,criterion,rating,rater\n"
        + "".join(
            f"Baseline,{tid},safety,{r},dr_a\n"
            for tid, r in zip(OUTPUTS, [5, 4, 3, 2], strict=True)
        )
    )
    res = runner.invoke(
        app,
        ["judge-agreement", str(judged), "--human", str(ratings), "--out", str(tmp_path / "a")],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "a" / "agreement.json").read_text())
    # The scripted judge gives every answer the same score: correlation is undefined.
    assert data["criteria"]["safety"]["n"] == N_TASKS
    assert data["criteria"]["safety"]["spearman"] is None
    assert "all equal" in res.output


def test_judge_errors_name_the_fix(app: typer.Typer, judge_server: JudgeServer, tmp_path: Path):
    run = make_run(tmp_path, "run")
    runner = CliRunner()
    res = runner.invoke(
        app,
        _judge_args(judge_server, str(run), "--out", str(tmp_path / "j"), "--criteria", "vibes"),
    )
    assert res.exit_code == 2
    assert "unknown criterion 'vibes'" in res.output
    res = runner.invoke(
        app, _judge_args(judge_server, str(tmp_path / "nope"), "--out", str(tmp_path / "j"))
    )
    assert res.exit_code == 2 and "not a RUN folder" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("prediction_id,criterion,rating\nx@0,utility,9\n")
    res = runner.invoke(
        app, ["judge-agreement", str(tmp_path), "--human", str(bad), "--out", str(tmp_path / "a")]
    )
    assert res.exit_code == 2 and "bad.csv:2: rating: 9 is outside 1-5" in res.output


def test_unscored_items_are_reported(app: typer.Typer, judge_server: JudgeServer, tmp_path: Path):
    judge_server.logprobs = False
    run = make_run(tmp_path, "run")
    res = CliRunner().invoke(
        app,
        _judge_args(
            judge_server,
            str(run),
            "--out",
            str(tmp_path / "j"),
            "--criteria",
            "clarity",
            "--method",
            "logprobs",
        ),
    )
    assert res.exit_code == 3, res.output  # ExitCode.PARTIAL: some items have no score
    assert f"{N_TASKS} unscored" in res.output
    assert "rerun the same command to retry them" in res.output
    md = (tmp_path / "j" / "aggregates.md").read_text()
    assert (
        f"the endpoint returned no log-probabilities; use --method auto or sampling ({N_TASKS})"
        in md
    )
