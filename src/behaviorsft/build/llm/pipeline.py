"""``build --generator llm``: case reports -> BENCH with an LLM, resumable at every stage.

Layout written (the BENCH files are the programmatic builder's)::

    BENCH/
      cases.jsonl, conversations.jsonl, tasks.jsonl, manifest.json
      llm/summaries.jsonl      stage 1, one per case (facts with source spans)
      llm/conversations.jsonl  stage 2, one per case (conversation + fact-check flags)
      llm/drafts.jsonl         stages 3-4, one per case x type (validated LLM answers)
      llm/verification.jsonl   stage 5, one per task (blind answers, flags, kept or not)
      llm/outcomes.jsonl       one per case: completed (tasks written) or failed (reason)
      llm/usage.json           tokens, requests and cost per stage
      llm/cache/               the response cache (SQLite)

Cases run concurrently (the HTTP client bounds the requests in flight); within
a case the stages run in order and every stage record is appended the moment
it exists. A case is committed by its ``outcomes.jsonl`` line, written last
(after its tasks, conversation and case lines). A re-run skips committed
cases, takes every stage record already on disk instead of calling the model,
and finds the replies of calls whose record was never written (a kill between
the reply and the write) in the cache: finished work costs zero requests, and
writers keyed by id make a repeated line impossible.

Failed stage records are final: a re-run does not ask again (so it costs
nothing) unless ``retry_failed`` is set.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from behaviorsft.bench import CASES_FILE, CONVERSATIONS_FILE, TASKS_FILE
from behaviorsft.build.llm.client import FORMATS, CallInfo, Prices, StructuredClient
from behaviorsft.build.llm.prompts import AUGMENT_KINDS, prompt_versions
from behaviorsft.build.llm.stages import (
    CaseOutcome,
    ConversationRecord,
    DraftRecord,
    SummaryRecord,
    VerifyRecord,
    augment,
    converse,
    draft_task,
    summarise,
    tasks_from_draft,
    verify_task,
)
from behaviorsft.build.splits import PAPER_PROPORTIONS, assign_splits
from behaviorsft.models import load_model
from behaviorsft.models.openai_compat import OpenAICompatModel
from behaviorsft.records import Case, Split, Task
from behaviorsft.store import (
    KIND_NAMES,
    FileInfo,
    FolderLock,
    JsonlWriter,
    RecordError,
    Skipped,
    new_manifest,
    read_manifest,
    scan_jsonl,
    sniff_record_type,
    validation_errors,
    write_manifest,
)
from behaviorsft.taxonomy import TaskType

LLM_DIR = "llm"
SUMMARIES = "summaries.jsonl"
LLM_CONVERSATIONS = "conversations.jsonl"
DRAFTS = "drafts.jsonl"
VERIFICATION = "verification.jsonl"
OUTCOMES = "outcomes.jsonl"
DROPPED = "dropped_tasks.jsonl"
USAGE = "usage.json"
STAGES = ("summary", "conversation", "tasks", "augment", "verify")

VerifyPolicy = Literal["drop", "flag", "off"]
VERIFY_POLICIES: tuple[str, ...] = ("drop", "flag", "off")
R = TypeVar("R", bound=BaseModel)


@dataclass
class LLMBuildReport:
    """What an LLM build holds after this run (cumulative over resumed runs)."""

    cases: int = 0
    completed: int = 0
    failed: int = 0
    tasks: int = 0
    dropped: int = 0
    requests: int = 0  # HTTP requests this run: answered, failed and retried ones
    failed_requests: int = 0  # ... of which got no answer (each retry counts)
    cache_hits: int = 0
    response_format: str = "json_schema"  # the structured-output format that was used
    format_fallbacks: list[str] = field(default_factory=list)  # why it is not json_schema
    resumed_from: int = 0
    input_errors: list[RecordError] = field(default_factory=list)
    failures: list[Skipped] = field(default_factory=list)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------- input


def load_input_cases(path: str | os.PathLike[str]) -> tuple[list[Case], list[RecordError]]:
    """Cases from a Cases JSONL, or case reports (text, markdown, free-text JSONL, a folder).

    A ``.jsonl`` whose first record has ``id`` and ``source`` is read as Case
    records (``cases import``/``cases synth`` output); any other file or folder
    goes through the free-text importer (``sources/text.py``).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file or folder")
    if p.is_file() and p.stat().st_size == 0:
        raise ValueError(f"{p}: is empty (no cases or case reports)")
    kind = sniff_record_type(p) if p.is_file() else None
    if kind is not None and kind not in ("case", "report"):
        raise ValueError(
            f"{p} is a {KIND_NAMES[kind]} file, not cases or case reports "
            "(give the output of `cases import`/`cases synth`, or report files)"
        )
    if p.is_file() and p.suffix.lower() in (".jsonl", ".ndjson") and _looks_like_cases(p):
        cases: list[Case] = []
        errors: list[RecordError] = []
        seen: set[str] = set()
        for line, obj, errs, _ in scan_jsonl(p, None, key=None):
            if errs or not isinstance(obj, dict):
                errors.extend(errs)
                continue
            try:
                case = Case.model_validate(obj)
            except ValidationError as exc:
                errors.extend(validation_errors(str(p), line, exc))
                continue
            if case.id in seen:
                errors.append(RecordError(str(p), line, "id", f"duplicate case id {case.id!r}"))
                continue
            seen.add(case.id)
            cases.append(case)
        return cases, errors
    from behaviorsft.sources.base import import_paths

    cases, errors = [], []
    for item in import_paths("text", [p]):
        if item.case is not None:
            cases.append(item.case)
        elif item.error is not None:
            errors.append(item.error)
    return cases, errors


