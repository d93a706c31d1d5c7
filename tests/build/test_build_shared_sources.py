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


# Types a source supports that its shared file no longer gives, and why.
NOT_GIVEN = {
    # a presented vignette's turns are note sections: their order alone decides a gap
    "medec": {"integrity_missing_turn_inference"},
    "mediq": {"integrity_missing_turn_inference"},
    # every result of the six Synthea patients is 7 to 45 years older than their most
    # recent encounter: dropped as stale (sources/fhir_tidy.py), so no result is asked about;
    # and the one patient with four dated events repeats them (a yearly cardioversion, five
    # times), which leaves no event with one place in the order (round 12)
    "fhir": {"fact_retrieval", "data_conflict_resolution", "timeline_sequence"},
}
# Entries a source's importer skips, and why (one each, but ACI-Bench's four swapped
# transcripts: D2N034, D2N056, D2N057, D2N082).
SKIPPED = {
    "aci-bench": "speaker labels swapped in the source",
    "mediq": "impossible vital sign(s)",
}
N_SKIPPED = {"aci-bench": 4}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_source_builds_every_type_it_supports(shared_data, tmp_path, source):
    folder = shared_data / SOURCES[source]
    cases = tmp_path / "cases.jsonl"
    n = 0
    with (
        JsonlWriter(cases) as cw,
        JsonlWriter(tmp_path / "conversations.jsonl", key="case_id") as vw,
    ):
        skipped = 0
        for item in import_paths(source, [folder]):
            if item.error is not None:
                assert source in SKIPPED and SKIPPED[source] in str(item.error), str(item.error)
                skipped += 1
                continue
            cw.write(item.case)
            n += 1
            if item.conversation is not None:
                vw.write(item.conversation)
    report = build_bench(cases, tmp_path / "bench", workers=2)
    assert not report.errors
    assert report.cases == n
    got = report.by_source_type[source]
    print(source, n, "cases ->", report.tasks, "tasks", got)
    assert skipped == (N_SKIPPED.get(source, 1) if source in SKIPPED else 0)
    assert {t.value for t in SOURCE_TYPES[source]} - NOT_GIVEN.get(source, set()) == set(got)


SHORT_REPORT = (
    "# Case report\n\n## Presentation\nA 70-year-old man with fever and cough for 3 days.\n\n"
    "## Examination\nCrackles at the right base; SpO2 91% on air.\n\n"
    "## Investigations\nCRP 180 mg/L, WBC 16.\n\n"
    "## Imaging\nRight lower lobe consolidation.\n\n"
    "## Management\nCeftriaxone and azithromycin; oxygen to 94-98%.\n\n"
    "## Outcome\nDischarged on day 5 on oral amoxicillin.\n"
)
# The same case told in more sections: enough turns for a set of missing-turn items.
LONG_REPORT = (
    SHORT_REPORT
    + "\n## History\nHe has chronic obstructive pulmonary disease and type 2 diabetes; he "
    "stopped smoking in 2015.\n\n"
    "## Medications\nTiotropium inhaler once daily and metformin 1 g twice daily; no known "
    "drug allergies.\n\n"
    "## Vital signs\nTemperature 38.9 C, pulse 108/min, respiratory rate 26/min, blood "
    "pressure 118/72 mm Hg.\n\n"
    "## Blood gas\nArterial pH 7.41, PaO2 7.9 kPa and PaCO2 5.1 kPa on room air.\n\n"
    "## Microbiology\nSputum culture grew Streptococcus pneumoniae sensitive to penicillin.\n\n"
    "## Severity\nCURB-65 score of 2, so he was admitted to the respiratory ward.\n\n"
    "## Progress\nHis fever settled by day 3 and oxygen was weaned off on day 4.\n\n"
    "## Follow-up\nA repeat chest radiograph six weeks later showed resolution of the "
    "consolidation.\n"
)


def _build_report(tmp_path: Path, text: str):
    report_md = tmp_path / "report.md"
    report_md.write_text(text)
    cases = tmp_path / "cases.jsonl"
    with JsonlWriter(cases) as cw:
        for item in import_paths("text", [report_md], licence="CC0-1.0"):
            assert item.error is None
            cw.write(item.case)
    return build_bench(cases, tmp_path / "bench", workers=1)


def test_text_reports_build_missing_turn_tasks(tmp_path: Path):
    rep = _build_report(tmp_path, LONG_REPORT)
    assert set(rep.by_source_type["text"]) == {"integrity_missing_turn_inference"}


def test_short_text_report_gives_no_missing_turn_item_and_says_why(tmp_path: Path):
    """Six sections leave too few turns to put the answer at every rank once (docs/building.md,
    *Missing turn on real sources*): no item, and the manifest counts why."""
    rep = _build_report(tmp_path, SHORT_REPORT)
    assert "text" not in rep.by_source_type
    assert any(k.startswith("integrity_missing_turn_inference: ") for k in rep.dropped), rep.dropped
