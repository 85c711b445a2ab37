"""Replay a real dataset through Kafka: ``lakehouse replay DATASET --to kafka://HOST:PORT/TOPIC``.

One Kafka record per canonical event: the value is the project's canonical event JSON, exactly
the record :mod:`spark_jobs.landing.replay` writes into landing objects (same ``event_id`` and
fields, UTF-8, no schema registry), so the ``canonical`` ODS adapter reads it in the streaming
job (``LAKEHOUSE_STREAM_TOPICS=<topic>=canonical``) and, from the job's raw archive, in the batch
layers.

- **Key**: the event's ``user_id`` (UTF-8). An event without a user (Online Retail lines without
  a CustomerID) is sent without a key: Kafka's partitioner puts it on a random partition, there
  is no user order to keep.
- **Partition**: Kafka's Java partitioner on the key (murmur2,
  :func:`spark_jobs.streaming.producers.keyed_producer`), so all of a user's events are on one
  partition, in the order they were sent; the producer is idempotent (no reordering on retries).
- **Order**: ascending event time (``event_ts``), ties in source order, so a user's events sit
  on their partition in event-time order. The sources are not all in time order (an OTTO line is
  a whole session of up to four weeks), so the events go through an external merge sort
  (:func:`time_ordered`): runs of ``run_size`` (100,000) events are sorted in memory and, when
  the dataset has more than one run, written to temporary gzip files and merged while sending.
  Memory: one run of encoded events, then one line per run plus the producer's queue, never the
  whole dataset. Temporary files: about the dataset's size gzip-compressed, removed at the end.
- **Event time**: preserved, in the value's ``event_ts`` (ISO-8601 UTC, milliseconds), as the
  landing replay maps it (Online Retail: London local time to UTC). The Kafka record timestamp is
  the send time (producer CreateTime), not the event time: the broker's time-based retention
  (7 days by default) would delete records stamped 2011 at once, and the streaming job files its
  raw archive by Kafka time, i.e. by arrival.
- **Pacing**: with ``speedup`` X (event-time seconds per wall-clock second; 3600 = an hour of the
  dataset per second) the event at event time t is sent at ``w0 + (t - t0) / X``, t0 being the
  first event's time and w0 the moment it was handed to the producer (which stamps it then). A
  producer that cannot keep up sends late, never early (the largest lag is reported). Without
  ``speedup``: as fast as the broker takes them. Gaps are replayed too (an Online Retail night
  lasts 12 h / X).

Errors: a bad URI, dataset, date range or speedup raises ValueError before anything is sent; no
broker raises RuntimeError; a record the broker did not acknowledge fails the replay with
RuntimeError (after the queue is flushed; the first error is given).
"""

from __future__ import annotations

import datetime as dt
import gzip
import heapq
import json
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("lakehouse")

KAFKA_SCHEME = "kafka://"
#: events sorted in memory at a time (one run of the external sort)
SORT_RUN = 100_000
PROGRESS_EVERY_SEC = 5.0
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


def is_kafka_uri(uri: str) -> bool:
    """``kafka://...`` (a Kafka topic) rather than a landing folder or ``s3://`` prefix."""
    return uri.startswith(KAFKA_SCHEME)


def parse_kafka_uri(uri: str) -> tuple[str, str]:
    """``kafka://HOST:PORT[,HOST:PORT...]/TOPIC`` -> ``(bootstrap, topic)``.

    Raises:
        ValueError: not that shape, or a topic name Kafka does not accept
            (``[A-Za-z0-9._-]``, at most 249 characters).
    """
    rest = uri[len(KAFKA_SCHEME) :] if is_kafka_uri(uri) else ""
    bootstrap, _, topic = rest.partition("/")
    hosts = bootstrap.split(",")
    if not all(re.fullmatch(r"[^:/\s]+:\d+", h) for h in hosts) or not _TOPIC.fullmatch(topic):
        raise ValueError(f"expected kafka://HOST:PORT[,HOST:PORT...]/TOPIC, got {uri!r}")
    return bootstrap, topic


