"""DWS conversion: sessions and the ordered funnel per app and day.

Grain: one row per ``(app_id, dt)`` for every day of the rebuilt range on or after the app's first
event date, over the sessions that *start* on ``dt`` (UTC):

- ``sessions``;
- ordered funnel: ``product_view_sessions`` (>= 1 product_view), ``add_to_cart_sessions`` (an
  add_to_cart at or after the session's first product_view), ``purchase_sessions`` (a purchase at
  or after that step's first qualifying add_to_cart) — see ``dwd_clickstream_sessions_di``;
- ``sessions_with_purchase``: >= 1 purchase, in any order;
- ``session_conversion_rate`` = ``sessions_with_purchase / sessions``, null when 0 sessions.
"""

from __future__ import annotations

import datetime as dt
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.common.calendar import app_day_spine
from spark_jobs.common.first_seen import apps_first_event, read_first_seen
from spark_jobs.common.jobframe import run_job
from spark_jobs.settings import Settings


def _count_true(column: str) -> F.Column:
    return F.count(F.when(F.col(column), 1)).cast("long")


def aggregate_conversion(sessions: DataFrame, spine: DataFrame) -> DataFrame:
    """Sessions (``DWD_SESSIONS`` columns) + day spine (``app_id, dt``) -> ``DWS_CONVERSION``."""
    daily = sessions.groupBy("app_id", "dt").agg(
        F.count("*").cast("long").alias("sessions"),
        _count_true("has_product_view").alias("product_view_sessions"),
        _count_true("has_funnel_add_to_cart").alias("add_to_cart_sessions"),
        _count_true("has_funnel_purchase").alias("purchase_sessions"),
        _count_true("has_purchase").alias("sessions_with_purchase"),
    )
    counts = [
        "sessions",
        "product_view_sessions",
        "add_to_cart_sessions",
        "purchase_sessions",
        "sessions_with_purchase",
    ]
    rows = spine.join(daily, ["app_id", "dt"], "left").fillna(0, subset=counts)
    return rows.withColumn(
        "session_conversion_rate",
        F.when(
            F.col("sessions") > 0,
            F.col("sessions_with_purchase").cast("double") / F.col("sessions"),
        ),
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
    returns rows written."""
    sessions = delta_io.read_partitions(spark, settings, T.DWD_SESSIONS, start, end, apps=apps)
    first_dates = apps_first_event(read_first_seen(spark, settings, apps))
    spine = app_day_spine(first_dates, start, end)
    rows = aggregate_conversion(sessions, spine)
    return delta_io.replace_partitions(
        rows, settings, T.DWS_CONVERSION, start, end, stage=stage, apps=apps
    )


def main(argv: list[str] | None = None) -> int:
    """``spark-submit spark_jobs/dws/dws_conversion_1d.py --start D --end D [--stage]``."""
    return run_job(T.DWS_CONVERSION, build, argv)


if __name__ == "__main__":
    sys.exit(main())
