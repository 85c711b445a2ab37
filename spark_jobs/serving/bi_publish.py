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

With ``--target aws`` (an ``s3a://`` lakehouse root) the same three steps go to AWS
(:func:`publish_days_aws`): the exports are written to S3 by Spark, every table is registered in
the Glue catalog through Athena (the DDL of ``sql/athena/ddl`` as ``CREATE ... IF NOT EXISTS``;
Athena's native Delta tables need nothing per day), and each mart day is loaded into Redshift by
``sql/redshift/load/load_day.sql`` sent with the Data API's ``BatchExecuteStatement``, which runs
the statements as one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path
from string import Template

from spark_jobs.common import delta_io
from spark_jobs.common.jobframe import days as each_day
from spark_jobs.serving import thrift_server, warehouse
from spark_jobs.settings import PROJECT_DIR, Settings

SQL_DIR = PROJECT_DIR / "sql"

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

    For an object-store root the files are not listed (the lists are empty): Redshift's COPY
    reads the day's folder, and a day without rows keeps a stale folder (remove it by hand).
    """
    df = delta_io.read_partitions(spark, settings, table, start, end)
    (
        df.repartition(max(1, settings.shuffle_partitions), "dt")
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("dt")
        .parquet(export_path(settings, table))
    )
    if "://" in settings.lakehouse_root:  # object store: Redshift COPY reads the day's folder
        return {day: [] for day in each_day(start, end)}
    root = Path(export_path(settings, table))
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


def lake_bucket(settings: Settings) -> str:
    """The lakehouse root without its scheme (``s3a://bucket/lake`` -> ``bucket/lake``): the
    ``${LAKE_BUCKET}`` of the SQL files.

    Raises:
        ValueError: the root is not an S3 URI.
    """
    root = settings.lakehouse_root
    for scheme in ("s3a://", "s3://"):
        if root.startswith(scheme):
            return root[len(scheme) :].rstrip("/")
    raise ValueError(f"--target aws needs an s3:// or s3a:// LAKEHOUSE_ROOT, not {root!r}")


def athena_registration_statements(settings: Settings) -> list[str]:
    """``CREATE EXTERNAL TABLE IF NOT EXISTS`` of every registry table, from its Athena DDL
    (``sql/athena/ddl/<table>.sql``) with ``${LAKE_BUCKET}`` substituted."""
    import sqlglot
    from sqlglot import exp

    from spark_jobs import tables as T

    statements = []
    for table in T.TABLES:
        text = Template((SQL_DIR / "athena" / "ddl" / f"{table.name}.sql").read_text())
        create = sqlglot.parse_one(
            text.substitute(LAKE_BUCKET=lake_bucket(settings)), read="athena"
        )
        assert isinstance(create, exp.Create)
        create.set("exists", True)
        statements.append(create.sql("athena", comments=False))
    return statements


def redshift_load_statements(settings: Settings, table: str, day: dt.date) -> list[str]:
    """``sql/redshift/load/load_day.sql`` for one mart and day, as the statement list of one
    ``BatchExecuteStatement`` (which is a transaction itself, so without BEGIN and COMMIT).

    Raises:
        ValueError: ``LAKEHOUSE_REDSHIFT_COPY_ROLE`` is not set, or the root is not on S3.
    """
    if not settings.redshift_copy_role:
        raise ValueError("set LAKEHOUSE_REDSHIFT_COPY_ROLE: the IAM role Redshift's COPY assumes")
    text = Template((SQL_DIR / "redshift" / "load" / "load_day.sql").read_text()).substitute(
        TABLE=table,
        LAKE_BUCKET=lake_bucket(settings),
        DT=day.isoformat(),
        IAM_ROLE=settings.redshift_copy_role,
    )
    # the file's own statement text, sent as written (it holds no ';' inside a literal)
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    statements = [" ".join(part.split()) for part in body.split(";") if part.strip()]
    statements = [sql for sql in statements if sql.upper() not in ("BEGIN", "COMMIT")]
    return statements


def register_athena(settings: Settings) -> list[str]:
    """Run :func:`athena_registration_statements` on Athena; returns their execution ids."""
    from spark_jobs.serving import aws

    ids: list[str] = []
    for statement in athena_registration_statements(settings):
        aws.run_athena(statement, None, settings, on_submit=ids.append)
    return ids


def load_redshift_day(settings: Settings, table: str, day: dt.date) -> str:
    """Load one mart day into Redshift: :func:`redshift_load_statements` in one
    ``BatchExecuteStatement`` (one transaction), waited for. Returns the statement id.

    Raises:
        spark_jobs.serving.aws.QueryFailedError: the API refused the batch or it failed.
        spark_jobs.serving.aws.QueryTimeoutError: not finished in time (then cancelled).
    """
    from botocore.exceptions import ClientError

    from spark_jobs.serving import aws

    client = aws.redshift_client(settings)
    request = {
        "Sqls": redshift_load_statements(settings, table, day),
        "Database": settings.redshift_database,
        **aws.redshift_target(settings),
    }
    try:
        statement_id = client.batch_execute_statement(**request)["Id"]
    except ClientError as error:
        raise aws.QueryFailedError("redshift", None, None, str(error)) from error
    aws.wait_for_statement(client, statement_id, settings)
    return statement_id


def publish_days_aws(spark, settings: Settings, start: dt.date, end: dt.date) -> dict[str, int]:
    """Exports on S3, Glue registration through Athena, Redshift day loads (see the module doc).

    Returns:
        Days loaded into Redshift per mart table.

    Raises:
        ValueError: the root is not on S3, or the COPY role is not set.
        spark_jobs.serving.aws.QueryFailedError / QueryTimeoutError: an Athena or Redshift
            statement failed or timed out (with the engine's error text).
    """
    lake_bucket(settings)  # fail before any work on a local root
    register_athena(settings)
    loaded = {}
    for table in warehouse.mart_tables():
        write_exports(spark, settings, table, start, end)
        for day in each_day(start, end):
            load_redshift_day(settings, table, day)
        loaded[table] = (end - start).days + 1
        log.info("BI-PUBLISH %s %s..%s: exported and loaded into Redshift", table, start, end)
    return loaded
