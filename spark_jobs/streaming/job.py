"""The Structured Streaming job: Kafka topics -> real-time window tables (Delta) and result topics.

``lakehouse stream [--available-now]`` starts one streaming query per input computation, each
with its own checkpoint (``<root>/rt/_checkpoints/<query>``), writing Delta outputs
(``<root>/rt/<table>``):

- ``clickstream_sessions`` (msk_clickstream_lab): the lab's session window, once, for its three
  outputs (:func:`session_outputs`):

  - ``rt_user_sessions_checkout`` -> topic ``User_Sessions_Aggregates_With_Order_Checkout``,
    key ``userId:windowBeginTime``;
  - ``rt_clickevents_userid_agg`` -> topic ``ClickEvents_UserId_Agg_Result``, key
    ``windowBeginTime``;
  - ``rt_departments_agg`` -> topic ``Departments_Agg``, key ``departmentName:windowBeginTime``;

- ``rt_trade_orders_1m`` (kda_trade_orders), Delta only;
- ``rt_error_events`` and ``rt_warning_alerts`` (backend_behaviour), Delta only;
- ``raw_archive``: every input record, to the landing URI ``STREAM_ARCHIVE`` in the Kafka Connect
  S3 sink layout (:func:`start_archive_query`), for the batch layers.

The rows are those of :mod:`spark_jobs.streaming.transforms` (columns, units: epoch ms UTC),
written with the columns and types the registry declares (:data:`spark_jobs.tables.RT_TABLES`,
:mod:`spark_jobs.common.schemas`); the tables are not partitioned.

Input: Spark's Kafka source on the topics of ``LAKEHOUSE_STREAM_TOPICS`` (``topic=schema,...``)
whose schema a query reads (every topic for the raw archive; a topic of another ODS adapter's
schema, e.g. ``canonical`` from ``lakehouse replay DATASET --to kafka://...``, feeds only the
archive), from the earliest offsets on the first start and from the checkpoint afterwards
(``failOnDataLoss`` stays true: offsets deleted by retention before they were read fail the
query instead of being skipped silently). Records are parsed with the ODS adapters;
rejected ones (bad JSON, missing event time...) take no part.

Event time and output mode: a watermark of ``STREAM_WATERMARK_SEC`` (20 s) behind the largest
event time seen; every windowed query runs in append mode, so a window is written once, when the
watermark passes its end. The 10 s session aggregates are windows of session end: the session
query keeps every closed session in ``<root>/rt/_state/clickstream_sessions`` and, in the batch
whose watermark passes a window's end (when every session of the window has closed), aggregates
the window from there, so the Kafka read, the parse and the session state are paid once for the
three lab outputs, not once per output.

Late records: Spark's stateful operators drop an input record whose window (or own session
``[t, t + gap)``) ends at or before the batch's watermark. Each stateful query keeps those
records in ``<root>/rt/rt_late_events`` (one row per query and record, with the watermark and the
lateness; :func:`spark_jobs.streaming.transforms.select_late_events`): it reads a batch's Kafka
offset range again (from the query's offset log, with the watermark the batch ran with) and
appends the late ones, once per batch. That late pass for batch N runs in batch N + 1 (and for
the last batch when the queries stop), where Spark's progress of batch N is known: it is skipped
when that progress reports no row dropped by the watermark, and runs whenever the progress is
unknown (the first batch after a restart, a crash in between), so a kill loses no late record.
The per-batch count Spark reports is logged too ("late rows dropped").

Exactly once into Delta: every micro-batch is written by ``foreachBatch`` with Delta's
``txnAppId`` (query name + the checkpoint's query id) and ``txnVersion`` (the batch id), so a
batch replayed after a crash is not appended twice. The Kafka result topics are at-least-once:
a replayed batch is sent again, with the same key and value, so consumers deduplicate by key.

``--available-now`` (Trigger.AvailableNow) processes what the topics hold when the job starts
(plus the batches the watermark needs to close windows) and stops: a bounded run for tests and
catch-up. Without it each query runs every ``STREAM_TRIGGER_SEC`` until interrupted (Ctrl-C or
SIGTERM stop the queries cleanly). Progress per query and batch (input rows and rows/s, batch
duration, watermark, state rows, late rows dropped) is logged through Python logging; Spark's own
logs stay at ERROR.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs import tables as T
from spark_jobs.common.delta_io import append_once, is_delta_table
from spark_jobs.common.schemas import SCHEMAS, conform
from spark_jobs.settings import Settings
from spark_jobs.streaming import transforms as X

log = logging.getLogger("lakehouse")

RT_LAYER = "rt"
LATE_EVENTS = T.RT_LATE_EVENTS


@dataclass(frozen=True)
class StreamParams:
    """Run parameters a command line may override (defaults from :class:`Settings`)."""

    watermark_sec: float
    session_gap_sec: float

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamParams:
        return cls(settings.stream_watermark_sec, settings.stream_session_gap_sec)


@dataclass(frozen=True)
class Output:
    """A table a query writes, with the lab's Kafka result topic and the key of a row."""

    table: str
    result_topic: str | None = None
    key: Callable[[], Column] | None = None


