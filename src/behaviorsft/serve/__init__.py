"""`behaviorsft serve`: a CDS Hooks 2.0 service around a behaviour-conditioned agent.

Modules: :mod:`.settings` (the YAML config), :mod:`.db` (the append-only
audit tables), :mod:`.security` (the CDS Hooks JWT), :mod:`.agent` (a record
in, the dial's decision and the agent's text out), :mod:`.cards` (discovery
and card building), :mod:`.app` (the FastAPI app factory) and :mod:`.report`
(`serve audit`: the alert-fatigue dashboard and FHIR export).

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
        "pyjwt": ("jwt",),
        "cryptography": ("cryptography",),
    }
    require_packages("behaviorsft serve", packages, WEB_INSTALL)
