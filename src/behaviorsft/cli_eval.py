"""Evaluation commands: `eval`, `ensemble`, `hard`, `report`.

Registered on the main app with ``register(app)``. Options that take several
values (``--seeds 0 1 2``, ``--runs A B C``) accept them space-separated, as
in the docs, as well as repeated (``--seeds 0 --seeds 1``) or comma-separated.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from behaviorsft.evaluate.runner import BEHAVIOR_MODES, SCORING_MODES, SPLITS, EvalConfig
from behaviorsft.exit_codes import ExitCode, exit_with
from behaviorsft.prompts import STRATEGIES

console = Console()
err_console = Console(stderr=True)

# Lets `--seeds 0 1 2` and `--runs A B C` work: click options take one value
# each, so the extra values arrive as leftover arguments and are appended here.
_EXTRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": False}


def _split_values(values: list[str]) -> list[str]:
    return [part for v in values for part in v.replace(",", " ").split() if part]


def _seeds(values: list[str], extra: list[str]) -> list[int]:
    raw = _split_values([*values, *extra])
    try:
        return [int(v) for v in raw] or [0]
    except ValueError:
        bad = next(v for v in raw if not v.lstrip("-").isdigit())
        raise typer.BadParameter(
            f"{bad!r} is not a seed; seeds are integers, e.g. --seeds 0 1 2", param_hint="--seeds"
        ) from None


def _model_options(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(
                f"{pair!r}: use KEY=VALUE, e.g. dtype=float32", param_hint="--option"
            )
        try:
            out[key] = json.loads(value)  # numbers, true/false, lists
        except json.JSONDecodeError:
            out[key] = value
    return out


def _exit_code(exc: BaseException) -> ExitCode:
    """The documented exit code of an error that stops a command (see exit_codes.py)."""
    from behaviorsft.evaluate.runner import ResumeRefusedError
    from behaviorsft.store import FolderBusyError

    if isinstance(exc, FolderBusyError):
        return ExitCode.BUSY
    if isinstance(exc, ResumeRefusedError):
        return ExitCode.REFUSED
    return ExitCode.INPUT_ERROR


def _fail(exc: BaseException) -> BaseException:
    err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
    return exit_with(_exit_code(exc))


def _warn(message: str) -> None:
    err_console.print(f"warning: {message}", markup=False, soft_wrap=True)


@contextmanager
def _show_warnings() -> Iterator[None]:
    """Print the library's ``warnings.warn`` messages as one plain line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        finally:
            for w in caught:
                _warn(str(w.message))


# Errors that are the user's input, not a bug: reported in one line, exit 2 (or 4, 5).
def _input_errors() -> tuple[type[BaseException], ...]:
    from behaviorsft.models.openai_compat import EndpointUnreachableError
    from behaviorsft.store import FolderBusyError, RecordFileError

    return (
        ValueError,
        FileNotFoundError,
        ImportError,
        TypeError,
        RecordFileError,
        FolderBusyError,
        EndpointUnreachableError,
    )


