"""Screenshots of the study app's two screens, for docs/study.md.

Seeds a small study (a 6-case synthetic bench, three raters, a validation and
a comparison study) in a temporary folder, serves it on loopback, signs in as
rater r1 in headless Chromium (Debian's, through Playwright), answers part of
one task on each screen and saves a full-page PNG of each:

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

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

WIDTH = 1280
VALIDATION_PNG = "study_validation.png"
COMPARISON_PNG = "study_comparison.png"


def take_screenshots(
    out: Path, *, bench: Path | None = None, work: Path | None = None
) -> list[Path]:
    """Write ``study_validation.png`` and ``study_comparison.png`` into ``out``; returns them."""
    from playwright.sync_api import sync_playwright

    from behaviorsft.study.app import create_app
    from tests.study.helpers import seed_study
    from tests.study.live import launch_chromium, serve

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="study-shots-") as tmp:
        study = seed_study((work or Path(tmp)) / "study", bench=bench)
        app = create_app(study.db_url, secret="screenshots-" + "s" * 32)
        with serve(app) as base, sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_page(viewport={"width": WIDTH, "height": 900})
                page.set_default_timeout(15_000)
                page.goto(f"{base}/signin/{study.tokens['r1']}")
                page.get_by_test_id("signin-submit").click()
                page.wait_for_url(f"{base}/")

                # Validation: an answer, a confidence and the slider set; plausibility still open.
                page.get_by_test_id("continue-validation").click()
                page.get_by_test_id("answer-A").check()
                page.get_by_test_id("confidence-moderate").check()
                slider = page.get_by_test_id("proactivity-slider")
                slider.focus()
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
                page.get_by_test_id("unsafe-note-C").fill("Does not mention the allergy.")
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
