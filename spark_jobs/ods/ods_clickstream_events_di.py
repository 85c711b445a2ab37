"""ODS ingest: raw landing objects -> ODS events + rejected records + ingest manifest.

Grain: one row per readable raw record (ODS) / per unreadable record or object (rejected).

For the arrival dates ``[start, end]`` this job lists the landing objects (Firehose and Kafka
Connect S3 sink layouts, local paths or ``s3a://``) of those days' folders and of the
``ARRIVAL_LOOKBACK_DAYS`` before them (delivery services write objects into a folder after its
hour has passed), skips the ones already in the ingest manifest (``etl_ingest_manifest``),
reads the rest as whole objects (gzip or plain), parses each line with the adapter configured
for the object's stream, and writes:

- good records to ODS, typed, partitioned by event date ``dt`` (UTC), with the raw line, source
  object, line number and ingest time;
- bad records to the rejected table with the raw line, source object, line and reason; an object
  that cannot be read at all (e.g. truncated gzip) is one rejected row with a null line;
- one manifest row per object with its counts, event dates and app ids (an empty object too,
  with 0 records);
- records whose event time cannot be right (after the arrival hour + ``MAX_CLOCK_SKEW``, before
  ``MIN_EVENT_DATE``) to the rejected table with that reason.

Write-audit-publish (``--stage``, what the DAG runs): the batch is written to the three tables'
staging twins (``<root>/staging/ods|etl/...``, replaced whole by every run) and reconciled there,
per object, raw records = ODS rows + rejected rows (read back); the ODS checks then validate it
and the manifest's check publishes it (``validate --table etl_ingest_manifest --staged
--publish``). Without ``--stage`` (``lakehouse run``) the batch goes straight to the published
tables. Either way the writes are MERGEs keyed on ``(etl_source_object, etl_source_line)`` (the
manifest on ``etl_source_object``), ODS and rejected first, then reconciled in the tables
written, the manifest last: a run or publish that dies half-way leaves the objects unknown to
the manifest, the next run reads them again and the MERGEs insert only what is missing. Ingest
runs of one lakehouse root are serialised (the DAG has ``max_active_runs=1``): the staging twins
hold one batch.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import logging
import sys
import zlib
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.common.jobframe import (
    add_date_arguments,
    configure_logging,
    days,
    resolve_dates,
)
from spark_jobs.landing.layouts import LAYOUTS, date_prefixes, parse_object_key
from spark_jobs.ods.adapters import ADAPTERS
from spark_jobs.settings import Settings, load_settings, normalise_uri

log = logging.getLogger("lakehouse")

RAW_LINES = StructType(
    [
        StructField("etl_source_object", StringType(), False),
        StructField("stream", StringType(), False),
        StructField("etl_source_schema", StringType(), True),
        StructField("etl_source_line", IntegerType(), True),
        StructField("raw_line", StringType(), True),
        StructField("read_error", StringType(), True),
    ]
)


@dataclass
class IngestResult:
    """What one ingest run did. ``event_dates`` are the ODS ``dt`` values it added rows to."""

    objects: int = 0
    skipped_objects: int = 0
    older_folder_objects: int = 0  # new objects found in the lookback folders (written late)
    raw_records: int = 0
    ods_rows: int = 0
    rejected_rows: int = 0
    event_dates: list[dt.date] = field(default_factory=list)


def list_landing_objects(
    spark: SparkSession, landing_uri: str, start: dt.date, end: dt.date
) -> list[tuple[str, int]]:
    """Objects of both layouts that arrived on ``[start, end]`` (UTC), as ``(uri, size)``.

    Uses the Hadoop FileSystem API, so ``file:``, ``s3a://`` and ``hdfs://`` all work. Files whose
    key is neither layout (e.g. ``_SUCCESS``) are ignored.
    """
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    root = normalise_uri(landing_uri)
    root_path = jvm.org.apache.hadoop.fs.Path(root)
    fs = root_path.getFileSystem(conf)
    found: dict[str, int] = {}
    for day in days(start, end):
        for layout in LAYOUTS:
            for pattern in date_prefixes(layout, day):
                statuses = fs.globStatus(jvm.org.apache.hadoop.fs.Path(f"{root}/{pattern}"))
                for status in statuses or []:
                    if status.isFile():
                        uri = status.getPath().toString()
                        try:
                            parse_object_key(uri)
                        except ValueError:
                            continue
                        found[uri] = status.getLen()
    return sorted(found.items())


def _split_object(row, adapter_by_stream: dict[str, str | None]):
    """One binaryFile row -> raw line rows (or one read-error row for the whole object).

    The line-by-line reference of :func:`_split_content`, which uses it for objects that are
    not valid UTF-8 as a whole.
    """
    path, content = row["path"], bytes(row["content"])
    info = parse_object_key(path)
    adapter = adapter_by_stream.get(info.stream)
    try:
        text_bytes = gzip.decompress(content) if info.gzip else content
    except (EOFError, OSError, zlib.error) as exc:
        yield (path, info.stream, adapter, None, None, f"unreadable object: {exc}")
        return
    lines = text_bytes.split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield (path, info.stream, adapter, number, raw.decode("utf-8"), None)
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            yield (path, info.stream, adapter, number, text, "invalid UTF-8")


#: lines per Arrow batch handed back to Spark (an object's lines are cut into such batches)
SPLIT_BATCH_ROWS = 65_536


def _arrow_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("etl_source_object", pa.string()),
            ("stream", pa.string()),
            ("etl_source_schema", pa.string()),
            ("etl_source_line", pa.int32()),
            ("raw_line", pa.string()),
            ("read_error", pa.string()),
        ]
    )


def _split_content(path: str, content: bytes, adapter_by_stream: dict[str, str | None]):
    """One object's bytes -> Arrow batches of :data:`RAW_LINES` (same rows as
    :func:`_split_object`), without a line of Python per record.

    The object is decompressed and decoded as a whole (C), split on ``\n`` and stripped of
    blank lines (ASCII whitespace only, as ``bytes.strip``) by Arrow compute kernels; line
    numbers count every line, blank ones included. An object that is not valid UTF-8 as a whole
    takes the line-by-line path (its bad lines get ``invalid UTF-8``); one that cannot be
    decompressed is one row with ``read_error``. Memory: one object (decompressed) and its
    lines.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = _arrow_schema()
    info = parse_object_key(path)
    adapter = adapter_by_stream.get(info.stream)
    try:
        data = gzip.decompress(content) if info.gzip else content
        text = data.decode("utf-8")
    except (EOFError, OSError, zlib.error, UnicodeDecodeError):
        rows = list(_split_object({"path": path, "content": content}, adapter_by_stream))
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
        yield pa.RecordBatch.from_arrays(
            [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
            schema=schema,
        )
        return
    del data
    lines = pc.split_pattern(pa.array([text], pa.large_string()), "\n").flatten()
    del text
    numbers = pa.array(np.arange(1, len(lines) + 1, dtype=np.int32))
    keep = pc.not_equal(pc.ascii_trim_whitespace(lines), "")
    lines = pc.filter(lines, keep).cast(pa.string())
    numbers = pc.filter(numbers, keep)
    for offset in range(0, len(lines), SPLIT_BATCH_ROWS):
        chunk = lines.slice(offset, SPLIT_BATCH_ROWS)
        n = len(chunk)
        same = pa.array(np.zeros(n, dtype=np.int32))
        yield pa.RecordBatch.from_arrays(
            [
                pa.DictionaryArray.from_arrays(same, pa.array([path])).cast(pa.string()),
                pa.DictionaryArray.from_arrays(same, pa.array([info.stream])).cast(pa.string()),
                pa.DictionaryArray.from_arrays(same, pa.array([adapter], pa.string())).cast(
                    pa.string()
                ),
                numbers.slice(offset, SPLIT_BATCH_ROWS),
                chunk,
                pa.nulls(n, pa.string()),
            ],
            schema=schema,
        )


def _split_batches(batches, adapter_by_stream: dict[str, str | None]):
    """``mapInArrow`` body: batches of (path, content) -> Arrow batches of :data:`RAW_LINES`,
    one object at a time (:func:`_split_content`)."""
    for batch in batches:
        paths = batch.column("path")
        contents = batch.column("content")
        for index in range(batch.num_rows):
            yield from _split_content(
                paths[index].as_py(), contents[index].as_py(), adapter_by_stream
            )


def read_raw_lines(
    spark: SparkSession, objects: list[str], adapter_by_stream: dict[str, str | None]
) -> DataFrame:
    """Read whole objects (``binaryFile``) and split them into lines (Arrow-vectorised, one
    object at a time in a Python worker: see :func:`_split_content`).

    Returns:
        :data:`RAW_LINES` columns: one row per non-blank line (1-based ``etl_source_line``), or
        one row with ``read_error`` set and null line for an object that cannot be decompressed.
    """
    if not objects:
        return spark.createDataFrame([], RAW_LINES)
    binary = spark.read.format("binaryFile").load(objects).select("path", "content")
    return binary.mapInArrow(lambda it: _split_batches(it, adapter_by_stream), RAW_LINES)


def object_arrivals(spark: SparkSession, objects: list[str]) -> DataFrame:
    """One row per object: ``etl_source_object``, ``etl_arrival_hour`` (TIMESTAMP, UTC: the
    hour folder it was delivered to) and ``etl_arrival_date`` (DATE), from its key.

    A small table, joined by broadcast (no per-object literals in the plan).
    """
    frame = _objects_frame(spark, [(uri, 0) for uri in objects], {})
    return frame.select("etl_source_object", "etl_arrival_hour", "etl_arrival_date")


def parse_lines(lines: DataFrame, adapter: str | None, ingest_ts: dt.datetime) -> DataFrame:
    """Apply one adapter to ``lines`` (:data:`RAW_LINES` of objects configured for it).

    Returns the adapter output columns (see :mod:`spark_jobs.ods.adapters`) plus
    ``etl_ingest_ts`` (``ingest_ts``, UTC), without ``read_error``. A row gets a ``reason`` from
    outside the adapter, and null adapter fields, when its object could not be read
    (``read_error``), when ``adapter`` is None (``no adapter configured for stream <stream>``)
    or when no adapter of that name exists (``unknown adapter <name>``); the rows of the last
    two are still kept, for the rejected table.
    """
    if adapter is None:
        outside = F.concat(F.lit("no adapter configured for stream "), F.col("stream"))
    elif adapter not in ADAPTERS:
        outside = F.lit(f"unknown adapter {adapter}")
    else:
        outside = None
    # the canonical adapter gives the output columns their names and types when none applies
    parsed = ADAPTERS.get(adapter or "", ADAPTERS["canonical"])(lines)
    from_outside = F.col("read_error")
    if outside is not None:
        from_outside = F.coalesce(from_outside, outside)
    parsed = parsed.withColumn("_outside", from_outside)
    passed = [c for c in lines.columns if c != "read_error"]
    own = set(lines.columns) | {"reason", "_outside"}
    fields = [c for c in parsed.columns if c not in own]
    return parsed.select(
        *passed,
        *[F.when(F.col("_outside").isNull(), F.col(c)).alias(c) for c in fields],
        F.coalesce("_outside", "reason").alias("reason"),
        F.lit(ingest_ts).cast("timestamp").alias("etl_ingest_ts"),
    )


def parse_records(lines: DataFrame, ingest_ts: dt.datetime) -> DataFrame:
    """:func:`parse_lines` for lines of any mix of adapters (``etl_source_schema`` per row).

    Each adapter reads its rows through a filter of ``lines``, so ``lines`` is computed once per
    adapter: for small frames (tests, checks). The ingest parses by object group instead
    (:func:`parse_objects`), reading every object once.
    """
    names = [r[0] for r in lines.select("etl_source_schema").distinct().collect()]
    schema = F.col("etl_source_schema")
    parts = [
        parse_lines(lines.where(schema.isNull() if n is None else schema == n), n, ingest_ts)
        for n in names
    ] or [parse_lines(lines, "canonical", ingest_ts)]
    return reduce(DataFrame.unionByName, parts)


def parse_objects(
    spark: SparkSession,
    uris: list[str],
    adapter_by_stream: dict[str, str | None],
    ingest_ts: dt.datetime,
) -> DataFrame:
    """Read and parse the objects ``uris``: one :func:`read_raw_lines` and :func:`parse_lines`
    per configured adapter, over that adapter's objects only, so every object is read, split
    and parsed exactly once (a filter over one read of all objects would read them once per
    adapter).

    Returns:
        The :func:`parse_lines` columns, one row per raw record or unreadable object.
    """
    groups: dict[str | None, list[str]] = {}
    for uri in uris:
        groups.setdefault(adapter_by_stream.get(parse_object_key(uri).stream), []).append(uri)
    parts = [
        parse_lines(read_raw_lines(spark, groups[name], adapter_by_stream), name, ingest_ts)
        for name in sorted(groups, key=lambda n: (n is None, n or ""))
    ] or [parse_lines(read_raw_lines(spark, [], adapter_by_stream), "canonical", ingest_ts)]
    return reduce(DataFrame.unionByName, parts)


def reject_implausible_times(
    parsed: DataFrame, arrivals: DataFrame, settings: Settings
) -> DataFrame:
    """Give readable records whose event time cannot be right a ``reason``.

    A record is rejected when its ``event_ts`` is later than the end of its object's arrival hour
    (UTC, from the object key: the hour folder it was delivered to) plus
    ``settings.max_clock_skew_sec``, or earlier than ``settings.min_event_date`` (00:00 UTC).
    The bound comes from the key, not from the object's modification time, so a rerun (or a
    copy of the landing) gives the same answer.

    Args:
        parsed: the :func:`parse_records` columns (``etl_source_object``, ``event_ts``,
            ``reason`` used); rows that already have a reason are left as they are.
        arrivals: ``etl_source_object, etl_arrival_hour`` (:func:`object_arrivals`), joined by
            broadcast; a record of an object missing there keeps its reason.

    Returns:
        ``parsed``'s columns, ``reason`` updated.
    """
    skew_sec = 3600 + settings.max_clock_skew_sec
    hours = arrivals.select("etl_source_object", F.col("etl_arrival_hour").alias("_ah"))
    hours = F.broadcast(hours)
    latest = F.col("_ah") + F.make_dt_interval(secs=F.lit(skew_sec))
    earliest = dt.datetime.combine(settings.min_event_date, dt.time())
    readable = F.col("reason").isNull() & F.col("event_ts").isNotNull()
    return (
        parsed.join(hours, "etl_source_object", "left")
        .withColumn(
            "reason",
            F.when(
                readable & (F.col("event_ts") > latest),
                F.format_string(
                    "event time later than its object's arrival hour + %d s clock skew",
                    F.lit(settings.max_clock_skew_sec),
                ),
            )
            .when(
                readable & (F.col("event_ts") < F.lit(earliest)),
                F.lit(f"event time before {settings.min_event_date.isoformat()}"),
            )
            .otherwise(F.col("reason")),
        )
        .drop("_ah")
    )


def split_good_and_rejected(parsed: DataFrame, arrivals: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(ods_rows, rejected_rows)``: good rows get ``dt`` = event date (UTC); rejected rows get
    ``dt`` = the object's arrival date (``arrivals``: ``etl_source_object, etl_arrival_date``,
    from its key; joined by broadcast)."""
    good = parsed.where(F.col("reason").isNull()).withColumn("dt", F.to_date("event_ts"))
    dates = F.broadcast(arrivals.select("etl_source_object", F.col("etl_arrival_date").alias("dt")))
    rejected = parsed.where(F.col("reason").isNotNull()).join(dates, "etl_source_object", "left")
    return good, rejected


def list_new_objects(
    spark: SparkSession, settings: Settings, landing_uri: str, start: dt.date, end: dt.date
) -> tuple[list[tuple[str, int]], int, int]:
    """The objects a run over ``[start, end]`` ingests: those in the folders of
    ``[start - ARRIVAL_LOOKBACK_DAYS, end]`` that the manifest does not know yet.

    Returns:
        ``(new objects as (uri, size), objects listed, new objects found in older folders)``.
    """
    first = settings.first_listed_date(start)
    listed = list_landing_objects(spark, landing_uri, first, end)
    manifest = delta_io.read_table(spark, settings, T.INGEST_MANIFEST)
    seen = {
        r[0]
        for r in manifest.where(F.col("dt").between(first, end))
        .select("etl_source_object")
        .collect()
    }
    new = [(uri, size) for uri, size in listed if uri not in seen]
    older = sum(1 for uri, _ in new if parse_object_key(uri).arrival_date < start)
    return new, len(listed), older


def ingest(
    spark: SparkSession,
    settings: Settings,
    landing_uri: str,
    start: dt.date,
    end: dt.date,
    stage: bool = False,
) -> IngestResult:
    """Ingest the not-yet-ingested objects of the folders of ``[start - lookback, end]``.

    Every listed object ends in the manifest, also an empty one (0 bytes, an empty gzip member,
    only blank lines: 0 raw records); every raw record ends in exactly one of ODS and the
    rejected table.

    Write-audit-publish: the batch (the new objects' ODS rows, rejected rows and manifest rows)
    is first written to the staging twins of the three tables, each replaced whole, so the
    staging twins hold exactly this run's batch (an empty one when nothing is new). With
    ``stage=True`` the run stops there: the ODS suites validate the staged batch
    (``lakehouse validate --table <ods table> --staged``) and the manifest's check publishes it
    (``--table etl_ingest_manifest --staged --publish``, :func:`publish_ingest`). Without it
    (``lakehouse run``, which has no checks in between) the batch is written straight into the
    published tables by the same MERGEs, in the same order (ODS, rejected, reconcile, manifest).

    Raises:
        RuntimeError: the reconciliation raw = ODS + rejected fails for some object (in the
            staged batch, or in the published tables after the publish).
    """
    result = IngestResult()
    new, listed, older = list_new_objects(spark, settings, landing_uri, start, end)
    result.skipped_objects = listed - len(new)
    result.older_folder_objects = older
    log.info(
        "ODS  ingest %s arrival dates %s..%s (+%d days lookback): %d objects listed, %d new "
        "(%d of them written late into older folders), %d already ingested",
        landing_uri,
        start,
        end,
        settings.arrival_lookback_days,
        listed,
        len(new),
        older,
        result.skipped_objects,
    )
    batch = write_batch(spark, settings, new, stage)
    result.objects = len(new)
    result.raw_records = batch.raw_records
    result.ods_rows = batch.ods_rows
    result.rejected_rows = batch.rejected_rows
    result.event_dates = batch.event_dates
    if new:
        log.info(
            "ODS  %s %d objects: raw records %d = ODS %d + rejected %d (checked); "
            "event dates %s..%s",
            "staged" if stage else "ingested",
            result.objects,
            result.raw_records,
            result.ods_rows,
            result.rejected_rows,
            result.event_dates[0] if result.event_dates else "-",
            result.event_dates[-1] if result.event_dates else "-",
        )
    return result


@dataclass(frozen=True)
class BatchTotals:
    """Totals of one written ingest batch (the per-object counts stay in the manifest table)."""

    raw_records: int = 0
    ods_rows: int = 0
    rejected_rows: int = 0
    event_dates: list[dt.date] = field(default_factory=list)


def _objects_frame(
    spark: SparkSession, new: list[tuple[str, int]], adapter_by_stream: dict[str, str | None]
) -> DataFrame:
    """The batch's objects as a small table: ``etl_source_object, stream, layout,
    configured_schema, object_size_bytes, etl_arrival_hour, etl_arrival_date`` (from the keys)."""
    rows = []
    for uri, size in new:
        info = parse_object_key(uri)
        hour = f"{info.arrival_hour:%Y-%m-%d %H}:00:00"
        rows.append((uri, info.stream, info.layout, adapter_by_stream.get(info.stream), size, hour))
    schema = (
        "etl_source_object string, stream string, layout string, configured_schema string, "
        "object_size_bytes long, _hour string"
    )
    return spark.createDataFrame(rows, schema).select(
        "etl_source_object",
        "stream",
        "layout",
        "configured_schema",
        "object_size_bytes",
        F.to_timestamp("_hour").alias("etl_arrival_hour"),
        F.to_date("_hour").alias("etl_arrival_date"),
    )


def write_batch(
    spark: SparkSession, settings: Settings, new: list[tuple[str, int]], stage: bool
) -> BatchTotals:
    """Read and parse the ``new`` objects (``(uri, size)``) and write their batch: ODS rows,
    rejected rows, then (after reconciling them per object) one manifest row per object.

    With ``stage`` the three staging twins are replaced by the batch (an empty batch when
    nothing is new); otherwise the rows go straight into the published tables with the MERGEs
    :func:`publish_ingest` uses (the batch is written once, not staged and copied).

    The objects are read and parsed once: the parsed rows are cached (``MEMORY_AND_DISK``:
    Spark's memory manager keeps what fits its storage memory and spills the rest to local
    disk, so memory is bounded by configuration, not by the batch) for the per-object counts
    and the two writes. Per-object results (counts, dates, apps) stay in Spark tables;
    the driver receives only totals, the batch's event dates and at most 20 failing objects.

    Returns:
        The batch's totals and event dates (the ODS ``dt`` values it added rows to).

    Raises:
        RuntimeError: an object's raw records != its ODS + rejected rows (read back); the
            manifest is then not written, so the next run ingests the object again.
    """
    from pyspark import StorageLevel

    from spark_jobs.common.schemas import SCHEMAS

    if not new:
        if stage:  # empty staging twins, so no older batch is validated or published
            for table in T.INGEST_BATCH:
                empty = spark.createDataFrame([], SCHEMAS[table])
                delta_io.overwrite_table(empty, settings, table, stage=True)
        return BatchTotals()
    uris = [uri for uri, _ in new]
    streams = {parse_object_key(uri).stream for uri in uris}
    adapter_by_stream = {stream: settings.adapter_for(stream) for stream in streams}
    ingest_ts = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    objects = _objects_frame(spark, new, adapter_by_stream)

    parsed = parse_objects(spark, uris, adapter_by_stream, ingest_ts)
    parsed = reject_implausible_times(parsed, objects, settings).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    good, rejected = split_good_and_rejected(parsed, objects)
    per_object = (
        parsed.groupBy("etl_source_object")
        .agg(
            F.count("*").cast("long").alias("raw_records"),
            F.first("etl_source_schema", ignorenulls=True).alias("schema"),
            F.array_sort(
                F.collect_set(F.when(F.col("reason").isNull(), F.to_date("event_ts")))
            ).alias("event_dates"),
            F.array_sort(F.collect_set(F.when(F.col("reason").isNull(), F.col("app_id")))).alias(
                "app_ids"
            ),
        )
        .persist()
    )
    event_dates = sorted(
        r[0] for r in per_object.select(F.explode("event_dates")).distinct().collect()
    )
    arrival_dates = sorted({parse_object_key(uri).arrival_date for uri in uris})
    if stage:
        delta_io.overwrite_table(good, settings, T.ODS_EVENTS, stage=True)
        delta_io.overwrite_table(rejected, settings, T.ODS_REJECTED, stage=True)
    else:
        keys = T.get_table(T.ODS_EVENTS).keys
        delta_io.insert_new_rows(good, settings, T.ODS_EVENTS, keys, event_dates)
        delta_io.insert_new_rows(rejected, settings, T.ODS_REJECTED, keys, arrival_dates)
    parsed.unpersist()
    counts = reconcile_counts(spark, settings, objects, event_dates, staged=stage)
    empty_dates = F.array().cast("array<date>")
    manifest = (
        objects.join(per_object, "etl_source_object", "left")
        .join(counts, "etl_source_object", "left")
        .select(
            "etl_source_object",
            "stream",
            "layout",
            # an object without a single line (0 bytes, empty gzip member, blank lines) has no
            # per-object row: it is recorded with 0 raw records and its configured schema
            F.coalesce("schema", "configured_schema").alias("etl_source_schema"),
            "object_size_bytes",
            F.coalesce("raw_records", F.lit(0)).cast("long").alias("raw_records"),
            F.coalesce("ods_rows", F.lit(0)).cast("long").alias("ods_rows"),
            F.coalesce("rejected_rows", F.lit(0)).cast("long").alias("rejected_rows"),
            F.coalesce("event_dates", empty_dates).alias("event_dates"),
            F.coalesce("app_ids", F.array().cast("array<string>")).alias("app_ids"),
            F.lit(ingest_ts).cast("timestamp").alias("etl_ingest_ts"),
            F.col("etl_arrival_date").alias("dt"),
        )
        .persist()
    )
    try:
        mismatch = F.col("raw_records") != F.col("ods_rows") + F.col("rejected_rows")
        bad = manifest.where(mismatch).limit(20).collect()
        if bad:
            raise RuntimeError(
                "raw records != ODS + rejected for:\n"
                + "\n".join(
                    f"{r.etl_source_object}: raw {r.raw_records} != ods {r.ods_rows} + "
                    f"rejected {r.rejected_rows}"
                    for r in bad
                )
            )
        totals = manifest.agg(
            F.sum("raw_records"), F.sum("ods_rows"), F.sum("rejected_rows")
        ).first()
        if stage:
            delta_io.overwrite_table(manifest, settings, T.INGEST_MANIFEST, stage=True)
        else:
            keys = T.get_table(T.INGEST_MANIFEST).keys
            delta_io.insert_new_rows(manifest, settings, T.INGEST_MANIFEST, keys, arrival_dates)
    finally:
        manifest.unpersist()
        per_object.unpersist()
    return BatchTotals(int(totals[0]), int(totals[1]), int(totals[2]), event_dates)


def publish_batch_table(
    spark: SparkSession, settings: Settings, table: str, version: int | None = None
) -> int:
    """Insert the staged batch rows of one of :data:`spark_jobs.tables.INGEST_BATCH` into the
    published table (MERGE on the table's registry keys: rows already published are left as they
    are, so publishing a batch twice, or again after an interrupted publish, changes nothing).

    ``version`` pins the staging twin's Delta version (the one that was validated).

    Returns:
        Rows inserted.

    Raises:
        FileNotFoundError: nothing was staged for the table.
    """
    if not delta_io.table_exists(spark, settings, table, staged=True):
        raise FileNotFoundError(f"no staged batch for {table}: run the ingest first")
    staged = delta_io.read_table(spark, settings, table, staged=True, version=version)
    partitions = sorted(r[0] for r in staged.select("dt").distinct().collect())
    return delta_io.insert_new_rows(staged, settings, table, T.get_table(table).keys, partitions)


def publish_ingest(
    spark: SparkSession, settings: Settings, versions: dict[str, int] | None = None
) -> int:
    """Publish the staged ingest batch: ODS rows, rejected rows, then (after reconciling the
    published tables) the manifest rows.

    ``versions`` pins the staging twins' Delta versions that were validated
    (``{table: version}``); missing tables are read at their current version.

    Returns:
        Objects published (the staged manifest's rows).

    Raises:
        FileNotFoundError: nothing was staged.
        RuntimeError: for some staged object, the published ODS + rejected rows differ from its
            raw records (the manifest is then not published: the next run ingests it again).
    """
    versions = versions or {}
    published = {
        table: publish_batch_table(spark, settings, table, versions.get(table))
        for table in T.INGEST_BATCH[:-1]
    }
    staged = delta_io.read_table(
        spark, settings, T.INGEST_MANIFEST, staged=True, version=versions.get(T.INGEST_MANIFEST)
    )
    event_dates = sorted(r[0] for r in staged.select(F.explode("event_dates")).distinct().collect())
    objects = staged.select("etl_source_object", F.col("dt").alias("etl_arrival_date"))
    counts = reconcile_counts(spark, settings, objects, event_dates)
    # the staged manifest has its own ods_rows / rejected_rows (what ingest counted)
    recounted = counts.select(
        "etl_source_object",
        F.col("ods_rows").alias("ods"),
        F.col("rejected_rows").alias("rejected"),
    )
    checked = staged.select("etl_source_object", "raw_records").join(
        recounted, "etl_source_object", "left"
    )
    checked = checked.fillna(0, subset=["ods", "rejected"])
    bad = checked.where(F.col("raw_records") != F.col("ods") + F.col("rejected")).limit(20)
    bad_rows = bad.collect()
    if bad_rows:
        raise RuntimeError(
            "published raw records != ODS + rejected for:\n"
            + "\n".join(f"{r[0]}: raw {r[1]} != ods {r[2]} + rejected {r[3]}" for r in bad_rows)
        )
    objects_published = staged.count()
    publish_batch_table(spark, settings, T.INGEST_MANIFEST, versions.get(T.INGEST_MANIFEST))
    log.info(
        "ODS  published %d objects: %d ODS rows, %d rejected rows inserted",
        objects_published,
        published[T.ODS_EVENTS],
        published[T.ODS_REJECTED],
    )
    return objects_published


def reconcile_counts(
    spark: SparkSession,
    settings: Settings,
    objects: DataFrame,
    event_dates: list[dt.date],
    staged: bool = False,
) -> DataFrame:
    """Count, per object, the rows in ODS and in the rejected table (read back from Delta: the
    published tables, or with ``staged`` their staging twins).

    Only the partitions the objects can be in are read: ODS ``dt`` in ``event_dates`` (the
    objects' event dates), rejected ``dt`` = the objects' arrival dates (from their keys).

    Args:
        objects: ``etl_source_object, etl_arrival_date`` (one row per object; joined by
            broadcast).

    Returns:
        ``etl_source_object, ods_rows, rejected_rows`` (LONG) for every object of ``objects``,
        zeros included. A DataFrame: nothing per object is collected to the driver.
    """
    objs = F.broadcast(objects.select("etl_source_object").distinct())
    arrival_dates = sorted(
        r[0] for r in objects.select("etl_arrival_date").distinct().collect() if r[0] is not None
    )
    ods = delta_io.read_table(spark, settings, T.ODS_EVENTS, staged)
    ods = ods.where(F.col("dt").isin(sorted(set(event_dates)))) if event_dates else ods.limit(0)
    rejected = delta_io.read_table(spark, settings, T.ODS_REJECTED, staged)
    rejected = rejected.where(F.col("dt").isin(arrival_dates))

    def per_object(table: DataFrame, name: str) -> DataFrame:
        return (
            table.select("etl_source_object")
            .join(objs, "etl_source_object", "left_semi")
            .groupBy("etl_source_object")
            .agg(F.count("*").cast("long").alias(name))
        )

    return (
        objs.join(per_object(ods, "ods_rows"), "etl_source_object", "left")
        .join(per_object(rejected, "rejected_rows"), "etl_source_object", "left")
        .select(
            "etl_source_object",
            F.coalesce("ods_rows", F.lit(0)).cast("long").alias("ods_rows"),
            F.coalesce("rejected_rows", F.lit(0)).cast("long").alias("rejected_rows"),
        )
    )


def reconcile(
    spark: SparkSession,
    settings: Settings,
    objects: list[str],
    event_dates: list[dt.date],
    staged: bool = False,
) -> dict[str, tuple[int, int]]:
    """:func:`reconcile_counts` for a list of objects, collected: ``{object: (ods_rows,
    rejected_rows)}`` (every object, zeros included). For small checks and tests; the ingest
    itself never collects per-object counts."""
    if not objects:
        return {}
    rows = [(o, f"{parse_object_key(o).arrival_date}") for o in objects]
    frame = spark.createDataFrame(rows, "etl_source_object string, d string").select(
        "etl_source_object", F.to_date("d").alias("etl_arrival_date")
    )
    counts = reconcile_counts(spark, settings, frame, event_dates, staged)
    return {r[0]: (r[1], r[2]) for r in counts.collect()}


def main(argv: list[str] | None = None) -> int:
    """``spark-submit spark_jobs/ods/ods_clickstream_events_di.py --landing URI --ds D``."""
    from spark_jobs.common.spark import get_spark

    parser = argparse.ArgumentParser(prog=T.ODS_EVENTS, description=__doc__.splitlines()[0])
    parser.add_argument("--landing", required=True, help="landing URI (local path or s3://)")
    parser.add_argument(
        "--stage",
        action="store_true",
        help="only stage the batch (its checks publish it: validate --table "
        f"{T.INGEST_MANIFEST} --staged --publish)",
    )
    add_date_arguments(parser)
    args = parser.parse_args(argv)
    start, end = resolve_dates(args)
    configure_logging()
    settings = load_settings()
    try:
        spark = get_spark(f"lakehouse:{T.ODS_EVENTS}", settings)
        ingest(spark, settings, args.landing, start, end, stage=args.stage)
    except Exception:
        log.exception("ingest failed for %s..%s", start, end)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
