"""`behaviorsft study serve` for real: its own process, uvicorn on 127.0.0.1, httpx as a rater."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.study.helpers import PASSWORD, SeededStudy, csrf_of

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_study_serve_command(seeded: SeededStudy, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "BEHAVIORSFT_STUDY_SECRET": ""}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "behaviorsft.cli",
            "study",
            "serve",
            "--db",
            seeded.db_url,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "study serve did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base, follow_redirects=True) as client:
            static = client.get("/static/htmx.min.js")
            assert static.status_code == 200 and "0BSD" in static.text[:300]
            assert "Sortable 1.15" in client.get("/static/Sortable.min.js").text[:200]
            page = client.get("/login")
            resp = client.post(
                "/login",
                data={"name": "r3", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
            )
            assert resp.status_code == 200 and 'data-testid="whoami">r3<' in resp.text
            first = re.search(r'href="(/a/\d+)" data-testid="continue-validation"', resp.text)
            assert first is not None
            task = client.get(first.group(1))
            assert task.status_code == 200 and 'data-testid="progress">Task 1 of 6' in task.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
