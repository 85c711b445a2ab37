"""Exactly once across a crash, and late records kept: the streaming job is killed (SIGKILL, its
whole process group) in the middle of a stream, records far behind the watermark are produced,
and the job is restarted from its checkpoints. The Delta outputs must equal the plain-Python
computation over the on-time records (no duplicate, no missing window), and ``rt_late_events``
must hold exactly the late records, once per query that dropped them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from spark_jobs.settings import PROJECT_DIR
from tests.streaming.reference import (
    START,
    START_MS,
    canonical,
    consume,
    expected_clicks,
    expected_trades,
    produced_records,
    read_archive,
    read_delta,
    read_jsonl,
)

QUERIES = ("clickstream_sessions", "rt_trade_orders_1m", "raw_archive")
CLICKS, TRADES = "restart_clicks", "restart_trades"


def produce(broker, topic: str, schema: str, events: int, rate: int, seed: int, out: Path):
    run = broker.cli(
        "produce", "--topic", topic, "--schema", schema, "--events", str(events),
        "--rate", str(rate), "--users", "20", "--seed", str(seed), "--start-time", START,
        "--out", str(out),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr


def commits(lake: Path, query: str) -> int:
    folder = lake / "rt" / "_checkpoints" / query / "commits"
    return len(list(folder.glob("[0-9]*"))) if folder.exists() else 0


def committed_records(lake: Path, query: str) -> int:
    """Kafka records a query has read in its committed batches (its offset log)."""
    checkpoint = lake / "rt" / "_checkpoints" / query
    last = max(int(p.name) for p in (checkpoint / "commits").glob("[0-9]*"))
    offsets = json.loads((checkpoint / "offsets" / str(last)).read_text().splitlines()[-1])
    return sum(n for parts in offsets.values() for n in parts.values())


def test_killed_job_restarts_exactly_once_and_keeps_late_records(kafka_broker, tmp_path):
    produce(kafka_broker, CLICKS, "msk_clickstream_lab", 2000, 50, 21, tmp_path / "clicks.jsonl")
    produce(kafka_broker, TRADES, "kda_trade_orders", 1800, 10, 22, tmp_path / "trades.jsonl")
    lake = tmp_path / "lake"
    env = {
        **kafka_broker.env,
        "LAKEHOUSE_ROOT": str(lake),
        "LAKEHOUSE_STREAM_TOPICS": f"{CLICKS}=msk_clickstream_lab,{TRADES}=kda_trade_orders",
        "LAKEHOUSE_SPARK_MASTER": "local[2]",
        "LAKEHOUSE_SHUFFLE_PARTITIONS": "2",
        "LAKEHOUSE_DRIVER_MEMORY": "1500m",
        "LAKEHOUSE_DRIVER_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1",
        "LAKEHOUSE_STREAM_TRIGGER_SEC": "1",
        "LAKEHOUSE_STREAM_MAX_OFFSETS_PER_TRIGGER": "500",  # several batches per query
        "LAKEHOUSE_STREAM_RESULT_TOPIC_PREFIX": "restart_",
        "LAKEHOUSE_STREAM_ARCHIVE": str(tmp_path / "archive"),
    }
    command = [sys.executable, "-m", "spark_jobs.cli", "stream", "--queries", ",".join(QUERIES)]
    log = tmp_path / "job.log"
    with log.open("w") as sink:
        job = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while min(commits(lake, q) for q in QUERIES) < 2:
            assert job.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no progress: " + log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # the CLI and its Spark JVM, mid-stream
        job.wait(30)
    assert committed_records(lake, "clickstream_sessions") < 2000, "killed too late"

    # far behind the watermark: minute 0 of the trades, the first seconds of the clicks
    produce(kafka_broker, CLICKS, "msk_clickstream_lab", 20, 50, 23, tmp_path / "late_clicks.jsonl")
    produce(kafka_broker, TRADES, "kda_trade_orders", 30, 10, 24, tmp_path / "late_trades.jsonl")
    restart = kafka_broker.cli(
        "stream", "--available-now", "--queries", ",".join(QUERIES), timeout=400,
        **{k: v for k, v in env.items() if k.startswith("LAKEHOUSE_")},
    )  # fmt: skip
    assert restart.returncode == 0, restart.stderr[-5000:]

    rt = lake / "rt"
    expected = expected_clicks(read_jsonl(tmp_path / "clicks.jsonl"))
    for table in ("rt_user_sessions_checkout", "rt_clickevents_userid_agg", "rt_departments_agg"):
        assert canonical(read_delta(rt / table)) == canonical(expected[table]), table
    trades = expected_trades(read_jsonl(tmp_path / "trades.jsonl"))
    assert canonical(read_delta(rt / "rt_trade_orders_1m")) == canonical(trades)

    late_clicks = read_jsonl(tmp_path / "late_clicks.jsonl")
    late_trades = read_jsonl(tmp_path / "late_trades.jsonl")
    want = sorted(
        [("clickstream_sessions", CLICKS, r["_partition"], r["_offset"]) for r in late_clicks]
        + [("rt_trade_orders_1m", TRADES, r["_partition"], r["_offset"]) for r in late_trades]
    )
    kept = read_delta(rt / "rt_late_events")
    got = sorted((r["query"], r["etl_topic"], r["etl_partition"], r["etl_offset"]) for r in kept)
    assert got == want
    assert all(r["latenessMs"] > 0 and r["watermarkMs"] > START_MS for r in kept)

    # the archive: every record once (on time and late), whatever the batches were
    archived = {}
    for topic, name in ((CLICKS, "clicks"), (TRADES, "trades")):
        for part in (name, f"late_{name}"):
            archived.update(produced_records(topic, read_jsonl(tmp_path / f"{part}.jsonl")))
    assert read_archive(tmp_path / "archive") == archived

    # the result topic is at least once: a replayed batch repeats keys with the same value
    records = [
        (r["key"], r["value"])
        for r in consume(
            kafka_broker.bootstrap, "restart_User_Sessions_Aggregates_With_Order_Checkout"
        )
    ]
    latest = dict(records)
    assert all(v == latest[k] for k, v in records)
    assert canonical(list(latest.values())) == canonical(expected["rt_user_sessions_checkout"])
