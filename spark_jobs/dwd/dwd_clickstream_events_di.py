"""DWD events: ODS -> deduplicated, cleaned, sessionised events.

Grain: one row per distinct ``event_id``, partitioned by ``dt`` = event date (UTC).

- Dedup: Firehose and Kafka deliver at least once, so the same record can land again in another
  object, even days later. The copy delivered first is kept (earliest ``etl_ingest_ts``, then
  source object and line), so reruns keep the same copy.
- Clean: IPv4 addresses anonymised by zeroing the last octet (``203.0.113.7`` -> ``203.0.113.0``);
  addresses that are not IPv4 are dropped (null) rather than stored unanonymised.
- Sessions (server side; inputs carry no trusted session id): per ``(app_id, user_id)`` with a
  non-null user, events ordered by ``event_ts`` (ties by ``event_id``). A new session starts at the
  user's first event, when the gap to the previous event is greater than ``SESSION_GAP_SEC``
  (30 min; a gap of exactly 30 min continues the session), or when the event is
  ``SESSION_MAX_SEC`` (24 h) or more after the session's start. ``session_id`` is a hash of app,
  user and the session's first ``event_id``: the same input gives the same id on every rerun.
  Anonymous events (null user) get no session.

A rebuild of ``[start, end]`` reads ODS from ``start - SESSION_LOOKBACK_DAYS`` as context so that
sessions open across the window's start keep their start and id; only ``[start, end]`` is written.
"""

from __future__ import annotations

import datetime as dt
import sys

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.common.jobframe import run_job
from spark_jobs.settings import Settings

_IPV4 = r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}$"


def dedupe_events(ods: DataFrame) -> DataFrame:
    """Keep the first delivered copy of each ``event_id``.

    In/out: ODS event columns (``event_id``, ``etl_ingest_ts``, ``etl_source_object``,
    ``etl_source_line`` required); one row per ``event_id`` out.
    """
    first_delivered = Window.partitionBy("event_id").orderBy(
        "etl_ingest_ts", "etl_source_object", "etl_source_line"
    )
    return (
        ods.withColumn("_copy", F.row_number().over(first_delivered))
        .where(F.col("_copy") == 1)
        .drop("_copy")
    )


def anonymise_ip(ip) -> F.Column:
    """IPv4 with the last octet zeroed; null for anything else (IPv6, garbage, null)."""
    column = F.trim(F.col(ip) if isinstance(ip, str) else ip)
    return F.when(column.rlike(_IPV4), F.regexp_replace(column, _IPV4, "$1.0"))


def clean_events(events: DataFrame) -> DataFrame:
    """Anonymise ``ip`` and trim ``user_id`` (blank -> null). Other columns pass through."""
    user = F.trim("user_id")
    return events.withColumn("ip", anonymise_ip("ip")).withColumn(
        "user_id", F.when(user != "", user)
    )


def _micros(column: str) -> F.Column:
    return F.unix_micros(F.col(column))


