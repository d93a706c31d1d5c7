"""An openai-compatible/ agent behind the service: suggestions, top-logprob dial, model errors.

The agent is the real OpenAI-compatible backend talking to a small scripted
chat-completions server, so the card carries suggestions the way a trained
agent's reply would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from behaviorsft.serve.agent import Agent
from behaviorsft.serve.app import create_app
from behaviorsft.serve.db import Feedback, HookCall
from behaviorsft.serve.settings import IssuerConfig, ServeSettings
from behaviorsft.taxonomy import PROACTIVE_TOKEN, REACTIVE_TOKEN
from tests.chat_stub import ScriptedChat
from tests.serve.conftest import ISSUER, SALT, Keys, hook_request

BASE = "http://testserver"
ORDER = "/cds-services/order-sign-safety"
REPLY = (
    " Amoxicillin ordered despite a documented penicillin allergy.\n"
    "The record lists a penicillin allergy; amoxicillin is a penicillin.\n"
    "Suggest: Cancel the amoxicillin order\n"
    "Suggest: Prescribe doxycycline instead"
)


@pytest.fixture
def endpoint() -> Iterator[ScriptedChat]:
    ep = ScriptedChat(
        PROACTIVE_TOKEN + REPLY, PROACTIVE_TOKEN, [(PROACTIVE_TOKEN, 0.8), (REACTIVE_TOKEN, 0.2)]
    )
    yield ep
    ep.close()


@pytest.fixture
def client(
    endpoint: ScriptedChat, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    from behaviorsft.models import load_model

    monkeypatch.setenv("OPENAI_API_KEY", "test")
    model = load_model("openai-compatible/agent", base_url=endpoint.url, max_retries=0)
    agent = Agent(model, max_new_tokens=64)
    settings = ServeSettings(
        db=f"sqlite:///{tmp_path / 'audit.db'}",
        hash_salt=SALT,
        service_url=BASE,
        issuers=[IssuerConfig(iss=ISSUER, jwks_file=keys.jwks_file)],
        threshold=0.7,
    )
    yield TestClient(create_app(settings, agent=agent))
    agent.close()


def _auth(keys: Keys, path: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys.token(BASE + path)}"}


def test_card_from_an_api_agent_with_suggestions_and_feedback(
    client: TestClient, keys: Keys
) -> None:
    resp = client.post(ORDER, json=hook_request(), headers=_auth(keys, ORDER))
    assert resp.status_code == 200, resp.text
    (card,) = resp.json()["cards"]
    assert card["summary"] == "Amoxicillin ordered despite a documented penicillin allergy."
    assert card["detail"].startswith("The record lists a penicillin allergy")
    assert card["indicator"] == "warning"  # P = 0.8: between the 0.75 and 0.9 tiers
    assert card["selectionBehavior"] == "at-most-one"
    labels = [s["label"] for s in card["suggestions"]]
    assert labels == ["Cancel the amoxicillin order", "Prescribe doxycycline instead"]
    with Session(client.app.state.engine) as s:
        row = s.scalars(select(HookCall)).one()
    assert row.p_proactive == pytest.approx(0.8) and row.model == "openai-compatible/agent"

    fb = ORDER + "/feedback"
    first = card["suggestions"][0]["uuid"]
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": first}],
        "outcomeTimestamp": "2026-12-07T08:00:00Z",
    }
    assert client.post(fb, json={"feedback": [item]}, headers=_auth(keys, fb)).status_code == 200
    bad = {**item, "acceptedSuggestions": [{"id": "not-a-suggestion"}]}
    resp = client.post(fb, json={"feedback": [bad]}, headers=_auth(keys, fb))
    assert resp.status_code == 400 and "acceptedSuggestions" in resp.json()["error"]
    bad = {**item, "outcome": "overridden"}
    resp = client.post(fb, json={"feedback": [bad]}, headers=_auth(keys, fb))
    assert resp.status_code == 400
    with Session(client.app.state.engine) as s:
        (saved,) = s.scalars(select(Feedback))
    assert saved.accepted_suggestions == [first]


def test_a_failing_model_is_a_503_and_an_error_row(
    client: TestClient, keys: Keys, endpoint: ScriptedChat
) -> None:
    endpoint.fail = True
    resp = client.post(ORDER, json=hook_request(), headers=_auth(keys, ORDER))
    assert resp.status_code == 503
    with Session(client.app.state.engine) as s:
        row = s.scalars(select(HookCall)).one()
    assert row.decision == "error" and row.error and row.card_uuid is None
