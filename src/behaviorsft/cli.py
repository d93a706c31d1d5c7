"""The `behaviorsft` command line: one subcommand per pipeline stage."""

from __future__ import annotations

import itertools
import json
import traceback
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.exceptions import TyperException

from behaviorsft import __version__
from behaviorsft import taxonomy as tx
from behaviorsft.demo import DemoConfig, run_demo
from behaviorsft.exit_codes import ExitCode, exit_with
from behaviorsft.records import RECORD_TYPES
from behaviorsft.store import (
    DEFAULT_FILES,
    KIND_NAMES,
    MANIFEST_NAME,
    FileInfo,
    FolderBusyError,
    FolderLock,
    LoadResult,
    ManifestError,
    RecordError,
    RecordFileError,
    TornLineWarning,
    UserFileTailError,
    detect_record_type,
    export_hf,
    kind_problem,
    load_records,
    model_for,
    new_manifest,
    read_manifest,
    scan_jsonl,
    sniff_record_type,
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

console = Console()
err_console = Console(stderr=True)

# Problems with what the user gave (files, folders, records): a one-line message
# (or the list of bad lines) and exit 2, never a traceback.
_INPUT_ERRORS = (
    RecordFileError,
    ManifestError,
    UserFileTailError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
)
# Errors a message can state better than a traceback (shown at most this many lines).
_MAX_LISTED = 200


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    err_console.print(f"warning: {message}", markup=False, soft_wrap=True, highlight=False)


def report_input_error(exc: BaseException) -> None:
    """Print an input problem as one line, or as ``file:line: field: problem`` lines."""
    if isinstance(exc, RecordFileError):
        for e in exc.errors[:_MAX_LISTED]:
            err_console.print(str(e), markup=False, soft_wrap=True, highlight=False)
        more = len(exc.errors) - _MAX_LISTED
        if more > 0:
            err_console.print(f"... and {more} more", markup=False)
        files = sorted({e.path for e in exc.errors})
        err_console.print(
            f"error: {len(exc.errors)} bad line(s) in {', '.join(files)}; nothing was written "
            "from them (see `behaviorsft validate`)",
            markup=False,
            soft_wrap=True,
        )
        return
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        text = str(exc)
    err_console.print(f"error: {text}", markup=False, soft_wrap=True, highlight=False)


def _readable_metavars(command: Any) -> None:
    """Give every parameter of every command a plain metavar: ``PATH...``, ``TYPE``, ``INTEGER``.

    Without this the help shows typer's ``{paths}...`` and ``<list[str]>``.
    """
    bare = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "Path": "PATH", "bool": "BOOLEAN"}
    for sub in getattr(command, "commands", {}).values():
        _readable_metavars(sub)
    for param in getattr(command, "params", []):
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        if isinstance(param, TyperArgument):
            name = param.name.upper() + ("..." if param.nargs != 1 else "")
            param.metavar = name
            usage = name if param.required else f"[{name}]"
            pieces: Any = lambda ctx, usage=usage: [usage]  # noqa: E731
            no_type: Any = lambda ctx: None  # noqa: E731
            param.get_usage_pieces = pieces  # type: ignore[method-assign]
            param.display_type_rich = no_type  # type: ignore[method-assign]
        elif isinstance(param, TyperOption):
            # e.g. "<int>", "<list[str]>", "<a|b>" (the context is not used for these)
            label = param.display_type(None)  # type: ignore[arg-type]
            inner = label.strip("<>").removesuffix(" range")  # "<int range>" for min=/max=
            if inner.startswith("list["):
                long = max(param.opts, key=len).lstrip("-")
                param.metavar = long.removesuffix("s").upper().replace("-", "_")
            elif inner.isidentifier():
                param.metavar = bare.get(inner, inner.upper())  # path, file, directory
            elif "|" in inner:
                param.metavar = f"[{inner}]"


