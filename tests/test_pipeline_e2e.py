"""End to end on real data: replay -> run -> DWS, checked against independent computations.

Expected values come from tests/reference.py (DuckDB over the source CSVs, sessions in plain
Python), never from the pipeline. Every scenario also checks raw records = ODS + rejected and
that running the same range again leaves every table unchanged.
"""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.landing.layouts import firehose_key
from spark_jobs.landing.replay import replay
from spark_jobs.pipeline import run_pipeline
from tests import reference
from tests.conftest import DATA_DIR
from tests.test_delivery import ALL_TABLES, full_rebuild, table_rows

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

D = dt.date


def _rows(spark, settings, table, key):
    return {key(r): r for r in delta_io.read_table(spark, settings, table).collect()}


def _assert_dws_matches(spark, settings, events, start, end):
    """Compare the three DWS tables for [start, end] with the reference over ``events``."""
    activity = reference.daily_activity(events)
    first_seen = {
        r[0]: r[1]
        for r in events.query(
            "e", "SELECT user_id, min(dt) FROM e WHERE user_id IS NOT NULL GROUP BY 1"
        ).fetchall()
    }
    active = _rows(spark, settings, T.DWS_ACTIVE_USERS, lambda r: r.dt)
    sessions = reference.sessions_by_start_day(events)
    conversion = _rows(spark, settings, T.DWS_CONVERSION, lambda r: r.dt)
    day = start
    while day <= end:
        n_events, dau = activity.get(day, (0, 0))
        row = active[day]
        expected = (
            n_events,
            dau,
            reference.rolling_users(events, day, 7),
            reference.rolling_users(events, day, 30),
            sum(1 for d in first_seen.values() if d == day),
        )
        assert (row.events, row.dau, row.wau, row.mau, row.new_users) == expected, day
        s = sessions.get(day, {})
        c = conversion[day]
        assert (
            c.sessions,
            c.sessions_with_purchase,
            c.product_view_sessions,
            c.add_to_cart_sessions,
            c.purchase_sessions,
        ) == (
            s.get("sessions", 0),
            s.get("with_purchase", 0),
            s.get("product_view", 0),
            s.get("add_to_cart", 0),
            s.get("purchase", 0),
        ), day
        day += dt.timedelta(days=1)
    categories = _rows(spark, settings, T.DWS_CATEGORY, lambda r: (r.dt, r.category))
    got = {
        k: (r.product_views, r.add_to_carts, r.purchases, r.revenue)
        for k, r in categories.items()
        if start <= k[0] <= end
    }
    assert got == reference.category_totals(events)
    _assert_retention_matches(spark, settings, events, start, end)


def _assert_retention_matches(spark, settings, events, start, end):
    """Every ``dws_retention_1d`` cell of ``[start, end]`` against DuckDB over ``events``: one
    cell per day and cohort of the 31 before it from the first event on, counts by SQL."""
    retained = {
        (cohort, n): users
        for cohort, n, users in events.query(
            "e",
            """
            WITH days AS (SELECT DISTINCT user_id, dt FROM e WHERE user_id IS NOT NULL),
            firsts AS (SELECT user_id, min(dt) AS cohort_dt FROM days GROUP BY 1)
            SELECT f.cohort_dt, CAST(d.dt - f.cohort_dt AS INTEGER) AS n, count(*)
            FROM days AS d JOIN firsts AS f USING (user_id)
            GROUP BY 1, 2
            """,
        ).fetchall()
    }
    first_event = events.query("e", "SELECT min(dt) FROM e").fetchall()[0][0]
    expected = {}
    day = start
    while day <= end:
        for n in range(31):
            cohort = day - dt.timedelta(days=n)
            if cohort >= first_event:
                expected[cohort, n] = (retained.get((cohort, 0), 0), retained.get((cohort, n), 0))
        day += dt.timedelta(days=1)
    got = {
        (r.cohort_dt, r.day_n): (r.cohort_users, r.retained_users)
        for r in delta_io.read_table(spark, settings, T.DWS_RETENTION).collect()
        if start <= r.dt <= end
    }
    assert got == expected


def _assert_reconciled(spark, settings, expected_raw: int, expected_rejected: int):
    ods = delta_io.read_table(spark, settings, T.ODS_EVENTS).count()
    rejected = delta_io.read_table(spark, settings, T.ODS_REJECTED).count()
    manifest = delta_io.read_table(spark, settings, T.INGEST_MANIFEST).collect()
    assert sum(m.raw_records for m in manifest) == expected_raw == ods + rejected
    assert rejected == expected_rejected


@pytest.mark.parametrize(
    "start, days",
    [
        (D(2011, 3, 23), 8),  # British Summer Time starts on 2011-03-27; Saturdays have no sales
        # the first 45 days: the shop's Christmas closure makes days without events
        pytest.param(D(2010, 12, 1), 45, marks=pytest.mark.slow),
    ],
    ids=["8-days-across-dst", "45-days"],
)
def test_online_retail_day_by_day_equals_one_range_run_and_the_reference(
    spark, settings, tmp_path, start, days
):
    """Daily runs over real days (the schedule of a user) end in the DWS values computed
    independently and in the tables one range run over the same landing gives in a fresh lake;
    a rerun of the whole range then changes no table. A daily run costs ~20 s of fixed Spark/Delta
    overhead here, so `make test` runs 8 days and `make test-slow` 45."""
    end = start + dt.timedelta(days=days - 1)
    landing = str(tmp_path / "landing")
    summary = replay("online_retail", landing, "firehose", start, end, DATA_DIR)
    last = summary.last_arrival_date  # the last events of a day may arrive after midnight
    day = start
    while day <= last:
        run_pipeline(spark, settings, landing, day, day)
        day += dt.timedelta(days=1)

    events = reference.online_retail_events(DATA_DIR, start, end)
    n_lines = events.count("*").fetchall()[0][0]
    assert summary.records == n_lines
    _assert_reconciled(spark, settings, n_lines, 0)  # every line readable, none rejected
    assert delta_io.read_table(spark, settings, T.DWD_EVENTS).count() == n_lines
    _assert_dws_matches(spark, settings, events, start, end)

    assert table_rows(spark, settings) == full_rebuild(
        spark, settings, landing, start, last, "range"
    )
    before = table_rows(spark, settings, ALL_TABLES)
    run_pipeline(spark, settings, landing, start, last)  # a rerun of the range
    assert table_rows(spark, settings, ALL_TABLES) == before


