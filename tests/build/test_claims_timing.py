"""Done-claims the record proves, and events at the right time (round-8 review, seed 37:
`cases synth --seed 37`, case id 37-NNNNNN = index NNNNNN); docs/building.md, "Claims the
record proves, at the right time"."""

from __future__ import annotations

import re

import pytest

from behaviorsft.sources.kb import load_kb
from tests.build.kb_records import as_records, build_item, lint_rules

SEED = 37
_CLAIM = re.compile(r"^(?:Documented|Done and recorded):\s*(?P<item>.+?)\.?$")
_LISTS = re.compile(r"(?:done already|checklist, done|Team note[^:]*):\s*(?P<items>[^.]+)", re.I)


@pytest.fixture(scope="module")
def kb():
    return load_kb()


_MEMO: dict[int, tuple] = {}


def _built(kb, index: int):
    if index not in _MEMO:
        _MEMO[index] = build_item(kb, index, SEED)
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
    no antibiotic before the LP: the CSF comes after the CT report, and the empirical
    antibiotic is given minutes after arrival, not waiting for the lumbar puncture."""
    _, rendered, _ = _built(kb, 276)
    turns = rendered.conversation.turns
    ct = next(i for i, t in enumerate(turns) if t.text.lower().startswith("i've reported the ct"))
    csf = next(
        i for i, t in enumerate(turns) for a in t.attachments for r in a.rows if "CSF" in r[0]
    )
    assert ct < csf
    assert any(
        re.search(
            r"ceftriaxone given \d+ minutes after arrival, not waiting for the lumbar", t.text
        )
        for t in turns
    )


# ----------------------------------------------------------------------------- lint rules


def _record(kb, index: int):
    return as_records(*_built(kb, index))


_lint = lint_rules


_NEW_RULES = {
    "claim-unproved",
    "transfer-too-early",
    "marker-before-rise",
    "result-timing",
    "done-impossible",
}


@pytest.mark.parametrize("index", [206, 297, 276, 52, 527, 583])
def test_the_named_records_are_clean(kb, index):
    case, conv, tasks = _record(kb, index)
    assert not set(_lint(kb, case, conv, tasks)) & _NEW_RULES


def _said(conv, text: str) -> None:
    """Append a resident's turn saying ``text`` to ``conv``."""
    turns = conv["turns"]
    turns.append({**turns[-2], "index": len(turns), "text": text, "attachments": []})


@pytest.mark.parametrize(
    "claim",
    [
        "Done and recorded: at least 3 sets of blood cultures from separate venepunctures "
        "before antibiotics.",  # one culture shown
        "Documented: serial high-sensitivity troponin (0 h and 1-3 h).",  # no repeat at hours
        "Documented: IV potassium rate documented and limited.",  # none given IV
        "Documented: TSH and free T4 (and T3).",  # no thyroid tests at all
        "Documented: thionamide given before iodine.",  # no thionamide given
        "Documented: proximal leg vein ultrasound within 4 h of request.",  # no time documented
    ],
)
def test_rule_claim_unproved_on_a_turn(kb, claim):
    import copy

    case, conv, _ = _record(kb, 206)
    bad = copy.deepcopy(conv)
    _said(bad, claim)
    assert "claim-unproved" in _lint(kb, case, bad)


def test_rule_claim_unproved_on_a_checklist(kb):
    case, conv, tasks = _record(kb, 206)
    task = next(t for t in tasks if t["task_type"] == "omission_detection")
    task = {**task, "context": {**task["context"]}}
    task["context"]["excerpt"] = (
        "Handover checklist, done: transthoracic echocardiogram; at least 3 sets of blood "
        "cultures from separate venepunctures before antibiotics."
    )
    assert _lint(kb, case, conv, [task]) == ["claim-unproved"]


def test_the_ecg_time_proves_the_claim(kb):
    """The ACS record documents its ECG minutes after arrival: 'within 10 min' holds."""
    from behaviorsft.build.coherence import claim_checker

    case, rendered, _ = _built(kb, 297)
    texts = [t.text for t in rendered.conversation.turns]
    shown = [(f.name, f.day, f.value_text) for f in case.findings if f.kind in ("lab", "imaging")]
    proves = claim_checker(kb, shown, texts, [])
    assert proves("12-lead ECG within 10 min of arrival") is None
    late = [re.sub(r"\d+ minutes after arrival", "25 minutes after arrival", t) for t in texts]
    assert proves("12-lead ECG within 2 min of arrival") is not None
    assert claim_checker(kb, shown, late, [])("12-lead ECG within 10 min of arrival") is not None


def test_rule_done_impossible_for_a_course_on_a_turn(kb):
    import copy

    case, conv, _ = _record(kb, 206)
    bad = copy.deepcopy(conv)
    _said(bad, "Documented: repeat blood cultures every 24-48 h until bacteraemia clears.")
    assert "done-impossible" in _lint(kb, case, bad)


def test_rule_done_impossible_for_a_course(kb):
    case, conv, tasks = _record(kb, 583)
    task = next(t for t in tasks if t["task_type"] == "predictive_next_action")
    task = {**task, "context": {**task["context"]}}
    task["context"]["excerpt"] = (
        "Ward round update, the next morning: done already: 2 months of isoniazid, "
        "rifampin, pyrazinamide and ethambutol, then 4 months of isoniazid and rifampin."
    )
    assert "done-impossible" in _lint(kb, case, conv, [task])


def test_rule_transfer_too_early(kb):
    import copy

    case, conv, _ = _record(kb, 52)
    bad = copy.deepcopy(conv)
    t = next(t for t in bad["turns"] if "admitted to a high-dependency setting" in t["text"])
    t["text"] = re.sub(r"\d+ minutes after arrival", "15 minutes after arrival", t["text"])
    assert "transfer-too-early" in _lint(kb, case, bad)


def test_rule_marker_before_rise(kb):
    import copy

    case, conv, _ = _record(kb, 297)
    bad = copy.deepcopy(case)
    ck = next(f for f in bad["findings"] if f["name"] == "Creatine kinase" and f["day"] == 0)
    ck["value"] = 2357.0
    assert "marker-before-rise" in _lint(kb, bad, conv)


def test_rule_result_timing_for_a_final_culture_on_day_1(kb):
    import copy

    case, conv, _ = _record(kb, 527)
    bad = copy.deepcopy(case)
    f = next(f for f in bad["findings"] if f["name"] == "Blood culture" and f["day"] == 1)
    f["value_text"] = "no growth"
    assert "result-timing" in _lint(kb, bad, conv)


def test_the_part_a_record_proves_is_listed(kb):
    from behaviorsft.build.coherence import claim_checker, provable

    shown = [
        ("Blood culture", 0.0, "pending"),
        ("Blood culture", 1.0, "gram-positive cocci in clusters"),
        ("12-lead ECG", 0.0, "sinus rhythm"),
        ("Thyroid-stimulating hormone", 0.0, None),
        ("Free thyroxine (free T4)", 0.0, None),
    ]
    check = claim_checker(kb, shown, [], [("Potassium chloride electrolyte", "PO")])
    item = "at least 3 sets of blood cultures from separate venepunctures before antibiotics"
    assert check(item) is not None
    assert provable(check, item) == "blood cultures before antibiotics"
    assert provable(check, "12-lead ECG within 10 min of arrival") == "12-lead ECG"
    assert provable(check, "TSH and free T4 (and T3)") == "TSH and free T4"
    assert provable(check, "thionamide given before iodine") is None
    assert provable(check, "IV potassium rate documented and limited") is None
    assert (
        provable(check, "blood cultures before antibiotics") == "blood cultures before antibiotics"
    )
