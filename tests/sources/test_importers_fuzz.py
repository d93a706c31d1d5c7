"""Random junk mixed with valid entries: line/row importers never raise and lose no valid entry."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from behaviorsft.sources import medec, mediq, mts_dialog, text
from behaviorsft.sources.base import Imported

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# One line of junk: any bytes but a newline (a newline would make it two lines).
junk_bytes = st.binary(max_size=80).map(lambda b: b.replace(b"\n", b" "))
junk_text = st.text(max_size=80).map(lambda s: s.replace("\n", " ").replace("\r", " "))
junk_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
).map(json.dumps)
junk_line = st.one_of(junk_bytes, junk_text.map(str.encode), junk_json.map(str.encode))


def _run(reader: object, name: str, content: bytes) -> list[Imported]:
    with tempfile.TemporaryDirectory() as folder:
        p = Path(folder) / name
        p.write_bytes(content)
        items = list(reader(p))  # type: ignore[operator]
    for item in items:
        assert (item.case is None) != (item.error is None)
        if item.error is not None:
            assert item.error.path == str(p) and item.error.field
    return items


def _mediq_valid(i: int) -> bytes:
    return json.dumps(
        {
            "id": f"valid-{i}",
            "question": "What is the most likely diagnosis?",
            "context": ["A 30-year-old man has a cough."],
            "options": {"A": "Asthma", "B": "Pneumonia", "C": "GERD", "D": "Croup"},
            "answer": "Pneumonia",
            "answer_idx": "B",
            "facts": ["1. Cough."],
            "patient": {"gender": "Male", "age": "30"},
        }
    ).encode()


@SETTINGS
@given(layout=st.lists(st.one_of(st.none(), junk_line), max_size=25))
def test_mediq_jsonl_survives_junk(layout):
    """``None`` in the layout is a valid line; anything else is junk."""
    lines, valid = [], []
    for i, slot in enumerate(layout):
        if slot is None:
            lines.append(_mediq_valid(i))
            valid.append(f"mediq:valid-{i}")
        else:
            lines.append(slot)
    items = _run(mediq.read, "m.jsonl", b"\n".join(lines))
    ids = [i.case.id for i in items if i.case is not None]
    assert [x for x in ids if x.startswith("mediq:valid-")] == valid


@SETTINGS
@given(layout=st.lists(st.one_of(st.none(), junk_line), max_size=25))
def test_text_jsonl_survives_junk(layout):
    lines, valid = [], []
    for i, slot in enumerate(layout):
        if slot is None:
            lines.append(json.dumps({"id": f"valid-{i}", "text": f"Case {i}: fever."}).encode())
            valid.append(f"text:valid-{i}")
        else:
            lines.append(slot)
    items = _run(text.read, "t.jsonl", b"\n".join(lines))
    ids = [i.case.id for i in items if i.case is not None]
    assert [x for x in ids if x.startswith("text:valid-")] == valid


# CSV junk is junk *records*: fields of any text (written with proper quoting,
# as a CSV writer would), any number of them, or raw bytes without quotes or
# line breaks. An unbalanced quote would swallow the following rows by the
# CSV grammar itself, which no reader can undo.
junk_fields = st.lists(st.text(max_size=30), max_size=12)
junk_raw_row = st.binary(max_size=60).map(
    lambda b: b.replace(b"\n", b" ").replace(b"\r", b" ").replace(b'"', b"'")
)


def _csv_row(fields: list[str]) -> bytes:
    buf = io.StringIO()
    # The default "\r\n" terminator makes the writer quote fields holding a lone
    # "\r" too (with "\n" it would not, and the row would really be two).
    csv.writer(buf).writerow(fields)
    return buf.getvalue().encode("utf-8", errors="surrogatepass")


@SETTINGS
@given(
    layout=st.lists(
        st.one_of(
            st.none(),
            junk_fields.map(lambda f: ("fields", f)),
            junk_raw_row.map(lambda b: ("raw", b)),
        ),
        max_size=20,
    )
)
def test_medec_csv_survives_junk(layout):
    header = _csv_row(list(medec.COLUMNS))
    rows, valid = [header], []
    for i, slot in enumerate(layout):
        if slot is None:
            rows.append(
                _csv_row(
                    [
                        f"valid-{i}",
                        "A 50-year-old woman has chest pain.\nShe takes aspirin.",
                        "0 A 50-year-old woman has chest pain.\n1 She takes aspirin.",
                        "1",
                        "management",
                        "1",
                        "She takes aspirin.",
                        "She takes aspirin and heparin.",
                        "NA",
                    ]
                )
            )
            valid.append(f"medec:valid-{i}")
        elif slot[0] == "fields":
            # Keep junk ids apart from the valid ones (a clash would be a true duplicate).
            fields = [f"junk{f}" if n == 0 else f for n, f in enumerate(slot[1])]
            rows.append(_csv_row(fields))
        else:
            rows.append(slot[1] + b"\n")
    items = _run(medec.read, "medec.csv", b"".join(rows))
    ids = [i.case.id for i in items if i.case is not None]
    assert [x for x in ids if x.startswith("medec:valid-")] == valid
    for item in items:
        if item.case is not None and item.case.id in valid:
            annotation = medec.medec_annotation(item.case)
            assert annotation is not None and annotation.error_sentence_id == 1


@SETTINGS
@given(dialogue=st.text(min_size=1, max_size=300), header=st.text(max_size=20))
def test_mts_dialog_never_raises_on_any_dialogue(dialogue, header):
    content = _csv_row(["ID", "section_header", "section_text", "dialogue"]) + _csv_row(
        ["0", header, "Some text.", dialogue]
    )
    items = _run(mts_dialog.read, "mts.csv", content)
    assert len(items) == 1
    conv = items[0].conversation
    if conv is not None:
        assert [t.index for t in conv.turns] == list(range(len(conv.turns)))
