"""DWS active users: events, DAU, rolling WAU/MAU and new users per app and day.

Grain: one row per ``(app_id, dt)`` for every day of the rebuilt range on or after the app's first
event date, days without events included (zeros).

Definitions (UTC days):

- ``events``: DWD events on ``dt``, anonymous ones included;
- ``dau``: distinct non-null users with >= 1 event on ``dt``;
- ``wau``: distinct users with >= 1 event in ``[dt - 6, dt]``;
- ``mau``: distinct users with >= 1 event in ``[dt - 29, dt]``;
  rolling windows are true distinct counts over the window (each user-day is fanned out to the
  window ends it belongs to, then users are counted distinct), never sums of daily counts;
- ``new_users``: users whose first event ever (in DWD) is on ``dt``
  (:mod:`spark_jobs.common.first_seen`);
- ``dau_mau_ratio``: ``dau / mau`` ("stickiness"), null when ``mau = 0``.
"""

from __future__ import annotations

import datetime as dt
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.common.calendar import app_day_spine
from spark_jobs.common.first_seen import apps_first_event, read_first_seen, users_first_seen
from spark_jobs.common.jobframe import run_job
from spark_jobs.settings import Settings

WAU_DAYS = 7
MAU_DAYS = 30


def aggregate_active_users(
    events: DataFrame, first_seen: DataFrame, start: dt.date, end: dt.date
) -> DataFrame:
    """Compute the table's rows for ``[start, end]``.

    Args:
        events: DWD events (``app_id, user_id, dt``) covering at least ``[start - 29, end]``.
        first_seen: ``app_id, user_id, first_dt`` over all of DWD: users' first event dates and
            (``user_id`` null) apps' first event dates (:mod:`spark_jobs.common.first_seen`).

    Returns:
        Columns of ``DWS_ACTIVE_USERS``, one row per spine day.
    """
    window_events = events.where(F.col("dt").between(start - dt.timedelta(days=MAU_DAYS - 1), end))
    user_days = (
        window_events.where(F.col("user_id").isNotNull())
        .select("app_id", "user_id", "dt")
        .distinct()
    )
    fanned = (
        user_days.withColumn("_offset", F.explode(F.sequence(F.lit(0), F.lit(MAU_DAYS - 1))))
        .withColumn("_end_dt", F.date_add("dt", F.col("_offset")))
        .where(F.col("_end_dt").between(start, end))
    )
    # one row per (user, window end) with the user's most recent active day in that window:
    # counting these rows is a distinct count of users without a DISTINCT aggregate
    latest = fanned.groupBy("app_id", "user_id", "_end_dt").agg(F.min("_offset").alias("_age"))
    rolling = latest.groupBy("app_id", F.col("_end_dt").alias("dt")).agg(
        F.count(F.when(F.col("_age") == 0, 1)).alias("dau"),
        F.count(F.when(F.col("_age") < WAU_DAYS, 1)).alias("wau"),
        F.count("*").alias("mau"),
    )
    daily_events = (
        window_events.where(F.col("dt").between(start, end)).groupBy("app_id", "dt").count()
    ).withColumnRenamed("count", "events")
    new_users = (
        users_first_seen(first_seen)
        .where(F.col("first_dt").between(start, end))
        .groupBy("app_id", F.col("first_dt").alias("dt"))
        .count()
        .withColumnRenamed("count", "new_users")
    )
    spine = app_day_spine(apps_first_event(first_seen), start, end)
    rows = (
        spine.join(daily_events, ["app_id", "dt"], "left")
        .join(rolling, ["app_id", "dt"], "left")
        .join(new_users, ["app_id", "dt"], "left")
        .fillna(0, subset=["events", "dau", "wau", "mau", "new_users"])
    )
    return rows.withColumn(
        "dau_mau_ratio",
        F.when(F.col("mau") > 0, F.col("dau").cast("double") / F.col("mau")),
    )


def build(
    spark: SparkSession,
    settings: Settings,
    start: dt.date,
    end: dt.date,
    stage: bool = False,
    apps: tuple[str, ...] | None = None,
) -> int:
    """Rewrite ``dt`` in ``[start, end]`` (table or staging twin) for ``apps`` (None: all);
    returns rows written.

    Reads DWD events of ``[start - 29, end]`` only, and the first-seen state: the cost of a day
    does not grow with the history.
    """
    events = delta_io.read_partitions(
        spark, settings, T.DWD_EVENTS, start - dt.timedelta(days=MAU_DAYS - 1), end, apps=apps
    ).select("app_id", "user_id", "dt")
    rows = aggregate_active_users(events, read_first_seen(spark, settings, apps), start, end)
    return delta_io.replace_partitions(
        rows, settings, T.DWS_ACTIVE_USERS, start, end, stage=stage, apps=apps
    )


def main(argv: list[str] | None = None) -> int:
    """``spark-submit spark_jobs/dws/dws_active_users_1d.py --start D --end D [--stage]``."""
    return run_job(T.DWS_ACTIVE_USERS, build, argv)


if __name__ == "__main__":
    sys.exit(main())
