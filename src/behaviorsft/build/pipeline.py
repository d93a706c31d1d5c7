"""``behaviorsft build``: cases -> conversations -> tasks, with splits, resumable and parallel.

Per case, in a worker process: validate the case, take its own conversation
(dialogue sources) or render one, generate its tasks, serialise everything.
The parent writes in case order: tasks first, then the conversation, then the
case itself. A case line in ``BENCH/cases.jsonl`` therefore means its tasks and
conversation are complete, so a re-run after a crash (even SIGKILL) skips
finished cases, regenerates the interrupted one (output is deterministic per
case) and drops the task lines already written by id: no duplicate, no gap.

When the cases file lies in the bench folder itself, ``BENCH/conversations.jsonl``
is both the source's own dialogues (input) and the rendered ones (output), and
when it *is* ``BENCH/cases.jsonl`` that file is input and stays as it is. Then
``BENCH/.behaviorsft.built`` (one ``{"id", "rendered"}`` line per case, written
after its tasks and before its conversation) tells the two kinds of
conversation apart and marks progress: a case is finished when it is listed
there, has its conversation and (unless in place) its line in cases.jsonl.

Around that: the input is checked before anything is written (a tasks file,
an empty file or one without a valid case is refused); the folder is locked
for the whole build (``store.FolderLock``); a resume with options that change
content is refused; a case that fails is skipped into the manifest with its
file:line, id and reason, and every other case is still built.

Memory stays flat: cases stream through; only ids, splits and counters are
kept (plus the input conversations of dialogue sources, which are small).
"""

from __future__ import annotations

import gc
import json
import multiprocessing as mp
import os
import shutil
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from behaviorsft.bench import CASES_FILE, CONVERSATIONS_FILE, TASKS_FILE
from behaviorsft.build.conversation import Rendered, render
from behaviorsft.build.splits import PAPER_PROPORTIONS, assign_splits, split_of
from behaviorsft.build.tasks import SOURCE_TYPES, case_tasks, key_rates
from behaviorsft.records import Case, Conversation, Split, TaskType
from behaviorsft.sources.kb import KnowledgeBase, load_kb
from behaviorsft.store import (
    MANIFEST_NAME,
    FileInfo,
    FolderLock,
    JsonlWriter,
    RecordError,
    Skipped,
    changed_options,
    detect_record_type,
    new_manifest,
    read_manifest,
    scan_jsonl,
    validation_errors,
    write_manifest,
)

CHUNK = 32
# Progress of an in-place build (cases file inside the bench folder); not *.jsonl,
# so `validate BENCH/` does not take it for a records file.
BUILT_MARKER = ".behaviorsft.built"
# Per case: the items its generators left out and why (summed into the manifest, so a
# build killed and resumed counts exactly what a clean build counts).
DROPPED_FILE = ".behaviorsft.dropped.jsonl"
# What `build` and the stages reading its output (audit, stats) leave in a bench;
# `--fresh` removes them all.
DOWNSTREAM = ("audit.json", "stats.json", "figures")
# Options that change what a build writes: a resume with other values is refused.
RESUME_KEYS = ("seed", "types", "proportions", "generator")
# (file, line, case JSON, its conversation JSON if the source had one, split)
_Item = tuple[str, int, dict[str, Any], dict[str, Any] | None, str | None]


