"""Clinician study commands: `behaviorsft study db|users|create|serve|export`.

Registered on the main app with ``register(app)``. Everything web-related is
imported inside the commands, so the CLI works without the ``[web]`` extra
and `study` then names the pip command to run. Every command that opens the
database first upgrades its schema (Alembic), so an empty database just works.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from behaviorsft.cli_study_analyze import register as register_analyze
from behaviorsft.exit_codes import ExitCode, fail, require_or_exit

console = Console()
err_console = Console(stderr=True)

DEFAULT_DB = "sqlite:///study.db"
DB_HELP = (
    "Study database URL: sqlite:///path (default sqlite:///study.db) or postgresql+psycopg://..."
)

study_app = typer.Typer(
    help="The clinician study (extra [web]): validation and blinded comparison in a web app, "
    "and the export of the answers.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="The study database's schema.", no_args_is_help=True)
users_app = typer.Typer(help="Raters and administrators.", no_args_is_help=True)
create_app = typer.Typer(help="Make a study from a bench.", no_args_is_help=True)
study_app.add_typer(db_app, name="db")
study_app.add_typer(users_app, name="users")
study_app.add_typer(create_app, name="create")


def _need_web() -> None:
    from behaviorsft.study import require_web

    require_or_exit(require_web)


def _open(db: str) -> Any:
    """The engine for ``db``, schema upgraded; a clear error for a bad URL or server."""
    _need_web()
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from behaviorsft.study.db import open_db

    try:
        return open_db(db)
    except CommandError as exc:
        raise fail(
            f"--db {db}: the schema cannot be upgraded ({exc}); was it made by a newer "
            "behaviorsft? Upgrade behaviorsft, or use another database"
        ) from None
    except ArgumentError as exc:
        raise fail(f"--db {db}: not a database URL ({exc})") from None
    except (SQLAlchemyError, OSError) as exc:
        raise fail(f"--db {db}: {exc}") from None
    except ModuleNotFoundError as exc:
        raise fail(
            f"--db {db}: its database driver is not installed ({exc}); for PostgreSQL use a "
            "postgresql+psycopg://user:password@host/dbname URL and "
            "pip install 'behaviorsft[postgres]'"
        ) from None


@db_app.command("upgrade")
def db_upgrade(db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP)) -> None:
    """Create or upgrade the study schema to the newest revision."""
    from behaviorsft.study.db import current_revision

    engine = _open(db)
    console.print(f"{db}: schema at revision {current_revision(engine)}", markup=False)


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="User name (letters, digits, _ . @ -)."),
    admin: bool = typer.Option(False, "--admin", help="May see the progress page."),
    password_stdin: bool = typer.Option(
        False,
        "--password-stdin",
        help="Read a password (8+ characters) from stdin instead of "
        "printing a one-time sign-in link.",
    ),
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    base_url: str = typer.Option(
        "http://127.0.0.1:8000",
        "--base-url",
        help="Where raters reach `study serve` (for the link).",
    ),
) -> None:
    """Add a user (or update one): prints a one-time sign-in link unless --password-stdin."""
    engine = _open(db)
    from behaviorsft.study.users import add_user

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        user, token = add_user(engine, name, admin=admin, password=password)
    except ValueError as exc:
        raise fail(str(exc)) from None
    role = "administrator" if user.is_admin else "rater"
    if token is None:
        console.print(f"{name}: {role}, password set", markup=False)
    else:
        console.print(f"{name}: {role}; one-time sign-in link (valid 7 days):", markup=False)
        print(f"{base_url.rstrip('/')}/signin/{token}")


def _print_summary(summary: dict[str, Any], db: str) -> None:
    types = ", ".join(f"{k} {v}" for k, v in summary["per_type"].items())
    console.print(
        f"{summary['kind']} study {summary['name']!r}: {summary['tasks']} tasks ({types}); "
        f"raters {', '.join(summary['raters'])}; {summary['assignments']} assignments -> {db}",
        markup=False,
        soft_wrap=True,
    )


def _create(kind: str, db: str, **kwargs: Any) -> None:
    engine = _open(db)
    from behaviorsft.study.create import (
        StudyExistsError,
        StudyInputError,
        create_comparison,
        create_validation,
    )

    make = create_validation if kind == "validation" else create_comparison
    try:
        summary = make(engine, **kwargs)
    except StudyExistsError as exc:
        raise fail(str(exc), ExitCode.REFUSED) from None
    except StudyInputError as exc:
        raise fail(str(exc)) from None
    _print_summary(summary, db)


# Lets `--raters r1 r2 r3` and `--runs A B C` work: click options take one value each, so
# the extra values arrive as leftover arguments (see _leftovers).
_EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": False}


def _is_run(arg: str) -> bool:
    return Path(arg).is_dir() or ("=" in arg and Path(arg.partition("=")[2]).is_dir())


def _leftovers(ctx: typer.Context, *, runs: bool) -> tuple[list[str], list[str]]:
    """Leftover arguments split into (runs, raters): a run is a folder (or NAME=folder)."""
    run_args = [a for a in ctx.args if runs and _is_run(a)]
    raters = [p for a in ctx.args if a not in run_args for p in a.split(",") if p]
    return run_args, raters


def _raters(given: list[str] | None, extra: list[str]) -> list[str] | None:
    names = [p for v in (given or []) for p in v.split(",") if p] + extra
    return names or None


@create_app.command("validation", context_settings=_EXTRA_ARGS)
def create_validation_cmd(
    ctx: typer.Context,
    bench: Path = typer.Option(
        ..., "--bench", help="BENCH folder (tasks.jsonl, conversations.jsonl)."
    ),
    n: int = typer.Option(..., "--n", help="Tasks in the study, stratified by task type."),
    raters: list[str] | None = typer.Option(
        None,
        "--raters",
        help="Rater user names (default: every non-admin user).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the task choice and the queue orders."),
    overlap: int | None = typer.Option(
        None, "--overlap", help="Raters per task (default: every rater rates every task)."
    ),
    name: str | None = typer.Option(None, "--name", help="Study name (default 'validation')."),
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
) -> None:
    """A validation study: raters answer, rate confidence, proactivity and plausibility."""
    _, extra = _leftovers(ctx, runs=False)
    _create(
        "validation",
        db,
        bench_path=bench,
        n=n,
        raters=_raters(raters, extra),
        seed=seed,
        overlap=overlap,
        name=name,
    )


@create_app.command("comparison", context_settings=_EXTRA_ARGS)
def create_comparison_cmd(
    ctx: typer.Context,
    bench: Path = typer.Option(..., "--bench", help="BENCH folder the runs were made on."),
    runs: list[str] = typer.Option(
        ..., "--runs", help="Generation RUN folders (2-6), each PATH or NAME=PATH."
    ),
    n: int = typer.Option(..., "--n", help="Tasks answered without error in every run."),
    raters: list[str] | None = typer.Option(
        None,
        "--raters",
        help="Rater user names (default: every non-admin user).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the task choice, queues and agent orders."),
    overlap: int | None = typer.Option(
        None, "--overlap", help="Raters per task (default: every rater rates every task)."
    ),
    name: str | None = typer.Option(None, "--name", help="Study name (default 'comparison')."),
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
) -> None:
    """A blinded comparison: raters rank the runs' replies shown as Agent A, B, C."""
    extra_runs, extra_raters = _leftovers(ctx, runs=True)
    _create(
        "comparison",
        db,
        bench_path=bench,
        runs=[*runs, *extra_runs],
        n=n,
        raters=_raters(raters, extra_raters),
        seed=seed,
        overlap=overlap,
        name=name,
    )


