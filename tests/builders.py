"""Small DataFrame builders shared by tests (hand-made rows, no code under test)."""

from __future__ import annotations

import datetime as dt

T0 = dt.datetime(2024, 1, 1, 12, 0)


def session_events(spark, sessions: dict[str, list[tuple[int, str]]]):
    """Sessionised events of app ``a``: ``{session_id: [(seconds after T0, event_type)]}``, one
    user per session, all sessions starting at ``T0``."""
    rows = []
    for sid, evs in sessions.items():
        for n, (sec, kind) in enumerate(evs):
            rows.append(
                (sid, T0, "a", f"user-{sid}", f"{sid}-{n}", T0 + dt.timedelta(seconds=sec), kind)
            )
    return spark.createDataFrame(
        rows,
        "session_id string, session_start_ts timestamp, app_id string, user_id string, "
        "event_id string, event_ts timestamp, event_type string",
    )
