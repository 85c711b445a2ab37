"""Delta table maintenance: OPTIMIZE (Z-ORDER where it helps) and VACUUM, one table per run.

Run weekly by the ``clickstream_maintenance`` DAG::

    spark-submit spark_jobs/maintenance.py --table T [--since D] [--retain-hours H]

- OPTIMIZE compacts the small files that daily ``replaceWhere`` rewrites and MERGE inserts leave
  in each ``dt`` partition (``--since D`` limits it to ``dt >= D``: older partitions are no longer
  rewritten, so they stay compacted). Contents do not change. The real-time (``rt``) tables are
  not partitioned and get one small file per streaming micro-batch: they are compacted whole
  (``--since`` does not apply to them); compaction does not conflict with the stream's appends.
- Retention of the ``rt`` tables: before compaction, rows whose event time (the table's
  ``time_column``, epoch ms) is more than ``LAKEHOUSE_RT_RETENTION_DAYS`` (default 30; 0 keeps
  everything) before the table's newest row are deleted. The horizon is measured from the newest
  row, not the wall clock, so a replay of 2011 data keeps its last month and a rerun deletes
  nothing more (idempotent). The real-time tables are the hot copy: the batch layers, built from
  the raw archive, keep the history. Batch tables are never expired.
- Z-ORDER (inside each partition) only where queries filter on columns other than ``dt``: the DWD
  tables, read per user for journeys, sessions and ad-hoc lookups, are Z-ordered by
  ``(app_id, user_id)`` so a user's rows sit in few files and Delta's data skipping prunes the
  rest. The DWS tables the BI views read are a handful of rows per day (one file per partition
  after compaction), and ODS/etl tables are read by whole ``dt`` partitions or whole: plain
  compaction is all they need.
- VACUUM removes files no longer referenced by the table (and by its staging twin, which every
  build rewrites) older than the retention: at least 168 h (7 days), Delta's default, so readers,
  time travel and a running job's snapshot within a week keep working.

Exit codes: 0 done (a table that does not exist yet is skipped), 1 error, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from dataclasses import dataclass

from spark_jobs import tables as T
from spark_jobs.common.jobframe import configure_logging, parse_date
from spark_jobs.settings import Settings, load_settings

log = logging.getLogger("lakehouse")

#: Z-ORDER columns per table (tables not listed are compacted only)
ZORDER_COLUMNS: dict[str, tuple[str, ...]] = {
    T.DWD_EVENTS: ("app_id", "user_id"),
    T.DWD_SESSIONS: ("app_id", "user_id"),
}
#: the shortest VACUUM retention allowed, in hours (7 days, Delta's default)
MIN_RETAIN_HOURS = 168


@dataclass(frozen=True)
class MaintenanceResult:
    """What one table's maintenance did (counts from the Delta operation metrics)."""

    table: str
    files_removed: int = 0
    files_added: int = 0
    files_vacuumed: int = 0
    rows_expired: int = 0
    skipped: bool = False


def optimize_table(spark, path: str, table: str, since: dt.date | None = None) -> tuple[int, int]:
    """OPTIMIZE the Delta table at ``path`` (Z-ORDER by :data:`ZORDER_COLUMNS` when listed).

    Args:
        since: only partitions with ``dt >= since``; None = every partition. Ignored for a table
            without a partition column (the ``rt`` tables): the whole table is compacted.

    Returns:
        ``(files_removed, files_added)``.
    """
    from delta.tables import DeltaTable

    builder = DeltaTable.forPath(spark, path).optimize()
    if since is not None and T.get_table(table).partition_column is not None:
        builder = builder.where(f"dt >= DATE'{since.isoformat()}'")
    columns = ZORDER_COLUMNS.get(table)
    metrics = (
        builder.executeZOrderBy(*columns) if columns else builder.executeCompaction()
    ).first()["metrics"]
    return int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])


