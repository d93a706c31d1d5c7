"""JSONL store: bad lines are reported with file:line: field, good ones are never lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behaviorsft.records import Case, Task
from behaviorsft.store import (
    FileInfo,
    JsonlWriter,
    RecordFileError,
    Skipped,
    detect_record_type,
    export_hf,
    load_records,
    new_manifest,
    read_jsonl,
    read_manifest,
    repair_tail,
    write_jsonl,
    write_manifest,
)
from tests.conftest import make_task_dict

REPO = Path(__file__).resolve().parents[1]


def tasks(n: int, split: str | None = None) -> list[Task]:
    return [Task.model_validate(make_task_dict(id=f"t{i}", split=split)) for i in range(n)]


def test_write_then_read_round_trip(tmp_path):
    p = tmp_path / "tasks.jsonl"
    assert write_jsonl(p, tasks(3)) == 3
    assert read_jsonl(p, Task) == tasks(3)
    assert p.read_bytes().count(b"\n") == 3


def test_bad_lines_reported_good_lines_kept(tmp_path):
    p = tmp_path / "tasks.jsonl"
    good = [t.model_dump_json() for t in tasks(3)]
    bad_answer = json.dumps(make_task_dict(id="bad1", answer="F"))
    lines = [good[0], "{not json", bad_answer, "", "[1, 2]", good[1], good[0], good[2]]
    p.write_text("\n".join(lines) + "\n")
    res = load_records(p, Task)
    assert [t.id for t in res.records] == ["t0", "t1", "t2"]
    assert res.lines == [1, 6, 8]
    got = [str(e) for e in res.errors]
    assert got[0].startswith(f"{p}:2: <line>: malformed JSON")
    assert f"{p}:3: answer: 'F' is not one of the options" in got[1]
    assert got[2] == f"{p}:5: <record>: expected a JSON object, got list"
    assert got[3] == f"{p}:7: id: duplicate id 't0' (first on line 1)"
    with pytest.raises(RecordFileError) as exc:
        read_jsonl(p, Task)
    assert len(exc.value.errors) == 4


def test_non_utf8_line_is_one_error(tmp_path):
    p = tmp_path / "tasks.jsonl"
    good = tasks(2)
    p.write_bytes(
        good[0].model_dump_json().encode()
        + b"\n\xff\xfe junk\n"
        + good[1].model_dump_json().encode()
        + b"\n"
    )
    res = load_records(p, Task)
    assert [t.id for t in res.records] == ["t0", "t1"]
    assert len(res.errors) == 1
    assert "not valid UTF-8" in str(res.errors[0])
    assert res.errors[0].line == 2


def test_torn_last_line_dropped_and_repaired(tmp_path):
    p = tmp_path / "tasks.jsonl"
    write_jsonl(p, tasks(3))
    torn = tasks(4)[3].model_dump_json()[:57]
    with open(p, "a") as fh:
        fh.write(torn)
    res = load_records(p, Task)
    assert len(res.records) == 3
    assert res.ok  # a torn tail is a warning, not an error
    assert res.torn_tail is not None and res.torn_tail.line == 4
    assert len(read_jsonl(p, Task)) == 3
    # Reopening for append cuts the torn bytes and resumes by id.
    with JsonlWriter(p) as w:
        assert w.dropped_bytes == 57
        assert w.existing == 3 and "t2" in w
        assert w.write_many(tasks(5)) == 2  # t0..t2 already there
    assert [t.id for t in read_jsonl(p, Task)] == ["t0", "t1", "t2", "t3", "t4"]


def test_complete_last_line_without_newline_is_kept(tmp_path):
    p = tmp_path / "tasks.jsonl"
    p.write_text("\n".join(t.model_dump_json() for t in tasks(2)))  # no final newline
    assert len(load_records(p, Task).records) == 2
    assert repair_tail(p) == 0
    assert p.read_text().endswith("\n")
    with JsonlWriter(p) as w:
        w.write(tasks(3)[2])
    assert len(read_jsonl(p, Task)) == 3


def test_writer_fresh_and_empty(tmp_path):
    p = tmp_path / "sub" / "tasks.jsonl"
    with JsonlWriter(p) as w:
        assert len(w) == 0
        w.write(tasks(1)[0])
    with JsonlWriter(p, fresh=True) as w:
        assert len(w) == 0
    assert p.read_text() == ""
    assert load_records(p, Task).records == []


def test_killed_writer_resumes_without_loss_or_duplicates(tmp_path):
    """SIGKILL a real writer process mid-stream; the re-run completes the set exactly once."""
    out = tmp_path / "tasks.jsonl"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from behaviorsft.store import JsonlWriter
        from behaviorsft.records import Task
        from tests.conftest import make_task_dict
        with JsonlWriter({str(out)!r}) as w:
            for i in range(400):
                if f"t{{i}}" in w:
                    continue
                w.write(Task.model_validate(make_task_dict(id=f"t{{i}}")))
                if i == 40:
                    print("started", flush=True)
                time.sleep(0.002)
        print("done", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = load_records(out, Task)
    assert 40 < len(partial.records) < 400
    # Simulate the worst case a kill can leave: half a record at the end.
    with open(out, "a") as fh:
        fh.write('{"id": "t999", "case_')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, text=True)
    assert done.returncode == 0, done.stderr
    ids = [t.id for t in read_jsonl(out, Task)]
    assert sorted(ids, key=lambda s: int(s[1:])) == [f"t{i}" for i in range(400)]


# Fields whose absence must be an error (the derived ones are filled in).
_REQUIRED = sorted(
    name
    for name, f in Task.model_fields.items()
    if f.is_required() and name not in {"category", "behavior_label", "behavior_token"}
)


# Junk line families, each of which must be reported on its own line.
def _junk_lines() -> st.SearchStrategy[bytes]:
    valid = make_task_dict()
    text = json.dumps(valid)
    return st.one_of(
        st.integers(1, len(text) - 2).map(lambda k: text[:k].encode()),  # truncated JSON
        st.sampled_from([b"[1,2]", b"42", b'"x"', b"null", b"true"]),  # not an object
        st.sampled_from(_REQUIRED).map(
            lambda f: json.dumps({k: v for k, v in valid.items() if k != f}).encode()
        ),
        st.floats(1.0001, 1e6).map(lambda s: json.dumps({**valid, "behavior_score": s}).encode()),
        st.sampled_from("EF").map(lambda a: json.dumps({**valid, "answer": a}).encode()),
        st.binary(min_size=1, max_size=20).map(lambda b: b"\xff" + b.replace(b"\n", b"")),
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=st.lists(st.one_of(st.none(), _junk_lines()), min_size=1, max_size=25))
def test_junk_never_loses_valid_records(tmp_path, plan):
    """Each None in the plan is a valid record; every other entry is a junk line."""
    p = tmp_path / "mixed.jsonl"
    lines, want_ids, junk_lines = [], [], []
    for i, item in enumerate(plan):
        if item is None:
            lines.append(json.dumps(make_task_dict(id=f"ok{i}")).encode())
            want_ids.append(f"ok{i}")
        else:
            lines.append(item)
            junk_lines.append(i + 1)
    p.write_bytes(b"\n".join(lines) + b"\n")
    res = load_records(p, Task)
    assert [t.id for t in res.records] == want_ids
    assert sorted({e.line for e in res.errors}) == junk_lines
    assert res.torn_tail is None


def test_manifest_round_trip(tmp_path):
    m = new_manifest("build", seeds=[0], config={"n": 3})
    m.files["tasks.jsonl"] = FileInfo(record_type="task", count=3)
    m.skipped.append(Skipped(where="cases.jsonl:4", reason="no findings"))
    write_manifest(tmp_path, m)
    back = read_manifest(tmp_path)
    assert back is not None
    assert back.files["tasks.jsonl"].count == 3
    assert back.skipped[0].reason == "no findings"
    assert back.versions["python"]
    assert "pydantic" in back.versions
    assert read_manifest(tmp_path / "nowhere") is None
    (tmp_path / "manifest.json").write_text('{"stage": 3}')
    with pytest.raises(ValueError, match="not a valid manifest"):
        read_manifest(tmp_path)


def test_detect_record_type(tmp_path):
    write_jsonl(tmp_path / "tasks.jsonl", tasks(1))
    write_jsonl(tmp_path / "whatever.jsonl", tasks(1))
    assert detect_record_type(tmp_path / "tasks.jsonl") == "task"
    assert detect_record_type(tmp_path / "whatever.jsonl") == "task"


def _case(i: int, with_time: bool) -> Case:
    return Case.model_validate(
        {
            "id": f"c{i}",
            "source": {"name": "synthetic", "licence": "CC0"},
            "findings": [
                {
                    "name": "Potassium",
                    "kind": "lab",
                    "value": 4.0 + i,
                    "unit": "mmol/L",
                    "time": "2024-03-01T08:00:00" if with_time else None,
                }
            ],
            "timeline": [] if i % 2 else [{"day": 0, "kind": "presentation", "text": "Arrived."}],
        }
    )


def test_files_load_with_datasets_json(tmp_path):
    datasets = pytest.importorskip("datasets")
    tp = tmp_path / "tasks.jsonl"
    write_jsonl(tp, tasks(4, split="test"))
    ds = datasets.load_dataset(
        "json", data_files=str(tp), split="train", cache_dir=str(tmp_path / "c")
    )
    assert len(ds) == 4
    assert Task.model_validate(ds[2]) == tasks(4, split="test")[2]
    cp = tmp_path / "cases.jsonl"
    write_jsonl(cp, [_case(i, with_time=i > 0) for i in range(3)])
    cds = datasets.load_dataset(
        "json", data_files=str(cp), split="train", cache_dir=str(tmp_path / "c")
    )
    assert cds[1]["findings"][0]["value"] == 5.0


def test_export_hf_parquet_by_split(tmp_path):
    datasets = pytest.importorskip("datasets")
    src = tmp_path / "tasks.jsonl"
    rows = tasks(2, split="train") + [
        Task.model_validate(make_task_dict(id="v0", split="val")),
        Task.model_validate(make_task_dict(id="x0", split="test")),
    ]
    write_jsonl(src, rows)
    written = export_hf(src, tmp_path / "hf")
    assert sorted(p.name for p in written) == [
        "test.parquet",
        "train.parquet",
        "validation.parquet",
    ]
    dd = datasets.load_dataset(
        "parquet", data_dir=str(tmp_path / "hf"), cache_dir=str(tmp_path / "c")
    )
    assert dd["train"].num_rows == 2 and dd["validation"]["id"] == ["v0"]
    export_hf(src, tmp_path / "arrow", fmt="arrow")
    assert datasets.load_from_disk(str(tmp_path / "arrow"))["test"]["id"] == ["x0"]
    with pytest.raises(ValueError, match="unknown format"):
        export_hf(src, tmp_path / "z", fmt="csv")


def test_folder_lock_refuses_a_second_writer_and_frees_on_exit(tmp_path):
    import subprocess
    import sys
    import textwrap

    from behaviorsft.store import FolderBusyError, FolderLock

    out = tmp_path / "run"
    with FolderLock(out):
        # Another process gets a clear error at once, naming the holder.
        code = textwrap.dedent(
            f"""
            from behaviorsft.store import FolderBusyError, FolderLock
            try:
                FolderLock({str(out)!r}).acquire()
            except FolderBusyError as e:
                print("BUSY", e)
            else:
                print("GOT")
            """
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert res.stdout.startswith("BUSY"), res.stdout + res.stderr
        assert f"pid {os.getpid()}" in res.stdout
    # Released: the next writer gets it, in this process or another.
    with FolderLock(out):
        pass
    # A killed holder leaves the lock file but not the lock.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from behaviorsft.store import FolderLock; import time; "
            f"FolderLock({str(out)!r}).acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(FolderBusyError):
        FolderLock(out).acquire()
    proc.kill()
    proc.wait()
    with FolderLock(out):
        pass


def test_write_lines_appends_a_batch_skipping_ids_already_there(tmp_path: Path) -> None:
    from behaviorsft.store import JsonlWriter

    path = tmp_path / "tasks.jsonl"
    with JsonlWriter(path) as w:
        assert w.write_line("a", '{"id": "a"}')
        batch = [("b", '{"id": "b"}'), ("a", '{"id": "a2"}'), ("b", '{"id": "b2"}')]
        assert w.write_lines([*batch, ("c", '{"id": "c"}')]) == 2
        assert w.write_lines([]) == 0
        assert "c" in w and len(w) == 3
        with pytest.raises(ValueError, match="one line"):
            w.write_lines([("d", '{"id":\n"d"}')])
        assert "d" not in w
    assert path.read_text() == '{"id": "a"}\n{"id": "b"}\n{"id": "c"}\n'
    with JsonlWriter(path) as w:  # resumed: the batch's ids are known
        assert w.write_lines([("c", '{"id": "c"}'), ("e", '{"id": "e"}')]) == 1
    assert path.read_text().splitlines()[-1] == '{"id": "e"}'