class BuildInputError(ValueError):
    """The cases file cannot be built (nothing was written); ``errors``: its bad lines."""

    def __init__(self, message: str, errors: list[RecordError] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class BuildRefused(ValueError):
    """An existing bench was built with other options, or resuming would change it."""


@dataclass
class BuildReport:
    """What a build wrote (cumulative over resumed runs) and what it skipped."""

    cases: int = 0
    tasks: int = 0
    new_cases: int = 0
    new_tasks: int = 0
    resumed_from: int = 0
    total: int = 0  # cases (lines with an id) in the input
    in_place: bool = False  # the cases file is the bench's own cases.jsonl
    by_source_type: dict[str, dict[str, int]] = field(default_factory=dict)
    controls: dict[str, int] = field(default_factory=dict)
    perturbed: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    errors: list[RecordError] = field(default_factory=list)  # bad case lines
    failed: list[RecordError] = field(default_factory=list)  # valid cases that raised
    notes: list[str] = field(default_factory=list)
    # Items the generators left out because their key could not be verified against the
    # record, by "<task type>: <reason>" (every case built in this folder, from DROPPED_FILE).
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def skipped(self) -> list[RecordError]:
        """Every case line not built, with its reason."""
        return [*self.errors, *self.failed]


def build_config(
    cases: str | os.PathLike[str],
    *,
    seed: int,
    types: list[str] | None,
    proportions: tuple[float, float, float],
) -> dict[str, Any]:
    """The manifest's ``config`` of a programmatic build (``RESUME_KEYS`` must match)."""
    return {
        "cases": str(cases),
        "seed": seed,
        "types": sorted(set(types)) if types else "all",
        "proportions": list(proportions),
        "generator": "programmatic",
    }


# Worker state (set once per process by the initializer).
_KB: KnowledgeBase | None = None
_OPTS: dict[str, Any] = {}


def _init(seed: int, types: list[str] | None) -> None:
    global _KB, _OPTS
    _KB = load_kb()
    _OPTS = {"seed": seed, "types": {TaskType(t) for t in types} if types else None}


# Cyclic garbage collection during a build: the knowledge base, the key-rate table and
# the caches are long-lived and the per-case objects are mostly freed by reference
# counting, so the default thresholds (700, 10, 10) spent about a tenth of the build's CPU
# re-scanning them. Frozen (``gc.freeze``) before the workers fork, they are never scanned
# again (nor their pages copied by the scan), and young objects are collected less often.
GC_THRESHOLDS = (50_000, 20, 10)


@contextmanager
def lean_gc() -> Iterator[None]:
    """Freeze what exists now and raise the thresholds; as before on exit (a caller that
    had frozen objects itself keeps them frozen, and ours with them)."""
    old = gc.get_threshold()
    had_frozen = gc.get_freeze_count() > 0
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        if not had_frozen:
            gc.unfreeze()


def _init_worker(seed: int, types: list[str] | None) -> None:
    """Pool initializer: ``_init`` and the build's GC settings (for the worker's life)."""
    _init(seed, types)
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _describe(exc: BaseException) -> str:
    """``IndexError: string index out of range (conversation.py:203, in _render_kb)``."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" ({Path(last.filename).name}:{last.lineno}, in {last.name})"
    return text


def _one(item: _Item) -> dict[str, Any]:
    path, line, case_obj, conv_obj, split = item
    try:
        return _build_case(path, line, case_obj, conv_obj, split)
    except Exception as exc:  # one case must never end the build (StopIteration included)
        where = f"case {case_obj.get('id')}"
        return {"failed": RecordError(path, line, where, f"not built: {_describe(exc)}")}


def _build_case(
    path: str,
    line: int,
    case_obj: dict[str, Any],
    conv_obj: dict[str, Any] | None,
    split: str | None,
) -> dict[str, Any]:
    assert _KB is not None
    try:
        case = Case.model_validate(case_obj)
    except ValidationError as exc:
        return {"errors": validation_errors(path, line, exc)}
    if conv_obj is not None:
        try:
            conversation = Conversation.model_validate(conv_obj)
        except ValidationError as exc:
            return {"errors": validation_errors(path, line, exc)}
        # A real dialogue (ACI-Bench, MTS-Dialog) is used as is: nothing to render, no anchors.
        rendered = Rendered(conversation=conversation)
    else:
        rendered = render(case, _KB, seed=_OPTS["seed"])
    dropped: Counter[str] = Counter()
    tasks = case_tasks(
        case,
        rendered,
        _KB,
        seed=_OPTS["seed"],
        split=Split(split) if split else None,
        types=_OPTS["types"],
        dropped=dropped,
    )
    return {
        "dropped": dict(dropped),
        "case_id": case.id,
        "case": case.model_dump_json(),
        "conversation": rendered.conversation.model_dump_json(),
        "rendered": conv_obj is None,
        "tasks": [(t.id, t.model_dump_json()) for t in tasks],
    }


def _read_conversations(path: Path, exclude: set[str] | None = None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return out
    for _, obj, _, _ in scan_jsonl(path, None, key=None):
        if (
            isinstance(obj, dict)
            and isinstance(obj.get("case_id"), str)
            and (exclude is None or obj["case_id"] not in exclude)
        ):
            out[obj["case_id"]] = obj
    return out


@dataclass
class _Input:
    entries: list[tuple[int, str]]  # (line, case id) of every line with an id
    source_of: dict[str, str]
    errors: list[RecordError]
    rejected: set[int]  # lines already found invalid (reported in errors)


def _scan_input(src: Path, *, strict: bool) -> _Input:
    """Pass 1, read-only: ids and sources; validate until a valid case (all with ``strict``)."""
    if not src.exists():
        raise BuildInputError(f"{src}: no such file")
    if src.is_dir():
        raise BuildInputError(
            f"{src} is a directory, not a cases file: pass the JSONL file inside it "
            f"(e.g. {src / CASES_FILE})"
        )
    try:
        rtype = detect_record_type(src)
    except OSError as exc:
        raise BuildInputError(f"{src}: cannot read it: {exc.strerror or exc}") from None
    if rtype is not None and rtype != "case":
        raise BuildInputError(
            f"{src} is a {rtype}s file, not a cases file: pass the cases JSONL written by "
            "`behaviorsft cases synth` or `cases import`"
        )
    try:
        return _scan_lines(src, strict=strict)
    except OSError as exc:
        raise BuildInputError(f"{src}: cannot read it: {exc.strerror or exc}") from None


def _scan_lines(src: Path, *, strict: bool) -> _Input:
    got = _Input([], {}, [], set())
    seen_valid = False
    for line, obj, errors, _ in scan_jsonl(src, None, key="id"):
        if errors or not isinstance(obj, dict):
            got.errors.extend(errors)
            continue
        cid = obj.get("id")
        if not isinstance(cid, str) or not cid:
            got.errors.append(RecordError(str(src), line, "id", "missing or not a string"))
            continue
        got.entries.append((line, cid))
        src_obj = obj.get("source")
        got.source_of[cid] = src_obj.get("name", "?") if isinstance(src_obj, dict) else "?"
        if strict or not seen_valid:
            try:
                Case.model_validate(obj)
                seen_valid = True
            except ValidationError as exc:
                got.errors.extend(validation_errors(str(src), line, exc))
                got.rejected.add(line)
    if not got.entries and not got.errors:
        raise BuildInputError(f"{src}: no case to build (the file is empty)")
    if not seen_valid:
        raise BuildInputError(
            f"{src}: no valid case ({len(got.errors)} problem(s)); nothing was built", got.errors
        )
    if strict and got.errors:
        raise BuildInputError(
            f"{src}: {len({e.line for e in got.errors})} bad case line(s); with --strict "
            "nothing is built until they are fixed",
            got.errors,
        )
    return got


def _written_splits(tasks_path: Path) -> dict[str, str | None]:
    """The split each case's tasks already carry in ``tasks_path``."""
    out: dict[str, str | None] = {}
    if not tasks_path.exists():
        return out
    for _, obj, _, _ in scan_jsonl(tasks_path, None, key=None):
        if isinstance(obj, dict) and isinstance(obj.get("case_id"), str):
            out.setdefault(obj["case_id"], obj.get("split"))
    return out


def _atomic_write_lines(path: Path, lines: list[bytes]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.writelines(lines)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _clear(dest: Path, *, shared: bool, in_place: bool) -> None:
    """``--fresh``: remove what earlier builds and audit/stats wrote (never the input)."""
    for name in (TASKS_FILE, DROPPED_FILE, *DOWNSTREAM, *([] if in_place else [CASES_FILE])):
        target = dest / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    marker = dest / BUILT_MARKER
    if not shared:
        for name in (CONVERSATIONS_FILE, MANIFEST_NAME, BUILT_MARKER):
            (dest / name).unlink(missing_ok=True)
        return
    # Cases in this folder: conversations.jsonl may hold the source's own dialogues; drop ours.
    rendered = {
        obj["id"]
        for _, obj, _, _ in (scan_jsonl(marker, None, key=None) if marker.exists() else [])
        if isinstance(obj, dict) and obj.get("rendered")
    }
    conv = dest / CONVERSATIONS_FILE
    if rendered and conv.exists():
        keep = []
        with open(conv, "rb") as fh:
            for raw in fh:
                try:
                    cid = json.loads(raw).get("case_id")
                except (ValueError, AttributeError):
                    cid = None
                if cid not in rendered:
                    keep.append(raw if raw.endswith(b"\n") else raw + b"\n")
        _atomic_write_lines(conv, keep)
    marker.unlink(missing_ok=True)


def check_resume(dest: Path, config: dict[str, Any], keys: Sequence[str] = RESUME_KEYS) -> None:
    """Refuse (BuildRefused) to resume a BENCH folder built with other ``keys`` options."""
    try:
        old = read_manifest(dest)
    except ValueError as exc:
        raise BuildInputError(f"{exc}; fix or delete it, or start over with --fresh") from None
    if old is None or old.stage != "build":
        return
    diffs = changed_options(dest / MANIFEST_NAME, config, keys, section="config")
    if diffs:
        raise BuildRefused(
            f"{dest} was built with other options ({diffs}); resuming would mix the two. "
            "Re-run with the same options, or add --fresh to start over"
        )


def _start_manifest(dest: Path, config: dict[str, Any], *, fresh: bool, shared: bool) -> Any:
    """Record the options before the first record is written (so a killed build is checked)."""
    try:
        old = read_manifest(dest)
    except ValueError:
        old = None  # only with --fresh: the corrupt one is replaced
    manifest = new_manifest("build")
    if old is not None and not (fresh and old.stage == "build"):
        manifest = old
    elif old is not None and shared:
        manifest.sources = old.sources  # what `cases synth/import` recorded of the input
    manifest.stage = "build"
    manifest.seeds = [config["seed"]]
    manifest.config = config
    write_manifest(dest, manifest)
    return manifest


def build_bench(
    cases_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    types: list[str] | None = None,
    proportions: tuple[float, float, float] = PAPER_PROPORTIONS,
    workers: int | None = None,
    fresh: bool = False,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Build (or finish building) ``out`` from a cases JSONL file, and write its manifest.

    ``progress(done, total)`` is called after each case. ``workers``: processes
    (default: CPU count, at most 8; 1 runs inline). Bad case lines and cases
    that fail are reported in ``BuildReport.errors`` / ``.failed`` as
    file:line: field: problem, listed under ``skipped`` in the manifest, and
    every other case is built.

    Raises ``BuildInputError`` (not a cases file, empty, no valid case, or any
    bad line with ``strict``; nothing written), ``store.FolderBusyError``
    (another process writes to ``out``) and ``BuildRefused`` (``out`` was
    built with other options, or resuming would move a built case's split).
    """
    src = Path(cases_path)
    dest = Path(out)
    if dest.exists() and not dest.is_dir():
        raise BuildInputError(f"{dest} is a file; --out needs a folder (new or a bench)")
    scanned = _scan_input(src, strict=strict)
    config = build_config(src, seed=seed, types=types, proportions=proportions)
    with FolderLock(dest):
        shared = os.path.samefile(src.parent, dest)
        in_place = shared and src.name == CASES_FILE
        if fresh:
            _clear(dest, shared=shared, in_place=in_place)
        else:
            check_resume(dest, config)
        ids = [cid for _, cid in scanned.entries]
        splits = assign_splits(ids, seed=seed, proportions=proportions)
        by_hash = {cid: split_of(cid, seed=seed, proportions=proportions) for cid in splits}
        moved = sorted(cid for cid, s in splits.items() if s is not by_hash[cid])
        if not fresh:
            written = _written_splits(dest / TASKS_FILE)
            stale = sorted(
                cid for cid, s in written.items() if cid in splits and s != splits[cid].value
            )
            if stale:
                raise BuildRefused(
                    f"{dest}: {len(stale)} built case(s) would now get another split (e.g. "
                    f"{stale[0]}: {written[stale[0]]} -> {splits[stale[0]].value}): with few "
                    "cases a split that would stay empty takes the case nearest to it, and the "
                    "cases added since change that choice. Re-run with --fresh"
                )
        manifest = _start_manifest(dest, config, fresh=fresh, shared=shared)
        report = _run(src, dest, scanned, splits, shared, in_place, seed, types, workers, progress)
        report.notes.extend(
            f"{cid}: in split {splits[cid].value} by the small-sample rule (its hash says "
            f"{by_hash[cid].value})"
            for cid in moved
        )
        _count(dest / TASKS_FILE, scanned.source_of, report)
        _finish_manifest(dest, manifest, report)
    return report


def _run(
    src: Path,
    dest: Path,
    scanned: _Input,
    splits: dict[str, Split],
    shared: bool,
    in_place: bool,
    seed: int,
    types: list[str] | None,
    workers: int | None,
    progress: Callable[[int, int], None] | None,
) -> BuildReport:
    report = BuildReport(in_place=in_place, total=len(scanned.entries))
    report.errors.extend(scanned.errors)
    task_w = JsonlWriter(dest / TASKS_FILE)
    conv_w = JsonlWriter(dest / CONVERSATIONS_FILE, key="case_id")
    case_w = None if in_place else JsonlWriter(dest / CASES_FILE)
    mark_w = JsonlWriter(dest / BUILT_MARKER) if shared else None
    drop_w = JsonlWriter(dest / DROPPED_FILE)
    if mark_w is not None:
        rendered = {
            obj["id"]
            for _, obj, _, _ in scan_jsonl(mark_w.path, None, key=None)
            if isinstance(obj, dict) and obj.get("rendered")
        }
        conversations = _read_conversations(dest / CONVERSATIONS_FILE, exclude=rendered)
    else:
        conversations = _read_conversations(src.with_name(CONVERSATIONS_FILE))

    def finished(cid: str) -> bool:
        if mark_w is not None and (cid not in mark_w or cid not in conv_w):
            return False
        return case_w is None or cid in case_w

    todo = [
        (line, cid)
        for line, cid in scanned.entries
        if not finished(cid) and line not in scanned.rejected
    ]
    done = len(scanned.entries) - len(todo)
    report.resumed_from = sum(finished(cid) for _, cid in scanned.entries)
    wanted = {line for line, _ in todo}

    def items() -> Iterator[_Item]:
        for line, obj, errors, _ in scan_jsonl(src, None, key="id"):
            if line in wanted and not errors and isinstance(obj, dict):
                cid = obj["id"]
                yield str(src), line, obj, conversations.get(cid), splits[cid].value

    n_workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    if progress is not None:
        progress(done, report.total)
    lean = ExitStack()
    try:
        if n_workers <= 1:
            _init(seed, types)
            lean.enter_context(lean_gc())
            results: Iterator[dict[str, Any]] = map(_one, items())
            pool = None
        else:
            fork = "fork" in mp.get_all_start_methods()
            if fork and todo:
                _init(seed, types)
            # The workers inherit the frozen objects (the key-rate probe's workers too: with
            # the default thresholds they spent about a fifth of their CPU in collections).
            lean.enter_context(lean_gc())
            if fork and todo:
                # Forked workers inherit the knowledge base and the key-rate table
                # (measured once here rather than once per worker).
                assert _KB is not None
                key_rates.measure(_KB, _OPTS["types"], workers=n_workers)
            ctx = mp.get_context("fork" if fork else "spawn")
            pool = ctx.Pool(n_workers, initializer=_init_worker, initargs=(seed, types))
            results = pool.imap(_one, items(), chunksize=CHUNK)
        for res in results:
            done += 1
            if "errors" in res:
                report.errors.extend(res["errors"])
            elif "failed" in res:
                report.failed.append(res["failed"])
            else:
                cid = res["case_id"]
                report.new_tasks += task_w.write_lines(res["tasks"])
                # Before the writes that mark the case finished (conversation, case).
                drop_w.write_line(cid, json.dumps({"id": cid, "dropped": res["dropped"]}))
                if mark_w is not None:
                    mark_w.write_line(cid, json.dumps({"id": cid, "rendered": res["rendered"]}))
                conv_w.write_line(cid, res["conversation"])
                if case_w is not None:
                    case_w.write_line(cid, res["case"])
                report.new_cases += 1
            if progress is not None:
                progress(done, report.total)
        if pool is not None:
            pool.close()
            pool.join()
    finally:
        for w in (task_w, conv_w, case_w, mark_w, drop_w):
            if w is not None:
                w.close()
        lean.close()
    report.errors.sort(key=lambda e: e.line)
    # In place, the marker tells; otherwise BENCH/cases.jsonl counts (as before).
    report.cases = len(case_w) if case_w is not None else sum(finished(cid) for cid in set(splits))
    built = {cid for cid in splits if finished(cid)}
    for _, obj, _, _ in scan_jsonl(drop_w.path, None, key=None):
        if isinstance(obj, dict) and obj.get("id") in built:
            report.dropped.update(obj.get("dropped") or {})
    return report


def _finish_manifest(dest: Path, manifest: Any, report: BuildReport) -> None:
    files = {
        CASES_FILE: ("case", report.total if report.in_place else report.cases),
        CONVERSATIONS_FILE: ("conversation", report.cases),
        TASKS_FILE: ("task", report.tasks),
    }
    for name, (rtype, count) in files.items():
        manifest.files[name] = FileInfo(record_type=rtype, count=count)
    # Verified-key drops of every case built so far (this run's and earlier runs').
    dropped = {f"dropped.{k}": v for k, v in report.dropped.items()}
    manifest.counts = {
        **{f"split.{k}": v for k, v in report.splits.items()},
        **{f"restraint_controls.{k}": v for k, v in report.controls.items() if v},
        **{f"perturbed.{k}": v for k, v in report.perturbed.items() if v},
        **{f"{s}.{t}": n for s, by in report.by_source_type.items() for t, n in by.items()},
        **dict(sorted(dropped.items())),
    }
    manifest.skipped = [
        Skipped(where=f"{e.path}:{e.line}", reason=f"{e.field}: {e.message}")
        for e in report.skipped
    ]
    manifest.notes = [
        *(
            ["the cases file is this folder's cases.jsonl: it is input, left as it is"]
            if report.in_place
            else []
        ),
        *report.notes,
    ]
    write_manifest(dest, manifest)


def _count(tasks_path: Path, source_of: dict[str, str], report: BuildReport) -> None:
    """Per source x type counts, controls, perturbed items and splits, from the file."""
    by: dict[str, Counter[str]] = defaultdict(Counter)
    controls: Counter[str] = Counter()
    perturbed: Counter[str] = Counter()
    splits: Counter[str] = Counter()
    n = 0
    with open(tasks_path, encoding="utf-8") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            t = json.loads(raw)
            n += 1
            ttype = t["task_type"]
            by[source_of.get(t["case_id"], "?")][ttype] += 1
            controls[ttype] += bool(t.get("restraint_control"))
            perturbed[ttype] += t.get("perturbation") is not None
            splits[t.get("split") or "none"] += 1
    report.tasks = n
    report.by_source_type = {s: dict(c) for s, c in sorted(by.items())}
    report.controls = dict(controls)
    report.perturbed = dict(perturbed)
    report.splits = dict(splits)


__all__ = [
    "SOURCE_TYPES",
    "BuildInputError",
    "BuildRefused",
    "BuildReport",
    "build_bench",
    "build_config",
]
