"""clickstream_maintenance: weekly Delta OPTIMIZE (Z-ORDER where it helps) and VACUUM per table.

Schedule: Sundays 03:00 UTC (a cron *trigger* timetable: the run has no data interval of its own),
after the daily run of Saturday has finished. One ``maintain__<table>`` task per registry table
runs ``spark_jobs/maintenance.py``, for the batch tables and the streaming job's ``rt`` tables:

- OPTIMIZE of the partitions a daily run can still rewrite (``dt`` from the run date minus the
  late-data lookback and one more week), Z-ORDER BY ``(app_id, user_id)`` for the DWD tables;
  the ``rt`` tables (not partitioned, one small file per micro-batch) are compacted whole, next
  to the running stream (its appends do not conflict with compaction);
- for the ``rt`` tables, first the retention: rows more than ``LAKEHOUSE_RT_RETENTION_DAYS``
  (default 30) of event time before the table's newest row are deleted;
- VACUUM of the table and of its staging twin with a retention of ``LAKEHOUSE_VACUUM_RETAIN_HOURS``
  (default 168 h = 7 days; the job refuses less).

``max_active_runs=1``; the tasks are independent (one table each) and retry on a Delta write
conflict with a concurrent daily run.
"""

from __future__ import annotations

import os

import clickstream_common as wiring
from airflow.sdk import DAG, CronTriggerTimetable

from spark_jobs import tables as T
from spark_jobs.settings import load_settings

DAG_ID = "clickstream_maintenance"
#: partitions older than this many days before the run date are no longer rewritten by the
#: daily runs (late-data lookback + one week), so they stay compacted
OPTIMIZE_DAYS = load_settings().late_data_lookback_days + 7
RETAIN_HOURS = os.environ.get("LAKEHOUSE_VACUUM_RETAIN_HOURS", "").strip() or "168"

with DAG(
    dag_id=DAG_ID,
    description="Weekly Delta OPTIMIZE / Z-ORDER and VACUUM (>= 7 days retention) per table",
    schedule=CronTriggerTimetable("0 3 * * 0", timezone="UTC"),
    start_date=wiring.start_date(),
    catchup=False,
    max_active_runs=1,
    default_args=wiring.default_args(),
    on_failure_callback=wiring.dag_failure_alert,
    tags=["clickstream", "lakehouse", "maintenance"],
    doc_md=__doc__,
) as dag:
    for table in T.ALL_TABLES:
        wiring.spark_job(
            f"maintain__{table.name}",
            wiring.MAINTENANCE_JOB,
            [
                "--table",
                table.name,
                "--since",
                f"{{{{ macros.ds_add(ds, -{OPTIMIZE_DAYS}) }}}}",
                "--retain-hours",
                RETAIN_HOURS,
            ],
        )
