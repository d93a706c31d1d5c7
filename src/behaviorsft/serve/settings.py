"""The service's configuration: one YAML file, every field with its meaning.

Command-line options (``--model``, ``--db``, ``--threshold``) override the
file. Example::

    model: hf/Qwen/Qwen2.5-0.5B-Instruct:runs/bsft/final
    db: sqlite:///serve/audit.db
    threshold: 0.6                 # default for every service
    services:
      order-sign-safety: {threshold: 0.4}
    indicator_tiers: {warning: 0.75, critical: 0.9}
    base_url: https://cds.example.org     # the JWT `aud` is base_url + request path
    issuers:
      - iss: https://ehr.example.org
        jwks_file: /etc/behaviorsft/ehr-jwks.json     # or jwks_url: https://...
    hash_salt_env: BEHAVIORSFT_SERVE_SALT
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from behaviorsft.dial import Force

# The two services this package defines; ids are stable (EHRs register them).
SERVICE_HOOKS = {"patient-view-proactive": "patient-view", "order-sign-safety": "order-sign"}


class IssuerConfig(BaseModel):
    """One EHR allowed to call the service, and where its public keys are."""

    model_config = ConfigDict(extra="forbid")

    iss: str = Field(description="The JWT `iss` the EHR sends (its base URL).")
    jwks_file: Path | None = Field(None, description="A local JWKS JSON file of its keys.")
    jwks_url: str | None = Field(None, description="Or the URL of its JWKS (fetched, cached).")

    @model_validator(mode="after")
    def _one_source(self) -> IssuerConfig:
        if (self.jwks_file is None) == (self.jwks_url is None):
            raise ValueError(f"issuer {self.iss!r}: give exactly one of jwks_file and jwks_url")
        return self


class ServiceConfig(BaseModel):
    """Per-service overrides."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(None, description="P(<proactive>) needed for a card.")
    enabled: bool = Field(True, description="False hides the service from discovery.")


class IndicatorTiers(BaseModel):
    """P(<proactive>) from which a card is a warning or critical (below: info)."""

    model_config = ConfigDict(extra="forbid")

    warning: float = Field(0.75, description="P from which the indicator is 'warning'.")
    critical: float = Field(0.9, description="P from which the indicator is 'critical'.")

    @model_validator(mode="after")
    def _ordered(self) -> IndicatorTiers:
        for name in ("warning", "critical"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"indicator_tiers.{name}: {value} is not in [0, 1]")
        if self.warning > self.critical:
            raise ValueError("indicator_tiers: warning must be <= critical")
        return self


class ServeSettings(BaseModel):
    """Everything `behaviorsft serve` reads from its config file and options."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="The agent: hf/... or openai-compatible/...")
    base_url: str | None = Field(
        None, description="openai-compatible/ models: the model server's URL."
    )
    model_options: dict[str, Any] = Field(
        default_factory=dict, description="Backend options (dtype, device, ...)."
    )
    model_version: str | None = Field(
        None, description="A version label recorded in the audit (default: the package version)."
    )
    db: str = Field("sqlite:///behaviorsft-serve.db", description="SQLAlchemy URL of the audit.")
    threshold: float = Field(0.5, description="Default P(<proactive>) needed for a card.")
    force: Force = Field(Force.NONE, description="Pin the first token (testing only).")
    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    indicator_tiers: IndicatorTiers = Field(default_factory=IndicatorTiers)
    max_new_tokens: int = Field(256, ge=1, description="Length limit of the agent's reply.")
    torch_threads: int | None = Field(
        None,
        ge=1,
        description="hf/ models on CPU: torch intra-op threads (default: torch's choice). "
        "1 is fastest on a shared or small machine, where spinning threads compete.",
    )
    service_url: str | None = Field(
        None,
        description="Public base URL of this service: the JWT `aud` is this plus the path "
        "(default: the URL the request came in on).",
    )
    issuers: list[IssuerConfig] = Field(default_factory=list, description="Allowed EHRs.")
    require_jwt: bool = Field(
        True, description="False accepts unauthenticated calls (local development only)."
    )
    jwt_leeway_s: int = Field(30, ge=0, description="Clock skew allowed on `exp`/`iat`.")
    max_body_bytes: int = Field(5_000_000, ge=1024, description="Largest request body accepted.")
    hash_salt: str | None = Field(None, description="Salt of the patient-id hash (prefer env).")
    hash_salt_env: str = Field(
        "BEHAVIORSFT_SERVE_SALT", description="Environment variable holding the salt."
    )
    store_record: bool = Field(
        False, description="Also store the imported record's JSON in the audit (PHI!)."
    )
    fhir_timeout_s: float = Field(10.0, gt=0, description="Timeout of fetches from fhirServer.")

    @field_validator("threshold")
    @classmethod
    def _probability(cls, value: float) -> float:
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{value} is not in [0, 1]")
        return value

    @model_validator(mode="after")
    def _known_services(self) -> ServeSettings:
        for sid, svc in self.services.items():
            if sid not in SERVICE_HOOKS:
                raise ValueError(
                    f"services.{sid}: unknown service; known: {', '.join(SERVICE_HOOKS)}"
                )
            if svc.threshold is not None:
                self._probability(svc.threshold)
        return self

    def threshold_for(self, service_id: str) -> float:
        """The threshold of ``service_id`` (its own, else the default)."""
        svc = self.services.get(service_id)
        return svc.threshold if svc is not None and svc.threshold is not None else self.threshold

    def salt(self) -> str:
        """The patient-hash salt: the environment variable, else the config's value."""
        value = os.environ.get(self.hash_salt_env) or self.hash_salt
        if not value:
            raise ValueError(
                f"no salt for hashing patient ids: set ${self.hash_salt_env} (or hash_salt in "
                "the config); without it hashed ids could be reversed by a dictionary"
            )
        return value


def load_settings(path: Path | None, **overrides: Any) -> ServeSettings:
    """Settings from the YAML at ``path`` (optional), then ``overrides`` that are not None."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: not valid YAML: {exc}") from exc
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        data.update(raw)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ServeSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "<config>"
        origin = f"{path}: " if path is not None else ""
        raise ValueError(f"{origin}{where}: {first['msg']}") from None
