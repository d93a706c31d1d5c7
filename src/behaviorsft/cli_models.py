"""CLI commands about models and exports: ``export-lm-eval``.

``register(app)`` adds them to the main typer app (called from ``cli.py``).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from behaviorsft.exit_codes import ExitCode, exit_with

console = Console()


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("export-lm-eval")
    def export_lm_eval_cmd(
        bench: Path = typer.Option(
            ..., "--bench", exists=True, file_okay=False, help="Benchmark folder (BENCH)."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Folder to write the lm-eval task to."),
        split: str = typer.Option("test", help="Split to export ('all' for every task)."),
        chat_template: str | None = typer.Option(
            None,
            "--chat-template",
            help="Model or tokenizer (hub id or folder) whose chat template renders the "
            "prompts; omit for plain-text prompts (base models).",
        ),
        strategy: str = typer.Option("zero_shot", help="Prompt strategy: zero_shot or explicit."),
        overwrite: bool = typer.Option(False, help="Replace a non-empty output folder."),
    ) -> None:
        """Write BENCH's split as an lm-evaluation-harness task (multiple choice over letters).

        Then run: lm_eval --model hf --model_args pretrained=MODEL --include_path OUT
        --tasks behaviorbench
        """
        from behaviorsft.bench import load_bench
        from behaviorsft.export.lm_eval import TASK_NAME, export_lm_eval

        try:
            result = export_lm_eval(
                load_bench(bench),
                out,
                split=split,
                chat_template_from=chat_template,
                strategy=strategy,
                overwrite=overwrite,
            )
        except (ValueError, FileExistsError) as e:
            console.print(f"error: {e}", style="red", markup=False, soft_wrap=True)
            raise exit_with(ExitCode.INPUT_ERROR) from None
        console.print(
            f"wrote {result.n_docs} tasks ({len(result.task_types)} task types) to "
            f"{result.folder}; prompts: {result.rendering}",
            markup=False,
            soft_wrap=True,
        )
        console.print(
            f"run: lm_eval --model hf --model_args pretrained=MODEL "
            f"--include_path {result.folder} --tasks {TASK_NAME}",
            markup=False,
            soft_wrap=True,
        )
