"""The G-Eval judge stage: score every prediction of one or more RUN folders.

A JUDGED folder::

    JUDGED/
      config.json                  the resolved JudgeConfig (never an API key)
      steps.json                   evaluation steps per criterion, generated once, reused
      runs.json                    the judged runs in order: name, path, label, task types
      runs/<name>/judgements.jsonl one Judgement per (prediction, criterion),
                                   id '<prediction_id>:<criterion>'
      aggregates.json, aggregates.md, figure3_geval.png, figure2_density.png
      manifest.json                counts, versions, command line

Each RUN gets its own judgements file because prediction ids ('<task>@<seed>')
repeat across runs of the same bench.

Resuming: rerunning the command keeps every scored judgement and judges again
only the missing and the unscored ones (rows with ``error`` are dropped from
the file first, so each id appears once). More runs and more criteria can be
added to a JUDGED folder later; a different judge, method, sample count or
prompt version is refused, naming the option.

Failures: the HTTP client retries transient faults a bounded number of times
(``--option max_retries=N``); a call that still fails, or a reply with no
readable score, is recorded as an unscored Judgement with the reason. It is
never given a default score.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from behaviorsft import __version__
from behaviorsft.bench import load_bench
from behaviorsft.evaluate.runner import (
    _SECRET,
    ResumeRefusedError,
    check_task_fingerprints,
    load_predictions,
    read_config,
    select_tasks,
)
from behaviorsft.judge.criteria import (
    ALL_CRITERIA,
    CRITERIA,
    PROMPT_VERSION,
    SCORE_TOKENS,
    CriterionSpec,
    form_prompt,
    normalise,
    parse_criteria,
    parse_score,
    parse_steps,
    score_mass,
    steps_prompt,
    weighted_score,
)
from behaviorsft.models import check_model_spec, parse_model_spec
from behaviorsft.models.base import Generation, GenerationRequest, Model
from behaviorsft.records import ChatMessage, Criterion, Judgement, Prediction, Task
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

CONFIG_FILE = "config.json"
STEPS_FILE = "steps.json"
RUNS_FILE = "runs.json"
RUNS_DIR = "runs"
JUDGEMENTS_FILE = "judgements.jsonl"

METHODS = ("auto", "logprobs", "sampling")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class JudgeConfig:
    """Everything that decides what a judging run computes; written to config.json."""

    runs: list[str] = field(metadata=_help("RUN folders to judge (made by `behaviorsft eval`)."))
    out: str = field(metadata=_help("JUDGED folder to write (resumed when it exists)."))
    judge: str = field(
        default="openai/gpt-4o-mini",
        metadata=_help("Judge model, provider/model (openai/ or openai-compatible/)."),
    )
    criteria: list[str] = field(
        default_factory=lambda: [c.value for c in ALL_CRITERIA],
        metadata=_help("Criteria to score: " + ", ".join(c.value for c in ALL_CRITERIA) + "."),
    )
    method: str = field(
        default="auto",
        metadata=_help(
            "auto: probability-weighted score from top log-probabilities, sampling where the "
            "endpoint gives none; logprobs: never sample; sampling: always sample."
        ),
    )
    samples: int = field(
        default=20, metadata=_help("Sampled scores averaged by the sampling method (G-Eval: 20).")
    )
    sample_temperature: float = field(
        default=1.0, metadata=_help("Temperature of the sampled scores (G-Eval: 1.0).")
    )
    max_new_tokens: int = field(
        default=128, metadata=_help("Length limit of a form-filling reply (score + explanation).")
    )
    steps_max_new_tokens: int = field(
        default=512, metadata=_help("Length limit of the evaluation-steps reply.")
    )
    reference: bool = field(
        default=False,
        metadata=_help(
            "Show the judge the correct option and its rationale (off: reference-free)."
        ),
    )
    limit: int | None = field(
        default=None,
        metadata=_help("Judge only N tasks per run (round-robin over task types; all seeds)."),
    )
    base_url: str | None = field(
        default=None, metadata=_help("Server URL for openai-compatible/ judges.")
    )
    cache_dir: str | None = field(default=None, metadata=_help("Response cache folder."))
    concurrency: int = field(default=8, metadata=_help("Judge calls in flight at once."))
    model_options: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help("Extra client options, e.g. max_retries, timeout_s, api_key_env."),
    )
    n_bootstrap: int = field(default=1000, metadata=_help("Bootstrap resamples for the 95% CIs."))

    def validate(self) -> None:
        """Check option values; the error names the option and the fix."""
        if not self.runs:
            raise ValueError("give at least one RUN folder to judge")
        if self.method not in METHODS:
            raise ValueError(f"--method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.samples < 1:
            raise ValueError(f"--samples {self.samples}: need at least 1")
        if self.sample_temperature <= 0 and self.samples > 1:
            raise ValueError(
                "--sample-temperature must be > 0: at temperature 0 every sample is the same"
            )
        if self.max_new_tokens < 1 or self.steps_max_new_tokens < 1:
            raise ValueError("--max-new-tokens must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("--limit must be at least 1")
        if self.concurrency < 1:
            raise ValueError("--concurrency must be at least 1")
        if self.n_bootstrap < 0:
            raise ValueError("--bootstrap must be >= 0")
        check_model_spec(self.judge)  # a malformed name fails before any file is written
        self.criteria = [c.value for c in self.criterion_list]

    @property
    def criterion_list(self) -> list[Criterion]:
        """The criteria as enum members, in the order given (unknown names raise)."""
        return parse_criteria(list(self.criteria))


# Options that change what a resumed folder would compute; they must match config.json.
_RESUME_KEYS = (
    "judge",
    "method",
    "samples",
    "sample_temperature",
    "max_new_tokens",
    "reference",
    "prompt_version",
)


def config_dict(config: JudgeConfig) -> dict[str, Any]:
    """The config as written to config.json (secret-looking client options removed)."""
    data = asdict(config)
    data["model_options"] = {
        k: v for k, v in config.model_options.items() if not _SECRET.search(str(k))
    }
    data["prompt_version"] = PROMPT_VERSION
    return data


def config_help() -> dict[str, str]:
    """Help text of every JudgeConfig field (for docs and the CLI)."""
    return {f.name: f.metadata.get("help", "") for f in fields(JudgeConfig)}


def _check_resume(config: JudgeConfig, out: Path) -> None:
    diffs = changed_options(out / CONFIG_FILE, config_dict(config), _RESUME_KEYS)
    if diffs:
        raise ResumeRefusedError(
            f"{out} holds judgements made with other options ({diffs}). "
            "Use a new --out, add --fresh to start over, or rerun with the same options."
        )


# --------------------------------------------------------------------------
# The runs being judged
# --------------------------------------------------------------------------


@dataclass
class RunEntry:
    """One judged RUN as recorded in runs.json."""

    name: str  # folder name under JUDGED/runs/
    path: str  # the RUN folder, absolute
    label: str  # column name in aggregates and figures
    task_types: dict[str, str]  # task id -> task type, so aggregates need no bench


def read_runs(out: str | Path) -> list[RunEntry]:
    """The runs recorded in ``JUDGED/runs.json``, in the order they were added."""
    path = Path(out) / RUNS_FILE
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [RunEntry(**entry) for entry in data]


def _write_runs(out: Path, entries: Sequence[RunEntry]) -> None:
    (out / RUNS_FILE).write_text(
        json.dumps([asdict(e) for e in entries], indent=2) + "\n", encoding="utf-8"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


def judgements_path(out: str | Path, name: str) -> Path:
    """Where the judgements of run ``name`` live inside a JUDGED folder."""
    return Path(out) / RUNS_DIR / name / JUDGEMENTS_FILE


@dataclass
class RunInput:
    """A RUN folder read for judging: its tasks, contexts and predictions."""

    entry: RunEntry
    tasks: dict[str, Task]
    contexts: dict[str, str]
    predictions: list[Prediction]  # the ones with a reply to judge
    without_reply: int  # predictions that failed at eval time: nothing to judge


def load_run_input(run: str | Path, limit: int | None, entries: list[RunEntry]) -> RunInput:
    """Read a RUN folder, reload its bench, and find (or assign) its name in JUDGED."""
    path = Path(run).resolve()
    eval_config = read_config(path)
    if eval_config.scoring == "choice":
        raise ValueError(
            f"{path}: this run used --scoring choice, so its outputs are letter scores, not "
            "replies; judge a run made with --scoring generate"
        )
    # `behaviorsft eval` stores the bench as an absolute path.
    bench_path = Path(eval_config.bench)
    try:
        bench = load_bench(bench_path)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}/config.json names the bench {eval_config.bench!r}, which is not there; "
            "the judge needs it for the tasks and the context the model saw"
        ) from None
    tasks = {t.id: t for t in bench.tasks}
    predictions = load_predictions(path)
    unknown = sorted({p.task_id for p in predictions if p.task_id not in tasks})
    if unknown:
        raise ValueError(
            f"{path}/predictions.jsonl: {len(unknown)} task ids are not in {bench_path} "
            f"(e.g. {unknown[0]!r}); was the bench rebuilt after the run?"
        )
    check_task_fingerprints(path, bench, eval_config, predictions)
    answered = [p for p in predictions if p.error is None and p.raw_output is not None]
    answered_tasks = [tasks[tid] for tid in dict.fromkeys(p.task_id for p in answered)]
    chosen = {t.id for t in select_tasks(answered_tasks, limit)}
    answered = [p for p in answered if p.task_id in chosen]
    used = {p.task_id for p in answered}
    entry = next((e for e in entries if e.path == str(path)), None)
    if entry is None:
        taken = {e.name for e in entries}
        base = _slug(path.name)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        entry = RunEntry(name=name, path=str(path), label=eval_config.display_label, task_types={})
    entry.label = eval_config.display_label
    entry.task_types = {
        **entry.task_types,
        **{tid: tasks[tid].task_type.value for tid in sorted(used)},
    }
    return RunInput(
        entry=entry,
        tasks={tid: tasks[tid] for tid in used},
        contexts={tid: bench.context_text(tasks[tid]) for tid in used},
        predictions=answered,
        without_reply=sum(1 for p in predictions if p.error is not None),
    )


# --------------------------------------------------------------------------
# Calling the judge
# --------------------------------------------------------------------------


class _Caller:
    """Sends requests to the judge: async clients directly, others in a worker thread.

    The OpenAI-compatible client bounds concurrency itself. A local backend
    (``hf/``) only has the synchronous ``generate``; its calls are serialised
    with a lock, since one model instance cannot run two batches at once.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self._async = getattr(model, "agenerate", None)
        self._lock = threading.Lock()
        self.calls = 0
        self.cached = 0

    async def __call__(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        if self._async is not None:
            gens: list[Generation] = await self._async(requests)
        else:

            def run() -> list[Generation]:
                with self._lock:
                    return self.model.generate(requests)

            gens = await asyncio.to_thread(run)
        self.calls += len(gens)
        self.cached += sum(g.cached for g in gens)
        return gens

    async def aclose(self) -> None:
        closer = getattr(self.model, "aclose", None)
        if closer is not None:
            await closer()


def _user(prompt: str) -> tuple[ChatMessage, ...]:
    return (ChatMessage(role="user", content=prompt),)


def _head(text: str | None, n: int = 80) -> str:
    return " ".join((text or "").split())[:n]


async def generate_steps(
    caller: _Caller, spec: CriterionSpec, config: JudgeConfig
) -> dict[str, Any]:
    """Ask the judge for the evaluation steps of one criterion (greedy, seed 0).

    Returns the steps.json entry; raises ValueError with the reason when the
    call failed or the reply has no numbered steps.
    """
    [gen] = await caller(
        [
            GenerationRequest(
                messages=_user(steps_prompt(spec)),
                key=f"steps:{spec.criterion.value}",
                max_new_tokens=config.steps_max_new_tokens,
                temperature=0.0,
                seed=0,
            )
        ]
    )
    if gen.error is not None or gen.text is None:
        raise ValueError(f"the judge call failed: {gen.error or 'no text'}")
    return {
        "fingerprint": spec.fingerprint,
        "title": spec.title,
        "definition": spec.definition,
        "steps": parse_steps(gen.text),
        "raw": gen.text,
        "created_at": datetime.now(timezone.utc).isoformat(),
    }


def read_steps(out: str | Path) -> dict[str, Any]:
    """``JUDGED/steps.json`` (an empty shell when absent)."""
    path = Path(out) / STEPS_FILE
    if not path.exists():
        return {"prompt_version": PROMPT_VERSION, "judge": None, "criteria": {}}
    return dict(json.loads(path.read_text(encoding="utf-8")))


async def ensure_steps(
    caller: _Caller, config: JudgeConfig, out: Path, criteria: Sequence[Criterion]
) -> tuple[dict[Criterion, list[str]], dict[Criterion, str]]:
    """Steps of every criterion: reused from steps.json, or generated once and stored.

    Returns (steps, failures): a criterion whose steps could not be generated
    is in ``failures`` with the reason, and its items are recorded unscored.
    Stored steps made for another definition of the criterion are refused.
    """
    data = read_steps(out)
    data["prompt_version"] = PROMPT_VERSION
    data["judge"] = config.judge
    stored: dict[str, Any] = data.setdefault("criteria", {})
    steps: dict[Criterion, list[str]] = {}
    failures: dict[Criterion, str] = {}
    missing = []
    for crit in criteria:
        spec = CRITERIA[crit]
        entry = stored.get(crit.value)
        if entry is None:
            missing.append(spec)
            continue
        if entry.get("fingerprint") != spec.fingerprint:
            raise ValueError(
                f"{out / STEPS_FILE}: the steps of {crit.value!r} were generated for another "
                "definition of the criterion; rerun with --fresh (or a new --out) so that all "
                "items are judged with the same steps"
            )
        if not entry.get("steps"):
            raise ValueError(f"{out / STEPS_FILE}: criteria.{crit.value}.steps is empty")
        steps[crit] = [str(s) for s in entry["steps"]]
    results = await asyncio.gather(
        *(generate_steps(caller, spec, config) for spec in missing), return_exceptions=True
    )
    for spec, res in zip(missing, results, strict=True):
        if isinstance(res, ValueError):
            failures[spec.criterion] = f"no evaluation steps for {spec.criterion.value}: {res}"
        elif isinstance(res, BaseException):
            raise res
        else:
            stored[spec.criterion.value] = res
            steps[spec.criterion] = res["steps"]
    if missing:
        (out / STEPS_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return steps, failures


@dataclass
class Item:
    """One (prediction, criterion) to judge."""

    run: str
    prediction: Prediction
    task: Task
    context: str
    criterion: Criterion

    @property
    def id(self) -> str:
        return f"{self.prediction.id}:{self.criterion.value}"


@dataclass
class _Counts:
    fallbacks: int = 0  # logprob replies that fell back to sampling


async def judge_item(
    caller: _Caller,
    item: Item,
    steps: list[str],
    config: JudgeConfig,
    counts: _Counts | None = None,
) -> Judgement:
    """Score one item: weighted by log-probabilities, else the mean of sampled scores."""
    spec = CRITERIA[item.criterion]
    assert item.prediction.raw_output is not None  # only answered predictions are items
    messages = _user(
        form_prompt(
            spec,
            steps,
            item.task,
            item.context,
            item.prediction.raw_output,
            reference=config.reference,
        )
    )
    base: dict[str, Any] = {
        "id": item.id,
        "prediction_id": item.prediction.id,
        "task_id": item.task.id,
        "criterion": item.criterion,
        "judge_model": config.judge,
    }
    if config.method != "sampling":
        [gen] = await caller(
            [
                GenerationRequest(
                    messages=messages,
                    key=item.id,
                    max_new_tokens=config.max_new_tokens,
                    temperature=0.0,
                    seed=0,
                    track_tokens=SCORE_TOKENS,
                )
            ]
        )
        if gen.error is not None or gen.text is None:
            return Judgement(**base, error=f"judge call failed: {gen.error or 'no text'}")
        raw = weighted_score(gen.token_probs)
        if raw is not None:
            _, explanation = parse_score(gen.text)
            return Judgement(
                **base,
                score=normalise(raw),
                raw_score=raw,
                method="logprobs",
                explanation=explanation,
            )
        if gen.token_probs is None:
            reason = "the endpoint returned no log-probabilities"
        else:
            reason = (
                f"the score tokens 1-5 carry probability {score_mass(gen.token_probs):.2f} at "
                f"the first position (reply starts {_head(gen.text, 40)!r})"
            )
        if config.method == "logprobs":
            return Judgement(**base, error=f"{reason}; use --method auto or sampling")
        if counts is not None:
            counts.fallbacks += 1
    gens = await caller(
        [
            GenerationRequest(
                messages=messages,
                key=f"{item.id}:sample{i}",
                max_new_tokens=config.max_new_tokens,
                temperature=config.sample_temperature,
                top_p=1.0,
                # Distinct seeds make distinct samples and distinct cache keys.
                seed=i,
            )
            for i in range(config.samples)
        ]
    )
    failed = [g for g in gens if g.error is not None or g.text is None]
    if failed:
        # Averaging the samples that happened to succeed would change the
        # estimator behind the user's back; the item is judged again on resume.
        return Judgement(
            **base,
            error=f"{len(failed)} of {len(gens)} sampled judge calls failed: "
            f"{failed[0].error or 'no text'}",
        )
    parsed = [parse_score(g.text) for g in gens]
    scores = [s for s, _ in parsed if s is not None]
    if not scores:
        return Judgement(
            **base,
            error=f"no 1-5 score could be read from any of the {len(gens)} sampled replies "
            f"(first: {_head(gens[0].text)!r})",
        )
    raw = sum(scores) / len(scores)
    explanation = next(e for s, e in parsed if s is not None)
    return Judgement(
        **base,
        score=normalise(raw),
        raw_score=raw,
        method="sampling",
        n_samples=len(scores),
        explanation=explanation,
    )


# --------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------


@dataclass
class JudgeResult:
    """What ``run_judge`` did."""

    out: Path
    items: int  # (prediction, criterion) pairs in this judging run
    reused: int  # scored judgements found on disk
    judged: int  # judgements written by this call (scored and unscored)
    unscored: int  # judgements still without a score
    calls: int  # judge requests answered (from the server or the cache)
    cached_calls: int  # of those, served from the response cache
    fallbacks: int  # log-probability replies that were rescored by sampling
    report: dict[str, Path] = field(default_factory=dict)


def _load_deduped(path: Path) -> tuple[list[Judgement], list[tuple[int, int]], bool]:
    """(judgements, dropped exact duplicates as (line, first line), had a torn tail)."""
    result, dups = load_records_deduped(path, Judgement)
    if result.errors:
        raise RecordFileError(result.errors)
    return result.records, dups, result.torn_tail is not None


def _duplicates_note(path: Path, dups: Sequence[tuple[int, int]]) -> str:
    where = ", ".join(f"line {n} (= line {first})" for n, first in dups[:5])
    more = f" and {len(dups) - 5} more" if len(dups) > 5 else ""
    return f"{path}: dropped {len(dups)} exact duplicate line(s): {where}{more}"


def _drop_unscored(path: Path) -> None:
    """Rewrite a judgements file without its unscored rows (and exact duplicates)."""
    if not path.exists():
        return
    rows, dups, torn = _load_deduped(path)
    if dups:
        warnings.warn(_duplicates_note(path, dups), UserWarning, stacklevel=2)
    kept = [j for j in rows if j.error is None]
    if len(kept) != len(rows) or dups or torn:
        write_jsonl(path, kept)


def load_judgements(path: str | Path) -> list[Judgement]:
    """Every judgement of a judgements.jsonl (raises listing bad lines).

    Exact duplicate lines are dropped with a ``UserWarning``; differing
    duplicates are an error naming both lines.
    """
    rows, dups, _ = _load_deduped(Path(path))
    if dups:
        warnings.warn(_duplicates_note(Path(path), dups), UserWarning, stacklevel=2)
    return rows


def _fresh(out: Path) -> None:
    """Remove every judge output of a JUDGED folder (the response cache lives elsewhere)."""
    for e in read_runs(out):
        judgements_path(out, e.name).unlink(missing_ok=True)
    for name in (STEPS_FILE, CONFIG_FILE, RUNS_FILE):
        (out / name).unlink(missing_ok=True)


def run_judge(
    config: JudgeConfig,
    *,
    model: Model | None = None,
    fresh: bool = False,
    show_progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> JudgeResult:
    """Judge every prediction of ``config.runs``; write the JUDGED folder; resume if it exists.

    ``warn`` is called with what the HTTP client is doing while it retries.

    ``model`` overrides loading ``config.judge`` (a notebook may pass any
    object implementing the Model protocol).
    """
    config.validate()
    out = Path(config.out)
    existed = out.exists()
    # One writer per JUDGED folder: a second one fails at once (FolderBusyError).
    lock = FolderLock(out).acquire()
    had: set[str] = set()
    try:
        had = {name for name in _OWN_FILES if (out / name).exists()}
        return _run_judge_locked(config, out, model, fresh, show_progress, warn)
    except BaseException:
        if not any(p.stat().st_size > 0 for p in out.glob(f"{RUNS_DIR}/*/{JUDGEMENTS_FILE}")):
            # Nothing was judged (e.g. the endpoint does not answer): remove what this
            # call created, so the corrected command is not refused as another setup.
            for folder in sorted(out.glob(f"{RUNS_DIR}/*"), reverse=True):
                with contextlib.suppress(OSError):
                    (folder / JUDGEMENTS_FILE).unlink(missing_ok=True)
                    folder.rmdir()
            with contextlib.suppress(OSError):
                (out / RUNS_DIR).rmdir()
            lock.undo_first_call(_OWN_FILES, had, existed=existed)
        raise
    finally:
        lock.release()


# Files of a JUDGED folder that a failed first call removes again.
_OWN_FILES = (CONFIG_FILE, STEPS_FILE, RUNS_FILE, "manifest.json")


def _run_judge_locked(
    config: JudgeConfig,
    out: Path,
    model: Model | None,
    fresh: bool,
    show_progress: bool,
    warn: Callable[[str], None] | None,
) -> JudgeResult:
    criteria = config.criterion_list
    if fresh:
        # Everything goes, not only these runs' files: one folder, one judge setup.
        _fresh(out)
    entries = read_runs(out)
    inputs: list[RunInput] = []
    for run in config.runs:
        ri = load_run_input(run, config.limit, entries)
        if any(r.entry.name == ri.entry.name for r in inputs):
            raise ValueError(f"{run}: given twice")
        inputs.append(ri)
        if ri.entry not in entries:
            entries.append(ri.entry)
    _check_resume(config, out)
    config.runs = [ri.entry.path for ri in inputs]
    (out / CONFIG_FILE).write_text(
        json.dumps(config_dict(config), indent=2) + "\n", encoding="utf-8"
    )
    _write_runs(out, entries)

    writers: dict[str, JsonlWriter] = {}
    items: list[Item] = []
    reused = 0
    try:
        for ri in inputs:
            path = judgements_path(out, ri.entry.name)
            _drop_unscored(path)
            writer = JsonlWriter(path)
            writers[ri.entry.name] = writer
            for pred in ri.predictions:
                for crit in criteria:
                    item = Item(
                        ri.entry.name,
                        pred,
                        ri.tasks[pred.task_id],
                        ri.contexts[pred.task_id],
                        crit,
                    )
                    if item.id in writer:
                        reused += 1
                    else:
                        items.append(item)
        counts = _Counts()
        calls = cached = 0
        if items:
            # Loaded only when there is work: a finished folder re-reports without a key.
            own_model = model is None
            judge_model = model if model is not None else _load_judge(config, warn)
            caller = _Caller(judge_model)
            try:
                _run_async(caller, config, out, criteria, items, writers, counts, show_progress)
            finally:
                if own_model:
                    judge_model.close()
            calls, cached = caller.calls, caller.cached
    finally:
        for w in writers.values():
            w.close()

    judged = len(items)
    unscored = 0
    per_run: dict[str, list[Judgement]] = {}
    for ri in inputs:
        wanted = {f"{p.id}:{c.value}" for p in ri.predictions for c in criteria}
        js = [j for j in load_judgements(judgements_path(out, ri.entry.name)) if j.id in wanted]
        per_run[ri.entry.name] = js
        unscored += sum(j.error is not None for j in js)

    from behaviorsft.judge.aggregate import write_judge_report

    report = write_judge_report([out], out, n_bootstrap=config.n_bootstrap)
    _write_manifest(out, config, inputs, per_run, counts)
    return JudgeResult(
        out=out,
        items=len(items) + reused,
        reused=reused,
        judged=judged,
        unscored=unscored,
        calls=calls,
        cached_calls=cached,
        fallbacks=counts.fallbacks,
        report=report,
    )


def _load_judge(config: JudgeConfig, warn: Callable[[str], None] | None = None) -> Model:
    from behaviorsft.evaluate.runner import RetryReporter
    from behaviorsft.models import load_model

    options = dict(config.model_options)
    # Only the HTTP client takes a concurrency; local backends batch themselves.
    if parse_model_spec(config.judge).provider in ("openai", "openai-compatible"):
        options.setdefault("concurrency", config.concurrency)
        # A judge endpoint that is not there stops the run at once; retries and a
        # lowered concurrency (a one-slot server at --concurrency 8) are said as they happen.
        options.setdefault("fail_fast", True)
        if warn is not None:
            options.setdefault("on_notice", warn)
            max_retries = int(options.get("max_retries", 5))
            options.setdefault("on_retry", RetryReporter(warn, max_retries))
    return load_model(config.judge, base_url=config.base_url, cache_dir=config.cache_dir, **options)


def _run_async(
    caller: _Caller,
    config: JudgeConfig,
    out: Path,
    criteria: Sequence[Criterion],
    items: Sequence[Item],
    writers: dict[str, JsonlWriter],
    counts: _Counts,
    show_progress: bool,
) -> None:
    from behaviorsft.models.openai_compat import run_sync

    async def main() -> None:
        try:
            needed = [c for c in criteria if any(i.criterion is c for i in items)]
            steps, failures = await ensure_steps(caller, config, out, needed)
            with _ProgressBar(show_progress, len(items), config.judge) as bar:

                async def one(item: Item) -> tuple[Item, Judgement]:
                    if item.criterion in failures:
                        j = Judgement(
                            id=item.id,
                            prediction_id=item.prediction.id,
                            task_id=item.task.id,
                            criterion=item.criterion,
                            judge_model=config.judge,
                            error=failures[item.criterion],
                        )
                    else:
                        j = await judge_item(caller, item, steps[item.criterion], config, counts)
                    return item, j

                # Each judgement is written as soon as it is made, so an
                # interrupted run loses only what was in flight.
                for fut in asyncio.as_completed([one(i) for i in items]):
                    item, judgement = await fut
                    writers[item.run].write(judgement)
                    bar.advance()
        finally:
            await caller.aclose()

    run_sync(main)


class _ProgressBar:
    """A rich progress bar over judged items, or nothing when disabled."""

    def __init__(self, enabled: bool, total: int, description: str) -> None:
        self.enabled = enabled
        self.total = total
        self.description = f"judge {description}"
        self._progress: Any = None
        self._bar: Any = None

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            from behaviorsft.progress import make_progress

            self._progress = make_progress()
            self._progress.start()
            self._bar = self._progress.add_task(self.description, total=self.total)
        return self

    def advance(self) -> None:
        """One item is done."""
        if self._progress is not None:
            self._progress.advance(self._bar, 1)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _write_manifest(
    out: Path,
    config: JudgeConfig,
    inputs: Sequence[RunInput],
    per_run: dict[str, list[Judgement]],
    counts: _Counts,
) -> None:
    old = read_manifest(out) if (out / "manifest.json").exists() else None
    files = {}
    for e in read_runs(out):
        path = judgements_path(out, e.name)
        if path.exists():
            n = len(load_judgements(path))
            files[f"{RUNS_DIR}/{e.name}/{JUDGEMENTS_FILE}"] = FileInfo(
                record_type="judgement", count=n
            )
    all_js = [j for js in per_run.values() for j in js]
    manifest = new_manifest(
        "judge",
        config=config_dict(config),
        files=files,
        counts={
            "judgements": len(all_js),
            "scored": sum(j.error is None for j in all_js),
            "unscored": sum(j.error is not None for j in all_js),
            "logprobs": sum(j.method == "logprobs" for j in all_js),
            "sampling": sum(j.method == "sampling" for j in all_js),
            "fallbacks_this_call": counts.fallbacks,
            "predictions_without_reply": sum(ri.without_reply for ri in inputs),
        },
        notes=[f"behaviorsft {__version__}", f"prompts {PROMPT_VERSION}"],
    )
    if old is not None:
        manifest.created_at = old.created_at
    write_manifest(out, manifest)
