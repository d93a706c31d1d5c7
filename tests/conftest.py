"""Shared fixtures. Nothing here touches the network: hubs are forced offline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

# Set before transformers/datasets are imported anywhere in the test session.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Wide terminal for rich, so CLI output is not wrapped mid-message in assertions.
os.environ["COLUMNS"] = "200"

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def make_task_dict(**overrides: Any) -> dict[str, Any]:
    """A valid task as plain JSON data; override any field."""
    data: dict[str, Any] = {
        "id": "t-1",
        "case_id": "c-1",
        "task_type": "explicit_error_correction",
        "question": "The team plans amoxicillin. Is the plan appropriate?",
        "context": {"turn_start": 3, "turn_end": 7},
        "options": [
            {"label": "A", "text": "Yes, amoxicillin is first-line."},
            {"label": "B", "text": "No: the patient has a documented penicillin allergy."},
            {"label": "C", "text": "Yes, but double the dose."},
            {"label": "D", "text": "No: amoxicillin does not cover Streptococcus pneumoniae."},
        ],
        "answer": "B",
        "rationale": "Anaphylaxis to penicillin is recorded in turn 4.",
        "behavior_score": 0.9,
        "complexity": "advanced",
        "perturbation": {
            "kind": "error",
            "location": "turn 6",
            "original": "doxycycline",
            "modified": "amoxicillin",
            "description": "Drug swapped for one the patient is allergic to.",
        },
        "generator": {"name": "test", "version": "0", "seed": 0},
        "option_permutation": [2, 0, 3, 1],
    }
    data.update(overrides)
    return data


@pytest.fixture
def task_dict() -> dict[str, Any]:
    return make_task_dict()


@pytest.fixture
def shared_data() -> Path:
    """The open clinical data beside the checkout; skip when absent (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember every folder a test was collected from, before -k/-m deselect any
    (tests/test_suite_collection.py checks that none is silently left out)."""
    folders = {Path(str(i.path)).resolve().parent for i in items}
    config.behaviorsft_collected_folders = folders  # type: ignore[attr-defined]
