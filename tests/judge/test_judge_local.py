"""A local judge (tiny random hf/ model) with hand-written evaluation steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from behaviorsft.judge.criteria import CRITERIA, PROMPT_VERSION
from behaviorsft.judge.geval import STEPS_FILE, JudgeConfig, judgements_path, load_judgements
from behaviorsft.judge.geval import run_judge as judge_runs
from behaviorsft.records import Criterion
from behaviorsft.tiny import build_tiny_model
from tests.judge.conftest import OUTPUTS, make_run


@pytest.mark.slow
def test_tiny_local_judge_uses_hand_written_steps(tmp_path: Path):
    model_dir = build_tiny_model(tmp_path / "tiny", hidden_size=32, num_layers=2)
    run = make_run(tmp_path, "run")
    out = tmp_path / "judged"
    out.mkdir()
    spec = CRITERIA[Criterion.CLARITY]
    steps = {
        "prompt_version": PROMPT_VERSION,
        "judge": f"hf/{model_dir}",
        "criteria": {
            "clarity": {
                "fingerprint": spec.fingerprint,
                "steps": ["Read the reply.", "Score how clear it is."],
            }
        },
    }
    (out / STEPS_FILE).write_text(json.dumps(steps))
    config = JudgeConfig(
        runs=[str(run)],
        out=str(out),
        judge=f"hf/{model_dir}",
        criteria=["clarity"],
        samples=2,
        max_new_tokens=4,
        n_bootstrap=10,
        model_options={"dtype": "float32", "device": "cpu"},
    )
    result = judge_runs(config, show_progress=False)
    # The hand-written steps were used as they are, not regenerated.
    assert json.loads((out / STEPS_FILE).read_text())["criteria"]["clarity"]["steps"] == [
        "Read the reply.",
        "Score how clear it is.",
    ]
    js = load_judgements(judgements_path(out, "run"))
    assert len(js) == len(OUTPUTS) == result.items
    # A random model puts almost no probability on "1".."5", so every item fell
    # back to sampling; each is then either scored from its samples or unscored
    # with the reason, never given a default.
    assert result.fallbacks == len(OUTPUTS)
    for j in js:
        if j.error is None:
            assert j.method == "sampling" and j.n_samples in (1, 2)
            assert j.score is not None and 0.0 <= j.score <= 1.0
        else:
            assert j.score is None and "no 1-5 score could be read" in j.error
