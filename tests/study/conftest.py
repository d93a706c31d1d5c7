"""Fixtures of the study tests: a tiny bench and a seeded study database, each made once.

``seeded`` hands every test its own copy of the seeded SQLite file, so tests
stay independent without paying for argon2 hashes and study creation each time.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# The web app's fixtures need the [web] extra; the pure statistics tests in this
# folder (test_analyze*.py) do not, so the check is made when a fixture is used.
WEB_MODULES = ("fastapi", "alembic", "argon2", "itsdangerous")


# Without them, the web app's test modules are not even collected (they import it).
collect_ignore = (
    [
        "test_app.py",
        "test_create.py",
        "test_export.py",
        "test_study_postgres.py",
        "test_serve_cli.py",
        "test_analyze_app.py",
    ]
    if any(importlib.util.find_spec(m) is None for m in WEB_MODULES)
    else []
)


def _need_web() -> None:
    for module in WEB_MODULES:
        pytest.importorskip(module)


if TYPE_CHECKING:
    from tests.study.helpers import SeededStudy


@pytest.fixture(scope="session")
def study_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-case synthetic bench (about 100 tasks), built once per session."""
    _need_web()
    from tests.study.helpers import build_bench

    return build_bench(tmp_path_factory.mktemp("study-bench"))


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory, study_bench: Path) -> SeededStudy:
    _need_web()
    from tests.study.helpers import seed_study

    return seed_study(tmp_path_factory.mktemp("seeded"), bench=study_bench)


@pytest.fixture
def seeded(tmp_path: Path, seeded_template: SeededStudy) -> SeededStudy:
    """A fresh copy of the seeded SQLite database (admin, r1-r3, validation and comparison)."""
    source = Path(seeded_template.db_url.removeprefix("sqlite:///"))
    target = tmp_path / "study.db"
    shutil.copy(source, target)
    for suffix in ("-wal", "-shm"):  # normally gone once the seeding engine closed
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")
    return dataclasses.replace(seeded_template, db_url=f"sqlite:///{target}")
