"""The Athena stand-in: a Spark Thrift Server (HiveServer2 protocol) over the lakehouse tables.

BI tools connect with the Hive JDBC driver (``jdbc:hive2://127.0.0.1:<port>/<database>``, any
user name, no password) or from Python with impyla. The server is pyspark's own
``org.apache.spark.sql.hive.thriftserver.HiveThriftServer2``, started by ``spark-submit`` with the
lakehouse's Spark configuration (Delta, UTC, the S3 endpoint). It binds 127.0.0.1 only and keeps
its Hive metastore (Derby) and warehouse under :attr:`Settings.serving_dir`.

:func:`register` makes what Athena serves on AWS: every registry table (the streaming job's
``rt_*`` tables included) whose Delta log exists as
``CREATE TABLE ... USING DELTA LOCATION`` (columns and partitions come from the Delta log, as in
Athena) and every ``rpt_*`` view, transpiled by sqlglot from ``sql/athena/views`` to Spark SQL:
one source of truth per view. Delta reads the latest log version on every query, so a new day is
visible without any refresh.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from pathlib import Path

from spark_jobs import tables as T
from spark_jobs.serving import daemon
from spark_jobs.settings import PROJECT_DIR, Settings

log = logging.getLogger("lakehouse")

NAME = "thrift-server"
SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
HOST = "127.0.0.1"
ATHENA_VIEWS = PROJECT_DIR / "sql" / "athena" / "views"
START_TIMEOUT_SEC = 180


def jdbc_url(settings: Settings) -> str:
    """What a BI tool's Hive/Spark JDBC driver connects to."""
    return f"jdbc:hive2://{HOST}:{settings.thrift_port}/{settings.bi_database}"


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def driver_class_path(jars: list[str]) -> list[str]:
    """The cached Delta jars that pyspark does not ship itself, for ``--driver-class-path``.

    Ivy also resolves Delta's transitive dependencies that pyspark already has in other versions
    (Jackson 2.13, Hadoop client, Parquet): put first on the driver class path they would shadow
    pyspark's own. Jars are compared by artifact name, without group and version.
    """
    bundled = {_artifact(p.name) for p in (_spark_home() / "jars").glob("*.jar")}
    return [j for j in jars if _artifact(Path(j).name.split("_", 1)[-1]) not in bundled]


def _artifact(file_name: str) -> str:
    match = re.match(r"(.+?)-\d[\w.\-]*\.jar$", file_name)
    return match.group(1) if match else file_name


def server_command(settings: Settings) -> list[str]:
    """The ``spark-submit`` command line of the server.

    Raises:
        RuntimeError: the Delta jars are not cached yet (run ``lakehouse setup``).
    """
    from spark_jobs.common.spark import cached_jars, required_packages, spark_conf

    jars = cached_jars(required_packages(settings))
    if not jars:
        raise RuntimeError("the Delta jars are not cached: run `lakehouse setup` first")
    state = settings.serving_dir.resolve()
    conf = spark_conf(settings)
    conf.pop("spark.jars", None)
    conf["spark.driver.extraJavaOptions"] += f" -Dderby.system.home={state}"
    conf.update(
        {
            # with --jars instead, a second JDBC session fails with NoClassDefFoundError on Delta
            "spark.driver.extraClassPath": ":".join(driver_class_path(jars)),
            # one snapshot partition: a table's first query takes seconds instead of ~40 s
            "spark.databricks.delta.snapshotPartitions": "1",
            "spark.sql.warehouse.dir": str(state / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={state / 'metastore_db'};create=true"
            ),
            "spark.sql.catalogImplementation": "hive",
        }
    )
    argv = [str(_spark_home() / "bin" / "spark-submit"), "--master", settings.spark_master]
    argv += ["--name", "lakehouse-thrift-server", "--class", SERVER_CLASS]
    for key, value in sorted(conf.items()):
        argv += ["--conf", f"{key}={value}"]
    argv += ["spark-internal"]
    argv += ["--hiveconf", f"hive.server2.thrift.bind.host={HOST}"]
    argv += ["--hiveconf", f"hive.server2.thrift.port={settings.thrift_port}"]
    return argv


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0


