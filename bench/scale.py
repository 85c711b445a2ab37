"""Scale benchmark (issue 9): the Online Retail year x N, raw objects -> DWS, against DuckDB.

    .venv/bin/python bench/scale.py [--scale 20] [--workdir DIR] [--reuse-input]

Steps, each timed and printed:

1. build the input: every Online Retail row copied ``--scale`` times, with disjoint customer ids
   and times shifted by k minutes (:mod:`bench.scaled_input`; real rows, every quirk kept);
2. ``replay`` it, all days but the last, to a Firehose landing (records/s, peak memory);
3. one project run over the whole range with the defaults (a fresh ``get_spark`` session: driver
   memory and shuffle partitions derived from the machine): ingest -> ODS, then every DWD/DWS
   table for its planned window, as ``run_pipeline`` does, timed per layer;
4. on the same landing objects, the independent DuckDB implementation of the same DWS work
   (:mod:`bench.duckdb_dws`), timed per step; both times per layer, their ratio, and whether the
   DWS rows are equal (they must be: that makes the comparison honest);
5. the last day, replayed into the landing and run incrementally after 12 months of history, and
   the same day after 1 month of history (its own landing and lake: the 30 days before it); the
   ratio of the two incremental runs (target <= 1.3);
6. peak memory per phase: the bench's own Python process (RSS; DuckDB runs inside it), the
   driver JVM (RSS and sampled heap used) and the PySpark Python workers (RSS, summed).

Spark start-up is timed separately and not counted in the layers. The machine's load average is
printed with the figures: on a shared machine the times are not comparable without it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:  # `python bench/scale.py` from a checkout
    sys.path.insert(0, str(PROJECT_DIR))

from bench.duckdb_dws import LAYERS, run_duckdb_dws  # noqa: E402
from bench.scaled_input import build_scaled_online_retail  # noqa: E402

MIB = 1024 * 1024
LAST_DAY = dt.date(2011, 12, 9)  # the Online Retail year's last event date (UTC)
MONTH_DAYS = 30
DWS_COLUMNS = {
    "dws_active_users_1d": "app_id, dt, events, dau, wau, mau, new_users, dau_mau_ratio",
    "dws_conversion_1d": "app_id, dt, sessions, product_view_sessions, add_to_cart_sessions, "
    "purchase_sessions, sessions_with_purchase, session_conversion_rate",
    "dws_category_1d": "app_id, dt, category, product_views, add_to_carts, purchases, revenue, "
    "sessions",
}
KEY_COLUMNS = {"dws_active_users_1d": 2, "dws_conversion_1d": 2, "dws_category_1d": 3}


class MemoryPeaks:
    """Samples, every ``interval`` s in a thread, the RSS of this process, of the driver JVM
    (the ``java`` child) and of the PySpark workers (its Python children, summed), and the
    JVM's heap used (through py4j, when a session is given). Peaks in bytes; ``reset()`` starts
    a new phase."""

    def __init__(self, interval: float = 0.5):
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self.interval = interval
        self.spark = None
        self.reset()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        """Forget the peaks so far (a new phase)."""
        self.python = self.jvm = self.workers = self.heap = self.tree = 0

    def _sample(self) -> None:
        psutil = self._psutil
        python = self._me.memory_info().rss
        jvm = workers = tree = 0
        for child in self._me.children(recursive=True):
            try:
                rss = child.memory_info().rss
                name = child.name()
            except psutil.Error:
                continue
            tree += rss
            if name == "java":
                jvm += rss
            elif "python" in name:
                workers += rss
        self.python = max(self.python, python)
        self.jvm = max(self.jvm, jvm)
        self.workers = max(self.workers, workers)
        self.tree = max(self.tree, python + tree)
        if self.spark is not None:
            try:
                bean = self.spark._jvm.java.lang.management.ManagementFactory.getMemoryMXBean()
                self.heap = max(self.heap, int(bean.getHeapMemoryUsage().getUsed()))
            except Exception:  # the session is stopping
                pass

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sample()
            except Exception:
                pass
            self._stop.wait(self.interval)

    def snapshot(self) -> dict[str, float]:
        """Peaks since the last reset, MiB."""
        self._sample()
        return {
            "python_rss": self.python / MIB,
            "jvm_rss": self.jvm / MIB,
            "jvm_heap_used": self.heap / MIB,
            "pyspark_workers_rss": self.workers / MIB,
            "process_tree_rss": self.tree / MIB,
        }

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()


@dataclass
class Phase:
    """One timed phase: name, seconds, records, peak memory (MiB) and the load average after."""

    name: str
    seconds: float
    records: int
    memory: dict[str, float]
    load: tuple[float, float, float]


def timed_run(spark, settings, landing: str, start: dt.date, end: dt.date) -> list[tuple]:
    """One ``run_pipeline``, step by step (ingest, plan, every DWD/DWS build of its window and
    the landing's apps): ``[(step, seconds, rows)]``."""
    from spark_jobs import tables as T
    from spark_jobs.common.jobframe import run_build
    from spark_jobs.common.plan import plan_rebuild
    from spark_jobs.ods.ods_clickstream_events_di import ingest
    from spark_jobs.pipeline import build_function

    steps = []
    began = time.monotonic()
    result = ingest(spark, settings, landing, start, end)
    plan = plan_rebuild(spark, settings, start, end, landing)
    steps.append(("ods (ingest)", time.monotonic() - began, result.ods_rows + result.rejected_rows))
    for table in T.DOWNSTREAM_BUILD_ORDER:
        first, last = plan.window(table)
        began = time.monotonic()
        build = build_function(table)
        rows = run_build(table, build, spark, settings, first, last, False, plan.apps)
        steps.append((table, time.monotonic() - began, rows))
    return steps


def count_lines(spark, settings, landing: str, first: dt.date, reader: str) -> int:
    """Lines of every object of the landing, read as ingest reads them (``reader="ingest"``:
    ``binaryFile`` + the Arrow line splitter in Python workers) or by Spark's own text reader
    (``"text"``: JVM only, no line numbers, no per-object errors). Timing both shows whether the
    Python left in ingest is its bottleneck."""
    from pyspark.sql import functions as F

    from spark_jobs.ods.ods_clickstream_events_di import list_landing_objects, read_raw_lines

    objects = [uri for uri, _ in list_landing_objects(spark, landing, first, LAST_DAY)]
    if reader == "ingest":
        adapters = {"online_retail": settings.adapter_for("online_retail")}
        lines = read_raw_lines(spark, objects, adapters)
    else:
        lines = spark.read.option("lineSep", "\n").text(objects).where(F.trim("value") != "")
    return int(lines.agg(F.count("*")).first()[0])


def project_dws_rows(spark, settings, end: dt.date) -> dict[str, list[tuple]]:
    """The project's DWS rows up to ``end`` (same columns and order as :mod:`bench.duckdb_dws`)."""
    from pyspark.sql import functions as F

    from spark_jobs.common import delta_io

    rows = {}
    for table, columns in DWS_COLUMNS.items():
        df = delta_io.read_table(spark, settings, table).where(F.col("dt") <= end)
        rows[table] = sorted(tuple(r) for r in df.selectExpr(*columns.split(", ")).collect())
    return rows


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return Decimal(a).quantize(Decimal("0.0001")) == Decimal(b).quantize(Decimal("0.0001"))
    return a == b


def compare_dws(project: dict[str, list[tuple]], duck: dict[str, list[tuple]]) -> dict[str, str]:
    """Per DWS table: ``"equal (n rows)"`` or what differs (rows missing on either side, first
    differing rows)."""
    verdict = {}
    for table, width in KEY_COLUMNS.items():
        mine = {r[:width]: r for r in project[table]}
        theirs = {r[:width]: r for r in duck[table]}
        missing = sorted(set(theirs) - set(mine))
        extra = sorted(set(mine) - set(theirs))
        differ = [
            (mine[k], theirs[k])
            for k in sorted(set(mine) & set(theirs))
            if not all(_same(x, y) for x, y in zip(mine[k], theirs[k], strict=True))
        ]
        if not (missing or extra or differ):
            verdict[table] = f"equal ({len(mine)} rows)"
        else:
            verdict[table] = (
                f"DIFFERENT: {len(missing)} rows only in DuckDB {missing[:2]}, {len(extra)} only "
                f"in the project {extra[:2]}, {len(differ)} differ {differ[:2]}"
            )
    return verdict


def _print_phase(phase: Phase) -> None:
    rate = f"{phase.records / phase.seconds:,.0f} records/s" if phase.records else ""
    mem = ", ".join(f"{k} {v:,.0f}" for k, v in phase.memory.items() if v)
    load = "/".join(f"{x:.1f}" for x in phase.load)
    print(f"  {phase.name:44} {phase.seconds:8.1f} s  {rate:>20}  peak MiB: {mem}; load {load}")


def _print_layers(steps: list[tuple], duck_steps: list[tuple] | None, records: int) -> None:
    duck = {LAYERS[name]: seconds for name, seconds, _ in duck_steps or []}
    print(f"  {'layer':32} {'project s':>10} {'DuckDB s':>9} {'ratio':>7} {'rows':>12}")
    for name, seconds, rows in steps:
        other = duck.get(name)
        ratio = f"{seconds / other:7.1f}" if other else f"{'-':>7}"
        other_text = f"{other:9.1f}" if other is not None else f"{'-':>9}"
        print(f"  {name:32} {seconds:10.1f} {other_text} {ratio} {rows:12,d}")
    total = sum(s for _, s, _ in steps)
    comparable = sum(s for n, s, _ in steps if n in duck)
    print(f"  {'total':32} {total:10.1f} {'':>9} {'':>7}  ({records / total:,.0f} records/s)")
    if duck:
        duck_total = sum(duck.values())
        print(
            f"  {'total of the layers DuckDB does':32} {comparable:10.1f} {duck_total:9.1f} "
            f"{comparable / duck_total:7.1f}"
        )


def _complete(marker: Path, expected: dict) -> bool:
    return marker.exists() and json.loads(marker.read_text()) == expected


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=20, help="copies of the year (default 20)")
    parser.add_argument("--workdir", help="where input, landings and lakes go (default: temp)")
    parser.add_argument(
        "--reuse-input",
        action="store_true",
        help="keep the workdir's scaled input and history landing when complete (lakes are "
        "always rebuilt)",
    )
    parser.add_argument("--duckdb-threads", type=int, help="DuckDB threads (default: all cores)")
    parser.add_argument(
        "--since",
        type=dt.date.fromisoformat,
        help=f"first source day of the input (default: the whole year; at most {LAST_DAY} - "
        f"{MONTH_DAYS + 1} days for the 1-month figure to mean a month)",
    )
    args = parser.parse_args(argv)

    from spark_jobs.common.jobframe import configure_logging
    from spark_jobs.landing.replay import replay
    from spark_jobs.settings import PROJECT_DIR as DATA_ROOT
    from spark_jobs.settings import load_settings, machine_cores, machine_memory_mib

    configure_logging()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="lakehouse-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    data, landing = work / "data", work / "landing"
    peaks = MemoryPeaks()
    phases: list[Phase] = []

    def phase(name: str, began: float, records: int) -> Phase:
        done = Phase(name, time.monotonic() - began, records, peaks.snapshot(), os.getloadavg())
        phases.append(done)
        _print_phase(done)
        peaks.reset()
        return done

    print(
        f"scale benchmark x{args.scale}: {machine_cores()} cores, {machine_memory_mib():,} MiB; "
        f"workdir {work}"
    )
    source = Path(os.environ.get("LAKEHOUSE_DATA_DIR", DATA_ROOT / "data"))
    marker = data / "complete.json"
    wanted = {"copies": args.scale, "since": str(args.since)}
    if not (args.reuse_input and _complete(marker, wanted)):
        shutil.rmtree(data, ignore_errors=True)
        (work / "landing.json").unlink(missing_ok=True)
        began = time.monotonic()
        scaled = build_scaled_online_retail(source, data, args.scale, args.since)
        phase(f"build input x{args.scale}", began, scaled.rows)
        marker.write_text(json.dumps(wanted))
    history_end = LAST_DAY - dt.timedelta(days=1)
    landing_marker = work / "landing.json"
    if args.reuse_input and landing_marker.exists():
        summary = json.loads(landing_marker.read_text())
        records, first, last_arrival = (
            summary["records"],
            dt.date.fromisoformat(summary["first"]),
            dt.date.fromisoformat(summary["last_arrival"]),
        )
        print(f"  reusing the history landing: {records:,} records")
    else:
        shutil.rmtree(landing, ignore_errors=True)
        began = time.monotonic()
        history = replay("online_retail", str(landing), "firehose", end=history_end, data_dir=data)
        phase(f"replay history ({history.objects:,} objects)", began, history.records)
        records, first, last_arrival = (
            history.records,
            history.first_event_date,
            history.last_arrival_date,
        )
        landing_marker.write_text(
            json.dumps({"records": records, "first": str(first), "last_arrival": str(last_arrival)})
        )

    from spark_jobs.common.spark import get_spark, spark_conf

    settings = replace(load_settings(), lakehouse_root=str(work / "lake"), data_dir=str(data))
    for lake in ("lake", "lake_month", "landing_month"):
        shutil.rmtree(work / lake, ignore_errors=True)
    conf = spark_conf(settings)
    print(
        f"  Spark defaults: driver memory {conf.get('spark.driver.memory', '(cluster)')}, "
        f"shuffle partitions {conf['spark.sql.shuffle.partitions']}, master "
        f"{settings.spark_master}"
    )
    began = time.monotonic()
    spark = get_spark("lakehouse-scale-benchmark", settings)
    peaks.spark = spark
    phase("Spark start-up", began, 0)

    print(f"\nproject: raw objects -> DWS over {first}..{last_arrival} ({records:,} records)")
    began = time.monotonic()
    year = timed_run(spark, settings, str(landing), first, last_arrival)
    project_phase = phase("project run raw -> DWS (whole range)", began, records)

    print("\nDuckDB: the same DWS work over the same landing objects")
    began = time.monotonic()
    duck = run_duckdb_dws(landing, last_arrival, threads=args.duckdb_threads)
    duck_phase = phase("DuckDB raw -> DWS", began, records)
    verdict = compare_dws(project_dws_rows(spark, settings, last_arrival), duck.rows)

    print("\nODS line splitting (Python, Arrow) vs Spark's own text reader, same objects")
    began = time.monotonic()
    split = count_lines(spark, settings, str(landing), first, "ingest")
    split_phase = phase("read + split lines (binaryFile + mapInArrow)", began, split)
    began = time.monotonic()
    text = count_lines(spark, settings, str(landing), first, "text")
    text_phase = phase("read lines (spark.read.text, for scale)", began, text)

    long_history = f"{(LAST_DAY - first).days} days"  # 12 months unless --since
    print(f"\nincremental day after {long_history} of history")
    day = replay("online_retail", str(landing), "firehose", LAST_DAY, LAST_DAY, data)
    began = time.monotonic()
    after_year = timed_run(spark, settings, str(landing), LAST_DAY, day.last_arrival_date)
    year_day = phase(f"incremental {LAST_DAY} after {long_history}", began, day.records)

    print(f"\nincremental day after 1 month of history ({MONTH_DAYS} days before {LAST_DAY})")
    month_settings = replace(settings, lakehouse_root=str(work / "lake_month"))
    month_landing = str(work / "landing_month")
    month_first = LAST_DAY - dt.timedelta(days=MONTH_DAYS)
    month = replay("online_retail", month_landing, "firehose", month_first, history_end, data)
    timed_run(spark, month_settings, month_landing, month_first, month.last_arrival_date)
    replay("online_retail", month_landing, "firehose", LAST_DAY, LAST_DAY, data)
    peaks.reset()
    began = time.monotonic()
    after_month = timed_run(spark, month_settings, month_landing, LAST_DAY, day.last_arrival_date)
    month_day = phase(f"incremental {LAST_DAY} after 1 month", began, day.records)

    print(f"\n=== figures (x{args.scale}, {records:,} raw records; {dt.date.today()}) ===")
    print(f"machine: {machine_cores()} cores, {machine_memory_mib():,} MiB; Spark {spark.version}")
    for done in phases:
        _print_phase(done)
    print(f"\nwhole range raw -> DWS, per layer ({records:,} records):")
    _print_layers(year, duck.steps, records)
    print(
        f"  project {project_phase.seconds:.1f} s vs DuckDB {duck_phase.seconds:.1f} s: "
        f"{project_phase.seconds / duck_phase.seconds:.1f}x (target <= 5x); DuckDB capped "
        f"{duck.capped_runs} inactivity runs at 24 h"
    )
    for table, text in verdict.items():
        print(f"  DWS {table}: {text}")
    print(
        f"  ODS line splitting: {split_phase.seconds:.1f} s (Spark's text reader: "
        f"{text_phase.seconds:.1f} s) of ingest's {year[0][1]:.1f} s"
    )
    print(f"\nincremental {LAST_DAY} ({day.records:,} records) after {long_history}:")
    _print_layers(after_year, None, day.records)
    print(f"incremental {LAST_DAY} ({day.records:,} records) after 1 month:")
    _print_layers(after_month, None, day.records)
    print(
        f"  incremental day, {long_history} / {MONTH_DAYS} days of history: "
        f"{year_day.seconds:.1f} s / "
        f"{month_day.seconds:.1f} s = {year_day.seconds / month_day.seconds:.2f} (target <= 1.3)"
    )
    peaks.stop()
    spark.stop()
    return 0 if all(v.startswith("equal") for v in verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
