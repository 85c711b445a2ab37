"""The local Airflow as a user runs it: start it with the README's script, trigger
``clickstream_daily`` for a real day through the REST API, poll until it succeeds, stop it, and
check that no process of it is left (the run itself: ``standalone_run`` in conftest).
"""

from __future__ import annotations

import socket

import pytest

from spark_jobs import tables as T
from spark_jobs.settings import PROJECT_DIR
from tests.dags.conftest import E2E_DAY
from tests.dags.online_retail_truth import day_truth
from tests.dags.standalone import session_processes

pytestmark = [pytest.mark.airflow, pytest.mark.e2e]


def test_trigger_a_day_through_the_rest_api_and_stop_cleanly(standalone_run, spark):
    run = standalone_run
    assert run.up.returncode == 0, run.up.stdout + run.up.stderr
    assert f"http://127.0.0.1:{run.port}" in run.up.stdout
    assert f"admin / {run.password}" in run.up.stdout
    assert run.error is None, run.error
    assert run.import_errors == 0
    assert run.state == "success", run.tasks
    assert set(run.tasks.values()) == {"success"}, run.tasks

    published = run.lake / "dws" / T.DWS_ACTIVE_USERS
    row = spark.read.format("delta").load(str(published)).where(f"dt = DATE'{E2E_DAY}'").first()
    assert row.events == day_truth(PROJECT_DIR / "data", E2E_DAY).events

    assert run.down.returncode == 0, run.down.stdout + run.down.stderr
    assert run.session_id and session_processes(run.session_id) == []
    assert not (run.home / "airflow.pid").exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", run.port)) != 0, "API port still open"
