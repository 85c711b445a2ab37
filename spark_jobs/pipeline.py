"""The incremental run: ingest new raw objects, then rebuild every affected partition downstream.

``run_pipeline`` is what ``lakehouse run --landing URI --start D --end D`` does in one Spark
session: ingest (ODS), plan the rewrite windows from the manifest (late data included, see
:mod:`spark_jobs.common.plan`), then build DWD and DWS tables in registry order. Every step
rewrites only its own partitions, so running the same range twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from dataclasses import dataclass, field

from spark_jobs import tables as T
from spark_jobs.common.jobframe import run_build
from spark_jobs.common.plan import RebuildPlan, plan_rebuild
from spark_jobs.ods.ods_clickstream_events_di import IngestResult, ingest
from spark_jobs.settings import Settings

log = logging.getLogger("lakehouse")


def build_function(table: str):
    """The ``build(spark, settings, start, end, stage=False) -> rows`` of a table's job module."""
    return importlib.import_module(T.get_table(table).job).build


@dataclass
class RunResult:
    """What a run did: the ingest counts, the plan and rows written per table."""

    ingest: IngestResult
    plan: RebuildPlan
    rows: dict[str, int] = field(default_factory=dict)


def build_downstream(
    spark, settings: Settings, plan: RebuildPlan, stage: bool = False
) -> dict[str, int]:
    """Build every DWD/DWS table for its window and apps of ``plan``, in dependency order."""
    rows = {}
    for table in T.DOWNSTREAM_BUILD_ORDER:
        first, last = plan.window(table)
        rows[table] = run_build(
            table, build_function(table), spark, settings, first, last, stage, plan.apps
        )
    return rows


def run_pipeline(
    spark, settings: Settings, landing_uri: str, start: dt.date, end: dt.date
) -> RunResult:
    """Ingest the landing's new objects (folders of ``[start - lookback, end]``) and rebuild the
    affected partitions of the landing's apps.

    Raises:
        RuntimeError: ingest reconciliation failed (raw records != ODS + rejected).
    """
    ingested = ingest(spark, settings, landing_uri, start, end)
    plan = plan_rebuild(spark, settings, start, end, landing_uri)
    if plan.too_late:
        log.warning(
            "PLAN %d late event date(s) older than the %d-day lookback stay in ODS only: %s. "
            "Backfill them with: lakehouse run --landing %s --start %s --end %s",
            len(plan.too_late),
            settings.late_data_lookback_days,
            ", ".join(map(str, plan.too_late[:5])),
            landing_uri,
            plan.too_late[0],
            end,
        )
    log.info(
        "PLAN run %s..%s: affected event dates %s; rebuild %s",
        start,
        end,
        _span(plan.affected_dates),
        ", ".join(f"{t} {a}..{b}" for t, (a, b) in plan.windows.items()),
    )
    return RunResult(ingested, plan, build_downstream(spark, settings, plan))


def _span(dates) -> str:
    return f"{dates[0]}..{dates[-1]} ({len(dates)} days)" if dates else "none"
