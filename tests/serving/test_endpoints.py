"""The local BI endpoints, through the drivers BI tools use, on a real-data lake.

- HiveServer2 (impyla, as DBeaver/Superset reach the Spark Thrift Server) and PostgreSQL
  (psycopg) list the tables and views and run every view;
- each ``rpt_*`` view returns, on both endpoints, the numbers of the DWS tables and of an
  independent computation (tests/reference.py: DuckDB and plain Python over the source files);
- publishing a day twice leaves the marts and the exports unchanged, and re-publishing a day whose
  DWS rows were rebuilt replaces that day's rows;
- ``start`` of a running endpoint is a no-op, ``stop`` of a stopped one is not an error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import duckdb
import pyarrow.parquet as pq
import pytest

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.serving import bi_publish, thrift_server, warehouse
from tests import reference
from tests.conftest import DATA_DIR
from tests.serving.conftest import OR_END, OR_START, RT_MINUTES

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

VIEWS = sorted(p.stem for p in (warehouse.REDSHIFT_SQL / "views").glob("rpt_*.sql"))
OR = "online_retail"
QUERIES = warehouse.PROJECT_DIR / "sql" / "queries"


def _thrift_rows(settings, sql: str) -> list[tuple]:
    conn = thrift_server.connect(settings, settings.bi_database)
    cur = conn.cursor()
    cur.execute(sql)
    rows = [tuple(r) for r in cur.fetchall()]
    conn.close()
    return rows


def _pg_rows(settings, sql: str) -> list[tuple]:
    with warehouse.connect(settings) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def _both(settings, sql: str) -> tuple[list[tuple], list[tuple]]:
    return _thrift_rows(settings, sql), _pg_rows(settings, sql)


# ------------------------------------------------------------------------- clients and listing


def test_hiveserver2_lists_every_table_and_view_and_runs_each_view(bi_lake, thrift):
    names = {r[1] for r in _thrift_rows(bi_lake.settings, "SHOW TABLES")}

    assert {t.name for t in T.TABLES} | set(VIEWS) <= names
    for view in VIEWS:
        assert _thrift_rows(bi_lake.settings, f"SELECT * FROM {view} LIMIT 5"), view


def test_hiveserver2_serves_the_streaming_jobs_rt_tables(bi_lake, thrift):
    names = {r[1] for r in _thrift_rows(bi_lake.settings, "SHOW TABLES")}
    assert T.RT_TRADE_ORDERS_1M in names
    got = _thrift_rows(
        bi_lake.settings,
        "SELECT windowBeginTime, windowEndTime, count_tno, sum_tnum "
        f"FROM {T.RT_TRADE_ORDERS_1M} ORDER BY windowBeginTime",
    )
    assert got == [row for batch in RT_MINUTES for row in batch]


def test_postgresql_lists_the_marts_and_views_and_runs_each_view(bi_lake):
    with warehouse.connect(bi_lake.settings) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (bi_lake.settings.bi_database,),
            )
        }
    assert {t.name for t in T.TABLES if t.layer == "dws"} | set(VIEWS) <= tables
    for view in VIEWS:
        assert _pg_rows(bi_lake.settings, f"SELECT * FROM {view} LIMIT 5"), view


# ------------------------------------------------------------------ views = DWS = reference


@pytest.fixture(scope="module")
def or_events():
    """The Online Retail slice's events from the source CSVs, read once (a scan takes seconds)."""
    rel = reference.online_retail_events(DATA_DIR, OR_START, OR_END)
    return duckdb.from_arrow(rel.to_arrow_table())


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def test_rpt_active_users_matches_the_dws_table_and_the_source_files(
    spark, bi_lake, thrift, or_events
):
    settings = bi_lake.settings
    first, last = bi_lake.ranges[OR]
    events = or_events
    activity = reference.daily_activity(events)
    first_seen = dict(
        events.query(
            "e", "SELECT user_id, min(dt) FROM e WHERE user_id IS NOT NULL GROUP BY 1"
        ).fetchall()
    )
    expected = {}
    for day in _days(first, last):
        n, dau = activity.get(day, (0, 0))
        new = sum(1 for d in first_seen.values() if d == day)
        mau = reference.rolling_users(events, day, 30)
        expected[day] = (n, dau, reference.rolling_users(events, day, 7), mau, new, dau - new,
                         dau / mau if mau else None)  # fmt: skip
    sql = (
        "SELECT dt, events, dau, wau, mau, new_users, returning_users, stickiness "
        f"FROM rpt_active_users WHERE app_id = '{OR}' ORDER BY dt"
    )
    dws = {
        r.dt: (r.events, r.dau, r.wau, r.mau, r.new_users)
        for r in delta_io.read_table(spark, settings, T.DWS_ACTIVE_USERS)
        .where(f"app_id = '{OR}'")
        .collect()
    }

    for rows in _both(settings, sql):
        got = {r[0]: tuple(r[1:]) for r in rows}
        assert got.keys() == expected.keys()
        for day, want in expected.items():
            assert got[day][:6] == want[:6], day
            assert got[day][6] == pytest.approx(want[6]), day
            assert got[day][:5] == dws[day], day


