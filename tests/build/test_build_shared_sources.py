"""Every file in ../shared/data imports and builds tasks of every type its source supports."""

from __future__ import annotations

from pathlib import Path

import pytest

from behaviorsft.build.pipeline import build_bench
from behaviorsft.build.tasks import SOURCE_TYPES
from behaviorsft.sources.base import import_paths
from behaviorsft.store import JsonlWriter

pytestmark = pytest.mark.shared_data

SOURCES = {
    "fhir": "fhir",
    "mediq": "mediq",
    "medec": "medec",
    "aci-bench": "aci-bench",
    "mts-dialog": "mts-dialog",
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_source_builds_every_type_it_supports(shared_data, tmp_path, source):
    folder = shared_data / SOURCES[source]
    cases = tmp_path / "cases.jsonl"
    n = 0
    with JsonlWriter(cases) as cw, JsonlWriter(tmp_path / "conversations.jsonl",
                                                key="case_id") as vw:
        for item in import_paths(source, [folder]):
            assert item.error is None, str(item.error)
            cw.write(item.case)
            n += 1
            if item.conversation is not None:
                vw.write(item.conversation)
    report = build_bench(cases, tmp_path / "bench", workers=2)
    assert not report.errors
    assert report.cases == n
    got = report.by_source_type[source]
    print(source, n, "cases ->", report.tasks, "tasks", got)
    assert {t.value for t in SOURCE_TYPES[source]} <= set(got)
    assert set(got) <= {t.value for t in SOURCE_TYPES[source]}


def test_text_reports_build_missing_turn_tasks(tmp_path: Path):
    report_md = tmp_path / "report.md"
    report_md.write_text(
        "# Case report\n\n## Presentation\nA 70-year-old man with fever and cough for 3 days.\n\n"
        "## Examination\nCrackles at the right base; SpO2 91% on air.\n\n"
        "## Investigations\nCRP 180 mg/L, WBC 16.\n\n"
        "## Imaging\nRight lower lobe consolidation.\n\n"
        "## Management\nCeftriaxone and azithromycin; oxygen to 94-98%.\n\n"
        "## Outcome\nDischarged on day 5 on oral amoxicillin.\n"
    )
    cases = tmp_path / "cases.jsonl"
    with JsonlWriter(cases) as cw:
        for item in import_paths("text", [report_md], licence="CC0-1.0"):
            assert item.error is None
            cw.write(item.case)
    rep = build_bench(cases, tmp_path / "bench", workers=1)
    assert set(rep.by_source_type["text"]) == {"integrity_missing_turn_inference"}
