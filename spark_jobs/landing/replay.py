"""Replay a real dataset as raw landing objects, as Firehose or the Kafka S3 sink write them.

Each source line becomes one event in the project's canonical event JSON (the schema the
``canonical`` ODS adapter reads):

``{"event_id", "app_id", "event_ts" (ISO-8601 UTC, ms), "event_name", "event_type", "user_id",
"product_id", "category", "brand", "price", "quantity", "device_type", "ip", "user_agent",
"page_url", "error_msg", "attributes": {..}}``

- ``event_id`` is a UUIDv5 of ``dataset/file/line`` (replaying twice gives the same ids; two
  identical source lines stay two events).
- ``app_id`` is the dataset name; event time is preserved; each event's *arrival* time is its event
  time plus a deterministic 5..179 s delivery delay, and objects are split by arrival hour (UTC).
- Firehose: one object per arrival hour and stream (split at 50,000 records).
  Kafka: records go to partition ``crc32(user or event id) % 3``; offsets are consecutive per
  partition; one object per (partition, hour), split at 10,000 records (``flush.size``).
- Records of an object are in arrival order (ties by event id); gzip objects (level
  :data:`GZIP_LEVEL`, mtime 0) have the same bytes on every replay.

Dataset mappings (see data/README.md for the sources):

- ``online_retail``: InvoiceDate is Europe/London local time -> UTC; ``user_id`` = CustomerID as an
  integer string (``17850.0`` -> ``"17850"``, empty -> null); InvoiceNo starting with ``C`` ->
  ``order_cancelled``, with ``A`` (bad-debt adjustments, negative UnitPrice) -> ``other`` named
  ``adjustment``, else Quantity > 0 -> ``purchase``, else ``other``; product = StockCode.
- ``rees46``: event_time is UTC; view/cart/remove_from_cart/purchase -> product_view/add_to_cart/
  remove_from_cart/purchase; category = category_code (empty -> null); quantity 1;
  ``user_session`` kept as an attribute.
- ``otto``: clicks/carts/orders -> product_view/add_to_cart/purchase; user = session.

Memory and speed: a replay streams. Pass 1 reads the source files (one process per file, up to
the machine's cores), encodes each event once and appends the JSON line to a spill file per
arrival hour in a temporary folder (``TMPDIR``), buffering at most :data:`SPILL_BUFFER_BYTES`
per process; pass 2 sorts one arrival hour at a time and writes its objects. Memory is bounded
by one arrival hour of records (the objects of that hour), never by the dataset; the spill
takes about the size of the uncompressed records on disk while the replay runs.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import json
import logging
import math
import multiprocessing
import os
import tempfile
import threading
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from spark_jobs.landing.layouts import FIREHOSE, LAYOUTS, firehose_key, kafka_key

log = logging.getLogger("lakehouse")

EVENT_ID_NAMESPACE = uuid.UUID("6f1c7d0e-3b5a-5e8e-9a59-2a1f0c1d7b10")
LONDON = ZoneInfo("Europe/London")
FIREHOSE_MAX_RECORDS = 50_000
KAFKA_FLUSH_SIZE = 10_000
KAFKA_PARTITIONS = 3
DATASETS = ("online_retail", "rees46", "otto")
#: gzip level of the objects (1: 2x faster to write than 6 for 16 % more bytes; 9 is 5x slower)
GZIP_LEVEL = 1
#: encoded records a replay process holds before appending them to the hour spill files
SPILL_BUFFER_BYTES = 32 * 1024 * 1024
#: compressed source bytes from which a replay uses worker processes (smaller ones run inline)
PARALLEL_MIN_SOURCE_BYTES = 2 * 1024 * 1024

_REES46_TYPES = {
    "view": "product_view",
    "cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "purchase": "purchase",
}
_OTTO_TYPES = {"clicks": "product_view", "carts": "add_to_cart", "orders": "purchase"}
# the encoder json.dumps(e, separators=(",", ":")) builds, built once (same bytes, C encoder)
_JSON = json.JSONEncoder(separators=(",", ":"))
_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes
# RFC 4122 variant: the top two bits of byte 8 are 10 (hex digit 16 becomes 8, 9, a or b)
_VARIANT_DIGIT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_STAMP_LEN = 26  # naive ISO-8601 arrival time with microseconds: YYYY-MM-DDTHH:MM:SS.ffffff


def event_id_for(dataset: str, source_file: str, line_no: int) -> str:
    """Deterministic event id: UUIDv5 of ``"<dataset>/<file>/<line>"`` (the string
    ``uuid.uuid5(EVENT_ID_NAMESPACE, name)`` gives, computed without building a UUID object)."""
    name = f"{dataset}/{source_file}/{line_no}".encode()
    h = hashlib.sha1(_NAMESPACE_BYTES + name).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"


def _iso(ts: dt.datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z`` (an aware ``ts`` is converted to UTC first)."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.UTC).replace(tzinfo=None)
    return ts.isoformat(timespec="milliseconds") + "Z"


def _event(dataset: str, source_file: str, line_no: int, event_ts: str, **fields) -> dict:
    event = {
        "event_id": event_id_for(dataset, source_file, line_no),
        "app_id": dataset,
        "event_ts": event_ts,
        "event_name": None,
        "event_type": "other",
        "user_id": None,
        "product_id": None,
        "category": None,
        "brand": None,
        "price": None,
        "quantity": None,
        "device_type": None,
        "ip": None,
        "user_agent": None,
        "page_url": None,
        "error_msg": None,
        "attributes": {},
    }
    event.update(fields)
    return event


def _retail_user(customer_id: str) -> str | None:
    text = customer_id.strip()
    return str(int(float(text))) if text else None


#: a replayed record: ``(event_id, event_ts, user_id, the event's JSON line without newline)``
Record = tuple[str, str, str | None, str]
_string = json.encoder.encode_basestring_ascii  # what the JSON encoder writes for a str


def _number(value: float) -> str:
    """A float as the JSON encoder writes it (``repr``; NaN and infinities as Python's json)."""
    return repr(value) if math.isfinite(value) else _JSON.encode(value)


def online_retail_records(path: Path) -> Iterator[Record]:
    """Canonical events of one Online Retail day file (gzip CSV with a header line) as
    :data:`Record` s. The JSON is written from a template, byte for byte what the JSON encoder
    writes for the event dict (checked in tests/landing/test_replay.py), without building it."""
    # per file: InvoiceDate text -> ISO UTC (an invoice's lines share it), CustomerID text ->
    # user id and its JSON, UnitPrice text -> JSON number
    utc_of: dict[str, str] = {}
    users: dict[str, str | None] = {}
    user_of: dict[str, str] = {}
    price_of: dict[str, str] = {}
    name = path.name
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        column = {title: index for index, title in enumerate(next(reader))}
        i_invoice, i_stock, i_desc = column["InvoiceNo"], column["StockCode"], column["Description"]
        i_qty, i_date, i_price = column["Quantity"], column["InvoiceDate"], column["UnitPrice"]
        i_customer, i_country = column["CustomerID"], column["Country"]
        for row in reader:
            local = row[i_date]
            event_ts = utc_of.get(local)
            if event_ts is None:
                parsed = dt.datetime.strptime(local, "%Y-%m-%d %H:%M:%S")
                event_ts = utc_of[local] = _iso(parsed.replace(tzinfo=LONDON))
            invoice = row[i_invoice].strip()
            quantity = int(row[i_qty])
            if invoice.startswith("C"):
                event_type, event_name = "order_cancelled", "cancellation"
            elif invoice.startswith("A"):
                event_type, event_name = "other", "adjustment"
            elif quantity > 0:
                event_type, event_name = "purchase", "invoice_line"
            else:
                event_type, event_name = "other", "invoice_line"
            event_id = event_id_for("online_retail", name, reader.line_num)
            customer, price = row[i_customer], row[i_price]
            user_json = user_of.get(customer)
            if user_json is None:
                user = users[customer] = _retail_user(customer)
                user_json = user_of[customer] = "null" if user is None else _string(user)
            price_json = price_of.get(price)
            if price_json is None:
                price_json = price_of[price] = _number(float(price))
            line = (
                f'{{"event_id":"{event_id}","app_id":"online_retail","event_ts":"{event_ts}",'
                f'"event_name":"{event_name}","event_type":"{event_type}",'
                f'"user_id":{user_json},'
                f'"product_id":{_string(row[i_stock])},"category":null,"brand":null,'
                f'"price":{price_json},"quantity":{quantity},'
                '"device_type":null,"ip":null,"user_agent":null,"page_url":null,"error_msg":null,'
                f'"attributes":{{"invoice_no":{_string(invoice)},'
                f'"description":{_string(row[i_desc])},"country":{_string(row[i_country])}}}}}'
            )
            yield event_id, event_ts, users[customer], line


def online_retail_events(path: Path) -> Iterator[dict]:
    """Canonical events of one Online Retail day file (gzip CSV with a header line)."""
    for record in online_retail_records(path):
        yield json.loads(record[3])


def rees46_events(path: Path) -> Iterator[dict]:
    """Canonical events of the REES46 CSV (gzip, header line; event_time in UTC)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            ts = dt.datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC")
            yield _event(
                "rees46",
                path.name,
                reader.line_num,
                _iso(ts),
                event_name=row["event_type"],
                event_type=_REES46_TYPES.get(row["event_type"], "other"),
                user_id=row["user_id"] or None,
                product_id=row["product_id"] or None,
                category=row["category_code"] or None,
                brand=row["brand"] or None,
                price=float(row["price"]) if row["price"] else None,
                quantity=1,
                attributes={"user_session": row["user_session"], "category_id": row["category_id"]},
            )


def otto_events(path: Path) -> Iterator[dict]:
    """Canonical events of the OTTO sessions sample (one JSON session per line)."""
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            session = json.loads(line)
            for index, ev in enumerate(session["events"]):
                ts = dt.datetime.fromtimestamp(ev["ts"] / 1000, tz=dt.UTC)
                yield _event(
                    "otto",
                    path.name,
                    line_no * 100_000 + index,  # one source line holds a whole session
                    _iso(ts),
                    event_name=ev["type"],
                    event_type=_OTTO_TYPES.get(ev["type"], "other"),
                    user_id=str(session["session"]),
                    product_id=str(ev["aid"]),
                )


def _records(events: Iterable[dict]) -> Iterator[Record]:
    """Event dicts as :data:`Record` s (JSON by the encoder ``json.dumps`` with compact
    separators uses)."""
    for event in events:
        yield event["event_id"], event["event_ts"], event["user_id"], _JSON.encode(event)


_RECORDS = {
    "online_retail": online_retail_records,
    "rees46": lambda path: _records(rees46_events(path)),
    "otto": lambda path: _records(otto_events(path)),
}


def source_files(dataset: str, data_dir: Path) -> list[Path]:
    """The dataset's source files, in date order.

    Raises:
        ValueError: unknown dataset.
        FileNotFoundError: the dataset's folder is missing under ``data_dir``.
    """
    patterns = {"online_retail": "*.csv.gz", "rees46": "*.csv.gz", "otto": "*.jsonl"}
    if dataset not in patterns:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    folder = data_dir / dataset
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {folder} (set LAKEHOUSE_DATA_DIR)")
    return sorted(folder.glob(patterns[dataset]))


def _may_hold(dataset: str, path: Path, start: dt.date | None, end: dt.date | None) -> bool:
    """False when the file cannot hold an event of ``[start, end]`` (Online Retail files are
    named by local trading day; a day's events are within +-1 day in UTC)."""
    if dataset != "online_retail" or not (start or end):
        return True
    day = dt.date.fromisoformat(path.name[:10])
    one = dt.timedelta(days=1)
    return not ((start and day < start - one) or (end and day > end + one))


def file_records(
    dataset: str, path: Path, start: dt.date | None = None, end: dt.date | None = None
) -> Iterator[Record]:
    """:data:`Record` s of one source file whose UTC event date is within ``[start, end]``."""
    if not _may_hold(dataset, path, start, end):
        return
    first, last = (start.isoformat() if start else ""), (end.isoformat() if end else "9999")
    for record in _RECORDS[dataset](path):
        if first <= record[1][:10] <= last:
            yield record


def file_events(
    dataset: str, path: Path, start: dt.date | None = None, end: dt.date | None = None
) -> Iterator[dict]:
    """Canonical events of one source file whose UTC event date is within ``[start, end]``."""
    for record in file_records(dataset, path, start, end):
        yield json.loads(record[3])


def dataset_events(
    dataset: str, data_dir: Path, start: dt.date | None = None, end: dt.date | None = None
) -> Iterator[dict]:
    """All canonical events of a dataset whose UTC event date is within ``[start, end]``."""
    for path in source_files(dataset, data_dir):
        yield from file_events(dataset, path, start, end)


def arrival_time(event: dict) -> dt.datetime:
    """Event time + a deterministic 5..179 s delivery delay (naive UTC)."""
    ts = dt.datetime.fromisoformat(event["event_ts"]).replace(tzinfo=None)
    delay = 5 + zlib.crc32(event["event_id"].encode()) % 175
    return ts + dt.timedelta(seconds=delay)


def _gzip(body: bytes) -> bytes:
    """gzip member of ``body`` at :data:`GZIP_LEVEL` with mtime 0 (the same bytes every run)."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


def encode_records(events: Iterable[dict], compress: bool) -> bytes:
    """Newline-delimited JSON, gzip-compressed when ``compress`` (mtime 0: same bytes each run)."""
    body = "".join(_JSON.encode(e) + "\n" for e in events).encode()
    return _gzip(body) if compress else body


@dataclass
class LandingSink:
    """Writes objects under a landing URI: a local folder, or ``s3://bucket/prefix`` via boto3.

    For S3, boto3 reads credentials and ``AWS_ENDPOINT_URL`` (e.g. a moto or MinIO endpoint) from
    the environment as usual.
    """

    uri: str
    written: list[str] = field(default_factory=list)
    _client: object = field(default=None, repr=False)

    def put(self, key: str, body: bytes) -> str:
        """Write ``body`` at ``key`` under the landing URI; returns the object's location."""
        if self.uri.startswith(("s3://", "s3a://")):
            import boto3

            bucket, _, prefix = self.uri.split("://", 1)[1].partition("/")
            full_key = f"{prefix.strip('/')}/{key}" if prefix.strip("/") else key
            if self._client is None:
                self._client = boto3.client("s3")
            self._client.put_object(Bucket=bucket, Key=full_key, Body=body)
            location = f"s3://{bucket}/{full_key}"
        else:
            path = Path(self.uri) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            location = str(path)
        self.written.append(location)
        return location


@dataclass
class _Spill:
    """What pass 1 of a replay wrote: per arrival hour (``YYYY-MM-DDTHH``) the spill files and
    the records per Kafka partition; the record count and the first and last event dates."""

    records: int = 0
    files: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    counts: dict[str, list[int]] = field(default_factory=dict)
    first_day: str | None = None
    last_day: str | None = None

    def add(self, other: _Spill) -> None:
        """Merge another process's spill summary into this one."""
        self.records += other.records
        for hour, paths in other.files.items():
            self.files[hour] |= paths
        for hour, counts in other.counts.items():
            mine = self.counts.setdefault(hour, [0] * KAFKA_PARTITIONS)
            for partition, n in enumerate(counts):
                mine[partition] += n
        days = [d for d in (self.first_day, self.last_day, other.first_day, other.last_day) if d]
        self.first_day, self.last_day = (min(days), max(days)) if days else (None, None)


_DELAYS = [dt.timedelta(seconds=5 + n) for n in range(175)]  # delivery delay by crc32 % 175
_TS_CACHE_MAX = 100_000


def _spill_events(records: Iterable[Record], spill_dir: str, tag: str) -> _Spill:
    """Pass 1: append each record to its arrival hour's spill file.

    A spill line is ``<arrival time, 26 chars>\t<event_id>\t<kafka partition>\t<JSON>\n``, so
    sorting an hour's lines as strings sorts them by ``(arrival time, event_id)`` (the arrival
    time is :func:`arrival_time`).
    """
    spill = _Spill()
    buffers: dict[str, list[str]] = defaultdict(list)
    buffered = 0
    first = last = None
    crc32, delays, parsed = zlib.crc32, _DELAYS, {}
    for event_id, event_ts, user_id, body in records:
        ts = parsed.get(event_ts)
        if ts is None:  # records of one source line group (an invoice) share their time
            if len(parsed) >= _TS_CACHE_MAX:
                parsed.clear()
            ts = parsed[event_ts] = dt.datetime.fromisoformat(event_ts).replace(tzinfo=None)
            day = event_ts[:10]
            if first is None or day < first:
                first = day
            if last is None or day > last:
                last = day
        stamp = (ts + delays[crc32(event_id.encode()) % 175]).isoformat(timespec="microseconds")
        partition = crc32((user_id or event_id).encode()) % KAFKA_PARTITIONS
        line = f"{stamp}\t{event_id}\t{partition}\t{body}\n"
        hour = stamp[:13]
        buffers[hour].append(line)
        buffered += len(line)
        counts = spill.counts.get(hour)
        if counts is None:
            counts = spill.counts[hour] = [0] * KAFKA_PARTITIONS
        counts[partition] += 1
        spill.records += 1
        if buffered >= SPILL_BUFFER_BYTES:
            _flush_spill(buffers, spill, spill_dir, tag)
            buffered = 0
    _flush_spill(buffers, spill, spill_dir, tag)
    spill.first_day, spill.last_day = first, last
    return spill


def _flush_spill(buffers: dict[str, list[str]], spill: _Spill, spill_dir: str, tag: str) -> None:
    for hour, lines in buffers.items():
        path = os.path.join(spill_dir, f"{hour}.{tag}")
        with open(path, "a", encoding="ascii") as handle:  # the JSON encoder escapes non-ASCII
            handle.write("".join(lines))
        spill.files[hour].add(path)
    buffers.clear()


def _spill_file(
    dataset: str, path: str, start: dt.date | None, end: dt.date | None, spill_dir: str, tag: str
) -> _Spill:
    """Pass 1 for one source file (a worker process's task)."""
    return _spill_events(file_records(dataset, Path(path), start, end), spill_dir, tag)


@dataclass(frozen=True)
class _HourTask:
    hour: str
    files: tuple[str, ...]
    offsets: tuple[int, ...]  # Kafka: the first offset of each partition in this hour


def _write_hour(
    task: _HourTask, stream: str, layout: str, compress: bool, to: str
) -> list[tuple[str, dt.date]]:
    """Pass 2 for one arrival hour: sort its records, cut them into objects and write those.

    Returns:
        ``[(object location, arrival date of its first record)]`` in write order.
    """
    lines: list[str] = []
    for path in sorted(task.files):
        with open(path, encoding="ascii") as handle:
            lines.extend(handle)
    lines.sort()
    sink = LandingSink(to)
    written = []
    hour = dt.datetime.fromisoformat(task.hour + ":00")

    def put(key: str, chunk: list[str]) -> None:
        body = "".join(line.split("\t", 3)[3] for line in chunk).encode("ascii")
        first = dt.datetime.fromisoformat(chunk[0][:_STAMP_LEN])
        written.append((sink.put(key, _gzip(body) if compress else body), first.date()))

    if layout == FIREHOSE:
        for index in range(0, len(lines), FIREHOSE_MAX_RECORDS):
            chunk = lines[index : index + FIREHOSE_MAX_RECORDS]
            object_uuid = uuid.uuid5(EVENT_ID_NAMESPACE, f"{stream}/{hour:%Y%m%d%H}/{index}")
            first = dt.datetime.fromisoformat(chunk[0][:_STAMP_LEN])
            put(firehose_key(stream, first, str(object_uuid), compress), chunk)
        return written
    by_partition: dict[int, list[str]] = {}
    for line in lines:
        by_partition.setdefault(int(line.split("\t", 3)[2]), []).append(line)
    for partition, batch in by_partition.items():
        offset = task.offsets[partition]
        for index in range(0, len(batch), KAFKA_FLUSH_SIZE):
            chunk = batch[index : index + KAFKA_FLUSH_SIZE]
            put(kafka_key(stream, partition, offset, hour, compress), chunk)
            offset += len(chunk)
    return written


def _hour_tasks(spill: _Spill) -> list[_HourTask]:
    """One task per arrival hour, in hour order, with each Kafka partition's first offset."""
    offsets = [0] * KAFKA_PARTITIONS
    tasks = []
    for hour in sorted(spill.counts):
        tasks.append(_HourTask(hour, tuple(sorted(spill.files[hour])), tuple(offsets)))
        offsets = [o + n for o, n in zip(offsets, spill.counts[hour], strict=True)]
    return tasks


def default_replay_workers() -> int:
    """Processes a replay uses: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay wrote."""

    dataset: str
    layout: str
    objects: int
    records: int
    first_arrival_date: dt.date | None
    last_arrival_date: dt.date | None
    first_event_date: dt.date | None
    last_event_date: dt.date | None


def replay(
    dataset: str,
    to: str,
    layout: str = FIREHOSE,
    start: dt.date | None = None,
    end: dt.date | None = None,
    data_dir: Path | str | None = None,
    compress: bool = True,
    workers: int | None = None,
) -> ReplaySummary:
    """Write a dataset (optionally only event dates ``[start, end]``) as raw landing objects.

    Replaying the same arguments twice writes the same keys with the same bytes (whatever
    ``workers`` is). Streams: memory is bounded by one arrival hour of records (see the module
    docstring), not by the dataset.

    Args:
        workers: processes (default :func:`default_replay_workers`); replays of less than
            :data:`PARALLEL_MIN_SOURCE_BYTES` of source files run in this process.

    Raises:
        ValueError: unknown dataset or layout.
        FileNotFoundError: dataset folder missing.
    """
    from spark_jobs.settings import load_settings

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    folder = Path(data_dir) if data_dir else Path(load_settings().data_dir)
    files = [p for p in source_files(dataset, folder) if _may_hold(dataset, p, start, end)]
    workers = workers or default_replay_workers()
    if sum(p.stat().st_size for p in files) < PARALLEL_MIN_SOURCE_BYTES:
        workers = 1
    spill = _Spill()
    written: list[tuple[str, dt.date]] = []
    with tempfile.TemporaryDirectory(prefix="lakehouse-replay-") as spill_dir:
        pool: Executor | None = None
        if workers > 1 and len(files) > 1:
            # fork is cheap, but forking a process with threads (a py4j client, a monitor) can
            # deadlock the child: then spawn (the caller's main module must be import-safe)
            method = "fork" if threading.active_count() == 1 else "spawn"
            context = multiprocessing.get_context(method)
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        try:
            args = [(dataset, str(p), start, end, spill_dir, str(i)) for i, p in enumerate(files)]
            parts = pool.map(_spill_file, *zip(*args, strict=True)) if pool and args else None
            for part in parts if parts is not None else (_spill_file(*a) for a in args):
                spill.add(part)
            tasks = _hour_tasks(spill)
            n = len(tasks)
            if pool and tasks:
                hours = pool.map(
                    _write_hour, tasks, [dataset] * n, [layout] * n, [compress] * n, [to] * n
                )
            else:
                hours = (_write_hour(t, dataset, layout, compress, to) for t in tasks)
            for objects in hours:
                written.extend(objects)
        finally:
            if pool:
                pool.shutdown()
    arrivals = [day for _, day in written]
    summary = ReplaySummary(
        dataset,
        layout,
        len(written),
        spill.records,
        min(arrivals, default=None),
        max(arrivals, default=None),
        dt.date.fromisoformat(spill.first_day) if spill.first_day else None,
        dt.date.fromisoformat(spill.last_day) if spill.last_day else None,
    )
    log.info(
        "REPLAY %s -> %s (%s): %d records in %d objects, event dates %s..%s",
        dataset,
        to,
        layout,
        summary.records,
        summary.objects,
        summary.first_event_date,
        summary.last_event_date,
    )
    return summary
