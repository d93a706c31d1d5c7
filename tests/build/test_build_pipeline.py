"""`cases synth` + `build`: BENCH folders, manifests, bad input, and resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from behaviorsft.bench import load_bench
from behaviorsft.build.pipeline import build_bench
from behaviorsft.cli import app
from behaviorsft.exit_codes import ExitCode
from behaviorsft.records import Split, Task, TaskType
from behaviorsft.store import read_manifest, to_hf_dataset

runner = CliRunner()


def _synth(path: Path, n: int, seed: int = 0) -> None:
    res = runner.invoke(
        app, ["cases", "synth", "--n", str(n), "--seed", str(seed), "--out", str(path)]
    )
    assert res.exit_code == 0, res.output


def test_synth_then_build_writes_a_loadable_bench(tmp_path):
    cases = tmp_path / "cases" / "cases.jsonl"
    _synth(cases, 50)
    _synth(cases, 50)  # idempotent: resume writes nothing new
    assert sum(1 for _ in cases.open()) == 50
    res = runner.invoke(
        app, ["build", "--cases", str(cases), "--out", str(tmp_path / "bench"), "--workers", "1"]
    )
    assert res.exit_code == 0, res.output
    bench = load_bench(tmp_path / "bench")
    assert {t.task_type for t in bench.tasks} == set(TaskType)
    assert len(bench.conversations) == 50
    # splits by case: no case in two splits
    split_of: dict[str, Split] = {}
    for t in bench.tasks:
        assert split_of.setdefault(t.case_id, t.split) == t.split
    assert set(split_of.values()) == {Split.TRAIN, Split.VAL, Split.TEST}
    man = read_manifest(tmp_path / "bench")
    assert man is not None and man.files["tasks.jsonl"].count == len(bench.tasks)
    assert man.counts["synthetic.fact_retrieval"] > 0
    ds = to_hf_dataset(tmp_path / "bench" / "tasks.jsonl", Task)
    assert len(ds) == len(bench.tasks)


def test_types_filter_and_parallel_build_match_inline(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 24)
    a = build_bench(cases, tmp_path / "a", workers=1)
    b = build_bench(cases, tmp_path / "b", workers=2)
    a_bytes = (tmp_path / "a" / "tasks.jsonl").read_bytes()
    assert a_bytes == (tmp_path / "b" / "tasks.jsonl").read_bytes()
    assert a.tasks == b.tasks
    c = build_bench(cases, tmp_path / "c", workers=1, types=["omission_detection"])
    assert set(c.by_source_type["synthetic"]) == {"omission_detection"}


def test_bad_case_lines_are_reported_and_the_rest_built(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 6)
    lines = cases.read_text().splitlines()
    broken = json.loads(lines[2])
    broken["demographics"]["age_years"] = -4
    lines[2] = json.dumps(broken)
    lines.insert(4, "{not json")
    cases.write_text("\n".join(lines) + "\n")
    res = runner.invoke(
        app, ["build", "--cases", str(cases), "--out", str(tmp_path / "bench"), "--workers", "1"]
    )
    assert res.exit_code == ExitCode.PARTIAL, res.output  # finished, but cases were skipped
    assert f"{cases}:3: demographics.age_years" in res.output
    assert f"{cases}:5:" in res.output
    assert len(load_bench(tmp_path / "bench").conversations) == 5
    man = read_manifest(tmp_path / "bench")
    assert man is not None and len(man.skipped) == 2


def test_build_killed_with_sigkill_resumes_without_duplicates_or_gaps(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 400)
    clean = build_bench(cases, tmp_path / "clean", workers=1)
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "behaviorsft.cli",
        "build",
        "--cases",
        str(cases),
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tasks_file = out / "tasks.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if tasks_file.exists() and tasks_file.stat().st_size > 200_000:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = sum(1 for _ in tasks_file.open())
    assert 0 < partial < clean.tasks, "the kill must land mid-build"
    again = build_bench(cases, out, workers=1)
    assert again.resumed_from > 0
    ids = [json.loads(x)["id"] for x in tasks_file.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == clean.tasks
    assert sorted(tasks_file.read_text().splitlines()) == sorted(
        (tmp_path / "clean" / "tasks.jsonl").read_text().splitlines()
    )


def test_build_rejects_unknown_types(tmp_path):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 2)
    res = runner.invoke(
        app,
        ["build", "--cases", str(cases), "--out", str(tmp_path / "b"), "--types", "fact_retreival"],
    )
    assert res.exit_code != 0
    assert "unknown task type 'fact_retreival'" in res.output


@pytest.mark.parametrize("seed", [0])
def test_same_seed_same_bench_bytes(tmp_path, seed):
    cases = tmp_path / "cases.jsonl"
    _synth(cases, 10, seed)
    build_bench(cases, tmp_path / "x", seed=seed, workers=1)
    build_bench(cases, tmp_path / "y", seed=seed, workers=1)
    for name in ("cases.jsonl", "conversations.jsonl", "tasks.jsonl"):
        assert (tmp_path / "x" / name).read_bytes() == (tmp_path / "y" / name).read_bytes()
