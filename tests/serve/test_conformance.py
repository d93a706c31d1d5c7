"""CDS Hooks 2.0 conformance of `behaviorsft serve`, through FastAPI's TestClient."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from behaviorsft.dial import DialReading, Force
from behaviorsft.serve.agent import Agent, AgentReply, parse_reply
from behaviorsft.serve.app import create_app
from behaviorsft.serve.cards import OVERRIDE_REASONS, PREFETCH, build_card
from behaviorsft.serve.db import AppendOnlyError, Feedback, HookCall, make_engine
from behaviorsft.serve.settings import IndicatorTiers, IssuerConfig, ServeSettings
from tests.serve.conftest import ISSUER, SALT, Keys, hook_request

BASE = "http://testserver"
ORDER = "/cds-services/order-sign-safety"
VIEW = "/cds-services/patient-view-proactive"
INDICATORS = {"info", "warning", "critical"}


@pytest.fixture(scope="module")
def agent(tiny_agent_model: Path) -> Agent:
    from behaviorsft.models import load_model

    model = load_model(f"hf/{tiny_agent_model}", dtype="float32", device="cpu")
    a = Agent(model, max_new_tokens=8)
    yield a
    a.close()


def _settings(tmp_path: Path, keys: Keys, **kw: Any) -> ServeSettings:
    base: dict[str, Any] = {
        "db": f"sqlite:///{tmp_path / 'audit.db'}",
        "hash_salt": SALT,
        "service_url": BASE,
        "issuers": [IssuerConfig(iss=ISSUER, jwks_file=keys.jwks_file)],
        "threshold": 0.5,
    }
    base.update(kw)
    return ServeSettings(**base)


def _client(tmp_path: Path, keys: Keys, agent: Agent, **kw: Any) -> TestClient:
    return TestClient(create_app(_settings(tmp_path, keys, **kw), agent=agent))


def _auth(keys: Keys, path: str, **kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.token(BASE + path, **kw)}"}


def _rows(client: TestClient, model: type) -> list[Any]:
    with Session(client.app.state.engine) as s:
        return list(s.scalars(select(model)))


def _assert_card(card: dict[str, Any]) -> None:
    uuid.UUID(card["uuid"])
    assert card["indicator"] in INDICATORS
    assert 0 < len(card["summary"]) <= 140
    assert isinstance(card["detail"], str)
    assert card["source"]["label"]
    assert card["overrideReasons"]
    for reason in card["overrideReasons"]:
        assert reason["code"] and reason["system"] and reason["display"]
    if "suggestions" in card:
        assert card["selectionBehavior"] in ("at-most-one", "any")
        for s in card["suggestions"]:
            assert s["label"]
            uuid.UUID(s["uuid"])


def test_discovery_lists_both_hooks_with_prefetch(tmp_path: Path, keys: Keys, agent: Agent) -> None:
    client = _client(tmp_path, keys, agent)
    doc = client.get("/cds-services").json()
    hooks = {s["hook"]: s for s in doc["services"]}
    assert set(hooks) == {"patient-view", "order-sign"}
    for svc in doc["services"]:
        assert svc["id"] and svc["description"]
        assert {k: v.split("?")[0].split("/")[0] for k, v in svc["prefetch"].items()} == {
            "patient": "Patient",
            "conditions": "Condition",
            "medications": "MedicationRequest",
            "allergies": "AllergyIntolerance",
            "observations": "Observation",
        }
        assert "{{context.patientId}}" in svc["prefetch"]["patient"]
    assert doc["services"][0]["prefetch"] == PREFETCH


@pytest.mark.parametrize(("path", "hook"), [(ORDER, "order-sign"), (VIEW, "patient-view")])
def test_both_hooks_card_when_forced_proactive(
    tmp_path: Path, keys: Keys, agent: Agent, path: str, hook: str
) -> None:
    client = _client(tmp_path, keys, agent, force="proactive")
    resp = client.post(path, json=hook_request(hook), headers=_auth(keys, path))
    assert resp.status_code == 200, resp.text
    cards = resp.json()["cards"]
    assert len(cards) == 1
    _assert_card(cards[0])
    (row,) = _rows(client, HookCall)
    assert row.decision == "card" and row.card_uuid == cards[0]["uuid"]
    assert row.hook == hook and row.force == "proactive"
    assert row.patient_hash not in (None, "pat-1") and len(row.patient_hash) == 64
    assert row.prompt_hash and row.p_proactive is not None and 0 <= row.p_proactive <= 1
    assert row.record_json is None  # not stored unless configured


@pytest.mark.parametrize(("path", "hook"), [(ORDER, "order-sign"), (VIEW, "patient-view")])
def test_restraint_is_an_empty_card_list(
    tmp_path: Path, keys: Keys, agent: Agent, path: str, hook: str
) -> None:
    client = _client(tmp_path, keys, agent, force="reactive")
    resp = client.post(path, json=hook_request(hook), headers=_auth(keys, path))
    assert resp.status_code == 200
    assert resp.json() == {"cards": []}
    (row,) = _rows(client, HookCall)
    assert row.decision == "restraint" and row.card_uuid is None


def test_threshold_decides_unforced_calls(tmp_path: Path, keys: Keys, agent: Agent) -> None:
    seen = []
    for t in (0.0, 1.0):
        client = _client(tmp_path / str(t), keys, agent, threshold=t)
        resp = client.post(ORDER, json=hook_request(), headers=_auth(keys, ORDER))
        seen.append(len(resp.json()["cards"]))
        (row,) = _rows(client, HookCall)
        assert row.threshold == t
        assert row.p_proactive is not None and 0 < row.p_proactive < 1  # random model
    assert seen == [1, 0]


def test_per_service_threshold_from_config(tmp_path: Path, keys: Keys, agent: Agent) -> None:
    client = _client(
        tmp_path, keys, agent, threshold=1.0, services={"order-sign-safety": {"threshold": 0.0}}
    )
    order = client.post(ORDER, json=hook_request(), headers=_auth(keys, ORDER)).json()
    view = client.post(VIEW, json=hook_request("patient-view"), headers=_auth(keys, VIEW)).json()
    assert len(order["cards"]) == 1 and view["cards"] == []


def test_card_rules_with_suggestions() -> None:
    reply = parse_reply(
        "<proactive> Amoxicillin ordered despite a documented penicillin allergy.\n"
        "Penicillin allergy is recorded; amoxicillin is a penicillin.\n"
        "Suggest: Cancel the amoxicillin order\nSuggest: Prescribe doxycycline instead"
    )
    assert reply.summary.startswith("Amoxicillin ordered")
    assert reply.suggestions == ["Cancel the amoxicillin order", "Prescribe doxycycline instead"]
    tiers = IndicatorTiers(warning=0.7, critical=0.9)
    for p, want in ((0.5, "info"), (0.7, "warning"), (0.95, "critical")):
        reading = DialReading("x", p, 0.4, Force.NONE, True)
        card = build_card(reply, reading, model_label="m", tiers=tiers)
        _assert_card(card)
        assert card["indicator"] == want
        assert card["selectionBehavior"] == "at-most-one"
        assert [s["label"] for s in card["suggestions"]] == reply.suggestions
    long = build_card(AgentReply("word " * 100, "", []), reading, model_label="m", tiers=tiers)
    assert len(long["summary"]) <= 140 and "suggestions" not in long


def _card(client: TestClient, keys: Keys) -> str:
    resp = client.post(ORDER, json=hook_request(), headers=_auth(keys, ORDER))
    return resp.json()["cards"][0]["uuid"]


def test_feedback_is_idempotent_and_linked(tmp_path: Path, keys: Keys, agent: Agent) -> None:
    client = _client(tmp_path, keys, agent, force="proactive")
    card = _card(client, keys)
    fb = "/cds-services/order-sign-safety/feedback"
    item = {
        "card": card,
        "outcome": "overridden",
        "overrideReason": {"reason": dict(OVERRIDE_REASONS[1]), "userComment": "free text"},
        "outcomeTimestamp": "2026-12-07T08:00:00Z",
    }
    for _ in range(2):
        resp = client.post(fb, json={"feedback": [item]}, headers=_auth(keys, fb))
        assert resp.status_code == 200, resp.text
    (row,) = _rows(client, Feedback)
    assert row.card_uuid == card and row.outcome == "overridden"
    assert row.override_code == "already-addressed" and row.override_display == "Already addressed"
    accepted = {**item, "outcome": "accepted", "acceptedSuggestions": []}
    accepted.pop("overrideReason")
    client.post(fb, json={"feedback": [accepted]}, headers=_auth(keys, fb))
    assert len(_rows(client, Feedback)) == 2
    # An unknown card and a bad outcome are refused, and nothing is written.
    bad = client.post(
        fb, json={"feedback": [{**item, "card": str(uuid.uuid4())}]}, headers=_auth(keys, fb)
    )
    assert bad.status_code == 404
    bad = client.post(
        fb, json={"feedback": [{**item, "outcome": "ignored"}]}, headers=_auth(keys, fb)
    )
    assert bad.status_code == 400 and "outcome" in bad.json()["error"]
    assert len(_rows(client, Feedback)) == 2


def test_missing_prefetch_is_412(tmp_path: Path, keys: Keys, agent: Agent) -> None:
    client = _client(tmp_path, keys, agent)
    body = hook_request()
    del body["prefetch"]["allergies"]
    resp = client.post(ORDER, json=body, headers=_auth(keys, ORDER))
    assert resp.status_code == 412
    assert "allergies" in resp.json()["error"]
    assert _rows(client, HookCall) == []


def test_missing_prefetch_is_fetched_from_fhir_server(
    tmp_path: Path, keys: Keys, agent: Agent
) -> None:
    full = hook_request()["prefetch"]
    asked: list[tuple[str, str | None]] = []

    def fhir(request: httpx.Request) -> httpx.Response:
        asked.append((str(request.url), request.headers.get("authorization")))
        if request.url.path.endswith("/AllergyIntolerance"):
            return httpx.Response(200, json=full["allergies"])
        return httpx.Response(404, json={})

    settings = _settings(tmp_path, keys, force="proactive")
    app = create_app(
        settings, agent=agent, fhir_client=httpx.Client(transport=httpx.MockTransport(fhir))
    )
    client = TestClient(app)
    body = hook_request(
        fhirServer="https://fhir.test/r4",
        fhirAuthorization={
            "access_token": "tok",
            "token_type": "Bearer",
            "scope": "x",
            "expires_in": 300,
            "subject": "cds",
        },
    )
    del body["prefetch"]["allergies"]
    resp = client.post(ORDER, json=body, headers=_auth(keys, ORDER))
    assert resp.status_code == 200, resp.text
    assert asked == [("https://fhir.test/r4/AllergyIntolerance?patient=pat-1", "Bearer tok")]
    # A fetch that fails is a 412 too.
    del body["prefetch"]["conditions"]
    body["hookInstance"] = str(uuid.uuid4())
    assert client.post(ORDER, json=body, headers=_auth(keys, ORDER)).status_code == 412


def test_request_size_limit(tmp_path: Path, keys: Keys, agent: Agent) -> None:
    client = _client(tmp_path, keys, agent, max_body_bytes=4096)
    body = hook_request()
    body["context"]["padding"] = "x" * 10_000
    resp = client.post(ORDER, json=body, headers=_auth(keys, ORDER))
    assert resp.status_code == 413
    assert _rows(client, HookCall) == []


def _hs256(aud: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": aud, "exp": now + 60, "iat": now, "jti": "h"}
    return jwt.encode(claims, "secret-that-is-long-enough-for-hmac-sha256!", algorithm="HS256")


def _none(aud: str) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": aud, "exp": now + 60, "iat": now, "jti": "n"}
    return jwt.encode(claims, None, algorithm="none")


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda k: None, "missing Authorization"),
        (lambda k: _none(BASE + ORDER), "'none' refused"),
        (lambda k: _hs256(BASE + ORDER), "'HS256' refused"),
        (lambda k: k.token(BASE + ORDER, exp=int(time.time()) - 3600), "expired"),
        (lambda k: k.token("https://elsewhere/cds-services/x"), "aud"),
        (lambda k: k.token(BASE + ORDER, iss="https://rogue.test"), "not on this service"),
        (lambda k: k.token(BASE + ORDER, kid="nope"), "no key with kid"),
        (lambda k: k.token(BASE + ORDER, jti=None), "jti"),
    ],
    ids=[
        "missing",
        "alg-none",
        "hs256",
        "expired",
        "wrong-aud",
        "unknown-iss",
        "bad-kid",
        "no-jti",
    ],
)
def test_jwt_rejections(tmp_path: Path, keys: Keys, agent: Agent, make: Any, why: str) -> None:
    client = _client(tmp_path, keys, agent, force="proactive")
    token = make(keys)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = client.post(ORDER, json=hook_request(), headers=headers)
    assert resp.status_code == 401
    assert why in resp.json()["error"]
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert _rows(client, HookCall) == []


def test_jwt_accepts_es384_and_refuses_a_replayed_jti(
    tmp_path: Path, keys: Keys, agent: Agent
) -> None:
    client = _client(tmp_path, keys, agent, force="reactive")
    token = keys.token(BASE + ORDER, alg="ES384", kid="ec1")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post(ORDER, json=hook_request(), headers=headers).status_code == 200
    again = client.post(ORDER, json=hook_request(), headers=headers)
    assert again.status_code == 401 and "replayed" in again.json()["error"]


def test_audit_tables_are_append_only(tmp_path: Path, keys: Keys, agent: Agent) -> None:
    client = _client(tmp_path, keys, agent, force="proactive")
    _card(client, keys)
    engine = client.app.state.engine
    with Session(engine) as s:
        row = s.scalars(select(HookCall)).one()
        row.decision = "restraint"
        with pytest.raises(AppendOnlyError):
            s.commit()
    with Session(engine) as s:
        s.delete(s.scalars(select(HookCall)).one())
        with pytest.raises(AppendOnlyError):
            s.commit()
    # The database refuses too, whoever writes to it.
    raw = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    for sql in ("UPDATE hook_calls SET decision = 'x'", "DELETE FROM hook_calls"):
        with pytest.raises(Exception, match="append-only"), raw.begin() as conn:
            conn.execute(text(sql))
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(HookCall)) == 1
        assert s.scalars(select(HookCall)).one().decision == "card"


def test_bad_requests_name_the_field(tmp_path: Path, keys: Keys, agent: Agent) -> None:
    client = _client(tmp_path, keys, agent)
    body = hook_request()
    body["hook"] = "patient-view"
    resp = client.post(ORDER, json=body, headers=_auth(keys, ORDER))
    assert resp.status_code == 400 and "hook" in resp.json()["error"]
    body = hook_request()
    del body["context"]["patientId"]
    resp = client.post(ORDER, json=body, headers=_auth(keys, ORDER))
    assert resp.status_code == 400 and "patientId" in resp.json()["error"]
    resp = client.post(
        "/cds-services/nope", json=hook_request(), headers=_auth(keys, "/cds-services/nope")
    )
    assert resp.status_code == 404


def test_a_bad_record_is_400_and_its_content_is_not_logged(
    tmp_path: Path, keys: Keys, agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(tmp_path, keys, agent)
    body = hook_request()
    body["prefetch"]["patient"] = {"resourceType": "Patient", "id": "p1", "birthDate": "Zorblax-7"}
    with caplog.at_level("INFO", logger="behaviorsft.serve"):
        resp = client.post(ORDER, json=body, headers=_auth(keys, ORDER))
    assert resp.status_code == 400 and "birthDate" in resp.json()["error"]
    # Importer messages can quote record content: they go to the caller, not the log.
    assert "birthDate" not in caplog.text and "Zorblax" not in caplog.text
    assert "400" in caplog.text


def test_the_record_is_stored_only_when_configured(
    tmp_path: Path, keys: Keys, agent: Agent
) -> None:
    client = _client(tmp_path, keys, agent, force="reactive", store_record=True)
    assert client.post(ORDER, json=hook_request(), headers=_auth(keys, ORDER)).status_code == 200
    (row,) = _rows(client, HookCall)
    assert row.record_json is not None and row.record_json["id"] == "fhir:pat-1"
    assert [a["substance"] for a in row.record_json["allergies"]] == ["Penicillin"]


def test_jwks_fetched_from_the_issuers_url(keys: Keys) -> None:
    """An issuer configured by jwks_url: its keys come over HTTP (a loopback server here)."""
    import http.server
    import threading

    from behaviorsft.serve.security import AuthError, JWTVerifier

    body = keys.jwks_file.read_bytes()
    fetched: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
        verifier = JWTVerifier([IssuerConfig(iss=ISSUER, jwks_url=url)])
        aud = "http://127.0.0.1/cds-services/behaviorsft-order-sign"
        claims = verifier.verify(f"Bearer {keys.token(aud)}", aud)
        assert claims["iss"] == ISSUER
        assert fetched == ["/.well-known/jwks.json"]
        # The EC key of the same set verifies too (the set is cached: no second fetch needed).
        verifier.verify(f"Bearer {keys.token(aud, alg='ES384', kid='ec1')}", aud)
        # A kid the issuer's set does not have is refused with a reason.
        with pytest.raises(AuthError, match="signing key"):
            verifier.verify(f"Bearer {keys.token(aud, kid='nope')}", aud)
    finally:
        server.shutdown()
        server.server_close()
