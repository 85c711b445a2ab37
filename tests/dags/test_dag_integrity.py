"""DAG integrity: the DAG folder parses cleanly and cheaply, and every DAG is wired by the rules.

Parsing happens in a fresh interpreter that refuses any metadata-DB connection and any Variable or
Connection lookup, like Airflow's DAG processor expects of a DAG file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from spark_jobs import tables as T
from spark_jobs.settings import PROJECT_DIR
from tests.dags.conftest import DAGS_DIR, environment, load_dag

pytestmark = pytest.mark.airflow

DAG_IDS = {
    "clickstream_daily",
    "clickstream_maintenance",
    "clickstream_bi_publish",
    "clickstream_streaming_health",
}

_PARSE_IN_ISOLATION = r"""
import json, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

looked_up = []

@event.listens_for(Engine, "connect")
def _no_db(*args):
    looked_up.append("metadata DB connection")
    raise RuntimeError("metadata DB accessed while parsing")

def _refuse(what):
    def lookup(*args, **kwargs):
        looked_up.append(what)
        raise RuntimeError(f"{what} looked up while parsing")
    return staticmethod(lookup)

from airflow.sdk import BaseHook, Connection, Variable
Variable.get = _refuse("Variable")
Connection.get = _refuse("Connection")
BaseHook.get_connection = _refuse("Connection")

from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
folder = Path(sys.argv[1])
bag = BundleDagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
print(json.dumps({
    "import_errors": bag.import_errors,
    "dag_ids": sorted(bag.dags),
    "lookups": looked_up,
    "heavy_modules": [m for m in ("pyspark", "great_expectations", "delta") if m in sys.modules],
}))
"""


@pytest.fixture(scope="module")
def isolated_parse() -> dict:
    """Parse ``dags/`` in a fresh interpreter with DB, Variable and Connection access refused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "sqlite:////nonexistent-dir/airflow.db"
    result = subprocess.run(
        [sys.executable, "-c", _PARSE_IN_ISOLATION, str(DAGS_DIR)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def dags() -> dict:
    with environment({"LAKEHOUSE_LANDING": None, "LAKEHOUSE_TASK_RETRIES": None}):
        return {dag_id: load_dag(dag_id) for dag_id in DAG_IDS}


def test_dag_folder_has_no_import_errors(isolated_parse):
    assert isolated_parse["import_errors"] == {}
    assert set(isolated_parse["dag_ids"]) == DAG_IDS


def test_parsing_touches_no_db_connection_or_variable(isolated_parse):
    assert isolated_parse["lookups"] == []


def test_parsing_imports_no_pyspark_and_no_great_expectations(isolated_parse):
    assert isolated_parse["heavy_modules"] == []


def test_every_dag_has_tags_an_owner_retries_and_one_active_run(dags):
    for dag in dags.values():
        assert {"clickstream", "lakehouse"} <= set(dag.tags), dag.dag_id
        assert dag.max_active_runs == 1, dag.dag_id
        assert dag.catchup is False, dag.dag_id
        assert dag.default_args["owner"] == "data-platform"
        assert dag.default_args["retries"] >= 1
        assert dag.default_args["retry_exponential_backoff"] is True
        assert dag.on_failure_callback, dag.dag_id
        for task in dag.tasks:
            assert task.owner == "data-platform", task.task_id
            assert task.on_failure_callback, task.task_id
            if task.task_id.startswith(("build__", "maintain__", "ingest", "publish")):
                assert task.retries >= 1, task.task_id


def test_daily_data_interval_is_the_previous_utc_day(dags):
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dags["clickstream_daily"].timetable)
    first = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(
            earliest=dt.datetime(2011, 3, 27, tzinfo=dt.UTC), latest=None, catchup=True
        ),
    )
    # 2011-03-27 is a DST change in Europe; the interval stays a whole UTC day
    assert first.data_interval.start == dt.datetime(2011, 3, 27, tzinfo=dt.UTC)
    assert first.data_interval.end == dt.datetime(2011, 3, 28, tzinfo=dt.UTC)
    assert first.run_after == dt.datetime(2011, 3, 28, tzinfo=dt.UTC)
    manual = timetable.infer_manual_data_interval(
        run_after=dt.datetime(2011, 3, 28, 9, 30, tzinfo=dt.UTC)
    )
    assert (manual.start, manual.end) == (
        dt.datetime(2011, 3, 27, tzinfo=dt.UTC),
        dt.datetime(2011, 3, 28, tzinfo=dt.UTC),
    )


