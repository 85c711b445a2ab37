"""The project's only Delta Lake reads and writes.

Writes are idempotent by construction:

- :func:`replace_partitions` overwrites exactly the ``dt`` range a job owns (Delta
  ``replaceWhere``), so rerunning a range leaves the table's contents unchanged;
- :func:`insert_new_rows` is a Delta ``MERGE`` that inserts only rows whose key is not in the
  table yet (used by ingestion, where a crashed run may be retried).

Tables live at ``<LAKEHOUSE_ROOT>/<layer>/<table>`` and are partitioned by ``dt`` (DATE, UTC).

File sizes: the session's Delta optimized writes (``spark.databricks.delta.optimizeWrite.enabled``,
set in :mod:`spark_jobs.common.spark`) shuffle the rows of every write and MERGE by ``dt`` into
bins of a target file size, so a big partition is written by several tasks in parallel and small
partitions get one file each. (A ``repartition("dt")`` before the write would make every ``dt``
one task writing one file, however big.)

Write-audit-publish: with ``stage=True`` a build writes its partitions to a staging twin at
``<LAKEHOUSE_ROOT>/staging/<layer>/<table>`` that no reader uses; the check validates the staged
partitions and :func:`publish_partitions` then copies them into the published table with the same
``replaceWhere``. A failed check never touches the published table. The ODS ingest stages its
batch the same way (:func:`overwrite_table` on the staging twins, then :func:`insert_new_rows`
from them, see :mod:`spark_jobs.ods.ods_clickstream_events_di`).
"""

from __future__ import annotations

import datetime as dt
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.common.schemas import SCHEMAS, conform
from spark_jobs.settings import Settings
from spark_jobs.tables import DWD_EVENTS, get_table

log = logging.getLogger("lakehouse")


def table_path(settings: Settings, table: str, staged: bool = False) -> str:
    """Location of ``table`` (or of its staging twin) under the lakehouse root."""
    layer = get_table(table).layer
    return settings.table_path(f"staging/{layer}" if staged else layer, table)


def table_exists(spark: SparkSession, settings: Settings, table: str, staged: bool = False) -> bool:
    """True when a Delta table is at the table's (or its staging twin's) location."""
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, table_path(settings, table, staged))


def read_table(
    spark: SparkSession,
    settings: Settings,
    table: str,
    staged: bool = False,
    apps: tuple[str, ...] | None = None,
    version: int | None = None,
) -> DataFrame:
    """The whole table (rows of ``apps`` only, when given: see :func:`only_apps`), optionally as
    of a Delta ``version`` (time travel); an empty DataFrame with the declared schema when it
    does not exist yet."""
    if not table_exists(spark, settings, table, staged):
        return spark.createDataFrame([], SCHEMAS[table])
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return only_apps(reader.load(table_path(settings, table, staged)), apps)


def table_version(spark: SparkSession, settings: Settings, table: str, staged: bool = False) -> int:
    """Current Delta version of the table (or its staging twin).

    Raises:
        pyspark.errors.AnalysisException: no Delta table there.
    """
    from delta.tables import DeltaTable

    path = table_path(settings, table, staged)
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def read_partitions(
    spark: SparkSession,
    settings: Settings,
    table: str,
    start: dt.date,
    end: dt.date,
    staged: bool = False,
    version: int | None = None,
    apps: tuple[str, ...] | None = None,
) -> DataFrame:
    """Rows of ``table`` with ``start <= dt <= end`` (partition-pruned) and, when given, of
    ``apps``; optionally as of a Delta ``version`` (time travel)."""
    df = read_table(spark, settings, table, staged, version=version)
    return only_apps(df.where(F.col("dt").between(start, end)), apps)


def last_commit_metrics(spark: SparkSession, path: str) -> dict[str, str]:
    """``operationMetrics`` of the newest commit of the Delta table at ``path`` (string values,
    e.g. ``numOutputRows``; a write of no rows records none of the row counts): ``{}`` when the
    commit has none."""
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).history(1).select("operationMetrics").first()
    return dict(row["operationMetrics"] or {}) if row else {}


def only_apps(df: DataFrame, apps: tuple[str, ...] | None) -> DataFrame:
    """Rows of ``df`` (an ``app_id STRING`` column) whose ``app_id`` is in ``apps``: every row
    when ``apps`` is None, none when it is empty."""
    if apps is None:
        return df
    return df.where(F.col("app_id").isin(list(apps))) if apps else df.limit(0)


def _apps_predicate(apps: tuple[str, ...] | None) -> str:
    """The SQL twin of :func:`only_apps`, appended to a ``replaceWhere`` predicate."""
    if apps is None:
        return ""
    if not apps:
        return " AND FALSE"
    quoted = ", ".join("'" + a.replace("\\", "\\\\").replace("'", "\\'") + "'" for a in apps)
    return f" AND app_id IN ({quoted})"


