"""JSONL records on disk: validated reads, crash-safe appends, resume, manifests, HF export.

Every arrow of the pipeline is a file written here. The rules:

* One record per line, UTF-8, ``\\n``-terminated, written with a single
  ``os.write`` on an ``O_APPEND`` descriptor, so a killed process leaves at
  worst one torn last line and never an interleaved one.
* A torn last line (no trailing newline, not parseable, possibly cut inside
  a multi-byte character) is dropped with a ``TornLineWarning`` naming file,
  line and bytes when read, and cut off (with the same warning) when a file
  this tool wrote is reopened for appending; every complete line before it is
  kept. A file the tool did not write (``owned=False``) is never cut: its
  unfinished last line is an error for the user to fix.
* Any other bad line is reported as ``file:line: field: problem``.
* A folder of outputs carries a ``manifest.json`` (counts, versions, seeds,
  sources, skipped records and why), rewritten atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from behaviorsft import __version__
from behaviorsft.records import RECORD_TYPES, SCHEMA_VERSION, Record

R = TypeVar("R", bound=BaseModel)

MANIFEST_NAME = "manifest.json"


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordError:
    """One problem with one line of a records file."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"


class RecordFileError(ValueError):
    """A records file has bad lines; ``errors`` lists every one."""

    def __init__(self, errors: list[RecordError]) -> None:
        self.errors = errors
        head = "\n".join(str(e) for e in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} problem(s):\n{head}{more}")


class TornLineWarning(UserWarning):
    """A torn last line was dropped (read) or cut off (reopened for append)."""


class UserFileTailError(ValueError):
    """A file this tool did not write ends in an unfinished line; it is not cut."""


class ManifestError(ValueError):
    """A ``manifest.json`` cannot be read or is not a valid manifest."""


@dataclass(frozen=True)
class TornTail:
    """A last line without its newline that is not a complete record."""

    path: str
    line: int
    size: int  # bytes

    def describe(self, action: str) -> str:
        return (
            f"{self.path}:{self.line}: torn last line ({self.size} bytes, no newline, "
            f"incomplete JSON) {action}"
        )


def warn_torn(tail: TornTail, action: str = "dropped") -> None:
    """Tell the user (stderr, through ``warnings``) that a torn line was dropped or cut."""
    warnings.warn(tail.describe(action), TornLineWarning, stacklevel=3)


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<record>"


# Cross-field checks in records.py start their message with the field they are
# about ("answer: 'E' is not one of the options"); lift it into the field slot.
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.+)$", re.DOTALL)


def validation_errors(path: str, line: int, exc: ValidationError) -> list[RecordError]:
    """Turn a pydantic ValidationError into one RecordError per problem."""
    out = []
    for err in exc.errors(include_url=False):
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        where = _field_path(tuple(err["loc"]))
        m = _FIELD_PREFIX.match(msg)
        if m:
            inner = m.group(1)
            where = inner if where == "<record>" else f"{where}.{inner}"
            msg = m.group(2)
        out.append(RecordError(path, line, where, msg))
    return out


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


@dataclass
class LoadResult(Generic[R]):
    """Everything read from one file: good records, problems, and a torn tail if any."""

    records: list[R] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # line number of each record
    torn_tail: RecordError | None = None

    @property
    def ok(self) -> bool:
        """True when every complete line was valid (a torn tail is only a warning)."""
        return not self.errors