@dataclass(frozen=True)
class StreamQuery:
    """One streaming query: its name (its checkpoint; the table, for a one-table query), input
    schema, transformation, the tables it writes and when its stateful operator drops a record.

    A query with ``derive`` writes the tables ``derive`` computes from each micro-batch
    (:func:`session_outputs`); otherwise the micro-batch itself is the rows of its one output."""

    name: str
    schema: str
    build: Callable[[DataFrame, StreamParams], DataFrame]
    outputs: tuple[Output, ...]
    #: when the query's stateful operator drops a record (None: stateless, nothing is dropped)
    late_time: Callable[[StreamParams], Column] | None = None
    derive: Callable[..., list[tuple[Output, DataFrame]]] | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(o.table for o in self.outputs)


def _key(*columns: str) -> Callable[[], Column]:
    return lambda: F.concat_ws(":", *[F.col(c).cast("string") for c in columns])


def _session_late(params: StreamParams) -> Column:
    return X.session_late_time(params.session_gap_sec)


def _minute_late(params: StreamParams) -> Column:
    return X.window_late_time(X.MINUTE_WINDOW_SEC)


#: the lab's session query: one session window over the clicks feeds its three outputs
LAB_SESSIONS = "clickstream_sessions"
SESSIONS_CHECKOUT = Output(
    T.RT_USER_SESSIONS_CHECKOUT,
    "User_Sessions_Aggregates_With_Order_Checkout",
    _key("userId", "windowBeginTime"),
)
CLICKEVENTS_AGG = Output(
    "rt_clickevents_userid_agg", "ClickEvents_UserId_Agg_Result", _key("windowBeginTime")
)
DEPARTMENTS_AGG = Output(
    "rt_departments_agg", "Departments_Agg", _key("departmentName", "windowBeginTime")
)
#: columns of the closed sessions the lab query keeps (``<root>/rt/_state/clickstream_sessions``)
SESSION_STATE_COLUMNS = (
    "userId",
    "eventCount",
    "orderCheckoutEventCount",
    "hasOrderCheckout",
    "deptList",
    "windowBeginTime",
    "windowEndTime",
)


#: every this many batches the lab query deletes from its session state the sessions of windows
#: closed before the batch (no batch reads them again), then vacuums the state (Delta's 7 days)
STATE_TRIM_BATCHES = 50


def _sessions(events: DataFrame, params: StreamParams) -> DataFrame:
    return X.sessionize_clicks(events, params.session_gap_sec).select(*SESSION_STATE_COLUMNS)


def session_state_location(settings: Settings) -> str:
    """Every closed session of the lab query, all of them (with or without checkout):
    ``<root>/rt/_state/clickstream_sessions``, a Delta table the 10 s aggregates are computed
    from (internal state of the query, not a published table)."""
    return f"{settings.lakehouse_root}/{RT_LAYER}/_state/{LAB_SESSIONS}"


def batch_watermark(spark: SparkSession, checkpoint: str, batch_id: int) -> int:
    """The watermark (epoch ms) micro-batch ``batch_id`` ran with, from the query's offset log
    (``batchWatermarkMs``); 0 before the first batch."""
    if batch_id < 0:
        return 0
    return _entry_watermark(_read_log_file(spark, f"{checkpoint}/offsets/{batch_id}"))


