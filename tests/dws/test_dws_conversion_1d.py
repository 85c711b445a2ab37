"""Daily conversion rows over sessions, computed by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from spark_jobs.dwd.dwd_clickstream_sessions_di import aggregate_sessions
from spark_jobs.dws.dws_conversion_1d import aggregate_conversion
from tests.builders import session_events

pytestmark = pytest.mark.spark


def test_daily_conversion_rows_include_days_without_sessions(spark):
    events = session_events(
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
