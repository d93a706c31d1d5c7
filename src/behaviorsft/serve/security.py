"""The CDS Hooks bearer JWT: who may call, checked on every request.

Rules (CDS Hooks 2.0, "Trusting CDS Clients"):

* asymmetric signatures only (RS/PS/ES families); ``alg: none`` and every
  HMAC algorithm are refused before any key is looked at, so a public key can
  never be used as an HMAC secret;
* the ``iss`` must be on the configured allowlist, and the signature must
  verify against that issuer's JWKS (a local file or a URL);
* ``exp``, ``iat`` and ``jti`` are required; ``aud`` must be this service's
  endpoint URL;
* a ``jti`` seen before, while its token is still unexpired, is a replay.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import jwt

from behaviorsft.serve.settings import IssuerConfig

ALLOWED_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
)


class AuthError(Exception):
    """A request whose JWT is missing or not acceptable (HTTP 401)."""


class _ReplayCache:
    """jti values seen, kept until their token expires."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def check_and_add(self, iss: str, jti: str, exp: float) -> bool:
        """True the first time (iss, jti) is seen while unexpired; False on a replay."""
        now = time.time()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: v for k, v in self._seen.items() if v >= now}
            seen = self._seen.get((iss, jti))
            if seen is not None and seen >= now:
                return False
            self._seen[(iss, jti)] = exp
            return True


class JWTVerifier:
    """Verify CDS Hooks JWTs against an issuer allowlist."""

    def __init__(self, issuers: Sequence[IssuerConfig], *, leeway_s: int = 30) -> None:
        self.leeway_s = leeway_s
        self._keysets: dict[str, jwt.PyJWKSet] = {}
        self._clients: dict[str, jwt.PyJWKClient] = {}
        for issuer in issuers:
            if issuer.jwks_file is not None:
                try:
                    data = json.loads(issuer.jwks_file.read_text(encoding="utf-8"))
                    self._keysets[issuer.iss] = jwt.PyJWKSet.from_dict(data)
                except (OSError, ValueError, jwt.PyJWTError) as exc:
                    raise ValueError(
                        f"issuer {issuer.iss!r}: jwks_file {issuer.jwks_file}: {exc}"
                    ) from exc
            else:
                self._clients[issuer.iss] = jwt.PyJWKClient(str(issuer.jwks_url), lifespan=300)
        self._replays = _ReplayCache()

    def _key(self, iss: str, token: str, kid: str | None) -> Any:
        if iss in self._clients:
            try:
                return self._clients[iss].get_signing_key_from_jwt(token).key
            except jwt.PyJWTError as exc:
                raise AuthError(f"no signing key of issuer {iss!r} for this token: {exc}") from exc
        keys = self._keysets[iss].keys
        if kid is not None:
            match = [k for k in keys if k.key_id == kid]
        else:
            match = list(keys) if len(keys) == 1 else []
        if not match:
            raise AuthError(
                f"issuer {iss!r} has no key with kid {kid!r}"
                if kid is not None
                else f"the token has no kid and issuer {iss!r} has several keys"
            )
        return match[0].key

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The token's claims, or AuthError saying what is wrong."""
        if not authorization:
            raise AuthError("missing Authorization header: CDS Hooks calls carry a bearer JWT")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <JWT>'")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"not a JWT: {exc}") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthError(
                f"JWT alg {alg!r} refused: only asymmetric algorithms "
                f"({', '.join(ALLOWED_ALGORITHMS)}) are accepted"
            )
        iss = unverified.get("iss")
        if not isinstance(iss, str) or (iss not in self._keysets and iss not in self._clients):
            raise AuthError(f"JWT issuer {iss!r} is not on this service's allowlist")
        key = self._key(iss, token, header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=audience,
                issuer=iss,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "jti", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("JWT expired (exp is in the past)") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError(f"JWT aud does not name this endpoint ({audience})") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"JWT lacks a required claim: {exc.claim}") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"JWT rejected: {exc}") from exc
        if not self._replays.check_and_add(iss, str(claims["jti"]), float(claims["exp"])):
            raise AuthError("JWT replayed: this jti was already used")
        return claims