def session_outputs(
    settings: Settings, checkpoint: str, writer_id: str, sessions: DataFrame, batch_id: int
) -> list[tuple[Output, DataFrame]]:
    """The lab's three outputs of one micro-batch of closed sessions.

    The batch's sessions (every session the watermark closed in this batch) are appended once
    to the session state (:func:`session_state_location`); the sessions with a checkout are
    ``rt_user_sessions_checkout``; the 10 s windows of session end that this batch's watermark
    closes (:func:`spark_jobs.streaming.transforms.closed_session_ends`: the previous and this
    batch's watermark from the offset log) are aggregated from the state into
    ``rt_clickevents_userid_agg`` and ``rt_departments_agg``. So the Kafka read, the parse and
    the session window run once for the three outputs, and a window is written in the batch
    whose watermark passes its end, as Spark's own chained window would write it.

    A replayed batch finds its sessions in the state already (the append is skipped by its
    ``txnVersion``) and reads the same windows: the same rows. Every
    :data:`STATE_TRIM_BATCHES` batches the state loses the sessions of the windows closed before
    this batch (this batch and later ones read only sessions ending after them, a replay of this
    batch included), so it holds about that many batches of sessions, not the stream's history.

    Returns:
        ``(output, rows)`` pairs; the aggregates only when the batch closes a window.
    """
    spark = sessions.sparkSession
    state = session_state_location(settings)
    if not sessions.isEmpty() or not is_delta_table(spark, state):
        append_once(sessions, state, writer_id, batch_id)
    outputs = [(SESSIONS_CHECKOUT, X.select_user_sessions_checkout(sessions))]
    closed = X.closed_session_ends(
        batch_watermark(spark, checkpoint, batch_id - 1),
        batch_watermark(spark, checkpoint, batch_id),
        X.SESSION_AGG_WINDOW_SEC,
    )
    if closed is not None:
        low, high = closed
        ended = F.col("windowEndTime")
        recent = spark.read.format("delta").load(state).where((ended > low) & (ended <= high))
        window = X.SESSION_AGG_WINDOW_SEC
        outputs += [
            (CLICKEVENTS_AGG, X.aggregate_clickevents_userid(recent, window)),
            (DEPARTMENTS_AGG, X.aggregate_departments(recent, window)),
        ]
        if batch_id % STATE_TRIM_BATCHES == 0:
            trim_session_state(spark, state, low)
    return outputs


def trim_session_state(spark: SparkSession, state: str, closed_ms: int) -> None:
    """Delete the stored sessions ending at or before ``closed_ms`` (epoch ms; their windows are
    closed and written), then VACUUM the state with Delta's default retention (7 days)."""
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, state)
    table.delete(F.col("windowEndTime") <= F.lit(closed_ms))
    table.vacuum()
    log.info("STREAM %s: session state keeps sessions ending after %d", LAB_SESSIONS, closed_ms)


QUERIES: tuple[StreamQuery, ...] = (
    StreamQuery(
        LAB_SESSIONS,
        "msk_clickstream_lab",
        _sessions,
        (SESSIONS_CHECKOUT, CLICKEVENTS_AGG, DEPARTMENTS_AGG),
        _session_late,
        session_outputs,
    ),
    StreamQuery(
        "rt_trade_orders_1m",
        "kda_trade_orders",
        lambda ev, p: X.aggregate_trade_orders_1m(ev),
        (Output("rt_trade_orders_1m"),),
        _minute_late,
    ),
    StreamQuery(
        "rt_error_events",
        "backend_behaviour",
        lambda ev, p: X.select_error_events(ev),
        (Output("rt_error_events"),),
    ),
    StreamQuery(
        "rt_warning_alerts",
        "backend_behaviour",
        lambda ev, p: X.aggregate_warning_alerts(ev),
        (Output("rt_warning_alerts"),),
        _minute_late,
    ),
)
#: the raw archive's query (no table: objects under ``STREAM_ARCHIVE``)
ARCHIVE_QUERY = "raw_archive"
QUERY_NAMES = (*(q.name for q in QUERIES), ARCHIVE_QUERY)


def query_names(names: list[str]) -> list[str]:
    """Query names for names of queries or of the tables they write (``rt_departments_agg`` ->
    ``clickstream_sessions``), in the order of :data:`QUERY_NAMES`.

    Raises:
        ValueError: a name that is neither a query nor a table of one.
    """
    of_table = {t: q.name for q in QUERIES for t in q.tables}
    unknown = sorted(set(names) - set(QUERY_NAMES) - set(of_table))
    if unknown:
        known = [*QUERY_NAMES, *of_table]
        raise ValueError(f"unknown queries {unknown}; expected some of {known}")
    wanted = {of_table.get(n, n) for n in names}
    return [n for n in QUERY_NAMES if n in wanted]


def table_location(settings: Settings, table: str) -> str:
    """Delta output of a query: ``<root>/rt/<table>``."""
    return settings.table_path(RT_LAYER, table)


def checkpoint_location(settings: Settings, query: str) -> str:
    """Checkpoint of a query: ``<root>/rt/_checkpoints/<query>``."""
    return f"{settings.lakehouse_root}/{RT_LAYER}/_checkpoints/{query}"


def result_topic(settings: Settings, output: Output) -> str | None:
    """An output's Kafka result topic: ``STREAM_RESULT_TOPIC_PREFIX`` + the lab's name."""
    if not output.result_topic:
        return None
    return settings.stream_result_topic_prefix + output.result_topic