def _looks_like_cases(path: Path) -> bool:
    return sniff_record_type(path) == "case"


# ----------------------------------------------------------------------------- state on disk


def _read_pending(path: Path, model: type[R], done: set[str]) -> dict[str, R]:
    """Records of cases not yet committed (committed cases need nothing more)."""
    out: dict[str, R] = {}
    if not path.exists():
        return out
    for _, obj, errs, _ in scan_jsonl(path, None, key=None):
        if errs or not isinstance(obj, dict) or obj.get("case_id") in done:
            continue
        try:
            rec = model.model_validate(obj)
        except ValidationError:
            continue  # a line from an older format is redone, not trusted
        out[rec.id] = rec  # type: ignore[attr-defined]
    return out


class _Writers:
    """Every append-only file of a run, opened once."""

    def __init__(self, dest: Path, fresh: bool) -> None:
        llm = dest / LLM_DIR
        self.summaries = JsonlWriter(llm / SUMMARIES, fresh=fresh)
        self.conversations = JsonlWriter(llm / LLM_CONVERSATIONS, fresh=fresh)
        self.drafts = JsonlWriter(llm / DRAFTS, fresh=fresh)
        self.verification = JsonlWriter(llm / VERIFICATION, fresh=fresh)
        self.outcomes = JsonlWriter(llm / OUTCOMES, fresh=fresh)
        self.dropped = JsonlWriter(llm / DROPPED, fresh=fresh)
        self.tasks = JsonlWriter(dest / TASKS_FILE, fresh=fresh)
        self.bench_conversations = JsonlWriter(
            dest / CONVERSATIONS_FILE, key="case_id", fresh=fresh
        )
        self.cases = JsonlWriter(dest / CASES_FILE, fresh=fresh)

    def all(self) -> list[JsonlWriter]:
        return [
            self.summaries,
            self.conversations,
            self.drafts,
            self.verification,
            self.outcomes,
            self.dropped,
            self.tasks,
            self.bench_conversations,
            self.cases,
        ]

    def close(self) -> None:
        for w in self.all():
            w.close()


def _forget_failed(records: dict[str, R]) -> dict[str, R]:
    return {k: r for k, r in records.items() if getattr(r, "status", "ok") == "ok"}


# ----------------------------------------------------------------------------- one case


