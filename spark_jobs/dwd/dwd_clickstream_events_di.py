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

    One window pass per ``(app_id, user_id)``, ordered by ``(event_ts, event_id)``, with
    running frames only (linear per user), finds the inactivity runs (a gap greater than
    ``gap_sec`` starts a new run) with their start and first event. An event less than
    ``max_sec`` after its run's start is in the run's first session. The rest of a run (rare:
    runs of 24 h without a 30 min pause) is split sequentially, its first event opening a
    session and each event ``max_sec`` or more after the current session's start opening the
    next, over those rows gathered in one array (memory: the longest such run). Anonymous
    events (null ``user_id``) are windowed one by one (keyed by ``event_id``, not gathered into
    one partition) and get no session.

    Args:
        events: at least ``app_id, user_id, event_id, event_ts`` (TIMESTAMP, UTC); ``event_id``
            unique (deduplicated).
        gap_sec: inactivity gap in seconds; a gap *greater* than it starts a new session.
        max_sec: session cap in seconds; an event ``max_sec`` or more after the session's start
            starts a new session.

    Returns:
        ``events`` plus ``session_id STRING`` (first 32 hex digits of the SHA-256 of
        ``app_id|user_id|<the session's first event_id>``) and ``session_start_ts TIMESTAMP``
        (both null when ``user_id`` is null).
    """
    gap_us, max_us = gap_sec * 1_000_000, max_sec * 1_000_000
    passed = events.columns
    order = Window.partitionBy("app_id", "user_id", "_anon").orderBy("event_ts", "event_id")
    upto = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    ts = F.col("_ts_us")
    gap_before = ts - F.lag(ts).over(order)
    runs = (
        events.withColumn("_anon", F.when(F.col("user_id").isNull(), F.col("event_id")))
        .withColumn("_ts_us", _micros("event_ts"))
        .withColumn("_opens", gap_before.isNull() | (gap_before > gap_us))
        .withColumn("_run_start_us", F.max(F.when(F.col("_opens"), ts)).over(upto))
        .withColumn(
            "_first_id",
            F.last(F.when(F.col("_opens"), F.col("event_id")), ignorenulls=True).over(upto),
        )
    )
    # (a frame up to the run's end would be quadratic: Spark recomputes following frames)
    long_run = F.col("user_id").isNotNull() & (ts - F.col("_run_start_us") >= max_us)
    short = runs.where(~long_run).withColumn("_start_us", F.col("_run_start_us"))

    # a run's events from max_sec after its start on: s_1 = the first of them, s_k+1 = the first
    # event >= s_k + max_sec
    def in_order(a, b):
        return (
            F.when(a["_ts_us"] < b["_ts_us"], -1)
            .when(a["_ts_us"] > b["_ts_us"], 1)
            .when(a["event_id"] < b["event_id"], -1)
            .when(a["event_id"] > b["event_id"], 1)
            .otherwise(0)
        )

    def step(acc, e):
        opens = (F.size(acc["s"]) == 0) | (e["_ts_us"] - F.element_at(acc["s"], -1) >= max_us)
        start = F.when(opens, e["_ts_us"]).otherwise(F.element_at(acc["s"], -1))
        first = F.when(opens, e["event_id"]).otherwise(F.element_at(acc["f"], -1))
        return F.struct(
            F.concat(acc["s"], F.array(start)).alias("s"),
            F.concat(acc["f"], F.array(first)).alias("f"),
        )

    empty = F.struct(
        F.array().cast("array<bigint>").alias("s"), F.array().cast("array<string>").alias("f")
    )
    capped = (
        runs.where(long_run)
        .groupBy("app_id", "user_id", "_run_start_us")
        .agg(F.collect_list(F.struct("_ts_us", *passed)).alias("_rows"))
        .withColumn("_rows", F.array_sort("_rows", in_order))
        .withColumn("_cut", F.aggregate("_rows", empty, step))
        .select(F.explode(F.arrays_zip("_rows", "_cut.s", "_cut.f")).alias("_z"))
        .select(
            *[F.col(f"_z._rows.{c}").alias(c) for c in passed],
            F.col("_z.s").alias("_start_us"),
            F.col("_z.f").alias("_first_id"),
        )
    )
    known = F.col("user_id").isNotNull()
    session_id = F.sha2(F.concat_ws("|", "app_id", "user_id", "_first_id"), 256).substr(1, 32)
    return (
        short.select(*passed, "_start_us", "_first_id")
        .unionByName(capped)
        .select(
            *passed,
            F.when(known, session_id).alias("session_id"),
            F.when(known, F.timestamp_micros("_start_us")).alias("session_start_ts"),
        )
    )


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