def check_stream_topics(stream_topics: dict[str, str]) -> None:
    """Fail early on a ``LAKEHOUSE_STREAM_TOPICS`` entry whose schema is no ODS adapter.

    Every adapter of :data:`spark_jobs.ods.adapters.ADAPTERS` is accepted: the three lab schemas
    feed their window queries; any other (``canonical``: what ``lakehouse replay DATASET --to
    kafka://...`` sends) feeds no window query but is archived with the rest, and the batch
    layers read it from the archive with the same adapter.

    Raises:
        ValueError: an unknown schema (the message lists the known ones), or no topic at all.
    """
    from spark_jobs.ods.adapters import ADAPTERS

    if not stream_topics:
        raise ValueError("LAKEHOUSE_STREAM_TOPICS names no topic")
    unknown = {t: s for t, s in stream_topics.items() if s not in ADAPTERS}
    if unknown:
        wrong = ", ".join(f"{t}={s}" for t, s in sorted(unknown.items()))
        raise ValueError(
            f"LAKEHOUSE_STREAM_TOPICS: unknown schema in {wrong}; known: {sorted(ADAPTERS)}"
        )


def topics_of(settings: Settings, schema: str) -> list[str]:
    """The input topics of ``LAKEHOUSE_STREAM_TOPICS`` carrying ``schema``."""
    return sorted(t for t, s in settings.stream_topics.items() if s == schema)


def read_topics(spark: SparkSession, settings: Settings, topics: list[str]) -> DataFrame:
    """Spark's Kafka source on ``topics``: earliest offsets on the first start."""
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", ",".join(topics))
        .option("startingOffsets", "earliest")
    )
    if settings.stream_max_offsets_per_trigger > 0:
        reader = reader.option("maxOffsetsPerTrigger", settings.stream_max_offsets_per_trigger)
    return reader.load()


def _read_log_file(spark: SparkSession, path: str) -> list[str]:
    """Lines of a small checkpoint file, read through the driver's Hadoop file system (any
    scheme Spark reads: local, ``s3a://``...), not a Spark job: 0.01 s against 0.13-0.17 s for
    ``spark.read.text`` on an idle 2-core machine, twice per lab micro-batch."""
    jvm = spark.sparkContext._jvm
    file = jvm.org.apache.hadoop.fs.Path(path)
    stream = file.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(file)
    try:
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")).splitlines()
    finally:
        stream.close()


def _checkpoint_query_id(spark: SparkSession, checkpoint: str) -> str:
    """The query id Spark keeps in ``<checkpoint>/metadata`` (stable across restarts of one
    checkpoint, new for a new checkpoint)."""
    return json.loads("".join(_read_log_file(spark, f"{checkpoint}/metadata")))["id"]


def _entry_watermark(entry: list[str]) -> int:
    """``batchWatermarkMs`` of an offset-log entry (its second line: the batch's metadata)."""
    return int(json.loads(entry[1])["batchWatermarkMs"])


def _last_json(lines: list[str]) -> dict:
    return json.loads([line for line in lines if line.lstrip("\x00").startswith("{")][-1])


def batch_offsets(spark: SparkSession, checkpoint: str, batch_id: int) -> tuple[dict, dict, int]:
    """What a micro-batch read and its watermark, from the query's write-ahead offset log.

    Returns:
        ``(start, end, watermark_ms)``: Kafka offsets ``{topic: {partition: offset}}`` before and
        after the batch (start from the previous batch's entry, or the initial offsets for batch
        0), and the ``batchWatermarkMs`` the batch ran with.
    """
    entry = _read_log_file(spark, f"{checkpoint}/offsets/{batch_id}")
    watermark_ms = _entry_watermark(entry)
    end = _last_json(entry)
    if batch_id == 0:
        start = _last_json(_read_log_file(spark, f"{checkpoint}/sources/0/0"))
    else:
        start = _last_json(_read_log_file(spark, f"{checkpoint}/offsets/{batch_id - 1}"))
    return start, end, watermark_ms


def read_offset_range(spark: SparkSession, settings: Settings, start: dict, end: dict):
    """The Kafka records between two offset maps (a batch read; partitions new since ``start``
    from their earliest offset)."""
    start = {t: {p: start.get(t, {}).get(p, -2) for p in parts} for t, parts in end.items()}
    return (
        spark.read.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
        .option("subscribe", ",".join(sorted(end)))
        .option("startingOffsets", json.dumps(start))
        .option("endingOffsets", json.dumps(end))
        .load()
    )


