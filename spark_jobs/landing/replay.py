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

Dataset mappings (see data/README.md for the sources):

- ``online_retail``: InvoiceDate is Europe/London local time -> UTC; ``user_id`` = CustomerID as an
  integer string (``17850.0`` -> ``"17850"``, empty -> null); InvoiceNo starting with ``C`` ->
  ``order_cancelled``, with ``A`` (bad-debt adjustments, negative UnitPrice) -> ``other`` named
  ``adjustment``, else Quantity > 0 -> ``purchase``, else ``other``; product = StockCode.
- ``rees46``: event_time is UTC; view/cart/remove_from_cart/purchase -> product_view/add_to_cart/
  remove_from_cart/purchase; category = category_code (empty -> null); quantity 1;
  ``user_session`` kept as an attribute.
- ``otto``: clicks/carts/orders -> product_view/add_to_cart/purchase; user = session.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import logging
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from spark_jobs.landing.layouts import FIREHOSE, KAFKA, LAYOUTS, firehose_key, kafka_key

log = logging.getLogger("lakehouse")

EVENT_ID_NAMESPACE = uuid.UUID("6f1c7d0e-3b5a-5e8e-9a59-2a1f0c1d7b10")
LONDON = ZoneInfo("Europe/London")
FIREHOSE_MAX_RECORDS = 50_000
KAFKA_FLUSH_SIZE = 10_000
KAFKA_PARTITIONS = 3
DATASETS = ("online_retail", "rees46", "otto")

_REES46_TYPES = {
    "view": "product_view",
    "cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "purchase": "purchase",
}
_OTTO_TYPES = {"clicks": "product_view", "carts": "add_to_cart", "orders": "purchase"}


def event_id_for(dataset: str, source_file: str, line_no: int) -> str:
    """Deterministic event id: UUIDv5 of ``"<dataset>/<file>/<line>"``."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{dataset}/{source_file}/{line_no}"))


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _event(dataset: str, source_file: str, line_no: int, ts: dt.datetime, **fields) -> dict:
    event = {
        "event_id": event_id_for(dataset, source_file, line_no),
        "app_id": dataset,
        "event_ts": _iso(ts),
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


def online_retail_events(path: Path) -> Iterator[dict]:
    """Canonical events of one Online Retail day file (gzip CSV with a header line)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            local = dt.datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S")
            ts = local.replace(tzinfo=LONDON)
            invoice = row["InvoiceNo"].strip()
            quantity = int(row["Quantity"])
            if invoice.startswith("C"):
                event_type, event_name = "order_cancelled", "cancellation"
            elif invoice.startswith("A"):
                event_type, event_name = "other", "adjustment"
            elif quantity > 0:
                event_type, event_name = "purchase", "invoice_line"
            else:
                event_type, event_name = "other", "invoice_line"
            yield _event(
                "online_retail",
                path.name,
                reader.line_num,
                ts,
                event_name=event_name,
                event_type=event_type,
                user_id=_retail_user(row["CustomerID"]),
                product_id=row["StockCode"],
                price=float(row["UnitPrice"]),
                quantity=quantity,
                attributes={
                    "invoice_no": invoice,
                    "description": row["Description"],
                    "country": row["Country"],
                },
            )


