"""Done-claims the record proves, and events at the right time (round-8 review, seed 37:
`cases synth --seed 37`, case id 37-NNNNNN = index NNNNNN); docs/building.md, "Claims the
record proves, at the right time"."""

from __future__ import annotations

import re

import pytest

from behaviorsft.build.conversation import render
from behaviorsft.build.tasks import case_tasks
from behaviorsft.sources.kb import load_kb
from behaviorsft.sources.synthetic import synthesize_case

SEED = 37
_CLAIM = re.compile(r"^(?:Documented|Done and recorded):\s*(?P<item>.+?)\.?$")
_LISTS = re.compile(r"(?:done already|checklist, done|Team note[^:]*):\s*(?P<items>[^.]+)", re.I)


@pytest.fixture(scope="module")
def kb():
    return load_kb()


_MEMO: dict[int, tuple] = {}


def _built(kb, index: int):
    if index not in _MEMO:
        case = synthesize_case(index, seed=SEED, kb=kb)
        rendered = render(case, kb, seed=SEED)
        _MEMO[index] = (case, rendered, list(case_tasks(case, rendered, kb, seed=SEED)))
    return _MEMO[index]


def _claims(kb, index: int) -> list[str]:
    """Every item the record's turns, or an excerpt of its tasks, list as done."""
    _, rendered, tasks = _built(kb, index)
    out = [m["item"] for t in rendered.conversation.turns if (m := _CLAIM.match(t.text))]
    for t in tasks:
        for m in _LISTS.finditer(t.context.excerpt or ""):
            out += [x.strip() for x in m["items"].split(";")]
    return [c.lower() for c in out]


@pytest.mark.parametrize(
    ("index", "course"),
    [(583, "months of"), (584, "4-6 weeks")],
)
def test_a_course_is_never_done_already(kb, index, course):
    """37-000583 ('2 months of HRZE, then 4 months of HR') and 37-000584 (IV therapy for
    4-6 weeks) listed 'done already' at the next morning's round."""
    _, _, tasks = _built(kb, index)
    for t in tasks:
        m = re.search(r"done already:\s*(?P<items>[^.]*)", t.context.excerpt or "")
        if m is not None:
            assert course not in m["items"], t.id


@pytest.mark.parametrize(
    ("index", "words"),
    [
        (206, "3 sets"),  # one blood culture in the record
        (206, "repeat blood cultures"),  # bacteraemia found that day, no repeat shown
        (416, "3 sets"),
        (416, "repeat blood cultures"),
        (534, "serial high-sensitivity troponin"),  # repeat a day later, not at 1-3 h
        (572, "iv potassium"),  # only oral potassium
        (12, "aptt"),  # no LFT or aPTT result
        (403, "t3"),  # no T3 result
        (403, "thionamide given before iodine"),  # neither given
    ],
)
def test_a_claim_the_record_cannot_show_is_not_made(kb, index, words):
    claims = _claims(kb, index)
    assert not [c for c in claims if re.search(rf"(?<![\w-]){re.escape(words)}\b", c)]


@pytest.mark.parametrize("index", [297, 465, 534])
def test_the_ecg_of_chest_pain_comes_before_the_bloods(kb, index):
    """37-000297/465/534: the 12-lead ECG requested with the admission bloods and reported
    after them; in a suspected ACS it is done and read within 10 minutes of arrival."""
    _, rendered, _ = _built(kb, index)
    turns = rendered.conversation.turns
    ecg = next(i for i, t in enumerate(turns) if re.search(r"\b12-lead ECG\b.*:", t.text))
    labs = rendered.anchors["labs"]
    assert ecg < labs
    assert re.search(r"\b\d+ minutes after arrival\b", turns[ecg].text)


def test_a_day_1_culture_is_not_final(kb):
    """37-000527: blood culture 'no growth' (a final report) on day 1."""
    case, _, _ = _built(kb, 527)
    for f in case.findings:
        if f.name == "Blood culture" and f.day is not None and f.day < 2:
            assert f.value_text != "no growth"


@pytest.mark.parametrize("index", [297, 465])
def test_cardiac_markers_fit_the_hours_since_onset(kb, index):
    """37-000297 (CK 2357 at 1 h), 37-000465 (CK 1354, hs-TnT 1547 ng/L at 1 h)."""
    from behaviorsft.build.lint_values import biomarker_cap

    case, _, _ = _built(kb, index)
    hours = -min(e.day for e in case.timeline if e.kind == "symptom") * 24
    assert hours <= 2
    for f in case.findings:
        if f.day == 0 and f.name in ("Creatine kinase", "High-sensitivity troponin T"):
            lid = "ck" if f.name == "Creatine kinase" else "troponin_t_hs"
            uln = kb.lab(lid).reference(case.demographics.sex).high
            assert f.value is not None and f.value <= biomarker_cap(lid, hours, uln), f


def test_a_unit_transfer_leaves_time_for_the_work_up(kb):
    """37-000052: 'admitted to a high-dependency setting 15 minutes after arrival' after a
    history, bloods, an ECG and a plan."""
    _, rendered, _ = _built(kb, 52)
    for t in rendered.conversation.turns:
        m = re.search(r"admitted (?:to|there)\b[^.]*?(\d+) minutes after arrival", t.text)
        if m is not None:
            assert int(m.group(1)) >= 90, t.text


def test_meningitis_antibiotics_before_the_lumbar_puncture_and_ct_before_csf(kb):
    """37-000276: CSF results back before the CT that altered mental status requires, and
    no antibiotic before the LP."""
    _, rendered, _ = _built(kb, 276)
    texts = [t.text for t in rendered.conversation.turns]
    rows = [
        " ".join(" ".join(r) for a in t.attachments for r in a.rows)
        for t in rendered.conversation.turns
    ]
    ct = next(
        i
        for i, t in enumerate(texts)
        if "ct head" in t.lower()
        and ":" in t
        and "request" not in t.lower()
        and "study" not in t.lower()
    )
    csf = next(i for i, r in enumerate(rows) if "CSF" in r)
    assert ct < csf
    given = next(
        i
        for i, t in enumerate(texts)
        if re.search(r"ceftriaxone[^.]*given|given[^.]*ceftriaxone", t, re.I)
    )
    assert given < csf
