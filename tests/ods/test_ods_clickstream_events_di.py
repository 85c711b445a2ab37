"""ODS parsing: each adapter's mapping and every rejection reason, against hand-written records."""

from __future__ import annotations

import datetime as dt
import gzip
from decimal import Decimal

import pytest

from spark_jobs.ods.ods_clickstream_events_di import (
    RAW_LINES,
    object_arrivals,
    parse_records,
    reject_implausible_times,
)
from spark_jobs.ods.ods_clickstream_events_di import _split_object as split_object
from spark_jobs.settings import Settings

pytestmark = pytest.mark.spark

INGEST_TS = dt.datetime(2024, 1, 2, 3, 4, 5)
OBJ = "s3a://landing/2024/01/02/03/web-1-2024-01-02-03-00-00-123e4567-e89b-12d3-a456-426614174000"


def _parse(spark, schema: str, lines: list[str], stream: str = "web"):
    rows = [(OBJ, stream, schema, n, line, None) for n, line in enumerate(lines, start=1)]
    parsed = parse_records(spark.createDataFrame(rows, RAW_LINES), INGEST_TS)
    return {r.etl_source_line: r for r in parsed.collect()}


def test_canonical_record_is_typed(spark):
    line = (
        '{"event_id":"e1","app_id":"shop","event_ts":"2024-01-02T03:04:05.678Z",'
        '"event_name":"view","event_type":"product_view","user_id":"42","product_id":"p1",'
        '"category":"toys","brand":"acme","price":12.5,"quantity":2,"ip":"1.2.3.4",'
        '"attributes":{"k":"v"}}'
    )
    r = _parse(spark, "canonical", [line])[1]
    assert r.reason is None
    assert (r.event_id, r.app_id, r.user_id, r.event_type, r.event_name) == (
        "e1",
        "shop",
        "42",
        "product_view",
        "view",
    )
    assert r.event_ts == dt.datetime(2024, 1, 2, 3, 4, 5, 678000)
    assert (r.price, r.quantity, r.category, r.brand) == (Decimal("12.5000"), 2, "toys", "acme")
    assert r.attributes == {"k": "v"}
    assert r.etl_ingest_ts == INGEST_TS


def test_canonical_defaults_app_to_stream_and_unknown_type_to_other(spark):
    line = '{"event_id":"e1","event_ts":"2024-01-02 03:04:05","event_type":"wishlist"}'
    r = _parse(spark, "canonical", [line], stream="mobile")[1]
    assert (r.reason, r.app_id, r.event_type) == (None, "mobile", "other")
    assert r.event_ts == dt.datetime(2024, 1, 2, 3, 4, 5)  # no zone -> UTC


def test_msk_clickstream_lab_record(spark):
    line = (
        '{"ip":"66.249.1.7","eventtimestamp":1704164645000,"devicetype":"mobile",'
        '"event_type":"add_to_cart","product_type":"Electronics","userid":1234,'
        '"globalseq":99,"prevglobalseq":98}'
    )
    r = _parse(spark, "msk_clickstream_lab", [line], stream="clickstream")[1]
    assert r.reason is None
    assert r.event_id == "clickstream-99"
    assert r.event_ts == dt.datetime(2024, 1, 2, 3, 4, 5)  # 1704164645 s = 2024-01-02 03:04:05Z
    assert (r.user_id, r.event_type, r.category, r.device_type, r.ip) == (
        "1234",
        "add_to_cart",
        "Electronics",
        "mobile",
        "66.249.1.7",
    )
    assert r.attributes == {"globalseq": "99", "prevglobalseq": "98"}