@dataclass
class _Run:
    """Everything a case coroutine needs."""

    client: StructuredClient
    verifier: StructuredClient
    writers: _Writers
    types: list[TaskType]
    verify: VerifyPolicy
    options_only: bool
    seed: int
    splits: dict[str, Split]
    slots: dict[str, int]
    summaries: dict[str, SummaryRecord]
    conversations: dict[str, ConversationRecord]
    drafts: dict[str, DraftRecord]
    verification: dict[str, VerifyRecord]


async def _build_case(run: _Run, case: Case) -> CaseOutcome:
    w = run.writers
    summary = run.summaries.get(case.id)
    if summary is None:
        summary = await summarise(run.client, case)
        w.summaries.write(summary)
    if summary.status == "failed":
        return CaseOutcome(id=case.id, status="failed", reason=f"summary: {summary.reason}")

    conv = run.conversations.get(case.id)
    if conv is None:
        conv = await converse(run.client, case, summary)
        w.conversations.write(conv)
    if conv.status == "failed" or conv.conversation is None:
        return CaseOutcome(id=case.id, status="failed", reason=f"conversation: {conv.reason}")
    conversation = conv.conversation

    async def one_draft(ttype: TaskType) -> DraftRecord:
        rec = run.drafts.get(f"{case.id}:{ttype.value}")
        if rec is None:
            stage = augment if ttype in AUGMENT_KINDS else draft_task
            rec = await stage(run.client, case.id, conversation, ttype)
            w.drafts.write(rec)
        return rec

    drafts = await asyncio.gather(*(one_draft(t) for t in run.types))
    failed_items = [f"{d.id}: {d.reason}" for d in drafts if d.status == "failed"]
    if conv.fact_check == "failed":
        failed_items.append(f"{case.id}:fact-check: {conv.reason}")
    tasks: list[tuple[Task, bool]] = []
    split = run.splits.get(case.id)
    for d in drafts:
        if d.status != "ok":
            continue
        made = tasks_from_draft(
            d,
            conversation,
            model_name=run.client.model.name,
            seed=run.seed,
            split=split,
            slot=run.slots.get(case.id, 0),
        )
        tasks.extend((t, d.length_bias is not None) for t in made)

    async def one_verify(task: Task, biased: bool) -> VerifyRecord:
        rec = run.verification.get(task.id)
        if rec is None:
            rec = await verify_task(
                run.verifier,
                task,
                conversation,
                options_only=run.options_only,
                length_bias=biased,
            )
            rec.kept = run.verify != "drop" or not rec.flags
            w.verification.write(rec)
        # The policy of this run decides (a resumed run may use another one).
        rec.kept = run.verify != "drop" or not rec.flags
        return rec

    kept: list[Task] = []
    if run.verify == "off":
        kept = [t for t, _ in tasks]
    else:
        checks = await asyncio.gather(*(one_verify(t, b) for t, b in tasks))
        kept = [t for (t, _), v in zip(tasks, checks, strict=True) if v.kept]
        failed_items += [f"{v.id}:verify: {v.reason}" for v in checks if v.status == "failed"]
        # Dropped tasks are kept aside, not lost: reviewers may want to see them.
        for (t, _), v in zip(tasks, checks, strict=True):
            if not v.kept:
                w.dropped.write(t)
    # Commit order: tasks, conversation, case, outcome (the marker a re-run looks for).
    for t in kept:
        w.tasks.write(t)
    w.bench_conversations.write(conversation)
    w.cases.write(case)
    return CaseOutcome(
        id=case.id,
        status="completed",
        tasks=len(kept),
        dropped=len(tasks) - len(kept),
        failed_items=failed_items,
    )


# ----------------------------------------------------------------------------- entry point