def render(dag, task, params: dict | None = None, day: dt.date = dt.date(2011, 1, 4)) -> list:
    """The task's rendered ``application_args`` for a run over ``day`` (or ``params``)."""
    from airflow.sdk.execution_time import macros

    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    context = {
        "params": {"start": None, "end": None, **(params or {})},
        "data_interval_start": start,
        "data_interval_end": start + dt.timedelta(days=1),
        "ds": day.isoformat(),
        "macros": macros,
        **dag.user_defined_macros,
    }
    return task.render_template(task.application_args, context, jinja_env=dag.get_template_env())


def test_every_build_task_runs_its_tables_job_with_the_run_dates_and_landing(dags):
    dag = dags["clickstream_daily"]
    landing = ["--landing", str(PROJECT_DIR / "landing" / "online_retail")]
    builds = {t.task_id: t for t in dag.tasks if t.task_id.startswith("build__")}
    assert set(builds) == {f"build__{name}" for name in T.DOWNSTREAM_BUILD_ORDER}
    for name in T.DOWNSTREAM_BUILD_ORDER:
        task = builds[f"build__{name}"]
        expected_file = PROJECT_DIR / "spark_jobs" / T.get_table(name).layer / f"{name}.py"
        assert task.application == str(expected_file)
        assert expected_file.is_file()
        assert render(dag, task) == [
            "--start",
            "2011-01-04",
            "--end",
            "2011-01-04",
            *landing,
            "--stage",
        ]
        ranged = render(dag, task, {"start": "2011-01-01", "end": "2011-01-31"})
        assert ranged == ["--start", "2011-01-01", "--end", "2011-01-31", *landing, "--stage"]


def test_ingest_and_check_tasks_get_the_run_dates(dags):
    dag = dags["clickstream_daily"]
    ingest = dag.get_task("ingest")
    assert ingest.application == str(PROJECT_DIR / "spark_jobs/ods/ods_clickstream_events_di.py")
    landing = str(PROJECT_DIR / "landing" / "online_retail")
    assert render(dag, ingest) == [
        "--landing",
        landing,
        "--start",
        "2011-01-04",
        "--end",
        "2011-01-04",
        "--stage",
    ]
    validate = str(PROJECT_DIR / "spark_jobs/quality/validate.py")
    for table in T.TABLES:
        check = dag.get_task(f"check__{table.name}")
        assert check.application == validate
        staged = {
            T.ODS_EVENTS: ["--staged"],
            T.ODS_REJECTED: ["--staged"],
            # the manifest's check publishes the whole ingest batch
            T.INGEST_MANIFEST: ["--staged", "--publish"],
        }.get(table.name, ["--landing", landing, "--staged", "--publish"])
        assert render(dag, check) == [
            "--table",
            table.name,
            "--start",
            "2011-01-04",
            "--end",
            "2011-01-04",
            *staged,
        ]


def test_every_registry_table_has_a_job_a_suite_ddl_and_a_test():
    for table in T.ALL_TABLES:
        job = PROJECT_DIR / table.job_path
        assert job.is_file(), job
        assert (PROJECT_DIR / "expectations" / f"{table.name}.json").is_file(), table.name
        for dialect in ("athena", "redshift"):
            assert (PROJECT_DIR / "sql" / dialect / "ddl" / f"{table.name}.sql").is_file()
        layer_dir = PROJECT_DIR / "tests" / job.parent.name
        if table.layer == "rt":  # one streaming job writes them all; its end-to-end test reads each
            assert table.name in (layer_dir / "test_stream_e2e.py").read_text(), table.name
        else:
            assert (layer_dir / f"test_{job.stem}.py").is_file(), f"no test for {table.job}"


