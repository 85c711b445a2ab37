"""Rebuild planning: which dt partitions each table rewrites (hand-computed; the pure function,
and the horizon read from the rolling tables)."""

from __future__ import annotations

import datetime as dt

import pytest

from spark_jobs import tables as T
from spark_jobs.common.plan import compute_plan
from spark_jobs.settings import Settings

D = dt.date


def test_on_time_daily_run_rebuilds_the_day_and_the_day_before_for_sessions():
    plan = compute_plan(
        D(2024, 3, 10), D(2024, 3, 10), [D(2024, 3, 10)], D(2024, 3, 10), Settings()
    )
    assert plan.window(T.DWS_ACTIVE_USERS) == (D(2024, 3, 10), D(2024, 3, 10))
    assert plan.window(T.DWD_EVENTS) == (D(2024, 3, 9), D(2024, 3, 10))  # +2 clipped to data
    assert plan.window(T.DWS_CONVERSION) == (D(2024, 3, 9), D(2024, 3, 10))
    assert plan.too_late == ()


def test_late_object_pulls_the_window_back_to_its_event_date():
    # run for D+2 ingests an object with events of D (late) and D+2
    plan = compute_plan(
        D(2024, 3, 12), D(2024, 3, 12), [D(2024, 3, 10), D(2024, 3, 12)], D(2024, 3, 12), Settings()
    )
    assert plan.window(T.DWS_ACTIVE_USERS) == (D(2024, 3, 10), D(2024, 3, 12))
    assert plan.window(T.DWD_SESSIONS) == (D(2024, 3, 9), D(2024, 3, 12))


def test_backfill_in_the_middle_rewrites_rolling_metrics_up_to_the_last_processed_day():
    # the app was processed up to 03-31; a backfill of 03-05..03-06 changes WAU/MAU of the days
    # after it and new_users of any later day whose users' first-seen date moved
    plan = compute_plan(
        D(2024, 3, 5),
        D(2024, 3, 6),
        [D(2024, 3, 5), D(2024, 3, 6)],
        D(2024, 3, 31),
        Settings(),
        apps=("shop",),
        last_processed_date=D(2024, 3, 31),
    )
    assert plan.window(T.DWD_EVENTS) == (D(2024, 3, 4), D(2024, 3, 8))  # sessions: -1 .. +2
    assert plan.window(T.DWS_CATEGORY) == (D(2024, 3, 4), D(2024, 3, 8))
    assert plan.window(T.DWS_ACTIVE_USERS) == (D(2024, 3, 5), D(2024, 3, 31))
    assert plan.window(T.DWS_CONVERSION) == (D(2024, 3, 4), D(2024, 3, 31))  # the day spine
    assert plan.apps == ("shop",)


def test_retention_cells_are_rewritten_from_the_changed_day_to_the_last_processed_day():
    # an event of 03-05 delivered on 03-06 can move a user's first-seen date from 03-20 to 03-05:
    # cohort 03-20's cells (dt 03-20..03-31 so far) change as well as cohort 03-05's
    plan = compute_plan(
        D(2024, 3, 6),
        D(2024, 3, 6),
        [D(2024, 3, 5), D(2024, 3, 6)],
        D(2024, 3, 31),
        Settings(),
        last_processed_date=D(2024, 3, 31),
    )
    assert plan.window(T.DWS_RETENTION) == (D(2024, 3, 5), D(2024, 3, 31))
    daily = compute_plan(D(2024, 4, 1), D(2024, 4, 1), [D(2024, 4, 1)], None, Settings())
    assert daily.window(T.DWS_RETENTION) == (D(2024, 4, 1), D(2024, 4, 1))  # one partition


def test_a_run_after_the_last_processed_day_rewrites_only_its_own_days():
    plan = compute_plan(
        D(2024, 4, 2),
        D(2024, 4, 2),
        [D(2024, 4, 2)],
        D(2024, 4, 2),
        Settings(),
        ("shop",),
        D(2024, 4, 1),
    )
    assert plan.window(T.DWS_ACTIVE_USERS) == (D(2024, 4, 2), D(2024, 4, 2))


def test_events_older_than_the_lookback_are_reported_not_rebuilt():
    settings = Settings(late_data_lookback_days=30)
    old, ok = D(2024, 1, 1), D(2024, 2, 20)
    plan = compute_plan(D(2024, 3, 1), D(2024, 3, 1), [old, ok], D(2024, 3, 1), settings)
    assert plan.too_late == (old,)
    assert plan.window(T.DWS_ACTIVE_USERS) == (ok, D(2024, 3, 1))


@pytest.mark.spark
def test_the_horizon_is_the_last_day_published_in_either_rolling_table(spark, settings):
    # retention was published up to 03-31 but active users only to 03-30 (its check failed on
    # 03-31): a backfill of 03-05 must still rewrite retention's 03-31 cells
    from spark_jobs.common import delta_io
    from spark_jobs.common.plan import plan_rebuild
    from spark_jobs.common.schemas import SCHEMAS

    active = [("shop", 1, 1, 1, 1, 1, 1.0, D(2024, 3, 30))]
    retention = [("shop", D(2024, 3, 31), 0, D(2024, 3, 31), 1, 1, 1.0, D(2024, 3, 31))]
    for table, rows in ((T.DWS_ACTIVE_USERS, active), (T.DWS_RETENTION, retention)):
        df = spark.createDataFrame(rows, SCHEMAS[table])
        delta_io.replace_partitions(df, settings, table, D(2024, 3, 1), D(2024, 3, 31))

    plan = plan_rebuild(spark, settings, D(2024, 3, 5), D(2024, 3, 5))
    assert plan.window(T.DWS_RETENTION) == (D(2024, 3, 5), D(2024, 3, 31))
    assert plan.window(T.DWS_ACTIVE_USERS) == (D(2024, 3, 5), D(2024, 3, 31))
