"""The one progress-bar layout every long-running command shows."""

from __future__ import annotations

from typing import Any


def make_progress(console: Any = None) -> Any:
    """A ``rich.progress.Progress``: description, bar, done/total, elapsed, remaining.

    ``console``: where it draws (e.g. a stderr console, so stdout stays clean
    for results); None uses rich's default console. rich is imported here so
    that importing a command module stays cheap.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
