"""Fixtures of the serve tests: a tiny local hf/ model with the behaviour tokens, keys, records."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("jwt")
pytest.importorskip("transformers")

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from behaviorsft.taxonomy import BEHAVIOR_TOKENS

ISSUER = "https://ehr.test"
SALT = "test-salt"


@pytest.fixture(scope="session")
def tiny_agent_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Qwen2 whose tokenizer has <reactive>/<proactive> as single tokens (hf/<path>)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from behaviorsft.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("serve-model"), hidden_size=32, num_layers=2)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.add_tokens(list(BEHAVIOR_TOKENS), special_tokens=True)
    model = AutoModelForCausalLM.from_pretrained(path)
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


class Keys:
    """An EHR's signing keys and the JWKS file the service trusts."""

    def __init__(self, folder: Path) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP384R1())
        jwks = {
            "keys": [
                {
                    **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key())),
                    "kid": "rsa1",
                    "alg": "RS384",
                    "use": "sig",
                },
                {
                    **json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key())),
                    "kid": "ec1",
                    "alg": "ES384",
                    "use": "sig",
                },
            ]
        }
        self.jwks_file = folder / "jwks.json"
        self.jwks_file.write_text(json.dumps(jwks))

    def token(self, aud: str, *, alg: str = "RS384", kid: str = "rsa1", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
        body.update(claims)
        key = self.ec if alg.startswith("ES") else self.rsa
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    return Keys(tmp_path_factory.mktemp("keys"))


def _coded(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def prefetch(*, allergy: bool = True) -> dict[str, Any]:
    """A small record; ``allergy`` adds a penicillin allergy (the clash with amoxicillin)."""
    patient = {
        "resourceType": "Patient",
        "id": "pat-1",
        "gender": "female",
        "birthDate": "1956-03-02",
    }
    condition = {
        "resourceType": "Condition",
        "id": "cond-1",
        "subject": {"reference": "Patient/pat-1"},
        "code": _coded("http://snomed.info/sct", "233604007", "Pneumonia"),
        "clinicalStatus": _coded(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"
        ),
        "onsetDateTime": "2026-12-01",
    }
    allergies = []
    if allergy:
        allergies.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": "alg-1",
                "patient": {"reference": "Patient/pat-1"},
                "code": _coded("http://snomed.info/sct", "764146007", "Penicillin"),
                "recordedDate": "2020-01-01",
            }
        )
    observation = {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "subject": {"reference": "Patient/pat-1"},
        "code": _coded("http://loinc.org", "8310-5", "Body temperature"),
        "valueQuantity": {"value": 38.9, "unit": "Cel"},
        "effectiveDateTime": "2026-12-01T09:00:00Z",
    }
    return {
        "patient": patient,
        "conditions": _searchset(condition),
        "medications": _searchset(),
        "allergies": _searchset(*allergies),
        "observations": _searchset(observation),
    }


def draft_orders() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "MedicationRequest",
                    "id": "draft-1",
                    "status": "draft",
                    "intent": "order",
                    "subject": {"reference": "Patient/pat-1"},
                    "medicationCodeableConcept": _coded(
                        "http://www.nlm.nih.gov/research/umls/rxnorm", "723", "Amoxicillin 500 MG"
                    ),
                    "authoredOn": "2026-12-07",
                }
            }
        ],
    }


def hook_request(hook: str = "order-sign", *, allergy: bool = True, **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/1", "patientId": "pat-1"}
    if hook == "order-sign":
        context["draftOrders"] = draft_orders()
    body = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": prefetch(allergy=allergy),
    }
    body.update(extra)
    return body
