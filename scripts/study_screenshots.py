"""Screenshots of the study app's two screens, for docs/study.md.

Seeds a small study in a temporary folder (a 6-case synthetic bench, one
rater, 6 validation tasks, 4 comparison tasks over three runs whose replies
are made up from the bench's rationales), serves it on loopback, signs in
with the rater's one-time link in headless Chromium (Debian's, through
Playwright), answers part of one task on each screen and saves a full-page
PNG of each:

    python scripts/study_screenshots.py                  # writes docs/img/study_*.png
    python scripts/study_screenshots.py --out /tmp/img --bench BENCH

Needs the [web] and [dev] extras and chromium (or $BEHAVIORSFT_CHROMIUM).
tests/study/test_browser.py runs it too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

WIDTH = 1280
VALIDATION_PNG = "study_validation.png"
COMPARISON_PNG = "study_comparison.png"
RATER = "dr_lee"


def _reply(task: Any, style: int) -> str:
    """A plausible reply in one of three styles (terse, reasoned, proactive)."""
    key = next(o for o in task.options if o.label == task.answer)
    if style == 0:
        return f"The best option is {key.label}."
    if style == 1:
        return f"The best option is {key.label}: {key.text}\n\nRationale: {task.rationale}"
    return (
        f"<proactive> {key.label}. {key.text}\n\n{task.rationale}\n\n"
        "Before acting on this, re-check the latest labs and the medication list in the record."
    )


def _demo_study(work: Path, bench: Path) -> tuple[str, str]:
    """A study database with one rater, 6 validation and 4 comparison tasks; (url, link token)."""
    from behaviorsft.bench import load_bench
    from behaviorsft.records import Prediction
    from behaviorsft.study.create import create_comparison, create_validation
    from behaviorsft.study.db import open_db
    from behaviorsft.study.users import add_user

    work.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{work / 'study.db'}"
    runs = []
    for style, name in enumerate(("terse", "reasoned", "proactive")):
        run = work / "runs" / name
        run.mkdir(parents=True)
        rows = [
            Prediction(
                id=f"{task.id}@0",
                task_id=task.id,
                model=f"hf/{name}",
                strategy="zero_shot",
                raw_output=_reply(task, style),
                parsed_answer=task.answer,
                valid=True,
                correct=True,
            ).model_dump_json()
            for task in load_bench(bench).tasks
        ]
        (run / "predictions.jsonl").write_text("\n".join(rows) + "\n")
        runs.append(str(run))
    engine = open_db(db_url)
    try:
        _, token = add_user(engine, RATER)
        assert token is not None
        create_validation(engine, bench, n=6, seed=3, raters=[RATER])
        create_comparison(engine, bench, runs, n=4, seed=3, raters=[RATER])
    finally:
        engine.dispose()
    return db_url, token


def take_screenshots(
    out: Path, *, bench: Path | None = None, work: Path | None = None
) -> list[Path]:
    """Write ``study_validation.png`` and ``study_comparison.png`` into ``out``; returns them."""
    from playwright.sync_api import sync_playwright

    from behaviorsft.study.app import create_app
    from tests.study.helpers import build_bench
    from tests.study.live import launch_chromium, serve

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="study-shots-") as tmp:
        work = work or Path(tmp)
        db_url, token = _demo_study(work / "study", bench or build_bench(work / "bench"))
        app = create_app(db_url, secret="screenshots-" + "s" * 32)
        with serve(app) as base, sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_page(viewport={"width": WIDTH, "height": 900})
                page.set_default_timeout(15_000)
                page.goto(f"{base}/signin/{token}")
                page.get_by_test_id("signin-submit").click()
                page.wait_for_url(f"{base}/")

                # Validation: an answer, a confidence and the slider set; plausibility still open.
                page.get_by_test_id("continue-validation").click()
                page.get_by_test_id("answer-A").check()
                page.get_by_test_id("confidence-moderate").check()
                page.get_by_test_id("proactivity-slider").focus()
                for _ in range(4):
                    page.keyboard.press("ArrowRight")
                page.get_by_test_id("autosave-status").filter(has_text="Saved").wait_for()
                page.evaluate("window.scrollTo(0, 0)")
                validation = out / VALIDATION_PNG
                page.screenshot(path=str(validation), full_page=True)

                # Comparison: ranked by drag and drop, one flag, two Likert ratings given.
                page.goto(f"{base}/")
                page.get_by_test_id("continue-comparison").click()
                page.get_by_test_id("rank-item-B").drag_to(page.get_by_test_id("rank-item-A"))
                page.get_by_test_id("unsafe-C").check()
                page.get_by_test_id("unsafe-note-C").fill(
                    "No reasoning: misses the conflict with the examination."
                )
                page.get_by_test_id("likert-B-5").check()
                page.get_by_test_id("likert-A-4").check()
                page.get_by_test_id("autosave-status").filter(has_text="Saved").wait_for()
                page.evaluate("window.scrollTo(0, 0)")
                comparison = out / COMPARISON_PNG
                page.screenshot(path=str(comparison), full_page=True)
            finally:
                browser.close()
    return [validation, comparison]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--bench", type=Path, help="a built bench (default: build 6 cases)")
    args = parser.parse_args()
    from tests.study.live import missing_browser_reason

    reason = missing_browser_reason()
    if reason:
        sys.exit(f"cannot take screenshots: {reason}")
    for path in take_screenshots(args.out, bench=args.bench):
        print(path)


if __name__ == "__main__":
    main()
