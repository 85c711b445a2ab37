"""One pipeline, two speeds: the streaming job's raw archive (Kafka Connect S3 sink layout) run
through the batch pipeline gives the same DWD and DWS rows as the same records delivered straight
to a Firehose landing.

Event times start an hour before now, so the run's arrival day (today, UTC: the records' Kafka
timestamps) is within the late-data lookback of every event day.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import replace
from itertools import islice

import pytest

from spark_jobs import tables as T
from spark_jobs.common import delta_io
from spark_jobs.landing.layouts import firehose_key
from spark_jobs.landing.replay import LandingSink, encode_records
from spark_jobs.pipeline import run_pipeline
from tests.streaming.reference import produced_records, read_archive, read_jsonl

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

TOPICS = {"arch_clicks": "msk_clickstream_lab", "arch_behaviour": "backend_behaviour"}


def rows_without_etl(spark, settings, table: str) -> list[tuple]:
    df = delta_io.read_table(spark, settings, table)
    columns = [c for c in df.columns if not c.startswith("etl_")]
    return sorted((tuple(r) for r in df.select(*columns).collect()), key=repr)


def test_archive_run_gives_the_same_tables_as_a_firehose_landing(
    kafka_broker, spark, settings, tmp_path
):
    start_ms = int(time.time() * 1000) - 3_600_000
    sent = {}
    for seed, (topic, schema) in enumerate(TOPICS.items(), start=31):
        out = tmp_path / f"{topic}.jsonl"
        run = kafka_broker.cli(
            "produce", "--topic", topic, "--schema", schema, "--events", "1200", "--rate", "10",
            "--users", "30", "--seed", str(seed), "--start-time", str(start_ms), "--out", str(out),
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        sent[topic] = read_jsonl(out)
    archive = tmp_path / "archive"
    run = kafka_broker.cli(
        "stream", "--available-now", "--queries", "raw_archive", timeout=300,
        LAKEHOUSE_ROOT=str(tmp_path / "stream_lake"),
        LAKEHOUSE_STREAM_TOPICS=",".join(f"{t}={s}" for t, s in TOPICS.items()),
        LAKEHOUSE_STREAM_ARCHIVE=str(archive),
        LAKEHOUSE_SPARK_MASTER="local[2]", LAKEHOUSE_SHUFFLE_PARTITIONS="2",
        LAKEHOUSE_DRIVER_MEMORY="1000m", LAKEHOUSE_DRIVER_JAVA_OPTIONS="-XX:TieredStopAtLevel=1",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    expected = {}
    for topic, records in sent.items():
        expected.update(produced_records(topic, records))
    assert read_archive(archive) == expected

    # the same records, as a Firehose delivery stream of the topic's name would have put them
    firehose = LandingSink(str(tmp_path / "firehose"))
    arrival = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    for topic, records in sent.items():
        lines = iter([{k: v for k, v in r.items() if not k.startswith("_")} for r in records])
        n = 0
        while chunk := list(islice(lines, 500)):
            key = firehose_key(topic, arrival, str(uuid.UUID(int=n)), gzip=True)
            firehose.put(key, encode_records(chunk, compress=True))
            n += 1

    adapters = {"*": "canonical", **TOPICS}
    first = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).date()
    today = arrival.date()
    lakes = {}
    for name, landing in (("archive", archive), ("firehose", tmp_path / "firehose")):
        lake = replace(settings, lakehouse_root=str(tmp_path / f"lake_{name}"))
        lake = replace(lake, source_adapters=adapters)
        run_pipeline(spark, lake, str(landing), first, today)
        lakes[name] = lake
    ods = delta_io.read_table(spark, lakes["archive"], T.ODS_EVENTS)
    assert ods.count() == len(expected)
    for table in (T.ODS_EVENTS, *T.DOWNSTREAM_BUILD_ORDER):
        archive_rows = rows_without_etl(spark, lakes["archive"], table)
        assert archive_rows, table
        assert archive_rows == rows_without_etl(spark, lakes["firehose"], table), table