def _encode(seq: int, event: dict) -> str:
    """One sortable line: ``event_ts`` (fixed width), the source position (12 digits), the key
    and the value as JSON, tab-separated (JSON escapes tabs); lines sort as (time, position)."""
    value = json.dumps(event, separators=(",", ":"))
    return f"{event['event_ts']}\t{seq:012d}\t{json.dumps(event['user_id'])}\t{value}\n"


def time_ordered(events: Iterable[dict], run_size: int = SORT_RUN) -> Iterator[str]:
    """The events in ascending ``event_ts`` (ties: input order), as :func:`_encode` lines.

    An external merge sort: ``run_size`` events at a time are sorted in memory; a dataset of one
    run is yielded from memory, a larger one is spilled run by run to temporary gzip files and
    merged (:func:`heapq.merge`), so memory holds one run, never the dataset.

    Args:
        events: canonical events (``event_ts`` ISO-8601 UTC with milliseconds, as
            :func:`spark_jobs.landing.replay.dataset_events` gives them).
        run_size: events per in-memory run (>= 1).
    """
    if run_size < 1:
        raise ValueError(f"run_size must be >= 1, got {run_size}")
    with tempfile.TemporaryDirectory(prefix="lakehouse-replay-") as tmp:
        runs: list[Path] = []
        buffer: list[str] = []
        for seq, event in enumerate(events):
            buffer.append(_encode(seq, event))
            if len(buffer) == run_size:
                runs.append(_spill(sorted(buffer), Path(tmp) / f"run-{len(runs):05d}.gz"))
                buffer = []
        buffer.sort()
        if not runs:
            yield from buffer
            return
        if buffer:
            runs.append(_spill(buffer, Path(tmp) / f"run-{len(runs):05d}.gz"))
        del buffer
        log.info("REPLAY sorted %d runs of up to %d events; merging", len(runs), run_size)
        handles = [gzip.open(path, "rt", encoding="utf-8") for path in runs]
        try:
            yield from heapq.merge(*handles)
        finally:
            for handle in handles:
                handle.close()


def _spill(lines: list[str], path: Path) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as handle:
        handle.writelines(lines)
    return path


