"""End to end: ``clickstream_daily`` on one real Online Retail day.

The lake of the session's one local-Airflow run of the day (``standalone_run``: the README's
Airflow, REST trigger, every task a real ``spark-submit``) is checked against numbers counted
from the source CSV; then ``dag.test()`` reruns the day (nothing may change) and corrupted staged
data proves the gates: a failed check publishes nothing and stops everything after it.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from spark_jobs import tables as T
from spark_jobs.settings import PROJECT_DIR, Settings
from tests.dags.conftest import E2E_DAY, environment, job_environment, load_dag
from tests.dags.online_retail_truth import day_truth

pytestmark = [pytest.mark.airflow, pytest.mark.e2e, pytest.mark.spark]

DAY = E2E_DAY
APP = "online_retail"
DATA_DIR = PROJECT_DIR / "data"


def run_day(dag, day: dt.date, **kwargs) -> SimpleNamespace:
    """``dag.test()`` for the data interval ``[day, day + 1)``; returns run and task states.

    A manual run with logical date X processes the last complete interval before X, so the run
    for ``day`` has logical date ``day + 1`` at midnight UTC.
    """
    from airflow.models import DagRun, TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    next_midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    run_id = dag.test(logical_date=next_midnight, **kwargs).run_id
    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == run_id))
        tis = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run_id
            )
        ).all()
        return SimpleNamespace(
            state=str(run.state),
            interval_start=run.data_interval_start,
            tasks={ti.task_id: str(ti.state) for ti in tis},
        )


def table_path(lake, table: str, staged: bool = False) -> str:
    from spark_jobs.common.delta_io import table_path as path_of

    return path_of(Settings(lakehouse_root=str(lake)), table, staged)


def snapshot(spark, lake) -> dict[str, tuple[int, list[str]]]:
    """Every table's Delta version and its rows as sorted JSON lines."""
    from delta.tables import DeltaTable

    state = {}
    for table in T.TABLES:
        path = table_path(lake, table.name)
        version = DeltaTable.forPath(spark, path).history(1).first()["version"]
        rows = sorted(spark.read.format("delta").load(path).toJSON().collect())
        state[table.name] = (version, rows)
    return state


def dws_row(spark, lake, table: str, **keys):
    df = spark.read.format("delta").load(table_path(lake, table))
    rows = df.where(df.dt == DAY).collect()
    rows = [r for r in rows if all(r[k] == v for k, v in keys.items())]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture(scope="module")
def daily(standalone_run, airflow_db, spark_conf_dir):
    """The lake after the local Airflow's successful run of :data:`DAY`, and the DAG parsed for
    ``dag.test()`` reruns on it."""
    run = standalone_run
    assert run.error is None and run.state == "success", (run.error, run.tasks)
    with environment(job_environment(run.lake, run.landing, spark_conf_dir)):
        dag = load_dag("clickstream_daily")
        yield SimpleNamespace(dag=dag, lake=run.lake, landing=run.landing, first=run)


def test_one_day_run_succeeds_with_independently_computed_dws_values(daily, spark):
    assert set(daily.first.tasks.values()) == {"success"}, daily.first.tasks
    assert len(daily.first.tasks) == 2 + 3 + 2 * len(T.DOWNSTREAM_BUILD_ORDER) + 1

    truth = day_truth(DATA_DIR, DAY)
    users = dws_row(spark, daily.lake, T.DWS_ACTIVE_USERS, app_id=APP)
    assert (users.events, users.dau, users.new_users) == (truth.events, truth.users, truth.users)
    # the lake holds only this day, so the rolling windows see exactly its users
    assert (users.wau, users.mau) == (truth.users, truth.users)

    conversion = dws_row(spark, daily.lake, T.DWS_CONVERSION, app_id=APP)
    assert conversion.sessions == truth.sessions
    assert conversion.sessions_with_purchase == truth.sessions_with_purchase
    # Online Retail has invoices only: no product view, so the ordered funnel stays empty
    assert (conversion.product_view_sessions, conversion.purchase_sessions) == (0, 0)
    assert float(conversion.session_conversion_rate) == pytest.approx(
        truth.sessions_with_purchase / truth.sessions
    )

    category = dws_row(spark, daily.lake, T.DWS_CATEGORY, app_id=APP, category="unknown")
    assert (category.purchases, category.revenue) == (truth.purchases, truth.revenue)
    assert category.sessions == truth.sessions

    # the day's only cell: day 0 of its own cohort, every user of the day first seen on it
    retention = dws_row(spark, daily.lake, T.DWS_RETENTION, app_id=APP)
    assert (retention.cohort_dt, retention.day_n, retention.retention_rate) == (DAY, 0, 1.0)
    assert (retention.cohort_users, retention.retained_users) == (truth.users, truth.users)

    assert (daily.lake / "reports" / "index.html").is_file()


