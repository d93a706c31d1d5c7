"""Run a model over a bench split and write a RUN folder.

A RUN folder::

    RUN/
      config.json         the resolved EvalConfig (never an API key)
      predictions.jsonl   one Prediction per (task, seed), id '<task_id>@<seed>'
      metrics.json        evaluate.metrics.score_run(...) of those predictions
      manifest.json       counts, seeds, versions, command line

Resuming: rerunning the same command reuses every prediction that has an
answer and asks again only for rows that are missing or that failed (rows
with ``error``). Before appending, the file is rewritten without its error
rows (atomically), so each id appears once and the last attempt is what is
kept. A run is only resumed with the options that made it: a different model,
strategy, bench, split or sampling setting is refused, naming the option.

Failures: a backend returns a Generation with ``error`` for a call that
failed after its own retries; the runner asks again up to ``retries`` more
times, then records the row with ``error`` set. Such rows are never scored. An
exception raised by the backend (a bug or a crash, not a transient fault)
stops the run; what was written so far is kept and the next run resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from behaviorsft import __version__
from behaviorsft.bench import Bench, load_bench
from behaviorsft.dial import p_proactive
from behaviorsft.evaluate.baselines import BASELINES, baseline_answer, describe
from behaviorsft.evaluate.metrics import score_run
from behaviorsft.models.base import (
    ChoiceRequest,
    ChoiceScores,
    Generation,
    GenerationRequest,
    Model,
)
from behaviorsft.prompts import (
    FEW_SHOT_K,
    LABEL_STRATEGIES,
    STRATEGIES,
    build_messages,
    letters_of,
    parse_answer,
    parse_behavior_label,
    parse_behavior_token,
    select_few_shot,
)
from behaviorsft.records import ChatMessage, Prediction, Task
from behaviorsft.store import (
    FileInfo,
    FolderLock,
    JsonlWriter,
    RecordFileError,
    changed_options,
    load_records_deduped,
    new_manifest,
    read_manifest,
    write_jsonl,
    write_manifest,
)
from behaviorsft.study.verdicts import VERDICTS_FILE, Exclusion, exclude_rejected
from behaviorsft.taxonomy import BEHAVIOR_TOKENS, PROACTIVE_TOKEN, REACTIVE_TOKEN, TABLE_ORDER

CONFIG_FILE = "config.json"
PREDICTIONS_FILE = "predictions.jsonl"
METRICS_FILE = "metrics.json"

SPLITS = ("train", "val", "test", "all")
BEHAVIOR_MODES = ("auto", "reactive", "proactive")
SCORING_MODES = ("generate", "choice")
FORCED_TOKENS = {"reactive": REACTIVE_TOKEN, "proactive": PROACTIVE_TOKEN}
# In choice scoring the letter is scored where the answer format puts it.
CHOICE_PREFIX = "<answer>"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class EvalConfig:
    """Everything that decides what an evaluation run computes; written to config.json."""

    bench: str = field(metadata=_help("BENCH folder (tasks.jsonl + conversations.jsonl)."))
    model: str = field(metadata=_help("Model as provider/model[:adapter], e.g. hf/path:adapter."))
    out: str = field(metadata=_help("RUN folder to write (resumed if it exists)."))
    strategy: str = field(
        default="zero_shot", metadata=_help(f"Prompting strategy: {', '.join(STRATEGIES)}.")
    )
    split: str = field(default="test", metadata=_help("Split to evaluate: train, val, test, all."))
    seeds: list[int] = field(
        default_factory=lambda: [0],
        metadata=_help("Seeds; each gives one answer per task (sampling and few-shot picks)."),
    )
    limit: int | None = field(
        default=None,
        metadata=_help("Evaluate only N tasks, taken round-robin over task types."),
    )
    behavior: str = field(
        default="auto",
        metadata=_help(
            "auto: the model picks its behaviour token; reactive/proactive: force it "
            "(behaviorsft strategy only)."
        ),
    )
    scoring: str = field(
        default="generate",
        metadata=_help(
            "generate: parse the answer from generated text; choice: take the most likely "
            "option letter from next-token scores (backends with choice scoring)."
        ),
    )
    max_new_tokens: int = field(default=512, metadata=_help("Generation length limit."))
    temperature: float = field(default=0.0, metadata=_help("Sampling temperature (0: greedy)."))
    few_shot_k: int = field(default=FEW_SHOT_K, metadata=_help("Examples for few_shot."))
    chunk_size: int = field(
        default=64, metadata=_help("Requests per backend call; results are saved after each.")
    )
    retries: int = field(
        default=1, metadata=_help("Extra attempts for calls that failed, before recording errors.")
    )
    base_url: str | None = field(
        default=None, metadata=_help("Server URL for openai-compatible/ models.")
    )
    cache_dir: str | None = field(default=None, metadata=_help("Response cache of HTTP backends."))
    model_options: dict[str, Any] = field(
        default_factory=dict, metadata=_help("Extra backend options (e.g. dtype, concurrency).")
    )
    n_bootstrap: int = field(default=1000, metadata=_help("Bootstrap resamples for the 95% CIs."))
    label: str | None = field(
        default=None, metadata=_help("Column name in reports (default: model + strategy).")
    )
    exclude_rejected: bool = field(
        default=False,
        metadata=_help(
            "Leave out the tasks a clinician study rejected (BENCH/study_verdicts.jsonl, "
            "written by `study apply`)."
        ),
    )

    def validate(self, *, check_model: bool = True) -> None:
        """Check option values and combinations; the error names the option and the fix.

        ``check_model=False`` skips the model name (a caller passing its own model).
        """
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"--strategy {self.strategy!r} is unknown; choose one of {', '.join(STRATEGIES)}"
            )
        if self.behavior not in BEHAVIOR_MODES:
            raise ValueError(f"--behavior must be one of {', '.join(BEHAVIOR_MODES)}")
        if self.behavior != "auto" and self.strategy != "behaviorsft":  # binary tokens only
            raise ValueError(
                "--behavior reactive|proactive forces a behaviour token and needs "
                "--strategy behaviorsft"
            )
        if self.scoring not in SCORING_MODES:
            raise ValueError(f"--scoring must be one of {', '.join(SCORING_MODES)}")
        if self.split not in SPLITS:
            raise ValueError(
                f"--split {self.split!r} is unknown; choose one of {', '.join(SPLITS)}"
            )
        if not self.seeds:
            raise ValueError("--seeds needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"--seeds has duplicates: {self.seeds}")
        if self.limit is not None and self.limit < 1:
            raise ValueError("--limit must be at least 1")
        if self.chunk_size < 1 or self.retries < 0 or self.few_shot_k < 0:
            raise ValueError("--chunk-size must be >= 1, --retries and --few-shot-k >= 0")
        if self.n_bootstrap < 0:
            raise ValueError("--bootstrap must be >= 0")
        # A typo in the model fails here, before anything is written: an unknown
        # baseline/ or provider, or a local folder that does not exist.
        if baseline_kind(self.model) is None and check_model:
            from behaviorsft.models import check_model_spec

            check_model_spec(self.model)

    @property
    def display_label(self) -> str:
        """The report column name of this run."""
        if self.label:
            return self.label
        if baseline_kind(self.model) is not None:
            return self.model  # no prompt: the strategy means nothing here
        forced = f" [{self.behavior}]" if self.behavior != "auto" else ""
        return f"{self.model} {self.strategy}{forced}"


# Options that change what a resumed run would compute; they must match config.json.
_RESUME_KEYS = (
    "bench",
    "model",
    "strategy",
    "split",
    "behavior",
    "scoring",
    "max_new_tokens",
    "temperature",
    "few_shot_k",
)
# Option names that could hold a secret are never written to disk.
_SECRET = re.compile(r"(api[_-]?key|secret|password|token)$", re.IGNORECASE)


def config_dict(config: EvalConfig) -> dict[str, Any]:
    """The config as written to config.json (secret-looking model options removed)."""
    data = asdict(config)
    data["model_options"] = {
        k: v for k, v in config.model_options.items() if not _SECRET.search(str(k))
    }
    return data


def config_help() -> dict[str, str]:
    """Help text of every EvalConfig field (for docs and the CLI)."""
    return {f.name: f.metadata.get("help", "") for f in fields(EvalConfig)}


def read_config(run: str | Path) -> EvalConfig:
    """The EvalConfig a RUN folder was made with."""
    path = Path(run) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run}: not a RUN folder (no {CONFIG_FILE})")
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(EvalConfig)}
    return EvalConfig(**{k: v for k, v in data.items() if k in known})


class ResumeRefusedError(ValueError):
    """An existing output folder was made with other options (exit code REFUSED)."""


def loaded_model_name(spec: str) -> str:
    """``spec`` with a local-weights alias resolved (``hf/smollm2`` -> ``hf/<its folder>``).

    A run made under the alias and one made under the folder it stands for load the
    same weights; resuming compares this form. Specs that do not parse, and aliases
    not prepared, are returned unchanged.
    """
    from behaviorsft.models import parse_model_spec, resolve_model_name

    try:
        parsed = parse_model_spec(spec)
        if parsed.provider not in ("hf", "vllm"):
            return spec
        return str(replace(parsed, name=resolve_model_name(parsed.name)))
    except ValueError:
        return spec


def _check_resume(config: EvalConfig, out: Path) -> None:
    new = config_dict(config)
    saved = out / CONFIG_FILE
    if saved.exists():
        old_model = json.loads(saved.read_text(encoding="utf-8")).get("model")
        if isinstance(old_model, str) and loaded_model_name(old_model) == loaded_model_name(
            config.model
        ):
            new["model"] = old_model  # the same weights under another name
    diffs = changed_options(saved, new, _RESUME_KEYS)
    if diffs:
        raise ResumeRefusedError(
            f"{out} holds a run made with other options ({diffs}). "
            "Use a new --out, rerun with the same options to resume, or add --fresh to "
            "discard it."
        )


# --------------------------------------------------------------------------
# Tasks and requests
# --------------------------------------------------------------------------


def select_tasks(tasks: Sequence[Task], limit: int | None) -> list[Task]:
    """The first ``limit`` tasks taken round-robin over task types (file order within a type).

    A small ``--limit`` thus still covers every task type instead of the
    first few cases of one.
    """
    rank: dict[str, int] = {}
    keyed = []
    for t in tasks:
        r = rank.get(t.task_type.value, 0)
        rank[t.task_type.value] = r + 1
        keyed.append((r, TABLE_ORDER.index(t.task_type), t))
    ordered = [t for _, _, t in sorted(keyed, key=lambda x: (x[0], x[1]))]
    return ordered if limit is None else ordered[:limit]


def prediction_id(task: Task, seed: int) -> str:
    """Id of the prediction for ``task`` at ``seed``."""
    return f"{task.id}@{seed}"


# Task fields that neither reach the model nor decide the score: a rebuilt bench
# may change them without making an old answer stale.
_NOT_FINGERPRINTED = {"split", "generator", "option_permutation"}


def task_fingerprint(task: Task, context: str, examples: Sequence[tuple[Task, str]] = ()) -> str:
    """Hash of what the model is shown about ``task`` and what its answer is scored against.

    Covers the task's content (question, options, answer, type, behaviour
    annotation, perturbation, ...), the record text before the question and,
    for few-shot prompts, the solved examples. Stored with each prediction, so
    a resumed run notices a task that changed under the same id.
    """

    def content(t: Task, ctx: str) -> dict[str, Any]:
        return {"task": t.model_dump(mode="json", exclude=_NOT_FINGERPRINTED), "context": ctx}

    blob = json.dumps(
        {**content(task, context), "examples": [content(t, c) for t, c in examples]},
        sort_keys=True,
        ensure_ascii=False,
    )
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


@dataclass
class _Job:
    """One (task, seed) to answer, with its prompt and the task's fingerprint."""

    task: Task
    seed: int
    messages: list[ChatMessage]
    fingerprint: str = ""

    @property
    def id(self) -> str:
        return prediction_id(self.task, self.seed)