class GuardedGroup(TyperGroup):
    """The top-level command group: exit codes and messages for every command, in one place.

    Known input problems (bad records, a missing input, a corrupt manifest, a
    user file that would have to be cut) print one line, or the list of bad
    lines, and exit 2; a busy output folder exits 5; anything unexpected prints
    a short message and the traceback and exits 1. ``TornLineWarning``s are
    printed to stderr as ``warning: file:line: ...``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _readable_metavars(self)

    def invoke(self, ctx: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("always", TornLineWarning)
            warnings.showwarning = _show_warning
            try:
                return super().invoke(ctx)
            except (typer.Exit, typer.Abort, TyperException, KeyboardInterrupt):
                raise
            except FolderBusyError as exc:
                err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
                raise exit_with(ExitCode.BUSY) from None
            except _INPUT_ERRORS as exc:
                report_input_error(exc)
                raise exit_with(ExitCode.INPUT_ERROR) from None
            except Exception as exc:
                err_console.print(traceback.format_exc(), markup=False, highlight=False)
                err_console.print(
                    f"internal error: {type(exc).__name__}: {exc}\n"
                    "This is a bug in behaviorsft; please report it with the traceback above.",
                    markup=False,
                    soft_wrap=True,
                )
                raise exit_with(ExitCode.INTERNAL) from None


app = typer.Typer(
    cls=GuardedGroup,
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
)


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
    """The files to check: each file given, and every *.jsonl under each folder given.

    A missing path, or a folder without any *.jsonl file, is an input error.
    """
    files: list[Path] = []
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise typer.BadParameter(
            "; ".join(f"{p}: no such file or directory" for p in missing), param_hint="PATHS"
        )
    for p in paths:
        if p.is_dir():
            found = sorted(p.rglob("*.jsonl"))
            if not found:
                raise typer.BadParameter(f"{p}: folder has no *.jsonl files", param_hint="PATHS")
            files.extend(found)
        else:
            files.append(p)
    return files


def _check(path: Path, record_type: str | None) -> tuple[str | None, LoadResult]:
    rtype = record_type or detect_record_type(path)
    if rtype is None:
        return None, LoadResult()
    return rtype, load_records(path, model_for(rtype), warn=False)


def _untyped_problems(path: Path) -> tuple[int, list[RecordError]]:
    """JSON-level problems of a file whose record type is unknown: (good lines, errors)."""
    good, errors = 0, []
    for _, obj, errs, torn in scan_jsonl(path, None, key=None):
        if torn:
            continue
        if errs:
            errors.extend(errs)
        elif obj is not None:
            good += 1
    return good, errors


@app.command()
def validate(
    paths: list[Path] = typer.Argument(..., help="Records files, or folders of *.jsonl files."),
    record_type: str | None = typer.Option(
        None,
        "--type",
        "-t",
        help=f"Record type of every file: one of {', '.join(RECORD_TYPES)}. "
        "Default: from the folder's manifest, the records' fields, or the file name.",
    ),
    max_errors: int = typer.Option(
        200, help="Print at most this many problems per file (all are counted)."
    ),
) -> None:
    """Check records files; print `file:line: field: problem` for every bad line.

    Read-only: nothing is changed. Exit code 2 if any line is bad, a file is
    empty or of unknown type, or a path has nothing to check.
    """
    if record_type is not None and record_type not in RECORD_TYPES:
        raise typer.BadParameter(f"choose one of {', '.join(RECORD_TYPES)}", param_hint="--type")
    bad_files = 0
    for folder in {p for p in paths if p.is_dir()}:
        if (folder / MANIFEST_NAME).exists():
            try:
                read_manifest(folder)
            except ManifestError as exc:
                err_console.print(str(exc), markup=False, soft_wrap=True)
                bad_files += 1
    for f in _jsonl_files(paths):
        if f.stat().st_size == 0 or not any(scan_jsonl(f, None, key=None)):
            err_console.print(f"{f}: empty (no records)", markup=False, soft_wrap=True)
            bad_files += 1
            continue
        rtype, res = _check(f, record_type)
        if rtype is None:
            good, errors = _untyped_problems(f)
            for e in errors[:max_errors]:
                err_console.print(str(e), markup=False, soft_wrap=True)
            what = sniff_record_type(f)
            kind = f" (its lines look like {KIND_NAMES[what]})" if what else ""
            err_console.print(
                f"{f}: {good} JSON record(s), {len({e.line for e in errors})} broken line(s); "
                f"cannot tell the record type{kind}, so fields were not checked: pass --type "
                f"(one of {', '.join(RECORD_TYPES)})",
                markup=False,
                soft_wrap=True,
            )
            bad_files += 1
            continue
        looks = sniff_record_type(f)
        if record_type is not None and looks is not None and looks != record_type:
            err_console.print(
                f"{f} looks like a {KIND_NAMES[looks]} file, not a {KIND_NAMES[record_type]} "
                "file (--type)",
                markup=False,
                soft_wrap=True,
            )
        for e in res.errors[:max_errors]:
            err_console.print(str(e), markup=False, soft_wrap=True)
        if len(res.errors) > max_errors:
            err_console.print(f"{f}: ... {len(res.errors) - max_errors} more problems")
        bad_lines = len({e.line for e in res.errors})
        torn = ""
        if res.torn_tail is not None:
            torn = f" (torn last line {res.torn_tail.line} ignored)"
        status = "[green]ok[/]" if res.ok else f"[red]{bad_lines} bad line(s)[/]"
        console.print(
            f"{f}: {len(res.records)} valid {rtype} record(s), {status}{torn}", soft_wrap=True
        )
        bad_files += not res.ok
    if bad_files:
        raise exit_with(ExitCode.INPUT_ERROR)


EXPORT_FORMATS = ("parquet", "arrow")


@app.command("export-hf")
def export_hf_cmd(
    path: Path = typer.Argument(..., help="A records file."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    record_type: str | None = typer.Option(
        None, "--type", "-t", help=f"Record type: one of {', '.join(RECORD_TYPES)}."
    ),
    fmt: str = typer.Option(
        "parquet", "--format", help="parquet (one file per split) or arrow (save_to_disk)."
    ),
) -> None:
    """Export a records file as a Hugging Face dataset (tasks split into train/validation/test)."""
    if fmt not in EXPORT_FORMATS:
        raise typer.BadParameter(
            f"{fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}", param_hint="--format"
        )
    if record_type is not None and record_type not in RECORD_TYPES:
        raise typer.BadParameter(
            f"{record_type!r}: choose one of {', '.join(RECORD_TYPES)}", param_hint="--type"
        )
    if not path.exists() or path.is_dir():
        what = "no such file" if not path.exists() else "is a folder, not a records file"
        raise typer.BadParameter(f"{path}: {what}", param_hint="PATH")
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out}: exists and is not a folder", param_hint="--out")
    rtype = record_type or detect_record_type(path)
    if rtype is None:
        raise typer.BadParameter(
            f"{path}: cannot tell the record type from its manifest, fields or name; "
            f"pass --type (one of {', '.join(RECORD_TYPES)})",
            param_hint="--type",
        )
    problem = kind_problem(path, rtype)  # empty, or another kind than --type says
    if problem is not None:
        err_console.print(f"error: {problem}", markup=False, soft_wrap=True)
        raise exit_with(ExitCode.INPUT_ERROR)
    written = export_hf(path, out, record_type=rtype, fmt=fmt)
    for w in written:
        console.print(f"wrote {w}", soft_wrap=True)


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


def _owns(out: Path, manifest: Any, record_type: str) -> bool:
    """Whether ``out`` is this tool's to repair: new, empty, or listed in its folder's manifest."""
    if not out.exists() or out.stat().st_size == 0:
        return True
    info = manifest.files.get(out.name) if manifest is not None else None
    return info is not None and info.record_type == record_type


def _inside(path: Path, inputs: list[Path]) -> Path | None:
    """The input that ``path`` is, or lies inside, if any."""
    target = path.resolve()
    for p in inputs:
        src = p.resolve()
        if target == src or (src.is_dir() and src in target.parents):
            return p
    return None


def _merge_skipped(old: list[Any], new: list[Any], inputs: list[Path]) -> list[Any]:
    """This run's skipped entries replace those of the same input files (no duplicates)."""
    roots = [str(p) for p in inputs]
    kept = [s for s in old if not any(s.where.startswith(r) for r in roots)]
    seen: set[tuple[str, str]] = set()
    out = []
    for s in [*kept, *new]:
        if (s.where, s.reason) not in seen:
            seen.add((s.where, s.reason))
            out.append(s)
    return out


