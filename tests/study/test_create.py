"""Making studies: migrations, stratified choice, queues, stored agent order, bad input, CLI."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from behaviorsft.bench import load_bench
from behaviorsft.cli import app as cli_app
from behaviorsft.study.create import (
    StudyExistsError,
    StudyInputError,
    assign,
    create_comparison,
    create_validation,
    stratified_sample,
)
from behaviorsft.study.db import (
    VERSION_TABLE,
    AgentResponse,
    Assignment,
    Base,
    Study,
    StudyTask,
    User,
    current_revision,
    open_db,
)
from behaviorsft.study.users import add_user
from tests.study.helpers import PASSWORD, make_run


@pytest.fixture
def engine(tmp_path: Path):
    engine = open_db(f"sqlite:///{tmp_path / 'study.db'}")
    for name in ("r1", "r2", "r3"):
        add_user(engine, name, password=PASSWORD)
    yield engine
    engine.dispose()


def test_migrations_build_the_schema_from_an_empty_database(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = open_db(url)
    assert current_revision(engine) == "0001"
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) | {VERSION_TABLE} == tables
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # The models and the migrations agree (only Alembic's own table is unknown to the models).
    assert [d for d in diff if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)] == []
    open_db(url)  # a second upgrade is a no-op
    assert current_revision(engine) == "0001"
    engine.dispose()


def test_cli_db_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "s.db"
    result = CliRunner().invoke(cli_app, ["study", "db", "upgrade", "--db", f"sqlite:///{db}"])
    assert result.exit_code == 0, result.output
    assert "revision 0001" in result.output and db.is_file()
    bad = CliRunner().invoke(cli_app, ["study", "db", "upgrade", "--db", "nonsense://x"])
    assert bad.exit_code == 2 and "--db nonsense://x" in bad.output
    unreachable = CliRunner().invoke(
        cli_app, ["study", "db", "upgrade", "--db", "postgresql+psycopg://u@127.0.0.1:1/db"]
    )
    assert (
        unreachable.exit_code == 2
        and "--db postgresql+psycopg://u@127.0.0.1:1/db" in unreachable.output
    )


def test_a_schema_from_a_newer_version_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'future.db'}"
    engine = open_db(url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    result = CliRunner().invoke(cli_app, ["study", "db", "upgrade", "--db", url])
    assert result.exit_code == 2 and "newer behaviorsft" in result.output


def test_stratified_sample_spreads_over_types(study_bench: Path) -> None:
    tasks = load_bench(study_bench).tasks
    types = Counter(t.task_type.value for t in tasks)
    chosen = stratified_sample(tasks, 26, seed=3)
    got = Counter(t.task_type.value for t in chosen)
    assert len(chosen) == 26 == len({t.id for t in chosen})
    # 13 types x 2: every type gives 2 where it has them, all of its tasks where it has
    # fewer, and the types with more fill the rest one at a time.
    short = sum(2 - count for count in types.values() if count < 2)
    assert all(got[name] == min(count, 2) for name, count in types.items() if count < 2)
    assert all(got[name] >= 2 for name, count in types.items() if count >= 2)
    assert sum(got[name] - 2 for name, count in types.items() if count >= 2) == short
    assert max(got.values()) <= 3
    assert chosen == stratified_sample(tasks, 26, seed=3)
    assert [t.id for t in chosen] != [t.id for t in stratified_sample(tasks, 26, seed=4)]
    # Types with few tasks run out and the others fill the rest.
    every = stratified_sample(tasks, len(tasks), seed=3)
    assert sorted(t.id for t in every) == sorted(t.id for t in tasks)


def test_assign_overlap_balances_loads() -> None:
    ids = [f"t{i}" for i in range(10)]
    full = assign(ids, ["a", "b", "c"], None)
    assert all(q == ids for q in full.values())
    two = assign(ids, ["a", "b", "c"], 2)
    per_task = Counter(t for q in two.values() for t in q)
    assert set(per_task.values()) == {2}
    loads = sorted(len(q) for q in two.values())
    assert loads[-1] - loads[0] <= 1 and sum(loads) == 20
    with pytest.raises(StudyInputError, match="--overlap 4"):
        assign(ids, ["a", "b", "c"], 4)


def test_create_validation_stores_snapshots_and_seeded_queues(engine, study_bench: Path) -> None:
    summary = create_validation(engine, study_bench, n=13, seed=5, raters=["r1", "r2"])
    assert summary["tasks"] == 13 and summary["assignments"] == 26
    assert set(summary["per_type"].values()) == {1}  # one per type
    bench = load_bench(study_bench)
    by_id = {t.id: t for t in bench.tasks}
    with Session(engine) as s:
        rows = s.scalars(select(StudyTask)).all()
        assert len(rows) == 13
        for row in rows:
            task = by_id[row.task_id]
            assert row.key == task.answer and row.question == task.question
            assert row.options == [o.model_dump(mode="json") for o in task.options]
            assert len(row.turns) == len(bench.conversations[task.case_id].turns)
            assert row.behavior_score == task.behavior_score and row.case_summary
        queues = {}
        for name in ("r1", "r2"):
            queues[name] = [
                a.study_task_id
                for a in s.scalars(
                    select(Assignment)
                    .join(User)
                    .where(User.name == name)
                    .order_by(Assignment.position)
                )
            ]
            assert sorted(queues[name]) == sorted(r.id for r in rows)
        assert queues["r1"] != queues["r2"]  # each rater's order is shuffled on its own
        assert all(a.agent_runs is None for a in s.scalars(select(Assignment)))


def test_comparison_agent_order_is_seeded_stored_and_stable(
    engine, tmp_path: Path, study_bench: Path
) -> None:
    runs = [str(make_run(study_bench, tmp_path / name, name)) for name in ("ra", "rb", "rc")]
    create_comparison(engine, study_bench, runs, n=6, seed=11, raters=["r1", "r2", "r3"])
    with Session(engine) as s:
        orders = {(a.user_id, a.study_task_id): a.agent_runs for a in s.scalars(select(Assignment))}
        assert len(orders) == 18
        assert all(sorted(o or []) == ["ra", "rb", "rc"] for o in orders.values())
        assert len({tuple(o or []) for o in orders.values()}) > 1  # not one fixed order
        responses = s.scalars(select(AgentResponse)).all()
        assert len(responses) == 18 and all("<proactive>" not in r.text for r in responses)
    # The same inputs in another database give the same stored orders (seeded, not random),
    # and a different seed gives different ones.
    again = open_db(f"sqlite:///{tmp_path / 'again.db'}")
    other = open_db(f"sqlite:///{tmp_path / 'other.db'}")
    for e, seed in ((again, 11), (other, 12)):
        for name in ("r1", "r2", "r3"):
            add_user(e, name, password=PASSWORD)
        create_comparison(e, study_bench, runs, n=6, seed=seed, raters=["r1", "r2", "r3"])

    def keyed(e):
        with Session(e) as s:
            return {
                (u, t, p): o
                for u, t, p, o in s.execute(
                    select(User.name, StudyTask.task_id, Assignment.position, Assignment.agent_runs)
                    .join(User, User.id == Assignment.user_id)
                    .join(StudyTask, StudyTask.id == Assignment.study_task_id)
                ).all()
            }

    assert keyed(again) == keyed(engine)
    assert keyed(other) != keyed(engine)
    # Stored means stored: later runs of `create` elsewhere never change this study's rows.
    with Session(engine) as s:
        assert {
            (a.user_id, a.study_task_id): a.agent_runs for a in s.scalars(select(Assignment))
        } == orders
    again.dispose()
    other.dispose()


def test_comparison_uses_only_tasks_answered_in_every_run(
    engine, tmp_path: Path, study_bench: Path
) -> None:
    tasks = [t.id for t in load_bench(study_bench).tasks]
    failed, missing = set(tasks[:40]), set(tasks[40:60])
    runs = [
        str(make_run(study_bench, tmp_path / "a", "a", fail=failed)),
        str(make_run(study_bench, tmp_path / "b", "b", missing=missing)),
        str(make_run(study_bench, tmp_path / "c", "c")),
    ]
    usable = len(tasks) - 60
    create_comparison(engine, study_bench, runs, n=usable, seed=1, raters=["r1"])
    with Session(engine) as s:
        chosen = set(s.scalars(select(StudyTask.task_id)))
    assert chosen == set(tasks[60:])
    with pytest.raises(StudyInputError, match=rf"--n {usable + 1}: only {usable} task"):
        create_comparison(engine, study_bench, runs, n=usable + 1, seed=1, raters=["r1"], name="x")


@pytest.mark.parametrize(
    ("problem", "match"),
    [
        ("unknown_rater", r"unknown rater\(s\) zz"),
        ("n_too_large", r"--n 100000: only \d+ task"),
        ("bench_missing", r"not a BENCH folder"),
        ("duplicate_rater", "named twice"),
        ("overlap", "--overlap 5"),
    ],
)
def test_create_validation_bad_input(
    engine, tmp_path: Path, study_bench: Path, problem: str, match: str
) -> None:
    kwargs = {"n": 5, "seed": 0, "raters": ["r1", "r2"]}
    bench = study_bench
    if problem == "unknown_rater":
        kwargs["raters"] = ["r1", "zz"]
    elif problem == "n_too_large":
        kwargs["n"] = 100000
    elif problem == "bench_missing":
        bench = tmp_path / "nothing"
    elif problem == "duplicate_rater":
        kwargs["raters"] = ["r1", "r1"]
    else:
        kwargs["overlap"] = 5
    with pytest.raises(StudyInputError, match=match):
        create_validation(engine, bench, **kwargs)  # type: ignore[arg-type]
    with Session(engine) as s:
        assert s.scalars(select(Study)).all() == []  # nothing half-made


def test_run_problems_name_file_line_and_field(engine, tmp_path: Path, study_bench: Path) -> None:
    good = [str(make_run(study_bench, tmp_path / n, n)) for n in ("a", "b")]
    with pytest.raises(StudyInputError, match=r"no predictions\.jsonl"):
        create_comparison(engine, study_bench, [*good, str(tmp_path / "nope")], n=2, seed=0)
    alien = make_run(study_bench, tmp_path / "alien", "alien")
    lines = (alien / "predictions.jsonl").read_text().splitlines()
    row = json.loads(lines[2])
    row["task_id"], row["id"] = "not-a-task", "not-a-task@0"
    lines[2] = json.dumps(row)
    (alien / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        StudyInputError, match=r"alien/predictions.jsonl: line 3: task_id: 'not-a-task'"
    ):
        create_comparison(engine, study_bench, [*good, str(alien)], n=2, seed=0)
    broken = make_run(study_bench, tmp_path / "broken", "broken")
    with (broken / "predictions.jsonl").open("a") as fh:
        fh.write('{"task_id": "x", "model": "hf/m"}\n{"oops": 1}\n')
    with pytest.raises(StudyInputError, match=r"broken/predictions.jsonl:\d+: "):
        create_comparison(engine, study_bench, [*good, str(broken)], n=2, seed=0)
    choice = make_run(study_bench, tmp_path / "choice", "choice")
    (choice / "config.json").write_text(json.dumps({"scoring": "choice"}))
    with pytest.raises(StudyInputError, match=r"config\.json: scoring: .*--scoring generate"):
        create_comparison(engine, study_bench, [*good, str(choice)], n=2, seed=0)
    with pytest.raises(StudyInputError, match="both named"):
        create_comparison(engine, study_bench, [good[0], f"a={good[1]}"], n=2, seed=0)
    with pytest.raises(StudyInputError, match="give 2 to 6 runs"):
        create_comparison(engine, study_bench, good[:1], n=2, seed=0)


def test_a_study_name_is_used_once(engine, study_bench: Path) -> None:
    create_validation(engine, study_bench, n=3, seed=0, raters=["r1"])
    with pytest.raises(StudyExistsError, match="'validation' is already"):
        create_validation(engine, study_bench, n=3, seed=0, raters=["r1"])
    create_validation(engine, study_bench, n=3, seed=0, raters=["r1"], name="second")


def test_cli_users_create_and_errors(tmp_path: Path, study_bench: Path) -> None:
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    added = runner.invoke(cli_app, ["study", "users", "add", "r1", "--db", db])
    assert added.exit_code == 0, added.output
    assert re.search(r"http://127\.0\.0\.1:8000/signin/[A-Za-z0-9_-]{40,}", added.output)
    pw = runner.invoke(
        cli_app,
        ["study", "users", "add", "boss", "--admin", "--password-stdin", "--db", db],
        input=f"{PASSWORD}\n",
    )
    assert pw.exit_code == 0 and "administrator, password set" in pw.output
    assert "/signin/" not in pw.output
    short = runner.invoke(
        cli_app, ["study", "users", "add", "r2", "--password-stdin", "--db", db], input="short\n"
    )
    assert short.exit_code == 2 and "at least 8" in short.output
    bad = runner.invoke(cli_app, ["study", "users", "add", "no spaces", "--db", db])
    assert bad.exit_code == 2 and "user name" in bad.output
    runner.invoke(cli_app, ["study", "users", "add", "r2", "--db", db])
    made = runner.invoke(
        cli_app,
        [
            "study",
            "create",
            "validation",
            "--bench",
            str(study_bench),
            "--n",
            "6",
            "--raters",
            "r1",
            "r2",
            "--seed",
            "1",
            "--db",
            db,
        ],
    )
    assert made.exit_code == 0, made.output
    assert (
        "validation study 'validation': 6 tasks" in made.output and "12 assignments" in made.output
    )
    again = runner.invoke(
        cli_app,
        [
            "study",
            "create",
            "validation",
            "--bench",
            str(study_bench),
            "--n",
            "6",
            "--raters",
            "r1",
            "--db",
            db,
        ],
    )
    assert again.exit_code == 4 and "give another --name" in again.output
    unknown = runner.invoke(
        cli_app,
        [
            "study",
            "create",
            "validation",
            "--bench",
            str(study_bench),
            "--n",
            "6",
            "--raters",
            "r1",
            "r9",
            "--name",
            "v2",
            "--db",
            db,
        ],
    )
    assert unknown.exit_code == 2 and "unknown rater(s) r9" in unknown.output
    runs = [str(make_run(study_bench, tmp_path / n, n)) for n in ("x", "y", "z")]
    comp = runner.invoke(
        cli_app,
        [
            "study",
            "create",
            "comparison",
            "--bench",
            str(study_bench),
            "--runs",
            *runs,
            "--raters",
            "r1",
            "r2",
            "--n",
            "4",
            "--seed",
            "2",
            "--db",
            db,
        ],
    )
    assert comp.exit_code == 0, comp.output
    assert (
        "comparison study 'comparison': 4 tasks" in comp.output and "8 assignments" in comp.output
    )
    missing = runner.invoke(
        cli_app,
        [
            "study",
            "create",
            "comparison",
            "--bench",
            str(tmp_path / "nobench"),
            "--runs",
            *runs,
            "--n",
            "4",
            "--name",
            "c2",
            "--db",
            db,
        ],
    )
    assert missing.exit_code == 2 and "not a BENCH folder" in missing.output
