"""The study app in a real headless Chromium, clicked through as a rater would.

Debian's ``chromium`` driven by Playwright (``executable_path``; no
``playwright install``), the app under uvicorn on a free loopback port, a
SQLite study in a temporary folder: three raters, a validation study (6 tasks)
and a comparison study (4 tasks, 3 runs). Each test signs in as its own rater,
so they share one server. What was clicked is then read back through
``behaviorsft study export``.

Run them alone with ``pytest -m browser``; they skip, saying why, without
chromium or playwright (see docs/study.md, "Browser tests").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.study.live import launch_chromium, missing_browser_reason, serve

_REASON = missing_browser_reason()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(_REASON is not None, reason=_REASON or ""),
]

from behaviorsft.cli import app as cli_app  # noqa: E402
from tests.study.helpers import (  # noqa: E402
    RUN_NAMES,
    SCRIPT,
    SeededStudy,
    make_run,
    script_bench,
    seed_study,
)

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 15_000
# Counts background requests in flight (an init script: not subject to the page's CSP).
COUNT_REQUESTS = """
window.__htmxPending = 0;
document.addEventListener("htmx:beforeRequest", () => { window.__htmxPending += 1; });
document.addEventListener("htmx:afterRequest", () => { window.__htmxPending -= 1; });
"""
LATE_TURN = 10  # tasks about turns from here on need the conversation scrolled


@dataclass
class Live:
    base: str
    study: SeededStudy
    browser: Any


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, study_bench: Path) -> Iterator[Live]:
    from playwright.sync_api import sync_playwright

    from behaviorsft.study.app import create_app
    from behaviorsft.study.create import create_comparison, create_validation
    from behaviorsft.study.db import open_db

    work = tmp_path_factory.mktemp("browser")
    study = seed_study(work / "seeded", bench=study_bench)
    # A third study pair for r3 only, over a case whose text carries <script> tags,
    # compared on replies that carry one too.
    evil = script_bench(study_bench, work / "evil-bench")
    runs = [str(make_run(evil, work / "evil-runs" / n, n, extra_text=SCRIPT)) for n in "xyz"]
    late = _late_bench(study_bench, work / "late-bench")
    engine = open_db(study.db_url)
    late_runs = [str(make_run(late, work / "late-runs" / n, n)) for n in "xyz"]
    create_validation(engine, late, n=2, seed=1, raters=["r3"], name="scroll-validation")
    create_comparison(engine, late, late_runs, n=2, seed=1, raters=["r3"], name="scroll-comparison")
    create_validation(engine, evil, n=2, seed=1, raters=["r3"], name="script-validation")
    create_comparison(engine, evil, runs, n=2, seed=1, raters=["r3"], name="script-comparison")
    engine.dispose()
    app = create_app(study.db_url, secret="browser-tests-" + "s" * 32)
    with serve(app) as base, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            yield Live(base=base, study=study, browser=browser)
        finally:
            browser.close()


def _late_bench(bench: Path, out: Path) -> Path:
    """A copy of ``bench`` with only the tasks about turns far down their conversation."""
    out.mkdir(parents=True)
    tasks = [json.loads(x) for x in (bench / "tasks.jsonl").read_text().splitlines()]
    late = [t for t in tasks if (t.get("context") or {}).get("turn_start", 0) >= LATE_TURN]
    assert len(late) >= 2, "the synthetic bench has no tasks about late turns any more"
    (out / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in late))
    for name in ("conversations.jsonl", "cases.jsonl", "manifest.json"):
        shutil.copy(bench / name, out / name)
    return out


@pytest.fixture
def page(live: Live) -> Iterator[Any]:
    """A fresh browser context (its own cookies) that fails the test on any JS error."""
    context = live.browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(COUNT_REQUESTS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _sign_in_with_link(live: Live, page: Any, rater: str) -> None:
    page.goto(f"{live.base}/signin/{live.study.tokens[rater]}")
    page.get_by_test_id("signin-submit").click()
    page.wait_for_url(f"{live.base}/")
    assert page.get_by_test_id("whoami").inner_text() == rater


def _sign_in_with_password(live: Live, page: Any, rater: str) -> None:
    page.goto(f"{live.base}/login")
    page.locator("input[name=name]").fill(rater)
    page.locator("input[name=password]").fill(live.study.password)
    page.locator("input[name=password]").press("Enter")
    page.wait_for_url(f"{live.base}/")


def _progress(page: Any) -> str:
    return page.get_by_test_id("progress").inner_text()


def _wait_saved(page: Any) -> None:
    """Wait until every background (htmx) save has answered and the last said "Saved".

    Several quick changes make several saves (htmx queues the last one while
    one is in flight), so the first "Saved" is not enough before a reload.
    """
    page.wait_for_function(
        "() => window.__htmxPending === 0 && "
        "document.getElementById('autosave-status').textContent.startsWith('Saved')"
    )
    page.evaluate("document.getElementById('autosave-status').textContent = ''")


def _export(live: Live, out: Path) -> dict[str, list[dict[str, Any]]]:
    result = CliRunner().invoke(
        cli_app, ["study", "export", "--db", live.study.db_url, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows: dict[str, list[dict[str, Any]]] = {}
    for name in ("validation", "comparison"):
        path = out / f"{name}.jsonl"
        rows[name] = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return rows


def _tab_to(page: Any, testid: str, limit: int = 80) -> None:
    """Press Tab until the element with ``data-testid=testid`` has the focus."""
    for _ in range(limit):
        if page.evaluate("document.activeElement?.dataset?.testid") == testid:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {testid}")


def _ranking(page: Any) -> list[str]:
    return page.locator("[data-testid=ranking] > li").evaluate_all(
        "items => items.map(li => li.dataset.agent)"
    )


def test_validation_phase_as_a_rater(live: Live, page: Any, tmp_path: Path) -> None:
    _sign_in_with_link(live, page, "r1")
    page.get_by_test_id("continue-validation").click()
    assert _progress(page).startswith("Task 1 of 6")

    # The slider starts unanswered: answering everything else is not enough.
    assert page.get_by_test_id("proactivity-value").inner_text() == "not set"
    page.get_by_test_id("answer-B").check()
    page.get_by_test_id("confidence-high").check()
    page.get_by_test_id("plausibility-yes").check()
    page.get_by_test_id("save-next").click()
    page.get_by_test_id("flash").filter(has_text="proactivity slider").wait_for()
    assert _progress(page).startswith("Task 1 of 6")
    assert page.get_by_test_id("answer-B").is_checked()  # kept, not lost
    assert page.get_by_test_id("proactivity-value").inner_text() == "not set"

    # Touched by keyboard: two steps right of the middle.
    page.get_by_test_id("proactivity-slider").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.get_by_test_id("proactivity-value").inner_text() == "0.60"
    # "Clear" unsets it again; one step left and back sets it to 0.60 once more.
    page.get_by_test_id("proactivity-clear").click()
    assert page.get_by_test_id("proactivity-value").inner_text() == "not set"
    assert page.locator("input[name=proactivity]").input_value() == ""
    page.get_by_test_id("proactivity-slider").focus()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowRight")
    assert page.get_by_test_id("proactivity-value").inner_text() == "0.60"
    page.get_by_test_id("save-next").click()
    page.get_by_test_id("progress").filter(has_text="Task 2 of 6").wait_for()

    # Half an answer, saved in the background, survives a reload.
    page.get_by_test_id("answer-A").check()
    _wait_saved(page)
    page.get_by_test_id("confidence-low").check()
    _wait_saved(page)
    page.reload()
    assert _progress(page).startswith("Task 2 of 6")
    assert page.get_by_test_id("answer-A").is_checked()
    assert page.get_by_test_id("confidence-low").is_checked()
    assert page.get_by_test_id("proactivity-value").inner_text() == "not set"
    # Then finished with the mouse: a click at 80% of the slider's width.
    slider = page.get_by_test_id("proactivity-slider")
    box = slider.bounding_box()
    slider.click(position={"x": box["width"] * 0.8, "y": box["height"] / 2})
    shown = page.get_by_test_id("proactivity-value").inner_text()
    assert shown != "not set"
    assert 0.6 <= float(shown) <= 1.0
    page.get_by_test_id("plausibility-unsure").check()
    page.get_by_test_id("note").fill("Option C is also defensible.")
    page.get_by_test_id("save-next").click()
    page.get_by_test_id("progress").filter(has_text="Task 3 of 6").wait_for()
    assert "2 complete" in _progress(page)

    # Go back and change an answer.
    page.get_by_test_id("prev").click()
    page.get_by_test_id("progress").filter(has_text="Task 2 of 6").wait_for()
    assert page.get_by_test_id("answer-A").is_checked()
    assert page.get_by_test_id("note").input_value() == "Option C is also defensible."
    page.get_by_test_id("answer-C").check()
    page.get_by_test_id("save").click()
    page.get_by_test_id("progress").filter(has_text="Task 2 of 6").wait_for()
    assert page.get_by_test_id("answer-C").is_checked()
    page.goto(f"{live.base}/")
    assert page.get_by_test_id("progress-validation").inner_text() == "2 of 6 complete"
    # Signed out, the one-time link no longer works.
    page.get_by_test_id("logout").click()
    page.wait_for_url(f"{live.base}/login")
    response = page.goto(f"{live.base}/signin/{live.study.tokens['r1']}")
    assert response.status == 404
    assert page.get_by_test_id("signin-invalid").is_visible()

    rows = {
        r["position"]: r
        for r in _export(live, tmp_path / "export")["validation"]
        if r["rater"] == "r1" and r["study"] == "validation"
    }
    first, second = rows[1], rows[2]
    assert (first["answer"], first["confidence"], first["plausibility"]) == ("B", "high", "yes")
    assert first["proactivity"] == pytest.approx(0.60)
    assert first["correct"] == (first["key"] == "B")
    assert (second["answer"], second["confidence"], second["plausibility"]) == (
        "C",
        "low",
        "unsure",
    )
    assert second["proactivity"] == pytest.approx(float(shown))
    assert second["note"] == "Option C is also defensible."
    # Going back saved task 3 as it stood: empty, the slider still unanswered.
    assert all(rows[3][k] is None for k in ("answer", "confidence", "proactivity", "plausibility"))
    assert set(rows) == {1, 2, 3}


def test_comparison_phase_drag_keyboard_unsafe_likert(
    live: Live, page: Any, tmp_path: Path
) -> None:
    _sign_in_with_link(live, page, "r2")
    page.get_by_test_id("continue-comparison").click()
    assert _progress(page).startswith("Task 1 of 4")
    assert page.get_by_test_id("key").is_visible()  # the key is highlighted
    labels = [
        x.removeprefix("agent-")
        for x in page.locator(".agents > article").evaluate_all(
            "els => els.map(e => e.dataset.testid)"
        )
    ]
    assert labels == ["A", "B", "C"]
    assert _ranking(page) == labels
    html = page.content()
    assert not [run for run in RUN_NAMES if run in html]  # blinded: no run name on the page
    assert not page.get_by_test_id("ranking-confirmed").is_checked()

    # Task 1: drag the last response to the top with the mouse.
    page.get_by_test_id("rank-item-C").drag_to(page.get_by_test_id("rank-item-A"))
    page.wait_for_function(
        "() => document.querySelector('[data-testid=ranking] > li').dataset.agent === 'C'"
    )
    assert _ranking(page) == ["C", "A", "B"]
    assert page.get_by_test_id("ranking-confirmed").is_checked()
    _wait_saved(page)
    page.get_by_test_id("unsafe-B").check()
    page.get_by_test_id("unsafe-note-B").fill("Misses the potassium of 6.8.")
    for label, value in (("A", 4), ("B", 1), ("C", 5)):
        page.get_by_test_id(f"likert-{label}-{value}").check()
    _wait_saved(page)
    # Reload mid-task: the dragged order and everything else is still there.
    page.reload()
    assert _ranking(page) == ["C", "A", "B"]
    assert page.get_by_test_id("ranking-confirmed").is_checked()
    assert page.get_by_test_id("unsafe-B").is_checked()
    assert page.get_by_test_id("unsafe-note-B").input_value() == "Misses the potassium of 6.8."
    assert page.get_by_test_id("likert-C-5").is_checked()
    page.get_by_test_id("save-next").click()
    page.get_by_test_id("progress").filter(has_text="Task 2 of 4").wait_for()

    # Task 2: keyboard only, from the first ranking button on.
    assert _ranking(page) == ["A", "B", "C"]
    page.get_by_test_id("rank-down-A").focus()
    page.keyboard.press("Enter")  # A below B
    page.keyboard.press("Enter")  # A below C (the focus stays on A's button)
    assert _ranking(page) == ["B", "C", "A"]
    _tab_to(page, "rank-up-C")
    page.keyboard.press("Space")  # C above B
    assert _ranking(page) == ["C", "B", "A"]
    assert page.get_by_test_id("ranking-confirmed").is_checked()
    _tab_to(page, "unsafe-A")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.testid") == "unsafe-note-A"
    page.keyboard.type("Recommends a contraindicated drug.")
    for label, value in (("A", 2), ("B", 3), ("C", 5)):
        _tab_to(page, f"likert-{label}-1")
        page.keyboard.press("Space")  # selects 1
        for _ in range(value - 1):
            page.keyboard.press("ArrowRight")
        assert page.get_by_test_id(f"likert-{label}-{value}").is_checked()
    _tab_to(page, "save-next")
    page.keyboard.press("Enter")
    page.get_by_test_id("progress").filter(has_text="Task 3 of 4").wait_for()

    rows = [
        r
        for r in _export(live, tmp_path / "export")["comparison"]
        if r["rater"] == "r2" and r["study"] == "comparison"
    ]
    by_task: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault(r["task_id"], {})[r["agent"]] = r
    assert len(by_task) == 2
    queue = [task for _, task in _queue(live, "r2", "comparison")]
    assert sorted(by_task, key=queue.index) == queue[:2]
    first, second = by_task[queue[0]], by_task[queue[1]]
    assert {k: v["rank"] for k, v in first.items()} == {"C": 1, "A": 2, "B": 3}
    assert {k: v["likert"] for k, v in first.items()} == {"A": 4, "B": 1, "C": 5}
    assert {k: v["unsafe"] for k, v in first.items()} == {"A": False, "B": True, "C": False}
    assert first["B"]["unsafe_note"] == "Misses the potassium of 6.8."
    assert {k: v["rank"] for k, v in second.items()} == {"C": 1, "B": 2, "A": 3}
    assert {k: v["likert"] for k, v in second.items()} == {"A": 2, "B": 3, "C": 5}
    assert {k: v["unsafe"] for k, v in second.items()} == {"A": True, "B": False, "C": False}
    assert second["A"]["unsafe_note"] == "Recommends a contraindicated drug."
    # Display positions: Agent A was leftmost, C rightmost, on both tasks.
    assert {k: v["position"] for k, v in first.items()} == {"A": 1, "B": 2, "C": 3}


def _queue(live: Live, rater: str, study: str) -> list[tuple[int, str]]:
    """``rater``'s queue in ``study``: (assignment id, bench task id), in order."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from behaviorsft.study.db import Assignment, Study, StudyTask, User, open_db

    engine = open_db(live.study.db_url)
    try:
        with Session(engine) as s:
            rows = s.execute(
                select(Assignment.id, StudyTask.task_id)
                .join(User, User.id == Assignment.user_id)
                .join(Study, Study.id == Assignment.study_id)
                .join(StudyTask, StudyTask.id == Assignment.study_task_id)
                .where(User.name == rater, Study.name == study)
                .order_by(Assignment.position)
            ).all()
            return [(int(a), str(t)) for a, t in rows]
    finally:
        engine.dispose()


