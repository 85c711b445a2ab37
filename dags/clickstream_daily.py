"""clickstream_daily: raw landing objects of one UTC day -> ODS -> DWD -> DWS, every layer gated.

Schedule: an explicit data-interval timetable, cron ``0 0 * * *`` in UTC. A run starts at midnight
UTC and its data interval is the previous UTC day (``[D 00:00, D+1 00:00)``): it processes the raw
objects that *arrived* on D (late events inside them included; the jobs plan which partitions to
rewrite from the ingest manifest).

Tasks (one ``spark-submit`` of a ``spark_jobs`` entry point each; the names follow the tables):

1. ``wait_for_raw_objects``: a deferrable sensor for the day's first raw object (S3 for ``s3://``
   landings, the file system otherwise; the S3 one falls back to reschedule mode when the
   triggerer lacks the async S3 client, ``aiobotocore``). None within
   ``LAKEHOUSE_LANDING_WAIT_SEC``: the sensor is skipped (the warning that nothing arrived that
   day) and the run goes on: ``ingest`` runs on ``none_failed``, finds nothing new (or objects
   written late into the previous days' folders), and every build still writes the day's rows
   (zeros on a day without events), so every DWS table has the same days.
2. ``ingest``: the ODS ingest of the objects of the day's folders (and of the
   ``LAKEHOUSE_ARRIVAL_LOOKBACK_DAYS`` before it) that are not in the manifest yet; it stages
   the batch in the staging twins of the ODS, rejected and manifest tables (``--stage``).
3. ``check__<table>`` for those three tables: their Great Expectations suites on the staged
   batch; ``check__etl_ingest_manifest`` runs after the other two and publishes the batch (ODS,
   rejected, then the manifest) only if all three passed. A failed ODS check publishes nothing:
   the objects stay unknown to the manifest and the day's rerun ingests them again.
4. For each DWD/DWS table in layer order (registry upstreams): ``build__<table>`` writes the
   table's staging twin for the landing's apps only (``--stage``), then ``check__<table>``
   validates the staged partitions and publishes them only if the suite passes
   (write-audit-publish). A failed check leaves the published table untouched and stops
   everything downstream of it.
5. ``publish_report``: refreshes the HTML report from the published DWS tables.

Only the check that publishes a table emits its Asset (``lakehouse://<layer>/<table>``):
``check__<table>`` for DWD/DWS tables, ``check__etl_ingest_manifest`` for the three tables of the
ingest batch. A DAG scheduled on an Asset only ever sees validated data.

Backfills and ranges (runs never overlap: ``max_active_runs=1``; the jobs rewrite whole
partitions, so reruns are idempotent):

- ``airflow backfill create --dag-id clickstream_daily --from-date D1 --to-date D2
  --max-active-runs 1``: one run per day, each with its own data interval;
- a triggered run with params ``{"start": "D1", "end": "D2"}``: one run over the whole range,
  each task one ``spark-submit`` with ``--start D1 --end D2`` (the jobs' range mode), much faster
  than a Spark start per day and task. The sensor then waits for objects of ``end``.
"""

from __future__ import annotations

import datetime as dt

import clickstream_common as wiring
from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import DAG, CronDataIntervalTimetable

from spark_jobs import tables as T

DAG_ID = "clickstream_daily"
#: the raw objects the sensor waits for: those of the range's last day, else of the interval's day
LANDING_PATTERN = "{{ landing_glob(params.end or data_interval_start | ds) }}"
LANDING = wiring.landing_uri()

with DAG(
    dag_id=DAG_ID,
    description="Raw clickstream objects of a UTC day -> ODS -> DWD -> DWS (Delta), gated by GX",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=wiring.start_date(),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=12),
    default_args=wiring.default_args(),
    on_failure_callback=wiring.dag_failure_alert,
    user_defined_macros={
        "landing_glob": wiring.landing_glob_macro(LANDING, wiring.landing_layout())
    },
    params=wiring.date_range_params(
        "Range run: first day (UTC, YYYY-MM-DD); empty = the data interval",
        "Range run: last day, inclusive; set together with start",
    ),
    tags=["clickstream", "lakehouse", "daily"],
    doc_md=__doc__,
) as dag:
    sensor_args = {
        "task_id": "wait_for_raw_objects",
        "deferrable": True,
        "timeout": wiring.landing_wait_sec(),
        "poke_interval": min(300, max(10, wiring.landing_wait_sec() // 12)),
        "soft_fail": True,
        "retries": 0,
    }
    if LANDING.startswith(("s3://", "s3a://")):
        # deferring needs the async S3 client in the triggerer; without it, reschedule mode
        # (the worker slot is also freed between pokes)
        if not wiring.async_s3_available():
            sensor_args.update(deferrable=False, mode="reschedule")
        wait = S3KeySensor(
            bucket_key=LANDING_PATTERN,
            wildcard_match=True,
            aws_conn_id=wiring.AWS_CONN_ID,
            **sensor_args,
        )
    else:
        wait = FileSensor(filepath=LANDING_PATTERN, fs_conn_id=wiring.FS_CONN_ID, **sensor_args)

    dates = ["--start", wiring.RUN_START, "--end", wiring.RUN_END]
    # a day on which nothing arrived still runs: its builds write the day's zero rows
    ingest = wiring.spark_job(
        "ingest",
        T.get_table(T.ODS_EVENTS).job_path,
        ["--landing", LANDING, *dates, "--stage"],
        trigger_rule="none_failed",
    )
    wait >> ingest

    # A failed expectation is deterministic: checks do not retry (that would only delay the alert).
    # ODS write-audit-publish: the ODS and rejected checks validate the staged batch; the
    # manifest's check, after both, validates the staged manifest and publishes the batch
    # (ODS, rejected, manifest last), so it emits the three tables' Assets.
    checks = {}
    batch_checks = []
    for name in T.INGEST_BATCH:
        publishes = name == T.INGEST_MANIFEST
        checks[name] = wiring.spark_job(
            f"check__{name}",
            wiring.VALIDATE_JOB,
            ["--table", name, *dates, "--staged", *(["--publish"] if publishes else [])],
            outlets=[wiring.table_asset(n) for n in T.INGEST_BATCH] if publishes else [],
            retries=0,
        )
        ingest >> checks[name]
        if publishes:
            batch_checks >> checks[name]
        else:
            batch_checks.append(checks[name])
    published_batch = checks[T.INGEST_MANIFEST]

    for name in T.DOWNSTREAM_BUILD_ORDER:
        table = T.get_table(name)
        build = wiring.spark_job(
            f"build__{name}", table.job_path, [*dates, "--landing", LANDING, "--stage"]
        )
        # the first layer after ODS waits for the batch's publish: the rebuild plan reads the
        # published manifest
        upstream_checks = {
            published_batch if u in T.INGEST_BATCH else checks[u] for u in table.upstreams
        }
        for upstream in sorted(upstream_checks, key=lambda task: task.task_id):
            upstream >> build
        checks[name] = wiring.spark_job(
            f"check__{name}",
            wiring.VALIDATE_JOB,
            ["--table", name, *dates, "--landing", LANDING, "--staged", "--publish"],
            outlets=[wiring.table_asset(name)],
            retries=0,
        )
        build >> checks[name]

    report = wiring.spark_job("publish_report", wiring.CLI_JOB, ["--quiet", "report"])
    for name in T.DOWNSTREAM_BUILD_ORDER:
        if T.get_table(name).layer == "dws":
            checks[name] >> report