def build_jobs(
    bench: Bench, tasks: Sequence[Task], seeds: Sequence[int], config: EvalConfig
) -> list[_Job]:
    """Prompts for every (task, seed) pair, seeds outermost."""
    if baseline_kind(config.model) is not None:
        # A baseline reads the task, never a prompt: none is built.
        prints = {t.id: task_fingerprint(t, bench.context_text(t)) for t in tasks}
        return [_Job(task, seed, [], prints[task.id]) for seed in seeds for task in tasks]
    pool = bench.split("train") if config.strategy == "few_shot" else []
    if config.strategy == "few_shot" and config.few_shot_k and not pool:
        raise ValueError(
            f"{bench.path}: few_shot takes its examples from the train split, which is empty; "
            "assign splits or use --few-shot-k 0"
        )
    jobs = []
    for seed in seeds:
        for task in tasks:
            examples = []
            if config.strategy == "few_shot" and config.few_shot_k:
                picked = select_few_shot(task, pool, k=config.few_shot_k, seed=seed)
                examples = [(ex, bench.context_text(ex)) for ex in picked]
            context = bench.context_text(task)
            messages = build_messages(task, context, config.strategy, examples=examples)
            jobs.append(_Job(task, seed, messages, task_fingerprint(task, context, examples)))
    return jobs


