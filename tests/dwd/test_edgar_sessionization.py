"""A peer's boundary case: the SEC EDGAR sessionization test (2-second inactivity period).

Its rule matches ours: a session ends when the gap between two requests of the same ip is greater
than the inactivity period (a gap equal to it continues the session); its duration counts both
ends (last - first + 1 s). Source: InsightDataScience/edgar-analytics, tests/test_1 (see
data/README.md).
"""

from __future__ import annotations

import csv
import datetime as dt

import pytest

from spark_jobs.dwd.dwd_clickstream_events_di import sessionize_events
from tests.conftest import DATA_DIR

pytestmark = pytest.mark.spark

EDGAR = DATA_DIR / "edgar_sessionization"


def test_sessions_match_the_published_expected_output(spark):
    gap = int((EDGAR / "input" / "inactivity_period.txt").read_text().strip())
    with (EDGAR / "input" / "log.csv").open() as handle:
        requests = [
            ("edgar", r["ip"], f"r{n:03d}", dt.datetime.fromisoformat(f"{r['date']} {r['time']}"))
            for n, r in enumerate(csv.DictReader(handle))
        ]
    events = spark.createDataFrame(
        requests, "app_id string, user_id string, event_id string, event_ts timestamp"
    )
    rows = sessionize_events(events, gap, 86400).collect()
    sessions: dict[str, list] = {}
    for r in rows:
        sessions.setdefault(r.session_id, []).append(r)
    got = sorted(
        (
            s[0].user_id,
            min(r.event_ts for r in s),
            max(r.event_ts for r in s),
            int((max(r.event_ts for r in s) - min(r.event_ts for r in s)).total_seconds()) + 1,
            len(s),
        )
        for s in sessions.values()
    )
    with (EDGAR / "output" / "sessionization.txt").open() as handle:
        expected = sorted(
            (
                ip,
                dt.datetime.fromisoformat(first),
                dt.datetime.fromisoformat(last),
                int(duration),
                int(count),
            )
            for ip, first, last, duration, count in csv.reader(handle)
        )
    assert got == expected
