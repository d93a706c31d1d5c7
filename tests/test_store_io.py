"""JSONL readers and writers: torn tails are dropped with a warning, user files are never cut."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from behaviorsft.records import Task
from behaviorsft.store import (
    JsonlWriter,
    TornLineWarning,
    UserFileTailError,
    iter_records,
    load_records,
    read_jsonl,
    repair_tail,
    write_jsonl,
)
from tests.conftest import make_task_dict


def tasks(n: int) -> list[Task]:
    return [Task.model_validate(make_task_dict(id=f"t{i}")) for i in range(n)]


def _with_torn_tail(p: Path, torn: bytes) -> None:
    write_jsonl(p, tasks(3))
    with open(p, "ab") as fh:
        fh.write(torn)


def test_every_reader_warns_naming_file_line_and_bytes(tmp_path: Path) -> None:
    p = tmp_path / "tasks.jsonl"
    torn = tasks(4)[3].model_dump_json().encode()[:57]
    _with_torn_tail(p, torn)
    for read in (
        lambda: load_records(p, Task).records,
        lambda: read_jsonl(p, Task),
        lambda: list(iter_records(p, Task)),
    ):
        with pytest.warns(TornLineWarning) as caught:
            assert len(read()) == 3
        msg = str(caught[0].message)
        assert f"{p}:4" in msg and "57 bytes" in msg and "dropped" in msg


def test_tear_inside_a_multibyte_character_is_a_torn_line(tmp_path: Path) -> None:
    p = tmp_path / "tasks.jsonl"
    line = Task.model_validate(
        make_task_dict(id="t9", rationale="Fièvre à 39 °C notée — allergie à la pénicilline.")
    ).model_dump_json()
    raw = line.encode("utf-8")
    cut = raw.index("é".encode()) + 1  # inside the two bytes of "é"
    _with_torn_tail(p, raw[:cut])
    with pytest.warns(TornLineWarning):
        res = load_records(p, Task)
    assert res.ok, [str(e) for e in res.errors]  # not "not valid UTF-8" for the whole file
    assert res.torn_tail is not None and res.torn_tail.line == 4
    assert len(res.records) == 3
    with pytest.warns(TornLineWarning, match=rf"{p.name}:4.*{cut} bytes"):
        w = JsonlWriter(p)
    with w:
        assert w.dropped_bytes == cut
        w.write(Task.model_validate(json.loads(line)))
    assert [t.id for t in read_jsonl(p, Task)] == ["t0", "t1", "t2", "t9"]


def test_writer_says_what_it_cut(tmp_path: Path) -> None:
    p = tmp_path / "tasks.jsonl"
    _with_torn_tail(p, b'{"id": "t3", "case')
    with pytest.warns(TornLineWarning, match=r"tasks\.jsonl:4.*18 bytes"):
        w = JsonlWriter(p)
    w.close()
    assert w.dropped is not None and w.dropped.line == 4 and w.dropped.size == 18


def test_a_file_not_written_by_this_tool_is_never_cut(tmp_path: Path) -> None:
    p = tmp_path / "mine.jsonl"
    _with_torn_tail(p, b'{"id": "t3", "question": "unfinished')
    before = p.read_bytes()
    with pytest.raises(UserFileTailError) as exc:
        JsonlWriter(p, owned=False)
    assert p.read_bytes() == before
    msg = str(exc.value)
    assert f"{p}:4" in msg and "bytes" in msg
    with pytest.raises(UserFileTailError):
        repair_tail(p, owned=False)
    assert p.read_bytes() == before
    # A complete last line without its newline is a user's record: kept, newline added.
    q = tmp_path / "theirs.jsonl"
    q.write_text("\n".join(t.model_dump_json() for t in tasks(2)))
    with JsonlWriter(q, owned=False) as w:
        assert w.dropped is None and w.existing == 2
    assert q.read_text().endswith("\n") and len(read_jsonl(q, Task)) == 2


@pytest.mark.parametrize("rtype", ["case", "conversation", "task", "prediction", "judgement"])
def test_every_record_type_is_recognised_by_its_fields(tmp_path: Path, rtype: str) -> None:
    from behaviorsft.records import RECORD_TYPES
    from behaviorsft.store import detect_record_type, sniff_record_type

    fields = {k: None for k in RECORD_TYPES[rtype].model_fields}
    line = json.dumps(fields)
    p = tmp_path / "records.jsonl"  # a name that tells nothing
    p.write_text(f"{line}\n{line[: len(line) // 2]}\n{line}\n")  # one broken line among them
    assert sniff_record_type(p) == rtype
    assert detect_record_type(p) == rtype
    reports = tmp_path / "reports.jsonl"
    reports.write_text('{"id": "r1", "text": "A 50-year-old man."}\n')
    assert sniff_record_type(reports) == "report" and detect_record_type(reports) is None
