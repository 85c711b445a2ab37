"""DWD sessions: sessionised DWD events -> one row per session.

Grain: one row per ``session_id``, partitioned by ``dt`` = date of ``session_start_ts`` (UTC).

Columns: user, start and end (first and last event, UTC), ``duration_sec`` = end - start in whole
seconds, ``event_cnt`` and one ``<event_type>_cnt`` per canonical event type, the first event id,
and flags:

- ``is_bounce``: exactly one event;
- ``is_capped``: the session was cut by the 24 h cap (the user's next event came within the
  inactivity gap but had to start a new session);
- ``has_product_view``: >= 1 product_view (funnel step 1);
- ``has_funnel_add_to_cart``: an add_to_cart at or after the session's first product_view;
- ``has_funnel_purchase``: a purchase at or after the first add_to_cart that qualified for step 2;
- ``has_purchase``: >= 1 purchase, in any order.

A session starting on day D can run into D+1 (at most 24 h), so a rebuild of ``[start, end]``
reads the events of ``[start, end + 1]``.
"""

from __future__ import annotations

import datetime as dt
import sys

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.common.jobframe import run_job
from spark_jobs.common.schemas import EVENT_TYPES
from spark_jobs.settings import Settings


def aggregate_sessions(events: DataFrame, gap_sec: int) -> DataFrame:
    """Sessionised events -> one row per session (columns of ``DWD_SESSIONS``).

    Args:
        events: ``session_id, session_start_ts, app_id, user_id, event_id, event_ts,
            event_type``; rows with a null ``session_id`` (anonymous) are ignored.
        gap_sec: the inactivity gap, to tell a cap cut from an inactivity end.
    """
    sessioned = events.where(F.col("session_id").isNotNull())
    in_session = Window.partitionBy("session_id")
    user_order = Window.partitionBy("app_id", "user_id").orderBy("event_ts", "event_id")
    ts = F.col("event_ts")
    flagged = (
        sessioned.withColumn(
            "_first_pv_ts",
            F.min(F.when(F.col("event_type") == "product_view", ts)).over(in_session),
        )
        .withColumn(
            "_first_atc_ts",
            F.min(
                F.when((F.col("event_type") == "add_to_cart") & (ts >= F.col("_first_pv_ts")), ts)
            ).over(in_session),
        )
        .withColumn("_next_ts", F.lead("event_ts").over(user_order))
        .withColumn("_next_session", F.lead("session_id").over(user_order))
        .withColumn(
            "_cut",
            F.col("_next_session").isNotNull()
            & (F.col("_next_session") != F.col("session_id"))
            & (F.unix_micros(F.col("_next_ts")) - F.unix_micros(ts) <= F.lit(gap_sec * 1_000_000)),
        )
    )
    counts = [
        F.count(F.when(F.col("event_type") == t, 1)).cast("long").alias(f"{t}_cnt")
        for t in EVENT_TYPES
    ]
    sessions = flagged.groupBy("session_id", "app_id", "user_id", "session_start_ts").agg(
        F.max("event_ts").alias("session_end_ts"),
        F.count("*").cast("long").alias("event_cnt"),
        *counts,
        F.min_by("event_id", F.struct("event_ts", "event_id")).alias("first_event_id"),
        F.max("_cut").alias("is_capped"),
        F.max((F.col("event_type") == "purchase") & (ts >= F.col("_first_atc_ts"))).alias(
            "has_funnel_purchase"
        ),
        F.max(F.col("_first_atc_ts").isNotNull()).alias("has_funnel_add_to_cart"),
    )
    return sessions.select(
        "*",
        ((F.unix_micros("session_end_ts") - F.unix_micros("session_start_ts")) / 1_000_000)
        .cast("long")
        .alias("duration_sec"),
        (F.col("event_cnt") == 1).alias("is_bounce"),
        (F.col("product_view_cnt") > 0).alias("has_product_view"),
        (F.col("purchase_cnt") > 0).alias("has_purchase"),
        F.to_date("session_start_ts").alias("dt"),
    ).fillna(False, subset=["has_funnel_purchase"])


def build(
    spark: SparkSession,
    settings: Settings,
    start: dt.date,
    end: dt.date,
    stage: bool = False,
    apps: tuple[str, ...] | None = None,
) -> int:
    """Rewrite sessions starting on ``[start, end]`` (table or staging twin) for ``apps`` (None:
    all); returns rows."""
    events = delta_io.read_partitions(
        spark, settings, T.DWD_EVENTS, start, end + dt.timedelta(days=1), apps=apps
    )
    sessions = aggregate_sessions(events, settings.session_gap_sec).where(
        F.col("dt").between(start, end)
    )
    return delta_io.replace_partitions(
        sessions, settings, T.DWD_SESSIONS, start, end, stage=stage, apps=apps
    )


def main(argv: list[str] | None = None) -> int:
    """``spark-submit spark_jobs/dwd/dwd_clickstream_sessions_di.py --start D --end D``."""
    return run_job(T.DWD_SESSIONS, build, argv)


if __name__ == "__main__":
    sys.exit(main())