def replace_partitions(
    df: DataFrame,
    settings: Settings,
    table: str,
    start: dt.date,
    end: dt.date,
    stage: bool = False,
    apps: tuple[str, ...] | None = None,
) -> int:
    """Replace the rows of ``table`` with ``start <= dt <= end`` (and ``app_id`` in ``apps``,
    when given) by ``df`` (Delta replaceWhere).

    ``df`` is conformed to the declared schema first. Partitions outside the range, and rows of
    other apps, are untouched; a partition in the range for which ``df`` has no rows ends up
    empty (for those apps). With ``stage=True`` the staging twin is written instead of the
    published table. Publishing DWD events partitions also refreshes the first-seen state that
    the DWS builds read (:func:`spark_jobs.common.first_seen.refresh_after_publish`).

    Returns:
        Rows written (from the Delta commit's metrics, no extra Spark action).

    Raises:
        pyspark.errors.AnalysisException: a row of ``df`` lies outside the range
            (``DELTA_REPLACE_WHERE_MISMATCH``) or the schema differs from the table's.
    """
    spark = df.sparkSession
    path = table_path(settings, table, staged=stage)
    predicate = f"dt >= DATE'{start.isoformat()}' AND dt <= DATE'{end.isoformat()}'"
    predicate += _apps_predicate(apps)
    keeps_first_seen = table == DWD_EVENTS and not stage
    before = (
        table_version(spark, settings, table)
        if keeps_first_seen and table_exists(spark, settings, table)
        else None
    )
    (
        conform(df, SCHEMAS[table])
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", predicate)
        .partitionBy("dt")
        .save(path)
    )
    written = int(last_commit_metrics(spark, path).get("numOutputRows", 0))
    where = "staging" if stage else "table"
    log.info("  wrote %s %-28s dt %s..%s rows=%d", where, table, start, end, written)
    if keeps_first_seen:
        from spark_jobs.common import first_seen

        first_seen.refresh_after_publish(spark, settings, start, end, apps, before)
    return written


def overwrite_table(df: DataFrame, settings: Settings, table: str, stage: bool = False) -> int:
    """Replace the whole contents of ``table`` (or of its staging twin) by ``df``.

    ``df`` is conformed to the declared schema; an empty ``df`` leaves an empty table (created if
    it did not exist), so a reader never sees an older batch.

    Returns:
        Rows written (from the Delta commit's metrics).
    """
    path = table_path(settings, table, staged=stage)
    (
        conform(df, SCHEMAS[table])
        .write.format("delta")
        .mode("overwrite")
        .partitionBy("dt")
        .save(path)
    )
    written = int(last_commit_metrics(df.sparkSession, path).get("numOutputRows", 0))
    log.info("  wrote %s %-28s rows=%d", "staging" if stage else "table", table, written)
    return written


def publish_partitions(
    spark: SparkSession,
    settings: Settings,
    table: str,
    start: dt.date,
    end: dt.date,
    version: int | None = None,
    apps: tuple[str, ...] | None = None,
) -> int:
    """Copy the staged partitions ``[start, end]`` (rows of ``apps``, when given) into the
    published table (replaceWhere on the same dates and apps).

    ``version`` pins the staging twin's Delta version that was validated, so a build that
    re-stages between the check and the publish can never publish unchecked data.

    Returns:
        Rows published.

    Raises:
        FileNotFoundError: nothing was staged for the table.
    """
    if not table_exists(spark, settings, table, staged=True):
        raise FileNotFoundError(f"no staged data for {table}: run its build with staging first")
    staged = read_partitions(spark, settings, table, start, end, True, version, apps)
    return replace_partitions(staged, settings, table, start, end, apps=apps)


def insert_new_rows(
    df: DataFrame,
    settings: Settings,
    table: str,
    keys: tuple[str, ...],
    partitions: list[dt.date] | None = None,
) -> int:
    """Insert the rows of ``df`` whose ``keys`` (and ``dt``) are not in ``table`` yet (MERGE).

    Creates the table on first use. ``partitions`` (the ``dt`` values present in ``df``, when
    known) become a literal filter in the merge condition, so Delta reads only those partitions
    of the target.

    Returns:
        Rows inserted.
    """
    from delta.tables import DeltaTable

    spark = df.sparkSession
    path = table_path(settings, table)
    source = conform(df, SCHEMAS[table])
    if not table_exists(spark, settings, table):
        source.write.format("delta").mode("append").partitionBy("dt").save(path)
        return int(last_commit_metrics(spark, path).get("numOutputRows", 0))
    clauses = ["t.dt = s.dt"] + [f"t.`{k}` <=> s.`{k}`" for k in keys]  # <=> : null-safe
    if partitions is not None:
        if not partitions:
            return 0
        listed = ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(set(partitions)))
        clauses.append(f"t.dt IN ({listed})")
    condition = " AND ".join(clauses)
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(source.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
    )
    return int(last_commit_metrics(spark, path).get("numTargetRowsInserted", 0))


def append_once(df: DataFrame, path: str, app_id: str, version: int) -> None:
    """Append ``df`` to the Delta table at ``path`` unless version ``version`` of writer
    ``app_id`` was committed there already (Delta's idempotent writes, ``txnAppId`` /
    ``txnVersion``): a streaming micro-batch replayed after a crash adds nothing twice.

    Args:
        df: rows to append; the table is created by the first append.
        path: the table's location.
        app_id: a writer id stable across restarts of one checkpoint (e.g. query name and the
            checkpoint's query id) and unique among the table's writers.
        version: increasing per write of that writer (the micro-batch id).
    """
    (
        df.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", version)
        .save(path)
    )


def is_delta_table(spark: SparkSession, path: str) -> bool:
    """True when a Delta table is at ``path``."""
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, path)
