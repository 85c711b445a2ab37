"""Hand-written rows for every table (good data) and a DataFrame builder from the declared schemas.

The rows are small and internally consistent by construction (counted by hand below): e.g. the
object ``OBJ1`` has 3 raw records = 2 ODS rows + 1 rejected row; session ``s1`` lasts 300 s.
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest

from spark_jobs import tables as T
from spark_jobs.common.schemas import SCHEMAS

D1 = dt.date(2024, 3, 1)
D2 = dt.date(2024, 3, 2)
OBJ1 = (
    "s3a://landing/2024/03/01/10/clicks-1-2024-03-01-10-05-00-"
    "0f8fad5b-d9cb-469f-a165-70867728950e.gz"
)
OBJ2 = (
    "s3a://landing/2024/03/02/09/clicks-1-2024-03-02-09-05-00-"
    "7c9e6679-7425-40de-944b-e07fc1f90ae7.gz"
)
OBJ3 = "s3a://landing/topics/clicks/year=2024/month=03/day=02/hour=09/clicks+0+0000000042.json.gz"
INGEST_TS = dt.datetime(2024, 3, 2, 12, 0)


def ts(day: dt.date, hh: int, mm: int = 0) -> dt.datetime:
    """A UTC timestamp on ``day`` (naive; the Spark session is UTC)."""
    return dt.datetime(day.year, day.month, day.day, hh, mm)


def _event(event_id, event_type, at, user, price, obj, line, day) -> dict:
    return {
        "event_id": event_id,
        "app_id": "shop",
        "event_ts": at,
        "user_id": user,
        "event_name": event_type,
        "event_type": event_type,
        "product_id": "p1" if price is not None else None,
        "category": "shoes" if price is not None else None,
        "brand": "acme" if price is not None else None,
        "price": price,
        "quantity": 1 if price is not None else None,
        "device_type": "mobile",
        "ip": "10.0.0.1",
        "user_agent": "Mozilla/5.0",
        "page_url": "https://shop.example/p1",
        "error_msg": None,
        "attributes": {"campaign": "spring"},
        "raw_line": f'{{"event_id": "{event_id}"}}',
        "etl_source_object": obj,
        "etl_source_line": line,
        "etl_source_schema": "canonical",
        "etl_ingest_ts": INGEST_TS,
        "dt": day,
    }


_ODS = [
    _event("e1", "product_view", ts(D1, 10, 0), "u1", Decimal("19.9900"), OBJ1, 1, D1),
    _event("e2", "add_to_cart", ts(D1, 10, 5), "u1", Decimal("19.9900"), OBJ1, 2, D1),
    _event("e3", "page_view", ts(D2, 9, 0), "u2", None, OBJ2, 1, D2),
]

_REJECTED = [
    {
        "raw_line": "{not json",
        "etl_source_object": OBJ1,
        "etl_source_line": 3,
        "etl_source_schema": "canonical",
        "reason": "malformed JSON",
        "etl_ingest_ts": INGEST_TS,
        "dt": D1,
    },
    {
        "raw_line": None,
        "etl_source_object": OBJ3,
        "etl_source_line": None,
        "etl_source_schema": "canonical",
        "reason": "unreadable object: truncated gzip",
        "etl_ingest_ts": INGEST_TS,
        "dt": D2,
    },
]


def _manifest(obj, layout, raw, ods, rejected, event_dates, day) -> dict:
    return {
        "etl_source_object": obj,
        "stream": "clicks",
        "layout": layout,
        "etl_source_schema": "canonical",
        "object_size_bytes": 1024,
        "raw_records": raw,
        "ods_rows": ods,
        "rejected_rows": rejected,
        "event_dates": event_dates,
        "app_ids": ["shop"] if event_dates else [],
        "etl_ingest_ts": INGEST_TS,
        "dt": day,
    }


# counted by hand from _ODS and _REJECTED: OBJ1 2 + 1, OBJ2 1 + 0, OBJ3 0 + 1
_MANIFEST = [
    _manifest(OBJ1, "firehose", 3, 2, 1, [D1], D1),
    _manifest(OBJ2, "firehose", 1, 1, 0, [D2], D2),
    _manifest(OBJ3, "kafka", 1, 0, 1, [], D2),
]


def _dwd(event: dict, session_id: str, session_start: dt.datetime) -> dict:
    row = {k: v for k, v in event.items() if k in SCHEMAS[T.DWD_EVENTS].fieldNames()}
    row.update(session_id=session_id, session_start_ts=session_start)
    return row


_DWD_EVENTS = [
    _dwd(_ODS[0], "s1", ts(D1, 10, 0)),
    _dwd(_ODS[1], "s1", ts(D1, 10, 0)),
    _dwd(_ODS[2], "s2", ts(D2, 9, 0)),
]


def _session(sid, user, start, end, counts: dict[str, int], flags: dict[str, bool], day):
    row = {
        "session_id": sid,
        "app_id": "shop",
        "user_id": user,
        "session_start_ts": start,
        "session_end_ts": end,
        "duration_sec": int((end - start).total_seconds()),
        "event_cnt": sum(counts.values()),
    }
    row.update({f"{name}_cnt": 0 for name in _EVENT_TYPE_NAMES})
    row.update({f"{name}_cnt": n for name, n in counts.items()})
    row.update(
        first_event_id=f"{sid}-first",
        is_bounce=False,
        is_capped=False,
        has_product_view=False,
        has_funnel_add_to_cart=False,
        has_funnel_purchase=False,
        has_purchase=False,
        dt=day,
    )
    row.update(flags)
    return row


_EVENT_TYPE_NAMES = (
    "page_view",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "purchase",
    "order_cancelled",
    "error",
    "other",
)

_SESSIONS = [
    # 10:00 -> 10:05 = 300 s, product view then add to cart
    _session(
        "s1",
        "u1",
        ts(D1, 10, 0),
        ts(D1, 10, 5),
        {"product_view": 1, "add_to_cart": 1},
        {"has_product_view": True, "has_funnel_add_to_cart": True},
        D1,
    ),
    # 09:00 -> 11:00 = 7200 s, page view, product view, purchase (no cart: not a funnel purchase)
    _session(
        "s2",
        "u2",
        ts(D2, 9, 0),
        ts(D2, 11, 0),
        {"page_view": 1, "product_view": 1, "purchase": 1},
        {"has_product_view": True, "has_purchase": True},
        D2,
    ),
]

_COLS_ACTIVE = ("app_id", "events", "dau", "wau", "mau", "new_users", "dau_mau_ratio", "dt")
_ACTIVE = [
    dict(zip(_COLS_ACTIVE, ("shop", 10, 5, 7, 9, 2, 5 / 9, D1), strict=True)),
    dict(zip(_COLS_ACTIVE, ("shop", 3, 2, 7, 9, 0, 2 / 9, D2), strict=True)),
]

_COLS_CONVERSION = (
    "app_id",
    "sessions",
    "product_view_sessions",
    "add_to_cart_sessions",
    "purchase_sessions",
    "sessions_with_purchase",
    "session_conversion_rate",
    "dt",
)
_CONVERSION = [
    dict(zip(_COLS_CONVERSION, ("shop", 10, 6, 3, 1, 2, 0.2, D1), strict=True)),
    dict(zip(_COLS_CONVERSION, ("shop", 4, 4, 2, 2, 2, 0.5, D2), strict=True)),
]

_COLS_CATEGORY = (
    "app_id",
    "category",
    "product_views",
    "add_to_carts",
    "purchases",
    "revenue",
    "sessions",
    "dt",
)
_CATEGORY = [
    dict(zip(_COLS_CATEGORY, ("shop", "shoes", 6, 3, 1, Decimal("59.9700"), 5, D1), strict=True)),
    dict(zip(_COLS_CATEGORY, ("shop", "hats", 2, 0, 0, Decimal("0.0000"), 1, D1), strict=True)),
]

_COLS_RETENTION = (
    "app_id",
    "cohort_dt",
    "day_n",
    "activity_dt",
    "cohort_users",
    "retained_users",
    "retention_rate",
    "dt",
)
# 4 users first seen on D1, 1 of them back on D2; nobody new on D2 (a cohort of 0)
_RETENTION = [
    dict(zip(_COLS_RETENTION, ("shop", D1, 0, D1, 4, 4, 1.0, D1), strict=True)),
    dict(zip(_COLS_RETENTION, ("shop", D1, 1, D2, 4, 1, 0.25, D2), strict=True)),
    dict(zip(_COLS_RETENTION, ("shop", D2, 0, D2, 0, 0, None, D2), strict=True)),
]

# --- real-time tables: epoch ms from W = 2024-03-01T00:00:00Z (a multiple of 10 s and 1 min) ---
W = 1_709_251_200_000

_RT_SESSIONS = [
    # user 7: home, catalog (N/A), then 4 laptop events 100 ms apart, the last a checkout at +500
    {"userId": "7", "eventCount": 4, "orderCheckoutEventCount": 4, "deptList": ["laptops"],
     "windowBeginTime": W, "windowEndTime": W + 1500},
    # user 8: 5 counted events over 2 departments, checkout at the 4th, one camera view after it
    {"userId": "8", "eventCount": 5, "orderCheckoutEventCount": 4,
     "deptList": ["cameras", "laptops"], "windowBeginTime": W + 2000, "windowEndTime": W + 3700},
]  # fmt: skip

_RT_CLICKEVENTS = [
    # 3 sessions ended in [W, W + 10 s), 2 with a checkout: 200 / 3 = 66 (truncated)
    {"windowBeginTime": W, "windowEndTime": W + 10_000, "userSessionCount": 3,
     "userSessionCountWithOrderCheckout": 2, "percentSessionswithBuy": 66},
    {"windowBeginTime": W + 10_000, "windowEndTime": W + 20_000, "userSessionCount": 1,
     "userSessionCountWithOrderCheckout": 0, "percentSessionswithBuy": 0},
]  # fmt: skip

_RT_DEPARTMENTS = [
    {"departmentName": "laptops", "departmentCount": 2, "windowBeginTime": W,
     "windowEndTime": W + 10_000},
    {"departmentName": "cameras", "departmentCount": 1, "windowBeginTime": W,
     "windowEndTime": W + 10_000},
]  # fmt: skip

_RT_TRADES = [
    {"windowBeginTime": W, "windowEndTime": W + 60_000, "count_tno": 3, "sum_tnum": 12},
    {"windowBeginTime": W + 60_000, "windowEndTime": W + 120_000, "count_tno": 1, "sum_tnum": 5},
]

_RT_ERRORS = [
    {"eventId": "0b5d3c1e-6c7a-4f51-9d5e-1c2b3a4d5e6f", "action": "pay", "userId": "3",
     "objectId": None, "bizId": "order-1", "errorMsg": "[ERROR] payment gateway timeout",
     "createdAt": W + 5, "etl_topic": "behaviour", "etl_partition": 0, "etl_offset": 10},
    {"eventId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "action": "add_cart", "userId": "4",
     "objectId": "sku-1", "bizId": None, "errorMsg": "svc=cart [Panic] nil pointer dereference",
     "createdAt": W + 70_000, "etl_topic": "behaviour", "etl_partition": 1, "etl_offset": 4},
]  # fmt: skip

_RT_WARNINGS = [
    {"action": "search", "warningCount": 10, "windowBeginTime": W, "windowEndTime": W + 60_000},
    {"action": "pay", "warningCount": 12, "windowBeginTime": W + 60_000,
     "windowEndTime": W + 120_000},
]  # fmt: skip

_RT_LATE = [
    # a trade order of minute [W, W + 60 s) read in a batch whose watermark was W + 60 s
    {"query": "rt_trade_orders_1m", "batchId": 3, "etl_topic": "trade_orders", "etl_partition": 0,
     "etl_offset": 42, "eventId": "T0000000042", "userId": "5", "eventTime": W + 1_000,
     "watermarkMs": W + 60_000, "latenessMs": 59_000, "value": '{"tno":"T0000000042"}'},
    # a click whose own session [t, t + 1 s) ended before the watermark W + 20 s
    {"query": "clickstream_sessions", "batchId": 2, "etl_topic": "clickstream",
     "etl_partition": 1, "etl_offset": 7, "eventId": "clickstream-99", "userId": "4",
     "eventTime": W + 5_000, "watermarkMs": W + 20_000, "latenessMs": 15_000,
     "value": '{"globalseq":99}'},
]  # fmt: skip

GOOD_ROWS: dict[str, list[dict]] = {
    T.ODS_EVENTS: _ODS,
    T.ODS_REJECTED: _REJECTED,
    T.INGEST_MANIFEST: _MANIFEST,
    T.DWD_EVENTS: _DWD_EVENTS,
    T.DWD_SESSIONS: _SESSIONS,
    T.DWS_ACTIVE_USERS: _ACTIVE,
    T.DWS_CONVERSION: _CONVERSION,
    T.DWS_CATEGORY: _CATEGORY,
    T.DWS_RETENTION: _RETENTION,
    T.RT_USER_SESSIONS_CHECKOUT: _RT_SESSIONS,
    T.RT_CLICKEVENTS_USERID_AGG: _RT_CLICKEVENTS,
    T.RT_DEPARTMENTS_AGG: _RT_DEPARTMENTS,
    T.RT_TRADE_ORDERS_1M: _RT_TRADES,
    T.RT_ERROR_EVENTS: _RT_ERRORS,
    T.RT_WARNING_ALERTS: _RT_WARNINGS,
    T.RT_LATE_EVENTS: _RT_LATE,
}


@pytest.fixture
def good_rows():
    """``table -> rows`` (fresh deep copies, safe to corrupt)."""
    return copy.deepcopy(GOOD_ROWS)


@pytest.fixture
def make_df(spark):
    """``make_df(table, rows, extra=())``: DataFrame with the table's declared columns and types
    (plus ``extra`` LongType columns, e.g. the manifest's ``recounted_records``); every column is
    nullable so a corrupted twin can carry nulls where the contract forbids them."""
    from pyspark.sql.types import LongType, StructField, StructType

    def build(table: str, rows: list[dict], extra: tuple[str, ...] = ()):
        schema = StructType(
            [StructField(f.name, f.dataType, True) for f in SCHEMAS[table].fields]
            + [StructField(c, LongType(), True) for c in extra]
        )
        data = [tuple(row[f.name] for f in schema.fields) for row in rows]
        return spark.createDataFrame(data, schema)

    return build