def test_backend_behaviour_record_and_error_message_makes_an_error_event(spark):
    ok = (
        '{"eventId":"b1","action":"cart","userId":"u7","objectId":"sku-1","bizId":"o-9",'
        '"errorMsg":"","createdAt":"2024-01-02T03:04:05+01:00"}'
    )
    failed = (
        '{"eventId":"b2","action":"pay","userId":"u7","objectId":"sku-1","bizId":"o-9",'
        '"errorMsg":"card declined","createdAt":1704164645000}'
    )
    got = _parse(spark, "backend_behaviour", [ok, failed], stream="orders")
    assert got[1].reason is None and got[2].reason is None
    assert (got[1].event_type, got[1].product_id, got[1].error_msg) == (
        "add_to_cart",
        "sku-1",
        None,
    )
    assert got[1].event_ts == dt.datetime(2024, 1, 2, 2, 4, 5)  # +01:00 -> UTC
    assert (got[2].event_type, got[2].event_name, got[2].error_msg) == (
        "error",
        "pay",
        "card declined",
    )
    assert got[2].attributes == {"biz_id": "o-9"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"event_id":"e1","event_ts":', "malformed JSON"),
        ("[1, 2]", "malformed JSON"),
        ('{"eventId":"x","action":"view"}', "unknown schema: expected canonical"),
        ('{"event_ts":"2024-01-02T00:00:00Z","event_type":"x"}', "missing event id"),
        ('{"event_id":"e1","event_type":"purchase"}', "missing event time"),
        ('{"event_id":"e1","event_ts":"yesterday"}', "unparseable event time: 'yesterday'"),
        ('{"event_id":"e1","event_ts":"2024-01-02","price":"abc"}', "unparseable price: 'abc'"),
        ('{"event_id":"e1","event_ts":"2024-01-02","quantity":"2x"}', "unparseable quantity: '2x'"),
    ],
)
def test_bad_records_get_their_reason(spark, line, reason):
    assert _parse(spark, "canonical", [line])[1].reason == reason


def test_stream_without_adapter_is_rejected_with_reason(spark):
    rows = [(OBJ, "mystery", None, 1, '{"a":1}', None)]
    parsed = parse_records(spark.createDataFrame(rows, RAW_LINES), INGEST_TS).first()
    assert parsed.reason == "no adapter configured for stream mystery"