def _epoch_seconds(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass
class KafkaReplaySummary:
    """What one replay into Kafka delivered.

    Attributes:
        dataset, topic, bootstrap: what went where.
        records: records delivered (acknowledged by the broker).
        per_partition: delivered records per partition.
        without_key: records sent without a key (events without a user).
        seconds: wall time of the whole replay (reading, sorting, sending, flushing).
        first_event_ts, last_event_ts: event-time span sent (ISO-8601 UTC).
        speedup: the pacing (None: as fast as possible).
        max_lag_sec: with ``speedup``, how far behind its due time the latest record was sent.
    """

    dataset: str
    topic: str
    bootstrap: str
    records: int = 0
    per_partition: Counter = field(default_factory=Counter)
    without_key: int = 0
    seconds: float = 0.0
    first_event_ts: str | None = None
    last_event_ts: str | None = None
    speedup: float | None = None
    max_lag_sec: float = 0.0

    def describe(self) -> str:
        parts = " ".join(f"{p}:{n}" for p, n in sorted(self.per_partition.items())) or "-"
        rate = self.records / self.seconds if self.seconds else 0.0
        pace = (
            f"speedup {self.speedup:g}, max lag {self.max_lag_sec:.2f} s"
            if self.speedup
            else ("as fast as possible")
        )
        return (
            f"{self.dataset}: {self.records} records to kafka://{self.bootstrap}/{self.topic} "
            f"(partition:count {parts}; {self.without_key} without a user key) in "
            f"{self.seconds:.1f} s ({rate:.0f} ev/s, {pace}); event times "
            f"{self.first_event_ts}..{self.last_event_ts}"
        )


def replay_to_kafka(
    dataset: str,
    to: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    data_dir: Path | str | None = None,
    speedup: float | None = None,
    partitions: int = 3,
    run_size: int = SORT_RUN,
    progress_every: float = PROGRESS_EVERY_SEC,
) -> KafkaReplaySummary:
    """Send a dataset's canonical events (event dates ``[start, end]``) to a Kafka topic, keyed
    by user, in event-time order, paced by ``speedup`` (see the module docstring).

    Args:
        dataset: ``online_retail``, ``rees46`` or ``otto``.
        to: ``kafka://HOST:PORT[,...]/TOPIC``; the topic is created with ``partitions``
            partitions when missing (an existing topic keeps its own).
        start, end: first and last UTC event date (inclusive); None = unbounded.
        data_dir: the datasets' folder (default ``LAKEHOUSE_DATA_DIR`` / ``./data``).
        speedup: event-time seconds per wall second (> 0); None = as fast as possible.
        run_size: events per in-memory sort run (memory bound).

    Returns:
        The :class:`KafkaReplaySummary` (also logged).

    Raises:
        ValueError: bad URI, unknown dataset, ``speedup <= 0``, ``end < start``.
        FileNotFoundError: the dataset's folder is missing.
        RuntimeError: no broker answers, or records were not delivered.
    """
    from spark_jobs.landing.replay import dataset_events, source_files
    from spark_jobs.settings import load_settings
    from spark_jobs.streaming.producers import (
        ensure_topic,
        flush_delivered,
        keyed_producer,
        send_keyed,
        wait_serving,
    )

    bootstrap, topic = parse_kafka_uri(to)
    if speedup is not None and speedup <= 0:
        raise ValueError(f"speedup must be > 0 (event-time seconds per second), got {speedup}")
    if start and end and end < start:
        raise ValueError(f"end {end} is before start {start}")
    folder = Path(data_dir) if data_dir else Path(load_settings().data_dir)
    source_files(dataset, folder)  # unknown dataset / missing folder: fail before connecting
    ensure_topic(bootstrap, topic, partitions)
    producer = keyed_producer(bootstrap, f"lakehouse-replay-{dataset}")
    summary = KafkaReplaySummary(dataset, topic, bootstrap, speedup=speedup)
    errors: list[str] = []

    def delivered(err, msg) -> None:
        if err is not None:
            errors.append(str(err))
            return
        summary.records += 1
        summary.per_partition[msg.partition()] += 1

    began = time.monotonic()
    last_report = began
    first_event = first_wall = None
    sent = 0
    for line in time_ordered(dataset_events(dataset, folder, start, end), run_size):
        event_ts, _, key_json, value = line.rstrip("\n").split("\t", 3)
        if speedup is not None:
            event_s = _epoch_seconds(event_ts)
            if first_event is None:
                first_event = event_s
            else:  # due (t - t0) / X after the first record was handed to the producer
                due = first_wall + (event_s - first_event) / speedup
                now = time.monotonic()
                while now < due:
                    wait_serving(producer, due - now)  # deliveries keep flowing while waiting
                    now = time.monotonic()
                summary.max_lag_sec = max(summary.max_lag_sec, now - due)
        user = json.loads(key_json)
        key = None if user is None else str(user).encode()
        send_keyed(producer, topic, value.encode(), key, delivered)
        if first_wall is None:
            first_wall = time.monotonic()  # the pacing's origin: the first record's send
        sent += 1
        summary.without_key += key is None
        summary.first_event_ts = summary.first_event_ts or event_ts
        summary.last_event_ts = event_ts
        if errors:
            break
        if time.monotonic() - last_report >= progress_every:
            last_report = time.monotonic()
            log.info(
                "REPLAY %s -> %s: sent %d, delivered %d, %.0f ev/s, event time %s",
                dataset, topic, sent, summary.records, sent / (last_report - began), event_ts,
            )  # fmt: skip
    flush_delivered(producer, "REPLAY", topic, sent, lambda: summary.records, errors)
    summary.seconds = time.monotonic() - began
    log.info("REPLAY %s", summary.describe())
    return summary
