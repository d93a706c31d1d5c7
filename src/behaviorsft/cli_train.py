"""Commands ``train``, ``sft-data`` and ``merge`` (registered on the main app by ``register``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

# Errors a user can fix; anything else is a bug and keeps its traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, RuntimeError)


def _fail(exc: BaseException) -> typer.Exit:
    err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
    return typer.Exit(code=2)


def _overrides(set_: list[str] | None, **given: Any) -> dict[str, Any]:
    from behaviorsft.train.config import parse_set

    values = {k: v for k, v in given.items() if v is not None}
    values.update(parse_set(set_))
    return values


def register(app: typer.Typer) -> None:
    """Add the training commands to ``app``."""

    @app.command("train")
    def train_cmd(
        mode: str = typer.Option(
            ..., "--mode", help="'behavior' (BehaviorSFT) or 'general' (General SFT baseline)."
        ),
        model: str = typer.Option(
            ..., "--model", help="Base model: Hugging Face id or path (smollm2: the prepared one)."
        ),
        bench: Path = typer.Option(..., "--bench", help="BENCH folder with train/val splits."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (adapter, checkpoints)."),
        config: Path | None = typer.Option(
            None,
            "--config",
            "-c",
            help="YAML recipe, e.g. configs/paper.yaml ('paper': the copy shipped in the package).",
        ),
        resume: bool = typer.Option(
            False, "--resume", help="Continue from the last checkpoint in --out."
        ),
        inventory: str | None = typer.Option(
            None, "--inventory", help="Token inventory: 'binary' (default) or 'fine'."
        ),
        set_: list[str] | None = typer.Option(
            None,
            "--set",
            help="Override any option or TRL/transformers argument: --set learning_rate=2e-4 "
            "(repeatable).",
        ),
    ) -> None:
        """Fine-tune a causal LM with LoRA: BehaviorSFT (behaviour token first) or General SFT.

        Writes to OUT: the best adapter + tokenizer (with the behaviour tokens),
        checkpoint-*/ (the best one holds a BEST file), best_checkpoint.json,
        train_config.yaml (resolved), data_report.json, training_log.jsonl,
        manifest.json. Evaluate it with --model hf/BASE:OUT; merge it with
        'behaviorsft merge OUT --out MERGED' to serve it with vLLM.
        """
        from behaviorsft.train.config import load_config
        from behaviorsft.train.trainer import train

        if config is None:
            err_console.print(
                "note: no --config given: TRL's defaults apply, not the paper's recipe "
                "(pass --config configs/paper.yaml for that)",
                markup=False,
                soft_wrap=True,
            )
        try:
            cfg = load_config(
                config,
                _overrides(
                    set_,
                    mode=mode,
                    model=model,
                    bench=str(bench),
                    output_dir=str(out),
                    inventory=inventory,
                ),
            )
            result = train(cfg, resume=resume, log=lambda s: console.print(s, markup=False))
        except _USER_ERRORS as exc:
            raise _fail(exc) from None
        best = result.best_checkpoint.name if result.best_checkpoint else "-"
        metric = "-" if result.best_metric is None else f"{result.best_metric:.4f}"
        console.print(
            f"done: {result.global_step} steps; best checkpoint {best} "
            f"(val accuracy {metric}); adapter in {result.output_dir}",
            markup=False,
        )

    @app.command("sft-data")
    def sft_data_cmd(
        bench: Path = typer.Option(..., "--bench", help="BENCH folder."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for <split>.jsonl + report."),
        mode: str = typer.Option("behavior", "--mode", help="'behavior' or 'general'."),
        inventory: str = typer.Option("binary", "--inventory", help="'binary' or 'fine'."),
        splits: list[str] = typer.Option(
            ["train", "val"], "--split", help="Splits to write (repeatable)."
        ),
        model: str | None = typer.Option(
            None, "--model", help="Tokenizer to check lengths with (tokens are added to it)."
        ),
        max_length: int = typer.Option(4096, "--max-length", help="Length limit to check."),
    ) -> None:
        """Write the SFT examples that 'train' would use, and the bad-data report, for inspection.

        Each line holds the conversational prompt (the evaluation harness's
        'behaviorsft' messages) and the completion (the target). With --model,
        prompts are tokenized with its chat template and checked against
        --max-length.
        """
        from behaviorsft.bench import load_bench
        from behaviorsft.train.data import prepare_split, write_sft_data
        from behaviorsft.train.tokens import add_tokens_to_tokenizer

        if mode not in ("behavior", "general"):
            raise typer.BadParameter("use 'behavior' or 'general'", param_hint="--mode")
        if inventory not in ("binary", "fine"):
            raise typer.BadParameter("use 'binary' or 'fine'", param_hint="--inventory")
        try:
            b = load_bench(bench)
            tokenizer = None
            if model is not None:
                from transformers import AutoTokenizer

                from behaviorsft.models import check_model_folder, load_error_line

                path = check_model_folder(model, "--model")
                try:
                    tokenizer = AutoTokenizer.from_pretrained(path)
                except OSError as exc:  # no such hub id, no network, not a model folder
                    why = load_error_line(exc)
                    raise ValueError(f"--model {model}: cannot load a tokenizer ({why})") from None
                if mode == "behavior":
                    add_tokens_to_tokenizer(tokenizer, inventory)  # type: ignore[arg-type]
            examples, reports = {}, []
            for split in splits:
                ex, rep = prepare_split(
                    b,
                    split,
                    mode=mode,  # type: ignore[arg-type]
                    inventory=inventory,  # type: ignore[arg-type]
                    tokenizer=tokenizer,
                    max_length=max_length if tokenizer is not None else None,
                )
                examples[split] = ex
                reports.append(rep)
                console.print(rep.summary(), markup=False)
            paths = write_sft_data(out, examples, reports)
        except _USER_ERRORS as exc:
            raise _fail(exc) from None
        console.print("wrote " + ", ".join(str(p) for p in paths), markup=False, soft_wrap=True)

    @app.command("merge")
    def merge_cmd(
        adapter: Path = typer.Argument(
            ..., help="Output of 'train' (or a checkpoint-* folder in it)."
        ),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for the merged model."),
        base: str | None = typer.Option(
            None, "--base", help="Base model (default: the adapter's base_model_name_or_path)."
        ),
        dtype: str = typer.Option(
            "auto", "--dtype", help="auto (the base's), bfloat16, float16 or float32."
        ),
    ) -> None:
        """Merge an adapter into its base model: plain weights + tokenizer, servable by vLLM."""
        from behaviorsft.train.merge import merge_adapter

        try:
            path = merge_adapter(adapter, out, base=base, dtype=dtype)
        except _USER_ERRORS as exc:
            raise _fail(exc) from None
        console.print(f"merged model written to {path}", markup=False)
