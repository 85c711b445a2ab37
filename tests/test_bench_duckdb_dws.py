"""The scale benchmark's DuckDB implementation (bench/duckdb_dws.py) gives the DWS numbers of the
independent reference (tests/reference.py, computed from the source files, not from the landing),
so the benchmark's project-vs-DuckDB comparison is between two implementations of one thing.

No Spark: the project's own DWS tables are checked against the same reference in
tests/test_pipeline_e2e.py, and `bench/scale.py` compares them with DuckDB's on every run.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import duckdb

from bench.duckdb_dws import run_duckdb_dws
from spark_jobs.landing.replay import replay
from tests import reference
from tests.conftest import DATA_DIR


def test_rees46_funnel_categories_and_users_equal_the_reference(tmp_path):
    summary = replay("rees46", str(tmp_path / "landing"), "kafka", data_dir=DATA_DIR)
    day = summary.last_event_date
    duck = run_duckdb_dws(tmp_path / "landing", day, threads=2)
    events = duckdb.from_arrow(reference.rees46_events(DATA_DIR).fetch_arrow_table())
    count, dau = reference.daily_activity(events)[day]
    [users] = duck.rows["dws_active_users_1d"]
    assert users == ("rees46", day, count, dau, dau, dau, dau, 1.0)
    sessions = reference.sessions_by_start_day(events)[day]
    [conversion] = duck.rows["dws_conversion_1d"]
    assert conversion[2:7] == (
        sessions["sessions"],
        sessions["product_view"],
        sessions["add_to_cart"],
        sessions["purchase"],
        sessions["with_purchase"],
    )
    assert sessions["product_view"] > sessions["add_to_cart"] > sessions["purchase"] > 0
    categories = {(r[1], r[2]): (r[3], r[4], r[5], r[6]) for r in duck.rows["dws_category_1d"]}
    expected = {
        key: (views, carts, buys, Decimal(revenue).quantize(Decimal("0.0001")))
        for key, (views, carts, buys, revenue) in reference.category_totals(events).items()
    }
    assert categories == expected and len(categories) > 10


def test_online_retail_rolling_users_and_sessions_equal_the_reference(tmp_path):
    start, end = dt.date(2011, 3, 1), dt.date(2011, 3, 10)
    # only the source files that can hold those UTC days, read once by the reference
    (tmp_path / "data" / "online_retail").mkdir(parents=True)
    for path in (DATA_DIR / "online_retail").glob("2011-0[23]-*.csv.gz"):
        if "2011-02-28" <= path.name[:10] <= "2011-03-11":
            shutil.copy(path, tmp_path / "data" / "online_retail" / path.name)
    data = tmp_path / "data"
    replay("online_retail", str(tmp_path / "landing"), "firehose", start, end, data)
    duck = run_duckdb_dws(tmp_path / "landing", end, threads=2)
    events = duckdb.from_arrow(reference.online_retail_events(data, start, end).fetch_arrow_table())
    daily = reference.daily_activity(events)
    sessions = reference.sessions_by_start_day(events)
    users = {r[1]: r for r in duck.rows["dws_active_users_1d"]}
    conversion = {r[1]: r for r in duck.rows["dws_conversion_1d"]}
    assert sorted(users) == [start + dt.timedelta(days=n) for n in range(10)]
    for day, row in users.items():
        count, dau = daily.get(day, (0, 0))
        wau = reference.rolling_users(events, day, 7)
        assert row[2:6] == (count, dau, wau, reference.rolling_users(events, day, 30))
        assert conversion[day][2] == sessions.get(day, {}).get("sessions", 0)
        assert conversion[day][6] == sessions.get(day, {}).get("with_purchase", 0)
    assert users[start][6] == users[start][3]  # the first day: every user is new
