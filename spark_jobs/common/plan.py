"""Which ``dt`` partitions, and which apps, each table rebuilds for a run over ``[start, end]``.

A run (or backfill) is given a date range ``[start, end]`` and a landing. It ingests the objects
of the landing's folders of ``[start - ARRIVAL_LOOKBACK_DAYS, end]`` that the manifest does not
know yet (delivery services write objects into folders whose hour has passed). Objects can carry
events of earlier days (late data: an event of day D in an object written on D+2). The ingest
manifest records, per object, the event dates and app ids it added to ODS; the *affected* dates
``A`` of a run are the event dates of all the landing's objects in those folders. Deriving ``A``
from the manifest (not from "what was new this time") makes every rerun compute the same plan, so
reruns are idempotent, also after a run that died between ingest and build.

Apps: a run rebuilds only the apps of its landing (the ``app_ids`` of the landing's manifest
rows); other landings' apps are never touched. Without a landing, every app is rebuilt.

Windows (all inclusive, UTC dates):

- core window ``W = [max(min(A ∪ {start}), start - LATE_DATA_LOOKBACK_DAYS), max(end, max A)]``;
  affected dates older than the lookback are reported in ``too_late`` (they stay in ODS; run a
  backfill over them), never dropped silently;
- session-dependent detail (DWD events and sessions, category): ``[W.start - 1, W.end + 2]``,
  the end clipped to the last event date of the landing. A late event can extend a session that
  started the day before, can merge into a session the events of the next day, and moves the
  24 h cap cut points of a continuous run of activity (up to 24 h after it, so into a second
  day); sessionisation also reads ``SESSION_LOOKBACK_DAYS`` of earlier events as context;
- rolling and first-seen metrics (:data:`ROLLING_TABLES`: ``dws_active_users_1d``,
  ``dws_retention_1d``): ``[W.start, H]`` where the horizon ``H`` is the last date the apps were
  processed to (the latest ``max dt`` of their rows in those tables) or ``W.end``, whichever is
  later. New events on day D change WAU of D..D+6, MAU of D..D+29 and, when they move a user's
  first-seen date, ``new_users`` of a day that can be months later, so every later day is
  rewritten: any order of runs ends where one full-range run ends. Retention (``dt`` = activity
  date, a cohort C's cells on C..C+30) has the same window: new events on D change the cells
  whose activity date is D, and a first-seen date moving from F to D < F moves the user from
  cohort F to cohort D, which changes cells of both cohorts, all dated D or later; a cell dated
  before ``W.start`` has its cohort and its activity day before every new event, so it cannot
  change. Taking ``H`` over both tables keeps it right when one of them was published further
  than the other (a failed check of the other one);
- the day spine of ``dws_conversion_1d`` (days without sessions included, from the app's first
  event date): ``[W.start - 1, H']`` with ``H'`` the later of ``H`` and the detail window's end,
  so that rows exist for every day an earlier first event date adds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from spark_jobs import tables as T
from spark_jobs.settings import Settings, normalise_uri

ONE_DAY = dt.timedelta(days=1)
#: tables rewritten from the core window's start up to the horizon (see the module docstring)
ROLLING_TABLES: tuple[str, ...] = (T.DWS_ACTIVE_USERS, T.DWS_RETENTION)
#: days after the core window that session detail rewrites (see the module docstring)
SESSION_TAIL_DAYS = 2


@dataclass(frozen=True)
class RebuildPlan:
    """Rewrite window per table, the apps to rebuild, plus the late dates left for a backfill.

    ``apps`` is None for "every app" (no landing given), else the landing's app ids (possibly
    empty: nothing of the landing has been ingested yet, so nothing is rebuilt).
    """

    start: dt.date
    end: dt.date
    affected_dates: tuple[dt.date, ...]
    windows: dict[str, tuple[dt.date, dt.date]]
    too_late: tuple[dt.date, ...]
    apps: tuple[str, ...] | None = None

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
    apps: tuple[str, ...] | None = None,
    last_processed_date: dt.date | None = None,
) -> RebuildPlan:
    """Pure planning function (see module docstring for the rules).

    Args:
        start, end: the run's dates.
        affected_dates: event dates of the run's objects (manifest ``event_dates``).
        last_event_date: the last event date of the landing (clips the detail window).
        settings: the lookbacks.
        apps: the apps rebuilt (None: all).
        last_processed_date: the last ``dt`` of the apps in :data:`ROLLING_TABLES` (None: none).
    """
    oldest_allowed = start - dt.timedelta(days=settings.late_data_lookback_days)
    affected = tuple(sorted(set(affected_dates)))
    too_late = tuple(d for d in affected if d < oldest_allowed)
    usable = [d for d in affected if d >= oldest_allowed]
    core_start = min([start, *usable])
    core_end = max([end, *usable])
    horizon = max(core_end, last_event_date or core_end)
    detail = (core_start - ONE_DAY, min(core_end + SESSION_TAIL_DAYS * ONE_DAY, horizon))
    rolling_end = max(core_end, last_processed_date or core_end)
    windows = {
        T.DWD_EVENTS: detail,
        T.DWD_SESSIONS: detail,
        **{table: (core_start, rolling_end) for table in ROLLING_TABLES},
        T.DWS_CONVERSION: (detail[0], max(rolling_end, detail[1])),
        T.DWS_CATEGORY: detail,
    }
    return RebuildPlan(start, end, affected, windows, too_late, apps)


def landing_objects(manifest, landing_uri: str | None):
    """The rows of ``manifest`` (``etl_ingest_manifest`` columns) whose ``etl_source_object`` lies
    under ``landing_uri`` (a local path or ``s3a://`` URI); every row when it is None."""
    from pyspark.sql import functions as F

    if landing_uri is None:
        return manifest
    root = normalise_uri(landing_uri).rstrip("/") + "/"
    # listed objects are Hadoop URIs (file:/abs/..., s3a://...); compare on the path part
    path = F.regexp_replace("etl_source_object", r"^file:(//)?", "")
    return manifest.where(path.startswith(root) | F.col("etl_source_object").startswith(root))


def plan_rebuild(
    spark, settings: Settings, start: dt.date, end: dt.date, landing_uri: str | None = None
) -> RebuildPlan:
    """Read the manifest (and the rolling tables' horizon) and plan a run over ``[start, end]``.

    Args:
        landing_uri: the landing being run; its apps are the ones rebuilt (None: all apps).
    """
    from functools import reduce

    from pyspark.sql import DataFrame
    from pyspark.sql import functions as F

    from spark_jobs.common import delta_io

    first = settings.first_listed_date(start)
    manifest = landing_objects(delta_io.read_table(spark, settings, T.INGEST_MANIFEST), landing_uri)
    row = manifest.select(
        F.array_sort(
            F.array_distinct(
                F.flatten(
                    F.collect_list(F.when(F.col("dt").between(first, end), F.col("event_dates")))
                )
            )
        ).alias("affected"),
        F.max(F.array_max("event_dates")).alias("last_event_date"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("app_ids")))).alias("apps"),
    ).first()  # a global aggregate: always one row, nulls over an empty manifest
    affected = list(row["affected"] or [])
    apps = None if landing_uri is None else tuple(row["apps"] or [])
    processed = [
        delta_io.read_table(spark, settings, table, apps=apps).select("dt")
        for table in ROLLING_TABLES
    ]
    last_processed = reduce(DataFrame.unionByName, processed).agg(F.max("dt")).first()[0]
    return compute_plan(
        start, end, affected, row["last_event_date"], settings, apps, last_processed
    )
