"""Generated event streams for Kafka: ``lakehouse produce --topic T --schema S --events N``.

Three record schemas, each one JSON object per Kafka record (UTF-8, no schema registry), keyed by
the user so that one user's events stay in order on one partition (partitioner ``murmur2_random``:
the same partition the Java client picks for a key, as in the labs' Java producers). Every event
time is **epoch milliseconds, UTC** (a JSON integer).

``msk_clickstream_lab`` - the Amazon MSK Clickstream Lab producer (aws-samples
"clickstream-producer-for-apache-kafka", ``Events.java`` and ``avro/ClickEvent.avsc``), fields in
the lab's order::

    ip             string  "66.249.1.<0..254>", fixed for a session
    eventtimestamp long    event time, epoch ms UTC
    devicetype     string  mobile | computer | tablet, fixed for a session
    event_type     string  home_page, product_catalog, product_detail, add_to_cart,
                           remove_from_cart, order, order_checkout, or "" (the session's end)
    product_type   string  "N/A" on home_page/product_catalog; on product_detail one of the lab's
                           8 product types; carried along by add_to_cart/remove_from_cart/order/
                           order_checkout; "" on the end record
    userid         int     1..users; the record key is str(userid)
    globalseq      long    1, 2, 3, ... over the whole run (every record)
    prevglobalseq  long    globalseq of this user's previous record, 0 for the user's first

  A session starts at home_page and follows the lab's transitions (:data:`LAB_TRANSITIONS`,
  uniform choice): home_page -> product_catalog -> {home_page, product_detail};
  product_detail -> {product_catalog, add_to_cart}; add_to_cart -> {product_catalog,
  remove_from_cart, order}; order -> {order_checkout, remove_from_cart, product_catalog};
  remove_from_cart -> {"", product_detail, product_catalog}; order_checkout -> "". As in the lab
  the end record (``event_type`` "") is sent, and the user's next record starts a new session
  with a new device type and IP. The lab runs one session at a time per thread with user ids
  from growing blocks; here every one of ``users`` users has an open session and each record
  picks a user at random (concurrent, interleaved sessions), and ``prevglobalseq`` links a
  user's records (the lab links a thread's records).

``backend_behaviour`` - backend behaviour events, the fields the ODS ``backend_behaviour`` adapter
reads::

    eventId   string  UUID (random from the seed)
    action    string  login, search, view_product, add_cart, remove_cart, begin_checkout, pay,
                      cancel_order, logout
    userId    string  "1".."users"; the record key
    objectId  string  "sku-<n>" for product actions, else ""
    bizId     string  "order-<n>" for checkout/pay/cancel_order, else ""
    errorMsg  string  "" for most events; otherwise a message carrying an ``[ERROR]``,
                      ``[PANIC]`` or ``WARNING`` marker in mixed letter case (``[error]``,
                      ``[Panic]``, ``WaRnInG``...), at the start or after a ``svc=<name>`` prefix
    createdAt long    event time, epoch ms UTC

``kda_trade_orders`` - the Kinesis Data Analytics (Flink) lab's trade orders. The lab's field
names ``{tid, tno, tdate, uno, pno, tnum, tuptime}`` are kept; their meanings were not confirmed
against the lab's source and are chosen as::

    tid      long    trade id: 1, 2, 3, ... over the run
    tno      string  trade order number "T<tid, 10 digits>"
    tdate    string  trade time "YYYY-MM-DD HH:MM:SS" (UTC), the same instant as tuptime
    uno      int     user number 1..users; the record key is str(uno)
    pno      int     product number 1..100
    tnum     int     quantity 1..10
    tuptime  long    event (update) time, epoch ms UTC

Timing: without ``--start-time`` every event time is the wall clock when the record is made and
sent, and records are paced in real time at ``--rate`` events/s. With ``--start-time T`` record i
(0-based) has event time ``T + round(i * 1000 / rate)`` ms and records are sent as fast as the
broker takes them. The same ``--seed`` (and ``--start-time``) gives the same records in the same
order, hence the same partitions and, into a fresh topic, the same offsets.

Streaming: records are generated one at a time (memory: one open session per user and the
producer's in-flight queue, never the whole run); progress (records sent and delivered, rate) is
logged every few seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from pathlib import Path

log = logging.getLogger("lakehouse")

Record = dict[str, object]
Generator = Callable[[random.Random, int, "EventClock"], Iterator[tuple[str, Record]]]

PROGRESS_EVERY_SEC = 5.0

# --- msk_clickstream_lab --------------------------------------------------------------------
DEVICE_TYPES = ("mobile", "computer", "tablet")
PRODUCT_TYPES = (
    "cell phones",
    "laptops",
    "ear phones",
    "soundbars",
    "cd players",
    "AirPods",
    "video games",
    "cameras",
)
SESSION_END = ""
#: the lab's next-event choices (each uniform); "" ends the session
LAB_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "home_page": ("product_catalog",),
    "product_catalog": ("home_page", "product_detail"),
    "product_detail": ("product_catalog", "add_to_cart"),
    "add_to_cart": ("product_catalog", "remove_from_cart", "order"),
    "order": ("order_checkout", "remove_from_cart", "product_catalog"),
    "remove_from_cart": (SESSION_END, "product_detail", "product_catalog"),
    "order_checkout": (SESSION_END,),
}
_CARRIES_PRODUCT = {"add_to_cart", "remove_from_cart", "order", "order_checkout"}

# --- backend_behaviour ----------------------------------------------------------------------
ACTIONS = (
    ("login", 1),
    ("search", 2),
    ("view_product", 6),
    ("add_cart", 3),
    ("remove_cart", 1),
    ("begin_checkout", 1),
    ("pay", 1),
    ("cancel_order", 1),
    ("logout", 1),
)
_PRODUCT_ACTIONS = {"view_product", "add_cart", "remove_cart"}
_ORDER_ACTIONS = {"begin_checkout", "pay", "cancel_order"}
ERROR_MARKERS = ("[ERROR]", "[PANIC]", "WARNING")
#: share of backend events with an empty errorMsg; the rest split over the markers
EMPTY_ERROR_SHARE = 0.6
_MESSAGES = {
    "[ERROR]": (
        "payment gateway timeout after 3000 ms",
        "order service returned HTTP 503",
        "stock reservation failed for {obj}",
    ),
    "[PANIC]": (
        "nil pointer dereference in cart handler",
        "runtime error: index out of range [3] with length 3",
    ),
    "WARNING": (
        "slow response from inventory (2400 ms)",
        "retrying stock reservation (attempt 2)",
        "deprecated client version 1.2",
    ),
}
_SERVICES = ("cart", "order", "payment", "search", "user")

# --- kda_trade_orders -----------------------------------------------------------------------
TRADE_PRODUCTS = 100
TRADE_MAX_QUANTITY = 10


class EventClock:
    """Event time (epoch ms UTC) of each next record, and the real-time pacing.

    ``start_ms`` given: record i gets ``start_ms + round(i * 1000 / rate)`` and :meth:`tick`
    never waits. Otherwise :meth:`tick` waits until record i's slot ``t0 + i / rate`` (through
    ``wait``, e.g. the producer's poll, so delivery reports keep flowing) and returns the wall
    clock.
    """

    def __init__(
        self,
        rate: float,
        start_ms: int | None = None,
        wait: Callable[[float], object] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 events/s, got {rate}")
        self.rate, self.start_ms, self.wait = rate, start_ms, wait
        self.index = 0
        self._t0: float | None = None

    def tick(self) -> int:
        """Event time of the next record, in epoch ms UTC."""
        i = self.index
        self.index += 1
        if self.start_ms is not None:
            return self.start_ms + round(i * 1000 / self.rate)
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        slot = self._t0 + i / self.rate
        while now < slot:
            self.wait(slot - now)
            now = time.monotonic()
        return time.time_ns() // 1_000_000


def msk_clickstream_lab(
    rng: random.Random, users: int, clock: EventClock
) -> Iterator[tuple[str, Record]]:
    """Endless MSK Clickstream Lab records ``(key, record)`` (see the module docstring)."""
    sessions: dict[int, tuple[str, str, str, str]] = {}  # user -> device, ip, last event, product
    previous: dict[int, int] = {}  # user -> globalseq of the user's last record
    seq = 0
    while True:
        user = rng.randint(1, users)
        session = sessions.get(user)
        if session is None:
            device, ip = rng.choice(DEVICE_TYPES), f"66.249.1.{rng.randrange(255)}"
            event_type, product = "home_page", "N/A"
        else:
            device, ip, last, last_product = session
            event_type = rng.choice(LAB_TRANSITIONS[last])
            if event_type == "product_detail":
                product = rng.choice(PRODUCT_TYPES)
            elif event_type in _CARRIES_PRODUCT:
                product = last_product
            elif event_type == SESSION_END:
                product = ""
            else:
                product = "N/A"
        seq += 1
        record = {
            "ip": ip,
            "eventtimestamp": clock.tick(),
            "devicetype": device,
            "event_type": event_type,
            "product_type": product,
            "userid": user,
            "globalseq": seq,
            "prevglobalseq": previous.get(user, 0),
        }
        previous[user] = seq
        if event_type == SESSION_END:
            del sessions[user]
        else:
            sessions[user] = (device, ip, event_type, product)
        yield str(user), record


def _mixed_case(rng: random.Random, marker: str) -> str:
    style = rng.randrange(4)
    if style == 0:
        return marker.upper()
    if style == 1:
        return marker.lower()
    if style == 2:
        return marker[0] + marker[1:].capitalize() if marker.startswith("[") else marker.title()
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in marker)


def backend_behaviour(
    rng: random.Random, users: int, clock: EventClock
) -> Iterator[tuple[str, Record]]:
    """Endless backend behaviour records ``(key, record)`` (see the module docstring)."""
    names = [a for a, _ in ACTIONS]
    weights = [w for _, w in ACTIONS]
    orders = 0
    while True:
        user = str(rng.randint(1, users))
        action = rng.choices(names, weights)[0]
        obj = f"sku-{rng.randint(1, 500)}" if action in _PRODUCT_ACTIONS else ""
        biz = ""
        if action in _ORDER_ACTIONS:
            orders += 1
            biz = f"order-{orders}"
        error = ""
        if rng.random() >= EMPTY_ERROR_SHARE:
            marker = rng.choice(ERROR_MARKERS)
            text = rng.choice(_MESSAGES[marker]).format(obj=obj or "sku-0")
            cased = _mixed_case(rng, marker)
            sep = ": " if marker == "WARNING" and rng.random() < 0.5 else " "
            error = f"{cased}{sep}{text}"
            if rng.random() < 0.3:
                error = f"svc={rng.choice(_SERVICES)} {error}"
        record = {
            "eventId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "action": action,
            "userId": user,
            "objectId": obj,
            "bizId": biz,
            "errorMsg": error,
            "createdAt": clock.tick(),
        }
        yield user, record


def kda_trade_orders(
    rng: random.Random, users: int, clock: EventClock
) -> Iterator[tuple[str, Record]]:
    """Endless Kinesis Data Analytics lab trade orders ``(key, record)`` (module docstring)."""
    tid = 0
    while True:
        tid += 1
        uno = rng.randint(1, users)
        when = clock.tick()
        record = {
            "tid": tid,
            "tno": f"T{tid:010d}",
            "tdate": dt.datetime.fromtimestamp(when / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "uno": uno,
            "pno": rng.randint(1, TRADE_PRODUCTS),
            "tnum": rng.randint(1, TRADE_MAX_QUANTITY),
            "tuptime": when,
        }
        yield str(uno), record


SCHEMAS: dict[str, Generator] = {
    "msk_clickstream_lab": msk_clickstream_lab,
    "backend_behaviour": backend_behaviour,
    "kda_trade_orders": kda_trade_orders,
}


def generate_records(
    schema: str, users: int, seed: int, clock: EventClock
) -> Iterator[tuple[str, Record]]:
    """Endless ``(key, record)`` pairs of a schema; take as many as needed (``islice``).

    Raises:
        ValueError: unknown schema or ``users < 1``.
    """
    if schema not in SCHEMAS:
        raise ValueError(f"unknown schema {schema!r}; expected one of {sorted(SCHEMAS)}")
    if users < 1:
        raise ValueError(f"users must be >= 1, got {users}")
    return SCHEMAS[schema](random.Random(seed), users, clock)


def parse_start_time(text: str) -> int:
    """``--start-time``: epoch milliseconds (digits) or ISO-8601 (UTC when no zone) -> epoch ms.

    Raises:
        ValueError: neither.
    """
    text = text.strip()
    if text.isdigit():
        return int(text)
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return round(when.timestamp() * 1000)


@dataclass
class ProduceSummary:
    """What one ``produce`` run sent: counts per partition, time taken, event-time span."""

    topic: str
    schema: str
    delivered: int = 0
    per_partition: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    first_event_ms: int | None = None
    last_event_ms: int | None = None

    def describe(self) -> str:
        parts = " ".join(f"{p}:{n}" for p, n in sorted(self.per_partition.items()))
        rate = self.delivered / self.seconds if self.seconds else 0.0
        return (
            f"produced {self.delivered} {self.schema} records to {self.topic} "
            f"(partition:count {parts or '-'}) in {self.seconds:.1f} s ({rate:.0f} ev/s)"
        )


def ensure_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0) -> bool:
    """Create ``topic`` with ``partitions`` partitions (broker-default replication) if missing.

    Returns:
        True when created, False when it existed (its partition count is left as it is).

    Raises:
        RuntimeError: no broker answers at ``bootstrap`` within ``timeout / 2`` seconds.
        confluent_kafka.KafkaException: the broker refused (other than "already exists").
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "logger": logging.getLogger("lakehouse.librdkafka")}
    )
    try:
        admin.list_topics(timeout=timeout / 2)
    except KafkaException as exc:
        raise RuntimeError(
            f"no Kafka broker answers at {bootstrap} ({exc.args[0].str()}); "
            "start the local one with `lakehouse kafka start`"
        ) from exc
    future = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions)], operation_timeout=timeout
    )[topic]
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        existing = admin.list_topics(topic, timeout=timeout).topics[topic].partitions
        if len(existing) != partitions:
            log.warning(
                "PRODUCE topic %s exists with %d partitions (asked %d)",
                topic,
                len(existing),
                partitions,
            )
        return False
    log.info("PRODUCE created topic %s with %d partitions", topic, partitions)
    return True