def build_llm_bench(
    cases: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str,
    base_url: str | None = None,
    concurrency: int = 32,
    types: Iterable[str | TaskType] | None = None,
    max_cases: int | None = None,
    verify: VerifyPolicy = "drop",
    options_only_check: bool = True,
    seed: int = 0,
    fresh: bool = False,
    retry_failed: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    api_key_env: str | None = None,
    verifier_model: str | None = None,
    verifier_base_url: str | None = None,
    prices: Prices | None = None,
    json_schema: bool = True,
    max_reasks: int = 2,
    proportions: tuple[float, float, float] = PAPER_PROPORTIONS,
    model_options: dict[str, Any] | None = None,
) -> LLMBuildReport:
    """Build (or finish building) a BENCH folder from case reports with an LLM.

    ``cases``: a Cases JSONL, or text/markdown/free-text JSONL reports (or a
    folder of them). ``model``: ``openai/<name>`` or ``openai-compatible/<name>``
    (with ``base_url``). ``verify``: ``drop`` flagged tasks, ``flag`` them
    (kept; flags in ``llm/verification.jsonl``), or ``off`` (no verification
    calls). ``progress(done, total)`` is called after each case. Prices are
    USD per 1M tokens. ``model_options`` go to the HTTP client
    (``timeout_s``, ``max_retries``, ``backoff_base_s``, ...).
    """
    if verify not in VERIFY_POLICIES:
        raise ValueError(f"verify: {verify!r}; use one of {', '.join(VERIFY_POLICIES)}")
    wanted = [TaskType(t) for t in types] if types else list(TaskType)
    dest = Path(out)
    for spec in (model, verifier_model or model):
        _check_http_spec(spec)
    _check_input_is_not_output(Path(cases), dest)
    if not fresh:
        read_manifest(dest)  # a corrupt manifest stops the run here, not after every request
    config: dict[str, Any] = {
        "generator": "llm",
        "cases": str(cases),
        "model": model,
        "base_url": base_url,
        "verifier_model": verifier_model or model,
        "concurrency": concurrency,
        "types": [t.value for t in wanted] if types else "all",
        "max_cases": max_cases,
        "verify": verify,
        "options_only_check": options_only_check,
        "seed": seed,
        "json_schema": json_schema,
        "max_reasks": max_reasks,
        "proportions": list(proportions),
        "prices_usd_per_1m": (prices or Prices()).model_dump(),
        "prompts": prompt_versions(),
    }
    # One writer per BENCH folder: a second build into it stops here (FolderBusyError)
    # instead of writing every task again.
    with FolderLock(dest):
        if not fresh:
            from behaviorsft.build.pipeline import check_resume

            check_resume(dest, config, RESUME_KEYS)
        cache = Path(cache_dir) if cache_dir is not None else dest / LLM_DIR / "cache"
        all_cases, input_errors = load_input_cases(cases)
        if not all_cases:
            listed = "".join(f"\n{e}" for e in input_errors[:20])
            raise ValueError(
                f"{cases}: no usable case in it ({len(input_errors)} bad line(s)); nothing to build"
                + listed
            )
        selected = all_cases[:max_cases] if max_cases is not None else all_cases
        splits = assign_splits([c.id for c in selected], seed=seed, proportions=proportions)
        _start_manifest(dest, config, fresh=fresh, seed=seed)

        report = LLMBuildReport(input_errors=input_errors)

        def failed_request() -> None:
            report.requests += 1
            report.failed_requests += 1

        user_on_retry = (model_options or {}).get("on_retry")

        def on_retry(label: str, attempt: int, reason: str, delay: float) -> None:
            failed_request()  # the attempt that is about to be retried was a request too
            if user_on_retry is not None:
                user_on_retry(label, attempt, reason, delay)

        options = {"concurrency": concurrency, **(model_options or {}), "on_retry": on_retry}
        # A server that is not there stops the run at the first refused connection
        # (EndpointUnreachableError), instead of every case retrying and being recorded
        # as failed: nothing is written for it, so a re-run with the server up builds it.
        options.setdefault("fail_fast", True)
        llm = _http_model(model, base_url, cache, api_key_env, json_schema, options)
        checker = (
            _http_model(
                verifier_model,
                verifier_base_url or base_url,
                cache,
                api_key_env,
                json_schema,
                options,
            )
            if verifier_model
            else llm
        )

        def on_reply(cached: bool) -> None:
            if cached:
                report.cache_hits += 1
            else:
                report.requests += 1

        client = StructuredClient(
            llm, max_reasks=max_reasks, seed=seed, on_reply=on_reply, on_failure=failed_request
        )
        verifier = StructuredClient(
            checker, max_reasks=max_reasks, seed=seed, on_reply=on_reply, on_failure=failed_request
        )

        writers = _Writers(dest, fresh)
        try:
            done = {str(i) for i in _ids(dest / LLM_DIR / OUTCOMES)}
            llm_dir = dest / LLM_DIR
            pending = [c for c in selected if c.id not in done]
            report.resumed_from = len(selected) - len(pending)
            load = _forget_failed if retry_failed else (lambda r: r)
            run = _Run(
                client=client,
                verifier=verifier,
                writers=writers,
                types=wanted,
                verify=verify,
                options_only=options_only_check,
                seed=seed,
                splits=splits,
                slots={cid: i for i, cid in enumerate(sorted(c.id for c in selected))},
                summaries=load(_read_pending(llm_dir / SUMMARIES, SummaryRecord, done)),
                conversations=load(
                    _read_pending(llm_dir / LLM_CONVERSATIONS, ConversationRecord, done)
                ),
                drafts=load(_read_pending(llm_dir / DRAFTS, DraftRecord, done)),
                verification=load(_read_pending(llm_dir / VERIFICATION, VerifyRecord, done)),
            )
            total = len(selected)
            counter = {"done": report.resumed_from}

            async def main() -> None:
                queue = iter(pending)
                # Enough cases in flight to keep `concurrency` requests busy even while
                # many cases sit in their one-call-at-a-time first stages.
                slots = max(1, min(len(pending), 2 * concurrency))

                async def worker() -> None:
                    for case in queue:
                        outcome = await _build_case(run, case)
                        writers.outcomes.write(outcome)
                        counter["done"] += 1
                        if progress is not None:
                            progress(counter["done"], total)

                workers = [asyncio.create_task(worker()) for _ in range(slots)]
                try:
                    await asyncio.gather(*workers)
                finally:
                    # One worker's error (nothing answers at the endpoint) stops the others
                    # at their next await: a stage record is only written after its reply.
                    for w in workers:
                        w.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
                    await llm.aclose()
                    if checker is not llm:
                        await checker.aclose()

            asyncio.run(main())
        finally:
            writers.close()
            llm.close()
            if checker is not llm:
                checker.close()

        if json_schema:
            ladders = [client.ladder] + ([verifier.ladder] if checker is not llm else [])
            report.response_format = FORMATS[max(ladder.level for ladder in ladders)]
            report.format_fallbacks = [f for ladder in ladders for f in ladder.fallbacks]
        else:
            report.response_format = "text"
        _summarise_run(dest, selected, report, prices or Prices())
        _write_manifest(
            dest,
            report,
            fresh=fresh,
            seed=seed,
            config=config,
        )
        return report


