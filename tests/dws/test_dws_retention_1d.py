"""Cohort retention cells, computed by hand, and on real data against a plain-Python count."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest

from spark_jobs.common.first_seen import compute_first_seen
from spark_jobs.dws.dws_retention_1d import MAX_DAY_N, aggregate_retention
from tests import reference
from tests.conftest import DATA_DIR

pytestmark = pytest.mark.spark

D = dt.date


def _events(spark, rows):
    return spark.createDataFrame(rows, "app_id string, user_id string, dt date")


def _cells(spark, rows, start, end) -> dict[tuple, tuple]:
    """``{(app_id, cohort_dt, day_n): (activity_dt, cohort_users, retained, rate, dt)}``."""
    ev = _events(spark, rows)
    got = aggregate_retention(ev, compute_first_seen(ev), start, end).collect()
    cells = {
        (r.app_id, r.cohort_dt, r.day_n): (
            r.activity_dt,
            r.cohort_users,
            r.retained_users,
            r.retention_rate,
            r.dt,
        )
        for r in got
    }
    assert len(cells) == len(got), "a cell key appears twice"
    return cells


def test_a_user_first_seen_on_day_1_and_back_on_day_3_is_retained_on_day_2_of_the_cohort(spark):
    # u1 on Jan 1 and Jan 3, u2 on Jan 1 only (twice: one user-day)
    rows = [("a", "u1", D(2024, 1, 1)), ("a", "u1", D(2024, 1, 3))]
    rows += [("a", "u2", D(2024, 1, 1))] * 2
    got = _cells(spark, rows, D(2024, 1, 1), D(2024, 1, 3))
    j1, j2, j3 = D(2024, 1, 1), D(2024, 1, 2), D(2024, 1, 3)
    assert got == {
        ("a", j1, 0): (j1, 2, 2, 1.0, j1),  # day 0 = the cohort
        ("a", j1, 1): (j2, 2, 0, 0.0, j2),
        ("a", j1, 2): (j3, 2, 1, 0.5, j3),  # u1 is back
        ("a", j2, 0): (j2, 0, 0, None, j2),  # nobody new on Jan 2: a cohort of 0
        ("a", j2, 1): (j3, 0, 0, None, j3),
        ("a", j3, 0): (j3, 0, 0, None, j3),  # u1 is not new on Jan 3
    }


def test_a_late_event_moves_the_user_to_an_earlier_cohort_and_empties_the_old_one(spark):
    j1, j3, j4 = D(2024, 1, 1), D(2024, 1, 3), D(2024, 1, 4)
    on_time = [("a", "u1", j3), ("a", "u1", j4), ("a", "u2", j1)]
    before = _cells(spark, on_time, j1, j4)
    assert before["a", j3, 0][1:4] == (1, 1, 1.0)  # u1 first seen on Jan 3
    assert before["a", j3, 1][1:4] == (1, 1, 1.0)
    assert before["a", j1, 2][1:4] == (1, 0, 0.0)  # cohort Jan 1 = u2 only

    after = _cells(spark, [*on_time, ("a", "u1", j1)], j1, j4)  # u1's late event of Jan 1
    # by hand: cohort Jan 1 = u1, u2; u1 active on Jan 3 and 4; cohort Jan 3 is now empty
    assert after["a", j1, 0][1:4] == (2, 2, 1.0)
    assert after["a", j1, 2][1:4] == (2, 1, 0.5)
    assert after["a", j1, 3][1:4] == (2, 1, 0.5)
    assert after["a", j3, 0][1:4] == (0, 0, None)
    assert after["a", j3, 1][1:4] == (0, 0, None)
    changed = {k[1] + dt.timedelta(days=k[2]) for k in after if after[k] != before[k]}
    # every cell of both cohorts changed: activity dates from the late event's day on
    assert changed == {j1, D(2024, 1, 2), j3, j4}
    assert set(after) == set(before)


def test_days_without_new_users_are_zero_cohorts_from_the_apps_first_event_on(spark):
    rows = [
        ("a", None, D(2024, 1, 1)),  # the app's first event is anonymous
        ("a", "u1", D(2024, 1, 2)),
        ("b", "v1", D(2024, 1, 3)),  # a second app, first seen later
    ]
    got = _cells(spark, rows, D(2024, 1, 1), D(2024, 1, 4))  # Jan 4: no events at all
    a = {k[1:]: v[1:4] for k, v in got.items() if k[0] == "a"}
    b = {k[1:]: v[1:4] for k, v in got.items() if k[0] == "b"}
    assert a == {
        (D(2024, 1, 1), 0): (0, 0, None),
        (D(2024, 1, 1), 1): (0, 0, None),
        (D(2024, 1, 1), 2): (0, 0, None),
        (D(2024, 1, 1), 3): (0, 0, None),
        (D(2024, 1, 2), 0): (1, 1, 1.0),
        (D(2024, 1, 2), 1): (1, 0, 0.0),
        (D(2024, 1, 2), 2): (1, 0, 0.0),
        (D(2024, 1, 3), 0): (0, 0, None),
        (D(2024, 1, 3), 1): (0, 0, None),
        (D(2024, 1, 4), 0): (0, 0, None),
    }
    assert b == {
        (D(2024, 1, 3), 0): (1, 1, 1.0),  # no cells before the app's first day
        (D(2024, 1, 3), 1): (1, 0, 0.0),
        (D(2024, 1, 4), 0): (0, 0, None),
    }


def test_day_30_is_the_last_cell_of_a_cohort_and_day_31_is_not_reported(spark):
    # u1 first seen Jan 1, back on Jan 31 (day 30) and Feb 1 (day 31)
    rows = [("a", "u1", D(2024, 1, 1)), ("a", "u1", D(2024, 1, 31)), ("a", "u1", D(2024, 2, 1))]
    got = _cells(spark, rows, D(2024, 1, 31), D(2024, 2, 1))
    assert MAX_DAY_N == 30
    assert got["a", D(2024, 1, 1), 30] == (D(2024, 1, 31), 1, 1, 1.0, D(2024, 1, 31))
    assert ("a", D(2024, 1, 1), 31) not in got
    # Jan 31: cohorts Jan 1..Jan 31; Feb 1: cohorts Jan 2..Feb 1 (31 cells each)
    by_dt = defaultdict(set)
    for (_, cohort, n), value in got.items():
        by_dt[value[4]].add((cohort, n))
    assert by_dt[D(2024, 1, 31)] == {(D(2024, 1, 31 - n), n) for n in range(31)}
    assert by_dt[D(2024, 2, 1)] == {(D(2024, 2, 1) - dt.timedelta(days=n), n) for n in range(31)}
    # u1's Feb 1 visit is day 31 of its cohort: retained nowhere on Feb 1
    assert [v[2] for v in got.values() if v[4] == D(2024, 2, 1)] == [0] * 31


def test_online_retail_retention_matches_a_plain_python_count(spark):
    """Eight weeks of real Online Retail events (from the source CSVs, as DWD would hold them for
    a lake holding only these weeks), against first-seen dates and user-days counted in Python."""
    start, end = D(2010, 12, 1), D(2011, 1, 25)
    events = reference.online_retail_events(DATA_DIR, start, end)
    user_days = events.query("e", "SELECT DISTINCT user_id, dt FROM e").fetchall()
    assert len(user_days) > 1000

    first_seen: dict[str, dt.date] = {}
    active: dict[dt.date, set[str]] = defaultdict(set)
    for user, day in user_days:
        if user is not None:
            first_seen[user] = min(day, first_seen.get(user, day))
            active[day].add(user)
    app_first = min(day for _, day in user_days)
    expected = {}
    day = start
    while day <= end:
        for n in range(31):
            cohort = day - dt.timedelta(days=n)
            if cohort < app_first:
                break
            members = {u for u, first in first_seen.items() if first == cohort}
            kept = len(members & active[day])
            rate = kept / len(members) if members else None
            expected[cohort, n] = (day, len(members), kept, rate, day)
        day += dt.timedelta(days=1)

    rows = [("online_retail", user, day) for user, day in user_days]
    got = _cells(spark, rows, start, end)
    assert {k[1:]: v for k, v in got.items()} == expected
    assert sum(1 for v in expected.values() if 0 < v[2] < v[1]) > 100  # not a trivial triangle
