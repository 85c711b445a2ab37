"""Benchmark: the whole Online Retail year from raw objects to DWS, then one incremental day.

Prints events/s per layer and in total (a benchmark, not a timed test; figures go to the README).

    .venv/bin/python bench/benchmark.py [--workdir DIR] [--dataset online_retail]

Steps, each timed: replay all days but the last into a Firehose landing; one `run` over the
whole range (ingest -> ODS, DWD events, DWD sessions, DWS x3); replay the last day; one daily
incremental `run` for it. Spark start-up is timed separately and not counted in the layers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from spark_jobs import tables as T
from spark_jobs.common.jobframe import configure_logging, run_build
from spark_jobs.common.plan import plan_rebuild
from spark_jobs.landing.replay import replay
from spark_jobs.ods.ods_clickstream_events_di import ingest
from spark_jobs.pipeline import build_function
from spark_jobs.settings import load_settings


def timed_run(spark, settings, landing: str, start: dt.date, end: dt.date) -> list[tuple]:
    """One incremental run, step by step: ``[(step, seconds, rows)]``."""
    steps = []
    began = time.monotonic()
    result = ingest(spark, settings, landing, start, end)
    steps.append(("ods (ingest)", time.monotonic() - began, result.ods_rows + result.rejected_rows))
    plan = plan_rebuild(spark, settings, start, end)
    for table in T.DOWNSTREAM_BUILD_ORDER:
        first, last = plan.window(table)
        began = time.monotonic()
        rows = run_build(table, build_function(table), spark, settings, first, last)
        steps.append((table, time.monotonic() - began, rows))
    return steps


def print_steps(title: str, steps: list[tuple], events: int) -> None:
    """Print a table of steps with seconds, rows and events/s (events = raw records processed)."""
    print(f"\n{title}")
    print(f"{'step':32} {'seconds':>8} {'rows':>10} {'events/s':>10}")
    for name, seconds, rows in steps:
        print(f"{name:32} {seconds:8.1f} {rows:10d} {events / seconds:10.0f}")
    total = sum(s for _, s, _ in steps)
    print(f"{'total':32} {total:8.1f} {'':>10} {events / total:10.0f}")


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="where landing and lake go (default: a temp dir)")
    parser.add_argument("--dataset", default="online_retail")
    args = parser.parse_args()
    configure_logging()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="lakehouse-bench-"))
    shutil.rmtree(work / "lake", ignore_errors=True)
    shutil.rmtree(work / "landing", ignore_errors=True)
    settings = replace(load_settings(), lakehouse_root=str(work / "lake"))
    landing = str(work / "landing")

    from spark_jobs.common.spark import get_spark

    began = time.monotonic()
    spark = get_spark("lakehouse-benchmark", settings)
    startup = time.monotonic() - began

    full = replay(args.dataset, str(work / "all"), "firehose")
    last = full.last_event_date
    shutil.rmtree(work / "all")
    began = time.monotonic()
    history = replay(args.dataset, landing, "firehose", end=last - dt.timedelta(days=1))
    replay_seconds = time.monotonic() - began
    year = timed_run(spark, settings, landing, history.first_event_date, history.last_arrival_date)

    day = replay(args.dataset, landing, "firehose", start=last, end=last)
    incremental = timed_run(spark, settings, landing, last, day.last_arrival_date)

    print(
        f"\nmachine: {__import__('os').cpu_count()} cores; Spark {spark.version}; "
        f"master {spark.sparkContext.master}; startup {startup:.1f}s"
    )
    print(f"replay {history.records} records into {history.objects} objects: {replay_seconds:.1f}s")
    print_steps(
        f"{args.dataset} {history.first_event_date}..{history.last_arrival_date} "
        f"({history.records} raw records), raw objects -> DWS",
        year,
        history.records,
    )
    print_steps(f"one incremental day {last} ({day.records} raw records)", incremental, day.records)
    spark.stop()


if __name__ == "__main__":
    main()
