"""Landing object keys of Firehose and the Kafka Connect S3 sink."""

from __future__ import annotations

import datetime as dt

import pytest

from spark_jobs.landing.layouts import firehose_key, kafka_key, parse_object_key

UUID = "123e4567-e89b-12d3-a456-426614174000"


def test_firehose_key_round_trips():
    key = firehose_key("web-events", dt.datetime(2024, 1, 2, 3, 4, 5), UUID)
    assert key == f"2024/01/02/03/web-events-1-2024-01-02-03-04-05-{UUID}.gz"
    info = parse_object_key("s3a://bucket/raw/" + key)
    assert (info.layout, info.stream, info.arrival_hour, info.gzip) == (
        "firehose",
        "web-events",
        dt.datetime(2024, 1, 2, 3),
        True,
    )


def test_kafka_sink_key_round_trips_with_ten_digit_offset():
    key = kafka_key("clicks", 2, 1234, dt.datetime(2024, 1, 2, 23), gzip=False)
    assert key == "topics/clicks/year=2024/month=01/day=02/hour=23/clicks+2+0000001234.json"
    info = parse_object_key("/landing/" + key)
    assert (info.layout, info.stream, info.arrival_date, info.gzip) == (
        "kafka",
        "clicks",
        dt.date(2024, 1, 2),
        False,
    )


@pytest.mark.parametrize(
    "key",
    [
        "2024/01/02/03/_SUCCESS",
        "topics/clicks/year=2024/month=01/day=02/hour=23/other+2+0000001234.json",
        "topics/clicks/year=2024/month=01/day=02/hour=23/clicks+2+1234.json",
    ],
)
def test_other_keys_are_not_landing_objects(key):
    with pytest.raises(ValueError, match="not a Firehose or Kafka"):
        parse_object_key(key)
