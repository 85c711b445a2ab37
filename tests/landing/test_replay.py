"""Replay of the real datasets into landing objects (mapping rules checked on known rows)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import tracemalloc
import uuid
from pathlib import Path

from spark_jobs.landing import replay as replay_module
from spark_jobs.landing.layouts import parse_object_key
from spark_jobs.landing.replay import (
    EVENT_ID_NAMESPACE,
    arrival_time,
    dataset_events,
    event_id_for,
    online_retail_records,
    replay,
)
from tests.conftest import DATA_DIR


def test_online_retail_mapping_of_known_rows():
    events = list(
        dataset_events("online_retail", DATA_DIR, dt.date(2010, 12, 1), dt.date(2010, 12, 1))
    )
    first = events[0]
    # source line 2 of 2010-12-01.csv.gz:
    # 536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850.0,UK
    assert first["event_id"] == event_id_for("online_retail", "2010-12-01.csv.gz", 2)
    assert first["event_ts"] == "2010-12-01T08:26:00.000Z"  # London = UTC in December
    assert (first["user_id"], first["event_type"], first["product_id"]) == (
        "17850",
        "purchase",
        "85123A",
    )
    assert (first["price"], first["quantity"], first["category"]) == (2.55, 6, None)
    cancelled = [e for e in events if e["attributes"]["invoice_no"].startswith("C")]
    assert cancelled and all(e["event_type"] == "order_cancelled" for e in cancelled)
    guests = [e for e in events if e["user_id"] is None]
    assert guests  # empty CustomerID -> null user


def test_online_retail_summer_time_is_converted_to_utc():
    events = list(
        dataset_events("online_retail", DATA_DIR, dt.date(2011, 6, 1), dt.date(2011, 6, 1))
    )
    with gzip.open(DATA_DIR / "online_retail" / "2011-06-01.csv.gz", "rt") as handle:
        handle.readline()
        first_local = handle.readline().split(",")[4]
    # BST = UTC+1: the first local time is one hour later than its UTC event time
    utc = dt.datetime.fromisoformat(events[0]["event_ts"].replace("Z", ""))
    assert utc + dt.timedelta(hours=1) == dt.datetime.fromisoformat(first_local)


def test_replay_is_deterministic_and_keeps_every_line(tmp_path):
    first = replay("rees46", str(tmp_path / "a"), "kafka")
    second = replay("rees46", str(tmp_path / "b"), "kafka")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.gz"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.gz"))
    assert files_a == files_b
    assert all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a
    )
    with gzip.open(DATA_DIR / "rees46" / "2019-Oct_head17k.csv.gz", "rt") as handle:
        source_lines = sum(1 for _ in handle) - 1
    assert first.records == second.records == source_lines == 17434
    records = []
    for f in files_a:
        assert parse_object_key(str(f)).layout == "kafka"
        records += [json.loads(x) for x in gzip.open(tmp_path / "a" / f, "rt")]
    assert len(records) == 17434
    assert len({r["event_id"] for r in records}) == 17434  # duplicates stay two events


def test_online_retail_bad_debt_adjustments_are_other_events_named_adjustment():
    day = dt.date(2011, 8, 12)
    events = list(dataset_events("online_retail", DATA_DIR, day, day))
    # source lines of 2011-08-12.csv.gz (by hand): A563185 +11062.06, A563186/7 -11062.06
    adjustments = {
        e["attributes"]["invoice_no"]: (e["event_type"], e["event_name"], e["price"])
        for e in events
        if e["attributes"]["invoice_no"].startswith("A")
    }
    assert adjustments == {
        "A563185": ("other", "adjustment", 11062.06),
        "A563186": ("other", "adjustment", -11062.06),
        "A563187": ("other", "adjustment", -11062.06),
    }


def test_event_ids_are_the_uuid5_of_dataset_file_and_line():
    for dataset, name, line in [("online_retail", "2010-12-01.csv.gz", 2), ("otto", "x", 10**6)]:
        expected = str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{dataset}/{name}/{line}"))
        assert event_id_for(dataset, name, line) == expected


def test_online_retail_json_is_what_the_json_encoder_writes_for_the_event():
    # the template writer must give json.dumps's bytes for the parsed event (2011-08-12 has the
    # bad-debt adjustments with negative prices, 2010-12-01 guests without a CustomerID)
    for day in ("2010-12-01", "2011-08-12"):
        records = list(online_retail_records(DATA_DIR / "online_retail" / f"{day}.csv.gz"))
        assert records
        for event_id, event_ts, user_id, line in records:
            event = json.loads(line)
            assert line == json.dumps(event, separators=(",", ":"))
            assert (event["event_id"], event["event_ts"], event["user_id"]) == (
                event_id,
                event_ts,
                user_id,
            )


def _objects(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.gz"))}


def test_worker_processes_write_the_same_objects_as_one_process(tmp_path, monkeypatch):
    monkeypatch.setattr(replay_module, "PARALLEL_MIN_SOURCE_BYTES", 0)
    start, end = dt.date(2011, 3, 26), dt.date(2011, 3, 28)  # across the switch to summer time
    one = replay("online_retail", str(tmp_path / "one"), "kafka", start, end, DATA_DIR, workers=1)
    two = replay("online_retail", str(tmp_path / "two"), "kafka", start, end, DATA_DIR, workers=2)
    assert one == two
    assert _objects(tmp_path / "one") == _objects(tmp_path / "two")


def test_replay_memory_is_bounded_by_an_arrival_hour_not_by_the_dataset(tmp_path, monkeypatch):
    from bench.scaled_input import build_scaled_online_retail

    first, last = dt.date(2011, 11, 1), dt.date(2011, 11, 7)  # six trading days
    scaled = build_scaled_online_retail(DATA_DIR, tmp_path / "data", 4, first, last)
    monkeypatch.setattr(replay_module, "SPILL_BUFFER_BYTES", 1 << 20)
    tracemalloc.start()
    summary = replay(
        "online_retail", str(tmp_path / "landing"), "firehose", data_dir=scaled.data_dir, workers=1
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    bodies = [gzip.decompress(b) for b in _objects(tmp_path / "landing").values()]
    lines = [line for body in bodies for line in body.splitlines()]
    with_copies = 0
    for path in (tmp_path / "data" / "online_retail").glob("*.csv.gz"):
        with gzip.open(path, "rt") as handle:
            with_copies += sum(1 for _ in handle) - 1
    assert len(lines) == summary.records == with_copies > 15_000
    total = sum(len(b) for b in bodies)
    largest_hour = max(len(b) for b in bodies)
    # peak: the 1 MiB spill buffer plus one arrival hour (sorted, and its object body), far
    # below the replayed records
    assert peak < 1.5 * 2**20 + 4 * largest_hour
    assert peak < total / 3
    for body in bodies:  # each object in arrival order
        arrivals = [arrival_time(json.loads(x)) for x in body.splitlines()]
        assert arrivals == sorted(arrivals)