def keyed_producer(bootstrap: str, client_id: str, **overrides: object):
    """The confluent-kafka ``Producer`` every lakehouse producer uses: idempotent (``acks=all``:
    no duplicate and no reordering on retries, so a key's records keep their send order), Kafka's
    Java partitioner for keys (``murmur2_random``: the partition the labs' Java producers pick;
    a record without a key goes to a random partition), 5 ms linger, librdkafka's logs through
    Python logging. ``overrides`` are further librdkafka settings."""
    from confluent_kafka import Producer

    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "enable.idempotence": True,
            "linger.ms": 5,
            "partitioner": "murmur2_random",
            "logger": logging.getLogger("lakehouse.librdkafka"),
            **overrides,
        }
    )


def wait_serving(producer, seconds: float) -> None:
    """Wait ``seconds`` (at most 0.5 s per call) while serving ``producer``'s delivery reports.

    librdkafka's poll timeout is whole milliseconds: a shorter wait would return at once and a
    pacing loop would spin on it (one core busy at 2,000 records/s), so a wait under 1 ms sleeps
    instead and the reports are served by the next call."""
    if seconds < 0.001:
        time.sleep(max(seconds, 0.0))
    else:
        producer.poll(min(seconds, 0.5))


def send_keyed(producer, topic: str, value: bytes, key: bytes | None, on_delivery) -> None:
    """Hand one record to ``producer`` (a confluent-kafka ``Producer``), serving delivery reports
    while its local queue is full (``BufferError``) instead of failing."""
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=on_delivery)
            break
        except BufferError:  # local queue full: let deliveries drain
            producer.poll(0.1)
    producer.poll(0)


