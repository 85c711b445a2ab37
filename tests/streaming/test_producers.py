"""``lakehouse produce`` into the real broker, consumed back with confluent-kafka.

The expectations are written here independently of the producer: the lab's transition table, the
Java client's murmur2 partitioner, the event-time arithmetic.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import tracemalloc
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from spark_jobs.streaming.producers import EventClock, generate_records
from tests.streaming.reference import consume

EVENTS = 600
USERS = 12
SEED = 11
RATE = 250  # events/s: with --start-time, event times 4 ms apart
START = "2024-03-01T12:00:00"
START_MS = 1709294400000  # 2024-03-01T12:00:00Z

# The Amazon MSK Clickstream Lab's flow (aws-samples clickstream-producer-for-apache-kafka,
# Events.java): every allowed next event type; "" ends a session.
ALLOWED_NEXT = {
    None: {"home_page"},
    "home_page": {"product_catalog"},
    "product_catalog": {"home_page", "product_detail"},
    "product_detail": {"product_catalog", "add_to_cart"},
    "add_to_cart": {"product_catalog", "remove_from_cart", "order"},
    "order": {"order_checkout", "remove_from_cart", "product_catalog"},
    "remove_from_cart": {"", "product_detail", "product_catalog"},
    "order_checkout": {""},
    "": {"home_page"},
}
LAB_PRODUCTS = {
    "cell phones",
    "laptops",
    "ear phones",
    "soundbars",
    "cd players",
    "AirPods",
    "video games",
    "cameras",
}
KEY_FIELD = {
    "msk_clickstream_lab": "userid",
    "backend_behaviour": "userId",
    "kda_trade_orders": "uno",
}
TIME_FIELD = {
    "msk_clickstream_lab": "eventtimestamp",
    "backend_behaviour": "createdAt",
    "kda_trade_orders": "tuptime",
}
FIELDS = {
    "msk_clickstream_lab": [
        "ip",
        "eventtimestamp",
        "devicetype",
        "event_type",
        "product_type",
        "userid",
        "globalseq",
        "prevglobalseq",
    ],
    "backend_behaviour": [
        "eventId",
        "action",
        "userId",
        "objectId",
        "bizId",
        "errorMsg",
        "createdAt",
    ],
    "kda_trade_orders": ["tid", "tno", "tdate", "uno", "pno", "tnum", "tuptime"],
}


def java_partition(key: bytes, partitions: int) -> int:
    """Kafka's Java DefaultPartitioner for a keyed record: toPositive(murmur2(key)) % n."""
    m, length = 0x5BD1E995, len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = (int.from_bytes(key[i : i + 4], "little") * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail, rest = length - length % 4, length % 4
    if rest == 3:
        h ^= key[tail + 2] << 16
    if rest >= 2:
        h ^= key[tail + 1] << 8
    if rest >= 1:
        h = ((h ^ key[tail]) * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


def read_out(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def produce_cli(broker, topic: str, schema: str, out: Path, *extra: str, events: int = EVENTS):
    result = broker.cli(
        "produce",
        "--topic",
        topic,
        "--schema",
        schema,
        "--events",
        str(events),
        "--users",
        str(USERS),
        "--seed",
        str(SEED),
        "--out",
        str(out),
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def produced(kafka_broker, tmp_path_factory):
    """Each schema produced once with --start-time into a fresh topic, plus what the topic holds."""
    out_dir = tmp_path_factory.mktemp("produced")
    runs = {}
    for schema in FIELDS:
        out = out_dir / f"{schema}.jsonl"
        produce_cli(kafka_broker, schema, schema, out, "--rate", str(RATE), "--start-time", START)
        runs[schema] = (
            read_out(out),
            [
                (r["partition"], r["offset"], r["key"], r["value"])
                for r in consume(kafka_broker.bootstrap, schema)
            ],
        )
    return runs


@pytest.mark.parametrize("schema", list(FIELDS))
def test_the_topic_holds_exactly_the_out_file(produced, schema):
    out, consumed = produced[schema]
    assert len(out) == len(consumed) == EVENTS
    by_position = {(r["_partition"], r["_offset"]): r for r in out}
    assert len(by_position) == EVENTS
    for partition, offset, key, value in consumed:
        line = by_position[(partition, offset)]
        assert value == {k: v for k, v in line.items() if not k.startswith("_")}
        assert list(value) == FIELDS[schema]
        assert key == str(value[KEY_FIELD[schema]])
    counts = Counter(p for p, *_ in consumed)
    assert counts == Counter(r["_partition"] for r in out)
    assert set(counts) == {0, 1, 2}  # default 3 partitions, all used by 12 users
    for partition, n in counts.items():
        assert sorted(o for p, o, *_ in consumed if p == partition) == list(range(n))


@pytest.mark.parametrize("schema", list(FIELDS))
def test_each_user_stays_on_the_java_clients_partition(produced, schema):
    _, consumed = produced[schema]
    partitions_of = defaultdict(set)
    for partition, _, key, _ in consumed:
        partitions_of[key].add(partition)
    assert len(partitions_of) == USERS
    for key, partitions in partitions_of.items():
        assert partitions == {java_partition(key.encode(), 3)}


@pytest.mark.parametrize("schema", list(FIELDS))
def test_start_time_spaces_event_times_by_one_over_rate(produced, schema):
    out, _ = produced[schema]
    times = sorted(r[TIME_FIELD[schema]] for r in out)
    assert times == [START_MS + round(i * 1000 / RATE) for i in range(EVENTS)]


def test_lab_sessions_follow_the_labs_flow(produced):
    _, consumed = produced["msk_clickstream_lab"]
    records = sorted((v for *_, v in consumed), key=lambda v: v["globalseq"])
    assert [r["globalseq"] for r in records] == list(range(1, EVENTS + 1))
    # a user's records in partition order are its records in globalseq order
    for key in {k for _, _, k, _ in consumed}:
        in_topic = [v["globalseq"] for p, o, k, v in sorted(consumed) if k == key]
        assert in_topic == sorted(in_topic)
    last = {}  # user -> previous record
    seen = Counter()
    for r in records:
        prev = last.get(r["userid"])
        prev_type = prev["event_type"] if prev else None
        assert r["event_type"] in ALLOWED_NEXT[prev_type], (prev_type, r)
        seen[(prev_type, r["event_type"])] += 1
        assert r["prevglobalseq"] == (prev["globalseq"] if prev else 0)
        assert r["devicetype"] in {"mobile", "computer", "tablet"}
        assert re.fullmatch(r"66\.249\.1\.\d{1,3}", r["ip"])
        if prev is not None and prev_type != "":  # same session: same device and IP
            assert (r["devicetype"], r["ip"]) == (prev["devicetype"], prev["ip"])
        if r["event_type"] in {"home_page", "product_catalog"}:
            assert r["product_type"] == "N/A"
        elif r["event_type"] == "product_detail":
            assert r["product_type"] in LAB_PRODUCTS
        elif r["event_type"] == "":
            assert r["product_type"] == ""
        else:  # add_to_cart, remove_from_cart, order, order_checkout carry the product
            assert r["product_type"] == prev["product_type"]
        if prev is not None:
            assert r["eventtimestamp"] > prev["eventtimestamp"]
        last[r["userid"]] = r
    # 600 events over 12 users reach every branch of the flow
    assert {t for t in ALLOWED_NEXT if t} <= {b for _, b in seen}
    assert ("remove_from_cart", "") in seen and ("order_checkout", "") in seen
    assert sum(n for (a, _), n in seen.items() if a == "") > 0  # users start new sessions


def test_backend_error_messages_carry_markers_in_mixed_case(produced):
    out, _ = produced["backend_behaviour"]
    messages = [r["errorMsg"] for r in out]
    empty = [m for m in messages if m == ""]
    assert 0 < len(empty) < len(messages)
    markers = Counter()
    for message in filter(None, messages):
        found = [m for m in ("[ERROR]", "[PANIC]", "WARNING") if m.lower() in message.lower()]
        assert len(found) == 1, message
        markers[found[0]] += 1
    assert set(markers) == {"[ERROR]", "[PANIC]", "WARNING"}
    lowered = [
        m for m in messages if m and not any(x in m for x in ("[ERROR]", "[PANIC]", "WARNING"))
    ]
    assert lowered  # some markers are not upper case
    assert all(
        r["objectId"].startswith("sku-")
        == (r["action"] in {"view_product", "add_cart", "remove_cart"})
        for r in out
    )


def test_trade_order_fields(produced):
    out, _ = produced["kda_trade_orders"]
    assert sorted(r["tid"] for r in out) == list(range(1, EVENTS + 1))
    for r in out:
        assert r["tno"] == f"T{r['tid']:010d}"
        assert 1 <= r["uno"] <= USERS and 1 <= r["pno"] <= 100 and 1 <= r["tnum"] <= 10
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["tuptime"] // 1000))
        assert r["tdate"] == when


def test_same_seed_same_records_partitions_and_offsets(kafka_broker, produced, tmp_path):
    first, _ = produced["msk_clickstream_lab"]
    again = tmp_path / "again.jsonl"
    args = ("--rate", str(RATE), "--start-time", str(START_MS))  # epoch ms = the same instant
    produce_cli(kafka_broker, "lab_again", "msk_clickstream_lab", again, *args)
    key = lambda r: (r["_partition"], r["_offset"])  # noqa: E731
    assert sorted(read_out(again), key=key) == sorted(first, key=key)

    other = tmp_path / "other.jsonl"
    result = kafka_broker.cli(
        "produce", "--topic", "lab_other", "--schema", "msk_clickstream_lab", "--events", "50",
        "--users", str(USERS), "--seed", str(SEED + 1), "--out", str(other), *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [r["userid"] for r in read_out(other)] != [r["userid"] for r in first[:50]]


def test_without_start_time_records_are_paced_by_the_wall_clock(kafka_broker, tmp_path):
    out = tmp_path / "wall.jsonl"
    before = time.time() * 1000
    result = produce_cli(
        kafka_broker, "lab_wall", "msk_clickstream_lab", out, "--rate", "20", events=40
    )
    after = time.time() * 1000
    assert "PRODUCE" in result.stderr and "40 msk_clickstream_lab records" in result.stdout
    times = [r["eventtimestamp"] for r in sorted(read_out(out), key=lambda r: r["globalseq"])]
    assert before <= times[0] and times[-1] <= after
    assert times == sorted(times)
    # record i is never sent before its slot i / rate (a late record is caught up after it)
    assert all(t - times[0] >= i * 50 - 2 for i, t in enumerate(times))
    assert times[-1] - times[0] <= 39 * 50 + 1000


def test_generating_is_streaming_memory_stays_bounded():
    clock = EventClock(rate=1000, start_ms=START_MS)
    records = generate_records("msk_clickstream_lab", users=50, seed=1, clock=clock)
    tracemalloc.start()
    try:
        for _ in itertools.islice(records, 5_000):
            pass
        _, small = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in itertools.islice(records, 100_000):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * small + 256 * 1024  # 20 times the records, not 20 times the memory


def test_real_time_pacing_waits_without_spinning():
    # 2,000 records/s: slots 0.5 ms apart, under librdkafka's 1 ms poll resolution; a pacing
    # loop polling with a sub-millisecond timeout returns at once and keeps a core busy
    from confluent_kafka import Producer

    from spark_jobs.streaming.producers import wait_serving

    producer = Producer({"bootstrap.servers": "127.0.0.1:9", "socket.timeout.ms": 1000})
    clock = EventClock(rate=2000, wait=lambda sec: wait_serving(producer, sec))
    wall, cpu = time.monotonic(), time.process_time()
    for _ in range(1_000):
        clock.tick()
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    assert wall >= 1_000 / 2000 - 0.01  # paced: 1,000 slots of 0.5 ms
    assert cpu < 0.5 * wall, f"{cpu:.2f} CPU-s in {wall:.2f} s: the wait spins"
