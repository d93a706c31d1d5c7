"""End to end through real HTTP: uvicorn on 127.0.0.1, a tiny local hf/ model.

Three services run in threads of the test process, sharing one loaded model:
unforced with per-service thresholds 0 (order-sign) and 1 (patient-view),
forced proactive, and forced reactive. A fourth is the real `behaviorsft
serve` command in its own process (forced proactive); it is killed
mid-request last.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.serve.conftest import ISSUER, Keys, hook_request

REPO = Path(__file__).resolve().parents[2]
ORDER = "/cds-services/order-sign-safety"
VIEW = "/cds-services/patient-view-proactive"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(folder: Path, model: Path, keys: Keys, url: str, **config: Any) -> dict[str, Any]:
    return {
        "model": f"hf/{model}",
        "model_options": {"dtype": "float32", "device": "cpu"},
        "db": f"sqlite:///{folder / 'audit.db'}",
        "service_url": url,
        "issuers": [{"iss": ISSUER, "jwks_file": str(keys.jwks_file)}],
        "hash_salt": "e2e-salt",
        "max_new_tokens": 8,
        "indicator_tiers": {"warning": 0.2, "critical": 0.99},
        **config,
    }


class Server:
    """A service on 127.0.0.1 and a free port: in a thread of this process, or its own process.

    The thread servers share one loaded model (fast); the process server runs the real
    `behaviorsft serve` command, so it can be killed.
    """

    def __init__(
        self, folder: Path, model: Path, keys: Keys, *, agent: Any = None, **config: Any
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = folder / "audit.db"
        self.keys = keys
        self.log_path = folder / "server.log"
        cfg = _config(folder, model, keys, self.url, **config)
        self.proc: subprocess.Popen[bytes] | None = None
        if agent is None:
            (folder / "serve.yaml").write_text(yaml.safe_dump(cfg))
            env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO)}
            self.log = self.log_path.open("w")
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "behaviorsft.cli",
                    "serve",
                    "--config",
                    str(folder / "serve.yaml"),
                    "--port",
                    str(self.port),
                    "--log-level",
                    "info",
                ],
                env=env,
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
            return
        import uvicorn

        from behaviorsft.serve.app import create_app
        from behaviorsft.serve.settings import ServeSettings

        app = create_app(ServeSettings(**cfg), agent=agent)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def wait(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/cds-services", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def headers(self, path: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys.token(self.url + path)}"}

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=self.headers(path), timeout=60)

    def rows(self, sql: str = "SELECT * FROM hook_calls") -> list[sqlite3.Row]:
        con = sqlite3.connect(self.db)
        con.row_factory = sqlite3.Row
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def stop(self) -> None:
        if self.proc is None:
            self.server.should_exit = True
            self.thread.join(timeout=10)
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def servers(
    tiny_agent_model: Path, keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Server]]:
    from behaviorsft.models import load_model
    from behaviorsft.serve.agent import Agent

    root = tmp_path_factory.mktemp("e2e")
    # The process server starts first: it loads its model while this process loads its own.
    made = {
        "process": Server(
            root / "proc", tiny_agent_model, keys, force="proactive", max_new_tokens=32
        )
    }
    agent = Agent(
        load_model(f"hf/{tiny_agent_model}", dtype="float32", device="cpu"), max_new_tokens=8
    )
    made["dial"] = Server(
        root / "dial",
        tiny_agent_model,
        keys,
        agent=agent,
        services={
            "order-sign-safety": {"threshold": 0.0},
            "patient-view-proactive": {"threshold": 1.0},
        },
    )
    made["proactive"] = Server(root / "pro", tiny_agent_model, keys, agent=agent, force="proactive")
    made["reactive"] = Server(root / "rea", tiny_agent_model, keys, agent=agent, force="reactive")
    try:
        for s in made.values():
            s.wait()
        yield made
    finally:
        for s in made.values():
            s.stop()
        agent.close()


def test_allergy_clash_card_and_restraint_twin(servers: dict[str, Server]) -> None:
    pro, rea = servers["proactive"], servers["reactive"]
    clash = pro.post(ORDER, hook_request(allergy=True))
    assert clash.status_code == 200, clash.text
    (card,) = clash.json()["cards"]
    assert card["indicator"] == "warning"  # random model: 0.2 <= P < 0.99
    twin = rea.post(ORDER, hook_request(allergy=False))
    assert twin.status_code == 200 and twin.json() == {"cards": []}
    # Forcing either token flips the same record.
    assert rea.post(ORDER, hook_request(allergy=True)).json() == {"cards": []}
    assert len(pro.post(ORDER, hook_request(allergy=False)).json()["cards"]) == 1


def test_threshold_flips_the_unforced_agent(servers: dict[str, Server]) -> None:
    dial = servers["dial"]
    assert len(dial.post(ORDER, hook_request("order-sign")).json()["cards"]) == 1  # T = 0
    assert dial.post(VIEW, hook_request("patient-view")).json() == {"cards": []}  # T = 1
    rows = dial.rows("SELECT threshold, decision, p_proactive FROM hook_calls ORDER BY id")
    assert [(r["threshold"], r["decision"]) for r in rows[-2:]] == [
        (0.0, "card"),
        (1.0, "restraint"),
    ]
    assert all(0 < r["p_proactive"] < 1 for r in rows[-2:])


def test_feedback_lands_in_the_audit_and_the_dashboard_counts_it(
    servers: dict[str, Server], tmp_path: Path
) -> None:
    dial = servers["dial"]
    cards = [dial.post(ORDER, hook_request()).json()["cards"][0]["uuid"] for _ in range(3)]
    fb = ORDER + "/feedback"
    items = [
        {
            "card": cards[0],
            "outcome": "accepted",
            "acceptedSuggestions": [],
            "outcomeTimestamp": "2026-12-07T08:00:00Z",
        },
        {
            "card": cards[1],
            "outcome": "overridden",
            "outcomeTimestamp": "2026-12-07T08:01:00Z",
            "overrideReason": {
                "reason": {
                    "code": "not-relevant",
                    "system": "https://behaviorsft.invalid/cds-hooks/override-reason",
                    "display": "Not relevant to this patient",
                }
            },
        },
    ]
    for _ in range(2):  # posted twice: idempotent
        resp = httpx.post(dial.url + fb, json={"feedback": items}, headers=dial.headers(fb))
        assert resp.status_code == 200, resp.text
    assert len(dial.rows("SELECT * FROM feedback")) == 2
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "behaviorsft.cli",
            "serve",
            "audit",
            "--db",
            f"sqlite:///{dial.db}",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    import json

    summary = json.loads((out / "audit.json").read_text())
    n_cards = len(dial.rows("SELECT * FROM hook_calls WHERE decision = 'card'"))
    assert summary["cards"] == n_cards
    assert summary["feedback"]["accepted"] == 1 and summary["feedback"]["overridden"] == 1
    assert summary["feedback"]["no_feedback"] == n_cards - 2
    assert summary["override_reasons"] == {"not-relevant (Not relevant to this patient)": 1}
    assert summary["by_service"]["order-sign-safety"]["override_rate"] == 0.5
    assert (out / "audit.png").stat().st_size > 0
    assert "| order-sign-safety |" in (out / "audit.md").read_text()
    events = (out / "fhir" / "AuditEvent.ndjson").read_text().splitlines()
    provenance = (out / "fhir" / "Provenance.ndjson").read_text().splitlines()
    assert len(events) == summary["calls"] and len(provenance) == n_cards
    assert json.loads(events[0])["resourceType"] == "AuditEvent"
    # No PHI in the service log: patient ids appear only hashed.


def test_fifty_concurrent_calls_lose_no_audit_row(servers: dict[str, Server]) -> None:
    dial = servers["dial"]
    before = len(dial.rows())
    bodies = [hook_request() for _ in range(50)]

    async def run() -> list[int]:
        async with httpx.AsyncClient(timeout=120) as client:
            return list(
                await asyncio.gather(
                    *[
                        client.post(dial.url + ORDER, json=b, headers=dial.headers(ORDER))
                        for b in bodies
                    ]
                )
            )

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 50
    rows = dial.rows()
    assert len(rows) == before + 50
    got = {r["hook_instance"] for r in rows}
    assert {b["hookInstance"] for b in bodies} <= got
    cards = {r.json()["cards"][0]["uuid"] for r in responses}
    assert cards <= {r["card_uuid"] for r in rows}


def test_killed_mid_request_leaves_no_partial_row(servers: dict[str, Server]) -> None:
    victim = servers["process"]  # the real `behaviorsft serve` command
    assert victim.proc is not None
    bodies = [hook_request() for _ in range(40)]
    answered: list[str] = []

    async def run() -> None:
        async with httpx.AsyncClient(timeout=60) as client:

            async def one(b: dict[str, Any]) -> None:
                r = await client.post(victim.url + ORDER, json=b, headers=victim.headers(ORDER))
                if r.status_code == 200:
                    answered.append(b["hookInstance"])
                    if victim.proc.poll() is None:
                        victim.proc.send_signal(signal.SIGKILL)

            await asyncio.gather(*[one(b) for b in bodies], return_exceptions=True)

    # Before the kill: one call through the process server, and its log holds no PHI.
    first = victim.post(ORDER, hook_request())
    assert first.status_code == 200 and len(first.json()["cards"]) == 1
    log = victim.log_path.read_text()
    assert "pat-1" not in log and "Penicillin" not in log and "Amoxicillin" not in log
    assert "decision=card" in log

    asyncio.run(run())
    victim.proc.wait(timeout=10)
    assert answered and len(answered) < len(bodies)  # killed while calls were in flight
    con = sqlite3.connect(victim.db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    rows = victim.rows()
    sent = {b["hookInstance"] for b in bodies}
    mine = [r for r in rows if r["hook_instance"] in sent]
    # Every answered call was audited before it was answered; every row is whole.
    assert set(answered) <= {r["hook_instance"] for r in mine}
    for r in mine:
        assert r["decision"] == "card"
        assert r["card_uuid"] and r["summary"] and r["indicator"] and r["prompt_hash"]
        assert r["patient_hash"] and r["latency_ms"] > 0 and r["model"]
    uuid.UUID(mine[0]["card_uuid"])
