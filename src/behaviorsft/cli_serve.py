"""Serving commands: `serve` (the CDS Hooks service) and `serve audit` (its dashboard).

Registered on the main app with ``register(app)``. Everything web-related is
imported inside the commands, so the CLI works without the ``[web]`` extra
and `serve` then names the pip command to run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console

from behaviorsft.exit_codes import fail, require_or_exit

console = Console()
err_console = Console(stderr=True)

serve_app = typer.Typer(
    help="Serve a behaviour-conditioned agent as a CDS Hooks 2.0 service (extra [web]); "
    "`serve audit` reports its audit trail.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _need_web() -> None:
    from behaviorsft.serve import require_web

    require_or_exit(require_web)


@serve_app.callback()
def serve_cmd(
    ctx: typer.Context,
    model: str | None = typer.Option(
        None,
        "--model",
        help="hf/BASE[:ADAPTER] or openai-compatible/NAME (or `model:` in --config).",
    ),
    db: str | None = typer.Option(
        None,
        "--db",
        help="Audit database URL: sqlite:///path (default) or postgresql+psycopg://...",
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", help="P(<proactive>) needed for a card, in [0, 1] (default 0.5)."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="YAML settings (see docs/serving.md)."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="Server URL of an openai-compatible/ model."
    ),
    force: str | None = typer.Option(
        None, "--force", help="none|reactive|proactive: pin the first token (testing only)."
    ),
    option: list[str] = typer.Option(
        [], "--option", help="Model backend option KEY=VALUE (e.g. dtype=float32); repeatable."
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Run the CDS Hooks service: discovery at GET /cds-services, one POST per hook."""
    if ctx.invoked_subcommand is not None:
        return
    _need_web()
    import uvicorn

    from behaviorsft.cli_eval import _model_options
    from behaviorsft.models import check_model_spec, load_model
    from behaviorsft.serve.agent import Agent
    from behaviorsft.serve.app import create_app
    from behaviorsft.serve.settings import load_settings
    from behaviorsft.taxonomy import BEHAVIOR_TOKENS

    try:
        settings = load_settings(
            config, model=model, db=db, threshold=threshold, base_url=base_url, force=force
        )
        settings.salt()
        if settings.model is None:
            raise ValueError("no model: give --model or `model:` in the config")
        check_model_spec(settings.model)
        if settings.require_jwt and not settings.issuers:
            raise ValueError(
                "no issuers configured, so every call would be refused: add `issuers:` with "
                "their JWKS to the config (or `require_jwt: false` for local development only)"
            )
        options = {**settings.model_options, **_model_options(option)}
    except (ValueError, typer.BadParameter) as exc:
        raise fail(str(exc)) from None
    if not settings.require_jwt:
        err_console.print(
            "warning: require_jwt is false: calls are NOT authenticated", markup=False
        )
    if settings.torch_threads is not None and settings.model.startswith("hf/"):
        import torch

        torch.set_num_threads(settings.torch_threads)
    try:
        loaded = load_model(settings.model, base_url=settings.base_url, **options)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        raise fail(f"model {settings.model}: {exc}") from None
    single = getattr(loaded, "single_token_id", None)
    if single is not None:
        absent = [t for t in BEHAVIOR_TOKENS if single(t) is None]
        if absent:
            raise fail(
                f"model {settings.model}: {', '.join(absent)} is not one token, so "
                "P(<proactive>) cannot be read; serve a BehaviorSFT adapter (trained with "
                "`behaviorsft train`), whose tokenizer adds the behaviour tokens"
            )
    # The service log: hashed patient ids, decisions, P and latency (never record text).
    service_log = logging.getLogger("behaviorsft.serve")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    service_log.addHandler(handler)
    service_log.setLevel(log_level.upper())
    agent = Agent(loaded, max_new_tokens=settings.max_new_tokens)
    try:
        app = create_app(settings, agent=agent)
    except ValueError as exc:
        agent.close()
        raise fail(str(exc)) from None
    console.print(
        f"serving {settings.model} on http://{host}:{port}/cds-services "
        f"(threshold {settings.threshold}, audit {settings.db})",
        markup=False,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1)
    agent.close()


@serve_app.command("audit")
def audit_cmd(
    db: str = typer.Option(..., "--db", help="The audit database URL the service wrote."),
    out: Path = typer.Option(..., "--out", help="Folder for audit.json/.md/.png and fhir/."),
) -> None:
    """The alert-fatigue dashboard: cards per patient and day, acceptance and override rates."""
    _need_web()
    from sqlalchemy.exc import SQLAlchemyError

    from behaviorsft.serve.db import make_engine
    from behaviorsft.serve.report import write_report

    if db.startswith("sqlite:///") and not Path(db.removeprefix("sqlite:///")).is_file():
        raise fail(f"--db {db}: no such database file")
    try:
        summary = write_report(make_engine(db), out)
    except SQLAlchemyError as exc:
        raise fail(f"--db {db}: {exc}") from None
    fb = summary["feedback"]
    console.print(
        f"{summary['calls']} hook calls, {summary['cards']} cards, "
        f"{fb['accepted']} accepted, {fb['overridden']} overridden -> {out}",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add the `serve` command group to ``app``."""
    app.add_typer(serve_app, name="serve")
