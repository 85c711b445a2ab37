"""Replay into an S3 landing (moto server on 127.0.0.1 speaking the S3 API: tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import boto3

from spark_jobs.landing.layouts import parse_object_key
from spark_jobs.landing.replay import replay
from tests.conftest import DATA_DIR


def test_replay_writes_firehose_objects_to_s3(moto_endpoint):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="landing")
    day = dt.date(2011, 3, 1)
    summary = replay("online_retail", "s3://landing/raw/web", "firehose", day, day, DATA_DIR)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="landing")["Contents"]]
    assert len(keys) == summary.objects
    assert all(k.startswith("raw/web/2011/03/01/") for k in keys)
    records = []
    for key in keys:
        info = parse_object_key(key)
        assert (info.layout, info.stream, info.gzip) == ("firehose", "online_retail", True)
        body = s3.get_object(Bucket="landing", Key=key)["Body"].read()
        records += [json.loads(line) for line in gzip.decompress(body).splitlines()]
    with gzip.open(DATA_DIR / "online_retail" / "2011-03-01.csv.gz", "rt") as handle:
        source_lines = sum(1 for _ in handle) - 1  # GMT in March before the switch: same day
    assert len(records) == summary.records == source_lines
