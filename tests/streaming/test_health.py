"""``lakehouse stream-health``: the age of each streaming query's last committed micro-batch."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace

import pytest

from spark_jobs.settings import Settings
from spark_jobs.streaming.health import stale_queries

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def commit(root, query: str, batch: int, seconds_ago: float) -> None:
    folder = root / "rt" / "_checkpoints" / query / "commits"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / str(batch)
    path.write_text("v1\n{}\n")
    when = (NOW - dt.timedelta(seconds=seconds_ago)).timestamp()
    os.utime(path, (when, when))
    (folder / f".{batch}.crc").write_text("")  # Spark's checksum files are ignored


def test_fresh_commits_pass_and_old_or_missing_ones_are_stale(tmp_path):
    settings = replace(Settings(), lakehouse_root=str(tmp_path))
    commit(tmp_path, "rt_trade_orders_1m", 0, 900)
    commit(tmp_path, "rt_trade_orders_1m", 1, 60)  # the last batch counts
    commit(tmp_path, "rt_error_events", 4, 301)
    queries = ("rt_trade_orders_1m", "rt_error_events", "rt_warning_alerts")
    assert stale_queries(settings, 300, queries, NOW) == [
        "rt_error_events: last batch 4 committed 301 s ago (limit 300 s)",
        "rt_warning_alerts: no committed micro-batch in its checkpoint",
    ]
    assert stale_queries(settings, 400, queries[:2], NOW) == []


def test_health_knows_every_query_of_the_job():
    from spark_jobs.streaming.health import STREAM_QUERIES
    from spark_jobs.streaming.job import QUERY_NAMES

    assert STREAM_QUERIES == QUERY_NAMES


def test_queries_are_chosen_by_their_names_or_their_tables():
    from spark_jobs.streaming.job import query_names

    # the three lab tables come from one session query
    assert query_names(["raw_archive", "rt_departments_agg", "rt_user_sessions_checkout"]) == [
        "clickstream_sessions",
        "raw_archive",
    ]
    assert query_names(["rt_trade_orders_1m"]) == ["rt_trade_orders_1m"]
    with pytest.raises(ValueError, match=r"unknown queries \['rt_nothing'\]"):
        query_names(["rt_nothing"])
