"""The Redshift stand-in: a local PostgreSQL cluster holding the DWS marts and the BI views.

``lakehouse warehouse start`` creates (once) a PostgreSQL cluster under
``<serving_dir>/postgres`` with the server binaries of the machine's PostgreSQL package, starts it
on 127.0.0.1:``LAKEHOUSE_PG_PORT`` (default 5439, Redshift's port), and applies the Redshift SQL of
``sql/redshift``: the marts (``marts/*.sql``, with the Redshift-only clauses ENCODE, DISTSTYLE,
DISTKEY and SORTKEY removed by sqlglot) and the views (``views/*.sql``, run as they are: they are
written in the subset both engines share). BI tools connect with the PostgreSQL driver
(``jdbc:postgresql://127.0.0.1:5439/clickstream``, user ``lakehouse``, no password).

PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres`` system user
that the Debian package creates, so the serving folder must be reachable by that user.

:func:`load_day` is the local twin of ``sql/redshift/load/load_day.sql``: it replaces one day of
a mart with that day's Parquet export in one transaction (delete the day, insert it), so loading
a day twice leaves the mart unchanged.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from spark_jobs import tables as T
from spark_jobs.settings import PROJECT_DIR, Settings

log = logging.getLogger("lakehouse")

HOST = "127.0.0.1"
USER = "lakehouse"
REDSHIFT_SQL = PROJECT_DIR / "sql" / "redshift"
START_TIMEOUT_SEC = 60


def jdbc_url(settings: Settings) -> str:
    """What a BI tool's PostgreSQL (or Redshift) JDBC driver connects to."""
    return f"jdbc:postgresql://{HOST}:{settings.pg_port}/{settings.bi_database}"


def data_dir(settings: Settings) -> Path:
    """The cluster's data folder: ``<serving_dir>/postgres``."""
    return settings.serving_dir / "postgres"


def bin_dir() -> Path:
    """Folder of ``initdb`` and ``pg_ctl``: ``LAKEHOUSE_PG_BIN``, else the newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian), else wherever ``pg_ctl`` is on PATH.

    Raises:
        RuntimeError: no PostgreSQL server binaries (``apt-get install postgresql``).
    """
    if os.environ.get("LAKEHOUSE_PG_BIN"):
        return Path(os.environ["LAKEHOUSE_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _as_server_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses root: run its tools as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _run(argv: list[str]) -> str:
    done = subprocess.run(_as_server_user(argv), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:2])} failed ({done.returncode}): {done.stderr or done.stdout}"
        )
    return done.stdout


def _prepare_data_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(path, owner.pw_uid, owner.pw_gid)
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(path)])
        if probe.returncode != 0:
            raise RuntimeError(
                f"the postgres user cannot reach {path}: set LAKEHOUSE_SERVING_DIR to a folder "
                "whose parents it may traverse (e.g. under /tmp or /var/lib)"
            )
    os.chmod(path, 0o700)