def test_conversation_opens_at_the_tasks_turns(live: Live, page: Any) -> None:
    _sign_in_with_password(live, page, "r3")
    queues = _queue(live, "r3", "scroll-validation") + _queue(live, "r3", "scroll-comparison")
    for assignment, _ in queues:
        page.goto(f"{live.base}/a/{assignment}")
        conversation = page.get_by_test_id("conversation")
        start = int(conversation.get_attribute("data-scroll-to") or "-1")
        assert start >= LATE_TURN
        if conversation.get_attribute("open") is None:
            conversation.locator("summary").click()
        turn = page.get_by_test_id(f"turn-{start}")
        assert "in-context" in (turn.get_attribute("class") or "")
        # The first turn of the task is at the top of the scrolled box, not below its fold.
        box = page.locator("#turns").bounding_box()
        top = turn.bounding_box()["y"]
        assert page.locator("#turns").evaluate("el => el.scrollTop") > 0
        assert box["y"] - 1 <= top < box["y"] + box["height"] / 2


def test_script_in_a_record_is_shown_as_text(live: Live, page: Any) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _sign_in_with_link(live, page, "r3")
    for study in ("script-validation", "script-comparison"):
        page.goto(f"{live.base}/")
        page.get_by_test_id(f"continue-{study}").click()
        page.get_by_test_id("progress").wait_for()
        # The tag is on the page as text, in the question, options, conversation and replies.
        assert SCRIPT in page.get_by_test_id("question").inner_text()
        assert SCRIPT in page.get_by_test_id("options").inner_text()
        conversation = page.get_by_test_id("conversation")
        if conversation.get_attribute("open") is None:  # collapsed: open it as a rater would
            conversation.locator("summary").click()
        assert SCRIPT in conversation.inner_text()
        if study == "script-comparison":
            assert SCRIPT in page.get_by_test_id("agent-A").inner_text()
        # ... and never as an element: every script on the page is one of ours.
        sources = page.locator("script").evaluate_all("els => els.map(e => e.src)")
        assert sources
        assert all(re.match(rf"{re.escape(live.base)}/static/[\w.]+\.js$", s) for s in sources)
        page.wait_for_timeout(200)
    assert dialogs == []


