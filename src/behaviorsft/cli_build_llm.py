"""CLI commands of the LLM builder: ``build-llm`` and ``review-export``.

``register(app)`` adds them to the main typer app (called from ``cli.py``;
``build --generator llm`` forwards to the same function, ``build_llm_bench``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from behaviorsft.exit_codes import ExitCode, exit_with

console = Console()
err_console = Console(stderr=True)


def _progress() -> Any:
    from behaviorsft.progress import make_progress

    return make_progress(err_console)


def run_build_llm(
    cases: Path,
    out: Path,
    *,
    model: str,
    base_url: str | None = None,
    api_key_env: str | None = None,
    concurrency: int = 32,
    types: list[str] | None = None,
    max_cases: int | None = None,
    verify: str = "drop",
    options_only_check: bool = True,
    verifier_model: str | None = None,
    verifier_base_url: str | None = None,
    seed: int = 0,
    fresh: bool = False,
    retry_failed: bool = False,
    cache_dir: Path | None = None,
    timeout: float = 300.0,
    max_retries: int = 6,
    max_reasks: int = 2,
    json_schema: bool = True,
    price_input: float = 0.0,
    price_output: float = 0.0,
) -> None:
    """The body of ``build-llm`` (also run by ``build --generator llm``)."""
    from behaviorsft.build.llm.client import Prices
    from behaviorsft.build.llm.pipeline import VERIFY_POLICIES, build_llm_bench
    from behaviorsft.build.pipeline import BuildRefused
    from behaviorsft.models.openai_compat import EndpointUnreachableError
    from behaviorsft.store import FolderBusyError
    from behaviorsft.taxonomy import TaskType

    if not cases.exists():
        raise typer.BadParameter(f"{cases}: no such file or folder", param_hint="--cases")
    if verify not in VERIFY_POLICIES:
        raise typer.BadParameter(
            f"{verify!r}; choose one of {', '.join(VERIFY_POLICIES)}", param_hint="--verify"
        )
    valid = {t.value for t in TaskType}
    for t in types or []:
        if t not in valid:
            raise typer.BadParameter(
                f"unknown task type {t!r}; choose from {', '.join(sorted(valid))}",
                param_hint="--types",
            )
    try:
        with _progress() as prog:
            bar = prog.add_task("building (llm)", total=None)

            def tick(done: int, total: int) -> None:
                prog.update(bar, completed=done, total=total)

            report = build_llm_bench(
                cases,
                out,
                model=model,
                base_url=base_url,
                api_key_env=api_key_env,
                concurrency=concurrency,
                types=types or None,
                max_cases=max_cases,
                verify=verify,  # type: ignore[arg-type]
                options_only_check=options_only_check,
                verifier_model=verifier_model,
                verifier_base_url=verifier_base_url,
                seed=seed,
                fresh=fresh,
                retry_failed=retry_failed,
                progress=tick,
                cache_dir=cache_dir,
                prices=Prices(input_per_m=price_input, output_per_m=price_output),
                json_schema=json_schema,
                max_reasks=max_reasks,
                model_options={"timeout_s": timeout, "max_retries": max_retries},
            )
    except BuildRefused as exc:  # an existing folder made with other options
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise exit_with(ExitCode.REFUSED) from None
    except FolderBusyError as exc:
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise exit_with(ExitCode.BUSY) from None
    except (ValueError, EndpointUnreachableError) as exc:
        # Configuration errors name their fix; a server that is not there stops the
        # run before anything is recorded as failed (a re-run resumes).
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise exit_with(ExitCode.INPUT_ERROR) from None
    for e in report.input_errors:
        err_console.print(str(e), markup=False, soft_wrap=True)
    for f in report.failures[:50]:
        err_console.print(f"failed: {f.where}: {f.reason}", markup=False, soft_wrap=True)
    if len(report.failures) > 50:
        err_console.print(f"... and {len(report.failures) - 50} more (see manifest.json)")
    for note in report.format_fallbacks:
        err_console.print(
            f"note: the endpoint {note} for the rest of the run (replies are parsed and "
            "validated as usual)",
            markup=False,
            soft_wrap=True,
        )
    total = report.usage.get("total", {})
    failed_requests = f" ({report.failed_requests} failed)" if report.failed_requests else ""
    console.print(
        f"{report.completed} cases completed, {report.failed} failed; {report.tasks} tasks "
        f"({report.dropped} dropped by verification); this run: {report.requests} requests"
        f"{failed_requests}, {report.cache_hits} from cache; "
        f"tokens {int(total.get('prompt_tokens', 0))} in / "
        f"{int(total.get('completion_tokens', 0))} out, ${total.get('cost_usd', 0.0):.4f}; "
        f"wrote {out}",
        markup=False,
        soft_wrap=True,
    )
    if report.failed or report.input_errors:
        err_console.print(
            f"{report.failed} case(s) failed, {len(report.input_errors)} bad input line(s); "
            "they are listed in the manifest (re-run with --retry-failed to ask again)",
            markup=False,
            soft_wrap=True,
        )
        raise exit_with(ExitCode.PARTIAL)


def register(app: typer.Typer) -> None:
    """Add ``build-llm`` and ``review-export`` to ``app``."""

    @app.command("build-llm")
    def build_llm_cmd(
        cases: Path = typer.Option(
            ...,
            "--cases",
            help="Cases JSONL (from `cases import/synth`), or case reports: .txt/.md files, "
            "free-text JSONL ({id, text}), or a folder of them.",
        ),
        out: Path = typer.Option(..., "--out", "-o", help="BENCH folder to write."),
        model: str = typer.Option(
            ...,
            "--model",
            help="openai/<model> (key from $OPENAI_API_KEY) or openai-compatible/<model> "
            "with --base-url (vLLM, Ollama, llama.cpp, LiteLLM, Gemini's endpoint).",
        ),
        base_url: str | None = typer.Option(
            None, "--base-url", help="API root of the endpoint, e.g. http://localhost:8000/v1."
        ),
        api_key_env: str | None = typer.Option(
            None, "--api-key-env", help="Environment variable holding the key (never a flag)."
        ),
        concurrency: int = typer.Option(32, min=1, help="Requests in flight."),
        types: list[str] | None = typer.Option(
            None, "--types", help="Only these task types (repeatable); default all 13."
        ),
        max_cases: int | None = typer.Option(
            None, "--max-cases", min=1, help="Only the first N cases."
        ),
        verify: str = typer.Option(
            "drop",
            "--verify",
            help="Blind verification: drop flagged tasks, flag them (kept), or off.",
        ),
        options_only_check: bool = typer.Option(
            True,
            "--options-only-check/--no-options-only-check",
            help="Also ask the verifier with the options alone (flags answerable-without-case).",
        ),
        verifier_model: str | None = typer.Option(
            None, "--verifier-model", help="Another model for verification (default: --model)."
        ),
        verifier_base_url: str | None = typer.Option(
            None, "--verifier-base-url", help="Its API root (default: --base-url)."
        ),
        seed: int = typer.Option(0, help="Seed for sampling, option shuffles and splits."),
        fresh: bool = typer.Option(False, help="Start over instead of resuming."),
        retry_failed: bool = typer.Option(
            False, help="Ask again for items recorded as failed (default: they are final)."
        ),
        cache_dir: Path | None = typer.Option(
            None, "--cache-dir", help="Response cache folder (default: OUT/llm/cache)."
        ),
        timeout: float = typer.Option(300.0, help="Seconds per request attempt."),
        max_retries: int = typer.Option(6, min=0, help="Retries of transient faults per request."),
        max_reasks: int = typer.Option(
            2, min=0, help="Re-asks with the validation error when an answer does not validate."
        ),
        json_schema: bool = typer.Option(
            True,
            "--json-schema/--no-json-schema",
            help="Send response_format (JSON schema); off for endpoints that reject it.",
        ),
        price_input: float = typer.Option(
            0.0, "--price-input", min=0, help="USD per 1M prompt tokens (for the cost report)."
        ),
        price_output: float = typer.Option(
            0.0, "--price-output", min=0, help="USD per 1M completion tokens."
        ),
    ) -> None:
        """Build a BENCH folder from case reports with an LLM (summary, conversation, tasks,
        augmentation, blind verification). Resumable: a re-run makes no request for
        finished work. Tokens and cost per stage go to the manifest and llm/usage.json.
        """
        run_build_llm(
            cases,
            out,
            model=model,
            base_url=base_url,
            api_key_env=api_key_env,
            concurrency=concurrency,
            types=types,
            max_cases=max_cases,
            verify=verify,
            options_only_check=options_only_check,
            verifier_model=verifier_model,
            verifier_base_url=verifier_base_url,
            seed=seed,
            fresh=fresh,
            retry_failed=retry_failed,
            cache_dir=cache_dir,
            timeout=timeout,
            max_retries=max_retries,
            max_reasks=max_reasks,
            json_schema=json_schema,
            price_input=price_input,
            price_output=price_output,
        )

    @app.command("review-export")
    def review_export_cmd(
        bench: Path = typer.Argument(..., exists=True, file_okay=False, help="BENCH folder."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for review.csv/review.json."),
        include_dropped: bool = typer.Option(
            False, help="Also export tasks the verification policy dropped."
        ),
    ) -> None:
        """Export tasks for physician review: CSV and JSON with case context, question,
        options, answer, rationale, check flags, and empty review columns.
        """
        from behaviorsft.build.llm.review import export_review

        csv_path, json_path, n = export_review(bench, out, include_dropped=include_dropped)
        console.print(f"{n} tasks -> {csv_path}, {json_path}", markup=False, soft_wrap=True)
