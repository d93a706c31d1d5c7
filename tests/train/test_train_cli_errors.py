"""`train` on bad input: one line, exit 2, nothing written, before any model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from behaviorsft.cli import app
from behaviorsft.exit_codes import ExitCode


def _train(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["train", "--mode", "behavior", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("model", "bench", "says"),
    [
        ("./no-such-model", "BENCH", "./no-such-model: no such folder"),
        ("org/not-on-this-machine", "BENCH", "org/not-on-this-machine"),
        ("org/not-on-this-machine", "nope", "not a BENCH folder"),
    ],
    ids=["local-model-path", "hub-id-offline", "missing-bench"],
)
def test_train_input_errors_exit_2_and_write_nothing(
    small_bench: Path, tmp_path: Path, model: str, bench: str, says: str
) -> None:
    out = tmp_path / "adapter"
    where = str(small_bench) if bench == "BENCH" else str(tmp_path / bench)
    rc, output = _train("--model", model, "--bench", where, "--out", str(out))
    assert rc == ExitCode.INPUT_ERROR, output
    assert says in output and "Traceback" not in output
    assert sum(ln.startswith("error:") for ln in output.splitlines()) == 1, output
    assert not out.exists()


@pytest.mark.parametrize(
    ("base", "says"),
    [("./no-such-base", "./no-such-base: no such folder"), ("org/not-here", "org/not-here")],
    ids=["local-base-path", "hub-id-offline"],
)
def test_merge_with_a_base_that_cannot_load_exits_2(tmp_path: Path, base: str, says: str) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}))
    out = tmp_path / "merged"
    result = CliRunner().invoke(app, ["merge", str(adapter), "--out", str(out)])
    assert result.exit_code == ExitCode.INPUT_ERROR, result.output
    assert says in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("model", "says"),
    [("./no-such-model", "./no-such-model: no such folder"), ("org/not-here", "org/not-here")],
    ids=["local-path", "hub-id-offline"],
)
def test_sft_data_with_a_tokenizer_that_cannot_load_exits_2(
    small_bench: Path, tmp_path: Path, model: str, says: str
) -> None:
    out = tmp_path / "sft"
    result = CliRunner().invoke(
        app, ["sft-data", "--bench", str(small_bench), "--out", str(out), "--model", model]
    )
    assert result.exit_code == ExitCode.INPUT_ERROR, result.output
    assert says in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()