def test_rpt_funnel_matches_the_sessions_of_the_source_files(bi_lake, thrift, or_events):
    first, last = bi_lake.ranges[OR]
    sessions = reference.sessions_by_start_day(or_events)
    steps = ("sessions", "product_view", "add_to_cart", "purchase")
    sql = (
        "SELECT dt, step_no, step_sessions, previous_step_sessions FROM rpt_funnel "
        f"WHERE app_id = '{OR}' ORDER BY dt, step_no"
    )
    expected = {}
    for day in _days(first, last):
        counts = [sessions.get(day, {}).get(s, 0) for s in steps]
        for no in range(1, 5):
            expected[(day, no)] = (counts[no - 1], counts[max(no - 2, 0)])

    for rows in _both(bi_lake.settings, sql):
        assert {(r[0], r[1]): (r[2], r[3]) for r in rows} == expected


def test_rpt_category_revenue_matches_the_source_files_for_both_datasets(
    bi_lake, thrift, or_events
):
    for app, events in (
        (OR, or_events),
        ("rees46", reference.rees46_events(DATA_DIR)),
    ):
        totals = reference.category_totals(events)
        expected = {key: Decimal(v[3]).quantize(Decimal("0.0001")) for key, v in totals.items()}
        sql = (
            "SELECT dt, category, revenue, revenue_share FROM rpt_category_revenue "
            f"WHERE app_id = '{app}'"
        )
        for rows in _both(bi_lake.settings, sql):
            got = {(r[0], r[1]): Decimal(r[2]).quantize(Decimal("0.0001")) for r in rows}
            assert got == expected, app
            day_totals = {}
            for (day, _), revenue in expected.items():
                day_totals[day] = day_totals.get(day, 0) + revenue
            for day, _category, revenue, share in rows:
                if day_totals[day]:
                    assert share == pytest.approx(float(revenue / day_totals[day]))


def test_rpt_retention_matches_the_cohorts_of_the_source_files(bi_lake, thrift, or_events):
    first, last = bi_lake.ranges[OR]
    active: dict[str, set] = {}
    for user, day in or_events.query(
        "e", "SELECT DISTINCT user_id, dt FROM e WHERE user_id IS NOT NULL"
    ).fetchall():
        active.setdefault(user, set()).add(day)
    cohorts: dict[dt.date, list[set]] = {}
    for days in active.values():
        cohorts.setdefault(min(days), []).append(days)
    expected = {}
    for cohort_dt in _days(first, last):
        members = cohorts.get(cohort_dt, [])
        for n in range(0, min(30, (last - cohort_dt).days) + 1):
            day = cohort_dt + dt.timedelta(days=n)
            expected[(cohort_dt, n)] = (len(members), sum(1 for m in members if day in m))
    sql = (
        "SELECT cohort_dt, day_n, cohort_users, retained_users FROM rpt_retention "
        f"WHERE app_id = '{OR}'"
    )

    for rows in _both(bi_lake.settings, sql):
        assert {(r[0], r[1]): (r[2], r[3]) for r in rows} == expected


def test_every_view_returns_the_same_rows_on_both_endpoints(bi_lake, thrift):
    for view in VIEWS:
        thrift_rows, pg_rows = _both(bi_lake.settings, f"SELECT * FROM {view}")
        norm = [
            sorted(
                tuple(float(v) if isinstance(v, Decimal | float) else v for v in r) for r in rows
            )
            for rows in (thrift_rows, pg_rows)
        ]
        assert len(norm[0]) == len(norm[1]) > 0, view
        for a, b in zip(*norm, strict=True):
            assert a == pytest.approx(b), view


# ------------------------------------------------------------------- lakehouse sql, local


