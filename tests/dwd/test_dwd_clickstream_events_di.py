"""Sessionisation, dedup and cleaning of DWD events, against hand-computed expectations."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from spark_jobs.dwd.dwd_clickstream_events_di import (
    anonymise_ip,
    clean_events,
    dedupe_events,
    sessionize_events,
)

pytestmark = pytest.mark.spark

GAP, CAP = 1800, 86400
T0 = dt.datetime(2024, 3, 1, 10, 0, 0)


def _events(spark, rows):
    """rows: (event_id, user_id, seconds after T0) for app 'a'."""
    return spark.createDataFrame(
        [("a", u, e, T0 + dt.timedelta(seconds=s)) for e, u, s in rows],
        "app_id string, user_id string, event_id string, event_ts timestamp",
    )


def _sessions(spark, rows, gap=GAP, cap=CAP):
    """{event_id: (session_id, session_start_ts)} after sessionising."""
    out = sessionize_events(_events(spark, rows), gap, cap).collect()
    return {r.event_id: (r.session_id, r.session_start_ts) for r in out}


def _groups(mapping):
    """Partition of event ids into sessions, as a set of frozensets (ids themselves ignored)."""
    groups: dict[str, set] = {}
    for event_id, (session_id, _) in mapping.items():
        groups.setdefault(session_id, set()).add(event_id)
    return {frozenset(g) for g in groups.values()}


def test_gap_of_exactly_30_minutes_continues_the_session(spark):
    got = _sessions(spark, [("e1", "u", 0), ("e2", "u", 1800)])
    assert _groups(got) == {frozenset({"e1", "e2"})}


def test_gap_of_30_minutes_and_1_second_starts_a_new_session(spark):
    got = _sessions(spark, [("e1", "u", 0), ("e2", "u", 1801)])
    assert _groups(got) == {frozenset({"e1"}), frozenset({"e2"})}
    assert got["e2"][1] == T0 + dt.timedelta(seconds=1801)


def test_event_24_hours_after_session_start_starts_a_new_session(spark):
    # one event every 20 min for 25 h: never a 30-min gap, so only the 24 h cap splits it
    rows = [(f"e{i:03d}", "u", i * 1200) for i in range(76)]  # 0 .. 25 h
    got = _sessions(spark, rows)
    # by hand: the event at exactly 24 h (i = 72, 86400 s) starts session 2
    first = {f"e{i:03d}" for i in range(72)}
    second = {f"e{i:03d}" for i in range(72, 76)}
    assert _groups(got) == {frozenset(first), frozenset(second)}
    assert got["e072"][1] == T0 + dt.timedelta(hours=24)


def test_cap_applies_again_from_the_new_session_start(spark):
    # events every 25 min for 50 h: cap splits at the first event >= 24 h after each start
    rows = [(f"e{i:03d}", "u", i * 1500) for i in range(121)]  # 0 .. 50 h
    got = _sessions(spark, rows)
    starts = sorted({start for _, start in got.values()})
    # by hand: 86400/1500 = 57.6 -> event 58 (87000 s) starts session 2;
    # 87000 + 86400 = 173400 s -> first event >= that is 116 (174000 s)
    assert starts == [
        T0,
        T0 + dt.timedelta(seconds=58 * 1500),
        T0 + dt.timedelta(seconds=116 * 1500),
    ]


def test_session_crossing_midnight_keeps_one_id(spark):
    start = dt.datetime(2024, 3, 1, 23, 50)
    offset = int((start - T0).total_seconds())
    got = _sessions(spark, [("e1", "u", offset), ("e2", "u", offset + 900)])  # 00:05 next day
    assert _groups(got) == {frozenset({"e1", "e2"})}
    assert got["e2"][1] == start


def test_ties_are_ordered_by_event_id_and_ids_are_deterministic(spark):
    rows = [("b", "u", 0), ("a", "u", 0), ("c", "u", 10)]
    first, second = _sessions(spark, rows), _sessions(spark, list(reversed(rows)))
    assert first == second
    assert _groups(first) == {frozenset({"a", "b", "c"})}
    # a different first event (by id) gives a different session id
    other = _sessions(spark, [("b", "u", 0), ("c", "u", 10)])
    assert other["b"][0] != first["b"][0]


def test_users_and_apps_are_sessionised_separately_and_anonymous_events_get_no_session(spark):
    got = _sessions(spark, [("e1", "u1", 0), ("e2", "u2", 60), ("e3", None, 120)])
    assert got["e1"][0] != got["e2"][0]
    assert got["e3"] == (None, None)


def test_dedupe_keeps_the_first_delivered_copy(spark):
    ods = spark.createDataFrame(
        [
            ("e1", "obj-late", 1, dt.datetime(2024, 3, 3)),
            ("e1", "obj-early", 7, dt.datetime(2024, 3, 1)),
            ("e2", "obj-b", 2, dt.datetime(2024, 3, 1)),
            ("e2", "obj-a", 5, dt.datetime(2024, 3, 1)),
        ],
        "event_id string, etl_source_object string, etl_source_line int, etl_ingest_ts timestamp",
    )
    kept = {(r.event_id, r.etl_source_object) for r in dedupe_events(ods).collect()}
    assert kept == {("e1", "obj-early"), ("e2", "obj-a")}


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        (" 10.1.2.3 ", "10.1.2.0"),
        ("2001:db8::1", None),
        ("not-an-ip", None),
        (None, None),
    ],
)
def test_ip_is_anonymised_by_zeroing_the_last_ipv4_octet(spark, ip, expected):
    df = spark.createDataFrame([(ip,)], "ip string")
    assert df.select(anonymise_ip("ip").alias("x")).first().x == expected


def test_clean_turns_blank_user_into_null(spark):
    df = spark.createDataFrame([(" 42 ", "1.2.3.4"), ("  ", None)], "user_id string, ip string")
    got = clean_events(df).select("user_id", F.col("ip")).collect()
    assert [(r.user_id, r.ip) for r in got] == [("42", "1.2.3.0"), (None, None)]


def test_sessions_equal_the_rule_applied_event_by_event_in_python(spark):
    """Random users with short runs, 24 h runs (cut by the cap), timestamp ties and anonymous
    events; every column passes through. Expected: the rule applied in plain Python."""
    import hashlib
    import random

    rnd = random.Random(7)
    rows = []
    for u in range(12):
        user = None if u == 11 else f"u{u}"
        app = "a" if u % 2 else "b"
        t = rnd.randrange(0, 3600)
        for i in range(80 if u < 2 else rnd.randrange(1, 90)):
            # mostly short steps, a few 31-min gaps; users 0 and 1 step every 20 min for > 24 h
            step = 1200 if u < 2 else rnd.choice([0, 5, 60, 600, 1800, 1801, 1860])
            t += step
            rows.append(
                (app, user, f"e{u:02d}-{i:03d}", T0 + dt.timedelta(seconds=t), {"i": str(i)})
            )
    events = spark.createDataFrame(
        rows,
        "app_id string, user_id string, event_id string, event_ts timestamp, "
        "attributes map<string,string>",
    )
    got = {r.event_id: r for r in sessionize_events(events, GAP, CAP).collect()}

    expected = {}
    by_user: dict[tuple, list] = {}
    for app, user, event_id, ts, _ in rows:
        if user is None:
            expected[event_id] = (None, None)
        else:
            by_user.setdefault((app, user), []).append((ts, event_id))
    for (app, user), evs in by_user.items():
        start = last = first = None
        for ts, event_id in sorted(evs):
            gap = None if last is None else (ts - last).total_seconds()
            if start is None or gap > GAP or (ts - start).total_seconds() >= CAP:
                start, first = ts, event_id
            last = ts
            digest = hashlib.sha256(f"{app}|{user}|{first}".encode()).hexdigest()[:32]
            expected[event_id] = (digest, start)
    assert {e: (r.session_id, r.session_start_ts) for e, r in got.items()} == expected
    assert {e: r.attributes for e, r in got.items()} == {r[2]: r[4] for r in rows}
    # users 0 and 1: 80 events 20 min apart span 26 h 20 min, so the cap cuts them in two
    assert len({got[f"e00-{i:03d}"].session_id for i in range(80)}) == 2
    assert len({s for s, _ in expected.values() if s}) > 20