# Options whose change would mix two different builds in one folder (the verification
# policy too: finished cases keep the tasks the old policy kept).
RESUME_KEYS = (
    "generator",
    "seed",
    "types",
    "proportions",
    "model",
    "verifier_model",
    "verify",
    "options_only_check",
)


def _start_manifest(dest: Path, config: dict[str, Any], *, fresh: bool, seed: int) -> None:
    """Record the options before the first record is written, so a killed build is checked."""
    if not fresh and read_manifest(dest) is not None:
        return
    manifest = new_manifest("build")
    manifest.seeds = [seed]
    manifest.config = config
    manifest.notes = ["llm build started; its counts are written when a run finishes"]
    write_manifest(dest, manifest)


def _check_input_is_not_output(cases: Path, dest: Path) -> None:
    """Refuse an input that is (or holds) a file this build writes: it would be overwritten."""
    src = cases.resolve()
    outputs = [dest / CASES_FILE, dest / CONVERSATIONS_FILE, dest / TASKS_FILE, dest / LLM_DIR]
    for target in (t.resolve() for t in outputs):
        if src == target or target in src.parents or (src.is_dir() and src in target.parents):
            raise ValueError(
                f"--cases {cases} is (or holds) {target}, which this build writes into "
                f"{dest}; an input is never overwritten: keep the cases outside the output "
                "folder (e.g. cases/cases.jsonl) or choose another --out"
            )