def flush_delivered(producer, tag: str, topic: str, sent: int, delivered, errors: list[str]):
    """Wait until every record handed to ``producer`` is delivered or failed (logging the
    outstanding count every 5 s under ``tag``), then check that ``delivered()`` (the count the
    delivery callbacks keep, read after the flush) equals ``sent``.

    Raises:
        RuntimeError: a delivery failed (the first error is given), or reports are missing.
    """
    while producer.flush(5.0) > 0:
        log.info("%s %s: waiting for %d deliveries", tag, topic, len(producer))
    if errors or delivered() != sent:
        raise RuntimeError(
            f"{len(errors)} of {sent} records to {topic} failed; first error: "
            f"{errors[0] if errors else 'missing delivery reports'}"
        )


def produce(
    topic: str,
    schema: str,
    events: int,
    rate: float = 100.0,
    users: int = 100,
    seed: int = 0,
    start_time_ms: int | None = None,
    out: str | Path | None = None,
    bootstrap: str = "127.0.0.1:9092",
    partitions: int = 3,
    progress_every: float = PROGRESS_EVERY_SEC,
) -> ProduceSummary:
    """Send ``events`` generated records of ``schema`` to ``topic``, keyed by user.

    Args:
        topic: created with ``partitions`` partitions when missing.
        schema: ``msk_clickstream_lab``, ``backend_behaviour`` or ``kda_trade_orders``.
        events: number of records.
        rate: events per second: real-time pacing, or the event-time step with ``start_time_ms``.
        users: distinct users (keys).
        seed: same seed (and start time), same records.
        start_time_ms: event time of the first record (epoch ms UTC); records then go out as
            fast as the broker takes them.
        out: JSON-lines file: every delivered record as sent plus ``_partition`` and ``_offset``
            (in delivery order; sort by those two for the topic's order).
        bootstrap: ``HOST:PORT[,...]``.

    Returns:
        The run's :class:`ProduceSummary`.

    Raises:
        ValueError: bad arguments.
        RuntimeError: no broker answers, or a record could not be delivered (the first error is
            given).
    """
    if events < 0 or partitions < 1:
        raise ValueError(f"need events >= 0 and partitions >= 1, got {events}, {partitions}")
    ensure_topic(bootstrap, topic, partitions)
    producer = keyed_producer(bootstrap, f"lakehouse-produce-{schema}")
    summary = ProduceSummary(topic, schema)
    errors: list[str] = []
    sink = open(out, "w", encoding="utf-8") if out else None  # noqa: SIM115

    def delivered(record: Record, err, msg) -> None:
        if err is not None:
            errors.append(str(err))
            return
        summary.delivered += 1
        summary.per_partition[msg.partition()] += 1
        if sink is not None:
            line = {**record, "_partition": msg.partition(), "_offset": msg.offset()}
            sink.write(json.dumps(line, separators=(",", ":")) + "\n")

    clock = EventClock(rate, start_time_ms, wait=partial(wait_serving, producer))
    records = generate_records(schema, users, seed, clock)
    time_field = {"msk_clickstream_lab": "eventtimestamp", "backend_behaviour": "createdAt"}.get(
        schema, "tuptime"
    )
    started = last_report = time.monotonic()
    sent = 0
    try:
        for key, record in islice(records, events):
            value = json.dumps(record, separators=(",", ":")).encode()
            send_keyed(producer, topic, value, key.encode(), partial(delivered, record))
            sent += 1
            if summary.first_event_ms is None:
                summary.first_event_ms = record[time_field]
            summary.last_event_ms = record[time_field]
            if errors:
                break
            now = time.monotonic()
            if now - last_report >= progress_every:
                log.info(
                    "PRODUCE %s: sent %d/%d, delivered %d, %.0f ev/s",
                    topic,
                    sent,
                    events,
                    summary.delivered,
                    sent / (now - started),
                )
                last_report = now
        flush_delivered(producer, "PRODUCE", topic, sent, lambda: summary.delivered, errors)
    finally:
        if sink is not None:
            sink.close()
    summary.seconds = time.monotonic() - started
    log.info("PRODUCE %s", summary.describe())
    return summary