def _count_by_source(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, obj, errs, _ in scan_jsonl(path, None, key=None):
        if not errs and isinstance(obj, dict) and isinstance(obj.get("source"), dict):
            name = obj["source"].get("name")
            if isinstance(name, str):
                counts[name] = counts.get(name, 0) + 1
    return counts


@cases_app.command("import")
def cases_import(
    paths: list[Path] = typer.Argument(..., help="Files or folders to import."),
    source: str = typer.Option(
        ..., "--source", "-s", help="fhir, mediq, medec, aci-bench, mts-dialog or text."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Cases file to write (JSONL)."),
    licence: str | None = typer.Option(None, help="Licence of your own 'text' reports."),
    attribution: str | None = typer.Option(None, help="Attribution for 'text' reports."),
    strict: bool = typer.Option(False, help="Exit 3 if any entry could not be imported."),
) -> None:
    """Import cases (and dialogues, for aci-bench and mts-dialog) into JSONL.

    Bad entries are reported as `file:line: field: problem`, listed in the
    manifest and skipped; every good entry is kept. Re-running appends only
    cases whose id is not yet in the output (resume after a crash). Exit 2
    when an input is missing or nothing could be imported.
    """
    from behaviorsft.sources.base import import_paths

    missing = [p for p in paths if not p.exists()]
    if missing:
        raise typer.BadParameter(
            "; ".join(f"{p}: no such file or directory" for p in missing), param_hint="PATHS"
        )
    clash = _inside(out, paths)
    if clash is not None:
        raise typer.BadParameter(
            f"{out} is (inside) the input {clash}; an input is never written to: "
            "choose another --out",
            param_hint="--out",
        )
    if out.is_dir():
        raise typer.BadParameter(f"{out}: is a folder; give a file, e.g. {out}/cases.jsonl")
    conv_path = out.with_name(DEFAULT_FILES["conversation"])
    # Read (and so check) the manifest before any work, and a kind of --out that is wrong.
    manifest = read_manifest(out.parent) or new_manifest("cases-import")
    for target, kind in ((out, "case"), (conv_path, "conversation")):
        if target.exists() and target.stat().st_size > 0:
            wrong = kind_problem(target, kind)
            if wrong is not None and " is a " in wrong:
                raise typer.BadParameter(f"{wrong}; choose another --out", param_hint="--out")
    try:
        items = import_paths(source, paths, licence=licence, attribution=attribution)
        first = next(items, None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    lock = FolderLock(out.parent).acquire()  # a second writer of this folder stops here
    try:
        _import_into(
            out, conv_path, manifest, source, first, items, paths, licence, attribution, strict
        )
    finally:
        lock.release()


def _nothing_imported(paths: list[Path], source: str, seen: int) -> None:
    hint = ""
    if len(paths) == 1 and paths[0].is_file():
        looks = sniff_record_type(paths[0])
        if looks is not None and looks != "report" and source == "text":
            hint = f"; {paths[0]} is a {KIND_NAMES[looks]} file, not free-text reports" + (
                " (it needs no import: use it as it is)" if looks == "case" else ""
            )
    what = "no entries found" if seen == 0 else "no entry could be imported"
    err_console.print(
        f"error: {what} in {', '.join(map(str, paths))} as {source}{hint}; nothing was written",
        markup=False,
        soft_wrap=True,
    )


def _import_into(
    out: Path,
    conv_path: Path,
    manifest: Any,
    source: str,
    first: Any,
    items: Any,
    paths: list[Path],
    licence: str | None,
    attribution: str | None,
    strict: bool,
) -> None:
    from behaviorsft.sources.base import SOURCE_LICENCES
    from behaviorsft.store import JsonlWriter, Skipped, SourceInfo

    n_cases = n_convs = 0
    skipped: list[Skipped] = []
    had_out, had_manifest = out.exists(), (out.parent / MANIFEST_NAME).exists()
    cw = JsonlWriter(out, owned=_owns(out, manifest, "case"))
    try:
        vw = JsonlWriter(conv_path, key="case_id", owned=_owns(conv_path, manifest, "conversation"))
    except BaseException:
        cw.close()
        raise
    with cw, vw:
        # Registered before the first write: a killed run's torn line is then ours to cut.
        manifest.files.setdefault(out.name, FileInfo(record_type="case", count=len(cw)))
        write_manifest(out.parent, manifest)
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
    if total_cases == 0 and total_convs == 0:  # nothing imported: leave nothing behind
        _nothing_imported(paths, source, n_cases + n_convs + len(skipped))
        if not had_out:
            out.unlink(missing_ok=True)
        if not had_manifest:
            (out.parent / MANIFEST_NAME).unlink(missing_ok=True)
        raise exit_with(ExitCode.INPUT_ERROR)
    lic = SOURCE_LICENCES[source]
    by_source = _count_by_source(out)
    previous = {s.name: s for s in manifest.sources}
    manifest.sources = [s for s in manifest.sources if s.name != source] + [
        SourceInfo(
            name=source,
            licence=licence or (previous[source].licence if source in previous else lic.licence),
            attribution=attribution
            or (previous[source].attribution if source in previous else lic.attribution),
            count=by_source.get(source, 0),
        )
    ]
    manifest.files[out.name] = FileInfo(record_type="case", count=total_cases)
    if total_convs:
        manifest.files[conv_path.name] = FileInfo(record_type="conversation", count=total_convs)
    manifest.skipped = _merge_skipped(manifest.skipped, skipped, paths)
    write_manifest(out.parent, manifest)
    console.print(
        f"{source}: {n_cases} new case(s), {n_convs} new conversation(s), "
        f"{len(skipped)} skipped -> {out} ({total_cases} cases in all)",
        soft_wrap=True,
    )
    if strict and skipped:
        raise exit_with(ExitCode.PARTIAL)


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

    if out.is_dir():
        raise typer.BadParameter(f"{out}: is a folder; give a file, e.g. {out}/cases.jsonl")
    existing = read_manifest(out.parent)  # checked before any work, even with --fresh
    owned = _owns(out, existing, "case")
    if out.exists() and out.stat().st_size > 0:
        wrong = kind_problem(out, "case")
        if wrong is not None and " is a " in wrong:
            raise typer.BadParameter(f"{wrong}; choose another --out", param_hint="--out")
        if fresh and not owned:
            raise typer.BadParameter(
                f"{out} was not written by behaviorsft (not in {out.parent / MANIFEST_NAME}); "
                "--fresh does not delete it: choose another --out",
                param_hint="--fresh",
            )
    kb = load_kb()
    manifest = (None if fresh else existing) or new_manifest("cases-synth")
    with (
        FolderLock(out.parent),
        JsonlWriter(out, fresh=fresh, owned=owned) as w,
        _progress() as prog,
    ):
        # Registered before the first write: a killed run's torn line is then ours to cut.
        manifest.files.setdefault(out.name, FileInfo(record_type="case", count=len(w)))
        write_manifest(out.parent, manifest)
        bar = prog.add_task("synthesizing cases", total=n)
        for i in range(n):
            cid = f"synthetic:{seed}-{i:06d}"
            if cid not in w:
                w.write(synthesize_case(i, seed=seed, kb=kb))
            prog.advance(bar)
        total, new = len(w), w.written
    manifest.seeds = sorted({*manifest.seeds, seed})
    if manifest.stage == "cases-synth":
        manifest.config.update({"n": n, "seed": seed})
    else:
        # Cases kept in another stage's folder (a bench): its options (the build's own
        # seed among them) stay as they are, or its next resume would look changed.
        manifest.config["cases_synth"] = {"n": n, "seed": seed}
    manifest.sources = [s for s in manifest.sources if s.name != "synthetic"] + [
        SourceInfo(
            name="synthetic",
            licence=LICENCE,
            attribution=ATTRIBUTION,
            count=_count_by_source(out).get("synthetic", 0),
        )
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
    fresh: bool = typer.Option(
        False, help="Start over: remove what an earlier build, audit and stats wrote here."
    ),
    strict: bool = typer.Option(
        False,
        help="Any bad case line is an input error (exit 2, nothing built); so is a case "
        "that fails to build (the others are kept).",
    ),
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
    cases without duplicating any task; a re-run with other --seed, --types or
    --proportions is refused (exit 4; --fresh starts over). Bad case lines and
    cases that fail are reported as file:line: field: problem, listed under
    `skipped` in the manifest, and the rest is built (exit 3). One build per
    folder at a time (a second one exits 5). The cases file may be the
    folder's own cases.jsonl.
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
    from behaviorsft.build.pipeline import BuildInputError, BuildRefused, build_bench
    from behaviorsft.build.splits import PAPER_PROPORTIONS, split_of
    from behaviorsft.exit_codes import ExitCode, exit_with
    from behaviorsft.store import FolderBusyError

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
            split_of("check", proportions=props)
        except ValueError:
            raise typer.BadParameter(
                "expected three non-negative numbers 'train,val,test' (not all 0)",
                param_hint="--proportions",
            ) from None
    failure: tuple[ExitCode, str, list[Any]] | None = None
    with _progress() as prog:
        bar = None

        def tick(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:  # only once the input is checked and the folder locked
                bar = prog.add_task("building tasks", total=total)
            prog.update(bar, completed=done, total=total)

        try:
            report = build_bench(
                cases,
                out,
                seed=seed,
                types=types or None,
                proportions=props,
                workers=workers,
                fresh=fresh,
                strict=strict,
                progress=tick,
            )
        except BuildInputError as exc:
            failure = (ExitCode.INPUT_ERROR, str(exc), exc.errors)
        except BuildRefused as exc:
            failure = (ExitCode.REFUSED, str(exc), [])
        except FolderBusyError as exc:
            failure = (ExitCode.BUSY, str(exc), [])
    if failure is not None:
        code, message, errors = failure
        _print_errors(errors)
        err_console.print(f"error: {message}", markup=False, soft_wrap=True)
        raise exit_with(code)
    _print_errors(report.skipped, where=out / MANIFEST_NAME)
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
        f"splits {report.splits}",
        soft_wrap=True,
    )
    for note in report.notes:
        console.print(f"note: {note}", markup=False, soft_wrap=True)
    if report.skipped:
        err_console.print(
            f"{len(report.skipped)} case(s) skipped ({len(report.errors)} bad line(s), "
            f"{len(report.failed)} failed to build): see the messages above and `skipped` in "
            f"{out / MANIFEST_NAME}; every other case was built",
            markup=False,
            soft_wrap=True,
        )
        if strict:
            err_console.print("--strict: exiting with an input error", markup=False)
            raise exit_with(ExitCode.INPUT_ERROR)
        raise exit_with(ExitCode.PARTIAL)


_MAX_PRINTED = 50


def _print_errors(errors: list[Any], where: Path | None = None) -> None:
    """Print problems as file:line: field: problem, at most _MAX_PRINTED of them."""
    for e in errors[:_MAX_PRINTED]:
        err_console.print(str(e), markup=False, soft_wrap=True)
    if len(errors) > _MAX_PRINTED:
        rest = f" (all listed in {where})" if where else ""
        err_console.print(f"... and {len(errors) - _MAX_PRINTED} more{rest}", markup=False)


def _record_problems(path: Path, model: Any, key: str) -> list[RecordError]:
    """Every bad line of ``path`` (streamed: records are validated, not kept)."""
    return [e for _, _, errs, torn in scan_jsonl(path, model, key=key) if not torn for e in errs]


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
    ("excerpt_context", "ctx"),
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
        "(held out); ctx: classifier on the excerpt's words around each option; ! above target"
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


def _lint_findings(
    bench: Path, half: tuple[int, int] | None = None
) -> tuple[list[dict[str, Any]] | None, str]:
    """Run the clinical linter over the bench: (findings, or None when it cannot, a note);
    ``half``: one of two halves (``lint_records``)."""
    import dataclasses

    from behaviorsft.build.lint import lint_bench

    try:
        findings = lint_bench(bench, half=half)
    except FileNotFoundError as exc:  # a bench built without cases or conversations
        return None, f"lint: skipped ({exc})"
    found = [dataclasses.asdict(f) for f in findings]
    return found, f"lint: {len(found)} finding(s)"


def _lint_beside(bench: Path) -> Any:
    """Start the linter (``_lint_findings``) in two forked processes, each on half the
    conversations, so that it runs beside the audit's baselines (on two cores the audit
    then takes little more than the linter's half, not the sum of all three); returns the
    function that waits for the findings. In this process, later, where there is no fork
    or only one core."""
    import multiprocessing as mp
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if "fork" not in mp.get_all_start_methods() or (cores or 1) < 2:
        return lambda: _lint_findings(bench)
    ctx = mp.get_context("fork")
    try:  # loaded once, here, for both processes
        from behaviorsft.sources.kb import load_kb

        load_kb()
    except Exception:  # each process reports it (as the linter does)
        pass
    conv_path = bench / "conversations.jsonl"
    at = 0  # any split gives the same findings (the second half also has the tasks)
    if conv_path.is_file():
        with conv_path.open("rb") as fh:
            at = sum(1 for _ in fh) * 11 // 20
    started = []
    for second in (0, 1):
        receive, send = ctx.Pipe(duplex=False)

        def child(send: Any = send, half: tuple[int, int] = (at, second)) -> None:
            import gc

            from behaviorsft.build.pipeline import GC_THRESHOLDS

            gc.freeze()  # (what it holds lives to its end: collected less often, as a build)
            gc.set_threshold(*GC_THRESHOLDS)
            try:
                send.send(("ok", _lint_findings(bench, half)))
            except Exception as exc:  # raised again in the parent
                try:
                    send.send(("error", exc))
                except Exception:  # an exception that does not pickle
                    send.send(("error", RuntimeError(f"lint: {exc!r}")))

        proc = ctx.Process(target=child, daemon=True)  # (ended at exit if the audit fails)
        proc.start()
        send.close()
        started.append((proc, receive))

    def result() -> tuple[list[dict[str, Any]] | None, str]:
        found: list[dict[str, Any]] = []
        for proc, receive in started:
            try:
                kind, value = receive.recv()
            except EOFError:
                proc.join()
                msg = f"lint: the linting process ended with code {proc.exitcode}"
                raise RuntimeError(msg) from None
            proc.join()
            if kind == "error":
                raise value
            if value[0] is None:  # nothing to lint
                return value
            found += value[0]
        return found, f"lint: {len(found)} finding(s)"

    return result


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
    from behaviorsft.build.pipeline import lean_gc
    from behaviorsft.exit_codes import ExitCode, exit_with
    from behaviorsft.store import RecordFileError

    lint_result = _lint_beside(bench) if lint else None
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

            with lean_gc():  # (the tasks it holds live to its end, as in a build)
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
    if lint_result is not None:
        findings, lint_note = lint_result()
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


@app.command("lint")
def lint_cmd(
    bench: Path = typer.Argument(
        ...,
        exists=True,
        file_okay=False,
        help="Benchmark folder (cases.jsonl, conversations.jsonl).",
    ),
    cases: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Cases file when BENCH has no cases.jsonl."
    ),
    strict: bool = typer.Option(False, help="Exit 3 (PARTIAL) when there is any finding."),
    show: int = typer.Option(50, min=0, help="Findings listed in the table (all go to --json)."),
    json_out: Path | None = typer.Option(
        None, "--json", dir_okay=False, help="Write every finding here as JSON lines."
    ),
) -> None:
    """Clinical linter: incoherent records in BENCH's cases and conversations.

    Lists each finding as file:line (#turn), record, rule, severity and message, then the
    count per rule. Exit codes: 0 = done (no finding, or findings without --strict);
    2 = nothing to lint; 3 = findings with --strict. Rules: docs/building.md.
    """
    from behaviorsft.build.lint import RULES, counts_by_rule, lint_bench
    from behaviorsft.exit_codes import ExitCode, exit_with

    if cases is None and not any(
        (bench / n).is_file() for n in ("cases.jsonl", "conversations.jsonl")
    ):
        console.print(f"{bench}: no cases.jsonl or conversations.jsonl to lint", markup=False)
        raise exit_with(ExitCode.INPUT_ERROR)
    from behaviorsft.build.pipeline import lean_gc

    with console.status(f"linting {bench}"), lean_gc():
        findings = lint_bench(bench, cases=cases)
    if json_out is not None:
        with json_out.open("w", encoding="utf-8") as fh:
            for f in findings:
                fh.write(json.dumps(f.__dict__, ensure_ascii=False) + "\n")
    if findings and show:
        t = Table(title=f"Findings (first {min(show, len(findings))} of {len(findings)})")
        for col in ("where", "record", "rule", "severity", "message"):
            t.add_column(col, overflow="fold")
        for f in findings[:show]:
            t.add_row(f.location, f.record_id, f.rule, f.severity, f.message)
        console.print(t, markup=False)
    counts = counts_by_rule(findings)
    t = Table(title="Findings per rule")
    for col in ("rule", "severity", "findings", "checks"):
        t.add_column(col)
    for rule, n in counts.items():
        t.add_row(rule, RULES[rule][0], str(n), RULES[rule][1])
    console.print(t, markup=False)
    console.print(f"lint: {len(findings)} finding(s) in {bench}", markup=False)
    if strict and findings:
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
    from behaviorsft.records import Conversation, Task

    conv_path = bench / DEFAULT_FILES["conversation"]
    task_path = _bench_file(bench, "task")
    for path, kind in ((task_path, "task"), (conv_path, "conversation")):
        problem = kind_problem(path, kind) if path.exists() else None
        if problem is not None:  # empty, or another kind of file under this name
            err_console.print(f"error: {problem}", markup=False, soft_wrap=True)
            raise exit_with(ExitCode.INPUT_ERROR)
    # Every bad line of both files is listed (and nothing written) before any counting.
    errors = _record_problems(task_path, Task, "id")
    if conv_path.exists():
        errors += _record_problems(conv_path, Conversation, "case_id")
    if errors:
        raise RecordFileError(errors)
    convs = conversation_stats(conv_path) if conv_path.exists() else None
    tasks = task_stats(task_path)
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
    base: str = typer.Option(
        "smollm2",
        "--base",
        help="Base model: smollm2 (SmolLM2-135M-Instruct, prepared offline) or tiny (a random "
        "2-layer model, seconds to train; its scores mean nothing).",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Another base model to train instead: a Hugging Face id or path (GPU), e.g. "
        "Qwen/Qwen2.5-7B-Instruct; or an API model to evaluate only, e.g. "
        "openai/gpt-4o-mini or openai-compatible/NAME with --base-url.",
    ),
    base_url: str | None = typer.Option(
        None, "--base-url", help="Server URL for openai-compatible/ models."
    ),
    n_cases: int = typer.Option(
        DemoConfig.cases, "--cases", min=10, help="Synthetic cases to build from."
    ),
    eval_limit: int | None = typer.Option(
        None,
        "--eval-limit",
        min=0,
        help="Test tasks per evaluated run, round-robin over types (0: the whole split; "
        "default 26 with smollm2, 260 otherwise).",
    ),
    steps: int | None = typer.Option(
        None,
        "--steps",
        min=1,
        help=f"LoRA training steps (default {DemoConfig.smollm2_steps} with smollm2, "
        f"{DemoConfig.tiny_steps} with tiny).",
    ),
    max_length: int = typer.Option(
        DemoConfig.max_length,
        "--max-length",
        min=64,
        help="smollm2: training context in tokens; longer train tasks are left out.",
    ),
    pretrain_epochs: int = typer.Option(
        DemoConfig.pretrain_epochs, "--pretrain-epochs", min=1, help="Tiny model pretraining."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="torch threads (default: one per CPU core)."
    ),
    seed: int = typer.Option(0, help="Seed for cases, tasks and splits."),
    workers: int | None = typer.Option(None, help="Build processes (default: CPU count)."),
    option: list[str] = typer.Option(
        [], "--option", help="Backend option key=value for the evaluated model (repeatable)."
    ),
    fresh: bool = typer.Option(False, help="Delete the output folder and start over."),
) -> None:
    """Run the whole pipeline end to end, offline: cases -> BehaviorBench -> audit ->
    base model -> BehaviorSFT and General SFT training -> evaluation (baselines, base model
    zero-shot and explicit, both adapters, token forcing) -> report (Table 2, radar plot,
    first-token classification, token forcing, the proactivity dial).

    A second run resumes where the first stopped (finished steps are reused).
    """
    from behaviorsft.cli_eval import _model_options
    from behaviorsft.demo import DEFAULT_EVAL_LIMIT

    config = DemoConfig(
        out=str(out),
        cases=n_cases,
        seed=seed,
        base=base,
        model=model,
        base_url=base_url,
        max_length=max_length,
        pretrain_epochs=pretrain_epochs,
        workers=workers,
        threads=threads,
        model_options=_model_options(option),
    )
    try:
        kind = config.kind
    except ValueError as exc:
        hint = "--base" if model is None else "--model"
        raise typer.BadParameter(str(exc), param_hint=hint) from None
    limit = DEFAULT_EVAL_LIMIT[kind] if eval_limit is None else eval_limit
    config.eval_limit = limit or None
    if steps is not None:
        config.tiny_steps = config.smollm2_steps = steps
    if kind == "api" and model and model.startswith("openai-compatible/") and not base_url:
        raise typer.BadParameter("openai-compatible/ models need --base-url", param_hint="--model")
    _check_demo_model(config)
    from behaviorsft.models.openai_compat import EndpointUnreachableError
    from behaviorsft.models.smollm2 import PrepareError
    from behaviorsft.train.trainer import TrainError

    try:
        run_demo(config, fresh=fresh, console=console)
    except (
        ValueError,
        FileNotFoundError,
        TrainError,
        EndpointUnreachableError,
        PrepareError,
    ) as exc:
        # A step found the input wrong (a model that does not load, a server that is
        # not there): one line; the steps finished before are kept for the re-run.
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise exit_with(ExitCode.INPUT_ERROR) from None


def _check_demo_model(config: Any) -> None:
    """What can be checked of the demo's model before any step: a path, backend options."""
    from behaviorsft.models import check_model_folder, load_model

    if config.kind == "hf":
        try:
            check_model_folder(config.base_model)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--model") from None
    elif config.kind == "api":
        try:  # builds the HTTP client only (no request): unknown options fail here
            load_model(config.model, base_url=config.base_url, **config.model_options).close()
        except (ValueError, TypeError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--model/--option") from None


def _register_stage_commands() -> None:
    # Each stage keeps its commands in its own module; they import their heavy
    # dependencies lazily, so `behaviorsft --help` stays fast.
    from behaviorsft.cli_build_llm import register as register_build_llm
    from behaviorsft.cli_eval import register as register_eval
    from behaviorsft.cli_judge import register as register_judge
    from behaviorsft.cli_models import register as register_models
    from behaviorsft.cli_serve import register as register_serve
    from behaviorsft.cli_study import register as register_study
    from behaviorsft.cli_train import register as register_train

    register_build_llm(app)
    register_eval(app)
    register_judge(app)
    register_models(app)
    register_serve(app)
    register_study(app)
    register_train(app)


_register_stage_commands()


# After the registration above: `python -m behaviorsft.cli train ...` (the form
# `accelerate launch -m` needs) must see every command.
if __name__ == "__main__":  # pragma: no cover
    app()
