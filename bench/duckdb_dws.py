"""An independent DuckDB implementation of the project's DWS work, over the raw landing objects.

The scale benchmark (``bench/scale.py``) runs it on the very landing objects the project ingests,
to time the project against a single-node engine doing the same work and to check that both
give the same DWS numbers. Nothing here imports the project's Spark code: the definitions are
re-implemented from the README ("Definitions") in SQL, plus a Python loop for the 24 h cap of
the (rare) inactivity runs that last 24 h or more.

Steps (each a DuckDB table, timed):

1. ``raw``: every line of every object (``**/*.gz`` and plain ``.json``: both layouts) read by
   ``read_ndjson`` with the canonical event fields, the object's file name and arrival hour
   (from its key);
2. ``ods``: readable records: an event id, a parseable event time, not later than the arrival
   hour's end + 1 h clock skew, not before 2000-01-01; ``app_id`` defaults to the stream,
   ``event_type`` outside the canonical types -> ``other`` (the replayed data uses canonical
   types only), blank users -> null;
3. ``dwd_events``: one row per ``event_id``, the copy of the first object (by name); sessions
   per ``(app_id, user_id)``: a gap > 30 min starts a new inactivity run; a run lasting 24 h or
   more is cut at the first event >= 24 h after the current session's start;
4. ``dwd_sessions``: one row per session (start date, funnel flags);
5. ``dws_active_users``, ``dws_conversion``, ``dws_category``: the DWS rows of every day from
   the app's first event date to ``end``.

Shapes of the results (``DuckDws.rows``): ``{"dws_active_users_1d": [(app_id, dt, events, dau,
wau, mau, new_users, dau_mau_ratio)], "dws_conversion_1d": [(app_id, dt, sessions,
product_view_sessions, add_to_cart_sessions, purchase_sessions, sessions_with_purchase,
session_conversion_rate)], "dws_category_1d": [(app_id, dt, category, product_views,
add_to_carts, purchases, revenue, sessions)]}`` with ``dt`` a ``datetime.date``, ratios floats
and revenue a ``Decimal`` with 4 decimals.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

GAP_US = 30 * 60 * 1_000_000
CAP_US = 24 * 3600 * 1_000_000
MAX_CLOCK_SKEW_SEC = 3600
MIN_EVENT_DATE = "2000-01-01"
CANONICAL_TYPES = (
    "page_view",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "purchase",
    "order_cancelled",
    "error",
    "other",
)
#: DuckDB step -> the project's table(s) doing that work
LAYERS = {
    "read + parse (ODS)": "ods (ingest)",
    "dedup + sessions (DWD events)": "dwd_clickstream_events_di",
    "sessions table (DWD sessions)": "dwd_clickstream_sessions_di",
    "active users": "dws_active_users_1d",
    "conversion": "dws_conversion_1d",
    "category": "dws_category_1d",
}

_FIREHOSE_HOUR = r"/(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$"
_KAFKA_HOUR = r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/[^/]+$"
_STREAM = r"/(?:\d{2}/)([A-Za-z0-9_.-]+?)-\d+-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-fA-F-]{36}"


@dataclass
class DuckDws:
    """Seconds per step (``[(step, seconds, rows)]``), the DWS rows, and how many inactivity
    runs needed the 24 h cap."""

    steps: list[tuple[str, float, int]] = field(default_factory=list)
    rows: dict[str, list[tuple]] = field(default_factory=dict)
    capped_runs: int = 0


def landing_files(landing: str | Path) -> list[str]:
    """Every object file under a local landing folder (both layouts), sorted."""
    root = Path(landing)
    return sorted(
        str(p) for p in root.rglob("*") if p.is_file() and p.name.endswith((".gz", ".json"))
    )


def _timed(con, result: DuckDws, step: str, sql: str, table: str) -> None:
    began = time.monotonic()
    con.execute(f"CREATE OR REPLACE TABLE {table} AS {sql}")
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    result.steps.append((step, time.monotonic() - began, rows))


def run_duckdb_dws(
    landing: str | Path, end: dt.date, threads: int | None = None, memory_limit: str | None = None
) -> DuckDws:
    """Compute the DWS tables from the landing's raw objects with DuckDB (see module docstring).

    Args:
        landing: local landing folder (Firehose and/or Kafka Connect S3 sink layout).
        end: last day of the DWS spine (the project run's end date), UTC.
        threads: DuckDB threads (default: DuckDB's, the machine's cores).
        memory_limit: DuckDB ``memory_limit`` (e.g. ``"8GB"``; default DuckDB's 80 % of RAM).

    Raises:
        FileNotFoundError: no object under ``landing``.
    """
    files = landing_files(landing)
    if not files:
        raise FileNotFoundError(f"no landing objects under {landing}")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    result = DuckDws()
    columns = (
        "{event_id: 'VARCHAR', app_id: 'VARCHAR', event_ts: 'VARCHAR', event_name: 'VARCHAR', "
        "event_type: 'VARCHAR', user_id: 'VARCHAR', category: 'VARCHAR', "
        "price: 'DECIMAL(18,4)', quantity: 'INTEGER'}"
    )
    types = ", ".join(f"'{t}'" for t in CANONICAL_TYPES)
    _timed(
        con,
        result,
        "read + parse (ODS)",
        f"""
        WITH raw AS (
            SELECT *,
                   coalesce(nullif(regexp_extract(filename, '{_FIREHOSE_HOUR}', 1), ''),
                            regexp_extract(filename, '{_KAFKA_HOUR}', 1)) AS y,
                   coalesce(nullif(regexp_extract(filename, '{_FIREHOSE_HOUR}', 2), ''),
                            regexp_extract(filename, '{_KAFKA_HOUR}', 2)) AS m,
                   coalesce(nullif(regexp_extract(filename, '{_FIREHOSE_HOUR}', 3), ''),
                            regexp_extract(filename, '{_KAFKA_HOUR}', 3)) AS d,
                   coalesce(nullif(regexp_extract(filename, '{_FIREHOSE_HOUR}', 4), ''),
                            regexp_extract(filename, '{_KAFKA_HOUR}', 4)) AS h,
                   coalesce(nullif(regexp_extract(filename, '{_STREAM}', 1), ''),
                            regexp_extract(filename, 'topics/([^/]+)/', 1)) AS stream,
                   try_cast(replace(trim(event_ts), 'Z', '') AS TIMESTAMP) AS ts
            FROM read_ndjson({files!r}, columns = {columns}, filename = true,
                             format = 'newline_delimited')
        )
        SELECT nullif(trim(event_id), '') AS event_id,
               coalesce(nullif(trim(app_id), ''), stream) AS app_id,
               ts AS event_ts,
               CAST(ts AS DATE) AS dt,
               CASE WHEN lower(trim(coalesce(event_type, event_name))) IN ({types})
                    THEN lower(trim(coalesce(event_type, event_name))) ELSE 'other' END
                   AS event_type,
               nullif(trim(user_id), '') AS user_id,
               nullif(trim(category), '') AS category,
               price, quantity, filename
        FROM raw
        WHERE nullif(trim(event_id), '') IS NOT NULL
          AND ts IS NOT NULL
          AND ts <= make_timestamp(CAST(y AS BIGINT), CAST(m AS BIGINT), CAST(d AS BIGINT),
                                   CAST(h AS BIGINT), 0, 0)
                    + INTERVAL 1 HOUR + INTERVAL {MAX_CLOCK_SKEW_SEC} SECOND
          AND ts >= TIMESTAMP '{MIN_EVENT_DATE}'
        """,
        "ods",
    )
    began = time.monotonic()
    con.execute(
        """
        CREATE OR REPLACE TABLE runs AS
        WITH dedup AS (
            SELECT * EXCLUDE (filename) FROM ods
            QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY filename) = 1
        ), ordered AS (
            SELECT *, epoch_us(event_ts) AS us,
                   lag(epoch_us(event_ts)) OVER w AS prev_us
            FROM dedup WHERE user_id IS NOT NULL
            WINDOW w AS (PARTITION BY app_id, user_id ORDER BY event_ts, event_id)
        ), numbered AS (
            SELECT *, sum(CASE WHEN prev_us IS NULL OR us - prev_us > 1800000000 THEN 1 ELSE 0
                          END) OVER (PARTITION BY app_id, user_id ORDER BY event_ts, event_id
                                     ROWS UNBOUNDED PRECEDING) AS run
            FROM ordered
        )
        SELECT *, min(us) OVER r AS run_start_us, max(us) OVER r AS run_end_us
        FROM numbered WINDOW r AS (PARTITION BY app_id, user_id, run)
        """
    )
    long_runs = con.execute(
        f"""SELECT app_id, user_id, run, event_id, us FROM runs
            WHERE run_end_us - run_start_us >= {CAP_US}
            ORDER BY app_id, user_id, run, us, event_id"""
    ).fetchall()
    starts, current, start = [], None, None
    for app_id, user_id, run, event_id, us in long_runs:
        if (app_id, user_id, run) != current or us - start >= CAP_US:
            if (app_id, user_id, run) != current:
                result.capped_runs += 1
            current, start = (app_id, user_id, run), us
        starts.append((event_id, start))
    con.execute("CREATE OR REPLACE TABLE cap_starts (event_id VARCHAR, start_us BIGINT)")
    if starts:
        con.executemany("INSERT INTO cap_starts VALUES (?, ?)", starts)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE dwd_events AS
        SELECT r.app_id, r.user_id, r.event_id, r.event_ts, r.dt, r.event_type, r.category,
               r.price, r.quantity,
               CASE WHEN r.run_end_us - r.run_start_us >= {CAP_US} THEN c.start_us
                    ELSE r.run_start_us END AS session_start_us
        FROM runs r LEFT JOIN cap_starts c USING (event_id)
        UNION ALL
        SELECT app_id, user_id, event_id, event_ts, dt, event_type, category, price, quantity,
               NULL AS session_start_us
        FROM (SELECT * EXCLUDE (filename) FROM ods
              QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY filename) = 1)
        WHERE user_id IS NULL
        """
    )
    rows = con.execute("SELECT count(*) FROM dwd_events").fetchone()[0]
    result.steps.append(("dedup + sessions (DWD events)", time.monotonic() - began, rows))
    _timed(
        con,
        result,
        "sessions table (DWD sessions)",
        """
        WITH firsts AS (
            SELECT *, min(CASE WHEN event_type = 'product_view' THEN event_ts END)
                          OVER s AS first_pv_ts
            FROM dwd_events WHERE session_start_us IS NOT NULL
            WINDOW s AS (PARTITION BY app_id, user_id, session_start_us)
        ), steps AS (
            SELECT *, min(CASE WHEN event_type = 'add_to_cart' AND event_ts >= first_pv_ts
                               THEN event_ts END) OVER s AS first_atc_ts
            FROM firsts WINDOW s AS (PARTITION BY app_id, user_id, session_start_us)
        )
        SELECT app_id, user_id, session_start_us,
               CAST(make_timestamp(session_start_us) AS DATE) AS dt,
               bool_or(event_type = 'product_view') AS has_product_view,
               bool_or(first_atc_ts IS NOT NULL) AS has_funnel_add_to_cart,
               coalesce(bool_or(event_type = 'purchase' AND event_ts >= first_atc_ts), false)
                   AS has_funnel_purchase,
               bool_or(event_type = 'purchase') AS has_purchase
        FROM steps GROUP BY app_id, user_id, session_start_us
        """,
        "dwd_sessions",
    )
    spine = f"""
        SELECT app_id, CAST(d AS DATE) AS dt
        FROM (SELECT app_id, min(dt) AS first_dt FROM dwd_events GROUP BY app_id) a,
             generate_series(CAST(a.first_dt AS TIMESTAMP), TIMESTAMP '{end}', INTERVAL 1 DAY)
                 AS g(d)
    """
    _timed(
        con,
        result,
        "active users",
        f"""
        WITH spine AS ({spine}),
        user_days AS (SELECT DISTINCT app_id, user_id, dt FROM dwd_events
                      WHERE user_id IS NOT NULL),
        rolling AS (
            SELECT s.app_id, s.dt,
                   count(DISTINCT u.user_id) FILTER (WHERE u.dt = s.dt) AS dau,
                   count(DISTINCT u.user_id) FILTER (WHERE u.dt > s.dt - 7) AS wau,
                   count(DISTINCT u.user_id) AS mau
            FROM spine s JOIN user_days u
              ON u.app_id = s.app_id AND u.dt BETWEEN s.dt - 29 AND s.dt
            GROUP BY s.app_id, s.dt
        ),
        daily AS (SELECT app_id, dt, count(*) AS events FROM dwd_events GROUP BY app_id, dt),
        first_seen AS (SELECT app_id, user_id, min(dt) AS dt FROM user_days
                       GROUP BY app_id, user_id),
        new_users AS (SELECT app_id, dt, count(*) AS new_users FROM first_seen
                      GROUP BY app_id, dt)
        SELECT s.app_id, s.dt, coalesce(d.events, 0) AS events, coalesce(r.dau, 0) AS dau,
               coalesce(r.wau, 0) AS wau, coalesce(r.mau, 0) AS mau,
               coalesce(n.new_users, 0) AS new_users,
               CASE WHEN coalesce(r.mau, 0) > 0 THEN r.dau / r.mau END AS dau_mau_ratio
        FROM spine s
        LEFT JOIN daily d USING (app_id, dt)
        LEFT JOIN rolling r USING (app_id, dt)
        LEFT JOIN new_users n USING (app_id, dt)
        """,
        "dws_active_users",
    )
    _timed(
        con,
        result,
        "conversion",
        f"""
        WITH spine AS ({spine}),
        daily AS (
            SELECT app_id, dt, count(*) AS sessions,
                   count(*) FILTER (WHERE has_product_view) AS product_view_sessions,
                   count(*) FILTER (WHERE has_funnel_add_to_cart) AS add_to_cart_sessions,
                   count(*) FILTER (WHERE has_funnel_purchase) AS purchase_sessions,
                   count(*) FILTER (WHERE has_purchase) AS sessions_with_purchase
            FROM dwd_sessions GROUP BY app_id, dt
        )
        SELECT s.app_id, s.dt, coalesce(sessions, 0) AS sessions,
               coalesce(product_view_sessions, 0) AS product_view_sessions,
               coalesce(add_to_cart_sessions, 0) AS add_to_cart_sessions,
               coalesce(purchase_sessions, 0) AS purchase_sessions,
               coalesce(sessions_with_purchase, 0) AS sessions_with_purchase,
               CASE WHEN sessions > 0 THEN sessions_with_purchase / sessions END
                   AS session_conversion_rate
        FROM spine s LEFT JOIN daily USING (app_id, dt)
        """,
        "dws_conversion",
    )
    _timed(
        con,
        result,
        "category",
        """
        SELECT app_id, dt, coalesce(category, 'unknown') AS category,
               count(*) FILTER (WHERE event_type = 'product_view') AS product_views,
               count(*) FILTER (WHERE event_type = 'add_to_cart') AS add_to_carts,
               count(*) FILTER (WHERE event_type = 'purchase') AS purchases,
               CAST(coalesce(sum(CAST(price AS DECIMAL(38, 4)) * quantity)
                             FILTER (WHERE event_type = 'purchase'), 0) AS DECIMAL(38, 4))
                   AS revenue,
               count(DISTINCT CASE WHEN session_start_us IS NOT NULL
                                   THEN user_id || '|' || session_start_us END) AS sessions
        FROM dwd_events GROUP BY app_id, dt, coalesce(category, 'unknown')
        """,
        "dws_category",
    )
    for table, name in (
        ("dws_active_users", "dws_active_users_1d"),
        ("dws_conversion", "dws_conversion_1d"),
        ("dws_category", "dws_category_1d"),
    ):
        result.rows[name] = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    con.close()
    return result
