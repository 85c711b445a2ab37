"""Replay of the real datasets into landing objects (mapping rules checked on known rows)."""

from __future__ import annotations

import datetime as dt
import gzip
import json

from spark_jobs.landing.layouts import parse_object_key
from spark_jobs.landing.replay import dataset_events, event_id_for, replay
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
