"""End-to-end LLM builds against the scripted chat-completions server (real HTTP)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from behaviorsft.bench import load_bench
from behaviorsft.build.audit import audit
from behaviorsft.build.llm import build_llm_bench
from behaviorsft.build.llm.prompts import AUGMENT_KINDS
from behaviorsft.build.llm.review import REVIEW_FIELDS, export_review
from behaviorsft.records import Task
from behaviorsft.store import load_records, read_manifest
from behaviorsft.taxonomy import TaskType
from tests.build_llm.conftest import ScriptedLLM, write_text_cases

MODEL = "openai-compatible/scripted"
FAST = {"backoff_base_s": 0.01, "timeout_s": 5.0, "max_retries": 2}


def _build(server: ScriptedLLM, cases: Path, out: Path, **kw: Any) -> Any:
    options = {**FAST, **kw.pop("model_options", {})}
    return build_llm_bench(
        cases,
        out,
        model=MODEL,
        base_url=server.base_url,
        concurrency=8,
        model_options=options,
        **kw,
    )


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _lines(path: Path) -> list[str]:
    # Cases finish in any order under concurrency; their content must not change.
    return sorted(path.read_text().splitlines())


def _no_duplicates(bench: Path) -> None:
    for name, key in [
        ("tasks.jsonl", "id"),
        ("cases.jsonl", "id"),
        ("conversations.jsonl", "case_id"),
        ("llm/summaries.jsonl", "id"),
        ("llm/conversations.jsonl", "id"),
        ("llm/drafts.jsonl", "id"),
        ("llm/verification.jsonl", "id"),
        ("llm/outcomes.jsonl", "id"),
    ]:
        ids = [r[key] for r in _jsonl(bench / name)]
        dup = [i for i, n in Counter(ids).items() if n > 1]
        assert not dup, f"{name}: duplicated {dup[:3]}"


def _manifest_tokens(bench: Path) -> int:
    m = read_manifest(bench)
    assert m is not None
    return m.counts["usage.total.prompt_tokens"] + m.counts["usage.total.completion_tokens"]


def test_build_loads_as_bench_and_reruns_cost_nothing(llm_server: ScriptedLLM, tmp_path: Path):
    cases = write_text_cases(tmp_path / "reports.jsonl", 3)
    bench = tmp_path / "bench"
    rep = _build(llm_server, cases, bench, verify="flag")
    assert (rep.completed, rep.failed) == (3, 0)
    b = load_bench(bench)
    assert {t.task_type for t in b.tasks} == set(TaskType)
    assert all(t.generator.name == "llm" and t.option_permutation for t in b.tasks)
    assert all(b.context_text(t) for t in b.tasks)
    # Every augmented task carries its provenance; controls carry none and answer "no issue".
    perturbed = [t for t in b.tasks if t.perturbation is not None]
    controls = [t for t in b.tasks if t.restraint_control]
    assert perturbed and controls
    assert all(t.perturbation.modified in (t.context.excerpt or "") for t in perturbed)  # type: ignore[union-attr]
    assert all(
        t.answer_text == "Nothing here requires action"
        for t in controls
        if t.task_type in AUGMENT_KINDS
    )
    # predictive_next_action has its control too: a note that everything due is done.
    predictive = [t for t in controls if t.task_type is TaskType.PREDICTIVE_NEXT_ACTION]
    assert predictive, "no restraint control for predictive_next_action"
    for t in predictive:
        assert t.answer_text == "Nothing more is needed now"
        assert "all done already" in (t.context.excerpt or "")
        twin = next(x for x in b.tasks if x.id == t.id[:-1] + "0")
        assert {o.text for o in twin.options} >= {t.answer_text}  # same question, same option
        assert twin.answer_text != t.answer_text and not twin.restraint_control
    # Summary facts point at real spans of the source text.
    summary = _jsonl(bench / "llm/summaries.jsonl")[0]
    assert all(f["end"] > f["start"] for f in summary["facts"])
    # Accounting: the manifest's tokens are exactly those the server delivered.
    assert _manifest_tokens(bench) == llm_server.usage_served
    m = read_manifest(bench)
    assert m is not None and m.config["prompts"]["task"] == "task/v2"
    assert m.files["tasks.jsonl"].count == len(b.tasks) == rep.tasks
    n, before = llm_server.count, _lines(bench / "tasks.jsonl")

    # Re-run: everything is on disk, nothing is asked.
    again = _build(llm_server, cases, bench, verify="flag")
    assert llm_server.count == n and again.requests == 0
    assert _lines(bench / "tasks.jsonl") == before

    # Fresh re-run: stage files are gone, but every reply comes from the cache.
    fresh = _build(llm_server, cases, bench, verify="flag", fresh=True)
    assert llm_server.count == n
    assert fresh.requests == 0 and fresh.cache_hits > 0
    assert _lines(bench / "tasks.jsonl") == before
    assert _manifest_tokens(bench) == llm_server.usage_served  # paid once, counted once
    _no_duplicates(bench)


def test_faults_end_completed_or_failed_with_reason(tmp_path: Path):
    server = ScriptedLLM(hang_s=2.5).start()
    try:
        server.inject("summary", "429", case_id="text:case-000")
        server.inject("summary", "500", case_id="text:case-001", times=3)  # 1 + 2 retries
        server.inject("conversation", "hang", case_id="text:case-002")
        server.inject("task", "truncated", case_id="text:case-003", task_type="fact_retrieval")
        server.inject("summary", "invalid", case_id="text:case-004", times=3)  # 1 + 2 re-asks
        server.inject(
            "task", "refusal", case_id="text:case-005", task_type="ddx_reasoning", times=3
        )
        server.inject("verify", "invalid", case_id="text:case-003", times=1)
        cases = write_text_cases(tmp_path / "reports.jsonl", 6)
        bench = tmp_path / "bench"
        rep = _build(server, cases, bench, verify="flag", model_options={"timeout_s": 1.0})
        outcomes = {o["id"]: o for o in _jsonl(bench / "llm/outcomes.jsonl")}
        assert set(outcomes) == {f"text:case-{i:03d}" for i in range(6)}
        status = {k: (o["status"], o["reason"]) for k, o in outcomes.items()}
        assert status["text:case-000"] == ("completed", None)  # 429 honoured, then served
        assert status["text:case-002"] == ("completed", None)  # hang: timed out, retried
        assert status["text:case-003"] == ("completed", None)  # truncated JSON re-asked
        assert status["text:case-001"][0] == "failed"
        assert "HTTP 500" in status["text:case-001"][1]
        assert status["text:case-004"][0] == "failed"
        assert "does not match the schema" in status["text:case-004"][1]
        case5 = outcomes["text:case-005"]
        assert case5["status"] == "completed"
        assert any("ddx_reasoning" in f and "refused" in f for f in case5["failed_items"])
        assert (rep.completed, rep.failed) == (4, 2)
        m = read_manifest(bench)
        assert m is not None
        reasons = {s.where: s.reason for s in m.skipped}
        assert "HTTP 500" in reasons["text:case-001"]
        assert "refused" in reasons["text:case-005:ddx_reasoning"]
        # Every delivered reply counted once; the hung one was delivered to nobody.
        assert _manifest_tokens(bench) == server.usage_served
        assert server.stages["summary"] >= 6 + 1 + 2 + 2
        _no_duplicates(bench)
        # Failed items are final: a re-run asks nothing.
        n = server.count
        again = _build(server, cases, bench, verify="flag")
        assert server.count == n and again.requests == 0
        assert (again.completed, again.failed) == (4, 2)
    finally:
        server.stop()


def test_verification_policy_drop_and_flag(llm_server: ScriptedLLM, tmp_path: Path):
    llm_server.wrong_cases = {"text:case-000"}
    llm_server.options_only_cases = {"text:case-001"}
    cases = write_text_cases(tmp_path / "reports.jsonl", 3)
    kept = _build(llm_server, cases, tmp_path / "flag", verify="flag")
    dropped = _build(llm_server, cases, tmp_path / "drop", verify="drop")
    flag_tasks = load_bench(tmp_path / "flag").tasks
    drop_tasks = load_bench(tmp_path / "drop").tasks
    # The scripted verifier, seeing only the options, picks the flagging option: right for
    # the perturbed tasks of case-001, wrong for their restraint controls (which survive).
    survivors = {t.case_id for t in drop_tasks if not t.restraint_control}
    assert survivors == {"text:case-002"}
    assert all(t.case_id != "text:case-000" for t in drop_tasks)
    assert len(flag_tasks) == kept.tasks == dropped.tasks + dropped.dropped
    aside = load_records(tmp_path / "drop/llm/dropped_tasks.jsonl", Task).records
    assert {t.case_id for t in aside} == {"text:case-000", "text:case-001"}
    flags = {v["id"]: v["flags"] for v in _jsonl(tmp_path / "flag/llm/verification.jsonl")}
    for t in flag_tasks:
        expected = {"text:case-000": ["wrong"]}
        if t.case_id == "text:case-001" and not t.restraint_control:
            expected[t.case_id] = ["options_only"]
        assert flags[t.id] == expected.get(t.case_id, [])
    m = read_manifest(tmp_path / "drop")
    assert m is not None and m.counts["verify.dropped"] == dropped.dropped > 0
    assert m.counts["verify.flag.wrong"] > 0 and m.counts["verify.flag.options_only"] > 0
    # Off: no verification calls at all.
    n = llm_server.stages["verify"]
    _build(llm_server, cases, tmp_path / "off", verify="off", fresh=True)
    assert llm_server.stages["verify"] == n


def test_audit_passes_on_llm_built_tasks(llm_server: ScriptedLLM, tmp_path: Path):
    """LLM habits (answer first and longest) are undone: re-ask, length-balanced pick, shuffle."""
    cases = write_text_cases(tmp_path / "reports.jsonl", 24)
    bench = tmp_path / "bench"
    _build(llm_server, cases, bench, verify="off", options_only_check=False)
    tasks = load_bench(bench).tasks
    rep = audit(tasks, option_only=False)
    assert rep.passes, [r for r in rep.shortcuts if not r.passes]
    overall = rep.shortcuts[-1]
    assert overall.longest <= overall.chance + 0.05
    # No textual tell in the free-form options: a classifier on the option texts alone
    # stays near chance. (Augmented types share a fixed "no issue" option that is the
    # answer of every restraint control; that is by design and left out here.) Caveat: the
    # scripted server's phrases are not free of tells themselves: with 48 cases this
    # classifier reaches about 0.30-0.36 on these types, so the bound is only meaningful at
    # this size.
    free = [t for t in tasks if t.task_type not in AUGMENT_KINDS]
    row = audit(free, option_only=True).shortcuts[-1]
    assert row.option_only is not None and row.option_only <= row.chance + 0.1
    assert len(rep.answer_letters) == 5 and max(rep.answer_letters.values()) < 0.3 * len(tasks)
    m = read_manifest(bench)
    assert m is not None and m.counts["length_check.reasked"] == 24 * 13
    assert m.counts.get("length_check.flagged", 0) == 0


def test_length_bias_that_survives_reasks_is_flagged_and_fails_the_audit(tmp_path: Path):
    server = ScriptedLLM().start()
    server.never_fix_length = True
    try:
        cases = write_text_cases(tmp_path / "reports.jsonl", 4)
        bench = tmp_path / "bench"
        _build(server, cases, bench, verify="flag", options_only_check=False)
        tasks = load_bench(bench).tasks
        # Every draft was asked three times, then kept with its bias recorded.
        m = read_manifest(bench)
        assert m is not None and m.counts["length_check.flagged"] == 4 * 13
        flags = [v["flags"] for v in _jsonl(bench / "llm/verification.jsonl")]
        assert all("length_bias" in f for f in flags)
        # ... and the audit sees exactly the shortcut the check warned about.
        assert not audit(tasks, option_only=False).passes
        dropped = _build(server, cases, tmp_path / "drop", verify="drop", options_only_check=False)
        assert dropped.tasks == 0 and dropped.dropped == len(tasks)
    finally:
        server.stop()


def test_review_export_has_context_and_empty_review_columns(
    llm_server: ScriptedLLM, tmp_path: Path
):
    import csv

    llm_server.flag_cases = {"text:case-000"}
    cases = write_text_cases(tmp_path / "reports.jsonl", 2)
    bench = tmp_path / "bench"
    _build(llm_server, cases, bench, verify="flag")
    csv_path, json_path, n = export_review(bench, tmp_path / "review")
    rows = json.loads(json_path.read_text())
    assert n == len(rows) == len(load_bench(bench).tasks)
    row = next(
        r
        for r in rows
        if r["task_type"] == "explicit_error_correction"
        and r["case_id"] == "text:case-000"
        and not r["restraint_control"]
    )
    assert row["options"][row["answer"]] == row["answer_text"]
    assert "Handover note" in row["context"] and row["perturbation"].startswith("error:")
    assert row["case_presentation"].startswith("A 40-year-old woman")
    assert all(row[f] is None for f in REVIEW_FIELDS)
    flagged = [r for r in rows if r["case_id"] == "text:case-000" and r["fact_check_flags"]]
    assert flagged and "turn 1: an invented value" in flagged[0]["fact_check_flags"]
    with open(csv_path, encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == n and table[0]["option_A"] and "review_comment" in table[0]
