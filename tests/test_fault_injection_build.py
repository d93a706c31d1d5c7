"""Fault injection for `build`: random SIGKILLs, then resume; a concurrent second writer.

`build` runs as a subprocess (`python -m behaviorsft.cli build`) on a small synthetic set.
It is killed with SIGKILL at seeded random points of its progress, resumed each time, and
finished; the result must be byte-identical to a clean build. A second `build` into a
folder that another one is writing must be refused at once (exit 5, BUSY), even with
--fresh, and leave the first one's result byte-identical to a clean build.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from behaviorsft.build.pipeline import build_bench
from behaviorsft.cli import app
from behaviorsft.exit_codes import ExitCode
from behaviorsft.store import LOCK_NAME, read_manifest

N_CASES = 300
FILES = ("tasks.jsonl", "conversations.jsonl", "cases.jsonl")


def _cmd(cases: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "behaviorsft.cli", "build", "--cases", str(cases),
            "--out", str(out), "--workers", "1", *extra]  # fmt: skip


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _same_bench(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = read_manifest(a), read_manifest(b)
    assert ma is not None and mb is not None
    assert (ma.counts, ma.files, ma.config, ma.skipped) == (
        mb.counts,
        mb.files,
        mb.config,
        mb.skipped,
    )


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    cases = tmp_path / "cases" / "cases.jsonl"
    res = CliRunner().invoke(app, ["cases", "synth", "--n", str(N_CASES), "--out", str(cases)])
    assert res.exit_code == 0, res.output
    clean = tmp_path / "clean"
    report = build_bench(cases, clean, workers=1)
    assert report.cases == N_CASES and not report.skipped
    return cases, clean


def test_random_sigkills_then_resume_equal_a_clean_build(tmp_path):
    cases, clean = _setup(tmp_path)
    full = _size(clean / "tasks.jsonl")
    out = tmp_path / "killed"
    rng = random.Random(18)
    # Kill points: seeded fractions of the finished tasks file, one per third of it.
    points = [rng.uniform(lo, lo + 0.3) for lo in (0.02, 0.35, 0.65)]
    landed = 0
    for frac in points:
        proc = subprocess.Popen(
            _cmd(cases, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 120
        while proc.poll() is None and time.time() < deadline:
            if _size(out / "tasks.jsonl") >= frac * full:
                time.sleep(rng.uniform(0, 0.05))  # somewhere inside the next few cases
                break
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            landed += _size(out / "tasks.jsonl") < full
        proc.wait()
    assert landed >= 2, "the kills must land mid-build"
    done = subprocess.run(_cmd(cases, out), env=_env(), capture_output=True, text=True)
    assert done.returncode == ExitCode.OK, done.stderr
    assert "resumed after" in done.stdout
    _same_bench(out, clean)


def test_a_concurrent_second_writer_is_refused_and_the_first_result_is_intact(tmp_path):
    cases, clean = _setup(tmp_path)
    out = tmp_path / "shared"
    log = tmp_path / "first.log"
    first = subprocess.Popen(
        _cmd(cases, out), env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    # Once the first holds the lock and is writing, start the second (with --fresh, which
    # would delete the first's files if it were let in).
    deadline = time.time() + 120
    while not (_size(out / "tasks.jsonl") and (out / LOCK_NAME).exists()):
        assert first.poll() is None and time.time() < deadline, "first build did not start"
        time.sleep(0.005)
    second = subprocess.run(
        _cmd(cases, out, "--fresh"), env=_env(), capture_output=True, text=True, timeout=120
    )
    assert first.poll() is None, "the first build ended before the second tried: too fast"
    assert second.returncode == ExitCode.BUSY, second.stderr
    assert "being written by another process" in second.stderr
    assert f"pid {first.pid}" in second.stderr  # the message names the holder
    first.wait(timeout=120)
    assert first.returncode == ExitCode.OK, log.read_text()
    _same_bench(out, clean)
