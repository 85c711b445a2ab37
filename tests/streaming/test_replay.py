"""``lakehouse replay DATASET --to kafka://HOST:PORT/TOPIC`` into the real broker, read back with
confluent-kafka. The expected values are computed here from the source files with the csv module
(event times, users, products, source order), never from the replay's code or its summary."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import DATA_DIR
from tests.streaming.reference import consume
from tests.streaming.test_producers import java_partition

PARTITIONS = 3
SPEEDUP = 12_000  # event-time seconds per second: 2011-06-01's 10 h of trading in about 3 s
RETAIL_DAY = dt.date(2011, 6, 1)  # summer: London is UTC+1
LONDON = ZoneInfo("Europe/London")


def rees46_source() -> list[dict]:
    """The REES46 slice as the source says it: UTC event time, user, product, type, line order."""
    path = DATA_DIR / "rees46" / "2019-Oct_head17k.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return [
            {
                "ts": row["event_time"].replace(" UTC", "").replace(" ", "T") + ".000Z",
                "user": row["user_id"],
                "product": row["product_id"],
                "type": row["event_type"],
            }
            for row in csv.DictReader(handle)
        ]


def retail_source(day: dt.date) -> list[dict]:
    """Online Retail lines whose InvoiceDate (Europe/London local time) falls on ``day`` in UTC,
    read from the day files around it; CustomerID ``17850.0`` is user ``17850``."""
    rows = []
    for offset in (-1, 0, 1):
        path = DATA_DIR / "online_retail" / f"{day + dt.timedelta(days=offset)}.csv.gz"
        if not path.exists():
            continue
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                local = dt.datetime.strptime(row["InvoiceDate"], "%Y-%m-%d %H:%M:%S")
                utc = local.replace(tzinfo=LONDON).astimezone(dt.UTC)
                if utc.date() == day:
                    customer = row["CustomerID"].strip()
                    rows.append(
                        {
                            "ms": int(utc.timestamp() * 1000),
                            "user": str(int(float(customer))) if customer else None,
                            "product": row["StockCode"],
                        }
                    )
    return rows


def iso_ms(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture(scope="module")
def rees46_topic(kafka_broker):
    """The REES46 slice replayed once, as fast as possible, and everything the topic holds."""
    topic = "replay_rees46"
    run = kafka_broker.cli("replay", "rees46", "--to", f"kafka://{kafka_broker.bootstrap}/{topic}")
    assert run.returncode == 0, run.stdout + run.stderr
    return consume(kafka_broker.bootstrap, topic)


def test_replay_sends_every_source_line_once_keyed_by_its_user(rees46_topic):
    source = rees46_source()
    assert len(rees46_topic) == len(source) == 17_434
    assert Counter(r["key"] for r in rees46_topic) == Counter(s["user"] for s in source)
    assert all(r["value"]["user_id"] == r["key"] for r in rees46_topic)
    assert len({r["value"]["event_id"] for r in rees46_topic}) == len(source)
    assert {r["value"]["app_id"] for r in rees46_topic} == {"rees46"}


def test_a_users_events_are_on_one_partition_in_event_time_order(rees46_topic):
    expected: dict[str, list[tuple]] = defaultdict(list)
    for s in sorted(rees46_source(), key=lambda s: s["ts"]):  # stable: ties keep line order
        expected[s["user"]].append((s["ts"], s["product"], s["type"]))
    got: dict[str, list[tuple]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for r in rees46_topic:  # in (partition, offset) order
        v = r["value"]
        got[r["key"]].append((v["event_ts"], v["product_id"], v["event_name"]))
        partitions[r["key"]].add(r["partition"])
    assert got == expected
    for user, seen in partitions.items():
        assert seen == {java_partition(user.encode(), PARTITIONS)}, user


@pytest.mark.spark
def test_the_streaming_parser_reads_the_replayed_records_as_canonical_events(spark, rees46_topic):
    from pyspark.sql import functions as F

    from spark_jobs.streaming.transforms import parse_kafka_records

    # the records of the users whose id ends in 7 (about a tenth: enough, and cheap)
    sample = [r for r in rees46_topic if r["key"].endswith("7")]
    source = [s for s in rees46_source() if s["user"].endswith("7")]
    records = spark.createDataFrame(
        [(json.dumps(r["value"]), "rees46", r["partition"], r["offset"]) for r in sample],
        "value string, topic string, partition int, offset long",
    )
    parsed = parse_kafka_records(records, "canonical")  # what the job does for canonical topics
    rows = parsed.select("user_id", F.unix_millis("event_ts"), "event_type").collect()
    assert len(rows) == len(source) > 1000  # nothing rejected
    assert Counter((u, ms) for u, ms, _ in rows) == Counter(
        (s["user"], iso_ms(s["ts"])) for s in source
    )
    canonical = {"view": "product_view", "cart": "add_to_cart", "purchase": "purchase"}
    assert Counter(t for *_, t in rows) == Counter(
        canonical.get(s["type"], s["type"]) for s in source
    )


def test_speedup_paces_the_sends_by_event_time(kafka_broker):
    topic = "replay_retail_paced"
    run = kafka_broker.cli(
        "replay", "online_retail", "--start", str(RETAIL_DAY), "--end", str(RETAIL_DAY),
        "--speedup", str(SPEEDUP), "--to", f"kafka://{kafka_broker.bootstrap}/{topic}",
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    got = consume(kafka_broker.bootstrap, topic)
    source = retail_source(RETAIL_DAY)
    assert Counter((r["key"], iso_ms(r["value"]["event_ts"])) for r in got) == Counter(
        (s["user"], s["ms"]) for s in source
    )
    assert sum(r["key"] is None for r in got) == sum(s["user"] is None for s in source) > 0
    # sent in event-time order; the n-th record leaves (t_n - t_0) / SPEEDUP after the first:
    # never early (2 ms: Kafka timestamps are whole ms), late by less than 2 s on a busy machine
    sends = sorted((r["kafka_ms"], iso_ms(r["value"]["event_ts"])) for r in got)
    first_sent, first_event = sends[0][0], min(s["ms"] for s in source)
    span_ms = (max(s["ms"] for s in source) - first_event) / SPEEDUP
    assert span_ms > 2_500
    for sent, event in sends:
        due = (event - first_event) / SPEEDUP
        assert due - 2 <= sent - first_sent <= due + 2_000, (sent - first_sent, due)
    assert sends[-1][0] - first_sent >= span_ms - 2


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ("landing/x", ["--speedup", "60"], "--speedup/--partitions are for kafka://"),
        ("kafka://127.0.0.1:9/t", ["--layout", "kafka"], "--layout/--plain are for landing"),
        ("kafka://127.0.0.1/no_port", [], "expected kafka://HOST:PORT"),
        ("kafka://127.0.0.1:9/bad topic", [], "expected kafka://HOST:PORT"),
    ],
)
def test_misplaced_options_and_bad_kafka_uris_are_argument_errors(target, extra, message, capsys):
    from spark_jobs.cli import main

    assert main(["replay", "online_retail", "--to", target, *extra]) == 2  # nothing sent
    assert message in capsys.readouterr().err


def test_the_stream_job_takes_a_canonical_topic_and_refuses_an_unknown_schema():
    from spark_jobs.streaming.job import check_stream_topics

    check_stream_topics({"rees46": "canonical", "clickstream": "msk_clickstream_lab"})
    with pytest.raises(ValueError, match=r"unknown schema in rees46=canonicl; known: \["):
        check_stream_topics({"rees46": "canonicl"})
