"""Importers on the real open data in ../shared/data: all of it imports, counts match the README."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from behaviorsft.records import Case, Conversation
from behaviorsft.sources.base import SOURCE_LICENCES, Imported, import_paths
from behaviorsft.sources.fhir import LOINC, MAX_OBSERVATIONS
from behaviorsft.sources.medec import medec_annotation
from behaviorsft.store import JsonlWriter, read_jsonl

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

pytestmark = pytest.mark.shared_data

# Seconds each import took, printed at the end of the session with -s / -rA.
TIMINGS: dict[str, float] = {}


def _import(source: str, folder: str) -> list[Imported]:
    if not (DATA / folder).is_dir():
        pytest.skip(f"{DATA / folder} is not present")
    start = time.perf_counter()
    items = list(import_paths(source, [DATA / folder]))
    TIMINGS[source] = time.perf_counter() - start
    return items


@pytest.fixture(scope="module")
def imported() -> dict[str, list[Imported]]:
    """Every real dataset, imported once for the module (FHIR is the slow one, ~1 s)."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is not present")
    return {
        "fhir": _import("fhir", "fhir"),
        "mediq": _import("mediq", "mediq"),
        "medec": _import("medec", "medec"),
        "aci-bench": _import("aci-bench", "aci-bench"),
        "mts-dialog": _import("mts-dialog", "mts-dialog"),
    }


def _cases(items: list[Imported], skipped: str | None = None, n_skipped: int = 0) -> list[Case]:
    """The cases; no error but ``n_skipped`` entries skipped for the reason ``skipped``."""
    errors = [str(i.error) for i in items if i.error is not None]
    assert len(errors) == n_skipped and all(skipped and skipped in e for e in errors), errors[:10]
    return [i.case for i in items if i.case is not None]


def _per_file(cases: list[Case]) -> dict[str, int]:
    return dict(Counter(Path(c.source.path or "").name for c in cases))


def _assert_attributed(cases: list[Case], source: str) -> None:
    info = SOURCE_LICENCES[source]
    for c in cases:
        assert c.source.name == source
        assert c.source.licence == info.licence
        assert c.source.attribution == info.attribution != ""
        assert c.source.url == info.url
        assert c.source.record_id
        assert c.source.path and Path(c.source.path).is_file()
        assert c.id.startswith(f"{source}:")
    assert len({c.id for c in cases}) == len(cases), "case ids must be unique"


def _assert_dialogue(conversations: list[Conversation], *, min_with_patient: float) -> None:
    """Every dialogue has a clinician; (nearly) all have the patient or a relative too.

    MTS-Dialog has a few clinician-to-clinician handoffs (Guest_clinician and
    Doctor only), so ``min_with_patient`` is a share, not "all".
    """
    with_patient = 0
    for conv in conversations:
        roles = {t.role for t in conv.turns}
        assert roles & {"physician", "clinician"}, conv.case_id
        with_patient += bool(roles & {"patient", "family"})
        assert [t.index for t in conv.turns] == list(range(len(conv.turns)))
    assert with_patient >= min_with_patient * len(conversations)
    speakers = Counter((t.speaker, t.role) for conv in conversations for t in conv.turns)
    assert speakers["Doctor", "physician"] > 0 and speakers["Patient", "patient"] > 0
    assert ("Unknown", "unknown") not in speakers


def test_mediq(imported):
    # one vignette's blood pressure of 102/98 mm Hg (a slip in the source) is skipped
    cases = _cases(imported["mediq"], "impossible vital sign(s): blood pressure 102/98", 1)
    assert len(cases) == 1271
    _assert_attributed(cases, "mediq")
    assert all(i.conversation is None for i in imported["mediq"])
    first = next(c for c in cases if c.id == "mediq:0")
    assert first.presentation.startswith("A 21-year-old sexually active male")
    assert first.facts[0] == "Patient is a 21-year-old male."
    assert first.demographics.sex == "male" and first.demographics.age_years == 21
    assert first.final_diagnosis is None  # a pharmacology question, not a diagnosis
    assert "Answer: C. Ceftriaxone" in first.sections[0].text
    dx = next(c for c in cases if c.id == "mediq:1")
    assert dx.final_diagnosis == "Cyclic vomiting syndrome"
    assert 90 <= sum(c.final_diagnosis is not None for c in cases) <= 130
    assert all(c.sections[0].title == "Source question" for c in cases)
    assert not any(f[:1].isdigit() and ". " in f[:4] for c in cases for f in c.facts)


