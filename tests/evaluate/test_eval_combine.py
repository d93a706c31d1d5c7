"""Ensembles, BehaviorBench-Hard and reports, over runs made by the real runner."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from behaviorsft.bench import load_bench
from behaviorsft.evaluate.ensemble import ensemble_predictions, majority_vote, run_ensemble
from behaviorsft.evaluate.hard import allocate, build_hard, failing_models, model_fails, select_hard
from behaviorsft.evaluate.report import write_report
from behaviorsft.evaluate.runner import EvalConfig, load_predictions, run_eval
from behaviorsft.records import Prediction, Task
from behaviorsft.taxonomy import TaskType
from tests.conftest import make_task_dict

# --------------------------------------------------------------------------
# Majority vote
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "winner", "tie"),
    [
        (["A", "A", "B"], "A", False),
        (["B", "A", "A"], "A", False),
        (["A", "B", "C"], "A", True),  # three-way tie: the first listed member
        (["C", "B", "B", "C"], "C", True),  # C and B tie: C comes first
        ([None, "B", "C"], "B", True),  # an unreadable answer abstains
        ([None, None, "D"], "D", False),
        ([None, None], None, False),
    ],
)
def test_majority_vote(answers: list[str | None], winner: str | None, tie: bool) -> None:
    vote = majority_vote(answers)
    assert (vote.answer, vote.tie) == (winner, tie)


def _p(task_id: str, answer: str | None, *, error: bool = False, seed: int = 0) -> Prediction:
    if error:
        return Prediction(task_id=task_id, model="m/x", strategy="s", seed=seed, error="timeout")
    return Prediction(
        task_id=task_id,
        model="m/x",
        strategy="s",
        seed=seed,
        raw_output="x",
        parsed_answer=answer,
        valid=answer is not None,
        correct=False,
    )


def test_ensemble_rows_for_errors_and_unreadable_answers() -> None:
    runs = [
        [_p("t1", "A"), _p("t2", None), _p("t3", None, error=True)],
        [_p("t1", "B"), _p("t2", None), _p("t3", None, error=True)],
        [_p("t1", "B"), _p("t2", None)],  # t3 missing from this member
    ]
    out = {p.task_id: p for p in ensemble_predictions(["m1", "m2", "m3"], runs)}
    assert out["t1"].parsed_answer == "B" and "votes: A=1 B=2" in (out["t1"].raw_output or "")
    assert out["t2"].error is None and not out["t2"].valid  # answered, all unreadable: invalid
    assert out["t3"].error == "no member produced an answer"  # not scored


# --------------------------------------------------------------------------
# Hard subset
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcomes", "rule", "fails"),
    [
        ([False, False, False], "all", True),
        ([False, True, False], "all", False),
        ([False, True, False], "majority", True),
        ([True, True, False], "majority", False),
        ([True, True, False], "any", True),
        ([], "any", False),
    ],
)
def test_model_fails(outcomes: list[bool], rule: str, fails: bool) -> None:
    assert model_fails(outcomes, rule) is fails


def test_failing_models_pools_runs_of_a_model_and_ignores_errors() -> None:
    task = Task.model_validate(make_task_dict(id="t1", answer="B"))
    tasks = {"t1": task}
    runs = [
        ("m1", [_p("t1", "A", seed=0), _p("t1", "C", seed=1)]),
        ("m2", [_p("t1", "A", seed=0), _p("t1", "B", seed=1)]),  # right once: not failing
        ("m3", [_p("t1", None, error=True)]),  # never answered: no evidence
        ("m1", [_p("t1", None, seed=2)]),  # another run of m1, unreadable: still failing
    ]
    assert failing_models(tasks, runs) == {"t1": {"m1"}}
    assert failing_models(tasks, runs, rule="any") == {"t1": {"m1", "m2"}}


def test_allocate_is_proportional_and_redistributes() -> None:
    fr, od, cc = TaskType.FACT_RETRIEVAL, TaskType.OMISSION_DETECTION, TaskType.CONSISTENCY_CHECK
    # 10 over weights 5:3:2 -> 5, 3, 2
    assert allocate({fr: 5, od: 3, cc: 2}, {fr: 9, od: 9, cc: 9}, 10) == {fr: 5, od: 3, cc: 2}
    # fr can only give 1: its share goes to the others in proportion 3:2 (9 -> 5.4, 3.6)
    assert allocate({fr: 5, od: 3, cc: 2}, {fr: 1, od: 9, cc: 9}, 10) == {fr: 1, od: 5, cc: 4}
    # asking for more than there is gives everything
    assert allocate({fr: 1}, {fr: 2, od: 3}, 10) == {fr: 2, od: 3}


def test_select_hard_with_size_keeps_the_mix() -> None:
    tasks = []
    for t, n in ((TaskType.FACT_RETRIEVAL, 6), (TaskType.OMISSION_DETECTION, 4)):
        for i in range(n):
            tasks.append(
                Task.model_validate(
                    make_task_dict(
                        id=f"{t.value}-{i}",
                        task_type=t.value,
                        behavior_score=0.1 if t is TaskType.FACT_RETRIEVAL else 0.9,
                        perturbation=None,
                    )
                )
            )
    failing = {t.id: {"m1", "m2"} for t in tasks}
    failing["fact_retrieval-0"] = {"m1", "m2", "m3"}
    assert len(select_hard(tasks, failing)) == 10
    picked = select_hard(tasks, failing, size=5, seed=0)
    kinds = [t.task_type for t in picked]
    assert (
        kinds.count(TaskType.FACT_RETRIEVAL) == 3 and kinds.count(TaskType.OMISSION_DETECTION) == 2
    )
    assert "fact_retrieval-0" in {t.id for t in picked}  # most failing models first
    assert select_hard(tasks, failing, size=5, seed=0) == picked
    assert select_hard(tasks, failing, min_failing_models=3) == [tasks[0]]


# --------------------------------------------------------------------------
# Runs -> ensemble -> hard -> report
# --------------------------------------------------------------------------


def _three_runs(bench: Path, root: Path, scripted) -> list[Path]:
    gold = {t.id: t.answer for t in load_bench(bench).tasks}

    def wrong(tid: str) -> str:
        return "A" if gold[tid] != "A" else "B"

    def model(right_types: set[str]):
        def reply(req) -> str:
            tid = req.key.split("@")[0]
            ok = any(tid.startswith(t) for t in right_types) or tid.endswith("-0")
            return f"<answer>{gold[tid] if ok else wrong(tid)}</answer>"

        return reply

    specs = [
        ("m/one", {"fact_retrieval", "timeline_sequence", "omission_detection"}),
        ("m/two", {"fact_retrieval", "ddx_reasoning"}),
        ("m/three", {"timeline_sequence", "ddx_reasoning", "consistency_check"}),
    ]
    paths = []
    for name, right in specs:
        out = root / name.replace("/", "_")
        cfg = EvalConfig(bench=str(bench), model=name, out=str(out), seeds=[0, 1], n_bootstrap=50)
        run_eval(cfg, model=scripted(model(right), name=name), show_progress=False)
        paths.append(out)
    return paths


def test_ensemble_hard_and_report(small_bench: Path, tmp_path: Path, scripted) -> None:
    runs = _three_runs(small_bench, tmp_path, scripted)

    ens = tmp_path / "ensemble"
    metrics = run_ensemble(runs, ens, n_bootstrap=50)
    # every task is answered right by at most one model, except *-0 tasks (all right) and
    # the pairs: fact_retrieval (one, two), timeline (one, three), ddx (two, three)
    assert metrics["mean"]["per_type"]["fact_retrieval"]["accuracy"] == 1.0
    assert metrics["mean"]["per_type"]["omission_detection"]["accuracy"] == 0.25
    assert metrics["counts"]["predictions"] == 104 and metrics["counts"]["errors"] == 0
    config = json.loads((ens / "config.json").read_text())
    assert config["tie_rule"].startswith("ties go to") and len(config["members"]) == 3

    hard = tmp_path / "hard"
    report = build_hard(small_bench, runs, hard, min_failing_models=2)
    hard_bench = load_bench(hard)
    ids = {t.id for t in hard_bench.tasks}
    # failed by >= 2 of 3 models on both seeds: types at most one model gets right,
    # minus the *-0 tasks everyone gets right
    assert "omission_detection-test-1" in ids and "omission_detection-test-0" not in ids
    assert not any(i.startswith(("fact_retrieval", "timeline", "ddx")) for i in ids)
    assert report["hard"]["n_tasks"] == len(ids) == 10 * 3
    assert report["hard"]["category_count"] == {"reactive": 3, "balanced": 6, "proactive": 21}
    assert set(hard_bench.conversations) == {t.case_id for t in hard_bench.tasks}
    assert (hard / "composition.json").exists() and (hard / "manifest.json").exists()

    rep = tmp_path / "report"
    written = write_report([*runs, ens], rep, hard=hard)
    assert {
        "table2",
        "table2_accuracy",
        "summary",
        "table4",
        "safety",
        "radar",
        "report",
        "json",
    } <= set(written)
    assert "table3" not in written  # no behaviour-classification run
    png = (rep / "figure5_radar.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    table2 = (rep / "table2.md").read_text()
    assert table2.count("| reactive | Avg. |") == 1 and "| overall | Avg. |" in table2
    header_line = next(line for line in table2.splitlines() if line.startswith("| Category"))
    assert header_line.endswith("| m/three zero_shot | Ensemble (3) |")
    with open(rep / "table2.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["Category", "Task", "m/one zero_shot"]
    assert len(body) == 13 + 3 + 1 + 2 + 1  # types, category avgs, overall, acc/invalid, n
    fact = next(r for r in body if r[1] == "fact_retrieval")
    one = json.loads((runs[0] / "metrics.json").read_text())
    expected = 100 * one["mean"]["per_type"]["fact_retrieval"]["macro_f1"]
    assert float(fact[2]) == pytest.approx(expected, abs=0.01)
    # the accuracy layout (Tables 6-8) averages type accuracies the same way
    accuracy_md = (rep / "table2_accuracy.md").read_text()
    acc = one["mean"]["per_category"]["reactive"]["accuracy"]
    types = ("fact_retrieval", "timeline_sequence", "ddx_reasoning", "treatment_decision")
    by_type = [one["mean"]["per_type"][t]["accuracy"] for t in types]
    assert acc == pytest.approx(sum(by_type) / 4)
    assert f"| reactive | Avg. | {100 * acc:.1f} ± 0.0 |" in accuracy_md
    summary = (rep / "summary.md").read_text()
    overall = 100 * one["mean"]["overall"]["macro_f1"]
    n_one = one["counts"]["tasks"]
    assert f"| m/one zero_shot | {n_one} | {overall:.1f} ± 0.0 |" in summary
    # Table 4, Hard Overall: 10 types are hard; m/one is right on one of them
    # (omission_detection: F1 1.0, the rest 0.0) -> 0.1; m/two on none -> 0.0
    table4 = json.loads((rep / "report.json").read_text())["tables"]["table4"]
    assert [row["cells"][4]["mean"] for row in table4["rows"][:2]] == [pytest.approx(0.1), 0.0]
    safety = (rep / "safety.md").read_text()
    assert "False alarm" in safety and "| m/one zero_shot | 14 | 14 |" in safety


def test_report_table3_from_a_label_strategy(small_bench: Path, tmp_path: Path, scripted) -> None:
    out = tmp_path / "bt"
    run_eval(
        EvalConfig(
            bench=str(small_bench), model="m/x", out=str(out), strategy="bt_bc_op", n_bootstrap=0
        ),
        model=scripted(lambda r: "<behavior>balanced</behavior> ... <answer>A</answer>"),
        show_progress=False,
    )
    write_report([out], tmp_path / "rep")
    table3 = (tmp_path / "rep" / "table3.md").read_text()
    # gold balanced: 8 of 52 tasks; predicted balanced everywhere: F1 = 2*8/(8+52)
    assert f"| {100 * 16 / 60:.1f} |" in table3
    assert load_predictions(out)[0].behavior_label is not None


def test_ensemble_refuses_a_member_twice_or_a_member_with_no_answers(
    small_bench: Path, tmp_path: Path, scripted
) -> None:
    from typer.testing import CliRunner

    from behaviorsft.cli import app
    from behaviorsft.exit_codes import ExitCode

    one, two, _ = _three_runs(small_bench, tmp_path, scripted)
    empty = tmp_path / "empty-run"
    empty.mkdir()
    (empty / "config.json").write_bytes((two / "config.json").read_bytes())
    (empty / "predictions.jsonl").write_text("")
    link = tmp_path / "link-to-one"
    link.symlink_to(one)
    for members, says in (
        ([one, one], "given twice"),
        ([one, two, link], "given twice"),
        ([one, empty], "no predictions"),
    ):
        out = tmp_path / "ens"
        res = CliRunner().invoke(app, ["ensemble", *map(str, members), "--out", str(out)])
        assert res.exit_code == ExitCode.INPUT_ERROR, res.output
        assert says in res.output and "Traceback" not in res.output
        assert not out.exists()