def _now() -> datetime:
    return datetime.now(timezone.utc)


def prediction_from_generation(
    job: _Job, gen: Generation, config: EvalConfig, model_name: str, p_proactive: float | None
) -> Prediction:
    """The Prediction record of one generated answer (or of its failure)."""
    base: dict[str, Any] = {
        "id": job.id,
        "task_id": job.task.id,
        "model": model_name,
        "strategy": config.strategy,
        "seed": job.seed,
        "messages": job.messages,
        "usage": gen.usage,
        "latency_s": gen.latency_s,
        "created_at": _now(),
        "task_fingerprint": job.fingerprint or None,
    }
    if gen.error is not None or gen.text is None:
        return Prediction(**base, error=gen.error or "backend returned no text")
    letter = parse_answer(gen.text, letters_of(job.task))
    label = parse_behavior_label(gen.text) if config.strategy in LABEL_STRATEGIES else None
    return Prediction(
        **base,
        raw_output=gen.text,
        parsed_answer=letter,
        valid=letter is not None,
        correct=letter == job.task.answer if letter is not None else False,
        behavior_token=parse_behavior_token(gen.text),
        behavior_label=label,
        p_proactive=p_proactive,
    )


def format_choice_scores(logprobs: dict[str, float]) -> str:
    """Readable letter distribution for ``raw_output``: ``'A=0.100 B=0.700 ...'``."""
    return " ".join(f"{k}={math.exp(v):.3f}" for k, v in sorted(logprobs.items()))