def test_rees46_through_the_kafka_sink_layout(spark, settings, tmp_path):
    landing = str(tmp_path / "landing")
    summary = replay("rees46", landing, "kafka", data_dir=DATA_DIR)
    day = D(2019, 10, 1)
    run_pipeline(spark, settings, landing, day, day)
    events = reference.rees46_events(DATA_DIR)
    _assert_reconciled(spark, settings, 17434, 0)
    # 5 exact duplicate source lines stay separate events (one event per source line)
    assert delta_io.read_table(spark, settings, T.DWD_EVENTS).count() == 17434
    _assert_dws_matches(spark, settings, events, day, day)
    revenue = sum(r.revenue for r in delta_io.read_table(spark, settings, T.DWS_CATEGORY).collect())
    expected = events.query(
        "e", "SELECT sum(price) FROM e WHERE event_type = 'purchase'"
    ).fetchall()[0][0]
    assert revenue == Decimal(expected)
    assert summary.objects > 1


def _move(src: Path, landing: Path, arrival: dt.datetime, tag: str) -> Path:
    """Re-key an object as if delivered at ``arrival`` (late or redelivered)."""
    stream = src.name.split("-1-")[0]
    key = firehose_key(stream, arrival, f"00000000-0000-4000-8000-{tag:0>12}")
    target = landing / key
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return target


def test_late_and_duplicate_objects_land_in_their_own_day(spark, settings, tmp_path):
    d1, d2, d3 = D(2011, 3, 1), D(2011, 3, 2), D(2011, 3, 3)
    landing = tmp_path / "landing"
    replay("online_retail", str(landing), "firehose", d1, d3, DATA_DIR)
    # late: the first object of day 1 only arrives at the end of day 3
    late = sorted((landing / "2011/03/01").rglob("*.gz"))[0]
    late_lines = sum(1 for _ in gzip.open(late, "rt"))
    _move(late, landing, dt.datetime(2011, 3, 3, 23, 50), "1")
    late.unlink()
    # duplicate: an object of day 2 is delivered again on day 3 (at-least-once)
    dup = sorted((landing / "2011/03/02").rglob("*.gz"))[0]
    dup_lines = sum(1 for _ in gzip.open(dup, "rt"))
    _move(dup, landing, dt.datetime(2011, 3, 3, 22, 10), "2")

    events = reference.online_retail_events(DATA_DIR, d1, d3)
    n_day1 = reference.daily_activity(events)[d1][0]
    for day in (d1, d2):
        run_pipeline(spark, settings, str(landing), day, day)
    assert _rows(spark, settings, T.DWS_ACTIVE_USERS, lambda r: r.dt)[d1].events == (
        n_day1 - late_lines
    )
    run_pipeline(spark, settings, str(landing), d3, d3)

    n_lines = events.count("*").fetchall()[0][0]
    _assert_reconciled(spark, settings, n_lines + dup_lines, 0)
    assert delta_io.read_table(spark, settings, T.DWD_EVENTS).count() == n_lines
    _assert_dws_matches(spark, settings, events, d1, d3)

    before = table_rows(spark, settings, ALL_TABLES)
    run_pipeline(spark, settings, str(landing), d3, d3)  # rerun the late day: nothing changes
    assert table_rows(spark, settings, ALL_TABLES) == before


def test_bad_records_and_a_truncated_object_are_rejected_with_reasons(spark, settings, tmp_path):
    landing = tmp_path / "landing"
    hour = dt.datetime(2024, 5, 1, 10)
    good = '{"event_id":"g1","app_id":"shop","event_ts":"2024-05-01T10:00:00Z","user_id":"u1"}'
    lines = [good, "{not json", '{"event_id":"g2","event_ts":"never"}', '{"event_id":"g3"}']
    plain = landing / firehose_key("shop", hour, "00000000-0000-4000-8000-000000000001", False)
    plain.parent.mkdir(parents=True)
    plain.write_text("\n".join(lines) + "\n")
    broken = gzip.compress(("\n".join([good] * 50) + "\n").encode())
    truncated = landing / firehose_key("shop", hour, "00000000-0000-4000-8000-000000000002")
    truncated.write_bytes(broken[: len(broken) // 2])

    run_pipeline(spark, settings, str(landing), hour.date(), hour.date())
    reasons = sorted(
        (r.etl_source_line or 0, r.reason.split(":")[0])
        for r in delta_io.read_table(spark, settings, T.ODS_REJECTED).collect()
    )
    assert reasons == [
        (0, "unreadable object"),  # the whole truncated object, no line number
        (2, "malformed JSON"),
        (3, "unparseable event time"),
        (4, "missing event time"),
    ]
    _assert_reconciled(spark, settings, 5, 4)
    assert [r.event_id for r in delta_io.read_table(spark, settings, T.ODS_EVENTS).collect()] == [
        "g1"
    ]