def register(app: typer.Typer) -> None:
    """Add the evaluation commands to ``app``."""

    @app.command("eval", context_settings=_EXTRA_ARGS)
    def eval_cmd(
        ctx: typer.Context,
        bench: Path = typer.Option(..., "--bench", help="BENCH folder.", exists=True),
        model: str = typer.Option(
            ..., "--model", help="provider/model[:adapter], e.g. hf/./ckpt or openai/gpt-4o-mini."
        ),
        out: Path = typer.Option(..., "--out", help="RUN folder (resumed when it exists)."),
        strategy: str = typer.Option(
            "zero_shot", "--strategy", help=f"One of: {', '.join(STRATEGIES)}."
        ),
        split: str = typer.Option("test", "--split", help=f"One of: {', '.join(SPLITS)}."),
        seeds: list[str] = typer.Option(
            ["0"], "--seeds", help="Seeds, e.g. --seeds 0 1 2; metrics give mean ± std."
        ),
        limit: int | None = typer.Option(
            None, "--limit", help="Only N tasks (round-robin over task types)."
        ),
        behavior: str = typer.Option(
            "auto",
            "--behavior",
            help=f"{'|'.join(BEHAVIOR_MODES)}: force the first behaviour token "
            "(behaviorsft strategy).",
        ),
        scoring: str = typer.Option(
            "generate",
            "--scoring",
            help=f"{'|'.join(SCORING_MODES)}: parse generated text, or score option letters.",
        ),
        max_new_tokens: int = typer.Option(512, "--max-new-tokens", help="Generation limit."),
        temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy."),
        few_shot_k: int = typer.Option(3, "--few-shot-k", help="Examples for few_shot."),
        chunk_size: int = typer.Option(64, "--chunk-size", help="Requests per backend call."),
        retries: int = typer.Option(1, "--retries", help="Extra attempts for failed calls."),
        base_url: str | None = typer.Option(
            None, "--base-url", help="Server URL for openai-compatible/ models."
        ),
        cache_dir: Path | None = typer.Option(
            None, "--cache-dir", help="Response cache folder (HTTP backends)."
        ),
        api_key_env: str | None = typer.Option(
            None,
            "--api-key-env",
            help="Environment variable holding the API key (default: OPENAI_API_KEY for "
            "openai/, none for openai-compatible/). The key itself is never a flag.",
        ),
        option: list[str] = typer.Option(
            [], "--option", help="Backend option KEY=VALUE (repeatable), e.g. dtype=float32."
        ),
        bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples (0: none)."),
        label: str | None = typer.Option(None, "--label", help="Column name in reports."),
        exclude_rejected: bool = typer.Option(
            False, "--exclude-rejected", help="Leave out tasks a clinician study rejected."
        ),
        fresh: bool = typer.Option(
            False, "--fresh", help="Discard what RUN holds (predictions, metrics) and start over."
        ),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar."),
    ) -> None:
        """Evaluate a model on a bench split; write predictions, metrics and config to RUN.

        Exit codes: 0 all rows answered; 2 bad options or input, or an endpoint that
        refuses connections (nothing is written); 3 some rows failed (recorded, rerun
        to retry); 4 RUN was made with other options; 5 another process writes RUN.
        """
        from behaviorsft.evaluate.runner import run_eval

        config = EvalConfig(
            bench=str(bench),
            model=model,
            out=str(out),
            strategy=strategy,
            split=split,
            seeds=_seeds(seeds, list(ctx.args)),
            limit=limit,
            behavior=behavior,
            scoring=scoring,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            few_shot_k=few_shot_k,
            chunk_size=chunk_size,
            retries=retries,
            base_url=base_url,
            cache_dir=str(cache_dir) if cache_dir else None,
            model_options=_model_options(option)
            | ({"api_key_env": api_key_env} if api_key_env else {}),
            n_bootstrap=bootstrap,
            label=label,
            exclude_rejected=exclude_rejected,
        )
        try:
            with _show_warnings():
                result = run_eval(config, show_progress=progress, fresh=fresh, warn=_warn)
        except _input_errors() as exc:
            raise _fail(exc) from None
        overall = result.metrics["mean"].get("overall", {})
        f1 = overall.get("macro_f1")
        console.print(
            f"{result.out}: {result.requested} answers ({result.reused} reused, "
            f"{result.generated} new), {result.errors} errors; overall Macro F1 "
            f"{'–' if f1 is None else f'{100 * f1:.1f}'}%, invalid "
            f"{100 * (overall.get('invalid_rate') or 0):.1f}%",
            soft_wrap=True,
        )
        if result.errors:
            err_console.print(
                f"{result.errors} row(s) failed and are not scored (see their 'error' in "
                f"{result.out / 'predictions.jsonl'}); rerun the same command to retry them.",
                soft_wrap=True,
            )
            raise exit_with(ExitCode.PARTIAL)

    @app.command("ensemble")
    def ensemble_cmd(
        runs: list[Path] = typer.Argument(..., help="RUN folders; ties go to the first listed."),
        out: Path = typer.Option(..., "--out", help="RUN folder for the ensemble."),
        bench: Path | None = typer.Option(
            None, "--bench", help="BENCH folder (default: the members' bench)."
        ),
        label: str | None = typer.Option(None, "--label", help="Column name in reports."),
        bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples."),
    ) -> None:
        """Majority vote over several runs (unreadable and failed answers abstain)."""
        from behaviorsft.evaluate.ensemble import run_ensemble

        try:
            with _show_warnings():
                metrics = run_ensemble(runs, out, bench=bench, label=label, n_bootstrap=bootstrap)
        except _input_errors() as exc:
            raise _fail(exc) from None
        f1 = metrics["mean"].get("overall", {}).get("macro_f1")
        console.print(
            f"{out}: {metrics['counts']['predictions']} voted answers; overall Macro F1 "
            f"{'–' if f1 is None else f'{100 * f1:.1f}'}%"
        )

    @app.command("hard", context_settings=_EXTRA_ARGS)
    def hard_cmd(
        ctx: typer.Context,
        bench: Path = typer.Option(..., "--bench", help="BENCH folder the runs were made on."),
        runs: list[Path] = typer.Option(..., "--runs", help="RUN folders, e.g. --runs A B C."),
        out: Path = typer.Option(..., "--out", help="Folder for the Hard BENCH."),
        min_failing_models: int = typer.Option(
            2, "--min-failing-models", help="A task is hard when this many models fail it."
        ),
        fail_rule: str = typer.Option(
            "all", "--fail-rule", help="A model fails a task when all|majority|any seeds are wrong."
        ),
        size: int | None = typer.Option(
            None, "--size", help="Keep this many, spread over types like the source split."
        ),
        split: str | None = typer.Option(
            None, "--split", help=f"One of: {', '.join(SPLITS)}. Default: the runs' split."
        ),
        seed: int = typer.Option(0, "--seed", help="Tie-break seed when --size trims."),
        exclude_rejected: bool = typer.Option(
            False, "--exclude-rejected", help="Leave out tasks a clinician study rejected."
        ),
    ) -> None:
        """Build BehaviorBench-Hard from several models' runs and print its composition."""
        from behaviorsft.evaluate.hard import build_hard

        all_runs = [*runs, *(Path(a) for a in ctx.args)]
        missing = [str(r) for r in all_runs if not r.is_dir()]
        if missing:
            raise _fail(FileNotFoundError(f"not RUN folders: {', '.join(missing)}"))
        try:
            with _show_warnings():
                report = build_hard(
                    bench,
                    all_runs,
                    out,
                    split=split,
                    min_failing_models=min_failing_models,
                    rule=fail_rule,
                    size=size,
                    seed=seed,
                    exclude_rejected=exclude_rejected,
                )
        except _input_errors() as exc:
            raise _fail(exc) from None
        comp = report["hard"]
        shares = ", ".join(
            f"{cat} {comp['category_count'][cat]} ({100 * (share or 0):.0f}%)"
            for cat, share in comp["category_share"].items()
        )
        console.print(
            f"{out}: {comp['n_tasks']} hard tasks of {report['source_split']['n_tasks']} "
            f"({shares}); paper: 297 tasks, 43% proactive, 39% reactive, 18% balanced",
            soft_wrap=True,
        )

    @app.command("report")
    def report_cmd(
        runs: list[Path] = typer.Argument(..., help="RUN folders, one column each."),
        out: Path = typer.Option(..., "--out", help="Report folder."),
        hard: Path | None = typer.Option(
            None, "--hard", help="Hard BENCH folder, for Table 4 (full vs hard)."
        ),
    ) -> None:
        """Tables 2, 3, 4 (Markdown, CSV, JSON) and the Figure 5 radar plot."""
        from behaviorsft.evaluate.report import write_report

        try:
            with _show_warnings():
                written = write_report(runs, out, hard=hard, warn=_warn)
        except _input_errors() as exc:
            raise _fail(exc) from None
        for name, path in written.items():
            console.print(f"{name}: {path}")

    @app.command("dial")
    def dial_cmd(
        reactive: Path = typer.Option(
            ..., "--reactive", help="RUN made with --behavior reactive.", exists=True
        ),
        proactive: Path = typer.Option(
            ..., "--proactive", help="RUN made with --behavior proactive.", exists=True
        ),
        out: Path = typer.Option(..., "--out", help="Folder for the tables and the figure."),
        unforced: Path | None = typer.Option(
            None,
            "--unforced",
            help="RUN made with --behavior auto: the model's own operating point.",
            exists=True,
        ),
        bench: Path | None = typer.Option(
            None, "--bench", help="BENCH folder (default: the runs' bench)."
        ),
        steps: int = typer.Option(10, "--steps", help="Table rows: T = 0, 1/steps, ..., 1."),
    ) -> None:
        """The proactivity dial: false alarms vs misses as the threshold on P(<proactive>)
        sweeps 0 -> 1, from one model's forced-token runs; token forcing and first-token
        behaviour classification tables."""
        from behaviorsft.evaluate.dial_report import write_dial_report

        try:
            with _show_warnings():
                written = write_dial_report(
                    reactive, proactive, out, unforced=unforced, bench=bench, steps=steps
                )
        except _input_errors() as exc:
            raise _fail(exc) from None
        console.print(written["dial"].read_text(encoding="utf-8"), markup=False)
        for name, path in written.items():
            console.print(f"{name}: {path}")
