"""Alembic environment of the study database (run through :func:`behaviorsft.study.db.upgrade`).

The engine comes from the caller (``config.attributes["engine"]``); there is no
alembic.ini: the package is the only place the migrations live.
"""

from __future__ import annotations

from alembic import context

from behaviorsft.study.db import VERSION_TABLE, Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters tables by copying them; PostgreSQL alters in place.
        render_as_batch=connection.dialect.name == "sqlite",
        version_table=VERSION_TABLE,
    )
    context.run_migrations()
