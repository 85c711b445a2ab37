"""Shared fixtures: one local Spark + Delta session for the suite, a fresh lake per test."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from spark_jobs.settings import PROJECT_DIR, Settings

DATA_DIR = Path(os.environ.get("LAKEHOUSE_DATA_DIR", PROJECT_DIR / "data"))
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def spark():
    """local[2], 2 shuffle partitions, UI off, Delta on, UTC; stopped at the end of the run."""
    from spark_jobs.common.spark import get_spark

    session = get_spark("lakehouse-tests", Settings(spark_master="local[2]", shuffle_partitions=2))
    yield session
    session.stop()


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings whose lakehouse root is a fresh temporary folder (one lake per test)."""
    return replace(
        Settings(spark_master="local[2]", shuffle_partitions=2),
        lakehouse_root=str(tmp_path / "lake"),
        data_dir=str(DATA_DIR),
    )
