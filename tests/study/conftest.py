"""Fixtures of the study tests: a tiny bench and a seeded study database, each made once.

``seeded`` hands every test its own copy of the seeded SQLite file, so tests
stay independent without paying for argon2 hashes and study creation each time.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("alembic")
pytest.importorskip("argon2")
pytest.importorskip("itsdangerous")

from tests.study.helpers import SeededStudy, build_bench, seed_study


@pytest.fixture(scope="session")
def study_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-case synthetic bench (about 100 tasks), built once per session."""
    return build_bench(tmp_path_factory.mktemp("study-bench"))


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory, study_bench: Path) -> SeededStudy:
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
