"""Shared fixtures: one local Spark + Delta session per test process, a fresh lake per test, a
moto server for the AWS APIs; and how pytest-xdist spreads the suite over the machine's cores.

``make test`` (what CI runs; ``TEST_WORKERS=auto``, i.e. ``pytest -n auto``) runs pytest-xdist
workers, one per core, at most 4; ``make test TEST_WORKERS=0`` is one process. Each worker is a
test process with its own Spark session and its own servers (free ports, private state folders).

- :func:`pytest_xdist_make_scheduler` hands out groups of tests (:func:`scheduling_group`): the
  tests that share a module- or session-scoped fixture (a real-data lake, the local Airflow run,
  a Kafka broker run, the BI endpoints) stay in one group on one worker, so the fixture is built
  once. (xdist's ``--dist loadgroup`` marks do not reach pytest 9's node ids.)
- :func:`pytest_collection_modifyitems` puts the long groups first on xdist workers
  (``GROUP_WEIGHTS``), so the long Airflow run starts at once while the other workers take the
  rest; one process keeps the plain collection order.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from spark_jobs.settings import PROJECT_DIR, Settings

#: test files whose tests share a fixture wider than one file: one xdist group per folder
SHARED_FOLDER_GROUPS = {"tests/serving"}
#: files whose tests share no module fixture and are each long: one xdist group per test
SPLIT_FILES = {"tests/test_delivery.py", "tests/test_pipeline_e2e.py"}
#: the Airflow tests on the one local-Airflow run (``standalone_run``): one group
STANDALONE_FILES = {"tests/dags/test_airflow_ui.py", "tests/dags/test_clickstream_daily_e2e.py"}
_DELIVERY, _E2E = "tests/test_delivery.py::", "tests/test_pipeline_e2e.py::"
#: minutes of the long groups on 2 workers on 2 cores (fresh-clone ``make test``, 2026-12-03), to
#: schedule them first, longest first: a long group handed out last keeps one worker busy while
#: the other idles (the three weeks across DST, unweighted, ran alone for its last 6 minutes)
GROUP_WEIGHTS = {
    "airflow-standalone": 27.5,
    "tests/serving": 9.5,
    f"{_DELIVERY}test_any_schedule_of_runs_ends_where_one_full_range_run_ends": 8,
    f"{_E2E}test_online_retail_day_by_day_equals_one_range_run_and_the_reference": 7,
    f"{_DELIVERY}test_a_run_rewrites_only_its_landings_apps_and_every_day_of_their_range": 3.4,
    "tests/streaming/test_archive_pipeline.py": 3,
    f"{_E2E}test_late_and_duplicate_objects_land_in_their_own_day": 3,
    "tests/test_cli.py": 3,
    "tests/streaming/test_stream_restart.py": 2.5,
    f"{_DELIVERY}test_an_ingest_killed_between_any_two_steps_ends_like_an_uninterrupted_one": 2.3,
    "tests/common/test_first_seen.py": 2.2,
    f"{_DELIVERY}test_an_object_written_into_a_processed_folder_is_ingested_by_the_next_run": 2.1,
    "tests/streaming/test_stream_e2e.py": 1.5,
    "tests/test_report.py": 1,
}


def scheduling_group(nodeid: str) -> str:
    """The group of a test (``nodeid`` relative to the project root, e.g.
    ``tests/test_cli.py::test_bad_arguments_exit_with_code_2``): by default its file."""
    path = nodeid.split("::", 1)[0]
    if path in STANDALONE_FILES:
        return "airflow-standalone"
    if path in SPLIT_FILES:
        return nodeid.split("[")[0]  # the parametrised cases of one test stay together
    folder = path.rsplit("/", 1)[0]
    return folder if folder in SHARED_FOLDER_GROUPS else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's scope scheduling with :func:`scheduling_group` as the scope: a worker gets a
    whole group, the next one when it is nearly done, in collection order."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scheduling_group(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """On xdist workers, order the groups longest first (``GROUP_WEIGHTS``; stable otherwise, so
    every worker collects the same order)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    groups = {item.nodeid: scheduling_group(item.nodeid) for item in items}
    first_seen = {}
    for index, item in enumerate(items):
        first_seen.setdefault(groups[item.nodeid], index)
    items.sort(
        key=lambda i: (-GROUP_WEIGHTS.get(groups[i.nodeid], 0), first_seen[groups[i.nodeid]])
    )


DATA_DIR = Path(os.environ.get("LAKEHOUSE_DATA_DIR", PROJECT_DIR / "data"))
FIXTURES = Path(__file__).parent / "fixtures"
#: heap of every driver JVM the tests start (the session, submitted jobs, servers): several run
#: at once under xdist, so not the default half of the machine
TEST_DRIVER_MEMORY = "3g"
#: garbage collector of the test session's JVM and of the Airflow tasks' ``spark-submit``s:
#: the Serial GC has no concurrent threads competing with the tests for the 2 cores (a check
#: task: 31-37 CPU-seconds against 37-39 with G1; the apps-only rewrite test 131 s against
#: 150 s, 2026-12-06)
TEST_GC = "-XX:+UseSerialGC"


@pytest.fixture(scope="session")
def spark():
    """local[2], 2 shuffle partitions, a 3 GiB driver with the Serial GC, UI off, Delta on, UTC,
    no code generation (no whole-stage codegen, expressions interpreted); stopped at the end of
    the test process (one session per xdist worker).

    On test-sized data, compiling Java code for every new query shape costs more than it saves:
    a pipeline test (``test_late_and_duplicate_objects_land_in_their_own_day``, 2 idle cores)
    took 144 s with whole-stage codegen and 123 s without. Interpreted expressions
    (``spark.sql.codegen.factoryMode=NO_CODEGEN``, one of Spark's own test modes) remove the
    rest: the executors compiled a projection or predicate with Janino in a third of a small
    run's JVM samples; without it a small ``run_pipeline`` takes 18-27 instead of 23-38
    JVM CPU-seconds and the merged day-by-day test 215 s instead of 245 s alone (2026-12-06).
    The jobs that the Airflow and CLI tests run with ``spark-submit``, and the streaming job
    that the streaming tests start as a process of its own, keep Spark's default (codegen on),
    so both paths stay tested.
    """
    from spark_jobs.common.spark import get_spark

    small = Settings(
        spark_master="local[2]",
        shuffle_partitions=2,
        driver_memory=TEST_DRIVER_MEMORY,
        driver_java_options=TEST_GC,
    )
    session = get_spark("lakehouse-tests", small)
    session.conf.set("spark.sql.codegen.wholeStage", "false")
    session.conf.set("spark.sql.codegen.factoryMode", "NO_CODEGEN")
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
