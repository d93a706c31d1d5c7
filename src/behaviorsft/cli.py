"""The `behaviorsft` command line: one subcommand per pipeline stage."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from behaviorsft import __version__
from behaviorsft import taxonomy as tx
from behaviorsft.demo import DemoConfig, run_demo
from behaviorsft.records import RECORD_TYPES
from behaviorsft.store import (
    DEFAULT_FILES,
    MANIFEST_NAME,
    FileInfo,
    LoadResult,
    detect_record_type,
    export_hf,
    load_records,
    model_for,
    new_manifest,
    read_manifest,
    write_manifest,
)

HELP = """\
Build, evaluate and train clinical LLM agents across the reactive-proactive spectrum
(BehaviorBench / BehaviorSFT).

Pipeline (every arrow is a JSONL file plus a manifest.json):

\b
  sources -> cases -> conversations -> tasks -> splits
  splits -> eval runs -> metrics -> reports
  splits -> SFT data -> train (BehaviorSFT | General SFT) -> adapter

Stages: cases synth|import -> build -> audit / stats -> (eval, train: see --help).
"""

app = typer.Typer(help=HELP, no_args_is_help=True, rich_markup_mode=None, add_completion=False)
console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"behaviorsft {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Clinical agents that know when to act."""


def _jsonl_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.rglob("*.jsonl")))
        elif p.exists():
            files.append(p)
        else:
            raise typer.BadParameter(f"{p}: no such file or directory", param_hint="PATH")
    return files


def _check(path: Path, record_type: str | None) -> tuple[str | None, LoadResult]:
    rtype = record_type or detect_record_type(path)
    if rtype is None:
        return None, LoadResult()
    return rtype, load_records(path, model_for(rtype))


@app.command()
def validate(
    paths: list[Path] = typer.Argument(..., help="Records files, or folders of *.jsonl files."),
    record_type: str | None = typer.Option(
        None,
        "--type",
        "-t",
        help=f"Record type of every file: one of {', '.join(RECORD_TYPES)}. "
        "Default: from the folder's manifest, the file name, or the first record.",
    ),
    max_errors: int = typer.Option(
        200, help="Print at most this many problems per file (all are counted)."
    ),
) -> None:
    """Check records files; print `file:line: field: problem` for every bad line.

    Read-only: nothing is changed. Exit code 1 if any line is bad.
    """
    if record_type is not None and record_type not in RECORD_TYPES:
        raise typer.BadParameter(f"choose one of {', '.join(RECORD_TYPES)}", param_hint="--type")
    bad_files = 0
    for folder in {p for p in paths if p.is_dir()}:
        if (folder / MANIFEST_NAME).exists():
            try:
                read_manifest(folder)
            except ValueError as exc:
                err_console.print(str(exc), markup=False)
                bad_files += 1
    for f in _jsonl_files(paths):
        rtype, res = _check(f, record_type)
        if rtype is None:
            err_console.print(f"{f}: cannot tell the record type; pass --type", markup=False)
            bad_files += 1
            continue
        for e in res.errors[:max_errors]:
            err_console.print(str(e), markup=False, soft_wrap=True)
        if len(res.errors) > max_errors:
            err_console.print(f"{f}: ... {len(res.errors) - max_errors} more problems")
        bad_lines = len({e.line for e in res.errors})
        torn = " (torn last line ignored)" if res.torn_tail else ""
        status = "[green]ok[/]" if res.ok else f"[red]{bad_lines} bad line(s)[/]"
        console.print(
            f"{f}: {len(res.records)} valid {rtype} record(s), {status}{torn}", soft_wrap=True
        )
        bad_files += not res.ok
    if bad_files:
        raise typer.Exit(code=1)


@app.command("export-hf")
def export_hf_cmd(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A records file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    record_type: str | None = typer.Option(None, "--type", "-t", help="Record type."),
    fmt: str = typer.Option("parquet", "--format", help="'parquet' or 'arrow' (save_to_disk)."),
) -> None:
    """Export a records file as a Hugging Face dataset (tasks split into train/validation/test)."""
    written = export_hf(path, out, record_type=record_type, fmt=fmt)
    for w in written:
        console.print(f"wrote {w}")


