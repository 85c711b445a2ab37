"""Publish validated DWS days to the BI engines: catalog refresh, Parquet exports, warehouse load.

``lakehouse bi-publish --ds D`` (and the ``clickstream_bi_publish`` DAG) does, per DWS table that
has a warehouse mart (``sql/redshift/marts``):

1. **Exports**: the days' rows as Parquet under ``<root>/exports/<table>/dt=YYYY-MM-DD/``
   (Spark, dynamic partition overwrite: a day's folder is replaced whole, other days are kept).
   This is what Redshift ``COPY ... FORMAT AS PARQUET`` loads (``sql/redshift/load/load_day.sql``).
   The files hold every column but ``dt``, which is the folder name.
2. **Catalog**: the Athena stand-in's catalog (the Spark Thrift Server) registers any new table
   and view. Delta tables need no per-day refresh (readers see the latest log version), just as
   Athena's native Delta tables need no ``ADD PARTITION``. Skipped with a log line when the server
   is not running: ``lakehouse serve start`` registers everything when it starts.
3. **Warehouse**: each day is replaced in the PostgreSQL mart in one transaction (delete the day,
   insert the export's rows), the local twin of the Redshift load.

Every step rewrites exactly the days given, so publishing a day twice leaves the exports and the
marts as they were, and re-publishing a day after a late-data rebuild replaces that day's rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from spark_jobs.common import delta_io
from spark_jobs.common.jobframe import days as each_day
from spark_jobs.serving import thrift_server, warehouse
from spark_jobs.settings import Settings

log = logging.getLogger("lakehouse")


def export_path(settings: Settings, table: str) -> str:
    """``<root>/exports/<table>``."""
    return f"{settings.exports_dir}/{table}"


def write_exports(
    spark, settings: Settings, table: str, start: dt.date, end: dt.date
) -> dict[dt.date, list[str]]:
    """Write the Parquet exports of ``table`` for ``start..end`` (UTC dates, inclusive).

    Columns: the table's columns in its schema order, ``dt`` as the folder ``dt=YYYY-MM-DD``.
    A day of the range without rows has no folder afterwards (a stale one is removed).

    Returns:
        ``{day: [parquet file paths]}`` for every day of the range (empty list: no rows).

    Raises:
        NotImplementedError: the lakehouse root is not a local path (object-store exports are
            written by Spark the same way, but listing them back here is local-only for now).
    """
    if "://" in settings.lakehouse_root:
        raise NotImplementedError("bi-publish exports are local-path only for now")
    root = Path(export_path(settings, table))
    df = delta_io.read_partitions(spark, settings, table, start, end)
    (
        df.repartition(max(1, settings.shuffle_partitions), "dt")
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("dt")
        .parquet(str(root))
    )
    files = {}
    for day in each_day(start, end):
        folder = root / f"dt={day.isoformat()}"
        parts = sorted(str(p) for p in folder.glob("*.parquet")) if folder.is_dir() else []
        if not parts and folder.exists():  # the day lost its rows: no stale export
            shutil.rmtree(folder)
        files[day] = parts
    return files


def publish_days(spark, settings: Settings, start: dt.date, end: dt.date) -> dict[str, int]:
    """Exports, catalog refresh and warehouse load of every mart table for ``start..end``.

    Returns:
        Rows loaded into the warehouse per table.

    Raises:
        RuntimeError: the local warehouse is not running (``lakehouse warehouse start``).
    """
    if warehouse.status(settings) is None:
        raise RuntimeError("the local warehouse is not running: run `lakehouse warehouse start`")
    warehouse.apply_sql(settings)
    loaded = {}
    for table in warehouse.mart_tables():
        if not delta_io.table_exists(spark, settings, table):
            log.info("BI-PUBLISH %s: no table yet, skipped", table)
            continue
        exports = write_exports(spark, settings, table, start, end)
        loaded[table] = sum(
            warehouse.load_day(settings, table, day, files) for day, files in exports.items()
        )
        log.info(
            "BI-PUBLISH %s %s..%s: %d day(s) exported, %d row(s) loaded into the warehouse",
            table,
            start,
            end,
            len(exports),
            loaded[table],
        )
    if thrift_server.status(settings) is not None:
        thrift_server.register(settings)
    else:
        log.info(
            "BI-PUBLISH Thrift Server not running: `lakehouse serve start` registers the tables"
        )
    return loaded
