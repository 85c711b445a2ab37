"""Shared fixtures: one local Spark + Delta session for the suite, a fresh lake per test, a moto
server for the AWS APIs."""

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


@pytest.fixture
def moto_endpoint(monkeypatch):
    """A real moto server (HTTP on 127.0.0.1, a free port) with fresh state; the usual AWS
    variables point boto3 at it (test credentials, us-east-1). Yields its URL.

    moto keeps its backends per process, so the server is reset when it starts.
    """
    import requests
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield endpoint
    server.stop()
