"""Record adapters: raw JSON lines of one input schema -> typed canonical event rows, or a reason.

One adapter per input schema, selected per landing stream/topic by configuration
(``LAKEHOUSE_SOURCE_ADAPTERS="stream=adapter,..."``, default ``canonical``), never by guessing:

- ``canonical``: the project's own event JSON (what ``lakehouse replay`` writes).
- ``msk_clickstream_lab``: the Amazon MSK Clickstream Lab producer,
  ``{"ip", "eventtimestamp" (epoch ms), "devicetype", "event_type", "product_type", "userid",
  "globalseq", "prevglobalseq"}``; ``event_id`` = ``<stream>-<globalseq>``.
- ``backend_behaviour``: backend behaviour events,
  ``{"eventId", "action", "userId", "objectId", "bizId", "errorMsg", "createdAt"}``;
  ``createdAt`` is an epoch number or an ISO-8601 timestamp (UTC when no zone is given).
- ``kda_trade_orders``: the Kinesis Data Analytics lab's trade orders,
  ``{"tid", "tno", "tdate", "uno", "pno", "tnum", "tuptime" (epoch ms)}``; ``event_id`` = ``tno``,
  user = ``uno``, product = ``pno``, quantity = ``tnum``, event time = ``tuptime``, event_type
  ``purchase``; ``tid`` and ``tdate`` are kept in ``attributes``.

Event times, in every adapter: ISO-8601 text (UTC when no zone is given) or a number of the epoch
read by its magnitude: below 10^11 seconds (10^11 s is the year 5138), below 10^14 milliseconds,
below 10^17 microseconds (so ``1700000000`` and ``1700000000000`` are the same instant, and
seconds where milliseconds are expected never land in January 1970).

Rejection is for what cannot be read (bad JSON, a missing or unparseable required field, an
unknown schema). Implausible values in a readable record (a negative price) are kept and are
reported by a warning-level Great Expectations expectation instead.

Every adapter is a pure function ``DataFrame -> DataFrame``:

in: ``raw_line`` STRING, ``stream`` STRING (delivery stream / topic), plus pass-through columns;
out: the pass-through columns plus the typed canonical event fields of
:data:`spark_jobs.common.schemas.ODS_EVENTS` (without the ``etl_*``/``dt`` ones) and ``reason``
(STRING, null when the record is good; otherwise the first failed check, e.g.
``malformed JSON``, ``unknown schema: expected canonical``, ``missing event time``,
``unparseable event time: 'x'``, ``unparseable price: 'x'``).
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StringType, StructField, StructType

from spark_jobs.common.schemas import EVENT_TYPES, MONEY

CORRUPT = "_corrupt_record"

#: source event names (lower-cased) -> canonical event_type
EVENT_TYPE_SYNONYMS: dict[str, str] = {
    **{t: t for t in EVENT_TYPES},
    "pageview": "page_view",
    "page": "page_view",
    "home_page": "page_view",
    "view": "product_view",
    "view_product": "product_view",
    "product_detail": "product_view",
    "product_page": "product_view",
    "click": "product_view",
    "clicks": "product_view",
    "cart": "add_to_cart",
    "carts": "add_to_cart",
    "add_cart": "add_to_cart",
    "addtocart": "add_to_cart",
    "remove_cart": "remove_from_cart",
    "removefromcart": "remove_from_cart",
    "begin_checkout": "checkout",
    "order": "purchase",
    "orders": "purchase",
    "buy": "purchase",
    "pay": "purchase",
    "order_confirmation": "purchase",
    "cancel": "order_cancelled",
    "cancel_order": "order_cancelled",
    "cancellation": "order_cancelled",
    "exception": "error",
    "fail": "error",
}


def canonical_event_type(name: Column) -> Column:
    """Map a source event name (any case) to the canonical ``event_type``; unknown -> ``other``."""
    mapping = F.create_map(*[F.lit(x) for kv in EVENT_TYPE_SYNONYMS.items() for x in kv])
    return F.coalesce(mapping[F.lower(F.trim(name))], F.lit("other"))


def _json_fields(names: list[str], maps: tuple[str, ...] = ()) -> StructType:
    """All fields read as STRING (so bad values stay visible for typing checks) + corrupt column."""
    fields = [
        StructField(n, MapType(StringType(), StringType()) if n in maps else StringType())
        for n in names
    ]
    return StructType(fields + [StructField(CORRUPT, StringType())])


def _parse_json(df: DataFrame, schema: StructType) -> DataFrame:
    parsed = F.from_json(
        "raw_line", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    )
    # a JSON value that is not an object (e.g. ``[1]`` or ``"x"``) parses to null
    is_object = F.trim("raw_line").startswith("{")
    return df.withColumn("j", parsed).withColumn(
        "_malformed", F.col(f"j.{CORRUPT}").isNotNull() | F.col("j").isNull() | ~is_object
    )


def _blank_to_null(c: Column) -> Column:
    return F.when(F.trim(c) == "", None).otherwise(c)


#: epoch numbers below this are seconds, below 1000 times this milliseconds, then microseconds
EPOCH_SECONDS_BELOW = 10**11


def _parse_ts(text: Column) -> Column:
    """ISO-8601 (with or without zone; no zone = UTC) or an epoch number -> TIMESTAMP (UTC).

    Epoch numbers (digits, optionally a fraction) are read by magnitude: < 10^11 seconds,
    < 10^14 milliseconds, < 10^17 microseconds; larger ones are unparseable (null).
    """
    # JSON numbers read as text may come in scientific notation (1.7041646455E9)
    number = F.when(
        text.rlike(r"^\d{1,17}(\.\d+)?([eE][+]?\d{1,2})?$"), text.try_cast("decimal(24,6)")
    )
    micros = (
        F.when(number < EPOCH_SECONDS_BELOW, number * 1_000_000)
        .when(number < EPOCH_SECONDS_BELOW * 1000, number * 1000)
        .when(number < EPOCH_SECONDS_BELOW * 1_000_000, number)
    )
    as_epoch = F.timestamp_micros(F.floor(micros).cast("bigint"))
    return F.when(number.isNotNull(), as_epoch).otherwise(text.try_cast("timestamp"))


def _finish(df: DataFrame, signature: list[str], adapter: str) -> DataFrame:
    """Type the string fields and compute ``reason`` (first failed check wins)."""
    df = (
        df.withColumn("_ts_text", F.trim("_ts_raw"))
        .withColumn("event_ts", _parse_ts(F.col("_ts_text")))
        .withColumn("price", F.col("_price_raw").try_cast(MONEY))
        .withColumn("quantity", F.col("_quantity_raw").try_cast("int"))
    )
    has_signature = F.lit(False)
    for key in signature:
        has_signature = has_signature | F.col(f"j.{key}").isNotNull()
    reason = (
        F.when(F.col("_malformed"), F.lit("malformed JSON"))
        .when(~has_signature, F.lit(f"unknown schema: expected {adapter}"))
        .when(F.col("event_id").isNull(), F.lit("missing event id"))
        .when(F.col("_ts_text").isNull() | (F.col("_ts_text") == ""), F.lit("missing event time"))
        .when(
            F.col("event_ts").isNull(),
            F.concat(F.lit("unparseable event time: '"), F.col("_ts_text"), F.lit("'")),
        )
        .when(
            F.col("_price_raw").isNotNull() & F.col("price").isNull(),
            F.concat(F.lit("unparseable price: '"), F.col("_price_raw"), F.lit("'")),
        )
        .when(
            F.col("_quantity_raw").isNotNull() & F.col("quantity").isNull(),
            F.concat(F.lit("unparseable quantity: '"), F.col("_quantity_raw"), F.lit("'")),
        )
    )
    return df.withColumn("reason", reason).drop(
        "j", "_malformed", "_ts_raw", "_ts_text", "_price_raw", "_quantity_raw"
    )


_CANONICAL_FIELDS = [
    "event_id",
    "app_id",
    "event_ts",
    "event_name",
    "event_type",
    "user_id",
    "product_id",
    "category",
    "brand",
    "price",
    "quantity",
    "device_type",
    "ip",
    "user_agent",
    "page_url",
    "error_msg",
    "attributes",
]


def parse_canonical(df: DataFrame) -> DataFrame:
    """Adapter for the canonical event JSON (see module docstring for shapes)."""
    df = _parse_json(df, _json_fields(_CANONICAL_FIELDS, maps=("attributes",)))
    j = lambda name: _blank_to_null(F.col(f"j.{name}"))  # noqa: E731
    df = df.select(
        "*",
        j("event_id").alias("event_id"),
        F.coalesce(j("app_id"), F.col("stream")).alias("app_id"),
        F.col("j.event_ts").alias("_ts_raw"),
        j("event_name").alias("event_name"),
        canonical_event_type(F.coalesce(j("event_type"), j("event_name"))).alias("event_type"),
        j("user_id").alias("user_id"),
        j("product_id").alias("product_id"),
        j("category").alias("category"),
        j("brand").alias("brand"),
        j("price").alias("_price_raw"),
        j("quantity").alias("_quantity_raw"),
        j("device_type").alias("device_type"),
        j("ip").alias("ip"),
        j("user_agent").alias("user_agent"),
        j("page_url").alias("page_url"),
        j("error_msg").alias("error_msg"),
        F.coalesce(F.col("j.attributes"), F.create_map().cast("map<string,string>")).alias(
            "attributes"
        ),
    )
    return _finish(df, ["event_id", "event_ts", "event_type"], "canonical")


def parse_msk_clickstream_lab(df: DataFrame) -> DataFrame:
    """Adapter for the MSK Clickstream Lab producer's JSON (see module docstring)."""
    names = ["ip", "eventtimestamp", "devicetype", "event_type", "product_type", "userid"]
    df = _parse_json(df, _json_fields(names + ["globalseq", "prevglobalseq"]))
    j = lambda name: _blank_to_null(F.col(f"j.{name}"))  # noqa: E731
    df = df.select(
        "*",
        F.when(j("globalseq").isNotNull(), F.concat_ws("-", "stream", j("globalseq"))).alias(
            "event_id"
        ),
        F.col("stream").alias("app_id"),
        F.col("j.eventtimestamp").alias("_ts_raw"),
        j("event_type").alias("event_name"),
        canonical_event_type(j("event_type")).alias("event_type"),
        j("userid").alias("user_id"),
        F.lit(None).cast("string").alias("product_id"),
        j("product_type").alias("category"),
        F.lit(None).cast("string").alias("brand"),
        F.lit(None).cast("string").alias("_price_raw"),
        F.lit(None).cast("string").alias("_quantity_raw"),
        j("devicetype").alias("device_type"),
        j("ip").alias("ip"),
        F.lit(None).cast("string").alias("user_agent"),
        F.lit(None).cast("string").alias("page_url"),
        F.lit(None).cast("string").alias("error_msg"),
        F.map_from_arrays(
            F.array(F.lit("globalseq"), F.lit("prevglobalseq")),
            F.array(j("globalseq"), j("prevglobalseq")),
        ).alias("attributes"),
    )
    return _finish(df, ["eventtimestamp", "globalseq", "userid"], "msk_clickstream_lab")


