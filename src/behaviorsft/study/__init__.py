"""`behaviorsft study`: the clinician study web app (validation and blinded comparison).

Modules: :mod:`.db` (tables, engine, Alembic migrations shipped in
``migrations/``), :mod:`.users` (argon2 passwords, one-time sign-in links),
:mod:`.create` (a study from a bench and, for comparison, generation runs),
:mod:`.answers` (saving and reading answers, one transaction each),
:mod:`.export` (the long-format CSV/JSONL files `study analyze` reads),
:mod:`.security` (signed cookies, CSRF, login rate limit) and :mod:`.app`
(the FastAPI app factory, Jinja2 templates and the vendored htmx/SortableJS).

Everything here needs the ``[web]`` extra; importing this package does not
import it, so the core CLI works without it.
"""

from __future__ import annotations

WEB_INSTALL = "pip install 'behaviorsft[web]'"


def require_web() -> None:
    """Raise MissingExtraError naming the pip command when the ``[web]`` extra is absent."""
    from behaviorsft.models.base import require_packages

    packages = {
        "fastapi": ("fastapi",),
        "uvicorn": ("uvicorn",),
        "sqlalchemy": ("sqlalchemy",),
        "alembic": ("alembic",),
        "jinja2": ("jinja2",),
        "argon2-cffi": ("argon2",),
        "itsdangerous": ("itsdangerous",),
        "python-multipart": ("python_multipart", "multipart"),
    }
    require_packages("behaviorsft study", packages, WEB_INSTALL)
