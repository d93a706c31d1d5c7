"""Token forcing, the proactivity dial and first-token classification on hand-made answers.

Six tasks, each with P(<proactive>) and its answer under either forced token:

    task  kind                          gold  P    under <reactive>  under <proactive>
    C1    restraint control (omission)  A     0.9  A  (right)        B  (false alarm)
    C2    restraint control (omission)  A     0.3  A                 A
    I1    injected issue (omission)     C     0.8  A  (miss)         C  (caught)
    I2    injected issue (omission)     C     0.4  A  (miss)         C  (caught)
    F1    fact_retrieval (<reactive>)   B     0.2  B                 B
    F2    fact_retrieval (<reactive>)   B     0.6  B                 D  (wrong)

At threshold T a task is proactive iff P >= T. The curve, by hand:

    T     proactive tasks        false alarm   miss   accuracy  <pro> on <rea>  <rea> on injected
    0.00  all six                1/2 (C1)      0/2    4/6       2/2             0/2
    0.25  C1 C2 I1 I2 F2         1/2           0/2    4/6       1/2             0/2
    0.50  C1 I1 F2               1/2           1/2    3/6       1/2             1/2
    0.75  C1 I1                  1/2           1/2    4/6       0/2             1/2
    1.00  none                   0/2           2/2    4/6       0/2             2/2

(accuracy at 0.50: C2, I1, F1 right; C1 false alarm, I2 missed, F2 wrong = 3/6.)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from behaviorsft.evaluate.forcing import (
    DialItem,
    at_threshold,
    first_tokens,
    forcing_rows,
    join_runs,
    operating_point,
    sweep,
    thresholds,
)
from behaviorsft.evaluate.metrics import Scored, first_token_scores
from behaviorsft.records import Prediction, Task
from behaviorsft.taxonomy import BehaviorLabel, TaskType
from tests.conftest import make_task_dict

OMISSION, FACT = TaskType.OMISSION_DETECTION, TaskType.FACT_RETRIEVAL
# task id: (type, gold, P, answer under <reactive>, answer under <proactive>, control, injected)
TABLE = {
    "C1": (OMISSION, "A", 0.9, "A", "B", True, False),
    "C2": (OMISSION, "A", 0.3, "A", "A", True, False),
    "I1": (OMISSION, "C", 0.8, "A", "C", False, True),
    "I2": (OMISSION, "C", 0.4, "A", "C", False, True),
    "F1": (FACT, "B", 0.2, "B", "B", False, False),
    "F2": (FACT, "B", 0.6, "B", "D", False, False),
}


def _scored(tid: str, pred: str | None, token: str | None = None) -> Scored:
    ttype, gold, p, _, _, control, injected = TABLE[tid]
    fact = ttype is FACT
    return Scored(
        task_id=tid,
        seed=0,
        task_type=ttype,
        gold=gold,
        pred=pred,
        restraint_control=control,
        perturbed=injected,
        gold_label=BehaviorLabel.HIGHLY_REACTIVE if fact else BehaviorLabel.HIGHLY_PROACTIVE,
        pred_label=None,
        gold_token="<reactive>" if fact else "<proactive>",
        pred_token=token,
        p_proactive=p,
    )


def _items() -> list[DialItem]:
    return [
        DialItem(_scored(tid, row[3]), _scored(tid, row[4]), row[2]) for tid, row in TABLE.items()
    ]


def _rates(point: dict) -> tuple:
    keys = ("false_alarm", "miss", "accuracy", "proactive_on_reactive", "reactive_on_injected")
    return tuple(point[k]["rate"] for k in keys)


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (0.0, (1 / 2, 0 / 2, 4 / 6, 2 / 2, 0 / 2)),
        (0.25, (1 / 2, 0 / 2, 4 / 6, 1 / 2, 0 / 2)),
        (0.5, (1 / 2, 1 / 2, 3 / 6, 1 / 2, 1 / 2)),
        (0.75, (1 / 2, 1 / 2, 4 / 6, 0 / 2, 1 / 2)),
        (1.0, (0 / 2, 2 / 2, 4 / 6, 0 / 2, 2 / 2)),
    ],
)
def test_dial_curve_matches_the_hand_computed_table(t: float, expected: tuple) -> None:
    point = at_threshold(_items(), t)
    assert _rates(point) == pytest.approx(expected)
    assert point["false_alarm"]["n"] == 2 and point["miss"]["n"] == 2 and point["n"] == 6


def test_sweep_covers_the_grid_and_every_breakpoint() -> None:
    ts = thresholds(_items(), steps=4)
    # grid 0, .25, .5, .75, 1 plus the six P values; no P is 1, so T = 1 already means all reactive
    assert ts == [0.0, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.8, 0.9, 1.0]
    points = sweep(_items(), ts)
    # Raising T never makes more tasks proactive.
    shares = [p["proactive_rate"]["rate"] for p in points]
    assert shares == sorted(shares, reverse=True) and shares[0] == 1 and shares[-1] == 0


def test_a_p_of_one_gets_a_point_above_it_where_all_are_reactive() -> None:
    items = [replace(_items()[0], p=1.0)]
    ts = thresholds(items, steps=2)
    assert ts[-1] == float("inf")
    assert at_threshold(items, 1.0)["proactive_rate"]["rate"] == 1
    assert at_threshold(items, ts[-1])["proactive_rate"]["rate"] == 0


def test_an_unmeasured_p_is_never_proactive() -> None:
    items = [replace(it, p=None) for it in _items()]
    assert at_threshold(items, 0.0)["proactive_rate"]["rate"] == 0


def test_operating_point_without_unforced_run_is_t_half() -> None:
    own = operating_point(_items())
    assert own["source"].startswith("P >= 0.5")
    assert _rates(own) == _rates(at_threshold(_items(), 0.5))


def test_forcing_rows_own_opposite_and_all() -> None:
    rows = {r["row"]: r for r in forcing_rows(_items())}
    # own = T 0.5 row. Opposite: C1 reactive -> A, C2 proactive -> A, I1 reactive -> A (miss),
    # I2 proactive -> C, F1 proactive -> B, F2 reactive -> B: false alarm 0/2, miss 1/2, acc 5/6;
    # <proactive> on <reactive> tasks: F1 only = 1/2; <reactive> on injected: I1 = 1/2.
    assert _rates(rows["opposite"]) == pytest.approx((0, 1 / 2, 5 / 6, 1 / 2, 1 / 2))
    # All <reactive> = T 1.0 row; all <proactive> = T 0 row.
    assert _rates(rows["all_reactive"]) == pytest.approx(_rates(at_threshold(_items(), 1.0)))
    assert _rates(rows["all_proactive"]) == pytest.approx(_rates(at_threshold(_items(), 0.0)))
    assert _rates(rows["own"]) == pytest.approx(_rates(at_threshold(_items(), 0.5)))


def test_unforced_run_sets_the_operating_point() -> None:
    # The unforced run emitted <reactive> everywhere and answered like the reactive run,
    # except F2, which it got wrong (D).
    items = [
        replace(
            it,
            own=_scored(it.reactive.task_id, "D" if tid == "F2" else TABLE[tid][3], "<reactive>"),
        )
        for it, tid in zip(_items(), TABLE, strict=True)
    ]
    own = operating_point(items)
    assert own["source"] == "unforced run"
    # false alarm 0/2, miss 2/2, accuracy C1 C2 F1 = 3/6, no proactive decisions
    assert _rates(own) == pytest.approx((0, 1, 3 / 6, 0, 1))
    # Its opposite is then <proactive> on every task: the T = 0 row.
    opposite = next(r for r in forcing_rows(items) if r["row"] == "opposite")
    assert _rates(opposite) == pytest.approx(_rates(at_threshold(_items(), 0.0)))


def test_first_token_classification_binary_and_three_class() -> None:
    # First tokens by P >= 0.5: C1 pro, C2 rea, I1 pro, I2 rea, F1 rea, F2 pro.
    # Gold tokens: C*, I* proactive; F* reactive. Right: C1, I1, F1 = 3/6.
    # F1 <proactive>: TP 2 (C1, I1), gold 4, predicted 3 -> 2*2/(4+3) = 4/7.
    # F1 <reactive>: TP 1 (F1), gold 2, predicted 3 -> 2*1/(2+3) = 2/5.
    scores = first_token_scores(first_tokens(_items()))
    assert scores["binary"]["accuracy"] == pytest.approx(3 / 6)
    assert scores["binary"]["per_class"] == pytest.approx({"proactive": 4 / 7, "reactive": 2 / 5})
    assert scores["binary"]["macro_f1"] == pytest.approx((4 / 7 + 2 / 5) / 2)
    # 3-class: proactive group C1 C2 I1 I2 -> right 2/4, <proactive> 2/4; reactive group F1 F2 ->
    # right 1/2, <proactive> 1/2; no balanced task.
    assert scores["three"]["proactive"] == {"n": 4, "accuracy": 0.5, "proactive_share": 0.5}
    assert scores["three"]["reactive"] == {"n": 2, "accuracy": 0.5, "proactive_share": 0.5}
    assert "balanced" not in scores["three"]


def test_first_token_missing_counts_as_wrong() -> None:
    items = [replace(_scored("F1", "B"), pred_token=None), _scored("F2", "B", "<reactive>")]
    scores = first_token_scores(items)
    assert scores["no_token"] == 1 and scores["binary"]["accuracy"] == 0.5


def _task(tid: str) -> Task:
    ttype, gold, *_rest, control, injected = TABLE[tid]
    extra = {} if injected else {"perturbation": None}
    return Task.model_validate(
        make_task_dict(
            id=tid,
            task_type=ttype.value,
            answer=gold,
            behavior_score=0.1 if ttype is FACT else 0.9,
            restraint_control=control,
            **extra,
        )
    )


def _pred(tid: str, letter: str, p: float | None, error: str | None = None) -> Prediction:
    if error:
        return Prediction(task_id=tid, model="m", strategy="behaviorsft", error=error)
    return Prediction(
        task_id=tid,
        model="m",
        strategy="behaviorsft",
        raw_output=f"<answer>{letter}</answer>",
        parsed_answer=letter,
        valid=True,
        p_proactive=p,
    )


def test_join_runs_pairs_answers_and_counts_what_is_left_out() -> None:
    tasks = {tid: _task(tid) for tid in TABLE}
    reactive = [_pred(tid, row[3], row[2]) for tid, row in TABLE.items()]
    proactive = [_pred(tid, row[4], row[2]) for tid, row in TABLE.items() if tid != "F2"]
    reactive[0] = _pred("C1", "", None, error="HTTP 500")
    items, left_out = join_runs(tasks, reactive, proactive)
    assert sorted(it.key[0] for it in items) == ["C2", "F1", "I1", "I2"]
    # C1 failed in the reactive run (1 error), so its proactive answer has no partner;
    # F2 has no proactive answer: 2 unpaired.
    assert left_out == {"errors": 1, "unpaired": 2, "no_p": 0}
    # C2 P 0.3 -> reactive A (right); I1 .8 -> C; I2 .4 -> A (miss); F1 .2 -> B
    point = at_threshold(items, 0.5)
    assert point["miss"]["rate"] == pytest.approx(1 / 2)
    assert point["accuracy"]["rate"] == pytest.approx(3 / 4)


# --------------------------------------------------------------------------
# Through the runner and the `dial` command, with a scripted choice-scoring model
# --------------------------------------------------------------------------


class _TokenModel:
    """Choice scoring that knows the behaviour tokens, like an hf/ BehaviorSFT adapter.

    P(<proactive>) is 0.8 on proactive types, 0.3 elsewhere. Under <proactive> it
    flags an issue (A) on every restraint control and otherwise answers right; under
    <reactive> it says "no issue" (D, the controls' gold) on every proactive-type task and
    answers the others right.
    """

    name = "scripted/tokens"
    supports_choice_scoring = True

    def __init__(self, tasks: dict[str, Task]) -> None:
        self.tasks = tasks
        self.requests: list = []

    def single_token_id(self, text: str) -> int | None:
        return {"<reactive>": 1, "<proactive>": 2}.get(text)

    def score_choices(self, requests: list, *, progress: object = None) -> list:
        import math

        from behaviorsft.models.base import ChoiceScores

        out = []
        for r in requests:
            self.requests.append(r)
            task = self.tasks[r.key.split("@")[0]]
            proactive_type = task.category.value == "proactive"
            if r.letters == ("<reactive>", "<proactive>"):
                p = 0.8 if proactive_type else 0.3
                probs = {"<reactive>": 1 - p, "<proactive>": p}
            else:
                if r.assistant_prefix.startswith("<proactive>"):
                    pick = "A" if task.restraint_control else task.answer
                else:
                    pick = task.answer if not proactive_type else "D"
                probs = {x: (0.7 if x == pick else 0.1) for x in r.letters}
            out.append(ChoiceScores(logprobs={k: math.log(v) for k, v in probs.items()}))
        return out

    def close(self) -> None:
        pass


def _eval(bench: Path, out: Path, behavior: str, model: _TokenModel) -> Path:
    from behaviorsft.evaluate.runner import EvalConfig, run_eval

    config = EvalConfig(
        bench=str(bench),
        model="hf/scripted",
        out=str(out),
        strategy="behaviorsft",
        behavior=behavior,
        scoring="choice",
        n_bootstrap=0,
    )
    run_eval(config, model=model, show_progress=False)
    return out


def test_choice_scoring_reads_the_first_token_and_the_dial_command_writes_its_report(
    small_bench: Path, tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from behaviorsft.bench import load_bench
    from behaviorsft.cli import app
    from behaviorsft.evaluate.runner import load_predictions

    tasks = {t.id: t for t in load_bench(small_bench).tasks}
    model = _TokenModel(tasks)
    runs = {
        b: _eval(small_bench, tmp_path / b, b, model) for b in ("auto", "reactive", "proactive")
    }

    auto = load_predictions(runs["auto"])
    assert len(auto) == 52  # 13 types x 4 test tasks
    for p in auto:
        proactive_type = tasks[p.task_id].category.value == "proactive"
        assert p.p_proactive == pytest.approx(0.8 if proactive_type else 0.3)
        # auto keeps the answer under the likelier token, and says which
        assert p.behavior_token == ("<proactive>" if proactive_type else "<reactive>")
        assert p.raw_output.startswith(p.behavior_token)
    forced = load_predictions(runs["reactive"])
    assert {p.behavior_token for p in forced} == {"<reactive>"}
    assert all(p.p_proactive is not None for p in forced)  # the probe ran when forced too

    out = tmp_path / "dial"
    args = ["dial", "--reactive", str(runs["reactive"]), "--proactive", str(runs["proactive"])]
    args += ["--unforced", str(runs["auto"]), "--out", str(out), "--steps", "4"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "dial.png").stat().st_size > 0
    for name in ("dial", "forcing", "first_token"):
        assert (out / f"{name}.md").exists() and (out / f"{name}.csv").exists()
    data = json.loads((out / "dial.json").read_text(encoding="utf-8"))
    # 7 proactive types x 4 test tasks alternate injected issues and controls: 14 of each.
    assert data["n"] == {"tasks": 52, "controls": 14, "injected": 14}
    by_t = {p["threshold"]: p for p in data["sweep"]}
    # T = 0: all <proactive>: every control flagged, no injected issue missed.
    assert by_t[0.0]["false_alarm"]["rate"] == 1 and by_t[0.0]["miss"]["rate"] == 0
    # T = 1: all <reactive>: no control flagged (A is never gold 'D'... but A is readable and
    # not D, so reactive answers A on proactive types are false alarms too).
    assert by_t[1.0]["miss"]["rate"] == 1
    # The own point (unforced run: <proactive> on proactive types) equals T = 0.5 here.
    own = data["operating_point"]
    assert own["source"] == "unforced run"
    assert own["miss"]["rate"] == by_t[0.5]["miss"]["rate"] == 0
    assert data["first_token"]["binary"]["accuracy"] == pytest.approx(
        # right token everywhere except balanced tasks (score 0.5 -> <proactive>, P 0.3)
        (52 - 8) / 52
    )
    # The same view for any run with behaviour tokens: metrics.json and `report`.
    metrics = json.loads((runs["auto"] / "metrics.json").read_text(encoding="utf-8"))
    first = metrics["mean"]["token"]["first_token"]
    assert first["binary"]["accuracy"] == pytest.approx(44 / 52)
    assert first["three"]["balanced"] == {"n": 8, "accuracy": 0.0, "proactive_share": 0.0}
    from behaviorsft.evaluate.report import write_report

    written = write_report([runs["auto"]], tmp_path / "report")
    assert "table3_tokens" in written
    row = next(
        line for line in written["table3_tokens"].read_text().splitlines() if "hf/scripted" in line
    )
    assert "| 84.6 |" in row  # binary accuracy 44/52


def test_dial_refuses_runs_that_are_not_forced(small_bench: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from behaviorsft.bench import load_bench
    from behaviorsft.cli import app

    model = _TokenModel({t.id: t for t in load_bench(small_bench).tasks})
    auto = _eval(small_bench, tmp_path / "auto", "auto", model)
    pro = _eval(small_bench, tmp_path / "pro", "proactive", model)
    res = CliRunner().invoke(
        app,
        ["dial", "--reactive", str(auto), "--proactive", str(pro), "--out", str(tmp_path / "d")],
    )
    assert res.exit_code == 2
    assert "not reactive" in res.output and "Traceback" not in res.output
