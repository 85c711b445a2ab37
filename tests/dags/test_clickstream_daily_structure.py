"""Structure of ``clickstream_daily``: the edges (ods -> dwd -> dws, build -> check) and sensors."""

from __future__ import annotations

import pytest

from tests.dags.conftest import environment, load_dag
from tests.dags.test_dag_integrity import render

pytestmark = pytest.mark.airflow

ODS_CHECKS = (
    "check__ods_clickstream_events_di",
    "check__ods_clickstream_rejected_di",
    "check__etl_ingest_manifest",
)

# written out by hand from the registry's upstreams (not derived from the DAG)
EXPECTED_EDGES = {
    ("wait_for_raw_objects", "ingest"),
    *{("ingest", check) for check in ODS_CHECKS},
    # the manifest's check publishes the staged batch: after the two other ODS checks
    ("check__ods_clickstream_events_di", "check__etl_ingest_manifest"),
    ("check__ods_clickstream_rejected_di", "check__etl_ingest_manifest"),
    ("check__etl_ingest_manifest", "build__dwd_clickstream_events_di"),
    ("build__dwd_clickstream_events_di", "check__dwd_clickstream_events_di"),
    ("check__dwd_clickstream_events_di", "build__dwd_clickstream_sessions_di"),
    ("build__dwd_clickstream_sessions_di", "check__dwd_clickstream_sessions_di"),
    ("check__dwd_clickstream_events_di", "build__dws_active_users_1d"),
    ("build__dws_active_users_1d", "check__dws_active_users_1d"),
    ("check__dwd_clickstream_sessions_di", "build__dws_conversion_1d"),
    ("build__dws_conversion_1d", "check__dws_conversion_1d"),
    ("check__dwd_clickstream_events_di", "build__dws_category_1d"),
    ("build__dws_category_1d", "check__dws_category_1d"),
    ("check__dwd_clickstream_events_di", "build__dws_retention_1d"),
    ("build__dws_retention_1d", "check__dws_retention_1d"),
    ("check__dws_active_users_1d", "publish_report"),
    ("check__dws_conversion_1d", "publish_report"),
    ("check__dws_category_1d", "publish_report"),
    ("check__dws_retention_1d", "publish_report"),
}


def _daily(**env):
    with environment({"LAKEHOUSE_LANDING": None, "LAKEHOUSE_LANDING_LAYOUT": None, **env}):
        return load_dag("clickstream_daily")


@pytest.fixture(scope="module")
def dag():
    return _daily()


def test_edges_are_exactly_the_layer_order(dag):
    edges = {(t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids}
    assert edges == EXPECTED_EDGES


def test_no_dwd_or_dws_task_can_start_before_every_ods_check(dag):
    for task in dag.tasks:
        if task.task_id.startswith(("build__dw", "check__dw", "publish")):
            assert set(ODS_CHECKS) <= task.get_flat_relative_ids(upstream=True), task.task_id


def test_a_day_without_objects_still_runs_ingest_and_every_build(dag):
    # the sensor soft-fails (skipped) after its timeout; ingest runs unless something failed,
    # and every task after it has the default all_success, which a skipped sensor no longer reaches
    assert dag.get_task("wait_for_raw_objects").soft_fail
    assert dag.get_task("ingest").trigger_rule == "none_failed"
    for task in dag.tasks:
        if task.task_id not in ("wait_for_raw_objects", "ingest"):
            assert task.trigger_rule == "all_success", task.task_id
            assert "wait_for_raw_objects" not in task.upstream_task_ids, task.task_id


def test_local_landing_gets_a_deferrable_file_sensor_on_the_days_objects(dag, tmp_path):
    from airflow.providers.standard.sensors.filesystem import FileSensor

    sensor = dag.get_task("wait_for_raw_objects")
    assert isinstance(sensor, FileSensor)
    assert sensor.deferrable and sensor.soft_fail
    landing = tmp_path / "landing"
    local = _daily(LAKEHOUSE_LANDING=str(landing))
    pattern = render_field(local, "wait_for_raw_objects", "filepath")
    assert pattern == f"{landing}/2011/01/04/*/*"
    kafka = _daily(LAKEHOUSE_LANDING=str(landing), LAKEHOUSE_LANDING_LAYOUT="kafka")
    pattern = render_field(kafka, "wait_for_raw_objects", "filepath")
    assert pattern == f"{landing}/topics/*/year=2011/month=01/day=04/*/*"
    ranged = render_field(local, "wait_for_raw_objects", "filepath", {"end": "2011-02-06"})
    assert ranged == f"{landing}/2011/02/06/*/*"


def test_s3_landing_gets_an_s3_sensor_and_the_same_uri_for_ingest():
    import importlib.util

    from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

    dag = _daily(LAKEHOUSE_LANDING="s3://landing/online_retail")
    sensor = dag.get_task("wait_for_raw_objects")
    assert isinstance(sensor, S3KeySensor)
    assert sensor.wildcard_match and sensor.soft_fail
    # deferred when the triggerer can run the async S3 client, else rescheduled between pokes
    if importlib.util.find_spec("aiobotocore"):
        assert sensor.deferrable
    else:
        assert not sensor.deferrable and sensor.mode == "reschedule"
    assert render_field(dag, "wait_for_raw_objects", "bucket_key") == (
        "s3://landing/online_retail/2011/01/04/*/*"
    )
    assert render(dag, dag.get_task("ingest"))[:2] == ["--landing", "s3://landing/online_retail"]


def render_field(dag, task_id: str, field: str, params: dict | None = None) -> str:
    """A templated sensor field rendered for the run of 2011-01-04 (or for ``params``)."""
    import datetime as dt

    from airflow.sdk.execution_time import macros

    task = dag.get_task(task_id)
    start = dt.datetime(2011, 1, 4, tzinfo=dt.UTC)
    context = {
        "params": {"start": None, "end": None, **(params or {})},
        "data_interval_start": start,
        "data_interval_end": start + dt.timedelta(days=1),
        "macros": macros,
        **dag.user_defined_macros,
    }
    return task.render_template(getattr(task, field), context, jinja_env=dag.get_template_env())


def test_backfill_creates_one_run_per_day_with_that_days_interval(airflow_db):
    """``airflow backfill create`` over three days plans three runs, one per data interval."""
    import os
    import re
    import subprocess

    from tests.dags.conftest import VENV_BIN

    env = {**os.environ, "LAKEHOUSE_LANDING": "", "LAKEHOUSE_LANDING_LAYOUT": ""}
    airflow = str(VENV_BIN / "airflow")
    subprocess.run([airflow, "dags", "reserialize"], check=True, env=env, capture_output=True)
    dry_run = subprocess.run(
        [airflow, "backfill", "create", "--dag-id", "clickstream_daily"]
        + ["--from-date", "2010-12-20", "--to-date", "2010-12-22", "--dry-run"],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    planned = re.findall(r"^\|\s*(\d{4}-\d{2}-\d{2}) 00:00:00", dry_run.stdout, re.MULTILINE)
    assert planned == ["2010-12-20", "2010-12-21", "2010-12-22"], dry_run.stdout