def _check_http_spec(spec: str) -> None:
    if not spec.startswith(("openai/", "openai-compatible/")):
        raise ValueError(
            f"model {spec!r}: the LLM builder talks to an HTTP chat endpoint; use openai/<name> "
            "or openai-compatible/<name> with --base-url (serve local weights with "
            "`vllm serve <model>` and pass --base-url http://localhost:8000/v1)"
        )


def _http_model(
    spec: str,
    base_url: str | None,
    cache: Path,
    api_key_env: str | None,
    json_schema: bool,
    options: dict[str, Any],
) -> OpenAICompatModel:
    _check_http_spec(spec)
    m = load_model(
        spec,
        base_url=base_url,
        cache_dir=cache,
        api_key_env=api_key_env,
        json_schema=json_schema,
        **options,
    )
    assert isinstance(m, OpenAICompatModel)
    return m


def _ids(path: Path) -> list[Any]:
    if not path.exists():
        return []
    return [
        obj["id"]
        for _, obj, errs, _ in scan_jsonl(path, None, key=None)
        if not errs and isinstance(obj, dict) and "id" in obj
    ]


# ----------------------------------------------------------------------------- accounting


def _iter_models(path: Path, model: type[R]) -> Iterable[R]:
    if not path.exists():
        return
    for _, obj, errs, _ in scan_jsonl(path, None, key=None):
        if not errs and isinstance(obj, dict):
            try:
                yield model.model_validate(obj)
            except ValidationError:
                continue


def stage_usage(dest: Path, prices: Prices) -> dict[str, dict[str, float]]:
    """Tokens, replies and cost per stage, summed from the stage files (each call once)."""
    totals: dict[str, Counter[str]] = {s: Counter() for s in STAGES}
    llm = dest / LLM_DIR

    def add(stage: str, calls: list[CallInfo]) -> None:
        for c in calls:
            t = totals[stage]
            t["calls"] += 1
            t["replies"] += c.attempts
            t["prompt_tokens"] += c.prompt_tokens
            t["completion_tokens"] += c.completion_tokens
            t["failed"] += c.error is not None

    for s in _iter_models(llm / SUMMARIES, SummaryRecord):
        add("summary", s.calls)
    for c in _iter_models(llm / LLM_CONVERSATIONS, ConversationRecord):
        add("conversation", c.calls)
    for d in _iter_models(llm / DRAFTS, DraftRecord):
        add(d.stage, d.calls)
    for v in _iter_models(llm / VERIFICATION, VerifyRecord):
        add("verify", v.calls)
    out: dict[str, dict[str, float]] = {}
    for stage, t in totals.items():
        row: dict[str, float] = {
            k: float(t[k])
            for k in ("calls", "replies", "failed", "prompt_tokens", "completion_tokens")
        }
        row["cost_usd"] = prices.cost(t["prompt_tokens"], t["completion_tokens"])
        out[stage] = row
    out["total"] = {k: float(sum(r[k] for r in out.values())) for k in next(iter(out.values()))}
    return out