@app.command()
def taxonomy(
    autonomy: bool = typer.Option(False, help="Also print the six autonomy levels."),
) -> None:
    """Print the 13 task types, score bins and behaviour tokens."""
    t = Table(title="BehaviorBench task types")
    for col in ("category", "task type", "binary token", "what it asks"):
        t.add_column(col)
    for ttype in tx.TABLE_ORDER:
        cat = tx.TASK_CATEGORY[ttype]
        token = (
            "by score (>= 0.5 proactive)"
            if cat is tx.Category.BALANCED
            else (tx.behavior_token(ttype, 0.5))
        )
        t.add_row(cat.value, ttype.value, token, tx.TASK_DESCRIPTIONS[ttype])
    console.print(t)
    b = Table(title="Behaviour score -> label")
    for col in ("score", "5-class", "3-class", "binary", "fine token"):
        b.add_column(col)
    for label in tx.BehaviorLabel:
        low, high = tx.score_range(label)
        bracket = "]" if high == 1.0 else ")"
        b.add_row(
            f"[{low:.1f}, {high:.1f}{bracket}",
            label.value,
            tx.three_class(label),
            tx.binary(label),
            tx.FINE_BEHAVIOR_TOKENS[label],
        )
    console.print(b, markup=False)
    if autonomy:
        a = Table(title="Autonomy levels (paper Table 10)")
        for col in ("level", "name", "agent", "clinician"):
            a.add_column(col)
        for lv in tx.AUTONOMY_LEVELS:
            a.add_row(str(lv.level), lv.name, lv.agent_role, lv.clinician_role)
        console.print(a)


@app.command()
def schema(
    record_type: str = typer.Argument(..., help=f"One of {', '.join(RECORD_TYPES)}."),
) -> None:
    """Print the JSON schema of a record type."""
    try:
        model = model_for(record_type)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="RECORD_TYPE") from None
    print(json.dumps(model.model_json_schema(), indent=2))


cases_app = typer.Typer(help="Make Case records: import open clinical data or your own reports.")
app.add_typer(cases_app, name="cases")