def test_only_check_tasks_emit_table_assets_one_per_table(dags):
    emitters: dict[str, str] = {}
    for dag in dags.values():
        for task in dag.tasks:
            for asset in task.outlets:
                # the ingest batch (ODS, rejected, manifest) is published by the manifest's check
                publisher = T.INGEST_MANIFEST if asset.name in T.INGEST_BATCH else asset.name
                assert task.task_id == f"check__{publisher}", task.task_id
                assert asset.uri == f"lakehouse://{T.get_table(asset.name).layer}/{asset.name}"
                emitters[asset.name] = task.task_id
    assert set(emitters) == {t.name for t in T.TABLES}


def test_bi_publish_runs_on_the_dws_assets_that_only_checks_emit(dags):
    dag = dags["clickstream_bi_publish"]
    dws = {t.name for t in T.TABLES if t.layer == "dws"}

    scheduled = {a.name for a in dag.timetable.asset_condition.objects}
    assert scheduled == dws
    publish = dag.get_task("bi_publish")
    assert publish.application.endswith("spark_jobs/cli.py")
    assert publish.application_args[0] == "bi-publish"
    assert dag.get_task("publish_range").downstream_task_ids == {"bi_publish"}


def test_publish_range_takes_params_else_the_triggering_runs_days_with_the_lookback(wiring):
    utc = dt.UTC
    day = lambda d: dt.datetime.combine(d, dt.time(), utc)  # noqa: E731
    d1, d2 = dt.date(2024, 3, 1), dt.date(2024, 3, 2)

    assert wiring.publish_range({"start": "2024-01-01", "end": "2024-01-31"}, [], 30) == (
        "2024-01-01",
        "2024-01-31",
    )
    # two daily runs (intervals [d1, d2) and [d2, d3)): their days, 30 days back from the first
    runs = [(day(d1), day(d2), {}), (day(d2), day(d2 + dt.timedelta(days=1)), None)]
    assert wiring.publish_range({}, runs, 30) == ("2024-01-31", "2024-03-02")
    # a range run of the daily DAG carries its days in conf
    assert wiring.publish_range(
        None, [(None, None, {"start": "2024-02-10", "end": "2024-02-12"})], 0
    ) == (
        "2024-02-10",
        "2024-02-12",
    )
    with pytest.raises(ValueError, match="no days to publish"):
        wiring.publish_range({}, [], 30)


def test_failure_alert_names_the_table_and_the_day(wiring):
    ti = SimpleNamespace(
        dag_id="clickstream_daily", task_id="check__dws_conversion_1d", try_number=1
    )
    run = SimpleNamespace(run_id="scheduled__2011-01-04")
    text = wiring.task_failure_alert(
        {
            "task_instance": ti,
            "dag_run": run,
            "params": {"start": None, "end": None},
            "data_interval_start": dt.datetime(2011, 1, 4, tzinfo=dt.UTC),
            "data_interval_end": dt.datetime(2011, 1, 5, tzinfo=dt.UTC),
            "exception": RuntimeError("expectation failed"),
        }
    )
    assert "table dws_conversion_1d FAILED for day 2011-01-04" in text
    assert "expectation failed" in text
    ranged = wiring.task_failure_alert(
        {"task_instance": ti, "params": {"start": "2011-01-01", "end": "2011-01-09"}}
    )
    assert "FAILED for days 2011-01-01..2011-01-09" in ranged
    dag_text = wiring.dag_failure_alert(
        {
            "dag_run": SimpleNamespace(
                dag_id="clickstream_daily",
                run_id="r1",
                conf={},
                data_interval_start=dt.datetime(2011, 1, 4, tzinfo=dt.UTC),
                data_interval_end=dt.datetime(2011, 1, 5, tzinfo=dt.UTC),
            ),
            "reason": "task_failure",
        }
    )
    assert dag_text == "clickstream_daily: run r1 FAILED for day 2011-01-04: task_failure"
