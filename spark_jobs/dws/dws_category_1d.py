"""DWS category performance per app, day and category.

Grain: one row per ``(app_id, dt, category)`` with >= 1 DWD event that day (UTC); a null category
is reported as ``unknown``.

- ``product_views``, ``add_to_carts``, ``purchases``: event counts of those types;
- ``revenue``: sum of ``price * quantity`` over purchase events (source currency, DECIMAL(38,4));
- ``sessions``: distinct sessions with an event in the category on ``dt`` (the batch twin of the
  real-time per-department session count; anonymous events have no session).
"""

from __future__ import annotations

import datetime as dt
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.common.jobframe import run_job
from spark_jobs.common.schemas import REVENUE
from spark_jobs.settings import Settings

UNKNOWN_CATEGORY = "unknown"


def aggregate_categories(events: DataFrame) -> DataFrame:
    """DWD events (``app_id, dt, category, event_type, price, quantity, session_id``) ->
    ``DWS_CATEGORY`` rows."""
    kind = F.col("event_type")
    revenue = F.when(kind == "purchase", F.col("price") * F.col("quantity"))
    return (
        events.withColumn("category", F.coalesce("category", F.lit(UNKNOWN_CATEGORY)))
        .groupBy("app_id", "dt", "category")
        .agg(
            F.count(F.when(kind == "product_view", 1)).cast("long").alias("product_views"),
            F.count(F.when(kind == "add_to_cart", 1)).cast("long").alias("add_to_carts"),
            F.count(F.when(kind == "purchase", 1)).cast("long").alias("purchases"),
            F.coalesce(F.sum(revenue), F.lit(0)).cast(REVENUE).alias("revenue"),
            F.countDistinct("session_id").cast("long").alias("sessions"),
        )
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
    events = delta_io.read_partitions(spark, settings, T.DWD_EVENTS, start, end, apps=apps)
    rows = aggregate_categories(events)
    return delta_io.replace_partitions(
        rows, settings, T.DWS_CATEGORY, start, end, stage=stage, apps=apps
    )


def main(argv: list[str] | None = None) -> int:
    """``spark-submit spark_jobs/dws/dws_category_1d.py --start D --end D [--stage]``."""
    return run_job(T.DWS_CATEGORY, build, argv)


if __name__ == "__main__":
    sys.exit(main())
