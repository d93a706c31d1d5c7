"""A throwaway PostgreSQL database for the tests and benchmarks that run on one.

``.ci/run`` starts a server on loopback and exports its URL as
``BEHAVIORSFT_TEST_POSTGRES_URL``; the user must be allowed to create databases.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "BEHAVIORSFT_TEST_POSTGRES_URL"


@contextmanager
def scratch_database(url: str, prefix: str, connect_timeout: int = 5) -> Iterator[str]:
    """A fresh database on the server at ``url`` (its URL), dropped afterwards.

    Raises when the server cannot be reached, before anything is created.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = create_engine(
        parsed, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": connect_timeout}
    )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield parsed.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
