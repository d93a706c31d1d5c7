"""`build --generator llm` against servers that reject structured output, or fail outright."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from behaviorsft.cli import app
from behaviorsft.exit_codes import ExitCode
from behaviorsft.models.openai_compat import OpenAICompatModel
from tests.build_llm.conftest import ScriptedLLM, write_text_cases


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # `build` has no backoff option; retries here must not sleep the default seconds.
    monkeypatch.setattr(OpenAICompatModel, "_delay", lambda self, attempt, retry_after: 0.0)


def _build(server: ScriptedLLM, tmp_path: Path, n: int = 2) -> tuple[int, str, Path]:
    cases = write_text_cases(tmp_path / "reports.jsonl", n)
    bench = tmp_path / "bench"
    args = [
        "build",
        "--generator",
        "llm",
        "--cases",
        str(cases),
        "--out",
        str(bench),
        "--model",
        "openai-compatible/scripted",
        "--base-url",
        server.base_url,
        "--concurrency",
        "4",
        "--types",
        "fact_retrieval",
        "--verify",
        "off",
    ]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output, bench


def _reported_requests(output: str) -> int:
    m = re.search(r"this run: (\d+) requests", output)
    assert m, output
    return int(m.group(1))


def test_llama_cpp_python_server_falls_back_to_json_object(
    llm_server: ScriptedLLM, tmp_path: Path
) -> None:
    llm_server.llama_cpp_python = True
    rc, output, bench = _build(llm_server, tmp_path)
    assert rc == ExitCode.OK, output
    assert "2 cases completed, 0 failed" in output
    formats = [(b.get("response_format") or {}).get("type") for b in llm_server.requests]
    # One structured request is rejected, then json_object for every later request of
    # the run: the fallback is remembered, not re-learnt per case.
    # The rejected format costs two requests (one retry, not the client's full backoff).
    assert formats[:3] == ["json_schema", "json_schema", "json_object"]
    assert set(formats[2:]) == {"json_object"}
    assert "json_object" in output  # the user is told which format was used
    # Every request the server saw is counted, the rejected ones included.
    assert _reported_requests(output) == llm_server.count
    tasks = [json.loads(x) for x in (bench / "tasks.jsonl").read_text().splitlines()]
    assert tasks and {t["task_type"] for t in tasks} == {"fact_retrieval"}


def test_server_failing_every_request_exits_partial_and_counts_every_request(
    llm_server: ScriptedLLM, tmp_path: Path
) -> None:
    llm_server.inject("summary", "500", times=10_000)
    rc, output, _ = _build(llm_server, tmp_path)
    assert rc == ExitCode.PARTIAL, output
    assert "0 cases completed, 2 failed" in output
    assert llm_server.count > 0
    assert _reported_requests(output) == llm_server.count


def test_corrupt_manifest_stops_before_any_request(llm_server: ScriptedLLM, tmp_path: Path) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "manifest.json").write_text('{"stage": ')
    rc, output, _ = _build(llm_server, tmp_path)
    assert rc == ExitCode.INPUT_ERROR, output
    assert str(bench / "manifest.json") in output and "Traceback" not in output
    assert llm_server.count == 0


def test_rate_limits_do_not_drop_structured_output(llm_server: ScriptedLLM, tmp_path: Path) -> None:
    # The first case's summary is refused with 429 until the client gives up (7 attempts).
    llm_server.inject("summary", "429", case_id="text:case-000", times=7)
    rc, output, _ = _build(llm_server, tmp_path)
    assert rc == ExitCode.PARTIAL, output  # that case failed, with its reason
    formats = {(b.get("response_format") or {}).get("type") for b in llm_server.requests}
    assert formats == {"json_schema"}
    assert "note:" not in output
    assert _reported_requests(output) == llm_server.count


def test_cases_that_are_the_benchs_own_output_are_refused_untouched(
    llm_server: ScriptedLLM, tmp_path: Path
) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    cases = write_text_cases(bench / "cases.jsonl", 2)  # the file the builder writes
    before = cases.read_bytes()
    result = CliRunner().invoke(
        app,
        [
            "build-llm",
            "--cases",
            str(cases),
            "--out",
            str(bench),
            "--model",
            "openai-compatible/scripted",
            "--base-url",
            llm_server.base_url,
            "--fresh",
        ],
    )
    assert result.exit_code == ExitCode.INPUT_ERROR, result.output
    assert "cases" in result.output and "output" in result.output
    assert cases.read_bytes() == before
    assert llm_server.count == 0


def test_wrong_kind_or_empty_cases_are_input_errors(
    llm_server: ScriptedLLM, tmp_path: Path
) -> None:
    from behaviorsft.records import Task
    from tests.conftest import make_task_dict

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(Task.model_validate(make_task_dict()).model_dump_json() + "\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for path, says in ((tasks, "is a tasks file"), (empty, "empty")):
        result = CliRunner().invoke(
            app,
            [
                "build-llm",
                "--cases",
                str(path),
                "--out",
                str(tmp_path / "bench"),
                "--model",
                "openai-compatible/scripted",
                "--base-url",
                llm_server.base_url,
            ],
        )
        assert result.exit_code == ExitCode.INPUT_ERROR, result.output
        assert says in result.output
    assert llm_server.count == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_listening_stops_the_build_at_once_and_records_no_failure(
    llm_server: ScriptedLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []
    post_once = OpenAICompatModel._post_once

    async def counted(self: OpenAICompatModel, client: Any, body: dict[str, Any]) -> Any:
        attempts.append(self.base_url)
        return await post_once(self, client, body)

    monkeypatch.setattr(OpenAICompatModel, "_post_once", counted)
    # One case built while the server is up; then the server is not there.
    cases = write_text_cases(tmp_path / "reports.jsonl", 6)
    bench = tmp_path / "bench"
    common = ["build", "--generator", "llm", "--cases", str(cases), "--out", str(bench)]
    common += ["--model", "openai-compatible/scripted", "--concurrency", "4"]
    common += ["--types", "fact_retrieval", "--verify", "off"]
    up = ["--base-url", llm_server.base_url]
    first = CliRunner().invoke(app, [*common, *up, "--max-cases", "1"])
    assert first.exit_code == ExitCode.OK, first.output
    tasks_before = (bench / "tasks.jsonl").read_bytes()
    outcomes_before = (bench / "llm" / "outcomes.jsonl").read_bytes()
    attempts.clear()

    dead = f"http://127.0.0.1:{_closed_port()}/v1"
    result = CliRunner().invoke(app, [*common, "--base-url", dead])
    assert result.exit_code == ExitCode.INPUT_ERROR, result.output
    assert f"nothing answers at {dead}" in result.output
    assert "Traceback" not in result.output
    # Stopped at the first refused connection: no retries, not one try per case.
    assert 1 <= len(attempts) <= 2, attempts
    # Nothing recorded as failed; what was done before is untouched.
    assert (bench / "tasks.jsonl").read_bytes() == tasks_before
    assert (bench / "llm" / "outcomes.jsonl").read_bytes() == outcomes_before
    for name in ("summaries.jsonl", "conversations.jsonl", "drafts.jsonl"):
        path = bench / "llm" / name
        assert not path.exists() or '"failed"' not in path.read_text(), name

    # The server is back: the re-run builds the other five and keeps the first.
    again = CliRunner().invoke(app, [*common, *up])
    assert again.exit_code == ExitCode.OK, again.output
    assert "6 cases completed, 0 failed" in again.output
    outcomes = [json.loads(x) for x in (bench / "llm" / "outcomes.jsonl").read_text().splitlines()]
    assert len(outcomes) == 6 and {o["status"] for o in outcomes} == {"completed"}
    assert (bench / "tasks.jsonl").read_bytes().startswith(tasks_before)


def test_format_rejected_after_json_schema_worked_is_told_by_the_reply_body(
    llm_server: ScriptedLLM, tmp_path: Path
) -> None:
    # The first request (json_schema) is answered, so the run keeps json_schema; from
    # then on the server answers it as llama-cpp-python does: HTTP 500 whose body alone
    # names the response format. Only that body tells it from a crash.
    respond = llm_server._respond

    def then_llama_cpp(body: dict[str, Any]) -> Any:
        out = respond(body)
        if out[0] == 200:
            llm_server.llama_cpp_python = True
        return out

    llm_server._respond = then_llama_cpp  # type: ignore[method-assign]
    rc, output, _ = _build(llm_server, tmp_path)
    assert rc == ExitCode.OK, output
    assert "2 cases completed, 0 failed" in output
    formats = [(b.get("response_format") or {}).get("type") for b in llm_server.requests]
    assert formats[0] == "json_schema" and formats[-1] == "json_object"
    assert "Input should be 'text' or 'json_object'" in output  # the note quotes the server
    assert _reported_requests(output) == llm_server.count
    # A 500 whose body does not name the format is a failure, not a format change.
    llm_server.llama_cpp_python = False
    llm_server._respond = respond  # type: ignore[method-assign]
    llm_server.inject("summary", "500", times=10_000)
    (tmp_path / "again").mkdir()
    rc, output, _ = _build(llm_server, tmp_path / "again")
    assert rc == ExitCode.PARTIAL, output
    assert "upstream failed" in output and "json_object" not in output


def test_second_writer_of_the_bench_stops_at_once(llm_server: ScriptedLLM, tmp_path: Path) -> None:
    from behaviorsft.store import FolderLock

    bench = tmp_path / "bench"
    with FolderLock(bench):  # another build is writing this folder
        rc, output, _ = _build(llm_server, tmp_path)
    assert rc == ExitCode.BUSY, output
    assert "Traceback" not in output and str(bench) in output
    assert llm_server.count == 0
    assert sorted(p.name for p in bench.iterdir()) == [".behaviorsft.lock"]
    rc, output, _ = _build(llm_server, tmp_path)  # once it is done, this one may write
    assert rc == ExitCode.OK, output


def test_resume_with_other_seed_or_types_is_refused(
    llm_server: ScriptedLLM, tmp_path: Path
) -> None:
    rc, output, bench = _build(llm_server, tmp_path)
    assert rc == ExitCode.OK, output
    tasks = (bench / "tasks.jsonl").read_bytes()
    manifest = (bench / "manifest.json").read_bytes()
    sent = llm_server.count
    common = ["build", "--generator", "llm", "--cases", str(tmp_path / "reports.jsonl")]
    common += ["--out", str(bench), "--model", "openai-compatible/scripted"]
    common += ["--base-url", llm_server.base_url, "--verify", "off"]
    for changed, says in (
        (["--types", "fact_retrieval", "--seed", "1"], "seed: 0"),
        (["--types", "ddx_reasoning"], "types: ['fact_retrieval']"),
        # Finished cases keep the old policy's tasks: the bench would mix two policies.
        (["--types", "fact_retrieval", "--verify", "flag"], "verify: 'off'"),
    ):
        result = CliRunner().invoke(app, [*common, *changed])
        assert result.exit_code == ExitCode.REFUSED, result.output
        assert says in result.output and "--fresh" in result.output
        assert "Traceback" not in result.output
        assert llm_server.count == sent
        assert (bench / "tasks.jsonl").read_bytes() == tasks
        assert (bench / "manifest.json").read_bytes() == manifest
    again = CliRunner().invoke(
        app, [*common, "--types", "fact_retrieval", "--seed", "1", "--fresh"]
    )
    assert again.exit_code == ExitCode.OK, again.output
