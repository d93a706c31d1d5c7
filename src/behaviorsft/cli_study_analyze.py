"""``study analyze`` and ``study apply``, added to the ``study`` group by ``register(study_app)``.

Exit codes (behaviorsft.exit_codes): 0 done; 2 bad input (no such folder, a
bad or inconsistent export row, verdicts naming tasks the bench lacks); 5
another process writes the report folder or the bench.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer
from rich.console import Console

from behaviorsft.exit_codes import ExitCode, exit_with

console = Console()
err_console = Console(stderr=True)


def _fail(exc: BaseException) -> BaseException:
    from behaviorsft.store import FolderBusyError

    err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
    return exit_with(ExitCode.BUSY if isinstance(exc, FolderBusyError) else ExitCode.INPUT_ERROR)


def _export_from_db(db: str, folder: Path, study: str | None) -> None:
    """Export the study database at ``db`` into ``folder`` with the web app's own export."""
    if db.startswith("sqlite:///") and not Path(db.removeprefix("sqlite:///")).is_file():
        raise FileNotFoundError(f"--db {db}: no such database file")
    try:
        from behaviorsft.study.db import open_db
        from behaviorsft.study.export import export_study
    except ImportError as exc:
        raise ImportError(
            f"--db needs the study web app ({exc}); install behaviorsft[web], or run "
            "`behaviorsft study export --db URL --out DIR` and analyze DIR"
        ) from None
    export_study(open_db(db), folder, study=study)


def register(study_app: typer.Typer) -> None:
    """Add ``analyze`` and ``apply`` to the ``study`` command group."""

    @study_app.command("analyze")
    def analyze_cmd(
        export: Path | None = typer.Argument(
            None, help="Export folder written by `study export` (or give --db)."
        ),
        db: str | None = typer.Option(
            None, "--db", help="Study database URL: export it first, then analyze."
        ),
        out: Path = typer.Option(..., "--out", help="REPORT folder."),
        study: str | None = typer.Option(
            None, "--study", help="The study to analyse, when the export holds several."
        ),
        bootstrap: int = typer.Option(
            2000, "--bootstrap", help="Bootstrap resamples (of tasks) for the 95% CIs; 0: none."
        ),
        seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
        wrong_share: float = typer.Option(
            0.5,
            "--reject-wrong-above",
            help="Reject a task when more than this share of its raters chose another answer "
            "than the key.",
        ),
        implausible_share: float = typer.Option(
            0.5,
            "--reject-implausible-above",
            help="Reject a task when more than this share of its raters judged it implausible "
            "(0: any 'No').",
        ),
    ) -> None:
        """Statistics of a study: accuracy, Figures 18-19, ICC(3), alpha, verdicts.

        Writes REPORT/report.md, analysis.json, verdicts.jsonl, figure18.png and
        figure19.png.
        """
        from behaviorsft.store import FolderBusyError, FolderLock, RecordFileError
        from behaviorsft.study.analysis_report import analyze_export, read_export, write_report
        from behaviorsft.study.analyze import VerdictRules

        if (export is None) == (db is None):
            err_console.print("error: give an export folder or --db URL (one of the two)")
            raise exit_with(ExitCode.INPUT_ERROR)
        if bootstrap < 0:
            raise _fail(ValueError("--bootstrap must be >= 0"))
        try:
            rules = VerdictRules(wrong_share=wrong_share, implausible_share=implausible_share)
            with tempfile.TemporaryDirectory(prefix="study-export-") as tmp:
                folder = export
                if folder is None:
                    folder = Path(tmp)
                    _export_from_db(str(db), folder, study)
                data = read_export(folder, study=study)
                analysis, verdicts = analyze_export(
                    data, rules=rules, n_bootstrap=bootstrap, seed=seed
                )
            with FolderLock(out):
                written = write_report(analysis, verdicts, out)
        except (
            ValueError,
            FileNotFoundError,
            ImportError,
            RecordFileError,
            FolderBusyError,
        ) as exc:
            raise _fail(exc) from None
        v, c = analysis["validation"], analysis["comparison"]
        if v is not None:
            acc = v["accuracy"]["overall"]["mean"]
            icc = v["slider"]["icc"]["icc3_1"]
            console.print(
                f"validation: {v['n_tasks']} tasks, {len(v['raters'])} raters; accuracy "
                f"{'–' if acc is None else f'{100 * acc:.1f}%'}; slider ICC(3,1) "
                f"{'–' if icc is None else f'{icc:.2f}'}; {len(v['rejected'])} task(s) rejected",
                soft_wrap=True,
            )
        if c is not None:
            ranks = ", ".join(
                f"{a} {s['rank']['mean']:.2f}"
                for a, s in c["per_agent"].items()
                if s["rank"]["mean"] is not None
            )
            console.print(f"comparison: mean rank {ranks}", soft_wrap=True, markup=False)
        for name, path in written.items():
            console.print(f"{name}: {path}", markup=False)

    @study_app.command("apply")
    def apply_cmd(
        report: Path = typer.Argument(..., help="REPORT folder of `study analyze`."),
        bench: Path = typer.Option(..., "--bench", help="BENCH folder the study was made on."),
    ) -> None:
        """Write a report's verdicts beside the bench (BENCH/study_verdicts.jsonl).

        Then `eval`, `hard` and `train` take --exclude-rejected.
        """
        from behaviorsft.store import FolderBusyError, RecordFileError
        from behaviorsft.study.verdicts import apply_verdicts

        try:
            result = apply_verdicts(report, bench)
        except (ValueError, FileNotFoundError, RecordFileError, FolderBusyError) as exc:
            raise _fail(exc) from None
        console.print(
            f"{result.path}: {result.added} verdicts of {', '.join(result.studies)} "
            f"({result.replaced} earlier ones replaced); {result.rejected} task(s) rejected in "
            f"all; sha256 {result.sha256[:12]}"
            + ("" if result.manifest_updated else f"; {bench} has no manifest.json to note it in"),
            soft_wrap=True,
            markup=False,
        )


def study_group() -> typer.Typer:
    """A ``study`` group with only these two commands (for tests, and until the app has one)."""
    app = typer.Typer(help="The clinician study.", no_args_is_help=True)
    register(app)
    return app