@study_app.command("serve")
def serve_cmd(
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Run the study web app (put it behind HTTPS when raters are not on this machine)."""
    engine = _open(db)
    import uvicorn

    from behaviorsft.study.app import create_app as make_app

    app = make_app(db, engine=engine)
    console.print(f"study app on http://{host}:{port}/ (database {db})", markup=False)
    uvicorn.run(app, host=host, port=port, log_level=log_level, workers=1)


@study_app.command("export")
def export_cmd(
    db: str = typer.Option(DEFAULT_DB, "--db", help=DB_HELP),
    out: Path = typer.Option(..., "--out", help="Folder for the CSV/JSONL files and study.json."),
    study: str | None = typer.Option(None, "--study", help="Only this study (default: all)."),
) -> None:
    """Answers as long-format CSV and JSONL; the agent key in a separate 0600 file."""
    if db.startswith("sqlite:///") and not Path(db.removeprefix("sqlite:///")).is_file():
        raise fail(f"--db {db}: no such database file")
    engine = _open(db)
    from behaviorsft.study.export import export_study

    try:
        summary = export_study(engine, out, study=study)
    except ValueError as exc:
        raise fail(str(exc)) from None
    rows = summary["rows"]
    console.print(
        f"{len(summary['studies'])} stud{'y' if len(summary['studies']) == 1 else 'ies'}: "
        f"{rows['validation']} validation rows, {rows['comparison']} comparison rows, "
        f"{rows['agent_key']} agent-key rows (agent_key.* is for the administrator only) -> {out}",
        markup=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the `study` command group to ``app``."""
    app.add_typer(study_app, name="study")


# `study analyze` and `study apply` (statistics and verdicts; no web dependency).
register_analyze(study_app)
