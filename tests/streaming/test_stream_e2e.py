"""End to end against the real broker: seeded streams of the three schemas, ``lakehouse stream
--available-now`` as a user runs it, and every output table compared with the same computation
done here in plain Python over the producers' ``--out`` files (never with Spark).

Which windows are final after a bounded run: the watermark is the largest event time of a
query's input minus the watermark delay; a window (session) is written when its end is at or
before the watermark. The expected rows below apply the same rule.
"""

from __future__ import annotations

import pytest

from tests.streaming.reference import (
    START,
    canonical,
    consume,
    expected_behaviour,
    expected_clicks,
    expected_trades,
    produced_records,
    read_archive,
    read_delta,
    read_jsonl,
)

STREAMS = {
    # topic: (schema, events, rate = events per second of event time, users, seed)
    "e2e_clicks": ("msk_clickstream_lab", 3000, 50, 20, 11),
    "e2e_behaviour": ("backend_behaviour", 3000, 20, 50, 12),
    "e2e_trades": ("kda_trade_orders", 1500, 10, 30, 13),
}


@pytest.fixture(scope="module")
def stream_run(kafka_broker, tmp_path_factory):
    """Produce the seeded streams, then one bounded ``lakehouse stream --available-now``."""
    work = tmp_path_factory.mktemp("stream_e2e")
    for topic, (schema, events, rate, users, seed) in STREAMS.items():
        produced = kafka_broker.cli(
            "produce", "--topic", topic, "--schema", schema, "--events", str(events),
            "--rate", str(rate), "--users", str(users), "--seed", str(seed),
            "--start-time", START, "--out", str(work / f"{topic}.jsonl"),
        )  # fmt: skip
        assert produced.returncode == 0, produced.stderr
    env = {
        "LAKEHOUSE_ROOT": str(work / "lake"),
        "LAKEHOUSE_STREAM_TOPICS": ",".join(f"{t}={s[0]}" for t, s in STREAMS.items()),
        "LAKEHOUSE_SPARK_MASTER": "local[2]",
        "LAKEHOUSE_SHUFFLE_PARTITIONS": "2",
        "LAKEHOUSE_DRIVER_MEMORY": "1500m",
        "LAKEHOUSE_DRIVER_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1",
        "LAKEHOUSE_STREAM_RESULT_TOPIC_PREFIX": "e2e_",
        "LAKEHOUSE_STREAM_ARCHIVE": str(work / "archive"),
    }
    run = kafka_broker.cli("stream", "--available-now", timeout=400, **env)
    assert run.returncode == 0, run.stdout + run.stderr[-5000:]
    return work, run


def test_stream_logs_progress_per_query(stream_run):
    _, run = stream_run
    for query in (
        "clickstream_sessions",
        "rt_trade_orders_1m",
        "rt_error_events",
        "rt_warning_alerts",
    ):
        assert f"STREAM {query} batch 0: " in run.stderr
    assert "rows/s" in run.stderr and "watermark" in run.stderr


def test_clickstream_tables_equal_the_independent_computation(stream_run):
    work, _ = stream_run
    expected = expected_clicks(read_jsonl(work / "e2e_clicks.jsonl"))
    assert expected["rt_user_sessions_checkout"], "the seeded stream should close some sessions"
    for table, rows in expected.items():
        assert canonical(read_delta(work / "lake" / "rt" / table)) == canonical(rows), table


def test_trade_orders_per_minute_equal_the_independent_computation(stream_run):
    work, _ = stream_run
    expected = expected_trades(read_jsonl(work / "e2e_trades.jsonl"))
    assert len(expected) >= 2
    got = read_delta(work / "lake" / "rt" / "rt_trade_orders_1m")
    assert canonical(got) == canonical(expected)


def test_error_events_and_warning_alerts_equal_the_independent_computation(stream_run):
    work, _ = stream_run
    expected = expected_behaviour(read_jsonl(work / "e2e_behaviour.jsonl"), "e2e_behaviour")
    assert expected["rt_warning_alerts"], "the seeded stream should raise some alerts"
    for table, rows in expected.items():
        assert canonical(read_delta(work / "lake" / "rt" / table)) == canonical(rows), table


def test_lab_result_topics_carry_the_delta_rows_keyed(stream_run, kafka_broker):
    work, _ = stream_run
    lake = work / "lake" / "rt"
    for table, topic, key in (
        ("rt_user_sessions_checkout", "User_Sessions_Aggregates_With_Order_Checkout",
         ("userId", "windowBeginTime")),
        ("rt_clickevents_userid_agg", "ClickEvents_UserId_Agg_Result", ("windowBeginTime",)),
        ("rt_departments_agg", "Departments_Agg", ("departmentName", "windowBeginTime")),
    ):  # fmt: skip
        records = [(r["key"], r["value"]) for r in consume(kafka_broker.bootstrap, "e2e_" + topic)]
        assert all(k == ":".join(str(v[c]) for c in key) for k, v in records)
        deduplicated = {k: v for k, v in records}  # at least once: same key, same value
        assert canonical(list(deduplicated.values())) == canonical(read_delta(lake / table))


def test_nothing_is_late_in_one_bounded_run(stream_run):
    work, _ = stream_run
    late = work / "lake" / "rt" / "rt_late_events"
    assert not late.exists() or read_delta(late) == []


def test_raw_archive_holds_every_record_once_in_the_kafka_connect_layout(stream_run):
    work, _ = stream_run
    expected = {}
    for topic in STREAMS:
        expected.update(produced_records(topic, read_jsonl(work / f"{topic}.jsonl")))
    assert read_archive(work / "archive") == expected