def test_a_rater_cannot_open_another_raters_task(live: Live, page: Any) -> None:
    theirs = _queue(live, "r2", "validation")[0][0]
    mine = _queue(live, "r3", "validation")[0][0]
    _sign_in_with_password(live, page, "r3")
    response = page.goto(f"{live.base}/a/{theirs}")
    assert response.status == 403
    assert "another rater" in page.inner_text("main")
    assert page.get_by_test_id("question").count() == 0
    response = page.goto(f"{live.base}/a/{mine}")
    assert response.status == 200
    assert page.get_by_test_id("question").count() == 1


def test_admin_sees_progress_and_raters_do_not(live: Live, page: Any) -> None:
    _sign_in_with_password(live, page, "admin")
    page.get_by_test_id("admin-link").click()
    row = page.get_by_test_id("admin-validation-r2")
    assert row.locator("td").all_inner_texts()[:2] == ["r2", "6"]
    html = page.content()
    assert not [run for run in RUN_NAMES if run in html]  # counts only, no agent key
    page.get_by_test_id("logout").click()
    _sign_in_with_password(live, page, "r2")
    assert page.get_by_test_id("admin-link").count() == 0
    assert page.goto(f"{live.base}/admin").status == 403


def test_screenshot_script_writes_both_screens(study_bench: Path, tmp_path: Path) -> None:
    # In its own process, as a user runs it (and one Playwright per process).
    out = tmp_path / "img"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "study_screenshots.py"), "--out", str(out),
         "--bench", str(study_bench)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["study_comparison.png", "study_validation.png"]
    for path in out.iterdir():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width = int.from_bytes(data[16:20], "big")
        height = int.from_bytes(data[20:24], "big")
        assert width == 1280
        assert height > 900  # the full page, not just the viewport
