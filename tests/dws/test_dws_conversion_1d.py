"""Daily conversion rows over sessions, computed by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from spark_jobs.dwd.dwd_clickstream_sessions_di import aggregate_sessions
from spark_jobs.dws.dws_conversion_1d import aggregate_conversion

pytestmark = pytest.mark.spark

T0 = dt.datetime(2024, 1, 1, 12, 0)


def _session_events(spark, sessions: dict[str, list[tuple[int, str]]]):
    rows = []
    for sid, evs in sessions.items():
        for n, (sec, kind) in enumerate(evs):
            rows.append(
                (sid, T0, "a", f"user-{sid}", f"{sid}-{n}", T0 + dt.timedelta(seconds=sec), kind)
            )
    return spark.createDataFrame(
        rows,
        "session_id string, session_start_ts timestamp, app_id string, user_id string, "
        "event_id string, event_ts timestamp, event_type string",
    )


def test_daily_conversion_rows_include_days_without_sessions(spark):
    events = _session_events(
        spark,
        {
            "s1": [(0, "product_view"), (10, "add_to_cart"), (20, "purchase")],
            "s2": [(0, "product_view")],
            "s3": [(0, "purchase")],
            "s4": [(0, "product_view")],
        },
    )
    sessions = aggregate_sessions(events, 1800)
    spine = spark.createDataFrame(
        [("a", dt.date(2024, 1, 1)), ("a", dt.date(2024, 1, 2))], "app_id string, dt date"
    )
    got = {r.dt: r for r in aggregate_conversion(sessions, spine).collect()}
    day = got[dt.date(2024, 1, 1)]
    assert (
        day.sessions,
        day.product_view_sessions,
        day.add_to_cart_sessions,
        day.purchase_sessions,
        day.sessions_with_purchase,
    ) == (4, 3, 1, 1, 2)
    assert day.session_conversion_rate == pytest.approx(0.5)
    empty = got[dt.date(2024, 1, 2)]
    assert (empty.sessions, empty.session_conversion_rate) == (0, None)
