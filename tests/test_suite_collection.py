"""The whole suite really runs: no test folder is skipped by pytest's collection rules.

pytest's default ``norecursedirs`` skips folders named ``build``; ``tests/build/`` (the
benchmark builder's tests) went unrun by ``make test`` and CI until pyproject.toml set its
own list. Checked only when the session collects the whole ``tests`` folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def test_every_test_folder_is_collected(request: pytest.FixtureRequest) -> None:
    args = [Path(a).resolve() for a in request.config.args]
    if args and args != [TESTS]:
        pytest.skip("only a part of the suite was asked for")
    collected = request.config.behaviorsft_collected_folders  # type: ignore[attr-defined]
    folders = {p.parent for p in TESTS.rglob("test_*.py")}
    missing = sorted(str(f.relative_to(TESTS)) for f in folders - collected)
    assert not missing, f"test folders pytest did not collect: {missing}"
