"""The judge stage end to end against a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from behaviorsft.judge.geval import JudgeConfig, judgements_path, load_judgements, run_judge
from behaviorsft.records import Criterion
from tests.judge.conftest import (
    DIST_RAW,
    DIST_SCORE,
    FAIL_MARKER,
    OUTPUTS,
    SAMPLES_MEAN,
    JudgeServer,
    client_options,
    make_run,
)

N_TASKS = len(OUTPUTS)


def _config(server: JudgeServer, runs: list[Path], out: Path, **kw: Any) -> JudgeConfig:
    options: dict[str, Any] = {
        "runs": [str(r) for r in runs],
        "out": str(out),
        "judge": "openai-compatible/judge",
        "base_url": server.base_url,
        "criteria": ["utility", "behavioral_appropriateness"],
        "model_options": client_options(),
        "n_bootstrap": 50,
        "samples": 5,
    }
    options.update(kw)
    return JudgeConfig(**options)


def _judgements(out: Path, name: str = "run") -> dict[str, Any]:
    return {j.id: j for j in load_judgements(judgements_path(out, name))}


def test_logprob_weighted_score_equals_hand_computed(judge_server: JudgeServer, tmp_path: Path):
    run = make_run(tmp_path, "run")
    result = run_judge(_config(judge_server, [run], tmp_path / "judged"), show_progress=False)
    js = _judgements(tmp_path / "judged")
    assert len(js) == N_TASKS * 2 and result.unscored == 0
    for j in js.values():
        assert j.method == "logprobs"
        assert j.raw_score == pytest.approx(DIST_RAW)
        assert j.score == pytest.approx(DIST_SCORE)
        assert j.n_samples is None
        assert j.judge_model == "openai-compatible/judge"
        assert j.explanation == "The reply is accurate and complete."
    # One greedy request per item asked for top log-probabilities; nothing was sampled.
    form = judge_server.form_requests()
    assert len(form) == N_TASKS * 2
    assert all(b["logprobs"] is True and b["temperature"] == 0.0 for b in form)
    agg = json.loads((tmp_path / "judged" / "aggregates.json").read_text())
    assert agg["runs"][0]["criteria"]["utility"]["mean"] == pytest.approx(DIST_SCORE)


def test_sampling_fallback_averages_without_logprobs(judge_server: JudgeServer, tmp_path: Path):
    judge_server.logprobs = False
    run = make_run(tmp_path, "run")
    result = run_judge(
        _config(judge_server, [run], tmp_path / "judged", criteria=["clarity"]),
        show_progress=False,
    )
    js = _judgements(tmp_path / "judged")
    assert len(js) == N_TASKS and result.fallbacks == N_TASKS
    for j in js.values():
        assert j.method == "sampling"
        # The fifth sample has no readable score: 4 of 5 are averaged.
        assert j.n_samples == 4
        assert j.raw_score == pytest.approx(SAMPLES_MEAN)
        assert j.score == pytest.approx((SAMPLES_MEAN - 1) / 4)
        assert j.explanation == "Excellent."
    sampled = [b for b in judge_server.form_requests() if b["temperature"] > 0]
    assert len(sampled) == N_TASKS * 5
    # Distinct seeds, so the samples differ and each has its own cache key.
    assert sorted({b["seed"] for b in sampled}) == [0, 1, 2, 3, 4]


def test_method_sampling_never_asks_for_logprobs(judge_server: JudgeServer, tmp_path: Path):
    run = make_run(tmp_path, "run")
    cfg = _config(judge_server, [run], tmp_path / "judged", criteria=["clarity"], method="sampling")
    run_judge(cfg, show_progress=False)
    assert all(not b.get("logprobs") for b in judge_server.form_requests())
    assert {j.method for j in _judgements(tmp_path / "judged").values()} == {"sampling"}


def test_method_logprobs_without_logprobs_is_unscored(judge_server: JudgeServer, tmp_path: Path):
    judge_server.logprobs = False
    run = make_run(tmp_path, "run")
    cfg = _config(judge_server, [run], tmp_path / "judged", criteria=["clarity"], method="logprobs")
    result = run_judge(cfg, show_progress=False)
    js = _judgements(tmp_path / "judged")
    assert result.unscored == N_TASKS
    for j in js.values():
        assert j.score is None and j.method is None
        assert "no log-probabilities" in (j.error or "")


def test_failures_are_recorded_unscored_not_scored(judge_server: JudgeServer, tmp_path: Path):
    outputs = dict(OUTPUTS)
    bad = "example:cap-001:fact_retrieval"
    outputs[bad] = f"<reactive> {FAIL_MARKER} <answer>B</answer>"
    run = make_run(tmp_path, "run", outputs)
    out = tmp_path / "judged"
    result = run_judge(_config(judge_server, [run], out), show_progress=False)
    js = _judgements(out)
    failed = [j for j in js.values() if j.task_id == bad]
    assert len(failed) == 2 and result.unscored == 2
    for j in failed:
        assert j.score is None and j.raw_score is None and j.method is None
        assert "HTTP 500" in (j.error or "")
    # Unscored items are excluded from the means and counted.
    agg = json.loads((out / "aggregates.json").read_text())
    util = agg["runs"][0]["criteria"]["utility"]
    assert util["n"] == N_TASKS - 1 and util["unscored"] == 1
    assert util["mean"] == pytest.approx(DIST_SCORE)
    assert "unscored" in (out / "aggregates.md").read_text()

    # A rerun retries only the unscored items (which fail again) and keeps one row per id.
    before = len(judge_server.form_requests())
    again = run_judge(_config(judge_server, [run], out), show_progress=False)
    assert again.reused == 2 * (N_TASKS - 1) and again.judged == 2
    assert len(judge_server.form_requests()) - before == 2 * 2  # 1 retry each
    lines = judgements_path(out, "run").read_text().splitlines()
    assert len(lines) == len({json.loads(x)["id"] for x in lines}) == 2 * N_TASKS


def test_sampling_with_a_failed_sample_is_unscored(judge_server: JudgeServer, tmp_path: Path):
    judge_server.logprobs = False
    outputs = {"example:cap-001:fact_retrieval": f"<reactive> {FAIL_MARKER}"}
    run = make_run(tmp_path, "run", outputs)
    run_judge(
        _config(judge_server, [run], tmp_path / "judged", criteria=["clarity"]),
        show_progress=False,
    )
    [j] = _judgements(tmp_path / "judged").values()
    assert j.score is None and "judge call failed" in (j.error or "")


def test_rerun_is_served_from_cache(judge_server: JudgeServer, tmp_path: Path):
    run = make_run(tmp_path, "run")
    cache = tmp_path / "cache"
    out = tmp_path / "judged"
    first = run_judge(_config(judge_server, [run], out, cache_dir=str(cache)), show_progress=False)
    n_requests = len(judge_server.requests)
    before = _judgements(out)
    assert first.cached_calls == 0 and first.calls == n_requests
    second = run_judge(
        _config(judge_server, [run], out, cache_dir=str(cache)), fresh=True, show_progress=False
    )
    assert len(judge_server.requests) == n_requests  # the server saw nothing new
    assert second.calls == first.calls and second.cached_calls == second.calls
    after = _judgements(out)
    assert {k: v.score for k, v in after.items()} == {k: v.score for k, v in before.items()}


def test_steps_generated_once_per_criterion_and_reused(judge_server: JudgeServer, tmp_path: Path):
    out = tmp_path / "judged"
    run_a = make_run(tmp_path, "run")
    run_judge(_config(judge_server, [run_a], out), show_progress=False)
    steps_reqs = judge_server.steps_requests()
    assert len(steps_reqs) == 2  # utility, behavioural appropriateness: once each
    steps = json.loads((out / "steps.json").read_text())
    assert set(steps["criteria"]) == {"utility", "behavioral_appropriateness"}
    assert steps["criteria"]["utility"]["steps"][0] == "Read the clinical record and the question."

    # A second run judged into the same folder reuses the stored steps.
    run_b = make_run(tmp_path, "run-b", seeds=(1,))
    result = run_judge(_config(judge_server, [run_a, run_b], out), show_progress=False)
    assert len(judge_server.steps_requests()) == 2
    assert result.reused == 2 * N_TASKS and result.judged == 2 * N_TASKS
    # Every form prompt carries the stored steps verbatim.
    for body in judge_server.form_requests():
        assert "1. Read the clinical record and the question." in JudgeServer.prompt(body)

    # Adding a criterion generates only that criterion's steps.
    run_judge(
        _config(judge_server, [run_a], out, criteria=["utility", "safety"]), show_progress=False
    )
    assert len(judge_server.steps_requests()) == 3


def test_only_appropriateness_sees_expected_behaviour(judge_server: JudgeServer, tmp_path: Path):
    run = make_run(tmp_path, "run")
    run_judge(
        _config(
            judge_server,
            [run],
            tmp_path / "judged",
            criteria=["utility", "safety", "behavioral_appropriateness"],
        ),
        show_progress=False,
    )
    prompts = [JudgeServer.prompt(b) for b in judge_server.form_requests()]
    approp = [p for p in prompts if "Behavioral Appropriateness (1-5)" in p]
    others = [p for p in prompts if "Behavioral Appropriateness (1-5)" not in p]
    assert len(approp) == N_TASKS and len(others) == 2 * N_TASKS
    assert all("Expected behaviour for this task" in p for p in approp)
    assert not any("Expected behaviour" in p or "behaviour score" in p for p in others)
    reactive = next(p for p in approp if "oxygen saturation" in p)
    proactive = next(p for p in approp if "antibiotic order" in p)
    assert "Expected behaviour for this task: reactive" in reactive
    assert "Expected behaviour for this task: proactive" in proactive
    # The judge sees the reply without the behaviour token the model chose.
    assert not any("<proactive>" in p or "<reactive>" in p for p in prompts)
    # And the context the model saw (the conversation turns) is there.
    assert "SpO2 89% on room air" in reactive


def test_resume_after_interruption_skips_judged_items(judge_server: JudgeServer, tmp_path: Path):
    run = make_run(tmp_path, "run", seeds=(0, 1))
    out = tmp_path / "judged"
    cfg = _config(judge_server, [run], out)
    run_judge(cfg, show_progress=False)
    path = judgements_path(out, "run")
    lines = path.read_text().splitlines()
    assert len(lines) == 2 * N_TASKS * 2
    # Simulate a crash: three judgements on disk, then half a line.
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][:25])
    kept = {json.loads(x)["id"] for x in lines[:3]}
    before = len(judge_server.form_requests())
    result = run_judge(_config(judge_server, [run], out), show_progress=False)
    new_prompts = judge_server.form_requests()[before:]
    assert result.reused == 3 and result.judged == len(lines) - 3
    assert len(new_prompts) == len(lines) - 3
    js = _judgements(out)
    assert len(js) == len(lines) and kept <= set(js)


def test_predictions_without_reply_are_not_judged(judge_server: JudgeServer, tmp_path: Path):
    run = make_run(tmp_path, "run", failed=["example:cap-001:fact_retrieval"])
    result = run_judge(_config(judge_server, [run], tmp_path / "judged"), show_progress=False)
    assert result.items == 2 * (N_TASKS - 1)
    manifest = json.loads((tmp_path / "judged" / "manifest.json").read_text())
    assert manifest["counts"]["predictions_without_reply"] == 1
    assert manifest["files"]["runs/run/judgements.jsonl"]["count"] == 2 * (N_TASKS - 1)


def test_resume_with_another_judge_is_refused(judge_server: JudgeServer, tmp_path: Path):
    run = make_run(tmp_path, "run")
    out = tmp_path / "judged"
    run_judge(_config(judge_server, [run], out, criteria=["clarity"]), show_progress=False)
    with pytest.raises(ValueError, match=r"judge: 'openai-compatible/judge'.*--fresh"):
        run_judge(
            _config(judge_server, [run], out, criteria=["clarity"], judge="openai-compatible/x"),
            show_progress=False,
        )


def test_steps_failure_leaves_items_unscored(judge_server: JudgeServer, tmp_path: Path):
    def no_steps(body: dict[str, Any]) -> tuple[int, bytes]:
        if JudgeServer.prompt(body).rstrip().endswith("Evaluation Steps:"):
            payload = {"choices": [{"message": {"role": "assistant", "content": "Be careful."}}]}
            return 200, json.dumps(payload).encode()
        return JudgeServer.reply(judge_server, body)

    judge_server.reply = no_steps  # type: ignore[method-assign]
    run = make_run(tmp_path, "run")
    out = tmp_path / "judged"
    result = run_judge(_config(judge_server, [run], out, criteria=["clarity"]), show_progress=False)
    assert result.unscored == N_TASKS
    assert all(
        "no evaluation steps for clarity" in (j.error or "") for j in _judgements(out).values()
    )
    assert not judge_server.form_requests()
    assert "clarity" not in json.loads((out / "steps.json").read_text())["criteria"]


def test_choice_scored_run_is_refused(tmp_path: Path):
    run = make_run(tmp_path, "run")
    config = json.loads((run / "config.json").read_text())
    config["scoring"] = "choice"
    (run / "config.json").write_text(json.dumps(config))
    cfg = JudgeConfig(runs=[str(run)], out=str(tmp_path / "j"), criteria=[Criterion.UTILITY.value])
    with pytest.raises(ValueError, match="--scoring generate"):
        run_judge(cfg, show_progress=False)