def connect(settings: Settings, database: str | None = None):
    """A DB-API 2 connection (impyla, HiveServer2 binary protocol, PLAIN auth) to the server.

    Raises:
        ConnectionError: nothing listens on the port (the server is not started).
    """
    from impala.dbapi import connect as hive_connect

    if not _port_open(settings.thrift_port):
        raise ConnectionError(
            f"no Thrift Server on {HOST}:{settings.thrift_port}: run `lakehouse serve start`"
        )
    return hive_connect(
        host=HOST,
        port=settings.thrift_port,
        auth_mechanism="PLAIN",
        user=os.environ.get("USER", "lakehouse"),
        database=database,
    )


def _answers(settings: Settings) -> bool:
    if not _port_open(settings.thrift_port):
        return False
    try:
        conn = connect(settings)
        cur = conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchall()
        conn.close()
        return True
    except Exception:  # not accepting sessions yet
        return False


def start(settings: Settings) -> int:
    """Start the server (no-op when it runs), wait until it answers, then :func:`register`.

    Returns:
        The server's PID.

    Raises:
        RuntimeError: it did not start (the message has the log tail), or the port is taken by
            another process.
    """
    state = settings.serving_dir
    if daemon.running_pid(state, NAME) is None and _port_open(settings.thrift_port):
        raise RuntimeError(
            f"port {settings.thrift_port} is taken by another process: set LAKEHOUSE_THRIFT_PORT"
        )
    env = dict(os.environ)
    env["SPARK_LOCAL_IP"] = HOST
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env["SPARK_HOME"] = str(_spark_home())
    pid = daemon.start_daemon(
        NAME,
        server_command(settings),
        state,
        lambda: _answers(settings),
        START_TIMEOUT_SEC,
        env=env,
    )
    register(settings)
    return pid


def stop(settings: Settings) -> bool:
    """Stop the server by its PID. Returns False when it was not running."""
    return daemon.stop_daemon(settings.serving_dir, NAME)


def status(settings: Settings) -> int | None:
    """PID of the running server, or None."""
    return daemon.running_pid(settings.serving_dir, NAME)


def view_sql(name: str) -> str:
    """``CREATE OR REPLACE VIEW`` of ``sql/athena/views/<name>.sql`` in Spark SQL (sqlglot)."""
    import sqlglot

    text = (ATHENA_VIEWS / f"{name}.sql").read_text()
    return sqlglot.transpile(text, read="athena", write="spark")[0]


def view_names() -> list[str]:
    """The ``rpt_*`` views, in file order."""
    return sorted(p.stem for p in ATHENA_VIEWS.glob("rpt_*.sql"))


def register(settings: Settings) -> dict[str, list[str]]:
    """Register the existing Delta tables and create the views in :attr:`Settings.bi_database`.

    Idempotent: tables are ``CREATE TABLE IF NOT EXISTS`` over their locations; views are
    replaced. A view whose tables do not exist yet is skipped (created by a later call).

    Returns:
        ``{"tables": [...], "views": [...], "skipped_views": [...]}``.
    """
    from spark_jobs.common.delta_io import table_path

    db = settings.bi_database
    conn = connect(settings)
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    cur.execute(f"USE {db}")
    tables = []
    for table in T.ALL_TABLES:
        location = table_path(settings, table.name)
        if not _delta_log_exists(location):
            continue
        try:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {db}.{table.name} USING DELTA LOCATION '{location}'"
            )
        except Exception as exc:  # an object-store table not written yet
            log.info("SERVE table %s not registered yet: %s", table.name, str(exc)[:200])
            continue
        cur.execute(f"REFRESH TABLE {db}.{table.name}")
        tables.append(table.name)
    views, skipped = [], []
    for name in view_names():
        try:
            cur.execute(view_sql(name))
            views.append(name)
        except Exception as exc:  # a table it reads is not there yet
            log.info("SERVE view %s not created yet: %s", name, str(exc).splitlines()[0][:200])
            skipped.append(name)
    conn.close()
    log.info(
        "SERVE %s: %d tables, %d views registered (%s)",
        db,
        len(tables),
        len(views),
        jdbc_url(settings),
    )
    return {"tables": tables, "views": views, "skipped_views": skipped}


def _delta_log_exists(location: str) -> bool:
    """A local table without a Delta log is skipped; on an object store, CREATE TABLE tells."""
    if "://" not in location:
        return (Path(location) / "_delta_log").is_dir()
    return True
