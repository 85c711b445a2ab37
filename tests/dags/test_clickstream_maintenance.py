"""``clickstream_maintenance`` wiring, and the OPTIMIZE/Z-ORDER/VACUUM job it submits."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from spark_jobs import tables as T
from spark_jobs.settings import PROJECT_DIR
from tests.dags.conftest import environment, load_dag

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def dag():
    with environment({"LAKEHOUSE_VACUUM_RETAIN_HOURS": None}):
        return load_dag("clickstream_maintenance")


def test_one_weekly_maintenance_task_per_table(dag):
    from airflow.sdk import CronTriggerTimetable

    assert isinstance(dag.timetable, CronTriggerTimetable)
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("0 3 * * 0", "UTC")
    assert {t.task_id for t in dag.tasks} == {f"maintain__{t.name}" for t in T.ALL_TABLES}
    job = str(PROJECT_DIR / "spark_jobs" / "maintenance.py")
    assert {t.application for t in dag.tasks} == {job}


def test_vacuum_keeps_seven_days_and_optimize_covers_the_rewritable_partitions(dag):
    from airflow.sdk.execution_time import macros

    task = dag.get_task("maintain__dwd_clickstream_events_di")
    context = {"ds": "2011-03-06", "macros": macros}
    args = task.render_template(task.application_args, context, jinja_env=dag.get_template_env())
    # 30 days of late-data lookback + 7: 2011-03-06 - 37 days = 2011-01-28
    assert args == [
        "--table",
        "dwd_clickstream_events_di",
        "--since",
        "2011-01-28",
        "--retain-hours",
        "168",
    ]


@pytest.mark.spark
def test_optimize_compacts_and_zorders_without_changing_rows_then_vacuums(spark, settings):
    from delta.tables import DeltaTable

    from spark_jobs.common.delta_io import table_path
    from spark_jobs.maintenance import maintain_table

    path = table_path(settings, T.DWD_EVENTS)
    day = dt.date(2011, 1, 4)
    for batch in range(3):  # three appends = three small files in the one partition
        rows = [("online_retail", f"u{batch}{i}", f"e{batch}{i}", day) for i in range(4)]
        df = spark.createDataFrame(rows, "app_id string, user_id string, event_id string, dt date")
        df.write.format("delta").mode("append").partitionBy("dt").save(path)
    before = sorted(spark.read.format("delta").load(path).toJSON().collect())
    files_before = DeltaTable.forPath(spark, path).detail().first()["numFiles"]
    assert files_before >= 3

    result = maintain_table(spark, settings, T.DWD_EVENTS, since=day)

    assert (result.files_removed, result.files_added) == (files_before, 1)
    assert DeltaTable.forPath(spark, path).detail().first()["numFiles"] == 1
    assert sorted(spark.read.format("delta").load(path).toJSON().collect()) == before
    history = DeltaTable.forPath(spark, path).history().collect()
    optimize = next(h for h in history if h["operation"] == "OPTIMIZE")
    assert json.loads(optimize["operationParameters"]["zOrderBy"]) == ["app_id", "user_id"]
    assert any(h["operation"].startswith("VACUUM") for h in history)


@pytest.mark.spark
def test_tables_not_listed_for_zorder_are_only_compacted(spark, settings):
    from delta.tables import DeltaTable

    from spark_jobs.common.delta_io import table_path
    from spark_jobs.maintenance import maintain_table

    path = table_path(settings, T.DWS_CATEGORY)
    for batch in range(2):
        row = [("a", batch, dt.date(2011, 1, 4))]
        df = spark.createDataFrame(row, "app_id string, n int, dt date")
        df.write.format("delta").mode("append").partitionBy("dt").save(path)

    files_before = DeltaTable.forPath(spark, path).detail().first()["numFiles"]

    result = maintain_table(spark, settings, T.DWS_CATEGORY)

    assert (result.files_removed, result.files_added) == (files_before, 1)
    optimize = DeltaTable.forPath(spark, path).history().where("operation = 'OPTIMIZE'").first()
    assert json.loads(optimize["operationParameters"]["zOrderBy"]) == []


@pytest.mark.spark
def test_an_rt_table_is_compacted_whole_whatever_since_says(spark, settings):
    from delta.tables import DeltaTable

    from spark_jobs.common.delta_io import table_path
    from spark_jobs.maintenance import maintain_table

    path = table_path(settings, T.RT_TRADE_ORDERS_1M)
    minute = 60_000
    for batch in range(3):  # three micro-batches = three files, no partitions
        row = [(batch * minute, (batch + 1) * minute, batch + 1, 10 * (batch + 1))]
        schema = "windowBeginTime long, windowEndTime long, count_tno long, sum_tnum long"
        spark.createDataFrame(row, schema).write.format("delta").mode("append").save(path)
    before = sorted(spark.read.format("delta").load(path).toJSON().collect())

    # a --since far after every row: still compacted (there is no dt to select on)
    result = maintain_table(spark, settings, T.RT_TRADE_ORDERS_1M, since=dt.date(2030, 1, 1))

    assert (result.files_removed, result.files_added) == (3, 1)
    assert DeltaTable.forPath(spark, path).detail().first()["numFiles"] == 1
    assert sorted(spark.read.format("delta").load(path).toJSON().collect()) == before


@pytest.mark.spark
def test_rt_rows_older_than_the_retention_before_the_newest_row_are_expired(spark, settings):
    from spark_jobs.common.delta_io import table_path
    from spark_jobs.maintenance import expire_rt_rows, maintain_table

    path = table_path(settings, T.RT_ERROR_EVENTS)
    day = 86_400_000
    newest = 1_700_000_000_000  # 2023-11-14T22:13:20Z
    # by hand, 30 days before the newest row: day -31 and the ms before day -30 go, the rest stay
    ages = {"e1": 31 * day, "e2": 30 * day + 1, "e3": 30 * day, "e4": 3 * day, "e5": 0}
    rows = [
        (event_id, "pay", "u1", None, None, "[ERROR] x", newest - age, "behaviour", 0, n)
        for n, (event_id, age) in enumerate(ages.items())
    ]
    schema = (
        "eventId string, action string, userId string, objectId string, bizId string, "
        "errorMsg string, createdAt long, etl_topic string, etl_partition int, etl_offset long"
    )
    for row in rows:  # one micro-batch each
        spark.createDataFrame([row], schema).write.format("delta").mode("append").save(path)

    def kept() -> list[str]:
        return sorted(
            r[0] for r in spark.read.format("delta").load(path).select("eventId").collect()
        )

    keep_all = maintain_table(spark, settings, T.RT_ERROR_EVENTS, rt_retention_days=0)
    assert (keep_all.rows_expired, keep_all.files_removed, keep_all.files_added) == (0, 5, 1)
    assert kept() == ["e1", "e2", "e3", "e4", "e5"]

    assert settings.rt_retention_days == 30  # the default, taken when no days are given
    result = maintain_table(spark, settings, T.RT_ERROR_EVENTS)
    assert result.rows_expired == 2
    assert kept() == ["e3", "e4", "e5"]

    # measured from the newest row: a rerun expires nothing more
    assert expire_rt_rows(spark, path, T.RT_ERROR_EVENTS, 30) == 0
    assert kept() == ["e3", "e4", "e5"]
    with pytest.raises(ValueError, match="not a real-time table"):
        expire_rt_rows(spark, table_path(settings, T.DWS_CATEGORY), T.DWS_CATEGORY, 30)


@pytest.mark.spark
def test_missing_table_is_skipped_and_short_retention_refused(spark, settings):
    from spark_jobs.maintenance import main, maintain_table

    assert maintain_table(spark, settings, T.DWS_CONVERSION).skipped
    with pytest.raises(ValueError, match="below 168"):
        maintain_table(spark, settings, T.DWS_CONVERSION, retain_hours=24)
    assert main(["--table", T.DWS_CONVERSION, "--retain-hours", "24"]) == 2
