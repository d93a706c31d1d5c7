"""Raters and administrators: argon2id passwords and one-time sign-in links.

A sign-in link carries a random token; the database keeps only its SHA-256,
so a copy of the database does not let anyone sign in. A token works once and
expires (7 days by default).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from behaviorsft.study.db import SignInToken, User, as_utc, utcnow

TOKEN_DAYS = 7
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_HASHER = PasswordHasher()
# Verified against when the user is unknown, so both cases take the same time.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


def check_name(name: str) -> str:
    """A user name: letters, digits, ``_ . @ -``, at most 128 characters."""
    if not NAME_RE.match(name):
        raise ValueError(
            f"user name {name!r}: use letters, digits and _ . @ - (start with a letter or "
            "digit, at most 128 characters)"
        )
    return name


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("password: at least 8 characters")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches the argon2 hash ``stored``."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_signin_token(session: Session, user: User, *, days: int = TOKEN_DAYS) -> str:
    """Add a one-time sign-in token for ``user`` and return it (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        SignInToken(
            user_id=user.id,
            token_hash=token_hash(token),
            expires_at=utcnow() + timedelta(days=days),
        )
    )
    return token


def add_user(
    engine: Engine, name: str, *, admin: bool = False, password: str | None = None
) -> tuple[User, str | None]:
    """Create user ``name`` (or update an existing one's admin flag and password).

    Returns the user and, when no password was given, a fresh one-time token.
    """
    check_name(name)
    hashed = hash_password(password) if password is not None else None
    with Session(engine, expire_on_commit=False) as s, s.begin():
        user = s.scalars(select(User).where(User.name == name)).one_or_none()
        if user is None:
            user = User(name=name, is_admin=admin)
            s.add(user)
        else:
            user.is_admin = user.is_admin or admin
        if hashed is not None:
            user.password_hash = hashed
        s.flush()
        token = new_signin_token(s, user) if password is None else None
    return user, token


def consume_token(session: Session, token: str, now: datetime | None = None) -> User | None:
    """The user a valid, unused token belongs to, marking it used; else None.

    One conditional UPDATE, so two requests racing with the same link cannot
    both sign in.
    """
    now = now or utcnow()
    hashed = token_hash(token)
    done = session.execute(
        update(SignInToken)
        .where(
            SignInToken.token_hash == hashed,
            SignInToken.used_at.is_(None),
            SignInToken.expires_at >= now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        return None
    user_id = session.scalar(select(SignInToken.user_id).where(SignInToken.token_hash == hashed))
    return session.get(User, user_id) if user_id is not None else None


def token_is_valid(session: Session, token: str, now: datetime | None = None) -> bool:
    """Whether ``token`` would sign someone in (without using it)."""
    now = now or utcnow()
    row = session.scalars(
        select(SignInToken).where(SignInToken.token_hash == token_hash(token))
    ).one_or_none()
    expires = as_utc(row.expires_at) if row is not None else None
    return row is not None and row.used_at is None and expires is not None and expires >= now