def _raw_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """Yield (line number, raw bytes without newline, has_newline)."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            has_nl = raw.endswith(b"\n")
            yield n, raw.rstrip(b"\r\n"), has_nl


def _torn_message(raw: bytes) -> str:
    return f"torn last line ({len(raw)} bytes, no newline, incomplete JSON): dropped"


def scan_jsonl(
    path: str | os.PathLike[str],
    model: type[R] | None = None,
    *,
    key: str | None = "id",
) -> Iterator[tuple[int, R | dict[str, Any] | None, list[RecordError], bool]]:
    """Stream a JSONL file line by line, validating each line independently.

    Yields ``(line, record_or_None, errors, torn)`` for every non-blank line;
    ``torn`` marks a last line that was cut off by a crash. With ``model`` the
    record is an instance of it, else the parsed dict. Duplicate ``key`` values
    are reported on the later line.
    """
    p = Path(path)
    name = str(path)
    seen: dict[Any, int] = {}
    if p.stat().st_size == 0:
        return
    it = _raw_lines(p)
    prev = next(it, None)
    while prev is not None:
        nxt = next(it, None)
        n, raw, has_nl = prev
        prev = nxt
        if not raw.strip():
            continue
        is_last = nxt is None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if is_last and not has_nl:  # cut inside a multi-byte character
                yield n, None, [RecordError(name, n, "<line>", _torn_message(raw))], True
                continue
            yield (
                n,
                None,
                [RecordError(name, n, "<line>", f"not valid UTF-8 ({exc.reason})")],
                False,
            )
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            torn = is_last and not has_nl
            # json's own messages may end in "at" ("Unterminated string starting at").
            where = "column" if exc.msg.endswith(" at") else "at column"
            msg = _torn_message(raw) if torn else f"malformed JSON: {exc.msg} {where} {exc.colno}"
            yield n, None, [RecordError(name, n, "<line>", msg)], torn
            continue
        if not isinstance(obj, dict):
            kind = type(obj).__name__
            yield (
                n,
                None,
                [RecordError(name, n, "<record>", f"expected a JSON object, got {kind}")],
                False,
            )
            continue
        errors: list[RecordError] = []
        if key is not None and key in obj:
            k = obj[key]
            if isinstance(k, (str, int)) and k in seen:
                errors.append(
                    RecordError(name, n, key, f"duplicate {key} {k!r} (first on line {seen[k]})")
                )
            elif isinstance(k, (str, int)):
                seen[k] = n
        record: Any = obj
        if model is not None:
            try:
                record = model.model_validate(obj)
            except ValidationError as exc:
                errors.extend(validation_errors(name, n, exc))
                record = None
        yield n, (None if errors else record), errors, False


def _torn_tail(path: str | os.PathLike[str], line: int) -> TornTail:
    p = Path(path)
    with open(p, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = _last_line_start(fh, size)
    return TornTail(str(path), line, size - start)


def load_records(
    path: str | os.PathLike[str], model: type[R], *, key: str | None = "id", warn: bool = True
) -> LoadResult[R]:
    """Read every valid record of ``path`` and collect every problem; never raises on content.

    A torn last line is dropped with a ``TornLineWarning`` (unless ``warn`` is
    False: the caller reports ``torn_tail`` itself).
    """
    result: LoadResult[R] = LoadResult()
    for n, rec, errors, torn in scan_jsonl(path, model, key=key):
        if torn:
            result.torn_tail = errors[0]
            if warn:
                warn_torn(_torn_tail(path, n))
        elif errors:
            result.errors.extend(errors)
        else:
            result.records.append(rec)  # type: ignore[arg-type]
            result.lines.append(n)
    return result


def read_jsonl(path: str | os.PathLike[str], model: type[R], *, key: str | None = "id") -> list[R]:
    """Read all records; raise RecordFileError listing every bad line if any.

    A torn last line is not an error here: it is what a crash leaves, and
    the writer cuts it off on the next append.
    """
    result = load_records(path, model, key=key)
    if result.errors:
        raise RecordFileError(result.errors)
    return result.records


def iter_records(path: str | os.PathLike[str], model: type[R]) -> Iterator[R]:
    """Stream valid records without holding the file in memory; raise on the first bad line."""
    for n, rec, errors, torn in scan_jsonl(path, model, key=None):
        if torn:
            warn_torn(_torn_tail(path, n))
            continue
        if errors:
            raise RecordFileError(errors)
        if rec is not None:
            yield rec  # type: ignore[misc]


def load_records_deduped(
    path: str | os.PathLike[str],
    model: type[R],
    *,
    key: str = "id",
    ignore: Iterable[str] = (),
) -> tuple[LoadResult[R], list[tuple[int, int]]]:
    """:func:`load_records`, dropping exact duplicates instead of reporting them.

    A line whose ``key`` repeats an earlier line's and whose content is the same
    (fields in ``ignore``, such as timestamps, are not compared) is left out and
    listed as ``(line, first_line)``: two writers that raced on one file leave
    such pairs. A repeat with other content stays an error naming both lines and
    the fields that differ, since only a person can tell which one is right.
    """
    skip = set(ignore)
    name = str(path)
    result: LoadResult[R] = LoadResult()
    dropped: list[tuple[int, int]] = []
    first: dict[Any, tuple[int, dict[str, Any]]] = {}
    for n, rec, errors, torn in scan_jsonl(path, model, key=None):
        if torn:
            result.torn_tail = errors[0]
            continue
        if errors or rec is None:
            result.errors.extend(errors)
            continue
        data = rec.model_dump(mode="json") if isinstance(rec, BaseModel) else dict(rec)
        k = data.get(key)
        hashable = isinstance(k, (str, int))
        if hashable and k in first:
            n0, d0 = first[k]
            fields_ = set(data) | set(d0)
            diff = sorted(f for f in fields_ if f not in skip and data.get(f) != d0.get(f))
            if diff:
                result.errors.append(
                    RecordError(
                        name,
                        n,
                        key,
                        f"duplicate {key} {k!r} (first on line {n0}) with different content "
                        f"({', '.join(diff)}); keep one of the two lines and delete the other",
                    )
                )
            else:
                dropped.append((n, n0))
            continue
        if hashable:
            first[k] = (n, data)
        result.records.append(rec)  # type: ignore[arg-type]
        result.lines.append(n)
    return result, dropped


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


LOCK_NAME = ".behaviorsft.lock"


class FolderBusyError(RuntimeError):
    """Another process holds the write lock of an output folder."""

    def __init__(self, folder: Path, holder: str) -> None:
        self.folder = folder
        self.holder = holder
        super().__init__(
            f"{folder} is being written by another process ({holder}); wait for it to "
            "finish, or write to another folder"
        )


class FolderLock:
    """An exclusive, non-blocking write lock on an output folder (``fcntl.flock``).

    >>> with FolderLock(out):            # doctest: +SKIP
    ...     build_into(out)

    A second writer fails at once with ``FolderBusyError`` instead of interleaving
    its records with the first one's. The lock file names the holder (pid, host,
    command) for the message; the kernel drops the lock when the holder exits,
    even after ``kill -9``, so a stale lock file never blocks anyone.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        import fcntl

        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise FolderBusyError(self.folder, holder) from None
        info = f"pid {os.getpid()} on {platform.node()}: {' '.join(sys.argv)[:300]}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode("utf-8"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def undo_first_call(self, files: Iterable[str], had: set[str], *, existed: bool) -> None:
        """After a call that did nothing, remove what it created: each of ``files`` (names
        in the folder) not in ``had`` (those there before it), and, when the folder did
        not exist before (``existed``), the lock file and the folder itself if empty. A
        corrected re-run then starts afresh instead of being refused as another setup."""
        for name in files:
            if name not in had:
                (self.folder / name).unlink(missing_ok=True)
        if not existed:
            (self.folder / LOCK_NAME).unlink(missing_ok=True)
            self.release()
            with contextlib.suppress(OSError):
                self.folder.rmdir()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _last_line_start(fh: Any, size: int) -> int:
    """Offset of the first byte after the last newline before ``size`` (0 if none)."""
    pos, block = size, 65536
    while pos > 0:
        start = max(0, pos - block)
        fh.seek(start)
        chunk = fh.read(pos - start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def check_tail(path: str | os.PathLike[str]) -> TornTail | None:
    """The torn last line of ``path`` (no newline, not complete JSON), or None; reads only."""
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return None
    with open(p, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return None
        tail_start = _last_line_start(fh, size)
        fh.seek(tail_start)
        tail = fh.read()
        fh.seek(0)
        line, left = 1, tail_start
        while left > 0:  # the tail's line number, counted in blocks
            chunk = fh.read(min(left, 1 << 20))
            line += chunk.count(b"\n")
            left -= len(chunk)
    try:
        json.loads(tail.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return TornTail(str(path), line, size - tail_start)
    return None


def repair_tail(path: str | os.PathLike[str], *, owned: bool = True) -> int:
    """Make ``path`` end at a complete line; return the number of bytes cut off.

    A last line without a newline is kept (a newline is added) if it parses as
    JSON. Otherwise it is the torn write of a killed process: cut off, with a
    ``TornLineWarning`` naming file, line and bytes, when this tool wrote the
    file (``owned``); a file it did not write is never cut: ``UserFileTailError``.
    """
    p = Path(path)
    tail = check_tail(p)
    if tail is not None:
        if not owned:
            raise UserFileTailError(
                f"{tail.path}:{tail.line}: the last line ({tail.size} bytes) has no newline and "
                "is not complete JSON; this file was not written by behaviorsft, so it is not "
                "cut: finish or delete that line, or write to another file"
            )
        size = p.stat().st_size
        with open(p, "rb+") as fh:
            fh.truncate(size - tail.size)
        warn_torn(tail, "cut off (left by an interrupted write)")
        return tail.size
    if p.exists() and p.stat().st_size > 0:
        with open(p, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                fh.seek(0, os.SEEK_END)
                fh.write(b"\n")
    return 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class JsonlWriter:
    """Append records to a JSONL file, crash-safely, skipping ids already written.

    >>> with JsonlWriter("tasks.jsonl") as w:          # doctest: +SKIP
    ...     for task in build():
    ...         if task.id not in w:
    ...             w.write(task)

    Opening repairs a torn last line and loads the ids already on disk, so a
    re-run after a crash resumes where it stopped; ``dropped`` says what was cut
    (a ``TornLineWarning`` says it too). ``owned=False`` is for a file this tool
    did not write (a user's file given as output): its unfinished last line is
    never cut (``UserFileTailError``). One writer per file at a time.
    ``durable=True`` also fsyncs after every record (survives power loss, not
    only a killed process; slower).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: str = "id",
        durable: bool = False,
        fresh: bool = False,
        owned: bool = True,
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.durable = durable
        if fresh and self.path.exists():
            self.path.unlink()
        self.dropped = check_tail(self.path)
        repair_tail(self.path, owned=owned)  # raises before anything is created or changed
        self.dropped_bytes = self.dropped.size if self.dropped is not None else 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ids: set[Any] = set()
        if self.path.exists():
            for _, obj, _, _ in scan_jsonl(self.path, None, key=None):
                if isinstance(obj, dict) and key in obj:
                    self._ids.add(obj[key])
        self.existing = len(self._ids)
        self.written = 0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def write(self, record: BaseModel | dict[str, Any]) -> bool:
        """Append one record; return False (and write nothing) if its id is already there."""
        if isinstance(record, BaseModel):
            rid = getattr(record, self.key, None)
            line = record.model_dump_json()
        else:
            rid = record.get(self.key)
            line = json.dumps(record, ensure_ascii=False)
        if rid is not None and rid in self._ids:
            return False
        if "\n" in line:  # json never emits raw newlines; guard custom dicts anyway
            raise ValueError("a JSONL record must serialise to one line")
        _write_all(self._fd, (line + "\n").encode("utf-8"))
        if self.durable:
            os.fsync(self._fd)
        if rid is not None:
            self._ids.add(rid)
        self.written += 1
        return True

    def write_line(self, record_id: Any, line: str) -> bool:
        """Append one already-serialised record (e.g. made in a worker process)."""
        if record_id in self._ids:
            return False
        if "\n" in line:
            raise ValueError("a JSONL record must serialise to one line")
        _write_all(self._fd, (line + "\n").encode("utf-8"))
        if self.durable:
            os.fsync(self._fd)
        self._ids.add(record_id)
        self.written += 1
        return True

    def write_lines(self, records: Iterable[tuple[Any, str]]) -> int:
        """Append several already-serialised ``(id, line)`` records in one write (one
        system call for a case's tasks); return how many were new. Ids already in the
        file, or repeated in ``records``, are skipped as ``write_line`` skips them."""
        new: dict[Any, None] = {}
        lines: list[str] = []
        for record_id, line in records:
            if record_id in self._ids or record_id in new:
                continue
            if "\n" in line:
                raise ValueError("a JSONL record must serialise to one line")
            new[record_id] = None
            lines.append(line + "\n")
        if not lines:
            return 0
        _write_all(self._fd, "".join(lines).encode("utf-8"))
        if self.durable:
            os.fsync(self._fd)
        self._ids.update(new)
        self.written += len(lines)
        return len(lines)

    def write_many(self, records: Iterable[BaseModel | dict[str, Any]]) -> int:
        """Append several records; return how many were new."""
        return sum(self.write(r) for r in records)

    def close(self) -> None:
        """Close the file (fsyncs it first)."""
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _umask_mode() -> int:
    """The mode ``open()`` gives a new file (0o666 less the umask); mkstemp's is 0o600."""
    try:  # Linux: read it without changing it (os.umask is process-wide, not thread-safe)
        with open("/proc/self/status", encoding="ascii") as fh:
            mask = next(int(ln.split()[1], 8) for ln in fh if ln.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def write_jsonl(path: str | os.PathLike[str], records: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write ``records`` to a new file atomically (temp file + rename); return the count."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    os.fchmod(fd, _umask_mode())
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for r in records:
                fh.write(
                    r.model_dump_json()
                    if isinstance(r, BaseModel)
                    else json.dumps(r, ensure_ascii=False)
                )
                fh.write("\n")
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


# --------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------


class SourceInfo(BaseModel):
    """A source that contributed records, with its licence."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="Source id.")
    licence: str = Field(description="Licence of the source.")
    attribution: str = Field("", description="Attribution the licence asks for.")
    count: int = Field(0, ge=0, description="Records from this source.")


class Skipped(BaseModel):
    """A record that was not produced, and why."""

    model_config = ConfigDict(extra="forbid")
    where: str = Field(description="Where it came from: 'file:line', an id, or an entry name.")
    reason: str = Field(description="Why it was skipped.")


class FileInfo(BaseModel):
    """One output file of a folder."""

    model_config = ConfigDict(extra="forbid")
    record_type: str = Field(description="'case', 'conversation', 'task', 'prediction', ...")
    count: int = Field(ge=0, description="Valid records in the file.")
    sha256: str | None = Field(None, description="Content hash, when computed.")


class Manifest(BaseModel):
    """What a folder of outputs holds and how it was made."""

    model_config = ConfigDict(extra="forbid")
    schema_version: str = Field(SCHEMA_VERSION, description="Records schema version.")
    behaviorsft_version: str = Field(__version__, description="Package version that wrote it.")
    stage: str = Field(description="Pipeline stage, e.g. 'build', 'eval', 'train'.")
    created_at: datetime = Field(description="First written (UTC).")
    updated_at: datetime = Field(description="Last written (UTC).")
    command: list[str] = Field(default_factory=list, description="Command line that made it.")
    config: dict[str, Any] = Field(default_factory=dict, description="Resolved configuration.")
    seeds: list[int] = Field(default_factory=list, description="Random seeds used.")
    sources: list[SourceInfo] = Field(default_factory=list, description="Contributing sources.")
    files: dict[str, FileInfo] = Field(default_factory=dict, description="Output files.")
    counts: dict[str, int] = Field(default_factory=dict, description="Any other counts.")
    skipped: list[Skipped] = Field(default_factory=list, description="Skipped records.")
    versions: dict[str, str] = Field(default_factory=dict, description="Python and packages.")
    notes: list[str] = Field(default_factory=list, description="Human-readable remarks.")


# Packages whose versions change results; read from metadata, never imported.
_VERSIONED = ("pydantic", "numpy", "torch", "transformers", "peft", "trl", "datasets", "openai")


def changed_options(
    path: str | os.PathLike[str],
    new: dict[str, Any],
    keys: Iterable[str],
    *,
    section: str | None = None,
) -> str | None:
    """How the saved config at ``path`` differs from ``new`` on ``keys`` (None: it does not).

    For resumable stages: a folder written with other options must not be
    resumed silently. Keys missing from the saved file (older versions) are
    not compared. ``section``: the options are under this key of the file
    (``"config"`` of a manifest). Returns ``"key: old in PATH, new now; ..."``.
    """
    file = Path(path)
    if not file.exists():
        return None
    old = json.loads(file.read_text(encoding="utf-8"))
    if section is not None:
        old = old.get(section) if isinstance(old, dict) else None
        if not isinstance(old, dict):
            return None
    changed = [k for k in keys if k in old and old[k] != new[k]]
    if not changed:
        return None
    return "; ".join(f"{k}: {old[k]!r} in {file}, {new[k]!r} now" for k in changed)


def environment_versions() -> dict[str, str]:
    """Python, platform and key package versions (missing packages are left out)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in _VERSIONED:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _now() -> datetime:
    return datetime.now(timezone.utc)


def new_manifest(stage: str, **fields: Any) -> Manifest:
    """A manifest stamped with the time, the command line and the environment."""
    now = _now()
    base: dict[str, Any] = {
        "stage": stage,
        "created_at": now,
        "updated_at": now,
        "command": list(sys.argv),
        "versions": environment_versions(),
    }
    base.update(fields)
    return Manifest(**base)


def write_manifest(folder: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Write ``folder/manifest.json`` atomically; return its path."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    manifest.updated_at = _now()
    target = d / MANIFEST_NAME
    fd, tmp = tempfile.mkstemp(prefix=".manifest.", dir=d)
    os.fchmod(fd, _umask_mode())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(manifest.model_dump_json(indent=2))
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_manifest(folder: str | os.PathLike[str]) -> Manifest | None:
    """Read ``folder/manifest.json``; None if there is none.

    Raises ``ManifestError`` (a ValueError) with one line naming the file when
    it is not readable JSON or not a valid manifest.
    """
    p = Path(folder) / MANIFEST_NAME
    if not p.exists():
        return None
    try:
        return Manifest.model_validate_json(p.read_text(encoding="utf-8"))
    except ValidationError as exc:
        errs = "; ".join(f"{e.field}: {e.message}" for e in validation_errors(str(p), 1, exc)[:5])
        raise ManifestError(
            f"{p}: not a valid manifest ({errs}); move it away or fix it, then re-run"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{p}: cannot read the manifest ({exc})") from None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------
# Record types of files
# --------------------------------------------------------------------------

# Default file names of each record type inside an output folder.
DEFAULT_FILES: dict[str, str] = {
    "case": "cases.jsonl",
    "conversation": "conversations.jsonl",
    "task": "tasks.jsonl",
    "prediction": "predictions.jsonl",
    "judgement": "judgements.jsonl",
}

# Top-level fields that tell the record types apart (and free-text case reports,
# which `cases import --source text` and the LLM builder read: {"id", "text"}).
_SIGNATURES: dict[str, frozenset[str]] = {
    "judgement": frozenset({"criterion", "prediction_id", "judge_model"}),
    "prediction": frozenset({"raw_output", "parsed_answer", "strategy", "p_proactive"}),
    "task": frozenset({"options", "answer", "task_type", "question", "behavior_score"}),
    "conversation": frozenset({"turns", "participants"}),
    "case": frozenset({"source", "presentation", "sections", "findings", "demographics"}),
    "report": frozenset({"text"}),
}
# What each kind is called in messages ("a tasks file").
KIND_NAMES: dict[str, str] = {
    "case": "cases",
    "conversation": "conversations",
    "task": "tasks",
    "prediction": "predictions",
    "judgement": "judgements",
    "report": "free-text reports ({id, text})",
}
_KEY = re.compile(rb'"([A-Za-z_][A-Za-z0-9_]*)"\s*:')
_SNIFF_LINES = 50


def _line_kind(raw: bytes) -> str | None:
    """The kind one line looks like: by its top-level keys, or any keys if it is broken."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        keys = {m.decode() for m in _KEY.findall(raw)}  # a broken line still names its fields
        top = False
    else:
        if not isinstance(obj, dict):
            return None
        keys, top = set(obj), True
    scores = {
        kind: len(keys & sig)
        for kind, sig in _SIGNATURES.items()
        if kind != "report" or top  # "text" is nested in many records
    }
    best = max(scores.values(), default=0)
    winners = [k for k, v in scores.items() if v == best]
    if best == 0 or len(winners) > 1:
        return None
    return winners[0]


def sniff_record_type(path: str | os.PathLike[str], max_lines: int = _SNIFF_LINES) -> str | None:
    """What a file holds, from the fields of its first ``max_lines`` non-blank lines.

    Broken lines count too (their field names are read from the raw text), so
    a file with some bad lines is still recognised. Returns a record type, or
    ``"report"`` for free-text case reports, or None when the lines do not tell.
    """
    p = Path(path)
    if not p.is_file():
        return None
    votes: dict[str, int] = {}
    seen = 0
    with open(p, "rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            kind = _line_kind(raw.strip())
            if kind is not None:
                votes[kind] = votes.get(kind, 0) + 1
            seen += 1
            if seen >= max_lines:
                break
    if not votes:
        return None
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def detect_record_type(path: str | os.PathLike[str]) -> str | None:
    """Guess a file's record type: its folder's manifest, else its content, else its name.

    The content is read from several lines, broken ones included (see
    :func:`sniff_record_type`), so a ``cases.jsonl`` that holds tasks is a
    tasks file. Returns a key of ``RECORD_TYPES`` or None.
    """
    p = Path(path)
    manifest_path = p.parent / MANIFEST_NAME
    if manifest_path.exists():
        try:
            info = json.loads(manifest_path.read_text(encoding="utf-8")).get("files", {})
            if isinstance(info, dict) and isinstance(info.get(p.name), dict):
                rtype = info[p.name].get("record_type")
                if rtype in RECORD_TYPES:
                    return rtype
        except (OSError, ValueError, AttributeError):
            pass  # a broken manifest is reported by the commands that need it, not here
    sniffed = sniff_record_type(p)
    if sniffed in RECORD_TYPES:
        return sniffed
    for rtype, fname in DEFAULT_FILES.items():
        if p.name == fname or p.name.endswith("." + fname) or p.stem == rtype + "s":
            return rtype
    return None


def kind_problem(path: str | os.PathLike[str], expected: str) -> str | None:
    """A one-line message when ``path`` is not a file of the ``expected`` kind, else None.

    ``expected`` is a record type or ``"report"``. Checks that the file exists,
    is a file, is not empty, and that its content (when it tells) is that kind:
    ``"X is a tasks file, not a cases file"``.
    """
    p = Path(path)
    want = KIND_NAMES.get(expected, expected)
    if not p.exists():
        return f"{p}: no such file"
    if p.is_dir():
        return f"{p}: is a folder, not a {want} file"
    if p.stat().st_size == 0 or not any(line.strip() for line in _head_lines(p)):
        return f"{p}: is empty (no {want} records)"
    got = sniff_record_type(p)
    if got is not None and got != expected:
        return f"{p} is a {KIND_NAMES.get(got, got)} file, not a {want} file"
    return None


def _head_lines(p: Path, n: int = _SNIFF_LINES) -> list[bytes]:
    out: list[bytes] = []
    with open(p, "rb") as fh:
        for raw in fh:
            out.append(raw)
            if len(out) >= n:
                break
    return out


def model_for(record_type: str) -> type[Record]:
    """The record class for a type name; the error lists the valid names."""
    try:
        return RECORD_TYPES[record_type]
    except KeyError:
        raise ValueError(
            f"unknown record type {record_type!r}; choose one of {sorted(RECORD_TYPES)}"
        ) from None


# --------------------------------------------------------------------------
# Hugging Face datasets
# --------------------------------------------------------------------------


# Hugging Face names the validation split "validation"; our records say "val".
_HF_SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}


def to_hf_dataset(path: str | os.PathLike[str], model: type[Record]) -> Any:
    """Load a records file into a ``datasets.Dataset`` (validated first; raises on bad lines)."""
    import datasets  # heavy: imported only here

    rows = [r.model_dump(mode="json") for r in read_jsonl(path, model)]
    return datasets.Dataset.from_list(rows)


def export_hf(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    record_type: str | None = None,
    fmt: str = "parquet",
) -> list[Path]:
    """Export a records file to Parquet files or a ``save_to_disk`` folder.

    Tasks whose splits are all assigned become one split each (``train``,
    ``validation``, ``test``), loadable with
    ``datasets.load_dataset("parquet", data_dir=out)`` or
    ``datasets.load_from_disk(out)``; anything else is one ``train`` split.
    Returns the paths written.
    """
    import datasets

    if fmt not in {"parquet", "arrow"}:
        raise ValueError(f"unknown format {fmt!r}; use 'parquet' or 'arrow'")
    rtype = record_type or detect_record_type(path)
    if rtype is None:
        raise ValueError(
            f"{path}: cannot tell the record type; pass record_type "
            f"(one of {', '.join(RECORD_TYPES)})"
        )
    rows = [r.model_dump(mode="json") for r in read_jsonl(path, model_for(rtype))]
    groups: dict[str, list[dict[str, Any]]] = {}
    if rtype == "task" and rows and all(r["split"] is not None for r in rows):
        for r in rows:
            groups.setdefault(_HF_SPLIT_NAMES[r["split"]], []).append(r)
    else:
        groups["train"] = rows
    splits = {name: datasets.Dataset.from_list(part) for name, part in groups.items()}
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if fmt == "arrow":
        datasets.DatasetDict(splits).save_to_disk(str(out_dir))
        written.append(out_dir)
    else:
        for name, part in splits.items():
            target = out_dir / f"{name}.parquet"
            part.to_parquet(str(target))
            written.append(target)
    return written
