"""The exit codes every ``behaviorsft`` command uses (documented in the README).

A script or a CI job can tell these apart without parsing output:

====  ==================  ==========================================================
code  name                meaning
====  ==================  ==========================================================
0     OK                  everything asked for was done
1     INTERNAL            an unexpected error (a bug): the traceback is printed
2     INPUT_ERROR         bad options or input (missing, empty or wrong-kind files,
                          invalid records, unknown model); nothing was written
3     PARTIAL             the command finished, but some rows or cases failed; they
                          are recorded with their reasons (re-run to retry them)
4     REFUSED             an existing output folder was made with other options or
                          other inputs; re-run with the same ones, or ``--fresh``
5     BUSY                another process is writing to the same output folder
====  ==================  ==========================================================

Click's own usage errors (an unknown flag, a bad choice) also exit 2.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    INTERNAL = 1
    INPUT_ERROR = 2
    PARTIAL = 3
    REFUSED = 4
    BUSY = 5


def exit_with(code: ExitCode) -> BaseException:
    """A ``typer.Exit`` carrying ``code`` (``raise exit_with(ExitCode.INPUT_ERROR)``)."""
    import typer

    return typer.Exit(code=int(code))


def fail(message: str, code: ExitCode = ExitCode.INPUT_ERROR) -> BaseException:
    """Print ``error: message`` on stderr and return the exit to raise
    (``raise fail("--db x: no such file")``)."""
    from rich.console import Console

    Console(stderr=True).print(f"error: {message}", markup=False, soft_wrap=True)
    return exit_with(code)


def require_or_exit(require: Callable[[], None]) -> None:
    """Run an extra's check (``serve.require_web``); a missing extra exits 2 with its message."""
    from behaviorsft.models.base import MissingExtraError

    try:
        require()
    except MissingExtraError as exc:
        raise fail(str(exc)) from None
