"""Pure-Python registry of the lakehouse tables: name, layer, grain, keys, partition, upstreams.

The registry is the one list that DAGs, the CLI, the Great Expectations suites, the SQL DDL and
the tests iterate over. It imports nothing heavy, so Airflow can parse DAG files that use it.

- :data:`TABLES`: the batch tables (ODS -> DWD -> DWS and the ingest manifest), in build order
  (every table after its upstreams): what the daily DAG builds, checks and publishes, what
  maintenance optimises and what BI serving registers. Partitioned by ``dt``.
- :data:`RT_TABLES`: the real-time tables (layer ``rt``) that the streaming job
  (``lakehouse stream``) appends to, one micro-batch per Delta commit. They are **not**
  partitioned: each has a ``time_column`` (BIGINT epoch ms UTC) whose UTC date is what a date
  range selects (``lakehouse validate --table rt_... --ds D``), by a filter over the whole table.
- :data:`ALL_TABLES`: both; every table has a GX suite (``expectations/<table>.json``) and Athena
  and Redshift DDL (``sql/<dialect>/ddl/<table>.sql``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """One Delta table of the lakehouse.

    Attributes:
        name: table name, also the job module, GX suite, DDL file and test file name.
        layer: ``ods``, ``dwd``, ``dws`` or ``etl`` (technical).
        grain: one line: what one row is.
        keys: columns that identify a row (unique together).
        upstreams: tables the job reads.
        job: dotted module that writes the table (its ``main`` is the spark-submit entry point).
        partition_column: ``dt`` (DATE, UTC) for every batch table; None for the ``rt`` tables,
            which are not partitioned.
        time_column: for an unpartitioned (``rt``) table, the BIGINT epoch-millisecond (UTC)
            column whose date places a row on a day (a window's begin, an event's time); None
            for the partitioned tables (their ``dt`` does that).
    """

    name: str
    layer: str
    grain: str
    keys: tuple[str, ...]
    upstreams: tuple[str, ...]
    job: str
    partition_column: str | None = "dt"
    time_column: str | None = None

    @property
    def job_path(self) -> str:
        """Job file relative to the project root (what ``spark-submit`` takes)."""
        return self.job.replace(".", "/") + ".py"


ODS_EVENTS = "ods_clickstream_events_di"
ODS_REJECTED = "ods_clickstream_rejected_di"
INGEST_MANIFEST = "etl_ingest_manifest"
DWD_EVENTS = "dwd_clickstream_events_di"
DWD_SESSIONS = "dwd_clickstream_sessions_di"
DWS_ACTIVE_USERS = "dws_active_users_1d"
DWS_CONVERSION = "dws_conversion_1d"
DWS_CATEGORY = "dws_category_1d"
DWS_RETENTION = "dws_retention_1d"

_INGEST_JOB = "spark_jobs.ods.ods_clickstream_events_di"

TABLES: tuple[Table, ...] = (
    Table(
        ODS_EVENTS,
        "ods",
        "one row per readable raw record (typed), partitioned by event date",
        ("etl_source_object", "etl_source_line"),
        (),
        _INGEST_JOB,
    ),
    Table(
        ODS_REJECTED,
        "ods",
        "one row per raw record (or whole object) that could not be read, with its reason",
        ("etl_source_object", "etl_source_line"),
        (),
        _INGEST_JOB,
    ),
    Table(
        INGEST_MANIFEST,
        "etl",
        "one row per ingested raw object, with its record counts",
        ("etl_source_object",),
        (),
        _INGEST_JOB,
    ),
    Table(
        DWD_EVENTS,
        "dwd",
        "one row per distinct event_id, cleaned and sessionised",
        ("event_id",),
        (ODS_EVENTS,),
        "spark_jobs.dwd.dwd_clickstream_events_di",
    ),
    Table(
        DWD_SESSIONS,
        "dwd",
        "one row per session (dt = session start date)",
        ("session_id",),
        (DWD_EVENTS,),
        "spark_jobs.dwd.dwd_clickstream_sessions_di",
    ),
    Table(
        DWS_ACTIVE_USERS,
        "dws",
        "one row per (app_id, dt): events, DAU, rolling WAU/MAU, new users",
        ("app_id", "dt"),
        (DWD_EVENTS,),
        "spark_jobs.dws.dws_active_users_1d",
    ),
    Table(
        DWS_CONVERSION,
        "dws",
        "one row per (app_id, dt): sessions starting on dt and the ordered funnel",
        ("app_id", "dt"),
        (DWD_SESSIONS,),
        "spark_jobs.dws.dws_conversion_1d",
    ),
    Table(
        DWS_CATEGORY,
        "dws",
        "one row per (app_id, dt, category) with at least one event",
        ("app_id", "dt", "category"),
        (DWD_EVENTS,),
        "spark_jobs.dws.dws_category_1d",
    ),
    Table(
        DWS_RETENTION,
        "dws",
        "one row per (app_id, cohort_dt, day_n), day_n 0..30; dt = activity date",
        ("app_id", "cohort_dt", "day_n"),
        (DWD_EVENTS,),
        "spark_jobs.dws.dws_retention_1d",
    ),
)

RT_USER_SESSIONS_CHECKOUT = "rt_user_sessions_checkout"
RT_CLICKEVENTS_USERID_AGG = "rt_clickevents_userid_agg"
RT_DEPARTMENTS_AGG = "rt_departments_agg"
RT_TRADE_ORDERS_1M = "rt_trade_orders_1m"
RT_ERROR_EVENTS = "rt_error_events"
RT_WARNING_ALERTS = "rt_warning_alerts"
RT_LATE_EVENTS = "rt_late_events"

_STREAM_JOB = "spark_jobs.streaming.job"
_WINDOW = ("windowBeginTime",)


def _rt(name: str, grain: str, keys: tuple[str, ...], time_column: str) -> Table:
    """A real-time table: layer ``rt``, written by the streaming job from Kafka topics (no
    upstream table), not partitioned."""
    return Table(name, "rt", grain, keys, (), _STREAM_JOB, None, time_column)


RT_TABLES: tuple[Table, ...] = (
    _rt(
        RT_USER_SESSIONS_CHECKOUT,
        "one row per user session (1 s gap) with an order_checkout, final once the watermark "
        "passes its end",
        ("userId", "windowBeginTime"),
        "windowBeginTime",
    ),
    _rt(
        RT_CLICKEVENTS_USERID_AGG,
        "one row per 10 s tumbling window of session end with at least one session",
        _WINDOW,
        "windowBeginTime",
    ),
    _rt(
        RT_DEPARTMENTS_AGG,
        "one row per (10 s window of session end, department) touched by a session",
        ("departmentName", *_WINDOW),
        "windowBeginTime",
    ),
    _rt(
        RT_TRADE_ORDERS_1M,
        "one row per minute of trade-order event time (tuptime) with at least one order",
        _WINDOW,
        "windowBeginTime",
    ),
    _rt(
        RT_ERROR_EVENTS,
        "one row per backend behaviour record whose errorMsg has [ERROR] or [PANIC]",
        ("etl_topic", "etl_partition", "etl_offset"),
        "createdAt",
    ),
    _rt(
        RT_WARNING_ALERTS,
        "one row per (action, minute) with 10 or more WARNING events",
        ("action", *_WINDOW),
        "windowBeginTime",
    ),
    _rt(
        RT_LATE_EVENTS,
        "one row per (stateful query, input record) the query dropped behind its watermark",
        ("query", "etl_topic", "etl_partition", "etl_offset"),
        "eventTime",
    ),
)

ALL_TABLES: tuple[Table, ...] = TABLES + RT_TABLES

BY_NAME: dict[str, Table] = {t.name: t for t in ALL_TABLES}

#: the tables of one ODS ingest batch, in publish order: the manifest last, so a publish that
#: dies half-way leaves the objects unknown to the manifest and the next run ingests them again
INGEST_BATCH: tuple[str, ...] = (ODS_EVENTS, ODS_REJECTED, INGEST_MANIFEST)

# Tables built from ODS by the daily run, in order (the ingest job writes the ODS/etl tables).
DOWNSTREAM_BUILD_ORDER: tuple[str, ...] = (
    DWD_EVENTS,
    DWD_SESSIONS,
    DWS_ACTIVE_USERS,
    DWS_CONVERSION,
    DWS_CATEGORY,
    DWS_RETENTION,
)


def get_table(name: str) -> Table:
    """Look up a table (batch or ``rt``) by name.

    Raises:
        KeyError: unknown table, with the list of known ones.
    """
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(BY_NAME)}") from None
