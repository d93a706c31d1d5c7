"""Judge commands: `judge`, `judge-report`, `judge-agreement`.

Registered on the main app with ``register(app)``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from behaviorsft.cli_eval import _fail, _input_errors, _model_options, _show_warnings, _warn
from behaviorsft.exit_codes import ExitCode, exit_with
from behaviorsft.judge.criteria import ALL_CRITERIA, parse_criteria
from behaviorsft.judge.geval import METHODS

console = Console()
err_console = Console(stderr=True)

_ALL = ",".join(c.value for c in ALL_CRITERIA)


def register(app: typer.Typer) -> None:
    """Add the judge commands to ``app``."""

    @app.command("judge")
    def judge_cmd(
        runs: list[Path] = typer.Argument(..., help="RUN folders made by `behaviorsft eval`."),
        out: Path = typer.Option(..., "--out", help="JUDGED folder (resumed when it exists)."),
        judge: str = typer.Option(
            "openai/gpt-4o-mini",
            "--judge",
            help="Judge model: openai/<m> or openai-compatible/<m>.",
        ),
        base_url: str | None = typer.Option(
            None, "--base-url", help="Server URL for openai-compatible/ judges."
        ),
        criteria: str = typer.Option(_ALL, "--criteria", help="Comma-separated criteria."),
        method: str = typer.Option(
            "auto",
            "--method",
            help=f"{'|'.join(METHODS)}: log-probability weighted score, with sampling as the "
            "fallback (auto), or only one of them.",
        ),
        samples: int = typer.Option(20, "--samples", help="Sampled scores per item (fallback)."),
        sample_temperature: float = typer.Option(
            1.0, "--sample-temperature", help="Temperature of sampled scores."
        ),
        max_new_tokens: int = typer.Option(
            128, "--max-new-tokens", help="Length limit of a judge reply."
        ),
        reference: bool = typer.Option(
            False, "--reference/--no-reference", help="Show the judge the correct option."
        ),
        concurrency: int = typer.Option(8, "--concurrency", help="Judge calls in flight."),
        cache_dir: Path | None = typer.Option(
            None, "--cache-dir", help="Response cache folder (reruns cost nothing)."
        ),
        limit: int | None = typer.Option(
            None, "--limit", help="Only N tasks per run (round-robin over task types)."
        ),
        fresh: bool = typer.Option(
            False, "--fresh", help="Discard judgements and steps of these runs and start over."
        ),
        option: list[str] = typer.Option(
            [], "--option", help="Client option KEY=VALUE (repeatable), e.g. max_retries=3."
        ),
        bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples (0: none)."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
    ) -> None:
        """Score every answer of the RUNs with G-Eval; write judgements, aggregates, figures.

        Exit codes: 0 every item scored; 2 bad options or input, or a judge endpoint that
        refuses connections; 3 some items are unscored (recorded, rerun to retry); 4 the
        JUDGED folder was made with other options; 5 another process writes it.
        """
        from behaviorsft.judge.geval import JudgeConfig, run_judge

        try:
            config = JudgeConfig(
                runs=[str(r) for r in runs],
                out=str(out),
                judge=judge,
                criteria=[c.value for c in parse_criteria(criteria)],
                method=method,
                samples=samples,
                sample_temperature=sample_temperature,
                max_new_tokens=max_new_tokens,
                reference=reference,
                limit=limit,
                base_url=base_url,
                cache_dir=str(cache_dir) if cache_dir else None,
                concurrency=concurrency,
                model_options=_model_options(option),
                n_bootstrap=bootstrap,
            )
            with _show_warnings():
                result = run_judge(config, fresh=fresh, show_progress=progress, warn=_warn)
        except _input_errors() as exc:
            raise _fail(exc) from None
        console.print(
            f"{result.out}: {result.items} judgements ({result.reused} reused, {result.judged} "
            f"new), {result.unscored} unscored; {result.calls} judge calls "
            f"({result.cached_calls} from cache), {result.fallbacks} fell back to sampling",
            soft_wrap=True,
        )
        for name, path in result.report.items():
            console.print(f"{name}: {path}", soft_wrap=True)
        if result.unscored:
            err_console.print(
                f"{result.unscored} judgement(s) are unscored (see aggregates.md for reasons); "
                "rerun the same command to retry them.",
                soft_wrap=True,
            )
            raise exit_with(ExitCode.PARTIAL)

    @app.command("judge-report")
    def judge_report_cmd(
        judged: list[Path] = typer.Argument(..., help="JUDGED folders; every run they hold."),
        out: Path = typer.Option(..., "--out", help="Report folder."),
        bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples (0: none)."),
    ) -> None:
        """Aggregates (JSON, Markdown) and Figures 2 and 3 over one or more JUDGED folders."""
        from behaviorsft.judge.aggregate import write_judge_report

        try:
            with _show_warnings():
                written = write_judge_report(judged, out, n_bootstrap=bootstrap)
        except _input_errors() as exc:
            raise _fail(exc) from None
        for name, path in written.items():
            console.print(f"{name}: {path}", soft_wrap=True)

    @app.command("judge-agreement")
    def judge_agreement_cmd(
        judged: list[Path] = typer.Argument(..., help="JUDGED folder(s)."),
        human: Path = typer.Option(
            ..., "--human", help="Human ratings, CSV or JSONL (see docs/judging.md)."
        ),
        out: Path = typer.Option(..., "--out", help="Folder for agreement.json and .md."),
    ) -> None:
        """Spearman and Kendall correlation of judge scores with human ratings, per criterion."""
        from behaviorsft.judge.agreement import write_agreement

        try:
            with _show_warnings():
                written = write_agreement(judged, human, out)
        except _input_errors() as exc:
            raise _fail(exc) from None
        console.print(written["markdown"].read_text(encoding="utf-8"), markup=False, soft_wrap=True)
        for name, path in written.items():
            console.print(f"{name}: {path}", soft_wrap=True)
