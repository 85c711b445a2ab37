"""Sessions from sessionised events: ordered funnel flags, durations, bounce and cap flags."""

from __future__ import annotations

import datetime as dt

import pytest

from spark_jobs.dwd.dwd_clickstream_events_di import sessionize_events
from spark_jobs.dwd.dwd_clickstream_sessions_di import aggregate_sessions
from tests.builders import session_events

pytestmark = pytest.mark.spark

T0 = dt.datetime(2024, 1, 1, 12, 0)


def test_funnel_steps_must_happen_in_order(spark):
    events = session_events(
        spark,
        {
            "full": [(0, "product_view"), (10, "add_to_cart"), (20, "purchase")],
            "cart_before_view": [(0, "add_to_cart"), (10, "product_view"), (20, "purchase")],
            "purchase_before_cart": [(0, "product_view"), (5, "purchase"), (10, "add_to_cart")],
            "same_second": [(0, "product_view"), (0, "add_to_cart"), (0, "purchase")],
            "view_only": [(0, "product_view")],
            "purchase_only": [(0, "purchase")],
        },
    )
    got = {
        r.session_id: (
            r.has_product_view,
            r.has_funnel_add_to_cart,
            r.has_funnel_purchase,
            r.has_purchase,
            r.event_cnt,
            r.duration_sec,
            r.is_bounce,
        )
        for r in aggregate_sessions(events, 1800).collect()
    }
    assert got["full"] == (True, True, True, True, 3, 20, False)
    assert got["cart_before_view"] == (True, False, False, True, 3, 20, False)
    assert got["purchase_before_cart"] == (True, True, False, True, 3, 10, False)
    assert got["same_second"] == (True, True, True, True, 3, 0, False)  # "at or after"
    assert got["view_only"] == (True, False, False, False, 1, 0, True)
    assert got["purchase_only"] == (False, False, False, True, 1, 0, True)


def test_session_cut_by_the_24h_cap_is_flagged_and_durations_are_in_seconds(spark):
    # events every 20 min for 25 h: the cap cuts at 24 h; the second session is not cut
    rows = [
        ("a", "u", f"e{i:03d}", T0 + dt.timedelta(minutes=20 * i), "product_view")
        for i in range(76)
    ]
    events = spark.createDataFrame(
        rows,
        "app_id string, user_id string, event_id string, event_ts timestamp, event_type string",
    )
    sessions = aggregate_sessions(sessionize_events(events, 1800, 86400), 1800).collect()
    got = sorted((s.session_start_ts, s.event_cnt, s.duration_sec, s.is_capped) for s in sessions)
    assert got == [
        (T0, 72, 71 * 20 * 60, True),  # 00:00 .. 23:40 after start
        (T0 + dt.timedelta(hours=24), 4, 3 * 20 * 60, False),
    ]
    assert {s.dt for s in sessions} == {dt.date(2024, 1, 1), dt.date(2024, 1, 2)}
