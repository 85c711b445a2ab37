"""DB-API 2 connections to the local BI endpoints, by engine name (``lakehouse sql --engine``).

- ``local-athena``: the Spark Thrift Server (:mod:`spark_jobs.serving.thrift_server`), impyla
  over HiveServer2, in the BI database;
- ``local-redshift``: the PostgreSQL warehouse (:mod:`spark_jobs.serving.warehouse`), psycopg,
  with the BI schema first on the search path.
"""

from __future__ import annotations

from spark_jobs.settings import Settings

LOCAL_ENGINES = ("local-athena", "local-redshift")


def connect(engine: str, settings: Settings):
    """Open a connection to the local endpoint of ``engine``; the caller closes it.

    Raises:
        ValueError: ``engine`` is not a local engine.
        ConnectionError / psycopg.OperationalError: the endpoint is not running
            (``lakehouse serve start`` / ``lakehouse warehouse start``).
    """
    if engine == "local-athena":
        from spark_jobs.serving import thrift_server

        return thrift_server.connect(settings, settings.bi_database)
    if engine == "local-redshift":
        from spark_jobs.serving import warehouse

        return warehouse.connect(settings)
    raise ValueError(f"not a local engine: {engine!r} (one of {', '.join(LOCAL_ENGINES)})")
