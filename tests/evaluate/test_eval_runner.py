"""The evaluation runner end to end on a small bench, with a scripted model at the boundary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from behaviorsft.bench import load_bench
from behaviorsft.evaluate.metrics import score_run
from behaviorsft.evaluate.runner import EvalConfig, load_predictions, run_eval, select_tasks
from behaviorsft.models.base import GenerationRequest
from behaviorsft.store import read_manifest
from behaviorsft.taxonomy import TABLE_ORDER


def _gold(bench: Path) -> dict[str, str]:
    return {t.id: t.answer for t in load_bench(bench).tasks}


def _task_of(req: GenerationRequest) -> str:
    return req.key.split("@")[0]


def _config(bench: Path, out: Path, **kw: object) -> EvalConfig:
    base: dict[str, object] = {
        "bench": str(bench),
        "model": "scripted/m",
        "out": str(out),
        "n_bootstrap": 50,
    }
    base.update(kw)
    return EvalConfig(**base)  # type: ignore[arg-type]


def test_eval_writes_a_complete_run(small_bench: Path, tmp_path: Path, scripted) -> None:
    gold = _gold(small_bench)

    # Right on tasks whose index is even, wrong (but readable) on odd, unreadable on index 3.
    def reply(req: GenerationRequest) -> str:
        tid = _task_of(req)
        idx = int(tid.rsplit("-", 1)[1])
        if idx == 3:
            return "I cannot tell."
        letter = gold[tid] if idx % 2 == 0 else ("A" if gold[tid] != "A" else "B")
        return f"Reasoning. <answer>{letter}</answer>"

    model = scripted(reply)
    out = tmp_path / "run"
    cfg = _config(small_bench, out, model_options={"api_key": "sk-secret", "dtype": "float32"})
    result = run_eval(cfg, model=model, show_progress=False)

    assert result.requested == 13 * 4 and result.generated == 52 and result.errors == 0
    assert {f.name for f in out.iterdir()} >= {
        "config.json",
        "predictions.jsonl",
        "metrics.json",
        "manifest.json",
    }
    config = json.loads((out / "config.json").read_text())
    assert config["strategy"] == "zero_shot" and config["model_options"] == {"dtype": "float32"}
    assert "sk-secret" not in (out / "config.json").read_text()
    assert "sk-secret" not in (out / "manifest.json").read_text()

    preds = load_predictions(out)
    assert len(preds) == 52 and {p.id for p in preds} == {f"{t}@0" for t in gold if "test" in t}
    p = next(p for p in preds if p.task_id == "fact_retrieval-test-0")
    assert p.messages[-1].content.startswith("Clinical record:")
    assert p.raw_output and p.parsed_answer == gold[p.task_id] and p.correct
    assert p.usage.prompt_tokens == 10 and p.latency_s == 0.01
    bad = next(p for p in preds if p.task_id.endswith("-3"))
    assert not bad.valid and bad.parsed_answer is None and bad.correct is False

    metrics = json.loads((out / "metrics.json").read_text())
    tasks = {t.id: t for t in load_bench(small_bench).split("test")}
    expected = score_run(tasks, preds, strategy="zero_shot", n_bootstrap=50)
    assert metrics["mean"] == expected["mean"]
    # per type: 2 right, 1 wrong, 1 unreadable -> accuracy 0.5, invalid 0.25
    assert metrics["mean"]["overall"]["accuracy"] == pytest.approx(0.5)
    assert metrics["mean"]["overall"]["invalid_rate"] == pytest.approx(0.25)
    assert metrics["label"] == "scripted/m zero_shot"
    manifest = read_manifest(out)
    assert manifest is not None and manifest.stage == "eval"
    assert manifest.files["predictions.jsonl"].count == 52


def test_failures_are_recorded_not_scored_and_retried_on_resume(
    small_bench: Path, tmp_path: Path, scripted
) -> None:
    fail = {"fact_retrieval-test-0@0": 5, "consistency_check-test-1@0": 1}
    model = scripted(lambda r: "<answer>A</answer>", fail=fail)
    out = tmp_path / "run"
    cfg = _config(small_bench, out, retries=1)
    first = run_eval(cfg, model=model, show_progress=False)
    # retries=1: two attempts; the second failure heals, the first does not
    assert first.errors == 1
    rows = load_predictions(out)
    errored = [p for p in rows if p.error]
    assert [p.id for p in errored] == ["fact_retrieval-test-0@0"]
    assert errored[0].parsed_answer is None and errored[0].correct is None
    assert first.metrics["counts"]["scored"] == 51 and first.metrics["counts"]["errors"] == 1
    assert first.metrics["mean"]["overall"]["n"] == 51  # the failed row is not a wrong answer

    model.requests.clear()
    model.fail["fact_retrieval-test-0@0"] = 0
    second = run_eval(cfg, model=model, show_progress=False)
    assert [r.key for r in model.requests] == ["fact_retrieval-test-0@0"]
    assert second.reused == 51 and second.generated == 1 and second.errors == 0
    rows = load_predictions(out)
    assert len(rows) == 52 and len({p.id for p in rows}) == 52
    assert all(p.error is None for p in rows)


def test_final_errors_are_not_retried(small_bench: Path, tmp_path: Path, scripted) -> None:
    key = "fact_retrieval-test-0@0"
    model = scripted(
        lambda r: "<answer>A</answer>", final={key}, fail={"ddx_reasoning-test-0@0": 1}
    )
    run = run_eval(
        _config(small_bench, tmp_path / "run", retries=3), model=model, show_progress=False
    )
    keys = [r.key for r in model.requests]
    assert keys.count(key) == 1  # refused by the server: asking again cannot help
    assert keys.count("ddx_reasoning-test-0@0") == 2  # transient: retried, then healed
    assert run.errors == 1
    (row,) = [p for p in load_predictions(tmp_path / "run") if p.error]
    assert row.id == key and "prompt too long" in row.error


def test_a_crash_keeps_finished_chunks_and_the_rerun_finishes(
    small_bench: Path, tmp_path: Path, scripted
) -> None:
    calls = {"n": 0}

    def reply(req: GenerationRequest) -> str:
        calls["n"] += 1
        if calls["n"] == 15:
            raise RuntimeError("CUDA out of memory")
        return "<answer>B</answer>"

    out = tmp_path / "run"
    cfg = _config(small_bench, out, chunk_size=10)
    with pytest.raises(RuntimeError, match="out of memory"):
        run_eval(cfg, model=scripted(reply), show_progress=False)
    assert len(load_predictions(out)) == 10  # the first chunk was saved

    model = scripted(lambda r: "<answer>B</answer>")
    result = run_eval(cfg, model=model, show_progress=False)
    assert len(model.requests) == 42 and result.reused == 10
    assert len(load_predictions(out)) == 52


def test_resume_with_other_options_is_refused(small_bench: Path, tmp_path: Path, scripted) -> None:
    out = tmp_path / "run"
    run_eval(_config(small_bench, out, limit=3), model=scripted(lambda r: "A"), show_progress=False)
    with pytest.raises(ValueError, match=r"strategy: 'zero_shot' in .*'cot' now"):
        run_eval(
            _config(small_bench, out, strategy="cot"),
            model=scripted(lambda r: "A"),
            show_progress=False,
        )
    # more tasks and seeds with the same options extend the run
    model = scripted(lambda r: "A")
    result = run_eval(
        _config(small_bench, out, limit=5, seeds=[0, 1]), model=model, show_progress=False
    )
    assert result.reused == 3 and len(model.requests) == 7
    assert result.metrics["seeds"] == [0, 1]


def test_a_run_resumes_under_an_alias_for_the_same_weights(
    small_bench: Path, tmp_path: Path, scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    import behaviorsft.models.smollm2 as smollm2
    from behaviorsft.evaluate.runner import loaded_model_name

    monkeypatch.setenv("BEHAVIORSFT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(smollm2, "is_prepared", lambda folder: True)
    folder = str(smollm2.default_cache_dir())
    assert loaded_model_name("hf/smollm2:runs/a") == f"hf/{folder}:runs/a"
    assert loaded_model_name("openai/smollm2") == "openai/smollm2"
    out = tmp_path / "run"
    run_eval(
        _config(small_bench, out, model=f"hf/{folder}", limit=3),
        model=scripted(lambda r: "A"),
        show_progress=False,
    )
    model = scripted(lambda r: "A")
    result = run_eval(
        _config(small_bench, out, model="hf/smollm2", limit=5), model=model, show_progress=False
    )
    assert result.reused == 3 and len(model.requests) == 2
    # Other weights are still refused.
    with pytest.raises(ValueError, match="model: "):
        run_eval(
            _config(small_bench, out, model=f"hf/{tmp_path / 'other'}", limit=5),
            model=scripted(lambda r: "A"),
            show_progress=False,
        )


def test_forced_behaviour_and_p_proactive(small_bench: Path, tmp_path: Path, scripted) -> None:
    model = scripted(lambda r: " The record states it. <answer>A</answer>", p_proactive=0.3)
    out = tmp_path / "forced"
    result = run_eval(
        _config(small_bench, out, strategy="behaviorsft", behavior="reactive", limit=4),
        model=model,
        show_progress=False,
    )
    main = [r for r in model.requests if not r.key.endswith(":p_proactive")]
    probes = [r for r in model.requests if r.key.endswith(":p_proactive")]
    assert len(main) == len(probes) == 4
    assert all(r.assistant_prefix == "<reactive>" and not r.track_tokens for r in main)
    assert all(
        r.assistant_prefix == ""
        and r.max_new_tokens == 1
        and r.track_tokens == ("<reactive>", "<proactive>")
        for r in probes
    )
    preds = load_predictions(out)
    assert all(p.behavior_token == "<reactive>" for p in preds)
    assert all(p.p_proactive == pytest.approx(0.3) for p in preds)
    assert result.metrics["mean"]["token"]["per_category"]["reactive"]["mean_p_proactive"] == (
        pytest.approx(0.3)
    )

    auto = scripted(lambda r: "<proactive> Flag it. <answer>A</answer>", p_proactive=0.9)
    run_eval(
        _config(small_bench, tmp_path / "auto", strategy="behaviorsft", limit=4),
        model=auto,
        show_progress=False,
    )
    assert all(r.track_tokens == ("<reactive>", "<proactive>") for r in auto.requests)
    assert all(
        p.p_proactive == pytest.approx(0.9) and p.behavior_token == "<proactive>"
        for p in load_predictions(tmp_path / "auto")
    )


def test_choice_scoring(small_bench: Path, tmp_path: Path, scripted) -> None:
    gold = _gold(small_bench)

    def choice(req):
        right = gold[req.key.split("@")[0]]
        return {k: (0.7 if k == right else 0.1) for k in req.letters}

    model = scripted(lambda r: "unused", choice=choice)
    out = tmp_path / "choice"
    result = run_eval(
        _config(small_bench, out, scoring="choice", limit=6), model=model, show_progress=False
    )
    assert not model.requests and len(model.choice_requests) == 6
    assert all(r.assistant_prefix == "<answer>" for r in model.choice_requests)
    p = load_predictions(out)[0]
    assert p.raw_output is not None and p.raw_output.count("=0.100") == 3
    assert result.metrics["mean"]["overall"]["accuracy"] == 1.0

    with pytest.raises(ValueError, match="cannot score choices; use --scoring generate"):
        run_eval(
            _config(small_bench, tmp_path / "x", scoring="choice", limit=1),
            model=scripted(lambda r: "A"),
            show_progress=False,
        )


def test_few_shot_uses_train_examples_of_the_same_type(
    small_bench: Path, tmp_path: Path, scripted
) -> None:
    model = scripted(lambda r: "<answer>A</answer>")
    run_eval(
        _config(small_bench, tmp_path / "fs", strategy="few_shot", limit=13),
        model=model,
        show_progress=False,
    )
    tasks = {t.id: t for t in load_bench(small_bench).tasks}
    for pred in load_predictions(tmp_path / "fs"):
        roles = [m.role for m in pred.messages]
        assert roles == ["system"] + ["user", "assistant"] * 3 + ["user"]
        task = tasks[pred.task_id]
        shown = [m.content for m in pred.messages[1:-1:2]]
        for content in shown:
            assert f"for {task.task_type.value} train " in content  # same type, train split
            assert f"{task.task_type.value} test" not in content
        same_type_train = [
            t for t in tasks.values() if t.task_type == task.task_type and t.split == "train"
        ]
        answers = {f"<answer>{t.answer}</answer>" for t in same_type_train}
        assert all(m.content in answers for m in pred.messages[2:-1:2])


def test_behaviour_classification_strategy_scores_labels(
    small_bench: Path, tmp_path: Path, scripted
) -> None:
    model = scripted(
        lambda r: "<behavior>highly_proactive</behavior> A is wrong. <answer>B</answer>"
    )
    result = run_eval(
        _config(small_bench, tmp_path / "bt", strategy="bt_oc_op"), model=model, show_progress=False
    )
    preds = load_predictions(tmp_path / "bt")
    assert all(
        p.behavior_label is not None and p.behavior_label.value == "highly_proactive" for p in preds
    )
    behavior = result.metrics["mean"]["behavior"]
    # gold: 16 reactive (0.1 -> highly_reactive), 8 balanced, 28 highly_proactive
    assert behavior["five"]["per_class"]["highly_proactive"] == pytest.approx(2 * 28 / (28 + 52))
    assert behavior["binary"]["per_class"]["non_proactive"] == 0.0


def test_limit_is_round_robin_over_types(small_bench: Path) -> None:
    tasks = load_bench(small_bench).split("test")
    picked = select_tasks(tasks, 13)
    assert [t.task_type for t in picked] == list(TABLE_ORDER)
    assert select_tasks(tasks, None) != tasks and len(select_tasks(tasks, None)) == len(tasks)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"strategy": "nope"}, "--strategy 'nope' is unknown"),
        ({"behavior": "proactive"}, "needs --strategy behaviorsft"),
        ({"seeds": [0, 0]}, "duplicates"),
        ({"split": "val"}, r"no tasks in split 'val' \(splits present: \['test', 'train'\]\)"),
    ],
)
def test_bad_options_name_the_fix(
    small_bench: Path, tmp_path: Path, scripted, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run_eval(
            _config(small_bench, tmp_path / "r", **kw),
            model=scripted(lambda r: "A"),
            show_progress=False,
        )


def test_progress_bar_is_clamped_to_each_chunk(tmp_path: Path) -> None:
    from behaviorsft.evaluate.runner import _ProgressBar

    config = _config(tmp_path, tmp_path / "r")
    with _ProgressBar(True, 10, config) as bar:
        task = bar._progress.tasks[0]
        bar.start_chunk(4)
        bar.report(3)
        bar.report(5)  # a retry reports more than the chunk holds
        assert task.completed == 4
        bar.chunk_done()
        bar.start_chunk(6)  # a backend that never reports: topped up at the end
        bar.chunk_done()
        assert task.completed == 10