def write_late_events(
    query: StreamQuery,
    settings: Settings,
    params: StreamParams,
    checkpoint: str,
    writer_id: str,
    spark: SparkSession,
    batch_id: int,
) -> None:
    """Keep the records of batch ``batch_id`` that the query dropped as behind the watermark in
    ``rt_late_events`` (once per batch: ``txnAppId`` ``rt_late_events:<writer id>``).

    The batch's input is read again from Kafka by the offsets the query logged for it, with the
    watermark it ran with; nothing is read when the watermark is still unset (batch 0) or the
    batch read nothing (a batch that only advanced the watermark).

    Raises Spark's error from the Kafka source when the batch's offsets are no longer on the
    broker (retention; ``failOnDataLoss`` is on), and Delta's when the append fails.
    """
    start, end, watermark_ms = batch_offsets(spark, checkpoint, batch_id)
    if watermark_ms <= 0 or start == end:
        return
    records = read_offset_range(spark, settings, start, end)
    events = X.parse_kafka_records(records, query.schema, keep_raw=True)
    late = X.select_late_events(events, query.name, query.late_time(params), watermark_ms, batch_id)
    late = late.persist()
    try:
        if not late.isEmpty():  # no Delta commit for a batch without late records
            path = table_location(settings, LATE_EVENTS)
            rows = conform(late, SCHEMAS[LATE_EVENTS])
            append_once(rows, path, f"{LATE_EVENTS}:{writer_id}", batch_id)
    finally:
        late.unpersist()


def create_late_events_table(spark: SparkSession, settings: Settings) -> None:
    """Create the empty ``rt_late_events`` table when missing, before the queries start: several
    queries append to it, and Delta lets concurrent blind appends commit but not concurrent
    creations."""
    path = table_location(settings, LATE_EVENTS)
    if is_delta_table(spark, path):
        return
    kafka = "key binary, value binary, topic string, partition int, offset long"
    empty = X.parse_kafka_records(spark.createDataFrame([], kafka), "kda_trade_orders", True)
    late = X.select_late_events(empty, "", X.window_late_time(X.MINUTE_WINDOW_SEC), 0, 0)
    conform(late, SCHEMAS[LATE_EVENTS]).write.format("delta").mode("append").save(path)


#: a started stateful query whose last batch's late pass is owed when it stops:
#: (query, params, checkpoint, state of :func:`write_batch`)
OwedLatePass = tuple[StreamQuery, StreamParams, str, dict]


def _dropped(report: dict) -> int:
    """Rows dropped by the watermark in one progress report (``StreamingQueryProgress`` as a
    dict): ``numRowsDroppedByWatermark`` summed over its stateful operators; 0 without any."""
    operators = report.get("stateOperators") or []
    return sum(int(o.get("numRowsDroppedByWatermark", 0)) for o in operators)


def _last_report(streaming_query) -> dict | None:
    """The query's last progress report as a dict; None without a query or a reported batch."""
    progress = getattr(streaming_query, "lastProgress", None) if streaming_query else None
    return None if progress is None else json.loads(progress.json)


def dropped_rows(streaming_query, batch_id: int) -> int | None:
    """Rows the query's stateful operators dropped by the watermark in batch ``batch_id``, from
    Spark's progress of that batch (``numRowsDroppedByWatermark`` summed over the operators);
    None when this process has no progress of that batch (a restart, or not reported yet)."""
    report = _last_report(streaming_query)
    if report is None or int(report.get("batchId", -1)) != batch_id:
        return None
    return _dropped(report)


def finish_late_events(spark: SparkSession, settings: Settings, owed: list[OwedLatePass]) -> None:
    """The late pass of each stopped stateful query's last batch (the next batch would have run
    it), when Spark's progress reports rows dropped in it. A query that ran no batch in this
    process leaves its last batch's pass to its next batch (which runs it, the progress being
    unknown there).

    Raises what :func:`write_late_events` raises.
    """
    for query, params, checkpoint, state in owed:
        report = _last_report(state.get("query"))
        if "id" in state and report is not None and _dropped(report) != 0:
            batch_id = int(report["batchId"])
            write_late_events(query, settings, params, checkpoint, state["id"], spark, batch_id)


def write_output(
    settings: Settings, output: Output, rows: DataFrame, writer_id: str, batch_id: int
) -> None:
    """Append ``rows`` to the output's Delta table once per batch id, then publish them to its
    result topic (when it has one), at least once. An empty batch adds no Delta commit once the
    table exists (the first batch creates it, empty or not) and sends nothing."""
    path = table_location(settings, output.table)
    rows = conform(rows, SCHEMAS[output.table]).persist()  # the registry's columns, in order
    try:
        if rows.isEmpty() and is_delta_table(rows.sparkSession, path):
            return
        append_once(rows, path, writer_id, batch_id)
        if output.result_topic:
            records = rows.select(
                output.key().alias("key"),
                F.to_json(F.struct(*[F.col(c) for c in rows.columns])).alias("value"),
            )
            (
                records.write.format("kafka")
                .option("kafka.bootstrap.servers", settings.kafka_bootstrap)
                .option("topic", result_topic(settings, output))
                .save()
            )
    finally:
        rows.unpersist()