def prediction_from_choice(
    job: _Job,
    scores: ChoiceScores,
    config: EvalConfig,
    model_name: str,
    *,
    p_proactive: float | None = None,
    token: str = "",
) -> Prediction:
    """The Prediction record of one choice-scored task (or of its failure).

    ``token``: the behaviour token the letters were scored after (forced, or
    the model's likelier one); it starts ``raw_output`` and is ``behavior_token``.
    """
    base: dict[str, Any] = {
        "id": job.id,
        "task_id": job.task.id,
        "model": model_name,
        "strategy": config.strategy,
        "seed": job.seed,
        "messages": job.messages,
        "latency_s": scores.latency_s,
        "created_at": _now(),
        "task_fingerprint": job.fingerprint or None,
    }
    if scores.error is not None or not scores.logprobs:
        return Prediction(**base, error=scores.error or "backend returned no scores")
    letter = scores.best
    scored = format_choice_scores(scores.logprobs)
    return Prediction(
        **base,
        raw_output=f"{token} {scored}" if token else scored,
        parsed_answer=letter,
        valid=letter is not None,
        correct=letter == job.task.answer,
        behavior_token=token or None,
        p_proactive=p_proactive,
    )


def baseline_kind(model: str) -> str | None:
    """``'random'`` for ``baseline/random`` (checked against BASELINES); None for models."""
    provider, _, kind = model.partition("/")
    if provider != "baseline":
        return None
    if kind not in BASELINES:
        raise ValueError(
            f"--model {model}: unknown baseline; choose one of "
            + ", ".join(f"baseline/{k}" for k in BASELINES)
        )
    return kind


def prediction_from_baseline(job: _Job, kind: str, config: EvalConfig) -> Prediction:
    """The Prediction of a shortcut baseline (no prompt is sent anywhere)."""
    letter = baseline_answer(job.task, kind, job.seed)
    return Prediction(
        id=job.id,
        task_id=job.task.id,
        model=config.model,
        strategy=config.strategy,
        seed=job.seed,
        raw_output=describe(kind),
        parsed_answer=letter,
        valid=True,
        correct=letter == job.task.answer,
        created_at=_now(),
        task_fingerprint=job.fingerprint or None,
    )


# --------------------------------------------------------------------------
# Calling the model
# --------------------------------------------------------------------------

Progress = Callable[[int], None]


def _retrying(
    call: Callable[[list[int]], list[Any]],
    n: int,
    failed: Callable[[Any], bool],
    retries: int,
) -> list[Any]:
    """Results for items 0..n-1; failed items are asked again, up to ``retries`` times."""
    results: list[Any] = [None] * n
    todo = list(range(n))
    for _attempt in range(retries + 1):
        if not todo:
            break
        for i, res in zip(todo, call(todo), strict=True):
            results[i] = res
        todo = [i for i in todo if failed(results[i])]
    return results


def _generate_chunk(
    model: Model, jobs: Sequence[_Job], config: EvalConfig, progress: Progress | None
) -> list[Prediction]:
    prefix = FORCED_TOKENS.get(config.behavior, "")
    track = BEHAVIOR_TOKENS if config.strategy == "behaviorsft" else ()
    requests = [
        GenerationRequest(
            messages=tuple(j.messages),
            key=j.id,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=j.seed,
            assistant_prefix=prefix,
            # Forced: the token is given, P(<proactive>) comes from a separate probe below.
            track_tokens=() if prefix else track,
        )
        for j in jobs
    ]
    if prefix and track:
        # The token-forcing ablation still records what the model would have chosen:
        # one extra 1-token request per task, without the prefix.
        requests += [
            GenerationRequest(
                messages=tuple(j.messages),
                key=f"{j.id}:p_proactive",
                max_new_tokens=1,
                temperature=0.0,
                seed=j.seed,
                track_tokens=track,
            )
            for j in jobs
        ]

    def call(idx: list[int]) -> list[Generation]:
        return model.generate([requests[i] for i in idx], progress=progress)

    # A final error (e.g. the prompt exceeds the context) would fail the same way again.
    gens = _retrying(
        call, len(requests), lambda g: g.error is not None and not g.final, config.retries
    )
    out = []
    for i, job in enumerate(jobs):
        gen = gens[i]
        probs = gens[len(jobs) + i].token_probs if len(gens) > len(jobs) else gen.token_probs
        out.append(prediction_from_generation(job, gen, config, model.name, p_proactive(probs)))
    return out


def probes_behavior_tokens(model: Model | None, config: EvalConfig) -> bool:
    """Whether choice scoring reads the first behaviour token too (see :func:`_score_chunk`)."""
    find = getattr(model, "single_token_id", None)
    return (
        config.scoring == "choice"
        and config.strategy == "behaviorsft"
        and callable(find)
        and all(find(tok) is not None for tok in BEHAVIOR_TOKENS)
    )


