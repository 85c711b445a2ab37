"""Independent reference computations for the end-to-end tests.

They start from the *source* files in data/ (never from the pipeline's tables or from replay's
output) and use DuckDB SQL for the per-day aggregates and plain Python for sessions, so a bug in
the Spark code cannot be mirrored here.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import duckdb

GAP = dt.timedelta(minutes=30)
CAP = dt.timedelta(hours=24)


def online_retail_events(data_dir: Path, start: dt.date, end: dt.date) -> duckdb.DuckDBPyRelation:
    """Online Retail lines as events with UTC timestamps, event dates ``[start, end]`` (UTC).

    Columns: ``user_id, event_ts (UTC), dt, event_type, price, quantity, category``; every line
    is an event (negative prices of bad-debt adjustments are values, not rejections).
    """
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = [str(p) for p in sorted((data_dir / "online_retail").glob("*.csv.gz"))]
    sql = f"""
        WITH src AS (
            SELECT * FROM read_csv({files!r}, header = true, all_varchar = true)
        ), typed AS (
            SELECT
                CASE WHEN CustomerID IS NULL OR CustomerID = '' THEN NULL
                     ELSE CAST(CAST(CAST(CustomerID AS DOUBLE) AS BIGINT) AS VARCHAR)
                END AS user_id,
                timezone('UTC', timezone('Europe/London', CAST(InvoiceDate AS TIMESTAMP)))
                    AS event_ts,
                CASE WHEN InvoiceNo LIKE 'C%' THEN 'order_cancelled'
                     WHEN InvoiceNo LIKE 'A%' THEN 'other'
                     WHEN CAST(Quantity AS INTEGER) > 0 THEN 'purchase'
                     ELSE 'other' END AS event_type,
                CAST(UnitPrice AS DECIMAL(18, 4)) AS price,
                CAST(Quantity AS INTEGER) AS quantity,
                NULL AS category
            FROM src
        )
        SELECT *, CAST(event_ts AS DATE) AS dt FROM typed
        WHERE CAST(event_ts AS DATE) BETWEEN DATE '{start}' AND DATE '{end}'
    """
    return con.sql(sql)


def rees46_events(data_dir: Path) -> duckdb.DuckDBPyRelation:
    """REES46 rows as events (``user_id, event_ts, dt, event_type, price, quantity, category``)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    path = str(data_dir / "rees46" / "2019-Oct_head17k.csv.gz")
    return con.sql(
        f"""
        SELECT CAST(user_id AS VARCHAR) AS user_id,
               CAST(replace(event_time, ' UTC', '') AS TIMESTAMP) AS event_ts,
               CAST(CAST(replace(event_time, ' UTC', '') AS TIMESTAMP) AS DATE) AS dt,
               CASE event_type WHEN 'view' THEN 'product_view' WHEN 'cart' THEN 'add_to_cart'
                    ELSE event_type END AS event_type,
               CAST(price AS DECIMAL(18, 4)) AS price,
               1 AS quantity,
               NULLIF(category_code, '') AS category
        FROM read_csv('{path}', header = true, all_varchar = true)
        """
    )


def daily_activity(events: duckdb.DuckDBPyRelation) -> dict[dt.date, tuple[int, int]]:
    """``{dt: (events, dau)}``."""
    rows = events.query(
        "e", "SELECT dt, count(*), count(DISTINCT user_id) FROM e GROUP BY dt"
    ).fetchall()
    return {d: (n, users) for d, n, users in rows}


def rolling_users(events: duckdb.DuckDBPyRelation, day: dt.date, days: int) -> int:
    """Distinct users with an event in ``[day - days + 1, day]``."""
    first = day - dt.timedelta(days=days - 1)
    return events.query(
        "e",
        f"SELECT count(DISTINCT user_id) FROM e WHERE dt BETWEEN DATE '{first}' AND DATE '{day}'",
    ).fetchall()[0][0]


def category_totals(events: duckdb.DuckDBPyRelation) -> dict[tuple[dt.date, str], tuple]:
    """``{(dt, category or 'unknown'): (product_views, add_to_carts, purchases, revenue)}``."""
    rows = events.query(
        "e",
        """
        SELECT dt, coalesce(category, 'unknown'),
               count(*) FILTER (WHERE event_type = 'product_view'),
               count(*) FILTER (WHERE event_type = 'add_to_cart'),
               count(*) FILTER (WHERE event_type = 'purchase'),
               coalesce(sum(price * quantity) FILTER (WHERE event_type = 'purchase'), 0)
        FROM e GROUP BY ALL
        """,
    ).fetchall()
    return {(r[0], r[1]): (r[2], r[3], r[4], r[5]) for r in rows}


def sessions_by_start_day(events: duckdb.DuckDBPyRelation) -> dict[dt.date, dict[str, int]]:
    """Sessionise in plain Python (30 min gap, exactly 30 min continues; 24 h cap) and count, per
    session start day: sessions, sessions with >= 1 purchase, and the ordered funnel steps."""
    per_user: dict[str, list] = defaultdict(list)
    rows = events.query(
        "e", "SELECT user_id, event_ts, event_type FROM e WHERE user_id IS NOT NULL"
    ).fetchall()
    # ties: the pipeline orders by event id; the funnel only compares timestamps, so tie order
    # does not change any count below
    for user, ts, kind in rows:
        per_user[user].append((ts, kind))
    out: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for evs in per_user.values():
        evs.sort(key=lambda e: e[0])
        sessions: list[list] = []
        for ts, kind in evs:
            if not sessions or ts - sessions[-1][-1][0] > GAP or ts - sessions[-1][0][0] >= CAP:
                sessions.append([])
            sessions[-1].append((ts, kind))
        for s in sessions:
            day = out[s[0][0].date()]
            day["sessions"] += 1
            day["with_purchase"] += any(k == "purchase" for _, k in s)
            views = [t for t, k in s if k == "product_view"]
            carts = [t for t, k in s if k == "add_to_cart" and views and t >= min(views)]
            buys = [t for t, k in s if k == "purchase" and carts and t >= min(carts)]
            day["product_view"] += bool(views)
            day["add_to_cart"] += bool(carts)
            day["purchase"] += bool(buys)
    return out
