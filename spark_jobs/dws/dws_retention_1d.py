"""DWS retention: the daily cohort triangle (day-N retention of each first-seen cohort) per app.

Grain: one row per ``(app_id, cohort_dt, day_n)`` for ``day_n`` in ``0..30``, partitioned by
``dt`` = ``activity_dt`` = ``cohort_dt + day_n`` (the day the retention is measured on). A day D
therefore adds its 31 cells (day 0 of cohort D .. day 30 of cohort D-30) to partition ``dt = D``:
a daily run writes one partition, and a cell exists only once its activity day was processed.

Cohorts (UTC days): every calendar day from the app's first event date (anonymous events
included, as the other DWS day spines) is a cohort, days without new users included
(``cohort_users = 0``). A cohort's users are the app's users whose first event ever (in DWD) is
on ``cohort_dt``: the same first-seen date as ``dws_active_users_1d.new_users``, so
``cohort_users`` of ``(app, C)`` equals ``new_users`` of ``(app, C)``.

Columns out (``schemas.DWS_RETENTION``):

- ``app_id`` STRING; ``cohort_dt`` DATE; ``day_n`` INT (0..30); ``activity_dt`` DATE;
- ``cohort_users`` BIGINT: users first seen on ``cohort_dt``;
- ``retained_users`` BIGINT: those of them with >= 1 event on ``activity_dt`` (day 0: all of them,
  by definition);
- ``retention_rate`` DOUBLE: ``retained_users / cohort_users`` in [0, 1], null when
  ``cohort_users = 0``;
- ``dt`` DATE: the partition, = ``activity_dt``.

Incremental rebuilds: the table shares the rolling window of ``dws_active_users_1d`` (from the
first changed day to the last processed day, see :mod:`spark_jobs.common.plan`): a late event
can move a user's first-seen date from F to an earlier D, which changes both cohorts' cells.
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

#: the last day of a cohort the table reports (day 0 = the cohort day itself)
MAX_DAY_N = 30


def aggregate_retention(
    events: DataFrame, first_seen: DataFrame, start: dt.date, end: dt.date
) -> DataFrame:
    """Compute the table's cells whose activity date ``dt`` is in ``[start, end]``.

    Args:
        events: DWD events (``app_id STRING, user_id STRING, dt DATE``) covering at least
            ``[start, end]`` (the activity days); anonymous events (null ``user_id``) count for
            nobody.
        first_seen: ``app_id, user_id, first_dt`` over all of DWD: users' first event dates
            and (``user_id`` null) apps' first event dates (:mod:`spark_jobs.common.first_seen`).
        start, end: activity dates (UTC), inclusive.

    Returns:
        Columns of ``DWS_RETENTION``: for every app and spine day D in ``[start, end]``, one cell
        per cohort ``D - n`` (``n`` in ``0..MAX_DAY_N``) on or after the app's first event date.
    """
    oldest_cohort = start - dt.timedelta(days=MAX_DAY_N)
    cohort_of = (
        users_first_seen(first_seen)
        .select("app_id", "user_id", F.col("first_dt").alias("cohort_dt"))
        .where(F.col("cohort_dt").between(oldest_cohort, end))
    )
    cohorts = cohort_of.groupBy("app_id", "cohort_dt").agg(
        F.count("*").cast("long").alias("cohort_users")
    )
    user_days = (
        events.where(F.col("user_id").isNotNull() & F.col("dt").between(start, end))
        .select("app_id", "user_id", "dt")
        .distinct()
    )
    # a user-day is one retained user of the user's cohort on that day (user-days are distinct)
    retained = (
        user_days.join(cohort_of, ["app_id", "user_id"])
        .where(F.datediff("dt", "cohort_dt") <= MAX_DAY_N)
        .groupBy("app_id", "cohort_dt", "dt")
        .agg(F.count("*").cast("long").alias("retained_users"))
    )
    app_first = apps_first_event(first_seen)
    cells = (
        app_day_spine(app_first, start, end)
        .join(app_first, "app_id")
        .withColumn("day_n", F.explode(F.sequence(F.lit(0), F.lit(MAX_DAY_N))))
        .withColumn("cohort_dt", F.date_sub("dt", F.col("day_n")))
        .where(F.col("cohort_dt") >= F.col("first_dt"))
        .drop("first_dt")
    )
    rows = (
        cells.join(cohorts, ["app_id", "cohort_dt"], "left")
        .join(retained, ["app_id", "cohort_dt", "dt"], "left")
        .fillna(0, subset=["cohort_users", "retained_users"])
    )
    return rows.select(
        "app_id",
        "cohort_dt",
        "day_n",
        F.col("dt").alias("activity_dt"),
        "cohort_users",
        "retained_users",
        F.when(
            F.col("cohort_users") > 0,
            F.col("retained_users").cast("double") / F.col("cohort_users"),
        ).alias("retention_rate"),
        "dt",
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

    Reads DWD events of ``[start, end]`` only, and the first-seen state
    (:mod:`spark_jobs.common.first_seen`): the cost of a day does not grow with the history.

    Raises:
        pyspark.errors.AnalysisException: the written schema differs from the table's.
    """
    events = delta_io.read_partitions(spark, settings, T.DWD_EVENTS, start, end, apps=apps).select(
        "app_id", "user_id", "dt"
    )
    rows = aggregate_retention(events, read_first_seen(spark, settings, apps), start, end)
    return delta_io.replace_partitions(
        rows, settings, T.DWS_RETENTION, start, end, stage=stage, apps=apps
    )


def main(argv: list[str] | None = None) -> int:
    """``spark-submit spark_jobs/dws/dws_retention_1d.py --start D --end D [--stage]``."""
    return run_job(T.DWS_RETENTION, build, argv)


if __name__ == "__main__":
    sys.exit(main())
