"""Category performance: counts, revenue over purchases only, distinct sessions, unknown."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from spark_jobs.dws.dws_category_1d import aggregate_categories

pytestmark = pytest.mark.spark


def test_category_rows_by_hand(spark):
    d = dt.date(2024, 1, 1)
    rows = [
        ("a", d, "toys", "product_view", Decimal("5.00"), 1, "s1"),
        ("a", d, "toys", "add_to_cart", Decimal("5.00"), 2, "s1"),
        ("a", d, "toys", "purchase", Decimal("5.00"), 2, "s1"),
        ("a", d, "toys", "purchase", Decimal("1.25"), 4, "s2"),
        ("a", d, "toys", "order_cancelled", Decimal("5.00"), -2, "s2"),
        ("a", d, None, "purchase", Decimal("3.00"), 1, None),  # anonymous, no category
    ]
    events = spark.createDataFrame(
        rows,
        "app_id string, dt date, category string, event_type string, price decimal(18,4), "
        "quantity int, session_id string",
    )
    got = {r.category: r for r in aggregate_categories(events).collect()}
    toys = got["toys"]
    assert (toys.product_views, toys.add_to_carts, toys.purchases, toys.sessions) == (1, 1, 2, 2)
    assert toys.revenue == Decimal("15.0000")  # 5*2 + 1.25*4; cancellations are not revenue
    unknown = got["unknown"]
    assert (unknown.purchases, unknown.revenue, unknown.sessions) == (1, Decimal("3.0000"), 0)