def _summarise_run(
    dest: Path, selected: list[Case], report: LLMBuildReport, prices: Prices
) -> None:
    llm = dest / LLM_DIR
    wanted = {c.id for c in selected}
    counts: Counter[str] = Counter()
    for o in _iter_models(llm / OUTCOMES, CaseOutcome):
        if o.id not in wanted:
            continue
        counts[f"cases.{o.status}"] += 1
        report.dropped += o.dropped
        if o.status == "failed":
            report.failures.append(Skipped(where=o.id, reason=o.reason or "unknown"))
        report.failures.extend(
            Skipped(where=item.split(": ", 1)[0], reason=item.split(": ", 1)[-1])
            for item in o.failed_items
        )
    report.completed = counts["cases.completed"]
    report.failed = counts["cases.failed"]
    report.cases = report.completed + report.failed
    for d in _iter_models(llm / DRAFTS, DraftRecord):
        counts[f"drafts.{d.status}"] += 1
        counts["length_check.reasked"] += (
            any(c.attempts > 1 and c.error is None for c in d.calls) and d.length_bias is None
        )
        counts["length_check.flagged"] += d.length_bias is not None
    for c in _iter_models(llm / LLM_CONVERSATIONS, ConversationRecord):
        counts["fact_check.flagged_turns"] += len(c.flags)
        counts["fact_check.conversations_flagged"] += bool(c.flags)
        counts["fact_check.failed"] += c.fact_check == "failed"
    for v in _iter_models(llm / VERIFICATION, VerifyRecord):
        counts["verify.tasks"] += 1
        counts["verify.dropped"] += not v.kept
        for f in v.flags:
            counts[f"verify.flag.{f}"] += 1
    n_tasks = 0
    longest = 0
    for t in _iter_models(dest / TASKS_FILE, Task):
        n_tasks += 1
        counts[f"tasks.{t.task_type.value}"] += 1
        counts[f"split.{t.split.value if t.split else 'none'}"] += 1
        counts["restraint_controls"] += t.restraint_control
        counts["perturbed"] += t.perturbation is not None
        lengths = [len(o.text) for o in t.options]
        longest += lengths.count(max(lengths)) == 1 and len(t.answer_text) == max(lengths)
    counts["tasks.answer_uniquely_longest"] = longest
    report.tasks = n_tasks
    report.counts = dict(sorted(counts.items()))
    report.usage = stage_usage(dest, prices)
    usage_doc = {
        "prices_usd_per_1m": prices.model_dump(),
        "stages": report.usage,
        "this_run": {
            "requests": report.requests,
            "failed_requests": report.failed_requests,
            "cache_hits": report.cache_hits,
            "response_format": report.response_format,
        },
    }
    (llm / USAGE).write_text(json.dumps(usage_doc, indent=2) + "\n", encoding="utf-8")


def _write_manifest(
    dest: Path, report: LLMBuildReport, *, fresh: bool, seed: int, config: dict[str, Any]
) -> None:
    manifest = (None if fresh else read_manifest(dest)) or new_manifest("build")
    manifest.seeds = [seed]
    manifest.config = config
    manifest.files = {
        CASES_FILE: FileInfo(record_type="case", count=report.completed),
        CONVERSATIONS_FILE: FileInfo(record_type="conversation", count=report.completed),
        TASKS_FILE: FileInfo(record_type="task", count=report.tasks),
    }
    counts = dict(report.counts)
    for stage, row in report.usage.items():
        for k in ("calls", "replies", "failed", "prompt_tokens", "completion_tokens"):
            counts[f"usage.{stage}.{k}"] = int(row[k])
        # Manifest counts are integers: cost in micro-dollars (llm/usage.json has USD floats).
        counts[f"usage.{stage}.cost_micro_usd"] = round(row["cost_usd"] * 1e6)
    counts["run.requests"] = report.requests
    counts["run.failed_requests"] = report.failed_requests
    counts["run.cache_hits"] = report.cache_hits
    manifest.counts = counts
    manifest.skipped = [
        *(
            Skipped(where=f"{e.path}:{e.line}", reason=f"{e.field}: {e.message}")
            for e in report.input_errors
        ),
        *report.failures,
    ]
    total = report.usage.get("total", {})
    manifest.notes = [
        f"llm build: {report.completed} cases completed, {report.failed} failed, "
        f"{report.tasks} tasks, {report.dropped} dropped by verification",
        f"tokens: {int(total.get('prompt_tokens', 0))} prompt + "
        f"{int(total.get('completion_tokens', 0))} completion; cost "
        f"${total.get('cost_usd', 0.0):.4f} (see llm/usage.json)",
        *(f"the endpoint {f}" for f in report.format_fallbacks),
    ]
    write_manifest(dest, manifest)
