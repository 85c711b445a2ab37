"""The local Airflow as a user runs it (``scripts/airflow_up.sh`` / ``airflow_down.sh``), driven
through its REST API: start it, trigger ``clickstream_daily`` for one day, wait for the run, stop
it. The DAG tests share one such run (a whole run costs minutes of ``spark-submit`` on 2 cores).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from spark_jobs.settings import PROJECT_DIR
from tests.ports import free_port

RUN_TIMEOUT_SEC = 60 * 60


class Api:
    """Minimal client of the Airflow REST API (token from the simple auth manager)."""

    def __init__(self, port: int, password: str):
        self.base = f"http://127.0.0.1:{port}"
        body = self.call("POST", "/auth/token", {"username": "admin", "password": password})
        self.token = body["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """One API call; a GET that times out (a busy machine) is tried again, up to 3 times."""
        for attempt in range(3):
            try:
                return self._call(method, path, body)
            except (TimeoutError, urllib.error.URLError) as exc:
                timed_out = isinstance(exc, TimeoutError) or isinstance(
                    getattr(exc, "reason", None), TimeoutError
                )
                if method != "GET" or not timed_out or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"}
            | ({"Authorization": f"Bearer {self.token}"} if hasattr(self, "token") else {}),
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)


def session_processes(sid: str) -> list[str]:
    """The processes of session ``sid`` (``ps -s``), as ``"pid cmd"`` lines."""
    out = subprocess.run(["ps", "-o", "pid=,cmd=", "-s", sid], capture_output=True, text=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


@dataclass
class StandaloneRun:
    """What happened when the local Airflow ran ``clickstream_daily`` for one day."""

    lake: Path
    landing: Path
    home: Path
    port: int
    up: subprocess.CompletedProcess | None = None
    down: subprocess.CompletedProcess | None = None
    password: str | None = None
    session_id: str | None = None
    import_errors: int | None = None
    state: str | None = None
    tasks: dict[str, str] = field(default_factory=dict)
    error: str | None = None  # why the run could not be made (asserted by the tests)


def run_day_in_standalone_airflow(root: Path, day: dt.date, spark_conf: str) -> StandaloneRun:
    """Replay Online Retail ``day`` under ``root``, start the local Airflow, unpause and trigger
    ``clickstream_daily`` over ``[day, day]`` (params), wait for the run, stop Airflow.

    ``LAKEHOUSE_START_DATE`` lies in the future, so unpausing creates no scheduled run: the
    triggered run is the only one. Never raises for a failed step: the tests assert on the result.
    """
    from spark_jobs.landing.replay import replay
    from tests.dags.conftest import job_environment

    run = StandaloneRun(root / "lake", root / "landing", root / "airflow_home", free_port())
    replay("online_retail", str(run.landing), start=day, end=day, data_dir=PROJECT_DIR / "data")
    env = {
        **os.environ,
        **job_environment(run.lake, run.landing, spark_conf),
        "AIRFLOW_HOME": str(run.home),
        "AIRFLOW_PORT": str(run.port),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{run.home}/airflow.db",
        "LAKEHOUSE_START_DATE": "2100-01-01",
    }
    script = PROJECT_DIR / "scripts"
    run.up = subprocess.run(
        [str(script / "airflow_up.sh")], capture_output=True, text=True, env=env, timeout=600
    )
    pidfile = run.home / "airflow.pid"
    run.session_id = pidfile.read_text().strip() if pidfile.exists() else None
    try:
        if run.up.returncode != 0:
            run.error = "airflow_up.sh failed"
            return run
        generated = run.home / "simple_auth_manager_passwords.json.generated"
        run.password = json.loads(generated.read_text())["admin"]
        api = Api(run.port, run.password)
        deadline = time.monotonic() + 180
        while True:  # the DAG processor's first parse
            try:
                api.call("GET", "/api/v2/dags/clickstream_daily")
                break
            except urllib.error.HTTPError:
                if time.monotonic() > deadline:
                    run.error = "clickstream_daily never appeared"
                    return run
                time.sleep(3)
        run.import_errors = api.call("GET", "/api/v2/importErrors")["total_entries"]
        api.call("PATCH", "/api/v2/dags/clickstream_daily", {"is_paused": False})
        triggered = api.call(
            "POST",
            "/api/v2/dags/clickstream_daily/dagRuns",
            {"logical_date": None, "conf": {"start": day.isoformat(), "end": day.isoformat()}},
        )
        path = f"/api/v2/dags/clickstream_daily/dagRuns/{triggered['dag_run_id']}"
        deadline = time.monotonic() + RUN_TIMEOUT_SEC
        while (state := api.call("GET", path)["state"]) not in ("success", "failed"):
            if time.monotonic() > deadline:
                run.error = f"run still {state} after {RUN_TIMEOUT_SEC} s"
                return run
            time.sleep(5)
        run.state = state
        instances = api.call("GET", path + "/taskInstances")["task_instances"]
        run.tasks = {t["task_id"]: t["state"] for t in instances}
        return run
    except Exception as exc:  # an API call that failed: the tests report it
        run.error = f"{type(exc).__name__}: {exc}"
        return run
    finally:
        run.down = subprocess.run(
            [str(script / "airflow_down.sh")], capture_output=True, text=True, env=env, timeout=300
        )