def write_outputs(
    settings: Settings, outputs: list[tuple[Output, DataFrame]], writer_id: str, batch_id: int
) -> None:
    """:func:`write_output` for each ``(output, rows)``, several at once (one thread each, Spark
    jobs of the same batch side by side; different tables commit independently), so a batch's
    small commits and result-topic writes overlap instead of queueing.

    Raises the first output's error once every write has ended."""
    if len(outputs) == 1:
        write_output(settings, *outputs[0], writer_id, batch_id)
        return
    from concurrent.futures import ThreadPoolExecutor

    from pyspark import inheritable_thread_target

    with ThreadPoolExecutor(max_workers=len(outputs)) as pool:
        futures = [
            pool.submit(
                inheritable_thread_target(partial(write_output, settings, output, rows)),
                writer_id,
                batch_id,
            )
            for output, rows in outputs
        ]
    for future in futures:
        future.result()


def write_batch(
    query: StreamQuery,
    settings: Settings,
    params: StreamParams,
    checkpoint: str,
    writer_id: dict[str, str],
    batch: DataFrame,
    batch_id: int,
) -> None:
    """foreachBatch body: write the query's outputs of the batch (:func:`write_outputs`: Delta
    once per batch id, result topics at least once), then keep the previous batch's late
    records (stateful queries; see the module docstring).

    ``writer_id`` is the query's state in this process: ``"id"``, its Delta writer id, and
    ``"query"``, the running StreamingQuery (set by :func:`start_query`)."""
    spark = batch.sparkSession
    if "id" not in writer_id:
        writer_id["id"] = f"{query.name}:{_checkpoint_query_id(spark, checkpoint)}"
    batch = batch.persist()
    try:
        batch.count()  # runs the stateful query once; every output reads the cached rows
        if query.derive is None:
            outputs = [(query.outputs[0], batch)]
        else:
            outputs = query.derive(settings, checkpoint, writer_id["id"], batch, batch_id)
        write_outputs(settings, outputs, writer_id["id"], batch_id)
        if query.late_time is not None and batch_id > 0:
            previous = batch_id - 1
            if dropped_rows(writer_id.get("query"), previous) != 0:
                write_late_events(
                    query, settings, params, checkpoint, writer_id["id"], spark, previous
                )
    finally:
        batch.unpersist()


def start_query(
    spark: SparkSession,
    settings: Settings,
    query: StreamQuery,
    params: StreamParams,
    available_now: bool,
    owed: list[OwedLatePass] | None = None,
):
    """Start one streaming query; returns the StreamingQuery, or None when no input topic
    carries its schema. A stateful query is added to ``owed`` (its last batch's late pass is
    run by :func:`finish_late_events` when it stops)."""
    topics = topics_of(settings, query.schema)
    if not topics:
        log.warning(
            "STREAM %s: no topic of schema %s configured; skipped", query.name, query.schema
        )
        return None
    events = X.parse_kafka_records(read_topics(spark, settings, topics), query.schema)
    result = query.build(X.with_watermark(events, params.watermark_sec), params)
    checkpoint = checkpoint_location(settings, query.name)
    state: dict = {}
    writer = (
        result.writeStream.queryName(query.name)
        .outputMode("append")
        .option("checkpointLocation", checkpoint)
        .foreachBatch(partial(write_batch, query, settings, params, checkpoint, state))
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.stream_trigger_sec} seconds")
    started = writer.start()
    state["query"] = started
    if query.late_time is not None and owed is not None:
        owed.append((query, params, checkpoint, state))
    log.info(
        "STREAM %s: started on %s (%s) -> %s", query.name, ",".join(topics), query.schema,
        ", ".join(table_location(settings, t) for t in query.tables),
    )  # fmt: skip
    return started


#: gzip level of the archive objects: zlib's default, as Kafka Connect's ``GZIPOutputStream``
#: (level 9, Python's default, made the lab's objects about 9 % smaller for more CPU per batch)
ARCHIVE_GZIP_LEVEL = 6