def _score_chunk(
    model: Model, jobs: Sequence[_Job], config: EvalConfig, progress: Progress | None
) -> list[Prediction]:
    """Choice scoring of a chunk.

    With the behaviorsft strategy on a model whose tokenizer has both behaviour
    tokens (a BehaviorSFT adapter), the first token is read as well, in the same
    backend call: a probe scores ``<reactive>``/``<proactive>`` as the next
    token after the prompt (P(<proactive>), renormalised over the two), and the
    letters are scored after ``<token> <answer>``: the forced token, or with
    ``--behavior auto`` both tokens, keeping the answer under the likelier one
    (what greedy decoding would have started with). The prompts share their
    prefix, so on ``hf/`` models this costs about one forward pass per task.
    Otherwise the letters are scored after ``<answer>`` (after the forced token
    when forced).
    """
    prefix = FORCED_TOKENS.get(config.behavior, "")
    if not probes_behavior_tokens(model, config):
        requests = [
            ChoiceRequest(
                messages=tuple(j.messages),
                letters=letters_of(j.task),
                key=j.id,
                assistant_prefix=f"{prefix} {CHOICE_PREFIX}" if prefix else CHOICE_PREFIX,
            )
            for j in jobs
        ]
        scores = _score_requests(model, requests, config, progress)
        return [
            prediction_from_choice(j, s, config, model.name, token=prefix)
            for j, s in zip(jobs, scores, strict=True)
        ]
    tokens = [prefix] if prefix else list(BEHAVIOR_TOKENS)
    requests = []
    for j in jobs:
        messages = tuple(j.messages)
        requests.append(
            ChoiceRequest(messages=messages, letters=BEHAVIOR_TOKENS, key=f"{j.id}:p_proactive")
        )
        requests += [
            ChoiceRequest(
                messages=messages,
                letters=letters_of(j.task),
                key=f"{j.id}:{tok}",
                assistant_prefix=f"{tok} {CHOICE_PREFIX}",
            )
            for tok in tokens
        ]
    scores = _score_requests(model, requests, config, progress)
    out = []
    width = 1 + len(tokens)
    for n, job in enumerate(jobs):
        probe, *answers = scores[n * width : (n + 1) * width]
        p = None
        if probe.error is None and probe.logprobs and PROACTIVE_TOKEN in probe.logprobs:
            p = min(1.0, max(0.0, math.exp(probe.logprobs[PROACTIVE_TOKEN])))
        pick = 0 if prefix else int(p is not None and p >= 0.5)  # auto: the likelier token
        out.append(
            prediction_from_choice(
                job, answers[pick], config, model.name, p_proactive=p, token=tokens[pick]
            )
        )
    return out


def _score_requests(
    model: Model, requests: list[ChoiceRequest], config: EvalConfig, progress: Progress | None
) -> list[ChoiceScores]:
    def call(idx: list[int]) -> list[ChoiceScores]:
        return model.score_choices([requests[i] for i in idx], progress=progress)

    return _retrying(call, len(requests), lambda s: s.error is not None, config.retries)


def _chunks(items: Sequence[_Job], size: int) -> Iterator[Sequence[_Job]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


@dataclass
class RunResult:
    """What ``run_eval`` did."""

    out: Path
    metrics: dict[str, Any]
    requested: int  # (task, seed) pairs in this evaluation
    reused: int  # answered rows found on disk
    generated: int  # rows written by this call (answers and errors)
    errors: int  # rows still failed after this call
    stale: int = 0  # rows dropped because their task changed since they were made
    notes: list[str] = field(default_factory=list)  # warnings the caller should show


Warn = Callable[[str], None]

# Prediction fields that differ between two answers to the same request made at
# different times; two lines that differ only here are exact duplicates.
_BOOKKEEPING = ("created_at", "latency_s", "usage")


def _load_deduped(path: Path) -> tuple[list[Prediction], list[tuple[int, int]], bool]:
    """(predictions, dropped exact duplicates as (line, first line), had a torn tail)."""
    result, dups = load_records_deduped(path, Prediction, ignore=_BOOKKEEPING)
    if result.errors:
        raise RecordFileError(result.errors)
    return result.records, dups, result.torn_tail is not None


def _duplicates_note(path: Path, dups: Sequence[tuple[int, int]]) -> str:
    where = ", ".join(f"line {n} (= line {first})" for n, first in dups[:5])
    more = f" and {len(dups) - 5} more" if len(dups) > 5 else ""
    return (
        f"{path}: dropped {len(dups)} exact duplicate line(s): {where}{more}; each repeats an "
        "earlier line's id and answer (two runs wrote to this folder at once)"
    )


def _prepare_predictions(path: Path, fingerprints: dict[str, str], warn: Warn) -> int:
    """Make the predictions file ready to resume; return how many rows were stale.

    Rewrites the file (atomically) without error rows, exact duplicates and
    rows whose task changed since they were made, so each of those ids is
    asked again and appears once.
    """
    if not path.exists():
        return 0
    rows, dups, torn = _load_deduped(path)
    if dups:
        warn(_duplicates_note(path, dups))
    kept: list[Prediction] = []
    stale = unchecked = failed = 0
    for p in rows:
        want = fingerprints.get(p.id)
        if p.error is not None:
            failed += 1
        elif want is not None and p.task_fingerprint is not None and p.task_fingerprint != want:
            stale += 1
        else:
            unchecked += want is not None and p.task_fingerprint is None
            kept.append(p)
    if failed or stale or dups or torn:
        write_jsonl(path, kept)
    if stale:
        warn(
            f"{stale} prediction(s) in {path} were made on a task whose content has changed "
            "since (the bench was rebuilt): they are asked again. Use --fresh to redo the "
            "whole run."
        )
    if unchecked:
        warn(
            f"{unchecked} prediction(s) in {path} were made by an older version without task "
            "fingerprints, so they cannot be checked against the bench; if it was rebuilt "
            "since, rerun with --fresh"
        )
    return stale


def load_predictions(run: str | Path) -> list[Prediction]:
    """Every prediction of a RUN folder (raises listing bad lines).

    Exact duplicate lines (same id and answer, as two concurrent runs leave)
    are dropped with a ``UserWarning``; duplicates that differ are an error
    naming both lines.
    """
    path = Path(run) / PREDICTIONS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run}: no {PREDICTIONS_FILE}; is it a RUN folder?")
    rows, dups, _ = _load_deduped(path)
    if dups:
        warnings.warn(_duplicates_note(path, dups), UserWarning, stacklevel=2)
    return rows


