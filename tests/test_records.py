"""Records validate at construction and name the field that is wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from behaviorsft.records import (
    Attachment,
    Case,
    Conversation,
    Finding,
    Judgement,
    Perturbation,
    Prediction,
    Task,
)
from behaviorsft.store import validation_errors
from tests.conftest import make_task_dict


def fields_of(exc: ValidationError) -> set[str]:
    return {e.field for e in validation_errors("f", 1, exc)}


def test_valid_task_derives_category_label_token(task_dict):
    t = Task.model_validate(task_dict)
    assert t.category.value == "proactive"
    assert t.behavior_label.value == "highly_proactive"
    assert t.behavior_token == "<proactive>"
    assert t.answer_text.startswith("No: the patient has a documented penicillin allergy")


def test_round_trip_json(task_dict):
    t = Task.model_validate(task_dict)
    assert Task.model_validate_json(t.model_dump_json()) == t


@pytest.mark.parametrize(
    ("change", "field", "needle"),
    [
        ({"answer": "E"}, "answer", "not one of the options"),
        ({"answer": "b"}, "answer", "pattern"),
        ({"behavior_score": 1.2}, "behavior_score", "less than or equal"),
        ({"behavior_score": -0.1}, "behavior_score", "greater than or equal"),
        ({"behavior_label": "balanced"}, "behavior_label", "maps to 'highly_proactive'"),
        ({"behavior_token": "<reactive>"}, "behavior_token", "taxonomy rule gives '<proactive>'"),
        ({"behavior_token": "<balanced>"}, "behavior_token", "not in the 'binary' inventory"),
        ({"category": "reactive"}, "category", "belongs to 'proactive'"),
        ({"task_type": "vibe_check"}, "task_type", "Input should be"),
        ({"option_permutation": [0, 0, 1, 2]}, "option_permutation", "not a permutation"),
        ({"question": "   "}, "question", "at least 1 character"),
        ({"context": {"turn_start": 5, "turn_end": 2}}, "context", "before turn_start"),
        ({"context": {}}, "context", "turn range or an excerpt"),
        ({"complexity": "easy"}, "complexity", "Input should be"),
        ({"unexpected": 1}, "unexpected", "Extra inputs"),
    ],
)
def test_bad_task_names_the_field(task_dict, change, field, needle):
    task_dict.update(change)
    with pytest.raises(ValidationError) as exc:
        Task.model_validate(task_dict)
    errors = validation_errors("tasks.jsonl", 7, exc.value)
    assert any(e.field == field and needle in e.message for e in errors), errors
    assert all(str(e).startswith("tasks.jsonl:7: ") for e in errors)


def test_options_unique_and_counted(task_dict):
    opts = task_dict["options"]
    dup = copy.deepcopy(task_dict)
    dup["options"][2]["text"] = "  yes, AMOXICILLIN is   first-line. "
    with pytest.raises(ValidationError, match="A and C have the same text"):
        Task.model_validate(dup)
    few = dict(task_dict, options=opts[:3], answer="B", option_permutation=None)
    with pytest.raises(ValidationError, match="3 given, need 4-6"):
        Task.model_validate(few)
    gap = copy.deepcopy(task_dict)
    gap["options"][3]["label"] = "E"
    with pytest.raises(ValidationError, match="must be"):
        Task.model_validate(gap)
    six = copy.deepcopy(task_dict)
    six["options"] += [{"label": "E", "text": "e"}, {"label": "F", "text": "f"}]
    six["option_permutation"] = None
    assert len(Task.model_validate(six).options) == 6


def test_restraint_control_rules(task_dict):
    ctrl = dict(task_dict, restraint_control=True)
    with pytest.raises(ValidationError, match="must not carry a perturbation"):
        Task.model_validate(ctrl)
    ctrl["perturbation"] = None
    assert Task.model_validate(ctrl).restraint_control
    reactive = dict(ctrl, task_type="fact_retrieval", behavior_score=0.1)
    with pytest.raises(ValidationError, match="only proactive task types"):
        Task.model_validate(reactive)


def test_balanced_token_by_score():
    t = Task.model_validate(
        make_task_dict(
            task_type="reasoning_differential_evolution", behavior_score=0.42, perturbation=None
        )
    )
    assert (t.category.value, t.behavior_label.value, t.behavior_token) == (
        "balanced",
        "balanced",
        "<reactive>",
    )


def test_fine_token_inventory():
    t = Task.model_validate(make_task_dict(token_inventory="fine"))
    assert t.behavior_token == "<highly_proactive>"


def test_perturbation_must_change_something():
    with pytest.raises(ValidationError, match="identical"):
        Perturbation(kind="conflict", location="turn 3", original="5.1", modified="5.1")
    with pytest.raises(ValidationError, match="needs `original` or `modified`"):
        Perturbation(kind="omission", location="findings")


def test_case_parts_validate():
    case = Case.model_validate(
        {
            "id": "c1",
            "source": {"name": "synthetic", "licence": "CC0"},
            "findings": [
                {
                    "name": "Potassium",
                    "kind": "lab",
                    "value": 6.1,
                    "unit": "mmol/L",
                    "reference_range": {"low": 3.5, "high": 5.0},
                    "code_system": "http://loinc.org",
                    "code": "2823-3",
                }
            ],
        }
    )
    assert case.findings[0].reference_range.high == 5.0
    with pytest.raises(ValidationError, match="needs `value` or `value_text`"):
        Finding(name="K", kind="lab")
    with pytest.raises(ValidationError, match="above high"):
        Finding(name="K", value=4, reference_range={"low": 5, "high": 3})
    with pytest.raises(ValidationError) as exc:
        Case.model_validate({"id": "c", "source": {"name": "x"}})
    assert "source.licence" in fields_of(exc.value)


def test_conversation_indices_and_participants():
    turns = [
        {"index": 0, "speaker": "Patient", "role": "patient", "text": "I feel short of breath."},
        {"index": 1, "speaker": "Dr. Ade", "role": "attending", "text": "Since when?"},
        {"index": 2, "speaker": "Patient", "role": "patient", "text": "Two days."},
    ]
    conv = Conversation(case_id="c1", turns=turns)
    assert [(p.speaker, p.role) for p in conv.participants] == [
        ("Patient", "patient"),
        ("Dr. Ade", "attending"),
    ]
    bad = copy.deepcopy(turns)
    bad[2]["index"] = 5
    with pytest.raises(ValidationError, match=r"turns\[2\]\.index is 5"):
        Conversation(case_id="c1", turns=bad)
    with pytest.raises(ValidationError, match="missing from participants"):
        Conversation(
            case_id="c1", turns=turns, participants=[{"speaker": "Patient", "role": "patient"}]
        )


def test_table_attachment_shape():
    Attachment(kind="table", title="BMP", columns=["Test", "Value"], rows=[["K", "6.1"]])
    with pytest.raises(ValidationError, match="rows\\[0\\] has 1 cells"):
        Attachment(kind="table", columns=["Test", "Value"], rows=[["K"]])
    with pytest.raises(ValidationError, match="needs `uri` or `title`"):
        Attachment(kind="image")


def test_prediction_error_rows_are_not_answers():
    ok = Prediction(
        task_id="t1",
        model="hf/x",
        strategy="zero_shot",
        raw_output="B",
        parsed_answer="B",
        valid=True,
        correct=True,
    )
    assert ok.id == "t1@0"
    failed = Prediction(task_id="t1", model="hf/x", strategy="zero_shot", error="HTTP 500 x3")
    assert failed.correct is None
    with pytest.raises(ValidationError, match="cannot carry an answer"):
        Prediction(
            task_id="t1", model="m", strategy="s", error="timeout", parsed_answer="A", valid=True
        )
    with pytest.raises(ValidationError, match="raw_output"):
        Prediction(task_id="t1", model="m", strategy="s")
    with pytest.raises(ValidationError, match="unparseable answer cannot be correct"):
        Prediction(task_id="t1", model="m", strategy="s", raw_output="??", correct=True)


def test_judgement_unscored_has_no_score():
    j = Judgement(
        prediction_id="t1@0",
        task_id="t1",
        criterion="safety",
        score=0.8,
        raw_score=4.2,
        method="logprobs",
        judge_model="openai/gpt-4o-mini",
    )
    assert j.id == "t1@0:safety"
    Judgement(
        prediction_id="p",
        task_id="t",
        criterion="utility",
        judge_model="m",
        error="HTTP 429 after 5 tries",
    )
    with pytest.raises(ValidationError, match="needs `score` and `method`"):
        Judgement(prediction_id="p", task_id="t", criterion="utility", judge_model="m")
    with pytest.raises(ValidationError, match="n_samples"):
        Judgement(
            prediction_id="p",
            task_id="t",
            criterion="utility",
            judge_model="m",
            score=0.5,
            method="sampling",
        )


# --- hypothesis: arbitrary corruption of a valid task is either still valid or
# --- rejected with an error that names a real field; never a crash.

_TOP_FIELDS = sorted(Task.model_fields)
_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 50),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(0, 6), max_size=7),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(
    drop=st.lists(st.sampled_from(_TOP_FIELDS), max_size=3),
    replace=st.dictionaries(st.sampled_from(_TOP_FIELDS), _junk, max_size=3),
)
def test_corrupted_tasks_fail_cleanly(drop: list[str], replace: dict[str, Any]):
    data = make_task_dict()
    for f in drop:
        data.pop(f, None)
    data.update(replace)
    try:
        Task.model_validate(data)
    except ValidationError as exc:
        errors = validation_errors("x.jsonl", 1, exc)
        assert errors
        for e in errors:
            head = e.field.split(".")[0]
            assert head in Task.model_fields or head == "<record>", e
            assert e.message