def expire_rt_rows(spark, path: str, table: str, retention_days: int) -> int:
    """Delete the rows of the ``rt`` table at ``path`` whose ``time_column`` (BIGINT epoch ms
    UTC) is more than ``retention_days`` days before the table's newest row: the rows kept are
    ``time >= max(time) - retention_days * 86,400,000``. One Delta DELETE (it does not conflict
    with the stream's appends); nothing when ``retention_days`` is 0 or the table is empty.

    Returns:
        Rows deleted (the DELETE's ``numDeletedRows``).

    Raises:
        ValueError: ``table`` is not an ``rt`` table, or ``retention_days`` < 0.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    spec = T.get_table(table)
    if spec.layer != "rt":
        raise ValueError(f"{table} is not a real-time table: batch tables are not expired")
    if retention_days < 0:
        raise ValueError(f"rt retention must be >= 0 days, got {retention_days}")
    if retention_days == 0:
        return 0
    delta = DeltaTable.forPath(spark, path)
    newest = delta.toDF().agg(F.max(spec.time_column)).first()[0]
    if newest is None:
        return 0
    horizon = int(newest) - retention_days * 86_400_000
    before = delta.history(1).first()["version"]
    delta.delete(F.col(spec.time_column) < F.lit(horizon))
    last = delta.history(1).first()
    if last["version"] == before or last["operation"] != "DELETE":  # no commit: nothing matched
        return 0
    return int((last["operationMetrics"] or {}).get("numDeletedRows", 0))


def vacuum_table(spark, path: str, retain_hours: int = MIN_RETAIN_HOURS) -> int:
    """VACUUM the Delta table at ``path``, keeping unreferenced files younger than the retention.

    Returns:
        Files deleted (from the ``VACUUM END`` entry of the table history; 0 if none).

    Raises:
        ValueError: ``retain_hours`` below :data:`MIN_RETAIN_HOURS`.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    if retain_hours < MIN_RETAIN_HOURS:
        raise ValueError(
            f"VACUUM retention {retain_hours} h is below {MIN_RETAIN_HOURS} h (7 days)"
        )
    table = DeltaTable.forPath(spark, path)
    table.vacuum(float(retain_hours))
    row = (
        table.history(5)
        .where(F.col("operation") == "VACUUM END")
        .select("operationMetrics")
        .first()
    )
    return int((row["operationMetrics"] or {}).get("numDeletedFiles", 0)) if row else 0


def maintain_table(
    spark,
    settings: Settings,
    table: str,
    since: dt.date | None = None,
    retain_hours: int = MIN_RETAIN_HOURS,
    rt_retention_days: int | None = None,
) -> MaintenanceResult:
    """OPTIMIZE then VACUUM one table, and VACUUM its staging twin when it has one; an ``rt``
    table first loses its rows past the retention (:func:`expire_rt_rows`).

    Args:
        rt_retention_days: days kept in an ``rt`` table; None = ``settings.rt_retention_days``.

    Raises:
        KeyError: unknown table. ValueError: retention below 7 days.
    """
    from spark_jobs.common.delta_io import table_exists, table_path

    spec = T.get_table(table)
    if retain_hours < MIN_RETAIN_HOURS:
        raise ValueError(
            f"VACUUM retention {retain_hours} h is below {MIN_RETAIN_HOURS} h (7 days)"
        )
    if not table_exists(spark, settings, table):
        log.info("MAINT %-28s not created yet: skipped", table)
        return MaintenanceResult(table, skipped=True)
    path = table_path(settings, table)
    expired = 0
    if spec.layer == "rt":
        days = settings.rt_retention_days if rt_retention_days is None else rt_retention_days
        expired = expire_rt_rows(spark, path, table, days)
        log.info(
            "MAINT %-28s retention %d days of event time: %d rows expired", table, days, expired
        )
    removed, added = optimize_table(spark, path, table, since)
    vacuumed = vacuum_table(spark, path, retain_hours)
    if table_exists(spark, settings, table, staged=True):
        vacuumed += vacuum_table(spark, table_path(settings, table, staged=True), retain_hours)
    log.info(
        "MAINT %-28s optimize%s: %d files -> %d; vacuum (%d h): %d files deleted",
        table,
        f" zorder by {', '.join(ZORDER_COLUMNS[table])}" if table in ZORDER_COLUMNS else "",
        removed,
        added,
        retain_hours,
        vacuumed,
    )
    return MaintenanceResult(table, removed, added, vacuumed, expired)


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``spark-submit spark_jobs/maintenance.py``."""
    parser = argparse.ArgumentParser(prog="maintenance.py", description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, choices=[t.name for t in T.ALL_TABLES])
    parser.add_argument(
        "--since",
        type=parse_date,
        help="optimize only partitions with dt >= this date (rt tables: compacted whole)",
    )
    parser.add_argument(
        "--retain-hours",
        type=int,
        default=MIN_RETAIN_HOURS,
        help=f"VACUUM retention in hours (at least {MIN_RETAIN_HOURS})",
    )
    parser.add_argument(
        "--rt-retention-days",
        type=int,
        help="rt tables: days of event time kept before the newest row (0 = all; default "
        "LAKEHOUSE_RT_RETENTION_DAYS, 30)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry point. Returns the exit code."""
    from spark_jobs.common.spark import get_spark

    args = build_parser().parse_args(argv)
    if args.retain_hours < MIN_RETAIN_HOURS:
        print(f"error: --retain-hours must be at least {MIN_RETAIN_HOURS}", file=sys.stderr)
        return 2
    if args.rt_retention_days is not None and args.rt_retention_days < 0:
        print("error: --rt-retention-days must be >= 0", file=sys.stderr)
        return 2
    configure_logging()
    settings = load_settings()
    try:
        spark = get_spark(f"lakehouse:maintenance {args.table}", settings)
        maintain_table(
            spark, settings, args.table, args.since, args.retain_hours, args.rt_retention_days
        )
    except Exception:
        log.exception("maintenance of %s failed", args.table)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