def check_task_fingerprints(
    run: str | Path, bench: Bench, config: EvalConfig, predictions: Sequence[Prediction]
) -> None:
    """Refuse predictions made on a task that has changed since (the bench was rebuilt).

    For the commands that read a RUN with the bench as it is now (``judge``,
    ``hard``, ``ensemble``): an answer given to an older version of a task
    would be judged, or counted right or wrong, against another question.
    Predictions without a fingerprint (older versions) cannot be checked.
    A run made with ``exclude_rejected`` is checked against the bench as it saw
    it (its few-shot examples were drawn from the kept tasks only).
    """
    if config.exclude_rejected and (Path(bench.path) / VERDICTS_FILE).exists():
        bench, _ = exclude_rejected(bench)
    by_id = {t.id: t for t in bench.tasks}
    checkable = [p for p in predictions if p.task_fingerprint is not None and p.task_id in by_id]
    if not checkable:
        return
    tasks = [by_id[tid] for tid in dict.fromkeys(p.task_id for p in checkable)]
    seeds = sorted({p.seed for p in checkable})
    now = {j.id: j.fingerprint for j in build_jobs(bench, tasks, seeds, config)}
    stale = [p.id for p in checkable if p.id in now and now[p.id] != p.task_fingerprint]
    if stale:
        raise ValueError(
            f"{run}: {len(stale)} prediction(s) (e.g. {stale[0]!r}) were made on a task that "
            f"has changed since in {bench.path} (the bench was rebuilt); run "
            f"`behaviorsft eval` with the same options on {run} first: it asks those again"
        )


def write_run_outputs(
    out: Path,
    config: dict[str, Any],
    predictions: Sequence[Prediction],
    metrics: dict[str, Any],
    *,
    stage: str,
    notes: Sequence[str] = (),
    extra_counts: dict[str, int] | None = None,
) -> None:
    """metrics.json and manifest.json of a RUN folder (config.json is written by the caller)."""
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    old = read_manifest(out) if (out / "manifest.json").exists() else None
    manifest = new_manifest(
        stage,
        config=config,
        seeds=sorted({p.seed for p in predictions}),
        files={PREDICTIONS_FILE: FileInfo(record_type="prediction", count=len(predictions))},
        counts={k: v for k, v in metrics.get("counts", {}).items() if isinstance(v, int)}
        | (extra_counts or {}),
        notes=list(notes),
    )
    if old is not None:
        manifest.created_at = old.created_at
    write_manifest(out, manifest)


