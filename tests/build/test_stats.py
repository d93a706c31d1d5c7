"""Benchmark statistics and figures on the hand-written example bench."""

from __future__ import annotations

from typer.testing import CliRunner

from behaviorsft.build.stats import conversation_stats, task_stats, write_figures
from behaviorsft.cli import app
from behaviorsft.examples import example_conversation, example_tasks
from behaviorsft.store import write_jsonl

runner = CliRunner()


def bench(tmp_path):
    write_jsonl(tmp_path / "conversations.jsonl", [example_conversation()])
    write_jsonl(tmp_path / "tasks.jsonl", example_tasks())
    return tmp_path


def test_stats_by_hand(tmp_path):
    b = bench(tmp_path)
    conv = example_conversation()
    cs = conversation_stats(b / "conversations.jsonl")
    assert cs.n == 1
    assert cs.mean_turns == 10
    assert cs.mean_characters == sum(len(t.text) for t in conv.turns)
    assert cs.mean_participants == 5  # patient, ED physician, nurse, radiologist, hospitalist
    ts = task_stats(b / "tasks.jsonl")
    assert ts.n == 4
    assert ts.by_category == {"reactive": 1, "balanced": 1, "proactive": 2}
    assert ts.by_label["highly_proactive"] == 2
    assert ts.by_complexity == {"intermediate": 1, "advanced": 3}
    assert abs(ts.mean_score_by_complexity["advanced"] - (0.55 + 0.92 + 0.8) / 3) < 1e-12
    assert ts.restraint_controls == 1
    assert ts.perturbations == {"error": 1}


def test_figures_are_pngs(tmp_path):
    b = bench(tmp_path)
    paths = write_figures(
        conversation_stats(b / "conversations.jsonl"), task_stats(b / "tasks.jsonl"), tmp_path / "f"
    )
    assert len(paths) == 7
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_audit_and_stats_commands(tmp_path):
    b = bench(tmp_path)
    res = runner.invoke(app, ["audit", str(b), "--strict"])
    # The hand-written error-correction item has the longest right answer: the audit
    # must catch exactly that kind of artefact, so strict mode fails (PARTIAL: the audit
    # ran, and audit.json says which checks failed).
    assert res.exit_code == 3
    assert "MISS" in res.output
    assert (b / "audit.json").exists()
    res = runner.invoke(app, ["stats", str(b), "--figures", str(tmp_path / "figs")])
    assert res.exit_code == 0, res.output
    assert "33.3" in res.output  # the paper's turns per conversation, shown for comparison
    assert (b / "stats.json").exists()
    res = runner.invoke(app, ["audit", str(tmp_path / "figs")])
    assert res.exit_code == 2
