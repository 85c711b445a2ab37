"""Which ``dt`` partitions each table rebuilds for a run over ``[start, end]`` (late data included).

A run (or backfill) is given a date range ``[start, end]``: the arrival dates of the raw objects it
ingests, which for on-time data are also the event dates it processes. Objects can carry events of
earlier days (late data: an event of day D in an object written on D+2). The ingest manifest
records, per object, the event dates it added to ODS; the *affected* dates ``A`` of a run are the
event dates of all objects that arrived in ``[start, end]``. Deriving ``A`` from the manifest (not
from "what was new this time") makes every rerun compute the same plan, so reruns are idempotent.

Windows (all inclusive, UTC dates):

- core window ``W = [max(min(A ∪ {start}), start - LATE_DATA_LOOKBACK_DAYS), max(end, max A)]``;
  affected dates older than the lookback are reported in ``too_late`` (they stay in ODS; run a
  backfill over them), never dropped silently;
- ``dws_active_users_1d``: ``W`` (WAU/MAU of every following day up to the run's end included);
- session-dependent tables (DWD events and sessions, conversion, category):
  ``[W.start - 1, W.end + 1]``, the ``+1`` clipped to the last event date in ODS. A late event can
  extend a session that started the day before, and can merge into a session the events of the
  next day, so both neighbours are rewritten. Sessionisation also reads
  ``SESSION_LOOKBACK_DAYS`` of earlier events as context.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from spark_jobs import tables as T
from spark_jobs.settings import Settings

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class RebuildPlan:
    """Rewrite window per table plus the late dates left for a backfill."""

    start: dt.date
    end: dt.date
    affected_dates: tuple[dt.date, ...]
    windows: dict[str, tuple[dt.date, dt.date]]
    too_late: tuple[dt.date, ...]

    def window(self, table: str) -> tuple[dt.date, dt.date]:
        """``(first, last)`` dt the table rewrites.

        Raises:
            KeyError: the table is not rebuilt from ODS (e.g. an ODS table).
        """
        return self.windows[table]


def compute_plan(
    start: dt.date,
    end: dt.date,
    affected_dates: list[dt.date] | tuple[dt.date, ...],
    last_event_date: dt.date | None,
    settings: Settings,
) -> RebuildPlan:
    """Pure planning function (see module docstring for the rules)."""
    oldest_allowed = start - dt.timedelta(days=settings.late_data_lookback_days)
    affected = tuple(sorted(set(affected_dates)))
    too_late = tuple(d for d in affected if d < oldest_allowed)
    usable = [d for d in affected if d >= oldest_allowed]
    core_start = min([start, *usable])
    core_end = max([end, *usable])
    horizon = max(core_end, last_event_date or core_end)
    session_window = (core_start - ONE_DAY, min(core_end + ONE_DAY, horizon))
    windows = {
        T.DWD_EVENTS: session_window,
        T.DWD_SESSIONS: session_window,
        T.DWS_ACTIVE_USERS: (core_start, core_end),
        T.DWS_CONVERSION: session_window,
        T.DWS_CATEGORY: session_window,
    }
    return RebuildPlan(start, end, affected, windows, too_late)


def plan_rebuild(spark, settings: Settings, start: dt.date, end: dt.date) -> RebuildPlan:
    """Read the manifest and plan the rebuild of a run over arrival/event dates ``[start, end]``."""
    from pyspark.sql import functions as F

    from spark_jobs.common import delta_io

    manifest = delta_io.read_table(spark, settings, T.INGEST_MANIFEST)
    row = manifest.select(
        F.array_sort(
            F.array_distinct(
                F.flatten(
                    F.collect_list(F.when(F.col("dt").between(start, end), F.col("event_dates")))
                )
            )
        ).alias("affected"),
        F.max(F.array_max("event_dates")).alias("last_event_date"),
    ).first()
    affected = list(row["affected"] or []) if row else []
    return compute_plan(start, end, affected, row["last_event_date"] if row else None, settings)