def _write_archive_objects(uri: str, batches):
    """``mapInArrow`` body: one Kafka source partition's records, in offset order (Arrow batches
    of ``topic``, ``partition``, ``hour``, ``offset``, ``value``) -> one gzip JSON-lines object
    per run of records of one (topic, partition, hour), named by the run's first offset (the
    Kafka Connect S3 sink key). Yields one row: the objects written.

    Memory: one object's records (a batch's slice of one partition and hour); no per-record
    Python objects beyond one Arrow batch's column lists."""
    import datetime as dt
    import gzip

    import pyarrow as pa

    from spark_jobs.landing.layouts import kafka_key
    from spark_jobs.landing.replay import LandingSink

    sink = LandingSink(uri)
    written = 0
    current: tuple | None = None  # (topic, partition, hour) of the open object
    start = 0
    chunks: list[bytes] = []

    def flush() -> None:
        nonlocal written
        if current is None:
            return
        topic, partition, hour = current
        body = gzip.compress(b"".join(chunks), compresslevel=ARCHIVE_GZIP_LEVEL, mtime=0)
        sink.put(kafka_key(topic, partition, start, dt.datetime.strptime(hour, "%Y-%m-%d-%H")),
                 body)  # fmt: skip
        written += 1

    for batch in batches:
        topics, partitions, hours, offsets, values = (c.to_pylist() for c in batch.columns)
        i = 0
        while i < len(offsets):
            key = (topics[i], partitions[i], hours[i])
            j = i + 1
            while j < len(offsets) and (topics[j], partitions[j], hours[j]) == key:
                j += 1
            if key != current:
                flush()
                current, start, chunks = key, offsets[i], []
            chunks.append(b"\n".join(v or b"" for v in values[i:j]) + b"\n")
            i = j
    flush()
    yield pa.RecordBatch.from_pydict({"objects": [written]}, pa.schema([("objects", pa.int64())]))


def archive_batch(uri: str, batch: DataFrame, batch_id: int) -> None:
    """foreachBatch body of the raw archive: the batch's records, by topic, partition and hour of
    their Kafka timestamp (UTC), written as Kafka Connect S3 sink objects, each Kafka partition's
    offset range by the task that read it (Spark's Kafka source reads one topic partition per
    task, in offset order: no shuffle). A replayed batch has the same offset ranges, hence the
    same object names and bytes: it rewrites, never duplicates."""
    rows = batch.select(
        "topic",
        "partition",
        F.date_format("timestamp", "yyyy-MM-dd-HH").alias("hour"),
        "offset",
        "value",
    )
    written = rows.mapInArrow(partial(_write_archive_objects, uri), "objects long")
    written.write.format("noop").mode("overwrite").save()


