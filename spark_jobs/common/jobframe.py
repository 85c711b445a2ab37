"""The command-line frame shared by every job: date arguments, logging, exit codes.

Each job module ends with ``if __name__ == "__main__": sys.exit(main())`` and its ``main`` calls
:func:`run_job`, so every job runs the same way under ``spark-submit`` and through the CLI::

    spark-submit spark_jobs/dwd/dwd_clickstream_events_di.py --ds 2011-01-04
    spark-submit spark_jobs/dwd/dwd_clickstream_events_di.py --start 2011-01-04 --end 2011-01-10
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from collections.abc import Callable, Iterator

from spark_jobs.settings import Settings, load_settings
from spark_jobs.tables import get_table

log = logging.getLogger("lakehouse")

BuildFn = Callable[..., int]


def configure_logging(level: int = logging.INFO) -> None:
    """Progress lines on stderr: ``HH:MM:SS lakehouse <message>``; py4j chatter silenced."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    logging.getLogger("py4j").setLevel(logging.ERROR)


def parse_date(text: str) -> dt.date:
    """``YYYY-MM-DD`` -> date.

    Raises:
        argparse.ArgumentTypeError: not an ISO date.
    """
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def add_date_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--ds D`` or ``--start D --end D`` (inclusive, UTC dates)."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--ds", type=parse_date, help="one day, YYYY-MM-DD (UTC)")
    group.add_argument("--start", type=parse_date, help="first day of a range (with --end)")
    parser.add_argument("--end", type=parse_date, help="last day of the range, inclusive")


def resolve_dates(args: argparse.Namespace) -> tuple[dt.date, dt.date]:
    """``(start, end)`` from parsed ``--ds``/``--start``/``--end``.

    Raises:
        SystemExit: ``--start`` without ``--end`` or ``end < start`` (argparse-style error).
    """
    if args.ds:
        return args.ds, args.ds
    if args.end is None:
        raise SystemExit("error: --start needs --end")
    if args.end < args.start:
        raise SystemExit(f"error: --end {args.end} is before --start {args.start}")
    return args.start, args.end


def days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    """Every date from ``start`` to ``end`` inclusive."""
    for offset in range((end - start).days + 1):
        yield start + dt.timedelta(days=offset)


def run_build(
    table: str,
    build: BuildFn,
    spark,
    settings: Settings,
    start: dt.date,
    end: dt.date,
    stage: bool = False,
    apps: tuple[str, ...] | None = None,
) -> int:
    """Run one table's ``build(spark, settings, start, end, stage=, apps=)`` with progress lines
    (layer, table, window, apps, rows, seconds)."""
    layer = get_table(table).layer
    which = "all apps" if apps is None else ",".join(apps) or "no apps"
    log.info("%s %-28s dt %s..%s %s building", layer.upper(), table, start, end, which)
    began = time.monotonic()
    rows = build(spark, settings, start, end, stage=stage, apps=apps)
    log.info(
        "%s %-28s dt %s..%s done rows=%d in %.1fs",
        layer.upper(),
        table,
        start,
        end,
        rows,
        time.monotonic() - began,
    )
    return rows


def run_job(table: str, build: BuildFn, argv: list[str] | None = None) -> int:
    """Entry point of a job module: parse dates, start Spark, plan, build, return the exit code.

    ``--start/--end`` (or ``--ds``) is the run range; the table's rewrite window comes from
    :func:`spark_jobs.common.plan.plan_rebuild` (the range plus late-data and session
    neighbours). ``--stage`` writes the staging twin (write-audit-publish) instead of the table.
    ``--landing`` scopes the build to that landing's apps (without it: every app).

    Returns:
        0 on success, 1 when the build raised (the error is logged with its traceback).
    """
    from spark_jobs.common.plan import plan_rebuild
    from spark_jobs.common.spark import get_spark

    parser = argparse.ArgumentParser(prog=table, description=f"Build {table} for a date range.")
    add_date_arguments(parser)
    parser.add_argument(
        "--stage", action="store_true", help="write the staging twin (publish after the check)"
    )
    parser.add_argument("--landing", help="rebuild only the apps of this landing (URI)")
    args = parser.parse_args(argv)
    start, end = resolve_dates(args)
    configure_logging()
    settings = load_settings()
    try:
        spark = get_spark(f"lakehouse:{table}", settings)
        plan = plan_rebuild(spark, settings, start, end, args.landing)
        first, last = plan.window(table)
        run_build(table, build, spark, settings, first, last, stage=args.stage, apps=plan.apps)
    except Exception:
        log.exception("%s failed for %s..%s", table, start, end)
        return 1
    return 0