def sessionize_events(events: DataFrame, gap_sec: int, max_sec: int) -> DataFrame:
    """Assign ``session_id`` and ``session_start_ts`` to events of known users.

    Args:
        events: at least ``app_id, user_id, event_id, event_ts`` (TIMESTAMP, UTC).
        gap_sec: inactivity gap in seconds; a gap *greater* than it starts a new session.
        max_sec: session cap in seconds; an event ``max_sec`` or more after the session's start
            starts a new session.

    Returns:
        ``events`` plus ``session_id STRING`` and ``session_start_ts TIMESTAMP`` (both null when
        ``user_id`` is null).
    """
    gap_us, max_us = gap_sec * 1_000_000, max_sec * 1_000_000
    user_order = Window.partitionBy("app_id", "user_id").orderBy("event_ts", "event_id")
    known = events.where(F.col("user_id").isNotNull()).withColumn("_ts_us", _micros("event_ts"))
    # 1. inactivity sessions ("runs"): a gap > gap_sec starts a new run
    gap = F.col("_ts_us") - F.lag("_ts_us").over(user_order)
    runs = known.withColumn("_new_run", F.when(gap.isNull() | (gap > gap_us), 1).otherwise(0))
    runs = runs.withColumn(
        "_run", F.sum("_new_run").over(user_order.rowsBetween(Window.unboundedPreceding, 0))
    )
    run_window = Window.partitionBy("app_id", "user_id", "_run")
    runs = runs.withColumn("_run_start_us", F.min("_ts_us").over(run_window)).withColumn(
        "_run_end_us", F.max("_ts_us").over(run_window)
    )
    # 2. the 24 h cap only matters for runs spanning max_sec or more; split those sequentially:
    #    a session starts at an event >= max_sec after the current session's start.
    short = runs.where(F.col("_run_end_us") - F.col("_run_start_us") < max_us).withColumn(
        "_start_us", F.col("_run_start_us")
    )
    long_runs = runs.where(F.col("_run_end_us") - F.col("_run_start_us") >= max_us)
    split = (
        long_runs.groupBy("app_id", "user_id", "_run")
        .agg(F.array_sort(F.collect_list(F.struct("_ts_us", "event_id"))).alias("_evs"))
        .withColumn(
            "_starts",
            F.aggregate(
                "_evs",
                F.array().cast("array<bigint>"),
                lambda acc, e: F.concat(
                    acc,
                    F.array(
                        F.when(
                            (F.size(acc) == 0)
                            | (e["_ts_us"] - F.element_at(acc, -1) >= F.lit(max_us)),
                            e["_ts_us"],
                        ).otherwise(F.element_at(acc, -1))
                    ),
                ),
            ),
        )
        .select(
            "app_id",
            "user_id",
            F.explode(F.arrays_zip(F.col("_evs.event_id").alias("event_id"), "_starts")).alias(
                "_z"
            ),
        )
        .select("app_id", "user_id", F.col("_z.event_id").alias("event_id"), "_z._starts")
        .withColumnRenamed("_starts", "_start_us")
    )
    capped = long_runs.join(split, ["app_id", "user_id", "event_id"])
    sessions = short.unionByName(capped)
    session_window = Window.partitionBy("app_id", "user_id", "_start_us").orderBy(
        "event_ts", "event_id"
    )
    first_event = F.first("event_id").over(session_window)
    sessions = sessions.withColumn(
        "session_id",
        F.sha2(F.concat_ws("|", "app_id", "user_id", first_event), 256).substr(1, 32),
    ).withColumn("session_start_ts", F.timestamp_micros("_start_us"))
    sessions = sessions.drop(
        "_ts_us", "_new_run", "_run", "_run_start_us", "_run_end_us", "_start_us"
    )
    anonymous = (
        events.where(F.col("user_id").isNull())
        .withColumn("session_id", F.lit(None).cast("string"))
        .withColumn("session_start_ts", F.lit(None).cast("timestamp"))
    )
    return sessions.unionByName(anonymous)


def transform(ods: DataFrame, settings: Settings) -> DataFrame:
    """ODS rows -> DWD event rows (dedupe, clean, sessionise); columns of ``DWD_EVENTS``."""
    return sessionize_events(
        clean_events(dedupe_events(ods)), settings.session_gap_sec, settings.session_max_sec
    )


def build(
    spark: SparkSession,
    settings: Settings,
    start: dt.date,
    end: dt.date,
    stage: bool = False,
    apps: tuple[str, ...] | None = None,
) -> int:
    """Rewrite ``dt`` in ``[start, end]`` of the table (or its staging twin) for ``apps`` (None:
    all); returns rows."""
    context_start = start - dt.timedelta(days=settings.session_lookback_days)
    ods = delta_io.read_partitions(spark, settings, T.ODS_EVENTS, context_start, end, apps=apps)
    events = transform(ods, settings).where(F.col("dt").between(start, end))
    return delta_io.replace_partitions(
        events, settings, T.DWD_EVENTS, start, end, stage=stage, apps=apps
    )


def main(argv: list[str] | None = None) -> int:
    """``spark-submit spark_jobs/dwd/dwd_clickstream_events_di.py --start D --end D [--stage]``."""
    return run_job(T.DWD_EVENTS, build, argv)


if __name__ == "__main__":
    sys.exit(main())