def _previous_coverage(out: Path) -> tuple[int, list[int]] | None:
    """(tasks, seeds) the RUN folder's metrics.json covered before this call, if readable."""
    try:
        old = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))
        return int(old["counts"]["tasks"]), [int(s) for s in old.get("seeds", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _coverage_notes(
    before: tuple[int, list[int]] | None, metrics: dict[str, Any], config: EvalConfig
) -> list[str]:
    """Say so when metrics.json now covers fewer tasks or seeds than it did."""
    if before is None:
        return []
    notes = []
    tasks, seeds = metrics["counts"]["tasks"], metrics["seeds"]
    if tasks < before[0]:
        why = f" (--limit {config.limit})" if config.limit is not None else ""
        notes.append(
            f"metrics.json now covers {tasks} tasks (it covered {before[0]}){why}; the other "
            "predictions are kept in predictions.jsonl: rerun with the earlier options to "
            "score them all again"
        )
    if set(seeds) < set(before[1]):
        notes.append(
            f"metrics.json now covers seeds {seeds} (it covered {before[1]}); the other seeds' "
            "predictions are kept"
        )
    return notes


_RUN_FILES = (CONFIG_FILE, PREDICTIONS_FILE, METRICS_FILE, "manifest.json")


def _check_not_other_output(out: Path) -> None:
    """Refuse an --out that holds another stage's outputs (e.g. the BENCH folder itself)."""
    try:
        manifest = read_manifest(out)
    except ValueError:
        manifest = None  # a broken manifest: not ours to judge here
    if manifest is not None and manifest.stage != "eval":
        raise ValueError(
            f"--out {out} holds the outputs of `{manifest.stage}` (its manifest.json), not a "
            "RUN folder; give a new or existing RUN folder"
        )


def run_eval(
    config: EvalConfig,
    *,
    model: Model | None = None,
    show_progress: bool = True,
    fresh: bool = False,
    warn: Warn | None = None,
) -> RunResult:
    """Evaluate ``config.model`` on the bench and write the RUN folder; resume if it exists.

    ``model`` overrides loading ``config.model`` (tests and notebooks pass an
    object implementing the Model protocol). ``fresh`` discards what the RUN
    folder holds first. ``warn`` is called with each warning as it arises (they
    are also returned in ``RunResult.notes``).

    Everything is checked before anything is written: a bad option or model
    name leaves no trace, and a new RUN folder whose model could not be loaded
    (or whose endpoint does not answer) is removed again. The folder is locked
    while the run writes (``FolderBusyError`` for a second writer).
    """
    config.validate(check_model=model is None)
    config.bench = str(Path(config.bench).resolve())
    bench = load_bench(config.bench)
    exclusion = None
    if config.exclude_rejected:
        bench, exclusion = exclude_rejected(bench)
    split_tasks = bench.split(config.split)
    if not split_tasks:
        present = sorted({t.split.value if t.split else "none" for t in bench.tasks})
        raise ValueError(
            f"{config.bench}: no tasks in split {config.split!r} (splits present: {present})"
        )
    tasks = select_tasks(split_tasks, config.limit)
    jobs = build_jobs(bench, tasks, config.seeds, config)
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        if warn is not None:
            warn(msg)

    out = Path(config.out)
    _check_not_other_output(out)
    existed = out.exists()
    lock = FolderLock(out).acquire()
    had: set[str] = set()
    try:
        if fresh:
            for name in _RUN_FILES:
                (out / name).unlink(missing_ok=True)
        had = {name for name in _RUN_FILES if (out / name).exists()}
        result = _run_locked(
            config, out, tasks, jobs, model, show_progress, note, warn or _no_warn, exclusion
        )
        result.notes = notes
        return result
    except BaseException:
        pred_path = out / PREDICTIONS_FILE
        if not (pred_path.exists() and pred_path.stat().st_size > 0):
            # Nothing was answered: remove what this call created (a config.json
            # that would refuse the corrected command), and a folder it made.
            lock.undo_first_call(_RUN_FILES, had, existed=existed)
        raise
    finally:
        lock.release()


def _no_warn(message: str) -> None:
    pass


def _run_locked(
    config: EvalConfig,
    out: Path,
    tasks: Sequence[Task],
    jobs: Sequence[_Job],
    model: Model | None,
    show_progress: bool,
    note: Warn,
    warn: Warn,
    exclusion: Exclusion | None = None,
) -> RunResult:
    _check_resume(config, out)
    pred_path = out / PREDICTIONS_FILE
    before = _previous_coverage(out)
    stale = _prepare_predictions(pred_path, {j.id: j.fingerprint for j in jobs}, note)
    wanted = {j.id for j in jobs}
    generated = 0
    own_model = False
    if baseline_kind(config.model) is None and model is None:
        with JsonlWriter(pred_path) as probe:
            pending = any(j.id not in probe for j in jobs)
        if pending:
            # Loaded before config.json is written: a model that cannot be loaded
            # leaves nothing behind.
            model = _load(config, warn)
            own_model = True
    try:
        (out / CONFIG_FILE).write_text(
            json.dumps(config_dict(config), indent=2) + "\n", encoding="utf-8"
        )
        with JsonlWriter(pred_path) as writer:
            todo = [j for j in jobs if j.id not in writer]
            reused = len(jobs) - len(todo)
            if todo:
                generated = _answer(config, model, todo, writer, show_progress)
    finally:
        if own_model and model is not None:
            model.close()
    predictions = [p for p in load_predictions(out) if p.id in wanted]
    metrics = score_run(
        {t.id: t for t in tasks},
        predictions,
        strategy=config.strategy,
        n_bootstrap=config.n_bootstrap,
    )
    metrics["label"] = config.display_label
    metrics["model"] = config.model
    for msg in _coverage_notes(before, metrics, config):
        note(msg)
    manifest_config, extra_notes, extra_counts = config_dict(config), [], {}
    if exclusion is not None:  # which verdicts decided the task set, for the record
        manifest_config["study_verdicts"] = exclusion.record()
        extra_counts["excluded_rejected"] = exclusion.excluded
        extra_notes.append(exclusion.note())
    write_run_outputs(
        out,
        manifest_config,
        predictions,
        metrics,
        stage="eval",
        notes=[f"behaviorsft {__version__}", *extra_notes],
        extra_counts=extra_counts,
    )
    return RunResult(
        out=out,
        metrics=metrics,
        requested=len(jobs),
        reused=reused,
        generated=generated,
        errors=metrics["counts"]["errors"],
        stale=stale,
    )


class RetryReporter:
    """Says what an HTTP backend is doing while it retries, without flooding the terminal.

    The first retry for each kind of fault (``HTTP 429``, ``timed out`` ...) is
    reported at once; later ones of that kind at most every ``every_s`` seconds,
    with how many were left unreported in between.
    """

    def __init__(self, warn: Warn, max_retries: int, every_s: float = 5.0) -> None:
        self.warn = warn
        self.max_retries = max_retries
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def __call__(self, key: str, attempt: int, reason: str, delay_s: float) -> None:
        kind = reason.split(":")[0].split("(")[0].strip()
        now = time.monotonic()
        if now - self._last.get(kind, -math.inf) < self.every_s:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return
        quiet = self._quiet.pop(kind, 0)
        also = f" ({quiet} more such retries since the last message)" if quiet else ""
        self._last[kind] = now
        self.warn(
            f"{reason} for request {key}; attempt {attempt + 1} of {self.max_retries + 1}, "
            f"waiting {delay_s:.1f}s{also}"
        )


_HTTP_PROVIDERS = ("openai", "openai-compatible")


def _load(config: EvalConfig, warn: Warn) -> Model:
    # Imported here so that evaluation code (and its tests) does not pull in backends.
    from behaviorsft.models import load_model, parse_model_spec

    options = dict(config.model_options)
    if parse_model_spec(config.model).provider in _HTTP_PROVIDERS:
        # A server that is not there is reported at once, not after minutes of retries;
        # retries and a lowered concurrency are said as they happen.
        options.setdefault("fail_fast", True)
        options.setdefault("on_notice", warn)
        options.setdefault("on_retry", RetryReporter(warn, int(options.get("max_retries", 5))))
    model = load_model(
        config.model,
        base_url=config.base_url,
        cache_dir=config.cache_dir,
        **options,
    )
    if config.scoring == "choice" and not model.supports_choice_scoring:
        model.close()
        raise ValueError(
            f"{config.model}: this backend cannot score choices; use --scoring generate "
            "(choice scoring needs next-token logits, e.g. an hf/ model)"
        )
    return model


def _answer(
    config: EvalConfig,
    model: Model | None,
    todo: Sequence[_Job],
    writer: JsonlWriter,
    show_progress: bool,
) -> int:
    kind = baseline_kind(config.model)
    if kind is not None:
        # No model: the answer is a function of the task (see evaluate/baselines.py).
        with _ProgressBar(show_progress, len(todo), config) as bar:
            bar.start_chunk(len(todo))
            for job in todo:
                writer.write(prediction_from_baseline(job, kind, config))
                bar.report(1)
        return len(todo)
    assert model is not None
    if config.scoring == "choice" and not model.supports_choice_scoring:
        raise ValueError(
            f"{config.model}: this backend cannot score choices; use --scoring generate "
            "(choice scoring needs next-token logits, e.g. an hf/ model)"
        )
    step = _score_chunk if config.scoring == "choice" else _generate_chunk
    # Forced behaviour with behaviorsft sends one extra probe request per task.
    per_job = 2 if (config.scoring == "generate" and config.behavior != "auto") else 1
    if probes_behavior_tokens(model, config):  # a probe, and both tokens' answers when auto
        per_job = 2 if config.behavior != "auto" else 3
    written = 0
    with _ProgressBar(show_progress, len(todo) * per_job, config) as bar:
        for chunk in _chunks(todo, config.chunk_size):
            bar.start_chunk(len(chunk) * per_job)
            for pred in step(model, chunk, config, bar.report):
                writer.write(pred)
                written += 1
            bar.chunk_done()
    return written


class _ProgressBar:
    """A rich progress bar over requests, or nothing when disabled.

    Backends report finished requests through ``report``; retries may report
    more than a chunk holds and a backend may report nothing, so the bar is
    clamped to each chunk's size and topped up when the chunk is done.
    """

    def __init__(self, enabled: bool, total: int, config: EvalConfig) -> None:
        self.enabled = enabled
        self.total = total
        self.description = config.display_label
        self._progress: Any = None
        self._bar: Any = None
        self._in_chunk = 0
        self._chunk_size = 0

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from behaviorsft.progress import make_progress

            self._progress = make_progress()
            self._progress.start()
            self._bar = self._progress.add_task(self.description, total=self.total)
        return self

    def _advance(self, n: int) -> None:
        if self._progress is not None and n > 0:
            self._progress.advance(self._bar, n)

    def start_chunk(self, size: int) -> None:
        """A chunk of ``size`` requests is about to be sent."""
        self._in_chunk = 0
        self._chunk_size = size

    def report(self, n: int) -> None:
        """Called by the backend with the number of requests just finished."""
        step = min(n, max(0, self._chunk_size - self._in_chunk))
        self._in_chunk += step
        self._advance(step)

    def chunk_done(self) -> None:
        """Top the bar up to the end of the chunk (for backends that report nothing)."""
        self._advance(self._chunk_size - self._in_chunk)
        self._in_chunk = self._chunk_size

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