@cases_app.command("import")
def cases_import(
    paths: list[Path] = typer.Argument(..., help="Files or folders to import."),
    source: str = typer.Option(
        ..., "--source", "-s", help="fhir, mediq, medec, aci-bench, mts-dialog or text."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Cases file to write (JSONL)."),
    licence: str | None = typer.Option(None, help="Licence of your own 'text' reports."),
    attribution: str | None = typer.Option(None, help="Attribution for 'text' reports."),
    strict: bool = typer.Option(False, help="Exit 1 if any entry could not be imported."),
) -> None:
    """Import cases (and dialogues, for aci-bench and mts-dialog) into JSONL.

    Bad entries are reported as `file:line: field: problem`, listed in the
    manifest and skipped; every good entry is kept. Re-running appends only
    cases whose id is not yet in the output (resume after a crash).
    """
    from behaviorsft.sources.base import SOURCE_LICENCES, import_paths
    from behaviorsft.store import JsonlWriter, Skipped, SourceInfo

    try:
        items = import_paths(source, paths, licence=licence, attribution=attribution)
        first = next(items, None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    conv_path = out.with_name(DEFAULT_FILES["conversation"])
    manifest = read_manifest(out.parent) or new_manifest("cases-import")
    n_cases = n_convs = 0
    skipped: list[Skipped] = []
    with JsonlWriter(out) as cw, JsonlWriter(conv_path, key="case_id") as vw:
        with console.status(f"importing {source}") as status:
            stream = itertools.chain([first] if first is not None else [], items)
            for i, got in enumerate(stream, start=1):
                if got.error is not None:
                    err_console.print(str(got.error), markup=False, soft_wrap=True)
                    skipped.append(
                        Skipped(
                            where=f"{got.error.path}:{got.error.line}", reason=got.error.message
                        )
                    )
                    continue
                if got.case is not None:
                    n_cases += cw.write(got.case)
                if got.conversation is not None:
                    n_convs += vw.write(got.conversation)
                if i % 200 == 0:
                    status.update(f"importing {source}: {i} entries")
        total_cases, total_convs = len(cw), len(vw)
    if total_convs == 0 and conv_path.exists() and conv_path.stat().st_size == 0:
        conv_path.unlink()
    lic = SOURCE_LICENCES[source]
    manifest.sources = [s for s in manifest.sources if s.name != source] + [
        SourceInfo(
            name=source,
            licence=licence or lic.licence,
            attribution=attribution or lic.attribution,
            count=n_cases,
        )
    ]
    manifest.files[out.name] = FileInfo(record_type="case", count=total_cases)
    if total_convs:
        manifest.files[conv_path.name] = FileInfo(record_type="conversation", count=total_convs)
    manifest.skipped.extend(skipped)
    write_manifest(out.parent, manifest)
    console.print(
        f"{source}: {n_cases} new case(s), {n_convs} new conversation(s), "
        f"{len(skipped)} skipped -> {out} ({total_cases} cases in all)",
        soft_wrap=True,
    )
    if strict and skipped:
        raise typer.Exit(code=1)


def _progress() -> Any:
    from behaviorsft.progress import make_progress

    return make_progress(err_console)


@cases_app.command("synth")
def cases_synth(
    n: int = typer.Option(..., "--n", min=1, help="Number of cases."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives byte-identical output."),
    out: Path = typer.Option(..., "--out", "-o", help="Cases file to write (JSONL)."),
    fresh: bool = typer.Option(False, help="Start over instead of resuming."),
) -> None:
    """Synthesize internal-medicine cases from the shipped clinical knowledge base.

    Case i of a seed depends only on (seed, i), so a re-run resumes where a
    crash stopped and --n can be raised later to extend a file.
    """
    from behaviorsft.sources.kb import load_kb
    from behaviorsft.sources.synthetic import ATTRIBUTION, LICENCE, synthesize_case
    from behaviorsft.store import JsonlWriter, SourceInfo

    kb = load_kb()
    manifest = (None if fresh else read_manifest(out.parent)) or new_manifest("cases-synth")
    with JsonlWriter(out, fresh=fresh) as w, _progress() as prog:
        bar = prog.add_task("synthesizing cases", total=n)
        for i in range(n):
            cid = f"synthetic:{seed}-{i:06d}"
            if cid not in w:
                w.write(synthesize_case(i, seed=seed, kb=kb))
            prog.advance(bar)
        total, new = len(w), w.written
    manifest.seeds = sorted({*manifest.seeds, seed})
    manifest.config.update({"n": n, "seed": seed})
    manifest.sources = [s for s in manifest.sources if s.name != "synthetic"] + [
        SourceInfo(name="synthetic", licence=LICENCE, attribution=ATTRIBUTION, count=total)
    ]
    manifest.files[out.name] = FileInfo(record_type="case", count=total)
    write_manifest(out.parent, manifest)
    console.print(f"synthetic: {new} new case(s) -> {out} ({total} in all, seed {seed})")


@app.command("build")
def build_cmd(
    cases: Path = typer.Option(..., "--cases", help="Cases JSONL (from `cases synth/import`)."),
    out: Path = typer.Option(..., "--out", "-o", help="BENCH folder to write."),
    seed: int = typer.Option(0, help="Seed for renders, options, shuffles and splits."),
    types: list[str] | None = typer.Option(
        None, "--types", help="Only these task types (repeatable); default all 13."
    ),
    proportions: str = typer.Option(
        "", help="Split proportions 'train,val,test' (default: the paper's 6776/110/977)."
    ),
    workers: int | None = typer.Option(None, help="Worker processes (default: CPU count)."),
    fresh: bool = typer.Option(False, help="Start over instead of resuming."),
    generator: str = typer.Option(
        "programmatic",
        "--generator",
        help="programmatic (offline, ground truth by construction) or llm (the paper's "
        "LLM-driven construction; see `behaviorsft build-llm --help` for all its options).",
    ),
    model: str | None = typer.Option(
        None, "--model", help="llm: openai/<model> or openai-compatible/<model>."
    ),
    base_url: str | None = typer.Option(None, "--base-url", help="llm: endpoint API root."),
    concurrency: int = typer.Option(32, min=1, help="llm: requests in flight."),
    max_cases: int | None = typer.Option(None, "--max-cases", min=1, help="llm: first N cases."),
    verify: str = typer.Option("drop", "--verify", help="llm: drop, flag or off."),
) -> None:
    """Build a BENCH folder: conversations, tasks of all 13 types, splits, manifest.

    Resumable: a re-run (after a crash, even SIGKILL) finishes the missing
    cases without duplicating any task. Bad case lines are reported as
    file:line: field: problem and listed in the manifest.
    """
    if generator == "llm":
        from behaviorsft.cli_build_llm import run_build_llm

        if not model:
            raise typer.BadParameter("--generator llm needs --model", param_hint="--model")
        run_build_llm(
            cases,
            out,
            model=model,
            base_url=base_url,
            concurrency=concurrency,
            types=types,
            max_cases=max_cases,
            verify=verify,
            seed=seed,
            fresh=fresh,
        )
        return
    if generator != "programmatic":
        raise typer.BadParameter(
            f"{generator!r}: choose programmatic or llm", param_hint="--generator"
        )
    from behaviorsft.build.pipeline import build_bench
    from behaviorsft.build.splits import PAPER_PROPORTIONS
    from behaviorsft.store import Skipped

    if not cases.exists():
        raise typer.BadParameter(f"{cases}: no such file", param_hint="--cases")
    valid = {t.value for t in tx.TaskType}
    for t in types or []:
        if t not in valid:
            raise typer.BadParameter(
                f"unknown task type {t!r}; choose from {', '.join(sorted(valid))}",
                param_hint="--types",
            )
    props = PAPER_PROPORTIONS
    if proportions:
        try:
            a, b, c = (float(x) for x in proportions.split(","))
            props = (a, b, c)
        except ValueError:
            raise typer.BadParameter(
                "expected three numbers 'train,val,test'", param_hint="--proportions"
            ) from None
    with _progress() as prog:
        bar = prog.add_task("building tasks", total=None)

        def tick(done: int, total: int) -> None:
            prog.update(bar, completed=done, total=total)

        report = build_bench(
            cases,
            out,
            seed=seed,
            types=types or None,
            proportions=props,
            workers=workers,
            fresh=fresh,
            progress=tick,
        )
    for e in report.errors:
        err_console.print(str(e), markup=False, soft_wrap=True)
    manifest = (None if fresh else read_manifest(out)) or new_manifest("build")
    manifest.seeds = [seed]
    manifest.config = {
        "cases": str(cases),
        "seed": seed,
        "types": types or "all",
        "proportions": list(props),
        "generator": "programmatic",
    }
    for name, rtype, count in (
        (DEFAULT_FILES["case"], "case", report.cases),
        (DEFAULT_FILES["conversation"], "conversation", report.cases),
        (DEFAULT_FILES["task"], "task", report.tasks),
    ):
        manifest.files[name] = FileInfo(record_type=rtype, count=count)
    manifest.counts = {
        **{f"split.{k}": v for k, v in report.splits.items()},
        **{f"restraint_controls.{k}": v for k, v in report.controls.items() if v},
        **{f"perturbed.{k}": v for k, v in report.perturbed.items() if v},
        **{f"{s}.{t}": n for s, by in report.by_source_type.items() for t, n in by.items()},
    }
    manifest.skipped = [
        Skipped(where=f"{e.path}:{e.line}", reason=e.message) for e in report.errors
    ]
    write_manifest(out, manifest)
    table = Table(title=f"Tasks per type and source ({report.tasks} in all)")
    sources = sorted(report.by_source_type)
    table.add_column("task type")
    for src in sources:
        table.add_column(src, justify="right")
    table.add_column("controls", justify="right")
    table.add_column("perturbed", justify="right")
    for ttype in tx.TABLE_ORDER:
        row = [str(report.by_source_type[s].get(ttype.value, 0)) for s in sources]
        table.add_row(
            ttype.value,
            *row,
            str(report.controls.get(ttype.value, 0)),
            str(report.perturbed.get(ttype.value, 0)),
        )
    console.print(table)
    resumed = (
        f", resumed after {report.resumed_from} finished case(s)" if report.resumed_from else ""
    )
    console.print(
        f"{out}: {report.cases} cases, {report.tasks} tasks ({report.new_tasks} new{resumed}); "
        f"splits {report.splits}; {len(report.errors)} bad case line(s) skipped"
    )


def _bench_file(bench: Path, rtype: str) -> Path:
    path = bench / DEFAULT_FILES[rtype]
    if not path.exists():
        raise typer.BadParameter(f"{path}: not found (is {bench} a benchmark folder?)")
    return path


# Short task-type names for the audit table on a narrow terminal (listed under it).
_AUDIT_SHORT_NAMES = {
    "timeline_sequence": "timeline",
    "ddx_reasoning": "ddx",
    "treatment_decision": "treatment",
    "reasoning_differential_evolution": "ddx_evolution",
    "integrity_missing_turn_inference": "missing_turn",
    "predictive_next_action": "next_action",
    "explicit_error_correction": "error_correction",
    "omission_detection": "omission",
    "interpretation_conflict": "interp_conflict",
    "data_conflict_resolution": "data_conflict",
    "consistency_check": "consistency",
}
# Gated baselines in table order: (ShortcutRow field, column header).
_AUDIT_COLUMNS = (
    ("longest", "long"),
    ("overlap", "q-ovl"),
    ("option_only", "opts"),
    ("record_most", "rec+"),
    ("record_fewest", "rec-"),
    ("top_letter", "top"),
)


def audit_tables(report: Any, width: int) -> tuple[list[Any], list[str]]:
    """The audit's tables for a console ``width`` columns wide, and lines to print below.

    Values are accuracies in percent; ``!`` marks one above chance + margin.
    Task types keep their full names when they fit, else get short names that
    are listed below the table.
    """
    from rich import box
    from rich.console import Console
    from rich.measure import Measurement

    def pct(value: float | None, chance: float, missed: bool | None = None) -> str:
        if value is None:
            return "-"
        if missed is None:
            missed = value > chance + report.margin + 1e-12
        return f"{100 * value:.1f}{'!' if missed else ''}"

    def build(short: bool) -> Any:
        t = Table(
            title=f"Shortcut baselines, accuracy % (target: <= chance + {100 * report.margin:.0f})",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            padding=(0, 0),
        )
        t.add_column("task type", no_wrap=True)
        t.add_column("n", justify="right")
        t.add_column("chance", justify="right")
        for _, head in _AUDIT_COLUMNS:
            t.add_column(head, justify="right")
        t.add_column("", no_wrap=True)
        for r in report.shortcuts:
            name = _AUDIT_SHORT_NAMES.get(r.task_type, r.task_type) if short else r.task_type
            t.add_row(
                name,
                str(r.n),
                f"{100 * r.chance:.1f}",
                *(pct(getattr(r, f), r.chance, f in r.missed) for f, _ in _AUDIT_COLUMNS),
                "ok" if r.passes else "MISS",
            )
        return t

    measure = Console(width=10_000)
    table = build(short=False)
    short = Measurement.get(measure, measure.options, table).maximum > width
    if short:
        table = build(short=True)
    tables = [table]
    below = [
        "long: longest option; q-ovl: most words shared with the question; opts: options-only "
        "classifier; rec+/rec-: option the record quotes most/least; top: most common letter "
        "(held out); ! above target"
    ]
    if short:
        used = [r.task_type for r in report.shortcuts if r.task_type in _AUDIT_SHORT_NAMES]
        below.append("short names: " + ", ".join(f"{_AUDIT_SHORT_NAMES[n]} = {n}" for n in used))
    if any(r.semantic_n for r in report.shortcuts):
        sem = Table(
            title="Semantic baselines (informative), accuracy %",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            padding=(0, 0),
        )
        for col in ("task type", "n", "chance", "record", "question"):
            sem.add_column(col, justify="left" if col == "task type" else "right", no_wrap=True)
        for r in report.shortcuts:
            if r.semantic_n:
                name = _AUDIT_SHORT_NAMES.get(r.task_type, r.task_type) if short else r.task_type
                sem.add_row(
                    name,
                    str(r.semantic_n),
                    f"{100 * r.chance:.1f}",
                    pct(r.semantic, r.chance),
                    pct(r.semantic_question, r.chance),
                )
        tables.append(sem)
        below.append(
            "semantic: option most similar to the record (or the question), all-MiniLM-L6-v2"
        )
    return tables, below


def _lint_findings(bench: Path) -> tuple[list[dict[str, Any]] | None, str]:
    """Run the clinical linter if this version has one: (findings or None, a note)."""
    import dataclasses
    import importlib

    try:
        lint_mod = importlib.import_module("behaviorsft.build.lint")
    except ImportError:
        return None, "lint: skipped (this version has no clinical linter, behaviorsft.build.lint)"
    run = getattr(lint_mod, "lint_bench", None)
    if run is None:
        return None, "lint: skipped (behaviorsft.build.lint has no lint_bench(folder))"
    found: list[dict[str, Any]] = []
    for f in run(bench):
        if isinstance(f, dict):
            found.append(f)
        elif hasattr(f, "model_dump"):
            found.append(f.model_dump(mode="json"))
        elif dataclasses.is_dataclass(f) and not isinstance(f, type):
            found.append(dataclasses.asdict(f))
        else:
            found.append({"message": str(f)})
    return found, f"lint: {len(found)} finding(s)"


@app.command("audit")
def audit_cmd(
    bench: Path = typer.Argument(..., exists=True, file_okay=False, help="Benchmark folder."),
    option_only: bool = typer.Option(
        True, help="Also fit the options-only classifier (a few seconds more)."
    ),
    strict: bool = typer.Option(
        False, help="Exit 3 if any target is missed (shortcut, duplicate, leak, lint finding)."
    ),
    semantic: Annotated[
        bool,
        typer.Option(
            help="Also run the semantic baselines (sentence embeddings; needs "
            "pip install 'behaviorsft[semantic]'). Informative: they do not fail the audit."
        ),
    ] = False,
    semantic_cases: Annotated[
        int,
        typer.Option(
            min=0, help="Semantic baselines on a seeded sample of this many cases; 0: all."
        ),
    ] = 200,
    lint: Annotated[
        bool,
        typer.Option("--lint/--no-lint", help="Also run the clinical linter, when installed."),
    ] = True,
) -> None:
    """Audit tasks: duplicates, answer leakage, and shortcut baselines against chance.

    Writes BENCH/audit.json. Target: every shortcut baseline (longest option, question
    overlap, options-only classifier, record match both ways, most common letter)
    within chance + 5 points on every task type. Exit codes: 0 done (also when a
    target is missed, unless --strict), 2 bad or empty input (every bad line is
    listed as file:line: field: problem), 3 with --strict when a target is missed.
    """
    from behaviorsft.build.audit import EmptyBenchError, audit_bench
    from behaviorsft.exit_codes import ExitCode, exit_with
    from behaviorsft.store import RecordFileError

    encoder = None
    if semantic:
        from behaviorsft.build.semantic import Encoder, SemanticUnavailable

        try:
            with console.status("loading the embedding model"):
                encoder = Encoder()
        except SemanticUnavailable as exc:
            err_console.print(f"audit --semantic: {exc}", markup=False, soft_wrap=True)
            raise exit_with(ExitCode.INPUT_ERROR) from None
    try:
        with _progress() as prog:
            bars: dict[str, Any] = {}

            def tick(stage: str, done: int, total: int | None) -> None:
                if stage not in bars:
                    bars[stage] = prog.add_task(stage, total=total)
                prog.update(bars[stage], completed=done, total=total)

            report = audit_bench(
                bench,
                option_only=option_only,
                encoder=encoder,
                semantic_cases=semantic_cases or None,
                progress=tick,
            )
    except (FileNotFoundError, EmptyBenchError) as exc:
        err_console.print(f"audit: {exc}", markup=False, soft_wrap=True)
        raise exit_with(ExitCode.INPUT_ERROR) from None
    except RecordFileError as exc:
        shown = 200
        for e in exc.errors[:shown]:
            err_console.print(str(e), markup=False, soft_wrap=True)
        if len(exc.errors) > shown:
            err_console.print(f"... {len(exc.errors) - shown} more problems", markup=False)
        lines = len({(e.path, e.line) for e in exc.errors})
        err_console.print(
            f"audit: {lines} bad line(s); nothing audited (fix them, see `behaviorsft validate`)",
            markup=False,
            soft_wrap=True,
        )
        raise exit_with(ExitCode.INPUT_ERROR) from None
    for note in report.notes:
        err_console.print(f"warning: {note}", markup=False, soft_wrap=True)
    lint_note = ""
    if lint:
        findings, lint_note = _lint_findings(bench)
        if findings is not None:
            report.lint = findings
    (bench / "audit.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tables, below = audit_tables(report, console.width)
    for t in tables:
        console.print(t, markup=False)
    for line in below:
        console.print(line, markup=False, highlight=False)
    console.print(
        f"duplicate groups: {len(report.duplicate_groups)}   leaked answers: {len(report.leaked)}"
        f"   answer letters: {report.answer_letters}",
        markup=False,
    )
    if report.no_record:
        console.print(
            f"{report.no_record} task(s) show no record (no turns found, no excerpt): "
            "record match is chance for them",
            markup=False,
        )
    if lint_note:
        console.print(lint_note, markup=False)
    missed = sorted({m for r in report.shortcuts for m in r.missed})
    verdict = "passed" if report.passes else "found problems"
    if missed:
        verdict += f" (above target: {', '.join(missed)})"
    console.print(f"audit {verdict}: {bench / 'audit.json'}", markup=False, soft_wrap=True)
    if strict and not report.passes:
        raise exit_with(ExitCode.PARTIAL)


@app.command("stats")
def stats_cmd(
    bench: Path = typer.Argument(..., exists=True, file_okay=False, help="Benchmark folder."),
    figures: Path | None = typer.Option(None, help="Write the Appendix C figures (PNG) here."),
) -> None:
    """Describe a benchmark (paper Appendix C): conversations, task types, scores, labels."""
    from behaviorsft.build.stats import (
        PAPER_CONVERSATION_AVERAGES,
        conversation_stats,
        task_stats,
        write_figures,
    )

    conv_path = bench / DEFAULT_FILES["conversation"]
    convs = conversation_stats(conv_path) if conv_path.exists() else None
    tasks = task_stats(_bench_file(bench, "task"))
    summary = {
        "conversations": convs.model_dump(exclude={"turns", "characters"}) if convs else None,
        "tasks": tasks.model_dump(exclude={"scores"}),
    }
    (bench / "stats.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if convs:
        t = Table(title=f"Conversations (n={convs.n})")
        for col in ("per conversation", "ours", "paper (Table 5)"):
            t.add_column(col)
        paper = PAPER_CONVERSATION_AVERAGES
        t.add_row("turns", f"{convs.mean_turns:.1f}", f"{paper['turns']}")
        t.add_row("characters", f"{convs.mean_characters:.1f}", f"{paper['characters']}")
        t.add_row("participants", f"{convs.mean_participants:.1f}", f"{paper['participants']}")
        console.print(t)
    t = Table(title=f"Tasks (n={tasks.n})")
    t.add_column("task type")
    t.add_column("count", justify="right")
    for name, n in tasks.by_type.items():
        t.add_row(name, str(n))
    console.print(t)
    console.print(
        f"labels: {tasks.by_label}\ncomplexity: {tasks.by_complexity}\nsplits: {tasks.by_split}\n"
        f"restraint controls: {tasks.restraint_controls}   perturbations: {tasks.perturbations}",
        markup=False,
    )
    if figures is not None:
        for p in write_figures(convs, tasks, figures):
            console.print(f"wrote {p}")


@app.command()
def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Output folder."),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Base model to train instead of the tiny random one: a Hugging Face id or path "
        "(GPU), e.g. Qwen/Qwen2.5-7B-Instruct; or an API model to evaluate only, e.g. "
        "openai/gpt-4o-mini or openai-compatible/NAME with --base-url.",
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help="Server URL for openai-compatible/ models."
    ),
    n_cases: int = typer.Option(
        DemoConfig.cases, "--cases", min=10, help="Synthetic cases to build from."
    ),
    eval_limit: int = typer.Option(
        DemoConfig.eval_limit,
        "--eval-limit",
        min=0,
        help="Test tasks per evaluated run, round-robin over types (0: the whole split).",
    ),
    steps: int = typer.Option(
        DemoConfig.tiny_steps, "--steps", min=1, help="LoRA training steps of the tiny model."
    ),
    pretrain_epochs: int = typer.Option(
        DemoConfig.pretrain_epochs, "--pretrain-epochs", min=1, help="Tiny model pretraining."
    ),
    seed: int = typer.Option(0, help="Seed for cases, tasks and splits."),
    workers: int | None = typer.Option(None, help="Build processes (default: CPU count)."),
    option: list[str] = typer.Option(
        [], "--option", help="Backend option key=value for the evaluated model (repeatable)."
    ),
    fresh: bool = typer.Option(False, help="Delete the output folder and start over."),
) -> None:
    """Run the whole pipeline end to end, offline: cases -> BehaviorBench -> audit ->
    BehaviorSFT and General SFT training -> evaluation -> report (Table 2, radar plot).

    A second run resumes where the first stopped (finished steps are reused).
    Without --model the base model is a tiny random transformer built on the
    spot, so the scores only show that the pipeline runs.
    """
    from behaviorsft.cli_eval import _model_options

    config = DemoConfig(
        out=str(out),
        cases=n_cases,
        seed=seed,
        model=model,
        base_url=base_url,
        eval_limit=eval_limit or None,
        tiny_steps=steps,
        pretrain_epochs=pretrain_epochs,
        workers=workers,
        model_options=_model_options(option),
    )
    try:
        kind = config.kind
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    if kind == "api" and model and model.startswith("openai-compatible/") and not base_url:
        raise typer.BadParameter("openai-compatible/ models need --base-url", param_hint="--model")
    run_demo(config, fresh=fresh, console=console)


def _register_stage_commands() -> None:
    # Each stage keeps its commands in its own module; they import their heavy
    # dependencies lazily, so `behaviorsft --help` stays fast.
    from behaviorsft.cli_build_llm import register as register_build_llm
    from behaviorsft.cli_eval import register as register_eval
    from behaviorsft.cli_judge import register as register_judge
    from behaviorsft.cli_models import register as register_models
    from behaviorsft.cli_train import register as register_train

    register_build_llm(app)
    register_eval(app)
    register_judge(app)
    register_models(app)
    register_train(app)


_register_stage_commands()


# After the registration above: `python -m behaviorsft.cli train ...` (the form
# `accelerate launch -m` needs) must see every command.
if __name__ == "__main__":  # pragma: no cover
    app()