def test_medec(imported):
    cases = _cases(imported["medec"])
    assert len(cases) == 574
    _assert_attributed(cases, "medec")
    annotations = [medec_annotation(c) for c in cases]
    assert all(a is not None for a in annotations)
    flagged = [(c, a) for c, a in zip(cases, annotations, strict=True) if a and a.error_flag]
    assert len(flagged) == 319
    assert len(cases) - len(flagged) == 255
    for case, ann in flagged:
        assert ann.error_sentence and ann.error_sentence in case.presentation
        assert ann.corrected_sentence and ann.error_type and ann.error_sentence_id is not None
        sentences = next(s.text for s in case.sections if s.title == "Sentences")
        assert f"{ann.error_sentence_id} " in sentences
    clean = [a for a in annotations if a and not a.error_flag]
    assert all(a.error_sentence is None and a.error_sentence_id is None for a in clean)


def test_aci_bench(imported):
    items = imported["aci-bench"]
    # D2N057: the source labels the clinician "patient" and the patient "doctor"; so do
    # D2N034, D2N056 and D2N082 (found by ACI-Bench's spoken phrases since session 12)
    cases = _cases(items, "speaker labels swapped in the source", 4)
    assert _per_file(cases) == {"train.csv": 64, "valid.csv": 19}
    ids = {c.id for c in cases}
    assert not ids & {f"aci-bench:D2N0{n}" for n in (34, 56, 57, 82)}
    _assert_attributed(cases, "aci-bench")
    conversations = [i.conversation for i in items if i.conversation is not None]
    assert len(conversations) == len(cases)
    assert [c.case_id for c in conversations] == [c.id for c in cases]
    _assert_dialogue(conversations, min_with_patient=1.0)
    first = next(c for c in cases if c.id == "aci-bench:D2N001")
    assert first.presentation.startswith("Chief complaint: annual exam")
    assert first.demographics.age_years == 50 and first.demographics.sex == "female"
    titles = Counter(s.title for c in cases for s in c.sections)
    assert titles["CHIEF COMPLAINT"] > 60 and titles["HISTORY OF PRESENT ILLNESS"] > 50
    assert all(c.presentation for c in cases)


def test_mts_dialog(imported):
    items = imported["mts-dialog"]
    cases = _cases(items)
    assert _per_file(cases) == {
        "MTS-Dialog-TrainingSet.csv": 1201,
        "MTS-Dialog-ValidationSet.csv": 100,
    }
    _assert_attributed(cases, "mts-dialog")
    conversations = [i.conversation for i in items if i.conversation is not None]
    assert len(conversations) == len(cases)
    # Both files number their rows from 0: the split keeps the ids apart.
    assert {"mts-dialog:train-0", "mts-dialog:valid-0"} <= {c.id for c in cases}
    _assert_dialogue(conversations, min_with_patient=0.95)
    assert all(len(c.sections) == 1 for c in cases)


def test_fhir(imported):
    cases = _cases(imported["fhir"])
    assert len(cases) == 6
    _assert_attributed(cases, "fhir")
    for case in cases:
        assert case.id == f"fhir:{case.source.record_id}"
        assert case.source.record_id and case.source.record_id in Path(case.source.path or "").name
        assert case.demographics.age_years is not None and case.demographics.sex != "unknown"
        assert case.presentation.split(",")[0].endswith(case.demographics.sex)
        assert len(case.findings) > 0
        assert all(f.code_system == LOINC and f.code for f in case.findings)
        times = [f.time for f in case.findings]
        assert None not in times and times == sorted(times)
        assert [e.time for e in case.timeline] == sorted(e.time for e in case.timeline)
        assert {"encounter"} <= {e.kind for e in case.timeline}
        assert case.conditions and all(c.code_system for c in case.conditions)
        notes = next(s.text for s in case.sections if s.title == "FHIR import notes")
        assert "Read:" in notes
    # The biggest bundle has 581 observations: the cap applies and is said.
    big = max(cases, key=lambda c: len(c.findings))
    assert len(big.findings) <= MAX_OBSERVATIONS
    assert any(f"most recent {MAX_OBSERVATIONS} of" in s.text for s in big.sections)
    # 14 requests: the 7 in force are the medications, the 7 stopped ones timeline events.
    assert sum(len(c.medications) for c in cases) == 7
    assert sum(e.text.endswith("(stopped)") for c in cases for e in c.timeline) == 7
    assert all(m.code_system and m.start for c in cases for m in c.medications)


def test_cases_round_trip_through_the_store(imported, tmp_path):
    """What the importers make can be written and read back by the JSONL store unchanged."""
    cases = [i.case for items in imported.values() for i in items if i.case is not None]
    target = tmp_path / "cases.jsonl"
    with JsonlWriter(target) as writer:
        assert writer.write_many(cases) == len(cases)
    assert read_jsonl(target, Case) == cases


def test_timings_reported(imported):
    # The whole module must stay well under a minute on a 2-core machine.
    assert sum(TIMINGS.values()) < 30, TIMINGS
    print("import timings (s):", {k: round(v, 2) for k, v in TIMINGS.items()})