def start_archive_query(spark: SparkSession, settings: Settings, available_now: bool):
    """The raw archive: every input topic of ``STREAM_TOPICS`` -> ``STREAM_ARCHIVE`` in the Kafka
    Connect S3 sink layout (``topics/<topic>/year=/month=/day=/hour=/<topic>+<partition>+
    <startOffset>.json.gz``, one JSON record per line, as sent), so ``lakehouse run --landing``
    ingests what the stream saw. Hour = the record's Kafka timestamp (UTC), as the sink's
    ``TimeBasedPartitioner`` with ``timestamp.extractor=Record``."""
    topics = sorted(settings.stream_topics)
    uri = settings.stream_archive_uri
    writer = (
        read_topics(spark, settings, topics)
        .writeStream.queryName(ARCHIVE_QUERY)
        .option("checkpointLocation", checkpoint_location(settings, ARCHIVE_QUERY))
        .foreachBatch(partial(archive_batch, uri))
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{settings.stream_trigger_sec} seconds")
    started = writer.start()
    log.info("STREAM %s: started on %s -> %s", ARCHIVE_QUERY, ",".join(topics), uri)
    return started


def describe_progress(progress: dict) -> str:
    """One log line of a query's progress (``StreamingQueryProgress`` as a dict)."""
    operators = progress.get("stateOperators") or []
    state_rows = sum(int(o.get("numRowsTotal", 0)) for o in operators)
    late = _dropped(progress)
    duration = (progress.get("durationMs") or {}).get("triggerExecution", 0)
    watermark = (progress.get("eventTime") or {}).get("watermark", "-")
    return (
        f"STREAM {progress.get('name')} batch {progress.get('batchId')}: "
        f"{progress.get('numInputRows', 0)} input rows "
        f"({float(progress.get('inputRowsPerSecond') or 0):.0f} rows/s in, "
        f"{float(progress.get('processedRowsPerSecond') or 0):.0f} rows/s processed), "
        f"batch {duration} ms, watermark {watermark}, state rows {state_rows}, "
        f"late rows dropped {late}"
    )


def _progress_listener():
    import threading

    from pyspark.sql.streaming import StreamingQueryListener

    class ProgressLogger(StreamingQueryListener):
        """Logs each query's progress through Python logging, each (query run, batch) once:
        :meth:`flush` logs what the listener bus had not delivered when the queries ended."""

        def __init__(self) -> None:
            super().__init__()
            self._logged: set[tuple[str, int]] = set()
            self._lock = threading.Lock()

        def log_once(self, progress: dict) -> None:
            key = (str(progress.get("runId")), int(progress.get("batchId", -1)))
            with self._lock:
                if key in self._logged:
                    return
                self._logged.add(key)
            log.info(describe_progress(progress))

        def flush(self, queries) -> None:
            """Log the queries' recent progress not logged yet (the listener bus is
            asynchronous: the last batch's event may come after the query has ended)."""
            for query in queries:
                for progress in query.recentProgress:
                    self.log_once(json.loads(progress.json))

        def onQueryStarted(self, event) -> None:  # noqa: N802 (Spark's API)
            pass

        def onQueryProgress(self, event) -> None:  # noqa: N802
            self.log_once(json.loads(event.progress.json))

        def onQueryIdle(self, event) -> None:  # noqa: N802
            pass

        def onQueryTerminated(self, event) -> None:  # noqa: N802
            if event.exception:
                log.error("STREAM query %s failed: %s", event.id, event.exception)

    return ProgressLogger()


def ensure_result_topics(settings: Settings, queries: list[StreamQuery]) -> None:
    """Create the Kafka result topics of ``queries`` when missing (3 partitions)."""
    from spark_jobs.streaming.producers import ensure_topic

    for output in (o for q in queries for o in q.outputs):
        if output.result_topic:
            ensure_topic(settings.kafka_bootstrap, result_topic(settings, output), partitions=3)


def run_stream(
    spark: SparkSession,
    settings: Settings,
    params: StreamParams | None = None,
    available_now: bool = False,
    only: list[str] | None = None,
) -> None:
    """Run the streaming queries (all, or the ``only`` ones) until they end or are stopped.

    Args:
        spark: a session with Spark's Kafka connector on its classpath
            (:func:`spark_jobs.common.spark.spark_kafka_jars`).
        settings: topics, bootstrap, root, trigger.
        params: watermark and session gap; default from ``settings``.
        available_now: Trigger.AvailableNow: process what is there, then return.
        only: the queries to run, by their names or their tables' (:func:`query_names`).

    Raises:
        ValueError: an unknown query or table name, or a topic of an unknown schema
            (:func:`check_stream_topics`).
        RuntimeError: a query failed (the others are stopped first).
    """
    params = params or StreamParams.from_settings(settings)
    check_stream_topics(settings.stream_topics)
    only = query_names(only) if only else None
    chosen = [q for q in QUERIES if not only or q.name in only]
    fed = [q for q in chosen if topics_of(settings, q.schema)]  # the others are skipped
    ensure_result_topics(settings, fed)
    if any(q.late_time is not None for q in fed):
        create_late_events_table(spark, settings)
    listener = _progress_listener()
    spark.streams.addListener(listener)
    owed: list[OwedLatePass] = []
    running = [
        s for q in chosen if (s := start_query(spark, settings, q, params, available_now, owed))
    ]
    if settings.stream_archive_uri and (not only or ARCHIVE_QUERY in only):
        running.append(start_archive_query(spark, settings, available_now))
    stop_requested = []

    def request_stop(signum, _frame) -> None:
        log.info("STREAM signal %d: stopping the queries", signum)
        stop_requested.append(signum)

    previous = signal.signal(signal.SIGTERM, request_stop)
    try:
        while any(s.isActive for s in running) and not stop_requested:
            failed = [s for s in running if not s.isActive and s.exception()]
            if failed:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        log.info("STREAM interrupted: stopping the queries")
    finally:
        signal.signal(signal.SIGTERM, previous)
        for s in running:
            if s.isActive:
                s.stop()
        spark.streams.removeListener(listener)
        listener.flush(running)
    errors = [f"{s.name}: {s.exception()}" for s in running if s.exception()]
    if errors:
        # no late pass here: at the next start each query's first batch runs its previous
        # batch's pass (progress unknown), and a failed batch runs again
        raise RuntimeError("streaming queries failed: " + "; ".join(errors))
    finish_late_events(spark, settings, owed)
    log.info("STREAM %d queries ended", len(running))


def stream_session(settings: Settings) -> SparkSession:
    """A SparkSession with Delta's jars and the four Kafka connector jars.

    Raises:
        RuntimeError: the connector jars are not cached (run ``lakehouse setup --with-kafka``).
    """
    from spark_jobs.common.spark import get_spark, spark_kafka_jars

    jars = spark_kafka_jars()
    if not jars:
        raise RuntimeError(
            "Spark's Kafka connector is not cached; run `lakehouse setup --with-kafka` once"
        )
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the host name resolves off loopback
    spark = get_spark("lakehouse:stream", settings, extra_jars=jars)
    # a micro-batch's appends are small: no extra shuffle into optimized-write bins per append
    # (the weekly maintenance compacts the rt tables)
    spark.conf.set("spark.databricks.delta.optimizeWrite.enabled", "false")
    return spark
