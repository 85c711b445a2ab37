"""End to end: ``clickstream_daily`` through ``dag.test()`` on one real Online Retail day.

One module-scoped temporary lake: the day is replayed as raw Firehose objects, the DAG runs once
(every task a real ``spark-submit``), then the tests check the DWS values against numbers counted
from the source CSV, rerun the day (nothing may change), and corrupt partitions to prove the gates.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from spark_jobs import tables as T
from spark_jobs.settings import PROJECT_DIR, Settings
from tests.dags.conftest import environment, job_environment, load_dag
from tests.dags.online_retail_truth import day_truth

pytestmark = [pytest.mark.airflow, pytest.mark.e2e, pytest.mark.spark]

DAY = dt.date(2010, 12, 22)  # a Wednesday with 291 invoice lines
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
def daily(tmp_path_factory, airflow_db, spark_conf_dir):
    """The lake after one successful ``clickstream_daily`` run for :data:`DAY`."""
    from spark_jobs.landing.replay import replay

    root = tmp_path_factory.mktemp("daily")
    lake, landing = root / "lake", root / "landing"
    replay(APP, str(landing), start=DAY, end=DAY, data_dir=DATA_DIR)
    with environment(job_environment(lake, landing, spark_conf_dir)):
        dag = load_dag("clickstream_daily")
        first = run_day(dag, DAY)
        yield SimpleNamespace(dag=dag, lake=lake, first=first)


def test_one_day_run_succeeds_with_independently_computed_dws_values(daily, spark):
    assert daily.first.interval_start == dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    assert daily.first.state == "success", daily.first.tasks
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

    assert (daily.lake / "reports" / "index.html").is_file()


def test_second_run_of_the_same_day_changes_nothing(daily, spark):
    before = snapshot(spark, daily.lake)
    second = run_day(daily.dag, DAY)
    after = snapshot(spark, daily.lake)

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


def test_a_corrupted_ods_partition_stops_the_run_before_any_build(daily, spark):
    """Duplicated raw-record keys in a published ODS partition fail the ODS gate."""
    ods = table_path(daily.lake, T.ODS_EVENTS)
    one_row = spark.read.format("delta").load(ods).where(f"dt = DATE'{DAY}'").limit(1)
    one_row.write.format("delta").mode("append").save(ods)
    before = snapshot(spark, daily.lake)

    run = run_day(daily.dag, DAY)
    after = snapshot(spark, daily.lake)

    assert run.state == "failed"
    assert run.tasks["ingest"] == "success"
    assert run.tasks["check__ods_clickstream_events_di"] == "failed"
    assert run.tasks["check__ods_clickstream_rejected_di"] == "success"
    not_run = [t for t in run.tasks if t.startswith(("build__", "check__dw"))] + ["publish_report"]
    assert {run.tasks[t] for t in not_run} == {"upstream_failed"}
    assert after == before
