"""The first-seen state: after every DWD events publish it equals the first dates over all of DWD,
computed here in plain Python from the rows written; a DWD write that skipped the refresh is
detected, never read as current."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from pyspark.sql import functions as F

from spark_jobs import tables as T
from spark_jobs.common import delta_io, first_seen
from spark_jobs.common.schemas import SCHEMAS

pytestmark = pytest.mark.spark

D = dt.date


def _dwd(spark, rows):
    """DWD events rows from ``(event_id, app_id, user_id, day)``; other columns null/constant."""
    given = spark.createDataFrame(rows, "event_id string, app_id string, user_id string, dt date")
    filled = {
        "event_ts": F.to_timestamp(F.col("dt")),
        "event_type": F.lit("page_view"),
        "etl_source_object": F.lit("test"),
        "etl_ingest_ts": F.current_timestamp(),
    }
    columns = [
        F.col(f.name)
        if f.name in given.columns
        else filled.get(f.name, F.lit(None)).cast(f.dataType).alias(f.name)
        for f in SCHEMAS[T.DWD_EVENTS].fields
    ]
    return given.select(columns)


def _publish(spark, settings, rows, start, end, apps=None):
    """Replace DWD dt ``[start, end]`` (of ``apps``) by ``rows``; return the written rows."""
    delta_io.replace_partitions(_dwd(spark, rows), settings, T.DWD_EVENTS, start, end, apps=apps)


def _expected(dwd_rows):
    """First dates in plain Python: {(app, user or None): min day}."""
    out: dict[tuple[str, str | None], dt.date] = {}
    for _, app, user, day in dwd_rows:
        for key in ((app, None), (app, user)) if user is not None else ((app, None),):
            out[key] = min(out.get(key, day), day)
    return out


def _state(spark, settings):
    rows = spark.read.format("delta").load(first_seen.state_path(settings)).collect()
    return {(r.app_id, r.user_id): r.first_dt for r in rows}


def _served(spark, settings):
    return {
        (r.app_id, r.user_id): r.first_dt
        for r in first_seen.read_first_seen(spark, settings).collect()
    }


def test_every_publish_leaves_the_state_equal_to_the_whole_history(spark, settings):
    live: dict[dt.date, list] = {}  # what DWD holds, per day, as this test writes it

    def publish(day_rows, start, end, apps=None):
        for day in [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]:
            kept = [r for r in live.get(day, []) if apps is not None and r[1] not in apps]
            live[day] = kept + [r for r in day_rows if r[3] == day]
        _publish(spark, settings, day_rows, start, end, apps)
        assert _state(spark, settings) == _expected([r for rows in live.values() for r in rows])

    # day 1..3 of two apps; anonymous events count for the app's first date only
    publish(
        [
            ("e1", "a", "u1", D(2024, 1, 1)),
            ("e2", "a", "u2", D(2024, 1, 2)),
            ("e3", "a", None, D(2024, 1, 1)),
            ("e4", "b", None, D(2024, 1, 3)),
            ("e5", "a", "u2", D(2024, 1, 3)),
        ],
        D(2024, 1, 1),
        D(2024, 1, 3),
    )
    assert _state(spark, settings)[("b", None)] == D(2024, 1, 3)
    assert ("b", "u1") not in _state(spark, settings)
    # a later day: u3 is new, u1 is not
    publish(
        [("e6", "a", "u1", D(2024, 1, 5)), ("e7", "a", "u3", D(2024, 1, 5))], *[D(2024, 1, 5)] * 2
    )
    # a late event on day 2 moves u3 back from the 5th to the 2nd (an incremental MERGE)
    publish(
        [("e2", "a", "u2", D(2024, 1, 2)), ("e8", "a", "u3", D(2024, 1, 2))], *[D(2024, 1, 2)] * 2
    )
    assert _state(spark, settings)[("a", "u3")] == D(2024, 1, 2)
    # day 1 rewritten without u1 and without the anonymous event: u1's first date moves to the
    # 5th (found after the window), app a's to the 2nd
    publish([], D(2024, 1, 1), D(2024, 1, 1))
    assert _state(spark, settings)[("a", "u1")] == D(2024, 1, 5)
    assert _state(spark, settings)[("a", None)] == D(2024, 1, 2)
    # only app b rewritten on day 3 (app a's rows stay); then b's only day emptied: b is gone
    publish([("e9", "b", "v1", D(2024, 1, 3))], D(2024, 1, 3), D(2024, 1, 3), apps=("b",))
    assert _state(spark, settings)[("b", "v1")] == D(2024, 1, 3)
    publish([], D(2024, 1, 3), D(2024, 1, 3), apps=("b",))
    assert not any(app == "b" for app, _ in _state(spark, settings))
    assert _served(spark, settings) == _state(spark, settings)  # the state is current


def test_a_dwd_write_that_skipped_the_refresh_is_not_trusted(spark, settings, caplog):
    rows = [("e1", "a", "u1", D(2024, 1, 2))]
    _publish(spark, settings, rows, D(2024, 1, 2), D(2024, 1, 2))
    assert _state(spark, settings) == {("a", None): D(2024, 1, 2), ("a", "u1"): D(2024, 1, 2)}
    # a writer outside delta_io (no refresh): u1 now has an event on the 1st
    path = delta_io.table_path(settings, T.DWD_EVENTS)
    _dwd(spark, [("e0", "a", "u1", D(2024, 1, 1))]).write.format("delta").mode("append").save(path)
    with caplog.at_level(logging.WARNING, logger="lakehouse"):
        served = _served(spark, settings)
    assert served == {("a", None): D(2024, 1, 1), ("a", "u1"): D(2024, 1, 1)}
    assert "first-seen state is missing or behind" in caplog.text
    # the next publish sees the state was behind and rebuilds it in full
    _publish(spark, settings, [("e5", "a", "u2", D(2024, 1, 5))], D(2024, 1, 5), D(2024, 1, 5))
    assert _state(spark, settings) == {
        ("a", None): D(2024, 1, 1),
        ("a", "u1"): D(2024, 1, 1),
        ("a", "u2"): D(2024, 1, 5),
    }


def test_compaction_of_dwd_keeps_the_state_current(spark, settings, caplog):
    from delta.tables import DeltaTable

    # two apps written separately into one partition: two files there, so OPTIMIZE commits
    day = D(2024, 1, 1)
    _publish(spark, settings, [("e1", "a", "u1", day)], day, day, apps=("a",))
    _publish(spark, settings, [("e2", "b", "v1", day)], day, day, apps=("b",))
    dwd = DeltaTable.forPath(spark, delta_io.table_path(settings, T.DWD_EVENTS))
    dwd.optimize().executeCompaction()
    assert dwd.history(1).select("operation").first()[0] == "OPTIMIZE"
    caplog.clear()  # the publishes' own INFO lines
    with caplog.at_level(logging.WARNING, logger="lakehouse"):
        assert _served(spark, settings) == {
            ("a", None): day,
            ("a", "u1"): day,
            ("b", None): day,
            ("b", "v1"): day,
        }
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_a_first_publish_without_events_leaves_an_empty_trusted_state(spark, settings):
    """A day without events creates DWD with no rows; the state is rebuilt from nothing (an
    empty write: Delta records no row count for it) and still trusted, then filled incrementally."""
    _publish(spark, settings, [], D(2024, 3, 1), D(2024, 3, 1))
    assert _state(spark, settings) == {}
    assert _served(spark, settings) == {}
    rows = [("e1", "a", "u1", D(2024, 3, 2))]
    _publish(spark, settings, rows, D(2024, 3, 2), D(2024, 3, 2))
    assert (
        _state(spark, settings)
        == _expected(rows)
        == {("a", None): D(2024, 3, 2), ("a", "u1"): D(2024, 3, 2)}
    )
