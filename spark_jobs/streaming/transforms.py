"""Pure parse and window-aggregation functions of the streaming job, batch or streaming alike.

Every function takes and returns a DataFrame and works the same on a static (batch) DataFrame
and inside a Structured Streaming query: event time only (never processing time), no
``collect``, no ordering outside a group. In a streaming query the caller sets the event-time
watermark first (:func:`with_watermark`); a window (or session) is then emitted once, in append
mode, when the watermark passes its end. In a batch every window is complete at once.

Conventions of every output:

- window bounds ``windowBeginTime`` / ``windowEndTime`` are BIGINT epoch milliseconds UTC, as in
  the labs' JSON; a window is ``[windowBeginTime, windowEndTime)``;
- column names are the labs' JSON field names (camelCase), so the Delta rows and the Kafka
  result records read the same;
- input records the ODS adapter rejects (``reason`` not null: bad JSON, missing event time...)
  take no part in any aggregate.

Sources of the definitions: the Amazon MSK Clickstream Lab's Flink application (session windows
of a 1 s gap per user, then 10 s tumbling windows over the sessions; topics
``User_Sessions_Aggregates_With_Order_Checkout``, ``ClickEvents_UserId_Agg_Result``,
``Departments_Agg``) and the Kinesis Data Analytics lab's per-minute trade-order counts; issue 7.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_jobs.ods.adapters import ADAPTERS

#: event-time column every parsed stream carries (TIMESTAMP, UTC)
EVENT_TIME = "event_ts"
#: product types the lab does not count as a department (besides null / empty)
NOT_A_PRODUCT = "N/A"
CHECKOUT_EVENT = "order_checkout"
#: tumbling window of the lab's session aggregates, in seconds
SESSION_AGG_WINDOW_SEC = 10
#: tumbling window of the trade-order counts and the warning alerts, in seconds
MINUTE_WINDOW_SEC = 60
#: an action with at least this many WARNING events in one minute raises an alert
WARNING_ALERT_THRESHOLD = 10
ERROR_MARKERS = ("[ERROR]", "[PANIC]")
WARNING_MARKER = "WARNING"


def _interval(seconds: float) -> str:
    """Spark interval text in whole milliseconds: ``1.0`` -> ``"1000 milliseconds"``."""
    return f"{round(seconds * 1000)} milliseconds"


def _epoch_ms(ts: Column) -> Column:
    return F.unix_millis(ts)


def with_watermark(df: DataFrame, watermark_sec: float) -> DataFrame:
    """Declare the event-time watermark on :data:`EVENT_TIME` (a no-op on a batch DataFrame)."""
    return df.withWatermark(EVENT_TIME, _interval(watermark_sec))


def parse_kafka_records(records: DataFrame, schema: str, keep_raw: bool = False) -> DataFrame:
    """Kafka records -> the typed canonical rows of the schema's ODS adapter (good ones only).

    Args:
        records: Spark's Kafka source columns (``value`` BINARY, ``topic`` STRING, ``partition``
            INT, ``offset`` BIGINT; ``key`` and ``timestamp`` unused). A batch test may give
            ``value`` as STRING.
        schema: an adapter of :data:`spark_jobs.ods.adapters.ADAPTERS` (``msk_clickstream_lab``,
            ``backend_behaviour``, ``kda_trade_orders``); the topic is the adapter's ``stream``.
        keep_raw: also keep the record's text as ``raw_line``.

    Returns:
        The adapter's canonical columns (``event_id``, ``event_ts`` TIMESTAMP UTC, ``user_id``,
        ``event_name`` (the source's own event name), ``category``, ``quantity``, ``error_msg``,
        ``attributes``...) plus ``etl_topic``, ``etl_partition``, ``etl_offset`` (the record's
        Kafka coordinates, a unique key). Rows the adapter rejects are left out.

    Raises:
        KeyError: unknown schema.
    """
    adapter = ADAPTERS[schema]
    raw = records.select(
        F.col("value").cast("string").alias("raw_line"),
        F.col("topic").alias("stream"),
        F.col("topic").alias("etl_topic"),
        F.col("partition").alias("etl_partition"),
        F.col("offset").alias("etl_offset"),
    )
    parsed = adapter(raw).where(F.col("reason").isNull()).drop("reason", "stream")
    return parsed if keep_raw else parsed.drop("raw_line")


# --- MSK Clickstream Lab ---------------------------------------------------------------------


def sessionize_clicks(clicks: DataFrame, gap_sec: float) -> DataFrame:
    """Per user session (Spark ``session_window``, event time): the lab's session aggregate.

    A user's event more than ``gap_sec`` after the previous one starts a new session; an event
    exactly ``gap_sec`` later continues it (Spark's and Flink's session windows merge windows
    that touch). The session window is ``[first event, last event + gap)``.

    Args:
        clicks: :func:`parse_kafka_records` rows of ``msk_clickstream_lab`` (``user_id``,
            ``event_ts``, ``event_name`` = the lab's ``event_type``, ``category`` = the lab's
            ``product_type`` with "" read as null, ``attributes['globalseq']``).
        gap_sec: session gap in seconds (the lab's 1 s: ``STREAM_SESSION_GAP_SEC``).

    Returns:
        One row per session: ``userId`` STRING, ``eventCount`` BIGINT (events whose product
        type is neither null, empty nor ``N/A``),
        ``orderCheckoutEventCount`` BIGINT (the eventCount at the session's last
        ``order_checkout``, that event included; 0 without one), ``hasOrderCheckout`` BOOLEAN,
        ``deptList`` ARRAY<STRING> (distinct counted product types, sorted),
        ``windowBeginTime``, ``windowEndTime`` BIGINT epoch ms.
    """
    counted = F.col("category").isNotNull() & (F.col("category") != NOT_A_PRODUCT)
    seq = F.col("attributes").getItem("globalseq").cast("bigint")
    step = F.struct(
        _epoch_ms(EVENT_TIME).alias("ts"),
        F.coalesce(seq, F.lit(0)).alias("seq"),
        counted.cast("int").alias("counted"),
        (F.col("event_name") == CHECKOUT_EVENT).alias("checkout"),
    )
    sessions = clicks.groupBy(
        F.col("user_id").alias("userId"),
        F.session_window(EVENT_TIME, _interval(gap_sec)).alias("session_window"),
    ).agg(
        F.sum(counted.cast("int")).cast("bigint").alias("eventCount"),
        F.array_sort(F.collect_list(step)).alias("_steps"),
        F.array_sort(F.array_distinct(F.collect_list(F.when(counted, F.col("category"))))).alias(
            "deptList"
        ),
        F.max(F.col("event_name") == CHECKOUT_EVENT).alias("hasOrderCheckout"),
    )
    # running eventCount in event order; remembered at each order_checkout
    start = F.struct(F.lit(0).cast("bigint").alias("n"), F.lit(0).cast("bigint").alias("at"))
    running = F.aggregate(
        "_steps",
        start,
        lambda acc, e: F.struct(
            (acc["n"] + e["counted"]).alias("n"),
            F.when(e["checkout"], acc["n"] + e["counted"]).otherwise(acc["at"]).alias("at"),
        ),
    )
    return sessions.select(
        "userId",
        "eventCount",
        running["at"].alias("orderCheckoutEventCount"),
        F.coalesce("hasOrderCheckout", F.lit(False)).alias("hasOrderCheckout"),
        "deptList",
        _epoch_ms(F.col("session_window.start")).alias("windowBeginTime"),
        _epoch_ms(F.col("session_window.end")).alias("windowEndTime"),
    )


def select_user_sessions_checkout(sessions: DataFrame) -> DataFrame:
    """``rt_user_sessions_checkout`` (topic ``User_Sessions_Aggregates_With_Order_Checkout``):
    the sessions of :func:`sessionize_clicks` with an ``order_checkout``.

    Returns:
        One row per session with a checkout: ``userId``, ``eventCount``,
        ``orderCheckoutEventCount``, ``deptList``, ``windowBeginTime``, ``windowEndTime``.
    """
    return sessions.where("hasOrderCheckout").select(
        "userId",
        "eventCount",
        "orderCheckoutEventCount",
        "deptList",
        "windowBeginTime",
        "windowEndTime",
    )


def _session_end_window(window_sec: int) -> Column:
    """Begin (epoch ms) of the tumbling window of a session's end: the window holding the
    session's last instant, ``windowEndTime - 1`` ms (Flink's ``TimeWindow.maxTimestamp()``). A
    session whose window ends exactly on a boundary B belongs to the window ending at B.

    Computed from ``windowEndTime`` alone, so it works on sessions read back from a table as well
    as on :func:`sessionize_clicks` rows."""
    last = F.col("windowEndTime") - 1
    return last - F.pmod(last, F.lit(window_sec * 1000))


def closed_session_ends(previous_watermark_ms: int, watermark_ms: int, window_sec: int):
    """Which tumbling windows of session end a micro-batch closes, as the session ends they hold.

    A window ``[b, b + size)`` is final once the watermark reaches its end: every session ending
    at or before the watermark has been emitted by then (Spark emits a session when the
    watermark reaches its end and drops an event whose own session would end there). So the
    batch whose watermark first reaches ``b + size`` closes it: ``previous < b + size <=
    watermark``, where ``previous`` is the previous batch's watermark (all epoch ms).

    Returns:
        ``(low, high)``: the closed windows hold exactly the sessions with ``low <
        windowEndTime <= high``; None when the batch closes no window.
    """
    size = window_sec * 1000
    first_end = (previous_watermark_ms // size + 1) * size
    last_end = (watermark_ms // size) * size
    return None if last_end < first_end else (first_end - size, last_end)


def aggregate_clickevents_userid(sessions: DataFrame, window_sec: int = 10) -> DataFrame:
    """``rt_clickevents_userid_agg`` (topic ``ClickEvents_UserId_Agg_Result``): per tumbling
    window of session end (:func:`_session_end_window`), every session of the window.

    Args:
        sessions: :func:`sessionize_clicks` rows (all sessions, with or without checkout).
        window_sec: the lab's 10 s.

    Returns:
        One row per window with a session: ``windowBeginTime``, ``windowEndTime`` BIGINT epoch
        ms, ``userSessionCount`` BIGINT, ``userSessionCountWithOrderCheckout`` BIGINT,
        ``percentSessionswithBuy`` INT = ``100 * withCheckout / sessions`` truncated to an
        integer (as the lab's Java integer arithmetic prints it: 2 of 3 -> 66).
    """
    agg = sessions.groupBy(_session_end_window(window_sec).alias("begin")).agg(
        F.count(F.lit(1)).alias("userSessionCount"),
        F.count(F.when(F.col("hasOrderCheckout"), 1)).alias("userSessionCountWithOrderCheckout"),
    )
    return agg.select(
        F.col("begin").alias("windowBeginTime"),
        (F.col("begin") + window_sec * 1000).alias("windowEndTime"),
        "userSessionCount",
        "userSessionCountWithOrderCheckout",
        F.floor(F.col("userSessionCountWithOrderCheckout") * 100 / F.col("userSessionCount"))
        .cast("int")
        .alias("percentSessionswithBuy"),
    )


def aggregate_departments(sessions: DataFrame, window_sec: int = 10) -> DataFrame:
    """``rt_departments_agg`` (topic ``Departments_Agg``): per tumbling window of session end and
    department, the sessions that touched the department (a department seen twice in one
    session counts once: ``deptList`` is distinct).

    Returns:
        One row per (window, department): ``departmentName`` STRING, ``departmentCount`` BIGINT,
        ``windowBeginTime``, ``windowEndTime`` BIGINT epoch ms.
    """
    touched = sessions.select(
        _session_end_window(window_sec).alias("begin"),
        F.explode("deptList").alias("departmentName"),
    )
    agg = touched.groupBy("begin", "departmentName").agg(F.count(F.lit(1)).alias("departmentCount"))
    return agg.select(
        "departmentName",
        "departmentCount",
        F.col("begin").alias("windowBeginTime"),
        (F.col("begin") + window_sec * 1000).alias("windowEndTime"),
    )


# --- Kinesis Data Analytics lab: trade orders -----------------------------------------------


def aggregate_trade_orders_1m(trades: DataFrame) -> DataFrame:
    """``rt_trade_orders_1m``: per one-minute tumbling window of event time (``tuptime``).

    Args:
        trades: :func:`parse_kafka_records` rows of ``kda_trade_orders`` (``event_id`` = ``tno``,
            ``quantity`` = ``tnum``).

    Returns:
        One row per minute with orders: ``windowBeginTime``, ``windowEndTime`` BIGINT epoch ms,
        ``count_tno`` BIGINT (orders), ``sum_tnum`` BIGINT (quantity; null tnum adds nothing).
    """
    agg = trades.groupBy(F.window(EVENT_TIME, f"{MINUTE_WINDOW_SEC} seconds").alias("w")).agg(
        F.count("event_id").alias("count_tno"),
        F.coalesce(F.sum("quantity"), F.lit(0)).cast("bigint").alias("sum_tnum"),
    )
    return agg.select(
        _epoch_ms(F.col("w.start")).alias("windowBeginTime"),
        _epoch_ms(F.col("w.end")).alias("windowEndTime"),
        "count_tno",
        "sum_tnum",
    )


# --- backend behaviour: errors and warnings --------------------------------------------------


def _has_marker(marker: str) -> Column:
    return F.upper(F.coalesce(F.col("error_msg"), F.lit(""))).contains(marker.upper())


def select_error_events(behaviour: DataFrame) -> DataFrame:
    """``rt_error_events``: behaviour events whose ``errorMsg`` contains ``[ERROR]`` or
    ``[PANIC]`` in any letter case (``[error]``, ``[Panic]``...). Stateless (no window).

    Args:
        behaviour: :func:`parse_kafka_records` rows of ``backend_behaviour``.

    Returns:
        One row per such record, the source's fields back under their own names: ``eventId``,
        ``action``, ``userId``, ``objectId``, ``bizId``, ``errorMsg`` STRING (an empty source
        string reads as null, as in ODS), ``createdAt`` BIGINT epoch ms; plus ``etl_topic``,
        ``etl_partition``, ``etl_offset`` when the input has them (the record's Kafka key).
    """
    extra = [c for c in ("etl_topic", "etl_partition", "etl_offset") if c in behaviour.columns]
    errors = behaviour.where(_has_marker(ERROR_MARKERS[0]) | _has_marker(ERROR_MARKERS[1]))
    return errors.select(
        F.col("event_id").alias("eventId"),
        F.col("event_name").alias("action"),
        F.col("user_id").alias("userId"),
        F.col("product_id").alias("objectId"),
        F.col("attributes").getItem("biz_id").alias("bizId"),
        F.col("error_msg").alias("errorMsg"),
        _epoch_ms(EVENT_TIME).alias("createdAt"),
        *extra,
    )


def aggregate_warning_alerts(behaviour: DataFrame, threshold: int = WARNING_ALERT_THRESHOLD):
    """``rt_warning_alerts``: per action and one-minute tumbling window of event time, the count
    of events whose ``errorMsg`` contains ``WARNING`` (any case), kept when >= ``threshold``
    (10: 9 warnings raise nothing, 10 raise an alert).

    Returns:
        One row per alert: ``action`` STRING, ``warningCount`` BIGINT, ``windowBeginTime``,
        ``windowEndTime`` BIGINT epoch ms.
    """
    warnings = behaviour.where(_has_marker(WARNING_MARKER))
    agg = warnings.groupBy(
        F.window(EVENT_TIME, f"{MINUTE_WINDOW_SEC} seconds").alias("w"),
        F.col("event_name").alias("action"),
    ).agg(F.count(F.lit(1)).alias("warningCount"))
    return agg.where(F.col("warningCount") >= threshold).select(
        "action",
        "warningCount",
        _epoch_ms(F.col("w.start")).alias("windowBeginTime"),
        _epoch_ms(F.col("w.end")).alias("windowEndTime"),
    )


# --- records behind the watermark ------------------------------------------------------------


def session_late_time(gap_sec: float) -> Column:
    """When a session query drops a record: its own session window ``[t, t + gap)`` ends at or
    before the watermark (epoch ms)."""
    return _epoch_ms(EVENT_TIME) + F.lit(round(gap_sec * 1000))


def window_late_time(window_sec: int) -> Column:
    """When a tumbling-window query drops a record: its window's end is at or before the
    watermark (epoch ms)."""
    return _epoch_ms(F.window(EVENT_TIME, f"{window_sec} seconds").end)


def select_late_events(
    events: DataFrame, query: str, late_time: Column, watermark_ms: int, batch_id: int
) -> DataFrame:
    """``rt_late_events``: the records of one micro-batch that a query's stateful operator drops
    as behind the watermark (Spark drops an input row when the end of the window or session it
    would open is at or before the batch's watermark: ``late_time <= watermark_ms``).

    Args:
        events: :func:`parse_kafka_records` rows (with ``keep_raw``) of the batch's input.
        query: the query (= table) name.
        late_time: :func:`session_late_time` or :func:`window_late_time` of the query.
        watermark_ms: the batch's watermark (epoch ms), as Spark recorded it in the offset log.
        batch_id: the micro-batch.

    Returns:
        One row per late record: ``query`` STRING, ``batchId`` BIGINT, ``etl_topic``,
        ``etl_partition``, ``etl_offset`` (its Kafka coordinates), ``eventId``, ``userId``
        STRING, ``eventTime``, ``watermarkMs`` BIGINT epoch ms, ``latenessMs`` BIGINT
        (``watermarkMs - eventTime``: how far behind the watermark), ``value`` STRING (the
        record as sent, for reprocessing).
    """
    late = events.where(late_time <= F.lit(watermark_ms))
    return late.select(
        F.lit(query).alias("query"),
        F.lit(batch_id).cast("bigint").alias("batchId"),
        "etl_topic",
        "etl_partition",
        "etl_offset",
        F.col("event_id").alias("eventId"),
        F.col("user_id").alias("userId"),
        _epoch_ms(EVENT_TIME).alias("eventTime"),
        F.lit(watermark_ms).cast("bigint").alias("watermarkMs"),
        (F.lit(watermark_ms) - _epoch_ms(EVENT_TIME)).cast("bigint").alias("latenessMs"),
        F.col("raw_line").alias("value"),
    )
