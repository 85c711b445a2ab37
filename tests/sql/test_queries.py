"""The ad-hoc queries of sql/queries/ compute right: run on DuckDB with their parameters bound.

Each query is bound as literals and transpiled by spark_jobs.serving.queries (the path of the
local engines), over the Athena rpt_* views (sql/athena/views, transpiled) on tiny DWS tables
made here. rpt_retention is made here as a table with the view's columns (app_id, cohort_dt,
day_n, cohort_users, retained_users, retention_rate). Every table has rows outside the range
(a later day, another app) that must not count. Expected numbers are worked out by hand in the
comments.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from spark_jobs import tables as T
from spark_jobs.serving import queries as Q

D1, D2, D3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)
RANGE = {"app_id": "web", "start_date": "2024-03-01", "end_date": "2024-03-02"}  # D1..D2

TABLES = {
    T.DWS_ACTIVE_USERS: (
        "app_id VARCHAR, events BIGINT, dau BIGINT, wau BIGINT, mau BIGINT, new_users BIGINT, "
        "dau_mau_ratio DOUBLE, dt DATE",
        [
            ("web", 40, 3, 5, 12, 1, 0.25, D1),
            ("web", 10, 2, 5, 12, 0, 2 / 12, D2),
            ("web", 7, 4, 6, 16, 1, 0.25, D3),  # after the range
            ("app", 20, 10, 10, 16, 4, 0.625, D1),  # another app
        ],
    ),
    T.DWS_CONVERSION: (
        "app_id VARCHAR, sessions BIGINT, product_view_sessions BIGINT, "
        "add_to_cart_sessions BIGINT, purchase_sessions BIGINT, sessions_with_purchase BIGINT, "
        "session_conversion_rate DOUBLE, dt DATE",
        [
            ("web", 10, 8, 4, 1, 1, 0.1, D1),
            ("web", 10, 2, 2, 2, 2, 0.2, D2),
            ("web", 100, 100, 100, 100, 100, 1.0, D3),
            ("app", 5, 5, 5, 5, 5, 1.0, D1),
        ],
    ),
    T.DWS_CATEGORY: (
        "app_id VARCHAR, category VARCHAR, product_views BIGINT, add_to_carts BIGINT, "
        "purchases BIGINT, revenue DECIMAL(38, 4), sessions BIGINT, dt DATE",
        [
            ("web", "home", 5, 2, 2, Decimal("30.0000"), 3, D1),
            ("web", "toys", 4, 1, 1, Decimal("10.0000"), 2, D1),
            ("web", "toys", 6, 3, 3, Decimal("25.0000"), 4, D2),
            ("web", "garden", 1, 0, 0, Decimal("0.0000"), 1, D2),
            ("web", "garden", 9, 9, 9, Decimal("1000.0000"), 9, D3),
            ("app", "home", 1, 1, 1, Decimal("5.5000"), 1, D1),
        ],
    ),
    "rpt_retention": (
        "app_id VARCHAR, cohort_dt DATE, day_n INTEGER, cohort_users BIGINT, "
        "retained_users BIGINT, retention_rate DOUBLE",
        [
            ("web", D1, 0, 10, 10, 1.0),
            ("web", D1, 1, 10, 4, 0.4),
            ("web", D1, 2, 10, 2, 0.2),
            ("web", D2, 0, 5, 5, 1.0),
            ("web", D2, 1, 5, 1, 0.2),
            ("web", D3, 0, 8, 8, 1.0),
            ("app", D1, 1, 100, 100, 1.0),
        ],
    ),
}


@pytest.fixture(scope="module")
def run_query():
    """``run(name, params) -> list of dicts``: a query file, bound and run on DuckDB."""
    con = duckdb.connect()
    for table, (columns, rows) in TABLES.items():
        con.execute(f"CREATE TABLE {table} ({columns})")
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    for view in ("rpt_active_users", "rpt_funnel", "rpt_category_revenue"):
        select = Q.load_view(view, "athena").sql("duckdb")
        con.execute(f"CREATE VIEW {view} AS {select}")

    def run(name: str, params: dict) -> list[dict]:
        sql = Q.render_literal_sql(Q.load_query_file(name), params, "duckdb")
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    yield run
    con.close()


def test_active_users_range_is_one_row_per_day_of_the_app(run_query):
    rows = run_query("active_users_range", RANGE)

    assert rows == [
        # returning = dau - new; stickiness = dau / mau
        {
            "dt": D1,
            "dau": 3,
            "wau": 5,
            "mau": 12,
            "new_users": 1,
            "returning_users": 2,
            "stickiness": 0.25,
        },
        {
            "dt": D2,
            "dau": 2,
            "wau": 5,
            "mau": 12,
            "new_users": 0,
            "returning_users": 2,
            "stickiness": 2 / 12,
        },
    ]


def test_funnel_range_divides_summed_counts_not_daily_rates(run_query):
    rows = run_query("funnel_range", RANGE)

    picked = [
        (
            r["step_no"],
            r["step"],
            r["step_sessions"],
            r["previous_step_sessions"],
            r["step_conversion_rate"],
            r["conversion_from_start"],
        )
        for r in rows
    ]
    assert picked == [
        # sessions 10 + 10; product views 8 + 2; add to cart 4 + 2; purchase 1 + 2
        (1, "session", 20, 20, 1.0, 1.0),
        (2, "product_view", 10, 20, 0.5, 0.5),
        # 6 / 10 = 0.6, not the mean of the daily 4/8 and 2/2 (0.75)
        (3, "add_to_cart", 6, 10, 0.6, 0.3),
        # 3 / 6 = 0.5, not the mean of 1/4 and 2/2 (0.625); 3 / 20 from the start
        (4, "purchase", 3, 6, 0.5, 0.15),
    ]


def test_funnel_range_of_an_app_without_days_in_it_is_empty(run_query):
    assert run_query("funnel_range", {**RANGE, "app_id": "nobody"}) == []


def test_category_top_ranks_the_range_revenue(run_query):
    rows = run_query("category_top", {**RANGE, "top_n": "2"})

    assert [(r["revenue_rank"], r["category"], r["revenue"], r["revenue_share"]) for r in rows] == [
        # toys 10 + 25 = 35, home 30, garden 0 (rank 3: cut); range revenue 65
        (1, "toys", Decimal("35.0000"), 35 / 65),
        (2, "home", Decimal("30.0000"), 30 / 65),
    ]
    assert [(r["product_views"], r["add_to_carts"], r["purchases"]) for r in rows] == [
        (10, 4, 4),  # 4 + 6, 1 + 3, 1 + 3
        (5, 2, 2),
    ]


def test_category_top_n_counts_ranks(run_query):
    rows = run_query("category_top", {**RANGE, "top_n": "3"})

    assert [(r["category"], r["revenue_share"]) for r in rows] == [
        ("toys", 35 / 65),
        ("home", 30 / 65),
        ("garden", 0.0),  # in the range with no revenue; its D3 sale is outside
    ]


def test_retention_cohorts_pool_counts_per_day_n(run_query):
    rows = run_query("retention_cohorts", RANGE)

    assert [
        (
            r["cohort_dt"],
            r["day_n"],
            r["cohort_users"],
            r["retained_users"],
            r["retention_rate"],
            r["range_retention_rate"],
        )
        for r in rows
    ] == [
        (D1, 0, 10, 10, 1.0, 1.0),  # (10 + 5) / (10 + 5)
        (D1, 1, 10, 4, 0.4, 5 / 15),  # (4 + 1) / (10 + 5), not the mean of 0.4 and 0.2
        (D1, 2, 10, 2, 0.2, 0.2),  # only the D1 cohort has reached day 2: 2 / 10
        (D2, 0, 5, 5, 1.0, 1.0),
        (D2, 1, 5, 1, 0.2, 5 / 15),
    ]