def status(settings: Settings) -> int | None:
    """PID of the running cluster's postmaster (from ``postmaster.pid``), or None."""
    try:
        pid = int((data_dir(settings) / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def start(settings: Settings) -> int:
    """Create the cluster on first use, start it (no-op when it runs), then :func:`apply_sql`.

    Returns:
        The postmaster's PID.

    Raises:
        RuntimeError: no server binaries, or ``initdb``/``pg_ctl`` failed (with their output and
            the server log's tail).
    """
    pid = status(settings)
    if pid is None:
        data = data_dir(settings)
        tools = bin_dir()
        if not (data / "PG_VERSION").exists():
            _prepare_data_dir(data)
            _run([str(tools / "initdb"), "-D", str(data), "-U", USER, "--auth=trust",
                  "-E", "UTF8", "--no-locale"])  # fmt: skip
            log.info("WAREHOUSE created a PostgreSQL cluster in %s", data)
        server_log = data / "server.log"
        options = (
            f"-c listen_addresses={HOST} -p {settings.pg_port} -c unix_socket_directories={data}"
        )
        try:
            _run([str(tools / "pg_ctl"), "-D", str(data), "-l", str(server_log), "-o", options,
                  "-w", "-t", str(START_TIMEOUT_SEC), "start"])  # fmt: skip
        except RuntimeError as exc:
            tail = "\n".join(server_log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"{exc}\nserver log {server_log}:\n{tail}") from exc
        pid = status(settings)
    _create_database(settings)
    apply_sql(settings)
    return pid


def stop(settings: Settings) -> bool:
    """Stop the cluster (``pg_ctl stop -m fast``, which signals the PID of ``postmaster.pid``).

    Returns:
        False when it was not running.
    """
    if status(settings) is None:
        return False
    _run([str(bin_dir() / "pg_ctl"), "-D", str(data_dir(settings)), "-m", "fast", "-w", "stop"])
    return True


def connect(settings: Settings, database: str | None = None):
    """A psycopg (3) connection to the local cluster, as the ``lakehouse`` superuser.

    Raises:
        psycopg.OperationalError: the cluster is not running (``lakehouse warehouse start``).
    """
    import psycopg

    return psycopg.connect(
        host=HOST,
        port=settings.pg_port,
        user=USER,
        dbname=database or settings.bi_database,
        connect_timeout=10,
    )


def _create_database(settings: Settings) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = connect(settings, database="postgres")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    with conn:
        conn.autocommit = True
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.bi_database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{settings.bi_database}"')
        # BI tools see the marts and views without a schema prefix, as in Redshift's search_path
        conn.execute(
            f'ALTER DATABASE "{settings.bi_database}" SET search_path TO '
            f"{settings.bi_database}, public"
        )


def mart_tables() -> list[str]:
    """The DWS tables that have a Redshift mart (``sql/redshift/marts/<table>.sql``)."""
    return [t.name for t in T.TABLES if (REDSHIFT_SQL / "marts" / f"{t.name}.sql").exists()]


def postgres_ddl(redshift_sql: str) -> str:
    """A Redshift ``CREATE TABLE`` in PostgreSQL: sqlglot parses it as Redshift, drops the
    Redshift-only parts (ENCODE, DISTSTYLE, DISTKEY, SORTKEY) and writes PostgreSQL."""
    import sqlglot
    from sqlglot import exp

    create = sqlglot.parse_one(redshift_sql, read="redshift")
    for node in list(create.find_all(exp.EncodeColumnConstraint)):
        node.parent.pop()
    props = create.args.get("properties")
    if props is not None:
        for node in list(props.expressions):
            if isinstance(node, exp.DistStyleProperty | exp.DistKeyProperty | exp.SortKeyProperty):
                node.pop()
        if not props.expressions:
            props.pop()
    return create.sql("postgres", comments=False)


def apply_sql(settings: Settings) -> None:
    """Create the schema, the marts and the views (idempotent: ``IF NOT EXISTS`` tables,
    ``CREATE OR REPLACE`` views)."""
    with connect(settings) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {settings.bi_database}")
        conn.execute(f"SET search_path TO {settings.bi_database}")
        for table in mart_tables():
            conn.execute(postgres_ddl((REDSHIFT_SQL / "marts" / f"{table}.sql").read_text()))
        for path in sorted((REDSHIFT_SQL / "views").glob("rpt_*.sql")):
            conn.execute(path.read_text())
    log.info("WAREHOUSE %s: %d marts, views applied (%s)", settings.bi_database,
             len(mart_tables()), jdbc_url(settings))  # fmt: skip


def load_day(settings: Settings, table: str, day, files: list[str]) -> int:
    """Replace ``day`` of the mart ``table`` with the rows of the export's Parquet ``files``.

    One transaction: ``DELETE ... WHERE dt = day``, then ``COPY`` of the files' rows (read with
    pyarrow, one record batch at a time). A day with no files is emptied.

    Returns:
        Rows loaded.

    Raises:
        ValueError: a file's columns differ from the mart's (minus ``dt``).
    """
    import pyarrow.parquet as pq

    schema = settings.bi_database
    loaded = 0
    with connect(settings) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schema, table),
            )
        ]
        data_columns = [c for c in columns if c != "dt"]
        conn.execute(f"DELETE FROM {schema}.{table} WHERE dt = %s", (day,))
        target = f"{schema}.{table} ({', '.join(data_columns)}, dt)"
        with conn.cursor().copy(f"COPY {target} FROM STDIN") as copy:
            for path in files:
                parquet = pq.ParquetFile(path)
                names = [n for n in parquet.schema_arrow.names if n != "dt"]
                if sorted(names) != sorted(data_columns):
                    raise ValueError(f"{path}: columns {names} do not match {schema}.{table}")
                for batch in parquet.iter_batches(columns=data_columns):
                    for row in zip(
                        *(batch.column(c).to_pylist() for c in data_columns), strict=True
                    ):
                        copy.write_row((*row, day))
                        loaded += 1
    return loaded
