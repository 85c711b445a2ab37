"""DAU, rolling WAU/MAU (true distinct counts), new users and the day spine, computed by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from spark_jobs.common.first_seen import compute_first_seen
from spark_jobs.dws.dws_active_users_1d import aggregate_active_users

pytestmark = pytest.mark.spark

D = dt.date


def _events(spark, rows):
    return spark.createDataFrame(rows, "app_id string, user_id string, dt date")


def test_rolling_windows_count_distinct_users_not_sums(spark):
    # u1 active on 5 consecutive days, u2 on day 1 and day 8, u3 anonymous-only events
    rows = [("a", "u1", D(2024, 1, d)) for d in range(1, 6)]
    rows += [("a", "u2", D(2024, 1, 1)), ("a", "u2", D(2024, 1, 8))]
    rows += [("a", None, D(2024, 1, 3))] * 4
    ev = _events(spark, rows)
    got = {
        r.dt: (r.events, r.dau, r.wau, r.mau, r.new_users, r.dau_mau_ratio)
        for r in aggregate_active_users(
            ev, compute_first_seen(ev), D(2024, 1, 1), D(2024, 1, 10)
        ).collect()
    }
    # by hand (wau window [dt-6, dt], mau [dt-29, dt])
    assert got[D(2024, 1, 1)] == (2, 2, 2, 2, 2, 1.0)
    assert got[D(2024, 1, 3)] == (5, 1, 2, 2, 0, 0.5)  # 4 anonymous events count as events
    assert got[D(2024, 1, 5)] == (1, 1, 2, 2, 0, 0.5)  # u1 counted once, not 5 times
    assert got[D(2024, 1, 6)] == (0, 0, 2, 2, 0, 0.0)  # day without events is present
    assert got[D(2024, 1, 8)] == (1, 1, 2, 2, 0, 0.5)  # u1 (days 2..5) and u2 (day 8)
    assert got[D(2024, 1, 10)] == (0, 0, 2, 2, 0, 0.0)
    assert len(got) == 10


def test_wau_window_edge_and_mau_window_edge(spark):
    ev = _events(spark, [("a", "u1", D(2024, 1, 1))])
    got = {
        r.dt: (r.wau, r.mau)
        for r in aggregate_active_users(
            ev, compute_first_seen(ev), D(2024, 1, 7), D(2024, 1, 31)
        ).collect()
    }
    assert got[D(2024, 1, 7)] == (1, 1)  # dt-6 = Jan 1: inside
    assert got[D(2024, 1, 8)] == (0, 1)  # dt-6 = Jan 2: outside
    assert got[D(2024, 1, 30)] == (0, 1)  # dt-29 = Jan 1: inside
    assert got[D(2024, 1, 31)] == (0, 0)


def test_new_users_use_the_first_event_ever_and_spine_starts_at_the_app_first_day(spark):
    history = _events(
        spark,
        [
            ("a", "u1", D(2023, 12, 5)),
            ("a", "u1", D(2024, 1, 2)),
            ("a", "u2", D(2024, 1, 2)),
            ("b", "v1", D(2024, 1, 3)),
        ],
    )
    got = {
        (r.app_id, r.dt): (r.dau, r.new_users, r.mau, r.dau_mau_ratio)
        for r in aggregate_active_users(
            history, compute_first_seen(history), D(2024, 1, 1), D(2024, 1, 3)
        ).collect()
    }
    assert got[("a", D(2024, 1, 2))] == (2, 1, 2, 1.0)  # u1 is not new
    assert got[("a", D(2024, 1, 1))] == (0, 0, 1, 0.0)  # u1 from Dec 5 is inside [Dec 3, Jan 1]
    assert ("b", D(2024, 1, 1)) not in got and ("b", D(2024, 1, 2)) not in got
    assert got[("b", D(2024, 1, 3))] == (1, 1, 1, 1.0)


def test_ratio_is_null_when_mau_is_zero(spark):
    history = _events(spark, [("a", None, D(2024, 1, 1))])
    row = aggregate_active_users(
        history, compute_first_seen(history), D(2024, 1, 1), D(2024, 1, 1)
    ).first()
    assert (row.events, row.dau, row.mau, row.dau_mau_ratio) == (1, 0, 0, None)
