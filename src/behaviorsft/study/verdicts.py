"""Study verdicts beside the bench (``study apply``) and leaving rejected tasks out.

``study apply REPORT --bench BENCH`` copies REPORT/verdicts.jsonl into
``BENCH/study_verdicts.jsonl``: the rows of every other study already there are
kept, this study's rows replace any earlier ones of the same study. The bench's
manifest.json (when it has one) lists the file with its hash and gets a note.

``eval``, ``hard`` and ``train`` take ``--exclude-rejected``: a task is left
out when any study rejected it. Their manifests record how many tasks were
left out and the SHA-256 of the verdicts file they read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from behaviorsft.bench import Bench, load_bench
from behaviorsft.records import StudyVerdict
from behaviorsft.store import (
    FileInfo,
    FolderLock,
    RecordError,
    RecordFileError,
    file_sha256,
    load_records,
    read_manifest,
    write_jsonl,
    write_manifest,
)

VERDICTS_FILE = "study_verdicts.jsonl"  # beside tasks.jsonl in a BENCH folder
REPORT_VERDICTS_FILE = "verdicts.jsonl"  # in a `study analyze` REPORT folder


class ForeignTasksError(ValueError):
    """A report's verdicts name tasks the bench does not hold."""


class NoVerdictsError(ValueError):
    """``--exclude-rejected`` was given for a bench without study verdicts."""


def read_verdicts(path: str | Path) -> list[StudyVerdict]:
    """Every verdict row of ``path``; bad lines and repeated (study, task) pairs raise."""
    p = Path(path)
    result = load_records(p, StudyVerdict, key=None)
    errors = list(result.errors)
    seen: dict[tuple[str, str], int] = {}
    for line, v in zip(result.lines, result.records, strict=True):
        k = (v.study, v.task_id)
        if k in seen:
            errors.append(
                RecordError(
                    str(p),
                    line,
                    "task_id",
                    f"study {v.study!r} has a verdict on {v.task_id!r} twice (first on line "
                    f"{seen[k]})",
                )
            )
        seen.setdefault(k, line)
    if errors:
        raise RecordFileError(errors)
    return result.records


@dataclass
class ApplyResult:
    """What ``study apply`` wrote."""

    path: Path
    studies: list[str]
    added: int  # this report's rows
    replaced: int  # earlier rows of the same studies, now replaced
    total: int  # rows in the file now
    rejected: int  # tasks rejected by any study in the file now
    sha256: str
    manifest_updated: bool


def apply_verdicts(report: str | Path, bench: str | Path) -> ApplyResult:
    """Write REPORT's verdicts beside BENCH; refuse task ids the bench does not hold."""
    src = Path(report)
    if src.is_dir():
        src = src / REPORT_VERDICTS_FILE
    if not src.exists():
        raise FileNotFoundError(
            f"{src}: no such file; give the folder `behaviorsft study analyze --out REPORT` "
            "wrote (it has verdicts.jsonl when the export has validation answers)"
        )
    rows = read_verdicts(src)
    if not rows:
        raise ValueError(f"{src}: no verdicts in the file")
    folder = Path(bench)
    ids = {t.id for t in load_bench(folder).tasks}
    foreign = sorted({r.task_id for r in rows if r.task_id not in ids})
    if foreign:
        shown = ", ".join(foreign[:10]) + (
            f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""
        )
        raise ForeignTasksError(
            f"{src}: {len(foreign)} task id(s) are not in {folder}: {shown}; was the study made "
            "on another bench? Nothing was written"
        )
    studies = sorted({r.study for r in rows})
    target = folder / VERDICTS_FILE
    with FolderLock(folder):
        old = read_verdicts(target) if target.exists() else []
        kept = [v for v in old if v.study not in studies]
        merged = [*kept, *rows]
        write_jsonl(target, merged)
        digest = file_sha256(target)
        rejected = len({v.task_id for v in merged if v.verdict == "rejected"})
        manifest = read_manifest(folder)
        if manifest is not None:
            manifest.files[VERDICTS_FILE] = FileInfo(
                record_type="study_verdict", count=len(merged), sha256=digest
            )
            manifest.notes.append(
                f"study verdicts of {', '.join(studies)} applied from {src.resolve()}: "
                f"{sum(v.verdict == 'rejected' for v in rows)} of {len(rows)} tasks rejected; "
                f"{VERDICTS_FILE} now rejects {rejected} task(s)"
            )
            write_manifest(folder, manifest)
    return ApplyResult(
        path=target,
        studies=studies,
        added=len(rows),
        replaced=len(old) - len(kept),
        total=len(merged),
        rejected=rejected,
        sha256=digest,
        manifest_updated=manifest is not None,
    )


@dataclass
class Exclusion:
    """What ``--exclude-rejected`` left out (recorded in the caller's manifest)."""

    verdicts_file: str
    verdicts_sha256: str
    rejected: int  # tasks rejected in the verdicts file
    excluded: int  # of them, tasks that were in the bench and are now left out

    def record(self) -> dict[str, Any]:
        """The manifest entry."""
        return dataclasses.asdict(self)

    def note(self) -> str:
        """One line for a manifest's notes."""
        return (
            f"--exclude-rejected: left out {self.excluded} task(s) that a clinician study "
            f"rejected ({self.rejected} in {self.verdicts_file}, sha256 {self.verdicts_sha256})"
        )


def rejected_ids(bench: str | Path) -> tuple[set[str], Path]:
    """Ids of the tasks any study rejected, and the verdicts file; raise when there is none."""
    path = Path(bench) / VERDICTS_FILE
    if not path.exists():
        raise NoVerdictsError(
            f"--exclude-rejected: {bench} has no study verdicts ({VERDICTS_FILE}); apply a "
            f"study's first with `behaviorsft study apply REPORT --bench {bench}`, or drop the "
            "flag"
        )
    return {v.task_id for v in read_verdicts(path) if v.verdict == "rejected"}, path


def exclude_rejected(bench: Bench) -> tuple[Bench, Exclusion]:
    """``bench`` without the tasks any study rejected, and what was left out."""
    ids, path = rejected_ids(bench.path)
    kept = [t for t in bench.tasks if t.id not in ids]
    return dataclasses.replace(bench, tasks=kept), Exclusion(
        verdicts_file=str(path.resolve()),
        verdicts_sha256=file_sha256(path),
        rejected=len(ids),
        excluded=len(bench.tasks) - len(kept),
    )