def _endpoint_env(monkeypatch, settings) -> None:
    for name, value in {
        "LAKEHOUSE_ROOT": settings.lakehouse_root,
        "LAKEHOUSE_SERVING_DIR": settings.serving_state_dir,
        "LAKEHOUSE_THRIFT_PORT": str(settings.thrift_port),
        "LAKEHOUSE_PG_PORT": str(settings.pg_port),
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("engine", ["local-athena", "local-redshift"])
def test_lakehouse_sql_runs_a_query_file_with_params_on_each_local_engine(
    bi_lake, thrift, or_events, engine, monkeypatch, capsys
):
    """funnel_range over two days = the reference sessions of those days, summed."""
    import csv
    import io

    from spark_jobs.cli import main

    _endpoint_env(monkeypatch, bi_lake.settings)
    d1, d2 = dt.date(2010, 12, 2), dt.date(2010, 12, 3)
    sessions = reference.sessions_by_start_day(or_events)
    steps = ("sessions", "product_view", "add_to_cart", "purchase")
    counts = [sum(sessions.get(d, {}).get(s, 0) for d in (d1, d2)) for s in steps]

    code = main(["-q", "sql", "--engine", engine, "--file", str(QUERIES / "funnel_range.sql"),
                 "--param", f"app_id={OR}", "--param", f"start_date={d1}",
                 "--param", f"end_date={d2}", "--csv"])  # fmt: skip

    assert code == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [int(r["step_sessions"]) for r in rows] == counts
    assert [int(r["previous_step_sessions"]) for r in rows] == [counts[0], *counts[:3]]


# ----------------------------------------------------------------------------- publishing


def _mart_day(settings, table: str, day: dt.date) -> list[tuple]:
    with warehouse.connect(settings) as conn:
        return sorted(
            tuple(r) for r in conn.execute(f"SELECT * FROM {table} WHERE dt = %s", (day,))
        )


def _export_day(settings, table: str, day: dt.date) -> list[tuple]:
    folder = f"{bi_publish.export_path(settings, table)}/dt={day.isoformat()}"
    rows = pq.read_table(folder).to_pylist()
    return sorted(tuple(sorted(r.items())) for r in rows)


def test_publishing_a_day_twice_leaves_marts_and_exports_unchanged(spark, bi_lake):
    settings, day = bi_lake.settings, dt.date(2010, 12, 6)
    before = {
        t: (_mart_day(settings, t, day), _export_day(settings, t, day))
        for t in warehouse.mart_tables()
    }

    bi_publish.publish_days(spark, settings, day, day)

    after = {
        t: (_mart_day(settings, t, day), _export_day(settings, t, day))
        for t in warehouse.mart_tables()
    }
    assert after == before
    assert all(mart and export for mart, export in after.values())


def test_a_day_republished_after_a_rebuild_replaces_that_days_rows(spark, bi_lake):
    """A late-data rebuild rewrites one DWS day; publishing it again must replace that day in the
    mart (and nothing else). The rebuild is simulated by rewriting the day's partition with
    changed counts; the original rows are restored and re-published at the end."""
    from pyspark.sql import functions as F

    settings, day, other = bi_lake.settings, dt.date(2010, 12, 7), dt.date(2010, 12, 6)
    table = T.DWS_ACTIVE_USERS
    # plain rows, not a cached DataFrame: Spark would answer the publish's read of the same
    # partition from that cache instead of the rewritten table
    saved = delta_io.read_partitions(spark, settings, table, day, day).collect()
    original = spark.createDataFrame(saved, delta_io.read_table(spark, settings, table).schema)
    other_before = _mart_day(settings, table, other)
    rebuilt = original.withColumn("events", F.col("events") + 1000)
    try:
        delta_io.replace_partitions(rebuilt, settings, table, day, day)
        bi_publish.publish_days(spark, settings, day, day)

        rows = _pg_rows(settings, f"SELECT app_id, events FROM {table} WHERE dt = '{day}'")
        assert sorted(rows) == sorted((r.app_id, r.events + 1000) for r in saved)
        assert _mart_day(settings, table, other) == other_before
    finally:
        delta_io.replace_partitions(original, settings, table, day, day)
        bi_publish.publish_days(spark, settings, day, day)
    rows = _pg_rows(settings, f"SELECT app_id, events FROM {table} WHERE dt = '{day}'")
    assert sorted(rows) == sorted((r.app_id, r.events) for r in saved)


# ---------------------------------------------------------------------------- start / stop


def test_start_of_a_running_endpoint_is_a_no_op(bi_lake, thrift):
    assert thrift_server.start(bi_lake.settings) == thrift
    pid = warehouse.status(bi_lake.settings)
    assert warehouse.start(bi_lake.settings) == pid


def test_stop_and_status_of_stopped_endpoints_are_not_errors(bi_lake, tmp_path):
    elsewhere = replace(bi_lake.settings, serving_state_dir=str(tmp_path))

    assert thrift_server.stop(elsewhere) is False
    assert warehouse.stop(elsewhere) is False
    assert thrift_server.status(elsewhere) is None
    assert warehouse.status(elsewhere) is None
