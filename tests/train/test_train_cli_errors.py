"""`train` on bad input: one line, exit 2, nothing written, before any model is loaded."""

from __future__ import annotations

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