def rees46_events(path: Path) -> Iterator[dict]:
    """Canonical events of the REES46 CSV (gzip, header line; event_time in UTC)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            ts = dt.datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S UTC").replace(
                tzinfo=dt.UTC
            )
            yield _event(
                "rees46",
                path.name,
                reader.line_num,
                ts,
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
                event = _event(
                    "otto",
                    path.name,
                    line_no * 100_000 + index,  # one source line holds a whole session
                    ts,
                    event_name=ev["type"],
                    event_type=_OTTO_TYPES.get(ev["type"], "other"),
                    user_id=str(session["session"]),
                    product_id=str(ev["aid"]),
                )
                yield event


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


def dataset_events(
    dataset: str, data_dir: Path, start: dt.date | None = None, end: dt.date | None = None
) -> Iterator[dict]:
    """All canonical events of a dataset whose UTC event date is within ``[start, end]``."""
    readers = {"online_retail": online_retail_events, "rees46": rees46_events, "otto": otto_events}
    for path in source_files(dataset, data_dir):
        if dataset == "online_retail" and (start or end):
            # files are named by local trading day; a day's events are within +-1 day in UTC
            day = dt.date.fromisoformat(path.name[:10])
            if (start and day < start - dt.timedelta(days=1)) or (
                end and day > end + dt.timedelta(days=1)
            ):
                continue
        for event in readers[dataset](path):
            day = dt.date.fromisoformat(event["event_ts"][:10])
            if (start is None or day >= start) and (end is None or day <= end):
                yield event


def arrival_time(event: dict) -> dt.datetime:
    """Event time + a deterministic 5..179 s delivery delay (naive UTC)."""
    ts = dt.datetime.fromisoformat(event["event_ts"].replace("Z", "+00:00"))
    delay = 5 + zlib.crc32(event["event_id"].encode()) % 175
    return (ts + dt.timedelta(seconds=delay)).replace(tzinfo=None)


def encode_records(events: Iterable[dict], compress: bool) -> bytes:
    """Newline-delimited JSON, gzip-compressed when ``compress`` (mtime 0: same bytes each run)."""
    body = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode()
    if not compress:
        return body
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(body)
    return buffer.getvalue()


@dataclass
class LandingSink:
    """Writes objects under a landing URI: a local folder, or ``s3://bucket/prefix`` via boto3.

    For S3, boto3 reads credentials and ``AWS_ENDPOINT_URL`` (e.g. a moto or MinIO endpoint) from
    the environment as usual.
    """

    uri: str
    written: list[str] = field(default_factory=list)

    def put(self, key: str, body: bytes) -> str:
        """Write ``body`` at ``key`` under the landing URI; returns the object's location."""
        if self.uri.startswith(("s3://", "s3a://")):
            import boto3

            bucket, _, prefix = self.uri.split("://", 1)[1].partition("/")
            full_key = f"{prefix.strip('/')}/{key}" if prefix.strip("/") else key
            boto3.client("s3").put_object(Bucket=bucket, Key=full_key, Body=body)
            location = f"s3://{bucket}/{full_key}"
        else:
            path = Path(self.uri) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            location = str(path)
        self.written.append(location)
        return location


def plan_objects(
    events: Iterable[dict], stream: str, layout: str, compress: bool = True
) -> Iterator[tuple[str, list[dict]]]:
    """Group events into landing objects: yields ``(key, events in arrival order)``.

    Raises:
        ValueError: unknown layout.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    ordered = sorted(events, key=lambda e: (arrival_time(e), e["event_id"]))
    if layout == FIREHOSE:
        by_hour: dict[dt.datetime, list[dict]] = defaultdict(list)
        for event in ordered:
            by_hour[arrival_time(event).replace(minute=0, second=0, microsecond=0)].append(event)
        for hour, batch in sorted(by_hour.items()):
            for index in range(0, len(batch), FIREHOSE_MAX_RECORDS):
                chunk = batch[index : index + FIREHOSE_MAX_RECORDS]
                object_uuid = uuid.uuid5(EVENT_ID_NAMESPACE, f"{stream}/{hour:%Y%m%d%H}/{index}")
                key = firehose_key(stream, arrival_time(chunk[0]), str(object_uuid), compress)
                yield key, chunk
        return
    assert layout == KAFKA
    offsets = [0] * KAFKA_PARTITIONS
    by_partition_hour: dict[tuple[int, dt.datetime], list[dict]] = defaultdict(list)
    for event in ordered:
        partition = zlib.crc32((event["user_id"] or event["event_id"]).encode()) % KAFKA_PARTITIONS
        hour = arrival_time(event).replace(minute=0, second=0, microsecond=0)
        by_partition_hour[(partition, hour)].append(event)
    for (partition, hour), batch in sorted(by_partition_hour.items(), key=lambda kv: kv[0][1]):
        for index in range(0, len(batch), KAFKA_FLUSH_SIZE):
            chunk = batch[index : index + KAFKA_FLUSH_SIZE]
            yield kafka_key(stream, partition, offsets[partition], hour, compress), chunk
            offsets[partition] += len(chunk)


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
) -> ReplaySummary:
    """Write a dataset (optionally only event dates ``[start, end]``) as raw landing objects.

    Replaying the same arguments twice writes the same keys with the same bytes.

    Raises:
        ValueError: unknown dataset or layout.
        FileNotFoundError: dataset folder missing.
    """
    from spark_jobs.settings import load_settings

    folder = Path(data_dir) if data_dir else Path(load_settings().data_dir)
    events = list(dataset_events(dataset, folder, start, end))
    sink = LandingSink(to)
    arrivals: list[dt.date] = []
    for key, batch in plan_objects(events, dataset, layout, compress):
        sink.put(key, encode_records(batch, compress))
        arrivals.append(arrival_time(batch[0]).date())
    event_days = sorted({e["event_ts"][:10] for e in events})
    summary = ReplaySummary(
        dataset,
        layout,
        len(sink.written),
        len(events),
        min(arrivals, default=None),
        max(arrivals, default=None),
        dt.date.fromisoformat(event_days[0]) if event_days else None,
        dt.date.fromisoformat(event_days[-1]) if event_days else None,
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