def test_truncated_gzip_object_is_one_unreadable_row():
    body = gzip.compress(b'{"event_id":"e1"}\n' * 100)
    row = {"path": OBJ + ".gz", "content": body[: len(body) // 2]}
    out = list(split_object(row, {"web": "canonical"}))
    assert len(out) == 1
    obj, stream, schema, line, raw, error = out[0]
    assert (obj, line, raw) == (OBJ + ".gz", None, None)
    assert error.startswith("unreadable object")


def test_object_lines_are_numbered_and_blank_lines_skipped():
    row = {"path": OBJ, "content": b'{"a":1}\n\n{"b":2}\n'}
    out = list(split_object(row, {"web": "canonical"}))
    assert [(o[3], o[4]) for o in out] == [(1, '{"a":1}'), (3, '{"b":2}')]


def test_a_negative_price_is_a_value_not_a_reason_to_reject(spark):
    line = '{"event_id":"e1","event_ts":"2024-01-02","event_type":"purchase","price":-11062.06}'
    r = _parse(spark, "canonical", [line])[1]
    assert (r.reason, r.price) == (None, Decimal("-11062.0600"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # 1704164645 s after the epoch = 2024-01-02 03:04:05 UTC (by hand: 19724 days + 11045 s)
        ("1704164645", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("1704164645000", dt.datetime(2024, 1, 2, 3, 4, 5)),
        ("1704164645123", dt.datetime(2024, 1, 2, 3, 4, 5, 123000)),
        ("1704164645123456", dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
        ("1704164645.5", dt.datetime(2024, 1, 2, 3, 4, 5, 500000)),
    ],
)
def test_numeric_event_times_are_seconds_or_milliseconds_by_magnitude(spark, raw, expected):
    lab = f'{{"eventtimestamp":{raw},"userid":1,"globalseq":1,"event_type":"home_page"}}'
    r = _parse(spark, "msk_clickstream_lab", [lab], stream="clickstream")[1]
    assert (r.reason, r.event_ts) == (None, expected)
    behaviour = f'{{"eventId":"b1","action":"view","createdAt":"{raw}"}}'
    assert _parse(spark, "backend_behaviour", [behaviour])[1].event_ts == expected


def test_event_times_that_cannot_be_right_are_rejected_with_their_reason(spark):
    # OBJ arrived in the 2024-01-02 03:00 folder: latest allowed 04:00 + 1 h skew = 05:00
    lines = [
        '{"event_id":"ok","event_ts":"2024-01-02T05:00:00Z"}',
        '{"event_id":"future","event_ts":"2024-01-02T05:00:01Z"}',
        '{"event_id":"client2030","event_ts":"2030-06-01T00:00:00Z"}',
        '{"event_id":"old","event_ts":"1999-12-31T23:59:59Z"}',
        '{"event_id":"bad","event_ts":"never"}',
    ]
    rows = [(OBJ, "web", "canonical", n, line, None) for n, line in enumerate(lines, 1)]
    parsed = parse_records(spark.createDataFrame(rows, RAW_LINES), INGEST_TS)
    arrivals = object_arrivals(spark, [OBJ])
    assert arrivals.first().etl_arrival_hour == dt.datetime(2024, 1, 2, 3)  # from the key
    checked = reject_implausible_times(parsed, arrivals, Settings(max_clock_skew_sec=3600))
    reasons = {r.event_id: r.reason for r in checked.collect()}
    late = "event time later than its object's arrival hour + 3600 s clock skew"
    assert reasons == {
        "ok": None,
        "future": late,
        "client2030": late,
        "old": "event time before 2000-01-01",
        "bad": "unparseable event time: 'never'",
    }


def test_ingest_reads_each_object_once_and_every_stream_gets_its_adapter_or_a_reason(
    spark, settings, tmp_path
):
    from dataclasses import replace

    from spark_jobs import tables as T
    from spark_jobs.common import delta_io
    from spark_jobs.landing.layouts import firehose_key
    from spark_jobs.ods.ods_clickstream_events_di import ingest, parse_objects

    hour = dt.datetime(2024, 5, 1, 10)
    landing = tmp_path / "landing"
    canonical = '{"event_id":"c1","event_ts":"2024-05-01T10:00:00Z","user_id":"u1"}'
    lab = '{"eventtimestamp":1714557600000,"userid":7,"globalseq":3,"event_type":"home_page"}'
    objects = {  # stream, uuid suffix, gzip -> lines
        ("shop", 1, False): [canonical, "{not json"],
        ("clickstream", 2, False): [lab],
        ("mystery", 3, False): ['{"a":1}', '{"a":2}'],
        ("typo", 4, False): [canonical],
    }
    for (stream, n, gz), lines in objects.items():
        path = landing / firehose_key(stream, hour, f"00000000-0000-4000-8000-00000000000{n}", gz)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    truncated = landing / firehose_key("clickstream", hour, "00000000-0000-4000-8000-000000000005")
    body = gzip.compress((lab + "\n").encode() * 40)
    truncated.write_bytes(body[: len(body) // 2])
    adapters = {"shop": "canonical", "clickstream": "msk_clickstream_lab", "typo": "canonicall"}
    settings = replace(settings, source_adapters=adapters)

    # one read (one file scan) per configured adapter, each over that adapter's objects only
    uris = sorted(p.resolve().as_uri() for p in landing.rglob("*") if p.is_file())
    by_stream = {**adapters, "mystery": None}
    plan = parse_objects(spark, uris, by_stream, INGEST_TS)._jdf.queryExecution().executedPlan()
    assert plan.toString().count("FileScan") == 4  # canonical, lab, unknown name, none

    result = ingest(spark, settings, str(landing), hour.date(), hour.date())
    assert (result.raw_records, result.ods_rows, result.rejected_rows) == (7, 2, 5)
    ods = delta_io.read_table(spark, settings, T.ODS_EVENTS).collect()
    assert sorted((r.event_id, r.app_id, r.user_id, r.etl_source_schema) for r in ods) == [
        ("c1", "shop", "u1", "canonical"),
        ("clickstream-3", "clickstream", "7", "msk_clickstream_lab"),
    ]
    rejected = delta_io.read_table(spark, settings, T.ODS_REJECTED).collect()
    stream_of = {
        r.etl_source_object: r.etl_source_object.split("/")[-1].split("-")[0] for r in rejected
    }
    assert sorted(
        (stream_of[r.etl_source_object], r.etl_source_line or 0, r.reason.split(":")[0])
        for r in rejected
    ) == [
        ("clickstream", 0, "unreadable object"),
        ("mystery", 1, "no adapter configured for stream mystery"),
        ("mystery", 2, "no adapter configured for stream mystery"),
        ("shop", 2, "malformed JSON"),
        ("typo", 1, "unknown adapter canonicall"),
    ]
    manifest = delta_io.read_table(spark, settings, T.INGEST_MANIFEST).collect()
    assert sorted((r.stream, r.raw_records, r.ods_rows, r.rejected_rows) for r in manifest) == [
        ("clickstream", 1, 0, 1),
        ("clickstream", 1, 1, 0),
        ("mystery", 2, 0, 2),
        ("shop", 2, 1, 1),
        ("typo", 1, 0, 1),
    ]
