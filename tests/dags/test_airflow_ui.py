"""The local Airflow as a user runs it: start it with the README's script, trigger
``clickstream_daily`` for a real day through the REST API, poll until it succeeds, stop it, and
check that no process of it is left.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from spark_jobs import tables as T
from spark_jobs.settings import PROJECT_DIR
from tests.dags.conftest import job_environment
from tests.dags.online_retail_truth import day_truth

pytestmark = [pytest.mark.airflow, pytest.mark.e2e]

DAY = dt.date(2011, 2, 6)  # a Sunday with 279 invoice lines
RUN_TIMEOUT_SEC = 60 * 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """Minimal client of the Airflow REST API (token from the simple auth manager)."""

    def __init__(self, port: int, password: str):
        self.base = f"http://127.0.0.1:{port}"
        body = self.call("POST", "/auth/token", {"username": "admin", "password": password})
        self.token = body["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if hasattr(self, "token") else {}),
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


def session_processes(sid: str) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=,cmd=", "-s", sid], capture_output=True, text=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def test_trigger_a_day_through_the_rest_api_and_stop_cleanly(tmp_path, spark_conf_dir, spark):
    from spark_jobs.landing.replay import replay

    landing, lake, home = tmp_path / "landing", tmp_path / "lake", tmp_path / "airflow_home"
    replay("online_retail", str(landing), start=DAY, end=DAY, data_dir=PROJECT_DIR / "data")
    port = free_port()
    env = {
        **os.environ,
        **job_environment(lake, landing, spark_conf_dir),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_PORT": str(port),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        # the scheduled run for "yesterday" (no raw objects) gives up quickly and is skipped
        "LAKEHOUSE_LANDING_WAIT_SEC": "20",
    }
    up = subprocess.run(
        [str(PROJECT_DIR / "scripts" / "airflow_up.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    sid = (home / "airflow.pid").read_text().strip() if (home / "airflow.pid").exists() else None
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"http://127.0.0.1:{port}" in up.stdout
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())[
            "admin"
        ]
        assert f"admin / {password}" in up.stdout
        api = Api(port, password)
        deadline = time.monotonic() + 180
        while True:  # the DAG processor's first parse
            try:
                api.call("GET", "/api/v2/dags/clickstream_daily")
                break
            except urllib.error.HTTPError:
                assert time.monotonic() < deadline, "clickstream_daily never appeared"
                time.sleep(3)
        assert api.call("GET", "/api/v2/importErrors")["total_entries"] == 0
        api.call("PATCH", "/api/v2/dags/clickstream_daily", {"is_paused": False})
        run = api.call(
            "POST",
            "/api/v2/dags/clickstream_daily/dagRuns",
            {"logical_date": None, "conf": {"start": DAY.isoformat(), "end": DAY.isoformat()}},
        )
        path = f"/api/v2/dags/clickstream_daily/dagRuns/{run['dag_run_id']}"
        deadline = time.monotonic() + RUN_TIMEOUT_SEC
        while (state := api.call("GET", path)["state"]) not in ("success", "failed"):
            assert time.monotonic() < deadline, f"run still {state}"
            time.sleep(10)
        tasks = api.call("GET", path + "/taskInstances")["task_instances"]
        assert state == "success", {t["task_id"]: t["state"] for t in tasks}
        assert {t["state"] for t in tasks} == {"success"}

        published = lake / "dws" / T.DWS_ACTIVE_USERS
        row = spark.read.format("delta").load(str(published)).where(f"dt = DATE'{DAY}'").first()
        assert row.events == day_truth(PROJECT_DIR / "data", DAY).events
    finally:
        down = subprocess.run(
            [str(PROJECT_DIR / "scripts" / "airflow_down.sh")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert down.returncode == 0, down.stdout + down.stderr
    assert sid and session_processes(sid) == []
    assert not Path(home / "airflow.pid").exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "API port still open"
