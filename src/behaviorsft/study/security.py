"""Sessions, CSRF tokens and the login rate limit of the study app.

The session is a cookie signed with itsdangerous (HttpOnly, SameSite=Lax,
Secure over HTTPS) holding the user id and a random CSRF token; every POST
must send that token back in the form (``csrf_token``) or the
``X-CSRF-Token`` header. Before sign-in, a short-lived signed "pre-session"
cookie carries the CSRF token of the sign-in forms.

The secret comes from ``BEHAVIORSFT_STUDY_SECRET`` or, when unset, from the
database, where it is generated once, so sessions survive a restart and every
worker process of one deployment signs alike.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from behaviorsft.study.db import Setting

SECRET_ENV = "BEHAVIORSFT_STUDY_SECRET"
SESSION_COOKIE = "bsft_study"
PRE_COOKIE = "bsft_study_pre"
SESSION_SECONDS = 12 * 3600
PRE_SECONDS = 3600


def load_secret(engine: Engine, given: str | None = None) -> str:
    """The signing secret: ``given``, else the environment, else the database's (made once)."""
    if given:
        return given
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV]
    with Session(engine) as s:
        row = s.get(Setting, "secret")
        if row is not None:
            return row.value
    try:
        with Session(engine) as s, s.begin():
            s.add(Setting(key="secret", value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass  # another process made it first: use theirs
    with Session(engine) as s:
        value = s.scalars(select(Setting.value).where(Setting.key == "secret")).one()
    return value


@dataclass
class SessionData:
    user_id: int
    csrf: str


class Signer:
    """Signs and reads the session and pre-session cookies."""

    def __init__(self, secret: str) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="behaviorsft.study.session")
        self._pre = URLSafeTimedSerializer(secret, salt="behaviorsft.study.pre")

    def session_cookie(self, user_id: int) -> tuple[str, str]:
        """A new session's cookie value and its CSRF token."""
        csrf = secrets.token_urlsafe(24)
        return self._session.dumps({"u": user_id, "c": csrf}), csrf

    def read_session(self, value: str | None) -> SessionData | None:
        if not value:
            return None
        try:
            data: Any = self._session.loads(value, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), int):
            return None
        return SessionData(user_id=data["u"], csrf=str(data.get("c", "")))

    def pre_cookie(self) -> tuple[str, str]:
        csrf = secrets.token_urlsafe(24)
        return self._pre.dumps(csrf), csrf

    def read_pre(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            data = self._pre.loads(value, max_age=PRE_SECONDS)
        except BadSignature:
            return None
        return data if isinstance(data, str) else None


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two CSRF tokens (False when either is missing)."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


class LoginLimiter:
    """At most ``attempts`` failed sign-ins per ``window`` seconds per client and per name.

    Failures are counted in memory (one process); a success does not clear the
    client's count, so guessing cannot be interleaved with a known password.
    """

    def __init__(self, attempts: int = 5, window: float = 300.0) -> None:
        self.attempts = attempts
        self.window = window
        self._fails: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails[key]
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> int:
        """Seconds until ``keys`` may try again (0: allowed now)."""
        now = time.monotonic()
        wait = 0.0
        with self._lock:
            for key in keys:
                q = self._recent(key, now)
                if len(q) >= self.attempts:
                    wait = max(wait, q[0] + self.window - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