def parse_backend_behaviour(df: DataFrame) -> DataFrame:
    """Adapter for backend behaviour events (see module docstring). A non-empty ``errorMsg``
    makes the event an ``error`` whatever its action."""
    names = ["eventId", "action", "userId", "objectId", "bizId", "errorMsg", "createdAt"]
    df = _parse_json(df, _json_fields(names))
    j = lambda name: _blank_to_null(F.col(f"j.{name}"))  # noqa: E731
    df = df.select(
        "*",
        j("eventId").alias("event_id"),
        F.col("stream").alias("app_id"),
        F.col("j.createdAt").alias("_ts_raw"),
        j("action").alias("event_name"),
        F.when(j("errorMsg").isNotNull(), F.lit("error"))
        .otherwise(canonical_event_type(j("action")))
        .alias("event_type"),
        j("userId").alias("user_id"),
        j("objectId").alias("product_id"),
        F.lit(None).cast("string").alias("category"),
        F.lit(None).cast("string").alias("brand"),
        F.lit(None).cast("string").alias("_price_raw"),
        F.lit(None).cast("string").alias("_quantity_raw"),
        F.lit(None).cast("string").alias("device_type"),
        F.lit(None).cast("string").alias("ip"),
        F.lit(None).cast("string").alias("user_agent"),
        F.lit(None).cast("string").alias("page_url"),
        j("errorMsg").alias("error_msg"),
        F.map_from_arrays(F.array(F.lit("biz_id")), F.array(j("bizId"))).alias("attributes"),
    )
    return _finish(df, ["eventId", "action", "createdAt"], "backend_behaviour")