def test_second_run_of_the_same_day_changes_nothing(daily, spark):
    """The sensor, the ingest and the ingest batch's gate (its publish included) really run
    again; the DWD and DWS builds and checks and the report are taken as done (thirteen more
    ``spark-submit``s, about ten minutes on 2 cores: their reruns are proved idempotent in-process,
    tests/test_pipeline_e2e.py and tests/test_delivery.py, and the gates by the tests below)."""
    before = snapshot(spark, daily.lake)
    second = run_day(
        daily.dag, DAY, mark_success_pattern=r"(build|check)__dw[ds]_.*|publish_report"
    )
    after = snapshot(spark, daily.lake)

    # a manual run with logical date DAY + 1 processes the interval [DAY, DAY + 1)
    assert second.interval_start == dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    assert second.state == "success", second.tasks
    for table in T.TABLES:
        assert after[table.name][1] == before[table.name][1], f"{table.name} changed"
    # the raw objects are in the manifest already: the ingest wrote nothing at all
    for table in (T.ODS_EVENTS, T.ODS_REJECTED, T.INGEST_MANIFEST):
        assert after[table][0] == before[table][0], f"{table} got a new Delta version"


def test_a_failed_check_publishes_nothing_and_stops_everything_downstream(daily, spark):
    """A corrupted staged partition (a duplicated event) fails its check: not published."""
    staged = table_path(daily.lake, T.DWD_EVENTS, staged=True)
    one_row = spark.read.format("delta").load(staged).where(f"dt = DATE'{DAY}'").limit(1)
    one_row.write.format("delta").mode("append").save(staged)  # same event_id twice
    before = snapshot(spark, daily.lake)

    # Everything up to the DWD events build is taken as done (its output is the corrupted
    # staging twin); the check and all tasks after it really run.
    done = r"wait_for_raw_objects|ingest|check__(ods|etl)_.*|build__dwd_clickstream_events_di"
    run = run_day(daily.dag, DAY, mark_success_pattern=done)
    after = snapshot(spark, daily.lake)

    assert run.state == "failed"
    assert run.tasks["check__dwd_clickstream_events_di"] == "failed"
    downstream = [t for t in run.tasks if t.startswith(("build__dws", "check__dws"))]
    downstream += [
        "build__dwd_clickstream_sessions_di",
        "check__dwd_clickstream_sessions_di",
        "publish_report",
    ]
    assert {run.tasks[t] for t in downstream} == {"upstream_failed"}
    assert after == before  # published tables: same versions, same rows


def test_a_failed_ods_check_holds_the_whole_ingest_batch_back(daily, spark):
    """A redelivered copy of one of the day's objects arrives under a new name; its staged batch
    gets a duplicated raw-record key. The ODS check fails: nothing of the batch is published
    (the object stays unknown to the manifest, so the day's rerun ingests it again) and nothing
    downstream runs."""
    import shutil
    import uuid

    from spark_jobs.ods.ods_clickstream_events_di import ingest

    original = sorted(daily.landing.rglob("*.gz"))[0]
    stem = original.name.removesuffix(".gz")
    copy = original.with_name(f"{stem[: -len(str(uuid.uuid4()))]}{uuid.uuid4()}.gz")
    shutil.copy(original, copy)
    settings = Settings(lakehouse_root=str(daily.lake), spark_master="local[2]")
    staged = ingest(spark, settings, str(daily.landing), DAY, DAY, stage=True)
    assert staged.objects == 1
    ods = table_path(daily.lake, T.ODS_EVENTS, staged=True)
    spark.read.format("delta").load(ods).limit(1).write.format("delta").mode("append").save(ods)
    before = snapshot(spark, daily.lake)

    # the ingest is taken as done (its output is the corrupted staged batch); the checks run
    run = run_day(daily.dag, DAY, mark_success_pattern=r"wait_for_raw_objects|ingest")
    after = snapshot(spark, daily.lake)

    assert run.state == "failed"
    assert run.tasks["check__ods_clickstream_events_di"] == "failed"
    assert run.tasks["check__ods_clickstream_rejected_di"] == "success"
    not_run = [t for t in run.tasks if t.startswith(("build__", "check__dw", "check__etl"))]
    assert {run.tasks[t] for t in [*not_run, "publish_report"]} == {"upstream_failed"}
    assert after == before
    manifest = spark.read.format("delta").load(table_path(daily.lake, T.INGEST_MANIFEST))
    assert manifest.where(manifest.etl_source_object.endswith(copy.name)).count() == 0
