"""Declared output schemas of every table (columns, Spark types, nullability by contract).

A job's output is passed through :func:`conform` before it is written, so the table schema is
exactly what is declared here, in this column order. Timestamps are UTC; ``dt`` is the UTC DATE
partition column; ``*_sec`` are seconds; money is DECIMAL(18,4) in the source currency. The
``rt_*`` tables of the streaming job keep the labs' JSON names and epoch-millisecond times.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from spark_jobs import tables as T

MONEY = DecimalType(18, 4)
REVENUE = DecimalType(38, 4)

#: canonical ``event_type`` values (anything else maps to ``other``)
EVENT_TYPES: tuple[str, ...] = (
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


def _s(name: str, dtype=None, nullable: bool = True) -> StructField:
    return StructField(name, dtype or StringType(), nullable)


# The typed event fields shared by ODS and DWD (the canonical event model).
_EVENT_FIELDS = [
    _s("event_id", nullable=False),
    _s("app_id", nullable=False),
    _s("event_ts", TimestampType(), False),
    _s("user_id"),
    _s("event_name"),
    _s("event_type", nullable=False),
    _s("product_id"),
    _s("category"),
    _s("brand"),
    _s("price", MONEY),
    _s("quantity", IntegerType()),
    _s("device_type"),
    _s("ip"),
    _s("user_agent"),
    _s("page_url"),
    _s("error_msg"),
    _s("attributes", MapType(StringType(), StringType())),
]

ODS_EVENTS = StructType(
    _EVENT_FIELDS
    + [
        _s("raw_line", nullable=False),
        _s("etl_source_object", nullable=False),
        _s("etl_source_line", IntegerType(), False),
        _s("etl_source_schema", nullable=False),
        _s("etl_ingest_ts", TimestampType(), False),
        _s("dt", DateType(), False),
    ]
)

ODS_REJECTED = StructType(
    [
        _s("raw_line"),
        _s("etl_source_object", nullable=False),
        _s("etl_source_line", IntegerType()),  # null: the whole object was unreadable
        _s("etl_source_schema"),
        _s("reason", nullable=False),
        _s("etl_ingest_ts", TimestampType(), False),
        _s("dt", DateType(), False),  # arrival date (UTC) of the object, from its key
    ]
)

INGEST_MANIFEST = StructType(
    [
        _s("etl_source_object", nullable=False),
        _s("stream", nullable=False),
        _s("layout", nullable=False),
        _s("etl_source_schema"),
        _s("object_size_bytes", LongType(), False),
        _s("raw_records", LongType(), False),
        _s("ods_rows", LongType(), False),
        _s("rejected_rows", LongType(), False),
        _s("event_dates", ArrayType(DateType(), False), False),  # ODS dt values it added to
        _s("app_ids", ArrayType(StringType(), False), False),  # app_id values of its ODS rows
        _s("etl_ingest_ts", TimestampType(), False),
        _s("dt", DateType(), False),  # arrival date (UTC), from the object key
    ]
)

DWD_EVENTS = StructType(
    _EVENT_FIELDS
    + [
        _s("session_id"),
        _s("session_start_ts", TimestampType()),
        _s("etl_source_object", nullable=False),
        _s("etl_ingest_ts", TimestampType(), False),
        _s("dt", DateType(), False),
    ]
)

_COUNT_COLUMNS = [f"{t}_cnt" for t in EVENT_TYPES]

DWD_SESSIONS = StructType(
    [
        _s("session_id", nullable=False),
        _s("app_id", nullable=False),
        _s("user_id", nullable=False),
        _s("session_start_ts", TimestampType(), False),
        _s("session_end_ts", TimestampType(), False),
        _s("duration_sec", LongType(), False),
        _s("event_cnt", LongType(), False),
    ]
    + [_s(c, LongType(), False) for c in _COUNT_COLUMNS]
    + [
        _s("first_event_id", nullable=False),
        _s("is_bounce", BooleanType(), False),
        _s("is_capped", BooleanType(), False),
        _s("has_product_view", BooleanType(), False),
        _s("has_funnel_add_to_cart", BooleanType(), False),
        _s("has_funnel_purchase", BooleanType(), False),
        _s("has_purchase", BooleanType(), False),
        _s("dt", DateType(), False),
    ]
)

DWS_ACTIVE_USERS = StructType(
    [
        _s("app_id", nullable=False),
        _s("events", LongType(), False),
        _s("dau", LongType(), False),
        _s("wau", LongType(), False),
        _s("mau", LongType(), False),
        _s("new_users", LongType(), False),
        _s("dau_mau_ratio", DoubleType()),
        _s("dt", DateType(), False),
    ]
)

DWS_CONVERSION = StructType(
    [
        _s("app_id", nullable=False),
        _s("sessions", LongType(), False),
        _s("product_view_sessions", LongType(), False),
        _s("add_to_cart_sessions", LongType(), False),
        _s("purchase_sessions", LongType(), False),
        _s("sessions_with_purchase", LongType(), False),
        _s("session_conversion_rate", DoubleType()),
        _s("dt", DateType(), False),
    ]
)

DWS_CATEGORY = StructType(
    [
        _s("app_id", nullable=False),
        _s("category", nullable=False),
        _s("product_views", LongType(), False),
        _s("add_to_carts", LongType(), False),
        _s("purchases", LongType(), False),
        _s("revenue", REVENUE, False),
        _s("sessions", LongType(), False),
        _s("dt", DateType(), False),
    ]
)

DWS_RETENTION = StructType(
    [
        _s("app_id", nullable=False),
        _s("cohort_dt", DateType(), False),  # the cohort's users' first event date (UTC)
        _s("day_n", IntegerType(), False),  # days since cohort_dt, 0..30
        _s("activity_dt", DateType(), False),  # cohort_dt + day_n (UTC)
        _s("cohort_users", LongType(), False),
        _s("retained_users", LongType(), False),
        _s("retention_rate", DoubleType()),  # null when cohort_users = 0
        _s("dt", DateType(), False),  # = activity_dt
    ]
)

# --- real-time tables (spark_jobs/streaming): the labs' JSON field names (camelCase), window
# bounds and event times as BIGINT epoch milliseconds UTC, a window is [begin, end); no dt.
_WINDOW_FIELDS = [
    _s("windowBeginTime", LongType(), False),
    _s("windowEndTime", LongType(), False),
]
_KAFKA_COORDINATES = [
    _s("etl_topic", nullable=False),
    _s("etl_partition", IntegerType(), False),
    _s("etl_offset", LongType(), False),
]

RT_USER_SESSIONS_CHECKOUT = StructType(
    [
        _s("userId", nullable=False),
        _s("eventCount", LongType(), False),  # events with a product type (not "", not N/A)
        _s("orderCheckoutEventCount", LongType(), False),  # eventCount at the last checkout
        _s("deptList", ArrayType(StringType(), True), False),  # distinct product types, sorted
        *_WINDOW_FIELDS,  # [first event, last event + session gap)
    ]
)

RT_CLICKEVENTS_USERID_AGG = StructType(
    [
        *_WINDOW_FIELDS,  # 10 s tumbling window of session end
        _s("userSessionCount", LongType(), False),
        _s("userSessionCountWithOrderCheckout", LongType(), False),
        _s("percentSessionswithBuy", IntegerType(), False),  # 100 * with / all, truncated
    ]
)

RT_DEPARTMENTS_AGG = StructType(
    [
        _s("departmentName", nullable=False),
        _s("departmentCount", LongType(), False),  # sessions that touched it, not events
        *_WINDOW_FIELDS,
    ]
)

RT_TRADE_ORDERS_1M = StructType(
    [
        *_WINDOW_FIELDS,  # one minute of tuptime
        _s("count_tno", LongType(), False),
        _s("sum_tnum", LongType(), False),
    ]
)

RT_ERROR_EVENTS = StructType(
    [
        _s("eventId", nullable=False),
        _s("action"),
        _s("userId"),
        _s("objectId"),  # "" in the source reads as null, as in ODS
        _s("bizId"),
        _s("errorMsg", nullable=False),
        _s("createdAt", LongType(), False),  # event time, epoch ms
        *_KAFKA_COORDINATES,
    ]
)

RT_WARNING_ALERTS = StructType(
    [
        _s("action", nullable=False),
        _s("warningCount", LongType(), False),
        *_WINDOW_FIELDS,  # one minute of createdAt
    ]
)

RT_LATE_EVENTS = StructType(
    [
        _s("query", nullable=False),
        _s("batchId", LongType(), False),
        *_KAFKA_COORDINATES,
        _s("eventId", nullable=False),
        _s("userId"),
        _s("eventTime", LongType(), False),  # epoch ms
        _s("watermarkMs", LongType(), False),  # the batch's watermark, epoch ms
        _s("latenessMs", LongType(), False),  # watermarkMs - eventTime
        _s("value", nullable=False),  # the record as sent
    ]
)

SCHEMAS: dict[str, StructType] = {
    T.ODS_EVENTS: ODS_EVENTS,
    T.ODS_REJECTED: ODS_REJECTED,
    T.INGEST_MANIFEST: INGEST_MANIFEST,
    T.DWD_EVENTS: DWD_EVENTS,
    T.DWD_SESSIONS: DWD_SESSIONS,
    T.DWS_ACTIVE_USERS: DWS_ACTIVE_USERS,
    T.DWS_CONVERSION: DWS_CONVERSION,
    T.DWS_CATEGORY: DWS_CATEGORY,
    T.DWS_RETENTION: DWS_RETENTION,
    T.RT_USER_SESSIONS_CHECKOUT: RT_USER_SESSIONS_CHECKOUT,
    T.RT_CLICKEVENTS_USERID_AGG: RT_CLICKEVENTS_USERID_AGG,
    T.RT_DEPARTMENTS_AGG: RT_DEPARTMENTS_AGG,
    T.RT_TRADE_ORDERS_1M: RT_TRADE_ORDERS_1M,
    T.RT_ERROR_EVENTS: RT_ERROR_EVENTS,
    T.RT_WARNING_ALERTS: RT_WARNING_ALERTS,
    T.RT_LATE_EVENTS: RT_LATE_EVENTS,
}


def conform(df: DataFrame, schema: StructType) -> DataFrame:
    """Select exactly ``schema``'s columns, in order, cast to the declared types.

    A column whose type already is the declared one except for nullability inside it (Delta
    reads ``ARRAY<DATE>`` back with nullable elements) is kept as it is: Spark cannot cast a
    nullable-element array to a non-nullable one.

    Raises:
        pyspark.errors.AnalysisException: a declared column is missing from ``df``.
    """
    have = {f.name: f.dataType.simpleString() for f in df.schema.fields}

    def column(field):
        if have.get(field.name) == field.dataType.simpleString():
            return F.col(field.name)
        return F.col(field.name).cast(field.dataType).alias(field.name)

    return df.select([column(f) for f in schema.fields])