def parse_kda_trade_orders(df: DataFrame) -> DataFrame:
    """Adapter for the Kinesis Data Analytics lab's trade orders (see module docstring)."""
    names = ["tid", "tno", "tdate", "uno", "pno", "tnum", "tuptime"]
    df = _parse_json(df, _json_fields(names))
    j = lambda name: _blank_to_null(F.col(f"j.{name}"))  # noqa: E731
    df = df.select(
        "*",
        j("tno").alias("event_id"),
        F.col("stream").alias("app_id"),
        F.col("j.tuptime").alias("_ts_raw"),
        F.lit("trade_order").alias("event_name"),
        F.lit("purchase").alias("event_type"),
        j("uno").alias("user_id"),
        j("pno").alias("product_id"),
        F.lit(None).cast("string").alias("category"),
        F.lit(None).cast("string").alias("brand"),
        F.lit(None).cast("string").alias("_price_raw"),
        j("tnum").alias("_quantity_raw"),
        F.lit(None).cast("string").alias("device_type"),
        F.lit(None).cast("string").alias("ip"),
        F.lit(None).cast("string").alias("user_agent"),
        F.lit(None).cast("string").alias("page_url"),
        F.lit(None).cast("string").alias("error_msg"),
        F.map_from_arrays(
            F.array(F.lit("tid"), F.lit("tdate")), F.array(j("tid"), j("tdate"))
        ).alias("attributes"),
    )
    return _finish(df, ["tno", "tuptime", "uno"], "kda_trade_orders")


ADAPTERS: dict[str, Callable[[DataFrame], DataFrame]] = {
    "canonical": parse_canonical,
    "msk_clickstream_lab": parse_msk_clickstream_lab,
    "backend_behaviour": parse_backend_behaviour,
    "kda_trade_orders": parse_kda_trade_orders,
}
