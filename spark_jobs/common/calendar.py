"""Calendar helpers: the (app_id, dt) day spine that DWS tables report on, days without events
included."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def app_day_spine(app_first_dates: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """One row per ``(app_id, dt)`` for every day of ``[start, end]`` on or after the app's first
    event date.

    Args:
        app_first_dates: ``app_id STRING, first_dt DATE``
            (:func:`spark_jobs.common.first_seen.apps_first_event`).

    Returns:
        ``app_id STRING, dt DATE``.
    """
    days = app_first_dates.sparkSession.range(1).select(
        F.explode(F.sequence(F.lit(start), F.lit(end), F.expr("INTERVAL 1 DAY"))).alias("dt")
    )
    return (
        app_first_dates.crossJoin(days)
        .where(F.col("dt") >= F.col("first_dt"))
        .select("app_id", "dt")
    )
